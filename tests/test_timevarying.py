"""Start-stop rows with a time-updated tier against R's ``survival::tmerge`` (survival 3.5.3).

Reference rows come from ``tests/reference/timevarying_reference.R`` (R 4.2.2,
survival 3.5.3), committed as ``tests/reference/timevarying_reference.json``:

* ``synthetic``: R derives the index day (``first_neutropenic``), follow-up and
  cut days from the raw CSVs ``tests/reference/data/timevarying_*.csv`` (written
  once by ``tests/reference/timevarying_inputs.py``; edge cases ids 901-908)
  and splits with ``tmerge(event(end, status))`` + ``tmerge(tdc(cut, value))``;
  here the same raw tables go through :func:`build_cohort` and
  :func:`time_varying_tiers`;
* ``pbc``: ``survival::pbc`` (ids 1-312; death the event, transplant the
  competing one) with albumin from ``pbcseq`` in three tiers, through
  :func:`counting_process`.

Rows are compared one by one: person, start, stop (1e-12), tier, value, status.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neutrostats import NeutrostatsError, build_cohort
from neutrostats.cohort.timevarying import counting_process, time_varying_tiers

REF_DIR = Path(__file__).resolve().parent / "reference"
DATA = REF_DIR / "data"
REF = json.loads((REF_DIR / "timevarying_reference.json").read_text(encoding="utf-8"))
TOL = 1e-12


@lru_cache(maxsize=1)
def _cohort():
    labs = pd.read_csv(DATA / "timevarying_labs.csv")
    persons = pd.read_csv(DATA / "timevarying_persons.csv")
    deaths = pd.read_csv(DATA / "timevarying_deaths.csv")
    dx = pd.read_csv(DATA / "timevarying_diagnoses.csv")
    return build_cohort(labs, persons, dx, deaths, code=None, index="first_neutropenic",
                        outcomes={"aml": ["C92.0"]}, engine="numpy")


def _r_rows(case: dict) -> pd.DataFrame:
    return pd.DataFrame(case["rows"])


def _compare(ours: pd.DataFrame, ref: pd.DataFrame, *, person: str, value: str, days: bool) -> None:
    assert len(ours) == len(ref)
    np.testing.assert_array_equal(ours[person].to_numpy(), ref["id"].to_numpy())
    if days:
        np.testing.assert_allclose(ours["start"], ref["start_day"], rtol=TOL, atol=TOL)
        np.testing.assert_allclose(ours["stop"], ref["stop_day"], rtol=TOL, atol=TOL)
    else:
        np.testing.assert_allclose(ours["start"], ref["start"], rtol=TOL, atol=TOL)
        np.testing.assert_allclose(ours["stop"], ref["stop"], rtol=TOL, atol=TOL)
        # and the days are exact
        np.testing.assert_allclose(ours["start"] * 365.25, ref["start_day"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ours["tier"].astype(str).to_numpy(), ref["tier"].to_numpy())
    np.testing.assert_allclose(ours[value].to_numpy(dtype=float), ref["value"].to_numpy(dtype=float),
                               rtol=TOL, atol=0, equal_nan=True)
    np.testing.assert_array_equal(ours["status"].to_numpy(), ref["status"].to_numpy())


@pytest.mark.parametrize("case_id", list(REF["synthetic"]))
def test_cohort_rows_match_tmerge(case_id):
    case = REF["synthetic"][case_id]
    opt = case["options"]
    tv = time_varying_tiers(_cohort(), "death" if opt["outcome"] == "death" else "aml",
                            horizon=opt.get("horizon"), lag_days=opt["lag"],
                            max_carry_days=opt.get("max_carry"), expired=opt.get("expired", "unknown"))
    _compare(tv, _r_rows(case), person="person_id", value="anc_per_ul", days=False)
    assert tv.attrs["n_persons"] == case["n_persons"]
    assert tv.attrs["n_prevalent"] == case["n_prevalent"]
    zero = np.atleast_1d(case["persons_without_follow_up_time"])
    assert tv.attrs["rules"]["persons_without_follow_up_time"] == zero.size
    assert not tv["person_id"].isin(zero).any()
    np.testing.assert_array_equal(tv["event"].to_numpy(), (tv["status"] == 1).to_numpy().astype(np.int64))


def _albumin_tier(v: np.ndarray) -> np.ndarray:
    names = np.array(["low", "borderline", "normal", "unknown"])
    codes = np.searchsorted([2.8, 3.5], v, side="right")  # right-open intervals: 2.8 is borderline
    return names[np.where(np.isnan(v), 3, codes)]


@pytest.mark.parametrize("case_id", list(REF["pbc"]))
def test_pbc_rows_match_tmerge(case_id):
    case = REF["pbc"][case_id]
    opt = case["options"]
    pbc = pd.read_csv(DATA / "pbc.csv")
    pbc = pbc[pbc["id"] <= 312]
    fu = pd.DataFrame({"id": pbc["id"], "end": pbc["time"],
                       "status": np.array([0, 2, 1])[pbc["status"].to_numpy()]})
    seq = pd.read_csv(DATA / "timevarying_pbcseq.csv")
    out = counting_process(fu, seq, person="id", day="day", value="albumin", lag_days=opt["lag"],
                           max_carry_days=opt.get("max_carry"), expired=opt.get("expired", "unknown"))
    out["tier"] = _albumin_tier(out["albumin"].to_numpy())
    _compare(out, _r_rows(case), person="id", value="albumin", days=True)


def test_tier_dtype_sample_times_and_columns():
    c = _cohort()
    tv = time_varying_tiers(c, max_carry_days=180, columns=("age_at_index", "sex"))
    assert list(tv.columns) == ["person_id", "start", "stop", "tier", "anc_per_ul", "sampled_at", "status",
                                "event", "age_at_index", "sex"]
    assert tv["tier"].cat.ordered
    assert list(tv["tier"].cat.categories) == [*c.table["tier"].cat.categories, "unknown"]
    assert time_varying_tiers(c)["tier"].dtype == c.table["tier"].dtype
    # Person 901: index sample 08:00 (1200, the first below 1800), the day's lowest 800 at 15:00.
    first = tv[tv["person_id"] == 901].iloc[0]
    assert first["sampled_at"] == pd.Timestamp("2011-03-01 15:00:00")
    assert str(c.table.loc[c.table["person_id"] == 901, "tier"].iloc[0]) == "mild"
    assert first["tier"] == "moderate_severe"
    unknown = tv["tier"] == "unknown"
    assert tv.loc[unknown, "sampled_at"].isna().all() and tv.loc[unknown, "anc_per_ul"].isna().all()
    merged = tv.merge(c.table[["person_id", "age_at_index", "sex"]], on="person_id", suffixes=("", "_t"))
    assert (merged["sex"] == merged["sex_t"]).all()
    np.testing.assert_array_equal(merged["age_at_index"], merged["age_at_index_t"])


def test_last_stop_is_time_to_event_and_counts_add_up():
    c = _cohort()
    for outcome, horizon in (("death", None), ("aml", 2.0)):
        tv = time_varying_tiers(c, outcome, horizon=horizon, lag_days=7)
        tte = c.time_to_event(outcome, horizon).set_index("person_id")
        last = tv.groupby("person_id", sort=False).tail(1).set_index("person_id")
        assert (last["stop"] == tte.loc[last.index, "time"]).all()  # exactly, not a round trip
        assert (last["status"] == tte.loc[last.index, "status"]).all()
        r = tv.attrs["rules"]
        assert sum(v for k, v in r.items() if k.startswith("counts_")) == len(c.measurements)
        assert r["counts_before_time_zero"] > 0 and r["counts_after_follow_up"] > 0
        assert r["counts_not_lowest_of_day"] > 0


def test_censor_counts_lost_events():
    tv = time_varying_tiers(_cohort(), max_carry_days=180, expired="censor")
    r = tv.attrs["rules"]
    # Person 907 dies on day 200, 20 days after the expiry of its only count (a hand-made case).
    assert 907 in set(tv["person_id"]) and tv.loc[tv["person_id"] == 907, "status"].eq(0).all()
    assert r["events_in_censored_time"] >= 1
    assert r["persons_with_expired_time"] > 0 and r["person_years_expired"] > 0


def test_hand_calculation_lag_and_expiry():
    # Day 0: 1600; day 40: 900 and 700 (700 used); day 95 after the end (90): ignored.
    # lag 7, max carry 30: (0, 30] 1600, (30, 47] none, (47, 70] 700, (70, 90] none with the event.
    fu = pd.DataFrame({"person_id": [1], "end": [90], "status": [1]})
    m = pd.DataFrame({"person_id": [1, 1, 1, 1], "day": [0, 40, 40, 95], "value": [1600, 900, 700, 300]})
    out = counting_process(fu, m, lag_days=7, max_carry_days=30)
    assert out["start"].tolist() == [0, 30, 47, 70]
    assert out["stop"].tolist() == [30, 47, 70, 90]
    np.testing.assert_array_equal(out["value"], [1600, np.nan, 700, np.nan])
    assert out["measurement_row"].tolist() == [0, -1, 2, -1]
    assert out["status"].tolist() == [0, 0, 0, 1]
    cen = counting_process(fu, m, lag_days=7, max_carry_days=30, expired="censor")
    assert cen["start"].tolist() == [0, 47] and cen["status"].tolist() == [0, 0]
    assert cen.attrs["rules"]["events_in_censored_time"] == 1
    assert cen.attrs["rules"]["time_expired"] == 17 + 20


def test_unsorted_input_and_person_without_day_zero():
    fu = pd.DataFrame({"person_id": ["b", "a"], "end": [50.0, 30.0], "status": [0, 2]})
    m = pd.DataFrame({"person_id": ["a", "b", "a", "b", "z"], "day": [10, 20, 0, 0, 5],
                      "value": [5.0, 2.0, 1.0, 3.0, 9.0]})
    out = counting_process(fu, m)
    # b first (follow_up order); a's day-0 count is listed after its day-10 one; z is not in follow_up.
    assert out["person_id"].tolist() == ["b", "b", "a", "a"]
    assert out["start"].tolist() == [0, 20, 0, 10]
    assert out["value"].tolist() == [3.0, 2.0, 1.0, 5.0]
    assert out.attrs["rules"]["counts_of_other_persons"] == 1
    # Without a day-0 count the first interval has no value (tmerge gives NA there too).
    late = counting_process(fu, m[m["day"] > 0])
    assert np.isnan(late["value"].iloc[0]) and late["measurement_row"].iloc[0] == -1
    assert late.attrs["rules"]["persons_without_count_at_zero"] == 2
    entry = counting_process(fu, m[m["day"] > 0], max_carry_days=100, expired="censor")
    assert entry["start"].tolist() == [20, 10]


@st.composite
def _histories(draw):
    n = draw(st.integers(1, 6))
    ends = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    status = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    rows = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(-5, 70), st.integers(1, 9)), max_size=40))
    zero_first = draw(st.booleans())
    if zero_first:  # as in a cohort: every person has a count on day 0
        rows = rows + [(i, 0, draw(st.integers(1, 9))) for i in range(n)]
    return ends, status, rows, draw(st.integers(0, 5)), draw(st.one_of(st.none(), st.integers(1, 12)))


@settings(max_examples=100, deadline=None)
@given(_histories(), st.sampled_from(["unknown", "censor"]))
def test_invariants(history, expired):
    ends, status, rows, lag, carry = history
    if carry is not None and carry <= lag:
        carry = lag + carry
    fu = pd.DataFrame({"person_id": range(len(ends)), "end": ends, "status": status})
    m = pd.DataFrame(rows, columns=["person_id", "day", "value"]).astype({"value": float})
    out = counting_process(fu, m, lag_days=lag, max_carry_days=carry, expired=expired)
    assert (out["start"] < out["stop"]).all()
    got = {}
    for r in zip(out["person_id"], out["start"], out["stop"], out["value"], out["status"]):
        got.setdefault(r[0], []).append(r[1:])
    for i, (end, s) in enumerate(zip(ends, status)):
        mine = got.get(i, [])
        if end == 0:
            assert not mine
            continue
        starts, stops = [r[0] for r in mine], [r[1] for r in mine]
        # Sorted, not overlapping; the status on the last row only.
        assert all(a >= b for a, b in zip(starts[1:], stops[:-1]))
        assert all(r[3] == 0 for r in mine[:-1])
        pm = [(d, v) for p, d, v in rows if p == i and d >= 0]
        if expired == "unknown" or carry is None and any(d == 0 for d, _ in pm):
            # Nothing dropped: the person-time is the follow-up, the status is on the last row.
            assert stops[-1] == end and starts[0] == 0 and starts[1:] == stops[:-1]
            assert sum(stops) - sum(starts) == pytest.approx(end)
            assert mine[-1][3] == s
        # The value of each row, by brute force: the lowest count of the latest day in effect at start.
        for start, _, value, _ in mine:
            eff = [(d, v) for d, v in pm if (d == 0 or d + lag < end) and (0 if d == 0 else d + lag) <= start]
            if not eff:
                assert np.isnan(value)
                continue
            latest = max(d for d, _ in eff)
            if carry is not None and start >= latest + carry:
                assert np.isnan(value)
            else:
                assert value == min(v for d, v in eff if d == latest)


def test_refusals():
    c = _cohort()
    with pytest.raises(NeutrostatsError, match="keep_measurements=True"):
        time_varying_tiers(type(c)(table=c.table, attrition=c.attrition, settings=c.settings, measurements=None))
    with pytest.raises(NeutrostatsError, match="not columns of cohort.table"):
        time_varying_tiers(c, columns=["agee"])
    with pytest.raises(NeutrostatsError, match="already output columns"):
        time_varying_tiers(c, columns=["tier"])
    with pytest.raises(NeutrostatsError, match="time_varying_tiers: outcome 'hiv'"):
        time_varying_tiers(c, "hiv")
    with pytest.raises(NeutrostatsError, match="horizon"):
        time_varying_tiers(c, horizon=-1)
    for kwargs, pattern in (({"lag_days": -1}, "lag_days"), ({"lag_days": 1.5}, "lag_days"),
                            ({"lag_days": True}, "lag_days"), ({"max_carry_days": 0}, "max_carry_days"),
                            ({"lag_days": 7, "max_carry_days": 7}, "larger than lag_days"),
                            ({"expired": "drop"}, "expired")):
        with pytest.raises(NeutrostatsError, match=pattern):
            time_varying_tiers(c, **kwargs)
    fu = pd.DataFrame({"person_id": [1, 1], "end": [3, 4], "status": [0, 1]})
    m = pd.DataFrame({"person_id": [1], "day": [0], "value": [1.0]})
    with pytest.raises(NeutrostatsError, match="one row per person"):
        counting_process(fu, m)
    with pytest.raises(NeutrostatsError, match="below 0"):
        counting_process(fu.iloc[:1].assign(end=-1), m)
    with pytest.raises(NeutrostatsError, match="not whole numbers"):
        counting_process(fu.iloc[:1], m.assign(day=0.5))
    with pytest.raises(NeutrostatsError, match="missing or infinite"):
        counting_process(fu.iloc[:1], m.assign(value=np.nan))
    with pytest.raises(NeutrostatsError, match="must be numeric"):
        counting_process(fu.iloc[:1], m.assign(day="0"))
