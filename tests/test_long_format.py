"""Long-format lab tables: ANC picked by LOINC code, or derived from the WBC
and the differential (ANC = WBC x (neutrophil % + band %) / 100, DOMAIN.md
section 1; LOINC codes from the table there)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neutrostats import classify_anc, tier_summary

T0 = pd.Timestamp("2021-03-01 08:00")
T1 = pd.Timestamp("2021-03-02 08:00")


def _labs(rows):
    return pd.DataFrame(rows, columns=["person_id", "sampled_at", "code", "value", "unit"])


def _col(out, name):
    return out[name].astype(object).where(out[name].notna(), None).tolist()


def test_direct_anc_codes_and_other_tests():
    labs = _labs(
        [
            (1, T0, "751-8", "1.2", "10^9/L"),  # automated
            (2, T0, "753-4", "450", "cells/uL"),  # manual
            (3, T0, "26499-4", "2.0", "K/uL"),  # method not stated
            (3, T0, "718-7", "13.5", "g/dL"),  # haemoglobin: not ours
        ]
    )
    out = classify_anc(labs, scheme="clinical")
    assert _col(out, "tier") == ["mild", "severe", "normal", None]
    assert _col(out, "anc_source") == ["direct", "direct", "direct", None]
    assert _col(out, "anc_flag") == [None, None, None, "not_anc_test"]


def test_derivation_with_bands_without_bands_and_units():
    labs = _labs(
        [
            (1, T0, "6690-2", "4.0", "10^9/L"),
            (1, T0, "770-8", "30", "%"),
            (1, T0, "764-1", "5", "%"),
            (2, T0, "26464-8", "2500", "cells/uL"),  # WBC in cells/µL
            (2, T0, "26511-6", "38", "%"),  # no band row
        ]
    )
    out = classify_anc(labs, scheme="clinical")
    # 4.0 x (30 + 5) / 100 = 1.4 x10^9/L; 2500 x 38 / 100 = 950/µL.
    assert out["anc_per_ul"].iloc[1] == pytest.approx(1400.0)
    assert out["anc_per_ul"].iloc[4] == pytest.approx(950.0)
    assert _col(out, "tier") == [None, "mild", None, None, "moderate"]
    assert _col(out, "anc_source") == [None, "derived", None, None, "derived_no_bands"]
    assert _col(out, "anc_flag") == ["used_in_derivation", None, "used_in_derivation", "used_in_derivation", None]


def test_components_not_derived_when_direct_anc_exists():
    labs = _labs(
        [
            (1, T0, "751-8", "1.6", "10^9/L"),
            (1, T0, "6690-2", "4.0", "10^9/L"),
            (1, T0, "770-8", "10", "%"),
            (1, T1, "6690-2", "4.0", "10^9/L"),  # another sample: derived
            (1, T1, "770-8", "10", "%"),
        ]
    )
    out = classify_anc(labs, scheme="clinical")
    assert _col(out, "anc_flag") == [None, "direct_anc_available", "direct_anc_available", "used_in_derivation", None]
    assert _col(out, "tier") == ["normal", None, None, None, "severe"]


def test_unit_contradicting_code_is_flagged():
    labs = _labs(
        [
            (1, T0, "751-8", "55", "%"),  # % on an absolute count
            (2, T0, "6690-2", "4.0", "10^9/L"),
            (2, T0, "770-8", "1.5", "10^9/L"),  # absolute value on a % code
            (3, T0, "6690-2", "4.0", "%"),  # % on a WBC
            (3, T0, "770-8", "50", "%"),
        ]
    )
    out = classify_anc(labs)
    assert _col(out, "anc_flag") == [
        "unit_code_mismatch", "used_in_derivation", "unit_code_mismatch", "unit_code_mismatch", "missing_component"]
    assert out["tier"].isna().all()


def test_incomplete_differentials_and_duplicates():
    labs = _labs(
        [
            (1, T0, "6690-2", "4.0", "10^9/L"),  # WBC alone
            (2, T0, "770-8", "50", "%"),  # neutrophil % alone
            (3, T0, "6690-2", "4.0", "10^9/L"),
            (3, T0, "770-8", "50", "%"),
            (3, T0, "770-8", "50", "%"),  # duplicate row
            (4, T0, "764-1", "3", "%"),  # band alone
        ]
    )
    out = classify_anc(labs)
    assert _col(out, "anc_flag") == [
        "incomplete_differential",
        "incomplete_differential",
        "used_in_derivation",
        None,
        "duplicate_component",
        "incomplete_differential",
    ]
    assert out["anc_per_ul"].iloc[3] == 2000.0


def test_bad_components_flag_the_derived_measurement():
    labs = _labs(
        [
            (1, T0, "6690-2", "clotted", "10^9/L"),
            (1, T0, "770-8", "50", "%"),
            (2, T0, "6690-2", "4", "10^9/L"),
            (2, T0, "770-8", "90", "%"),
            (2, T0, "764-1", "20", "%"),
            (3, T0, "6690-2", "<0.5", "10^9/L"),
            (3, T0, "770-8", "50", "%"),
            (4, T0, "6690-2", "4", "10^9/L"),
            (4, T0, "770-8", "see comment", "%"),
        ]
    )
    out = classify_anc(labs)
    flags = _col(out, "anc_flag")
    assert flags[0] == "non_numeric" and flags[1] == "missing_component"
    assert flags[3] == "pct_sum_over_100"
    assert flags[6] == "censored_component"
    assert flags[8] == "non_numeric"
    assert out["tier"].isna().all()


def test_percent_rows_may_omit_unit_but_counts_may_not():
    labs = _labs(
        [
            (1, T0, "6690-2", "4.0", "10^9/L"),
            (1, T0, "770-8", "50", None),
            (2, T0, "751-8", "1.0", None),
        ]
    )
    out = classify_anc(labs)
    assert _col(out, "tier") == [None, "normal", None]
    assert _col(out, "anc_flag") == ["used_in_derivation", None, "missing_unit"]


def test_unknown_unit_on_other_tests_is_ignored_but_on_anc_raises():
    ok = _labs([(1, T0, "718-7", "13", "g/dL"), (1, T0, "751-8", "2", "K/uL")])
    classify_anc(ok)  # no error: haemoglobin units are not ours to judge
    bad = _labs([(1, T0, "751-8", "2", "mmol/L")])
    with pytest.raises(Exception, match="mmol/L"):
        classify_anc(bad)


def test_long_format_summary_adds_up_to_input_rows():
    labs = _labs(
        [
            (1, T0, "751-8", "1.2", "10^9/L"),
            (2, T0, "6690-2", "4.0", "10^9/L"),
            (2, T0, "770-8", "30", "%"),
            (2, T0, "764-1", "5", "%"),
            (3, T0, "718-7", "13", "g/dL"),
        ]
    )
    out = classify_anc(labs)
    s = tier_summary(out)
    assert s["n"].sum() == len(labs)
    assert s.loc[s["kind"] == "tier", "n"].sum() == 2  # one direct, one derived measurement


def test_codes_with_spaces_and_wide_override():
    labs = _labs([(1, T0, " 751-8 ", "1.2", "10^9/L")])
    assert classify_anc(labs)["tier"].iloc[0] == "mild"
    # code=None reads every row as an ANC result, even with a code column.
    wide = classify_anc(_labs([(1, T0, "6690-2", "1.2", "10^9/L")]), code=None)
    assert wide["tier"].iloc[0] == "mild"


def test_duffy_in_long_format():
    labs = _labs([(1, T0, "751-8", "1.3", "10^9/L"), (2, T0, "751-8", "1.3", "10^9/L")])
    labs["duffy_null"] = [True, False]
    out = classify_anc(labs, duffy_null="duffy_null")
    assert _col(out, "tier") == ["normal", "mild"]


def test_large_long_table_is_consistent_with_wide_classification():
    """Derived rows must equal the wide classification of the same ANC."""
    rng = np.random.default_rng(7)
    n = 5_000
    wbc = np.round(rng.uniform(1, 10, n), 1)
    neut = np.round(rng.uniform(5, 80, n))
    band = np.round(rng.uniform(0, 10, n))
    t = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(n), unit="D")
    parts = []
    for code, val, unit in (("6690-2", wbc, "K/uL"), ("770-8", neut, "%"), ("764-1", band, "%")):
        parts.append(pd.DataFrame({"person_id": np.arange(n) % 50, "sampled_at": t, "code": code,
                                   "value": val.astype(str), "unit": unit}))
    labs = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=1)
    out = classify_anc(labs)
    measured = out[out["anc_source"].notna()]
    assert len(measured) == n
    expected_anc = np.round(wbc * 1000 * (neut + band) / 100, 6)
    got = measured.sort_values("sampled_at")["anc_per_ul"].to_numpy()
    np.testing.assert_allclose(got, expected_anc, rtol=1e-12)
    wide = classify_anc(pd.DataFrame({"value": got, "unit": "cells/uL"}), code=None)
    assert measured.sort_values("sampled_at")["tier"].tolist() == wide["tier"].tolist()
