"""Kaplan-Meier survival, survival at horizons, restricted mean, log-rank.

Every function takes the cohort table of :func:`neutrostats.build_cohort`
(``death_time``, ``death``, ``tier``) or any DataFrame with duration and
event columns, and returns a tidy table or a frozen result. Delayed entry
(left truncation) is supported through an ``entry`` column: a person is at
risk at time t when ``entry < t <= duration``, as in R's
``Surv(entry, time, event)``.

Variances are Greenwood's; intervals are those of R's ``survfit``
(``conf_type`` "log-log", "log" or "plain"); log-rank tests are those of R's
``survdiff``.

Examples
--------
>>> import pandas as pd
>>> from neutrostats.stats.survival import kaplan_meier
>>> df = pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0]})
>>> kaplan_meier(df, "t", "e")[["time", "n_risk", "n_event", "estimate"]]
   time  n_risk  n_event  estimate
0   0.0       5        0       1.0
1   1.0       5        1       0.8
2   2.0       4        1       0.6
3   3.0       2        1       0.3
4   4.0       1        0       0.3
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.distributions import chi2, norm
from neutrostats.stats.tte import check_tte, with_missing
from neutrostats.core.validate import require_choice, require_columns, require_conf_level, require_dataframe, require_positive
from neutrostats.disclosure.rules import suppress_counts
from neutrostats.errors import CoxConvergenceWarning, NeutrostatsError
from neutrostats.stats.cox import cox_fit

# scipy is imported at the first call that needs it, not with neutrostats (neutrostats.core.lazy).

__all__ = [
    "KM_COLUMNS",
    "kaplan_meier",
    "survival_at",
    "restricted_mean_survival",
    "LogrankTest",
    "logrank_test",
    "at_risk_table",
]

#: Columns of :func:`kaplan_meier`, in order.
KM_COLUMNS = ["group", "time", "n_risk", "n_event", "n_censor", "estimate", "std_error", "conf_low", "conf_high"]
CONF_TYPES = ("log-log", "log", "plain")


def _group_index(chk, group):
    """Each group's rows, in output order, with the group values and the group dtype.

    The order is the category order for a Categorical, else that of the
    sorted values (by type name, then value), taken from the codes: turning
    a Categorical of a million rows into an array of Python objects and
    comparing it with each group cost more than the whole Kaplan-Meier. The
    rows of a group are a boolean mask or ascending indices, so they keep the
    input order.
    """
    if not group:
        return [slice(None)], ["all"], None
    g = chk.data[group]
    if isinstance(g.dtype, pd.CategoricalDtype):
        cats = g.dtype.categories
        rows = _rows_by_code(g.cat.codes.to_numpy(), len(cats))  # complete cases: no code -1
        present = [(c, r) for c, r in zip(cats, rows) if r is not None]
        return [r for _, r in present], [c for c, _ in present], g.dtype
    codes, groups = _sorted_codes(g)
    return _rows_by_code(codes, len(groups)), groups, None


def _sorted_codes(g):
    """Codes 0.. of a column that is not a Categorical, numbered in the order of the sorted values (by type
    name, then value) and those values."""
    codes, uniques = pd.factorize(g.to_numpy())
    order = sorted(range(len(uniques)), key=lambda i: (str(type(uniques[i])), uniques[i]))
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return rank[codes], [uniques[i] for i in order]


def _group_codes(chk, group, keep=None):
    """Each row's group as a position in output order (rows ``keep`` only, if given), the groups, the dtype.

    The groups are those present (in the rows kept), ordered as by :func:`_group_index`.
    """
    g = chk.data[group]
    if isinstance(g.dtype, pd.CategoricalDtype):
        codes, groups, dtype = g.cat.codes.to_numpy(), list(g.dtype.categories), g.dtype
    else:
        (codes, groups), dtype = _sorted_codes(g), None
    if keep is not None:
        codes = codes[keep]
    present = np.bincount(codes, minlength=len(groups)) > 0
    if present.all():
        return codes.astype(np.intp), groups, dtype
    pos = np.cumsum(present) - 1
    return pos[codes], [v for v, p in zip(groups, present) if p], dtype


def _rows_by_code(codes, k):
    """The rows of each code 0..k-1 (None where there are none), in the input order.

    A boolean mask per code for a few codes; one stable sort of the codes (a
    radix sort for small integers) and its slices when there are many.
    """
    if k <= 16:
        masks = [codes == j for j in range(k)]
        return [m if m.any() else None for m in masks]
    small = codes.astype(np.int16) if k < np.iinfo(np.int16).max else codes
    order = np.argsort(small, kind="stable")
    counts = np.bincount(codes, minlength=k)
    parts = np.split(order, np.cumsum(counts)[:-1])
    return [p if c else None for p, c in zip(parts, counts)]


def _exit_counts(t, e):
    """Distinct times (sorted) of one group, with the number leaving and the number of events at each.

    One sort of (time, event) pairs packed into one integer: the bit pattern
    of a double >= 0 orders as the double, and shifted left it leaves the
    lowest bit for the event, so a run of equal times ends with its events.
    The counts are exact integers, the same as ``np.unique(t,
    return_inverse=True)`` and ``np.bincount`` give, at a fifth of the cost.
    """
    # The shift drops the sign bit, so -0.0 (a duration >= 0 for check_tte) is the key of 0.0.
    key = np.ascontiguousarray(t, dtype=np.float64).view(np.uint64) << np.uint64(1)
    key |= e
    key.sort()
    tbits = key >> np.uint64(1)
    new = np.empty(key.size, dtype=bool)
    new[:1] = True
    np.not_equal(tbits[1:], tbits[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], key.size)
    first_event = np.searchsorted(key, (tbits[starts] << np.uint64(1)) | np.uint64(1), side="left")
    return tbits[starts].view(np.float64), ends - starts, ends - first_event


def _km_one(t, e, s, w=None):
    """Kaplan-Meier of one group at its distinct times (sorted); ``w``: case weights (None: all 1)."""
    if w is None:
        times, n_exit, n_event = _exit_counts(t, e)
        n_exit, n_event = n_exit.astype(float), n_event.astype(float)
    else:
        # Weighted sums in the input order (as before), so the last bits do not move.
        times, inv = np.unique(t, return_inverse=True)
        n_event = np.bincount(inv, weights=e * w, minlength=times.size)
        n_exit = np.bincount(inv, weights=w, minlength=times.size)
    n_censor = n_exit - n_event
    # At risk at t: exits at or after t, minus those entering at or after t.
    at_or_after = np.cumsum(n_exit[::-1])[::-1]
    if s is not None:
        if w is None:
            entered_late = s.size - np.searchsorted(np.sort(s), times, side="left")
        else:
            o = np.argsort(s, kind="stable")
            cw = np.concatenate([[0.0], np.cumsum(w[o])])
            entered_late = cw[-1] - cw[np.searchsorted(s[o], times, side="left")]
        n_risk = at_or_after - entered_late
    else:
        n_risk = at_or_after
    if w is not None:
        # Weighted sums taken in different orders differ by rounding: where
        # everyone at risk has the event, make it exact (S drops to 0).
        full = (n_event > 0) & (n_event >= n_risk * (1 - 1e-12))
        n_event = np.where(full, n_risk, n_event)
        n_censor = np.where(full, 0.0, n_censor)
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(n_risk > 0, n_event / n_risk, 0.0)
        surv = np.cumprod(1.0 - hazard)
        # Greenwood: var(log S) = sum d / (n (n - d)); infinite once all at risk die.
        g_terms = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
        var_log = np.cumsum(g_terms)
    return times, n_risk, n_event, n_censor, surv, var_log


def _ci(surv, var_log, level, conf_type):
    """Confidence limits as R's survfit (survival 3.x)."""
    z = norm.ppf(0.5 + level / 2)
    se_log = np.sqrt(var_log)
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "plain":
            se = surv * se_log
            lo, hi = np.clip(surv - z * se, 0, 1), np.clip(surv + z * se, 0, 1)
        elif conf_type == "log":
            lo, hi = surv * np.exp(-z * se_log), np.minimum(surv * np.exp(z * se_log), 1.0)
        else:
            log_s = np.log(surv)
            lo = np.exp(-np.exp(np.log(-log_s) - z * se_log / log_s))
            hi = np.exp(-np.exp(np.log(-log_s) + z * se_log / log_s))
        # survfit leaves no interval where S is 0, and where S is 1 (nothing
        # has happened yet) the interval is the point itself.
        zero = surv == 0
        lo[zero], hi[zero] = np.nan, np.nan
        one = surv == 1
        lo[one], hi[one] = 1.0, 1.0
        bad = ~np.isfinite(se_log)
        lo[bad & ~zero], hi[bad & ~zero] = np.nan, np.nan
    return lo, hi


def kaplan_meier(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str | None = None,
    *,
    entry: str | None = None,
    conf_level: float = 0.95,
    conf_type: str = "log-log",
    weights: str | None = None,
) -> pd.DataFrame:
    """Kaplan-Meier survival curves with Greenwood variance.

    Parameters
    ----------
    df : pandas.DataFrame
    duration : str
        Time to the event or censoring (e.g. ``"death_time"``, years).
    event : str
        0/1 or boolean: 1 = event.
    group : str, optional
        Column to estimate a curve per value of (e.g. ``"tier"``); a
        Categorical keeps its category order.
    entry : str, optional
        Delayed-entry time (left truncation).
    conf_level : float, default 0.95
    conf_type : {"log-log", "log", "plain"}, default "log-log"
        Interval on the complementary log-log, log or plain scale, computed
        as R's ``survfit`` does (R's own default is "log").
    weights : str, optional
        Column of case weights (finite numbers >= 0, e.g. inverse-probability
        weights), as R's ``survfit(..., weights = w)``: every sum over
        persons (at risk, events, censored) is a sum of weights, so an
        integer weight k gives exactly the result of repeating the row k
        times. A missing weight leaves the row out (complete cases). The
        standard error is Greenwood's formula on the weighted counts, which
        is R's ``survfit(..., robust = FALSE)``; R's default for
        non-integer weights is the robust (infinitesimal-jackknife) one.

    Returns
    -------
    pandas.DataFrame
        :data:`KM_COLUMNS`, one row per distinct time per group plus a row at
        time 0: ``group`` ("all" without ``group``), ``time``, ``n_risk``,
        ``n_event``, ``n_censor``, ``estimate`` (S(t)), ``std_error`` (of
        S(t), Greenwood), ``conf_low``, ``conf_high``. With ``weights`` the
        counts ``n_risk``, ``n_event`` and ``n_censor`` are sums of weights
        (floats, as R reports them), else integers. Complete cases: rows
        with a missing value in a used column (duration, event, group,
        entry, weights) are left out; ``attrs["n_missing"]`` is their number
        (0 when none) and ``attrs["missing"]`` the missing values per column.

    Raises
    ------
    NeutrostatsError
        For an empty table or one without a complete row, missing columns,
        durations that are not numbers (text such as ``"3.2"``, dates,
        timedeltas), infinite or negative durations, events not 0/1 (text
        included), entry not before the duration, weights that are not
        finite numbers >= 0 (or all 0), or an unknown ``conf_type``.

    Warns
    -----
    DataQualityWarning
        When rows are left out for missing values: the function, the count
        and the missing values per column.

    References
    ----------
    Kaplan EL, Meier P. J Am Stat Assoc 1958;53:457. Therneau TM, survival
    package for R (survfit).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [2, 3, 3, 5, 8, 9], "e": [1, 1, 0, 1, 0, 1], "g": list("aabbab")})
    >>> km = kaplan_meier(df, "t", "e", group="g")
    >>> km[km["group"] == "a"][["time", "estimate"]].to_numpy().tolist()
    [[0.0, 1.0], [2.0, 0.6666666666666667], [3.0, 0.33333333333333337], [8.0, 0.33333333333333337]]

    Case weights: a weight of 2 counts the row twice.

    >>> w = pd.DataFrame({"t": [1, 2, 3], "e": [1, 0, 1], "w": [2.0, 1.0, 0.5]})
    >>> kaplan_meier(w, "t", "e", weights="w")[["time", "n_risk", "n_event", "estimate"]]
       time  n_risk  n_event  estimate
    0   0.0     3.5      0.0  1.000000
    1   1.0     3.5      2.0  0.428571
    2   2.0     1.5      0.0  0.428571
    3   3.0     0.5      0.5  0.000000
    """
    fn = "kaplan_meier"
    out, chk = _kaplan_meier(df, duration, event, group, entry, conf_level, conf_type, fn, stacklevel=5,
                             weights=weights)
    return with_missing(out, chk)


def _kaplan_meier(df, duration, event, group, entry, conf_level, conf_type, fn, stacklevel, weights=None):
    """The Kaplan-Meier table and the checked data (its complete-case accounting)."""
    require_choice(conf_type, CONF_TYPES, fn, "conf_type")
    level = require_conf_level(conf_level, fn)
    chk = check_tte(df, fn, duration=duration, event=event, group=group or None, entry=entry or None,
                    weights=weights or None, stacklevel=stacklevel - 1)
    t, e, s, w = chk.time, chk.event, chk.entry, chk.weights
    group_rows, groups, dtype = _group_index(chk, group)
    count = np.int64 if w is None else float
    cols: dict[str, list] = {c: [] for c in KM_COLUMNS[1:]}
    lengths = []
    for rows in group_rows:
        tg, eg = t[rows], e[rows]
        sg = None if s is None else s[rows]
        wg = None if w is None else w[rows]
        times, n_risk, n_event, n_censor, surv, var_log = _km_one(tg, eg, sg, wg)
        lo, hi = _ci(surv, var_log, level, conf_type)
        with np.errstate(invalid="ignore"):
            se = surv * np.sqrt(var_log)  # 0 x inf = NaN once everyone at risk has died, as in R
        if sg is None:
            start_risk = tg.size if wg is None else float(wg.sum())
        else:
            at_start = sg <= 0
            start_risk = int(at_start.sum()) if wg is None else float(wg[at_start].sum())
        for c, first, v in (("time", 0.0, times), ("n_risk", start_risk, n_risk), ("n_event", 0, n_event),
                            ("n_censor", 0, n_censor), ("estimate", 1.0, surv), ("std_error", 0.0, se),
                            ("conf_low", 1.0, lo), ("conf_high", 1.0, hi)):
            cols[c].append(np.concatenate([[first], v]))
        lengths.append(times.size + 1)
    data = {c: np.concatenate(v) for c, v in cols.items()}
    for c in ("n_risk", "n_event", "n_censor"):
        data[c] = data[c].astype(count)
    if dtype is not None:
        # category positions of the groups present, repeated: no per-row object values
        cat_codes = dtype.categories.get_indexer(groups)
        group_col: Any = pd.Categorical.from_codes(np.repeat(cat_codes, lengths), dtype=dtype)
    else:
        # The dtype a column of each scalar group value gets, combined as pandas combines them.
        group_col = pd.concat([pd.Series(g, index=pd.RangeIndex(m)) for g, m in zip(groups, lengths)],
                              ignore_index=True)
    return pd.DataFrame({"group": group_col, **data}), chk


def _step_rows(km: pd.DataFrame, times) -> pd.DataFrame:
    """The KM row in force at each time (the last row at or before it), per group."""
    rows, groups = [], []
    for g, part in km.groupby("group", sort=False, observed=True):
        part = part.reset_index(drop=True)
        idx = np.searchsorted(part["time"].to_numpy(), times, side="right") - 1
        last_time = part["time"].iloc[-1]
        # A curve that reached 0 (the last persons at risk died) stays 0: S(t) is known at every later time.
        extinct = part["estimate"].iloc[-1] == 0
        for tt, i in zip(times, idx):
            r = part.iloc[i].copy()
            r["time"] = tt
            if tt > last_time and not extinct:
                # Beyond the last follow-up time S(t) is unknown.
                r[["estimate", "std_error", "conf_low", "conf_high"]] = np.nan
            rows.append(r)
            groups.append(g)
    out = pd.DataFrame(rows).reset_index(drop=True)
    # A row of all-float values (weighted counts) would turn integer group values into floats.
    out["group"] = pd.Series(groups, dtype=object if isinstance(km["group"].dtype, pd.CategoricalDtype)
                             else km["group"].dtype)
    return out


def survival_at(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str | None = None,
    *,
    times: Any = (1, 2, 4),
    entry: str | None = None,
    conf_level: float = 0.95,
    conf_type: str = "log-log",
    weights: str | None = None,
) -> pd.DataFrame:
    """Survival and mortality (1 - S) with intervals at chosen horizons.

    Parameters
    ----------
    df, duration, event, group, entry, conf_level, conf_type, weights
        As :func:`kaplan_meier` (with ``weights`` the weighted curve, and
        ``n_risk`` a sum of weights).
    times : sequence of float, default (1, 2, 4)
        Horizons, in the unit of ``duration`` (years for a cohort table).

    Returns
    -------
    pandas.DataFrame
        One row per group and horizon: ``group``, ``time``, ``n_risk`` (at
        risk at the horizon), ``estimate`` (S), ``std_error``, ``conf_low``,
        ``conf_high``, ``mortality`` (1 - S), ``mortality_conf_low``,
        ``mortality_conf_high``. A horizon past a group's last follow-up time
        has NA estimates, unless the curve reached 0 there (everyone at risk
        died): then S is 0 at every later time. ``attrs["n_missing"]`` and ``attrs["missing"]``:
        the rows left out for missing values, as :func:`kaplan_meier`.

    Raises
    ------
    NeutrostatsError
        As :func:`kaplan_meier`, and for horizons that are not finite
        numbers >= 0.

    Warns
    -----
    DataQualityWarning
        As :func:`kaplan_meier` (rows left out for missing values).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0]})
    >>> survival_at(df, "t", "e", times=[2.5])[["time", "estimate", "mortality"]].round(2)
       time  estimate  mortality
    0   2.5       0.6        0.4
    >>> df["w"] = [1, 1, 1, 1, 2]  # the last row counts twice: S(2.5) = (5/6)(4/5) = 2/3
    >>> survival_at(df, "t", "e", times=[2.5], weights="w")[["n_risk", "estimate"]].round(4)
       n_risk  estimate
    0     3.0    0.6667
    """
    fn = "survival_at"
    times = np.atleast_1d(np.asarray(times, dtype=float))
    if times.size == 0 or np.any(times < 0) or not np.all(np.isfinite(times)):
        raise NeutrostatsError(f"{fn}: times must be finite numbers >= 0, found {times.tolist()}")
    km, chk = _kaplan_meier(df, duration, event, group, entry, conf_level, conf_type, fn, stacklevel=5,
                            weights=weights)
    at = _step_rows(km, times)
    risk = at_risk_table(km, times)
    at["n_risk"] = risk["n_risk"].to_numpy()
    at["mortality"] = 1 - at["estimate"]
    at["mortality_conf_low"] = 1 - at["conf_high"]
    at["mortality_conf_high"] = 1 - at["conf_low"]
    cols = ["group", "time", "n_risk", "estimate", "std_error", "conf_low", "conf_high",
            "mortality", "mortality_conf_low", "mortality_conf_high"]
    out = at[cols].copy()
    out["n_risk"] = out["n_risk"].astype(km["n_risk"].dtype)
    if isinstance(km["group"].dtype, pd.CategoricalDtype):
        out["group"] = pd.Categorical(out["group"], dtype=km["group"].dtype)
    for c in cols[3:]:
        out[c] = out[c].astype(float)
    return with_missing(out, chk)


def restricted_mean_survival(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str | None = None,
    *,
    horizon: float,
    entry: str | None = None,
    conf_level: float = 0.95,
    weights: str | None = None,
) -> pd.DataFrame:
    """Restricted mean survival time up to a horizon, with its standard error.

    The area under the Kaplan-Meier curve from 0 to ``horizon``; its
    variance is the sum over times t_j < horizon of A_j^2 d_j / (n_j (n_j -
    d_j)), A_j being the area under the curve from t_j to the horizon, and
    no term where n_j = d_j (as R's ``print(survfit, rmean=)``).

    Parameters
    ----------
    df, duration, event, group, entry, weights
        As :func:`kaplan_meier`; with ``weights`` the area under the
        weighted curve, its variance from the weighted counts.
    horizon : float
        Upper limit of the integral, in the unit of ``duration``.
    conf_level : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        ``group``, ``time`` (the horizon), ``estimate`` (the restricted
        mean survival time), ``std_error``, ``conf_low``, ``conf_high``
        (normal approximation). ``attrs["n_missing"]`` and
        ``attrs["missing"]``: the rows left out for missing values, as
        :func:`kaplan_meier`.

    Raises
    ------
    NeutrostatsError
        As :func:`kaplan_meier`, and for a ``horizon`` that is not a
        positive number.

    Warns
    -----
    DataQualityWarning
        As :func:`kaplan_meier` (rows left out for missing values).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0]})
    >>> float(restricted_mean_survival(df, "t", "e", horizon=4)["estimate"].iloc[0])  # 1 + .8 + .6 + .3
    2.7
    >>> df["w"] = [2, 1, 1, 1, 1]  # S = 1, 4/6, 1/2, 1/4 on [0, 1), [1, 2), [2, 3), [3, 4)
    >>> round(float(restricted_mean_survival(df, "t", "e", horizon=4, weights="w")["estimate"].iloc[0]), 4)
    2.4167
    """
    fn = "restricted_mean_survival"
    h = require_positive(horizon, fn, "horizon")
    level = require_conf_level(conf_level, fn)
    km, chk = _kaplan_meier(df, duration, event, group, entry, level, "log-log", fn, stacklevel=5,
                            weights=weights)
    z = norm.ppf(0.5 + level / 2)
    rows = []
    for g, part in km.groupby("group", sort=False, observed=True):
        tt = part["time"].to_numpy()
        ss = part["estimate"].to_numpy()
        inside = tt < h
        knots = np.append(tt[inside], h)
        widths = np.diff(knots)
        areas = ss[inside] * widths  # S is constant on [t_i, t_{i+1})
        rmst = float(areas.sum())
        # Area from each time t_j (included) to the horizon.
        tail = np.cumsum(areas[::-1])[::-1]
        d = part["n_event"].to_numpy()[inside].astype(float)
        n = part["n_risk"].to_numpy()[inside].astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            # As R's survmean: no term where everyone at risk has the event.
            hh = np.where(n - d == 0, 0.0, d / (n * (n - d)))
        var = float(np.sum(tail ** 2 * hh))
        se = np.sqrt(var)
        rows.append({"group": g, "time": h, "estimate": rmst, "std_error": se,
                     "conf_low": rmst - z * se, "conf_high": rmst + z * se})
    out = pd.DataFrame(rows)
    if isinstance(km["group"].dtype, pd.CategoricalDtype):
        out["group"] = pd.Categorical(out["group"], dtype=km["group"].dtype)
    return with_missing(out, chk)


@dataclass(frozen=True)
class LogrankTest:
    """Result of :func:`logrank_test`.

    Attributes
    ----------
    statistic, df, p_value : float
        Chi-square statistic, its degrees of freedom and p-value. As in R's
        ``survdiff``, groups expecting no events are left out of the test,
        and with fewer than two left the statistic is 0 and the p-value NaN
        (R: 0 on -1 df, NA). The trend test without any event is NaN.
    method : str
        ``logrank``, ``logrank_trend`` or ``logrank_stratified``; with
        case weights the same names ending in ``_weighted`` (the score test
        of the weighted Cox model, see :func:`logrank_test`). With
        Fleming-Harrington weights (``rho`` or ``gamma`` not 0)
        ``fleming_harrington``, ``fleming_harrington_trend`` or
        ``fleming_harrington_stratified``.
    rho, gamma : float
        The Fleming-Harrington G(rho, gamma) weights used (0, 0: log-rank).
    table : pandas.DataFrame
        Per group: ``group``, ``n``, ``observed`` and ``expected`` events
        (sums of weights, floats, with case weights).
    n_missing : int
        Rows left out because a used column (duration, event, group,
        strata) is missing (complete cases); 0 when none.
    missing : dict of str to int
        Missing values per used column, for the columns that have any.
    outcome, term : str
        The ``event`` and ``group`` columns tested (for :meth:`tidy`).
    """

    statistic: float
    df: int
    p_value: float
    method: str
    table: pd.DataFrame
    n_missing: int = 0
    missing: dict = field(default_factory=dict)
    outcome: str = ""
    term: str = ""
    rho: float = 0.0
    gamma: float = 0.0

    def tidy(self) -> pd.DataFrame:
        """The test as one row of the tidy test shape (:data:`neutrostats.core.columns.TEST_COLUMNS`).

        Returns
        -------
        pandas.DataFrame
            ``test`` (``method``), ``outcome`` (the event column), ``term``
            (the group column), ``statistic``, ``df``, ``p_value``;
            ``attrs["n_missing"]`` and ``attrs["missing"]`` as the result.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6, 7, 8], "e": [1] * 8, "g": list("aaaabbbb")})
        >>> logrank_test(df, "t", "e", "g").tidy()[["test", "outcome", "term", "df"]]
              test outcome term  df
        0  logrank       e    g   1
        """
        out = pd.DataFrame({"test": [self.method], "outcome": [self.outcome], "term": [self.term],
                            "statistic": [float(self.statistic)], "df": [int(self.df)],
                            "p_value": [float(self.p_value)]})
        out.attrs["n_missing"] = int(self.n_missing)
        out.attrs["missing"] = dict(self.missing)
        return out


def logrank_test(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str,
    *,
    strata: str | None = None,
    trend: bool = False,
    scores: Any = None,
    weights: str | None = None,
    rho: float = 0.0,
    gamma: float = 0.0,
    entry: str | None = None,
) -> LogrankTest:
    """Log-rank test across groups; trend across ordered groups; stratified; Fleming-Harrington weights.

    Parameters
    ----------
    df, duration, event
        As :func:`kaplan_meier`.
    group : str
        Groups to compare (e.g. ``"tier"``).
    strata : str, optional
        Stratify: observed, expected and variance are summed over strata
        (R's ``survdiff(... + strata(s))``).
    trend : bool, default False
        Test for a trend across the ordered groups with ``scores``:
        (w'(O - E))^2 / (w'Vw), 1 df.
    scores : sequence of float, optional
        One per group in group order; default 0, 1, 2, ...
    weights : str, optional
        Column of case weights (finite numbers >= 0; a missing weight
        leaves the row out). R's ``survdiff`` takes no weights; the weighted
        log-rank test is the score test of the Cox model with the group as
        a factor (with ``trend``: the scores as one covariate) at
        coefficients 0, ``summary(coxph(Surv(t, e) ~ group + strata(s),
        weights = w))$sctest`` with R's default Efron ties (model-based
        variance), on groups - 1 df. Without tied event times this is the
        log-rank statistic with weighted counts; with ties it differs
        slightly from ``survdiff``'s (also when every weight is 1). Rows
        with weight 0 take no part (R's ``coxph`` refuses them). ``table``
        then holds sums of weights: ``n`` and the observed and expected
        (survdiff's formula on the weighted counts) events, as floats.
        Method names get the suffix ``_weighted``. Not with ``rho`` or
        ``gamma``.
    rho, gamma : float, default 0
        Fleming-Harrington G(rho, gamma) weights: each event time ``t``
        counts with ``S(t-)^rho (1 - S(t-))^gamma``, ``S(t-)`` the pooled
        Kaplan-Meier estimate just before ``t`` (within the stratum, with
        the same at-risk sets); the variance with the square of the
        weight. ``rho`` alone is R's ``survdiff(rho =)``: ``rho = 1`` is
        Peto & Peto's modification of the Gehan-Wilcoxon test (more weight
        to early differences), ``gamma > 0`` weights late differences.
        ``observed`` and ``expected`` of ``table`` are then the weighted
        sums, as survdiff prints them. Both must be >= 0.
    entry : str, optional
        Delayed-entry (left-truncation) time: a person is at risk on
        ``(entry, duration]``, so the at-risk sets (and the Kaplan-Meier
        weights) are those of the counting process, as R's ``Surv(entry,
        time, event)``. R's ``survdiff`` has no delayed entry; without tied
        event times the statistic is the score test of
        ``coxph(Surv(entry, time, event) ~ group, ties = "breslow")``.

    Returns
    -------
    LogrankTest
        With ``n_missing`` (rows left out because the duration, event,
        group, strata or weight is missing; complete cases) and ``missing``
        (per column).

    Raises
    ------
    NeutrostatsError
        As :func:`kaplan_meier`, and for fewer than two groups (with
        ``weights``: with a positive weight) or scores that do not match
        the groups.

    Warns
    -----
    DataQualityWarning
        When rows are left out for missing values.

    References
    ----------
    Mantel N. Cancer Chemother Rep 1966;50:163. Collett D. Modelling
    Survival Data in Medical Research, 3rd ed., section 2.6 (trend).
    Peto R, Peto J. J R Stat Soc A 1972;135:185. Harrington DP, Fleming TR.
    Biometrika 1982;69:553 (the G(rho, gamma) family).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6, 7, 8], "e": [1] * 8, "g": list("aaaabbbb")})
    >>> r = logrank_test(df, "t", "e", "g")
    >>> r.table["observed"].tolist(), r.df
    ([4.0, 4.0], 1)

    With case weights (here the Cox score test; no ties, so it is the
    log-rank statistic of the weighted counts):

    >>> df["w"] = [2, 1, 1, 1, 1, 1, 1, 2]
    >>> rw = logrank_test(df, "t", "e", "g", weights="w")
    >>> rw.method, rw.table["n"].tolist(), rw.table["observed"].tolist()
    ('logrank_weighted', [5.0, 5.0], [5.0, 5.0])

    Peto & Peto's test (R: ``survdiff(Surv(t, e) ~ g, rho = 1)$chisq`` is
    0.0008833922261):

    >>> df2 = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6, 7, 8], "e": [1, 1, 0, 1, 1, 1, 0, 1], "g": list("abababab")})
    >>> r = logrank_test(df2, "t", "e", "g", rho=1)
    >>> r.method, round(r.statistic, 10)
    ('fleming_harrington', 0.0008833922)
    """
    fn = "logrank_test"
    if not group:
        raise NeutrostatsError(f"{fn}: a group column is needed to compare curves")
    rho, gamma = _fh_exponents(rho, gamma, weights, fn)
    chk = check_tte(df, fn, duration=duration, event=event, group=group, entry=entry or None, strata=strata,
                    weights=weights or None, stacklevel=3)
    t, e, ent, wt = chk.time, chk.event, chk.entry, chk.weights
    pos = None
    if wt is not None:
        # Rows of weight 0 add nothing to any sum; coxph refuses them.
        pos = wt > 0
        chk_data, t, e, wt = chk.data[pos], t[pos], e[pos], wt[pos]
        ent = None if ent is None else ent[pos]
    else:
        chk_data = chk.data
    gi, groups, dtype = _group_codes(chk, group, pos)
    if len(groups) < 2:
        with_w = " with a positive weight" if wt is not None else ""
        raise NeutrostatsError(f"{fn}: at least two groups with persons{with_w} are needed, found {len(groups)}")
    k = len(groups)
    observed = np.zeros(k)
    expected = np.zeros(k)
    var = np.zeros((k, k))
    if strata is not None:
        s_codes = pd.factorize(chk_data[strata].to_numpy())[0]
        strata_rows = [s_codes == s for s in range(int(s_codes.max()) + 1)]
    else:
        s_codes = np.zeros(t.size, dtype=np.int64)
        strata_rows = [slice(None)]
    for m in strata_rows:
        o, ex, v = _logrank_parts(t[m], e[m], gi[m], k, None if wt is None else wt[m],
                                  None if ent is None else ent[m], rho, gamma)
        observed += o
        expected += ex
        var += v
    diff = observed - expected
    if trend:
        w = np.arange(k, dtype=float) if scores is None else np.asarray(scores, dtype=float)
        if w.shape != (k,):
            raise NeutrostatsError(f"{fn}: expected {k} scores (one per group {groups}), found {scores!r}")
    if wt is not None:
        stat, dof, method = _weighted_score_test(t, e, gi, k, wt, s_codes, w if trend else None, ent)
        method += "_stratified" if strata is not None and not trend else ""
        method += "_weighted"
        n_g = np.bincount(gi, weights=wt, minlength=k)
    elif trend:
        denom = float(w @ var @ w)
        # Without events there is no variance and no test.
        stat = float(np.dot(w, diff) ** 2 / denom) if denom > 0 else np.nan
        dof, method = 1, "logrank_trend"
    else:
        # As survdiff: groups expecting no events are left out, and with fewer
        # than two left the statistic is 0. Drop one group: V has rank k - 1.
        used = np.flatnonzero(expected > 0)
        if used.size < 2:
            stat = 0.0
        else:
            d, v = diff[used][1:], var[np.ix_(used, used)][1:, 1:]
            stat = float(d @ np.linalg.solve(v, d))
        dof = max(used.size - 1, 0)
        method = "logrank_stratified" if strata is not None else "logrank"
    if wt is None:
        n_g = np.bincount(gi, minlength=k)
    table = pd.DataFrame({"group": groups, "n": n_g, "observed": observed, "expected": expected})
    if dtype is not None:
        table["group"] = pd.Categorical(table["group"], dtype=dtype)
    p = float(chi2.sf(stat, dof)) if dof > 0 and np.isfinite(stat) else np.nan
    if rho or gamma:
        method = method.replace("logrank", "fleming_harrington")
    return LogrankTest(stat, dof, p, method, table, chk.n_missing, dict(chk.missing), outcome=event, term=group,
                       rho=rho, gamma=gamma)


def _fh_exponents(rho, gamma, weights, fn):
    """rho and gamma as floats >= 0; refused with case weights (no weighted Fleming-Harrington test here)."""
    out = []
    for name, v in (("rho", rho), ("gamma", gamma)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) or not (
                np.isfinite(v) and v >= 0):
            raise NeutrostatsError(f"{fn}: {name} must be a finite number >= 0 (Fleming-Harrington weights "
                                   f"S(t-)^rho (1 - S(t-))^gamma), found {v!r}")
        out.append(float(v))
    if weights is not None and (out[0] or out[1]):
        raise NeutrostatsError(f"{fn}: rho= and gamma= (Fleming-Harrington weights) do not combine with case "
                               f"weights (weights={weights!r}); drop one of them")
    return out[0], out[1]


def _weighted_score_test(t, e, gi, k, w, s_codes, scores, entry=None):
    """Score test at 0 of the weighted Cox model (group dummies, or the scores as one covariate).

    Returns (statistic, df, method). As for unweighted data, no event (of
    positive weight) means no test: statistic 0 on 0 df (NaN on 1 df for
    the trend test).
    """
    if not np.any(e):
        return (np.nan, 1, "logrank_trend") if scores is not None else (0.0, 0, "logrank")
    if scores is not None:
        X = scores[gi][:, None].astype(float)
        method = "logrank_trend"
    else:
        X = (gi[:, None] == np.arange(1, k)[None, :]).astype(float)
        method = "logrank"
    with warnings.catch_warnings():
        # Only the score test at 0 is used: it needs no convergence of the fit
        # (a group without events has an infinite log hazard ratio).
        warnings.simplefilter("ignore", CoxConvergenceWarning)
        fit = cox_fit(t, e, X, strata=s_codes if np.unique(s_codes).size > 1 else None, weights=w, entry=entry)
    return float(fit.score_test.statistic), int(fit.score_test.df), method


def _risk_and_events(t, e, gi, k, entry=None):
    """Distinct times of a stratum, the numbers at risk and the events per time and group (floats).

    Exact counts from one sort per group (:func:`_exit_counts`) and binary
    searches of the few distinct times: at risk at ``times[j]`` are those
    leaving at or after it less those entering at or after it (entry >=
    times[j], not yet at risk), the same integers as ``np.add.at`` over all
    rows gave, without the inverse index or the unbuffered adds.
    """
    parts = []
    for rows in _rows_by_code(gi, k):
        if rows is None:
            parts.append(None)
            continue
        parts.append((_exit_counts(t[rows], e[rows]), None if entry is None else np.sort(entry[rows])))
    times = np.unique(np.concatenate([p[0][0] for p in parts if p is not None]))
    n_tg = np.zeros((times.size, k))
    d_tg = np.zeros((times.size, k))
    for g, p in enumerate(parts):
        if p is None:
            continue
        (tg, n_exit, n_event), sorted_entry = p
        size = int(n_exit.sum())
        left_before = np.concatenate([[0], np.cumsum(n_exit)])[np.searchsorted(tg, times, side="left")]
        n_tg[:, g] = size - left_before
        if sorted_entry is not None:
            n_tg[:, g] -= size - np.searchsorted(sorted_entry, times, side="left")
        d_tg[np.searchsorted(times, tg), g] = n_event
    return times, n_tg, d_tg


def _logrank_parts(t, e, gi, k, w=None, entry=None, rho=0.0, gamma=0.0):
    """Observed, expected and covariance of one stratum (survdiff's sums; ``w``: case weights).

    ``entry``: at risk on (entry, t] (counting process); ``rho``, ``gamma``:
    each event time weighted by S(t-)^rho (1 - S(t-))^gamma, S the pooled
    Kaplan-Meier estimate of the stratum.
    """
    if w is None:
        times, n_tg, d_tg = _risk_and_events(t, e, gi, k, entry)
    else:
        # Sums of weights in the input order, as ever (np.add.at), so that no last bit moves.
        times, inv = np.unique(t, return_inverse=True)
        nt = times.size
        d_tg = np.zeros((nt, k))
        np.add.at(d_tg, (inv, gi), e * w)
        exit_tg = np.zeros((nt, k))
        np.add.at(exit_tg, (inv, gi), w)
        n_tg = np.cumsum(exit_tg[::-1], axis=0)[::-1]
        if entry is not None:
            # Not yet at risk at times[j]: entry >= times[j], i.e. j < searchsorted(times, entry, "right").
            late = np.zeros((nt + 1, k))
            np.add.at(late, (np.searchsorted(times, entry, "right"), gi), w)
            n_tg = n_tg - np.cumsum(late[::-1], axis=0)[::-1][1:]
    n_t = n_tg.sum(axis=1)
    d_t = d_tg.sum(axis=1)
    ev = d_t > 0
    n_tg, n_t, d_t, d_tg = n_tg[ev], n_t[ev], d_t[ev], d_tg[ev]
    frac = n_tg / n_t[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        hyper = np.where(n_t > 1, d_t * (n_t - d_t) / (n_t - 1), 0.0)
    if rho or gamma:
        s_before = np.r_[1.0, np.cumprod(1 - d_t / n_t)[:-1]]
        fw = s_before ** rho * (1 - s_before) ** gamma
        d_tg, d_t, hyper = d_tg * fw[:, None], d_t * fw, hyper * fw ** 2
    expected = (frac * d_t[:, None]).sum(axis=0)
    var = np.diag((hyper[:, None] * frac).sum(axis=0)) - (hyper[:, None, None] * frac[:, :, None] * frac[:, None, :]).sum(axis=0)
    return d_tg.sum(axis=0), expected, var


def at_risk_table(km_table: pd.DataFrame, times: Any, *, min_cell_count: int = 0) -> pd.DataFrame:
    """Numbers at risk per group at chosen times, from a Kaplan-Meier table.

    Parameters
    ----------
    km_table : pandas.DataFrame
        Output of :func:`kaplan_meier`.
    times : sequence of float
        Times (e.g. the x-axis ticks of a plot).
    min_cell_count : int, default 0
        Hide numbers from 1 to ``min_cell_count - 1`` (disclosure control);
        see :func:`~neutrostats.disclosure.suppress_counts`.

    Returns
    -------
    pandas.DataFrame
        ``group``, ``time``, ``n_risk`` (persons still at risk at the time:
        the number at risk at the first KM time at or after it, 0 past the
        last; a sum of weights for a weighted curve), ``suppressed``; ``attrs`` keeps the ``n_missing`` and
        ``missing`` of ``km_table``.

    Examples
    --------
    >>> import pandas as pd
    >>> km = kaplan_meier(pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0]}), "t", "e")
    >>> at_risk_table(km, [0, 2, 5])["n_risk"].tolist()
    [5, 4, 0]
    """
    km_table = require_dataframe(km_table, "at_risk_table", "km_table")
    require_columns(km_table, KM_COLUMNS, "at_risk_table", "Pass the output of kaplan_meier.")
    times = np.atleast_1d(np.asarray(times, dtype=float))
    rows = []
    for g, part in km_table.groupby("group", sort=False, observed=True):
        tt = part["time"].to_numpy()
        nr = part["n_risk"].to_numpy()
        idx = np.searchsorted(tt, times, side="left")
        for x, i in zip(times, idx):
            rows.append({"group": g, "time": x, "n_risk": nr[i] if i < tt.size else 0})
    out = pd.DataFrame(rows, columns=["group", "time", "n_risk"])
    weighted = not pd.api.types.is_integer_dtype(km_table["n_risk"])
    out["n_risk"] = out["n_risk"].astype(float if weighted else np.int64)
    if isinstance(km_table["group"].dtype, pd.CategoricalDtype):
        out["group"] = pd.Categorical(out["group"], dtype=km_table["group"].dtype)
    # Numbers at risk of different times do not add up to a shown total, so
    # only the small numbers themselves are hidden.
    shown = suppress_counts(out, min_cell_count=min_cell_count, count="n_risk")
    if weighted:
        # suppress_counts returns whole numbers; a sum of weights keeps its value where it is shown.
        shown["n_risk"] = out["n_risk"].mask(shown["suppressed"].to_numpy())
    out = shown
    for key in ("n_missing", "missing"):
        if key in km_table.attrs:
            out.attrs[key] = km_table.attrs[key]
    return out


