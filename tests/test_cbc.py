"""Haemoglobin and platelets at the index sample: units, limits, cytopenia patterns, engines and the report.

Every expected value is a hand calculation written out beside it; the
engines are held to each other on the same input; the report's cytopenia
table is attacked with the disclosure attacker of ``disclosure_attack``
extended by the relations of the new tables (written here from their
meaning, not taken from the package).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrostats import build_cohort
from neutrostats.errors import NeutrostatsError
from neutrostats.labs.cbc import (
    HB_G_DL_PER_MMOL_L,
    CbcLimits,
    anemia_limits,
    below_limit,
    cbc_test_of,
    cytopenia_pattern,
    read_cbc_values,
)

# --------------------------------------------------------------------------
# Values and units


def test_mmol_factor_is_the_monomer_molar_mass():
    # 1 mmol/L x 16,114.5 g/mol = 16.1145 g/L = 1.61145 g/dL.
    assert HB_G_DL_PER_MMOL_L == pytest.approx(16114.5 * 1e-3 / 10, rel=0, abs=1e-15)


def test_hemoglobin_units():
    r = read_cbc_values(["7.447", "120", "12.0", "12", "135", "8.1"],
                        ["mmol/L", "g/L", "g/dL", "g/100 mL", "g/dL", "g/L"], "hemoglobin")
    # 7.447 x 1.61145 = 12.00046815 -> 12.000468 (rounded to 1e-6); 120 g/L / 10 = 12.0;
    # 135 "g/dL" and 8.1 "g/L" (0.81 g/dL) lie outside 2-30 g/dL: another unit, refused.
    assert r["value"].tolist()[:4] == [12.000468, 12.0, 12.0, 12.0]
    assert r["flag"].astype(object).tolist() == [np.nan] * 4 + ["implausible", "implausible"]


def test_platelet_units():
    r = read_cbc_values(["150000", "149.9", "150", "0.15", "<10", ">1000", "2.5", "250", "150.000", "0.25"],
                        ["/uL", "K/uL", "10^3/µL", "cells/nL", "10^9/L", "x10E3/uL", "mmol/L", None, "/uL", "/uL"],
                        "platelets")
    v, f = r["value"].tolist(), r["flag"].astype(object).tolist()
    # 150,000/µL = 150 x 10^9/L exactly (not 149.99...); 0.15 /nL = 0.15 x 10^9/L.
    assert v[:6] == [150.0, 149.9, 150.0, 0.15, 10.0, 1000.0]
    assert r["censor"].astype(object).tolist()[4:6] == ["<", ">"]
    assert f[6:] == ["unknown_unit", "missing_unit", "ambiguous_number", "unit_suspect"]
    assert read_cbc_values(["150.000"], "/uL", "platelets", decimal=",", thousands=".")["value"].tolist() == [150.0]


def test_text_values_as_the_anc_path():
    r = read_cbc_values(["clotted", "", "13,5", "-1"], "g/dL", "hemoglobin")
    assert r["flag"].astype(object).tolist() == ["non_numeric", "missing_value", "non_numeric", "negative"]
    assert read_cbc_values(["13,5"], "g/dL", "hemoglobin", decimal=",")["value"].tolist() == [13.5]


def test_codes_and_local_map():
    assert cbc_test_of(["718-7", 777.0, "777-3 ", "HB", "751-8", None], {"HB": "718-7"}).tolist() == [0, -1, 1, 0, -1, -1]


# --------------------------------------------------------------------------
# Limits


def test_who_limits_by_age_and_sex():
    # Ages 30 M, 30 F, 13, 8, 2, 0.3 (no WHO limit), unknown age F, 30 unknown sex.
    lo, hi = anemia_limits([30, 30, 13, 8, 2, 0.3, np.nan, 30], [0, 1, 0, 1, 0, 1, 1, -1])
    assert lo.tolist()[:5] == [13.0, 12.0, 12.0, 11.5, 11.0] and hi.tolist()[:5] == [13.0, 12.0, 12.0, 11.5, 11.0]
    assert np.isnan(lo[5]) and np.isnan(hi[5])
    assert (lo[6], hi[6]) == (11.0, 12.0) and (lo[7], hi[7]) == (12.0, 13.0)


def test_below_limit_with_censoring_and_unknown_sex():
    # Unknown sex (limits 12 and 13): 12.5 undecided, 11.9 below both, 13.0 at/above both.
    assert below_limit([12.5, 11.9, 13.0], -1, 12.0, 13.0).tolist() == [pd.NA, True, False]
    # "<150" is below 150; "<=150" may be 150; ">150" and ">=150" are not below; "<200" spans it.
    got = below_limit([150.0, 150.0, 150.0, 150.0, 200.0], [0, 1, 2, 3, 0], 150.0, 150.0).tolist()
    assert got == [True, pd.NA, False, False, pd.NA]
    assert below_limit([10.0], -1, np.nan, np.nan).tolist() == [pd.NA]


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 500, allow_nan=False), st.floats(1, 400, allow_nan=False))
def test_below_limit_exact_is_the_comparison(v, limit):
    assert bool(below_limit([v], -1, limit, limit)[0]) == (v < limit)


def test_patterns():
    b = lambda *x: pd.array(list(x), dtype="boolean")  # noqa: E731
    got = cytopenia_pattern([False, True, True, True, True, True, True],
                            b(True, False, True, False, True, None, False),
                            b(True, False, False, True, True, True, None))
    assert got.astype(object).tolist()[:5] == ["no_neutropenia", "isolated", "bicytopenia", "bicytopenia",
                                               "pancytopenia"]
    assert got.isna().tolist() == [False] * 5 + [True, True]
    assert got.ordered and list(got.categories) == ["no_neutropenia", "isolated", "bicytopenia", "pancytopenia"]


def test_limits_validated():
    with pytest.raises(NeutrostatsError, match="platelets_below"):
        CbcLimits(platelets_below=0)
    with pytest.raises(NeutrostatsError, match="sex must be"):
        CbcLimits(anemia=((15, 99, "X", 12.0),))
    assert CbcLimits(male=("1",), female=("2",)).sex_codes([1, "2", 3]).tolist() == [0, 1, -1]


# --------------------------------------------------------------------------
# The cohort


def _tables():
    labs = pd.DataFrame({
        "person_id": [1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 4],
        "sampled_at": ["2010-01-05 08:00"] * 4 + ["2010-02-01 09:00"] * 3 + ["2010-03-01 10:00"] * 2
        + ["2010-04-01 10:00", "2010-04-01 10:00", "2010-04-01 12:00", "2010-04-01 10:00"],
        "code": ["751-8", "718-7", "777-3", "718-7", "751-8", "HGB", "777-3", "751-8", "718-7",
                 "751-8", "718-7", "777-3", "718-7"],
        "value": ["1.2", "7.0", "<10", "7.2", "0.8", "13.5", "200", "2.5", "9", "1.0", "11.0", "140000", "clotted"],
        "unit": ["10^9/L", "mmol/L", "10^9/L", "mmol/L", "K/uL", "g/dL", "K/uL", "10^9/L", "g/dL",
                 "10^9/L", "g/dL", "/uL", "g/dL"],
    })
    persons = pd.DataFrame({"person_id": [1, 2, 3, 4], "sex": ["F", "M", "F", None],
                            "birth_date": ["1950-01-01"] * 4, "end_of_data": "2016-12-31"})
    dx = pd.DataFrame({"person_id": [1], "diagnosed_at": ["2012-02-01"], "code": ["C92.0"]})
    return labs, persons, dx


def _note(c, text):
    a = c.attrition
    hit = a.loc[a["description"] == text, "excluded_records"]
    return int(hit.iloc[0]) if len(hit) else 0


def test_cohort_columns_by_hand():
    labs, persons, dx = _tables()
    c = build_cohort(labs, persons, dx, code_map={"HGB": "718-7"}, engine="numpy")
    t = c.table
    # Person 1 (F, 60 y, ANC 1.2: mild): Hb 7.0 and 7.2 mmol/L at the sample, the lowest used:
    # 7.0 x 1.61145 = 11.28015 g/dL < 12 (anaemia); platelets "<10" < 150; so pancytopenia.
    # Person 2 (M, ANC 0.8): Hb 13.5 >= 13, platelets 200 >= 150: isolated.
    # Person 3 (ANC 2.5: normal): no neutropenia whatever Hb 9 says (anaemia True, platelets unknown).
    # Person 4 (sex unknown, ANC 1.0: mild): Hb 11.0 < 12 (both limits agree): anaemia; the platelets at
    # 12:00 are another sample, so thrombocytopenia unknown and the pattern undecided.
    assert t["index_hemoglobin_g_dl"].tolist() == [11.28015, 13.5, 9.0, 11.0]
    assert t["index_platelets_10e9_l"].tolist()[:2] == [10.0, 200.0] and t["index_platelets_10e9_l"][2:].isna().all()
    assert t["index_platelets_censor"].astype(object).tolist()[0] == "<"
    assert t["anemia"].tolist() == [True, False, True, True]
    assert t["thrombocytopenia"].tolist() == [True, False, pd.NA, pd.NA]
    assert t["cytopenia"].astype(object).tolist()[:3] == ["pancytopenia", "isolated", "no_neutropenia"]
    assert pd.isna(t["cytopenia"].iloc[3])
    # Counted: person 4's "clotted" Hb at the sample, person 1's second Hb.
    assert _note(c, "haemoglobin results at the index sample: result not a number (not used)") == 1
    assert _note(c, "repeat haemoglobin results at the index sample (lowest used)") == 1
    # Same day: person 4's 12:00 platelets (140,000/µL = 140 x 10^9/L < 150) belong to the day.
    d = build_cohort(labs, persons, dx, code_map={"HGB": "718-7"}, engine="numpy", cbc_match="day").table
    assert d["cytopenia"].astype(object).tolist() == ["pancytopenia", "isolated", "no_neutropenia", "pancytopenia"]
    assert c.settings["cbc"]["match"] == "sample" and c.settings["cbc"]["platelets_below_10e9_l"] == 150.0


def test_no_cbc_rows_no_columns():
    labs, persons, dx = _tables()
    anc = labs[labs["code"] == "751-8"]
    for table in (build_cohort(anc, persons, dx, engine="numpy").table,
                  build_cohort(anc.drop(columns="code"), persons, dx, code=None, engine="numpy").table):
        assert "cytopenia" not in table.columns and "anemia" not in table.columns


def test_unknown_unit_refused_or_counted():
    labs, persons, dx = _tables()
    labs.loc[6, "unit"] = "g/dL"  # platelets in g/dL: not a count unit
    with pytest.raises(NeutrostatsError, match="platelets: 'g/dL' \\(1 rows\\)"):
        build_cohort(labs, persons, dx, code_map={"HGB": "718-7"}, engine="numpy")
    c = build_cohort(labs, persons, dx, code_map={"HGB": "718-7"}, engine="numpy", on_unknown_unit="flag")
    assert _note(c, "platelet results at the index sample: unit not a unit of the test (not used)") == 1
    assert pd.isna(c.table["cytopenia"].iloc[1])  # person 2's platelets are now unknown


def test_code_map_csv(tmp_path):
    labs, persons, dx = _tables()
    path = tmp_path / "map.csv"
    path.write_text("local,loinc\nHGB,718-7\nANC,751-8\n")
    labs["code"] = labs["code"].replace({"751-8": "ANC"})
    c = build_cohort(labs, persons, dx, code_map=path, engine="numpy")
    assert c.table["cytopenia"].astype(object).tolist()[:3] == ["pancytopenia", "isolated", "no_neutropenia"]


def _cbc_part(t: pd.DataFrame) -> pd.DataFrame:
    cols = ["person_id", "index_hemoglobin_g_dl", "index_hemoglobin_censor", "index_platelets_10e9_l",
            "index_platelets_censor", "anemia", "thrombocytopenia", "cytopenia"]
    return t[cols].reset_index(drop=True)


@pytest.mark.parametrize("match", ["sample", "day"])
def test_duckdb_sources_same_as_pandas(tmp_path, match):
    import duckdb

    labs, persons, dx = _tables()
    labs = labs.assign(sampled_at=pd.to_datetime(labs["sampled_at"]))
    ref = build_cohort(labs, persons, dx, code_map={"HGB": "718-7"}, engine="numpy", cbc_match=match)
    path = tmp_path / "labs.parquet"
    labs.to_parquet(path)
    con = duckdb.connect()
    for source in (str(path), con.read_parquet(str(path))):
        got = build_cohort(source, persons, dx, code_map={"HGB": "718-7"}, cbc_match=match)
        pd.testing.assert_frame_equal(_cbc_part(got.table), _cbc_part(ref.table))
        assert got.attrition.equals(ref.attrition)


@pytest.mark.spark
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
def test_spark_same_as_pandas():
    from pyspark.sql import functions as F
    from test_backends import _spark_session

    spark = _spark_session()
    labs, persons, dx = _tables()
    labs = labs.assign(sampled_at=pd.to_datetime(labs["sampled_at"]).astype("datetime64[us]"))
    ref = build_cohort(labs, persons, dx, code_map={"HGB": "718-7"}, engine="numpy")
    sdf = spark.createDataFrame(labs).withColumn("sampled_at", F.col("sampled_at").cast("timestamp_ntz"))
    got = build_cohort(sdf, persons, dx, code_map={"HGB": "718-7"})
    pd.testing.assert_frame_equal(_cbc_part(got.table), _cbc_part(ref.table))
    assert got.attrition.equals(ref.attrition)


# --------------------------------------------------------------------------
# The report


@pytest.fixture(scope="module")
def report_inputs():
    """A synthetic cohort's tables with haemoglobin and platelets added by hand at each index sample.

    Neutropenic person number j (in table order) gets Hb 10.5 g/dL when j % 3 == 0 (else 14.5: anaemia
    for nobody else, as 14.5 is above every limit) and platelets 90 when j % 4 == 0 (else 250); every
    17th person's Hb is "clotted" (undetermined when neutropenic).
    """
    from neutrostats.synthetic import generate_cohort

    s = generate_cohort(n_persons=500, seed=1)
    t = build_cohort(s.labs, s.persons, s.diagnoses, s.deaths, engine="numpy").table
    low = (t["tier"] != "normal").to_numpy()
    j = np.arange(len(t))
    hb = np.where(low & (j % 3 == 0), "10.5", "14.5").astype(object)
    hb[j % 17 == 0] = "clotted"
    pl = np.where(low & (j % 4 == 0), "90", "250")
    rows = [pd.DataFrame({"person_id": t["person_id"], "sampled_at": t["index_sampled_at"], "code": c,
                          "value": v, "unit": u}) for c, v, u in (("718-7", hb, "g/dL"), ("777-3", pl, "10^9/L"))]
    labs = pd.concat([s.labs.assign(sampled_at=pd.to_datetime(s.labs["sampled_at"])), *rows], ignore_index=True)
    return labs, s


def _analyse(labs, s, k):
    import matplotlib

    matplotlib.use("Agg")
    from neutrostats.report import ReportSettings, analyse

    return analyse(labs, s.persons, s.diagnoses, s.deaths, ReportSettings(min_cell_count=k), progress=False,
                   engine="numpy")


@pytest.fixture(scope="module")
def reports(report_inputs):
    labs, s = report_inputs
    return _analyse(labs, s, 0), _analyse(labs, s, 5)


@pytest.mark.slow
def test_report_table_counts(reports):
    raw, _ = reports
    t = raw.tables["cytopenia_by_tier"]
    sizes = raw.tables["tier_prevalence"].set_index(raw.tables["tier_prevalence"]["group"].astype(str))["n"]
    for g, part in t.groupby(t["group"].astype(str), observed=True):
        assert int(part["n"].sum()) == int(sizes[g])  # the patterns of a tier add up to its size
    ors = raw.tables["cytopenia_odds_ratios"]
    assert set(ors["group"].astype(str)) == {"isolated", "bicytopenia", "pancytopenia"}
    assert ors.loc[ors["is_reference"].astype(bool), "group"].astype(str).unique().tolist() == ["isolated"]


@pytest.mark.slow
def test_report_disclosure_hides_small_cells_and_what_gives_them_back(reports, monkeypatch):
    import disclosure_attack as da

    raw, pub = reports
    k = 5
    t_raw, t_pub = raw.tables["cytopenia_by_tier"], pub.tables["cytopenia_by_tier"]
    small = (t_raw["n"] > 0) & (t_raw["n"] < k)
    assert small.any(), "the test data must have a small cell"
    assert t_pub.loc[small, "n"].isna().all()
    # Within a tier with a hidden small cell a complement is hidden too.
    for g in t_raw.loc[small, "group"].astype(str).unique():
        assert int(t_pub.loc[t_pub["group"].astype(str) == g, "n"].isna().sum()) >= 2
    assert t_pub.loc[t_pub["n"].isna(), "percent"].isna().all()
    ors = pub.tables["cytopenia_odds_ratios"]
    bad = (ors["n"].isna() | ors["n_event"].isna()) & ~ors["is_reference"].astype(bool)
    assert ors.loc[bad, "estimate"].isna().all()

    # The attacker, told what the new tables mean.
    monkeypatch.setitem(da.COUNT_COLUMNS, "cytopenia_by_tier", ("n",))
    monkeypatch.setitem(da.COUNT_COLUMNS, "cytopenia_odds_ratios", ("n", "n_event"))
    monkeypatch.setitem(da.ID_COLUMNS, "cytopenia_by_tier", ("group", "pattern"))
    monkeypatch.setitem(da.ID_COLUMNS, "cytopenia_odds_ratios", ("outcome", "group"))
    build = da._build

    def with_cytopenia(raw_tables, published):
        s = build(raw_tables, published)
        ct = s.raw["cytopenia_by_tier"]
        tiers = [str(x) for x in pd.unique(ct["group"].astype(str))]
        normal, low = tiers[0], tiers[1:]
        patterns = ["isolated", "bicytopenia", "pancytopenia", "undetermined"]
        s.eq("normal tier is its size", s.at("cytopenia_by_tier", (normal, "no_neutropenia"), "n"),
             da._size(s, normal))
        for g in low:
            cells = {s.at("cytopenia_by_tier", (g, p), "n"): 1.0 for p in patterns}
            s.add(f"patterns add up to the tier ({g})", {**cells, da._size(s, g): -1.0}, "==")
        co = s.raw["cytopenia_odds_ratios"]
        for o in pd.unique(co["outcome"].astype(str)):
            ns, evs = {}, {}
            for p in patterns[:3]:
                n, ev = s.at("cytopenia_odds_ratios", (o, p), "n"), s.at("cytopenia_odds_ratios", (o, p), "n_event")
                s.le(f"events <= n ({o}, {p})", ev, n)
                # At risk: the pattern's persons minus its prevalent cases.
                s.add(f"n <= pattern total ({o}, {p})",
                      {n: 1.0, **{s.at("cytopenia_by_tier", (g, p), "n"): -1.0 for g in low}}, "<=")
                s.derive("cytopenia_odds_ratios", f"non-events ({o}, {p})", {n: 1.0, ev: -1.0})
                ns[n], evs[ev] = 1.0, 1.0
            # The neutropenic tiers' at risk and events are the patterns' plus the undetermined ones'.
            or_n = {s.at("odds_ratios", (o, "crude", g), "n"): -1.0 for g in low}
            or_ev = {s.at("odds_ratios", (o, "crude", g), "n_event"): -1.0 for g in low}
            s.add(f"patterns' n <= tiers' n ({o})", {**ns, **or_n}, "<=")
            s.add(f"patterns' events <= tiers' events ({o})", {**evs, **or_ev}, "<=")
        return s

    monkeypatch.setattr(da, "_build", with_cytopenia)
    result = da.attack(raw.tables, pub.tables, k)
    mine = result[result["table"].astype(str).str.startswith("cytopenia")]
    assert len(mine), "the attacker saw no cytopenia cell"
    assert not result["leak"].any(), da.leaks(result)


@pytest.mark.slow
def test_report_without_cbc_says_so_in_one_line(reports):
    from dataclasses import replace

    from neutrostats.report.analysis import _cytopenia
    from neutrostats.report.render import render_html

    raw, _ = reports
    assert "cytopenia" in render_html(raw, standalone=False) and "tbl-cytopenia_by_tier" in render_html(raw)
    # A cohort without the columns (no 718-7/777-3 rows) gives no tables ...
    t = pd.DataFrame({"tier": pd.Categorical(["normal", "mild"], categories=["normal", "mild"], ordered=True)})
    assert _cytopenia(t, []) is None
    # ... nor one where no neutropenic person is decided.
    t["cytopenia"] = pd.Categorical(["no_neutropenia", None], categories=["no_neutropenia", "isolated"])
    assert _cytopenia(t, []) is None
    # And the report then says so in one line, without a table.
    r = replace(raw, tables={k: v for k, v in raw.tables.items() if not k.startswith("cytopenia")})
    html = render_html(r, standalone=False)
    section = html[html.index('<section id="cytopenia">'):]
    section = section[:section.index("</section>")]
    assert "Not shown: no neutropenic person" in section and "<table" not in section
