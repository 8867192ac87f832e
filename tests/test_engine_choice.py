"""Which engine reduces the labs, and that a pandas table is accepted and refused alike on each.

``build_cohort`` reduces a pandas table in memory by default (``engine=None``
is ``engine="numpy"``); DuckDB stays the default for Parquet paths and
relations, Spark for Spark frames, and ``engine="duckdb"`` or a DuckDB
connection still runs the SQL on a pandas table. The results of the two
engines are held equal in test_backends; here are the inputs where they used
to part: refusals and their messages, sample times below a microsecond,
unknown units on rows of unknown persons, odd cells, unsorted rows. Expected
values are worked out by hand in the comments; the SQL path (DuckDB, an
implementation of its own) is the second reference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neutrostats import NeutrostatsError, build_cohort
from neutrostats.cohort import _sql
from neutrostats.cohort._reduction import _first_lowest, _run_starts, _samples, whole_microseconds
from neutrostats.labs.classify import FLAG_DESCRIPTIONS

pytest.importorskip("duckdb")

PERSONS = pd.DataFrame({
    "person_id": [1, 2, 3],
    "sex": ["F", "M", "F"],
    "birth_date": pd.to_datetime(["1950-01-01", "1960-01-01", "1955-01-01"]),
    "end_of_data": pd.Timestamp("2020-12-31"),
})
DX = pd.DataFrame({"person_id": [1], "diagnosed_at": pd.to_datetime(["2012-01-01"]), "code": ["D70"]})
OUT = {"x": ["C92.0"]}


def _labs(rows, **columns) -> pd.DataFrame:
    """(person, time, value, unit) rows of a wide table (ANC only)."""
    df = pd.DataFrame(rows, columns=["person_id", "sampled_at", "value", "unit"])
    df["sampled_at"] = pd.to_datetime(df["sampled_at"])
    return df.assign(**columns)


SIMPLE = [(1, "2010-01-01 08:00", "1.2", "10^9/L"), (1, "2010-03-01 08:00", "0.4", "10^9/L"),
          (2, "2011-01-01 08:00", "2.5", "10^9/L"), (9, "2011-01-01 08:00", "0.9", "10^9/L")]


def _build(labs, engine=None, **kw):
    kw.setdefault("code", None)
    return build_cohort(labs, PERSONS, DX, outcomes=OUT, engine=engine, **kw)


def _same(a, b):
    pd.testing.assert_frame_equal(a.attrition, b.attrition)
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)
    pd.testing.assert_frame_equal(a.measurements, b.measurements, check_exact=True)


@pytest.fixture
def parquet(tmp_path):
    def write(labs):
        path = tmp_path / "labs.parquet"
        labs.to_parquet(path)
        return str(path)
    return write


# --- which engine runs --------------------------------------------------------------------------


@pytest.fixture
def sql_calls(monkeypatch):
    """Counts the calls of the SQL reduction (and still runs it)."""
    calls = []
    real = _sql.reduce_labs_sql

    def counted(*args, **kwargs):
        calls.append(kwargs["engine"])
        return real(*args, **kwargs)

    monkeypatch.setattr(_sql, "reduce_labs_sql", counted)
    return calls


def test_a_pandas_table_is_reduced_in_memory_by_default(sql_calls):
    labs = _labs(SIMPLE)
    default = _build(labs)
    assert sql_calls == []
    _same(default, _build(labs, engine="numpy"))
    assert sql_calls == []
    # Person 1: index 1,200/µL on 2010-01-01 (mild, 1,000-1,500 in andersen2016); person 2 normal; person 9 unknown.
    assert default.table["person_id"].tolist() == [1, 2]
    assert default.table["tier"].astype(str).tolist() == ["mild", "normal"]


def test_duckdb_still_runs_on_a_pandas_table_when_asked(sql_calls, parquet):
    import duckdb

    labs = _labs(SIMPLE)
    ref = _build(labs, engine="numpy")
    _same(ref, _build(labs, engine="duckdb"))
    _same(ref, _build(labs, engine=duckdb.connect()))
    # A Parquet path is read by DuckDB by default, out of core; it keeps no measurements unless asked.
    _same(ref, _build(parquet(labs), keep_measurements=True))
    assert len(sql_calls) == 3 and sql_calls[0] == "duckdb" and sql_calls[2] is None


# --- refused alike, with the same message -------------------------------------------------------


def _refusals(labs, parquet, match, same_on_parquet=True, **kw):
    """The message of each engine's refusal (numpy, DuckDB on the frame, DuckDB on Parquet): all equal."""
    messages = []
    for source, engine in ((labs, "numpy"), (labs, "duckdb"), (parquet(labs), None)):
        with pytest.raises(NeutrostatsError, match=match) as err:
            _build(source, engine=engine, **kw)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert messages[2] == messages[0] or not same_on_parquet
    assert all(m.startswith("build_cohort: ") and "ns_rn" not in m for m in messages)
    return messages[0]


@pytest.mark.parametrize("kw, match", [
    # The SQL path used to take any on_unknown_unit and read it as "flag".
    ({"on_unknown_unit": "ignore"}, r"on_unknown_unit must be one of \['raise', 'flag'\], found 'ignore'"),
    ({"decimal": ";"}, r"decimal must be '\.' or ',', found ';'"),
    ({"thousands": "."}, "thousands and decimal separators must differ"),
    ({"unit_suspect_below": -1}, "unit_suspect_below must be a positive number"),
])
def test_reading_options_are_refused_alike(parquet, kw, match):
    _refusals(_labs(SIMPLE), parquet, match, **kw)


@pytest.mark.parametrize("drop, kw, match", [
    ("value", {}, r"column\(s\) 'value' not found.*Name the lab columns with person=, time= and value=\."),
    ("unit", {}, r"column\(s\) 'unit' not found.*Pass unit=<column of units>\.$"),
    (None, {"code": "code"}, r"column\(s\) 'code' not found.*Pass code=None for a table of ANC results only\."),
    (None, {"lower_limit": "lln", "scheme": "ctcae_v5"}, r"column\(s\) 'lln' not found"),
])
def test_missing_columns_are_refused_alike(parquet, drop, kw, match):
    labs = _labs(SIMPLE)
    text = _refusals(labs.drop(columns=drop) if drop else labs, parquet, match, **kw)
    # The columns listed are the table's own.
    assert "['person_id', 'sampled_at'" in text


@pytest.mark.parametrize("column, kw", [("value", {}), ("lln", {"lower_limit": "lln", "scheme": "ctcae_v5"})])
def test_a_column_of_dates_as_results_is_refused_alike(parquet, column, kw):
    # DuckDB failed on the cast (an engine error); numpy read every row as not a number (an empty cohort).
    labs = _labs(SIMPLE, lln="1.5").assign(**{column: pd.Timestamp("2020-01-01")})
    # The type is named as the source has it: datetime64[us] in pandas, TIMESTAMP in Parquet.
    text = _refusals(labs, parquet, f"column '{column}' of labs holds dates or times", same_on_parquet=False, **kw)
    assert "not " + ("lab results" if column == "value" else "lower limits of normal") in text


def test_unknown_units_on_rows_of_unknown_persons_are_refused_on_every_engine(parquet):
    # Person 9 is not in persons; its row's unit "mg" is no count unit. The SQL path reads every row's
    # unit and refuses: so does numpy now (it used to classify the known persons' rows only).
    # Counted over the whole table: "mg" on persons 9 and 2, 2 rows.
    rows = SIMPLE[:2] + [(2, "2011-01-01 08:00", "2.5", "mg"), (9, "2011-01-01 08:00", "0.9", "mg")]
    text = _refusals(_labs(rows), parquet, r"column 'unit' has 2 rows with units that are not count units: "
                                           r"'mg' \(2 rows\)")
    assert "on_unknown_unit='flag'" in text
    # Only on the unknown person's row: still refused, 1 row.
    _refusals(_labs(SIMPLE[:3] + [(9, "2011-01-01 08:00", "0.9", "mg")]), parquet, r"'mg' \(1 rows\)")
    # With on_unknown_unit="flag" the row leaves with its person's rows (unknown person), on every engine.
    labs = _labs(SIMPLE[:3] + [(9, "2011-01-01 08:00", "0.9", "mg")])
    a, b = _build(labs, engine="numpy", on_unknown_unit="flag"), _build(labs, engine="duckdb", on_unknown_unit="flag")
    _same(a, b)
    assert a.attrition["excluded_lab_rows"].iloc[1] == 1  # the unknown person's step


# --- times below a microsecond ------------------------------------------------------------------


def test_sample_times_are_whole_microseconds_on_every_engine(parquet):
    # DuckDB and Parquet hold microseconds; DuckDB rounds a pandas table's nanoseconds to the nearest one,
    # half away from zero. Person 1: 08:00:00.000000400 rounds to 08:00:00, the same sample as the row at
    # 08:00:00 (0.9 x 10^9/L), so one is a repeat and the lowest, 900/µL, is kept. 09:00:00.000001600
    # rounds up to .000002. Person 2: 1969-12-31 23:59:59.9999995 is half a microsecond before 1970:
    # away from zero, 23:59:59.999999 (and still 31 December).
    base = pd.Timestamp("2010-01-01 08:00")
    rows = [(1, base + pd.Timedelta(400, "ns"), "1.0", "10^9/L"), (1, base, "0.9", "10^9/L"),
            (1, pd.Timestamp("2010-01-01 09:00") + pd.Timedelta(1600, "ns"), "1.1", "10^9/L"),
            (2, pd.Timestamp("1969-12-31 23:59:59.9999995"), "2.0", "10^9/L")]
    labs = _labs(rows)
    a, b = _build(labs, engine="numpy"), _build(labs, engine="duckdb")
    _same(a, b)
    m = a.measurements
    assert m["sampled_at"].tolist() == [base, pd.Timestamp("2010-01-01 09:00:00.000002"),
                                        pd.Timestamp("1969-12-31 23:59:59.999999")]
    assert m["anc_per_ul"].tolist() == [900.0, 1100.0, 2000.0]
    assert a.attrition.set_index("description").loc[
        "repeat ANC at the same sample time (lowest kept)", "excluded_lab_rows"] == 1


def test_whole_microseconds_rounds_half_away_from_zero():
    ns = np.array([500, 1500, 499, 1499, -500, -1500, -499, -501, 2_000], dtype=np.int64)
    times = pd.Series(ns.view("datetime64[ns]"))
    got = whole_microseconds(times).to_numpy().view(np.int64) // 1000
    assert got.tolist() == [1, 2, 0, 1, -1, -2, 0, -1, 2]
    whole = pd.Series(pd.to_datetime(["2010-01-01 08:00", None]))
    assert whole_microseconds(whole) is whole  # nothing to round: the very Series


# --- odd cells and row orders -------------------------------------------------------------------


def test_bytes_and_unhashable_cells_read_as_text_on_every_engine():
    # b"0.4" among text is the text 0.4 (read as UTF-8, as DuckDB casts bytes in a text column):
    # person 1's second count, 400/µL.
    labs = _labs(SIMPLE[:3])
    labs["value"] = pd.Series(["1.2", b"0.4", "2.5"], dtype=object)
    a = _build(labs, engine="numpy")
    _same(a, _build(labs, engine="duckdb"))
    assert a.measurements["anc_per_ul"].tolist() == [1200.0, 400.0, 2500.0]
    # A list is no result: not a number (numpy used to stop with a TypeError; DuckDB reads its text).
    labs["value"] = pd.Series(["1.2", [0.4], "2.5"], dtype=object)
    a = _build(labs, engine="numpy")
    _same(a, _build(labs, engine="duckdb"))
    assert a.measurements["anc_per_ul"].tolist() == [1200.0, 2500.0]
    assert FLAG_DESCRIPTIONS["non_numeric"] in set(a.attrition["description"])


@pytest.mark.filterwarnings("ignore::neutrostats.errors.ImmortalTimeWarning")
def test_row_order_does_not_change_the_cohort():
    # Rows by time, persons interleaved, a repeat sample out of place: the same cohort as sorted rows.
    # Person 1's 2010-03-01 sample has 0.4 and 0.3 (lowest 300/µL kept); the nadir is that sample.
    rows = [(2, "2011-01-01 08:00", "2.5", "10^9/L"), (1, "2010-03-01 08:00", "0.4", "10^9/L"),
            (1, "2010-01-01 08:00", "1.2", "10^9/L"), (2, "2009-01-01 08:00", "0.8", "10^9/L"),
            (1, "2010-03-01 08:00", "0.3", "10^9/L")]
    shuffled = _labs(rows)
    ordered = shuffled.sort_values(["person_id", "sampled_at"], kind="stable")
    for index in ("first", "nadir"):
        a = _build(shuffled, engine="numpy", index=index)
        _same(a, _build(ordered, engine="numpy", index=index))
        _same(a, _build(shuffled, engine="duckdb", index=index))
    t = a.table.set_index("person_id")  # the nadir index
    assert t.loc[1, "index_anc_per_ul"] == 300.0 and t.loc[2, "index_anc_per_ul"] == 800.0
    assert t.loc[1, "nadir_date"] == pd.Timestamp("2010-03-01 08:00")


def test_samples_sorts_only_when_needed():
    order, keys = _samples(np.array([0, 0, 1, 1]), np.array([5, 5, 1, 2]))
    assert order is None and keys.tolist() == [0, 0, 1, 2]
    # Person 1 before person 0, and person 0's times out of order: rows 3, 1, 2, 0 by (person, time).
    order, keys = _samples(np.array([1, 0, 0, 0]), np.array([7, 5, 9, 5]))
    assert order.tolist() == [1, 3, 2, 0] and keys.tolist() == [2, 0, 1, 0]


def test_first_lowest_is_what_a_stable_sort_puts_first():
    # Runs [3, 1, 1], [nan, 2, nan], [nan, nan], [-0.0, 0.0], [5]:
    # first 1 (position 1); 2 (4; NaN ranks above numbers); all NaN: the first (6);
    # -0.0 equals 0.0: the first of them (8); a run of one (10).
    values = np.array([3, 1, 1, np.nan, 2, np.nan, np.nan, np.nan, -0.0, 0.0, 5])
    starts = _run_starts(np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4]))
    assert starts.tolist() == [0, 3, 6, 8, 10]
    assert _first_lowest(values, starts).tolist() == [1, 4, 6, 8, 10]
    assert _first_lowest(values[:0], starts[:0]).tolist() == []
