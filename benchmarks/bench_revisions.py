"""The same workloads on two revisions of neutrostats, in alternating fresh processes.

Used to show that a change (the layered layout of issue 17, for example) does
not slow the library down: each round runs one process on the base revision
(a git worktree) and one on the working tree, A B A B ..., on the same input
files, and the ratio head/base is taken pair by pair, so a drift in the
machine's speed cancels out. Inside a process each step is timed as the
median of ``--repeats`` runs after a warm-up run.

Steps: ``build_cohort``, crude (mid-p) and adjusted (logistic) odds ratios of
three outcomes, Firth's odds ratios with profile intervals (seconds per outcome), Cox hazard ratios of death by tier adjusted for age and sex,
and ``analyse`` (the whole report without writing files).

Usage::

    python benchmarks/bench_revisions.py --base de79a89 [--persons 60000] [--rounds 5]

Writes ``benchmarks/results/revisions.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in the child process, with the revision's tree first on sys.path. Only
# public names that exist on both sides are used.
CHILD = r"""
import json, statistics, sys, time, warnings
tree, folder, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, tree)
import pandas as pd
import neutrostats as ns
assert ns.__file__.startswith(tree), (ns.__file__, tree)
from neutrostats.report import ReportSettings, analyse
tables = {n: pd.read_parquet(f"{folder}/{n}.parquet") for n in ("labs", "persons", "diagnoses", "deaths")}
OUTCOMES = ["viral_infection", "hiv", "hematologic_malignancy"]

def timed(fn):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return statistics.median(times)

warnings.simplefilter("ignore")
out = {}
cohort = ns.build_cohort(tables["labs"], tables["persons"], tables["diagnoses"], tables["deaths"])
out["build_cohort"] = timed(lambda: ns.build_cohort(tables["labs"], tables["persons"], tables["diagnoses"],
                                                    tables["deaths"]))
t = cohort.table
outcomes = [o for o in OUTCOMES if o in t.columns]
out["odds_ratios_midp"] = timed(lambda: ns.odds_ratio_table(t, outcomes, method="midp"))
out["odds_ratios_logistic"] = timed(lambda: ns.odds_ratio_table(t, outcomes, method="logistic",
                                                                adjust=["age_at_index", "sex"]))
# Firth with profile penalised-likelihood intervals, seconds per outcome (issue 21: at most 0.25 s).
out["odds_ratios_firth_per_outcome"] = timed(lambda: [ns.odds_ratios_by_tier(
    t, o, method="firth", adjust=["age_at_index", "sex"]) for o in outcomes]) / len(outcomes)
surv = t[t["death_time"].notna()].assign(_time=lambda d: d["death_time"], _death=lambda d: d["death"].astype(int))
out["cox_hazard_ratios"] = timed(lambda: ns.cox_hazard_ratios(surv, "_time", "_death", "tier",
                                                              adjust=["age_at_index", "sex"]))
out["report_analyse"] = timed(lambda: analyse(tables["labs"], tables["persons"], tables["diagnoses"],
                                              tables["deaths"], ReportSettings(), progress=False))
import matplotlib.pyplot as plt
plt.close("all")
print(json.dumps(out))
"""


def _worktree(rev: str) -> Path:
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()
    path = Path(tempfile.gettempdir()) / f"neutrostats-{sha}"
    if not path.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), sha], cwd=ROOT, check=True,
                       capture_output=True)
    return path


def _run(tree: Path, folder: Path, repeats: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(folder), str(repeats)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--persons", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "revisions.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from neutrostats.synthetic import generate_cohort

    base = _worktree(args.base)
    with tempfile.TemporaryDirectory() as tmp:
        s = generate_cohort(n_persons=args.persons, progress=False)
        for name in ("labs", "persons", "diagnoses", "deaths"):
            getattr(s, name).to_parquet(Path(tmp) / f"{name}.parquet")
        rounds = []
        for i in range(args.rounds):
            a = _run(base, Path(tmp), args.repeats)
            b = _run(ROOT, Path(tmp), args.repeats)
            rounds.append({"base": a, "head": b})
            print(f"round {i + 1}: " + ", ".join(f"{k} {b[k] / a[k]:.3f}" for k in a), flush=True)
    steps = list(rounds[0]["base"])
    summary = {
        k: {
            "base_seconds_median": statistics.median(r["base"][k] for r in rounds),
            "head_seconds_median": statistics.median(r["head"][k] for r in rounds),
            "ratio_median": statistics.median(r["head"][k] / r["base"][k] for r in rounds),
            "ratio_min": min(r["head"][k] / r["base"][k] for r in rounds),
            "ratio_max": max(r["head"][k] / r["base"][k] for r in rounds),
        }
        for k in steps
    }
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    result = {"base": args.base, "head": head, "persons": args.persons, "rounds": args.rounds,
              "repeats": args.repeats, "steps": summary, "raw": rounds}
    for k, v in summary.items():
        print(f"{k:24s} base {v['base_seconds_median']:7.3f} s  head {v['head_seconds_median']:7.3f} s  "
              f"ratio {v['ratio_median']:.3f} ({v['ratio_min']:.3f}-{v['ratio_max']:.3f})")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
