"""read_table's CSV reader (pyarrow, neutrostats.core.csvread) gives what pandas.read_csv gave.

The reference is ``pandas.read_csv`` with the arguments read_table passed
before the pyarrow reader (written out below, not taken from the package),
on hand-written hospital-shaped files and on generated ones. One deliberate
difference: a ``unit``/``code`` column becomes a Categorical of its text
(``astype("category")``) instead of ``read_csv(dtype="category")``, which on
pandas 3 turns all-numeric codes into numbers ("0123" -> 123.0); on pandas 2
the two are the same, and a test below shows it.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from neutrostats.core import csvread
from neutrostats.errors import NeutrostatsError
from neutrostats.io import read_table

PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3

# The missing-value spellings read_table gives the non-text columns: pandas' documented default
# list plus a single space.
NA = ["", " ", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
      "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
TEXT = ("value", "unit", "code")
CATEGORY = ("unit", "code")


@pytest.fixture(autouse=True)
def _pyarrow_parses():
    # read_table leaves a small plain file to pandas: these tests are about pyarrow's path, so it is
    # taken whatever the size (the tests of pandas' path patch it back).
    with mock.patch.object(csvread, "_PYARROW", True):
        yield


def pandas_header(path, sep):
    first = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False, engine="python")
    return [str(c) for c in first.iloc[0].tolist()]


def pandas_reference(path, text_columns=TEXT, *, categories_from_text=True):
    """pandas.read_csv with read_table's arguments of before (the reference)."""
    sep = "\t" if ".tsv" in Path(path).name else ","
    raw = pandas_header(path, sep)
    text = raw if text_columns == "all" else [c for c in text_columns if c in raw]
    if not categories_from_text:  # exactly the call read_table made before
        return pd.read_csv(path, sep=sep, dtype={c: ("category" if c in CATEGORY else str) for c in text},
                           keep_default_na=False, na_values={c: NA for c in raw if c not in text}, low_memory=False)
    df = pd.read_csv(path, sep=sep, dtype={c: str for c in text}, keep_default_na=False,
                     na_values={c: NA for c in raw if c not in text}, low_memory=False)
    for c in text:
        if c in CATEGORY:
            df[c] = df[c].astype("category")
    return df


def check_same(path, text_columns=TEXT):
    """read_table equals the reference, or both refuse (read_table with a NeutrostatsError)."""
    try:
        expected = pandas_reference(path, text_columns)
    except Exception:  # noqa: BLE001  (pandas' refusal, whatever its class)
        with pytest.raises(NeutrostatsError):
            read_table(path, text_columns=text_columns)
        return None
    got = read_table(path, text_columns=text_columns)
    pd.testing.assert_frame_equal(got, expected)
    return got


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    return p


# ---------------------------------------------------------------------------
# Hand-written hospital-shaped files

HOSPITAL = {
    "epic_like.csv": (
        "person_id,sampled_at,code,value,unit,comment\r\n"
        "100000000001,2021-03-04 07:15:00,751-8,1.2,10^9/L,\r\n"
        "100000000001,2021-03-05 07:15:00,751-8,<0.1,10^9/L,\"Hemolysed, repeat\"\r\n"
        "100000000002,2021-03-05 08:00:00,751-8,NA,10^9/L,NA\r\n"
        "100000000002,2021-03-06 08:00:00,751-8,,10^9/L,null\r\n"
        "100000000003,2021-03-06 09:00:00,0123,\"1,200\",cells/µL,\"line one\nline two\"\r\n"
    ),
    "numeric_local_codes.csv": "person_id,code,value,unit\n1,0123,5,1000\n2,1e5,6,1000\n3,0123,7,1000\n",
    "icd_codes.csv": "person_id,diagnosed_at,code\n1,2020-01-01,D70\n2,2020-01-02,D70.1\n3,2020-01-02,1e5\n",
    "quoted_everything.csv": '"person_id","sampled_at","value","unit"\n"1","2020-01-01","3.5","10^9/L"\n'
                             '"2","2020-01-02","","10^9/L"\n"3","2020-01-03","null","10^9/L"\n',
    "bom_crlf.csv": "\ufeffperson_id,value,unit\r\n1,2.5,10^9/L\r\n2,see comment,10^9/L\r\n",
    "no_final_newline.csv": "person_id,value,unit\n1,2.5,10^9/L\n2,3,10^9/L",
    "blank_lines.csv": "person_id,value,unit\n\n1,2.5,10^9/L\n\n\n2,3,10^9/L\n\n",
    "large_ids.csv": "person_id,mrn,value\n9007199254740993,00012345,1\n9223372036854775807,00012346,2\n",
    "uint_ids.csv": "person_id,value\n9223372036854775808,1\n18446744073709551615,2\n",
    "huge_ids.csv": "person_id,value\n99999999999999999999999,1\n2,2\n",
    "ids_with_gap.csv": "person_id,weight,value\n1,70.5,1\n,,2\n3,NA,3\n",
    "flags.csv": "person_id,pregnant,deceased,value\n1,True,FALSE,1\n2,false,TRUE,2\n3,TRUE,false,3\n",
    "flags_with_gap.csv": "person_id,pregnant,value\n1,True,1\n2,,2\n",
    "floats_many_digits.csv": "person_id,x,value\n1,0.30000000000000004,1\n2,1e-5,2\n3,-1.5E+300,3\n4,inf,4\n",
    "floats_short.csv": "person_id,x,y,value\n1,0.1,-2.,1\n2,.25,+3,2\n3,12345678.1234567,  4 ,3\n",
    "trailing_comma.csv": "person_id,value,unit,\n1,1.5,10^9/L,\n2,2.5,10^9/L,\n",
    "all_missing_column.csv": "person_id,note,value\n1,,1\n2,NA,2\n3,null,3\n",
    "text_na_spellings.csv": "person_id,value,unit,code\n1,NA,,null\n2,null,NA,\n3,N/A,None,NaN\n",
    "unicode.csv": "person_id,value,unit,site\n1,3.2,cells/µL,Zürich\n2,1.1,×10⁹/L,東京\n",
    "tsv_export.tsv": "person_id\tvalue\tunit\n1\t1,5\t10^9/L\n2\t<0.5\t10^9/L\n",
    "gzipped.csv.gz": "person_id,value,unit\n1,1.5,10^9/L\n2,NA,10^9/L\n",
    "gzipped.tsv.gz": "person_id\tvalue\tunit\n1\t1.5\t10^9/L\n2\t\t10^9/L\n",
    "short_rows.csv": "person_id,value,unit\n1,1.5\n2,2.5,10^9/L\n",
    "header_only.csv": "person_id,value,unit\n",
    "one_column.csv": "person_id\n1\n   \n2\n",
    "spaces_line.csv": "person_id,value\n1,2\n   \n3,4\n",
    "quote_mid_cell.csv": 'person_id,value,note\n1,ab"c"d,"x"y\n2,"a""b",z\n',
    "nul_in_data.csv": "person_id,value\n1,x\x00y\n2,3\n",
    "negative_ints.csv": "person_id,delta,value\n1,-3,1\n2,4,2\n3,-9223372036854775808,3\n",
    "whitespace_numbers.csv": "person_id,x,value\n 1 ,\t2,1\n+3,-0,2\n",
}


@pytest.mark.parametrize("name", sorted(HOSPITAL))
def test_hospital_shaped_files_read_as_pandas_reads_them(tmp_path, name):
    check_same(write(tmp_path, name, HOSPITAL[name].encode("utf-8")))


@pytest.mark.parametrize("name", ["epic_like.csv", "numeric_local_codes.csv", "gzipped.csv.gz", "gzipped.tsv.gz",
                                  "short_rows.csv", "floats_many_digits.csv"])
def test_pandas_path_gives_the_same_result(tmp_path, name):
    # Taken for plain files under 2 MiB, and for files pyarrow cannot cut as pandas does.
    with mock.patch.object(csvread, "_PYARROW", False), \
            mock.patch.object(csvread, "_frame", side_effect=AssertionError("pyarrow path taken")):
        check_same(write(tmp_path, name, HOSPITAL[name].encode("utf-8")))


@pytest.mark.parametrize("name", ["epic_like.csv", "numeric_local_codes.csv", "gzipped.tsv.gz"])
def test_all_text_columns_as_pandas_reads_them(tmp_path, name):
    check_same(write(tmp_path, name, HOSPITAL[name].encode("utf-8")), text_columns="all")


def test_codes_that_look_like_numbers_stay_as_written(tmp_path):
    # Written out by hand: pandas 3's read_csv(dtype="category") made these 123.0 and 100000.0.
    p = write(tmp_path, "labs.csv", HOSPITAL["numeric_local_codes.csv"].encode())
    df = read_table(p)
    assert df["code"].tolist() == ["0123", "1e5", "0123"]
    assert df["unit"].tolist() == ["1000"] * 3
    assert list(df["code"].cat.categories) == ["0123", "1e5"]
    assert df["value"].tolist() == ["5", "6", "7"]
    assert df["person_id"].dtype == np.int64


def test_categories_from_text_equal_read_csv_categories_on_pandas_2(tmp_path):
    if PANDAS_3:
        pytest.skip("pandas 3's read_csv(dtype='category') infers numeric categories")
    for name in ("epic_like.csv", "text_na_spellings.csv", "short_rows.csv", "numeric_local_codes.csv"):
        p = write(tmp_path, name, HOSPITAL[name].encode())
        pd.testing.assert_frame_equal(pandas_reference(p), pandas_reference(p, categories_from_text=False))


def test_hand_checked_values(tmp_path):
    p = write(tmp_path, "labs.csv", HOSPITAL["epic_like.csv"].encode())
    df = read_table(p)
    assert df["person_id"].tolist() == [100000000001, 100000000001, 100000000002, 100000000002, 100000000003]
    assert df["value"].tolist() == ["1.2", "<0.1", "NA", "", "1,200"]
    assert df["code"].tolist() == ["751-8"] * 4 + ["0123"]
    # comment is not a text column: pandas' missing spellings apply there.
    assert df["comment"].isna().tolist() == [True, False, True, True, False]
    assert df["comment"].iloc[4] == "line one\nline two"
    big = read_table(write(tmp_path, "ids.csv", HOSPITAL["large_ids.csv"].encode()))
    assert big["person_id"].tolist() == [9007199254740993, 9223372036854775807]  # exact, not via float
    assert big["mrn"].tolist() == [12345, 12346]  # not a text column: pandas makes it a number
    floats = read_table(write(tmp_path, "f.csv", HOSPITAL["floats_short.csv"].encode()))
    assert floats["x"].tolist() == [0.1, 0.25, 12345678.1234567]
    assert floats["y"].tolist() == [-2.0, 3.0, 4.0]


# ---------------------------------------------------------------------------
# Refusals: the same files are refused, with a NeutrostatsError

GOOD = ("person_id,value,unit\n" + "".join(f"{i},{i / 10},10^9/L\n" for i in range(3000))).encode()


@pytest.mark.parametrize("name,data,words", [
    ("no_header.csv", b"\n\n\n", "No columns to parse"),
    ("nul_header.csv", b"a\x00,value\n1,2\n", "NUL bytes"),
    ("dups.csv", b"value,unit,value\n1,2,3\n", "more than once"),
    ("latin1.csv", "person_id,value\n1,x\n2,\xe9\n".encode("latin-1"), "can't decode byte 0xe9"),
    ("ragged.csv", b"person_id,value\n1,2\n3,4,5\n6,7\n", "Expected 2 fields"),
    ("open_quote.csv", b'person_id,value\n' + b"1,2\n" * 5000 + b'3,"4\n5,6\n', "EOF inside string"),
    ("utf16.csv", "person_id,value\n1,2\n".encode("utf-16"), "can't decode byte 0xff"),
])
def test_damaged_csv_is_refused(tmp_path, name, data, words):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(NeutrostatsError, match="read_table") as err:
        read_table(p)
    assert words in str(err.value)


@pytest.mark.parametrize("name,damage", [
    ("cut.csv.gz", lambda gz: gz[: len(gz) // 2]),
    ("crc.csv.gz", lambda gz: gz[:-8] + b"\0\0\0\0" + gz[-4:]),
    ("garbage.csv.gz", lambda gz: gz[:10] + bytes(range(256)) * 8),
    ("plain_text.csv.gz", lambda gz: GOOD),
])
def test_damaged_gzip_is_refused(tmp_path, name, damage):
    p = tmp_path / name
    p.write_bytes(damage(gzip.compress(GOOD, mtime=0)))
    with pytest.raises(NeutrostatsError, match="read_table: could not read table"):
        read_table(p)


# ---------------------------------------------------------------------------
# Generated files

SPECIAL = NA + [
    "True", "false", "TRUE", "tRuE", "0", "1", "-0", "0123", "1e5", "1E-2", "D70", "751-8", "<0.1", "1,200", "inf",
    "-Infinity", "NAN", "0x10", " 12", "12 ", "+3", ".5", "5.", "-.5e3", "1.5e400", "1e", ".", "-",
    "9223372036854775807", "9223372036854775808", "18446744073709551616", "-9223372036854775809",
    "12345678901234567", "0.30000000000000004", "2020-01-01", "2020-01-01 12:00:00", "10^9/L", "cells/µL", "é",
    'a"b', '"', "x\ny", "x\r\ny", "\r", "  ", "\t", "a,b", "\ufeff",
]
KINDS = {
    "int": st.integers(-(10**20), 10**20).map(str),
    "small_int": st.integers(-50, 50).map(str),
    "float": st.floats(allow_nan=True, allow_infinity=True).map(lambda x: repr(float(x))),
    "decimal": st.from_regex(r"-?[0-9]{0,9}\.?[0-9]{0,9}(e-?[0-9]{1,3})?", fullmatch=True),
    "bool": st.sampled_from(["True", "False", "TRUE", "FALSE", "true", "false"]),
    "special": st.sampled_from(SPECIAL),
    "text": st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6),
}
NAMES = ["person_id", "value", "unit", "code", "sampled_at", "x", "y", "Sex"]


@st.composite
def tables(draw):
    n_cols = draw(st.integers(1, 5))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=n_cols, max_size=n_cols, unique=True))
    if draw(st.booleans()) and n_cols > 1:
        names[draw(st.integers(0, n_cols - 1))] = ""  # an empty header cell (a trailing comma)
    n_rows = draw(st.integers(1, 12))
    columns = []
    for _ in names:
        main = KINDS[draw(st.sampled_from(sorted(KINDS)))]
        # Mostly one kind per column (so that numeric columns exist), now and then another cell.
        cell = st.one_of(main, main, main, main, KINDS["special"], st.sampled_from(NA[:4]))
        columns.append(draw(st.lists(cell, min_size=n_rows, max_size=n_rows)))
    return names, [list(r) for r in zip(*columns)]


@st.composite
def layouts(draw):
    return {
        "quoting": draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        "newline": draw(st.sampled_from(["\n", "\r\n"])),
        "bom": draw(st.booleans()),
        "final_newline": draw(st.booleans()),
        "suffix": draw(st.sampled_from([".csv", ".csv", ".tsv", ".csv.gz"])),
        "sample": draw(st.sampled_from([1000, 2])),  # 2: the cheap look at the first cells says little
    }


def render(names, rows, layout) -> bytes:
    buf = io.StringIO()
    sep = "\t" if ".tsv" in layout["suffix"] else ","
    w = csv.writer(buf, delimiter=sep, quoting=layout["quoting"], lineterminator=layout["newline"])
    w.writerow(names)
    w.writerows(rows)
    text = buf.getvalue()
    if not layout["final_newline"]:
        text = text[: -len(layout["newline"])]
    return (("\ufeff" if layout["bom"] else "") + text).encode("utf-8")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(table=tables(), layout=layouts())
def test_generated_tables_read_as_pandas_reads_them(tmp_path, table, layout):
    names, rows = table
    p = write(tmp_path, "t" + layout["suffix"], render(names, rows, layout))
    with mock.patch.object(csvread, "_SAMPLE", layout["sample"]):
        check_same(p)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(table=tables(), layout=layouts())
def test_generated_tables_read_by_pandas_path_as_pandas_reads_them(tmp_path, table, layout):
    # The path for files pyarrow cannot cut (and for benchmarks): categories read as such, numeric
    # ones read again as text.
    names, rows = table
    p = write(tmp_path, "t" + layout["suffix"], render(names, rows, layout))
    with mock.patch.object(csvread, "_PYARROW", False):
        check_same(p)


RAW_CELL = st.one_of(st.text(st.sampled_from(list("a1 .e-NAT\ufeffé")), max_size=4),
                     st.text(st.sampled_from(list('a1"\n .e\t')), max_size=4))


@st.composite
def raw_bodies(draw):
    # Rows of cells joined as they come: quotes anywhere (opened, closed, doubled, left open),
    # line breaks inside and outside them, ragged rows, blank and whitespace lines.
    width = st.sampled_from([3, 3, 3, 3, 3, 3, 2, 4])  # mostly as wide as the header
    rows = draw(st.lists(width.flatmap(lambda n: st.lists(RAW_CELL, min_size=n, max_size=n)), max_size=6))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    sep = draw(st.sampled_from([",", ",", "\t"]))
    return sep, newline.join(sep.join(r) for r in rows) + draw(st.sampled_from(["", newline]))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(raw=raw_bodies(), gz=st.booleans())
def test_raw_text_is_cut_into_cells_as_pandas_cuts_it(tmp_path, raw, gz):
    sep, body = raw
    data = (sep.join(["person_id", "value", "x"]) + "\n" + body).encode("utf-8")
    name = ("raw.tsv" if sep == "\t" else "raw.csv") + (".gz" if gz else "")
    check_same(write(tmp_path, name, data))


def test_typical_files_take_the_pyarrow_path(tmp_path):
    # The equality tests above are about the pyarrow path: these files must not be left to pandas.
    names = ["epic_like.csv", "quoted_everything.csv", "bom_crlf.csv", "large_ids.csv", "flags.csv",
             "floats_short.csv", "trailing_comma.csv", "text_na_spellings.csv", "tsv_export.tsv", "gzipped.csv.gz",
             "negative_ints.csv", "ids_with_gap.csv", "all_missing_column.csv"]
    with mock.patch.object(csvread, "_pandas", side_effect=AssertionError("left to pandas")):
        for name in names:
            read_table(write(tmp_path, name, HOSPITAL[name].encode("utf-8")))


def test_columns_longer_than_the_sample(tmp_path):
    # The first cells are numbers; a later one decides that the column is text (or a float).
    n = 2500
    ids = [str(i) for i in range(n)]
    later_text = ids[:2000] + ["see note"] + ids[2001:]
    later_gap = ids[:2400] + [""] + ids[2401:]
    later_float = ids[:1500] + ["2.5"] + ids[1501:]
    later_long = ids[:1200] + ["0.30000000000000004"] + ids[1201:]
    later_bool = ["True"] * 1800 + ["yes"] + ["False"] * (n - 1801)
    body = "".join(f"{a},{b},{c},{d},{e},{f},1\n" for a, b, c, d, e, f in
                   zip(ids, later_text, later_gap, later_float, later_long, later_bool))
    p = write(tmp_path, "long.csv", ("id,a,b,c,d,e,value\n" + body).encode())
    df = check_same(p)
    assert df["a"].iloc[2000] == "see note" and df["a"].iloc[0] == "0"
    assert df["b"].dtype == np.float64 and np.isnan(df["b"].iloc[2400])
    assert df["c"].dtype == np.float64 and df["c"].iloc[1500] == 2.5
    # pandas 2's default converter keeps 17 digits (0.3), pandas 3's all of them: as pandas, either way.
    assert df["d"].dtype == np.float64 and abs(df["d"].iloc[1200] - 0.3) < 1e-16
    assert df["e"].iloc[1800] == "yes" and df["e"].iloc[0] == "True"


# ---------------------------------------------------------------------------
# read_cohort's arguments (synthetic cohorts on disk)


def test_read_cohort_arguments_read_as_pandas_reads_them(tmp_path):
    from neutrostats.synthetic import generate_cohort, write_cohort
    from neutrostats.synthetic.generate import _STR_COLS

    d = write_cohort(generate_cohort(n_persons=300, seed=5), tmp_path)
    exact = {} if PANDAS_3 else {"float_precision": "round_trip"}
    for name in ("persons", "labs", "diagnoses", "deaths", "index"):
        p = d / f"{name}.csv.gz"
        dtypes = {c: str for c in _STR_COLS[name]}
        if name == "index":
            expected = pd.read_csv(p, dtype=dtypes, encoding="utf-8", **exact)
            got = csvread.read_csv(p, text=_STR_COLS[name], na_values=NA[:1] + NA[2:], text_na=True,
                                   float_precision=exact.get("float_precision"))
        else:
            expected = pd.read_csv(p, dtype=dtypes, encoding="utf-8", keep_default_na=False, na_filter=False, **exact)
            got = csvread.read_csv(p, text=_STR_COLS[name], float_precision=exact.get("float_precision"))
        pd.testing.assert_frame_equal(got, expected)
