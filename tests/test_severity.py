"""Severity schemes and classify_anc.

Tier boundaries are those of DOMAIN.md section 2 (half-open intervals, lower
bound included):

* clinical: normal >=1500; mild [1000,1500); moderate [500,1000); severe <500;
  profound <100 (IDSA 2010) when split out;
* andersen2016 (Andersen CL et al., J Intern Med 2016;279:566): normal >=1800;
  subnormal [1500,1800); mild [1000,1500); moderate-severe <1000;
* ctcae_v5 (NCI CTCAE v5.0): grade 0 >=LLN; 1 [1500,LLN); 2 [1000,1500);
  3 [500,1000); 4 <500.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neutrostats import ANC_FLAGS, NeutrostatsError, Scheme, classify_anc, get_scheme, tier_summary

CLINICAL = [
    (1500, "normal"), (1499.9, "mild"), (1000, "mild"), (999.9, "moderate"),
    (500, "moderate"), (499.9, "severe"), (100, "severe"), (0, "severe"), (99.9, "severe"),
]
CLINICAL_PROFOUND = [(100, "severe"), (99.9, "profound"), (0, "profound"), (499.9, "severe"), (1500, "normal")]
ANDERSEN = [
    (1800, "normal"), (1799.9, "subnormal"), (1500, "subnormal"), (1499.9, "mild"),
    (1000, "mild"), (999.9, "moderate_severe"), (0, "moderate_severe"),
]
CTCAE_2000 = [
    (2000, "grade_0"), (1999.9, "grade_1"), (1500, "grade_1"), (1499.9, "grade_2"), (1000, "grade_2"),
    (999.9, "grade_3"), (500, "grade_3"), (499.9, "grade_4"),
]
CTCAE_1800 = [(1800, "grade_0"), (1799.9, "grade_1"), (1500, "grade_1")]


def _classify(values_per_ul, scheme, unit):
    """Classify values given in cells/µL, written in ``unit``."""
    factor = 1.0 if unit == "cells/uL" else 1000.0
    # Written as text with the decimals a lab would print, so the test also
    # covers parsing: 1499.9/µL is "1.4999" x10^9/L.
    text = [f"{v / factor:.6f}".rstrip("0").rstrip(".") for v in values_per_ul]
    labs = pd.DataFrame({"value": text, "unit": unit})
    return classify_anc(labs, scheme)["tier"].astype(object).tolist()


@pytest.mark.parametrize("unit", ["cells/uL", "10^9/L"])
@pytest.mark.parametrize(
    "scheme, cases",
    [
        ("clinical", CLINICAL),
        (get_scheme("clinical", profound=True), CLINICAL_PROFOUND),
        ("andersen2016", ANDERSEN),
        ("ctcae_v5", CTCAE_2000),
        (get_scheme("ctcae_v5", lln=1800), CTCAE_1800),
    ],
    ids=["clinical", "clinical_profound", "andersen2016", "ctcae_v5", "ctcae_v5_lln1800"],
)
def test_boundaries(scheme, cases, unit):
    values, expected = zip(*cases)
    assert _classify(values, scheme, unit) == list(expected)


def test_numeric_input_boundaries():
    labs = pd.DataFrame({"value": [1.8, 1.5, 1.0, 0.9999], "unit": "x10^9/L"})
    assert classify_anc(labs, "andersen2016")["tier"].astype(object).tolist() == [
        "normal", "subnormal", "mild", "moderate_severe"]


@pytest.mark.parametrize(
    "name, tiers",
    [
        ("clinical", ["normal", "mild", "moderate", "severe"]),
        ("andersen2016", ["normal", "subnormal", "mild", "moderate_severe"]),
        ("ctcae_v5", ["grade_0", "grade_1", "grade_2", "grade_3", "grade_4"]),
    ],
)
def test_tier_is_ordered_categorical_mildest_first(name, tiers):
    out = classify_anc(pd.DataFrame({"value": [1.0], "unit": "K/uL"}), name)
    dtype = out["tier"].dtype
    assert isinstance(dtype, pd.CategoricalDtype) and dtype.ordered
    assert list(dtype.categories) == tiers


# --- censored values ---------------------------------------------------------


@pytest.mark.parametrize(
    "text, scheme, tier, flag",
    [
        ("<0.3", "clinical", "severe", None),  # [0, 300) lies in severe
        ("<0.5", "clinical", "severe", None),  # [0, 500) still severe
        ("<=0.5", "clinical", None, "censored_spans_tiers"),  # includes 500 (moderate)
        ("≤0.5", "clinical", None, "censored_spans_tiers"),
        ("<1.0", "clinical", None, "censored_spans_tiers"),  # moderate and severe
        ("<0.1", get_scheme("clinical", profound=True), "profound", None),
        ("<0.3", get_scheme("clinical", profound=True), None, "censored_spans_tiers"),
        (">100", "clinical", "normal", None),
        (">1.5", "clinical", "normal", None),
        (">=1.5", "clinical", "normal", None),
        (">1.49", "clinical", None, "censored_spans_tiers"),
        ("<1.0", "andersen2016", "moderate_severe", None),
        (">1.8", "andersen2016", "normal", None),
        (">1.7", "andersen2016", None, "censored_spans_tiers"),
    ],
)
def test_censored(text, scheme, tier, flag):
    out = classify_anc(pd.DataFrame({"value": [text], "unit": "10^9/L"}), scheme)
    got_tier = out["tier"].iloc[0]
    got_flag = out["anc_flag"].iloc[0]
    assert (pd.isna(got_tier) and tier is None) or got_tier == tier
    assert (pd.isna(got_flag) and flag is None) or got_flag == flag
    # The bound and the direction are kept either way.
    assert out["anc_censor"].iloc[0] in ("<", "<=", ">", ">=")
    assert np.isfinite(out["anc_per_ul"].iloc[0])


def test_censored_keeps_bound_and_direction():
    out = classify_anc(pd.DataFrame({"value": ["<0.1", "≤0.5", ">100", "1.2"], "unit": "10^9/L"}))
    assert out["anc_per_ul"].tolist() == [100.0, 500.0, 100_000.0, 1200.0]
    assert out["anc_censor"].astype(object).tolist()[:3] == ["<", "<=", ">"]
    assert pd.isna(out["anc_censor"].iloc[3])


# --- flags ---------------------------------------------------------------------


def test_non_numeric_negative_implausible_flagged_and_kept():
    values = ["see comment", "", "clotted", "-0.5", "100.0001", "100", None]
    labs = pd.DataFrame({"value": values, "unit": "10^9/L"})
    out = classify_anc(labs)
    assert len(out) == len(labs)
    assert out["anc_flag"].astype(object).tolist() == [
        "non_numeric", "missing_value", "non_numeric", "negative", "implausible", np.nan, "missing_value"]
    assert out["tier"].isna().tolist() == [True] * 5 + [False, True]
    # Flagged numbers are still reported in cells/µL.
    assert out["anc_per_ul"].iloc[3] == -500.0


def test_tier_and_flag_are_exclusive_and_exhaustive():
    labs = pd.DataFrame({"value": ["1", "x", "<2", "-1", "5000"], "unit": ["K/uL"] * 4 + ["/uL"]})
    out = classify_anc(labs)
    assert (out["tier"].isna() == out["anc_flag"].notna()).all()


def test_missing_unit_flag_and_assume_unit():
    labs = pd.DataFrame({"value": [1.2, 1.2, 1200.0], "unit": ["K/uL", None, "cells/uL"]})
    out = classify_anc(labs, scheme="clinical")
    assert out["anc_flag"].astype(object).tolist() == [np.nan, "missing_unit", np.nan]
    out2 = classify_anc(labs, assume_unit="10^9/L", scheme="clinical")
    assert out2["tier"].astype(object).tolist() == ["mild", "mild", "mild"]
    no_unit_col = classify_anc(pd.DataFrame({"value": [1.6]}), assume_unit="G/L", scheme="clinical")
    assert no_unit_col["tier"].iloc[0] == "normal"


def test_unknown_unit_raises_with_counts_or_flags():
    labs = pd.DataFrame({"value": [1.0, "clotted", 3.0, 4.0], "unit": ["mmol/L", "mmol/L", "%", "K/uL"]})
    with pytest.raises(NeutrostatsError) as err:
        classify_anc(labs)
    msg = str(err.value)
    # Every row with the unit counts, also one whose value is unreadable.
    assert "classify_anc" in msg and "'mmol/L' (2 rows)" in msg and "'%' (1 rows)" in msg
    assert "on_unknown_unit='flag'" in msg
    out = classify_anc(labs, on_unknown_unit="flag")
    assert out["anc_flag"].astype(object).tolist() == ["unknown_unit", "non_numeric", "unknown_unit", np.nan]
    assert out["anc_per_ul"].isna().tolist() == [True, True, True, False]


def test_flag_categories_are_stable():
    out = classify_anc(pd.DataFrame({"value": [1.0], "unit": "K/uL"}))
    assert list(out["anc_flag"].cat.categories) == list(ANC_FLAGS)


# --- Duffy-null -----------------------------------------------------------------


def test_duffy_null_lowers_the_normal_limit():
    # Hibbs, Merz et al., Blood 2025: Duffy-null reference interval starts at
    # about 1,200/µL, so 1,200-1,499 is normal for them (DOMAIN.md section 2).
    labs = pd.DataFrame(
        {
            "value": [1200, 1499, 1199, 1200, 1499, 1300],
            "unit": "cells/uL",
            "duffy_null": [True, True, True, False, False, None],
        }
    )
    out = classify_anc(labs, duffy_null="duffy_null", scheme="clinical")
    assert out["tier"].astype(object).tolist() == ["normal", "normal", "mild", "mild", "mild", "mild"]
    assert out["normal_limit_per_ul"].tolist() == [1200.0, 1200.0, 1200.0, 1500.0, 1500.0, 1500.0]


def test_duffy_null_limit_configurable_and_schemes():
    labs = pd.DataFrame({"value": [1.15, 1.6], "unit": "10^9/L", "dn": [True, True]})
    out = classify_anc(labs, duffy_null="dn", duffy_null_limit=1100)
    assert out["tier"].astype(object).tolist() == ["normal", "normal"]
    andersen = classify_anc(labs, "andersen2016", duffy_null="dn")
    # 1,600 is subnormal for others but normal for Duffy-null; 1,150 is mild.
    assert andersen["tier"].astype(object).tolist() == ["mild", "normal"]
    # Without the option nothing changes.
    assert classify_anc(labs, "andersen2016")["tier"].astype(object).tolist() == ["mild", "subnormal"]


def test_duffy_null_censored():
    labs = pd.DataFrame({"value": [">1.2", ">1.2"], "unit": "10^9/L", "dn": [True, False]})
    out = classify_anc(labs, duffy_null="dn")
    assert out["tier"].astype(object).tolist()[0] == "normal"
    assert out["anc_flag"].astype(object).tolist()[1] == "censored_spans_tiers"


def test_duffy_null_column_must_be_boolean():
    labs = pd.DataFrame({"value": [1.0], "unit": "K/uL", "dn": ["maybe"]})
    with pytest.raises(NeutrostatsError, match="must be boolean"):
        classify_anc(labs, duffy_null="dn")
    with pytest.raises(NeutrostatsError, match="duffy_null_limit"):
        classify_anc(labs.assign(dn=True), duffy_null="dn", duffy_null_limit=-5)


# --- custom schemes --------------------------------------------------------------


def test_custom_scheme():
    s = Scheme("who", cuts=(500, 1000, 1500, 2000), labels=("g4", "g3", "g2", "g1", "g0"))
    assert s.tiers == ("g0", "g1", "g2", "g3", "g4")
    assert s.normal_tier == "g0" and s.normal_limit == 2000.0
    out = classify_anc(pd.DataFrame({"value": [2000, 1999, 499], "unit": "/uL"}), s)
    assert out["tier"].astype(object).tolist() == ["g0", "g1", "g4"]


@pytest.mark.parametrize(
    "cuts, labels, match",
    [
        ((1000, 500), ("a", "b", "c"), "strictly increasing"),
        ((500, 500), ("a", "b", "c"), "strictly increasing"),
        ((500, 1000), ("a", "b"), "one more label than cuts"),
        ((500, 1000), ("a", "b", "c", "d"), "one more label than cuts"),
        ((), ("a",), "at least one cut"),
        ((-5, 10), ("a", "b", "c"), "positive"),
        ((500, float("nan")), ("a", "b", "c"), "strictly increasing"),
        ((500, 1000), ("a", "a", "c"), "distinct"),
        (("x",), ("a", "b"), "numbers"),
        ((1.5e6,), ("a", "b"), "below 100,000"),
    ],
)
def test_scheme_validation(cuts, labels, match):
    with pytest.raises(NeutrostatsError, match=match):
        Scheme("bad", cuts=cuts, labels=labels)


def test_get_scheme_errors():
    with pytest.raises(NeutrostatsError, match="unknown scheme 'who'"):
        get_scheme("who")
    with pytest.raises(NeutrostatsError, match="takes the options"):
        get_scheme("andersen2016", profound=True)
    with pytest.raises(NeutrostatsError, match="above 1500"):
        get_scheme("ctcae_v5", lln=1400)
    s = get_scheme("clinical")
    assert get_scheme(s) is s
    with pytest.raises(NeutrostatsError, match="built-in schemes only"):
        get_scheme(s, profound=True)


# --- table handling -----------------------------------------------------------------


def test_rows_order_index_preserved_and_input_untouched():
    labs = pd.DataFrame(
        {"value": ["1.2", "x", "0.2", "3"], "unit": "K/uL", "extra": list("abcd")},
        index=[7, 3, 9, 1],
    )
    before = labs.copy()
    out = classify_anc(labs)
    pd.testing.assert_frame_equal(labs, before)
    assert out.index.tolist() == [7, 3, 9, 1]
    assert out["extra"].tolist() == list("abcd")
    assert [c for c in out.columns][-6:] == [
        "anc_per_ul", "anc_censor", "tier", "anc_flag", "anc_source", "normal_limit_per_ul"]


def test_empty_table():
    out = classify_anc(pd.DataFrame({"value": pd.Series([], dtype=object), "unit": pd.Series([], dtype=object)}))
    assert len(out) == 0
    summary = tier_summary(out)
    assert summary["n"].sum() == 0


def test_missing_columns_and_bad_input_messages():
    with pytest.raises(NeutrostatsError, match="did you mean 'valeu'"):
        classify_anc(pd.DataFrame({"valeu": [1], "unit": ["K/uL"]}), value="valu")
    with pytest.raises(NeutrostatsError, match="assume_unit"):
        classify_anc(pd.DataFrame({"value": [1.0]}))
    with pytest.raises(NeutrostatsError, match="pandas DataFrame"):
        classify_anc([1, 2, 3])
    with pytest.raises(NeutrostatsError, match="on_unknown_unit"):
        classify_anc(pd.DataFrame({"value": [1.0], "unit": "K/uL"}), on_unknown_unit="ignore")
    with pytest.raises(NeutrostatsError, match="not count units"):
        classify_anc(pd.DataFrame({"value": [1.0]}), assume_unit="mg/dL")
    with pytest.raises(NeutrostatsError, match="person_id"):
        classify_anc(pd.DataFrame({"value": [1.0], "unit": "K/uL", "code": "751-8"}))


# --- tier_summary ---------------------------------------------------------------------


def test_tier_summary_adds_up_and_lists_every_tier():
    labs = pd.DataFrame({"value": ["1.6", "1.2", "1.2", "x", "", "<1"], "unit": "K/uL"})
    s = tier_summary(classify_anc(labs, scheme="clinical"))
    assert s["n"].sum() == len(labs)
    tiers = s[s["kind"] == "tier"]
    assert tiers["level"].tolist() == ["normal", "mild", "moderate", "severe"]
    assert tiers["n"].tolist() == [1, 2, 0, 0]
    assert s["percent"].sum() == pytest.approx(100.0)
    assert tiers["percent_classified"].sum() == pytest.approx(100.0)
    assert dict(zip(s["level"], s["n"]))["censored_spans_tiers"] == 1


def test_tier_summary_by_group():
    labs = pd.DataFrame({"value": ["1.6", "1.2", "x"], "unit": "K/uL", "site": ["a", "b", "b"]})
    s = tier_summary(classify_anc(labs), by="site")
    assert s.groupby("group")["n"].sum().to_dict() == {"a": 1, "b": 2}


def test_tier_summary_small_cell_suppression():
    labs = pd.DataFrame({"value": ["1.6"] * 20 + ["1.2"] * 3 + ["0.7"] * 8 + ["x"] * 6, "unit": "K/uL"})
    s = tier_summary(classify_anc(labs, scheme="clinical"), min_cell_count=5)
    shown = dict(zip(s["level"], s["n"]))
    assert pd.isna(shown["mild"])  # 3 < 5
    # One hidden cell could be recovered from the total, so a second is hidden.
    assert s["suppressed"].sum() == 2
    assert shown["severe"] == 0  # zeros disclose no one
    assert s.loc[s["suppressed"], "percent"].isna().all()


def test_tier_summary_rejects_tampered_tables():
    out = classify_anc(pd.DataFrame({"value": ["1.6", "x"], "unit": "K/uL"}))
    bad = out.copy()
    bad.loc[1, "tier"] = "normal"
    with pytest.raises(NeutrostatsError, match="both a tier and a flag"):
        tier_summary(bad)
    bad2 = out.copy()
    bad2.loc[1, "anc_flag"] = np.nan
    with pytest.raises(NeutrostatsError, match="neither a tier nor a flag"):
        tier_summary(bad2)
    with pytest.raises(NeutrostatsError, match="Categorical"):
        tier_summary(out.assign(tier=out["tier"].astype(object)))
