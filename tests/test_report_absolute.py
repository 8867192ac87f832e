"""The report's section on rates, standardised risks, E-values and calibration (issue 19).

Each check is a rule written out here: the counts of the rate tables are those of the mortality and
cumulative-incidence tables (same persons, same events, by definition); what disclosure control hides
hides every estimate made from it; the E-value is VanderWeele & Ding's formula applied to the published
odds ratio; calibration shifts every log OR by the same fitted mean.
"""

from __future__ import annotations

import math
import warnings

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from neutrostats.errors import NeutrostatsError, NeutrostatsWarning  # noqa: E402
from neutrostats.report import ReportSettings, analyse  # noqa: E402
from neutrostats.synthetic import generate_cohort  # noqa: E402


def _run(n: int, seed: int, **settings):
    s = generate_cohort(n_persons=n, seed=seed, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeutrostatsWarning)
        return analyse(s.labs, s.persons, s.diagnoses, s.deaths, ReportSettings(**settings), progress=False)


@pytest.fixture(scope="module")
def open_report():
    return _run(6000, 21)


@pytest.fixture(scope="module")
def hidden_report():
    return _run(1500, 4, min_cell_count=10)


def test_rate_counts_are_the_mortality_and_cumulative_incidence_counts(open_report):
    t = open_report.tables
    last = open_report.settings.followup_years
    rates = t["incidence_rates"].assign(group=lambda d: d["group"].astype(str))
    death = rates[rates["outcome"] == "death"].set_index("group")
    lr = t["logrank"].assign(group=lambda d: d["group"].astype(str)).set_index("group")
    mo = t["mortality"].assign(group=lambda d: d["group"].astype(str))
    mo = mo[mo["time"] == last].set_index("group")
    assert (death["n"] == lr.loc[death.index, "n"]).all()
    assert (death["n_event"] == mo.loc[death.index, "n_event"]).all()
    o = open_report.settings.competing_outcome
    out = rates[rates["outcome"] == o].set_index("group")
    cif = t["cumulative_incidence"].assign(group=lambda d: d["group"].astype(str))
    cif = cif[cif["time"] == last].set_index("group")
    assert (out["n_event"] == cif.loc[out.index, "n_event"]).all()
    # A rate is events per 1,000 person-years.
    events = rates["n_event"].to_numpy(dtype=float)
    np.testing.assert_allclose(rates["estimate"].to_numpy(dtype=float),
                               1000 * events / rates["person_years"].to_numpy(dtype=float), rtol=1e-12)


def test_standardised_risks_cover_both_outcomes_and_every_tier(open_report):
    std = open_report.tables["standardized_risks"]
    tiers = list(open_report.tables["tier_prevalence"]["group"].astype(str))
    assert sorted(set(std["outcome"])) == sorted({"death", open_report.settings.competing_outcome})
    for _, part in std.groupby("outcome"):
        risk = part[part["contrast"] == "risk"]
        assert list(risk["group"].astype(str)) == tiers
        assert ((risk["estimate"] > 0) & (risk["estimate"] < 1)).all()
        diff = part[part["contrast"] == "difference"].set_index(part[part["contrast"] == "difference"]["group"].astype(str))
        r = risk.set_index(risk["group"].astype(str))["estimate"]
        np.testing.assert_allclose(diff["estimate"], r[diff.index] - r.iloc[0], rtol=1e-9, atol=1e-12)


def test_hidden_counts_hide_every_rate_and_risk_made_from_them(hidden_report):
    t = hidden_report.tables
    rates = t["incidence_rates"]
    hidden = rates["n_event"].isna() | rates["n"].isna()
    assert hidden.any(), "the case should hide some counts (1,500 persons, k = 10)"
    assert rates.loc[hidden, ["estimate", "conf_low", "conf_high"]].isna().all().all()
    keys = {(o, str(g)) for o, g in zip(rates.loc[hidden, "outcome"], rates.loc[hidden, "group"])}
    refs = {o: str(g) for o, g in zip(rates["outcome"][::-1], rates["group"][::-1])}
    for name in ("rate_ratios", "standardized_risks"):
        df = t[name]
        for _, row in df.iterrows():
            own = (row["outcome"], str(row["group"])) in keys
            ref = (row["outcome"], refs[row["outcome"]]) in keys and row["contrast"] != "risk"
            if own or ref:
                assert math.isnan(row["estimate"]), (name, row.to_dict())
                assert bool(row["suppressed"])


def test_evalues_are_the_formula_on_the_published_odds_ratios(open_report):
    ors = open_report.tables["odds_ratios"]
    rows = ors[~ors["is_reference"].astype(bool) & ors["evalue"].notna()]
    assert len(rows)
    for _, r in rows.iterrows():
        crude = ors[(ors["outcome"] == r["outcome"]) & (ors["model"] == "crude")]
        rare = crude["n_event"].sum() < 0.15 * crude["n"].sum()
        rr = r["estimate"] if rare else math.sqrt(r["estimate"])
        rr = max(rr, 1 / rr)
        # VanderWeele & Ding 2017: E = RR + sqrt(RR (RR - 1)).
        assert r["evalue"] == pytest.approx(rr + math.sqrt(rr * (rr - 1)), rel=1e-12)
    assert ors.loc[ors["estimate"].isna(), "evalue"].isna().all()


def test_calibration_shifts_every_log_odds_ratio_by_the_fitted_mean(open_report):
    cal = open_report.tables["calibrated_odds_ratios"]
    null = open_report.tables["systematic_error"].set_index("term")
    assert len(cal) and null.loc["mu", "n_controls"] >= 3
    ok = cal["calibrated_estimate"].notna()
    np.testing.assert_allclose(np.log(cal.loc[ok, "estimate"]) - np.log(cal.loc[ok, "calibrated_estimate"]),
                               null.loc["mu", "estimate"], rtol=1e-10)
    assert not set(cal["outcome"]) & set(open_report.settings.negative_control_outcomes)


def test_negative_controls_setting():
    assert ReportSettings().negative_control_outcomes == ("solid_cancer", "autoimmune")
    assert ReportSettings(negative_controls=[]).negative_control_outcomes == ()
    with pytest.raises(NeutrostatsError, match="not outcomes"):
        ReportSettings(negative_controls=["solid_cancers"])
    with pytest.raises(NeutrostatsError, match="cannot also be a negative control"):
        ReportSettings(negative_controls=["hematologic_malignancy"])
    with pytest.raises(NeutrostatsError, match="list of outcome names"):
        ReportSettings(negative_controls="solid_cancer")
    assert ReportSettings.from_mapping({"negative_controls": ["autoimmune"]}).negative_control_outcomes == ("autoimmune",)


def test_no_negative_controls_no_calibration():
    r = _run(1500, 4, negative_controls=())
    assert len(r.tables["calibrated_odds_ratios"]) == 0
    assert not r.warnings["message"].str.contains("calibration").any()
