"""Units, value parsing and ANC derivation.

Expected values come from the definitions in DOMAIN.md section 1:
1 mm³ = 1 µL, and 10⁹/L = 10³/µL, so 1.5 x 10⁹/L = 1.5 K/µL = 1500 cells/µL.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neutrostats import NeutrostatsError, derive_anc, normalize_units, parse_lab_values
from neutrostats.labs.units import KNOWN_COUNT_UNITS, unit_factors, unit_key

# Every spelling DOMAIN.md section 1 lists, with its meaning.
PER_UL = ["cells/uL", "/uL", "cells/µL", "/µL", "cells/mm3", "/mm3", "cells/mm³"]
THOUSANDS_PER_UL = [
    "10^3/uL", "10*3/uL", "x10E3/uL", "K/uL", "thou/uL", "10^3/mm3",
    "10^9/L", "10*9/L", "x10^9/L", "G/L", "10e9/L",
]


@pytest.mark.parametrize("spelling", PER_UL)
def test_per_microlitre_spellings(spelling):
    assert normalize_units([1500.0], spelling).tolist() == [1500.0]


@pytest.mark.parametrize("spelling", THOUSANDS_PER_UL)
def test_thousands_per_microlitre_spellings(spelling):
    assert normalize_units([1.5], spelling).tolist() == [1500.0]


@pytest.mark.parametrize(
    "spelling, factor",
    [
        ("  K / uL ", 1000.0),
        ("k/UL", 1000.0),
        ("10^9 /l", 1000.0),
        ("X10^9/L", 1000.0),
        ("×10⁹/L", 1000.0),
        ("10³/μL", 1000.0),  # Greek mu
        ("cells/μl", 1.0),
        ("CELLS/MM3", 1.0),
        ("\t/µl\n", 1.0),  # micro sign
    ],
)
def test_case_space_and_micro_insensitive(spelling, factor):
    assert normalize_units([2.0], spelling).tolist() == [2.0 * factor]


def test_per_row_units_and_series_index_kept():
    values = pd.Series([1.5, 1500.0, 0.5], index=[10, 20, 30], name="v")
    out = normalize_units(values, ["10^9/L", "cells/uL", "G/L"])
    assert isinstance(out, pd.Series)
    assert out.index.tolist() == [10, 20, 30]
    assert out.tolist() == [1500.0, 1500.0, 500.0]


def test_categorical_units():
    units = pd.Categorical(["K/uL", "/mm3", "K/uL"])
    assert normalize_units([1.0, 1.0, 2.0], units).tolist() == [1000.0, 1.0, 2000.0]


def test_unknown_units_error_lists_each_with_counts_and_known_units():
    with pytest.raises(NeutrostatsError) as err:
        normalize_units([1, 2, 3, 4], ["mmol/L", "mmol/L", "%", "K/uL"])
    msg = str(err.value)
    assert "'mmol/L' (2 rows)" in msg
    assert "'%' (1 rows)" in msg
    assert "k/ul" in msg and "cells/ul" in msg  # the known units are listed
    assert isinstance(err.value, ValueError)


def test_missing_unit_is_an_error_for_normalize_units():
    with pytest.raises(NeutrostatsError, match="'<missing>' \\(1 rows\\)"):
        normalize_units([1.0, 2.0], ["K/uL", None])


def test_length_mismatch():
    with pytest.raises(NeutrostatsError, match="one unit per value"):
        normalize_units([1.0, 2.0], ["K/uL"])


def test_unit_factors_reports_missing_and_unknown():
    f, missing, unknown = unit_factors(["K/uL", "", None, "g/dL", "g/dL"])
    assert f[0] == 1000.0 and np.isnan(f[1:]).all()
    assert missing.tolist() == [False, True, True, False, False]
    assert unknown == {"g/dL": 2}


def test_unit_key_folding():
    assert unit_key("x10E3/uL") == "10e3/ul"
    assert unit_key(None) is None and unit_key(float("nan")) is None and unit_key("  ") is None


def test_every_known_unit_has_factor_one_or_thousand():
    assert set(KNOWN_COUNT_UNITS.values()) == {1.0, 1000.0}


def test_cut_points_survive_conversion_exactly():
    # 1.8 x 10^9/L must be exactly 1800/µL, or it would fall into subnormal.
    x = np.arange(0, 200_001) / 1000.0  # every 3-decimal value up to 200 x10^9/L
    assert np.array_equal(normalize_units(x, "10^9/L"), np.arange(0, 200_001, dtype=float))


# --- parsing ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text, number, censor",
    [
        ("<0.1", 0.1, "<"),
        ("< 0.10", 0.1, "<"),
        (" <0.1 ", 0.1, "<"),
        (">100", 100.0, ">"),
        ("> 100", 100.0, ">"),
        ("≤0.5", 0.5, "<="),
        ("<=0.5", 0.5, "<="),
        ("=<0.5", 0.5, "<="),
        ("≥2", 2.0, ">="),
        (">=2", 2.0, ">="),
        ("1.5", 1.5, None),
        ("  1.50 ", 1.5, None),
        (".5", 0.5, None),
        ("1e3", 1000.0, None),
        ("-0.2", -0.2, None),
        ("+3", 3.0, None),
    ],
)
def test_parse_numbers_and_censored(text, number, censor):
    out = parse_lab_values([text])
    assert out["value_num"].iloc[0] == pytest.approx(number)
    got = out["censor"].iloc[0]
    assert (pd.isna(got) and censor is None) or got == censor
    assert pd.isna(out["value_flag"].iloc[0])


@pytest.mark.parametrize(
    "text, flag",
    [
        ("see comment", "non_numeric"),
        ("clotted", "non_numeric"),
        ("CLOTTED", "non_numeric"),
        ("1.5.2", "non_numeric"),
        ("<", "non_numeric"),
        ("1,5", "non_numeric"),  # decimal comma needs decimal=","
        ("NA", "non_numeric"),
        ("", "missing_value"),
        ("   ", "missing_value"),
        (None, "missing_value"),
        (float("nan"), "missing_value"),
    ],
)
def test_parse_non_numeric_is_flagged(text, flag):
    out = parse_lab_values(pd.Series([text], dtype=object))
    assert np.isnan(out["value_num"].iloc[0])
    assert out["value_flag"].iloc[0] == flag


def test_parse_decimal_comma():
    out = parse_lab_values(["1,5", "<0,1", "2"], decimal=",")
    assert out["value_num"].tolist() == [1.5, 0.1, 2.0]
    assert out["censor"].astype(object).tolist()[1] == "<"


def test_parse_numeric_column_fast_path_and_mixed_object():
    num = parse_lab_values(pd.Series([1.0, np.nan, 3.0]))
    assert num["value_flag"].astype(object).tolist()[1] == "missing_value"
    mixed = parse_lab_values(pd.Series([1.5, "<0.2", None, "x"], dtype=object))
    assert mixed["value_num"].tolist()[:2] == [1.5, 0.2]
    assert mixed["value_flag"].astype(object).tolist()[2:] == ["missing_value", "non_numeric"]


def test_parse_keeps_index_and_length():
    s = pd.Series(["1", "<2", "x"], index=["a", "b", "c"])
    out = parse_lab_values(s)
    assert out.index.tolist() == ["a", "b", "c"]


def test_parse_rejects_bad_decimal():
    with pytest.raises(NeutrostatsError, match="decimal"):
        parse_lab_values(["1"], decimal=";")


# --- derivation ------------------------------------------------------------


def test_derive_with_and_without_bands():
    # ANC = WBC x (neutrophil % + band %) / 100 (DOMAIN.md section 1).
    out = derive_anc([5.0, 5.0], [30.0, 30.0], [10.0, np.nan])
    assert out["anc_per_ul"].tolist() == [2000.0, 1500.0]
    assert out["anc_source"].tolist() == ["derived", "derived_no_bands"]
    assert out["derive_flag"].isna().all()


def test_derive_without_band_argument():
    out = derive_anc([2.5], [40.0])
    assert out["anc_per_ul"].tolist() == [1000.0]
    assert out["anc_source"].tolist() == ["derived_no_bands"]


def test_derive_wbc_units_per_row():
    out = derive_anc([4000.0, 4.0], [50.0, 50.0], wbc_unit=["cells/uL", "K/uL"])
    assert out["anc_per_ul"].tolist() == [2000.0, 2000.0]


def test_derive_flags():
    out = derive_anc(
        wbc=[5.0, 5.0, 5.0, 5.0, -1.0, 5.0, np.nan, "<0.5", 5.0],
        neutrophil_pct=[101.0, -1.0, 60.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0],
        band_pct=[np.nan, np.nan, 50.0, 120.0, np.nan, "clotted", np.nan, np.nan, "<1"],
    )
    assert out["derive_flag"].astype(object).tolist() == [
        "pct_out_of_range",
        "pct_out_of_range",
        "pct_sum_over_100",
        "pct_out_of_range",  # a band % above 100 is out of range before the sum
        "negative",
        "missing_component",  # a band result that is not a number is unknown
        "missing_component",
        "censored_component",
        "censored_component",
    ]
    assert out["anc_per_ul"].isna().all()


def test_derive_boundary_percentages_are_allowed():
    out = derive_anc([2.0, 2.0], [100.0, 0.0], [0.0, 0.0])
    assert out["anc_per_ul"].tolist() == [2000.0, 0.0]
    assert out["derive_flag"].isna().all()


def test_derive_length_mismatch_and_unknown_unit():
    with pytest.raises(NeutrostatsError, match="equal length"):
        derive_anc([1.0, 2.0], [50.0])
    with pytest.raises(NeutrostatsError, match="not count units"):
        derive_anc([1.0], [50.0], wbc_unit=["mmol/L"])
    with pytest.raises(NeutrostatsError, match="scalar"):
        derive_anc(4.0, 50.0)
