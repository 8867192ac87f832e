"""Kaplan-Meier, survival at horizons, RMST and log-rank tests against R.

Reference values: ``tests/reference/survival_reference.R`` (R 4.2.2,
survival 3.5.3; versions in the JSON header) on R's public ``lung`` and
``veteran`` data (tests/reference/data, LGPL >= 2, from the survival
package) and on synthetic data with heavy ties and with delayed entry.
Compared at 1e-6 relative.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neutrostats.stats.survival import kaplan_meier, logrank_test, restricted_mean_survival, survival_at

REF_DIR = Path(__file__).resolve().parent / "reference"
REF = json.loads((REF_DIR / "survival_reference.json").read_text(encoding="utf-8"))
NONFINITE = {"Inf": np.inf, "-Inf": -np.inf, "NaN": np.nan, "NA": np.nan}


def arr(values):
    values = values if isinstance(values, list) else [values]
    return np.array([NONFINITE[v] if isinstance(v, str) and v in NONFINITE else v for v in values], dtype=object)


def floats(values):
    return arr(values).astype(float)


def data(name):
    return pd.read_csv(REF_DIR / "data" / name)


DATASETS = {
    "lung_sex": ("lung.csv", "time", "status", "sex", None),
    "ties": ("km_ties.csv", "time", "status", "group", None),
    "late": ("km_late.csv", "time", "status", "group", "entry"),
    "veteran_all": ("veteran.csv", "time", "status", None, None),
}


def _source(case_id):
    key = next(k for k in DATASETS if case_id.startswith(k))
    return DATASETS[key]


KM = REF["kaplan_meier"]


@pytest.mark.parametrize("case", KM, ids=[c["id"] for c in KM])
def test_kaplan_meier_against_survfit(case):
    file, duration, event, group, entry = _source(case["id"])
    df = data(file)
    km = kaplan_meier(df, duration, event, group, entry=entry, conf_type=case["conf_type"],
                      conf_level=case["conf_level"])
    km = km[km["time"] > 0].reset_index(drop=True)  # R has no row at time 0
    rows = case["rows"]
    assert km["group"].astype(str).tolist() == [str(g) for g in arr(rows["group"])]
    np.testing.assert_allclose(km["time"], floats(rows["time"]), rtol=1e-12)
    for col in ("n_risk", "n_event", "n_censor"):
        np.testing.assert_array_equal(km[col].to_numpy(), floats(rows[col]))
    for col in ("estimate", "std_error", "conf_low", "conf_high"):
        np.testing.assert_allclose(km[col].to_numpy(dtype=float), floats(rows[col]), rtol=1e-6, atol=1e-12,
                                   equal_nan=True, err_msg=col)


AT = REF["survival_at"]
AT_SOURCES = {"lung_sex": ("lung.csv", "sex"), "ties_group": ("km_ties.csv", "group"),
              "veteran_trt": ("veteran.csv", "trt")}


@pytest.mark.parametrize("case", AT, ids=[c["id"] for c in AT])
def test_survival_at_and_rmst_against_summary_survfit(case):
    file, group = AT_SOURCES[case["id"]]
    df = data(file)
    at = survival_at(df, "time", "status", group, times=case["times"])
    rows = case["rows"]
    got = at.dropna(subset=["estimate"])  # R's summary drops horizons past the data
    assert len(got) == len(floats(rows["time"]))
    for col in ("n_risk", "estimate", "std_error", "conf_low", "conf_high"):
        np.testing.assert_allclose(got[col].to_numpy(dtype=float), floats(rows[col]), rtol=1e-6, err_msg=col)
    np.testing.assert_allclose(got["mortality"], 1 - floats(rows["estimate"]), rtol=1e-6)
    rm = restricted_mean_survival(df, "time", "status", group, horizon=case["horizon"])
    np.testing.assert_allclose(rm["estimate"], floats(case["rmst"]["rmst"]), rtol=1e-6)
    np.testing.assert_allclose(rm["std_error"], floats(case["rmst"]["std_error"]), rtol=1e-6)


LOGRANK = REF["logrank"]
LR_SOURCES = {
    "early_group": ("km_early_group.csv", "group", None, None),
    "lung_sex": ("lung.csv", "sex", None, None),
    "veteran_celltype": ("veteran.csv", "celltype", None, ["squamous", "smallcell", "adeno", "large"]),
    "ties_group": ("km_ties.csv", "group", None, None),
    "veteran_trt_strata_celltype": ("veteran.csv", "trt", "celltype", None),
}


@pytest.mark.parametrize("case", LOGRANK, ids=[c["id"] for c in LOGRANK])
def test_logrank_against_survdiff(case):
    file, group, strata, order = LR_SOURCES[case["id"]]
    df = data(file)
    if order:
        df[group] = pd.Categorical(df[group], categories=order, ordered=True)
    r = logrank_test(df, "time", "status", group, strata=strata)
    assert r.statistic == pytest.approx(case["statistic"], rel=1e-6)
    assert r.df == case["df"]
    assert r.p_value == pytest.approx(case["p_value"], rel=1e-6)
    np.testing.assert_allclose(r.table["observed"], floats(case["observed"]), rtol=1e-9)
    np.testing.assert_allclose(r.table["expected"], floats(case["expected"]), rtol=1e-6)
    if "trend" in case:
        tr = logrank_test(df, "time", "status", group, trend=True, scores=case["trend"]["scores"])
        assert tr.statistic == pytest.approx(case["trend"]["statistic"], rel=1e-6)
        assert tr.p_value == pytest.approx(case["trend"]["p_value"], rel=1e-6)
