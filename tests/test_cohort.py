"""build_cohort on small hand-made tables, where every expected value follows
from the definitions in the docstring (windows of floor(4 x 365.25) = 1461
days, times in years of 365.25 days), and on the synthetic cohort, where the
generator's truth is the reference."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrostats import ImmortalTimeWarning, NeutrostatsError, build_cohort
from neutrostats.labs.classify import FLAG_DESCRIPTIONS

DAY = 1 / 365.25
X = {"x": ["C92.0"]}


def _labs(rows):
    """rows: (person, time, value in 10^9/L)."""
    return pd.DataFrame(
        [(p, pd.Timestamp(t), str(v), "10^9/L") for p, t, v in rows],
        columns=["person_id", "sampled_at", "value", "unit"],
    )


def _persons(ids, birth="1950-01-01", end="2020-12-31", **extra):
    df = pd.DataFrame({"person_id": ids, "sex": "F", "birth_date": pd.Timestamp(birth),
                       "end_of_data": pd.Timestamp(end)})
    for k, v in extra.items():
        df[k] = v
    return df


def _dx(rows):
    return pd.DataFrame([(p, pd.Timestamp(d) if d else None, c) for p, d, c in rows],
                        columns=["person_id", "diagnosed_at", "code"])


def _deaths(rows):
    return pd.DataFrame([(p, pd.Timestamp(d) if d else None) for p, d in rows], columns=["person_id", "died_at"])


NO_DX = _dx([])


def _build(labs, persons, dx=NO_DX, deaths=None, **kw):
    kw.setdefault("outcomes", X)
    kw.setdefault("code", None)
    return build_cohort(labs, persons, dx, deaths, **kw)


def _row(cohort, pid):
    t = cohort.table.set_index("person_id")
    return t.loc[pid]


# --- index strategies -------------------------------------------------------------

STRATEGY_LABS = _labs(
    [
        (1, "2010-01-01", 2.5), (1, "2011-01-01", 1.2), (1, "2012-01-01", 0.8), (1, "2013-01-01", 1.2),
        (2, "2010-05-01", 3.0), (2, "2011-05-01", 2.0),
        (3, "2010-01-01", 0.9), (3, "2011-01-01", 0.9),
    ]
)


@pytest.mark.parametrize(
    "index, expected",
    [
        ("first", {1: ("2010-01-01", "normal"), 2: ("2010-05-01", "normal"), 3: ("2010-01-01", "moderate_severe")}),
        ("first_neutropenic",
         {1: ("2011-01-01", "mild"), 2: ("2010-05-01", "normal"), 3: ("2010-01-01", "moderate_severe")}),
        ("nadir",
         {1: ("2012-01-01", "moderate_severe"), 2: ("2011-05-01", "normal"), 3: ("2010-01-01", "moderate_severe")}),
    ],
)
def test_index_strategies(index, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImmortalTimeWarning)
        c = _build(STRATEGY_LABS, _persons([1, 2, 3]), index=index)
    for pid, (date, tier) in expected.items():
        row = _row(c, pid)
        assert row["index_date"] == pd.Timestamp(date)
        assert row["tier"] == tier


def test_nadir_warns_about_immortal_time():
    with pytest.warns(ImmortalTimeWarning, match="immortal"):
        _build(STRATEGY_LABS, _persons([1, 2, 3]), index="nadir")


def test_unknown_strategy():
    with pytest.raises(NeutrostatsError, match="index must be one of"):
        _build(STRATEGY_LABS, _persons([1, 2, 3]), index="last")


def test_repeat_measurement_at_same_time_keeps_the_lowest():
    labs = _labs([(4, "2010-01-01 08:00", 1.6), (4, "2010-01-01 08:00", 1.2), (4, "2010-01-01 09:00", 2.0)])
    c = _build(labs, _persons([4]))
    assert _row(c, 4)["tier"] == "mild"
    att = c.attrition.set_index("description")
    assert att.loc["repeat ANC at the same sample time (lowest kept)", "excluded_lab_rows"] == 1
    assert _row(c, 4)["n_anc_tests"] == 2


# --- outcome windows ---------------------------------------------------------------


def _window_case():
    ids = list("ABCDEF")
    labs = _labs([(p, "2010-01-01", 2.5) for p in ids])
    persons = _persons(ids)
    persons.loc[persons["person_id"] == "F", "end_of_data"] = pd.Timestamp("2011-01-01")
    dx = _dx(
        [
            ("A", "2010-01-01", "C92.0"),  # on the index date: prevalent
            ("B", "2014-01-01", "C92.0"),  # index + 1461 days: last day of the window
            ("C", "2014-01-02", "C92.0"),  # one day after the window
            ("D", "2012-06-01", "C92.0"),  # on the day of death
            ("E", "2013-01-01", "c920"),  # after death: a data error, ignored
            ("F", "2012-01-01", "C92.0"),  # after the person's end of data
        ]
    )
    deaths = _deaths([("D", "2012-06-01"), ("E", "2012-06-01")])
    return _build(labs, persons, dx, deaths)


def test_outcome_window_edges():
    c = _window_case()
    t = c.table.set_index("person_id")
    assert (pd.Timestamp("2014-01-01") - pd.Timestamp("2010-01-01")).days == 1461
    # A: prevalent, not at risk.
    assert bool(t.loc["A", "x_prevalent"]) and pd.isna(t.loc["A", "x"]) and pd.isna(t.loc["A", "x_status"])
    # B: the last day of the window counts.
    assert t.loc["B", "x"] == True and t.loc["B", "x_status"] == 1  # noqa: E712
    assert t.loc["B", "x_time"] == pytest.approx(1461 * DAY)
    # C: one day late: censored at the window end.
    assert t.loc["C", "x"] == False and t.loc["C", "x_status"] == 0  # noqa: E712
    assert t.loc["C", "x_time"] == pytest.approx(1461 * DAY)
    # D: diagnosis on the day of death counts.
    assert t.loc["D", "x_status"] == 1
    # E: death first; the later diagnosis is ignored.
    days_to_death = (pd.Timestamp("2012-06-01") - pd.Timestamp("2010-01-01")).days
    assert t.loc["E", "x_status"] == 2 and t.loc["E", "x_time"] == pytest.approx(days_to_death * DAY)
    # F: censored at its own end of data.
    assert t.loc["F", "x_status"] == 0 and t.loc["F", "x_time"] == pytest.approx(365 * DAY)
    assert [bool(t.loc[p, "x_prevalent"]) for p in "BCDEF"] == [False] * 5


def test_death_columns_and_diagnosis_after_death_counted():
    c = _window_case()
    t = c.table.set_index("person_id")
    assert t.loc["D", "death"] and t.loc["D", "death_time"] == pytest.approx(882 * DAY)
    assert not t.loc["B", "death"] and t.loc["B", "death_time"] == pytest.approx(4017 * DAY)  # to 2020-12-31
    att = c.attrition.set_index("description")
    assert att.loc["diagnoses dated after death (data error, ignored)", "excluded_records"] == 1


def test_time_to_event_by_hand():
    # _window_case: index 2010-01-01 for A-F, end of data 2020-12-31 (4017 days; F 2011-01-01, 365 days),
    # D and E die 2012-06-01 (882 days). Outcome x: A prevalent (not at risk); B diagnosed on day 1461 (the
    # window's last day); C one day late (censored at 1461); D on the day of death (882: the outcome);
    # E dies first (882: competing); F censored at its end of data (365).
    c = _window_case()
    x = c.time_to_event("x")
    assert list(x.columns) == ["person_id", "time", "status"]
    assert x["person_id"].tolist() == list("BCDEF") and x.attrs["n_prevalent"] == 1
    assert x.index.tolist() == c.table.index[1:].tolist()  # the table's index, for joining
    np.testing.assert_allclose(x["time"], np.array([1461, 1461, 882, 882, 365]) * DAY, rtol=1e-12)
    assert x["status"].tolist() == [1, 0, 1, 2, 0] and x["status"].dtype == np.int64
    # Horizon 3 years (1095.75 days): B and C censored at 3; D, E, F unchanged.
    h3 = c.time_to_event("x", horizon=3)
    np.testing.assert_allclose(h3["time"], [3.0, 3.0, 882 * DAY, 882 * DAY, 365 * DAY], rtol=1e-12)
    assert h3["status"].tolist() == [0, 0, 1, 2, 0]
    # Horizon 2 years (730.5 days): the outcome of D and the competing death of E come later, censored.
    h2 = c.time_to_event("x", horizon=2)
    np.testing.assert_allclose(h2["time"], [2.0, 2.0, 2.0, 2.0, 365 * DAY], rtol=1e-12)
    assert h2["status"].tolist() == [0, 0, 0, 0, 0]
    # Death: everybody, 0/1; A, B, C alive to the end of data (4017 days).
    d = c.time_to_event("death")
    assert d["person_id"].tolist() == list("ABCDEF") and d.attrs["n_prevalent"] == 0
    np.testing.assert_allclose(d["time"], np.array([4017, 4017, 4017, 882, 882, 365]) * DAY, rtol=1e-12)
    assert d["status"].tolist() == [0, 0, 0, 1, 1, 0]
    # A death exactly at the horizon counts; beyond it nothing is known.
    at = c.time_to_event("death", horizon=882 * DAY)
    np.testing.assert_allclose(at["time"], np.array([882, 882, 882, 882, 882, 365]) * DAY, rtol=1e-12)
    assert at["status"].tolist() == [0, 0, 0, 1, 1, 0]
    with pytest.raises(NeutrostatsError, match=r"Cohort.time_to_event: outcome 'y' is not an outcome.*\['x'\]"):
        c.time_to_event("y")
    with pytest.raises(NeutrostatsError, match="horizon must be a positive number"):
        c.time_to_event("x", horizon=0)


def test_death_after_end_of_data_is_censored():
    labs = _labs([(1, "2010-01-01", 2.5)])
    c = _build(labs, _persons([1], end="2012-01-01"), deaths=_deaths([(1, "2013-01-01")]))
    row = _row(c, 1)
    assert not row["death"] and row["death_time"] == pytest.approx(730 * DAY)


def test_shorter_window():
    labs = _labs([(1, "2010-01-01", 2.5)])
    dx = _dx([(1, "2011-01-01", "C92.0")])
    c = _build(labs, _persons([1]), dx, followup_years=1)  # floor(365.25) = 365 days
    assert _row(c, 1)["x"] == True  # noqa: E712
    c2 = _build(labs, _persons([1]), _dx([(1, "2011-01-02", "C92.0")]), followup_years=1)
    assert _row(c2, 1)["x"] == False  # noqa: E712
    with pytest.raises(NeutrostatsError, match="followup_years"):
        _build(labs, _persons([1]), dx, followup_years=0)


def test_default_outcomes_columns_and_custom_sets():
    labs = _labs([(1, "2010-01-01", 2.5)])
    dx = _dx([(1, "2011-01-01", "B20.1")])
    c = build_cohort(labs, _persons([1]), dx, code=None)
    cols = set(c.table.columns)
    for name in ("viral_infection", "hiv", "hematologic_malignancy", "myeloid_neoplasm", "aml", "mds",
                 "solid_cancer", "autoimmune"):
        assert {name, f"{name}_prevalent", f"{name}_time", f"{name}_status"} <= cols
    assert bool(c.table["hiv"].iloc[0]) and bool(c.table["viral_infection"].iloc[0])
    custom = build_cohort(labs, _persons([1]), dx, code=None, outcomes={"retro": ["B20-B24", "Z21"]})
    assert bool(custom.table["retro"].iloc[0])
    with pytest.raises(NeutrostatsError, match="not an ICD-10 code"):
        build_cohort(labs, _persons([1]), dx, code=None, outcomes={"bad": ["HIV"]})


# --- data errors and attrition ------------------------------------------------------------


def test_data_errors_are_counted_never_fatal():
    labs = _labs(
        [
            (1, "2010-01-01", 2.5),
            (2, "2010-01-01", 2.5),  # died before index
            (9, "2010-01-01", 2.5),  # not in persons
            (9, "2011-01-01", 2.5),
            (3, "2010-01-01", "clotted"),  # nothing usable
            (4, "2021-06-01", 2.5),  # index after end of data
        ]
    )
    persons = _persons([1, 2, 3, 4, 5])  # 5 has no lab rows
    deaths = _deaths([(2, "2009-12-31"), (1, "2030-01-01"), (1, "2031-01-01"), (77, "2012-01-01"), (1, None)])
    dx = _dx([(1, "2011-01-01", "C92.0"), (77, "2011-01-01", "C92.0"), (1, None, "C92.0"), (1, "2011-01-01", "")])
    c = _build(labs, persons, dx, deaths)
    att = c.attrition.set_index("description")
    assert att.loc["lab rows read", "lab_rows"] == 6 and att.loc["lab rows read", "persons"] == 5
    assert att.loc["lab rows of persons not in the persons table (data error)", "excluded_lab_rows"] == 2
    assert att.loc["lab rows of persons not in the persons table (data error)", "excluded_persons"] == 1
    assert att.loc[FLAG_DESCRIPTIONS["non_numeric"], "excluded_persons"] == 1
    assert att.loc["death recorded before the index date (data error)", "excluded_persons"] == 1
    assert att.loc["index date after the person's end of data (data error)", "excluded_persons"] == 1
    assert att.loc["persons analysed", "persons"] == 1 == len(c.table)
    notes = {
        "persons in the persons table without lab rows (not in the flow)": 1,
        "death records of persons not in the persons table (ignored)": 1,
        "death records without a date (ignored)": 1,
        "repeat death records of a person (earliest used)": 1,
        "diagnoses of persons not in the persons table (ignored)": 1,
        "diagnoses without a date (ignored)": 1,
        "diagnoses without a code (ignored)": 1,
    }
    for description, n in notes.items():
        assert att.loc[description, "excluded_records"] == n, description
    assert _row(c, 1)["x"] == True  # noqa: E712


def test_duplicate_persons_and_missing_columns_raise():
    labs = _labs([(1, "2010-01-01", 2.5)])
    with pytest.raises(NeutrostatsError, match="one row per person"):
        _build(labs, _persons([1, 1]))
    with pytest.raises(NeutrostatsError, match="'birth_date'"):
        _build(labs, _persons([1]).drop(columns="birth_date"))
    with pytest.raises(NeutrostatsError, match="'diagnosed_at'"):
        _build(labs, _persons([1]), NO_DX.rename(columns={"diagnosed_at": "date"}))


def test_end_of_data_as_one_date_and_missing():
    labs = _labs([(1, "2010-01-01", 2.5), (2, "2010-01-01", 2.5)])
    persons = _persons([1, 2]).drop(columns="end_of_data")
    c = _build(labs, persons, end_of_data="2012-01-01")
    assert (c.table["end_of_data"] == pd.Timestamp("2012-01-01")).all()
    with pytest.raises(NeutrostatsError, match="end_of_data"):
        _build(labs, persons, end_of_data="not a date")
    p2 = _persons([1, 2])
    p2.loc[1, "end_of_data"] = pd.NaT
    c2 = _build(labs, p2)
    assert c2.attrition.set_index("description").loc[
        "end of data missing (data error)", "excluded_persons"] == 1


# --- eligibility --------------------------------------------------------------------------


def test_age_range_and_index_window():
    labs = _labs([(1, "2010-01-01", 1.2), (1, "2019-01-01", 2.5), (2, "2010-01-01", 2.5),
                  (3, "2010-06-01", 2.5), (3, "2011-06-01", 1.2)])
    persons = pd.concat([_persons([1], birth="2000-01-01"), _persons([2], birth="1910-01-01"),
                         _persons([3])], ignore_index=True)
    c = _build(labs, persons, age_range=(18, 90))
    assert _row(c, 1)["index_date"] == pd.Timestamp("2019-01-01")  # first at an eligible age
    assert 2 not in set(c.table["person_id"])
    assert c.attrition.set_index("description").loc[
        "no usable ANC at an eligible age (or birth date unknown)", "excluded_persons"] == 1
    w = _build(labs, persons, index_window=("2011-01-01", None))
    assert set(w.table["person_id"]) == {1, 3}
    assert _row(w, 3)["index_date"] == pd.Timestamp("2011-06-01")
    assert _row(w, 3)["tier"] == "mild"
    # The summary still covers the whole record, before the index too.
    assert _row(w, 3)["n_anc_tests"] == 2
    with pytest.raises(NeutrostatsError, match="age_range"):
        _build(labs, persons, age_range=(90, 18))
    with pytest.raises(NeutrostatsError, match="starts after it ends"):
        _build(labs, persons, index_window=("2012-01-01", "2011-01-01"))


def test_duffy_null_from_persons():
    labs = _labs([(1, "2010-01-01", 1.3), (2, "2010-01-01", 1.3)])
    persons = _persons([1, 2], duffy_null=[True, False])
    c = _build(labs, persons, scheme="clinical", duffy_null="duffy_null")
    assert c.table["tier"].astype(str).tolist() == ["normal", "mild"]
    assert c.table["normal_limit_per_ul"].tolist() == [1200.0, 1500.0]
    assert c.table["duffy_null"].tolist() == [True, False]


# --- lab summary --------------------------------------------------------------------------


def test_episodes_chronicity_and_decline():
    labs = _labs(
        [
            ("K", "2010-01-01", 1.2), ("K", "2010-02-01", 1.0), ("K", "2010-04-01", 1.1),  # 3 calendar months
            ("K", "2010-05-01", 2.5), ("K", "2010-06-01", 0.9),
            ("L", "2010-01-01", 1.2), ("L", "2010-03-31", 1.2),  # one day short of 3 months
            ("M", "2010-01-01", 2.5),
        ]
    )
    c = _build(labs, _persons(["K", "L", "M"]))
    t = c.table.set_index("person_id")
    assert t.loc["K", "n_anc_tests"] == 5
    assert t.loc["K", "n_neutropenic_episodes"] == 2
    assert t.loc["K", "longest_episode_days"] == 90
    assert t.loc["K", "chronic"]
    assert t.loc["K", "nadir_anc_per_ul"] == 900.0 and t.loc["K", "nadir_date"] == pd.Timestamp("2010-06-01")
    assert t.loc["K", "worst_tier"] == "moderate_severe"
    # Steepest fall: 2500 -> 900 over 31 days.
    assert t.loc["K", "steepest_decline_per_day"] == pytest.approx(1600 / 31)
    assert t.loc["L", "n_neutropenic_episodes"] == 1 and t.loc["L", "longest_episode_days"] == 89
    assert not t.loc["L", "chronic"]
    assert t.loc["M", "n_neutropenic_episodes"] == 0 and pd.isna(t.loc["M", "longest_episode_days"])
    assert np.isnan(t.loc["M", "steepest_decline_per_day"])
    c6 = _build(labs, _persons(["K", "L", "M"]), chronic_months=6)
    assert not c6.table.set_index("person_id").loc["K", "chronic"]


def test_long_format_derived_index():
    labs = pd.DataFrame(
        {
            "person_id": [1, 1, 1],
            "sampled_at": pd.Timestamp("2010-01-01"),
            "code": ["6690-2", "770-8", "764-1"],
            "value": ["4.0", "20", "5"],
            "unit": ["10^9/L", "%", "%"],
        }
    )
    c = build_cohort(labs, _persons([1]), NO_DX, outcomes=X)
    row = _row(c, 1)
    assert row["index_anc_per_ul"] == 1000.0 and row["index_anc_source"] == "derived" and row["tier"] == "mild"


def test_result_settings_and_repr():
    c = _build(STRATEGY_LABS, _persons([1, 2, 3]))
    import json

    json.dumps(c.settings)
    assert c.settings["window_days"] == 1461 and c.settings["index"] == "first"
    assert "Cohort(3 persons" in repr(c)
    assert len(c.measurements) == 8
    html = c._repr_html_()
    assert "3 persons" in html and html.count("<table") == 2 and "persons analysed" in html


# --- invariants ---------------------------------------------------------------------------


values = st.one_of(st.sampled_from(["0.4", "0.9", "1.2", "1.6", "2.5", "clotted", "", "<1.5", "-1", "500"]))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 3000), values), min_size=1, max_size=40),
    known=st.sets(st.integers(0, 8), min_size=1, max_size=9),
    deaths=st.lists(st.tuples(st.integers(0, 10), st.integers(-500, 4000)), max_size=6),
    index=st.sampled_from(["first", "first_neutropenic"]),
)
def test_attrition_adds_up(rows, known, deaths, index):
    base = pd.Timestamp("2008-01-01")
    labs = pd.DataFrame(
        [(p, base + pd.Timedelta(days=d), v, "10^9/L") for p, d, v in rows],
        columns=["person_id", "sampled_at", "value", "unit"],
    )
    persons = _persons(sorted(known), end="2015-01-01")
    d = _deaths([(p, base + pd.Timedelta(days=x)) for p, x in deaths])
    c = _build(labs, persons, NO_DX, d, index=index)
    a = c.attrition
    assert a["lab_rows"].iloc[0] == len(labs)
    assert a["persons"].iloc[0] == labs["person_id"].nunique()
    flow = a.iloc[: a.index[a["description"] == "persons analysed"][0] + 1]
    assert (flow["persons"].diff().iloc[1:] == -flow["excluded_persons"].iloc[1:]).all()
    assert (flow["lab_rows"].diff().iloc[1:] == -flow["excluded_lab_rows"].iloc[1:]).all()
    assert flow["persons"].iloc[-1] == len(c.table)
    assert flow["lab_rows"].iloc[-1] == len(c.measurements)
    assert (a["excluded_persons"] >= 0).all() and (a["excluded_lab_rows"] >= 0).all()
    # Every analysed person is followed for a non-negative time.
    assert (c.table["death_time"] >= 0).all()
    assert (c.table["x_time"].dropna() >= 0).all()


def test_row_order_does_not_change_the_cohort():
    labs = STRATEGY_LABS.sample(frac=1.0, random_state=3)
    a = _build(STRATEGY_LABS, _persons([1, 2, 3]))
    b = _build(labs, _persons([1, 2, 3]))
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.attrition, b.attrition)


# --- against the generator's truth ----------------------------------------------------------


def test_synthetic_sample_matches_the_generator_truth():
    from neutrostats.synthetic import OUTCOME_CODE_RANGES, load_sample

    s = load_sample()
    names = ["viral_infection", "hematologic_malignancy", "mds", "solid_cancer", "autoimmune"]
    c = build_cohort(s.labs, s.persons, s.diagnoses, s.deaths,
                     outcomes={o: OUTCOME_CODE_RANGES[o] for o in names})
    truth = s.index.set_index("person_id")
    truth = truth[truth["index_date"].notna()]  # persons with no valid ANC have no index
    t = c.table.set_index("person_id")
    assert len(t) == s.truth["realised"]["n_with_index"]
    assert t.index.equals(truth.index)
    assert (t["tier"].astype(str) == truth["index_tier"].astype(str)).all()
    assert (t["index_date"] == truth["index_date"].dt.normalize()).all()
    for o in names:
        assert int(t[f"{o}_prevalent"].sum()) == s.truth["outcomes"][o]["n_prevalent"], o
        events = t.groupby("tier", observed=False)[o].sum().astype(int).to_dict()
        assert events == s.truth["outcomes"][o]["n_events"], o
