"""Wall time of the README's first command, ``neutrostats report --demo --out report``, step by step; Firth per outcome.

Two measurements:

* the demo command as whole processes (import, analysis of the bundled
  20,000-person sample, every output written), ``--runs`` runs after one
  warm-up round. Each process runs ``neutrostats.cli.main`` exactly as the
  command does, through a small driver that also records, inside the
  process, the import time (``neutrostats.cli`` and what ``report`` imports
  before it reads anything: matplotlib, ``neutrostats.report``,
  ``neutrostats.synthetic``) and the report's own step times
  (``Report.timings``: read, cohort, ..., figures, write; modules imported
  inside a step, e.g. statsmodels and scipy.stats in the odds ratios, count
  in that step). Outside, it records the process's wall seconds and CPU
  seconds (user + system, all threads). With ``--baseline DIR`` (a folder
  holding an older ``neutrostats`` package, e.g. a ``git worktree add`` of
  HEAD) the two run in turn, old new old new ..., so that a drifting machine
  load hits both alike; the ratio new/old is taken run by run and its
  median reported;
* the Firth odds ratios of every outcome, ``odds_ratios_by_tier(t, o,
  method="firth", adjust=["age_at_index", "sex"])`` on the sample's cohort
  (profile penalised-likelihood intervals), median of ``--repeats`` calls
  in this process (``--skip-firth`` leaves it out).

Usage::

    python benchmarks/bench_demo.py [--runs 5] [--baseline /path/to/old/checkout] [--repeats 3] [--skip-firth]

Writes ``benchmarks/results/demo.json``. Quote medians and ratios, with the
load average it records: on a shared machine single times mean little.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

# Runs the command in the measured process and writes what it saw to $BENCH_DEMO_OUT.
DRIVER = r"""
import json, os, sys, time
t0, c0 = time.perf_counter(), time.process_time()
from neutrostats.cli import main
# What `neutrostats report` imports before it reads anything (neutrostats.cli._report).
import matplotlib
import neutrostats.report, neutrostats.report.documents, neutrostats.synthetic
imports = (time.perf_counter() - t0, time.process_time() - c0)
scipy_stats_at_start = "scipy.stats" in sys.modules
import neutrostats.report as report_package
steps = {}
real = report_package.run_report
def run_report(*args, **kwargs):
    report = real(*args, **kwargs)
    steps.update(report.timings)
    return report
report_package.run_report = run_report
# The program as `neutrostats` runs it: its console entry point where the checkout has one (it also
# prepares the interpreter's exit), else main.
import neutrostats.cli as cli
code = cli.console() if hasattr(cli, "console") else main(sys.argv[1:])
with open(os.environ["BENCH_DEMO_OUT"], "w") as fh:
    json.dump({"code": code, "imports_wall": imports[0], "imports_cpu": imports[1],
               "inside_wall": time.perf_counter() - t0, "inside_cpu": time.process_time() - c0,
               "scipy_stats_imported_at_start": scipy_stats_at_start, "steps": steps}, fh)
"""


def _run(pythonpath: str | None, out: Path) -> dict:
    """One demo process: its wall and CPU seconds and what the driver recorded inside it."""
    env = dict(os.environ)
    # An installed package has its .pyc files: let the warm-up round write them (else every run compiles
    # neutrostats from source, about 0.5 s of CPU that no user pays).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    env["BENCH_DEMO_OUT"] = str(out.with_suffix(".json"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", DRIVER, "report", "--demo", "--out", str(out)], env=env, check=True,
                   cwd=out.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    inside = json.loads(out.with_suffix(".json").read_text())
    if inside["code"] != 0:
        raise RuntimeError(f"the demo command failed (exit code {inside['code']})")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, **inside}


def _summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def _medians(runs: list[dict]) -> dict:
    steps = list(dict.fromkeys(k for r in runs for k in r["steps"]))
    return {
        "wall": _summary([r["wall"] for r in runs]),
        "cpu": _summary([r["cpu"] for r in runs]),
        "imports_wall_median": statistics.median(r["imports_wall"] for r in runs),
        "imports_cpu_median": statistics.median(r["imports_cpu"] for r in runs),
        # Interpreter start-up and exit: the process's wall time not spent inside the driver.
        "startup_and_exit_wall_median": statistics.median(r["wall"] - r["inside_wall"] for r in runs),
        "steps_wall_median": {s: statistics.median(r["steps"].get(s, 0.0) for r in runs) for s in steps},
        "scipy_stats_imported_at_start": runs[0]["scipy_stats_imported_at_start"],
        "runs": runs,
    }


def demo_runs(runs: int, baseline: str | None) -> dict:
    commands = {"new": None} if baseline is None else {"old": baseline, "new": None}
    got: dict[str, list[dict]] = {k: [] for k in commands}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs + 1):  # the first round warms the file cache and writes the .pyc files
            for name, path in commands.items():
                result = _run(path, Path(tmp) / f"{name}{i}")
                if i:
                    got[name].append(result)
    out: dict = {k: _medians(v) for k, v in got.items()}
    if baseline is not None:
        pairs = list(zip(got["new"], got["old"]))
        for m in ("wall", "cpu", "imports_wall", "imports_cpu"):
            out[f"ratio_new_to_old_{m}"] = _summary([n[m] / o[m] for n, o in pairs])
        for step in ("figures", "write"):
            out[f"ratio_new_to_old_{step}"] = _summary([n["steps"][step] / o["steps"][step] for n, o in pairs])
    return out


def firth_times(repeats: int) -> dict[str, dict[str, float]]:
    import neutrostats as ns
    from neutrostats.cohort.icd10 import DEFAULT_OUTCOMES
    from neutrostats.synthetic import load_sample

    s = load_sample()
    t = ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths).table
    result = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # separation and data-quality warnings of the sample: expected
        ns.odds_ratios_by_tier(t, list(DEFAULT_OUTCOMES)[0], method="firth", adjust=["age_at_index", "sex"])
        for o in DEFAULT_OUTCOMES:
            wall, cpu = [], []
            for _ in range(repeats):
                c, w = time.process_time(), time.perf_counter()
                ns.odds_ratios_by_tier(t, o, method="firth", adjust=["age_at_index", "sex"])
                wall.append(time.perf_counter() - w)
                cpu.append(time.process_time() - c)
            result[o] = {"events": int(t[o].sum()), "wall_median": statistics.median(wall),
                         "cpu_median": statistics.median(cpu)}
    return result


def _print(result: dict) -> None:
    demo = result.get("demo", {})
    for name in ("old", "new"):
        if name in demo:
            d = demo[name]
            steps = ", ".join(f"{k} {v:.2f}" for k, v in d["steps_wall_median"].items())
            print(f"{name}: wall {d['wall']['median']:.2f} s, CPU {d['cpu']['median']:.2f} s (medians); imports "
                  f"{d['imports_wall_median']:.2f} s wall / {d['imports_cpu_median']:.2f} s CPU; steps (wall s): {steps}")
    for key in ("wall", "cpu", "imports_cpu", "figures", "write"):
        if f"ratio_new_to_old_{key}" in demo:
            print(f"ratio new/old {key}: median {demo[f'ratio_new_to_old_{key}']['median']:.3f}")
    print(f"load average (1, 5, 15 min) at the end: {result['load_average_1_5_15']}; {result['cpus']} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default=None, help="folder with the old neutrostats package (PYTHONPATH)")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-firth", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "demo.json"))
    args = parser.parse_args()
    import numpy as np
    import pandas as pd

    result: dict = {"command": "neutrostats report --demo --out <dir>", "runs": args.runs,
                    "load_average_1_5_15_at_start": list(os.getloadavg())}
    if not args.skip_demo:
        result["demo"] = demo_runs(args.runs, args.baseline)
    if not args.skip_firth:
        result["firth_per_outcome"] = firth_times(args.repeats)
    result["load_average_1_5_15"] = list(os.getloadavg())
    result["cpus"] = os.cpu_count()
    result["python"] = platform.python_version()
    result["numpy"] = np.__version__
    result["pandas"] = pd.__version__
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    _print(result)


if __name__ == "__main__":
    main()
