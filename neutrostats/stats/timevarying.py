"""Models on time-updated tiers: landmark analysis, Cox with a time-varying tier, curves by current tier.

A person's tier changes as new counts arrive. Two designs use that without
looking ahead in the record:

* **Landmark analysis** (:func:`landmark`, :func:`landmark_hazard_ratios`):
  at each landmark time s, the persons still followed are classified by
  their latest count on or before s and followed from s on; one Cox model
  per landmark, and the pooled "super model" over the stacked landmark data
  sets (a baseline hazard per landmark, robust variance clustered by person)
  [1]_ [2]_.
* **Time-varying tier** on counting-process rows (one row per person and
  interval, :func:`neutrostats.cohort.timevarying.time_varying_tiers`):
  :func:`time_varying_hazard_ratios` (Cox, robust variance clustered by
  person) [3]_, and the curves by current tier: :func:`simon_makuch`
  (Kaplan-Meier) [4]_ [5]_ and :func:`simon_makuch_cumulative_incidence`
  (Aalen-Johansen).

Time is in years since the index day (days / 365.25), as everywhere in a
cohort; the index day is day 0 and counts are read at day resolution.

Examples
--------
>>> import pandas as pd
>>> from neutrostats.stats.timevarying import time_varying_hazard_ratios
>>> tv = pd.DataFrame({
...     "person_id": [1, 1, 2, 3, 3, 4, 5, 6],
...     "start": [0.0, 1, 0, 0, 2, 0, 0, 0], "stop": [1.0, 4, 3, 2, 5, 6, 2.5, 4.5],
...     "tier": pd.Categorical(["normal", "mild", "mild", "normal", "mild", "normal", "normal", "mild"],
...                            categories=["normal", "mild"], ordered=True),
...     "event": [0, 1, 1, 0, 0, 1, 1, 0]})
>>> time_varying_hazard_ratios(tv)[["term", "n", "n_event", "is_reference"]]
     term  n  n_event  is_reference
0  normal  4        2          True
1    mild  4        2         False

References
----------
.. [1] van Houwelingen HC. Dynamic prediction by landmarking in event history
   analysis. Scand J Stat 2007;34:70-85.
.. [2] Dafni U. Landmark analysis at the 25-year landmark point. Circ
   Cardiovasc Qual Outcomes 2011;4:363-371.
.. [3] Therneau T, Crowson C, Atkinson E. Using time dependent covariates and
   time dependent coefficients in the Cox model. Vignette of the R package
   survival (``vignette("timedep", package = "survival")``).
.. [4] Simon R, Makuch RW. A non-parametric graphical representation of the
   relationship between survival and the occurrence of an event: application
   to responder versus non-responder bias. Stat Med 1984;3:35-44.
.. [5] Snapinn SM, Jiang Q, Iglewicz B. Illustrating the impact of a
   time-varying covariate with an extended Kaplan-Meier estimator. Am Stat
   2005;59:301-307.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.cohort.build import DAYS_PER_YEAR, Cohort
from neutrostats.core.validate import require_columns, require_dataframe, require_positive
from neutrostats.errors import NeutrostatsError
from neutrostats.stats.competing import cumulative_incidence
from neutrostats.stats.cox import COX_COLUMNS, cox_hazard_ratios
from neutrostats.stats.survival import kaplan_meier

__all__ = [
    "LANDMARK_COLUMNS",
    "landmark",
    "landmark_hazard_ratios",
    "time_varying_hazard_ratios",
    "simon_makuch",
    "simon_makuch_cumulative_incidence",
]

#: The first columns of :func:`landmark`, in order (the requested ``columns`` follow).
LANDMARK_COLUMNS = ["landmark", "person_id", "tier", "anc_per_ul", "sampled_at", "time", "status"]
# The tier of a count older than max_carry_days (the name time_varying_tiers uses too).
_UNKNOWN = "unknown"
# at * 365.25 of a landmark given as a whole number of days divided by 365.25 may land a few
# ulps below that day; the tolerance keeps it on the day.
_DAY_TOL = 1e-9


# --- landmark data sets --------------------------------------------------------------------


def _landmark_times(at: Any, fn: str) -> np.ndarray:
    vals = np.atleast_1d(np.asarray(at, dtype=object)).ravel()
    try:
        out = np.array([float(v) for v in vals if not isinstance(v, (bool, np.bool_, str))], dtype=float)
    except (TypeError, ValueError):
        out = np.array([np.nan])
    if out.size != vals.size or not out.size or not np.all(np.isfinite(out)) or np.any(out < 0):
        raise NeutrostatsError(
            f"{fn}: at must be one or more landmark times in years since index (finite numbers >= 0), found "
            f"{at!r}; e.g. at=[0.5, 1, 2]"
        )
    if np.unique(out).size != out.size:
        raise NeutrostatsError(f"{fn}: at lists a landmark twice, found {at!r}; give each landmark once")
    return np.sort(out)


def _carry_days(max_carry_days: Any, fn: str) -> int | None:
    if max_carry_days is None:
        return None
    ok = isinstance(max_carry_days, (int, np.integer)) and not isinstance(max_carry_days, (bool, np.bool_))
    if not ok or int(max_carry_days) < 1:
        raise NeutrostatsError(f"{fn}: max_carry_days must be a whole number of days >= 1 (or None: a count holds "
                               f"until the next one), found {max_carry_days!r}")
    return int(max_carry_days)


def _person_columns(columns: Any, table: pd.DataFrame, fn: str) -> list[str]:
    cols = [columns] if isinstance(columns, str) else list(columns)
    clash = [c for c in cols if c in LANDMARK_COLUMNS]
    if clash:
        raise NeutrostatsError(f"{fn}: columns {clash} are columns of the landmark data already; leave them out of "
                               "columns=")
    unknown = [c for c in cols if c != "age_at_landmark" and c not in table.columns]
    if unknown:
        raise NeutrostatsError(
            f"{fn}: columns {unknown} are not columns of cohort.table (nor 'age_at_landmark'); expected some of "
            f"{[c for c in table.columns if c not in ('person_id', 'tier')][:12]}..."
        )
    if "age_at_landmark" in cols and "age_at_index" not in table.columns:
        raise NeutrostatsError(f"{fn}: 'age_at_landmark' needs the column 'age_at_index' in cohort.table")
    if len(set(cols)) != len(cols):
        raise NeutrostatsError(f"{fn}: columns lists a column twice, found {cols}")
    return cols


def _daily_counts(meas: pd.DataFrame, persons: pd.Index, index_day: np.ndarray):
    """The count in force per (person position, day >= 0): the lowest of the day, sorted by person and day.

    Returns the person positions, days, values, tier codes and sample times of those
    daily counts (one per person and day).
    """
    pos = persons.get_indexer(pd.Index(meas["person_id"].to_numpy()))
    sampled = meas["sampled_at"].to_numpy(dtype="datetime64[ns]")
    day = sampled.astype("datetime64[D]").astype(np.int64) - index_day[np.maximum(pos, 0)]
    # Measurements of persons not at risk of the outcome (prevalent) and counts before the
    # index day (the index count on day 0 is always newer) never decide a tier here.
    use = (pos >= 0) & (day >= 0)
    pos, day = pos[use], day[use]
    anc = meas["anc_per_ul"].to_numpy(dtype=float, na_value=np.nan)[use]
    code = meas["tier"].cat.codes.to_numpy()[use].astype(np.int64)
    sampled = sampled[use]
    pick = _lowest_of_day(pos, day, anc, code)
    return pos[pick], day[pick], anc[pick], code[pick], sampled[pick]


def _lowest_of_day(pos: np.ndarray, day: np.ndarray, anc: np.ndarray, code: np.ndarray) -> np.ndarray:
    """Row numbers of the lowest count of each (person, day), in (person, day) order.

    Equal values: the worse tier (limits may differ by row). Measurements come sorted by person
    and time, so only the few days with several counts need a sort.
    """
    ordered = pos.size < 2 or bool(np.all((pos[1:] > pos[:-1]) | ((pos[1:] == pos[:-1]) & (day[1:] >= day[:-1]))))
    if not ordered:
        order = np.lexsort((-code, anc, day, pos))
        first = np.ones(pos.size, dtype=bool)
        first[1:] = (pos[order][1:] != pos[order][:-1]) | (day[order][1:] != day[order][:-1])
        return order[first]
    new = np.ones(pos.size, dtype=bool)
    new[1:] = (pos[1:] != pos[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(new)
    block = np.cumsum(new) - 1
    size = np.diff(np.append(starts, pos.size))
    pick = starts.copy()
    multi = np.flatnonzero(size[block] > 1)
    if multi.size:
        sub = multi[np.lexsort((-code[multi], anc[multi], block[multi]))]
        head = np.ones(sub.size, dtype=bool)
        head[1:] = block[sub][1:] != block[sub][:-1]
        pick[block[sub[head]]] = sub[head]
    return pick


def _count_in_force(daily, rows: np.ndarray, lday: int, carry: int | None, n_tiers: int):
    """The count in force on day ``lday`` for the person positions ``rows``: the latest daily count
    on or before it (binary search on one sorted key per daily count), expired after ``carry`` days.

    Returns whether one was found, its tier code (``n_tiers`` when expired), value, sample time,
    and whether it expired.
    """
    bp, bd, banc, bcode, bsampled = daily
    if not bd.size:
        return (np.zeros(rows.size, dtype=bool), np.zeros(rows.size, dtype=np.int64), np.full(rows.size, np.nan),
                np.full(rows.size, np.datetime64("NaT", "ns")), np.zeros(rows.size, dtype=bool))
    dmax = int(bd.max()) if bd.size else 0
    width = dmax + 2
    keys = bp * width + bd
    j = np.searchsorted(keys, rows * width + min(lday, dmax), side="right") - 1
    found = (j >= 0) & (bp[np.maximum(j, 0)] == rows)
    j = np.maximum(j, 0)
    code, anc, sampled = bcode[j], banc[j], bsampled[j]
    expired = np.zeros(rows.size, dtype=bool)
    if carry is not None:
        expired = (lday - bd[j]) > carry
        code = np.where(expired, n_tiers, code)
        anc = np.where(expired, np.nan, anc)
        sampled = np.where(expired, np.datetime64("NaT", "ns"), sampled)
    return found, code, anc, sampled, expired


def landmark(
    cohort: Cohort,
    at: float | Sequence[float],
    outcome: str = "death",
    *,
    horizon: float | None = None,
    max_carry_days: int | None = None,
    columns: Iterable[str] = (),
) -> pd.DataFrame:
    """Stacked landmark data sets: the persons at risk at each landmark, by their tier then.

    At a landmark ``s`` (years since index) the landmark day is ``floor(s x
    365.25)`` (with a tolerance of 1e-9 day, so that ``k / 365.25`` years is
    day ``k``): 0.5 years is day 182, 1 year day 365, 2 years day 730. A person is at risk there when follow-up
    (:meth:`Cohort.time_to_event`) ends after that day, and is classified by
    the latest count on or before it: counts after the landmark are not
    looked at, so nothing is known in advance and there is no immortal time.
    Several counts on that day: the lowest of the day (the project's rule
    "the lowest value at one sample time", extended to the day, as
    :func:`~neutrostats.cohort.timevarying.time_varying_tiers` does); so at
    ``s = 0`` the tier can be lower than the index tier when the index day
    had a later, lower count.

    Parameters
    ----------
    cohort : Cohort
        From :func:`~neutrostats.build_cohort`, with its measurements
        (``keep_measurements=True`` for a lazy lab source).
    at : float or sequence of float
        Landmark times in years since index (>= 0, each once); the output is
        in increasing order of landmark.
    outcome : str, default "death"
        ``"death"`` or an outcome of the cohort, as in
        :meth:`Cohort.time_to_event`; persons with a prevalent outcome are
        not at risk at any landmark (``attrs["n_prevalent"]``).
    horizon : float, optional
        Years after each landmark at which follow-up is censored (the usual
        "landmark s, horizon w" design): ``time`` at most ``horizon``, status
        0 beyond it; an event exactly at the horizon counts.
    max_carry_days : int, optional
        Days a count stays valid: when the latest count is more than this
        many days before the landmark day, the tier is ``"unknown"`` (a last
        level of the tier Categorical, present whenever this is set) and
        ``anc_per_ul``/``sampled_at`` are missing. Default: a count holds
        until the next one.
    columns : sequence of str, default ()
        Person-level columns of ``cohort.table`` repeated on each row, e.g.
        ``("age_at_index", "sex")``. ``age_at_index`` is the age at the index
        sample, not at the landmark; ``"age_at_landmark"`` (``age_at_index``
        plus the landmark) is also offered.

    Returns
    -------
    pandas.DataFrame
        One row per (landmark, person at risk at it), landmarks in increasing
        order, persons in the order of ``cohort.table``; columns
        :data:`LANDMARK_COLUMNS` then ``columns``:

        ``landmark`` (float, years); ``person_id``; ``tier`` (ordered
        Categorical of the scheme's tiers, plus ``"unknown"`` with
        ``max_carry_days``); ``anc_per_ul`` (the count in force, cells/µL;
        NaN when unknown); ``sampled_at`` (its sample time; NaT when
        unknown); ``time`` (float, years from the landmark to the end of
        follow-up, > 0, capped at ``horizon``); ``status`` (int64: 0
        censored, 1 the outcome, 2 death without the outcome, as
        :meth:`Cohort.time_to_event`).

        ``attrs``: ``n_persons`` (persons at risk of the outcome at index),
        ``n_prevalent``, and ``landmarks``, a dict of lists (one entry per
        landmark; ``pandas.DataFrame(lm.attrs["landmarks"])`` shows it):
        ``landmark``, ``landmark_day``, ``n_persons``, ``n_ended`` (follow-up
        ended on or before the landmark day: not at risk there),
        ``n_at_risk`` (= ``n_persons - n_ended``, the rows of that landmark)
        and ``n_unknown`` (at risk with an expired count).

    Raises
    ------
    NeutrostatsError
        For a cohort without measurements, an unknown outcome, landmarks that
        are not finite numbers >= 0 or repeated, a ``horizon`` that is not
        positive, a ``max_carry_days`` that is not a whole number >= 1,
        unknown or repeated ``columns``, or a person at risk without any
        count on or before a landmark (measurements missing the index
        count).

    See Also
    --------
    landmark_hazard_ratios : Cox per landmark and pooled over the landmarks.
    neutrostats.cohort.timevarying.time_varying_tiers : the tier updated at every count.

    Notes
    -----
    A landmark analysis answers "given the count known at s, what is the
    risk from s on?"; the per-landmark models are ordinary Cox models of the
    persons still followed at s. The persons of the stacked data appear once
    per landmark, so the pooled model needs the variance clustered by person
    (:func:`landmark_hazard_ratios` does it).

    References
    ----------
    .. [1] van Houwelingen HC. Dynamic prediction by landmarking in event
       history analysis. Scand J Stat 2007;34:70-85.
    .. [2] Anderson JR, Cain KC, Gelber RD. Analysis of survival by tumor
       response. J Clin Oncol 1983;1:710-719.

    Examples
    --------
    >>> from neutrostats import build_cohort
    >>> from neutrostats.synthetic import generate_cohort
    >>> s = generate_cohort(n_persons=300, seed=3)
    >>> c = build_cohort(s.labs, s.persons, s.diagnoses, s.deaths)
    >>> lm = landmark(c, [0.5, 1], columns=["age_at_landmark", "sex"])
    >>> lm.columns.tolist()
    ['landmark', 'person_id', 'tier', 'anc_per_ul', 'sampled_at', 'time', 'status', 'age_at_landmark', 'sex']
    >>> counts = pd.DataFrame(lm.attrs["landmarks"])
    >>> bool((counts["n_at_risk"] + counts["n_ended"] == len(c.table)).all()), bool((lm["time"] > 0).all())
    (True, True)
    """
    fn = "landmark"
    if not isinstance(cohort, Cohort):
        raise NeutrostatsError(f"{fn}: cohort must be a Cohort (from build_cohort), found {type(cohort).__name__}")
    ats = _landmark_times(at, fn)
    h = None if horizon is None else require_positive(horizon, fn, "horizon", "years")
    carry = _carry_days(max_carry_days, fn)
    cols = _person_columns(columns, cohort.table, fn)
    meas = cohort.measurements
    if meas is None:
        raise NeutrostatsError(
            f"{fn}: the cohort has no measurements (Cohort.measurements is None), and the tier at a landmark "
            "comes from the counts; build the cohort with build_cohort(..., keep_measurements=True)"
        )
    tte = cohort.time_to_event(outcome)
    table = cohort.table.loc[tte.index]
    persons = pd.Index(tte["person_id"])
    years = tte["time"].to_numpy(dtype=float)
    stop_day = np.rint(years * DAYS_PER_YEAR).astype(np.int64)
    status = tte["status"].to_numpy(dtype=np.int64)
    index_day = table["index_date"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    daily = _daily_counts(meas, persons, index_day)

    tier_dtype = cohort.table["tier"].dtype
    if not isinstance(tier_dtype, pd.CategoricalDtype):
        raise NeutrostatsError(f"{fn}: cohort.table['tier'] must be the scheme's ordered Categorical, found "
                               f"{tier_dtype}; pass the cohort as build_cohort returned it")
    cats = list(tier_dtype.categories)
    if carry is not None:
        if _UNKNOWN in cats:
            raise NeutrostatsError(f"{fn}: the scheme has a tier named {_UNKNOWN!r}, the name of an expired count; "
                                   "rename that tier to use max_carry_days")
        tier_dtype = pd.CategoricalDtype([*cats, _UNKNOWN], ordered=True)
    n = len(tte)
    frames: list[pd.DataFrame] = []
    summary: dict[str, list[Any]] = {k: [] for k in ("landmark", "landmark_day", "n_persons", "n_ended",
                                                     "n_at_risk", "n_unknown")}
    for s in ats:
        lday = int(np.floor(s * DAYS_PER_YEAR + _DAY_TOL))
        rows = np.flatnonzero(stop_day > lday)
        found, code, anc, sampled, expired = _count_in_force(daily, rows, lday, carry, len(cats))
        if not found.all():
            raise NeutrostatsError(
                f"{fn}: {int((~found).sum())} persons at risk at landmark {s:g} have no count on or before it in "
                f"cohort.measurements (e.g. person {persons[rows[~found]][0]!r}), although the index count should "
                "be there; pass the cohort as build_cohort returned it"
            )
        time = years[rows] - s
        st = status[rows]
        if h is not None:
            beyond = time > h
            time = np.where(beyond, h, time)
            st = np.where(beyond, 0, st).astype(np.int64)
        part = {
            "landmark": np.full(rows.size, s),
            "person_id": tte["person_id"].to_numpy()[rows],
            "tier": pd.Categorical.from_codes(code, dtype=tier_dtype),
            "anc_per_ul": anc,
            "sampled_at": sampled,
            "time": time,
            "status": st,
        }
        for c in cols:
            if c == "age_at_landmark":
                part[c] = table["age_at_index"].to_numpy(dtype=float, na_value=np.nan)[rows] + s
            else:
                part[c] = table[c].iloc[rows].to_numpy()
        frames.append(pd.DataFrame(part))
        for k, v in (("landmark", float(s)), ("landmark_day", lday), ("n_persons", n),
                     ("n_ended", n - rows.size), ("n_at_risk", int(rows.size)), ("n_unknown", int(expired.sum()))):
            summary[k].append(v)
    out = pd.concat(frames, ignore_index=True)
    for c in cols:
        dt = cohort.table[c].dtype if c != "age_at_landmark" else None
        if isinstance(dt, pd.CategoricalDtype):
            out[c] = pd.Categorical(out[c], dtype=dt)
    out.attrs = {"n_persons": n, "n_prevalent": int(tte.attrs["n_prevalent"]), "landmarks": summary}
    return out


# --- models ----------------------------------------------------------------------------------


def _event_of(df: pd.DataFrame, status: str, fn: str) -> np.ndarray:
    s = pd.to_numeric(df[status], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isnan(s) & ~np.isin(s, (0, 1, 2))
    if bad.any():
        raise NeutrostatsError(f"{fn}: column {status!r} must be 0 (censored), 1 (the outcome) or 2 (death first), "
                               f"found {int(bad.sum())} other values (e.g. {df[status][bad].iloc[0]!r})")
    return np.where(np.isnan(s), np.nan, (s == 1).astype(float))


def landmark_hazard_ratios(
    lm: pd.DataFrame,
    adjust: Iterable[str] = (),
    *,
    tier: str = "tier",
    reference: Any = None,
    ties: str = "efron",
    conf_level: float = 0.95,
    categorical: list[str] | None = None,
    per_landmark: bool = True,
    pooled: bool = True,
) -> pd.DataFrame:
    """Hazard ratios by tier at each landmark, and pooled over the landmarks.

    Per landmark: :func:`~neutrostats.cox_hazard_ratios` of the persons at
    risk there, from the landmark on (model-based variance; one row per
    person). Pooled, the landmark "super model": the stacked data sets with a
    baseline hazard per landmark (``strata="landmark"``) and one hazard ratio
    per term, with the robust sandwich variance clustered by person, since a
    person is in several landmark data sets (R's ``coxph(Surv(time, status
    == 1) ~ tier + ... + strata(landmark) + cluster(id))``). The pooled
    hazard ratio is an average over landmarks: when the per-landmark ones
    differ, report those.

    Parameters
    ----------
    lm : pandas.DataFrame
        From :func:`landmark` (columns ``landmark``, ``person_id``, ``time``,
        ``status``, the tier and ``adjust``).
    adjust : sequence of str, default ()
        Covariates, as in :func:`~neutrostats.cox_hazard_ratios` (e.g.
        ``["age_at_landmark", "sex"]``).
    tier : str, default "tier"
    reference : optional
        Reference tier or mapping, as in :func:`~neutrostats.cox_hazard_ratios`.
    ties : {"efron", "breslow"}, default "efron"
    conf_level : float, default 0.95
    categorical : list of str, optional
        As in :func:`~neutrostats.cox_hazard_ratios`.
    per_landmark, pooled : bool, default True
        Which models to fit (at least one).

    Returns
    -------
    pandas.DataFrame
        ``landmark`` (the landmark time, or ``"pooled"``) then the columns of
        :data:`~neutrostats.stats.cox.COX_COLUMNS`; per landmark in
        increasing order, then the pooled rows. The event is ``status == 1``:
        for an outcome, death without it (status 2) censors (cause-specific
        hazards). ``n`` counts persons at the landmark; on pooled rows it
        counts rows of the stacked data (a person once per landmark).
        ``attrs["variance"]`` is ``{landmark: "model" | "robust"}``.

    Raises
    ------
    NeutrostatsError
        For missing columns, status codes other than 0/1/2, neither model
        asked for, and what :func:`~neutrostats.cox_hazard_ratios` refuses
        (the message says at which landmark).

    Warns
    -----
    InfiniteHazardRatioWarning
        A tier without events at a landmark (e.g. ``"unknown"``).

    See Also
    --------
    landmark : the stacked data sets.

    References
    ----------
    .. [1] van Houwelingen HC. Dynamic prediction by landmarking in event
       history analysis. Scand J Stat 2007;34:70-85.
    .. [2] Lin DY, Wei LJ. The robust inference for the Cox proportional
       hazards model. J Am Stat Assoc 1989;84:1074-1078.

    Examples
    --------
    >>> from neutrostats import build_cohort
    >>> from neutrostats.synthetic import generate_cohort
    >>> s = generate_cohort(n_persons=2000, seed=3)
    >>> c = build_cohort(s.labs, s.persons, s.diagnoses, s.deaths)
    >>> lm = landmark(c, [0.5, 1, 2], columns=["age_at_landmark"])
    >>> hr = landmark_hazard_ratios(lm, adjust=["age_at_landmark"])
    >>> hr["landmark"].unique().tolist()
    [0.5, 1.0, 2.0, 'pooled']
    >>> hr.attrs["variance"]["pooled"]
    'robust'
    """
    fn = "landmark_hazard_ratios"
    lm = require_dataframe(lm, fn, "lm", allow_empty=False)
    adjust = [adjust] if isinstance(adjust, str) else list(adjust)
    require_columns(lm, ["landmark", "person_id", "time", "status", tier, *adjust], fn,
                    "Pass the output of landmark() (with the adjust= columns asked for in its columns=).")
    if not (per_landmark or pooled):
        raise NeutrostatsError(f"{fn}: per_landmark and pooled are both False; nothing to fit")
    ev = "_landmark_event"
    data = lm.assign(**{ev: _event_of(lm, "status", fn)})
    kw = dict(tier=tier, reference=reference, adjust=adjust, ties=ties, conf_level=conf_level,
              categorical=categorical)
    parts, variance = [], {}

    def fit(label, d, **more):
        try:
            r = cox_hazard_ratios(d, "time", ev, **kw, **more)
        except NeutrostatsError as err:
            where = "the pooled model" if label == "pooled" else f"landmark {label:g}"
            raise NeutrostatsError(f"{fn}, at {where}: {err}") from None
        variance[label] = r.attrs.get("variance")
        r.attrs = {}
        parts.append(r.assign(landmark=label))

    if per_landmark:
        values = np.sort(np.asarray(lm["landmark"].dropna().unique(), dtype=float))
        for s in values:
            fit(float(s), data.loc[data["landmark"].to_numpy() == s])
    if pooled:
        fit("pooled", data, strata="landmark", cluster="person_id")
    out = pd.concat(parts, ignore_index=True)
    out["landmark"] = out["landmark"].astype(object)
    out = out[["landmark", *COX_COLUMNS]]
    out.attrs = {"variance": variance}
    return out


def _check_rows(tv: pd.DataFrame, fn: str, columns: list[str]) -> np.ndarray:
    """The rows checked for start-stop use; returns the row order by person then start."""
    require_columns(tv, ["person_id", "start", "stop", *columns], fn,
                    "Pass counting-process rows as time_varying_tiers returns them (person_id, start, stop, "
                    "tier, event, status).")
    pid = pd.factorize(tv["person_id"], use_na_sentinel=True)[0]
    if (pid < 0).any():
        raise NeutrostatsError(f"{fn}: {int((pid < 0).sum())} rows have no person_id; every row must belong to a person")
    start = pd.to_numeric(tv["start"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    stop = pd.to_numeric(tv["stop"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    order = np.lexsort((start, pid))
    p, s0, s1 = pid[order], start[order], stop[order]
    same = p[1:] == p[:-1]
    overlap = same & (s0[1:] < s1[:-1])
    if overlap.any():
        i = int(np.flatnonzero(overlap)[0])
        raise NeutrostatsError(
            f"{fn}: {int(overlap.sum())} rows overlap an earlier row of the same person (e.g. person "
            f"{tv['person_id'].iloc[order[i + 1]]!r}: ({s0[i]:g}, {s1[i]:g}] and ({s0[i + 1]:g}, {s1[i + 1]:g}]); "
            "a person is at risk once at a time: each interval must start at or after the previous one stops"
        )
    return order


def time_varying_hazard_ratios(
    tv: pd.DataFrame,
    adjust: Iterable[str] = (),
    *,
    tier: str = "tier",
    event: str = "event",
    reference: Any = None,
    ties: str = "efron",
    conf_level: float = 0.95,
    strata: str | list[str] | None = None,
    categorical: list[str] | None = None,
) -> pd.DataFrame:
    """Hazard ratios of the current tier: Cox regression on counting-process rows.

    :func:`~neutrostats.cox_hazard_ratios` with ``duration="stop"``,
    ``entry="start"`` and ``cluster="person_id"``: each row puts the person
    at risk on ``(start, stop]`` with the tier of that interval, as R's
    ``coxph(Surv(tstart, tstop, event) ~ tier + ... + cluster(id))``.

    Assumptions, stated: the tier in force is that of the most recent count
    (from :func:`~neutrostats.cohort.timevarying.time_varying_tiers`: a count
    acts from its day, or ``lag_days`` later, never before it, so there is
    no looking ahead); the hazard at t depends on the tier at t only, with
    proportional hazards across tiers (the same hazard ratio whenever the
    tier is held, however long the person has been in it and whatever the
    earlier tiers); counts are taken when they are taken: a count ordered
    because the person was ill ties the tier to the event (informative
    monitoring), which no model of this kind removes. The standard errors
    are the robust sandwich variance of Lin & Wei clustered by person
    (R's ``cluster(id)``); with one row per interval the point estimates are
    those of the ordinary partial likelihood.

    Parameters
    ----------
    tv : pandas.DataFrame
        Counting-process rows: ``person_id``, ``start``, ``stop``, ``event``
        (0/1), the tier and the ``adjust`` columns (person-level ones
        repeated on each row, as ``time_varying_tiers(columns=)`` makes).
    adjust : sequence of str, default ()
        Covariates, as in :func:`~neutrostats.cox_hazard_ratios`.
    tier : str, default "tier"
        Ordered Categorical of the tier in force (a level ``"unknown"`` is an
        ordinary level: its hazard ratio is that of expired counts).
    event : str, default "event"
        0/1 on the row where the event happens (for an outcome with death
        competing, ``event`` is ``status == 1``: cause-specific hazards).
    reference, ties, conf_level, strata, categorical
        As in :func:`~neutrostats.cox_hazard_ratios`.

    Returns
    -------
    pandas.DataFrame
        :data:`~neutrostats.stats.cox.COX_COLUMNS`, as
        :func:`~neutrostats.cox_hazard_ratios`, with ``n`` the number of
        persons with time in the tier (a person who changes tier counts in
        each; on covariate rows all persons in the model) and ``n_event``
        the events that happened in the tier. ``std_error`` is the robust
        one. ``attrs``: as :func:`~neutrostats.cox_hazard_ratios`, plus
        ``n_intervals`` (rows used) and ``n_persons``.

    Raises
    ------
    NeutrostatsError
        For missing columns, rows without a person, overlapping intervals of
        one person, and what :func:`~neutrostats.cox_hazard_ratios` refuses
        (e.g. ``start`` not before ``stop``).

    See Also
    --------
    neutrostats.cohort.timevarying.time_varying_tiers : the rows.
    simon_makuch : Kaplan-Meier curves by current tier.
    landmark_hazard_ratios : the landmark alternative.

    References
    ----------
    .. [1] Therneau T, Crowson C, Atkinson E. Using time dependent covariates
       and time dependent coefficients in the Cox model. Vignette of the R
       package survival.
    .. [2] Lin DY, Wei LJ. The robust inference for the Cox proportional
       hazards model. J Am Stat Assoc 1989;84:1074-1078.

    Examples
    --------
    >>> import pandas as pd
    >>> tv = pd.DataFrame({"person_id": [1, 1, 2, 3, 3, 4, 5, 6], "start": [0.0, 1, 0, 0, 2, 0, 0, 0],
    ...                    "stop": [1.0, 4, 3, 2, 5, 6, 2.5, 4.5], "event": [0, 1, 1, 0, 0, 1, 1, 0],
    ...                    "tier": pd.Categorical(["normal", "mild", "mild", "normal", "mild", "normal", "normal",
    ...                                            "mild"], categories=["normal", "mild"], ordered=True)})
    >>> hr = time_varying_hazard_ratios(tv)
    >>> hr[["term", "n", "n_event"]].to_numpy().tolist(), hr.attrs["n_intervals"], hr.attrs["variance"]
    ([['normal', 4, 2], ['mild', 4, 2]], 8, 'robust')
    """
    fn = "time_varying_hazard_ratios"
    tv = require_dataframe(tv, fn, "tv", allow_empty=False)
    adjust = [adjust] if isinstance(adjust, str) else list(adjust)
    strata_l = [] if strata is None else ([strata] if isinstance(strata, str) else list(strata))
    _check_rows(tv, fn, [tier, event, *adjust, *strata_l])
    out = cox_hazard_ratios(tv, "stop", event, tier=tier, reference=reference, adjust=adjust, ties=ties,
                            conf_level=conf_level, entry="start", strata=strata, categorical=categorical,
                            cluster="person_id")
    used = list(dict.fromkeys(["person_id", "start", "stop", event, tier, *adjust, *strata_l]))
    complete = tv[used].notna().all(axis=1).to_numpy()
    rows = tv.loc[complete, ["person_id", tier]]
    per_tier = rows.groupby(tier, observed=False)["person_id"].nunique()
    n_persons = int(rows["person_id"].nunique())
    attrs = dict(out.attrs)
    is_tier = out["group"].notna().to_numpy()
    out["n"] = np.where(is_tier, out["term"].map(per_tier).fillna(0).to_numpy(), n_persons).astype(np.int64)
    out.attrs = attrs | {"n_intervals": int(complete.sum()), "n_persons": n_persons}
    return out


# --- curves by current tier ----------------------------------------------------------------


def _spells(tv: pd.DataFrame, fn: str, tier: str, event: str) -> pd.DataFrame:
    """Consecutive rows of a person in one tier as one spell (start of the first, stop and event of the last).

    The curves are the same on rows and spells; spells keep a cut at a count
    that did not change the tier from showing as a censoring.
    """
    order = _check_rows(tv, fn, [tier, event])
    dtype = tv[tier].dtype
    if not isinstance(dtype, pd.CategoricalDtype):
        raise NeutrostatsError(f"{fn}: column {tier!r} must be an ordered Categorical of tiers (as "
                               f"time_varying_tiers makes), found {dtype}")
    pid = pd.factorize(tv["person_id"])[0][order]
    code = tv[tier].cat.codes.to_numpy()[order]
    start = pd.to_numeric(tv["start"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[order]
    stop = pd.to_numeric(tv["stop"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[order]
    ev = pd.to_numeric(tv[event], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[order]
    new = np.ones(pid.size, dtype=bool)
    new[1:] = (pid[1:] != pid[:-1]) | (code[1:] != code[:-1]) | (start[1:] != stop[:-1]) | (code[1:] < 0)
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, pid.size - 1)
    inner = np.ones(pid.size, dtype=bool)
    inner[last] = False
    hidden = inner & (ev != 0) & ~np.isnan(ev)
    if hidden.any():
        i = int(np.flatnonzero(hidden)[0])
        raise NeutrostatsError(
            f"{fn}: {int(hidden.sum())} rows have {event!r} = {ev[i]:g} but are followed by another row of the same "
            f"person (e.g. person {tv['person_id'].iloc[order[i]]!r} at stop {stop[i]:g}); an event ends a "
            "person's follow-up: only a person's last row may carry it"
        )
    return pd.DataFrame({
        "person_id": tv["person_id"].to_numpy()[order][first],
        tier: pd.Categorical.from_codes(code[first], dtype=dtype),
        "start": start[first],
        "stop": stop[last],
        event: tv[event].to_numpy()[order][last],
    })


def simon_makuch(
    tv: pd.DataFrame,
    *,
    tier: str = "tier",
    event: str = "event",
    conf_level: float = 0.95,
    conf_type: str = "log-log",
) -> pd.DataFrame:
    """Kaplan-Meier curves by current tier (Simon-Makuch): risk sets follow the tier in force.

    At each time the risk set of a tier's curve is the persons in that tier
    just then: a person leaves it when moving to another tier (and enters
    that tier's risk set, a delayed entry) [1]_ [2]_. It is
    :func:`~neutrostats.kaplan_meier` with ``entry="start"`` on the
    person's spells in each tier (consecutive rows in one tier merged, which
    changes no estimate but keeps a count that left the tier unchanged from
    showing as a censoring). Its Greenwood variance is R's
    ``survfit(Surv(tstart, tstop, event) ~ tier)`` without ``id``.

    Caveats, to state with the curve: it is not the survival of any group of
    persons (nobody is followed in one tier; a person contributes to several
    curves). It reads as the survival of a hypothetical person who stays in
    the tier throughout, which is valid only if the hazard depends on the
    current tier alone (Markov: not on time in the tier or earlier tiers),
    and such persons may not exist (those with a low count are often
    re-tested soon and move). The curves of different tiers share persons,
    so comparing them by their intervals as if independent is wrong: compare
    tiers with :func:`time_varying_hazard_ratios`. Beyond the persons' first
    tier the curves start late (delayed entry); early time points of a curve
    with few persons at risk are unstable.

    Parameters
    ----------
    tv : pandas.DataFrame
        Counting-process rows (``person_id``, ``start``, ``stop``, the tier
        and ``event``), from
        :func:`~neutrostats.cohort.timevarying.time_varying_tiers`.
    tier : str, default "tier"
    event : str, default "event"
        0/1. For an outcome with death competing use
        :func:`simon_makuch_cumulative_incidence` (1 - KM would count deaths
        as censored and overstate the risk).
    conf_level : float, default 0.95
    conf_type : {"log-log", "log", "plain"}, default "log-log"

    Returns
    -------
    pandas.DataFrame
        :data:`~neutrostats.stats.survival.KM_COLUMNS` as
        :func:`~neutrostats.kaplan_meier`, one curve per tier (``group``);
        ``n_risk`` at time 0 is the persons whose follow-up starts in the
        tier, ``n_censor`` counts spells ending without the event (censored,
        or moved to another tier).

    Raises
    ------
    NeutrostatsError
        For missing columns, a tier that is not Categorical, overlapping
        rows of a person, an event on a row that is not the person's last,
        and what :func:`~neutrostats.kaplan_meier` refuses.

    See Also
    --------
    simon_makuch_cumulative_incidence : the Aalen-Johansen counterpart.
    landmark : curves from a landmark by the tier then, which are the
        survival of groups of persons.

    References
    ----------
    .. [1] Simon R, Makuch RW. A non-parametric graphical representation of
       the relationship between survival and the occurrence of an event:
       application to responder versus non-responder bias. Stat Med
       1984;3:35-44.
    .. [2] Snapinn SM, Jiang Q, Iglewicz B. Illustrating the impact of a
       time-varying covariate with an extended Kaplan-Meier estimator. Am
       Stat 2005;59:301-307.

    Examples
    --------
    Person 1 is normal until 1, then mild and dies at 4:

    >>> import pandas as pd
    >>> tv = pd.DataFrame({"person_id": [1, 1, 2, 3], "start": [0.0, 1, 0, 0], "stop": [1.0, 4, 3, 2],
    ...                    "event": [0, 1, 1, 0],
    ...                    "tier": pd.Categorical(["normal", "mild", "mild", "normal"],
    ...                                           categories=["normal", "mild"], ordered=True)})
    >>> simon_makuch(tv)[["group", "time", "n_risk", "n_event", "n_censor", "estimate"]]
        group  time  n_risk  n_event  n_censor  estimate
    0  normal   0.0       2        0         0       1.0
    1  normal   1.0       2        0         1       1.0
    2  normal   2.0       1        0         1       1.0
    3    mild   0.0       1        0         0       1.0
    4    mild   3.0       2        1         0       0.5
    5    mild   4.0       1        1         0       0.0
    """
    fn = "simon_makuch"
    tv = require_dataframe(tv, fn, "tv", allow_empty=False)
    sp = _spells(tv, fn, tier, event)
    out = kaplan_meier(sp, "stop", event, group=tier, entry="start", conf_level=conf_level, conf_type=conf_type)
    out.attrs["n_spells"] = len(sp)
    return out


def simon_makuch_cumulative_incidence(
    tv: pd.DataFrame,
    *,
    tier: str = "tier",
    status: str = "status",
    cause: int = 1,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence by current tier, death competing.

    The competing-risks counterpart of :func:`simon_makuch`:
    :func:`~neutrostats.cumulative_incidence` with ``entry="start"`` on each
    person's spells in a tier (``status`` 0 censored or moved to another
    tier, 1 the outcome, 2 death first). Every caveat of
    :func:`simon_makuch` holds: the curves are not the incidence of any group
    of persons, they assume the hazards of both the outcome and death depend
    on the current tier only (Markov), and persons contribute to several
    curves.

    R's multi-state ``survfit`` refuses start-stop rows without ``id``
    ("an id statement is required for start,stop data"); these estimates and
    standard errors are those of ``survfit(Surv(tstart, tstop,
    factor(status)) ~ tier, id = spell)``, each spell its own subject: the
    infinitesimal-jackknife standard error treats a person's spells in one
    tier (leaving it and coming back) as independent. With ``id = person``
    R's ``survfit`` is not this estimator: it first joins a person's
    adjacent rows that end without an event into one row with the later
    row's tier.

    Parameters
    ----------
    tv : pandas.DataFrame
        Counting-process rows (``person_id``, ``start``, ``stop``, the tier
        and ``status``).
    tier : str, default "tier"
    status : str, default "status"
        Integer codes: 0 censored, 1 the outcome, 2, ... competing events.
    cause : int, default 1
    conf_level : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        :data:`~neutrostats.stats.competing.CI_COLUMNS` as
        :func:`~neutrostats.cumulative_incidence`, one curve per tier;
        ``n_censor`` counts spells ending without an event (censored, or
        moved to another tier).

    Raises
    ------
    NeutrostatsError
        As :func:`simon_makuch`, and for bad event codes.

    See Also
    --------
    simon_makuch : Kaplan-Meier by current tier.

    References
    ----------
    .. [1] Simon R, Makuch RW. Stat Med 1984;3:35-44.
    .. [2] Putter H, Fiocco M, Geskus RB. Tutorial in biostatistics: competing
       risks and multi-state models. Stat Med 2007;26:2389-2430.

    Examples
    --------
    >>> import pandas as pd
    >>> tv = pd.DataFrame({"person_id": [1, 1, 2, 3, 4], "start": [0.0, 1, 0, 0, 0],
    ...                    "stop": [1.0, 4, 3, 2, 5], "status": [0, 1, 2, 1, 0],
    ...                    "tier": pd.Categorical(["normal", "mild", "mild", "normal", "mild"],
    ...                                           categories=["normal", "mild"], ordered=True)})
    >>> ci = simon_makuch_cumulative_incidence(tv)
    >>> ci.loc[ci["group"] == "mild", ["time", "n_risk", "estimate", "n_event", "n_competing"]]
       time  n_risk  estimate  n_event  n_competing
    3   0.0       2  0.000000        0            0
    4   3.0       3  0.000000        0            1
    5   4.0       2  0.333333        1            0
    6   5.0       1  0.333333        0            0
    """
    fn = "simon_makuch_cumulative_incidence"
    tv = require_dataframe(tv, fn, "tv", allow_empty=False)
    sp = _spells(tv, fn, tier, status)
    out = cumulative_incidence(sp, "stop", status, group=tier, conf_level=conf_level, cause=cause, entry="start")
    out.attrs["n_spells"] = len(sp)
    return out
