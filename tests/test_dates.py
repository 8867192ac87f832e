"""The one date reader (neutrostats.core.dates) and its use by build_cohort on every engine.

Every expected date below is worked out by hand from the text of the value
and the rule in the module docstring; ages are day counts divided by 365.25.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from neutrostats import NeutrostatsError, build_cohort
from neutrostats.core.dates import parse_dates, resolve_date_format

OUT = {"x": ["C92.0"]}


def _ymd(s: pd.Series) -> list[str]:
    return s.dt.strftime("%Y-%m-%d %H:%M").tolist()


# --- the reader ----------------------------------------------------------------------------


def test_day_first_settled_by_the_column():
    # 25 cannot be a month, so the column is day-first: 05.03.1950 is 5 March (not 3 May).
    assert _ymd(parse_dates(["05.03.1950", "25.03.1950"])) == ["1950-03-05 00:00", "1950-03-25 00:00"]


def test_month_first_settled_by_the_column_with_am_pm():
    got = parse_dates(["03/25/2020 2:30 PM", "12/01/2020 12:05 AM", "12/01/2020 12:05 PM"])
    assert _ymd(got) == ["2020-03-25 14:30", "2020-12-01 00:05", "2020-12-01 12:05"]


def test_ambiguous_column_raises_with_two_examples_and_the_option():
    with pytest.raises(NeutrostatsError) as err:
        parse_dates(["05.03.1950", "06.04.1950"], table="persons", column="birth_date")
    msg = str(err.value)
    assert "'birth_date' of persons" in msg and "'05.03.1950'" in msg and "'06.04.1950'" in msg
    assert "date_format" in msg


def test_mixed_orders_and_two_digit_years_raise():
    with pytest.raises(NeutrostatsError, match="mixes day-first"):
        parse_dates(["25/03/2020", "03/25/2020"])
    with pytest.raises(NeutrostatsError, match="two-digit year"):
        parse_dates(["01.02.50"])


def test_date_format_reads_every_value_and_marks_the_rest_unreadable():
    got = parse_dates(["05.03.1950", "1950-03-05", ""], date_format="%d.%m.%Y")
    assert _ymd(got)[0] == "1950-03-05 00:00"
    assert got.attrs["unreadable"].tolist() == [False, True, False]  # empty is missing, not unreadable


def test_iso_month_names_and_unreadable():
    got = parse_dates(["2020-03-05", "20200305", "5 Mar 2020", "05-MAR-2020", "March 5, 2020", "see lab", None])
    assert _ymd(got)[:5] == ["2020-03-05 00:00"] * 5
    assert got.attrs["unreadable"].tolist() == [False] * 5 + [True, False]


def test_offsets_keep_their_own_wall_clock_or_convert():
    text = ["2020-03-01T00:30:00+01:00", "2020-07-01T00:30:00+02:00"]
    assert _ymd(parse_dates(text)) == ["2020-03-01 00:30", "2020-07-01 00:30"]
    # 00:30+01:00 is 23:30 UTC on 29 February (2020 is a leap year).
    assert _ymd(parse_dates(text, timezone="UTC")) == ["2020-02-29 23:30", "2020-06-30 22:30"]


def test_dst_and_us_zone():
    # Copenhagen springs forward at 02:00 on 29 March 2020: 01:30+01:00 and
    # 03:30+02:00 are one real hour apart; in New York (UTC-4 then) they are
    # 20:30 and 21:30 on the 28th.
    text = ["2020-03-29T01:30:00+01:00", "2020-03-29T03:30:00+02:00"]
    assert _ymd(parse_dates(text, timezone="America/New_York")) == ["2020-03-28 20:30", "2020-03-28 21:30"]
    aware = pd.Series(pd.to_datetime(["2020-11-01 23:30"]).tz_localize("America/New_York"))
    assert _ymd(parse_dates(aware)) == ["2020-11-01 23:30"]  # not 2020-11-02 (its UTC day)
    assert _ymd(parse_dates(aware, timezone="Europe/Copenhagen")) == ["2020-11-02 05:30"]


def test_mixed_aware_and_naive_raise():
    with pytest.raises(NeutrostatsError, match="mixes times with a UTC offset"):
        parse_dates(["2020-03-01T00:30+01:00", "2020-03-01T00:30"])
    objects = pd.Series([dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2020, 1, 1)], dtype=object)
    with pytest.raises(NeutrostatsError, match="mixes time-zone-aware"):
        parse_dates(objects)


def test_numbers_are_not_dates_unless_a_format_says_so():
    with pytest.raises(NeutrostatsError, match="holds numbers"):
        parse_dates(pd.Series([43891, 43892]))
    assert _ymd(parse_dates(pd.Series([20200305]), date_format="%Y%m%d")) == ["2020-03-05 00:00"]


def test_unknown_zone_and_bad_format_mapping():
    with pytest.raises(NeutrostatsError, match="IANA"):
        parse_dates(["2020-01-01"], timezone="Copenhagen")
    with pytest.raises(NeutrostatsError, match="strftime"):
        resolve_date_format(5, "labs", "sampled_at")


# --- build_cohort ---------------------------------------------------------------------------


def _tables(birth=("05.03.1950", "25.03.1950"), times=("2010-03-05", "2010-03-05")):
    labs = pd.DataFrame({"person_id": [1, 2], "sampled_at": list(times), "value": ["2.5", "0.8"],
                         "unit": "10^9/L"})
    persons = pd.DataFrame({"person_id": [1, 2], "sex": ["F", "M"], "birth_date": list(birth),
                            "end_of_data": "2016-12-31"})
    dx = pd.DataFrame({"person_id": pd.Series([], dtype="int64"), "diagnosed_at": pd.Series([], dtype=object),
                       "code": pd.Series([], dtype=object)})
    return labs, persons, dx


@pytest.mark.parametrize("engine", ["numpy", "duckdb"])
def test_day_first_birth_dates_give_the_right_age(engine):
    labs, persons, dx = _tables()
    t = build_cohort(labs, persons, dx, code=None, outcomes=OUT, engine=engine).table.set_index("person_id")
    # 5 March 1950 to 5 March 2010: 60 x 365 + 15 leap days = 21,915 days = 60.0 years;
    # 25 March 1950: 20 days fewer, 21,895 days.
    assert t.loc[1, "age_at_index"] == pytest.approx(21915 / 365.25, abs=1e-12)
    assert t.loc[2, "age_at_index"] == pytest.approx(21895 / 365.25, abs=1e-12)


def test_ambiguous_birth_dates_stop_build_cohort_and_date_format_reads_them():
    labs, persons, dx = _tables(birth=("05.03.1950", "06.04.1950"))
    with pytest.raises(NeutrostatsError, match="'birth_date' of persons"):
        build_cohort(labs, persons, dx, code=None, outcomes=OUT)
    c = build_cohort(labs, persons, dx, code=None, outcomes=OUT, date_format={"persons.birth_date": "%m.%d.%Y"})
    # Month first: 3 May 1950 to 5 March 2010 = 21,915 - 59 days (3 May is day 123, 5 March day 64).
    assert c.table.set_index("person_id").loc[1, "age_at_index"] == pytest.approx((21915 - 59) / 365.25)


@pytest.mark.parametrize("engine", ["numpy", "duckdb"])
def test_unreadable_sample_times_have_their_own_flow_step(engine):
    labs, persons, dx = _tables(birth=("1950-03-05", "1950-03-25"), times=("2010-03-05", "first week of May"))
    c = build_cohort(labs, persons, dx, code=None, outcomes=OUT, engine=engine)
    att = c.attrition.set_index("description")
    step = att.loc["sample time not readable as a date (see date_format=)"]
    assert (step["excluded_lab_rows"], step["excluded_persons"]) == (1, 1)
    assert att.loc["lab rows read", "lab_rows"] == 2 and att.loc["persons analysed", "persons"] == 1


@pytest.mark.parametrize("engine", ["numpy", "duckdb"])
def test_birth_after_index_is_a_data_error_step_never_a_negative_age(engine):
    labs, persons, dx = _tables(birth=("1950-03-05", "2015-09-01"))
    c = build_cohort(labs, persons, dx, code=None, outcomes=OUT, engine=engine)
    att = c.attrition.set_index("description")
    assert att.loc["birth date after index date (data error)", "excluded_persons"] == 1
    assert c.table["person_id"].tolist() == [1] and (c.table["age_at_index"] >= 0).all()


def test_unreadable_birth_and_diagnosis_dates_are_counted():
    labs, persons, dx = _tables(birth=("1950-03-05", "unknown"))
    dx = pd.DataFrame({"person_id": [1, 1], "diagnosed_at": ["2011-01-01", "soon"], "code": ["C92.0", "C92.0"]})
    c = build_cohort(labs, persons, dx, code=None, outcomes=OUT)
    att = c.attrition.set_index("description")
    assert att.loc["analysed persons whose birth date is not readable as a date (age unknown; see date_format=)",
                   "excluded_records"] == 1
    assert att.loc["diagnoses whose date is not readable as a date (ignored; see date_format=)",
                   "excluded_records"] == 1
    assert np.isnan(c.table.set_index("person_id").loc[2, "age_at_index"])


# A sample at 00:30 in Copenhagen on 1 March 2020 (23:30 UTC on 29 February)
# with a diagnosis dated 1 March: prevalent (diagnosed on the index day) when
# the day is the local one; incident (one day after the index) in UTC.
def _midnight_tables():
    t = pd.Series(pd.to_datetime(["2020-03-01 00:30"]).tz_localize("Europe/Copenhagen"))
    labs = pd.DataFrame({"person_id": [1], "sampled_at": t, "value": ["0.8"], "unit": "10^9/L"})
    persons = pd.DataFrame({"person_id": [1], "sex": ["F"], "birth_date": ["1950-01-01"],
                            "end_of_data": ["2022-12-31"]})
    dx = pd.DataFrame({"person_id": [1], "diagnosed_at": ["2020-03-01"], "code": ["C92.0"]})
    return labs, persons, dx


def _midnight_check(c, local: bool):
    row = c.table.iloc[0]
    if local:
        assert row["index_date"] == pd.Timestamp("2020-03-01") and bool(row["x_prevalent"])
    else:
        assert row["index_date"] == pd.Timestamp("2020-02-29") and not row["x_prevalent"]
        assert bool(row["x"]) and row["x_time"] == pytest.approx(1 / 365.25)


@pytest.mark.parametrize("engine", ["numpy", "duckdb", "parquet"])
@pytest.mark.parametrize("timezone", [None, "UTC"])
def test_midnight_sample_day_is_local_on_every_engine(engine, timezone, tmp_path):
    labs, persons, dx = _midnight_tables()
    if engine == "parquet":
        labs.to_parquet(tmp_path / "labs.parquet")
        source, engine = str(tmp_path / "labs.parquet"), None
    else:
        source = labs
    c = build_cohort(source, persons, dx, code=None, outcomes=OUT, engine=engine, timezone=timezone)
    _midnight_check(c, local=timezone is None)


@pytest.mark.parametrize("engine", ["numpy", "duckdb", "parquet"])
def test_text_offsets_on_every_engine(engine, tmp_path):
    labs, persons, dx = _midnight_tables()
    labs["sampled_at"] = ["2020-03-01T00:30:00+01:00"]
    source = labs
    if engine == "parquet":
        labs.to_parquet(tmp_path / "labs.parquet")
        source, engine = str(tmp_path / "labs.parquet"), None
    _midnight_check(build_cohort(source, persons, dx, code=None, outcomes=OUT, engine=engine), local=True)
    _midnight_check(build_cohort(source, persons, dx, code=None, outcomes=OUT, engine=engine, timezone="UTC"),
                    local=False)


def test_parquet_aware_times_without_a_stored_zone_need_timezone(tmp_path):
    import duckdb

    labs, persons, dx = _midnight_tables()
    con = duckdb.connect()
    rel = con.sql("SELECT 1::BIGINT AS person_id, TIMESTAMPTZ '2020-02-29 23:30:00+00' AS sampled_at, "
                  "'0.8' AS value, '10^9/L' AS unit")
    with pytest.raises(NeutrostatsError, match="pass timezone="):
        build_cohort(rel, persons, dx, code=None, outcomes=OUT)
    _midnight_check(build_cohort(rel, persons, dx, code=None, outcomes=OUT, timezone="Europe/Copenhagen"), True)


def test_lazy_text_times_that_are_not_iso_stop_the_call(tmp_path):
    labs, persons, dx = _tables(birth=("1950-03-05", "1950-03-25"), times=("2010-03-05", "05.03.2010"))
    labs.to_parquet(tmp_path / "labs.parquet")
    with pytest.raises(NeutrostatsError, match="cannot be read as ISO 8601"):
        build_cohort(str(tmp_path / "labs.parquet"), persons, dx, code=None, outcomes=OUT)
    labs["sampled_at"] = ["05.03.2010", "06.03.2010"]
    labs.to_parquet(tmp_path / "labs.parquet")
    c = build_cohort(str(tmp_path / "labs.parquet"), persons, dx, code=None, outcomes=OUT,
                     date_format={"labs": "%d.%m.%Y"})
    assert c.table["index_date"].tolist() == [pd.Timestamp("2010-03-05"), pd.Timestamp("2010-03-06")]


# --- ids, empty tables, other table types ----------------------------------------------------


@pytest.mark.parametrize("engine", ["numpy", "duckdb", "parquet"])
def test_text_vs_integer_ids_raise_on_every_engine(engine, tmp_path):
    labs, persons, dx = _tables(birth=("1950-03-05", "1950-03-25"))
    labs["person_id"] = labs["person_id"].astype(str)
    source = labs
    if engine == "parquet":
        labs.to_parquet(tmp_path / "labs.parquet")
        source, engine = str(tmp_path / "labs.parquet"), None
    with pytest.raises(NeutrostatsError, match="same type in every table") as err:
        build_cohort(source, persons, dx, code=None, outcomes=OUT, engine=engine)
    assert "number" in str(err.value) and "text" in str(err.value)
    # Converted, every engine gives the same cohort.
    labs["person_id"] = labs["person_id"].astype(int)
    if engine is None and not isinstance(source, pd.DataFrame):
        labs.to_parquet(tmp_path / "labs.parquet")
    same = build_cohort(source if isinstance(source, str) else labs, persons, dx, code=None, outcomes=OUT,
                        engine=engine)
    ref = build_cohort(labs, persons, dx, code=None, outcomes=OUT, engine="numpy")
    pd.testing.assert_frame_equal(same.table, ref.table)


def test_empty_and_duplicate_column_tables_raise():
    labs, persons, dx = _tables()
    with pytest.raises(NeutrostatsError, match="table persons has no rows"):
        build_cohort(labs, persons.iloc[:0], dx, code=None, outcomes=OUT)
    with pytest.raises(NeutrostatsError, match="table labs has no rows"):
        build_cohort(labs.iloc[:0], persons, dx, code=None, outcomes=OUT)
    dup = pd.concat([labs, labs[["value"]]], axis=1)
    with pytest.raises(NeutrostatsError, match="duplicate column names \\['value'\\]"):
        build_cohort(dup, persons, dx, code=None, outcomes=OUT)


def test_polars_and_arrow_tables_give_the_same_cohort():
    pl = pytest.importorskip("polars")
    import pyarrow as pa

    labs, persons, dx = _tables(birth=("1950-03-05", "1950-03-25"))
    ref = build_cohort(labs, persons, dx, code=None, outcomes=OUT)
    for convert in (pl.from_pandas, pa.Table.from_pandas, lambda df: pl.from_pandas(df).lazy()):
        got = build_cohort(convert(labs), convert(persons), dx, code=None, outcomes=OUT)
        pd.testing.assert_frame_equal(got.table, ref.table)
        pd.testing.assert_frame_equal(got.attrition, ref.attrition)


@pytest.mark.spark
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("timezone", [None, "UTC"])
def test_spark_midnight_sample_day(timezone, tmp_path):
    from test_backends import _spark_session  # the one test session, whichever test module starts it

    spark = _spark_session()
    labs, persons, dx = _midnight_tables()
    labs.to_parquet(tmp_path / "labs.parquet", coerce_timestamps="us")
    sdf = spark.read.parquet(str(tmp_path / "labs.parquet"))  # an instant (TIMESTAMP) in Spark
    # Spark does not keep the recorded zone: with timezone= the day is Copenhagen's
    # (prevalent), in UTC the previous one.
    c = build_cohort(sdf, persons, dx, code=None, outcomes=OUT,
                     timezone="Europe/Copenhagen" if timezone is None else timezone)
    _midnight_check(c, local=timezone is None)


@pytest.mark.parametrize("timezone", [None, "UTC"])
def test_dates_without_time_may_stand_beside_aware_times(timezone, tmp_path):
    # FHIR: recordedDate "2012-03-01" beside onsetDateTime "2012-03-05T00:30:00+01:00".
    text = ["2012-03-05T00:30:00+01:00", "2012-03-01"]
    want = {None: ["2012-03-05 00:30", "2012-03-01 00:00"], "UTC": ["2012-03-04 23:30", "2012-03-01 00:00"]}
    assert _ymd(parse_dates(text, timezone=timezone)) == want[timezone]
    labs, persons, dx = _midnight_tables()
    labs = pd.concat([labs.assign(sampled_at="2020-03-01T00:30:00+01:00"),
                      labs.assign(sampled_at="2020-02-01", value="2.5")], ignore_index=True)
    labs.to_parquet(tmp_path / "labs.parquet")
    a = build_cohort(labs, persons, dx, code=None, outcomes=OUT, timezone=timezone, index="first_neutropenic")
    b = build_cohort(str(tmp_path / "labs.parquet"), persons, dx, code=None, outcomes=OUT, timezone=timezone,
                     index="first_neutropenic")
    _midnight_check(a, local=timezone is None)
    pd.testing.assert_frame_equal(a.table, b.table)


def test_a_pattern_that_reads_nothing_names_the_column():
    with pytest.raises(NeutrostatsError, match="reads none of the 1 distinct values of column 'end_of_data'"):
        parse_dates(["2016-12-31"], date_format="%d.%m.%Y", table="persons", column="end_of_data")


@pytest.mark.parametrize("engine", ["numpy", "duckdb", "parquet"])
@pytest.mark.parametrize("timezone", [None, "UTC"])
def test_across_the_dst_change(engine, timezone, tmp_path):
    # Copenhagen springs forward at 02:00 on 29 March 2020. 01:30+01:00 and 03:30+02:00 are two
    # hours apart on the wall clock (the times as recorded) and one hour apart in UTC. A fall
    # from 2.0 to 1.0 x10^9/L is 1,000 cells/µL: 1,000 / (2/24) = 12,000 per day as recorded,
    # 1,000 / (1/24) = 24,000 per day in UTC.
    labs = pd.DataFrame({"person_id": [1, 1], "sampled_at": ["2020-03-29T01:30:00+01:00", "2020-03-29T03:30:00+02:00"],
                         "value": ["2.0", "1.0"], "unit": "10^9/L"})
    persons = pd.DataFrame({"person_id": [1], "sex": ["F"], "birth_date": ["1950-01-01"],
                            "end_of_data": ["2022-12-31"]})
    dx = pd.DataFrame({"person_id": [1], "diagnosed_at": ["2020-03-29"], "code": ["C92.0"]})
    source = labs
    if engine == "parquet":
        labs.to_parquet(tmp_path / "labs.parquet")
        source, engine = str(tmp_path / "labs.parquet"), None
    row = build_cohort(source, persons, dx, code=None, outcomes=OUT, engine=engine, timezone=timezone).table.iloc[0]
    assert row["steepest_decline_per_day"] == pytest.approx(12_000.0 if timezone is None else 24_000.0)
    assert row["index_date"] == pd.Timestamp("2020-03-29")  # 01:30+01:00 is 00:30 UTC: the same day either way


def test_polars_tier_order_is_kept_by_enum_and_never_invented():
    pl = pytest.importorskip("polars")
    from neutrostats import odds_ratios_by_tier
    from neutrostats.synthetic import load_sample

    s = load_sample()
    table = build_cohort(s.labs, s.persons, s.diagnoses, s.deaths).table.sample(frac=1.0, random_state=1)
    ref = odds_ratios_by_tier(table, "viral_infection")
    # A pl.Categorical has no order (categories as first seen): refused, not read with another reference.
    with pytest.raises(NeutrostatsError, match="ordered Categorical"):
        odds_ratios_by_tier(pl.from_pandas(table), "viral_infection")
    tiers = list(table["tier"].cat.categories)
    as_enum = pl.from_pandas(table).with_columns(pl.col("tier").cast(pl.String).cast(pl.Enum(tiers)))
    pd.testing.assert_frame_equal(odds_ratios_by_tier(as_enum, "viral_infection"), ref)
