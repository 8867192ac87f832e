"""Cox proportional-hazards regression by severity tier, and its PH test.

:func:`cox_hazard_ratios` gives the tidy table of hazard ratios (tiers
against the reference tier, then the ``adjust`` covariates);
:func:`proportional_hazards_test` tests proportional hazards per model term
as R survival 3.x's ``cox.zph`` does; :func:`cox_fit` is the fitter under
both, for a response and a design matrix. The fitted-model object with the
baseline hazard, predictions and residuals is
:func:`neutrostats.stats.coxmodel.cox_model`.

The fitter is R's ``coxph`` (``coxfit6``/``agfit4``) in vectorised numpy:
the data are sorted once by stratum and time, risk-set sums are reverse
cumulative sums read off at the distinct event times, delayed entry is
handled by subtracting the sums of persons who have not yet entered, and
Efron's correction is computed for all tied deaths at once, so one Newton
step costs O(n p^2) with no Python loop over persons or event times.
Newton-Raphson starts at 0 with R's step-halving and stopping rule
(``coxph.control``: relative change of the log partial likelihood <= 1e-9,
at most 20 iterations), so estimates, variances and tests agree with R's
``summary(coxph(...))`` to about 1e-11 relative (see tests/test_cox_r.py).

Examples
--------
>>> import numpy as np
>>> from neutrostats.stats.cox import cox_fit
>>> fit = cox_fit([1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 1, 1], np.array([[1.0], [0], [1], [0], [0], [1]]))
>>> fit.converged, fit.coef.round(4)  # R: coef(coxph(Surv(time, event) ~ x)) is 0.1008468
(True, array([0.1008]))
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.distributions import chi2, norm
from neutrostats.core.lazy import lazy_module
from neutrostats.stats.tte import check_tte, missing_message
from neutrostats.core.validate import (
    covariate_kinds,
    factor_levels,
    require_choice,
    require_columns,
    require_conf_level,
    require_dataframe,
    split_reference,
)
from neutrostats.errors import CoxConvergenceWarning, DataQualityWarning, InfiniteHazardRatioWarning, NeutrostatsError

# scipy is imported at the first call that needs it, not with neutrostats (neutrostats.core.lazy).
stats = lazy_module("scipy.stats")

__all__ = [
    "COX_COLUMNS",
    "PH_TEST_COLUMNS",
    "ChiSquareTest",
    "CoxFit",
    "cox_fit",
    "cox_hazard_ratios",
    "proportional_hazards_test",
    "InfiniteHazardRatioWarning",
    "CoxConvergenceWarning",
]

#: Columns of :func:`cox_hazard_ratios`, in order.
COX_COLUMNS = ["term", "group", "is_reference", "n", "n_event", "estimate", "std_error", "conf_low", "conf_high", "p_value",
               "estimable", "note"]
#: Columns of :func:`proportional_hazards_test`, in order.
PH_TEST_COLUMNS = ["test", "outcome", "term", "statistic", "df", "p_value"]

_TIES = ("efron", "breslow")
_TRANSFORMS = ("km", "rank", "identity")
_EPS = 1e-9  # coxph.control(eps)
_ITER_MAX = 20  # coxph.control(iter.max)
_TOLER_INF = np.sqrt(_EPS)  # coxph.control(toler.inf)


@dataclass(frozen=True)
class ChiSquareTest:
    """A chi-square test: ``statistic`` with ``df`` degrees of freedom, ``p_value``."""

    statistic: float
    df: int
    p_value: float


@dataclass(frozen=True)
class CoxFit:
    """Result of :func:`cox_fit` (read-only arrays).

    Attributes
    ----------
    coef : numpy.ndarray
        Log hazard ratios, one per column of ``X``.
    var : numpy.ndarray
        Inverse of the information matrix at ``coef`` (model-based variance).
    loglik : tuple of float
        Log partial likelihood at 0 and at ``coef`` (R's ``fit$loglik``).
    score_test, wald_test, lr_test : ChiSquareTest
        Score test at 0, Wald test ``coef' var^-1 coef`` and likelihood-ratio
        test of all coefficients = 0 (R's ``summary(fit)`` ``sctest``,
        ``waldtest``, ``logtest``).
    iterations : int
        Newton-Raphson iterations (R's ``fit$iter``).
    converged : bool
    score : numpy.ndarray
        Score vector at ``coef`` (about 0 at convergence).
    infinite : numpy.ndarray of bool
        Coefficients that look infinite by R's rule (another Newton step
        would still move them: ``|u' var| > eps`` and ``> sqrt(eps) |coef|``).
    n, n_events : int
        Rows used and events (unweighted).
    ties : str
    n_missing : int
        Rows left out because a value of ``time``, ``event``, ``X``,
        ``entry``, ``strata`` or ``weights`` is missing (NaN/None; complete
        cases); 0 when none.
    missing : dict of str to int
        Missing values per input (``"time"``, ``"X[:, j]"``, ...), for the
        inputs that have any.
    """

    coef: np.ndarray
    var: np.ndarray
    loglik: tuple[float, float]
    score_test: ChiSquareTest
    wald_test: ChiSquareTest
    lr_test: ChiSquareTest
    iterations: int
    converged: bool
    score: np.ndarray
    infinite: np.ndarray
    n: int
    n_events: int
    ties: str
    n_missing: int = 0
    missing: dict = field(default_factory=dict)

    @property
    def std_error(self) -> np.ndarray:
        """Standard errors of ``coef``."""
        return np.sqrt(np.diag(self.var))


# --- the engine ------------------------------------------------------------------------


class _Risk:
    """Sorted data and precomputed indices for the risk-set sums.

    Persons are sorted once by stratum and time. Event groups are the
    distinct (stratum, event time) pairs, in that order; person ``j`` is in
    the risk set of groups ``g`` with ``first[j] <= g < last[j]`` (same
    stratum, entry < t_g <= time), so every risk-set sum is a reverse
    cumulative sum over groups of per-group bins.
    """

    def __init__(self, time, event, X, entry, strata, weights, ties):
        n, p = X.shape
        s = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
        if strata is None:
            order = np.argsort(time)  # order within tied times does not matter
        else:
            order = np.lexsort((time, s))
        ts, ss = time[order], s[order]
        new_key = np.empty(n, dtype=bool)
        new_key[0] = True
        np.not_equal(ts[1:], ts[:-1], out=new_key[1:])
        new_stratum = np.empty(n, dtype=bool)
        new_stratum[0] = True
        np.not_equal(ss[1:], ss[:-1], out=new_stratum[1:])
        new_key |= new_stratum
        key = np.cumsum(new_key)  # increasing in (stratum, time)
        self.order = order
        self.ts, self.ss = ts, ss  # sorted times and stratum codes (for the baseline hazard)
        self.p = p
        w = weights[order]
        self.w = w
        ev = event[order]
        # Centre (weighted means, as coxfit6): the information is unchanged
        # and the sums are better conditioned.
        self.means = (weights @ X) / weights.sum()
        # Column-major: every per-person operation below works column by column.
        Xc = np.empty((n, p), order="F")
        for k in range(p):
            np.subtract(X[order, k], self.means[k], out=Xc[:, k])
        self.X = Xc
        self.ev_idx = ev_idx = np.flatnonzero(ev)
        ev_keys = key[ev_idx]
        m = ev_idx.size
        gstart = np.flatnonzero(np.r_[True, ev_keys[1:] != ev_keys[:-1]])
        self.gstart = gstart
        kg = ev_keys[gstart]
        G = gstart.size
        d = np.diff(np.r_[gstart, m])
        self.G = G
        self.g_of_event = np.repeat(np.arange(G), d)
        w_ev = w[ev_idx]
        self.w_ev = w_ev
        self.X_ev = Xc[ev_idx]
        self.wx_ev_sum = w_ev @ self.X_ev
        dw = np.add.reduceat(w_ev, gstart)
        # last[j]: groups with key <= key_j (monotone in the sorted order).
        last = np.searchsorted(kg, key, "right")
        self.last_runs = self._runs(last)
        if entry is None:
            # first[j]: the first group of j's stratum (monotone too).
            first = np.searchsorted(kg, key[np.flatnonzero(new_stratum)], "left")
            first = first[np.cumsum(new_stratum) - 1]
            self.perm_first = None
            self.first_runs = self._runs(first)
        else:
            # Groups at or before the entry time are not in j's risk set:
            # first[j] = groups with (stratum, time) <= (s_j, entry_j).
            es = entry[order]
            g_time = ts[ev_idx[gstart]]
            g_strat = ss[ev_idx[gstart]]
            vals = np.unique(np.concatenate([g_time, es]))
            span = vals.size + 2
            key_g = g_strat * span + np.searchsorted(vals, g_time)  # sorted, as the groups are
            key_e = ss * span + np.searchsorted(vals, es)
            first = np.searchsorted(key_g, key_e, "right")
            self.perm_first = np.argsort(first, kind="stable")
            self.first_runs = self._runs(first[self.perm_first])
        self.first = first
        self.last = last
        if ties == "efron":
            self.tg = self.g_of_event
            self.f = (np.arange(m) - np.repeat(gstart, d)) / np.repeat(d, d)
            self.wt = np.repeat(dw / d, d)
        else:
            self.tg = np.arange(G)
            self.f = np.zeros(G)
            self.wt = dw
        # Work space reused by every Newton step (fresh large arrays would
        # cost page faults each time).
        self._eta = np.empty(n)
        self._V = np.empty((n, p + 1), order="F")
        self._Xs = np.empty((n, p), order="F")
        self._c = np.empty(n)
        self._c2 = np.empty(n)

    @staticmethod
    def _runs(idx):
        """Starts of the runs of equal values of a non-decreasing index, and the values."""
        starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
        return starts, idx[starts]

    def _bins(self, V, runs, perm):
        if perm is not None:
            # Entry bins are unsorted in the row order: a weighted bincount per column reads V as it is,
            # where a reduceat would first have to gather all of V in the bins' order.
            idx = self.first
            B = np.empty((self.G + 1, V.shape[1]))
            for k in range(V.shape[1]):
                B[:, k] = np.bincount(idx, weights=V[:, k], minlength=self.G + 1)
            return B
        starts, vals = runs
        B = np.zeros((self.G + 1, V.shape[1]))
        B[vals] = np.add.reduceat(V, starts, axis=0)
        return B

    def _sums(self, V):
        """Risk-set sums of the columns of V (sorted order) at every event group."""
        T = self._bins(V, self.last_runs, None) - self._bins(V, self.first_runs, self.perm_first)
        # S_g = sum over persons with first <= g < last = sum_{q > g} (bins at last - bins at first)
        return np.cumsum(T[::-1], axis=0)[::-1][1:]

    def derivs(self, beta, gtime=None):
        """Log partial likelihood, score and information at ``beta``.

        With ``gtime`` (one value per event group) also the blocks of the
        ``cox.zph`` score test: the time-weighted score and the 2p x 2p
        information of the model with covariates ``x`` and ``g(t) x``.
        """
        X, p = self.X, self.p
        eta = np.matmul(X, beta, out=self._eta)
        eta -= eta.max()  # invariant; avoids overflow of exp
        V = self._V
        r = np.exp(eta, out=V[:, 0])
        r *= self.w
        for k in range(p):
            np.multiply(X[:, k], r, out=V[:, k + 1])
        S = self._sums(V)
        D = np.add.reduceat(V[self.ev_idx], self.gstart, axis=0)
        tg, f, wt = self.tg, self.f, self.wt
        denom = S[tg, 0] - f * D[tg, 0]
        mean = (S[tg, 1:] - f[:, None] * D[tg, 1:]) / denom[:, None]
        loglik = float(self.w_ev @ eta[self.ev_idx] - wt @ np.log(denom))
        u = self.wx_ev_sum - wt @ mean
        r_ev = r[self.ev_idx]

        def info(h, nonneg=False):
            a_t = wt * h / denom
            a_g = np.bincount(tg, a_t, minlength=self.G)
            ca = np.r_[0.0, np.cumsum(a_g)]
            c = np.take(ca, self.last, out=self._c)
            c -= np.take(ca, self.first, out=self._c2)
            c_ev = c[self.ev_idx]
            if np.any(f):
                c_ev -= np.bincount(tg, a_t * f, minlength=self.G)[self.g_of_event]
            c *= r
            c[self.ev_idx] = c_ev * r_ev
            Xs = self._Xs  # column by column: X is column-major
            if nonneg:
                # c >= 0 (up to rounding): X' diag(c) X as a Gram matrix.
                sq = np.sqrt(np.maximum(c, 0, out=self._c2), out=self._c2)
                for k in range(p):
                    np.multiply(X[:, k], sq, out=Xs[:, k])
                cross = Xs.T @ Xs
            else:
                for k in range(p):
                    np.multiply(X[:, k], c, out=Xs[:, k])
                cross = Xs.T @ X
            return cross - (mean * (wt * h)[:, None]).T @ mean

        imat = info(np.ones_like(wt), nonneg=True)
        if gtime is None:
            return loglik, u, imat
        gt = gtime[tg]
        u2 = (self.w_ev * gtime[self.g_of_event]) @ self.X_ev - (wt * gt) @ mean
        i12 = info(gt)
        i22 = info(gt * gt)
        full = np.block([[imat, i12], [i12.T, i22]])
        return loglik, np.r_[u, u2], full

    def score_residuals(self, beta):
        """Score residuals L_i (sorted order, n by p; sum_i w_i L_i is the score), as R's coxscore.

        L_i = event part - the risk-set part: x_i minus the mean of the
        Efron means of its tied deaths, minus sum over the (sub-)events k of
        i's risk sets of wt_k exp(eta_i) (x_i - mean_k) / denom_k, where a
        tied death takes part in its own group's sub-events with 1 - f_k.
        """
        X, G = self.X, self.G
        eta = X @ beta
        eta -= eta.max()
        e = np.exp(eta)
        r = e * self.w
        V = np.column_stack([r, X * r[:, None]])
        S = self._sums(V)
        D = np.add.reduceat(V[self.ev_idx], self.gstart, axis=0)
        tg, f, wt = self.tg, self.f, self.wt
        denom = S[tg, 0] - f * D[tg, 0]
        mean = (S[tg, 1:] - f[:, None] * D[tg, 1:]) / denom[:, None]
        a = wt / denom
        b = a[:, None] * mean

        def per_group(v):
            out = np.zeros((G,) + v.shape[1:])
            np.add.at(out, tg, v)
            return out

        ca = np.r_[0.0, np.cumsum(per_group(a))]
        cb = np.vstack([np.zeros((1, self.p)), np.cumsum(per_group(b), axis=0)])
        res = -e[:, None] * (X * (ca[self.last] - ca[self.first])[:, None] - (cb[self.last] - cb[self.first]))
        ev, g = self.ev_idx, self.g_of_event
        fa, fb = per_group(f * a)[g], per_group(f[:, None] * b)[g]
        mean_bar = per_group(mean) / np.bincount(tg, minlength=G)[:, None]
        res[ev] += e[ev, None] * (X[ev] * fa[:, None] - fb) + X[ev] - mean_bar[g]
        return res

    def robust_var(self, beta, var, cluster=None):
        """Sandwich variance sum_i (w_i L_i var)' (w_i L_i var), as coxph's robust variance.

        ``cluster`` (integer codes 0..G-1 in the input order, or None): the
        weighted score residuals are summed within clusters first (Lin & Wei's
        grouped sandwich, coxph's ``cluster()``).
        """
        d = (self.score_residuals(beta) * self.w[:, None]) @ var
        if cluster is not None:
            d = self.collapse(d, cluster)
        return d.T @ d

    def collapse(self, v, cluster):
        """Sums of the rows of ``v`` (sorted order) within clusters (codes in the input order)."""
        c = np.asarray(cluster)[self.order]
        out = np.zeros((int(c.max()) + 1, v.shape[1]))
        np.add.at(out, c, v)
        return out


def _solve_pd(A, b):
    """Solve with a symmetric positive-definite A (Cholesky)."""
    from scipy.linalg import cho_factor, cho_solve

    return cho_solve(cho_factor(A), b)


def _newton(risk: _Risk, max_iter: int, eps: float):
    """R's coxfit6 iteration: Newton-Raphson from 0 with step-halving."""
    p = risk.p
    beta = np.zeros(p)
    loglik0, u, imat = risk.derivs(beta)
    step = _solve_pd(imat, u)
    score = float(u @ step)
    best = loglik0
    newbeta = beta + step
    halving = 0
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            newlk, u, imat = risk.derivs(newbeta)
        finite = np.isfinite(newlk) and np.all(np.isfinite(u)) and np.all(np.isfinite(imat))
        if finite and abs(1 - best / newlk) <= eps:
            beta, best, converged = newbeta, newlk, True
            break
        if not finite or newlk < best:
            halving += 1
            newbeta = (newbeta + halving * beta) / (halving + 1.0)
        else:
            halving = 0
            best = newlk
            beta = newbeta
            newbeta = newbeta + _solve_pd(imat, u)
    if not converged:
        # As coxfit6: back to the last good beta.
        best, u, imat = risk.derivs(beta)
        it = max_iter
    return beta, best, loglik0, score, u, imat, it, converged


def _as_float(a, name, fn):
    try:
        v = np.asarray(a, dtype=float)
    except (TypeError, ValueError):
        raise NeutrostatsError(f"{fn}: {name} must be numeric, found {np.asarray(a).dtype}") from None
    return v


def _require_entry_before_end(entry: np.ndarray, end: np.ndarray, fn: str, entry_name: str, end_name: str) -> None:
    """Raise unless every row enters before its follow-up ends (at risk on (entry, end])."""
    late = entry >= end
    if late.any():
        i = int(np.flatnonzero(late)[0])
        raise NeutrostatsError(
            f"{fn}: {int(late.sum())} rows have {entry_name} >= {end_name} (e.g. {entry[i]} >= {end[i]}); "
            f"a person is at risk on ({entry_name}, {end_name}], so {entry_name} must come before {end_name}"
        )


def cox_fit(
    time: Any,
    event: Any,
    X: Any,
    *,
    entry: Any = None,
    strata: Any = None,
    ties: str = "efron",
    weights: Any = None,
    max_iter: int = _ITER_MAX,
    eps: float = _EPS,
) -> CoxFit:
    """Fit a Cox proportional-hazards model to arrays, as R's ``coxph``.

    Parameters
    ----------
    time : array-like of float, length n
        Event or censoring time (the stop time of ``(entry, time]``).
    event : array-like of 0/1 or bool, length n
    X : array-like, n by p
        Design matrix without an intercept (p >= 1).
    entry : array-like of float, optional
        Delayed-entry (left-truncation) time: the person is at risk on
        ``(entry, time]``, as R's ``Surv(entry, time, event)``.
    strata : array-like, optional
        Stratum labels; each stratum has its own baseline hazard (R's
        ``strata()``).
    ties : {"efron", "breslow"}, default "efron"
        Handling of tied event times, exactly as R.
    weights : array-like of float, optional
        Case weights (> 0); the variance is the model-based one.
    max_iter : int, default 20
        ``coxph.control(iter.max)``.
    eps : float, default 1e-9
        ``coxph.control(eps)``: stop when the relative change of the log
        partial likelihood is at most ``eps``.

    Returns
    -------
    CoxFit
        Fitted to the complete rows: a row with a missing value (NaN or
        None) in ``time``, ``event``, ``X``, ``entry``, ``strata`` or
        ``weights`` is left out and counted in ``n_missing``.

    Raises
    ------
    NeutrostatsError
        For inputs of different lengths, no complete row, infinite or negative times, an
        entry not before its time, an event that is not 0/1, no events, a
        column of ``X`` that is constant or collinear with others, an
        unknown ``ties``.

    Warns
    -----
    DataQualityWarning
        Rows left out for missing values: the count and the inputs.

    References
    ----------
    Cox DR. J R Stat Soc B 1972;34:187. Efron B. J Am Stat Assoc
    1977;72:557. Therneau TM, Grambsch PM. Modeling Survival Data, Springer
    2000, ch. 3.

    Examples
    --------
    >>> fit = cox_fit([5, 6, 6, 2, 4, 4, 3, 7], [1, 0, 1, 1, 1, 0, 1, 1], [[0], [0], [0], [1], [1], [1], [0], [1]])
    >>> round(float(fit.coef[0]), 8), fit.iterations, fit.converged  # R: -0.01031997 after 2 iterations
    (-0.01031997, 2, True)
    """
    fn = "cox_fit"
    require_choice(ties, _TIES, fn, "ties")
    t = _as_float(time, "time", fn).ravel()
    n = t.size
    Xa = _as_float(X, "X", fn)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    if Xa.ndim != 2 or Xa.shape[0] != n or Xa.shape[1] == 0:
        raise NeutrostatsError(f"{fn}: X must be an n by p matrix with n = len(time) = {n} and p >= 1, "
                               f"found shape {Xa.shape}")
    e = np.asarray(event)
    if e.shape != (n,):
        raise NeutrostatsError(f"{fn}: event must have length {n} like time, found shape {e.shape}")
    e = _as_float(e, "event", fn)
    ent = None if entry is None else _as_float(entry, "entry", fn).ravel()
    if ent is not None and ent.shape != (n,):
        raise NeutrostatsError(f"{fn}: entry must be {n} finite numbers like time")
    sv = None if strata is None else np.asarray(strata)
    if sv is not None and sv.shape != (n,):
        raise NeutrostatsError(f"{fn}: strata must have length {n} like time, found shape {sv.shape}")
    w = None if weights is None else _as_float(weights, "weights", fn).ravel()
    if w is not None and w.shape != (n,):
        raise NeutrostatsError(f"{fn}: weights must be {n} finite numbers > 0")
    # Complete cases, as every time-to-event function: missing values are left out, counted and announced.
    isna = {"time": np.isnan(t), "event": np.isnan(e)}
    isna |= {f"X[:, {j}]": np.isnan(Xa[:, j]) for j in range(Xa.shape[1])}
    if ent is not None:
        isna["entry"] = np.isnan(ent)
    if sv is not None:
        isna["strata"] = pd.isna(pd.Series(sv)).to_numpy()
    if w is not None:
        isna["weights"] = np.isnan(w)
    miss = np.logical_or.reduce(list(isna.values()))
    n_missing = int(miss.sum())
    missing = {k: int(v.sum()) for k, v in isna.items() if v.any()}
    if n_missing:
        if n_missing == n:
            raise NeutrostatsError(f"{fn}: every one of the {n} rows has a missing value (missing per input: "
                                   f"{missing}); a Cox model needs complete rows")
        warnings.warn(missing_message(fn, n_missing, n, missing), DataQualityWarning, stacklevel=2)
        keep = ~miss
        t, e, Xa = t[keep], e[keep], Xa[keep]
        ent = None if ent is None else ent[keep]
        sv = None if sv is None else sv[keep]
        w = None if w is None else w[keep]
        n = t.size
    if np.any((e != 0) & (e != 1)):
        raise NeutrostatsError(f"{fn}: event must be 0/1 or boolean, found values such as "
                               f"{np.unique(e[(e != 0) & (e != 1)])[:3].tolist()}")
    bad = ~np.isfinite(t)
    if bad.any():
        raise NeutrostatsError(f"{fn}: {int(bad.sum())} times are not finite (e.g. {t[bad][0]}); "
                               "drop or impute them first")
    if np.any(t < 0):
        raise NeutrostatsError(f"{fn}: {int((t < 0).sum())} times are negative (e.g. {t[t < 0][0]}); "
                               "times are durations from the start of follow-up")
    if not np.all(np.isfinite(Xa)):
        raise NeutrostatsError(f"{fn}: X has {int((~np.isfinite(Xa)).sum())} non-finite values; "
                               "use complete cases")
    if ent is not None:
        if not np.all(np.isfinite(ent)):
            raise NeutrostatsError(f"{fn}: entry must be {n} finite numbers like time")
        _require_entry_before_end(ent, t, fn, "entry", "time")
    s = None
    if sv is not None:
        s = pd.factorize(pd.Series(sv), sort=True)[0].astype(np.int64)
    if w is None:
        w = np.ones(n)
    elif not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise NeutrostatsError(f"{fn}: weights must be {n} finite numbers > 0")
    n_events = int(e.sum())
    if n_events == 0:
        raise NeutrostatsError(f"{fn}: no events among {n} rows; a Cox model needs events")
    _check_design(Xa, fn)
    risk = _Risk(t, e.astype(bool), Xa, ent, s, w, ties)
    return _finish(risk, max_iter, eps, n, n_events, ties, fn, n_missing, missing)


def _check_design(X, fn, names=None):
    names = names or [f"column {j}" for j in range(X.shape[1])]
    mu = X.mean(axis=0)
    Z = X - mu
    cross = Z.T @ Z
    sd = np.sqrt(np.diag(cross) / X.shape[0])
    scale = np.maximum(np.abs(mu), 1.0)
    const = [names[j] for j in range(X.shape[1]) if not sd[j] > 1e-12 * scale[j]]
    if const:
        raise NeutrostatsError(f"{fn}: {const} have no variation among the rows used (constant); "
                               "drop them from the model")
    corr = cross / np.outer(sd, sd) / X.shape[0]
    ev = np.linalg.eigvalsh(corr)
    if ev.min() <= 1e-10 * ev.max():
        raise NeutrostatsError(f"{fn}: the covariates {names} are collinear (their correlation matrix is "
                               "singular); drop a redundant covariate")


def _finish(risk, max_iter, eps, n, n_events, ties, fn, n_missing=0, missing=None):
    beta, ll, ll0, score, u, imat, it, converged = _newton(risk, max_iter, eps)
    var = np.linalg.inv(imat)
    var = (var + var.T) / 2
    p = beta.size
    wald = float(beta @ _solve_pd(var, beta))
    lr = 2 * (ll - ll0)
    infs = np.abs(u @ var)
    infinite = (infs > eps) & (infs > _TOLER_INF * np.abs(beta))
    if not converged:
        warnings.warn(f"{fn}: Newton-Raphson did not converge in {max_iter} iterations; the estimates are "
                      "the last good step", CoxConvergenceWarning, stacklevel=3)
    for a in (beta, var, u, infinite):
        a.setflags(write=False)
    return CoxFit(
        coef=beta, var=var, loglik=(float(ll0), float(ll)),
        score_test=ChiSquareTest(score, p, float(chi2.sf(score, p))),
        wald_test=ChiSquareTest(wald, p, float(chi2.sf(wald, p))),
        lr_test=ChiSquareTest(float(lr), p, float(chi2.sf(lr, p))),
        iterations=int(it), converged=bool(converged), score=u, infinite=infinite,
        n=int(n), n_events=int(n_events), ties=ties, n_missing=int(n_missing), missing=dict(missing or {}),
    )


# --- tidy layer ----------------------------------------------------------------------




def _listify(cols):
    if cols is None:
        return []
    return [cols] if isinstance(cols, str) else list(cols)


@dataclass
class _Model:
    time: np.ndarray
    event: np.ndarray
    entry: np.ndarray | None
    strata: np.ndarray | None
    X: np.ndarray
    names: list[str]
    terms: dict[str, list[int]]
    tier_cols: dict[Any, int]
    tier_rows: list[dict]
    n: int
    n_events: int
    dropped_tiers: list[Any]
    n_missing: int = 0
    missing: dict = field(default_factory=dict)
    # The reference tier has persons but no events: no HR against it is finite.
    reference_without_events: bool = False
    weights: np.ndarray | None = None  # case weights > 0 of the rows of X (None: all 1)
    n_zero_weight: int = 0  # complete rows left out because their weight is 0
    # For the fitted-model object (coxmodel.py): the input index of the rows of X, how each
    # covariate was coded ({name: (kind, levels)}), the cluster codes of the rows (0..G-1),
    # and the strata combinations in code order.
    index: pd.Index | None = None
    encoding: dict = field(default_factory=dict)
    cluster: np.ndarray | None = None
    strata_keys: pd.DataFrame | None = None


@dataclass
class _TierTerms:
    """The tier's indicator columns against the reference, its rows of the tidy table, its empty tiers."""

    cols: list[np.ndarray]
    names: list[str]
    tier_cols: dict[Any, int]
    rows: list[dict]
    dropped: list[Any]
    keep: np.ndarray  # rows outside tiers without events
    ref: Any
    n_ref: int
    ref_without_events: bool


def _check_model_columns(df, duration, event, tier, adjust, entry, strata, weights, fn):
    """The table as pandas, ``adjust`` and ``strata`` as lists; raise on missing or misused columns."""
    df = require_dataframe(df, fn, "df", allow_empty=False)
    adjust = _listify(adjust)
    strata = _listify(strata)
    if tier is None and not adjust:
        raise NeutrostatsError(f"{fn}: nothing to estimate; give a tier column and/or adjust= covariates")
    used = [duration, event, *([tier] if tier is not None else []), *adjust,
            *([entry] if entry is not None else []), *strata, *([weights] if weights is not None else [])]
    require_columns(df, used, fn, "Pass the cohort table and the names of its columns.")
    if tier is not None and tier in adjust:
        raise NeutrostatsError(f"{fn}: {tier!r} is the tier column; leave it out of adjust=")
    if weights is not None and weights in [tier, *adjust]:
        raise NeutrostatsError(f"{fn}: the weights column {weights!r} is also a model term; leave it out of "
                               "adjust= (and tier=)")
    if tier is not None and not isinstance(df[tier].dtype, pd.CategoricalDtype):
        raise NeutrostatsError(
            f"{fn}: column {tier!r} must be an ordered Categorical of tiers (as build_cohort makes), found "
            f"{df[tier].dtype}; convert it with pandas.Categorical(values, categories=[...], ordered=True)"
        )
    return df, adjust, strata


def _tier_terms(data, tier, reference, ev, fn) -> _TierTerms:
    cats = list(data[tier].cat.categories)
    ref = cats[0] if reference is None else reference
    if ref not in cats:
        raise NeutrostatsError(f"{fn}: reference {reference!r} is not a tier; tiers are {cats}")
    codes = data[tier].cat.codes.to_numpy()
    n_t = np.bincount(codes, minlength=len(cats))
    e_t = np.bincount(codes, weights=ev, minlength=len(cats)).astype(np.int64)
    r = cats.index(ref)
    if n_t[r] == 0:
        raise NeutrostatsError(f"{fn}: the reference tier {ref!r} has no persons; choose another with reference=")
    ref_without_events = bool(e_t[r] == 0)
    # Without events in the reference, the tiers' indicators are coded
    # against the first tier with events: the covariates' estimates do
    # not depend on that choice, and no tier's HR against the reference is
    # reported (all are infinite).
    base = int(np.flatnonzero(e_t > 0)[0]) if ref_without_events else r
    out = _TierTerms([], [], {}, [], [], np.ones(len(data), dtype=bool), ref, int(n_t[r]), ref_without_events)
    for i, c in enumerate(cats):
        out.rows.append({"term": c, "group": c, "n": int(n_t[i]), "n_event": int(e_t[i]), "is_reference": i == r})
        if i == base or n_t[i] == 0:
            continue
        if e_t[i] == 0:
            # The MLE is -inf; its limit drops these persons from every risk set.
            out.dropped.append(c)
            out.keep &= codes != i
            continue
        out.tier_cols[c] = len(out.cols)
        out.cols.append((codes == i).astype(float))
        out.names.append(f"{tier}[{c}]")
    return out


def _covariate_terms(data, adjust, kinds, levels_ref, fn, start, encoding=None):
    """Columns, names and column indices (from ``start``) of the covariates (coding recorded in ``encoding``)."""
    cols, names, terms = [], [], {}
    for cov in adjust:
        v = data[cov]
        idx = []
        if encoding is not None:
            encoding[cov] = (kinds[cov], None)
        if kinds[cov] == "boolean":
            idx.append(start + len(cols))
            cols.append(v.to_numpy(dtype=float))
            names.append(f"{cov}[True]")
        elif kinds[cov] == "numeric":
            idx.append(start + len(cols))
            cols.append(pd.to_numeric(v).to_numpy(dtype=float))
            names.append(cov)
        else:
            levels = factor_levels(v, levels_ref.get(cov), column=cov, function=fn)
            if len(levels) < 2:
                raise NeutrostatsError(f"{fn}: covariate {cov!r} has a single level {levels} among the complete "
                                       "rows; drop it from adjust=")
            if encoding is not None:
                encoding[cov] = ("categorical", list(levels))
            vv = v.to_numpy()
            for lev in levels[1:]:
                idx.append(start + len(cols))
                cols.append((vv == lev).astype(float))
                names.append(f"{cov}[{lev}]")
        terms[cov] = idx
    return cols, names, terms


def _warn_tiers_without_events(tt: _TierTerms, fn):
    if tt.ref_without_events:
        warnings.warn(
            f"{fn}: the reference tier {tt.ref!r} has no events among {tt.n_ref} persons, so no hazard ratio "
            "against it has a finite estimate; reported as not estimable (NaN), and the covariate estimates are the "
            "limit (those persons leave the risk sets). Choose a reference tier with events (reference=) or merge "
            "tiers.",
            InfiniteHazardRatioWarning,
            stacklevel=4,
        )
    other = [c for c in tt.dropped if c != tt.ref] if tt.ref_without_events else tt.dropped
    if other:
        warnings.warn(
            f"{fn}: tier(s) {other} have no events, so their hazard ratio has no finite estimate (the partial "
            "likelihood is monotone); reported as not estimable (NaN), and the other estimates are the limit "
            "(those persons leave the risk sets). Use fewer tiers (merge sparse ones); Firth-type penalised Cox "
            "regression is not available.",
            InfiniteHazardRatioWarning,
            stacklevel=4,
        )


def _prepare(df, duration, event, tier, reference, adjust, entry, strata, fn, categorical=None,
             allow_no_terms=False, weights=None, cluster=None) -> _Model:
    """The design of a tidy Cox model: checked columns, complete cases, tier and covariate indicators."""
    df, adjust, strata = _check_model_columns(df, duration, event, tier, adjust, entry, strata, weights, fn)
    if cluster is not None:
        require_columns(df, [cluster], fn, "Pass cluster= the name of the column of cluster ids (e.g. person_id).")
    kinds = covariate_kinds(df, adjust, fn, categorical=categorical)
    tier_ref, levels_ref = split_reference(reference, fn, group=tier, covariates=adjust, kinds=kinds)
    chk = check_tte(df, fn, duration=duration, event=event, group=tier, entry=entry, strata=strata,
                    covariates=[*adjust, *([cluster] if cluster is not None else [])], weights=weights,
                    hint="Pass the cohort table and the names of its columns.", stacklevel=4)
    data, time, ev, ent, w = chk.data, chk.time, chk.event, chk.entry, chk.weights
    n_zero = 0
    if w is not None and not np.all(w > 0):
        # A row of weight 0 is in no risk set and adds no event: the fit without it is the same
        # (R's coxph refuses zero weights; the rows are counted in attrs["n_zero_weight"]).
        pos = w > 0
        n_zero = int((~pos).sum())
        data, time, ev, w = data.loc[pos], time[pos], ev[pos], w[pos]
        ent = None if ent is None else ent[pos]
    s = None
    strata_keys = None
    if strata:
        s = data.groupby(strata, sort=True, observed=True).ngroup().to_numpy().astype(np.int64)
        strata_keys = data[strata].assign(_code=s).drop_duplicates("_code").sort_values("_code")
    if not ev.any():
        raise NeutrostatsError(f"{fn}: no events in {event!r} among {len(data)} complete rows; "
                               "a Cox model needs events")
    tt = _tier_terms(data, tier, tier_ref, ev, fn) if tier is not None else None
    cols, names, terms, tier_cols, tier_rows = [], [], {}, {}, []
    keep = np.ones(len(data), dtype=bool)
    if tt is not None:
        cols, names, tier_cols, tier_rows, keep = list(tt.cols), list(tt.names), tt.tier_cols, tt.rows, tt.keep
        terms[tier] = list(tier_cols.values())
    encoding: dict = {}
    cov_cols, cov_names, cov_terms = _covariate_terms(data, adjust, kinds, levels_ref, fn, len(cols), encoding)
    cols += cov_cols
    names += cov_names
    terms |= cov_terms
    if tt is not None:
        _warn_tiers_without_events(tt, fn)
    if not cols and not allow_no_terms:
        raise NeutrostatsError(f"{fn}: no tier besides the reference has persons with events, and no covariates; "
                               "nothing to estimate")
    X = np.column_stack(cols) if cols else np.empty((len(data), 0))
    n_all, ev_all = len(data), int(ev.sum())
    index = data.index[keep]
    cl = None if cluster is None else pd.factorize(data.loc[keep, cluster])[0].astype(np.int64)
    if not keep.all():
        X, time, ev = X[keep], time[keep], ev[keep]
        ent = None if ent is None else ent[keep]
        s = None if s is None else s[keep]
        w = None if w is None else w[keep]
    if not np.all(np.isfinite(X)):
        raise NeutrostatsError(f"{fn}: covariates {adjust} have infinite values")
    if cols:
        _check_design(X, fn, names)
    return _Model(time, ev, ent, s, X, names, terms, tier_cols, tier_rows, n_all, ev_all,
                  [] if tt is None else tt.dropped, chk.n_missing, dict(chk.missing),
                  reference_without_events=tt is not None and tt.ref_without_events, weights=w,
                  n_zero_weight=n_zero, index=index, encoding=encoding, cluster=cl, strata_keys=strata_keys)


def _fit_model(m: _Model, ties, fn):
    w = np.ones(m.time.size) if m.weights is None else m.weights
    risk = _Risk(m.time, m.event, m.X, m.entry, m.strata, w, ties)
    return risk, _finish(risk, _ITER_MAX, _EPS, m.time.size, int(m.event.sum()), ties, fn)


def cox_hazard_ratios(
    df: pd.DataFrame,
    duration: str,
    event: str,
    tier: str | None = "tier",
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
) -> pd.DataFrame:
    """Hazard ratios of every tier against the reference tier, by Cox regression.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per person, e.g. ``build_cohort(...).table``. Rows missing
        any column used (duration, event, tier, ``adjust``, ``entry``,
        ``strata``) are left out (complete cases), counted in
        ``attrs["n_missing"]`` and announced by a ``DataQualityWarning``;
        ``n`` says how many were used.
    duration : str
        Time from the start of follow-up to the event or censoring (>= 0).
    event : str
        0/1 or boolean column: 1 = event at ``duration``, 0 = censored.
    tier : str or None, default "tier"
        Ordered Categorical column of tiers (mildest first); it enters as
        one indicator per non-reference tier. None fits ``adjust`` only.
    reference : tier label or mapping, optional
        Reference tier; default the first (mildest) category. A mapping
        ``{column: level}`` sets the reference level of the tier column
        and of any categorical covariate of ``adjust``, as R's
        ``relevel()``: ``reference={"sex": "f"}`` reports ``sex[m]``
        against ``f``. A column that is neither, a numeric or boolean
        covariate, or a level not found among the complete rows raises
        (naming the levels found).
    adjust : list of str, optional
        Covariates: numeric columns enter as they are (linear), boolean
        ones as ``col[True]``, categorical ones (a Categorical, a text
        column none of whose values reads as a number, or a column named in
        ``categorical``) as one indicator per level except the reference
        (``sex[f]``). The reference is the first level as R's ``factor()``
        orders them: a Categorical's first category (its declared order,
        ordered or not), else the first sorted level (text sorted as text,
        numbers in numeric order); ``reference=`` overrides it. A text column
        of numbers, or of numbers with some text (``"old"`` among ages),
        raises.
    ties : {"efron", "breslow"}, default "efron"
        Handling of tied event times, exactly as R's ``coxph``.
    conf_level : float, default 0.95
    entry : str, optional
        Delayed-entry (left-truncation) time: the person is at risk on
        ``(entry, duration]``, as R's ``Surv(entry, time, event)``.
    strata : str or list of str, optional
        Column(s) whose combinations get their own baseline hazard (R's
        ``strata()``); they get no hazard ratio.
    categorical : list of str, optional
        Columns of ``adjust`` to enter as factors whatever their values
        (a numeric code such as 1/2/3 becomes ``col[2]``, ``col[3]``).
    weights : str, optional
        Column of case weights (finite, >= 0), as R's
        ``coxph(..., weights=)``: every risk-set sum and event counts with
        its weight. A missing weight is a missing value (the row is left
        out and counted in ``attrs["n_missing"]``); text, infinite or
        negative weights raise. Rows of weight 0 add nothing to the
        partial likelihood and are left out of the fit, counted in
        ``attrs["n_zero_weight"]`` (R's ``coxph`` refuses them). ``n`` and
        ``n_event`` count persons, unweighted, as R's ``fit$n`` and
        ``fit$nevent``.
    robust : bool, optional
        Standard errors from the robust (sandwich) variance of Lin & Wei
        (1989), R's ``coxph(..., robust=TRUE)``, instead of the inverse
        information. Default (None) as R's ``coxph``: robust when some
        weight is not a whole number (sampling or inverse-probability
        weights), the model-based variance otherwise (no weights, or
        whole-number frequency weights). ``attrs["variance"]`` says which
        (``"robust"`` or ``"model"``).
    cluster : str, optional
        Column of cluster ids (e.g. the person of several rows): the
        grouped sandwich variance of Lin & Wei (1989), R's ``coxph(...,
        cluster = id)``: the weighted score residuals are summed within each
        cluster (no small-sample factor, as R). Implies ``robust``
        (``robust=False`` with a cluster raises); a missing id leaves the
        row out (complete cases).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COX_COLUMNS`, tier rows first in tier order
        (reference row kept), then covariate rows:

        ``term``
            Tier label, covariate name, or ``covariate[level]``.
        ``group``
            The tier on tier rows (as ``term``), None on covariate rows
            (the vocabulary of :mod:`neutrostats.core.columns`).
        ``is_reference``
            True for the reference tier (estimate 1, no interval).
        ``n``, ``n_event``
            Persons and events in the tier; for covariate rows, all persons
            and events in the model (complete cases).
        ``estimate``
            Hazard ratio, ``exp(coef)``: per tier against the reference, per
            unit of a numeric covariate, per level against the first.
        ``std_error``
            Standard error of the log hazard ratio (inverse information).
        ``conf_low``, ``conf_high``
            Wald interval ``exp(coef -+ z se)`` at ``conf_level``.
        ``p_value``
            Wald test of HR = 1 (as ``summary(coxph)``).
        ``estimable``
            False where the hazard ratio has no finite estimate: a tier
            without persons, a tier without events, every tier when the
            reference tier has no events (the reference row too), and a
            coefficient that runs off to infinity. Its estimate, standard
            error, interval and p-value are then NaN (R's ``coxph`` prints
            a huge or tiny number with a warning).
        ``note``
            Why, in a short phrase ("no events in this tier", "no events in
            the reference tier", "no persons in this tier", "no finite
            estimate: the hazard ratio tends to 0"); "" when estimable.

        The other estimates are the limit of the model: persons of a tier
        without events (the reference tier included) leave the risk sets.
        ``attrs["n_missing"]`` is the number of rows left out for
        missing values (0 when none), ``attrs["missing"]`` the missing
        values per column, ``attrs["n_zero_weight"]`` the rows of weight 0
        left out, ``attrs["variance"]`` ``"model"`` or ``"robust"``.

    Raises
    ------
    NeutrostatsError
        For an empty table or one without a complete row, missing columns,
        a tier column that is not Categorical, an unknown reference or
        ``ties``, durations that are not numbers (text, dates, timedeltas),
        infinite or negative durations, entry not before duration, an
        event column that is not 0/1, no events, a reference tier without
        persons, a covariate mixing numbers and text or holding numbers as
        text, a constant or collinear covariate.

    Warns
    -----
    DataQualityWarning
        Rows left out for missing values: the count and the columns.
    InfiniteHazardRatioWarning
        A tier without events (the reference tier included) or a
        coefficient that runs off to infinity (reported as not estimable).
    CoxConvergenceWarning
        No convergence in 20 Newton-Raphson iterations.

    See Also
    --------
    cox_fit : the fitter, for arrays.
    proportional_hazards_test : check the model's assumption.
    neutrostats.stats.coxmodel.cox_model : the same model kept, with baseline hazard, predictions, residuals.

    References
    ----------
    Cox DR. Regression models and life-tables. J R Stat Soc B 1972;34:187.
    Efron B. J Am Stat Assoc 1977;72:557 (ties). Therneau TM, Grambsch PM.
    Modeling Survival Data: Extending the Cox Model. Springer 2000.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({
    ...     "time": [5, 6, 6, 2, 4, 4, 3, 7, 8, 1],
    ...     "died": [1, 0, 1, 1, 1, 0, 1, 1, 0, 1],
    ...     "tier": pd.Categorical(["normal"] * 5 + ["mild"] * 5, categories=["normal", "mild"], ordered=True)})
    >>> cox_hazard_ratios(t, "time", "died")[["term", "n", "n_event", "estimate", "is_reference"]].round(4)  # R: 0.5799179
         term  n  n_event  estimate  is_reference
    0  normal  5        4    1.0000          True
    1    mild  5        3    0.5799         False

    A Categorical covariate's first category is its reference (R's factor);
    ``reference=`` relevels it. With ``x = 1`` for ``f``, R's
    ``coef(coxph(Surv(time, event) ~ x))`` is 0.1008468:

    >>> s = pd.DataFrame({"time": [1, 2, 3, 4, 5, 6], "event": [1, 1, 1, 0, 1, 1],
    ...                   "sex": pd.Categorical(list("fmfmmf"), categories=["m", "f"])})
    >>> r = cox_hazard_ratios(s, "time", "event", tier=None, adjust=["sex"])
    >>> r["term"].tolist(), np.log(r["estimate"]).round(7).tolist()
    (['sex[f]'], [0.1008468])
    >>> r = cox_hazard_ratios(s, "time", "event", tier=None, adjust=["sex"], reference={"sex": "f"})
    >>> r["term"].tolist(), np.log(r["estimate"]).round(7).tolist()
    (['sex[m]'], [-0.1008468])

    Case weights: whole-number weights keep the model-based variance (a
    weight of 2 is a second person with the same data under Breslow ties);
    other weights get R's default robust variance.

    >>> s["w"] = [2.0, 1, 1, 1, 1, 1]
    >>> twice = pd.concat([s, s.iloc[[0]]], ignore_index=True)
    >>> a = cox_hazard_ratios(s, "time", "event", tier=None, adjust=["sex"], weights="w", ties="breslow")
    >>> b = cox_hazard_ratios(twice, "time", "event", tier=None, adjust=["sex"], ties="breslow")
    >>> bool(np.isclose(a["estimate"].iloc[0], b["estimate"].iloc[0])), a.attrs["variance"]
    (True, 'model')
    >>> cox_hazard_ratios(s.assign(w=[1.5, 1, 1, 1, 1, 1]), "time", "event", tier=None, adjust=["sex"],
    ...                   weights="w").attrs["variance"]
    'robust'
    """
    fn = "cox_hazard_ratios"
    require_choice(ties, _TIES, fn, "ties")
    level = require_conf_level(conf_level, fn)
    _check_robust(robust, cluster, fn)
    m = _prepare(df, duration, event, tier, reference, adjust, entry, strata, fn, categorical, allow_no_terms=True,
                 weights=weights, cluster=cluster)
    robust = _use_robust(robust, m)
    if m.X.shape[1]:
        risk, fit = _fit_model(m, ties, fn)
        coef, se, infinite = fit.coef, fit.std_error, fit.infinite
        if robust:
            se = np.sqrt(np.diag(risk.robust_var(np.asarray(fit.coef), np.asarray(fit.var), m.cluster)))
    else:
        # Every tier but the reference lacks persons or events, and no
        # covariates: nothing to fit, each row says why.
        coef = se = np.empty(0)
        infinite = np.zeros(0, dtype=bool)
    return _hr_table(m, coef, se, infinite, level, robust, fn)


def _check_robust(robust, cluster, fn):
    if robust is not None and not isinstance(robust, (bool, np.bool_)):
        raise NeutrostatsError(f"{fn}: robust must be True, False or None (R's default), found {robust!r}")
    if cluster is not None and robust is False:
        raise NeutrostatsError(f"{fn}: cluster={cluster!r} asks for the cluster-robust variance, but robust=False; "
                               "leave robust= unset (or True) with cluster=, or drop cluster=")


def _use_robust(robust, m: _Model) -> bool:
    if m.cluster is not None:
        return True
    if robust is None:
        # R's coxph: robust = TRUE by default when the case weights are not whole numbers.
        return m.weights is not None and bool(np.any(m.weights != np.floor(m.weights)))
    return bool(robust)


def _hr_table(m: _Model, coef, se, infinite, level, robust, fn) -> pd.DataFrame:
    """The tidy table of :func:`cox_hazard_ratios` from the coefficients and their standard errors."""
    nan = dict(estimate=np.nan, std_error=np.nan, conf_low=np.nan, conf_high=np.nan, p_value=np.nan)
    z = norm.ppf(0.5 + level / 2)
    if infinite.any():
        warnings.warn(
            f"{fn}: the partial likelihood converged before {[m.names[j] for j in np.flatnonzero(infinite)]}; "
            "their hazard ratios look infinite (reported as not estimable, NaN). Use fewer tiers or "
            "covariate levels; Firth-type penalised Cox regression is not available.",
            InfiniteHazardRatioWarning,
            stacklevel=3,
        )

    def est_row(j):
        if infinite[j]:
            # R's coxph prints a huge or tiny hazard ratio here; it is no estimate.
            way = "0" if coef[j] < 0 else "infinity"
            return dict(nan, estimable=False, note=f"no finite estimate: the hazard ratio tends to {way}")
        return dict(estimate=float(np.exp(coef[j])), std_error=float(se[j]),
                    conf_low=float(np.exp(coef[j] - z * se[j])), conf_high=float(np.exp(coef[j] + z * se[j])),
                    p_value=float(2 * norm.sf(abs(coef[j] / se[j]))), estimable=True, note="")

    ref_note = "no events in the reference tier" if m.reference_without_events else ""
    rows = []
    for r in m.tier_rows:
        row = dict(r)
        if r["is_reference"]:
            row.update(nan, estimate=1.0, estimable=not ref_note, note=ref_note)
            rows.append(row)
            continue
        own = "no persons in this tier" if r["n"] == 0 else ("no events in this tier" if r["n_event"] == 0 else "")
        if own or ref_note:
            row.update(nan, estimable=False, note="; ".join(x for x in (own, ref_note) if x))
        else:
            row.update(est_row(m.tier_cols[r["term"]]))
        rows.append(row)
    first_cov = len(m.tier_cols)
    for j in range(first_cov, len(m.names)):
        rows.append(dict(term=m.names[j], group=None, is_reference=False, n=m.n, n_event=m.n_events,
                         **est_row(j)))
    out = pd.DataFrame(rows, columns=COX_COLUMNS)
    out = out.astype({"term": object, "group": object, "is_reference": bool, "n": np.int64, "n_event": np.int64,
                      "estimable": bool, "note": object})
    out = _with_missing(out, m)
    out.attrs["n_zero_weight"] = int(m.n_zero_weight)
    out.attrs["variance"] = "robust" if robust else "model"
    return out


# --- proportional hazards ----------------------------------------------------------------


def _km_before(time, event, entry):
    """1 - S(t-) of the pooled Kaplan-Meier estimate at each time (as survfitKM)."""
    ut = np.unique(time[event])
    stop_sorted = np.sort(time)
    n_risk = time.size - np.searchsorted(stop_sorted, ut, "left")
    if entry is not None:
        # not yet entered at u: entry >= u
        n_risk = n_risk - (entry.size - np.searchsorted(np.sort(entry), ut, "left"))
    d = np.bincount(np.searchsorted(ut, time[event]), minlength=ut.size)
    surv = np.cumprod(1 - d / n_risk)
    idx = np.searchsorted(ut, time, "left")  # event times strictly before t
    return 1 - np.r_[1.0, surv][idx]


def proportional_hazards_test(
    df: pd.DataFrame,
    duration: str,
    event: str,
    tier: str | None = "tier",
    adjust: list[str] | None = None,
    ties: str = "efron",
    entry: str | None = None,
    transform: str = "km",
    strata: str | list[str] | None = None,
    categorical: list[str] | None = None,
) -> pd.DataFrame:
    """Test of proportional hazards per model term and globally (R survival 3.x ``cox.zph``).

    Fits the Cox model of :func:`cox_hazard_ratios` and, for each term,
    computes the score test of adding ``g(t) x`` for its covariates
    ``x`` (Grambsch & Therneau's test as ``cox.zph`` computes it since
    survival 3.0: a score test at the fitted coefficients with the full
    2p x 2p information, not the older correlation of scaled Schoenfeld
    residuals with time).

    Parameters
    ----------
    df, duration, event, tier, adjust, ties, entry, strata, categorical
        As in :func:`cox_hazard_ratios` (complete cases; the reference tier
        does not change the tests).
    transform : {"km", "rank", "identity"}, default "km"
        ``g(t)``: one minus the pooled Kaplan-Meier estimate just before
        ``t`` (``"km"``), the rank of ``t`` among all durations, or ``t``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PH_TEST_COLUMNS` (the tidy test shape of
        :mod:`neutrostats.core.columns`): ``test`` (``"schoenfeld"``),
        ``outcome`` (the ``event`` column's name), ``term`` (the tier
        column name for the tier term, a covariate name, and last
        ``GLOBAL``), ``statistic``
        (chi-square), ``df`` (number of coefficients of the term; the
        tier term has one per non-reference tier with events) and
        ``p_value``. A small p-value suggests the hazard ratio of that term
        changes with time. ``attrs["n_missing"]`` and ``attrs["missing"]``:
        rows left out for missing values, as :func:`cox_hazard_ratios`.

    Raises
    ------
    NeutrostatsError
        As :func:`cox_hazard_ratios`, and for an unknown ``transform``.

    Warns
    -----
    DataQualityWarning
        Rows left out for missing values.
    InfiniteHazardRatioWarning
        A tier without events (left out of the test).

    References
    ----------
    Grambsch PM, Therneau TM. Proportional hazards tests and diagnostics
    based on weighted residuals. Biometrika 1994;81:515. Therneau TM.
    survival package 3.x, ``cox.zph``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({
    ...     "time": [5, 6, 6, 2, 4, 4, 3, 7, 8, 1, 9, 3],
    ...     "died": [1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1],
    ...     "tier": pd.Categorical(["normal"] * 6 + ["mild"] * 6, categories=["normal", "mild"], ordered=True)})
    >>> proportional_hazards_test(t, "time", "died").round(3)  # R's cox.zph: chisq 3.37, p 0.066
             test outcome    term  statistic  df  p_value
    0  schoenfeld    died    tier      3.369   1    0.066
    1  schoenfeld    died  GLOBAL      3.369   1    0.066
    """
    fn = "proportional_hazards_test"
    require_choice(ties, _TIES, fn, "ties")
    require_choice(transform, _TRANSFORMS, fn, "transform")
    m = _prepare(df, duration, event, tier, None, adjust, entry, strata, fn, categorical)
    risk, fit = _fit_model(m, ties, fn)
    time, ev = m.time, m.event
    if transform == "km":
        tt = _km_before(time, ev, m.entry)
    elif transform == "rank":
        tt = stats.rankdata(time)
    else:
        tt = time.astype(float)
    g = tt - tt[ev].mean()
    g_sorted = g[risk.order]
    gtime = g_sorted[risk.ev_idx[risk.gstart]]
    _, u, imat = risk.derivs(np.asarray(fit.coef), gtime=gtime)
    p = fit.coef.size
    u2 = u[p:]
    rows = []
    for term, jj in m.terms.items():
        if not jj:
            continue
        kk = np.r_[np.arange(p), p + np.asarray(jj)]
        uu = np.r_[np.zeros(p), u2[jj]]
        stat = float(np.linalg.solve(imat[np.ix_(kk, kk)], uu) @ uu)
        rows.append(("schoenfeld", event, term, stat, len(jj), float(chi2.sf(stat, len(jj)))))
    uu = np.r_[np.zeros(p), u2]
    stat = float(np.linalg.solve(imat, uu) @ uu)
    rows.append(("schoenfeld", event, "GLOBAL", stat, p, float(chi2.sf(stat, p))))
    out = pd.DataFrame(rows, columns=PH_TEST_COLUMNS)
    return _with_missing(out.astype({"test": object, "outcome": object, "term": object, "df": np.int64}), m)


def _with_missing(out: pd.DataFrame, m: _Model) -> pd.DataFrame:
    out.attrs["n_missing"] = int(m.n_missing)
    out.attrs["missing"] = dict(m.missing)
    return out
