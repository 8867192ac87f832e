"""Small-cell suppression for outputs that leave a secure environment.

Registry and hospital data may usually leave only with counts under 5 (or
10) hidden. Hiding the small cells alone is not enough when a table's total
is shown: one hidden cell could be recovered as the total minus the rest. So
within every group of cells that add up to a published total, a second cell
(the smallest remaining non-zero one) is hidden whenever exactly one is.

Examples
--------
>>> import pandas as pd
>>> from neutrostats.disclosure import suppress_counts
>>> t = pd.DataFrame({"level": ["a", "b", "c", "d"], "n": [120, 3, 40, 0]})
>>> suppress_counts(t, min_cell_count=5)
  level     n  suppressed
0     a   120       False
1     b  <NA>        True
2     c  <NA>        True
3     d     0       False
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import NeutrostatsError

__all__ = ["coarsen_event_times", "suppress_counts"]


def suppress_counts(
    table: pd.DataFrame,
    *,
    min_cell_count: int,
    count: str = "n",
    derived: Sequence[str] = (),
    group: Sequence[str] = (),
) -> pd.DataFrame:
    """Hide counts from 1 to ``min_cell_count - 1`` and what would reveal them.

    Parameters
    ----------
    table : pandas.DataFrame
        A table with a count column.
    min_cell_count : int
        Smallest count that may be shown; 0 or 1 switches suppression off
        (the ``suppressed`` column is still added, all False).
    count : str, default "n"
        The count column.
    derived : sequence of str
        Columns computed from the count (percentages, rates) hidden with it.
    group : sequence of str
        Columns whose combinations each form one set of cells adding up to a
        shown total; secondary suppression works within each set. Without
        it the whole table is one set.

    Returns
    -------
    pandas.DataFrame
        A copy with ``count`` as nullable Int64 and ``derived`` columns set
        to NA where hidden, plus a boolean ``suppressed`` column. Zero counts
        stay shown: an empty cell discloses no person.

    Raises
    ------
    NeutrostatsError
        If ``min_cell_count`` is negative or a column is missing.
    """
    if not isinstance(min_cell_count, (int, np.integer)) or min_cell_count < 0:
        raise NeutrostatsError(
            f"suppress_counts: min_cell_count must be a whole number >= 0, found {min_cell_count!r}"
        )
    missing = [c for c in [count, *derived, *group] if c not in table.columns]
    if missing:
        raise NeutrostatsError(f"suppress_counts: columns {missing} not found in the table")
    out = table.copy()
    n = out[count].to_numpy(dtype=float)
    hide = (n > 0) & (n < min_cell_count)
    if hide.any():
        keys = (
            out[list(group)].astype(str).agg("\x1f".join, axis=1).to_numpy()
            if group
            else np.zeros(len(out), dtype=int)
        )
        for key in pd.unique(keys):
            idx = np.flatnonzero(keys == key)
            if hide[idx].sum() == 1:
                candidates = idx[(~hide[idx]) & (n[idx] > 0)]
                if candidates.size:
                    hide[candidates[np.argmin(n[candidates])]] = True
    out[count] = pd.array(np.where(hide, np.nan, n), dtype="Float64").astype("Int64")
    for col in derived:
        out[col] = out[col].astype("Float64").mask(hide)
    out["suppressed"] = hide
    return out


def coarsen_event_times(
    time: Any,
    event: Any,
    *,
    min_cell_count: int,
    group: Any = None,
    event_value: int = 1,
) -> np.ndarray:
    """Move follow-up times to the ends of bins holding at least ``k`` events each.

    A step of a Kaplan-Meier or cumulative incidence curve drawn from exact
    times shows how many persons had the event at that time (a drop of one
    person in a known group is a count of 1). Grouping the event times into
    consecutive bins that each hold at least ``min_cell_count`` events, and
    moving every time in a bin (events and censorings alike) to the bin's
    last event time, makes each step of the drawn curve at least ``k``
    events (the approach of OpenSAFELY's Kaplan-Meier reusable action).
    Events left over after the last full bin join that bin.

    Parameters
    ----------
    time : array-like of float
        Follow-up times.
    event : array-like of int
        Event codes; ``event_value`` marks the event whose steps are drawn
        (other values, including competing events, move like censorings).
    min_cell_count : int
        ``k``; 0 or 1 returns the times unchanged (as float).
    group : array-like, optional
        Curves drawn separately; bins are formed within each group.
    event_value : int, default 1

    Returns
    -------
    numpy.ndarray
        Coarsened times (float). A group with events but fewer than ``k`` of
        them cannot be drawn without disclosing them: its times are NaN.
        Times after a group's last event are kept (they are censorings).

    Examples
    --------
    >>> coarsen_event_times([1, 2, 3, 4, 5, 6], [1, 1, 0, 1, 1, 0], min_cell_count=2).tolist()
    [2.0, 2.0, 5.0, 5.0, 5.0, 6.0]
    >>> coarsen_event_times([1, 2, 3], [1, 0, 0], min_cell_count=2).tolist()
    [nan, nan, nan]
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event) == event_value
    if t.shape != e.shape:
        raise NeutrostatsError(
            f"coarsen_event_times: time and event must have the same length, found {t.shape} and {e.shape}"
        )
    if not isinstance(min_cell_count, (int, np.integer)) or min_cell_count < 0:
        raise NeutrostatsError(
            f"coarsen_event_times: min_cell_count must be a whole number >= 0, found {min_cell_count!r}"
        )
    out = t.copy()
    if min_cell_count <= 1:
        return out
    labels = np.zeros(len(t), dtype=int) if group is None else pd.factorize(np.asarray(group))[0]
    for g in np.unique(labels):
        idx = np.flatnonzero(labels == g)
        ev_times, counts = np.unique(t[idx][e[idx]], return_counts=True)
        if counts.sum() == 0:
            continue
        if counts.sum() < min_cell_count:
            out[idx] = np.nan
            continue
        cuts, running = [], 0
        for tt, c in zip(ev_times, counts):
            running += c
            if running >= min_cell_count:
                cuts.append(tt)
                running = 0
        if running:
            # Leftover events (< k) extend the last bin to their last time.
            cuts[-1] = ev_times[-1]
        cuts = np.asarray(cuts)
        ti = t[idx]
        pos = np.searchsorted(cuts, ti, side="left")
        inside = pos < len(cuts)
        moved = ti.copy()
        moved[inside] = cuts[pos[inside]]
        out[idx] = moved
    return out
