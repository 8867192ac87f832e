"""Figures: Kaplan-Meier curves with numbers at risk, cumulative incidence curves and forest plots of odds ratios.

matplotlib is imported inside each function, so importing neutrostats does
not import it. The functions draw the tidy tables of :mod:`neutrostats.stats`;
they compute no estimate of their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from neutrostats.core.validate import require_columns, require_dataframe
from neutrostats.stats.competing import CI_COLUMNS
from neutrostats.stats.odds_ratios import OR_COLUMNS
from neutrostats.stats.survival import KM_COLUMNS, at_risk_table

if TYPE_CHECKING:  # matplotlib is imported by the functions only, never at import time
    from matplotlib.axes import Axes

__all__ = ["plot_km", "plot_cumulative_incidence", "plot_forest"]


def _not_drawn(ax: Axes, min_cell_count: int = 0, *, ylabel: str = "", xlabel: str = "",
               title: str | None = None) -> Axes:
    """Empty axes with a centred note saying why the figure is not drawn (plot_km, plot_cumulative_incidence).

    A report keeps the figure, with the reason, instead of failing on it.
    """
    note = (f"not drawn: too few persons or events to show without disclosing counts below {int(min_cell_count)}"
            if min_cell_count and min_cell_count > 0 else "not drawn: no finite estimate to show")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.35", wrap=True)
    return ax


def _all_hidden(at_risk: pd.DataFrame) -> bool:
    """No positive number at risk is shown (rows of 0 are: they disclose no person)."""
    shown = ~at_risk["suppressed"].astype(bool).to_numpy() & (
        pd.to_numeric(at_risk["n_risk"]).fillna(0).to_numpy(dtype=float) > 0)
    return len(at_risk) > 0 and not shown.any()


def _at_risk_mark(row: Any, k: int) -> str:
    """The mark of a hidden number at risk: its own (``hidden`` column of a report's table) or ``<k``."""
    from neutrostats.disclosure.cells import mark_in

    return mark_in(row.get("hidden") if hasattr(row, "get") else None, "n_risk") or f"<{k}"


def plot_km(
    km_table: pd.DataFrame,
    ax: Axes | None = None,
    *,
    risk_table: bool = True,
    conf_int: bool = True,
    times: Any = None,
    min_cell_count: int = 0,
    title: str | None = None,
    xlabel: str = "time",
    at_risk: pd.DataFrame | None = None,
) -> Axes:
    """Kaplan-Meier curves with the numbers at risk under the x-axis ticks.

    Parameters
    ----------
    km_table : pandas.DataFrame
        Output of :func:`kaplan_meier`.
    ax : matplotlib Axes, optional
    risk_table : bool, default True
        Print the numbers at risk per group under the x-axis, aligned with
        the ticks (the same numbers as :func:`at_risk_table`).
    conf_int : bool, default True
        Shade the confidence band.
    times : sequence of float, optional
        Tick positions (default: matplotlib's ticks within the data range).
    min_cell_count : int, default 0
        Hide at-risk numbers under this count (shown as "<k").
        Without ``ax`` the new figure's bottom margin makes room for the
        numbers at risk; with ``ax`` leave room yourself (or save with
        ``bbox_inches="tight"``). When every number at risk would be
        hidden (every count in ``km_table`` is below it, or every positive
        count of the at-risk table is suppressed), the curves would show
        those counts in their steps: nothing is drawn but a note.
    title, xlabel : str
    at_risk : pandas.DataFrame, optional
        An :func:`at_risk_table` to print instead of the one computed from
        ``km_table``: curves drawn from coarsened times (see
        :func:`~neutrostats.disclosure.coarsen_event_times`) keep the exact
        at-risk numbers that tables elsewhere show, so the two never
        differ by a small count. Its ``time`` values become the ticks.

    Returns
    -------
    matplotlib.axes.Axes
        With a centred note instead of curves when there is nothing to
        draw: an empty ``km_table`` (e.g. every time hidden by
        :func:`~neutrostats.disclosure.coarsen_event_times`), no finite
        estimate, or every number at risk hidden (see ``min_cell_count``).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from neutrostats import kaplan_meier
    >>> km = kaplan_meier(pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0]}), "t", "e")
    >>> ax = plot_km(km, times=[0, 2, 4])
    >>> [t.get_text() for t in ax.texts if t.get_text().isdigit()]
    ['5', '4', '1']
    >>> [t.get_text() for t in plot_km(km, min_cell_count=10).texts]  # 5 persons at most
    ['not drawn: too few persons or events to show without disclosing counts below 10']
    """
    import matplotlib.pyplot as plt
    from matplotlib import transforms

    km_table = require_dataframe(km_table, "plot_km", "km_table")
    require_columns(km_table, KM_COLUMNS, "plot_km", "Pass the output of kaplan_meier.")
    if at_risk is not None:
        at_risk = require_dataframe(at_risk, "plot_km", "at_risk")
        require_columns(at_risk, ["group", "time", "n_risk", "suppressed"], "plot_km",
                        "Pass the output of at_risk_table.")
    k = int(min_cell_count or 0)
    drawable = np.isfinite(km_table["time"].to_numpy(dtype=float)) & np.isfinite(
        km_table["estimate"].to_numpy(dtype=float))
    # A number at risk at any time is one of km_table's (or 0, which is shown).
    all_hidden = (_all_hidden(at_risk) if at_risk is not None else
                  k > 0 and bool(drawable.any()) and float(km_table["n_risk"].max()) < k)
    if not drawable.any() or all_hidden:
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        return _not_drawn(ax, k, ylabel="survival", xlabel=xlabel, title=title)
    groups = list(pd.unique(km_table["group"]))
    created = ax is None
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5 + 0.25 * len(groups) * risk_table))
    curves: list[Any] = []
    for i, g in enumerate(groups):
        part = km_table[km_table["group"] == g]
        color = f"C{i % 10}"
        curves += ax.step(part["time"], part["estimate"], where="post", color=color, label=str(g))
        if conf_int:
            curves.append(ax.fill_between(part["time"], part["conf_low"].fillna(part["estimate"]),
                                          part["conf_high"].fillna(part["estimate"]), step="post", color=color,
                                          alpha=0.15, lw=0))
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("survival")
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    if len(groups) > 1:
        ax.legend(frameon=False)
    tmax = float(km_table["time"].max())
    if times is None:
        times = [x for x in ax.get_xticks() if 0 <= x <= tmax]
    if at_risk is not None:
        times = sorted(pd.unique(at_risk["time"]))
    times = list(times)
    ax.set_xticks(times)
    ax.set_xlim(0, max(tmax, max(times) if times else tmax))
    if risk_table:
        table = at_risk_table(km_table, times, min_cell_count=min_cell_count) if at_risk is None else at_risk
        if _all_hidden(table):
            # Counts of k or more can be hidden too (so that a small one
            # cannot be worked back); the curves would still show them.
            for artist in curves:
                artist.remove()
            if ax.get_legend() is not None:
                ax.get_legend().remove()  # type: ignore[union-attr]  # not None: checked above
            return _not_drawn(ax, k, ylabel="survival", xlabel=xlabel, title=title)
        trans = transforms.blended_transform_factory(ax.transData, ax.transAxes)
        # Group names sit left of the axis, clear of the numbers centred on the first tick.
        ax.text(-0.06, -0.16, "At risk", transform=ax.transAxes, ha="right", va="top", fontsize=8,
                fontweight="bold")
        for i, g in enumerate(groups):
            y = -0.16 - 0.07 * (i + 1)
            ax.text(-0.06, y, str(g), transform=ax.transAxes, ha="right", va="top", fontsize=8, color=f"C{i % 10}")
            sub = table[table["group"] == g]
            for _, r in sub.iterrows():
                label = _at_risk_mark(r, min_cell_count) if r["suppressed"] else str(int(r["n_risk"]))
                ax.text(r["time"], y, label, transform=trans, ha="center", va="top", fontsize=8)
        if created:
            # Room for the table; a caller's own figure keeps its layout (the
            # table sits below the axes, as with tight bounding boxes).
            ax.figure.subplots_adjust(bottom=min(0.5, 0.2 + 0.06 * (len(groups) + 1)))
    return ax


def plot_cumulative_incidence(ci_table: pd.DataFrame, ax: Axes | None = None, *, conf_int: bool = True,
                              title: str | None = None, xlabel: str = "time",
                              legend_title: str | None = None, min_cell_count: int = 0) -> Axes:
    """Step curves of cumulative incidence per group, with optional interval bands.

    Parameters
    ----------
    ci_table : pandas.DataFrame
        Output of :func:`cumulative_incidence`.
    ax : matplotlib Axes, optional
        Drawn into; a new figure otherwise.
    conf_int : bool, default True
        Shade the pointwise interval.
    title : str, optional
    xlabel : str, default "time"
    legend_title : str, optional
        Title of the legend of groups (e.g. "ANC tier at index").
    min_cell_count : int, default 0
        Disclosure threshold: when every number at risk in ``ci_table`` is
        below it, the curves' steps would show counts below it, so nothing
        is drawn but a note (which names the threshold).

    Returns
    -------
    matplotlib.axes.Axes
        With a centred note instead of curves when there is nothing to
        draw: an empty ``ci_table`` (e.g. every time hidden by
        :func:`~neutrostats.disclosure.coarsen_event_times`), no finite
        estimate, or every number at risk below ``min_cell_count``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from neutrostats import cumulative_incidence
    >>> df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "ev": [1, 2, 1, 0, 1, 2], "g": list("ababab")})
    >>> ax = plot_cumulative_incidence(cumulative_incidence(df, "t", "ev", group="g"))
    >>> [line.get_label() for line in ax.get_lines()]
    ['a', 'b']
    >>> [t.get_text() for t in plot_cumulative_incidence(cumulative_incidence(df, "t", "ev"), min_cell_count=10).texts]
    ['not drawn: too few persons or events to show without disclosing counts below 10']
    """
    import matplotlib.pyplot as plt


    ci_table = require_dataframe(ci_table, "plot_cumulative_incidence", "ci_table")
    require_columns(ci_table, CI_COLUMNS[:7], "plot_cumulative_incidence",
                    "Pass the output of cumulative_incidence.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    k = int(min_cell_count or 0)
    drawable = np.isfinite(pd.to_numeric(ci_table["time"]).to_numpy(dtype=float)) & np.isfinite(
        pd.to_numeric(ci_table["estimate"]).to_numpy(dtype=float))
    # A number at risk at any time is one of these: all below k, and the steps would show them.
    all_hidden = k > 0 and bool(drawable.any()) and float(pd.to_numeric(ci_table["n_risk"]).max()) < k
    if not drawable.any() or all_hidden:
        return _not_drawn(ax, k, ylabel="cumulative incidence", xlabel=xlabel, title=title)
    grp = ci_table["group"]
    groups = grp.cat.categories if isinstance(grp.dtype, pd.CategoricalDtype) else pd.unique(grp)
    for i, g in enumerate(groups):
        rows = ci_table[grp == g]
        if rows.empty:
            continue
        color = f"C{i % 10}"
        ax.step(rows["time"], rows["estimate"], where="post", color=color, label=str(g))
        if conf_int:
            ax.fill_between(rows["time"].to_numpy(), rows["conf_low"].to_numpy(dtype=float),
                            rows["conf_high"].to_numpy(dtype=float), step="post", color=color, alpha=0.2,
                            linewidth=0)
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cumulative incidence")
    if len(groups) > 1:
        ax.legend(title=legend_title)
    if title:
        ax.set_title(title)
    return ax


def plot_forest(or_table: pd.DataFrame, ax: Axes | None = None, *, title: str | None = None) -> Axes:
    """Forest plot: OR and interval per tier per outcome, log axis, line at 1.

    Parameters
    ----------
    or_table : pandas.DataFrame
        Output of :func:`odds_ratio_table` (or :func:`odds_ratios_by_tier`).
        Reference rows are left out. An estimate is a filled square, or an
        open diamond for ``method="firth"`` (with a legend entry "Firth
        (penalised)"); an estimate beyond the axis is an arrow at the edge,
        an open interval end runs to the edge. A row that is not
        ``estimable`` gets its interval (where the method gives one) but no
        estimate marker, " (not estimable)" after its label and its
        ``note`` beside it; a row whose numbers are all missing (hidden by
        disclosure control) is labelled " (suppressed)". When nothing at all
        can be drawn the axes say so in a centred note.
    ax : matplotlib Axes, optional
        Drawn into; a new figure otherwise.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes

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
    ('log', ['a: mild', 'b: mild (not estimable)'])
    >>> [x.get_text() for x in ax.texts]  # nobody in the mild tier has b
    ['no events in this tier']
    """
    import matplotlib.pyplot as plt
    from matplotlib import transforms
    from matplotlib.lines import Line2D

    fn = "plot_forest"
    or_table = require_dataframe(or_table, fn, "or_table")
    require_columns(or_table, OR_COLUMNS, fn, "Pass the output of odds_ratio_table.")
    rows = or_table[~or_table["is_reference"].astype(bool)].reset_index(drop=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.35 * max(len(rows), 2) + 1.2))
    est = rows["estimate"].to_numpy(dtype=float)
    low = rows["conf_low"].to_numpy(dtype=float)
    high = rows["conf_high"].to_numpy(dtype=float)
    flag = rows["estimable"].astype("boolean")
    # A masked (suppressed) flag is no claim of support, nor a claim of its absence.
    ok = flag.fillna(False).to_numpy(dtype=bool)
    unsupported = (~flag).fillna(False).to_numpy(dtype=bool)
    firth = rows["method"].astype(str).to_numpy() == "firth"
    # Only what is drawn sets the axis: an estimate without support is not drawn.
    shown = pd.Series(np.concatenate([est[ok], low, high]))
    shown = shown[np.isfinite(shown) & (shown > 0)]
    lo_edge = min(0.5, shown.min() / 1.5) if len(shown) else 0.1
    hi_edge = max(2.0, shown.max() * 1.5) if len(shown) else 10
    y = np.arange(len(rows))[::-1]
    labels, notes, drawn, firth_drawn = [], [], False, False
    for yi, (_, r), e, lo_i, hi_i, good, bad, is_firth in zip(y, rows.iterrows(), est, low, high, ok, unsupported,
                                                               firth):
        label = f"{r['outcome']}: {r['group']}"
        if bad:
            label += " (not estimable)"
            note = r["note"]
            notes.append((yi, note if isinstance(note, str) and note else "not estimable"))
        elif np.isnan(e) and np.isnan(lo_i) and np.isnan(hi_i):
            label += " (suppressed)"
        labels.append(label)
        lo = lo_i if np.isfinite(lo_i) and lo_i > 0 else lo_edge
        hi = hi_i if np.isfinite(hi_i) else hi_edge
        if np.isfinite(lo_i) or np.isfinite(hi_i):
            ax.plot([max(lo, lo_edge), min(hi, hi_edge)], [yi, yi], color="0.3" if good else "0.65", lw=1.2)
            drawn = True
        if not good:
            continue
        point = np.clip(e, lo_edge, hi_edge) if np.isfinite(e) or e == np.inf else np.nan
        if np.isfinite(point):
            # An estimate of 0 or inf points off the axis instead of posing as a value at its edge.
            marker = "<" if e < lo_edge else (">" if e > hi_edge else ("D" if is_firth else "s"))
            style: dict[str, Any] = dict(mfc="white", mec="C0", mew=1.2) if is_firth else {}
            ax.plot([point], [yi], marker, color="C0", ms=6 if marker != "s" else 5, **style)
            drawn = True
            firth_drawn |= bool(is_firth)
    ax.axvline(1.0, color="0.5", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlim(lo_edge, hi_edge)
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    # Room above the top row for its note.
    ax.set_ylim(-0.6, max(len(rows), 1) - 0.35)
    ax.set_xlabel("odds ratio (log scale)")
    if drawn:
        trans = transforms.blended_transform_factory(ax.transAxes, ax.transData)
        for yi, note in notes:
            # Just above the row's line, which may run to the right edge.
            ax.annotate(note, xy=(0.99, yi), xycoords=trans, xytext=(0, 1.5), textcoords="offset points",
                        ha="right", va="bottom", fontsize=7, color="0.35")
    else:
        ax.text(0.5, 0.5, "nothing to draw: every estimate is suppressed or not estimable", transform=ax.transAxes,
                ha="center", va="center", fontsize=9, color="0.35")
    if firth_drawn:
        ax.legend(handles=[Line2D([], [], marker="D", ls="none", color="C0", mfc="white", mew=1.2,  # type: ignore[call-overload]
                                  label="Firth (penalised)")], loc="upper right", bbox_to_anchor=(1.0, 0.0),
                  # Below the tick labels, beside the axis label, whatever the height.
                  bbox_transform=transforms.offset_copy(ax.transAxes, ax.figure, y=-15, units="points"),  # type: ignore[arg-type]
                  borderaxespad=0.0, fontsize=7, frameon=False)
    if title:
        ax.set_title(title)
    return ax
