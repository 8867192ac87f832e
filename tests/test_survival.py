"""Kaplan-Meier and log-rank: invariants (hypothesis), hand-checkable values,
plots and bad input. The comparison with R is in test_survival_r.py."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrostats import NeutrostatsError
from neutrostats.plotting import plot_km
from neutrostats.stats.survival import (
    KM_COLUMNS,
    at_risk_table,
    kaplan_meier,
    logrank_test,
    restricted_mean_survival,
    survival_at,
)

rows = st.lists(st.tuples(st.integers(1, 30), st.booleans(), st.sampled_from("abc")), min_size=1, max_size=80)


def _frame(rs):
    return pd.DataFrame(rs, columns=["t", "e", "g"]).astype({"t": float})


@settings(max_examples=80, deadline=None)
@given(rs=rows, conf_type=st.sampled_from(["log-log", "log", "plain"]), seed=st.integers(0, 10_000))
def test_km_invariants(rs, conf_type, seed):
    df = _frame(rs)
    km = kaplan_meier(df, "t", "e", "g", conf_type=conf_type)
    assert list(km.columns) == KM_COLUMNS
    for _, part in km.groupby("group"):
        s = part["estimate"].to_numpy()
        assert np.all((s >= 0) & (s <= 1)) and np.all(np.diff(s) <= 1e-15)  # non-increasing in [0, 1]
        lo, hi = part["conf_low"].to_numpy(), part["conf_high"].to_numpy()
        ok = ~np.isnan(lo)
        assert np.all(lo[ok] <= s[ok] + 1e-12) and np.all(s[ok] <= hi[ok] + 1e-12)
        # Everyone leaves the risk set once.
        assert part["n_event"].sum() + part["n_censor"].sum() == part["n_risk"].iloc[0]
    shuffled = kaplan_meier(df.sample(frac=1, random_state=seed), "t", "e", "g", conf_type=conf_type)
    pd.testing.assert_frame_equal(km, shuffled)


def test_without_censoring_km_is_the_empirical_survival():
    t = np.array([3.0, 1, 4, 1, 5, 9, 2, 6])
    km = kaplan_meier(pd.DataFrame({"t": t, "e": 1}), "t", "e")
    for _, r in km.iterrows():
        assert r["estimate"] == pytest.approx(np.mean(t > r["time"]))


def test_greenwood_by_hand():
    df = pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0]})
    km = kaplan_meier(df, "t", "e").set_index("time")
    # var S(2) = S^2 (1/(5*4) + 1/(4*3))
    assert km.loc[2.0, "std_error"] == pytest.approx(0.6 * np.sqrt(1 / 20 + 1 / 12))


def test_survival_at_beyond_follow_up_and_rmst_by_hand():
    df = pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0]})
    at = survival_at(df, "t", "e", times=[0, 3.5, 10])
    assert at["estimate"].tolist()[:2] == pytest.approx([1.0, 0.3])
    assert np.isnan(at["estimate"].iloc[2]) and at["n_risk"].tolist() == [5, 1, 0]
    rm = restricted_mean_survival(df, "t", "e", horizon=2.5)
    assert list(rm.columns) == ["group", "time", "estimate", "std_error", "conf_low", "conf_high"]
    assert rm["estimate"].iloc[0] == pytest.approx(1 + 0.8 + 0.6 * 0.5) and rm["time"].iloc[0] == 2.5
    with pytest.raises(NeutrostatsError, match="horizon"):
        restricted_mean_survival(df, "t", "e", horizon=0)


def test_delayed_entry_changes_the_risk_set():
    df = pd.DataFrame({"t": [2.0, 3, 4, 5], "e": [1, 1, 1, 1], "s": [0.0, 0, 2.5, 0]})
    km = kaplan_meier(df, "t", "e", entry="s").set_index("time")
    # At t=2 three are at risk (the third enters at 2.5); at t=3 three again.
    assert km.loc[2.0, "n_risk"] == 3 and km.loc[3.0, "n_risk"] == 3
    assert km.loc[3.0, "estimate"] == pytest.approx((2 / 3) * (2 / 3))
    with pytest.raises(NeutrostatsError, match="entry"):
        kaplan_meier(df.assign(s=[0, 0, 5, 0]), "t", "e", entry="s")


def test_tier_order_kept():
    tiers = ["normal", "mild", "severe"]
    df = pd.DataFrame({"t": [1.0, 2, 3, 4, 5, 6], "e": 1,
                       "tier": pd.Categorical(["severe", "mild", "normal"] * 2, categories=tiers, ordered=True)})
    km = kaplan_meier(df, "t", "e", "tier")
    assert list(pd.unique(km["group"].astype(str))) == tiers and km["group"].dtype.ordered


def test_logrank_identical_groups_and_errors():
    df = pd.DataFrame({"t": [1.0, 2, 3, 4] * 2, "e": 1, "g": ["a"] * 4 + ["b"] * 4})
    r = logrank_test(df, "t", "e", "g")
    assert r.statistic == pytest.approx(0.0, abs=1e-12) and r.p_value == pytest.approx(1.0)
    assert r.table["observed"].tolist() == r.table["expected"].tolist()
    with pytest.raises(NeutrostatsError, match="two groups"):
        logrank_test(df[df["g"] == "a"], "t", "e", "g")
    with pytest.raises(NeutrostatsError, match="scores"):
        logrank_test(df, "t", "e", "g", trend=True, scores=[1, 2, 3])


def test_logrank_tidy_is_the_test_shape():
    # Two groups, one death each at t = 1 (a) and t = 2 (b): at t = 1 both at risk, E_a = 1/2, V = 1/4;
    # at t = 2 only b: E_a = 0. O_a - E_a = 1/2, chi-square (1/2)^2 / (1/4) = 1 on 1 df.
    df = pd.DataFrame({"t": [1.0, 2.0], "e": [1, 1], "g": ["a", "b"]})
    tidy = logrank_test(df, "t", "e", "g").tidy()
    assert list(tidy.columns) == ["test", "outcome", "term", "statistic", "df", "p_value"]
    assert tidy.iloc[0][["test", "outcome", "term", "df"]].tolist() == ["logrank", "e", "g", 1]
    assert tidy.loc[0, "statistic"] == pytest.approx(1.0, rel=1e-12)
    assert tidy.loc[0, "p_value"] == pytest.approx(0.31731050786291415, rel=1e-12)  # P(chi2_1 > 1)
    trend = logrank_test(df, "t", "e", "g", trend=True).tidy()
    assert trend.loc[0, "test"] == "logrank_trend"


@pytest.mark.parametrize(
    "frame, kwargs, match",
    [
        (pd.DataFrame({"t": [-1.0], "e": [1]}), {}, ">= 0"),
        (pd.DataFrame({"t": [1.0], "e": [2]}), {}, "0/1"),
        (pd.DataFrame({"t": [1.0], "e": [1]}), {"conf_type": "arcsin"}, "conf_type"),
        (pd.DataFrame({"t": [1.0], "e": [1]}), {"conf_level": 1.5}, "conf_level"),
    ],
)
def test_bad_input(frame, kwargs, match):
    with pytest.raises(NeutrostatsError, match=match):
        kaplan_meier(frame, "t", "e", **kwargs)
    with pytest.raises(NeutrostatsError, match="'dur'"):
        kaplan_meier(frame, "dur", "e")


def test_plot_km_with_risk_table_and_suppression():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"t": rng.exponential(3, 60).round(1) + 0.1, "e": rng.random(60) < 0.7,
                       "g": ["a"] * 50 + ["b"] * 10})
    km = kaplan_meier(df, "t", "e", "g")
    ax = plot_km(km, times=[0, 2, 4], min_cell_count=5, title="KM")
    table = at_risk_table(km, [0, 2, 4], min_cell_count=5)
    texts = [t.get_text() for t in ax.texts]
    # The plotted numbers are the table's, small ones replaced by "<5".
    for _, r in table.iterrows():
        assert (f"<5" if r["suppressed"] else str(int(r["n_risk"]))) in texts
    assert table.loc[table["suppressed"], "n_risk"].isna().all()
    assert list(ax.get_xticks()) == [0, 2, 4]
    plt.close("all")


NOTE_K = "not drawn: too few persons or events to show without disclosing counts below {}"


def _curve_artists(ax):
    return len(ax.get_lines()) + len(ax.collections)


def test_plot_km_draws_a_note_instead_of_crashing_when_nothing_can_be_shown():
    # 5 persons: every number at risk is at most 5.
    km = kaplan_meier(pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0], "g": "a"}), "t", "e", "g")
    empty = km.iloc[:0]
    all_nan = km.assign(time=np.nan, estimate=np.nan, conf_low=np.nan, conf_high=np.nan)
    hidden = at_risk_table(km, [0, 2, 4], min_cell_count=100_000)
    assert hidden.loc[hidden["n_risk"].notna(), "n_risk"].eq(0).all()  # only the 0 past the end is shown
    cases = [
        (empty, {}, "not drawn: no finite estimate to show"),
        (pd.DataFrame(columns=KM_COLUMNS), {"min_cell_count": 10}, NOTE_K.format(10)),
        (all_nan, {}, "not drawn: no finite estimate to show"),
        (km, {"min_cell_count": 100_000}, NOTE_K.format(100_000)),
        (km, {"min_cell_count": 6}, NOTE_K.format(6)),  # 5 at risk at most, all below 6
        (km, {"min_cell_count": 100_000, "at_risk": hidden}, NOTE_K.format(100_000)),
        (empty, {"min_cell_count": 100_000, "at_risk": hidden}, NOTE_K.format(100_000)),
    ]
    for table, kwargs, note in cases:
        fig, ax = plt.subplots()
        out = plot_km(table, ax=ax, title="KM", xlabel="years", **kwargs)
        assert out is ax
        assert [t.get_text() for t in ax.texts] == [note], kwargs
        assert _curve_artists(ax) == 0 and ax.get_title() == "KM" and ax.get_xlabel() == "years"
        fig.canvas.draw()  # the limits are finite: rendering works
        plt.close(fig)
    # Without ax= it makes its own figure; one count of 5 shown at k = 5 keeps the curve.
    ax = plot_km(km, min_cell_count=5, times=[0])
    assert _curve_artists(ax) > 0 and [t.get_text() for t in ax.texts] == ["Number at risk", "a", "5"]
    # A 5 hidden only so that a hidden 3 cannot be worked back is hidden all the same: no curve.
    complementary = pd.DataFrame({"group": ["a", "a"], "time": [0.0, 2.0], "n_risk": pd.array([pd.NA, pd.NA], "Int64"),
                                  "suppressed": [True, True]})
    ax = plot_km(km, min_cell_count=5, at_risk=complementary)
    assert [t.get_text() for t in ax.texts] == [NOTE_K.format(5)] and _curve_artists(ax) == 0
    # The table plot_km computes itself: the note exactly when it shows no positive count.
    seen = set()
    for times in ([0, 2], [0, 3], [0, 5]):  # 5 and 3, 5 and 2, 5 and 0 at risk
        table = at_risk_table(km, times, min_cell_count=5)
        ax = plot_km(km, min_cell_count=5, times=times)
        nothing = not (~table["suppressed"] & (table["n_risk"].fillna(0) > 0)).any()
        assert ([t.get_text() for t in ax.texts] == [NOTE_K.format(5)]) == nothing, times
        assert (_curve_artists(ax) == 0) == nothing and ax.get_legend() is None
        seen.add(nothing)
        plt.close("all")
    assert seen == {True, False}
    ax = plot_km(empty)
    assert [t.get_text() for t in ax.texts] == ["not drawn: no finite estimate to show"]
    plt.close("all")


def test_survival_at_past_the_end_of_a_curve_that_reached_zero():
    # Two persons, both dead by t = 2: S = 0 from t = 2 on, so S(3) = 0 and mortality 1 (not unknown);
    # with the last person censored at 2 instead, S(3) is unknown (beyond the follow-up).
    dead = survival_at(pd.DataFrame({"t": [1, 2], "e": [1, 1]}), "t", "e", times=[3])
    assert dead["estimate"].iloc[0] == 0 and dead["mortality"].iloc[0] == 1 and dead["n_risk"].iloc[0] == 0
    censored = survival_at(pd.DataFrame({"t": [1, 2], "e": [1, 0]}), "t", "e", times=[3])
    assert np.isnan(censored["estimate"].iloc[0])


def test_many_groups_each_get_their_own_curve():
    # 20 groups (past the 16 that are split by one mask each), rows interleaved across groups; group j
    # is the hand example t = 1, 2, 2, 3, 4 (deaths at 1, 2, 3) with its times multiplied by j + 1:
    # S = 4/5, 3/5, 3/10, 3/10 at those times, 5, 5, 4, 2, 1 at risk.
    k = 20
    base_t, base_e = [1, 2, 2, 3, 4], [1, 1, 0, 1, 0]
    rows = [(float(t * (j + 1)), e, j) for t, e in zip(base_t, base_e) for j in range(k)]
    df = pd.DataFrame(rows, columns=["t", "e", "g"])
    # categories in reverse order, five of them never used
    df["cat"] = pd.Categorical(df["g"], categories=list(range(k + 5))[::-1])
    for col, order in (("g", list(range(k))), ("cat", list(range(k))[::-1])):
        km = kaplan_meier(df, "t", "e", col)
        assert list(pd.unique(km["group"])) == order
        for j in order:
            part = km[km["group"] == j]
            assert part["time"].tolist() == [0.0] + [float(t * (j + 1)) for t in [1, 2, 3, 4]]
            assert part["n_risk"].tolist() == [5, 5, 4, 2, 1]
            assert part["estimate"].tolist() == pytest.approx([1, 0.8, 0.6, 0.3, 0.3])
    # The same pattern at the same times in every group: observed = expected = 3 deaths each, chi-square 0.
    same = pd.DataFrame([(float(t), e, j) for t, e in zip(base_t, base_e) for j in range(k)], columns=["t", "e", "g"])
    r = logrank_test(same, "t", "e", "g")
    assert r.df == k - 1 and r.statistic == pytest.approx(0.0, abs=1e-9)
    assert r.table["observed"].tolist() == [3.0] * k and r.table["expected"].tolist() == pytest.approx([3.0] * k)


def test_stratified_logrank_with_a_group_missing_from_a_stratum():
    # Stratum s1: one death in a at t = 1 and one in b at t = 2 (chi-square 1 on its own, see
    # test_logrank_tidy_is_the_test_shape). Stratum s2 holds only group a: there O_a = E_a and the
    # variance is 0, so the stratified statistic is still 1, with O_a = 1 + 2 deaths.
    df = pd.DataFrame({"t": [1.0, 2, 1, 3, 5], "e": [1, 1, 1, 1, 0], "g": ["a", "b", "a", "a", "a"],
                       "s": ["s1", "s1", "s2", "s2", "s2"]})
    r = logrank_test(df, "t", "e", "g", strata="s")
    assert r.statistic == pytest.approx(1.0) and r.df == 1 and r.method == "logrank_stratified"
    assert r.table["observed"].tolist() == [3.0, 1.0]
    assert r.table["expected"].tolist() == pytest.approx([2.5, 1.5])


def test_minus_zero_duration_is_time_zero():
    # -0.0 passes the check duration >= 0 and is the same time as 0.0: one distinct time 0 with 4 at
    # risk, 1 death and 1 censored (S = 3/4), then 2 at risk at t = 1 with 1 death (S = 3/8).
    df = pd.DataFrame({"t": [-0.0, 0.0, 1.0, 2.0], "e": [1, 0, 1, 0]})
    km = kaplan_meier(df, "t", "e")
    assert km["time"].tolist() == [0.0, 0.0, 1.0, 2.0] and km["n_risk"].tolist() == [4, 4, 2, 1]
    assert km["n_event"].tolist() == [0, 1, 1, 0] and km["n_censor"].tolist() == [0, 1, 0, 1]
    assert km["estimate"].tolist() == pytest.approx([1, 0.75, 0.375, 0.375])
