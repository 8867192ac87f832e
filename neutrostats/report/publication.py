"""The report's tables in publication form: labels, units in headers, decimals per quantity, wide layouts.

:func:`publication_tables` turns every tidy table of a
:class:`~neutrostats.report.Report` into a
:class:`~neutrostats.core.display.DisplayTable`, which the HTML report, the
Jupyter repr and the Word/LaTeX exports render. The tidy tables themselves
(``report.tables``, ``results.json``, ``tables/*.csv``) keep machine names and
full precision.

Number formats, one rule per quantity:

* counts: no decimals, thousands separators (``1,064``); expected counts one
  decimal (``1,095.7``);
* odds and hazard ratios: two decimals, ``2.63 (1.85–3.65)``;
* percentages (risks, mortality, cumulative incidence, shares): one decimal;
* p-values as the AMA Manual of Style (11th ed., §19.5) prescribes, with the
  leading zero that NEJM and the Lancet print: ``<0.001``; three decimals
  below 0.01 (``0.002``); else two (``0.01``, ``0.25``); ``>0.99`` above 0.99;
* test statistics two decimals; SMDs three.

A hidden count keeps its mark (``<k`` or ``[c]``), a value computed from one
reads ``[h]``, a missing value ``–``; nothing else replaces a number.

Examples
--------
>>> fmt_p(0.0123), fmt_p(0.00234), fmt_p(1e-5), fmt_number(1095.74, 1), fmt_ratio_ci(2.6339, 1.8472, 3.6525)
('0.01', '0.002', '<0.001', '1,095.7', '2.63 (1.85–3.65)')
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.display import DisplayTable
from neutrostats.stats.tableone import HIDDEN_VALUE, SMD_NOTE

__all__ = ["TEST_LABELS", "fmt_count", "fmt_number", "fmt_p", "fmt_percent_ci", "fmt_ratio_ci",
           "publication_tables", "settings_table"]

#: Display names of the tests of the report (``test`` column of the tidy test tables).
TEST_LABELS: Mapping[str, str] = {
    "logrank": "Log-rank",
    "logrank_trend": "Log-rank test for trend",
    "logrank_stratified": "Stratified log-rank",
    "schoenfeld": "Proportional hazards (Schoenfeld residuals)",
    "gray": "Gray's test",
    "cochran_armitage": "Cochran–Armitage test for trend",
    "logistic_score": "Logistic score test for trend",
}

_SCHEME_TITLES = {"andersen2016": "Andersen 2016", "clinical": "Clinical", "ctcae_v5": "CTCAE v5"}
_INDEX_WORDS = {"first": "first blood count", "first_neutropenic": "first neutropenic blood count",
                "first_confirmed": "confirming blood count (the second count below the normal limit)",
                "nadir": "lowest ANC (nadir) in the window"}
_TIER = "ANC tier at index"
Cell = Callable[..., str]


# ---------------------------------------------------------------------------
# Numbers


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def fmt_count(v: Any) -> str:
    """A count: no decimals, thousands separators (``1,064``)."""
    return f"{int(round(float(v))):,}"


def fmt_number(v: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals and thousands separators (``1,095.7``); ``∞`` for infinity."""
    v = float(v)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:,.{digits}f}"


def fmt_p(p: Any) -> str:
    """A p-value by the AMA convention: ``<0.001``, three decimals below 0.01, else two; ``>0.99`` above."""
    p = float(p)
    if p < 0.001:
        return "<0.001"
    if p < 0.01:
        return f"{p:.3f}"
    if p > 0.99:
        return ">0.99"
    return f"{p:.2f}"


def fmt_ratio_ci(estimate: Any, low: Any, high: Any) -> str:
    """A ratio and its interval with two decimals: ``2.63 (1.85–3.65)``."""
    return f"{fmt_number(estimate, 2)} ({fmt_number(low, 2)}–{fmt_number(high, 2)})"


def fmt_percent_ci(estimate: Any, low: Any, high: Any) -> str:
    """A proportion as a percentage with its interval, one decimal: ``5.5 (5.2–5.8)``.

    The estimate alone where the interval is not defined (a curve at 0 or 1 has no log-log interval).

    Examples
    --------
    >>> fmt_percent_ci(0.0548, 0.0517, 0.0581), fmt_percent_ci(1.0, float("nan"), float("nan"))
    ('5.5 (5.2–5.8)', '100.0')
    """
    if _missing(low) or _missing(high):
        return f"{100 * float(estimate):.1f}"
    return f"{100 * float(estimate):.1f} ({100 * float(low):.1f}–{100 * float(high):.1f})"


def _cells(df: pd.DataFrame, marks: Mapping[tuple[int, str], str] | None) -> Cell:
    """``cell(row, column)`` of ``df``'s value in display form, with the hidden marks of the report."""
    marks = marks or {}
    suppressed = (df["suppressed"].to_numpy(dtype=bool) if "suppressed" in df.columns
                  else np.zeros(len(df), dtype=bool))

    def hidden(row: int, col: str) -> str:
        return marks.get((row, col)) or (HIDDEN_VALUE if suppressed[row] else "–")

    columns: dict[str, pd.Series] = {}

    def cell(row: int, col: str, fmt: Callable[[Any], str] = fmt_count) -> str:
        # Each column looked up once (a DataFrame look-up per cell cost more than the formatting).
        series = columns.get(col)
        if series is None:
            series = columns[col] = df[col]
        v = series.iloc[row]
        return hidden(row, col) if _missing(v) else fmt(v)

    cell.hidden = hidden  # type: ignore[attr-defined]
    return cell


def _years(t: Any) -> str:
    t = float(t)
    return f"{t:g} year" + ("" if t == 1 else "s")


def _outcome(lab, name: Any) -> str:
    text = str(name)
    if text.startswith("death before "):
        return f"Death before {_lower(lab(text.removeprefix('death before ')))}"
    return lab(text)


def _test(lab, name: Any) -> str:
    return lab.names.get(str(name)) or TEST_LABELS.get(str(name)) or lab(name)


# ---------------------------------------------------------------------------
# Tables


class _Text:
    """Marks a column of :func:`_table`'s spec as text: left-aligned, missing values empty."""

    def __init__(self, fn: Callable[[Any], str]) -> None:
        self.fn = fn


def _table(name: str, title: str, df: pd.DataFrame, marks, spec, notes: tuple[str, ...] = ()) -> DisplayTable:
    """One display row per tidy row: ``spec`` is (header, column, formatter); :class:`_Text` for text."""
    cell = _cells(df, marks)
    cols: dict[str, list[str]] = {}
    align = []
    for header, col, fmt in spec:
        if isinstance(fmt, _Text):
            cols[header] = ["" if _missing(v) else fmt.fn(v) for v in df[col]]
            align.append("l")
        else:
            cols[header] = [cell(i, col, fmt) for i in range(len(df))]
            align.append("r")
    return DisplayTable(name, title, pd.DataFrame(cols, columns=list(cols)), align=tuple(align), notes=notes)


def _wide_risks(name: str, title: str, df: pd.DataFrame, marks, lab, cols: tuple[str, str, str],
                notes: tuple[str, ...] = (), by_outcome: bool = False) -> DisplayTable:
    """Tiers as columns, one row per horizon (and outcome): ``% (95% CI)`` cells."""
    cell = _cells(df, marks)
    est, lo, hi = cols
    tiers = list(dict.fromkeys(df["group"].astype(str)))
    keys = list(dict.fromkeys(zip(df["outcome"].astype(str) if by_outcome else [""] * len(df), df["time"])))
    rows = []
    for outcome, time in keys:
        row = {"Time since index": _years(time) if not outcome else f"{_outcome(lab, outcome)}, {_years(time)}"}
        for tier in tiers:
            hit = np.flatnonzero((df["group"].astype(str) == tier).to_numpy() & (df["time"] == time).to_numpy()
                                 & ((df["outcome"].astype(str) == outcome).to_numpy() if by_outcome else True))
            row[lab(tier)] = "–" if not len(hit) else (
                cell.hidden(int(hit[0]), est) if _missing(df[est].iloc[hit[0]])  # type: ignore[attr-defined]
                else fmt_percent_ci(df[est].iloc[hit[0]], df[lo].iloc[hit[0]], df[hi].iloc[hit[0]]))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["Time since index", *[lab(t) for t in tiers]])
    return DisplayTable(name, title, frame, align=("l",) + ("r",) * len(tiers), notes=notes)


def _cumulative_incidence(df: pd.DataFrame, marks, lab) -> DisplayTable:
    outcomes = list(dict.fromkeys(df["outcome"].astype(str)))
    of = f" of {_lower(_outcome(lab, outcomes[0]))}" if len(outcomes) == 1 else ""
    return _wide_risks("cumulative_incidence", f"Cumulative incidence{of} by ANC tier at index, % (95% CI)",
                       df, marks, lab, ("estimate", "conf_low", "conf_high"), by_outcome=len(outcomes) > 1,
                       notes=("Aalen–Johansen estimate with death as the competing risk, persons without the "
                              "diagnosis before the index date.",))


def _lower(text: str) -> str:
    """Lower-case the first letter of a label, unless it starts an acronym (HIV, AML)."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _at_risk(df: pd.DataFrame, marks, lab, name: str = "at_risk",
             title: str = "Numbers at risk (n) by time since index") -> DisplayTable:
    """Numbers at risk: tiers as rows, times as columns (as printed under a Kaplan–Meier plot)."""
    cell = _cells(df, marks)
    times = list(dict.fromkeys(df["time"]))
    rows = []
    for tier in dict.fromkeys(df["group"].astype(str)):
        row = {_TIER: lab(tier)}
        for t in times:
            hit = np.flatnonzero((df["group"].astype(str) == tier).to_numpy() & (df["time"] == t).to_numpy())
            row[_years(t)] = cell(int(hit[0]), "n_risk") if len(hit) else "–"
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[_TIER, *[_years(t) for t in times]])
    return DisplayTable(name, title, frame, align=("l",) + ("r",) * len(times))


def _or_cell(ref: bool, est: str, lo: str, hi: str, method: str, reason: str) -> str:
    """One OR cell: the estimate and interval, labelled where it is not an ordinary estimate."""
    if ref:
        return "1 (reference)"
    if est in ("–", HIDDEN_VALUE) or est.startswith("<") or est == "[c]":
        return est
    if method == "not estimable":
        return "not estimable"
    if reason:
        # No support in the data (e.g. no events in the tier): Firth's estimate is then finite only
        # because of its penalty, so it is not shown as a number here, nor in the summary or the forest plot.
        return reason
    if method == "firth":
        return f"{est} ({lo}–{hi}), Firth"
    return f"{est} ({lo}–{hi})"


def _not_estimable(df: pd.DataFrame) -> list[str]:
    """Per row: "not estimable (reason)" where an estimate has no support in the data, else ""."""
    if "estimable" not in df.columns:
        return [""] * len(df)
    notes = df["note"].astype(object).tolist() if "note" in df.columns else [""] * len(df)
    out = []
    for e, n in zip(df["estimable"].astype(object), notes):
        bad = e is False or e is np.False_
        out.append("" if not bad else (f"not estimable ({n})" if isinstance(n, str) and n else "not estimable"))
    return out


def _ratio_cells(df: pd.DataFrame, marks) -> tuple[list[str], list[str]]:
    """Per row of an OR or HR table: the ratio (95% CI) cell and the p cell."""
    cell = _cells(df, marks)
    reasons = _not_estimable(df)
    ref = df["is_reference"].astype(bool).tolist() if "is_reference" in df.columns else [False] * len(df)
    method = df["method"].astype(str).tolist() if "method" in df.columns else [""] * len(df)
    ratios, ps = [], []
    for i in range(len(df)):
        est = cell(i, "estimate", lambda v: fmt_number(v, 2))
        if _missing(df["estimate"].iloc[i]) and reasons[i] and est == "–":
            est = reasons[i]
        lo, hi = (cell(i, c, lambda v: fmt_number(v, 2)) for c in ("conf_low", "conf_high"))
        ratios.append(_or_cell(ref[i], est, lo, hi, method[i], reasons[i]))
        # No p beside the reference, nor beside a row with no estimate at all.
        no_estimate = ratios[i].startswith("not estimable") and est == reasons[i]
        ps.append("" if ref[i] or no_estimate else cell(i, "p_value", fmt_p))
    return ratios, ps


def _odds_ratios(df: pd.DataFrame, marks, lab) -> DisplayTable:
    """Crude and adjusted ORs side by side; outcomes as header rows, tiers indented under them."""
    ratios, ps = _ratio_cells(df, marks)
    cell = _cells(df, marks)
    model = df["model"].astype(str).to_numpy()
    crude, adj = np.flatnonzero(model == "crude"), np.flatnonzero(model == "adjusted")
    adj_at = {(str(df["outcome"].iloc[j]), str(df["group"].iloc[j])): j for j in adj}
    with_e = "evalue" in df.columns
    rows, indent, last = [], [], None
    for i in crude:
        outcome, tier = str(df["outcome"].iloc[i]), str(df["group"].iloc[i])
        if outcome != last:
            rows.append([_outcome(lab, outcome)] + [""] * (7 if with_e else 6))
            indent.append(0)
            last = outcome
        j = adj_at.get((outcome, tier))
        rows.append([lab(tier), cell(int(i), "n"), cell(int(i), "n_event"), ratios[i], ps[i],
                     ratios[j] if j is not None else "–", ps[j] if j is not None else ""]
                    + ([_evalue_cell(df, None if j is None else int(j))] if with_e else []))
        indent.append(1)
    headers = ["Outcome and ANC tier at index", "n at risk", "Events, n", "Crude OR (95% CI)", "p (crude)",
               "Adjusted OR (95% CI)", "p (adjusted)"] + (["E-value (CI)"] if with_e else [])
    notes = ("E-value (VanderWeele & Ding 2017): the minimum strength of association, on the risk-ratio scale, "
             "that an unmeasured confounder would need with both the tier and the outcome to explain the "
             "adjusted OR away (in brackets: to move the confidence limit nearer 1 to 1); ORs of outcomes "
             "under 15% read as risk ratios, others converted by their square root.",) if with_e else ()
    return DisplayTable("odds_ratios", "Odds ratios of each outcome by ANC tier at index",
                        pd.DataFrame(rows, columns=headers), align=("l",) + ("r",) * (len(headers) - 1),
                        indent=tuple(indent), notes=notes)


#: Display names of the cytopenia patterns.
PATTERN_LABELS = {"no_neutropenia": "No neutropenia", "isolated": "Isolated neutropenia",
                  "bicytopenia": "Bicytopenia", "pancytopenia": "Pancytopenia",
                  "undetermined": "Undetermined (haemoglobin or platelets missing)"}


def _cytopenia_by_tier(df: pd.DataFrame, marks, lab) -> DisplayTable:
    """Persons by ANC tier and cytopenia pattern: tiers as header rows, patterns indented under them."""
    cell = _cells(df, marks)
    rows, indent, last = [], [], None
    for i in range(len(df)):
        tier, pattern = str(df["group"].iloc[i]), str(df["pattern"].iloc[i])
        if tier != last:
            rows.append([lab(tier), "", ""])
            indent.append(0)
            last = tier
        rows.append([PATTERN_LABELS.get(pattern, pattern), cell(i, "n"), cell(i, "percent", lambda v: f"{v:.1f}")])
        indent.append(1)
    return DisplayTable("cytopenia_by_tier", "Persons by ANC tier and cytopenia pattern at the index sample",
                        pd.DataFrame(rows, columns=["ANC tier and pattern", "Persons, n", "% of tier"]),
                        align=("l", "r", "r"), indent=tuple(indent), notes=(
        "Isolated neutropenia: haemoglobin and platelets not low; bicytopenia: one of them low; pancytopenia: "
        "both. Anaemia: haemoglobin below the WHO limit for age and sex; thrombocytopenia: platelets below "
        "150 ×10⁹/L.",))


def _cytopenia_odds_ratios(df: pd.DataFrame, marks, lab) -> DisplayTable:
    """Crude ORs of each outcome by cytopenia pattern against isolated neutropenia."""
    ratios, ps = _ratio_cells(df, marks)
    cell = _cells(df, marks)
    rows, indent, last = [], [], None
    for i in range(len(df)):
        outcome = str(df["outcome"].iloc[i])
        if outcome != last:
            rows.append([_outcome(lab, outcome), "", "", "", ""])
            indent.append(0)
            last = outcome
        pattern = str(df["group"].iloc[i])
        rows.append([PATTERN_LABELS.get(pattern, pattern), cell(i, "n"), cell(i, "n_event"), ratios[i], ps[i]])
        indent.append(1)
    headers = ["Outcome and pattern", "n at risk", "Events, n", "Crude OR (95% CI)", "p"]
    return DisplayTable("cytopenia_odds_ratios",
                        "Odds ratios of each outcome by cytopenia pattern, against isolated neutropenia",
                        pd.DataFrame(rows, columns=headers), align=("l",) + ("r",) * 4, indent=tuple(indent),
                        notes=("Neutropenic persons (index ANC below normal) whose index sample has haemoglobin and "
                               "platelets; conditional maximum-likelihood estimate with mid-p interval.",))


def _evalue_cell(df: pd.DataFrame, j: int | None) -> str:
    """``E (E of the CI)`` of the adjusted row ``j``; empty where it has none (reference, hidden, not estimable)."""
    if j is None or _missing(df["evalue"].iloc[j]):
        return ""
    e, ci = float(df["evalue"].iloc[j]), df["evalue_ci"].iloc[j]
    return f"{e:.2f}" + ("" if _missing(ci) else f" ({float(ci):.2f})")


def _cox(df: pd.DataFrame, marks, lab) -> DisplayTable:
    ratios, ps = _ratio_cells(df, marks)
    cell = _cells(df, marks)
    rows = [[lab(t), cell(i, "n"), cell(i, "n_event"), ratios[i], ps[i]] for i, t in enumerate(df["term"])]
    return DisplayTable("cox", "Cox proportional hazards: hazard ratios of death",
                        pd.DataFrame(rows, columns=["Term", "n", "Deaths, n", "HR (95% CI)", "p"]),
                        align=("l", "r", "r", "r", "r"),
                        notes=("Age: hazard ratio per year of age at index.",))


def _by_outcome(df: pd.DataFrame, lab, make_row, width: int) -> tuple[list[list[str]], list[int]]:
    """Outcome header rows with the tier rows indented under them: ``make_row(i)`` gives row ``i``'s cells."""
    rows, indent, last = [], [], None
    for i in range(len(df)):
        outcome = str(df["outcome"].iloc[i])
        if outcome != last:
            rows.append([_outcome(lab, outcome)] + [""] * (width - 1))
            indent.append(0)
            last = outcome
        rows.append([lab(str(df["group"].iloc[i])), *make_row(i)])
        indent.append(1)
    return rows, indent


def _interval(cell, i: int, cols: tuple[str, str, str], fmt: Callable[[Any], str]) -> str:
    """``est (lo–hi)`` of row ``i`` with ``fmt``; the hidden mark where the estimate is hidden."""
    est = cell(i, cols[0], fmt)
    lo, hi = cell(i, cols[1], fmt), cell(i, cols[2], fmt)
    if lo in ("–", HIDDEN_VALUE) or est in (HIDDEN_VALUE,) or est.startswith("<") or est.startswith("["):
        return est.replace("-", "−")
    # A dash between negative limits would read as a minus sign.
    if lo.startswith("-") or hi.startswith("-"):
        return f"{est} ({lo} to {hi})".replace("-", "−")
    return f"{est} ({lo}–{hi})"


def _incidence_rates(rates: pd.DataFrame, ratios: pd.DataFrame, marks, lab) -> DisplayTable:
    """Events, person-years and the rate per 1,000 person-years by tier, with the exact rate ratio."""
    cell = _cells(rates, marks)
    exact = ratios[(ratios["contrast"].astype(str) == "ratio") & (ratios["method"].astype(str) == "exact")]
    exact = exact.reset_index(drop=True)
    rcell = _cells(exact, None)
    at = {(str(o), str(g)): j for j, (o, g) in enumerate(zip(exact["outcome"], exact["group"]))}
    two = lambda v: fmt_number(v, 2)  # noqa: E731

    def row(i: int) -> list[str]:
        j = at.get((str(rates["outcome"].iloc[i]), str(rates["group"].iloc[i])))
        ref = j is not None and bool(exact["is_reference"].iloc[j])
        rr = "1 (reference)" if ref else ("–" if j is None else _interval(rcell, j, ("estimate", "conf_low",
                                                                                       "conf_high"), two))
        p = "" if ref or j is None else rcell(j, "p_value", fmt_p)
        return [cell(i, "n"), cell(i, "n_event"), cell(i, "person_years", lambda v: fmt_number(v, 0)),
                _interval(cell, i, ("estimate", "conf_low", "conf_high"), lambda v: fmt_number(v, 1)), rr, p]

    rows, indent = _by_outcome(rates, lab, row, 7)
    headers = ["Outcome and ANC tier at index", "Persons, n", "Events, n", "Person-years",
               "Rate per 1,000 person-years (95% CI)", "Rate ratio (95% CI)", "p"]
    return DisplayTable("incidence_rates", "Incidence rates by ANC tier at index",
                        pd.DataFrame(rows, columns=headers), align=("l",) + ("r",) * 6, indent=tuple(indent),
                        notes=("Exact Poisson (Garwood) intervals for rates; rate ratios against the reference "
                               "tier with exact conditional intervals and p-values.",))


def _rate_differences(ratios: pd.DataFrame, marks, lab) -> DisplayTable:
    d = ratios[ratios["contrast"].astype(str) == "difference"].reset_index(drop=True)
    cell = _cells(d, None)

    def row(i: int) -> list[str]:
        if bool(d["is_reference"].iloc[i]):
            return ["0 (reference)", ""]
        return [_interval(cell, i, ("estimate", "conf_low", "conf_high"), lambda v: fmt_number(v, 1)),
                cell(i, "p_value", fmt_p)]

    rows, indent = _by_outcome(d, lab, row, 3)
    return DisplayTable("rate_ratios", "Incidence rate differences against the reference tier",
                        pd.DataFrame(rows, columns=["Outcome and ANC tier at index",
                                                    "Rate difference per 1,000 person-years (95% CI)", "p"]),
                        align=("l", "r", "r"), indent=tuple(indent), notes=("Wald intervals.",))


def _standardized(df: pd.DataFrame, lab) -> DisplayTable:
    """Standardised risks at the horizon by tier with differences and ratios against the reference tier."""
    risks = df[df["contrast"].astype(str) == "risk"].reset_index(drop=True)
    cell = _cells(df.reset_index(drop=True), None)
    where = {(str(o), str(g), str(c)): i for i, (o, g, c) in enumerate(zip(df["outcome"], df["group"],
                                                                           df["contrast"]))}
    pct = lambda v: f"{100 * float(v):.1f}"  # noqa: E731
    two = lambda v: fmt_number(v, 2)  # noqa: E731

    def row(i: int) -> list[str]:
        key = (str(risks["outcome"].iloc[i]), str(risks["group"].iloc[i]))
        r, d, q = (where.get((*key, c)) for c in ("risk", "difference", "ratio"))
        ref = d is not None and bool(df["is_reference"].iloc[d])
        out = [_interval(cell, r, ("estimate", "conf_low", "conf_high"), pct) if r is not None else "–"]
        if ref:
            return out + ["0 (reference)", "1 (reference)", ""]
        out.append(_interval(cell, d, ("estimate", "conf_low", "conf_high"), pct) if d is not None else "–")
        out.append(_interval(cell, q, ("estimate", "conf_low", "conf_high"), two) if q is not None else "–")
        out.append(cell(d, "p_value", fmt_p) if d is not None else "")
        return out

    rows, indent = _by_outcome(risks, lab, row, 5)
    h = f"{float(risks['time'].iloc[0]):g}-year " if len(risks) else ""
    return DisplayTable("standardized_risks", f"Standardised {h}risks by ANC tier at index",
                        pd.DataFrame(rows, columns=["Outcome and ANC tier at index", "Risk, % (95% CI)",
                                                    "Risk difference, percentage points (95% CI)",
                                                    "Risk ratio (95% CI)", "p (difference)"]),
                        align=("l", "r", "r", "r", "r"), indent=tuple(indent),
                        notes=("G-computation: every person's risk predicted with each tier in turn and "
                               "averaged over the cohort (death: Cox model; other outcomes: cause-specific Cox "
                               "models with death competing), adjusted for the covariates of the Cox model; "
                               "influence-function intervals as riskRegression::ate.",))


def _calibrated(df: pd.DataFrame, null: pd.DataFrame, lab, controls: tuple[str, ...]) -> DisplayTable:
    cell = _cells(df, None)
    two = lambda v: fmt_number(v, 2)  # noqa: E731

    def row(i: int) -> list[str]:
        return [_interval(cell, i, ("estimate", "conf_low", "conf_high"), two),
                _interval(cell, i, ("calibrated_estimate", "calibrated_conf_low", "calibrated_conf_high"), two),
                cell(i, "calibrated_p_value", fmt_p)]

    rows, indent = _by_outcome(df, lab, row, 4)
    est = dict(zip(null["term"].astype(str), null["estimate"])) if len(null) else {}
    n = int(null["n_controls"].iloc[0]) if len(null) else 0
    names = ", ".join(_lower(_outcome(lab, o)) for o in controls)
    notes = (f"Empirical calibration (Schuemie et al. 2014, 2018) against the adjusted odds ratios of the "
             f"negative-control outcomes ({names}; {n} estimates): systematic error on the log scale fitted "
             f"as normal with mean {est.get('mu', float('nan')):.3f} and SD {est.get('tau', float('nan')):.3f}, "
             "assumed the same whatever the true effect.",
             "Far fewer negative controls than the dozens OHDSI recommends: the fitted error is very "
             "uncertain; read these as a sensitivity analysis.")
    return DisplayTable("calibrated_odds_ratios", "Adjusted odds ratios calibrated against negative controls",
                        pd.DataFrame(rows, columns=["Outcome and ANC tier at index", "Adjusted OR (95% CI)",
                                                    "Calibrated OR (95% CI)", "Calibrated p"]),
                        align=("l", "r", "r", "r"), indent=tuple(indent), notes=notes)


def _smd(df: pd.DataFrame, lab) -> DisplayTable:
    """SMDs: one row per variable, one column per tier against the reference, then the pairwise mean."""
    vs = df[df["comparison"] == "vs_reference"]
    groups = [g for g in dict.fromkeys(vs["group"].astype(str)) if g not in set(vs["reference"].astype(str))]
    ref = str(vs["reference"].iloc[0]) if len(vs) else ""
    rows = []
    # The text of the key columns once, not per variable and tier.
    variable = df["variable"].astype(str).to_numpy()
    group = df["group"].astype(str).to_numpy()
    vs_reference = (df["comparison"] == "vs_reference").to_numpy(dtype=bool)
    pairwise = (df["comparison"] == "pairwise_mean").to_numpy(dtype=bool)
    for var in dict.fromkeys(variable):
        this = variable == var
        row = {"Characteristic": lab(var)}
        for g in groups + ["pairwise_mean"]:
            hit = df[this & (group == g) & vs_reference] if g != "pairwise_mean" else df[this & pairwise]
            head = f"{lab.short(g)} vs {lab.short(ref)}" if g != "pairwise_mean" else "Mean of pairwise SMDs"
            if hit.empty:
                row[head] = ""
            elif bool(hit["suppressed"].iloc[0]):
                row[head] = HIDDEN_VALUE
            else:
                row[head] = "–" if _missing(hit["smd"].iloc[0]) else f"{float(hit['smd'].iloc[0]):.3f}"
        rows.append(row)
    frame = pd.DataFrame(rows)
    return DisplayTable("table_one_smd", "Standardized mean differences between ANC tiers", frame,
                        align=("l",) + ("r",) * (frame.shape[1] - 1),
                        notes=("Signed SMD of each tier against the reference tier for continuous and binary "
                               "characteristics; the mean of the pairwise SMDs is the column of Table 1.",))


def _table_one(report, lab) -> DisplayTable:
    shown = report.table_one_display
    notes = ["Median [interquartile range] or n (%).", SMD_NOTE]
    if "index_anc_per_ul" in set(report.tables["table_one"]["variable"]):
        notes.insert(1, "ANC at index in ×10⁹/L.")
    return DisplayTable.from_indexed("table_one", "Table 1. Baseline characteristics by ANC tier at index",
                                     shown, counts_row="n", first_header="Characteristic", notes=tuple(notes))


def _tests_spec(lab, with_term: bool) -> list:
    spec = [("Test", "test", _Text(lambda v: _test(lab, v))), ("Outcome", "outcome", _Text(lambda v: _outcome(lab, v)))]
    spec += [("Term", "term", _Text(lab))] if with_term else []
    return spec + [("Statistic (χ²)", "statistic", lambda v: fmt_number(v, 2)), ("df", "df", lambda v: f"{v:g}"),
                   ("p", "p_value", fmt_p)]


def publication_tables(report) -> dict[str, DisplayTable]:
    """Every table of ``report`` as readers see it, labelled with ``report.settings.display_labels``.

    Parameters
    ----------
    report : Report
        A result of :func:`~neutrostats.report.analyse`.

    Returns
    -------
    dict of str to DisplayTable
        Keyed by the names of ``report.tables`` (those present), plus
        ``settings`` (:func:`settings_table`). Table 1, the mortality and the
        cumulative-incidence tables have tiers as columns; the numbers at risk
        times as columns; the odds ratios crude and adjusted side by side.
        Hidden counts keep their marks (``<k``, ``[c]``), values computed from
        them read ``[h]``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from neutrostats.report import analyse
    >>> from neutrostats.synthetic import generate_cohort
    >>> s = generate_cohort(n_persons=600, seed=1)
    >>> r = analyse(s.labs, s.persons, s.diagnoses, s.deaths, progress=False)
    >>> shown = publication_tables(r)
    >>> shown["mortality"].frame.columns[1], shown["mortality"].frame["Time since index"].tolist()
    ('Normal (≥1.8 ×10⁹/L)', ['1 year', '4 years'])
    """
    out: dict[str, DisplayTable] = {"settings": settings_table(report)}
    for name, build in _builders(report).items():
        # The numbers at risk under the cumulative incidence are left out (no rows) when disclosure control
        # would otherwise hide counts of the main tables: nothing to show then.
        if name in report.tables and (name not in _OPTIONAL or len(report.tables[name])):
            out[name] = build()
    return out


# Tables shown only when they have rows (left out by disclosure control, or nothing to calibrate against).
_OPTIONAL = ("cif_at_risk", "calibrated_odds_ratios", "standardized_risks", "incidence_rates", "rate_ratios",
             "cytopenia_odds_ratios")


def _builders(report) -> dict[str, Callable[[], DisplayTable]]:
    """Table name -> a function making its display table (called only for the tables present)."""
    lab = report.settings.display_labels
    t, marks = report.tables, getattr(report, "marks", {}) or {}
    return {
        "inputs": lambda: _table("inputs", "Input files", t["inputs"], marks.get("inputs"), [
            ("Table", "table", _Text(str)), ("File", "file", _Text(str)), ("Rows, n", "rows", fmt_count),
            ("SHA-256", "sha256", _Text(str))], notes=("Row counts as read; SHA-256 identifies the exact files.",)),
        "attrition": lambda: _table("attrition", "Flow of persons and lab rows", t["attrition"],
                                    marks.get("attrition"), [
            ("Step", "description", _Text(str)), ("Table", "table", _Text(str)),
            ("Persons excluded, n", "excluded_persons", fmt_count),
            ("Lab rows excluded, n", "excluded_lab_rows", fmt_count),
            ("Records excluded, n", "excluded_records", fmt_count),
            ("Persons remaining, n", "persons", fmt_count), ("Lab rows remaining, n", "lab_rows", fmt_count)]),
        "tier_prevalence": lambda: _table("tier_prevalence", "Persons by ANC tier at index", t["tier_prevalence"],
                                          marks.get("tier_prevalence"), [
            (_TIER, "group", _Text(lab)), ("Persons, n", "n", fmt_count),
            ("% of cohort", "percent", lambda v: f"{v:.1f}")]),
        "table_one": lambda: _table_one(report, lab),
        "table_one_smd": lambda: _smd(t["table_one_smd"], lab),
        "odds_ratios": lambda: _odds_ratios(t["odds_ratios"], marks.get("odds_ratios"), lab),
        "cytopenia_by_tier": lambda: _cytopenia_by_tier(t["cytopenia_by_tier"], marks.get("cytopenia_by_tier"), lab),
        "cytopenia_odds_ratios": lambda: _cytopenia_odds_ratios(t["cytopenia_odds_ratios"],
                                                                marks.get("cytopenia_odds_ratios"), lab),
        "trend_tests": lambda: _table("trend_tests", "Tests for trend across ANC tiers", t["trend_tests"],
                                      marks.get("trend_tests"), _tests_spec(lab, with_term=False)),
        "mortality": lambda: _wide_risks(
            "mortality", "Mortality by ANC tier at index, % (95% CI)", t["mortality"], marks.get("mortality"), lab,
            ("mortality", "mortality_conf_low", "mortality_conf_high"),
            notes=("Kaplan–Meier estimate of 1 − survival; log-log confidence intervals.",)),
        "at_risk": lambda: _at_risk(t["at_risk"], marks.get("at_risk"), lab),
        "logrank": lambda: _table("logrank", "Log-rank test: observed and expected deaths", t["logrank"],
                                  marks.get("logrank"), [
            (_TIER, "group", _Text(lab)), ("n", "n", fmt_count), ("Deaths observed, n", "observed", fmt_count),
            ("Deaths expected, n", "expected", lambda v: fmt_number(v, 1))]),
        "cox": lambda: _cox(t["cox"], marks.get("cox"), lab),
        "ph_test": lambda: _table("ph_test", "Proportional-hazards check (cox.zph score test)", t["ph_test"],
                                  marks.get("ph_test"), [
            ("Term", "term", _Text(lab)), ("Statistic (χ²)", "statistic", lambda v: fmt_number(v, 2)),
            ("df", "df", lambda v: f"{v:g}"), ("p", "p_value", fmt_p)]),
        "cumulative_incidence": lambda: _cumulative_incidence(t["cumulative_incidence"],
                                                              marks.get("cumulative_incidence"), lab),
        "cif_at_risk": lambda: _at_risk(
            t["cif_at_risk"], marks.get("cif_at_risk"), lab, "cif_at_risk",
            f"Persons at risk of a first {_lower(_outcome(lab, report.settings.competing_outcome))} (n) by time "
            "since index"),
        "tests": lambda: _table("tests", "Tests", t["tests"], marks.get("tests"), _tests_spec(lab, with_term=True)),
        "incidence_rates": lambda: _incidence_rates(t["incidence_rates"], t["rate_ratios"],
                                                    marks.get("incidence_rates"), lab),
        "rate_ratios": lambda: _rate_differences(t["rate_ratios"], marks.get("rate_ratios"), lab),
        "standardized_risks": lambda: _standardized(t["standardized_risks"], lab),
        "calibrated_odds_ratios": lambda: _calibrated(t["calibrated_odds_ratios"], t["systematic_error"], lab,
                                                      report.settings.negative_control_outcomes),
    }


# ---------------------------------------------------------------------------
# Settings in words


def _scheme_sentence(name: str) -> str:
    from neutrostats.labs.classify import get_scheme

    try:
        scheme = get_scheme(name)
    except Exception:  # a custom scheme given by name only: say its name
        return str(name)
    labels = scheme.tier_labels("10^9/L")
    parts = []
    for tier in scheme.labels:
        m = re.match(r"^(?P<name>.*) \((?P<range>.*?)(?: ×10⁹/L)?\)$", labels[tier])
        parts.append(f"{m['name'].lower() if m else tier} {m['range'] if m else ''}".strip())
    return f"{_SCHEME_TITLES.get(scheme.name, scheme.name)} — {', '.join(parts)} ×10⁹/L"


def settings_table(report) -> DisplayTable:
    """The settings of ``report`` in sentences (``results.json`` keeps them as JSON).

    Returns
    -------
    DisplayTable
        Two columns, ``Setting`` and ``Value``: severity scheme with its cuts,
        index, outcome window, outcomes with their ICD-10 codes, adjustment,
        competing risk, disclosure rule in words, and the input-reading
        options only where set.
    """
    s, lab = report.settings, report.settings.display_labels
    rows = [("Severity scheme", _scheme_sentence(s.scheme)),
            ("Index", _INDEX_WORDS.get(s.index, str(s.index)).capitalize()),
            ("Outcome window", f"{s.followup_years:g} years after the index date")]
    rows += [(f"Outcome: {_outcome(lab, o)}", "ICD-10 " + ", ".join(codes)) for o, codes in s.outcome_codes.items()]
    rows += [("Adjusted for", ", ".join(_lower(lab(a)) for a in s.adjust) or "nothing (crude estimates only)"),
             ("Competing risk analysis", f"{_outcome(lab, s.competing_outcome)}, with death as the competing event"),
             ("Disclosure control", s.disclosure_rule.describe())]
    optional = {"duffy_null": "Duffy-null column", "age_range": "Age at index (years)",
                "index_window": "Index dates between", "columns": "Column names", "date_format": "Date format",
                "timezone": "Time zone", "thousands": "Thousands separator", "code_map": "Lab code map"}
    for key, label in optional.items():
        v = getattr(s, key)
        if v not in (None, {}, ()):
            rows.append((label, _words(v)))
    if s.decimal != ".":
        rows.append(("Decimal separator", repr(s.decimal)))
    return DisplayTable("settings", "Methods and settings", pd.DataFrame(rows, columns=["Setting", "Value"]),
                        align=("l", "l"))


def _words(v: Any) -> str:
    if isinstance(v, Mapping):
        return "; ".join(f"{k}: {_words(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return " to ".join(str(x) for x in v) if len(v) == 2 else ", ".join(str(x) for x in v)
    return str(v)
