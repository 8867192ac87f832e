"""Speed of cumulative incidence (Aalen-Johansen with IJ standard errors),
Gray's test and Kaplan-Meier on 1,000,000 rows, 4 groups, heavy ties.

Data (seeded): times in whole days 1..365 (365 distinct values), event codes
0 (40 %), 1 (30 %), 2 (20 %), 3 (10 %), four tiers; 30 % of the rows have a
delayed entry for the ``entry=`` case.

Baseline, in the same process on the same data: ``np.unique(time,
return_counts=True)`` followed by ``np.cumsum`` of the counts (the least any
estimator at distinct times must do, without groups or causes).

With ``--r`` the same data are written to a temporary CSV and R's
``cmprsk::cuminc`` and ``survival::survfit`` (multi-state) are timed inside
``Rscript`` (``system.time`` around the fit only, not the CSV read).

Usage::

    python benchmarks/bench_competing.py [--rows 1000000] [--repeats 5] [--r]

Writes ``benchmarks/results/competing.json``.
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

from neutrostats.stats.competing import cumulative_incidence, gray_test

from _timing import timed

TIERS = ["normal", "mild", "moderate", "severe"]

R_SCRIPT = r"""
suppressPackageStartupMessages({library(survival); library(cmprsk)})
d <- read.csv(commandArgs(TRUE)[1])
t1 <- system.time(cuminc(d$time, d$status, d$group))[["elapsed"]]
t2 <- system.time(survfit(Surv(time, factor(status)) ~ group, data = d))[["elapsed"]]
cat(t1, t2, "\n")
"""


def make_data(rows: int, seed: int = 20240611) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    time = np.minimum(np.ceil(rng.exponential(120.0, rows)), 365.0)
    entry = np.where(rng.random(rows) < 0.3, np.floor(rng.random(rows) * time), 0.0)
    return pd.DataFrame({
        "time": time,
        "status": rng.choice([0, 1, 2, 3], rows, p=[0.4, 0.3, 0.2, 0.1]),
        "group": pd.Categorical(rng.choice(TIERS, rows, p=[0.55, 0.25, 0.15, 0.05]), categories=TIERS,
                                ordered=True),
        "entry": entry,
    })


def time_r(df: pd.DataFrame) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "cr.csv"
        df[["time", "status", "group"]].assign(group=df["group"].astype(str)).to_csv(csv, index=False)
        script = Path(tmp) / "bench.R"
        script.write_text(R_SCRIPT, encoding="utf-8")
        out = subprocess.run(["Rscript", str(script), str(csv)], capture_output=True, text=True, check=True)
    cuminc_s, survfit_s = (float(x) for x in out.stdout.split())
    version = subprocess.run(["Rscript", "-e", "cat(R.version.string, as.character(packageVersion('survival')),"
                              "as.character(packageVersion('cmprsk')))"], capture_output=True, text=True).stdout
    return {"cuminc_seconds": cuminc_s, "survfit_multistate_seconds": survfit_s, "versions": version.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--r", action="store_true", help="also time cmprsk::cuminc and survfit in Rscript")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "competing.json"))
    args = parser.parse_args()
    df = make_data(args.rows)
    t = df["time"].to_numpy()

    def baseline():
        _, counts = np.unique(t, return_counts=True)
        np.cumsum(counts[::-1])

    _, base = timed(baseline, args.repeats)
    cases = {
        "cumulative_incidence (4 groups)": lambda: cumulative_incidence(df, "time", "status", "group"),
        "cumulative_incidence, no group": lambda: cumulative_incidence(df, "time", "status"),
        "cumulative_incidence, delayed entry (4 groups)":
            lambda: cumulative_incidence(df, "time", "status", "group", entry="entry"),
        "gray_test, 3 causes (4 groups)": lambda: gray_test(df, "time", "status", "group", cause=None),
    }
    try:
        from neutrostats.stats.survival import kaplan_meier

        km_df = df.assign(dead=(df["status"] > 0).astype(np.int64))
        cases["kaplan_meier (4 groups), neutrostats.stats.survival"] = lambda: kaplan_meier(km_df, "time", "dead", "group")
    except ImportError:
        pass
    results = {
        "rows": args.rows, "groups": len(TIERS), "distinct_times": int(np.unique(t).size),
        "repeats": args.repeats, "python": platform.python_version(), "numpy": np.__version__,
        "pandas": pd.__version__, "baseline": "np.unique(time, return_counts=True) + np.cumsum",
        "baseline_seconds": base, "cases": {},
    }
    print(f"baseline (np.unique + cumsum): {base:.4f} s")
    for name, fn in cases.items():
        first, sec = timed(fn, args.repeats)
        results["cases"][name] = {"seconds_first": first, "seconds_median": sec, "ratio_to_baseline": sec / base}
        print(f"{name:50s} {sec:6.3f} s (first {first:6.3f})  ratio {sec / base:6.1f}x")
    if args.r:
        r = time_r(df)
        if r is not None:
            ours = results["cases"]["cumulative_incidence (4 groups)"]["seconds_median"]
            r["neutrostats_cumulative_incidence_over_cuminc"] = ours / r["cuminc_seconds"]
            r["neutrostats_cumulative_incidence_over_survfit"] = ours / r["survfit_multistate_seconds"]
            results["r"] = r
            print(f"R cuminc {r['cuminc_seconds']:.2f} s, survfit (multi-state) {r['survfit_multistate_seconds']:.2f} s")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
