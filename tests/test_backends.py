"""The lab reduction in DuckDB (and Spark) equals the in-memory path.

The in-memory path is the reference: its rules are checked against hand
calculations and R elsewhere (test_cohort, test_long_format). Here every
out-of-core source must give the very same cohort: persons, tiers, index
dates, per-person summaries and every count of the flow table.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neutrostats import build_cohort
from neutrostats.errors import ImmortalTimeWarning, NeutrostatsError
from neutrostats.labs.classify import FLAG_DESCRIPTIONS
from neutrostats.synthetic import load_sample

duckdb = pytest.importorskip("duckdb")

OPTIONS = [
    pytest.param({"duffy_null": "duffy_null"}, id="first-duffy"),
    pytest.param({"index": "first_neutropenic", "scheme": "clinical"}, id="first_neutropenic"),
    pytest.param({"index": "nadir", "duffy_null": "duffy_null"}, id="nadir"),
    pytest.param({"age_range": (18, 60), "index_window": ("2003-01-01", "2010-12-31")}, id="window-age"),
    pytest.param({"scheme": "ctcae_v5", "chronic_months": 1, "index_window": (None, "2008-06-30")}, id="ctcae"),
]


def _build(labs, s, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImmortalTimeWarning)
        return build_cohort(labs, s.persons, s.diagnoses, s.deaths, **kw)


def assert_same_cohort(a, b, measurements=True):
    pd.testing.assert_frame_equal(a.attrition, b.attrition)
    # Floats may differ in the last bit (a product rounded in another order);
    # tiers, dates, flags and counts must be identical.
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=False, rtol=1e-12, atol=0)
    assert a.settings == b.settings
    if measurements:
        pd.testing.assert_frame_equal(a.measurements, b.measurements, check_exact=False, rtol=1e-12, atol=0)


@pytest.fixture(scope="module")
def sample():
    return load_sample()


@pytest.fixture(scope="module")
def parquet_dir(sample, tmp_path_factory):
    """The sample's labs in three Parquet files (input order = sorted names, then rows)."""
    d = tmp_path_factory.mktemp("labs")
    for i, rows in enumerate(np.array_split(np.arange(len(sample.labs)), 3)):
        sample.labs.iloc[rows].to_parquet(d / f"part-{i}.parquet", coerce_timestamps="us",
                                          allow_truncated_timestamps=True)
    return d


@pytest.fixture(scope="module")
def reference(sample):
    """The in-memory cohorts, once per option set."""
    cache = {}

    def get(key, kw):
        if key not in cache:
            cache[key] = _build(sample.labs, sample, engine="numpy", **kw)
        return cache[key]

    return get


@pytest.mark.parametrize("kw", OPTIONS)
@pytest.mark.parametrize("source", ["frame", "glob", "folder", "relation"])
def test_duckdb_equals_pandas_on_synthetic(sample, parquet_dir, reference, kw, source):
    ref = reference(repr(kw), kw)
    if source == "frame":
        got = _build(sample.labs, sample, engine="duckdb", **kw)  # the SQL path on a pandas table
    elif source == "glob":
        got = _build(str(parquet_dir / "part-*.parquet"), sample, keep_measurements=True, **kw)
    elif source == "folder":
        got = _build(parquet_dir, sample, keep_measurements=True, **kw)
    else:
        con = duckdb.connect()
        rel = con.read_parquet(str(parquet_dir / "*.parquet"))
        got = _build(rel, sample, keep_measurements=True, **kw)
    assert_same_cohort(ref, got)


def test_lazy_source_keeps_no_measurements_by_default(sample, parquet_dir):
    c = _build(str(parquet_dir / "*.parquet"), sample)
    assert c.measurements is None
    assert len(c.table) == c.attrition.loc[c.attrition["description"] == "persons analysed", "persons"].item()


def test_a_duckdb_connection_can_be_the_engine(sample, reference):
    con = duckdb.connect(config={"memory_limit": "500MB", "threads": 1})
    got = _build(sample.labs, sample, engine=con, keep_measurements=True, duffy_null="duffy_null")
    assert_same_cohort(reference(repr(OPTIONS[0].values[0]), OPTIONS[0].values[0]), got)


# --- Hand-made tables with every kind of problem -----------------------------

PERSONS = pd.DataFrame({
    "person_id": [1, 2, 3, 4, 5],
    "sex": ["F", "M", "F", "M", "F"],
    "birth_date": pd.to_datetime(["1950-01-01", "1960-06-15", None, "1990-03-01", "1970-01-01"]),
    "end_of_data": pd.to_datetime("2020-12-31"),
    "duffy_null": [False, True, False, None, True],
})
DX = pd.DataFrame({"person_id": [1, 2], "diagnosed_at": pd.to_datetime(["2012-01-01", "2013-05-05"]),
                   "code": ["D70", "B20"]})
DEATHS = pd.DataFrame({"person_id": [3], "died_at": pd.to_datetime(["2015-01-01"])})


def messy_long() -> pd.DataFrame:
    t = pd.to_datetime
    rows = [
        # person 1: direct ANC, a repeat at the same time with a tie, censored values
        (1, "2010-01-01 08:00", "751-8", "1.2", "10^9/L"),
        (1, "2010-01-01 08:00", "751-8", "1200", "cells/uL"),
        (1, "2010-01-01 08:00", "751-8", "<1.3", "10^9/L"),
        (1, "2010-03-01 08:00", "751-8", "<0.5", "K/uL"),
        (1, "2010-07-01 08:00", "751-8", "0.9", "x10E3/uL"),
        (1, "2011-02-01 08:00", "751-8", "2.5", "G/L"),
        (1, "2011-03-01 08:00", "751-8", ">3", "10^9/L"),
        (1, "2011-04-01 08:00", "751-8", "<2", "10^9/L"),  # spans tiers
        # person 2: derivation with duplicates, bands, a direct ANC beside components
        (2, "2011-01-01 09:00", "6690-2", "4.0", "10^9/L"),
        (2, "2011-01-01 09:00", "770-8", "30", "%"),
        (2, "2011-01-01 09:00", "764-1", "5", "%"),
        (2, "2011-01-01 09:00", "770-8", "99", "%"),  # duplicate component
        (2, "2011-02-01 09:00", "6690-2", "3.0", "K/uL"),
        (2, "2011-02-01 09:00", "26511-6", "40", None),
        (2, "2011-03-01 09:00", "6690-2", "5.0", "10^9/L"),
        (2, "2011-03-01 09:00", "770-8", "60", "%"),
        (2, "2011-03-01 09:00", "751-8", "2.9", "10^9/L"),  # direct beats derived
        (2, "2011-04-01 09:00", "6690-2", "<1", "10^9/L"),  # censored component
        (2, "2011-04-01 09:00", "770-8", "50", "%"),
        (2, "2011-05-01 09:00", "770-8", "80", "%"),
        (2, "2011-05-01 09:00", "764-1", "30", "%"),  # sum over 100
        (2, "2011-05-01 09:00", "6690-2", "2", "10^9/L"),
        (2, "2011-06-01 09:00", "6690-2", "4", "10^9/L"),  # no neutrophil %: incomplete
        (2, "2011-07-01 09:00", "770-8", "45", "%"),  # no WBC: incomplete
        (2, "2011-08-01 09:00", "770-8", "120", "%"),
        (2, "2011-08-01 09:00", "6690-2", "3", "10^9/L"),
        (2, "2011-09-01 09:00", "770-8", "50", "10^9/L"),  # unit contradicts code
        (2, "2011-09-01 09:00", "6690-2", "-3", "10^9/L"),
        (2, "2011-10-01 09:00", "718-7", "13.2", "g/dL"),  # another test
        (2, "2011-11-01 09:00", "770-8", "50", "%"),
        (2, "2011-11-01 09:00", "6690-2", "2", "10^9/L"),
        (2, "2011-11-01 09:00", "764-1", "abc", "%"),
        # person 3: messy values and times; died 2015
        (3, "2009-05-05 10:00", "751-8", "clotted", "10^9/L"),
        (3, None, "751-8", "1.0", "10^9/L"),
        (3, "2009-06-05 10:00", "751-8", "", "10^9/L"),
        (3, "2009-07-05 10:00", "751-8", "0.7", None),
        (3, "2009-08-05 10:00", "751-8", "0.4", "mmol/L"),
        (3, "2009-09-05 10:00", "751-8", "150", "10^9/L"),  # implausible
        (3, "2009-10-05 10:00", "751-8", "0,8", "10^9/L"),
        (3, "2009-11-05 10:00", "751-8", "1.4", "10^9/L"),
        (3, "2016-01-05 10:00", "751-8", "1.4", "10^9/L"),
        # person 4: Duffy unknown; person 9 is not in persons; a missing id
        (4, "2012-02-02 11:00", "753-4", "1.25", "10^9/L"),
        (4, "2012-02-03 11:00", "26499-4", "1.1", "10^9/L"),
        (9, "2012-02-02 11:00", "751-8", "1.0", "10^9/L"),
        (9, "2012-02-03 11:00", "751-8", "1.0", "10^9/L"),
        (None, "2012-02-02 11:00", "751-8", "1.0", "10^9/L"),
        # person 5: Duffy-null, chronic episode across months with a steep fall
        (5, "2013-01-31 08:00", "751-8", "1.25", "10^9/L"),
        (5, "2013-02-28 08:00", "751-8", "1.1", "10^9/L"),
        (5, "2013-03-01 08:00", "751-8", "0.3", "10^9/L"),
        (5, "2013-06-01 08:00", "751-8", "2.0", "10^9/L"),
        (5, "2013-07-01 08:00", "751-8", "0.8", "10^9/L"),
    ]
    df = pd.DataFrame(rows, columns=["person_id", "sampled_at", "code", "value", "unit"])
    df["person_id"] = df["person_id"].astype("Int64")
    df["sampled_at"] = t(df["sampled_at"])
    return df


MESSY_OPTIONS = [
    {"on_unknown_unit": "flag", "duffy_null": "duffy_null"},
    {"on_unknown_unit": "flag", "index": "nadir", "scheme": "ctcae_v5"},
    {"on_unknown_unit": "flag", "index": "first_neutropenic", "age_range": (20, 70), "chronic_months": 1},
    {"on_unknown_unit": "flag", "index_window": ("2010-02-01", "2013-12-31"), "scheme": "clinical"},
]


@pytest.mark.parametrize("kw", MESSY_OPTIONS)
@pytest.mark.filterwarnings("ignore::neutrostats.errors.ImmortalTimeWarning")
def test_messy_long_table_equals_pandas(kw, tmp_path):
    labs = messy_long()
    a = build_cohort(labs, PERSONS, DX, DEATHS, engine="numpy", **kw)
    b = build_cohort(labs, PERSONS, DX, DEATHS, engine="duckdb", **kw)
    assert_same_cohort(a, b)
    path = tmp_path / "labs.parquet"
    labs.to_parquet(path)
    c = build_cohort(path, PERSONS, DX, DEATHS, keep_measurements=True, **kw)
    assert_same_cohort(a, c)
    # The flow covers the problems put in the table.
    steps = set(a.attrition["description"])
    for flag in ("duplicate_component", "direct_anc_available", "censored_component", "pct_sum_over_100",
                 "incomplete_differential", "unit_code_mismatch", "not_anc_test", "implausible"):
        assert FLAG_DESCRIPTIONS[flag] in steps


def test_wide_numeric_values_equal_pandas():
    labs = messy_long()
    labs = labs[labs["code"].isin(["751-8"])].drop(columns="code")
    labs["value"] = pd.to_numeric(labs["value"], errors="coerce")
    labs.loc[labs.index[:2], "value"] = [np.inf, -np.inf]
    kw = {"code": None, "on_unknown_unit": "flag", "decimal": ","}
    a = build_cohort(labs, PERSONS, DX, DEATHS, engine="numpy", **kw)
    b = build_cohort(labs, PERSONS, DX, DEATHS, engine="duckdb", **kw)
    assert_same_cohort(a, b)
    assert FLAG_DESCRIPTIONS["non_numeric"] in set(a.attrition["description"])


def test_text_times_in_any_format_read_as_pandas_reads_them():
    labs = messy_long()
    times = pd.to_datetime(labs["sampled_at"])
    labs["sampled_at"] = times.dt.strftime("%m/%d/%Y %H:%M").astype(object)  # not ISO: DuckDB would not cast it
    labs.loc[labs.index[0], "sampled_at"] = "not a date"
    kw = {"on_unknown_unit": "flag"}
    a = build_cohort(labs, PERSONS, DX, DEATHS, engine="numpy", **kw)
    b = build_cohort(labs, PERSONS, DX, DEATHS, engine="duckdb", **kw)
    assert_same_cohort(a, b)
    assert a.table["index_sampled_at"].isin(times).all()
    assert a.attrition["description"].str.contains("time").any()


@pytest.mark.parametrize("source", ["frame", "parquet"])
def test_lowest_repeat_ties_break_by_input_order_with_many_decimals(source, tmp_path):
    # cells/uL only, so no value is rounded: the SQL path packs (value, row)
    # into one decimal only for values with <= 6 decimals and keeps a struct
    # for the others. Each person has one sample whose kept measurement
    # (lowest value, first in input order among equals) decides the index's
    # censor; ties have different censors, so a wrong pick shows.
    rows = [
        (1, ["400.00000001", "<400.00000001"]),  # non-exact tie: the plain value first
        (2, ["<400.00000001", "400.00000001"]),  # ... the censored one first
        (3, ["400", "<400"]),  # exact tie
        (4, ["<400", "400"]),
        (5, ["400.00000001", "<400", "400"]),  # exact value below a non-exact one
    ]
    labs = pd.DataFrame(
        [(p, "2010-05-01 10:00", v, "cells/uL") for p, values in rows for v in values],
        columns=["person_id", "sampled_at", "value", "unit"],
    )
    labs["sampled_at"] = pd.to_datetime(labs["sampled_at"])
    kw = {"code": None, "scheme": "clinical"}
    a = build_cohort(labs, PERSONS, DX, DEATHS, engine="numpy", **kw)
    src = labs
    if source == "parquet":
        src = str(tmp_path / "labs.parquet")
        labs.to_parquet(src)
    b = build_cohort(src, PERSONS, DX, DEATHS, keep_measurements=True, engine="duckdb", **kw)
    assert_same_cohort(a, b)
    # The rule itself, independent of both paths: first in input order among equals.
    censor = a.table["index_anc_censor"].astype(object)
    assert censor.where(censor.notna(), "").tolist() == ["", "<", "", "<", "<"]


# --- Random tables (hypothesis) ----------------------------------------------

_VALUES = ["1.2", "0.4", "<0.5", "<=0.5", ">2", "1500", "", "x", "0.9", "1.8", "-1", "12", "0.05", "3", "45", "60",
           "1,200", "1.200", "4.500", "0", "<100", "12.5"]
_UNITS = ["10^9/L", "cells/uL", "%", None, "mmol/L", "K/uL"]
_CODES = ["751-8", "6690-2", "770-8", "764-1", "26511-6", "718-7", "753-4"]


@st.composite
def lab_tables(draw):
    n = draw(st.integers(1, 40))
    return pd.DataFrame({
        "person_id": draw(st.lists(st.integers(1, 6), min_size=n, max_size=n)),
        "sampled_at": pd.to_datetime("2010-01-01")
        + pd.to_timedelta(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)), unit="D") * 30,
        "code": draw(st.lists(st.sampled_from(_CODES), min_size=n, max_size=n)),
        "value": draw(st.lists(st.sampled_from(_VALUES), min_size=n, max_size=n)),
        "unit": draw(st.lists(st.sampled_from(_UNITS), min_size=n, max_size=n)),
    })


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labs=lab_tables(), index=st.sampled_from(["first", "first_neutropenic", "nadir"]))
def test_random_tables_equal_pandas(labs, index):
    kw = {"on_unknown_unit": "flag", "index": index, "duffy_null": "duffy_null", "scheme": "clinical"}
    if not labs["code"].isin(["751-8", "6690-2", "770-8", "764-1", "26511-6", "753-4"]).any():
        # Only other tests (718-7): both engines refuse the table alike.
        for engine in ("numpy", "duckdb"):
            with pytest.raises(NeutrostatsError, match="no row with a known ANC, WBC or differential code"):
                build_cohort(labs, PERSONS, DX, DEATHS, engine=engine, **kw)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImmortalTimeWarning)
        a = build_cohort(labs, PERSONS, DX, DEATHS, engine="numpy", **kw)
        b = build_cohort(labs, PERSONS, DX, DEATHS, engine="duckdb", **kw)
    assert_same_cohort(a, b)


# --- Errors -------------------------------------------------------------------

def test_unknown_units_raise_with_counts(tmp_path):
    labs = messy_long()
    path = tmp_path / "labs.parquet"
    labs.to_parquet(path)
    with pytest.raises(NeutrostatsError, match=r"'mmol/L' \(1 rows\)") as err:
        build_cohort(path, PERSONS, DX, DEATHS)
    assert "on_unknown_unit='flag'" in str(err.value)


def test_missing_files_and_columns(tmp_path):
    with pytest.raises(NeutrostatsError, match="found none"):
        build_cohort(str(tmp_path / "nothing-*.parquet"), PERSONS, DX, DEATHS)
    path = tmp_path / "labs.parquet"
    messy_long().drop(columns="unit").to_parquet(path)
    with pytest.raises(NeutrostatsError, match=r"column\(s\) 'unit' not found"):
        build_cohort(path, PERSONS, DX, DEATHS)
    with pytest.raises(NeutrostatsError, match=r"column\(s\) 'taken_at' not found"):
        build_cohort(path, PERSONS, DX, DEATHS, time="taken_at")
    (tmp_path / "labs.csv").write_text("a\n1\n")
    with pytest.raises(NeutrostatsError, match="expected Parquet files"):
        build_cohort(tmp_path / "labs.csv", PERSONS, DX, DEATHS)


def test_engine_must_fit_the_source(tmp_path):
    path = tmp_path / "labs.parquet"
    messy_long().to_parquet(path)
    with pytest.raises(NeutrostatsError, match="engine='numpy' needs labs as a pandas DataFrame"):
        build_cohort(path, PERSONS, DX, DEATHS, engine="numpy")
    with pytest.raises(NeutrostatsError, match="engine='spark' needs labs as a Spark DataFrame"):
        build_cohort(messy_long(), PERSONS, DX, DEATHS, engine="spark")
    with pytest.raises(NeutrostatsError, match="engine must be"):
        build_cohort(messy_long(), PERSONS, DX, DEATHS, engine="polars")


# --- Spark ----------------------------------------------------------------------

#: JVM options of the tests' Spark processes: the JIT's first tier (C1) only. A test JVM lives for a few
#: minutes and plans each query a handful of times on tiny data, so C2's compilation of the planner
#: never pays for its CPU: on the 2 shared cores of CI it halved the Spark tests' wall time.
SPARK_TEST_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"


def _spark_session():
    """The one local Spark session of a test process (every Spark test gets it; nothing reconfigures it).

    Settings for test data of a few thousand rows, never the library's
    defaults for users: two shuffle partitions (as many as cores: the
    results are still assembled from more than one partition) and no
    adaptive execution, whose re-planning after each stage doubled the
    jobs of a call (24 against 13) without data to adapt to; the
    local-cluster run (tests/spark_cluster.py) keeps adaptive execution on.
    """
    pyspark = pytest.importorskip("pyspark")  # noqa: F841 - installed with neutrostats[spark]
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java")
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[2]").appName("neutrostats-tests")
        .config("spark.driver.extraJavaOptions", SPARK_TEST_JAVA_OPTIONS)
        .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.adaptive.enabled", "false")
        .getOrCreate()
    )


@pytest.mark.spark
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_spark_equals_pandas(sample, parquet_dir, reference, tmp_path):
    spark = _spark_session()
    sdf = spark.read.parquet(str(parquet_dir))
    # OPTIONS[3] (age range and index window) runs on Spark in the concurrency test below.
    kw = OPTIONS[0].values[0]
    assert_same_cohort(reference(repr(kw), kw), _build(sdf, sample, **kw), measurements=False)
    path = tmp_path / "messy.parquet"
    messy_long().to_parquet(path, coerce_timestamps="us")
    kw = MESSY_OPTIONS[0]
    assert_same_cohort(build_cohort(messy_long(), PERSONS, DX, DEATHS, **kw),
                       build_cohort(spark.read.parquet(str(path)), PERSONS, DX, DEATHS, **kw), measurements=False)


def _ns_views_duckdb(con):
    names = con.sql("SELECT view_name AS n FROM duckdb_views() WHERE NOT internal UNION ALL "
                    "SELECT table_name FROM duckdb_tables()").fetchall()
    return [n for (n,) in names if n.startswith("ns_")]


def test_duckdb_calls_leave_no_objects_in_a_shared_connection(sample, parquet_dir, reference):
    import duckdb

    con = duckdb.connect()
    for param in (OPTIONS[0], OPTIONS[3]):
        kw = param.values[0]
        assert_same_cohort(reference(repr(kw), kw), _build(str(parquet_dir), sample, engine=con, **kw),
                           measurements=False)
        assert _ns_views_duckdb(con) == []
    with pytest.raises(NeutrostatsError, match="taken_at"):
        _build(str(parquet_dir), sample, engine=con, time="taken_at")
    assert _ns_views_duckdb(con) == []


@pytest.mark.spark
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_spark_concurrent_calls_in_one_session_equal_their_sequential_results(sample, parquet_dir, reference):
    from concurrent.futures import ThreadPoolExecutor

    spark = _spark_session()
    sdf = spark.read.parquet(str(parquet_dir))
    options = [OPTIONS[0].values[0], OPTIONS[3].values[0]]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda kw: _build(sdf, sample, **kw), options))
    for kw, got in zip(options, results):
        assert_same_cohort(reference(repr(kw), kw), got, measurements=False)
    # Each call's views were its own and are gone, after success and after an error.
    assert [t.name for t in spark.catalog.listTables() if t.name.startswith("ns_")] == []
    with pytest.raises(NeutrostatsError, match="taken_at"):
        _build(sdf, sample, time="taken_at")
    assert [t.name for t in spark.catalog.listTables() if t.name.startswith("ns_")] == []


def test_project_parquet_writers_write_microseconds(tmp_path):
    # Spark 4 rejects Parquet TIMESTAMP(NANOS) (PARQUET_TYPE_ILLEGAL): every writer uses microseconds.
    import pyarrow as pa
    import pyarrow.parquet as pq

    from neutrostats.io import write_table
    from neutrostats.synthetic import generate_cohort, write_cohort

    folder = write_cohort(generate_cohort(200, seed=4), tmp_path / "synth", format="parquet")
    ns = pd.to_datetime(["2020-01-02 03:04:05"]).astype("datetime64[ns]")
    write_table(pd.DataFrame({"t": ns}), tmp_path / "t.parquet")
    files = [*folder.glob("*.parquet"), tmp_path / "t.parquet"]
    units = {f.name: {fld.type.unit for fld in pq.read_schema(f) if pa.types.is_timestamp(fld.type)} for f in files}
    assert all(u <= {"us"} for u in units.values()) and any(units.values()), units


@pytest.mark.spark
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_spark_reads_the_synthetic_parquet_the_project_writes(tmp_path):
    from neutrostats.synthetic import generate_cohort, write_cohort

    s = generate_cohort(300, seed=5)
    folder = write_cohort(s, tmp_path / "synth", format="parquet")
    spark = _spark_session()
    got = _build(spark.read.parquet(str(folder / "labs.parquet")), s)
    assert_same_cohort(_build(s.labs, s, engine="numpy"), got, measurements=False)
