"""read_omop on a small hand-made OMOP CDM v5.4 extract, written as CSV, Parquet
and DuckDB. Every expected value follows from the rows written below (e.g.
person 1's first ANC is 1.2 x10^9/L = 1,200 cells/µL, "mild" under
andersen2016), not from running the code."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from neutrostats import NeutrostatsError
from neutrostats.io.omop import OmopData, read_omop

duckdb = pytest.importorskip("duckdb")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

NA = pd.NA
T = pd.Timestamp
NAT = pd.NaT
ANC, ANC_ANY, ANC_MANUAL, HGB = 3013650, 3017732, 3017501, 3000963


def _frame(columns, rows, ints=(), floats=(), dates=()):
    df = pd.DataFrame(rows, columns=columns)
    for c in columns:
        if c in ints:
            df[c] = df[c].astype("Int64")
        elif c in floats:
            df[c] = df[c].astype(float)
        elif c in dates:
            df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
        else:
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df


M_COLS = ["measurement_id", "person_id", "measurement_concept_id", "measurement_date", "measurement_datetime",
          "operator_concept_id", "value_as_number", "unit_concept_id", "measurement_source_value",
          "unit_source_value", "value_source_value"]
MEASUREMENT = [
    # person 1: ANC by concept, unit as written; then ANC with the unit concept only (10^3/uL)
    (1, 1, ANC, T("2010-01-05"), T("2010-01-05 08:30"), NA, 1.2, NA, "ANC", "10^9/L", None),
    (2, 1, ANC, T("2011-06-01"), NAT, NA, 0.8, 8848, "ANC", None, None),
    # person 2: "<" operator: value_as_number 0.5 wins over the source text
    (3, 2, ANC, T("2012-02-01"), T("2012-02-01 09:00"), 4171756, 0.5, 9444, "ANC", "10^9/L", "< 0.50"),
    # person 3: WBC 4.0, neutrophils 30 %, bands 5 % by LOINC source value -> ANC 1,400 derived
    (4, 3, 0, T("2013-03-03"), T("2013-03-03 10:00"), NA, 4.0, NA, "6690-2", "10*3/uL", None),
    (5, 3, 0, T("2013-03-03"), T("2013-03-03 10:00"), NA, 30.0, 8554, "770-8", "%", None),
    (6, 3, 0, T("2013-03-03"), T("2013-03-03 10:00"), NA, 5.0, 8554, " 764-1 ", None, None),
    # person 4: a clotted sample, then 2.5 x10^9/L (unit concept 9444)
    (7, 4, ANC, T("2014-04-04"), NAT, NA, np.nan, NA, "ANC", "10^9/L", "clotted"),
    (8, 4, ANC_ANY, T("2014-05-05"), NAT, NA, 2.5, 9444, "ANC", None, None),
    # person 5: haemoglobin (unmapped), ANC 1600 /uL with operator "=", an ANC without any value
    (9, 5, HGB, T("2015-01-01"), NAT, NA, 13.5, 8713, "718-7", "g/dL", None),
    (10, 6, 99999, T("2015-03-03"), NAT, NA, 3.1, NA, "LAB123", "10^9/L", None),  # person 6: unmapped
    (11, 5, ANC_MANUAL, T("2015-06-01"), NAT, 4172703, 1600.0, 8647, "ANC", None, None),
    (12, 5, ANC, T("2015-01-01"), NAT, NA, np.nan, NA, "ANC", "10^9/L", None),
    (13, NA, ANC, T("2015-02-02"), NAT, NA, 1.0, NA, "ANC", "10^9/L", None),  # no person_id
]
P_COLS = ["person_id", "gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth", "birth_datetime"]
PERSON = [
    (1, 8532, 1950, 3, 10, T("1950-03-10")),
    (2, 8507, 1960, NA, NA, NAT),            # year only -> July 1
    (3, 8507, 1970, 4, NA, NAT),             # no day -> the 15th
    (4, 8532, 1980, 2, 2, T("1980-01-01")),  # birth_datetime wins over the parts
    (5, 8551, 1945, NA, NA, NAT),            # gender "unknown" -> NA
    (6, 8532, 1990, 12, 31, T("1990-12-31")),
]
C_COLS = ["condition_occurrence_id", "person_id", "condition_concept_id", "condition_start_date",
          "condition_start_datetime", "condition_source_value"]
CONDITION = [
    (1, 1, 0, T("2012-02-01"), NAT, "C92.0"),
    (2, 2, 0, T("2012-05-01"), NAT, "D70"),
    (3, 3, 0, T("2014-01-01"), NAT, "12345"),                  # SNOMED-like: unmapped
    (4, 4, 0, T("2013-01-01"), NAT, "b20"),
    (5, 5, 0, NAT, T("2016-02-02 10:00"), " C91.1"),           # date from the datetime
    (6, 3, 0, T("2014-02-02"), NAT, None),                     # no source value: unmapped
]
DEATH = [(2, T("2013-01-01"))]
O_COLS = ["observation_period_id", "person_id", "observation_period_start_date", "observation_period_end_date"]
OBS = [(1, 1, T("2005-01-01"), T("2012-12-31")), (2, 1, T("2013-01-01"), T("2016-12-31"))] + [
    (i + 1, i, T("2005-01-01"), T("2018-12-31")) for i in (2, 3, 4, 5)]  # person 6: none


def _tables():
    return {
        "measurement": _frame(M_COLS, MEASUREMENT, ints=M_COLS[:3] + ["operator_concept_id", "unit_concept_id"],
                              floats=["value_as_number"], dates=["measurement_date", "measurement_datetime"]),
        "person": _frame(P_COLS, PERSON, ints=P_COLS[:5], dates=["birth_datetime"]),
        "condition_occurrence": _frame(C_COLS, CONDITION, ints=C_COLS[:3],
                                       dates=["condition_start_date", "condition_start_datetime"]),
        "death": _frame(["person_id", "death_date"], DEATH, ints=["person_id"], dates=["death_date"]),
        "observation_period": _frame(O_COLS, OBS, ints=O_COLS[:2], dates=O_COLS[2:]),
    }


def write_extract(folder, fmt, tables=None, names=str.lower):
    """Write the extract; return the source to pass to read_omop."""
    tables = _tables() if tables is None else tables
    folder.mkdir(parents=True, exist_ok=True)
    if fmt in ("csv", "parquet"):
        for name, df in tables.items():
            if fmt == "csv":
                df.to_csv(folder / f"{names(name)}.csv", index=False)
            else:  # *_date columns as Parquet dates, as a database export writes them
                table = pa.Table.from_pandas(df, preserve_index=False)
                for c in [c for c in df.columns if c.endswith("_date")]:
                    table = table.set_column(table.schema.get_field_index(c), c, table[c].cast(pa.date32()))
                pq.write_table(table, folder / f"{names(name)}.parquet")
        return folder
    path = folder / "cdm.duckdb"
    con = duckdb.connect(str(path))
    for name, df in tables.items():
        dates = [c for c in df.columns if c.endswith("_date")]
        replace = f" REPLACE ({', '.join(f'CAST({c} AS DATE) AS {c}' for c in dates)})" if dates else ""
        con.register("frame", df)
        con.execute(f"CREATE TABLE {names(name)} AS SELECT *{replace} FROM frame")
        con.unregister("frame")
    con.close()
    return path


@pytest.fixture(params=["csv", "parquet", "duckdb"])
def omop(request, tmp_path):
    return read_omop(write_extract(tmp_path / "cdm", request.param))


def test_every_format_reads_the_same(tmp_path):
    got = [read_omop(write_extract(tmp_path / f, f)) for f in ("csv", "parquet", "duckdb")]
    for other in got[1:]:
        for name in ("labs", "persons", "diagnoses", "deaths", "attrition"):
            pd.testing.assert_frame_equal(getattr(got[0], name), getattr(other, name))


def test_measurement_mapping(omop):
    labs = omop.labs
    assert list(labs.columns) == ["person_id", "sampled_at", "code", "value", "unit"]
    assert labs["person_id"].dtype == np.int64
    assert labs["sampled_at"].dtype == "datetime64[ns]"
    rows = [tuple(None if pd.isna(x) else x for x in r) for r in labs.itertuples(index=False)]
    assert rows == [
        (1, T("2010-01-05 08:30"), "751-8", "1.2", "10^9/L"),
        (1, T("2011-06-01"), "751-8", "0.8", "10^3/uL"),
        (2, T("2012-02-01 09:00"), "751-8", "<0.5", "10^9/L"),
        (3, T("2013-03-03 10:00"), "6690-2", "4", "10*3/uL"),
        (3, T("2013-03-03 10:00"), "770-8", "30", "%"),
        (3, T("2013-03-03 10:00"), "764-1", "5", "%"),
        (4, T("2014-04-04"), "751-8", "clotted", "10^9/L"),
        (4, T("2014-05-05"), "26499-4", "2.5", "10^9/L"),
        (5, T("2015-06-01"), "753-4", "1600", "/uL"),
        (5, T("2015-01-01"), "751-8", "", "10^9/L"),
    ]


def test_person_condition_death_mapping(omop):
    p = omop.persons
    assert list(p.columns) == ["person_id", "sex", "birth_date", "end_of_data"]
    assert p["person_id"].tolist() == [1, 2, 3, 4, 5, 6]
    assert p["sex"].iloc[:4].tolist() == ["F", "M", "M", "F"] and pd.isna(p["sex"].iloc[4])
    assert p["birth_date"].tolist() == [T("1950-03-10"), T("1960-07-01"), T("1970-04-15"), T("1980-01-01"),
                                        T("1945-07-01"), T("1990-12-31")]
    assert p["end_of_data"].iloc[:5].tolist() == [T("2016-12-31")] + [T("2018-12-31")] * 4
    assert pd.isna(p["end_of_data"].iloc[5])
    assert omop.settings["end_of_data"] == {"rule": "latest observation_period_end_date", "date": None}
    d = omop.diagnoses
    assert list(d.columns) == ["person_id", "diagnosed_at", "code"]
    assert d.values.tolist() == [[1, T("2012-02-01"), "C92.0"], [2, T("2012-05-01"), "D70"],
                                 [4, T("2013-01-01"), "b20"], [5, T("2016-02-02 10:00"), "C91.1"]]
    assert omop.deaths.values.tolist() == [[2, T("2013-01-01")]]


def _lab_flow_ok(att):
    for prev, row in zip(att.iloc[:-1].itertuples(), att.iloc[1:].itertuples()):
        assert row.persons == prev.persons - row.excluded_persons
        assert row.lab_rows == prev.lab_rows - row.excluded_lab_rows


def test_attrition_counts_add_up(omop):
    att = omop.attrition
    assert list(att.columns) == ["step", "description", "table", "excluded_persons", "excluded_lab_rows",
                                 "excluded_records", "persons", "lab_rows"]
    got = att.drop(columns="description").values.tolist()
    assert got == [
        [0, "measurement", 0, 0, 0, 6, 13],
        [1, "measurement", 0, 1, 1, 6, 12],   # measurement 13 has no person_id
        [2, "measurement", 1, 2, 2, 5, 10],   # haemoglobin and LAB123; person 6 had nothing else
        [3, "diagnoses", 0, 0, 2, 5, 10],     # "12345" and an empty source value
    ]
    assert "unmapped" in att["description"].iloc[2] and "ICD-10" in att["description"].iloc[3]
    _lab_flow_ok(att)
    assert att["lab_rows"].iloc[2] == len(omop.labs) and att["persons"].iloc[2] == omop.labs["person_id"].nunique()
    assert len(omop.diagnoses) + att["excluded_records"].iloc[3] == len(CONDITION)


def test_build_cohort_by_hand(omop):
    cohort = omop.build_cohort()  # andersen2016, index "first", 4 years
    t = cohort.table.set_index("person_id")
    assert t.index.tolist() == [1, 2, 3, 4, 5]
    assert t["tier"].astype(str).tolist() == ["mild", "moderate_severe", "mild", "normal", "subnormal"]
    assert t["index_sampled_at"].tolist() == [T("2010-01-05 08:30"), T("2012-02-01 09:00"), T("2013-03-03 10:00"),
                                              T("2014-05-05"), T("2015-06-01")]
    assert t["index_anc_per_ul"].tolist() == pytest.approx([1200, 500, 1400, 2500, 1600])
    assert t.loc[2, "index_anc_censor"] == "<"
    assert t.loc[3, "index_anc_source"] == "derived"
    assert t.loc[1, "worst_tier"] == "moderate_severe" and t.loc[1, "nadir_anc_per_ul"] == pytest.approx(800)
    assert t.loc[1, "age_at_index"] == pytest.approx((T("2010-01-05") - T("1950-03-10")).days / 365.25)
    assert bool(t.loc[1, "aml"]) and bool(t.loc[5, "hematologic_malignancy"]) and bool(t.loc[4, "hiv_prevalent"])
    assert bool(t.loc[2, "death"])
    assert t.loc[2, "death_time"] == pytest.approx((T("2013-01-01") - T("2012-02-01")).days / 365.25)
    assert pd.isna(t.loc[5, "sex"])

    att = cohort.attrition
    assert att["step"].tolist() == list(range(len(att)))
    assert att.iloc[: len(omop.attrition)].drop(columns="step").equals(omop.attrition.drop(columns="step"))
    read = att.index[att["description"] == "lab rows read"][0]
    unmapped = att.index[att["description"].str.startswith("measurement rows not")][0]
    assert att.loc[unmapped, ["persons", "lab_rows"]].tolist() == att.loc[read, ["persons", "lab_rows"]].tolist()
    assert att.loc[read, ["persons", "lab_rows"]].tolist() == [5, 10]
    _lab_flow_ok(att)
    analysed = att[att["description"] == "persons analysed"].iloc[0]
    # clotted, empty value, and the WBC and band rows used in the derivation leave 6 of 10 rows
    assert (analysed["persons"], analysed["lab_rows"]) == (5, 6)


def test_uppercase_and_gzip_csv(tmp_path):
    src = write_extract(tmp_path, "csv", names=str.upper)
    (src / "MEASUREMENT.csv").rename(src / "Measurement.CSV")
    df = pd.read_csv(src / "CONDITION_OCCURRENCE.csv", dtype=str)
    df.to_csv(src / "CONDITION_OCCURRENCE.csv.gz", index=False)
    (src / "CONDITION_OCCURRENCE.csv").unlink()
    omop = read_omop(src)
    assert len(omop.labs) == 10 and len(omop.diagnoses) == 4
    assert omop.settings["tables"]["condition_occurrence"] == "CONDITION_OCCURRENCE.csv.gz"


def test_duckdb_connection_schema_and_file(tmp_path):
    path = write_extract(tmp_path, "duckdb", names=str.upper)
    con = duckdb.connect(str(path))
    try:
        assert len(read_omop(con).labs) == 10
        con.execute("CREATE SCHEMA cdm")
        for t in ("MEASUREMENT", "PERSON", "CONDITION_OCCURRENCE"):  # the file cdm.duckdb is catalog "cdm" too
            con.execute(f"CREATE TABLE cdm.cdm.{t.lower()} AS SELECT * FROM cdm.main.{t}")
        in_schema = read_omop(con, schema="CDM")
        assert len(in_schema.labs) == 10 and in_schema.deaths.empty
        assert in_schema.settings["end_of_data"]["rule"] == "latest date in the extract"
    finally:
        con.close()
    assert read_omop(str(path)).settings["tables"]["measurement"] == "main.MEASUREMENT"


def test_missing_table_message(tmp_path):
    src = write_extract(tmp_path, "csv")
    (src / "condition_occurrence.csv").unlink()
    with pytest.raises(NeutrostatsError) as err:
        read_omop(src)
    msg = str(err.value)
    for part in ("read_omop", "CONDITION_OCCURRENCE", "condition_occurrence.csv", "measurement.csv", "Export"):
        assert part in msg
    with duckdb.connect() as con:
        con.execute("CREATE TABLE measurement (person_id BIGINT)")
        with pytest.raises(NeutrostatsError, match=r"PERSON, CONDITION_OCCURRENCE not found.*main\.measurement"):
            read_omop(con)


def test_missing_column_message(tmp_path):
    tables = _tables()
    tables["measurement"] = tables["measurement"].drop(columns="measurement_concept_id")
    with pytest.raises(NeutrostatsError, match=r"read_omop: table MEASUREMENT \(measurement.csv\) has no column "
                                               r"measurement_concept_id.*found \['measurement_id'"):
        read_omop(write_extract(tmp_path, "csv", tables))


def test_concept_map_extends_and_drops(tmp_path):
    src = write_extract(tmp_path, "csv")
    # person 6 has no observation period: end_of_data gives them one, so they can enter the cohort
    extended = read_omop(src, concept_map={"99999": "751-8"}, end_of_data="2020-01-01")
    six = extended.labs[extended.labs["person_id"] == 6]
    assert six[["code", "value", "unit"]].values.tolist() == [["751-8", "3.1", "10^9/L"]]
    assert extended.attrition.iloc[2][["excluded_persons", "excluded_lab_rows", "persons", "lab_rows"]].tolist() == \
        [0, 1, 6, 11]
    assert extended.settings["concept_map"]["99999"] == "751-8"
    assert extended.build_cohort().table.set_index("person_id").loc[6, "tier"] == "normal"  # 3,100 /µL
    # Without the default 3013650 the ANC rows whose source value is "ANC" are unmapped.
    dropped = read_omop(src, concept_map={ANC: None})
    assert len(dropped.labs) == 10 - 5
    with pytest.raises(NeutrostatsError, match="concept_map.*3000963.*718-7"):
        read_omop(src, concept_map={HGB: "718-7"})
    units = read_omop(src, unit_concept_map={8848: "cells/uL"})
    assert units.labs["unit"].iloc[1] == "cells/uL"


def test_end_of_data_rules(tmp_path):
    src = write_extract(tmp_path, "csv")
    with_arg = read_omop(src, end_of_data="2020-01-01")  # fills person 6, who has no period
    assert with_arg.persons["end_of_data"].tolist()[-2:] == [T("2018-12-31"), T("2020-01-01")]
    (src / "observation_period.csv").unlink()
    fixed = read_omop(src, end_of_data="2020-01-01")
    assert (fixed.persons["end_of_data"] == T("2020-01-01")).all()
    assert fixed.settings["end_of_data"] == {"rule": "end_of_data argument", "date": "2020-01-01"}
    # The last date anywhere is the condition of 2016-02-02 10:00, taken as that day.
    latest = read_omop(src)
    assert (latest.persons["end_of_data"] == T("2016-02-02")).all()
    assert latest.settings["end_of_data"] == {"rule": "latest date in the extract", "date": "2016-02-02"}
    with pytest.raises(NeutrostatsError, match="end_of_data must be a date"):
        read_omop(src, end_of_data="soon")


def test_text_ids_keep_their_spelling_and_bad_person_rows_are_counted(tmp_path):
    tables = _tables()
    for df in tables.values():
        df["person_id"] = [None if pd.isna(v) else f"{v:04d}" for v in df["person_id"]]
    tables["person"] = pd.concat([tables["person"], tables["person"].iloc[[0]].assign(gender_concept_id=8507),
                                  tables["person"].iloc[[1]].assign(person_id=None)], ignore_index=True)
    omop = read_omop(write_extract(tmp_path, "csv", tables))
    assert omop.labs["person_id"].iloc[0] == "0001"
    assert omop.persons["person_id"].tolist() == ["0001", "0002", "0003", "0004", "0005", "0006"]
    assert omop.persons["sex"].iloc[0] == "F"  # the first row of a repeated id is kept
    notes = omop.attrition.set_index("description")["excluded_records"]
    assert notes["person rows without a person_id (ignored)"] == 1
    assert notes["repeat person rows of a person_id (first kept)"] == 1
    assert omop.build_cohort().table["person_id"].tolist() == ["0001", "0002", "0003", "0004", "0005"]


def test_bad_sources(tmp_path, monkeypatch):
    with pytest.raises(NeutrostatsError, match="not found"):
        read_omop(tmp_path / "nowhere")
    src = write_extract(tmp_path / "cdm", "csv")
    with pytest.raises(NeutrostatsError, match="one table"):
        read_omop(src / "measurement.csv")
    with pytest.raises(NeutrostatsError, match="must be a folder"):
        read_omop(42)
    (tmp_path / "junk.db").write_text("not a database")
    with pytest.raises(NeutrostatsError, match="could not open"):
        read_omop(tmp_path / "junk.db")
    monkeypatch.setitem(sys.modules, "duckdb", None)
    with pytest.raises(NeutrostatsError, match=r"needs duckdb, a dependency of neutrostats that cannot be imported.*pip install --force-reinstall"):
        read_omop(tmp_path / "junk.db")


def test_repr(omop):
    assert repr(omop).startswith("OmopData(10 lab rows, 6 persons, 4 diagnoses, 1 deaths")
    html = omop._repr_html_()
    assert "<table" in html and "unmapped" in html
    assert isinstance(omop, OmopData)
