"""Disclosure rules of issue 15: the registry, rounding, marks that do not lie, estimates without support.

The attacker test (test_disclosure_attack.py) checks that no hidden count can
be narrowed; this file checks the rest of what the rules promise, each time
against a hand calculation or the unsuppressed report of the same data.
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import neutrostats.report as report
from neutrostats.disclosure.cells import disclose
from neutrostats.disclosure import CellRegistry, DisclosureRule, protect
from neutrostats.errors import NeutrostatsError
from test_disclosure_attack import _analyse, _cohort, _exact  # noqa: E402 - the same fast analysis and cohorts

# ---------------------------------------------------------------------------
# The registry and the protection, by hand


def _registry(cells, totals):
    reg = CellRegistry()
    for key, value in cells.items():
        reg.cell(key, value)
    for total, parts in totals:
        reg.total(total, parts)
    return reg


def _keys(reg, mask):
    return sorted(reg.keys[i] for i in np.flatnonzero(mask))


def test_a_small_cell_of_a_two_way_table_hides_a_rectangle():
    # Sex by tier with an Overall column; F in tier a is 3. Within a, M = 60 - 3 would give it back;
    # across, F_a = F_O - F_b. Hiding M_a, F_b and M_b closes the rectangle: F_a can be anything
    # from 0 to 43 (F_a + F_b = 43), M_a = 60 - F_a, M_b = 117 - M_a.
    cells = {("F", "a"): 3, ("M", "a"): 57, ("F", "b"): 40, ("M", "b"): 60, ("F", "O"): 43, ("M", "O"): 117,
             ("n", "a"): 60, ("n", "b"): 100, ("n", "O"): 160}
    totals = [(("n", g), [("F", g), ("M", g)]) for g in "abO"]
    totals += [((lv, "O"), [(lv, "a"), (lv, "b")]) for lv in "FM"] + [(("n", "O"), [("n", "a"), ("n", "b")])]
    reg = _registry(cells, totals)
    p = protect(reg, 5)
    assert _keys(reg, p.primary) == [("F", "a")]
    assert _keys(reg, p.complementary) == [("F", "b"), ("M", "a"), ("M", "b")]


def test_two_small_cells_with_a_small_known_sum_need_a_third():
    # a = b = 1 and a + b + c = 52 with c = 50 shown: a + b = 2 says each is at most 2 (narrower
    # than "below 5"); hiding c lets a take any value 0..52 - b.
    reg = _registry({"a": 1, "b": 1, "c": 50, "t": 52}, [("t", ["a", "b", "c"])])
    p = protect(reg, 5)
    assert _keys(reg, p.primary) == ["a", "b"] and _keys(reg, p.complementary) == ["c"]


def test_a_latent_count_is_protected_too():
    # n = 40 and events = 38 shown give 2 persons without the event, a count nobody printed.
    reg = CellRegistry()
    reg.cell("n", 40)
    reg.cell("events", 38)
    reg.cell("non-events", 2, published=False, sensitive=True)
    reg.total("n", ["events", "non-events"])
    p = protect(reg, 5)
    assert p.hidden[reg.index["n"]] or p.hidden[reg.index["events"]]


def test_no_protection_below_k_2_and_zeros_stay_shown():
    reg = _registry({"a": 0, "b": 1, "t": 1}, [("t", ["a", "b"])])
    assert not protect(reg, 0).hidden.any() and not protect(reg, 1).hidden.any()
    assert not protect(reg, 5).hidden[reg.index["a"]]


def test_registry_refuses_relations_that_do_not_hold_and_two_values_under_one_key():
    reg = _registry({"a": 1, "b": 2, "t": 4}, [])
    with pytest.raises(NeutrostatsError, match="does not hold"):
        reg.total("t", ["a", "b"])
    with pytest.raises(NeutrostatsError, match="one key must name one count"):
        reg.cell("a", 2)
    with pytest.raises(NeutrostatsError, match="whole number"):
        reg.cell("c", 1.5)


# ---------------------------------------------------------------------------
# Rules


def test_opensafely_preset_and_rounding_by_hand():
    r = DisclosureRule.preset("opensafely")
    # OpenSAFELY: counts of 7 or less redacted (threshold 8), the others rounded to the nearest 5.
    assert (r.method, r.min_cell_count, r.rounding_base) == ("suppress+round", 8, 5)
    assert "opensafely" in r.describe() and "7" in r.describe()
    # nearest multiple of 5, halves up: 12 -> 10, 12.5 does not occur, 13 -> 15, 17.5 -> 20
    assert DisclosureRule("round", 0, 5).round_counts([0, 1, 2, 3, 12, 13, 1232]).tolist() == \
        [0, 0, 0, 5, 10, 15, 1230]
    assert DisclosureRule("round", 0, 10).round_counts([4, 5, 15]).tolist() == [0, 10, 20]
    assert DisclosureRule("suppress", 0).describe().startswith("off")
    with pytest.raises(NeutrostatsError, match="method must be one of"):
        DisclosureRule("blur", 5)
    with pytest.raises(NeutrostatsError, match="rounding_base"):
        DisclosureRule("round", 0, 0)
    with pytest.raises(NeutrostatsError, match="sets its own threshold"):
        report.ReportSettings(disclosure="opensafely", min_cell_count=5)


# ---------------------------------------------------------------------------
# The report's tables under each rule (counts only: Firth fits and figures are skipped)


@lru_cache(maxsize=None)
def _full(n, seed, k):
    """analyse with the Firth fits and figures skipped, and what its disclosure step was given."""
    capture: dict = {}
    return _analyse(n, seed, k, capture), capture


@lru_cache(maxsize=None)
def _report(n, seed, k, disclosure="suppress", base=5):
    """What the report publishes under a rule: its own disclosure step on its exact tables (one analysis
    per cohort; test_disclosure_attack checks that this is what analyse returns)."""
    c = _exact(n, seed)
    rule = report.ReportSettings(min_cell_count=k, disclosure=disclosure, rounding_base=base).disclosure_rule
    d = disclose({name: df.copy() for name, df in c["tables"].items()}, **{**c["kwargs"], "rule": rule})
    return SimpleNamespace(tables=d.tables, marks=d.marks, disclosure=d.summary())


COUNTS = {"n", "n_event", "n_competing", "n_risk", "observed", "excluded_persons", "excluded_lab_rows",
          "excluded_records", "persons", "lab_rows", "missing", "denominator"}


def _marks(table: pd.DataFrame) -> dict[tuple[int, str], str]:
    out = {}
    for row, text in enumerate(table["hidden"].astype(object)):
        if isinstance(text, str) and text:
            for part in text.split("; "):
                col, mark = part.rsplit(" ", 1)
                out[(row, col)] = mark
    return out


@pytest.mark.parametrize("k", [5, 10])
def test_marks_do_not_lie(k):
    raw, pub = _report(1500, 2, 0), _report(1500, 2, k)
    n_primary = n_comp = 0
    for name, table in pub.tables.items():
        cols = [c for c in table.columns if c in COUNTS]
        if not cols:
            continue
        if not len(table) and len(raw.tables[name]):
            assert name == "cif_at_risk"  # the one table left out (no rows) where it would cost other counts
            continue
        marks = _marks(table)
        assert marks == pub.marks.get(name, {}), name
        for col in cols:
            hidden = table[col].isna().to_numpy() & raw.tables[name][col].notna().to_numpy()
            for row in np.flatnonzero(hidden):
                truth = int(raw.tables[name][col].iloc[row])
                mark = marks[(row, col)]
                # "<k" only where the count is below k; "[c]" only on counts of k or more
                assert mark == (f"<{k}" if 0 < truth < k else "[c]"), (name, row, col, truth, mark)
                n_primary += mark != "[c]"
                n_comp += mark == "[c]"
            assert set(m for (r, c), m in marks.items() if c == col) <= {f"<{k}", "[c]"}
    assert n_primary and n_comp
    assert pub.disclosure["primary_hidden"] > 0 and pub.disclosure["complementary_hidden"] > 0


def test_table_one_display_uses_the_same_marks():
    pub, _ = _full(1500, 2, 5)
    shown = pub.table_one_display.to_numpy().ravel()
    words = {c for c in shown if c in ("<5", "[c]", "[h]")}
    assert {"<5", "[c]"} <= words and "suppressed" not in " ".join(map(str, shown))


def test_round_rounds_every_count_and_recomputes_percentages():
    raw, pub = _report(1500, 2, 0), _report(1500, 2, 0, "round", 5)
    for name, table in pub.tables.items():
        for col in set(table.columns) & COUNTS:
            shown = table[col].dropna().to_numpy(dtype=float)
            truth = raw.tables[name][col].to_numpy(dtype=float, na_value=np.nan)[table[col].notna().to_numpy()]
            assert (shown % 5 == 0).all(), (name, col)
            assert (np.abs(shown - truth) <= 2.5).all(), (name, col)
            # rounding hides no count
            assert (table[col].isna() == raw.tables[name][col].isna()).all(), (name, col)
    tp = pub.tables["tier_prevalence"]
    n = tp["n"].to_numpy(dtype=float)
    np.testing.assert_allclose(tp["percent"].to_numpy(dtype=float), 100 * n / n.sum())
    t1 = pub.tables["table_one"]
    ok = t1["percent"].notna()
    np.testing.assert_allclose(t1.loc[ok, "percent"].to_numpy(dtype=float),
                               100 * t1.loc[ok, "n"].to_numpy(dtype=float) / t1.loc[ok, "denominator"].to_numpy(dtype=float))
    # An estimate from a count below the base would give the count back (2 of 3 dead = 66.7%).
    mort_raw, mort = raw.tables["mortality"], pub.tables["mortality"]
    small = (mort_raw["n_event"] > 0) & (mort_raw["n_event"] < 5)
    assert small.any() and mort.loc[small, "mortality"].isna().all()


def test_suppress_and_round_hides_what_suppress_hides_then_rounds():
    a, b = _report(1500, 2, 5), _report(1500, 2, 5, "suppress+round", 5)
    for name, table in a.tables.items():
        for col in set(table.columns) & COUNTS:
            assert (table[col].isna() == b.tables[name][col].isna()).all(), (name, col)
            assert (b.tables[name][col].dropna().to_numpy(dtype=float) % 5 == 0).all(), (name, col)


def test_opensafely_shows_no_count_up_to_7():
    pub = _report(1500, 2, 0, "opensafely")
    for name, table in pub.tables.items():
        for col in set(table.columns) & COUNTS:
            v = table[col].dropna().to_numpy(dtype=float)
            assert not ((v > 0) & (v <= 7)).any() and (v % 5 == 0).all(), (name, col)
    assert pub.disclosure["preset"] == "opensafely"


# ---------------------------------------------------------------------------
# Whole reports: huge k, estimates without support, the rule in every output


def _frames(n, seed):
    s = _cohort(n, seed)
    return s.labs, s.persons, s.diagnoses, s.deaths


def test_huge_min_cell_count_completes_with_notes_instead_of_figures():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = report.analyse(*_frames(600, 1), report.ReportSettings(min_cell_count=100_000), progress=False)
    for name in ("km_mortality", "cumulative_incidence"):
        fig = r.figures[name]
        texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
        # Either the note, or only curves of tiers without any event (flat lines show no count).
        flat = all(np.allclose(np.asarray(line.get_ydata(), dtype=float), line.get_ydata()[0])
                   for ax in fig.axes for line in ax.lines if len(line.get_ydata()))
        assert "not drawn" in texts or flat, name
    for table in r.tables.values():
        for col in set(table.columns) & COUNTS:
            v = table[col].dropna().to_numpy(dtype=float)
            assert not ((v > 0) & (v < 100_000)).any()
    assert r.n_persons is None
    r._repr_html_()  # renders


def test_estimates_without_support_are_labelled_everywhere(tmp_path):
    # A tier with no events of a rare outcome: 400 persons, the mild tier without any AML.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = report.analyse(*_frames(1500, 2), report.ReportSettings(min_cell_count=0), progress=False)
    ors = r.tables["odds_ratios"]
    zero = ors[(ors["n_event"] == 0) & ~ors["is_reference"].astype(bool)]
    assert len(zero) and not zero["estimable"].astype(bool).any()
    assert zero["note"].str.contains("no events in this tier").all()
    firth = ors[ors["method"] == "firth"]
    assert len(firth)
    html = r._repr_html_()
    assert ", Firth" in html and "not estimable (no events in this tier)" in html
    cox = r.tables["cox"]
    no_deaths = cox[(cox["n_event"] == 0)]
    if len(no_deaths):
        assert no_deaths["estimate"].isna().all() and not no_deaths["estimable"].astype(bool).any()
    body = json.loads(json.dumps(r.to_dict()))
    cols = body["tables"]["odds_ratios"]["columns"]
    assert "estimable" in cols and "method" in cols and "estimable" in body["tables"]["cox"]["columns"]
    assert body["disclosure"]["rule"].startswith("off")
