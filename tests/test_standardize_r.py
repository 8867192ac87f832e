"""Standardised risks and cause-specific Cox against R (riskRegression 2022.11.28, survival 3.5.3).

Reference values: ``tests/reference/standardize_reference.R`` -> ``standardize_reference.json``
(header: versions, regeneration command). Cases:

* ``ate`` with ``coxph(Surv(time, dead) ~ tier + age + sex)``: pbc (``stage``, death; transplant
  censored), a synthetic cohort with continuous (untied) times, and one with whole-month times
  (heavy ties), Efron and Breslow; ``meanRisk``, ``diffRisk`` and ``ratioRisk`` against the first level;
* ``ate`` with ``CSC(Hist(time, status) ~ tier + age + sex)`` for causes 1 and 2: Melanoma
  (``invasion``; melanoma death vs other death, one time tied across the causes), the untied and the
  tied synthetic cohorts; CSC coefficients and ``predictRisk`` for covariate profiles.

Point estimates are compared everywhere. Standard errors, intervals and p-values are compared with
``ate``'s where no event times of a modelled cause are tied; where they are, with the script's hand
computation of ``ate``'s influence function using ``residuals(fit, "dfbeta")`` for the coefficients
(``corrected``; riskRegression's ``iidCox`` counts a tied time once in the score's compensator), and
riskRegression's own standard errors are shown to differ (so the fixture documents the reason).
Everything at 1e-6 relative (the agreement is about 1e-14).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neutrostats.stats.standardize import cause_specific_cox, standardized_risk

REF_DIR = Path(__file__).resolve().parent / "reference"
REF = json.loads((REF_DIR / "standardize_reference.json").read_text(encoding="utf-8"))
REL = 1e-6
T3 = ["normal", "subnormal", "mild"]


def _load(name):
    d = pd.read_csv(REF_DIR / "data" / name)
    if name == "pbc.csv":
        d = d.dropna(subset=["time", "status", "stage", "age", "sex"]).reset_index(drop=True)
        d["stage"] = pd.Categorical(d["stage"].astype(int).astype(str), categories=["1", "2", "3", "4"], ordered=True)
        d["dead"] = (d["status"] == 2).astype(int)
    elif name == "melanoma.csv":
        d["invasion"] = pd.Categorical(d["invasion"], categories=["level.0", "level.1", "level.2"], ordered=True)
    else:
        d["tier"] = pd.Categorical(d["tier"], categories=T3, ordered=True)
        d["dead"] = (d["status"] > 0).astype(int)
    return d


def _r(table):
    return pd.DataFrame(table).sort_values("time", kind="stable").reset_index(drop=True)


def _ours(d, tier, event, times, ties="efron", cause=1):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return standardized_risk(d, duration="time", event=event, by=tier, adjust=["age", "sex"], horizon=times,
                                 ties=ties, cause=cause)


def _check(res, ref, with_se):
    risk = res[res["contrast"] == "risk"].reset_index(drop=True)
    mr = _r(ref["meanRisk"])
    assert risk["group"].astype(str).tolist() == mr["treatment"].astype(str).tolist()
    np.testing.assert_allclose(risk["estimate"], mr["estimate"], rtol=REL)
    for contrast, key in (("difference", "diffRisk"), ("ratio", "ratioRisk")):
        ours = res[(res["contrast"] == contrast) & ~res["is_reference"]].reset_index(drop=True)
        r = _r(ref[key])
        assert ours["group"].astype(str).tolist() == r["B"].astype(str).tolist()
        np.testing.assert_allclose(ours["estimate"], r["estimate"], rtol=REL)
        if with_se:
            np.testing.assert_allclose(ours["std_error"], r["se"], rtol=REL)
            np.testing.assert_allclose(ours[["conf_low", "conf_high"]], r[["lower", "upper"]], rtol=REL, atol=1e-12)
            np.testing.assert_allclose(ours["p_value"], r["p.value"], rtol=REL, atol=1e-14)
    if with_se:
        np.testing.assert_allclose(risk["std_error"], mr["se"], rtol=REL)
        np.testing.assert_allclose(risk[["conf_low", "conf_high"]], mr[["lower", "upper"]], rtol=REL, atol=1e-12)
        assert res.loc[res["contrast"] == "risk", "p_value"].isna().all()


COX = {"untied_cox": ("std_untied.csv", "tier", "efron"), "pbc_cox": ("pbc.csv", "stage", "efron"),
       "ties_cox_efron": ("std_ties.csv", "tier", "efron"), "ties_cox_breslow": ("std_ties.csv", "tier", "breslow")}


@pytest.mark.parametrize("case", list(COX))
def test_standardized_risk_cox_matches_ate(case):
    ref = REF["ate"][case]
    f, tier, ties = COX[case]
    res = _ours(_load(f), tier, "dead", ref["times"], ties)
    assert (res["method"] == "gformula_cox").all()
    _check(res, ref, with_se="corrected" not in ref)
    if "corrected" in ref:
        c = pd.DataFrame(ref["corrected"])  # time-major, tiers in order: our row order
        risk = res[res["contrast"] == "risk"].reset_index(drop=True)
        np.testing.assert_allclose(risk["std_error"], c["se"], rtol=REL)
        dif = res[res["contrast"] == "difference"].reset_index(drop=True)
        rat = res[res["contrast"] == "ratio"].reset_index(drop=True)
        keep = ~dif["is_reference"]
        np.testing.assert_allclose(dif.loc[keep, "std_error"], c.loc[keep, "diff_se"], rtol=REL)
        np.testing.assert_allclose(rat.loc[keep, "std_error"], c.loc[keep, "ratio_se"], rtol=REL)
        # riskRegression's own standard errors differ where times are tied (the reason for "corrected")
        assert not np.allclose(risk["std_error"], _r(ref["meanRisk"])["se"], rtol=1e-4)


CSC = {"melanoma": ("melanoma.csv", "invasion", True), "untied": ("std_untied.csv", "tier", True),
       "ties": ("std_ties.csv", "tier", False)}


@pytest.mark.parametrize("case", list(CSC))
@pytest.mark.parametrize("cause", [1, 2])
def test_standardized_risk_cause_specific_matches_ate(case, cause):
    ref = REF["csc"][case]
    f, tier, exact_se = CSC[case]
    res = _ours(_load(f), tier, "status", ref["times"], cause=cause)
    assert (res["method"] == "gformula_cause_specific_cox").all()
    _check(res, ref[f"ate_cause{cause}"], with_se=exact_se)


def _term(name, tier):
    if name.startswith(tier):
        return name[len(tier):]
    return {"sexMale": "sex[Male]", "sexM": "sex[M]"}.get(name, name)


@pytest.mark.parametrize("case", list(CSC))
def test_cause_specific_cox_coefficients_and_predict_match_csc(case):
    ref = REF["csc"][case]
    f, tier, _ = CSC[case]
    d = _load(f)
    m = cause_specific_cox(d, "time", "status", tier, adjust=["age", "sex"])
    assert m.causes == (1, 2)
    for cause, r in ref["coef"].items():
        t = m.table[(m.table["outcome"] == int(cause)) & ~m.table["is_reference"]].set_index("term")
        terms = [_term(x, tier) for x in r["term"]]
        np.testing.assert_allclose(np.log(t.loc[terms, "estimate"]), r["coef"], rtol=REL)
        np.testing.assert_allclose(t.loc[terms, "std_error"], r["se"], rtol=REL)
    prof = pd.DataFrame(ref["profiles"])
    prof[tier] = pd.Categorical(prof[tier], categories=d[tier].cat.categories)
    for cause, rows in ref["predict"].items():
        p = m.predict(prof, ref["times"], cause=int(cause))
        np.testing.assert_allclose(p["estimate"].to_numpy(), np.ravel(rows), rtol=REL)
