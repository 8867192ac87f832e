"""Tables in publication form: labelled headers, formatted cells, alignment and notes, for every output.

A :class:`DisplayTable` is what a reader sees of a tidy table: the HTML
report, Jupyter, Word and LaTeX all render the same object, so they show the
same labels, decimals and footnotes. Tidy tables (machine names, numbers)
stay what the library returns; a display table is made from one at the edge.

Examples
--------
>>> import pandas as pd
>>> t = DisplayTable("demo", "Persons by tier", pd.DataFrame({"Tier": ["Normal", "Mild"], "n": ["1,204", "17"]}),
...                  notes=("Counts of persons.",))
>>> t.align
('l', 'r')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from neutrostats.errors import NeutrostatsError

__all__ = ["DisplayTable", "infer_alignment"]

# A cell that reads as a number (count, estimate, interval, percentage, p-value, hidden mark).
_NUMERIC_CELL = re.compile(r"^\s*([<>≤≥]?\s*[-−–]?[\d.,]+(\s*%|\s*\(.*\)|\s*\[.*\])?|\[[chH]\]|<\d+|–|—|∞|)\s*$")


def infer_alignment(frame: pd.DataFrame) -> tuple[str, ...]:
    """Per column: ``"r"`` where every cell reads as a number (or is empty), else ``"l"``.

    Examples
    --------
    >>> infer_alignment(pd.DataFrame({"a": ["x", "y"], "b": ["1,000", "<5"], "c": ["2.1 (1.0–3.2)", "–"]}))
    ('l', 'r', 'r')
    """
    out = []
    for col in frame.columns:
        cells = frame[col].astype(str)
        out.append("r" if len(cells) and cells.map(lambda v: bool(_NUMERIC_CELL.match(v))).all() else "l")
    return tuple(out)


@dataclass(frozen=True)
class DisplayTable:
    """A table as readers see it.

    Parameters
    ----------
    name : str
        Machine name (the tidy table's name, e.g. ``"odds_ratios"``); file
        names of exports.
    title : str
        Caption.
    frame : pandas.DataFrame
        Every cell a string; the column names are the headers (with units).
        The index is not shown.
    align : tuple of {"l", "r"}, optional
        Per column; default :func:`infer_alignment` (text left, numbers right).
    notes : tuple of str
        Footnotes, in order.
    indent : tuple of int, optional
        Per row, the indentation level of the first cell (Table 1's levels);
        default 0 for every row.
    """

    name: str
    title: str
    frame: pd.DataFrame
    align: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    indent: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        frame = self.frame.reset_index(drop=True).astype(object).where(self.frame.notna().to_numpy(), "")
        frame = frame.map(str) if hasattr(frame, "map") else frame.applymap(str)
        object.__setattr__(self, "frame", frame)
        align = tuple(self.align) or infer_alignment(frame)
        if len(align) != frame.shape[1] or not set(align) <= {"l", "r", "c"}:
            raise NeutrostatsError(f"DisplayTable {self.name!r}: expected one of 'l', 'r', 'c' per column "
                                   f"({frame.shape[1]}), found {align!r}")
        object.__setattr__(self, "align", align)
        indent = tuple(int(i) for i in self.indent) or (0,) * len(frame)
        if len(indent) != len(frame):
            raise NeutrostatsError(f"DisplayTable {self.name!r}: expected one indent per row ({len(frame)}), "
                                   f"found {len(indent)}")
        object.__setattr__(self, "indent", indent)
        object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))
