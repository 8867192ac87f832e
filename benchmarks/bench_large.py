"""Out-of-core lab reduction: neutrostats' generated SQL vs a hand-written DuckDB query.

Reduces a large Parquet lab table (written by ``make_large_labs.py``) to one
row per person twice, each in a fresh subprocess so that its peak resident
memory is its own:

* ``neutrostats``: the SQL path of :func:`neutrostats.build_cohort`
  (``_sql.reduce_labs_sql``: unit normalisation, value parsing, ANC
  derivation, classification with every flag counted, one measurement per
  sample time, the index and the per-person summaries);
* ``hand-written``: one DuckDB query written for this data layout doing the
  same reduction (parse, units, derivation from the first WBC / neutrophil %
  / band % of a sample without a direct ANC, tiers with the Duffy limit,
  lowest value per sample time, first measurement, nadir, worst tier,
  episodes, chronic runs, steepest decline), without the per-flag flow
  counts.

Both run with the same DuckDB settings (``--memory-limit``, 2 threads, a temp
directory for spilling) and return a pandas result.

Usage::

    python benchmarks/make_large_labs.py --rows 100_000_000 --out /work/large
    python benchmarks/bench_large.py --data /work/large --memory-limit 1GB
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

HAND_SQL = r"""
WITH labs AS (
  SELECT l.person_id, l.sampled_at AS t, l.code, l.value, lower(replace(replace(l.unit, ' ', ''), 'µ', 'u')) AS u,
         p.birth_date, coalesce(p.duffy_null, false) AS duffy,
         (CAST(list_position({files}, l.filename) AS BIGINT) << 40) + l.file_row_number AS rn
  FROM read_parquet({files}, filename = true, file_row_number = true) l
  JOIN persons p USING (person_id)
),
parsed AS (
  SELECT *,
    regexp_extract(value, '^\s*(<=|>=|<|>)?\s*([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*$', ['op', 'num']) AS m,
    CASE WHEN u IN ('cells/ul', '/ul', 'cells/mm3', '/mm3', 'cells/mm³') THEN 1.0
         WHEN u IN ('10^9/l', '10*9/l', 'x10^9/l', '10e9/l', 'g/l', 'k/ul', '10^3/ul', '10*3/ul', 'x10e3/ul',
                    'thou/ul', '10^3/mm3') THEN 1000.0 END AS factor,
    CASE WHEN code IN ('751-8', '753-4', '26499-4') THEN 0 WHEN code IN ('770-8', '26511-6', '26505-8') THEN 1
         WHEN code IN ('764-1', '26508-2', '35332-6') THEN 2 WHEN code IN ('6690-2', '26464-8') THEN 3 END AS role
  FROM labs
),
vals AS (
  SELECT person_id, t, rn, role, factor, birth_date, duffy, m.op AS op, TRY_CAST(m.num AS DOUBLE) AS x FROM parsed
),
direct AS (
  SELECT person_id, t, rn, birth_date, duffy, round_even(x * factor, 6) AS anc, op
  FROM vals WHERE role = 0 AND x IS NOT NULL AND factor IS NOT NULL
),
keys AS (
  SELECT person_id, t, any_value(birth_date) AS birth_date, any_value(duffy) AS duffy,
    bool_or(role = 0) AS has_direct,
    arg_min(x * factor, rn) FILTER (WHERE role = 3) AS wbc,
    arg_min(op, rn) FILTER (WHERE role = 3) AS wop,
    arg_min(x, rn) FILTER (WHERE role = 1) AS neut,
    arg_min(op, rn) FILTER (WHERE role = 1) AS nop,
    arg_min(x, rn) FILTER (WHERE role = 2) AS band,
    arg_min(op, rn) FILTER (WHERE role = 2) AS bop,
    min(rn) FILTER (WHERE role = 1) AS nrn
  FROM vals WHERE role IS NOT NULL GROUP BY person_id, t
),
derived AS (
  SELECT person_id, t, nrn AS rn, birth_date, duffy, round_even(wbc * (neut + coalesce(band, 0)) / 100.0, 6) AS anc,
         '' AS op
  FROM keys
  WHERE NOT has_direct AND wbc IS NOT NULL AND neut IS NOT NULL AND wbc >= 0
    AND coalesce(wop, '') = '' AND coalesce(nop, '') = '' AND coalesce(bop, '') = ''
    AND neut BETWEEN 0 AND 100 AND coalesce(band, 0) BETWEEN 0 AND 100 AND neut + coalesce(band, 0) <= 100
),
meas AS (
  SELECT *, CASE WHEN duffy THEN 1200.0 ELSE 1800.0 END AS lim FROM (SELECT * FROM direct UNION ALL SELECT * FROM derived)
  WHERE anc >= 0 AND anc <= 100000 AND t IS NOT NULL
),
tiered AS (
  SELECT *,
    CASE WHEN op = '' OR op IS NULL THEN
           CASE WHEN anc >= lim THEN 0 WHEN anc >= 1500 THEN 1 WHEN anc >= 1000 THEN 2 ELSE 3 END
         WHEN op = '<' AND anc <= 1000 THEN 3
         WHEN op = '<=' AND anc < 1000 THEN 3
         WHEN op IN ('>', '>=') AND anc >= lim THEN 0 END AS tier
  FROM meas
),
one AS (
  SELECT person_id, t, arg_min(tier, (anc, rn)) AS tier, min(anc) AS anc, any_value(birth_date) AS birth_date
  FROM tiered WHERE tier IS NOT NULL GROUP BY person_id, t
),
w AS (
  SELECT *, tier > 0 AS below,
    lag(anc) OVER p AS prev_anc, lag(t) OVER p AS prev_t, lag(tier) OVER p AS prev_tier, lead(tier) OVER p AS next_tier,
    sum(CASE WHEN tier > 0 THEN 0 ELSE 1 END) OVER (p ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
  FROM one WINDOW p AS (PARTITION BY person_id ORDER BY t)
),
runs AS (
  SELECT person_id, count(*) AS episodes, max(last_day - first_day) AS longest,
         bool_or(last_day >= CAST(first_day + INTERVAL 3 MONTH AS DATE)) AS chronic
  FROM (SELECT person_id, run, CAST(min(t) AS DATE) AS first_day, CAST(max(t) AS DATE) AS last_day
        FROM w WHERE below GROUP BY person_id, run)
  GROUP BY person_id
)
SELECT a.*, coalesce(r.episodes, 0) AS episodes, r.longest, coalesce(r.chronic, false) AS chronic
FROM (
  SELECT person_id, count(*) AS n_anc_tests, min(t) AS index_t, arg_min(anc, t) AS index_anc,
         arg_min(tier, t) AS index_tier, min(anc) AS nadir, arg_min(t, (anc, t)) AS nadir_t, max(tier) AS worst,
         max((prev_anc - anc) / (epoch_us(t) - epoch_us(prev_t)) * 86400e6) AS steepest
  FROM w GROUP BY person_id
) a LEFT JOIN runs r USING (person_id)
"""


def run_child(which: str, data: str, memory_limit: str) -> None:
    """Run one side and print a JSON line (time, rows, persons, peak RSS)."""
    import duckdb
    import numpy as np
    import pandas as pd

    tmp = Path(data) / "duckdb_tmp"
    tmp.mkdir(exist_ok=True)
    con = duckdb.connect(config={"memory_limit": memory_limit, "threads": 2, "temp_directory": str(tmp)})
    t0 = time.perf_counter()
    persons = pd.read_parquet(Path(data) / "persons.parquet", columns=["person_id", "birth_date", "duffy_null"])
    files = sorted(str(p) for p in (Path(data) / "labs").glob("*.parquet"))
    if which == "neutrostats":
        from neutrostats.cohort._sql import reduce_labs_sql
        from neutrostats.cohort._reduction import _dates, _days
        from neutrostats.labs.classify import get_scheme

        births = _days(_dates(persons["birth_date"]))
        red = reduce_labs_sql(
            str(Path(data) / "labs" / "*.parquet"), persons, births, engine=con, keep_measurements=False,
            scheme=get_scheme("andersen2016"), index="first", age_range=None, index_window=None,
            duffy_null="duffy_null", duffy_null_limit=1200.0, chronic_months=3, person="person_id",
            time="sampled_at", value="value", unit="unit", code="code", on_unknown_unit="raise", decimal=".",
        )
        rows, n_out = red.rows_read, int((~np.isnat(red.index["sampled_at"])).sum())
    else:
        con.register("persons", persons)
        listing = "[" + ", ".join("'" + f + "'" for f in files) + "]"
        out = con.sql(HAND_SQL.format(files=listing)).df()
        rows, n_out = None, len(out)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"which": which, "seconds": seconds, "rows": rows, "persons_out": n_out, "peak_rss_mb": peak}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder written by make_large_labs.py")
    ap.add_argument("--memory-limit", default="1GB", help="DuckDB memory_limit for both sides")
    ap.add_argument("--child", choices=["neutrostats", "hand-written"], help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(HERE / "results" / "large.json"))
    args = ap.parse_args(argv)
    if args.child:
        run_child(args.child, args.data, args.memory_limit)
        return 0
    manifest = json.loads((Path(args.data) / "manifest.json").read_text())
    results = {}
    for which in ("hand-written", "neutrostats"):
        proc = subprocess.run(
            [sys.executable, __file__, "--data", args.data, "--memory-limit", args.memory_limit, "--child", which],
            capture_output=True, text=True, check=True,
        )
        results[which] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(results[which], file=sys.stderr)
    ns, hand = results["neutrostats"], results["hand-written"]
    report = {
        "benchmark": "out-of-core lab reduction, Parquet -> one row per person (DuckDB)",
        "lab_rows": manifest.get("rows"),
        "persons": manifest.get("persons"),
        "duckdb_memory_limit": args.memory_limit,
        "threads": 2,
        "neutrostats": ns,
        "hand_written_sql": hand,
        "ratio_time": ns["seconds"] / hand["seconds"],
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
