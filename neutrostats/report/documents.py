"""The report's tables as Word and LaTeX files (``tables/<name>.docx``, ``tables/<name>.tex``).

The writers themselves (:func:`table_to_latex`, :func:`tables_to_docx`) live
in :mod:`neutrostats.core.documents`, below the statistics, so that
:class:`~neutrostats.stats.tableone.TableOne` can use them too; this module
writes display tables into a report folder
(:func:`~neutrostats.report.render.write_outputs` passes the report's
publication tables, the same ones its HTML shows).

Examples
--------
>>> check_formats(["latex", "docx", "latex"])
('docx', 'latex')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from neutrostats.core.display import DisplayTable
from neutrostats.core.documents import table_to_latex, tables_to_docx
from neutrostats.errors import NeutrostatsError

__all__ = ["DOCUMENT_FORMATS", "check_formats", "table_to_latex", "tables_to_docx",
           "write_table_documents"]

#: Formats written on request, on top of the files every report has (HTML, JSON, CSV, PNG, SVG).
DOCUMENT_FORMATS = {"docx": ".docx", "latex": ".tex"}
_ALWAYS = ("html", "json", "csv", "png", "svg")


def check_formats(formats: Iterable[str] | str | None, *, fn: str = "write_table_documents",
                  option: str = "formats=") -> tuple[str, ...]:
    """The extra formats asked for, sorted and without repeats; an unknown one stops the call.

    Parameters
    ----------
    formats : iterable of str, str or None
        Among ``"docx"`` and ``"latex"``; a string is split at commas
        (``"docx,latex"``); None or empty means none.
    fn, option : str
        Function and option named in the error message (``"--formats "``
        for the command line).

    Returns
    -------
    tuple of str

    Raises
    ------
    NeutrostatsError
        For a format that is not ``docx`` or ``latex``.
    """
    if formats is None:
        return ()
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    names = [str(f).strip().lower() for f in items if str(f).strip()]
    bad = [f for f in names if f not in DOCUMENT_FORMATS]
    if bad:
        always = [f for f in bad if f in _ALWAYS]
        hint = (f" ({', '.join(always)} {'is' if len(always) == 1 else 'are'} always written)" if always else "")
        example = f"{option}docx,latex" if option.startswith("--") else f"{option}('docx', 'latex')"
        raise NeutrostatsError(f"{fn}: {option.strip(' =')} expected formats among {sorted(DOCUMENT_FORMATS)}, "
                               f"found {bad}{hint}; pass e.g. {example}")
    return tuple(sorted(set(names)))


def write_table_documents(tables: Mapping[str, DisplayTable] | Iterable[DisplayTable], folder: Any,
                          formats: Iterable[str] | str) -> list[str]:
    """Write each table as ``tables/<name>.docx`` and/or ``tables/<name>.tex``.

    Parameters
    ----------
    tables : mapping of str to DisplayTable, or iterable of DisplayTable
        File names come from each table's ``name``.
    folder : AtomicFolder or str or Path
        An open :class:`~neutrostats.core.output.AtomicFolder` (the files
        join the report's manifest), or a folder to write into directly.
    formats : iterable of str or str
        Among ``"docx"`` and ``"latex"`` (:func:`check_formats`).

    Returns
    -------
    list of str
        The paths written, relative to ``folder``, in order.

    Raises
    ------
    NeutrostatsError
        For an unknown format, and as :func:`tables_to_docx`.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> t = DisplayTable("demo", "Persons", pd.DataFrame({"Tier": ["Normal"], "n": ["<5"]}))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_table_documents([t], d, ["latex", "docx"])
    ['tables/demo.docx', 'tables/demo.tex']
    """
    wanted = check_formats(formats)
    items = list(tables.values()) if isinstance(tables, Mapping) else list(tables)
    write = _directory_writer(Path(folder)) if isinstance(folder, (str, Path)) else folder.write_bytes
    written = []
    for table in items:
        for fmt in wanted:
            data = (tables_to_docx([table]) if fmt == "docx" else table_to_latex(table).encode("utf-8"))
            relpath = f"tables/{table.name}{DOCUMENT_FORMATS[fmt]}"
            write(relpath, data)
            written.append(relpath)
    return written


def _directory_writer(root: Path):
    def write(relpath: str, data: bytes) -> None:
        target = root.joinpath(*relpath.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    return write
