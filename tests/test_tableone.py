"""Table 1 (``neutrostats.stats.tableone``) against R, plus suppression, display and errors.

Reference values come from ``tests/reference/tableone_reference.R`` (R 4.2.2,
base R: ``quantile(type = 7)``, ``var``, ``solve``), committed as
``tests/reference/tableone_reference.json``, computed on
``tests/reference/data/tableone_cohort.csv``. R's tableone package could not
be installed, so the script computes the SMDs from their published formulas
(Austin 2009; Yang & Dalton 2012) rather than through ``tableone::ExtractSmd``;
see ``tests/reference/README.md``. Everything is compared at 1e-10 relative.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neutrostats.errors import NeutrostatsError
from neutrostats.stats.tableone import TableOne, table_one

REF_DIR = Path(__file__).resolve().parent / "reference"
REF = json.loads((REF_DIR / "tableone_reference.json").read_text(encoding="utf-8"))
TIERS = ["normal", "subnormal", "mild", "moderate_severe"]
# How display() names them when the scheme is not known: no ranges.
SHOWN_TIERS = ["Normal", "Subnormal", "Mild", "Moderate–severe"]
BANDS = ["<50", "50-69", "70+"]
VARIABLES = list(REF["types"])
REL, ABS = 1e-10, 1e-12


def _cohort() -> pd.DataFrame:
    d = pd.read_csv(REF_DIR / "data" / "tableone_cohort.csv")
    d["tier"] = pd.Categorical(d["tier"], categories=TIERS, ordered=True)
    d["age_band"] = pd.Categorical(d["age_band"], categories=BANDS)
    return d


@pytest.fixture(scope="module")
def table() -> TableOne:
    return table_one(_cohort(), columns=VARIABLES)


def _close(actual, expected) -> bool:
    if expected is None:
        return actual is None or actual is pd.NA or np.isnan(actual)
    return actual == pytest.approx(expected, rel=REL, abs=ABS)


# --- against R ------------------------------------------------------------------


def test_reference_fixture_records_versions():
    assert REF["header"]["r_version"].startswith("R version 4.")
    assert REF["groups"] == TIERS


def test_types_inferred_like_the_reference(table):
    # duffy_null has missing values, so pandas reads it as object: still binary
    assert table.settings["types"] == REF["types"]


@pytest.mark.parametrize("row", REF["summaries"], ids=lambda r: f"{r['variable']}-{r['group']}-{r['level']}")
def test_summaries_match_r(table, row):
    t = table.tidy
    level = t["level"].isna() if row["level"] is None else t["level"] == row["level"]
    got = t[(t["variable"] == row["variable"]) & (t["group"] == row["group"]) & level]
    assert len(got) == 1
    got = got.iloc[0]
    for key, expected in row.items():
        if key in ("variable", "group", "level"):
            continue
        assert _close(got[key], expected), (key, got[key], expected)


def test_type7_quantiles_differ_from_other_definitions(table):
    """The reference would catch another quantile rule: type 6 gives other quartiles here."""
    x = _cohort().query("tier == 'mild'")["age_at_index"].dropna().to_numpy()
    ours = table.tidy.query("variable == 'age_at_index' and group == 'mild'")["q1"].iloc[0]
    assert ours == pytest.approx(np.quantile(x, 0.25))
    assert abs(ours - np.quantile(x, 0.25, method="weibull")) > 1e-3


@pytest.mark.parametrize("reference", ["normal", "mild"])
def test_smd_against_reference_matches_r(reference):
    t = table_one(_cohort(), columns=VARIABLES, reference=reference)
    expected = {(r["variable"], r["group"]): r["smd"] for r in REF["smd"] if r["reference"] == reference}
    got = t.smd[t.smd["comparison"] == "vs_reference"]
    checked = 0
    for r in got.itertuples():
        assert r.reference == reference and not r.suppressed
        if r.group == reference:
            assert r.smd == 0.0
            continue
        assert _close(r.smd, expected[(r.variable, r.group)]), (r.variable, r.group, r.smd)
        checked += 1
    assert checked == len(expected) == len(VARIABLES) * 3


def test_pairwise_mean_matches_r(table):
    got = table.smd[table.smd["comparison"] == "pairwise_mean"].set_index("variable")["smd"]
    assert sorted(got.index) == sorted(REF["pairwise_mean"])
    for var, expected in REF["pairwise_mean"].items():
        assert _close(got[var], expected), var


@pytest.mark.parametrize("categories", [BANDS + ["unknown"], ["unknown"] + BANDS])
def test_unused_level_leaves_categorical_smd_unchanged(categories):
    """A level nobody has makes the pooled covariance singular; the pseudo-inverse
    (as MASS::ginv in tableone) must give the same distance as R's solve() without it."""
    d = _cohort()
    d["age_band"] = pd.Categorical(d["age_band"].astype(object), categories=categories)
    t = table_one(d, columns=["age_band"])
    ref = {r["group"]: r["smd"] for r in REF["smd"] if r["variable"] == "age_band" and r["reference"] == "normal"}
    for r in t.smd[t.smd["comparison"] == "vs_reference"].itertuples():
        if r.group != "normal":
            assert _close(r.smd, ref[r.group])
    mean = t.smd.loc[t.smd["comparison"] == "pairwise_mean", "smd"].iloc[0]
    assert _close(mean, REF["pairwise_mean"]["age_band"])
    assert (t.tidy.query("variable == 'age_band' and level == 'unknown'")["n"] == 0).all()


def test_binary_smd_is_signed_and_categorical_is_not(table):
    s = table.smd.set_index(["variable", "group"])["smd"]
    assert s[("age_at_index", "subnormal")] < 0  # younger than the reference, as in R
    assert (table.smd.loc[table.smd["type"] == "categorical", "smd"] >= 0).all()


def test_row_order_does_not_change_results(table):
    shuffled = _cohort().sample(frac=1, random_state=7).reset_index(drop=True)
    t = table_one(shuffled, columns=VARIABLES)
    pd.testing.assert_frame_equal(t.tidy, table.tidy, rtol=1e-12)
    pd.testing.assert_frame_equal(t.smd, table.smd, rtol=1e-12)


def test_input_not_modified():
    d = _cohort()
    before = d.copy()
    table_one(d, columns=VARIABLES, min_cell_count=5)
    pd.testing.assert_frame_equal(d, before)


# --- defaults, missing values, unused groups ------------------------------------


def test_default_columns():
    t = table_one(_cohort())
    expected = ["age_at_index", "sex", "index_anc_per_ul", "duffy_null"] + [
        c for c in _cohort().columns if c.endswith("_prevalent")]
    assert t.settings["variables"] == expected


def test_missing_counted_never_dropped(table):
    t = table.tidy
    age = t[(t["variable"] == "age_at_index")].set_index("group")
    assert int(age.loc["Overall", "missing"]) == 14
    assert (age["n"] + age["missing"] == age["denominator"]).all()
    sex = t[(t["variable"] == "sex") & (t["group"] == "Overall")]
    assert sex["missing"].tolist() == [2, 2] and sex["n"].sum() + 2 == 500
    shown = table.display()
    rows = list(shown.index)
    assert rows[rows.index("Age at index (years), median [IQR]") + 1] == "  missing"
    # a variable without missing values has no missing row
    assert rows[rows.index("ANC at index (×10⁹/L), median [IQR]") + 1] != "  missing"


def test_unused_group_kept_with_zero():
    d = _cohort()
    d["tier"] = d["tier"].cat.add_categories("profound")
    t = table_one(d, columns=["age_at_index", "sex", "duffy_null"])
    n = t.tidy[t.tidy["variable"] == "n"].set_index("group")["n"]
    assert list(n.index) == TIERS + ["profound", "Overall"] and n["profound"] == 0
    assert list(t.display().columns) == SHOWN_TIERS + ["Profound", "Overall", "SMD"]
    assert t.display().loc["n", "Profound"] == "0"
    assert t.display().loc["Age at index (years), median [IQR]", "Profound"] == "–"
    smd = t.smd.set_index(["variable", "group"])
    assert np.isnan(smd.loc[("age_at_index", "profound"), "smd"])
    assert not smd.loc[("age_at_index", "profound"), "suppressed"]
    # the empty group is left out of the pairwise mean (tableone would return NA)
    mean = t.smd.query("variable == 'age_at_index' and comparison == 'pairwise_mean'")["smd"].iloc[0]
    assert _close(mean, REF["pairwise_mean"]["age_at_index"])


def test_categorical_override_and_plain_grouping_column():
    d = pd.DataFrame({"arm": ["b", "a", "b", "a", "a"], "grade": [1, 2, 2, 1, 1], "x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    t = table_one(d, by="arm", columns=["grade", "x"], categorical=["grade"])
    assert t.settings["groups"] == ["a", "b"] and t.settings["reference"] == "a"
    assert t.settings["types"] == {"grade": "categorical", "x": "continuous"}
    assert t.tidy.query("variable == 'grade' and group == 'a'")["n"].tolist() == [2, 1]


# --- disclosure -----------------------------------------------------------------


def _small_cells() -> pd.DataFrame:
    """normal 60, mild 30, severe 3 persons (n < 5), and an unused tier."""
    tier = ["normal"] * 60 + ["mild"] * 30 + ["severe"] * 3
    flag = [True] * 10 + [False] * 50 + [True] * 2 + [False] * 28 + [True] + [False] * 2
    sex = ["F"] * 57 + ["M"] * 3 + ["F", "M"] * 15 + ["F"] * 3
    age = [float(40 + i % 30) for i in range(93)]
    age[0] = age[1] = np.nan  # two missing ages among normal
    return pd.DataFrame({
        "tier": pd.Categorical(tier, categories=["normal", "mild", "severe", "empty"], ordered=True),
        "age": age, "sex": sex, "flag": flag})


def _counts_in(text: str) -> list[int]:
    return [int(m.replace(",", "")) for m in re.findall(r"(?<![\d.])\d[\d,]*(?![\d.])", text)]


def test_suppression_hides_every_small_count():
    t = table_one(_small_cells(), columns=["age", "sex", "flag"], min_cell_count=5)
    tidy = t.tidy
    for col in ("n", "denominator", "missing"):
        v = tidy[col].dropna().astype(int)
        assert not v.between(1, 4).any(), col
    # display: counts (not medians or percents) never 1..4
    shown = t.display()
    for cell in shown.drop(columns="SMD").to_numpy().ravel():
        if "[" not in cell:  # medians are not counts
            counts = _counts_in(cell.split("(")[0])
            assert not any(1 <= c <= 4 for c in counts), cell
    for rec in t.to_dict()["tidy"]:
        for col in ("n", "denominator", "missing"):
            assert rec[col] is None or not 1 <= rec[col] <= 4
    # Hidden counts carry their mark: "<5" below the threshold, "[c]" hidden to protect another.
    assert "<5" in shown.to_string() and "[c]" in shown.to_string()


def test_secondary_suppression():
    t = table_one(_small_cells(), columns=["age", "sex", "flag"], min_cell_count=5)
    n = t.tidy[t.tidy["variable"] == "n"].set_index("group")
    # severe (3) is hidden, and another group size with it (else Overall - the others gives it back)
    hidden = n["n"].isna()
    assert hidden["severe"] and hidden.drop("severe").sum() >= 1 and not hidden["empty"]
    assert n.loc["empty", "n"] == 0
    # within normal: M = 3 hidden, and F = 57 or the denominator 60 with it, else 60 - 57 would give it
    sex = t.tidy.query("variable == 'sex' and group == 'normal'")
    assert sex["n"].isna().iloc[1] and (sex["n"].isna().iloc[0] or sex["denominator"].isna().all())
    assert sex["suppressed"].all()
    # two missing ages: the missing count and the non-missing count are both hidden
    age = t.tidy.query("variable == 'age' and group == 'normal'").iloc[0]
    assert age["missing"] is pd.NA and age["n"] is pd.NA and age["suppressed"]
    assert age["median"] == pytest.approx(np.median([float(40 + i % 30) for i in range(2, 60)]))
    # hidden groups hide their statistics too
    severe_age = t.tidy.query("variable == 'age' and group == 'severe'").iloc[0]
    assert np.isnan(severe_age["median"]) and np.isnan(severe_age["mean"])
    # flag True: mild 2 and severe 1 are below 5; Overall 13 minus the shown tiers must not give
    # them back, so with Overall shown a third tier cell (normal's 10) is hidden too
    flag = t.tidy.query("variable == 'flag' and level == 'True'").set_index("group")["n"]
    tiers_hidden = flag.drop(["Overall", "empty"]).isna()
    assert tiers_hidden.all() or flag.isna()["Overall"]


def test_suppressed_smds():
    t = table_one(_small_cells(), columns=["age", "sex", "flag"], min_cell_count=5)
    s = t.smd.set_index(["variable", "group"])
    assert s.loc[("age", "severe"), "suppressed"] and np.isnan(s.loc[("age", "severe"), "smd"])
    # sex in the reference group has hidden cells: every sex SMD is hidden
    assert s.loc["sex", "suppressed"].all() and s.loc["sex", "smd"].isna().all()
    assert t.display().loc["Sex, n (%)", "SMD"] == "[h]"
    # without suppression all are shown
    u = table_one(_small_cells(), columns=["age", "sex", "flag"])
    assert not u.smd["suppressed"].any() and not u.tidy["suppressed"].any()
    assert u.tidy.query("variable == 'sex' and group == 'normal'")["n"].tolist() == [57, 3]


def test_missing_count_hidden_hides_percents():
    d = _small_cells()
    d.loc[[60, 61], "sex"] = None  # two missing sexes among mild
    d["tier"] = d["tier"].cat.set_categories(["normal", "mild", "empty"])
    d = d[d["tier"].notna()]
    t = table_one(d, columns=["sex"], min_cell_count=5)
    mild = t.tidy.query("variable == 'sex' and group == 'mild'")
    # 2 missing: hidden, and the denominator or the group size with it (28 + 2 = 30 would give it back)
    size_hidden = t.tidy.query("variable == 'n' and group == 'mild'")["n"].isna().all()
    assert mild["missing"].isna().all() and (mild["denominator"].isna().all() or size_hidden)
    assert mild["percent"].isna().all() and mild["suppressed"].all()


# --- display, HTML, JSON ----------------------------------------------------------


def test_display_shape(table):
    shown = table.display()
    assert list(shown.columns) == SHOWN_TIERS + ["Overall", "SMD"]
    assert shown.index.name == "characteristic"
    assert list(shown.index[:5]) == ["n", "Age at index (years), median [IQR]", "  missing",
                                     "ANC at index (×10⁹/L), median [IQR]", "Sex, n (%)"]
    assert "  Female" in shown.index and "  Male" in shown.index and "  70+" in shown.index
    assert shown.loc["n", "Overall"] == "500"
    assert re.fullmatch(r"\d+\.\d \[\d+\.\d–\d+\.\d\]", shown.loc["Age at index (years), median [IQR]", "Normal"])
    assert re.fullmatch(r"\d+ \(\d+\.\d\)", shown.loc["Duffy-null, n (%)", "Mild"])
    assert re.fullmatch(r"\d\.\d{3}", shown.loc["Sex, n (%)", "SMD"])
    ref = table.display(smd="reference")
    assert list(ref.columns)[-3:] == [f"SMD {g} vs Normal" for g in SHOWN_TIERS[1:]]
    assert list(table.display(smd="none").columns) == SHOWN_TIERS + ["Overall"]
    with pytest.raises(NeutrostatsError, match="smd must be"):
        table.display(smd="max")


def test_display_thousands_separator():
    d = pd.DataFrame({"tier": ["a"] * 1234 + ["b"] * 2000, "x": [1500.0] * 3234,
                      "sex": ["F"] * 1234 + ["M"] * 2000})
    shown = table_one(d, columns=["x", "sex"]).display()
    assert shown.loc["n", "Overall"] == "3,234"
    assert shown.loc["  Female", "a"] == "1,234 (100.0)"
    assert shown.loc["x, median [IQR]", "a"] == "1,500.0 [1,500.0–1,500.0]"


def test_html_escapes_levels():
    d = pd.DataFrame({"tier": ["a", "b", "a", "b"], "kind": ["<script>", "x&y", "x&y", "<script>"]})
    t = table_one(d, columns=["kind"], labels={"kind": "Kind <b>"})
    h = t._repr_html_()
    assert "<script>" not in h and "&lt;script&gt;" in h and "x&amp;y" in h and "Kind &lt;b&gt;" in h
    # The report's style; the "n" row moves into the headers ("a\nn = 2"), so header + other rows.
    assert h.startswith('<div class="ns-report"><style>') and '<table class="ns-tbl">' in h
    assert h.count("<tr>") == len(t.display()) and "a<br>n = 2" in h


def test_to_dict_is_json(table):
    out = table.to_dict()
    text = json.dumps(out, allow_nan=False)
    back = json.loads(text)
    assert back["groups"] == TIERS and back["reference"] == "normal"
    rec = next(r for r in back["tidy"] if r["variable"] == "n" and r["group"] == "Overall")
    assert rec["n"] == 500 and rec["median"] is None and rec["suppressed"] is False
    assert any(r["comparison"] == "pairwise_mean" and r["group"] is None for r in back["smd"])


def test_labels_override():
    t = table_one(_cohort(), columns=["sex", "age_at_index"], labels={"sex=F": "Women", "age_at_index": "Age"})
    assert "  Women" in t.display().index and "Age, median [IQR]" in t.display().index
    assert set(t.tidy.loc[t.tidy["variable"] == "age_at_index", "label"]) == {"Age"}


# --- errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"columns": ["age_at_indx"]}, r"table_one: column\(s\) 'age_at_indx' \(did you mean 'age_at_index'"),
        ({"by": "tierr"}, r"'tierr' .*not found.*Pass by="),
        ({"reference": "severe"}, r"reference must be one of the groups of 'tier' \['normal'.*found 'severe'"),
        ({"min_cell_count": -1}, r"min_cell_count must be a whole number >= 0.*found -1"),
        ({"min_cell_count": 2.5}, r"min_cell_count must be a whole number"),
        ({"columns": ["tier"]}, r"grouping column 'tier' is also in columns"),
        ({"categorical": ["nope"]}, r"'nope'"),
    ],
)
def test_errors(kwargs, match):
    with pytest.raises(NeutrostatsError, match=match):
        table_one(_cohort(), **kwargs)


def test_error_missing_group_and_overall_clash():
    d = _cohort()
    d.loc[3, "tier"] = np.nan
    with pytest.raises(NeutrostatsError, match=r"1 rows have no value in 'tier'.*drop those rows or fill"):
        table_one(d)
    d = pd.DataFrame({"g": ["Overall", "x"], "v": [1.0, 2.0]})
    with pytest.raises(NeutrostatsError, match="rename that group or pass overall=False"):
        table_one(d, by="g", columns=["v"])
    assert table_one(d, by="g", columns=["v"], overall=False).settings["groups"] == ["Overall", "x"]
    with pytest.raises(NeutrostatsError, match="cohort_table to be a pandas DataFrame"):
        table_one([1, 2])
