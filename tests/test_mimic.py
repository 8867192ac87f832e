"""read_mimic_iv on a small hand-written MIMIC-IV hosp extract (CSV, CSV.gz,
Parquet). Every expected value follows from the rows written below, worked
out by hand in the comments (e.g. patient 1's first ANC is 1.2 K/uL = 1,200
cells/µL, "mild" under andersen2016), not from running the code."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd
import pytest

from neutrostats import NeutrostatsError
from neutrostats.io.mimic import MimicData, read_mimic_iv

T = pd.Timestamp
NAT = pd.NaT

PATIENTS = """subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod
1,F,60,2150,2008 - 2010,
2,M,91,2160,2011 - 2013,2163-05-01
3,M,45,2170,2014 - 2016,
4,F,70,2180,2017 - 2019,2181-01-10
5,F,30,2140,2008 - 2010,
3,F,50,2170,2014 - 2016,
"""
# patient 2: anchor_age 91 = "older than 89": birth date unknown. The second row of 3 is a repeat.
ADMISSIONS = """subject_id,hadm_id,admittime,dischtime,deathtime,admission_type
1,100,2150-03-01 10:00:00,2150-03-05 12:00:00,,URGENT
1,101,2152-06-01 08:00:00,2152-06-03 09:00:00,,URGENT
2,200,2162-01-10 00:00:00,2162-01-20 00:00:00,,EW EMER.
3,300,2171-02-01 08:00:00,2171-02-04 08:00:00,,ELECTIVE
4,400,2180-12-01 09:00:00,2180-12-28 10:00:00,,URGENT
5,500,2141-01-01 10:00:00,2141-01-02 12:00:00,,ELECTIVE
"""
LABEVENTS = ("labevent_id,subject_id,hadm_id,specimen_id,itemid,charttime,storetime,value,valuenum,valueuom,"
             "ref_range_lower,ref_range_upper,flag\n") + """\
1,1,100,11,52075,2150-03-02 06:00:00,2150-03-02 07:00:00,1.2,1.2,K/uL,1.8,7.7,abnormal
2,1,100,11,51222,2150-03-02 06:00:00,2150-03-02 07:00:00,13.5,13.5,g/dL,12,16,
3,1,101,12,52075,2152-06-02 07:00:00,2152-06-02 08:00:00,0.8,0.8,K/uL,,,abnormal
4,2,200,21,52075,2162-01-11 05:00:00,2162-01-11 06:00:00,<0.1,,K/uL,,,abnormal
5,3,300,31,51301,2171-02-02 06:00:00,2171-02-02 07:00:00,4.0,4.0,K/uL,,,
6,3,300,31,51256,2171-02-02 06:00:00,2171-02-02 07:00:00,30,30,%,,,
7,3,300,31,51144,2171-02-02 06:00:00,2171-02-02 07:00:00,5,5,%,,,
8,4,400,41,52075,2180-12-02 07:00:00,2180-12-02 08:00:00,clotted,,K/uL,,,
9,4,400,42,52075,2180-12-03 07:00:00,2180-12-03 08:00:00,,2.5,K/uL,,,
10,5,500,51,51222,2141-01-01 12:00:00,2141-01-01 13:00:00,12.0,12.0,g/dL,12,16,
11,,,61,52075,2150-01-01 00:00:00,,1.0,1.0,K/uL,,,
"""
# 51222 is haemoglobin (not a blood differential item id); row 11 has no subject_id.
DIAGNOSES = """subject_id,hadm_id,seq_num,icd_code,icd_version
1,101,1,C920,10
1,100,2,2851,9
2,200,1,B20,10
3,300,1,C911,10
3,999,1,C920,10
4,300,1,B20,10
4,400,2,4019,9
5,500,1,E119,10
"""
# 3/999: no such admission; 4/300: hadm 300 is patient 3's. Both counted.
TEXT = {"patients": PATIENTS, "admissions": ADMISSIONS, "labevents": LABEVENTS, "diagnoses_icd": DIAGNOSES}
DATES = {"patients": ["dod"], "admissions": ["admittime", "dischtime"], "labevents": ["charttime", "storetime"]}


def write_hosp(folder, fmt, text=None):
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in (text or TEXT).items():
        if fmt == "csv":
            (folder / f"{name}.csv").write_text(body)
        elif fmt == "csv.gz":
            (folder / f"{name.upper()}.csv.gz").write_bytes(gzip.compress(body.encode()))
        else:  # typed columns, as the PhysioNet Parquet/BigQuery exports have them
            df = pd.read_csv(io.StringIO(body), dtype={"value": "string", "icd_code": "string",
                                                       "valueuom": "string"})
            for col in DATES.get(name, []):
                df[col] = pd.to_datetime(df[col]).astype("datetime64[us]")
            df.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.fixture(params=["csv", "csv.gz", "parquet"])
def mimic(request, tmp_path):
    folder = write_hosp(tmp_path / "mimic" / "hosp", request.param)
    return read_mimic_iv(tmp_path / "mimic")  # the hosp/ subfolder is found


def test_labs_value_by_value(mimic):
    assert isinstance(mimic, MimicData)
    labs = mimic.labs
    assert list(labs.columns) == ["person_id", "sampled_at", "code", "value", "unit", "ref_range_lower"]
    assert labs["person_id"].dtype == np.int64
    assert labs["person_id"].tolist() == [1, 1, 2, 3, 3, 3, 4, 4]
    assert labs["sampled_at"].tolist() == [T("2150-03-02 06:00"), T("2152-06-02 07:00"), T("2162-01-11 05:00")] + \
        [T("2171-02-02 06:00")] * 3 + [T("2180-12-02 07:00"), T("2180-12-03 07:00")]
    # 52075 ANC -> 751-8, 51301 WBC -> 6690-2, 51256 neutrophils % -> 770-8, 51144 bands % -> 764-1
    assert labs["code"].tolist() == ["751-8", "751-8", "751-8", "6690-2", "770-8", "764-1", "751-8", "751-8"]
    # value as written; the empty value of row 9 falls back to valuenum 2.5
    assert labs["value"].tolist() == ["1.2", "0.8", "<0.1", "4.0", "30", "5", "clotted", "2.5"]
    assert labs["unit"].tolist() == ["K/uL", "K/uL", "K/uL", "K/uL", "%", "%", "K/uL", "K/uL"]
    assert labs["ref_range_lower"].iloc[0] == 1.8 and labs["ref_range_lower"].iloc[1:].isna().all()


def test_persons_deaths_diagnoses(mimic):
    p = mimic.persons
    assert list(p.columns) == ["person_id", "sex", "birth_date", "end_of_data"]
    assert p["person_id"].tolist() == [1, 2, 3, 4, 5] and p["person_id"].dtype == np.int64
    assert p["sex"].tolist() == ["F", "M", "M", "F", "F"]  # patient 3: the first row (M) is kept
    # July 1 of anchor_year - anchor_age: 2150-60, (91: unknown), 2170-45, 2180-70, 2140-30
    assert p["birth_date"].tolist() == [T("2090-07-01"), NAT, T("2125-07-01"), T("2110-07-01"), T("2110-07-01")]
    # later of last discharge and last lab (day), or dod when later:
    # 1: discharge 2152-06-03 > lab 2152-06-02; 2: dod 2163-05-01 > discharge 2162-01-20;
    # 3: discharge 2171-02-04; 4: dod 2181-01-10 > discharge 2180-12-28; 5: discharge 2141-01-02
    assert p["end_of_data"].tolist() == [T("2152-06-03"), T("2163-05-01"), T("2171-02-04"), T("2181-01-10"),
                                         T("2141-01-02")]
    assert mimic.deaths.to_dict("list") == {"person_id": [2, 4], "died_at": [T("2163-05-01"), T("2181-01-10")]}
    dx = mimic.diagnoses
    assert dx["person_id"].dtype == np.int64
    # ICD-10 rows with a matching admission, dated at its admittime
    assert dx.to_dict("list") == {"person_id": [1, 2, 3, 5],
                                  "diagnosed_at": [T("2152-06-01 08:00"), T("2162-01-10"), T("2171-02-01 08:00"),
                                                   T("2141-01-01 10:00")],
                                  "code": ["C920", "B20", "C911", "E119"]}


def test_attrition(mimic):
    att = mimic.attrition
    assert list(att.columns) == ["step", "description", "table", "excluded_persons", "excluded_lab_rows",
                                 "excluded_records", "persons", "lab_rows"]
    assert att.drop(columns="description").values.tolist() == [
        [0, "labevents", 0, 0, 0, 5, 11],   # 11 rows of 5 subject_ids
        [1, "labevents", 0, 1, 1, 5, 10],   # row 11 has no subject_id
        [2, "labevents", 1, 2, 2, 4, 8],    # two haemoglobin rows; patient 5 had nothing else
        [3, "persons", 0, 0, 1, 4, 8],      # the repeat row of patient 3
        [4, "persons", 0, 0, 1, 4, 8],      # anchor_age 91
        [5, "diagnoses", 0, 0, 2, 4, 8],    # ICD-9 2851 and 4019
        [6, "diagnoses", 0, 0, 2, 4, 8],    # 3/999 and 4/300
    ]
    d = att["description"].tolist()
    assert "unmapped" in d[2] and "91" in d[4] and "icd_version 9" in d[5] and "admission" in d[6]
    assert len(mimic.labs) == att["lab_rows"].iloc[2]
    assert len(mimic.diagnoses) + 2 + 2 == len(DIAGNOSES.strip().splitlines()) - 1


def test_build_cohort_by_hand(mimic):
    cohort = mimic.build_cohort()  # andersen2016, index "first", 4 years
    t = cohort.table.set_index("person_id")
    assert t.index.tolist() == [1, 2, 3, 4]
    # 1: 1.2 K/uL = 1200 mild; 2: <0.1 K/uL = <100 moderate_severe; 3: 4.0 x (30 + 5) / 100 = 1.4 -> 1400 mild;
    # 4: the clotted sample is unusable, the next one is 2.5 -> 2500 normal
    assert t["tier"].astype(str).tolist() == ["mild", "moderate_severe", "mild", "normal"]
    assert t["index_anc_per_ul"].tolist() == pytest.approx([1200, 100, 1400, 2500])
    assert t.loc[3, "index_anc_source"] == "derived" and t.loc[2, "index_anc_censor"] == "<"
    assert t["index_sampled_at"].tolist() == [T("2150-03-02 06:00"), T("2162-01-11 05:00"), T("2171-02-02 06:00"),
                                              T("2180-12-03 07:00")]
    assert t.loc[1, "age_at_index"] == pytest.approx((T("2150-03-02") - T("2090-07-01")).days / 365.25)
    assert pd.isna(t.loc[2, "age_at_index"])
    # C920 on 2152-06-01 is within 4 years of 2150-03-02: incident AML
    assert bool(t.loc[1, "aml"]) and t.loc[1, "aml_time"] == pytest.approx(
        (T("2152-06-01") - T("2150-03-02")).days / 365.25)
    # dated at admittime, the codes of the index stay are prevalent
    assert bool(t.loc[2, "hiv_prevalent"]) and bool(t.loc[3, "hematologic_malignancy_prevalent"])
    assert bool(t.loc[2, "death"]) and bool(t.loc[4, "death"]) and not bool(t.loc[1, "death"])
    assert t.loc[4, "death_time"] == pytest.approx((T("2181-01-10") - T("2180-12-03")).days / 365.25)
    att = cohort.attrition
    assert att["step"].tolist() == list(range(len(att)))
    assert att.iloc[: len(mimic.attrition)].drop(columns="step").equals(mimic.attrition.drop(columns="step"))
    read = att[att["description"] == "lab rows read"].iloc[0]
    assert (read["persons"], read["lab_rows"]) == (4, 8)


def test_dischtime_and_end_of_data_options(tmp_path):
    folder = write_hosp(tmp_path, "csv")
    m = read_mimic_iv(folder, diagnosis_time="dischtime", end_of_data="2200-01-01")
    assert m.diagnoses["diagnosed_at"].tolist() == [T("2152-06-03 09:00"), T("2162-01-20"), T("2171-02-04 08:00"),
                                                    T("2141-01-02 12:00")]
    assert (m.persons["end_of_data"] == T("2200-01-01")).all()
    assert m.settings["end_of_data"] == {"rule": "end_of_data argument", "date": "2200-01-01"}
    # at discharge, patient 3's C911 comes after the index sample: incident, no longer prevalent
    t = m.build_cohort().table.set_index("person_id")
    assert not bool(t.loc[3, "hematologic_malignancy_prevalent"]) and bool(t.loc[3, "hematologic_malignancy"])
    by_id = read_mimic_iv(folder, end_of_data={1: "2160-01-01"})
    assert by_id.persons["end_of_data"].tolist()[:2] == [T("2160-01-01"), T("2163-05-01")]
    extended = read_mimic_iv(folder, item_map={51222: None, 99999: "751-8", 51144: None})
    assert "764-1" not in extended.labs["code"].tolist()


def test_errors(tmp_path):
    folder = write_hosp(tmp_path / "a", "csv")
    (folder / "admissions.csv").unlink()
    with pytest.raises(NeutrostatsError, match=r"read_mimic_iv: table\(s\) admissions not found.*labevents.csv"):
        read_mimic_iv(folder)
    with pytest.raises(NeutrostatsError, match="not a folder"):
        read_mimic_iv(tmp_path / "nowhere")
    text = dict(TEXT, labevents=LABEVENTS.replace(",valueuom,", ",unit,"))
    with pytest.raises(NeutrostatsError, match=r"labevents.csv has no column valueuom.*found \["):
        read_mimic_iv(write_hosp(tmp_path / "b", "csv", text))
    text = dict(TEXT, labevents=LABEVENTS.replace("2150-03-02 06:00:00,2150", "2150-03-02T06:00:00+01:00,2150"))
    with pytest.raises(NeutrostatsError,
                       match=r"labevents.charttime has 2 time\(s\) with a UTC offset \(e.g. '2150-03-02T06:00:00\+01"):
        read_mimic_iv(write_hosp(tmp_path / "c", "csv", text))
    with pytest.raises(NeutrostatsError, match="item_map must map integer item ids"):
        read_mimic_iv(folder.parent, item_map={52075: "ANC"})
    with pytest.raises(NeutrostatsError, match="diagnosis_time"):
        read_mimic_iv(folder, diagnosis_time="chartdate")


def test_aware_parquet_time_refused(tmp_path):
    folder = write_hosp(tmp_path, "parquet")
    df = pd.read_parquet(folder / "labevents.parquet")
    df["charttime"] = df["charttime"].dt.tz_localize("Europe/Copenhagen")
    df.to_parquet(folder / "labevents.parquet", index=False)
    with pytest.raises(NeutrostatsError, match="charttime is time-zone-aware"):
        read_mimic_iv(folder)


def test_repr(tmp_path):
    m = read_mimic_iv(write_hosp(tmp_path, "csv"))
    assert repr(m).startswith("MimicData(8 lab rows, 5 persons, 4 diagnoses, 2 deaths; end of data: later")
    assert "<table" in m._repr_html_()


def test_unreadable_time_and_reference_counted(tmp_path):
    text = dict(TEXT, labevents=LABEVENTS.replace("3,1,101,12,52075,2152-06-02 07:00:00", "3,1,101,12,52075,02/06/2152")
                .replace("K/uL,1.8,7.7", "K/uL,see lab,7.7"))
    m = read_mimic_iv(write_hosp(tmp_path, "csv", text))
    # the row stays (build_cohort counts its missing time); both oddities are counted
    assert len(m.labs) == 8 and pd.isna(m.labs["sampled_at"].iloc[1]) and pd.isna(m.labs["ref_range_lower"].iloc[0])
    notes = m.attrition.set_index("description")["excluded_records"]
    assert notes["labevents rows kept whose charttime is not a time (passed on without one)"] == 1
    assert notes["labevents ref_range_lower not a number (left missing)"] == 1
