"""Competing risks: Aalen-Johansen cumulative incidence and Gray's test.

A person can leave follow-up through the event of interest (say, a severe
infection) or through a competing event that makes it impossible (death
from another cause). ``1 - Kaplan-Meier`` that treats competing events as
censored overstates the risk; the Aalen-Johansen estimator of the
cumulative incidence function (CIF) does not.

Event coding
------------
One integer column: ``0`` = censored, ``1`` = the event of interest,
``2, 3, ...`` = competing events (``cause=`` picks another code as the event
of interest).

Conventions (those of R's ``survival::survfit`` for multi-state data)
----------------------------------------------------------------------
* Tied times are handled exactly and deterministically (no jitter): at a time
  t all events of every kind are processed together, with increments
  ``S(t-) d_k(t) / n(t)``, and persons censored at t are still at risk at t.
  Times are compared exactly (R's ``survfit`` also merges times that differ
  only by floating-point rounding, ``timefix = TRUE``; round your times if
  that matters).
* The standard error is the infinitesimal-jackknife (IJ) standard error of
  the CIF, which ``survfit`` reports for multi-state curves (its only
  variance there). It has a closed form (see :func:`cumulative_incidence`)
  and is computed in O(number of distinct times).
* The interval is ``survfit``'s multi-state default, ``conf.type = "log"``:
  ``F exp(-+ z se / F)``, the upper end capped at 1.
* With ``entry=`` (delayed entry, left truncation) a person is at risk at t
  when ``entry < t <= duration``, as ``Surv(entry, time, status)``.

``cmprsk::cuminc`` gives identical estimates; its variance (Aalen-type,
delta method) differs slightly from the IJ variance and is not reported.

Examples
--------
>>> import pandas as pd
>>> from neutrostats.stats.competing import cumulative_incidence
>>> df = pd.DataFrame({"t": [1, 2, 2, 3, 4, 5], "ev": [1, 2, 0, 1, 2, 0]})
>>> cumulative_incidence(df, "t", "ev")[["time", "n_risk", "estimate"]]  # 3: 1/6 + (4/6)(1/3)
   time  n_risk  estimate
0   0.0       6  0.000000
1   1.0       6  0.166667
2   2.0       5  0.166667
3   3.0       3  0.388889
4   4.0       2  0.388889
5   5.0       1  0.388889
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.distributions import chi2, norm
from neutrostats.core.lazy import lazy_module
from neutrostats.stats.tte import check_tte, with_missing
from neutrostats.core.validate import require_columns, require_conf_level, require_dataframe
from neutrostats.errors import NeutrostatsError

# scipy is imported at the first call that needs it, not with neutrostats (neutrostats.core.lazy).
linalg = lazy_module("scipy.linalg")

__all__ = [
    "CI_COLUMNS",
    "GRAY_COLUMNS",
    "cumulative_incidence",
    "cumulative_incidence_at",
    "gray_test",
]

#: Columns of :func:`cumulative_incidence`, in order.
CI_COLUMNS = [
    "group", "time", "n_risk", "estimate", "std_error", "conf_low", "conf_high",
    "n_event", "n_competing", "n_censor",
]
#: Columns of :func:`gray_test`, in order.
GRAY_COLUMNS = ["test", "outcome", "term", "statistic", "df", "p_value"]
#: Group label used when no ``group`` column is given.
ALL_GROUP = "all"


# --- input ---------------------------------------------------------------------------------


def _cause_code(cause: Any, fn: str) -> int:
    if isinstance(cause, bool) or not isinstance(cause, (int, np.integer)) or cause < 1:
        raise NeutrostatsError(
            f"{fn}: cause must be an event code >= 1 (1 = the event of interest, 2.. = competing), "
            f"found {cause!r}"
        )
    return int(cause)


def _prepare(df, duration, event, group, entry, fn, strata=None, stacklevel=4, weights=None):
    """Complete cases (see :func:`neutrostats.stats.tte.check_tte`): the checked data, float time, integer
    event code, group codes and labels, entry (or None); the case weights are ``chk.weights``."""
    chk = check_tte(
        df, fn, duration=duration, event=event, events="codes", group=group, entry=entry, strata=strata,
        weights=weights,
        hint="Pass the duration and event column names (event coded 0 = censored, 1 = event of interest, "
             "2.. = competing events).",
        stacklevel=stacklevel,
    )
    if group is None:
        codes = np.zeros(chk.time.size, dtype=np.int64)
        labels: Any = pd.Index([ALL_GROUP], dtype=object)
    else:
        codes, labels = pd.factorize(chk.data[group], sort=True)
        codes = codes.astype(np.int64)
    return chk, chk.time, chk.event, chk.entry, codes, labels


def _blocks(t: np.ndarray, codes: np.ndarray):
    """Sort once by (group, time); return the order, block starts and group starts.

    A block is one distinct (group, time) pair.
    """
    # Order within a tied time is irrelevant (tied rows form one block); the
    # second, stable sort on small integer codes is a radix sort.
    order = np.argsort(t)
    small = codes.astype(np.int16) if codes.size and codes.max() < np.iinfo(np.int16).max else codes
    order = order[np.argsort(small[order], kind="stable")]
    ts, gs = t[order], codes[order]
    n = ts.size
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = (ts[1:] != ts[:-1]) | (gs[1:] != gs[:-1])
    starts = np.flatnonzero(new)
    return order, ts, gs, starts


# --- estimation ----------------------------------------------------------------------------


def _aj_one(n_risk, d_all, d_k):
    """Aalen-Johansen CIF of one cause and its IJ variance at the distinct times of one group.

    With S(u-) the all-cause Kaplan-Meier just before u and h = d/n, the
    influence of person i on F(t) is the sum over times u <= t of
    ``S(u-) b_i(u) - a_i(u) (F(t) - F(u))`` with
    ``b_i = (dN_ik - Y_i h_k) / n`` and ``a_i = (dN_i - Y_i h) / (n - d)``.
    Cross-products of different times sum to zero over persons, so
    ``var F(t) = sum_u A + B (F(t) - F(u)) + C (F(t) - F(u))^2`` with
    ``A = S(u-)^2 d_k (n - d_k) / n^3``, ``B = -2 S(u-) d_k / n^2`` and
    ``C = d / (n (n - d))`` (Greenwood's term; 0 where n = d, since F is
    then constant after u).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        n = n_risk.astype(float)
        h = np.where(n > 0, d_all / n, 0.0)
        surv = np.cumprod(1.0 - h)
        s_prev = np.concatenate([[1.0], surv[:-1]])
        inc = np.where(n > 0, s_prev * d_k / n, 0.0)
        cif = np.cumsum(inc)
        a = np.where(n > 0, s_prev**2 * d_k * (n - d_k) / n**3, 0.0)
        b = np.where(n > 0, -2.0 * s_prev * d_k / n**2, 0.0)
        c = np.where((n > d_all) & (d_all > 0), d_all / (n * (n - d_all)), 0.0)
    ca, cb, cc = np.cumsum(a), np.cumsum(b), np.cumsum(c)
    cbf, ccf, ccf2 = np.cumsum(b * cif), np.cumsum(c * cif), np.cumsum(c * cif * cif)
    terms = (ca, -cbf, ccf2, cif * cb, -2.0 * cif * ccf, cif * cif * cc)
    return cif, _sqrt_var(terms)


def _aj_entry_se(times, n_risk, d_all, d_k, cif, row_block, row_event, row_entry, k, row_weight=None):
    """IJ standard error of the CIF with delayed entry (one group, rows sorted by exit time).

    With case weights ``row_weight`` (n, d, d_k then sums of weights) the
    variance is ``sum_i (w_i U_i(t))^2``, U_i being the influence of a unit
    of weight of person i, as R's ``survfit`` forms it; every sum of squares
    below is then weighted by w_i^2. Without entry times pass
    ``row_entry = -inf``.

    Person i, at risk on (s_i, t_i], has influence ``U_i(t) = sum_{s_i < u <= min(t, t_i)}
    S(u-) b_i(u) - a_i(u) (F(t) - F(u))`` (see :func:`_aj_one`). With the cumulative sums
    X = sum S(u-) h_k / n, Y = sum h / (n - d), Z = sum F(u) h / (n - d), a person who left at
    t_i <= t has ``U_i(t) = alpha_i - F(t) beta_i`` and a person still at risk has
    ``U_i(t) = K(t) + alpha'_i - F(t) beta'_i`` with ``K = -X + F Y - Z`` and alpha', beta'
    the sums at the entry time. The sums of squares over both sets are cumulative sums.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        n = n_risk.astype(float)
        surv = np.cumprod(1.0 - np.where(n > 0, d_all / n, 0.0))
        s_prev = np.concatenate([[1.0], surv[:-1]])
        inv_nd = np.where(n > d_all, 1.0 / (n - d_all), 0.0)
        x = np.cumsum(np.where(n > 0, s_prev * d_k / n**2, 0.0))
        yinc = np.where(n > 0, d_all / n, 0.0) * inv_nd
        y = np.cumsum(yinc)
        z = np.cumsum(cif * yinc)
        # values at each person's entry (last distinct time <= entry; 0 before the first)
        j0 = np.searchsorted(times, row_entry, side="right") - 1
        pad = lambda v: np.concatenate([[0.0], v])  # noqa: E731
        xs, ys, zs = pad(x)[j0 + 1], pad(y)[j0 + 1], pad(z)[j0 + 1]
        j = row_block
        ev = row_event > 0
        p_i = -(x[j] - xs) + np.where(row_event == k, s_prev[j] / n[j], 0.0)
        q_i = -(y[j] - ys) + np.where(ev, inv_nd[j], 0.0)
        r_i = -(z[j] - zs) + np.where(ev, cif[j] * inv_nd[j], 0.0)
        alpha, beta = p_i + r_i, q_i
        m = times.size
        w2 = np.ones(row_block.size) if row_weight is None else row_weight * row_weight
        cs = lambda w: np.cumsum(np.bincount(j, weights=w, minlength=m))  # noqa: E731
        e_aa, e_ab, e_bb = cs(w2 * alpha * alpha), cs(w2 * alpha * beta), cs(w2 * beta * beta)
        ap, bp = xs + zs, ys
        # sums over persons entered before t_j (entry < t_j) minus those who already left
        order = np.argsort(row_entry, kind="stable")
        se_sorted = row_entry[order]
        cnt = np.searchsorted(se_sorted, times, side="left")

        def at_risk_sum(w):
            c = np.concatenate([[0.0], np.cumsum(w[order])])[cnt]
            return c - cs(w)

        n_r = at_risk_sum(w2)
        a1, b1 = at_risk_sum(w2 * ap), at_risk_sum(w2 * bp)
        a2, ab, b2 = at_risk_sum(w2 * ap * ap), at_risk_sum(w2 * ap * bp), at_risk_sum(w2 * bp * bp)
        kk = -x + cif * y - z
        terms = (e_aa, -2 * cif * e_ab, cif**2 * e_bb, n_r * kk**2, 2 * kk * a1, -2 * kk * cif * b1, a2,
                 -2 * cif * ab, cif**2 * b2)
    return _sqrt_var(terms)


def _sqrt_var(terms) -> np.ndarray:
    """sqrt of a sum of terms, 0 where the sum is within rounding error of 0.

    Where the true variance is 0 (e.g. F = 1 after everyone had the event)
    the sum cancels to a few ulps of its largest term, whose square root
    would otherwise show as a spurious SE of about 1e-8.
    """
    var = np.sum(terms, axis=0)
    noise = 64 * np.finfo(float).eps * np.sum(np.abs(terms), axis=0)
    return np.sqrt(np.where(var > noise, var, 0.0))


def _log_ci(est, se, level):
    """survfit's multi-state default interval (conf.type "log", probability-scale SE)."""
    z = norm.ppf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(est > 0, se / est, 0.0)
        lo = np.where(est > 0, est * np.exp(-z * r), 0.0)
        hi = np.where(est > 0, np.minimum(est * np.exp(z * r), 1.0), 0.0)
    return lo, hi


def cumulative_incidence(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str | None = None,
    conf_level: float = 0.95,
    *,
    cause: int = 1,
    entry: str | None = None,
    weights: str | None = None,
) -> pd.DataFrame:
    """Cumulative incidence of one cause in the presence of competing events (Aalen-Johansen).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per person.
    duration : str
        Time to the first event or to censoring (>= 0).
    event : str
        Integer event code: 0 = censored, 1 = event of interest, 2, 3, ... =
        competing events.
    group : str, optional
        Column to estimate one curve per value of (e.g. ``"tier"``). Rows
        follow the category order of a Categorical (an ordered tier
        Categorical stays ordered), else the sorted values; the ``group``
        column keeps the input dtype. Without it there is one group labelled
        ``"all"``.
    conf_level : float, default 0.95
    cause : int, default 1
        Event code whose incidence is estimated; every other code >= 1 is a
        competing event.
    entry : str, optional
        Delayed-entry (left-truncation) time, ``0 <= entry < duration``; a
        person is at risk at t when ``entry < t <= duration``.
    weights : str, optional
        Column of case weights (finite numbers >= 0, e.g. inverse-probability
        weights; a missing weight leaves the row out): the weighted
        Aalen-Johansen estimator of R's ``survfit(Surv(time, factor(status))
        ~ group, weights = w)``. Numbers at risk and of events are sums of
        weights, so an integer weight k gives the estimate and counts of
        the row repeated k times. The standard error is ``survfit``'s
        infinitesimal jackknife with case weights, ``sum_i (w_i U_i)^2``
        (U_i the influence of a unit of weight), which for a weight k is
        not that of k repeated rows (k^2 U^2 instead of k U^2).

    Returns
    -------
    pandas.DataFrame
        :data:`CI_COLUMNS`; per group a row at time 0 (estimate 0), then one
        row per distinct time at which anything (event or censoring) happens
        in the group:

        * ``group``: the group value (``"all"`` without ``group``);
        * ``time``: float;
        * ``n_risk``: number at risk at ``time`` (censored at ``time``
          included); on the time-0 row the number in the group (with
          ``entry``: those with entry 0);
        * ``estimate``: cumulative incidence F(t) of ``cause`` just after
          ``time``;
        * ``std_error``: infinitesimal-jackknife standard error of F(t), as
          R's multi-state ``survfit``;
        * ``conf_low``, ``conf_high``: ``F exp(-+ z se / F)`` (R's
          multi-state default ``conf.type = "log"``), upper end capped at 1;
          where F = 0 both are 0 (R gives NA);
        * ``n_event``: events of ``cause`` at ``time``;
        * ``n_competing``: competing events at ``time``;
        * ``n_censor``: censored at ``time``.

        With ``weights`` the counts ``n_risk``, ``n_event``, ``n_competing``
        and ``n_censor`` are sums of weights (floats; R's multi-state
        ``survfit`` reports the unweighted numbers of rows instead), else
        integers.

        Complete cases: rows with a missing duration, event, group, entry or
        weight are left out; ``attrs["n_missing"]`` is their number (0 when none)
        and ``attrs["missing"]`` the missing values per column.

    Raises
    ------
    NeutrostatsError
        For an empty table or one without a complete row, a missing column,
        durations or event codes that are not numbers (text, dates,
        timedeltas), infinite or negative durations, event codes that are
        not 0, 1, 2, ..., entry times not before the duration, weights that
        are not finite numbers >= 0 (or all 0), a bad ``cause`` or
        ``conf_level``.

    Warns
    -----
    DataQualityWarning
        When rows are left out for missing values: the function, the count
        and the missing values per column.

    Notes
    -----
    With S(u-) the all-cause Kaplan-Meier just before u, n(u) the number at
    risk and d(u), d_k(u) the events of any cause and of ``cause``,
    ``F(t) = sum_{u <= t} S(u-) d_k(u) / n(u)``. Its IJ variance is
    ``sum_{u <= t} A(u) + B(u) G + C(u) G^2`` with ``G = F(t) - F(u)``,
    ``A = S(u-)^2 d_k (n - d_k) / n^3``, ``B = -2 S(u-) d_k / n^2``,
    ``C = d / (n (n - d))``: the sum of squared influences of every person,
    obtained in closed form (the same value as ``survfit``'s, which forms
    the influence matrix). Without competing events it is Greenwood's
    variance of 1 - KM. All of it is cumulative sums after one sort, so a
    million rows take well under a second.

    References
    ----------
    Aalen OO, Johansen S. Scand J Stat 1978;5:141. Putter H, Fiocco M,
    Geskus RB. Tutorial in biostatistics: competing risks and multi-state
    models. Stat Med 2007;26:2389. Therneau TM, survival package for R
    (``survfit``, multi-state curves; vignette "Multi-state models and
    competing risks"). Efron B. The jackknife, the bootstrap and other
    resampling plans. SIAM 1982 (infinitesimal jackknife).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 2, 2, 3, 4, 5, 6],
    ...                    "ev": [1, 1, 2, 0, 1, 2, 0, 1],
    ...                    "tier": pd.Categorical(list("ab") * 4, categories=["b", "a"], ordered=True)})
    >>> ci = cumulative_incidence(df, "t", "ev", group="tier")
    >>> ci[["group", "time", "n_risk", "estimate", "n_event", "n_competing", "n_censor"]]
      group  time  n_risk  estimate  n_event  n_competing  n_censor
    0     b   0.0       4     0.000        0            0         0
    1     b   2.0       4     0.250        1            0         1
    2     b   4.0       2     0.250        0            1         0
    3     b   6.0       1     0.625        1            0         0
    4     a   0.0       4     0.000        0            0         0
    5     a   1.0       4     0.250        1            0         0
    6     a   2.0       3     0.250        0            1         0
    7     a   3.0       2     0.500        1            0         0
    8     a   5.0       1     0.500        0            0         1
    >>> ci["group"].cat.ordered
    True

    Case weights (a weight of 2 counts the row twice):

    >>> dw = pd.DataFrame({"t": [1, 2, 3], "ev": [1, 2, 1], "w": [2.0, 1.0, 1.0]})
    >>> cumulative_incidence(dw, "t", "ev", weights="w")[["time", "n_risk", "estimate", "n_event"]]
       time  n_risk  estimate  n_event
    0   0.0     4.0      0.00      0.0
    1   1.0     4.0      0.50      2.0
    2   2.0     2.0      0.50      0.0
    3   3.0     1.0      0.75      1.0
    """
    fn = "cumulative_incidence"
    level = require_conf_level(conf_level, fn)
    k = _cause_code(cause, fn)
    chk, t, e, s, codes, labels = _prepare(df, duration, event, group, entry, fn, weights=weights)
    order, ts, gs, starts = _blocks(t, codes)
    es = e[order]
    n = ts.size
    ends = np.append(starts[1:], n)
    wts = None if chk.weights is None else chk.weights[order]
    is_event = es > 0
    if wts is None:
        n_exit = ends - starts
        d_all = np.add.reduceat(is_event.astype(np.int64), starts)
        d_k = np.add.reduceat((es == k).astype(np.int64), starts)
    else:
        n_exit = np.add.reduceat(wts, starts)
        d_all = np.add.reduceat(np.where(is_event, wts, 0.0), starts)
        d_k = np.add.reduceat(np.where(es == k, wts, 0.0), starts)
    count = np.int64 if wts is None else float
    b_time, b_group = ts[starts], gs[starts]
    # group boundaries among blocks
    g_first = np.flatnonzero(np.r_[True, b_group[1:] != b_group[:-1]])
    g_last = np.append(g_first[1:], b_group.size)
    row_first = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    row_last = np.append(row_first[1:], n)
    if s is not None:
        ss = s[order]
    frames = []
    for gi, (b0, b1, r0, r1) in enumerate(zip(g_first, g_last, row_first, row_last)):
        ex = n_exit[b0:b1]
        n_risk = np.cumsum(ex[::-1])[::-1]
        dk, da = d_k[b0:b1], d_all[b0:b1]
        if wts is None:
            if s is None:
                start_risk = int(r1 - r0)
            else:
                ent = np.sort(ss[r0:r1])
                n_risk = n_risk - (ent.size - np.searchsorted(ent, b_time[b0:b1], side="left"))
                start_risk = int(np.sum(ent <= 0))
            cif, se = _aj_one(n_risk, da, dk)
            if s is not None:
                row_block = np.repeat(np.arange(b1 - b0), ex)
                se = _aj_entry_se(b_time[b0:b1], n_risk, da, dk, cif, row_block, es[r0:r1], ss[r0:r1], k)
        else:
            n_risk, start_risk, cif, se, dk, da, ex = _weighted_group(
                b_time[b0:b1], n_risk, da, dk, ex, es[r0:r1], None if s is None else ss[r0:r1], wts[r0:r1],
                ends[b0:b1] - starts[b0:b1], k)
        lo, hi = _log_ci(cif, se, level)
        frames.append((int(b_group[b0]), {
            "time": np.r_[0.0, b_time[b0:b1]],
            "n_risk": np.r_[start_risk, n_risk].astype(count),
            "estimate": np.r_[0.0, cif],
            "std_error": np.r_[0.0, se],
            "conf_low": np.r_[0.0, lo],
            "conf_high": np.r_[0.0, hi],
            "n_event": np.r_[0, dk].astype(count),
            "n_competing": np.r_[0, da - dk].astype(count),
            "n_censor": np.r_[0, ex - da].astype(count),
        }))
    lengths = [len(f["time"]) for _, f in frames]
    group_codes = np.repeat([g for g, _ in frames], lengths)
    out = pd.DataFrame({c: np.concatenate([f[c] for _, f in frames]) for c in CI_COLUMNS[1:]})
    out.insert(0, "group", labels.take(group_codes))
    return with_missing(out[CI_COLUMNS], chk)


def _weighted_group(times, n_risk, d_all, d_k, n_exit, row_event, row_entry, row_weight, rows_per_block, k):
    """Weighted Aalen-Johansen of one group (rows sorted by exit time): n_risk, the time-0 number at
    risk, CIF, IJ standard error and the (rounding-corrected) weighted counts."""
    if row_entry is None:
        start_risk = float(row_weight.sum())
        entry_for_se = np.full(row_weight.size, -np.inf)
    else:
        o = np.argsort(row_entry, kind="stable")
        cw = np.concatenate([[0.0], np.cumsum(row_weight[o])])
        n_risk = n_risk - (cw[-1] - cw[np.searchsorted(row_entry[o], times, side="left")])
        start_risk = float(row_weight[row_entry <= 0].sum())
        entry_for_se = row_entry
    # Sums of weights taken in different orders differ by rounding: where
    # everyone at risk has an event, make it exact (the all-cause S drops to 0).
    full = (d_all > 0) & (d_all >= n_risk * (1 - 1e-12))
    if full.any():
        scale = np.where(full, n_risk / np.where(d_all > 0, d_all, 1.0), 1.0)
        d_k, d_all = d_k * scale, np.where(full, n_risk, d_all)
        n_exit = np.where(full, d_all, n_exit)  # nobody is censored where everyone has an event
    cif, _ = _aj_one(n_risk, d_all, d_k)
    row_block = np.repeat(np.arange(times.size), rows_per_block)
    se = _aj_entry_se(times, n_risk, d_all, d_k, cif, row_block, row_event, entry_for_se, k, row_weight)
    return n_risk, start_risk, cif, se, d_k, d_all, n_exit


#: Columns of :func:`cumulative_incidence_at`, in order.
CI_AT_COLUMNS = ["group", "time", "n_risk", "estimate", "std_error", "conf_low", "conf_high"]


def cumulative_incidence_at(ci_table: pd.DataFrame, times: Any) -> pd.DataFrame:
    """Cumulative incidence with its interval at chosen times, from a :func:`cumulative_incidence` table.

    The analogue of :func:`~neutrostats.stats.survival.survival_at` for
    competing risks: the Aalen-Johansen curve is a step function, so the
    value at a time t is that of the last curve time at or before t (as R's
    ``summary(survfit(...), times = t)``).

    Parameters
    ----------
    ci_table : pandas.DataFrame
        Output of :func:`cumulative_incidence` (:data:`CI_COLUMNS`), with
        or without ``weights``.
    times : float or sequence of float
        Times (horizons) in the unit of the duration, finite and >= 0.

    Returns
    -------
    pandas.DataFrame
        ``CI_AT_COLUMNS``, one row per group (in the order of
        ``ci_table``) and time (in the order given):

        * ``group``: as in ``ci_table`` (its dtype kept);
        * ``time``: the requested time;
        * ``n_risk``: number at risk at ``time`` (the number at risk at the
          first curve time at or after it, 0 past the last; a sum of
          weights for a weighted table);
        * ``estimate``, ``std_error``, ``conf_low``, ``conf_high``: F(t) of
          the curve's cause, its standard error and interval (as in
          ``ci_table``); NaN for a time after the group's last curve time
          (last event or censoring), where F is unknown.

        ``attrs`` keeps ``n_missing`` and ``missing`` of ``ci_table``.

    Raises
    ------
    NeutrostatsError
        When ``ci_table`` is not a table with :data:`CI_COLUMNS`, or for
        times that are not finite numbers >= 0.

    See Also
    --------
    cumulative_incidence : the curves.
    neutrostats.stats.survival.survival_at : the same for Kaplan-Meier.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 2, 3, 4, 5], "ev": [1, 2, 0, 1, 2, 0]})
    >>> ci = cumulative_incidence(df, "t", "ev")
    >>> cumulative_incidence_at(ci, [0.5, 3, 3.5, 6])[["time", "n_risk", "estimate"]]  # F(3) = 1/6 + (4/6)(1/3)
       time  n_risk  estimate
    0   0.5       6  0.000000
    1   3.0       3  0.388889
    2   3.5       2  0.388889
    3   6.0       0       NaN
    """
    fn = "cumulative_incidence_at"
    ci_table = require_dataframe(ci_table, fn, "ci_table")
    require_columns(ci_table, CI_COLUMNS, fn, "Pass the output of cumulative_incidence.")
    try:
        tt = np.atleast_1d(np.asarray(times, dtype=float)).ravel()
    except (TypeError, ValueError):
        raise NeutrostatsError(f"{fn}: times must be finite numbers >= 0, found {times!r}") from None
    if tt.size == 0 or not np.all(np.isfinite(tt)) or np.any(tt < 0):
        raise NeutrostatsError(f"{fn}: times must be finite numbers >= 0, found {tt.tolist()}")
    value_cols = ["estimate", "std_error", "conf_low", "conf_high"]
    parts = []
    for g, part in ci_table.groupby("group", sort=False, observed=True):
        ct = part["time"].to_numpy(dtype=float)
        order = np.argsort(ct, kind="stable")
        ct = ct[order]
        at = np.searchsorted(ct, tt, side="right") - 1  # last curve time <= t (time 0 is always a row)
        after = np.searchsorted(ct, tt, side="left")  # first curve time >= t
        vals = {c: part[c].to_numpy(dtype=float)[order][np.maximum(at, 0)] for c in value_cols}
        beyond = (tt > ct[-1]) | (at < 0)
        for c in value_cols:
            vals[c] = np.where(beyond, np.nan, vals[c])
        nr = part["n_risk"].to_numpy()[order]
        n_risk = np.where(after < ct.size, nr[np.minimum(after, ct.size - 1)], 0)
        parts.append(pd.DataFrame({"group": [g] * tt.size, "time": tt, "n_risk": n_risk.astype(nr.dtype),
                                   **vals}))
    out = (pd.concat(parts, ignore_index=True) if parts
           else pd.DataFrame({c: [] for c in CI_AT_COLUMNS}))
    if isinstance(ci_table["group"].dtype, pd.CategoricalDtype):
        out["group"] = pd.Categorical(out["group"], dtype=ci_table["group"].dtype)
    for key in ("n_missing", "missing"):
        if key in ci_table.attrs:
            out.attrs[key] = ci_table.attrs[key]
    return out[CI_AT_COLUMNS]


# --- Gray's test ---------------------------------------------------------------------------


def _gray_stratum(t, m, g, ng, rho):
    """Score (ng) and variance (ng x ng) of Gray's test in one stratum.

    A vectorised transcription of ``crst`` in cmprsk's Fortran (Gray 2000,
    GPL): ``m`` is 0 censored, 1 cause of interest, 2 other cause; ``g`` is
    the group index 0..ng-1.
    """
    ut, ti = np.unique(t, return_inverse=True)
    nt = ut.size
    cell = g * nt + ti

    def count(mask=None):
        c = np.bincount(cell if mask is None else cell[mask], minlength=ng * nt)
        return c.reshape(ng, nt).T.astype(float)  # (time, group)
    n_exit = count()
    d1 = count(m == 1)
    d2 = count(m == 2)
    rs = np.cumsum(n_exit[::-1], axis=0)[::-1]
    keep = (d1 + d2).sum(axis=1) > 0
    rs, d1, d2 = rs[keep], d1[keep], d2[keep]
    if rs.shape[0] == 0:
        return np.zeros(ng), np.zeros((ng, ng))
    pos = rs > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        td = d1 + d2
        skm = np.cumprod(np.where(pos, (rs - td) / rs, 1.0), axis=0)
        skmm = np.vstack([np.ones((1, ng)), skm[:-1]])
        f1 = np.cumsum(np.where(pos, skmm * d1 / rs, 0.0), axis=0)
        f1m = np.vstack([np.zeros((1, ng)), f1[:-1]])
        t1 = np.where(pos, rs / skmm, 0.0)
        tr = t1.sum(axis=1)
        tq = np.where(pos, rs * (1 - f1m) / skmm, 0.0).sum(axis=1)
        nd1 = d1.sum(axis=1)
        nd2 = d2.sum(axis=1)
        f = np.cumsum(nd1 / tr)
        fm = np.r_[0.0, f[:-1]]
        fb = (1 - fm) ** rho
        eye = np.eye(ng)
        # a_ij = fb t1_i (delta_ij - t1_j / tr): the diagonal as Fortran's t1 (1 - t1 / tr),
        # exactly 0 when only one group is at risk.
        a = fb[:, None, None] * t1[:, :, None] * (eye - (t1 / tr[:, None])[:, None, :])
        c = np.cumsum(a * (nd1 / (tr * (1 - fm)))[:, None, None], axis=0)
        score = (fb[:, None] * (d1 - nd1[:, None] * np.where(pos, t1 * (1 - f1m), 0.0) / tq[:, None])).sum(axis=0)
        # events of the cause of interest
        ok1 = pos & (nd1 > 0)[:, None]
        t4 = np.where(skm > 0, 1 - (1 - f[:, None]) / skm, 1.0)
        t5 = np.where(nd1[:, None] > 1, 1 - (nd1[:, None] - 1) / (tr[:, None] * skmm - 1), 1.0)
        t3 = np.where(ok1, t5 * skmm * nd1[:, None] / (tr[:, None] * rs), 0.0)
        t4 = np.where(ok1, t4, 0.0)
        w = a - t4[:, None, :] * c  # w[t, i, k] = a_ik - t4_k c_ik
        v = np.einsum("tik,tjk,tk->ij", w, w, t3)
        v3 = (t4 * t4 * t3).sum(axis=0)
        v2 = np.einsum("tik,tk->ik", w, t4 * t3)
        # events of other causes
        ok2 = (skm > 0) & (d2 > 0)
        t4b = np.where(ok2, (1 - f[:, None]) / skm, 0.0)
        t5b = np.where(d2 > 1, 1 - (d2 - 1) / (rs - 1), 1.0)
        t3b = np.where(ok2, t5b * skmm**2 * d2 / rs**2, 0.0)
        q = t4b * t4b * t3b
        v3 = v3 + q.sum(axis=0)
        v2 = v2 - np.einsum("tik,tk->ik", c, q)
        v = v + np.einsum("tik,tjk,tk->ij", c, c, q)
    cf = c[-1]
    v = v + (cf * v3) @ cf.T + cf @ v2.T + v2 @ cf.T
    return score, v


def _full_rank(v: np.ndarray, tol: float = 1e-7) -> bool:
    """Rank check in the spirit of R's qr(): pivoted QR, |R_jj| > tol |R_11|."""
    if not np.all(np.isfinite(v)):
        return False
    _, r, _ = linalg.qr(v, pivoting=True)
    d = np.abs(np.diag(r))
    return bool(d.size) and d[0] > 0 and bool(np.all(d > tol * d[0]))


def gray_test(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str,
    cause: int | Iterable[int] | None = 1,
    strata: str | None = None,
    *,
    rho: float = 0.0,
    weights: str | None = None,
) -> pd.DataFrame:
    """Gray's K-sample test that the cumulative incidence of a cause is equal across groups.

    Parameters
    ----------
    df : pandas.DataFrame
    duration : str
        Time to the first event or to censoring (>= 0).
    event : str
        0 = censored, 1 = event of interest, 2, 3, ... = competing events.
    group : str
        Column whose values are compared (at least two values present).
    cause : int, list of int or None, default 1
        The cause(s) to test; one row per cause. ``None`` tests every code
        present (as ``cmprsk::cuminc`` does).
    strata : str, optional
        Column of strata: scores and variances are summed over strata.
    rho : float, default 0
        Power of the weight ``(1 - F(t-))^rho`` (``cuminc``'s ``rho``).
    weights : None
        Not supported: Gray's test has no case-weighted form in
        ``cmprsk::cuminc`` (nor a published variance for one); passing a
        column raises :class:`NeutrostatsError`. Compare weighted curves
        with :func:`cumulative_incidence` (``weights=``) or use a weighted
        cause-specific Cox model
        (:func:`~neutrostats.stats.cox.cox_hazard_ratios` with weights).

    Returns
    -------
    pandas.DataFrame
        :data:`GRAY_COLUMNS` (the tidy test shape of
        :mod:`neutrostats.core.columns`), one row per cause: ``test``
        (``"gray"``); ``outcome`` (the cause, an event code); ``term`` (the
        ``group`` column's name); ``statistic``
        (chi-square); ``df`` (number of groups - 1); ``p_value`` (upper tail
        of the chi-square). Where the variance matrix is singular (e.g. no
        event of that cause) ``statistic`` and ``p_value`` are NaN
        (``cuminc`` reports -1). ``attrs["n_missing"]`` and
        ``attrs["missing"]``: rows left out because the duration, event,
        group or strata is missing (complete cases).

    Raises
    ------
    NeutrostatsError
        For the input problems :func:`cumulative_incidence` rejects, no
        ``group``, fewer than two groups, or ``weights``.

    Warns
    -----
    DataQualityWarning
        When rows are left out for missing values.

    Notes
    -----
    Reproduces ``cmprsk::cuminc(time, status, group, strata, rho)$Tests``
    (statistic to rounding error; the p-value is computed as an upper tail,
    where ``cuminc`` uses ``1 - pchisq``, which loses digits when small).
    The statistic compares, per group, weighted averages of the
    subdistribution hazards; its covariance is Gray's asymptotic one, a
    vectorised transcription of ``crstm`` (Fortran) of cmprsk.

    References
    ----------
    Gray RJ. A class of K-sample tests for comparing the cumulative
    incidence of a competing risk. Ann Stat 1988;16:1141-1154. Gray RJ,
    cmprsk package for R (``cuminc``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"t": rng.integers(1, 20, 200), "ev": rng.integers(0, 3, 200),
    ...                    "g": rng.choice(["a", "b"], 200)})
    >>> res = gray_test(df, "t", "ev", "g", cause=None)
    >>> res.columns.tolist(), res["outcome"].tolist(), res["df"].tolist()
    (['test', 'outcome', 'term', 'statistic', 'df', 'p_value'], [1, 2], [1, 1])
    """
    fn = "gray_test"
    if weights is not None:
        raise NeutrostatsError(
            f"{fn}: weights={weights!r}: Gray's test has no case-weighted version (cmprsk::cuminc takes no "
            "weights); use cumulative_incidence(..., weights=...) for weighted curves, or a weighted "
            "cause-specific Cox model (cox_hazard_ratios with weights) to compare groups"
        )
    if group is None:
        raise NeutrostatsError(f"{fn}: group is required, the column whose values are compared")
    chk, t, e, _, codes, labels = _prepare(df, duration, event, group, None, fn, strata=strata)
    ng = len(labels)
    if ng < 2:
        raise NeutrostatsError(
            f"{fn}: column {group!r} has {ng} value ({list(labels)}); the test compares at least two groups"
        )
    try:
        rho = float(rho)
    except (TypeError, ValueError):
        raise NeutrostatsError(f"{fn}: rho must be a number (0 = the usual test), found {rho!r}") from None
    present = sorted(int(c) for c in np.unique(e[e > 0]))
    if cause is None:
        causes = present
    elif isinstance(cause, (int, np.integer)) and not isinstance(cause, bool):
        causes = [_cause_code(cause, fn)]
    else:
        causes = [_cause_code(c, fn) for c in cause]  # type: ignore[union-attr]  # not a bool: checked above
    if strata is None:
        st_codes = np.zeros(len(t), dtype=np.int64)
    else:
        st_codes = pd.factorize(chk.data[strata], sort=True)[0]
    rows = []
    for k in causes:
        m = np.where(e == 0, 0, np.where(e == k, 1, 2))
        score, var = np.zeros(ng), np.zeros((ng, ng))
        for s_code in np.unique(st_codes):
            w = st_codes == s_code
            sc, v = _gray_stratum(t[w], m[w], codes[w], ng, rho)
            score, var = score + sc, var + v
        s1, v1 = score[:-1], var[:-1, :-1]
        if _full_rank(v1):
            stat = float(s1 @ np.linalg.solve(v1, s1))
            p = float(chi2.sf(stat, ng - 1))
        else:
            stat, p = np.nan, np.nan
        rows.append({"test": "gray", "outcome": k, "term": group, "statistic": stat, "df": ng - 1, "p_value": p})
    out = pd.DataFrame(rows, columns=GRAY_COLUMNS).astype(
        {"test": object, "outcome": np.int64, "term": object, "statistic": float, "df": np.int64,
         "p_value": float})
    return with_missing(out, chk)


# --- plot ------------------------------------------------------------------------------------


