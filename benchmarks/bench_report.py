"""End-to-end time of ``neutrostats report`` on a full-size synthetic cohort.

The cohort (373,820 persons, about 1.4 million lab rows, as in the CopDiff
follow-up) is written as gzip-compressed CSV, the way a data team would hand
it over; the report then reads it, runs every step (cohort, Table 1, odds
ratios for all outcomes crude and adjusted, Kaplan-Meier, log-rank, Cox with
the proportional-hazards check, cumulative incidence, figures) and writes
every output. The baseline, run in the same process on the same files, is
the least any tool has to do: read the four tables with ``pandas.read_csv``.

Usage::

    python benchmarks/bench_report.py [--persons 373820] [--repeats 1] [--min-cell-count 10] [--disclosure suppress]

Writes ``benchmarks/results/report.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

from neutrostats.report import ReportSettings, run_report
from neutrostats.synthetic import generate_cohort, write_cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=373_820)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--min-cell-count", type=int, default=10)
    parser.add_argument("--disclosure", default="suppress")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "report.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_cohort(generate_cohort(n_persons=args.persons, progress=False), Path(tmp) / "in",
                              format="csv")
        files = {name: folder / f"{name}.csv.gz" for name in ("labs", "persons", "diagnoses", "deaths")}
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        t = time.perf_counter()
        sizes = {name: len(pd.read_csv(path)) for name, path in files.items()}
        baseline = time.perf_counter() - t

        runs = []
        for i in range(args.repeats):
            t = time.perf_counter()
            report = run_report(files["labs"], files["persons"], files["diagnoses"], files["deaths"],
                                out=Path(tmp) / f"report{i}",
                                settings=ReportSettings(min_cell_count=args.min_cell_count,
                                                       disclosure=args.disclosure), progress=False)
            runs.append((time.perf_counter() - t, report.timings))
            import matplotlib.pyplot as plt

            plt.close("all")
        total = float(np.median([r[0] for r in runs]))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = runs[len(runs) // 2][1]
    result = {
        "persons": args.persons,
        "rows": sizes,
        "min_cell_count": args.min_cell_count,
        "disclosure": report.disclosure,
        "disclosure_seconds": steps.get("disclosure"),
        "report_seconds_median": total,
        "steps_seconds": {k: round(v, 3) for k, v in steps.items()},
        "baseline": "pandas.read_csv of the four input files (csv.gz)",
        "baseline_seconds": baseline,
        "ratio_to_baseline": total / baseline,
        "warnings": len(report.warnings),
        "peak_rss_mb": peak,
        "rss_after_generation_mb": rss_before,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    print(f"{args.persons:,} persons, rows {sizes}")
    print(f"report {total:.1f} s (target 60 s); read_csv baseline {baseline:.1f} s; ratio {total / baseline:.1f}x; "
          f"peak RSS {peak:.0f} MB")
    print("steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
    d = report.disclosure
    print(f"disclosure step {steps.get('disclosure', float('nan')):.2f} s (target 2 s): {d.get('published_counts')} "
          f"published counts, {d.get('relations')} relations, {d.get('primary_hidden')} primary and "
          f"{d.get('complementary_hidden')} complementary hidden")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
