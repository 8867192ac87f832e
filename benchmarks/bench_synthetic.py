"""Time and memory of the synthetic cohort generator at CopDiff size.

Run from the repository root::

    python benchmarks/bench_synthetic.py            # 373,820 persons
    python benchmarks/bench_synthetic.py --persons 100000 --no-write

Prints the figures and writes them to ``benchmarks/results/synthetic.json``.
Peak RSS comes from ``resource.getrusage`` (a process-wide high-water mark,
read right after generation, before anything else runs); the Python-heap peak
from ``tracemalloc`` in a second, separate generation (tracing slows it down,
so it is not timed). A fixed numpy workload timed in the same process gives a
machine-speed baseline, so results from different machines compare as ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from neutrostats.synthetic import DEFAULT_SEED, generate_cohort, write_cohort  # noqa: E402
from _timing import peak_rss_mb, rss_mb  # noqa: E402


def _baseline_seconds() -> float:
    """A fixed numpy workload: sort 10 million normal draws (best of 3)."""
    x = np.random.default_rng(0).standard_normal(10_000_000)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        np.sort(x)
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=373_820)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--no-write", action="store_true", help="skip timing write_cohort")
    ap.add_argument("--no-tracemalloc", action="store_true", help="skip the traced run")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "synthetic.json")
    args = ap.parse_args(argv)

    rss_before = rss_mb()
    t = time.perf_counter()
    cohort = generate_cohort(n_persons=args.persons, seed=args.seed, progress=False)
    seconds = time.perf_counter() - t
    peak_rss = peak_rss_mb()
    n_labs = len(cohort.labs)
    res: dict = {
        "benchmark": "neutrostats.synthetic.generate_cohort",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
                    "platform": platform.platform(), "cpus": os.cpu_count()},
        "n_persons": args.persons,
        "seed": args.seed,
        "rows": {"persons": len(cohort.persons), "labs": n_labs, "diagnoses": len(cohort.diagnoses),
                 "deaths": len(cohort.deaths)},
        "generate_seconds": round(seconds, 3),
        "lab_rows_per_second": round(n_labs / seconds),
        "peak_rss_mb": round(peak_rss, 1),
        "rss_before_generate_mb": round(rss_before, 1),
    }
    del cohort

    base = _baseline_seconds()
    res["baseline"] = {"workload": "np.sort of 10,000,000 float64 (best of 3)", "seconds": round(base, 4)}
    res["generate_over_baseline"] = round(seconds / base, 2)

    if not args.no_tracemalloc:
        tracemalloc.start()
        cohort = generate_cohort(n_persons=args.persons, seed=args.seed, progress=False)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        res["tracemalloc_peak_mb"] = round(peak / 2**20, 1)
    else:
        cohort = generate_cohort(n_persons=args.persons, seed=args.seed, progress=False)

    if not args.no_write:
        res["write"] = {}
        with tempfile.TemporaryDirectory() as d:
            for fmt in ("csv", "parquet"):
                t = time.perf_counter()
                out = write_cohort(cohort, Path(d) / fmt, format=fmt)
                secs = time.perf_counter() - t
                size = sum(p.stat().st_size for p in out.iterdir())
                res["write"][fmt] = {"seconds": round(secs, 2), "megabytes": round(size / 2**20, 1)}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    print(f"generate_cohort(n_persons={args.persons:,}): {seconds:.2f} s, {n_labs:,} lab rows "
          f"({n_labs / seconds:,.0f} rows/s)")
    print(f"peak RSS {peak_rss:,.0f} MB (RSS before generation {rss_before:,.0f} MB)")
    if "tracemalloc_peak_mb" in res:
        print(f"tracemalloc peak {res['tracemalloc_peak_mb']:,.0f} MB")
    print(f"baseline {base:.3f} s; generation = {res['generate_over_baseline']} x baseline")
    for fmt, w in res.get("write", {}).items():
        print(f"write_cohort({fmt}): {w['seconds']:.1f} s, {w['megabytes']:.1f} MB")
    print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    main()
