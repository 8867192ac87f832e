"""Odds ratios by severity tier: crude, exact, mid-p, adjusted, Firth, trend.

One 2x2 table (:func:`odds_ratio`), every tier against the reference tier
(:func:`odds_ratios_by_tier`), several outcomes stacked for a forest plot
(:func:`odds_ratio_table`, :func:`plot_forest`), a trend across ordered
tiers (:func:`trend_test`) and a stratified pooled OR
(:func:`mantel_haenszel`).

Methods
-------
``wald``
    Woolf's interval on the log odds ratio; Wald z test. With
    ``correction="haldane"`` 0.5 is added to all four cells (Haldane-Anscombe)
    and ``method`` says ``wald_haldane``.
``exact``
    Conditional maximum-likelihood estimate with Fisher's exact interval and
    two-sided Fisher p-value (as R's ``fisher.test``).
``midp``
    Median-unbiased estimate with mid-p interval and two-sided mid-p value
    (as R epitools' ``oddsratio.midp``): the usual choice for small cells.
``logistic``
    Logistic regression with tier as a categorical term plus the ``adjust``
    covariates (statsmodels), Wald intervals.
``firth``
    Firth's penalised logistic regression with profile penalised-likelihood
    intervals and penalised likelihood-ratio p-values (as R's ``logistf``).

The exact and mid-p computations solve their equations on the log odds
scale to about 1e-12; R's ``fisher.test`` and epitools stop at ``uniroot``'s
default tolerance (about 1e-4), so they agree with these to about that.

Examples
--------
>>> from neutrostats import odds_ratio
>>> r = odds_ratio(exposed_events=12, exposed_nonevents=88, unexposed_events=30,
...                unexposed_nonevents=870, method="wald")
>>> round(r.estimate, 4), round(r.conf_low, 4), round(r.conf_high, 4)  # (12*870)/(88*30), exp(log OR -+ 1.96 SE)
(3.9545, 1.9551, 7.9989)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.distributions import chi2, norm
from neutrostats.core.lazy import lazy_module
from neutrostats.core.roots import brentq
from neutrostats.core.validate import (
    covariate_kinds,
    factor_levels,
    is_text,
    require_choice,
    require_columns,
    require_conf_level,
    require_dataframe,
    split_reference,
)
from neutrostats.core.threads import single_blas_thread
from neutrostats.stats.tte import missing_message, numeric_values
from neutrostats.errors import DataQualityWarning, NeutrostatsError, SeparationWarning, SmallCellWarning

special = lazy_module("scipy.special")

__all__ = [
    "OddsRatio",
    "OR_METHODS",
    "OR_COLUMNS",
    "odds_ratio",
    "odds_ratios_by_tier",
    "odds_ratio_table",
    "trend_test",
    "mantel_haenszel",
    "MantelHaenszel",
    "natural_spline_basis",
]

#: Methods of :func:`odds_ratio` (first three) and :func:`odds_ratios_by_tier` (all).
OR_METHODS = ("wald", "exact", "midp", "logistic", "firth")
#: Columns of every odds-ratio table, in order.
OR_COLUMNS = [
    "outcome", "group", "n", "n_event", "estimate", "std_error", "conf_low", "conf_high",
    "p_value", "method", "estimable", "note", "is_reference",
]


@dataclass(frozen=True)
class OddsRatio:
    """One odds ratio with its interval.

    Attributes
    ----------
    estimate : float
        The odds ratio (0 or inf where the data put it there).
    conf_low, conf_high : float
        Interval at ``conf_level``.
    p_value : float
        Two-sided p-value for OR = 1 (NaN where undefined).
    std_error : float
        Standard error of the log odds ratio (Wald only; NaN otherwise).
    method : str
        ``wald``, ``wald_haldane``, ``exact`` or ``midp``.
    conf_level : float
    """

    estimate: float
    conf_low: float
    conf_high: float
    p_value: float
    std_error: float
    method: str
    conf_level: float


def _count(value: Any, name: str, fn: str) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = np.nan
    if not np.isfinite(f) or f < 0 or f != np.floor(f):
        raise NeutrostatsError(f"{fn}: {name} must be a whole number >= 0, found {value!r}")
    return int(f)


def odds_ratio(
    *,
    exposed_events: int,
    exposed_nonevents: int,
    unexposed_events: int,
    unexposed_nonevents: int,
    method: str = "midp",
    conf_level: float = 0.95,
    correction: str = "none",
) -> OddsRatio:
    """Odds ratio of one 2x2 table, exposed against unexposed.

    Parameters
    ----------
    exposed_events, exposed_nonevents, unexposed_events, unexposed_nonevents : int
        The four cells, by name.
    method : {"midp", "exact", "wald"}, default "midp"
        See the module description.
    conf_level : float, default 0.95
    correction : {"none", "haldane"}, default "none"
        ``"haldane"`` adds 0.5 to every cell (Wald only). Without it a zero
        cell gives an estimate of 0 or inf and the interval the method
        honestly gives (Wald: 0 to inf).

    Returns
    -------
    OddsRatio

    Raises
    ------
    NeutrostatsError
        For negative or fractional counts, an unknown method, a correction
        with a method other than Wald, or a table without exposed or
        unexposed persons.

    Warns
    -----
    SmallCellWarning
        Wald without correction on a table with a cell under 5.

    References
    ----------
    Woolf B. Ann Hum Genet 1955;19:251. Rothman KJ, Greenland S, Lash TL.
    Modern Epidemiology, 3rd ed., ch. 14 (mid-p and median-unbiased estimates).

    Examples
    --------
    >>> r = odds_ratio(exposed_events=3, exposed_nonevents=7, unexposed_events=10,
    ...                unexposed_nonevents=190, method="midp")
    >>> r.method, r.conf_low < r.estimate < r.conf_high, r.p_value < 0.05
    ('midp', True, True)
    >>> odds_ratio(exposed_events=0, exposed_nonevents=20, unexposed_events=10,
    ...            unexposed_nonevents=190, method="wald", correction="haldane").method
    'wald_haldane'
    """
    fn = "odds_ratio"
    a = _count(exposed_events, "exposed_events", fn)
    b = _count(exposed_nonevents, "exposed_nonevents", fn)
    c = _count(unexposed_events, "unexposed_events", fn)
    d = _count(unexposed_nonevents, "unexposed_nonevents", fn)
    require_choice(method, ("wald", "exact", "midp"), fn, "method")
    require_choice(correction, ("none", "haldane"), fn, "correction")
    level = require_conf_level(conf_level, fn)
    if correction != "none" and method != "wald":
        raise NeutrostatsError(
            f"{fn}: correction='haldane' applies to the Wald method only; exact and mid-p methods "
            "handle zero cells without it. Use method='wald' or correction='none'."
        )
    if a + b == 0 or c + d == 0:
        raise NeutrostatsError(
            f"{fn}: the table needs exposed and unexposed persons, found {a + b} exposed and {c + d} unexposed"
        )
    if method == "wald":
        return _wald(a, b, c, d, level, correction == "haldane")
    if a + c == 0 or b + d == 0:
        # Nobody (or everybody) had the event: the conditional distribution
        # is a single point and carries no information about the OR.
        return OddsRatio(np.nan, 0.0, np.inf, 1.0, np.nan, method, level)
    return _conditional(a, b, c, d, level, method)


def _wald(a, b, c, d, level, haldane) -> OddsRatio:
    if haldane:
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    elif min(a, b, c, d) < 5:
        warnings.warn(
            f"odds_ratio: a cell of the table ({a}, {b}, {c}, {d}) is under 5, where Wald intervals are "
            "unreliable; method='midp' or 'exact' is better for small cells",
            SmallCellWarning,
            stacklevel=3,
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        est = (a * d) / (b * c) if b * c > 0 else (np.inf if a * d > 0 else np.nan)
        se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d) if min(a, b, c, d) > 0 else np.inf
        z = norm.ppf(0.5 + level / 2)
        log_est = np.log(est) if est > 0 else -np.inf
        if np.isfinite(se) and np.isfinite(log_est):
            lo, hi = np.exp(log_est - z * se), np.exp(log_est + z * se)
            p = 2 * norm.sf(abs(log_est / se))
        else:
            lo, hi, p = 0.0, np.inf, np.nan
    return OddsRatio(float(est), float(lo), float(hi), float(p), float(se), "wald_haldane" if haldane else "wald", level)


class _NonCentralHypergeometric:
    """Distribution of the exposed-event count given all margins (Fisher's)."""

    def __init__(self, a, b, c, d):
        m1, m0, t = a + b, c + d, a + c
        self.lo, self.hi = max(0, t - m0), min(m1, t)
        self.x = np.arange(self.lo, self.hi + 1)
        self.logc = (
            special.gammaln(m1 + 1) - special.gammaln(self.x + 1) - special.gammaln(m1 - self.x + 1)
            + special.gammaln(m0 + 1) - special.gammaln(t - self.x + 1) - special.gammaln(m0 - t + self.x + 1)
        )
        self.a = a

    def pmf(self, theta: float) -> np.ndarray:
        w = self.logc + self.x * theta
        w -= w.max()
        p = np.exp(w)
        return p / p.sum()

    def mean(self, theta):
        return float(np.dot(self.x, self.pmf(theta)))

    def tails(self, theta):
        """(P(X < a), P(X = a), P(X > a))."""
        p = self.pmf(theta)
        i = self.a - self.lo
        return float(p[:i].sum()), float(p[i]), float(p[i + 1:].sum())


def _solve(f, target_increasing: bool) -> float:
    """Root in theta (log OR) of a monotone f, growing the bracket as needed."""
    lo, hi = -1.0, 1.0
    sign = 1 if target_increasing else -1
    for _ in range(60):
        if sign * f(lo) < 0:
            break
        lo *= 2
    for _ in range(60):
        if sign * f(hi) > 0:
            break
        hi *= 2
    return brentq(f, lo, hi, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=500)


def _conditional(a, b, c, d, level, method) -> OddsRatio:
    dist = _NonCentralHypergeometric(a, b, c, d)
    alpha = 1 - level
    at_lo, at_hi = a == dist.lo, a == dist.hi
    if method == "exact":
        if at_lo:
            est = 0.0
        elif at_hi:
            est = np.inf
        else:
            est = np.exp(_solve(lambda t: dist.mean(t) - a, True))
        lo = 0.0 if at_lo else np.exp(_solve(lambda t: sum(dist.tails(t)[1:]) - alpha / 2, True))
        hi = np.inf if at_hi else np.exp(_solve(lambda t: sum(dist.tails(t)[:2]) - alpha / 2, False))
        p1 = dist.pmf(0.0)
        # R's fisher.test: tables as likely as, or less likely than, the
        # observed one, with a relative tolerance of 1e-7 for ties.
        p = float(p1[p1 <= p1[a - dist.lo] * (1 + 1e-7)].sum())
    else:
        def below(t):  # P(X < a) + P(X = a) / 2
            lt, eq, _ = dist.tails(t)
            return lt + eq / 2

        def above(t):
            _, eq, gt = dist.tails(t)
            return gt + eq / 2

        est = 0.0 if at_lo else (np.inf if at_hi else np.exp(_solve(lambda t: above(t) - below(t), True)))
        lo = 0.0 if at_lo else np.exp(_solve(lambda t: above(t) - alpha / 2, True))
        hi = np.inf if at_hi else np.exp(_solve(lambda t: below(t) - alpha / 2, False))
        p = float(min(1.0, 2 * min(below(0.0), above(0.0))))
    return OddsRatio(float(est), float(lo), float(hi), min(p, 1.0), np.nan, method, level)


# --- by tier ------------------------------------------------------------------------


def _outcome_frame(cohort_table, outcome, tier, fn, covariates=()):
    cohort_table = require_dataframe(cohort_table, fn, "cohort_table", allow_empty=False)
    require_columns(cohort_table, [outcome, tier], fn, "Pass the cohort table of build_cohort and an outcome column.")
    t = cohort_table[tier]
    if not isinstance(t.dtype, pd.CategoricalDtype):
        raise NeutrostatsError(
            f"{fn}: column {tier!r} must be an ordered Categorical of tiers (as build_cohort makes), found {t.dtype}; "
            "convert it with pandas.Categorical(values, categories=[...], ordered=True)"
        )
    keep = cohort_table[outcome].notna()
    prevalent = f"{outcome}_prevalent"
    if prevalent in cohort_table.columns:
        # Persons who had the outcome at the index date are not at risk.
        keep &= ~cohort_table[prevalent].fillna(False).astype(bool)
    # Only the columns needed: a cohort table is wide, and copying all of it
    # for every outcome would cost more than the statistics.
    wanted = list(dict.fromkeys([outcome, tier, *[c for c in covariates if c in cohort_table.columns]]))
    data = cohort_table.loc[keep.to_numpy(), wanted]
    y = data[outcome]
    if is_text(y.dtype) or isinstance(y.dtype, pd.CategoricalDtype):
        bad = ~y.isin([0, 1, True, False])
        if bad.any():
            raise NeutrostatsError(
                f"{fn}: outcome {outcome!r} must be 0/1 or boolean, found values such as {y[bad].iloc[:3].tolist()}"
            )
    yv = y.astype(float).to_numpy()
    if np.any((yv != 0) & (yv != 1)):
        raise NeutrostatsError(f"{fn}: outcome {outcome!r} must be 0/1 or boolean, found other numbers")
    return data, yv


def _counts_by_tier(data, y, tier):
    cats = data[tier].cat.categories
    codes = data[tier].cat.codes.to_numpy()
    ok = codes >= 0
    n = np.bincount(codes[ok], minlength=len(cats))
    events = np.bincount(codes[ok], weights=y[ok], minlength=len(cats)).astype(np.int64)
    return cats, n, events


def _support_note(n, events, i, r) -> str:
    """Why row ``i`` (against reference ``r``) has no finite maximum-likelihood OR; "" when it has one.

    An OR needs events and non-events both in the tier and in the reference
    tier; without them the likelihood has no maximum (ML runs off to 0 or
    infinity, exact methods sit at the end of their support, Firth's
    estimate is finite only through its penalty).
    """
    def lacks(j, where):
        if n[j] == 0:
            return f"no persons in {where}"
        if events[j] == 0:
            return f"no events in {where}"
        if events[j] == n[j]:
            return f"every person in {where} had the event"
        return ""

    reasons = [lacks(r, "the reference tier")] if i == r else [lacks(i, "this tier"), lacks(r, "the reference tier")]
    return "; ".join(x for x in reasons if x)


def odds_ratios_by_tier(
    cohort_table: pd.DataFrame,
    outcome: str,
    *,
    tier: str = "tier",
    reference: str | None = None,
    method: str = "midp",
    adjust: list[str] | None = None,
    spline: dict[str, int] | None = None,
    conf_level: float = 0.95,
    correction: str = "none",
    categorical: list[str] | None = None,
    weights: str | None = None,
    robust: bool = False,
    cluster: str | None = None,
) -> pd.DataFrame:
    """Odds ratio of an outcome in every tier against the reference tier.

    Parameters
    ----------
    cohort_table : pandas.DataFrame
        One row per person, e.g. ``build_cohort(...).table``. Rows with the
        outcome missing, or marked ``<outcome>_prevalent``, are not at risk
        and left out.
    outcome : str
        0/1 or boolean column.
    tier : str, default "tier"
        Ordered Categorical column of tiers.
    reference : str or mapping, optional
        Reference tier; default the first (mildest, normal) category. A
        mapping ``{column: level}`` sets the reference level of the tier
        column and of any categorical covariate of ``adjust`` (as R's
        ``relevel()``), e.g. ``reference={"tier": "normal", "sex": "F"}``;
        a column that is neither, a numeric or boolean covariate, or a level
        not found among the complete cases raises, naming the levels found.
        The tier odds ratios do not depend on a covariate's reference level.
    method : {"midp", "exact", "wald", "logistic", "firth"}, default "midp"
        See the module description. ``logistic`` and ``firth`` fit one
        model with tier as a categorical term (plus ``adjust``).
    adjust : list of str, optional
        Covariates for ``logistic``/``firth``: numeric columns enter as they
        are, boolean ones as one indicator, categorical ones (a
        Categorical, a text column none of whose values reads as a number,
        or a column named in ``categorical``) as indicator terms. The
        reference level is the first as R's ``factor()`` orders them: a
        Categorical's first category (its declared order, ordered or not),
        else the first sorted level (text sorted as text, numbers in numeric
        order); ``reference=`` overrides it. A text column of numbers, or of numbers with some
        text (``"old"`` among ages), raises. Rows missing the tier or any
        covariate are left out (complete cases), counted in
        ``attrs["n_missing"]`` (per column in ``attrs["missing"]``) and
        announced with a :class:`~neutrostats.errors.DataQualityWarning`.
    spline : dict of str to int, optional
        Covariates of ``adjust`` to enter as natural cubic splines with the
        given degrees of freedom (knots at quantiles, as R's ``splines::ns``).
    conf_level : float, default 0.95
    correction : {"none", "haldane"}, default "none"
        For ``wald`` only.
    categorical : list of str, optional
        Columns of ``adjust`` to enter as factors whatever their values (a
        numeric code such as 1/2/3 becomes one indicator per level but the
        first).
    weights : str, optional
        Column of case weights (finite, >= 0) for ``logistic`` and
        ``firth``, as R's ``glm(..., family = binomial, weights = w)`` and
        ``brglm2``'s ``brglmFit`` with ``weights``: each person's
        log-likelihood term (and, for Firth, the information in the
        penalty) counts with its weight; standard errors are the
        model-based ones of the weighted fit (R's ``summary.glm``; no
        robust variance). A missing weight is a missing value (left out,
        counted in ``attrs["missing"]``); text, infinite or negative
        weights raise; persons of weight 0 are left out of the fit and
        counted in ``attrs["n_zero_weight"]``. ``n`` and ``n_event`` stay
        counts of persons (unweighted). The 2x2 methods (``wald``,
        ``exact``, ``midp``) have no weighted version and raise.
    robust : bool, default False
        ``logistic`` only: standard errors, intervals and p-values from the
        heteroskedasticity-consistent sandwich ``B M B`` (``B`` the inverse
        information, ``M`` the sum of the outer products of the weighted
        score contributions ``w_i (y_i - p_i) x_i``), without a
        small-sample factor: R's ``sandwich::vcovHC(fit, type = "HC0")``.
    cluster : str, optional
        ``logistic`` only: column of cluster ids (e.g. the person when
        persons have several rows, or the practice): the cluster-robust
        sandwich, whose score contributions are summed within clusters,
        times ``G / (G - 1)`` for ``G`` clusters: R's
        ``sandwich::vcovCL(fit, cluster = ~id, type = "HC0")`` with its
        default ``cadjust = TRUE``. Implies ``robust``; a missing id leaves
        the row out (complete cases). ``attrs["variance"]`` of a logistic
        result says ``"model"``, ``"robust"`` or ``"cluster"``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`OR_COLUMNS` (the vocabulary of
        :mod:`neutrostats.core.columns`): ``outcome``, ``group`` (the tier:
        the ordered Categorical of ``tier``), ``n`` (persons at risk in the
        tier), ``n_event`` (persons with the outcome among them),
        ``estimate`` (OR; 1 for the reference), ``std_error`` (of the log
        OR; NaN for exact and mid-p), ``conf_low``, ``conf_high``,
        ``p_value``, ``method``, ``estimable``, ``note``,
        ``is_reference``. One row per tier in tier order; a tier without
        persons has NaN estimates.

        ``estimable`` (bool) is False where the data give no finite
        maximum-likelihood OR: the tier, or the reference tier, has no
        events or only events (or no persons), or the model did not
        converge; the reference row is estimable when its tier has events
        and non-events. ``note`` says why in a short phrase ("no events in
        this tier", "every person in this tier had the event", "no events
        in the reference tier", ...; "" when estimable). What each method
        reports on such rows:

        * ``wald``: the limit, 0 or inf (NaN for 0/0), interval 0 to inf,
          no p-value; ``wald_haldane``: finite numbers from the +0.5 cells.
        * ``exact`` and ``midp``: 0 or inf with the one-sided interval the
          method gives (no events in the tier: estimate 0, interval from 0
          to a finite upper limit) and its p-value; NaN, 0 to inf and
          p = 1 when nobody in either tier had the event (or everybody).
        * ``logistic``: NaN estimate, interval and p-value (maximum
          likelihood has no finite estimate).
        * ``firth``: the penalised estimate and its profile interval,
          finite only through the penalty; ``method`` says ``firth``.

    Raises
    ------
    NeutrostatsError
        For an empty table, missing columns, a tier column that is not
        Categorical, an outcome that is not 0/1, an unknown reference,
        method or covariate, a covariate mixing numbers and text or holding
        numbers written as text, ``categorical`` naming a column not in
        ``adjust``.

    Warns
    -----
    SeparationWarning
        ``logistic`` with a tier (the reference tier included, or a
        covariate level) where nobody or everybody had the outcome: the OR
        of that tier (every tier, for the reference) is NaN and not
        estimable; use ``method="firth"``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"tier": pd.Categorical(["normal"] * 200 + ["mild"] * 20,
    ...                                          categories=["normal", "mild"], ordered=True),
    ...                   "hiv": [1] * 4 + [0] * 196 + [1] * 3 + [0] * 17})
    >>> res = odds_ratios_by_tier(t, "hiv", method="wald", correction="haldane")
    >>> res[["group", "n", "n_event", "estimate", "method", "is_reference"]].round(4)  # (3.5*196.5)/(17.5*4.5)
        group    n  n_event  estimate        method  is_reference
    0  normal  200        4    1.0000  wald_haldane          True
    1    mild   20        3    8.7333  wald_haldane         False

    Case weights (logistic or Firth): a weight of 2 on the 3 mild persons
    with the event makes the crude odds ratio (3 * 2 * 196) / (17 * 4); ``n``
    and ``n_event`` still count persons.

    >>> t["w"] = [1.0] * 200 + [2.0] * 3 + [1.0] * 17
    >>> res = odds_ratios_by_tier(t, "hiv", method="logistic", weights="w")
    >>> res[["group", "n", "n_event", "estimate"]].round(4)
        group    n  n_event  estimate
    0  normal  200        4    1.0000
    1    mild   20        3   17.2941
    """
    fn = "odds_ratios_by_tier"
    require_choice(method, OR_METHODS, fn, "method")
    level = require_conf_level(conf_level, fn)
    cohort_table = require_dataframe(cohort_table, fn, "cohort_table", allow_empty=False)
    if weights is not None and method not in ("logistic", "firth"):
        raise NeutrostatsError(
            f"{fn}: weights= needs method='logistic' or 'firth' (a weighted logistic or Firth regression, as R's "
            f"glm(weights=)); method={method!r} counts persons in a 2x2 table and has no weighted version"
        )
    if weights is not None:
        require_columns(cohort_table, [weights], fn, "Pass weights= the name of a column of case weights.")
        if weights in (tier, outcome, *(adjust or [])):
            raise NeutrostatsError(f"{fn}: the weights column {weights!r} is also the outcome, the tier or a "
                                   "covariate; pass a separate column of case weights")
    if adjust is not None and isinstance(adjust, str):
        adjust = [adjust]
    if categorical and not adjust:
        raise NeutrostatsError(f"{fn}: categorical= names covariates of adjust=, but adjust= is empty")
    kinds = {}
    if adjust:
        require_columns(cohort_table, adjust, fn, "Name covariates that are columns of the cohort table.")
        # Judged on the whole column, so that a stray text value is reported wherever it sits.
        kinds = covariate_kinds(cohort_table, adjust, fn, categorical=categorical)
    _check_variance(cohort_table, method, robust, cluster, fn)
    extra = [c for c in (weights, cluster) if c is not None]
    data, y = _outcome_frame(cohort_table, outcome, tier, fn, covariates=[*(adjust or []), *extra])
    if weights is not None:
        # Text or dates raise here; a missing weight is a missing value like any other.
        data = data.assign(**{weights: numeric_values(
            data[weights], weights, fn, "case weights",
            f"pass case weights as finite numbers >= 0 (e.g. inverse-probability weights), weights={weights!r}")})
    # Complete cases over the tier and the covariates, counted and announced
    # as in the time-to-event functions (persons with a prevalent outcome are
    # not at risk, not missing).
    used = [c for c in dict.fromkeys([tier, *(adjust or []), *extra]) if c in data.columns]
    absent = data[used].isna()
    missing = {c: int(k) for c, k in absent.sum().items() if k}
    incomplete = absent.any(axis=1).to_numpy()
    n_missing = int(incomplete.sum())
    if n_missing:
        warnings.warn(missing_message(fn, n_missing, len(data), missing), DataQualityWarning, stacklevel=2)
        data, y = data.loc[~incomplete], y[~incomplete]
    reference, levels_ref = split_reference(reference, fn, group=tier, covariates=adjust or [], kinds=kinds)
    w, n_zero = None, 0
    if weights is not None:
        data, y, w, n_zero = _positive_weights(data, y, weights, fn)
    cats = data[tier].cat.categories
    ref = cats[0] if reference is None else reference
    if ref not in cats:
        raise NeutrostatsError(f"{fn}: reference {reference!r} is not a tier; tiers are {list(cats)}")
    if adjust and method not in ("logistic", "firth"):
        raise NeutrostatsError(
            f"{fn}: adjust= needs method='logistic' or 'firth' (a 2x2 method cannot adjust), found method={method!r}"
        )
    if method in ("logistic", "firth"):
        cl = None if cluster is None else pd.factorize(data[cluster])[0]
        rows = _model_rows(data, y, outcome, tier, ref, method, adjust or [], spline or {}, level, fn, kinds,
                           levels_ref=levels_ref, weights=w, variance=(bool(robust), cl))
    else:
        rows = _table_rows(data, y, tier, ref, method, level, correction)
    out = pd.DataFrame(rows)
    out.insert(0, "outcome", outcome)
    out["group"] = pd.Categorical(out["group"], dtype=data[tier].dtype)
    out = _mark_support(out, method)
    out = out[OR_COLUMNS]
    out.attrs["n_missing"] = n_missing
    out.attrs["missing"] = missing
    out.attrs["n_zero_weight"] = n_zero
    if method == "logistic":
        out.attrs["variance"] = "cluster" if cluster is not None else ("robust" if robust else "model")
    return out


def _check_variance(cohort_table, method, robust, cluster, fn):
    if not isinstance(robust, (bool, np.bool_)):
        raise NeutrostatsError(f"{fn}: robust must be True or False, found {robust!r}")
    if (robust or cluster is not None) and method != "logistic":
        raise NeutrostatsError(f"{fn}: robust= and cluster= (sandwich standard errors) need method='logistic', "
                               f"found method={method!r}")
    if cluster is not None:
        require_columns(cohort_table, [cluster], fn, "Pass cluster= the name of the column of cluster ids.")


def _table_rows(data, y, tier, ref, method, level, correction) -> list[dict]:
    """One row per tier from the 2x2 table of the tier against the reference (wald, exact, midp)."""
    cats, n, events = _counts_by_tier(data, y, tier)
    r = list(cats).index(ref)
    rows = []
    for i, level_name in enumerate(cats):
        row = {"group": level_name, "n": int(n[i]), "n_event": int(events[i])}
        if i == r:
            row.update(estimate=1.0, std_error=np.nan, conf_low=np.nan, conf_high=np.nan, p_value=np.nan,
                       method=method if correction == "none" else "wald_haldane", is_reference=True)
        elif n[i] == 0:
            row.update(estimate=np.nan, std_error=np.nan, conf_low=np.nan, conf_high=np.nan, p_value=np.nan,
                       method=method if correction == "none" else "wald_haldane", is_reference=False)
        else:
            res = odds_ratio(
                exposed_events=events[i], exposed_nonevents=n[i] - events[i],
                unexposed_events=events[r], unexposed_nonevents=n[r] - events[r],
                method=method, conf_level=level, correction=correction,
            )
            row.update(estimate=res.estimate, std_error=res.std_error, conf_low=res.conf_low,
                       conf_high=res.conf_high, p_value=res.p_value, method=res.method, is_reference=False)
        rows.append(row)
    return rows


def _positive_weights(data, y, weights, fn):
    """Rows with a positive case weight, their weights, and how many rows had weight 0; raise on bad weights."""
    w = data[weights].to_numpy(dtype=float)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise NeutrostatsError(
            f"{fn}: column {weights!r} (case weights) must hold finite numbers >= 0, found {int(bad.sum())} of "
            f"{w.size} rows that are not (e.g. {w[bad][:3].tolist()}); fix those weights, or leave them missing "
            "(NaN) to leave the rows out"
        )
    pos = w > 0
    if not pos.any():
        raise NeutrostatsError(f"{fn}: column {weights!r} (case weights) is 0 in every one of the {w.size} rows "
                               "used; at least one row needs a positive weight")
    # A person of weight 0 adds nothing to the weighted likelihood; leaving them out also keeps them out
    # of the event counts that decide separation.
    return data.loc[pos], y[pos], w[pos], int((~pos).sum())


def _mark_support(out: pd.DataFrame, method: str) -> pd.DataFrame:
    """Add ``estimable`` and ``note``; blank the ML numbers of rows without support."""
    n, events = out["n"].to_numpy(), out["n_event"].to_numpy()
    ref = out["is_reference"].to_numpy(dtype=bool)
    r = int(np.flatnonzero(ref)[0])
    note = np.array([_support_note(n, events, i, r) for i in range(len(out))], dtype=object)
    est = out["estimate"].to_numpy(dtype=float)
    if method == "logistic":
        # Maximum likelihood has no finite estimate there: no number at all
        # rather than a huge or tiny one that reads like a result.
        blank = (note != "") & ~ref
        out = out.assign(**{c: out[c].astype(float).mask(blank) for c in
                            ("estimate", "std_error", "conf_low", "conf_high", "p_value")})
        est = out["estimate"].to_numpy(dtype=float)
        failed = (note == "") & ~ref & ~np.isfinite(est)
        note[failed] = "no finite estimate: the logistic model did not converge"
    else:
        failed = (note == "") & ~ref & np.isnan(est)
        note[failed] = f"no finite estimate ({method} did not converge)"
    return out.assign(estimable=(note == "") & np.isfinite(est), note=note.astype(str))


def natural_spline_basis(x: Any, df: int, knots: Any = None, boundary_knots: Any = None) -> np.ndarray:
    """Natural cubic spline basis (no intercept), spanning the space of R's ``splines::ns``.

    Parameters
    ----------
    x : array-like of float
    df : int
        Degrees of freedom (columns); ``df - 1`` interior knots at the
        quantiles of ``x`` unless ``knots`` are given.
    knots, boundary_knots : array-like, optional
        Interior and boundary knots (default: quantiles and the range of x).

    Returns
    -------
    numpy.ndarray
        ``len(x)`` by ``df`` matrix. The columns differ from R's B-spline
        form but span the same functions, so the other terms of a model fit
        with either are identical.

    Examples
    --------
    >>> natural_spline_basis([20, 30, 40, 50, 60], df=2).shape
    (5, 2)
    """
    x = np.asarray(x, dtype=float)
    if not isinstance(df, (int, np.integer)) or df < 1:
        raise NeutrostatsError(f"natural_spline_basis: df must be a whole number >= 1, found {df!r}")
    lo, hi = (np.min(x), np.max(x)) if boundary_knots is None else tuple(boundary_knots)
    if knots is None:
        knots = np.quantile(x, np.linspace(0, 1, df + 1)[1:-1]) if df > 1 else np.array([])
    xi = np.concatenate([[lo], np.asarray(knots, dtype=float), [hi]])
    k = xi.size

    def d(j):
        return (np.clip(x - xi[j], 0, None) ** 3 - np.clip(x - xi[k - 1], 0, None) ** 3) / (xi[k - 1] - xi[j])

    # Hastie, Tibshirani & Friedman (ESL, eq. 5.4-5.5): linear beyond the
    # boundary knots, cubic between.
    cols = [x] + [d(j) - d(k - 2) for j in range(k - 2)]
    return np.column_stack(cols)


def _design(data, tier, ref, adjust, spline, fn, kinds, levels_ref=None):
    """Design matrix: intercept, tier indicators, covariates; names of the tier columns."""
    cats = list(data[tier].cat.categories)
    codes = data[tier].cat.codes.to_numpy()
    r = cats.index(ref)
    cols, names = [np.ones(len(data))], ["(Intercept)"]
    tier_cols = {}
    for i, c in enumerate(cats):
        if i == r:
            continue
        tier_cols[c] = len(cols)
        cols.append((codes == i).astype(float))
        names.append(f"tier[{c}]")
    for cov in adjust:
        v = data[cov]
        if cov in spline:
            if kinds[cov] != "numeric":
                raise NeutrostatsError(f"{fn}: spline= names {cov!r}, which is {kinds[cov]}, not numeric; "
                                       "splines need a numeric covariate")
            basis = natural_spline_basis(pd.to_numeric(v).to_numpy(dtype=float), int(spline[cov]))
            for j in range(basis.shape[1]):
                cols.append(basis[:, j])
                names.append(f"ns({cov})[{j + 1}]")
        elif kinds[cov] == "boolean":
            cols.append(v.to_numpy(dtype=float))
            names.append(f"{cov}[True]")
        elif kinds[cov] == "numeric":
            cols.append(pd.to_numeric(v).to_numpy(dtype=float))
            names.append(cov)
        else:
            levels = factor_levels(v, (levels_ref or {}).get(cov), column=cov, function=fn)
            for lev in levels[1:]:
                cols.append((v == lev).to_numpy(dtype=float))
                names.append(f"{cov}[{lev}]")
    unknown = [k for k in spline if k not in adjust]
    if unknown:
        raise NeutrostatsError(f"{fn}: spline= names {unknown}, which are not in adjust={adjust}")
    return np.column_stack(cols), names, tier_cols


def _model_rows(data, y, outcome, tier, ref, method, adjust, spline, level, fn, kinds, levels_ref=None,
                weights=None, variance=(False, None)):
    require_columns(data, adjust, fn, "Name covariates that are columns of the cohort table.")
    complete = data[adjust].notna().all(axis=1).to_numpy() & (data[tier].cat.codes.to_numpy() >= 0)
    data, y = data.loc[complete], y[complete]
    w = None if weights is None else weights[complete]
    variance = (variance[0], None if variance[1] is None else variance[1][complete])
    cats, n, events = _counts_by_tier(data, y, tier)
    X, names, tier_cols = _design(data, tier, ref, adjust, spline, fn, kinds, levels_ref)
    # Tiers without persons cannot be estimated; drop their empty columns.
    empty = [c for c in tier_cols if n[list(cats).index(c)] == 0]
    separated = [c for c in tier_cols if c not in empty and events[list(cats).index(c)] in (0, n[list(cats).index(c)])]
    keep_cols = [j for j in range(X.shape[1]) if not (names[j].startswith("tier[") and names[j][5:-1] in empty)]
    r = list(cats).index(ref)
    ref_separated = bool(events[r] in (0, n[r]))
    if method == "logistic" and ref_separated:
        warnings.warn(
            f"{fn}: the reference tier {ref!r} of {outcome!r} has {'no events' if events[r] == 0 else 'only events'} "
            f"among {n[r]} persons: quasi-complete separation, so logistic regression has no finite odds ratio "
            "against it (reported as not estimable, NaN). Use method='firth' or another reference=.",
            SeparationWarning,
            stacklevel=3,
        )
    elif method == "logistic" and separated:
        warnings.warn(
            f"{fn}: tier(s) {separated} of {outcome!r} have no events (or only events): quasi-complete separation, "
            "so logistic regression has no finite estimate there (reported as not estimable, NaN). "
            "Use method='firth'.",
            SeparationWarning,
            stacklevel=3,
        )
    Xk = X[:, keep_cols]
    namesk = [names[j] for j in keep_cols]
    z = norm.ppf(0.5 + level / 2)
    if method == "logistic" and ref_separated:
        # Every tier's OR against this reference is infinite: nothing to fit.
        est = se = p = lo = hi = np.full(Xk.shape[1], np.nan)
    elif method == "logistic":
        est, se, p = _fit_logit(Xk, y, separated_cols=[namesk.index(f"tier[{c}]") for c in separated], fn=fn,
                                weights=w, variance=variance)
        lo, hi = est - z * se, est + z * se
    else:
        from neutrostats.stats.firth import firth_logit

        tier_idx = [namesk.index(f"tier[{c}]") for c in tier_cols if c not in empty]
        # Only the tiers' rows are returned: the covariates need neither profile limits nor tests.
        fit = firth_logit(Xk, y, conf_level=level, profile=tier_idx, tests=tier_idx, weights=w)
        est, se, p, lo, hi = fit.params, fit.bse, fit.pvalues, fit.conf_low, fit.conf_high
    rows = []
    for i, c in enumerate(cats):
        row = {"group": c, "n": int(n[i]), "n_event": int(events[i]), "method": method}
        if c == ref:
            row.update(estimate=1.0, std_error=np.nan, conf_low=np.nan, conf_high=np.nan, p_value=np.nan,
                       is_reference=True)
        elif c in empty:
            row.update(estimate=np.nan, std_error=np.nan, conf_low=np.nan, conf_high=np.nan, p_value=np.nan,
                       is_reference=False)
        else:
            j = namesk.index(f"tier[{c}]")
            if method == "logistic" and (c in separated or ref_separated):
                row.update(estimate=np.nan, std_error=np.nan, conf_low=np.nan, conf_high=np.nan, p_value=np.nan,
                           is_reference=False)
            else:
                row.update(estimate=float(np.exp(est[j])), std_error=float(se[j]), conf_low=float(np.exp(lo[j])),
                           conf_high=float(np.exp(hi[j])), p_value=float(p[j]), is_reference=False)
        rows.append(row)
    return rows


class _NoConvergence(Exception):
    """Newton's method for the logistic model stopped without a usable fit (the reason is the message)."""


def _newton_logit(X: np.ndarray, y: np.ndarray, maxiter: int = 100, tol: float = 1e-8,
                  ridge: float = 1e-10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression by Newton-Raphson: (params, covariance, fitted probabilities).

    The same iteration as statsmodels' ``Logit(y, X).fit(method="newton")``
    (version 0.14-0.15: start at 0, the mean Hessian with 1e-10 added to its
    diagonal, stop when no coefficient moves by more than ``tol``, the
    covariance the inverse of the unridged Hessian at the estimate), written
    with the same array expressions, so that the estimates and standard
    errors are the same to the last bit. What it leaves out is what made the
    statsmodels fit several times slower on a registry-sized cohort: a rank
    check by QR decomposition of the whole design, and three evaluations of
    the fitted probabilities per step (score, Hessian, perfect-prediction
    check) where one does.

    Raises ``_NoConvergence`` where statsmodels warns: perfect prediction
    after a step (``np.allclose(fitted, y)``: separation) or ``maxiter``
    steps without convergence; ``numpy.linalg.LinAlgError`` for a singular
    Hessian.
    """
    nobs = y.shape[0]
    XT = X.T
    diag = np.diag_indices(X.shape[1])
    new = np.zeros(X.shape[1])
    old: np.ndarray | float = np.inf
    iterations = 0
    fitted = 1 / (1 + np.exp(-np.dot(X, new)))
    while iterations < maxiter and np.any(np.abs(new - old) > tol):
        H = -(-np.dot(fitted * (1 - fitted) * XT, X)) / nobs
        H[diag] += ridge
        old = new
        new = old - np.linalg.solve(H, -np.dot(y - fitted, X) / nobs)
        iterations += 1
        fitted = 1 / (1 + np.exp(-np.dot(X, new)))
        # np.allclose(fitted - y, 0), statsmodels' test, without its temporaries: |fitted - y| <= 1e-8 for all
        # (NaN fails both).
        if np.all(np.abs(fitted - y) <= 1e-8):
            # statsmodels' names of the two failures, which the report's warnings have always given.
            raise _NoConvergence("PerfectSeparationWarning")
    # As statsmodels: the covariance first (a singular Hessian raises LinAlgError), then the iteration count.
    cov = np.linalg.inv(-(-np.dot(fitted * (1 - fitted) * XT, X)) / nobs) / nobs
    if iterations == maxiter:
        raise _NoConvergence("ConvergenceWarning")
    return new, cov, fitted


def _fit_logit(X, y, separated_cols, fn, weights=None, variance=(False, None)):
    """Logistic regression (:func:`_newton_logit`); separated tier columns are held out of the fit.

    A separated tier's indicator only fits its own persons perfectly; fitting
    without those persons gives the same estimates for every other term as
    the (infinite) MLE, without a numerically huge coefficient.

    With case weights the fit is statsmodels' GLM with ``var_weights``: R's
    prior weights of ``glm(weights=)`` scale each person's variance (and
    log-likelihood term), which is what ``var_weights`` means. For the
    binomial family (dispersion fixed at 1) ``freq_weights`` gives the same
    estimates and standard errors, but it treats a weight as a count of
    identical persons (residual df = sum of weights - k, not R's rows - k),
    which sampling or inverse-probability weights are not.
    """
    keep_rows = np.ones(len(y), dtype=bool)
    for j in separated_cols:
        keep_rows &= X[:, j] == 0
    cols = [j for j in range(X.shape[1]) if j not in separated_cols]
    est = np.full(X.shape[1], np.nan)
    se = np.full(X.shape[1], np.nan)
    p = np.full(X.shape[1], np.nan)
    # Copies of the design only when rows or columns are held out (it is the size of the cohort).
    Xf = X if keep_rows.all() and len(cols) == X.shape[1] else X[keep_rows][:, cols]
    yf = y if keep_rows.all() else y[keep_rows]
    # exp() overflows harmlessly in the Newton steps on unscaled covariates (the logistic cdf is then
    # exactly 0 or 1, and with numpy 1 its log -inf).
    with warnings.catch_warnings(), np.errstate(over="ignore", under="ignore", divide="ignore"):
        try:
            if weights is None:
                # k x n by n x k products with k about 6: one BLAS thread is faster than several, and far
                # faster on a busy machine (neutrostats.core.threads); the sums, and so the bits, are the same.
                with single_blas_thread():
                    params, cov, fitted = _newton_logit(Xf, yf, maxiter=100)
            else:
                from statsmodels.genmod import families
                from statsmodels.genmod.generalized_linear_model import GLM
                from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

                warnings.simplefilter("error", PerfectSeparationWarning)
                warnings.simplefilter("error", ConvergenceWarning)
                try:
                    res = GLM(yf, Xf, family=families.Binomial(), var_weights=weights[keep_rows]).fit(
                        maxiter=100, tol=1e-12)
                except (PerfectSeparationWarning, ConvergenceWarning) as exc:
                    raise _NoConvergence(type(exc).__name__) from None
                params, cov, fitted = np.asarray(res.params), np.asarray(res.cov_params()), res.predict()
        except (_NoConvergence, np.linalg.LinAlgError) as exc:
            reason = str(exc) if isinstance(exc, _NoConvergence) else "LinAlgError"
            warnings.warn(
                f"{fn}: logistic regression did not converge ({reason}): probably separation by a "
                "covariate; use method='firth'",
                SeparationWarning,
                stacklevel=4,
            )
            return est, se, p
    bse = np.sqrt(np.diag(cov))
    est[cols], se[cols], p[cols] = params, bse, norm.sf(np.abs(params / bse)) * 2
    robust, cluster = variance
    if robust or cluster is not None:
        w = np.ones(Xf.shape[0]) if weights is None else weights[keep_rows]
        scores = (w * (yf - fitted))[:, None] * Xf
        factor = 1.0
        if cluster is not None:
            codes = pd.factorize(cluster[keep_rows])[0]
            g = int(codes.max()) + 1
            summed = np.zeros((g, Xf.shape[1]))
            np.add.at(summed, codes, scores)
            scores, factor = summed, g / (g - 1) if g > 1 else np.nan
        vr = factor * cov @ (scores.T @ scores) @ cov
        se[cols] = np.sqrt(np.diag(vr))
        p[cols] = 2 * norm.sf(np.abs(est[cols] / se[cols]))
    return est, se, p


def odds_ratio_table(
    cohort_table: pd.DataFrame,
    outcomes: list[str],
    **kwargs: Any,
) -> pd.DataFrame:
    """Stack :func:`odds_ratios_by_tier` for several outcomes.

    Parameters
    ----------
    cohort_table : pandas.DataFrame
    outcomes : list of str
        Outcome columns, e.g. viral infection, HIV, haematological
        malignancy and the negative controls.
    **kwargs
        Passed to :func:`odds_ratios_by_tier` (method, adjust, categorical, ...).

    Returns
    -------
    pandas.DataFrame
        The tidy rows of every outcome (columns :data:`OR_COLUMNS`), in the
        order of ``outcomes`` then tiers: the input of :func:`plot_forest`.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"tier": pd.Categorical(["normal", "mild"] * 50, categories=["normal", "mild"], ordered=True),
    ...                   "a": [0, 1] * 50, "b": [1, 0, 0, 0] * 25})
    >>> odds_ratio_table(t, ["a", "b"], method="wald", correction="haldane")["outcome"].tolist()
    ['a', 'a', 'b', 'b']
    """
    if isinstance(outcomes, str) or not outcomes:
        raise NeutrostatsError(f"odds_ratio_table: outcomes must be a non-empty list of columns, found {outcomes!r}")
    cohort_table = require_dataframe(cohort_table, "odds_ratio_table", "cohort_table", allow_empty=False)
    return pd.concat([odds_ratios_by_tier(cohort_table, o, **kwargs) for o in outcomes], ignore_index=True)


_FLOAT_EPS = float(np.finfo(float).eps)


def _grouped_logit(events: np.ndarray, n: np.ndarray, X: np.ndarray, maxiter: int = 100,
                   tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression of ``events`` out of ``n`` on ``X``: (estimates, standard errors).

    The iteratively reweighted least squares of statsmodels'
    ``GLM(np.column_stack([events, n - events]), X, family=Binomial()).fit()``
    (0.14 and 0.15 alike), which the trend test used, with the same array
    expressions in the same order, so that the results are the same to the
    last bit (``tests/test_associations.py`` compares them): start at
    mu = (y + 1/2) / 2 with y = events / n, probabilities clipped to
    [eps, 1 - eps] wherever the link, its derivative or the variance is
    evaluated, one weighted least-squares step per iteration until the
    deviance changes by at most ``tol``, and the estimates and covariance
    of a last step solved by the SVD pseudo-inverse. Without it the report
    would import statsmodels, and with it scipy.stats, for two coefficients.
    """
    y = events * 1.0 / (events + (n - events))
    ntr = events + (n - events)

    def clean(p):  # the Logit link's and the Binomial variance's clip
        return np.clip(p, _FLOAT_EPS, 1.0 - _FLOAT_EPS)

    def deviance(mu):
        endog_mu = np.clip(y / (mu + 1e-20), _FLOAT_EPS, np.inf)
        n_endog_mu = np.clip((1.0 - y) / (1.0 - mu + 1e-20), _FLOAT_EPS, np.inf)
        resid = 2 * ntr * (y * np.log(endog_mu) + (1 - y) * np.log(n_endog_mu))
        return np.sum(resid * np.ones(y.shape[0]) * np.ones(y.shape[0]) / 1.0)

    def deriv(mu):
        p = clean(mu)
        return 1.0 / (p * (1 - p))

    mu = (y + 0.5) / 2
    p0 = clean(mu)
    lin_pred = np.log(p0 / (1.0 - p0))
    history = [np.inf, deviance(mu)]
    ones = np.ones(y.shape[0])
    for iteration in range(maxiter):
        p = clean(mu / 1)
        weights = ones * ntr * (1.0 / (deriv(mu) ** 2 * (p * (1 - p) * 1)))
        wlsendog = lin_pred + deriv(mu) * (y - mu) - 0.0
        w_half = np.sqrt(weights)
        if not (np.all(np.isfinite(w_half)) and np.all(np.isfinite(wlsendog))):
            raise NeutrostatsError("trend_test: the logistic fit met non-finite weights; check the counts per tier")
        params = np.linalg.lstsq(np.asarray(w_half)[:, None] * X, w_half * wlsendog, rcond=-1)[0]
        lin_pred = np.dot(X, params)
        lin_pred += 0.0
        mu = 1.0 / (1.0 + np.exp(-np.asarray(lin_pred)))
        history.append(deviance(mu))
        if np.allclose(history[iteration + 1], history[iteration + 2], atol=tol, rtol=0.0):
            break
    # The last step again by the pseudo-inverse of the whitened design (statsmodels' WLS "pinv").
    wexog = np.sqrt(weights)[:, None] * X
    u, sv, vt = np.linalg.svd(wexog, False)
    cutoff = 1e-15 * np.maximum.reduce(sv)
    inv = np.where(sv > cutoff, 1.0 / np.where(sv > cutoff, sv, 1.0), 0.0)
    pinv = np.dot(np.transpose(vt), np.multiply(inv[:, np.newaxis], np.transpose(u)))
    params = np.dot(pinv, np.sqrt(weights) * wlsendog)
    cov = np.dot(pinv, np.transpose(pinv)) * 1.0
    return params, np.sqrt(np.diag(cov))


def trend_test(
    cohort_table: pd.DataFrame,
    outcome: str,
    *,
    tier: str = "tier",
    scores: list[float] | None = None,
) -> pd.DataFrame:
    """Test for a monotone trend of an outcome across ordered tiers.

    Parameters
    ----------
    cohort_table : pandas.DataFrame
    outcome : str
        0/1 or boolean column (prevalent persons left out as in
        :func:`odds_ratios_by_tier`).
    tier : str, default "tier"
        Ordered Categorical column.
    scores : list of float, optional
        One score per tier, in category order; default 0, 1, 2, ... from the
        mildest tier. Tiers without persons do not count.

    Returns
    -------
    pandas.DataFrame
        The tidy test shape (:data:`neutrostats.core.columns.TEST_COLUMNS`),
        two rows: ``test`` ``cochran_armitage`` (chi-square with 1 df, as
        R's ``prop.trend.test``) and ``logistic_score`` (Wald test of the
        slope of a logistic regression on the score); columns ``test``,
        ``outcome``, ``term`` (the ``tier`` column's name), ``statistic``,
        ``df``, ``p_value``, then ``estimate`` (slope on the log odds scale;
        NaN for Cochran-Armitage) and ``std_error``.

    References
    ----------
    Armitage P. Biometrics 1955;11:375. Cochran WG. Biometrics 1954;10:417.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"tier": pd.Categorical(["a"] * 100 + ["b"] * 100 + ["c"] * 100,
    ...                                          categories=["a", "b", "c"], ordered=True),
    ...                   "y": [1] * 5 + [0] * 95 + [1] * 10 + [0] * 90 + [1] * 20 + [0] * 80})
    >>> float(trend_test(t, "y").loc[0, "statistic"].round(4))  # 15**2 / (35/300 * 265/300 * 200)
    10.9164
    """
    fn = "trend_test"
    data, y = _outcome_frame(cohort_table, outcome, tier, fn)
    cats, n, events = _counts_by_tier(data, y, tier)
    s = np.arange(len(cats), dtype=float) if scores is None else np.asarray(scores, dtype=float)
    if s.shape != (len(cats),) or not np.all(np.isfinite(s)):
        raise NeutrostatsError(f"{fn}: expected {len(cats)} finite scores (one per tier {list(cats)}), found {scores!r}")
    used = n > 0
    if used.sum() < 2 or np.ptp(s[used]) == 0:
        raise NeutrostatsError(f"{fn}: a trend needs at least two tiers with persons and different scores")
    n, events, s = n[used].astype(float), events[used].astype(float), s[used]
    p_bar = events.sum() / n.sum()
    s_bar = np.dot(n, s) / n.sum()
    num = np.dot(events - n * p_bar, s - s_bar) ** 2
    den = p_bar * (1 - p_bar) * np.dot(n, (s - s_bar) ** 2)
    chisq = num / den if den > 0 else np.nan
    ca_p = float(chi2.sf(chisq, 1)) if np.isfinite(chisq) else np.nan

    # A flat trend fits the tier proportions exactly without any separation; a real one (no events, or
    # all) gives no finite slope, which the statistic then shows.
    params, bse = _grouped_logit(events, n, np.column_stack((np.ones(s.shape[0]), s)))
    slope, se = float(params[1]), float(bse[1])
    p_slope = float(norm.sf(np.abs(slope / se)) * 2)
    return pd.DataFrame(
        {
            "test": ["cochran_armitage", "logistic_score"],
            "outcome": outcome,
            "term": tier,
            "statistic": [chisq, (slope / se) ** 2],
            "df": [1, 1],
            "p_value": [ca_p, p_slope],
            "estimate": [np.nan, slope],
            "std_error": [np.nan, se],
        }
    )


@dataclass(frozen=True)
class MantelHaenszel:
    """Pooled odds ratio across strata.

    Attributes
    ----------
    estimate, conf_low, conf_high : float
        Mantel-Haenszel OR with the Robins-Breslow-Greenland interval.
    statistic, p_value : float
        Mantel-Haenszel chi-square test of OR = 1 (1 df).
    homogeneity_statistic, homogeneity_p_value : float
        Breslow-Day test that the OR is the same in every stratum (with
        Tarone's adjustment when ``tarone=True``).
    strata : pandas.DataFrame
        Per stratum: ``stratum``, the four cells and the stratum OR.
    conf_level : float
    outcome, term : str
        The outcome and exposure columns (for :meth:`tidy`).
    """

    estimate: float
    conf_low: float
    conf_high: float
    statistic: float
    p_value: float
    homogeneity_statistic: float
    homogeneity_p_value: float
    strata: pd.DataFrame
    conf_level: float
    outcome: str = ""
    term: str = ""

    def tidy(self) -> pd.DataFrame:
        """The two tests in the tidy test shape (:data:`neutrostats.core.columns.TEST_COLUMNS`).

        Returns
        -------
        pandas.DataFrame
            Rows ``test`` = ``mantel_haenszel`` (OR = 1, 1 df; with the
            pooled ``estimate``, ``conf_low``, ``conf_high``) and
            ``breslow_day`` (homogeneity; strata with more than one person
            - 1 df; no estimate); columns ``test``, ``outcome``, ``term``
            (the exposure column), ``statistic``, ``df``, ``p_value``,
            ``estimate``, ``conf_low``, ``conf_high``.

        Examples
        --------
        >>> import pandas as pd
        >>> one = pd.DataFrame({"x": [1] * 40 + [0] * 20, "y": [1] * 30 + [0] * 10 + [1] * 10 + [0] * 10})
        >>> t = pd.concat([one.assign(sex="F"), one.assign(sex="M")])
        >>> mantel_haenszel(t, "y", "x", "sex").tidy()[["test", "outcome", "term", "df"]]
                      test outcome term  df
        0  mantel_haenszel       y    x   1
        1      breslow_day       y    x   1
        """
        cells = self.strata[["exposed_events", "exposed_nonevents", "unexposed_events", "unexposed_nonevents"]]
        used = int((cells.sum(axis=1) > 1).sum())
        return pd.DataFrame({
            "test": ["mantel_haenszel", "breslow_day"], "outcome": self.outcome, "term": self.term,
            "statistic": [self.statistic, self.homogeneity_statistic], "df": [1, max(used - 1, 0)],
            "p_value": [self.p_value, self.homogeneity_p_value], "estimate": [self.estimate, np.nan],
            "conf_low": [self.conf_low, np.nan], "conf_high": [self.conf_high, np.nan],
        })


def mantel_haenszel(
    cohort_table: pd.DataFrame,
    outcome: str,
    exposure: str,
    strata: str | list[str],
    *,
    conf_level: float = 0.95,
    continuity_correction: bool = False,
    tarone: bool = False,
    weights: str | None = None,
) -> MantelHaenszel:
    """Mantel-Haenszel pooled odds ratio of an exposure, stratified.

    Parameters
    ----------
    cohort_table : pandas.DataFrame
    outcome : str
        0/1 or boolean column (``<outcome>_prevalent`` rows left out).
    exposure : str
        Boolean (or 0/1) column: True is exposed, e.g.
        ``table["tier"] != "normal"``.
    strata : str or list of str
        Column(s) defining the strata (e.g. sex, age group).
    conf_level : float, default 0.95
    continuity_correction : bool, default False
        Continuity correction of the MH chi-square (R's ``correct=``).
    tarone : bool, default False
        Tarone's adjustment of the Breslow-Day statistic.
    weights : None
        Not supported: the Mantel-Haenszel estimator and its variance count
        persons (R's ``mantelhaen.test`` has no weights either); a column
        name raises :class:`NeutrostatsError` pointing to a weighted
        logistic regression (:func:`odds_ratios_by_tier` with
        ``method="logistic"``, ``adjust=`` the strata and ``weights=``).

    Returns
    -------
    MantelHaenszel
        Its :meth:`~MantelHaenszel.tidy` gives both tests as rows of the
        tidy test shape.

    References
    ----------
    Mantel N, Haenszel W. J Natl Cancer Inst 1959;22:719. Robins J,
    Breslow N, Greenland S. Biometrics 1986;42:311. Breslow NE, Day NE.
    Statistical Methods in Cancer Research I, IARC 1980.

    Examples
    --------
    >>> import pandas as pd
    >>> one = pd.DataFrame({"x": [1] * 40 + [0] * 20, "y": [1] * 30 + [0] * 10 + [1] * 10 + [0] * 10})
    >>> t = pd.concat([one.assign(sex="F"), one.assign(sex="M")])  # OR 30*10/(10*10) = 3 in each stratum
    >>> r = mantel_haenszel(t, "y", "x", "sex")
    >>> round(r.estimate, 6), len(r.strata)
    (3.0, 2)
    """
    fn = "mantel_haenszel"
    if weights is not None:
        raise NeutrostatsError(
            f"{fn}: weights={weights!r} is not supported: the Mantel-Haenszel odds ratio counts persons and has "
            "no weighted version; for a weighted odds ratio adjusted for the strata use odds_ratios_by_tier(..., "
            "method='logistic', adjust=[<strata>], weights=...)"
        )
    level = require_conf_level(conf_level, fn)
    strata = [strata] if isinstance(strata, str) else list(strata)
    cohort_table = require_dataframe(cohort_table, fn, "cohort_table", allow_empty=False)
    require_columns(cohort_table, [outcome, exposure, *strata], fn)
    keep = cohort_table[outcome].notna() & cohort_table[exposure].notna() & cohort_table[strata].notna().all(axis=1)
    prevalent = f"{outcome}_prevalent"
    if prevalent in cohort_table.columns:
        keep &= ~cohort_table[prevalent].fillna(False).astype(bool)
    d = cohort_table.loc[keep]
    y = d[outcome].astype(float).to_numpy()
    x = d[exposure].astype(float).to_numpy()
    if np.any((y != 0) & (y != 1)) or np.any((x != 0) & (x != 1)):
        raise NeutrostatsError(f"{fn}: outcome and exposure must be 0/1 or boolean columns")
    key = d[strata].astype(str).agg(" / ".join, axis=1) if len(strata) > 1 else d[strata[0]]
    cells = pd.DataFrame({"stratum": key.to_numpy(), "a": x * y, "b": x * (1 - y), "c": (1 - x) * y,
                          "d": (1 - x) * (1 - y)}).groupby("stratum", sort=True).sum()
    tables = cells[["a", "b", "c", "d"]].to_numpy().reshape(-1, 2, 2)
    informative = tables.sum(axis=(1, 2)) > 1
    if informative.sum() == 0:
        raise NeutrostatsError(f"{fn}: no stratum has more than one person")
    from statsmodels.stats.contingency_tables import StratifiedTable

    # statsmodels divides by zero on strata with an empty cell and gets the
    # right limits (0 or inf); its arithmetic warnings are noise here.
    with np.errstate(divide="ignore", invalid="ignore"):
        st = StratifiedTable(tables[informative].transpose(1, 2, 0).astype(float))
        lo, hi = st.oddsratio_pooled_confint(alpha=1 - level)
        null = st.test_null_odds(correction=continuity_correction)
        equal = st.test_equal_odds(adjust=tarone)
        pooled = st.oddsratio_pooled
    with np.errstate(divide="ignore", invalid="ignore"):
        per = (cells["a"] * cells["d"]) / (cells["b"] * cells["c"])
    strata_table = cells.reset_index().astype({"a": int, "b": int, "c": int, "d": int})
    strata_table = strata_table.rename(columns={"a": "exposed_events", "b": "exposed_nonevents",
                                                "c": "unexposed_events", "d": "unexposed_nonevents"})
    strata_table["odds_ratio"] = per.to_numpy()
    return MantelHaenszel(
        estimate=float(pooled), conf_low=float(lo), conf_high=float(hi),
        statistic=float(null.statistic), p_value=float(null.pvalue),
        homogeneity_statistic=float(equal.statistic), homogeneity_p_value=float(equal.pvalue),
        strata=strata_table, conf_level=level, outcome=outcome, term=exposure,
    )


