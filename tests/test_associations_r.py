"""Odds ratios against R.

Reference values come from ``tests/reference/or_reference.R`` (R 4.2.2,
epitools 0.5.10.1, brglm2 0.9, stats), committed as
``tests/reference/or_reference.json``; its header records the versions and
the command that regenerates it. R's ``fisher.test`` and epitools solve
their equations only to ``uniroot``'s default tolerance (about 1e-4), so the
script also computes the same definitions to 1e-12 (``exact_precise``,
``midp_precise``): those are compared at 1e-6, the package values at 5e-3.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neutrostats import SmallCellWarning, mantel_haenszel, odds_ratio, odds_ratios_by_tier, trend_test

REF_DIR = Path(__file__).resolve().parent / "reference"
REF = json.loads((REF_DIR / "or_reference.json").read_text(encoding="utf-8"))
TIERS = ["normal", "subnormal", "mild", "moderate_severe"]
NONFINITE = {"Inf": np.inf, "-Inf": -np.inf, "NaN": np.nan, "NA": np.nan}


def num(v):
    return NONFINITE[v] if isinstance(v, str) else float(v)


def close(got, want, rel, abs_=0.0):
    want = num(want)
    if np.isnan(want):
        return np.isnan(got)
    if np.isinf(want):
        return got == want
    return abs(got - want) <= max(rel * abs(want), abs_)


def check(result, expected, rel, fields=("estimate", "conf_low", "conf_high", "p_value"), abs_=0.0):
    for f in fields:
        got = getattr(result, f) if not isinstance(result, dict) else result[f]
        assert close(got, expected[f], rel, abs_), f"{f}: got {got!r}, R {expected[f]!r}"


CASES = REF["two_by_two"]


def _cells(case):
    return dict(exposed_events=case["exposed_events"], exposed_nonevents=case["exposed_nonevents"],
                unexposed_events=case["unexposed_events"], unexposed_nonevents=case["unexposed_nonevents"])


def _has_zero(case):
    return min(_cells(case).values()) == 0


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_wald_and_haldane(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallCellWarning)
        wald = odds_ratio(**_cells(case), method="wald", conf_level=case["conf_level"])
    hal = odds_ratio(**_cells(case), method="wald", correction="haldane", conf_level=case["conf_level"])
    check(hal, case["wald_haldane"], 1e-9)
    assert hal.method == "wald_haldane"
    if not _has_zero(case):
        check(wald, case["wald"], 1e-9)
    else:
        # R returns NaN bounds where the SE is infinite; neutrostats gives the
        # limit of the Wald interval, 0 to inf, and the same point estimate.
        assert close(wald.estimate, case["wald"]["estimate"], 1e-12) or (
            np.isnan(wald.estimate) and num(case["wald"]["estimate"]) != num(case["wald"]["estimate"]))
        assert (wald.conf_low, wald.conf_high) == (0.0, np.inf)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_exact_against_precise_r_and_fisher_test(case):
    r = odds_ratio(**_cells(case), method="exact", conf_level=case["conf_level"])
    no_events = case["exposed_events"] + case["unexposed_events"] == 0
    if no_events:
        # R reports 0 for a table without events; the conditional
        # distribution is a single point, so neutrostats reports no estimate.
        assert np.isnan(r.estimate)
        check(r, case["exact_precise"], 1e-9, fields=("conf_low", "conf_high", "p_value"))
        return
    check(r, case["exact_precise"], 1e-6)
    # The p-value needs no root finding: fisher.test's own value matches.
    assert close(r.p_value, case["exact"]["p_value"], 1e-9)
    check(r, case["exact"], 5e-3, fields=("estimate", "conf_low", "conf_high"))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_midp_against_precise_r_and_epitools(case):
    r = odds_ratio(**_cells(case), method="midp", conf_level=case["conf_level"])
    if case["exposed_events"] + case["unexposed_events"] == 0:
        assert np.isnan(r.estimate)
        check(r, case["midp_precise"], 1e-9, fields=("conf_low", "conf_high", "p_value"))
        return
    check(r, case["midp_precise"], 1e-6, abs_=1e-300)
    if not isinstance(case["midp"]["estimate"], str):  # epitools fails on zero cells
        check(r, case["midp"], 5e-3, fields=("estimate", "conf_low", "conf_high"))


# --- logistic regression -----------------------------------------------------------------


def _dataset(entry):
    df = pd.read_csv(REF_DIR.parent.parent / entry["csv"])
    df["tier"] = pd.Categorical(df["tier"], categories=TIERS, ordered=True)
    return df


def _term(tier):
    return f"tier{tier}"


LOGISTIC = REF["logistic"]


@pytest.mark.parametrize("entry", LOGISTIC, ids=[e["id"] for e in LOGISTIC])
@pytest.mark.parametrize("model, adjust", [("adjusted", ["age", "sex"]), ("crude", [])])
def test_logistic_against_glm(entry, model, adjust):
    df = _dataset(entry)
    out = odds_ratios_by_tier(df, "y", method="logistic", adjust=adjust).set_index("group")
    terms = entry["models"][model]["terms"]
    for tier in TIERS[1:]:
        t = terms[_term(tier)]
        row = out.loc[tier]
        assert row["estimate"] == pytest.approx(np.exp(t["estimate"]), rel=1e-6)
        assert row["std_error"] == pytest.approx(t["std_error"], rel=1e-6)
        assert row["conf_low"] == pytest.approx(np.exp(t["conf_low"]), rel=1e-6)
        assert row["conf_high"] == pytest.approx(np.exp(t["conf_high"]), rel=1e-6)
        assert row["p_value"] == pytest.approx(t["p_value"], rel=1e-6)
    assert out["n"].sum() == entry["n"] and out["n_event"].sum() == entry["n_events"]


def test_logistic_natural_spline_for_age_against_glm_ns():
    entry = next(e for e in LOGISTIC if "spline_age" in e["models"])
    df = _dataset(entry)
    out = odds_ratios_by_tier(df, "y", method="logistic", adjust=["age", "sex"], spline={"age": 4}).set_index("group")
    terms = entry["models"]["spline_age"]["terms"]
    for tier in TIERS[1:]:
        t = terms[_term(tier)]
        assert out.loc[tier, "estimate"] == pytest.approx(np.exp(t["estimate"]), rel=1e-6)
        assert out.loc[tier, "std_error"] == pytest.approx(t["std_error"], rel=1e-6)


# --- Firth -----------------------------------------------------------------------------------

FIRTH = REF["firth"]


@pytest.mark.parametrize("entry", FIRTH, ids=[e["id"] for e in FIRTH])
def test_firth_against_r(entry):
    df = pd.read_csv(REF_DIR.parent.parent / entry["csv"])
    df["tier"] = pd.Categorical(df["tier"], categories=TIERS, ordered=True)
    adjust = [c for c in ("age", "sex") if c in entry["formula"]]
    out = odds_ratios_by_tier(df, "y", method="firth", adjust=adjust).set_index("group")
    for tier in TIERS[1:]:
        t = entry["terms"][_term(tier)]
        row = out.loc[tier]
        # Point estimates: logistf's definition and brglm2 (AS_mean) agree.
        assert np.log(row["estimate"]) == pytest.approx(t["estimate"], rel=1e-6, abs=1e-9)
        assert np.log(row["estimate"]) == pytest.approx(t["brglm2_estimate"], rel=1e-6, abs=1e-8)
        assert row["std_error"] == pytest.approx(t["std_error"], rel=1e-6)
        assert np.log(row["conf_low"]) == pytest.approx(t["conf_low"], rel=1e-4, abs=1e-6)
        assert np.log(row["conf_high"]) == pytest.approx(t["conf_high"], rel=1e-4, abs=1e-6)
        assert row["p_value"] == pytest.approx(t["p_value"], rel=1e-4)


# --- Mantel-Haenszel and trend ------------------------------------------------------------


def _strata_frame(strata):
    rows = []
    for k, (a, b, c, d) in enumerate(strata):
        rows += [(k, 1, 1)] * a + [(k, 1, 0)] * b + [(k, 0, 1)] * c + [(k, 0, 0)] * d
    return pd.DataFrame(rows, columns=["stratum", "exposed", "y"])


MH = REF["mantel_haenszel"]


@pytest.mark.parametrize("case", MH, ids=[c["id"] for c in MH])
def test_mantel_haenszel_against_mantelhaen_test(case):
    df = _strata_frame(case["strata"])
    for corrected, key in ((False, "uncorrected"), (True, "corrected")):
        for tarone, bd_key in ((False, "breslow_day"), (True, "breslow_day_tarone")):
            r = mantel_haenszel(df, "y", "exposed", "stratum", conf_level=case["conf_level"],
                                continuity_correction=corrected, tarone=tarone)
            check(r, case, 1e-6, fields=("estimate", "conf_low", "conf_high"))
            assert r.statistic == pytest.approx(case[key]["statistic"], rel=1e-6)
            assert r.p_value == pytest.approx(case[key]["p_value"], rel=1e-6)
            assert r.homogeneity_statistic == pytest.approx(case[bd_key]["statistic"], rel=1e-6)
            assert r.homogeneity_p_value == pytest.approx(case[bd_key]["p_value"], rel=1e-6)


TREND = REF["trend"]


@pytest.mark.parametrize("case", TREND, ids=[c["id"] for c in TREND])
def test_trend_against_prop_trend_test_and_glm(case):
    rows = []
    for k, (e, n) in enumerate(zip(case["events"], case["n"])):
        rows += [(TIERS[k], 1)] * e + [(TIERS[k], 0)] * (n - e)
    df = pd.DataFrame(rows, columns=["tier", "y"])
    df["tier"] = pd.Categorical(df["tier"], categories=TIERS[: len(case["n"])], ordered=True)
    out = trend_test(df, "y", scores=case["scores"]).set_index("test")
    ca, lg = case["cochran_armitage"], case["logistic_score"]
    assert out.loc["cochran_armitage", "statistic"] == pytest.approx(ca["statistic"], rel=1e-6, abs=1e-12)
    assert out.loc["cochran_armitage", "p_value"] == pytest.approx(ca["p_value"], rel=1e-6)
    assert out.loc["logistic_score", "estimate"] == pytest.approx(lg["estimate"], rel=1e-6, abs=1e-10)
    assert out.loc["logistic_score", "std_error"] == pytest.approx(lg["std_error"], rel=1e-6)
    assert out.loc["logistic_score", "p_value"] == pytest.approx(lg["p_value"], rel=1e-6)
