"""Robust and cluster-robust standard errors of logistic odds ratios against R's sandwich (3.0.2).

Reference values from ``tests/reference/coxmodel_reference.R`` (section
``logistic``): ``glm(y ~ tier + age + sex, binomial, epsilon = 1e-12)`` and
``sandwich::vcovHC(fit, type = "HC0")`` (``robust=True``) and
``sandwich::vcovCL(fit, cluster = ~cl, type = "HC0")`` with vcovCL's default
``cadjust = TRUE``, the factor G / (G - 1) (``cluster=``). Data: the
synthetic ``balanced.csv`` (cluster ``cl = row // 5``, and case weights
``0.5 + (row %% 4) / 4`` with R's 1-based rows) and R's ``survival::colon``
(``status ~ rx + age + sex``: death rows alone, and both rows of each
patient clustered by ``id``). At 1e-6 relative.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neutrostats import odds_ratios_by_tier
from neutrostats.errors import NeutrostatsError

REF_DIR = Path(__file__).resolve().parent / "reference"
DATA = REF_DIR / "data"
REF = json.loads((REF_DIR / "coxmodel_reference.json").read_text(encoding="utf-8"))["logistic"]
TIERS = ["normal", "subnormal", "mild", "moderate_severe"]


def _balanced():
    d = pd.read_csv(DATA / "balanced.csv")
    d["tier"] = pd.Categorical(d["tier"], categories=TIERS, ordered=True)
    r = np.arange(1, len(d) + 1)
    return d.assign(cl=(r - 1) // 5, w=0.5 + (r % 4) / 4)


def _colon(death_only):
    d = pd.read_csv(DATA / "colon.csv")
    d["rx"] = pd.Categorical(d["rx"], categories=["Obs", "Lev", "Lev+5FU"], ordered=True)
    return d[d["etype"] == 2] if death_only else d


CASES = {
    "balanced": (_balanced, "y", "tier", ["age", "sex"], None),
    "balanced_weights": (_balanced, "y", "tier", ["age", "sex"], "w"),
    "colon_death": (lambda: _colon(True), "status", "rx", ["age", "sex"], None),
    "colon_both": (lambda: _colon(False), "status", "rx", ["age", "sex"], None),
}


def _fit(case_id, **kw):
    data, outcome, tier, adjust, weights = CASES[case_id]
    return odds_ratios_by_tier(data(), outcome, tier=tier, method="logistic", adjust=adjust, weights=weights, **kw)


def _tier_rows(ref, res):
    k = int((~res["is_reference"]).sum())
    return slice(1, 1 + k), res[~res["is_reference"]]


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_model_and_hc0(case_id):
    ref = REF[case_id]
    model = _fit(case_id)
    idx, rows = _tier_rows(ref, model)
    np.testing.assert_allclose(np.log(rows["estimate"]), np.asarray(ref["coef"])[idx], rtol=1e-6)
    np.testing.assert_allclose(rows["std_error"], np.asarray(ref["model_se"])[idx], rtol=1e-6)
    assert model.attrs["variance"] == "model"
    hc0 = _fit(case_id, robust=True)
    idx, rows = _tier_rows(ref, hc0)
    se = np.asarray(ref["hc0_se"])[idx]
    np.testing.assert_allclose(rows["std_error"], se, rtol=1e-6)
    z = np.asarray(ref["coef"])[idx] / se
    from scipy import stats
    np.testing.assert_allclose(rows["p_value"], 2 * stats.norm.sf(np.abs(z)), rtol=1e-6)
    np.testing.assert_allclose(rows["conf_low"], np.exp(np.asarray(ref["coef"])[idx] - stats.norm.ppf(0.975) * se),
                               rtol=1e-6)
    assert hc0.attrs["variance"] == "robust"


@pytest.mark.parametrize("case_id", [c for c in sorted(CASES) if REF[c].get("cl")])
def test_cluster(case_id):
    ref = REF[case_id]
    cluster = "id" if case_id.startswith("colon") else "cl"
    res = _fit(case_id, cluster=cluster)
    idx, rows = _tier_rows(ref, res)
    np.testing.assert_allclose(rows["std_error"], np.asarray(ref["cl_se"])[idx], rtol=1e-6)
    assert res.attrs["variance"] == "cluster"
    # vcovCL's cadjust: the factor G / (G - 1) is the only difference from cadjust = FALSE.
    g = ref["n_clusters"]
    np.testing.assert_allclose(rows["std_error"] * np.sqrt((g - 1) / g), np.asarray(ref["cl_noadj_se"])[idx],
                               rtol=1e-6)


def test_robust_needs_logistic():
    d = _balanced()
    with pytest.raises(NeutrostatsError, match="method='logistic'"):
        odds_ratios_by_tier(d, "y", method="midp", robust=True)
    with pytest.raises(NeutrostatsError, match="method='logistic'"):
        odds_ratios_by_tier(d, "y", method="firth", cluster="cl")
    with pytest.raises(NeutrostatsError, match="robust must be True or False"):
        odds_ratios_by_tier(d, "y", method="logistic", robust="yes")
    with pytest.raises(NeutrostatsError, match="clusterid"):
        odds_ratios_by_tier(d, "y", method="logistic", cluster="clusterid")


def test_one_row_per_cluster_is_hc0_times_g_over_g_minus_1():
    """Hand check: with every row its own cluster, vcovCL = n / (n - 1) * HC0."""
    d = _balanced().assign(row=lambda x: np.arange(len(x)))
    hc0 = odds_ratios_by_tier(d, "y", method="logistic", adjust=["age"], robust=True)
    cl = odds_ratios_by_tier(d, "y", method="logistic", adjust=["age"], cluster="row")
    n = len(d)
    np.testing.assert_allclose(cl["std_error"].iloc[1:], hc0["std_error"].iloc[1:] * np.sqrt(n / (n - 1)), rtol=1e-12)
