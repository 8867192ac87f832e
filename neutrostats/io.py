"""Readers for lab tables: CSV (optionally compressed) and Parquet.

Lab exports carry results as text (``"<0.1"``, ``"see comment"``), so the
result, unit and code columns are read as strings exactly as written: an
empty cell stays an empty string and ``"NA"`` stays ``"NA"`` (the classifier
flags both). Other columns get pandas' usual type inference.

Examples
--------
>>> import io as _io
>>> from neutrostats.io import read_table
>>> csv = _io.StringIO("person_id,value,unit\\n1,<0.1,10^9/L\\n2,,10^9/L\\n")
>>> read_table(csv)["value"].tolist()
['<0.1', '']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import NeutrostatsError

__all__ = ["read_table", "write_table", "TEXT_COLUMNS"]

# pandas' default missing-value spellings (pandas.read_csv documentation).
_DEFAULT_NA = [
    "", " ", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]

#: Columns kept as text when reading.
TEXT_COLUMNS = ("value", "unit", "code")
#: Text columns read as pandas Categoricals (few distinct values).
CATEGORY_COLUMNS = ("unit", "code")


def _is_parquet(path: Any) -> bool:
    return isinstance(path, (str, os.PathLike)) and str(path).lower().endswith((".parquet", ".pq"))


def read_table(path: Any, *, text_columns: tuple[str, ...] = TEXT_COLUMNS) -> pd.DataFrame:
    """Read a CSV (``.csv``, ``.csv.gz``, ...) or Parquet file into a DataFrame.

    Parameters
    ----------
    path : str, path or file-like
        The file. Parquet is recognised by the ``.parquet``/``.pq`` suffix
        and needs ``pyarrow`` (``pip install "neutrostats[parquet]"``).
    text_columns : tuple of str
        Columns read as strings, exactly as written (CSV only; Parquet keeps
        its own types). Of these, ``unit`` and ``code`` become Categoricals
        of those strings, which classify much faster.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    NeutrostatsError
        If the file does not exist, cannot be parsed, or Parquet support is
        not installed.
    """
    if isinstance(path, (str, os.PathLike)) and not Path(path).exists():
        raise NeutrostatsError(f"read_table: file {str(path)!r} not found; check the path")
    try:
        if _is_parquet(path):
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise NeutrostatsError(
                    "read_table: reading Parquet needs pyarrow, which is not installed; "
                    'run pip install "neutrostats[parquet]" or convert the file to CSV'
                ) from None
            return pd.read_parquet(path)
        header = pd.read_csv(path, nrows=0)
        if hasattr(path, "seek"):
            path.seek(0)
        text = [c for c in text_columns if c in header.columns]
        # Only the other columns get pandas' missing-value spellings; text
        # columns keep "NA", "null" and empty cells as written.
        # Units and codes repeat a handful of spellings over millions of
        # rows; as categoricals they are looked up once per spelling.
        return pd.read_csv(
            path,
            dtype={c: ("category" if c in CATEGORY_COLUMNS else str) for c in text},
            keep_default_na=False,
            na_values={c: _DEFAULT_NA for c in header.columns if c not in text},
            low_memory=False,
        )
    except NeutrostatsError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise NeutrostatsError(f"read_table: could not read {str(path)!r}: {exc}") from None


def write_table(df: pd.DataFrame, path: Any) -> None:
    """Write a DataFrame as CSV (``.csv``, ``.csv.gz``) or Parquet (by suffix).

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    path : str or path
        Target file; its suffix chooses the format.
    """
    if _is_parquet(path):
        try:
            df.to_parquet(path, index=False)
        except ImportError:
            raise NeutrostatsError(
                'write_table: writing Parquet needs pyarrow; run pip install "neutrostats[parquet]"'
            ) from None
    else:
        df.to_csv(path, index=False)
