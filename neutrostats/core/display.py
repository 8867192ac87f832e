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

import html
import re
from dataclasses import dataclass, field

import pandas as pd

from neutrostats.errors import NeutrostatsError

__all__ = ["STYLE", "DisplayTable", "infer_alignment"]

# A cell that reads as a number (count, estimate, interval, percentage, p-value, hidden mark).
_NUMERIC_CELL = re.compile(r"^\s*([<>≤≥]?\s*[-−–]?[\d.,]+(\s*%|\s*\(.*\)|\s*\[.*\])?|\[[chH]\]|<\d+|–|—|∞|)\s*$")


#: The one style sheet of every HTML form (report.html, Jupyter reprs), scoped to ``.ns-report``. Numbers
#: use tabular figures so that columns of digits line up; tables scroll inside ``.tbl-wrap`` instead of
#: widening the page; print: no navigation, no scroll boxes, nothing split across pages, black on white.
STYLE = """
.ns-report { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1b1b1b; max-width: 80rem; margin: 0 auto; padding: 0 1rem; line-height: 1.45; box-sizing: border-box; }
.ns-report *, .ns-report *::before, .ns-report *::after { box-sizing: inherit; }
.ns-report h1 { font-size: 1.6rem; margin-bottom: .2rem; }
.ns-report h2 { font-size: 1.25rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2rem; }
.ns-report h3 { font-size: 1.05rem; margin-top: 1.2rem; }
.ns-report p { overflow-wrap: anywhere; }
.ns-report .tbl-wrap { overflow-x: auto; max-width: 100%; margin: .5rem 0 .2rem; }
.ns-report table.ns-tbl { border-collapse: collapse; font-size: .85rem; font-variant-numeric: tabular-nums;
  border-top: 2px solid #333; border-bottom: 2px solid #333; }
.ns-report table.ns-tbl caption { caption-side: top; text-align: left; font-weight: 600; padding: .2rem 0 .35rem; }
.ns-report table.ns-tbl th, .ns-report table.ns-tbl td { padding: .22rem .6rem; vertical-align: top; }
.ns-report table.ns-tbl thead th { border-bottom: 1px solid #333; font-weight: 600; vertical-align: bottom; }
.ns-report table.ns-tbl tbody tr + tr td { border-top: 1px solid #ececec; }
.ns-report table.ns-tbl .l { text-align: left; }
.ns-report table.ns-tbl .r { text-align: right; white-space: nowrap; }
.ns-report table.ns-tbl .c { text-align: center; }
.ns-report table.ns-tbl td.l:first-child { min-width: 11rem; }
.ns-report table.ns-tbl thead th.r { white-space: normal; min-width: 5rem; }
.ns-report table.ns-tbl td.i1 { padding-left: 1.6rem; }
.ns-report table.ns-tbl td.i2 { padding-left: 2.6rem; }
.ns-report table.ns-tbl tr.group th { font-weight: 600; text-align: left; padding-top: .5rem; background: none; }
.ns-report table.ns-tbl td.wrap { white-space: normal; overflow-wrap: anywhere; min-width: 8rem; }
.ns-report .ns-notes { font-size: .8rem; color: #444; margin: .1rem 0 1.2rem; }
.ns-report .ns-notes p { margin: .1rem 0; }
.ns-report figure { margin: .5rem 0 1.5rem; }
.ns-report figure img { max-width: 100%; height: auto; display: block; }
.ns-report figcaption, .ns-report .note { font-size: .85rem; color: #555; }
.ns-report nav.toc { background: #f7f7f7; border: 1px solid #e2e2e2; padding: .4rem 1rem; margin: 1rem 0; }
.ns-report nav.toc ol { margin: .2rem 0; padding-left: 1.2rem; columns: 2 18rem; }
.ns-report nav.toc a { color: #1a4f8b; text-decoration: none; }
.ns-report .summary { border-left: 4px solid #1a4f8b; padding: .2rem 0 .2rem 1rem; }
.ns-report .warn { background: #fff7e0; border-left: 4px solid #e0a800; padding: .3rem .6rem; margin: .3rem 0;
  font-size: .85rem; overflow-wrap: anywhere; }
@page { size: A4; margin: 18mm 15mm; }
@media print {
  .ns-report { max-width: none; padding: 0; color: #000; font-size: 10pt; }
  .ns-report nav.toc { display: none; }
  .ns-report .tbl-wrap { overflow: visible; }
  /* Nothing scrolls on paper: tables shrink to the printable width, long cells wrap. */
  .ns-report table.ns-tbl { font-size: 7pt; width: 100%; }
  .ns-report table.ns-tbl th, .ns-report table.ns-tbl td, .ns-report table.ns-tbl td.r,
  .ns-report table.ns-tbl th.r { white-space: normal; min-width: 0; padding: 1pt 2pt; }
  .ns-report table.ns-tbl thead th { overflow-wrap: break-word; hyphens: auto; }
  .ns-report .ns-notes, .ns-report figcaption, .ns-report .note { font-size: 7.5pt; }
  .ns-report table.ns-tbl td.l:first-child, .ns-report table.ns-tbl thead th.r { min-width: 0; }
  .ns-report table.ns-tbl, .ns-report figure, .ns-report .ns-table { break-inside: avoid; page-break-inside: avoid; }
  .ns-report h2, .ns-report h3 { break-after: avoid; page-break-after: avoid; }
  .ns-report figcaption, .ns-report .note, .ns-report .ns-notes { color: #000; }
  .ns-report .warn { background: none; }
}
"""


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
        frame = frame.map(str) if hasattr(frame, "map") else frame.applymap(str)  # type: ignore[operator]
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

    def to_html(self, *, table_id: str | None = None, caption: bool = True) -> str:
        """The table as an HTML fragment, every cell escaped, in the classes of :data:`STYLE`.

        A scroll container (``div.tbl-wrap``) holds the table, so a wide
        table scrolls instead of widening the page; each cell has the class of
        its column's alignment (``l``, ``r``, ``c``); indented rows' first cells
        ``i1``, ``i2``; the notes follow as paragraphs in ``div.ns-notes``. A
        line break in a header (``"Mild\\nn = 17"``) becomes ``<br>``.

        Parameters
        ----------
        table_id : str, optional
            ``id`` of the enclosing ``div.ns-table`` (link target).
        caption : bool, default True
            Show the title as the table's caption.

        Returns
        -------
        str

        Examples
        --------
        >>> t = DisplayTable("t", "A & B", pd.DataFrame({"Tier": ["<b>"], "n": ["<5"]}))
        >>> h = t.to_html()
        >>> "<caption>A &amp; B</caption>" in h, '<td class="l">&lt;b&gt;</td>' in h, '<td class="r">&lt;5</td>' in h
        (True, True, True)
        """
        def text(v: object) -> str:
            return html.escape(str(v)).replace("\n", "<br>")

        head = "".join(f'<th class="{a}" scope="col">{text(c)}</th>' for c, a in zip(self.frame.columns, self.align))
        rows = []
        nested = any(self.indent)
        for level, values in zip(self.indent, self.frame.itertuples(index=False)):
            # A row at level 0 above indented rows with nothing but its first cell heads a group (an outcome).
            if nested and not level and not any(str(v) for v in values[1:]):
                rows.append(f'<tr class="group"><th class="l" scope="rowgroup" colspan="{len(values)}">'
                            f"{text(values[0])}</th></tr>")
                continue
            cells = []
            for j, (v, a) in enumerate(zip(values, self.align)):
                cls = a + (f" i{min(level, 2)}" if j == 0 and level else "")
                cells.append(f'<td class="{cls}">{text(v)}</td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        ident = f' id="{html.escape(table_id)}"' if table_id else ""
        cap = f"<caption>{text(self.title)}</caption>" if caption and self.title else ""
        notes = "".join(f"<p>{text(n)}</p>" for n in self.notes)
        return (f'<div class="ns-table"{ident}><div class="tbl-wrap"><table class="ns-tbl">{cap}'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
                + (f'<div class="ns-notes">{notes}</div>' if notes else "") + "</div>")

    def _repr_html_(self) -> str:
        return f'<div class="ns-report"><style>{STYLE}</style>{self.to_html()}</div>'

    @classmethod
    def from_indexed(cls, name: str, title: str, frame: pd.DataFrame, *, notes: tuple[str, ...] = (),
                     counts_row: str | None = None, first_header: str | None = None) -> DisplayTable:
        """A display table from a frame whose index names the rows, two leading spaces per level.

        Parameters
        ----------
        name, title, notes
            As :class:`DisplayTable`.
        frame : pandas.DataFrame
            String cells; the index (e.g. Table 1's ``characteristic``) becomes
            the first column, its leading spaces the rows' indentation.
        counts_row : str, optional
            Label of a row of group sizes (Table 1's ``"n"``): it moves into
            the headers as ``"<column>\\nn = <cell>"`` (cells without a count
            keep their header).
        first_header : str, optional
            Header of the first column; default the index name, capitalised.

        Returns
        -------
        DisplayTable

        Examples
        --------
        >>> f = pd.DataFrame({"Mild": ["17", "60 [51–70]", "", "9 (52.9)"]},
        ...                  index=pd.Index(["n", "Age", "Sex", "  Female"], name="characteristic"))
        >>> t = DisplayTable.from_indexed("t1", "Table 1", f, counts_row="n")
        >>> list(t.frame.columns), t.indent, t.align
        (['Characteristic', 'Mild\\nn = 17'], (0, 0, 1), ('l', 'r'))
        """
        labels = [str(i) for i in frame.index]
        body = frame.reset_index(drop=True)
        if counts_row is not None and counts_row in labels:
            at = labels.index(counts_row)
            sizes = body.iloc[at].astype(str).tolist()
            body = body.drop(index=at).reset_index(drop=True)
            labels = labels[:at] + labels[at + 1:]
            body.columns = [f"{c}\nn = {n}" if n.strip() else str(c) for c, n in zip(body.columns, sizes)]
        indent = tuple((len(x) - len(x.lstrip(" "))) // 2 for x in labels)
        head = first_header or str(frame.index.name or "").capitalize()
        body.insert(0, head, [x.strip() for x in labels])
        return cls(name, title, body, align=("l",) + ("r",) * (body.shape[1] - 1), notes=tuple(notes), indent=indent)
