"""Firth's penalised-likelihood logistic regression (neutrostats.stats.firth).

The checks here need no R: closed forms (Firth in a saturated 2x2 model is the
odds ratio with 0.5 added to every cell), the defining equations of the
estimate, the profile limits and the p-values re-evaluated with an independent
penalised log-likelihood written below and maximised with scipy's BFGS, and
invariances.  The comparison with R's logistf(pl=TRUE) lives in the fixture
tests under tests/reference/.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from neutrostats.stats import firth as _firth
from neutrostats.stats.firth import FirthConvergenceWarning, firth_logit
from neutrostats.errors import NeutrostatsError


# --------------------------------------------------------------------------
# An independent, deliberately naive penalised log-likelihood
# --------------------------------------------------------------------------


def naive_pll(beta, X, y, w=None):
    """l(beta) + 1/2 log det(X' W X), straight from the definition."""
    w = np.ones(len(y)) if w is None else w
    eta = X @ beta
    p = 1.0 / (1.0 + np.exp(-eta))
    loglik = np.sum(w * (y * np.log(p) + (1 - y) * np.log1p(-p)))
    info = X.T @ (X * (w * p * (1 - p))[:, None])
    sign, logdet = np.linalg.slogdet(info)
    assert sign > 0
    return loglik + 0.5 * logdet


def naive_profile(X, y, j, value, start):
    """max over beta_-j of naive_pll with beta_j = value (BFGS, tight)."""
    others = [i for i in range(X.shape[1]) if i != j]

    def neg(b_others):
        beta = np.empty(X.shape[1])
        beta[j] = value
        beta[others] = b_others
        return -naive_pll(beta, X, y)

    res = optimize.minimize(neg, start[others], method="BFGS", options={"gtol": 1e-10, "maxiter": 10_000})
    return -res.fun


def two_by_two(a, b, c, d):
    """Rows (exposed, event) with counts: exposed a events / b non-events, unexposed c / d."""
    X = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    y = np.array([1, 0, 1, 0])
    w = np.array([a, b, c, d], dtype=float)
    return X, y, w


def sparse_tiers(seed=3, n=250):
    """Three tiers and a continuous covariate; the smallest tier has no events."""
    rng = np.random.default_rng(seed)
    tier = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    age = rng.normal(size=n)
    eta = -0.8 + 0.9 * (tier == 1) + 0.5 * age
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    y[tier == 2] = 0
    X = np.column_stack([np.ones(n), tier == 1, tier == 2, age]).astype(float)
    return X, y


# --------------------------------------------------------------------------
# 1. Closed form: saturated 2x2 model = Haldane-corrected odds ratio
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cells",
    [(12, 30, 25, 40), (0, 10, 5, 15), (3, 7, 0, 20), (0, 5, 0, 7), (8, 0, 2, 9), (1, 1, 1, 1)],
)
def test_two_by_two_equals_haldane(cells):
    a, b, c, d = cells
    X, y, w = two_by_two(a, b, c, d)
    fit = firth_logit(X, y, weights=w)
    log_or = np.log((a + 0.5) * (d + 0.5) / ((b + 0.5) * (c + 0.5)))
    assert fit.converged
    assert fit.params[1] == pytest.approx(log_or, abs=1e-8)
    assert fit.params[0] == pytest.approx(np.log((c + 0.5) / (d + 0.5)), abs=1e-8)
    # Fitted probabilities (y + 1/2) / (n + 1) per group give the information
    # of the saturated model: var(log OR) = 1/(n1 p1 q1) + 1/(n0 p0 q0).
    n1, n0 = a + b, c + d
    p1, p0 = (a + 0.5) / (n1 + 1), (c + 0.5) / (n0 + 1)
    se = np.sqrt(1 / (n1 * p1 * (1 - p1)) + 1 / (n0 * p0 * (1 - p0)))
    assert fit.bse[1] == pytest.approx(se, rel=1e-8)
    assert np.all(np.isfinite(fit.conf_low)) and np.all(np.isfinite(fit.conf_high))


# --------------------------------------------------------------------------
# 2. Separation
# --------------------------------------------------------------------------


def test_tier_without_events_is_finite_and_negative():
    X, y = sparse_tiers()
    assert y[X[:, 2] == 1].sum() == 0  # quasi-complete separation
    fit = firth_logit(X, y)
    assert fit.converged
    assert np.all(np.isfinite(fit.params)) and np.all(np.isfinite(fit.conf_low))
    assert np.all(np.isfinite(fit.conf_high))
    assert fit.params[2] < 0
    assert fit.conf_low[2] < fit.params[2] < fit.conf_high[2]
    # The profile interval is asymmetric: far longer towards -inf.
    assert fit.params[2] - fit.conf_low[2] > 1.5 * (fit.conf_high[2] - fit.params[2])


def test_complete_separation_on_continuous_covariate():
    x = np.array([-3.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0])
    y = (x > 0).astype(int)
    fit = firth_logit(np.column_stack([np.ones(8), x]), y)
    assert fit.converged
    assert np.all(np.isfinite([*fit.params, *fit.conf_low, *fit.conf_high, *fit.pvalues]))
    assert fit.params[1] > 0 and fit.conf_low[1] > 0
    # Symmetric design and outcome: the intercept is 0, its interval symmetric.
    assert fit.params[0] == pytest.approx(0.0, abs=1e-9)
    assert fit.conf_low[0] == pytest.approx(-fit.conf_high[0], abs=1e-8)


# --------------------------------------------------------------------------
# 3. Frequency weights equal the expanded data
# --------------------------------------------------------------------------


def _assert_same_fit(f1, f2, tol=1e-8):
    for name in ("params", "bse", "conf_low", "conf_high", "pvalues"):
        np.testing.assert_allclose(getattr(f1, name), getattr(f2, name), rtol=tol, atol=tol, err_msg=name)
    assert f1.loglik == pytest.approx(f2.loglik, rel=tol, abs=tol)


def _aggregated(seed=5):
    rng = np.random.default_rng(seed)
    patterns = np.array([[1, t1, t2, s] for t1, t2 in [(0, 0), (1, 0), (0, 1)] for s in (0, 1)], float)
    X = np.repeat(patterns, 2, axis=0)
    y = np.tile([1, 0], len(patterns))
    w = rng.integers(1, 60, size=len(y)).astype(float)
    w[5] = 0  # one pattern with no events in tier 2 / s = 1
    return X, y, w


def test_weights_equal_expanded_rows():
    X, y, w = _aggregated()
    reps = w.astype(int)
    expanded = firth_logit(np.repeat(X, reps, axis=0), np.repeat(y, reps))
    weighted = firth_logit(X, y, weights=w)
    assert expanded.nobs == weighted.nobs == w.sum()
    _assert_same_fit(expanded, weighted)


def test_internal_collapse_changes_nothing(monkeypatch):
    X, y, w = _aggregated(seed=6)
    reps = (w * 20).astype(int)  # > 2000 rows, so firth_logit collapses them
    Xe, ye = np.repeat(X, reps, axis=0), np.repeat(y, reps)
    assert len(ye) >= _firth._COLLAPSE_MIN_ROWS
    collapsed = firth_logit(Xe, ye, profile=[1, 2])
    monkeypatch.setattr(_firth, "_COLLAPSE_MIN_ROWS", 10**9)
    row_by_row = firth_logit(Xe, ye, profile=[1, 2])
    _assert_same_fit(collapsed, row_by_row)


def test_row_order_does_not_matter():
    X, y = sparse_tiers(seed=8, n=120)
    perm = np.random.default_rng(0).permutation(len(y))
    _assert_same_fit(firth_logit(X, y), firth_logit(X[perm], y[perm]))


# --------------------------------------------------------------------------
# 4. Defining equations of the estimate and the profile limits
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sparse_fit():
    X, y = sparse_tiers()
    return X, y, firth_logit(X, y)


def test_estimate_maximises_penalised_likelihood(sparse_fit):
    X, y, fit = sparse_fit
    assert fit.loglik == pytest.approx(naive_pll(fit.params, X, y), abs=1e-9)
    # Central-difference gradient of the naive l* vanishes at the estimate.
    eps = 1e-5
    grad = [
        (naive_pll(fit.params + eps * e, X, y) - naive_pll(fit.params - eps * e, X, y)) / (2 * eps)
        for e in np.eye(X.shape[1])
    ]
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)
    # Standard errors are those of the inverse information at the estimate.
    p = 1 / (1 + np.exp(-X @ fit.params))
    cov = np.linalg.inv(X.T @ (X * (p * (1 - p))[:, None]))
    np.testing.assert_allclose(fit.bse, np.sqrt(np.diag(cov)), rtol=1e-8)


def test_profile_limits_solve_the_defining_equation(sparse_fit):
    X, y, fit = sparse_fit
    crit = stats.chi2.ppf(0.95, 1)
    for j in range(X.shape[1]):
        assert fit.conf_low[j] < fit.params[j] < fit.conf_high[j]
        for limit in (fit.conf_low[j], fit.conf_high[j]):
            profiled = naive_profile(X, y, j, limit, fit.params)
            assert 2 * (fit.loglik - profiled) == pytest.approx(crit, abs=1e-6)


def test_profile_close_to_wald_on_large_balanced_data():
    rng = np.random.default_rng(11)
    n = 20_000
    x = rng.normal(size=n)
    g = rng.integers(0, 2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.2 + 0.3 * x - 0.4 * g)))).astype(int)
    X = np.column_stack([np.ones(n), x, g])
    prof = firth_logit(X, y)
    wald = firth_logit(X, y, profile=False)
    width = wald.conf_high - wald.conf_low
    assert np.all(np.abs(prof.conf_low - wald.conf_low) < 0.03 * width)
    assert np.all(np.abs(prof.conf_high - wald.conf_high) < 0.03 * width)


def test_wider_level_gives_wider_interval(sparse_fit):
    X, y, fit95 = sparse_fit
    fit99 = firth_logit(X, y, conf_level=0.99)
    assert fit99.conf_level == 0.99
    assert np.all(fit99.conf_low < fit95.conf_low) and np.all(fit99.conf_high > fit95.conf_high)


def test_profile_selection_and_wald_fallback(sparse_fit):
    X, y, fit = sparse_fit
    some = firth_logit(X, y, profile=[2])
    assert some.ci_method == ("wald", "wald", "profile", "wald")
    assert some.conf_low[2] == pytest.approx(fit.conf_low[2], abs=1e-9)
    none = firth_logit(X, y, profile=False)
    assert none.ci_method == ("wald",) * 4
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(none.conf_low, none.params - z * none.bse, rtol=1e-12)
    np.testing.assert_allclose(none.conf_high, none.params + z * none.bse, rtol=1e-12)
    np.testing.assert_allclose(none.pvalues, fit.pvalues, rtol=1e-10)  # always the LR test


def test_profile_limit_found_where_the_wald_start_overshoots():
    # A rare outcome (1%) with a tier of 0 events in 60: the Wald limit on the flat side of that tier's
    # profile lies so far out that the first quadratic model cannot reach the target level (the
    # Venzon-Moolgavkar step has no real solution there). The limit must still solve the defining
    # equation 2 (l*(b_hat) - max l*(b_j, .)) = chi2_1(0.95), checked with the naive likelihood.
    rng = np.random.default_rng(5)
    n = 3000
    tier = np.r_[np.zeros(n - 60), np.ones(60)]
    age = rng.normal(size=n)
    y = (rng.random(n) < 0.01).astype(int)
    y[tier == 1] = 0
    X = np.column_stack([np.ones(n), tier, age])
    fit = firth_logit(X, y, profile=[1], tests=[1])
    crit = stats.chi2.ppf(0.95, 1)
    for limit in (fit.conf_low[1], fit.conf_high[1]):
        profiled = naive_profile(X, y, 1, limit, fit.params)
        assert 2 * (fit.loglik - profiled) == pytest.approx(crit, abs=1e-6)


def test_tests_selects_the_likelihood_ratio_p_values(sparse_fit):
    X, y, fit = sparse_fit
    some = firth_logit(X, y, profile=[2], tests=[2])
    assert np.isnan(some.pvalues[[0, 1, 3]]).all()
    assert some.pvalues[2] == pytest.approx(fit.pvalues[2], rel=1e-10)
    assert np.isnan(firth_logit(X, y, profile=False, tests=False).pvalues).all()
    with pytest.raises(NeutrostatsError, match="expected tests indices between 0 and 3"):
        firth_logit(X, y, tests=[4])


# --------------------------------------------------------------------------
# 5. P-values and invariances
# --------------------------------------------------------------------------


def test_pvalues_are_penalised_likelihood_ratio_tests(sparse_fit):
    X, y, fit = sparse_fit
    for j in range(X.shape[1]):
        restricted = naive_profile(X, y, j, 0.0, fit.params)
        expected = stats.chi2.sf(2 * (fit.loglik - restricted), 1)
        assert fit.pvalues[j] == pytest.approx(expected, rel=1e-5, abs=1e-12)


def test_flipping_the_outcome_negates_everything(sparse_fit):
    X, y, fit = sparse_fit
    flipped = firth_logit(X, 1 - y)
    np.testing.assert_allclose(flipped.params, -fit.params, atol=1e-9)
    np.testing.assert_allclose(flipped.conf_low, -fit.conf_high, atol=1e-8)
    np.testing.assert_allclose(flipped.conf_high, -fit.conf_low, atol=1e-8)
    np.testing.assert_allclose(flipped.bse, fit.bse, rtol=1e-9)
    np.testing.assert_allclose(flipped.pvalues, fit.pvalues, rtol=1e-7, atol=1e-14)


def test_boolean_outcome_accepted(sparse_fit):
    X, y, fit = sparse_fit
    np.testing.assert_allclose(firth_logit(X, y.astype(bool), profile=False).params, fit.params)


def test_nonconvergence_warns():
    X, y = sparse_tiers()
    with pytest.warns(FirthConvergenceWarning, match="did not converge"):
        fit = firth_logit(X, y, max_iter=1, profile=False)
    assert not fit.converged


# --------------------------------------------------------------------------
# 6. Bad input
# --------------------------------------------------------------------------


GOOD_X = np.column_stack([np.ones(6), [0, 1, 0, 1, 1, 0], [0.1, 0.5, 0.3, 0.9, 0.7, 0.2]])
GOOD_Y = np.array([0, 1, 0, 1, 0, 1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"X": GOOD_X[:5]}, "one value per row"),
        ({"X": GOOD_X[:, 0]}, "2-D"),
        ({"y": np.array([0, 1, 2, 1, 0, 1])}, "expected y to be 0 or 1"),
        ({"y": np.array([0, 1, np.nan, 1, 0, 1])}, "expected y to be 0 or 1"),
        ({"X": np.where(np.eye(6, 3) == 1, np.nan, GOOD_X)}, "NaN"),
        ({"conf_level": 95}, "conf_level"),
        ({"conf_level": 1.0}, "conf_level"),
        ({"weights": -np.ones(6)}, "non-negative"),
        ({"weights": np.ones(4)}, "one value per row"),
        ({"weights": np.zeros(6)}, "positive weights"),
        ({"X": np.column_stack([GOOD_X, np.zeros(6)])}, "no persons"),
        ({"X": np.column_stack([GOOD_X, 2 * GOOD_X[:, 1]])}, "rank"),
        ({"profile": [0, 3]}, "profile indices"),
        ({"max_iter": 0}, "max_iter"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = {"X": GOOD_X, "y": GOOD_Y, **kwargs}
    with pytest.raises(NeutrostatsError, match=match):
        firth_logit(args.pop("X"), args.pop("y"), **args)


def test_empty_tier_message_names_the_column():
    X = np.column_stack([GOOD_X, np.zeros(6)])
    with pytest.raises(NeutrostatsError, match=r"column 3 \('tier\[severe\]'\)"):
        firth_logit(X, GOOD_Y, names=["const", "sex", "age", "tier[severe]"])


def test_tier_only_present_with_zero_weight_counts_as_empty():
    X, y, w = two_by_two(0, 0, 5, 15)
    with pytest.raises(NeutrostatsError, match="all-zero"):
        firth_logit(X, y, weights=w)


# --------------------------------------------------------------------------
# 7. Internal shortcuts: the Hessian from precomputed column products
# --------------------------------------------------------------------------


def _tier_age_sex(seed=12, n=400):
    rng = np.random.default_rng(seed)
    tier = rng.choice(4, n, p=[0.7, 0.15, 0.1, 0.05])
    age = rng.normal(60, 15, n)  # not centred: the products reach age^3 ~ 10^5
    sex = rng.integers(0, 2, n)
    X = np.column_stack([np.ones(n), tier == 1, tier == 2, tier == 3, age, sex]).astype(float)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-3 + 0.8 * (tier == 1) + 0.02 * (age - 60))))).astype(int)
    y[tier == 3] = 0  # a tier without events, as in the demo's rare outcomes
    return X, y


def test_distinct_column_products_of_a_dummy_coded_design():
    # Columns 1, t1, t2, t3 (disjoint 0/1 tiers), age, sex (0/1). A product x_l x_a x_b is a monomial
    # t^i age^j sex^s with t^2 = t, sex^2 = sex and t_i t_j = 0, so the distinct non-zero ones are
    #   without a tier:  1, age, age^2, age^3, sex, age sex, age^2 sex            (7)
    #   with tier t_i:   t_i (1, age, age^2, sex, age sex), degree <= 3 each       (5 x 3 = 15)
    # 22 of the 56 combinations l <= a <= b.
    # The pairs x_a x_b are among them (x_a x_b = 1 x_a x_b).
    X, _ = _tier_age_sex()
    triples = _firth._Triples.build(np.ascontiguousarray(X.T))
    assert triples.table.shape == (22, X.shape[0])
    k = X.shape[1]
    for l, a, b in [(1, 4, 5), (0, 4, 4), (3, 3, 4), (1, 2, 4), (0, 0, 0)]:  # t1 age sex, age^2, t3 age, 0, 1
        rows = {triples.triple[(i * k + j) * k + m] for i, j, m in
                [(l, a, b), (l, b, a), (a, l, b), (a, b, l), (b, l, a), (b, a, l)]}
        assert len(rows) == 1  # the same row for every order of the factors
        row = rows.pop()
        if (l, a, b) == (1, 2, 4):
            assert row == -1  # tiers 1 and 2 are never 1 together
        else:
            np.testing.assert_array_equal(triples.table[row], X[:, l] * X[:, a] * X[:, b])
    assert triples.pair[4 * k + 5] == triples.triple[(0 * k + 4) * k + 5]


@pytest.mark.parametrize("products", [True, False])
def test_exact_hessian_equals_finite_differences_of_the_naive_likelihood(monkeypatch, products):
    # The negative Hessian that steers Newton's method, from the column products or (over the memory
    # budget) from z = L^-1 x, against central second differences of naive_pll.
    if not products:
        monkeypatch.setattr(_firth, "_PRODUCT_BUDGET", 0)
    X, y = _tier_age_sex()
    X[:, 4] = (X[:, 4] - 60) / 15  # finite differences need a well-scaled coefficient
    data = _firth._Data(X, y.astype(float), np.ones(len(y)))
    assert (data.triples is not None) == products
    beta = np.array([-2.5, 0.7, 0.2, -1.5, 0.3, -0.2])
    with _firth.single_blas_thread():
        neg_h = _firth._Eval(data, beta).neg_hessian()
    eps = 1e-4
    k = len(beta)
    numeric = np.empty((k, k))
    for a in range(k):
        for b in range(k):
            ea, eb = eps * np.eye(k)[a], eps * np.eye(k)[b]
            numeric[a, b] = -(naive_pll(beta + ea + eb, X, y) - naive_pll(beta + ea - eb, X, y)
                              - naive_pll(beta - ea + eb, X, y) + naive_pll(beta - ea - eb, X, y)) / (4 * eps**2)
    np.testing.assert_allclose(neg_h, numeric, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("design", ["no intercept", "0/2 coding", "overlapping 0/1 columns"])
def test_hessian_from_products_equals_the_direct_one_on_other_designs(monkeypatch, design):
    # The products are told apart by their factors (a column of ones drops out, a 0/1 column counts
    # once, two 0/1 columns never 1 together give 0): designs where those rules must not apply.
    rng = np.random.default_rng(4)
    n = 300
    g = rng.integers(0, 3, n)
    x = rng.normal(size=n)
    columns = {
        "no intercept": [g == 0, g == 1, g == 2, x],
        "0/2 coding": [np.ones(n), 2.0 * (g == 1), g == 2, x],
        "overlapping 0/1 columns": [np.ones(n), g >= 1, g == 2, rng.integers(0, 2, n), x],
    }[design]
    X = np.column_stack(columns).astype(float)
    y = (rng.random(n) < 0.3).astype(float)
    beta = rng.normal(scale=0.3, size=X.shape[1])
    with _firth.single_blas_thread():
        with_products = _firth._Eval(_firth._Data(X, y, np.ones(n)), beta).neg_hessian()
        monkeypatch.setattr(_firth, "_PRODUCT_BUDGET", 0)
        direct = _firth._Eval(_firth._Data(X, y, np.ones(n)), beta).neg_hessian()
    np.testing.assert_allclose(with_products, direct, rtol=1e-10, atol=1e-12)


def test_fit_without_column_products_changes_nothing(monkeypatch):
    # Over the budget the Hessian comes from z = L^-1 x and Fisher scoring leads: another path to the
    # same estimate, limits and p-values.
    X, y = _tier_age_sex()
    X[:, 4] = (X[:, 4] - 60) / 15  # the naive profile below (BFGS) needs a well-scaled coefficient
    with_products = firth_logit(X, y, profile=[1, 2, 3], tests=[1, 2, 3])
    monkeypatch.setattr(_firth, "_PRODUCT_BUDGET", 0)
    without = firth_logit(X, y, profile=[1, 2, 3], tests=[1, 2, 3])
    _assert_same_fit(with_products, without)
    for limit in (with_products.conf_low[3], with_products.conf_high[3]):
        profiled = naive_profile(X, y, 3, limit, with_products.params)
        assert 2 * (with_products.loglik - profiled) == pytest.approx(stats.chi2.ppf(0.95, 1), abs=1e-6)


def test_skewed_start_solves_its_model_of_the_signed_root():
    # The upper limit's iteration starts where r(u) = (u / se)(1 + a u) reaches +sqrt(crit), with a fixed
    # by r = -sqrt(crit) at the lower limit found before. Hand-made profile: se = 0.5, a = 0.1,
    # sqrt(crit) = 1.95996: the lower limit is the root near 0 of 0.1 u^2 + u + 0.98 = 0,
    # u = (-1 + sqrt(0.608)) / 0.2 = -1.1013, the upper one that of 0.1 u^2 + u - 0.98 = 0,
    # u = (-1 + sqrt(1.392)) / 0.2 = 0.8992.
    crit = stats.chi2.ppf(0.95, 1)
    r, se, a = np.sqrt(crit), 0.5, 0.1
    lower = (-1 + np.sqrt(1 - 4 * a * r * se)) / (2 * a)
    upper = (-1 + np.sqrt(1 + 4 * a * r * se)) / (2 * a)
    assert (lower, upper) == (pytest.approx(-1.1013, abs=1e-4), pytest.approx(0.8992, abs=1e-4))

    class Fit:
        beta = np.array([1.0])

    known = np.array([1.0 + lower])
    u = _firth._skewed_wald(Fit, np.array([[se**2]]), 0, +1, crit, known)
    assert u == pytest.approx(upper, rel=1e-12)
    assert _firth._skewed_wald(Fit, np.array([[se**2]]), 0, +1, crit, None) == pytest.approx(r * se)
