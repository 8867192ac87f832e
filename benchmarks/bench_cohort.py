"""Speed of build_cohort on a full-size synthetic cohort (373,820 persons,
about 1.4 million lab rows, as in the CopDiff follow-up).

The baseline, run in the same process on the same lab table, is the least
any cohort builder has to do: sort the rows by person and time and keep each
person's first row (pandas ``sort_values`` + ``groupby.first``). Each figure
is the median of several repeats after a warm-up run; peak memory is the
process's peak resident set size.

Usage::

    python benchmarks/bench_cohort.py [--persons 373820] [--repeats 3]

Writes ``benchmarks/results/cohort.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
from pathlib import Path

import numpy as np
import pandas as pd

import neutrostats as ns
from neutrostats.synthetic import generate_cohort

from _timing import timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=373_820)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "cohort.json"))
    args = parser.parse_args()
    s = generate_cohort(n_persons=args.persons, progress=False)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def baseline():
        return s.labs.sort_values(["person_id", "sampled_at"]).groupby("person_id", sort=False).first()

    def cohort():
        return ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths)

    def cohort_numpy():
        return ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths, engine="numpy")

    _, base = timed(baseline, args.repeats)
    _, build = timed(cohort, args.repeats)
    _, build_numpy = timed(cohort_numpy, args.repeats)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "persons": args.persons,
        "lab_rows": len(s.labs),
        "diagnosis_rows": len(s.diagnoses),
        "build_cohort_seconds_median": build,
        "build_cohort_numpy_seconds_median": build_numpy,
        "note": "default: engine=None, for a pandas table the in-memory reduction since issue 21 (before: the SQL in DuckDB; bench_engine.py compares them); numpy: the same reduction named explicitly",
        "baseline": "labs.sort_values([person, time]).groupby(person).first() on the same table",
        "baseline_seconds_median": base,
        "ratio_to_baseline": build / base,
        "peak_rss_mb": peak,
        "rss_after_generation_mb": rss_before,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    print(f"{args.persons:,} persons, {len(s.labs):,} lab rows, {len(s.diagnoses):,} diagnoses")
    print(f"build_cohort {build:.2f} s (engine='numpy' {build_numpy:.2f} s); baseline {base:.2f} s; "
          f"ratio {build / base:.2f}x; "
          f"peak RSS {peak:.0f} MB (after generation {rss_before:.0f} MB)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
