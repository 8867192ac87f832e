"""Spark checks in ``local-cluster[2,1,1024]`` mode, run in a subprocess by test_spark.py.

Local-cluster mode starts a master and a worker inside the driver's JVM and
two executors in JVMs of their own, so nothing can rely on state that only
the driver has (a local file the executors cannot see, a Python object, a
view registered in another session). The driver's result limit
(``spark.driver.maxResultSize``, which only a new context can set) is 1 MiB,
below the size of the per-person result, and the session's time zone is
America/New_York: the cohort must still equal the in-memory reference.
(Two reductions at once in one session are tested in local mode, in
test_backends.)

Usage: ``python tests/spark_cluster.py FOLDER`` (prints ``ok`` and exits 0).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.simplefilter("ignore")

LIMIT = 1024 * 1024


def main(folder: str) -> None:
    from pyspark.sql import SparkSession

    import neutrostats.cohort._sql as sql
    from neutrostats.synthetic import generate_cohort
    from test_backends import SPARK_TEST_JAVA_OPTIONS, _build, assert_same_cohort

    s = generate_cohort(6_000, seed=11)
    path = Path(folder) / "labs.parquet"
    s.labs.to_parquet(path, coerce_timestamps="us")
    spark = (
        SparkSession.builder.master("local-cluster[2,1,1024]").appName("neutrostats-cluster-tests")
        .config("spark.driver.maxResultSize", "1m").config("spark.executor.memory", "768m")
        # Test-only speed-ups that change no result: C1 JIT in all three JVMs (see test_backends), and
        # no 3 s wait for the executor holding a cached bucket when the other one is free.
        .config("spark.driver.extraJavaOptions", SPARK_TEST_JAVA_OPTIONS)
        .config("spark.executor.extraJavaOptions", SPARK_TEST_JAVA_OPTIONS).config("spark.locality.wait", "0")
        .config("spark.sql.session.timeZone", "America/New_York").config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    try:
        # The limit bites: 2.4 MB of integers cannot be collected in one piece.
        try:
            spark.range(300_000).toArrow()
        except Exception as exc:  # noqa: BLE001 - Py4J wraps the SparkException
            assert "maxResultSize" in str(exc), str(exc)[:300]
        else:
            raise AssertionError("spark.driver.maxResultSize=1m did not limit a collect of 2.4 MB")

        # Three batches of about 2,000 persons (0.5 MB): each under the limit, together over it.
        sql._Spark.batch_rows = 2_100
        sizes: list[int] = []
        arrow = sql._Spark._arrow

        def measured(self, df, expected_rows):
            for batch in arrow(self, df, expected_rows):
                sizes.append(int(batch.memory_usage(index=False).sum()))
                yield batch

        sql._Spark._arrow = measured
        kw = {"index": "nadir", "scheme": "ctcae_v5", "duffy_null": "duffy_null"}
        got = _build(spark.read.parquet(str(path)), s, **kw)
        assert_same_cohort(_build(s.labs, s, engine="numpy", **kw), got, measurements=False)
        per_call = sum(sizes)
        assert per_call > LIMIT and max(sizes) < LIMIT, (per_call, max(sizes))
        assert [t.name for t in spark.catalog.listTables() if t.name.startswith("ns_")] == []
        # Nothing stays on the executors either: the call's checkpoint is freed when it ends.
        assert list(spark.sparkContext._jsc.sc().getRDDStorageInfo()) == [], "data left on the executors"
    finally:
        spark.stop()
    print("ok", len(sizes), "batches, largest", max(sizes), "bytes; per call", int(per_call), "bytes")


if __name__ == "__main__":
    main(sys.argv[1])
