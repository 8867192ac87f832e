"""Writing outputs that may leave a secure environment: safe CSV cells and atomic report folders.

Two guarantees for every file the project writes:

- **CSV cells a spreadsheet does not execute.** A text cell starting with
  ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a formula
  by Excel, LibreOffice and Google Sheets; :func:`safe_csv_frame` prefixes it
  with a single quote (OWASP's rule [1]_), except plain numbers written as
  text (``-1.5``). Numeric columns are never touched.
- **A report folder is complete or absent.** :class:`AtomicFolder` writes
  every file into a hidden sibling of the output folder, writes
  ``manifest.json`` (every file with its size and SHA-256) last and only then
  moves the folder into place, swapping it with an earlier report in one
  step where the system allows. A run that is killed or fails (disk full, no
  permission) leaves the output folder exactly as it was.

Every file of a report goes through :func:`_write_file` and the move through
:func:`_move_into_place`, so that a test can stop the process at each step.

References
----------
.. [1] OWASP Foundation. CSV Injection.
   https://owasp.org/www-community/attacks/CSV_Injection
"""

from __future__ import annotations

import csv
import ctypes
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from neutrostats.errors import NeutrostatsError

#: Value of the ``generator`` key of ``manifest.json``: marks a folder as a report this module wrote.
GENERATOR = "neutrostats report"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1

# A cell a spreadsheet reads as a formula (OWASP): these first characters...
_TRIGGER = re.compile(r"[=+\-@\t\r]")
# ...unless the whole cell is a plain decimal number ("-1.5", "+3", "-0", "1e-3").
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

# Files an operating system drops into a folder it displays; not the user's work.
_OS_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})

# The files of a report written before manifests existed (neutrostats 0.1 without manifest.json).
_LEGACY_ENTRIES = frozenset({"report.html", "results.json", "tables", "figures"})


# ---------------------------------------------------------------------------
# Safe CSV


def _needs_quote(values: pd.Series) -> np.ndarray | None:
    """Boolean mask (by position) of the text cells to neutralise, or None when there is none."""
    try:
        first = values.str.match(_TRIGGER.pattern)
    except (AttributeError, TypeError):
        # Only columns holding text have a .str accessor; others hold no text cell.
        return None
    mask = first.fillna(False).to_numpy(dtype=bool, copy=True)
    if not mask.any():
        return None
    candidates = values.iloc[np.flatnonzero(mask)]
    number = candidates.str.fullmatch(_NUMBER.pattern).fillna(False).to_numpy(dtype=bool)
    mask[np.flatnonzero(mask)[number]] = False
    return mask if mask.any() else None


def _quoted(values: pd.Series, mask: np.ndarray) -> np.ndarray:
    out = values.to_numpy(dtype=object, copy=True)
    out[mask] = ["'" + v for v in out[mask]]
    return out


def _safe_series(values: pd.Series) -> Any:
    """The column's cells with formula-like text quoted (an array), or None when it needs no change."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = pd.Series(dtype.categories)
        mask = _needs_quote(categories)
        if mask is None:
            return None
        renamed = _quoted(categories, mask)
        if pd.Index(renamed).is_unique:
            # Renaming the few categories keeps a million-row column cheap.
            return values.cat.rename_categories(list(renamed)).array
        text = values.astype(object)
        used = _needs_quote(text)  # None when no row holds a category that needs the quote
        return text.to_numpy() if used is None else _quoted(text, used)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return None
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return None
    mask = _needs_quote(values)
    return None if mask is None else _quoted(values, mask)


def _safe_label(label: Any) -> Any:
    if isinstance(label, tuple):
        return tuple(_safe_label(part) for part in label)
    if isinstance(label, str) and _TRIGGER.match(label) and not _NUMBER.fullmatch(label):
        return "'" + label
    return label


def safe_csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every formula-like text cell and column name neutralised for spreadsheets.

    A spreadsheet program opening a CSV runs a cell starting with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return as a formula
    (``=HYPERLINK(...)``, ``+1+cmd|...``): text from the input data (a sex
    category, a diagnosis code) must not reach a reviewer's spreadsheet that
    way. Such cells get a leading single quote, which spreadsheets show as
    text (OWASP's rule, [1]_); a cell that is a plain decimal number written
    as text (``-1.5``, ``+3``, ``-0``, ``1e-3``) is left alone. Numeric,
    boolean, date and time columns are never changed, so numbers stay
    numbers. Categorical columns are changed only in the categories that
    need it.

    Parameters
    ----------
    df : pandas.DataFrame
        Any table; it is not modified.

    Returns
    -------
    pandas.DataFrame
        The same columns and rows; text cells and column names starting with
        one of the characters above (and not a number) begin with ``'``.
        The index is passed through unchanged.

    See Also
    --------
    to_safe_csv : Write the neutralised table as CSV.

    References
    ----------
    .. [1] OWASP Foundation. CSV Injection.
       https://owasp.org/www-community/attacks/CSV_Injection

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"sex": ["=1+1", "-1.5", "F", "@SUM(A1)"], "n": [-3, 4, 5, 6]})
    >>> safe_csv_frame(t).to_dict("list")
    {'sex': ["'=1+1", '-1.5', 'F', "'@SUM(A1)"], 'n': [-3, 4, 5, 6]}
    """
    out = df.copy(deep=False)  # copy-on-write: assigning columns below leaves df alone
    for i in range(df.shape[1]):
        safe = _safe_series(df.iloc[:, i])
        if safe is not None:
            out.isetitem(i, safe)  # by position: a table may repeat a column name
    labels = [_safe_label(c) for c in df.columns]
    if any(a is not b for a, b in zip(labels, df.columns)):
        out.columns = (pd.MultiIndex.from_tuples(labels, names=df.columns.names)
                       if isinstance(df.columns, pd.MultiIndex) else pd.Index(labels, name=df.columns.name))
    return out


def to_safe_csv(df: pd.DataFrame, path_or_buf: Any = None, **kwargs: Any) -> str | None:
    """``df.to_csv(path_or_buf, **kwargs)`` after :func:`safe_csv_frame`.

    Parameters
    ----------
    df : pandas.DataFrame
    path_or_buf : str, path, file or None
        As in :meth:`pandas.DataFrame.to_csv`; None returns the text.
    **kwargs
        Passed to :meth:`pandas.DataFrame.to_csv` (``index=False``,
        ``lineterminator``, ``compression``...). With ``index=True`` the
        index labels are neutralised too. When a cell holds a carriage
        return (and neither ``quoting`` nor a ``lineterminator`` with
        ``\r`` is given), every field is quoted, so that no reader splits
        the row there.

    Returns
    -------
    str or None
        The CSV text when ``path_or_buf`` is None.

    Examples
    --------
    >>> import pandas as pd
    >>> print(to_safe_csv(pd.DataFrame({"=x": ["+cmd", "+3"]}), index=False), end="")
    '=x
    '+cmd
    +3
    """
    safe = safe_csv_frame(df)
    if kwargs.get("index", True):
        quoted = _safe_series(safe.index.to_series(index=pd.RangeIndex(len(safe))))
        if quoted is not None:
            safe = safe.set_axis(pd.Index(quoted, name=safe.index.name), axis=0)
    if ("quoting" not in kwargs and "\r" not in kwargs.get("lineterminator", os.linesep)
            and _holds_carriage_return(safe, index=kwargs.get("index", True))):
        # Python's csv module quotes a field holding a line end character only if it is part of the
        # line terminator: a bare "\r" would stay unquoted, and a spreadsheet starts a new row there
        # ("a\r=cmd()" puts "=cmd()" at the start of a line). Quoting every field keeps it in its cell.
        kwargs["quoting"] = csv.QUOTE_ALL
    return safe.to_csv(path_or_buf, **kwargs)


def _holds_carriage_return(df: pd.DataFrame, *, index: bool) -> bool:
    labels = [*df.columns, *(df.index if index else [])]
    if any("\r" in str(label) for label in labels if isinstance(label, (str, tuple))):
        return True
    for i in range(df.shape[1]):
        values = df.iloc[:, i]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = pd.Series(values.dtype.categories)
        elif (pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype)
              or pd.api.types.is_datetime64_any_dtype(values.dtype)):
            continue
        try:
            found = values.str.contains("\r", regex=False)
        except (AttributeError, TypeError):
            continue
        if found.fillna(False).to_numpy(dtype=bool).any():
            return True
    return False


# ---------------------------------------------------------------------------
# Low-level steps (one function each, so that a test can stop the process there)


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to the disk (every file of a report goes through here)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    # A rename is durable only once its folder is flushed; not possible on every system (Windows).
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False  # glibc before 2.28, or another C library
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # e.g. a file system without exchange (older NFS, FUSE)
    raise OSError(code, os.strerror(code), str(b))


def _move_into_place(tmp: Path, out: Path, state: str) -> None:
    """Make the complete folder ``tmp`` become ``out`` (``state``: missing, empty or report)."""
    if state in ("missing", "empty"):
        if state == "empty" and os.name == "nt":
            os.rmdir(out)  # POSIX rename replaces an empty folder; Windows' does not
        os.rename(tmp, out)
    elif _exchange(tmp, out):
        # ``tmp`` now holds the earlier report.
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        old = _sibling(out, "old")
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        except OSError:
            os.rename(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(out.parent)


# ---------------------------------------------------------------------------
# Sibling folders and what is at ``out``


def _sibling(out: Path, kind: str) -> Path:
    return out.parent / f".{out.name}.neutrostats-{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _sibling_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"\." + re.escape(name) + r"\.neutrostats-(tmp|old)-(\d+)-[0-9a-f]+")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    if os.name != "posix":
        return False  # no harmless liveness probe (os.kill terminates on Windows)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(out: Path) -> None:
    """Remove our temporary siblings of ``out`` left by killed runs (never anything else).

    A run killed between moving the earlier report aside and moving the new
    one in (only where folders cannot be swapped in one step) leaves no
    ``out``: the earlier report is put back first.
    """
    pattern = _sibling_pattern(out.name)
    try:
        entries = list(os.scandir(out.parent))
    except OSError:
        return
    stale = []
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m and entry.is_dir(follow_symlinks=False) and not _alive(int(m.group(2))):
            stale.append((m.group(1), Path(entry.path)))
    if not os.path.lexists(out):
        olds = sorted((p for kind, p in stale if kind == "old" and _manifest(p) is not None),
                      key=lambda p: p.stat().st_mtime)
        if olds:
            try:
                os.rename(olds[-1], out)
                stale = [(k, p) for k, p in stale if p != olds[-1]]
            except OSError:
                pass
    for _, path in stale:
        shutil.rmtree(path, ignore_errors=True)


def _manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a report this module wrote, or None."""
    try:
        body = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("generator") != GENERATOR or not isinstance(body.get("files"), list):
        return None
    return body


def _walk(folder: Path) -> list[str]:
    """Every file (and symbolic link) under ``folder``, as relative POSIX paths."""
    found = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            found.append((rel / name).as_posix())
    return sorted(found)


def _is_legacy_report(out: Path, entries: list[str]) -> bool:
    """A report folder written before manifest.json existed: only its four entries, results.json ours."""
    top = {p.split("/", 1)[0] for p in entries}
    if not top <= _LEGACY_ENTRIES or "results.json" not in top:
        return False
    for p in entries:
        if p.startswith("tables/") and not (p.count("/") == 1 and p.endswith(".csv")):
            return False
        if p.startswith("figures/") and not (p.count("/") == 1 and p.endswith((".png", ".svg"))):
            return False
    try:
        body = json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(body, dict) and {"schema_version", "neutrostats_version", "tables"} <= set(body)


def _state(out: Path, fn: str) -> str:
    """What is at ``out``: "missing", "empty" or "report" (an earlier report); refuse anything else."""
    if not os.path.lexists(out):
        return "missing"
    if not out.is_dir():
        raise NeutrostatsError(f"{fn}: the output folder {str(out)!r} is a file, not a folder; it is left "
                               "untouched: choose a new or empty folder")
    if out.is_symlink():
        raise NeutrostatsError(f"{fn}: the output folder {str(out)!r} is a symbolic link; it is left "
                               "untouched: give the folder it points to, or a new or empty folder")
    top = [p.name for p in out.iterdir()]
    if not top:
        return "empty"
    if all(name in _OS_FILES for name in top):
        return "report"  # nothing but a file browser's own files: replaced like an earlier report
    entries = [p for p in _walk(out) if Path(p).name not in _OS_FILES]
    manifest = _manifest(out)
    if manifest is not None:
        listed = {f.get("path") for f in manifest["files"] if isinstance(f, dict)} | {MANIFEST}
        extra = [p for p in entries if p not in listed]
        if not extra:
            return "report"
        raise NeutrostatsError(
            f"{fn}: the output folder {str(out)!r} holds an earlier neutrostats report and {len(extra)} "
            f"file(s) that are not part of it (e.g. {extra[0]!r}); it is left untouched: move those files "
            "away, or choose an empty or new folder"
        )
    if entries and _is_legacy_report(out, entries):
        return "report"
    example = entries[0] if entries else sorted(top)[0]
    raise NeutrostatsError(
        f"{fn}: the output folder {str(out)!r} holds {len(entries) or 'some'} file(s) that are not a "
        f"neutrostats report (e.g. {example!r}); it is left untouched (a report replaces the whole folder): "
        "choose an empty or new folder"
    )


# ---------------------------------------------------------------------------
# The atomic folder writer


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


class AtomicFolder:
    """Write a report folder completely, or not at all.

    Use as a context manager: :meth:`write_bytes`, :meth:`write_text` and
    :meth:`write_csv` write into a hidden sibling folder of ``out``
    (``.{name}.neutrostats-tmp-<pid>-<random>``), each file flushed to the
    disk; :meth:`commit` writes ``manifest.json`` last and moves the folder
    into place. ``out`` may be missing, an empty folder, or an earlier
    report (a folder with this module's ``manifest.json``, or a report
    written before manifests, and nothing else): it is replaced as a whole,
    in one step on Linux (``renameat2`` exchange). Any other folder is
    refused, never deleted. Temporary siblings left by killed runs are
    removed when the next run starts.

    Parameters
    ----------
    out : str or Path
        The report folder.
    fn : str, default "write_outputs"
        Function named in error messages.

    Raises
    ------
    NeutrostatsError
        When ``out`` is a file or a folder that is not a report, or any
        :class:`OSError` occurs (disk full, no permission, a file where a
        folder should be): one line naming the file, the system's reason and
        what to do; ``out`` is then exactly as before and the temporary
        folder is removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with AtomicFolder(pathlib.Path(d) / "report") as folder:
    ...         folder.write_text("results.json", "{}\\n")
    ...         out = folder.commit(settings={}, disclosure={"rule": "off"})
    ...     sorted(p.name for p in out.iterdir())
    ['manifest.json', 'results.json']
    """

    def __init__(self, out: str | Path, *, fn: str = "write_outputs") -> None:
        self.out = Path(os.path.abspath(out))
        self.shown = str(out)
        self.fn = fn
        self.tmp: Path | None = None
        self._files: dict[str, tuple[int, str]] = {}
        self._step = "prepare the report"
        self._done = False

    def __enter__(self) -> AtomicFolder:
        try:
            _state(self.out, self.fn)  # refuse early, before any work
            self.out.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale(self.out)
            tmp = _sibling(self.out, "tmp")
            os.mkdir(tmp)
        except OSError as exc:
            raise NeutrostatsError(
                f"{self.fn}: cannot create the output folder {self.shown!r} ({_reason(exc)}); check the "
                f"permissions of {str(self.out.parent)!r} and free disk space, or choose another output folder"
            ) from None
        self.tmp = tmp
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        if self.tmp is not None and not self._done:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise NeutrostatsError(
                f"{self.fn}: could not {self._step} ({_reason(exc)}); the output folder {self.shown!r} is left "
                f"as it was: free disk space, check the permissions of {str(self.out.parent)!r}, or choose "
                "another output folder"
            ) from None
        return False

    def write_bytes(self, relpath: str, data: bytes) -> None:
        """Write one file (``relpath`` with ``/`` separators, e.g. ``"tables/cox.csv"``)."""
        if self.tmp is None or self._done:
            raise RuntimeError("AtomicFolder.write_bytes outside its with block")
        self._step = f"write {relpath!r} of the report"
        target = self.tmp.joinpath(*relpath.split("/"))
        if target.parent != self.tmp and not target.parent.is_dir():
            target.parent.mkdir(parents=True)
        _write_file(target, data)
        self._files[relpath] = (len(data), hashlib.sha256(data).hexdigest())

    def write_text(self, relpath: str, text: str) -> None:
        """Write one UTF-8 text file."""
        self.write_bytes(relpath, text.encode("utf-8"))

    def write_csv(self, relpath: str, df: pd.DataFrame) -> None:
        """Write one table as a safe CSV (:func:`to_safe_csv`, no index, ``\\n`` line ends)."""
        self.write_text(relpath, cast(str, to_safe_csv(df, None, index=False, lineterminator="\n")))

    def manifest(self, *, settings: Mapping[str, Any], disclosure: Mapping[str, Any]) -> dict[str, Any]:
        """The body of ``manifest.json`` for the files written so far (sorted, no time stamps)."""
        from neutrostats._version import __version__
        from neutrostats.core.jsonable import plain

        return {
            "generator": GENERATOR,
            "manifest_version": MANIFEST_VERSION,
            "neutrostats_version": __version__,
            "settings": plain(dict(settings)),
            "disclosure": plain(dict(disclosure)),
            "files": [{"path": p, "bytes": n, "sha256": h} for p, (n, h) in sorted(self._files.items())],
        }

    def commit(self, *, settings: Mapping[str, Any], disclosure: Mapping[str, Any]) -> Path:
        """Write ``manifest.json`` and move the folder into place; returns ``out``."""
        body = json.dumps(self.manifest(settings=settings, disclosure=disclosure), indent=1,
                          ensure_ascii=False, allow_nan=False)
        self.write_text(MANIFEST, body + "\n")
        assert self.tmp is not None
        for folder in sorted({self.tmp.joinpath(*p.split("/")).parent for p in self._files}, reverse=True):
            _fsync_dir(folder)
        state = _state(self.out, self.fn)  # again: the folder may have changed during the run
        self._step = "move the finished report into place"
        _move_into_place(self.tmp, self.out, state)
        self._done = True
        return self.out


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """A temporary path to write one file into; it replaces ``path`` in one step when the block ends.

    The temporary file has the same name, in a hidden folder beside
    ``path`` (so compressed formats store the right name), and is removed if
    the block fails; ``path`` is never left half-written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     target = pathlib.Path(d) / "t.csv"
    ...     with atomic_file(target) as tmp:
    ...         _ = tmp.write_text("a\\n1\\n")
    ...     sorted(p.name for p in pathlib.Path(d).iterdir()), target.read_text()
    (['t.csv'], 'a\\n1\\n')
    """
    target = Path(os.path.realpath(path))
    _remove_stale(target)
    folder = _sibling(target, "tmp")
    os.mkdir(folder)
    try:
        tmp = folder / target.name
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
