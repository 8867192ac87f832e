"""The lab-table reduction as SQL generated once, run by DuckDB or Spark.

:func:`build_cohort` reduces the lab table (unit normalisation, ANC
derivation, classification, one measurement per sample time, index choice
and per-person summaries) to one row per person. For a table that does not
fit in memory this module writes that reduction as one SQL query and lets an
engine run it where the data lives:

* **DuckDB** (embedded, spills to disk): Parquet files by path or glob, a
  DuckDB relation, or a pandas DataFrame with ``engine="duckdb"``;
* **Spark** (PySpark): a Spark DataFrame.

The query is built by :func:`_pipeline` and :func:`_reduce_sql` from the
same rules as the in-memory path and differs between engines only in the handful of functions
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
import shutil
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from neutrostats.core.validate import is_text, require_choice, require_columns
from neutrostats.errors import NeutrostatsError
from neutrostats.labs.classify import (
    FLAG_CODES,
    ROLE_CODES,
    UNIT_FLAG_LONG,
    UNIT_FLAG_WIDE,
    ANC_FLAGS,
    IMPLAUSIBLE_ABOVE,
    UNIT_SUSPECT_BELOW,
    check_suspect_below,
    role_of,
    no_known_codes_message,
    unit_factor_state,
)
from neutrostats.labs.codes import lab_code_key, read_code_map
from neutrostats.labs.units import AMB_DECIMAL, AMB_NONE_READABLE, NO_FLAG, check_separators, parse_value_uniques, unknown_unit_message

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
    argmin: Callable[[str, str], str]  # value of x on the row with the least key (keys unique, NULL keys skipped)
    argmax: Callable[[str, str], str]  # ... with the greatest key
    same: Callable[[str, str], str]  # null-safe equality (NULL equals NULL, as pandas groups NaT)
    hint: Callable[[list[str]], str]  # a broadcast-join hint for these aliases (a comment to DuckDB)
    matches: Callable[[str, str], str]  # x matches a regular expression (given as Python text)
    # The row stage as the sample, window and flag stages read it: DuckDB reads ``r`` (it writes the CTE
    # out once); Spark recomputes a CTE for each reader, so it reads ``rd``, the rows distributed by
    # person once, and every later stage groups or windows within a person on that one partitioning.
    rows: str = "r"
    # The kept direct ANC of a sample by a minimum of one exact decimal packing (value, row, censor code)
    # where the value has at most 6 decimals (DuckDB: a struct minimum costs 3x), or always by a struct
    # minimum (Spark: its decimals beyond 18 digits are Java BigDecimals, each made through a string).
    packed_key: bool = True


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
        argmin=lambda x, k: f"arg_min_null({x}, {k})",
        argmax=lambda x, k: f"arg_max_null({x}, {k})",
        same=lambda a, b: f"({a} IS NOT DISTINCT FROM {b})",
        hint=lambda names: "",
        matches=lambda x, regex: f"regexp_matches({x}, {_sql_text(regex)})",
    ),
    "spark": _Dialect(
        name="spark",
        quote=lambda c: "`" + c.replace("`", "``") + "`",
        text="STRING",
        struct=lambda fields: "named_struct(" + ", ".join(f"'{k}', {v}" for k, v in fields) + ")",
        days=lambda t: f"datediff(CAST({t} AS DATE), DATE '1970-01-01')",
        # Times are TIMESTAMP_NTZ (wall clock): the difference is the wall-clock one, whatever the session zone.
        micros=lambda t: f"timestampdiff(MICROSECOND, TIMESTAMP_NTZ'1970-01-01 00:00:00', {t})",
        add_months=lambda d, n: f"add_months({d}, {int(n)})",
        round6=lambda x: f"bround({x}, 6)",
        isnan=lambda x: f"isnan({x})",
        isinf=lambda x: f"(abs({x}) = double('Infinity'))",
        argmin=lambda x, k: f"min_by({x}, {k})",
        argmax=lambda x, k: f"max_by({x}, {k})",
        same=lambda a, b: f"({a} <=> {b})",
        hint=lambda names: f"/*+ BROADCAST({', '.join(names)}) */" if names else "",
        matches=lambda x, regex: f"({x} RLIKE {_spark_text(regex)})",
        rows="rd",
        packed_key=False,
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
    _check_parquet_footers(files, fn)
    return files


def _check_parquet_footers(files: list[str], fn: str) -> None:
    """Every file is readable Parquet (its footer, not its data), and the files hold rows.

    DuckDB would report a broken file with the generated query in its message.
    """
    import pyarrow.parquet as pq

    rows = 0
    for f in files:
        try:
            rows += pq.read_metadata(f).num_rows
        except Exception as exc:  # pyarrow raises several classes for broken files
            size = os.path.getsize(f) if os.path.exists(f) else 0
            raise NeutrostatsError(
                f"{fn}: lab file {f!r} is not a readable Parquet file ({size:,} bytes"
                f"{': empty' if size == 0 else ''}; {str(exc).splitlines()[0]}); re-export it or remove it from "
                "the folder"
            ) from None
    if rows == 0:
        raise NeutrostatsError(
            f"{fn}: table labs has no rows ({len(files)} Parquet file(s), e.g. {files[0]!r}); check that the "
            "right files were given"
        )


def _import_duckdb(fn: str):
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise NeutrostatsError(
            f"{fn}: the cohort's lab reduction needs duckdb, a dependency of neutrostats that cannot be "
            f"imported here ({exc}); reinstall it (pip install --force-reinstall 'duckdb>=1.1'), or pass "
            "engine='numpy' with labs as a pandas DataFrame"
        ) from None
    return duckdb


def _arrow_reader(result: Any, rows: int):
    # duckdb 2 renamed fetch_record_batch to to_arrow_reader; duckdb 1.1 relations have neither
    # (fetch_arrow_reader, the same reader).
    method = (getattr(result, "to_arrow_reader", None) or getattr(result, "fetch_record_batch", None)
              or result.fetch_arrow_reader)
    return method(rows)


class _CallNames:
    """This call's own names for the views its queries use (``ns_labs`` -> ``ns_labs_<token>``).

    The queries are written with the plain names; two reductions at once in
    one DuckDB connection or Spark session each see only their own views.
    """

    _PLAIN = re.compile(r"\b(ns_labs|ns_persons|ns_units|ns_values|ns_limits)\b")

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex[:16]

    def __call__(self, name: str) -> str:
        return f"{name}_{self.token}"

    def sql(self, sql: str) -> str:
        return self._PLAIN.sub(lambda m: self(m.group(1)), sql)


class _DuckDB:
    """Runs queries in DuckDB; the labs are the view ``ns_labs``."""

    dialect = _DIALECTS["duckdb"]
    hints: tuple[str, ...] = ()  # DuckDB chooses its joins itself

    def __init__(self, labs: Any, engine: Any, fn: str):
        duckdb = _import_duckdb(fn)
        self._tables: dict[str, pd.DataFrame] = {}
        self._rel = None
        self._names = _CallNames()
        self.zones: dict[str, str] = {}
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
            self.zones = _parquet_zones(_parquet_times(files))
            listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {self._names('ns_labs')} AS SELECT *, "
                f"(CAST(list_position({listing}, filename) AS BIGINT) << 40) + file_row_number AS ns_rn "
                f"FROM read_parquet({listing}, filename = true, file_row_number = true)"
            )
            self.order = "ns_rn"
            self._view = True
            rel = self.con.table(self._names("ns_labs"))
        else:  # a pandas DataFrame
            frame = labs.assign(ns_rn=np.arange(len(labs), dtype=np.int64))
            self.con.register(self._names("ns_labs"), frame)
            self._view = False
            self.order = "ns_rn"
            rel = self.con.table(self._names("ns_labs"))
        self.columns = {c: str(t) for c, t in zip(rel.columns, rel.types) if c not in ("filename", "file_row_number")}

    def use_columns(self, names: list[str]) -> None:
        """Nothing to do: DuckDB reads only the columns a query uses, and its views are set up."""

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self._tables[name] = frame
        if self._rel is None:
            self.con.register(self._names(name), frame)

    def query(self, sql: str) -> pd.DataFrame:
        return pd.concat(list(self.batches(sql)), ignore_index=True)

    def batches(self, sql: str, rows: int = 250_000, spill: bool = False):
        """The result in pandas batches, so a large one is never held twice.

        ``spill``: DuckDB writes the result to a temporary Parquet file
        (deleted afterwards, like DuckDB's own spill files) and lets go of
        the look-ups and its working memory before Python reads it back, so
        the engine's peak and the caller's per-person arrays do not add up.
        """
        if self._rel is None and spill:
            import pyarrow.parquet as pq

            folder = tempfile.mkdtemp(prefix="neutrostats-")
            try:
                path = os.path.join(folder, "persons.parquet")
                quoted = "'" + path.replace("'", "''") + "'"
                self.con.execute(f"COPY ({self._names.sql(sql)}) TO {quoted} (FORMAT parquet)")
                self.release()
                result = pq.ParquetFile(path)
                empty = True
                for batch in result.iter_batches(rows):
                    empty = False
                    yield batch.to_pandas()
                if empty:
                    yield result.schema_arrow.empty_table().to_pandas()
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            return
        if self._rel is None:
            reader = _arrow_reader(self.con.sql(self._names.sql(sql)), rows)
        else:
            # Found by name through DuckDB's replacement scan of this frame's locals.
            ns_persons = self._tables.get("ns_persons")  # noqa: F841
            ns_units = self._tables.get("ns_units")  # noqa: F841
            ns_values = self._tables.get("ns_values")  # noqa: F841
            ns_limits = self._tables.get("ns_limits")  # noqa: F841
            reader = _arrow_reader(self._rel.query("ns_labs", sql), rows)
        empty = True
        for batch in reader:
            empty = False
            yield batch.to_pandas()
        if empty:
            yield reader.schema.empty_table().to_pandas()

    def release(self) -> None:
        """Drop the look-up tables (a registry's persons look-up is large)."""
        if self._rel is None:
            for name in self._tables:
                self.con.unregister(self._names(name))
        self._tables.clear()

    def close(self) -> None:
        """Drop every object this call created in the connection (also after an error)."""
        self.release()
        if self._rel is None:
            if self._view:
                self.con.execute(f"DROP VIEW IF EXISTS {self._names('ns_labs')}")
            else:
                self.con.unregister(self._names("ns_labs"))

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

    def time_expr(self, column: str, timezone: str | None = None, date_format: str | None = None,
                  fn: str = "build_cohort") -> str:
        """Naive wall-clock sample times (the policy of :mod:`neutrostats.core.dates`)."""
        q = self.dialect.quote(column)
        k = self.kind(column)
        if k == "timestamptz":
            # An instant: its wall clock in the zone it was recorded in (kept
            # in the Parquet schema), or in ``timezone``; never the UTC day.
            zone = timezone or self.zones.get(column)
            if zone is None:
                raise NeutrostatsError(
                    f"{fn}: sample times in column {column!r} of labs are time-zone-aware, and the zone they were "
                    "recorded in is not stored with them; pass timezone='Europe/Copenhagen' (the zone whose "
                    "calendar days count) so that days are not taken in UTC"
                )
            return f"CAST(timezone({_sql_text(zone)}, {q}) AS TIMESTAMP)"
        if k == "time":
            return f"CAST({q} AS TIMESTAMP)"
        text = f"CAST({q} AS VARCHAR)"
        if date_format is not None:
            expr = f"try_strptime({text}, {_sql_text(date_format)})"
        else:
            aware = _count_offsets(self, f"trim({text})", column, fn)
            m = self.dialect.matches
            if aware and timezone is not None:
                # A date alone is a day already (no zone to convert from).
                expr = (f"CASE WHEN {m(f'trim({text})', _DATE_ONLY_RE)} THEN TRY_CAST(trim({text}) AS "
                        f"TIMESTAMP) ELSE CAST(timezone({_sql_text(timezone)}, TRY_CAST(trim({text}) AS TIMESTAMPTZ)) "
                        "AS TIMESTAMP) END")
            elif aware:
                expr = (f"TRY_CAST(CASE WHEN {m(f'trim({text})', _OFFSET_RE)} THEN "
                        f"regexp_replace(trim({text}), {_sql_text(_OFFSET_TAIL_RE)}, '') ELSE trim({text}) END "
                        "AS TIMESTAMP)")
            else:
                expr = f"TRY_CAST(trim({text}) AS TIMESTAMP)"
        how = f"date_format {date_format!r}" if date_format else "ISO 8601 (e.g. 2020-03-05 14:30:00)"
        _require_readable(
            self, text, f"trim({text})", expr, fn,
            f"sample times in column {column!r} of labs cannot be read as {how}",
            "pass date_format= with their strftime pattern, or store the times as timestamps (a pandas table is "
            "read by neutrostats.core.dates, which counts unreadable rows)")
        return expr


#: Wall-clock epoch of Spark's TIMESTAMP_NTZ (time without a zone).
_NTZ_EPOCH = "TIMESTAMP_NTZ'1970-01-01 00:00:00'"


def _spark_text(value: str) -> str:
    """A Spark SQL string literal (Spark unescapes backslashes in literals, DuckDB does not)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _utc_wall(instant: str) -> str:
    """The UTC wall clock (TIMESTAMP_NTZ) of a Spark TIMESTAMP, exactly and whatever the session zone."""
    return f"timestampadd(MICROSECOND, unix_micros({instant}), {_NTZ_EPOCH})"


def _file_key(path: str) -> tuple[str, str]:
    """Sort key of a file Spark names by URI ('file:/a/b.parquet'): DuckDB's order of the same local paths."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(path)
    return (parts.scheme + "://" + parts.netloc if parts.scheme not in ("", "file") else "", unquote(parts.path))


def _local_files(paths: list[str]) -> list[str]:
    """The local paths of Spark's input files (footers are read with pyarrow; remote files are not)."""
    from urllib.parse import unquote, urlsplit

    local = []
    for p in paths:
        parts = urlsplit(p)
        if parts.scheme in ("", "file") and parts.path.endswith(".parquet") and os.path.exists(unquote(parts.path)):
            local.append(unquote(parts.path))
    return sorted(local)


def _release_checkpoint(frame: Any) -> None:
    """Free the executors' blocks of a local checkpoint now (``unpersist`` does not reach them; without
    this they would stay until the JVM's garbage collector lets Spark's cleaner remove them)."""
    try:
        frame._jdf.queryExecution().analyzed().rdd().unpersist(False)
    except Exception:  # noqa: BLE001 - not a classic JVM session (e.g. Spark Connect): the cleaner frees them
        pass


class _Spark:
    """Runs queries in the Spark session of the lab DataFrame, leaving nothing behind in it.

    What a shared session and a cluster need:

    * **isolation**: views get names of this call only (:class:`_CallNames`)
      and are dropped by :meth:`close`, with any cached result, after an error too;
    * **input order** (which of two rows at the same person, time and test
      wins): for a DataFrame read from Parquet files, the file path (sorted,
      as DuckDB and :func:`parquet_files` sort them) and then the row within
      the file (Spark's ``_metadata``), never the partitioning. A DataFrame
      without that metadata (built in memory, or from a join) has no stable
      row order: among such rows, the one with the least 64-bit hash of its
      value, unit and code wins;
    * **time**: sample times are wall-clock TIMESTAMP_NTZ throughout, so days
      and intervals do not depend on ``spark.sql.session.timeZone``;
    * **results** come to the driver in Arrow batches of about
      :attr:`batch_rows` rows (:meth:`_arrow`), so
      ``spark.driver.maxResultSize`` bounds a batch, not the result;
    * **look-ups** are DataFrames built from Arrow tables and broadcast.
    """

    dialect = _DIALECTS["spark"]
    #: About the most rows brought to the driver at once (one Arrow batch per bucket of persons).
    batch_rows = 250_000
    #: Persons look-ups (person key, row number, and the Duffy-null flag and birth day where they matter) up to
    #: this many bytes in Arrow are broadcast to the executors; a larger one is joined by a sort-merge join,
    #: which shuffles the lab rows once more. 1.24M persons with integer ids take about 20 MB.
    broadcast_persons_bytes = 256 * 2**20

    def __init__(self, labs: Any, engine: Any, fn: str):
        self.spark = labs.sparkSession
        self._labs = labs
        self._names = _CallNames()
        self._views: list[str] = []
        self._checkpoints: list[Any] = []
        self.order = "ns_rn"
        self.expected_rows = self.n_persons = 0
        self.columns = {f.name: f.dataType.simpleString() for f in labs.schema.fields}
        try:
            files = _local_files(labs.inputFiles())
        except Exception:  # a DataFrame with no file source
            files = []
        times = _parquet_times(files) if files else {}
        self.zones = _parquet_zones(times)
        # Nanosecond columns (read as BIGINT with nanosAsLong) and their zones.
        self.nanos = {name: tz for name, (unit, tz) in times.items() if unit == "ns"}
        self.hints = ["k", "x"]

    def use_columns(self, names: list[str]) -> None:
        """Register the lab view: the used columns and the input order.

        Not cached: at 10 million rows a ``MEMORY_AND_DISK`` cache of the
        columns (so that the files are read once) made the call slower
        (327 s against 280 s on local[2]), as did caching the row stage.
        """
        from pyspark.sql import functions as F

        labs, cols = self._labs, [F.col(self.dialect.quote(c)) for c in dict.fromkeys(names)]
        try:
            meta = labs.select(*cols, F.col("_metadata.file_path").alias("ns_file"),
                               F.col("_metadata.row_index").alias("ns_row"))
            meta.schema  # analysis fails for a source without file metadata
        except Exception:
            meta = None
        if meta is None:
            parts = [F.coalesce(F.col(self.dialect.quote(c)).cast("string"), F.lit("")) for c in names[2:]]
            frame = labs.select(*cols, F.xxhash64(*parts).bitwiseAND(F.lit(0x7FFFFFFFFFFFFFFF)).alias("ns_rn"))
        else:
            paths = [r[0] for r in meta.select("ns_file").distinct().collect()]
            ranks = pd.DataFrame({"ns_file": sorted(paths, key=_file_key)})
            ranks["ns_rank"] = np.arange(len(ranks), dtype=np.int64)
            rank_view = self._frame(ranks)
            frame = meta.join(F.broadcast(rank_view), "ns_file").select(
                *cols, (F.shiftleft(F.col("ns_rank"), 40) + F.col("ns_row")).alias("ns_rn"))
        frame.createOrReplaceTempView(self._names("ns_labs"))
        self._views.append(self._names("ns_labs"))

    def _frame(self, frame: pd.DataFrame):
        return self.spark.createDataFrame(self._arrow_table(frame))

    @staticmethod
    def _arrow_table(frame: pd.DataFrame):
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        # Spark has no NULL type: an all-null column is text.
        for i, field in enumerate(table.schema):
            if pa.types.is_null(field.type):
                table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
        return table

    def register(self, name: str, frame: pd.DataFrame) -> None:
        table = self._arrow_table(frame)
        self.spark.createDataFrame(table).createOrReplaceTempView(self._names(name))
        self._views.append(self._names(name))
        if name == "ns_persons" and table.nbytes <= self.broadcast_persons_bytes:
            self.hints.append("ps")

    def _arrow(self, df, expected_rows: int):
        """The rows of ``df`` in pandas batches of about :attr:`batch_rows` rows.

        A large result is computed once into a local checkpoint on the
        executors (:meth:`close` frees it) and fetched one bucket of persons
        (consecutive ``pidx``) at a time (``toArrow``), each its own small
        job over the checkpoint: ``spark.driver.maxResultSize`` then limits
        a batch, not the whole result, and the driver holds one batch in
        Arrow at a time. No Python runs on the executors (their Python may
        lack pyarrow).
        """
        from pyspark.sql import functions as F

        if expected_rows <= self.batch_rows:
            yield df.toArrow().to_pandas()
            return
        # Persons per bucket so that a bucket (with their measurements, if kept) holds about batch_rows rows.
        per = max(1, self.batch_rows * self.n_persons // int(expected_rows))
        buckets = -(-self.n_persons // per)
        # The query runs once, into a local checkpoint on the executors. A checkpoint, unlike a cache,
        # also cuts the query's plan: each bucket's job is planned on a scan of the checkpoint, where
        # a filter over the cached query re-planned the whole query (about 7 s per bucket at 10M rows).
        df = df.localCheckpoint(eager=True)
        self._checkpoints.append(df)
        key = F.coalesce(F.floor(F.col("pidx") / F.lit(per)), F.lit(0)).cast("long")
        for b in range(buckets):
            yield df.filter(key == b).toArrow().to_pandas()

    def query(self, sql: str) -> pd.DataFrame:
        return self.spark.sql(self._names.sql(sql)).toArrow().to_pandas()

    def batches(self, sql: str, rows: int = 250_000, spill: bool = False):
        df = self.spark.sql(self._names.sql(sql))
        yield from self._arrow(df, self.expected_rows)

    def release(self) -> None:
        pass

    def close(self) -> None:
        """Drop this call's temporary views and checkpointed result from the session (also after an error)."""
        for name in dict.fromkeys(self._views):
            self.spark.catalog.dropTempView(name)
        for frame in self._checkpoints:
            _release_checkpoint(frame)

    def kind(self, column: str) -> str:
        t = self.columns[column].lower()
        if t == "string" or t.startswith("varchar") or t.startswith("char"):
            return "text"
        if t.startswith("timestamp") or t == "date":
            return "time"
        if t in ("double", "float", "int", "bigint", "smallint", "tinyint") or t.startswith("decimal"):
            return "number"
        return "other"

    def time_expr(self, column: str, timezone: str | None = None, date_format: str | None = None,
                  fn: str = "build_cohort") -> str:
        """Wall-clock sample times as TIMESTAMP_NTZ (the policy of :mod:`neutrostats.core.dates`), whatever the session zone."""
        q = self.dialect.quote(column)
        t = self.columns[column].lower()
        if t == "timestamp_ntz":
            return q
        if t == "date":
            return f"CAST({q} AS TIMESTAMP_NTZ)"
        if t.startswith("timestamp"):
            # An instant: its wall clock in ``timezone`` or in the zone stored
            # with the Parquet files; never the session's zone or the UTC day.
            return self._in_zone(_utc_wall(q), timezone or self.zones.get(column), column, fn)
        if column in self.nanos and t in ("bigint", "long"):
            # Nanosecond timestamps read with spark.sql.legacy.parquet.nanosAsLong:
            # whole microseconds, floored exactly in integers (no double).
            wall = f"timestampadd(MICROSECOND, ({q} - pmod({q}, 1000)) div 1000, {_NTZ_EPOCH})"
            if self.nanos[column] is None:
                return wall
            return self._in_zone(wall, timezone or self.nanos[column], column, fn)
        if self.kind(column) != "text":
            raise NeutrostatsError(
                f"{fn}: sample times in column {column!r} of labs are {self.columns[column]}, expected timestamps, "
                "dates or ISO 8601 text; neutrostats does not guess the unit of numbers as times. Convert the "
                "column, e.g. with pyspark.sql.functions.timestamp_micros or to_timestamp, first"
            )
        if date_format is not None:
            raise NeutrostatsError(
                f"{fn}: date_format is not applied to text sample times on Spark (its patterns differ from "
                "strftime); convert the column with pyspark.sql.functions.to_timestamp first"
            )
        text = f"trim(CAST({q} AS STRING))"
        date_only = self.dialect.matches(text, _DATE_ONLY_RE)
        aware = _count_offsets(self, text, column, fn)
        if aware and timezone is not None:
            expr = (f"CASE WHEN {date_only} THEN TRY_CAST({text} AS TIMESTAMP_NTZ) ELSE "
                    f"{self._in_zone(_utc_wall(f'TRY_CAST({text} AS TIMESTAMP)'), timezone, column, fn)} END")
        elif aware:
            # The wall clock as recorded: the offset is dropped, not applied.
            expr = f"TRY_CAST(regexp_replace({text}, {_spark_text(_OFFSET_TAIL_RE)}, '') AS TIMESTAMP_NTZ)"
        else:
            expr = f"TRY_CAST({text} AS TIMESTAMP_NTZ)"
        _require_readable(self, q, text, expr, fn,
                          f"sample times in column {column!r} of labs are not ISO 8601 timestamps",
                          "convert the column with pyspark.sql.functions.to_timestamp(column, pattern) first")
        return expr

    def _in_zone(self, utc_wall: str, zone: str | None, column: str, fn: str) -> str:
        if zone is None:
            raise NeutrostatsError(
                f"{fn}: sample times in column {column!r} of labs are time-zone-aware (Spark TIMESTAMP), and the "
                "zone they were recorded in is not stored with them; pass timezone='Europe/Copenhagen' (the zone "
                "whose calendar days count) so that days are taken neither in UTC nor in the session's zone "
                f"(now {self.spark.conf.get('spark.sql.session.timeZone')!r}), or cast the column to timestamp_ntz "
                "if it holds wall-clock times (Spark makes naive pandas times instants in the session zone)"
            )
        return f"convert_timezone('UTC', {_spark_text(zone)}, {utc_wall})"


#: An ISO 8601 UTC offset at the end of a text time (DuckDB regular expression).
_OFFSET_RE = r"[0-9]:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
#: A date without a time (a day: it needs no zone, so it may stand beside aware times).
_DATE_ONLY_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
#: The offset itself, removed to keep the wall-clock time as recorded.
_OFFSET_TAIL_RE = r"\s*(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"


def _sql_text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _count_offsets(be: Any, text: str, column: str, fn: str) -> int:
    """Text times with a UTC offset (dates alone aside); a column mixing them with naive times stops the call."""
    m = be.dialect.matches
    counts = be.query(
        f"SELECT count(CASE WHEN {m(text, _OFFSET_RE)} THEN 1 END) AS a, "
        f"count(CASE WHEN NOT {m(text, _OFFSET_RE)} AND {text} <> '' AND NOT {m(text, _DATE_ONLY_RE)} THEN 1 END) "
        "AS b FROM ns_labs"
    )
    aware, naive = int(counts["a"].iloc[0]), int(counts["b"].iloc[0])
    if aware and naive:
        raise NeutrostatsError(
            f"{fn}: column {column!r} of labs mixes {aware:,} times with a UTC offset and {naive:,} without "
            "one; the naive ones could be in any zone. Export every time with its offset, or all as local "
            "wall-clock times"
        )
    return aware


def _require_readable(be: Any, raw: str, trimmed: str, expr: str, fn: str, what: str, remedy: str) -> None:
    """Text times the engine cannot read stop the call (the in-memory reader counts them instead).

    ``raw`` is the column as text (its example is shown), ``trimmed`` the same without surrounding blanks
    (blank values are missing, not unreadable), ``expr`` the engine's reading of it (NULL: unreadable).
    """
    bad = be.query(f"SELECT count(*) AS n, min({raw}) AS example FROM ns_labs WHERE {raw} IS NOT NULL "
                   f"AND {trimmed} <> '' AND ({expr}) IS NULL")
    n = int(bad["n"].iloc[0])
    if n:
        raise NeutrostatsError(f"{fn}: {n:,} {what}, e.g. {bad['example'].iloc[0]!r}; {remedy}")


def _parquet_times(files: list[str]) -> dict[str, tuple[str, str | None]]:
    """Unit and time zone (None: naive) of each timestamp column, as stored in the first file's Arrow schema.

    The zones say in which zone aware times were recorded; nanosecond
    columns are what Spark reads as integers (``nanosAsLong``).
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pq.read_schema(files[0])
    except Exception:  # a file pyarrow cannot open: the engine's own error comes later
        return {}
    return {f.name: (f.type.unit, f.type.tz) for f in schema if pa.types.is_timestamp(f.type)}


def _parquet_zones(times: dict[str, tuple[str, str | None]]) -> dict[str, str]:
    """Time zone of each aware timestamp column (of :func:`_parquet_times`)."""
    return {name: tz for name, (_, tz) in times.items() if tz}


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

def _unit_code_lookup(pairs: pd.DataFrame, long_format: bool, assume_unit: str | None,
                      code_map: dict[str, str] | None = None,
                      unit_suspect_below: float | None = None) -> tuple[pd.DataFrame, bool]:
    """Factor to cells/µL, unit flag and LOINC role (after ``code_map``) of every (unit, code) pair seen.

    The same tables as :func:`classify_anc` (``UNIT_FLAG_LONG``/``_WIDE``),
    and what ``severity._flag_numbers`` applies to ANC and WBC rows in a
    count unit: ``amb``, the least ambiguity code of a value (``units.AMB_*``)
    refused as ``ambiguous_number`` (NULL: none is), and ``sus``, the
    ``unit_suspect`` limit (NULL: no such rule).
    """
    factors, uflags, roles, ambs, sus = [], [], [], [], []
    for u, c in zip(pairs["u"], pairs["c"]):
        f, state = unit_factor_state(u, assume_unit)
        role = role_of(c, code_map) if long_format else ROLE_CODES["anc"]
        flag = UNIT_FLAG_LONG[role, state] if long_format else UNIT_FLAG_WIDE[state]
        count = state == 0 and role in (ROLE_CODES["anc"], ROLE_CODES["wbc"])
        factors.append(f)
        uflags.append(int(flag))
        roles.append(role)
        ambs.append((AMB_DECIMAL if f == 1.0 else AMB_NONE_READABLE) if count else None)
        sus.append(unit_suspect_below if count and f == 1.0 and unit_suspect_below is not None else None)
    out = pd.DataFrame({
        "u": pairs["u"].astype(object), "c": pairs["c"].astype(object),
        "factor": np.asarray(factors, dtype=float), "uflag": np.asarray(uflags, dtype=np.int64),
        "role": np.asarray(roles, dtype=np.int64),
        "amb": pd.array(ambs, dtype="Int64"), "sus": pd.array(sus, dtype="Float64"),
    })
    known = out["factor"].dropna()
    return out, bool((known != 1.0).any())


def _value_lookup(values: pd.Series, decimal: str, thousands: str | None = None) -> pd.DataFrame:
    num, cens, flag, amb = parse_value_uniques(values.tolist(), decimal, thousands)
    return pd.DataFrame({
        "v": values.astype(object).to_numpy(), "num": num, "cens": cens.astype(np.int64),
        "vflag": flag.astype(np.int64), "amb": amb.astype(np.int64),
    })


# --------------------------------------------------------------------------
# The query
# --------------------------------------------------------------------------

#: 2**67: the packed sort key of a direct ANC keeps 67 bits below the value
#: for the row number (< 2**64) and the censor code (3 bits).
_KEY_SHIFT = 2 ** 67

def _tier_sql(cuts: tuple[float, ...], x: str, op: str) -> str:
    """Number of cut points c with ``x op c`` (the exact tier code is those above x)."""
    return "(" + " + ".join(f"CASE WHEN {x} {op} {float(c)!r} THEN 1 ELSE 0 END" for c in cuts) + ")"


def _tier_code_sql(cuts: tuple[float, ...], anc: str, lim: str, cens: str | None) -> str:
    """Tier code of a value (-1 when a censored value spans tiers), as ``classify._tiers_and_flags``.

    0 at or above the row's limit ``lim``; below it, one more than the
    number of the cuts under the top one that lie above the value (the top
    cut is the limit; a NULL limit makes no value normal), as
    ``classify._limit_codes``.
    """
    m = len(cuts)
    lower = cuts[:-1]

    def below(op: str) -> str:
        return f"(1 + {_tier_sql(lower, anc, op)})" if lower else "1"

    exact = f"(CASE WHEN {anc} >= {lim} THEN 0 ELSE {below('<')} END)"
    if cens is None:
        return exact
    top_open = f"(CASE WHEN {anc} > {lim} THEN 0 ELSE {below('<=')} END)"
    return (f"CASE WHEN {cens} = 0 THEN (CASE WHEN {top_open} = {m} THEN {m} ELSE -1 END) "
            f"WHEN {cens} = 1 THEN (CASE WHEN {exact} = {m} THEN {m} ELSE -1 END) "
            f"WHEN {cens} >= 2 THEN (CASE WHEN {exact} = 0 THEN 0 ELSE -1 END) "
            f"ELSE {exact} END")


@dataclass(frozen=True)
class _LimitSQL:
    """The SQL of each row's lower limit of normal, by the rule of ``classify.row_limits``.

    ``base`` (stage ``j``): the age band's limit on the sample day, or the
    scheme's; NULL for an unknown or negative age or a band without one.
    ``low(x)`` lowers a limit to the Duffy-null limit for Duffy-null persons
    (column ``dn``). With the lab's LLN (``lln``), ``lln_cols``/``lln_join``
    read it in ``j`` (``ll_ul`` in cells/µL, ``lstate`` 0 none, 1 usable, 2
    unusable), and ``row``/``bad`` (stage ``r0``) give the row's limit and
    its ``unusable_limit`` flag.
    """

    base: str
    dn: str
    duffy_limit: float | None
    lln: bool
    bands: bool
    lln_cols: str = ""
    lln_join: str = ""

    @property
    def varies(self) -> bool:
        return self.bands or self.lln or self.duffy_limit is not None

    def low(self, x: str) -> str:
        if self.duffy_limit is None:
            return x
        dl = f"CAST({float(self.duffy_limit)!r} AS DOUBLE)"
        return f"(CASE WHEN dn AND {x} > {dl} THEN {dl} ELSE {x} END)"

    @property
    def row(self) -> str:
        if not self.lln:
            return self.low("blim0")
        return (f"(CASE WHEN role = 0 AND f0 = {NO_FLAG} AND lstate = 1 THEN {self.low('ll_ul')} "
                f"ELSE {self.low('blim0')} END)")

    @property
    def bad(self) -> str:
        return f"(role = 0 AND f0 = {NO_FLAG} AND lstate = 2)" if self.lln else "FALSE"

    def no_age(self, column: str) -> str:
        """A row (or sample) with a time whose limit is unknown: flagged ``no_age_limit``."""
        return f"(t IS NOT NULL AND {column} IS NULL)" if self.bands else "FALSE"


def _limit_sql(d: _Dialect, scheme: Any, *, duffy: bool, duffy_limit: float, bands: pd.DataFrame | None,
               lln_kind: str | None, any_scaled: bool, birth: str) -> _LimitSQL:
    """The :class:`_LimitSQL` of a call (``lln_kind``: "text", "number" or None without ``lower_limit``)."""
    from neutrostats.labs.classify import LIMIT_PLAUSIBLE

    def lit(x: float) -> str:
        return f"CAST({float(x)!r} AS DOUBLE)"

    normal = float(scheme.normal_limit)
    base = lit(normal)
    if bands is not None:
        age = f"(({d.days('s.t')}) - {birth}) / CAST(365.25 AS DOUBLE)"
        whens = [f"WHEN s.t IS NULL OR {birth} IS NULL THEN CAST(NULL AS DOUBLE)",
                 f"WHEN {age} < 0 THEN CAST(NULL AS DOUBLE)"]
        for lo, hi, band_lim in bands.itertuples(index=False):
            cond = f"{age} >= {float(lo)!r}" + (f" AND {age} < {float(hi)!r}" if np.isfinite(hi) else "")
            if np.isnan(band_lim):
                value = "CAST(NULL AS DOUBLE)"
            else:
                # A fixed scheme's limit is only ever lowered (classify.Scheme.effective_limit).
                value = lit(band_lim if scheme.uses_lln else min(float(band_lim), normal))
            whens.append(f"WHEN {cond} THEN {value}")
        base = "(CASE " + " ".join(whens) + f" ELSE {lit(normal)} END)"
    cols = join = ""
    if lln_kind is not None:
        if lln_kind == "text":
            lnum, lcens, lamb = "l.num", "coalesce(l.cens, -1)", "l.amb"
            lvf = "CASE WHEN s.ll IS NULL THEN 0 ELSE l.vflag END"
            join = f"\n  LEFT JOIN ns_limits l ON l.v = CAST(s.ll AS {d.text})"
        else:
            nan = f"(s.ll IS NULL OR {d.isnan('CAST(s.ll AS DOUBLE)')})"
            inf = d.isinf("CAST(s.ll AS DOUBLE)")
            lnum = f"CASE WHEN {nan} OR {inf} THEN NULL ELSE CAST(s.ll AS DOUBLE) END"
            lcens, lamb = "-1", "CAST(NULL AS BIGINT)"
            lvf = f"CASE WHEN {nan} THEN 0 WHEN {inf} THEN 1 ELSE {NO_FLAG} END"
        ul = d.round6(f"({lnum} * k.factor)") if any_scaled else f"({lnum} * k.factor)"
        lo, hi = LIMIT_PLAUSIBLE
        # As classify._read_lower_limits: empty is none; unreadable, censored, ambiguous or implausible is unusable.
        state = (f"CASE WHEN ({lvf}) = 0 THEN 0 WHEN ({lvf}) <> {NO_FLAG} OR {lcens} >= 0 "
                 f"OR coalesce({lamb} >= k.amb, FALSE) OR NOT coalesce({ul} >= {lo!r} AND {ul} < {hi!r}, FALSE) "
                 "THEN 2 ELSE 1 END")
        cols = f",\n         {ul} AS ll_ul, {state} AS lstate"
    return _LimitSQL(base=base, dn="coalesce(ps.dn, FALSE)" if duffy else "FALSE",
                     duffy_limit=float(duffy_limit) if duffy else None, lln=lln_kind is not None,
                     bands=bands is not None, lln_cols=cols, lln_join=join)


def _pipeline(d: _Dialect, *, src_cols: dict[str, str], order: str, value_kind: str, long_format: bool,
              derive: bool, any_scaled: bool, cuts: tuple[float, ...], index: str, index_window: tuple | None,
              age_range: tuple | None, lim: "_LimitSQL", birth: str, broadcast: tuple[str, ...] = (),
              chronic_below: float | None = None) -> str:
    """The CTEs of the reduction, ending in ``w`` (one row per sample, windowed).

    Three stages:

    1. rows (``r``): joins to the look-ups; every flag a row earns on its own
       (``rf``; NULL for a usable direct ANC and for a component whose fate
       its sample decides);
    2. samples (``sp``): one ``GROUP BY (person, time)`` over every row of a
       known person, and one over the components only, joined. What depends
       on the other rows of a sample — a usable direct ANC beats the components, the
       first row of a component wins, the derived ANC, the lowest repeat is
       kept — is decided from these aggregates; each sample keeps the number
       of its rows that went to each such step;
    3. ``w``: one window over each person's kept samples: the previous value
       and time, a running count of samples not below normal (which numbers
       the neutropenic runs) and the lowest value before (so that the nadir
       is the last sample to beat it, with no sort by value).

    No stage needs a sort of the whole table, and the only other window
    (the first day of each run, for confirmation: :func:`_confirmation_sql`)
    is over the same persons' samples. DuckDB reads the row stage three
    times (samples, components, own-flag counts) and writes it out once
    rather than recomputing it. Spark reads it as ``rd``, distributed by
    person once (:attr:`_Dialect.rows`): the samples with their components
    in one GROUP BY, the window and the person aggregates then need no
    other shuffle of the rows; the own-flag counts read ``r`` itself (a
    second scan, aggregated before it is shuffled; every row is grouped by
    its flag, the unflagged ones too, because Spark pushes a filter on the
    flag into the row stage and compiles it into one method too long for
    the JIT).
    :func:`_reduce_sql` aggregates ``w`` to persons. ``lim`` is the SQL of
    each row's lower limit of normal (:class:`_LimitSQL`), ``birth`` that of
    the birth day: a literal, or the persons look-up's column when it varies.
    ``broadcast``: aliases of the look-ups to broadcast to the rows (Spark).
    ``chronic_below``: the chronic rule's threshold (cells/µL), whose runs
    the window numbers too.
    """
    parts = [_rows_sql(d, src_cols=src_cols, order=order, value_kind=value_kind, long_format=long_format,
                       any_scaled=any_scaled, cuts=cuts, lim=lim, birth=birth, broadcast=broadcast)]
    parts += _sample_groups_sql(d, derive=derive, lim=lim, birth=birth)
    derivation, derived = _derivation_sql(d, derive=derive, cuts=cuts, lim=lim)
    parts.append(derivation)
    parts.append(_kept_samples_sql(d, cuts=cuts, derived=derived, lim=lim))
    parts.append(_window_sql(d, index=index, index_window=index_window, age_range=age_range,
                             chronic_below=chronic_below))
    return "WITH " + "".join(parts).strip().rstrip(",")


def _rows_sql(d: _Dialect, *, src_cols, order, value_kind, long_format, any_scaled, cuts, lim, birth,
              broadcast) -> str:
    """Stage 1 of :func:`_pipeline`, rows: the CTEs ``src`` to ``r`` (look-ups joined, each row's own flag)."""
    q = d.quote
    text = d.text
    NO, F = NO_FLAG, FLAG_CODES
    if value_kind == "text":
        num, cens, vflag = "x.num", "coalesce(x.cens, -1)", "coalesce(x.vflag, 0)"
        value_join = f"LEFT JOIN ns_values x ON x.v = CAST(s.v AS {text})"
    else:
        nan = f"(s.v IS NULL OR {d.isnan('CAST(s.v AS DOUBLE)')})"
        inf = d.isinf("CAST(s.v AS DOUBLE)")
        num = f"CASE WHEN {nan} OR {inf} THEN NULL ELSE CAST(s.v AS DOUBLE) END"
        cens = "-1"
        vflag = f"CASE WHEN {nan} THEN 0 WHEN {inf} THEN 1 ELSE {NO} END"
        value_join = ""
    scaled = d.round6("(num * factor)") if any_scaled else "(num * factor)"
    not_anc = f"WHEN role = 4 THEN {F['not_anc_test']}" if long_format else ""
    # ambiguous_number and unit_suspect, as severity._flag_numbers: ns_units
    # says per (unit, code) from which ambiguity code a value is refused
    # (k.amb) and below which non-integer count it is suspect (k.sus).
    if value_kind == "text":
        vflag = f"CASE WHEN x.amb >= k.amb THEN {F['ambiguous_number']} ELSE {vflag} END"
    suspect = (f"CASE WHEN {num} >= 0 AND {num} < k.sus AND {num} <> floor({num}) "
               f"THEN {F['unit_suspect']} ELSE {NO} END")

    hint = d.hint([a for a in broadcast if a != "x" or value_kind == "text"])

    # Stage 1: rows. rf is the row's own step code; NULL for a usable direct
    # ANC (kept or a repeat) and for a component without a flag of its own,
    # whose fate its sample decides (their own flags always rank first).
    return f"""
src AS (
  SELECT {src_cols['person']} AS p, {src_cols['time']} AS t, {src_cols['value']} AS v,
         {src_cols['unit']} AS u, {src_cols['code']} AS c, {src_cols.get('lower_limit', 'NULL')} AS ll,
         {order} AS rn
  FROM ns_labs
),
j AS (
  SELECT {hint} s.p, s.t, s.rn, ps.pidx, {birth} AS birth_day, {lim.base} AS blim0, {lim.dn} AS dn, k.factor, k.role,
         {num} AS num, {cens} AS cens, least({vflag}, k.uflag, {suspect}) AS f0{lim.lln_cols}
  FROM src s
  LEFT JOIN ns_persons ps ON ps.p = s.p
  LEFT JOIN ns_units k ON k.u = coalesce(CAST(s.u AS {text}), '') AND k.c = coalesce(CAST(s.c AS {text}), '')
  {value_join}{lim.lln_join}
),
r0 AS (
  SELECT j.*, CASE WHEN role = 0 AND f0 = {NO} THEN {scaled} END AS anc, {lim.low('blim0')} AS blim,
    {lim.row} AS lim, {lim.bad} AS lbad FROM j
),
r1 AS (
  SELECT r0.*, {_tier_code_sql(cuts, 'anc', 'lim', 'cens')} AS tier FROM r0
),
r AS (
  SELECT r1.*,
    CASE WHEN pidx IS NULL THEN {_UNKNOWN}
         WHEN f0 <> {NO} THEN f0
         {not_anc}
         WHEN role <> 0 THEN NULL
         WHEN anc < 0 THEN {F['negative']}
         WHEN anc > {IMPLAUSIBLE_ABOVE!r} THEN {F['implausible']}
         WHEN lbad THEN {F['unusable_limit']}
         WHEN {lim.no_age('lim')} THEN {F['no_age_limit']}
         WHEN tier < 0 THEN {F['censored_spans_tiers']}
         WHEN t IS NULL THEN {_TIME}
    END AS rf,
    CASE WHEN pidx IS NULL THEN p END AS pk
  FROM r1
),""" + ("""
rd AS (
  SELECT * FROM r DISTRIBUTE BY pidx
),""" if d.rows == "rd" else "")



def _sample_groups_sql(d: _Dialect, *, derive, lim, birth) -> list[str]:
    """Stage 2a of :func:`_pipeline`: the samples' aggregates ``s0`` and, with ``derive``, their components (``sm``)."""
    # Stage 2: samples (of known persons; the others' rows are all counted
    # in stage 1). The components (a minority of rows, with wide aggregates)
    # are grouped on their own and joined to their samples: one wide
    # aggregate over every sample does not fit in memory at registry scale.
    #
    # The measurement kept from a sample is its lowest direct ANC, the first
    # in input order among equals. A minimum over (value, row) structs costs
    # 3x a plain one on DuckDB, so the pair is packed into one exact decimal
    # when the value has at most 6 decimals (always, once a unit was
    # converted): value x 10^6 in the high digits, then the row number and
    # the censor code. Other values (rare), and every value on Spark
    # (_Dialect.packed_key), keep the struct.
    cand = "role = 0 AND rf IS NULL"
    exact = _packs(d, "anc")
    key = (f"CAST(round(anc * 1e6) AS DECIMAL(12, 0)) * CAST({_KEY_SHIFT} AS DECIMAL(22, 0)) "
           f"+ CAST(rn AS DECIMAL(20, 0)) * 8 + (cens + 1)")
    best = d.struct([("anc", "anc"), ("rn", "rn"), ("cens", "cens")] + ([("lim", "lim")] if lim.lln else []))
    # The limit is the person's, or their age band's on the sample day: one per sample (blim). Only the
    # lab's own LLN differs between the rows of a sample: the kept row's is taken with it (klim).
    blim_agg = "min(blim)" if lim.varies else lim.base
    klim = (f"{d.argmin(f'CASE WHEN {cand} AND {exact} THEN lim END', f'CASE WHEN {cand} AND {exact} THEN {key} END')}"
            if lim.lln else "CAST(NULL AS DOUBLE)")
    birth_agg = "min(birth_day)" if "ps." in birth else birth
    parts = [f"""
s0 AS (
  SELECT pidx, t,
    max(CASE WHEN role = 0 AND (rf IS NULL OR rf >= {len(ANC_FLAGS)}) THEN 1 ELSE 0 END) AS hd,
    count(CASE WHEN {cand} THEN 1 END) AS ncand,
    min(CASE WHEN {cand} THEN anc END) AS amin,
    min(CASE WHEN {cand} AND {exact} THEN {key} END) AS kmin,
    min(CASE WHEN {cand} AND NOT ({exact}) THEN {best} END) AS smin,
    max(rf) AS maxrf, {birth_agg} AS birth_day, {blim_agg} AS blim, {klim} AS klim{{components}}
  FROM {d.rows}
  WHERE pidx IS NOT NULL
  GROUP BY pidx, t
),"""]
    if derive:
        # The first row (input order) of each component, field by field: the
        # row numbers are unique, and a struct minimum costs 3x as much.
        comp_aggs = []
        for role, name in ((1, "ne"), (2, "bd"), (3, "wb")):
            key = f"CASE WHEN role = {role} THEN rn END"
            cols = [("num", "coalesce(num, 0)"), ("cens", "cens"), ("f0", "f0")]
            if role == 3:
                cols.append(("factor", "coalesce(factor, 1)"))
            comp_aggs += [f"{d.argmin(f'CASE WHEN role = {role} THEN {x} END', key)} AS {name}_{field}"
                          for field, x in cols]
            comp_aggs.append(f"count(CASE WHEN role = {role} AND rf IS NULL THEN 1 END) AS k{role}")
        comp_cols = ", ".join(c.rsplit(" AS ", 1)[1] for c in comp_aggs)
        comp_sql = ",\n    ".join(comp_aggs)
        if d.rows == "rd":
            # Spark: the components' aggregates in the samples' own GROUP BY (a join of the two groupings
            # would shuffle both again). A sample without component rows gets what the left join gave
            # it: NULL counts (count gives 0), NULL firsts (no row has a key).
            anyc = "count(CASE WHEN role IN (1, 2, 3) THEN 1 END) > 0"
            inline = [f"CASE WHEN {anyc} THEN {c.rsplit(' AS ', 1)[0]} END AS {c.rsplit(' AS ', 1)[1]}"
                      if c.startswith("count(") else c for c in comp_aggs]
            parts[0] = parts[0].replace("{components}", ",\n    " + ",\n    ".join(inline))
            parts.append("""
sm AS (SELECT * FROM s0),""")
            return parts
        parts[0] = parts[0].replace("{components}", "")
        parts.append(f"""
c0 AS (
  SELECT pidx AS cp, t AS ct,
    {comp_sql}
  FROM r
  WHERE role IN (1, 2, 3) AND pidx IS NOT NULL
  GROUP BY pidx, t
),
sm AS (
  SELECT s0.*, {comp_cols}
  FROM s0 LEFT JOIN c0 ON s0.pidx = c0.cp AND {d.same('s0.t', 'c0.ct')}
),""")
    else:
        parts[0] = parts[0].replace("{components}", "")
        parts.append("""
sm AS (SELECT * FROM s0),""")

    return parts


def _derivation_sql(d: _Dialect, *, derive, cuts, lim) -> tuple[str, dict[str, str]]:
    """Stage 2b of :func:`_pipeline`: the derived ANC of each sample (``sd`` to ``sa``) and the SQL of its fields."""
    NO, F = NO_FLAG, FLAG_CODES
    if derive:
        # A sample with a usable direct ANC row (no flag of its own) derives nothing; else the first
        # neutrophil % row carries the derived ANC (the "anchor").
        fc = {r: f"(CASE WHEN {c}_f0 = {NO} AND k{r} > 0 THEN 1 ELSE 0 END)"
              for r, c in ((1, "ne"), (2, "bd"), (3, "wb"))}
        part = f"""
sd AS (
  SELECT sm.*,
    CASE WHEN wb_f0 = {NO} THEN wb_num END AS wv,
    CASE WHEN ne_f0 = {NO} THEN ne_num END AS nv,
    CASE WHEN bd_f0 = {NO} THEN bd_num END AS bv,
    (wb_f0 = {NO} AND wb_cens >= 0) OR (ne_f0 = {NO} AND ne_cens >= 0) OR (bd_f0 = {NO} AND bd_cens >= 0) AS dcens,
    {fc[1]} AS fc1, {fc[2]} AS fc2, {fc[3]} AS fc3
  FROM sm
),
se AS (
  SELECT sd.*,
    CASE WHEN wb_factor = 1 THEN wv ELSE {d.round6('wv * wb_factor')} END AS wul,
    nv + coalesce(bv, 0) AS pct,
    CASE WHEN wv IS NULL OR nv IS NULL OR (bd_f0 IS NOT NULL AND bd_f0 <> {NO} AND bd_f0 <> {F['missing_value']})
              THEN {F['missing_component']}
         WHEN dcens THEN {F['censored_component']}
         WHEN wv < 0 THEN {F['negative']}
         WHEN nv < 0 OR nv > 100 OR bv < 0 OR bv > 100 THEN {F['pct_out_of_range']}
         WHEN nv + coalesce(bv, 0) > 100 THEN {F['pct_sum_over_100']}
    END AS dflag
  FROM sd
),
sf AS (
  SELECT se.*, CASE WHEN dflag IS NULL THEN {d.round6('wul * pct / CAST(100 AS DOUBLE)')} END AS danc FROM se
),
sa AS (
  SELECT sf.*,
    CASE WHEN hd = 1 THEN coalesce(k1 + k2 + k3, 0) ELSE 0 END AS c_direct,
    CASE WHEN hd = 1 OR k1 IS NULL THEN 0 ELSE (k1 - fc1) + (k2 - fc2) + (k3 - fc3) END AS c_dup,
    CASE WHEN hd = 1 OR ne_f0 IS NOT NULL THEN 0 ELSE fc2 + fc3 END AS c_inc,
    CASE WHEN hd = 1 OR ne_f0 IS NULL THEN 0 ELSE fc2 + fc3 END AS c_used,
    CASE WHEN hd = 1 OR fc1 = 0 THEN NULL
         WHEN wb_f0 IS NULL THEN {F['incomplete_differential']}
         WHEN dflag IS NOT NULL THEN dflag
         WHEN danc < 0 THEN {F['negative']}
         WHEN danc > {IMPLAUSIBLE_ABOVE!r} THEN {F['implausible']}
         WHEN {lim.no_age('blim')} THEN {F['no_age_limit']}
         WHEN t IS NULL THEN {_TIME}
         ELSE {_KEPT} END AS acode
  FROM sf
),"""
        derived = {
            # A derived ANC has no LLN of its own (the anchor's is a % limit): the sample's base limit.
            "anc": "danc", "tier": _tier_code_sql(cuts, "danc", "blim", None),
            "source": "(CASE WHEN bv IS NOT NULL THEN 1 ELSE 2 END)",
        }
    else:
        part = """
sa AS (
  SELECT sm.*, 0 AS c_direct, 0 AS c_dup, 0 AS c_inc, 0 AS c_used, CAST(NULL AS INT) AS acode FROM sm
),"""
        derived = {"anc": "NULL", "tier": "NULL", "source": "NULL"}
    return part, derived


def _packs(d: _Dialect, anc: str) -> str:
    """SQL true where the direct ANC ``anc`` is kept by the packed decimal key (see :func:`_sample_groups_sql`)."""
    return f"{d.round6(anc)} = {anc}" if d.packed_key else "FALSE"


def _kept_samples_sql(d: _Dialect, *, cuts, derived, lim) -> str:
    """Stage 2c of :func:`_pipeline`: ``sp``, the measurement each sample keeps and the step of each of its rows."""
    F = FLAG_CODES
    # The kept direct ANC's own limit: the packed key's row, or the struct's.
    clim = (f"CASE WHEN kmin IS NOT NULL AND {_packs(d, 'amin')} THEN klim ELSE smin.lim END"
            if lim.lln else "blim")
    ka = f"acode = {_KEPT}"
    code_if = "CASE WHEN {c} > 0 THEN {k} ELSE -2 END"
    return f"""
sp AS (
  SELECT pidx, t, birth_day, CASE WHEN ncand > 0 THEN clim ELSE blim END AS lim, c_direct, c_dup, c_inc, c_used,
    acode,
    CASE WHEN ncand > 1 THEN ncand - 1 ELSE 0 END AS c_rep,
    ncand > 0 OR coalesce({ka}, FALSE) AS kept,
    CASE WHEN ncand > 0 THEN amin WHEN {ka} THEN {derived['anc']} END AS anc,
    CASE WHEN ncand > 0 THEN {_tier_code_sql(cuts, 'amin', 'clim', 'dcn')} WHEN {ka} THEN {derived['tier']} END AS tier,
    CASE WHEN ncand > 0 THEN dcn ELSE -1 END AS cens,
    CASE WHEN ncand > 0 THEN 0 WHEN {ka} THEN {derived['source']} END AS source,
    greatest(coalesce(maxrf, -2), coalesce(acode, -2), {code_if.format(c='c_direct', k=F['direct_anc_available'])},
             {code_if.format(c='c_dup', k=F['duplicate_component'])},
             {code_if.format(c='c_inc', k=F['incomplete_differential'])},
             {code_if.format(c='c_used', k=F['used_in_derivation'])},
             {code_if.format(c='ncand - 1', k=_REPEAT)}, {code_if.format(c='ncand', k=_KEPT)}) AS maxcode
  FROM (SELECT sa.*, CASE WHEN kmin IS NOT NULL AND {_packs(d, 'amin')}
                          THEN CAST(kmin % 8 AS INT) - 1 ELSE smin.cens END AS dcn,
               {clim} AS clim FROM sa) sb
),"""



def _known_below_sql(threshold: float) -> str:
    """SQL of ``_reduction._known_below``: the kept sample is known to be below ``threshold``."""
    x = float(threshold)
    return (f"(CASE WHEN cens = 0 THEN anc <= {x!r} WHEN cens >= 2 THEN FALSE "
            f"ELSE anc < {x!r} END)")


def _window_sql(d: _Dialect, *, index, index_window, age_range, chronic_below=None) -> str:
    """Stage 3 of :func:`_pipeline`: ``sq`` and ``w``, one window over each person's kept samples."""
    # Stage 3: one window over each person's kept samples (time is unique
    # there): the previous value and time; a running count of samples not
    # below normal, which numbers the neutropenic runs; and the lowest value
    # so far, so that the nadir is the last sample to beat it (no sort by
    # value needed).
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
    win = "PARTITION BY pidx, kept ORDER BY t"
    before = f"({win} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
    elow = ""
    if index == "nadir":
        elow = f",\n    min(CASE WHEN elig THEN anc END) OVER {before} AS elow"
    lowc = ""
    if chronic_below is not None:
        # The chronic rule's runs: numbered like the runs below normal, in the same window.
        lowc = (f",\n    sum(CASE WHEN {_known_below_sql(chronic_below)} THEN 0 ELSE 1 END) OVER ({win} ROWS "
                f"BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run_c")
    return f"""
sq AS (
  SELECT sx.*, kept AND ({in_win}) AS inwin, kept AND ({in_win}) AND ({age_ok}) AS elig
  FROM (SELECT sp.*, {d.days('t')} AS day, tier > 0 AS below FROM sp) sx
),
w AS (
  SELECT sq.*,
    lag(anc) OVER ({win}) AS prev_anc,
    lag(t) OVER ({win}) AS prev_t,
    sum(CASE WHEN tier > 0 THEN 0 ELSE 1 END) OVER ({win} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run,
    min(anc) OVER {before} AS low{elow}{lowc}
  FROM sq
),"""


#: Step codes a sample's derived ANC ("anchor" row) can end in, other than kept.
_ANCHOR_CODES = (FLAG_CODES["negative"], FLAG_CODES["implausible"], FLAG_CODES["missing_component"], FLAG_CODES["censored_component"],
                 FLAG_CODES["pct_out_of_range"], FLAG_CODES["pct_sum_over_100"], FLAG_CODES["incomplete_differential"], _TIME,
                 FLAG_CODES["no_age_limit"])
#: Per person, rows sent to a step by their sample (column: step code); summed in Python.
_SAMPLE_COUNTS = {
    "c_direct": FLAG_CODES["direct_anc_available"], "c_dup": FLAG_CODES["duplicate_component"],
    "c_inc": FLAG_CODES["incomplete_differential"], "c_used": FLAG_CODES["used_in_derivation"], "c_rep": _REPEAT,
    **{f"a{c}": c for c in _ANCHOR_CODES},
}
#: Fields of the index measurement.
_IX_FIELDS = ("anc", "tier", "cens", "source", "lim")


def _index_choice_sql(d: _Dialect, index: str) -> tuple[list[str], list[str], dict[str, str]]:
    """The index measurement in SQL: its aggregates per (person, run), per person, and the fields picked."""
    # The index: (key column, arg-min or arg-max) per candidate set.
    if index == "nadir":
        # The last eligible sample to go below every earlier eligible one.
        sets = {"ix": ("CASE WHEN elig AND (elow IS NULL OR anc < elow) THEN t END", "max")}
    else:
        sets = {"ix": ("CASE WHEN elig THEN t END", "min")}
        if index == "first_neutropenic":
            sets["ib"] = ("CASE WHEN elig AND below THEN t END", "min")
    arg = {"min": d.argmin, "max": d.argmax}
    ix1, ix2 = [], []
    for name, (key, how) in sets.items():
        ix1.append(f"{how}({key}) AS {name}_t")
        ix1 += [f"{arg[how](f, key)} AS {name}_{f}" for f in _IX_FIELDS]
        ix2.append(f"{how}({name}_t) AS {name}_t")
        ix2 += [f"{arg[how](f'{name}_{f}', f'{name}_t')} AS {name}_{f}" for f in _IX_FIELDS]
    if index == "first_neutropenic":
        pick = {f: f"CASE WHEN ib_t IS NOT NULL THEN ib_{f} ELSE ix_{f} END" for f in ("t",) + _IX_FIELDS}
    elif index == "first_confirmed":
        # ic_*: the first eligible confirming sample, from the confirmation stage (_confirmation_sql).
        pick = {f: f"CASE WHEN ic_t IS NOT NULL THEN ic_{f} ELSE ix_{f} END" for f in ("t",) + _IX_FIELDS}
    else:
        pick = {f: f"ix_{f}" for f in ("t",) + _IX_FIELDS}
    return ix1, ix2, pick


#: ``rk`` of ``e``: the number of a kept sample's run below normal (numbered in ``w``), -1 for other samples.
_RUN_KEY = "CASE WHEN kept AND below THEN run ELSE -1 END"


@dataclass(frozen=True)
class _ConfirmationSQL:
    """SQL pieces of the persistence rules (:func:`_confirmation_sql`), spliced into :func:`_reduce_sql`."""

    e_cols: str  # window columns of ``e`` (leading comma)
    g1_cols: list[str]  # aggregates per (person, run)
    g2_cols: list[str]  # aggregates per person
    ctes: str  # the chronic rule's CTEs, if any
    joins: str  # their joins to ``g2``
    chronic: str  # the chronic column


def _confirmation_sql(d: _Dialect, *, index: str, chronic_months: int, rules: Any) -> _ConfirmationSQL:
    """The persistence rules in SQL: confirmation in the main pass, the chronic rule's few runs on their own.

    Confirmation needs the first day of each run below normal (or of the
    person's first count below, with ``allow_normal``) on every sample of
    the run: a window over ``e`` (``cd0``), in the same pass as the run
    aggregates ``g1``, which take the first confirming sample of each run
    (a sample confirms when it is at least ``confirm_days`` days after that
    day) and ``g2`` the first of the person's. It was a second stage over
    the samples below normal, joined to ``g2``; Spark recomputes a CTE for
    each reader, so that stage ran the sample and window stages a second
    time (a quarter of the call at 10 million rows). With ``chronic_below``,
    its runs (numbered in ``w``) are aggregated in a stage of their own.
    """
    if rules.allow_normal:
        e_cols = ",\n    min(CASE WHEN kept AND below THEN day END) OVER (PARTITION BY pidx) AS cd0"
    else:
        # rk itself cannot be named in the SELECT that defines it.
        e_cols = f",\n    min(day) OVER (PARTITION BY pidx, {_RUN_KEY}) AS cd0"
    conf = f"rk >= 0 AND day - cd0 >= {int(rules.confirm_days)}"
    g1_cols = [f"min(CASE WHEN {conf} THEN t END) AS cf_t"]
    g2_cols = ["min(cf_t) AS cf_t"]
    if index == "first_confirmed":
        key = f"CASE WHEN {conf} AND elig THEN t END"
        g1_cols.append(f"min({key}) AS ic_t")
        g1_cols += [f"{d.argmin(f, key)} AS ic_{f}" for f in _IX_FIELDS]
        g2_cols.append("min(ic_t) AS ic_t")
        g2_cols += [f"{d.argmin(f'ic_{f}', 'ic_t')} AS ic_{f}" for f in _IX_FIELDS]
    ctes, joins, chronic = "", "", "chronic"
    if rules.chronic_below is not None:
        end = d.days(d.add_months("CAST(c_t0 AS DATE)", chronic_months))
        ctes = f"""
cc AS (
  SELECT pidx, min(t) AS c_t0, max(day) AS c_d1
  FROM e WHERE kept AND {_known_below_sql(rules.chronic_below)} GROUP BY pidx, run_c
),
ch AS (
  SELECT pidx AS ch_pidx, max(CASE WHEN c_d1 >= {end} THEN 1 ELSE 0 END) AS chronic_c FROM cc GROUP BY pidx
),"""
        joins = "LEFT JOIN ch ON ch.ch_pidx = g2.pidx"
        chronic = "coalesce(chronic_c, 0)"
    return _ConfirmationSQL(e_cols, g1_cols, g2_cols, ctes, joins, chronic)


def _reduce_sql(head: str, d: _Dialect, *, index: str, chronic_months: int, measurements: bool = False,
                rules: Any = None) -> str:
    """SQL returning one row per person (``grp = 0``) and rows per own-flag step (``grp = 1``).

    With ``measurements``, also the kept measurements (``grp = 2``: person
    and ``ix_t``, ``ix_anc``, ``ix_tier``), from the same window stage.

    Persons are aggregated in two levels — per (person, neutropenic run),
    then per person — so that runs need no second window. Every "row with
    the least key" is an arg-min over a key unique within the person (the
    sample time), never a minimum of structs, which is several times
    slower. The row stage is read twice (samples, and the count of each
    row's own flag), which the engine recomputes from the files rather than
    writing out. ``rules``: the persistence rules (``_reduction._Persistence``),
    applied in :func:`_confirmation_sql`.
    """
    from neutrostats.cohort._reduction import _Persistence

    rules = rules if rules is not None else _Persistence()
    ix1, ix2, pick = _index_choice_sql(d, index)
    conf = _confirmation_sql(d, index=index, chronic_months=chronic_months, rules=rules)
    rate = f"(prev_anc - anc) / (CAST({d.micros('t')} - {d.micros('prev_t')} AS DOUBLE) * 1000.0 / 86400e9)"
    counts1 = ",\n    ".join(
        [f"sum({c}) AS {c}" for c in _SAMPLE_COUNTS if c.startswith("c_")]
        + [f"count(CASE WHEN acode = {c} THEN 1 END) AS a{c}" for c in _ANCHOR_CODES]
    )
    counts2 = ", ".join(f"CAST(sum({c}) AS BIGINT) AS {c}" for c in _SAMPLE_COUNTS)
    chronic_end = d.days(d.add_months("CAST(run_t0 AS DATE)", chronic_months))
    sep = ",\n    "
    return f"""{head},
e AS (
  SELECT w.*, {_RUN_KEY} AS rk,
    CASE WHEN kept AND (low IS NULL OR anc < low) THEN t END AS newlow{conf.e_cols}
  FROM w
),
g1 AS (
  SELECT pidx, rk,
    count(*) AS n_samples,
    count(CASE WHEN kept THEN 1 END) AS n_meas,
    max(maxcode) AS max_s,
    max(CASE WHEN inwin THEN 1 ELSE 0 END) AS in_window,
    max(CASE WHEN elig THEN 1 ELSE 0 END) AS eligible,
    {sep.join(ix1)},
    min(CASE WHEN kept THEN anc END) AS nadir_anc,
    max(newlow) AS nadir_t,
    max(CASE WHEN kept THEN tier END) AS worst,
    max(CASE WHEN kept AND prev_t IS NOT NULL THEN {rate} END) AS steepest,
    min(t) AS run_t0, max(day) AS run_d1,
    {sep.join(conf.g1_cols)},
    {counts1}
  FROM e
  GROUP BY pidx, rk
),
g2 AS (
  SELECT pidx, sum(n_samples) AS n_samples, sum(n_meas) AS n_meas, max(max_s) AS max_s,
    max(in_window) AS in_window, max(eligible) AS eligible,
    {sep.join(ix2)},
    min(nadir_anc) AS nadir_anc, max(nadir_t) AS nadir_t,
    max(worst) AS worst, max(steepest) AS steepest,
    count(CASE WHEN rk >= 0 THEN 1 END) AS episodes,
    max(CASE WHEN rk >= 0 THEN run_d1 - {d.days('run_t0')} END) AS longest,
    max(CASE WHEN rk >= 0 AND run_d1 >= {chronic_end} THEN 1 ELSE 0 END) AS chronic,
    {sep.join(conf.g2_cols)},
    {counts2}
  FROM g1
  GROUP BY pidx
),{conf.ctes}
g3 AS (
  SELECT {d.hint(["ch"] if rules.chronic_below is not None else [])} *
  FROM g2 {conf.joins}
),
fl1 AS (
  SELECT rf, pk, count(*) AS n FROM r GROUP BY rf, pk
),
fl AS (
  SELECT rf, sum(n) AS n, count(*) AS ids FROM fl1 GROUP BY rf
)
SELECT CAST(0 AS TINYINT) AS grp, pidx, CAST(NULL AS TINYINT) AS rf, n_samples, n_meas,
  CAST(max_s AS TINYINT) AS max_s, CAST(in_window AS TINYINT) AS in_window,
  CAST(eligible AS TINYINT) AS eligible,
  {pick['t']} AS ix_t, {pick['anc']} AS ix_anc, CAST({pick['tier']} AS TINYINT) AS ix_tier,
  CAST({pick['cens']} AS TINYINT) AS ix_cens, CAST({pick['source']} AS TINYINT) AS ix_source, {pick['lim']} AS ix_lim,
  nadir_anc, nadir_t,
  CAST(worst AS TINYINT) AS worst, CAST(episodes AS INT) AS episodes, CAST(longest AS INT) AS longest,
  CAST({conf.chronic} AS TINYINT) AS chronic, steepest, cf_t AS confirmed_t, {", ".join(_SAMPLE_COUNTS)}
FROM g3
UNION ALL
SELECT CAST(1 AS TINYINT), NULL, CAST(rf AS TINYINT), n, ids, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, {", ".join("NULL" for _ in _SAMPLE_COUNTS)}
FROM fl""" + (f"""
UNION ALL
SELECT CAST(2 AS TINYINT), pidx, NULL, NULL, NULL, NULL, NULL, NULL, t, anc, CAST(tier AS TINYINT), NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, {", ".join("NULL" for _ in _SAMPLE_COUNTS)}
FROM w WHERE kept""" if measurements else "")


def reduce_labs_sql(labs, persons, births, *, engine, keep_measurements, scheme, index, age_range, index_window,
                    duffy_null, duffy_null_limit, chronic_months, person, time, value, unit, code,
                    on_unknown_unit, decimal, timezone=None, date_format=None, thousands=None,
                    unit_suspect_below=UNIT_SUSPECT_BELOW, code_map=None, persistence=None, lower_limit=None,
                    age_limits=None):
    """The SQL counterpart of ``cohort._reduce_labs``; returns a ``_LabReduction``."""
    from neutrostats.cohort._reduction import _dates

    fn = "build_cohort"
    require_choice(decimal, (".", ","), fn, "decimal")
    if isinstance(labs, pd.DataFrame) and time in labs.columns and is_text(labs[time].dtype):
        # Text times are read as pandas reads them (any format), not by the
        # engine's ISO cast, so a pandas table gives the same dates either way.
        labs = labs.assign(**{time: _dates(labs[time])})
    try:
        return _reduce(labs, persons, births, fn, engine=engine, keep_measurements=keep_measurements, scheme=scheme,
                       index=index, age_range=age_range, index_window=index_window, duffy_null=duffy_null,
                       duffy_null_limit=duffy_null_limit, chronic_months=chronic_months, person=person, time=time,
                       value=value, unit=unit, code=code, on_unknown_unit=on_unknown_unit, decimal=decimal,
                       timezone=timezone, date_format=date_format, thousands=thousands,
                       unit_suspect_below=unit_suspect_below, code_map=code_map, persistence=persistence,
                       lower_limit=lower_limit, age_limits=age_limits)
    except NeutrostatsError:
        raise
    except Exception as exc:
        # An engine error (DuckDB, Spark) carries the generated query: keep its first line only.
        if not (_from_duckdb(exc) or type(exc).__module__.startswith(("pyspark", "py4j"))):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NeutrostatsError(
            f"{fn}: the {'Spark' if 'spark' in type(exc).__module__ or 'py4j' in type(exc).__module__ else 'DuckDB'} "
            f"engine could not reduce the lab table: {first}. Check the lab files and columns; with a memory limit, "
            "give the engine more memory or a temp_directory to spill to"
        ) from None


def _reduce(labs, persons, births, fn, *, engine, **options):
    be = _backend(labs, engine, fn)
    try:
        return _reduce_on(be, labs, persons, births, fn, **options)
    finally:
        # This call's views go on success and on error: a shared session or connection keeps nothing.
        be.close()


def _reduce_on(be, labs, persons, births, fn, *, keep_measurements, scheme, index, age_range, index_window,
            duffy_null, duffy_null_limit, chronic_months, person, time, value, unit, code, on_unknown_unit, decimal,
            timezone, date_format, thousands, unit_suspect_below, code_map, persistence=None, lower_limit=None,
            age_limits=None):
    from neutrostats.cohort._reduction import _LabReduction, _Persistence, _summary_columns
    from neutrostats.labs.classify import age_limit_table

    rules = persistence if persistence is not None else _Persistence()
    long_format = _check_lab_columns(be, labs, persons, fn, person=person, time=time, value=value, unit=unit,
                                     code=code, lower_limit=lower_limit)
    be.use_columns([person, time, value, unit] + ([code] if long_format else [])
                   + ([lower_limit] if lower_limit is not None else []))
    d = be.dialect
    qc = d.quote
    src_cols = {
        "person": qc(person),
        "time": be.time_expr(time, timezone, date_format, fn),
        "value": qc(value),
        "unit": qc(unit),
        "code": qc(code) if long_format else "NULL",
    }
    if lower_limit is not None:
        src_cols["lower_limit"] = qc(lower_limit)
    value_kind = "text" if be.kind(value) in ("text", "other") else "number"
    n_persons = len(persons)
    bands = None if age_limits is None else age_limit_table(age_limits, function=fn)
    duffy, birth_sql = _register_persons(be, persons, births, scheme, fn, person=person, duffy_null=duffy_null,
                                         duffy_null_limit=duffy_null_limit, with_birth=age_range is not None
                                         or bands is not None)
    pairs, any_scaled, derive = _register_lookups(
        be, fn, long_format=long_format, value_kind=value_kind, value=value, unit=unit, code=code,
        on_unknown_unit=on_unknown_unit, decimal=decimal, thousands=thousands,
        unit_suspect_below=unit_suspect_below, code_map=code_map,
    )
    lln_kind = None
    if lower_limit is not None:
        lln_kind = "text" if be.kind(lower_limit) in ("text", "other") else "number"
        if lln_kind == "text":
            vals = be.query(f"SELECT DISTINCT CAST({qc(lower_limit)} AS {d.text}) AS v FROM ns_labs "
                            f"WHERE {qc(lower_limit)} IS NOT NULL")
            be.register("ns_limits", _value_lookup(vals["v"], decimal, thousands))
    lim_sql = _limit_sql(d, scheme, duffy=duffy, duffy_limit=duffy_null_limit, bands=bands, lln_kind=lln_kind,
                         any_scaled=any_scaled, birth=birth_sql)
    head = _pipeline(
        d, src_cols=src_cols, order=be.order, value_kind=value_kind, long_format=long_format, derive=derive,
        any_scaled=any_scaled, cuts=tuple(scheme.cuts), index=index, index_window=index_window,
        age_range=age_range, lim=lim_sql, birth=birth_sql, broadcast=tuple(be.hints),
        chronic_below=rules.chronic_below,
    )
    # At most one row per person, flow step and (if kept) measurement: the batches' sizes follow from it.
    be.n_persons, be.expected_rows = n_persons, n_persons + 64 + (int(pairs["n"].sum()) if keep_measurements else 0)
    sql = _reduce_sql(head, d, index=index, chronic_months=chronic_months, measurements=bool(keep_measurements),
                      rules=rules)
    # A pandas table is in memory already; a lazy source's result may not be.
    got = _collect_batches(be.batches(sql, spill=not isinstance(labs, pd.DataFrame)), n_persons,
                           keep_measurements=keep_measurements)
    a = got.arrays
    summary = _summary_columns(a["n_meas"], a["nadir_anc"], a["nadir_t"], a["worst"], a["episodes"],
                               a["longest"], a["chronic"], a["steepest"], a["confirmed_t"])
    return _LabReduction(
        rows_read=int(sum(got.rows_per_step.values())),
        persons_read=int(got.with_labs.sum()) + got.unknown_ids,
        steps=_flow_steps(got), n_meas=a["n_meas"], with_labs=got.with_labs,
        in_window=a["in_window"], eligible=a["eligible"],
        index=got.index, summary=summary, measurements=_kept_measurements(got.kept) if keep_measurements else None,
    )


def _check_lab_columns(be, labs, persons, fn, *, person, time, value, unit, code, lower_limit) -> bool:
    """The same checks and messages as for a pandas table, on the column names; True for a long table."""
    from neutrostats.cohort._reduction import check_lab_columns

    cols = be.columns
    # ns_rn is this call's row number, not a column of the user's table.
    names = [c for c in cols if c != "ns_rn"]
    schema = pd.DataFrame(columns=names)
    require_columns(schema, [person, time, value], fn, "Name the lab columns with person=, time= and value=.")
    if not isinstance(labs, pd.DataFrame):
        from neutrostats.cohort._reduction import _id_kind

        lab_kind, person_kind = be.kind(person), _id_kind(persons[person])
        if lab_kind != person_kind:
            raise NeutrostatsError(
                f"{fn}: person ids must have the same type in every table, found {person!r} of persons as "
                f"{person_kind} ({persons[person].dtype}) and {person!r} of labs as {lab_kind} "
                f"({cols[person]}); text '007' and the number 7 may or may not be the same person, so "
                "neutrostats does not guess: convert one of them before the call"
            )

    def temporal(column) -> str | None:
        if be.kind(column) in ("time", "timestamptz"):
            return f"dates or times ({cols[column]})"
        return f"durations ({cols[column]})" if str(cols[column]).lower().startswith("interval") else None

    return check_lab_columns(names, fn, person=person, time=time, value=value, unit=unit, code=code,
                             lower_limit=lower_limit, temporal=temporal)


def _register_persons(be, persons, births, scheme, fn, *, person, duffy_null, duffy_null_limit, with_birth):
    """The persons look-up ``ns_persons``; returns whether it has the Duffy-null flag ``dn``, and the SQL of the birth day.

    Only the key and row, and the Duffy-null flag and birth day when they
    matter (a registry's persons table is large).
    """
    from neutrostats.core.validate import require_positive
    from neutrostats.labs.classify import duffy_null_mask

    n_persons = len(persons)
    never = np.iinfo(np.int64).max
    ps = {"p": persons[person].to_numpy(), "pidx": np.arange(n_persons, dtype=np.int64)}
    birth_sql = "CAST(NULL AS BIGINT)"
    duffy = False
    if duffy_null is not None:
        require_positive(duffy_null_limit, fn, "duffy_null_limit", "cells/µL")
        dn = duffy_null_mask(persons[duffy_null], fn, duffy_null)
        if dn.any():
            # A flag, not 8 bytes of limit a person.
            ps["dn"], duffy = dn, True
    if with_birth:
        ps["birth_day"] = pd.array(np.where(births == never, 0, births), dtype="Int64")
        ps["birth_day"][births == never] = pd.NA
        birth_sql = "ps.birth_day"
    be.register("ns_persons", pd.DataFrame(ps))
    return duffy, birth_sql


def _register_lookups(be, fn, *, long_format, value_kind, value, unit, code, on_unknown_unit, decimal, thousands,
                      unit_suspect_below, code_map):
    """The look-ups of distinct (unit, code) pairs (``ns_units``) and text values (``ns_values``).

    Returns the pairs with their row counts, whether a unit needs scaling,
    and whether any sample can need a derived ANC.
    """
    d = be.dialect
    qc = d.quote
    check_separators(decimal, thousands, fn)
    below = check_suspect_below(unit_suspect_below, fn)
    cmap = None if code_map is None else read_code_map(code_map, function=fn)
    code_expr = f"coalesce(CAST({qc(code)} AS {d.text}), '')" if long_format else "''"
    u_expr = f"coalesce(CAST({qc(unit)} AS {d.text}), '')"
    if value_kind == "text":
        # The (unit, code) pairs and the distinct text values in one scan of the lab rows, not two.
        v_expr = f"CAST({qc(value)} AS {d.text})"
        both = be.query(
            f"SELECT {u_expr} AS u, {code_expr} AS c, {v_expr} AS v, count(*) AS n, grouping({v_expr}) AS gv "
            f"FROM ns_labs GROUP BY GROUPING SETS (({u_expr}, {code_expr}), ({v_expr}))"
        )
        is_pair = both["gv"].to_numpy() == 1
        pairs = both.loc[is_pair, ["u", "c", "n"]].reset_index(drop=True)
        values = both.loc[~is_pair & both["v"].notna().to_numpy(), "v"].reset_index(drop=True)
    else:
        pairs = be.query(f"SELECT {u_expr} AS u, {code_expr} AS c, count(*) AS n FROM ns_labs GROUP BY 1, 2")
    lookup, any_scaled = _unit_code_lookup(pairs, long_format, None, cmap, below)
    if long_format and len(pairs) and not (lookup["role"].to_numpy() < ROLE_CODES["other"]).any():
        by_code: dict[str, int] = {}
        for c, n in zip(pairs["c"], pairs["n"]):
            k = lab_code_key(c) if c != "" else "<missing>"
            by_code[k] = by_code.get(k, 0) + int(n)
        raise NeutrostatsError(no_known_codes_message(
            fn, code, sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0]))))
    bad = lookup["uflag"].to_numpy() == FLAG_CODES["unknown_unit"]
    if on_unknown_unit == "raise" and bad.any():
        counts = pairs.loc[bad].groupby("u")["n"].sum()
        raise NeutrostatsError(unknown_unit_message(fn, unit, {str(u): int(n) for u, n in counts.items()}))
    be.register("ns_units", lookup[["u", "c", "factor", "uflag", "role", "amb", "sus"]])
    if value_kind == "text":
        be.register("ns_values", _value_lookup(values, decimal, thousands))
    derive = long_format and bool(np.isin(lookup["role"], [1, 2, 3]).any())
    return pairs, any_scaled, derive


@dataclass
class _Collected:
    """Per-person arrays and flow counts gathered from the result batches."""

    arrays: dict[str, np.ndarray]
    index: dict[str, np.ndarray]
    with_labs: np.ndarray
    rows_per_step: dict[int, int]
    unknown_ids: int
    kept: list[pd.DataFrame]


#: Per-person result columns -> (dtype, fill value) of their arrays.
_PERSON_ARRAYS = (
    ("n_meas", np.int64, 0), ("max_s", np.int8, -1), ("in_window", bool, False), ("eligible", bool, False),
    ("nadir_anc", float, np.nan), ("nadir_t", "datetime64[ns]", np.datetime64("NaT")), ("worst", np.int8, -1),
    ("episodes", np.int64, 0), ("longest", np.int64, -1), ("chronic", bool, False), ("steepest", float, np.nan),
    ("confirmed_t", "datetime64[ns]", np.datetime64("NaT")),
)
#: Result columns of the index measurement -> field of ``_empty_index``.
_INDEX_COLUMNS = (("ix_t", "sampled_at"), ("ix_anc", "anc_per_ul"), ("ix_cens", "censor"), ("ix_source", "source"),
                  ("ix_tier", "tier"), ("ix_lim", "normal_limit_per_ul"))


def _put(target: np.ndarray, pidx: np.ndarray, values: pd.Series) -> None:
    ok = values.notna().to_numpy()
    if values.dtype.kind == "M" or target.dtype.kind == "M":
        target[pidx[ok]] = pd.to_datetime(values[ok]).to_numpy(dtype="datetime64[ns]")
    else:
        target[pidx[ok]] = values[ok].to_numpy(dtype=target.dtype)


def _collect_batches(batches, n_persons: int, *, keep_measurements) -> _Collected:
    """Fill the per-person arrays batch by batch (a registry's persons may not fit in memory twice)."""
    from neutrostats.cohort._reduction import _empty_index

    got = _Collected(
        arrays={k: np.full(n_persons, fill, dtype=dt) for k, dt, fill in _PERSON_ARRAYS},
        index=_empty_index(n_persons), with_labs=np.zeros(n_persons, dtype=bool), rows_per_step={},
        unknown_ids=0, kept=[],
    )

    def count(step: int, n: int) -> None:
        if n:
            got.rows_per_step[step] = got.rows_per_step.get(step, 0) + n

    for batch in batches:
        grp = batch["grp"].to_numpy()
        if keep_measurements:
            got.kept.append(batch.loc[grp == 2, ["pidx", "ix_t", "ix_anc", "ix_tier"]])
        # Rows with a flag of their own: rows, and distinct ids (for unknown persons).
        # The rows without a flag are a group too (rf NULL): a filter on rf would be pushed down into the
        # row stage, and Spark then generates one method too long for the JIT to compile (3x slower).
        own = batch.loc[(grp == 1) & batch["rf"].notna().to_numpy()]
        for rf, n, ids in zip(own["rf"], own["n_samples"], own["n_meas"]):
            count(int(rf), int(n))
            if rf == _UNKNOWN:
                got.unknown_ids += int(ids)
        per = batch.loc[grp == 0]
        for name, step in _SAMPLE_COUNTS.items():
            count(step, int(per[name].sum()))
        count(_KEPT, int(per["n_meas"].sum()))
        pidx = per["pidx"].to_numpy(dtype=np.int64)
        got.with_labs[pidx] = True
        for name, target in got.arrays.items():
            _put(target, pidx, per[name])
        for name, field_name in _INDEX_COLUMNS:
            _put(got.index[field_name], pidx, per[name])
        del batch, per
    return got


def _flow_steps(got: _Collected) -> list[tuple[str, int, int]]:
    """The lab flow, (description, persons, rows) per step: a person leaves at the last step that took one of their rows."""
    from neutrostats.cohort._reduction import _ROW_STEPS, _UNKNOWN_PERSONS_STEP

    n_meas, max_s = got.arrays["n_meas"], got.arrays["max_s"]
    emptied = pd.Series(max_s[got.with_labs & (n_meas == 0)]).value_counts()
    steps = [(_UNKNOWN_PERSONS_STEP, got.unknown_ids, got.rows_per_step.get(_UNKNOWN, 0))]
    for code_i, description in enumerate(_ROW_STEPS):
        if got.rows_per_step.get(code_i, 0):
            steps.append((description, int(emptied.get(code_i, 0)), got.rows_per_step[code_i]))
    return steps


def _kept_measurements(kept: list[pd.DataFrame]) -> dict[str, np.ndarray]:
    """The kept measurements, sorted by person and then time, as in memory."""
    mm = pd.concat(kept, ignore_index=True)
    p_, t_ = mm["pidx"].to_numpy(dtype=np.int64), pd.to_datetime(mm["ix_t"]).to_numpy(dtype="datetime64[ns]")
    order = np.lexsort((t_, p_))
    return {
        "pidx": p_[order], "sampled_at": t_[order],
        "anc_per_ul": mm["ix_anc"].to_numpy(dtype=float)[order],
        "tier": mm["ix_tier"].to_numpy(dtype=np.int8)[order],
    }
