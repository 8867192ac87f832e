"""The lab reduction on Spark (local[2]) against DuckDB (2 threads), side by side.

Reduces the Parquet lab table written by ``make_large_labs.py`` to one row
per person with :func:`neutrostats.cohort._sql.reduce_labs_sql` (what
``build_cohort`` runs for a Spark DataFrame or a Parquet path), once on each
engine, in alternating fresh processes, and reports per engine:

* wall time of the reduction (the Spark session is started before the clock);
* peak resident memory of the whole process tree (Python, and for Spark its
  JVM), sampled every 0.2 s from ``/proc``;
* for Spark, the physical plan of every query the call sends (as planned,
  before adaptive re-optimisation): sort-merge, broadcast and shuffled hash
  joins, shuffles (``Exchange`` other than broadcasts), Parquet scans and
  scans of the call's cache (the plan under a cache is not counted again: it
  ran once, when the cache was filled).

``--code FOLDER`` runs the Spark side with another checkout of neutrostats
(e.g. a ``git worktree`` of the commit before a change), for before/after
figures.

Usage::

    python benchmarks/make_large_labs.py --rows 10_000_000 --out /data/large10m
    python benchmarks/bench_spark.py --data /data/large10m --out benchmarks/results/spark_10m.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def _outside_caches(plan: str) -> str:
    """The plan without the subtrees under ``InMemoryRelation`` (what a cache holds is not run again)."""
    kept, inside = [], None
    for line in plan.splitlines():
        depth = len(line) - len(line.lstrip(" :+-*()0123456789"))
        if inside is not None and depth > inside:
            continue
        inside = depth if "InMemoryRelation" in line else None
        kept.append(line)
    return "\n".join(kept)


def plan_counts(plan: str) -> dict[str, int]:
    plan = _outside_caches(plan)
    return {
        "sort_merge_joins": len(re.findall(r"\bSortMergeJoin\b", plan)),
        "broadcast_hash_joins": len(re.findall(r"\bBroadcastHashJoin\b", plan)),
        "shuffled_hash_joins": len(re.findall(r"\bShuffledHashJoin\b", plan)),
        "shuffles": len(re.findall(r"\bExchange (?:hashpartitioning|rangepartitioning|RoundRobinPartitioning|"
                                   r"SinglePartition|hashpartitioning)", plan)),
        "parquet_scans": len(re.findall(r"\bFileScan parquet\b|\bScan parquet\b", plan)),
        "cache_scans": len(re.findall(r"\bInMemoryTableScan\b", plan)),
    }


def run_child(engine: str, data: str) -> None:
    import numpy as np
    import pandas as pd

    persons = pd.read_parquet(Path(data) / "persons.parquet", columns=["person_id", "birth_date", "duffy_null"])
    plans: list[str] = []
    if engine == "spark":
        from pyspark.sql import SparkSession

        spark = (
            SparkSession.builder.master("local[2]").appName("neutrostats-bench")
            .config("spark.driver.memory", os.environ.get("BENCH_SPARK_MEMORY", "4g"))
            .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false").config("spark.local.dir", str(Path(data) / "spark_tmp"))
            .getOrCreate()
        )
        spark.range(1).count()  # the JVM is up before the clock starts
        labs = spark.read.parquet(str(Path(data) / "labs"))
        sql_fn = type(spark).sql

        def recording_sql(self, text, *a, **k):
            df = sql_fn(self, text, *a, **k)
            try:
                plans.append(df._jdf.queryExecution().executedPlan().toString())
            except Exception as exc:  # noqa: BLE001 - a plan that cannot be shown is not counted
                plans.append(f"<no plan: {exc}>")
            return df

        type(spark).sql = recording_sql
        engine_arg = None
    else:
        import duckdb

        tmp = Path(data) / "duckdb_tmp"
        tmp.mkdir(exist_ok=True)
        engine_arg = duckdb.connect(config={"threads": 2, "temp_directory": str(tmp)})
        labs = str(Path(data) / "labs" / "*.parquet")

    from neutrostats.cohort._sql import reduce_labs_sql
    from neutrostats.cohort._reduction import _dates, _days
    from neutrostats.labs.classify import get_scheme

    t0 = time.perf_counter()
    births = _days(_dates(persons["birth_date"]))
    red = reduce_labs_sql(
        labs, persons, births, engine=engine_arg, keep_measurements=False,
        scheme=get_scheme("andersen2016"), index="first", age_range=None, index_window=None,
        duffy_null="duffy_null", duffy_null_limit=1200.0, chronic_months=3, person="person_id",
        time="sampled_at", value="value", unit="unit", code="code", on_unknown_unit="raise", decimal=".",
    )
    seconds = time.perf_counter() - t0
    out = {
        "engine": engine, "seconds": seconds, "rows": red.rows_read,
        "persons_out": int((~np.isnat(red.index["sampled_at"])).sum()),
        "tiers": {str(k): int(v) for k, v in zip(*np.unique(red.index["tier"], return_counts=True))},
    }
    if plans:
        counts = [plan_counts(p) for p in plans]
        out["queries"] = len(plans)
        out["plan_totals"] = {k: sum(c[k] for c in counts) for k in counts[0]}
        out["main_query_plan"] = max(counts, key=lambda c: sum(c.values()))
    print(json.dumps(out))


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[dict, float]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    stdout, stderr = proc.communicate()
    thread.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1]), peak[0] / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder written by make_large_labs.py")
    ap.add_argument("--repeats", type=int, default=1, help="alternating runs per engine (median reported)")
    ap.add_argument("--engines", default="duckdb,spark")
    ap.add_argument("--code", help="neutrostats checkout for the Spark side (before/after figures)")
    ap.add_argument("--child", choices=["duckdb", "spark"], help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(HERE / "results" / "spark.json"))
    args = ap.parse_args(argv)
    if args.child:
        run_child(args.child, args.data)
        return 0
    manifest = json.loads((Path(args.data) / "manifest.json").read_text())
    runs: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        for engine in args.engines.split(","):
            env = dict(os.environ)
            if engine == "spark" and args.code:
                env["PYTHONPATH"] = args.code + os.pathsep + env.get("PYTHONPATH", "")
            got, peak = run_measured([sys.executable, __file__, "--data", args.data, "--child", engine], env)
            got["peak_rss_mb"] = peak
            runs.setdefault(engine, []).append(got)
            print(json.dumps({k: v for k, v in got.items() if k != "tiers"}), file=sys.stderr)

    def median(engine, key):
        values = sorted(r[key] for r in runs[engine])
        return values[len(values) // 2]

    report = {
        "benchmark": "lab reduction, Parquet -> one row per person: Spark local[2] vs DuckDB 2 threads",
        "lab_rows": manifest.get("rows"), "persons": manifest.get("persons"),
        "spark_code": args.code or "this checkout",
        "runs": runs,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    if {"duckdb", "spark"} <= set(runs):
        report["ratio_time_spark_to_duckdb"] = median("spark", "seconds") / median("duckdb", "seconds")
        report["ratio_memory_spark_to_duckdb"] = median("spark", "peak_rss_mb") / median("duckdb", "peak_rss_mb")
        report["same_tiers"] = runs["spark"][0]["tiers"] == runs["duckdb"][0]["tiers"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
