"""One validator for time-to-event input, used by every survival, competing-risks and Cox function.

The model is scikit-survival's ``check_y_survival``: one place decides what a
duration, an event and an entry time may be, so that ``kaplan_meier``,
``logrank_test``, ``cumulative_incidence``, ``gray_test`` and the Cox
functions accept and refuse the same things.

The rule for missing values is the same everywhere: the analysis uses the
complete cases over the columns the call uses (duration, event, group or
tier, entry, strata, covariates); the number of rows left out is returned
(``n_missing``, and per column in ``missing``) and announced with a
:class:`~neutrostats.errors.DataQualityWarning` naming the function, the
count and the columns. Nothing is announced when nothing is missing.

Values that are present but unusable are not "missing": text or dates in a
duration column, infinite or negative durations, events other than 0/1 (or
the event codes 0, 1, 2, ...) raise :class:`~neutrostats.errors.NeutrostatsError`.
The same holds for case weights (``weights=``): a missing weight is a
missing value like any other, while a weight that is text, infinite or
negative is an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from neutrostats.core.validate import distinct_examples, is_number, is_text, require_columns, require_dataframe
from neutrostats.errors import DataQualityWarning, NeutrostatsError

_HOW_TO_TIME = ("pass the time since the index as numbers (e.g. years, as build_cohort's death_time), "
                "e.g. (df[end] - df[start]).dt.days / 365.25")


@dataclass(frozen=True)
class TTEData:
    """Complete cases of a time-to-event table (see :func:`check_tte`)."""

    data: pd.DataFrame  # the used columns, complete rows only, original index
    time: np.ndarray  # float, finite, >= 0
    event: np.ndarray  # bool (binary events) or int64 codes (0 censored, 1, 2, ...)
    entry: np.ndarray | None
    n_input: int
    n_missing: int
    missing: dict[str, int] = field(default_factory=dict)  # per used column with missing values
    weights: np.ndarray | None = None  # float, finite, >= 0 (None: every row counts once)


def numeric_values(s: pd.Series, col: str, fn: str, what: str, how: str = _HOW_TO_TIME,
                   allow_bool: bool = False) -> np.ndarray:
    """Float values of a column that must hold numbers (NaN where missing), else raise.

    Dates, timedeltas, text (also numbers written as text, "3.2") and
    Categoricals are refused with a message naming the column, its dtype,
    examples and ``how`` to fix it.
    """
    dt = s.dtype
    head = f"{fn}: column {col!r} ({what}) must be numeric"
    if pd.api.types.is_bool_dtype(dt):
        if allow_bool:
            return s.to_numpy(dtype=float, na_value=np.nan)
        raise NeutrostatsError(f"{head}, found a boolean column (dtype {dt}); {how}")
    if pd.api.types.is_datetime64_any_dtype(dt) or isinstance(dt, pd.PeriodDtype):
        ex = [str(v) for v in distinct_examples(s.dropna(), 3)]
        raise NeutrostatsError(f"{head}, found dates/times (dtype {dt}, e.g. {ex}); {how}")
    if pd.api.types.is_timedelta64_dtype(dt):
        ex = [str(v) for v in distinct_examples(s.dropna(), 3)]
        raise NeutrostatsError(
            f"{head}, found time differences (dtype {dt}, e.g. {ex}); pass numbers, e.g. "
            f"df[{col!r}].dt.days / 365.25 for years"
        )
    if pd.api.types.is_numeric_dtype(dt) and not isinstance(dt, pd.CategoricalDtype):
        try:
            return s.to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):  # e.g. complex numbers
            raise NeutrostatsError(f"{head}, found dtype {dt}; {how}") from None
    present = s[s.notna()]
    if isinstance(dt, pd.CategoricalDtype):
        if pd.api.types.is_numeric_dtype(dt.categories.dtype) and not pd.api.types.is_bool_dtype(dt.categories.dtype):
            return s.astype(float).to_numpy(dtype=float, na_value=np.nan)
        ex = [str(v) for v in distinct_examples(present, 5)]
        raise NeutrostatsError(f"{head}, found a Categorical with categories such as {ex}; {how}")
    vals = present.to_numpy(dtype=object)
    bad = np.fromiter((not (is_number(v) or allow_bool and isinstance(v, (bool, np.bool_))) for v in vals),
                      dtype=bool, count=vals.size)
    if not bad.any():
        # An object column of genuine numbers (or of True/False with gaps): nothing to guess.
        out = np.full(len(s), np.nan)
        out[s.notna().to_numpy()] = vals.astype(float)
        return out
    ex = distinct_examples(vals[bad], 5)
    as_text = pd.to_numeric(pd.Series([str(v).strip() for v in vals[bad]], dtype=object), errors="coerce")
    if as_text.notna().all():
        tail = f"these are numbers written as text: convert them with pandas.to_numeric(df[{col!r}])"
    else:
        tail = how
    raise NeutrostatsError(
        f"{head}, found dtype {dt} with {int(bad.sum())} of {len(s)} values that are not numbers "
        f"(e.g. {ex!r}); {tail}"
    )


def _event_values(s: pd.Series, col: str, fn: str, kind: str) -> np.ndarray:
    if kind == "binary":
        how = (f"code it 0/1 or boolean (1 = event), e.g. df[{col!r}].map({{'yes': 1, 'no': 0}})")
        what = "event, 0/1 or boolean"
    else:
        how = ("code it 0 = censored, 1 = event of interest, 2, 3, ... = competing events, e.g. with "
               f"df[{col!r}].map({{...}})")
        what = "event code"
    if is_text(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
        present = s[s.notna()]
        vals = present.to_numpy(dtype=object)
        text = np.fromiter((isinstance(v, str) for v in vals), dtype=bool, count=vals.size)
        if text.any() or isinstance(s.dtype, pd.CategoricalDtype) and not (
                pd.api.types.is_numeric_dtype(s.dtype.categories.dtype)):
            ex = distinct_examples(vals[text] if text.any() else vals, 5)
            raise NeutrostatsError(
                f"{fn}: column {col!r} ({what}) must be numeric, found dtype {s.dtype} with text values such as "
                f"{ex!r} ({int(text.sum())} of {len(s)} rows); {how}"
            )
    return numeric_values(s, col, fn, what, how, allow_bool=True)


def _listify(cols) -> list:
    if cols is None:
        return []
    return [cols] if isinstance(cols, str) else list(cols)


def missing_message(fn: str, n_missing: int, n_input: int, missing: dict[str, int]) -> str:
    per = ", ".join(f"{c!r} {k}" for c, k in missing.items())
    return (f"{fn}: {n_missing} of {n_input} rows left out (complete cases) because of missing values "
            f"(missing per column: {per}); the result reports n_missing = {n_missing}")


def check_tte(
    df,
    fn: str,
    *,
    duration: str,
    event: str,
    events: str = "binary",
    group: str | None = None,
    entry: str | None = None,
    strata: str | Iterable[str] | None = None,
    covariates: Iterable[str] = (),
    weights: str | None = None,
    name: str = "df",
    hint: str = "Pass the duration and event columns, e.g. 'death_time' and 'death'.",
    stacklevel: int = 3,
) -> TTEData:
    """Validate a time-to-event table and keep its complete cases.

    ``events`` is ``"binary"`` (0/1 or boolean) or ``"codes"`` (0 censored,
    1, 2, ... event types). Raises :class:`NeutrostatsError` for a table
    without rows or without a complete row, non-numeric, infinite or
    negative durations and entry times, entry not before the duration, and
    events outside the coding, and case weights (``weights``, a column
    name) that are not numbers, not finite or negative; warns
    (:class:`DataQualityWarning`) when rows are left out for missing values
    (a missing weight included).

    Examples
    --------
    >>> import warnings
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1.0, 2, 3], "e": [1, 0, 1], "w": [2.0, None, 0.5]})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     d = check_tte(df, "example", duration="t", event="e", weights="w")
    >>> d.n_missing, d.missing, d.weights.tolist()
    (1, {'w': 1}, [2.0, 0.5])
    >>> str(caught[0].message)[:46]
    'example: 1 of 3 rows left out (complete cases)'
    """
    df = require_dataframe(df, fn, name, allow_empty=False)
    strata = _listify(strata)
    used = list(dict.fromkeys([duration, event, *([group] if group is not None else []),
                               *([entry] if entry is not None else []), *strata, *_listify(covariates),
                               *([weights] if weights is not None else [])]))
    require_columns(df, used, fn, hint)
    n = len(df)
    t_all = numeric_values(df[duration], duration, fn, "duration")
    e_all = _event_values(df[event], event, fn, events)
    s_all = None if entry is None else numeric_values(df[entry], entry, fn, "entry time")
    w_all = None if weights is None else numeric_values(
        df[weights], weights, fn, "case weights",
        f"pass case weights as finite numbers >= 0 (e.g. inverse-probability weights), weights={weights!r}")
    # The numeric columns' gaps are the NaN of their float values; isna() only for the others.
    converted = {duration, event, *([entry] if entry is not None else []),
                 *([weights] if weights is not None else [])}
    isna = {c: df[c].isna().to_numpy() for c in used if c not in converted}
    isna[duration] = np.isnan(t_all)
    isna[event] = np.isnan(e_all)
    if entry is not None and s_all is not None:
        isna[entry] = np.isnan(s_all)
    if weights is not None and w_all is not None:
        isna[weights] = np.isnan(w_all)
    miss = np.zeros(n, dtype=bool)
    for c in used:
        miss |= isna[c]
    missing = {str(c): int(isna[c].sum()) for c in used if isna[c].any()}
    n_missing = int(miss.sum())
    if n_missing == n:
        per = ", ".join(f"{c!r} {k}" for c, k in missing.items())
        raise NeutrostatsError(
            f"{fn}: no row of {name} ({n} rows) has a value in every column used {used} (complete cases); "
            f"missing per column: {per}; fill in or fix those columns"
        )
    if n_missing:
        keep = ~miss
        t, e = t_all[keep], e_all[keep]
        s_used = None if s_all is None else s_all[keep]
        w_used = None if w_all is None else w_all[keep]
        data = df.loc[keep, used]
    else:
        # Every row is complete: no boolean-index copy of each column (a tenth of a Kaplan-Meier of a
        # million rows). Arrays that may be views of the table's columns are copied, so that the
        # arrays returned are the caller's to keep or change, as before; the events are converted
        # (a new array) below anyway.
        t, s_used, w_used = (None if a is None else a if a.flags.owndata and a.flags.writeable else a.copy()  # type: ignore[assignment]
                             for a in (t_all, s_all, w_all))
        e = e_all
        data = df.loc[:, used]
    _check_durations(t, fn, duration)
    ev = _check_events(e, fn, event, events)
    s = None if entry is None or s_used is None else _check_entry(s_used, t, fn, entry)
    w = None if weights is None or w_used is None else _check_weights(w_used, fn, weights)
    if n_missing:
        warnings.warn(missing_message(fn, n_missing, n, missing), DataQualityWarning, stacklevel=stacklevel)
    return TTEData(data=data, time=t, event=ev, entry=s, n_input=n, n_missing=n_missing, missing=missing,
                   weights=w)



def _check_durations(t: np.ndarray, fn: str, duration: str) -> None:
    bad = ~np.isfinite(t)
    if bad.any():
        raise NeutrostatsError(
            f"{fn}: column {duration!r} (duration) must be finite, found {int(bad.sum())} infinite values "
            f"(e.g. {t[bad][0]}); censor at the end of follow-up instead (a finite time with event 0)"
        )
    if np.any(t < 0):
        neg = t < 0
        raise NeutrostatsError(
            f"{fn}: column {duration!r} (duration) must be >= 0, found {int(neg.sum())} negative values "
            f"(e.g. {t[neg][0]}); durations count from the index date: check the dates"
        )


def _check_events(e: np.ndarray, fn: str, event: str, events: str) -> np.ndarray:
    """Boolean events (``events="binary"``) or integer event codes (0 censored, 1, 2, ...)."""
    if events == "binary":
        bad = (e != 0) & (e != 1)
        if bad.any():
            raise NeutrostatsError(
                f"{fn}: column {event!r} (event) must be 0/1 or boolean, found {int(bad.sum())} values such as "
                f"{distinct_examples(e[bad].tolist(), 3)}; for competing events use cumulative_incidence"
            )
        return e.astype(bool)
    bad = ~np.isfinite(e) | (e < 0) | (e != np.floor(e))
    if bad.any():
        raise NeutrostatsError(
            f"{fn}: column {event!r} must hold event codes 0 = censored, 1 = event of interest, "
            f"2, 3, ... = competing events; found {int(bad.sum())} of {e.size} rows that are not, e.g. "
            f"{distinct_examples(e[bad].tolist(), 3)}; recode the column"
        )
    return e.astype(np.int64)


def _check_entry(s: np.ndarray, t: np.ndarray, fn: str, entry: str) -> np.ndarray:
    # As R's Surv(entry, time, event): any finite entry before the end, negative ones included.
    bad = ~np.isfinite(s) | (s >= t)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise NeutrostatsError(
            f"{fn}: column {entry!r} (entry) must be finite and before the duration (entry < duration), "
            f"found {int(bad.sum())} of {bad.size} rows that are not, e.g. entry {s[i]} with duration {t[i]}; "
            "a person is at risk on (entry, duration]: drop or fix them"
        )
    return s


def _check_weights(w: np.ndarray, fn: str, weights: str) -> np.ndarray:
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise NeutrostatsError(
            f"{fn}: column {weights!r} (case weights) must hold finite numbers >= 0, found {int(bad.sum())} "
            f"of {bad.size} rows that are not (e.g. {distinct_examples(w[bad].tolist(), 3)}); fix those "
            f"weights, or leave them missing (NaN) to leave the rows out"
        )
    if not np.any(w > 0):
        raise NeutrostatsError(
            f"{fn}: column {weights!r} (case weights) is 0 in every one of the {w.size} rows used; "
            "at least one row needs a positive weight"
        )
    return w


def with_missing(out: pd.DataFrame, d: TTEData) -> pd.DataFrame:
    """Record the complete-case accounting of ``d`` in ``out.attrs`` (``n_missing``, ``missing``)."""
    out.attrs["n_missing"] = int(d.n_missing)
    out.attrs["missing"] = dict(d.missing)
    return out
