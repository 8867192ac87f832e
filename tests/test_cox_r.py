"""Cox regression and the PH test against R (survival 3.5.3).

Reference values come from ``tests/reference/cox_reference.R`` (R 4.2.2,
survival 3.5.3), committed as ``tests/reference/cox_reference.json``; its
header records the versions and the command that regenerates it. Each case
is ``coxph(<formula>, ties = <ties>)`` on a committed CSV; ``cox.zph(fit,
transform = <t>, terms = TRUE)`` for the PH tests. Everything is compared at
1e-6 relative (the fits agree to about 1e-12).

The R calls, per case id:

* ``lung_efron``/``lung_breslow``: ``coxph(Surv(time, status) ~ age + sex + ph.ecog, lung)``
  on the complete cases (``sex`` and ``ph.ecog`` numeric, as in R's data);
* ``lung_weights``: the same with case weights ``1 + (row %% 3)``;
* ``veteran``: ``~ trt + karno + celltype`` (celltype a factor, alphabetical levels);
* ``ties_efron``/``ties_breslow``: ``~ tier + age + sex`` on ``cox_ties.csv``
  (whole-month times, heavy ties; tier a factor normal < subnormal < mild <
  moderate_severe);
* ``entry_efron``/``entry_breslow``: ``Surv(entry, time, status) ~ tier + age + sex``
  on ``cox_entry.csv`` (delayed entry, entries tied with event times);
* ``veteran_strata``: ``~ trt + karno + strata(celltype)``;
  ``ties_strata``: ``~ tier + age + strata(sex)``;
  ``entry_strata``: ``Surv(entry, time, status) ~ tier + age + strata(sex)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neutrostats.stats.cox import cox_fit, cox_hazard_ratios, proportional_hazards_test

REF_DIR = Path(__file__).resolve().parent / "reference"
ROOT = REF_DIR.parent.parent
REF = json.loads((REF_DIR / "cox_reference.json").read_text(encoding="utf-8"))["models"]
TIERS = ["normal", "subnormal", "mild", "moderate_severe"]
REL = 1e-6


def _read(csv):
    d = pd.read_csv(ROOT / csv)
    if "tier" in d.columns:
        d["tier"] = pd.Categorical(d["tier"], categories=TIERS, ordered=True)
    return d


def _lung():
    d = _read("tests/reference/data/lung.csv")
    return d.dropna(subset=["time", "status", "age", "sex", "ph.ecog"]).reset_index(drop=True)


# id -> (data, tier, adjust, entry, strata); R coefficient name -> neutrostats term
CASES = {
    "lung_efron": (_lung, None, ["age", "sex", "ph.ecog"], None, None),
    "lung_breslow": (_lung, None, ["age", "sex", "ph.ecog"], None, None),
    "veteran": (lambda: _read("tests/reference/data/veteran.csv"), None, ["trt", "karno", "celltype"], None, None),
    "ties_efron": (lambda: _read("tests/reference/data/cox_ties.csv"), "tier", ["age", "sex"], None, None),
    "ties_breslow": (lambda: _read("tests/reference/data/cox_ties.csv"), "tier", ["age", "sex"], None, None),
    "entry_efron": (lambda: _read("tests/reference/data/cox_entry.csv"), "tier", ["age", "sex"], "entry", None),
    "entry_breslow": (lambda: _read("tests/reference/data/cox_entry.csv"), "tier", ["age", "sex"], "entry", None),
    "veteran_strata": (lambda: _read("tests/reference/data/veteran.csv"), None, ["trt", "karno"], None, "celltype"),
    "ties_strata": (lambda: _read("tests/reference/data/cox_ties.csv"), "tier", ["age"], None, "sex"),
    "entry_strata": (lambda: _read("tests/reference/data/cox_entry.csv"), "tier", ["age"], "entry", "sex"),
}


def _term(r_name):
    for t in TIERS:
        if r_name == f"tier{t}":
            return t
    if r_name.startswith("celltype"):
        return f"celltype[{r_name[len('celltype'):]}]"
    if r_name == "sexM":
        return "sex[M]"
    return r_name


def _num(v):
    return {"Inf": np.inf, "-Inf": -np.inf, "NaN": np.nan, "NA": np.nan}[v] if isinstance(v, str) else float(v)


def assert_rel(got, want, what, rel=REL):
    got, want = np.asarray(got, dtype=float), np.asarray([_num(v) for v in np.ravel(want)], dtype=float)
    got = got.ravel()
    assert got.shape == want.shape, what
    bad = np.abs(got - want) > rel * np.abs(want)
    assert not bad.any(), f"{what}: got {got[bad]}, R {want[bad]}"


def _fit_args(case_id):
    load, tier, adjust, entry, strata = CASES[case_id]
    return load(), dict(tier=tier, adjust=adjust, entry=entry, strata=strata, ties=REF[case_id]["ties"])


@pytest.mark.parametrize("case_id", list(CASES))
def test_hazard_ratio_table_matches_summary_coxph(case_id):
    ref = REF[case_id]
    df, kw = _fit_args(case_id)
    res = cox_hazard_ratios(df, "time", "status", **kw).set_index("term")
    est = res[~res["is_reference"]]
    assert list(est.index) == [_term(n) for n in ref["coef_names"]]
    terms = [ref["terms"][n] for n in ref["coef_names"]]
    for col, key in [("estimate", "hazard_ratio"), ("std_error", "std_error"), ("conf_low", "conf_low"),
                     ("conf_high", "conf_high"), ("p_value", "p_value")]:
        assert_rel(est[col], [t[key] for t in terms], f"{case_id} {col}")
    assert (res["n"].iloc[-1], res["n_event"].iloc[-1]) == (ref["n"], ref["nevent"])


def _design(df, case_id):
    """The model matrix of the R formula, built by hand."""
    _, tier, adjust, entry, strata = CASES[case_id]
    cols = []
    if tier:
        cols += [(df["tier"] == t).to_numpy(float) for t in TIERS[1:]]
    for a in adjust:
        if a == "sex" and not pd.api.types.is_numeric_dtype(df[a]):
            cols.append((df[a] == "M").to_numpy(float))
        elif a == "celltype":
            cols += [(df[a] == lev).to_numpy(float) for lev in ["large", "smallcell", "squamous"]]
        else:
            cols.append(df[a].to_numpy(float))
    return np.column_stack(cols)


@pytest.mark.parametrize("case_id", [*CASES, "lung_weights"])
def test_cox_fit_matches_coxph(case_id):
    ref = REF[case_id]
    if case_id == "lung_weights":
        df = _lung()
        X = df[["age", "sex", "ph.ecog"]].to_numpy(float)
        w = 1 + (np.arange(1, len(df) + 1) % 3)
        fit = cox_fit(df["time"], df["status"], X, ties="efron", weights=w)
    else:
        df, kw = _fit_args(case_id)
        X = _design(df, case_id)
        fit = cox_fit(df["time"], df["status"], X, ties=kw["ties"],
                      entry=None if kw["entry"] is None else df[kw["entry"]],
                      strata=None if kw["strata"] is None else df[kw["strata"]])
    assert fit.converged
    assert fit.iterations == ref["iterations"]
    assert_rel(fit.coef, [ref["terms"][n]["estimate"] for n in ref["coef_names"]], f"{case_id} coef")
    assert_rel(fit.var, ref["var"], f"{case_id} var")
    assert_rel(fit.loglik, ref["loglik"], f"{case_id} loglik")
    for name in ("score_test", "wald_test", "lr_test"):
        got = getattr(fit, name)
        assert_rel([got.statistic, got.p_value], [ref[name]["statistic"], ref[name]["p_value"]], f"{case_id} {name}")
        assert got.df == ref[name]["df"]
    assert not fit.infinite.any()


ZPH = [(c, t) for c in CASES for t in REF[c]["zph"]]


@pytest.mark.parametrize(("case_id", "transform"), ZPH, ids=[f"{c}-{t}" for c, t in ZPH])
def test_proportional_hazards_test_matches_cox_zph(case_id, transform):
    ref = REF[case_id]["zph"][transform]
    df, kw = _fit_args(case_id)
    res = proportional_hazards_test(df, "time", "status", transform=transform, **kw)
    assert list(res["term"]) == list(ref)  # the tier term is named after its column, "tier", as in R
    assert list(res["df"]) == [v["df"] for v in ref.values()]
    assert_rel(res["statistic"], [v["statistic"] for v in ref.values()], f"{case_id} {transform} chisq")
    assert_rel(res["p_value"], [v["p_value"] for v in ref.values()], f"{case_id} {transform} p")


def test_reference_header_records_versions():
    header = json.loads((REF_DIR / "cox_reference.json").read_text(encoding="utf-8"))["header"]
    assert header["packages"]["survival"] == "3.5.3"
    assert "Rscript tests/reference/cox_reference.R" in header["regenerate"]
