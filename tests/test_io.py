"""File reading and writing: the right table or a NeutrostatsError naming the file; wide CBC exports."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from neutrostats import NeutrostatsError
from neutrostats.io import CBC_CODES, READ_SUFFIXES, WRITE_SUFFIXES, cbc_to_long, read_table, write_table

# ---------------------------------------------------------------------------
# read_table: every broken input is a NeutrostatsError that names the file


def test_zero_byte_csv(tmp_path):
    p = tmp_path / "labs.csv"
    p.write_bytes(b"")
    with pytest.raises(NeutrostatsError, match=r"labs\.csv.*empty \(0 bytes\)"):
        read_table(p)


def test_header_only_csv_is_empty_only_where_rows_are_needed(tmp_path):
    p = tmp_path / "persons.csv"
    p.write_text("person_id,sex,birth_date\n", encoding="utf-8")
    assert read_table(p).columns.tolist() == ["person_id", "sex", "birth_date"]
    assert len(read_table(p)) == 0
    with pytest.raises(NeutrostatsError, match=r"persons .*persons\.csv.*header but no rows"):
        read_table(p, allow_empty=False, name="persons")


def test_duplicate_column_names_in_csv_header(tmp_path):
    # pandas alone would read this as columns value and value.1, silently.
    p = tmp_path / "labs.csv"
    p.write_text("person_id,value,unit,value\n1,1.2,10^9/L,3.4\n", encoding="utf-8")
    with pytest.raises(NeutrostatsError, match=r"\['value'\] more than once.*labs\.csv"):
        read_table(p, name="labs")
    gz = tmp_path / "labs.csv.gz"
    pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"]).to_csv(gz, index=False)
    with pytest.raises(NeutrostatsError, match=r"\['a'\] more than once"):
        read_table(gz)


def test_duplicate_column_names_in_file_like():
    with pytest.raises(NeutrostatsError, match="more than once"):
        read_table(io.StringIO("x,x\n1,2\n"))


def test_zero_byte_and_corrupt_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    empty = tmp_path / "labs.parquet"
    empty.write_bytes(b"")
    with pytest.raises(NeutrostatsError, match=r"labs\.parquet.*empty \(0 bytes\)"):
        read_table(empty)
    # A file cut off in the middle of the copy: the footer is missing.
    good = tmp_path / "good.parquet"
    pd.DataFrame({"person_id": np.arange(100), "value": ["1.5"] * 100}).to_parquet(good)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(NeutrostatsError, match=r"cut\.parquet.*not a readable Parquet file.*export it again") as e:
        read_table(cut)
    assert "Traceback" not in str(e.value)
    garbage = tmp_path / "garbage.pq"
    garbage.write_bytes(b"this is not parquet at all")
    with pytest.raises(NeutrostatsError, match=r"garbage\.pq.*not a readable Parquet"):
        read_table(garbage)


def test_folder_where_a_file_is_expected(tmp_path):
    folder = tmp_path / "labs.csv"
    folder.mkdir()
    with pytest.raises(NeutrostatsError, match=r"labs\.csv' is a folder, not a file.*--from"):
        read_table(folder)


@pytest.mark.parametrize("name", ["labs.xlsx", "labs.json", "labs.txt", "labs"])
def test_unreadable_suffix(tmp_path, name):
    p = tmp_path / name
    p.write_text("person_id,value\n1,2\n", encoding="utf-8")
    with pytest.raises(NeutrostatsError, match="cannot read") as e:
        read_table(p)
    message = str(e.value)
    assert name in message and ".csv.gz" in message and ".parquet" in message


def test_binary_data_in_a_csv(tmp_path):
    p = tmp_path / "labs.csv"
    p.write_bytes(b"\x00\x01garbage\n\x00\x02")
    with pytest.raises(NeutrostatsError, match="binary data"):
        read_table(p, name="labs")


def test_missing_file(tmp_path):
    with pytest.raises(NeutrostatsError, match="not found"):
        read_table(tmp_path / "nope.csv")


def test_tsv_is_read_with_tabs(tmp_path):
    p = tmp_path / "labs.tsv"
    p.write_text("person_id\tvalue\tunit\n1\t1,2\t10^9/L\n", encoding="utf-8")
    t = read_table(p)
    assert t.columns.tolist() == ["person_id", "value", "unit"]
    assert t["value"].tolist() == ["1,2"]  # text as written


def test_text_columns_all_keeps_every_cell_as_written(tmp_path):
    p = tmp_path / "cbc.csv"
    p.write_text("MRN,WBC,ANC\n0001,4.0,1.200\n", encoding="utf-8")
    t = read_table(p, text_columns="all")
    assert t.iloc[0].tolist() == ["0001", "4.0", "1.200"]


def test_suffix_lists_are_consistent():
    assert set(WRITE_SUFFIXES) <= set(READ_SUFFIXES)


# ---------------------------------------------------------------------------
# write_table


@pytest.mark.parametrize("name", ["out.xlsx", "out.json", "out"])
def test_write_table_refuses_suffixes_it_cannot_write(tmp_path, name):
    with pytest.raises(NeutrostatsError, match="cannot write") as e:
        write_table(pd.DataFrame({"a": [1]}), tmp_path / name)
    assert ".csv" in str(e.value) and ".parquet" in str(e.value)
    assert not (tmp_path / name).exists()


def test_write_table_missing_folder(tmp_path):
    with pytest.raises(NeutrostatsError, match="does not exist"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "no" / "out.csv")


def test_write_table_roundtrip(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    write_table(df, tmp_path / "o.csv.gz")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "o.csv.gz"), df, check_dtype=False)


# ---------------------------------------------------------------------------
# cbc_to_long

EPIC = pd.DataFrame({
    "MRN": ["0001", "0002", "0003"],
    "Collected": ["03/01/2020 08:15 AM", "03/02/2020 09:00 PM", "03/03/2020 07:30 AM"],
    "wbc (10^9/L)": ["4.0", "3.2", ""],
    "Neut %": ["20", "", "55"],
    "BAND%": ["5", "", ""],
    "ANC [10^9/L]": ["see comment", "1,200", "<0.1"],
})


def test_cbc_to_long_rows_codes_units_and_values_as_written():
    long = cbc_to_long(EPIC, person="MRN", time="Collected")
    # 3 samples x 4 recognised columns = 12 cells, of which 4 are empty (tests not done): 8 rows.
    # Order: row by row, then ANC, WBC, NEUT%, BAND%.
    assert len(long) == 8
    assert long.columns.tolist() == ["MRN", "Collected", "code", "value", "unit", "source_column", "source_row"]
    assert long["code"].astype(str).tolist()[:4] == ["751-8", "6690-2", "770-8", "764-1"]
    assert long["unit"].astype(str).tolist()[:4] == ["10^9/L", "10^9/L", "%", "%"]
    assert long["value"].tolist() == ["see comment", "4.0", "20", "5", "1,200", "3.2", "<0.1", "55"]
    assert long["MRN"].tolist() == ["0001"] * 4 + ["0002"] * 2 + ["0003"] * 2
    assert long["source_row"].tolist() == [0] * 4 + [1] * 2 + [2] * 2
    assert long["source_column"].astype(str).tolist()[:2] == ["ANC [10^9/L]", "wbc (10^9/L)"]
    assert EPIC.columns.tolist()[0] == "MRN"  # input not changed


def test_cbc_to_long_numeric_cells_become_text_that_reads_back():
    wide = pd.DataFrame({"person_id": [1, 2], "sampled_at": ["2020-01-01", "2020-01-02"],
                         "ANC": [1200.0, np.nan], "WBC": [4.1, 0.30000000000000004]})
    long = cbc_to_long(wide, units={"anc": "cells/uL", "WBC": "K/uL"})
    assert long["value"].tolist() == ["1200", "4.1", "0.30000000000000004"]
    assert long["unit"].astype(str).tolist() == ["cells/uL", "K/uL", "K/uL"]
    assert long["person_id"].dtype == wide["person_id"].dtype


def test_cbc_to_long_keeps_one_row_of_an_empty_sample():
    wide = pd.DataFrame({"person_id": [1, 2], "sampled_at": ["a", "b"], "WBC (K/uL)": ["", "4"],
                         "NEUT%": [" ", "50"]})
    long = cbc_to_long(wide)
    # Sample 0 has only empty cells: one row (its first column, WBC) with value "", counted as missing.
    assert long[["person_id", "code", "value"]].values.tolist() == [[1, "6690-2", ""], [2, "6690-2", "4"],
                                                                    [2, "770-8", "50"]]


def test_cbc_to_long_columns_override_names_not_recognised():
    wide = pd.DataFrame({"pid": [7], "t": ["2020-01-01"], "NEUTRO ABS CNT": ["0.4"], "ANC": ["9"]})
    long = cbc_to_long(wide, person="pid", time="t", columns={"anc": "NEUTRO ABS CNT"}, units={"anc": "10^9/L"})
    # The named column is used for the ANC, and the other "ANC" header is then not searched for.
    assert long["value"].tolist() == ["0.4"]
    assert long["source_column"].astype(str).tolist() == ["NEUTRO ABS CNT"]


def test_cbc_to_long_needs_a_unit():
    wide = pd.DataFrame({"person_id": [1], "sampled_at": ["2020-01-01"], "ANC": ["1.2"]})
    with pytest.raises(NeutrostatsError, match=r"'ANC' \(anc\) has no unit.*units=\{'anc'"):
        cbc_to_long(wide)


def test_cbc_to_long_two_columns_for_one_role():
    wide = pd.DataFrame({"person_id": [1], "sampled_at": ["x"], "ANC": ["1"], "Abs Neut": ["1"]})
    with pytest.raises(NeutrostatsError, match=r"\['ANC', 'Abs Neut'\] all look like the anc column.*columns="):
        cbc_to_long(wide, units={"anc": "10^9/L"})


def test_cbc_to_long_needs_anc_or_wbc_and_differential():
    wide = pd.DataFrame({"person_id": [1], "sampled_at": ["x"], "WBC (K/uL)": ["4"], "HGB": ["13"]})
    with pytest.raises(NeutrostatsError, match="no ANC column and no WBC plus neutrophil %"):
        cbc_to_long(wide)
    with pytest.raises(NeutrostatsError, match="sampled_at"):
        cbc_to_long(pd.DataFrame({"person_id": [1], "ANC": ["1"]}))
    with pytest.raises(NeutrostatsError, match="unknown role"):
        cbc_to_long(wide, columns={"neutrophils": "HGB"})


def test_cbc_codes_are_the_loinc_roles():
    assert CBC_CODES == {"anc": "751-8", "wbc": "6690-2", "neutrophil_pct": "770-8", "band_pct": "764-1"}


def test_cbc_to_long_classifies_like_the_long_table():
    from neutrostats import classify_anc

    wide = pd.DataFrame({"person_id": [1, 2], "sampled_at": ["2020-01-01", "2020-01-01"],
                         "ANC (10^9/L)": ["1.6", ""], "WBC (10^9/L)": ["", "4.0"], "NEUT%": ["", "20"],
                         "BAND%": ["", "5"]})
    c = classify_anc(cbc_to_long(wide), "clinical")
    # Person 1: direct ANC 1.6 x10^9/L = 1600/µL, normal (>= 1500).
    # Person 2: no ANC; 4.0 x (20 + 5) / 100 = 1.0 x10^9/L = 1000/µL, mild [1000, 1500).
    tiers = c.loc[c["tier"].notna(), ["person_id", "tier"]].astype(str).values.tolist()
    assert tiers == [["1", "normal"], ["2", "mild"]]


def test_cbc_to_long_unusable_direct_anc_is_derived_from_the_same_sample():
    from neutrostats import classify_anc

    wide = pd.DataFrame({"person_id": [1], "sampled_at": ["2020-01-01"], "ANC (10^9/L)": ["see comment"],
                         "WBC (10^9/L)": ["4.0"], "NEUT%": ["20"], "BAND%": ["5"]})
    c = classify_anc(cbc_to_long(wide), "clinical")
    # The direct ANC is text; WBC 4.0 x (20 + 5) / 100 = 1.0 x10^9/L = 1000/µL, mild [1000, 1500).
    derived = c[c["anc_source"].astype(str) == "derived"]
    assert derived["anc_per_ul"].tolist() == [1000.0] and derived["tier"].astype(str).tolist() == ["mild"]
    assert c["anc_flag"].astype(str).tolist()[0] == "non_numeric"
