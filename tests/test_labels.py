"""Display labels: one place names every tier (with its range), outcome, covariate and term; users override them."""

from __future__ import annotations

import pandas as pd
import pytest

import neutrostats as ns
from neutrostats import NeutrostatsError, Scheme, get_scheme, labels_for
from neutrostats.report import ReportSettings, load_config


def test_andersen_tier_labels_give_the_published_cut_offs():
    # Andersen 2016: moderate/severe < 1.0, mild 1.0-1.5, subnormal 1.5-1.8, normal >= 1.8 x 10^9/L,
    # intervals closed below (the scheme's cuts 1000, 1500, 1800 cells/uL).
    assert get_scheme("andersen2016").tier_labels() == {
        "normal": "Normal (≥1.8 ×10⁹/L)",
        "subnormal": "Subnormal (1.5 to <1.8 ×10⁹/L)",
        "mild": "Mild (1.0 to <1.5 ×10⁹/L)",
        "moderate_severe": "Moderate–severe (<1.0 ×10⁹/L)",
    }


def test_tier_labels_follow_the_scheme_options_and_unit():
    # ctcae_v5 with a lab LLN of 1,800/uL: grade 1 is [1500, 1800).
    lab = get_scheme("ctcae_v5", lln=1800).tier_labels()
    assert lab["grade_1"] == "Grade 1 (1.5 to <1.8 ×10⁹/L)"
    assert lab["grade_4"] == "Grade 4 (<0.5 ×10⁹/L)"
    prof = get_scheme("clinical", profound=True).tier_labels(unit="cells/uL")
    assert prof["profound"] == "Profound (<100 cells/µL)"
    assert prof["severe"] == "Severe (100 to <500 cells/µL)"
    # A cut that is not a whole tenth keeps its digits (1,250/uL = 1.25 x 10^9/L).
    own = Scheme("own", cuts=(1250,), labels=("very_low", "ok")).tier_labels()
    assert own == {"ok": "Ok (≥1.25 ×10⁹/L)", "very_low": "Very low (<1.25 ×10⁹/L)"}
    with pytest.raises(NeutrostatsError, match="unit must be"):
        get_scheme().tier_labels(unit="mmol/L")


def test_labels_name_outcomes_covariates_terms_and_prevalence_columns():
    lab = labels_for()
    assert lab("hematologic_malignancy") == "Haematological malignancy"
    assert lab("hiv") == "HIV"
    assert lab("sex[M]") == "Male vs female"
    assert lab("age_at_index") == "Age at index (years)"
    assert lab("viral_infection_prevalent") == "Viral infection before index"
    # A term without its own label: "<variable>: <level>".
    assert lab("smoker[yes]") == "Smoker: Yes"
    # Unknown names read as themselves, underscores as spaces, capitalised.
    assert lab("solid_cancer") == "Solid cancer" and lab("my_covariate") == "My covariate"
    assert lab.short("moderate_severe") == "Moderate–severe"


def test_without_a_known_scheme_no_range_is_attached():
    # The andersen2016 ranges must not be pinned on tiers of a table whose scheme is unknown.
    lab = labels_for(None)
    assert lab("mild") == "Mild" and lab("moderate_severe") == "Moderate–severe"


def test_overrides_win_for_tiers_and_names_and_bad_ones_raise():
    lab = labels_for(overrides={"mild": "Mild neutropenia", "hiv": "HIV infection"})
    assert lab("mild") == "Mild neutropenia" and lab.short("mild") == "Mild neutropenia"
    assert lab("hiv") == "HIV infection"
    with pytest.raises(NeutrostatsError, match="non-empty string"):
        labels_for(overrides={"hiv": ""})
    with pytest.raises(NeutrostatsError, match="expected a mapping"):
        labels_for(overrides=["hiv"])  # type: ignore[arg-type]


def test_apply_relabels_values_and_keeps_the_tier_order():
    tiers = pd.Categorical(["mild", "normal", None], categories=list(get_scheme().tiers), ordered=True)
    df = pd.DataFrame({"group": tiers, "outcome": ["hiv", "aml", "hiv"], "n": [1, 2, 3]})
    out = labels_for().apply(df)
    assert out["group"].cat.ordered
    assert list(out["group"].cat.categories) == [
        "Normal (≥1.8 ×10⁹/L)", "Subnormal (1.5 to <1.8 ×10⁹/L)", "Mild (1.0 to <1.5 ×10⁹/L)",
        "Moderate–severe (<1.0 ×10⁹/L)"]
    assert out["group"].isna().tolist() == [False, False, True]
    assert out["outcome"].tolist() == ["HIV", "Acute myeloid leukaemia", "HIV"]
    assert df["group"].astype(str).tolist()[0] == "mild"  # the input is untouched
    assert labels_for().apply(df, short=True)["group"].astype(str).tolist()[0] == "Mild"


def test_report_settings_and_toml_labels(tmp_path):
    p = tmp_path / "analysis.toml"
    p.write_text('scheme = "clinical"\n[labels]\nhiv = "HIV infection"\nsevere = "Severe neutropenia"\n',
                 encoding="utf-8")
    settings = ReportSettings.from_mapping(load_config(p)["settings"])
    lab = settings.display_labels
    assert lab("hiv") == "HIV infection"
    assert lab("severe") == "Severe neutropenia"
    assert lab("mild") == "Mild (1.0 to <1.5 ×10⁹/L)"  # clinical: mild is [1000, 1500)
    assert settings.to_dict()["labels"] == {"hiv": "HIV infection", "severe": "Severe neutropenia"}
    with pytest.raises(NeutrostatsError, match="non-empty string"):
        ReportSettings(labels={"hiv": 3})  # type: ignore[dict-item]


def test_top_level_names():
    assert ns.labels_for is labels_for and isinstance(ns.labels_for(), ns.Labels)
