"""Landmark analysis and models on time-updated tiers, against R (survival 3.5.3).

Reference values come from ``tests/reference/timevarying_models_reference.R`` (R 4.2.2, survival
3.5.3), committed as ``tests/reference/timevarying_models_reference.json`` with its data in
``tests/reference/data/timevarying_models_*.csv``. The script writes a synthetic cohort (labs,
persons, diagnoses, deaths: the input of ``build_cohort``), derives the follow-up from it by
itself, builds start-stop rows with ``survival::tmerge`` (and those of ``survival::pbc`` +
``pbcseq``, the survival vignette's example) and the landmark data sets with its own code.

* the cohort built here from the same four tables has R's follow-up (a check of the input);
* ``landmark()`` returns R's landmark rows (to 1e-13) (two designs: death at 0.5, 1, 2 years;
  malignancy with death competing, horizon 2 years, counts valid 365 days);
* ``landmark_hazard_ratios``: ``coxph(Surv(time, status == 1) ~ tier + age + sex)`` per landmark and
  ``+ strata(landmark) + cluster(id)`` pooled (Efron and Breslow);
* ``time_varying_hazard_ratios``: ``coxph(Surv(tstart, tstop, event) ~ tier + ... + cluster(id))``
  on the tmerge rows (synthetic death and malignancy, pbcseq with bilirubin tiers);
* ``simon_makuch``: ``survfit(Surv(tstart, tstop, event) ~ tier)`` (no id) on the spells;
  ``simon_makuch_cumulative_incidence``: ``survfit(Surv(tstart, tstop, factor(status)) ~ tier,
  id = spell)`` (R refuses start-stop multi-state data without id; see the JSON header).

Tolerance 1e-6 relative, as the neighbouring R tests (``test_cox_r.py``, ``test_survival_r.py``);
landmark rows are compared to 1e-13 (R writes them with 17 significant digits).
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from neutrostats import build_cohort
from neutrostats.errors import NeutrostatsError
from neutrostats.stats.timevarying import (
    landmark,
    landmark_hazard_ratios,
    simon_makuch,
    simon_makuch_cumulative_incidence,
    time_varying_hazard_ratios,
)

REF_DIR = Path(__file__).resolve().parent / "reference"
DATA = REF_DIR / "data"
REF = json.loads((REF_DIR / "timevarying_models_reference.json").read_text(encoding="utf-8"))
TIERS = ["normal", "subnormal", "mild", "moderate_severe"]
BILI = ["lt1", "1to2", "2to4", "ge4"]
DPY = 365.25
REL = 1e-6
NONFINITE = {"Inf": np.inf, "-Inf": -np.inf, "NaN": np.nan, "NA": np.nan}


def floats(values):
    values = values if isinstance(values, list) else [values]
    return np.array([NONFINITE[v] if isinstance(v, str) else v for v in values], dtype=float)


def csv(name):
    return pd.read_csv(DATA / f"timevarying_models_{name}.csv", keep_default_na=False, na_values=[""])


@lru_cache(maxsize=1)
def cohort():
    labs = pd.read_csv(DATA / "timevarying_models_labs.csv", dtype={"value": str})
    persons = pd.read_csv(DATA / "timevarying_models_persons.csv")
    dx = pd.read_csv(DATA / "timevarying_models_diagnoses.csv")
    deaths = pd.read_csv(DATA / "timevarying_models_deaths.csv")
    return build_cohort(labs, persons, dx, deaths, code=None, outcomes={"malignancy": ["C81-C96"]},
                        scheme="andersen2016", followup_years=4)


def tv_rows(name, levels, years=True):
    """R's tmerge rows in the vocabulary of time_varying_tiers (years since index for the cohort)."""
    d = csv(name)
    scale = DPY if years else 1.0
    out = pd.DataFrame({"person_id": d["id"], "start": d["tstart"] / scale, "stop": d["tstop"] / scale,
                        "tier": pd.Categorical(d["tier"], categories=levels, ordered=True),
                        "age": d["age"], "sex": d["sex"]})
    if "event" in d:
        out["event"] = d["event"].astype(np.int64)
    if "status" in d:
        out["status"] = d["status"].astype(np.int64)
        if "event" not in d:
            out["event"] = (d["status"] == 1).astype(np.int64)
    return out


def r_term(name):
    for t in [*TIERS, *BILI]:
        if name == f"tier{t}":
            return t
    return {"sexM": "sex[M]", "sexm": "sex[m]"}.get(name, name)


def assert_cox(got, ref, what):
    est = got[~got["is_reference"] & got["estimable"]].set_index("term")
    assert list(est.index) == [r_term(n) for n in ref["coef_names"]], what
    terms = [ref["terms"][n] for n in ref["coef_names"]]
    for col, key in [("estimate", "hazard_ratio"), ("std_error", "std_error"), ("conf_low", "conf_low"),
                     ("conf_high", "conf_high"), ("p_value", "p_value")]:
        np.testing.assert_allclose(est[col].to_numpy(dtype=float), floats([t[key] for t in terms]), rtol=REL,
                                   err_msg=f"{what} {col}")


# --- the input: the cohort has R's follow-up -------------------------------------------------


def test_cohort_follow_up_is_the_one_r_derived():
    c = cohort()
    assert len(c.table) == 1000
    for outcome, name, col in (("death", "tv_death", "event"), ("malignancy", "tv_malignancy", "status")):
        d = csv(name)
        last = d.groupby("id").tail(1).set_index("id")
        tte = c.time_to_event(outcome).set_index("person_id")
        assert sorted(tte.index) == sorted(last.index)
        np.testing.assert_array_equal(tte.loc[last.index, "time"].to_numpy(), last["tstop"].to_numpy() / DPY)
        np.testing.assert_array_equal(tte.loc[last.index, "status"].to_numpy(), last[col].to_numpy())
    assert c.time_to_event("malignancy").attrs["n_prevalent"] == 1000 - REF["landmark"]["counts"][
        "malignancy_h2_carry365"]["n_persons"]


# --- landmark() against R's landmark data sets --------------------------------------------------

DESIGNS = {
    "death": dict(outcome="death"),
    "malignancy_h2_carry365": dict(outcome="malignancy", horizon=2, max_carry_days=365),
}


@pytest.mark.parametrize("design", list(DESIGNS))
def test_landmark_rows_match_r(design):
    c = cohort()
    lm = landmark(c, [2, 0.5, 1], columns=["age_at_index", "sex"], **DESIGNS[design])
    r = csv("landmarks")
    r = r[r["design"] == design].reset_index(drop=True)
    assert len(lm) == len(r)
    np.testing.assert_array_equal(lm["landmark"].to_numpy(), r["landmark"].to_numpy(dtype=float))
    np.testing.assert_array_equal(lm["person_id"].to_numpy(), r["id"].to_numpy())
    assert lm["tier"].astype(str).tolist() == r["tier"].tolist()
    np.testing.assert_array_equal(lm["anc_per_ul"].to_numpy(), r["anc"].to_numpy(dtype=float))
    days = (lm["sampled_at"].dt.floor("D") - c.table.set_index("person_id").loc[lm["person_id"], "index_date"]
            .to_numpy()).dt.days
    np.testing.assert_array_equal(days.to_numpy(dtype=float, na_value=np.nan), r["count_day"].to_numpy(dtype=float))
    # To the last bits (numpy 1.26 and 2 round the day/365.25 difference differently in the 16th digit).
    np.testing.assert_allclose(lm["time"].to_numpy(), r["time"].to_numpy(dtype=float), rtol=1e-13, atol=0)
    np.testing.assert_array_equal(lm["status"].to_numpy(), r["status"].to_numpy())
    np.testing.assert_allclose(lm["age_at_index"].to_numpy(), r["age"].to_numpy(dtype=float), rtol=1e-13, atol=0)
    assert lm["sex"].tolist() == r["sex"].tolist()
    counts = REF["landmark"]["counts"][design]
    got = lm.attrs["landmarks"]
    assert got["landmark"] == floats(counts["landmark"]).tolist()
    assert got["n_at_risk"] == counts["n_at_risk"] and got["n_unknown"] == counts["n_unknown"]
    assert lm.attrs["n_persons"] == counts["n_persons"]
    assert [a + b for a, b in zip(got["n_at_risk"], got["n_ended"])] == [counts["n_persons"]] * 3
    assert got["landmark_day"] == [182, 365, 730]
    expect = TIERS + (["unknown"] if "max_carry_days" in DESIGNS[design] else [])
    assert list(lm["tier"].cat.categories) == expect and lm["tier"].cat.ordered


def test_landmark_models_match_coxph():
    c = cohort()
    lm = landmark(c, [0.5, 1, 2], columns=["age_at_index", "sex"]).rename(columns={"age_at_index": "age"})
    ref = REF["landmark"]
    fits = {ties: landmark_hazard_ratios(lm, adjust=["age", "sex"], ties=ties, per_landmark=ties == "efron")
            for ties in ("efron", "breslow")}
    for ties, hr in fits.items():
        pooled = hr[hr["landmark"] == "pooled"]
        assert_cox(pooled, ref[f"pooled_{ties}"], f"pooled {ties}")
        assert (pooled["n"].iloc[-1], pooled["n_event"].iloc[-1]) == (ref[f"pooled_{ties}"]["n"],
                                                                      ref[f"pooled_{ties}"]["nevent"])
        assert hr.attrs["variance"]["pooled"] == "robust"
    hr = fits["efron"]
    assert hr["landmark"].unique().tolist() == [0.5, 1.0, 2.0, "pooled"]
    assert fits["breslow"]["landmark"].unique().tolist() == ["pooled"]
    for key, r in ref["per_landmark"].items():
        part = hr[hr["landmark"] == float(key)]
        assert_cox(part, r, f"landmark {key}")
        assert (part["n"].iloc[-1], part["n_event"].iloc[-1]) == (r["n"], r["nevent"])
        assert hr.attrs["variance"][float(key)] == "model"


# --- Cox with a time-varying tier ---------------------------------------------------------------

TV_COX = {
    "synthetic_death_efron": ("tv_death", TIERS, True, ["age", "sex"], "efron"),
    "synthetic_death_breslow": ("tv_death", TIERS, True, ["age", "sex"], "breslow"),
    "synthetic_malignancy_efron": ("tv_malignancy", TIERS, True, ["age"], "efron"),
    "pbcseq_efron": ("pbcseq", BILI, False, ["age", "sex"], "efron"),
    "pbcseq_breslow": ("pbcseq", BILI, False, ["age"], "breslow"),
}


@pytest.mark.parametrize("case_id", list(TV_COX))
def test_time_varying_cox_matches_coxph_cluster(case_id):
    name, levels, years, adjust, ties = TV_COX[case_id]
    tv = tv_rows(name, levels, years)
    ref = REF["timevarying"]["cox"][case_id]
    hr = time_varying_hazard_ratios(tv, adjust=adjust, ties=ties)
    assert_cox(hr, ref, case_id)
    assert hr.attrs["variance"] == "robust"
    assert hr.attrs["n_intervals"] == ref["n"] == len(tv)
    assert int(hr["n_event"].iloc[-1]) == ref["nevent"]
    # n counts persons with time in the tier (by hand from the rows), not intervals
    persons = tv.groupby("tier", observed=False)["person_id"].nunique()
    tier_rows = hr[hr["group"].notna()].set_index("term")
    assert tier_rows["n"].to_dict() == persons.to_dict()
    assert hr["n"].iloc[-1] == tv["person_id"].nunique() == hr.attrs["n_persons"]


def test_splitting_an_interval_changes_nothing():
    """A cut inside an interval (same tier, same covariates) leaves the partial likelihood and the
    person-clustered sandwich as they are."""
    tv = tv_rows("tv_death", TIERS)
    long = tv["stop"] - tv["start"] > 1
    first = tv[long].assign(stop=lambda d: d["start"] + 0.5, event=0)
    second = tv[long].assign(start=lambda d: d["start"] + 0.5)
    split = pd.concat([tv[~long], first, second]).sort_values(["person_id", "start"], kind="stable")
    a = time_varying_hazard_ratios(tv, adjust=["age", "sex"])
    b = time_varying_hazard_ratios(split, adjust=["age", "sex"])
    assert b.attrs["n_intervals"] == len(tv) + int(long.sum())
    for col in ("estimate", "std_error", "p_value", "n", "n_event"):
        np.testing.assert_allclose(b[col].to_numpy(dtype=float), a[col].to_numpy(dtype=float), rtol=1e-9,
                                   equal_nan=True)


# --- curves by current tier ---------------------------------------------------------------------

KM_CASES = {"synthetic_death": ("tv_death", TIERS, True), "pbcseq_death": ("pbcseq", BILI, False)}


@pytest.mark.parametrize("case_id", list(KM_CASES))
def test_simon_makuch_matches_survfit(case_id):
    name, levels, years = KM_CASES[case_id]
    ref = REF["timevarying"]["km"][case_id]
    km = simon_makuch(tv_rows(name, levels, years), conf_type=ref["conf_type"])
    km = km[km["time"] > 0].reset_index(drop=True)  # R has no row at time 0
    assert km["group"].astype(str).tolist() == ref["group"]
    np.testing.assert_allclose(km["time"], floats(ref["time"]), rtol=1e-12)
    for col in ("n_risk", "n_event", "n_censor"):
        np.testing.assert_array_equal(km[col].to_numpy(), floats(ref[col]), err_msg=col)
    for col in ("estimate", "std_error"):
        np.testing.assert_allclose(km[col].to_numpy(dtype=float), floats(ref[col]), rtol=REL, atol=1e-12,
                                   equal_nan=True, err_msg=col)
    # R's log-log interval is NA where S is 1 (nothing to transform); ours is [1, 1] there
    for col in ("conf_low", "conf_high"):
        want = floats(ref[col])
        ok = np.isfinite(want)
        np.testing.assert_allclose(km[col].to_numpy(dtype=float)[ok], want[ok], rtol=REL, err_msg=col)
        assert (km["estimate"].to_numpy()[~ok] % 1 == 0).all()


AJ_CASES = {"synthetic_malignancy": ("tv_malignancy", TIERS, True),
            "pbcseq_death_transplant": ("pbcseq", BILI, False)}


@pytest.mark.parametrize("case_id", list(AJ_CASES))
def test_simon_makuch_cumulative_incidence_matches_survfit_with_spell_ids(case_id):
    name, levels, years = AJ_CASES[case_id]
    ref = REF["timevarying"]["aj"][case_id]
    ci = simon_makuch_cumulative_incidence(tv_rows(name, levels, years))
    ci = ci[ci["time"] > 0].reset_index(drop=True)
    assert ci["group"].astype(str).tolist() == ref["group"]
    np.testing.assert_allclose(ci["time"], floats(ref["time"]), rtol=1e-12)
    for col in ("n_risk", "n_event", "n_competing", "n_censor"):
        np.testing.assert_array_equal(ci[col].to_numpy(), floats(ref[col]), err_msg=col)
    for col in ("estimate", "std_error", "conf_low", "conf_high"):
        want = floats(ref[col])
        ok = np.isfinite(want)  # R's interval is NA where F = 0; ours is [0, 0]
        np.testing.assert_allclose(ci[col].to_numpy(dtype=float)[ok], want[ok], rtol=REL, atol=1e-12, err_msg=col)
        assert (ci["estimate"].to_numpy()[~ok] == 0).all()


def test_curves_are_the_same_on_rows_and_on_spells():
    """Merging a person's consecutive rows in one tier changes no estimate (only the censoring rows)."""
    tv = tv_rows("tv_death", TIERS)
    km = simon_makuch(tv)
    assert km.attrs["n_spells"] < len(tv)
    from neutrostats import kaplan_meier

    raw = kaplan_meier(tv, "stop", "event", group="tier", entry="start")
    ev_km, ev_raw = km[km["n_event"] > 0], raw[raw["n_event"] > 0]
    for col in ("time", "n_risk", "estimate", "std_error"):
        np.testing.assert_allclose(ev_km[col].to_numpy(dtype=float), ev_raw[col].to_numpy(dtype=float), rtol=1e-12)


# --- hand-calculated cases and rules ------------------------------------------------------------


@lru_cache(maxsize=1)
def tiny():
    """Person 1: counts 2500 (day 0), 1200 and 900 on day 100, 1600 on day 400, dies on day 500.
    Person 2: 3000 on day 0, dies on day 365. Person 3: 1700 on day 0, alive at end of data."""
    d0 = pd.Timestamp("2010-01-01")
    at = lambda p, day, hm: (p, (d0 + pd.Timedelta(days=day)).strftime("%Y-%m-%d ") + hm)  # noqa: E731
    rows = [(*at(1, 0, "09:00"), "2500"), (*at(1, 100, "09:00"), "1200"), (*at(1, 100, "15:00"), "900"),
            (*at(1, 400, "09:00"), "1600"), (*at(2, 0, "10:00"), "3000"), (*at(3, 0, "11:00"), "1700")]
    labs = pd.DataFrame(rows, columns=["person_id", "sampled_at", "value"]).assign(unit="cells/uL")
    persons = pd.DataFrame({"person_id": [1, 2, 3], "sex": ["F", "M", "F"], "birth_date": "1950-01-01",
                            "end_of_data": "2012-12-31"})
    deaths = pd.DataFrame({"person_id": [1, 2], "died_at": [(d0 + pd.Timedelta(days=500)).strftime("%Y-%m-%d"),
                                                            (d0 + pd.Timedelta(days=365)).strftime("%Y-%m-%d")]})
    dx = pd.DataFrame({"person_id": pd.Series([], dtype=np.int64), "diagnosed_at": pd.Series([], dtype=str),
                       "code": pd.Series([], dtype=str)})
    return build_cohort(labs, persons, dx, deaths, code=None, outcomes={"malignancy": ["C81-C96"]})


def test_landmark_by_hand():
    c = tiny()
    lm = landmark(c, [100 / DPY, 0.5, 1, 2], columns=["age_at_landmark"])
    d100 = 100 / DPY
    rows = {(r.landmark, r.person_id): r for r in lm.itertuples()}
    # day 100 (the landmark given as 100 / 365.25 years): the lowest count of that day, 900
    r = rows[(d100, 1)]
    assert (r.tier, r.anc_per_ul, r.time, r.status) == ("moderate_severe", 900.0, 500 / DPY - 100 / DPY, 1)
    assert r.sampled_at == pd.Timestamp("2010-04-11 15:00")
    # day 182 (0.5 years): still 900; person 2 (dies on day 365) is at risk, time 365/365.25 - 0.5
    assert rows[(0.5, 1)].tier == "moderate_severe"
    assert rows[(0.5, 2)].time == 365 / DPY - 0.5 and rows[(0.5, 2)].tier == "normal"
    # person 3 (1700) is subnormal; follow-up to the end of data, censored
    assert rows[(0.5, 3)].tier == "subnormal" and rows[(0.5, 3)].status == 0
    # day 365 (1 year): person 2 died on the landmark day, so is not at risk there
    assert (1.0, 2) not in rows and rows[(1.0, 1)].tier == "moderate_severe"
    # day 730 (2 years): person 1 died on day 500
    assert [k[1] for k in rows if k[0] == 2.0] == [3]
    assert lm.attrs["landmarks"]["n_ended"] == [0, 0, 1, 2]
    assert lm.attrs["landmarks"]["landmark_day"] == [100, 182, 365, 730]
    assert rows[(1.0, 1)].age_at_landmark == pytest.approx(c.table["age_at_index"].iloc[0] + 1, rel=1e-15)


def test_landmark_horizon_and_expired_counts_by_hand():
    c = tiny()
    lm = landmark(c, [0.5, 1.2], horizon=0.25, max_carry_days=200)
    first = lm[lm["person_id"] == 1].set_index("landmark")
    # 0.5 years = day 182: the day-100 count is 82 days old; dies at 500 days, beyond the horizon
    assert first.loc[0.5, "tier"] == "moderate_severe"
    assert (first.loc[0.5, "time"], first.loc[0.5, "status"]) == (0.25, 0)
    # 1.2 years = day 438: the day-400 count (1600, subnormal) is 38 days old
    assert first.loc[1.2, "tier"] == "subnormal" and first.loc[1.2, "time"] == 500 / DPY - 1.2
    assert first.loc[1.2, "status"] == 1  # 0.169 years < horizon
    third = lm[lm["person_id"] == 3].set_index("landmark")
    # person 3's only count is on day 0: 182 days old at 0.5 (valid), 438 at 1.2 (expired)
    assert third.loc[0.5, "tier"] == "subnormal"
    assert third.loc[1.2, "tier"] == "unknown" and np.isnan(third.loc[1.2, "anc_per_ul"])
    assert pd.isna(third.loc[1.2, "sampled_at"])
    assert lm.attrs["landmarks"]["n_unknown"] == [0, 1]


def test_simon_makuch_by_hand():
    """Person 1 normal on (0, 1] then mild, dies at 4; person 2 mild, dies at 3; person 3 normal,
    censored at 2; person 4 normal on (0, 2], mild on (2, 2.5] (a count that kept the tier: (2.5, 5]),
    censored at 5. Mild curve: at 3 at risk 1 (1, 4] and (0, 3] and (2, 5] -> 3, one death: 2/3;
    at 4: at risk 2, one death: 1/3; Greenwood var at 4 = (1/3)^2 (1/(3*2) + 1/(2*1))."""
    cat = lambda v: pd.Categorical(v, categories=["normal", "mild"], ordered=True)  # noqa: E731
    tv = pd.DataFrame({"person_id": [1, 1, 2, 3, 4, 4, 4], "start": [0.0, 1, 0, 0, 0, 2, 2.5],
                       "stop": [1.0, 4, 3, 2, 2, 2.5, 5], "event": [0, 1, 1, 0, 0, 0, 0],
                       "tier": cat(["normal", "mild", "mild", "normal", "normal", "mild", "mild"])})
    km = simon_makuch(tv).set_index(["group", "time"])
    assert km.attrs["n_spells"] == 6
    assert km.loc[("mild", 3.0), "n_risk"] == 3 and km.loc[("mild", 3.0), "estimate"] == pytest.approx(2 / 3)
    assert km.loc[("mild", 4.0), "estimate"] == pytest.approx(1 / 3)
    assert km.loc[("mild", 4.0), "std_error"] == pytest.approx(np.sqrt((1 / 3) ** 2 * (1 / 6 + 1 / 2)), rel=1e-12)
    assert ("mild", 2.5) not in km.index  # the cut that kept the tier is no censoring
    assert km.loc[("normal", 2.0), "n_censor"] == 2  # person 3 censored, person 4 moved to mild


# --- refusals -------------------------------------------------------------------------------------


def test_refusals():
    c = tiny()
    with pytest.raises(NeutrostatsError, match="keep_measurements=True"):
        landmark(dataclasses.replace(c, measurements=None), 1)
    with pytest.raises(NeutrostatsError, match="at must be"):
        landmark(c, [-1])
    with pytest.raises(NeutrostatsError, match="at must be"):
        landmark(c, "1")
    with pytest.raises(NeutrostatsError, match="twice"):
        landmark(c, [1, 1.0])
    with pytest.raises(NeutrostatsError, match="not columns of cohort.table"):
        landmark(c, 1, columns=["age"])
    with pytest.raises(NeutrostatsError, match="already"):
        landmark(c, 1, columns=["tier"])
    with pytest.raises(NeutrostatsError, match="max_carry_days"):
        landmark(c, 1, max_carry_days=1.5)
    with pytest.raises(NeutrostatsError, match="not an outcome"):
        landmark(c, 1, outcome="stroke")
    cat = pd.Categorical(["normal", "mild", "normal"], categories=["normal", "mild"], ordered=True)
    overlap = pd.DataFrame({"person_id": [1, 1, 2], "start": [0.0, 1, 0], "stop": [2.0, 3, 2], "event": [0, 1, 1],
                            "status": [0, 1, 1], "tier": cat})
    for f in (time_varying_hazard_ratios, simon_makuch):
        with pytest.raises(NeutrostatsError, match="overlap"):
            f(overlap)
    early = overlap.assign(start=[0.0, 2, 0], event=[1, 0, 1], status=[1, 0, 1])
    with pytest.raises(NeutrostatsError, match="only a person's last row"):
        simon_makuch_cumulative_incidence(early.assign(tier=pd.Categorical(["normal"] * 3, categories=["normal",
                                                                           "mild"], ordered=True)))
    lm = landmark(c, [0.5])
    with pytest.raises(NeutrostatsError, match="0 \\(censored\\), 1"):
        landmark_hazard_ratios(lm.assign(status=3))
    with pytest.raises(NeutrostatsError, match="at landmark 0.5"):
        landmark_hazard_ratios(lm.assign(status=0))  # no events


# --- invariants -------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(s=st.floats(min_value=0, max_value=6, allow_nan=False), carry=st.sampled_from([None, 30, 365]))
def test_landmark_invariants(s, carry):
    """The tier is that of a count on or before the landmark day, the latest and lowest of its day, and
    every person of the cohort is either at risk or has ended follow-up."""
    c = cohort()
    lm = landmark(c, s, max_carry_days=carry)
    info = lm.attrs["landmarks"]
    lday = info["landmark_day"][0]
    assert info["n_at_risk"][0] + info["n_ended"][0] == len(c.table) and len(lm) == info["n_at_risk"][0]
    assert (lm["time"] > 0).all()
    m = c.measurements.merge(c.table[["person_id", "index_date"]], on="person_id")
    m["day"] = (m["sampled_at"].dt.floor("D") - m["index_date"]).dt.days
    known = m[(m["day"] <= lday) & m["person_id"].isin(lm["person_id"])]
    latest = known[known["day"] == known.groupby("person_id")["day"].transform("max")]
    lowest = latest.groupby("person_id")["anc_per_ul"].min()
    latest_day = latest.groupby("person_id")["day"].first()
    got = lm.set_index("person_id")
    fresh = (lday - latest_day.loc[got.index] <= carry) if carry is not None else pd.Series(True, index=got.index)
    np.testing.assert_array_equal(got["anc_per_ul"][fresh.to_numpy()], lowest.loc[got.index][fresh.to_numpy()])
    assert (got["tier"][~fresh.to_numpy()] == "unknown").all()
    assert info["n_unknown"][0] == int((~fresh).sum())


def test_landmark_does_not_depend_on_the_order_of_the_measurements():
    c = cohort()
    shuffled = dataclasses.replace(c, measurements=c.measurements.sample(frac=1, random_state=7))
    a = landmark(c, [0.5, 1, 2], max_carry_days=365)
    b = landmark(shuffled, [0.5, 1, 2], max_carry_days=365)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("outcome, name", [("death", "tv_death"), ("malignancy", "tv_malignancy")])
def test_time_varying_tiers_gives_the_tmerge_rows_end_to_end(outcome, name):
    """The whole path: time_varying_tiers on the cohort, then the model, equals tmerge + coxph."""
    tvmod = pytest.importorskip("neutrostats.cohort.timevarying")
    tv = tvmod.time_varying_tiers(cohort(), outcome, columns=("age_at_index", "sex"))
    r = tv_rows(name, TIERS)
    np.testing.assert_array_equal(tv["person_id"].to_numpy(), r["person_id"].to_numpy())
    for col in ("start", "stop", "event"):
        np.testing.assert_array_equal(tv[col].to_numpy(), r[col].to_numpy(), err_msg=col)
    assert tv["tier"].astype(str).tolist() == r["tier"].astype(str).tolist()
    case = "synthetic_death_efron" if outcome == "death" else "synthetic_malignancy_efron"
    adjust = ["age", "sex"] if outcome == "death" else ["age"]
    hr = time_varying_hazard_ratios(tv.rename(columns={"age_at_index": "age"}), adjust=adjust)
    assert_cox(hr, REF["timevarying"]["cox"][case], case)
