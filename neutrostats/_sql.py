"""The lab-table reduction as SQL generated once, run by DuckDB or Spark.

:func:`build_cohort` reduces the lab table (unit normalisation, ANC
derivation, classification, one measurement per sample time, index choice
and per-person summaries) to one row per person. For a table that does not
fit in memory this module writes that reduction as one SQL query and lets an
engine run it where the data lives:

* **DuckDB** (embedded, spills to disk): Parquet files by path or glob, a
  DuckDB relation, or a pandas DataFrame with ``engine="duckdb"``;
* **Spark** (PySpark): a Spark DataFrame.

The query is built by :func:`_pipeline` from the same rules as the
in-memory path and differs between engines only in the handful of functions
listed in :data:`_DIALECTS`. What needs Python logic — reading lab strings
such as ``"<0.1"``, folding unit spellings, LOINC roles — is done once on the
*distinct* values (found by a first, cheap query) with the very functions the
in-memory path uses, and joined back as small look-up tables.

Ties are broken by input order, as in memory: for Parquet files that is the
order of the sorted file names and the rows within each file; for a Spark
DataFrame, ``monotonically_increasing_id()``; for a DuckDB relation the order
DuckDB scans it.
"""

from __future__ import annotations

import glob as _glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ._validate import require_choice, require_columns
from .errors import NeutrostatsError
from .severity import (
    _FLAG,
    _ROLE,
    _UNIT_FLAG_LONG,
    _UNIT_FLAG_WIDE,
    ANC_FLAGS,
    IMPLAUSIBLE_ABOVE,
    _Default,
    _role_of,
    _unit_factor_state,
)
from .units import NO_FLAG, _parse_uniques, _unknown_unit_message

__all__ = ["is_lazy_source", "reduce_labs_sql", "ENGINES"]

#: Engines of the SQL path.
ENGINES = ("duckdb", "spark")

_KEPT = len(ANC_FLAGS) + 2  # step code of a row that is a measurement
_TIME = len(ANC_FLAGS)  # sample time missing
_REPEAT = len(ANC_FLAGS) + 1  # repeat at the same sample time
_UNKNOWN = -1  # person not in persons


@dataclass(frozen=True)
class _Dialect:
    """The few spellings that differ between DuckDB and Spark SQL."""

    name: str
    quote: Callable[[str], str]
    text: str  # string type name
    struct: Callable[[list[tuple[str, str]]], str]
    days: Callable[[str], str]  # whole days since 1970-01-01 of a timestamp or date
    micros: Callable[[str], str]  # microseconds since the epoch of a timestamp
    add_months: Callable[[str, int], str]  # date + n calendar months, clipped to month end
    round6: Callable[[str], str]  # round half to even at 6 decimals, as numpy.round
    isnan: Callable[[str], str]
    isinf: Callable[[str], str]
    same: Callable[[str, str], str]  # null-safe equality (NULL equals NULL, as pandas groups NaT)


_DIALECTS = {
    "duckdb": _Dialect(
        name="duckdb",
        quote=lambda c: '"' + c.replace('"', '""') + '"',
        text="VARCHAR",
        struct=lambda fields: "struct_pack(" + ", ".join(f"{k} := {v}" for k, v in fields) + ")",
        days=lambda t: f"(CAST({t} AS DATE) - DATE '1970-01-01')",
        micros=lambda t: f"epoch_us({t})",
        add_months=lambda d, n: f"CAST({d} + to_months({int(n)}) AS DATE)",
        round6=lambda x: f"round_even({x}, 6)",
        isnan=lambda x: f"isnan({x})",
        isinf=lambda x: f"isinf({x})",
        same=lambda a, b: f"({a} IS NOT DISTINCT FROM {b})",
    ),
    "spark": _Dialect(
        name="spark",
        quote=lambda c: "`" + c.replace("`", "``") + "`",
        text="STRING",
        struct=lambda fields: "named_struct(" + ", ".join(f"'{k}', {v}" for k, v in fields) + ")",
        days=lambda t: f"datediff(CAST({t} AS DATE), DATE '1970-01-01')",
        micros=lambda t: f"unix_micros(CAST({t} AS TIMESTAMP))",
        add_months=lambda d, n: f"add_months({d}, {int(n)})",
        round6=lambda x: f"bround({x}, 6)",
        isnan=lambda x: f"isnan({x})",
        isinf=lambda x: f"(abs({x}) = double('Infinity'))",
        same=lambda a, b: f"({a} <=> {b})",
    ),
}


# --------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------

def _is_path(labs: Any) -> bool:
    return isinstance(labs, (str, os.PathLike))


def _from_duckdb(obj: Any) -> bool:
    # The classes live in duckdb's compiled module "_duckdb" (or "duckdb").
    return type(obj).__module__.lstrip("_").startswith("duckdb")


def _is_duckdb_relation(labs: Any) -> bool:
    return _from_duckdb(labs) and hasattr(labs, "create_view")


def _is_spark_frame(labs: Any) -> bool:
    return type(labs).__module__.startswith("pyspark") and hasattr(labs, "createOrReplaceTempView")


def is_lazy_source(labs: Any) -> bool:
    """True for a lab source read by the SQL path (path/glob, DuckDB relation, Spark DataFrame)."""
    return _is_path(labs) or _is_duckdb_relation(labs) or _is_spark_frame(labs)


def parquet_files(path: Any, fn: str = "build_cohort") -> list[str]:
    """The Parquet files a path, folder or glob names, sorted (their order is the input order)."""
    text = os.fspath(path)
    if os.path.isdir(text):
        files = sorted(str(p) for p in Path(text).rglob("*.parquet"))
    elif any(ch in text for ch in "*?["):
        files = sorted(_glob.glob(text, recursive=True))
    else:
        files = [text] if os.path.exists(text) else []
    if not files:
        raise NeutrostatsError(
            f"{fn}: expected Parquet lab files at {text!r}, found none; pass a file, a folder of "
            "*.parquet files or a glob such as 'labs/*.parquet'"
        )
    bad = [f for f in files if not f.endswith(".parquet")]
    if bad:
        raise NeutrostatsError(
            f"{fn}: expected Parquet files (*.parquet), found {len(bad)} other files such as {bad[0]!r}; "
            "read CSV files with neutrostats.io.read_table, or convert them to Parquet"
        )
    return files


def _import_duckdb(fn: str):
    try:
        import duckdb
    except ImportError:  # pragma: no cover - depends on the installation
        raise NeutrostatsError(
            f"{fn}: reading Parquet paths or DuckDB relations needs the duckdb package, which is not "
            'installed; install it with pip install "neutrostats[duckdb]"'
        ) from None
    return duckdb


def _arrow_reader(result: Any, rows: int):
    # duckdb 2 renamed fetch_record_batch to to_arrow_reader.
    method = getattr(result, "to_arrow_reader", None) or result.fetch_record_batch
    return method(rows)


class _DuckDB:
    """Runs queries in DuckDB; the labs are the view ``ns_labs``."""

    dialect = _DIALECTS["duckdb"]

    def __init__(self, labs: Any, engine: Any, fn: str):
        duckdb = _import_duckdb(fn)
        self._tables: dict[str, pd.DataFrame] = {}
        self._rel = None
        if _is_duckdb_relation(labs):
            # A relation belongs to its connection, which the API does not
            # expose: run everything through rel.query, where DuckDB finds the
            # look-up frames by name (registered in _run's locals).
            self._rel = labs
            self.order = "row_number() OVER ()"
            self.columns = dict(zip(labs.columns, (str(t) for t in labs.types)))
            return
        self.con = engine if engine is not None and not isinstance(engine, str) else duckdb.connect()
        if _is_path(labs):
            files = parquet_files(labs, fn)
            listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW ns_labs AS SELECT *, "
                f"(CAST(list_position({listing}, filename) AS BIGINT) << 40) + file_row_number AS ns_rn "
                f"FROM read_parquet({listing}, filename = true, file_row_number = true)"
            )
            self.order = "ns_rn"
            rel = self.con.table("ns_labs")
        else:  # a pandas DataFrame
            frame = labs.assign(ns_rn=np.arange(len(labs), dtype=np.int64))
            self.con.register("ns_labs", frame)
            self.order = "ns_rn"
            rel = self.con.table("ns_labs")
        self.columns = {c: str(t) for c, t in zip(rel.columns, rel.types) if c not in ("filename", "file_row_number")}

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self._tables[name] = frame
        if self._rel is None:
            self.con.register(name, frame)

    def query(self, sql: str) -> pd.DataFrame:
        return pd.concat(list(self.batches(sql)), ignore_index=True)

    def batches(self, sql: str, rows: int = 1_000_000):
        """The result in pandas batches, so a large one is never held twice."""
        if self._rel is None:
            reader = _arrow_reader(self.con.sql(sql), rows)
        else:
            # Found by name through DuckDB's replacement scan of this frame's locals.
            ns_persons = self._tables.get("ns_persons")  # noqa: F841
            ns_units = self._tables.get("ns_units")  # noqa: F841
            ns_values = self._tables.get("ns_values")  # noqa: F841
            reader = _arrow_reader(self._rel.query("ns_labs", sql), rows)
        empty = True
        for batch in reader:
            empty = False
            yield batch.to_pandas()
        if empty:
            yield reader.schema.empty_table().to_pandas()

    def kind(self, column: str) -> str:
        t = self.columns[column].upper()
        if t in ("VARCHAR", "STRING", "TEXT") or t.startswith("VARCHAR"):
            return "text"
        if t.startswith("TIMESTAMP WITH TIME ZONE") or t == "TIMESTAMPTZ":
            return "timestamptz"
        if t.startswith("TIMESTAMP") or t == "DATE":
            return "time"
        if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL") or "INT" in t:
            return "number"
        return "other"

    def time_expr(self, column: str) -> str:
        q = self.dialect.quote(column)
        k = self.kind(column)
        if k == "timestamptz":
            return f"CAST(timezone('UTC', {q}) AS TIMESTAMP)"
        if k == "time":
            return f"CAST({q} AS TIMESTAMP)"
        return f"TRY_CAST({q} AS TIMESTAMP)"


class _Spark:
    """Runs queries in the Spark session of the lab DataFrame."""

    dialect = _DIALECTS["spark"]

    def __init__(self, labs: Any, engine: Any, fn: str):
        from pyspark.sql import functions as F

        self.spark = labs.sparkSession
        labs.withColumn("ns_rn", F.monotonically_increasing_id()).createOrReplaceTempView("ns_labs")
        self.order = "ns_rn"
        self.columns = {f.name: f.dataType.simpleString() for f in labs.schema.fields}

    def register(self, name: str, frame: pd.DataFrame) -> None:
        from pyspark.sql import types as T

        # An explicit schema: Spark cannot infer a type from an all-null column.
        kinds = {"i": T.LongType(), "u": T.LongType(), "f": T.DoubleType(), "b": T.BooleanType()}
        fields = [
            T.StructField(c, kinds.get(frame[c].dtype.kind, T.StringType()), True) for c in frame.columns
        ]
        rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
        self.spark.createDataFrame(list(rows), T.StructType(fields)).createOrReplaceTempView(name)

    def query(self, sql: str) -> pd.DataFrame:
        return self.spark.sql(sql).toPandas()

    def batches(self, sql: str, rows: int = 1_000_000):
        yield self.query(sql)

    def kind(self, column: str) -> str:
        t = self.columns[column].lower()
        if t == "string" or t.startswith("varchar") or t.startswith("char"):
            return "text"
        if t.startswith("timestamp") or t == "date":
            return "time"
        if t in ("double", "float", "int", "bigint", "smallint", "tinyint") or t.startswith("decimal"):
            return "number"
        return "other"

    def time_expr(self, column: str) -> str:
        q = self.dialect.quote(column)
        if self.kind(column) == "time":
            return f"CAST({q} AS TIMESTAMP)"
        return f"TRY_CAST({q} AS TIMESTAMP)"


def _backend(labs: Any, engine: Any, fn: str):
    if _is_spark_frame(labs):
        if engine not in (None, "spark") and not type(engine).__module__.startswith("pyspark"):
            raise NeutrostatsError(f"{fn}: labs is a Spark DataFrame, so engine must be 'spark' or None, found {engine!r}")
        return _Spark(labs, engine, fn)
    if engine == "spark":
        raise NeutrostatsError(
            f"{fn}: engine='spark' needs labs as a Spark DataFrame, found {type(labs).__name__}; "
            "read the files with spark.read.parquet(...) first"
        )
    if engine not in (None, "duckdb") and not _from_duckdb(engine):
        raise NeutrostatsError(
            f"{fn}: engine must be None, 'numpy', 'duckdb', 'spark' or a DuckDB connection, found {engine!r}"
        )
    return _DuckDB(labs, engine, fn)


# --------------------------------------------------------------------------
# Look-up tables built in Python from distinct values
# --------------------------------------------------------------------------

def _unit_code_lookup(pairs: pd.DataFrame, long_format: bool, assume_unit: str | None) -> tuple[pd.DataFrame, bool]:
    """Factor to cells/µL, unit flag and LOINC role of every (unit, code) pair seen.

    The same tables as :func:`classify_anc` (``_UNIT_FLAG_LONG``/``_WIDE``).
    """
    factors, uflags, roles = [], [], []
    for u, c in zip(pairs["u"], pairs["c"]):
        f, state = _unit_factor_state(u, assume_unit)
        role = _role_of(c) if long_format else _ROLE["anc"]
        flag = _UNIT_FLAG_LONG[role, state] if long_format else _UNIT_FLAG_WIDE[state]
        factors.append(f)
        uflags.append(int(flag))
        roles.append(role)
    out = pd.DataFrame({
        "u": pairs["u"].astype(object), "c": pairs["c"].astype(object),
        "factor": np.asarray(factors, dtype=float), "uflag": np.asarray(uflags, dtype=np.int64),
        "role": np.asarray(roles, dtype=np.int64),
    })
    known = out["factor"].dropna()
    return out, bool((known != 1.0).any())


def _value_lookup(values: pd.Series, decimal: str) -> pd.DataFrame:
    num, cens, flag = _parse_uniques(values.tolist(), decimal)
    return pd.DataFrame({
        "v": values.astype(object).to_numpy(), "num": num, "cens": cens.astype(np.int64),
        "vflag": flag.astype(np.int64),
    })


# --------------------------------------------------------------------------
# The query
# --------------------------------------------------------------------------

def _tier_sql(cuts: tuple[float, ...], x: str, op: str) -> str:
    """Number of cut points c with ``x op c`` (the exact tier code is those above x)."""
    return "(" + " + ".join(f"CASE WHEN {x} {op} {float(c)!r} THEN 1 ELSE 0 END" for c in cuts) + ")"


def _pipeline(d: _Dialect, *, src_cols: dict[str, str], order: str, value_kind: str, long_format: bool,
              derive: bool, any_scaled: bool, cuts: tuple[float, ...], index: str,
              index_window: tuple | None, age_range: tuple | None, chronic_months: int) -> str:
    """SQL returning one row per person (``grp = 0``) and one per flow step (``grp = 1``)."""
    q = d.quote
    m = len(cuts)
    text = d.text
    if value_kind == "text":
        num, cens, vflag = "x.num", "coalesce(x.cens, -1)", "coalesce(x.vflag, 0)"
        value_join = f"LEFT JOIN ns_values x ON x.v = CAST(s.v AS {text})"
    else:
        nan = f"(s.v IS NULL OR {d.isnan('CAST(s.v AS DOUBLE)')})"
        inf = d.isinf("CAST(s.v AS DOUBLE)")
        num = f"CASE WHEN {nan} OR {inf} THEN NULL ELSE CAST(s.v AS DOUBLE) END"
        cens = "-1"
        vflag = f"CASE WHEN {nan} THEN 0 WHEN {inf} THEN 1 ELSE {NO_FLAG} END"
        value_join = ""
    scaled = d.round6("(num * factor)") if any_scaled else "(num * factor)"

    parts = [f"""
src AS (
  SELECT {src_cols['person']} AS p, {src_cols['time']} AS t, {src_cols['value']} AS v,
         {src_cols['unit']} AS u, {src_cols['code']} AS c, {order} AS rn
  FROM ns_labs
),
j AS (
  SELECT s.p, s.t, s.rn, ps.pidx, ps.birth_day, ps.lim, k.factor, k.role,
         {num} AS num, {cens} AS cens,
         least({vflag}, k.uflag) AS f0
  FROM src s
  LEFT JOIN ns_persons ps ON ps.p = s.p
  LEFT JOIN ns_units k ON k.u = coalesce(CAST(s.u AS {text}), '') AND k.c = coalesce(CAST(s.c AS {text}), '')
  {value_join}
),
a AS (
  SELECT j.*, CASE WHEN role = 0 THEN {scaled} END AS anc0 FROM j
),"""]

    if derive:
        eq = d.same
        wb = d.struct([('rn', 'rn'), ('num', 'num'), ('cens', 'cens'), ('f0', 'f0'), ('factor', 'factor')])
        part = d.struct([('rn', 'rn'), ('num', 'num'), ('cens', 'cens'), ('f0', 'f0')])
        # Only the components need their sample's other rows: aggregate the
        # components per (person, time), ask which of those samples also has a
        # direct ANC, and join back — no window over the whole table.
        parts.append(f"""
ck AS (
  SELECT pidx, t,
    min(CASE WHEN role = 3 THEN {wb} END) AS wb,
    min(CASE WHEN role = 1 THEN {part} END) AS ne,
    min(CASE WHEN role = 2 THEN {part} END) AS bd
  FROM a WHERE role IN (1, 2, 3) GROUP BY pidx, t
),
hk AS (
  SELECT DISTINCT a.pidx AS hp, a.t AS ht, 1 AS hit
  FROM a JOIN ck ON {eq('a.pidx', 'ck.pidx')} AND {eq('a.t', 'ck.t')} WHERE a.role = 0
),
ckh AS (
  SELECT ck.*, coalesce(hk.hit, 0) AS hd FROM ck LEFT JOIN hk ON {eq('ck.pidx', 'hk.hp')} AND {eq('ck.t', 'hk.ht')}
),
dw AS (
  SELECT a.*, ckh.hd, ckh.wb, ckh.ne, ckh.bd
  FROM a JOIN ckh ON {eq('a.pidx', 'ckh.pidx')} AND {eq('a.t', 'ckh.t')} WHERE a.role IN (1, 2, 3)
  UNION ALL
  SELECT a.*, 0 AS hd, NULL AS wb, NULL AS ne, NULL AS bd FROM a WHERE a.role NOT IN (1, 2, 3)
),
dv AS (
  SELECT dw.*,
    CASE WHEN wb.f0 = {NO_FLAG} THEN wb.num END AS wv,
    CASE WHEN ne.f0 = {NO_FLAG} THEN ne.num END AS nv,
    CASE WHEN bd.f0 = {NO_FLAG} THEN bd.num END AS bv,
    (wb.f0 = {NO_FLAG} AND wb.cens >= 0) OR (ne.f0 = {NO_FLAG} AND ne.cens >= 0)
      OR (bd.f0 = {NO_FLAG} AND bd.cens >= 0) AS dcens,
    (role = 1 AND hd = 0 AND ne.rn = rn) AS anchor,
    CASE role WHEN 1 THEN ne.rn = rn WHEN 2 THEN bd.rn = rn WHEN 3 THEN wb.rn = rn END AS firstrow
  FROM dw
),
dd AS (
  SELECT dv.*,
    CASE WHEN wb.factor = 1 THEN wv ELSE {d.round6('wv * wb.factor')} END AS wul,
    nv + coalesce(bv, 0) AS pct,
    CASE WHEN wv IS NULL OR nv IS NULL THEN {_FLAG['missing_component']}
         WHEN dcens THEN {_FLAG['censored_component']}
         WHEN wv < 0 THEN {_FLAG['negative']}
         WHEN nv < 0 OR nv > 100 OR bv < 0 OR bv > 100 THEN {_FLAG['pct_out_of_range']}
         WHEN nv + coalesce(bv, 0) > 100 THEN {_FLAG['pct_sum_over_100']}
    END AS dflag
  FROM dv
),
r0 AS (
  SELECT p, t, rn, pidx, birth_day, lim,
    role = 0 OR anchor AS meas,
    CASE WHEN role = 0 THEN anc0 WHEN anchor AND dflag IS NULL THEN {d.round6('wul * pct / CAST(100 AS DOUBLE)')} END AS anc,
    CASE WHEN role = 0 THEN cens ELSE -1 END AS cens,
    CASE WHEN role = 0 THEN 0 WHEN anchor THEN (CASE WHEN bv IS NOT NULL THEN 1 ELSE 2 END) ELSE -1 END AS source,
    least(f0, CASE
      WHEN role IN (1, 2, 3) AND hd = 1 THEN {_FLAG['direct_anc_available']}
      WHEN role IN (1, 2, 3) AND NOT firstrow THEN {_FLAG['duplicate_component']}
      WHEN role IN (2, 3) AND ne IS NULL THEN {_FLAG['incomplete_differential']}
      WHEN role IN (2, 3) THEN {_FLAG['used_in_derivation']}
      WHEN role = 1 THEN (CASE WHEN wb IS NULL THEN {_FLAG['incomplete_differential']} ELSE coalesce(dflag, {NO_FLAG}) END)
      WHEN role = 4 THEN {_FLAG['not_anc_test']}
      ELSE {NO_FLAG} END) AS f1
  FROM dd
),""")
    else:
        other = f"CASE WHEN role = 4 THEN {_FLAG['not_anc_test']} ELSE {NO_FLAG} END" if long_format else str(NO_FLAG)
        parts.append(f"""
r0 AS (
  SELECT p, t, rn, pidx, birth_day, lim, role = 0 AS meas, anc0 AS anc,
    CASE WHEN role = 0 THEN cens ELSE -1 END AS cens,
    CASE WHEN role = 0 THEN 0 ELSE -1 END AS source,
    least(f0, {other}) AS f1
  FROM a
),""")

    exact = _tier_sql(cuts, "anc", "<")
    top_open = _tier_sql(cuts, "anc", "<=")
    parts.append(f"""
r1 AS (
  SELECT r0.*,
    CASE WHEN meas AND f1 = {NO_FLAG} AND anc < 0 THEN {_FLAG['negative']}
         WHEN meas AND f1 = {NO_FLAG} AND anc > {IMPLAUSIBLE_ABOVE!r} THEN {_FLAG['implausible']}
         ELSE f1 END AS f2,
    CASE WHEN anc >= lim THEN 0 ELSE {exact} END AS te,
    CASE WHEN anc > lim THEN 0 ELSE {top_open} END AS topen
  FROM r0
),
r2 AS (
  SELECT r1.*,
    CASE WHEN cens = 0 THEN (CASE WHEN topen = {m} THEN {m} ELSE -1 END)
         WHEN cens = 1 THEN (CASE WHEN te = {m} THEN {m} ELSE -1 END)
         WHEN cens >= 2 THEN (CASE WHEN te = 0 THEN 0 ELSE -1 END)
         ELSE te END AS tc
  FROM r1
),
r3 AS (
  SELECT p, t, rn, pidx, birth_day, lim, anc, cens, source,
    CASE WHEN pidx IS NULL THEN {_UNKNOWN}
         WHEN f2 = {NO_FLAG} AND meas AND tc < 0 THEN {_FLAG['censored_spans_tiers']}
         WHEN f2 <> {NO_FLAG} THEN f2
         WHEN t IS NULL THEN {_TIME}
         ELSE {NO_FLAG} END AS f3,
    tc AS tier
  FROM r2
),
r4 AS (
  SELECT r3.*,
    CASE WHEN f3 <> {NO_FLAG} THEN f3
         WHEN row_number() OVER (PARTITION BY pidx, t, f3 = {NO_FLAG} ORDER BY anc, rn) > 1 THEN {_REPEAT}
         ELSE {_KEPT} END AS s
  FROM r3
),""")

    win = "PARTITION BY pidx, s = {k} ORDER BY t, rn".format(k=_KEPT)
    day = d.days("t")
    parts.append(f"""
w1 AS (
  SELECT r4.*, s = {_KEPT} AS kept, {day} AS day, tier > 0 AS below,
    lag(anc) OVER ({win}) AS prev_anc,
    lag(t) OVER ({win}) AS prev_t,
    lag(tier) OVER ({win}) AS prev_tier,
    lead(tier) OVER ({win}) AS next_tier
  FROM r4
),
w2 AS (
  SELECT w1.*,
    below AND (prev_tier IS NULL OR prev_tier = 0) AS run_start,
    below AND (next_tier IS NULL OR next_tier = 0) AS run_end
  FROM w1
),
w3 AS (
  SELECT w2.*,
    max(CASE WHEN run_start THEN day END) OVER ({win} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS rs_day,
    max(CASE WHEN run_start THEN CAST(t AS DATE) END) OVER ({win} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS rs_date
  FROM w2
),""")

    in_win = "TRUE"
    if index_window is not None:
        conds = []
        if index_window[0] is not None:
            conds.append(f"day >= {int(index_window[0])}")
        if index_window[1] is not None:
            conds.append(f"day <= {int(index_window[1])}")
        in_win = " AND ".join(conds) or "TRUE"
    age_ok = "TRUE"
    if age_range is not None:
        age_ok = (f"floor((day - birth_day) / CAST(365.25 AS DOUBLE)) >= {float(age_range[0])!r} AND "
                  f"floor((day - birth_day) / CAST(365.25 AS DOUBLE)) <= {float(age_range[1])!r}")
    ix_fields = [("t", "t"), ("anc", "anc"), ("tier", "tier"), ("cens", "cens"), ("source", "source"), ("lim", "lim")]
    if index == "nadir":
        ix_fields = [("anc", "anc"), ("t", "t")] + [f for f in ix_fields if f[0] not in ("anc", "t")]
    ix_struct = d.struct(ix_fields)
    if index == "first_neutropenic":
        ix_agg = (f"coalesce(min(CASE WHEN kept AND elig AND below THEN {ix_struct} END), "
                  f"min(CASE WHEN kept AND elig THEN {ix_struct} END))")
    else:
        ix_agg = f"min(CASE WHEN kept AND elig THEN {ix_struct} END)"
    rate = (f"(prev_anc - anc) / (CAST({d.micros('t')} - {d.micros('prev_t')} AS DOUBLE) * 1000.0 / 86400e9)")
    chronic_end = d.days(d.add_months("rs_date", chronic_months))
    parts.append(f"""
e AS (
  SELECT w3.*, ({in_win}) AS inwin, ({in_win}) AND ({age_ok}) AS elig FROM w3
),
g AS (
  SELECT
    CASE WHEN grouping(pidx) = 0 THEN 0 ELSE 1 END AS grp,
    pidx, s,
    count(*) AS n_rows,
    count(DISTINCT CASE WHEN pidx IS NULL THEN p END) AS n_unknown_ids,
    max(CASE WHEN p IS NULL THEN 1 ELSE 0 END) AS null_id,
    sum(CASE WHEN kept THEN 1 ELSE 0 END) AS n_meas,
    max(s) AS max_s,
    max(CASE WHEN kept AND inwin THEN 1 ELSE 0 END) AS in_window,
    max(CASE WHEN kept AND elig THEN 1 ELSE 0 END) AS eligible,
    {ix_agg} AS ix,
    min(CASE WHEN kept THEN {d.struct([('anc', 'anc'), ('t', 't')])} END) AS nadir,
    max(CASE WHEN kept THEN tier END) AS worst,
    sum(CASE WHEN kept AND run_end THEN 1 ELSE 0 END) AS episodes,
    max(CASE WHEN kept AND run_end THEN day - rs_day END) AS longest,
    max(CASE WHEN kept AND run_end AND day >= {chronic_end} THEN 1 ELSE 0 END) AS chronic,
    max(CASE WHEN kept AND prev_t IS NOT NULL THEN {rate} END) AS steepest
  FROM e
  GROUP BY GROUPING SETS ((pidx), (s))
)
SELECT CAST(grp AS TINYINT) AS grp, pidx, CAST(s AS TINYINT) AS s, n_rows, n_unknown_ids,
  CAST(null_id AS TINYINT) AS null_id, n_meas, CAST(max_s AS TINYINT) AS max_s,
  CAST(in_window AS TINYINT) AS in_window, CAST(eligible AS TINYINT) AS eligible,
  ix.t AS ix_t, ix.anc AS ix_anc, CAST(ix.tier AS TINYINT) AS ix_tier, CAST(ix.cens AS TINYINT) AS ix_cens,
  CAST(ix.source AS TINYINT) AS ix_source, ix.lim AS ix_lim, nadir.anc AS nadir_anc, nadir.t AS nadir_t,
  CAST(worst AS TINYINT) AS worst, CAST(episodes AS INT) AS episodes, CAST(longest AS INT) AS longest,
  CAST(chronic AS TINYINT) AS chronic, steepest
FROM g
WHERE grp = 1 OR pidx IS NOT NULL""")
    return "WITH " + "".join(parts).strip()


def _measurements_sql(full: str) -> str:
    """The kept measurements, from the same pipeline (only its last SELECT differs)."""
    head = full[: full.index("\ng AS (")].rstrip().rstrip(",")
    return head + "\nSELECT pidx, t, anc, tier FROM e WHERE kept ORDER BY pidx, t"


# --------------------------------------------------------------------------
# Entry point used by build_cohort
# --------------------------------------------------------------------------

def reduce_labs_sql(labs, persons, births, *, engine, keep_measurements, scheme, index, age_range, index_window,
                    duffy_null, duffy_null_limit, chronic_months, person, time, value, unit, code,
                    on_unknown_unit, decimal):
    """The SQL counterpart of ``cohort._reduce_labs``; returns a ``_LabReduction``."""
    from .cohort import _ROW_STEPS, _UNKNOWN_PERSONS_STEP, _LabReduction, _empty_index
    from .severity import _normal_limits

    fn = "build_cohort"
    require_choice(decimal, (".", ","), fn, "decimal")
    be = _backend(labs, engine, fn)
    cols = be.columns
    # The same checks and messages as for a pandas table, on the column names.
    schema = pd.DataFrame(columns=list(cols))
    require_columns(schema, [person, time, value], fn, "Name the lab columns with person=, time= and value=.")
    long_format = code is not None and (code in cols or not isinstance(code, _Default))
    if long_format:
        require_columns(schema, [code], fn, "Pass code=None for a table of ANC results only.")
    require_columns(schema, [unit], fn, "Pass unit=<column of units>.")
    d = be.dialect
    qc = d.quote
    src_cols = {
        "person": qc(person),
        "time": be.time_expr(time),
        "value": qc(value),
        "unit": qc(unit),
        "code": qc(code) if long_format else "NULL",
    }
    value_kind = "text" if be.kind(value) in ("text", "other") else "number"

    # Persons: the key, row, birth day and (Duffy) lower limit of normal.
    n_persons = len(persons)
    lim = _normal_limits(persons, duffy_null, duffy_null_limit, scheme, fn)
    ps = pd.DataFrame({
        "p": persons[person].to_numpy(),
        "pidx": np.arange(n_persons, dtype=np.int64),
        "birth_day": pd.array(np.where(births == np.iinfo(np.int64).max, 0, births), dtype="Int64"),
        "lim": np.broadcast_to(np.asarray(lim, dtype=float), (n_persons,)).copy(),
    })
    ps.loc[births == np.iinfo(np.int64).max, "birth_day"] = pd.NA
    be.register("ns_persons", ps)

    # Distinct units and codes (with their row counts), then distinct values.
    code_expr = f"coalesce(CAST({qc(code)} AS {d.text}), '')" if long_format else "''"
    pairs = be.query(
        f"SELECT coalesce(CAST({qc(unit)} AS {d.text}), '') AS u, {code_expr} AS c, count(*) AS n "
        f"FROM ns_labs GROUP BY 1, 2"
    )
    lookup, any_scaled = _unit_code_lookup(pairs, long_format, None)
    bad = lookup["uflag"].to_numpy() == _FLAG["unknown_unit"]
    if on_unknown_unit == "raise" and bad.any():
        counts = pairs.loc[bad].groupby("u")["n"].sum()
        raise NeutrostatsError(_unknown_unit_message(fn, unit, {str(u): int(n) for u, n in counts.items()}))
    be.register("ns_units", lookup[["u", "c", "factor", "uflag", "role"]])
    if value_kind == "text":
        vals = be.query(f"SELECT DISTINCT CAST({qc(value)} AS {d.text}) AS v FROM ns_labs WHERE {qc(value)} IS NOT NULL")
        be.register("ns_values", _value_lookup(vals["v"], decimal))
    derive = long_format and bool(np.isin(lookup["role"], [1, 2, 3]).any())

    sql = _pipeline(
        d, src_cols=src_cols, order=be.order, value_kind=value_kind, long_format=long_format, derive=derive,
        any_scaled=any_scaled, cuts=tuple(scheme.cuts), index=index,
        index_window=index_window, age_range=age_range, chronic_months=chronic_months,
    )
    # Per-person arrays filled batch by batch (a registry's persons may not
    # fit in memory twice).
    n_meas = np.zeros(n_persons, dtype=np.int64)
    with_labs = np.zeros(n_persons, dtype=bool)
    max_s = np.full(n_persons, -1, dtype=np.int16)
    in_window = np.zeros(n_persons, dtype=bool)
    eligible = np.zeros(n_persons, dtype=bool)
    ix = _empty_index(n_persons)
    nadir = np.full(n_persons, np.nan)
    nadir_date = np.full(n_persons, np.datetime64("NaT"), dtype="datetime64[ns]")
    worst = np.full(n_persons, -1, dtype=np.int8)
    episodes = np.zeros(n_persons, dtype=np.int64)
    longest = np.full(n_persons, -1, dtype=np.int64)
    chronic = np.zeros(n_persons, dtype=bool)
    steepest = np.full(n_persons, np.nan)
    step_rows: list[pd.DataFrame] = []

    def put(target: np.ndarray, pidx: np.ndarray, values: pd.Series) -> None:
        ok = values.notna().to_numpy()
        if values.dtype.kind == "M" or target.dtype.kind == "M":
            target[pidx[ok]] = pd.to_datetime(values[ok]).to_numpy(dtype="datetime64[ns]")
        else:
            target[pidx[ok]] = values[ok].to_numpy(dtype=target.dtype)

    for batch in be.batches(sql):
        grp = batch["grp"].to_numpy()
        step_rows.append(batch.loc[grp == 1, ["s", "n_rows", "n_unknown_ids", "null_id"]])
        per = batch.loc[grp == 0]
        pidx = per["pidx"].to_numpy(dtype=np.int64)
        with_labs[pidx] = True
        for target, name in (
            (n_meas, "n_meas"), (max_s, "max_s"), (in_window, "in_window"), (eligible, "eligible"),
            (ix["sampled_at"], "ix_t"), (ix["anc_per_ul"], "ix_anc"), (ix["censor"], "ix_cens"),
            (ix["source"], "ix_source"), (ix["tier"], "ix_tier"), (ix["normal_limit_per_ul"], "ix_lim"),
            (nadir, "nadir_anc"), (nadir_date, "nadir_t"), (worst, "worst"), (episodes, "episodes"),
            (longest, "longest"), (chronic, "chronic"), (steepest, "steepest"),
        ):
            put(target, pidx, per[name])
        del batch, per

    steps_df = pd.concat(step_rows, ignore_index=True)
    rows_per_step = {int(s): int(n) for s, n in zip(steps_df["s"], steps_df["n_rows"])}
    unknown = steps_df[steps_df["s"] == _UNKNOWN]
    unknown_ids = int(unknown["n_unknown_ids"].sum() + unknown["null_id"].sum())
    # A person leaves the flow at the last step that removed one of their rows.
    emptied = pd.Series(max_s[with_labs & (n_meas == 0)]).value_counts()
    steps = [(_UNKNOWN_PERSONS_STEP, unknown_ids, rows_per_step.get(_UNKNOWN, 0))]
    for code_i, description in enumerate(_ROW_STEPS):
        if rows_per_step.get(code_i, 0):
            steps.append((description, int(emptied.get(code_i, 0)), rows_per_step[code_i]))

    summary = {
        "n_anc_tests": n_meas.copy(),
        "nadir_anc_per_ul": nadir,
        "nadir_date": nadir_date,
        "worst_tier": worst,
        "n_neutropenic_episodes": episodes,
        "longest_episode_days": pd.arrays.IntegerArray(np.maximum(longest, 0), longest < 0),
        "chronic": chronic,
        "steepest_decline_per_day": steepest,
    }
    measurements = None
    if keep_measurements:
        mm = be.query(_measurements_sql(sql))
        measurements = {
            "pidx": mm["pidx"].to_numpy(dtype=np.int64),
            "sampled_at": pd.to_datetime(mm["t"]).to_numpy(dtype="datetime64[ns]"),
            "anc_per_ul": mm["anc"].to_numpy(dtype=float),
            "tier": mm["tier"].to_numpy(dtype=np.int8),
        }
    return _LabReduction(
        rows_read=int(sum(rows_per_step.values())),
        persons_read=int(with_labs.sum()) + unknown_ids,
        steps=steps, n_meas=n_meas, with_labs=with_labs,
        in_window=in_window, eligible=eligible,
        index=ix, summary=summary, measurements=measurements,
    )
