"""Standardised absolute risks by g-computation, and cause-specific Cox models.

:func:`standardized_risk` answers "what would the risk at the horizon be if
every person of the cohort had been in tier ``t``?" for every tier: a Cox
model (all-cause death) or one Cox model per cause (an outcome with death
competing) is fitted with the tier and the ``adjust`` covariates, each
person's risk is predicted with the tier set in turn to every tier, and the
predictions are averaged over the persons (the g-formula; Robins 1986).
Standard errors come from the influence function of the whole procedure
(the average over the persons and the models' coefficients and baseline
hazards), as ``riskRegression::ate(..., estimator = "GFORMULA")`` computes
them (Ozenne et al. 2020). :func:`standardized_curves` gives the same on a
time grid, in the column shape of :func:`~neutrostats.cumulative_incidence`,
and :func:`cause_specific_cox` the per-cause hazard ratios with predicted
cumulative incidences for covariate profiles (``riskRegression::CSC`` and
``predictRisk``).

Conventions, as riskRegression 2022.11.28 (checked in
tests/test_standardize_r.py):

* the baseline hazard is that of the fitted ties method (Efron's increments
  ``sum_r 1 / (S0 - r/d D0)`` by default, Breslow's ``d / S0``), as
  ``predictCox`` and ``survfit.coxph``;
* the all-cause risk is ``1 - exp(-Lambda0(t) exp(x'b))``; the cumulative
  incidence of a cause sums ``exp(x'b_1) dLambda_1(s) S(s-)`` over the jump
  times ``s <= t`` with the overall survival ``S(s-)`` as a product limit
  over all causes' jumps strictly before ``s`` (``product.limit = TRUE``, the
  default of ``ate`` for ``CSC``);
* the influence function of the product limit ``S(s-)`` is that of
  ``exp(-sum Lambda(s-))``, as riskRegression differentiates it (the two
  agree to first order: the jumps are O(1/n));
* the influence function of a baseline hazard is riskRegression's
  (``iidCox``): the event term ``1/S0``, the compensator
  ``exp(x'b) sum dLambda0/S0`` and the coefficients' term; the
  coefficients' influence function is their ``dfbeta`` (score residuals
  times the variance, the fitted ties method, R's ``residuals(fit,
  "dfbeta")``). riskRegression's ``iidCox`` counts each tied event time once
  in the compensator of the score (``1/S0`` where ``d/S0`` is due), so its
  standard errors differ from these where event times are tied; without
  ties they agree to rounding;
* intervals are Wald intervals on the natural scale, cut to the parameter's
  range (``confint.ate`` with ``*.transform = "none"``, its default): risks
  to [0, 1], differences to [-1, 1], ratios to [0, inf); the p-values test a
  difference of 0 and a ratio of 1.

Everything is vectorised: the all-cause Cox risks cost O(n) per tier for all
horizons at once; the cause-specific ones one pass per tier over (distinct
covariate patterns) x (event times up to the last horizon), in blocks that
stay in cache, where every per-pattern quantity of the estimate and its
influence function is a product of the overall-survival matrix with a few
vectors (see the notes above ``_survival_before``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.distributions import norm
from neutrostats.core.threads import single_blas_thread
from neutrostats.core.validate import (
    covariate_kinds,
    require_choice,
    require_conf_level,
    require_dataframe,
    split_reference,
)
from neutrostats.errors import InfiniteHazardRatioWarning, NeutrostatsError
from neutrostats.stats.cox import (
    _EPS,
    _ITER_MAX,
    COX_COLUMNS,
    _check_design,
    _covariate_terms,
    _finish,
    _Risk,
    cox_hazard_ratios,
)
from neutrostats.stats.tte import check_tte

# scipy is imported at the first call that needs it, not with neutrostats (neutrostats.core.lazy).

__all__ = [
    "STANDARDIZED_COLUMNS",
    "CURVE_COLUMNS",
    "CauseSpecificCox",
    "cause_specific_cox",
    "standardized_risk",
    "standardized_curves",
]

#: Columns of :func:`standardized_risk`, in order.
STANDARDIZED_COLUMNS = ["outcome", "group", "contrast", "time", "estimate", "std_error", "conf_low", "conf_high",
                        "p_value", "is_reference", "method"]
#: Columns of :func:`standardized_curves`, in order.
CURVE_COLUMNS = ["outcome", "group", "time", "n_risk", "estimate", "std_error", "conf_low", "conf_high", "method"]

_MODELS = ("cox", "cause_specific")
_TIES = ("efron", "breslow")
# Covariate patterns x event times per block of the cause-specific pass: 1.6 MB a matrix, so that the block's
# five passes (product, cumulative product, three thin products) run in cache; 4 million cells ran 1.5x slower.
_BLOCK_CELLS = 200_000


# --- the design -------------------------------------------------------------------------


@dataclass
class _Data:
    """Complete cases: times, event codes, tier codes and the covariate matrix (original row order)."""

    time: np.ndarray
    status: np.ndarray  # int64: 0 censored, 1, 2, ... causes
    tier: np.ndarray  # int64 codes into levels
    levels: list
    ref: int
    Z: np.ndarray  # n by q covariate columns (no tier)
    znames: list[str]
    n_missing: int
    missing: dict


def _data(df, duration, event, tier, adjust, reference, categorical, fn) -> _Data:
    df = require_dataframe(df, fn, "df", allow_empty=False)
    adjust = [] if adjust is None else ([adjust] if isinstance(adjust, str) else list(adjust))
    if tier in adjust:
        raise NeutrostatsError(f"{fn}: {tier!r} is the tier column; leave it out of adjust=")
    chk0 = df.columns
    if tier in chk0 and not isinstance(df[tier].dtype, pd.CategoricalDtype):
        raise NeutrostatsError(
            f"{fn}: column {tier!r} must be an ordered Categorical of tiers (as build_cohort makes), found "
            f"{df[tier].dtype}; convert it with pandas.Categorical(values, categories=[...], ordered=True)")
    chk = check_tte(df, fn, duration=duration, event=event, events="codes", group=tier, covariates=adjust,
                    hint="Pass the cohort table and the names of its columns.", stacklevel=4)
    kinds = covariate_kinds(chk.data, adjust, fn, categorical=categorical)
    tier_ref, levels_ref = split_reference(reference, fn, group=tier, covariates=adjust, kinds=kinds)
    levels = list(chk.data[tier].cat.categories)
    ref = levels[0] if tier_ref is None else tier_ref
    if ref not in levels:
        raise NeutrostatsError(f"{fn}: reference {ref!r} is not a tier; tiers are {levels} (reference=)")
    cols, names, _ = _covariate_terms(chk.data, adjust, kinds, levels_ref, fn, 0)
    Z = np.column_stack(cols) if cols else np.empty((len(chk.data), 0))
    if not np.all(np.isfinite(Z)):
        raise NeutrostatsError(f"{fn}: covariates {adjust} have infinite values; fix or leave them out")
    return _Data(chk.time, np.asarray(chk.event, dtype=np.int64), chk.data[tier].cat.codes.to_numpy().astype(np.int64),
                 levels, levels.index(ref), Z, names, chk.n_missing, dict(chk.missing))


# --- one cause: Cox fit, baseline hazard, influence functions ---------------------------


@dataclass
class _CauseFit:
    """One cause's Cox model with what the g-formula and its influence function need."""

    tier_coef: np.ndarray  # per tier level (0 for the reference; NaN for tiers left out)
    zcoef: np.ndarray
    shift: float  # linear predictors are taken minus shift (the baseline hazard scaled to match)
    cols: list[int]  # tier levels with an indicator column, in column order
    u: np.ndarray  # distinct event times
    lam: np.ndarray  # baseline hazard jumps at u (for linear predictor - shift)
    S0: np.ndarray  # Breslow risk-set sums at u
    E: np.ndarray  # risk-set means of the design at u (K by p)
    r: np.ndarray  # exp(lp - shift) per person (0 for persons left out)
    event: np.ndarray  # bool per person
    time: np.ndarray
    iid_beta: np.ndarray  # n by p: dfbeta (score residuals times the variance)
    used: np.ndarray  # persons in the fit (tiers with events)
    k_event: np.ndarray  # index into u of each event (persons with event, in order)
    k_end: np.ndarray  # per person: event times u <= its time (where its compensator stops)

    def lp(self, a: int, Z: np.ndarray) -> np.ndarray:
        return self.tier_coef[a] + Z @ self.zcoef - self.shift

    def design_sums(self, a: int, w: np.ndarray, Zs: np.ndarray) -> np.ndarray:
        """``w' x_a`` (H by p) for weights ``w`` (rows by H) over rows ``Zs`` with the tier set to ``a``.

        The tier part of the design is one constant column (or none), so its
        sum is that of the weights: no rows by p design is built.
        """
        out = np.zeros((w.shape[1], len(self.cols) + Zs.shape[1]))
        out[:, len(self.cols):] = w.T @ Zs
        if a in self.cols:
            out[:, self.cols.index(a)] = w.sum(axis=0)
        return out

    def functional_iid(self, W: np.ndarray, Dbeta: np.ndarray) -> np.ndarray:
        """Influence functions (iid scale, n by H) of sum_k W[h, k] dLambda_k + Dbeta[h]' beta, per person.

        ``W`` is H by len(u) and ``Dbeta`` H by p: all H functionals at once.
        """
        n, H = self.time.size, W.shape[0]
        out = np.zeros((n, H))
        out[self.event] = (W[:, self.k_event] / self.S0[self.k_event]).T
        cum = np.zeros((self.u.size + 1, H))
        np.cumsum((W * self.lam / self.S0).T, axis=0, out=cum[1:])
        out -= self.r[:, None] * cum[self.k_end]
        out += self.iid_beta @ (Dbeta - (W * self.lam) @ self.E).T
        return out


def _fit_cause(d: _Data, ev: np.ndarray, ties: str, fn: str, what: str) -> _CauseFit:
    n_t = np.bincount(d.tier, minlength=len(d.levels))
    e_t = np.bincount(d.tier, weights=ev, minlength=len(d.levels))
    if e_t[d.ref] == 0:
        raise NeutrostatsError(f"{fn}: the reference tier {d.levels[d.ref]!r} has no {what} among its {n_t[d.ref]} "
                               "persons, so no model can be fitted against it; choose a tier with events (reference=)")
    cols = [j for j in range(len(d.levels)) if j != d.ref and n_t[j] > 0 and e_t[j] > 0]
    used = np.isin(d.tier, [d.ref, *cols])
    X = np.column_stack([*[(d.tier == j).astype(float) for j in cols], d.Z])
    X = X[used]
    _check_design(X, fn, [f"tier[{d.levels[j]}]" for j in cols] + d.znames)
    t, e = d.time[used], ev[used].astype(bool)
    # cox_fit's engine directly: its sorted risk sets serve the fit, the baseline hazard and the score
    # residuals (the inputs are checked above), so nothing is sorted or fitted twice.
    risk = _Risk(t, e, X, None, None, np.ones(t.size), ties)
    fit = _finish(risk, _ITER_MAX, _EPS, t.size, int(e.sum()), ties, fn)
    beta = np.asarray(fit.coef)
    tier_coef = np.full(len(d.levels), np.nan)
    tier_coef[d.ref] = 0.0
    tier_coef[cols] = beta[: len(cols)]
    lp = X @ beta
    shift = float(lp.mean())
    r = np.exp(lp - shift)
    order = risk.order
    ts, rs = t[order], r[order]
    u = np.unique(ts[e[order]])
    first = np.searchsorted(ts, u, "left")
    # risk-set sums at u: per-interval sums [u_g, u_g+1) (one contiguous pass), then reverse cumulative sums
    S0 = np.cumsum(np.add.reduceat(rs, first)[::-1])[::-1]
    S1 = np.cumsum(np.add.reduceat(X[order] * rs[:, None], first, axis=0)[::-1], axis=0)[::-1]
    k = np.searchsorted(u, t[e])
    dk = np.bincount(k, minlength=u.size)
    if ties == "efron":
        D0 = np.bincount(k, r[e], minlength=u.size)
        ks = np.sort(k)
        rank = np.arange(ks.size) - np.searchsorted(ks, ks, "left")
        lam = np.bincount(ks, 1.0 / (S0[ks] - rank / dk[ks] * D0[ks]), minlength=u.size)
    else:
        lam = dk / S0
    iid_b = np.empty_like(X)
    iid_b[order] = risk.score_residuals(beta) @ np.asarray(fit.var)
    n = d.time.size
    r_all, iid_all = np.zeros(n), np.zeros((n, X.shape[1]))
    r_all[used], iid_all[used] = r, iid_b
    event = ev.astype(bool) & used
    return _CauseFit(tier_coef, beta[len(cols):], shift, cols, u, lam, S0, S1 / S0[:, None], r_all, event, d.time,
                     iid_all, used, np.searchsorted(u, d.time[event]), np.searchsorted(u, d.time, "right"))


# --- g-formula for all-cause Cox --------------------------------------------------------


def _cox_tier(f: _CauseFit, Z: np.ndarray, a: int, taus: np.ndarray):
    """Risks (mean over persons) at each tau with tier a, and their iid (n by len(taus)): all horizons at once."""
    n = Z.shape[0]
    ra = np.exp(f.lp(a, Z))
    kk = np.searchsorted(f.u, taus, "right")
    Lam = np.r_[0.0, np.cumsum(f.lam)][kk]
    S = np.exp(-np.outer(ra, Lam))  # n by H
    F = 1 - S
    est = F.mean(axis=0)
    SR = S * ra[:, None]
    # d mean F / d dLambda_k = mean(S ra) for jumps up to the horizon; d / d beta = mean(S ra Lambda x_a)
    W = np.where(np.arange(f.u.size)[None, :] < kk[:, None], SR.mean(axis=0)[:, None], 0.0)
    Db = f.design_sums(a, SR * Lam, Z) / n
    return est, (F - est) / n + f.functional_iid(W, Db)


# --- g-formula for cause-specific Cox ---------------------------------------------------
#
# For a covariate pattern i with hazard multipliers a_ci of the causes c on the grid jumps lam_c,k,
# S_ik = prod_{j<k} (1 - sum_c a_ci lam_c,j) (the product limit before t_k), and the CIF of the cause
# (index 1 here) at a horizon with kk grid points is F_i = a_1i sum_{k<kk} S_ik lam_1k. Everything the
# influence function needs from the P by K matrix S is a product of S with a few vectors:
# * F for all horizons: S @ M with M_kh = lam_1k 1{k < kk_h};
# * the derivative of F_i by dlam_c,k (riskRegression's, S(t-) taken as exp(-Lambda(t-))) is
#   [c = 1] a_1i S_ik - a_ci (F_i - cf_ik) for k < kk (0 beyond), cf_ik = a_1i sum_{j<=k} S_ij lam_1j;
#   summed over persons (counts w_i) it needs only T_0 = (w a_1)' S and T_c = (w a_1 a_c)' S, since
#   sum_i w_i a_ci cf_ik = cumsum_k(lam_1k T_ck);
# * its sum against lam_c (the derivative by the log multiplier, per pattern) needs
#   sum_{k<kk} cf_ik lam_ck = a_1i sum_j S_ij lam_1j R_ch(j), R_ch(j) = sum_{k=j}^{kk-1} lam_ck:
#   S @ N with one column per horizon and cause.
# So one pass over S, built block by block, gives everything: S @ [M | N] and [T_0; T_c]. S itself is the
# exact cumulative product (a series for log S in powers of the jumps, one matrix product and an exp,
# was 1.7-2x slower: numpy's float64 exp is not vectorised without AVX-512).


def _survival_before(A: np.ndarray, lamg: np.ndarray, work: np.ndarray, out: np.ndarray) -> np.ndarray:
    """S(t_k-) for B patterns (B by K, into ``out``): the product limit over all causes' jumps before t_k."""
    B, K = A.shape[0], lamg.shape[1]
    # 1 - sum_c a_c lam_c,k as one product: [1, -a] @ [1; lam]
    jumps = np.matmul(np.column_stack([np.ones(B), -A]), np.vstack([np.ones(K), lamg]), out=work[:B, :K])
    Sm = out[:B, :K]
    Sm[:, 0] = 1.0
    np.cumprod(jumps[:, :-1], axis=1, out=Sm[:, 1:])
    return Sm


def _csc_block(A: np.ndarray, lamg: np.ndarray, cause: int, kk: np.ndarray) -> np.ndarray:
    """CIF of ``cause`` at the horizons (B by len(kk), ``kk`` grid points each) for hazard multipliers A (B by C)."""
    K = lamg.shape[1]
    M = lamg[cause][:, None] * (np.arange(K)[:, None] < kk[None, :])
    F = np.empty((A.shape[0], kk.size))
    step = max(1, _BLOCK_CELLS // max(K, 1))
    work, out = np.empty((min(step, A.shape[0]), K)), np.empty((min(step, A.shape[0]), K))
    with single_blas_thread():
        for s in range(0, A.shape[0], step):
            sl = slice(s, s + step)
            F[sl] = A[sl, [cause]] * (_survival_before(A[sl], lamg, work, out) @ M)
    return F


def _patterns(Z: np.ndarray):
    """Distinct covariate rows, each person's row among them and their counts (persons alike share the pass)."""
    n = Z.shape[0]
    if Z.shape[1] == 0:
        return Z[:1], np.zeros(n, dtype=np.int64), np.array([n])
    order = np.lexsort(Z.T[::-1])  # rows sorted lexicographically (as np.unique(axis=0), much faster)
    Zs = Z[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.any(Zs[1:] != Zs[:-1], axis=1, out=new[1:])
    grp = np.cumsum(new) - 1
    inv = np.empty(n, dtype=np.int64)
    inv[order] = grp
    return Zs[new], inv, np.bincount(grp)


def _grid(fits: list[_CauseFit], tmax: float):
    g = np.unique(np.concatenate([f.u[f.u <= tmax] for f in fits]))
    lamg = np.zeros((len(fits), g.size))
    for c, f in enumerate(fits):
        inside = f.u <= tmax
        lamg[c, np.searchsorted(g, f.u[inside])] = f.lam[inside]
    return g, lamg


def _csc_pass(A: np.ndarray, cnt: np.ndarray, lamg: np.ndarray, cause: int, kk: np.ndarray, with_iid: bool):
    """One pass over the patterns in blocks: F (P by H), Q (P by H by C: sum_{k<kk} cf_ik lam_ck), T ((C+1) by K)."""
    (P, C), K, H = A.shape, lamg.shape[1], kk.size
    below = np.arange(K)[:, None] < kk[None, :]  # K by H
    lam1 = lamg[cause]
    cumL = np.zeros((C, K + 1))
    np.cumsum(lamg, axis=1, out=cumL[:, 1:])
    R = (cumL[:, kk][:, None, :] - cumL[:, :K, None]) * below[None]  # C by K by H
    Mx = np.concatenate([lam1[:, None] * below, (lam1[None, :, None] * R).transpose(1, 2, 0).reshape(K, H * C)],
                        axis=1) if with_iid else lam1[:, None] * below
    F = np.empty((P, H))
    Q = np.empty((P if with_iid else 0, H, C))
    T = np.zeros((C + 1, K))
    step = max(1, _BLOCK_CELLS // max(K, 1))
    work, out = np.empty((min(step, P), K)), np.empty((min(step, P), K))
    for s in range(0, P, step):
        sl = slice(s, s + step)
        a1 = A[sl, cause]
        Sm = _survival_before(A[sl], lamg, work, out)
        Y = Sm @ Mx
        F[sl] = a1[:, None] * Y[:, :H]
        if with_iid:
            Q[sl] = a1[:, None, None] * Y[:, H:].reshape(-1, H, C)
            wa = cnt[sl] * a1
            T += np.column_stack([wa, wa[:, None] * A[sl]]).T @ Sm
    return F, Q, T, cumL


def _csc_tier(fits: list[_CauseFit], Z: np.ndarray, a: int, taus: np.ndarray, cause: int, with_iid: bool = True,
              pats=None, grid=None):
    """Standardised CIF of ``cause`` with tier a at each tau, and its iid (n by len(taus))."""
    n = Z.shape[0]
    g, lamg = _grid(fits, float(taus.max())) if grid is None else grid
    kk = np.searchsorted(g, taus, "right")
    pat, inv, cnt = _patterns(Z) if pats is None else pats
    A = np.column_stack([np.exp(f.lp(a, pat)) for f in fits])
    Fp, Q, T, cumL = _csc_pass(A, cnt, lamg, cause, kk, with_iid)
    Fi = Fp[inv]
    est = Fi.mean(axis=0)
    if not with_iid:
        return est, None
    iid = (Fi - est) / n
    below = np.arange(g.size)[None, :] < kk[:, None]  # H by K
    s = (cnt[:, None] * A).T @ Fp  # C by H: sum over persons of a_c F
    cT = np.cumsum(lamg[cause] * T[1:], axis=1)  # C by K: sum over persons of a_c cf_k
    for c, f in enumerate(fits):
        Wg = (cT[c][None, :] - s[c][:, None]) * below
        dlog = -A[:, [c]] * (Fp * cumL[c, kk][None, :] - Q[:, :, c])  # d F / d log a_c per pattern (P by H)
        if c == cause:
            Wg += T[0][None, :] * below
            dlog += Fp
        Wc = np.zeros((taus.size, f.u.size))
        inside = f.u <= taus.max()
        Wc[:, inside] = Wg[:, np.searchsorted(g, f.u[inside])] / n
        iid += f.functional_iid(Wc, f.design_sums(a, cnt[:, None] * dlog, pat) / n)
    return est, iid


# --- front ends -------------------------------------------------------------------------


@dataclass
class _Setup:
    data: _Data
    model: str
    cause: int
    causes: list[int]
    outcome: str
    taus: np.ndarray
    fits: list[_CauseFit]
    shared: Any = None  # cause-specific: (patterns, grid), found at the first tier


def _resolve_columns(df, outcome, duration, event, fn, keep_columns=()):
    """(table, duration, event, outcome label): a cohort outcome's columns or the explicit ones.

    For a cohort outcome the table comes back without its prevalent persons and with only the outcome's
    columns and ``keep_columns`` (those present): copying the whole cohort table costs more than the fit.
    """
    df = require_dataframe(df, fn, "df", allow_empty=False)
    if (duration is None) != (event is None):
        raise NeutrostatsError(f"{fn}: give both duration= and event= (explicit columns), or neither and a cohort "
                               f"outcome name; found duration={duration!r}, event={event!r}")
    if duration is not None:
        return df, duration, event, str(event if outcome is None else outcome)
    if outcome is None:
        raise NeutrostatsError(f"{fn}: name the outcome ('death' or a cohort outcome such as "
                               "'hematologic_malignancy'), or pass duration= and event= columns")
    if outcome == "death":
        return df, "death_time", "death", "death"
    need = [f"{outcome}_prevalent", f"{outcome}_time", f"{outcome}_status"]
    if any(c not in df.columns for c in need):
        raise NeutrostatsError(f"{fn}: outcome {outcome!r} needs the cohort columns {need} (build_cohort's table), "
                               "found only some or none of them; pass 'death', a cohort outcome, or duration= and "
                               "event= columns")
    keep = ~df[need[0]].to_numpy(dtype=bool, na_value=False)  # prevalent persons are not at risk of a first diagnosis
    cols = [c for c in dict.fromkeys([*need[1:], *keep_columns]) if c in df.columns]
    return df.loc[keep, cols], need[1], need[2], outcome


def _horizons(horizon, time, fn) -> np.ndarray:
    h = np.atleast_1d(np.asarray(horizon, dtype=object))
    try:
        taus = h.astype(float)
    except (TypeError, ValueError):
        raise NeutrostatsError(f"{fn}: horizon must be a positive number (or a list of them), found {horizon!r}") from None
    if taus.size == 0 or not np.all(np.isfinite(taus)) or np.any(taus <= 0):
        raise NeutrostatsError(f"{fn}: horizon must be positive finite numbers (years), found {horizon!r}")
    if np.any(taus > time.max()):
        raise NeutrostatsError(f"{fn}: horizon {taus.max()} is beyond the end of follow-up ({time.max():g}, the "
                               "longest duration): nothing is known there; choose horizon <= the longest follow-up")
    return taus


def _setup(df, outcome, horizon, by, adjust, duration, event, model, cause, reference, ties, categorical, fn):
    require_choice(ties, _TIES, fn, "ties")
    if model is not None:
        require_choice(model, _MODELS, fn, "model")
    keep = [by, *([] if adjust is None else [adjust] if isinstance(adjust, str) else list(adjust))]
    df, duration, event, label = _resolve_columns(df, outcome, duration, event, fn, keep)
    d = _data(df, duration, event, by, adjust, reference, categorical, fn)
    codes = sorted(int(c) for c in np.unique(d.status) if c > 0)
    if not codes:
        raise NeutrostatsError(f"{fn}: no events in {event!r} among {d.time.size} complete rows; nothing to model")
    if model is None:
        model = "cox" if codes == [1] else "cause_specific"
    if model == "cox" and codes != [1]:
        raise NeutrostatsError(f"{fn}: {event!r} holds competing events (codes {codes}); an all-cause Cox model would "
                               "treat them as censored. Use model='cause_specific' (or code the event 0/1)")
    if cause not in codes:
        raise NeutrostatsError(f"{fn}: cause {cause!r} does not occur in {event!r} (codes found {codes}); pass cause=")
    taus = _horizons(horizon, d.time, fn)
    causes = [1] if model == "cox" else codes
    with single_blas_thread():  # see _estimates
        fits = [_fit_cause(d, d.status == c, ties, fn, f"events of code {c}") for c in causes]
    return _Setup(d, model, causes.index(cause), causes, label, taus, fits)


def _estimates(st: _Setup, a: int, with_iid: bool = True):
    # One BLAS thread, here as for the fits: every product is thin (n or patterns by a few columns, or a
    # cache-sized block), too small to share; on the busy 2-core machine threads made the cause-specific
    # pass 5-7x and the 373,820-person Cox fit 2x slower.
    with single_blas_thread():
        if st.model == "cox":
            return _cox_tier(st.fits[0], st.data.Z, a, st.taus)
        if st.shared is None:  # the patterns and the grid are the same for every tier: found once
            st.shared = (_patterns(st.data.Z), _grid(st.fits, float(st.taus.max())))
        pats, grid = st.shared
        return _csc_tier(st.fits, st.data.Z, a, st.taus, st.cause, with_iid, pats, grid)


def _wald(est, se, z, lo, hi):
    with np.errstate(invalid="ignore"):
        return np.clip(est - z * se, lo, hi), np.clip(est + z * se, lo, hi)


def _risk_rows(st: _Setup, level: float) -> pd.DataFrame:
    d = st.data
    z = norm.ppf(0.5 + level / 2)
    ok = [j for j in range(len(d.levels)) if all(np.isfinite(f.tier_coef[j]) for f in st.fits)]
    res = {j: _estimates(st, j) for j in ok}
    m0, i0 = res[d.ref]
    rows = []
    nan = np.full(st.taus.size, np.nan)
    for contrast in ("risk", "difference", "ratio"):
        for j, lev in enumerate(d.levels):
            if j not in res:
                est = se = p = nan
            elif contrast == "risk":
                est, se, p = res[j][0], np.sqrt((res[j][1] ** 2).sum(axis=0)), nan
            elif contrast == "difference":
                est = res[j][0] - m0
                se = np.sqrt(((res[j][1] - i0) ** 2).sum(axis=0))
            else:
                est = res[j][0] / m0
                se = np.sqrt(((res[j][1] / m0 - res[j][0] * i0 / m0 ** 2) ** 2).sum(axis=0))
            ref_row = contrast != "risk" and j == d.ref
            if contrast != "risk" and j in res:
                null = 0.0 if contrast == "difference" else 1.0
                with np.errstate(invalid="ignore", divide="ignore"):
                    p = 2 * norm.sf(np.abs((est - null) / se))
                if ref_row:
                    est, se, p = np.full(st.taus.size, null), nan, nan
            lo, hi = {"risk": (0, 1), "difference": (-1, 1), "ratio": (0, np.inf)}[contrast]
            cl, ch = _wald(est, se, z, lo, hi)
            for h, tau in enumerate(st.taus):
                rows.append((st.outcome, lev, contrast, float(tau), float(est[h]), float(se[h]), float(cl[h]),
                             float(ch[h]), float(p[h]), bool(ref_row)))
    out = pd.DataFrame(rows, columns=STANDARDIZED_COLUMNS[:-1])
    # contrast, then horizon, then tier order
    key = out["contrast"].map({"risk": 0, "difference": 1, "ratio": 2}) * (st.taus.size + 1)
    key = key + out["time"].map({float(t): i for i, t in enumerate(st.taus)})
    return out.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def _warn_not_estimable(st: _Setup, fn: str) -> None:
    bad = [lev for j, lev in enumerate(st.data.levels) if not all(np.isfinite(f.tier_coef[j]) for f in st.fits)]
    if bad:
        warnings.warn(f"{fn}: tier(s) {bad} have no persons or no events of a modelled cause, so their hazard ratio "
                      "has no finite estimate and their standardised risk is not estimable (NaN rows); their "
                      "persons stay in the average over the cohort. Merge sparse tiers.",
                      InfiniteHazardRatioWarning, stacklevel=3)


def standardized_risk(
    df: pd.DataFrame,
    outcome: str | None = None,
    horizon: Any = 4.0,
    by: str = "tier",
    *,
    adjust: list[str] | None = None,
    duration: str | None = None,
    event: str | None = None,
    model: str | None = None,
    cause: int = 1,
    reference: Any = None,
    ties: str = "efron",
    conf_level: float = 0.95,
    categorical: list[str] | None = None,
) -> pd.DataFrame:
    """Standardised (g-formula) risks by tier at a horizon, with differences and ratios against the reference tier.

    Every person's risk at ``horizon`` is predicted from a Cox model with the
    tier and ``adjust`` covariates, once with the tier set to each tier in
    turn, and averaged over all persons: the risk the whole cohort would have
    had in that tier, standardised to the cohort's own covariate mix.
    Differences and ratios compare each tier's standardised risk with the
    reference tier's. Standard errors are the influence-function ones of
    ``riskRegression::ate`` (see the module notes for where they differ).

    Parameters
    ----------
    df : pandas.DataFrame
        ``build_cohort(...).table`` with ``outcome``, or any table with
        ``duration`` and ``event`` columns. Rows missing a used column are
        left out (complete cases), counted in ``attrs["n_missing"]`` and
        announced by a ``DataQualityWarning``.
    outcome : str, optional
        ``"death"`` (``death_time``, ``death``: all-cause Cox) or a cohort
        outcome (``<outcome>_time``, ``<outcome>_status`` with death
        competing, prevalent persons left out, as
        :meth:`~neutrostats.Cohort.time_to_event`). With ``duration`` and
        ``event`` it only labels the ``outcome`` column.
    horizon : float or list of float, default 4.0
        Time(s) at which the risk is read, in the units of the duration
        (years in a cohort); at most the longest follow-up.
    by : str, default "tier"
        Ordered Categorical column of tiers (mildest first).
    adjust : list of str, optional
        Covariates of the model(s), entering as in
        :func:`~neutrostats.cox_hazard_ratios` (numeric linear, boolean,
        categorical as indicators).
    duration, event : str, optional
        Explicit columns instead of a cohort outcome: ``event`` 0/1 (or
        boolean) for all-cause Cox, or codes 0 = censored, 1, 2, ... =
        causes for cause-specific models.
    model : {"cox", "cause_specific"}, optional
        Default: ``"cox"`` when the only event code is 1, else
        ``"cause_specific"`` (one Cox model per cause, the others
        censored, the cumulative incidence of ``cause`` from all of them).
    cause : int, default 1
        The event code whose risk is standardised.
    reference : tier label or mapping, optional
        Reference tier (default the first category); a mapping also sets
        covariates' reference levels, as in ``cox_hazard_ratios``.
    ties : {"efron", "breslow"}, default "efron"
    conf_level : float, default 0.95
    categorical : list of str, optional
        Columns of ``adjust`` to enter as factors whatever their values.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`STANDARDIZED_COLUMNS`, one row per contrast, horizon
        and tier (tiers in their order, ``group`` Categorical):

        ``outcome``
            The outcome's name (or ``event``).
        ``group``
            The tier.
        ``contrast``
            ``"risk"`` (the standardised risk), ``"difference"`` (risk
            minus the reference tier's) or ``"ratio"`` (risk over it).
        ``time``
            The horizon.
        ``estimate``, ``std_error``
            The estimate and its influence-function standard error.
        ``conf_low``, ``conf_high``
            Wald interval at ``conf_level`` on the natural scale, cut to
            [0, 1] (risks), [-1, 1] (differences), [0, inf) (ratios), as
            ``confint.ate``'s default (``transform = "none"``).
        ``p_value``
            Test of difference 0 / ratio 1 (NaN on risk rows).
        ``is_reference``
            True on the reference tier's difference and ratio rows
            (estimate 0 and 1, no interval).
        ``method``
            ``"gformula_cox"`` or ``"gformula_cause_specific_cox"``.

        A tier without persons or events of a modelled cause has NaN rows
        (with an ``InfiniteHazardRatioWarning``). ``attrs["n"]``: persons
        used; ``attrs["n_missing"]``, ``attrs["missing"]`` as usual.

    Raises
    ------
    NeutrostatsError
        For a table without rows, unknown or half-given columns, a tier
        column that is not Categorical, an unknown reference, bad durations
        or event codes, competing events with ``model="cox"``, a cause
        that does not occur, a horizon that is not positive or lies beyond
        follow-up, a reference tier without events, constant or collinear
        covariates.

    Warns
    -----
    DataQualityWarning
        Rows left out for missing values.
    InfiniteHazardRatioWarning
        A tier without events of a modelled cause (not estimable).

    See Also
    --------
    standardized_curves : the same over a time grid, for plotting.
    cause_specific_cox : the cause-specific hazard ratios.

    References
    ----------
    .. [1] Robins J. A new approach to causal inference in mortality studies
       with a sustained exposure period. Math Model 1986;7:1393-1512.
    .. [2] Ozenne BMH, Scheike TH, Staerk L, Gerds TA. On the estimation of
       average treatment effects with right-censored time to event outcome
       and competing risks. Biom J 2020;62:751-763.
    .. [3] Benichou J, Gail MH. Estimates of absolute cause-specific risk in
       cohort studies. Biometrics 1990;46:813-826.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({
    ...     "time": [5, 6, 6, 2, 4, 4, 3, 7, 8, 1, 9, 3],
    ...     "died": [1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1],
    ...     "age": [61, 70, 55, 80, 66, 59, 72, 68, 50, 77, 63, 74],
    ...     "tier": pd.Categorical(["normal"] * 6 + ["mild"] * 6, categories=["normal", "mild"], ordered=True)})
    >>> r = standardized_risk(t, horizon=4, adjust=["age"], duration="time", event="died")
    >>> r[["group", "contrast", "estimate", "is_reference"]].round(4)  # R ate: 0.4812192 0.4221518 -0.05906732 0.8772549
        group    contrast  estimate  is_reference
    0  normal        risk    0.4812         False
    1    mild        risk    0.4222         False
    2  normal  difference    0.0000          True
    3    mild  difference   -0.0591         False
    4  normal       ratio    1.0000          True
    5    mild       ratio    0.8773         False
    """
    fn = "standardized_risk"
    level = require_conf_level(conf_level, fn)
    st = _setup(df, outcome, horizon, by, adjust, duration, event, model, cause, reference, ties, categorical, fn)
    _warn_not_estimable(st, fn)
    out = _risk_rows(st, level)
    out["group"] = pd.Categorical(out["group"], categories=st.data.levels, ordered=True)
    out["method"] = "gformula_cox" if st.model == "cox" else "gformula_cause_specific_cox"
    out = out.astype({"outcome": object, "contrast": object})
    out.attrs["n"] = int(st.data.time.size)
    out.attrs["n_missing"] = int(st.data.n_missing)
    out.attrs["missing"] = dict(st.data.missing)
    return out


# --- cause-specific Cox -----------------------------------------------------------------


@dataclass(frozen=True)
class CauseSpecificCox:
    """Result of :func:`cause_specific_cox`: one Cox model per cause.

    Attributes
    ----------
    table : pandas.DataFrame
        ``outcome`` (the cause's event code) then the columns of
        :func:`~neutrostats.cox_hazard_ratios`, the causes one after the
        other.
    causes : tuple of int
        The event codes modelled, in order.
    """

    table: pd.DataFrame
    causes: tuple
    _setup: Any
    _design: Any

    def tidy(self) -> pd.DataFrame:
        """The hazard-ratio table (a copy)."""
        return self.table.copy()

    def predict(self, newdata: pd.DataFrame, times: Any, cause: int = 1) -> pd.DataFrame:
        """Cumulative incidence of ``cause`` at ``times`` for covariate profiles (``riskRegression::predictRisk``).

        ``newdata`` holds the tier and ``adjust`` columns, one profile per
        row; returns ``profile`` (newdata's index), ``group`` (the profile's
        tier, as :func:`~neutrostats.stats.finegray.predict_cumulative_incidence`),
        ``outcome`` (the cause), ``time``, ``estimate``, one row per profile
        and time.
        """
        fn = "CauseSpecificCox.predict"
        st: _Setup = self._setup
        if cause not in self.causes:
            raise NeutrostatsError(f"{fn}: cause {cause!r} is not modelled; causes are {list(self.causes)}")
        taus = _horizons(times, st.data.time, fn)
        Zn, tn = self._design(newdata, fn)
        fits, k = st.fits, self.causes.index(cause)
        g, lamg = _grid(fits, float(taus.max()))
        kk = np.searchsorted(g, taus, "right")
        A = np.column_stack([np.exp(f.tier_coef[tn] + Zn @ f.zcoef - f.shift) for f in fits])
        F = _csc_block(A, lamg, k, kk)
        group = np.asarray(st.data.levels, dtype=object)[tn]
        return pd.DataFrame({"profile": np.repeat(newdata.index.to_numpy(), taus.size),
                             "group": np.repeat(group, taus.size), "outcome": cause,
                             "time": np.tile(taus, len(newdata)), "estimate": F.ravel()})


def _profile_design(df, tier, adjust, reference, categorical, levels, fn):
    """A function mapping profiles to (covariate matrix, tier codes) coded as the fitted design."""
    adjust = [] if adjust is None else ([adjust] if isinstance(adjust, str) else list(adjust))

    def design(newdata, fn2):
        newdata = require_dataframe(newdata, fn2, "newdata", allow_empty=False)
        missing = [c for c in [tier, *adjust] if c not in newdata.columns]
        if missing:
            raise NeutrostatsError(f"{fn2}: newdata lacks the model's columns {missing}; give one profile per row "
                                   f"with {[tier, *adjust]}")
        tiers = pd.Categorical(newdata[tier].astype(object), categories=levels)
        if np.any(tiers.codes < 0):
            raise NeutrostatsError(f"{fn2}: newdata[{tier!r}] holds values that are not tiers; tiers are {levels}")
        both = pd.concat([df[adjust], newdata[adjust]], ignore_index=True)
        for c in adjust:
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                both[c] = pd.Categorical(both[c].astype(object), categories=df[c].cat.categories)
        kinds = covariate_kinds(df, adjust, fn, categorical=categorical)
        _, levels_ref = split_reference(reference, fn, group=tier, covariates=adjust, kinds=kinds)
        cols, _, _ = _covariate_terms(both, adjust, kinds, levels_ref, fn, 0)
        Z = np.column_stack(cols)[len(df):] if cols else np.empty((len(newdata), 0))
        return Z, tiers.codes.astype(np.int64)

    return design


def cause_specific_cox(
    df: pd.DataFrame,
    duration: str,
    event: str,
    tier: str = "tier",
    *,
    adjust: list[str] | None = None,
    causes: list[int] | None = None,
    reference: Any = None,
    ties: str = "efron",
    conf_level: float = 0.95,
    categorical: list[str] | None = None,
) -> CauseSpecificCox:
    """One Cox model per cause, the other causes censored (``riskRegression::CSC``), with predicted cumulative incidence.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per person (complete cases over the used columns).
    duration : str
        Time to the first event or censoring.
    event : str
        Event codes: 0 = censored, 1, 2, ... = causes.
    tier : str, default "tier"
        Ordered Categorical of tiers (first = reference unless ``reference``).
    adjust, reference, ties, conf_level, categorical
        As in :func:`~neutrostats.cox_hazard_ratios`.
    causes : list of int, optional
        Causes to model; default every code > 0 found. The cumulative
        incidence needs them all.

    Returns
    -------
    CauseSpecificCox
        ``.table``: ``outcome`` (the cause) and the columns of
        ``cox_hazard_ratios`` per cause; ``.predict(newdata, times,
        cause)``: the cumulative incidence of a cause for covariate profiles
        (the product-limit overall survival over all causes, as
        ``predictRisk`` of a ``CSC`` fit).

    Raises
    ------
    NeutrostatsError
        As :func:`standardized_risk`, and for a cause in ``causes`` that
        does not occur.

    References
    ----------
    .. [1] Benichou J, Gail MH. Estimates of absolute cause-specific risk in
       cohort studies. Biometrics 1990;46:813-826.
    .. [2] Putter H, Fiocco M, Geskus RB. Tutorial in biostatistics:
       competing risks and multi-state models. Stat Med 2007;26:2389-2430.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"time": [5, 6, 6, 2, 4, 4, 3, 7, 8, 1, 9, 3, 2, 5],
    ...                   "status": [1, 0, 2, 1, 2, 0, 1, 2, 0, 1, 2, 1, 2, 0],
    ...                   "tier": pd.Categorical(["normal"] * 7 + ["mild"] * 7, categories=["normal", "mild"])})
    >>> m = cause_specific_cox(t, "time", "status")
    >>> m.table[["outcome", "term", "estimate"]].round(4)
       outcome    term  estimate
    0        1  normal    1.0000
    1        1    mild    0.6988
    2        2  normal    1.0000
    3        2    mild    0.4892
    >>> m.predict(t.iloc[[0, 7]][["tier"]], times=[4]).round(4)
       profile   group  outcome  time  estimate
    0        0  normal        1   4.0    0.3299
    1        7    mild        1   4.0    0.2467
    """
    fn = "cause_specific_cox"
    level = require_conf_level(conf_level, fn)
    d = _data(df, duration, event, tier, adjust, reference, categorical, fn)
    found = sorted(int(c) for c in np.unique(d.status) if c > 0)
    use = found if causes is None else [int(c) for c in causes]
    if not use or any(c not in found for c in use):
        raise NeutrostatsError(f"{fn}: causes {causes!r} must be event codes found in {event!r} ({found})")
    with single_blas_thread():
        fits = [_fit_cause(d, d.status == c, ties, fn, f"events of code {c}") for c in use]
    st = _Setup(d, "cause_specific", 0, use, str(event), np.array([d.time.max()]), fits)
    tables = []
    base = require_dataframe(df, fn, "df", allow_empty=False)
    for c in use:
        col = f"_cause_{c}_event"
        ev = base[event].where(base[event].isna(), base[event] == c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # announced once, by the checks above
            tab = cox_hazard_ratios(base.assign(**{col: ev}), duration, col, tier, reference=reference,
                                    adjust=adjust, ties=ties, conf_level=level, categorical=categorical)
        tables.append(tab.assign(outcome=c)[["outcome", *COX_COLUMNS]])
    table = pd.concat(tables, ignore_index=True)
    table.attrs["n_missing"] = int(d.n_missing)
    table.attrs["missing"] = dict(d.missing)
    design = _profile_design(base, tier, adjust, reference, categorical, d.levels, fn)
    return CauseSpecificCox(table, tuple(use), st, design)


def standardized_curves(
    df: pd.DataFrame,
    outcome: str | None = None,
    times: Any = None,
    by: str = "tier",
    *,
    adjust: list[str] | None = None,
    duration: str | None = None,
    event: str | None = None,
    model: str | None = None,
    cause: int = 1,
    reference: Any = None,
    ties: str = "efron",
    conf_level: float = 0.95,
    categorical: list[str] | None = None,
) -> pd.DataFrame:
    """Standardised (adjusted) cumulative-incidence curves by tier on a time grid, ready to plot.

    The g-formula risk of :func:`standardized_risk` at every time of
    ``times``; for all-cause death the curve is 1 - the adjusted survival.
    The table has the columns :func:`~neutrostats.plot_cumulative_incidence`
    reads (draw it with ``risk_table=False``: the curves are model-based).

    Parameters
    ----------
    times : list of float, optional
        The grid; default 0 and 50 equal steps up to the longest follow-up.
    df, outcome, by, adjust, duration, event, model, cause, reference, ties, conf_level, categorical
        As in :func:`standardized_risk`.

    Returns
    -------
    pandas.DataFrame
        ``outcome``, ``group`` (Categorical, tier order), ``time``,
        ``n_risk`` (persons of the tier still followed at ``time``, as
        observed), ``estimate`` (standardised risk), ``std_error``,
        ``conf_low``, ``conf_high`` (Wald, cut to [0, 1]), ``method``; a row
        at time 0 with estimate 0 starts each curve.

    Raises
    ------
    NeutrostatsError
        As :func:`standardized_risk`.

    Examples
    --------
    >>> import pandas as pd
    >>> from neutrostats.plotting import plot_cumulative_incidence
    >>> t = pd.DataFrame({
    ...     "time": [5, 6, 6, 2, 4, 4, 3, 7, 8, 1, 9, 3],
    ...     "died": [1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1],
    ...     "age": [61, 70, 55, 80, 66, 59, 72, 68, 50, 77, 63, 74],
    ...     "tier": pd.Categorical(["normal"] * 6 + ["mild"] * 6, categories=["normal", "mild"], ordered=True)})
    >>> c = standardized_curves(t, times=[0, 2, 4, 6], adjust=["age"], duration="time", event="died")
    >>> c[c["time"] == 4][["group", "estimate"]].round(4).to_numpy().tolist()
    [['normal', 0.4812], ['mild', 0.4222]]
    >>> [line.get_label() for line in plot_cumulative_incidence(c, risk_table=False).get_lines()]
    ['normal', 'mild']
    """
    fn = "standardized_curves"
    level = require_conf_level(conf_level, fn)
    probe = _resolve_columns(df, outcome, duration, event, fn)
    if times is None:
        tt = pd.to_numeric(probe[0][probe[1]], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        times = np.linspace(0, np.nanmax(tt), 51)
    grid = np.unique(np.asarray(times, dtype=float))
    positive = grid[grid > 0]
    st = _setup(df, outcome, positive, by, adjust, duration, event, model, cause, reference, ties, categorical, fn)
    _warn_not_estimable(st, fn)
    z = norm.ppf(0.5 + level / 2)
    d = st.data
    parts = []
    for j, lev in enumerate(d.levels):
        est, se = np.full(positive.size, np.nan), np.full(positive.size, np.nan)
        if all(np.isfinite(f.tier_coef[j]) for f in st.fits):
            est, iid = _estimates(st, j)  # every time of the grid in one pass
            se = np.sqrt((iid ** 2).sum(axis=0))
        lo, hi = _wald(est, se, z, 0, 1)
        in_tier = np.sort(d.time[d.tier == j])
        n_risk = in_tier.size - np.searchsorted(in_tier, positive, "left")
        parts.append(pd.DataFrame({"group": lev, "time": np.r_[0.0, positive], "n_risk": np.r_[in_tier.size, n_risk],
                                   "estimate": np.r_[0.0, est], "std_error": np.r_[0.0, se],
                                   "conf_low": np.r_[0.0, lo], "conf_high": np.r_[0.0, hi]}))
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "outcome", st.outcome)
    out["group"] = pd.Categorical(out["group"], categories=d.levels, ordered=True)
    out["method"] = "gformula_cox" if st.model == "cox" else "gformula_cause_specific_cox"
    out = out.astype({"outcome": object, "n_risk": np.int64})
    out.attrs["n_missing"] = int(d.n_missing)
    out.attrs["missing"] = dict(d.missing)
    return out
