"""Fine–Gray regression: invariants, agreement with the Cox fitter, the limits of tiers without events, bad input.

The numbers against R are in tests/test_finegray_r.py; here the checks are against other engines of
the package (without competing events the Fine–Gray model is Cox's with Breslow ties, and crr's
variance is the Lin–Wei robust one), against each other, and on what must be refused.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrostats.errors import DataQualityWarning, InfiniteHazardRatioWarning, NeutrostatsError
from neutrostats.stats.cox import cox_fit, cox_hazard_ratios
from neutrostats.stats.finegray import (
    FINE_GRAY_COLUMNS,
    PREDICT_CIF_COLUMNS,
    fine_gray,
    fine_gray_arrays,
    fine_gray_fit,
    predict_cumulative_incidence,
)
from neutrostats.synthetic.competing import simulate_fine_gray


@pytest.fixture(scope="module")
def sim():
    return simulate_fine_gray(400, seed=7).data


def test_without_competing_events_it_is_cox_with_breslow_ties_and_robust_variance(sim):
    d = sim.assign(status=(sim["status"] == 1).astype(int))
    fg = fine_gray(d, "time", "status", adjust=["age", "sex"])
    cox = cox_hazard_ratios(d, "time", "status", adjust=["age", "sex"], ties="breslow", robust=True)
    np.testing.assert_allclose(fg["estimate"], cox["estimate"], rtol=1e-8)
    # No competing events: q(u) = 0, so crr's variance is the Lin-Wei sandwich of coxph(robust = TRUE).
    np.testing.assert_allclose(fg["std_error"], cox["std_error"], rtol=1e-7)
    model = fine_gray(d, "time", "status", adjust=["age", "sex"], variance="model")
    cox_m = cox_hazard_ratios(d, "time", "status", adjust=["age", "sex"], ties="breslow")
    np.testing.assert_allclose(model["std_error"], cox_m["std_error"], rtol=1e-7)


def test_tidy_shape_order_and_attrs(sim):
    out = fine_gray(sim, "time", "status", adjust=["age", "sex"])
    assert list(out.columns) == FINE_GRAY_COLUMNS
    assert out["term"].tolist() == ["normal", "subnormal", "mild", "moderate_severe", "age", "sex[M]"]
    assert out["is_reference"].tolist() == [True] + [False] * 5
    assert out.loc[0, "estimate"] == 1.0 and np.isnan(out.loc[0, "std_error"])
    assert out["n"].iloc[:4].sum() == len(sim) and out["n_event"].iloc[:4].sum() == (sim["status"] == 1).sum()
    assert out.attrs["variance"] == "crr" and out.attrs["convention"] == "crr"
    assert out.attrs["n_competing"] == (sim["status"] == 2).sum() and out.attrs["n_missing"] == 0
    lo, hi, est = out["conf_low"].iloc[1:], out["conf_high"].iloc[1:], out["estimate"].iloc[1:]
    assert np.all((lo < est) & (est < hi))


def test_conf_level_and_variance_choices(sim):
    a = fine_gray(sim, "time", "status", adjust=["age"], conf_level=0.9)
    b = fine_gray(sim, "time", "status", adjust=["age"])
    assert np.all(a["conf_high"].iloc[1:] < b["conf_high"].iloc[1:])
    r = fine_gray(sim, "time", "status", adjust=["age"], variance="robust")
    assert r.attrs["variance"] == "robust" and not np.allclose(r["std_error"].iloc[1:], b["std_error"].iloc[1:])
    np.testing.assert_allclose(r["estimate"], b["estimate"])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 100), shift=st.floats(-50, 50))
def test_invariant_to_row_order_time_scale_and_covariate_shift(seed, scale, shift):
    d = simulate_fine_gray(120, seed=seed).data
    base = fine_gray_fit(d, "time", "status", tier=None, adjust=["age", "sex"])
    perm = d.sample(frac=1, random_state=seed).assign(time=lambda x: x["time"] * scale, age=lambda x: x["age"] + shift)
    other = fine_gray_fit(perm, "time", "status", tier=None, adjust=["age", "sex"])
    np.testing.assert_allclose(other.coef, base.coef, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(other.var, base.var, rtol=1e-6, atol=1e-12)
    # The predicted CIF does not depend on where the covariates are centred or on the time unit.
    p0 = fine_gray_fit(d, "time", "status", tier=None, adjust=["age"]).cumulative_incidence([[60.0]], [1.0])
    p1 = fine_gray_fit(perm, "time", "status", tier=None, adjust=["age"]).cumulative_incidence([[60.0 + shift]],
                                                                                                 [scale])
    np.testing.assert_allclose(p1, p0, rtol=1e-7)


def test_cumulative_incidence_is_monotone_and_increases_with_the_linear_predictor(sim):
    fit = fine_gray_fit(sim, "time", "status", adjust=["age", "sex"])
    prof = pd.DataFrame({"tier": ["normal", "moderate_severe"], "age": [60.0, 60.0], "sex": ["F", "F"]})
    p = predict_cumulative_incidence(fit, prof, np.linspace(0, fit.max_time, 30))
    assert list(p.columns) == PREDICT_CIF_COLUMNS and p["group"].tolist()[:1] == ["normal"]
    est = p["estimate"].to_numpy().reshape(2, 30)
    assert np.all(np.diff(est, axis=1) >= 0) and est[0, 0] == 0 and np.all(est < 1)
    assert np.all(est[1, 1:] >= est[0, 1:])  # moderate_severe's coefficient is positive here
    assert fit.coef[fit.names.index("tier[moderate_severe]")] > 0


def test_cumulative_incidence_is_close_to_the_truth_in_a_large_sample():
    sim = simulate_fine_gray(20_000, seed=11)
    fit = fine_gray_fit(sim.data, "time", "status", adjust=["age", "sex"])
    prof = pd.DataFrame({"tier": list(sim.cif["group"].cat.categories), "age": 60.0, "sex": "F"})
    p = predict_cumulative_incidence(fit, prof, [0.5, 1.0, 2.0])
    # Sampling error of a 20,000-person fit: about 0.005-0.01 here.
    np.testing.assert_allclose(p["estimate"], sim.cif["estimate"], atol=0.03)


def test_tier_without_events_is_the_limit_of_a_coefficient_running_to_minus_infinity(sim):
    d = sim.copy()
    d.loc[(d["tier"] == "mild") & (d["status"] == 1), "status"] = 2
    with pytest.warns(InfiniteHazardRatioWarning, match=r"\['mild'\] have no events of cause 1"):
        out = fine_gray(d, "time", "status", adjust=["age", "sex"])
    row = out.set_index("term").loc["mild"]
    assert not row["estimable"] and np.isnan(row["estimate"]) and row["note"] == "no events in this tier"
    # The limit: the same fit with a huge negative offset for mild, kept in the censoring distribution.
    codes = d["tier"].cat.codes.to_numpy()
    X = np.column_stack([codes == 1, codes == 3, d["age"], d["sex"] == "M"]).astype(float)
    X_full = np.column_stack([codes == 1, codes == 2, codes == 3, d["age"], d["sex"] == "M"]).astype(float)
    lim = fine_gray_arrays(d["time"], d["status"], X_full)
    assert lim.infinite[1] and lim.coef[1] < -5
    est = np.log(out.set_index("term").loc[["subnormal", "moderate_severe", "age", "sex[M]"], "estimate"])
    np.testing.assert_allclose(est, lim.coef[[0, 2, 3, 4]], rtol=1e-3, atol=1e-4)
    # Dropping the persons instead would change the censoring distribution, hence the estimates.
    drop = fine_gray_arrays(d["time"][codes != 2], d["status"][codes != 2], X[codes != 2])
    assert not np.allclose(drop.coef, est.to_numpy(), rtol=1e-6)


def test_prediction_for_a_tier_without_events_is_not_a_number(sim):
    d = sim.copy()
    d.loc[(d["tier"] == "mild") & (d["status"] == 1), "status"] = 0
    with pytest.warns(InfiniteHazardRatioWarning):
        fit = fine_gray_fit(d, "time", "status", adjust=["age"])
    p = predict_cumulative_incidence(fit, pd.DataFrame({"tier": ["mild", "normal"], "age": [50.0, 50.0]}), [1.0])
    assert np.isnan(p["estimate"].iloc[0]) and 0 < p["estimate"].iloc[1] < 1


def test_reference_tier_without_events(sim):
    d = sim.copy()
    d.loc[(d["tier"] == "normal") & (d["status"] == 1), "status"] = 2
    with pytest.warns(InfiniteHazardRatioWarning, match="reference tier 'normal' has no events"):
        out = fine_gray(d, "time", "status", adjust=["age"])
    assert not out["estimable"].iloc[:4].any() and out["estimable"].iloc[4]
    assert (out["note"].iloc[1:4] == "no events in the reference tier").all()


def test_entry_zero_is_no_delayed_entry_with_finegray_weights(sim):
    a = fine_gray(sim.assign(entry=-1.0), "time", "status", adjust=["age"], entry="entry")
    b = fine_gray(sim, "time", "status", adjust=["age"], convention="finegray")
    assert a.attrs["variance"] == b.attrs["variance"] == "robust"
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-10)
    np.testing.assert_allclose(a["std_error"], b["std_error"], rtol=1e-9)


def test_other_cause_codes_are_all_competing(sim):
    d = sim.assign(status=sim["status"].where(~((sim["status"] == 2) & (sim.index % 2 == 0)), 3))
    a = fine_gray(d, "time", "status", adjust=["age"])
    b = fine_gray(sim, "time", "status", adjust=["age"])
    pd.testing.assert_frame_equal(a, b)
    c = fine_gray(d, "time", "status", cause=3, adjust=["age"])
    assert c["n_event"].iloc[:4].sum() == (d["status"] == 3).sum()


def test_missing_values_are_left_out_and_announced(sim):
    d = sim.copy()
    d.loc[[0, 5], "age"] = np.nan
    with pytest.warns(DataQualityWarning, match="2 of 400 rows left out"):
        out = fine_gray(d, "time", "status", adjust=["age"])
    assert out.attrs["n_missing"] == 2 and out.attrs["missing"] == {"age": 2}
    ref = fine_gray(sim.drop(index=[0, 5]), "time", "status", adjust=["age"])
    np.testing.assert_allclose(out["estimate"], ref["estimate"])


@pytest.mark.parametrize("change, match", [
    (dict(status=lambda d: d["status"].where(d.index != 3, 1.5)), "event codes 0 = censored"),
    (dict(status=lambda d: d["status"].astype(str).where(d.index != 3, "death")), "must be numeric"),
    (dict(status=lambda d: d["status"].where(d.index != 3, -1)), "event codes 0 = censored"),
    (dict(time=lambda d: d["time"].where(d.index != 3, -0.5)), "must be >= 0"),
    (dict(time=lambda d: d["time"].astype(str)), "must be numeric"),
    (dict(status=lambda d: d["status"].replace(1, 2)), "no events of cause 1"),
])
def test_bad_input_is_refused(sim, change, match):
    d = sim.assign(**change)
    with pytest.raises(NeutrostatsError, match=match):
        fine_gray(d, "time", "status", adjust=["age"])


@pytest.mark.parametrize("kw, match", [
    (dict(cause=0), "cause must be an event code"),
    (dict(cause=1.5), "cause must be an event code"),
    (dict(cause="1"), "cause must be an event code"),
    (dict(cause=4), r"no events of cause 4 .* codes found: \[0, 1, 2\]"),
    (dict(reference="severe"), "reference 'severe' is not a tier"),
    (dict(variance="sandwich"), "variance"),
    (dict(convention="R"), "convention"),
    (dict(conf_level=95), "conf_level"),
    (dict(adjust=["age", "tier"]), "leave it out of adjust"),
])
def test_bad_arguments_are_refused(sim, kw, match):
    with pytest.raises(NeutrostatsError, match=match):
        fine_gray(sim, "time", "status", **{"adjust": ["age"], **kw})


def test_delayed_entry_refusals(sim):
    d = sim.assign(entry=sim["time"] / 2)
    with pytest.raises(NeutrostatsError, match="variance='crr'"):
        fine_gray(d, "time", "status", entry="entry", variance="crr")
    with pytest.raises(NeutrostatsError, match="convention='crr'"):
        fine_gray(d, "time", "status", entry="entry", convention="crr")
    with pytest.raises(NeutrostatsError, match="entry < duration"):
        fine_gray(d.assign(entry=d["time"]), "time", "status", entry="entry")
    assert fine_gray(d, "time", "status", entry="entry").attrs["convention"] == "finegray"


def test_tier_must_be_categorical(sim):
    with pytest.raises(NeutrostatsError, match="ordered Categorical"):
        fine_gray(sim.assign(tier=sim["tier"].astype(str)), "time", "status")


def test_prediction_refusals(sim):
    fit = fine_gray_fit(sim, "time", "status", adjust=["age", "sex"])
    good = pd.DataFrame({"tier": ["normal"], "age": [60.0], "sex": ["F"]})
    with pytest.raises(NeutrostatsError, match="beyond the last follow-up time"):
        predict_cumulative_incidence(fit, good, [fit.max_time * 1.01])
    with pytest.raises(NeutrostatsError, match="times must be finite numbers >= 0"):
        predict_cumulative_incidence(fit, good, [-1.0])
    with pytest.raises(NeutrostatsError, match="lacks the model's columns"):
        predict_cumulative_incidence(fit, good.drop(columns="sex"), [1.0])
    with pytest.raises(NeutrostatsError, match="not tiers of the fit"):
        predict_cumulative_incidence(fit, good.assign(tier="severe"), [1.0])
    with pytest.raises(NeutrostatsError, match="levels"):
        predict_cumulative_incidence(fit, good.assign(sex="X"), [1.0])
    with pytest.raises(NeutrostatsError, match="missing values"):
        predict_cumulative_incidence(fit, good.assign(age=np.nan), [1.0])
    arr = fine_gray_arrays(sim["time"], sim["status"], sim[["age"]])
    with pytest.raises(NeutrostatsError, match="no design"):
        predict_cumulative_incidence(arr, good, [1.0])


def test_arrays_refusals():
    with pytest.raises(NeutrostatsError, match="n = 3 rows"):
        fine_gray_arrays([1, 2, 3], [1, 0, 2], [[1.0], [0.0]])
    with pytest.raises(NeutrostatsError, match="no variation"):
        fine_gray_arrays([1, 2, 3, 4], [1, 0, 2, 1], [[1.0], [1.0], [1.0], [1.0]])
    with pytest.raises(NeutrostatsError, match="non-finite"):
        fine_gray_arrays([1, 2, 3, 4], [1, 0, 2, 1], [[1.0], [np.nan], [1.0], [0.0]])


def test_cox_fit_unchanged_reference():
    # Guard for the shared helpers imported from cox.py: the Cox fitter still gives R's value.
    fit = cox_fit([1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 1, 1], np.array([[1.0], [0], [1], [0], [0], [1]]))
    assert round(float(fit.coef[0]), 7) == 0.1008468
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fine_gray_arrays([1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 1, 1], [[1.0], [0], [1], [0], [0], [1]])
