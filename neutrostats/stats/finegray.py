"""Fine–Gray competing-risk regression: subdistribution hazard ratios and predicted cumulative incidence.

:func:`fine_gray` gives the tidy table of subdistribution hazard ratios
(tiers against the reference tier, then the ``adjust`` covariates), as
R's ``cmprsk::crr`` and ``riskRegression::FGR`` (which calls ``crr``);
:func:`fine_gray_fit` returns the fit itself (:class:`FineGrayFit`) with the
baseline cumulative subdistribution hazard, and
:func:`predict_cumulative_incidence` the predicted cumulative incidence of
the cause for covariate profiles (= ``predict.crr``, ``predictRisk`` on an
``FGR`` fit).

The model (Fine & Gray 1999) is a proportional-hazards model for the
subdistribution hazard of the cause: persons who had a competing event stay
in the risk set after it, with the weight ``G(t-) / G(t_j-)``, where ``G``
is the Kaplan–Meier estimate of the censoring distribution (censorings as
the events, every other end of follow-up as a censoring) and ``t_j`` the
competing event's time. Tied times are handled as ``crr`` does: Breslow's
approximation for tied events of the cause; a person censored or with a
competing event at an event time is in its risk set with weight 1; the
weights use ``G`` just before the event time (censorings at that time are
not yet counted).

The variance is ``crr``'s (Fine & Gray 1999, section 4): the sandwich
``I^-1 (sum_i (eta_i + psi_i)(eta_i + psi_i)') I^-1``, where ``eta_i`` are
the score residuals of the weighted partial likelihood and ``psi_i`` the
terms that account for estimating ``G`` (a censoring-martingale integral).
Without ``psi_i`` it is the robust variance of
``coxph(Surv(fgstart, fgstop, fgstatus) ~ ..., weights = fgwt, cluster = id,
ties = "breslow")`` on ``survival::finegray`` data; the inverse information
is that fit's model-based (naive) variance. All three are kept in the fit.

Delayed entry (``entry=``) follows ``survival::finegray`` with
``Surv(entry, exit, event)``: the censoring distribution is the Kaplan–Meier
estimate with delayed entry, and a competing event's weight is multiplied by
the ratio of the truncation distribution's estimates (Geskus 2011); ``crr``
has no delayed entry, so its variance is not available there and the robust
variance (``coxph(..., cluster = id)``) is reported.

Everything is vectorised: one sort, then every risk-set sum, score,
information and residual is a cumulative sum over the sorted persons read
at the distinct event times, O(n p^2) per Newton step.

References
----------
.. [1] Fine JP, Gray RJ. A proportional hazards model for the subdistribution
   of a competing risk. J Am Stat Assoc 1999;94:496-509.
.. [2] Geskus RB. Cause-specific cumulative incidence estimation and the Fine
   and Gray model under both left truncation and right censoring.
   Biometrics 2011;67:39-49.

Examples
--------
>>> import numpy as np
>>> from neutrostats.stats.finegray import fine_gray_arrays
>>> fit = fine_gray_arrays([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 1, 0, 1, 2, 1, 0], [[1], [0], [1], [0], [0], [1], [0], [1]])
>>> fit.converged, fit.coef.round(6)  # R: coef(cmprsk::crr(time, event, x)) is 0.129748
(True, array([0.129748]))
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.distributions import norm
from neutrostats.core.validate import covariate_kinds, factor_levels, require_choice, require_conf_level, split_reference
from neutrostats.errors import CoxConvergenceWarning, InfiniteHazardRatioWarning, NeutrostatsError
from neutrostats.stats.cox import (
    COX_COLUMNS,
    _check_design,
    _check_model_columns,
    _covariate_terms,
    _tier_terms,
)
from neutrostats.stats.tte import check_tte

# scipy is imported at the first call that needs it, not with neutrostats (neutrostats.core.lazy).

__all__ = [
    "FINE_GRAY_COLUMNS",
    "PREDICT_CIF_COLUMNS",
    "FineGrayFit",
    "fine_gray",
    "fine_gray_fit",
    "fine_gray_arrays",
    "predict_cumulative_incidence",
]

#: Columns of :func:`fine_gray`, in order (those of ``cox_hazard_ratios``).
FINE_GRAY_COLUMNS = list(COX_COLUMNS)
#: Columns of :func:`predict_cumulative_incidence`, in order.
PREDICT_CIF_COLUMNS = ["profile", "group", "time", "estimate"]

_VARIANCES = ("crr", "robust", "model")
_CONVENTIONS = ("crr", "finegray")
_EPS = 1e-9  # as coxph.control(eps): relative change of the log pseudo-likelihood at which Newton-Raphson stops
_ITER_MAX = 30
_TOLER_INF = 1e-9 ** 0.5  # as coxph.control(toler.inf)


# --- the engine ------------------------------------------------------------------------


def _rev_cumsum(V: np.ndarray) -> np.ndarray:
    """Sums of rows i.. of V for i = 0..n (a zero row last)."""
    out = np.zeros((V.shape[0] + 1,) + V.shape[1:])
    out[:-1] = np.cumsum(V[::-1], axis=0)[::-1]
    return out


def _cumsum0(V: np.ndarray) -> np.ndarray:
    """Sums of rows ..i-1 of V for i = 0..n (a zero row first)."""
    out = np.zeros((V.shape[0] + 1,) + V.shape[1:])
    np.cumsum(V, axis=0, out=out[1:])
    return out


def _km_minus(stop, is_event, start, at, tied_out=None, side="left"):
    """Kaplan–Meier S(at-) of the events ``is_event`` (at risk on (start, stop]) and its event times, counts, at-risk.

    ``tied_out`` marks persons who leave just before events tied with their
    end (survival::finegray's order: events before censorings); ``side="right"``
    gives S(at) instead of S(at-).
    """
    u, dc = np.unique(stop[is_event], return_counts=True)
    y = stop.size - np.searchsorted(np.sort(stop), u, "left")
    if start is not None:
        y = y - (start.size - np.searchsorted(np.sort(start), u, "left"))
    if tied_out is not None:
        tied = np.sort(stop[tied_out])
        y = y - (np.searchsorted(tied, u, "right") - np.searchsorted(tied, u, "left"))
    surv = np.cumprod(1.0 - dc / y)
    return np.r_[1.0, surv][np.searchsorted(u, at, side)], u, dc.astype(float), y.astype(float)


def _runs(idx):
    """Starts of the runs of equal values of a non-decreasing index, and the values."""
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]]) if idx.size else np.zeros(0, dtype=np.int64)
    return starts, idx[starts]


class _FGRisk:
    """Sorted data of a Fine–Gray fit and the weights of its risk sets.

    ``status`` is 0 (censored), 1 (the cause) or 2 (a competing event).
    Event groups ``k`` are the distinct times of the cause. Person ``i`` is
    in the risk set of ``k`` with weight 1 when ``entry_i < t_k <= t_i``,
    and, after a competing event (``t_i < t_k``), with weight
    ``w_k / w_i`` (``w`` is ``G(t-)``, times the truncation factor with
    delayed entry). ``active`` 0 takes a person out of every risk set (the
    limit of a tier without events) but keeps it in the censoring
    distribution, as the limit of ``crr``'s fit.
    """

    def __init__(self, time, status, X, entry=None, active=None, convention="crr"):
        n, p = X.shape
        order = np.argsort(time, kind="stable")
        t, st = time[order], status[order]
        self.order, self.n, self.p, self.t = order, n, p, t
        self.means = X.mean(axis=0)
        # Centred (as coxph): the estimates do not change and the sums are better conditioned.
        self.X = np.asfortranarray(X[order] - self.means)
        self.act = None if active is None or np.all(active) else active[order].astype(float)
        fail, comp = st == 1, st == 2
        self.fail, self.comp, self.cens = fail, comp, st == 0
        self.fail_idx = np.flatnonzero(fail)
        tk, d = np.unique(t[fail], return_counts=True)
        self.tk, self.d, self.K = tk, d.astype(float), tk.size
        self.k_of_fail = np.searchsorted(tk, t[fail])
        self.kidx = np.searchsorted(tk, t, "right")  # event groups with t_k <= t_i
        ent = None if entry is None else entry[order]
        self.entry = ent
        self.kent = None if ent is None else np.searchsorted(tk, ent, "right")
        if ent is not None:
            self.eorder = np.argsort(ent, kind="stable")
        w_i, w_k, self.cens_km = _weights(t, st, ent, tk, convention)
        self.convention = convention
        self.wk = w_k
        with np.errstate(divide="ignore", invalid="ignore"):
            self.wcomp = np.where(comp, 1.0 / w_i, 0.0)
        self.sum_fail_x = self.X[fail].sum(axis=0)
        self.comp_idx = np.flatnonzero(comp)
        self.runs_all = _runs(self.kidx)
        self.runs_comp = _runs(self.kidx[self.comp_idx])
        if ent is not None:
            self.runs_ent = _runs(self.kent[self.eorder])
        self._eta = np.empty(n)
        self._V = np.empty((n, p + 1), order="F")

    def _v(self, beta, cols=None):
        """eta (shifted by its maximum), exp(eta) of the active persons, and V = [e, e X] (its first ``cols``)."""
        X = self.X
        eta = np.matmul(X, beta, out=self._eta)
        eta -= eta.max()
        # Work space reused by every step (fresh large arrays would cost page faults each time).
        V = self._V
        e = np.exp(eta, out=V[:, 0])
        if self.act is not None:
            e *= self.act
        cols = self.p + 1 if cols is None else cols
        for k in range(cols - 1):  # column by column: X is column-major
            np.multiply(X[:, k], e, out=V[:, k + 1])
        return eta, e, V[:, :cols]

    def _bins(self, V, runs):
        starts, vals = runs
        B = np.zeros((self.K + 1, V.shape[1]))
        B[vals] = np.add.reduceat(V, starts, axis=0)
        return B

    def _sums(self, beta, sums=None):
        """eta, exp(eta) and the (p+1)-column weighted sums S_k of the risk sets (K by p + 1; ``sums`` columns)."""
        eta, e, V = self._v(beta, sums)
        # Person i is in the weight-1 part of the risk sets k < kidx_i (and k >= kent_i), a competing
        # event's extension in k >= kidx_i: per-group bins and cumulative sums over the K groups.
        S = np.cumsum(self._bins(V, self.runs_all)[::-1], axis=0)[::-1][1:]
        if self.entry is not None:
            S -= np.cumsum(self._bins(V[self.eorder], self.runs_ent)[::-1], axis=0)[::-1][1:]
        if self.comp_idx.size:
            Vc = V[self.comp_idx] * self.wcomp[self.comp_idx, None]
            S += self.wk[:, None] * np.cumsum(self._bins(Vc, self.runs_comp), axis=0)[:self.K]
        return eta, e, S

    def _at_risk_weights(self, A):
        """Per person: sum of A_k over its weight-1 risk sets, and of A_k w_k over those after a competing event."""
        Acum = _cumsum0(A)
        a = Acum[self.kidx]
        if self.kent is not None:
            a = a - Acum[self.kent]
        AGcum = _cumsum0(A * self.wk[(...,) + (None,) * (A.ndim - 1)])
        after = AGcum[-1] - AGcum[self.kidx]
        return a, after

    def loglik(self, beta):
        """Log pseudo-likelihood alone (for step-halving)."""
        eta, _, S = self._sums(beta, sums=1)
        return float(eta[self.fail].sum() - self.d @ np.log(S[:, 0]))

    def derivs(self, beta):
        """Log pseudo-likelihood, score and information at ``beta`` (crr's, Breslow ties)."""
        eta, e, S = self._sums(beta)
        S0 = S[:, 0]
        xbar = S[:, 1:] / S0[:, None]
        d = self.d
        loglik = float(eta[self.fail].sum() - d @ np.log(S0))
        u = self.sum_fail_x - d @ xbar
        a, after = self._at_risk_weights(d / S0)
        c = e * (a + self.wcomp * after)
        sq = np.sqrt(np.maximum(c, 0.0))
        Xs = self.X * sq[:, None]
        info = Xs.T @ Xs - (xbar * d[:, None]).T @ xbar
        return loglik, u, info

    def residuals(self, beta):
        """Score residuals eta_i and the censoring terms psi_i (sorted order, n by p), as crr's crrvv."""
        X = self.X
        _, e, S = self._sums(beta)
        S0 = S[:, 0]
        xbar = S[:, 1:] / S0[:, None]
        A = self.d / S0
        a, after = self._at_risk_weights(A)
        ab, ab_after = self._at_risk_weights(A[:, None] * xbar)
        eta = -(e[:, None] * (X * a[:, None] - ab))
        eta -= (e * self.wcomp)[:, None] * (X * after[:, None] - ab_after)
        eta[self.fail_idx] += X[self.fail_idx] - xbar[self.k_of_fail]
        if self.entry is not None or self.convention != "crr":
            return eta, None
        # psi: the integral of q(u) / y(u) over the censoring martingale (Fine & Gray 1999, sec. 4).
        F = _cumsum0(self._v(beta)[2] * self.wcomp[:, None])  # competing events before each person
        u, dc, y = self.cens_km
        upos = np.searchsorted(self.t, u, "left")
        C = F[upos]  # competing events before u, weighted by 1 / G(t_j-)
        kq = np.searchsorted(self.tk, u, "left")  # event groups at or after u
        Q0 = _rev_cumsum(A * self.wk)[kq]
        Q1 = _rev_cumsum((A * self.wk)[:, None] * xbar)[kq]
        q = C[:, 1:] * Q0[:, None] - C[:, :1] * Q1
        P = _cumsum0(q * (dc / y ** 2)[:, None])
        psi = -P[np.searchsorted(u, self.t, "right")]
        ci = np.flatnonzero(self.cens)
        uc = np.searchsorted(u, self.t[ci])
        psi[ci] += q[uc] / y[uc][:, None]
        return eta, psi

    def baseline(self, beta):
        """Jumps of the cumulative baseline subdistribution hazard at the event times, at the centred X = 0."""
        _, _, S = self._sums(beta)
        shift = float((self.X @ beta).max())  # _sums subtracted it from eta
        return self.d / S[:, 0] * np.exp(-shift)


def _weights(t, st, ent, tk, convention):
    """Weights w at each person's time and at each t_k: G(t-), with delayed entry times H(t-) (survival::finegray).

    ``G`` is the Kaplan–Meier estimate of the censoring distribution. crr
    counts a person whose event is tied with a censoring time as at risk of
    censoring then; survival::finegray takes the event first (the person is
    not at risk of that censoring). With delayed entry, ``H(t-)`` estimates
    P(entry < t) from the entries seen backwards in time (Geskus 2011), as
    survival::finegray.
    """
    cens = st == 0
    out = None if convention == "crr" else ~cens
    G_i, u, dc, y = _km_minus(t, cens, ent, t, tied_out=out)
    G_k = _km_minus(t, cens, ent, tk, tied_out=out)[0]
    if ent is not None:
        G_i = G_i * _truncation(t, ent, t)
        G_k = G_k * _truncation(t, ent, tk)
    return G_i, G_k, (u, dc, y)


def _truncation(t, ent, at):
    """H(at-) = prod over entry times e >= at of (1 - d_e / #(entry <= e < t)): P(entry < at), reversed-time KM."""
    # Seen backwards, a person is at risk on [entry, t) and 'fails' at its entry.
    return _km_minus(-ent, np.ones(ent.size, dtype=bool), -t, -at, side="right")[0]


# --- fitting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """How to build the design matrix of a table: the tier's columns and the covariates' kinds and levels."""

    tier: str | None
    tier_categories: list
    tier_cols: dict
    dropped_tiers: list
    covariates: list  # (name, kind, levels or None)
    names: list


@dataclass(frozen=True)
class FineGrayFit:
    """Result of :func:`fine_gray_fit` / :func:`fine_gray_arrays` (read-only arrays).

    Attributes
    ----------
    coef : numpy.ndarray
        Log subdistribution hazard ratios, one per design column (``names``).
    var : numpy.ndarray
        The variance reported (``variance``: ``"crr"``, ``"robust"`` or
        ``"model"``).
    var_crr, var_robust, var_model : numpy.ndarray
        ``crr``'s variance (None with delayed entry), the robust sandwich
        without the censoring term (``coxph(..., cluster = id)`` on
        ``finegray`` data) and the inverse information.
    names : list of str
        Design column names (``tier[mild]``, ``age``, ``sex[M]``).
    loglik : tuple of float
        Log pseudo-likelihood at 0 and at ``coef`` (``crr``'s
        ``loglik.null``, ``loglik``).
    score : numpy.ndarray
    iterations : int
    converged : bool
    infinite : numpy.ndarray of bool
        Coefficients that look infinite (another Newton step would still move them).
    n, n_events, n_competing, n_censored : int
        Persons used and their ends of follow-up.
    times : numpy.ndarray
        Distinct event times of the cause (``crr``'s ``uftime``).
    baseline_hazard : numpy.ndarray
        Cumulative baseline subdistribution hazard at ``times`` at covariates
        0 (``cumsum(crr$bfitj)``).
    max_time : float
        Last follow-up time: predictions stop there.
    cause : Any
        The event code of the cause.
    variance : str
    n_missing : int
    missing : dict
    """

    coef: np.ndarray
    var: np.ndarray
    var_crr: np.ndarray | None
    var_robust: np.ndarray
    var_model: np.ndarray
    names: list
    loglik: tuple[float, float]
    score: np.ndarray
    iterations: int
    converged: bool
    infinite: np.ndarray
    n: int
    n_events: int
    n_competing: int
    n_censored: int
    times: np.ndarray
    baseline_hazard: np.ndarray
    max_time: float
    cause: Any = 1
    variance: str = "crr"
    convention: str = "crr"
    n_missing: int = 0
    missing: dict = field(default_factory=dict)
    spec: _Spec | None = None

    @property
    def std_error(self) -> np.ndarray:
        """Standard errors of ``coef`` (from ``var``)."""
        return np.sqrt(np.diag(self.var))

    def cumulative_incidence(self, X: Any, times: Any) -> np.ndarray:
        """Predicted cumulative incidence of the cause, profiles (rows of design matrix ``X``) by ``times``.

        ``1 - exp(-exp(x' coef) Lambda0(t))`` with the step function
        ``Lambda0`` (``predict.crr``); 0 before the first event time.
        """
        Xa = np.atleast_2d(np.asarray(X, dtype=float))
        tt = np.asarray(times, dtype=float).ravel()
        lam = np.r_[0.0, self.baseline_hazard][np.searchsorted(self.times, tt, "right")]
        return -np.expm1(-np.exp(Xa @ self.coef)[:, None] * lam[None, :])


def _newton(risk: _FGRisk, max_iter: int, eps: float):
    """Newton-Raphson from 0 with step-halving, to a relative change of the log pseudo-likelihood <= eps."""
    beta = np.zeros(risk.p)
    ll0, u, imat = risk.derivs(beta)
    ll = ll0
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        new = beta + np.linalg.solve(imat, u)
        ll_new = risk.loglik(new)
        halving = 0
        while (not np.isfinite(ll_new) or ll_new < ll - 1e-12 * abs(ll)) and halving < 30:
            halving += 1
            new = (new + beta) / 2
            ll_new = risk.loglik(new)
        ll_new, u_new, i_new = risk.derivs(new)
        done = abs(ll_new - ll) <= eps * max(abs(ll_new), 1.0)
        beta, ll, u, imat = new, ll_new, u_new, i_new
        if done:
            converged = True
            break
    return beta, ll0, ll, u, imat, it, converged


def _options(entry, variance, convention, fn):
    """The convention and variance, defaults filled in: crr's without delayed entry, survival::finegray's with it."""
    if variance is not None:
        require_choice(variance, _VARIANCES, fn, "variance")
    if convention is not None:
        require_choice(convention, _CONVENTIONS, fn, "convention")
    if convention is None:
        convention = "crr" if entry is None else "finegray"
    if convention == "crr" and entry is not None:
        raise NeutrostatsError(f"{fn}: convention='crr' (cmprsk::crr) has no delayed entry; with entry= use "
                               "convention='finegray' (survival::finegray with Surv(entry, time, event))")
    if variance is None:
        variance = "crr" if convention == "crr" else "robust"
    if variance == "crr" and convention != "crr":
        raise NeutrostatsError(f"{fn}: variance='crr' (Fine & Gray's, as cmprsk::crr) needs crr's weights and no "
                               "delayed entry; use variance='robust' (as coxph(..., cluster = id) on "
                               "survival::finegray data) or 'model'")
    return variance, convention


def _fit(time, status, X, entry, active, variance, convention, fn, cause=1, n_missing=0, missing=None, spec=None):
    """Fit on arrays already checked (``variance`` and ``convention`` from :func:`_options`)."""
    risk = _FGRisk(time, status, X, entry, active, convention)
    beta, ll0, ll, u, imat, it, converged = _newton(risk, _ITER_MAX, _EPS)
    var_model = np.linalg.inv(imat)
    var_model = (var_model + var_model.T) / 2
    eta, psi = risk.residuals(beta)
    A = eta @ var_model
    var_robust = A.T @ A
    var_crr = None
    if psi is not None:
        B = (eta + psi) @ var_model
        var_crr = B.T @ B
    infs = np.abs(u @ var_model)
    infinite = (infs > 1e-9) & (infs > _TOLER_INF * np.abs(beta))
    if not converged:
        warnings.warn(f"{fn}: Newton-Raphson did not converge in {_ITER_MAX} iterations; the estimates are the "
                      "last step", CoxConvergenceWarning, stacklevel=3)
    # Baseline at the uncentred covariates 0, as crr's bfitj: exp(-means' beta) per centred unit.
    jumps = risk.baseline(beta) * np.exp(-float(risk.means @ beta))
    var = {"crr": var_crr, "robust": var_robust, "model": var_model}[variance]
    for a in (beta, var_model, var_robust, u, infinite, jumps) + ((var_crr,) if var_crr is not None else ()):
        a.setflags(write=False)
    act = np.ones(time.size, dtype=bool) if active is None else active
    return FineGrayFit(
        coef=beta, var=var, var_crr=var_crr, var_robust=var_robust, var_model=var_model,
        names=list(spec.names) if spec is not None else [f"x{j + 1}" for j in range(X.shape[1])],
        loglik=(float(ll0), float(ll)), score=u, iterations=int(it), converged=bool(converged),
        infinite=infinite, n=int(time.size), n_events=int((status == 1).sum()),
        n_competing=int((status == 2).sum()), n_censored=int((status == 0).sum()), times=risk.tk.copy(),
        baseline_hazard=np.cumsum(jumps), max_time=float(time[act].max()) if act.any() else float(time.max()),
        cause=cause, variance=variance, convention=convention, n_missing=int(n_missing), missing=dict(missing or {}), spec=spec)


def _status(codes: np.ndarray, cause: Any, fn: str) -> np.ndarray:
    """0 censored, 1 the cause, 2 any other event code (>= 1); raise for a cause that is not an event code."""
    if isinstance(cause, (bool, np.bool_)) or not isinstance(cause, (int, np.integer, float, np.floating)) or (
            not float(cause).is_integer() or cause < 1):
        raise NeutrostatsError(f"{fn}: cause must be an event code (an integer >= 1; 0 is censoring), found "
                               f"{cause!r}; pass cause=1 for the event of interest coded 1")
    present = np.unique(codes)
    if not np.any(codes == cause):
        raise NeutrostatsError(f"{fn}: no events of cause {cause!r} among {codes.size} rows (event codes found: "
                               f"{present.tolist()}); a Fine-Gray model needs events of the cause: pass cause= one "
                               "of the codes found, or check the event column")
    return np.where(codes == 0, 0, np.where(codes == cause, 1, 2)).astype(np.int8)


def fine_gray_arrays(
    time: Any,
    event: Any,
    X: Any,
    *,
    cause: int = 1,
    entry: Any = None,
    variance: str | None = None,
    convention: str | None = None,
) -> FineGrayFit:
    """Fit a Fine–Gray model to arrays, as ``cmprsk::crr(time, event, X, failcode = cause)``.

    Parameters
    ----------
    time : array-like of float, length n
        Time of the event or censoring (>= 0).
    event : array-like of int, length n
        Event codes: 0 censored, ``cause`` the event of interest, any other
        code >= 1 a competing event.
    X : array-like, n by p
        Design matrix without an intercept (p >= 1).
    cause : int, default 1
    entry : array-like of float, optional
        Delayed-entry time (at risk on ``(entry, time]``), as
        ``survival::finegray`` with ``Surv(entry, time, event)``.
    variance : {"crr", "robust", "model"}, optional
        The variance in ``var``; default ``"crr"`` (``"robust"`` with
        ``entry`` or ``convention="finegray"``).
    convention : {"crr", "finegray"}, optional
        The censoring weights' handling of ties, as :func:`fine_gray`.

    Returns
    -------
    FineGrayFit

    Raises
    ------
    NeutrostatsError
        For inputs of different lengths, missing or non-finite values,
        negative times, entry not before time, event codes that are not
        integers >= 0, no event of ``cause``, a constant or collinear
        column of ``X``, ``variance="crr"`` with ``entry``.

    Examples
    --------
    >>> fit = fine_gray_arrays([1, 2, 3, 4, 5, 6], [1, 0, 1, 1, 0, 1], [[1.0], [0], [1], [0], [0], [1]])
    >>> round(float(fit.coef[0]), 6)  # R: crr(...) and coxph(..., ties = "breslow") give 0.940614
    0.940614
    """
    fn = "fine_gray_arrays"
    variance, convention = _options(entry, variance, convention, fn)
    df = pd.DataFrame({"time": np.asarray(time, dtype=object).ravel() if np.ndim(time) else [time],
                       "event": np.asarray(event).ravel()})
    Xa = np.asarray(X, dtype=float)
    Xa = Xa[:, None] if Xa.ndim == 1 else Xa
    if Xa.ndim != 2 or Xa.shape[0] != len(df) or Xa.shape[1] == 0 or df["event"].size != len(df):
        raise NeutrostatsError(f"{fn}: time, event and X must have n = {len(df)} rows (X n by p, p >= 1), found "
                               f"event {df['event'].size}, X {Xa.shape}")
    if not np.all(np.isfinite(Xa)):
        raise NeutrostatsError(f"{fn}: X has {int((~np.isfinite(Xa)).sum())} missing or non-finite values; "
                               "use complete cases")
    df["time"] = pd.to_numeric(df["time"], errors="coerce") if df["time"].dtype == object else df["time"]
    if entry is not None:
        df["entry"] = np.asarray(entry, dtype=float).ravel()
    chk = check_tte(df, fn, duration="time", event="event", events="codes",
                    entry=None if entry is None else "entry", stacklevel=3)
    if chk.n_missing:
        raise NeutrostatsError(f"{fn}: {chk.n_missing} rows have a missing time, event or entry; use complete cases")
    status = _status(chk.event, cause, fn)
    _check_design(Xa, fn)
    return _fit(chk.time, status, Xa, chk.entry, None, variance, convention, fn, cause=cause)


# --- tidy layer ------------------------------------------------------------------------


@dataclass
class _Design:
    time: np.ndarray
    status: np.ndarray
    entry: np.ndarray | None
    X: np.ndarray
    active: np.ndarray | None
    spec: _Spec
    tier_rows: list
    ref_without_events: bool
    n: int
    n_event: int
    n_missing: int
    missing: dict


def _warn_no_events(tt, cause, fn):
    if tt.ref_without_events:
        warnings.warn(
            f"{fn}: the reference tier {tt.ref!r} has no events of cause {cause!r} among {tt.n_ref} persons, so no "
            "subdistribution hazard ratio against it has a finite estimate; reported as not estimable (NaN), and "
            "the covariate estimates are the limit (those persons leave the risk sets but stay in the censoring "
            "distribution). Choose a reference tier with events (reference=) or merge tiers.",
            InfiniteHazardRatioWarning, stacklevel=4)
    other = [c for c in tt.dropped if c != tt.ref] if tt.ref_without_events else tt.dropped
    if other:
        warnings.warn(
            f"{fn}: tier(s) {other} have no events of cause {cause!r}, so their subdistribution hazard ratio has "
            "no finite estimate (the pseudo-likelihood is monotone); reported as not estimable (NaN), and the "
            "other estimates are the limit (those persons leave the risk sets but stay in the censoring "
            "distribution). Use fewer tiers (merge sparse ones).",
            InfiniteHazardRatioWarning, stacklevel=4)


def _covariate_spec(data, adjust, kinds, levels_ref, fn):
    out = []
    for cov in adjust:
        levels = factor_levels(data[cov], levels_ref.get(cov), column=cov, function=fn) \
            if kinds[cov] == "categorical" else None
        out.append((cov, kinds[cov], levels))
    return out


def _design(df, duration, event, tier, reference, adjust, entry, categorical, cause, fn) -> _Design:
    """Checked columns, complete cases, the status (0/1/2), the tier and covariate columns, the spec."""
    df, adjust, _ = _check_model_columns(df, duration, event, tier, adjust, entry, None, None, fn)
    kinds = covariate_kinds(df, adjust, fn, categorical=categorical)
    tier_ref, levels_ref = split_reference(reference, fn, group=tier, covariates=adjust, kinds=kinds)
    chk = check_tte(df, fn, duration=duration, event=event, events="codes", group=tier, entry=entry,
                    covariates=adjust, hint="Pass the cohort table and the names of its columns.", stacklevel=5)
    data = chk.data
    status = _status(chk.event, cause, fn)
    ev = status == 1
    cols, names, tier_cols, rows, active, tt = [], [], {}, [], None, None
    if tier is not None:
        tt = _tier_terms(data, tier, tier_ref, ev, fn)
        cols, names, tier_cols, rows = list(tt.cols), list(tt.names), dict(tt.tier_cols), tt.rows
        active = None if tt.keep.all() else tt.keep
    cov_cols, cov_names, _ = _covariate_terms(data, adjust, kinds, levels_ref, fn, len(cols))
    cols += cov_cols
    names += cov_names
    if tt is not None:
        _warn_no_events(tt, cause, fn)
    X = np.column_stack(cols) if cols else np.empty((len(data), 0))
    if not np.all(np.isfinite(X)):
        raise NeutrostatsError(f"{fn}: covariates {adjust} have infinite values")
    if cols:
        _check_design(X if active is None else X[active], fn, names)
    spec = _Spec(tier=tier, tier_categories=list(data[tier].cat.categories) if tier is not None else [],
                 tier_cols=tier_cols, dropped_tiers=[] if tt is None else list(tt.dropped),
                 covariates=_covariate_spec(data, adjust, kinds, levels_ref, fn), names=names)
    return _Design(chk.time, status, chk.entry, X, active, spec, rows, bool(tt is not None and tt.ref_without_events),
                   len(data), int(ev.sum()), chk.n_missing, dict(chk.missing))


def fine_gray_fit(
    df: pd.DataFrame,
    duration: str,
    event: str,
    tier: str | None = "tier",
    *,
    cause: int = 1,
    reference: Any = None,
    adjust: list[str] | None = None,
    entry: str | None = None,
    categorical: list[str] | None = None,
    variance: str | None = None,
    convention: str | None = None,
) -> FineGrayFit:
    """Fit the Fine–Gray model of :func:`fine_gray` and return the fit, for prediction.

    Parameters
    ----------
    df, duration, event, tier, cause, reference, adjust, entry, categorical, variance, convention
        As :func:`fine_gray`. The fit keeps how to build the design of new
        data (:func:`predict_cumulative_incidence`).

    Raises
    ------
    NeutrostatsError
        As :func:`fine_gray`, and when no tier besides the reference has
        events and there are no covariates (nothing to fit).

    Warns
    -----
    DataQualityWarning, InfiniteHazardRatioWarning
        As :func:`fine_gray`.

    Returns
    -------
    FineGrayFit
        ``names`` are the design columns (``tier[mild]``, ``age``,
        ``sex[M]``); tiers without events of the cause have no column
        (their limit: they leave the risk sets).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"time": [1, 2, 3, 4, 5, 6, 7, 8], "status": [1, 2, 1, 0, 1, 2, 1, 0],
    ...                   "x": [1.0, 0, 1, 0, 0, 1, 0, 1]})
    >>> fit = fine_gray_fit(t, "time", "status", tier=None, adjust=["x"])
    >>> fit.names, fit.coef.round(6).tolist(), fit.baseline_hazard.round(6).tolist()  # R: crr, cumsum(bfitj)
    (['x'], [0.129748], [0.116902, 0.251753, 0.448716, 0.693989])
    """
    fn = "fine_gray_fit"
    variance, convention = _options(entry, variance, convention, fn)
    m = _design(df, duration, event, tier, reference, adjust, entry, categorical, cause, fn)
    if m.X.shape[1] == 0:
        raise NeutrostatsError(f"{fn}: no tier besides the reference has events of cause {cause!r}, and no "
                               "covariates; nothing to estimate")
    return _fit(m.time, m.status, m.X, m.entry, m.active, variance, convention, fn, cause=cause, n_missing=m.n_missing,
                missing=m.missing, spec=m.spec)


def _table(m: _Design, fit: FineGrayFit | None, level: float) -> pd.DataFrame:
    """The tidy rows of :func:`fine_gray`: tiers in tier order (reference kept), then covariates."""
    nan = dict(estimate=np.nan, std_error=np.nan, conf_low=np.nan, conf_high=np.nan, p_value=np.nan)
    z = norm.ppf(0.5 + level / 2)

    def est_row(j):
        assert fit is not None
        b, se = float(fit.coef[j]), float(fit.std_error[j])
        if fit.infinite[j]:
            way = "0" if b < 0 else "infinity"
            return dict(nan, estimable=False, note=f"no finite estimate: the subdistribution hazard ratio tends to {way}")
        return dict(estimate=float(np.exp(b)), std_error=se, conf_low=float(np.exp(b - z * se)),
                    conf_high=float(np.exp(b + z * se)), p_value=float(2 * norm.sf(abs(b / se))),
                    estimable=True, note="")

    ref_note = "no events in the reference tier" if m.ref_without_events else ""
    rows = []
    for r in m.tier_rows:
        row = dict(r)
        if r["is_reference"]:
            row.update(nan, estimate=1.0, estimable=not ref_note, note=ref_note)
        else:
            own = "no persons in this tier" if r["n"] == 0 else ("no events in this tier" if r["n_event"] == 0 else "")
            if own or ref_note:
                row.update(nan, estimable=False, note="; ".join(x for x in (own, ref_note) if x))
            else:
                row.update(est_row(m.spec.tier_cols[r["term"]]))
        rows.append(row)
    for j in range(len(m.spec.tier_cols), len(m.spec.names)):
        rows.append(dict(term=m.spec.names[j], group=None, is_reference=False, n=m.n, n_event=m.n_event,
                         **est_row(j)))
    out = pd.DataFrame(rows, columns=FINE_GRAY_COLUMNS)
    return out.astype({"term": object, "group": object, "is_reference": bool, "n": np.int64, "n_event": np.int64,
                       "estimable": bool, "note": object})


def fine_gray(
    df: pd.DataFrame,
    duration: str,
    event: str,
    tier: str | None = "tier",
    *,
    cause: int = 1,
    reference: Any = None,
    adjust: list[str] | None = None,
    entry: str | None = None,
    conf_level: float = 0.95,
    categorical: list[str] | None = None,
    variance: str | None = None,
    convention: str | None = None,
) -> pd.DataFrame:
    """Subdistribution hazard ratios of every tier against the reference tier (Fine–Gray regression).

    The competing-risk regression of R's ``cmprsk::crr`` and
    ``riskRegression::FGR``: the subdistribution hazard of the cause is
    proportional across tiers and covariates; persons with a competing event
    stay in the risk set with the inverse-probability-of-censoring weight
    ``G(t-) / G(t_j-)``. A subdistribution hazard ratio above 1 means a
    higher cumulative incidence of the cause (its effect mixes the rate of
    the cause and that of the competing events).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per person, e.g. ``build_cohort(...).table``; rows missing a
        value of a column used are left out (complete cases), counted in
        ``attrs["n_missing"]`` and announced by a ``DataQualityWarning``.
    duration : str
        Time to the first event or censoring (>= 0), e.g.
        ``"haematological_malignancy_time"``.
    event : str
        Event codes: 0 censored, ``cause`` the event of interest, any other
        whole number >= 1 a competing event (as ``<outcome>_status``: 1 the
        outcome, 2 death without it).
    tier : str or None, default "tier"
        Ordered Categorical of tiers (mildest first), one indicator per
        non-reference tier; None fits ``adjust`` only.
    cause : int, default 1
        The event code of interest (``crr``'s ``failcode``).
    reference, adjust, categorical
        As :func:`~neutrostats.stats.cox.cox_hazard_ratios`: reference
        tier (or ``{column: level}``), covariates (numeric linear, boolean,
        categorical with the first level as reference), columns to treat as
        factors.
    entry : str, optional
        Delayed-entry time (at risk on ``(entry, duration]``), as
        ``survival::finegray(Surv(entry, duration, event) ~ .)`` followed by
        ``coxph(..., weights = fgwt, ties = "breslow")``; ``crr`` has no
        delayed entry.
    conf_level : float, default 0.95
    variance : {"crr", "robust", "model"}, optional
        ``"crr"`` (default without ``entry``): Fine & Gray's sandwich with
        the term for estimating the censoring distribution, = ``crr``'s
        ``var`` and ``FGR``'s; ``"robust"`` (default with ``entry``): the
        sandwich without that term, = ``coxph(..., cluster = id)`` on
        ``finegray`` data; ``"model"``: the inverse information (that fit's
        naive variance). ``attrs["variance"]`` says which.
    convention : {"crr", "finegray"}, optional
        How the censoring distribution ``G`` treats an event tied with a
        censoring time. ``"crr"`` (default without ``entry``): the person is
        still at risk of that censoring, as ``cmprsk::crr`` (and
        ``riskRegression::FGR``); ``"finegray"`` (the only one with
        ``entry``): the event comes first, as ``survival::finegray``. The
        two give the same fit when no event time is also a censoring time;
        with such ties (whole-month times) the estimates differ slightly
        (mgus2: in the third digit). ``attrs["convention"]``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FINE_GRAY_COLUMNS` (those of ``cox_hazard_ratios``):
        ``term``, ``group`` (the tier on tier rows, None on covariate
        rows), ``is_reference``, ``n`` (persons), ``n_event`` (events of the
        cause; for covariate rows all of the model), ``estimate``
        (subdistribution hazard ratio ``exp(coef)``), ``std_error`` (of the
        log ratio), ``conf_low``/``conf_high`` (Wald, ``exp(coef -+ z se)``),
        ``p_value`` (Wald, as ``summary.crr``), ``estimable`` and ``note``
        (a tier without events of the cause, a tier without persons, a
        reference tier without events, a coefficient that runs off to
        infinity: NaN and the reason). ``attrs``: ``n_missing``,
        ``missing``, ``variance``, ``n_competing``, ``n_censored``,
        ``loglik`` (null and final, ``crr``'s), ``converged``.

    Raises
    ------
    NeutrostatsError
        For an empty table, missing columns, a tier column that is not
        Categorical, an unknown reference, durations that are not numbers,
        infinite or negative, entry not before the duration, event codes
        that are not whole numbers >= 0, a ``cause`` that is not an event
        code or has no events, a constant or collinear covariate,
        ``variance="crr"`` with ``entry``.

    Warns
    -----
    DataQualityWarning
        Rows left out for missing values.
    InfiniteHazardRatioWarning
        A tier without events of the cause (reported as not estimable).

    See Also
    --------
    fine_gray_fit, predict_cumulative_incidence
    neutrostats.stats.competing.cumulative_incidence : the Aalen–Johansen estimate by tier.

    References
    ----------
    .. [1] Fine JP, Gray RJ. A proportional hazards model for the subdistribution
       of a competing risk. J Am Stat Assoc 1999;94:496-509.
    .. [2] Geskus RB. Biometrics 2011;67:39-49 (left truncation).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"time": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    ...                   "status": [1, 2, 1, 0, 1, 2, 1, 0, 2, 1],
    ...                   "tier": pd.Categorical(["normal", "mild"] * 5, categories=["normal", "mild"], ordered=True)})
    >>> r = fine_gray(t, "time", "status")  # R: crr coef -1.800186, se 0.9004496
    >>> r[["term", "n", "n_event", "estimate", "std_error", "p_value"]].round(4)
         term  n  n_event  estimate  std_error  p_value
    0  normal  5        4    1.0000        NaN      NaN
    1    mild  5        1    0.1653     0.9004   0.0456
    """
    fn = "fine_gray"
    level = require_conf_level(conf_level, fn)
    variance, convention = _options(entry, variance, convention, fn)
    m = _design(df, duration, event, tier, reference, adjust, entry, categorical, cause, fn)
    fit = _fit(m.time, m.status, m.X, m.entry, m.active, variance, convention, fn, cause=cause, n_missing=m.n_missing,
               missing=m.missing, spec=m.spec) if m.X.shape[1] else None
    out = _table(m, fit, level)
    out.attrs.update(n_missing=int(m.n_missing), missing=dict(m.missing),
                     variance=variance, convention=convention,
                     n_competing=int((m.status == 2).sum()), n_censored=int((m.status == 0).sum()),
                     loglik=fit.loglik if fit is not None else (np.nan, np.nan),
                     converged=fit.converged if fit is not None else True)
    return out


def _new_design(spec: _Spec, newdata: pd.DataFrame, fn: str):
    """Design matrix of ``newdata`` as the fit built it, and the rows whose tier has no finite coefficient."""
    need = ([spec.tier] if spec.tier is not None else []) + [c for c, _, _ in spec.covariates]
    missing_cols = [c for c in need if c not in newdata.columns]
    if missing_cols:
        raise NeutrostatsError(f"{fn}: newdata lacks the model's columns {missing_cols}; it needs {need}")
    na = newdata[need].isna().any(axis=1).to_numpy()
    if na.any():
        raise NeutrostatsError(f"{fn}: {int(na.sum())} rows of newdata have missing values in {need}; every "
                               "profile needs a value of each")
    n = len(newdata)
    X = np.zeros((n, len(spec.names)))
    undefined = np.zeros(n, dtype=bool)
    if spec.tier is not None:
        v = newdata[spec.tier].astype(object).to_numpy()
        bad = [x for x in pd.unique(v) if x not in spec.tier_categories]
        if bad:
            raise NeutrostatsError(f"{fn}: newdata[{spec.tier!r}] has values {bad} that are not tiers of the fit "
                                   f"{spec.tier_categories}")
        for c, j in spec.tier_cols.items():
            X[:, j] = v == c
        undefined = np.isin(v, np.asarray(spec.dropped_tiers, dtype=object))
    j = len(spec.tier_cols)
    for cov, kind, levels in spec.covariates:
        v = newdata[cov]
        if kind == "categorical":
            vv = v.astype(object).to_numpy()
            bad = [x for x in pd.unique(vv) if x not in levels]
            if bad:
                raise NeutrostatsError(f"{fn}: newdata[{cov!r}] has levels {bad} not in the fit ({levels})")
            for lev in levels[1:]:
                X[:, j] = vv == lev
                j += 1
        else:
            x = pd.to_numeric(v, errors="coerce").to_numpy(dtype=float)
            if not np.all(np.isfinite(x)):
                raise NeutrostatsError(f"{fn}: newdata[{cov!r}] must hold finite numbers, as in the fit")
            X[:, j] = x
            j += 1
    return X, undefined


def predict_cumulative_incidence(fit: FineGrayFit, newdata: pd.DataFrame, times: Any) -> pd.DataFrame:
    """Predicted cumulative incidence of the cause for covariate profiles at times, from a Fine–Gray fit.

    ``F(t | x) = 1 - exp(-exp(x' coef) Lambda0(t))`` with the Breslow-type
    baseline cumulative subdistribution hazard ``Lambda0`` of ``crr``
    (a step function, 0 before the first event of the cause): R's
    ``predict.crr(fit, cov1)`` read at ``times`` as
    ``riskRegression::predictRisk(FGR fit, newdata, times)``. No
    confidence interval (``crr`` and ``FGR`` give none to compare with).

    Parameters
    ----------
    fit : FineGrayFit
        From :func:`fine_gray_fit`.
    newdata : pandas.DataFrame
        One row per profile, with the fit's tier column and ``adjust``
        covariates (tier labels and levels as in the fit).
    times : float or array-like of float
        Times (>= 0, at most the last follow-up time of the fit).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PREDICT_CIF_COLUMNS`: ``profile`` (the row label of
        ``newdata``), ``group`` (the profile's tier; None without a tier
        term), ``time``, ``estimate`` (the cumulative incidence; NaN for a
        profile in a tier without events of the cause, whose coefficient has
        no finite estimate), profile by profile, times in the order given.

    Raises
    ------
    NeutrostatsError
        For a fit without design (from :func:`fine_gray_arrays`: use
        ``fit.cumulative_incidence(X, times)``), newdata without the model's
        columns, missing values, unknown tiers or levels, times that are
        negative, not finite or beyond the last follow-up time.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"time": [1, 2, 3, 4, 5, 6, 7, 8], "status": [1, 2, 1, 0, 1, 2, 1, 0],
    ...                   "x": [1.0, 0, 1, 0, 0, 1, 0, 1]})
    >>> fit = fine_gray_fit(t, "time", "status", tier=None, adjust=["x"])
    >>> p = predict_cumulative_incidence(fit, pd.DataFrame({"x": [0.0, 1.0]}), [0.5, 3, 8])
    >>> p["estimate"].round(6).tolist()  # R: predict.crr(fit, rbind(0, 1)) at 0.5, 3, 8
    [0.0, 0.222563, 0.500421, 0.0, 0.249211, 0.546217]
    """
    fn = "predict_cumulative_incidence"
    if not isinstance(fit, FineGrayFit):
        raise NeutrostatsError(f"{fn}: fit must be a FineGrayFit from fine_gray_fit, found {type(fit).__name__}")
    if fit.spec is None:
        raise NeutrostatsError(f"{fn}: this fit has no design (it came from fine_gray_arrays); use "
                               "fit.cumulative_incidence(X, times) with a design matrix")
    if not isinstance(newdata, pd.DataFrame) or len(newdata) == 0:
        raise NeutrostatsError(f"{fn}: newdata must be a DataFrame with one row per profile")
    tt = np.atleast_1d(np.asarray(times, dtype=float)).ravel()
    if tt.size == 0 or not np.all(np.isfinite(tt)) or np.any(tt < 0):
        raise NeutrostatsError(f"{fn}: times must be finite numbers >= 0, found {np.asarray(times).tolist()}")
    if np.any(tt > fit.max_time):
        raise NeutrostatsError(f"{fn}: times {tt[tt > fit.max_time].tolist()} are beyond the last follow-up time "
                               f"of the fit ({fit.max_time}); predict at times <= {fit.max_time}")
    X, undefined = _new_design(fit.spec, newdata, fn)
    cif = fit.cumulative_incidence(X, tt)
    cif[undefined] = np.nan
    k = len(newdata)
    group = newdata[fit.spec.tier].astype(object).to_numpy() if fit.spec.tier is not None else np.full(k, None)
    return pd.DataFrame({"profile": np.repeat(newdata.index.to_numpy(), tt.size),
                         "group": np.repeat(group, tt.size), "time": np.tile(tt, k),
                         "estimate": cif.ravel()}, columns=PREDICT_CIF_COLUMNS)
