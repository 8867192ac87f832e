"""Speed of classify_anc on 10 million mixed-unit rows.

Reported as a ratio to a baseline run in the same process on the same data:
a bare ``numpy.searchsorted`` of the values over the scheme's cut points
(the least any classifier must do). Each figure is the median of several
repeats after a warm-up run.

Usage::

    python benchmarks/bench_classify.py [--rows 10000000] [--repeats 5]

Writes ``benchmarks/results/classify.json`` next to this file.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd

import neutrostats as ns
from _timing import timed

UNITS = ["10^9/L", "K/uL", "cells/uL", "x10^9/L", "/mm3", "G/L", "10*3/uL", "cells/µL"]


def make_rows(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    unit_codes = rng.integers(0, len(UNITS), n)
    anc = np.exp(rng.normal(np.log(4.0), 0.45, n))  # x10^9/L, log-normal
    per_ul = np.isin(unit_codes, [2, 4, 7])
    values = np.where(per_ul, np.round(anc * 1000), np.round(anc, 2))
    return values, unit_codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "classify.json"))
    args = parser.parse_args()
    n = args.rows
    values, unit_codes = make_rows(n)
    scheme = ns.get_scheme("clinical")
    cuts = np.asarray(scheme.cuts)

    cases = {
        "numeric values, categorical units": pd.DataFrame(
            {"value": values, "unit": pd.Categorical.from_codes(unit_codes, categories=UNITS)}
        ),
        "numeric values, string units": pd.DataFrame(
            {"value": values, "unit": np.asarray(UNITS, dtype=object)[unit_codes]}
        ),
    }
    _, base = timed(lambda: np.searchsorted(cuts, values, side="right"), args.repeats)
    results = {
        "rows": n,
        "scheme": scheme.name,
        "baseline": "numpy.searchsorted(cuts, values) on the same float64 array",
        "baseline_seconds": base,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "cases": {},
    }
    print(f"{n:,} rows; baseline numpy.searchsorted: {base * 1e3:.1f} ms")
    for name, df in cases.items():
        first, med = timed(lambda df=df: ns.classify_anc(df, scheme, code=None), args.repeats)
        results["cases"][name] = {
            "seconds_median": med,
            "seconds_first_run": first,
            "rows_per_second": n / med,
            "ratio_to_baseline": med / base,
        }
        print(f"{name:40s} {med * 1e3:8.1f} ms  {n / med / 1e6:6.1f} M rows/s  ratio {med / base:5.2f}x"
              f"  (first run {first * 1e3:.0f} ms)")

    # Lab text ("1.52", "<0.1", "clotted") has to be parsed first: a tenth of
    # the rows, reported for information (no numpy equivalent to compare with).
    m = n // 10
    text_values = pd.Series(values[:m]).map("{:g}".format).to_numpy(dtype=object)
    text_values[::97] = "<0.1"
    text_values[::101] = "clotted"
    text_df = pd.DataFrame({"value": text_values, "unit": np.asarray(UNITS, dtype=object)[unit_codes[:m]]})
    _, med = timed(lambda: ns.classify_anc(text_df, scheme, code=None), max(1, args.repeats // 2))
    results["cases"]["text values, string units (n/10 rows)"] = {
        "rows": m, "seconds_median": med, "rows_per_second": m / med,
    }
    print(f"{'text values, string units':40s} {med * 1e3:8.1f} ms  {m / med / 1e6:6.1f} M rows/s  ({m:,} rows)")

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
