"""build_cohort on a pandas table: the default engine against engine="numpy" as it was, by size.

Times ``build_cohort(labs, persons, diagnoses, deaths)`` on synthetic cohorts
of 20,000, 373,820 (the CopDiff follow-up) and 1.5 million persons, each call
in a fresh process, the paths alternating within each round:

* ``default``: this checkout, ``engine=None``;
* ``numpy_before``: ``engine="numpy"`` of the checkout given by ``--code``
  (e.g. a ``git worktree`` of the commit before the change);
* ``duckdb_before``: ``engine=None`` of that checkout (the SQL in DuckDB,
  the default for a pandas table before) — ``--no-duckdb`` leaves it out.

Per run: wall and CPU seconds of the call (after the tables are read from
Parquet and a 300-person warm-up call of the same path), and the peak
resident memory of the call above what the process held before it (the
kernel's high-water mark is reset after loading: ``/proc/self/clear_refs``),
besides the resident memory after loading. Reported: medians per path and
size, ratios to ``numpy_before``, and the fitted exponent of each path (the
least-squares slope of log time and log peak memory on log persons; 1 is
linear growth). The machine's load average is recorded around every run:
compare ratios from one run of this script, not seconds across machines.

The cohorts are generated once (``generate_cohort(n_persons=n)``) and kept as
Parquet in ``--data``, so their text columns arrive as pandas reads Parquet
(the ``str`` dtype of pandas 3), as a user's tables would.

Usage::

    git worktree add --detach /tmp/before <commit before>
    python benchmarks/bench_engine.py --code /tmp/before --data /tmp/engine_data [--repeats 3]

Writes ``benchmarks/results/engine.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = (20_000, 373_820, 1_500_000)
TABLES = ("labs", "persons", "diagnoses", "deaths")


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _loadavg() -> float:
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def ensure_data(folder: Path, n: int) -> None:
    """The cohort of ``n`` persons as four Parquet files (generated once)."""
    if all((folder / f"{n}_{t}.parquet").exists() for t in TABLES):
        return
    from neutrostats.synthetic import generate_cohort

    folder.mkdir(parents=True, exist_ok=True)
    s = generate_cohort(n_persons=n, progress=False)
    for t in TABLES:
        getattr(s, t).to_parquet(folder / f"{n}_{t}.parquet")


def run_child(code: str, data: str, n: int, engine: str | None) -> None:
    """One timed call in this (fresh) process; prints a JSON line."""
    sys.path.insert(0, code)
    import pandas as pd

    import neutrostats as ns
    from neutrostats.synthetic import generate_cohort

    tables = {t: pd.read_parquet(Path(data) / f"{n}_{t}.parquet") for t in TABLES}
    small = generate_cohort(n_persons=300, seed=3, progress=False)
    ns.build_cohort(small.labs, small.persons, small.diagnoses, small.deaths, engine=engine)  # imports, first calls
    rss_loaded = _status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM, the peak, to the current resident size
    load = _loadavg()
    c0, w0 = time.process_time(), time.perf_counter()
    cohort = ns.build_cohort(tables["labs"], tables["persons"], tables["diagnoses"], tables["deaths"], engine=engine)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    peak = _status_mb("VmHWM")
    print(json.dumps({
        "wall_seconds": wall, "cpu_seconds": cpu, "peak_rss_mb": peak, "rss_after_loading_mb": rss_loaded,
        "call_peak_mb": peak - rss_loaded, "load_before": load, "load_after": _loadavg(),
        "persons_analysed": len(cohort.table), "lab_rows": len(tables["labs"]), "code": ns.__file__,
    }))


def _slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y on log x."""
    if len(xs) < 2 or min(ys) <= 0:
        return None
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def summarise(runs: dict, sizes: list[int]) -> dict:
    """Medians per path and size, ratios to numpy_before, and each path's fitted exponents."""
    med = {p: {n: {k: statistics.median(r[k] for r in runs[p][str(n)])
                   for k in ("wall_seconds", "cpu_seconds", "call_peak_mb", "peak_rss_mb")}
               for n in sizes} for p in runs}
    out: dict = {"medians": {p: {str(n): v for n, v in by.items()} for p, by in med.items()}}
    if "numpy_before" in med:
        out["ratio_to_numpy_before"] = {
            p: {str(n): {k: med[p][n][k] / med["numpy_before"][n][k]
                         for k in ("wall_seconds", "cpu_seconds", "call_peak_mb")} for n in sizes}
            for p in med if p != "numpy_before"}
    xs = [float(n) for n in sizes]
    out["exponent"] = {p: {k: _slope(xs, [med[p][n][k] for n in sizes])
                           for k in ("wall_seconds", "cpu_seconds", "call_peak_mb")} for p in med}
    if len(sizes) >= 2:
        a, b = sizes[-2], sizes[-1]
        out["exponent_last_two_sizes"] = {
            p: {k: math.log(med[p][b][k] / med[p][a][k]) / math.log(b / a)
                for k in ("wall_seconds", "cpu_seconds", "call_peak_mb")} for p in med}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", required=True, help="neutrostats checkout before the change (numpy_before)")
    ap.add_argument("--data", required=True, help="folder of the cohorts' Parquet files (written if missing)")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds (medians reported)")
    ap.add_argument("--no-duckdb", action="store_true", help="leave out duckdb_before (slow at 1.5M persons)")
    ap.add_argument("--out", default=str(HERE / "results" / "engine.json"))
    ap.add_argument("--child", nargs=4, metavar=("CODE", "DATA", "N", "ENGINE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        code, data, n, engine = args.child
        run_child(code, data, int(n), None if engine == "default" else engine)
        return 0
    here_code = str(HERE.parent)
    paths = {"default": (here_code, "default"), "numpy_before": (args.code, "numpy")}
    if not args.no_duckdb:
        paths["duckdb_before"] = (args.code, "default")
    sys.path.insert(0, here_code)
    for n in args.sizes:
        ensure_data(Path(args.data), n)
    runs: dict = {p: {str(n): [] for n in args.sizes} for p in paths}
    for round_ in range(args.repeats):
        for n in args.sizes:
            # Alternate the order between rounds, so that no path always runs after the same one.
            order = list(paths) if round_ % 2 == 0 else list(reversed(paths))
            for p in order:
                code, engine = paths[p]
                cmd = [sys.executable, __file__, "--code", code, "--data", args.data,
                       "--child", code, args.data, str(n), engine]
                proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
                if proc.returncode:
                    raise SystemExit(f"{p} at {n:,} failed:\n{proc.stderr[-3000:]}")
                got = json.loads(proc.stdout.strip().splitlines()[-1])
                runs[p][str(n)].append(got)
                print(f"round {round_ + 1} {n:>9,} {p:<14} wall {got['wall_seconds']:7.2f} s  cpu "
                      f"{got['cpu_seconds']:7.2f} s  call peak {got['call_peak_mb']:7.0f} MB  "
                      f"load {got['load_before']:.1f}", flush=True)
    summary = summarise(runs, args.sizes)
    import numpy as np
    import pandas as pd

    report = {
        "benchmark": "build_cohort(labs, persons, diagnoses, deaths) on a pandas table, fresh process per call",
        "paths": {p: {"code": c, "engine": e} for p, (c, e) in paths.items()},
        "sizes": args.sizes, "repeats": args.repeats,
        **summary,
        "runs": runs,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "numpy": np.__version__,
                    "pandas": pd.__version__},
        "note": "ratios and exponents from medians; load averages per run in 'runs' (a shared machine)",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for key in ("ratio_to_numpy_before", "exponent", "exponent_last_two_sizes"):
        print(key, json.dumps(summary.get(key), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
