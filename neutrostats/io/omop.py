"""Read an OMOP CDM v5.4 extract into the tables :func:`~neutrostats.build_cohort` reads.

:func:`read_omop` takes MEASUREMENT, PERSON, CONDITION_OCCURRENCE, DEATH and
OBSERVATION_PERIOD from a folder of CSV or Parquet files or from a DuckDB
database, and returns :class:`OmopData`: long-format labs (LOINC codes),
persons, ICD-10 diagnoses and deaths, with an attrition table that counts
every row not passed on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.io.export import ExportData
from neutrostats.core.validate import is_text
from neutrostats.labs.codes import LOINC_ROLES
from neutrostats.cohort.icd10 import ICD10_CODE_PATTERN, normalize_icd10
from neutrostats.errors import NeutrostatsError

__all__ = ["OmopData", "read_omop", "OMOP_MEASUREMENT_CONCEPTS", "OMOP_UNIT_CONCEPTS", "OMOP_OPERATOR_CONCEPTS",
           "OMOP_GENDER_CONCEPTS"]

#: Measurement concept id -> LOINC code: the OMOP standard concepts of LOINC
#: 751-8, 26499-4, 753-4, 6690-2 and 26464-8 (not confirmed against a
#: vocabulary release: check them in your CONCEPT table, see read_omop).
OMOP_MEASUREMENT_CONCEPTS: Mapping[int, str] = MappingProxyType(
    {3013650: "751-8", 3017732: "26499-4", 3017501: "753-4", 3000905: "6690-2", 3010813: "26464-8"}
)
#: Unit concept id -> unit, used when ``unit_source_value`` is empty (?).
OMOP_UNIT_CONCEPTS: Mapping[int, str] = MappingProxyType({8848: "10^3/uL", 8647: "/uL", 9444: "10^9/L", 8554: "%"})
#: Operator concept id -> prefix of ``value_as_number`` (?); "=" adds none.
OMOP_OPERATOR_CONCEPTS: Mapping[int, str] = MappingProxyType(
    {4171756: "<", 4171754: "<=", 4172703: "=", 4172704: ">", 4171755: ">="}
)
#: Gender concept id -> sex; other concepts give NA.
OMOP_GENDER_CONCEPTS: Mapping[int, str] = MappingProxyType({8507: "M", 8532: "F"})

_FN = "read_omop"
_EXTS = (".csv.gz", ".csv", ".parquet")
# Per table: groups of columns of which at least one must exist (row by row
# the first non-empty one wins), then optional columns.
_TABLES = {
    "measurement": ([("person_id",), ("measurement_concept_id",), ("measurement_datetime", "measurement_date"),
                     ("value_as_number", "value_source_value"), ("unit_source_value", "unit_concept_id")],
                    ("measurement_source_value", "operator_concept_id")),
    "person": ([("person_id",), ("gender_concept_id",), ("birth_datetime", "year_of_birth")],
               ("month_of_birth", "day_of_birth")),
    "condition_occurrence": ([("person_id",), ("condition_start_date", "condition_start_datetime"),
                              ("condition_source_value",)], ()),
    "death": ([("person_id",), ("death_date", "death_datetime")], ()),
    "observation_period": ([("person_id",), ("observation_period_end_date",)], ()),
}
_REQUIRED = ("measurement", "person", "condition_occurrence")
_ATTRITION = ["description", "table", "excluded_persons", "excluded_lab_rows", "excluded_records", "persons",
              "lab_rows"]
_INT_TEXT = re.compile(r"-?(0|[1-9][0-9]{0,17})")  # fits in int64


class OmopData(ExportData):
    """Result of :func:`read_omop`; ``labs``, ``persons``, ``diagnoses`` and
    ``deaths`` are the inputs of :func:`~neutrostats.build_cohort`, ``attrition``
    counts the OMOP rows not passed on, ``settings`` holds the maps and rules
    used (JSON-serialisable). Columns are listed in :func:`read_omop`; the
    methods (``build_cohort``, ``_repr_html_``) are those of the shared
    :class:`neutrostats.io.export.ExportData`."""


def read_omop(source: Any, *, schema: str | None = None, end_of_data: Any = None,
              concept_map: dict | None = None, unit_concept_map: dict | None = None) -> OmopData:
    """Read an OMOP CDM v5.4 extract as labs, persons, diagnoses and deaths.

    Parameters
    ----------
    source : str, path or duckdb.DuckDBPyConnection
        A folder of ``<table>.csv``, ``.csv.gz`` or ``.parquet`` files (names
        in any case), a DuckDB database file (opened read-only) or an open
        DuckDB connection. Only the needed columns are read; CSV cells are
        read as text, so ids such as ``"0001"`` and codes keep their
        spelling.
    schema : str, optional
        DuckDB: the schema holding the tables (default: the current one).
    end_of_data : date, optional
        End of data for persons without an observation period (everyone
        when OBSERVATION_PERIOD is absent).
    concept_map, unit_concept_map : dict, optional
        Measurement concept id -> LOINC code (``None`` drops a default) and
        unit concept id -> unit, added to :data:`OMOP_MEASUREMENT_CONCEPTS`
        and :data:`OMOP_UNIT_CONCEPTS`.

    Returns
    -------
    OmopData
        ``labs``, one row per mapped MEASUREMENT row in table order:
        ``person_id``; ``sampled_at`` (``measurement_datetime``, else
        ``measurement_date``); ``code`` (LOINC); ``value`` (``value_as_number``
        as text that reads back exactly, e.g. ``"1.5"``, after its operator,
        e.g. ``"<0.5"``; else ``value_source_value`` as written; else ``""``);
        ``unit`` (``unit_source_value``, else the unit concept's, else NA).
        ``persons``: ``person_id``, ``sex`` ("M", "F", NA), ``birth_date``,
        ``end_of_data``. ``diagnoses``: ``person_id``, ``diagnosed_at``
        (``condition_start_date``, else ``condition_start_datetime``),
        ``code`` (``condition_source_value``, stripped). ``deaths``:
        ``person_id``, ``died_at`` (empty without DEATH). Times are
        datetime64[ns]; ``person_id`` is int64 when every id is a plainly
        written integer, else text.
        ``attrition`` (columns of ``Cohort.attrition``: ``step``,
        ``description``, ``table``, ``excluded_persons``,
        ``excluded_lab_rows``, ``excluded_records``, ``persons``,
        ``lab_rows``): measurement rows read, without a person_id (if any),
        unmapped (what remains is build_cohort's "lab rows read"), then rows
        of the other tables not passed on. ``settings``: maps and rules.

    Raises
    ------
    NeutrostatsError
        If ``source`` is not a folder, DuckDB file or connection, a required
        table (MEASUREMENT, PERSON, CONDITION_OCCURRENCE) or column is
        missing (the message lists what was found), a file cannot be read,
        duckdb or pyarrow is needed but missing, or a map is invalid.

    Notes
    -----
    A MEASUREMENT row is a lab row when its ``measurement_concept_id`` is in
    the concept map, else when its stripped ``measurement_source_value`` is
    a code of :data:`neutrostats.labs.codes.LOINC_ROLES` (ANC, WBC, neutrophil
    and band %); other rows are counted as unmapped. The default concept,
    unit and operator ids are not confirmed against a vocabulary release:
    check them against your vocabulary's CONCEPT table (OHDSI Athena [2]_)
    and extend the maps. A
    mapped row is never dropped: an unusable value or unit is flagged by
    :func:`~neutrostats.classify_anc`.

    Birth date: ``birth_datetime``, else year, month and day of birth with a
    missing month read as July 1 and a missing day as the 15th (mid-period);
    no year gives NaT. End of data: the person's latest
    ``observation_period_end_date``; else ``end_of_data``; without both, the
    latest measurement, condition or death date of the extract
    (``settings["end_of_data"]`` says which). A condition source value not
    shaped like ICD-10 (a letter, a digit, then 1-5 characters; dots
    ignored) is unmapped. Dates outside 1677-2262 become NaT. Rows without
    a person_id and repeat PERSON rows (the first is kept) are counted.

    See Also
    --------
    neutrostats.build_cohort : the cohort from the four tables.
    read_mimic_iv, read_fhir : the other export readers.

    References
    ----------
    .. [1] OHDSI. OMOP Common Data Model v5.4.
       https://ohdsi.github.io/CommonDataModel/cdm54.html
    .. [2] OHDSI. Athena, the standardized vocabularies.
       https://athena.ohdsi.org

    Examples
    --------
    >>> import pathlib, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = pathlib.Path(tmp.name)
    >>> _ = (d / "PERSON.csv").write_text("person_id,gender_concept_id,year_of_birth,month_of_birth\\n1,8532,1950,3\\n")
    >>> _ = (d / "measurement.csv").write_text(
    ...     "person_id,measurement_concept_id,measurement_date,value_as_number,unit_concept_id\\n"
    ...     "1,3013650,2010-01-05,1.2,8848\\n1,3000963,2010-01-05,13.5,8713\\n")
    >>> _ = (d / "condition_occurrence.csv").write_text(
    ...     "person_id,condition_start_date,condition_source_value\\n1,2012-02-01,C92.0\\n")
    >>> omop = read_omop(d, end_of_data="2016-12-31")
    >>> omop.labs
       person_id sampled_at   code value     unit
    0          1 2010-01-05  751-8   1.2  10^3/uL
    >>> omop.persons
       person_id sex birth_date end_of_data
    0          1   F 1950-03-15  2016-12-31
    >>> omop.build_cohort(outcomes={"aml": ["C92.0"]}).table[["person_id", "tier", "aml"]]
       person_id  tier   aml
    0          1  mild  True
    >>> tmp.cleanup()
    """
    cmap = _id_map(OMOP_MEASUREMENT_CONCEPTS, concept_map, "concept_map", loinc=True)
    umap = _id_map(OMOP_UNIT_CONCEPTS, unit_concept_map, "unit_concept_map", loinc=False)
    fixed_end = None
    if end_of_data is not None:
        fixed_end = pd.to_datetime(pd.Series([end_of_data]), errors="coerce").astype("datetime64[ns]").iloc[0]
        if pd.isna(fixed_end):
            raise NeutrostatsError(f"{_FN}: end_of_data must be a date such as '2020-12-31', found {end_of_data!r}")
    src, owned = _open(source, schema)
    try:
        missing = [t for t in _REQUIRED if t not in src.tables]
        if missing:
            raise NeutrostatsError(f"{_FN}: required table(s) {', '.join(t.upper() for t in missing)} not found in "
                                   f"{src.where(missing)}. Export them from the CDM (v5.4) next to the other tables")
        raw = {t: _read(src, t) for t in _TABLES}
    finally:
        if owned is not None:
            owned.close()
    ids, no_id = _person_ids({t: df["person_id"] for t, df in raw.items() if df is not None})
    m, p, c, d, o = (raw[t] for t in _TABLES)

    labs, flow, m_when = _omop_labs(m, ids["measurement"], no_id["measurement"], cmap, umap)
    persons, notes = _omop_persons(p, ids["person"], no_id["person"])
    diagnoses, c_notes, c_when = _omop_diagnoses(c, ids["condition_occurrence"], no_id["condition_occurrence"])
    deaths, d_notes, d_when = _omop_deaths(d, ids, no_id)
    end, rule, date, o_notes = _omop_end_of_data(o, persons, ids, no_id, fixed_end, (m_when, c_when, d_when))
    notes += c_notes + d_notes + o_notes
    persons["end_of_data"] = end.to_numpy()

    # Records-only rows carry the lab counts of the last flow step, so the chain holds.
    flow += [(desc, table, 0, 0, n, *flow[-1][-2:]) for desc, table, n in notes if n or "unmapped" in desc]
    attrition = pd.DataFrame(flow, columns=_ATTRITION)
    attrition.insert(0, "step", np.arange(len(attrition)))
    settings = {
        "tables": {t: src.label(t) for t, df in raw.items() if df is not None},
        "concept_map": {str(k): v for k, v in sorted(cmap.items())},
        "unit_concept_map": {str(k): v for k, v in sorted(umap.items())},
        "operator_concept_map": {str(k): v for k, v in OMOP_OPERATOR_CONCEPTS.items()},
        "gender_concept_map": {str(k): v for k, v in OMOP_GENDER_CONCEPTS.items()},
        "measurement_source_value": "a LOINC code of neutrostats.labs.codes.LOINC_ROLES maps when the concept does not",
        "birth_date": "birth_datetime, else year/month/day_of_birth; missing month: July 1, missing day: the 15th",
        "end_of_data": {"rule": ", else ".join(rule), "date": None if date is None else str(date.date())},
    }
    return OmopData(labs=labs, persons=persons, diagnoses=diagnoses, deaths=deaths, attrition=attrition,
                    settings=settings)


def _omop_labs(m, m_ids, m_no_id, cmap, umap):
    """MEASUREMENT -> labs, with the lab flow (rows read, without an id, unmapped) and every row's date."""
    # MEASUREMENT: the lab flow; what remains is build_cohort's "lab rows read".
    concept = _lookup(m["measurement_concept_id"], lambda v: cmap.get(_int(v)))
    loinc = _lookup(m["measurement_source_value"], lambda v: v.strip() if isinstance(v, str) and v.strip() in
                    LOINC_ROLES else None)
    code = np.where(pd.isna(concept), loinc, concept)
    has_id = ~m_no_id
    mapped = has_id & ~pd.isna(code)
    n_read, n_id, n_mapped = len(m), int(has_id.sum()), int(mapped.sum())
    p_read, p_mapped = pd.unique(m_ids[has_id]).size, pd.unique(m_ids[mapped]).size
    flow = [("measurement rows read", "measurement", 0, 0, 0, p_read, n_read)]
    if n_id < n_read:
        flow.append(("measurement rows without a person_id (data error)", "measurement", 0, n_read - n_id,
                     n_read - n_id, p_read, n_id))
    flow.append(("measurement rows not an ANC, WBC or differential concept or LOINC code (unmapped)", "measurement",
                 p_read - p_mapped, n_id - n_mapped, n_id - n_mapped, p_mapped, n_mapped))

    mm = m.loc[mapped]
    number = _lookup(mm["value_as_number"], _number_text)
    has_number = ~pd.isna(number)
    # "=" is no censoring, and the classifier reads a bare number.
    ops = {k: "" if v == "=" else v for k, v in OMOP_OPERATOR_CONCEPTS.items()}
    prefix = _lookup(mm["operator_concept_id"], lambda v: ops.get(_int(v), ""))
    with_op = prefix + np.where(has_number, number, "").astype(object)
    as_written = _lookup(mm["value_source_value"], lambda v: "" if _blank(v) else str(v))
    unit = _lookup(mm["unit_source_value"], lambda v: None if _blank(v) else str(v))
    unit = np.where(pd.isna(unit), _lookup(mm["unit_concept_id"], lambda v: umap.get(_int(v))), unit)
    m_when = _first_date(m, ("measurement_datetime", "measurement_date"))
    labs = pd.DataFrame({"person_id": m_ids[mapped], "sampled_at": m_when[mapped].to_numpy(), "code": code[mapped],
                         "value": np.where(has_number, with_op, as_written), "unit": unit})
    return labs, flow, m_when


def _omop_persons(p, p_ids, p_no_id):
    """PERSON -> persons (without end of data), with the counts of rows not passed on."""
    # PERSON: one row per person.
    p_keep = ~p_no_id
    repeat = np.zeros(len(p), dtype=bool)
    repeat[p_keep] = pd.Series(p_ids[p_keep]).duplicated().to_numpy()
    notes = [("person rows without a person_id (ignored)", "persons", int((~p_keep).sum())),
             ("repeat person rows of a person_id (first kept)", "persons", int(repeat.sum()))]
    p_keep &= ~repeat
    year, month, day = (_num(p[col]) for col in ("year_of_birth", "month_of_birth", "day_of_birth"))
    built = pd.to_datetime(pd.DataFrame({"year": year, "month": np.where(np.isnan(month), 7, month),
                                         "day": np.where(np.isnan(month), 1, np.where(np.isnan(day), 15, day))}),
                           errors="coerce").astype("datetime64[ns]")
    birth = _dt(p["birth_datetime"]).fillna(built)
    sex = _lookup(p["gender_concept_id"], lambda v: OMOP_GENDER_CONCEPTS.get(_int(v)))
    persons = pd.DataFrame({"person_id": p_ids[p_keep], "sex": sex[p_keep],
                            "birth_date": birth[p_keep].to_numpy()})
    return persons, notes


def _omop_diagnoses(c, c_ids, c_no_id):
    """CONDITION_OCCURRENCE -> diagnoses, with the counts of rows not passed on and every row's date."""
    # CONDITION_OCCURRENCE: rows with an ICD-10 source value.
    c_keep = ~c_no_id
    icd = _lookup(c["condition_source_value"],
                  lambda v: not _blank(v) and bool(ICD10_CODE_PATTERN.match(normalize_icd10(v) or ""))).astype(bool)
    notes = [("condition_occurrence rows without a person_id (ignored)", "diagnoses", int((~c_keep).sum())),
             ("condition_occurrence rows without an ICD-10 source value (unmapped)", "diagnoses",
              int((c_keep & ~icd).sum()))]
    c_keep &= icd
    c_when = _first_date(c, ("condition_start_date", "condition_start_datetime"))
    diagnoses = pd.DataFrame({"person_id": c_ids[c_keep],
                              "diagnosed_at": c_when[c_keep].to_numpy(),
                              "code": _lookup(c["condition_source_value"], lambda v: str(v).strip())[c_keep]})
    return diagnoses, notes, c_when


def _omop_deaths(d, ids, no_id):
    """DEATH (optional) -> deaths, with the count of rows without a person id."""
    notes = []
    d_when = pd.Series([], dtype="datetime64[ns]")
    deaths = pd.DataFrame({"person_id": ids["person"][:0], "died_at": d_when})
    if d is not None:
        d_keep = ~no_id["death"]
        notes.append(("death rows without a person_id (ignored)", "deaths", int((~d_keep).sum())))
        d_when = _first_date(d, ("death_date", "death_datetime"))
        deaths = pd.DataFrame({"person_id": ids["death"][d_keep], "died_at": d_when[d_keep].to_numpy()})
    return deaths, notes, d_when


def _omop_end_of_data(o, persons, ids, no_id, fixed_end, dates):
    """Each person's end of data: observation periods, then the argument, then the extract's last event."""
    notes = []
    end = pd.Series(pd.NaT, index=range(len(persons)), dtype="datetime64[ns]")
    rule, date = [], None
    if o is not None:
        o_keep = ~no_id["observation_period"]
        notes.append(("observation_period rows without a person_id (ignored)", "persons", int((~o_keep).sum())))
        last = _dt(o["observation_period_end_date"])[o_keep].groupby(ids["observation_period"][o_keep]).max()
        end = pd.Series(last.reindex(persons["person_id"]).to_numpy(), dtype="datetime64[ns]")
        rule.append("latest observation_period_end_date")
    if fixed_end is not None:
        end, date = end.fillna(fixed_end), fixed_end
        rule.append("end_of_data argument")
    elif o is None:
        latest = pd.concat(list(dates)).max()
        if not pd.isna(latest):
            date = latest.normalize()
            end = end.fillna(date)
        rule.append("latest date in the extract")
    return end, rule, date, notes


def _blank(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    return isinstance(v, str) and not v.strip()


def _int(v: Any) -> int | None:
    """A concept id as int; None when missing or not an integer."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return int(f) if f.is_integer() else None


def _number_text(v: Any) -> str | None:
    """The shortest text that reads back as the same number (float32 stays float32: 1.2, not 1.2000000476)."""
    if _blank(v):
        return None
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            return v.strip()  # not a number: passed on for the classifier to flag
    if isinstance(v, (float, np.floating)) and np.isfinite(v):
        return np.format_float_positional(v, trim="-")
    return str(v)


def _lookup(s: pd.Series, f) -> np.ndarray:
    """``f`` of each distinct value (missing: f(None)), as an object array: codes repeat over millions of rows."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    out = np.empty(len(uniques) + 1, dtype=object)
    out[:] = [f(u) for u in uniques] + [f(None)]
    return out[codes]


def _num(s: pd.Series) -> np.ndarray:
    if is_text(s.dtype):
        s = s.astype("string").str.strip().replace("", pd.NA)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _dt(s: pd.Series) -> pd.Series:
    """Naive timestamps in ns; NaT for anything that is not an ISO date."""
    if is_text(s.dtype):
        t = s.astype("string").str.strip()
        out = pd.to_datetime(t.mask(t == ""), format="ISO8601", errors="coerce")
    else:
        out = pd.to_datetime(s, errors="coerce")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    # build_cohort counts days in datetime64[ns]: a far-future date would overflow it.
    out = out.where((out >= pd.Timestamp.min) & (out <= pd.Timestamp.max))
    return out.astype("datetime64[ns]").reset_index(drop=True)


def _first_date(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    out = _dt(df[columns[0]])
    for col in columns[1:]:
        out = out.fillna(_dt(df[col]))
    return out


def _person_ids(columns: dict[str, pd.Series]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Ids of all tables in one type, so they join: int64 when every id is a plainly written integer, else text."""
    ids, missing, plain = {}, {}, True
    for t, s in columns.items():
        if is_text(s.dtype) or (pd.api.types.is_float_dtype(s.dtype) and (s.dropna() % 1 != 0).any()):
            s = s.astype("string").str.strip().replace("", pd.NA)
            plain &= bool(s.dropna().str.fullmatch(_INT_TEXT.pattern).all())
        ids[t], missing[t] = s, s.isna().to_numpy(dtype=bool)
    out = {}
    for t, s in ids.items():
        ok = ~missing[t]
        if plain:
            out[t] = np.zeros(len(s), dtype=np.int64)
            out[t][ok] = pd.to_numeric(s[ok]).astype(np.int64)
        else:
            out[t] = np.full(len(s), None, dtype=object)
            out[t][ok] = (s[ok] if isinstance(s.dtype, pd.StringDtype) else s[ok].astype(np.int64)).astype(str)
    return out, missing


def _id_map(defaults: dict, extra: Any, name: str, loinc: bool) -> dict[int, str]:
    out = dict(defaults)
    if extra is not None and not isinstance(extra, dict):
        raise NeutrostatsError(f"{_FN}: {name} must be a dict of concept id -> code, found {type(extra).__name__}")
    for k, v in (extra or {}).items():
        ok = isinstance(v, str) and v.strip() and (not loinc or v.strip() in LOINC_ROLES)
        if _int(k) is None or not (ok or (loinc and v is None)):
            want = (f"a LOINC code neutrostats uses ({', '.join(sorted(LOINC_ROLES))}) or None to drop a default"
                    if loinc else "a unit such as '10^9/L'")
            raise NeutrostatsError(f"{_FN}: {name} must map integer concept ids to {want}; found {k!r}: {v!r}. "
                                   "Fix or remove that entry")
        if v is None:
            out.pop(_int(k), None)
        else:
            out[_int(k)] = v.strip()
    return out


class _Folder:
    def __init__(self, path: Path) -> None:
        self.path, self.tables = path, {}
        names = sorted(f.name for f in path.iterdir())
        self.found = names[:40] + (["..."] if len(names) > 40 else [])
        for name in names:
            ext = next((e for e in _EXTS if name.lower().endswith(e)), None)
            table = name.lower()[: -len(ext)] if ext and (path / name).is_file() else None
            if table in self.tables:
                raise NeutrostatsError(f"{_FN}: folder {str(path)!r} holds table {table} twice "
                                       f"({self.tables[table].name} and {name}); keep one of the files")
            if table:
                self.tables[table] = path / name

    def where(self, tables: list[str]) -> str:
        return (f"folder {str(self.path)!r}; expected files named like {', '.join(t + '.csv' for t in tables)} "
                f"(or .csv.gz, .parquet; any case), found files {self.found}")

    def label(self, table: str) -> str:
        return self.tables[table].name

    def columns(self, table: str) -> list[str]:
        path = self.tables[table]
        if path.name.lower().endswith(".parquet"):
            return list(_parquet().read_schema(path).names)
        return [str(col) for col in pd.read_csv(path, nrows=0).columns]

    def read(self, table: str, columns: list[str]) -> pd.DataFrame:
        path = self.tables[table]
        if path.name.lower().endswith(".parquet"):
            return pd.read_parquet(path, columns=columns)
        return pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False, na_filter=False)[columns]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _DuckDB:
    def __init__(self, con: Any, schema: str | None, name: str) -> None:
        self.con, self.name = con, name
        self.schema = schema or con.execute("SELECT current_schema()").fetchone()[0]
        rows = con.execute("SELECT table_catalog, table_schema, table_name FROM information_schema.tables "
                           "WHERE table_catalog = current_database() ORDER BY 2, 3").fetchall()
        self.found = [f"{s}.{t}" for _, s, t in rows[:40]] + (["..."] if len(rows) > 40 else [])
        # Catalog-qualified: a database file named like the schema makes "schema.table" ambiguous.
        self.tables = {t.lower(): (c, s, t) for c, s, t in rows if s.lower() == self.schema.lower()}

    def where(self, tables: list[str]) -> str:
        return (f"DuckDB database {self.name}; expected tables {', '.join(tables)} (any case) in schema "
                f"{self.schema!r}, found tables {self.found}; name the schema of the CDM tables with schema=")

    def label(self, table: str) -> str:
        return ".".join(self.tables[table][1:])

    def columns(self, table: str) -> list[str]:
        name = ".".join(map(_quote, self.tables[table]))
        return [col[0] for col in self.con.execute(f"SELECT * FROM {name} LIMIT 0").description]

    def read(self, table: str, columns: list[str]) -> pd.DataFrame:
        name = ".".join(map(_quote, self.tables[table]))
        return self.con.execute(f"SELECT {', '.join(map(_quote, columns))} FROM {name}").df()


def _parquet():
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise NeutrostatsError(f"{_FN}: reading Parquet needs pyarrow, a dependency of neutrostats that cannot be "
                               f"imported here ({exc}); reinstall it (pip install --force-reinstall 'pyarrow>=14') "
                               "or export the tables as CSV") from None
    return pq


def _open(source: Any, schema: str | None):
    """(tables, connection to close or None); duckdb is imported only for a database."""
    path = Path(source) if isinstance(source, (str, os.PathLike)) else None
    wrong_type = NeutrostatsError(f"{_FN}: source must be a folder, a DuckDB database file or a duckdb connection, "
                                  f"found {type(source).__name__}")
    if path is not None and path.is_dir():
        if schema is not None:
            raise NeutrostatsError(f"{_FN}: schema= applies to DuckDB databases; {str(path)!r} is a folder")
        return _Folder(path), None
    if path is not None and not path.exists():
        raise NeutrostatsError(f"{_FN}: source {str(path)!r} not found; pass a folder of OMOP CDM tables "
                               "(CSV or Parquet), a DuckDB database file or a duckdb connection")
    if path is not None and path.name.lower().endswith(_EXTS):
        raise NeutrostatsError(f"{_FN}: source {str(path)!r} is one table; pass the folder that holds "
                               "measurement, person and condition_occurrence")
    try:
        import duckdb
    except ImportError as exc:
        if path is None:
            raise wrong_type from None
        raise NeutrostatsError(f"{_FN}: reading the DuckDB database {str(path)!r} needs duckdb, a dependency of "
                               f"neutrostats that cannot be imported here ({exc}); reinstall it (pip install "
                               "--force-reinstall 'duckdb>=1.1') or export the tables as CSV or Parquet files "
                               "into a folder") from None
    if path is None:
        if not isinstance(source, duckdb.DuckDBPyConnection):
            raise wrong_type
        return _DuckDB(source, schema, "(connection)"), None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise NeutrostatsError(f"{_FN}: could not open {str(path)!r} as a DuckDB database ({exc}); pass a "
                               "DuckDB file or a folder of CSV or Parquet tables") from None
    try:
        return _DuckDB(con, schema, repr(path.name)), con
    except BaseException:
        con.close()
        raise


def _read(src: Any, table: str) -> pd.DataFrame | None:
    """The table's needed columns, named in lower case; absent optional columns are all missing."""
    if table not in src.tables:
        return None
    groups, optional = _TABLES[table]
    wanted = [col for g in groups for col in g] + list(optional)
    try:
        found = src.columns(table)
        by_lower = {col.lower(): col for col in found}
        for g in groups:
            if not any(col in by_lower for col in g):
                raise NeutrostatsError(
                    f"{_FN}: table {table.upper()} ({src.label(table)}) has no column {' or '.join(g)}; expected "
                    f"the OMOP CDM v5.4 columns {wanted}, found {found}. Rename the columns to their CDM names")
        have = [col for col in wanted if col in by_lower]
        df = src.read(table, [by_lower[col] for col in have])
    except NeutrostatsError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise NeutrostatsError(f"{_FN}: could not read table {table.upper()} ({src.label(table)}): {exc}") from None
    df.columns = have
    df = df.reset_index(drop=True)
    for col in wanted:
        if col not in df.columns:
            df[col] = pd.Series([None] * len(df), dtype=object)
    return df
