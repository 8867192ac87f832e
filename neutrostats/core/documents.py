"""Word and LaTeX forms of display tables, for the manuscript.

Both writers take :class:`~neutrostats.core.display.DisplayTable` objects, so
a table reads the same in the HTML report, Word and LaTeX: the same labels,
decimals, alignment, indentation and footnotes, and every small-cell mark
(``<5``, ``[c]``, ``[h]``) exactly as the display form has it.

- :func:`table_to_latex`: our own small writer (a ``table`` environment with
  ``booktabs`` rules). pandas' ``Styler.to_latex`` escapes through a regex
  that misses cases and sets alignment for all columns at once; a
  DisplayTable already holds strings, so writing the rows ourselves is
  shorter than configuring it and escapes every cell the same way.
- :func:`tables_to_docx`: python-docx (MIT), which writes real Word tables
  (paragraph alignment per cell, bold header, indentation, landscape
  sections) that a journal's production office can edit.

Examples
--------
>>> import pandas as pd
>>> from neutrostats.core.display import DisplayTable
>>> t = DisplayTable("demo", "Persons by tier", pd.DataFrame({"Tier": ["Normal", "Mild"], "n": ["1,204", "<5"]}))
>>> print(table_to_latex(t).splitlines()[4])
\\begin{tabular}{lr}
"""

from __future__ import annotations

import datetime
import io
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neutrostats.core.display import DisplayTable
from neutrostats.errors import NeutrostatsError

__all__ = ["latex_escape", "table_to_latex", "tables_to_docx", "normalise_zip"]

# The ten characters LaTeX treats specially in text; each gets the text-mode command that prints it.
_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIALS))
_LABEL_SAFE = re.compile(r"[^A-Za-z0-9:._-]")

#: Time stamp written into every .docx and .xlsx (document properties and zip entries), so that the
#: same tables give the same bytes. The zip format cannot store dates before 1980.
FIXED_TIME = datetime.datetime(2000, 1, 1, 0, 0, 0)

# More columns than this do not fit a portrait A4 page at 9 pt: the table gets a landscape section.
_PORTRAIT_MAX_COLUMNS = 7


def latex_escape(text: Any) -> str:
    r"""``text`` with every LaTeX special character escaped; anything else (unicode included) kept.

    Line breaks become spaces (a table cell is one line).

    Examples
    --------
    >>> print(latex_escape("50% of A&B_1 #2 {x} ~ ^ $5 \\ <5"))
    50\% of A\&B\_1 \#2 \{x\} \textasciitilde{} \textasciicircum{} \$5 \textbackslash{} <5
    """
    # One pass, so that the backslashes written for one character are not escaped again.
    out = _LATEX_RE.sub(lambda m: _LATEX_SPECIALS[m.group(0)], str(text))
    return out.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def table_to_latex(table: DisplayTable) -> str:
    r"""The table as a LaTeX ``table`` float with ``booktabs`` rules.

    Caption from ``table.title``, label ``tab:<name>``, one ``l``/``r``/``c``
    column per ``table.align``, indented rows with ``\quad`` per level, the
    footnotes in small type under the rule. A header with line breaks
    (``"Mild\nn = 17"``) takes one header row per line. Every cell, header, caption and
    note is escaped (:func:`latex_escape`), so data values cannot inject
    LaTeX; small-cell marks (``<5``, ``[c]``, ``[h]``) are written as they are.

    The document needs ``\usepackage{booktabs}``. Unicode characters
    (``≥``, ``×10⁹/L``, ``–``, ``µ``) are kept as they are: compile with
    LuaLaTeX or XeLaTeX (``fontspec``), or with pdfLaTeX and
    ``\usepackage[T1]{fontenc}`` plus ``\DeclareUnicodeCharacter`` for the
    characters its ``utf8`` input lacks (``≥``, ``⁹``). T1 (or a unicode
    engine) is also what prints ``<`` and ``>`` as themselves.

    Parameters
    ----------
    table : DisplayTable

    Returns
    -------
    str
        The ``\begin{table}`` ... ``\end{table}`` block, ending with a newline.

    Examples
    --------
    >>> import pandas as pd
    >>> t = DisplayTable("or_table", "ORs for HIV & AML", pd.DataFrame(
    ...     {"Tier": ["Normal", "Mild"], "OR (95% CI)": ["1.00", "2.10 (1.20–3.70)"]}),
    ...     notes=("ORs from mid-p.",), indent=(0, 1))
    >>> print(table_to_latex(t), end="")
    \begin{table}[htbp]
    \centering
    \caption{ORs for HIV \& AML}
    \label{tab:or_table}
    \begin{tabular}{lr}
    \toprule
    Tier & OR (95\% CI) \\
    \midrule
    Normal & 1.00 \\
    \quad Mild & 2.10 (1.20–3.70) \\
    \bottomrule
    \end{tabular}
    <BLANKLINE>
    \smallskip
    \begin{minipage}{\linewidth}\footnotesize
    ORs from mid-p.
    \end{minipage}
    \end{table}
    """
    if not isinstance(table, DisplayTable):
        raise NeutrostatsError(f"table_to_latex: expected a DisplayTable, found {type(table).__name__}; "
                               "build one with neutrostats.core.display.DisplayTable(...) or TableOne.display_table()")
    frame = table.frame

    def row(cells: Sequence[str]) -> str:
        return " & ".join(cells) + r" \\"

    lines = [r"\begin{table}[htbp]", r"\centering", rf"\caption{{{latex_escape(table.title)}}}",
             rf"\label{{tab:{_LABEL_SAFE.sub('-', table.name)}}}",
             rf"\begin{{tabular}}{{{''.join(table.align)}}}", r"\toprule"]
    # A header with line breaks ("Mild\nn = 17") takes one header row per line, without extra packages.
    parts = [str(c).splitlines() or [""] for c in frame.columns]
    depth = max((len(p) for p in parts), default=1)
    lines += [row([latex_escape(p[i]) if i < len(p) else "" for p in parts]) for i in range(depth)]
    lines.append(r"\midrule")
    for level, values in zip(table.indent, frame.itertuples(index=False)):
        cells = [latex_escape(v) for v in values]
        if cells and level:
            cells[0] = r"\quad " * level + cells[0]
        lines.append(row(cells))
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        # A blank line ends the tabular's paragraph, so the notes start under the table at its width.
        lines += ["", r"\smallskip", r"\begin{minipage}{\linewidth}\footnotesize"]
        lines += [latex_escape(n) + (r"\par" if i < len(table.notes) - 1 else "")
                  for i, n in enumerate(table.notes)]
        lines.append(r"\end{minipage}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


_CORE_DATES = re.compile(rb"(<dcterms:(?:created|modified)\b[^>]*>)[^<]*(</dcterms:(?:created|modified)>)")


def normalise_zip(data: bytes) -> bytes:
    """The same Office (zip) file with every entry and document date set to :data:`FIXED_TIME`.

    Writers of .docx and .xlsx stamp each zip entry, and openpyxl the
    document's ``modified`` property, with the current time; fixing them
    makes the same document give the same bytes. Entries keep their order.

    Examples
    --------
    >>> import io, zipfile
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w") as z:
    ...     z.writestr("docProps/core.xml", "<dcterms:modified x='1'>2031-05-05T10:00:00Z</dcterms:modified>")
    >>> z = zipfile.ZipFile(io.BytesIO(normalise_zip(buf.getvalue())))
    >>> z.read("docProps/core.xml"), z.infolist()[0].date_time
    (b"<dcterms:modified x='1'>2000-01-01T00:00:00Z</dcterms:modified>", (2000, 1, 1, 0, 0, 0))
    """
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode("ascii")
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _CORE_DATES.sub(lambda m: m.group(1) + stamp + m.group(2), body)
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            out.writestr(fixed, body)
    return buf.getvalue()


def _import_docx(fn: str) -> Any:
    try:
        import docx
    except ImportError:
        raise NeutrostatsError(f"{fn}: Word files need python-docx, which is not installed; install it with "
                               "pip install 'neutrostats[docx]' (or pip install python-docx)") from None
    return docx


def tables_to_docx(tables: Sequence[DisplayTable], path: str | Path | None = None, *,
                   title: str | None = None) -> bytes:
    """One Word document (.docx) holding ``tables``, each with its caption above and its notes below.

    A4 pages; each table has a bold header row repeated on every page,
    numbers right-aligned and text left-aligned (``table.align``), level
    rows indented, rules above and below the header and at the end (the
    booktabs look journals ask for) and 9-point type. A table with more than
    seven columns gets a landscape section of its own. Document properties
    and zip entries carry a fixed date (:data:`FIXED_TIME`), so the same
    tables give the same bytes.

    Parameters
    ----------
    tables : sequence of DisplayTable
    path : str or Path, optional
        Where to write the file; without it only the bytes are returned.
    title : str, optional
        Heading at the top of the document and its title property.

    Returns
    -------
    bytes
        The .docx file.

    Raises
    ------
    NeutrostatsError
        Without python-docx (``pip install 'neutrostats[docx]'``), for an
        empty ``tables`` or an item that is not a DisplayTable.

    Examples
    --------
    >>> import io, docx, pandas as pd
    >>> t = DisplayTable("demo", "Persons by tier", pd.DataFrame({"Tier": ["Normal", "Mild"], "n": ["1,204", "<5"]}))
    >>> doc = docx.Document(io.BytesIO(tables_to_docx([t])))
    >>> [c.text for c in doc.tables[0].rows[2].cells]
    ['Mild', '<5']
    """
    docx = _import_docx("tables_to_docx")
    tables = list(tables)
    bad = [type(t).__name__ for t in tables if not isinstance(t, DisplayTable)]
    if not tables or bad:
        raise NeutrostatsError(f"tables_to_docx: expected a non-empty sequence of DisplayTable, found "
                               f"{bad[:3] or 'an empty sequence'}; build them with DisplayTable(...) or "
                               "TableOne.display_table()")
    doc = docx.Document()
    _page_setup(doc)
    if title:
        doc.add_heading(title, level=1)
    for i, table in enumerate(tables):
        _orient(doc, landscape=table.frame.shape[1] > _PORTRAIT_MAX_COLUMNS, first=i == 0 and not title)
        _add_table(doc, table)
    props = doc.core_properties
    props.title, props.author, props.last_modified_by = title or "", "neutrostats", "neutrostats"
    props.comments, props.revision = "", 1
    props.created = props.modified = props.last_printed = FIXED_TIME
    buf = io.BytesIO()
    doc.save(buf)
    data = normalise_zip(buf.getvalue())
    if path is not None:
        from neutrostats.core.output import atomic_file

        with atomic_file(path) as tmp:
            tmp.write_bytes(data)
    return data


def _page_setup(doc: Any) -> None:
    from docx.shared import Cm, Pt

    section = doc.sections[0]
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    section.left_margin = section.right_margin = Cm(2.0)
    section.top_margin = section.bottom_margin = Cm(2.0)
    doc.styles["Normal"].font.size = Pt(10)


def _orient(doc: Any, *, landscape: bool, first: bool) -> None:
    """Start a section of the wanted orientation unless the current one has it."""
    from docx.enum.section import WD_ORIENT, WD_SECTION

    section = doc.sections[-1]
    if (section.orientation == WD_ORIENT.LANDSCAPE) == landscape:
        return
    if not first:
        section = doc.add_section(WD_SECTION.NEW_PAGE)
    width, height = section.page_width, section.page_height
    section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = height, width


def _border(parent: Any, tag: str, edges: Sequence[str], size: int) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    borders = OxmlElement(tag)
    for edge in edges:
        e = OxmlElement(f"w:{edge}")
        e.set(qn("w:val"), "single")
        e.set(qn("w:sz"), str(size))
        e.set(qn("w:space"), "0")
        e.set(qn("w:color"), "000000")
        borders.append(e)
    parent.append(borders)


def _add_table(doc: Any, table: DisplayTable) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Cm, Pt

    align = {"l": WD_ALIGN_PARAGRAPH.LEFT, "r": WD_ALIGN_PARAGRAPH.RIGHT, "c": WD_ALIGN_PARAGRAPH.CENTER}
    caption = doc.add_paragraph(table.title, style="Caption")
    caption.paragraph_format.keep_with_next = True
    frame = table.frame
    t = doc.add_table(rows=len(frame) + 1, cols=frame.shape[1])
    t.autofit = True
    _border(t._tbl.tblPr, "w:tblBorders", ("top", "bottom"), 8)
    rows = t.rows
    # The header row repeats at the top of every page the table runs onto.
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    rows[0]._tr.get_or_add_trPr().append(header)
    body = [list(frame.columns)] + [list(r) for r in frame.itertuples(index=False)]
    for i, (row, values) in enumerate(zip(rows, body)):
        for j, (cell, text) in enumerate(zip(row.cells, values)):
            p = cell.paragraphs[0]
            p.alignment = align[table.align[j]]
            p.paragraph_format.space_after = Pt(0)
            run = p.add_run(str(text))
            run.font.size = Pt(9)
            if i == 0:
                run.bold = True
                _border(cell._tc.get_or_add_tcPr(), "w:tcBorders", ("bottom",), 4)
            elif j == 0 and table.indent[i - 1]:
                p.paragraph_format.left_indent = Cm(0.4 * table.indent[i - 1])
    _column_widths(doc, t, table)
    for note in table.notes:
        p = doc.add_paragraph()
        p.paragraph_format.space_after = Pt(0)
        p.add_run(note).font.size = Pt(8)
    doc.add_paragraph()


def _column_widths(doc: Any, t: Any, table: DisplayTable) -> None:
    """Widths by content over the text width: LibreOffice and Google Docs use them as they are (Word autofits)."""
    section = doc.sections[-1]
    usable = section.page_width - section.left_margin - section.right_margin
    frame = table.frame
    # Longest line per column in characters, between a narrow number column and a wrapped label column.
    chars = [min(40, max(4, *(len(line) for cell in [col, *frame[col]] for line in str(cell).splitlines() or [""])))
             for col in frame.columns]
    total = sum(chars)
    for j, column in enumerate(t.columns):
        width = int(usable * chars[j] / total)
        column.width = width
        for cell in column.cells:
            cell.width = width
