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
from neutrostats.stats.odds_ratios import OR_COLUMNS, natural_spline_basis

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
    assert out["group"].astype(str).tolist() == TIERS
    assert out["group"].dtype.ordered
    ref = out.iloc[0]
    assert ref["is_reference"] and ref["estimate"] == 1.0 and np.isnan(ref["conf_low"])
    assert out["n"].tolist() == [1000, 100, 20, 0] and out["n_event"].tolist() == [10, 5, 3, 0]
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
    assert out.set_index("group").loc["mild", "is_reference"]
    assert out.set_index("group").loc["normal", "n"] == 99
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
    row = out.set_index("group").loc["subnormal"]
    # Maximum likelihood has no finite estimate: no number, and a reason.
    assert row[["estimate", "std_error", "conf_low", "conf_high", "p_value"]].isna().all()
    assert not row["estimable"] and row["note"] == "no events in this tier"
    # Other tiers are estimated as without the separated persons.
    ref = odds_ratios_by_tier(df[df["tier"] != "subnormal"], "y", method="logistic", adjust=["age"])
    assert out.set_index("group").loc["mild", "estimate"] == pytest.approx(
        ref.set_index("group").loc["mild", "estimate"], rel=1e-8)


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
    # A bold header per outcome, then its four tiers; the reference rows read "reference".
    assert len(ax.get_yticklabels()) == 10
    assert [t.get_text() for t in ax.get_yticklabels()][::5] == ["y", "z"]
    column = [t.get_text() for t in ax.child_axes[0].texts]
    assert column.count("reference") == 2 and column[-1] == "OR (95% CI)"
    assert any(np.allclose(line.get_xdata(), [1.0, 1.0]) for line in ax.get_lines())
    import matplotlib.pyplot as plt

    # An OR of 0 (no events in a tier) is no estimate: its mid-p interval (0, upper) is drawn, no marker.
    zero = _table({"normal": (30, 300), "subnormal": (0, 40)})
    ax = plot_forest(odds_ratio_table(zero, ["y"], method="midp"))
    markers = [line.get_marker() for line in ax.get_lines()]
    assert not {"<", ">", "s", "D"} & set(markers)
    # Its open lower end is a caret (tip at the left edge), not a clipped marker.
    assert 4 in markers and "not estimable" in [t.get_text() for t in ax.child_axes[0].texts]
    # An estimate beyond the axis (here inf, with support claimed) still points off it.
    edge = odds_ratio_table(_table({"normal": (30, 300), "subnormal": (8, 40)}), ["y"], method="midp")
    edge.loc[1, ["estimate", "conf_high"]] = np.inf
    ax = plot_forest(edge)
    assert any(line.get_marker() == 5 and np.allclose(line.get_xdata(), ax.get_xlim()[1]) and line.get_markersize() == 8
               for line in ax.get_lines())
    plt.close("all")
    with pytest.raises(NeutrostatsError, match="non-empty list"):
        odds_ratio_table(df, "y")


# --- estimates without support ------------------------------------------------------------

# normal 30 of 330, subnormal 0 of 33, mild 33 of 33, moderate_severe 6 of 16.
UNSUPPORTED = {"normal": (30, 300), "subnormal": (0, 33), "mild": (33, 0), "moderate_severe": (6, 10)}
NOTES = ["", "no events in this tier", "every person in this tier had the event", ""]


def test_new_columns_and_their_order():
    assert OR_COLUMNS == ["outcome", "group", "n", "n_event", "estimate", "std_error", "conf_low", "conf_high",
                          "p_value", "method", "estimable", "note", "is_reference"]


@pytest.mark.parametrize("method, kwargs, warning", [
    ("wald", {}, SmallCellWarning),
    ("wald", {"correction": "haldane"}, None),
    ("exact", {}, None),
    ("midp", {}, None),
    ("logistic", {}, SeparationWarning),
    ("firth", {}, None),
])
def test_tier_without_events_or_with_only_events_is_not_estimable(method, kwargs, warning):
    df = _table(UNSUPPORTED)
    if warning is None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = odds_ratios_by_tier(df, "y", method=method, **kwargs)
    else:
        with pytest.warns(warning):
            out = odds_ratios_by_tier(df, "y", method=method, **kwargs)
    assert out["estimable"].tolist() == [True, False, False, True]
    assert out["note"].tolist() == NOTES
    assert out.dtypes["estimable"] == bool
    # The supported tier is estimated whatever the method: (6 * 300) / (10 * 30) = 6 for the ML ones,
    # (6.5 * 300.5) / (10.5 * 30.5) with Haldane's +0.5.
    if method in ("wald", "logistic"):
        expected = 6.5 * 300.5 / (10.5 * 30.5) if kwargs else 6.0
        assert out.loc[3, "estimate"] == pytest.approx(expected, rel=1e-9)


def test_what_each_method_reports_without_support():
    df = _table(UNSUPPORTED)
    # Mid-p: estimate 0 and interval (0, upper), with upper where P(X = 0) / 2 = 0.025 given the margins
    # (X: events among the 33 subnormal persons, 30 events among 363 persons; Fisher's noncentral law).
    from scipy import optimize, stats

    midp = odds_ratios_by_tier(df, "y", method="midp").set_index("group")
    upper = optimize.brentq(lambda o: stats.nchypergeom_fisher(363, 33, 30, o).pmf(0) / 2 - 0.025, 1e-3, 10)
    assert midp.loc["subnormal", "estimate"] == 0.0 and midp.loc["subnormal", "conf_low"] == 0.0
    assert midp.loc["subnormal", "conf_high"] == pytest.approx(upper, rel=1e-6)
    assert midp.loc["mild", "estimate"] == np.inf and midp.loc["mild", "method"] == "midp"
    # Logistic: maximum likelihood has no finite estimate, so no number at all.
    with pytest.warns(SeparationWarning, match="not estimable"):
        ml = odds_ratios_by_tier(df, "y", method="logistic").set_index("group")
    for tier in ("subnormal", "mild"):
        assert ml.loc[tier, ["estimate", "std_error", "conf_low", "conf_high", "p_value"]].isna().all()
    # Firth: finite only through the penalty, and labelled Firth. Tier alone is a saturated model, where
    # Firth's estimate is the OR of the cells plus 0.5: (0.5 * 300.5) / (33.5 * 30.5) and (33.5 * 300.5) / (0.5 * 30.5).
    firth = odds_ratios_by_tier(df, "y", method="firth").set_index("group")
    assert (firth["method"] == "firth").all()
    assert firth.loc["subnormal", "estimate"] == pytest.approx(0.5 * 300.5 / (33.5 * 30.5), rel=1e-5)
    assert firth.loc["mild", "estimate"] == pytest.approx(33.5 * 300.5 / (0.5 * 30.5), rel=1e-5)
    assert np.isfinite(firth.iloc[1:][["estimate", "conf_low", "conf_high"]].to_numpy()).all()
    assert not firth.loc["subnormal", "estimable"] and not firth.loc["mild", "estimable"]


@pytest.mark.parametrize("reference_cells, note", [
    ((0, 300), "no events in the reference tier"),
    ((30, 0), "every person in the reference tier had the event"),
])
def test_reference_without_support_makes_every_row_not_estimable(reference_cells, note):
    df = _table({"normal": reference_cells, "subnormal": (5, 40), "mild": (6, 10)})
    df["age"] = np.random.default_rng(7).uniform(20, 80, len(df))
    for method in ("midp", "exact", "firth"):
        out = odds_ratios_by_tier(df, "y", method=method)
        assert not out["estimable"].any(), method
        assert out["note"].tolist()[:3] == [note] * 3
        assert out.loc[0, "is_reference"] and out.loc[0, "estimate"] == 1.0
    with pytest.warns(SeparationWarning, match="reference tier 'normal'.*firth"):
        ml = odds_ratios_by_tier(df, "y", method="logistic", adjust=["age"])
    assert ml.loc[1:, "estimate"].isna().all() and not ml["estimable"].any()
    assert ml.loc[3, "note"] == f"no persons in this tier; {note}"


def test_model_that_does_not_converge_is_not_estimable():
    # age separates the outcome completely (events exactly at age > 50): no finite ML estimate anywhere.
    df = _table({"normal": (20, 20), "subnormal": (10, 10)})
    df["age"] = np.where(df["y"] == 1, 60.0, 40.0) + np.random.default_rng(1).uniform(0, 5, len(df))
    with pytest.warns(SeparationWarning, match="did not converge"):
        out = odds_ratios_by_tier(df, "y", method="logistic", adjust=["age"])
    row = out.set_index("group").loc["subnormal"]
    assert np.isnan(row["estimate"]) and not row["estimable"]
    assert row["note"] == "no finite estimate: the logistic model did not converge"


def _forest_markers(ax):
    import matplotlib.colors as mcolors

    # Estimate markers (the carets 4 and 5 end open intervals).
    return [(line.get_marker(), mcolors.to_hex(line.get_markerfacecolor())) for line in ax.get_lines()
            if line.get_marker() in ("s", "D", "<", ">")]


def test_forest_marks_firth_and_unsupported_rows():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = _table({"normal": (30, 300), "subnormal": (0, 33), "mild": (6, 10), "moderate_severe": (5, 5)})
    firth = odds_ratio_table(df, ["y"], method="firth")
    ax = plot_forest(firth)
    # Two Firth estimates drawn as open diamonds; the tier without events gets none.
    assert _forest_markers(ax) == [("D", "#ffffff")] * 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Firth (penalised)"]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert [x.split(" (")[0] for x in labels] == ["y", "Normal", "Subnormal", "Mild", "Moderate–severe"]
    column = [t.get_text() for t in ax.child_axes[0].texts]
    assert column[:2] == ["reference", "not estimable"] and not ax.texts
    # Its interval is still drawn (a line without marker at its row, the subnormal one).
    row_y = len(labels) - 3
    assert any(line.get_marker() in ("None", None, "") and np.allclose(line.get_ydata(), [row_y, row_y])
               for line in ax.get_lines())
    plt.close("all")
    # The same table by mid-p: filled squares, no Firth legend.
    ax = plot_forest(odds_ratio_table(df, ["y"], method="midp"))
    assert [m for m, _ in _forest_markers(ax)] == ["s", "s"] and all(fc != "#ffffff" for _, fc in _forest_markers(ax))
    assert ax.get_legend() is None
    plt.close("all")


def test_forest_with_every_row_suppressed_or_not_estimable():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = _table({"normal": (30, 300), "subnormal": (8, 40), "mild": (6, 10), "moderate_severe": (5, 5)})
    tab = odds_ratio_table(df, ["y"], method="midp")
    hidden = tab.assign(**{c: np.nan for c in ("estimate", "conf_low", "conf_high", "p_value")})
    ax = plot_forest(hidden)
    assert [t.get_text() for t in ax.texts] == ["nothing to draw: every estimate is suppressed or not estimable"]
    assert [t.get_text() for t in ax.child_axes[0].texts] == ["reference", "[h]", "[h]", "[h]", "OR (95% CI)"]
    ax.figure.canvas.draw()
    # Logistic rows of tiers without events are NaN and not estimable: the same note, other labels.
    none = _table({"normal": (30, 300), "subnormal": (0, 40)})
    with pytest.warns(SeparationWarning):
        ml = odds_ratio_table(none, ["y"], method="logistic")
    ax = plot_forest(ml)
    assert [t.get_text() for t in ax.texts] == ["nothing to draw: every estimate is suppressed or not estimable"]
    assert [t.get_text() for t in ax.child_axes[0].texts][:2] == ["reference", "not estimable"]
    # Only reference rows: nothing to draw either.
    ax = plot_forest(tab[tab["is_reference"]])
    assert [t.get_text() for t in ax.texts] == ["nothing to draw: every estimate is suppressed or not estimable"]
    plt.close("all")


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
    # The tidy test shape: test, outcome, term first.
    assert list(out.columns) == ["test", "outcome", "term", "statistic", "df", "p_value", "estimate", "std_error"]
    assert out["test"].tolist() == ["cochran_armitage", "logistic_score"]
    assert out["outcome"].tolist() == ["y", "y"] and out["term"].tolist() == ["tier", "tier"]
    from scipy import stats

    assert out.loc[0, "p_value"] == pytest.approx(stats.chi2.sf(expected, 1), rel=1e-12)


def test_mantel_haenszel_one_stratum_is_the_crude_or():
    df = _table({"normal": (10, 90), "mild": (8, 12)})
    df["exposed"] = df["tier"] == "mild"
    df["all"] = "one"
    mh = mantel_haenszel(df, "y", "exposed", "all")
    assert mh.estimate == pytest.approx(8 * 90 / (12 * 10), rel=1e-12)
    assert mh.strata["odds_ratio"].iloc[0] == pytest.approx(6.0)
    assert list(mh.strata.columns) == ["stratum", "exposed_events", "exposed_nonevents", "unexposed_events",
                                       "unexposed_nonevents", "odds_ratio"]


def test_mantel_haenszel_tidy_shape():
    # Two strata, OR 3 in each (30*10 / (10*10)): Breslow-Day 0 on 2 - 1 df.
    one = pd.DataFrame({"x": [1] * 40 + [0] * 20, "y": [1] * 30 + [0] * 10 + [1] * 10 + [0] * 10})
    t = pd.concat([one.assign(sex="F"), one.assign(sex="M")])
    mh = mantel_haenszel(t, "y", "x", "sex")
    tidy = mh.tidy()
    assert list(tidy.columns) == ["test", "outcome", "term", "statistic", "df", "p_value", "estimate", "conf_low",
                                  "conf_high"]
    assert tidy["test"].tolist() == ["mantel_haenszel", "breslow_day"]
    assert tidy["outcome"].tolist() == ["y", "y"] and tidy["term"].tolist() == ["x", "x"]
    assert tidy["df"].tolist() == [1, 1]
    assert tidy.loc[0, "estimate"] == pytest.approx(3.0, rel=1e-12) and np.isnan(tidy.loc[1, "estimate"])
    assert tidy.loc[0, "statistic"] == mh.statistic and tidy.loc[1, "statistic"] == pytest.approx(0.0, abs=1e-12)
    assert tidy.loc[1, "p_value"] == mh.homogeneity_p_value


def test_mantel_haenszel_zero_cell_stratum_does_not_warn():
    a = pd.DataFrame({"x": [1] * 10 + [0] * 10, "y": [1] * 5 + [0] * 5 + [0] * 10, "s": "a"})
    b = pd.DataFrame({"x": [1] * 10 + [0] * 10, "y": [1] * 6 + [0] * 4 + [1] * 3 + [0] * 7, "s": "b"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mh = mantel_haenszel(pd.concat([a, b]), "y", "x", "s")
    assert np.isfinite(mh.estimate) and mh.conf_low < mh.estimate < mh.conf_high


def _logit_designs():
    """Designs like the report's (intercept, tier indicators, age, sex) and harder ones, with outcomes."""
    rng = np.random.default_rng(21)
    out = []
    for n, rare in ((3000, 0.02), (800, 0.3), (200, 0.5)):
        tier = rng.integers(0, 4, n)
        age = rng.uniform(18, 95, n)
        male = rng.random(n) < 0.5
        X = np.column_stack([np.ones(n), *[(tier == i).astype(float) for i in (1, 2, 3)], age, male.astype(float)])
        eta = np.log(rare / (1 - rare)) + 0.4 * tier + 0.02 * (age - 50) - 0.3 * male
        out.append((X, (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)))
    # An unscaled covariate far from 0 and a nearly collinear pair: more Newton steps.
    n = 500
    x = rng.normal(1000, 5, n)
    X = np.column_stack([np.ones(n), x, x + rng.normal(0, 0.5, n)])
    out.append((X, (rng.random(n) < 0.4).astype(float)))
    return out


def test_own_newton_logistic_is_statsmodels_to_the_last_bit():
    # The outside reference is statsmodels' Logit(...).fit(method="newton"), which the report used before:
    # from statsmodels 0.15 on, the same estimates and standard errors bit for bit, and the same fitted
    # probabilities. statsmodels 0.14 iterates on the Hessian of the log-likelihood (negative definite)
    # and adds its 1e-10 ridge to that, 0.15 (and neutrostats, on every version) on the Hessian of its
    # negative: the same fixed point, reached by steps that differ in the last bits (about 1e-15).
    import statsmodels
    from statsmodels.discrete.discrete_model import Logit

    from neutrostats.stats.odds_ratios import _newton_logit

    same_iteration = tuple(int(v) for v in statsmodels.__version__.split(".")[:2]) >= (0, 15)
    for X, y in _logit_designs():
        ref = Logit(y, X).fit(method="newton", disp=0, maxiter=100)
        params, cov, fitted = _newton_logit(X, y, maxiter=100)
        if same_iteration:
            np.testing.assert_array_equal(params, ref.params)
            np.testing.assert_array_equal(np.sqrt(np.diag(cov)), ref.bse)
            np.testing.assert_array_equal(fitted, ref.predict())
        else:
            # The nearly collinear design (condition number about 1e8) magnifies that to about 1e-9.
            np.testing.assert_allclose(params, ref.params, rtol=1e-8)
            np.testing.assert_allclose(np.sqrt(np.diag(cov)), ref.bse, rtol=1e-8)
            np.testing.assert_allclose(fitted, ref.predict(), rtol=1e-8)


def test_own_newton_logistic_fails_where_statsmodels_warns():
    from statsmodels.discrete.discrete_model import Logit
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    from neutrostats.stats.odds_ratios import _newton_logit, _NoConvergence

    rng = np.random.default_rng(3)
    # Separated with a gap between the groups (statsmodels sees perfect prediction after a few steps) and
    # without one (the fitted probabilities approach 0 and 1 too slowly: no convergence in 100 steps).
    import statsmodels

    # statsmodels 0.14's steps (see above) take another path to the same failure: a singular Hessian, or
    # perfect prediction where 0.15 runs out of steps.
    old_iteration = tuple(int(v) for v in statsmodels.__version__.split(".")[:2]) < (0, 15)
    for gap, expected in ((2.0, PerfectSeparationWarning), (0.0, ConvergenceWarning)):
        x = np.concatenate([rng.uniform(0, 5, 30), rng.uniform(5 + gap, 10 + gap, 30)])
        X = np.column_stack([np.ones(60), x])
        separated = (x > 5).astype(float)
        with warnings.catch_warnings(), np.errstate(over="ignore", divide="ignore"):
            warnings.simplefilter("error", PerfectSeparationWarning)
            warnings.simplefilter("error", ConvergenceWarning)
            failures = (PerfectSeparationWarning, ConvergenceWarning, np.linalg.LinAlgError)
            with pytest.raises(failures if old_iteration else expected):
                Logit(separated, X).fit(method="newton", disp=0, maxiter=100)
            with pytest.raises(_NoConvergence, match=expected.__name__):
                _newton_logit(X, separated)
    x = rng.uniform(0, 10, 60)
    X = np.column_stack([np.ones(60), x])
    # Three steps are not enough from 0: statsmodels warns, the own fit raises.
    y = (rng.random(60) < 1 / (1 + np.exp(-(x - 5)))).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning):
            Logit(y, X).fit(method="newton", disp=0, maxiter=3)
    with pytest.raises(_NoConvergence, match="ConvergenceWarning"):
        _newton_logit(X, y, maxiter=3)


def _grouped_tables():
    rng = np.random.default_rng(16)
    out = []
    for k in (2, 3, 4, 6):
        for base in (0.002, 0.05, 0.4):
            n = rng.integers(5, 5000, k).astype(float)
            p = np.clip(base * np.exp(0.3 * np.arange(k)), 0, 0.95)
            out.append((rng.binomial(n.astype(int), p).astype(float), n, np.arange(k, dtype=float)))
    n = np.array([120.0, 80.0, 40.0, 10.0])
    out.append((np.array([12.0, 8.0, 4.0, 1.0]), n, np.arange(4.0)))  # a flat trend: fitted = observed
    out.append((np.array([0.0, 0.0, 3.0, 7.0]), n, np.array([0.0, 1.0, 2.5, 4.0])))  # tiers without events
    out.append((np.array([0.0, 0.0, 0.0, 10.0]), n, np.arange(4.0)))  # separated: the slope runs away
    out.append((np.array([5.0, 80.0, 40.0, 10.0]), n, np.arange(4.0)))  # every person of the upper tiers
    return out


def test_grouped_logistic_fit_is_statsmodels_glm_to_the_last_bit():
    # The outside reference is statsmodels' GLM(Binomial) on (events, non-events), which trend_test used:
    # the same estimates and standard errors bit for bit (statsmodels 0.14 and 0.15 run the same IRLS).
    from scipy import stats
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning
    from statsmodels.tools.tools import add_constant

    from neutrostats.stats.odds_ratios import _grouped_logit

    for events, n, s in _grouped_tables():
        # (statsmodels divides by the residual df, 0 with two tiers, for a scale it does not use.)
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", PerfectSeparationWarning)
            ref = GLM(np.column_stack([events, n - events]), add_constant(s), family=families.Binomial()).fit()
        params, bse = _grouped_logit(events, n, np.column_stack((np.ones(s.shape[0]), s)))
        np.testing.assert_array_equal(params, ref.params)
        np.testing.assert_array_equal(bse, ref.bse)
        np.testing.assert_array_equal(stats.norm.sf(np.abs(params / bse)) * 2, ref.pvalues)
