"""Odds ratios: invariants (hypothesis), hand-checkable values and behaviour.

The comparison with R (epitools, fisher.test, glm, logistf/brglm2,
mantelhaen.test, prop.trend.test) is in test_associations_r.py.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrostats import (
    NeutrostatsError,
    SeparationWarning,
    SmallCellWarning,
    mantel_haenszel,
    odds_ratio,
    odds_ratio_table,
    odds_ratios_by_tier,
    plot_forest,
    trend_test,
)
from neutrostats.associations import OR_COLUMNS, natural_spline_basis

TIERS = ["normal", "subnormal", "mild", "moderate_severe"]


def _table(counts, extra=None):
    """counts: {tier: (events, nonevents)} -> one row per person."""
    rows = []
    for tier, (e, ne) in counts.items():
        rows += [(tier, 1)] * e + [(tier, 0)] * ne
    df = pd.DataFrame(rows, columns=["tier", "y"])
    df["tier"] = pd.Categorical(df["tier"], categories=TIERS, ordered=True)
    return df


cells = st.integers(0, 60)


def _or(a, b, c, d, method, **kw):
    return odds_ratio(exposed_events=a, exposed_nonevents=b, unexposed_events=c, unexposed_nonevents=d,
                      method=method, **kw)


@settings(max_examples=150, deadline=None)
@given(a=cells, b=cells, c=cells, d=cells, method=st.sampled_from(["exact", "midp"]))
def test_conditional_methods_invariants(a, b, c, d, method):
    if a + b == 0 or c + d == 0:
        return
    r = _or(a, b, c, d, method)
    assert 0 <= r.p_value <= 1
    if a + c == 0 or b + d == 0:
        assert np.isnan(r.estimate)
        return
    assert r.conf_low <= r.estimate <= r.conf_high
    # Swapping exposed and unexposed inverts the OR and its interval.
    s = _or(c, d, a, b, method)
    assert s.estimate == pytest.approx(1 / r.estimate if r.estimate not in (0, np.inf) else
                                       (np.inf if r.estimate == 0 else 0.0), rel=1e-7)
    assert s.conf_low == pytest.approx(1 / r.conf_high if r.conf_high != np.inf else 0.0, rel=1e-7, abs=1e-300)
    assert s.p_value == pytest.approx(r.p_value, rel=1e-9)
    # Swapping events and non-events inverts it too.
    e = _or(b, a, d, c, method)
    if 0 < r.estimate < np.inf:
        assert e.estimate == pytest.approx(1 / r.estimate, rel=1e-7)


@settings(max_examples=100, deadline=None)
@given(a=cells, b=cells, c=cells, d=cells)
def test_midp_interval_inside_fisher_interval(a, b, c, d):
    if min(a + b, c + d, a + c, b + d) == 0:
        return
    ex, mp = _or(a, b, c, d, "exact"), _or(a, b, c, d, "midp")
    assert ex.conf_low <= mp.conf_low * (1 + 1e-9)
    assert mp.conf_high <= ex.conf_high * (1 + 1e-9)
    # (No such order holds for the p-values: Fisher's two-sided p sums the
    # tables as unlikely as the observed one, the mid-p value doubles a tail.)


def test_wald_by_hand():
    # Woolf: log OR +- 1.959964 * sqrt(sum 1/cell).
    r = _or(20, 80, 10, 190, "wald")
    log_or, se = math.log(20 * 190 / (80 * 10)), math.sqrt(1 / 20 + 1 / 80 + 1 / 10 + 1 / 190)
    z = 1.959963984540054
    assert r.estimate == pytest.approx(4.75, rel=1e-12)
    assert r.std_error == pytest.approx(se, rel=1e-12)
    assert (r.conf_low, r.conf_high) == pytest.approx((math.exp(log_or - z * se), math.exp(log_or + z * se)), rel=1e-12)
    assert r.p_value == pytest.approx(math.erfc(abs(log_or / se) / math.sqrt(2)), rel=1e-10)


def test_zero_cells_honest_or_corrected():
    with pytest.warns(SmallCellWarning):
        r = _or(0, 20, 10, 190, "wald")
    assert r.estimate == 0.0 and (r.conf_low, r.conf_high) == (0.0, np.inf) and np.isnan(r.p_value)
    h = _or(0, 20, 10, 190, "wald", correction="haldane")
    assert h.method == "wald_haldane"
    assert h.estimate == pytest.approx(0.5 * 190.5 / (20.5 * 10.5), rel=1e-12)
    ex = _or(0, 20, 10, 190, "exact")
    assert ex.estimate == 0.0 and ex.conf_low == 0.0 and np.isfinite(ex.conf_high)
    top = _or(5, 0, 10, 190, "midp")
    assert top.estimate == np.inf and top.conf_high == np.inf and top.conf_low > 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"exposed_events": -1}, "whole number"),
        ({"exposed_events": 1.5}, "whole number"),
        ({"method": "bayes"}, "method must be one of"),
        ({"conf_level": 95}, "conf_level"),
        ({"method": "exact", "correction": "haldane"}, "Wald method only"),
        ({"exposed_events": 0, "exposed_nonevents": 0}, "exposed and unexposed"),
    ],
)
def test_odds_ratio_bad_input(kwargs, match):
    base = dict(exposed_events=1, exposed_nonevents=2, unexposed_events=3, unexposed_nonevents=4, method="midp")
    with pytest.raises(NeutrostatsError, match=match):
        odds_ratio(**{**base, **kwargs})


# --- by tier ------------------------------------------------------------------------------


def test_by_tier_layout_reference_and_empty_tier():
    df = _table({"normal": (10, 990), "subnormal": (5, 95), "mild": (3, 17)})  # no moderate_severe persons
    out = odds_ratios_by_tier(df, "y", method="exact")
    assert list(out.columns) == OR_COLUMNS
    assert out["tier"].astype(str).tolist() == TIERS
    assert out["tier"].dtype.ordered
    ref = out.iloc[0]
    assert ref["is_reference"] and ref["estimate"] == 1.0 and np.isnan(ref["conf_low"])
    assert out["n"].tolist() == [1000, 100, 20, 0] and out["events"].tolist() == [10, 5, 3, 0]
    assert np.isnan(out.iloc[3]["estimate"])
    direct = odds_ratio(exposed_events=5, exposed_nonevents=95, unexposed_events=10, unexposed_nonevents=990,
                        method="exact")
    assert out.iloc[1]["estimate"] == direct.estimate


def test_by_tier_other_reference_and_prevalent_excluded():
    df = _table({"normal": (10, 90), "subnormal": (5, 45), "mild": (3, 17), "moderate_severe": (2, 3)})
    df["y_prevalent"] = False
    df.loc[0, "y_prevalent"] = True  # one of the normal events was prevalent
    df.loc[0, "y"] = np.nan
    out = odds_ratios_by_tier(df, "y", method="midp", reference="mild")
    assert out.set_index("tier").loc["mild", "is_reference"]
    assert out.set_index("tier").loc["normal", "n"] == 99
    with pytest.raises(NeutrostatsError, match="reference"):
        odds_ratios_by_tier(df, "y", reference="grade_9")


def test_by_tier_rejects_bad_columns():
    df = _table({"normal": (10, 90), "mild": (3, 17)})
    with pytest.raises(NeutrostatsError, match="ordered Categorical"):
        odds_ratios_by_tier(df.assign(tier=df["tier"].astype(str)), "y")
    with pytest.raises(NeutrostatsError, match="0/1"):
        odds_ratios_by_tier(df.assign(y=df["y"] * 2), "y")
    with pytest.raises(NeutrostatsError, match="adjust= needs"):
        odds_ratios_by_tier(df.assign(age=1.0), "y", method="midp", adjust=["age"])
    with pytest.raises(NeutrostatsError, match="not found"):
        odds_ratios_by_tier(df, "y", method="logistic", adjust=["age"])


def test_row_order_does_not_matter():
    df = _table({"normal": (30, 300), "subnormal": (8, 40), "mild": (4, 10), "moderate_severe": (3, 2)})
    df["age"] = np.random.default_rng(5).uniform(20, 80, len(df))
    a = odds_ratios_by_tier(df, "y", method="logistic", adjust=["age"])
    b = odds_ratios_by_tier(df.sample(frac=1, random_state=2), "y", method="logistic", adjust=["age"])
    pd.testing.assert_frame_equal(a, b, rtol=1e-9)


def test_crude_logistic_equals_wald_2x2():
    # With tier as the only term, the logistic ORs are the 2x2 ORs and
    # their Wald SEs are Woolf's.
    df = _table({"normal": (30, 300), "subnormal": (8, 40), "mild": (6, 10), "moderate_severe": (5, 5)})
    lg = odds_ratios_by_tier(df, "y", method="logistic")
    wd = odds_ratios_by_tier(df, "y", method="wald")
    for col in ["estimate", "std_error", "conf_low", "conf_high", "p_value"]:
        np.testing.assert_allclose(lg[col].to_numpy(), wd[col].to_numpy(), rtol=1e-6)


def test_separation_warns_and_reports_the_limit():
    df = _table({"normal": (30, 300), "subnormal": (0, 40), "mild": (6, 10)})
    df["age"] = np.random.default_rng(6).uniform(20, 80, len(df))
    with pytest.warns(SeparationWarning, match="firth"):
        out = odds_ratios_by_tier(df, "y", method="logistic", adjust=["age"])
    row = out.set_index("tier").loc["subnormal"]
    assert row["estimate"] == 0.0 and np.isnan(row["conf_low"])
    # Other tiers are estimated as without the separated persons.
    ref = odds_ratios_by_tier(df[df["tier"] != "subnormal"], "y", method="logistic", adjust=["age"])
    assert out.set_index("tier").loc["mild", "estimate"] == pytest.approx(
        ref.set_index("tier").loc["mild", "estimate"], rel=1e-8)


def test_categorical_and_boolean_covariates_and_splines():
    rng = np.random.default_rng(4)
    df = _table({"normal": (60, 600), "subnormal": (12, 60), "mild": (8, 20), "moderate_severe": (5, 5)})
    df["sex"] = rng.choice(["F", "M"], len(df))
    df["smoker"] = rng.random(len(df)) < 0.3
    df["age"] = rng.uniform(20, 90, len(df))
    out = odds_ratios_by_tier(df, "y", method="logistic", adjust=["age", "sex", "smoker"], spline={"age": 3})
    assert out["estimate"].notna().all()
    with pytest.raises(NeutrostatsError, match="spline"):
        odds_ratios_by_tier(df, "y", method="logistic", adjust=["sex"], spline={"age": 3})


def test_natural_spline_is_linear_outside_and_spans_linear_functions():
    x = np.linspace(0, 100, 201)
    B = natural_spline_basis(x, df=4)
    # The basis includes x itself, and each column's second derivative
    # vanishes at and beyond the boundary knots (linear tails).
    np.testing.assert_allclose(B[:, 0], x)
    ext = natural_spline_basis(np.array([120.0, 130.0, 140.0]), 4, knots=np.quantile(x, [0.25, 0.5, 0.75]),
                               boundary_knots=(0, 100))
    np.testing.assert_allclose(np.diff(ext, n=2, axis=0), 0.0, atol=1e-8)


def test_odds_ratio_table_and_forest_plot():
    import matplotlib

    matplotlib.use("Agg")
    df = _table({"normal": (30, 300), "subnormal": (8, 40), "mild": (6, 10), "moderate_severe": (5, 5)})
    df["z"] = df["y"][::-1].to_numpy()
    tab = odds_ratio_table(df, ["y", "z"], method="midp")
    assert tab["outcome"].tolist() == ["y"] * 4 + ["z"] * 4
    ax = plot_forest(tab, title="test")
    assert ax.get_xscale() == "log"
    assert len(ax.get_yticklabels()) == 6  # reference rows left out
    assert any(np.allclose(line.get_xdata(), [1.0, 1.0]) for line in ax.get_lines())
    import matplotlib.pyplot as plt

    # An OR of 0 (no events in a tier) points off the axis rather than sitting on its edge as a value.
    zero = _table({"normal": (30, 300), "subnormal": (0, 40)})
    ax = plot_forest(odds_ratio_table(zero, ["y"], method="midp"))
    markers = [line.get_marker() for line in ax.get_lines()]
    assert "<" in markers and "s" not in markers
    plt.close("all")
    with pytest.raises(NeutrostatsError, match="non-empty list"):
        odds_ratio_table(df, "y")


# --- trend and Mantel-Haenszel -----------------------------------------------------------


def test_trend_by_hand_and_score_invariance():
    df = _table({"normal": (5, 95), "subnormal": (10, 90), "mild": (20, 80), "moderate_severe": (30, 70)})
    out = trend_test(df, "y")
    # Cochran-Armitage by hand: [sum (e - n p)(s - s_bar)]^2 / (p (1-p) sum n (s - s_bar)^2)
    e, n, s = np.array([5, 10, 20, 30]), np.array([100] * 4), np.arange(4)
    p, sb = e.sum() / n.sum(), 1.5
    expected = np.dot(e - n * p, s - sb) ** 2 / (p * (1 - p) * np.dot(n, (s - sb) ** 2))
    assert out.loc[0, "statistic"] == pytest.approx(expected, rel=1e-12)
    shifted = trend_test(df, "y", scores=[10, 12, 14, 16])
    assert shifted.loc[0, "statistic"] == pytest.approx(expected, rel=1e-12)
    assert shifted.loc[1, "estimate"] == pytest.approx(out.loc[1, "estimate"] / 2, rel=1e-6)
    with pytest.raises(NeutrostatsError, match="scores"):
        trend_test(df, "y", scores=[1, 2])


def test_mantel_haenszel_one_stratum_is_the_crude_or():
    df = _table({"normal": (10, 90), "mild": (8, 12)})
    df["exposed"] = df["tier"] == "mild"
    df["all"] = "one"
    mh = mantel_haenszel(df, "y", "exposed", "all")
    assert mh.estimate == pytest.approx(8 * 90 / (12 * 10), rel=1e-12)
    assert mh.strata["odds_ratio"].iloc[0] == pytest.approx(6.0)
    assert list(mh.strata.columns) == ["stratum", "exposed_events", "exposed_nonevents", "unexposed_events",
                                       "unexposed_nonevents", "odds_ratio"]


def test_mantel_haenszel_zero_cell_stratum_does_not_warn():
    a = pd.DataFrame({"x": [1] * 10 + [0] * 10, "y": [1] * 5 + [0] * 5 + [0] * 10, "s": "a"})
    b = pd.DataFrame({"x": [1] * 10 + [0] * 10, "y": [1] * 6 + [0] * 4 + [1] * 3 + [0] * 7, "s": "b"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mh = mantel_haenszel(pd.concat([a, b]), "y", "x", "s")
    assert np.isfinite(mh.estimate) and mh.conf_low < mh.estimate < mh.conf_high
