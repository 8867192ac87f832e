"""Tests of neutrostats.synthetic, the synthetic cohort generator.

Expected values come from the published table -- Andersen CL et al.,
Prevalence and clinical significance of neutropenia discovered in routine
complete blood cell counts: a longitudinal study, J Intern Med
2016;279:566-575, doi:10.1111/joim.12489, abstract: crude ORs with 95% CIs
per tier against ANC >= 1.8 x 10^9/L -- or from the generator's ``truth`` dict
(its generating parameters), never from generated output.

The tables are read back with a small, independent parser written here (not
neutrostats' own units/severity code), so the generator's idea of the index
measurement is cross-checked by a second implementation.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.stats import norm

from neutrostats.errors import NeutrostatsError
from neutrostats.synthetic import (
    DEFAULT_ASSUMPTIONS,
    DEFAULT_SEED,
    TIERS,
    SyntheticCohort,
    generate_cohort,
    load_sample,
    read_cohort,
    write_cohort,
)

# ---------------------------------------------------------------------------
# Published calibration targets, typed in from Andersen et al. 2016 (abstract):
# OR (95% CI) per tier vs ANC >= 1.8 x 10^9/L for a new diagnosis within 4 years.
# ---------------------------------------------------------------------------
PUBLISHED = {
    "viral_infection": {
        "subnormal": (2.32, 1.84, 2.91),
        "mild": (2.80, 2.20, 3.57),
        "moderate_severe": (4.77, 3.22, 7.07),
    },
    "hematologic_malignancy": {
        "subnormal": (3.23, 2.35, 4.45),
        "mild": (8.69, 6.58, 11.47),
        "moderate_severe": (46.03, 33.98, 62.35),
    },
}
N_COPDIFF = 373_820  # persons in the CopDiff follow-up (Palmblad 2020)
FAST_N = 60_000
FAST_SEED = 11

# ---------------------------------------------------------------------------
# Independent reader (DOMAIN.md section 1 and 4)
# ---------------------------------------------------------------------------

ANC_CODES = {"751-8", "753-4", "26499-4"}
NEUT_PCT_CODES = {"770-8", "26511-6"}
BAND_PCT_CODES = {"764-1"}
WBC_CODES = {"6690-2"}
TIERS = ["normal", "subnormal", "mild", "moderate_severe"]
# DOMAIN.md section 1: per-microlitre spellings, everything else listed there
# is thousands per microlitre (= 10^9/L).
PER_UL = {"cells/uL", "/uL", "cells/µL", "/µL", "cells/mm3", "/mm3", "cells/mm³"}
THOUSANDS = {"10^3/uL", "10*3/uL", "x10E3/uL", "K/uL", "thou/uL", "10^3/mm3", "10^9/L",
             "10*9/L", "x10^9/L", "G/L", "10e9/L"}
_NUM = re.compile(r"^\s*(<)?\s*(-?\d+(?:\.\d+)?)\s*$")


def factor(units: pd.Series) -> np.ndarray:
    f = np.full(len(units), np.nan)
    u = units.to_numpy()
    f[np.isin(u, list(PER_UL))] = 1.0
    f[np.isin(u, list(THOUSANDS))] = 1000.0
    return f


def parse(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Number and 'left-censored' flag of each string; NaN when not a number."""
    ext = values.str.extract(_NUM)
    num = pd.to_numeric(ext[1], errors="coerce").to_numpy()
    cens = ext[0].notna().to_numpy()
    return num, cens


def tier_of(cells: np.ndarray) -> np.ndarray:
    out = np.full(cells.shape, -1)
    out[cells >= 1800] = 0
    out[(cells >= 1500) & (cells < 1800)] = 1
    out[(cells >= 1000) & (cells < 1500)] = 2
    out[cells < 1000] = 3
    return out


def measurements(labs: pd.DataFrame) -> pd.DataFrame:
    """One row per (person, sampled_at) ANC measurement: anc (cells/uL), tier (-1 invalid)."""
    direct = labs[labs["code"].isin(ANC_CODES)]
    num, cens = parse(direct["value"])
    cells = num * factor(direct["unit"])
    tier = tier_of(cells)
    # A censored "<b" is usable only when [0, b) lies inside the lowest tier.
    tier = np.where(cens, np.where(cells <= 1000, 3, -1), tier)
    tier = np.where(np.isnan(cells) | (cells < 0) | (cells > 100_000), -1, tier)
    d = pd.DataFrame({"person_id": direct["person_id"].to_numpy(),
                      "sampled_at": direct["sampled_at"].to_numpy(),
                      "anc": np.where(cens, np.nan, cells), "tier": tier, "derived": False})
    # Derived: only where a sample has no direct ANC.
    keys = ["person_id", "sampled_at"]
    comp = labs[labs["code"].isin(WBC_CODES | NEUT_PCT_CODES | BAND_PCT_CODES)].drop_duplicates(keys + ["code"])
    comp = comp.assign(role=np.select([comp["code"].isin(WBC_CODES), comp["code"].isin(NEUT_PCT_CODES)],
                                      ["wbc", "neut"], "band"))
    n_, c_ = parse(comp["value"])
    comp = comp.assign(num=np.where(c_, np.nan, n_ * np.where(comp["role"] == "wbc", factor(comp["unit"]), 1.0)))
    # Verbatim duplicates were dropped above, so (sample, role) is unique.
    wide = comp.set_index(keys + ["role"])["num"].unstack("role").reindex(columns=["wbc", "neut", "band"])
    has_neut_row = comp[comp["role"] == "neut"].set_index(keys).index
    wide = wide.loc[wide.index.isin(has_neut_row)]
    direct_keys = pd.MultiIndex.from_frame(d[keys])
    wide = wide.loc[~wide.index.isin(direct_keys)]
    anc = wide["wbc"] * (wide["neut"] + wide["band"].fillna(0)) / 100.0
    anc = anc.to_numpy()
    dv = pd.DataFrame({"person_id": wide.index.get_level_values(0), "sampled_at": wide.index.get_level_values(1),
                       "anc": anc, "tier": np.where(np.isnan(anc), -1, tier_of(anc)), "derived": True})
    return pd.concat([d, dv], ignore_index=True).sort_values(keys, kind="stable")


def index_table(labs: pd.DataFrame) -> pd.DataFrame:
    """First valid measurement per person: person_id, index_date, tier (int), anc, derived."""
    m = measurements(labs)
    m = m[m["tier"] >= 0]
    first = m.drop_duplicates("person_id", keep="first")
    return first.rename(columns={"sampled_at": "index_date"}).reset_index(drop=True)


def icd_category(codes: pd.Series) -> pd.Series:
    """Upper-case, undotted code (e.g. 'C920')."""
    return codes.str.upper().str.replace(".", "", regex=False).str.strip()


def in_ranges(codes: pd.Series, ranges: list[str]) -> np.ndarray:
    """Whether each normalised code lies in any of the ranges ('A80-B34', 'M35.0', 'E10')."""
    hit = np.zeros(len(codes), dtype=bool)
    cat3 = codes.str[:3]
    for r in ranges:
        if "-" in r:
            lo, hi = r.split("-")
            hit |= ((cat3 >= lo) & (cat3 <= hi)).to_numpy()
        else:
            key = r.replace(".", "")
            hit |= codes.str.startswith(key).to_numpy()
    return hit


def outcome_flags(index: pd.DataFrame, diagnoses: pd.DataFrame, ranges: list[str]) -> pd.DataFrame:
    """Per indexed person: prevalent (any code on/before index) and event (first code in (index, index+4y])."""
    norm = icd_category(diagnoses["code"])
    dx = diagnoses.loc[in_ranges(norm, ranges), ["person_id", "diagnosed_at"]]
    first = dx.groupby("person_id")["diagnosed_at"].min()
    t = index.set_index("person_id")["index_date"]
    f = first.reindex(t.index)
    prevalent = (f <= t).to_numpy()
    event = ((f > t) & (f <= t + pd.DateOffset(years=4))).to_numpy()
    return pd.DataFrame({"person_id": t.index, "prevalent": prevalent, "event": event})


def crude_or(tier: np.ndarray, event: np.ndarray, level: int, z: float = 1.959963984540054):
    """Crude OR of tier `level` vs tier 0 with a Woolf (Wald) CI from the 2x2 table."""
    a = int(((tier == level) & event).sum())
    b = int(((tier == level) & ~event).sum())
    c = int(((tier == 0) & event).sum())
    d = int(((tier == 0) & ~event).sum())
    est = (a * d) / (b * c)
    se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return est, est * np.exp(-z * se), est * np.exp(z * se), (a, b, c, d)


# ICD-10 code sets of DOMAIN.md section 4 (the autoimmune list is the assumed one).
RANGES = {
    "viral_infection": ["A80-B34"],
    "hiv": ["B20-B24"],
    "hematologic_malignancy": ["C81-C96"],
    "acute_leukemia": ["C910", "C920", "C924", "C925", "C930", "C940", "C950"],
    "mds": ["D46"],
    "solid_cancer": ["C00-C80"],
    "autoimmune": ["M05-M06", "M32", "M350", "K50-K51", "E10", "L40", "G35"],
}
NON_NUMERIC = {"see comment", "clotted", "", "NA"}
DOMAIN_UNITS = {"cells/uL", "/uL", "cells/µL", "/µL", "cells/mm3", "/mm3", "cells/mm³", "10^3/uL",
                "10*3/uL", "x10E3/uL", "K/uL", "thou/uL", "10^3/mm3", "10^9/L", "10*9/L", "x10^9/L",
                "G/L", "10e9/L"}


def within_binomial(k: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    """k successes out of n is within `sigmas` binomial SDs of n * p."""
    sd = math.sqrt(n * p * (1 - p))
    return abs(k - n * p) <= sigmas * max(sd, 1.0)


@pytest.fixture(scope="module")
def cohort() -> SyntheticCohort:
    return generate_cohort(n_persons=FAST_N, seed=FAST_SEED)


@pytest.fixture(scope="module")
def parsed_index(cohort) -> pd.DataFrame:
    return index_table(cohort.labs)


# ---------------------------------------------------------------------------
# Form: schemas, determinism, truth
# ---------------------------------------------------------------------------

SCHEMAS = {
    "persons": {"person_id": "int64", "sex": "object", "birth_date": "datetime64[ns]", "duffy_null": "bool",
                "entry_date": "datetime64[ns]", "end_of_data": "datetime64[ns]"},
    "labs": {"person_id": "int64", "sampled_at": "datetime64[ns]", "code": "object", "value": "object",
             "unit": "object"},
    "diagnoses": {"person_id": "int64", "diagnosed_at": "datetime64[ns]", "code": "object"},
    "deaths": {"person_id": "int64", "died_at": "datetime64[ns]"},
    "index": {"person_id": "int64", "index_date": "datetime64[ns]", "index_anc_per_ul": "float64",
              "index_left_censored": "bool", "index_tier": "category", "anc_source": "object",
              "age_at_index": "float64"},
}


def test_table_schemas(cohort):
    for name, schema in SCHEMAS.items():
        df = getattr(cohort, name)
        assert df.dtypes.astype(str).to_dict() == schema, name
    for col in ("code", "value", "unit"):
        assert cohort.labs[col].map(type).eq(str).all(), col
    assert cohort.diagnoses["code"].map(type).eq(str).all()
    assert cohort.persons["person_id"].is_unique
    assert set(cohort.persons["sex"]) == {"F", "M"}
    tier = cohort.index["index_tier"]
    assert tier.cat.ordered and list(tier.cat.categories) == list(TIERS)
    assert cohort.index["person_id"].tolist() == cohort.persons["person_id"].tolist()
    # Minute resolution for labs, day resolution for diagnoses, deaths and persons.
    assert (cohort.labs["sampled_at"].dt.second == 0).all()
    for name, col in [("diagnoses", "diagnosed_at"), ("deaths", "died_at"), ("persons", "birth_date")]:
        assert (getattr(cohort, name)[col].dt.normalize() == getattr(cohort, name)[col]).all()


def _hashes(c: SyntheticCohort) -> dict[str, str]:
    out = {}
    for name in ("persons", "labs", "diagnoses", "deaths", "index"):
        h = pd.util.hash_pandas_object(getattr(c, name), index=True).to_numpy()
        out[name] = hashlib.sha256(h.tobytes()).hexdigest()
    out["truth"] = hashlib.sha256(json.dumps(c.truth, sort_keys=True).encode()).hexdigest()
    return out


def test_same_seed_same_tables_different_seed_different_tables():
    a = _hashes(generate_cohort(n_persons=3000, seed=5))
    b = _hashes(generate_cohort(n_persons=3000, seed=5))
    c = _hashes(generate_cohort(n_persons=3000, seed=6))
    assert a == b
    assert all(a[k] != c[k] for k in ("persons", "labs", "diagnoses", "index"))


def test_seed_none_is_recorded_and_reproducible():
    c = generate_cohort(n_persons=200, seed=None)
    again = generate_cohort(n_persons=200, seed=c.truth["seed"])
    assert _hashes(c) == _hashes(again)


def test_truth_serialises_to_json_and_names_every_parameter(cohort):
    text = json.dumps(cohort.truth, allow_nan=False)
    assert json.loads(text) == cohort.truth
    t = cohort.truth
    assert set(t["assumptions"]) == set(DEFAULT_ASSUMPTIONS)
    assert set(t["assumption_notes"]) == set(DEFAULT_ASSUMPTIONS)
    for o in ("viral_infection", "hematologic_malignancy", "mds", "solid_cancer", "autoimmune"):
        spec = t["outcomes"][o]
        assert set(spec["conditional_or"]) == {"subnormal", "mild", "moderate_severe"}
        assert spec["baseline_risk"] > 0
    assert set(t["mortality"]["hr"]) == set(TIERS)
    assert set(t["mess"]["rates"]) == {"non_numeric", "negative", "too_high", "below_detection",
                                       "reported_lt_1_5", "duplicate"}


def test_crude_scale_outcomes_are_solved_to_the_published_or(cohort):
    # The solver's expected crude OR (on the generated covariates) is the
    # published point estimate, whatever conditional OR that needed.
    for o, tiers in PUBLISHED.items():
        spec = cohort.truth["outcomes"][o]
        assert spec["or_scale"] == "crude"
        for t, (est, _, _) in tiers.items():
            assert spec["expected_crude_or"][t] == pytest.approx(est, rel=1e-6)
        assert spec["expected_risk_4y"]["normal"] == pytest.approx(spec["baseline_risk"], rel=1e-6)
    # Negative controls: no effect conditional on age and sex.
    for o in ("solid_cancer", "autoimmune"):
        assert cohort.truth["outcomes"][o]["conditional_or"] == {t: 1.0 for t in TIERS[1:]}


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, -5, 2.5, True, "100"])
def test_bad_n_persons(n):
    with pytest.raises(NeutrostatsError, match="n_persons must be a positive integer"):
        generate_cohort(n_persons=n)


def test_bad_seed():
    with pytest.raises(NeutrostatsError, match="seed must be a non-negative integer"):
        generate_cohort(n_persons=10, seed=-1)


def test_unknown_assumption_lists_valid_names():
    with pytest.raises(NeutrostatsError) as e:
        generate_cohort(n_persons=10, share_kids=0.1)
    msg = str(e.value)
    assert "share_kids" in msg and "share_children" in msg and "mess" in msg


def test_unknown_nested_assumption_lists_valid_keys():
    with pytest.raises(NeutrostatsError, match=r"'mess' has unknown keys \['typos'\].*non_numeric"):
        generate_cohort(n_persons=10, mess={"typos": 0.1})
    with pytest.raises(NeutrostatsError, match="'viral_infection.or' has unknown keys"):
        generate_cohort(n_persons=10, viral_infection={"or": {"severe": 2.0}})


@pytest.mark.parametrize(
    "kw, text",
    [
        ({"share_children": 1.5}, "share_children"),
        ({"mess": {"duplicate": -0.1}}, "mess.duplicate"),
        ({"viral_infection": {"or_scale": "adjusted"}}, "or_scale"),
        ({"viral_infection": {"baseline_risk": 0.0}}, "baseline_risk"),
        ({"mortality": {"risk_4y_moderate_severe": 1.0}}, "risk_4y_moderate_severe"),
        ({"lab_end": "2020-01-01"}, "lab_start <= lab_end < end_of_data"),
        ({"anc_median": "high"}, "anc_median"),
    ],
)
def test_out_of_range_assumptions(kw, text):
    with pytest.raises(NeutrostatsError, match=re.escape(text)):
        generate_cohort(n_persons=10, **kw)


@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_tiny_cohorts(n):
    c = generate_cohort(n_persons=n, seed=n)
    assert len(c.persons) == len(c.index) == n
    for name, schema in SCHEMAS.items():
        assert getattr(c, name).dtypes.astype(str).to_dict() == schema, name
    json.dumps(c.truth, allow_nan=False)


def test_partial_nested_assumption_keeps_other_defaults():
    c = generate_cohort(n_persons=500, seed=1, viral_infection={"or": {"mild": 3.0}})
    spec = c.truth["assumptions"]["viral_infection"]
    assert spec["or"]["mild"] == 3.0
    assert spec["or"]["subnormal"] == DEFAULT_ASSUMPTIONS["viral_infection"]["or"]["subnormal"]


# ---------------------------------------------------------------------------
# Lab mess at documented rates (binomial, 4 SD)
# ---------------------------------------------------------------------------


def test_every_kind_of_mess_at_its_rate(cohort):
    rates = DEFAULT_ASSUMPTIONS["mess"]
    labs = cohort.labs
    dedup = labs.drop_duplicates()
    n_dup = len(labs) - len(dedup)
    assert within_binomial(n_dup, len(dedup), rates["duplicate"])
    # Duplicates are verbatim: one value per person, time and code.
    assert (labs.groupby(["person_id", "sampled_at", "code"])["value"].nunique() == 1).all()

    direct = dedup[dedup["code"].isin(ANC_CODES)]
    neut = dedup[dedup["code"].isin(NEUT_PCT_CODES)]
    measures = pd.concat([direct["value"], neut["value"]])
    n_meas = len(measures)
    k_nn = int(measures.isin(NON_NUMERIC).sum())
    assert within_binomial(k_nn, n_meas, rates["non_numeric"])
    assert NON_NUMERIC <= set(measures)

    num, cens = parse(direct["value"])
    cells = num * factor(direct["unit"])
    assert not np.isnan(factor(direct["unit"])).any()
    n_direct = len(direct)
    assert within_binomial(int(((cells < 0) & ~cens).sum()), n_direct, rates["negative"])
    assert within_binomial(int((cells > 100_000).sum()), n_direct, rates["too_high"])
    below = cens & (cells <= 100)
    natural = cohort.truth["mess"]["counts"]["below_detection_natural"]
    assert within_binomial(int(below.sum()) - natural, n_direct, rates["below_detection"])
    # "<1.5" (spans tiers) replaces that share of results in [0.1, 1.5) x 10^9/L.
    lt15 = cens & (cells == 1500)
    eligible = lt15 | (~cens & (cells >= 100) & (cells < 1500))
    assert lt15.sum() > 0
    assert within_binomial(int(lt15.sum()), int(eligible.sum()), rates["reported_lt_1_5"])
    # Both spellings of the detection limit occur.
    assert {"<0.1", "< 0.10"} <= set(direct["value"])


def test_unit_spellings_and_codes(cohort):
    labs = cohort.labs
    count_units = set(labs.loc[labs["code"].isin(ANC_CODES | WBC_CODES), "unit"])
    assert count_units == DOMAIN_UNITS
    assert set(labs.loc[labs["code"].isin(NEUT_PCT_CODES | BAND_PCT_CODES), "unit"]) == {"%"}
    assert set(labs["code"]) == ANC_CODES | NEUT_PCT_CODES | BAND_PCT_CODES | WBC_CODES


def test_derived_only_persons_at_their_rate(cohort):
    labs = cohort.labs
    has_direct = labs.groupby("person_id")["code"].agg(lambda s: s.isin(ANC_CODES).any())
    derived_only = int((~has_direct).sum())
    assert within_binomial(derived_only, len(has_direct), DEFAULT_ASSUMPTIONS["share_derived_only"])
    # Those persons always have the three parts of the differential.
    parts = labs[labs["person_id"].isin(has_direct.index[~has_direct])]
    per_sample = parts.drop_duplicates().groupby(["person_id", "sampled_at"])["code"].nunique()
    assert (per_sample == 3).all()


def test_icd_mess_at_its_rates(cohort):
    rates = DEFAULT_ASSUMPTIONS["icd_mess"]
    codes = cohort.diagnoses["code"]
    alnum = codes.str.replace(".", "", regex=False)
    n = len(codes)
    lower = codes.str.contains(r"[a-z]")
    assert within_binomial(int(lower.sum()), n, rates["lowercase"])
    four_plus = alnum.str.len() >= 4  # canonical code had a dot (e.g. C92.0)
    dotted = codes.str.contains(".", regex=False)
    assert within_binomial(int((four_plus & ~dotted).sum()), int(four_plus.sum()), rates["undotted"])
    trailing = alnum.str.len() == 5  # C92.0 -> C92.00
    assert within_binomial(int(trailing.sum()), int(four_plus.sum()), rates["trailing"])
    assert {"c920", "C92.00"} & set(codes) or trailing.any()


# ---------------------------------------------------------------------------
# Index, dates and follow-up
# ---------------------------------------------------------------------------


def test_index_agrees_with_independent_parser(cohort, parsed_index):
    truth = cohort.index.dropna(subset=["index_date"])
    merged = parsed_index.merge(truth, on="person_id", how="outer", indicator=True, validate="1:1")
    assert (merged["_merge"] == "both").all()
    assert (merged["index_date_x"] == merged["index_date_y"]).all()
    assert (merged["tier"].to_numpy() == merged["index_tier"].cat.codes.to_numpy()).all()
    exact = ~merged["index_left_censored"]
    np.testing.assert_allclose(merged.loc[exact, "anc"], merged.loc[exact, "index_anc_per_ul"], rtol=1e-12)
    assert np.isnan(merged.loc[~exact, "index_anc_per_ul"]).all()
    assert (merged["derived"] == (merged["anc_source"] == "derived")).all()
    # A messy first measurement moves the index to a later CBC for some persons.
    first_cbc = cohort.labs.groupby("person_id")["sampled_at"].min()
    later = (truth.set_index("person_id")["index_date"] > first_cbc.reindex(truth["person_id"]).to_numpy())
    assert later.sum() > 0


def test_index_tier_distribution(cohort):
    share = cohort.index["index_tier"].value_counts(normalize=True)
    below_15 = share["mild"] + share["moderate_severe"]
    # Andersen 2016: about 1% of index counts below 1.5 x 10^9/L.
    assert 0.006 < below_15 < 0.014
    assert share["moderate_severe"] > 0
    age = cohort.index["age_at_index"]
    low = cohort.index["index_tier"].isin(["mild", "moderate_severe"])
    # Palmblad 2020: more neutropenia in children than in adults.
    assert low[age < 19].mean() > 1.5 * low[age >= 19].mean()


def test_dates_are_consistent(cohort):
    p = cohort.persons.set_index("person_id")
    labs = cohort.labs
    a = cohort.truth["assumptions"]
    assert labs["sampled_at"].min() >= pd.Timestamp(a["lab_start"])
    assert labs["sampled_at"].max() < pd.Timestamp(a["lab_end"]) + pd.Timedelta(days=1)
    first = labs.groupby("person_id")["sampled_at"].min().dt.normalize()
    assert (first == p.loc[first.index, "entry_date"]).all()
    died = cohort.deaths.set_index("person_id")["died_at"]
    assert died.index.is_unique
    assert (died <= p.loc[died.index, "end_of_data"]).all()
    # No lab or diagnosis after death, none before birth.
    last_lab = labs.groupby("person_id")["sampled_at"].max().dt.normalize()
    common = last_lab.index.intersection(died.index)
    assert (last_lab[common] <= died[common]).all()
    dx = cohort.diagnoses.merge(cohort.deaths, on="person_id", how="left")
    assert not (dx["diagnosed_at"] > dx["died_at"]).any()
    dx = dx.merge(cohort.persons[["person_id", "birth_date", "end_of_data"]], on="person_id")
    assert (dx["diagnosed_at"] > dx["birth_date"]).all()
    assert (dx["diagnosed_at"] <= dx["end_of_data"]).all()
    # Deaths come after the index measurement.
    ix = cohort.index.set_index("person_id")["index_date"]
    d_ix = ix.reindex(died.index)
    ok = d_ix.notna()
    assert (died[ok] > d_ix[ok]).all()


def test_prevalent_and_late_codes_exist_and_are_not_events(cohort, parsed_index):
    for o in ("viral_infection", "hematologic_malignancy", "solid_cancer"):
        flags = outcome_flags(parsed_index, cohort.diagnoses, RANGES[o])
        n_prev = int(flags["prevalent"].sum())
        assert n_prev == cohort.truth["outcomes"][o]["n_prevalent"]
        # Codes after the 4-year window exist but are not counted as events.
        norm_codes = icd_category(cohort.diagnoses["code"])
        dx = cohort.diagnoses[in_ranges(norm_codes, RANGES[o])].merge(parsed_index, on="person_id")
        after = dx["diagnosed_at"] > dx["index_date"] + pd.DateOffset(years=4)
        assert after.any()
        events = int(flags.loc[~flags["prevalent"], "event"].sum())
        assert events == sum(cohort.truth["outcomes"][o]["n_events"].values())


# ---------------------------------------------------------------------------
# The generating model is recovered
# ---------------------------------------------------------------------------


def _design(cohort, parsed_index):
    ix = parsed_index.merge(cohort.persons[["person_id", "sex", "birth_date"]], on="person_id")
    age = (ix["index_date"].dt.normalize() - ix["birth_date"]).dt.days / 365.25
    X = pd.DataFrame({
        "const": 1.0,
        "subnormal": (ix["tier"] == 1).astype(float),
        "mild": (ix["tier"] == 2).astype(float),
        "moderate_severe": (ix["tier"] == 3).astype(float),
    })
    return ix, X, age, (ix["sex"] == "M").astype(float).to_numpy()


def test_conditional_odds_ratios_recovered(cohort, parsed_index):
    """Logistic regression on tier dummies + the generator's covariates covers the truth.

    Family-wise 95% (Bonferroni over every coefficient tested), so a single
    seed is a fair test.
    """
    ix, X, age, male = _design(cohort, parsed_index)
    X = X.assign(age_decades=((age - 50.0) / 10.0).to_numpy(), male=male)
    outcomes = ("viral_infection", "hematologic_malignancy", "mds", "solid_cancer", "autoimmune")
    k = len(outcomes) * 5
    z = norm.ppf(1 - 0.05 / (2 * k))
    for o in outcomes:
        spec = cohort.truth["outcomes"][o]
        flags = outcome_flags(ix, cohort.diagnoses, RANGES[o])
        keep = ~flags["prevalent"].to_numpy()
        fit = sm.Logit(flags["event"].to_numpy()[keep].astype(float), X[keep]).fit(disp=0)
        true = {**spec["conditional_log_or"], "age_decades": spec["age_log_or_per_decade"],
                "male": spec["male_log_or"]}
        for name, beta in true.items():
            est, se = fit.params[name], fit.bse[name]
            assert abs(est - beta) <= z * se, (o, name, est, se, beta)


def test_mortality_hazard_ratios_recovered(cohort, parsed_index):
    """Poisson regression on person-time (the exponential model's MLE) covers the true log-HRs."""
    ix, X, age, male = _design(cohort, parsed_index)
    m = cohort.truth["mortality"]
    died = cohort.deaths.set_index("person_id")["died_at"].reindex(ix["person_id"])
    start = ix["index_date"].dt.normalize().to_numpy()
    end = cohort.persons.set_index("person_id")["end_of_data"].reindex(ix["person_id"]).to_numpy()
    stop = np.where(died.notna(), died.to_numpy(), end)
    years = (stop - start) / np.timedelta64(1, "D") / 365.25
    X = X.assign(age_decades=((age - 60.0) / 10.0).to_numpy(), male=male)
    fit = sm.GLM(died.notna().to_numpy().astype(float), X, family=sm.families.Poisson(),
                 offset=np.log(years)).fit()
    true = {"const": math.log(m["rate_per_year"]), "age_decades": m["age_log_hr_per_decade"],
            "male": m["male_log_hr"], **{t: math.log(m["hr"][t]) for t in TIERS[1:]}}
    z = norm.ppf(1 - 0.05 / (2 * len(true)))
    for name, beta in true.items():
        assert abs(fit.params[name] - beta) <= z * fit.bse[name], (name, fit.params[name], beta)


def test_hiv_and_acute_leukaemia_strongly_associated(cohort, parsed_index):
    tier = parsed_index["tier"].to_numpy()
    for sub, parent in (("hiv", "viral_infection"), ("acute_leukemia", "hematologic_malignancy")):
        f = outcome_flags(parsed_index, cohort.diagnoses, RANGES[sub])
        keep = ~f["prevalent"].to_numpy()
        est = crude_or(tier[keep], f["event"].to_numpy()[keep], 3)[0]
        # Stronger than the parent outcome's published OR for the lowest tier.
        assert est > PUBLISHED[parent]["moderate_severe"][0]


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_read_round_trip(tmp_path, fmt):
    c = generate_cohort(n_persons=1500, seed=4, mess={"non_numeric": 0.2})
    assert {"", "NA"} <= set(c.labs["value"])
    out = write_cohort(c, tmp_path / "cohort", format=fmt)
    suffix = ".csv.gz" if fmt == "csv" else ".parquet"
    assert {p.name for p in out.iterdir()} == {f"{t}{suffix}" for t in SCHEMAS} | {"truth.json"}
    back = read_cohort(out)
    for name in SCHEMAS:
        pd.testing.assert_frame_equal(getattr(back, name), getattr(c, name), check_exact=True)
    assert back.truth == c.truth
    assert (back.labs["value"] == "").sum() == (c.labs["value"] == "").sum() > 0
    assert (back.labs["value"] == "NA").sum() == (c.labs["value"] == "NA").sum() > 0


def test_csv_files_are_byte_reproducible(tmp_path):
    c = generate_cohort(n_persons=300, seed=2)
    a = (write_cohort(c, tmp_path / "a") / "labs.csv.gz").read_bytes()
    b = (write_cohort(c, tmp_path / "b") / "labs.csv.gz").read_bytes()
    assert a == b
    assert gzip.decompress(a).decode("utf-8").startswith("person_id,sampled_at,code,value,unit\n")


def test_read_and_write_errors(tmp_path):
    with pytest.raises(NeutrostatsError, match="no folder"):
        read_cohort(tmp_path / "nope")
    with pytest.raises(NeutrostatsError, match="incomplete set of files"):
        read_cohort(tmp_path)
    with pytest.raises(NeutrostatsError, match="format must be 'csv' or 'parquet'"):
        write_cohort(generate_cohort(n_persons=20, seed=1), tmp_path, format="xlsx")
    with pytest.raises(NeutrostatsError, match="expected a SyntheticCohort"):
        write_cohort({"labs": None}, tmp_path)


def test_load_sample_matches_its_documented_command():
    s = load_sample()
    assert len(s.persons) == 20_000
    assert s.truth["seed"] == DEFAULT_SEED
    for name, schema in SCHEMAS.items():
        assert getattr(s, name).dtypes.astype(str).to_dict() == schema
    if s.truth["numpy_version"].split(".")[:2] != np.__version__.split(".")[:2]:
        pytest.skip("numpy's random streams may differ from the version that wrote the sample")
    # data/synthetic/README.md: generate_cohort(n_persons=20000, seed=DEFAULT_SEED)
    again = generate_cohort(n_persons=20_000, seed=DEFAULT_SEED)
    assert _hashes(again) == _hashes(s)


def test_progress_bar_only_when_asked(capsys):
    generate_cohort(n_persons=50, seed=1, progress=False)
    assert capsys.readouterr().err == ""
    generate_cohort(n_persons=50, seed=1)  # stderr is captured: not a terminal
    assert capsys.readouterr().err == ""
    generate_cohort(n_persons=50, seed=1, progress=True)
    assert "generate_cohort" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# Agreement with neutrostats.classify_anc
# ---------------------------------------------------------------------------


def test_classify_anc_finds_the_generators_index(cohort):
    import neutrostats

    out = neutrostats.classify_anc(cohort.labs, scheme="andersen2016")
    got = out[out["tier"].notna()].drop_duplicates("person_id", keep="first")
    truth = cohort.index.dropna(subset=["index_date"]).set_index("person_id")
    got = got.set_index("person_id").reindex(truth.index)
    assert (got["sampled_at"] == truth["index_date"]).all()
    assert (got["tier"].astype(str) == truth["index_tier"].astype(str)).all()
    src = got["anc_source"].astype(str).to_numpy()
    assert (src == truth["anc_source"].to_numpy()).all()


# ---------------------------------------------------------------------------
# Calibration on the full CopDiff-sized cohort
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full():
    c = generate_cohort(n_persons=N_COPDIFF, seed=DEFAULT_SEED)
    return c, index_table(c.labs)


@pytest.mark.slow
def test_crude_ors_inside_published_cis(full):
    """Crude OR per Andersen tier (Woolf CI from the 2x2 table) lies inside the published 95% CI.

    Andersen CL et al., J Intern Med 2016;279:566, doi:10.1111/joim.12489:
    index = first valid ANC; outcome = first diagnosis in (index, index + 4 y];
    prevalent cases excluded; reference ANC >= 1.8 x 10^9/L.
    """
    c, ix = full
    tier = ix["tier"].to_numpy()
    for o, tiers in PUBLISHED.items():
        f = outcome_flags(ix, c.diagnoses, RANGES[o])
        keep = ~f["prevalent"].to_numpy()
        for level, (t, (_, lo, hi)) in enumerate(tiers.items(), start=1):
            est, clo, chi, cells = crude_or(tier[keep], f["event"].to_numpy()[keep], level)
            assert lo <= est <= hi, (o, t, est, (clo, chi), (lo, hi), cells)


@pytest.mark.slow
def test_library_crude_ors_inside_published_cis(full):
    """The same calibration through the library: build_cohort + odds_ratios_by_tier.

    Published 95% CIs of Andersen CL et al., J Intern Med 2016;279:566 (typed
    in above); negative controls' Wald CIs must cover 1.
    """
    import neutrostats as ns

    c, _ = full
    names = ["viral_infection", "hematologic_malignancy", "solid_cancer", "autoimmune"]
    cohort = ns.build_cohort(c.labs, c.persons, c.diagnoses, c.deaths, scheme="andersen2016", index="first",
                             followup_years=4, outcomes={o: RANGES[o] for o in names})
    for o in names:
        res = ns.odds_ratios_by_tier(cohort.table, o, method="wald").set_index("group")
        for t in ("subnormal", "mild", "moderate_severe"):
            est, lo, hi = res.loc[t, ["estimate", "conf_low", "conf_high"]]
            if o in PUBLISHED:
                _, plo, phi = PUBLISHED[o][t]
                assert plo <= est <= phi, (o, t, est, (plo, phi))
            else:
                assert lo <= 1.0 <= hi, (o, t, est, lo, hi)


@pytest.mark.slow
def test_negative_controls_cover_one(full):
    c, ix = full
    tier = ix["tier"].to_numpy()
    for o in ("solid_cancer", "autoimmune"):
        f = outcome_flags(ix, c.diagnoses, RANGES[o])
        keep = ~f["prevalent"].to_numpy()
        for level in (1, 2, 3):
            est, lo, hi, cells = crude_or(tier[keep], f["event"].to_numpy()[keep], level)
            assert lo <= 1.0 <= hi, (o, level, est, lo, hi, cells)


@pytest.mark.slow
def test_mortality_by_tier(full):
    """Over half of the lowest tier dies within 4 years (Andersen 2016); risk rises with tier."""
    c, ix = full
    died = c.deaths.set_index("person_id")["died_at"].reindex(ix["person_id"]).to_numpy()
    within = died <= (ix["index_date"] + pd.DateOffset(years=4)).to_numpy()
    risk = [within[ix["tier"].to_numpy() == k].mean() for k in range(4)]
    assert risk[3] > 0.5
    assert risk[0] < risk[1] < risk[2] < risk[3]
    p = c.persons.set_index("person_id").reindex(ix["person_id"])
    age = (ix["index_date"] - p["birth_date"].to_numpy()).dt.days / 365.25
    normal = ix["tier"].to_numpy() == 0
    assert within[normal & (age.to_numpy() >= 70)].mean() > 3 * within[normal & (age.to_numpy() < 50)].mean()
    male = (p["sex"] == "M").to_numpy()
    assert within[normal & male].mean() > within[normal & ~male].mean()


@pytest.mark.slow
def test_full_cohort_size_and_neutropenia_shares(full):
    c, ix = full
    assert 1_200_000 < len(c.labs) < 1_800_000
    share = (ix["tier"] >= 2).mean()
    assert 0.007 < share < 0.013  # about 1% below 1.5 x 10^9/L (Andersen 2016)
    # Palmblad 2020 (same database), read as any CBC below 1.5: 4.9% of
    # children, 1.9% of adults.
    m = measurements(c.labs)
    m = m[m["tier"] >= 0]
    ever = m.groupby("person_id")["tier"].max() >= 2
    age = c.index.set_index("person_id")["age_at_index"].reindex(ever.index)
    assert 0.035 < ever[age < 19].mean() < 0.065
    assert 0.014 < ever[age >= 19].mean() < 0.026


# ---------------------------------------------------------------------------
# simulate_time_updated: counts that change over follow-up, a hazard that follows them
# ---------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402  (this section's own imports)
from hypothesis import strategies as st  # noqa: E402

from neutrostats.synthetic.timevarying import TIME_UPDATED_LOG_HR, simulate_time_updated  # noqa: E402

TV_N = 4000
TV_SEED = 21


@pytest.fixture(scope="module")
def tv_sim() -> SyntheticCohort:
    return simulate_time_updated(TV_N, seed=TV_SEED)


@pytest.fixture(scope="module")
def tv_cohort(tv_sim):
    import neutrostats as ns

    s = tv_sim
    return ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths, engine="numpy", followup_years=20,
                           outcomes={"hematologic_malignancy": RANGES["hematologic_malignancy"]})


def test_time_updated_tables_have_the_export_schemas(tv_sim):
    for name, schema in SCHEMAS.items():
        assert getattr(tv_sim, name).dtypes.astype(str).to_dict() == schema, name
    assert set(tv_sim.labs["code"]) == {"751-8"} and set(tv_sim.labs["unit"]) <= THOUSANDS
    assert (tv_sim.labs["sampled_at"].dt.second == 0).all()
    assert tv_sim.index["person_id"].tolist() == tv_sim.persons["person_id"].tolist()
    assert in_ranges(icd_category(tv_sim.diagnoses["code"]), RANGES["hematologic_malignancy"]).all()


def test_time_updated_index_agrees_with_independent_parser_and_build_cohort(tv_sim, tv_cohort):
    mine = index_table(tv_sim.labs)
    assert (mine["tier"] >= 0).all()  # no mess: every count valid
    truth = tv_sim.index
    assert mine["person_id"].tolist() == truth["person_id"].tolist()
    assert (mine["index_date"].to_numpy() == truth["index_date"].to_numpy()).all()
    assert (mine["tier"].to_numpy() == truth["index_tier"].cat.codes.to_numpy()).all()
    np.testing.assert_allclose(mine["anc"].to_numpy(), truth["index_anc_per_ul"].to_numpy(), rtol=0, atol=1e-6)
    t = tv_cohort.table
    assert t["person_id"].tolist() == truth["person_id"].tolist()
    assert (t["index_sampled_at"].to_numpy() == truth["index_date"].to_numpy()).all()
    assert (t["tier"].cat.codes.to_numpy() == truth["index_tier"].cat.codes.to_numpy()).all()
    # The index count is alone on its day (the first interval's tier is not a choice between counts).
    m = measurements(tv_sim.labs)
    day = m["sampled_at"].dt.normalize()
    first_day = m.groupby("person_id")["sampled_at"].transform("min").dt.normalize()
    assert ((day == first_day).groupby(m["person_id"]).sum() == 1).all()


def test_time_updated_counts_stop_at_death_and_follow_up_is_the_end_of_data(tv_sim):
    s = tv_sim
    died = s.deaths.set_index("person_id")["died_at"]
    last = s.labs.groupby("person_id")["sampled_at"].max().dt.normalize()
    assert (last.reindex(died.index) <= died).all()
    assert (s.labs["sampled_at"] <= s.persons["end_of_data"].iloc[0] + pd.Timedelta(days=1)).all()
    idx = s.index.set_index("person_id")["index_date"].dt.normalize()
    assert (died > idx.reindex(died.index)).all()  # at least a day after the index
    assert s.truth["realised"]["n_deaths"] == len(s.deaths)


def test_time_updated_persistence_mix_at_its_shares(tv_sim):
    got = tv_sim.truth["realised"]["persons_by_pattern"]
    p = tv_sim.truth["persistence"]
    assert sum(got.values()) == TV_N
    assert within_binomial(got["persistent"], TV_N, p["share_persistent"])
    assert within_binomial(got["transient"], TV_N, p["share_transient"])
    # Normal persons are almost always normal at the index: their count falls below 1,800 only by
    # within-person noise (log-normal, median 4.0, total log SD sqrt(0.31^2 + log(1 + 0.26^2)) = 0.405:
    # P(< 1.8) = Phi(log(1.8 / 4) / 0.405) = Phi(-1.97) = 2.4%).
    normal = tv_sim.truth["realised"]["index_tier_counts_by_pattern"]["normal"]
    n_normal = sum(normal.values())
    sd = math.sqrt(0.31**2 + math.log1p(0.26**2))
    assert within_binomial(n_normal - normal["normal"], n_normal, norm.cdf(math.log(1.8 / 4.0) / sd))


def test_time_updated_person_time_and_deaths_by_tier_equal_time_varying_tiers(tv_sim, tv_cohort):
    # Two implementations of "the tier in force": the generator's own segments and time_varying_tiers.
    from neutrostats.cohort.timevarying import time_varying_tiers

    tv = time_varying_tiers(tv_cohort, "death")
    py = (tv["stop"] - tv["start"]).groupby(tv["tier"], observed=False).sum()
    deaths = tv["event"].groupby(tv["tier"], observed=False).sum()
    real = tv_sim.truth["realised"]
    for t in TIERS:
        assert py[t] == pytest.approx(real["person_years_by_tier"][t], rel=1e-12)
        assert deaths[t] == real["deaths_by_tier"][t]


def test_time_updated_death_rates_follow_the_tier_in_force(tv_sim):
    # Constant hazard per tier in force: deaths / person-years estimates rate_per_year * exp(log_hr), Poisson
    # with SD sqrt(d) / PY (the realised counts come from the generating arrays, not from an analysis).
    big = simulate_time_updated(20_000, seed=TV_SEED + 1)
    m = big.truth["mortality"]
    real = big.truth["realised"]
    for j, t in enumerate(TIERS):
        d, py = real["deaths_by_tier"][t], real["person_years_by_tier"][t]
        expected = m["rate_per_year"] * math.exp(0.0 if j == 0 else TIME_UPDATED_LOG_HR[t])
        assert d > 100, (t, d)
        assert abs(d / py - expected) <= 4 * math.sqrt(d) / py, (t, d / py, expected)


def test_time_updated_outcome_rates_follow_the_tier_in_force(tv_sim, tv_cohort):
    from neutrostats.cohort.timevarying import time_varying_tiers

    tv = time_varying_tiers(tv_cohort, "hematologic_malignancy")
    o = tv_sim.truth["outcome"]
    py = (tv["stop"] - tv["start"]).groupby(tv["tier"], observed=False).sum()
    ev = tv["event"].groupby(tv["tier"], observed=False).sum()
    assert ev.sum() == len(tv_sim.diagnoses) == tv_sim.truth["realised"]["n_outcomes"]
    for t in TIERS:
        expected = o["rate_per_year"] * o["hr"][t]
        assert abs(ev[t] / py[t] - expected) <= 4 * math.sqrt(max(ev[t], 1)) / py[t], (t, ev[t] / py[t], expected)


def test_time_updated_is_reproducible_and_round_trips(tmp_path):
    a = simulate_time_updated(800, seed=5)
    assert _hashes(a) == _hashes(simulate_time_updated(800, seed=5))
    c = _hashes(simulate_time_updated(800, seed=6))
    assert all(_hashes(a)[k] != c[k] for k in ("persons", "labs", "index"))
    fresh = simulate_time_updated(100, seed=None)
    assert _hashes(fresh) == _hashes(simulate_time_updated(100, seed=fresh.truth["seed"]))
    back = read_cohort(write_cohort(a, tmp_path / "tv"))
    for name in SCHEMAS:
        pd.testing.assert_frame_equal(getattr(back, name), getattr(a, name), check_exact=True)
    assert back.truth == a.truth == json.loads(json.dumps(a.truth, allow_nan=False))
    assert set(a.truth["designs"]) == {"time_updated", "first_count", "nadir"}
    assert "misspecified" in a.truth["designs"]["first_count"] and "misspecified" in a.truth["designs"]["nadir"]


def test_time_updated_options_change_what_they_say():
    none = simulate_time_updated(500, seed=3, share_persistent=0, share_transient=0, outcome_rate_per_year=0)
    assert none.truth["realised"]["persons_by_pattern"] == {"normal": 500, "persistent": 0, "transient": 0}
    assert none.truth["realised"]["n_dips"] == 0 and len(none.diagnoses) == 0
    sparse = simulate_time_updated(500, seed=3, mean_visit_gap_days=400.0)
    dense = simulate_time_updated(500, seed=3, mean_visit_gap_days=60.0)
    assert len(dense.labs) > 3 * len(sparse.labs)
    strong = simulate_time_updated(100, seed=3, log_hr={"mild": 2.0})
    assert strong.truth["mortality"]["log_hr"] == {"subnormal": 0.3, "mild": 2.0, "moderate_severe": 1.2}


@pytest.mark.parametrize("kw, text", [
    ({"n_persons": 0}, "n_persons must be a positive integer"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"log_hr": {"severe": 1.0}}, "log_hr has unknown tiers"),
    ({"log_hr": {"mild": float("nan")}}, "must be a finite number"),
    ({"share_persistent": 0.7, "share_transient": 0.5}, "must not exceed 1"),
    ({"share_transient": 1.5}, r"share_transient must be a number in \[0, 1\]"),
    ({"rate_per_year": 0}, "rate_per_year must be a positive"),
    ({"mean_visit_gap_days": -3}, "mean_visit_gap_days must be a positive"),
    ({"recheck_days": (0, 5)}, "recheck_days must be"),
    ({"recheck_days": (9, 5)}, "recheck_days must be"),
    ({"entry_end": "2020-01-01"}, "entry_start <= entry_end < end_of_data"),
    ({"end_of_data": "tomorrow-ish"}, "must be dates"),
])
def test_time_updated_bad_arguments(kw, text):
    kw = {"n_persons": 50, **kw}
    with pytest.raises(NeutrostatsError, match=text):
        simulate_time_updated(**kw)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 60), seed=st.integers(0, 2**32 - 1), pers=st.floats(0, 0.5), trans=st.floats(0, 0.5),
       gap=st.floats(5.0, 800.0), lo=st.integers(1, 30), extra=st.integers(0, 60))
def test_time_updated_invariants(n, seed, pers, trans, gap, lo, extra):
    s = simulate_time_updated(n, seed=seed, share_persistent=pers, share_transient=trans, mean_visit_gap_days=gap,
                              recheck_days=(lo, lo + extra))
    real = s.truth["realised"]
    # Person-time by tier adds up to each person's follow-up (index day to death or end of data).
    idx = s.index["index_date"].dt.normalize().to_numpy()
    end = s.persons["end_of_data"].to_numpy()
    died = s.deaths.set_index("person_id")["died_at"].reindex(s.persons["person_id"]).to_numpy()
    stop = np.where(pd.isna(died), end, died)
    follow = ((stop - idx) / np.timedelta64(1, "D")).sum() / 365.25
    assert sum(real["person_years_by_tier"].values()) == pytest.approx(follow, rel=1e-12, abs=1e-12)
    assert sum(real["deaths_by_tier"].values()) == real["n_deaths"] == len(s.deaths)
    assert real["n_counts"] == len(s.labs) and sum(real["counts_by_pattern"].values()) == len(s.labs)
    assert sum(real["index_tier_counts"].values()) == n
    assert s.labs.groupby("person_id").size().reindex(s.persons["person_id"]).ge(1).all()
