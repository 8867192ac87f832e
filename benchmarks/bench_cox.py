"""Speed of the Cox fit against R's ``coxph``, side by side in one run.

Data: 1,000,000 persons (seeded numpy), tiers 96/2/1.5/0.5 % with true
hazard ratios 1.2/1.5/3, age 18-90 (log HR 0.03 per year), sex (male log HR
0.3), exponential event times (0.02 per year for a 60-year-old woman in the
normal tier), uniform administrative censoring at 1-12 years, times in whole
days (so many ties). The data are written to a CSV in a temporary folder,
which both R and Python read; the timings cover the fit only, not the
reading:

* R: ``system.time(coxph(Surv(time, status) ~ tier + age + sex, ties = "efron"))``
  inside ``Rscript``;
* Python: ``cox_hazard_ratios(df, "time", "status", adjust=["age", "sex"])``
  (the public function, from the DataFrame) and ``cox_fit(time, status, X)``
  (the fitter, from arrays).

The coefficients must agree with R's to 1e-6 relative. Without ``Rscript``
the script says so and reports Python alone.

Usage::

    python benchmarks/bench_cox.py [--persons 1000000] [--repeats 3]

Writes ``benchmarks/results/cox.json``.
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

from neutrostats.stats.cox import cox_fit, cox_hazard_ratios

from _timing import timed

TIERS = ["normal", "subnormal", "mild", "moderate_severe"]
TERMS = ["subnormal", "mild", "moderate_severe", "age", "sex[M]"]

R_SCRIPT = r"""
suppressPackageStartupMessages({library(survival); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
d$tier <- factor(d$tier, levels = c("normal", "subnormal", "mild", "moderate_severe"))
d$sex <- factor(d$sex, levels = c("F", "M"))
reps <- as.integer(args[3])
secs <- numeric(0)
for (i in seq_len(reps + 1)) {
  tm <- system.time(fit <- coxph(Surv(time, status) ~ tier + age + sex, data = d, ties = "efron"))
  secs <- c(secs, tm[["elapsed"]])
}
write_json(list(first = secs[1], median = median(secs[-1]), seconds = secs, coef = unname(coef(fit)),
                se = unname(sqrt(diag(fit$var))), loglik = fit$loglik, iter = fit$iter,
                r_version = R.version.string, survival = as.character(packageVersion("survival"))),
           args[2], digits = NA, auto_unbox = TRUE)
"""


def make_data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tier = rng.choice(4, size=n, p=[0.96, 0.02, 0.015, 0.005])
    age = np.round(rng.uniform(18, 90, n), 1)
    male = rng.random(n) < 0.45
    lp = np.log([1.0, 1.2, 1.5, 3.0])[tier] + 0.03 * (age - 60) + 0.3 * male
    t_event = rng.exponential(1.0, n) / (0.02 * np.exp(lp))
    t_cens = rng.uniform(1, 12, n)
    days = np.ceil(np.minimum(t_event, t_cens) * 365.25).astype(np.int64)
    status = (t_event <= t_cens).astype(np.int64)
    return pd.DataFrame({"time": days, "status": status, "tier": np.array(TIERS)[tier], "age": age,
                         "sex": np.where(male, "M", "F")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "cox.json"))
    args = parser.parse_args()

    results: dict = {"persons": args.persons, "repeats": args.repeats, "seed": args.seed,
                     "model": "Surv(time, status) ~ tier (4 levels) + age + sex, ties = efron",
                     "python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
                     "machine": platform.machine(), "timing": "fit only (not reading); median of repeats after a first run"}
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "cox_bench.csv"
        make_data(args.persons, args.seed).to_csv(csv, index=False)
        df = pd.read_csv(csv)
        df["tier"] = pd.Categorical(df["tier"], categories=TIERS, ordered=True)
        results["events"] = int(df["status"].sum())
        results["distinct_event_times"] = int(df.loc[df["status"] == 1, "time"].nunique())

        codes = df["tier"].cat.codes.to_numpy()
        X = np.column_stack([(codes == k).astype(float) for k in (1, 2, 3)]
                            + [df["age"].to_numpy(float), (df["sex"] == "M").to_numpy(float)])
        time, status = df["time"].to_numpy(float), df["status"].to_numpy()

        first_hr, sec_hr = timed(lambda: cox_hazard_ratios(df, "time", "status", adjust=["age", "sex"]), args.repeats)
        first_fit, sec_fit = timed(lambda: cox_fit(time, status, X), args.repeats)
        hr = cox_hazard_ratios(df, "time", "status", adjust=["age", "sex"])
        fit = cox_fit(time, status, X)
        py_coef = np.log(hr.set_index("term").loc[TERMS, "estimate"].to_numpy())
        results["python_cox_hazard_ratios_seconds"] = sec_hr
        results["python_cox_fit_seconds"] = sec_fit
        results["python_first_run_seconds"] = {"cox_hazard_ratios": first_hr, "cox_fit": first_fit}
        results["python_iterations"] = fit.iterations
        results["python_coef"] = fit.coef.tolist()
        print(f"persons {args.persons:,}, events {results['events']:,}, "
              f"distinct event times {results['distinct_event_times']:,}")
        print(f"python cox_hazard_ratios {sec_hr:7.3f} s   cox_fit {sec_fit:7.3f} s   ({fit.iterations} iterations)")

        rscript = shutil.which("Rscript")
        if rscript is None:
            print("Rscript not found: R's coxph was not timed; Python figures only")
            results["r"] = None
            results["note"] = "Rscript not found; Python alone"
        else:
            script = Path(tmp) / "bench.R"
            script.write_text(R_SCRIPT, encoding="utf-8")
            rjson = Path(tmp) / "r.json"
            subprocess.run([rscript, str(script), str(csv), str(rjson), str(args.repeats)], check=True)
            r = json.loads(rjson.read_text(encoding="utf-8"))
            r_coef = np.asarray(r["coef"], dtype=float)
            rel_fit = float(np.max(np.abs(fit.coef - r_coef) / np.abs(r_coef)))
            rel_hr = float(np.max(np.abs(py_coef - r_coef) / np.abs(r_coef)))
            results["r"] = {"version": r["r_version"], "survival": r["survival"], "seconds_median": r["median"],
                            "seconds_first": r["first"], "seconds_all": r["seconds"], "iterations": r["iter"],
                            "coef": r["coef"]}
            results["max_rel_diff_coef"] = {"cox_fit": rel_fit, "cox_hazard_ratios": rel_hr}
            results["coef_agree_1e-6"] = bool(max(rel_fit, rel_hr) <= 1e-6)
            results["ratio_cox_hazard_ratios_to_r"] = sec_hr / r["median"]
            results["ratio_cox_fit_to_r"] = sec_fit / r["median"]
            print(f"R coxph                  {r['median']:7.3f} s   ({r['iter']} iterations)")
            print(f"ratio python/R: cox_hazard_ratios {sec_hr / r['median']:.3f}, cox_fit {sec_fit / r['median']:.3f}")
            print(f"max relative difference of coefficients: cox_fit {rel_fit:.1e}, cox_hazard_ratios {rel_hr:.1e}")
            if not results["coef_agree_1e-6"]:
                raise SystemExit("coefficients differ from R's by more than 1e-6 relative")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
