"""Covariate reference levels (R's factor order, reference=) and case weights: rules and hand checks.

The R comparisons are in tests/test_weights_r.py; here the rules, the errors and identities
that hold by hand (a weight of 2 is a duplicated row; a weight of 0 is a dropped row).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from neutrostats.core.validate import factor_levels, split_reference
from neutrostats.errors import DataQualityWarning, NeutrostatsError
from neutrostats.stats.cox import cox_hazard_ratios
from neutrostats.stats.odds_ratios import mantel_haenszel, odds_ratios_by_tier
from neutrostats.stats.tableone import table_one

# cox_fit's doctest data: R's coef(coxph(Surv(time, event) ~ x)) is 0.1008468 (x = 1 is "f").
COX = pd.DataFrame({"time": [1, 2, 3, 4, 5, 6], "event": [1, 1, 1, 0, 1, 1],
                    "sex": ["f", "m", "f", "m", "m", "f"]})
R_COEF_F = 0.1008468


def test_factor_levels_follow_r_factor():
    assert factor_levels(pd.Series(pd.Categorical(["f", "m"], categories=["m", "f"]))) == ["m", "f"]
    assert factor_levels(pd.Series(["m", "f", None])) == ["f", "m"]  # text: sorted, as factor()
    assert factor_levels(pd.Series([10, 2, 2])) == [2, 10]  # numbers: numeric order, not "10" < "2"
    # a category without persons is no level (no indicator column of zeros)
    assert factor_levels(pd.Series(pd.Categorical(["f"], categories=["m", "f", "x"]))) == ["f"]


def test_factor_levels_reference_moves_level_first():
    x = pd.Series(pd.Categorical(["a", "b", "c"], categories=["c", "b", "a"]))
    assert factor_levels(x, "a") == ["a", "c", "b"]
    assert factor_levels(pd.Series([1, 2, 3]), "2") == [2, 1, 3]  # "2" names the level 2
    with pytest.raises(NeutrostatsError, match=r"reference=\{'grade': 'z'\}.*levels found are \['c', 'b', 'a'\]"):
        factor_levels(x, "z", column="grade", function="f")


def test_split_reference():
    assert split_reference(None, "f", group="tier", covariates=["sex"], kinds={"sex": "categorical"}) == (None, {})
    assert split_reference({"sex": "f"}, "f", group="tier", covariates=["sex"],
                           kinds={"sex": "categorical"}) == (None, {"sex": "f"})
    with pytest.raises(NeutrostatsError, match=r"\['region'\] that are neither the grouping column"):
        split_reference({"region": "x"}, "f", group="tier", covariates=["sex"], kinds={"sex": "categorical"})
    with pytest.raises(NeutrostatsError, match=r"\['age'\], which enter the model as \['numeric'\].*categorical="):
        split_reference({"age": 50}, "f", group="tier", covariates=["age"], kinds={"age": "numeric"})


def test_cox_categorical_order_and_reference_by_hand():
    d = COX.assign(sex=pd.Categorical(COX["sex"], categories=["m", "f"]))
    res = cox_hazard_ratios(d, "time", "event", tier=None, adjust=["sex"])
    assert res["term"].tolist() == ["sex[f]"]
    assert np.log(res["estimate"].iloc[0]) == pytest.approx(R_COEF_F, abs=1e-7)
    # the other order, and reference= on it, flip the sign exactly
    d2 = COX.assign(sex=pd.Categorical(COX["sex"], categories=["f", "m"]))
    flipped = cox_hazard_ratios(d2, "time", "event", tier=None, adjust=["sex"])
    again = cox_hazard_ratios(d, "time", "event", tier=None, adjust=["sex"], reference={"sex": "f"})
    for r in (flipped, again):
        assert r["term"].tolist() == ["sex[m]"]
        assert np.log(r["estimate"].iloc[0]) == pytest.approx(-R_COEF_F, abs=1e-7)
        assert r["std_error"].iloc[0] == pytest.approx(res["std_error"].iloc[0], rel=1e-10)


def test_text_covariate_keeps_sorted_rule():
    res = cox_hazard_ratios(COX, "time", "event", tier=None, adjust=["sex"])  # object column: f < m
    assert res["term"].tolist() == ["sex[m]"]
    assert np.log(res["estimate"].iloc[0]) == pytest.approx(-R_COEF_F, abs=1e-7)


def test_cox_reference_errors_name_the_levels():
    with pytest.raises(NeutrostatsError, match=r"cox_hazard_ratios: reference=\{'sex': 'F'\}.*\['f', 'm'\]"):
        cox_hazard_ratios(COX, "time", "event", tier=None, adjust=["sex"], reference={"sex": "F"})
    with pytest.raises(NeutrostatsError, match=r"neither the grouping column"):
        cox_hazard_ratios(COX, "time", "event", tier=None, adjust=["sex"], reference={"region": "north"})


def _or_table():
    # 2 tiers x 2 sexes, 40 persons each cell-block; events differ by tier and sex.
    rows = []
    for tier, sex, n, e in [("normal", "f", 60, 6), ("normal", "m", 40, 8), ("mild", "f", 30, 6), ("mild", "m", 20, 8)]:
        rows += [{"tier": tier, "sex": sex, "y": int(i < e)} for i in range(n)]
    d = pd.DataFrame(rows)
    d["tier"] = pd.Categorical(d["tier"], categories=["normal", "mild"], ordered=True)
    return d


@pytest.mark.parametrize("method", ["logistic", "firth"])
def test_or_tier_estimates_do_not_depend_on_a_covariates_reference(method):
    d = _or_table()
    a = odds_ratios_by_tier(d, "y", method=method, adjust=["sex"])
    b = odds_ratios_by_tier(d, "y", method=method, adjust=["sex"], reference={"sex": "m"})
    c = odds_ratios_by_tier(d, "y", method=method, adjust=["sex"], reference={"tier": "mild", "sex": "m"})
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-9)
    assert c.loc[c["is_reference"], "group"].tolist() == ["mild"]
    assert c["estimate"].iloc[0] == pytest.approx(1 / a["estimate"].iloc[1], rel=1e-8)
    with pytest.raises(NeutrostatsError, match=r"levels found are \['f', 'm'\]"):
        odds_ratios_by_tier(d, "y", method=method, adjust=["sex"], reference={"sex": "x"})


def test_or_weights_of_two_are_duplicated_rows():
    d = _or_table()
    d["w"] = np.where(d["sex"] == "m", 2.0, 1.0)
    twice = pd.concat([d, d[d["sex"] == "m"]], ignore_index=True)
    for method in ("logistic", "firth"):
        w = odds_ratios_by_tier(d, "y", method=method, adjust=["sex"], weights="w")
        dup = odds_ratios_by_tier(twice, "y", method=method, adjust=["sex"])
        np.testing.assert_allclose(w["estimate"], dup["estimate"], rtol=1e-8)
        np.testing.assert_allclose(w["std_error"].iloc[1:], dup["std_error"].iloc[1:], rtol=1e-8)
        assert w["n"].tolist() == [100, 50]  # persons, not weights


def test_or_weight_zero_missing_and_bad():
    d = _or_table()
    d["w"] = 1.0
    d.loc[0, "w"] = 0.0
    d.loc[1, "w"] = np.nan
    with pytest.warns(DataQualityWarning, match="1 of 150"):
        res = odds_ratios_by_tier(d, "y", method="logistic", weights="w")
    assert res.attrs["n_zero_weight"] == 1 and res.attrs["missing"] == {"w": 1}
    plain = odds_ratios_by_tier(d.drop(index=[0, 1]), "y", method="logistic")
    np.testing.assert_allclose(res["estimate"], plain["estimate"], rtol=1e-10)
    assert res["n"].tolist() == [98, 50]
    d.loc[2, "w"] = -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        with pytest.raises(NeutrostatsError, match=r"'w' \(case weights\) must hold finite numbers >= 0.*-1.0"):
            odds_ratios_by_tier(d, "y", method="logistic", weights="w")
    d["w"] = "1"
    with pytest.raises(NeutrostatsError, match="case weights"):
        odds_ratios_by_tier(d, "y", method="firth", weights="w")


@pytest.mark.parametrize("method", ["wald", "exact", "midp"])
def test_two_by_two_methods_refuse_weights(method):
    d = _or_table().assign(w=1.0)
    with pytest.raises(NeutrostatsError, match=rf"weights= needs method='logistic' or 'firth'.*{method}"):
        odds_ratios_by_tier(d, "y", method=method, weights="w")


def test_mantel_haenszel_refuses_weights():
    d = _or_table().assign(w=1.0, x=lambda t: (t["tier"] == "mild").astype(int))
    with pytest.raises(NeutrostatsError, match="no weighted version.*method='logistic'"):
        mantel_haenszel(d, "y", "x", "sex", weights="w")


def test_cox_weights_of_two_are_duplicated_rows_and_zero_is_dropped():
    d = pd.DataFrame({"time": [5, 6, 6, 2, 4, 4, 3, 7, 8, 1, 9, 3], "died": [1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1],
                      "age": [50, 61, 47, 70, 55, 66, 59, 40, 45, 72, 38, 64],
                      "w": [2, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1, 0]})
    dup = pd.concat([d[d["w"] > 0], d[d["w"] == 2]], ignore_index=True)
    # Breslow: a death of weight 2 is two deaths at that time. (Efron's correction treats the copies
    # of a duplicated death as tied with each other, a weighted death not: R's coxph does the same.)
    res = cox_hazard_ratios(d, "time", "died", tier=None, adjust=["age"], weights="w", ties="breslow")
    ref = cox_hazard_ratios(dup, "time", "died", tier=None, adjust=["age"], ties="breslow")
    assert res.attrs["variance"] == "model" and res.attrs["n_zero_weight"] == 1
    np.testing.assert_allclose(res[["estimate", "std_error", "p_value"]], ref[["estimate", "std_error", "p_value"]],
                               rtol=1e-9)
    assert int(res["n"].iloc[0]) == 11  # persons with a positive weight


def test_cox_robust_variance_without_weights_is_a_sandwich():
    # Robust SE without weights differs from the model-based one but the estimate does not.
    d = COX.assign(sex=pd.Categorical(COX["sex"], categories=["m", "f"]))
    model = cox_hazard_ratios(d, "time", "event", tier=None, adjust=["sex"])
    rob = cox_hazard_ratios(d, "time", "event", tier=None, adjust=["sex"], robust=True)
    assert rob["estimate"].iloc[0] == model["estimate"].iloc[0]
    assert rob.attrs["variance"] == "robust" and rob["std_error"].iloc[0] != model["std_error"].iloc[0]
    with pytest.raises(NeutrostatsError, match="robust must be True, False or None"):
        cox_hazard_ratios(d, "time", "event", tier=None, adjust=["sex"], robust="yes")


def test_table_one_unit_weights_equal_unweighted_and_hand_weighted_percent():
    d = pd.DataFrame({"arm": ["a"] * 4 + ["b"] * 3, "age": [50.0, 60.0, 70.0, 80.0, 40.0, 44.0, 48.0],
                      "sex": ["F", "M", "F", "F", "M", "M", "F"]})
    u = table_one(d, by="arm", columns=["age", "sex"])
    w = table_one(d.assign(w=1.0), by="arm", columns=["age", "sex"], weights="w")
    for col in ("mean", "sd", "percent"):
        np.testing.assert_allclose(w.tidy[col], u.tidy[col], rtol=1e-12)
    np.testing.assert_allclose(w.smd["smd"], u.smd["smd"], rtol=1e-12)
    # weights 3 on the men of arm a: women 3 of weight 3 + 3 = 6 -> 50 %
    d["w"] = np.where((d["arm"] == "a") & (d["sex"] == "M"), 3.0, 1.0)
    t = table_one(d, by="arm", columns=["sex"], weights="w").tidy
    row = t[(t["variable"] == "sex") & (t["group"] == "a") & (t["level"] == "F")].iloc[0]
    assert row["percent"] == pytest.approx(50.0) and row["n"] == 3 and row["weighted_n"] == 3.0
    assert "weighted_n" not in u.tidy.columns


def test_table_one_weights_missing_counted_and_bad_refused():
    d = pd.DataFrame({"arm": ["a", "a", "b", "b"], "age": [50.0, 60.0, 40.0, 44.0], "w": [1.0, np.nan, 1.0, 2.0]})
    with pytest.warns(DataQualityWarning, match="1 of 4 rows left out"):
        t = table_one(d, by="arm", columns=["age"], weights="w")
    assert t.settings["n_missing_weights"] == 1
    assert t.tidy.loc[t.tidy["variable"] == "n", "n"].tolist() == [1, 2, 3]
    with pytest.raises(NeutrostatsError, match="must hold finite numbers >= 0"):
        table_one(d.assign(w=[1.0, -2.0, 1.0, 1.0]), by="arm", columns=["age"], weights="w")
    with pytest.raises(NeutrostatsError, match="must hold numbers"):
        table_one(d.assign(w=["1", "2", "1", "1"]), by="arm", columns=["age"], weights="w")


def test_table_one_weighted_counts_hidden_with_their_counts():
    d = pd.DataFrame({"arm": ["a"] * 12 + ["b"] * 12, "flag": [True] * 2 + [False] * 10 + [True] * 6 + [False] * 6,
                      "w": 1.5})
    t = table_one(d, by="arm", columns=["flag"], weights="w", min_cell_count=5).tidy
    hidden = t["n"].isna()
    assert hidden.any() and t.loc[hidden, "weighted_n"].isna().all()
