"""The Spark path as a data team runs it: deterministic, time-zone-proof, honest about what it cannot read.

The in-memory reduction (``engine="numpy"``) is the reference, as in
test_backends: every Spark result must be the very same cohort. Each test
here failed on the Spark path before issue 16 (row ties followed Spark's
partitioning, sample times followed the session time zone, nanosecond
Parquet was read as seconds).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neutrostats import build_cohort
from neutrostats.errors import NeutrostatsError
from neutrostats.synthetic import generate_cohort
from test_backends import _build, _spark_session, assert_same_cohort  # noqa: E402 - one session, one comparison

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

ZONES = ["UTC", "Europe/Copenhagen", "America/New_York"]


def _frame(spark, labs: pd.DataFrame):
    """A Spark DataFrame from memory (no files), with naive times as wall clocks (TIMESTAMP_NTZ).

    Spark makes naive pandas times TIMESTAMP instants in the session zone
    (UTC here); the cast gives back the wall clock.
    """
    from pyspark.sql import functions as F

    sdf = spark.createDataFrame(labs.astype({"sampled_at": "datetime64[us]"}))
    return sdf.withColumn("sampled_at", F.col("sampled_at").cast("timestamp_ntz"))


@pytest.fixture(scope="module")
def spark():
    return _spark_session()


@pytest.fixture(scope="module")
def cohort():
    return generate_cohort(1500, seed=7)


@pytest.fixture(scope="module")
def tied(cohort, tmp_path_factory):
    """The labs in three files, the third repeating every WBC row of the first two with another value.

    A repeat WBC row at the same person and sample time loses to the first
    one in input order (file name, then row), so the derived ANC of those
    samples comes from the first two files.
    """
    labs = cohort.labs.reset_index(drop=True)
    wbc = labs[labs["code"] == "6690-2"]
    repeats = wbc.assign(value=(pd.to_numeric(wbc["value"], errors="coerce") * 0.3).round(2).astype(str))
    d = tmp_path_factory.mktemp("tied")
    half = len(labs) // 2
    parts = [labs.iloc[:half], labs.iloc[half:], repeats]
    for i, part in enumerate(parts):
        part.to_parquet(d / f"part-{i}.parquet", coerce_timestamps="us")
    return d, pd.concat(parts, ignore_index=True), pd.concat(parts[::-1], ignore_index=True)


def test_row_ties_follow_file_name_and_row_on_every_engine_and_partitioning(spark, cohort, tied):
    folder, in_order, reversed_order = tied
    want = _build(in_order, cohort, engine="numpy")
    # The ties matter: with the repeats first, other persons get another index ANC.
    other = _build(reversed_order, cohort, engine="numpy")
    changed = (want.table["index_anc_per_ul"] != other.table["index_anc_per_ul"]).sum()
    assert changed >= 10, changed
    assert_same_cohort(want, _build(str(folder), cohort, engine="duckdb"), measurements=False)
    files = sorted(str(f) for f in folder.glob("*.parquet"))
    sources = {
        "files reversed, repartitioned": spark.read.parquet(*files[::-1]).repartition(7),
        "folder, repartitioned by value": spark.read.parquet(str(folder)).repartition(3, "value"),
    }
    for name, sdf in sources.items():
        got = _build(sdf, cohort)
        assert_same_cohort(want, got, measurements=False), name


def test_a_dataframe_without_files_breaks_ties_by_contents_whatever_the_partitioning(spark, cohort, tied):
    _, in_order, _ = tied
    sdf = _frame(spark, in_order)
    a = _build(sdf, cohort)
    b = _build(sdf.orderBy("value").repartition(5), cohort)
    assert_same_cohort(a, b, measurements=False)


@pytest.fixture(scope="module")
def naive_folder(cohort, tmp_path_factory):
    d = tmp_path_factory.mktemp("naive")
    cohort.labs.to_parquet(d / "labs.parquet", coerce_timestamps="us")
    return d


@pytest.mark.parametrize("zone", ZONES)
def test_the_cohort_does_not_depend_on_the_session_time_zone(spark, cohort, naive_folder, zone):
    # Intervals across a DST change are wall-clock intervals, as in memory:
    # steepest_decline_per_day differed for persons with the session in Copenhagen.
    want = _build(cohort.labs, cohort, engine="numpy")
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        got = _build(spark.read.parquet(str(naive_folder)), cohort)
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)
    assert_same_cohort(want, got, measurements=False)


def _aware(labs: pd.DataFrame) -> pd.DataFrame:
    t = labs["sampled_at"].dt.tz_localize("Europe/Copenhagen", nonexistent="shift_forward", ambiguous=False)
    return labs.assign(sampled_at=t)


def test_aware_and_text_times_give_the_in_memory_cohort_in_a_foreign_session_zone(spark, cohort, tmp_path):
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        # Aware timestamps: the wall clock in the zone stored with the files
        # (pandas writes it in the Arrow schema), or in timezone=.
        aware = _aware(cohort.labs)
        aware.to_parquet(tmp_path / "aware.parquet", coerce_timestamps="us")
        sdf = spark.read.parquet(str(tmp_path / "aware.parquet"))
        assert_same_cohort(_build(aware, cohort, engine="numpy"), _build(sdf, cohort), measurements=False)
        # ISO 8601 text with offsets, converted to timezone= (the wall clock as
        # recorded without it, as the midnight tests in test_dates check).
        text = aware.assign(sampled_at=aware["sampled_at"].map(lambda t: t.isoformat()))
        text.to_parquet(tmp_path / "text.parquet")
        sdf = spark.read.parquet(str(tmp_path / "text.parquet"))
        assert_same_cohort(_build(text, cohort, engine="numpy", timezone="Asia/Tokyo"),
                           _build(sdf, cohort, timezone="Asia/Tokyo"), measurements=False)
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)


def test_an_instant_without_a_known_zone_is_refused_not_read_in_the_session_zone(spark, cohort):
    aware = _aware(cohort.labs.head(50))
    sdf = spark.createDataFrame(aware.astype({"sampled_at": "datetime64[us, Europe/Copenhagen]"}))
    with pytest.raises(NeutrostatsError, match="time-zone-aware .* pass timezone="):
        _build(sdf, cohort)


def test_text_times_spark_cannot_read_stop_the_call(spark, cohort, tmp_path):
    labs = cohort.labs.head(200)
    text = labs.assign(sampled_at=labs["sampled_at"].dt.strftime("%d.%m.%Y %H:%M"))
    text.to_parquet(tmp_path / "dmy.parquet")
    with pytest.raises(NeutrostatsError, match=r"200 sample times in column 'sampled_at' of labs are not ISO 8601"):
        _build(spark.read.parquet(str(tmp_path / "dmy.parquet")), cohort)
    mixed = labs.assign(sampled_at=[t.isoformat() + ("+01:00" if i % 2 else "")
                                    for i, t in enumerate(labs["sampled_at"])])
    mixed.to_parquet(tmp_path / "mixed.parquet")
    with pytest.raises(NeutrostatsError, match="mixes 100 times with a UTC offset and 100 without"):
        _build(spark.read.parquet(str(tmp_path / "mixed.parquet")), cohort)
    numbers = labs.assign(sampled_at=labs["sampled_at"].astype("int64") // 1000)
    numbers.to_parquet(tmp_path / "numbers.parquet")
    with pytest.raises(NeutrostatsError, match="does not guess the unit of numbers as times"):
        _build(spark.read.parquet(str(tmp_path / "numbers.parquet")), cohort)


def test_nanosecond_parquet_written_by_others_is_read_exactly(spark, cohort, tmp_path):
    # Spark 4 cannot read TIMESTAMP(NANOS) without nanosAsLong, which gives
    # integers; they are nanoseconds (the footer says so), floored to microseconds.
    labs = cohort.labs.copy()
    ns = labs["sampled_at"].astype("datetime64[ns]") + pd.to_timedelta(np.arange(len(labs)) % 3 * 1700, "ns")
    labs["sampled_at"] = ns
    labs["sampled_utc"] = ns.dt.tz_localize("UTC")
    labs.to_parquet(tmp_path / "ns.parquet")  # pyarrow's default: nanoseconds
    before = spark.conf.get("spark.sql.legacy.parquet.nanosAsLong", "false")
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    try:
        sdf = spark.read.parquet(str(tmp_path / "ns.parquet"))
        assert dict(sdf.dtypes)["sampled_at"] == "bigint"
        got = _build(sdf, cohort)
        got_utc = _build(sdf, cohort, time="sampled_utc", timezone="Europe/Copenhagen")
    finally:
        spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", before)
    floored = labs.assign(sampled_at=ns.dt.floor("us"))
    assert_same_cohort(_build(floored, cohort, engine="numpy"), got, measurements=False)
    utc = floored.assign(sampled_utc=floored["sampled_at"].dt.tz_localize("UTC"))
    assert_same_cohort(_build(utc, cohort, engine="numpy", time="sampled_utc", timezone="Europe/Copenhagen"),
                       got_utc, measurements=False)


def test_person_ids_of_another_type_are_refused_on_spark(spark, cohort):
    labs = cohort.labs.head(100)
    sdf = _frame(spark, labs.astype({"person_id": str}))
    with pytest.raises(NeutrostatsError, match="person ids must have the same type in every table"):
        _build(sdf, cohort)
    # Text ids on both sides (zero-padded, as hospitals export them) are fine.
    pad = {name: getattr(cohort, name).assign(person_id=getattr(cohort, name)["person_id"].map("{:07d}".format))
           for name in ("persons", "diagnoses", "deaths")}
    text_labs = labs.assign(person_id=labs["person_id"].map("{:07d}".format))
    got = build_cohort(_frame(spark, text_labs), pad["persons"],
                       pad["diagnoses"], pad["deaths"])
    want = build_cohort(text_labs, pad["persons"], pad["diagnoses"], pad["deaths"], engine="numpy")
    assert_same_cohort(want, got, measurements=False)


def _stored_blocks(spark) -> list[str]:
    """What the session's executors still hold: cached data and checkpoints."""
    return [str(info.name()) for info in spark.sparkContext._jsc.sc().getRDDStorageInfo()]


def test_a_result_fetched_in_batches_equals_the_reference_and_leaves_no_data_behind(spark, cohort, tmp_path,
                                                                                      monkeypatch):
    import neutrostats.cohort._sql as sql

    path = tmp_path / "labs.parquet"
    cohort.labs.to_parquet(path, coerce_timestamps="us")
    before = _stored_blocks(spark)
    # 1,500 persons in batches of about 400: the batched path, with its checkpoint, runs.
    monkeypatch.setattr(sql._Spark, "batch_rows", 400)
    batches: list[int] = []
    arrow = sql._Spark._arrow

    def counted(self, df, expected_rows):
        for batch in arrow(self, df, expected_rows):
            batches.append(len(batch))
            yield batch

    monkeypatch.setattr(sql._Spark, "_arrow", counted)
    got = _build(spark.read.parquet(str(path)), cohort)
    assert_same_cohort(_build(cohort.labs, cohort, engine="numpy"), got, measurements=False)
    assert len(batches) >= 4 and max(batches) <= 400 + 64, batches
    # The call's checkpoint and caches are freed when it ends, not left to the JVM's garbage collector.
    assert _stored_blocks(spark) == before


#: HotSpot compiles no method longer than this many bytes of bytecode (-XX:-DontCompileHugeMethods is off by
#: default): a longer generated method stays interpreted, several times slower.
HUGE_METHOD_BYTES = 8000


@pytest.mark.parametrize("options", [{}, {"index": "first_confirmed", "confirm_allow_normal": True}])
def test_the_main_query_windows_the_samples_once_in_code_the_jit_compiles(spark, cohort, tmp_path, monkeypatch,
                                                                           options):
    import re

    import neutrostats.cohort._sql as sql

    path = tmp_path / "labs.parquet"
    cohort.labs.to_parquet(path, coerce_timestamps="us")
    seen: dict[str, list] = {"sizes": [], "plans": []}
    batches = sql._Spark.batches

    def explained(self, text, *args, **kw):
        query = self._names.sql(text)
        seen["sizes"] += [int(x) for x in re.findall(r"maxMethodCodeSize:(\d+)",
                                                       self.spark.sql("EXPLAIN CODEGEN " + query).collect()[0][0])]
        seen["plans"].append(self.spark.sql(query)._jdf.queryExecution().executedPlan().toString())
        yield from batches(self, text, *args, **kw)

    monkeypatch.setattr(sql._Spark, "batches", explained)
    got = _build(spark.read.parquet(str(path)), cohort, **options)
    assert_same_cohort(_build(cohort.labs, cohort, engine="numpy", **options), got, measurements=False)
    # A filter on the flag column was pushed into the row stage: one 15,913-byte method, 3x slower.
    assert seen["sizes"] and max(seen["sizes"]) < HUGE_METHOD_BYTES, seen["sizes"]
    # The samples' window (lag, running counts) once: the confirmation stage read it a second time.
    windows = [line for line in seen["plans"][0].splitlines() if "Window [" in line and "lag(" in line]
    assert len(windows) == 1, windows


@pytest.mark.slow
def test_local_cluster_mode_with_a_driver_result_limit_below_the_result(tmp_path):
    # Separate executor JVMs and spark.driver.maxResultSize=1m need a new
    # Spark context, hence a process of its own (see tests/spark_cluster.py).
    script = Path(__file__).with_name("spark_cluster.py")
    run = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and run.stdout.startswith("ok"), (run.stdout[-2000:], run.stderr[-4000:])
