"""The report's headline, summary first: the cohort in one sentence and the study's results in two tables.

:func:`cohort_sentence` says who was analysed and why the others were not,
from the flow table; :func:`headline_tables` gives the results in the shape
of Andersen et al. 2016 [1]_ — per ANC tier at index, the events and crude
and adjusted odds ratios of the main outcomes, then mortality and the
absolute risk of haematological malignancy (death competing) at the end of
follow-up. Both only read the disclosure-controlled tables of a
:class:`~neutrostats.report.analysis.Report`: a hidden count shows its mark
(``<k``, ``[c]``), a number computed from a hidden count ``[h]``, and every
number printed is one the tables show (or a sum or difference of counts they
show), so nothing hidden can be worked back from the headline.

References
----------
.. [1] Andersen CL, Tesfa D, Siersma VD, et al. Prevalence and clinical
   significance of neutropenia discovered in routine complete blood cell
   counts: a longitudinal study. J Intern Med. 2016;279(6):566-575.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.display import DisplayTable
from neutrostats.report.publication import fmt_count as _count, fmt_percent_ci
from neutrostats.errors import NeutrostatsError

__all__ = ["MAIN_OUTCOMES", "cohort_sentence", "headline_tables"]

#: The outcomes of the headline table by default, in Andersen et al.'s order (those of the report's outcomes).
MAIN_OUTCOMES = ("viral_infection", "hiv", "hematologic_malignancy")

_HIDDEN_VALUE = "[h]"  # a number computed from a hidden count
_FIRTH_MARK = "†"
_INDEX_TEXT = {"first": "the first ANC", "first_neutropenic": "the first neutropenic ANC",
               "first_confirmed": "the confirming ANC", "nadir": "the lowest ANC (nadir)"}


# ---------------------------------------------------------------------------
# Formatting (private: the report's general formatters live in render.py)


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _ratio(v: float) -> str:
    return "∞" if math.isinf(v) else f"{v:.2f}"


def _interval(est: Any, lo: Any, hi: Any, fmt) -> str:
    """``"2.63 (1.85–3.65)"``; the estimate alone where the interval is missing."""
    if _missing(lo) or _missing(hi):
        return fmt(float(est))
    return f"{fmt(float(est))} ({fmt(float(lo))}–{fmt(float(hi))})"


def _years(h: float) -> str:
    return f"{float(h):g}"


def _lower_first(text: str) -> str:
    """``"Age at index (years)"`` -> ``"age at index (years)"``; acronyms (``"HIV"``) stay."""
    return text[:1].lower() + text[1:] if len(text) > 1 and not text[1].isupper() else text


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class _Cells:
    """The cells of one disclosure-controlled table, by row position: shown counts or their marks."""

    def __init__(self, report: Any, name: str) -> None:
        self.df = report.tables[name].reset_index(drop=True)
        self.marks: Mapping[tuple[int, str], str] = (getattr(report, "marks", None) or {}).get(name, {})
        self.seen: set[str] = set()

    def value(self, pos: int, col: str) -> tuple[float | None, str | None]:
        """(shown value, None) or (None, mark); a hidden cell without its own mark reads ``[h]``."""
        v = self.df[col].iloc[pos]
        if _missing(v):
            mark = self.marks.get((pos, col), _HIDDEN_VALUE)
            self.seen.add(mark)
            return None, mark
        return float(v), None

    def count(self, pos: int | None, col: str) -> str:
        if pos is None:
            return "–"
        v, mark = self.value(pos, col)
        return _count(v) if mark is None else mark

    def derived(self, v: float | None, k: int) -> str:
        """A count computed from shown counts: ``<k`` from 1 to k - 1 (as a count shown alone would be)."""
        v = max(float(v or 0.0), 0.0)
        if 0 < v < k:
            self.seen.add(f"<{k}")
            return f"<{k}"
        return _count(v)

    def hide(self) -> str:
        self.seen.add(_HIDDEN_VALUE)
        return _HIDDEN_VALUE

    def total(self, cells: Iterable[tuple[int, str]]) -> tuple[float | None, str | None]:
        """The sum of shown counts; a mark where a part is hidden.

        A sum whose only non-zero part is one hidden count is that count (its
        mark); any other sum with a hidden part is computed from it (``[h]``).
        """
        shown: list[float] = []
        hidden: list[str] = []
        for pos, col in cells:
            v, mark = self.value(pos, col)
            if mark is None:
                shown.append(float(v or 0.0))
            else:
                hidden.append(mark)
        if not hidden:
            return float(sum(shown)), None
        if len(hidden) == 1 and not any(shown):
            return None, hidden[0]
        self.seen.add(_HIDDEN_VALUE)
        return None, _HIDDEN_VALUE


def _disclosure_notes(settings: Any, seen: set[str]) -> list[str]:
    """Footnotes for the marks that appear, and for rounding."""
    rule = settings.disclosure_rule
    notes = []
    if rule.rounds:
        notes.append(f"Counts are rounded to the nearest multiple of {rule.rounding_base}.")
    k = rule.min_cell_count
    if f"<{k}" in seen:
        notes.append(f"<{k}: a count from 1 to {k - 1}, hidden.")
    if "[c]" in seen:
        notes.append("[c]: a count hidden so that no hidden count can be worked back from the published ones.")
    if _HIDDEN_VALUE in seen:
        notes.append("[h]: a number computed from a hidden count, hidden.")
    return notes


# ---------------------------------------------------------------------------
# The cohort sentence


def _flow_groups(flow: pd.DataFrame, age_range: Any) -> tuple[int, dict[str, list[tuple[int, str]]]]:
    """Position of "persons analysed" and the flow's person counts grouped by reason.

    Keys: ``person table`` (persons of the person table), ``unknown``
    (persons of the lab table not in the person table), then the reasons
    for exclusion, in the order a reader meets them.
    """
    desc = flow["description"].astype(str).tolist()
    table = flow["table"].astype(str).tolist() if "table" in flow.columns else [""] * len(flow)
    if "persons analysed" not in desc:
        raise NeutrostatsError("cohort_sentence: expected the flow table (report.tables['attrition']) to have a "
                               f"'persons analysed' step, found the steps {desc[:5]}...; pass a Report made by "
                               "analyse()")
    last = desc.index("persons analysed")
    age = (f"outside the age range {_years(age_range[0])}–{_years(age_range[1])} years (or age unknown)"
           if age_range is not None else "outside the age range (or age unknown)")
    groups: dict[str, list[tuple[int, str]]] = {"person table": [], "unknown": [], "without a lab result": [],
                                                "without a usable ANC": [], "without an ANC in the index window": [],
                                                age: [], "with a data error": []}
    unknown = next((i for i in range(last) if table[i] == "labs" and "not in the persons table" in desc[i]), None)
    groups["person table"].append((0 if unknown is None else unknown, "persons"))
    for i in range(last + 1, len(flow)):
        if desc[i].startswith("persons in the persons table without lab rows"):
            groups["person table"].append((i, "excluded_records"))
            groups["without a lab result"].append((i, "excluded_records"))
    for i in range(last):
        if i == unknown:
            key = "unknown"
        elif table[i] == "labs":
            key = "without a usable ANC"
        elif desc[i].startswith("no usable ANC in the index window"):
            key = "without an ANC in the index window"
        elif desc[i].startswith("no usable ANC at an eligible age"):
            key = age
        else:
            key = "with a data error"
        groups[key].append((i, "excluded_persons"))
    return last, groups


def _exclusions(cells: _Cells, analysed: float | None, groups: dict[str, list[tuple[int, str]]],
                rule: Any) -> tuple[str, str]:
    """(persons in the person table, the exclusions by reason) as text.

    Every number is a count the flow table shows or follows from shown
    counts (a sum of shown counts; the person table less those analysed;
    without rounding, the one group with a hidden part as the total less the
    others); such a derived count from 1 to k - 1 reads ``<k`` too.
    """
    k = rule.min_cell_count if rule.suppresses else 0
    people, people_mark = cells.total(groups.pop("person table"))
    unknown_cells = groups.pop("unknown")
    unknown, unknown_mark = cells.total(unknown_cells) if unknown_cells else (0.0, None)
    values = {reason: cells.total(group) for reason, group in groups.items() if group}
    total = None if people is None or analysed is None else people - analysed
    open_ = [r for r, (_, mark) in values.items() if mark is not None]
    if total is None and not open_:
        total = float(sum(v or 0.0 for v, _ in values.values()))
    if total is not None and len(open_) == 1 and not rule.rounds:
        # The flow's shown counts give this group: the total less the other groups.
        values[open_[0]] = (total - sum(v or 0.0 for v, m in values.values() if m is None), None)
    parts = [(cells.derived(v, k) if mark is None else mark, reason)
             for reason, (v, mark) in values.items() if mark is not None or v]
    excluded = cells.derived(total, k) if total is not None else cells.hide()
    if len(parts) == 1 and parts[0][0] == excluded:
        text = f"{excluded} excluded, all {parts[0][1]}"
    elif parts:
        text = f"{excluded} excluded: {', '.join(f'{n} {reason}' for n, reason in parts)}"
    else:
        text = "none excluded" if excluded == "0" else f"{excluded} excluded"
    if unknown_mark is not None or unknown:
        text += f"; lab rows of {unknown_mark or cells.derived(unknown, k)} persons not in the person table ignored"
    return (people_mark if people_mark is not None else _count(people)), text


def cohort_sentence(report: Any) -> str:
    """The cohort and its flow in one sentence, from the report's flow table.

    Parameters
    ----------
    report : Report
        From :func:`~neutrostats.report.analyse` (its ``attrition`` table,
        ``marks`` and ``settings`` are read).

    Returns
    -------
    str
        Persons analysed, persons in the person table, those excluded by
        reason (lab steps: "without a usable ANC"; index window; age range;
        data errors; persons without any lab row), lab-table persons missing
        from the person table (when any), the follow-up and index. Under
        disclosure control every count is shown as the flow table shows it
        (rounded where the rule rounds, ``<k`` or ``[c]`` where hidden); a
        sum is printed only when each of its parts is shown (``[h]``
        otherwise), and the number excluded only when it is the difference
        of two shown counts; a second sentence says what the marks mean.

    Raises
    ------
    NeutrostatsError
        If the flow table has no "persons analysed" step.

    Examples
    --------
    >>> import pandas as pd
    >>> from neutrostats.report import ReportSettings
    >>> from neutrostats.report.analysis import Report
    >>> flow = pd.DataFrame({
    ...     "description": ["lab rows read", "lab rows of persons not in the persons table (data error)",
    ...                     "no usable ANC: result empty", "index date after the person's end of data (data error)",
    ...                     "persons analysed"],
    ...     "table": ["labs", "labs", "labs", "persons", "persons"],
    ...     "excluded_persons": [0, 0, 12, 19, 0], "persons": [20000, 20000, 19988, 19969, 19969]})
    >>> r = Report(ReportSettings(), {"attrition": flow}, {}, pd.DataFrame(), pd.DataFrame())
    >>> cohort_sentence(r)
    '19,969 persons analysed (20,000 in the person table; 31 excluded: 12 without a usable ANC, 19 with a data error); 4-year follow-up from the first ANC.'
    """
    settings = report.settings
    cells = _Cells(report, "attrition")
    last, groups = _flow_groups(cells.df, settings.age_range)
    analysed, analysed_mark = cells.value(last, "persons")
    people_text, flow_text = _exclusions(cells, analysed, groups, settings.disclosure_rule)
    index = _INDEX_TEXT.get(settings.index, f"the {settings.index} ANC")
    if settings.index_window is not None:
        index += f" from {settings.index_window[0]} to {settings.index_window[1]}"
    text = (f"{analysed_mark or _count(analysed)} persons analysed ({people_text} in the "
            f"person table; {flow_text}); {_years(settings.followup_years)}-year follow-up from {index}.")
    notes = _disclosure_notes(settings, {m for m in cells.seen if m in text})
    return " ".join([text, *notes])


# ---------------------------------------------------------------------------
# The headline tables


def _main_outcomes(report: Any, outcomes: Sequence[str] | None) -> list[str]:
    """The outcomes of the headline table: those asked for, else :data:`MAIN_OUTCOMES` (those analysed),
    else the first three analysed."""
    present = list(dict.fromkeys(report.tables["odds_ratios"]["outcome"].astype(str)))
    if outcomes is not None:
        chosen = [str(o) for o in ([outcomes] if isinstance(outcomes, str) else outcomes)]
        unknown = [o for o in chosen if o not in present]
        if unknown or not chosen:
            raise NeutrostatsError(f"headline_tables: outcomes must name outcomes of the report, found "
                                   f"{unknown or chosen!r}; the report has {present}; pass e.g. "
                                   f"outcomes={present[:3]!r}")
        return chosen
    ordered = [o for o in report.settings.outcome_codes if o in present] + \
        [o for o in present if o not in report.settings.outcome_codes]
    main = [o for o in MAIN_OUTCOMES if o in ordered]
    return main or ordered[:3]


def _or_text(row: pd.Series | None, flags: dict[str, set[str]]) -> str:
    """One odds-ratio cell: the estimate and interval, or what it is instead."""
    if row is None:
        return "–"
    if bool(row["is_reference"]):
        return "1 (reference)"
    estimable = row.get("estimable")
    if _missing(row["estimate"]):
        if bool(row.get("suppressed", False)):
            flags["seen"].add(_HIDDEN_VALUE)
            return _HIDDEN_VALUE
        if str(row.get("method")) == "not estimable" or (not _missing(estimable) and not bool(estimable)):
            flags["not estimable"].add(str(row.get("note")) if not _missing(row.get("note")) else "")
            return "not estimable"
        return "–"
    if not _missing(estimable) and not bool(estimable):
        # No support in the data (e.g. no events in the tier): never shown as an ordinary number.
        flags["not estimable"].add(str(row.get("note")) if not _missing(row.get("note")) else "")
        return "not estimable"
    text = _interval(row["estimate"], row["conf_low"], row["conf_high"], _ratio)
    if str(row.get("method")) == "firth":
        flags["firth"].add(str(row["outcome"]))
        text += _FIRTH_MARK
    return text


def _or_notes(settings: Any, lab: Any, reference: str, flags: dict[str, set[str]]) -> list[str]:
    h = _years(settings.followup_years)
    adjust = [_lower_first(lab(c)) for c in settings.adjust]
    notes = [
        f"n at risk: persons of the tier without the diagnosis before index. Events: persons with a first "
        f"diagnosis of the outcome in the {h} years after index.",
        f"OR: odds ratio against the reference tier ({lab.short(reference)}), with 95% confidence interval. "
        "Crude: median-unbiased (mid-p) estimate with mid-p exact interval. "
        + (f"Adjusted for {_join(adjust)} by logistic regression (Wald interval)." if adjust
           else "Adjusted: logistic regression without covariates (Wald interval)."),
    ]
    if flags["firth"]:
        names = _join([_lower_first(lab(o)) for o in sorted(flags["firth"])])
        notes.append(f"{_FIRTH_MARK} Firth's penalised logistic regression with profile penalised-likelihood "
                     f"interval ({names}): a tier has no events or only events, so logistic regression has no "
                     "finite estimate.")
    if flags["not estimable"]:
        # A row's note may hold several reasons ("no events in this tier; no events in the reference tier").
        reasons = sorted({part.strip() for r in flags["not estimable"] for part in r.split(";") if part.strip()})
        notes.append("Not estimable: the data do not support an estimate"
                     + (f" ({'; '.join(reasons)})." if reasons else "."))
    return notes


def _odds_ratio_table(report: Any, outcomes: list[str]) -> DisplayTable:
    """One block of rows per outcome (its label, then the tiers), so that the table fits a page."""
    settings, lab = report.settings, report.settings.display_labels
    sizes = _Cells(report, "tier_prevalence")
    ors = _Cells(report, "odds_ratios")
    tiers = sizes.df["group"].astype(str).tolist()
    key = {(str(o), str(m), str(g)): i for i, (o, m, g) in
           enumerate(zip(ors.df["outcome"], ors.df["model"], ors.df["group"]))}
    flags: dict[str, set[str]] = {"firth": set(), "not estimable": set(), "seen": set()}
    rows: list[list[str]] = []
    indent: list[int] = []
    for o in outcomes:
        rows.append([lab(o), "", "", "", ""])
        indent.append(0)
        for t in tiers:
            crude, adjusted = key.get((o, "crude", t)), key.get((o, "adjusted", t))
            rows.append([lab(t), ors.count(crude, "n"), ors.count(crude, "n_event"),
                         _or_text(None if crude is None else ors.df.iloc[crude], flags),
                         _or_text(None if adjusted is None else ors.df.iloc[adjusted], flags)])
            indent.append(1)
    notes = _or_notes(settings, lab, tiers[0] if tiers else "", flags)
    notes += _disclosure_notes(settings, sizes.seen | ors.seen | flags["seen"])
    frame = pd.DataFrame(rows, columns=["Outcome and ANC tier at index", "n at risk", "Events, n",
                                        "Crude OR (95% CI)", "Adjusted OR (95% CI)"])
    return DisplayTable("headline_odds_ratios", "Main results by ANC tier at index", frame,
                        align=("l", "r", "r", "r", "r"), notes=tuple(notes), indent=tuple(indent))


def _at_horizon(df: pd.DataFrame, h: float, **equal: str) -> dict[str, int]:
    """Row position per tier of the rows at time ``h`` (and the given column values)."""
    keep = np.isclose(df["time"].to_numpy(dtype=float), h)
    for col, value in equal.items():
        keep &= (df[col].astype(str) == value).to_numpy()
    return {str(g): int(i) for i, g in zip(np.flatnonzero(keep), df["group"].to_numpy()[keep])}


def _risk_text(cells: _Cells, pos: int | None, cols: tuple[str, str, str], seen: set[str]) -> str:
    """``"5.5 (5.2–5.8)"`` (percent) from a proportion and its interval; ``[h]`` where hidden."""
    if pos is None:
        return "–"
    row = cells.df.iloc[pos]
    if _missing(row[cols[0]]):
        if bool(row.get("suppressed", False)):
            seen.add(_HIDDEN_VALUE)
            return _HIDDEN_VALUE
        return "–"
    return fmt_percent_ci(row[cols[0]], row[cols[1]], row[cols[2]])


def _risk_table(report: Any) -> DisplayTable:
    settings, lab = report.settings, report.settings.display_labels
    h, o = settings.followup_years, settings.competing_outcome
    sizes, mort, cif = (_Cells(report, n) for n in ("tier_prevalence", "mortality", "cumulative_incidence"))
    tiers = sizes.df["group"].astype(str).tolist()
    at_m = _at_horizon(mort.df, h)
    at_c = _at_horizon(cif.df, h, outcome=o) if len(cif.df) else {}
    seen: set[str] = set()
    years = _years(h)
    outcome = lab(o)
    frame = pd.DataFrame({
        lab("tier"): [lab(t) for t in tiers],
        "n": [sizes.count(i, "n") for i in range(len(tiers))],
        "Deaths": [mort.count(at_m.get(t), "n_event") for t in tiers],
        f"Mortality at {years} years, % (95% CI)": [
            _risk_text(mort, at_m.get(t), ("mortality", "mortality_conf_low", "mortality_conf_high"), seen)
            for t in tiers],
        f"{outcome} at {years} years, % (95% CI)": [
            _risk_text(cif, at_c.get(t), ("estimate", "conf_low", "conf_high"), seen) for t in tiers],
    })
    notes = [
        f"Deaths: deaths from any cause in the {years} years after index. Mortality: 1 − Kaplan–Meier survival "
        f"at {years} years, with log-log 95% confidence interval.",
        f"{outcome}: absolute risk (Aalen–Johansen cumulative incidence) of a first diagnosis in the {years} years "
        "after index, with death as a competing risk and log-transformed 95% confidence interval; persons with the "
        "diagnosis before index are excluded from the risk.",
        *_disclosure_notes(settings, sizes.seen | mort.seen | cif.seen | seen),
    ]
    title = f"{years}-year mortality and absolute risk of {_lower_first(outcome)}"
    return DisplayTable("headline_risks", title, frame, align=("l",) + ("r",) * (frame.shape[1] - 1),
                        notes=tuple(notes))


def headline_tables(report: Any, *, outcomes: Sequence[str] | None = None) -> list[DisplayTable]:
    """The study's results in two tables, in the shape of Andersen et al. 2016.

    Parameters
    ----------
    report : Report
        From :func:`~neutrostats.report.analyse` (its ``tier_prevalence``,
        ``odds_ratios``, ``mortality`` and ``cumulative_incidence`` tables,
        ``marks`` and ``settings`` are read; labels from
        ``report.settings.display_labels``).
    outcomes : sequence of str, optional
        Outcomes of the first table, in order; default :data:`MAIN_OUTCOMES`
        (those the report has), or the report's first three outcomes when it
        has none of them.

    Returns
    -------
    list of DisplayTable
        ``headline_odds_ratios`` ("Main results by ANC tier at index"): one
        row per tier (reference first, labelled with its range); columns
        the tier, n, then per outcome the events and the crude and adjusted
        OR (95% CI), 2 decimals. The reference tier reads "1 (reference)",
        an estimate without support "not estimable", a Firth estimate has
        the mark †. ``headline_risks`` ("4-year mortality and absolute risk
        of haematological malignancy", the horizon from
        ``settings.followup_years`` and the outcome from
        ``settings.competing_outcome``): per tier n, deaths, mortality % (95%
        CI) and the cumulative incidence % (95% CI) with death competing, 1
        decimal. Counts have thousands separators; a hidden count shows its
        mark (``<k``, ``[c]``), a number computed from one ``[h]``;
        footnotes say what each estimate is and what the marks mean.

    Raises
    ------
    NeutrostatsError
        If ``outcomes`` names an outcome the report does not have.

    Examples
    --------
    >>> import pandas as pd
    >>> from neutrostats.report import ReportSettings
    >>> from neutrostats.report.analysis import Report
    >>> ors = pd.DataFrame({"outcome": "hiv", "model": ["crude", "crude", "adjusted", "adjusted"],
    ...     "group": ["normal", "mild"] * 2, "n": [1000, 50] * 2, "n_event": [12, 0] * 2,
    ...     "estimate": [1.0, 0.0, 1.0, 2.5], "conf_low": [None, 0.0, None, 0.1],
    ...     "conf_high": [None, 9.1, None, 20.0], "method": ["midp", "midp", "firth", "firth"],
    ...     "estimable": [True, False, True, False], "note": [None, "no events in this tier"] * 2,
    ...     "is_reference": [True, False] * 2})
    >>> sizes = pd.DataFrame({"group": ["normal", "mild"], "n": [1000, 50]})
    >>> empty = pd.DataFrame(columns=["group", "time"])
    >>> r = Report(ReportSettings(scheme="clinical"), {"tier_prevalence": sizes, "odds_ratios": ors,
    ...            "mortality": empty, "cumulative_incidence": empty}, {}, pd.DataFrame(), pd.DataFrame())
    >>> t = headline_tables(r)[0]
    >>> t.frame.iloc[:, [0, 1, 2, 3]].values.tolist()
    [['HIV', '', '', ''], ['Normal (≥1.5 ×10⁹/L)', '1,000', '12', '1 (reference)'], ['Mild (1.0 to <1.5 ×10⁹/L)', '50', '0', 'not estimable']]
    """
    chosen = _main_outcomes(report, outcomes)
    return [_odds_ratio_table(report, chosen), _risk_table(report)]
