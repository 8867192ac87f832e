"""read_fhir on a small hand-written FHIR R4 Bulk Data export (NDJSON, one
file gzipped). Every expected value follows from the resources written below,
worked out by hand in the comments, not from running the code."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from neutrostats import NeutrostatsError
from neutrostats.io.fhir import FhirData, read_fhir

T = pd.Timestamp
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
ICD10, ICD10CM, SNOMED = "http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm", "http://snomed.info/sct"


def obs(pid, code, when, value=None, unit=None, *, comparator=None, string=None, status="final", low=None,
        period=False, absent=False):
    r = {"resourceType": "Observation", "id": f"o-{pid}-{code}-{when[:10]}", "status": status,
         "code": {"coding": [{"system": "http://acme.org/lab", "code": "X1"}, {"system": LOINC, "code": code}]}}
    if pid is not None:
        r["subject"] = {"reference": f"Patient/{pid}"}
    r["effectivePeriod" if period else "effectiveDateTime"] = {"start": when} if period else when
    if value is not None:
        q = {"value": value}
        if comparator:
            q["comparator"] = comparator
        q.update(unit)
        r["valueQuantity"] = q
    if string is not None:
        r["valueString"] = string
    if absent:
        r["dataAbsentReason"] = {"coding": [{"code": "error"}]}
    if low is not None:
        r["referenceRange"] = [{"low": {"value": low, "unit": "10*9/L"}}]
    return r


def ucum(code, shown=None):
    return {"unit": shown or code, "system": UCUM, "code": code}


def cond(pid, coding, when, *, recorded=False, verification=None):
    r = {"resourceType": "Condition", "subject": {"reference": f"Patient/{pid}"},
         "code": {"coding": coding}, ("recordedDate" if recorded else "onsetDateTime"): when}
    if verification:
        r["verificationStatus"] = {"coding": [{"code": verification}]}
    return r


PATIENTS = [
    {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-03-10"},
    {"resourceType": "Patient", "id": "p2", "gender": "male", "birthDate": "1960",   # year only -> July 1
     "deceasedDateTime": "2013-01-01"},
    {"resourceType": "Patient", "id": "p3", "gender": "other", "birthDate": "1970-04-02", "deceasedBoolean": True},
    {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1951-01-01"},  # repeat: ignored
    {"resourceType": "Patient", "gender": "female"},                                       # no id
]
OBSERVATIONS = [
    obs("p1", "751-8", "2010-01-05T08:30:00+01:00", 1.2, ucum("10*9/L"), low=1.8),       # 1 passed
    obs("p1", "718-7", "2014-06-01T09:00:00+02:00", 13.5, ucum("g/dL")),                 # 2 haemoglobin: unmapped
    obs("p2", "751-8", "2012-02-01T09:00:00+01:00", 0.1, ucum("10*3/uL"), comparator="<"),  # 3 "<0.1"
    obs("p3", "6690-2", "2013-03-03T10:00:00+01:00", "4.0", ucum("10*3/uL")),            # 4 "4.0" as written
    obs("p3", "770-8", "2013-03-03T10:00:00+01:00", 30, ucum("%")),                      # 5
    obs("p3", "764-1", "2013-03-03T10:00:00+01:00", 5, ucum("%")),                       # 6
    obs("p3", "751-8", "2013-03-04T10:00:00+01:00", string="clotted"),                   # 7 valueString
    obs("p1", "751-8", "2010-01-04T08:00:00+01:00", 0.2, ucum("10*9/L"), status="entered-in-error"),  # 8
    obs(None, "751-8", "2010-01-04T08:00:00+01:00", 0.3, ucum("10*9/L")),                # 9 no subject
    obs("p2", "751-8", "2012-03-01T09:00:00+01:00", absent=True),                        # 10 no value
    obs("p1", "751-8", "2011-06-01T10:00:00+02:00", 0.8, {"unit": "x10^9/L"}, period=True),  # 11 unit text only
]
CONDITIONS = [
    cond("p1", [{"system": ICD10, "code": "C92.0"}], "2012-02-01T10:00:00+01:00"),
    cond("p2", [{"system": SNOMED, "code": "86406008"}, {"system": ICD10CM, "code": "B20"}],
         "2012-05-01T00:00:00+02:00", recorded=True),
    cond("p3", [{"system": SNOMED, "code": "165517008"}], "2014-01-01T12:00:00+01:00"),  # SNOMED only: unmapped
    cond("p2", [{"system": ICD10, "code": "C92.0"}], "2012-03-01T10:00:00+01:00", verification="entered-in-error"),
]
OTHER = [{"resourceType": "Encounter", "id": "e1"}, {"resourceType": "Encounter", "id": "e2"},
         {"resourceType": "Medication", "id": "m1"}]


def ndjson(resources):
    return "".join(json.dumps(r) + "\n" for r in resources)


def write_export(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Patient.ndjson").write_text(ndjson(PATIENTS))
    (folder / "Observation.ndjson.gz").write_bytes(gzip.compress(ndjson(OBSERVATIONS).encode()))
    (folder / "Condition.ndjson").write_text(ndjson(CONDITIONS) + "\n")  # a blank line is skipped
    (folder / "Encounter.ndjson").write_text(ndjson(OTHER))
    (folder / "manifest.json").write_text("{}")  # not NDJSON: not read
    return folder


@pytest.fixture
def fhir(tmp_path):
    return read_fhir(write_export(tmp_path / "export"))


def test_labs_value_by_value(fhir):
    assert isinstance(fhir, FhirData)
    labs = fhir.labs
    assert list(labs.columns) == ["person_id", "sampled_at", "code", "value", "unit", "ref_range_lower"]
    assert labs["person_id"].tolist() == ["p1", "p2", "p3", "p3", "p3", "p3", "p1"]
    assert labs["sampled_at"].tolist() == ["2010-01-05T08:30:00+01:00", "2012-02-01T09:00:00+01:00"] + \
        ["2013-03-03T10:00:00+01:00"] * 3 + ["2013-03-04T10:00:00+01:00", "2011-06-01T10:00:00+02:00"]
    assert labs["code"].tolist() == ["751-8", "751-8", "6690-2", "770-8", "764-1", "751-8", "751-8"]
    assert labs["value"].tolist() == ["1.2", "<0.1", "4.0", "30", "5", "clotted", "0.8"]
    assert labs["unit"].tolist()[:5] == ["10*9/L", "10*3/uL", "10*3/uL", "%", "%"]
    assert pd.isna(labs["unit"].iloc[5]) and labs["unit"].iloc[6] == "x10^9/L"
    assert labs["ref_range_lower"].iloc[0] == 1.8 and labs["ref_range_lower"].iloc[1:].isna().all()


def test_persons_deaths_diagnoses(fhir):
    p = fhir.persons
    assert p["person_id"].tolist() == ["p1", "p2", "p3"]
    assert p["sex"].tolist()[:2] == ["F", "M"] and pd.isna(p["sex"].iloc[2])
    assert p["birth_date"].tolist() == ["1950-03-10", "1960-07-01", "1970-04-02"]
    # latest day of each person's records: p1 haemoglobin 2014-06-01; p2 death 2013-01-01 (after B20 2012-05-01);
    # p3 the SNOMED-only Condition 2014-01-01 (after the clotted sample 2013-03-04)
    assert p["end_of_data"].tolist() == [T("2014-06-01"), T("2013-01-01"), T("2014-01-01")]
    assert fhir.deaths.to_dict("list") == {"person_id": ["p2"], "died_at": ["2013-01-01"]}
    assert fhir.diagnoses.to_dict("list") == {"person_id": ["p1", "p2"],
                                              "diagnosed_at": ["2012-02-01T10:00:00+01:00",
                                                               "2012-05-01T00:00:00+02:00"],
                                              "code": ["C92.0", "B20"]}
    assert fhir.settings["birth_date"]["completed"] == 1
    # the same dtype for the ids of all four tables: text
    assert {str(t["person_id"].dtype) for t in (fhir.labs, p, fhir.diagnoses, fhir.deaths)} == {"object"}


def test_attrition(fhir):
    att = fhir.attrition
    assert att.drop(columns="description").values.tolist() == [
        [0, "Observation", 0, 0, 0, 3, 11],   # 11 Observations; p1, p2, p3
        [1, "Observation", 0, 1, 1, 3, 10],   # 9: no subject
        [2, "Observation", 0, 1, 1, 3, 9],    # 8: entered-in-error
        [3, "Observation", 0, 1, 1, 3, 8],    # 2: haemoglobin
        [4, "Observation", 0, 1, 1, 3, 7],    # 10: dataAbsentReason only
        [5, "persons", 0, 0, 1, 3, 7],        # Patient without id
        [6, "persons", 0, 0, 1, 3, 7],        # repeat p1
        [7, "deaths", 0, 0, 1, 3, 7],         # p3 deceasedBoolean without a date
        [8, "diagnoses", 0, 0, 1, 3, 7],      # entered-in-error Condition
        [9, "diagnoses", 0, 0, 1, 3, 7],      # SNOMED only
        [10, "Encounter", 0, 0, 2, 3, 7],
        [11, "Medication", 0, 0, 1, 3, 7],
    ]
    d = att["description"].tolist()
    assert "unmapped" in d[3] and "value" in d[4] and "deceasedBoolean" in d[7] and "ICD-10" in d[9]
    assert d[10] == "Encounter resources (not read)"
    assert fhir.settings["resources"] == {"Condition": 4, "Encounter": 2, "Medication": 1, "Observation": 11,
                                          "Patient": 5}


def test_build_cohort_by_hand(fhir):
    cohort = fhir.build_cohort()  # andersen2016, index "first", 4 years; times at their own offset
    t = cohort.table.set_index("person_id")
    assert t.index.tolist() == ["p1", "p2", "p3"]
    # p1: 1.2 x10^9/L = 1200 mild; p2: <0.1 x10^3/uL = <100 moderate_severe; p3: 4.0 x (30 + 5) / 100 -> 1400 mild
    assert t["tier"].astype(str).tolist() == ["mild", "moderate_severe", "mild"]
    assert t["index_anc_per_ul"].tolist() == pytest.approx([1200, 100, 1400])
    assert t.loc["p3", "index_anc_source"] == "derived"
    assert t["index_sampled_at"].tolist() == [T("2010-01-05 08:30"), T("2012-02-01 09:00"), T("2013-03-03 10:00")]
    assert t.loc["p1", "age_at_index"] == pytest.approx((T("2010-01-05") - T("1950-03-10")).days / 365.25)
    assert bool(t.loc["p1", "aml"]) and bool(t.loc["p2", "hiv"]) and bool(t.loc["p2", "death"])
    assert t.loc["p2", "death_time"] == pytest.approx((T("2013-01-01") - T("2012-02-01")).days / 365.25)
    # p1's nadir is the 0.8 of 2011-06-01 (the entered-in-error 0.2 was not passed on)
    assert t.loc["p1", "nadir_anc_per_ul"] == pytest.approx(800)
    att = cohort.attrition
    assert att.iloc[: len(fhir.attrition)].drop(columns="step").equals(fhir.attrition.drop(columns="step"))
    read = att[att["description"] == "lab rows read"].iloc[0]
    assert (read["persons"], read["lab_rows"]) == (3, 7)


def test_one_file_and_end_of_data(tmp_path):
    f = tmp_path / "all.ndjson"
    f.write_text(ndjson(PATIENTS[:1] + OBSERVATIONS[:1]))
    one = read_fhir(f, end_of_data="2016-12-31")
    assert one.persons["end_of_data"].tolist() == [T("2016-12-31")] and one.diagnoses.empty
    assert list(one.diagnoses.columns) == ["person_id", "diagnosed_at", "code"]
    by_id = read_fhir(write_export(tmp_path / "x"), end_of_data={"p2": "2020-01-01"})
    assert by_id.persons["end_of_data"].tolist() == [T("2014-06-01"), T("2020-01-01"), T("2014-01-01")]


def test_malformed_lines(tmp_path):
    folder = write_export(tmp_path / "bad")
    (folder / "Patient.ndjson").write_text(ndjson(PATIENTS[:1]) + '{"resourceType": "Patient", "id": \n')
    with pytest.raises(NeutrostatsError, match=r"read_fhir: Patient.ndjson line 2 is not valid JSON"):
        read_fhir(folder)
    (folder / "Patient.ndjson").write_text(ndjson(PATIENTS[:1]) + "\n[1, 2]\n")
    with pytest.raises(NeutrostatsError, match=r"Patient.ndjson line 3 is not a FHIR resource"):
        read_fhir(folder)
    (folder / "Patient.ndjson").write_text("")
    with pytest.raises(NeutrostatsError, match="the export has no Patient resources"):
        read_fhir(folder)
    (folder / "Observation.ndjson.gz").write_bytes(b"not gzip")
    with pytest.raises(NeutrostatsError, match="Observation.ndjson.gz is not a readable gzip file"):
        read_fhir(folder)
    with pytest.raises(NeutrostatsError, match="no .ndjson or .ndjson.gz files"):
        read_fhir(_empty(tmp_path))
    with pytest.raises(NeutrostatsError, match="not found"):
        read_fhir(tmp_path / "nowhere")


def _empty(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    return tmp_path / "empty"


def test_repr(fhir):
    assert repr(fhir).startswith("FhirData(7 lab rows, 3 persons, 2 diagnoses, 1 deaths; end of data: latest day")
