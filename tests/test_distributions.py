"""neutrostats.core.distributions against scipy.stats (the outside reference): the same bits everywhere."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from neutrostats.core.distributions import chi2, norm

EDGES = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-300, -1e-300, 5e-324, 1 - 1e-16, 0.5, 37.5, -37.5, 40.0]
PROBABILITIES = [0.0, 1.0, 0.5, 0.975, 0.025, 0.995, 1e-300, 5e-324, 1 - 2**-53, 2**-53, -0.1, 1.1, np.nan]
DFS = [1, 2, 3, 4, 7, 10.5, 100]


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)  # NaN equals NaN here; signed zeros compare equal
    assert type(a[()]) is type(b[()])


def test_normal_functions_equal_scipy_stats_on_edges_and_a_grid():
    grid = np.concatenate([np.linspace(-40, 40, 4001), EDGES])
    for x in [*EDGES, grid]:
        _same(norm.sf(x), stats.norm.sf(x))
        _same(norm.cdf(x), stats.norm.cdf(x))
    for q in [*PROBABILITIES, np.linspace(0, 1, 2001), np.array(PROBABILITIES)]:
        _same(norm.ppf(q), stats.norm.ppf(q))


def test_scalar_results_are_numpy_floats_as_scipy_gives():
    assert type(norm.ppf(0.975)) is type(stats.norm.ppf(0.975))
    assert type(norm.sf(1.5)) is type(stats.norm.sf(1.5))
    assert type(chi2.sf(3.2, 1)) is type(stats.chi2.sf(3.2, 1))
    assert type(chi2.ppf(0.95, 2)) is type(stats.chi2.ppf(0.95, 2))


@pytest.mark.parametrize("df", DFS)
def test_chi_square_functions_equal_scipy_stats(df):
    grid = np.concatenate([np.linspace(-5, 400, 4051), np.abs(EDGES), [-1.0, -np.inf]])
    for x in [*EDGES, grid]:
        _same(chi2.sf(x, df), stats.chi2.sf(x, df))
    for q in [*PROBABILITIES, np.linspace(0, 1, 1001)]:
        _same(chi2.ppf(q, df), stats.chi2.ppf(q, df))


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1), st.sampled_from(DFS))
def test_random_points_equal_scipy_stats(x, q, df):
    _same(norm.sf(x), stats.norm.sf(x))
    _same(norm.ppf(q), stats.norm.ppf(q))
    _same(chi2.sf(x, df), stats.chi2.sf(x, df))
    _same(chi2.ppf(q, df), stats.chi2.ppf(q, df))


def test_hand_values():
    # Textbook quantiles: z_0.975 = 1.959963984540054, chi2_1,0.95 = 3.841458820694124 (= z_0.975 ** 2).
    assert abs(float(norm.ppf(0.975)) - 1.959963984540054) < 1e-15
    assert abs(float(chi2.ppf(0.95, 1)) - 3.841458820694124) < 1e-13
    assert abs(float(2 * norm.sf(1.959963984540054)) - 0.05) < 1e-15


def test_binomial_test_p_values_equal_scipy_stats():
    from neutrostats.core.distributions import binomtest_pvalue

    rng = np.random.default_rng(7)
    cases = [(0, 1, 0.5), (1, 1, 0.5), (7, 10, 0.5), (3, 10, 0.3), (0, 50, 0.01), (50, 50, 0.99), (5, 10, 0.5),
             (2, 3, 2 / 3), (1, 3, 1 / 3), (0, 20, 0.0), (20, 20, 1.0), (4, 20, 0.0), (12, 1000, 0.0123)]
    for n in (1, 2, 5, 17, 100, 1234, 48667):
        for _ in range(25):
            p = float(rng.choice([rng.random(), rng.random() ** 4, 1 - rng.random() ** 4]))
            cases.append((int(rng.integers(0, n + 1)), n, p))
            cases.append((int(rng.binomial(n, p)), n, p))
    for k, n, p in cases:
        ref = stats.binomtest(k, n, p).pvalue
        ours = binomtest_pvalue(k, n, p)
        assert ours == ref or (np.isnan(ours) and np.isnan(ref)), (k, n, p, ours, ref)
    # Hand calculation: 7 of 10 at p = 1/2: 2 * (C(10,7) + C(10,8) + C(10,9) + C(10,10)) / 2**10 = 352/1024.
    assert binomtest_pvalue(7, 10, 0.5) == 352 / 1024
    with pytest.raises(ValueError, match="0 <= k <= n"):
        binomtest_pvalue(11, 10, 0.5)


def test_beta_quantiles_equal_scipy_stats():
    from neutrostats.core.distributions import beta_ppf

    rng = np.random.default_rng(8)
    for _ in range(400):
        q = float(rng.choice([0.025, 0.975, 0.005, 0.995, rng.random()]))
        a, b = float(rng.integers(1, 5000)), float(rng.integers(1, 5000))
        ours, ref = beta_ppf(q, a, b), stats.beta.ppf(q, a, b)
        assert ours == ref and type(ours) is type(ref), (q, a, b)
    for q, a, b in ((0.0, 2.0, 3.0), (1.0, 2.0, 3.0), (0.5, 0.0, 1.0), (np.nan, 1.0, 1.0), (0.3, 0.5, 0.5)):
        _same(beta_ppf(q, a, b), stats.beta.ppf(q, a, b))
