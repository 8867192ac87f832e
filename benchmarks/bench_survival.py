"""Speed of Kaplan-Meier, the log-rank test and cumulative incidence on
1,000,000 rows, 4 tiers, against lifelines and against an older checkout.

Data (seeded): four tiers (96 %, 2 %, 1.5 %, 0.5 %), times rounded to days
(heavy ties, about 12,600 distinct), 70 % events. For cumulative incidence
the same tiers with event codes 0/1/2 (30/45/25 %), once on the day-rounded
times and once on times without ties.

What is timed, each a median of ``--repeats`` runs (at least 5), neutrostats
and lifelines alternated in one process:

* ``kaplan_meier(df, "time", "status", "tier")``, the whole table with
  Greenwood standard errors and log-log intervals, against lifelines doing
  the same work: one ``KaplanMeierFitter().fit`` per tier (its event table,
  survival function and the log-log interval it computes anyway) on arrays
  split per tier beforehand (the split not timed: the strictest
  comparison), and with the split timed (numpy masks on the tier codes).
* ``logrank_test(df, "time", "status", "tier")`` against
  ``lifelines.statistics.multivariate_logrank_test(time, tier, status)``.
* ``cumulative_incidence(df, "time", "code", "tier")`` (Aalen-Johansen with
  infinitesimal-jackknife standard errors and intervals) against one
  ``AalenJohansenFitter(calculate_variance=False).fit`` per tier, on the
  times without ties only: lifelines jitters tied times at random until none
  are tied (another estimate), and its variance is a Python loop over the
  distinct times (minutes for a million), so lifelines is timed without it
  and does less work than neutrostats here.

The estimates are compared too (KM survival and AJ incidence of the largest
tier, log-rank statistic), so that the same thing is timed.

``--baseline DIR`` (a checkout of older code, e.g. ``git worktree add
--detach /tmp/old HEAD~3``): the timing runs alternately in fresh processes
importing neutrostats from this tree and from DIR, ``--rounds`` times each,
and the ratios new / old are the medians of the per-round medians.

Also the previous figures: ``numpy.unique`` of the times with counts plus a
cumulative sum (the least any Kaplan-Meier must do), and, when ``Rscript``
with the survival package is available (skip with ``--no-r``), R's
``survfit`` and ``survdiff`` on the same data (timed inside R, reading
excluded).

lifelines is for this benchmark only, not a dependency of neutrostats. It
pins ``pandas<3``, so ``pip install lifelines`` would downgrade pandas;
install it without its pins::

    pip install --no-deps lifelines && pip install autograd autograd-gamma formulaic

Usage::

    python benchmarks/bench_survival.py [--rows 1000000] [--repeats 5] [--baseline DIR] [--rounds 3] [--no-r]

Writes ``benchmarks/results/survival.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from _timing import timed

TIERS = ["normal", "subnormal", "mild", "moderate_severe"]
HERE = Path(__file__).resolve().parent


def make_data(n: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(1)
    tier = pd.Categorical(rng.choice(TIERS, n, p=[0.96, 0.02, 0.015, 0.005]), categories=TIERS, ordered=True)
    t = np.round(rng.exponential(5, n) * 365) / 365 + 1 / 365
    e = rng.random(n) < 0.7
    km = pd.DataFrame({"time": t, "status": e.astype(int), "tier": tier})
    code = rng.choice([0, 1, 2], n, p=[0.3, 0.45, 0.25])
    untied = rng.exponential(5, n)
    return {"km": km,
            "ci_tied": pd.DataFrame({"time": t, "code": code, "tier": tier}),
            "ci_untied": pd.DataFrame({"time": untied, "code": code, "tier": tier})}


def _alternate(fns: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each function, run in turn ``repeats`` times after one warm-up each."""
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def measure(rows: int, repeats: int) -> dict:
    """One process's timings (neutrostats from sys.path, lifelines if installed) and agreement checks."""
    import neutrostats as ns

    data = make_data(rows)
    df, tied, untied = data["km"], data["ci_tied"], data["ci_untied"]
    t, e = df["time"].to_numpy(), df["status"].to_numpy().astype(bool)
    codes = df["tier"].cat.codes.to_numpy()
    out: dict = {"neutrostats_file": ns.__file__}
    try:
        from lifelines import AalenJohansenFitter, KaplanMeierFitter
        from lifelines.statistics import multivariate_logrank_test
        import lifelines
        out["lifelines"] = lifelines.__version__
    except ImportError:
        out["lifelines"] = None
    split = [(t[codes == i], e[codes == i]) for i in range(len(TIERS))]
    ut, uc = untied["time"].to_numpy(), untied["code"].to_numpy()
    usplit = [(ut[codes == i], uc[codes == i]) for i in range(len(TIERS))]
    fns = {
        "kaplan_meier": lambda: ns.kaplan_meier(df, "time", "status", "tier"),
        "logrank_test": lambda: ns.logrank_test(df, "time", "status", "tier"),
        "cumulative_incidence_tied": lambda: ns.cumulative_incidence(tied, "time", "code", "tier"),
        "cumulative_incidence_untied": lambda: ns.cumulative_incidence(untied, "time", "code", "tier"),
    }
    if out["lifelines"]:
        fns["lifelines_km_presplit"] = lambda: [KaplanMeierFitter().fit(a, b) for a, b in split]
        fns["lifelines_km_split"] = lambda: [
            KaplanMeierFitter().fit(t[m], e[m]) for m in (codes == i for i in range(len(TIERS)))]
        fns["lifelines_logrank"] = lambda: multivariate_logrank_test(df["time"], df["tier"], df["status"])
        fns["lifelines_aj_untied"] = lambda: [
            AalenJohansenFitter(calculate_variance=False).fit(a, b, event_of_interest=1) for a, b in usplit]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' FutureWarnings under pandas 3
        # kaplan_meier and its lifelines counterparts in one round, log-rank in the next, and so on:
        # each pair is alternated run by run under the same load.
        groups = [["kaplan_meier", "lifelines_km_presplit", "lifelines_km_split"],
                  ["logrank_test", "lifelines_logrank"],
                  ["cumulative_incidence_tied"],
                  ["cumulative_incidence_untied", "lifelines_aj_untied"]]
        secs: dict[str, float] = {}
        for g in groups:
            secs.update(_alternate({k: fns[k] for k in g if k in fns}, repeats))
        out["seconds"] = secs
        if out["lifelines"]:
            km = ns.kaplan_meier(df, "time", "status", "tier")
            km0 = km[km["group"] == TIERS[0]]
            kmf = KaplanMeierFitter().fit(*split[0])
            ll_s = kmf.survival_function_.iloc[:, 0].to_numpy()
            ll_lo = kmf.confidence_interval_.iloc[:, 0].to_numpy()
            lr = ns.logrank_test(df, "time", "status", "tier").statistic
            ll_lr = multivariate_logrank_test(df["time"], df["tier"], df["status"]).test_statistic
            ci = ns.cumulative_incidence(untied, "time", "code", "tier")
            aj = AalenJohansenFitter(calculate_variance=False).fit(*usplit[0], event_of_interest=1)
            out["agreement"] = {
                "km_estimate_max_abs_diff": float(np.max(np.abs(km0["estimate"].to_numpy() - ll_s))),
                "km_conf_low_max_abs_diff": float(np.nanmax(np.abs(km0["conf_low"].to_numpy() - ll_lo))),
                "logrank_statistic_rel_diff": float(abs(lr / ll_lr - 1)),
                "aj_estimate_max_abs_diff": float(np.max(np.abs(
                    ci[ci["group"] == TIERS[0]]["estimate"].to_numpy()
                    - aj.cumulative_density_.iloc[:, 0].to_numpy()))),
            }
    return out


def _worker_run(tree: Path, args) -> dict:
    """``measure`` in a fresh process importing neutrostats from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--rows", str(args.rows),
           "--repeats", str(args.repeats)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(res.stdout.strip().splitlines()[-1])


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", help="a checkout of older code to time alternately (fresh processes)")
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline: processes per tree")
    parser.add_argument("--no-r", action="store_true", help="do not time R's survfit/survdiff")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results" / "survival.json"))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.rows, args.repeats)))
        return
    load_before = _loadavg()
    tree = HERE.parent
    runs: dict[str, list[dict]] = {"new": [], "old": []}
    if args.baseline:
        for _ in range(args.rounds):
            runs["new"].append(_worker_run(tree, args))
            runs["old"].append(_worker_run(Path(args.baseline).resolve(), args))
    else:
        sys.path.insert(0, str(tree))
        runs["new"].append(measure(args.rows, args.repeats))
    med = {side: {k: statistics.median(r["seconds"][k] for r in rs) for k in rs[0]["seconds"]}
           for side, rs in runs.items() if rs}
    new = med["new"]
    df = make_data(args.rows)["km"]
    t = df["time"].to_numpy()
    _, base = timed(lambda: np.cumsum(np.unique(t, return_counts=True)[1]), args.repeats)
    result: dict = {
        "rows": args.rows, "groups": len(TIERS), "distinct_times": int(np.unique(t).size),
        "repeats": args.repeats, "python": platform.python_version(), "numpy": np.__version__,
        "pandas": pd.__version__, "lifelines": runs["new"][0]["lifelines"],
        "loadavg_before": load_before, "loadavg_after": _loadavg(), "cpu_count": os.cpu_count(),
        "baseline": "numpy.unique(time, return_counts=True) + cumsum", "baseline_seconds": base,
        "kaplan_meier_seconds": new["kaplan_meier"], "kaplan_meier_ratio_to_baseline": new["kaplan_meier"] / base,
        "logrank_seconds": new["logrank_test"],
        "cumulative_incidence_tied_seconds": new["cumulative_incidence_tied"],
        "cumulative_incidence_untied_seconds": new["cumulative_incidence_untied"],
    }
    lines = [f"{args.rows:,} rows, 4 tiers; load {load_before}",
             f"kaplan_meier {new['kaplan_meier']:.3f} s ({new['kaplan_meier'] / base:.1f}x numpy baseline {base:.3f} s)"]
    if result["lifelines"]:
        # per process: the ratio of the two alternated medians, then the median over processes
        ratio = lambda a, b: statistics.median(r["seconds"][a] / r["seconds"][b] for r in runs["new"])  # noqa: E731
        result["vs_lifelines"] = {
            "kaplan_meier_over_lifelines_presplit": ratio("kaplan_meier", "lifelines_km_presplit"),
            "kaplan_meier_over_lifelines_split_timed": ratio("kaplan_meier", "lifelines_km_split"),
            "logrank_over_multivariate_logrank_test": ratio("logrank_test", "lifelines_logrank"),
            "cumulative_incidence_untied_over_aalen_johansen_no_variance":
                ratio("cumulative_incidence_untied", "lifelines_aj_untied"),
            "lifelines_seconds": {k: v for k, v in new.items() if k.startswith("lifelines")},
            "agreement": runs["new"][0].get("agreement"),
        }
        v = result["vs_lifelines"]
        lines += [
            f"  / lifelines KaplanMeierFitter per tier: {v['kaplan_meier_over_lifelines_presplit']:.2f}x "
            f"(arrays split beforehand), {v['kaplan_meier_over_lifelines_split_timed']:.2f}x (split timed)",
            f"logrank_test {new['logrank_test']:.3f} s; / multivariate_logrank_test "
            f"{v['logrank_over_multivariate_logrank_test']:.2f}x",
            f"cumulative_incidence {new['cumulative_incidence_tied']:.3f} s (tied), "
            f"{new['cumulative_incidence_untied']:.3f} s (untied); untied / AalenJohansenFitter without variance "
            f"{v['cumulative_incidence_untied_over_aalen_johansen_no_variance']:.2f}x",
            f"agreement with lifelines: {v['agreement']}",
        ]
    else:
        lines.append("lifelines not installed: pip install --no-deps lifelines && pip install autograd "
                     "autograd-gamma formulaic")
    if "old" in med:
        result["vs_baseline_tree"] = {
            "baseline": str(args.baseline), "rounds": args.rounds,
            "old_seconds": {k: v for k, v in med["old"].items() if not k.startswith("lifelines")},
            "new_over_old": {k: new[k] / med["old"][k] for k in med["old"] if not k.startswith("lifelines")},
            "files": [runs["new"][0]["neutrostats_file"], runs["old"][0]["neutrostats_file"]],
        }
        lines.append("new / old (" + str(args.baseline) + "): " + ", ".join(
            f"{k} {v:.2f}x ({med['old'][k]:.3f} -> {new[k]:.3f} s)"
            for k, v in result["vs_baseline_tree"]["new_over_old"].items()))
    if shutil.which("Rscript") and not args.no_r:
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
                km_s, lr_s = new["kaplan_meier"], new["logrank_test"]
                result.update(r_survfit_seconds=r_km, r_survdiff_seconds=r_lr,
                              ratio_to_r_survfit=km_s / r_km, ratio_to_r_survdiff=lr_s / r_lr)
                lines.append(f"R survfit {r_km:.3f} s (ratio {km_s / r_km:.2f}); "
                             f"R survdiff {r_lr:.3f} s (ratio {lr_s / r_lr:.2f})")
    print("\n".join(lines))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
