"""The whole report against its R equivalent, as whole processes, side by side.

Issue 21's target: ``neutrostats report`` on the 373,820-person cohort in at
most 0.30x the wall time of the R baseline and at most 1.0x its peak memory.
The R baseline is ``shared/bench/e2e_report.R`` beside the repository (it is
not part of the project; read its header for what it leaves out: mid-p crude
ORs, trend tests, Firth, SMDs, at-risk tables, flow accounting, figures and
HTML). It needs ``Rscript`` with the R packages data.table, survival and
cmprsk (Debian: ``apt-get install r-base-core r-cran-data.table
r-cran-survival r-cran-cmprsk``).

What it does:

* writes the synthetic cohort once as gzip-compressed CSV with
  ``neutrostats synth`` (``--data``; reused when its ``manifest.json`` says
  the same number of persons and seed);
* runs ``neutrostats report --labs ... --persons ... --diagnoses ...
  --deaths ... --out DIR`` and ``Rscript e2e_report.R IN OUT`` in turn
  (``--repeats`` times each, alternating, so that a drifting machine load
  hits both alike), each a fresh process;
* per run: wall time, peak resident memory of the whole process tree
  (sampled from ``/proc`` every ``--interval`` seconds; R runs as a shell
  script that starts the R binary), its proportional set size (PSS: pages
  shared by a forked child counted once, as the report forks to draw
  figures; RSS sums count them twice), the kernel's peak RSS of the largest
  process (``wait4``), the load average before and after, per-step seconds
  (R prints them as JSON; ``neutrostats report`` prints them to 0.1 s on its
  last line), and for neutrostats the SHA-256 of ``results.json`` (the same
  inputs must give the same bytes, run after run and commit after commit);
* the medians and the ratios neutrostats / R, printed and written to
  ``benchmarks/results/e2e.json``.

``--code FOLDER`` runs the neutrostats side from another checkout (e.g. a
``git worktree`` of main after the other changes are merged, or of the
commit before a change) by putting it first on ``PYTHONPATH``.

Usage::

    python benchmarks/bench_e2e.py [--persons 373820] [--repeats 3] [--data DIR]
                                   [--code FOLDER] [--r-script PATH] [--out benchmarks/results/e2e.json]

Quote ratios of medians, with the load: the machine is shared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TABLES = ("labs", "persons", "diagnoses", "deaths")
#: The report's steps as the R script's steps (the rest of the report has no R counterpart).
R_STEPS = ("read", "cohort", "table 1", "odds ratios", "survival", "cox", "competing risks", "write")


def _tree_rss(pid: int, *, pss: bool = False) -> int:
    """Resident bytes of a process and all its descendants (as benchmarks/bench_spark.py).

    With ``pss``, the proportional set size instead (``/proc/PID/smaps_rollup``): a page shared by n
    processes counts 1/n in each, so a forked child (the report draws figures in one) is not counted
    again for the pages it shares with its parent, as it is in the sum of RSS.
    """
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * page
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += _pss(p) if pss else rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _load() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def run_measured(cmd: list[str], env: dict[str, str], interval: float, logs: Path) -> dict:
    """Run ``cmd`` in ``logs``; wall seconds, sampled peak tree RSS and the kernel's peak RSS (MiB), its stdout.

    The working directory is ``logs``, not the caller's: ``python -m`` puts it first on ``sys.path``,
    ahead of ``PYTHONPATH``, so from a checkout it would import that checkout whatever ``--code`` says.
    """
    load_before = _load()
    with open(logs / "stdout.txt", "w") as out, open(logs / "stderr.txt", "w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=logs)
        peak = [0, 0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss(proc.pid))
                peak[1] = max(peak[1], _tree_rss(proc.pid, pss=True))
                done.wait(interval)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        # wait4 reaps the child with its resource usage (ru_maxrss: the largest process of its tree).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        thread.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{(logs / 'stderr.txt').read_text()[-3000:]}")
    return {"wall_seconds": wall, "peak_tree_rss_mb": peak[0] / 2**20, "peak_tree_pss_mb": peak[1] / 2**20,
            "maxrss_mb": usage.ru_maxrss / 2**10,
            "cpu_seconds": usage.ru_utime + usage.ru_stime, "load_before": load_before, "load_after": _load(),
            "stdout": (logs / "stdout.txt").read_text()}


def _report_steps(stdout: str) -> dict[str, float]:
    """The step seconds of ``neutrostats report``'s last line: ``analysed N persons in T s (read 1.2 s, ...)``."""
    line = next((x for x in reversed(stdout.splitlines()) if x.startswith("analysed ")), None)
    if line is None:
        raise SystemExit(f"neutrostats report printed no 'analysed ...' line:\n{stdout[-2000:]}")
    inner = line[line.index("(") + 1: line.index(")")]
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"([a-z][a-z0-9 ]*?) (\d+(?:\.\d+)?) s", inner)}


def ensure_inputs(folder: Path, persons: int, env: dict[str, str]) -> dict:
    """Write the cohort as csv.gz with ``neutrostats synth`` unless ``folder`` holds it already."""
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("persons") == persons and all((folder / f"{t}.csv.gz").exists() for t in TABLES):
            return manifest
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "neutrostats", "synth", "--persons", str(persons), "--out",
                    str(folder.resolve()), "--quiet"], env=env, check=True, cwd=tempfile.gettempdir())
    manifest = {"persons": persons, "seed": "default", "written_by": "neutrostats synth", "seconds": time.perf_counter() - t,
                "sha256": {t_: hashlib.sha256((folder / f"{t_}.csv.gz").read_bytes()).hexdigest() for t_ in TABLES}}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=373_820)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each side, alternating (medians reported)")
    ap.add_argument("--data", default=None,
                    help="folder for the input files (default: <tmp>/neutrostats-e2e-<persons>; reused)")
    ap.add_argument("--code", default=None, help="neutrostats checkout to run the report from (default: this one)")
    ap.add_argument("--r-script", default=str(REPO.parent / "shared" / "bench" / "e2e_report.R"),
                    help="the R baseline (default: ../shared/bench/e2e_report.R from the repository root)")
    ap.add_argument("--rscript", default="Rscript", help="the Rscript executable")
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between memory samples")
    ap.add_argument("--keep", action="store_true", help="keep the last run's outputs in <data>/out-*")
    ap.add_argument("--out", default=str(HERE / "results" / "e2e.json"))
    args = ap.parse_args(argv)
    r_script = Path(args.r_script).resolve()
    if not r_script.exists():
        raise SystemExit(f"R baseline {r_script} not found; pass --r-script PATH/e2e_report.R")
    if shutil.which(args.rscript) is None:
        raise SystemExit(f"{args.rscript} not found; install R (r-base-core) with data.table, survival and cmprsk")
    code = str(Path(args.code).resolve()) if args.code else str(REPO)
    env = dict(os.environ)
    env["PYTHONPATH"] = code + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    data = (Path(args.data) if args.data else Path(tempfile.gettempdir()) / f"neutrostats-e2e-{args.persons}").resolve()
    manifest = ensure_inputs(data, args.persons, env)
    files = {t: data / f"{t}.csv.gz" for t in TABLES}
    work = Path(tempfile.mkdtemp(prefix="neutrostats-e2e-out-"))
    # Which checkout the report really runs from (the same interpreter, environment and working directory).
    imported = subprocess.run([sys.executable, "-c", "import neutrostats; print(neutrostats.__file__)"], env=env,
                              cwd=work, check=True, capture_output=True, text=True).stdout.strip()
    py_cmd = [sys.executable, "-m", "neutrostats", "report",
              *[x for t in TABLES for x in (f"--{t}", str(files[t]))]]
    runs: dict[str, list[dict]] = {"neutrostats": [], "R": []}
    try:
        for i in range(args.repeats):
            for side in ("neutrostats", "R"):
                out = work / f"{side}-{i}"
                if side == "neutrostats":
                    got = run_measured([*py_cmd, "--out", str(out)], env, args.interval, work)
                    got["steps"] = _report_steps(got["stdout"])
                    got["results_sha256"] = hashlib.sha256((out / "results.json").read_bytes()).hexdigest()
                else:
                    got = run_measured([args.rscript, str(r_script), str(data), str(out)], env, args.interval, work)
                    got["steps"] = json.loads(got["stdout"].strip().splitlines()[-1])
                got.pop("stdout")
                runs[side].append(got)
                print(f"{side:11s} run {i + 1}: {got['wall_seconds']:6.1f} s, peak {got['peak_tree_rss_mb']:6.0f} MB "
                      f"(load {got['load_before'][0]:.1f} -> {got['load_after'][0]:.1f})", file=sys.stderr, flush=True)
                if args.keep and i == args.repeats - 1:
                    shutil.copytree(out, data / f"out-{side}", dirs_exist_ok=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(side: str, key: str) -> float:
        return _median([r[key] for r in runs[side]])

    def step_med(side: str, name: str) -> float | None:
        values = [r["steps"][name] for r in runs[side] if name in r["steps"]]
        return _median(values) if values else None

    py_steps = sorted({k for r in runs["neutrostats"] for k in r["steps"]},
                      key=lambda k: list(runs["neutrostats"][0]["steps"]).index(k)
                      if k in runs["neutrostats"][0]["steps"] else 99)
    steps = {}
    for name in dict.fromkeys([*R_STEPS, *py_steps]):
        a, b = step_med("neutrostats", name), step_med("R", name)
        steps[name] = {"neutrostats": a, "R": b, "ratio": a / b if a is not None and b else None}
    py_other = [r["wall_seconds"] - sum(r["steps"].values()) for r in runs["neutrostats"]]
    r_other = [r["wall_seconds"] - r["steps"]["total"] for r in runs["R"]]
    steps["start-up and the rest (wall - steps)"] = {"neutrostats": _median(py_other), "R": _median(r_other),
                                                     "ratio": None}
    hashes = sorted({r["results_sha256"] for r in runs["neutrostats"]})
    report = {
        "benchmark": "neutrostats report vs shared/bench/e2e_report.R, whole processes, alternating",
        "persons": args.persons,
        "inputs": {"folder": str(data), **manifest},
        "neutrostats_code": code,
        "neutrostats_imported_from": imported,
        "repeats": args.repeats,
        "wall_seconds": {"neutrostats": med("neutrostats", "wall_seconds"), "R": med("R", "wall_seconds")},
        "peak_tree_rss_mb": {"neutrostats": med("neutrostats", "peak_tree_rss_mb"), "R": med("R", "peak_tree_rss_mb")},
        "peak_tree_pss_mb": {"neutrostats": med("neutrostats", "peak_tree_pss_mb"), "R": med("R", "peak_tree_pss_mb")},
        "maxrss_mb": {"neutrostats": med("neutrostats", "maxrss_mb"), "R": med("R", "maxrss_mb")},
        "ratio_wall": med("neutrostats", "wall_seconds") / med("R", "wall_seconds"),
        "ratio_peak_memory": med("neutrostats", "peak_tree_rss_mb") / med("R", "peak_tree_rss_mb"),
        "ratio_peak_pss": med("neutrostats", "peak_tree_pss_mb") / med("R", "peak_tree_pss_mb"),
        "ratio_maxrss": med("neutrostats", "maxrss_mb") / med("R", "maxrss_mb"),
        "target": {"wall": 0.30, "peak_memory": 1.0},
        "steps_seconds_median": steps,
        "results_json_sha256": hashes,
        "results_json_identical_across_runs": len(hashes) == 1,
        "runs": runs,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"neutrostats from {imported}")
    print(f"{args.persons:,} persons, {args.repeats} alternating runs each; load "
          f"{min(r['load_before'][0] for s in runs.values() for r in s):.1f}-"
          f"{max(r['load_after'][0] for s in runs.values() for r in s):.1f}")
    print(f"wall: neutrostats {report['wall_seconds']['neutrostats']:.1f} s, R {report['wall_seconds']['R']:.1f} s, "
          f"ratio {report['ratio_wall']:.2f} (target <= 0.30)")
    print(f"peak memory (process tree): neutrostats {report['peak_tree_rss_mb']['neutrostats']:.0f} MB, "
          f"R {report['peak_tree_rss_mb']['R']:.0f} MB, ratio {report['ratio_peak_memory']:.2f} (target <= 1.0)")
    print(f"  proportional (PSS, shared pages once): ratio {report['ratio_peak_pss']:.2f}; "
          f"largest process (ru_maxrss): ratio {report['ratio_maxrss']:.2f}")
    print(f"{'step':38s} {'neutrostats':>11s} {'R':>7s} {'ratio':>6s}")
    for name, s in steps.items():
        fmt = lambda v: f"{v:7.1f}" if v is not None else "      -"  # noqa: E731
        ratio = f"{s['ratio']:6.2f}" if s["ratio"] is not None else "     -"
        print(f"{name:38s} {fmt(s['neutrostats']):>11s} {fmt(s['R'])} {ratio}")
    print(f"results.json identical across runs: {report['results_json_identical_across_runs']} ({hashes[0][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
