"""Speed of odds ratios for 6 outcomes x 4 tiers, crude and adjusted (age,
sex), on a full-size synthetic cohort (373,820 persons).

Baselines, in the same process on the same cohort table:

* crude: counting events and persons per tier with ``numpy.bincount`` for
  the 6 outcomes (the least any 2x2 method must do);
* adjusted: six bare ``statsmodels`` ``Logit(y, X).fit()`` calls on design
  matrices built beforehand (the least any adjusted method must do).

Usage::

    python benchmarks/bench_odds_ratios.py [--persons 373820] [--repeats 3]

Writes ``benchmarks/results/odds_ratios.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

import neutrostats as ns
from neutrostats.synthetic import generate_cohort

from _timing import timed

OUTCOMES = ["viral_infection", "hiv", "hematologic_malignancy", "mds", "solid_cancer", "autoimmune"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=373_820)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "odds_ratios.json"))
    args = parser.parse_args()
    s = generate_cohort(n_persons=args.persons, progress=False)
    t = ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths).table
    codes = t["tier"].cat.codes.to_numpy()

    def count_baseline():
        for o in OUTCOMES:
            ok = t[o].notna().to_numpy()
            np.bincount(codes[ok], minlength=4)
            np.bincount(codes[ok], weights=t[o].to_numpy(dtype=float, na_value=0)[ok], minlength=4)

    designs = []
    for o in OUTCOMES:
        d = t[t[o].notna()]
        X = np.column_stack([np.ones(len(d))] + [(d["tier"].cat.codes == k).to_numpy(float) for k in (1, 2, 3)]
                            + [d["age_at_index"].to_numpy(), (d["sex"] == "M").to_numpy(float)])
        designs.append((d[o].to_numpy(dtype=float), X))

    def fit_baseline():
        with np.errstate(over="ignore"):
            for y, X in designs:
                sm.Logit(y, X).fit(method="newton", disp=0)

    results = {"persons": args.persons, "outcomes": OUTCOMES, "python": platform.python_version(),
               "numpy": np.__version__, "pandas": pd.__version__, "cases": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ns.SmallCellWarning)
        _, base_count = timed(count_baseline, args.repeats)
        _, base_fit = timed(fit_baseline, args.repeats)
        for name, kw, base in [
            ("crude midp", dict(method="midp"), base_count),
            ("crude exact", dict(method="exact"), base_count),
            ("crude wald", dict(method="wald"), base_count),
            ("adjusted logistic (age, sex)", dict(method="logistic", adjust=["age_at_index", "sex"]), base_fit),
        ]:
            _, sec = timed(lambda kw=kw: ns.odds_ratio_table(t, OUTCOMES, **kw), args.repeats)
            results["cases"][name] = {"seconds_median": sec, "baseline_seconds": base, "ratio_to_baseline": sec / base}
            print(f"{name:32s} {sec:6.3f} s   baseline {base:6.3f} s   ratio {sec / base:6.2f}x")
    crude = results["cases"]["crude midp"]["seconds_median"]
    adjusted = results["cases"]["adjusted logistic (age, sex)"]["seconds_median"]
    results["crude_midp_plus_adjusted_seconds"] = crude + adjusted
    print(f"crude (mid-p) + adjusted, 6 outcomes x 4 tiers: {crude + adjusted:.2f} s")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
