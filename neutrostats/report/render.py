"""Writing a :class:`~neutrostats.report.Report`: HTML, JSON, CSV tables and figures.

Everything here is deterministic for a given report: no time stamps in
``results.json`` or the tables, fixed SVG ids and no SVG date, so the same
inputs and settings give the same bytes. The run time, when given, goes into
the HTML only. Every user-supplied string reaches the HTML through Jinja2's
autoescaping or pandas' ``to_html(escape=True)``.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.jsonable import plain
from neutrostats.stats.tableone import HIDDEN_VALUE

#: Version of the layout of ``results.json``; raised when a key changes meaning. 2.0: the tables use the
#: library's column vocabulary (:mod:`neutrostats.core.columns`: ``group``, ``n_event``, ``n_competing``).
SCHEMA_VERSION = "2.0"

#: Integer count columns (formatted with thousands separators; "<k" when hidden).
_COUNTS = {"n", "n_event", "n_competing", "n_risk", "observed", "rows", "excluded_persons", "excluded_lab_rows",
           "excluded_records", "persons", "lab_rows", "missing", "denominator"}

_TITLES = {
    "inputs": "Input files",
    "attrition": "Flow of persons and lab rows",
    "tier_prevalence": "ANC tier at index",
    "table_one": "Table 1 (tidy)",
    "table_one_smd": "Standardized mean differences",
    "odds_ratios": "Odds ratios",
    "trend_tests": "Trend tests across tiers",
    "mortality": "Mortality",
    "at_risk": "Numbers at risk",
    "logrank": "Log-rank test: observed and expected deaths",
    "cox": "Cox proportional hazards: hazard ratios",
    "ph_test": "Proportional-hazards check (cox.zph score test)",
    "cumulative_incidence": "Cumulative incidence with death as competing risk",
    "tests": "Tests",
}


# ---------------------------------------------------------------------------
# JSON


def table_records(df: pd.DataFrame) -> dict[str, Any]:
    """A table as ``{"columns": [...], "rows": [[...], ...]}`` of plain values."""
    cols = [str(c) for c in df.columns]
    arrays = [df[c].astype(object).to_numpy() for c in df.columns]
    rows = [[plain(a[i]) for a in arrays] for i in range(len(df))]
    return {"columns": cols, "rows": rows}


def results_dict(report) -> dict[str, Any]:
    """The body of ``results.json``."""
    from neutrostats._version import __version__

    rule = report.settings.disclosure_rule
    return {
        "schema_version": SCHEMA_VERSION,
        "neutrostats_version": __version__,
        "settings": plain(report.settings.to_dict()),
        "disclosure": {
            **plain(report.disclosure or rule.to_dict()),
            "marks": {f"<{rule.min_cell_count}": "a count from 1 to min_cell_count - 1 (null in the tables)",
                      "[c]": "a count of min_cell_count or more, hidden so that no hidden count can be worked "
                             "back from the published ones (null in the tables)",
                      "[h]": "a value computed from a hidden count (null in the tables)"},
            "columns": "each table's 'hidden' column names the hidden counts of the row with their mark",
        },
        "n_persons": report.n_persons,
        "tables": {name: table_records(df) for name, df in report.tables.items()},
        "warnings": [{k_: plain(v) for k_, v in w.items()} for w in report.warnings.to_dict("records")],
    }


# ---------------------------------------------------------------------------
# Display formatting


def _fmt_count(v: Any) -> str:
    return f"{int(v):,}"


def _fmt_p(v: float) -> str:
    if v < 0.001:
        return "<0.001"
    return f"{v:.3f}"


def _fmt_ratio(v: float) -> str:
    if math.isinf(v):
        return "∞"
    return f"{v:.2f}"


def _formatter(name: str, col: str):
    if col in _COUNTS:
        return _fmt_count
    if col == "p_value":
        return _fmt_p
    if col in ("percent", "percent_classified"):
        return lambda v: f"{v:.1f}"
    # Survival (the mortality table's estimate) and cumulative incidence are proportions.
    if col.startswith("mortality") or (name in ("mortality", "cumulative_incidence") and col != "time"):
        return lambda v: f"{100 * v:.1f}%"
    if col in ("estimate", "conf_low", "conf_high"):
        return _fmt_ratio
    if col in ("smd",):
        return lambda v: f"{v:.3f}"
    if col in ("time", "df"):
        return lambda v: f"{v:g}"
    return lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)


def display_table(name: str, df: pd.DataFrame, k: int,
                  marks: Mapping[tuple[int, str], str] | None = None) -> pd.DataFrame:
    """Strings for the HTML: a hidden count shows its mark ("<k" or "[c]"), a value computed from
    hidden counts "[h]", a missing value "–"."""
    suppressed = df["suppressed"].to_numpy(dtype=bool) if "suppressed" in df.columns else np.zeros(len(df), bool)
    marks = marks or {}
    not_estimable = _not_estimable(df)
    out = {}
    for col in df.columns:
        if col in ("suppressed", "hidden", "note"):
            continue
        fmt = _formatter(name, str(col))
        values = df[col].astype(object).to_numpy()
        cells = []
        for row, (v, hidden) in enumerate(zip(values, suppressed)):
            missing = v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
            if missing:
                mark = marks.get((row, str(col)))
                if not mark and col == "estimate" and not_estimable[row]:
                    mark = not_estimable[row]
                cells.append(mark if mark else (HIDDEN_VALUE if hidden else "–"))
            elif isinstance(v, (bool, np.bool_)):
                cells.append("yes" if v else "no")
            elif isinstance(v, (int, float, np.integer, np.floating)):
                cells.append(fmt(v))
            else:
                cells.append(str(v))
        out[str(col)] = cells
    return pd.DataFrame(out)


def _not_estimable(df: pd.DataFrame) -> list[str]:
    """Per row: "not estimable (reason)" where an estimate has no support in the data, else ""."""
    if "estimable" not in df.columns:
        return [""] * len(df)
    notes = df["note"].astype(object).tolist() if "note" in df.columns else [""] * len(df)
    return [f"not estimable ({n})" if (e is False or e is np.False_) and isinstance(n, str) and n
            else ("not estimable" if (e is False or e is np.False_) else "")
            for e, n in zip(df["estimable"].astype(object), notes)]


def _or_interval(ref: bool, e: str, lo: str, hi: str, method: str, reason: str, hidden: bool) -> str:
    """One OR cell: the estimate and interval, labelled where it is not an ordinary estimate."""
    if ref:
        return "reference"
    if hidden or e in ("–", HIDDEN_VALUE):
        return HIDDEN_VALUE if hidden else "–"
    if method == "not estimable":
        return "not estimable"
    if method == "firth":
        # Finite only because of the penalty when a tier has no events: say so next to it.
        return f"{e} ({lo}–{hi}), Firth" + (f"; {reason.removeprefix('not estimable ')}" if reason else "")
    if reason:
        return reason
    return f"{e} ({lo}–{hi})"


def _or_display(or_table: pd.DataFrame, k: int, marks: Mapping[tuple[int, str], str] | None = None) -> pd.DataFrame:
    """Crude and adjusted ORs side by side, one row per outcome and tier."""
    d = display_table("odds_ratios", or_table, k, marks)
    reasons = _not_estimable(or_table)
    hidden = or_table["estimate"].isna().to_numpy() & or_table["suppressed"].to_numpy(dtype=bool) \
        if "suppressed" in or_table.columns else np.zeros(len(or_table), dtype=bool)
    d["interval"] = [
        _or_interval(bool(ref), e, lo, hi, str(m), reason, bool(h))
        for ref, e, lo, hi, m, reason, h in zip(or_table["is_reference"], d["estimate"], d["conf_low"],
                                                d["conf_high"], or_table["method"], reasons, hidden)
    ]
    d["p"] = ["" if ref else p for ref, p in zip(or_table["is_reference"], d["p_value"])]
    crude = d[or_table["model"].to_numpy() == "crude"].reset_index(drop=True)
    adj = d[or_table["model"].to_numpy() == "adjusted"].reset_index(drop=True)
    return pd.DataFrame({
        "outcome": crude["outcome"], "tier": crude["group"], "n at risk": crude["n"], "events": crude["n_event"],
        "crude OR (95% CI), mid-p": crude["interval"], "p (crude)": crude["p"],
        "adjusted OR (95% CI)": adj["interval"], "p (adjusted)": adj["p"],
    })


def _html_table(df: pd.DataFrame) -> str:
    from markupsafe import Markup

    return Markup(df.to_html(index=False, escape=True, border=0, classes="tbl", na_rep="–"))


# ---------------------------------------------------------------------------
# Figures


def _figure_bytes(fig, fmt: str) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    # Fixed SVG ids and no date: the same figure gives the same bytes.
    with plt.rc_context({"svg.hashsalt": "neutrostats", "svg.fonttype": "none"}):
        metadata = {"Date": None} if fmt == "svg" else None
        fig.savefig(buf, format=fmt, dpi=150 if fmt == "png" else None, bbox_inches="tight", metadata=metadata)
    return buf.getvalue()


# ---------------------------------------------------------------------------
# HTML


def render_html(report, *, standalone: bool = True, run_info: Mapping[str, str] | None = None,
                images: Mapping[str, bytes] | None = None) -> str:
    """The report as one HTML page (``standalone``) or as a fragment for Jupyter."""
    import jinja2

    from neutrostats._version import __version__

    rule = report.settings.disclosure_rule
    k = rule.min_cell_count if rule.suppresses else 0
    if images is None:
        images = {name: _figure_bytes(fig, "png") for name, fig in report.figures.items()}
    figures = {name: "data:image/png;base64," + base64.b64encode(png).decode("ascii")
               for name, png in images.items()}
    t = report.tables
    marks = getattr(report, "marks", {}) or {}
    tables = {name: _html_table(display_table(name, df, k, marks.get(name))) for name, df in t.items()
              if name not in ("odds_ratios", "table_one", "table_one_smd")}
    tables["odds_ratios"] = _html_table(_or_display(t["odds_ratios"], k, marks.get("odds_ratios")))
    tables["table_one"] = _html_table(report.table_one_display.reset_index()
                                      if report.table_one_display.index.name else report.table_one_display)
    settings = pd.DataFrame(
        [(key, json.dumps(plain(v), ensure_ascii=False)) for key, v in report.settings.to_dict().items()],
        columns=["setting", "value"],
    )
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("neutrostats.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    template = env.get_template("report.html.j2")
    return template.render(
        standalone=standalone,
        version=__version__,
        run_info=dict(run_info or {}),
        settings_table=_html_table(settings),
        report=report,
        k=k,
        rule=rule,
        disclosure=report.disclosure or {},
        tables=tables,
        titles=_TITLES,
        figures=figures,
        warnings=report.warnings.to_dict("records"),
    )


def write_outputs(report, out_dir: Path, *, run_info: Mapping[str, str] | None = None) -> Path:
    """Write every output file of ``report`` into ``out_dir``, completely or not at all.

    The files go into a temporary sibling folder with ``manifest.json`` last
    and replace ``out_dir`` in one step (:class:`~neutrostats.core.output.AtomicFolder`);
    tables are safe CSVs (:func:`~neutrostats.core.output.to_safe_csv`).
    """
    from neutrostats.core.output import AtomicFolder

    results = results_dict(report)
    with AtomicFolder(out_dir, fn="write_outputs") as folder:
        # The rule travels with every table, so a CSV copied out alone still says how it was controlled.
        rule_text = report.settings.disclosure_rule.describe()
        for name, df in report.tables.items():
            folder.write_csv(f"tables/{name}.csv", df.assign(disclosure=rule_text))
        images = {}
        for name, fig in report.figures.items():
            for fmt in ("png", "svg"):
                data = _figure_bytes(fig, fmt)
                folder.write_bytes(f"figures/{name}.{fmt}", data)
                if fmt == "png":
                    images[name] = data
        body = json.dumps(results, indent=1, ensure_ascii=False, allow_nan=False)
        folder.write_text("results.json", body + "\n")
        html = render_html(report, standalone=True, run_info=run_info, images=images)
        folder.write_text("report.html", html)
        folder.commit(settings=results["settings"], disclosure=results["disclosure"])
    return out_dir
