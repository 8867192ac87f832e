"""Person-time rates, rate ratios, Poisson regression, Lexis splitting and SIR: hand calculations, refusals, invariants.

The comparisons with R are in ``test_rates_r.py``; here every expected value is
worked out by hand in the test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from neutrostats.errors import DataQualityWarning, NeutrostatsError, SeparationWarning
from neutrostats.stats.rates import (
    RATE_COLUMNS,
    RATE_RATIO_COLUMNS,
    SIR_COLUMNS,
    incidence_rates,
    poisson_regression,
    rate_ratios,
    sir,
    split_follow_up,
    standardized_incidence_ratio,
)
from neutrostats.synthetic import EXAMPLE_REFERENCE_BREAKS, example_reference_rates

TIERS = ["normal", "subnormal", "mild", "moderate_severe"]


def _tiers(values):
    return pd.Categorical(values, categories=TIERS, ordered=True)


def _cohort():
    """Six persons shaped like build_cohort's table (outcome hm, death); moderate_severe has nobody."""
    return pd.DataFrame({
        "person_id": [1, 2, 3, 4, 5, 6],
        "tier": _tiers(["normal", "normal", "normal", "subnormal", "subnormal", "mild"]),
        "age_at_index": [50.0, 61.0, 70.0, 45.0, 80.0, 66.0],
        "sex": ["F", "M", "F", "M", "F", "M"],
        "index_date": pd.to_datetime(["2005-01-01", "2008-07-01", "2009-06-01", "2010-01-01", "2001-01-01",
                                      "2012-03-01"]),
        "hm_prevalent": [False, False, True, False, False, False],
        "hm": pd.array([False, True, pd.NA, False, True, False], dtype="boolean"),
        "hm_time": pd.array([4.0, 1.5, pd.NA, 4.0, 0.5, 2.0], dtype="Float64"),
        # person 6 dies at 2.0 before any diagnosis: status 2 (competing), no event
        "hm_status": pd.array([0, 1, pd.NA, 0, 1, 2], dtype="Int8"),
        "death": [False, True, True, False, True, True],
        "death_time": [10.0, 3.0, 2.0, 6.0, 0.5, 2.0],
    })


# --- incidence_rates ------------------------------------------------------------------------


def test_rates_of_a_cohort_outcome_by_hand():
    r = incidence_rates(_cohort(), "hm")
    assert list(r.columns) == RATE_COLUMNS
    assert isinstance(r["group"].dtype, pd.CategoricalDtype) and list(r["group"]) == TIERS
    # normal: persons 1, 2 (3 prevalent): 1 event in 4 + 1.5 = 5.5 py -> 181.818... per 1000
    n = r.set_index("group")
    assert n.loc["normal", "n"] == 2 and n.loc["normal", "n_event"] == 1
    assert n.loc["normal", "person_years"] == 5.5 and n.loc["normal", "estimate"] == pytest.approx(1000 / 5.5)
    # subnormal: 1 event in 4.5 py; mild: status 2 is not the outcome, 0 in 2 py
    assert n.loc["subnormal", "estimate"] == pytest.approx(1000 / 4.5)
    assert n.loc["mild", "n_event"] == 0 and n.loc["mild", "estimate"] == 0
    # Garwood upper limit without events: chi2(0.975; 2)/2 = -log(0.025) = 3.68888, over 2 py
    assert n.loc["mild", "conf_low"] == 0
    assert n.loc["mild", "conf_high"] == pytest.approx(-math.log(0.025) / 2 * 1000, rel=1e-10)
    # an empty tier: a row, not estimable, no division by zero
    assert not n.loc["moderate_severe", "estimable"] and np.isnan(n.loc["moderate_severe", "estimate"])
    assert n.loc["moderate_severe", "note"] == "no rows in this group"
    assert r.attrs["n_prevalent"] == 1 and r.attrs["n_missing"] == 0 and r.attrs["per"] == 1000


def test_exact_interval_by_hand():
    # 1 event in 5.5 py: chi2(0.025; 2)/2 = -log(0.975), chi2(0.975; 4)/2
    r = incidence_rates(_cohort(), "hm", per=1).set_index("group").loc["normal"]
    assert r["conf_low"] == pytest.approx(-math.log(0.975) / 5.5, rel=1e-10)
    assert r["conf_high"] == pytest.approx(stats.chi2.ppf(0.975, 4) / 2 / 5.5, rel=1e-10)


def test_death_and_horizon_by_hand():
    r = incidence_rates(_cohort(), "death", by=None, per=1).iloc[0]
    assert r["group"] == "all" and r["n_event"] == 4 and r["person_years"] == 23.5
    # horizon 2.5: deaths at 2.0, 2.0, 0.5 count; 3.0 does not; time capped: 2.5*3 + 2 + 0.5 + 2 = 12.0
    h = incidence_rates(_cohort(), "death", by=None, per=1, horizon=2.5).iloc[0]
    assert h["n_event"] == 3 and h["person_years"] == pytest.approx(12.0)


def test_byar_and_wald_by_hand():
    d = pd.DataFrame({"t": [10.0, 10.0, 10.0, 10.0], "e": [1, 1, 1, 0]})
    z = stats.norm.ppf(0.975)
    b = incidence_rates(d, duration="t", event="e", by=None, per=1, method="byar").iloc[0]
    assert b["conf_low"] == pytest.approx(3 * (1 - 1 / 27 - z / (3 * math.sqrt(3))) ** 3 / 40, rel=1e-12)
    assert b["conf_high"] == pytest.approx(4 * (1 - 1 / 36 + z / 6) ** 3 / 40, rel=1e-12)
    w = incidence_rates(d, duration="t", event="e", by=None, per=1, method="wald").iloc[0]
    assert w["conf_low"] == pytest.approx(3 / 40 * math.exp(-z / math.sqrt(3)), rel=1e-12)


def test_entry_counts_time_from_entry():
    d = pd.DataFrame({"start": [0.0, 2.0], "stop": [3.0, 5.0], "e": [0, 1]})
    r = incidence_rates(d, duration="stop", event="e", entry="start", by=None, per=1).iloc[0]
    assert r["person_years"] == 6.0 and r["estimate"] == pytest.approx(1 / 6)


def test_missing_values_are_counted_and_announced():
    d = _cohort()
    d.loc[0, "death_time"] = np.nan
    with pytest.warns(DataQualityWarning, match="1 of 6 rows left out"):
        r = incidence_rates(d, "death")
    assert r.attrs["n_missing"] == 1 and r["n"].sum() == 5


@pytest.mark.parametrize("kwargs,match", [
    (dict(outcome="death", duration="death_time", event="death"), "not both"),
    (dict(), "nothing to count"),
    (dict(outcome="death", per=0), "per"),
    (dict(outcome="death", method="garwood"), "method must be one of"),
    (dict(outcome="death", horizon=11.0), "beyond the follow-up"),
    (dict(outcome="death", horizon=-1), "horizon"),
    (dict(outcome="death", conf_level=95), "conf_level"),
    (dict(outcome="nothing"), "not found"),
])
def test_incidence_rates_refuses(kwargs, match):
    with pytest.raises(NeutrostatsError, match=match):
        incidence_rates(_cohort(), **kwargs)


def test_bad_values_are_refused():
    d = _cohort()
    with pytest.raises(NeutrostatsError, match="numbers written as text"):
        incidence_rates(d.assign(death_time=d["death_time"].astype(str)), "death")
    with pytest.raises(NeutrostatsError, match=">= 0"):
        incidence_rates(d.assign(death_time=-d["death_time"]), "death")
    with pytest.raises(NeutrostatsError, match="entry < duration"):
        incidence_rates(d.assign(s=d["death_time"]), duration="death_time", event="death", entry="s")
    with pytest.raises(NeutrostatsError, match="0/1"):
        incidence_rates(d.assign(e=2), duration="death_time", event="e")


# --- rate_ratios ----------------------------------------------------------------------------


def test_rate_ratio_edge_cases():
    r = rate_ratios(_cohort(), "hm")
    assert list(r.columns) == RATE_RATIO_COLUMNS and len(r) == 12
    mild = r[(r["group"] == "mild")].set_index(["contrast", "method"])
    # no events in mild: exact ratio 0 with a finite upper limit, Wald undefined
    ex = mild.loc[("ratio", "exact")]
    assert ex["estimate"] == 0 and ex["conf_low"] == 0 and np.isfinite(ex["conf_high"]) and ex["estimable"]
    assert not mild.loc[("ratio", "wald"), "estimable"]
    # x1 = 0 of n = 1: Clopper-Pearson upper 1 - 0.025 = 0.975, mapped to 0.975/0.025 * T0/T1 = 39 * 5.5/2
    assert ex["conf_high"] == pytest.approx(39 * 5.5 / 2, rel=1e-9)
    empty = r[r["group"] == "moderate_severe"]
    assert not empty["estimable"].any() and (empty["note"] == "no person-time in this group").all()
    ref = r[r["is_reference"]]
    assert (ref["group"] == "normal").all() and list(ref["estimate"]) == [1.0, 1.0, 0.0]


def test_rate_ratio_reference_without_events_and_unknown_reference():
    r = rate_ratios(_cohort(), "hm", reference="mild")
    sub = r[(r["group"] == "subnormal") & (r["contrast"] == "ratio")]
    assert not sub["estimable"].any() and sub["note"].str.contains("no events in the reference").all()
    with pytest.raises(NeutrostatsError, match="not a group"):
        rate_ratios(_cohort(), "hm", reference="severe")


# --- split_follow_up ------------------------------------------------------------------------


def test_split_by_hand():
    d = pd.DataFrame({"id": [1, 2], "age_at_index": [58.0, 69.5], "index_date": [2008.5, 2001.0],
                      "t": [5.0, 1.0], "e": [1, 0]})
    s = split_follow_up(d, duration="t", event="e", breaks={"age": [0, 60, 70], "period": [2000, 2010, 2020],
                                                                 "time": [0, 1, 100]})
    # person 1: age 60 at t = 2, 2010 at t = 1.5, time band at t = 1: cuts 1, 1.5, 2; person 2: 70 at t = 0.5
    assert s["id"].tolist() == [1, 1, 1, 1, 2, 2]
    assert s["entry"].tolist() == [0, 1, 1.5, 2, 0, 0.5] and s["exit"].tolist() == [1, 1.5, 2, 5, 0.5, 1]
    assert s["event"].tolist() == [False, False, False, True, False, False]
    assert s["age_band"].astype(object).tolist()[:4] == ["[0,60)", "[0,60)", "[0,60)", "[60,70)"]
    assert s["period"].astype(object).tolist()[:4] == ["[2000,2010)", "[2000,2010)", "[2010,2020)", "[2010,2020)"]
    assert s["time_band"].astype(object).tolist()[:2] == ["[0,1)", "[1,100)"]
    # beyond the last age break: kept, band missing; drop=True removes it and counts it
    assert s["age_band"].isna().tolist() == [False] * 5 + [True]
    assert s["age_band"].cat.ordered and list(s["age_band"].cat.categories) == ["[0,60)", "[60,70)"]
    dropped = split_follow_up(d, duration="t", event="e", breaks={"age": [0, 60, 70]}, drop=True)
    assert len(dropped) == 3 and dropped.attrs["dropped_pieces"] == 1
    assert dropped.attrs["dropped_person_years"] == pytest.approx(0.5)


def test_split_with_a_horizon_before_a_late_entry():
    d = pd.DataFrame({"age_at_index": [50.0, 50.0], "t": [6.0, 3.0], "s": [5.0, 0.0], "e": [1, 1]})
    s = split_follow_up(d, duration="t", event="e", entry="s", breaks={"age": [0, 52, 100]}, horizon=4.0)
    # the first row enters at 5, after the horizon: no piece; the second dies at 3 (age 53)
    assert s["entry"].tolist() == [0.0, 2.0] and s["exit"].tolist() == [2.0, 3.0]
    assert s["event"].tolist() == [False, True] and s.attrs["n_entry_after_horizon"] == 1


def test_split_a_boundary_of_two_scales_at_once_makes_no_empty_piece():
    d = pd.DataFrame({"age_at_index": [59.0], "index_date": [2009.0], "t": [2.0], "e": [0]})
    s = split_follow_up(d, duration="t", event="e", breaks={"age": [0, 60, 90], "period": [2000, 2010, 2020]})
    assert s["entry"].tolist() == [0.0, 1.0] and s["exit"].tolist() == [1.0, 2.0]


def test_split_dates_and_cohort_outcome():
    c = _cohort()
    s = split_follow_up(c, "hm", breaks={"period": pd.to_datetime(["2000-01-01", "2010-01-01", "2020-01-01"])})
    assert list(s["period"].cat.categories) == ["[2000-01-01,2010-01-01)", "[2010-01-01,2020-01-01)"]
    assert s.attrs["n_prevalent"] == 1 and s.attrs["n_persons"] == 5
    # person 2 from 2008-07-01 (2008.4986: 182 of 366 days) for 1.5 years: the split at 2010 is at 1.5014 > 1.5
    assert (s["person_id"] == 2).sum() == 1
    # person 1 from 2005-01-01 (2005.0) for 4 years: no split; person 4 from 2010 stays in the second period
    assert s.loc[s["person_id"] == 4, "period"].astype(str).tolist() == ["[2010-01-01,2020-01-01)"]
    assert int(s["event"].sum()) == 2  # the competing death of person 6 is no event


@pytest.mark.parametrize("breaks,match", [
    ({"age": [0, 60, 50]}, "increasing"),
    ({"age": [60]}, "at least two"),
    ({"calendar": [2000, 2010]}, "time scale"),
    ([0, 60], "mapping"),
])
def test_split_refuses_bad_breaks(breaks, match):
    with pytest.raises(NeutrostatsError, match=match):
        split_follow_up(_cohort(), "death", breaks=breaks)


def test_split_refuses_to_overwrite_columns():
    with pytest.raises(NeutrostatsError, match="overwrite"):
        split_follow_up(_cohort().assign(event=1), "death", breaks={"age": [0, 100]})
    with pytest.raises(NeutrostatsError, match="age_years"):
        split_follow_up(_cohort(), "death", breaks={"age": [0, 100]}, age="age_years")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(st.floats(0, 95), st.floats(1990, 2020), st.floats(0, 20), st.floats(0, 1),
                            st.booleans()), min_size=1, max_size=30),
    age_breaks=st.lists(st.integers(0, 110), min_size=2, max_size=8, unique=True),
    per_breaks=st.lists(st.integers(1985, 2045), min_size=2, max_size=6, unique=True),
)
def test_split_preserves_person_time_and_events(rows, age_breaks, per_breaks):
    age, per, t, frac, ev = map(list, zip(*rows))
    d = pd.DataFrame({"id": np.arange(len(age)), "age_at_index": age, "index_date": per, "t": t,
                      "e": np.array(ev, dtype=int), "s": np.array(frac) * np.array(t)})
    d = d[d["s"] < d["t"]]
    if d.empty:
        return
    breaks = {"age": sorted(float(x) for x in age_breaks), "period": sorted(float(x) for x in per_breaks)}
    s = split_follow_up(d, duration="t", event="e", entry="s", breaks=breaks)
    pt = (s["exit"] - s["entry"]).to_numpy()
    assert np.all(pt > 0)
    assert pt.sum() == pytest.approx((d["t"] - d["s"]).sum(), rel=1e-12, abs=1e-9)
    assert int(s["event"].sum()) == int(d["e"].sum())
    # pieces are contiguous from entry to exit, the event only on the last
    g = s.groupby("id", sort=False)
    assert np.array_equal(g["entry"].first().to_numpy(), d.set_index("id").loc[g["entry"].first().index, "s"])
    assert np.array_equal(g["exit"].last().to_numpy(), d.set_index("id").loc[g["exit"].last().index, "t"])
    assert np.allclose(s["entry"].to_numpy()[1:][s["id"].to_numpy()[1:] == s["id"].to_numpy()[:-1]],
                       s["exit"].to_numpy()[:-1][s["id"].to_numpy()[1:] == s["id"].to_numpy()[:-1]], rtol=0, atol=0)
    not_last = s["id"].duplicated(keep="last").to_numpy()
    assert not s["event"].to_numpy()[not_last].any()
    # each piece lies inside its band (half-open), up to rounding of the cut times
    for scale, col, origin in (("age", "age_band", "age_at_index"), ("period", "period", "index_date")):
        b = np.array(breaks[scale])
        code = s[col].cat.codes.to_numpy()
        ok = code >= 0
        lo, hi = b[code[ok]], b[code[ok] + 1]
        start, stop = s[origin].to_numpy()[ok] + s["entry"].to_numpy()[ok], s[origin].to_numpy()[ok] + \
            s["exit"].to_numpy()[ok]
        assert np.all(start >= lo - 1e-9) and np.all(stop <= hi + 1e-9)


# --- SIR ------------------------------------------------------------------------------------


def _ref():
    return pd.DataFrame({"age_band": ["[0,60)", "[0,60)", "[60,90)", "[60,90)"], "sex": ["F", "M", "F", "M"],
                         "rate": [0.01, 0.02, 0.05, 0.1]})


def test_sir_by_hand():
    d = pd.DataFrame({"age_at_index": [58.0, 70.0, 40.0], "sex": ["F", "M", "M"], "t": [4.0, 1.0, 10.0],
                      "e": [1, 1, 0], "g": ["a", "b", "a"]})
    s = split_follow_up(d, duration="t", event="e", breaks={"age": [0, 60, 90]})
    r = sir(s, _ref(), by="g")
    assert list(r.columns) == SIR_COLUMNS and list(r["group"]) == ["a", "b", "all"]
    # a: 2 y F <60 (0.01) + 2 y F 60+ (0.05) + 10 y M <60 (0.02) = 0.02 + 0.1 + 0.2 = 0.32; b: 1 y M 60+ = 0.1
    assert r["expected"].tolist() == pytest.approx([0.32, 0.1, 0.42])
    assert r["estimate"].tolist() == pytest.approx([1 / 0.32, 10.0, 2 / 0.42])
    # exact: Garwood limits of the count over E; p of poisson.test(1, 0.1) = 1 - P(0) = 1 - exp(-0.1)
    b = r.set_index("group").loc["b"]
    assert b["conf_low"] == pytest.approx(-math.log(0.975) / 0.1, rel=1e-10)
    assert b["p_value"] == pytest.approx(1 - math.exp(-0.1), rel=1e-10)
    assert r.attrs["match"] == ["age_band", "sex"]


def test_sir_refuses_what_would_lose_expected_person_time():
    d = pd.DataFrame({"age_at_index": [58.0, 95.0], "sex": ["F", "X"], "t": [4.0, 1.0], "e": [1, 0]})
    with pytest.raises(NeutrostatsError, match="split the follow-up first"):
        standardized_incidence_ratio(d, _ref(), duration="t", event="e", by=None)
    s = split_follow_up(d, duration="t", event="e", breaks={"age": [0, 60, 90]})
    with pytest.raises(NeutrostatsError, match="outside the breaks"):
        standardized_incidence_ratio(s, _ref(), by=None)
    s = split_follow_up(d, duration="t", event="e", breaks={"age": [0, 60, 120]})
    with pytest.raises(NeutrostatsError, match=r"2 combination.*no reference rate \(3 person-years\).*\[60,120\)"):
        standardized_incidence_ratio(s, _ref(), by=None)
    ok = split_follow_up(d.iloc[[0]], duration="t", event="e", breaks={"age": [0, 60, 90]})
    with pytest.raises(NeutrostatsError, match="sharing"):
        standardized_incidence_ratio(ok, pd.concat([_ref(), _ref()]), by=None)
    with pytest.raises(NeutrostatsError, match=">= 0"):
        standardized_incidence_ratio(ok, _ref().assign(rate=-0.1), by=None)


def test_example_reference_rates_fit_split_follow_up():
    ref = example_reference_rates()
    assert len(ref) == 44 and (ref["rate"] > 0).all() and "NOT real" in ref.attrs["note"]
    d = pd.DataFrame({"age_at_index": [5.0, 99.0], "sex": ["F", "M"], "index_date": [2001.0, 2015.0],
                      "t": [15.0, 4.0], "e": [0, 1]})
    s = split_follow_up(d, duration="t", event="e", breaks=EXAMPLE_REFERENCE_BREAKS)
    assert set(s["age_band"].astype(str)) <= set(ref["age_band"]) and set(s["period"].astype(str)) <= set(
        ref["period"])
    r = sir(s, ref, by=None)
    assert r["estimable"].all()
    # rates are Gompertz: each 10-year band 10 * 0.085 = exp(0.85) times the one below (up to rounding)
    f = ref[(ref["sex"] == "F") & (ref["period"] == "[2000,2010)")]["rate"].to_numpy()
    assert f[1:-1] / f[:-2] == pytest.approx(math.exp(0.85), rel=2e-3)


# --- poisson_regression ---------------------------------------------------------------------


def _counts():
    """Group b: 4 events in 400 py; a: 10 in 2000 py, spread over rows with and without events."""
    rows = [("b", 100.0, 1)] * 4 + [("b", 0.0, 0)] + [("a", 150.0, 1)] * 10 + [("a", 250.0, 0)] * 2
    d = pd.DataFrame(rows, columns=["g", "py", "e"])
    d["g"] = pd.Categorical(d["g"], categories=["a", "b", "c"])
    return d


def test_poisson_regression_without_covariates_is_the_crude_rate_ratio():
    d = _counts()
    r = poisson_regression(d, duration="py", event="e", by="g").set_index("term")
    assert r.loc["b", "estimate"] == pytest.approx(2.0, rel=1e-10)
    assert r.loc["b", "std_error"] == pytest.approx(math.sqrt(1 / 4 + 1 / 10), rel=1e-8)
    assert r.loc["b", "person_years"] == 400 and r.loc["a", "is_reference"]
    assert r.loc["c", "note"] == "no rows in this group"
    assert r.attrs["n_zero_time"] == 1  # the row of 0 py without an event adds nothing


def test_poisson_regression_on_split_pieces_equals_the_unsplit_fit():
    # Same likelihood (a piece's Poisson term only rescales): tier estimates agree exactly.
    c = _cohort()
    whole = poisson_regression(c, "death", by="tier", reference=None).set_index("term")
    s = split_follow_up(c, "death", breaks={"time": [0, 1, 2.5, 5, 20]})
    pieces = poisson_regression(s, duration="exit", event="event", entry="entry").set_index("term")
    assert pieces.loc["subnormal", "estimate"] == pytest.approx(whole.loc["subnormal", "estimate"], rel=1e-8)
    assert pieces.loc["subnormal", "std_error"] == pytest.approx(whole.loc["subnormal", "std_error"], rel=1e-8)


def test_poisson_regression_group_without_events_warns_and_is_not_estimable():
    d = _counts()
    d = pd.concat([d, pd.DataFrame({"g": ["c"], "py": [50.0], "e": [0]})], ignore_index=True)
    d["g"] = pd.Categorical(d["g"], categories=["a", "b", "c"])
    with pytest.warns(SeparationWarning, match="no events"):
        r = poisson_regression(d, duration="py", event="e", by="g").set_index("term")
    assert not r.loc["c", "estimable"] and r.loc["b", "estimate"] == pytest.approx(2.0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(cluster="g"), "variance='robust'"),
    (dict(variance="gee"), "variance must be one of"),
    (dict(reference="c"), "no rows"),
    (dict(adjust=["g"]), "grouping column"),
])
def test_poisson_regression_refuses(kwargs, match):
    with pytest.raises(NeutrostatsError, match=match):
        poisson_regression(_counts(), duration="py", event="e", by="g", **kwargs)


def test_poisson_regression_refuses_an_event_without_time():
    d = _counts()
    d.loc[4, "e"] = 1
    with pytest.raises(NeutrostatsError, match="event but no person-time"):
        poisson_regression(d, duration="py", event="e", by="g")
