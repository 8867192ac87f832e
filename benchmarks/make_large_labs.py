"""Write a large synthetic lab table as Parquet, chunk by chunk, in little memory.

Every chunk is a cohort of its own from
:func:`neutrostats.synthetic.generate_cohort` (``persons_per_chunk`` persons,
seed ``seed + chunk_index``); person ids are shifted by the number of persons
written before it, so ids run 1..N without gaps across chunks. Chunks are
generated until the requested number of lab rows is reached; the last chunk is
cut after the person whose rows reach the request (whole persons only), so the
total is the request plus at most one person's rows less one. The exact total
is in the manifest. Nothing is re-used: every chunk is freshly generated
(about 3.5 s for 200,000 persons / 1.6 million lab rows at
``mean_extra_cbcs=15`` on a 2-core machine, so 100 million rows take about
4-5 minutes).

Run from the repository root::

    python benchmarks/make_large_labs.py --rows 100_000_000 --out /work/large
    python benchmarks/make_large_labs.py --rows 2_000_000 --out /tmp/large_small

Writes into ``--out``:

* ``labs/part-00000.parquet``, ``part-00001.parquet``, ... -- one file per
  chunk: ``person_id`` int64, ``sampled_at`` timestamp[ns] (minute
  resolution), ``code``, ``value``, ``unit`` strings exactly as
  generate_cohort exports them (Parquet dictionary-encoded);
* ``persons.parquet``, ``diagnoses.parquet``, ``deaths.parquet`` -- all
  persons / diagnoses / deaths of the same chunks, written incrementally with
  one ``pyarrow.parquet.ParquetWriter`` each (the generator makes them anyway;
  writing them costs a few per cent and makes the folder a complete input
  for ``neutrostats report``). The truth ``index`` table is not written;
* ``manifest.json`` -- rows, persons, chunks, seeds, arguments, seconds, peak
  RSS, file sizes, the Parquet schemas and the generator's version. It is
  written last: a folder without it is incomplete.

Row groups hold about ``--row-group-rows`` (1,000,000) rows: a chunk's lab
rows are split into equal row groups of at most that many rows; the other
tables are buffered and written in row groups of exactly that many rows (the
last one smaller). Progress lines go to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from neutrostats import synthetic  # noqa: E402
from neutrostats.synthetic import DEFAULT_SEED, generate_cohort  # noqa: E402
from _timing import peak_rss_mb, rss_mb  # noqa: E402

#: Arrow schemas of the written tables: the dtypes generate_cohort makes
#: (object string columns become Parquet UTF-8 strings, datetime64[ns] stays ns).
# Microseconds: Spark 4 cannot read Parquet TIMESTAMP(NANOS) (PARQUET_TYPE_ILLEGAL); the times are
# whole seconds anyway, so nothing is truncated.
SCHEMAS = {
    "labs": pa.schema([
        ("person_id", pa.int64()), ("sampled_at", pa.timestamp("us")),
        ("code", pa.string()), ("value", pa.string()), ("unit", pa.string()),
    ]),
    "persons": pa.schema([
        ("person_id", pa.int64()), ("sex", pa.string()), ("birth_date", pa.timestamp("us")),
        ("duffy_null", pa.bool_()), ("entry_date", pa.timestamp("us")), ("end_of_data", pa.timestamp("us")),
    ]),
    "diagnoses": pa.schema([
        ("person_id", pa.int64()), ("diagnosed_at", pa.timestamp("us")), ("code", pa.string()),
    ]),
    "deaths": pa.schema([("person_id", pa.int64()), ("died_at", pa.timestamp("us"))]),
}
SIDE_TABLES = ("persons", "diagnoses", "deaths")


def _to_arrow(df: pd.DataFrame, name: str) -> pa.Table:
    return pa.Table.from_pandas(df, schema=SCHEMAS[name], preserve_index=False)


class _BufferedWriter:
    """ParquetWriter that emits row groups of exactly ``group_rows`` rows (last one smaller)."""

    def __init__(self, path: Path, name: str, group_rows: int, compression: str):
        self.group_rows = group_rows
        self.parts: list[pa.Table] = []
        self.buffered = 0
        self.rows = 0
        self.writer: pq.ParquetWriter | None = None
        self.path, self.name, self.compression = path, name, compression

    def write(self, table: pa.Table) -> None:
        self.parts.append(table)
        self.buffered += table.num_rows
        self.rows += table.num_rows
        if self.buffered >= self.group_rows:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if self.writer is None:
            # Opened on first use so the schema carries generate_cohort's pandas metadata.
            self.writer = pq.ParquetWriter(self.path, self.parts[0].schema if self.parts else SCHEMAS[self.name],
                                           compression=self.compression)
        if not self.parts:
            return
        table = pa.concat_tables(self.parts)
        whole = table.num_rows if final else table.num_rows - table.num_rows % self.group_rows
        if whole:
            self.writer.write_table(table.slice(0, whole), row_group_size=self.group_rows)
        rest = table.slice(whole)
        self.parts = [rest] if rest.num_rows else []
        self.buffered = rest.num_rows

    def close(self) -> None:
        self._flush(final=True)
        self.writer.close()


def _version_info() -> dict:
    # The generator is the synthetic package: hash its modules in name order.
    sources = sorted(Path(synthetic.__file__).parent.glob("*.py"))
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "generator": "neutrostats.synthetic.generate_cohort",
        "neutrostats": metadata.version("neutrostats"),
        "synthetic_sha256": hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest(),
        "git_commit": commit,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def _prepare(out: Path, overwrite: bool) -> None:
    labs = out / "labs"
    ours = sorted(labs.glob("part-*.parquet")) if labs.is_dir() else []
    ours += [p for p in (out / f"{t}.parquet" for t in SIDE_TABLES) if p.exists()]
    ours += [p for p in [out / "manifest.json"] if p.exists()]
    if ours and not overwrite:
        sys.exit(f"make_large_labs: {out} already holds output ({ours[0].name}, ...); "
                 "pass --overwrite to replace it or choose another --out")
    for p in ours:
        p.unlink()
    labs.mkdir(parents=True, exist_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, required=True, help="lab rows wanted (at least), e.g. 100_000_000")
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    parser.add_argument("--persons-per-chunk", type=int, default=200_000)
    parser.add_argument("--mean-extra-cbcs", type=float, default=15.0,
                        help="generate_cohort assumption; 15 gives about 8 lab rows per person")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="chunk i uses seed + i")
    parser.add_argument("--row-group-rows", type=int, default=1_000_000)
    parser.add_argument("--compression", choices=("zstd", "snappy"), default="zstd")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete this script's earlier output in --out first")
    args = parser.parse_args()
    if args.rows < 1 or args.persons_per_chunk < 1 or args.row_group_rows < 1 or args.seed < 0:
        parser.error("--rows, --persons-per-chunk and --row-group-rows must be positive, --seed >= 0")

    out = Path(args.out)
    _prepare(out, args.overwrite)
    t0 = time.perf_counter()
    gen_seconds = write_seconds = 0.0
    side = {t: _BufferedWriter(out / f"{t}.parquet", t, args.row_group_rows, args.compression) for t in SIDE_TABLES}
    chunks: list[dict] = []
    rows = persons = 0
    estimate = None
    while rows < args.rows:
        i = len(chunks)
        seed = args.seed + i
        t = time.perf_counter()
        cohort = generate_cohort(n_persons=args.persons_per_chunk, seed=seed,
                                 mean_extra_cbcs=args.mean_extra_cbcs, progress=False)
        gen_seconds += time.perf_counter() - t

        t = time.perf_counter()
        tables = {"labs": cohort.labs, "persons": cohort.persons, "diagnoses": cohort.diagnoses,
                  "deaths": cohort.deaths}
        del cohort
        generated_rows = len(tables["labs"])
        need = args.rows - rows
        trimmed = generated_rows > need
        if trimmed:
            # Labs are sorted by person_id: keep whole persons up to the one holding row `need`.
            last = int(tables["labs"]["person_id"].iloc[need - 1])
            tables = {k: v[v["person_id"] <= last] for k, v in tables.items()}
        for df in tables.values():
            df["person_id"] += persons  # ids 1..n per chunk -> unique across chunks
        labs = _to_arrow(tables["labs"], "labs")
        n_groups = max(1, math.ceil(labs.num_rows / args.row_group_rows))
        path = out / "labs" / f"part-{i:05d}.parquet"
        pq.write_table(labs, path, compression=args.compression,
                       row_group_size=math.ceil(labs.num_rows / n_groups))
        for name in SIDE_TABLES:
            side[name].write(_to_arrow(tables[name], name))
        chunk = {
            "index": i, "seed": seed, "file": str(path.relative_to(out)),
            "persons": len(tables["persons"]), "lab_rows": labs.num_rows,
            "generated_persons": args.persons_per_chunk, "generated_lab_rows": generated_rows,
            "trimmed": trimmed, "first_person_id": persons + 1,
            "last_person_id": persons + len(tables["persons"]),
            "diagnoses": len(tables["diagnoses"]), "deaths": len(tables["deaths"]),
        }
        chunks.append(chunk)
        rows += labs.num_rows
        persons += len(tables["persons"])
        del tables, labs
        write_seconds += time.perf_counter() - t
        if estimate is None:
            estimate = max(1, math.ceil(args.rows / max(generated_rows, 1)))
        elapsed = time.perf_counter() - t0
        print(f"chunk {i + 1}/~{max(estimate, i + 1)}: {rows:,} lab rows ({100 * min(rows / args.rows, 1):.0f}%), "
              f"{persons:,} persons, {elapsed:.0f} s elapsed, RSS {rss_mb():.0f} MB (peak {peak_rss_mb():.0f})",
              file=sys.stderr, flush=True)

    for w in side.values():
        w.close()
    seconds = time.perf_counter() - t0
    files = {str(p.relative_to(out)): p.stat().st_size
             for p in sorted(out.glob("labs/part-*.parquet")) + [out / f"{t}.parquet" for t in SIDE_TABLES]}
    manifest = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "script": "benchmarks/make_large_labs.py",
        "mode": "generated",
        "mode_note": "every chunk freshly generated by generate_cohort with seed + chunk index; "
                     "no chunk re-used or copied",
        "requested_rows": args.rows,
        "rows": rows,
        "persons": persons,
        "diagnoses": side["diagnoses"].rows,
        "deaths": side["deaths"].rows,
        "chunks": len(chunks),
        "seed": args.seed,
        "chunk_seeds": [c["seed"] for c in chunks],
        "persons_per_chunk": args.persons_per_chunk,
        "last_chunk": "cut to whole persons: total rows = requested + at most one person's rows - 1",
        "assumptions": {"mean_extra_cbcs": args.mean_extra_cbcs, "others": "DEFAULT_ASSUMPTIONS"},
        "arguments": vars(args),
        "seconds": round(seconds, 2),
        "seconds_generate": round(gen_seconds, 2),
        "seconds_convert_and_write": round(write_seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_source": "resource.getrusage(RUSAGE_SELF).ru_maxrss of this process",
        "files": files,
        "total_bytes": sum(files.values()),
        "parquet": {
            "compression": args.compression,
            "row_group_rows": args.row_group_rows,
            "row_groups": "labs: each part split into equal row groups of at most row_group_rows; "
                          "persons/diagnoses/deaths: row groups of exactly row_group_rows, last smaller",
            "dictionary_encoding": "pyarrow default (on for every column)",
            "schemas": {name: SCHEMAS[name].to_string(show_schema_metadata=False).splitlines()
                        for name in SCHEMAS},
        },
        "versions": _version_info(),
        "chunk_details": chunks,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"{rows:,} lab rows, {persons:,} persons, {len(chunks)} chunks in {seconds:.0f} s "
          f"(generate {gen_seconds:.0f} s, write {write_seconds:.0f} s); "
          f"{sum(files.values()) / 2**20:,.0f} MiB on disk; peak RSS {peak_rss_mb():.0f} MB -> {out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
