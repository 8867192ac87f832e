"""Bias analysis: E-values and empirical calibration with negative controls.

Two questions a reviewer asks of an observational ratio estimate:

* **How strong would unmeasured confounding have to be to explain it away?**
  The E-value (VanderWeele & Ding 2017 [1]_) is the minimum strength of
  association, on the risk-ratio scale, that an unmeasured confounder would
  need with both the exposure and the outcome, conditional on the measured
  covariates, to move the observed risk ratio to the null:
  ``E = RR + sqrt(RR (RR - 1))`` for ``RR >= 1`` (``1/RR`` first for a
  protective estimate). The E-value of the interval is that of the limit
  closest to the null, and 1 when the interval includes the null.
  Odds and hazard ratios are first put on the risk-ratio scale [2]_: as they
  are when the outcome is rare (below about 15% at the end of follow-up),
  else ``sqrt(OR)`` and ``(1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))``.
  :func:`evalue` does one estimate, :func:`add_evalues` a tidy ratio table.

* **How biased is the design?** Empirical calibration (Schuemie et al.
  2014 [3]_, 2018 [4]_) runs the same analysis on negative controls,
  outcomes the exposure is believed not to cause, so their true ratio is 1.
  Their log estimates are modelled as ``log(est_i) ~ N(mu, tau^2 + se_i^2)``:
  systematic error ``N(mu, tau^2)`` (the "empirical null") on top of the
  sampling error each estimate reports. :func:`fit_systematic_error` fits
  ``mu`` and ``tau`` by maximum likelihood; :func:`calibrate` then gives
  each estimate a calibrated p-value (against the empirical null instead of
  the theoretical ``N(0, se^2)``) and a calibrated interval.
  :func:`negative_control_estimates` builds the controls of a neutrostats
  cohort (solid cancer, autoimmune disorders).

Examples
--------
>>> from neutrostats.stats.bias import evalue
>>> round(evalue(3.9, 1.8, 8.7, measure="OR", rare=True).evalue, 2)
7.26

References
----------
.. [1] VanderWeele TJ, Ding P. Sensitivity analysis in observational
   research: introducing the E-value. Ann Intern Med. 2017;167:268-274.
.. [2] VanderWeele TJ, Ding P, Mathur M. Technical considerations in the use
   of the E-value. J Causal Inference. 2019;7:20180007.
.. [3] Schuemie MJ, Ryan PB, DuMouchel W, Suchard MA, Madigan D.
   Interpreting observational studies: why empirical calibration is needed
   to correct p-values. Stat Med. 2014;33:209-218.
.. [4] Schuemie MJ, Hripcsak G, Ryan PB, Madigan D, Suchard MA. Empirical
   confidence interval calibration for population-level effect estimation
   studies in observational healthcare data. PNAS. 2018;115:2571-2577.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.distributions import norm
from neutrostats.core.roots import brentq
from neutrostats.core.validate import require_columns, require_conf_level, require_dataframe
from neutrostats.errors import NegativeControlWarning, NeutrostatsError
from neutrostats.stats.odds_ratios import odds_ratios_by_tier


__all__ = [
    "EValue",
    "evalue",
    "add_evalues",
    "SystematicError",
    "fit_systematic_error",
    "calibrate",
    "negative_control_estimates",
]

MEASURES = ("RR", "OR", "HR")
#: The negative-control outcomes of the default cohort (code sets in
#: :data:`neutrostats.cohort.icd10`): Andersen et al. (2016) found no
#: association of neutropenia with either.
NEGATIVE_CONTROL_OUTCOMES = ("solid_cancer", "autoimmune")
# Below this many usable controls the empirical null is warned about; OHDSI
# studies use dozens (Schuemie et al. 2018 used 50 per analysis or more).
FEW_CONTROLS = 10


# --- E-values ------------------------------------------------------------------

@dataclass(frozen=True)
class EValue:
    """E-values of one ratio estimate (see :func:`evalue`).

    Attributes
    ----------
    evalue : float
        E-value of the point estimate (>= 1).
    evalue_ci : float
        E-value of the confidence limit closest to ``true`` (1 when the
        interval includes it; NaN when no limit was given).
    rr, rr_conf_low, rr_conf_high, true_rr : float
        The estimate, its limits and ``true`` on the risk-ratio scale used.
    measure : str
    rare : bool or None
    """

    evalue: float
    evalue_ci: float
    rr: float
    rr_conf_low: float
    rr_conf_high: float
    true_rr: float
    measure: str
    rare: bool | None


def _to_rr(x: np.ndarray, measure: str, rare: bool | None) -> np.ndarray:
    """Odds and hazard ratios on the risk-ratio scale (VanderWeele, Ding & Mathur 2019)."""
    x = np.asarray(x, dtype=float)
    if measure == "RR" or rare:
        return x
    if measure == "OR":
        return np.sqrt(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1.0 - 0.5 ** np.sqrt(x)) / (1.0 - 0.5 ** np.sqrt(1.0 / x))


def _threshold(rr: np.ndarray, true: float) -> np.ndarray:
    """E-value of risk ratios ``rr`` against ``true``: r + sqrt(r (r - 1)), r = the ratio >= 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(rr < true, true / rr, rr / true)
        return r + np.sqrt(r * (r - 1.0))


def _evalues(est, lo, hi, true):
    """Vectorised E-values of point estimates and of the limit closest to ``true`` (RR scale)."""
    e_point = _threshold(est, true)
    limit = np.where(est > true, lo, hi)
    crosses = np.where(est > true, lo <= true, hi >= true)
    e_ci = np.where(crosses | (est == true), 1.0, _threshold(limit, true))
    e_ci = np.where(np.isnan(limit) & (est != true), np.nan, e_ci)
    return e_point, e_ci


def _check_measure(measure: Any, rare: Any, fn: str) -> None:
    if measure not in MEASURES:
        raise NeutrostatsError(f"{fn}: measure must be one of {list(MEASURES)}, found {measure!r}; "
                               "pass measure='OR' for odds ratios, 'HR' for hazard ratios, 'RR' for risk "
                               "or rate ratios")
    if measure != "RR" and rare is None:
        raise NeutrostatsError(
            f"{fn}: an {measure} needs rare=True or rare=False (is the outcome rare, below about 15% "
            "at the end of follow-up?); the E-value treats a rare-outcome ratio as a risk ratio and "
            f"converts a common-outcome {measure} first (VanderWeele, Ding & Mathur 2019)")
    if rare is not None and not isinstance(rare, (bool, np.bool_)):
        raise NeutrostatsError(f"{fn}: rare must be True, False or None, found {rare!r}")


def _ratio(value: Any, name: str, fn: str, *, allow_none: bool = False) -> float:
    if value is None and allow_none:
        return float("nan")
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = float("nan")
    if not (0 <= x < np.inf) or (name in ("estimate", "true") and x == 0):
        raise NeutrostatsError(f"{fn}: {name} must be a positive finite ratio, found {value!r}; "
                               "an estimate of 0 or inf (no events) has no E-value")
    return x


def evalue(estimate: float, conf_low: float | None = None, conf_high: float | None = None, *,
           measure: str = "RR", rare: bool | None = None, true: float = 1.0) -> EValue:
    """E-value of one risk, rate, odds or hazard ratio and of its confidence interval.

    Parameters
    ----------
    estimate : float
        The ratio (> 0, finite).
    conf_low, conf_high : float, optional
        Its confidence limits (either or both); ``conf_low <= estimate <=
        conf_high``.
    measure : {"RR", "OR", "HR"}, default "RR"
        A rate ratio is an ``"RR"``.
    rare : bool, optional
        Required for ``"OR"`` and ``"HR"``: ``True`` when the outcome is rare
        (below about 15% at the end of follow-up), so that the ratio
        approximates a risk ratio; ``False`` converts it (``sqrt(OR)``;
        ``(1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))``) [2]_.
    true : float, default 1.0
        The value to explain the estimate away to, on the scale of
        ``measure`` (converted as the estimate is): the "non-null" E-value
        of [2]_ for ``true != 1``.

    Returns
    -------
    EValue
        ``evalue`` (point estimate) and ``evalue_ci`` (the limit closest to
        ``true``; 1 when the interval includes it; NaN without limits), with
        the risk-ratio-scale values used.

    Raises
    ------
    NeutrostatsError
        A non-positive or non-finite estimate, a limit on the wrong side of
        the estimate, an unknown ``measure``, or ``rare`` missing for an OR
        or HR.

    References
    ----------
    .. [1] VanderWeele TJ, Ding P. Ann Intern Med. 2017;167:268-274.
    .. [2] VanderWeele TJ, Ding P, Mathur M. J Causal Inference.
       2019;7:20180007.

    Examples
    --------
    Breastfeeding and infant respiratory death, OR 3.9 (1.8 to 8.7), rare
    outcome (the worked example of [1]_):

    >>> e = evalue(3.9, 1.8, 8.7, measure="OR", rare=True)
    >>> round(e.evalue, 2), round(e.evalue_ci, 2)
    (7.26, 3.0)
    """
    fn = "evalue"
    _check_measure(measure, rare, fn)
    est = _ratio(estimate, "estimate", fn)
    lo = _ratio(conf_low, "conf_low", fn, allow_none=True)
    hi = _ratio(conf_high, "conf_high", fn, allow_none=True)
    tr = _ratio(true, "true", fn)
    if lo > est or hi < est:
        raise NeutrostatsError(f"{fn}: the estimate {est!r} must lie inside its interval, found "
                               f"conf_low={conf_low!r}, conf_high={conf_high!r}; check the order of the arguments")
    rr, rlo, rhi, rtrue = (float(_to_rr(np.array(v), measure, rare)) for v in (est, lo, hi, tr))
    e_point, e_ci = _evalues(np.array(rr), np.array(rlo), np.array(rhi), rtrue)
    return EValue(float(e_point), float(e_ci), rr, rlo, rhi, rtrue, measure, None if rare is None else bool(rare))


def _numeric(table: pd.DataFrame, col: str, fn: str) -> np.ndarray:
    s = table[col]
    if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
        raise NeutrostatsError(f"{fn}: column {col!r} must be numeric, found dtype {s.dtype} "
                               f"(e.g. {s.dropna().head(3).tolist()}); pass the tidy ratio table itself")
    return s.to_numpy(dtype=float, na_value=np.nan)


def _usable_rows(table: pd.DataFrame, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows to compute on, reason for the others) from is_reference, estimable and the estimate."""
    n = len(table)
    ref = table["is_reference"].fillna(False).to_numpy(dtype=bool) if "is_reference" in table else np.zeros(n, bool)
    estimable = (table["estimable"].fillna(False).to_numpy(dtype=bool) if "estimable" in table
                 else np.ones(n, bool))
    finite = np.isfinite(est) & (est > 0)
    reason = np.where(ref, "reference tier", np.where(~estimable | ~finite, "not estimable", ""))
    return ~ref & estimable & finite, reason


def _append(table: pd.DataFrame, columns: dict[str, np.ndarray], ok: np.ndarray) -> pd.DataFrame:
    """A new table: ``table`` with ``columns`` appended (NaN where not ``ok``), its attrs kept."""
    new = pd.DataFrame({k: np.where(ok, v, np.nan) for k, v in columns.items()}, index=table.index)
    out = pd.concat([table.drop(columns=[c for c in columns if c in table.columns]), new], axis=1)
    out.attrs = dict(table.attrs)
    return out


def _with_note(out: pd.DataFrame, reason: np.ndarray) -> pd.DataFrame:
    """Keep the table's own note; give rows without one the reason they have no result."""
    if "note" not in out and not (reason != "").any():
        return out
    old = out["note"].fillna("").astype(str).to_numpy() if "note" in out else np.full(len(out), "")
    out["note"] = np.where((old == "") & (reason != ""), reason, old)
    return out


def add_evalues(table: pd.DataFrame, *, measure: str, rare: bool | None = None, true: float = 1.0,
                estimate: str = "estimate", conf_low: str = "conf_low", conf_high: str = "conf_high") -> pd.DataFrame:
    """Append the E-values of every ratio of a tidy table (OR, HR or rate-ratio rows).

    Parameters
    ----------
    table : pandas.DataFrame
        A tidy ratio table: :func:`~neutrostats.stats.odds_ratios_by_tier`,
        :func:`~neutrostats.stats.cox_hazard_ratios`, a rate-ratio table.
        ``is_reference`` and ``estimable`` are used when present.
    measure : {"RR", "OR", "HR"}
        What the ratios are (no default: an OR read as an RR is the
        rare-outcome assumption, which must be said).
    rare : bool, optional
        Required for ``"OR"``/``"HR"``; see :func:`evalue`.
    true : float, default 1.0
    estimate, conf_low, conf_high : str
        Column names.

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` (same rows, order and ``attrs``) with ``evalue``
        (of the point estimate) and ``evalue_ci`` (of the limit closest to
        the null; 1 when the interval includes it). Reference and
        non-estimable rows (and rows whose ratio is 0, inf or missing) get
        NaN, with ``note`` saying why ("reference tier", "not estimable",
        or the table's own note, which is kept).

    Raises
    ------
    NeutrostatsError
        Missing or non-numeric columns, a negative ratio, an estimate
        outside its interval, or the errors of :func:`evalue`.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"group": ["normal", "mild"], "estimate": [1.0, 0.8], "conf_low": [float("nan"), 0.71],
    ...                   "conf_high": [float("nan"), 0.91], "is_reference": [True, False]})
    >>> add_evalues(t, measure="RR")[["group", "evalue", "evalue_ci"]].round(3)
        group  evalue  evalue_ci
    0  normal     NaN        NaN
    1    mild   1.809      1.429
    """
    fn = "add_evalues"
    table = require_dataframe(table, fn, "table")
    require_columns(table, [estimate, conf_low, conf_high], fn)
    _check_measure(measure, rare, fn)
    tr = _ratio(true, "true", fn)
    est, lo, hi = (_numeric(table, c, fn) for c in (estimate, conf_low, conf_high))
    if np.any(est < 0) or np.any(lo < 0) or np.any(hi < 0):
        raise NeutrostatsError(f"{fn}: ratios must be >= 0, found negative values in {estimate!r}/{conf_low!r}/"
                               f"{conf_high!r}; pass ratios, not log ratios (np.exp them first)")
    ok, reason = _usable_rows(table, est)
    outside = ok & ((lo > est * (1 + 1e-12)) | (hi < est * (1 - 1e-12)))
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise NeutrostatsError(f"{fn}: {int(outside.sum())} row(s) have the estimate outside the interval, e.g. "
                               f"row {i}: {est[i]!r} ({lo[i]!r} to {hi[i]!r}); check the column names")
    rr, rlo, rhi = (_to_rr(v, measure, rare) for v in (est, lo, hi))
    e_point, e_ci = _evalues(rr, rlo, rhi, float(_to_rr(np.array(tr), measure, rare)))
    return _with_note(_append(table, {"evalue": e_point, "evalue_ci": e_ci}, ok), reason)


# --- empirical calibration -------------------------------------------------------

@dataclass(frozen=True)
class SystematicError:
    """The empirical null: systematic error ``N(mu, tau^2)`` on the log scale (see :func:`fit_systematic_error`).

    Attributes
    ----------
    mu : float
        Mean systematic error (log scale; ``exp(mu)`` is the ratio a null
        effect is estimated as, on average).
    tau : float
        Its standard deviation (>= 0; 0 when the controls scatter no more
        than their standard errors explain).
    mu_std_error, tau_std_error : float
        Standard errors from the observed information; ``tau_std_error`` is
        NaN when ``tau`` is on the boundary 0.
    n_controls : int
        Negative-control estimates used.
    n_dropped : int
        Controls dropped (not estimable, or no standard error).
    log_likelihood : float
    """

    mu: float
    tau: float
    mu_std_error: float
    tau_std_error: float
    n_controls: int
    n_dropped: int
    log_likelihood: float

    def tidy(self) -> pd.DataFrame:
        """One row per parameter: ``term`` (``mu``, ``tau``), ``estimate``, ``std_error``, ``n``."""
        return pd.DataFrame({"term": ["mu", "tau"], "estimate": [self.mu, self.tau],
                             "std_error": [self.mu_std_error, self.tau_std_error],
                             "n": [self.n_controls, self.n_controls]})


def _profile(t2: np.ndarray, y: np.ndarray, s2: np.ndarray):
    """Profile log-likelihood (mu at its optimum) and its derivative in tau^2, for each tau^2 of ``t2``."""
    w = 1.0 / (np.atleast_1d(t2)[:, None] + s2[None, :])
    mu = (w * y).sum(axis=1) / w.sum(axis=1)
    r2 = (y[None, :] - mu[:, None]) ** 2
    loglik = -0.5 * (np.log(2 * np.pi / w) + r2 * w).sum(axis=1)
    score = 0.5 * (w * w * r2 - w).sum(axis=1)
    return loglik, score, mu


def _ml_null(y: np.ndarray, s: np.ndarray) -> tuple[float, float, float]:
    """ML (mu, tau, log-likelihood) of y_i ~ N(mu, tau^2 + s_i^2).

    The profile likelihood in tau^2 is searched on a grid first (it can
    have more than one local maximum), then its score is solved to machine
    precision around the best grid point; tau = 0 when the score is <= 0
    there (controls no more scattered than their standard errors say).
    """
    s2 = s * s
    spread = float(np.ptp(y)) ** 2 + float(s2.max())
    grid = np.concatenate([[0.0], np.geomspace(1e-10 * spread, 10 * spread, 400)])
    loglik, score, _ = _profile(grid, y, s2)
    j = int(np.argmax(loglik))
    if j == 0 and score[0] <= 0:
        t2 = 0.0
    else:
        lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, len(grid) - 1)]
        f = lambda t: float(_profile(np.array([t]), y, s2)[1][0])  # noqa: E731
        if f(lo) > 0 > f(hi):
            t2 = brentq(f, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
        else:
            t2 = grid[j]
    ll, _, mu = _profile(np.array([t2]), y, s2)
    return float(mu[0]), float(np.sqrt(t2)), float(ll[0])


def _null_std_errors(y: np.ndarray, s: np.ndarray, mu: float, tau: float) -> tuple[float, float]:
    """Standard errors of (mu, tau) from the observed information of the (mu, tau) log-likelihood."""
    v = tau * tau + s * s
    r = y - mu
    if tau == 0.0:
        return float(1.0 / np.sqrt(np.sum(1.0 / v))), float("nan")
    g = r * r / v**2 - 1.0 / v
    h_mm = -np.sum(1.0 / v)
    h_mt = -np.sum(2.0 * tau * r / v**2)
    h_tt = np.sum(g + 2.0 * tau * tau * (1.0 / v**2 - 2.0 * r * r / v**3))
    info = -np.array([[h_mm, h_mt], [h_mt, h_tt]])
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return float("nan"), float("nan")
    d = np.diag(cov)
    return tuple(float(np.sqrt(x)) if x > 0 else float("nan") for x in d)  # type: ignore[return-value]


def _control_arrays(controls: pd.DataFrame, estimate: str, std_error: str, fn: str):
    """Log estimates and standard errors of the usable controls, and how many were dropped."""
    est = _numeric(controls, estimate, fn)
    se = _numeric(controls, std_error, fn)
    if np.any(est < 0):
        raise NeutrostatsError(f"{fn}: column {estimate!r} must hold ratios (>= 0), found negative values; "
                               "pass the ratio, not its logarithm")
    ok, _ = _usable_rows(controls, est)
    candidates = (~controls["is_reference"].fillna(False).to_numpy(dtype=bool) if "is_reference" in controls
                  else np.ones(len(controls), bool))
    usable = ok & np.isfinite(se) & (se > 0)
    return np.log(est[usable]), se[usable], int(candidates.sum() - usable.sum())


def fit_systematic_error(negative_controls: pd.DataFrame, *, estimate: str = "estimate",
                         std_error: str = "std_error") -> SystematicError:
    """Fit the empirical null ``N(mu, tau^2)`` of systematic error from negative-control estimates.

    Each negative control's log estimate is modelled as ``log(est_i) ~
    N(mu, tau^2 + se_i^2)`` (its true ratio is 1; ``se_i`` is the standard
    error of the log estimate it reports), and ``mu``, ``tau`` are fitted by
    maximum likelihood, as ``EmpiricalCalibration::fitNull`` (Schuemie et
    al. 2014 [1]_) does, but solved to machine precision. Reference rows
    (``is_reference``) are not controls and are skipped.

    Parameters
    ----------
    negative_controls : pandas.DataFrame
        Tidy ratio rows of negative-control outcomes, e.g.
        :func:`negative_control_estimates`; estimated with the same design
        and method as the estimates to be calibrated.
    estimate, std_error : str
        Columns of the ratio and of the standard error of its logarithm.

    Returns
    -------
    SystematicError
        ``mu``, ``tau``, their standard errors, ``n_controls``,
        ``n_dropped``, ``log_likelihood``; ``.tidy()`` gives a table.

    Raises
    ------
    NeutrostatsError
        Fewer than 3 usable controls (say how many were dropped and why),
        missing or non-numeric columns, negative ratios.

    Warns
    -----
    NegativeControlWarning
        Fewer than 10 usable controls, or some dropped (not estimable, or no
        finite standard error).

    References
    ----------
    .. [1] Schuemie MJ et al. Stat Med. 2014;33:209-218.

    Examples
    --------
    >>> import pandas as pd
    >>> nc = pd.DataFrame({"estimate": [1.2, 2.0, 0.8, 1.5, 1.1, 2.5, 1.3, 0.9, 1.7, 1.25],
    ...                    "std_error": [0.1, 0.2, 0.15, 0.1, 0.3, 0.2, 0.1, 0.25, 0.2, 0.1]})
    >>> null = fit_systematic_error(nc)
    >>> round(null.mu, 3), round(null.tau, 3), null.n_controls
    (0.297, 0.253, 10)
    """
    fn = "fit_systematic_error"
    negative_controls = require_dataframe(negative_controls, fn, "negative_controls")
    require_columns(negative_controls, [estimate, std_error], fn)
    y, s, dropped = _control_arrays(negative_controls, estimate, std_error, fn)
    if len(y) < 3:
        raise NeutrostatsError(
            f"{fn}: needs at least 3 usable negative-control estimates, found {len(y)} ({dropped} dropped: "
            f"not estimable, or no finite standard error in {std_error!r}; exact and mid-p odds ratios have "
            "none: estimate the controls with method='logistic' or 'wald'); add negative-control outcomes")
    if dropped:
        warnings.warn(f"{fn}: {dropped} negative-control estimate(s) dropped (not estimable, or no finite "
                      f"standard error); the empirical null rests on the {len(y)} others", NegativeControlWarning,
                      stacklevel=2)
    if len(y) < FEW_CONTROLS:
        warnings.warn(f"{fn}: only {len(y)} negative-control estimates; with fewer than {FEW_CONTROLS} the "
                      "systematic-error distribution is poorly determined (OHDSI uses dozens): report the "
                      "calibrated results as a sensitivity analysis, with this caveat", NegativeControlWarning,
                      stacklevel=2)
    mu, tau, ll = _ml_null(y, s)
    mu_se, tau_se = _null_std_errors(y, s, mu, tau)
    return SystematicError(mu, tau, mu_se, tau_se, len(y), dropped, ll)


def calibrate(table: pd.DataFrame, null: SystematicError, *, conf_level: float = 0.95,
              estimate: str = "estimate", std_error: str = "std_error") -> pd.DataFrame:
    """Calibrated estimates, intervals and p-values of a tidy ratio table against an empirical null.

    For an estimate with log ``y`` and standard error ``se``, and the
    empirical null ``N(mu, tau^2)`` of :func:`fit_systematic_error`:

    * calibrated p-value [1]_: ``2 Phi(-|y - mu| / sqrt(tau^2 + se^2))``,
      the probability of an estimate this far from the null's centre if the
      true ratio were 1 (``EmpiricalCalibration::calibrateP``);
    * calibrated estimate and interval [2]_: ``exp(y - mu)`` and ``exp(y - mu
      -+ z sqrt(tau^2 + se^2))``, as ``calibrateConfidenceInterval`` with
      ``convertNullToErrorModel`` gives them.

    The interval assumes the **constant-error model**: the systematic error
    fitted at the null (true ratio 1) is the same whatever the true effect.
    Only negative controls identify nothing else; positive controls
    (outcomes with a known, or synthetically injected, effect; Schuemie et
    al. 2018) would let the mean and spread of the error depend on the true
    effect size, which neutrostats does not fit. Neither the p-value nor
    the interval includes the uncertainty of ``mu`` and ``tau`` themselves,
    which is large with few controls (see ``null.mu_std_error``).

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy ratio rows with the standard error of the log ratio
        (``odds_ratios_by_tier`` with ``method="logistic"``/``"wald"``,
        ``cox_hazard_ratios``).
    null : SystematicError
    conf_level : float, default 0.95
    estimate, std_error : str
        Column names.

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with ``calibrated_estimate``,
        ``calibrated_std_error`` (``sqrt(tau^2 + se^2)``),
        ``calibrated_conf_low``, ``calibrated_conf_high`` and
        ``calibrated_p_value``; NaN on reference rows, non-estimable rows
        and rows without a standard error, with ``note`` saying why.

    Raises
    ------
    NeutrostatsError
        ``null`` not a :class:`SystematicError`; no row with a standard
        error; missing or non-numeric columns.

    References
    ----------
    .. [1] Schuemie MJ et al. Stat Med. 2014;33:209-218.
    .. [2] Schuemie MJ et al. PNAS. 2018;115:2571-2577.

    Examples
    --------
    >>> import pandas as pd
    >>> null = SystematicError(mu=0.2, tau=0.1, mu_std_error=0.05, tau_std_error=0.05, n_controls=20,
    ...                        n_dropped=0, log_likelihood=0.0)
    >>> t = pd.DataFrame({"estimate": [2.0], "std_error": [0.2]})
    >>> calibrate(t, null)[["calibrated_estimate", "calibrated_conf_low", "calibrated_p_value"]].round(4)
       calibrated_estimate  calibrated_conf_low  calibrated_p_value
    0               1.6375               1.0564              0.0274
    """
    fn = "calibrate"
    table = require_dataframe(table, fn, "table")
    if not isinstance(null, SystematicError):
        raise NeutrostatsError(f"{fn}: null must be the SystematicError of fit_systematic_error(...), found "
                               f"{type(null).__name__}")
    level = require_conf_level(conf_level, fn)
    require_columns(table, [estimate, std_error], fn)
    est, se = _numeric(table, estimate, fn), _numeric(table, std_error, fn)
    ok, reason = _usable_rows(table, est)
    has_se = np.isfinite(se) & (se > 0)
    if ok.any() and not (ok & has_se).any():
        raise NeutrostatsError(f"{fn}: no row has a standard error in {std_error!r} (exact and mid-p odds ratios "
                               "have none); estimate with method='logistic' or 'wald', or pass std_error=")
    reason = np.where(ok & ~has_se, "no standard error", reason)
    ok = ok & has_se
    with np.errstate(divide="ignore", invalid="ignore"):
        shifted = np.log(est) - null.mu
        sd = np.sqrt(null.tau**2 + se**2)
    z = norm.ppf(0.5 + level / 2)
    out = _append(table, {
        "calibrated_estimate": np.exp(shifted), "calibrated_std_error": sd,
        "calibrated_conf_low": np.exp(shifted - z * sd), "calibrated_conf_high": np.exp(shifted + z * sd),
        "calibrated_p_value": 2 * norm.sf(np.abs(shifted) / sd)}, ok)
    return _with_note(out, reason)


def negative_control_estimates(cohort_table: pd.DataFrame, outcomes: tuple[str, ...] | list[str] = NEGATIVE_CONTROL_OUTCOMES,
                               **or_kwargs: Any) -> pd.DataFrame:
    """Odds ratios by tier of the negative-control outcomes, ready for :func:`fit_systematic_error`.

    Runs :func:`~neutrostats.stats.odds_ratios_by_tier` on each outcome
    with the same options (pass the ``method``, ``adjust`` and ``reference``
    of the estimates you will calibrate: the controls must share their
    design) and stacks the rows.

    **Caveat the report must show**: the default gives two outcomes times
    three non-reference tiers, six estimates that share their reference
    group and persons, far below the dozens of negative controls OHDSI
    recommends (Schuemie et al. 2014, 2018); the fitted empirical null is
    then very uncertain, and ``fit_systematic_error`` warns
    (:class:`~neutrostats.errors.NegativeControlWarning`). Treat calibrated
    results as a sensitivity analysis. The controls are only as good as the
    assumption that neutropenia causes neither outcome (Andersen et al.
    2016 found no association).

    Parameters
    ----------
    cohort_table : pandas.DataFrame
        One row per person (``build_cohort(...).table``).
    outcomes : sequence of str, default ("solid_cancer", "autoimmune")
        Negative-control outcome columns.
    **or_kwargs
        Passed to ``odds_ratios_by_tier``; ``method`` defaults to
        ``"logistic"`` (exact and mid-p odds ratios have no standard error
        and are refused).

    Returns
    -------
    pandas.DataFrame
        The odds-ratio rows of every outcome (``outcome``, ``group``, ...,
        ``std_error`` of the log OR, ``is_reference``), outcomes in the
        order given, tiers in tier order; ``attrs["n_missing"]`` sums the
        outcomes' counts.

    Raises
    ------
    NeutrostatsError
        No outcomes, ``method="exact"``/``"midp"``, or the errors of
        ``odds_ratios_by_tier`` (e.g. an outcome column that does not exist).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> i = np.arange(800)
    >>> tiers = ["normal", "mild", "severe"]
    >>> t = pd.DataFrame({"tier": pd.Categorical(np.array(tiers)[i % 3], categories=tiers, ordered=True),
    ...                   "solid_cancer": i % 7 == 0, "autoimmune": i % 11 == 0})
    >>> nc = negative_control_estimates(t, method="wald")
    >>> nc[["outcome", "group", "n", "n_event", "estimate", "std_error"]].round(3)
            outcome   group    n  n_event  estimate  std_error
    0  solid_cancer  normal  267       39     1.000        NaN
    1  solid_cancer    mild  267       38     0.970      0.246
    2  solid_cancer  severe  266       38     0.974      0.246
    3    autoimmune  normal  267       25     1.000        NaN
    4    autoimmune    mild  267       24     0.956      0.300
    5    autoimmune  severe  266       24     0.960      0.300
    """
    fn = "negative_control_estimates"
    outcomes = [outcomes] if isinstance(outcomes, str) else list(outcomes)
    if not outcomes:
        raise NeutrostatsError(f"{fn}: outcomes is empty; pass negative-control outcome columns, e.g. "
                               f"outcomes={NEGATIVE_CONTROL_OUTCOMES!r}")
    method = or_kwargs.pop("method", "logistic")
    if method in ("exact", "midp"):
        raise NeutrostatsError(f"{fn}: method={method!r} gives no standard error, which the empirical null "
                               "needs; pass method='logistic' (the default), 'firth' or 'wald'")
    parts = [odds_ratios_by_tier(cohort_table, o, method=method, **or_kwargs) for o in outcomes]
    out = pd.concat(parts, ignore_index=True)
    out.attrs = {"n_missing": int(sum(p.attrs.get("n_missing", 0) for p in parts)),
                 "missing": {o: p.attrs.get("missing", {}) for o, p in zip(outcomes, parts)}}
    return out
