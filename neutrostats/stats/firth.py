"""Firth's penalised-likelihood logistic regression with profile intervals.

Private engine behind the ``method="firth"`` odds ratios of
:mod:`neutrostats.stats.odds_ratios`.  It reproduces R's ``logistf(..., pl=TRUE)``:
the penalised maximum-likelihood estimate, the inverse penalised information
as covariance, profile penalised-likelihood confidence intervals and penalised
likelihood-ratio p-values.

The penalised log-likelihood is

    l*(b) = sum_i w_i [y_i eta_i - log(1 + exp(eta_i))] + 1/2 log det I(b),
    I(b) = X' diag(w_i p_i (1 - p_i)) X,

(Jeffreys-prior penalty, Firth 1993).  Its maximum is finite even under
complete or quasi-complete separation, which is why it is used for sparse
tiers (Heinze & Schemper 2002).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import linalg, special
from scipy.linalg.lapack import dpotrf as _potrf, dpotrs as _potrs, dtrtrs as _trtrs

from neutrostats.core.threads import single_blas_thread
from neutrostats.errors import FirthConvergenceWarning, NeutrostatsError

__all__ = ["FirthConvergenceWarning", "FirthResult", "firth_logit"]

_FUNC = "firth_logit"
# A Newton step longer than this (on the log-odds scale) is shortened: far
# from the optimum, under separation, the quadratic model overshoots wildly.
# logistf uses the same cap (logistf.control(maxstep=5)).
_MAX_STEP = 5.0
_MAX_HALVINGS = 60
# Collapsing rows to unique (x, y) patterns costs a sort; it only pays when
# the data are long and repetitive (dummy-coded tiers on a large cohort).
_COLLAPSE_MIN_ROWS = 2000
# Switch from Fisher scoring to the exact Hessian once a step is more than
# this fraction of the previous one (linear convergence that is too slow).
_SLOW = 0.05
# Largest table of distinct column products x_l x_a x_b kept for the Hessian
# (elements; 4M = 32 MB). 20,000 persons with tiers, age and sex need 22 rows
# of 20,000; beyond the budget the Hessian is formed from z = L^-1 x instead.
# Larger tables would not pay: at 373,820 persons (66 MB) a passage over the
# table costs as much as the direct Hessian (firth_logit 1.16 s with it, 0.93 s without).
_PRODUCT_BUDGET = 4_000_000
# Keep the Hessian factor of an earlier point while steps shrink at least
# this much per iteration: near the solution Newton with a slightly old
# Hessian still contracts fast (demo designs: 275 -> 164 Hessians for 20
# more evaluations, a Hessian costing a third of an evaluation there).
_REUSE = 0.01


@dataclass(frozen=True)
class FirthResult:
    """Result of :func:`firth_logit`; arrays have one entry per column of ``X``.

    Attributes
    ----------
    params : ndarray
        Penalised maximum-likelihood estimates (log-odds scale).
    bse : ndarray
        Standard errors, ``sqrt(diag(inv(X' W X)))`` at the estimate (as
        ``vcov`` of R's logistf).
    conf_low, conf_high : ndarray
        Confidence limits on the log-odds scale; profile penalised-likelihood
        or Wald according to ``ci_method``.
    pvalues : ndarray
        Penalised likelihood-ratio test of ``beta_j = 0`` (chi-square, 1 df),
        as logistf's ``prob`` with ``pl=TRUE``; NaN for a coefficient not in
        ``tests``.
    loglik : float
        Penalised log-likelihood at the estimate,
        ``l(beta) + 0.5 * log det(X' W X)``.
    converged : bool
        Whether the estimate met the convergence criterion.
    iterations : int
        Newton iterations used for the estimate.
    conf_level : float
        Confidence level of the intervals.
    ci_method : tuple of str
        Per coefficient, ``"profile"`` or ``"wald"``.
    cov_params : ndarray
        ``inv(X' W X)`` at the estimate, shape ``(k, k)``.
    nobs : float
        Number of observations (sum of the weights).
    """

    params: np.ndarray
    bse: np.ndarray
    conf_low: np.ndarray
    conf_high: np.ndarray
    pvalues: np.ndarray
    loglik: float
    converged: bool
    iterations: int
    conf_level: float
    ci_method: tuple[str, ...]
    cov_params: np.ndarray
    nobs: float


# --------------------------------------------------------------------------
# Core numerics
# --------------------------------------------------------------------------

class _Data:
    """Design stored transposed (k x n, C order): every pass runs along n."""

    __slots__ = ("xt", "y", "w", "sign", "unit", "total_w", "k", "eye", "triples")

    def __init__(self, X, y, w):
        self.xt = np.ascontiguousarray(X.T)
        self.y = y
        self.w = w
        # -1 for events, +1 otherwise: max(sign * eta, 0) is the log-likelihood's
        # max(-s eta, 0) term below with one multiplication instead of a np.where.
        self.sign = np.where(y > 0, -1.0, 1.0)
        # Unit weights (person-level data) skip the multiplications by w,
        # which change nothing then (x * 1.0 == x exactly).
        self.unit = bool(np.all(w == 1.0))
        self.total_w = max(float(np.sum(w)), 1.0)
        self.k = X.shape[1]
        self.eye = np.eye(self.k)
        self.triples = _Triples.build(self.xt) if self.k > 1 else None


class _Triples:
    """The distinct products x_l x_a x_b (l <= a <= b) of the design columns, for the Hessian.

    The Hessian's third-derivative term needs, at every beta,
    M[l, a, b] = sum_i v'_i x_il x_ia x_ib, a tensor symmetric in its three
    indices. The products do not depend on beta, so they are formed once and
    M (with X' diag(q v'') X) is one pass over them per Hessian. Dummy-coded designs repeat
    many products (t * t = t, t * 1 = t) and make others zero (two tiers of
    one variable), so only the distinct non-zero ones are kept: 22 of 56 for
    an intercept, three tiers, age and sex. Four times faster than forming
    the k(k+1)/2 products of z = L^-1 x at every beta, which is the fallback
    when the table would exceed _PRODUCT_BUDGET.
    """

    __slots__ = ("table", "triple", "pair")

    def __init__(self, table, triple, pair):
        # triple[(l k + a) k + b] and pair[a k + b]: the row of ``table`` holding
        # x_l x_a x_b or x_a x_b, or -1 where the product is zero.
        self.table, self.triple, self.pair = table, triple, pair

    @classmethod
    def build(cls, xt):
        """The table for the design ``xt`` (k x n), or None where it would exceed _PRODUCT_BUDGET.

        Products are told apart by their factors, not their values: a
        constant column of ones drops out, a 0/1 column counts once however
        often it occurs (t t = t), and a product with two 0/1 columns that
        are never 1 together is zero. Equal products are then formed once
        and zero ones not at all (a product equal to another by chance is
        merely kept twice). The pairs x_a x_b, for the Hessian's
        X' diag(q v'') X, are among the triples when X has an intercept.
        """
        k, n = xt.shape
        binary = [bool(np.all((col == 0.0) | (col == 1.0))) for col in xt]
        ones = [bool(np.all(col == 1.0)) for col in xt]
        disjoint = {(a, b) for a in range(k) for b in range(a + 1, k)
                    if binary[a] and binary[b] and not (ones[a] or ones[b]) and not np.any(xt[a] * xt[b])}
        keys: dict[tuple[int, ...], int] = {}

        def row(combo):
            factors = tuple(sorted({f for f in combo if binary[f] and not ones[f]})
                            + [f for f in combo if not binary[f]])
            if any((a, b) in disjoint for a in factors for b in factors):
                return -1
            return keys.setdefault(factors, len(keys))

        triple = np.array([row(tuple(sorted(c))) for c in np.ndindex(k, k, k)], dtype=np.intp)
        pair = np.array([row(tuple(sorted(c))) for c in np.ndindex(k, k)], dtype=np.intp)
        if len(keys) * n > _PRODUCT_BUDGET:
            return None
        table = np.empty((len(keys), n))
        for factors, r in keys.items():
            table[r] = 1.0
            for f in factors:
                table[r] *= xt[f]
        return cls(table, triple, pair)

    def moments(self, d1, d2q, k):
        """M[l, a, b] = sum_i d1_i x_il x_ia x_ib, shape (k, k, k), and X' diag(d2q) X.

        One pass over the table for both.
        """
        sums = self.table @ np.column_stack([d1, d2q])
        sums = np.vstack([sums, np.zeros((1, 2))])  # row -1: the zero products
        return sums[self.triple, 0].reshape(k, k, k), sums[self.pair, 1].reshape(k, k)


def _cholesky(a):
    """Lower Cholesky factor of ``a`` or None where ``a`` is not positive definite.

    LAPACK directly: scipy.linalg's wrappers cost 10-100 microseconds a call
    in argument checks, more than the factorisation of a k x k matrix, and
    the fits make hundreds of such calls. Same routine, same result.
    """
    c, status = _potrf(a, lower=1)
    return c if status == 0 else None


def _solve(chol, b):
    """``a^-1 b`` from the lower Cholesky factor of ``a``."""
    return _potrs(chol, b, lower=1)[0]


class _Eval:
    """Penalised log-likelihood, modified score and information at one beta."""

    __slots__ = ("beta", "pll", "score", "info", "chol", "ok", "_data", "_p", "_v", "_z", "_q", "_l_inv")

    def __init__(self, data, beta):
        self.beta = beta
        self._data = data
        xt, y, w = data.xt, data.y, data.w
        eta = beta @ xt
        # One exp of -|eta| gives p, p(1 - p) and log-likelihood terms that
        # neither overflow nor cancel, whatever the size of |eta|.
        e = np.exp(-np.abs(eta))
        inv = 1.0 / (1.0 + e)
        p = np.where(eta >= 0, inv, e * inv)
        pq = e * inv * inv
        # log P(y_i | eta_i) = -(max(-s eta, 0) + log1p(exp(-|eta|))), s = +-1
        loglik = -np.dot(w, np.maximum(data.sign * eta, 0.0) + np.log1p(e))
        v = pq if data.unit else w * pq
        info = (xt * v) @ xt.T
        chol = _cholesky(info)
        if chol is not None:
            diag = np.diag(chol)
            ok = bool(np.all(diag > 0)) and np.isfinite(loglik)
        else:
            ok = False
        if not ok:
            # Fitted probabilities of numerically 0 or 1: the penalty is -inf
            # there, so such a point can never be accepted as a step.
            self.ok = False
            self.pll = -np.inf
            self.score = self.info = self.chol = self._z = None
            return
        self.ok = True
        self.info = info
        self.chol = chol
        self.pll = float(loglik + np.sum(np.log(diag)))
        # z_i = L^-1 x_i, so x_i' I^-1 x_i = |z_i|^2: the hat diagonal with no
        # n-by-n matrix.  Inverting the k-by-k triangle once and multiplying
        # is far faster than a triangular solve with n right-hand sides.
        # Kept as k x n rows (z' = L^-1 X'), the layout neg_hessian multiplies.
        l_inv = _trtrs(chol, data.eye, lower=1)[0]
        z = l_inv @ xt
        q = np.einsum("ij,ij->j", z, z)
        h = v * q
        r = y - p
        self.score = xt @ ((r if data.unit else w * r) + h * (0.5 - p))
        self._p, self._v, self._z, self._q, self._l_inv = p, v, z, q, l_inv

    def neg_hessian(self):
        """Exact negative Hessian of l* (the information I is only its first term).

        With v = w p (1 - p), q_i = |z_i|^2 and z_i = L^-1 x_i (``_z`` holds them as columns),
        -d2 l*/db db' = I - 1/2 X' diag(q v'') X + 1/2 [tr(G_k G_l)],
        G_k = sum_i v'_i x_ik z_i z_i', v' = v (1 - 2p), v'' = v (1 - 6p + 6p^2).
        Fisher scoring (I alone) converges only linearly, and slowly where the
        penalty dominates: exactly in separated data and far out on a profile.
        """
        data, p, v, zt, q = self._data, self._p, self._v, self._z, self._q
        xt, k = data.xt, data.k
        d1 = v * (1.0 - 2.0 * p)
        d2 = v * (1.0 - 6.0 * p * (1.0 - p))
        if data.triples is not None:
            # G_l = L^-1 M_l L^-T with M_l = X' diag(d1 x_l) X from the
            # precomputed column products (see _Triples).
            l_inv = self._l_inv
            m, second = data.triples.moments(d1, q * d2, k)
            g = (l_inv @ m @ l_inv.T).reshape(k, k * k)
            neg_h = self.info - 0.5 * second + 0.5 * (g @ g.T)
        else:
            # G_l is symmetric, so only its upper triangle a <= b is formed:
            # G[l, (a, b)] = sum_i (d1_i x_il) z_ia z_ib, one (k x n) @ (n x (k - a))
            # product per a; then tr(G_k G_l) = sum_ab G_k[a, b] G_l[a, b] counts
            # the off-diagonal pairs twice. k(k+1)/2 columns instead of k^2, and
            # every temporary at most the size of the design.
            xd = xt * d1
            g = np.empty((k, k * (k + 1) // 2))
            twice = np.empty(g.shape[1])
            m = 0
            for a in range(k):
                g[:, m:m + k - a] = xd @ (zt[a:] * zt[a]).T
                twice[m] = 1.0
                twice[m + 1:m + k - a] = 2.0
                m += k - a
            neg_h = self.info - 0.5 * ((xt * (q * d2)) @ xt.T) + 0.5 * ((g * twice) @ g.T)
        return 0.5 * (neg_h + neg_h.T)

    def curvature(self, free=None):
        """Lower Cholesky factor of the negative Hessian on ``free``, or of I there.

        The exact Hessian gives quadratic convergence where l* is locally
        concave; elsewhere (far from the optimum) I, always positive
        definite, still gives an ascent direction (as logistf's iteration).
        ``free`` None means every coefficient.
        """
        neg_h = self.neg_hessian()
        if free is None:
            c = _cholesky(neg_h)
            return c if c is not None else self.chol
        idx = np.ix_(free, free)
        c = _cholesky(neg_h[idx])
        return c if c is not None else _cholesky(self.info[idx])


def _newton(data, beta0, free, tol, max_iter):
    """Maximise l* over the coefficients in ``free`` (others held fixed).

    Fisher scoring, then Newton-Raphson once Fisher scoring slows down, on
    the modified score U*(b) = X'(w(y - p) + h(1/2 - p)), with a cap on the
    step length and step-halving on l*.  Converged when
    the Fisher step inv(I) U* and U* / n are both at most ``tol`` on the free
    coefficients.  Returns (eval, converged, iterations).
    """
    cur = _Eval(data, np.array(beta0, dtype=float))
    if not cur.ok:
        return cur, False, 0
    if not np.any(free):
        return cur, True, 0
    every = bool(np.all(free))
    idx = None if every else np.ix_(free, free)
    use_hessian = False
    previous = np.inf
    c = None
    for it in range(max_iter + 1):
        g = cur.score if every else cur.score[free]
        # The Cholesky factor of I on every coefficient comes with the
        # evaluation; a principal block of a positive-definite I is one too.
        fisher = _solve(cur.chol if every else _cholesky(cur.info[idx]), g)
        size = float(np.max(np.abs(fisher)))
        if size <= tol and np.max(np.abs(g)) <= tol * data.total_w:
            return cur, True, it
        if it == max_iter:
            break
        # Fisher scoring converges at a rate of about (penalty curvature) /
        # (information), tiny on large data. Without the column products a
        # Hessian costs about one evaluation, so Fisher scoring is used while
        # it works and the exact Hessian takes over once steps stop shrinking
        # fast; with them (_Triples) a Hessian costs a third of an evaluation
        # and Newton's quadratic convergence is used from the start.
        ratio = size / previous
        use_hessian = use_hessian or data.triples is not None or ratio > _SLOW
        previous = size
        if use_hessian:
            if c is None or ratio > _REUSE:
                c = cur.curvature(None if every else free)
            if c is None:  # pragma: no cover - I is positive definite at every accepted point
                break
            delta_f = _solve(c, g)
        else:
            delta_f = fisher
        if every:
            delta = delta_f
        else:
            delta = np.zeros_like(cur.beta)
            delta[free] = delta_f
        step = float(np.max(np.abs(delta)))
        if step > _MAX_STEP:
            delta = delta * (_MAX_STEP / step)
        # Rounding noise in l* grows with n; a step that loses less than
        # that is not a real loss, and refusing it would stall convergence.
        noise = 1e-13 * (1.0 + abs(cur.pll))
        for _ in range(_MAX_HALVINGS):
            new = _Eval(data, cur.beta + delta)
            if new.ok and new.pll >= cur.pll - noise:
                break
            delta = delta * 0.5
        else:
            break
        cur = new
    return cur, False, it


def _start(data):
    """Starting point of the estimate: the intercept-only fit where X has a constant column, else 0.

    With rare outcomes beta = 0 (every p = 1/2) is far from the estimate, and
    Fisher scoring needs five or six steps to bring the intercept down;
    starting at the log-odds of the (Haldane-corrected) event proportion
    saves them.
    """
    beta = np.zeros(data.k)
    ones = np.nonzero(np.all(data.xt == 1.0, axis=1))[0]
    if ones.size:
        events = float(np.dot(data.w, data.y))
        beta[ones[0]] = math.log((events + 0.5) / (float(np.sum(data.w)) - events + 0.5))
    return beta


def _constrained_start(beta_hat, cov, j, value, known=None):
    """Starting point for the fit with beta_j = value.

    Moving the other coefficients along the regression of beta_-j on beta_j
    implied by the covariance (the first-order path of the profile) starts
    the inner fit close to its solution. With ``known``, the constrained
    maximum at another beta_j (a profile limit found before), a quadratic
    term makes the path pass through that point too: the path bends the
    same way on both sides of the estimate (demo designs: 4.6 -> 3.8
    evaluations per p-value fit).
    """
    u = value - beta_hat[j]
    start = beta_hat + u * cov[:, j] / cov[j, j]
    if known is not None:
        d = known[j] - beta_hat[j]
        start += (u / d) ** 2 * (known - beta_hat - d * cov[:, j] / cov[j, j])
    start[j] = value
    return start


def _skewed_wald(fit, cov, j, side, crit, known):
    """Distance from the estimate to the start of a profile limit's iteration.

    The Wald distance, side * sqrt(crit) * se; with the constrained maximum
    at the other limit known, the signed root of the profile deviance,
    r(b_j) = sign(b_j - b_hat) sqrt(2 (l*(b_hat) - max l*(b_j, .))), is taken
    as (u / se)(1 + a u), u = b_j - b_hat, with ``a`` fixed by r = -side
    sqrt(crit) there, and solved for r = side sqrt(crit). A skewed profile
    (a tier with few events) is steep on one side and flat on the other;
    the start then begins nearer the limit (demo designs: 4.2 -> 3.5
    evaluations per upper limit).
    """
    se, r = math.sqrt(cov[j, j]), math.sqrt(crit)
    wald = side * r * se
    if known is None:
        return wald
    d = known[j] - fit.beta[j]
    a = (-side * r * se / d - 1.0) / d
    disc = 1.0 + 4.0 * a * wald
    if a == 0.0 or not disc > 0.0:
        return wald
    u = (math.sqrt(disc) - 1.0) / (2.0 * a)
    return u if side * u > 0 else wald


def _vm_limit(data, fit, cov, j, side, crit, tol, max_iter, known=None):
    """Profile limit by the Venzon-Moolgavkar (1988) iteration, or None.

    Solves l*(b) = l*(b_hat) - crit/2 and dl*/db_-j = 0 jointly by Newton
    steps on a quadratic model: the point of the model at the target level
    that maximises over b_-j with b_j as far out as possible is
    b + A^-1 (U* + lam e_j), lam^2 = 2 (l* - l0 + U*'A^-1 U*/2) / (A^-1)_jj,
    with A the negative Hessian (or I while that converges fast).  One likelihood evaluation per step (the
    nested search below needs several), so this is the fast path; None means
    it did not converge and the caller falls back to the nested search.
    Returns the constrained maximum at the limit (every coefficient).
    ``known``: the constrained maximum at the other limit, if found, for a
    better start.
    """
    target = fit.pll - 0.5 * crit
    k = data.k
    beta = _constrained_start(fit.beta, cov, j, fit.beta[j] + _skewed_wald(fit, cov, j, side, crit, known), known)
    e_j = np.zeros(k)
    e_j[j] = 1.0
    use_hessian = False
    previous = np.inf
    ratio = np.inf
    c_h = None
    for _ in range(max_iter):
        ev = _Eval(data, beta)
        if not ev.ok:
            return None
        # Any positive-definite A has the same fixed point; I is cheap and
        # enough on large data, the exact Hessian is needed where the
        # penalty dominates (see _newton).
        if use_hessian:
            if c_h is None or ratio > _REUSE:
                c_h = ev.curvature()
            c = c_h
        else:
            c = ev.chol
        a_inv_g = _solve(c, ev.score)
        a_inv_e = _solve(c, e_j)
        lam2 = 2.0 * (ev.pll - target + 0.5 * ev.score @ a_inv_g) / a_inv_e[j]
        if not lam2 >= 0:
            # The quadratic model does not reach the target level from here: the start (the Wald
            # limit) lies far beyond the limit, as on the flat side of a separated tier's profile.
            # Halving the way back to the estimate is the cheap remedy; the nested search is the last.
            beta = fit.beta + 0.5 * (beta - fit.beta)
            use_hessian = False
            previous = ratio = np.inf
            c_h = None
            continue
        delta = a_inv_g + side * math.sqrt(lam2) * a_inv_e
        step = float(np.max(np.abs(delta)))
        ratio = step / previous
        # As in _newton, but the first step from the Wald start is always
        # Fisher's: there the quadratic model of I reaches the target level
        # better than the Hessian's (demo designs: 416 -> 378 evaluations).
        use_hessian = use_hessian or data.triples is not None or ratio > _SLOW
        previous = step
        # The level test allows for rounding in l*, a sum over n terms.
        if step <= tol and abs(ev.pll - target) <= max(tol, 1e-12 * abs(target)):
            if side * (beta[j] - fit.beta[j]) <= 0:
                return None
            return beta
        if step > _MAX_STEP:
            delta = delta * (_MAX_STEP / step)
        beta = beta + delta
    return None


def _nested_limit(data, fit, cov, j, side, crit, tol, max_iter):
    """Profile limit by Brent's method on b_j around full inner fits.

    Slower than _vm_limit but cannot wander: each evaluation maximises l*
    over b_-j with b_j fixed, and the root of
    sqrt(2 (l*(b_hat) - max l*(b_j, .))) - sqrt(crit) is bracketed first.
    Returns (limit, converged).
    """
    free = np.ones(data.k, dtype=bool)
    free[j] = False
    beta_hat = fit.beta
    target = math.sqrt(crit)
    failed = []

    def root(b):
        ev, conv, _ = _newton(data, _constrained_start(beta_hat, cov, j, b), free, tol, max_iter)
        if not conv:
            failed.append(b)
        dev = max(2.0 * (fit.pll - ev.pll), 0.0)
        return math.sqrt(dev) - target if np.isfinite(dev) else np.inf

    se = math.sqrt(cov[j, j])
    # Grow the bracket from the Wald limit; under separation the profile is
    # far flatter on one side, so the bracket may need to double many times.
    dist = target * se
    inner = beta_hat[j]
    outer = None
    for _ in range(60):
        b = beta_hat[j] + side * dist
        val = root(b)
        if val >= 0:
            outer = b
            break
        inner = b
        dist *= 2.0
    if outer is None:
        return np.nan, False
    if val == 0.0:
        return outer, not failed
    lo, hi = sorted((inner, outer))
    scale = max(1.0, abs(beta_hat[j]), se)
    from scipy.optimize import brentq  # rarely needed; scipy.optimize takes about 0.5 s to import

    limit = brentq(root, lo, hi, xtol=1e-12 * scale, rtol=4 * np.finfo(float).eps, maxiter=200)
    return float(limit), not failed


def _profile_limit(data, fit, cov, j, side, crit, tol, max_iter, known=None):
    """One end (side = -1 lower, +1 upper) of the profile CI for beta_j.

    Returns (limit, converged, point): ``point`` is the constrained maximum
    at the limit where the Venzon-Moolgavkar iteration found it, else None;
    ``known`` is that of the other limit (or None), for a better start.
    """
    point = _vm_limit(data, fit, cov, j, side, crit, tol, min(max_iter, 50), known)
    if point is not None:
        return float(point[j]), True, point
    return (*_nested_limit(data, fit, cov, j, side, crit, tol, max_iter), None)


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------


def _check_inputs(X, y, weights, conf_level, names):
    try:
        X = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise NeutrostatsError(
            f"{_FUNC}: expected X to be a numeric 2-D array (the design matrix, with an intercept "
            f"column); it could not be converted to numbers ({exc}). Build X from numeric columns."
        ) from None
    if X.ndim != 2 or X.shape[1] == 0:
        raise NeutrostatsError(
            f"{_FUNC}: expected X to be 2-D with at least one column (n_rows x n_coefficients), "
            f"found shape {X.shape}. Pass the full design matrix including the intercept column."
        )
    n, k = X.shape
    if names is None:
        names = [f"column {j}" for j in range(k)]
    else:
        names = [f"column {j} ({nm!r})" for j, nm in enumerate(names)]
        if len(names) != k:
            raise NeutrostatsError(
                f"{_FUNC}: expected {k} names (one per column of X), found {len(names)}. "
                "Pass one name per design column."
            )
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise NeutrostatsError(
            f"{_FUNC}: expected y to be 1-D with one value per row of X ({n} rows), found shape "
            f"{y.shape}. Pass the outcome as a 1-D 0/1 array aligned with X."
        )
    try:
        yf = y.astype(float)
    except (TypeError, ValueError):
        raise NeutrostatsError(
            f"{_FUNC}: expected y to hold 0/1 outcomes, found dtype {y.dtype} (e.g. {y[:1].tolist()}). "
            "Code the outcome as 1 = event, 0 = no event."
        ) from None
    bad_y = ~np.isin(yf, (0.0, 1.0))
    if bad_y.any():
        example = y[bad_y][:3].tolist()
        raise NeutrostatsError(
            f"{_FUNC}: expected y to be 0 or 1, found {int(bad_y.sum())} other value(s) "
            f"(e.g. {example}). Code the outcome as 1 = event, 0 = no event, and drop missing outcomes."
        )
    bad_x = ~np.isfinite(X)
    if bad_x.any():
        rows, cols = np.nonzero(bad_x)
        raise NeutrostatsError(
            f"{_FUNC}: expected finite numbers in X, found {int(bad_x.sum())} NaN/inf value(s) in "
            f"{len(np.unique(rows))} row(s) (first at row {rows[0]}, {names[cols[0]]}). "
            "Drop or impute incomplete rows before fitting (and count them in the attrition table)."
        )
    if weights is None:
        w = np.ones(n)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n,):
            raise NeutrostatsError(
                f"{_FUNC}: expected weights to be 1-D with one value per row of X ({n} rows), found "
                f"shape {w.shape}. Pass one frequency weight per row, or weights=None."
            )
        bad_w = ~np.isfinite(w) | (w < 0)
        if bad_w.any():
            raise NeutrostatsError(
                f"{_FUNC}: expected finite non-negative frequency weights, found {int(bad_w.sum())} "
                f"bad value(s) (e.g. {w[bad_w][:3].tolist()}). Weights count how many persons share "
                "a row; fix or drop those rows."
            )
        if not np.sum(w) > 0:
            raise NeutrostatsError(
                f"{_FUNC}: expected some positive weights, found all {n} weights equal to 0. "
                "Pass frequency weights counting the persons in each row."
            )
    if not isinstance(conf_level, (int, float, np.floating)) or not 0.0 < float(conf_level) < 1.0:
        raise NeutrostatsError(
            f"{_FUNC}: expected conf_level strictly between 0 and 1 (e.g. 0.95), found {conf_level!r}. "
            "Pass the confidence level as a fraction, not a percentage or an alpha."
        )
    return X, yf, w, names


def _check_design(X, w, names):
    """Raise on empty or linearly dependent design columns (rows with w > 0)."""
    used = X[w > 0]
    empty = np.nonzero(~np.any(used != 0, axis=0))[0]
    if empty.size:
        listed = ", ".join(names[j] for j in empty[:5])
        raise NeutrostatsError(
            f"{_FUNC}: expected every column of X to have a non-zero value in some row, found "
            f"{empty.size} all-zero column(s): {listed}. A dummy column that is all zero is "
            "usually a tier (or category) with no persons; drop that column or merge the empty "
            "tier into a neighbouring one before fitting."
        )
    # Pivoted QR names the columns that are combinations of earlier ones.
    _, r, piv = linalg.qr(used, mode="economic", pivoting=True, check_finite=False)
    d = np.abs(np.diag(r))
    tol_rank = d.max() * max(used.shape) * np.finfo(float).eps if d.size else 0.0
    rank = int(np.sum(d > tol_rank))
    if rank < X.shape[1]:
        dependent = ", ".join(names[j] for j in sorted(piv[rank:])[:5])
        raise NeutrostatsError(
            f"{_FUNC}: expected X to have full column rank ({X.shape[1]} independent columns), "
            f"found rank {rank}; linearly dependent: {dependent}. Drop redundant columns (e.g. one "
            "dummy per categorical variable must be left out as the reference, and a tier that "
            "holds every person duplicates the intercept)."
        )


def _collapse(X, y, w):
    """Sum weights over identical (x, y) rows; l*, U* and I depend only on those sums.

    Each column is coded to integers and the codes combined into one int64
    key (mixed radix), far faster than ``np.unique(axis=0)``.  Data with a
    near-continuous column have few repeats and are returned as they are.
    """
    keep = w > 0
    X, y, w = X[keep], y[keep], w[keep]
    n = X.shape[0]
    if n < _COLLAPSE_MIN_ROWS:
        return X, y, w
    # A near-continuous column (age) rules collapsing out; finding it first
    # spares sorting the dummy columns before it (8 -> 2 ms at 20,000 rows).
    for col in X.T:
        if not np.all((col == 0.0) | (col == 1.0)) and np.unique(col).size > n // 2:
            return X, y, w
    key = y.astype(np.int64)
    radix = 2
    for col in X.T:
        values, codes = np.unique(col, return_inverse=True)
        if values.size > n // 2 or radix * values.size >= 2**62:
            return X, y, w
        key = key + radix * codes.ravel().astype(np.int64)
        radix *= values.size
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if first.size > n // 2:
        return X, y, w
    wsum = np.bincount(inverse.ravel(), weights=w, minlength=first.size)
    return np.ascontiguousarray(X[first]), y[first], wsum


# --------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------


def firth_logit(
    X: np.ndarray,
    y: np.ndarray,
    *,
    conf_level: float = 0.95,
    weights: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-10,
    profile: bool | Sequence[int] = True,
    names: Sequence[str] | None = None,
    tests: bool | Sequence[int] = True,
) -> FirthResult:
    """Fit Firth's penalised-likelihood logistic regression.

    Maximises ``l(beta) + 0.5 * log det(X' W X)`` (Firth 1993), which gives
    finite estimates under complete and quasi-complete separation, and
    computes profile penalised-likelihood confidence intervals and penalised
    likelihood-ratio p-values, as R's ``logistf(..., pl=TRUE)``.

    Parameters
    ----------
    X : array_like, shape (n, k)
        Design matrix, including the intercept column.
    y : array_like, shape (n,)
        Outcome, 0/1 (or boolean).
    conf_level : float, default 0.95
        Confidence level of the intervals, strictly between 0 and 1.
    weights : array_like, shape (n,), optional
        Non-negative case weights, as R's prior weights of ``glm`` and
        ``brglm2::brglmFit``: each row's log-likelihood term counts with its
        weight and the penalty uses the weighted information
        ``X' diag(w p (1 - p)) X``. Whole-number weights are frequency
        weights (a row with weight ``m`` counts as ``m`` identical persons,
        so a table of unique covariate patterns with counts gives the same
        fit as the person-level data); non-integer (e.g. sampling) weights
        give brglm2's estimates and model-based standard errors.
    max_iter : int, default 100
        Maximum Newton iterations per fit (the estimate and each profile
        evaluation).
    tol : float, default 1e-10
        Convergence tolerance: the iteration stops when the largest Newton
        step is at most ``tol`` and the largest modified score is at most
        ``tol`` times the number of observations.
    profile : bool or sequence of int, default True
        Which coefficients get profile-likelihood intervals: ``True`` all,
        a sequence of column indices those, ``False`` none.  The others get
        Wald intervals from ``bse``; ``ci_method`` records which.
    names : sequence of str, optional
        Column names, used only in error messages.
    tests : bool or sequence of int, default True
        Which coefficients get the penalised likelihood-ratio p-value (one
        constrained fit each): ``True`` all, a sequence of column indices
        those, ``False`` none; the others' p-values are NaN.

    Returns
    -------
    FirthResult
        ``params``, ``bse``, ``conf_low``, ``conf_high`` (log-odds scale),
        ``pvalues`` (penalised likelihood-ratio test of the coefficients in
        ``tests``, whatever ``profile``), ``loglik`` (penalised), ``converged``, ``iterations``,
        ``conf_level``, ``ci_method``, ``cov_params``, ``nobs``.

    Raises
    ------
    NeutrostatsError
        On mismatched shapes, outcomes other than 0/1, non-finite values,
        negative weights, ``conf_level`` outside (0, 1), an all-zero column
        (e.g. a tier with no persons) or a rank-deficient design.

    Warns
    -----
    FirthConvergenceWarning
        When the estimate, a p-value fit or a profile limit did not converge
        (the affected limit is NaN).

    Notes
    -----
    The estimate solves the modified score equation
    ``U*(beta) = X'(w (y - p) + h (1/2 - p)) = 0``, with ``h`` the diagonal of
    the weighted hat matrix (Firth 1993; Heinze & Schemper 2002), from the
    intercept-only log-odds: Newton-Raphson with the exact Hessian of ``l*``
    (quadratic convergence, needed where the penalty dominates, as under
    separation), with a step-length cap and step-halving on ``l*``. The
    Hessian's third-derivative term comes from the distinct products of
    three design columns, formed once; where that table would be too large
    (long data with many columns), Fisher scoring leads while it converges
    fast and the Hessian, then formed at each point, takes over once it
    slows down.  The convergence test is the same either way.  A profile limit for ``beta_j`` solves
    ``2 [l*(beta_hat) - max l*(beta_j, .)] = chi2_1(conf_level)`` (the
    maximum over the other coefficients) by the Venzon-Moolgavkar iteration,
    as logistf; if that does not converge, by Brent's method on ``beta_j``
    around full constrained fits.  Long data with few distinct covariate
    patterns are collapsed internally to unique rows with summed weights,
    which changes nothing but the speed.

    The penalised information used for ``bse`` is ``X' W X`` (not the
    Hessian of ``l*``), as logistf's ``vcov``.

    References
    ----------
    Firth D (1993). Bias reduction of maximum likelihood estimates.
    Biometrika 80:27-38.
    Heinze G, Schemper M (2002). A solution to the problem of separation in
    logistic regression. Statistics in Medicine 21:2409-2419.
    Venzon DJ, Moolgavkar SH (1988). A method for computing
    profile-likelihood-based confidence intervals. Applied Statistics
    37:87-94.

    Examples
    --------
    A 2x2 table with an empty cell (0 of 10 exposed, 5 of 20 unexposed had
    the event): the maximum-likelihood odds ratio is 0, Firth's is finite and
    equals the odds ratio with 0.5 added to every cell.

    >>> import numpy as np
    >>> X = np.column_stack([np.ones(4), [1, 1, 0, 0]])
    >>> y = np.array([1, 0, 1, 0])
    >>> fit = firth_logit(X, y, weights=np.array([0, 10, 5, 15]))
    >>> round(float(np.exp(fit.params[1])), 4)
    0.1342
    >>> bool(np.isclose(fit.params[1], np.log(0.5 * 15.5 / (10.5 * 5.5))))
    True
    >>> bool(fit.conf_low[1] < fit.params[1] < fit.conf_high[1]), fit.ci_method
    (True, ('profile', 'profile'))
    """
    X, y, w, labels = _check_inputs(X, y, weights, conf_level, names)
    k = X.shape[1]
    prof = _profile_indices(profile, k)
    tested = _profile_indices(tests, k, "tests")
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise NeutrostatsError(f"{_FUNC}: expected max_iter to be a positive integer, found {max_iter!r}.")
    if not (isinstance(tol, (int, float, np.floating)) and tol > 0):
        raise NeutrostatsError(f"{_FUNC}: expected tol to be a positive number, found {tol!r}.")
    conf_level = float(conf_level)
    # One BLAS thread from the rank check on: with two, OpenBLAS took 16 ms
    # for the pivoted QR of a 20,000 x 6 design on a busy 2-core machine, 1 ms with one.
    with single_blas_thread():
        _check_design(X, w, labels)
        X, y, w = _collapse(X, y, w)
        return _fit(_Data(X, y, w), prof, tested, conf_level, tol, max_iter, labels)


def _fit(data, prof, tested, conf_level, tol, max_iter, labels) -> FirthResult:
    """The estimate, its covariance, the intervals and the p-values (inputs checked)."""
    k, w = data.k, data.w
    fit, converged, iterations = _newton(data, _start(data), np.ones(k, dtype=bool), tol, max_iter)
    if not fit.ok:  # pragma: no cover - beta = 0 always has a positive-definite information
        raise NeutrostatsError(f"{_FUNC}: the information matrix is singular at the start; check X.")
    if not converged:
        warnings.warn(
            f"{_FUNC}: the penalised-likelihood iteration did not converge in {max_iter} iterations "
            f"(tol={tol}); estimates may be inaccurate. Increase max_iter or check the design.",
            FirthConvergenceWarning,
            stacklevel=3,
        )
    cov = _solve(fit.chol, np.eye(k))
    cov = 0.5 * (cov + cov.T)
    bse = np.sqrt(np.diag(cov))
    conf_low, conf_high, methods, troubled, points = _intervals(data, fit, cov, bse, prof, conf_level, tol,
                                                                max_iter, labels)
    pvalues, failed = _lr_pvalues(data, fit, cov, tested, tol, max_iter, labels, points)
    troubled += failed
    if troubled:
        warnings.warn(
            f"{_FUNC}: profile-likelihood limits or p-values did not converge for "
            f"{', '.join(troubled)}; they are NaN. Increase max_iter, or use profile=False "
            "for Wald intervals.",
            FirthConvergenceWarning,
            stacklevel=3,
        )
    return FirthResult(
        params=fit.beta.copy(),
        bse=bse,
        conf_low=conf_low,
        conf_high=conf_high,
        pvalues=pvalues,
        loglik=fit.pll,
        converged=bool(converged),
        iterations=int(iterations),
        conf_level=conf_level,
        ci_method=tuple(methods),
        cov_params=cov,
        nobs=float(np.sum(w)),
    )


def _profile_indices(profile, k, argument: str = "profile") -> list[int]:
    """The coefficients ``profile`` (or ``tests``) selects, as sorted column indices; raise on bad ones."""
    if isinstance(profile, (bool, np.bool_)):
        return list(range(k)) if profile else []
    try:
        prof = sorted({int(j) for j in profile})
    except (TypeError, ValueError):
        raise NeutrostatsError(
            f"{_FUNC}: expected {argument} to be True, False or a sequence of column indices, "
            f"found {profile!r}."
        ) from None
    out = [j for j in prof if not 0 <= j < k]
    if out:
        raise NeutrostatsError(
            f"{_FUNC}: expected {argument} indices between 0 and {k - 1} (X has {k} columns), "
            f"found {out}. Pass indices of design columns."
        )
    return prof


def _intervals(data, fit, cov, bse, prof, conf_level, tol, max_iter, labels):
    """Wald limits for every coefficient, profile limits for those in ``prof`` (NaN where they fail).

    Also returns, per profiled coefficient, the constrained maxima found at its limits (for _lr_pvalues).
    """
    # scipy.special rather than scipy.stats (whose import takes about a second): the same functions,
    # chi2.ppf(q, 1) = 2 gammaincinv(1/2, q) and norm.ppf = ndtri, with bit-identical results.
    crit = float(2.0 * special.gammaincinv(0.5, conf_level))
    z = float(special.ndtri(0.5 + conf_level / 2.0))
    conf_low = fit.beta - z * bse
    conf_high = fit.beta + z * bse
    methods = ["wald"] * data.k
    troubled = []
    points = {}
    for j in prof:
        lo, ok_lo, at_lo = _profile_limit(data, fit, cov, j, -1, crit, tol, max_iter)
        hi, ok_hi, at_hi = _profile_limit(data, fit, cov, j, +1, crit, tol, max_iter, at_lo)
        conf_low[j] = lo if ok_lo else np.nan
        conf_high[j] = hi if ok_hi else np.nan
        methods[j] = "profile"
        if not (ok_lo and ok_hi):
            troubled.append(labels[j])
        points[j] = [p for p in (at_lo, at_hi) if p is not None]
    return conf_low, conf_high, methods, troubled, points


def _lr_pvalues(data, fit, cov, tested, tol, max_iter, labels, points):
    """Penalised likelihood-ratio p-value of beta_j = 0 for the coefficients in ``tested`` (NaN where the fit fails).

    ``points``: per coefficient, the constrained maxima at its profile limits; the fit at beta_j = 0 starts
    on the path through the one nearest to 0.
    """
    k = data.k
    pvalues = np.full(k, np.nan)
    troubled = []
    for j in tested:
        free = np.ones(k, dtype=bool)
        free[j] = False
        known = min(points.get(j, ()), key=lambda p: abs(p[j]), default=None)
        ev, ok, _ = _newton(data, _constrained_start(fit.beta, cov, j, 0.0, known), free, tol, max_iter)
        stat = max(2.0 * (fit.pll - ev.pll), 0.0)
        pvalues[j] = float(special.chdtrc(1.0, stat)) if ok else np.nan  # = scipy.stats.chi2.sf(stat, 1)
        if not ok:
            troubled.append(f"{labels[j]} (p-value)")
    return pvalues, troubled
