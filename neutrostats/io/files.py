"""Readers for lab tables: CSV (optionally compressed) and Parquet.

Lab exports carry results as text (``"<0.1"``, ``"see comment"``), so the
result, unit and code columns are read as strings exactly as written: an
empty cell stays an empty string and ``"NA"`` stays ``"NA"`` (the classifier
flags both). Other columns get pandas' usual type inference.

Examples
--------
>>> import io as _io
>>> from neutrostats.io import read_table
>>> csv = _io.StringIO("person_id,value,unit\\n1,<0.1,10^9/L\\n2,,10^9/L\\n")
>>> read_table(csv)["value"].tolist()
['<0.1', '']
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.csvread import read_csv
from neutrostats.errors import NeutrostatsError

__all__ = ["read_table", "write_table", "check_output_path", "cbc_to_long", "TEXT_COLUMNS", "READ_SUFFIXES", "WRITE_SUFFIXES",
           "CBC_CODES"]

# pandas' default missing-value spellings (pandas.read_csv documentation).
_DEFAULT_NA = [
    "", " ", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]

#: Columns kept as text when reading.
TEXT_COLUMNS = ("value", "unit", "code")
#: Text columns read as pandas Categoricals (few distinct values).
CATEGORY_COLUMNS = ("unit", "code")


#: File name endings :func:`read_table` reads (compressed CSV by pandas' own rules).
READ_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".csv.zst", ".tsv", ".tsv.gz",
                 ".parquet", ".pq")
#: File name endings :func:`write_table` writes.
WRITE_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".parquet", ".pq")


def _is_parquet(path: Any) -> bool:
    return isinstance(path, (str, os.PathLike)) and str(path).lower().endswith((".parquet", ".pq"))


def _suffix(path: Any) -> str:
    """The file's suffixes as written, e.g. ``".csv.gz"``; ``""`` for none."""
    return "".join(Path(path).suffixes[-2:]).lower() if Path(path).suffix else ""


def _check_readable_path(path: Any, fn: str) -> None:
    """Raise for a missing path, a folder, or a suffix :func:`read_table` cannot read."""
    p = Path(path)
    if p.is_dir():
        raise NeutrostatsError(
            f"{fn}: {str(path)!r} is a folder, not a file; give one table file "
            f"({', '.join(READ_SUFFIXES)}); a MIMIC-IV, FHIR or OMOP export folder is read by "
            "read_mimic_iv, read_fhir or read_omop (neutrostats report --from)"
        )
    if not p.exists():
        raise NeutrostatsError(f"{fn}: file {str(path)!r} not found; check the path")
    name = p.name.lower()
    if not name.endswith(READ_SUFFIXES):
        found = _suffix(p) or "no suffix"
        raise NeutrostatsError(
            f"{fn}: cannot read {str(path)!r} ({found}); it reads {', '.join(READ_SUFFIXES)}: "
            "save the table as CSV or Parquet (a spreadsheet: 'Save as' CSV UTF-8), or rename the file "
            "if it already is one"
        )
    if p.stat().st_size == 0:
        raise NeutrostatsError(
            f"{fn}: file {str(path)!r} is empty (0 bytes); export the table again (with a header row)"
        )


def _csv_header(path: Any, sep: str) -> list[str]:
    """The header row exactly as written: pandas would rename a repeated ``x`` to ``x.1`` silently."""
    try:
        # The python engine keeps NUL bytes (pandas 2's C engine drops them, hiding binary data).
        first = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False, engine="python")
    finally:
        if hasattr(path, "seek"):
            path.seek(0)
    return [str(c) for c in first.iloc[0].tolist()] if len(first) else []


def read_table(path: Any, *, text_columns: tuple[str, ...] | str = TEXT_COLUMNS, allow_empty: bool = True,
               name: str = "table") -> pd.DataFrame:
    """Read a CSV (``.csv``, ``.csv.gz``, ``.tsv``...) or Parquet file into a DataFrame.

    Parameters
    ----------
    path : str, path or file-like
        The file; its suffix chooses the reader (:data:`READ_SUFFIXES`; a
        file-like object is read as CSV). Parquet (``.parquet``/``.pq``)
        is read with ``pyarrow`` (a dependency of neutrostats).
    text_columns : tuple of str or "all"
        Columns read as strings, exactly as written (CSV only; Parquet keeps
        its own types); ``"all"`` for every column (a wide CBC export).
        Of these, ``unit`` and ``code`` become Categoricals of those
        strings, which classify much faster (``"0123"`` stays ``"0123"``).
        The other columns get pandas' type inference (int64, float64, bool
        or text) with pandas' missing-value spellings. CSV text is parsed
        by pyarrow (on several cores where they are idle) with the values
        and dtypes ``pandas.read_csv`` gives; see
        :mod:`neutrostats.core.csvread`.
    allow_empty : bool, default True
        ``False``: a table with a header but no rows raises.
    name : str, default "table"
        What the table is (``"labs"``, ``"persons"``...), for messages.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    NeutrostatsError
        If the path does not exist or is a folder, its suffix is not one of
        :data:`READ_SUFFIXES`, the file is empty (0 bytes) or has no rows
        (with ``allow_empty=False``), a column name is repeated in the
        header, the file cannot be parsed (corrupt Parquet, binary data, a
        damaged or truncated ``.gz``, text that is not UTF-8, a row with
        more cells than the header), or pyarrow cannot be imported (a broken
        installation).

    See Also
    --------
    write_table : the reverse.
    neutrostats.build_cohort : takes the tables read.

    Examples
    --------
    >>> import io as _io
    >>> read_table(_io.StringIO("value,unit,value\\n1,10^9/L,2\\n"))
    Traceback (most recent call last):
    ...
    neutrostats.errors.NeutrostatsError: read_table: table has the column name(s) ['value'] more than once in its header; ...
    """
    fn = "read_table"
    label = str(path) if isinstance(path, (str, os.PathLike)) else "the input"
    if isinstance(path, (str, os.PathLike)):
        _check_readable_path(path, fn)
    try:
        if _is_parquet(path):
            try:
                import pyarrow  # noqa: F401
            except ImportError as exc:
                raise NeutrostatsError(
                    f"{fn}: reading Parquet needs pyarrow, a dependency of neutrostats that cannot be imported "
                    f"here ({exc}); reinstall it (pip install --force-reinstall 'pyarrow>=14') or convert the "
                    "file to CSV"
                ) from None
            try:
                df = pd.read_parquet(path)
            except (OSError, ValueError) as exc:
                # pyarrow's ArrowInvalid is a ValueError; its text names parquet internals only.
                raise NeutrostatsError(
                    f"{fn}: {label!r} is not a readable Parquet file ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:120] if str(exc) else 'no detail'}); it may be truncated or "
                    "still being written: export it again, or export CSV instead"
                ) from None
            dup = df.columns[df.columns.duplicated()]
            if len(dup):
                raise NeutrostatsError(
                    f"{fn}: {name} {label!r} has the column name(s) {sorted(map(str, pd.unique(dup)))} more "
                    "than once; rename the repeats in the export so every column has its own name"
                )
        else:
            sep = "\t" if isinstance(path, (str, os.PathLike)) and ".tsv" in _suffix(path) else ","
            raw = _csv_header(path, sep)
            if not raw:
                raise NeutrostatsError(
                    f"{fn}: {name} {label!r} has no header row (the file holds no text); export the table "
                    "again with a header row"
                )
            if any("\x00" in c for c in raw):
                raise NeutrostatsError(
                    f"{fn}: {name} {label!r} holds binary data (NUL bytes), not CSV text; it may be a "
                    "spreadsheet or a damaged file: save it as CSV (UTF-8) or Parquet"
                )
            seen: set[str] = set()
            dups = sorted({c for c in raw if c in seen or seen.add(c)})  # type: ignore[func-returns-value]
            if dups:
                raise NeutrostatsError(
                    f"{fn}: {name} has the column name(s) {dups} more than once in its header; "
                    f"rename the repeats in {label} so every column has its own name (pandas would "
                    "silently call the second one 'x.1')"
                )
            text = raw if isinstance(text_columns, str) and text_columns == "all" else \
                [c for c in text_columns if c in raw]
            # Only the other columns get pandas' missing-value spellings; text
            # columns keep "NA", "null" and empty cells as written.
            # Units and codes repeat a handful of spellings over millions of
            # rows; as categoricals they are looked up once per spelling. They
            # are made from the text: read_csv's dtype="category" gives numeric
            # categories on pandas 3 (the code "0123" would become 123.0).
            # pyarrow parses (core.csvread), with pandas.read_csv's result.
            df = read_csv(path, sep=sep, header=raw, text=text, categories=[c for c in text if c in CATEGORY_COLUMNS],
                          na_values=_DEFAULT_NA)
    except NeutrostatsError:
        raise
    except (EOFError, zlib.error) as exc:
        # A truncated or damaged .gz: zlib's words (pandas lets them through unwrapped).
        raise NeutrostatsError(
            f"{fn}: could not read {name} {label!r}: the compressed file is damaged or cut short "
            f"({type(exc).__name__}: {str(exc)[:120]}); copy or export it again, or export it uncompressed"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise NeutrostatsError(
            f"{fn}: could not read {name} {label!r} as {'Parquet' if _is_parquet(path) else 'CSV'} "
            f"({detail}); check that it is a text CSV (UTF-8) or Parquet file and not damaged"
        ) from None
    if not allow_empty and len(df) == 0:
        raise NeutrostatsError(
            f"{fn}: {name} {label!r} has a header but no rows (columns {[str(c) for c in df.columns][:10]}); "
            "check that the right file was exported and that the export's filter kept any rows"
        )
    return df


def check_output_path(path: Any, fn: str = "write_table") -> None:
    """Raise unless :func:`write_table` can write ``path`` (its suffix and folder)."""
    p = Path(path)
    if p.is_dir():
        raise NeutrostatsError(f"{fn}: {str(path)!r} is a folder; give a file name ending in "
                               f"{', '.join(WRITE_SUFFIXES)}")
    if not p.name.lower().endswith(WRITE_SUFFIXES):
        raise NeutrostatsError(
            f"{fn}: cannot write {str(path)!r} ({_suffix(p) or 'no suffix'}); the table is written as "
            f"{', '.join(WRITE_SUFFIXES)}: choose a file name with one of these endings (open a .csv in a "
            "spreadsheet program)"
        )
    if not p.parent.is_dir():
        raise NeutrostatsError(f"{fn}: the folder {str(p.parent)!r} of {str(path)!r} does not exist; "
                               "create it first or choose another path")


def write_table(df: pd.DataFrame, path: Any) -> None:
    """Write a DataFrame as CSV (``.csv``, ``.csv.gz``...) or Parquet (by suffix), atomically.

    The file is written beside ``path`` and then replaces it in one step,
    so an interrupted run never leaves a half-written table. CSV text cells
    that a spreadsheet would run as a formula (starting with ``=``, ``+``,
    ``-``, ``@``, tab or carriage return, and not a number) get a leading
    ``'``, as in every CSV neutrostats writes (OWASP's CSV-injection rule);
    numeric columns are written unchanged. Parquet times are written in
    microseconds, the finest unit Spark reads (digits below a microsecond
    are dropped).

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    path : str or path
        Target file; its suffix (one of :data:`WRITE_SUFFIXES`) chooses
        the format.

    Raises
    ------
    NeutrostatsError
        For a suffix it cannot write (``.xlsx``, ``.json``...), a folder
        that does not exist, or Parquet without pyarrow.

    See Also
    --------
    read_table : the reverse.
    """
    from neutrostats.core.output import atomic_file, to_safe_csv

    check_output_path(path)
    try:
        # Written beside the target and moved over it in one step: a killed run leaves no half table.
        with atomic_file(path) as tmp:
            if _is_parquet(path):
                try:
                    # Microseconds: Spark cannot read nanosecond Parquet timestamps.
                    df.to_parquet(tmp, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
                except ImportError as exc:
                    raise NeutrostatsError(
                        f"write_table: writing Parquet needs pyarrow, a dependency of neutrostats that cannot be "
                        f"imported here ({exc}); reinstall it (pip install --force-reinstall 'pyarrow>=14') or "
                        "write .csv"
                    ) from None
            else:
                to_safe_csv(df, tmp, index=False)
    except OSError as exc:
        raise NeutrostatsError(f"write_table: could not write {str(path)!r} ({exc.strerror or exc}); "
                               "check the folder's permissions and free disk space") from None


# ---------------------------------------------------------------------------
# Wide CBC exports

#: LOINC code given to each column role of a wide CBC export by :func:`cbc_to_long`.
CBC_CODES: Mapping[str, str] = MappingProxyType(
    {"anc": "751-8", "wbc": "6690-2", "neutrophil_pct": "770-8", "band_pct": "764-1"}
)

# Header spellings seen in Epic/Cerner-style reports, compared after
# upper-casing and removing spaces, dots, underscores and a trailing unit.
CBC_NAMES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "anc": ("ANC", "ABSNEUT", "ABSNEUTS", "ABSNEUTROPHILS", "ABSOLUTENEUTROPHILS", "ABSOLUTENEUTROPHILCOUNT",
            "NEUT#", "NEUTS#", "NEUTABS", "NEUTROPHILSABSOLUTE", "NEUTROPHILS,ABSOLUTE", "NEUTROPHILABSOLUTE"),
    "wbc": ("WBC", "WBCCOUNT", "LEUKOCYTES", "LEUKOCYTECOUNT", "WHITEBLOODCELLS", "WHITEBLOODCELLCOUNT",
            "WHITECELLCOUNT", "WCC"),
    "neutrophil_pct": ("NEUT%", "NEUTS%", "NEUTROPHIL%", "NEUTROPHILS%", "%NEUT", "%NEUTROPHILS",
                       "NEUTROPHILSPCT", "NEUTPCT", "NEUTROPHILS(%)"),
    "band_pct": ("BAND%", "BANDS%", "BANDNEUTROPHILS%", "%BANDS", "BANDSPCT", "BANDPCT", "BANDS(%)"),
})
_HEADER_UNIT = re.compile(r"^(?P<name>.*?)\s*[\(\[](?P<unit>[^\(\)\[\]]+)[\)\]]\s*$")


def header_key(header: str) -> tuple[str, str | None]:
    """Normalised name and the unit written in the header (``"WBC (10^9/L)"`` -> ``("WBC", "10^9/L")``)."""
    m = _HEADER_UNIT.match(header)
    name, unit = (m.group("name"), m.group("unit").strip()) if m else (header, None)
    if unit == "%" and not name.rstrip().endswith("%"):
        name = name + "%"
    return re.sub(r"[\s._\-]", "", name).upper(), unit


def _cell_text(v: Any) -> str:
    """A cell as text: strings as written, numbers in the shortest form that reads back the same."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return str(v)
    if isinstance(v, (float, np.floating)):
        return np.format_float_positional(v, trim="-") if np.isfinite(v) else str(v)
    return str(v)


def cbc_to_long(
    table: Any,
    *,
    person: str = "person_id",
    time: str = "sampled_at",
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Turn a wide CBC export (ANC, WBC, NEUT%, BAND% columns) into long lab rows with LOINC codes.

    Every non-empty cell of a recognised column becomes one row, in table
    order (row by row, then ANC, WBC, neutrophil %, band %). An empty cell
    is a test not done and gives no row, except that a sample whose cells
    are all empty keeps one row (value ``""``, from its first column) so
    that :func:`~neutrostats.classify_anc` counts it as missing instead of
    losing it. Values stay as written (``"<0.1"``, ``"see comment"``,
    ``"1,200"``); numeric cells become the shortest text that reads back as
    the same number.

    Columns are found by their header, case-insensitively and ignoring
    spaces, dots and underscores: ``ANC``, ``Abs Neut``, ``NEUT#`` ...
    (absolute count, LOINC 751-8); ``WBC``, ``Leukocytes`` (6690-2);
    ``NEUT%``, ``% Neutrophils`` (770-8); ``BAND%``, ``Bands %`` (764-1).
    A header may carry its unit: ``"WBC (10^9/L)"``, ``"ANC [cells/uL]"``.

    Parameters
    ----------
    table : pandas.DataFrame (or Polars/Arrow table)
        One row per sample.
    person, time : str
        Person id and sample time columns (copied as they are).
    columns : mapping, optional
        Role -> column name for headers not recognised, with roles
        ``"anc"``, ``"wbc"``, ``"neutrophil_pct"``, ``"band_pct"``; a role
        given here is not searched for.
    units : mapping, optional
        Role (or column name) -> unit, for columns whose header has no
        unit. A percentage header (``NEUT%``) has the unit ``%``.

    Returns
    -------
    pandas.DataFrame
        ``person`` and ``time`` columns as named in the input; ``code``
        (LOINC, :data:`CBC_CODES`); ``value`` (text as written); ``unit``;
        ``source_column`` (the header the cell came from); ``source_row``
        (position of the sample's row in ``table``, from 0).

    Raises
    ------
    NeutrostatsError
        If ``person`` or ``time`` is missing, two columns match one role,
        neither an ANC column nor WBC with neutrophil % is found, a
        ``columns`` entry names no column, or a column has no unit (in its
        header or ``units``).

    See Also
    --------
    neutrostats.classify_anc : classifies the long table made here.

    Examples
    --------
    >>> import pandas as pd
    >>> wide = pd.DataFrame({"person_id": [1, 2], "sampled_at": ["2020-01-01", "2020-01-02"],
    ...                      "ANC (10^9/L)": ["see comment", "1.6"], "WBC (10^9/L)": ["4.0", ""],
    ...                      "NEUT%": ["30", ""]})
    >>> cbc_to_long(wide)[["person_id", "code", "value", "unit"]]
       person_id    code        value    unit
    0          1   751-8  see comment  10^9/L
    1          1  6690-2          4.0  10^9/L
    2          1   770-8           30       %
    3          2   751-8          1.6  10^9/L
    """
    from neutrostats.core.validate import require_columns, require_dataframe

    fn = "cbc_to_long"
    table = require_dataframe(table, fn, "table")
    require_columns(table, [person, time], fn,
                    "name the person id and sample time columns with person= and time=")
    columns = dict(columns or {})
    units = dict(units or {})
    bad = sorted(set(columns) - set(CBC_CODES))
    if bad:
        raise NeutrostatsError(f"{fn}: unknown role(s) {bad} in columns=; the roles are {list(CBC_CODES)}")
    missing = [c for c in columns.values() if c not in table.columns]
    if missing:
        require_columns(table, missing, fn, "columns= maps a role to a column of the table")
    found: dict[str, list[str]] = {role: [] for role in CBC_CODES}
    header_units: dict[str, str | None] = {}
    for col in table.columns:
        key, unit = header_key(str(col))
        header_units[str(col)] = unit
        if col in (person, time) or col in columns.values():
            continue
        for role, names in CBC_NAMES.items():
            if role not in columns and key in names:
                found[role].append(str(col))
    for role, col in columns.items():
        found[role] = [col]
    twice = {role: cols for role, cols in found.items() if len(cols) > 1}
    if twice:
        role, cols = next(iter(twice.items()))
        raise NeutrostatsError(
            f"{fn}: columns {cols} all look like the {role} column; name the one to use with "
            f"columns={{'{role}': {cols[0]!r}}}"
        )
    roles = {role: cols[0] for role, cols in found.items() if cols}
    if "anc" not in roles and not {"wbc", "neutrophil_pct"} <= set(roles):
        raise NeutrostatsError(
            f"{fn}: found no ANC column and no WBC plus neutrophil % columns (found: "
            f"{ {r: c for r, c in roles.items()} or 'none'}) among the headers "
            f"{[str(c) for c in table.columns][:20]}; name them with columns={{'anc': ..., 'wbc': ..., "
            "'neutrophil_pct': ..., 'band_pct': ...}}"
        )
    role_units = {}
    for role, col in roles.items():
        unit = units.get(role, units.get(col, header_units.get(col)))
        if unit is None and role.endswith("_pct") and "%" in col:
            unit = "%"
        if unit is None:
            raise NeutrostatsError(
                f"{fn}: column {col!r} ({role}) has no unit in its header and none was given; pass "
                f"units={{'{role}': '10^9/L'}} (or the unit your lab reports, e.g. 'cells/uL'), or write the "
                f"header as '{col} (10^9/L)'"
            )
        role_units[role] = unit
    n = len(table)
    parts = []
    for order, (role, col) in enumerate(roles.items()):
        parts.append(pd.DataFrame({
            person: table[person].to_numpy(),
            time: table[time].to_numpy(),
            "code": CBC_CODES[role],
            "value": [_cell_text(v) for v in table[col].tolist()],
            "unit": role_units[role],
            "source_column": col,
            "source_row": np.arange(n, dtype=np.int64),
            "_order": order,
        }))
    out = pd.concat(parts, ignore_index=True)
    # An empty cell is a test not done (bands on an automated differential): no row. A sample whose
    # cells are all empty keeps one (its first column's) so that it is still counted, as missing.
    blank = out["value"].str.strip().eq("").to_numpy()
    all_blank = pd.Series(blank).groupby(out["source_row"].to_numpy()).transform("all").to_numpy()
    keep = ~blank | (all_blank & (out["_order"].to_numpy() == 0))
    out = out[keep]
    out = out.sort_values(["source_row", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
    # Keep the dtypes of the id and time columns the export had.
    for c in (person, time):
        out[c] = out[c].astype(table[c].dtype)
    for c in ("code", "unit", "source_column"):
        out[c] = out[c].astype("category")
    out["value"] = out["value"].astype(str)
    return out
