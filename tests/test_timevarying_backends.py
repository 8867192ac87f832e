"""Start-stop rows from a lazy lab source equal those from the table in memory.

``time_varying_tiers`` works from ``Cohort.measurements``; a Parquet path, a
DuckDB relation or a Spark DataFrame is reduced by SQL, which returns the
usable measurements when asked (``keep_measurements=True``). The in-memory
reduction (``engine="numpy"``) is the reference; every other source must give
the very same counting-process rows, for every rule of the builder.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neutrostats import time_varying_tiers
from neutrostats.errors import NeutrostatsError
from neutrostats.synthetic import generate_cohort
from test_backends import _build

duckdb = pytest.importorskip("duckdb")

RULES = [
    pytest.param(("death", {}), id="death"),
    pytest.param(("hematologic_malignancy", {"lag_days": 7}), id="outcome-lag"),
    pytest.param(("death", {"max_carry_days": 180, "expired": "unknown", "horizon": 2.0}), id="expiry-unknown"),
    pytest.param(("death", {"max_carry_days": 90, "expired": "censor", "lag_days": 3}), id="expiry-censor"),
]


@pytest.fixture(scope="module")
def synthetic():
    return generate_cohort(1200, seed=11)


@pytest.fixture(scope="module")
def folder(synthetic, tmp_path_factory):
    d = tmp_path_factory.mktemp("tv_labs")
    for i, rows in enumerate(np.array_split(np.arange(len(synthetic.labs)), 2)):
        synthetic.labs.iloc[rows].to_parquet(d / f"part-{i}.parquet", coerce_timestamps="us",
                                             allow_truncated_timestamps=True)
    return d


@pytest.fixture(scope="module")
def cohorts(synthetic, folder):
    """The in-memory reference and the SQL cohorts (measurements kept), per index strategy."""
    out = {}
    for index in ("first", "first_neutropenic"):
        out[index, "numpy"] = _build(synthetic.labs, synthetic, engine="numpy", index=index)
        out[index, "duckdb"] = _build(synthetic.labs, synthetic, engine="duckdb", index=index,
                                      keep_measurements=True)
        out[index, "parquet"] = _build(str(folder), synthetic, index=index, keep_measurements=True)
    return out


@pytest.mark.parametrize("index", ["first", "first_neutropenic"])
@pytest.mark.parametrize("rule", RULES)
def test_sql_sources_give_the_in_memory_start_stop_rows(cohorts, index, rule):
    outcome, options = rule
    want = time_varying_tiers(cohorts[index, "numpy"], outcome, columns=("age_at_index", "sex"), **options)
    # The rules must have something to do, or equality would prove little.
    assert len(want) > 2 * want.attrs["n_persons"]
    if "max_carry_days" in options:
        assert want.attrs["rules"]["persons_with_expired_time"] > 0
    for engine in ("duckdb", "parquet"):
        got = time_varying_tiers(cohorts[index, engine], outcome, columns=("age_at_index", "sex"), **options)
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, atol=0)
        assert got.attrs == want.attrs, engine


def test_a_lazy_source_without_kept_measurements_is_refused_with_the_remedy(synthetic, folder):
    c = _build(str(folder), synthetic)
    assert c.measurements is None
    with pytest.raises(NeutrostatsError, match="keep_measurements=True"):
        time_varying_tiers(c, "death")


@pytest.mark.spark
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_spark_source_gives_the_in_memory_start_stop_rows(cohorts, synthetic, folder):
    from test_backends import _spark_session

    spark = _spark_session()
    files = sorted(str(f) for f in folder.glob("*.parquet"))
    sdf = spark.read.parquet(*files).repartition(3)
    got_cohort = _build(sdf, synthetic, index="first_neutropenic", keep_measurements=True)
    for outcome, options in (("death", {"lag_days": 7, "max_carry_days": 120}), ("hematologic_malignancy", {})):
        want = time_varying_tiers(cohorts["first_neutropenic", "numpy"], outcome, **options)
        got = time_varying_tiers(got_cohort, outcome, **options)
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, atol=0)
