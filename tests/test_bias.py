"""E-values, the empirical null and calibration: worked examples, hand calculations, invariants, refusals.

R fixtures are in test_bias_r.py. Outside references cited here:

* VanderWeele & Ding, Ann Intern Med 2017;167:268-274, worked examples
  (breastfeeding and infant respiratory death, OR 3.9 (1.8-8.7), rare outcome
  -> E-values 7.26 and 3.0; breastfeeding and leukaemia, RR 0.80 (0.71-0.91)
  -> 1.81 and 1.43), and the EValue package's documented examples
  (evalues.RR(10.73, 8.02, 14.36) -> 20.94777 / 15.52336;
  evalues.HR(0.56, 0.46, 0.69, rare = FALSE) -> 2.349531 / 1.9080039;
  evalues.OR(0.86, 0.75, 0.99, rare = FALSE) -> 1.3689529 / 1.0761939;
  evalues.RR(2.5, true = 1.5) -> 2.720759).
* EmpiricalCalibration's testthat: with a null of mean 0 and SD 0, the
  calibrated p-value is the traditional one (logRr 0.1, se 0.05 -> 0.045500266;
  0.3, 0.1 -> 0.002699796).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrostats.errors import NegativeControlWarning, NeutrostatsError
from neutrostats.stats.bias import (
    SystematicError,
    add_evalues,
    calibrate,
    evalue,
    fit_systematic_error,
    negative_control_estimates,
)
from neutrostats.stats.bias import _ml_null

TIERS = ["normal", "subnormal", "mild", "moderate_severe"]


# --- E-values ---------------------------------------------------------------------

@pytest.mark.parametrize("args, kwargs, point, ci", [
    ((3.9, 1.8, 8.7), dict(measure="OR", rare=True), 7.263034, 3.0),          # VanderWeele & Ding 2017
    ((0.80, 0.71, 0.91), dict(measure="RR"), 1.809017, 1.428571),            # VanderWeele & Ding 2017
    ((10.73, 8.02, 14.36), dict(measure="RR"), 20.94777, 15.52336),          # EValue README (7 digits)
    ((0.56, 0.46, 0.69), dict(measure="HR", rare=False), 2.349531, 1.9080039),
    ((0.86, 0.75, 0.99), dict(measure="OR", rare=False), 1.3689529, 1.0761939),
])
def test_published_worked_examples(args, kwargs, point, ci):
    e = evalue(*args, **kwargs)
    assert e.evalue == pytest.approx(point, abs=1e-5)  # the sources print 7 significant digits
    assert e.evalue_ci == pytest.approx(ci, abs=1e-5)


def test_non_null_true_value_as_evalue_documents():
    assert evalue(2.5, true=1.5).evalue == pytest.approx(2.720759, abs=1e-6)


def test_hand_calculations():
    # RR 2: 2 + sqrt(2 * 1)
    assert evalue(2.0).evalue == pytest.approx(2 + math.sqrt(2), rel=1e-14)
    # common-outcome OR 4 -> RR sqrt(4) = 2, same E-value
    assert evalue(4.0, measure="OR", rare=False).evalue == pytest.approx(2 + math.sqrt(2), rel=1e-14)
    # common-outcome HR 4: RR = (1 - 0.5^2) / (1 - 0.5^0.5) = 0.75 / 0.29289... = 2.56066
    rr = 0.75 / (1 - 0.5 ** 0.5)
    e = evalue(4.0, 3.0, 5.0, measure="HR", rare=False)
    assert e.rr == pytest.approx(rr, rel=1e-14)
    assert e.evalue == pytest.approx(rr + math.sqrt(rr * (rr - 1)), rel=1e-14)
    lo = (1 - 0.5 ** math.sqrt(3)) / (1 - 0.5 ** math.sqrt(1 / 3))
    assert e.evalue_ci == pytest.approx(lo + math.sqrt(lo * (lo - 1)), rel=1e-14)
    # the interval includes the null: E-value of the interval 1; without limits: NaN
    assert evalue(1.3, 0.9, 1.8).evalue_ci == 1.0
    assert evalue(0.7, 0.4, 1.1).evalue_ci == 1.0
    assert math.isnan(evalue(1.3).evalue_ci)
    assert evalue(1.0, 0.8, 1.2).evalue == 1.0
    # only an upper limit given for a protective estimate: it is the one used
    assert evalue(0.5, conf_high=0.8).evalue_ci == pytest.approx(1.25 + math.sqrt(1.25 * 0.25), rel=1e-14)


ratios = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(a=ratios, b=ratios)
def test_evalue_monotone_in_the_distance_from_the_null(a, b):
    lo, hi = sorted([max(a, 1 / a), max(b, 1 / b)])
    assert evalue(lo).evalue <= evalue(hi).evalue * (1 + 1e-12)


@settings(max_examples=200, deadline=None)
@given(rr=ratios, measure=st.sampled_from(["RR", "OR", "HR"]), rare=st.booleans())
def test_evalue_at_least_one_and_symmetric(rr, measure, rare):
    e = evalue(rr, measure=measure, rare=rare).evalue
    assert e >= 1.0
    assert evalue(1 / rr, measure=measure, rare=rare).evalue == pytest.approx(e, rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(rr=ratios, w1=st.floats(0.01, 3), w2=st.floats(0.01, 3))
def test_interval_evalue_never_exceeds_the_point_evalue(rr, w1, w2):
    e = evalue(rr, rr * math.exp(-w1), rr * math.exp(w2))
    assert 1.0 <= e.evalue_ci <= e.evalue * (1 + 1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(estimate=-1.0), "positive finite ratio"),
    (dict(estimate=0.0), "no E-value"),
    (dict(estimate=float("inf")), "positive finite"),
    (dict(estimate="2.0x"), "positive finite"),
    (dict(estimate=2.0, conf_low=2.5, conf_high=3.0), "inside its interval"),
    (dict(estimate=2.0, conf_low=1.0, conf_high=1.5), "inside its interval"),
    (dict(estimate=2.0, measure="RD"), "measure must be one of"),
    (dict(estimate=2.0, measure="OR"), "rare=True or rare=False"),
    (dict(estimate=2.0, measure="HR", rare="yes"), "rare must be True, False or None"),
    (dict(estimate=2.0, true=0.0), "true must be a positive"),
])
def test_evalue_refuses_bad_input(kwargs, match):
    est = kwargs.pop("estimate")
    with pytest.raises(NeutrostatsError, match=match):
        evalue(est, **kwargs)


def _or_table():
    t = pd.DataFrame({
        "outcome": "x", "group": pd.Categorical(TIERS, categories=TIERS, ordered=True),
        "estimate": [1.0, 0.8, 3.9, 0.0], "conf_low": [np.nan, 0.71, 1.8, 0.0],
        "conf_high": [np.nan, 0.91, 8.7, 3.1], "estimable": [True, True, True, False],
        "note": ["", "", "", "no events in this tier"], "is_reference": [True, False, False, False]})
    t.attrs["n_missing"] = 3
    return t


def test_add_evalues_rows_notes_and_shape():
    t = _or_table()
    before = t.copy()
    out = add_evalues(t, measure="OR", rare=True)
    pd.testing.assert_frame_equal(t, before)  # input untouched
    assert list(out.columns) == [*t.columns, "evalue", "evalue_ci"]
    assert out["group"].dtype == t["group"].dtype and out.attrs["n_missing"] == 3
    assert np.isnan(out["evalue"].iloc[0]) and out["note"].iloc[0] == "reference tier"
    assert out["evalue"].iloc[1] == pytest.approx(1.809017, abs=1e-6)
    assert out["evalue"].iloc[2] == pytest.approx(7.263034, abs=1e-6) and out["evalue_ci"].iloc[2] == pytest.approx(3.0)
    assert np.isnan(out["evalue"].iloc[3]) and out["note"].iloc[3] == "no events in this tier"


@pytest.mark.parametrize("change, match", [
    (lambda t: t.assign(estimate=t["estimate"].astype(str)), "must be numeric"),
    (lambda t: t.assign(estimate=np.log([1.0, 0.8, 3.9, 1.0])), "not log ratios"),
    (lambda t: t.assign(conf_low=[np.nan, 0.9, 1.8, 0.0]), "outside the interval"),
    (lambda t: t.drop(columns="conf_high"), "not found"),
])
def test_add_evalues_refuses_bad_tables(change, match):
    with pytest.raises(NeutrostatsError, match=match):
        add_evalues(change(_or_table()), measure="OR", rare=True)


def test_add_evalues_needs_rare_for_odds_ratios():
    with pytest.raises(NeutrostatsError, match="rare=True or rare=False"):
        add_evalues(_or_table(), measure="OR")


# --- empirical null ----------------------------------------------------------------

def _controls(log_rr, se):
    return pd.DataFrame({"estimate": np.exp(np.asarray(log_rr, float)), "std_error": np.asarray(se, float)})


def test_null_with_equal_standard_errors_has_a_closed_form():
    # all se = s: the ML mean is the plain mean and tau^2 = mean((y - ybar)^2) - s^2 (if > 0)
    y = np.array([0.1, 0.5, -0.2, 0.8, 0.3, 0.6, 0.0, 0.4, 0.9, 0.2, -0.1, 0.7])
    s = 0.15
    null = fit_systematic_error(_controls(y, np.full(12, s)))
    assert null.mu == pytest.approx(y.mean(), rel=1e-12)
    assert null.tau == pytest.approx(math.sqrt(np.mean((y - y.mean()) ** 2) - s * s), rel=1e-9)
    # with equal variances v = tau^2 + s^2: se(mu) = sqrt(v / n), se(tau) = sqrt(v^2 / (2 n tau^2))
    v = null.tau**2 + s * s
    assert null.mu_std_error == pytest.approx(math.sqrt(v / 12), rel=1e-9)
    assert null.tau_std_error == pytest.approx(math.sqrt(v * v / (2 * 12 * null.tau**2)), rel=1e-9)


def test_null_on_the_boundary_when_controls_scatter_less_than_their_errors():
    y = [0.01, -0.02, 0.015, 0.0, -0.01, 0.02, 0.005, -0.005, 0.01, 0.0]
    se = [0.3] * 5 + [0.2] * 5
    null = fit_systematic_error(_controls(y, se))
    w = 1 / np.square(se)
    assert null.tau == 0.0 and math.isnan(null.tau_std_error)
    assert null.mu == pytest.approx(np.sum(w * np.asarray(y)) / w.sum(), rel=1e-12)
    assert null.mu_std_error == pytest.approx(1 / math.sqrt(w.sum()), rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-2, 2), st.floats(0.02, 1.0)), min_size=3, max_size=30))
def test_null_fit_is_the_maximum_of_the_likelihood(data):
    y, s = (np.array(v) for v in zip(*data))
    mu, tau, ll = _ml_null(y, s)

    def loglik(m, t):
        v = t * t + s * s
        return -0.5 * np.sum(np.log(2 * np.pi * v) + (y - m) ** 2 / v)

    assert tau >= 0 and ll == pytest.approx(loglik(mu, tau), rel=1e-12, abs=1e-12)
    for dm, dt in ((1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3)):
        if tau + dt >= 0:
            assert loglik(mu + dm, tau + dt) <= ll + 1e-9


def test_too_few_controls_are_refused_and_few_warned():
    with pytest.raises(NeutrostatsError, match="at least 3 usable negative-control"):
        fit_systematic_error(_controls([0.1, 0.2], [0.1, 0.1]))
    with pytest.warns(NegativeControlWarning, match="only 5 negative-control estimates"):
        fit_systematic_error(_controls([0.1, 0.2, 0.3, 0.0, 0.5], [0.1] * 5))


def test_non_estimable_controls_are_dropped_and_counted():
    t = _controls([0.1, 0.2, 0.3, 0.0, 0.5, 0.4, 0.1, 0.2, 0.3, 0.6, 0.2, 0.0],
                  [0.1, 0.2, 0.1, np.nan, 0.1, 0.2, 0.3, 0.1, 0.1, 0.1, 0.2, 0.1])
    t["estimable"] = [True] * 11 + [False]
    t["is_reference"] = False
    ref = pd.DataFrame({"estimate": [1.0], "std_error": [np.nan], "estimable": [True], "is_reference": [True]})
    with pytest.warns(NegativeControlWarning, match="2 negative-control estimate"):
        null = fit_systematic_error(pd.concat([ref, t], ignore_index=True))
    assert (null.n_controls, null.n_dropped) == (10, 2)


def test_mid_p_controls_without_standard_errors_are_refused_with_the_remedy():
    t = _controls([0.1, 0.2, 0.3, 0.4], [np.nan] * 4)
    with pytest.raises(NeutrostatsError, match="method='logistic'"):
        fit_systematic_error(t)


@pytest.mark.parametrize("change, match", [
    (lambda t: t.assign(estimate=t["estimate"].astype(str)), "must be numeric"),
    (lambda t: t.assign(estimate=np.log(t["estimate"]) - 1), "ratios"),
    (lambda t: t.drop(columns="std_error"), "not found"),
])
def test_fit_refuses_bad_tables(change, match):
    t = _controls(np.linspace(-0.3, 0.5, 12), np.full(12, 0.1))
    with pytest.raises(NeutrostatsError, match=match):
        fit_systematic_error(change(t))


def test_tidy_of_the_null():
    null = fit_systematic_error(_controls(np.linspace(-0.3, 0.5, 12), np.full(12, 0.1)))
    tidy = null.tidy()
    assert list(tidy["term"]) == ["mu", "tau"] and list(tidy["n"]) == [12, 12]
    assert tidy["estimate"].tolist() == [null.mu, null.tau]


# --- calibration --------------------------------------------------------------------

def _null(mu, tau):
    return SystematicError(mu=mu, tau=tau, mu_std_error=0.0, tau_std_error=0.0, n_controls=50, n_dropped=0,
                           log_likelihood=0.0)


def test_null_of_zero_gives_the_traditional_p_value():
    # EmpiricalCalibration testthat: calibrateP(null(0, 0), c(0.1, 0.3), c(0.05, 0.1))
    out = calibrate(_controls([0.1, 0.3], [0.05, 0.1]), _null(0.0, 0.0))
    np.testing.assert_allclose(out["calibrated_p_value"], [0.045500266, 0.002699796], rtol=1e-7)
    np.testing.assert_allclose(out["calibrated_estimate"], np.exp([0.1, 0.3]), rtol=1e-14)


def test_calibration_hand_calculation():
    # log 2 = 0.693147; shifted by mu 0.2 -> 0.493147; sd sqrt(0.1^2 + 0.2^2) = 0.223607
    out = calibrate(_controls([math.log(2)], [0.2]), _null(0.2, 0.1), conf_level=0.90)
    sd = math.sqrt(0.01 + 0.04)
    z = 1.6448536269514722
    assert out["calibrated_std_error"].iloc[0] == pytest.approx(sd, rel=1e-14)
    assert out["calibrated_conf_low"].iloc[0] == pytest.approx(math.exp(math.log(2) - 0.2 - z * sd), rel=1e-12)
    assert out["calibrated_conf_high"].iloc[0] == pytest.approx(math.exp(math.log(2) - 0.2 + z * sd), rel=1e-12)
    assert out["calibrated_p_value"].iloc[0] == pytest.approx(math.erfc((math.log(2) - 0.2) / sd / math.sqrt(2)),
                                                              rel=1e-12)


def test_calibrate_rows_notes_and_refusals():
    t = _or_table().assign(std_error=[np.nan, 0.06, 0.4, np.nan])
    out = calibrate(t, _null(0.1, 0.1))
    assert out["group"].dtype == t["group"].dtype and out.attrs["n_missing"] == 3
    assert out["calibrated_estimate"].isna().tolist() == [True, False, False, True]
    assert out["note"].tolist() == ["reference tier", "", "", "no events in this tier"]
    with pytest.raises(NeutrostatsError, match="no row has a standard error"):
        calibrate(t.assign(std_error=np.nan), _null(0.1, 0.1))
    with pytest.raises(NeutrostatsError, match="SystematicError"):
        calibrate(t, {"mu": 0.1, "tau": 0.1})
    with pytest.raises(NeutrostatsError, match="conf_level"):
        calibrate(t, _null(0.1, 0.1), conf_level=95)


# --- negative controls of a cohort -------------------------------------------------------

@pytest.fixture(scope="module")
def cohort_table():
    import neutrostats as ns
    from neutrostats.synthetic import load_sample

    s = load_sample()
    return ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths).table


def test_negative_control_estimates_of_a_cohort(cohort_table):
    nc = negative_control_estimates(cohort_table, adjust=["age_at_index", "sex"])
    assert list(nc["outcome"].unique()) == ["solid_cancer", "autoimmune"]
    assert len(nc) == 8 and nc["is_reference"].sum() == 2 and (nc["method"] == "logistic").all()
    assert list(nc["group"].iloc[:4]) == TIERS and isinstance(nc["group"].dtype, pd.CategoricalDtype)
    assert nc["estimable"].all()
    with pytest.warns(NegativeControlWarning, match="only 6 negative-control estimates"):
        null = fit_systematic_error(nc)
    assert (null.n_controls, null.n_dropped) == (6, 0)


def test_tiers_without_events_are_dropped_from_the_controls(cohort_table):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sparse tiers of 3,000 persons: separation warnings
        nc = negative_control_estimates(cohort_table.iloc[:3000], adjust=["age_at_index", "sex"])
    # autoimmune: no events in the mild and moderate_severe tiers of these 3,000 persons
    assert nc["estimable"].tolist() == [True] * 6 + [False] * 2
    with pytest.warns(NegativeControlWarning) as record:
        null = fit_systematic_error(nc)
    messages = " ".join(str(w.message) for w in record)
    assert "2 negative-control estimate(s) dropped" in messages and "only 4 negative-control" in messages
    assert (null.n_controls, null.n_dropped) == (4, 2)


def test_negative_control_estimates_refuses_methods_without_standard_errors(cohort_table):
    with pytest.raises(NeutrostatsError, match="no standard error"):
        negative_control_estimates(cohort_table, method="midp")
    with pytest.raises(NeutrostatsError, match="outcomes is empty"):
        negative_control_estimates(cohort_table, outcomes=())
    with pytest.raises(NeutrostatsError, match="not_an_outcome"):
        negative_control_estimates(cohort_table, outcomes=("not_an_outcome",))


# --- simulation with known bias ---------------------------------------------------------

@pytest.mark.slow
def test_calibrated_intervals_cover_under_known_systematic_error():
    """Estimates = true effect + bias ~ N(mu, tau^2) + sampling error ~ N(0, se^2).

    Each replicate has 50 negative controls (true log ratio 0) and one
    estimate of interest (true log ratio 0 or log 2: the constant-error
    model holds by construction). Uncalibrated 95% Wald intervals ignore the
    bias and under-cover badly; calibrated ones must cover 93-97% pooled,
    each scenario within 4 binomial SEs of 95%.
    """
    rng = np.random.default_rng(20250219)
    scenarios = [(0.3, 0.2, 0.0), (-0.2, 0.3, math.log(2)), (0.4, 0.1, math.log(2))]
    reps, k = 500, 50
    z = 1.959963984540054
    covered, naive = [], []
    for mu, tau, theta in scenarios:
        hits = naive_hits = 0
        for _ in range(reps):
            se = rng.uniform(0.05, 0.4, k + 1)
            log_rr = rng.normal(mu, tau, k + 1) + rng.normal(0, se)
            log_rr[-1] += theta
            null = fit_systematic_error(_controls(log_rr[:k], se[:k]))
            out = calibrate(_controls(log_rr[k:], se[k:]), null)
            hits += out["calibrated_conf_low"].iloc[0] <= math.exp(theta) <= out["calibrated_conf_high"].iloc[0]
            naive_hits += abs(log_rr[-1] - theta) <= z * se[-1]
        covered.append(hits / reps)
        naive.append(naive_hits / reps)
    binomial_se = math.sqrt(0.95 * 0.05 / reps)
    assert 0.93 <= np.mean(covered) <= 0.97, covered
    assert all(abs(c - 0.95) <= 4 * binomial_se for c in covered), covered
    assert max(naive) < 0.75, naive
