"""Reading the report's four input tables: read_table (pyarrow) against pandas.read_csv as read_table called it.

The 373,820-person synthetic cohort (about 1.4 million lab rows) is written
by ``write_cohort`` as ``.csv.gz`` and, decompressed, as plain ``.csv``.
Each table is read the way ``run_report`` reads it (the same text columns)
by

- ``new``: ``read_table`` as it is (``neutrostats.core.csvread``: pyarrow's
  parser, on several threads where a core is idle; a plain file under 2 MiB
  by pandas);
- ``pyarrow`` and ``pandas``: ``read_table`` made to take either path;
- ``old``: what ``read_table`` did before: the header row read by pandas'
  python engine, then ``pandas.read_csv(path, dtype={unit/code: "category",
  value: str}, keep_default_na=False, na_values={others: spellings},
  low_memory=False)``;
- for ``.csv.gz`` also ``new, zlib``: ``read_table`` with ``isal`` hidden,
  so that the file is decompressed by Python's zlib (``pip install isal``
  gives the default ``new``; without it, this is what a user gets).

The readers take turns in the same process (old, new, new-zlib, old, ...),
``--repeats`` times each; the figures are medians. A ratio below 1 means the
new reader is faster; the target of issue 21 is 0.5. The machine's load
(``/proc/loadavg``) before and after each table is recorded: on a busy
machine pyarrow's threads get fewer cores and the ratio rises. Run from the
repository root::

    python benchmarks/bench_read.py [--persons 373820] [--repeats 7] [--folder DIR]

Prints the figures and writes ``benchmarks/results/read.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow  # noqa: E402

from neutrostats.core import csvread  # noqa: E402
from neutrostats.io.files import _DEFAULT_NA, CATEGORY_COLUMNS, TEXT_COLUMNS, read_table  # noqa: E402
from neutrostats.report import ReportSettings  # noqa: E402
from neutrostats.synthetic import generate_cohort, write_cohort  # noqa: E402

TABLES = ("labs", "persons", "diagnoses", "deaths")


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "n/a"


def _text_columns(name: str) -> tuple[str, ...]:
    """The text columns run_report gives read_table for this table (neutrostats.report.analysis)."""
    cols = ReportSettings().table_columns(name)
    return tuple(dict.fromkeys([*TEXT_COLUMNS, *(cols[k] for k in ("value", "unit", "code", "diagnosis_code")
                                                 if k in cols)]))


def read_old(path: Path, text_columns: tuple[str, ...]) -> pd.DataFrame:
    """read_table's CSV branch before the pyarrow reader: header by the python engine, then pandas.read_csv."""
    sep = "\t" if ".tsv" in path.name else ","
    first = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False, engine="python")
    raw = [str(c) for c in first.iloc[0].tolist()]
    text = [c for c in text_columns if c in raw]
    return pd.read_csv(path, sep=sep, dtype={c: ("category" if c in CATEGORY_COLUMNS else str) for c in text},
                       keep_default_na=False, na_values={c: _DEFAULT_NA for c in raw if c not in text},
                       low_memory=False)


@contextlib.contextmanager
def _without_isal():
    """``import isal`` fails inside the block (the reader then decompresses with Python's zlib)."""
    saved = {k: v for k, v in sys.modules.items() if k == "isal" or k.startswith("isal.")}
    for k in saved:
        del sys.modules[k]
    sys.modules["isal"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        del sys.modules["isal"]
        sys.modules.update(saved)


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_file(path: Path, text: tuple[str, ...], repeats: int, zlib_too: bool) -> dict:
    def forced(pyarrow_parses: bool):
        def read():
            with mock.patch.object(csvread, "_PYARROW", pyarrow_parses):
                return read_table(path, text_columns=text)
        return read

    readers = {"old": lambda: read_old(path, text), "new": lambda: read_table(path, text_columns=text),
               "pyarrow": forced(True), "pandas": forced(False)}
    if zlib_too:
        def new_zlib():
            with _without_isal():
                return read_table(path, text_columns=text)
        readers["new, zlib"] = new_zlib
    times: dict[str, list[float]] = {k: [] for k in readers}
    for k, fn in readers.items():  # warm-up: imports, page cache
        fn()
    for _ in range(repeats):
        for k, fn in readers.items():
            times[k].append(_time(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"seconds_median": {k: round(v, 4) for k, v in med.items()},
           "seconds_all": {k: [round(x, 4) for x in v] for k, v in times.items()},
           "ratio_new_to_old": round(med["new"] / med["old"], 3),
           "ratio_pyarrow_to_old": round(med["pyarrow"] / med["old"], 3),
           "ratio_pandas_to_old": round(med["pandas"] / med["old"], 3)}
    if zlib_too:
        out["ratio_new_zlib_to_old"] = round(med["new, zlib"] / med["old"], 3)
    out["load_after"] = _loadavg()
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=373_820)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--folder", type=Path, help="reuse <table>.csv.gz (and .csv) files in this folder")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "read.json")
    args = ap.parse_args(argv)
    try:
        import isal  # noqa: F401
        has_isal = True
    except ImportError:
        has_isal = False
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder
        if folder is None:
            folder = write_cohort(generate_cohort(n_persons=args.persons, progress=False), Path(tmp) / "in")
        for name in TABLES:
            plain = folder / f"{name}.csv"
            if not plain.exists():
                with gzip.open(folder / f"{name}.csv.gz", "rb") as src, open(plain, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        load_before = _loadavg()
        files: dict = {}
        totals: dict = {}
        for suffix in (".csv", ".csv.gz"):
            files[suffix] = {}
            for name in TABLES:
                path = folder / f"{name}{suffix}"
                r = bench_file(path, _text_columns(name), args.repeats, zlib_too=suffix == ".csv.gz" and has_isal)
                r["bytes"] = path.stat().st_size
                files[suffix][name] = r
                print(f"{name + suffix:18s} " + "  ".join(f"{k} {v:.3f} s" for k, v in r["seconds_median"].items())
                      + f"  ratio {r['ratio_new_to_old']:.2f} (pyarrow {r['ratio_pyarrow_to_old']:.2f})"
                      + (f" (zlib {r['ratio_new_zlib_to_old']:.2f})" if "ratio_new_zlib_to_old" in r else ""))
            sums = {k: sum(files[suffix][n]["seconds_median"][k] for n in TABLES)
                    for k in files[suffix][TABLES[0]]["seconds_median"]}
            totals[suffix] = {"seconds": {k: round(v, 4) for k, v in sums.items()},
                              **{f"ratio_{k.replace(', ', '_')}_to_old": round(v / sums["old"], 3)
                                 for k, v in sums.items() if k != "old"}}
            if "new, zlib" in sums:
                totals[suffix]["ratio_new_zlib_to_old"] = round(sums["new, zlib"] / sums["old"], 3)
            print(f"{'four tables' + suffix:18s} " + "  ".join(f"{k} {v:.3f} s" for k, v in sums.items())
                  + f"  ratio {totals[suffix]['ratio_new_to_old']:.2f} (target 0.5; pyarrow "
                  f"{totals[suffix]['ratio_pyarrow_to_old']:.2f})")
        load_after = _loadavg()
        rows = {name: len(read_table(folder / f"{name}.csv.gz", text_columns=_text_columns(name))) for name in TABLES}
    print(f"load before {load_before}; after {load_after}")
    res = {
        "benchmark": "read_table (pyarrow) vs pandas.read_csv with read_table's former arguments",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
                    "pyarrow": pyarrow.__version__, "isal": has_isal, "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "load_before": load_before,
        "load_after": load_after,
        "n_persons": args.persons if args.folder is None else None,
        "rows": rows,
        "repeats": args.repeats,
        "target_ratio": 0.5,
        "pyarrow_threads_now": csvread._threads(),
        "totals": totals,
        "files": files,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return res


if __name__ == "__main__":
    main()
