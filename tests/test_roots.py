"""neutrostats.core.roots.brentq against scipy.optimize.brentq (the outside reference): the same root, bit for bit."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from neutrostats.core.roots import brentq


def _run(solver, f, a, b, kw):
    calls = []
    try:
        return solver(lambda x: (calls.append(x), f(x))[1], a, b, **kw), calls
    except (ValueError, RuntimeError) as exc:  # a failure must be scipy's too, after the same points
        return type(exc), calls


def _both(f, a, b, **kw):
    ours, calls_ours = _run(brentq, f, a, b, kw)
    ref, calls_scipy = _run(optimize.brentq, f, a, b, kw)
    assert ours == ref
    if isinstance(ours, float):
        assert math.copysign(1, ours) == math.copysign(1, ref)
    assert calls_ours == calls_scipy  # the same points, in the same order
    return ours


FUNCTIONS = [
    (lambda x: x * x - 2, 0.0, 2.0),
    (lambda x: math.exp(x) - 10, -5.0, 5.0),
    (lambda x: math.tanh(x - 0.3) ** 3, -1.0, 4.0),  # flat root: many bisections
    (lambda x: x ** 9 - 1e-3, 0.0, 1.5),
    (lambda x: math.log1p(math.exp(x)) - 3.0, -40.0, 40.0),
    (lambda x: 1 / (1 + math.exp(-x)) - 0.975, -40.0, 40.0),
    (lambda x: x, -1.0, 1.0),
    (lambda x: x - 1e-300, 0.0, 1.0),
    (lambda x: math.floor(x) - 2.5, 0.0, 10.0),  # discontinuous: a bracketed jump
]


@pytest.mark.parametrize("f, a, b", FUNCTIONS)
@pytest.mark.parametrize("tol", [dict(), dict(xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=500),
                                 dict(xtol=1e-3), dict(xtol=1e-12, rtol=1e-6)])
def test_same_root_and_points_as_scipy(f, a, b, tol):
    _both(f, a, b, **tol)
    _both(f, b, a, **tol)


@settings(max_examples=300, deadline=None)
@given(st.floats(-50, 50), st.floats(0.01, 20), st.floats(-3, 3), st.integers(1, 7))
def test_random_monotone_functions(root, scale, shift, power):
    f = lambda x: math.copysign(abs((x - root) / scale) ** power, x - root) + 0.0 * shift  # noqa: E731
    _both(f, root - 60 + shift, root + 55 - shift, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=500)


def test_failures_are_scipys():
    with pytest.raises(ValueError, match="different signs"):
        brentq(lambda x: x * x + 1, -1.0, 1.0)
    with pytest.raises(ValueError, match="different signs"):
        optimize.brentq(lambda x: x * x + 1, -1.0, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        brentq(lambda x: math.nan if x > 0.1 else -1.0, -1.0, 1.0)
    with pytest.raises(RuntimeError, match="converge"):
        brentq(lambda x: math.tanh(x) ** 3, -1.0, 3.0, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=3)
    with pytest.raises(RuntimeError, match="converge"):
        optimize.brentq(lambda x: math.tanh(x) ** 3, -1.0, 3.0, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=3)
    assert brentq(lambda x: x, 0.0, 1.0) == 0.0  # a root at an end


def test_signs_of_tiny_values_are_compared_by_sign_bit():
    # f(0) = -2.2e-311 and f(5e-14) = 5e-14: their product underflows to -0.0, yet the signs differ
    # (found by hypothesis: a port comparing fpre * fcur < 0 went on to 55.0 where scipy stops at 0.0).
    root = 2.225073858507e-311
    assert _both(lambda x: x - root, -60.0, 55.0, xtol=1e-13, rtol=4 * np.finfo(float).eps) == 0.0
    with pytest.raises(ValueError, match="different signs"):  # 1e-200 * 1e-200 underflows to 0: same signs
        brentq(lambda x: 1e-200, -1.0, 1.0)
    with pytest.raises(ValueError, match="different signs"):
        optimize.brentq(lambda x: 1e-200, -1.0, 1.0)
