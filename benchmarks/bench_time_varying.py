"""Speed of time_varying_tiers on a full-size synthetic cohort (373,820 persons,
about 1.4 million ANC measurements, as in the CopDiff follow-up).

The cohort is built as ``bench_cohort.py`` builds it (``generate_cohort`` with
its defaults, ``build_cohort`` of the four tables). The baseline, run in the
same process on the same measurement table, is the least any start-stop
builder has to do: sort the measurements by person and time and find each
count's next count time (pandas ``sort_values`` + ``groupby().shift(-1)``).
The two are timed in interleaved repeats (baseline, ours, baseline, ours...)
after a warm-up run of each; each figure is the median.

Usage::

    python benchmarks/bench_time_varying.py [--persons 373820] [--repeats 5]

Writes ``benchmarks/results/time_varying.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

import neutrostats as ns
from neutrostats.cohort.timevarying import time_varying_tiers
from neutrostats.synthetic import generate_cohort

from _timing import peak_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=373_820)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "time_varying.json"))
    args = parser.parse_args()
    s = generate_cohort(n_persons=args.persons, progress=False)
    cohort = ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths)
    meas = cohort.measurements
    assert meas is not None

    def baseline():
        m = meas.sort_values(["person_id", "sampled_at"])
        return m.groupby("person_id", sort=False)["sampled_at"].shift(-1)

    def ours():
        return time_varying_tiers(cohort, "death")

    baseline()
    rows = ours()
    times: dict[str, list[float]] = {"baseline": [], "time_varying_tiers": []}
    for _ in range(args.repeats):
        for name, fn in (("baseline", baseline), ("time_varying_tiers", ours)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times["baseline"])
    tv = statistics.median(times["time_varying_tiers"])

    # The Cox fit on the start-stop rows against the same fitter on one row per
    # person (tier at index), both with the person-clustered robust variance:
    # the cost per row should be the same.
    fixed = cohort.time_to_event("death").assign(tier=cohort.table["tier"])
    fixed["event"] = (fixed["status"] == 1).astype(np.int64)
    fits: dict[str, list[float]] = {"fixed_tier_cox": [], "time_varying_cox": []}
    for _ in range(max(1, args.repeats // 2)):
        t = time.perf_counter()
        ns.cox_hazard_ratios(fixed, "time", "event", cluster="person_id")
        fits["fixed_tier_cox"].append(time.perf_counter() - t)
        t = time.perf_counter()
        ns.time_varying_hazard_ratios(rows)
        fits["time_varying_cox"].append(time.perf_counter() - t)
    fixed_s = statistics.median(fits["fixed_tier_cox"])
    tv_cox_s = statistics.median(fits["time_varying_cox"])
    per_row = (tv_cox_s / len(rows)) / (fixed_s / len(fixed))
    result = {
        "persons": len(cohort.table),
        "measurements": len(meas),
        "rows": len(rows),
        "time_varying_tiers_seconds_median": tv,
        "baseline": "measurements.sort_values([person_id, sampled_at]).groupby(person_id)['sampled_at'].shift(-1)",
        "baseline_seconds_median": base,
        "ratio_to_baseline": tv / base,
        "repeats": args.repeats,
        "seconds": times,
        "targets": "< 10 s and <= 3x the baseline; the Cox fit at the existing fitter's speed per row",
        "cox_fixed_tier_rows": len(fixed),
        "cox_fixed_tier_seconds_median": fixed_s,
        "cox_time_varying_rows": len(rows),
        "cox_time_varying_seconds_median": tv_cox_s,
        "cox_seconds_per_row_ratio": per_row,
        "cox_seconds": fits,
        "peak_rss_mb": peak_rss_mb(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    print(f"{len(cohort.table):,} persons, {len(meas):,} measurements -> {len(rows):,} start-stop rows")
    print(f"time_varying_tiers {tv:.3f} s; baseline {base:.3f} s; ratio {tv / base:.2f}x")
    print(f"Cox on {len(rows):,} start-stop rows {tv_cox_s:.2f} s; on {len(fixed):,} rows (tier at index) "
          f"{fixed_s:.2f} s; time per row {per_row:.2f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
