"""Kaplan-Meier and cumulative incidence curves with the numbers at risk under them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from neutrostats.cohort.labels import Labels, labels_for
from neutrostats.core.validate import require_columns, require_dataframe
from neutrostats.errors import NeutrostatsError
from neutrostats.labs.classify import TIER_NAMES
from neutrostats.plotting.style import NOTE_COLOR, SMALL, figure_style, style_axes, tier_colors
from neutrostats.stats.competing import CI_COLUMNS
from neutrostats.stats.survival import KM_COLUMNS, at_risk_table

if TYPE_CHECKING:  # matplotlib is imported by the functions only, never at import time
    from matplotlib.axes import Axes

__all__ = ["plot_cumulative_incidence", "plot_km"]

_KINDS = ("survival", "mortality")
#: Points between the axes' bottom and the first line of the numbers at risk (room for ticks and x label).
_RISK_TOP = 34.0
_RISK_LINE = 11.0


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
    ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", fontsize=SMALL + 1, color=NOTE_COLOR,
            wrap=True)
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


def _label(labels: Labels, name: Any, *, short: bool = False) -> str:
    """The display label of a tier, outcome or covariate ``labels`` knows; any other name as itself."""
    key = str(name)
    if key in labels.tiers or key in labels.names or key in TIER_NAMES:
        return labels.short(key) if short else labels(key)
    return key


def _figure(ax: Axes) -> Any:
    """The top-level Figure of ``ax`` (a SubFigure's parent figure holds the layout engine)."""
    fig: Any = ax.figure
    # Figure.get_figure(root=True) is matplotlib 3.10; before it, a SubFigure's .figure is its parent.
    while getattr(fig, "figure", fig) is not fig and fig.figure is not None:
        fig = fig.figure
    return fig


def _groups(table: pd.DataFrame) -> list[Any]:
    """Groups in their order: a Categorical's categories (colours stay with a tier when one is empty)."""
    grp = table["group"]
    return list(grp.cat.categories) if isinstance(grp.dtype, pd.CategoricalDtype) else list(pd.unique(grp))


def _number(n: Any) -> str:
    v = float(n)
    return f"{int(round(v)):,}" if v == round(v) else f"{v:,.1f}"


def _draw_at_risk(ax: Axes, table: pd.DataFrame, groups: Sequence[Any], colors: Mapping[Any, str], labels: Labels,
                  k: int) -> None:
    """Numbers at risk in rows under the x-axis label, one row per group, labelled with its short name in its colour.

    Offsets are in points from the axes' bottom, so that the rows keep their
    place whatever the figure's size; they count in the axes' tight bounding
    box, so a layout engine leaves room for them.
    """
    from matplotlib import transforms

    fig: Any = ax.figure
    below = transforms.blended_transform_factory(ax.transAxes, ax.transAxes)
    data_x = transforms.blended_transform_factory(ax.transData, ax.transAxes)
    by_group = {str(g): part for g, part in table.groupby(table["group"].astype(str), sort=False)}
    cells = {str(g): [(float(r["time"]), _at_risk_mark(r, k) if r["suppressed"] else _number(r["n_risk"]))
                      for _, r in by_group.get(str(g), table.iloc[:0]).iterrows()] for g in groups}
    # The names end left of the widest number centred on the first tick (about 0.6 em per character).
    first = min((t for row in cells.values() for t, _ in row), default=0.0)
    widest = max((len(text) for row in cells.values() for t, text in row if t == first), default=0)
    dx = -(0.3 * SMALL * widest + 6.0) if first <= ax.get_xlim()[0] else -6.0
    head = transforms.offset_copy(below, fig, x=dx, y=-_RISK_TOP, units="points")
    ax.text(0.0, 0.0, "Number at risk", transform=head, ha="right", va="top", fontsize=SMALL, fontweight="bold")
    for i, g in enumerate(groups):
        dy = -_RISK_TOP - _RISK_LINE * (i + 1)
        name_at = transforms.offset_copy(below, fig, x=dx, y=dy, units="points")
        ax.text(0.0, 0.0, _label(labels, g, short=True), transform=name_at, ha="right", va="top", fontsize=SMALL,
                color=colors[g])
        at = transforms.offset_copy(data_x, fig, y=dy, units="points")
        for t, text in cells[str(g)]:
            ax.text(t, 0.0, text, transform=at, ha="center", va="top", fontsize=SMALL)


def _ylim(lows: list[np.ndarray], highs: list[np.ndarray], rising: bool, full_range: bool) -> tuple[float, float]:
    """A y-range that shows the curves and their bands with a margin; 0-1 with ``full_range``."""
    if full_range:
        return 0.0, 1.0
    lo = min((float(np.nanmin(x)) for x in lows if np.isfinite(x).any()), default=0.0)
    hi = max((float(np.nanmax(x)) for x in highs if np.isfinite(x).any()), default=1.0)
    if rising:  # from 0 up to just above the highest curve or band
        return 0.0, min(1.0, max(hi, 0.01) * 1.1)
    bottom = max(0.0, lo - 0.1 * max(1.0 - lo, 0.01))
    # Just above 1, so that a curve at 1 is not cut in half by the frame.
    return bottom, 1.0 + 0.02 * (1.0 - bottom)


def _resolve(labels: Labels | None, colors: Mapping[Any, str] | None, groups: Sequence[Any]) -> tuple[Labels, dict]:
    # Without labels the scheme is not known: tiers get their names, never another scheme's ranges.
    lab = labels_for(None) if labels is None else labels
    if not isinstance(lab, Labels):
        raise NeutrostatsError(f"labels: expected a neutrostats.Labels (e.g. neutrostats.labels_for()), found "
                               f"{type(lab).__name__}; pass labels=neutrostats.labels_for(scheme)")
    base = tier_colors(groups)
    if colors:
        base |= {g: colors[g] for g in groups if g in colors}
        base |= {g: colors[str(g)] for g in groups if str(g) in colors}
    return lab, base


def _legend_title(legend_title: str | None, labels: Labels, groups: Sequence[Any]) -> str | None:
    """The given title; "ANC tier at index" by default when every group is a tier the labels know."""
    if legend_title is not None:
        return legend_title or None
    known = labels.tiers or TIER_NAMES
    return labels("tier") if groups and all(str(g) in known for g in groups) else None


def _draw_curves(ax: Axes, table: pd.DataFrame, groups: Sequence[Any], colors: Mapping[Any, str], labels: Labels, *,
                 flip: bool, conf_int: bool, censor_marks: bool, legend_title: str | None) -> tuple[list, list, list]:
    """Step curves (``1 - estimate`` with ``flip``), bands and censor marks; the artists and the drawn y-ranges.

    A line's label is its group's machine name (tidy, as the tables have
    it); the legend shows the display labels.
    """
    artists: list[Any] = []
    lows, highs = [], []
    handles = []
    for g in groups:
        part = table[table["group"].astype(str) == str(g)]
        if part.empty:
            continue
        t = part["time"].to_numpy(dtype=float)
        est = part["estimate"].to_numpy(dtype=float)
        lo = part["conf_low"].to_numpy(dtype=float)
        hi = part["conf_high"].to_numpy(dtype=float)
        lo, hi = np.where(np.isfinite(lo), lo, est), np.where(np.isfinite(hi), hi, est)
        if flip:
            est, lo, hi = 1.0 - est, 1.0 - hi, 1.0 - lo
        color = colors[g]
        line = ax.step(t, est, where="post", color=color, label=str(g))[0]
        artists.append(line)
        handles.append(line)
        lows.append(lo if conf_int else est)
        highs.append(hi if conf_int else est)
        if conf_int:
            artists.append(ax.fill_between(t, lo, hi, step="post", color=color, alpha=0.15, lw=0))
        if censor_marks and "n_censor" in part.columns:
            cens = pd.to_numeric(part["n_censor"]).fillna(0).to_numpy(dtype=float) > 0
            if cens.any():
                # A scatter (a collection, not a line): the lines stay one per group.
                artists.append(ax.scatter(t[cens], est[cens], marker="|", s=14, linewidths=0.8, color=color,
                                          zorder=3))
    if len(handles) > 1:
        ax.legend(handles, [_label(labels, h.get_label()) for h in handles], title=_legend_title(
            legend_title, labels, groups), loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
            alignment="left")
    return artists, lows, highs


def _plot_curves(table: pd.DataFrame, ax: Axes | None, *, fn: str, kind: str, risk_table: bool, conf_int: bool,
                 censor_marks: bool, times: Any, min_cell_count: int, title: str | None, xlabel: str,
                 ylabel: str | None, legend_title: str | None, labels: Labels | None, full_range: bool,
                 at_risk: pd.DataFrame | None, colors: Mapping[Any, str] | None) -> Axes:
    """The engine of plot_km and plot_cumulative_incidence (``kind`` "survival", "mortality" or "incidence")."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    k = int(min_cell_count or 0)
    ylabel = ylabel if ylabel is not None else {"survival": "Survival", "mortality": "Cumulative mortality",
                                                "incidence": "Cumulative incidence"}[kind]
    drawable = np.isfinite(pd.to_numeric(table["time"]).to_numpy(dtype=float)) & np.isfinite(
        pd.to_numeric(table["estimate"]).to_numpy(dtype=float))
    # A number at risk at any time is one of the table's (or 0, which is shown).
    all_hidden = (_all_hidden(at_risk) if at_risk is not None else
                  k > 0 and bool(drawable.any()) and float(pd.to_numeric(table["n_risk"]).max()) < k)
    groups = _groups(table)
    lab, cols = _resolve(labels, colors, groups)
    if ax is None:
        ax = plt.figure(figsize=(7.5, 4.2 + 0.16 * len(groups) * risk_table), layout="constrained").subplots()
    elif (fig := _figure(ax)).get_layout_engine() is None:
        # Room for the numbers at risk and the legend outside the axes, also in a caller's subplots.
        fig.set_layout_engine("constrained")
    style_axes(ax)
    if not drawable.any() or all_hidden:
        return _not_drawn(ax, k, ylabel=ylabel, xlabel=xlabel, title=title)
    table = table[drawable]
    artists, lows, highs = _draw_curves(ax, table, groups, cols, lab, flip=kind == "mortality", conf_int=conf_int,
                                        censor_marks=censor_marks, legend_title=legend_title)
    ax.set_ylim(*_ylim(lows, highs, kind != "survival", full_range))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    tmax = float(table["time"].max())
    ticks = (sorted(pd.unique(at_risk["time"])) if at_risk is not None else
             list(times) if times is not None else [x for x in ax.get_xticks() if 0 <= x <= tmax])
    ax.set_xticks(ticks)
    ax.set_xlim(0, max(tmax, max(ticks) if ticks else tmax))
    if risk_table:
        shown = at_risk_table(table[list(KM_COLUMNS)], ticks, min_cell_count=k) if at_risk is None else at_risk
        if _all_hidden(shown):
            # Counts of k or more can be hidden too (so that a small one
            # cannot be worked back); the curves would still show them.
            for artist in artists:
                artist.remove()
            if ax.get_legend() is not None:
                ax.get_legend().remove()  # type: ignore[union-attr]  # not None: checked above
            return _not_drawn(ax, k, ylabel=ylabel, xlabel=xlabel, title=title)
        _draw_at_risk(ax, shown, groups, cols, lab, k)
    return ax


def _check_kind(kind: str, fn: str) -> None:
    if kind not in _KINDS:
        raise NeutrostatsError(f"{fn}: expected kind= one of {list(_KINDS)}, found {kind!r}; pass kind='mortality' "
                               "(1 - survival, rising) or kind='survival'")


def _check_at_risk(at_risk: pd.DataFrame | None, fn: str) -> pd.DataFrame | None:
    if at_risk is None:
        return None
    at_risk = require_dataframe(at_risk, fn, "at_risk")
    require_columns(at_risk, ["group", "time", "n_risk", "suppressed"], fn, "Pass the output of at_risk_table.")
    return at_risk


def plot_km(
    km_table: pd.DataFrame,
    ax: Axes | None = None,
    *,
    kind: str = "survival",
    risk_table: bool = True,
    conf_int: bool = True,
    censor_marks: bool = True,
    times: Any = None,
    min_cell_count: int = 0,
    title: str | None = None,
    xlabel: str = "time",
    ylabel: str | None = None,
    legend_title: str | None = None,
    labels: Labels | None = None,
    full_range: bool = False,
    at_risk: pd.DataFrame | None = None,
    colors: Mapping[Any, str] | None = None,
) -> Axes:
    """Kaplan-Meier curves (survival or mortality) with censor marks, a legend and the numbers at risk.

    Parameters
    ----------
    km_table : pandas.DataFrame
        Output of :func:`kaplan_meier`.
    ax : matplotlib Axes, optional
        Drawn into; a new figure otherwise. A figure without a layout
        engine gets matplotlib's constrained layout, which leaves room for
        the numbers at risk and the legend (outside the axes, right).
    kind : {"survival", "mortality"}, default "survival"
        ``"mortality"`` draws ``1 - S(t)`` rising, with its interval, and
        labels the y-axis "Cumulative mortality"; ``"survival"`` draws
        ``S(t)``. Title, axis and curves agree: choose once.
    risk_table : bool, default True
        Print the numbers at risk per group under the x-axis, aligned with
        the ticks (the same numbers as :func:`at_risk_table`), with
        thousands separators, each row labelled with the group's short
        label in its colour.
    conf_int : bool, default True
        Shade the confidence band.
    censor_marks : bool, default True
        A tick on the curve at each time with censorings (``n_censor``).
    times : sequence of float, optional
        Tick positions (default: matplotlib's ticks within the data range).
    min_cell_count : int, default 0
        Hide at-risk numbers under this count (shown as "<k").
        When every number at risk would be hidden (every count in
        ``km_table`` is below it, or every positive count of the at-risk
        table is suppressed), the curves would show those counts in their
        steps: nothing is drawn but a note.
    title, xlabel : str
    ylabel : str, optional
        Default from ``kind``.
    legend_title : str, optional
        Default "ANC tier at index" (the label of ``tier``) when every
        group is a tier of ``labels``, none otherwise; ``""`` for none.
    labels : neutrostats.Labels, optional
        Display labels of the groups (e.g. ``labels_for("andersen2016")``;
        default ``labels_for(None)``, tier names without ranges, since the
        scheme of a table passed alone is not known): the
        legend shows the label with the range, the rows of numbers at
        risk the short label; a group the labels do not know reads as its
        name. The lines keep the machine names as their labels.
    full_range : bool, default False
        y from 0 to 1; by default the range of the curves and bands with a
        margin (from 0 for mortality).
    at_risk : pandas.DataFrame, optional
        An :func:`at_risk_table` to print instead of the one computed from
        ``km_table``: curves drawn from coarsened times (see
        :func:`~neutrostats.disclosure.coarsen_event_times`) keep the exact
        at-risk numbers that tables elsewhere show, so the two never
        differ by a small count. Its ``time`` values become the ticks; a
        hidden number shows its mark (``hidden`` column) or ``<k``.
    colors : mapping, optional
        Group -> colour; default :func:`tier_colors` of the groups.

    Returns
    -------
    matplotlib.axes.Axes
        With a centred note instead of curves when there is nothing to
        draw: an empty ``km_table`` (e.g. every time hidden by
        :func:`~neutrostats.disclosure.coarsen_event_times`), no finite
        estimate, or every number at risk hidden (see ``min_cell_count``).

    Raises
    ------
    NeutrostatsError
        If ``km_table`` or ``at_risk`` lacks a column, or ``kind`` is unknown.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from neutrostats import kaplan_meier
    >>> km = kaplan_meier(pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 0]}), "t", "e")
    >>> ax = plot_km(km, times=[0, 2, 4], kind="mortality")
    >>> [t.get_text() for t in ax.texts if t.get_text().isdigit()], ax.get_ylabel()
    (['5', '4', '1'], 'Cumulative mortality')
    >>> [t.get_text() for t in plot_km(km, min_cell_count=10).texts]  # 5 persons at most
    ['not drawn: too few persons or events to show without disclosing counts below 10']
    """
    km_table = require_dataframe(km_table, "plot_km", "km_table")
    require_columns(km_table, KM_COLUMNS, "plot_km", "Pass the output of kaplan_meier.")
    _check_kind(kind, "plot_km")
    at_risk = _check_at_risk(at_risk, "plot_km")
    with figure_style():
        return _plot_curves(km_table, ax, fn="plot_km", kind=kind, risk_table=risk_table, conf_int=conf_int,
                            censor_marks=censor_marks, times=times, min_cell_count=min_cell_count, title=title,
                            xlabel=xlabel, ylabel=ylabel, legend_title=legend_title, labels=labels,
                            full_range=full_range, at_risk=at_risk, colors=colors)


def plot_cumulative_incidence(
    ci_table: pd.DataFrame,
    ax: Axes | None = None,
    *,
    risk_table: bool = True,
    conf_int: bool = True,
    censor_marks: bool = False,
    times: Any = None,
    min_cell_count: int = 0,
    title: str | None = None,
    xlabel: str = "time",
    ylabel: str | None = None,
    legend_title: str | None = None,
    labels: Labels | None = None,
    full_range: bool = False,
    at_risk: pd.DataFrame | None = None,
    colors: Mapping[Any, str] | None = None,
) -> Axes:
    """Step curves of cumulative incidence per group, with interval bands and the numbers at risk.

    The same look as :func:`plot_km` (style, palette, labels, legend
    outside the axes so that it covers no band, numbers at risk under the
    x-axis).

    Parameters
    ----------
    ci_table : pandas.DataFrame
        Output of :func:`cumulative_incidence`; its ``n_risk`` gives the
        numbers at risk.
    ax : matplotlib Axes, optional
        Drawn into; a new figure otherwise (see :func:`plot_km`).
    risk_table : bool, default True
        Numbers at risk under the x-axis, as in :func:`plot_km`.
    conf_int : bool, default True
        Shade the pointwise interval.
    censor_marks : bool, default False
        Ticks at times with censorings (competing events are not marked).
    times : sequence of float, optional
        Tick positions and times of the numbers at risk.
    min_cell_count : int, default 0
        Disclosure threshold: numbers at risk below it are shown as
        ``<k``; when every number at risk is below it (or hidden), the
        curves' steps would show counts below it, so nothing is drawn but
        a note (which names the threshold).
    title : str, optional
    xlabel : str, default "time"
    ylabel : str, optional
        Default "Cumulative incidence".
    legend_title, labels, full_range, colors
        As in :func:`plot_km`.
    at_risk : pandas.DataFrame, optional
        Numbers at risk to print instead of those of ``ci_table`` (columns
        ``group``, ``time``, ``n_risk``, ``suppressed``, e.g. a report's
        disclosed table).

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
    >>> ax = plot_cumulative_incidence(cumulative_incidence(df, "t", "ev", group="g"), times=[0, 3, 6])
    >>> [line.get_label() for line in ax.get_lines()], [t.get_text() for t in ax.texts][-3:]
    (['a', 'b'], ['3', '2', '1'])
    >>> [t.get_text() for t in plot_cumulative_incidence(cumulative_incidence(df, "t", "ev"), min_cell_count=10).texts]
    ['not drawn: too few persons or events to show without disclosing counts below 10']
    """
    fn = "plot_cumulative_incidence"
    ci_table = require_dataframe(ci_table, fn, "ci_table")
    require_columns(ci_table, CI_COLUMNS[:7], fn, "Pass the output of cumulative_incidence.")
    at_risk = _check_at_risk(at_risk, fn)
    if risk_table and at_risk is None:
        require_columns(ci_table, KM_COLUMNS, fn, "Pass the output of cumulative_incidence, or at_risk=, or "
                        "risk_table=False.")
    with figure_style():
        return _plot_curves(ci_table, ax, fn=fn, kind="incidence", risk_table=risk_table, conf_int=conf_int,
                            censor_marks=censor_marks, times=times, min_cell_count=min_cell_count, title=title,
                            xlabel=xlabel, ylabel=ylabel, legend_title=legend_title, labels=labels,
                            full_range=full_range, at_risk=at_risk, colors=colors)
