"""standardized_risk, standardized_curves and cause_specific_cox: input checks, shape, invariants.

The numbers themselves are checked against riskRegression in tests/test_standardize_r.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrostats.errors import DataQualityWarning, NeutrostatsError
from neutrostats.stats.standardize import (
    STANDARDIZED_COLUMNS,
    cause_specific_cox,
    standardized_curves,
    standardized_risk,
)

TIERS = ["normal", "mild", "severe"]


def _df(n=300, seed=0):
    rng = np.random.default_rng(seed)
    tier = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    age = rng.uniform(30, 80, n)
    t1 = rng.exponential(1 / (0.05 * np.exp(0.5 * tier + 0.03 * (age - 55))))
    t2 = rng.exponential(1 / (0.08 * np.exp(0.02 * (age - 55))), n)
    c = rng.uniform(2, 10, n)
    time = np.minimum.reduce([t1, t2, c])
    status = np.where(time == c, 0, np.where(time == t1, 1, 2))
    return pd.DataFrame({"time": time, "status": status, "dead": (status > 0).astype(int), "age": age,
                         "tier": pd.Categorical(np.array(TIERS)[tier], categories=TIERS, ordered=True)})


def test_shape_order_and_reference_rows():
    r = standardized_risk(_df(), duration="time", event="dead", adjust=["age"], horizon=[1, 3])
    assert r.columns.tolist() == STANDARDIZED_COLUMNS
    assert r["contrast"].tolist() == ["risk"] * 6 + ["difference"] * 6 + ["ratio"] * 6
    assert r["time"].tolist()[:6] == [1, 1, 1, 3, 3, 3]
    assert isinstance(r["group"].dtype, pd.CategoricalDtype) and r["group"].tolist()[:3] == TIERS
    ref = r[r["is_reference"]]
    assert set(ref["group"]) == {"normal"} and len(ref) == 4
    assert np.allclose(ref.loc[ref["contrast"] == "ratio", "estimate"], 1) and ref["std_error"].isna().all()
    # the difference and ratio rows are the risk rows against the reference's
    risk = r.loc[r["contrast"] == "risk", "estimate"].to_numpy().reshape(2, 3)
    diff = r.loc[r["contrast"] == "difference", "estimate"].to_numpy().reshape(2, 3)
    assert np.allclose(diff, risk - risk[:, [0]])
    assert (r["conf_low"].fillna(0) <= r["estimate"]).all() and (r["estimate"] <= r["conf_high"].fillna(np.inf)).all()


def test_single_cause_cause_specific_equals_cox_risk_to_first_order():
    # With one cause, the product-limit CIF and 1 - exp(-Lambda) differ only by O(jump^2).
    d = _df(2000, seed=3)
    a = standardized_risk(d, duration="time", event="dead", adjust=["age"], horizon=2)
    b = standardized_risk(d, duration="time", event="dead", adjust=["age"], horizon=2, model="cause_specific")
    assert np.allclose(a["estimate"], b["estimate"], rtol=2e-3)
    assert np.allclose(a["std_error"].fillna(0), b["std_error"].fillna(0), rtol=2e-2)


def test_input_input_not_the_caller_mutated():
    d = _df()
    before = d.copy()
    standardized_risk(d, duration="time", event="status", adjust=["age"], horizon=2)
    pd.testing.assert_frame_equal(d, before)


@pytest.mark.parametrize("kwargs, message", [
    (dict(horizon=-1), "horizon must be positive"),
    (dict(horizon=100), "beyond the end of follow-up"),
    (dict(horizon="soon"), "horizon must be"),
    (dict(model="cox", event="status"), "competing events"),
    (dict(cause=3, event="status"), "cause 3 does not occur"),
    (dict(reference="nope"), "not a tier"),
    (dict(model="weibull"), "model"),
    (dict(duration=None), "give both duration= and event="),
])
def test_refusals(kwargs, message):
    args = dict(duration="time", event="dead", adjust=["age"], horizon=2) | kwargs
    with pytest.raises(NeutrostatsError, match=message):
        standardized_risk(_df(), **args)


def test_refuses_text_times_negative_times_and_plain_tier():
    d = _df()
    with pytest.raises(NeutrostatsError, match="numeric"):
        standardized_risk(d.assign(time=d["time"].astype(str)), duration="time", event="dead", horizon=2)
    with pytest.raises(NeutrostatsError, match=">= 0"):
        standardized_risk(d.assign(time=-d["time"]), duration="time", event="dead", horizon=2)
    with pytest.raises(NeutrostatsError, match="Categorical"):
        standardized_risk(d.assign(tier=d["tier"].astype(str)), duration="time", event="dead", horizon=2)
    with pytest.raises(NeutrostatsError, match="reference tier"):
        standardized_risk(d[d["tier"] != "normal"], duration="time", event="dead", horizon=2)
    with pytest.raises(NeutrostatsError, match="cohort columns"):
        standardized_risk(d, "viral_infection", horizon=2)


def test_missing_rows_counted_and_announced():
    d = _df()
    d.loc[:4, "age"] = np.nan
    with pytest.warns(DataQualityWarning, match="5 of 300 rows"):
        r = standardized_risk(d, duration="time", event="dead", adjust=["age"], horizon=2)
    assert r.attrs["n_missing"] == 5 and r.attrs["n"] == 295


def test_cohort_outcome_columns():
    d = _df()
    t = pd.DataFrame({"death_time": d["time"], "death": d["dead"].astype(bool), "age_at_index": d["age"],
                      "tier": d["tier"], "hm_prevalent": np.r_[True, np.zeros(len(d) - 1, dtype=bool)],
                      "hm_time": d["time"], "hm_status": d["status"]})
    a = standardized_risk(t, "death", 2, adjust=["age_at_index"])
    b = standardized_risk(d, duration="time", event="dead", adjust=["age"], horizon=2)
    assert np.allclose(a["estimate"], b["estimate"]) and (a["outcome"] == "death").all()
    h = standardized_risk(t, "hm", 2, adjust=["age_at_index"])
    assert h.attrs["n"] == len(d) - 1 and (h["method"] == "gformula_cause_specific_cox").all()


def test_curves_agree_with_risk_and_start_at_zero():
    d = _df()
    c = standardized_curves(d, duration="time", event="status", adjust=["age"], times=[0, 1, 2])
    r = standardized_risk(d, duration="time", event="status", adjust=["age"], horizon=[1, 2])
    assert c.loc[c["time"] == 0, "estimate"].eq(0).all()
    risk = r[r["contrast"] == "risk"].sort_values(["group", "time"])
    cc = c[c["time"] > 0].sort_values(["group", "time"])
    assert np.allclose(cc["estimate"], risk["estimate"]) and np.allclose(cc["std_error"], risk["std_error"])
    assert (c.groupby("group", observed=True)["n_risk"].diff().fillna(0) <= 0).all()


def test_cause_specific_cox_table_and_predict_bounds():
    d = _df()
    m = cause_specific_cox(d, "time", "status", adjust=["age"])
    assert m.causes == (1, 2) and m.table["outcome"].tolist() == [1] * 4 + [2] * 4
    p1 = m.predict(d.iloc[:5], [1, 2, 4], cause=1)["estimate"].to_numpy().reshape(5, 3)
    p2 = m.predict(d.iloc[:5], [1, 2, 4], cause=2)["estimate"].to_numpy().reshape(5, 3)
    assert np.all(np.diff(p1, axis=1) >= 0) and np.all(p1 + p2 <= 1)
    with pytest.raises(NeutrostatsError, match="not modelled"):
        m.predict(d.iloc[:5], [1], cause=5)
    with pytest.raises(NeutrostatsError, match="lacks"):
        m.predict(d.iloc[:5][["tier"]], [1])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), shift=st.floats(-20, 20))
def test_invariant_to_shifting_a_covariate(seed, shift):
    # A numeric covariate moved by a constant changes no prediction (its coefficient absorbs nothing new).
    d = _df(150, seed)
    a = standardized_risk(d, duration="time", event="status", adjust=["age"], horizon=2)
    b = standardized_risk(d.assign(age=d["age"] + shift), duration="time", event="status", adjust=["age"], horizon=2)
    assert np.allclose(a["estimate"], b["estimate"], rtol=1e-7, equal_nan=True)
    assert np.allclose(a["std_error"], b["std_error"], rtol=1e-6, equal_nan=True)


# --- the fast engine (issue 19 speed target) against a direct computation ----------------------------
#
# The cause-specific pass reduces every per-pattern quantity to products of the overall-survival matrix
# with a few vectors, in blocks of patterns. The direct computation below builds, person by person, the
# full matrices of the derivation (riskRegression's influence function of the g-formula, Ozenne et al.
# 2020, Biom J 62:751, eqs. for the CIF with S(t-) = exp(-Lambda(t-)) differentiated): survival before
# each grid time, the CIF's terms, dF/dlam_c at every grid time, and the influence function of
# sum_k W_k dLambda_k + Db' beta term by term (riskRegression's iidCox: event, compensator, coefficients).


def _three_causes(n=400, seed=5):
    rng = np.random.default_rng(seed)
    tier = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    age = np.round(rng.uniform(30, 80, n))  # whole years: persons share covariate patterns
    sex = rng.choice(["F", "M"], n)
    rates = [0.05 * np.exp(0.4 * tier + 0.02 * (age - 55)), 0.08 * np.exp(0.03 * (age - 55)),
             0.03 * np.exp(0.3 * (sex == "M") + 0.2 * tier)]
    t = np.column_stack([rng.exponential(1 / r) for r in rates])
    c = rng.uniform(1, 8, n)
    time = np.minimum(t.min(axis=1), c)
    status = np.where(c <= t.min(axis=1), 0, t.argmin(axis=1) + 1)
    return pd.DataFrame({"time": np.round(time, 2), "status": status, "age": age, "sex": sex,
                         "tier": pd.Categorical(np.array(TIERS)[tier], categories=TIERS, ordered=True)})


def _direct_functional_iid(f, W, Db):
    """riskRegression's iidCox terms for one functional, person by person (loops: small data only)."""
    out = np.zeros(f.time.size)
    for i in range(f.time.size):
        if f.event[i]:
            k = int(np.searchsorted(f.u, f.time[i]))
            out[i] += W[k] / f.S0[k]
        at_risk = f.u <= f.time[i]
        out[i] -= f.r[i] * np.sum(W[at_risk] * f.lam[at_risk] / f.S0[at_risk])
    return out + f.iid_beta @ (Db - (W * f.lam) @ f.E)


def _direct_csc(fits, Z, a, taus, cause):
    n = Z.shape[0]
    g = np.unique(np.concatenate([f.u[f.u <= taus.max()] for f in fits]))
    lam = np.zeros((len(fits), g.size))
    for c, f in enumerate(fits):
        m = f.u <= taus.max()
        lam[c, np.searchsorted(g, f.u[m])] = f.lam[m]
    A = np.column_stack([np.exp(f.tier_coef[a] + Z @ f.zcoef - f.shift) for f in fits])  # one row per person
    S = np.ones((n, g.size))
    for k in range(1, g.size):
        S[:, k] = S[:, k - 1] * (1 - A @ lam[:, k - 1])  # product limit over every cause's jumps before t_k
    cf = np.cumsum(A[:, [cause]] * lam[cause] * S, axis=1)
    est, iid = np.empty(taus.size), np.empty((n, taus.size))
    for h, tau in enumerate(taus):
        kk = int(np.searchsorted(g, tau, "right"))
        F = cf[:, kk - 1]
        est[h] = F.mean()
        iid[:, h] = (F - est[h]) / n
        for c, f in enumerate(fits):
            D = -A[:, [c]] * (F[:, None] - cf)
            if c == cause:
                D += A[:, [c]] * S
            D[:, kk:] = 0.0
            W = np.zeros(f.u.size)
            m = f.u <= taus.max()
            W[m] = D.mean(axis=0)[np.searchsorted(g, f.u[m])]
            xa = np.column_stack([np.zeros((n, len(f.cols))), Z])
            if a in f.cols:
                xa[:, f.cols.index(a)] = 1.0
            iid[:, h] += _direct_functional_iid(f, W, (D @ lam[c]) @ xa / n)
    return est, iid


@pytest.mark.parametrize("tier", [0, 1, 2])
def test_cause_specific_engine_matches_direct_computation_three_causes(tier):
    from neutrostats.stats import standardize as m

    d = _three_causes()
    st_ = m._setup(d, None, [0.5, 2.0, 3.5], "tier", ["age", "sex"], "time", "status", None, 2, None, "efron",
                   None, "test")
    assert st_.causes == [1, 2, 3] and len(np.unique(st_.data.Z, axis=0)) < len(d) / 2
    est, iid = m._estimates(st_, tier)
    ref_est, ref_iid = _direct_csc(st_.fits, st_.data.Z, tier, st_.taus, st_.cause)
    np.testing.assert_allclose(est, ref_est, rtol=1e-12)
    np.testing.assert_allclose(iid, ref_iid, rtol=1e-9, atol=1e-13 * np.abs(ref_iid).max())
    np.testing.assert_allclose(np.sqrt((iid ** 2).sum(axis=0)), np.sqrt((ref_iid ** 2).sum(axis=0)), rtol=1e-12)


def test_cox_engine_matches_direct_computation():
    from neutrostats.stats import standardize as m

    d = _df(300, seed=11)
    st_ = m._setup(d, None, [1.0, 2.5], "tier", ["age"], "time", "dead", None, 1, None, "breslow", None, "test")
    f, Z, n = st_.fits[0], st_.data.Z, len(d)
    for a in range(3):
        est, iid = m._estimates(st_, a)
        ra = np.exp(f.tier_coef[a] + Z @ f.zcoef - f.shift)
        xa = np.column_stack([np.zeros((n, len(f.cols))), Z])
        if a in f.cols:
            xa[:, f.cols.index(a)] = 1.0
        for h, tau in enumerate(st_.taus):
            Lam = f.lam[f.u <= tau].sum()
            S = np.exp(-ra * Lam)
            assert est[h] == pytest.approx(np.mean(1 - S), rel=1e-13)
            W = np.where(f.u <= tau, np.mean(S * ra), 0.0)
            ref = (1 - S - est[h]) / n + _direct_functional_iid(f, W, (S * ra * Lam) @ xa / n)
            np.testing.assert_allclose(iid[:, h], ref, rtol=1e-10, atol=1e-14 * np.abs(ref).max())


def test_cause_specific_blocks_and_horizons_do_not_change_results(monkeypatch):
    from neutrostats.stats import standardize as m

    d = _three_causes(300, seed=2)
    kw = dict(duration="time", event="status", adjust=["age", "sex"])
    together = standardized_risk(d, horizon=[1.0, 2.0, 3.0], **kw)
    apart = pd.concat([standardized_risk(d, horizon=h, **kw) for h in (1.0, 2.0, 3.0)])
    apart = apart.sort_values(["contrast", "time", "group"], key=lambda s: s.map(
        {"risk": 0, "difference": 1, "ratio": 2}) if s.name == "contrast" else s).reset_index(drop=True)
    num = ["estimate", "std_error", "conf_low", "conf_high", "p_value"]
    np.testing.assert_allclose(together[num], apart[num], rtol=1e-11)
    monkeypatch.setattr(m, "_BLOCK_CELLS", 1)  # one pattern per block: every block boundary exercised
    np.testing.assert_allclose(standardized_risk(d, horizon=[1.0, 2.0, 3.0], **kw)[num], together[num], rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), q=st.integers(1, 3))
def test_patterns_are_the_distinct_rows(seed, n, q):
    from neutrostats.stats.standardize import _patterns

    Z = np.random.default_rng(seed).integers(0, 3, size=(n, q)).astype(float)
    pat, inv, cnt = _patterns(Z)
    upat, uinv, ucnt = np.unique(Z, axis=0, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(pat, upat)
    np.testing.assert_array_equal(inv, uinv.ravel())
    np.testing.assert_array_equal(cnt, ucnt)
    np.testing.assert_array_equal(pat[inv], Z)
