"""The report's headline (summary first): the cohort sentence and the two headline tables."""

from __future__ import annotations

import dataclasses
import re
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from neutrostats import NeutrostatsError
from neutrostats.core.display import DisplayTable
from neutrostats.report import ReportSettings, analyse
from neutrostats.report.analysis import Report
from neutrostats.report.summary import MAIN_OUTCOMES, cohort_sentence, headline_tables
from neutrostats.synthetic import load_sample

N_PERSONS = 3000  # small enough that some cells fall below 5, large enough for every tier


def _frames(n: int = N_PERSONS):
    s = load_sample()
    keep = set(s.persons["person_id"].iloc[:n])
    return [d[d["person_id"].isin(keep)] for d in (s.labs, s.persons, s.diagnoses, s.deaths)]


@pytest.fixture(scope="module")
def frames():
    return _frames()


def _analyse(frames, settings):
    with warnings.catch_warnings():
        # The figures are not what these tests read (matplotlib's layout notice is the figure module's business).
        warnings.filterwarnings("ignore", message="The figure layout has changed", category=UserWarning)
        return analyse(*frames, settings, progress=False)


@pytest.fixture(scope="module")
def plain(frames):
    return _analyse(frames, ReportSettings())


@pytest.fixture(scope="module")
def k5(frames):
    return _analyse(frames, ReportSettings(min_cell_count=5))


@pytest.fixture(scope="module")
def custom(frames):
    """Two-year follow-up, an age range and an outcome set without any of the main outcomes."""
    outcomes = {"solid_cancer": ["C00-C80"], "aml": ["C92.0"], "mds": ["D46"], "autoimmune": ["M05-M06"]}
    settings = ReportSettings(followup_years=2, age_range=(30, 80), outcomes=outcomes, competing_outcome="aml")
    return _analyse(frames, settings)


# Formatting rules, written out: counts with thousands separators, ORs 2 decimals, percentages 1 decimal,
# intervals "(lo–hi)" with an en dash.
def _count(v) -> str:
    return f"{int(v):,}"


def _or(est, lo, hi) -> str:
    return f"{est:.2f} ({lo:.2f}–{hi:.2f})"


def _pct(est, lo, hi) -> str:
    return f"{100 * est:.1f} ({100 * lo:.1f}–{100 * hi:.1f})"


def _by_header(table: DisplayTable) -> dict[str, list[str]]:
    return {c: table.frame[c].tolist() for c in table.frame.columns}


def _block(table: DisplayTable, outcome_label: str) -> dict[str, list[str]]:
    """The tier rows under an outcome's header row (indent 0) of the headline OR table, by column."""
    first = table.frame.columns[0]
    heads = [i for i, level in enumerate(table.indent) if level == 0]
    start = heads[[table.frame[first].iloc[i] for i in heads].index(outcome_label)] + 1
    stop = next((i for i in heads if i >= start), len(table.frame))
    return _by_header(DisplayTable("block", "", table.frame.iloc[start:stop]))


def _outcomes(table: DisplayTable) -> list[str]:
    return [table.frame.iloc[i, 0] for i, level in enumerate(table.indent) if level == 0]


# ---------------------------------------------------------------------------
# The odds-ratio table


def test_or_table_cells_equal_the_tidy_table(plain):
    table, _ = headline_tables(plain)
    lab = plain.settings.display_labels
    tiers = plain.tables["tier_prevalence"]["group"].astype(str).tolist()
    assert table.name == "headline_odds_ratios" and table.title == "Main results by ANC tier at index"
    # One block of rows per outcome (a header row, then the tiers), five columns: it fits a page.
    assert list(table.frame.columns) == ["Outcome and ANC tier at index", "n at risk", "Events, n",
                                         "Crude OR (95% CI)", "Adjusted OR (95% CI)"]
    assert _outcomes(table) == [lab(o) for o in MAIN_OUTCOMES]
    ors = plain.tables["odds_ratios"].assign(group=lambda d: d["group"].astype(str))
    checked = 0
    for o in MAIN_OUTCOMES:
        cols = _block(table, lab(o))
        assert cols["Outcome and ANC tier at index"] == [lab(t) for t in tiers]
        assert cols["Outcome and ANC tier at index"][0] == "Normal (≥1.8 ×10⁹/L)"  # reference first, with its range
        for model in ("crude", "adjusted"):
            got = cols[f"{model.capitalize()} OR (95% CI)"]
            for tier, cell in zip(tiers, got):
                row = ors[(ors["outcome"] == o) & (ors["model"] == model) & (ors["group"] == tier)].iloc[0]
                if row["is_reference"]:
                    expected = "1 (reference)"
                elif not row["estimable"]:
                    expected = "not estimable"
                else:
                    expected = _or(row["estimate"], row["conf_low"], row["conf_high"])
                    expected += "†" if row["method"] == "firth" else ""
                    checked += 1
                assert cell == expected, (o, model, tier)
        crude = ors[(ors["outcome"] == o) & (ors["model"] == "crude")].set_index("group").loc[tiers]
        assert cols["Events, n"] == [_count(v) for v in crude["n_event"]]
        assert cols["n at risk"] == [_count(v) for v in crude["n"]]
    assert checked >= 8
    assert table.align == ("l",) + ("r",) * (table.frame.shape[1] - 1)
    assert any("mid-p" in n for n in table.notes) and any("age at index (years) and sex" in n for n in table.notes)


def test_not_estimable_rows_read_so_with_a_footnote(plain):
    table, _ = headline_tables(plain)
    ors = plain.tables["odds_ratios"]
    unsupported = ors[(ors["outcome"] == "hiv") & (ors["estimable"] == False)]  # noqa: E712
    assert len(unsupported), "the extract was chosen to have an HIV tier without events"
    cols = _block(table, "HIV")
    tiers = plain.tables["tier_prevalence"]["group"].astype(str).tolist()
    for _, row in unsupported.iterrows():
        cell = cols[f"{row['model'].capitalize()} OR (95% CI)"][tiers.index(str(row["group"]))]
        assert cell == "not estimable"
        # Firth's finite estimate of a tier without events is not shown as an ordinary number.
        assert f"{row['estimate']:.2f}" not in cell
    assert any(n.startswith("Not estimable") and "no events in this tier" in n for n in table.notes)


def test_firth_estimates_carry_the_mark_and_note():
    """A hand-made report: one Firth row with support, one without."""
    ors = pd.DataFrame({
        "outcome": "hiv", "model": ["crude"] * 3 + ["adjusted"] * 3,
        "group": ["normal", "mild", "severe"] * 2, "n": [1000, 50, 20] * 2, "n_event": [12, 3, 0] * 2,
        "estimate": [1.0, 5.2, 0.0, 1.0, 4.456, 3.0], "conf_low": [np.nan, 1.1, 0.0, np.nan, 1.234, 0.1],
        "conf_high": [np.nan, 15.0, 30.0, np.nan, 12.0, 40.0], "method": ["midp"] * 3 + ["firth"] * 3,
        "estimable": [True, True, False, True, True, False], "note": [None, None, "no events in this tier"] * 2,
        "is_reference": [True, False, False] * 2})
    sizes = pd.DataFrame({"group": ["normal", "mild", "severe"], "n": [1200, 60, 25]})
    empty = pd.DataFrame(columns=["group", "time"])
    r = Report(ReportSettings(scheme="clinical"), {"tier_prevalence": sizes, "odds_ratios": ors, "mortality": empty,
               "cumulative_incidence": empty}, {}, pd.DataFrame(), pd.DataFrame())
    table, risks = headline_tables(r)
    cols = _block(table, "HIV")
    assert cols["Adjusted OR (95% CI)"] == ["1 (reference)", "4.46 (1.23–12.00)†", "not estimable"]
    assert cols["Crude OR (95% CI)"][1] == "5.20 (1.10–15.00)"
    assert cols["n at risk"] == ["1,000", "50", "20"]
    assert any(n.startswith("† Firth") for n in table.notes)
    assert risks.frame["Deaths"].tolist() == ["–"] * 3


# ---------------------------------------------------------------------------
# Mortality and absolute risk


def test_risk_table_equals_mortality_and_cumulative_incidence(plain):
    _, table = headline_tables(plain)
    assert table.name == "headline_risks"
    assert table.title == "4-year mortality and absolute risk of haematological malignancy"
    cols = _by_header(table)
    mort = plain.tables["mortality"].assign(group=lambda d: d["group"].astype(str))
    mort = mort[mort["time"] == 4.0].set_index("group")
    cif = plain.tables["cumulative_incidence"].assign(group=lambda d: d["group"].astype(str))
    cif = cif[(cif["time"] == 4.0) & (cif["outcome"] == "hematologic_malignancy")].set_index("group")
    tiers = plain.tables["tier_prevalence"]["group"].astype(str).tolist()
    assert cols["Deaths"] == [_count(mort.loc[t, "n_event"]) for t in tiers]
    assert cols["Mortality at 4 years, % (95% CI)"] == [
        _pct(mort.loc[t, "mortality"], mort.loc[t, "mortality_conf_low"], mort.loc[t, "mortality_conf_high"])
        for t in tiers]
    assert cols["Haematological malignancy at 4 years, % (95% CI)"] == [
        _pct(cif.loc[t, "estimate"], cif.loc[t, "conf_low"], cif.loc[t, "conf_high"]) for t in tiers]
    notes = " ".join(table.notes)
    assert "Kaplan–Meier" in notes and "Aalen–Johansen" in notes and "competing" in notes
    assert "before index are excluded" in notes


def test_custom_outcomes_and_horizon(custom):
    table, risks = headline_tables(custom)
    lab = custom.settings.display_labels
    # None of the main outcomes: the first three of the report's outcomes, in its order.
    assert _outcomes(table) == [lab(o) for o in ("solid_cancer", "aml", "mds")]
    assert risks.title == "2-year mortality and absolute risk of acute myeloid leukaemia"
    mort = custom.tables["mortality"].assign(group=lambda d: d["group"].astype(str))
    mort = mort[mort["time"] == 2.0].set_index("group")
    tiers = custom.tables["tier_prevalence"]["group"].astype(str).tolist()
    assert risks.frame["Mortality at 2 years, % (95% CI)"].tolist() == [
        _pct(mort.loc[t, "mortality"], mort.loc[t, "mortality_conf_low"], mort.loc[t, "mortality_conf_high"])
        for t in tiers]
    assert "Acute myeloid leukaemia at 2 years, % (95% CI)" in risks.frame.columns
    assert any("in the 2 years after index" in n for n in table.notes)
    chosen, _ = headline_tables(custom, outcomes=["mds"])
    assert _outcomes(chosen) == [lab("mds")]
    with pytest.raises(NeutrostatsError, match="outcomes=") as err:
        headline_tables(custom, outcomes=["hiv"])
    assert "hiv" in str(err.value) and "solid_cancer" in str(err.value)
    # The sentence: horizon and the age-range exclusions from the flow.
    text = cohort_sentence(custom)
    flow = custom.tables["attrition"]
    aged = flow.loc[flow["description"].str.startswith("no usable ANC at an eligible age"), "excluded_persons"]
    assert f"{_count(aged.iloc[0])} outside the age range 30–80 years" in text
    assert "2-year follow-up from the first ANC." in text


def test_labels_override(plain):
    settings = dataclasses.replace(plain.settings, labels={"hiv": "HIV infection", "normal": "Normal ANC",
                                                           "tier": "Tier"})
    table, risks = headline_tables(dataclasses.replace(plain, settings=settings))
    assert "HIV infection" in _outcomes(table)
    assert _block(table, "HIV infection")["Outcome and ANC tier at index"][0] == "Normal ANC"
    assert risks.frame["Tier"].iloc[0] == "Normal ANC"
    assert any("reference tier (Normal ANC)" in n for n in table.notes)


# ---------------------------------------------------------------------------
# The cohort sentence


def test_cohort_sentence_follows_the_flow(plain):
    flow = plain.tables["attrition"]
    desc = flow["description"].tolist()
    last = desc.index("persons analysed")
    # The rule: persons of the person table = persons left after the unknown-person step + those without lab
    # rows; excluded = every person leaving before "persons analysed", here all at lab steps.
    unknown = next(i for i, d in enumerate(desc) if "not in the persons table" in d)
    no_labs = flow.loc[flow["description"].str.startswith("persons in the persons table without lab rows"),
                       "excluded_records"].sum()
    people = flow["persons"].iloc[unknown] + no_labs
    analysed = flow["persons"].iloc[last]
    lab_steps = flow.iloc[:last]
    assert (lab_steps.loc[lab_steps["table"] != "labs", "excluded_persons"] == 0).all()
    without_anc = lab_steps.loc[lab_steps["table"] == "labs", "excluded_persons"].sum()
    parts = [f"{_count(no_labs)} without a lab result"] if no_labs else []
    parts += [f"{_count(without_anc)} without a usable ANC"]
    # One reason: "n excluded, all <reason>"; several: "n excluded: a <reason>, b <reason>".
    flow_text = (f"excluded, all {parts[0].split(' ', 1)[1]}" if len(parts) == 1 else f"excluded: {', '.join(parts)}")
    expected = (f"{_count(analysed)} persons analysed ({_count(people)} in the person table; "
                f"{_count(people - analysed)} {flow_text}); 4-year follow-up from the first ANC.")
    assert cohort_sentence(plain) == expected


def _flow_report(excluded, persons, marks=None, **settings):
    """A report holding only a flow table: lab steps, then a data-error step, then "persons analysed"."""
    n = len(excluded)
    desc = ["lab rows read", "lab rows of persons not in the persons table (data error)",
            *[f"no usable ANC: reason {i}" for i in range(n - 4)],
            "index date after the person's end of data (data error)", "persons analysed"]
    flow = pd.DataFrame({"description": desc, "table": ["labs"] * (n - 2) + ["persons"] * 2,
                         "excluded_persons": pd.array(excluded, dtype="Int64"),
                         "persons": pd.array(persons, dtype="Int64")})
    return Report(ReportSettings(**settings), {"attrition": flow}, {}, pd.DataFrame(), pd.DataFrame(),
                  marks={"attrition": marks or {}})


def test_cohort_sentence_shows_marks_not_hidden_counts():
    # Truth: 1000 read; 3 and 9 leave at lab steps, 20 at the data-error step; 968 analysed.
    # Published (k = 5): the two lab counts and the persons between them are hidden.
    r = _flow_report([0, 0, None, None, 20, 0], [1000, 1000, None, 988, 968, 968],
                     marks={(2, "excluded_persons"): "<5", (3, "excluded_persons"): "[c]", (2, "persons"): "[c]"},
                     min_cell_count=5)
    text = cohort_sentence(r)
    # The lab group is the only one with hidden parts: the shown counts give it (1000 - 988), 12 persons.
    assert text.startswith("968 persons analysed (1,000 in the person table; 32 excluded: 12 without a usable "
                           "ANC, 20 with a data error); 4-year follow-up from the first ANC.")
    assert " 3 " not in text and " 9 " not in text
    # Two groups with hidden parts: neither is printed; the total is, as both its ends are shown.
    r = _flow_report([0, 0, None, 7, None, 0], [1000, 1000, None, 990, 980, 980],
                     marks={(2, "excluded_persons"): "<5", (4, "excluded_persons"): "[c]", (2, "persons"): "[c]"},
                     min_cell_count=5)
    text = cohort_sentence(r)
    assert "(1,000 in the person table; 20 excluded: [h] without a usable ANC, [c] with a data error)" in text
    assert "[h]: a number computed from a hidden count" in text and "[c]: a count hidden" in text
    # A count below k computed from shown counts reads "<k": no count from 1 to k - 1 is printed.
    r = _flow_report([0, 0, None, None, 0, 0], [1000, 1000, None, 997, 997, 997],
                     marks={(2, "excluded_persons"): "<5", (3, "excluded_persons"): "<5", (2, "persons"): "[c]"},
                     min_cell_count=5)
    text = cohort_sentence(r)
    assert "(1,000 in the person table; <5 excluded, all without a usable ANC)" in text
    assert "3" not in text.replace("997", "")
    # Persons analysed hidden: neither the total nor the group with a hidden part can be printed.
    r = _flow_report([0, 0, 6, None, 0, 0], [20, 20, 14, None, None, None],
                     marks={(3, "excluded_persons"): "<5", (3, "persons"): "[c]", (4, "persons"): "[c]",
                            (5, "persons"): "[c]"}, min_cell_count=5)
    assert cohort_sentence(r).startswith("[c] persons analysed (20 in the person table; [h] excluded, all "
                                         "without a usable ANC)")


def test_cohort_sentence_needs_the_flow():
    flow = pd.DataFrame({"description": ["lab rows read"], "table": ["labs"], "excluded_persons": [0],
                         "persons": [10]})
    r = Report(ReportSettings(), {"attrition": flow}, {}, pd.DataFrame(), pd.DataFrame())
    with pytest.raises(NeutrostatsError, match="persons analysed"):
        cohort_sentence(r)


# ---------------------------------------------------------------------------
# Disclosure control


_NUMBER = re.compile(r"(?<![\w.,<])\d[\d,]*(?:\.\d+)?(?![\w.,-])")


def test_hidden_counts_keep_their_marks(k5, plain):
    """Same persons with and without control: each hidden count shows its mark, never the exact value."""
    assert k5.marks["odds_ratios"], "the extract was chosen to have small cells"
    table, risks = headline_tables(k5)
    tiers = k5.tables["tier_prevalence"]["group"].astype(str).tolist()
    lab = k5.settings.display_labels
    ors, exact = k5.tables["odds_ratios"], plain.tables["odds_ratios"]
    marks = k5.marks["odds_ratios"]
    shown_marks = 0
    for o in MAIN_OUTCOMES:
        block = _block(table, lab(o))
        events = block["Events, n"]
        for j, tier in enumerate(tiers):
            pos = int(np.flatnonzero((ors["outcome"] == o).to_numpy() & (ors["model"] == "crude").to_numpy()
                                     & (ors["group"].astype(str) == tier).to_numpy())[0])
            if pd.isna(ors["n_event"].iloc[pos]):
                assert events[j] == marks[(pos, "n_event")]
                assert events[j] != _count(exact["n_event"].iloc[pos])
                shown_marks += 1
            for model in ("crude", "adjusted"):
                row = ors[(ors["outcome"] == o) & (ors["model"] == model) & (ors["group"].astype(str) == tier)]
                cell = block[f"{model.capitalize()} OR (95% CI)"][j]
                if pd.isna(row["estimate"].iloc[0]):
                    assert cell == "[h]"
    assert shown_marks
    mort = k5.tables["mortality"]
    for j, tier in enumerate(tiers):
        pos = int(np.flatnonzero((mort["group"].astype(str) == tier).to_numpy() & (mort["time"] == 4.0).to_numpy())[0])
        if pd.isna(mort["n_event"].iloc[pos]):
            assert risks.frame["Deaths"].iloc[j] == k5.marks["mortality"][(pos, "n_event")]
        if pd.isna(mort["mortality"].iloc[pos]):
            assert risks.frame["Mortality at 4 years, % (95% CI)"].iloc[j] == "[h]"
    assert any(n.startswith("<5: a count from 1 to 4") for n in table.notes)


def test_no_count_below_k_in_the_headline(k5, plain):
    k = 5
    table, risks = headline_tables(k5)
    for t in (table, risks):
        for col in t.frame.columns:
            if col in ("n", "n at risk", "Deaths", "Events, n"):
                for cell in t.frame[col]:
                    if cell == "" or cell.startswith("<") or cell.startswith("["):
                        continue
                    v = int(cell.replace(",", ""))
                    assert v == 0 or v >= k, (t.name, col, cell)
    sentence = cohort_sentence(k5).split(". ")[0]
    numbers = [float(x.replace(",", "")) for x in _NUMBER.findall(sentence)]
    assert numbers and all(v == 0 or v >= k for v in numbers), sentence
    # Every hidden count of the flow (its exact value from the same persons without control) is absent.
    exact = plain.tables["attrition"]
    hidden = {float(exact[col].iloc[pos]) for pos, col in k5.marks["attrition"]}
    assert hidden and not hidden & set(numbers), sentence


def test_headline_tables_are_display_tables(plain):
    interval = re.compile(r"^\d[\d,]*\.\d \(\d[\d,]*\.\d–\d[\d,]*\.\d\)$"          # 12.5 (3.3–41.4)
                          r"|^\d[\d,]*\.\d\d \(\d[\d,]*\.\d\d–(\d[\d,]*\.\d\d|∞)\)†?$")  # 2.63 (1.85–3.65)
    words = {"1 (reference)", "not estimable", "–", "[h]"}
    for t in headline_tables(plain):
        assert isinstance(t, DisplayTable)
        body = t.frame[[level > 0 for level in t.indent]] if any(t.indent) else t.frame  # not the header rows
        for col in t.frame.columns[1:]:
            for cell in body[col]:
                assert isinstance(cell, str)
                if "(" in cell or col.endswith("(95% CI)"):
                    assert cell in words or interval.match(cell), (t.name, col, cell)
                else:
                    assert re.fullmatch(r"\d{1,3}(,\d{3})*", cell), (t.name, col, cell)
