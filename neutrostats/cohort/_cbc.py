"""Haemoglobin and platelets at the index sample: the cohort's cytopenia columns.

:func:`~neutrostats.build_cohort` calls :func:`index_cbc` once the index
sample of every analysed person is known. The haemoglobin (LOINC 718-7) and
platelet (777-3) rows of the lab table that belong to that sample are found

* in memory, for a pandas table (numpy), or
* by one small query of the SQL backends of :mod:`neutrostats.cohort._sql`
  (DuckDB for Parquet paths and relations, Spark for a Spark DataFrame),
  which selects only those rows at the index times (read with the same time
  rules as the lab reduction);

then both paths read, convert and decide them with the same functions of
:mod:`neutrostats.labs.cbc`, so the columns are identical.

Which rows belong to the index sample (``cbc_match``):

* ``"sample"`` (default): the same person and the same sample time stamp as
  the index ANC, the definition of one blood sample used everywhere else;
* ``"day"``: the same person and calendar day (local wall clock), for
  exports whose CBC lines carry different time stamps (e.g. result times)
  or dates only.

Several usable results of one test at the sample (or day): the lowest is
used, as for the ANC ("the lowest value at one sample time"); the others are
counted. The rows stay counted in the lab flow as "other lab tests"; what was
refused at the index sample is counted in flow notes after "persons
analysed" (table ``labs (CBC)``: rows the lab flow keeps counting as "other
lab tests").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.cohort._reduction import whole_microseconds
from neutrostats.errors import NeutrostatsError
from neutrostats.labs.cbc import (
    CBC_FLAGS,
    CBC_TESTS,
    LOINC_HEMOGLOBIN,
    LOINC_PLATELETS,
    CbcLimits,
    anemia_limits,
    below_limit,
    cbc_test_of,
    cytopenia_pattern,
    read_cbc_values,
    unknown_unit_message,
    unknown_units,
)
from neutrostats.labs.codes import lab_code_key

__all__ = ["CBC_MATCHES", "CBC_COLUMNS", "split_code_map", "index_cbc"]

#: How CBC rows are matched to the index sample.
CBC_MATCHES = ("sample", "day")
#: The columns :func:`index_cbc` adds to the cohort table, in order.
CBC_COLUMNS = ("index_hemoglobin_g_dl", "index_hemoglobin_censor", "index_platelets_10e9_l",
               "index_platelets_censor", "anemia", "thrombocytopenia", "cytopenia")
_CBC_LOINC = LOINC_HEMOGLOBIN | LOINC_PLATELETS
# The notes count lab rows that stay in the flow (as "other lab tests"): their own table name, so that they
# are not read as lab rows the flow excludes.
_NOTES_TABLE = "labs (CBC)"
_WORDS = {"hemoglobin": "haemoglobin", "platelets": "platelet"}
_REASONS = {
    "missing_value": "result empty", "non_numeric": "result not a number", "missing_unit": "unit missing",
    "unknown_unit": "unit not a unit of the test", "ambiguous_number": "ambiguous number (pass thousands=)",
    "unit_suspect": "value implausibly low for its unit", "negative": "negative value",
    "implausible": "value implausible (another unit?)",
}


def split_code_map(code_map: Any, fn: str = "build_cohort") -> tuple[Any, dict[str, str]]:
    """Split a local lab-code map into its ANC part and its haemoglobin/platelet part.

    The ANC reduction accepts only targets of ANC, WBC and differential
    codes; entries mapping to 718-7 or 777-3 are taken out for this step.

    Parameters
    ----------
    code_map : mapping, path or None
        As ``build_cohort(code_map=)``: local code -> LOINC code, or a
        two-column CSV file (local code, LOINC code, header row).

    Returns
    -------
    anc_map : mapping, path or None
        ``code_map`` unchanged when it has no CBC entry; else the other
        entries as a dict (None when there are none).
    cbc_map : dict
        Folded local code -> 718-7 or 777-3.

    Examples
    --------
    >>> split_code_map({"HGB": "718-7", "ANC": "751-8", 51265: "777-3"})
    ({'ANC': '751-8'}, {'HGB': '718-7', '51265': '777-3'})
    >>> split_code_map(None)
    (None, {})
    """
    if code_map is None:
        return None, {}
    if isinstance(code_map, (str, os.PathLike)):
        path = os.fspath(code_map)
        if not os.path.isfile(path):
            return code_map, {}  # the ANC reduction reports the missing file
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        except (ValueError, OSError, UnicodeDecodeError):
            return code_map, {}  # ... and an unreadable one
        if frame.shape[1] != 2:
            return code_map, {}
        pairs = list(zip(frame.iloc[:, 0], frame.iloc[:, 1]))
    elif isinstance(code_map, Mapping):
        pairs = list(code_map.items())
    else:
        return code_map, {}
    cbc = {lab_code_key(k): str(v).strip() for k, v in pairs if str(v).strip() in _CBC_LOINC}
    if not cbc:
        return code_map, {}
    rest = {k: v for k, v in pairs if str(v).strip() not in _CBC_LOINC}
    return (rest or None), cbc


def index_cbc(table: pd.DataFrame, labs: Any, *, normal_tier: str, cbc_map: Mapping[str, str], match: str,
              limits: CbcLimits, engine: Any, read_dates, timezone: str | None, date_format: Any, person: str,
              time: str, value: str, unit: str, code: Any, long_format: bool, decimal: str,
              thousands: str | None, on_unknown_unit: str, fn: str = "build_cohort") -> list[tuple[str, str, int]]:
    """Add the cytopenia columns to ``table`` (in place) when the labs hold haemoglobin or platelets.

    Returns the flow notes (description, table, records) of the results
    refused or not used at the index samples. A wide lab table, or a long
    one without a 718-7 or 777-3 row, adds nothing.
    """
    if not long_format or not len(table):
        return []
    if isinstance(labs, pd.DataFrame):
        rows = _rows_pandas(table, labs, cbc_map, match, read_dates, person, time, value, unit, code,
                            on_unknown_unit, fn)
    else:
        rows = _rows_sql(table, labs, cbc_map, match, engine, timezone, date_format, person, time, value, unit,
                         code, on_unknown_unit, fn)
    if rows is None:
        return []
    return _decide(table, rows, normal_tier=normal_tier, limits=limits, decimal=decimal, thousands=thousands)


def _raise_unknown(units: pd.Series, test: np.ndarray, on_unknown_unit: str, unit: str, fn: str) -> None:
    if on_unknown_unit != "raise":
        return
    unknown = unknown_units(units, test)
    if unknown:
        raise NeutrostatsError(unknown_unit_message(fn, unit, unknown))


def _rows_pandas(table, labs, cbc_map, match, read_dates, person, time, value, unit, code, on_unknown_unit, fn):
    """The CBC rows of the index samples of a pandas lab table: ``r`` (table row), ``test``, ``v``, ``u``."""
    test = cbc_test_of(labs[code], cbc_map)
    sel = np.flatnonzero(test >= 0)
    if not sel.size:
        return None
    units = labs[unit].iloc[sel] if unit in labs.columns else pd.Series([None] * sel.size, dtype=object)
    units = units.reset_index(drop=True)
    _raise_unknown(units, test[sel], on_unknown_unit, unit, fn)
    r = pd.Index(table["person_id"]).get_indexer(labs[person].iloc[sel])
    known = r >= 0
    sel, r, units = sel[known], r[known], units[known].reset_index(drop=True)
    sub = labs[time].iloc[sel].to_frame()
    try:
        t = whole_microseconds(read_dates("labs", sub, time)).to_numpy(dtype="datetime64[ns]")
    except NeutrostatsError:
        # These rows alone may leave a day/month order open that the whole column settles.
        t = whole_microseconds(read_dates("labs", labs, time)).to_numpy(dtype="datetime64[ns]")[sel]
    ix = table["index_sampled_at"].to_numpy(dtype="datetime64[ns]")[r]
    if match == "sample":
        hit = t == ix
    else:
        hit = (t.astype("datetime64[D]") == ix.astype("datetime64[D]")) & ~np.isnat(t)
    # Series, not object arrays: pandas 3 text columns factorise fast as they are (each distinct value is read once).
    pos = sel[hit]
    return {"r": r[hit], "test": test[pos], "v": labs[value].iloc[pos].reset_index(drop=True),
            "u": units[hit].reset_index(drop=True)}


def _rows_sql(table, labs, cbc_map, match, engine, timezone, date_format, person, time, value, unit, code,
              on_unknown_unit, fn):
    """The same rows from a lazy source: one query selecting the 718-7/777-3 rows at the index times."""
    from neutrostats.cohort._sql import _backend, _from_duckdb

    be = _backend(labs, engine, fn)
    try:
        return _query_rows(be, table, cbc_map, match, timezone, date_format, person, time, value, unit, code,
                           on_unknown_unit, fn)
    except NeutrostatsError:
        raise
    except Exception as exc:
        if not (_from_duckdb(exc) or type(exc).__module__.startswith(("pyspark", "py4j"))):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NeutrostatsError(f"{fn}: the engine could not read the haemoglobin and platelet rows: {first}") from None
    finally:
        be.close()


def _query_rows(be, table, cbc_map, match, timezone, date_format, person, time, value, unit, code,
                on_unknown_unit, fn):
    d = be.dialect
    q = d.quote
    if code not in be.columns or unit not in be.columns:
        return None
    be.use_columns([person, time, value, unit, code])
    codes = be.query(f"SELECT DISTINCT CAST({q(code)} AS {d.text}) AS c FROM ns_labs WHERE {q(code)} IS NOT NULL")
    raw = codes["c"].astype(object)
    test_of_raw = cbc_test_of(raw, cbc_map)
    wanted = [str(c) for c, t in zip(raw, test_of_raw) if t >= 0]
    if not wanted:
        return None
    listing = ", ".join("'" + c.replace("'", "''") + "'" for c in wanted)
    code_text = f"CAST({q(code)} AS {d.text})"
    pairs = be.query(f"SELECT CAST({q(unit)} AS {d.text}) AS u, {code_text} AS c, count(*) AS n FROM ns_labs "
                     f"WHERE {code_text} IN ({listing}) GROUP BY 1, 2")
    if on_unknown_unit == "raise":
        expanded = pairs.loc[pairs.index.repeat(pairs["n"].to_numpy(dtype=np.int64))]
        _raise_unknown(expanded["u"].astype(object).reset_index(drop=True), cbc_test_of(expanded["c"], cbc_map),
                       on_unknown_unit, unit, fn)
    ix = table["index_sampled_at"].to_numpy(dtype="datetime64[ns]")
    ok = ~np.isnat(ix)
    lookup = pd.DataFrame({
        "p": table["person_id"].to_numpy()[ok],
        "r": np.flatnonzero(ok).astype(np.int64),
        # Whole microseconds and days since 1970, compared as integers on every engine.
        "us": ix[ok].astype("datetime64[us]").astype(np.int64),
        "day": ix[ok].astype("datetime64[D]").astype(np.int64),
    })
    # The backends look their look-ups up by these names (a DuckDB relation through its replacement scan).
    be.register("ns_persons", lookup)
    t_expr = be.time_expr(time, timezone, date_format, fn)
    number = be.kind(value) == "number"
    v_expr = f"CAST(s.v AS DOUBLE)" if number else f"CAST(s.v AS {d.text})"
    on = f"{d.micros('s.t')} = ps.us" if match == "sample" else f"{d.days('s.t')} = ps.day"
    hint = d.hint(["ps"])
    got = be.query(
        f"SELECT {hint} ps.r AS r, s.c AS c, {v_expr} AS v, CAST(s.u AS {d.text}) AS u "
        f"FROM (SELECT {q(person)} AS p, {t_expr} AS t, {q(value)} AS v, {q(unit)} AS u, {code_text} AS c "
        f"FROM ns_labs WHERE {code_text} IN ({listing})) s "
        f"JOIN ns_persons ps ON ps.p = s.p AND {on}"
    )
    return {"r": got["r"].to_numpy(dtype=np.int64), "test": cbc_test_of(got["c"], cbc_map),
            "v": got["v"].astype(float) if number else got["v"], "u": got["u"]}


def _decide(table: pd.DataFrame, rows: dict[str, Any], *, normal_tier: str, limits: CbcLimits, decimal: str,
            thousands: str | None) -> list[tuple[str, str, int]]:
    """Read the matched rows, keep the lowest usable one per person and test, add the columns; return notes."""
    n = len(table)
    test = np.asarray(rows["test"], dtype=np.int8)
    read = read_cbc_values(rows["v"], rows["u"], test, decimal=decimal, thousands=thousands)
    val = read["value"].to_numpy()
    cens = read["censor"].cat.codes.to_numpy()
    flag = read["flag"].cat.codes.to_numpy()
    r = np.asarray(rows["r"], dtype=np.int64)
    notes: list[tuple[str, str, int]] = []
    out: dict[str, Any] = {}
    for i, name in enumerate(CBC_TESTS):
        mine = test == i
        usable = np.flatnonzero(mine & (flag < 0))
        # The lowest bound first, exact before censored at an equal bound: the same choice on every engine.
        order = usable[np.lexsort((cens[usable], val[usable], r[usable]))]
        first = np.ones(order.size, dtype=bool)
        first[1:] = r[order][1:] != r[order][:-1]
        chosen = order[first]
        v = np.full(n, np.nan)
        c = np.full(n, -1, dtype=np.int8)
        v[r[chosen]] = val[chosen]
        c[r[chosen]] = cens[chosen]
        out[name] = (v, c)
        word = _WORDS[name]
        for code_i, flag_name in enumerate(CBC_FLAGS):
            k = int((mine & (flag == code_i)).sum())
            notes.append((f"{word} results at the index sample: {_REASONS[flag_name]} (not used)", _NOTES_TABLE, k))
        notes.append((f"repeat {word} results at the index sample (lowest used)", _NOTES_TABLE, int((~first).sum())))
    from neutrostats.labs.classify import CENSOR_DTYPE

    hb, hb_c = out["hemoglobin"]
    pl, pl_c = out["platelets"]
    lo, hi = anemia_limits(table["age_at_index"].to_numpy(dtype=float, na_value=np.nan),
                           limits.sex_codes(table["sex"]), limits)
    anemia = below_limit(hb, hb_c, lo, hi)
    thrombo = below_limit(pl, pl_c, limits.platelets_below, limits.platelets_below)
    tier = table["tier"].cat
    neutropenic = np.append(np.asarray(tier.categories != normal_tier), False)[tier.codes.to_numpy()]
    table["index_hemoglobin_g_dl"] = hb
    table["index_hemoglobin_censor"] = pd.Categorical.from_codes(hb_c, dtype=CENSOR_DTYPE)
    table["index_platelets_10e9_l"] = pl
    table["index_platelets_censor"] = pd.Categorical.from_codes(pl_c, dtype=CENSOR_DTYPE)
    table["anemia"] = anemia
    table["thrombocytopenia"] = thrombo
    table["cytopenia"] = cytopenia_pattern(neutropenic, anemia, thrombo)
    return notes
