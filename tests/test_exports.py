"""Exports shaped as hospitals and research databases hand them out, written
here as files, read as a new user would: each gives the numbers worked out by
hand in the comments, or a one-line error that says what to pass.

Andersen 2016 tiers (cells/µL): normal >=1800, subnormal [1500,1800), mild
[1000,1500), moderate_severe <1000. Windows: floor(4 x 365.25) = 1461 days.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from neutrostats import NeutrostatsError, build_cohort, cbc_to_long, classify_anc, read_fhir, read_mimic_iv
from neutrostats.cli import main
from neutrostats.labs.codes import MIMIC_IV_LAB_CODES
from neutrostats.io import read_table

OUT = {"aml": ["C92.0"]}

# --- an Epic-like wide CBC export (US dates, text results) -----------------------------------

US_CBC = """MRN,Collected,ANC (cells/uL),WBC (10^9/L),NEUT%,BAND%
A1,03/14/2020 08:15 AM,<100,,,
A2,03/15/2020 09:00 PM,see comment,4.0,50,5
A3,03/25/2020 10:00 AM,"1,200",,,
A4,03/26/2020 11:30 PM,0.9,,,
A5,03/27/2020 12:10 AM,1450,,,
"""
US_PERSONS = """MRN,sex,DOB,end_of_data
A1,F,07/25/1961,12/31/2023
A2,M,01/02/1970,12/31/2023
A3,F,12/13/1980,12/31/2023
A4,M,03/04/1990,12/31/2023
A5,F,02/28/1955,12/31/2023
"""
# ICD-10-CM without dots: C9200 is AML (C92.0); A1's is dated on its index day (prevalent),
# A5's 30 days after the index (incident).
US_DX = """MRN,dx_date,icd10cm
A1,03/14/2020,C9200
A5,04/26/2020,C9200
"""


def _us_tables(tmp_path):
    for name, text in (("cbc", US_CBC), ("persons", US_PERSONS), ("dx", US_DX)):
        (tmp_path / f"{name}.csv").write_text(text)
    cbc = read_table(tmp_path / "cbc.csv", text_columns="all")
    persons = read_table(tmp_path / "persons.csv", text_columns="all")
    dx = read_table(tmp_path / "dx.csv", text_columns="all")
    return cbc_to_long(cbc, person="MRN", time="Collected"), persons, dx


def _cohort(labs, persons, dx, **kw):
    return build_cohort(labs, persons, dx, person="MRN", time="Collected", birth_date="DOB",
                        diagnosis_date="dx_date", diagnosis_code="icd10cm", outcomes=OUT, **kw)


@pytest.mark.parametrize("engine", ["numpy", "duckdb"])
def test_us_wide_cbc_export(tmp_path, engine):
    labs, persons, dx = _us_tables(tmp_path)
    c = _cohort(labs, persons, dx, engine=engine)
    t = c.table.set_index("person_id")
    # A1: "<100" cells/µL lies wholly below 1000: moderate_severe, censored "<", bound 100.
    assert t.loc["A1", "tier"] == "moderate_severe" and t.loc["A1", "index_anc_censor"] == "<"
    assert t.loc["A1", "index_anc_per_ul"] == 100.0
    # A2: direct ANC "see comment"; derived 4.0 x 1000 x (50 + 5) / 100 = 2,200: normal, at 9 PM on 15 March.
    assert t.loc["A2", "index_anc_per_ul"] == 2200.0 and t.loc["A2", "index_anc_source"] == "derived"
    assert t.loc["A2", "tier"] == "normal" and t.loc["A2", "index_date"] == pd.Timestamp("2020-03-15")
    # A5: 1,450 cells/µL is mild; 12:10 AM is ten past midnight on the 27th.
    assert t.loc["A5", "tier"] == "mild"
    assert t.loc["A5", "index_sampled_at"] == pd.Timestamp("2020-03-27 00:10")
    # A3 ("1,200" cells/µL: 1.2 is no count, 1,200 needs thousands=) and A4 (0.9 cells/µL: a
    # 10^9/L value with the wrong unit) have no usable ANC; each is one row and one person in the flow.
    assert sorted(t.index) == ["A1", "A2", "A5"]
    att = c.attrition
    for word in ("ambiguous", "implausibly low"):
        row = att[att["description"].str.contains(word)]
        assert len(row) == 1 and row["excluded_lab_rows"].iloc[0] == 1 and row["excluded_persons"].iloc[0] == 1
    # Month-first dates, settled by 07/25 and 12/13: A1 born 25 July 1961, indexed 14 March 2020.
    days = (pd.Timestamp("2020-03-14") - pd.Timestamp("1961-07-25")).days
    assert days == 21417  # 58 years of 365 days (21,170) + 14 leap days (1964..2016) + 233 days from 25 July
    assert t.loc["A1", "age_at_index"] == pytest.approx(days / 365.25)
    # AML: A1's diagnosis on the index day is prevalent; A5's is incident after 30 days.
    assert bool(t.loc["A1", "aml_prevalent"]) and pd.isna(t.loc["A1", "aml"])
    assert bool(t.loc["A5", "aml"]) and t.loc["A5", "aml_time"] == pytest.approx(30 / 365.25)


def test_us_wide_cbc_export_with_thousands_separator(tmp_path):
    labs, persons, dx = _us_tables(tmp_path)
    t = _cohort(labs, persons, dx, thousands=",").table.set_index("person_id")
    assert t.loc["A3", "index_anc_per_ul"] == 1200.0 and t.loc["A3", "tier"] == "mild"


def test_us_wide_cbc_export_through_the_cli(tmp_path, capsys):
    (tmp_path / "cbc.csv").write_text(US_CBC)
    code = main(["classify", str(tmp_path / "cbc.csv"), "--wide", "--scheme", "andersen2016",
                 "--columns", "labs.person=MRN,labs.time=Collected", "--summary-format", "json"])
    assert code == 0
    summary = {(r["kind"], r["level"]): r["n"] for r in json.loads(capsys.readouterr().out)}
    # Tiers of the five samples: A1 moderate_severe, A2 normal (derived), A5 mild.
    assert summary[("tier", "moderate_severe")] == 1 and summary[("tier", "normal")] == 1
    assert summary[("tier", "mild")] == 1
    assert summary[("flag", "ambiguous_number")] == 1 and summary[("flag", "unit_suspect")] == 1


# --- a European export: day-first dates, decimal commas, local times ------------------------

EU_LABS = """PatientID;Provetid;ANC (10^9/L)
1;05.03.2020 00:30;1,2
2;25.03.2020 08:00;0,45
"""
EU_PERSONS = """PatientID;sex;birth_date;end_of_data
1;F;05.03.1950;31.12.2023
2;M;25.03.1950;31.12.2023
"""


def test_european_export(tmp_path):
    (tmp_path / "labs.csv").write_text(EU_LABS)
    (tmp_path / "persons.csv").write_text(EU_PERSONS)
    labs = pd.read_csv(tmp_path / "labs.csv", sep=";", dtype=str)
    persons = pd.read_csv(tmp_path / "persons.csv", sep=";", dtype=str)
    long = cbc_to_long(labs, person="PatientID", time="Provetid")
    dx = pd.DataFrame({"PatientID": ["1"], "diagnosed_at": ["05.03.2020"], "code": ["C92.0"]})
    # A lone "05.03.2020" does not settle its order: the diagnosis table needs its pattern.
    with pytest.raises(NeutrostatsError, match="'diagnosed_at' of diagnoses"):
        build_cohort(long, persons, dx, person="PatientID", time="Provetid", decimal=",", outcomes=OUT)
    c = build_cohort(long, persons, dx, person="PatientID", time="Provetid", decimal=",", outcomes=OUT,
                     date_format={"diagnoses": "%d.%m.%Y"})
    t = c.table.set_index("person_id")
    # "1,2" x10^9/L = 1,200 cells/µL (mild); "0,45" = 450 (moderate_severe).
    assert t.loc["1", "index_anc_per_ul"] == 1200.0 and t.loc["1", "tier"] == "mild"
    assert t.loc["2", "index_anc_per_ul"] == 450.0 and t.loc["2", "tier"] == "moderate_severe"
    # 05.03 is 5 March (25.03 settles day-first); sampled 00:30 on the day of the diagnosis: prevalent.
    assert t.loc["1", "index_date"] == pd.Timestamp("2020-03-05") and bool(t.loc["1", "aml_prevalent"])
    assert t.loc["1", "age_at_index"] == pytest.approx(25568 / 365.25)  # 70 x 365 + 18 leap days (1952..2020)


def test_european_thousands_refused_in_cells_per_ul():
    labs = pd.DataFrame({"value": ["1.200", "1.200"], "unit": ["cells/uL", "10^9/L"]})
    out = classify_anc(labs, scheme="andersen2016")
    # cells/µL: 1.2 is no count, so "1.200" is ambiguous; 10^9/L: 1.2 x 1000 = 1,200 (mild).
    assert out["anc_flag"].tolist()[0] == "ambiguous_number" and out["tier"].tolist()[1] == "mild"
    out = classify_anc(labs, scheme="andersen2016", thousands=".", decimal=",")
    assert out["anc_per_ul"].tolist()[0] == 1200.0


# --- MIMIC-IV (hosp module) ------------------------------------------------------------------

MIMIC = {
    "patients": "subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod\n"
                "10,F,60,2150,2008 - 2010,\n11,M,40,2160,2011 - 2013,2161-06-01\n",
    "admissions": "subject_id,hadm_id,admittime,dischtime,deathtime\n"
                  "10,100,2150-03-01 10:00:00,2150-03-05 12:00:00,\n11,110,2160-01-01 10:00:00,2160-01-09 10:00:00,\n",
    "labevents": "labevent_id,subject_id,hadm_id,itemid,charttime,value,valuenum,valueuom,ref_range_lower\n"
                 "1,10,100,52075,2150-03-02 06:00:00,1.2,1.2,K/uL,1.8\n"
                 "2,11,110,51301,2160-01-02 06:00:00,4.0,4.0,K/uL,4.0\n"
                 "3,11,110,51256,2160-01-02 06:00:00,20,20,%,\n"
                 "4,11,110,51144,2160-01-02 06:00:00,5,5,%,\n",
    "diagnoses_icd": "subject_id,hadm_id,seq_num,icd_code,icd_version\n10,100,1,C920,10\n11,110,1,2851,9\n",
}


def test_mimic_iv_export(tmp_path):
    for name, text in MIMIC.items():
        (tmp_path / f"{name}.csv").write_text(text)
    m = read_mimic_iv(tmp_path)
    c = m.build_cohort(outcomes=OUT)
    t = c.table.set_index("person_id")
    # 10: 1.2 K/uL = 1,200 (mild); AML coded at the admission of the index sample: prevalent.
    assert t.loc[10, "tier"] == "mild" and bool(t.loc[10, "aml_prevalent"])
    # 11: 4.0 x 1000 x (20 + 5) / 100 = 1,000 cells/µL: mild (1,000 is the lower bound of mild); died
    # 2161-06-01, 516 days after the index of 2160-01-02.
    assert t.loc[11, "index_anc_per_ul"] == 1000.0 and t.loc[11, "tier"] == "mild"
    assert bool(t.loc[11, "death"]) and t.loc[11, "death_time"] == pytest.approx(516 / 365.25)
    # The ICD-9 row is counted by the reader, whose rows open the flow.
    assert c.attrition["description"].str.contains("ICD-9").any()


def test_mimic_item_ids_without_a_code_map_stop_with_the_codes_found():
    labs = pd.DataFrame({"person_id": [1, 1], "sampled_at": ["2150-01-01"] * 2, "code": [52075, 51301],
                         "value": ["1.2", "4.0"], "unit": ["K/uL", "K/uL"]})
    with pytest.raises(NeutrostatsError, match="52075") as err:
        classify_anc(labs)
    assert "code_map" in str(err.value)
    out = classify_anc(labs, scheme="andersen2016", code_map=MIMIC_IV_LAB_CODES)
    assert out["tier"].tolist()[0] == "mild"


# --- FHIR R4 Bulk Data -------------------------------------------------------------------------

def _fhir(tmp_path):
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-03-01"}
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "751-8"}]},
           "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2020-03-01T00:30:00+01:00",
           "valueQuantity": {"value": 0.5, "comparator": "<", "unit": "10*3/uL",
                             "system": "http://unitsofmeasure.org", "code": "10*3/uL"}}
    cond = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C92.0"}]},
            "onsetDateTime": "2020-03-01"}
    other = {"resourceType": "Encounter", "id": "e1"}
    for name, rows in (("Patient", [patient]), ("Observation", [obs]), ("Condition", [cond]),
                       ("Encounter", [other])):
        (tmp_path / f"{name}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return read_fhir(tmp_path, end_of_data="2023-12-31")


def test_fhir_export_local_day_or_utc(tmp_path):
    f = _fhir(tmp_path)
    # "<0.5" x10^3/µL: [0, 500) cells/µL, inside moderate_severe; sampled 00:30 local time on
    # 1 March = 23:30 UTC on 29 February.
    local = f.build_cohort(outcomes=OUT).table.iloc[0]
    assert local["tier"] == "moderate_severe" and local["index_date"] == pd.Timestamp("2020-03-01")
    assert bool(local["aml_prevalent"])  # diagnosed on the index day
    utc = f.build_cohort(outcomes=OUT, timezone="UTC").table.iloc[0]
    assert utc["index_date"] == pd.Timestamp("2020-02-29") and bool(utc["aml"])
    assert utc["aml_time"] == pytest.approx(1 / 365.25)
    assert f.attrition["description"].str.contains("Encounter").any()


# --- Parquet with time-zone-aware timestamps, and ids of two types -----------------------------

def test_parquet_with_aware_timestamps_and_text_ids(tmp_path):
    t = pd.Series(pd.to_datetime(["2020-11-01 23:30"]).tz_localize("America/New_York"))
    labs = pd.DataFrame({"person_id": ["7"], "sampled_at": t, "value": ["0.8"], "unit": ["10^9/L"]})
    labs.to_parquet(tmp_path / "labs.parquet")
    persons = pd.DataFrame({"person_id": [7], "sex": ["F"], "birth_date": ["1950-01-01"],
                            "end_of_data": ["2023-12-31"]})
    dx = pd.DataFrame({"person_id": [7], "diagnosed_at": ["2020-11-01"], "code": ["C92.0"]})
    with pytest.raises(NeutrostatsError, match="same type in every table"):
        build_cohort(str(tmp_path / "labs.parquet"), persons, dx, code=None, outcomes=OUT)
    persons["person_id"] = persons["person_id"].astype(str)
    dx["person_id"] = dx["person_id"].astype(str)
    row = build_cohort(str(tmp_path / "labs.parquet"), persons, dx, code=None, outcomes=OUT).table.iloc[0]
    # 23:30 in New York is 04:30 UTC on 2 November; the day that counts is New York's 1 November.
    assert row["index_date"] == pd.Timestamp("2020-11-01") and bool(row["aml_prevalent"])


def test_one_line_errors_in_the_cli(tmp_path, capsys):
    (tmp_path / "persons.csv").write_text("person_id,sex,birth_date,end_of_data\n1,F,05.03.1950,2016-12-31\n"
                                          "2,M,06.04.1950,2016-12-31\n")
    (tmp_path / "labs.csv").write_text("person_id,sampled_at,code,value,unit\n1,2010-01-01,751-8,1.2,10^9/L\n")
    (tmp_path / "dx.csv").write_text("person_id,diagnosed_at,code\n")
    code = main(["report", "--labs", str(tmp_path / "labs.csv"), "--persons", str(tmp_path / "persons.csv"),
                 "--diagnoses", str(tmp_path / "dx.csv"), "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "birth_date" in err and "--date-format" in err and "date_format=" not in err


def test_broken_parquet_lab_files_are_named_without_engine_text(tmp_path):
    persons = pd.DataFrame({"person_id": [1], "sex": ["F"], "birth_date": ["1950-01-01"],
                            "end_of_data": ["2020-01-01"]})
    dx = pd.DataFrame({"person_id": [1], "diagnosed_at": ["2010-01-01"], "code": ["C92.0"]})
    (tmp_path / "empty.parquet").write_bytes(b"")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    pd.DataFrame({"person_id": pd.Series([], dtype="int64"), "sampled_at": pd.Series([], dtype="datetime64[ns]"),
                  "value": pd.Series([], dtype=object), "unit": pd.Series([], dtype=object)}).to_parquet(
        tmp_path / "norows.parquet")
    for name, words in (("empty", "0 bytes: empty"), ("bad", "not a readable Parquet file"),
                        ("norows", "table labs has no rows")):
        with pytest.raises(NeutrostatsError, match=words) as err:
            build_cohort(str(tmp_path / f"{name}.parquet"), persons, dx, outcomes=OUT)
        assert "SELECT" not in str(err.value) and "LINE" not in str(err.value)
