"""Speed of person-time rates, Lexis splitting, SIR and Poisson regression on the 373,820-person cohort.

The cohort is generated and built once (``generate_cohort(n_persons=373_820)``,
``build_cohort``, as ``bench_report.py`` makes it; nothing is cached in the
repository). Timed, each the median of ``--repeats`` runs after a first:

* ``incidence_rates(table, "death")`` by tier (target < 0.5 s), against the
  in-process baseline of a bare pandas ``groupby(tier).agg(sum)`` of deaths
  and person-years (the least any rate table must do);
* ``rate_ratios(table, "death")``;
* ``split_follow_up`` of death by the example reference table's bands (11
  age bands x 2 periods), all columns carried and with ``keep=`` a few;
* ``standardized_incidence_ratio`` on the split pieces;
* ``poisson_regression(table, "death", adjust=["age_at_index", "sex"])``.

Usage::

    python benchmarks/bench_rates.py [--persons 373820] [--repeats 3]

Writes ``benchmarks/results/rates.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import neutrostats as ns
from neutrostats.stats.rates import (
    incidence_rates,
    poisson_regression,
    rate_ratios,
    split_follow_up,
    standardized_incidence_ratio,
)
from neutrostats.synthetic import example_reference_rates, generate_cohort

from _timing import timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=373_820)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    t = time.perf_counter()
    s = generate_cohort(n_persons=args.persons, progress=False)
    table = ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths, engine="numpy").table
    build_s = time.perf_counter() - t
    ref = example_reference_rates()
    breaks = ref.attrs["breaks"]

    def baseline():
        return table.groupby("tier", observed=False).agg(deaths=("death", "sum"), py=("death_time", "sum"))

    res = {}
    res["baseline_groupby_s"] = timed(baseline, args.repeats)[1]
    res["incidence_rates_s"] = timed(lambda: incidence_rates(table, "death"), args.repeats)[1]
    res["rate_ratios_s"] = timed(lambda: rate_ratios(table, "death"), args.repeats)[1]
    res["split_all_columns_s"] = timed(lambda: split_follow_up(table, "death", breaks=breaks), args.repeats)[1]
    keep = ["person_id", "tier", "sex", "age_at_index"]
    res["split_keep_4_columns_s"] = timed(lambda: split_follow_up(table, "death", breaks=breaks, keep=keep),
                                          args.repeats)[1]
    pieces = split_follow_up(table, "death", breaks=breaks, keep=keep)
    res["sir_s"] = timed(lambda: standardized_incidence_ratio(pieces, ref), args.repeats)[1]
    res["poisson_regression_s"] = timed(
        lambda: poisson_regression(table, "death", adjust=["age_at_index", "sex"]), 1)[1]
    out = {
        "persons": len(table),
        "pieces": len(pieces),
        "generate_and_build_cohort_s": round(build_s, 1),
        **{k: round(v, 4) for k, v in res.items()},
        "ratio_incidence_rates_to_groupby": round(res["incidence_rates_s"] / res["baseline_groupby_s"], 2),
        "target_incidence_rates_s": 0.5,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    print(json.dumps(out, indent=2))
    path = Path(__file__).resolve().parent / "results" / "rates.json"
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
