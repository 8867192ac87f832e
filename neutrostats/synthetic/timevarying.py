"""Synthetic cohorts with a time-updated ANC tier and a known time-varying hazard ratio.

:func:`simulate_time_updated` draws persons whose blood counts change over
follow-up -- most stay normal, some develop **persistent** neutropenia (the
count stays low from an onset on), some have **transient** dips (one low count,
recovered at a re-check within weeks) -- and a death hazard that depends on the
tier of the most recent count:

    h(t) = h0 * exp(beta[tier of the lowest count on the last count day before t]),

with ``h0`` constant (years since the index count) and administrative
censoring at the end of data. A count on day ``d`` acts from day ``d`` on:
the hazard on ``(d, d']`` (``d'`` the next count day) is that of day ``d``'s
tier. A start-stop (counting-process) Cox model on the measured tier,
``time_varying_tiers(cohort, "death")`` with ``lag_days=0`` and no expiry,
is therefore the correctly specified model: its hazard ratios estimate
``exp(beta)``. The first-count design (the tier at the index count for the
whole follow-up) and the nadir design (the lowest count as index) are
misspecified: both misclassify the tier in force later on.

The tables have the export shapes of :func:`generate_cohort` (``persons``,
``labs`` in long format with LOINC 751-8, ``diagnoses``, ``deaths``), so
:func:`neutrostats.build_cohort` reads them; the labs carry no mess (the
measurement model is the point here, the reading of messy values is tested
on :func:`generate_cohort`).

Examples
--------
>>> from neutrostats.synthetic.timevarying import simulate_time_updated
>>> sim = simulate_time_updated(500, seed=1)
>>> sorted(sim.tables), sim.truth["mortality"]["log_hr"]["mild"]
(['deaths', 'diagnoses', 'labs', 'persons'], 0.7)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from neutrostats.errors import NeutrostatsError
from neutrostats.synthetic.assumptions import _CUTS, _ICD, _NONREF, _TIER_DTYPE, _UNITS, DEFAULT_SEED, TIERS
from neutrostats.synthetic.generate import (
    _MIN_NS,
    _UNIT_IS_CELLS,
    _UNIT_NAMES,
    _UNIT_P,
    SyntheticCohort,
    _choice,
    _days,
    _fmt_count,
    _object_column,
    _tier_of_cells,
    _to_datetime_days,
)

__all__ = ["simulate_time_updated", "TIME_UPDATED_LOG_HR", "TIME_UPDATED_PATTERNS"]

#: Default true log hazard ratios of death per tier of the most recent count (against normal).
TIME_UPDATED_LOG_HR: Mapping[str, float] = MappingProxyType({"subnormal": 0.3, "mild": 0.7, "moderate_severe": 1.2})

#: The ANC patterns of the simulated persons, in the order of their codes.
TIME_UPDATED_PATTERNS = ("normal", "persistent", "transient")

# Units: the 10^9/L (= 10^3/uL) spellings of generate_cohort, with its weights. Values in hundredths of
# 10^9/L have few distinct strings, which a reader parses once each (whole cells/uL would have ten times as many).
_THOUSANDS = np.flatnonzero(~_UNIT_IS_CELLS)
_THOUSANDS_P = _UNIT_P[_THOUSANDS] / _UNIT_P[_THOUSANDS].sum()

_OUTCOME_LOG_HR = MappingProxyType({"subnormal": 0.2, "mild": 0.6, "moderate_severe": 1.5})
_FN = "simulate_time_updated"
_DAYS_PER_YEAR = 365.25


def _fail(msg: str) -> NoReturn:
    raise NeutrostatsError(f"{_FN}: {msg}")


def _share(name: str, v: Any, *, hi_open: bool = False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        x = float("nan")
    if not (np.isfinite(x) and 0 <= x and (x < 1 if hi_open else x <= 1)):
        _fail(f"{name} must be a number in [0, 1{')' if hi_open else ']'}, found {v!r}")
    return x


def _positive(name: str, v: Any, *, zero: bool = False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        x = float("nan")
    if not (np.isfinite(x) and (x >= 0 if zero else x > 0)):
        _fail(f"{name} must be a {'non-negative' if zero else 'positive'} finite number, found {v!r}")
    return x


def _log_hrs(name: str, given: Mapping[str, float] | None, default: Mapping[str, float]) -> np.ndarray:
    if given is not None and not isinstance(given, Mapping):
        _fail(f"{name} must be a mapping tier -> log hazard ratio with keys {list(_NONREF)}, found {given!r}")
    out = dict(default)
    unknown = sorted(set(given or {}) - set(out))
    if unknown:
        _fail(f"{name} has unknown tiers {unknown}; the non-reference tiers are {list(_NONREF)}")
    for t, v in (given or {}).items():
        try:
            out[t] = float(v)
        except (TypeError, ValueError):
            out[t] = float("nan")
        if not np.isfinite(out[t]):
            _fail(f"{name}[{t!r}] must be a finite number (a log hazard ratio), found {v!r}")
    return np.array([0.0, *(out[t] for t in _NONREF)])


def _segment_starts(pidx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First row and row count of each person in rows sorted by person (persons without rows: count 0)."""
    counts = np.bincount(pidx, minlength=n)
    return np.cumsum(counts) - counts, counts


def _first_passage(seg_person: np.ndarray, seg_lo: np.ndarray, seg_hi: np.ndarray, seg_rate: np.ndarray,
                   e: np.ndarray, n: int) -> np.ndarray:
    """Time at which each person's cumulative hazard reaches ``e`` (inf if it never does).

    Segments ``(lo, hi]`` with constant ``rate``, sorted by person then time and
    covering each person's follow-up; one global cumulative sum serves all
    persons (each person's targets are offset by the hazard accumulated before
    their first segment), so the search is one ``searchsorted``.
    """
    h = seg_rate * (seg_hi - seg_lo)
    cum = np.cumsum(h)
    first, count = _segment_starts(seg_person, n)
    before = np.where(count > 0, cum[first] - h[first], 0.0)
    total = np.where(count > 0, cum[np.maximum(first + count - 1, 0)], 0.0)
    hit = (count > 0) & (before + e <= total)
    t = np.full(n, np.inf)
    who = np.flatnonzero(hit)
    k = np.searchsorted(cum, before[who] + e[who], side="left")
    k = np.clip(k, first[who], first[who] + count[who] - 1)
    left = cum[k] - h[k]  # hazard accumulated up to the segment's start
    t[who] = seg_lo[k] + (before[who] + e[who] - left) / seg_rate[k]
    return t


def simulate_time_updated(
    n_persons: int = 5000,
    seed: int | None = DEFAULT_SEED,
    *,
    log_hr: Mapping[str, float] | None = None,
    rate_per_year: float = 0.06,
    share_persistent: float = 0.15,
    share_transient: float = 0.20,
    persistent_at_index: float = 0.4,
    transient_at_index: float = 0.5,
    mean_extra_dips: float = 0.5,
    mean_visit_gap_days: float = 120.0,
    recheck_days: tuple[int, int] = (7, 42),
    outcome_rate_per_year: float = 0.02,
    outcome_log_hr: Mapping[str, float] | None = None,
    entry_start: str = "2010-01-01",
    entry_end: str = "2012-12-31",
    end_of_data: str = "2016-12-31",
) -> SyntheticCohort:
    """Simulate a cohort whose death hazard follows the tier of the most recent blood count.

    Parameters
    ----------
    n_persons : int, default 5000
    seed : int or None, default DEFAULT_SEED (2018)
        Seed of ``numpy.random.default_rng``; ``None`` draws fresh entropy,
        recorded in ``truth["seed"]``.
    log_hr : mapping, optional
        True log hazard ratio of death per non-reference tier of the most
        recent count (andersen2016 tiers; default
        :data:`TIME_UPDATED_LOG_HR`: 0.3, 0.7, 1.2). Partial mappings keep
        the other defaults.
    rate_per_year : float, default 0.06
        Death hazard (per year, constant) while the most recent count is
        normal.
    share_persistent, share_transient : float, default 0.15, 0.20
        Shares of persons with persistent neutropenia and with transient
        dips; the rest have a normal count throughout (which still falls
        below 1,800/µL now and then by within-person variation). Higher than
        in a real population so that a few thousand persons carry enough
        deaths in every tier.
    persistent_at_index : float, default 0.4
        Share of the persistent persons who are already low at the index
        (first) count; the others' onset is uniform over follow-up.
    transient_at_index : float, default 0.5
        Share of the transient persons whose first count is a dip (the count
        that brought them in); the others' first dip is uniform over
        follow-up.
    mean_extra_dips : float, default 0.5
        Mean (Poisson) number of further dips of a transient person, uniform
        over follow-up.
    mean_visit_gap_days : float, default 120
        Routine counts after the index form a Poisson process with this mean
        gap (whole days, never on the index day).
    recheck_days : (int, int), default (7, 42)
        A dip is re-checked (at the person's usual level) a uniform number of
        days later, both ends included.
    outcome_rate_per_year : float, default 0.02
        Hazard of a first haematological malignancy (ICD-10 C81-C96) while the
        most recent count is normal; 0 draws no outcome. Its tier effect acts
        the same way as death's; death competes.
    outcome_log_hr : mapping, optional
        Its true log hazard ratios (default 0.2, 0.6, 1.5).
    entry_start, entry_end, end_of_data : str
        Index (first count) days are uniform over ``[entry_start,
        entry_end]``; everyone is followed to ``end_of_data``.

    Returns
    -------
    SyntheticCohort
        ``persons``, ``labs`` (one 751-8 row per count, 10^9/L spellings
        mixed; no count on the index day other than the index count),
        ``diagnoses`` (the outcome), ``deaths``, ``index`` (the first count
        per person) and ``truth``: the true log-HRs, the persistence mix, the
        visit process, the designs that are misspecified, and realised counts
        (persons per pattern, counts, deaths and person-years per tier in
        force).

    Raises
    ------
    NeutrostatsError
        For a non-positive ``n_persons``, a negative seed, shares outside
        [0, 1] (or persistent + transient > 1), unknown tiers in ``log_hr``,
        non-positive rates or gaps, ``recheck_days`` not ``(lo, hi)`` with
        ``1 <= lo <= hi``, or dates out of order.

    See Also
    --------
    generate_cohort : the first-count cohort calibrated to Andersen 2016.
    neutrostats.build_cohort : the analysis cohort from these tables.

    Notes
    -----
    Counts: log ANC = the person's level + within-person noise (CV 26 %,
    Statland 1978). Levels: log-normal around 4.0 x 10^9/L (between-person SD
    0.31 on the log scale) for normal and transient persons; after onset a
    persistent person's level is log-normal around 1.2 x 10^9/L (SD 0.35), a
    dip is 0.3 times the person's level. The tier of a count is that of its
    displayed value (nudged off the cut points, as :func:`generate_cohort`
    does). Several counts on one day: the lowest of the day is in force, the
    rule of :func:`~neutrostats.cohort.timevarying.time_varying_tiers`. The
    visit process depends only on the pattern and on past dips, never on
    death, so the tier path is an external covariate and the Cox partial
    likelihood on it is valid [1]_. Deaths are drawn in continuous time and
    recorded on the next whole day (``ceil``), which falls in the same
    count-to-count interval; counts after the death day are not exported.

    References
    ----------
    .. [1] Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure
       Time Data, 2nd ed. Wiley 2002, section 6.3 (time-dependent covariates).
    .. [2] Statland BE, Winkel P, Harris SC, et al. Evaluation of biologic
       sources of variation of leukocyte counts and other hematologic
       quantities using very precise automated analyzers. Am J Clin Pathol
       1978;69:48-54.

    Examples
    --------
    >>> from neutrostats.synthetic.timevarying import simulate_time_updated
    >>> sim = simulate_time_updated(1000, seed=3)
    >>> sim.labs.columns.tolist()
    ['person_id', 'sampled_at', 'code', 'value', 'unit']
    >>> r = sim.truth["realised"]
    >>> sorted(r["persons_by_pattern"]), sum(r["persons_by_pattern"].values())
    (['normal', 'persistent', 'transient'], 1000)
    >>> simulate_time_updated(100, log_hr={"severe": 1.0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neutrostats.errors.NeutrostatsError: simulate_time_updated: log_hr has unknown tiers ['severe']; ...
    """
    a = _resolve(n_persons, seed, log_hr=log_hr, rate_per_year=rate_per_year, share_persistent=share_persistent,
                 share_transient=share_transient, persistent_at_index=persistent_at_index,
                 transient_at_index=transient_at_index, mean_extra_dips=mean_extra_dips,
                 mean_visit_gap_days=mean_visit_gap_days, recheck_days=recheck_days,
                 outcome_rate_per_year=outcome_rate_per_year, outcome_log_hr=outcome_log_hr,
                 entry_start=entry_start, entry_end=entry_end, end_of_data=end_of_data)
    rng = np.random.default_rng(a["seed"])
    P = _persons(rng, a)
    C = _counts(rng, P, a)
    S = _in_force(C, P)
    E = _events(rng, P, S, a)
    persons, labs, diagnoses, deaths, index = _tables(rng, P, C, E)
    truth = _truth(a)
    truth["realised"] = _realised(P, C, S, E)
    return SyntheticCohort(persons=persons, labs=labs, diagnoses=diagnoses, deaths=deaths, index=index, truth=truth)


def _resolve(n_persons: Any, seed: Any, **kw: Any) -> dict[str, Any]:
    """The checked parameters (NeutrostatsError naming the first one out of range)."""
    if isinstance(n_persons, bool) or not isinstance(n_persons, (int, np.integer)) or n_persons < 1:
        _fail(f"n_persons must be a positive integer, found {n_persons!r}")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]  # an int when not given
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        _fail(f"seed must be a non-negative integer or None, found {seed!r}")
    a: dict[str, Any] = {"n": int(n_persons), "seed": int(seed)}
    a["beta"] = _log_hrs("log_hr", kw["log_hr"], TIME_UPDATED_LOG_HR)
    a["beta_o"] = _log_hrs("outcome_log_hr", kw["outcome_log_hr"], _OUTCOME_LOG_HR)
    for k in ("share_persistent", "share_transient", "persistent_at_index", "transient_at_index"):
        a[k] = _share(k, kw[k])
    if a["share_persistent"] + a["share_transient"] > 1:
        _fail(f"share_persistent + share_transient must not exceed 1, found {a['share_persistent']} + "
              f"{a['share_transient']}")
    a["mean_extra_dips"] = _positive("mean_extra_dips", kw["mean_extra_dips"], zero=True)
    a["mean_visit_gap_days"] = _positive("mean_visit_gap_days", kw["mean_visit_gap_days"])
    a["rate_per_year"] = _positive("rate_per_year", kw["rate_per_year"])
    a["outcome_rate_per_year"] = _positive("outcome_rate_per_year", kw["outcome_rate_per_year"], zero=True)
    rd = kw["recheck_days"]
    try:
        lo, hi = (int(v) for v in rd)
        whole = all(float(v) == int(v) for v in rd)
    except (TypeError, ValueError):
        lo, hi, whole = 0, -1, False
    if not (whole and 1 <= lo <= hi):
        _fail(f"recheck_days must be (lo, hi) whole days with 1 <= lo <= hi, found {rd!r}")
    a["recheck_days"] = [lo, hi]
    dates = (kw["entry_start"], kw["entry_end"], kw["end_of_data"])
    try:
        d0, d1, end = (_days(str(pd.Timestamp(d).date())) for d in dates)
    except (TypeError, ValueError):
        _fail(f"entry_start, entry_end, end_of_data must be dates such as '2010-01-01', found {list(dates)!r}")
    if not d0 <= d1 < end:
        _fail(f"expected entry_start <= entry_end < end_of_data, found {list(dates)!r}")
    a.update(entry_start=str(np.datetime64(d0, "D")), entry_end=str(np.datetime64(d1, "D")),
             end_of_data=str(np.datetime64(end, "D")), d0=d0, d1=d1, end=end)
    return a


def _persons(rng: np.random.Generator, a: dict) -> dict:
    """Sex, age, index day, ANC pattern, levels and onset of every person."""
    n = a["n"]
    male = rng.random(n) < 0.44
    age = 19.0 + 71.0 * rng.beta(2.0, 2.2, n)
    index_day = a["d0"] + rng.integers(0, a["d1"] - a["d0"] + 1, n)
    birth = index_day - np.round(age * _DAYS_PER_YEAR).astype(np.int64)
    span = a["end"] - index_day  # days of follow-up to the end of data (>= 1)
    u = rng.random(n)
    p1, p2 = a["share_persistent"], a["share_persistent"] + a["share_transient"]
    pattern = np.where(u < p1, 1, np.where(u < p2, 2, 0)).astype(np.int8)
    mu = math.log(4.0) + 0.31 * rng.standard_normal(n)
    mu_low = math.log(1.2) + 0.35 * rng.standard_normal(n)
    # Onset day of a persistent person: before the index (low from the first count) or uniform over follow-up.
    onset = np.where(rng.random(n) < a["persistent_at_index"], -1, 1 + np.floor(rng.random(n) * span).astype(np.int64))
    onset = np.where(pattern == 1, onset, np.iinfo(np.int64).max)
    dip_first = (pattern == 2) & (rng.random(n) < a["transient_at_index"])
    return {"n": n, "male": male, "index_day": index_day, "birth": birth, "span": span, "pattern": pattern,
            "mu": mu, "mu_low": mu_low, "onset": onset, "dip_first": dip_first, "end": a["end"]}


def _counts(rng: np.random.Generator, P: dict, a: dict) -> dict:
    """Every count (index, routine visits, dips and their re-checks), sorted by person and time."""
    n, span = P["n"], P["span"]
    k_routine = rng.poisson(span / a["mean_visit_gap_days"])
    r_pidx = np.repeat(np.arange(n), k_routine)
    r_day = 1 + np.floor(rng.random(r_pidx.size) * span[r_pidx]).astype(np.int64)
    # A transient person without a dip at the index has at least one dip later.
    k_dip = np.where(P["pattern"] == 2, rng.poisson(a["mean_extra_dips"], n) + ~P["dip_first"], 0)
    dp = np.repeat(np.arange(n), k_dip)
    dip_day = 1 + np.floor(rng.random(dp.size) * span[dp]).astype(np.int64)
    # The re-check of every dip, the index dip included.
    rc_src = np.concatenate([np.flatnonzero(P["dip_first"]), dp])
    rc_base = np.concatenate([np.zeros(int(P["dip_first"].sum()), dtype=np.int64), dip_day])
    lo, hi = a["recheck_days"]
    rc_day = rc_base + rng.integers(lo, hi + 1, rc_src.size)
    rc_keep = rc_day <= span[rc_src]
    pidx = np.concatenate([np.arange(n), r_pidx, dp, rc_src[rc_keep]])
    day = np.concatenate([np.zeros(n, dtype=np.int64), r_day, dip_day, rc_day[rc_keep]])
    is_dip = np.concatenate([P["dip_first"], np.zeros(r_pidx.size, dtype=bool), np.ones(dp.size, dtype=bool),
                             np.zeros(int(rc_keep.sum()), dtype=bool)])
    minute = rng.integers(7 * 60, 16 * 60, pidx.size)
    noise = rng.standard_normal(pidx.size)
    unit = _THOUSANDS[_choice(rng, _THOUSANDS_P, pidx.size)]
    order = np.lexsort((minute, day, pidx))
    pidx, day, is_dip, minute = pidx[order], day[order], is_dip[order], minute[order]
    noise, unit = noise[order], unit[order]
    level = np.where(day >= P["onset"][pidx], P["mu_low"][pidx], P["mu"][pidx]) + is_dip * math.log(0.3)
    sigma_w = math.sqrt(math.log1p(0.26**2))
    anc = np.maximum(np.exp(level + sigma_w * noise), 0.05)  # x 10^9/L; a displayed 0 would read as no cells
    cells_unit = _UNIT_IS_CELLS[unit]
    # Displayed as whole cells/uL or hundredths of 10^9/L, nudged off the cut points as generate_cohort does.
    disp = np.where(cells_unit, np.round(anc * 1000.0), np.round(anc * 100.0)).astype(np.int64)
    disp = disp + np.isin(np.where(cells_unit, disp, disp * 10), np.array(_CUTS, dtype=np.int64))
    cells = np.where(cells_unit, disp, disp * 10)
    return {"pidx": pidx, "day": day, "minute": minute, "is_dip": is_dip, "unit": unit, "cells_unit": cells_unit,
            "disp": disp, "cells": cells, "tier": _tier_of_cells(cells)}


def _in_force(C: dict, P: dict) -> dict:
    """Segments (lo, hi] of each person's follow-up, with the tier in force: the lowest count of day lo."""
    pidx, day = C["pidx"], C["day"]
    new_day = np.ones(pidx.size, dtype=bool)
    new_day[1:] = (pidx[1:] != pidx[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(new_day)
    person = pidx[starts]
    tier = np.maximum.reduceat(C["tier"], starts)
    lo = day[starts].astype(float)
    last = np.ones(starts.size, dtype=bool)
    last[:-1] = person[1:] != person[:-1]
    hi = np.where(last, P["span"][person], np.roll(lo, -1))
    return {"person": person, "tier": tier, "lo": lo, "hi": hi}


def _events(rng: np.random.Generator, P: dict, S: dict, a: dict) -> dict:
    """Death and first outcome: first passage of the piecewise-constant hazards, recorded on whole days."""
    n = P["n"]
    per_day = np.exp(a["beta"][S["tier"]]) * a["rate_per_year"] / _DAYS_PER_YEAR
    t_death = _first_passage(S["person"], S["lo"], S["hi"], per_day, rng.exponential(1.0, n), n)
    e_out = rng.exponential(1.0, n)
    if a["outcome_rate_per_year"] > 0:
        per_day_o = np.exp(a["beta_o"][S["tier"]]) * a["outcome_rate_per_year"] / _DAYS_PER_YEAR
        t_out = _first_passage(S["person"], S["lo"], S["hi"], per_day_o, e_out, n)
    else:
        t_out = np.full(n, np.inf)
    died = np.isfinite(t_death)
    # On the next whole day: inside the same count-to-count interval (whose ends are whole days).
    death_rel = np.where(died, np.maximum(1, np.ceil(t_death)), P["span"] + 1).astype(np.int64)
    # A diagnosis recorded on the death day ties with it; build_cohort counts the diagnosis (death after it).
    has_out = np.isfinite(t_out) & (t_out < t_death)
    out_rel = np.maximum(1, np.ceil(np.where(has_out, t_out, 1.0))).astype(np.int64)
    return {"died": died, "death_rel": death_rel, "has_out": has_out, "out_rel": out_rel}


def _tables(rng: np.random.Generator, P: dict, C: dict, E: dict) -> tuple[pd.DataFrame, ...]:
    """persons, labs, diagnoses, deaths and the truth index, in generate_cohort's shapes."""
    n, index_day, pidx = P["n"], P["index_day"], C["pidx"]
    keep = C["day"] <= E["death_rel"][pidx]  # no count after the death day
    pid = np.arange(1, n + 1, dtype=np.int64)
    stamp = (index_day[pidx] + C["day"]) * 1440 + C["minute"]
    labs = pd.DataFrame({
        "person_id": pid[pidx[keep]],
        "sampled_at": (stamp[keep] * _MIN_NS).view("datetime64[ns]"),
        "code": _object_column(np.full(int(keep.sum()), "751-8", dtype=object)),
        "value": _object_column(_fmt_count(C["disp"][keep], C["cells_unit"][keep])),
        "unit": _object_column(_UNIT_NAMES[C["unit"][keep]]),
    })
    persons = pd.DataFrame({
        "person_id": pid,
        "sex": _object_column(np.where(P["male"], "M", "F").astype(object)),
        "birth_date": _to_datetime_days(P["birth"]),
        "duffy_null": np.zeros(n, dtype=bool),
        "entry_date": _to_datetime_days(index_day),
        "end_of_data": _to_datetime_days(np.full(n, P["end"])),
    })
    out_who = np.flatnonzero(E["has_out"])
    codes = np.array(_ICD["hematologic_malignancy"], dtype=object)
    diagnoses = pd.DataFrame({
        "person_id": pid[out_who],
        "diagnosed_at": _to_datetime_days(index_day[out_who] + E["out_rel"][out_who]),
        "code": _object_column(codes[rng.integers(0, codes.size, out_who.size)]),
    })
    dead = np.flatnonzero(E["died"])
    deaths = pd.DataFrame({"person_id": pid[dead], "died_at": _to_datetime_days(index_day[dead] + E["death_rel"][dead])})
    first = _segment_starts(pidx, n)[0]  # every person's first row is the index count, alone on day 0
    index = pd.DataFrame({
        "person_id": pid,
        "index_date": (stamp[first] * _MIN_NS).view("datetime64[ns]"),
        "index_anc_per_ul": C["cells"][first].astype(float),
        "index_left_censored": np.zeros(n, dtype=bool),
        "index_tier": pd.Categorical.from_codes(C["tier"][first], dtype=_TIER_DTYPE),
        "anc_source": _object_column(np.full(n, "direct", dtype=object)),
        "age_at_index": (index_day - P["birth"]) / _DAYS_PER_YEAR,
    })
    return persons, labs, diagnoses, deaths, index


def _realised(P: dict, C: dict, S: dict, E: dict) -> dict:
    """Realised counts of the draw, from the generating arrays (not from an analysis of the tables)."""
    n, pattern, pidx = P["n"], P["pattern"], C["pidx"]
    keep = C["day"] <= E["death_rel"][pidx]
    stop = np.minimum(P["span"], E["death_rel"]).astype(float)
    sp = S["person"]
    py = np.maximum(np.minimum(S["hi"], stop[sp]) - S["lo"], 0.0) / _DAYS_PER_YEAR
    d = E["death_rel"][sp]
    death_in = E["died"][sp] & (d > S["lo"]) & (d <= S["hi"])
    pt = np.bincount(S["tier"], weights=py, minlength=4)
    deaths = np.bincount(S["tier"][death_in], minlength=4)
    first = _segment_starts(pidx, n)[0]
    t0 = C["tier"][first]
    per_pattern = np.bincount(pattern[pidx[keep]], minlength=3)
    pats = TIME_UPDATED_PATTERNS
    return {
        "n_persons": n,
        "persons_by_pattern": {p: int((pattern == j).sum()) for j, p in enumerate(pats)},
        "counts_by_pattern": {p: int(per_pattern[j]) for j, p in enumerate(pats)},
        "n_counts": int(keep.sum()),
        "n_dips": int((C["is_dip"] & keep).sum()),
        "index_tier_counts": {t: int((t0 == j).sum()) for j, t in enumerate(TIERS)},
        "index_tier_counts_by_pattern": {
            p: {t: int(((t0 == j) & (pattern == k)).sum()) for j, t in enumerate(TIERS)} for k, p in enumerate(pats)},
        "n_deaths": int(E["died"].sum()),
        "n_outcomes": int(E["has_out"].sum()),
        # Follow-up to death or end of data split by the tier in force (lag 0, no expiry): what
        # time_varying_tiers(cohort, "death") gives.
        "person_years_by_tier": {t: float(pt[j]) for j, t in enumerate(TIERS)},
        "deaths_by_tier": {t: int(deaths[j]) for j, t in enumerate(TIERS)},
    }


def _truth(a: dict[str, Any]) -> dict:
    """The generating model, in words and numbers (JSON-ready)."""
    beta, beta_o = a["beta"], a["beta_o"]
    return {
        "generator": f"neutrostats.synthetic.timevarying.{_FN}",
        "seed": a["seed"],
        "n_persons": a["n"],
        "numpy_version": np.__version__,
        "tier_scheme": "andersen2016",
        "tiers": list(TIERS),
        "tier_cuts_per_ul": list(_CUTS),
        "index_definition": "the first count per person (the only count on its day)",
        "mortality": {
            "model": "h(t) = rate_per_year * exp(log_hr[tier in force at t]); t in years since the index day; "
                     "the tier in force on (d, d'] is that of the lowest count of count day d (d' the next "
                     "count day); deaths drawn in continuous time, recorded on day ceil(t); censored at "
                     "end_of_data",
            "rate_per_year": a["rate_per_year"],
            "log_hr": {t: float(beta[j]) for j, t in enumerate(TIERS) if j > 0},
            "hr": {t: float(math.exp(beta[j])) for j, t in enumerate(TIERS)},
            "correctly_specified_by": "a start-stop Cox model on the measured tier: "
                                      "time_varying_tiers(cohort, 'death') (lag_days=0, no max_carry_days) "
                                      "and cox_hazard_ratios(tv, 'stop', 'event', entry='start', "
                                      "cluster='person_id')",
        },
        "outcome": {
            "name": "hematologic_malignancy",
            "code_ranges": ["C81-C96"],
            "model": "first diagnosis with hazard outcome_rate_per_year * exp(outcome_log_hr[tier in force]), "
                     "death competing (no diagnosis after death); recorded on day ceil(t), over the whole "
                     "follow-up (build_cohort's followup_years window censors it earlier)",
            "rate_per_year": a["outcome_rate_per_year"],
            "log_hr": {t: float(beta_o[j]) for j, t in enumerate(TIERS) if j > 0},
            "hr": {t: float(math.exp(beta_o[j])) for j, t in enumerate(TIERS)},
        },
        "persistence": {
            "patterns": list(TIME_UPDATED_PATTERNS),
            "share_persistent": a["share_persistent"],
            "share_transient": a["share_transient"],
            "persistent_at_index": a["persistent_at_index"],
            "transient_at_index": a["transient_at_index"],
            "mean_extra_dips": a["mean_extra_dips"],
            "levels": "log ANC = level + N(0, log(1 + 0.26^2)) per count (CV 26%, Statland 1978); level of a "
                      "normal or transient person log-normal, median 4.0 x 10^9/L, SD 0.31 (log); a persistent "
                      "person from onset on: median 1.2 x 10^9/L, SD 0.35 (log), onset before the index "
                      "(persistent_at_index) or uniform over follow-up; a dip: 0.3 x the level, one count",
        },
        "visits": {
            "index": "first count, day 0, uniform over [entry_start, entry_end]",
            "routine": "Poisson process over follow-up, mean gap mean_visit_gap_days, whole days >= 1",
            "mean_visit_gap_days": a["mean_visit_gap_days"],
            "recheck_days": list(a["recheck_days"]),
            "recheck": "every dip is re-checked at the usual level a uniform whole number of days later",
            "time_of_day": "uniform minute 07:00-16:00",
            "informative": "the visit process depends on the pattern and past dips only, not on death "
                           "(the tier path is an external covariate)",
            "same_day": "several counts on one day: the lowest is in force",
            "after_death": "counts after the death day are not exported",
        },
        "designs": {
            "time_updated": "correctly specified: its hazard ratios estimate hr",
            "first_count": "misspecified: the tier at the index count for the whole follow-up; transient dips "
                           "at the index are counted low though their hazard returns to normal within weeks, "
                           "and later onsets of persistent neutropenia fall in the normal reference tier, so "
                           "its hazard ratios are attenuated towards 1",
            "nadir": "misspecified: the lowest count as the index looks ahead in the record; a person who "
                     "lives longer has more counts and so a lower minimum, and counts after the nadir are "
                     "higher on average (regression to the mean, recovered dips), so the low nadir tiers "
                     "gather long survivors and their hazard ratios are biased downwards (below 1 here)",
        },
        "entry_start": a["entry_start"],
        "entry_end": a["entry_end"],
        "end_of_data": a["end_of_data"],
        "lab_mess": "none: every count is a valid direct ANC (751-8) in hundredths of 10^9/L, its unit one of "
                    "generate_cohort's 10^9/L spellings (weights renormalised)",
        "units": {u: {"factor_to_cells_per_ul": f, "weight": w / float(_UNIT_P[_THOUSANDS].sum())}
                  for u, f, w in _UNITS if f == 1000},
    }
