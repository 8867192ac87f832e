"""ICD-10 code sets (DOMAIN.md section 4) and their matching rules."""

from __future__ import annotations

import pytest

from neutrostats import NeutrostatsError
from neutrostats.cohort.icd10 import ICD10_OUTCOMES, match_icd10, normalize_icd10, validate_code_sets


@pytest.mark.parametrize(
    "code, expected",
    [
        ("A80", True), ("A80.9", True), ("a809", True), ("B34.9", True), ("B34", True),  # range ends included
        ("B15.1", True), ("B20", True),
        ("A79.9", False), ("B35.0", False), ("C92.0", False), ("", False), (None, False),
    ],
)
def test_viral_range_a80_b34(code, expected):
    # DOMAIN.md: "a range A80-B34 includes every code whose three-character
    # category falls in it".
    assert match_icd10([code], ICD10_OUTCOMES["viral_infection"]).tolist() == [expected]


@pytest.mark.parametrize(
    "code, expected",
    [("C92.0", True), ("C920", True), ("c92.00", True), (" C92.0 ", True), ("C92.1", False), ("C92", False),
     ("C93.0", True), ("C94.2", True), ("C94.3", False)],
)
def test_aml_codes_are_prefixes(code, expected):
    assert match_icd10([code], ICD10_OUTCOMES["aml"]).tolist() == [expected]


def test_hiv_and_other_sets():
    assert match_icd10(["B20", "B24.0", "Z21", "O98.7", "O98.6", "B25"], ICD10_OUTCOMES["hiv"]).tolist() == [
        True, True, True, True, False, False]
    assert match_icd10(["C81.0", "C96.9", "C80", "C97"], ICD10_OUTCOMES["hematologic_malignancy"]).tolist() == [
        True, True, False, False]
    assert match_icd10(["D45", "D46.9", "D47.1", "D44"], ICD10_OUTCOMES["myeloid_neoplasm"]).tolist() == [
        True, True, True, False]
    assert match_icd10(["C00.1", "C80.9", "C81"], ICD10_OUTCOMES["solid_cancer"]).tolist() == [True, True, False]
    assert match_icd10(["M05.3", "M35.0", "M35.1", "K51.9", "G35"], ICD10_OUTCOMES["autoimmune"]).tolist() == [
        True, True, False, True, True]


def test_subcode_ranges_and_dashes():
    assert match_icd10(["C92.0", "C92.3", "C92.4", "C92"], ["C92.0–C92.3"]).tolist() == [True, True, False, False]
    assert match_icd10(["C92.0"], ["C92 - C92"]).tolist() == [True]


def test_normalize():
    assert normalize_icd10(" c92.00 ") == "C9200"
    assert normalize_icd10(None) is None and normalize_icd10("  ") is None


@pytest.mark.parametrize(
    "sets, match",
    [
        ({"x": ["92.0"]}, "not an ICD-10 code"),
        ({"x": ["C9"]}, "not an ICD-10 code"),
        ({"x": ["B34-A80"]}, "lower one first"),
        ({"x": ["C92-C92.3"]}, "equal length"),
        ({"x": ["A80-B34-C00"]}, "not an ICD-10 code"),
        ({"x": []}, "at least one code"),
        ({"x": [92]}, "as strings"),
        ({"bad name": ["C92"]}, "valid identifier"),
        ({}, "non-empty dict"),
    ],
)
def test_invalid_code_sets(sets, match):
    with pytest.raises(NeutrostatsError, match=match):
        validate_code_sets(sets)


def test_single_string_is_one_pattern():
    assert validate_code_sets({"aml": "C92.0"}) == {"aml": ("C92.0",)}


def _module_defaults():
    import neutrostats.io as nio
    from neutrostats.io.files import CBC_NAMES
    import neutrostats.labs as labs
    import neutrostats.synthetic as syn
    from neutrostats.cohort import icd10
    from neutrostats.labs import classify, codes, units

    return {
        "ICD10_OUTCOMES": icd10.ICD10_OUTCOMES, "DEFAULT_OUTCOMES": icd10.DEFAULT_OUTCOMES,
        "SCHEMES": classify.SCHEMES, "FLAG_DESCRIPTIONS": classify.FLAG_DESCRIPTIONS,
        "LOINC_ROLES": codes.LOINC_ROLES, "MIMIC_IV_LAB_CODES": labs.MIMIC_IV_LAB_CODES,
        "KNOWN_COUNT_UNITS": units.KNOWN_COUNT_UNITS,
        "OMOP_MEASUREMENT_CONCEPTS": nio.OMOP_MEASUREMENT_CONCEPTS, "OMOP_UNIT_CONCEPTS": nio.OMOP_UNIT_CONCEPTS,
        "OMOP_OPERATOR_CONCEPTS": nio.OMOP_OPERATOR_CONCEPTS, "OMOP_GENDER_CONCEPTS": nio.OMOP_GENDER_CONCEPTS,
        "FHIR_GENDERS": nio.FHIR_GENDERS, "CBC_CODES": nio.CBC_CODES, "CBC_NAMES": CBC_NAMES,
        "ANDERSEN2016_OR": syn.ANDERSEN2016_OR, "DEFAULT_ASSUMPTIONS": syn.DEFAULT_ASSUMPTIONS,
        "ASSUMPTION_NOTES": syn.ASSUMPTION_NOTES, "OUTCOME_CODE_RANGES": syn.OUTCOME_CODE_RANGES,
    }


@pytest.mark.parametrize("name", sorted(_module_defaults()))
def test_module_defaults_are_read_only(name):
    # A default that one caller changes would silently change every later call.
    mapping = _module_defaults()[name]
    key = next(iter(mapping))
    with pytest.raises(TypeError):
        mapping[key] = mapping[key]
    with pytest.raises(TypeError):
        mapping["added_by_a_test"] = None
    with pytest.raises(TypeError):
        del mapping[key]
    assert "added_by_a_test" not in mapping
    # Copying still works, and the copy is an ordinary dict.
    copy = dict(mapping)
    copy["added_by_a_test"] = None
    assert "added_by_a_test" not in mapping


def test_nested_defaults_are_read_only_and_code_sets_are_tuples():
    from neutrostats.synthetic import ANDERSEN2016_OR, DEFAULT_ASSUMPTIONS, OUTCOME_CODE_RANGES

    with pytest.raises(TypeError):
        DEFAULT_ASSUMPTIONS["mess"]["duplicate"] = 0.5
    with pytest.raises(TypeError):
        ANDERSEN2016_OR["viral_infection"]["mild"] = (1.0, 1.0, 1.0)
    assert all(isinstance(v, tuple) for v in ICD10_OUTCOMES.values())
    assert all(isinstance(v, tuple) for v in OUTCOME_CODE_RANGES.values())
    # The generator still accepts a partial override of a nested default.
    from neutrostats.synthetic import generate_cohort

    s = generate_cohort(n_persons=50, seed=1, progress=False, mess={"duplicate": 0.0})
    assert s.truth["assumptions"]["mess"]["duplicate"] == 0.0
    assert DEFAULT_ASSUMPTIONS["mess"]["duplicate"] == 0.005
