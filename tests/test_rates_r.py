"""Rates, rate ratios, Poisson regression, Lexis splitting and SIR/SMR against R.

Reference values come from ``tests/reference/rates_reference.R`` (R 4.2.2;
epiR 2.0.57, popEpi 0.4.10, Epi 2.47, MASS 7.3-58.2, sandwich 3.0-2,
survival 3.5-3), committed as ``tests/reference/rates_reference.json``; its
header records the versions, the command that regenerates it and what each
number is. Compared at 1e-6 relative (most agree to ~1e-12):

* one rate: ``poisson.test(d, T)`` / ``epiR::epi.conf(ctype = "inc.rate",
  method = "exact")`` (exact), ``epiR::epi.smr(method = "byar")`` (Byar),
  ``epiR::epi.smr(method = "rothman.greenland")`` (Wald, log scale);
* two groups: ``poisson.test(c(x1, x0), c(t1, t0))`` (exact conditional
  ratio, interval, p), ``epiR::epi.2by2(method = "cohort.time")`` (its
  "wald" IRR interval, which is the exact one, and the rate difference);
* a synthetic cohort (``data/rates_cohort.csv``): rates by tier, with and
  without a 4-year horizon;
* ``glm(family = poisson, offset = log(py))``, ``vcovHC(type = "HC0")``,
  ``glm(family = quasipoisson)``, ``MASS::glm.nb`` (continued to
  convergence), on the synthetic cohort and on survival's ``veteran`` (real
  data), and on the split cohort with ``vcovCL(cluster = ~id, type =
  "HC0")``;
* ``popEpi::splitMulti`` person-years and deaths per age band x period x
  tier cell;
* SIR/SMR: the synthetic cohort against a made-up reference table, and
  popEpi's ``sire`` (real data) against its ``popmort`` life table (SMR of
  all-cause death), expected counts by hand and by ``popEpi::sir``, exact
  (``poisson.test``) and Byar (``epi.smr``) limits.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neutrostats.stats.rates import (
    incidence_rates,
    poisson_regression,
    rate_ratios,
    split_follow_up,
    standardized_incidence_ratio,
)

REF_DIR = Path(__file__).resolve().parent / "reference"
DATA = REF_DIR / "data"
REF = json.loads((REF_DIR / "rates_reference.json").read_text(encoding="utf-8"))
TIERS = ["normal", "subnormal", "mild", "moderate_severe"]
REL = 1e-6


def _num(v):
    return float(v) if not isinstance(v, str) else {"Inf": math.inf, "-Inf": -math.inf}.get(v, math.nan)


def _close(a, b, rel=REL, abs_=0.0):
    a, b = float(a), _num(b)
    if math.isinf(b) or math.isnan(b):
        return a == b or (math.isnan(a) and math.isnan(b))
    return abs(a - b) <= rel * abs(b) + abs_


def _one_group(d, t):
    """``d`` events and one censored row, ``t`` person-time in all."""
    k = int(d) + 1
    return pd.DataFrame({"time": [t / k] * k, "event": [1] * int(d) + [0]})


def _cohort():
    d = pd.read_csv(DATA / "rates_cohort.csv")
    d["tier"] = pd.Categorical(d["tier"], categories=TIERS, ordered=True)
    return d


# --- one rate ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", REF["rates"], ids=lambda c: f"d{c['n_event']}_T{c['person_time']}_{c['conf_level']}")
def test_rate_intervals_match_r(case):
    d = _one_group(case["n_event"], case["person_time"])
    for method in ("exact", "byar", "wald"):
        want = case[method]
        if method != "exact" and case["n_event"] == 0:
            continue
        r = incidence_rates(d, duration="time", event="event", by=None, per=1, conf_level=case["conf_level"],
                            method=method).iloc[0]
        assert r["n_event"] == case["n_event"] and _close(r["person_years"], case["person_time"], 1e-12)
        assert _close(r["estimate"], case["n_event"] / case["person_time"])
        assert _close(r["conf_low"], want["conf_low"], abs_=1e-300), (method, r["conf_low"], want)
        assert _close(r["conf_high"], want["conf_high"]), (method, r["conf_high"], want)


def test_zero_events_exact_lower_is_zero_and_wald_is_marked():
    case = next(c for c in REF["rates"] if c["n_event"] == 0 and c["conf_level"] == 0.95)
    d = _one_group(0, case["person_time"])
    r = incidence_rates(d, duration="time", event="event", by=None, per=1).iloc[0]
    assert r["conf_low"] == 0 and _close(r["conf_high"], case["exact"]["conf_high"])
    w = incidence_rates(d, duration="time", event="event", by=None, per=1, method="wald").iloc[0]
    assert np.isnan(w["conf_low"]) and "undefined" in w["note"] and w["estimate"] == 0


# --- two groups ----------------------------------------------------------------------------


def _two(case):
    a = _one_group(case["x1"], case["t1"]).assign(g="b")
    b = _one_group(case["x0"], case["t0"]).assign(g="a")
    d = pd.concat([a, b], ignore_index=True)
    d["g"] = pd.Categorical(d["g"], categories=["a", "b"], ordered=True)
    return d


@pytest.mark.parametrize("case", REF["two_groups"], ids=lambda c: f"{c['x1']}_{c['t1']}_{c['x0']}_{c['t0']}")
def test_rate_ratio_and_difference_match_r(case):
    r = rate_ratios(_two(case), duration="time", event="event", by="g")
    mine = r[r["group"] == "b"].set_index(["contrast", "method"])
    ex = mine.loc[("ratio", "exact")]
    want = case["exact"]
    assert _close(ex["estimate"], want["estimate"]) and _close(ex["p_value"], want["p_value"])
    assert _close(ex["conf_low"], want["conf_low"], abs_=1e-300) and _close(ex["conf_high"], want["conf_high"])
    if case["x1"] > 0:  # epiR gives NaN without events in the group
        assert _close(ex["conf_low"], case["epir_irr"]["conf_low"], abs_=1e-300)
        assert _close(ex["conf_high"], case["epir_irr"]["conf_high"])
    diff = mine.loc[("difference", "wald")]
    for k in ("estimate", "conf_low", "conf_high"):
        assert _close(diff[k], case["difference_per_1000"][k], abs_=1e-12), (k, diff[k])
    ref = r[r["is_reference"]].set_index(["contrast", "method"])
    assert ref.loc[("ratio", "exact"), "estimate"] == 1 and ref.loc[("difference", "wald"), "estimate"] == 0


def test_rate_ratio_wald_by_hand():
    # 30 events in 1000.5 py against 45 in 2500: log RR = log((30/1000.5)/(45/2500)), se = sqrt(1/30 + 1/45)
    case = next(c for c in REF["two_groups"] if c["x1"] == 30)
    w = rate_ratios(_two(case), duration="time", event="event", by="g")
    w = w[(w["group"] == "b") & (w["method"] == "wald") & (w["contrast"] == "ratio")].iloc[0]
    lr, se = math.log((30 / 1000.5) / (45 / 2500)), math.sqrt(1 / 30 + 1 / 45)
    assert w["std_error"] == pytest.approx(se, rel=1e-12)
    assert w["conf_low"] == pytest.approx(math.exp(lr - 1.959963984540054 * se), rel=1e-12)


# --- a cohort ------------------------------------------------------------------------------


def test_rates_by_tier_match_r():
    r = incidence_rates(_cohort(), duration="death_time", event="death").set_index("group")
    for t in TIERS:
        want = REF["cohort_by_tier"][t]
        row = r.loc[t]
        assert row["n"] == want["n"] and row["n_event"] == want["n_event"]
        for mine, key in (("person_years", "person_years"), ("estimate", "rate_per_1000"),
                          ("conf_low", "conf_low"), ("conf_high", "conf_high")):
            assert _close(row[mine], want[key]), (t, mine)
    h = incidence_rates(_cohort(), duration="death_time", event="death", horizon=4).set_index("group")
    for t in TIERS:
        want = REF["cohort_by_tier_horizon_4"][t]
        assert h.loc[t, "n_event"] == want["n_event"] and _close(h.loc[t, "person_years"], want["person_years"])


# --- Poisson regression --------------------------------------------------------------------

AGE_BREAKS = [_num(x) for x in REF["split"]["age_breaks"]]
PER_BREAKS = REF["split"]["period_breaks"]


def _split_cohort():
    return split_follow_up(_cohort(), duration="death_time", event="death", age="age_at_index", date="index_year",
                           breaks={"age": AGE_BREAKS, "period": PER_BREAKS})


def _vet():
    v = pd.read_csv(DATA / "veteran.csv")
    v["celltype"] = pd.Categorical(v["celltype"], categories=["squamous", "smallcell", "adeno", "large"],
                                   ordered=True)
    v["py"] = v["time"] / 365.25
    return v


# id -> (data, poisson_regression keywords, R coefficient name -> our term)
GLM_CASES = {
    "cohort": (_cohort, dict(duration="death_time", event="death", adjust=["age_at_index", "sex"]),
               {"tiersubnormal": "subnormal", "tiermild": "mild", "tiermoderate_severe": "moderate_severe",
                "age_at_index": "age_at_index", "sexM": "sex[M]"}),
    "veteran": (_vet, dict(duration="py", event="status", by="celltype", adjust=["karno", "age", "trt"]),
                {"celltypesmallcell": "smallcell", "celltypeadeno": "adeno", "celltypelarge": "large",
                 "karno": "karno", "age": "age", "trt": "trt"}),
}


def _glm_ref(case_id):
    return next(g for g in REF["glm"] if g["id"] == case_id)


@pytest.mark.parametrize("case_id", list(GLM_CASES))
@pytest.mark.parametrize("variance,est,se,p", [
    ("model", "estimate", "std_error", "p_value"),
    ("robust", "estimate", "robust_std_error", None),
    ("quasi", "estimate", "quasi_std_error", "quasi_p_value"),
    ("negative_binomial", "nb_estimate", "nb_std_error", "nb_p_value"),
])
def test_poisson_regression_matches_r(case_id, variance, est, se, p):
    data, kw, names = GLM_CASES[case_id]
    ref = _glm_ref(case_id)
    r = poisson_regression(data(), variance=variance, **kw).set_index("term")
    for rname, term in names.items():
        want = ref["terms"][rname]
        assert _close(np.log(r.loc[term, "estimate"]), want[est], 1e-6, 1e-9), (term, variance)
        assert _close(r.loc[term, "std_error"], want[se]), (term, variance, r.loc[term, "std_error"], want[se])
        if p is not None:
            assert _close(r.loc[term, "p_value"], want[p], 1e-5, 1e-14), (term, variance)
    if variance == "negative_binomial":
        assert r.attrs["theta"] == pytest.approx(ref["theta"], rel=1e-6)
        # MASS::glm.nb with its default control stops early; it agrees to its own tolerance
        assert r.attrs["theta"] == pytest.approx(ref["glm_nb_default_theta"], rel=1e-2)
    if variance == "quasi":
        assert r.attrs["dispersion"] == pytest.approx(ref["dispersion"], rel=1e-6)


def test_poisson_regression_on_split_data_cluster_robust_matches_r():
    ref = _glm_ref("cohort_split")
    sp = _split_cohort()
    kw = dict(duration="exit", event="event", entry="entry", adjust=["age_band", "sex"])
    model = poisson_regression(sp, **kw).set_index("term")
    robust = poisson_regression(sp, variance="robust", cluster="person_id", **kw).set_index("term")
    assert robust.attrs["n_clusters"] == len(_cohort())
    for rname, want in ref["terms"].items():
        if rname == "(Intercept)":
            continue
        term = (rname[len("tier"):] if rname.startswith("tier") else
                f"age_band[{rname[len('age_band'):]}]" if rname.startswith("age_band") else "sex[M]")
        assert _close(np.log(model.loc[term, "estimate"]), want["estimate"], 1e-6, 1e-9), term
        assert _close(model.loc[term, "std_error"], want["std_error"]), term
        assert _close(robust.loc[term, "std_error"], want["cluster_std_error"]), term


# --- Lexis splitting ------------------------------------------------------------------------


def test_split_follow_up_matches_popepi_splitmulti():
    sp = _split_cohort()
    assert len(sp) == REF["split"]["n_pieces"]
    cells = sp.groupby(["age_band", "period", "tier"], observed=True).agg(
        person_years=("exit", "sum"), start=("entry", "sum"), n_event=("event", "sum"))
    cells["person_years"] -= cells.pop("start")
    want = {(c["age_band"], c["period"], c["tier"]): c for c in REF["split"]["cells"]}
    assert len(cells) == len(want)
    for key, row in cells.iterrows():
        w = want[tuple(str(k) for k in key)]
        assert row["n_event"] == w["n_event"] and _close(row["person_years"], w["person_years"], 1e-9), key


# --- SIR / SMR ------------------------------------------------------------------------------


def _check_sir(result, rows, method="exact"):
    res = result.set_index("group")
    assert len(res) == len(rows)
    for w in rows:
        r = res.loc[w["group"]]
        assert r["n_event"] == w["observed"], w["group"]
        assert _close(r["expected"], w["expected"], 1e-9) and _close(r["person_years"], w["person_years"], 1e-9)
        assert _close(r["expected"], w["popepi_expected"], 0, 1e-4)  # popEpi rounds to 4 decimals
        assert _close(r["estimate"], w["sir"], 1e-9)
        assert _close(r["conf_low"], w[f"{method}_conf_low"]) and _close(r["conf_high"], w[f"{method}_conf_high"])
        assert _close(r["p_value"], w["p_value"], 1e-6, 1e-300)


@pytest.mark.parametrize("method", ["exact", "byar"])
def test_sir_synthetic_cohort_matches_r(method):
    ref = pd.read_csv(DATA / "rates_reference_table.csv")
    sp = _split_cohort()
    res = standardized_incidence_ratio(sp, ref, by="tier", method=method)
    assert list(res["group"]) == [*TIERS, "all"]
    _check_sir(res[res["group"] != "all"], REF["sir"]["cohort_by_tier"], method)
    _check_sir(res[res["group"] == "all"], REF["sir"]["cohort_all"], method)


def _sire_reference():
    pm = pd.read_csv(DATA / "rates_popmort.csv")
    age = pm["agegroup"].astype(int)
    return pd.DataFrame({
        "age_band": [f"[{a},{a + 1})" if a < 100 else "[100,Inf)" for a in age],
        "sex": pm["sex"].astype(str),
        "period": [f"[{y},{y + 1})" for y in pm["year"].astype(int)],
        "rate": pm["haz"],
    })


def test_smr_of_popepi_sire_against_popmort_matches_r():
    si = pd.read_csv(DATA / "rates_sire.csv")
    si["sex"] = si["sex"].astype(str)
    sp = split_follow_up(si, duration="fu_years", event="dead", age="age_at_dg", date="dg_year",
                         breaks={"age": [*range(0, 101), math.inf], "period": list(range(1993, 2014))})
    assert len(sp) == REF["sire_split"]["n_pieces"] and int(sp["event"].sum()) == REF["sire_split"]["deaths"]
    res = standardized_incidence_ratio(sp, _sire_reference(), by="dg_after_2002")
    _check_sir(res[res["group"] != "all"], REF["sir"]["sire_by_period"])
    _check_sir(res[res["group"] == "all"], REF["sir"]["sire_all"])
