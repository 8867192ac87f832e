"""Cumulative incidence and Gray's test: invariants (hypothesis), hand-checkable
values, behaviour and bad input. Comparisons with R are in test_competing_r.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrostats.plotting import plot_cumulative_incidence
from neutrostats.stats.competing import CI_COLUMNS, GRAY_COLUMNS, cumulative_incidence, gray_test
from neutrostats.errors import DataQualityWarning, NeutrostatsError

# --- helpers ---------------------------------------------------------------------------------


def km_by_hand(times, dead):
    """All-cause Kaplan-Meier and its Greenwood SE at the sorted distinct times (plain Python)."""
    out_t, out_s, out_se = [], [], []
    s, gw = 1.0, 0.0
    for t in sorted(set(times)):
        n = sum(1 for x in times if x >= t)
        d = sum(1 for x, e in zip(times, dead) if x == t and e)
        s *= 1 - d / n
        gw = gw + d / (n * (n - d)) if n > d else np.inf
        out_t.append(t)
        out_s.append(s)
        out_se.append(s * np.sqrt(gw) if np.isfinite(gw) else np.nan)
    return np.array(out_t, float), np.array(out_s), np.array(out_se)


rows_strategy = st.lists(
    st.tuples(st.integers(0, 8), st.integers(0, 3), st.sampled_from(["a", "b", "c"])),
    min_size=1, max_size=60,
)


def frame(rows):
    return pd.DataFrame(rows, columns=["t", "ev", "g"])


# --- invariants --------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(rows=rows_strategy, cause=st.integers(1, 3), level=st.sampled_from([0.8, 0.95, 0.99]))
def test_estimate_bounded_monotone_and_inside_its_interval(rows, cause, level):
    ci = cumulative_incidence(frame(rows), "t", "ev", group="g", conf_level=level, cause=cause)
    assert list(ci.columns) == CI_COLUMNS
    for _, sub in ci.groupby("group", sort=False):
        est = sub["estimate"].to_numpy()
        assert est[0] == 0 and sub["time"].iloc[0] == 0
        assert np.all((est >= 0) & (est <= 1 + 1e-12))
        assert np.all(np.diff(est) >= -1e-12)
        assert np.all(np.diff(sub["time"].to_numpy()[1:]) > 0)
    assert np.all(ci["std_error"] >= 0)
    assert np.all(ci["conf_low"] <= ci["estimate"] + 1e-12)
    assert np.all(ci["estimate"] <= ci["conf_high"] + 1e-12)
    assert np.all((ci["conf_low"] >= 0) & (ci["conf_high"] <= 1))
    # counts add up: every row of a group appears once as an event, competing event or censoring
    counts = ci.groupby("group")[["n_event", "n_competing", "n_censor"]].sum().sum(axis=1)
    assert counts.to_dict() == frame(rows)["g"].value_counts().to_dict()


@settings(max_examples=150, deadline=None)
@given(rows=rows_strategy)
def test_incidences_of_all_causes_plus_overall_km_sum_to_one(rows):
    df = frame(rows)
    total = sum(cumulative_incidence(df, "t", "ev", cause=k)["estimate"].to_numpy() for k in (1, 2, 3))
    t, s, _ = km_by_hand(df["t"].tolist(), (df["ev"] > 0).tolist())
    np.testing.assert_allclose(total[1:] + s, 1.0, atol=1e-12)
    np.testing.assert_array_equal(cumulative_incidence(df, "t", "ev")["time"].to_numpy()[1:], t)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 1)), min_size=1, max_size=60))
def test_without_competing_events_cif_is_one_minus_km_with_greenwood_se(rows):
    df = pd.DataFrame(rows, columns=["t", "ev"])
    ci = cumulative_incidence(df, "t", "ev").iloc[1:]
    _, s, se = km_by_hand(df["t"].tolist(), (df["ev"] == 1).tolist())
    np.testing.assert_allclose(ci["estimate"].to_numpy(), 1 - s, atol=1e-12)
    # The infinitesimal-jackknife SE of 1 - KM is Greenwood's (where that is finite).
    ok = np.isfinite(se)
    np.testing.assert_allclose(ci["std_error"].to_numpy()[ok], se[ok], rtol=1e-9, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(rows=rows_strategy, seed=st.integers(0, 2**32 - 1), with_entry=st.booleans())
def test_row_order_does_not_matter(rows, seed, with_entry):
    df = frame(rows)
    kw = {}
    if with_entry:
        df = df.assign(t=df["t"] + 1, s=(df["t"] * 0.5).round())
        kw = {"entry": "s"}
    a = cumulative_incidence(df, "t", "ev", group="g", **kw)
    b = cumulative_incidence(df.sample(frac=1, random_state=seed % 2**31).reset_index(drop=True), "t", "ev",
                             group="g", **kw)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-15)


@settings(max_examples=100, deadline=None)
@given(rows=rows_strategy)
def test_entry_at_zero_equals_no_entry(rows):
    """The delayed-entry variance (summed influences) equals the closed form when nobody enters late."""
    df = frame(rows).assign(t=lambda d: d["t"] + 1, zero=0.0)
    a = cumulative_incidence(df, "t", "ev", group="g")
    b = cumulative_incidence(df, "t", "ev", group="g", entry="zero")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy, seed=st.integers(0, 1000))
def test_gray_statistic_does_not_depend_on_row_order_or_labels(rows, seed):
    df = frame(rows)
    if df["g"].nunique() < 2:
        return
    a = gray_test(df, "t", "ev", "g", cause=None)
    relabel = {"a": "z", "b": "y", "c": "x"}
    b = gray_test(df.sample(frac=1, random_state=seed).assign(g=lambda d: d["g"].map(relabel)), "t", "ev", "g",
                  cause=None)
    np.testing.assert_allclose(a["statistic"], b["statistic"], rtol=1e-8, atol=1e-10)
    assert np.all((a["p_value"].isna()) | ((a["p_value"] >= 0) & (a["p_value"] <= 1)))


# --- values and behaviour ----------------------------------------------------------------------


def test_hand_computed_values_with_ties():
    # t=2: 1 event of interest, 1 competing, 1 censored, all at risk (n = 5).
    df = pd.DataFrame({"t": [1, 2, 2, 2, 3, 4], "ev": [2, 1, 2, 0, 1, 0]})
    ci = cumulative_incidence(df, "t", "ev")
    np.testing.assert_array_equal(ci["n_risk"], [6, 6, 5, 2, 1])
    # F(2) = S(2-) * 1/5 = (5/6)(1/5); S(2) = (5/6)(3/5) = 1/2; F(3) = F(2) + (1/2)(1/2)
    np.testing.assert_allclose(ci["estimate"], [0, 0, 1 / 6, 1 / 6 + 1 / 4, 1 / 6 + 1 / 4])
    assert ci[["n_event", "n_competing", "n_censor"]].iloc[2].tolist() == [1, 1, 1]


def test_ties_are_deterministic_no_jitter():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"t": rng.integers(1, 4, 300), "ev": rng.integers(0, 3, 300)})
    a = cumulative_incidence(df, "t", "ev")
    b = cumulative_incidence(df, "t", "ev")
    pd.testing.assert_frame_equal(a, b)
    assert a["time"].tolist() == [0.0, 1.0, 2.0, 3.0]  # no jittered times


def test_group_none_is_labelled_all_and_dtype_is_kept():
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "ev": [1, 0, 2, 1, 0, 1],
                       "tier": pd.Categorical(["severe", "mild", "normal"] * 2,
                                              categories=["normal", "mild", "severe"], ordered=True),
                       "n": [3, 1, 2, 3, 1, 2]})
    assert set(cumulative_incidence(df, "t", "ev")["group"]) == {"all"}
    ci = cumulative_incidence(df, "t", "ev", group="tier")
    assert isinstance(ci["group"].dtype, pd.CategoricalDtype)
    assert ci["group"].cat.ordered and list(ci["group"].cat.categories) == ["normal", "mild", "severe"]
    assert list(pd.unique(ci["group"].astype(str))) == ["normal", "mild", "severe"]
    ci_n = cumulative_incidence(df, "t", "ev", group="n")
    assert ci_n["group"].dtype == df["n"].dtype and list(pd.unique(ci_n["group"])) == [1, 2, 3]


def test_bool_event_and_float_codes_accepted():
    df = pd.DataFrame({"t": [1.5, 2.0, 3.0], "ev": [True, False, True]})
    a = cumulative_incidence(df, "t", "ev")
    b = cumulative_incidence(df.assign(ev=df["ev"].astype(float)), "t", "ev")
    pd.testing.assert_frame_equal(a, b)


def test_delayed_entry_risk_sets():
    # at risk at t when entry < t <= duration
    df = pd.DataFrame({"t": [2, 3, 4, 5], "ev": [1, 2, 1, 0], "s": [0, 2, 0, 4]})
    ci = cumulative_incidence(df, "t", "ev", entry="s")
    assert ci["n_risk"].tolist() == [2, 2, 2, 1, 1]


def test_gray_test_shape_and_no_event_cause():
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"t": rng.integers(1, 30, 400), "ev": rng.integers(0, 3, 400), "g": rng.choice(list("xyz"), 400)})
    res = gray_test(df, "t", "ev", "g")
    assert list(res.columns) == GRAY_COLUMNS == ["test", "outcome", "term", "statistic", "df", "p_value"]
    assert res["outcome"].tolist() == [1] and res["df"].tolist() == [2]
    assert res["test"].tolist() == ["gray"] and res["term"].tolist() == ["g"]
    none = gray_test(df, "t", "ev", "g", cause=7)  # no event of code 7: singular variance
    assert np.isnan(none["statistic"].iloc[0]) and np.isnan(none["p_value"].iloc[0])
    both = gray_test(df, "t", "ev", "g", cause=[2, 1])
    assert both["outcome"].tolist() == [2, 1]


def test_plot_draws_a_note_instead_of_curves_when_nothing_can_be_shown():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # 8 persons: at most 8 at risk (4 per group).
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6, 7, 8], "ev": [1, 2, 1, 0, 1, 2, 1, 0], "g": list("abab") * 2})
    ci = cumulative_incidence(df, "t", "ev", group="g")
    assert ci["n_risk"].max() == 4
    note_k = "not drawn: too few persons or events to show without disclosing counts below {}"
    cases = [
        (ci.iloc[:0], {}, "not drawn: no finite estimate to show"),
        (pd.DataFrame(columns=CI_COLUMNS), {"min_cell_count": 10}, note_k.format(10)),
        (ci.assign(time=np.nan, estimate=np.nan, conf_low=np.nan, conf_high=np.nan), {},
         "not drawn: no finite estimate to show"),
        (ci, {"min_cell_count": 5}, note_k.format(5)),
        (ci, {"min_cell_count": 100_000}, note_k.format(100_000)),
    ]
    for table, kwargs, note in cases:
        fig, ax = plt.subplots()
        out = plot_cumulative_incidence(table, ax=ax, title="CIF", **kwargs)
        assert out is ax and [t.get_text() for t in ax.texts] == [note]
        assert not ax.get_lines() and not ax.collections and ax.get_title() == "CIF"
        fig.canvas.draw()
        plt.close(fig)
    # 4 at risk shown at k = 4: the curves are drawn.
    ax = plot_cumulative_incidence(ci, min_cell_count=4, risk_table=False)
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"] and not ax.texts
    plt.close("all")


def test_plot_returns_axes_with_one_curve_per_group():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6, 7, 8], "ev": [1, 2, 1, 0, 1, 2, 1, 0], "g": list("abab") * 2})
    fig, ax = plt.subplots()
    out = plot_cumulative_incidence(cumulative_incidence(df, "t", "ev", group="g"), ax=ax, conf_int=True)
    assert out is ax and [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    assert ax.get_xlabel() == "time" and ax.get_legend().get_title().get_text() == ""
    plot_cumulative_incidence(cumulative_incidence(df, "t", "ev", group="g"), ax=ax, xlabel="years",
                              legend_title="tier")
    assert ax.get_xlabel() == "years" and ax.get_legend().get_title().get_text() == "tier"
    plt.close(fig)


# --- bad input -----------------------------------------------------------------------------------

BASE = pd.DataFrame({"t": [1.0, 2.0, 3.0], "ev": [0, 1, 2], "g": ["a", "b", "a"], "s": [0.0, 0.0, 1.0]})


@pytest.mark.parametrize("change,kwargs,match", [
    ({"t": [-1.0, 2.0, 3.0]}, {}, "must be >= 0"),
    ({"t": [np.inf, 2.0, 3.0]}, {}, "finite"),
    ({"t": ["x", 2.0, 3.0]}, {}, "numeric"),
    ({"ev": [0, 1, -1]}, {}, "event codes"),
    ({"ev": [0, 1.5, 2]}, {}, "event codes"),
    ({"s": [0.0, 2.0, 1.0]}, {"entry": "s"}, "entry < duration"),
    ({}, {"group": "gg"}, "not found"),
    ({}, {"conf_level": 95}, "conf_level"),
    ({}, {"cause": 0}, "cause"),
])
def test_bad_input_raises(change, kwargs, match):
    df = BASE.assign(**change)
    with pytest.raises(NeutrostatsError, match=match):
        cumulative_incidence(df, "t", "ev", **kwargs)


def test_missing_columns_and_non_dataframe():
    with pytest.raises(NeutrostatsError, match="'time'"):
        cumulative_incidence(BASE, "time", "ev")
    with pytest.raises(NeutrostatsError, match="DataFrame"):
        cumulative_incidence(BASE.to_dict(), "t", "ev")
    with pytest.raises(NeutrostatsError, match="no rows"):
        cumulative_incidence(BASE.iloc[:0], "t", "ev")


def test_gray_test_bad_input():
    with pytest.raises(NeutrostatsError, match="at least two groups"):
        gray_test(BASE.assign(g="a"), "t", "ev", "g")
    with pytest.raises(NeutrostatsError, match="not found"):
        gray_test(BASE, "t", "ev", "g", strata="site")
    with pytest.raises(NeutrostatsError, match="event codes"):
        gray_test(BASE.assign(ev=[0, 1, 9.5]), "t", "ev", "g")
    # A missing stratum is a missing value like any other: complete cases, counted and announced.
    with pytest.warns(DataQualityWarning, match=r"gray_test: 1 of 3 rows.*'site' 1"):
        res = gray_test(BASE.assign(site=[None, "n", "s"]), "t", "ev", "g", strata="site")
    assert res.attrs["n_missing"] == 1
