"""Numbers, units and lab codes of real exports (issue 14): read one documented way, flagged, or refused.

Every cohort here is built on both engines (the in-memory reference,
``engine="numpy"``, and the SQL path run by DuckDB) and the two must agree;
the expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neutrostats import NeutrostatsError, build_cohort, classify_anc, parse_lab_values
from neutrostats.labs.codes import MIMIC_IV_LAB_CODES, read_code_map
from neutrostats.labs.classify import ANC_FLAGS, FLAG_DESCRIPTIONS

pytest.importorskip("duckdb")

PERSONS = pd.DataFrame({
    "person_id": [1, 2, 3, 4, 5, 6],
    "sex": ["F", "M", "F", "M", "F", "M"],
    "birth_date": pd.to_datetime(["1950-01-01"] * 6),
    "end_of_data": pd.to_datetime("2020-12-31"),
})
DX = pd.DataFrame({"person_id": [1], "diagnosed_at": pd.to_datetime(["2012-01-01"]), "code": ["D70"]})


def labs_of(rows):
    """(person, day, code, value, unit) rows; times at 08:00."""
    df = pd.DataFrame(rows, columns=["person_id", "sampled_at", "code", "value", "unit"])
    df["sampled_at"] = pd.to_datetime(df["sampled_at"]) + pd.Timedelta(hours=8)
    return df


def both(labs, **kw):
    """The cohort on both engines, checked equal; returns the in-memory one."""
    kw.setdefault("scheme", "clinical")
    a = build_cohort(labs, PERSONS, DX, engine="numpy", **kw)
    b = build_cohort(labs, PERSONS, DX, engine="duckdb", **kw)
    pd.testing.assert_frame_equal(a.attrition, b.attrition)
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=False, rtol=1e-12, atol=0)
    return a


def index_anc(cohort) -> dict:
    return dict(zip(cohort.table["person_id"], cohort.table["index_anc_per_ul"]))


def step_rows(cohort, flag: str) -> int:
    att = cohort.attrition.set_index("description")
    d = FLAG_DESCRIPTIONS[flag]
    return int(att.loc[d, "excluded_lab_rows"]) if d in att.index else 0


# --- 1. thousands= ---------------------------------------------------------------


def test_thousands_separator_reads_well_formed_groups_only():
    out = parse_lab_values(["1,200", "1,234,567.5", "1,20", ",200", "<1,000", "950"], thousands=",")
    # "1,200" = 1200; "1,234,567.5" = 1234567.5; "1,20" and ",200" are no groups of three.
    assert out["value_num"].tolist()[:2] == [1200.0, 1234567.5]
    assert out["value_flag"].astype(object).tolist()[2:4] == ["non_numeric", "non_numeric"]
    assert out["value_num"].iloc[4] == 1000.0 and out["censor"].iloc[4] == "<"
    assert out["value_num"].iloc[5] == 950.0
    eu = parse_lab_values(["1.200", "1,2", "1.234,5", "1.20"], thousands=".", decimal=",")
    assert eu["value_num"].tolist()[:3] == [1200.0, 1.2, 1234.5]
    assert eu["value_flag"].iloc[3] == "non_numeric"


@pytest.mark.parametrize("fn", ["parse", "classify", "cohort"])
def test_thousands_equal_to_decimal_raises(fn):
    with pytest.raises(NeutrostatsError, match="thousands and decimal separators must differ"):
        if fn == "parse":
            parse_lab_values(["1"], thousands=".")
        elif fn == "classify":
            classify_anc(pd.DataFrame({"value": ["1"], "unit": "K/uL"}), thousands=",", decimal=",")
        else:
            build_cohort(labs_of([(1, "2010-01-01", "751-8", "1", "K/uL")]), PERSONS, DX, thousands=".")


def test_thousands_in_the_cohort_on_both_engines():
    labs = labs_of([
        (1, "2010-01-01", "751-8", "1,200", "cells/uL"),   # 1200 /µL: mild
        (2, "2010-01-01", "751-8", "1.25", "K/uL"),        # 1250 /µL: a plain decimal still
        (3, "2010-01-01", "751-8", "12,500", "/mm3"),      # 12500 /µL: normal
    ])
    c = both(labs, thousands=",")
    assert index_anc(c) == {1: 1200.0, 2: 1250.0, 3: 12500.0}
    assert c.table["tier"].astype(str).tolist() == ["mild", "mild", "normal"]
    eu = labs.assign(value=["1.200", "1,25", "12.500"])
    c2 = both(eu, thousands=".", decimal=",")
    assert index_anc(c2) == {1: 1200.0, 2: 1250.0, 3: 12500.0}


# --- 2. ambiguous numbers without thousands= ---------------------------------------


def test_ambiguous_patterns_by_unit_scale():
    values = ["1,200", "1.200", "12.500", "1,234,567", "1.234.567", "1,200.5", "0.450", "45.000"]
    cells = parse_lab_values(values, unit="cells/uL")
    # Every grouped form is refused in cells/µL; "0.450" (first group 0) is a decimal.
    assert cells["value_flag"].astype(object).tolist() == ["ambiguous_number"] * 6 + [np.nan, "ambiguous_number"]
    assert np.isnan(cells["value_num"].iloc[0])
    k = parse_lab_values(values, unit="K/uL")
    # In 10^9/L: a decimal where "." reads it, refused where it cannot.
    assert k["value_flag"].astype(object).tolist() == [
        "ambiguous_number", np.nan, np.nan, "ambiguous_number", "ambiguous_number", "ambiguous_number", np.nan, np.nan]
    assert k["value_num"].tolist()[1:3] == [1.2, 12.5]
    pct = parse_lab_values(values, unit="%")
    # Percentages are never ambiguous: "45.000" % is 45; "1,200" has no reading (non_numeric).
    assert pct["value_num"].iloc[7] == 45.0
    assert pct["value_flag"].iloc[0] == "non_numeric"
    # Without unit= every value is read with the decimal separator alone.
    assert parse_lab_values(["1.200"])["value_num"].iloc[0] == 1.2


def test_ambiguous_number_is_a_flag_counted_in_the_flow():
    labs = labs_of([
        (1, "2010-01-01", "751-8", "1.200", "cells/uL"),  # ambiguous: not 1.2, not 1200
        (1, "2010-02-01", "751-8", "1.6", "10^9/L"),      # 1600: the index
        (2, "2010-01-01", "751-8", "1.200", "K/uL"),      # 1.2 x 10^9/L = 1200 /µL, mild
        (3, "2010-01-01", "751-8", "1,200", "K/uL"),      # decimal ".": no clean reading, ambiguous
        (3, "2010-03-01", "751-8", "0.450", "K/uL"),      # 450 /µL, severe
        (4, "2010-01-01", "751-8", "12.500", "/mm3"),     # ambiguous, the person's only row
    ])
    c = both(labs)
    assert index_anc(c) == {1: 1600.0, 2: 1200.0, 3: 450.0}
    assert c.table["tier"].astype(str).tolist() == ["normal", "mild", "severe"]
    att = c.attrition.set_index("description")
    step = att.loc[FLAG_DESCRIPTIONS["ambiguous_number"]]
    assert (step["excluded_lab_rows"], step["excluded_persons"]) == (3, 1)  # rows of persons 1, 3, 4; person 4 gone
    out = classify_anc(labs)
    assert out["anc_flag"].astype(object).tolist()[0] == "ambiguous_number"
    assert np.isnan(out["anc_per_ul"].iloc[0])


def test_decimal_comma_ambiguity():
    labs = labs_of([
        (1, "2010-01-01", "751-8", "1,200", "K/uL"),      # decimal ",": 1.2 x 10^9/L = 1200
        (2, "2010-01-01", "751-8", "1.200", "K/uL"),      # "." is no decimal point here: ambiguous
        (3, "2010-01-01", "751-8", "1,200", "cells/uL"),  # ambiguous in cells/µL
        (3, "2010-02-01", "751-8", "900", "cells/uL"),
    ])
    c = both(labs, decimal=",")
    assert index_anc(c) == {1: 1200.0, 3: 900.0}
    assert step_rows(c, "ambiguous_number") == 2


def test_wbc_ambiguity_and_percentages():
    labs = labs_of([
        # WBC "4.500" cells/µL is ambiguous: the derivation misses its WBC.
        (1, "2010-01-01", "6690-2", "4.500", "cells/uL"),
        (1, "2010-01-01", "770-8", "50", "%"),
        # A percentage "45.000" is 45: ANC = 4.0 x 10^9/L x 45 / 100 = 1800 /µL.
        (2, "2010-01-01", "6690-2", "4.0", "K/uL"),
        (2, "2010-01-01", "770-8", "45.000", "%"),
    ])
    c = both(labs)
    assert index_anc(c) == {2: 1800.0}
    assert c.table["index_anc_source"].astype(str).tolist() == ["derived_no_bands"]
    assert step_rows(c, "ambiguous_number") == 1
    assert step_rows(c, "missing_component") == 1
    out = classify_anc(labs)
    assert out["anc_flag"].astype(object).tolist()[:2] == ["ambiguous_number", "missing_component"]


# --- 3. unit_suspect ------------------------------------------------------------------


def test_unit_suspect_low_non_integers_in_cells_per_ul():
    labs = labs_of([
        (1, "2010-01-01", "751-8", "0.9", "cells/uL"),   # 0.9 /µL: a 10^9/L value, suspect
        (1, "2010-02-01", "751-8", "0", "cells/uL"),     # 0 /µL: profound neutropenia, valid
        (2, "2010-01-01", "751-8", "<100", "cells/uL"),  # [0, 100) /µL: severe, valid
        (3, "2010-01-01", "751-8", "5", "/mm3"),         # 5 /µL: valid
        (4, "2010-01-01", "751-8", "12.5", "cells/uL"),  # suspect (non-integer below 20)
        (5, "2010-01-01", "751-8", "<0.5", "cells/uL"),  # a censored bound below 20: suspect
        (6, "2010-01-01", "751-8", "0.9", "K/uL"),       # 900 /µL: no rule for 10^9/L
    ])
    c = both(labs)
    assert index_anc(c) == {1: 0.0, 2: 100.0, 3: 5.0, 6: 900.0}
    assert c.table["tier"].astype(str).tolist() == ["severe", "severe", "severe", "moderate"]
    assert step_rows(c, "unit_suspect") == 3
    off = both(labs, unit_suspect_below=None)
    assert index_anc(off) == {1: 0.9, 2: 100.0, 3: 5.0, 4: 12.5, 5: 0.5, 6: 900.0}
    # A lower limit of 1: 12.5 is then a valid count, 0.9 and <0.5 are not.
    one = both(labs, unit_suspect_below=1)
    assert index_anc(one) == {1: 0.0, 2: 100.0, 3: 5.0, 4: 12.5, 6: 900.0}


def test_unit_suspect_wbc_and_numeric_values():
    labs = labs_of([
        (1, "2010-01-01", "6690-2", "4.5", "cells/uL"),  # a WBC of 4.5 /µL is a 10^9/L value
        (1, "2010-01-01", "770-8", "50", "%"),
        (2, "2010-01-01", "6690-2", "4500", "cells/uL"),  # 4500 x 50% = 2250 /µL
        (2, "2010-01-01", "770-8", "50", "%"),
    ])
    c = both(labs)
    assert index_anc(c) == {2: 2250.0}
    assert step_rows(c, "unit_suspect") == 1
    numeric = labs_of([(1, "2010-01-01", "751-8", 0.9, "cells/uL"), (2, "2010-01-01", "751-8", 300.0, "cells/uL")])
    numeric["value"] = numeric["value"].astype(float)
    c2 = both(numeric)
    assert index_anc(c2) == {2: 300.0}
    assert step_rows(c2, "unit_suspect") == 1


def test_unit_suspect_below_must_be_positive():
    with pytest.raises(NeutrostatsError, match="unit_suspect_below"):
        classify_anc(pd.DataFrame({"value": ["1"], "unit": "K/uL"}), unit_suspect_below=-1)


# --- 4. an unusable direct ANC: derive from the components --------------------------------


@pytest.mark.parametrize("direct, unit, flag", [
    ("clotted", "10^9/L", "non_numeric"),
    ("", "10^9/L", "missing_value"),
    ("1.2", "mmol/L", "unknown_unit"),
    ("1.2", "%", "unit_code_mismatch"),
    ("1.200", "cells/uL", "ambiguous_number"),
    ("0.9", "cells/uL", "unit_suspect"),
    ("-1", "10^9/L", "negative"),
    ("150", "10^9/L", "implausible"),
    ("<2", "10^9/L", "censored_spans_tiers"),
])
def test_unusable_direct_anc_is_derived_from_wbc_and_differential(direct, unit, flag):
    labs = labs_of([
        (1, "2010-01-01", "751-8", direct, unit),
        (1, "2010-01-01", "6690-2", "4.0", "10^9/L"),
        (1, "2010-01-01", "770-8", "50", "%"),
        (1, "2010-01-01", "764-1", "5", "%"),
    ])
    # ANC = 4.0 x 10^9/L x (50 + 5) / 100 = 2.2 x 10^9/L = 2200 /µL, normal.
    c = both(labs, on_unknown_unit="flag")
    assert index_anc(c) == {1: 2200.0}
    assert c.table["index_anc_source"].astype(str).tolist() == ["derived"]
    assert c.table["tier"].astype(str).tolist() == ["normal"]
    assert step_rows(c, flag) == 1  # the direct row keeps its own flag
    assert step_rows(c, "used_in_derivation") == 2  # WBC and band
    assert step_rows(c, "direct_anc_available") == 0
    out = classify_anc(labs, on_unknown_unit="flag", scheme="clinical")
    assert out["anc_flag"].astype(object).tolist() == [flag, "used_in_derivation", np.nan, "used_in_derivation"]
    assert out["anc_per_ul"].iloc[2] == 2200.0


def test_a_usable_direct_anc_still_makes_the_components_unnecessary():
    labs = labs_of([
        (1, "2010-01-01", "751-8", "clotted", "10^9/L"),
        (1, "2010-01-01", "751-8", "1.1", "10^9/L"),  # usable: 1100 /µL, mild
        (1, "2010-01-01", "6690-2", "4.0", "10^9/L"),
        (1, "2010-01-01", "770-8", "50", "%"),
    ])
    c = both(labs)
    assert index_anc(c) == {1: 1100.0}
    assert c.table["index_anc_source"].astype(str).tolist() == ["direct"]
    assert step_rows(c, "direct_anc_available") == 2
    assert step_rows(c, "non_numeric") == 1


# --- 5. flow step names say what happened ---------------------------------------------


def test_every_flag_has_a_readable_distinct_description():
    assert set(FLAG_DESCRIPTIONS) == set(ANC_FLAGS)
    assert len(set(FLAG_DESCRIPTIONS.values())) == len(ANC_FLAGS)
    assert FLAG_DESCRIPTIONS["direct_anc_available"] == (
        "WBC/differential rows not needed: the sample has a usable direct ANC")
    assert "thousands=" in FLAG_DESCRIPTIONS["ambiguous_number"]
    labs = labs_of([
        (1, "2010-01-01", "751-8", "1.1", "10^9/L"),
        (1, "2010-01-01", "6690-2", "4.0", "10^9/L"),
        (1, "2010-01-01", "770-8", "50", "%"),
    ])
    steps = set(both(labs).attrition["description"])
    assert "WBC/differential rows not needed: the sample has a usable direct ANC" in steps
    assert not any(s.endswith("direct_anc_available") for s in steps)


# --- 6. code_map ------------------------------------------------------------------------


def mimic_labs(item_ids_as=int):
    loinc = labs_of([
        (1, "2010-01-01", "751-8", "1.1", "K/uL"),
        (2, "2010-01-01", "6690-2", "4.0", "K/uL"),
        (2, "2010-01-01", "770-8", "40", "%"),
        (2, "2010-01-01", "764-1", "5", "%"),
        (3, "2010-01-01", "6690-2", "5.0", "K/uL"),
        (3, "2010-01-01", "770-8", "20", "%"),
        (3, "2010-01-01", "718-7", "13.2", "g/dL"),
    ])
    back = {"751-8": 52075, "770-8": 51256, "764-1": 51144, "6690-2": 51301, "718-7": 51222}
    local = loinc.assign(code=loinc["code"].map(back).map(item_ids_as))
    return loinc, local


@pytest.mark.parametrize("as_type", [int, str])
def test_mimic_item_ids_need_the_code_map(as_type):
    loinc, local = mimic_labs(as_type)
    for engine in ("numpy", "duckdb"):
        with pytest.raises(NeutrostatsError) as err:
            build_cohort(local, PERSONS, DX, engine=engine)
        text = str(err.value)
        assert "'51301' (2 rows)" in text and "'52075' (1 rows)" in text
        assert "MIMIC_IV_LAB_CODES" in text and "code_map=" in text and "751-8" in text
    with pytest.raises(NeutrostatsError, match="MIMIC_IV_LAB_CODES"):
        classify_anc(local)
    # With the map: person 1 direct 1100; person 2 4.0 x 45% = 1800; person 3 5.0 x 20% = 1000.
    ref = both(loinc)
    # The haemoglobin row (MIMIC item 51222) is not an ANC code: mapped too, it gives the same CBC columns.
    got = both(local, code_map={**MIMIC_IV_LAB_CODES, "51222": "718-7"})
    assert index_anc(got) == {1: 1100.0, 2: 1800.0, 3: 1000.0}
    pd.testing.assert_frame_equal(ref.table, got.table)
    pd.testing.assert_frame_equal(ref.attrition, got.attrition)


def test_code_map_from_csv_with_local_names_and_integer_keys(tmp_path):
    loinc, _ = mimic_labs()
    names = {"751-8": "ANC", "770-8": "NEUT%", "764-1": "BAND%", "6690-2": "WBC", "718-7": "HGB"}
    local = loinc.assign(code=loinc["code"].map(names))
    path = tmp_path / "map.csv"
    path.write_text("local_code,loinc\nANC,751-8\nNEUT%,770-8\nBAND%,764-1\n WBC ,6690-2\n", encoding="utf-8")
    got = both(local, code_map=path)
    assert index_anc(got) == {1: 1100.0, 2: 1800.0, 3: 1000.0}
    assert read_code_map({52075: "751-8"}) == {"52075": "751-8"}
    # LOINC codes already in the table keep working beside mapped ones.
    mixed = loinc.assign(code=loinc["code"].replace({"770-8": "NEUT%"}))
    assert index_anc(both(mixed, code_map={"NEUT%": "770-8"})) == {1: 1100.0, 2: 1800.0, 3: 1000.0}


def test_code_map_targets_must_be_known_loinc_codes(tmp_path):
    with pytest.raises(NeutrostatsError, match="'HGB' -> '718-7'"):
        classify_anc(labs_of([(1, "2010-01-01", "751-8", "1", "K/uL")]), code_map={"HGB": "718-7"})
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    with pytest.raises(NeutrostatsError, match="two columns"):
        build_cohort(labs_of([(1, "2010-01-01", "751-8", "1", "K/uL")]), PERSONS, DX, code_map=bad)
    with pytest.raises(NeutrostatsError, match="not found"):
        read_code_map(tmp_path / "missing.csv")


# --- 7. no known code: a clear error, not an empty cohort ------------------------------------


def test_no_known_code_lists_the_most_frequent_codes():
    rows = [(1, f"2010-01-{d:02d}", f"T{i}", "1", "K/uL") for i in range(12) for d in range(1, 13 - i)]
    labs = labs_of(rows)
    for engine in ("numpy", "duckdb"):
        with pytest.raises(NeutrostatsError, match="no row with a known ANC, WBC or differential code") as err:
            build_cohort(labs, PERSONS, DX, engine=engine)
        text = str(err.value)
        # T0 has 12 rows, T1 11, ... T9 3: the ten shown; T10 and T11 are not.
        assert "the 10 most frequent codes found: 'T0' (12 rows), 'T1' (11 rows)" in text
        assert "'T9' (3 rows)" in text and "'T10'" not in text
        assert "MIMIC" not in text and "code_map=" in text
    with pytest.raises(NeutrostatsError, match="'T0' \\(12 rows\\)"):
        classify_anc(labs)
    # A wide table (code=None) and an empty long table are not refused.
    assert len(classify_anc(labs, code=None)) == len(labs)
    assert len(classify_anc(labs.iloc[:0])) == 0


def test_derive_anc_judges_the_wbc_by_its_unit():
    from neutrostats import derive_anc

    out = derive_anc(["4.5", "4500", "4.500", "4.0", "4,0"], [50, 50, 50, "45.000", 50],
                     wbc_unit=["cells/uL", "cells/uL", "cells/uL", "K/uL", "K/uL"])
    # 4.5 /µL is a 10^9/L value (suspect); 4500 /µL x 50% = 2250; "4.500" /µL ambiguous;
    # 4.0 x 10^9/L x 45% = 1800; "4,0" has no reading with decimal ".".
    assert out["derive_flag"].astype(object).tolist() == [
        "unit_suspect", np.nan, "ambiguous_number", np.nan, "missing_component"]
    assert out["anc_per_ul"].tolist()[1] == 2250.0 and out["anc_per_ul"].tolist()[3] == 1800.0
    # decimal ",": 4.0 x 10^9/L x 45.5% = 1820 /µL.
    assert derive_anc(["4,0"], ["45,5"], decimal=",")["anc_per_ul"].tolist() == [1820.0]
    assert derive_anc(["4.5"], [50], wbc_unit="cells/uL", unit_suspect_below=None)["anc_per_ul"].tolist() == [2.25]


def test_decimal_comma_in_a_derivation_on_both_engines():
    labs = labs_of([
        (1, "2010-01-01", "6690-2", "4,0", "K/uL"),
        (1, "2010-01-01", "770-8", "45,5", "%"),
        (1, "2010-01-01", "764-1", "<1", "%"),  # censored band: no derivation
        (2, "2010-01-01", "6690-2", "4,0", "K/uL"),
        (2, "2010-01-01", "770-8", "45,5", "%"),
    ])
    c = both(labs, decimal=",")
    # Person 2: 4.0 x 10^9/L x 45.5 / 100 = 1.82 x 10^9/L = 1820 /µL.
    assert index_anc(c) == {2: 1820.0}
    assert step_rows(c, "censored_component") == 1


def test_an_unusable_band_result_is_unknown_not_absent():
    # Person 1: WBC 4.0, neutrophils 50 %, bands "see comment": the ANC is somewhere in
    # 4,000 x [50, 100] % and must not be derived as 4.0 x 50 % = 2,000 (too low by the bands).
    # Person 2: an empty band result is "not reported": 4.0 x 1000 x 50 / 100 = 2,000, no bands.
    labs = labs_of([
        (1, "2010-01-01", "6690-2", "4.0", "10^9/L"), (1, "2010-01-01", "770-8", "50", "%"),
        (1, "2010-01-01", "764-1", "see comment", "%"),
        (2, "2010-01-01", "6690-2", "4.0", "10^9/L"), (2, "2010-01-01", "770-8", "50", "%"),
        (2, "2010-01-01", "764-1", "", "%"),
    ])
    c = both(labs)
    assert index_anc(c) == {2: 2000.0}
    assert c.table["index_anc_source"].tolist() == ["derived_no_bands"]
    assert step_rows(c, "missing_component") == 1 and step_rows(c, "non_numeric") == 1
    classified = classify_anc(labs)
    assert classified["anc_flag"].tolist()[1] == "missing_component"
