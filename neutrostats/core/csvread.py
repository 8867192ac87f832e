"""CSV text read into pandas with pyarrow's multi-threaded parser, with the result pandas.read_csv gives.

pandas' C parser tokenises and converts on one thread; pyarrow's splits the
text into blocks and parses them on every core. :func:`read_csv` uses
pyarrow to cut the file into cells, every cell as a string exactly as
written, and then gives each column the type pandas would: text columns stay
text, and the others get pandas' inference (int64, float64, bool or text,
with the missing-value spellings given). Where pandas' choice is not certain
from a cheap test (numbers of more than 15 digits, exponents, integers
beyond int64, unusual spellings) the column's cells are handed to
``pandas.read_csv`` itself, so its rules decide; where pyarrow cannot cut a
file the way pandas does (rows with too few or too many cells, a quote left
open at the end, NUL bytes, a carriage return not followed by a line feed,
text that is not UTF-8, a single column, no data rows) the whole file is
read by ``pandas.read_csv``, which pads, refuses or raises exactly as it
always did; so is a plain file under 2 MiB, where pyarrow's fixed costs
outweigh its gain. pyarrow's parser takes somewhat less CPU than pandas'
and gains most on several cores; it uses them where one is idle
(:func:`_threads`).

The result equals::

    df = pandas.read_csv(path, sep=sep, dtype={c: str for c in text}, keep_default_na=False,
                         na_values={c: na_values for c in header if c not in text or text_na},
                         low_memory=False)   # na_filter=False when na_values is empty
    for c in categories:
        df[c] = df[c].astype("category")

column by column, values and dtypes (``tests/test_csvread.py`` compares
them on generated and hand-written files, on pandas 2 and 3). Categories are
those of the text, as ``astype("category")`` makes them: ``dtype="category"``
in ``read_csv`` gives numeric categories on pandas 3 (``"0123"`` becomes
``123.0``), and pandas' path reads such a column again as text.

A ``.gz`` file is decompressed in memory first, with ``isal`` (ISA-L,
about twice as fast as zlib) when it is installed and Python's ``gzip``
otherwise; the bytes, and so the result, are the same.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gzip
import io
import mmap
import os
import re
import types
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["read_csv", "FAST_SUFFIXES", "PANDAS_DEFAULT_NA"]

#: pandas' default missing-value spellings (``keep_default_na=True``; the same in pandas 2 and 3).
PANDAS_DEFAULT_NA = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
                     "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")

#: File name endings :func:`read_csv` reads with pyarrow (others go to pandas).
FAST_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")

# A cell pandas might turn into a number or a bool: a superset of what its
# int, float and bool converters accept (pandas 2 and 3; surrounding
# whitespace, signs, exponents, inf/nan, true/false in any case). A column
# with one non-missing cell outside it is text for pandas, whatever the rest.
_MAYBE_SCALAR = r"(?i)^[ \t\n\x0b\x0c\r]*[+-]?(?:[0-9]+\.?[0-9]*(?:e[+-]?[0-9]+)?|\.[0-9]+(?:e[+-]?[0-9]+)?" \
                r"|inf|infinity|nan|true|false)[ \t\n\x0b\x0c\r]*$"
_MAYBE_SCALAR_PY = re.compile(_MAYBE_SCALAR.replace("(?i)", ""), re.IGNORECASE)
# Integers (the cast to int64 refuses those beyond its range; pandas then decides).
_INT = r"^-?[0-9]+$"
_INT_PY = re.compile(r"-?[0-9]+")
# An integer pandas' int64 parser may find too long: it then reads the column as text and, if that
# comes before any other cell it cannot parse, keeps the missing spellings as written.
_LONG_INT = r"^[ \t\n\x0b\x0c\r]*[+-]?[0-9]{19,}[ \t\n\x0b\x0c\r]*$"
_LONG_INT_PY = re.compile(_LONG_INT)
# Decimals without exponent; with at most 15 digits (checked apart) every
# converter pandas has (its own, round-trip, pandas 3's) and pyarrow's give
# the correctly rounded double: the digits are exact in a double and the
# scale is one exact power of ten.
_DECIMAL = r"^-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)$"
_BOOLS = ("True", "TRUE", "true", "False", "FALSE", "false")
# Cells of the row appended after the data to see whether the file ends in an open quote (pandas
# refuses that; pyarrow would take the rest of the file as the last cell).
_SENTINEL = "\x01"
_LONE_CR = re.compile(rb"\r(?!\n)")
_SAMPLE = 1000


def _pyarrow() -> Any:
    import pyarrow
    import pyarrow.compute
    import pyarrow.csv

    return pyarrow


_PYARROW: bool | None = None  # None: by size; True/False: always/never (tests and benchmarks)
# Below this size a plain file is parsed by pandas: pyarrow's fixed costs (threads, blocks, the typing
# of each column) outweigh its gain (deaths.csv, 0.9 MB: 5 ms against pandas' 3 ms).
_SMALL = 2 << 20


def _threads() -> bool:
    """Whether pyarrow parses on several threads: only where a core is idle.

    On a machine whose cores are all busy (the one-minute load average at
    least the number of cores) the threads wait for each other: parsing
    the 64 MB labs table of benchmarks/bench_read.py took 0.36 s on one
    thread and 0.59 s on two at a load of 12 on 2 cores (medians of 5).
    The result is the same either way.
    """
    cores = os.cpu_count() or 1
    try:
        return cores > 1 and os.getloadavg()[0] < cores
    except (AttributeError, OSError):  # no load average (Windows)
        return cores > 1


def _str_dtype() -> Any:
    """The dtype pandas gives text read with ``dtype=str``: ``object`` on pandas 2, ``str`` on pandas 3."""
    return pd.Series(["x"], dtype=str).dtype


def _load(path: str | os.PathLike) -> bytes | mmap.mmap:
    """The file's bytes: a ``.gz`` decompressed in memory, a plain file memory-mapped (no copy)."""
    with open(path, "rb") as fh:
        if not str(path).lower().endswith(".gz"):
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        data = fh.read()
    gz: types.ModuleType = gzip
    with contextlib.suppress(ImportError):
        from isal import igzip as gz  # type: ignore[import-not-found,no-redef,unused-ignore]  # optional: the same bytes, about twice as fast
    return gz.decompress(data)


def _parse(data: bytes | mmap.mmap, sep: str, header: Sequence[str], categories: Collection[str]) -> Any:
    """Every cell as text (a pyarrow Table), or None where pyarrow would not cut the text as pandas does.

    Category columns come dictionary-encoded (pyarrow hashes them while it
    parses, on every core); the others as ``large_string``, which pandas 3
    keeps without a copy.
    """
    pa = _pyarrow()
    if data.find(b"\x00") >= 0:
        return None  # pandas 2 cuts cells at a NUL byte, pandas 3 keeps it: pandas decides
    if data.find(b"\r") >= 0 and _LONE_CR.search(data):
        # A carriage return alone ends a line for both, but pandas reads ",x" after a blank line so
        # ended as ["x", ""]: such files are left to pandas.
        return None
    quoted = data.find(b'"') >= 0
    source: Any = pa.py_buffer(data)
    if quoted:
        # Only with a quote can a cell hold a line break or the file end inside a quoted cell
        # (pandas refuses that; pyarrow would take the rest of the file as the last cell). A row of
        # sentinels after the data is read as a row only if no quote is left open.
        tail = ("\n" + sep.join([_SENTINEL] * len(header)) + "\n").encode()
        joined = bytearray(len(data) + len(tail))
        joined[: len(data)], joined[len(data):] = data, tail
        source = pa.py_buffer(joined)
    types = {c: pa.dictionary(pa.int32(), pa.string()) if c in categories else pa.large_string() for c in header}
    try:
        table = pa.csv.read_csv(
            pa.BufferReader(source),
            read_options=pa.csv.ReadOptions(use_threads=_threads()),
            # newlines_in_values costs pyarrow a slower split into blocks: only where quotes are.
            parse_options=pa.csv.ParseOptions(delimiter=sep, quote_char='"', double_quote=True, escape_char=False,
                                              newlines_in_values=quoted, ignore_empty_lines=True),
            convert_options=pa.csv.ConvertOptions(column_types=types, strings_can_be_null=False, check_utf8=True),
        )
    except (pa.ArrowException, ValueError, OSError):
        return None  # ragged rows, bad UTF-8, a cell longer than a block: pandas pads or raises
    if table.column_names != list(header) or table.schema.types != [types[c] for c in header]:
        return None
    if quoted:
        last = table.slice(table.num_rows - 1) if table.num_rows else None
        if last is None or any(col[0].as_py() != _SENTINEL for col in last.columns):
            return None  # the sentinel row went into an open quote: pandas raises
        table = table.slice(0, table.num_rows - 1)
    return table if table.num_rows else None


def _null_where(col: Any, missing: Any) -> Any:
    pa = _pyarrow()
    return pa.compute.if_else(missing, pa.scalar(None, col.type), col)


def _strings(col: Any, missing: Any, str_dtype: Any) -> pd.Series:
    """A text column as pandas reads it: ``str`` (pandas 3) or ``object``, missing cells NaN."""
    if str_dtype == object:
        values = col.to_numpy(zero_copy_only=False)
        if missing is not None:
            values[missing.to_numpy(zero_copy_only=False)] = np.nan
        return pd.Series(values, dtype=object)
    # Kept in pyarrow's blocks (classify_anc takes as long as on one piece; joining them copies the text).
    return pd.Series(str_dtype.__from_arrow__(_null_where(col, missing) if missing is not None else col))


def _categories(col: Any, na_values: Sequence[str], str_dtype: Any) -> pd.Series:
    """A dictionary-encoded text column as ``astype("category")`` makes it: categories sorted, missing NaN."""
    pa = _pyarrow()
    pc = pa.compute
    col = col.unify_dictionaries()  # one dictionary for every block
    chunks = [c for c in col.chunks if len(c)]
    uniques = chunks[0].dictionary
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks])
    # Only spellings that occur (the dictionary may hold the sliced-off sentinel row's) and are not missing.
    keep = np.bincount(codes, minlength=len(uniques)) > 0
    if na_values:
        keep &= ~pc.is_in(uniques, value_set=pa.array(list(na_values), uniques.type)).to_numpy(zero_copy_only=False)
    kept = np.flatnonzero(keep)
    order = kept[pc.array_sort_indices(uniques.take(pa.array(kept))).to_numpy()]
    # Codes in the order of the sorted categories, in the smallest integer type (as pandas keeps them);
    # a missing spelling's code becomes -1.
    small = next(t for t in (np.int8, np.int16, np.int32, np.int64) if len(order) < np.iinfo(t).max)
    recode = np.full(len(uniques), -1, dtype=small)
    recode[order] = np.arange(len(order))
    cats = pd.Index(_strings(uniques.take(pa.array(order)), None, str_dtype))
    return pd.Series(pd.Categorical.from_codes(recode[codes], categories=cats, validate=False))


def _delegate(col: Any, na_values: Sequence[str], float_precision: str | None) -> pd.Series:
    """pandas' own inference for one column: its cells, quoted, read by ``pandas.read_csv``."""
    pa = _pyarrow()
    pc = pa.compute
    cells = pc.replace_substring(col.cast(pa.large_string()), '"', '""')
    quote, end, joint = (pa.scalar(v, pa.large_string()) for v in ('"', '"\n', ""))
    lines = pc.binary_join_element_wise(quote, cells, end, joint)
    arr = pa.concat_arrays(lines.chunks) if hasattr(lines, "chunks") else lines
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    body = memoryview(arr.buffers()[2])[offsets[0]:offsets[-1]]
    na = {"na_values": {"x": list(na_values)}} if na_values else {"na_filter": False}
    exact = {"float_precision": float_precision} if float_precision else {}
    out = pd.read_csv(io.BytesIO(b"x\n" + bytes(body)), keep_default_na=False, low_memory=False,
                      **na, **exact)  # type: ignore[call-overload]
    return out["x"].rename(None)


def _all(mask: Any) -> bool:
    pc = _pyarrow().compute
    return bool(pc.all(mask, skip_nulls=False).as_py()) if len(mask) else True


def _is_int(col: Any) -> bool:
    """Whether every cell is an integer in digits (the cast to int64 then checks the range)."""
    pc = _pyarrow().compute
    # Ids are digits only: the test for that is several times faster than the regular expression.
    if _all(pc.ascii_is_decimal(col)):
        return True
    return bool(pc.any(pc.starts_with(col, "-")).as_py()) and _all(pc.match_substring_regex(col, _INT))


def _head(col: Any, na_values: Sequence[str]) -> str:
    """What the first cells say: ``"text"`` (pandas reads text), ``"pandas"`` (left to pandas), else the
    kinds of number seen: ``"int"``, ``"bool"`` or ``"number"`` (floats, mixtures, nothing but missing).

    ``"pandas"`` where an integer too long for int64 comes before any text:
    pandas then reads the column as text without its missing spellings
    (``""`` stays ``""``).
    """
    na = set(na_values)
    kinds = set()
    for v in col.slice(0, _SAMPLE).to_pylist():
        if v in na:
            continue
        if _LONG_INT_PY.match(v):
            return "pandas"
        if not _MAYBE_SCALAR_PY.match(v):
            return "text"
        kinds.add("int" if _INT_PY.fullmatch(v) else "bool" if v in _BOOLS else "number")
    return kinds.pop() if len(kinds) == 1 else "number"


def _missing(col: Any, na_values: Sequence[str]) -> Any:
    """Where a cell is a missing spelling (a pyarrow bool array), or None where none is."""
    pa = _pyarrow()
    pc = pa.compute
    if not na_values:
        return None
    # Dates, names and times are longer than every spelling: the length test spares the look-up.
    longest = max(len(s.encode()) for s in na_values)
    if not pc.any(pc.less_equal(pc.binary_length(col), longest)).as_py():
        return None
    missing = pc.is_in(col, value_set=pa.array(list(na_values), col.type))
    return missing if pc.any(missing).as_py() else None


def _inferred(col: Any, na_values: Sequence[str], float_precision: str | None, str_dtype: Any) -> pd.Series:
    """A column without a type given, typed as pandas infers it (int64, float64, bool or text).

    The first cells choose which test to try first (they show most columns
    of dates or names to be text at once); the tests then look at every cell.
    """
    pa = _pyarrow()
    pc = pa.compute
    head = _head(col, na_values)
    if head == "pandas":
        return _delegate(col, na_values, float_precision)
    if head == "text":
        return _strings(col, _missing(col, na_values), str_dtype)
    if head == "int" and _is_int(col):  # no missing spelling is made of digits
        try:
            return pd.Series(pc.cast(col, pa.int64()).to_numpy())
        except pa.ArrowInvalid:
            return _delegate(col, na_values, float_precision)  # beyond int64: uint64 or text, as pandas has it
    if head == "bool":
        # Position among the six spellings (null for any other cell, a missing one included): one pass.
        where = pc.index_in(col, value_set=pa.array(_BOOLS, col.type))
        if where.null_count == 0:
            return pd.Series(pc.less(where, 3).to_numpy(zero_copy_only=False))
    missing = _missing(col, na_values)
    with_na = _null_where(col, missing) if missing is not None else col  # missing cells null
    if with_na.null_count == len(col):
        return pd.Series(np.full(len(col), np.nan))  # nothing but missing cells: pandas gives float64
    if head != "bool":
        digits = pc.subtract(pc.subtract(pc.utf8_length(with_na), pc.count_substring(with_na, "-")),
                             pc.count_substring(with_na, "."))
        if _all(pc.fill_null(pc.and_(pc.match_substring_regex(with_na, _DECIMAL), pc.less_equal(digits, 15)),
                             True)):
            try:
                return pd.Series(pc.cast(with_na, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64))
            except pa.ArrowInvalid:
                pass  # a spelling pyarrow does not take: pandas decides
    if not _all(pc.fill_null(pc.match_substring_regex(with_na, _MAYBE_SCALAR), True)) \
            and not pc.any(pc.match_substring_regex(col, _LONG_INT)).as_py():
        return _strings(col, missing, str_dtype)  # a cell further down is text
    return _delegate(col, na_values, float_precision)


def _frame(table: Any, header: Sequence[str], text: Collection[str], categories: Collection[str],
           na_values: Sequence[str], text_na: bool, float_precision: str | None) -> pd.DataFrame:
    pa = _pyarrow()
    str_dtype = _str_dtype()

    def column(i: int) -> pd.Series:
        raw, col = header[i], table.column(i)
        # pandas names an empty header cell "Unnamed: i"; its na_values (keyed by the empty name) then
        # miss the renamed column, so it gets none.
        na = na_values if raw != "" else ()
        if raw in categories:
            return _categories(col, na if text_na else (), str_dtype)
        if raw in text:
            missing = pa.compute.is_in(col, value_set=pa.array(list(na), col.type)) if text_na and na else None
            return _strings(col, missing if missing is not None and pa.compute.any(missing).as_py() else None,
                            str_dtype)
        return _inferred(col, na, float_precision, str_dtype)

    names = [raw if raw != "" else f"Unnamed: {i}" for i, raw in enumerate(header)]
    if _threads():
        # The columns are typed independently, mostly in pyarrow and numpy kernels that let go of the GIL.
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, len(names))) as pool:
            series = list(pool.map(column, range(len(names))))
    else:
        series = [column(i) for i in range(len(names))]
    return pd.DataFrame(dict(zip(names, series)), copy=False)


def _pandas(path: Any, sep: str, header: Sequence[str] | None, text: Collection[str], categories: Collection[str],
            na_values: Sequence[str], text_na: bool, float_precision: str | None) -> pd.DataFrame:
    """The reference: ``pandas.read_csv`` with the arguments :func:`read_csv` stands for."""
    names = header if header is not None else [str(c) for c in pd.read_csv(path, sep=sep, nrows=0).columns]
    if hasattr(path, "seek"):
        path.seek(0)
    na: dict[str, Any] = {"na_values": {c: list(na_values) for c in names if c not in text or text_na}} \
        if na_values else {"na_filter": False}
    exact = {"float_precision": float_precision} if float_precision else {}
    dtype = {c: ("category" if c in categories else str) for c in text}
    df = pd.read_csv(path, sep=sep, dtype=dtype, keep_default_na=False, low_memory=False, **na, **exact)  # type: ignore[call-overload]
    # pandas 3 gives numeric categories where every cell looks like a number ("0123" -> 123.0): those
    # columns are read again as text (read as text at once, every category column costs more).
    again = [c for c in categories if c in df.columns
             and pd.api.types.infer_dtype(df[c].cat.categories, skipna=True) != "string"]
    if again:
        if hasattr(path, "seek"):
            path.seek(0)
        na_again: dict[str, Any] = {"na_values": {c: list(na_values) for c in again}} \
            if na_values and text_na else {"na_filter": False}
        text_again = pd.read_csv(path, sep=sep, usecols=again, dtype={c: str for c in again}, keep_default_na=False,
                                 low_memory=False, **na_again)
        for c in again:
            df[c] = text_again[c].astype("category")
    return df


def read_csv(path: Any, *, sep: str = ",", header: Sequence[str] | None = None, text: Collection[str] = (),
             categories: Collection[str] = (), na_values: Sequence[str] = (), text_na: bool = False,
             float_precision: str | None = None) -> pd.DataFrame:
    """Read a CSV file as ``pandas.read_csv`` does (see the module docstring), parsing with pyarrow.

    Parameters
    ----------
    path : str, path or file-like
        The file. A path ending in one of :data:`FAST_SUFFIXES` is parsed
        by pyarrow; anything else (other compressions, file-like objects)
        by ``pandas.read_csv`` with the same arguments.
    sep : str, default ","
        The delimiter (``"\\t"`` for TSV).
    header : sequence of str, optional
        The header row exactly as written, if the caller has read it
        (with an empty cell as ``""``); else pyarrow's reading of it is
        used and a file whose header pandas would rename (an empty or
        repeated name) goes to pandas.
    text : collection of str
        Columns read as text exactly as written (``dtype=str``).
    categories : collection of str
        Text columns turned into Categoricals afterwards.
    na_values : sequence of str
        Missing-value spellings of the other columns (none: ``na_filter=False``).
    text_na : bool, default False
        Whether the text columns take ``na_values`` too.
    float_precision : str, optional
        Passed on to pandas where pandas converts (pandas 2's ``"round_trip"``).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    Whatever ``pandas.read_csv`` raises for the file (the caller words it).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "labs.csv"
    ...     _ = p.write_text("person_id,code,value\\n1,0123,NA\\n2,D70,\\n")
    ...     df = read_csv(p, text=("code", "value"), categories=("code",), na_values=("", "NA"))
    >>> df["person_id"].tolist(), df["code"].tolist(), df["value"].tolist()
    ([1, 2], ['0123', 'D70'], ['NA', ''])
    """
    args = (sep, header, text, categories, na_values, text_na, float_precision)
    if not isinstance(path, (str, os.PathLike)) or not str(path).lower().endswith(FAST_SUFFIXES):
        return _pandas(path, *args)
    if header is not None and (len(header) < 2 or len(set(header)) < len(header)
                               or any(f"Unnamed: {i}" in header for i, c in enumerate(header) if c == "")):
        # One column: pandas skips lines of blanks as empty, pyarrow reads them as cells.
        return _pandas(path, *args)
    if _PYARROW is False or (_PYARROW is None and not str(path).lower().endswith(".gz")
                             and os.path.getsize(path) < _SMALL):
        return _pandas(path, *args)
    try:
        data = _load(path)
    except Exception:  # noqa: BLE001  (a damaged gzip, in zlib's or ISA-L's words: pandas raises its own error)
        return _pandas(path, *args)
    names = header
    if names is None:
        first = _parse_header(data, sep)
        if first is None:
            return _pandas(path, *args)
        names = first
    table = _parse(data, sep, names, set(categories) & set(text))
    del data
    if table is None:
        return _pandas(path, *args)
    return _frame(table, names, set(text), set(categories) & set(text), na_values, text_na, float_precision)


def _parse_header(data: bytes | mmap.mmap, sep: str) -> list[str] | None:
    """pyarrow's reading of the header row, where pandas would keep the names as they are."""
    pa = _pyarrow()
    end = data.find(b"\n")
    first = bytes(data[: end if end >= 0 else len(data)])
    try:
        names = pa.csv.read_csv(io.BytesIO(first), parse_options=pa.csv.ParseOptions(delimiter=sep)).column_names
    except (pa.ArrowException, ValueError):
        return None
    if len(names) < 2 or len(set(names)) < len(names) or "" in names or any(n.startswith("Unnamed: ") for n in names):
        return None
    return list(names)
