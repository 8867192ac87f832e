"""Speed of the Fine–Gray fit against the cause-specific Cox fit and R's ``cmprsk::crr``, in one run.

Data: the synthetic cohort of the other benchmarks (``generate_cohort(n_persons=373_820)``,
``build_cohort``), outcome haematological malignancy with death before it
competing (``hematologic_malignancy_time``/``_status``, prevalent persons
left out), model ``tier + age_at_index + sex``:

* ``fine_gray(df, time, status, adjust=["age_at_index", "sex"])`` (crr's
  variance, the default) and ``fine_gray_fit`` (the same, returning the fit);
* the cause-specific Cox fit on the same data,
  ``cox_hazard_ratios(df, time, status == 1, adjust=[...])`` (competing
  events censored; Efron ties, as its default);
* R: ``system.time(crr(time, status, X))`` in ``Rscript`` on a CSV of the same
  data. ``crr``'s variance (its Fortran ``crrvv``) loops over all pairs of
  persons, O(n^2), so it runs on a seeded subsample (``--r-persons``, default
  50,000) where the Python fit is timed again on the same rows; the
  coefficients agree to crr's own tolerance (its default gtol = 1e-6 stops
  ~1e-6..1e-5 relative short of the optimum).

The ratios are of medians measured in this one process (R in a child
process at the same time), so machine load affects both sides alike.

Usage::

    python benchmarks/bench_finegray.py [--persons 373820] [--r-persons 50000] [--repeats 3]

Writes ``benchmarks/results/finegray.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import neutrostats as ns
from neutrostats.stats.cox import cox_hazard_ratios
from neutrostats.stats.finegray import fine_gray, fine_gray_fit
from neutrostats.synthetic import generate_cohort

from _timing import timed

OUTCOME = "hematologic_malignancy"
TIME, STATUS = f"{OUTCOME}_time", f"{OUTCOME}_status"
ADJUST = ["age_at_index", "sex"]

R_SCRIPT = r"""
suppressPackageStartupMessages({library(cmprsk); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
d$tier <- factor(d$tier, levels = strsplit(args[3], ",")[[1]])
d$sex <- factor(d$sex)
X <- model.matrix(~ tier + age_at_index + sex, d)[, -1]
tm <- system.time(fit <- crr(d$time, d$status, X))
write_json(list(seconds = tm[["elapsed"]], coef = unname(fit$coef), se = unname(sqrt(diag(fit$var))),
                converged = fit$converged, r_version = R.version.string,
                cmprsk = as.character(packageVersion("cmprsk"))), args[2], digits = NA, auto_unbox = TRUE)
"""


def cohort_data(persons: int, seed: int) -> pd.DataFrame:
    s = generate_cohort(n_persons=persons, seed=seed, progress=False)
    t = ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths).table
    t = t.loc[~t[f"{OUTCOME}_prevalent"], [TIME, STATUS, "tier", *ADJUST]].reset_index(drop=True)
    t[STATUS] = t[STATUS].astype(np.int64)
    return t


def run_r(df: pd.DataFrame, tmp: Path) -> dict | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    csv, out, script = tmp / "fg.csv", tmp / "r.json", tmp / "fg.R"
    df.rename(columns={TIME: "time", STATUS: "status"}).to_csv(csv, index=False)
    script.write_text(R_SCRIPT)
    subprocess.run([rscript, str(script), str(csv), str(out), ",".join(map(str, df["tier"].cat.categories))],
                   check=True)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=373_820)
    parser.add_argument("--r-persons", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "finegray.json"))
    args = parser.parse_args()

    df = cohort_data(args.persons, args.seed)
    cs = df.assign(**{STATUS: (df[STATUS] == 1).astype(np.int64)})
    res: dict = {"persons": int(len(df)), "cohort_persons": args.persons, "seed": args.seed, "repeats": args.repeats,
                 "model": f"{TIME}/{STATUS} ~ tier + age_at_index + sex (cause 1, death competing)",
                 "events": int((df[STATUS] == 1).sum()), "competing": int((df[STATUS] == 2).sum()),
                 "python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
                 "machine": platform.machine(), "timing": "median of repeats after a first run",
                 "load_average_at_start": list(os.getloadavg())}
    _, fg = timed(lambda: fine_gray(df, TIME, STATUS, adjust=ADJUST), args.repeats)
    _, fgf = timed(lambda: fine_gray_fit(df, TIME, STATUS, adjust=ADJUST), args.repeats)
    _, cox = timed(lambda: cox_hazard_ratios(cs, TIME, STATUS, adjust=ADJUST), args.repeats)
    fit = fine_gray_fit(df, TIME, STATUS, adjust=ADJUST)
    res.update(fine_gray_seconds=fg, fine_gray_fit_seconds=fgf, cause_specific_cox_seconds=cox,
               ratio_fine_gray_to_cox=fg / cox, iterations=fit.iterations, coef=fit.coef.tolist(), names=fit.names)
    print(f"persons {len(df):,}: fine_gray {fg:.3f} s, cause-specific cox_hazard_ratios {cox:.3f} s, "
          f"ratio {fg / cox:.2f} ({fit.iterations} Newton steps)")

    sub = df.sample(n=min(args.r_persons, len(df)), random_state=args.seed).reset_index(drop=True)
    _, fg_sub = timed(lambda: fine_gray(sub, TIME, STATUS, adjust=ADJUST), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        r = run_r(sub, Path(tmp))
    res["subsample"] = {"persons": int(len(sub)), "fine_gray_seconds": fg_sub}
    if r is None:
        print("Rscript not found: R's crr not timed")
    else:
        sub_fit = fine_gray_fit(sub, TIME, STATUS, adjust=ADJUST)
        rel = float(np.max(np.abs(sub_fit.coef - np.asarray(r["coef"])) / np.abs(np.asarray(r["coef"]))))
        res["subsample"].update(crr_seconds=r["seconds"], ratio_crr_to_fine_gray=r["seconds"] / fg_sub,
                                max_rel_coef_difference=rel, r_version=r["r_version"], cmprsk=r["cmprsk"],
                                crr_converged=r["converged"])
        print(f"subsample {len(sub):,}: fine_gray {fg_sub:.3f} s, crr {r['seconds']:.1f} s, "
              f"crr / fine_gray {r['seconds'] / fg_sub:.0f}x, coefficients agree to {rel:.1e}")
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
