"""Central input checks shared by the public functions.

Every check raises :class:`~neutrostats.errors.NeutrostatsError` with a
message that names the function, what was expected, what was found and what
to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.errors import NeutrostatsError


def as_pandas(obj: Any) -> Any:
    """A pandas DataFrame for a Polars ``DataFrame``/``LazyFrame`` or a PyArrow ``Table``; else ``obj``.

    Data teams hold Polars and Arrow tables; every public function takes
    them as it takes pandas. Nothing is imported unless such a table is
    passed. A Polars ``Enum`` becomes an ordered pandas Categorical in its
    declared order; a Polars ``Categorical``, which has no order, becomes
    text (a tier column must be a ``pl.Enum`` of the scheme's tiers, mildest
    first, so that its first tier stays the reference).
    """
    if isinstance(obj, pd.DataFrame):
        return obj
    module = type(obj).__module__
    if module.startswith("polars"):
        if hasattr(obj, "collect") and not hasattr(obj, "to_pandas"):  # a LazyFrame
            obj = obj.collect()
        out = obj.to_pandas()
        # A Polars Categorical has no category order (its categories come in
        # the order first seen): as a pandas Categorical it would make the
        # first value seen the reference tier. It arrives as text instead;
        # a pl.Enum keeps its declared order.
        unordered = [name for name, dtype in obj.schema.items() if type(dtype).__name__ == "Categorical"]
        if unordered:
            out = out.assign(**{name: out[name].astype(object).where(out[name].notna(), None) for name in unordered})
        return out
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


def is_number(v: Any) -> bool:
    """A real number (Python or numpy), not a boolean."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _looks_numeric(v: Any) -> bool:
    """A real number (not a boolean), or text that reads as one ("45", " 67.5")."""
    if is_number(v):
        return True
    if isinstance(v, (bool, np.bool_)):
        return False
    if pd.api.types.is_number(v) and not isinstance(v, complex):  # e.g. decimal.Decimal
        return True
    if isinstance(v, str):
        try:
            float(v.strip())
        except ValueError:
            return False
        return True
    return False


def distinct_examples(values: Iterable[Any], k: int = 5) -> list:
    out: list = []
    for v in values:
        if v not in out:
            out.append(v)
            if len(out) == k:
                break
    return out


def covariate_kinds(df: pd.DataFrame, columns: Iterable[str], function: str, *,
                    categorical: Iterable[str] | None = None, argument: str = "adjust") -> dict[str, str]:
    """How each covariate enters a model: ``"numeric"``, ``"boolean"`` or ``"categorical"``, else raise.

    One rule for every model (logistic, Firth, Cox) and Table 1:

    * a column named in ``categorical`` is categorical (numeric-looking values are levels);
    * a boolean column (or an object column of True/False) is boolean;
    * a numeric column is numeric, a Categorical column categorical;
    * a text column is categorical only when none of its values reads as a number.

    A text column that is numeric except for some strings ("old" among ages),
    one whose values are all numbers written as text ("45", "67.5"), and a
    date column raise :class:`NeutrostatsError` naming the column and the
    values: guessing would silently turn the column into a many-level factor.
    """
    cat = [] if categorical is None else ([categorical] if isinstance(categorical, str) else list(categorical))
    columns = list(columns)
    unknown = [c for c in cat if c not in columns]
    if unknown:
        raise NeutrostatsError(
            f"{function}: categorical= names {unknown}, which are not in {argument}={columns}; "
            f"name covariates of {argument}= only"
        )
    kinds: dict[str, str] = {}
    for col in columns:
        x = df[col]
        dt = x.dtype
        if col in cat:
            kinds[col] = "categorical"
        elif pd.api.types.is_bool_dtype(dt):
            kinds[col] = "boolean"
        elif isinstance(dt, pd.CategoricalDtype):
            kinds[col] = "categorical"
        elif pd.api.types.is_datetime64_any_dtype(dt) or pd.api.types.is_timedelta64_dtype(dt):
            raise NeutrostatsError(
                f"{function}: covariate {col!r} holds dates or time spans (dtype {dt}); pass a number derived "
                f"from it (e.g. the calendar year, df[{col!r}].dt.year) or name that column in categorical="
            )
        elif pd.api.types.is_numeric_dtype(dt):
            kinds[col] = "numeric"
        else:
            present = x[x.notna()]
            # Judge each distinct value once (a million-row text column has a handful of them),
            # keeping the first-seen order for the examples.
            codes, uniq = pd.factorize(present)
            vals = np.asarray(uniq, dtype=object)
            if vals.size and all(isinstance(v, bool) or type(v).__name__ == "bool_" for v in vals):
                kinds[col] = "boolean"
                continue
            u_num = np.fromiter((_looks_numeric(v) for v in vals), dtype=bool, count=vals.size)
            u_text = np.fromiter((isinstance(v, str) for v in vals), dtype=bool, count=vals.size)
            num, text = u_num[codes], u_text[codes]
            vals = vals[codes]
            if not num.any():
                kinds[col] = "categorical"
            elif num.all() and not text.any():
                kinds[col] = "numeric"  # an object column of genuine numbers: nothing to guess
            elif num.all():
                raise NeutrostatsError(
                    f"{function}: covariate {col!r} holds numbers written as text (dtype {dt}, e.g. "
                    f"{distinct_examples(vals[text], 5)!r}); convert it with pandas.to_numeric(df[{col!r}]) "
                    "to enter it as a number, or name it in categorical= to use every value as a level"
                )
            else:
                other = vals[~num]
                raise NeutrostatsError(
                    f"{function}: covariate {col!r} mixes numbers and text: {int((~num).sum())} of {vals.size} "
                    f"non-missing values are not numbers ({distinct_examples(other, 5)!r}) and {int(num.sum())} are "
                    f"(e.g. {distinct_examples(vals[num], 3)!r}); fix or remove those values (pandas.to_numeric("
                    f"df[{col!r}], errors='coerce') makes them missing, and the rows are left out as incomplete), "
                    "or name the column in categorical= to use every value as a level"
                )
    return kinds


def factor_levels(x: pd.Series, reference: Any = None, *, column: str | None = None,
                  function: str = "factor_levels") -> list:
    """Levels of a categorical covariate, reference first.

    The order is R's ``factor()``: a Categorical's categories in their
    declared order (those present; the first is the reference, ordered or
    not), numbers in numeric order, else the values sorted as text.
    ``reference`` (one of the levels present) moves that level to the front,
    as R's ``relevel()``; a level that is not present raises
    :class:`NeutrostatsError` naming the levels found.

    Examples
    --------
    >>> import pandas as pd
    >>> factor_levels(pd.Series(pd.Categorical(["f", "m", "f"], categories=["m", "f"])))
    ['m', 'f']
    >>> factor_levels(pd.Series(["m", "f", "f"]))  # text: sorted, as R's factor()
    ['f', 'm']
    >>> factor_levels(pd.Series(["m", "f", "f"]), reference="m")
    ['m', 'f']
    """
    present = pd.unique(x.dropna())
    if isinstance(x.dtype, pd.CategoricalDtype):
        have = set(present)
        levels = [c for c in x.cat.categories if c in have]
    elif all(_looks_numeric(v) and not isinstance(v, str) for v in present):
        levels = sorted(present)
    else:
        levels = sorted(present, key=str)
    if reference is None:
        return levels
    # The same level written as text or as a number ("2" for a code 2) is the same level.
    hit = [lev for lev in levels if lev == reference] or [lev for lev in levels if str(lev) == str(reference)]
    if not hit:
        name = column if column is not None else x.name
        raise NeutrostatsError(
            f"{function}: reference={{{name!r}: {reference!r}}} is not a level of column {name!r} among the "
            f"rows used; the levels found are {[plain_level(v) for v in levels]} ({len(levels)}); pass one of them"
        )
    return [hit[0], *[lev for lev in levels if lev is not hit[0]]]


def plain_level(v: Any) -> Any:
    """A level as a plain Python value (numpy scalars unwrapped) for messages."""
    return v.item() if isinstance(v, np.generic) else v


def split_reference(reference: Any, function: str, *, group: str | None, covariates: Iterable[str],
                    kinds: dict[str, str]) -> tuple[Any, dict[str, Any]]:
    """Split ``reference=`` into the reference group and the covariates' reference levels.

    A mapping ``{column: level}`` names the reference level of the grouping
    column (``group``, e.g. the tier) and of any categorical covariate; any
    other value is the reference group alone (``None``: the defaults).
    Raises :class:`NeutrostatsError` for a column that is neither the group
    nor a covariate, and for a covariate that does not enter as levels
    (numeric or boolean).

    Examples
    --------
    >>> split_reference({"tier": "mild", "sex": "f"}, "f", group="tier", covariates=["sex"],
    ...                 kinds={"sex": "categorical"})
    ('mild', {'sex': 'f'})
    >>> split_reference("mild", "f", group="tier", covariates=[], kinds={})
    ('mild', {})
    """
    from collections.abc import Mapping

    if reference is None or not isinstance(reference, Mapping):
        return reference, {}
    covariates = list(covariates)
    allowed = ([group] if group is not None else []) + covariates
    unknown = [k for k in reference if k not in allowed]
    if unknown:
        raise NeutrostatsError(
            f"{function}: reference= names column(s) {unknown} that are neither the grouping column "
            f"({group!r}) nor covariates of adjust= ({covariates}); name the reference level of those only, "
            "e.g. reference={'sex': 'F'}"
        )
    not_levels = [k for k in reference if k != group and kinds.get(k) != "categorical"]
    if not_levels:
        raise NeutrostatsError(
            f"{function}: reference= names covariate(s) {not_levels}, which enter the model as "
            f"{[kinds.get(k) for k in not_levels]}, not as levels; a reference level applies to categorical "
            "covariates only (name the column in categorical= to enter its values as levels)"
        )
    refs = {k: v for k, v in reference.items() if k != group}
    return reference.get(group) if group is not None else None, refs
