"""Case weights of the time-to-event functions, the one missing-value rule, cumulative_incidence_at.

R reference values: ``tests/reference/weights_tte_reference.R`` (R 4.2.2,
survival 3.5.3; versions in the JSON header), committed as
``weights_tte_reference.json``. Data: ``lung.csv``, ``mgus2.csv`` and
``cr_ties.csv`` of ``tests/reference/data``; the weights are the same
deterministic function of the row number i = 1..n in R and here:
``w = 1 + (i % 3) / 2`` and ``w_int = 1 + (i % 3)``. R calls::

    survfit(Surv(time, status) ~ sex, weights = w, robust = FALSE, conf.type = "log-log")
    summary(fit, times = c(90, 180, 365, 730)); summary(fit, rmean = 730)$table
    summary(coxph(Surv(time, status) ~ factor(sex) + strata(old), weights = w))$sctest
    survfit(Surv(time, factor(status)) ~ sex, weights = w)                      # mgus2
    survfit(Surv(entry, time, factor(status)) ~ group, weights = w, id = id)   # cr_ties

Compared at 1e-6 relative. The hand calculations and the "weight k equals
the row repeated k times" properties need no R.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import neutrostats as ns
from neutrostats.errors import DataQualityWarning, NeutrostatsError
from neutrostats.stats.competing import cumulative_incidence, cumulative_incidence_at, gray_test
from neutrostats.stats.survival import kaplan_meier, logrank_test, restricted_mean_survival, survival_at
from neutrostats.stats.tte import check_tte

REF_DIR = Path(__file__).resolve().parent / "reference"
REF = json.loads((REF_DIR / "weights_tte_reference.json").read_text(encoding="utf-8"))
NONFINITE = {"Inf": np.inf, "-Inf": -np.inf, "NaN": np.nan, "NA": np.nan}
REL = 1e-6


def floats(values):
    values = values if isinstance(values, list) else [values]
    return np.array([NONFINITE[v] if isinstance(v, str) else v for v in values], dtype=float)


def with_weights(d):
    i = np.arange(1, len(d) + 1)
    return d.assign(w=1 + (i % 3) / 2, w_int=(1 + i % 3).astype(float))


def lung():
    d = with_weights(pd.read_csv(REF_DIR / "data" / "lung.csv"))
    return d.assign(old=(d["age"] >= 65).astype(int))


def mgus2():
    d = with_weights(pd.read_csv(REF_DIR / "data" / "mgus2.csv"))
    d["time"] = np.where(d["pstat"] == 1, d["ptime"], d["futime"])
    d["status"] = np.where(d["pstat"] == 1, 1, 2 * d["death"])
    return d


def close(got, want, rel=REL, abs_=1e-12):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=rel, atol=abs_)


def test_header_records_versions():
    h = REF["header"]
    assert h["packages"]["survival"] == "3.5.3" and "R version 4.2.2" in h["r_version"]
    assert h["script"] == "tests/reference/weights_tte_reference.R"


# --- weighted Kaplan-Meier against survfit ------------------------------------------------

@pytest.mark.parametrize("case", REF["km"], ids=lambda c: c["id"])
def test_weighted_km_against_survfit(case):
    group = None if case["group"] == "NA" or case["group"] is None else case["group"]
    km = kaplan_meier(lung(), "time", "status", group, weights=case["weights"], conf_type=case["conf_type"])
    for g, want in case["curves"].items():
        part = km[km["group"].astype(str) == g].iloc[1:]  # the time-0 row is ours, not survfit's
        close(part["time"], floats(want["time"]))
        for ours, theirs in [("n_risk", "n_risk"), ("n_event", "n_event"), ("n_censor", "n_censor"),
                             ("estimate", "surv"), ("std_error", "std_err_surv"),
                             ("conf_low", "lower"), ("conf_high", "upper")]:
            close(part[ours], floats(want[theirs]))
        assert part["n_risk"].dtype == float


@pytest.mark.parametrize("case", REF["km"], ids=lambda c: c["id"])
def test_weighted_survival_at_and_rmst_against_survfit(case):
    group = None if case["group"] == "NA" or case["group"] is None else case["group"]
    d = lung()
    times = floats(case["times"])
    at = survival_at(d, "time", "status", group, times=times, weights=case["weights"],
                     conf_type=case["conf_type"])
    for g, want in case["at"].items():
        part = at[at["group"].astype(str) == g]
        part = part[part["time"].isin(floats(want["time"]))]
        for ours, theirs in [("n_risk", "n_risk"), ("estimate", "surv"), ("std_error", "std_err"),
                             ("conf_low", "lower"), ("conf_high", "upper")]:
            close(part[ours], floats(want[theirs]))
    rm = restricted_mean_survival(d, "time", "status", group, horizon=case["rmean_horizon"],
                                  weights=case["weights"])
    for g, want in case["rmean"].items():
        row = rm[rm["group"].astype(str) == g].iloc[0]
        close([row["estimate"], row["std_error"]], [want["rmean"], want["se"]])


# --- weighted log-rank = score test of the weighted Cox model ------------------------------

@pytest.mark.parametrize("case", REF["score"], ids=lambda c: c["id"])
def test_weighted_logrank_is_coxph_score_test(case):
    d = lung()
    strata = None if case["strata"] in (None, "NA") else case["strata"]
    kwargs = {"strata": strata, "weights": case["weights"], "trend": bool(case["trend"])}
    if case["group"] == "ph.ecog":
        # R drops the row with a missing ph.ecog; so does logrank_test, and says so.
        with pytest.warns(DataQualityWarning, match=r"logrank_test: 1 of 228 rows left out.*'ph.ecog' 1"):
            res = logrank_test(d, "time", "status", case["group"], **kwargs)
        assert res.n_missing == 1
    else:
        res = logrank_test(d, "time", "status", case["group"], **kwargs)
        assert res.n_missing == 0
    close([res.statistic, res.p_value], [case["statistic"], case["p_value"]])
    assert res.df == case["df"]
    assert res.method.endswith("_weighted")
    assert res.table["n"].sum() == pytest.approx(d.loc[d[case["group"]].notna(), case["weights"]].sum())


def test_weighted_logrank_without_ties_is_the_weighted_count_logrank():
    # No tied times: the Cox score test at 0 is (O - E)^2 / V with weighted counts, V = sum over event
    # times of the weighted at-risk fractions f (1 - f) times the (weighted) deaths.
    df = pd.DataFrame({"t": [1.0, 2, 3, 4], "e": [1, 1, 1, 0], "g": ["a", "b", "a", "b"],
                       "w": [2.0, 1.0, 1.0, 3.0]})
    # t=1: risk a 3, b 4, death a (w 2): E_a = 2*3/7, V = 2*(3/7)(4/7)
    # t=2: risk a 1, b 4, death b (w 1): E_a = 1/5,   V = (1/5)(4/5)
    # t=3: risk a 1, b 3, death a (w 1): E_a = 1/4,   V = (1/4)(3/4)
    o_a = 3.0
    e_a = 6 / 7 + 1 / 5 + 1 / 4
    v = 2 * 12 / 49 + 4 / 25 + 3 / 16
    res = logrank_test(df, "t", "e", "g", weights="w")
    assert res.statistic == pytest.approx((o_a - e_a) ** 2 / v, rel=1e-12)
    assert res.table["observed"].tolist() == [3.0, 1.0]
    assert res.table["expected"].iloc[0] == pytest.approx(e_a, rel=1e-12)


# --- weighted Aalen-Johansen against survfit ------------------------------------------------

def _cif_data(case):
    if "mgus2" in case["data"]:
        return mgus2()
    return with_weights(pd.read_csv(REF_DIR / "data" / "cr_ties.csv"))


@pytest.mark.parametrize("cause", [1, 2])
@pytest.mark.parametrize("case", REF["cif"], ids=lambda c: c["id"])
def test_weighted_cif_against_survfit(case, cause):
    entry = None if case["entry"] in (None, "NA") else case["entry"]
    ci = cumulative_incidence(_cif_data(case), "time", "status", case["group"], cause=cause, entry=entry,
                              weights=case["weights"])
    for g, want in case["curves"].items():
        part = ci[ci["group"].astype(str) == g].iloc[1:]
        close(part["time"], floats(want["time"]))
        k = str(cause)
        close(part["estimate"], floats(want["pstate"][k]))
        close(part["std_error"], floats(want["std_err"][k]), abs_=1e-14)
        lo, hi = floats(want["lower"][k]), floats(want["upper"][k])
        zero = floats(want["pstate"][k]) == 0  # R gives NA where F = 0, we give 0
        close(part["conf_low"].to_numpy()[~zero], lo[~zero])
        close(part["conf_high"].to_numpy()[~zero], hi[~zero])


# --- integer weights are repeated rows -------------------------------------------------------

def _repeated(df, w):
    return df.loc[df.index.repeat(df[w].astype(int))].reset_index(drop=True)


def _sample(n=240, seed=7):
    rng = np.random.default_rng(seed)
    t = rng.integers(1, 20, n).astype(float)
    return pd.DataFrame({
        "t": t, "ev": rng.integers(0, 3, n), "g": rng.choice(["x", "y", "z"], n),
        "st": rng.choice(["s1", "s2"], n), "entry": np.where(rng.random(n) < 0.6, 0.0, np.floor(rng.random(n) * t)),
        "k": rng.integers(0, 4, n).astype(float),
    }).assign(e=lambda d: (d["ev"] > 0).astype(int))


def _on_common_times(weighted, repeated, cols):
    m = weighted.merge(repeated, on=["group", "time"], suffixes=("_w", "_r"))
    # Times where only weight-0 rows exit are rows of the weighted table alone (as in R); every
    # time of the repeated table is in the weighted one.
    assert len(m) == len(repeated)
    for c in cols:
        close(m[f"{c}_w"], m[f"{c}_r"], rel=1e-12, abs_=1e-12)


@pytest.mark.parametrize("entry", [None, "entry"])
def test_integer_weights_equal_repeated_rows_km(entry):
    df = _sample()
    rep = _repeated(df, "k")
    km_w = kaplan_meier(df, "t", "e", "g", weights="k", entry=entry)
    km_r = kaplan_meier(rep, "t", "e", "g", entry=entry)
    _on_common_times(km_w, km_r, ["n_risk", "n_event", "n_censor", "estimate", "std_error", "conf_low",
                                  "conf_high"])
    at_w = survival_at(df, "t", "e", "g", times=[3, 7.5, 12], weights="k", entry=entry)
    at_r = survival_at(rep, "t", "e", "g", times=[3, 7.5, 12], entry=entry)
    for c in ["n_risk", "estimate", "std_error", "mortality"]:
        close(at_w[c], at_r[c], rel=1e-12)
    rm_w = restricted_mean_survival(df, "t", "e", "g", horizon=10, weights="k", entry=entry)
    rm_r = restricted_mean_survival(rep, "t", "e", "g", horizon=10, entry=entry)
    close(rm_w["estimate"], rm_r["estimate"], rel=1e-12)
    close(rm_w["std_error"], rm_r["std_error"], rel=1e-12)


@pytest.mark.parametrize("entry", [None, "entry"])
def test_integer_weights_equal_repeated_rows_cif(entry):
    df = _sample(seed=11)
    rep = _repeated(df, "k")
    ci_w = cumulative_incidence(df, "t", "ev", "g", weights="k", entry=entry)
    ci_r = cumulative_incidence(rep, "t", "ev", "g", entry=entry)
    # The IJ standard error of a weight k is k U, not sqrt(k) U (see the docstring): not compared.
    _on_common_times(ci_w, ci_r, ["n_risk", "estimate", "n_event", "n_competing", "n_censor"])


def test_unit_weights_equal_no_weights():
    df = _sample(seed=3).assign(one=1.0)
    for entry in (None, "entry"):
        a = cumulative_incidence(df, "t", "ev", "g", entry=entry)
        b = cumulative_incidence(df, "t", "ev", "g", entry=entry, weights="one")
        for c in ["estimate", "std_error", "conf_low", "conf_high", "n_risk"]:
            close(b[c], a[c], rel=1e-12, abs_=1e-15)
        a = kaplan_meier(df, "t", "e", "g", entry=entry)
        b = kaplan_meier(df, "t", "e", "g", entry=entry, weights="one")
        for c in ["estimate", "std_error", "n_risk", "n_event"]:
            close(b[c], a[c], rel=1e-12)


def test_weighted_logrank_observed_expected_equal_repeated_rows():
    df = _sample(seed=5)
    rep = _repeated(df, "k")
    w = logrank_test(df, "t", "e", "g", weights="k", strata="st")
    r = logrank_test(rep, "t", "e", "g", strata="st")
    close(w.table["observed"], r.table["observed"], rel=1e-12)
    close(w.table["expected"], r.table["expected"], rel=1e-12)
    close(w.table["n"], r.table["n"], rel=1e-12)
    assert w.method == "logrank_stratified_weighted" and w.df == 2


def test_weighted_km_by_hand():
    # weights 2, 1, 1, 0.5 at t = 1 (event), 2 (censored), 3 (event), 4 (event)
    df = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 0, 1, 1], "w": [2.0, 1.0, 1.0, 0.5]})
    km = kaplan_meier(df, "t", "e", weights="w")
    # n = 4.5, 2.5, 1.5, 0.5; S = 2.5/4.5, then * 0.5/1.5, then * 0
    s1, s3 = 2.5 / 4.5, 2.5 / 4.5 * (0.5 / 1.5)
    assert km["n_risk"].tolist() == [4.5, 4.5, 2.5, 1.5, 0.5]
    assert km["n_censor"].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    close(km["estimate"], [1.0, s1, s1, s3, 0.0], rel=1e-14)
    # Greenwood on the weighted counts: var(log S(1)) = 2 / (4.5 * 2.5)
    assert km["std_error"].iloc[1] == pytest.approx(s1 * np.sqrt(2 / (4.5 * 2.5)), rel=1e-12)


# --- the weights column: one rule in check_tte -------------------------------------------

@pytest.mark.parametrize("bad, found", [
    ([1.0, -0.5, 1.0, 1.0], r"found 1 of 4 rows that are not \(e\.g\. \[-0\.5\]\)"),
    ([1.0, np.inf, 1.0, 1.0], r"found 1 of 4 rows that are not \(e\.g\. \[inf\]\)"),
])
def test_weights_negative_or_infinite_refused(bad, found):
    df = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 0, 1, 2], "w": bad})
    for call in (lambda: kaplan_meier(df.assign(e=df["e"].clip(0, 1)), "t", "e", weights="w"),
                 lambda: cumulative_incidence(df, "t", "e", weights="w")):
        with pytest.raises(NeutrostatsError, match=r"column 'w' \(case weights\) must hold finite numbers >= 0, "
                           + found):
            call()


def test_weights_text_refused_with_the_fix():
    df = pd.DataFrame({"t": [1, 2, 3], "e": [1, 0, 1], "w": ["1.5", "2", "1"]})
    with pytest.raises(NeutrostatsError, match=r"kaplan_meier: column 'w' \(case weights\) must be numeric.*"
                       r"numbers written as text: convert them with pandas\.to_numeric"):
        kaplan_meier(df, "t", "e", weights="w")
    with pytest.raises(NeutrostatsError, match=r"case weights.*boolean"):
        kaplan_meier(df.assign(w=[True, False, True]), "t", "e", weights="w")
    with pytest.raises(NeutrostatsError, match=r"is 0 in every one of the 3 rows"):
        kaplan_meier(df.assign(w=0.0), "t", "e", weights="w")
    with pytest.raises(NeutrostatsError, match=r"needs the columns|not found|missing|'nope'"):
        kaplan_meier(df.assign(w=1.0), "t", "e", weights="nope")


def test_missing_weight_is_a_missing_value():
    df = pd.DataFrame({"t": [1.0, 2, 3, 4, 5], "e": [1, 0, 1, 1, 0], "w": [1.0, np.nan, 2.0, 1.0, 1.0]})
    with pytest.warns(DataQualityWarning, match=r"check: 1 of 5 rows left out.*'w' 1"):
        chk = check_tte(df, "check", duration="t", event="e", weights="w")
    assert chk.n_missing == 1 and chk.weights.tolist() == [1.0, 2.0, 1.0, 1.0]
    with pytest.warns(DataQualityWarning, match=r"kaplan_meier: 1 of 5 rows left out"):
        km = kaplan_meier(df, "t", "e", weights="w")
    assert km.attrs["n_missing"] == 1 and km.attrs["missing"] == {"w": 1}
    assert km["n_risk"].iloc[0] == 5.0  # 1 + 2 + 1 + 1


def test_gray_test_refuses_weights():
    df = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 2, 1, 0], "g": list("abab"), "w": 1.0})
    with pytest.raises(NeutrostatsError, match=r"gray_test: weights='w'.*cmprsk::cuminc takes no weights.*"
                       r"cumulative_incidence\(\.\.\., weights=\.\.\.\)"):
        gray_test(df, "t", "e", "g", weights="w")


# --- issue 17: one missing group value ------------------------------------------------------

def _eight_rows():
    return pd.DataFrame({"t": [1.0, 2, 3, 4, 5, 6, 7, 8], "e": [1, 1, 0, 1, 2, 1, 0, 1],
                         "g": ["a", "b", "a", None, "a", "b", "a", "b"]})


def test_one_missing_group_value_warns_and_counts_in_km_cif_logrank():
    df = _eight_rows()
    msg = r"{}: 1 of 8 rows left out \(complete cases\).*'g' 1.*n_missing = 1"
    with pytest.warns(DataQualityWarning, match=msg.format("kaplan_meier")):
        km = kaplan_meier(df.assign(e=(df["e"] > 0).astype(int)), "t", "e", "g")
    assert km.attrs["n_missing"] == 1
    assert km.groupby("group")["n_risk"].first().to_dict() == {"a": 4, "b": 3}  # 7 of 8 rows, said so
    with pytest.warns(DataQualityWarning, match=msg.format("cumulative_incidence")):
        ci = cumulative_incidence(df, "t", "e", "g")
    assert ci.attrs["n_missing"] == 1
    with pytest.warns(DataQualityWarning, match=msg.format("logrank_test")):
        lr = logrank_test(df.assign(e=(df["e"] > 0).astype(int)), "t", "e", "g")
    assert lr.n_missing == 1 and lr.table["n"].sum() == 7
    with pytest.warns(DataQualityWarning, match=msg.format("survival_at")):
        assert survival_at(df.assign(e=(df["e"] > 0).astype(int)), "t", "e", "g").attrs["n_missing"] == 1
    with pytest.warns(DataQualityWarning, match=msg.format("restricted_mean_survival")):
        rm = restricted_mean_survival(df.assign(e=(df["e"] > 0).astype(int)), "t", "e", "g", horizon=5)
    assert rm.attrs["n_missing"] == 1
    with pytest.warns(DataQualityWarning, match=msg.format("gray_test")):
        assert gray_test(df, "t", "e", "g").attrs["n_missing"] == 1


# --- cumulative_incidence_at ----------------------------------------------------------------

def test_cumulative_incidence_at_by_hand():
    # group a: t 1 (cause 1), 2 (competing), 2 (censored), 3 (cause 1), 4 (competing), 5 (censored)
    df = pd.DataFrame({"t": [1, 2, 2, 3, 4, 5, 2, 6], "ev": [1, 2, 0, 1, 2, 0, 1, 0],
                       "tier": pd.Categorical(["a"] * 6 + ["b"] * 2, categories=["b", "a"])})
    ci = cumulative_incidence(df, "t", "ev", "tier")
    at = cumulative_incidence_at(ci, [0, 2.5, 3, 5, 5.5])
    assert at.columns.tolist() == ["group", "time", "n_risk", "estimate", "std_error", "conf_low", "conf_high"]
    assert at["group"].dtype == ci["group"].dtype and at["group"].astype(str).tolist() == ["b"] * 5 + ["a"] * 5
    a = at[at["group"] == "a"]
    # F_a: 1/6 after t = 1; S(3-) = (5/6)(4/5) = 4/6, n(3) = 3: F(3) = 1/6 + (4/6)(1/3) = 7/18
    close(a["estimate"], [0.0, 1 / 6, 7 / 18, 7 / 18, np.nan], rel=1e-14)
    assert a["n_risk"].tolist() == [6, 3, 3, 1, 0]
    b = at[at["group"] == "b"]
    # F_b: 1/2 after t = 2 (n = 2), last time 6; every requested time is within follow-up
    close(b["estimate"], [0.0, 0.5, 0.5, 0.5, 0.5], rel=1e-14)
    assert b["n_risk"].tolist() == [2, 1, 1, 1, 1]
    row = ci[(ci["group"] == "a") & (ci["time"] == 3)].iloc[0]
    got = a[a["time"] == 3].iloc[0]
    assert (got["std_error"], got["conf_low"], got["conf_high"]) == (
        row["std_error"], row["conf_low"], row["conf_high"])


def test_cumulative_incidence_at_weighted_and_exported():
    df = _sample(seed=13)
    ci = cumulative_incidence(df, "t", "ev", "g", weights="k")
    at = ns.cumulative_incidence_at(ci, [5, 10])
    assert at["n_risk"].dtype == float
    rep = cumulative_incidence_at(cumulative_incidence(_repeated(df, "k"), "t", "ev", "g"), [5, 10])
    close(at["estimate"], rep["estimate"], rel=1e-12)
    close(at["n_risk"], rep["n_risk"], rel=1e-12)
    assert "cumulative_incidence_at" in ns.__all__


def test_cumulative_incidence_at_keeps_missing_count_and_refuses_bad_input():
    df = _eight_rows()
    with pytest.warns(DataQualityWarning):
        ci = cumulative_incidence(df, "t", "e", "g")
    assert cumulative_incidence_at(ci, 3).attrs["n_missing"] == 1
    for bad in ([-1], [np.inf], [], ["x"]):
        with pytest.raises(NeutrostatsError, match=r"cumulative_incidence_at: times must be finite numbers >= 0"):
            cumulative_incidence_at(ci, bad)
    with pytest.raises(NeutrostatsError, match=r"cumulative_incidence_at"):
        cumulative_incidence_at(ci.drop(columns="n_competing"), [1])
