"""Case weights and covariate reference levels against R (tests/reference/weights_reference.R).

The fixture holds survival::coxph, glm(binomial), brglm2 (Firth, type AS_mean) and survey
(weighted Table 1) results on survival::pbc and lung, with weights that are functions of
the row id (written out in the fixture header and recomputed below). CI has no R: the
tests read only the committed JSON and CSV files.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neutrostats.errors import DataQualityWarning
from neutrostats.stats.cox import cox_hazard_ratios
from neutrostats.stats.odds_ratios import odds_ratios_by_tier
from neutrostats.stats.tableone import table_one

HERE = Path(__file__).parent / "reference"
REF = json.loads((HERE / "weights_reference.json").read_text())
TOL = 1e-6


def _pbc() -> pd.DataFrame:
    d = pd.read_csv(HERE / "data" / "pbc.csv")
    # R's pbc$sex is a factor with levels c("m", "f"): coxph's term is sexf.
    d["sex"] = pd.Categorical(d["sex"], categories=["m", "f"])
    d["stage"] = pd.Categorical(d["stage"], categories=[1.0, 2.0, 3.0, 4.0], ordered=True)
    d["w"] = 0.5 + (d["id"] % 7) / 4
    d["wi"] = 1.0 + d["id"] % 3
    d["entry"] = np.floor(d["time"] * (d["id"] % 5) / 10)
    d["died"] = (d["status"] == 2).astype(int)
    d["early"] = ((d["status"] == 2) & (d["time"] < 730)).astype(int)
    return d


def _lung() -> pd.DataFrame:
    d = pd.read_csv(HERE / "data" / "lung.csv")
    d["id"] = np.arange(1, len(d) + 1)
    d["w"] = 0.5 + (d["id"] % 7) / 4
    return d


def _case(section: str, cid: str) -> dict:
    return next(c for c in REF[section] if c["id"] == cid)


def _close(got, want, tol=TOL):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def _cox(cid, df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)  # pbc's 6 missing stages, counted in attrs
        return cox_hazard_ratios(df, "time", "died", **kw)


COX_TERMS = {"age": "age", "bili": "bili", "sexf": "sex[f]", "sexm": "sex[m]", "ph.ecog": "ph.ecog"}


def _check_cox(res: pd.DataFrame, case: dict, tier_terms: dict | None = None):
    rows = res[~res["is_reference"]].set_index(res[~res["is_reference"]]["term"].astype(str))
    names = [COX_TERMS.get(t) or (tier_terms or {})[t] for t in case["terms"]]
    _close(np.log(rows.loc[names, "estimate"]), case["estimate"])
    _close(rows.loc[names, "std_error"], case["std_error"])
    _close(rows.loc[names, "p_value"], case["p_value"])
    assert res.attrs["variance"] == case["variance"]


def test_cox_categorical_order_is_the_reference_as_r_factor():
    case = _case("cox", "pbc_sex")
    res = _cox(case["id"], _pbc(), tier=None, adjust=["age", "sex", "bili"])
    assert list(res["term"]) == ["age", "sex[f]", "bili"]  # R: age, sexf, bili
    _check_cox(res, case)
    assert res["estimate"].iloc[1] < 1  # R's sexf coefficient is negative (-0.326)


def test_cox_reference_mapping_is_r_relevel():
    case = _case("cox", "pbc_sex_relevel")
    res = _cox(case["id"], _pbc(), tier=None, adjust=["age", "sex", "bili"], reference={"sex": "f"})
    assert list(res["term"]) == ["age", "sex[m]", "bili"]
    _check_cox(res, case)
    # The flipped coding: the same coefficient with the opposite sign.
    assert case["estimate"][1] == pytest.approx(-_case("cox", "pbc_sex")["estimate"][1], rel=1e-12)


def test_cox_tier_and_covariate_reference_together():
    case = _case("cox", "pbc_stage2_sex_relevel")
    res = _cox(case["id"], _pbc(), tier="stage", adjust=["age", "sex"], reference={"stage": 2.0, "sex": "f"})
    assert res.loc[res["is_reference"], "term"].tolist() == [2.0]
    _check_cox(res, case, {"stage1": "1.0", "stage3": "3.0", "stage4": "4.0"})
    assert res.attrs["n_missing"] == 6  # R's na.omit: 418 - 412
    assert int(res["n"].iloc[-1]) == case["n"] and int(res["n_event"].iloc[-1]) == case["n_event"]


def test_cox_non_integer_weights_robust_by_default_as_coxph():
    case = _case("cox", "pbc_weighted")
    d = _pbc()
    # R's coxph refuses weight 0 and drops the missing one: the fixture is fitted without ids 3 and 4.
    d.loc[d["id"] == 3, "w"] = 0.0
    d.loc[d["id"] == 4, "w"] = np.nan
    with pytest.warns(DataQualityWarning, match="1 of 418 rows"):
        res = cox_hazard_ratios(d, "time", "died", tier=None, adjust=["age", "sex", "bili"], weights="w")
    _check_cox(res, case)
    assert case["variance"] == "robust"
    assert res.attrs["missing"] == {"w": 1} and res.attrs["n_zero_weight"] == 1
    assert int(res["n"].iloc[0]) == case["n"] == 416
    naive = cox_hazard_ratios(d.dropna(subset=["w"]), "time", "died", tier=None, adjust=["age", "sex", "bili"],
                              weights="w", robust=False)
    _close(naive["std_error"], case["naive_std_error"])
    assert naive.attrs["variance"] == "model"


def test_cox_whole_number_weights_model_based_as_coxph():
    case = _case("cox", "pbc_weighted_int")
    res = _cox(case["id"], _pbc(), tier=None, adjust=["age", "sex", "bili"], weights="wi")
    _check_cox(res, case)
    assert case["variance"] == "model"


@pytest.mark.parametrize("cid,kw", [
    ("pbc_weighted_stage_entry", {"entry": "entry"}),
    ("pbc_weighted_breslow", {"ties": "breslow"}),
])
def test_cox_weighted_tiers_entry_and_ties(cid, kw):
    case = _case("cox", cid)
    res = _cox(cid, _pbc(), tier="stage", adjust=["age", "sex"], weights="w", **kw)
    _check_cox(res, case, {"stage2": "2.0", "stage3": "3.0", "stage4": "4.0"})


def test_cox_weighted_strata_lung_efron_ties():
    case = _case("cox", "lung_weighted_strata")
    with pytest.warns(DataQualityWarning, match="1 of 228"):  # ph.ecog missing once, as R's na.omit
        res = cox_hazard_ratios(_lung(), "time", "status", tier=None, adjust=["age", "ph.ecog"], strata="sex",
                                weights="w")
    _check_cox(res, case)
    assert int(res["n_event"].iloc[0]) == case["n_event"]


@pytest.mark.parametrize("cid", ["pbc_adjusted", "pbc_crude", "pbc_adjusted_int", "pbc_early_adjusted"])
@pytest.mark.parametrize("method", ["logistic", "firth"])
def test_weighted_logistic_and_firth_or_as_glm_and_brglm2(cid, method):
    case = _case("logistic", cid)
    d = _pbc()
    outcome = "early" if "early" in cid else "died"
    adjust = ["age", "sex"] if "adjusted" in cid else None
    with pytest.warns(DataQualityWarning, match="6 of 418"):
        res = odds_ratios_by_tier(d, outcome, tier="stage", method=method, adjust=adjust, weights=case["weights"])
    assert case["terms"][1:4] == ["stage2", "stage3", "stage4"]
    _close(np.log(res["estimate"].iloc[1:]), case[method]["estimate"][1:4])
    _close(res["std_error"].iloc[1:], case[method]["std_error"][1:4])
    if method == "logistic":
        _close(res["p_value"].iloc[1:], case[method]["p_value"][1:4])
    else:
        # profile penalised-likelihood limits and PLR p-values (logistf's definitions, weighted)
        assert case["firth"]["profile_terms"] == ["stage2", "stage3", "stage4"]
        _close(np.log(res["conf_low"].iloc[1:]), case["firth"]["conf_low"])
        _close(np.log(res["conf_high"].iloc[1:]), case["firth"]["conf_high"])
        _close(res["p_value"].iloc[1:], case["firth"]["p_value"])
    # persons, not weights, are counted
    assert int(res["n"].sum()) == case["n"] == 412
    assert res.attrs["n_zero_weight"] == 0


def test_weighted_table_one_as_survey():
    ref = REF["table_one"]
    d = _pbc().dropna(subset=["stage"])
    d["stage"] = d["stage"].cat.rename_categories(["1", "2", "3", "4"])
    d["edema"] = pd.Categorical(d["edema"], categories=[0.0, 0.5, 1.0])
    t = table_one(d, by="stage", columns=["age", "chol", "bili", "sex", "edema"], weights="w")
    tidy = t.tidy
    for r in ref["rows"]:
        sel = (tidy["variable"] == r["variable"]) & (tidy["group"].astype(str) == r["group"])
        if r["level"] is not None:
            level = {"0": "0.0", "0.5": "0.5", "1": "1.0"}.get(r["level"], r["level"])
            sel &= tidy["level"] == level
            row = tidy[sel].iloc[0]
            _close(row["percent"], r["percent"])
        else:
            row = tidy[sel].iloc[0]
            for col in ("mean", "sd", "median", "q1", "q3"):
                _close(row[col], r[col])
        _close(row["weighted_n"], r["weighted_n"])
    smd = t.smd
    for r in ref["smd"]:
        sel = (smd["variable"] == r["variable"]) & (smd["comparison"] == r["comparison"])
        if r["group"] is not None:
            sel &= smd["group"] == r["group"]
        _close(smd.loc[sel, "smd"].iloc[0], r["smd"])
