"""Behaviour and invariants of the Cox regression code (neutrostats/cox.py).

Agreement with R is in ``test_cox_r.py``; here: the table's layout, the
invariances a Cox model must have (row order, time scale and shift, covariate
shift, splitting follow-up into (start, stop] pieces, duplicated rows as case
weights), degenerate inputs, errors and warnings.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from neutrostats.stats.cox import (
    COX_COLUMNS,
    PH_TEST_COLUMNS,
    CoxConvergenceWarning,
    InfiniteHazardRatioWarning,
    cox_fit,
    cox_hazard_ratios,
    proportional_hazards_test,
)
from neutrostats.errors import DataQualityWarning, NeutrostatsError, NeutrostatsWarning

TIERS = ["normal", "subnormal", "mild", "moderate_severe"]
settings.register_profile("cox", deadline=None, max_examples=30,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("cox")


def cohort(n=600, seed=1, hr=(1.0, 1.4, 2.0, 4.0), probs=(0.55, 0.2, 0.15, 0.1), ties=True):
    rng = np.random.default_rng(seed)
    tier = rng.choice(4, n, p=probs)
    age = np.round(rng.uniform(20, 90, n), 1)
    sex = rng.choice(["F", "M"], n)
    rate = 0.1 * np.asarray(hr)[tier] * np.exp(0.03 * (age - 60) + 0.3 * (sex == "M"))
    t = rng.exponential(1 / rate)
    c = rng.uniform(1, 8, n)
    time = np.minimum(t, c)
    if ties:
        time = np.ceil(time * 12) / 12
    return pd.DataFrame({
        "time": time, "died": (t <= c).astype(int),
        "tier": pd.Categorical(np.array(TIERS)[tier], categories=TIERS, ordered=True),
        "age": age, "sex": sex,
    })


def _every_tier_has_events(df) -> bool:
    return bool(df.groupby("tier", observed=False)["died"].sum().min() > 0)


def fit_table(df, **kw):
    return cox_hazard_ratios(df, "time", "died", adjust=kw.pop("adjust", ["age", "sex"]), **kw)


def assert_same(a, b, rel=1e-9, cols=("estimate", "std_error", "conf_low", "conf_high", "p_value")):
    for c in cols:
        np.testing.assert_allclose(a[c].to_numpy(float), b[c].to_numpy(float), rtol=rel, atol=0, err_msg=c)


# --- layout -----------------------------------------------------------------------------


def test_table_layout_tier_rows_then_covariates():
    df = cohort()
    res = fit_table(df)
    assert list(res.columns) == COX_COLUMNS
    assert list(res["term"]) == [*TIERS, "age", "sex[M]"]
    # Tier rows name their tier in group too; covariate rows have none.
    assert res["group"].tolist()[:4] == TIERS and res["group"].iloc[4:].isna().all()
    ref = res.iloc[0]
    assert ref["is_reference"] and ref["estimate"] == 1.0 and np.isnan(ref["conf_low"])
    assert res["is_reference"].sum() == 1
    tiers = res.iloc[:4]
    assert tiers["n"].sum() == len(df) and tiers["n_event"].sum() == df["died"].sum()
    assert (res.iloc[4:]["n"] == len(df)).all() and (res.iloc[4:]["n_event"] == df["died"].sum()).all()
    est = res.iloc[1:]
    assert ((est["conf_low"] < est["estimate"]) & (est["estimate"] < est["conf_high"])).all()
    assert res.dtypes["n"] == np.int64 and res.dtypes["is_reference"] == bool


def test_reference_tier_choice_inverts_hazard_ratios():
    df = cohort()
    a = fit_table(df).set_index("term")
    b = fit_table(df, reference="mild").set_index("term")
    assert b.loc["mild", "is_reference"] and b.loc["mild", "estimate"] == 1.0
    assert b.loc["normal", "estimate"] == pytest.approx(1 / a.loc["mild", "estimate"], rel=1e-9)
    assert b.loc["moderate_severe", "estimate"] == pytest.approx(
        a.loc["moderate_severe", "estimate"] / a.loc["mild", "estimate"], rel=1e-9)
    assert b.loc["mild", "std_error"] != b.loc["mild", "std_error"]  # NaN
    assert_same(a.loc[["age", "sex[M]"]], b.loc[["age", "sex[M]"]])
    assert list(b.index[:4]) == TIERS  # still tier order


def test_tier_none_and_conf_level():
    df = cohort()
    res = fit_table(df, tier=None)
    assert list(res["term"]) == ["age", "sex[M]"]
    r90 = fit_table(df, conf_level=0.90)
    r95 = fit_table(df)
    assert_same(r90, r95, cols=("estimate", "std_error", "p_value"))
    assert (r90["conf_high"].iloc[1:] < r95["conf_high"].iloc[1:]).all()


def test_covariate_kinds_bool_and_categorical_levels():
    df = cohort()
    df["smoker"] = np.random.default_rng(3).random(len(df)) < 0.3
    df["region"] = np.random.default_rng(4).choice(["south", "east", "north"], len(df))
    res = fit_table(df, adjust=["age", "smoker", "region"])
    assert list(res["term"])[4:] == ["age", "smoker[True]", "region[north]", "region[south]"]


def test_ties_breslow_equals_efron_without_ties():
    df = cohort(ties=False)
    assert_same(fit_table(df), fit_table(df, ties="breslow"), rel=1e-12)
    tied = cohort()
    assert not np.allclose(fit_table(tied)["estimate"].iloc[1:], fit_table(tied, ties="breslow")["estimate"].iloc[1:])


def test_inputs_not_mutated():
    df = cohort()
    before = df.copy()
    fit_table(df, entry=None, strata="sex", adjust=["age"])
    proportional_hazards_test(df, "time", "died", adjust=["age", "sex"])
    pd.testing.assert_frame_equal(df, before)
    X = df[["age"]].to_numpy()
    X0 = X.copy()
    t = df["time"].to_numpy()
    t0 = t.copy()
    cox_fit(t, df["died"], X)
    assert np.array_equal(X, X0) and np.array_equal(t, t0)


def test_complete_cases():
    df = cohort()
    df.loc[[3, 10, 50], "age"] = np.nan
    df.loc[[7], "tier"] = np.nan
    df.loc[[8], "time"] = np.nan
    with pytest.warns(DataQualityWarning, match=r"5 of 600 rows left out.*'time' 1, 'tier' 1, 'age' 3"):
        res = fit_table(df)
    ok = df.dropna(subset=["age", "tier", "time"])
    assert res["n"].iloc[-1] == len(ok) == len(df) - 5
    assert res.attrs["n_missing"] == 5 and res.attrs["missing"] == {"time": 1, "tier": 1, "age": 3}
    assert_same(res, fit_table(ok.reset_index(drop=True)))


# --- invariances ------------------------------------------------------------------------


@given(seed=st.integers(0, 10_000), perm_seed=st.integers(0, 10_000))
def test_row_order_does_not_matter(seed, perm_seed):
    df = cohort(n=150, seed=seed)
    perm = np.random.default_rng(perm_seed).permutation(len(df))
    assert_same(fit_table(df), fit_table(df.iloc[perm]), rel=1e-8)


@given(seed=st.integers(0, 10_000), scale=st.sampled_from([0.25, 1 / 12, 7.0, 365.25, 1000.0]),
       shift=st.sampled_from([0.0, 1.0, 30.5]))
def test_time_scale_and_shift_do_not_matter(seed, scale, shift):
    df = cohort(n=150, seed=seed)
    moved = df.assign(time=df["time"] * scale + shift)
    assert_same(fit_table(df), fit_table(moved), rel=1e-8)


@given(seed=st.integers(0, 10_000), c=st.floats(-100, 100, allow_nan=False))
def test_adding_a_constant_to_a_covariate(seed, c):
    df = cohort(n=150, seed=seed)
    assume(_every_tier_has_events(df))  # else the hazard ratio is infinite (warned about)
    a, b = fit_table(df), fit_table(df.assign(age=df["age"] + c))
    assert_same(a, b, rel=1e-7)


@given(seed=st.integers(0, 10_000), ties=st.sampled_from(["efron", "breslow"]))
def test_splitting_follow_up_into_start_stop_pieces(seed, ties):
    """(0, t] equals (0, c] censored + (c, t] with the event, for any cut c < t."""
    df = cohort(n=120, seed=seed).assign(entry=0.0)
    assume(_every_tier_has_events(df))  # else the hazard ratio is infinite (warned about)
    rng = np.random.default_rng(seed)
    cut = np.round(df["time"] * rng.uniform(0.2, 0.9, len(df)), 3)
    split = cut > 0
    first = df[split].assign(time=cut[split], died=0)
    second = df[split].assign(entry=cut[split])
    pieces = pd.concat([df[~split], first, second], ignore_index=True)
    whole = fit_table(df, ties=ties)
    cut_up = fit_table(pieces, ties=ties, entry="entry")
    assert_same(whole, cut_up, rel=1e-8)


def test_entry_zero_equals_no_entry_and_one_stratum_equals_none():
    df = cohort().assign(entry=-1.0, one="x")
    base = fit_table(df)
    assert_same(base, fit_table(df, entry="entry"), rel=1e-10)
    assert_same(base, fit_table(df, strata="one"), rel=1e-10)


def test_integer_weights_equal_duplicated_rows():
    """With Breslow's ties; Efron's treats a weighted row as one death (as R), not as tied copies."""
    df = cohort(n=200)
    w = np.random.default_rng(5).integers(1, 4, len(df))
    X = np.column_stack([df["age"], df["sex"] == "M"]).astype(float)
    a = cox_fit(df["time"], df["died"], X, weights=w, ties="breslow")
    rep = np.repeat(np.arange(len(df)), w)
    b = cox_fit(df["time"].to_numpy()[rep], df["died"].to_numpy()[rep], X[rep], ties="breslow")
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-9)
    np.testing.assert_allclose(a.var, b.var, rtol=1e-9)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-10)


def test_strata_equal_separate_baselines():
    """Stratifying by sex equals a model whose risk sets never mix the sexes."""
    df = cohort()
    res = fit_table(df, adjust=["age"], strata="sex")
    # Same model by offsetting the men's times far beyond the women's: risk
    # sets of women's deaths then include men, so this must differ ...
    far = df.assign(time=np.where(df["sex"] == "M", df["time"] + 1000, df["time"]))
    assert not np.allclose(res["estimate"].to_numpy(), fit_table(far, adjust=["age"])["estimate"].to_numpy())
    # ... whereas fitting the strata via cox_fit with string labels gives the same as the table.
    X = np.column_stack([(df["tier"] == t).to_numpy(float) for t in TIERS[1:]] + [df["age"].to_numpy()])
    fit = cox_fit(df["time"], df["died"], X, strata=df["sex"])
    np.testing.assert_allclose(np.exp(fit.coef[:3]), res["estimate"].iloc[1:4], rtol=1e-12)


# --- cox_fit ------------------------------------------------------------------------------


def test_cox_fit_result_is_frozen_and_consistent():
    df = cohort()
    X = np.column_stack([df["age"], df["sex"] == "M"]).astype(float)
    fit = cox_fit(df["time"], df["died"], X)
    with pytest.raises(ValueError):
        fit.coef[0] = 1.0
    with pytest.raises(AttributeError):
        fit.iterations = 3  # type: ignore[misc]
    assert fit.n == len(df) and fit.n_events == df["died"].sum()
    assert fit.lr_test.statistic == pytest.approx(2 * (fit.loglik[1] - fit.loglik[0]))
    assert fit.loglik[1] > fit.loglik[0]
    np.testing.assert_allclose(fit.std_error, np.sqrt(np.diag(fit.var)))
    assert np.abs(fit.score).max() < 1e-6
    one = cox_fit(df["time"], df["died"], df["age"])  # a 1-d X is one column
    assert one.coef.shape == (1,)


def test_convergence_warning():
    df = cohort()
    with pytest.warns(CoxConvergenceWarning, match="did not converge"):
        fit = cox_fit(df["time"], df["died"], df[["age"]], max_iter=1)
    assert not fit.converged and fit.iterations == 1


# --- degenerate inputs ------------------------------------------------------------------


def test_tier_without_events_is_not_estimable_with_warning_and_limit_estimates():
    df = cohort(n=800)
    df.loc[df["tier"] == "mild", "died"] = 0
    with pytest.warns(InfiniteHazardRatioWarning, match="mild.*no events.*fewer tiers.*Firth"):
        res = fit_table(df).set_index("term")
    # No HR of 0.00: no number, and the reason.
    assert res.loc["mild", ["estimate", "std_error", "conf_low", "conf_high", "p_value"]].isna().all()
    assert not res.loc["mild", "estimable"] and res.loc["mild", "note"] == "no events in this tier"
    assert res.drop(index="mild")["estimable"].all() and (res.drop(index="mild")["note"] == "").all()
    assert res.loc["mild", "n"] == (df["tier"] == "mild").sum() and res.loc["mild", "n_event"] == 0
    # The other estimates are the limit: the fit without the no-event tier.
    rest = df[df["tier"] != "mild"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        other = fit_table(rest).set_index("term")
    assert_same(res.loc[["subnormal", "moderate_severe", "age", "sex[M]"]],
                other.loc[["subnormal", "moderate_severe", "age", "sex[M]"]], rel=1e-10)
    # The PH test leaves the tier out too, with the same warning.
    with pytest.warns(InfiniteHazardRatioWarning):
        ph = proportional_hazards_test(df, "time", "died", adjust=["age"])
    assert ph.loc[ph["term"] == "tier", "df"].item() == 2


def test_tier_without_persons_is_nan_without_warning():
    df = cohort()
    df = df[df["tier"] != "subnormal"]
    res = fit_table(df).set_index("term")
    assert res.loc["subnormal", "n"] == 0 and np.isnan(res.loc["subnormal", "estimate"])
    assert not res.loc["subnormal", "estimable"] and res.loc["subnormal", "note"] == "no persons in this tier"


def test_estimable_and_note_columns_come_last():
    assert COX_COLUMNS[-2:] == ["estimable", "note"]
    res = fit_table(cohort())
    assert res.dtypes["estimable"] == bool and res["estimable"].all() and (res["note"] == "").all()


def test_reference_without_events_gives_no_hazard_ratio_but_the_limit_covariates():
    df = cohort(n=800)
    df.loc[df["tier"] == "normal", "died"] = 0
    with pytest.warns(InfiniteHazardRatioWarning, match="reference tier 'normal' has no events.*reference="):
        res = fit_table(df).set_index("term")
    tiers = res.loc[TIERS]
    # Every HR against a reference without events is infinite: no number anywhere.
    assert tiers.loc[TIERS[1:], ["estimate", "std_error", "conf_low", "conf_high", "p_value"]].isna().all().all()
    assert not tiers["estimable"].any()
    assert (tiers["note"] == "no events in the reference tier").all()
    assert tiers.loc["normal", "is_reference"] and tiers.loc["normal", "n_event"] == 0
    # The covariates are the limit: the reference persons leave every risk set.
    rest = df[df["tier"] != "normal"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        other = fit_table(rest, reference="subnormal").set_index("term")
    assert_same(res.loc[["age", "sex[M]"]], other.loc[["age", "sex[M]"]], rel=1e-10)
    assert res.loc[["age", "sex[M]"], "estimable"].all()
    # The PH test does not depend on the reference: that of the same limit.
    with pytest.warns(InfiniteHazardRatioWarning):
        ph = proportional_hazards_test(df, "time", "died", adjust=["age"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ph_rest = proportional_hazards_test(rest.assign(tier=rest["tier"].cat.remove_categories("normal")),
                                            "time", "died", adjust=["age"])
    assert_same(ph, ph_rest, rel=1e-9, cols=("statistic", "p_value"))


def test_only_tiers_without_events_besides_the_reference_gives_rows_not_an_error():
    # 5 deaths among the 5 normal persons, none among the 33 mild ones; no covariates.
    df = pd.DataFrame({"time": [1.0, 2, 3, 4, 5] + [6.0] * 33, "died": [1] * 5 + [0] * 33,
                       "tier": pd.Categorical(["normal"] * 5 + ["mild"] * 33, categories=TIERS, ordered=True)})
    with pytest.warns(InfiniteHazardRatioWarning, match=r"\['mild'\] have no events"):
        res = cox_hazard_ratios(df, "time", "died").set_index("term")
    assert list(res.index) == TIERS
    assert res.loc["normal", "estimable"] and res.loc["normal", "estimate"] == 1.0
    assert res.loc["mild", "note"] == "no events in this tier" and np.isnan(res.loc["mild", "estimate"])
    assert (res.loc[["subnormal", "moderate_severe"], "note"] == "no persons in this tier").all()
    assert not res.loc[TIERS[1:], "estimable"].any()


def test_covariate_that_orders_the_events_is_flagged_infinite():
    # x = 1 always dies before anyone with x = 0: the partial likelihood is monotone in x's coefficient.
    n = 40
    df = pd.DataFrame({"time": np.arange(1, n + 1, dtype=float), "died": 1,
                       "x": (np.arange(n) < 10).astype(float), "age": np.random.default_rng(1).normal(60, 10, n)})
    with pytest.warns(InfiniteHazardRatioWarning, match=r"\['x'\]"):
        res = cox_hazard_ratios(df, "time", "died", tier=None, adjust=["x", "age"]).set_index("term")
    assert np.isnan(res.loc["x", "estimate"]) and np.isnan(res.loc["x", "conf_low"])
    assert not res.loc["x", "estimable"] and res.loc["x", "note"].endswith("tends to infinity")
    assert np.isfinite(res.loc["age", "estimate"]) and res.loc["age", "estimable"]


@pytest.mark.parametrize(
    ("change", "kwargs", "match"),
    [
        (lambda d: d.assign(time=-d["time"]), {}, "negative values"),
        (lambda d: d.assign(died=0), {}, "no events"),
        (lambda d: d.assign(died=2), {}, "0/1 or boolean"),
        (lambda d: d.assign(died="yes"), {}, "0/1 or boolean"),
        (lambda d: d.assign(time="x"), {}, "numeric"),
        (lambda d: d.assign(age=50.0), {}, "constant"),
        (lambda d: d.assign(sex="F"), {}, "single level"),
        (lambda d: d.assign(age2=d["age"] * 2), {"adjust": ["age", "age2"]}, "collinear"),
        (lambda d: d.assign(tier=d["tier"].astype(str)), {}, "must be an ordered Categorical"),
        (lambda d: d, {"reference": "severe"}, "not a tier"),
        (lambda d: d, {"ties": "exact"}, "ties must be one of"),
        (lambda d: d, {"conf_level": 95}, "conf_level"),
        (lambda d: d, {"adjust": ["agee"]}, "did you mean 'age'"),
        (lambda d: d.assign(entry=d["time"]), {"entry": "entry"}, "entry.*before"),
        (lambda d: d, {"tier": None, "adjust": []}, "nothing to estimate"),
        (lambda d: d.assign(time=np.inf), {}, "infinite"),
    ],
)
def test_errors_say_what_is_wrong(change, kwargs, match):
    df = change(cohort())
    kw = {"adjust": ["age", "sex"], **kwargs}
    with pytest.raises(NeutrostatsError, match=match):
        cox_hazard_ratios(df, "time", "died", **kw)


def test_cox_fit_errors():
    t, e, X = [1.0, 2, 3, 4], [1, 0, 1, 1], [[1.0], [0], [1], [0]]
    with pytest.raises(NeutrostatsError, match="n by p"):
        cox_fit(t, e, [[1.0], [0]])
    with pytest.raises(NeutrostatsError, match="entry >= time"):
        cox_fit(t, e, X, entry=[0, 2, 0, 0])
    with pytest.raises(NeutrostatsError, match="weights"):
        cox_fit(t, e, X, weights=[1, 0, 1, 1])
    with pytest.raises(NeutrostatsError, match="not finite"):
        cox_fit([1, np.inf, 3, 4], e, X)
    with pytest.raises(NeutrostatsError, match="negative"):
        cox_fit([1, -2, 3, 4], e, X)
    with pytest.raises(NeutrostatsError, match="no events"):
        cox_fit(t, [0, 0, 0, 0], X)


# --- proportional hazards test ------------------------------------------------------------


def test_ph_test_layout_and_reference_invariance():
    df = cohort()
    res = proportional_hazards_test(df, "time", "died", adjust=["age", "sex"])
    assert list(res.columns) == PH_TEST_COLUMNS == ["test", "outcome", "term", "statistic", "df", "p_value"]
    assert (res["test"] == "schoenfeld").all() and (res["outcome"] == "died").all()
    assert list(res["term"]) == ["tier", "age", "sex", "GLOBAL"]
    assert list(res["df"]) == [3, 1, 1, 5]
    assert ((res["p_value"] >= 0) & (res["p_value"] <= 1)).all()
    other = df.assign(tier=df["tier"].cat.reorder_categories(["mild", "normal", "subnormal", "moderate_severe"]))
    np.testing.assert_allclose(proportional_hazards_test(other, "time", "died", adjust=["age", "sex"])["statistic"],
                               res["statistic"], rtol=1e-8)
    for transform in ("rank", "identity"):
        r = proportional_hazards_test(df, "time", "died", adjust=["age", "sex"], transform=transform)
        assert list(r["term"]) == list(res["term"])
    with pytest.raises(NeutrostatsError, match="transform"):
        proportional_hazards_test(df, "time", "died", transform="log")


def test_ph_test_detects_crossing_hazards():
    rng = np.random.default_rng(7)
    n = 2000
    x = rng.integers(0, 2, n)
    # x = 1: high hazard early, none after t = 1; x = 0: constant hazard.
    t0 = rng.exponential(1.0, n)
    t1 = np.where(rng.random(n) < 0.8, rng.uniform(0, 1, n), 5 + rng.exponential(5.0, n))
    t = np.where(x == 1, t1, t0)
    c = rng.uniform(0, 4, n)
    df = pd.DataFrame({"time": np.minimum(t, c), "died": (t <= c).astype(int), "x": x})
    res = proportional_hazards_test(df, "time", "died", tier=None, adjust=["x"])
    assert res.loc[res["term"] == "x", "p_value"].item() < 1e-4


def test_warnings_are_neutrostats_warnings():
    assert issubclass(InfiniteHazardRatioWarning, NeutrostatsWarning)
    assert issubclass(CoxConvergenceWarning, NeutrostatsWarning)


def test_stratum_without_events_adds_nothing():
    df = cohort().assign(entry=0.0)
    extra = cohort(n=50, seed=9).assign(died=0, sex="X", entry=0.0)
    both = pd.concat([df, extra], ignore_index=True)
    for kw in ({}, {"entry": "entry"}):
        assert_same(fit_table(df, adjust=["age"], strata="sex", **kw),
                    fit_table(both, adjust=["age"], strata="sex", **kw), rel=1e-10)
