"""Time-updated ANC: counting-process (start-stop) rows from the count history.

A person's tier is not fixed at the index sample: each later count moves the
person to the tier of that count. :func:`time_varying_tiers` cuts each
person's follow-up of :meth:`Cohort.time_to_event` at the counts and returns
one row per (person, interval), the input of a Cox model with a
time-varying tier (``entry="start"``, ``duration="stop"``, clustered by
person) and of Kaplan-Meier or Aalen-Johansen curves by current tier
(Simon-Makuch). :func:`counting_process` does the same for any follow-up
and measurement tables in days; :func:`time_varying_tiers` is built on it.

The rules (both functions; days are whole days since time zero, the index
day of a cohort):

* at risk on ``(start, stop]``; the first interval starts at 0 with the
  lowest count of day 0 (the index day);
* a count on day ``d > 0`` changes the value from day ``d + lag_days``: the
  follow-up is cut there and the new value holds on ``(d + lag_days, next
  cut]``. An event on a count's day therefore falls in the interval before
  the cut, with the value known before the event, as with
  ``survival::tmerge(..., tdc())`` [1]_;
* several counts on one day: the lowest of the day is used (the project's
  rule "the lowest value at one sample time", extended to the day);
* counts before day 0 are ignored (the day-0 count starts follow-up); counts
  that would take effect at or after the end of follow-up
  (``d + lag_days >= end``) are ignored, so a cut never falls on the end and
  no interval has zero length;
* with ``max_carry_days``, a count on day ``d`` says nothing after day
  ``d + max_carry_days`` when no newer count has taken effect by then: that
  time is "unknown" (``expired="unknown"``) or not at risk
  (``expired="censor"``: the rows skip the gap, and the person re-enters at
  the next count's cut, a delayed entry);
* a person's status (0 censored, 1 the outcome, 2 death first) is on the
  person's last row only; with ``expired="censor"`` an event in an expired
  gap is not observed (counted in ``attrs["rules"]``).

Examples
--------
>>> import pandas as pd
>>> from neutrostats.cohort.timevarying import counting_process
>>> fu = pd.DataFrame({"person_id": [1], "end": [100], "status": [1]})
>>> m = pd.DataFrame({"person_id": [1, 1, 1], "day": [0, 30, 100], "value": [2500, 900, 400]})
>>> counting_process(fu, m)[["start", "stop", "value", "status"]]
   start   stop   value  status
0    0.0   30.0  2500.0       0
1   30.0  100.0   900.0       1

References
----------
.. [1] Therneau T, Crowson C, Atkinson E. Using time dependent covariates and
   time dependent coefficients in the Cox model. Vignette of the R package
   survival (``vignette("timedep", package = "survival")``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from neutrostats.cohort._reduction import DAYS_PER_YEAR
from neutrostats.core.validate import require_choice, require_columns, require_dataframe
from neutrostats.errors import NeutrostatsError

if TYPE_CHECKING:  # build imports nothing from here; the annotation only
    from neutrostats.cohort.build import Cohort

__all__ = ["time_varying_tiers", "counting_process", "EXPIRED_CHOICES", "UNKNOWN_TIER"]

#: What ``expired=`` may do with person-time after a count has expired.
EXPIRED_CHOICES = ("unknown", "censor")
#: The tier of person-time whose last count has expired (``expired="unknown"``).
UNKNOWN_TIER = "unknown"

#: Output columns of :func:`time_varying_tiers` (before the requested person-level ``columns``).
_TV_COLUMNS = ("person_id", "start", "stop", "tier", "anc_per_ul", "sampled_at", "status", "event")


def _whole_days(x: Any, fn: str, name: str, minimum: int) -> int:
    """``x`` as an int >= ``minimum`` (bools and fractions refused)."""
    ok = isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))
    if not ok or int(x) < minimum:
        raise NeutrostatsError(
            f"{fn}: {name} must be a whole number of days >= {minimum}, found {x!r}"
        )
    return int(x)


def _check_options(lag_days: Any, max_carry_days: Any, expired: Any, fn: str) -> tuple[int, int | None]:
    lag = _whole_days(lag_days, fn, "lag_days", 0)
    carry = None if max_carry_days is None else _whole_days(max_carry_days, fn, "max_carry_days", 1)
    require_choice(expired, EXPIRED_CHOICES, fn, "expired")
    if carry is not None and carry <= lag:
        raise NeutrostatsError(
            f"{fn}: max_carry_days ({carry}) must be larger than lag_days ({lag}): a count would expire "
            "before it takes effect; raise max_carry_days or lower lag_days"
        )
    return lag, carry


def _numbers(df: pd.DataFrame, column: str, fn: str, table: str, *, whole: bool, minimum: float | None = None,
             ) -> np.ndarray:
    """A numeric column as float64, refusing missing, infinite, fractional (``whole``) or too small values."""
    s = df[column]
    if not len(s):
        return np.empty(0, dtype=float)  # an empty table: its columns have no type to check
    if not (pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)):
        raise NeutrostatsError(
            f"{fn}: column {column!r} of {table} must be numeric, found dtype {s.dtype}; convert it first "
            "(e.g. pandas.to_numeric)"
        )
    x = s.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(x)
    what = "missing or infinite"
    if whole and not bad.any():
        bad = x != np.floor(x)
        what = "not whole numbers of days"
    if minimum is not None and not bad.any():
        bad = x < minimum
        what = f"below {minimum:g}"
    if bad.any():
        raise NeutrostatsError(
            f"{fn}: column {column!r} of {table} has {int(bad.sum())} values {what} (e.g. "
            f"{s[bad].iloc[:3].tolist()}); remove or correct those rows before the call"
        )
    return x


def counting_process(
    follow_up: pd.DataFrame,
    measurements: pd.DataFrame,
    *,
    person: str = "person_id",
    end: str = "end",
    status: str = "status",
    day: str = "day",
    value: str = "value",
    lag_days: int = 0,
    max_carry_days: int | None = None,
    expired: str = "unknown",
) -> pd.DataFrame:
    """Start-stop rows of a value that changes at measurement days (generic, in days).

    The engine of :func:`time_varying_tiers`, for any follow-up table and any
    measured value (a lab value whose lowest of the day counts). The rules
    are those of the module (:mod:`neutrostats.cohort.timevarying`).

    Parameters
    ----------
    follow_up : pandas.DataFrame
        One row per person: ``person``, ``end`` (end of follow-up, days since
        time zero, >= 0; whole days, or a fraction of a day for a horizon in
        years), ``status`` (integer: 0 censored at ``end``, otherwise the
        event code at ``end``).
    measurements : pandas.DataFrame
        ``person``, ``day`` (whole days since the person's time zero; may be
        negative) and ``value`` (a number). Rows of persons not in
        ``follow_up`` are ignored and counted.
    person, end, status, day, value : str
        Column names.
    lag_days : int, default 0
        A measurement on day ``d > 0`` takes effect on day ``d + lag_days``
        (the value holds after that day).
    max_carry_days : int, optional
        A measurement says nothing after ``max_carry_days`` days: the time
        after day ``d + max_carry_days`` without a newer value in effect has
        no value. Must be larger than ``lag_days``. Default: a value holds
        until the next one.
    expired : {"unknown", "censor"}, default "unknown"
        Time without a value in effect (after expiry, or before a person's
        first measurement when there is none on day 0): kept with no value,
        or dropped (``"censor"``: not at risk).

    Returns
    -------
    pandas.DataFrame
        One row per (person, interval), persons in ``follow_up`` order, then
        by ``start``: ``person``; ``start``, ``stop`` (float days, ``start <
        stop``, at risk on ``(start, stop]``; the last stop of a person is
        ``end``); ``value`` (the value in effect, the lowest of its day; NaN
        when none); ``measurement_row`` (int64 position in ``measurements``
        of that value's row, -1 when none; on a tie within the day the first
        row); ``status`` (int64, the person's status on the last row, 0 on
        the others). Persons with ``end == 0`` have no row.
        ``attrs["rules"]`` counts what the rules did: measurement rows
        ``counts_used`` (the lowest of each day used), ``counts_not_lowest_of_day``,
        ``counts_before_time_zero``, ``counts_after_follow_up`` (taking effect
        at or after ``end``), ``counts_of_persons_without_follow_up_time``,
        ``counts_of_other_persons`` (they add up to the rows of
        ``measurements``); persons ``persons_without_follow_up_time``
        (``end == 0``), ``persons_without_count_at_zero``,
        ``persons_with_expired_time`` and ``time_expired`` (days after
        expiry or before the first value, kept or dropped), and
        ``events_in_censored_time`` (non-zero statuses dropped with
        ``expired="censor"``).

    Raises
    ------
    NeutrostatsError
        For missing columns, duplicate persons in ``follow_up``, missing,
        infinite or fractional days, a negative ``end``, missing values, or
        bad ``lag_days``, ``max_carry_days`` or ``expired``.

    See Also
    --------
    time_varying_tiers : the same rows from a cohort, with its tiers.

    Notes
    -----
    Vectorised: one stable sort of the measurements (skipped when they are
    already sorted by person, in ``follow_up`` order, and day), then cut
    points by array shifts.

    References
    ----------
    .. [1] Therneau T, Crowson C, Atkinson E. Using time dependent covariates
       and time dependent coefficients in the Cox model. Vignette of the R
       package survival.

    Examples
    --------
    Two counts on day 40 (the lowest, 700, is used), one after the end
    ignored; the value changes a week after each count:

    >>> import pandas as pd
    >>> fu = pd.DataFrame({"person_id": ["a", "b"], "end": [90, 20], "status": [1, 0]})
    >>> m = pd.DataFrame({"person_id": ["a", "a", "a", "a", "b"], "day": [0, 40, 40, 95, 0],
    ...                   "value": [1600, 900, 700, 300, 2000]})
    >>> counting_process(fu, m, lag_days=7)
      person_id  start  stop   value  measurement_row  status
    0         a    0.0  47.0  1600.0                0       0
    1         a   47.0  90.0   700.0                2       1
    2         b    0.0  20.0  2000.0                4       0
    """
    fn = "counting_process"
    lag, carry = _check_options(lag_days, max_carry_days, expired, fn)
    follow_up = require_dataframe(follow_up, fn, "follow_up")
    measurements = require_dataframe(measurements, fn, "measurements")
    require_columns(follow_up, [person, end, status], fn, "Name the follow_up columns with person=, end=, status=.")
    require_columns(measurements, [person, day, value], fn,
                    "Name the measurements columns with person=, day=, value=.")
    ids = follow_up[person]
    dup = ids.duplicated(keep=False)
    if dup.any():
        raise NeutrostatsError(
            f"{fn}: follow_up must have one row per person, found {int(ids[dup].nunique())} persons on several "
            f"rows (e.g. {ids[dup].iloc[0]!r}); keep one follow-up row per person"
        )
    fu_end = _numbers(follow_up, end, fn, "follow_up", whole=False, minimum=0.0)
    fu_status = _numbers(follow_up, status, fn, "follow_up", whole=True).astype(np.int64)
    mday = _numbers(measurements, day, fn, "measurements", whole=True).astype(np.int64)
    mval = _numbers(measurements, value, fn, "measurements", whole=False)
    mp = pd.Index(ids).get_indexer(measurements[person])
    rows, rules = _counting_process(fu_end, fu_status, mp.astype(np.int64), mday, mval, lag=lag, carry=carry,
                                    censor=expired == "censor")
    out = pd.DataFrame({
        person: ids.to_numpy()[rows["person"]],
        "start": rows["start"],
        "stop": rows["stop"],
        value: rows["value"],
        "measurement_row": rows["measurement_row"],
        "status": rows["status"],
    })
    out.attrs["rules"] = rules
    return out


def _counting_process(fu_end: np.ndarray, fu_status: np.ndarray, mp: np.ndarray, mday: np.ndarray,
                      mval: np.ndarray, *, lag: int, carry: int | None, censor: bool,
                      ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays of :func:`counting_process` (``mp``: person position of each measurement, -1 unknown)."""
    n_meas = mp.size
    other = mp < 0
    p_safe = np.where(other, 0, mp)
    e_of = fu_end[p_safe] if fu_end.size else np.zeros(mp.size)
    before = ~other & (mday < 0)
    after = ~other & (mday > 0) & (mday + lag >= e_of)
    no_time = ~other & ~before & ~after & (e_of <= 0)
    use = np.flatnonzero(~(other | before | after | no_time))
    p, d, v = mp[use], mday[use], mval[use]

    cp, cd, cv, crow = _lowest_of_each_day(use, p, d, v)
    n_used = int(cp.size)

    # Persons with follow-up time but no count on day 0 start without a value (a placeholder, row -1).
    n = fu_end.size
    has_zero = np.zeros(n, dtype=bool)
    has_zero[cp[cd == 0]] = True
    missing0 = np.flatnonzero(~has_zero & (fu_end > 0))
    if missing0.size:
        at = np.searchsorted(cp, missing0, side="left")
        cp = np.insert(cp, at, missing0)
        cd = np.insert(cd, at, 0)
        cv = np.insert(cv, at, np.nan)
        crow = np.insert(crow, at, -1)
    known = crow >= 0

    # Each count's segment runs from its cut to the next cut of the person (or the end of follow-up);
    # with max_carry_days it splits at the expiry into a known part and an expired part.
    cut = np.where(cd == 0, 0, cd + lag).astype(np.float64)
    e = fu_end[cp]
    same_next = np.zeros(cp.size, dtype=bool)
    same_next[:-1] = cp[1:] == cp[:-1]
    seg_end = e.copy()
    seg_end[:-1] = np.where(same_next[:-1], cut[1:], e[:-1])
    if carry is None:
        valid_end = np.where(known, seg_end, cut)
    else:
        valid_end = np.where(known, np.minimum(seg_end, (cd + carry).astype(np.float64)), cut)
    start = np.column_stack([cut, valid_end]).ravel()
    stop = np.column_stack([valid_end, seg_end]).ravel()
    in_force = np.column_stack([known, np.zeros(cp.size, dtype=bool)]).ravel()
    person = np.repeat(cp, 2)
    emit = stop > start
    # The person's status belongs to the last emitted row (stop == end of follow-up).
    last = emit & (stop == np.repeat(e, 2))
    status = np.where(last, fu_status[person], 0).astype(np.int64)
    gap = emit & ~in_force
    gap_persons = np.unique(person[gap & np.repeat(known, 2)])
    rules: dict[str, Any] = {
        "counts_used": n_used,
        "counts_not_lowest_of_day": int(use.size - n_used),
        "counts_before_time_zero": int(before.sum()),
        "counts_after_follow_up": int(after.sum()),
        "counts_of_persons_without_follow_up_time": int(no_time.sum()),
        "counts_of_other_persons": int(other.sum()),
        "persons_without_follow_up_time": int((fu_end <= 0).sum()),
        "persons_without_count_at_zero": int(missing0.size),
        "persons_with_expired_time": int(gap_persons.size),
        "time_expired": float((stop - start)[gap].sum()),
        "events_in_censored_time": int((gap & last & (status != 0)).sum()) if censor else 0,
    }
    assert sum(v for k, v in rules.items() if k.startswith("counts_")) == n_meas
    keep = emit & in_force if censor else emit
    measurement_row = np.where(in_force, np.repeat(crow, 2), -1)
    rows = {
        "person": person[keep],
        "start": start[keep],
        "stop": stop[keep],
        "value": np.where(in_force, np.repeat(cv, 2), np.nan)[keep],
        "measurement_row": measurement_row[keep].astype(np.int64),
        "status": status[keep],
    }
    return rows, rules


def _lowest_of_each_day(use: np.ndarray, p: np.ndarray, d: np.ndarray, v: np.ndarray,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Person, day, value and row (``use``) of the lowest value of each (person, day), in (person, day) order.

    One stable sort, skipped when the input is already in that order (a
    cohort's is); on a tie within the day the first row.
    """
    if p.size > 1 and not _sorted_pairs(p, d):
        order = np.lexsort((d, p))
        use, p, d, v = use[order], p[order], d[order], v[order]
    new_day = np.ones(p.size, dtype=bool)
    new_day[1:] = (p[1:] != p[:-1]) | (d[1:] != d[:-1])
    starts = np.flatnonzero(new_day)
    if not p.size:
        return p, d, v, use
    gid = np.cumsum(new_day) - 1
    low = np.minimum.reduceat(v, starts)
    hit = np.flatnonzero(v == low[gid])
    first = np.ones(hit.size, dtype=bool)
    first[1:] = gid[hit][1:] != gid[hit][:-1]
    pick = hit[first]
    return p[pick], d[pick], v[pick], use[pick]


def _sorted_pairs(p: np.ndarray, d: np.ndarray) -> bool:
    """Are the (person, day) pairs in non-decreasing order?"""
    dp = np.diff(p)
    if (dp < 0).any():
        return False
    return bool(((dp > 0) | (np.diff(d) >= 0)).all())


def time_varying_tiers(
    cohort: Cohort,
    outcome: str = "death",
    *,
    horizon: float | None = None,
    lag_days: int = 0,
    max_carry_days: int | None = None,
    expired: str = "unknown",
    columns: Iterable[str] = (),
) -> pd.DataFrame:
    """Counting-process rows of a cohort: the tier in force over follow-up, updated by every count.

    Follow-up is that of ``cohort.time_to_event(outcome, horizon)``; the
    first interval starts at the index day with the tier of that day's
    lowest count, and each later count in ``cohort.measurements`` moves the
    person to its tier from ``lag_days`` days after its day (the rules of
    :mod:`neutrostats.cohort.timevarying`). The result is the input of
    :func:`~neutrostats.cox_hazard_ratios` with ``entry="start"``,
    ``duration="stop"``, ``event="event"`` and ``cluster="person_id"``.

    Parameters
    ----------
    cohort : Cohort
        From :func:`~neutrostats.build_cohort` with its measurements (a
        pandas lab table keeps them; a lazy source needs
        ``keep_measurements=True``).
    outcome : str, default "death"
        ``"death"`` or an outcome of the cohort, as in
        :meth:`Cohort.time_to_event`; persons with a prevalent outcome are
        not at risk and have no rows.
    horizon : float, optional
        Years since index: follow-up is censored there.
    lag_days : int, default 0
        Days after a count's day before its tier takes effect (0: from the
        end of the count's day; an event on that day still has the tier
        before it).
    max_carry_days : int, optional
        Days a count stays valid: after day ``d + max_carry_days`` with no
        newer count in effect, the tier is unknown. Must be larger than
        ``lag_days``. Default: a count holds until the next one.
    expired : {"unknown", "censor"}, default "unknown"
        With ``max_carry_days``: keep expired time with the tier
        ``"unknown"``, or drop it (not at risk; the person re-enters at the
        next count).
    columns : sequence of str, default ()
        Person-level columns of ``cohort.table`` repeated on each row (e.g.
        ``("age_at_index", "sex")``).

    Returns
    -------
    pandas.DataFrame
        One row per (person, interval), persons in ``cohort.table`` order,
        then by ``start``: ``person_id``; ``start``, ``stop`` (float years
        since the index day, days / 365.25, ``start < stop``, at risk on
        ``(start, stop]``; a person's last ``stop`` is their ``time`` in
        ``time_to_event``); ``tier`` (ordered Categorical of the scheme's
        tiers, with a last level ``"unknown"`` when ``max_carry_days`` is
        set and ``expired="unknown"``); ``anc_per_ul`` (the count in force,
        the lowest of its day; NaN when unknown); ``sampled_at`` (its sample
        time; NaT when unknown); ``status`` (int64: 0 censored, 1 the
        outcome, 2 death first; non-zero only on a person's last row);
        ``event`` (int64, ``status == 1``); then ``columns``.
        ``attrs``: ``n_prevalent`` (persons not at risk), ``n_persons``
        (persons at risk, with or without rows), ``rules`` (the counts of
        :func:`counting_process`, times in years: ``person_years_expired``;
        plus ``counts_of_persons_not_at_risk``, the measurements of
        prevalent persons).

    Raises
    ------
    NeutrostatsError
        For a cohort without measurements, an unknown outcome, a bad
        ``horizon``, ``lag_days``, ``max_carry_days`` or ``expired``, or a
        name in ``columns`` that is not a column of ``cohort.table`` or is
        already an output column.

    See Also
    --------
    counting_process : the same rows from any follow-up and measurement tables.
    Cohort.time_to_event : the fixed-tier follow-up these rows split.

    Notes
    -----
    The tier of the first interval is that of the lowest count of the index
    day, which can be more severe than ``cohort.table["tier"]`` when the
    index sample is not the day's lowest (``index="first"`` with a lower
    count later that day). The tier of a day is that of its lowest count.
    Persons whose follow-up has length 0 (death or end of data on the index
    day) have no rows (``rules["persons_without_follow_up_time"]``). Days
    are calendar days of the wall-clock sample times, as in
    :func:`~neutrostats.build_cohort`.

    References
    ----------
    .. [1] Therneau T, Crowson C, Atkinson E. Using time dependent covariates
       and time dependent coefficients in the Cox model. Vignette of the R
       package survival.
    .. [2] Simon R, Makuch RW. A non-parametric graphical representation of
       the relationship between survival and the occurrence of an event:
       application to responder versus non-responder bias. Stat Med
       1984;3:35-44.

    Examples
    --------
    >>> import pandas as pd
    >>> from neutrostats import build_cohort
    >>> from neutrostats.cohort.timevarying import time_varying_tiers
    >>> labs = pd.DataFrame({"person_id": [1, 1, 1, 2],
    ...                      "sampled_at": ["2010-01-05", "2010-03-06", "2010-03-06 18:00", "2010-06-01"],
    ...                      "value": [2500, 1400, 900, 2000], "unit": "cells/uL"})
    >>> persons = pd.DataFrame({"person_id": [1, 2], "sex": ["F", "M"],
    ...                         "birth_date": ["1950-01-01", "1960-01-01"], "end_of_data": "2010-12-31"})
    >>> deaths = pd.DataFrame({"person_id": [1], "died_at": ["2010-07-01"]})
    >>> c = build_cohort(labs, persons, pd.DataFrame(columns=["person_id", "diagnosed_at", "code"]), deaths,
    ...                  code=None)
    >>> tv = time_varying_tiers(c, "death", columns=["sex"])
    >>> tv[["person_id", "start", "stop", "tier", "anc_per_ul", "status", "sex"]].round(4)
       person_id   start    stop             tier  anc_per_ul  status sex
    0          1  0.0000  0.1643           normal      2500.0       0   F
    1          1  0.1643  0.4846  moderate_severe       900.0       1   F
    2          2  0.0000  0.5832           normal      2000.0       0   M
    """
    fn = "time_varying_tiers"
    lag, carry = _check_options(lag_days, max_carry_days, expired, fn)
    meas = cohort.measurements
    if meas is None:
        raise NeutrostatsError(
            f"{fn}: the cohort has no measurements (Cohort.measurements is None), found a cohort built from a "
            "lazy source without them; build it with build_cohort(..., keep_measurements=True)"
        )
    table = cohort.table
    if isinstance(columns, str):
        columns = [columns]
    columns = list(columns)
    unknown = [c for c in columns if c not in table.columns]
    if unknown:
        raise NeutrostatsError(
            f"{fn}: columns {unknown} are not columns of cohort.table; expected some of "
            f"{[str(c) for c in table.columns]}"
        )
    clash = [c for c in columns if c in _TV_COLUMNS]
    if clash:
        raise NeutrostatsError(
            f"{fn}: columns {clash} are already output columns ({list(_TV_COLUMNS)}); the index tier is "
            "cohort.table['tier']: copy it under another name (e.g. table.assign(index_tier=table['tier'])) "
            "or merge it on person_id"
        )
    try:
        tte = cohort.time_to_event(outcome, horizon)
    except NeutrostatsError as err:
        raise NeutrostatsError(str(err).replace("Cohort.time_to_event", fn)) from None
    at_risk = table.index.get_indexer(tte.index)  # positions in table of the persons at risk
    time = tte["time"].to_numpy(dtype=float)
    end_days = time * DAYS_PER_YEAR
    # Follow-up ends on whole days except at a horizon: undo the rounding of days / 365.25 * 365.25.
    whole = np.round(end_days)
    end_days = np.where(np.abs(end_days - whole) < 1e-6, whole, end_days)

    mp = pd.Index(tte["person_id"]).get_indexer(meas["person_id"]).astype(np.int64)
    index_day = table["index_date"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    sample = meas["sampled_at"].to_numpy(dtype="datetime64[ns]")
    mday = sample.astype("datetime64[D]").astype(np.int64) - index_day[at_risk][np.where(mp < 0, 0, mp)]
    rows, rules = _counting_process(end_days, tte["status"].to_numpy(dtype=np.int64), mp, mday,
                                    meas["anc_per_ul"].to_numpy(dtype=float), lag=lag, carry=carry,
                                    censor=expired == "censor")
    pos = rows["person"]
    mrow = rows["measurement_row"]
    known = mrow >= 0
    tier_dtype = pd.CategoricalDtype(meas["tier"].cat.categories, ordered=True)  # the scheme's dtype
    codes = np.where(known, meas["tier"].cat.codes.to_numpy()[np.where(known, mrow, 0)], -1)
    if carry is not None and expired == "unknown":
        tier_dtype = pd.CategoricalDtype([*tier_dtype.categories, UNKNOWN_TIER], ordered=True)
        codes = np.where(known, codes, len(tier_dtype.categories) - 1)
    tier = pd.Categorical.from_codes(codes.astype(np.int16), dtype=tier_dtype)
    stop_years = rows["stop"] / DAYS_PER_YEAR
    # The last stop is time_to_event's own number, not a round trip through days.
    last = rows["stop"] == end_days[pos]
    stop_years[last] = time[pos[last]]
    out = pd.DataFrame({
        "person_id": tte["person_id"].to_numpy()[pos],
        "start": rows["start"] / DAYS_PER_YEAR,
        "stop": stop_years,
        "tier": tier,
        "anc_per_ul": rows["value"],
        "sampled_at": np.where(known, sample[np.where(known, mrow, 0)], np.datetime64("NaT", "ns")),
        "status": rows["status"],
        "event": (rows["status"] == 1).astype(np.int64),
    })
    for c in columns:
        out[c] = table[c].take(at_risk[pos]).reset_index(drop=True)
    rules = dict(rules)
    rules["counts_of_persons_not_at_risk"] = rules.pop("counts_of_other_persons")
    rules["person_years_expired"] = rules.pop("time_expired") / DAYS_PER_YEAR
    out.attrs["n_prevalent"] = int(tte.attrs["n_prevalent"])
    out.attrs["n_persons"] = int(len(tte))
    out.attrs["rules"] = rules
    return out
