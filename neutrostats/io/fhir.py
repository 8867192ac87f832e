"""Read a FHIR R4 Bulk Data export into the tables :func:`~neutrostats.build_cohort` reads.

:func:`read_fhir` takes NDJSON files (one resource per line, ``.ndjson`` or
``.ndjson.gz``) and returns :class:`FhirData`: long-format labs from
Observations with LOINC codes, persons from Patients, ICD-10 diagnoses from
Conditions and deaths, with an attrition table that counts every resource
not passed on. Only the standard library's :mod:`json` is used: no network,
no FHIR server.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.io.export import ExportData, attrition_table, fixed_end_of_data
from neutrostats.labs.codes import LOINC_ROLES
from neutrostats.errors import NeutrostatsError

__all__ = ["FhirData", "read_fhir", "FHIR_ICD10_SYSTEMS", "FHIR_GENDERS"]

_FN = "read_fhir"
_LOINC = "http://loinc.org"
_UCUM = "http://unitsofmeasure.org"
#: Condition.code.coding systems read as ICD-10 (WHO and the US clinical modification).
FHIR_ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm")
#: Patient.gender -> sex; "other", "unknown" and a missing gender give NA.
FHIR_GENDERS: Mapping[str, str] = MappingProxyType({"male": "M", "female": "F"})
_DROPPED_STATUS = frozenset({"entered-in-error", "cancelled"})
_DROPPED_VERIFICATION = frozenset({"entered-in-error", "refuted"})
# A Patient reference: "Patient/<id>", optionally a full URL and a version.
_PATIENT_REF = re.compile(r"^(?:.*/)?Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})")
_YEAR_MONTH = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


class FhirData(ExportData):
    """Result of :func:`read_fhir`: ``labs``, ``persons``, ``diagnoses``,
    ``deaths`` (inputs of :func:`~neutrostats.build_cohort`), ``attrition``
    and ``settings``; columns are listed in :func:`read_fhir`."""


def read_fhir(path: Any, *, end_of_data: Any = None, icd10_systems: tuple[str, ...] = FHIR_ICD10_SYSTEMS
              ) -> FhirData:
    """Read a FHIR R4 Bulk Data export as labs, persons, diagnoses and deaths.

    Parameters
    ----------
    path : str or path
        One NDJSON file, or a folder whose ``*.ndjson`` and ``*.ndjson.gz``
        files (any case; not subfolders) are read in name order. Each line
        is one resource; the resource type is read from ``resourceType``,
        not from the file name. Blank lines are skipped.
    end_of_data : date, dict or Series, optional
        One date for everyone, or dates by Patient id (others get the
        default rule, see Notes).
    icd10_systems : tuple of str
        ``Condition.code.coding.system`` values read as ICD-10; default
        :data:`FHIR_ICD10_SYSTEMS`. Add your national variant here.

    Returns
    -------
    FhirData
        ``labs``, one row per passed-on Observation in file order:
        ``person_id`` (the id of ``subject.reference`` ``Patient/<id>``,
        text); ``sampled_at`` (``effectiveDateTime``, else
        ``effectivePeriod.start``, else ``effectiveInstant``, text as
        exported, offset included); ``code`` (the first LOINC coding that
        is an ANC, WBC or differential code of
        :data:`neutrostats.labs.codes.LOINC_ROLES`); ``value``
        (``valueQuantity.value`` as written in the file, after its
        ``comparator``: ``"<0.1"``; else ``valueString``); ``unit``
        (``valueQuantity.code`` when ``system`` is UCUM, e.g. ``10*3/uL``,
        else ``valueQuantity.unit``, else NA); ``ref_range_lower``
        (``referenceRange[0].low.value``, float). ``persons``:
        ``person_id``, ``sex`` (:data:`FHIR_GENDERS`), ``birth_date``
        (``birthDate`` as text; a year or year-month only is completed, see
        Notes), ``end_of_data`` (naive datetime64[ns], a day). ``diagnoses``:
        ``person_id``, ``diagnosed_at`` (``onsetDateTime``, else
        ``onsetPeriod.start``, else ``recordedDate``, text), ``code`` (the
        first ICD-10 coding's code, stripped). ``deaths``: ``person_id``,
        ``died_at`` (``deceasedDateTime``, text). Dates and times stay as
        exported: :func:`~neutrostats.build_cohort` reads them (its
        ``timezone=`` decides the calendar day of times with an offset).
        ``attrition`` (columns of ``Cohort.attrition``): Observations read,
        without a Patient subject, entered in error or cancelled, not an
        ANC/WBC/differential LOINC code (unmapped), without a value (what
        remains is build_cohort's "lab rows read"); then Patients,
        Conditions and deaths not passed on, and the resources of every
        other type (not read), one row per type. ``settings``: files, maps
        and rules.

    Raises
    ------
    NeutrostatsError
        If ``path`` does not exist or holds no NDJSON file, a line is not
        valid JSON or not a FHIR resource (the message names the file and
        line number), a gzip file is corrupt, the export has no Patient or
        no Observation resources, or an argument is invalid.

    Notes
    -----
    Observations with ``status`` entered-in-error or cancelled and
    Conditions with ``verificationStatus`` entered-in-error or refuted are
    counted and not passed on. An Observation whose LOINC code is known but
    that has neither ``valueQuantity.value`` nor ``valueString`` (e.g. only
    a ``dataAbsentReason``) is counted as without a value. Panels with
    ``component`` values are not read (their code is not an ANC code:
    counted as unmapped). A comparator outside ``<``, ``<=``, ``>=``, ``>``
    is kept as the prefix, so :func:`~neutrostats.classify_anc` flags the
    value. A Condition without an ICD-10 coding (SNOMED CT only, say) is
    counted as unmapped. Repeat Patients of an id (the first is kept),
    Patients without an id, and ``deceasedBoolean`` true without a date
    (the death cannot be dated: not passed on) are counted.

    Birth date: ``birthDate`` as written; FHIR allows a year (``1950``) or
    a year and month (``1950-03``): these become July 1 and the 15th of
    the month (mid-period), counted in ``settings["birth_date"]``.

    End of data (default): the latest calendar day, as written (its own
    offset), of the person's Observations (any code, with a Patient subject,
    not entered in error or cancelled), Conditions (any coding, not entered
    in error or refuted) and death. Pass ``end_of_data`` when the export has a known
    cut-off, or when ``timezone=`` in build_cohort moves days.

    See Also
    --------
    neutrostats.build_cohort : the cohort from the four tables.
    read_mimic_iv, read_omop : the other export readers.

    References
    ----------
    .. [1] HL7. FHIR R4 (4.0.1): Observation, Patient, Condition.
       https://hl7.org/fhir/R4/
    .. [2] HL7. FHIR Bulk Data Access IG 2.0.0.
       https://hl7.org/fhir/uv/bulkdata/

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = pathlib.Path(tmp.name)
    >>> patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-03-10"}
    >>> anc = {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p1"},
    ...        "code": {"coding": [{"system": "http://loinc.org", "code": "751-8"}]},
    ...        "effectiveDateTime": "2010-01-05T08:30:00",
    ...        "valueQuantity": {"value": 1.2, "unit": "10^9/L", "system": "http://unitsofmeasure.org",
    ...                          "code": "10*9/L"}}
    >>> aml = {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}, "recordedDate": "2012-02-01",
    ...        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C92.0"}]}}
    >>> _ = (d / "Patient.ndjson").write_text(json.dumps(patient) + "\\n")
    >>> _ = (d / "Observation.ndjson").write_text(json.dumps(anc) + "\\n")
    >>> _ = (d / "Condition.ndjson").write_text(json.dumps(aml) + "\\n")
    >>> fhir = read_fhir(d, end_of_data="2016-12-31")
    >>> fhir.labs
      person_id           sampled_at   code value    unit  ref_range_lower
    0        p1  2010-01-05T08:30:00  751-8   1.2  10*9/L              NaN
    >>> fhir.build_cohort(outcomes={"aml": ["C92.0"]}).table[["person_id", "tier", "aml"]]
      person_id  tier   aml
    0        p1  mild  True
    >>> tmp.cleanup()
    """
    if isinstance(icd10_systems, str) or not all(isinstance(s, str) for s in icd10_systems):
        raise NeutrostatsError(f"{_FN}: icd10_systems must be a tuple of coding system URLs, found "
                               f"{icd10_systems!r}")
    icd10 = frozenset(icd10_systems)
    fixed_end, end_by_id = fixed_end_of_data(end_of_data, _FN)
    files = _files(path)

    parsed = _parse_resources(files, icd10)
    counts = parsed.counts
    if not counts["Patient"] or not counts["Observation"]:
        missing = " and ".join(t for t in ("Patient", "Observation") if not counts[t])
        raise NeutrostatsError(f"{_FN}: the export has no {missing} resources; found {dict(sorted(counts.items()))} "
                               f"in {[f.name for f in files][:20]}. Export Patient, Observation and Condition "
                               "(e.g. $export?_type=Patient,Observation,Condition)")
    labs, flow = _fhir_labs(parsed)
    persons, deaths, notes = _fhir_patients(parsed)
    diagnoses, c_notes = _fhir_conditions(parsed)
    notes += c_notes + [(f"{kind} resources (not read)", kind, n) for kind, n in sorted(counts.items())
                        if kind not in ("Observation", "Patient", "Condition")]
    dated = parsed.dated + list(zip(deaths["person_id"], deaths["died_at"]))
    end, rule = _fhir_end_of_data(dated, persons, fixed_end, end_by_id)
    persons["end_of_data"] = end.to_numpy()

    settings = {
        "files": [str(f) for f in files],
        "resources": dict(sorted(counts.items())),
        "loinc_codes": sorted(LOINC_ROLES),
        "icd10_systems": sorted(icd10),
        "gender_map": dict(FHIR_GENDERS),
        "unit": "valueQuantity.code when system is UCUM, else valueQuantity.unit",
        "birth_date": {"rule": "birthDate; a year only: July 1; a year-month only: the 15th",
                       "completed": parsed.n_partial_birth},
        "end_of_data": {"rule": rule, "date": None if fixed_end is None else str(fixed_end.date())},
    }
    return FhirData(labs=labs, persons=persons, diagnoses=diagnoses, deaths=deaths,
                    attrition=attrition_table(flow, notes), settings=settings)


@dataclass
class _Parsed:
    """What one pass over the resources collects."""

    counts: Counter = field(default_factory=Counter)
    obs_ids: list = field(default_factory=list)  # subject of every Observation read (None: no Patient subject)
    obs_stage: list = field(default_factory=list)  # 0 passed on, 1 no subject, 2 status, 3 unmapped, 4 no value
    labs_rows: list = field(default_factory=list)
    dated: list = field(default_factory=list)  # (person, date text) of every dated record, for the end of data
    patients: list = field(default_factory=list)
    cond_rows: list = field(default_factory=list)
    n_partial_birth: int = 0


def _parse_resources(files, icd10) -> _Parsed:
    """One pass over the NDJSON resources: Observation, Patient and Condition rows, every kind counted."""
    out = _Parsed()
    for res in _resources(files):
        kind = res["resourceType"]
        out.counts[kind] += 1
        if kind == "Observation":
            _observation(res, out)
        elif kind == "Patient":
            _patient_resource(res, out)
        elif kind == "Condition":
            pid = _patient(res.get("subject"))
            when = res.get("onsetDateTime") or _get(res, "onsetPeriod", "start") or res.get("recordedDate")
            when = when if isinstance(when, str) else None
            verification = {c.get("code") for c in _codings(res.get("verificationStatus"))}
            if pid is not None and when is not None and not verification & _DROPPED_VERIFICATION:
                out.dated.append((pid, when))
            code = next((str(c["code"]).strip() for c in _codings(res.get("code"))
                         if c.get("system") in icd10 and isinstance(c.get("code"), str) and c["code"].strip()), None)
            out.cond_rows.append((pid, when, code, bool(verification & _DROPPED_VERIFICATION)))
    return out


def _observation(res: dict, out: _Parsed) -> None:
    """One Observation: its stage in the lab flow, and its lab row when it is passed on."""
    pid = _patient(res.get("subject"))
    when = res.get("effectiveDateTime") or _get(res, "effectivePeriod", "start") or res.get("effectiveInstant")
    out.obs_ids.append(pid)
    if pid is None:
        out.obs_stage.append(1)
        return
    if res.get("status") in _DROPPED_STATUS:
        out.obs_stage.append(2)
        return
    if isinstance(when, str):
        out.dated.append((pid, when))
    code = _loinc(res.get("code"))
    if code is None:
        out.obs_stage.append(3)
        return
    value, unit = _value(res)
    if value is None:
        out.obs_stage.append(4)
        return
    out.obs_stage.append(0)
    low = _get(_first(res.get("referenceRange")), "low", "value")
    out.labs_rows.append((pid, when if isinstance(when, str) else None, code, value, unit, _float(low)))


def _patient_resource(res: dict, out: _Parsed) -> None:
    """One Patient: id, sex, birth date (a partial one completed) and death."""
    pid = res.get("id")
    pid = pid.strip() if isinstance(pid, str) and pid.strip() else None
    birth = res.get("birthDate")
    if isinstance(birth, str) and _YEAR_MONTH.match(birth.strip()):
        year, month = _YEAR_MONTH.match(birth.strip()).groups()  # type: ignore[union-attr]  # matched above
        birth = f"{year}-07-01" if month is None else f"{year}-{month}-15"
        out.n_partial_birth += 1
    deceased = res.get("deceasedDateTime")
    out.patients.append((pid, FHIR_GENDERS.get(res.get("gender")), birth if isinstance(birth, str) else None,  # type: ignore[arg-type]
                         deceased if isinstance(deceased, str) else None, res.get("deceasedBoolean") is True))


def _fhir_labs(parsed: _Parsed):
    """Observations -> labs and the lab flow; what remains is build_cohort's "lab rows read"."""
    stage = np.array(parsed.obs_stage, dtype=np.int8)
    ids = pd.Series(parsed.obs_ids, dtype=object)
    flow, n_left = [], len(stage)
    p_left = ids[stage != 1].nunique()
    flow.append(("Observation resources read", "Observation", 0, 0, 0, p_left, n_left))
    for k, desc in ((1, "Observation resources without a Patient subject (data error)"),
                    (2, "Observation resources entered in error or cancelled (status)"),
                    (3, "Observation resources not an ANC, WBC or differential LOINC code (unmapped)"),
                    (4, "Observation resources without a value (valueQuantity.value or valueString)")):
        gone = int((stage == k).sum())
        if not gone and k in (1, 2, 4):
            continue
        persons_after = ids[(stage == 0) | (stage > k)].nunique()
        flow.append((desc, "Observation", p_left - persons_after, gone, gone, persons_after, n_left - gone))
        p_left, n_left = persons_after, n_left - gone
    labs = pd.DataFrame(parsed.labs_rows,
                        columns=["person_id", "sampled_at", "code", "value", "unit", "ref_range_lower"])
    labs = labs.astype({"person_id": object, "sampled_at": object, "code": object, "value": object, "unit": object,
                        "ref_range_lower": float})
    return labs, flow


def _fhir_patients(parsed: _Parsed):
    """Patients -> persons (one row per id, without end of data) and deaths, with the counts not passed on."""
    pt = pd.DataFrame(parsed.patients, columns=["person_id", "sex", "birth_date", "died_at", "deceased_flag"])
    has_id = pt["person_id"].notna().to_numpy()
    repeat = has_id & pt["person_id"].duplicated().to_numpy()
    notes = [("Patient resources without an id (ignored)", "persons", int((~has_id).sum())),
             ("repeat Patient resources of an id (first kept)", "persons", int(repeat.sum()))]
    pt = pt.loc[has_id & ~repeat].reset_index(drop=True)
    undated = pt["deceased_flag"].to_numpy() & pt["died_at"].isna().to_numpy()
    notes.append(("Patient deceasedBoolean true without deceasedDateTime (death not passed on)", "deaths",
                  int(undated.sum())))
    died = pt["died_at"].notna().to_numpy()
    deaths = _text_frame({"person_id": pt["person_id"].to_numpy(dtype=object)[died],
                          "died_at": pt["died_at"].to_numpy(dtype=object)[died]})
    persons = _text_frame({c: pt[c].to_numpy(dtype=object) for c in ("person_id", "sex", "birth_date")})
    return persons, deaths, notes


def _fhir_conditions(parsed: _Parsed):
    """Conditions -> diagnoses (ICD-10 codings), with the counts not passed on."""
    cd = pd.DataFrame(parsed.cond_rows, columns=["person_id", "diagnosed_at", "code", "error"])
    no_subject = cd["person_id"].isna().to_numpy()
    error = ~no_subject & cd["error"].to_numpy(dtype=bool)
    unmapped = ~no_subject & ~error & cd["code"].isna().to_numpy()
    notes = [("Condition resources without a Patient subject (ignored)", "diagnoses", int(no_subject.sum())),
             ("Condition resources entered in error or refuted (verificationStatus)", "diagnoses",
              int(error.sum())),
             ("Condition resources without an ICD-10 coding (unmapped)", "diagnoses", int(unmapped.sum()))]
    keep = ~no_subject & ~error & ~unmapped
    diagnoses = _text_frame({c: cd[c].to_numpy(dtype=object)[keep] for c in ("person_id", "diagnosed_at", "code")})
    return diagnoses, notes


def _fhir_end_of_data(dated, persons, fixed_end, end_by_id):
    """Each person's end of data and the rule used: the latest calendar day of their records, as written."""
    days = pd.DataFrame(dated, columns=["person_id", "when"])
    day = pd.to_datetime(days["when"].astype(object).str.extract(_DAY.pattern, expand=False),
                         format="%Y-%m-%d", errors="coerce")
    last = pd.Series(day.to_numpy(dtype="datetime64[ns]")).groupby(days["person_id"].to_numpy()).max() \
        if len(days) else pd.Series([], dtype="datetime64[ns]")
    end = pd.Series(last.reindex(persons["person_id"]).to_numpy(), dtype="datetime64[ns]")
    rule = "latest day of the person's Observations, Conditions and death, as written"
    if fixed_end is not None:
        end, rule = pd.Series(np.full(len(persons), fixed_end), dtype="datetime64[ns]"), "end_of_data argument"
    elif end_by_id is not None:
        end_by_id = end_by_id.set_axis(end_by_id.index.astype(str))
        given = pd.Series(end_by_id.reindex(persons["person_id"]).to_numpy(), dtype="datetime64[ns]")
        end, rule = given.fillna(end), f"end_of_data argument, else {rule}"
    return end, rule


def _text_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Text columns as object dtype in every table, so the person ids of all four tables share one dtype."""
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})


def _files(path: Any) -> list[Path]:
    try:
        p = Path(path)
    except TypeError:
        raise NeutrostatsError(f"{_FN}: path must be an NDJSON file or a folder of them, found "
                               f"{type(path).__name__}") from None
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise NeutrostatsError(f"{_FN}: {str(p)!r} not found; pass the folder of the Bulk Data export's NDJSON "
                               "files or one .ndjson / .ndjson.gz file")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith((".ndjson", ".ndjson.gz")))
    if not files:
        raise NeutrostatsError(f"{_FN}: folder {str(p)!r} has no .ndjson or .ndjson.gz files; found "
                               f"{sorted(f.name for f in p.iterdir())[:40]}. Pass the folder the export wrote")
    return files


def _resources(files: list[Path]):
    """Each resource of each file; malformed lines raise, naming file and line."""
    for f in files:
        opener = gzip.open if f.name.lower().endswith(".gz") else open
        try:
            with opener(f, "rt", encoding="utf-8") as fh:
                for n, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        # Numbers as their text: "1.50" stays "1.50", as exported.
                        res = json.loads(line, parse_float=str, parse_int=str)
                    except json.JSONDecodeError as exc:
                        raise NeutrostatsError(f"{_FN}: {f.name} line {n} is not valid JSON ({exc.msg} at column "
                                               f"{exc.colno}); fix or remove that line (one resource per line)"
                                               ) from None
                    if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
                        raise NeutrostatsError(f"{_FN}: {f.name} line {n} is not a FHIR resource (a JSON object "
                                               "with a resourceType); fix or remove that line")
                    yield res
        except UnicodeDecodeError as exc:
            raise NeutrostatsError(f"{_FN}: {f.name} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                   "NDJSON files are UTF-8") from None
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise NeutrostatsError(f"{_FN}: {f.name} is not a readable gzip file ({exc}); export it again") \
                from None


def _get(obj: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def _first(items: Any) -> Any:
    return items[0] if isinstance(items, list) and items else None


def _codings(concept: Any) -> list[dict]:
    codings = _get(concept, "coding")
    return [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []


def _patient(subject: Any) -> str | None:
    ref = _get(subject, "reference")
    m = _PATIENT_REF.match(ref.strip()) if isinstance(ref, str) else None
    return m.group(1) if m else None


def _loinc(concept: Any) -> str | None:
    for c in _codings(concept):
        code = c.get("code")
        if c.get("system") == _LOINC and isinstance(code, str) and code.strip() in LOINC_ROLES:
            return code.strip()
    return None


def _value(res: dict) -> tuple[str | None, str | None]:
    q = res.get("valueQuantity")
    if isinstance(q, dict) and isinstance(q.get("value"), str):
        comparator = q.get("comparator") if isinstance(q.get("comparator"), str) else ""
        code, unit = q.get("code"), q.get("unit")
        if q.get("system") == _UCUM and isinstance(code, str) and code.strip():
            shown = code
        else:
            shown = unit if isinstance(unit, str) and unit.strip() else None  # type: ignore[assignment]
        return comparator + q["value"], shown
    if isinstance(res.get("valueString"), str):
        return res["valueString"], None
    return None, None


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan
