"""A fitted Cox model: hazard ratios, baseline hazard, predicted survival, residuals.

:func:`cox_model` fits the model of :func:`~neutrostats.stats.cox.cox_hazard_ratios`
(same arguments, same table from :meth:`CoxModel.tidy`) and keeps what R
users take from a ``coxph`` object: the cumulative baseline hazard
(``basehaz``), predicted survival and cumulative hazard for covariate
profiles with standard errors that include the uncertainty of the
coefficients (``survfit(fit, newdata=)``), and the residuals of
``residuals.coxph``. ``cluster=`` gives Lin & Wei's grouped sandwich
variance and the robust score test (``coxph(..., cluster=)``).

Everything is vectorised over persons and event times: the hazard
increments, their variance terms and the Efron-weighted mean covariates
are sums at the event groups of the fitter's sorted risk sets, cumulated
within strata and read off at the requested times.

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"time": [5, 6, 6, 2, 4, 4, 3, 7, 8, 1], "died": [1, 0, 1, 1, 1, 0, 1, 1, 0, 1],
...                   "tier": pd.Categorical(["normal"] * 5 + ["mild"] * 5, categories=["normal", "mild"])})
>>> fit = cox_model(t, "time", "died")
>>> fit.tidy()["estimate"].round(4).tolist()
[1.0, 0.5799]
>>> p = fit.predict(pd.DataFrame({"tier": ["mild"]}), times=[4])  # R: survfit(fit, newdata=): 0.7079104329
>>> p[["profile", "time", "estimate"]].round(4)
   profile  time  estimate
0        0   4.0    0.7079
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.distributions import chi2
from neutrostats.core.validate import require_choice, require_columns, require_conf_level, require_dataframe
from neutrostats.errors import NeutrostatsError
from neutrostats.stats.cox import (
    _TIES,
    ChiSquareTest,
    CoxFit,
    _check_robust,
    _fit_model,
    _hr_table,
    _Model,
    _prepare,
    _Risk,
    _use_robust,
)
from neutrostats.stats.survival import CONF_TYPES, _ci
from neutrostats.stats.tte import numeric_values

# scipy is imported at the first call that needs it, not with neutrostats (neutrostats.core.lazy).

__all__ = ["CoxModel", "cox_model", "RESIDUAL_TYPES", "PREDICT_COLUMNS"]

#: The residual types of :meth:`CoxModel.residuals` (R's ``residuals.coxph`` names).
RESIDUAL_TYPES = ("martingale", "deviance", "score", "schoenfeld", "scaledsch", "dfbeta", "dfbetas")
#: Columns of :meth:`CoxModel.predict`, in order.
PREDICT_COLUMNS = ["profile", "time", "estimate", "std_error", "conf_low", "conf_high", "cumhaz",
                   "cumhaz_std_error"]


@dataclass(frozen=True, eq=False)  # arrays inside: compare the tables, not the objects
class _Hazard:
    """Per event group (sorted by stratum, time): hazard increment, its variance term, the Efron xbar term."""

    time: np.ndarray
    stratum: np.ndarray
    start: dict  # stratum code -> (first group, one past the last group)
    haz: np.ndarray  # cumulated within strata, one leading 0 per stratum start (index by group count)
    var: np.ndarray
    xbar: np.ndarray


def _hazard_parts(risk: _Risk, beta: np.ndarray) -> _Hazard:
    """Breslow/Efron increments at covariates = risk.means, as R's agsurv (survtype = vartype = ties)."""
    eta = risk.X @ beta
    r = np.exp(eta) * risk.w
    V = np.column_stack([r, risk.X * r[:, None]])
    S = risk._sums(V)
    D = np.add.reduceat(V[risk.ev_idx], risk.gstart, axis=0)
    tg, f, wt = risk.tg, risk.f, risk.wt
    denom = S[tg, 0] - f * D[tg, 0]
    x1 = S[tg, 1:] - f[:, None] * D[tg, 1:]
    G = risk.G
    haz = np.bincount(tg, wt / denom, minlength=G)
    var = np.bincount(tg, wt / denom ** 2, minlength=G)
    xb = np.zeros((G, risk.p))
    np.add.at(xb, tg, (wt / denom ** 2)[:, None] * x1)
    first = risk.ev_idx[risk.gstart]
    g_strat = risk.ss[first]
    g_time = risk.ts[first]
    starts = np.flatnonzero(np.r_[True, g_strat[1:] != g_strat[:-1]])
    ends = np.r_[starts[1:], G]
    start = {int(g_strat[a]): (int(a), int(b)) for a, b in zip(starts, ends)}
    return _Hazard(g_time, g_strat, start, np.r_[0.0, np.cumsum(haz)], np.r_[0.0, np.cumsum(var)],
                   np.vstack([np.zeros((1, risk.p)), np.cumsum(xb, axis=0)]))


def _at(h: _Hazard, code: int, times: np.ndarray):
    """Cumulative hazard, variance term and xbar term of stratum ``code`` at ``times`` (0 before its first event)."""
    a, b = h.start.get(code, (0, 0))
    k = a + np.searchsorted(h.time[a:b], times, "right")
    return h.haz[k] - h.haz[a], h.var[k] - h.var[a], h.xbar[k] - h.xbar[a]


@dataclass(frozen=True, eq=False)  # arrays inside: compare the tables, not the objects
class CoxModel:
    """A fitted Cox model (result of :func:`cox_model`).

    Attributes
    ----------
    fit : CoxFit
        The fitter's result (coefficients, model-based variance, tests at 0).
    terms : list of str
        Names of the coefficients (``tier[mild]``, ``age``, ``sex[M]``).
    var : numpy.ndarray
        Variance of the coefficients used for standard errors and
        predictions: robust (Lin-Wei sandwich, grouped by ``cluster``) when
        ``variance == "robust"``, else ``fit.var``.
    variance : str
        ``"model"`` or ``"robust"``.
    wald_test : ChiSquareTest
        Wald test of all coefficients = 0 with ``var`` (R's ``fit$wald.test``).
    robust_score : ChiSquareTest or None
        With the robust variance, the robust score test at 0 (R's
        ``summary(fit)$robscore``); None otherwise.
    conf_level : float
    """

    fit: CoxFit
    terms: list
    var: np.ndarray
    variance: str
    wald_test: ChiSquareTest
    robust_score: ChiSquareTest | None
    conf_level: float
    _m: _Model = field(repr=False)
    _risk: _Risk = field(repr=False)
    _table: pd.DataFrame = field(repr=False)
    _spec: dict = field(repr=False)

    def tidy(self) -> pd.DataFrame:
        """The table of :func:`~neutrostats.stats.cox.cox_hazard_ratios` for this model (a copy)."""
        out = self._table.copy()
        out.attrs = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self._table.attrs.items()}
        return out

    @property
    def coef(self) -> np.ndarray:
        """Log hazard ratios, one per term."""
        return self.fit.coef

    def baseline_hazard(self, centered: bool = False) -> pd.DataFrame:
        """Cumulative baseline hazard per stratum, as R's ``basehaz(fit, centered=)``.

        Breslow's estimator with ``ties="breslow"``, Efron's adjustment for
        tied deaths with ``ties="efron"`` (as ``survfit.coxph``).

        Parameters
        ----------
        centered : bool, default False
            False: at all covariates 0 (tier = the reference tier, numeric
            covariates 0). True: at R's centre ``fit$means``, the weighted
            mean of each column except columns holding only -1, 0 and 1
            (indicators), which stay at 0 (``coxph(nocenter = c(-1, 0, 1))``).

        Returns
        -------
        pandas.DataFrame
            The strata columns (when the model has strata), ``time`` (every
            distinct follow-up end of the stratum, censored ones included)
            and ``cumhaz``, in stratum and time order.

        Examples
        --------
        >>> import pandas as pd
        >>> d = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 1, 0, 1], "x": [0.0, 1, 0, 1]})
        >>> cox_model(d, "t", "e", tier=None, adjust=["x"]).baseline_hazard()["time"].tolist()
        [1.0, 2.0, 3.0, 4.0]
        """
        m, risk = self._m, self._risk
        beta = np.asarray(self.fit.coef)
        h = _hazard_parts(risk, beta)
        centre = _r_means(m) if centered else np.zeros(risk.p)
        rel = float(np.exp((centre - risk.means) @ beta))
        codes = np.zeros(m.time.size, dtype=np.int64) if m.strata is None else m.strata
        parts = []
        for code in np.unique(codes):
            tt = np.unique(m.time[codes == code])
            part = pd.DataFrame({"time": tt, "cumhaz": rel * _at(h, int(code), tt)[0]})
            if m.strata_keys is not None:
                key = m.strata_keys.loc[m.strata_keys["_code"] == code].iloc[0]
                for c in self._spec["strata"][::-1]:
                    part.insert(0, c, key[c])
            parts.append(part)
        return pd.concat(parts, ignore_index=True)

    def predict(self, newdata: pd.DataFrame, times: Any, conf_level: float | None = None,
                conf_type: str = "log") -> pd.DataFrame:
        """Predicted survival and cumulative hazard for covariate profiles, as R's ``survfit(fit, newdata=)``.

        The variance of the cumulative hazard at ``t`` for profile ``z`` is
        ``exp(2 z'b) [sum_j dH_j / S0_j + d(t)' V d(t)]`` (Tsiatis 1981;
        Therneau & Grambsch 2000, section 10.2), the second term carrying
        the uncertainty of the coefficients (``V`` is :attr:`var`, robust
        when the model's variance is robust, as R), with Efron's weighting
        of tied deaths for ``ties="efron"``.

        Parameters
        ----------
        newdata : pandas.DataFrame
            One row per profile, with the model's tier, ``adjust`` and
            ``strata`` columns under the same names, holding levels the
            model knows (the duration and event columns are not needed).
        times : float or sequence of float
            Times (>= 0, at most the stratum's last follow-up time).
        conf_level : float, optional
            Default: the model's ``conf_level``.
        conf_type : {"log", "log-log", "plain"}, default "log"
            As R's ``survfit.coxph`` (its default is ``"log"``).

        Returns
        -------
        pandas.DataFrame
            Columns :data:`PREDICT_COLUMNS`, one row per profile and time:
            ``profile`` (the row label of ``newdata``), ``time``,
            ``estimate`` (S(t | z)), ``std_error`` (of S, as
            ``summary(survfit)$std.err``), ``conf_low``, ``conf_high``,
            ``cumhaz`` (H(t | z)) and ``cumhaz_std_error``.

        Raises
        ------
        NeutrostatsError
            For a missing column, a missing value, a level or stratum the
            model does not know (naming the levels), a tier without events
            in the fit, and times that are negative or past follow-up.

        Examples
        --------
        >>> import pandas as pd
        >>> d = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "e": [1, 1, 1, 0, 1, 1], "x": [1.0, 0, 1, 0, 0, 1]})
        >>> fit = cox_model(d, "t", "e", tier=None, adjust=["x"])
        >>> p = fit.predict(pd.DataFrame({"x": [0.0, 1.0]}), times=[2.5])  # R: 0.7045986628, 0.6789023977
        >>> p[["profile", "estimate"]].round(4)
           profile  estimate
        0        0    0.7046
        1        1    0.6789
        """
        fn = "CoxModel.predict"
        level = self.conf_level if conf_level is None else require_conf_level(conf_level, fn)
        require_choice(conf_type, CONF_TYPES, fn, "conf_type")
        Z, codes, labels = self._encode(newdata, fn)
        tt = _check_times(times, self._m, codes, fn)
        beta = np.asarray(self.fit.coef)
        h = _hazard_parts(self._risk, beta)
        Zc = Z - self._risk.means
        rel = np.exp(Zc @ beta)
        k, nt = Z.shape[0], tt.size
        cumhaz, varh = np.empty((k, nt)), np.empty((k, nt))
        for code in np.unique(codes):  # a few strata; every profile of a stratum at once
            rows = np.flatnonzero(codes == code)
            H, VH, XB = _at(h, int(code), tt)
            d = H[None, :, None] * Zc[rows, None, :] - XB[None, :, :]
            quad = np.einsum("kti,ij,ktj->kt", d, self.var, d)
            cumhaz[rows] = rel[rows, None] * H[None, :]
            varh[rows] = rel[rows, None] ** 2 * (VH[None, :] + quad)
        surv = np.exp(-cumhaz.ravel())
        varh = varh.ravel()
        lo, hi = _ci(surv, varh, level, conf_type)
        return pd.DataFrame({"profile": pd.Index(labels).repeat(nt).to_numpy(), "time": np.tile(tt, k),
                             "estimate": surv, "std_error": surv * np.sqrt(varh), "conf_low": lo, "conf_high": hi,
                             "cumhaz": cumhaz.ravel(), "cumhaz_std_error": np.sqrt(varh)}, columns=PREDICT_COLUMNS)

    def _encode(self, newdata, fn):
        """Design rows of the profiles (uncentred), their stratum codes and labels."""
        m, spec = self._m, self._spec
        nd = require_dataframe(newdata, fn, "newdata", allow_empty=False)
        need = [*([spec["tier"]] if spec["tier"] is not None else []), *spec["adjust"], *spec["strata"]]
        require_columns(nd, need, fn, "newdata needs the model's tier, adjust= and strata= columns.")
        absent = [c for c in need if nd[c].isna().any()]
        if absent:
            raise NeutrostatsError(f"{fn}: newdata has missing values in {absent}; every profile needs a value "
                                   "in every model column")
        Z = np.zeros((len(nd), len(m.names)))
        if spec["tier"] is not None:
            _encode_tier(nd[spec["tier"]], m, spec["tier"], Z, fn)
        _encode_covariates(nd, m, Z, fn)
        codes = np.zeros(len(nd), dtype=np.int64)
        if spec["strata"]:
            codes = _strata_codes(nd, m, spec["strata"], fn)
        return Z, codes, list(nd.index)

    def residuals(self, type: str = "martingale") -> pd.DataFrame:
        """Residuals of the fit, as R's ``residuals.coxph(fit, type=)`` with its default weighting.

        Parameters
        ----------
        type : {"martingale", "deviance", "score", "schoenfeld", "scaledsch", "dfbeta", "dfbetas"}
            ``martingale``: event minus the fitted cumulative hazard over
            the person's time at risk (Efron's share for tied deaths);
            ``deviance``: its symmetrised form; ``score``: the score
            residuals (one column per term); ``dfbeta``: score residuals
            times the model-based variance (approximate change in each
            coefficient when the row is left out), ``dfbetas`` scaled by
            the standard errors (these two are multiplied by the case
            weight, as R's default ``weighted = TRUE`` for them; the other
            types are not); ``schoenfeld``: per event, the covariates
            minus their risk-set mean at the event time; ``scaledsch``:
            ``coef + events * V * schoenfeld`` (Grambsch & Therneau).

        Returns
        -------
        pandas.DataFrame
            Indexed like the input rows used in the fit (complete cases
            with a positive weight, outside tiers without events): one
            column named ``type`` for martingale and deviance residuals, one
            column per term for the others; Schoenfeld rows are the events
            in stratum and time order, with their ``time`` first.

        Examples
        --------
        >>> import pandas as pd
        >>> d = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 1, 0, 1], "x": [0.0, 1, 0, 1]})
        >>> mart = cox_model(d, "t", "e", tier=None, adjust=["x"]).residuals()
        >>> list(mart.columns), bool(abs(mart["martingale"].sum()) < 1e-12)  # they sum to 0 at the MLE
        (['martingale'], True)
        """
        require_choice(type, RESIDUAL_TYPES, "CoxModel.residuals", "type")
        m, risk = self._m, self._risk
        index = pd.RangeIndex(m.time.size) if m.index is None else m.index
        beta = np.asarray(self.fit.coef)
        naive = np.asarray(self.fit.var)
        if type in ("schoenfeld", "scaledsch"):
            res, ev = _schoenfeld(risk, beta)
            if type == "scaledsch":
                res = int(m.event.sum()) * res @ naive + beta
            rows = risk.order[ev]
            out = pd.DataFrame(res, index=index[rows], columns=list(m.names))
            out.insert(0, "time", m.time[rows])
            return out
        if type in ("martingale", "deviance"):
            mart = _martingale(risk, beta)
            vals = mart if type == "martingale" else _deviance(mart, m.event)
            return pd.DataFrame({type: vals}, index=index)
        score = np.empty((m.time.size, risk.p))
        score[risk.order] = risk.score_residuals(beta)
        if type in ("dfbeta", "dfbetas"):
            # R weights these (and only these) by default: the change in the fit when the row's weight goes.
            w = np.ones(m.time.size) if m.weights is None else m.weights
            score = (score * w[:, None]) @ naive
            if type == "dfbetas":
                score = score / np.sqrt(np.diag(naive))
        return pd.DataFrame(score, index=index, columns=list(m.names))


def _r_means(m: _Model) -> np.ndarray:
    """R's ``fit$means``: weighted column means, 0 for columns of -1/0/1 only (coxph's ``nocenter``)."""
    w = np.ones(m.time.size) if m.weights is None else m.weights
    means = (w @ m.X) / w.sum()
    indicator = np.all(np.isin(m.X, (-1.0, 0.0, 1.0)), axis=0)
    return np.where(indicator, 0.0, means)


def _check_times(times, m: _Model, codes, fn) -> np.ndarray:
    tt = np.atleast_1d(np.asarray(times, dtype=float)).ravel()
    if tt.size == 0 or not np.all(np.isfinite(tt)) or np.any(tt < 0):
        raise NeutrostatsError(f"{fn}: times must be finite numbers >= 0, found {times!r}")
    strata = np.zeros(m.time.size, dtype=np.int64) if m.strata is None else m.strata
    for code in np.unique(codes):
        last = float(m.time[strata == code].max())
        if tt.max() > last:
            where = "" if m.strata is None else " of the profile's stratum"
            raise NeutrostatsError(f"{fn}: time {tt.max()} is past the last follow-up time {last}{where}; the "
                                   "curve is not estimated there: ask for times up to the end of follow-up")
    return tt


def _encode_tier(values: pd.Series, m: _Model, tier: str, Z, fn):
    known = [r["term"] for r in m.tier_rows]
    vals = values.astype(object).to_numpy()
    unknown = sorted({str(v) for v in vals if v not in known})
    if unknown:
        raise NeutrostatsError(f"{fn}: newdata column {tier!r} holds {unknown}, which are not tiers of the model; "
                               f"tiers are {known}")
    without = {r["term"] for r in m.tier_rows if r["n"] == 0} | set(m.dropped_tiers)
    bad = sorted({str(v) for v in vals if v in without})
    if bad:
        raise NeutrostatsError(f"{fn}: tier(s) {bad} have no persons or no events in the fit, so the model "
                               "predicts nothing for them (their hazard ratio has no finite estimate)")
    for i, v in enumerate(vals):
        if v in m.tier_cols:
            Z[i, m.tier_cols[v]] = 1.0


def _encode_covariates(nd: pd.DataFrame, m: _Model, Z, fn):
    for cov, (kind, levels) in m.encoding.items():
        idx = m.terms[cov]
        if kind == "categorical":
            vals = nd[cov].astype(object).to_numpy()
            unknown = sorted({str(v) for v in vals if v not in levels})
            if unknown:
                raise NeutrostatsError(f"{fn}: newdata column {cov!r} holds {unknown}, which the model does not "
                                       f"know; its levels are {levels}")
            for j, lev in zip(idx, levels[1:]):
                Z[:, j] = (vals == lev).astype(float)
        else:
            x = numeric_values(nd[cov], cov, fn, f"covariate {cov!r}", "pass numbers as in the fitted data",
                               allow_bool=kind == "boolean")
            if kind == "boolean" and not np.all(np.isin(x, (0.0, 1.0))):
                raise NeutrostatsError(f"{fn}: newdata column {cov!r} must be True/False as in the fit")
            Z[:, idx[0]] = x


def _strata_codes(nd: pd.DataFrame, m: _Model, strata: list, fn) -> np.ndarray:
    keys = m.strata_keys
    assert keys is not None
    merged = nd[strata].reset_index(drop=True).merge(keys, how="left", on=strata)
    if merged["_code"].isna().any():
        known = [tuple(r) if len(strata) > 1 else r[0] for r in keys[strata].itertuples(index=False)]
        raise NeutrostatsError(f"{fn}: newdata has strata {strata} values the model does not know; its strata "
                               f"are {known}")
    return merged["_code"].to_numpy(dtype=np.int64)


def _martingale(risk: _Risk, beta) -> np.ndarray:
    """Event minus the fitted cumulative hazard (input order); tied deaths get Efron's share of their own time."""
    eta = risk.X @ beta
    eta -= eta.max()
    e = np.exp(eta)
    V = np.column_stack([e * risk.w])
    S = risk._sums(V)[:, 0]
    D = np.add.reduceat(V[risk.ev_idx, 0], risk.gstart)
    tg, f, wt = risk.tg, risk.f, risk.wt
    a = wt / (S[tg] - f * D[tg])
    ca = np.r_[0.0, np.cumsum(np.bincount(tg, a, minlength=risk.G))]
    cum = e * (ca[risk.last] - ca[risk.first])
    ev = risk.ev_idx
    cum[ev] -= e[ev] * np.bincount(tg, f * a, minlength=risk.G)[risk.g_of_event]
    status = np.zeros(e.size)
    status[ev] = 1.0
    out = np.empty(e.size)
    out[risk.order] = status - cum
    return out


def _deviance(mart: np.ndarray, event: np.ndarray) -> np.ndarray:
    d = event.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.where(d > 0, d * np.log(np.where(d > 0, d - mart, 1.0)), 0.0)
    return np.sign(mart) * np.sqrt(-2 * (mart + inner))


def _schoenfeld(risk: _Risk, beta):
    """Per event (sorted order): x minus the (Efron-averaged) risk-set mean at its time; and the event rows."""
    eta = risk.X @ beta
    eta -= eta.max()
    r = np.exp(eta) * risk.w
    V = np.column_stack([r, risk.X * r[:, None]])
    S = risk._sums(V)
    D = np.add.reduceat(V[risk.ev_idx], risk.gstart, axis=0)
    tg, f = risk.tg, risk.f
    mean = (S[tg, 1:] - f[:, None] * D[tg, 1:]) / (S[tg, 0] - f * D[tg, 0])[:, None]
    msum = np.zeros((risk.G, risk.p))
    np.add.at(msum, tg, mean)
    mbar = msum / np.bincount(tg, minlength=risk.G)[:, None]
    return risk.X_ev - mbar[risk.g_of_event], risk.ev_idx


def _robust_score(risk: _Risk, m: _Model) -> ChiSquareTest:
    """R's robust score test at 0: U(0)' (T0'T0)^-1 U(0), T0 the weighted score residuals at 0 (by cluster)."""
    t0 = risk.score_residuals(np.zeros(risk.p)) * risk.w[:, None]
    if m.cluster is not None:
        t0 = risk.collapse(t0, m.cluster)
    u = t0.sum(axis=0)
    stat = float(u @ np.linalg.solve(t0.T @ t0, u))
    return ChiSquareTest(stat, risk.p, float(chi2.sf(stat, risk.p)))


def cox_model(
    df: pd.DataFrame,
    duration: str,
    event: str,
    tier: str | None = "tier",
    *,
    reference: Any = None,
    adjust: list[str] | None = None,
    ties: str = "efron",
    conf_level: float = 0.95,
    entry: str | None = None,
    strata: str | list[str] | None = None,
    categorical: list[str] | None = None,
    weights: str | None = None,
    robust: bool | None = None,
    cluster: str | None = None,
) -> CoxModel:
    """Fit a Cox model by tier and keep it: hazard ratios, baseline hazard, predictions, residuals.

    Parameters
    ----------
    df, duration, event, tier, reference, adjust, ties, conf_level, entry, strata, categorical, weights, robust
        As :func:`~neutrostats.stats.cox.cox_hazard_ratios`.
    cluster : str, optional
        Column of cluster ids (e.g. the person when persons have several
        rows): Lin & Wei's grouped sandwich variance, R's ``coxph(...,
        cluster = id)`` (no small-sample factor, as R), and the robust
        score test. Implies the robust variance.

    Returns
    -------
    CoxModel
        ``.tidy()`` is :func:`~neutrostats.stats.cox.cox_hazard_ratios`'
        table; ``.baseline_hazard()``, ``.predict()``, ``.residuals()``.

    Raises
    ------
    NeutrostatsError
        As :func:`~neutrostats.stats.cox.cox_hazard_ratios`; also when no
        coefficient is left to fit.

    Warns
    -----
    DataQualityWarning, InfiniteHazardRatioWarning, CoxConvergenceWarning
        As :func:`~neutrostats.stats.cox.cox_hazard_ratios`.

    References
    ----------
    .. [1] Lin DY, Wei LJ. The robust inference for the Cox proportional
       hazards model. J Am Stat Assoc 1989;84:1074-8.
    .. [2] Tsiatis AA. A large sample study of Cox's regression model. Ann
       Stat 1981;9:93-108.
    .. [3] Therneau TM, Grambsch PM. Modeling Survival Data: Extending the
       Cox Model. Springer 2000 (ch. 4 residuals, 10.2 predicted curves).

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6, 7, 8], "e": [1, 1, 1, 0, 1, 1, 0, 1],
    ...                   "x": [1.0, 0, 1, 0, 0, 1, 1, 0], "id": [1, 1, 2, 2, 3, 3, 4, 4]})
    >>> fit = cox_model(d, "t", "e", tier=None, adjust=["x"], cluster="id")
    >>> fit.variance, fit.tidy()["std_error"].round(6).tolist()  # R: coxph(..., cluster = id): 0.508432789
    ('robust', [0.508433])
    >>> round(fit.robust_score.statistic, 6)  # R: fit$rscore 0.475224377
    0.475224
    """
    fn = "cox_model"
    require_choice(ties, _TIES, fn, "ties")
    level = require_conf_level(conf_level, fn)
    _check_robust(robust, cluster, fn)
    m = _prepare(df, duration, event, tier, reference, adjust, entry, strata, fn, categorical, weights=weights,
                 cluster=cluster)
    use_robust = _use_robust(robust, m)
    risk, fit = _fit_model(m, ties, fn)
    beta = np.asarray(fit.coef)
    var = np.asarray(fit.var)
    rscore = None
    if use_robust:
        var = risk.robust_var(beta, var, m.cluster)
        rscore = _robust_score(risk, m)
    p = beta.size
    wald = float(beta @ np.linalg.solve(var, beta))
    table = _hr_table(m, fit.coef, np.sqrt(np.diag(var)), fit.infinite, level, use_robust, fn)
    var.setflags(write=False)
    spec = dict(tier=tier, adjust=list(adjust or []) if not isinstance(adjust, str) else [adjust],
                strata=[strata] if isinstance(strata, str) else list(strata or []), ties=ties, cluster=cluster)
    return CoxModel(fit=fit, terms=list(m.names), var=var, variance="robust" if use_robust else "model",
                    wald_test=ChiSquareTest(wald, p, float(chi2.sf(wald, p))), robust_score=rscore,
                    conf_level=level, _m=m, _risk=risk, _table=table, _spec=spec)
