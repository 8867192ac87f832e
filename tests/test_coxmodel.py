"""The fitted Cox model (cox_model) and the log-rank family: refusals, invariants, hand calculations.

R comparisons are in tests/test_coxmodel_r.py and tests/test_robust_r.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neutrostats.errors import DataQualityWarning, InfiniteHazardRatioWarning, NeutrostatsError
from neutrostats.stats.cox import cox_fit, cox_hazard_ratios
from neutrostats.stats.coxmodel import cox_model
from neutrostats.stats.survival import logrank_test

TIERS = ["normal", "mild", "severe"]


def _data(n=300, seed=3):
    rng = np.random.default_rng(seed)
    tier = rng.choice(TIERS, n, p=[0.5, 0.3, 0.2])
    age = rng.uniform(30, 80, n).round(1)
    sex = rng.choice(["F", "M"], n)
    lp = np.select([tier == "mild", tier == "severe"], [0.4, 0.9], 0.0) + 0.03 * (age - 55) + 0.2 * (sex == "M")
    t = np.ceil(rng.exponential(1 / (0.1 * np.exp(lp))) * 4) / 4
    c = rng.uniform(1, 8, n).round(2)
    return pd.DataFrame({
        "time": np.minimum(t, c), "event": (t <= c).astype(int),
        "tier": pd.Categorical(tier, categories=TIERS, ordered=True), "age": age, "sex": sex,
        "entry": np.floor(np.minimum(t, c) * 0.3 * 4) / 4 - 0.01, "id": np.arange(n) // 2,
        "w": rng.uniform(0.5, 2, n), "site": rng.choice(["x", "y"], n)})


@pytest.mark.parametrize("kw", [dict(), dict(ties="breslow"), dict(entry="entry"), dict(strata="site"),
                                dict(weights="w"), dict(cluster="id"), dict(robust=True), dict(reference="mild")])
def test_tidy_is_cox_hazard_ratios(kw):
    d = _data()
    a = cox_model(d, "time", "event", adjust=["age", "sex"], **kw).tidy()
    b = cox_hazard_ratios(d, "time", "event", adjust=["age", "sex"], **kw)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs == b.attrs


def test_cluster_of_single_rows_is_robust():
    d = _data().assign(one=lambda x: np.arange(len(x)))
    a = cox_model(d, "time", "event", adjust=["age"], cluster="one")
    b = cox_model(d, "time", "event", adjust=["age"], robust=True)
    np.testing.assert_allclose(a.var, b.var, rtol=1e-12)
    np.testing.assert_allclose(a.robust_score.statistic, b.robust_score.statistic, rtol=1e-12)


def test_model_variance_without_robust():
    fit = cox_model(_data(), "time", "event", adjust=["age"])
    assert fit.variance == "model" and fit.robust_score is None
    np.testing.assert_array_equal(fit.var, fit.fit.var)


def test_centered_baseline_is_the_prediction_at_the_centre():
    d = _data()
    fit = cox_model(d, "time", "event", tier=None, adjust=["age"])
    bh = fit.baseline_hazard(centered=True)
    times = bh["time"].to_numpy()[[5, 20, 40]]
    pred = fit.predict(pd.DataFrame({"age": [d["age"].mean()]}), times=times)
    np.testing.assert_allclose(pred["cumhaz"], bh.set_index("time").loc[times, "cumhaz"], rtol=1e-12)


def test_breslow_baseline_by_hand():
    """Breslow with x = (0, 1, 0, 1), times 1..4, event (1, 1, 0, 1): H0(t) = sum d / sum exp(b x) over risk sets."""
    d = pd.DataFrame({"t": [1.0, 2, 3, 4], "e": [1, 1, 0, 1], "x": [0.0, 1, 0, 1]})
    fit = cox_model(d, "t", "e", tier=None, adjust=["x"], ties="breslow")
    r = np.exp(fit.coef[0])
    want = np.cumsum([1 / (1 + r + 1 + r), 1 / (r + 1 + r), 0, 1 / r])
    np.testing.assert_allclose(fit.baseline_hazard()["cumhaz"], want, rtol=1e-12)
    pred = fit.predict(pd.DataFrame({"x": [1.0]}), times=[2.5])
    np.testing.assert_allclose(pred["cumhaz"], r * want[1], rtol=1e-12)
    np.testing.assert_allclose(pred["estimate"], np.exp(-r * want[1]), rtol=1e-12)


def test_predict_profile_labels_and_strata():
    d = _data()
    fit = cox_model(d, "time", "event", adjust=["age", "sex"], strata="site")
    nd = pd.DataFrame({"tier": ["severe", "normal"], "age": [70, 40], "sex": ["M", "F"], "site": ["y", "x"]},
                      index=["old man", "young woman"])
    pred = fit.predict(nd, times=[1, 2])
    assert pred["profile"].tolist() == ["old man", "old man", "young woman", "young woman"]
    assert (pred["estimate"].iloc[:2] < pred["estimate"].iloc[2:].to_numpy()).all()
    assert list(fit.baseline_hazard().columns) == ["site", "time", "cumhaz"]


@pytest.mark.parametrize("newdata, match", [
    (pd.DataFrame({"tier": ["profound"], "age": [50], "sex": ["F"]}), r"tiers are \['normal', 'mild', 'severe'\]"),
    (pd.DataFrame({"tier": ["mild"], "age": [50], "sex": ["X"]}), r"its levels are \['F', 'M'\]"),
    (pd.DataFrame({"tier": ["mild"], "age": [50]}), "sex"),
    (pd.DataFrame({"tier": ["mild"], "age": [np.nan], "sex": ["F"]}), "missing values"),
    (pd.DataFrame({"tier": ["mild"], "age": ["fifty"], "sex": ["F"]}), "must be numeric"),
])
def test_predict_refuses_bad_profiles(newdata, match):
    fit = cox_model(_data(), "time", "event", adjust=["age", "sex"])
    with pytest.raises(NeutrostatsError, match=match):
        fit.predict(newdata, times=[1])


def test_predict_refuses_bad_times_and_options():
    d = _data()
    fit = cox_model(d, "time", "event", adjust=["age"], strata="site")
    nd = pd.DataFrame({"tier": ["mild"], "age": [50], "site": ["x"]})
    with pytest.raises(NeutrostatsError, match="past the last follow-up time"):
        fit.predict(nd, times=[d["time"].max() + 1])
    with pytest.raises(NeutrostatsError, match=">= 0"):
        fit.predict(nd, times=[-1])
    with pytest.raises(NeutrostatsError, match="conf_type"):
        fit.predict(nd, times=[1], conf_type="arcsin")
    with pytest.raises(NeutrostatsError, match="strata"):
        fit.predict(nd.assign(site="z"), times=[1])
    with pytest.raises(NeutrostatsError, match="type"):
        fit.residuals("pearson")


def test_predict_refuses_a_tier_without_events():
    d = _data()
    d.loc[d["tier"] == "severe", "event"] = 0
    with pytest.warns(InfiniteHazardRatioWarning):
        fit = cox_model(d, "time", "event", adjust=["age"])
    with pytest.raises(NeutrostatsError, match="no events"):
        fit.predict(pd.DataFrame({"tier": ["severe"], "age": [50]}), times=[1])
    assert len(fit.residuals()) == int((d["tier"] != "severe").sum())


def test_cluster_refusals_and_missing_ids():
    d = _data()
    with pytest.raises(NeutrostatsError, match="robust=False"):
        cox_model(d, "time", "event", cluster="id", robust=False)
    with pytest.raises(NeutrostatsError, match="robust=False"):
        cox_hazard_ratios(d, "time", "event", cluster="id", robust=False)
    with pytest.raises(NeutrostatsError, match="patient"):
        cox_model(d, "time", "event", cluster="patient")
    d["id"] = d["id"].astype(float)
    d.loc[:4, "id"] = np.nan
    with pytest.warns(DataQualityWarning, match="'id' 5"):
        fit = cox_model(d, "time", "event", cluster="id")
    assert fit.tidy().attrs["n_missing"] == 5 and fit.fit.n == len(d) - 5


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), ties=st.sampled_from(["efron", "breslow"]), entry=st.booleans())
def test_residual_identities(seed, ties, entry):
    """At the MLE the weighted martingale and score residuals sum to 0; deviance has the martingale's sign."""
    d = _data(n=80, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InfiniteHazardRatioWarning)
        fit = cox_model(d, "time", "event", tier=None, adjust=["age", "sex"], ties=ties, weights="w",
                        entry="entry" if entry else None)
    if not fit.fit.converged:
        return
    w = d["w"].to_numpy()
    mart = fit.residuals("martingale")["martingale"].to_numpy()
    assert abs(mart @ w) < 1e-7
    # The score residuals sum to the score U at the estimate. coxph's stop rule (relative change in the
    # log-likelihood <= 1e-9) does not bound U itself, which scales with the covariate (age ~ 60 gave
    # |U| = 1.3e-6 at some seeds), so the check is the Newton step still left, V U, in standard errors.
    score = w @ fit.residuals("score").to_numpy()
    var = np.asarray(fit.fit.var)
    assert np.all(np.abs(var @ score) / np.sqrt(np.diag(var)) < 1e-6)
    dev = fit.residuals("deviance")["deviance"].to_numpy()
    assert np.all(np.sign(dev) == np.sign(mart))
    pred = fit.predict(pd.DataFrame({"age": [60.0], "sex": ["F"]}), times=np.sort(d["time"].unique())[:-1])
    s = pred["estimate"].to_numpy()
    assert np.all(np.diff(s) <= 1e-15) and np.all((s > 0) & (s <= 1))
    assert np.all((pred["conf_low"] <= s + 1e-15) & (s <= pred["conf_high"] + 1e-15))


# --- log-rank family -----------------------------------------------------------------------------------------

def _hand():
    return pd.DataFrame({"entry": [0, 0, 1, 2, 0, 0, 1, 3], "time": [2, 3, 3, 5, 1, 3, 4, 6],
                         "event": [1, 1, 0, 1, 1, 1, 1, 0], "g": list("aaaabbbb")})


def test_logrank_delayed_entry_with_ties_by_hand():
    """At risk at t: entry < t <= time. Event times 1..5 (two deaths at 3); per time (n_a, n_b, d_a, d):
    (2,2,0,1), (3,2,1,1), (3,2,1,2), (1,2,0,1), (1,1,1,1): O_a = 3, E_a = 1/2 + 3/5 + 6/5 + 1/3 + 1/2 = 47/15,
    V = sum d (n - d) / (n - 1) n_a n_b / n^2 = 1/4 + 6/25 + 9/25 + 2/9 + 1/4 = 119/90, chi2 = (2/15)^2 / (119/90)."""
    r = logrank_test(_hand(), "time", "event", "g", entry="entry")
    assert r.method == "logrank"
    np.testing.assert_allclose(r.statistic, (2 / 15) ** 2 / (119 / 90), rtol=1e-12)
    np.testing.assert_allclose(r.table["expected"], [47 / 15, 6 - 47 / 15], rtol=1e-12)


def test_peto_with_delayed_entry_by_hand():
    """rho = 1: weights S(t-) of the pooled KM with the same risk sets: 1, 3/4, 3/5, 9/25, 6/25.
    O_a = 3/4 + 3/5 + 6/25 = 1.59, E_a = 1/2 + 0.6 (3/4) + 1.2 (3/5) + (1/3)(9/25) + (1/2)(6/25) = 1.91,
    V = 1/4 + 0.24 (9/16) + 0.36 (9/25) + (2/9)(81/625) + (1/4)(36/625) = 0.5578."""
    r = logrank_test(_hand(), "time", "event", "g", entry="entry", rho=1)
    assert r.method == "fleming_harrington" and r.rho == 1.0
    np.testing.assert_allclose(r.table["observed"].iloc[0], 1.59, rtol=1e-12)
    np.testing.assert_allclose(r.table["expected"].iloc[0], 1.91, rtol=1e-12)
    np.testing.assert_allclose(r.statistic, 0.32 ** 2 / 0.5578, rtol=1e-12)


def test_entry_before_everything_changes_nothing():
    d = _data()
    a = logrank_test(d.assign(e0=-1.0), "time", "event", "tier", entry="e0", rho=0.5, gamma=0.5)
    b = logrank_test(d, "time", "event", "tier", rho=0.5, gamma=0.5)
    np.testing.assert_allclose(a.statistic, b.statistic, rtol=1e-12)
    c = logrank_test(d, "time", "event", "tier", rho=0.0, gamma=0.0)
    assert c.method == "logrank" and c.statistic == logrank_test(d, "time", "event", "tier").statistic


def test_weighted_logrank_with_entry_is_the_cox_score_test():
    d = _data()
    r = logrank_test(d, "time", "event", "tier", weights="w", entry="entry")
    X = np.column_stack([(d["tier"] == t).to_numpy(float) for t in TIERS[1:]])
    fit = cox_fit(d["time"], d["event"], X, entry=d["entry"], weights=d["w"])
    np.testing.assert_allclose(r.statistic, fit.score_test.statistic, rtol=1e-12)


@pytest.mark.parametrize("kw, match", [(dict(rho=-1), "rho must be"), (dict(gamma=np.inf), "gamma must be"),
                                       (dict(rho="1"), "rho must be"), (dict(rho=1, weights="w"), "case weights")])
def test_fleming_harrington_refusals(kw, match):
    with pytest.raises(NeutrostatsError, match=match):
        logrank_test(_data(), "time", "event", "tier", **kw)


def test_logrank_entry_after_time_refused():
    with pytest.raises(NeutrostatsError, match="entry"):
        logrank_test(_hand().assign(entry=[0, 0, 1, 6, 0, 0, 1, 3]), "time", "event", "g", entry="entry")


# --- coverage of the cluster-robust intervals ----------------------------------------------------------------

def _clustered(rng, n):
    """n persons, each observed twice (the same follow-up in two rows): rows of a cluster are perfectly
    correlated, so only a variance that sums within clusters is right (the model-based one is sqrt(2) too small)."""
    x = rng.normal(size=n)
    g = rng.choice(["a", "b"], n)
    lp = 0.5 * x + 0.7 * (g == "b")
    t = rng.exponential(1 / np.exp(lp))
    c = rng.exponential(1.5, n)
    d = pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int), "x": x,
                      "tier": pd.Categorical(g, categories=["a", "b"], ordered=True), "id": np.arange(n),
                      "y": (rng.uniform(size=n) < 1 / (1 + np.exp(-(-0.5 + 0.5 * x + 0.7 * (g == "b"))))).astype(int)})
    return pd.concat([d, d], ignore_index=True)


@pytest.mark.slow
def test_cluster_robust_intervals_cover_the_truth():
    """Seeded simulation: 95% intervals of the Cox log HRs (cluster = id) and of the logistic log ORs
    (vcovCL-type cluster variance) cover the true 0.5 (x) and 0.7 (tier b) between 93% and 97% pooled, each
    within 4 binomial SEs; the model-based Cox interval, which ignores the duplication, covers far less."""
    from neutrostats import odds_ratios_by_tier

    rng = np.random.default_rng(20261202)
    reps, n = 300, 300
    hit = {"cox_x": 0, "cox_tier": 0, "logit_tier": 0}
    naive = 0
    for _ in range(reps):
        d = _clustered(rng, n)
        fit = cox_model(d, "time", "event", adjust=["x"], cluster="id")
        lo, hi = fit.coef - 1.959964 * np.sqrt(np.diag(fit.var)), fit.coef + 1.959964 * np.sqrt(np.diag(fit.var))
        hit["cox_tier"] += lo[0] <= 0.7 <= hi[0]
        hit["cox_x"] += lo[1] <= 0.5 <= hi[1]
        se_naive = fit.fit.std_error[0]
        naive += abs(fit.coef[0] - 0.7) <= 1.959964 * se_naive
        res = odds_ratios_by_tier(d, "y", method="logistic", adjust=["x"], cluster="id")
        b = res.iloc[1]
        hit["logit_tier"] += b["conf_low"] <= np.exp(0.7) <= b["conf_high"]
    se = np.sqrt(0.95 * 0.05 / reps)
    for k, v in hit.items():
        assert abs(v / reps - 0.95) <= 4 * se, f"{k}: coverage {v / reps:.3f}"
    pooled = sum(hit.values()) / (reps * len(hit))
    assert 0.93 <= pooled <= 0.97, pooled
    assert naive / reps < 0.90  # the model-based interval ignores the clustering (about 83%)
