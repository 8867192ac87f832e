"""Firth odds ratios with profile penalised-likelihood intervals, per outcome, on the demo sample.

For each outcome of the bundled 20,000-person sample (``data/synthetic``)
this times ``odds_ratios_by_tier(t, o, method="firth", adjust=["age_at_index",
"sex"])`` (profile limits and penalised likelihood-ratio p-values of the
three tiers, as the report computes them) and, alone, the ``firth_logit``
call inside it; and once the report's whole odds-ratio step (crude, adjusted
logistic or Firth where a tier is separated, trend tests) for every outcome.
Wall and CPU seconds, medians of ``--repeats`` calls in one process.

With ``--baseline DIR`` (a folder holding an older ``neutrostats`` package,
e.g. ``git worktree add --detach ../base HEAD``) the measurement runs in
fresh processes, old and new in turn (old new old new ...), ``--runs``
rounds, so that a drifting machine load hits both alike; it prints the
ratio new/old per outcome (median over rounds of the per-round ratios) and
compares the results of the two: estimates, standard errors, limits and
p-values of the odds-ratio rows, and ``firth_logit`` with every coefficient
profiled, as the largest absolute and relative difference.

Usage::

    python benchmarks/bench_firth.py [--repeats 5] [--baseline /path/to/old/src --runs 3]

Writes ``benchmarks/results/firth.json``. Quote ratios: on a shared machine
single times mean little; the JSON records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ADJUST = ["age_at_index", "sex"]


def _median_times(fn, repeats: int) -> dict[str, float]:
    wall, cpu = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return {"wall": statistics.median(wall), "cpu": statistics.median(cpu)}


def measure(repeats: int) -> dict:
    """Times and results of the neutrostats on sys.path (run in a child process with --child)."""
    import numpy as np

    import neutrostats as ns
    from neutrostats.report import analysis
    from neutrostats.report.settings import ReportSettings
    from neutrostats.stats import firth
    from neutrostats.synthetic import load_sample

    settings = ReportSettings()
    outcomes = list(settings.outcome_codes)
    s = load_sample()
    t = ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths, outcomes=settings.outcome_codes).table
    designs = {}
    original = firth.firth_logit

    def recording(X, y, **kwargs):
        designs[current] = (np.asarray(X, dtype=float), np.asarray(y, dtype=float), kwargs)
        return original(X, y, **kwargs)

    out: dict = {"package": os.path.dirname(ns.__file__), "outcomes": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # separation and data-quality warnings of the sample: expected
        firth.firth_logit = recording  # odds_ratios_by_tier imports it from the module at each call
        try:
            for current in outcomes:
                rows = ns.odds_ratios_by_tier(t, current, method="firth", adjust=ADJUST)
                out["outcomes"][current] = {"events": int(t[current].sum()), "rows": {
                    str(r["group"]): [float(r[c]) for c in ("estimate", "std_error", "conf_low", "conf_high",
                                                             "p_value")]
                    for _, r in rows.iterrows() if not r["is_reference"]}}
        finally:
            firth.firth_logit = original
        for o in outcomes:
            X, y, kwargs = designs[o]
            entry = out["outcomes"][o]
            entry["design"] = list(X.shape)
            entry["odds_ratios_by_tier"] = _median_times(
                lambda: ns.odds_ratios_by_tier(t, o, method="firth", adjust=ADJUST), repeats)
            entry["firth_logit"] = _median_times(lambda: original(X, y, **kwargs), repeats)
            every = original(X, y, conf_level=kwargs.get("conf_level", 0.95))
            entry["all_profiled"] = {name: [float(v) for v in getattr(every, name)]
                                     for name in ("params", "bse", "conf_low", "conf_high", "pvalues")}
        out["report_odds_ratio_step"] = _median_times(lambda: analysis._odds_ratios(t, outcomes, settings),
                                                      max(1, repeats // 2))
    return out


def _child(pythonpath: str | None, repeats: int) -> dict:
    env = dict(os.environ)
    if pythonpath is None:
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    else:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run([sys.executable, __file__, "--child", "--repeats", str(repeats)], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def _differences(old: dict, new: dict) -> dict[str, float]:
    """Largest absolute and relative differences of every result value (NaN where both are NaN)."""
    import math

    worst_abs = worst_rel = 0.0
    where = ""
    for o, a in old["outcomes"].items():
        b = new["outcomes"][o]
        pairs = [(f"{o} {g} {i}", x, y) for g in a["rows"] for i, (x, y) in enumerate(zip(a["rows"][g], b["rows"][g]))]
        pairs += [(f"{o} all {k} {i}", x, y) for k in a["all_profiled"]
                  for i, (x, y) in enumerate(zip(a["all_profiled"][k], b["all_profiled"][k]))]
        for name, x, y in pairs:
            if math.isnan(x) and math.isnan(y):
                continue
            d = abs(x - y)
            if math.isnan(d):
                d = math.inf
            if d > worst_abs:
                worst_abs, where = d, name
            worst_rel = max(worst_rel, d / abs(x) if x else (0.0 if d == 0 else math.inf))
    return {"max_abs": worst_abs, "max_rel": worst_rel, "largest_at": where}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="calls per outcome, median")
    parser.add_argument("--runs", type=int, default=3, help="old/new process rounds with --baseline")
    parser.add_argument("--baseline", default=None, help="folder with the old neutrostats package (PYTHONPATH)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "firth.json"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.repeats)))
        return
    import numpy as np

    result: dict = {"what": "odds_ratios_by_tier(t, o, method='firth', adjust=['age_at_index', 'sex']) on the "
                            "bundled 20,000-person sample, per outcome; seconds are medians",
                    "repeats": args.repeats, "load_average_1_5_15_before": list(os.getloadavg())}
    if args.baseline is None:
        result["new"] = measure(args.repeats)
    else:
        rounds: dict[str, list[dict]] = {"old": [], "new": []}
        for _ in range(args.runs):
            rounds["old"].append(_child(args.baseline, args.repeats))
            rounds["new"].append(_child(None, args.repeats))
        result["runs"] = args.runs
        result["baseline"] = args.baseline
        per_outcome = {}
        for o in rounds["new"][0]["outcomes"]:
            entry = {}
            for what in ("odds_ratios_by_tier", "firth_logit"):
                for clock in ("wall", "cpu"):
                    old = [r["outcomes"][o][what][clock] for r in rounds["old"]]
                    new = [r["outcomes"][o][what][clock] for r in rounds["new"]]
                    entry[f"{what}_{clock}"] = {"old": statistics.median(old), "new": statistics.median(new),
                                                "ratio_new_to_old": statistics.median(
                                                    [b / a for a, b in zip(old, new)])}
            entry["events"] = rounds["new"][0]["outcomes"][o]["events"]
            per_outcome[o] = entry
        result["per_outcome"] = per_outcome
        step = {}
        for clock in ("wall", "cpu"):
            old = [r["report_odds_ratio_step"][clock] for r in rounds["old"]]
            new = [r["report_odds_ratio_step"][clock] for r in rounds["new"]]
            step[clock] = {"old": statistics.median(old), "new": statistics.median(new),
                           "ratio_new_to_old": statistics.median([b / a for a, b in zip(old, new)])}
        result["report_odds_ratio_step"] = step
        result["differences_old_vs_new"] = _differences(rounds["old"][0], rounds["new"][0])
        result["new"] = rounds["new"][0]
        result["old"] = rounds["old"][0]
        print(f"{'outcome':24s} {'events':>6s} {'old s':>7s} {'new s':>7s} {'new/old':>7s}  (odds_ratios_by_tier, wall)")
        for o, e in per_outcome.items():
            w = e["odds_ratios_by_tier_wall"]
            print(f"{o:24s} {e['events']:6d} {w['old']:7.3f} {w['new']:7.3f} {w['ratio_new_to_old']:7.2f}")
        w = step["wall"]
        print(f"report odds-ratio step, wall: old {w['old']:.3f} s, new {w['new']:.3f} s, "
              f"new/old {w['ratio_new_to_old']:.2f}")
        print("largest difference old vs new:", result["differences_old_vs_new"])
    result["load_average_1_5_15_after"] = list(os.getloadavg())
    result["cpus"] = os.cpu_count()
    result["python"] = platform.python_version()
    result["numpy"] = np.__version__
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.baseline is None:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
