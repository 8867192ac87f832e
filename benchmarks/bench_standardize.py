"""Speed of standardised 4-year risks with analytic (influence-function) intervals.

On the 373,820-person synthetic cohort (the CopDiff size): standardised
risks of death (all-cause Cox, tier + age + sex) and of haematological
malignancy (cause-specific Cox, death competing), against the time of the
Cox fit itself in the same process. Target: each < 10 s. Also the
standardised 4-year risk of death on a 30,000-person cohort (the size of the
150-replicate coverage test; target <= 0.15 s), best of 5 with timeit. The
machine's load average is recorded beside the times (the machine is shared).

    python benchmarks/bench_standardize.py [--persons 373820] [--small 30000]

Writes benchmarks/results/standardize.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import timeit
from pathlib import Path

import numpy as np

import neutrostats as ns
from neutrostats.stats.cox import cox_hazard_ratios
from neutrostats.stats.standardize import standardized_risk
from neutrostats.synthetic import generate_cohort


def _time(f):
    t0 = time.perf_counter()
    out = f()
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=373_820)
    parser.add_argument("--small", type=int, default=30_000)
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    s = generate_cohort(n_persons=args.small, seed=1, progress=False)
    small = ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths, engine="numpy").table
    t_small = min(timeit.repeat(lambda: standardized_risk(small, "death", 4.0, adjust=["age_at_index", "sex"]),
                                number=1, repeat=5))
    s = generate_cohort(n_persons=args.persons, seed=1, progress=False)
    c = ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths, engine="numpy")
    t = c.table
    adj = ["age_at_index", "sex"]
    t_cox, _ = _time(lambda: cox_hazard_ratios(t, "death_time", "death", adjust=adj))
    t_death, r_death = _time(lambda: standardized_risk(t, "death", 4.0, adjust=adj))
    hm = "hematologic_malignancy"
    t_hm, r_hm = _time(lambda: standardized_risk(t, hm, 4.0, adjust=adj))
    res = {
        "persons": int(len(t)),
        "cox_fit_death_s": round(t_cox, 3),
        "standardized_death_cox_s": round(t_death, 3),
        "standardized_hm_cause_specific_s": round(t_hm, 3),
        "ratio_death_to_cox_fit": round(t_death / t_cox, 2),
        "ratio_hm_to_cox_fit": round(t_hm / t_cox, 2),
        "target_s": 10.0,
        "small_persons": int(len(small)),
        "standardized_death_cox_small_s": round(t_small, 4),
        "target_small_s": 0.15,
        "load_average_1min": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    print(json.dumps(res, indent=2))
    print(r_death[r_death["contrast"] == "risk"][["group", "estimate", "conf_low", "conf_high"]])
    print(r_hm[r_hm["contrast"] == "risk"][["group", "estimate", "conf_low", "conf_high"]])
    out = Path(__file__).resolve().parent / "results" / "standardize.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
