"""Forest plots of odds ratios by tier and outcome, one or several panels on one shared log axis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import pandas as pd

from neutrostats.cohort.labels import Labels
from neutrostats.core.validate import require_columns, require_dataframe
from neutrostats.errors import NeutrostatsError
from neutrostats.plotting.curves import _figure, _label, _resolve
from neutrostats.plotting.style import NOTE_COLOR, SMALL, figure_style, style_axes
from neutrostats.stats.odds_ratios import OR_COLUMNS
from neutrostats.stats.tableone import HIDDEN_VALUE

if TYPE_CHECKING:  # matplotlib is imported by the functions only, never at import time
    from matplotlib.axes import Axes

__all__ = ["plot_forest"]

_INK = "#252525"
_GREY = "0.6"
_NICE = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
_NOTHING = "nothing to draw: every estimate is suppressed or not estimable"


def _fmt(v: float) -> str:
    """An odds ratio with two decimals (none from 100, with thousands separators), ``<0.01``, ``∞``."""
    if not np.isfinite(v):
        return "∞" if v > 0 else "–"
    if 0 < v < 0.005:
        return "<0.01"
    return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"


def _layout(panels: Sequence[pd.DataFrame]) -> list[tuple[str, Any]]:
    """Rows top to bottom: ("header", outcome) then ("row", (outcome, group)) per tier, outcomes in first-seen order.

    The union over the panels, so that the same row is at the same height in every panel.
    """
    outcomes: dict[Any, list[Any]] = {}
    for df in panels:
        for o, g in zip(df["outcome"], df["group"]):
            groups = outcomes.setdefault(o, [])
            if g not in groups:
                groups.append(g)
    rows: list[tuple[str, Any]] = []
    for o, groups in outcomes.items():
        rows.append(("header", o))
        rows += [("row", (o, g)) for g in groups]
    return rows


def _edges(panels: Sequence[pd.DataFrame]) -> tuple[float, float]:
    """The shared x-range: what is drawn as an estimate with support (and its interval), with a margin."""
    shown = []
    for df in panels:
        ok = df["estimable"].astype("boolean").fillna(False).to_numpy(dtype=bool) & ~df["is_reference"].astype(
            bool).to_numpy()
        for col in ("estimate", "conf_low", "conf_high"):
            shown.append(df[col].to_numpy(dtype=float)[ok])
    v = np.concatenate(shown) if shown else np.array([])
    v = v[np.isfinite(v) & (v > 0)]
    lo = min(0.5, float(v.min()) / 1.5) if len(v) else 0.1
    hi = max(2.0, float(v.max()) * 1.5) if len(v) else 10.0
    return lo, hi


def _row_text(r: Any, good: bool, bad: bool) -> str:
    e, lo, hi = (float(r[c]) for c in ("estimate", "conf_low", "conf_high"))
    if bool(r["is_reference"]):
        return "reference"
    if bad:
        return "not estimable"
    if np.isnan(e):
        # Hidden by disclosure control (or missing): the mark, never a number.
        return HIDDEN_VALUE if np.isnan(lo) and np.isnan(hi) else "–"
    return f"{_fmt(e)} ({_fmt(lo)}–{_fmt(hi)})"


def _draw_row(ax: Axes, yi: float, r: Any, edges: tuple[float, float], good: bool) -> tuple[bool, bool]:
    """One row's interval and estimate; open ends and estimates off the axis end in a caret at its edge."""
    lo_edge, hi_edge = edges
    e, lo, hi = (float(r[c]) for c in ("estimate", "conf_low", "conf_high"))
    color = _INK if good else _GREY
    drawn = firth = False
    if np.isfinite(lo) or np.isfinite(hi):
        a = lo if np.isfinite(lo) and lo > lo_edge else lo_edge
        b = hi if np.isfinite(hi) and hi < hi_edge else hi_edge
        ax.plot([a, b], [yi, yi], color=color, lw=1.1, solid_capstyle="butt")
        # Interval ends beyond the axis (0, infinity or just far): a caret with its tip on the edge.
        if a == lo_edge:
            ax.plot([lo_edge], [yi], marker=4, color=color, ms=5, ls="none")
        if b == hi_edge:
            ax.plot([hi_edge], [yi], marker=5, color=color, ms=5, ls="none")
        drawn = True
    if good and (np.isfinite(e) or e == np.inf):
        is_firth = str(r["method"]) == "firth"
        if e <= lo_edge or e >= hi_edge:
            # An estimate off the axis points off it instead of posing as a value at its edge.
            ax.plot([lo_edge if e <= lo_edge else hi_edge], [yi], marker=4 if e <= lo_edge else 5, color=_INK,
                    ms=8, ls="none")
        else:
            style: dict[str, Any] = (dict(marker="D", mfc="white", mec=_INK, mew=1.1, ms=5.5) if is_firth
                                     else dict(marker="s", ms=5))
            ax.plot([e], [yi], color=_INK, ls="none", **style)
            firth = is_firth
        drawn = True
    return drawn, firth


def _text_column(ax: Axes, ys: Sequence[float], texts: Sequence[str], header: str) -> Axes:
    """The "OR (95% CI)" column right of the axes, in an inset Axes (a child: layouts count it, ax.texts stay notes)."""
    from matplotlib import transforms

    tax = ax.inset_axes((1.0, 0.0, 0.001, 1.0))
    tax.set_axis_off()
    fig: Any = ax.figure
    tr = transforms.blended_transform_factory(
        transforms.offset_copy(ax.transAxes, fig, x=6, units="points"), ax.transData)
    for yi, text in zip(ys, texts):
        if text:
            tax.text(1.0, yi, text, transform=tr, ha="left", va="center", fontsize=SMALL,
                     color=_INK if text[0].isdigit() or text[0] == "<" else NOTE_COLOR)
    top = transforms.blended_transform_factory(
        transforms.offset_copy(ax.transAxes, fig, x=6, y=2, units="points"), ax.transAxes)
    tax.text(1.0, 1.0, header, transform=top, ha="left", va="bottom", fontsize=SMALL, fontweight="bold")
    return tax


def _panel(ax: Axes, df: pd.DataFrame, rows: list[tuple[str, Any]], edges: tuple[float, float], *, title: str | None,
           labels: Labels, first: bool, xlabel: str, header: str) -> Axes:
    """One panel: every row of the shared layout, this table's estimates."""
    from matplotlib import transforms
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, NullLocator

    style_axes(ax)
    n = len(rows)
    ys = np.arange(n, dtype=float)[::-1]
    at = {key: y for (kind, key), y in zip(rows, ys) if kind == "row"}
    flag = df["estimable"].astype("boolean")
    # A masked (suppressed) flag is no claim of support, nor a claim of its absence.
    oks = flag.fillna(False).to_numpy(dtype=bool)
    bads = (~flag).fillna(False).to_numpy(dtype=bool)
    texts = {y: "" for y in ys}
    drawn = firth_drawn = False
    for (_, r), good, bad in zip(df.iterrows(), oks, bads):
        yi = at[(r["outcome"], r["group"])]
        texts[yi] = _row_text(r, bool(good), bool(bad))
        if bool(r["is_reference"]):
            continue
        d, f = _draw_row(ax, yi, r, edges, bool(good and not bad))
        drawn |= d
        firth_drawn |= f
    ax.axvline(1.0, color="0.5", ls="--", lw=0.8, zorder=0)
    ax.set_xscale("log")
    ax.set_xlim(*edges)
    ticks = [t for t in _NICE if edges[0] <= t <= edges[1]]
    if len(ticks) > 8:
        # A wide axis: powers of 10, and 0.5, 2, 5 near 1 (short labels); "50" beside "100" ran together.
        ticks = [t for t in ticks if float(np.log10(t)).is_integer() or t in (0.5, 2, 5)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_yticks(ys)
    ax.set_ylim(-0.7, n - 0.3)
    ax.tick_params(axis="y", length=0)
    ax.spines["left"].set_visible(False)
    if first:
        names = [_label(labels, key) if kind == "header" else _label(labels, key[1]) for kind, key in rows]
        ax.set_yticklabels(names)
        for (kind, _), tick in zip(rows, ax.get_yticklabels()):
            tick.set_fontweight("bold" if kind == "header" else "normal")
    else:
        ax.set_yticklabels([])
    ax.set_xlabel(xlabel)
    if title:
        # Above the text column's header, which sits on the top edge of the axes: a long title would run into it.
        ax.set_title(title, pad=SMALL + 10)
    _text_column(ax, list(ys), [texts[y] for y in ys], header)
    if not drawn:
        ax.text(0.5, 0.5, _NOTHING, transform=ax.transAxes, ha="center", va="center", fontsize=SMALL + 1,
                color=NOTE_COLOR, wrap=True)
    if firth_drawn:
        ax.legend(handles=[Line2D([], [], marker="D", ls="none", color=_INK, mfc="white", mew=1.1,  # type: ignore[call-overload]
                                  label="Firth (penalised)")], loc="upper right", bbox_to_anchor=(1.0, 0.0),
                  # Below the axis label (tick labels and label take about 30 points), whatever the height.
                  bbox_transform=transforms.offset_copy(ax.transAxes, ax.figure, y=-34, units="points"),  # type: ignore[arg-type]
                  borderaxespad=0.0, fontsize=7, frameon=False)
    return ax


def _panels(or_table: Any, title: str | None) -> list[tuple[str | None, pd.DataFrame]]:
    fn = "plot_forest"
    items = list(or_table.items()) if isinstance(or_table, Mapping) else [(title, or_table)]
    if not items:
        raise NeutrostatsError(f"{fn}: expected a table or a mapping of panel title -> table, found an empty mapping; "
                               "pass e.g. {'Crude': crude, 'Adjusted': adjusted}")
    out = []
    for name, df in items:
        df = require_dataframe(df, fn, "or_table" if name is title else f"or_table[{name!r}]")
        require_columns(df, OR_COLUMNS, fn, "Pass the output of odds_ratio_table.")
        out.append((None if name is None else str(name), df.reset_index(drop=True)))
    return out


@overload
def plot_forest(or_table: pd.DataFrame, ax: Axes | None = None, *, title: str | None = ...,
                labels: Labels | None = ..., xlabel: str = ..., estimate_header: str = ...) -> Axes: ...
@overload
def plot_forest(or_table: Mapping[str, pd.DataFrame], ax: Sequence[Axes] | None = None, *, title: str | None = ...,
                labels: Labels | None = ..., xlabel: str = ..., estimate_header: str = ...) -> list[Axes]: ...
def plot_forest(or_table: Any, ax: Any = None, *, title: str | None = None, labels: Labels | None = None,
                xlabel: str = "Odds ratio (log scale)", estimate_header: str = "OR (95% CI)") -> Any:
    """Forest plot: OR and interval per tier per outcome on a log axis, with an "OR (95% CI)" column; one or more panels.

    Parameters
    ----------
    or_table : pandas.DataFrame or mapping of str to DataFrame
        Output of :func:`odds_ratio_table` (or :func:`odds_ratios_by_tier`);
        a mapping of panel title -> table (e.g. ``{"Crude": crude,
        "Adjusted": adjusted}``) draws the panels side by side on one
        shared x-axis (the same limits and ticks), with the same rows at
        the same heights (labelled in the first panel only).
        Each outcome is a bold header row followed by its tiers. A
        reference row reads "reference" (no marker); an estimate is a
        filled square, or an open diamond for ``method="firth"`` (with a
        legend entry "Firth (penalised)"); a row that is not ``estimable``
        reads "not estimable", with its interval in grey where the method
        gives one and no marker; a row whose numbers are hidden by
        disclosure control reads ``[h]``. An interval end beyond the axis
        (0, infinite, or far out) and an estimate beyond it (0 or
        infinite) end in a caret at the axis edge, never a clipped marker.
        The axis is set by the estimates with support and their intervals.
        When nothing at all can be drawn in a panel it says so in a
        centred note.
    ax : matplotlib Axes (or one per panel), optional
        Drawn into; a new figure otherwise (constrained layout).
    title : str, optional
        Title of a single panel (a mapping's keys title its panels).
    labels : neutrostats.Labels, optional
        Labels of outcomes and tiers (e.g. ``labels_for("andersen2016")``;
        default ``labels_for(None)``: tier names without ranges); a name
        they do not know reads as itself.
    xlabel : str, default "Odds ratio (log scale)"
    estimate_header : str, default "OR (95% CI)"
        Header of the text column.

    Returns
    -------
    matplotlib.axes.Axes, or a list of them (one per panel) for a mapping

    Raises
    ------
    NeutrostatsError
        If a table lacks a column, or ``ax`` does not give one Axes per panel.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from neutrostats import odds_ratio_table
    >>> t = pd.DataFrame({"tier": pd.Categorical(["normal", "mild"] * 50, categories=["normal", "mild"], ordered=True),
    ...                   "a": [0, 1, 1, 0] * 25, "b": [1, 0, 0, 0] * 25})
    >>> ax = plot_forest(odds_ratio_table(t, ["a", "b"], method="midp"))
    >>> ax.get_xscale(), [x.get_text() for x in ax.get_yticklabels()]
    ('log', ['a', 'Normal', 'Mild', 'b', 'Normal', 'Mild'])
    >>> [x.get_text() for x in ax.child_axes[0].texts]  # nobody in the mild tier has b
    ['reference', '1.00 (0.45–2.21)', 'reference', 'not estimable', 'OR (95% CI)']
    """
    import matplotlib.pyplot as plt

    panels = _panels(or_table, title)
    frames = [df for _, df in panels]
    lab, _ = _resolve(labels, None, [])
    rows = _layout(frames)
    edges = _edges(frames)
    with figure_style():
        if ax is None:
            fig = plt.figure(figsize=(2.4 + 3.4 * len(panels), 0.2 * len(rows) + 1.2), layout="constrained")
            axes = list(np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)[0]))
        else:
            axes = list(ax) if isinstance(ax, Sequence | np.ndarray) else [ax]
            if len(axes) != len(panels):
                raise NeutrostatsError(f"plot_forest: expected ax= with one Axes per panel ({len(panels)}), found "
                                       f"{len(axes)}; pass ax=None or one Axes per table")
            if (root := _figure(axes[0])).get_layout_engine() is None:
                root.set_layout_engine("constrained")
        for i, (a, (name, df)) in enumerate(zip(axes, panels)):
            _panel(a, df, rows, edges, title=name, labels=lab, first=i == 0, xlabel=xlabel, header=estimate_header)
    return axes if isinstance(or_table, Mapping) else axes[0]
