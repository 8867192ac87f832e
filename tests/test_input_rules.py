"""One input rule for the statistics layer (issue 14).

* Time-to-event functions use the complete cases over the columns the call
  uses; the rows left out are counted in the result (``attrs["n_missing"]``
  of a table, ``n_missing`` of a result object) and announced by a
  ``DataQualityWarning`` naming the function, the count and the columns.
* Durations and events that are not numbers (text, dates, timedeltas),
  infinite durations and empty tables raise ``NeutrostatsError``.
* A covariate that is numeric except for some text, or numbers written as
  text, raises; ``categorical=`` makes a numeric-coded column a factor.

Expected results come from the same estimator on the complete-case table
filtered by hand in the test (the row numbers written out), so a wrong
complete-case rule (too many or too few rows, a column forgotten) fails.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neutrostats.stats.odds_ratios import odds_ratios_by_tier
from neutrostats.stats.competing import cumulative_incidence, gray_test
from neutrostats.stats.cox import cox_fit, cox_hazard_ratios, proportional_hazards_test
from neutrostats.errors import DataQualityWarning, NeutrostatsError
from neutrostats.stats.survival import at_risk_table, kaplan_meier, logrank_test, restricted_mean_survival, survival_at
from neutrostats.stats.tableone import table_one

TIERS = ["normal", "mild", "severe"]


def cohort(n: int = 90, seed: int = 7) -> pd.DataFrame:
    """Small cohort with every column a time-to-event call can use; no missing values."""
    rng = np.random.default_rng(seed)
    tier = np.array(TIERS)[np.arange(n) % 3]
    t = np.round(rng.exponential(4.0, n), 2) + 0.5
    e = (rng.random(n) < 0.6).astype(int)
    ev = np.where(e == 1, 1 + (rng.random(n) < 0.4), 0)  # 0 censored, 1 event, 2 competing
    return pd.DataFrame({
        "t": t,
        "e": e,
        "ev": ev,
        "g": np.where(np.arange(n) % 2 == 0, "a", "b"),
        "tier": pd.Categorical(tier, categories=TIERS, ordered=True),
        "s": np.round(t * rng.uniform(0, 0.3, n), 2),
        "st": np.where(rng.random(n) < 0.5, "north", "south"),
        "age": np.round(rng.normal(60, 12, n), 1),
        "sex": rng.choice(["F", "M"], n),
    })


def with_holes(df: pd.DataFrame, holes: dict[str, list[int]]) -> pd.DataFrame:
    out = df.copy()
    for col, rows in holes.items():
        out.loc[rows, col] = None if out[col].dtype == object or str(out[col].dtype) == "str" else np.nan
    return out


# Missing values at rows 3 and 11 in the first used column, row 20 in the second and row 3 again
# (already counted) in the third: rows 3, 11 and 20 are left out, 3 rows.
def holes_for(cols):
    a, b, c = cols
    return {a: [3, 11], b: [20], c: [3]}


EXPECTED_ROWS_OUT = [3, 11, 20]

CALLS = {
    "kaplan_meier": (lambda d: kaplan_meier(d, "t", "e", "g", entry="s"), ["t", "g", "s"]),
    "survival_at": (lambda d: survival_at(d, "t", "e", "g", times=[1, 2, 4]), ["e", "g", "t"]),
    "restricted_mean_survival": (lambda d: restricted_mean_survival(d, "t", "e", "g", horizon=3), ["g", "t", "e"]),
    "cumulative_incidence": (lambda d: cumulative_incidence(d, "t", "ev", "g", entry="s"), ["ev", "s", "g"]),
    "gray_test": (lambda d: gray_test(d, "t", "ev", "g", strata="st"), ["st", "t", "g"]),
    "cox_hazard_ratios": (lambda d: cox_hazard_ratios(d, "t", "e", "tier", adjust=["age", "sex"], entry="s",
                                                      strata="st"), ["age", "tier", "st"]),
    "proportional_hazards_test": (lambda d: proportional_hazards_test(d, "t", "e", "tier", adjust=["age", "sex"]),
                                  ["sex", "e", "age"]),
}


def _missing_counts(holes):
    counts = {}
    for col, rows in holes.items():
        counts[col] = counts.get(col, 0) + len(rows)
    return counts


@pytest.mark.parametrize("name", list(CALLS))
def test_complete_cases_counted_and_announced(name):
    call, cols = CALLS[name]
    df = cohort()
    holes = holes_for(cols)
    bad = with_holes(df, holes)
    complete = df.drop(index=EXPECTED_ROWS_OUT).reset_index(drop=True)
    with pytest.warns(DataQualityWarning, match=rf"{name}: 3 of 90 rows left out") as rec:
        res = call(bad)
    message = str(rec[0].message)
    for col, k in _missing_counts(holes).items():
        assert f"{col!r} {k}" in message
    expected = call(complete)  # no missing values: no warning (warnings are errors in the tests)
    pd.testing.assert_frame_equal(res.reset_index(drop=True), expected.reset_index(drop=True))
    assert res.attrs["n_missing"] == 3 and expected.attrs["n_missing"] == 0
    assert res.attrs["missing"] == _missing_counts(holes)
    assert expected.attrs["missing"] == {}


def test_logrank_complete_cases():
    df = cohort()
    holes = {"t": [3, 11], "g": [20], "st": [3, 40]}  # rows 3, 11, 20, 40: 4 rows
    bad = with_holes(df, holes)
    with pytest.warns(DataQualityWarning, match=r"logrank_test: 4 of 90 rows left out.*'t' 2, 'g' 1, 'st' 2"):
        res = logrank_test(bad, "t", "e", "g", strata="st")
    ref = logrank_test(df.drop(index=[3, 11, 20, 40]), "t", "e", "g", strata="st")
    assert res.n_missing == 4 and ref.n_missing == 0
    assert res.missing == {"t": 2, "g": 1, "st": 2}
    assert res.statistic == ref.statistic and res.table["n"].sum() == 86
    pd.testing.assert_frame_equal(res.table, ref.table)


def test_at_risk_table_keeps_the_count():
    bad = with_holes(cohort(), {"t": [0]})
    with pytest.warns(DataQualityWarning):
        km = kaplan_meier(bad, "t", "e")
    assert at_risk_table(km, [0, 1]).attrs["n_missing"] == 1


def test_missing_event_and_nullable_dtypes():
    df = cohort()
    bad = df.assign(e=pd.array(df["e"], dtype="Int64"), t=pd.array(df["t"], dtype="Float64"))
    bad.loc[5, "e"] = pd.NA
    bad.loc[6, "t"] = pd.NA
    with pytest.warns(DataQualityWarning, match=r"2 of 90 rows.*'t' 1, 'e' 1"):
        res = kaplan_meier(bad, "t", "e")
    pd.testing.assert_frame_equal(res, kaplan_meier(df.drop(index=[5, 6]), "t", "e"))


def test_cox_fit_arrays_complete_cases():
    df = cohort()
    X = df[["age"]].to_numpy(dtype=float).copy()
    t = df["t"].to_numpy(dtype=float).copy()
    X[4, 0] = np.nan
    t[9] = np.nan
    with pytest.warns(DataQualityWarning, match=r"cox_fit: 2 of 90 rows left out.*'time' 1, 'X\[:, 0\]' 1"):
        fit = cox_fit(t, df["e"], X)
    keep = np.ones(90, dtype=bool)
    keep[[4, 9]] = False
    ref = cox_fit(t[keep], df["e"].to_numpy()[keep], X[keep])
    assert fit.n_missing == 2 and ref.n_missing == 0 and fit.n == 88
    assert fit.missing == {"time": 1, "X[:, 0]": 1}
    np.testing.assert_array_equal(fit.coef, ref.coef)


def test_no_complete_row_raises():
    df = cohort().assign(g=None)
    with pytest.raises(NeutrostatsError, match=r"kaplan_meier: no row .*complete cases.*'g' 90"):
        kaplan_meier(df, "t", "e", "g")


@pytest.mark.parametrize("fn", [
    lambda d: kaplan_meier(d, "t", "e"),
    lambda d: logrank_test(d, "t", "e", "g"),
    lambda d: cumulative_incidence(d, "t", "ev"),
    lambda d: gray_test(d, "t", "ev", "g"),
    lambda d: cox_hazard_ratios(d, "t", "e", "tier"),
    lambda d: proportional_hazards_test(d, "t", "e", "tier"),
    lambda d: odds_ratios_by_tier(d, "e"),
    lambda d: table_one(d, columns=["age"]),
])
def test_empty_table_raises(fn):
    with pytest.raises(NeutrostatsError, match="has no rows"):
        fn(cohort().iloc[:0])


# --- non-numeric durations and events ---------------------------------------------------------------

DURATION_FNS = {
    "kaplan_meier": lambda d: kaplan_meier(d, "t", "e"),
    "logrank_test": lambda d: logrank_test(d, "t", "e", "g"),
    "cumulative_incidence": lambda d: cumulative_incidence(d, "t", "ev"),
    "cox_hazard_ratios": lambda d: cox_hazard_ratios(d, "t", "e", "tier"),
}


@pytest.mark.parametrize("name", list(DURATION_FNS))
def test_text_durations_raise_with_what_to_do(name):
    df = cohort()
    as_text = df.assign(t=df["t"].astype(str))
    with pytest.raises(NeutrostatsError) as info:
        DURATION_FNS[name](as_text)
    msg = str(info.value)
    assert msg.startswith(f"{name}: column 't' (duration) must be numeric")
    assert "90 of 90 values" in msg and repr(str(df["t"].iloc[0])) in msg and "pandas.to_numeric(df['t'])" in msg
    words = df.assign(t=["abc"] + df["t"].tolist()[1:])
    with pytest.raises(NeutrostatsError, match=r"1 of 90 values that are not numbers \(e.g. \['abc'\]\).*years"):
        DURATION_FNS[name](words)


@pytest.mark.parametrize("name", list(DURATION_FNS))
def test_dates_and_timedeltas_as_durations_raise(name):
    df = cohort()
    dates = df.assign(t=pd.Timestamp("2020-01-01") + pd.to_timedelta(df["t"] * 365, unit="D"))
    with pytest.raises(NeutrostatsError, match=r"column 't' \(duration\).*dates/times \(dtype datetime64.*years"):
        DURATION_FNS[name](dates)
    spans = df.assign(t=pd.to_timedelta(df["t"] * 365, unit="D"))
    with pytest.raises(NeutrostatsError, match=r"time differences.*df\['t'\]\.dt\.days / 365\.25"):
        DURATION_FNS[name](spans)


@pytest.mark.parametrize("name", list(DURATION_FNS))
def test_infinite_durations_raise(name):
    df = cohort()
    df.loc[2, "t"] = np.inf
    with pytest.raises(NeutrostatsError, match=r"column 't' \(duration\) must be finite, found 1 infinite"):
        DURATION_FNS[name](df)


def test_text_events_raise():
    df = cohort().assign(e=lambda d: np.where(d["e"] == 1, "yes", "no"))
    with pytest.raises(NeutrostatsError, match=r"kaplan_meier: column 'e' .*text values such as \['yes', 'no'\]"):
        kaplan_meier(df, "t", "e")
    with pytest.raises(NeutrostatsError, match=r"column 'ev' \(event code\).*text values such as \['1'"):
        cumulative_incidence(cohort().assign(ev=lambda d: d["ev"].astype(str)), "t", "ev")


# --- covariates ----------------------------------------------------------------------------------------


def with_old(df):
    ages = df["age"].astype(object)
    ages.iloc[7] = "old"
    return df.assign(age_at_index=ages)


def test_stray_text_in_a_numeric_covariate_raises_naming_it():
    df = with_old(cohort())
    pattern = r"covariate 'age_at_index' mixes numbers and text: 1 of 90 non-missing values are not numbers \(\['old'\]\)"
    with pytest.raises(NeutrostatsError, match=r"odds_ratios_by_tier: " + pattern):
        odds_ratios_by_tier(df, "e", method="logistic", adjust=["age_at_index", "sex"])
    with pytest.raises(NeutrostatsError, match=r"odds_ratios_by_tier: " + pattern):
        odds_ratios_by_tier(df, "e", method="firth", adjust=["age_at_index"])
    with pytest.raises(NeutrostatsError, match=r"cox_hazard_ratios: " + pattern):
        cox_hazard_ratios(df, "t", "e", "tier", adjust=["age_at_index"])
    with pytest.raises(NeutrostatsError, match=r"table_one: " + pattern):
        table_one(df, columns=["age_at_index"])


def test_up_to_five_distinct_strings_are_named():
    df = cohort()
    ages = df["age"].astype(object)
    for i, v in enumerate(["old", "old", "n/a", "?", "unknown", "90+", "x"]):
        ages.iloc[i] = v
    with pytest.raises(NeutrostatsError, match=r"7 of 90 non-missing values are not numbers "
                                               r"\(\['old', 'n/a', '\?', 'unknown', '90\+'\]\)"):
        cox_hazard_ratios(df.assign(age=ages), "t", "e", "tier", adjust=["age"])


def test_numbers_written_as_text_raise():
    df = cohort().assign(age=lambda d: d["age"].astype(str))
    with pytest.raises(NeutrostatsError, match=r"covariate 'age' holds numbers written as text.*pandas\.to_numeric"):
        odds_ratios_by_tier(df, "e", method="logistic", adjust=["age"])
    with pytest.raises(NeutrostatsError, match=r"numbers written as text.*categorical="):
        cox_hazard_ratios(df, "t", "e", "tier", adjust=["age"])


def test_categorical_makes_a_numeric_code_a_factor():
    df = cohort()
    df["grp"] = np.arange(len(df)) // 3 % 3 + 1  # 1, 2, 3: a code, not a quantity
    res = cox_hazard_ratios(df, "t", "e", "tier", adjust=["grp"], categorical=["grp"])
    assert res["term"].tolist() == [*TIERS, "grp[2]", "grp[3]"]
    linear = cox_hazard_ratios(df, "t", "e", "tier", adjust=["grp"])
    assert linear["term"].tolist() == [*TIERS, "grp"]
    # The same design as a text factor with the same reference level.
    text = cox_hazard_ratios(df.assign(grp=df["grp"].map({1: "a", 2: "b", 3: "c"})), "t", "e", "tier",
                             adjust=["grp"])
    assert text["term"].tolist() == [*TIERS, "grp[b]", "grp[c]"]
    np.testing.assert_allclose(res["estimate"], text["estimate"], rtol=1e-10)
    ors = odds_ratios_by_tier(df, "e", method="logistic", adjust=["grp"], categorical=["grp"])
    ors_text = odds_ratios_by_tier(df.assign(grp=df["grp"].map({1: "a", 2: "b", 3: "c"})), "e",
                                   method="logistic", adjust=["grp"])
    ors_linear = odds_ratios_by_tier(df, "e", method="logistic", adjust=["grp"])
    np.testing.assert_allclose(ors["estimate"], ors_text["estimate"], rtol=1e-8)
    assert not np.allclose(ors["estimate"], ors_linear["estimate"], rtol=1e-8)


def test_categorical_accepts_mixed_values_as_levels():
    df = with_old(cohort())
    df["band"] = np.where(df["age"] > 60, "61", "old")
    res = cox_hazard_ratios(df, "t", "e", "tier", adjust=["band"], categorical=["band"])
    assert res["term"].tolist()[-1] == "band[old]"


def test_categorical_must_name_adjust_columns():
    with pytest.raises(NeutrostatsError, match=r"categorical= names \['sex'\], which are not in adjust="):
        cox_hazard_ratios(cohort(), "t", "e", "tier", adjust=["age"], categorical=["sex"])
    with pytest.raises(NeutrostatsError, match=r"categorical= names \['sex'\], which are not in adjust="):
        odds_ratios_by_tier(cohort(), "e", method="logistic", adjust=["age"], categorical=["sex"])


def test_polars_gives_the_same_kaplan_meier():
    pl = pytest.importorskip("polars")
    df = cohort()
    pdf = pl.from_pandas(df.drop(columns=["tier"]))
    pd.testing.assert_frame_equal(kaplan_meier(pdf, "t", "e", "g"), kaplan_meier(df, "t", "e", "g"))
    pd.testing.assert_frame_equal(kaplan_meier(pdf.lazy(), "t", "e", "g"), kaplan_meier(df, "t", "e", "g"))


def test_duplicate_column_names_raise():
    df = cohort()
    dup = pd.concat([df, df[["t"]]], axis=1)
    with pytest.raises(NeutrostatsError, match="duplicate column names"):
        kaplan_meier(dup, "t", "e")
    with pytest.raises(NeutrostatsError, match="duplicate column names"):
        cox_hazard_ratios(dup, "t", "e", "tier")


def test_boolean_events_with_gaps_are_missing_not_errors():
    # A boolean column with a gap becomes an object column of True/False/None in pandas.
    df = cohort()
    died = df["e"].astype(bool).astype(object)
    died.iloc[[1, 2]] = None
    with pytest.warns(DataQualityWarning, match=r"2 of 90 rows left out.*'e' 2"):
        res = kaplan_meier(df.assign(e=died), "t", "e")
    pd.testing.assert_frame_equal(res, kaplan_meier(df.drop(index=[1, 2]), "t", "e"))


def test_odds_ratio_table_passes_categorical_on():
    from neutrostats.stats.odds_ratios import odds_ratio_table

    df = cohort().assign(grp=lambda d: np.arange(len(d)) // 3 % 3 + 1, e2=lambda d: 1 - d["e"])
    stacked = odds_ratio_table(df, ["e", "e2"], method="logistic", adjust=["grp"], categorical=["grp"])
    one = odds_ratios_by_tier(df, "e2", method="logistic", adjust=["grp"], categorical=["grp"])
    np.testing.assert_allclose(stacked["estimate"].iloc[3:], one["estimate"], rtol=1e-12)


@pytest.mark.parametrize("method", ["logistic", "firth", "midp"])
def test_odds_ratios_count_and_announce_missing_tier_and_covariates(method):
    df = cohort().assign(y=lambda d: d["e"].astype(bool))
    adjust = ["age", "sex"] if method != "midp" else None
    # Rows 3 and 11 miss the tier; row 20 the age (only used when adjusting): 2 or 3 rows out.
    holes = with_holes(df, {"tier": [3, 11], "age": [20]})
    out_rows = [3, 11, 20] if adjust else [3, 11]
    with pytest.warns(DataQualityWarning, match=f"{len(out_rows)} of 90 rows left out"):
        got = odds_ratios_by_tier(holes, "y", method=method, adjust=adjust)
    want = odds_ratios_by_tier(df.drop(index=out_rows), "y", method=method, adjust=adjust)
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs["n_missing"] == len(out_rows)
    assert got.attrs["missing"] == ({"tier": 2, "age": 1} if adjust else {"tier": 2})
