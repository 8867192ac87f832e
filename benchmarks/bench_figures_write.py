"""Figures and writing of the full-size report (373,820 persons): the report's ``figures`` and ``write`` steps.

The report of ``benchmarks/bench_report.py`` (the 373,820-person synthetic
cohort as gzip-compressed CSV, ``min_cell_count=10``, disclosure by
suppression) is run once per process with ``run_report``; its own step times
give the first figures and write of the process (``cold``: matplotlib,
Jinja2 and the fonts are loaded there, as in a real run). Then the figures
are drawn again from the same tables (``neutrostats.report.analysis._figures``,
the report's figure step) and the report written again, ``--repeats`` times
(``warm``: new figure objects each time, so nothing is reused), each with its
wall seconds, the CPU seconds of the process (all threads) and of the thread
that draws (the one the writing waits for).

With ``--baseline DIR`` (a folder holding an older ``neutrostats``, e.g. a
``git worktree add`` of HEAD) old and new run in turn in fresh processes, old
new old new ..., on the same input files, and the ratios new/old are taken
run by run. Issue 21's target: figures + write at most 0.7 s.

Usage::

    python benchmarks/bench_figures_write.py [--runs 2] [--repeats 3] [--baseline DIR] [--inputs DIR] [--persons 373820]

``--inputs`` reuses a folder of labs/persons/diagnoses/deaths ``.csv.gz``
(written there on the first use). Writes ``benchmarks/results/figures_write.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLES = ("labs", "persons", "diagnoses", "deaths")


def _inputs(folder: Path, persons: int) -> Path:
    if all((folder / f"{n}.csv.gz").exists() for n in TABLES):
        return folder
    from neutrostats.synthetic import generate_cohort, write_cohort

    return write_cohort(generate_cohort(n_persons=persons, progress=False), folder, format="csv")


def child(inputs: Path, repeats: int) -> dict:
    """In the measured process: one report, then its figures and writing again ``repeats`` times."""
    import warnings
    from dataclasses import replace

    import matplotlib

    matplotlib.use("Agg")  # as `neutrostats report` does; pyplot is imported by the figure step, as there

    from neutrostats.report import ReportSettings, analysis, run_report
    from neutrostats.report.render import write_outputs

    captured = {}
    figures_step = analysis._figures

    def keep(*args, **kwargs):
        captured["args"] = (args, kwargs)
        return figures_step(*args, **kwargs)

    analysis._figures = keep
    settings = ReportSettings(min_cell_count=10, disclosure="suppress")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cohort's data-quality notes: expected
        report = run_report(*(inputs / f"{n}.csv.gz" for n in TABLES), out=Path(tmp) / "report",
                            settings=settings, progress=False)
        args, kwargs = captured["args"]
        import matplotlib.pyplot as plt

        warm = []
        for i in range(repeats):
            plt.close("all")
            w, c, t = time.perf_counter(), time.process_time(), time.thread_time()
            figures = figures_step(*args, **kwargs)
            fw = time.perf_counter() - w
            write_outputs(replace(report, figures=figures), Path(tmp) / f"again{i}")
            warm.append({"figures_wall": fw, "write_wall": time.perf_counter() - w - fw,
                         "wall": time.perf_counter() - w, "cpu": time.process_time() - c,
                         "drawing_thread_cpu": time.thread_time() - t})
    cold = {k: report.timings[k] for k in ("figures", "write")}
    return {"persons": report.n_persons, "cold": cold | {"sum": sum(cold.values())}, "warm": warm,
            "steps": report.timings}


def _run(pythonpath: str | None, inputs: Path, repeats: int) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: .pyc files written once, then read
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    try:
        subprocess.run([sys.executable, __file__, "--child", str(inputs), "--repeats", str(repeats),
                        "--out", str(out)], env=env, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def _median(values) -> float:
    return statistics.median(list(values))


def _summary(runs: list[dict]) -> dict:
    warm = [w for r in runs for w in r["warm"]]
    return {
        "cold_figures_plus_write_median": _median(r["cold"]["sum"] for r in runs),
        "cold_figures_median": _median(r["cold"]["figures"] for r in runs),
        "cold_write_median": _median(r["cold"]["write"] for r in runs),
        "warm": {k: _median(w[k] for w in warm) for k in warm[0]},
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--persons", type=int, default=373_820)
    parser.add_argument("--baseline", default=None, help="folder with the old neutrostats package (PYTHONPATH)")
    parser.add_argument("--inputs", default=None, help="folder of the input .csv.gz files (written if missing)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "figures_write.json"))
    args = parser.parse_args()
    if args.child:
        Path(args.out).write_text(json.dumps(child(Path(args.child), args.repeats)))
        return
    start_load = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        inputs = _inputs(Path(args.inputs) if args.inputs else Path(tmp) / "inputs", args.persons)
        variants = {"new": None} if args.baseline is None else {"old": args.baseline, "new": None}
        got: dict[str, list[dict]] = {k: [] for k in variants}
        for _ in range(args.runs):
            for name, path in variants.items():
                got[name].append(_run(path, inputs, args.repeats))
    result: dict = {"persons": got["new"][0]["persons"], "min_cell_count": 10, "disclosure": "suppress",
                    "target_seconds": 0.7, **{k: _summary(v) for k, v in got.items()}}
    if args.baseline is not None:
        pairs = list(zip(got["new"], got["old"]))
        result["ratio_new_to_old_cold"] = _median(n["cold"]["sum"] / o["cold"]["sum"] for n, o in pairs)
        for key in ("wall", "cpu", "drawing_thread_cpu"):
            result[f"ratio_new_to_old_warm_{key}"] = _median(
                _median(w[key] for w in n["warm"]) / _median(w[key] for w in o["warm"]) for n, o in pairs)
    result |= {"load_average_1_5_15_at_start": start_load, "load_average_1_5_15": list(os.getloadavg()),
               "cpus": os.cpu_count(), "python": platform.python_version()}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for name in variants:
        s = result[name]
        print(f"{name}: cold figures + write {s['cold_figures_plus_write_median']:.2f} s (figures "
              f"{s['cold_figures_median']:.2f}, write {s['cold_write_median']:.2f}); warm: wall {s['warm']['wall']:.2f} s, "
              f"CPU {s['warm']['cpu']:.2f} s, drawing thread CPU {s['warm']['drawing_thread_cpu']:.2f} s (target 0.7 s)")
    for key in ("cold", "warm_wall", "warm_cpu", "warm_drawing_thread_cpu"):
        if f"ratio_new_to_old_{key}" in result:
            print(f"ratio new/old {key}: {result[f'ratio_new_to_old_{key}']:.3f}")
    print(f"load average at start {start_load}, at the end {result['load_average_1_5_15']}; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
