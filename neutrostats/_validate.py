"""Central input checks shared by the public functions.

Every check raises :class:`~neutrostats.errors.NeutrostatsError` with a
message that names the function, what was expected, what was found and what
to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import pandas as pd

from .errors import NeutrostatsError


def as_pandas(obj: Any) -> Any:
    """A pandas DataFrame for a Polars ``DataFrame``/``LazyFrame`` or a PyArrow ``Table``; else ``obj``.

    Data teams hold Polars and Arrow tables; every public function takes
    them as it takes pandas. Nothing is imported unless such a table is
    passed.
    """
    if isinstance(obj, pd.DataFrame):
        return obj
    module = type(obj).__module__
    if module.startswith("polars"):
        if hasattr(obj, "collect") and not hasattr(obj, "to_pandas"):  # a LazyFrame
            obj = obj.collect()
        return obj.to_pandas()
    if module.startswith("pyarrow") and hasattr(obj, "to_pandas") and hasattr(obj, "schema"):
        return obj.to_pandas()
    return obj


def require_dataframe(obj: Any, function: str, name: str = "labs", *, allow_empty: bool = True) -> pd.DataFrame:
    """Return ``obj`` as a pandas DataFrame (Polars and Arrow tables converted), else raise.

    Raises :class:`NeutrostatsError` for anything that is not a table, for
    duplicate column names (which pandas would silently turn into
    sub-tables) and, unless ``allow_empty``, for a table without rows.
    Callers must use the returned frame: ``df = require_dataframe(df, ...)``.
    """
    obj = as_pandas(obj)
    if not isinstance(obj, pd.DataFrame):
        raise NeutrostatsError(
            f"{function}: expected {name} to be a pandas DataFrame (or a Polars or PyArrow table), found "
            f"{type(obj).__name__}; read your file with neutrostats.io.read_table (or pandas) first"
        )
    dup = obj.columns[obj.columns.duplicated()]
    if len(dup):
        raise NeutrostatsError(
            f"{function}: table {name} has duplicate column names {sorted(map(str, pd.unique(dup)))}; "
            "every column must have its own name: rename or drop the repeats first"
        )
    if not allow_empty and len(obj) == 0:
        raise NeutrostatsError(
            f"{function}: table {name} has no rows (columns {[str(c) for c in obj.columns][:10]}); "
            "check that the right file was read and that no filter removed every row"
        )
    return obj


def require_columns(df: pd.DataFrame, columns: Iterable[str], function: str, hint: str = "") -> None:
    """Raise if any of ``columns`` is missing from ``df``, suggesting close names."""
    missing = [c for c in columns if c not in df.columns]
    if not missing:
        return
    available = [str(c) for c in df.columns]
    parts = []
    for col in missing:
        close = difflib.get_close_matches(str(col), available, n=2)
        parts.append(f"{col!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
    raise NeutrostatsError(
        f"{function}: column(s) {', '.join(parts)} not found; the table has columns "
        f"{available[:20]}{' ...' if len(available) > 20 else ''}. "
        + (hint or "Pass the right column names as arguments or rename the columns.")
    )


def require_choice(value: Any, choices: Iterable[Any], function: str, name: str) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise NeutrostatsError(
            f"{function}: {name} must be one of {choices}, found {value!r}"
        )


def require_conf_level(conf_level: Any, function: str) -> float:
    """Return ``conf_level`` as a float strictly between 0 and 1, else raise."""
    try:
        c = float(conf_level)
    except (TypeError, ValueError):
        c = float("nan")
    if not 0 < c < 1:
        raise NeutrostatsError(
            f"{function}: conf_level must be between 0 and 1 (e.g. 0.95), found {conf_level!r}"
        )
    return c


def require_positive(value: Any, function: str, name: str, unit: str = "") -> float:
    """Return ``value`` as a finite float > 0, else raise naming ``name``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = float("nan")
    if not (x > 0 and x != float("inf")):
        raise NeutrostatsError(
            f"{function}: {name} must be a positive number{' of ' + unit if unit else ''}, found {value!r}"
        )
    return x


def is_text(dtype: Any) -> bool:
    """Text column: object (pandas 2's default for strings) or a string dtype (pandas 3's)."""
    return pd.api.types.is_object_dtype(dtype) or (
        pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    )
