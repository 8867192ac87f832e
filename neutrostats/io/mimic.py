"""Read the MIMIC-IV ``hosp`` module into the tables :func:`~neutrostats.build_cohort` reads.

:func:`read_mimic_iv` takes ``patients``, ``labevents``, ``diagnoses_icd`` and
``admissions`` (v2.x and later) from a folder of CSV (``.csv``, ``.csv.gz``)
or Parquet files and returns :class:`MimicData`: long-format labs (blood
differential item ids mapped to LOINC codes), persons, ICD-10 diagnoses and
deaths, with an attrition table that counts every row not passed on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.io.export import ExportData, attrition_table, fixed_end_of_data
from neutrostats.labs.codes import LOINC_ROLES, MIMIC_IV_LAB_CODES
from neutrostats.errors import NeutrostatsError
from neutrostats.io.omop import _blank, _lookup, _number_text

__all__ = ["MimicData", "read_mimic_iv"]

_FN = "read_mimic_iv"
_EXTS = (".csv.gz", ".csv", ".parquet")
# Per table: required columns, then optional ones (all missing when absent).
_TABLES = {
    "labevents": (("subject_id", "itemid", "charttime", "value", "valuenum", "valueuom"), ("ref_range_lower",)),
    "patients": (("subject_id", "gender", "anchor_age", "anchor_year"), ("dod",)),
    "admissions": (("subject_id", "hadm_id", "admittime", "dischtime"), ()),
    "diagnoses_icd": (("subject_id", "hadm_id", "icd_code", "icd_version"), ()),
}
_TIMES = ("charttime", "dod", "admittime", "dischtime")
# Ids are read as BIGINT under short names; a non-integer id counts as missing.
_ID_ALIAS = {"subject_id": "sid", "itemid": "item", "hadm_id": "hadm"}
#: anchor_age above this is MIMIC's top code (91 = "older than 89"): the true age is unknown.
_TOP_CODED_AGE = 89


class MimicData(ExportData):
    """Result of :func:`read_mimic_iv`: ``labs``, ``persons``, ``diagnoses``,
    ``deaths`` (inputs of :func:`~neutrostats.build_cohort`), ``attrition``
    and ``settings``; columns are listed in :func:`read_mimic_iv`."""


def read_mimic_iv(folder: Any, *, end_of_data: Any = None, item_map: dict | None = None,
                  diagnosis_time: str = "admittime") -> MimicData:
    """Read the MIMIC-IV ``hosp`` module as labs, persons, diagnoses and deaths.

    MIMIC-IV dates are shifted into the future (2100-2200), by a different
    amount for each patient: only intervals within a patient are real, so
    calendar windows (``index_window``) and calendar-year covariates mean
    nothing, while ages, follow-up and times to events are right.

    Parameters
    ----------
    folder : str or path
        The folder holding ``patients``, ``labevents``, ``diagnoses_icd`` and
        ``admissions`` as ``.csv.gz``, ``.csv`` or ``.parquet`` (file names in
        any case), or a folder with them in a ``hosp/`` subfolder. Only the
        needed columns are read (by DuckDB); CSV cells are read as text.
    end_of_data : date, dict or Series, optional
        One date for every patient, or dates by ``subject_id`` (patients not
        named get the default rule). Default: see Notes.
    item_map : dict, optional
        ``labevents.itemid`` -> LOINC code (``None`` drops a default), added
        to :data:`neutrostats.labs.codes.MIMIC_IV_LAB_CODES`.
    diagnosis_time : {"admittime", "dischtime"}, default "admittime"
        Which time of the admission dates its ICD codes (see Notes).

    Returns
    -------
    MimicData
        ``labs``, one row per ``labevents`` row of a mapped item id, in file
        order: ``person_id`` (``subject_id``, int64); ``sampled_at``
        (``charttime``, naive datetime64[ns]); ``code`` (the LOINC code of the
        item id); ``value`` (``value`` as written, e.g. ``"<0.1"``,
        ``"clotted"``; where it is empty, ``valuenum`` as text; else ``""``);
        ``unit`` (``valueuom``, NA when empty); ``ref_range_lower`` (float,
        the lab's lower limit). ``persons``: ``person_id``, ``sex``
        (``gender`` "M"/"F", else NA), ``birth_date``, ``end_of_data``.
        ``diagnoses``: ``person_id``, ``diagnosed_at`` (the admission's
        ``diagnosis_time``), ``code`` (``icd_code`` as written, stripped,
        undotted). ``deaths``: ``person_id``, ``died_at`` (``dod``). Times
        are naive datetime64[ns].
        ``attrition`` (columns of ``Cohort.attrition``): labevents rows
        read, without a subject_id (if any), not a mapped item id
        (unmapped; what remains is build_cohort's "lab rows read"), then the
        rows of the other tables not passed on. ``settings``: maps, files
        and rules.

    Raises
    ------
    NeutrostatsError
        If ``folder`` is not a folder, a table or column is missing (the
        message lists what was found), a file cannot be read, a time column
        carries a time zone (MIMIC-IV times are naive), or an argument is
        invalid.

    Notes
    -----
    Birth date: MIMIC-IV gives ``anchor_age``, the age in the (shifted)
    ``anchor_year``, and mimic-code computes the age at a time as
    ``anchor_age + year - anchor_year``, i.e. a birth year of ``anchor_year
    - anchor_age``. The birth date is July 1 of that year (mid-year, so
    ages are within half a year). ``anchor_age`` over 89 is MIMIC's top code
    (91 for everyone older than 89): the true age is unknown, so the birth
    date is left missing and counted (``age_range`` then excludes them;
    without it they stay in the cohort with an unknown age).

    Diagnoses: ``diagnoses_icd`` has no date; an ICD-10 row
    (``icd_version`` 10) is dated by its admission (same ``subject_id`` and
    ``hadm_id``). The codes are billed for the whole stay, and many
    describe conditions present on admission, so by default they are dated
    at ``admittime``: a code of the stay in which the index sample was
    taken is then prevalent, not a new outcome caused after the sample.
    ``diagnosis_time="dischtime"`` dates them at discharge instead. ICD-9
    rows are counted as unmapped (no maintained ICD-9 to ICD-10 map is
    shipped); rows without a matching admission are counted.

    End of data (default): the later of the patient's last ``dischtime``
    and last ``charttime`` (any item id), as a day; when ``dod`` is later
    (MIMIC-IV records deaths up to a year after the last discharge), the
    day of death. A patient with none of these has none (build_cohort
    counts it).

    Labs: item ids of :data:`neutrostats.labs.codes.MIMIC_IV_LAB_CODES` (52075
    ANC, 51256 neutrophils %, 51144 bands %, 51300/51301/51755 WBC, all
    from the mimic-code ``blood_differential`` concept) are kept; a kept row
    is never dropped: an unusable value is flagged by
    :func:`~neutrostats.classify_anc`. Repeat ``patients`` rows of a
    subject_id (the first is kept), rows without a subject_id, and values
    that are not dates or numbers where one is expected are counted.

    See Also
    --------
    neutrostats.build_cohort : the cohort from the four tables.
    read_omop, read_fhir : the other export readers.

    References
    ----------
    .. [1] Johnson AEW, Bulgarelli L, Shen L, et al. MIMIC-IV, a freely
       accessible electronic health record dataset. Sci Data 2023;10:1.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = pathlib.Path(tmp.name)
    >>> _ = (d / "patients.csv").write_text("subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod\\n"
    ...                                     "10,F,60,2150,2008 - 2010,\\n")
    >>> _ = (d / "admissions.csv").write_text("subject_id,hadm_id,admittime,dischtime\\n"
    ...     "10,100,2150-03-01 10:00:00,2150-03-05 12:00:00\\n10,101,2152-06-01 08:00:00,2152-06-03 09:00:00\\n")
    >>> _ = (d / "labevents.csv").write_text(
    ...     "labevent_id,subject_id,hadm_id,itemid,charttime,value,valuenum,valueuom,ref_range_lower\\n"
    ...     "1,10,100,52075,2150-03-02 06:00:00,1.2,1.2,K/uL,1.8\\n"
    ...     "2,10,100,51222,2150-03-02 06:00:00,13.5,13.5,g/dL,12\\n")
    >>> _ = (d / "diagnoses_icd.csv").write_text("subject_id,hadm_id,seq_num,icd_code,icd_version\\n"
    ...                                          "10,101,1,C920,10\\n10,100,2,2851,9\\n")
    >>> mimic = read_mimic_iv(d)
    >>> mimic.labs
       person_id          sampled_at   code value  unit  ref_range_lower
    0         10 2150-03-02 06:00:00  751-8   1.2  K/uL              1.8
    >>> mimic.persons
       person_id sex birth_date end_of_data
    0         10   F 2090-07-01  2152-06-03
    >>> mimic.build_cohort(outcomes={"aml": ["C92.0"]}).table[["person_id", "tier", "aml"]]
       person_id  tier   aml
    0         10  mild  True
    >>> tmp.cleanup()
    """
    imap = _item_map(item_map)
    if diagnosis_time not in ("admittime", "dischtime"):
        raise NeutrostatsError(f"{_FN}: diagnosis_time must be 'admittime' or 'dischtime', found {diagnosis_time!r}")
    fixed_end, end_by_id = fixed_end_of_data(end_of_data, _FN)
    files = _find(folder)
    import duckdb

    con = duckdb.connect()
    try:
        for table, path in files.items():
            _view(con, table, path)
        lab_flow, last_lab = _lab_counts(con, imap)
        m = _select(con, "labevents", f"sid IS NOT NULL AND item IN ({', '.join(map(str, imap))})" if imap
                    else "false")
        p, a, dx = (_select(con, t) for t in ("patients", "admissions", "diagnoses_icd"))
    except duckdb.Error as exc:
        raise NeutrostatsError(f"{_FN}: could not read the MIMIC-IV files in {str(files['labevents'].parent)!r}: "
                               f"{str(exc).splitlines()[0]}. Check that they are the hosp module's CSV or "
                               "Parquet files") from None
    finally:
        con.close()

    labs, flow, notes = _mimic_labs(m, lab_flow, imap)
    persons, deaths, p_notes = _mimic_patients(p)
    by_key, last_disch, a_notes = _mimic_admissions(a, diagnosis_time)
    diagnoses, d_notes = _mimic_diagnoses(dx, by_key)
    notes += p_notes + a_notes + d_notes
    end, rule = _mimic_end_of_data(persons["person_id"].to_numpy(), deaths, last_disch, last_lab, fixed_end,
                                   end_by_id)
    persons["end_of_data"] = end.to_numpy()

    settings = {
        "tables": {t: str(path.relative_to(Path(folder))) for t, path in files.items()},
        "item_map": {str(k): v for k, v in sorted(imap.items())},
        "birth_date": "July 1 of anchor_year - anchor_age; anchor_age over 89 (top-coded 91): missing",
        "diagnosis_time": diagnosis_time,
        "dates": "shifted per patient by MIMIC-IV: only intervals within a patient are real",
        "end_of_data": {"rule": rule, "date": None if fixed_end is None else str(fixed_end.date())},
    }
    return MimicData(labs=labs, persons=persons, diagnoses=diagnoses, deaths=deaths,
                     attrition=attrition_table(flow, notes), settings=settings)


def _mimic_labs(m, lab_flow, imap):
    """labevents -> labs, with the lab flow and the counts of values passed on without a time or limit."""
    # The lab flow; what remains is build_cohort's "lab rows read".
    n_read, n_id, n_mapped, p_read, p_mapped = lab_flow
    flow = [("labevents rows read", "labevents", 0, 0, 0, p_read, n_read)]
    if n_id < n_read:
        flow.append(("labevents rows without a subject_id (data error)", "labevents", 0, n_read - n_id,
                     n_read - n_id, p_read, n_id))
    flow.append(("labevents rows not a blood differential item id (unmapped)", "labevents", p_read - p_mapped,
                 n_id - n_mapped, n_id - n_mapped, p_mapped, n_mapped))
    notes: list[tuple[str, str, int]] = []
    sampled, bad_time = _times(m, "charttime")
    notes.append(("labevents rows kept whose charttime is not a time (passed on without one)", "labs",
                  int(bad_time.sum())))
    value = m["value"].to_numpy(dtype=object, na_value=None)
    empty = pd.isna(value)
    value[empty] = _lookup(m["valuenum"][empty], lambda v: "" if _blank(v) else (
        v.strip() if isinstance(v, str) else _number_text(v)))
    ref = m["ref_range_lower"].to_numpy(dtype=float, na_value=np.nan)
    notes.append(("labevents ref_range_lower not a number (left missing)", "labs",
                  int(m["ref_range_lower_bad"].sum())))
    labs = pd.DataFrame({
        "person_id": m["sid"].to_numpy(dtype=np.int64),
        "sampled_at": sampled.to_numpy(),
        "code": _lookup(m["item"], lambda v: imap.get(int(v)) if v is not None else None),
        "value": value,
        "unit": m["valueuom"].to_numpy(dtype=object, na_value=None),
        "ref_range_lower": ref,
    })
    return labs, flow, notes


def _mimic_patients(p):
    """patients -> persons (without end of data) and deaths (dod), with the counts of values left missing."""
    # One row per subject_id.
    has_id = p["sid"].notna().to_numpy()
    repeat = has_id & p["sid"].duplicated().to_numpy()
    keep = has_id & ~repeat
    notes = [("patients rows without a subject_id (ignored)", "persons", int((~has_id).sum())),
             ("repeat patients rows of a subject_id (first kept)", "persons", int(repeat.sum()))]
    p = p.loc[keep].reset_index(drop=True)
    age, year = _numbers(p["anchor_age"]), _numbers(p["anchor_year"])
    whole = ~np.isnan(age) & ~np.isnan(year) & (age % 1 == 0) & (year % 1 == 0) & (age >= 0)
    top = whole & (age > _TOP_CODED_AGE)
    ok = whole & ~top
    birth = pd.to_datetime(pd.DataFrame({"year": np.where(ok, year - age, 2000), "month": 7, "day": 1}),
                           errors="coerce").astype("datetime64[ns]").where(ok)
    notes += [("patients with anchor_age over 89 (MIMIC's 91): true age unknown, birth date left missing",
               "persons", int(top.sum())),
              ("patients without a whole-number anchor_age and anchor_year: birth date left missing", "persons",
               int((~whole).sum()))]
    sex = _lookup(p["gender"], lambda v: None if _blank(v) or str(v).strip().upper() not in ("M", "F")
                  else str(v).strip().upper())
    notes.append(("patients with gender not M or F: sex left missing", "persons", int(pd.isna(sex).sum())))
    pid = p["sid"].to_numpy(dtype=np.int64)
    dod, bad_dod = _times(p, "dod")
    notes.append(("patients dod not a date (death not passed on)", "deaths", int(bad_dod.sum())))
    died = dod.notna().to_numpy()
    deaths = pd.DataFrame({"person_id": pid[died], "died_at": dod[died].dt.normalize().to_numpy()})
    persons = pd.DataFrame({"person_id": pid, "sex": sex, "birth_date": birth.to_numpy()})
    return persons, deaths, notes


def _mimic_admissions(a, diagnosis_time):
    """admissions -> the date of each (subject_id, hadm_id) for its diagnoses, and each subject's last discharge."""
    a_ok = (a["sid"].notna() & a["hadm"].notna()).to_numpy()
    notes = [("admissions rows without a subject_id or hadm_id (ignored)", "diagnoses", int((~a_ok).sum()))]
    a = a.loc[a_ok].reset_index(drop=True)
    admit, _ = _times(a, "admittime")
    disch, _ = _times(a, "dischtime")
    a_key = pd.MultiIndex.from_arrays([a["sid"].astype(np.int64), a["hadm"].astype(np.int64)])
    a_repeat = a_key.duplicated()
    notes.append(("repeat admissions rows of a hadm_id (first used)", "diagnoses", int(a_repeat.sum())))
    when = (admit if diagnosis_time == "admittime" else disch)[~a_repeat]
    by_key = pd.Series(when.to_numpy(), index=a_key[~a_repeat])
    last_disch = pd.Series(disch.to_numpy()).groupby(a["sid"].astype(np.int64).to_numpy()).max()
    return by_key, last_disch, notes


def _mimic_diagnoses(dx, by_key):
    """diagnoses_icd -> diagnoses: ICD-10 rows dated by their admission; the others counted."""
    d_id = dx["sid"].notna().to_numpy()
    version = _numbers(dx["icd_version"])
    icd10, icd9 = d_id & (version == 10), d_id & (version == 9)
    d_key = pd.MultiIndex.from_arrays([dx["sid"].fillna(-1).astype(np.int64), dx["hadm"].fillna(-1).astype(np.int64)])
    pos = by_key.index.get_indexer(d_key)
    matched = icd10 & (pos >= 0) & dx["hadm"].notna().to_numpy()
    notes = [("diagnoses_icd rows without a subject_id (ignored)", "diagnoses", int((~d_id).sum())),
             ("diagnoses_icd rows with icd_version 9 (unmapped: no ICD-9 to ICD-10 map is shipped)", "diagnoses",
              int(icd9.sum())),
             ("diagnoses_icd rows with icd_version neither 9 nor 10 (ignored)", "diagnoses",
              int((d_id & ~icd9 & ~icd10).sum())),
             ("diagnoses_icd ICD-10 rows without a matching admission (subject_id, hadm_id) (ignored)",
              "diagnoses", int((icd10 & ~matched).sum()))]
    diagnoses = pd.DataFrame({
        "person_id": dx["sid"].to_numpy()[matched].astype(np.int64),
        "diagnosed_at": by_key.to_numpy()[pos[matched]].astype("datetime64[ns]"),
        "code": _lookup(dx["icd_code"], lambda v: "" if _blank(v) else str(v).strip())[matched],
    })
    return diagnoses, notes


def _mimic_end_of_data(pid, deaths, last_disch, last_lab, fixed_end, end_by_id):
    """Each person's end of data and the rule used: last discharge or lab day, or the day of death when later."""
    last = pd.concat([last_disch, last_lab], axis=1).max(axis=1).dt.normalize()
    end = pd.Series(last.reindex(pid).to_numpy(), dtype="datetime64[ns]")
    death_day = pd.Series(deaths.groupby("person_id")["died_at"].min().reindex(pid).to_numpy(),
                          dtype="datetime64[ns]")
    end = pd.Series(np.where(death_day > end, death_day, end), dtype="datetime64[ns]").fillna(death_day)
    rule = "later of the last dischtime and last labevents charttime (day), or dod when later"
    if fixed_end is not None:
        end, rule = pd.Series(np.full(len(pid), fixed_end), dtype="datetime64[ns]"), "end_of_data argument"
    elif end_by_id is not None:
        given = pd.Series(end_by_id.reindex(pid).to_numpy(), dtype="datetime64[ns]")
        end, rule = given.fillna(end), f"end_of_data argument, else {rule}"
    return end, rule


def _item_map(extra: Any) -> dict[int, str]:
    out = {int(k): v for k, v in MIMIC_IV_LAB_CODES.items()}
    if extra is not None and not isinstance(extra, dict):
        raise NeutrostatsError(f"{_FN}: item_map must be a dict of itemid -> LOINC code, found {type(extra).__name__}")
    for k, v in (extra or {}).items():
        try:
            key = int(str(k).strip())
        except ValueError:
            key = None
        if key is None or not (v is None or (isinstance(v, str) and v.strip() in LOINC_ROLES)):
            raise NeutrostatsError(f"{_FN}: item_map must map integer item ids to a LOINC code neutrostats uses "
                                   f"({', '.join(sorted(LOINC_ROLES))}) or None to drop a default; found "
                                   f"{k!r}: {v!r}. Fix or remove that entry")
        if v is None:
            out.pop(key, None)
        else:
            out[key] = v.strip()
    return out


def _find(folder: Any) -> dict[str, Path]:
    try:
        path = Path(folder)
    except TypeError:
        raise NeutrostatsError(f"{_FN}: folder must be a path to the MIMIC-IV hosp files, found "
                               f"{type(folder).__name__}") from None
    if not path.is_dir():
        raise NeutrostatsError(f"{_FN}: {str(path)!r} is not a folder; pass the folder of the MIMIC-IV hosp module "
                               "(patients, labevents, diagnoses_icd, admissions as .csv.gz, .csv or .parquet)")

    def tables(where: Path) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for f in sorted(where.iterdir()):
            ext = next((e for e in _EXTS if f.name.lower().endswith(e)), None)
            name = f.name.lower()[: -len(ext)] if ext and f.is_file() else None
            if name in _TABLES:
                if name in found:
                    raise NeutrostatsError(f"{_FN}: folder {str(where)!r} holds table {name} twice "
                                           f"({found[name].name} and {f.name}); keep one of the files")
                found[name] = f
        return found

    found = tables(path)
    hosp = next((f for f in path.iterdir() if f.is_dir() and f.name.lower() == "hosp"), None)
    if not found and hosp is not None:
        path, found = hosp, tables(hosp)
    missing = [t for t in _TABLES if t not in found]
    if missing:
        names = sorted(f.name for f in path.iterdir())
        raise NeutrostatsError(f"{_FN}: table(s) {', '.join(missing)} not found in folder {str(path)!r} (or its "
                               f"hosp/ subfolder); expected files named like "
                               f"{', '.join(t + '.csv.gz' for t in _TABLES)} (or .csv, .parquet; any case), found "
                               f"{names[:40]}. Add the missing hosp files")
    return found


def _view(con: Any, table: str, path: Path) -> None:
    """A view ``table`` with the needed columns in lower case (absent optional ones NULL)."""
    lit = "'" + str(path).replace("'", "''") + "'"
    src = f"read_parquet({lit})" if path.name.lower().endswith(".parquet") else \
        f"read_csv({lit}, header=true, all_varchar=true, delim=',', quote='\"')"
    desc = con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
    by_lower = {name.lower(): (name, typ) for name, typ, *_ in desc}
    required, optional = _TABLES[table]
    missing = [c for c in required if c not in by_lower]
    if missing:
        raise NeutrostatsError(f"{_FN}: {path.name} has no column {', '.join(missing)}; expected the MIMIC-IV "
                               f"{table} columns {list(required + optional)}, found {[n for n, *_ in desc]}. "
                               "Rename the columns to their MIMIC-IV names")
    cols = []
    for c in required + optional:
        if c not in by_lower:
            cols.append(f"NULL AS {c}")
            continue
        name, typ = by_lower[c]
        if "TIME ZONE" in typ.upper():
            raise NeutrostatsError(f"{_FN}: {path.name} column {name} is time-zone-aware ({typ}); MIMIC-IV times "
                                   "are naive wall-clock times. Write it without a time zone")
        quoted = '"' + name.replace('"', '""') + '"'
        text = f"TRIM(CAST({quoted} AS VARCHAR))"
        if c in _ID_ALIAS:
            cols.append(f"TRY_CAST({text} AS BIGINT) AS {_ID_ALIAS[c]}")
        elif c in _TIMES and typ.upper().startswith(("TIMESTAMP", "DATE")):
            cols += [f"{_in_range(f'CAST({quoted} AS TIMESTAMP)')} AS {c}", f"false AS {c}_bad", f"false AS {c}_off",
                     f"NULL AS {c}_raw"]
        elif c in _TIMES:
            # Read here, in bulk: MIMIC-IV writes ISO 8601 ("2180-07-23 05:00:00"), naive.
            parsed = _in_range(f"TRY_CAST({text} AS TIMESTAMP)")
            cols += [f"{parsed} AS {c}", f"COALESCE({text} <> '' AND {parsed} IS NULL, false) AS {c}_bad",
                     f"COALESCE(length({text}) > 10 AND regexp_matches({text}, '(Z|[+-][0-9]{{2}}:?[0-9]{{2}})$'), "
                     f"false) AS {c}_off", f"{text} AS {c}_raw"]
        elif c == "ref_range_lower":
            number = f"TRY_CAST({text} AS DOUBLE)"
            cols += [f"{number} AS {c}", f"COALESCE({text} <> '' AND {number} IS NULL, false) AS {c}_bad"]
        elif c in ("value", "valueuom", "gender", "icd_code"):
            cols.append(f"CASE WHEN {text} <> '' THEN CAST({quoted} AS VARCHAR) END AS {c}")
        else:
            cols.append(f"{quoted} AS {c}")
    for c in _TIMES + ("ref_range_lower",):
        if c in required + optional and c not in by_lower:
            cols += [f"false AS {c}_bad"] + ([f"false AS {c}_off", f"NULL AS {c}_raw"] if c in _TIMES else [])
    con.execute(f"CREATE TEMP VIEW {table} AS SELECT {', '.join(cols)} FROM {src}")


def _in_range(expr: str) -> str:
    """NULL outside datetime64[ns] (1677-2262), where build_cohort's day counts would overflow."""
    return (f"CASE WHEN {expr} BETWEEN TIMESTAMP '1677-09-22' AND TIMESTAMP '2262-04-11' THEN {expr} END")


def _lab_counts(con: Any, imap: dict[int, str]) -> tuple[tuple[int, ...], pd.Series]:
    """(rows read, with a subject_id, mapped, persons read, persons mapped) and each subject's last charttime."""
    mapped = f"item IN ({', '.join(map(str, imap))})" if imap else "false"
    per = con.execute(
        f"SELECT sid, count(*) AS n, count(*) FILTER (WHERE {mapped}) AS n_mapped, "
        "max(charttime) AS last, count(*) FILTER (WHERE charttime_off) AS n_off, "
        "min(charttime_raw) FILTER (WHERE charttime_off) AS off FROM labevents GROUP BY sid").df()
    offsets = per[per["n_off"] > 0]
    _no_offsets(int(offsets["n_off"].sum()), offsets["off"].iloc[0] if len(offsets) else None, "labevents",
                "charttime")
    with_id = per["sid"].notna()
    n_read, n_id = int(per["n"].sum()), int(per.loc[with_id, "n"].sum())
    n_mapped = int(per.loc[with_id, "n_mapped"].sum())
    p_read, p_mapped = int(with_id.sum()), int((with_id & (per["n_mapped"] > 0)).sum())
    last = pd.Series(pd.to_datetime(per.loc[with_id, "last"]).to_numpy(dtype="datetime64[ns]"),
                     index=per.loc[with_id, "sid"].astype(np.int64).to_numpy())
    return (n_read, n_id, n_mapped, p_read, p_mapped), last


def _select(con: Any, table: str, where: str = "true") -> pd.DataFrame:
    drop = " EXCLUDE (charttime_off, charttime_raw)" if table == "labevents" else ""  # checked in _lab_counts
    df = con.execute(f"SELECT *{drop} FROM {table} WHERE {where}").df()
    for c in _TIMES:
        if c + "_raw" in df.columns:
            off = df[c + "_off"].to_numpy(dtype=bool)
            _no_offsets(int(off.sum()), df[c + "_raw"][off].iloc[0] if off.any() else None, table, c)
    return df


def _no_offsets(n: int, example: Any, table: str, column: str) -> None:
    if n:
        raise NeutrostatsError(f"{_FN}: {table}.{column} has {n} time(s) with a UTC offset (e.g. {example!r}); "
                               "MIMIC-IV times are naive wall-clock times. Export the column without offsets")


def _numbers(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(pd.Series(_lookup(s, lambda v: None if _blank(v) else str(v).strip())), errors="coerce") \
        .to_numpy(dtype=float, na_value=np.nan)


def _times(df: pd.DataFrame, column: str) -> tuple[pd.Series, np.ndarray]:
    """Naive datetime64[ns] (read by DuckDB) and the mask of values present but not ISO 8601 times."""
    out = pd.Series(pd.to_datetime(df[column]).to_numpy(dtype="datetime64[ns]"))
    return out, df[column + "_bad"].to_numpy(dtype=bool)
