"""Person-time rates: incidence rates, rate ratios, Poisson regression, Lexis splitting, SIR/SMR.

A rate is events per person-time. The functions here take either a cohort
table and an outcome name (``build_cohort(...).table`` with ``"death"``:
``death_time``/``death``; any other outcome ``o``: ``<o>_time`` and
``<o>_status == 1``, leaving out the persons with ``<o>_prevalent``) or
explicit ``duration=``/``event=`` columns (and ``entry=`` for rows that start
later, e.g. the pieces of :func:`split_follow_up`). Person-time is
``duration - entry`` in the unit of the durations (years in a cohort table),
reported as ``person_years``; rates are per ``per`` person-years (1,000 by
default).

Conventions
-----------
* A row's events count where its at-risk time ends: on the piece of
  :func:`split_follow_up` that holds the event, never on the others.
* ``horizon=`` censors follow-up at that time (events after it are not
  counted, person-time stops there). A horizon beyond the longest follow-up
  is refused.
* Rows missing a used column are left out (complete cases), counted in
  ``attrs["n_missing"]`` and announced by a ``DataQualityWarning`` (as every
  time-to-event function, through :func:`~neutrostats.stats.tte.check_tte`);
  prevalent persons are left out and counted in ``attrs["n_prevalent"]``.
* A group without person-time has no rate: it is kept as a row with
  ``estimable`` False and a ``note``, never divided by zero.

Examples
--------
>>> import pandas as pd
>>> from neutrostats.stats.rates import incidence_rates
>>> d = pd.DataFrame({"years": [2.0, 3.0, 5.0], "died": [1, 0, 1]})
>>> incidence_rates(d, duration="years", event="died", by=None)[["n_event", "person_years", "estimate"]]
   n_event  person_years  estimate
0        2          10.0     200.0
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.distributions import beta_ppf, binomtest_pvalue, chi2, norm
from neutrostats.core.lazy import lazy_module
from neutrostats.core.validate import (
    covariate_kinds,
    distinct_examples,
    factor_levels,
    require_choice,
    require_columns,
    require_conf_level,
    require_dataframe,
    require_positive,
    split_reference,
)
from neutrostats.errors import NeutrostatsError, PoissonConvergenceWarning, SeparationWarning
from neutrostats.stats.cox import _covariate_terms
from neutrostats.stats.tte import check_tte, numeric_values

# scipy is imported at the first call that needs it, not with neutrostats (neutrostats.core.lazy).
stats = lazy_module("scipy.stats")

__all__ = [
    "RATE_COLUMNS",
    "RATE_RATIO_COLUMNS",
    "POISSON_COLUMNS",
    "SIR_COLUMNS",
    "incidence_rates",
    "rate_ratios",
    "poisson_regression",
    "split_follow_up",
    "standardized_incidence_ratio",
    "sir",
]

#: Columns of :func:`incidence_rates`, in order.
RATE_COLUMNS = ["group", "n", "n_event", "person_years", "estimate", "conf_low", "conf_high", "method",
                "estimable", "note"]
#: Columns of :func:`rate_ratios`, in order.
RATE_RATIO_COLUMNS = ["group", "is_reference", "contrast", "method", "n", "n_event", "person_years", "estimate",
                      "std_error", "conf_low", "conf_high", "p_value", "estimable", "note"]
#: Columns of :func:`poisson_regression`, in order.
POISSON_COLUMNS = ["term", "group", "is_reference", "n", "n_event", "person_years", "estimate", "std_error",
                   "conf_low", "conf_high", "p_value", "estimable", "note"]
#: Columns of :func:`standardized_incidence_ratio`, in order.
SIR_COLUMNS = ["group", "n", "n_event", "person_years", "expected", "estimate", "conf_low", "conf_high", "p_value",
               "method", "estimable", "note"]

_RATE_METHODS = ("exact", "byar", "wald")
_SIR_METHODS = ("exact", "byar")
_VARIANCES = ("model", "robust", "negative_binomial", "quasi")
_ALL = "all"
_HINT = ("Pass the cohort table and an outcome name (e.g. 'death'), or duration= and event= columns "
         "(and entry= for rows that start later).")
_BANDS = {"age": "age_band", "period": "period", "time": "time_band"}
_SPLIT_NAMES = ("entry", "exit", "event")
_SLIVER = 1e-9  # years (0.03 s): band boundaries closer than this to another split nothing


# --- input: the rows, their person-time and events ---------------------------------------------


@dataclass(frozen=True)
class _RateData:
    data: pd.DataFrame  # complete rows used (original index, used columns)
    entry: np.ndarray  # start of the at-risk time (0 without entry=)
    exit: np.ndarray  # its end, capped at the horizon
    event: np.ndarray  # bool: an event at exit (within the horizon)
    n_input: int
    n_missing: int
    missing: dict
    n_prevalent: int

    @property
    def person_time(self) -> np.ndarray:
        return np.maximum(self.exit - self.entry, 0.0)


def _outcome_columns(fn, outcome, duration, event):
    """(duration, event, prevalent column or None, event coding) of the call."""
    if outcome is not None:
        if duration is not None or event is not None:
            raise NeutrostatsError(f"{fn}: give either an outcome name ({outcome!r}) or duration= and event=, "
                                   "not both")
        if not isinstance(outcome, str):
            raise NeutrostatsError(f"{fn}: outcome must be a column-name stem such as 'death', found {outcome!r}")
        if outcome == "death":
            return "death_time", "death", None, "binary"
        return f"{outcome}_time", f"{outcome}_status", f"{outcome}_prevalent", "codes"
    if duration is None or event is None:
        raise NeutrostatsError(f"{fn}: nothing to count; {_HINT}")
    return duration, event, None, "binary"


def _rate_data(df, fn, outcome, duration, event, entry, by, horizon, covariates=()) -> _RateData:
    df = require_dataframe(df, fn, "df", allow_empty=False)
    dur, ev, prev, coding = _outcome_columns(fn, outcome, duration, event)
    n_prev = 0
    if prev is not None:
        require_columns(df, [prev, dur, ev], fn, _HINT)
        # Prevalent persons have no time at risk of a first diagnosis (their time is missing by design).
        is_prev = df[prev].fillna(False).to_numpy(dtype=bool)
        n_prev = int(is_prev.sum())
        df = df.loc[~is_prev]
        if df.empty:
            raise NeutrostatsError(f"{fn}: every row of df is prevalent for {outcome!r} ({n_prev}); no one is at risk")
    chk = check_tte(df, fn, duration=dur, event=ev, events=coding, group=by, entry=entry,
                    covariates=list(covariates), hint=_HINT, stacklevel=4)
    events = chk.event == 1 if coding == "codes" else chk.event.astype(bool)
    start = np.zeros(chk.time.size) if chk.entry is None else chk.entry
    stop = chk.time
    if horizon is not None:
        h = require_positive(horizon, fn, "horizon", "years")
        longest = float(stop.max())
        if h > longest:
            raise NeutrostatsError(
                f"{fn}: horizon={horizon!r} is beyond the follow-up: the longest {dur!r} is {longest:g}; "
                "choose a horizon within follow-up (or leave horizon=None)")
        events = events & (stop <= h)
        stop = np.minimum(stop, h)
    return _RateData(chk.data, start, stop, events, chk.n_input, chk.n_missing, dict(chk.missing), n_prev)


def _groups(data: pd.DataFrame, by, fn) -> tuple[Any, np.ndarray]:
    """The groups in order (a Categorical keeping the column's categories) and each row's group code."""
    if by is None:
        return pd.Categorical([_ALL]), np.zeros(len(data), dtype=np.int64)
    s = data[by]
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        return pd.Categorical(cats, dtype=s.dtype), s.cat.codes.to_numpy().astype(np.int64)
    levels = factor_levels(s, column=by, function=fn)
    dtype = pd.CategoricalDtype(levels, ordered=True)
    return pd.Categorical(levels, dtype=dtype), pd.Categorical(s, dtype=dtype).codes.astype(np.int64)


def _sums(rd: _RateData, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, events and person-time per group."""
    n = np.bincount(codes, minlength=k)
    d = np.bincount(codes, weights=rd.event, minlength=k).astype(np.int64)
    pt = np.bincount(codes, weights=rd.person_time, minlength=k)
    return n, d, pt


def _attrs(out: pd.DataFrame, rd: _RateData, **extra) -> pd.DataFrame:
    out.attrs["n_missing"] = int(rd.n_missing)
    out.attrs["missing"] = dict(rd.missing)
    out.attrs["n_prevalent"] = int(rd.n_prevalent)
    out.attrs.update(extra)
    return out


# --- intervals for a Poisson count -------------------------------------------------------------


def _count_interval(d: np.ndarray, level: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Limits for the mean of a Poisson count ``d`` (divide by person-time or expected for rates or ratios)."""
    d = np.asarray(d, dtype=float)
    a = (1 - level) / 2
    z = norm.ppf(1 - a)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "exact":
            lo = np.where(d > 0, chi2.ppf(a, 2 * d) / 2, 0.0)
            hi = chi2.ppf(1 - a, 2 * (d + 1)) / 2
        elif method == "byar":
            lo = np.where(d > 0, d * (1 - 1 / (9 * d) - z / (3 * np.sqrt(d))) ** 3, 0.0)
            hi = (d + 1) * (1 - 1 / (9 * (d + 1)) + z / (3 * np.sqrt(d + 1))) ** 3
        else:  # wald on the log scale: undefined without events
            lo = np.where(d > 0, d * np.exp(-z / np.sqrt(d)), np.nan)
            hi = np.where(d > 0, d * np.exp(z / np.sqrt(d)), np.nan)
    return lo, hi


def _poisson_test_p(x: int, m: float) -> float:
    """Two-sided p of ``poisson.test(x, T = m)``: outcomes no more likely than ``x`` (R's relErr rule)."""
    if m <= 0:
        return 1.0 if x == 0 else 0.0
    if x == m:
        return 1.0
    d = stats.poisson.pmf(x, m) * (1 + 1e-7)
    if x < m:
        n_hi = int(np.ceil(2 * m - x))
        while stats.poisson.pmf(n_hi, m) > d:
            n_hi *= 2
        i = np.arange(int(np.ceil(m)), n_hi + 1)
        y = int(np.sum(stats.poisson.pmf(i, m) <= d))
        p = stats.poisson.cdf(x, m) + stats.poisson.sf(n_hi - y, m)
    else:
        i = np.arange(0, int(np.floor(m)) + 1)
        y = int(np.sum(stats.poisson.pmf(i, m) <= d))
        p = stats.poisson.cdf(y - 1, m) + stats.poisson.sf(x - 1, m)
    return float(min(1.0, p))


# --- incidence rates ---------------------------------------------------------------------------


def incidence_rates(
    df: pd.DataFrame,
    outcome: str | None = None,
    *,
    duration: str | None = None,
    event: str | None = None,
    by: str | None = "tier",
    per: float = 1000,
    horizon: float | None = None,
    conf_level: float = 0.95,
    method: str = "exact",
    entry: str | None = None,
) -> pd.DataFrame:
    """Events, person-years and the incidence rate per ``per`` person-years, by group.

    Parameters
    ----------
    df : pandas.DataFrame
        A cohort table (``build_cohort(...).table``) with ``outcome``, or any
        table with ``duration`` and ``event`` columns (e.g. the pieces of
        :func:`split_follow_up`).
    outcome : str, optional
        ``"death"`` (``death_time``, ``death``) or an outcome of the cohort
        (``<o>_time``, ``<o>_status == 1``; persons with ``<o>_prevalent``
        are left out and counted in ``attrs["n_prevalent"]``; deaths before
        the outcome end follow-up without an event).
    duration, event : str, optional
        Instead of ``outcome``: the end of the at-risk time (>= 0) and a 0/1
        or boolean event column.
    by : str or None, default "tier"
        Grouping column; its categories give the rows (a Categorical keeps
        all its categories, in order, empty ones included). None: one row,
        group ``"all"``.
    per : float, default 1000
        Rates are per ``per`` person-years (in the unit of the durations).
    horizon : float, optional
        Censor follow-up at this time (not beyond the longest follow-up).
    conf_level : float, default 0.95
    method : {"exact", "byar", "wald"}, default "exact"
        Interval for the rate, from the event count ``d`` and person-time
        ``T`` (``a = (1 - conf_level) / 2``, ``z`` its normal quantile):

        * ``"exact"`` (Garwood 1936): ``chi2(a; 2d)/2T``, ``chi2(1-a;
          2d+2)/2T`` (lower 0 without events) = R's ``poisson.test(d, T)``
          and ``epiR::epi.conf(cbind(d, T), ctype = "inc.rate", method =
          "exact")``;
        * ``"byar"`` (Byar's approximation, Rothman & Boice 1979):
          ``d (1 - 1/9d - z/3 sqrt(d))^3 / T`` and ``(d+1)(1 - 1/9(d+1) + z/3
          sqrt(d+1))^3 / T`` = ``epiR::epi.smr(d, T, method = "byar")``.
          (``epi.conf(ctype = "inc.rate", method = "byar")`` uses ``d + 0.5``
          in both limits instead, a variant without a published source);
        * ``"wald"``: on the log scale, ``(d/T) exp(-+ z / sqrt(d))`` =
          ``epiR::epi.smr(d, T, method = "rothman.greenland")``; no interval
          without events.
    entry : str, optional
        Column of the start of the at-risk time (delayed entry; entry <
        duration), as on split pieces.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RATE_COLUMNS`, one row per group in the group order:
        ``group`` (Categorical, the column's dtype), ``n`` (rows: persons in
        a cohort table, pieces of split data), ``n_event``,
        ``person_years`` (sum of ``duration - entry``), ``estimate`` (rate
        per ``per`` person-years), ``conf_low``, ``conf_high``, ``method``,
        ``estimable`` (False without person-time) and ``note`` (why, or
        why an interval is missing; "" otherwise). ``attrs``: ``per``,
        ``n_missing``, ``missing``, ``n_prevalent``.

    Raises
    ------
    NeutrostatsError
        Both or neither of ``outcome`` and ``duration``/``event``, missing
        columns, non-numeric or negative durations, events not 0/1, entry
        not before duration, a horizon beyond follow-up or not positive, a
        ``per`` that is not positive, an unknown ``method``.

    References
    ----------
    .. [1] Garwood F. Fiducial limits for the Poisson distribution.
       Biometrika 1936;28:437-442.
    .. [2] Rothman KJ, Boice JD. Epidemiologic analysis with a programmable
       calculator. NIH Publication 79-1649, 1979.
    .. [3] Breslow NE, Day NE. Statistical Methods in Cancer Research, vol.
       II. IARC 1987, chapter 2.

    Examples
    --------
    Two deaths in ten person-years; R's ``poisson.test(2, 10)$conf.int``
    is 0.02422093, 0.72246877 per person-year:

    >>> import pandas as pd
    >>> d = pd.DataFrame({"years": [2.0, 3.0, 5.0], "died": [1, 0, 1],
    ...                   "tier": pd.Categorical(["normal", "mild", "mild"], categories=["normal", "mild"])})
    >>> r = incidence_rates(d, duration="years", event="died", by=None)
    >>> r[["n_event", "person_years", "estimate", "conf_low", "conf_high"]].round(4)
       n_event  person_years  estimate  conf_low  conf_high
    0        2          10.0     200.0   24.2209   722.4688
    >>> incidence_rates(d, duration="years", event="died", per=1)[["group", "n_event", "estimate"]]
        group  n_event  estimate
    0  normal        1     0.500
    1    mild        1     0.125
    """
    fn = "incidence_rates"
    require_choice(method, _RATE_METHODS, fn, "method")
    level = require_conf_level(conf_level, fn)
    per = require_positive(per, fn, "per", "person-years")
    rd = _rate_data(df, fn, outcome, duration, event, entry, by, horizon)
    groups, codes = _groups(rd.data, by, fn)
    n, d, pt = _sums(rd, codes, len(groups))
    lo, hi = _count_interval(d, level, method)
    has = pt > 0
    safe = np.where(has, pt, 1.0)
    note = np.where(~has, np.where(n == 0, "no rows in this group", "no person-time in this group"),
                    np.where((d == 0) & (method == "wald"), "no events: the Wald interval is undefined", ""))
    out = pd.DataFrame({
        "group": groups, "n": n.astype(np.int64), "n_event": d, "person_years": pt,
        "estimate": np.where(has, d / safe * per, np.nan),
        "conf_low": np.where(has, lo / safe * per, np.nan), "conf_high": np.where(has, hi / safe * per, np.nan),
        "method": method, "estimable": has, "note": note.astype(object),
    }, columns=RATE_COLUMNS)
    return _attrs(out, rd, per=per)


# --- rate ratios and differences ---------------------------------------------------------------


def _reference_code(groups: pd.Categorical, reference, by, fn) -> int:
    cats = list(groups.categories)
    if reference is None:
        return 0
    hit = [i for i, c in enumerate(cats) if c == reference or str(c) == str(reference)]
    if not hit:
        raise NeutrostatsError(f"{fn}: reference={reference!r} is not a group of {by!r}; the groups are {cats}; "
                               "pass one of them")
    return hit[0]


def _exact_ratio(x1: int, t1: float, x0: int, t0: float, level: float) -> dict:
    """Conditional exact rate ratio (group 1 / group 0): ``poisson.test(c(x1, x0), c(t1, t0))``."""
    n = x1 + x0
    a = (1 - level) / 2
    p_lo = 0.0 if x1 == 0 else beta_ppf(a, x1, n - x1 + 1)
    p_hi = 1.0 if x1 == n else beta_ppf(1 - a, x1 + 1, n - x1)
    odds = t0 / t1
    pval = binomtest_pvalue(int(x1), int(n), t1 / (t1 + t0))
    with np.errstate(divide="ignore"):
        return dict(estimate=(x1 / t1) / (x0 / t0), std_error=np.nan, conf_low=p_lo / (1 - p_lo) * odds,
                    conf_high=np.inf if p_hi == 1 else p_hi / (1 - p_hi) * odds, p_value=float(pval))


def _contrast_rows(x1, t1, x0, t0, level, per) -> list[dict]:
    """Exact and Wald rate ratio, Wald rate difference, or why not, of one group against the reference."""
    z = norm.ppf(0.5 + level / 2)
    nan = dict(estimate=np.nan, std_error=np.nan, conf_low=np.nan, conf_high=np.nan, p_value=np.nan)
    rows = []
    if t1 <= 0 or t0 <= 0:
        why = "no person-time in this group" if t1 <= 0 else "no person-time in the reference group"
        return [dict(nan, contrast=c, method=m, estimable=False, note=why)
                for c, m in (("ratio", "exact"), ("ratio", "wald"), ("difference", "wald"))]
    if x0 == 0:
        why = "no events in the reference group: the rate ratio is not finite"
        rows += [dict(nan, contrast="ratio", method=m, estimable=False, note=why) for m in ("exact", "wald")]
    else:
        rows.append(dict(_exact_ratio(x1, t1, x0, t0, level), contrast="ratio", method="exact", estimable=True,
                         note="" if x1 else "no events in this group: the rate ratio is 0"))
        if x1 == 0:
            rows.append(dict(nan, contrast="ratio", method="wald", estimable=False,
                             note="no events in this group: the Wald interval is undefined"))
        else:
            lr, se = np.log((x1 / t1) / (x0 / t0)), np.sqrt(1 / x1 + 1 / x0)
            rows.append(dict(estimate=np.exp(lr), std_error=se, conf_low=np.exp(lr - z * se),
                             conf_high=np.exp(lr + z * se), p_value=2 * norm.sf(abs(lr / se)),
                             contrast="ratio", method="wald", estimable=True, note=""))
    diff, se = x1 / t1 - x0 / t0, np.sqrt(x1 / t1 ** 2 + x0 / t0 ** 2)
    if se > 0:
        rows.append(dict(estimate=diff * per, std_error=se * per, conf_low=(diff - z * se) * per,
                         conf_high=(diff + z * se) * per, p_value=2 * norm.sf(abs(diff / se)),
                         contrast="difference", method="wald", estimable=True, note=""))
    else:
        rows.append(dict(nan, contrast="difference", method="wald", estimable=False,
                         note="no events in either group: the Wald interval is undefined"))
    return rows


def rate_ratios(
    df: pd.DataFrame,
    outcome: str | None = None,
    *,
    duration: str | None = None,
    event: str | None = None,
    by: str = "tier",
    reference: Any = None,
    per: float = 1000,
    horizon: float | None = None,
    conf_level: float = 0.95,
    entry: str | None = None,
) -> pd.DataFrame:
    """Rate ratios and rate differences of every group against the reference group.

    Takes the inputs of :func:`incidence_rates`. For a group with ``x1``
    events in ``T1`` person-years against the reference's ``x0`` in ``T0``:

    * ratio, ``"exact"``: ``(x1/T1) / (x0/T0)`` with the conditional exact
      interval and p-value (``x1`` is binomial given ``x1 + x0`` with
      probability ``T1 / (T1 + T0)`` under equal rates; Clopper-Pearson
      limits mapped to the ratio) = R's ``poisson.test(c(x1, x0), c(T1, T0))``;
    * ratio, ``"wald"``: log-scale Wald interval with ``se = sqrt(1/x1 +
      1/x0)`` and the Wald z test;
    * difference, ``"wald"``: ``x1/T1 - x0/T0`` per ``per`` person-years
      with ``se = sqrt(x1/T1^2 + x0/T0^2)`` (Rothman & Greenland).

    Parameters
    ----------
    df, outcome, duration, event, per, horizon, conf_level, entry
        As :func:`incidence_rates`.
    by : str, default "tier"
        Grouping column.
    reference : optional
        The reference group; default the first category (the mildest tier).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RATE_RATIO_COLUMNS`, long form: per group in order,
        the rows ``(contrast, method)`` = ``("ratio", "exact")``,
        ``("ratio", "wald")``, ``("difference", "wald")``. The reference
        group's rows have ``is_reference`` True and estimate 1 (ratio) or 0
        (difference) without interval. ``n``, ``n_event``, ``person_years``
        are the group's. ``std_error`` is of the log ratio (Wald) or of the
        difference per ``per``; NaN for the exact ratio. Not estimable
        (NaN, with a ``note``): no person-time in the group or the
        reference, no events in the reference (ratios), Wald without events.
        A group without events has the exact ratio 0 with a finite upper
        limit.

    Raises
    ------
    NeutrostatsError
        As :func:`incidence_rates`; also an unknown ``reference``.

    References
    ----------
    .. [1] Breslow NE, Day NE. Statistical Methods in Cancer Research, vol.
       II. IARC 1987, section 2.3 (conditional test and limits for a rate ratio).
    .. [2] Rothman KJ, Greenland S, Lash TL. Modern Epidemiology, 3rd ed., 2008, chapter 14.

    Examples
    --------
    R's ``poisson.test(c(4, 10), c(400, 2000))``: ratio 2, exact interval
    0.4578558 to 6.9341784, p = 0.2716048:

    >>> import pandas as pd
    >>> d = pd.DataFrame({"py": [100.0] * 4 + [200.0] * 10, "died": 1,
    ...                   "g": pd.Categorical(["b"] * 4 + ["a"] * 10, categories=["a", "b"])})
    >>> r = rate_ratios(d, duration="py", event="died", by="g")
    >>> r.loc[r["group"] == "b", ["contrast", "method", "estimate", "conf_low", "conf_high", "p_value"]].round(4)
         contrast method  estimate  conf_low  conf_high  p_value
    3       ratio  exact       2.0    0.4579     6.9342   0.2716
    4       ratio   wald       2.0    0.6273     6.3769   0.2413
    5  difference   wald       5.0   -5.2781    15.2781   0.3404

    (Wald: ``z = log(2) / sqrt(1/4 + 1/10) = 1.1716``; difference ``10 - 5 =
    5`` per 1,000 with ``se = 1000 sqrt(4/400^2 + 10/2000^2) = 5.244``.)
    """
    fn = "rate_ratios"
    level = require_conf_level(conf_level, fn)
    per = require_positive(per, fn, "per", "person-years")
    if by is None:
        raise NeutrostatsError(f"{fn}: by= must name the grouping column (e.g. 'tier'); found None")
    rd = _rate_data(df, fn, outcome, duration, event, entry, by, horizon)
    groups, codes = _groups(rd.data, by, fn)
    r = _reference_code(groups, reference, by, fn)
    n, d, pt = _sums(rd, codes, len(groups))
    rows = []
    for i in range(len(groups)):
        base = dict(group=i, is_reference=i == r, n=int(n[i]), n_event=int(d[i]), person_years=float(pt[i]))
        if i == r:
            for c, m, est in (("ratio", "exact", 1.0), ("ratio", "wald", 1.0), ("difference", "wald", 0.0)):
                rows.append(dict(base, contrast=c, method=m, estimate=est, std_error=np.nan, conf_low=np.nan,
                                 conf_high=np.nan, p_value=np.nan, estimable=bool(pt[i] > 0),
                                 note="" if pt[i] > 0 else "no person-time in the reference group"))
            continue
        rows += [dict(base, **row) for row in _contrast_rows(int(d[i]), pt[i], int(d[r]), pt[r], level, per)]
    out = pd.DataFrame(rows, columns=RATE_RATIO_COLUMNS)
    out["group"] = pd.Categorical.from_codes(out["group"].to_numpy(), dtype=groups.dtype)
    out = out.astype({"is_reference": bool, "n": np.int64, "n_event": np.int64, "estimable": bool,
                      "note": object, "contrast": object, "method": object})
    return _attrs(out, rd, per=per, reference=groups.categories[r])


# --- Lexis splitting ---------------------------------------------------------------------------


def _fmt_break(x: float) -> str:
    if np.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    return format(float(x), ".10g")


def _decimal_years(values: Any) -> np.ndarray:
    """Calendar time as decimal years: the year plus the elapsed share of it (2000-01-01 is 2000.0).

    The share counts the days of that year (365 or 366), so a break such as
    2010 falls on 1 January 2010; follow-up in years of 365.25 days moves
    along it within a day of the calendar.
    """
    t = pd.to_datetime(pd.Series(values)).to_numpy(dtype="datetime64[ns]")
    year = t.astype("datetime64[Y]")
    start = year.astype("datetime64[ns]")
    length = (year + 1).astype("datetime64[ns]") - start
    out = year.astype(float) + 1970 + (t - start) / length
    return np.where(np.isnat(t), np.nan, out)


def _check_breaks(breaks, fn) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Per time scale: the breaks as numbers (decimal years for dates) and the band labels."""
    if not isinstance(breaks, Mapping) or not breaks:
        raise NeutrostatsError(f"{fn}: breaks must be a mapping such as {{'age': [0, 50, 70, 90], 'period': "
                               f"[2000, 2010, 2020]}}, found {breaks!r}")
    out = {}
    for scale, b in breaks.items():
        if scale not in _BANDS:
            raise NeutrostatsError(f"{fn}: breaks has the time scale {scale!r}; the scales are {list(_BANDS)} "
                                   "(attained age, calendar period, time since the index)")
        vals = list(b) if isinstance(b, (Sequence, np.ndarray, pd.Series, pd.Index)) and not isinstance(b, str) else []
        dates = bool(vals) and all(isinstance(v, (pd.Timestamp, np.datetime64, str)) or hasattr(v, "year")
                                   for v in vals) and scale == "period"
        try:
            arr = _decimal_years(vals) if dates else np.asarray(vals, dtype=float)
        except (TypeError, ValueError):
            arr = np.array([np.nan])
        if arr.size < 2 or np.isnan(arr).any() or np.any(np.diff(arr) <= 0):
            raise NeutrostatsError(
                f"{fn}: breaks[{scale!r}] must hold at least two increasing numbers (years; dates for 'period'), "
                f"found {b!r}")
        shown = [pd.Timestamp(v).date().isoformat() for v in vals] if dates else [_fmt_break(x) for x in arr]
        out[scale] = (arr, [f"[{shown[k]},{shown[k + 1]})" for k in range(arr.size - 1)])
    return out


def _origins(data: pd.DataFrame, scales, age, date, fn) -> dict[str, np.ndarray]:
    """Each scale's value at time 0 (the index): age in years, calendar time in decimal years, 0."""
    out = {}
    for scale in scales:
        if scale == "time":
            out[scale] = np.zeros(len(data))
        elif scale == "age":
            out[scale] = numeric_values(data[age], age, fn, "age at the index",
                                        f"pass the age at the index in years, age={age!r}")
        else:
            s = data[date]
            if pd.api.types.is_datetime64_any_dtype(s.dtype):
                out[scale] = _decimal_years(s)
            else:
                out[scale] = numeric_values(s, date, fn, "calendar time at the index",
                                            f"pass dates or decimal years, date={date!r}")
    return out


def _cut_points(start, stop, origins, scales):
    """(row, time) of every band boundary strictly inside a row's (start, stop), on every scale."""
    rows, times = [], []
    for scale, (b, _) in scales.items():
        o = origins[scale]
        lo = np.searchsorted(b, o + start, "right")
        hi = np.searchsorted(b, o + stop, "left")
        k = np.maximum(hi - lo, 0)
        r = np.repeat(np.arange(start.size), k)
        j = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k) + np.repeat(lo, k)
        t = b[j] - o[r]
        # A boundary within _SLIVER of the start or end (rounding in b - o, or a date that falls on it)
        # splits nothing: no piece of a fraction of a second.
        inside = (t > start[r] + _SLIVER) & (t < stop[r] - _SLIVER)
        rows.append(r[inside])
        times.append(t[inside])
    return np.concatenate(rows), np.concatenate(times)


def _pieces(start, stop, event, origins, scales):
    """Row of origin, start, stop, event and band codes of every piece (vectorised over rows)."""
    cr, ct = _cut_points(start, stop, origins, scales)
    row = np.concatenate([np.arange(start.size), cr])
    t0 = np.concatenate([start, ct])
    order = np.lexsort((t0, row))
    row, t0 = row[order], t0[order]
    dup = np.zeros(row.size, dtype=bool)
    dup[1:] = (row[1:] == row[:-1]) & (t0[1:] - t0[:-1] <= _SLIVER)  # a boundary of two scales at once
    row, t0 = row[~dup], t0[~dup]
    last = np.ones(row.size, dtype=bool)
    last[:-1] = row[1:] != row[:-1]
    t1 = np.empty_like(t0)
    t1[:-1] = t0[1:]
    t1[last] = stop[row[last]]
    ev = last & event[row]
    mid = (t0 + t1) / 2
    codes = {}
    for scale, (b, _) in scales.items():
        k = np.searchsorted(b, origins[scale][row] + mid, "right") - 1
        codes[scale] = np.where((k >= 0) & (k < b.size - 1), k, -1)
    return row, t0, t1, ev, codes


def split_follow_up(
    df: pd.DataFrame,
    outcome: str | None = None,
    *,
    breaks: Mapping[str, Sequence],
    duration: str | None = None,
    event: str | None = None,
    entry: str | None = None,
    age: str = "age_at_index",
    date: str = "index_date",
    horizon: float | None = None,
    drop: bool = False,
    keep: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Split each person's follow-up by attained age, calendar period and time since the index (Lexis).

    A person followed from the index (or ``entry``) to ``duration`` passes
    through bands of attained age (``age`` at the index + time), calendar
    period (``date`` of the index + time) and time since the index; each
    crossing of a band boundary starts a new piece, as R's
    ``popEpi::splitMulti``, ``Epi::splitLexis`` and ``survival::survSplit``.
    Bands are half-open, ``[a, b)``. The pieces' person-time and events add
    up exactly to the person's (the event only on the last piece). A
    boundary less than 1e-9 years (0.03 s) from the start or end of a
    person's follow-up, or from another boundary, makes no piece of its own
    (floating-point rounding of ``break - age`` would otherwise create
    slivers, where R's splitters differ among themselves).

    Parameters
    ----------
    df : pandas.DataFrame
        A cohort table with ``outcome``, or a table with ``duration`` and
        ``event`` (and ``entry``); times in years since the index.
    outcome, duration, event, entry, horizon
        As :func:`incidence_rates` (prevalent persons are left out and
        counted in ``attrs["n_prevalent"]``; missing values: complete cases,
        with a ``DataQualityWarning``).
    breaks : mapping
        Band boundaries per time scale, increasing: ``"age"`` (years),
        ``"period"`` (decimal calendar years, or dates), ``"time"`` (years
        since the index); e.g. ``{"age": [0, 50, 70, 90, float("inf")],
        "period": [2000, 2010, 2020]}``. Calendar time is
        the year plus the elapsed share of its days (2000-01-01 is 2000.0;
        give numbers to use another definition, e.g. R's ``Epi::cal.yr``).
    age : str, default "age_at_index"
        Age at the index (years); used for the ``"age"`` scale.
    date : str, default "index_date"
        Date of the index (datetime, or decimal years); used for ``"period"``.
    drop : bool, default False
        Follow-up outside the breaks (before the first or after the last)
        is kept as pieces with a missing band; ``drop=True`` removes those
        pieces (popEpi's default), and ``attrs`` count what was removed.
    keep : list of str, optional
        Columns of ``df`` carried to every piece (default all).

    Returns
    -------
    pandas.DataFrame
        One row per piece, rows of a person together in time order (new
        RangeIndex): the ``keep`` columns, then ``entry`` and ``exit`` (the
        piece's start and end in years since the index), ``event`` (bool:
        the event at ``exit``), and one ordered Categorical per scale
        split, ``age_band``, ``period``, ``time_band``, labelled ``"[60,70)"``
        (dates as ``"[2005-01-01,2010-01-01)"``). ``attrs``: ``n_missing``,
        ``missing``, ``n_prevalent``, ``n_persons``, ``dropped_pieces``,
        ``dropped_events``, ``dropped_person_years``, ``n_entry_after_horizon``
        (rows entering at or after ``horizon``: no piece).

    Raises
    ------
    NeutrostatsError
        As :func:`incidence_rates`; also breaks that are not increasing
        numbers, an unknown time scale, a missing ``age``/``date`` column,
        and ``df`` columns named ``entry``, ``exit``, ``event`` or a band
        that the result would overwrite (rename them).

    References
    ----------
    .. [1] Clayton D, Hills M. Statistical Models in Epidemiology. Oxford
       University Press 1993, chapters 6 and 22 (Lexis diagrams).
    .. [2] Carstensen B, Plummer M. Using Lexis objects for multi-state
       models in R. J Stat Softw 2011;38(6).

    Examples
    --------
    A person aged 58 at the index followed 5 years (dies), crossing 60:

    >>> import pandas as pd
    >>> d = pd.DataFrame({"age_at_index": [58.0, 70.5], "years": [5.0, 1.0], "died": [1, 0]})
    >>> s = split_follow_up(d, duration="years", event="died", breaks={"age": [0, 60, 70, 80]})
    >>> s[["age_at_index", "entry", "exit", "event", "age_band"]]
       age_at_index  entry  exit  event age_band
    0          58.0    0.0   2.0  False   [0,60)
    1          58.0    2.0   5.0   True  [60,70)
    2          70.5    0.0   1.0  False  [70,80)
    """
    fn = "split_follow_up"
    scales = _check_breaks(breaks, fn)
    df = require_dataframe(df, fn, "df", allow_empty=False)
    need = [c for s, c in (("age", age), ("period", date)) if s in scales]
    require_columns(df, need, fn, f"Name the columns with age= and date= (the scales split: {list(scales)}).")
    _refuse_overwrite(df, [*_SPLIT_NAMES, *(_BANDS[s] for s in scales)], [duration, event, entry], fn)
    work = df.reset_index(drop=True)
    rd = _rate_data(work, fn, outcome, duration, event, entry, None, horizon, covariates=need)
    late = rd.entry >= rd.exit
    if horizon is not None and late.any():
        # Rows that enter at or after the horizon have no follow-up before it: no piece.
        rd = _RateData(rd.data.loc[~late], rd.entry[~late], rd.exit[~late], rd.event[~late], rd.n_input,
                       rd.n_missing, rd.missing, rd.n_prevalent)
    origins = _origins(rd.data, scales, age, date, fn)
    row, t0, t1, ev, codes = _pieces(rd.entry, rd.exit, rd.event, origins, scales)
    cols = list(df.columns) if keep is None else list(keep)
    require_columns(df, cols, fn, "keep= names columns of df to carry to the pieces.")
    out = work[cols].take(rd.data.index.to_numpy()[row]).reset_index(drop=True)
    out["entry"], out["exit"], out["event"] = t0, t1, ev
    outside = np.zeros(row.size, dtype=bool)
    for scale, (_, labels) in scales.items():
        out[_BANDS[scale]] = pd.Categorical.from_codes(codes[scale], dtype=pd.CategoricalDtype(labels, ordered=True))
        outside |= codes[scale] < 0
    dropped = dict(dropped_pieces=0, dropped_events=0, dropped_person_years=0.0)
    if drop and outside.any():
        dropped = dict(dropped_pieces=int(outside.sum()), dropped_events=int(ev[outside].sum()),
                       dropped_person_years=float((t1 - t0)[outside].sum()))
        out = out.loc[~outside].reset_index(drop=True)
    return _attrs(out, rd, n_persons=int(rd.exit.size), n_entry_after_horizon=int(late.sum()) if horizon else 0,
                  **dropped)


def _refuse_overwrite(df, names, used, fn):
    clash = [c for c in names if c in df.columns and c not in used]
    if clash:
        raise NeutrostatsError(f"{fn}: df already has column(s) {clash}, which the result would overwrite; "
                               "rename them first (e.g. df.rename(columns={...}))")


# --- standardised incidence (mortality) ratios -------------------------------------------------


def _reference_table(reference_rates, data: pd.DataFrame, match, fn) -> tuple[list[str], pd.DataFrame]:
    ref = require_dataframe(reference_rates, fn, "reference_rates", allow_empty=False)
    require_columns(ref, ["rate"], fn, "The reference table has columns age_band, sex, period and rate "
                    "(per person-year); see neutrostats.synthetic.example_reference_rates().")
    keys = [c for c in ("age_band", "sex", "period") if c in ref.columns] if match is None else list(match)
    if not keys:
        raise NeutrostatsError(f"{fn}: reference_rates has none of the columns age_band, sex, period; name the "
                               "columns to match with match=")
    require_columns(ref, keys, fn, "match= names columns of reference_rates.")
    missing = [k for k in keys if k not in data.columns]
    if missing:
        raise NeutrostatsError(
            f"{fn}: df has no column(s) {missing} to match the reference rates on; split the follow-up first "
            "with split_follow_up(df, ..., breaks={'age': [...], 'period': [...]}) using the bands of the "
            "reference table")
    rate = numeric_values(ref["rate"], "rate", fn, "reference rate per person-year",
                          "pass rates per person-year as numbers")
    if np.isnan(rate).any() or np.any(~np.isfinite(rate) | (rate < 0)):
        raise NeutrostatsError(f"{fn}: reference_rates['rate'] must be finite numbers >= 0 (per person-year), "
                               f"found {distinct_examples(ref['rate'][~(rate >= 0) | ~np.isfinite(rate)], 3)}")
    table = pd.DataFrame({k: ref[k].astype(str).to_numpy() for k in keys})
    if ref[keys].isna().any().any():
        raise NeutrostatsError(f"{fn}: reference_rates has missing values in {keys}; every row needs its bands")
    dup = table.duplicated(keep=False)
    if dup.any():
        raise NeutrostatsError(f"{fn}: reference_rates has {int(dup.sum())} rows sharing their {keys}, e.g. "
                               f"{table[dup].iloc[0].to_dict()}; give one rate per combination")
    return keys, table.assign(rate=rate)


def _expected(data: pd.DataFrame, pt: np.ndarray, keys, table, fn) -> np.ndarray:
    """Each row's expected count: its person-time times the reference rate of its bands."""
    bad = data[keys].isna().any(axis=1).to_numpy()
    if bad.any():
        raise NeutrostatsError(
            f"{fn}: {int(bad.sum())} rows have no band in {keys} (follow-up outside the breaks of "
            f"split_follow_up, {float(pt[bad].sum()):g} person-years); split with breaks that cover all "
            "follow-up (e.g. up to float('inf')) so that no expected person-time is lost")
    # Codes per key column (a Categorical's own, else factorized), then one code per combination:
    # only the few distinct combinations are turned into text and looked up.
    codes, labels = [], []
    for c in keys:
        col = data[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            cd, lv = col.cat.codes.to_numpy(), [str(v) for v in col.cat.categories]
        else:
            cd, u = pd.factorize(col)
            lv = [str(v) for v in u]
        codes.append(np.asarray(cd, dtype=np.int64))
        labels.append(lv)
    dims = tuple(max(len(lv), 1) for lv in labels)
    uniq, combo = np.unique(np.ravel_multi_index(codes, dims), return_inverse=True)
    combos = list(zip(*[[labels[i][j] for j in part] for i, part in enumerate(np.unravel_index(uniq, dims))]))
    lookup = {tuple(r): i for i, r in enumerate(table[keys].itertuples(index=False, name=None))}
    hit = np.array([lookup.get(tuple(cmb), -1) for cmb in combos], dtype=np.int64)
    if (hit < 0).any():
        absent = [dict(zip(keys, cmb)) for cmb, h in zip(combos, hit) if h < 0]
        py = float(pt[np.isin(combo, np.flatnonzero(hit < 0))].sum())
        raise NeutrostatsError(
            f"{fn}: {len(absent)} combination(s) of {keys} in df have no reference rate ({py:g} person-years), "
            f"e.g. {absent[:5]}; add them to reference_rates (or split with its bands)")
    return pt * table["rate"].to_numpy()[hit[combo]]


def standardized_incidence_ratio(
    df: pd.DataFrame,
    reference_rates: pd.DataFrame,
    outcome: str | None = None,
    *,
    duration: str | None = None,
    event: str | None = None,
    entry: str | None = None,
    by: str | None = "tier",
    match: Sequence[str] | None = None,
    conf_level: float = 0.95,
    method: str = "exact",
) -> pd.DataFrame:
    """Standardised incidence (or mortality) ratio, SIR/SMR, against reference rates, by group and overall.

    Observed events ``O`` over expected ``E = sum(person-years x reference
    rate)``, where each piece of follow-up takes the rate of its age band,
    sex and calendar period (indirect standardisation). ``O`` is taken as
    Poisson with mean ``SIR x E`` (``E`` fixed).

    Parameters
    ----------
    df : pandas.DataFrame
        Split follow-up (:func:`split_follow_up`) with the band columns of
        the reference table. Without ``outcome``, ``duration`` and
        ``event``, the split columns ``exit``, ``event``, ``entry`` are used.
    reference_rates : pandas.DataFrame
        One row per combination of ``age_band`` (labels as
        :func:`split_follow_up` writes them, ``"[60,70)"``), ``sex`` (the
        values of the cohort's ``sex``), ``period`` (``"[2000,2010)"``)
        and ``rate`` (events per person-year, >= 0); a table may leave out
        ``sex`` or ``period`` (then it is not matched on). Keys compare as
        text. See :func:`neutrostats.synthetic.example_reference_rates`.
    outcome, duration, event, entry
        As :func:`incidence_rates`.
    by : str or None, default "tier"
        Groups; an ``"all"`` row follows them (the only row with None).
    match : list of str, optional
        Columns to match on (default those of ``age_band, sex, period``
        in ``reference_rates``).
    conf_level : float, default 0.95
    method : {"exact", "byar"}, default "exact"
        ``"exact"``: Garwood limits for ``O`` divided by ``E`` =
        ``poisson.test(O, E)`` (and ``popEpi::sir(conf.type =
        "univariate")``, Breslow & Day); ``"byar"``: Byar's approximation =
        ``epiR::epi.smr(O, E, method = "byar")``. The p-value is always
        the exact two-sided ``poisson.test(O, E)$p.value``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SIR_COLUMNS`: ``group`` (Categorical: the groups,
        then ``"all"``), ``n`` (rows), ``n_event`` (observed), ``person_years``,
        ``expected``, ``estimate`` (O/E), ``conf_low``, ``conf_high``,
        ``p_value``, ``method``, ``estimable`` (False when E = 0), ``note``.

    Raises
    ------
    NeutrostatsError
        Band columns missing from ``df`` (split first), a reference table
        without ``rate`` or with negative, missing or duplicated rates,
        rows with follow-up outside the bands, combinations of bands
        without a reference rate (named, with their person-years), and the
        errors of :func:`incidence_rates`.

    References
    ----------
    .. [1] Breslow NE, Day NE. Statistical Methods in Cancer Research, vol.
       II. IARC 1987, sections 2.2-2.4 (SMR, exact and Byar limits).
    .. [2] Ulm K. A simple method to calculate the confidence interval of a
       standardized mortality ratio. Am J Epidemiol 1990;131:373-375.

    Examples
    --------
    >>> import pandas as pd
    >>> from neutrostats.synthetic import example_reference_rates
    >>> ref = example_reference_rates()
    >>> d = pd.DataFrame({"age_at_index": [62.0, 75.0, 81.0], "sex": ["F", "M", "F"], "years": [4.0, 2.5, 1.0],
    ...                   "died": [0, 1, 1], "index_date": pd.to_datetime(["2005-03-01", "2006-07-01", "2012-01-01"])})
    >>> s = split_follow_up(d, duration="years", event="died", breaks=ref.attrs["breaks"])
    >>> r = standardized_incidence_ratio(s, ref, by=None)
    >>> r[["group", "n_event", "expected", "estimate"]].round(4)
      group  n_event  expected  estimate
    0   all        2    0.0874    22.871

    By hand: 4 years at the [60,70) women's rate of 2000-2010 (0.005018),
    2.5 years at the [70,80) men's (0.01761) and 1 year at the [80,90)
    women's of 2010-2020 (0.02335): E = 0.020072 + 0.044025 + 0.02335 =
    0.087447, SIR = 2 / E = 22.871.
    """
    fn = "standardized_incidence_ratio"
    require_choice(method, _SIR_METHODS, fn, "method")
    level = require_conf_level(conf_level, fn)
    if outcome is None and duration is None and event is None:
        require_columns(df, ["exit", "event"], fn, "Pass split follow-up (split_follow_up) or duration=/event=.")
        duration, event = "exit", "event"
        entry = "entry" if entry is None and "entry" in df.columns else entry
    work = require_dataframe(df, fn, "df", allow_empty=False).reset_index(drop=True)
    rd = _rate_data(work, fn, outcome, duration, event, entry, by, None)
    full = work.loc[rd.data.index]
    keys, table = _reference_table(reference_rates, full, match, fn)
    expected = _expected(full, rd.person_time, keys, table, fn)
    groups, codes = _groups(rd.data, by, fn)
    k = len(groups) if by is not None else 0
    n, d, pt = _sums(rd, codes, k) if k else (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    e = np.bincount(codes, weights=expected, minlength=k) if k else np.zeros(0)
    n = np.append(n, rd.exit.size)
    d = np.append(d, int(rd.event.sum()))
    pt = np.append(pt, rd.person_time.sum())
    e = np.append(e, expected.sum())
    lo, hi = _count_interval(d, level, method)
    has = e > 0
    safe = np.where(has, e, 1.0)
    cats = [*groups.categories, _ALL] if k else [_ALL]
    out = pd.DataFrame({
        "group": pd.Categorical.from_codes(np.arange(len(cats)),
                                           dtype=pd.CategoricalDtype(cats, ordered=bool(k and groups.ordered))),
        "n": n.astype(np.int64), "n_event": d.astype(np.int64), "person_years": pt, "expected": e,
        "estimate": np.where(has, d / safe, np.nan), "conf_low": np.where(has, lo / safe, np.nan),
        "conf_high": np.where(has, hi / safe, np.nan),
        "p_value": [_poisson_test_p(int(x), float(m)) if m > 0 else np.nan for x, m in zip(d, e)],
        "method": method, "estimable": has,
        "note": np.where(has, "", "no expected events (no person-time or zero reference rates)").astype(object),
    }, columns=SIR_COLUMNS)
    return _attrs(out, rd, match=keys)


#: Short alias of :func:`standardized_incidence_ratio` (also for SMRs: deaths against population mortality).
sir = standardized_incidence_ratio


# --- Poisson regression ------------------------------------------------------------------------


@dataclass
class _Design:
    X: np.ndarray  # intercept first
    names: list[str]  # names of X's columns after the intercept
    tier_cols: dict[int, int]  # group code -> column of X
    rows: list[dict]  # the group rows of the result
    keep: np.ndarray  # rows in the fit (not in a group without events)
    dropped: list


def _group_design(codes, groups, r, y, pt, by, fn) -> _Design:
    k = len(groups)
    n_t, d_t = np.bincount(codes, minlength=k), np.bincount(codes, weights=y, minlength=k)
    pt_t = np.bincount(codes, weights=pt, minlength=k)
    cats = list(groups.categories)
    if n_t[r] == 0 or d_t[r] == 0:
        raise NeutrostatsError(
            f"{fn}: the reference group {cats[r]!r} of {by!r} has {'no rows' if n_t[r] == 0 else 'no events'}, so "
            "no rate ratio against it is finite; choose a reference with events (reference=) or merge groups")
    out = _Design(np.empty(0), [], {}, [], np.ones(codes.size, dtype=bool), [])
    cols: list[np.ndarray] = []
    for i, c in enumerate(cats):
        out.rows.append(dict(term=c, group=i, is_reference=i == r, n=int(n_t[i]), n_event=int(d_t[i]),
                             person_years=float(pt_t[i])))
        if i == r or n_t[i] == 0:
            continue
        if d_t[i] == 0:
            # The MLE of its rate ratio is 0; without its rows the other estimates are that limit.
            out.dropped.append(c)
            out.keep &= codes != i
            continue
        out.tier_cols[i] = len(cols)
        cols.append((codes == i).astype(float))
        out.names.append(f"{by}[{c}]")
    out.X = np.column_stack(cols) if cols else np.empty((codes.size, 0))
    return out


def _theta_ml(y: np.ndarray, mu: np.ndarray) -> float:
    """Maximum-likelihood negative binomial shape ``theta`` given the means (R's ``MASS::theta.ml``); inf if none."""
    from scipy.optimize import brentq
    from scipy.special import digamma

    def score(log_theta: float) -> float:
        th = np.exp(log_theta)
        # log(th) + 1 - log(th + mu) - (y + th) / (mu + th), written without cancellation for large theta
        return float(np.sum(digamma(th + y) - digamma(th) - np.log1p(mu / th) + (mu - y) / (mu + th)))

    lo, hi = np.log(1e-8), np.log(1e6)
    if score(hi) > 0:
        return np.inf  # no overdispersion: the likelihood grows towards the Poisson limit
    return float(np.exp(brentq(score, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500)))


@dataclass
class _Fit:
    coef: np.ndarray
    mu: np.ndarray
    bread: np.ndarray  # (X' W X)^-1 at the estimate: the model-based covariance
    iterations: int


def _irls(y, X, offset, theta=None, start=None, max_iter=100, tol=1e-12):
    """Poisson (``theta`` None) or NB2 regression with a log link by Fisher scoring; None if not converged.

    The working weights are ``mu`` (Poisson) or ``mu / (1 + mu / theta)``; converged when no
    coefficient moves by more than ``tol`` (relative to max(1, |coef|)). The covariance is the
    inverse information at the estimate (R's ``glm`` takes it from the last iteration's start).
    """
    from scipy.linalg import cho_factor, cho_solve

    beta = np.zeros(X.shape[1]) if start is None else np.array(start, dtype=float)
    if start is None:
        # Start at the crude rate, as glm's mustart = y + 0.1 does in spirit.
        beta[0] = np.log(max(y.sum(), 0.5) / np.exp(offset).sum())
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for it in range(1, max_iter + 1):
            eta = X @ beta + offset
            mu = np.exp(eta)
            w = mu if theta is None else mu / (1 + mu / theta)
            z = eta - offset + (y - mu) / mu
            try:
                c = cho_factor((X * w[:, None]).T @ X)
            except np.linalg.LinAlgError:
                return None
            new = cho_solve(c, X.T @ (w * z))
            if not np.all(np.isfinite(new)):
                return None
            done = np.all(np.abs(new - beta) <= tol * np.maximum(1.0, np.abs(new)))
            beta = new
            if done:
                mu = np.exp(X @ beta + offset)
                w = mu if theta is None else mu / (1 + mu / theta)
                info = (X * w[:, None]).T @ X
                return _Fit(beta, mu, np.linalg.inv(info), it)
    return None


def _fit_rates(y, X, offset, variance, fn):
    """The fit and, for the negative binomial, theta (alternating with the fit, as ``MASS::glm.nb``)."""
    res = _irls(y, X, offset)
    theta = None
    if res is not None and variance == "negative_binomial":
        theta = _theta_ml(y, res.mu)
        for _ in range(200):
            if not np.isfinite(theta):
                warnings.warn(f"{fn}: no overdispersion (the negative binomial theta is infinite); the estimates "
                              "are those of the Poisson model", PoissonConvergenceWarning, stacklevel=3)
                break
            res = _irls(y, X, offset, theta, start=res.coef)
            if res is None:
                break
            new = _theta_ml(y, res.mu)
            done = abs(new - theta) <= 1e-11 * theta
            theta = new
            if done:
                res = _irls(y, X, offset, theta, start=res.coef)
                break
        else:
            warnings.warn(f"{fn}: theta of the negative binomial did not converge in 200 alternations",
                          PoissonConvergenceWarning, stacklevel=3)
    if res is None:
        warnings.warn(f"{fn}: the regression did not converge (Fisher scoring, 100 iterations); the estimates are "
                      "not reported. Check for covariates that separate the events or merge sparse groups",
                      PoissonConvergenceWarning, stacklevel=3)
    return res, theta


def _sandwich(X, resid, bread, cluster):
    """Robust variance ``B (U'U) B`` of a Poisson fit: HC0, or clustered with ``G / (G - 1)``."""
    U = X * resid[:, None]
    adj = 1.0
    if cluster is not None:
        _, inv = np.unique(cluster, return_inverse=True)
        g = int(inv.max()) + 1
        Ug = np.zeros((g, X.shape[1]))
        np.add.at(Ug, inv, U)
        U, adj = Ug, g / (g - 1) if g > 1 else np.nan
    return adj * bread @ (U.T @ U) @ bread


def poisson_regression(
    df: pd.DataFrame,
    outcome: str | None = None,
    *,
    duration: str | None = None,
    event: str | None = None,
    entry: str | None = None,
    by: str | None = "tier",
    adjust: Sequence[str] | None = None,
    reference: Any = None,
    variance: str = "model",
    cluster: str | None = None,
    categorical: Sequence[str] | None = None,
    horizon: float | None = None,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Adjusted rate ratios by Poisson regression with a log person-time offset.

    The model is ``log E[events] = log(person-time) + b0 + tier + covariates``,
    R's ``glm(event ~ tier + ..., family = poisson, offset = log(py))`` on
    one row per person or per piece of split follow-up (the likelihood of
    events in pieces is that of the aggregated counts). Fitted by Fisher
    scoring (IRLS) to a relative change of 1e-12 in every coefficient; the
    model-based covariance is the inverse information at the estimate.

    Parameters
    ----------
    df, outcome, duration, event, entry, horizon, conf_level
        As :func:`incidence_rates`. Rows without person-time and without an
        event add nothing and are left out (``attrs["n_zero_time"]``); an
        event without person-time raises.
    by : str or None, default "tier"
        Grouping column entered as one indicator per group but the
        reference (its rows come first, reference kept, estimate 1).
    adjust : list of str, optional
        Covariates, entered as in :func:`~neutrostats.stats.cox.cox_hazard_ratios`
        (numbers linearly, booleans as ``col[True]``, categories as one
        indicator per level but the first), e.g. ``["age_at_index", "sex"]``
        or, on split data, ``["age_band", "sex"]``.
    reference : optional
        Reference group, or a mapping ``{column: level}`` (also for
        categorical covariates), as ``cox_hazard_ratios``.
    variance : {"model", "robust", "negative_binomial", "quasi"}, default "model"
        Standard errors: ``"model"`` (Poisson, inverse Fisher information =
        ``summary(glm(...))``); ``"robust"`` (sandwich, HC0 =
        ``sandwich::vcovHC(fit, type = "HC0")``; with ``cluster=``, summed by
        cluster with the factor G/(G-1) = ``sandwich::vcovCL(fit, cluster =
        ~id, type = "HC0")``, whose default ``type = "HC1"`` multiplies by
        (n-1)/(n-k) in addition); ``"negative_binomial"`` (NB2 with the
        shape theta estimated by maximum likelihood = ``MASS::glm.nb``,
        ``attrs["theta"]``); ``"quasi"`` (Poisson estimates, standard errors
        times sqrt of the Pearson dispersion, t-based p-values and intervals
        = ``glm(family = quasipoisson)``, ``attrs["dispersion"]``).
    cluster : str, optional
        Column identifying the person of each row (e.g. ``person_id`` on
        split pieces): cluster-robust variance; needs ``variance="robust"``.
    categorical : list of str, optional
        Columns of ``adjust`` to enter as factors whatever their values.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`POISSON_COLUMNS`: group rows first (``term`` and
        ``group`` the group, ``is_reference``, ``n`` rows, ``n_event``,
        ``person_years`` of the group), then covariate rows (``term``
        ``age_at_index``, ``sex[M]``; ``group`` None; counts of the whole
        fit). ``estimate`` is the rate ratio ``exp(coef)``, ``std_error``
        that of the coefficient, ``conf_low``/``conf_high`` Wald (t for
        ``"quasi"``), ``p_value`` Wald. A group without events is not
        estimable (its rate ratio tends to 0; its rows leave the fit).
        ``attrs``: ``variance``, ``theta``, ``dispersion``, ``n_clusters``,
        ``n_zero_time``, ``n_missing``, ``missing``, ``n_prevalent``.

    Raises
    ------
    NeutrostatsError
        As :func:`incidence_rates`; also a reference group without rows or
        events, an event on a row without person-time, ``cluster`` without
        ``variance="robust"``, a constant covariate, covariates mixing
        numbers and text.

    Warns
    -----
    SeparationWarning
        A group without events (its rate ratio has no finite estimate).
    PoissonConvergenceWarning
        IRLS or the negative binomial theta did not converge (or theta is
        infinite: no overdispersion).

    References
    ----------
    .. [1] Frome EL. The analysis of rates using Poisson regression models.
       Biometrics 1983;39:665-674.
    .. [2] Zeileis A. Object-oriented computation of sandwich estimators.
       J Stat Softw 2006;16(9).
    .. [3] Venables WN, Ripley BD. Modern Applied Statistics with S, 4th ed.
       Springer 2002, section 7.4 (negative binomial).

    Examples
    --------
    Without covariates the rate ratio is the crude one, (4/400) / (10/2000) = 2:

    >>> import pandas as pd
    >>> d = pd.DataFrame({"py": [100.0] * 4 + [200.0] * 10, "died": 1,
    ...                   "g": pd.Categorical(["b"] * 4 + ["a"] * 10, categories=["a", "b"])})
    >>> r = poisson_regression(d, duration="py", event="died", by="g")
    >>> r[["term", "n_event", "person_years", "estimate", "std_error"]].round(4)
      term  n_event  person_years  estimate  std_error
    0    a       10        2000.0       1.0        NaN
    1    b        4         400.0       2.0     0.5916
    """
    fn = "poisson_regression"
    require_choice(variance, _VARIANCES, fn, "variance")
    level = require_conf_level(conf_level, fn)
    adjust = [] if adjust is None else ([adjust] if isinstance(adjust, str) else list(adjust))
    if cluster is not None and variance != "robust":
        raise NeutrostatsError(f"{fn}: cluster={cluster!r} gives cluster-robust standard errors; pass "
                               f"variance='robust' with it (found variance={variance!r})")
    if by is None and not adjust:
        raise NeutrostatsError(f"{fn}: nothing to estimate; give by= (e.g. 'tier') and/or adjust= covariates")
    if by is not None and by in adjust:
        raise NeutrostatsError(f"{fn}: {by!r} is the grouping column; leave it out of adjust=")
    rd = _rate_data(df, fn, outcome, duration, event, entry, by, horizon,
                    covariates=[*adjust, *([cluster] if cluster is not None else [])])
    kinds = covariate_kinds(rd.data, adjust, fn, categorical=categorical)
    ref_group, levels_ref = split_reference(reference, fn, group=by, covariates=adjust, kinds=kinds)
    y, pt = rd.event.astype(float), rd.person_time
    zero = pt <= 0
    if np.any(zero & rd.event):
        raise NeutrostatsError(f"{fn}: {int((zero & rd.event).sum())} rows have an event but no person-time "
                               "(duration = entry); an event needs time at risk: check those rows")
    data, y, pt = rd.data.loc[~zero], y[~zero], pt[~zero]
    groups, codes = _groups(data, by, fn)
    des = _group_design(codes, groups, _reference_code(groups, ref_group, by, fn), y, pt, by, fn) \
        if by is not None else _Design(np.empty((len(data), 0)), [], {}, [], np.ones(len(data), bool), [])
    cov_cols, cov_names, cov_terms = _covariate_terms(data, adjust, kinds, levels_ref, fn, 1 + des.X.shape[1])
    if des.dropped:
        warnings.warn(f"{fn}: group(s) {des.dropped} of {by!r} have no events, so their rate ratio has no finite "
                      "estimate; reported as not estimable, and the other estimates are the limit (those rows "
                      "leave the fit). Merge sparse groups.", SeparationWarning, stacklevel=2)
    X = np.column_stack([np.ones(len(data)), des.X, *cov_cols])
    names = [*des.names, *cov_names]
    if X.shape[1] == 1:
        raise NeutrostatsError(f"{fn}: no group besides the reference has events, and no covariates; nothing "
                               "to estimate")
    keep, live = _levels_without_events(X, y, des.keep, names, cov_terms, kinds, fn)
    X = X[keep][:, live]
    _check_rank(X, [n for n, ok in zip(names, live[1:]) if ok], fn)
    clus = None if cluster is None else data[cluster].to_numpy()[keep]
    res, theta = _fit_rates(y[keep], X, np.log(pt[keep]), variance, fn)
    est = _poisson_estimates(res, X, y[keep], variance, clus, level)
    full = [np.full(len(names), np.nan) for _ in range(5)]
    for f, e in zip(full, est[:5]):
        f[live[1:]] = e
    coef, se, p, lo, hi = full
    out = _poisson_table(des, groups, names, coef, se, p, lo, hi, int(y.sum()), len(data), float(pt.sum()))
    return _attrs(out, rd, variance=variance, theta=theta, dispersion=est[5],
                  n_clusters=None if clus is None else int(pd.unique(clus).size), n_zero_time=int(zero.sum()))


def _levels_without_events(X, y, keep, names, terms, kinds, fn):
    """Rows and columns of the fit without the levels of categorical covariates that have no events.

    A level without events has a rate ratio of 0 (an MLE at -inf): its rows leave the fit (the
    other estimates are that limit) and its term is not estimable. A reference level without
    events would make every other level's ratio infinite: refused.
    """
    live = np.ones(X.shape[1], dtype=bool)
    keep = keep.copy()
    empty = []
    for cov, cols in terms.items():
        if kinds[cov] == "numeric":
            continue
        ind = X[:, cols] > 0
        if not np.any(y[keep & ~ind.any(axis=1)] > 0):
            raise NeutrostatsError(
                f"{fn}: the reference level of {cov!r} has no events, so every other level's rate ratio is "
                f"infinite; choose a reference level with events, e.g. reference={{{cov!r}: ...}}, or merge levels")
        for j, c in enumerate(cols):
            if not np.any(y[keep & ind[:, j]] > 0):
                empty.append(names[c - 1])
                live[c] = False
                keep &= ~ind[:, j]
    if empty:
        warnings.warn(f"{fn}: covariate level(s) {empty} have no events, so their rate ratio has no finite estimate "
                      "(it tends to 0); reported as not estimable, and the other estimates are the limit (those rows "
                      "leave the fit). Merge sparse levels.", SeparationWarning, stacklevel=3)
    return keep, live


def _check_rank(X, names, fn):
    # The rank of the scaled cross-product (p x p) is that of X, and cheap for a million rows.
    g = X.T @ X
    d = np.sqrt(np.diag(g))
    rank = np.linalg.matrix_rank(g / np.outer(d, d), tol=1e-10) if np.all(d > 0) else 0
    if rank < X.shape[1]:
        const = [names[j - 1] for j in range(1, X.shape[1]) if np.ptp(X[:, j]) == 0]
        raise NeutrostatsError(
            f"{fn}: the model's columns are collinear (rank {rank} of {X.shape[1]} with the intercept)"
            + (f"; constant: {const}" if const else "") + "; drop or merge covariates of adjust=")


def _poisson_estimates(res, X, y, variance, cluster, level):
    """Coefficients (without the intercept), standard errors, p-values and limits on the log scale."""
    k = X.shape[1] - 1
    if res is None:
        nan = np.full(k, np.nan)
        return nan, nan, nan, nan, nan, None
    coef, cov, dispersion = res.coef, res.bread, None
    if variance == "quasi":
        # Pearson chi-square over the residual degrees of freedom (summary.glm's dispersion)
        dispersion = float(np.sum((y - res.mu) ** 2 / res.mu) / (X.shape[0] - X.shape[1]))
        cov = cov * dispersion
    elif variance == "robust":
        cov = _sandwich(X, y - res.mu, res.bread, cluster)
    se = np.sqrt(np.diag(cov))
    if variance == "quasi":
        dist: Any = stats.t(df=X.shape[0] - X.shape[1])
    else:
        dist = stats.norm()
    q = dist.ppf(0.5 + level / 2)
    zval = coef / se
    p = 2 * dist.sf(np.abs(zval))
    return coef[1:], se[1:], p[1:], (coef - q * se)[1:], (coef + q * se)[1:], dispersion


def _poisson_table(des, groups, names, coef, se, p, lo, hi, n_event, n, py) -> pd.DataFrame:
    def est(j):
        if np.isnan(coef[j]):
            return dict(nan, estimable=False, note=("no events at this level: the rate ratio tends to 0"
                                                    if np.isfinite(coef).any() else "the regression did not converge"))
        return dict(estimate=float(np.exp(coef[j])), std_error=float(se[j]), conf_low=float(np.exp(lo[j])),
                    conf_high=float(np.exp(hi[j])), p_value=float(p[j]), estimable=True, note="")

    nan = dict(estimate=np.nan, std_error=np.nan, conf_low=np.nan, conf_high=np.nan, p_value=np.nan)
    rows = []
    for r in des.rows:
        row = dict(r)
        if r["is_reference"]:
            row.update(nan, estimate=1.0, estimable=True, note="")
        elif r["n"] == 0:
            row.update(nan, estimable=False, note="no rows in this group")
        elif r["group"] not in des.tier_cols:
            row.update(nan, estimable=False, note="no events in this group: the rate ratio tends to 0")
        else:
            row.update(est(des.tier_cols[r["group"]]))
        rows.append(row)
    for j in range(len(des.tier_cols), len(names)):
        rows.append(dict(term=names[j], group=None, is_reference=False, n=n, n_event=n_event, person_years=py,
                         **est(j)))
    out = pd.DataFrame(rows, columns=POISSON_COLUMNS)
    if des.rows:
        g = [None if pd.isna(v) else int(v) for v in out["group"]]
        out["group"] = pd.Categorical([None if v is None else groups.categories[v] for v in g], dtype=groups.dtype)
        out["term"] = [term if v is None else str(groups.categories[v]) for v, term in zip(g, out["term"])]
    return out.astype({"term": object, "is_reference": bool, "n": np.int64, "n_event": np.int64,
                       "estimable": bool, "note": object})
