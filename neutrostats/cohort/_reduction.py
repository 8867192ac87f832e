"""The in-memory lab reduction and what it shares with the SQL engines.

Both engines, :func:`_reduce_labs` here and ``_sql.reduce_labs_sql``, return a
:class:`_LabReduction` built from the same flow steps and summary columns, so
:func:`~neutrostats.cohort.build_cohort` does not know where the labs were.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from neutrostats.core.validate import is_text, require_columns
from neutrostats.core.dates import parse_dates
from neutrostats.errors import NeutrostatsError
from neutrostats.labs.codes import read_code_map
from neutrostats.labs.classify import (
    FLAG_CODES,
    ANC_FLAGS,
    FLAG_DESCRIPTIONS,
    UNIT_SUSPECT_BELOW,
    classify_frame,
    Default,
    duffy_null_mask,
    sample_ages,
    code_roles,
    require_known_codes,
    unknown_unit_counts,
)
from neutrostats.labs.units import unknown_unit_message

#: Days in a year, for ages and follow-up in years.
DAYS_PER_YEAR = 365.25
_NEVER = np.iinfo(np.int64).max


def _dates(values: pd.Series) -> pd.Series:
    """Naive wall-clock timestamps by :func:`neutrostats.core.dates.parse_dates` (NaT where missing or unreadable)."""
    return parse_dates(values, table="labs", column=str(values.name), function="build_cohort")


def _id_kind(values: pd.Series) -> str:
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    if is_text(dtype):
        inferred = pd.api.types.infer_dtype(values, skipna=True)
        if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
            return "number"
        if inferred in ("string", "empty"):
            return "text"
        return f"mixed ({inferred})"
    return str(dtype)


def _days(ts: pd.Series) -> np.ndarray:
    """Whole days since 1970 (int64); NaT becomes _NEVER."""
    arr = ts.to_numpy(dtype="datetime64[ns]")
    out = arr.astype("datetime64[D]").astype(np.int64)
    out[np.isnat(arr)] = _NEVER
    return out


def check_lab_columns(columns, fn, *, person, time, value, unit, code, lower_limit, temporal) -> bool:
    """The lab table's columns checked alike on every engine, before any row is read; True for a long table.

    ``columns``: the table's column names; ``temporal(name)``: what a column
    holds when it holds dates, times or durations (e.g. ``"dates or times
    (datetime64[ns])"``), else None. A value or lower-limit column of dates
    is refused here: one engine would fail on the cast, the other read
    every row as not a number, and neither is what the user meant.
    """
    schema = pd.DataFrame(columns=list(columns))
    require_columns(schema, [person, time, value], fn, "Name the lab columns with person=, time= and value=.")
    long_format = code is not None and (code in schema.columns or not isinstance(code, Default))
    if long_format:
        require_columns(schema, [code], fn, "Pass code=None for a table of ANC results only.")
    require_columns(schema, [unit], fn, "Pass unit=<column of units>.")
    if lower_limit is not None:
        require_columns(schema, [lower_limit], fn, "Pass lower_limit=<column of the lab's lower limit of normal>.")
    for column, what, option in ((value, "lab results", "value"), (lower_limit, "lower limits of normal",
                                                                    "lower_limit")):
        held = None if column is None else temporal(column)
        if held is not None:
            raise NeutrostatsError(
                f"{fn}: column {column!r} of labs holds {held}, not {what}; name the column of {what} with "
                f"{option}= (numbers, or text such as '1.2' or '<0.5')"
            )
    return long_format


def frame_temporal(labs: pd.DataFrame):
    """``temporal`` of :func:`check_lab_columns` for a pandas table: by the column's dtype."""
    def held(column) -> str | None:
        dtype = labs[column].dtype
        if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
            return f"dates or times ({dtype})"
        if pd.api.types.is_timedelta64_dtype(dtype):
            return f"durations ({dtype})"
        return None
    return held


def whole_microseconds(times: pd.Series) -> pd.Series:
    """Sample times rounded to whole microseconds (half away from zero), as DuckDB reads nanoseconds.

    Parquet files and Spark hold microseconds, and DuckDB rounds a pandas
    table's nanoseconds so; rounding here too makes two samples 400 ns apart
    one sample on every engine. ``times`` itself (attributes and all) when
    no time has a part below a microsecond, the usual case.
    """
    if times.dtype != np.dtype("datetime64[ns]"):
        return times  # coarser units hold whole microseconds already
    ns = times.to_numpy().view(np.int64)
    part = (ns % 1000) != 0
    if not part.any():
        return times
    nat = np.isnat(times.to_numpy())  # NaT, the least int64, has a part too
    if not (part & ~nat).any():
        return times
    q, r = np.divmod(ns, 1000)
    # q is floored: a negative half (r == 500 below zero) goes away from zero, i.e. stays at q.
    up = np.where(ns >= 0, r >= 500, r > 500)
    rounded = np.where(nat, ns, (q + up) * 1000).view("datetime64[ns]")
    out = pd.Series(rounded, index=times.index, name=times.name)
    out.attrs.update(times.attrs)
    return out


@dataclass(frozen=True)
class _Persistence:
    """The persistence rules of :func:`~neutrostats.build_cohort` (validated there), for both engines.

    ``confirm_days``: least whole days between two counts below the normal
    limit that confirm neutropenia; ``allow_normal``: whether a normal count
    may lie between them; ``chronic_below``: the chronic rule's threshold in
    cells/µL (None: below the person's normal limit, the tier rule).
    """

    confirm_days: int = 30
    allow_normal: bool = False
    chronic_below: float | None = None


def _first_per_group(group: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Positions (into the original arrays) of the first row of each group in ``order``."""
    g = group[order]
    first = np.ones(len(g), dtype=bool)
    first[1:] = g[1:] != g[:-1]
    return order[first]


@dataclass(frozen=True)
class _LabReduction:
    """The lab table reduced to one row per person (persons order).

    Both the in-memory path (:func:`_reduce_labs`) and the SQL path
    (``_sql.reduce_labs_sql``) return this, so the rest of
    :func:`build_cohort` does not know where the labs were.
    """

    rows_read: int
    persons_read: int
    #: (description, persons emptied, rows excluded) of each lab step after
    #: "lab rows read", in flow order.
    steps: list
    n_meas: np.ndarray  # usable measurements per person
    with_labs: np.ndarray  # person has any lab row
    in_window: np.ndarray  # has a measurement in the index window
    eligible: np.ndarray  # has one in the window and at an eligible age
    index: dict  # per person: sampled_at (NaT none), anc_per_ul, censor, source, tier codes, normal_limit_per_ul
    summary: dict  # per person: the _lab_summary columns
    measurements: dict | None  # pidx, sampled_at, anc_per_ul, tier code, sorted by person and time


_UNKNOWN_PERSONS_STEP = "lab rows of persons not in the persons table (data error)"


_TIME_STEP = "sample time missing"


_UNREADABLE_TIME_STEP = "sample time not readable as a date (see date_format=)"


_REPEAT_STEP = "repeat ANC at the same sample time (lowest kept)"


#: The lab flow's row steps in flow order; a step's position is its code in
#: the SQL path (the ANC flag codes, then time, then repeat).
_ROW_STEPS = tuple(FLAG_DESCRIPTIONS[name] for name in ANC_FLAGS) + (_TIME_STEP, _REPEAT_STEP)


def _empty_index(n: int) -> dict:
    return {
        "sampled_at": np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"),
        "anc_per_ul": np.full(n, np.nan),
        "censor": np.full(n, -1, dtype=np.int8),
        "source": np.full(n, -1, dtype=np.int8),
        "tier": np.full(n, -1, dtype=np.int8),
        "normal_limit_per_ul": np.full(n, np.nan),
    }


def _any_per_person(mp: np.ndarray, mask: np.ndarray, n_persons: int) -> np.ndarray:
    """Per person: does any of their measurements (``mp``: person of each) satisfy ``mask``?"""
    has = np.zeros(n_persons, dtype=bool)
    has[mp[mask]] = True
    return has


def _eligible_measurements(mp, mday, births, index_window, age_range, n_persons):
    """Which measurements may be the index (in the window, at an eligible age); and who has one in the window."""
    eligible = np.ones(mp.size, dtype=bool)
    if index_window is not None:
        lo = -_NEVER if index_window[0] is None else index_window[0]
        hi = _NEVER if index_window[1] is None else index_window[1]
        eligible &= (mday >= lo) & (mday <= hi)
    in_window = _any_per_person(mp, eligible, n_persons)
    if age_range is not None:
        age_years = np.where(births[mp] == _NEVER, np.nan, (mday - births[mp]) / DAYS_PER_YEAR)
        completed = np.floor(age_years)
        eligible &= (completed >= age_range[0]) & (completed <= age_range[1])
    return eligible, in_window


def _index_measurements(index, cand, mp, mt, manc, mbelow, n_persons, mconfirms=None) -> np.ndarray:
    """The index measurement of each person with a candidate, by strategy (``cand`` is in person, time order)."""
    if index == "first":
        return _first_per_group(mp, cand)
    if index in ("first_neutropenic", "first_confirmed"):
        # The first candidate meeting the rule; persons with none enter at their first candidate.
        meets = mbelow if index == "first_neutropenic" else mconfirms
        rule_first = _first_per_group(mp, cand[meets[cand]])
        any_first = _first_per_group(mp, cand)
        has_rule = np.zeros(n_persons, dtype=bool)
        has_rule[mp[rule_first]] = True
        return np.concatenate([rule_first, any_first[~has_rule[mp[any_first]]]])
    # The lowest, the earliest if tied: ``cand`` is in person, time order already.
    return cand[_first_lowest(manc[cand], _run_starts(mp[cand]))]


def _index_fields(classified, m, pick, mp, mt, manc, mtier, n_persons) -> dict:
    """The index measurement's fields per person (``m``: rows of ``classified`` measured; ``pick``: into ``m``)."""
    ix = _empty_index(n_persons)
    pp, rows = mp[pick], m[pick]
    ix["sampled_at"][pp] = mt[pick].astype("datetime64[ns]")
    ix["anc_per_ul"][pp] = manc[pick]
    ix["censor"][pp] = classified["anc_censor"].cat.codes.to_numpy()[rows]
    ix["source"][pp] = classified["anc_source"].cat.codes.to_numpy()[rows]
    ix["tier"][pp] = mtier[pick]
    ix["normal_limit_per_ul"][pp] = classified["normal_limit_per_ul"].to_numpy()[rows]
    return ix


def _reduce_labs(labs, persons, person_index, births, *, scheme, index, age_range, index_window, duffy_null,
                 duffy_null_limit, chronic_months, person, time, value, unit, code, on_unknown_unit, decimal,
                 keep_measurements, thousands=None, unit_suspect_below=UNIT_SUSPECT_BELOW, code_map=None,
                 persistence=_Persistence(), lower_limit=None, age_limits=None):
    """In-memory lab reduction with :func:`classify_anc` (numpy)."""
    n_persons = len(person_index)
    lab_person = person_index.get_indexer(labs[person])
    known = lab_person >= 0
    all_known = bool(known.all())
    lab_view = labs if all_known else labs.loc[known]
    lab_codes = lab_person if all_known else lab_person[known]
    # Rows left per person, so that each step counts the persons it empties.
    left_per_person = np.bincount(lab_codes, minlength=n_persons)
    persons_left = int(np.count_nonzero(left_per_person))
    # Distinct ids: the known ones are their persons; the others (usually few rows) by value.
    persons_read = persons_left + (0 if all_known else pd.unique(labs[person][~known]).size)
    steps = [(_UNKNOWN_PERSONS_STEP, persons_read - persons_left, int((~known).sum()))]
    long_format = code is not None and (code in labs.columns or not isinstance(code, Default))
    cmap = None if code_map is None else read_code_map(code_map, function="build_cohort")
    if on_unknown_unit == "raise" and not all_known:
        _refuse_unknown_units(labs, known, unit, code, cmap, long_format)

    # One sort by person and time serves the derivation's samples, the repeats and the measurements.
    sample_time = _dates(lab_view[time]).to_numpy(dtype="datetime64[ns]")
    t_ns = sample_time.view(np.int64)
    order, sample_keys = _samples(lab_codes, t_ns)
    lab_view, ages, time_missing = _limit_inputs(lab_view, lab_codes, persons, births, duffy_null=duffy_null,
                                                 age_limits=age_limits, time=time)
    classified = classify_frame(
        lab_view, scheme, value=value, unit=unit, assume_unit=None, code=code, person=person, time=time,
        duffy_null="__duffy_null" if duffy_null is not None else None, duffy_null_limit=duffy_null_limit,
        on_unknown_unit=on_unknown_unit, decimal=decimal, thousands=thousands,
        unit_suspect_below=unit_suspect_below, code_map=cmap, check_codes=False,
        lower_limit=lower_limit, age_limits=age_limits, ages=ages, time_missing=time_missing,
        sample_keys=sample_keys, function="build_cohort",
    )
    flags = classified["anc_flag"].cat.codes.to_numpy()
    if long_format:
        # Rows of a known code never end in these flags: only then can the
        # table lack one, which is checked on every row (as the SQL path does).
        if not np.isin(flags, [FLAG_CODES["missing_value"], FLAG_CODES["non_numeric"], FLAG_CODES["not_anc_test"]],
                       invert=True).any():
            require_known_codes(code_roles(labs[code], cmap), labs[code], "build_cohort", code)
    alive_rows = np.ones(len(classified), dtype=bool)

    def drop_rows(mask: np.ndarray, description: str) -> None:
        nonlocal persons_left
        gone = mask & alive_rows
        alive_rows[gone] = False
        left_per_person[:] -= np.bincount(lab_codes[gone], minlength=n_persons)
        left = int(np.count_nonzero(left_per_person))
        steps.append((description, persons_left - left, int(gone.sum())))
        persons_left = left

    for code_i in range(len(ANC_FLAGS)):
        hit = flags == code_i
        if hit.any():
            drop_rows(hit, _ROW_STEPS[code_i])
    bad_time = alive_rows & np.isnat(sample_time)
    if bad_time.any():
        drop_rows(bad_time, _TIME_STEP)

    # One measurement per person and sample time: the lowest value, the first in input order among equals.
    anc = classified["anc_per_ul"].to_numpy()
    alive = np.flatnonzero(alive_rows) if order is None else order[alive_rows[order]]
    m = alive[_first_lowest(anc[alive], _run_starts(sample_keys[alive]))]  # sorted by person, time
    repeat = alive_rows.copy()
    repeat[m] = False
    if repeat.any():
        drop_rows(repeat, _REPEAT_STEP)
    return _measurement_reduction(classified, m, lab_codes, t_ns, sample_time, anc, n_persons, births, steps,
                                  rows_read=len(labs), persons_read=persons_read, index=index,
                                  index_window=index_window, age_range=age_range, chronic_months=chronic_months,
                                  persistence=persistence, keep_measurements=keep_measurements)


def _measurement_reduction(classified, m, lab_codes, t_ns, sample_time, anc, n_persons, births, steps, *,
                           rows_read, persons_read, index, index_window, age_range, chronic_months, persistence,
                           keep_measurements) -> _LabReduction:
    """The reduction from the measurement rows ``m`` (one per person and sample time, sorted so)."""
    mp = lab_codes[m]
    mt = t_ns[m]
    mday = sample_time[m].astype("datetime64[D]").astype(np.int64)
    manc = anc[m]
    mtier = classified["tier"].cat.codes.to_numpy()[m]
    mbelow = mtier > 0
    mcens = classified["anc_censor"].cat.codes.to_numpy()[m]
    mconfirms = _confirming(mp, mday, mbelow, n_persons, persistence)

    eligible, in_window = _eligible_measurements(mp, mday, births, index_window, age_range, n_persons)
    pick = _index_measurements(index, np.flatnonzero(eligible), mp, mt, manc, mbelow, n_persons, mconfirms)
    ix = _index_fields(classified, m, pick, mp, mt, manc, mtier, n_persons)

    with_labs = np.zeros(n_persons, dtype=bool)
    with_labs[lab_codes] = True
    measurements = None
    if keep_measurements:
        measurements = {"pidx": mp, "sampled_at": mt.astype("datetime64[ns]"), "anc_per_ul": manc, "tier": mtier}
    return _LabReduction(
        rows_read=rows_read, persons_read=int(persons_read), steps=steps,
        n_meas=np.bincount(mp, minlength=n_persons), with_labs=with_labs, in_window=in_window,
        eligible=_any_per_person(mp, eligible, n_persons), index=ix,
        summary=_lab_summary(mp, mt, mday, manc, mtier, mbelow, n_persons, chronic_months,
                             mcens=mcens, mconfirms=mconfirms, chronic_below=persistence.chronic_below),
        measurements=measurements,
    )


def _refuse_unknown_units(labs, known, unit, code, cmap, long_format) -> None:
    """Unknown units are refused on every row, as the SQL path reads them, also on rows of unknown persons.

    Only those rows are read here (the others are classified next, which
    checks them); the message counts the whole table.
    """
    if unknown_unit_counts(labs.loc[~known], unit, code, cmap, long_format):
        raise NeutrostatsError(unknown_unit_message("build_cohort", unit,
                                                    unknown_unit_counts(labs, unit, code, cmap, long_format)))


def _samples(person: np.ndarray, t_ns: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Rows by person, then time (stable: input order within a sample), and each row's sample number.

    The order is None when the rows are in that order already (an extract
    sorted by person and time needs no sort); sample numbers rise with it.
    """
    same_person = person[1:] == person[:-1]
    if bool(((person[1:] > person[:-1]) | (same_person & (t_ns[1:] >= t_ns[:-1]))).all()):
        order, st = None, t_ns
    else:
        order = np.lexsort((t_ns, person))
        sp, st = person[order], t_ns[order]
        same_person = sp[1:] == sp[:-1]
    new = np.ones(person.size, dtype=bool)
    new[1:] = ~same_person | (st[1:] != st[:-1])
    keys = np.cumsum(new) - 1
    if order is not None:
        keys[order] = keys.copy()
    return order, keys


def _run_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Start positions of the runs of equal values of a sorted array."""
    new = np.ones(sorted_keys.size, dtype=bool)
    new[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return np.flatnonzero(new)


def _first_lowest(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Position of the first lowest value in each run (runs begin at ``starts``, in order).

    What a stable sort by value within each run would put first, without
    the sort: NaN ranks above every number (a run of NaN only gives its
    first), and -0.0 equals 0.0.
    """
    if starts.size == 0:
        return starts
    low = np.fmin.reduceat(values, starts)
    run = np.repeat(np.arange(starts.size), np.diff(np.append(starts, values.size)))
    hit = values == low[run]
    hit[starts[np.isnan(low)]] = True
    at = np.flatnonzero(hit)
    return at[_run_starts(run[at])]


def _limit_inputs(lab_view, lab_codes, persons, births, *, duffy_null, age_limits, time):
    """What the row limits need from persons: each row's Duffy-null flag (a column) and age at its sample.

    Returns the lab rows (with ``__duffy_null`` when asked), the ages in
    years (None without ``age_limits``) and the rows without a sample time
    (their own flow step, never ``no_age_limit``).
    """
    if duffy_null is not None:
        # Read once per person (genotypes, phenotypes or booleans), then spread to the rows.
        dn = duffy_null_mask(persons[duffy_null], "build_cohort", duffy_null)
        lab_view = lab_view.assign(**{"__duffy_null": dn[lab_codes]})
    if age_limits is None:
        return lab_view, None, None
    lab_times = lab_view[time]
    return lab_view, sample_ages(lab_times, births[lab_codes]), lab_times.isna().to_numpy()


def _runs(mp: np.ndarray, mflag: np.ndarray, new_person: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last rows of each run of consecutive flagged measurements of a person (rows sorted by person, time)."""
    n = mp.size
    prev = np.zeros(n, dtype=bool)
    prev[1:] = mflag[:-1]
    start = mflag & (new_person | ~prev)
    nxt = np.zeros(n, dtype=bool)
    nxt[:-1] = mflag[1:] & ~new_person[1:]
    return np.flatnonzero(start), np.flatnonzero(mflag & ~nxt)


def _confirming(mp: np.ndarray, mday: np.ndarray, mbelow: np.ndarray, n_persons: int,
                rules: _Persistence) -> np.ndarray:
    """Which measurements complete the confirmation rule (rows sorted by person, time).

    A count below the normal limit confirms when an earlier one below it is
    at least ``confirm_days`` calendar days before it with no normal count
    in between (or any earlier one, with ``allow_normal``). The earliest
    such earlier count is the one to test: the first of the run, or the
    person's first count below.
    """
    rows = np.flatnonzero(mbelow)
    if rules.allow_normal:
        first_low = np.full(n_persons, _NEVER, dtype=np.int64)
        np.minimum.at(first_low, mp[rows], mday[rows])
        d0 = first_low[mp[rows]]
    else:
        new_person = np.ones(mp.size, dtype=bool)
        new_person[1:] = mp[1:] != mp[:-1]
        starts, _ = _runs(mp, mbelow, new_person)
        # Each below row's run is the last run start at or before it.
        d0 = mday[starts][np.searchsorted(starts, rows, side="right") - 1]
    out = np.zeros(mp.size, dtype=bool)
    out[rows] = mday[rows] - d0 >= rules.confirm_days
    return out


def _known_below(manc: np.ndarray, mcens: np.ndarray, threshold: float) -> np.ndarray:
    """Counts known to be below ``threshold``: exact values under it, ``<x`` with x <= it, ``<=x`` with x under it.

    A lower bound (``>x``, ``>=x``) never shows a count below; nor does an
    upper bound above the threshold (``<800`` against 500). Such counts end
    a run rather than being guessed either way. Censor codes as
    ``CENSOR_DTYPE``: -1 exact, 0 ``<``, 1 ``<=``, 2 ``>``, 3 ``>=``.
    """
    return np.where(mcens == 0, manc <= threshold, (mcens < 2) & (manc < threshold))


def _lab_summary(mp, mt, mday, manc, mtier, mbelow, n_persons, chronic_months, *, mcens=None, mconfirms=None,
                 chronic_below=None):
    """Per-person summaries of the measurements (sorted by person, time)."""
    n = mp.size
    n_tests = np.bincount(mp, minlength=n_persons)
    # Nadir: lowest value, earliest if tied (the rows are in person, time order).
    nadir_rows = _first_lowest(manc, _run_starts(mp))
    nadir = np.full(n_persons, np.nan)
    nadir[mp[nadir_rows]] = manc[nadir_rows]
    nadir_date = np.full(n_persons, np.datetime64("NaT"), dtype="datetime64[ns]")
    nadir_date[mp[nadir_rows]] = mt[nadir_rows].astype("datetime64[ns]")
    worst = np.full(n_persons, -1, dtype=np.int8)
    np.maximum.at(worst, mp, mtier)

    new_person = np.ones(n, dtype=bool)
    new_person[1:] = mp[1:] != mp[:-1]
    starts, ends = _runs(mp, mbelow, new_person)
    episodes = np.bincount(mp[starts], minlength=n_persons)
    durations = mday[ends] - mday[starts]
    longest = np.full(n_persons, -1, dtype=np.int64)
    np.maximum.at(longest, mp[starts], durations)
    if chronic_below is not None:
        # Chronic runs are runs of counts known below the threshold, not of the tier.
        starts, ends = _runs(mp, _known_below(manc, mcens, chronic_below), new_person)
    first_ts = pd.DatetimeIndex(mday[starts].astype("datetime64[D]"))
    chronic_run = mday[ends] >= _days(pd.Series(first_ts + pd.DateOffset(months=chronic_months)))
    chronic = np.zeros(n_persons, dtype=bool)
    chronic[mp[starts[chronic_run]]] = True

    # Confirmation: the first measurement completing the rule.
    confirmed_date = np.full(n_persons, np.datetime64("NaT"), dtype="datetime64[ns]")
    if mconfirms is not None:
        first = _first_per_group(mp, np.flatnonzero(mconfirms))
        confirmed_date[mp[first]] = mt[first].astype("datetime64[ns]")

    # Steepest decline between consecutive tests of a person.
    later = np.flatnonzero(~new_person)  # rows with an earlier test of the same person
    dt_days = (mt[later] - mt[later - 1]) / 86_400e9
    rate = (manc[later - 1] - manc[later]) / dt_days
    steepest = np.full(n_persons, -np.inf)
    np.maximum.at(steepest, mp[later], rate)
    steepest[np.isneginf(steepest)] = np.nan

    return _summary_columns(n_tests, nadir, nadir_date, worst, episodes, longest, chronic, steepest, confirmed_date)


def _summary_columns(n_tests, nadir, nadir_date, worst, episodes, longest, chronic, steepest, confirmed_date) -> dict:
    """The per-person lab summary columns (``longest`` is -1 for no episode), for both reductions."""
    confirmed = ~np.isnat(confirmed_date)
    return {
        "n_anc_tests": n_tests,
        "nadir_anc_per_ul": nadir,
        "nadir_date": nadir_date,
        "worst_tier": worst,
        "n_neutropenic_episodes": episodes,
        "longest_episode_days": pd.arrays.IntegerArray(np.maximum(longest, 0), longest < 0),
        "chronic": chronic,
        "confirmed_neutropenia": confirmed,
        "confirmed_date": confirmed_date,
        # Below the normal limit at least once (the worst tier is not the top one) and not confirmed.
        "transient_neutropenia": (worst > 0) & ~confirmed,
        "steepest_decline_per_day": steepest,
    }
