"""Limits per row and per person: the lab's LLN, age bands for children, Duffy-null status, CTCAE v6.

Every expected tier below is worked out by hand from the rules written in
the test (the rule of the module docstring of ``neutrostats.labs.classify``):

* limit of a row = the lab's LLN (``ctcae_v5`` only, direct ANC rows) else
  the age band's else the scheme's; then lowered to 1,200/µL for
  Duffy-null persons; a fixed scheme's limit is only ever lowered;
* a value at or above the limit is normal (grade 0), below it the other cuts
  decide: ctcae_v5 grade 1 [1500, limit), 2 [1000, 1500), 3 [500, 1000),
  4 < 500;
* ctcae_v6 as reported by secondary sources (Hibbs, Merz et al. 2025,
  PMC12745037): grade 0 >= 1500, 1 [1000, 1500), 2 [500, 1000), 3 [100, 500),
  4 < 100;
* ages are days / 365.25 on the sample day; default bands [0, 14 d) no
  limit, [14 d, 1 y) 1,000/µL, [1 y, 18 y) 1,500/µL ("The lower limit for
  normal neutrophil counts is 1000/mm3 in infants between 2 weeks and 1 year
  of age; after infancy the corresponding value is 1500/mm3", Clinical
  disorders of neutropenia, Pediatrics in Review, abstract).

The engines are then held to each other (numpy == DuckDB frame == Parquet ==
Spark) on a synthetic cohort carrying every kind of limit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrostats import NeutrostatsError, build_cohort, classify_anc, get_scheme
from neutrostats.errors import ImmortalTimeWarning
from neutrostats.labs.classify import (
    DEFAULT_AGE_LIMITS,
    FLAG_DESCRIPTIONS,
    Scheme,
    age_limit_table,
    duffy_null_status,
)
from neutrostats.synthetic import generate_cohort

from test_backends import assert_same_cohort

D = 365.25


def _tiers(out: pd.DataFrame) -> list:
    return out["tier"].astype(object).where(out["tier"].notna(), None).tolist()


def _flags(out: pd.DataFrame) -> list:
    return out["anc_flag"].astype(object).where(out["anc_flag"].notna(), None).tolist()


# --- the lab's own lower limit of normal ---------------------------------------------------------


def test_lab_lln_replaces_the_ctcae_v5_top_cut_up_and_down():
    labs = pd.DataFrame({
        "value": ["2.2", "2.2", "1.9", "1.9", "1900", "1.4", "1.6", "1.6"],
        "unit": ["10^9/L", "10^9/L", "10^9/L", "10^9/L", "cells/uL", "K/uL", "10^9/L", "10^9/L"],
        "lln": ["2.5", None, "1.7", "", "1700", "1.2", "2.0", "2.0"],
        "dn": [False, False, False, False, False, False, False, True],
    })
    out = classify_anc(labs, "ctcae_v5", lower_limit="lln", duffy_null="dn", code=None)
    # 2200 < LLN 2500 and >= 1500: grade 1 (above the scheme's default 2000, which would say grade 0).
    # 2200, no LLN: scheme's 2000 -> grade 0.  1900 >= 1700: grade 0.  1900, empty LLN -> 2000: grade 1.
    # 1900 cells/µL, LLN 1700 cells/µL: grade 0.  1400 >= LLN 1200: grade 0 (the LLN is below 1500).
    # 1600 < 2000: grade 1; Duffy-null: limit min(2000, 1200) = 1200, 1600 >= 1200: grade 0.
    assert _tiers(out) == ["grade_1", "grade_0", "grade_0", "grade_1", "grade_0", "grade_0", "grade_1", "grade_0"]
    assert out["normal_limit_per_ul"].tolist() == [2500, 2000, 1700, 2000, 1700, 1200, 2000, 1200]


def test_unusable_lab_lln_is_flagged_never_guessed():
    labs = pd.DataFrame({
        "value": ["1.0", "1.0", "1.0", "1.0", "1000", "1000", "1.0"],
        "unit": ["10^9/L"] * 4 + ["cells/uL", "cells/uL", "10^9/L"],
        # unreadable; censored; 1800 x10^9/L (1.8 million/µL); 0.05 x10^9/L = 50/µL; "1,800" in
        # cells/µL (thousands or decimal separator?); 1.8 cells/µL (a 10^9/L number); a good one.
        "lln": ["abc", "<2.0", "1800", "0.05", "1,800", "1.8", "1.8"],
    })
    out = classify_anc(labs, "ctcae_v5", lower_limit="lln", code=None)
    assert _flags(out) == ["unusable_limit"] * 6 + [None]
    assert _tiers(out)[6] == "grade_2"  # 1000 in [1000, 1500)
    assert "lower limit of normal" in FLAG_DESCRIPTIONS["unusable_limit"]


def test_value_flag_outranks_the_limit_flag():
    labs = pd.DataFrame({"value": ["clotted", "-1", "0.9"], "unit": "10^9/L", "lln": ["abc", "abc", "abc"]})
    out = classify_anc(labs, "ctcae_v5", lower_limit="lln", code=None)
    assert _flags(out) == ["non_numeric", "negative", "unusable_limit"]


def test_derived_anc_ignores_the_percentage_rows_lln():
    # WBC 4.0 x (neutrophils 45%) = 1800/µL, derived. The % row's LLN (40, a limit of the
    # percentage) is not an ANC limit: the scheme's 2000 applies, so 1800 is grade 1.
    long = pd.DataFrame({
        "person_id": 1, "sampled_at": pd.to_datetime(["2020-01-01"] * 2),
        "code": ["6690-2", "770-8"], "value": ["4.0", "45"], "unit": ["10^9/L", "%"], "lln": ["3.5", "40"],
    })
    out = classify_anc(long, "ctcae_v5", lower_limit="lln")
    assert out["anc_per_ul"].iloc[1] == 1800.0
    assert _tiers(out)[1] == "grade_1"
    assert out["normal_limit_per_ul"].iloc[1] == 2000.0


@pytest.mark.parametrize("scheme", ["andersen2016", "clinical", "ctcae_v6"])
def test_lower_limit_is_refused_for_schemes_with_fixed_cut_points(scheme):
    labs = pd.DataFrame({"value": ["1.0"], "unit": "10^9/L", "lln": ["1.8"]})
    with pytest.raises(NeutrostatsError, match="fixed published cut points"):
        classify_anc(labs, scheme, lower_limit="lln", code=None)


def test_a_custom_scheme_may_use_the_lln():
    s = Scheme("mine", cuts=(1000, 1600), labels=("low", "below_lln", "ok"), uses_lln=True)
    labs = pd.DataFrame({"value": ["1.7", "1.7"], "unit": "10^9/L", "lln": ["1.9", "1.6"]})
    # 1700 < 1900: below_lln; 1700 >= 1600: ok.
    assert _tiers(classify_anc(labs, s, lower_limit="lln", code=None)) == ["below_lln", "ok"]


@settings(max_examples=60, deadline=None)
@given(v=st.integers(0, 12_000), lln=st.integers(1_501, 9_999))
def test_a_row_lln_grades_as_the_scheme_built_with_that_lln(v, lln):
    # Invariant: classifying with a per-row LLN equals get_scheme("ctcae_v5", lln=LLN), a
    # different path (the LLN as a cut point of the scheme itself).
    labs = pd.DataFrame({"value": [float(v)], "unit": "cells/uL", "lln": [float(lln)]})
    got = _tiers(classify_anc(labs, "ctcae_v5", lower_limit="lln", code=None))
    want = _tiers(classify_anc(labs.drop(columns="lln"), get_scheme("ctcae_v5", lln=lln), code=None))
    assert got == want


@settings(max_examples=40, deadline=None)
@given(v=st.integers(0, 3_000), lln=st.integers(100, 1_500))
def test_an_lln_below_1500_makes_grade_0_exactly_from_the_lln(v, lln):
    labs = pd.DataFrame({"value": [float(v)], "unit": "cells/uL", "lln": [float(lln)]})
    tier = _tiers(classify_anc(labs, "ctcae_v5", lower_limit="lln", code=None))[0]
    assert (tier == "grade_0") == (v >= lln)
    if v < lln:  # below the limit the fixed cuts decide
        assert tier == {True: "grade_2", False: "grade_3" if v >= 500 else "grade_4"}[v >= 1000]


# --- age-specific limits -------------------------------------------------------------------------


def _ages_labs(values, days_old, birth="2020-01-01"):
    b = pd.Timestamp(birth)
    return pd.DataFrame({
        "value": values, "unit": "cells/uL",
        "birth_date": [b if d is not None else pd.NaT for d in days_old],
        "sampled_at": [b + pd.Timedelta(days=d if d is not None else 0, hours=9) for d in days_old],
    })


def test_age_bands_by_hand():
    # Ages in days: 13 (no limit: first two weeks), 14 (= 14/365.25 y, the band's lower bound: 1000),
    # 365 (365/365.25 < 1 y: 1000), 366 (>= 1 y: 1500), 6574 (18.0 y = 6574.5 d not reached: 1500),
    # 6575 (>= 18 y: the scheme's own), unknown birth date.
    labs = _ages_labs([1200, 1200, 1200, 1200, 1200, 1200, 1200], [13, 14, 365, 366, 6574, 6575, None])
    out = classify_anc(labs, "clinical", age_limits="default", code=None)
    # clinical: 1200 is normal against 1000, mild against 1500.
    assert _tiers(out) == [None, "normal", "normal", "mild", "mild", "mild", None]
    assert _flags(out) == ["no_age_limit", None, None, None, None, None, "no_age_limit"]
    np.testing.assert_array_equal(out["normal_limit_per_ul"], [np.nan, 1000, 1000, 1500, 1500, 1500, np.nan])


def test_age_bands_lower_a_fixed_scheme_but_never_raise_it():
    # andersen2016 (normal >= 1800): a 5-year-old's 1600 is normal (band 1500), an adult's subnormal.
    labs = _ages_labs([1600, 1600], [5 * 365, 40 * 365])
    out = classify_anc(labs, "andersen2016", age_limits="default", code=None)
    assert _tiers(out) == ["normal", "subnormal"]
    # A band limit above the scheme's top cut does not raise a fixed scheme (clinical, 1500).
    own = [(0, 18, 2000)]
    out = classify_anc(_ages_labs([1600], [5 * 365]), "clinical", age_limits=own, code=None)
    assert _tiers(out) == ["normal"] and out["normal_limit_per_ul"].item() == 1500
    # ... but it does replace ctcae_v5's LLN: 1600 < 2000 is grade 1; with LLN 1500 grade 0.
    out = classify_anc(_ages_labs([1600, 1600], [5 * 365, 300]), "ctcae_v5", age_limits=[(0, 1, 1500), (1, 18, 2500)],
                       code=None)
    assert _tiers(out) == ["grade_1", "grade_0"]


def test_lab_lln_wins_over_the_age_band_and_duffy_lowers_both():
    labs = _ages_labs([1100, 1100, 1300, 1300], [200, 200, 200, 13])
    labs["lln"] = [None, 1200, 1400, 1400]
    labs["dn"] = [False, False, True, False]
    out = classify_anc(labs, "ctcae_v5", lower_limit="lln", age_limits="default", duffy_null="dn", code=None)
    # 1: no LLN, infant band 1000 -> 1100 grade 0.  2: LLN 1200 -> 1100 grade 2.
    # 3: LLN 1400, Duffy-null 1200 -> 1300 grade 0.  4: a neonate with a lab LLN needs no band: 1300 < 1400, grade 2.
    assert _tiers(out) == ["grade_0", "grade_2", "grade_0", "grade_2"]
    assert out["normal_limit_per_ul"].tolist() == [1000, 1200, 1200, 1400]


def test_age_limit_table_is_checked():
    t = age_limit_table()
    assert t["lower_limit_per_ul"].iloc[1:].tolist() == [1000.0, 1500.0]
    assert t["age_from"].iloc[1] == 14 / D and t["age_to"].iloc[2] == 18.0
    assert len(DEFAULT_AGE_LIMITS) == 3
    for bad, message in [([(0, 1, 1000), (0.5, 2, 1500)], "overlap"), ([(1, 1, 1000)], "age from < age to"),
                         ([(0, 1, 1.5)], "cells/µL"), ("children", "'default'"), ([(0, 1)], "bands")]:
        with pytest.raises(NeutrostatsError, match=message):
            age_limit_table(bad)


# --- Duffy-null status ---------------------------------------------------------------------------


def test_duffy_null_status_reads_genotypes_phenotypes_and_booleans():
    values = ["CC", "c/c", "C|C", "TC", "T/C", "ct", "TT", "Fy(a-b-)", "FY(A\u2212B\u2212)", "Fy(a+b-)",
              "Fy(a-b+)", "Fy (a+b+)", True, False, 1, 0.0, None, np.nan, ""]
    want = [True, True, True, False, False, False, False, True, True, False,
            False, False, True, False, True, False, pd.NA, pd.NA, pd.NA]
    got = duffy_null_status(values)
    assert str(got.dtype) == "boolean"
    assert [x if x is not pd.NA else pd.NA for x in got.tolist()] == want


def test_duffy_null_status_refuses_other_values_with_their_counts():
    with pytest.raises(NeutrostatsError) as err:
        duffy_null_status(["AG", "AG", "Black", "CC", 2])
    text = str(err.value)
    assert "'AG' (2 rows)" in text and "'Black' (1 rows)" in text and "2 (1 rows)" in text
    assert "never derived from race" in text


def test_build_cohort_reads_duffy_genotypes_like_booleans():
    labs = pd.DataFrame({"person_id": [1, 2, 3], "sampled_at": pd.to_datetime(["2010-01-05"] * 3),
                         "value": ["1.25", "1.25", "1.25"], "unit": "10^9/L"})
    persons = pd.DataFrame({"person_id": [1, 2, 3], "sex": "F", "birth_date": pd.to_datetime("1960-01-01"),
                            "end_of_data": pd.to_datetime("2016-12-31"), "geno": ["C/C", "TC", None],
                            "dn": [True, False, False]})
    dx = pd.DataFrame({"person_id": [1], "diagnosed_at": pd.to_datetime(["2011-01-01"]), "code": ["C92.0"]})
    for engine in ("numpy", "duckdb"):
        a = build_cohort(labs, persons, dx, code=None, duffy_null="geno", scheme="clinical", engine=engine,
                         outcomes={"aml": ["C92.0"]})
        b = build_cohort(labs, persons, dx, code=None, duffy_null="dn", scheme="clinical", engine=engine,
                         outcomes={"aml": ["C92.0"]})
        # 1250 is normal against 1200 (Duffy-null), mild against clinical's 1500.
        assert _tiers(a.table) == ["normal", "mild", "mild"] == _tiers(b.table)
        assert a.table["duffy_null"].tolist() == [True, False, pd.NA]
        with pytest.raises(NeutrostatsError, match="'Black' \\(1 rows\\)"):
            build_cohort(labs, persons.assign(geno=["CC", "Black", None]), dx, code=None, duffy_null="geno",
                         engine=engine)


# --- CTCAE v6.0 ----------------------------------------------------------------------------------


def test_ctcae_v6_grades_by_hand():
    s = get_scheme("ctcae_v6")
    values = [1500, 1499.9, 1000, 999.9, 500, 499.9, 100, 99.9, 0]
    assert list(s.classify(values)) == ["grade_0", "grade_1", "grade_1", "grade_2", "grade_2", "grade_3",
                                        "grade_3", "grade_4", "grade_4"]
    assert "NOT verified" in s.reference and "PMC12745037" in s.reference
    assert not s.uses_lln and get_scheme("ctcae_v5").uses_lln


# --- both engines --------------------------------------------------------------------------------


def _persons_dx(n=5):
    persons = pd.DataFrame({
        "person_id": range(1, n + 1), "sex": "F",
        "birth_date": pd.to_datetime(["1960-01-01", "2019-06-01", "2020-01-01", None, "1970-01-01"][:n]),
        "end_of_data": pd.to_datetime("2022-12-31"), "geno": ["CC", "TT", None, "Fy(a+b-)", "TC"][:n],
    })
    dx = pd.DataFrame({"person_id": [1], "diagnosed_at": pd.to_datetime(["2021-01-01"]), "code": ["C92.0"]})
    return persons, dx


def _hand_labs():
    t = pd.to_datetime
    rows = [
        # person 1 (Duffy-null, adult): two ANCs at one time, same value, different LLN: the first in input
        # order is kept with its own LLN 2.5 -> Duffy 1200 -> 1600 is grade 0 either way; then an unusable LLN.
        (1, "2020-01-01 08:00", "751-8", "1.6", "10^9/L", "2.5"),
        (1, "2020-01-01 08:00", "751-8", "1.6", "10^9/L", "1.0"),
        (1, "2020-02-01 08:00", "751-8", "1.0", "10^9/L", "abc"),
        # person 2 (born 2019-06-01): 2020-01-01 is day 214, infant band 1000; a repeat at one time with
        # a lower value and its own LLN 1.9: 1.4 < 1.9 -> grade 2; the 1.8 row is a repeat.
        (2, "2020-01-01 09:00", "751-8", "1.8", "K/uL", None),
        (2, "2020-01-01 09:00", "751-8", "1.4", "K/uL", "1.9"),
        (2, "2020-03-01 09:00", "751-8", "1.1", "K/uL", None),  # infant band: grade 0
        # person 3 (born 2020-01-01): day 9, a neonate without a lab LLN -> no_age_limit; derived on day 30:
        # WBC 4.0 x 30% = 1200 >= 1000 (infant band) -> grade 0.
        (3, "2020-01-10 10:00", "751-8", "1.2", "10^9/L", None),
        (3, "2020-01-31 10:00", "6690-2", "4.0", "10^9/L", "4.5"),
        (3, "2020-01-31 10:00", "770-8", "30", "%", "40"),
        # person 4: no birth date: no_age_limit unless the lab gives an LLN (1.7: 1.75 grade 0).
        (4, "2020-01-01 11:00", "751-8", "1.75", "10^9/L", None),
        (4, "2020-02-01 11:00", "751-8", "1.75", "10^9/L", "1.7"),
        # person 5 (adult, TC): two equal values at one time: the first in input order is kept with its
        # own LLN 2.2, so 2.1 is grade 1 (not grade 0 by the second row's 1.8); a missing time.
        (5, "2020-01-01 12:00", "751-8", "2.1", "10^9/L", "2.2"),
        (5, "2020-01-01 12:00", "751-8", "2.1", "10^9/L", "1.8"),
        (5, None, "751-8", "2.1", "10^9/L", None),
    ]
    df = pd.DataFrame(rows, columns=["person_id", "sampled_at", "code", "value", "unit", "lln"])
    df["sampled_at"] = t(df["sampled_at"])
    return df


KW = dict(scheme="ctcae_v5", lower_limit="lln", age_limits="default", duffy_null="geno",
          outcomes={"aml": ["C92.0"]})


def test_cohort_limits_by_hand_on_both_engines():
    persons, dx = _persons_dx()
    ref = build_cohort(_hand_labs(), persons, dx, engine="numpy", **KW)
    t = ref.table
    assert t["person_id"].tolist() == [1, 2, 3, 4, 5]
    assert _tiers(t) == ["grade_0", "grade_2", "grade_0", "grade_0", "grade_1"]
    # Index rows' limits: person 1 LLN 2500 lowered to 1200; 2 LLN 1900; 3 the infant band (derived);
    # 4 LLN 1700; 5 LLN 2200.
    assert t["normal_limit_per_ul"].tolist() == [1200, 1900, 1000, 1700, 2200]
    a = ref.attrition.set_index("description")
    assert a.loc[FLAG_DESCRIPTIONS["unusable_limit"], "excluded_lab_rows"] == 1
    assert a.loc[FLAG_DESCRIPTIONS["no_age_limit"], "excluded_lab_rows"] == 2
    assert ref.settings["lower_limit"] == "lln" and ref.settings["age_limits"][1] == [14 / D, 1.0, 1000.0]
    assert_same_cohort(ref, build_cohort(_hand_labs(), persons, dx, engine="duckdb", **KW))
    numeric = _hand_labs().assign(lln=lambda d: pd.to_numeric(d["lln"], errors="coerce"))
    assert_same_cohort(build_cohort(numeric, persons, dx, engine="numpy", **KW),
                       build_cohort(numeric, persons, dx, engine="duckdb", **KW))


def test_lower_limit_column_must_exist_on_every_engine(tmp_path):
    persons, dx = _persons_dx()
    labs = _hand_labs().drop(columns="lln")
    path = tmp_path / "labs.parquet"
    labs.to_parquet(path)
    for source, engine in ((labs, "numpy"), (labs, "duckdb"), (path, None)):
        with pytest.raises(NeutrostatsError, match="lln"):
            build_cohort(source, persons, dx, engine=engine, **KW)


def _synthetic(seed=11, n=900):
    """A generated cohort with lab LLNs of every kind, infants and neonates, and Duffy genotypes."""
    s = generate_cohort(n, seed=seed)
    rng = np.random.default_rng(seed)
    labs = s.labs.reset_index(drop=True).copy()
    scale = labs["unit"].isin(["cells/uL", "cells/µL", "/uL", "/µL", "cells/mm3", "/mm3", "cells/mm³"])
    k_choices = np.array(["1.8", "2.0", "1.5", "2.2", "1.2", "", None, "abc", "<2.0", "1800", "1,8"], dtype=object)
    u_choices = np.array(["1800", "2000", "1500", "2200", "1200", "", None, "1,800", "1.8", "50"], dtype=object)
    labs["lln"] = np.where(scale, rng.choice(u_choices, len(labs)), rng.choice(k_choices, len(labs)))
    # Repeats at one sample time with the same value and another LLN (the kept row's own LLN counts).
    rep = labs[labs["code"] == "751-8"].sample(frac=0.15, random_state=seed)
    labs = pd.concat([labs, rep.assign(lln=rng.choice(k_choices, len(rep)))], ignore_index=True)
    persons = s.persons.copy()
    first = labs.groupby("person_id")["sampled_at"].min().dt.normalize()
    young = persons["person_id"].isin(persons.sample(frac=0.12, random_state=seed)["person_id"])
    # Born 0-500 days before their first sample: neonates, infants and toddlers at their samples.
    persons.loc[young, "birth_date"] = (first.reindex(persons.loc[young, "person_id"]).to_numpy()
                                        - pd.to_timedelta(rng.integers(0, 500, int(young.sum())), unit="D"))
    persons.loc[persons.sample(frac=0.02, random_state=seed + 1).index, "birth_date"] = pd.NaT
    dn = persons["duffy_null"].to_numpy() | (rng.random(len(persons)) < 0.1)
    geno = np.where(dn, rng.choice(["CC", "C/C", "Fy(a-b-)"], len(persons)),
                    rng.choice(["TT", "TC", "Fy(a+b-)", "Fy(a+b+)"], len(persons))).astype(object)
    geno[rng.random(len(persons)) < 0.05] = None
    persons["geno"] = geno
    return s, labs, persons


SYNTH_OPTIONS = [
    pytest.param(dict(scheme="ctcae_v5", lower_limit="lln", age_limits="default", duffy_null="geno"), id="lln-age-duffy"),
    pytest.param(dict(scheme="andersen2016", age_limits="default", duffy_null="geno", index="nadir"), id="age-nadir"),
    pytest.param(dict(scheme="ctcae_v6", index="first_neutropenic"), id="ctcae_v6"),
]


def _build_synth(labs, s, persons, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImmortalTimeWarning)
        return build_cohort(labs, persons, s.diagnoses, s.deaths, **kw)


@pytest.fixture(scope="module")
def synth():
    return _synthetic()


@pytest.fixture(scope="module")
def synth_parquet(synth, tmp_path_factory):
    _, labs, _ = synth
    d = tmp_path_factory.mktemp("limits")
    for i, rows in enumerate(np.array_split(np.arange(len(labs)), 2)):
        labs.iloc[rows].to_parquet(d / f"part-{i}.parquet", coerce_timestamps="us", allow_truncated_timestamps=True)
    return d


@pytest.mark.parametrize("kw", SYNTH_OPTIONS)
def test_numpy_duckdb_parquet_agree_on_limits(synth, synth_parquet, kw):
    s, labs, persons = synth
    ref = _build_synth(labs, s, persons, engine="numpy", **kw)
    # The options matter here: rows are flagged and limits differ from the scheme's.
    if "lower_limit" in kw:
        lim = ref.table["normal_limit_per_ul"]
        assert lim.nunique() >= 4
        steps = set(ref.attrition["description"])
        assert {FLAG_DESCRIPTIONS["unusable_limit"], FLAG_DESCRIPTIONS["no_age_limit"]} <= steps
    assert_same_cohort(ref, _build_synth(labs, s, persons, engine="duckdb", **kw))
    assert_same_cohort(ref, _build_synth(str(synth_parquet / "*.parquet"), s, persons, keep_measurements=True, **kw))
    if "lower_limit" in kw:  # a DuckDB relation finds the LLN look-up by name
        import duckdb

        # The connection is held: DuckDB 1.1 closes a connection nothing refers to, under its relation.
        con = duckdb.connect()
        rel = con.read_parquet(str(synth_parquet / "*.parquet"))
        assert_same_cohort(ref, _build_synth(rel, s, persons, keep_measurements=True, **kw))
        con.close()


@pytest.mark.spark
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_spark_agrees_on_limits(synth, synth_parquet):
    from test_backends import _spark_session

    spark = _spark_session()
    s, labs, persons = synth
    kw = SYNTH_OPTIONS[0].values[0]
    ref = _build_synth(labs, s, persons, engine="numpy", **kw)
    assert_same_cohort(ref, _build_synth(spark.read.parquet(str(synth_parquet)), s, persons, **kw),
                       measurements=False)
