"""Wall time of the README's first command, ``neutrostats report --demo --out report``, and of Firth per outcome.

Two measurements:

* the demo command as whole processes (import, analysis of the bundled
  20,000-person sample, every output written): wall seconds and the CPU
  seconds (user + system) of the process and its children, ``--runs``
  runs after one warm-up. With ``--baseline DIR`` (a copy of an older
  ``neutrostats`` package folder, e.g. from ``git worktree add``) the two
  are run in turn, A B A B ..., so that a drifting machine load hits both
  alike, and the ratio new/old is given run by run;
* the Firth odds ratios of every outcome, ``odds_ratios_by_tier(t, o,
  method="firth", adjust=["age_at_index", "sex"])`` on the sample's cohort
  (profile penalised-likelihood intervals), median of ``--repeats`` calls
  in this process.

Usage::

    python benchmarks/bench_demo.py [--runs 5] [--repeats 3] [--baseline /path/to/old/src]

``--baseline`` is a folder holding the old ``neutrostats`` package and a
``data`` folder beside it (the bundled sample is read from
``<folder>/data/synthetic``). Writes ``benchmarks/results/demo.json``.
Quote medians and ratios: on a shared machine single times mean little.
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

DEMO = ["-c", "import sys; from neutrostats.cli import main; sys.exit(main())", "report", "--demo"]


def _run(pythonpath: str | None, out: Path) -> tuple[float, float]:
    """(wall, cpu) seconds of one demo process."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *DEMO, "--out", str(out)], env=env, check=True, cwd=out.parent,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def demo_runs(runs: int, baseline: str | None) -> dict:
    commands = {"new": None} if baseline is None else {"old": baseline, "new": None}
    times: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in commands}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs + 1):  # the first round warms the file cache and the .pyc files
            for name, path in commands.items():
                wall, cpu = _run(path, Path(tmp) / f"{name}{i}")
                if i:
                    times[name]["wall"].append(wall)
                    times[name]["cpu"].append(cpu)
    out: dict = {k: {m: _summary(v) for m, v in t.items()} | {"runs_wall": t["wall"], "runs_cpu": t["cpu"]}
                 for k, t in times.items()}
    if baseline is not None:
        for m in ("wall", "cpu"):
            ratios = [a / b for a, b in zip(times["new"][m], times["old"][m])]
            out[f"ratio_new_to_old_{m}"] = _summary(ratios)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default=None, help="folder with the old neutrostats package (PYTHONPATH)")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "demo.json"))
    args = parser.parse_args()
    import numpy as np
    import pandas as pd

    result: dict = {"command": "neutrostats report --demo --out <dir>", "runs": args.runs}
    if not args.skip_demo:
        result["demo"] = demo_runs(args.runs, args.baseline)
    result["firth_per_outcome"] = firth_times(args.repeats)
    result["load_average_1_5_15"] = list(os.getloadavg())
    result["cpus"] = os.cpu_count()
    result["python"] = platform.python_version()
    result["numpy"] = np.__version__
    result["pandas"] = pd.__version__
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
