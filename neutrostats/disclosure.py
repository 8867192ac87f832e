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

import numpy as np
import pandas as pd

from .errors import NeutrostatsError

__all__ = ["suppress_counts"]


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
