"""Speed of Kaplan-Meier and the log-rank test on 1,000,000 rows, 4 tiers,
times rounded to days (heavy ties).

Baseline, in the same process on the same array: ``numpy.unique`` of the
times with counts plus a cumulative sum (the least any Kaplan-Meier must do).
When ``Rscript`` with the survival package is available, R's ``survfit`` on
the same data (timed inside R, reading excluded) is reported too.

Usage::

    python benchmarks/bench_survival.py [--rows 1000000] [--repeats 3]

Writes ``benchmarks/results/survival.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import neutrostats as ns

from _timing import timed

TIERS = ["normal", "subnormal", "mild", "moderate_severe"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "survival.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    n = args.rows
    tier = pd.Categorical(rng.choice(TIERS, n, p=[0.96, 0.02, 0.015, 0.005]), categories=TIERS, ordered=True)
    t = np.round(rng.exponential(5, n) * 365) / 365 + 1 / 365
    e = rng.random(n) < 0.7
    df = pd.DataFrame({"time": t, "status": e.astype(int), "tier": tier})

    _, base = timed(lambda: np.cumsum(np.unique(t, return_counts=True)[1]), args.repeats)
    _, km = timed(lambda: ns.kaplan_meier(df, "time", "status", "tier"), args.repeats)
    _, lr = timed(lambda: ns.logrank_test(df, "time", "status", "tier"), args.repeats)
    result = {"rows": n, "groups": 4, "distinct_times": int(np.unique(t).size),
              "baseline": "numpy.unique(time, return_counts=True) + cumsum", "baseline_seconds": base,
              "kaplan_meier_seconds": km, "kaplan_meier_ratio_to_baseline": km / base,
              "logrank_seconds": lr, "python": platform.python_version(), "numpy": np.__version__,
              "pandas": pd.__version__}
    print(f"{n:,} rows: kaplan_meier {km:.3f} s ({km / base:.1f}x numpy baseline {base:.3f} s); "
          f"logrank {lr:.3f} s")
    if shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "km.csv"
            df.assign(tier=df["tier"].astype(str)).to_csv(path, index=False)
            code = (
                "suppressPackageStartupMessages(library(survival)); "
                f"d <- read.csv('{path}'); "
                "s <- system.time(f <- survfit(Surv(time, status) ~ tier, data = d))[['elapsed']]; "
                "l <- system.time(survdiff(Surv(time, status) ~ tier, data = d))[['elapsed']]; "
                "cat(s, l)"
            )
            res = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, check=False)
            if res.returncode == 0:
                r_km, r_lr = (float(x) for x in res.stdout.split())
                result.update(r_survfit_seconds=r_km, r_survdiff_seconds=r_lr,
                              ratio_to_r_survfit=km / r_km, ratio_to_r_survdiff=lr / r_lr)
                print(f"R survfit {r_km:.3f} s (ratio {km / r_km:.2f}); R survdiff {r_lr:.3f} s (ratio {lr / r_lr:.2f})")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
