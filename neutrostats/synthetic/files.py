"""Synthetic cohorts on disk: writing and reading the four tables, and the bundled sample.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import numpy as np
import pandas as pd

from neutrostats.core.csvread import PANDAS_DEFAULT_NA, read_csv
from neutrostats.errors import NeutrostatsError
from neutrostats.synthetic.assumptions import TABLES, _TIER_DTYPE
from neutrostats.synthetic.generate import _STR_COLS, SyntheticCohort

__all__ = ["write_cohort", "read_cohort", "load_sample", "sample_dir"]


_DATE_COLS = {
    "persons": ["birth_date", "entry_date", "end_of_data"],
    "labs": ["sampled_at"],
    "diagnoses": ["diagnosed_at"],
    "deaths": ["died_at"],
    "index": ["index_date"],
}


_COLUMNS = {
    "persons": ["person_id", "sex", "birth_date", "duffy_null", "entry_date", "end_of_data"],
    "labs": ["person_id", "sampled_at", "code", "value", "unit"],
    "diagnoses": ["person_id", "diagnosed_at", "code"],
    "deaths": ["person_id", "died_at"],
    "index": ["person_id", "index_date", "index_anc_per_ul", "index_left_censored", "index_tier",
              "anc_source", "age_at_index"],
}


def write_cohort(cohort: SyntheticCohort, out_dir: str | Path, format: str = "csv") -> Path:
    """Write a cohort's tables and truth to a folder.

    Parameters
    ----------
    cohort : SyntheticCohort
        Result of :func:`generate_cohort` (or :func:`read_cohort`).
    out_dir : str or Path
        Folder to write into; created if needed. Existing files of the same
        names are replaced.
    format : {"csv", "parquet"}, default "csv"
        ``"csv"`` writes ``<table>.csv.gz`` (UTF-8, gzip with a fixed time
        stamp so the same cohort gives the same bytes; a text cell that a
        spreadsheet would run as a formula gets a leading ``'``, as in every
        CSV neutrostats writes); ``"parquet"`` writes ``<table>.parquet``
        (needs pyarrow).

    Returns
    -------
    pathlib.Path
        The folder, holding ``persons``, ``labs``, ``diagnoses``, ``deaths``,
        ``index`` (truth per person) and ``truth.json``.

    Raises
    ------
    NeutrostatsError
        If ``cohort`` is not a SyntheticCohort or ``format`` is unknown.

    Examples
    --------
    >>> import tempfile
    >>> from neutrostats.synthetic import generate_cohort, write_cohort
    >>> c = generate_cohort(n_persons=100, seed=3)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     sorted(p.name for p in write_cohort(c, d).iterdir())
    ['deaths.csv.gz', 'diagnoses.csv.gz', 'index.csv.gz', 'labs.csv.gz', 'persons.csv.gz', 'truth.json']
    """
    if not isinstance(cohort, SyntheticCohort):
        raise NeutrostatsError(
            f"write_cohort: expected a SyntheticCohort (from generate_cohort or read_cohort), "
            f"found {type(cohort).__name__}"
        )
    if format not in ("csv", "parquet"):
        raise NeutrostatsError(f"write_cohort: format must be 'csv' or 'parquet', found {format!r}")
    if format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise NeutrostatsError(
                f"write_cohort: format='parquet' needs pyarrow, a dependency of neutrostats that cannot be "
                f"imported here ({exc}); reinstall it (pip install --force-reinstall 'pyarrow>=14') or use "
                "format='csv'"
            ) from None
    from neutrostats.core.output import to_safe_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        df = getattr(cohort, name)
        if format == "csv":
            to_safe_csv(
                df, out / f"{name}.csv.gz", index=False, encoding="utf-8",
                compression={"method": "gzip", "mtime": 0, "compresslevel": 6}, lineterminator="\n",
            )
        else:
            # Microseconds: Spark 4 cannot read nanosecond Parquet timestamps (the times are whole seconds).
            df.to_parquet(out / f"{name}.parquet", index=False, coerce_timestamps="us")
    with open(out / "truth.json", "w", encoding="utf-8") as fh:
        json.dump(cohort.truth, fh, indent=1, ensure_ascii=False, allow_nan=False)
        fh.write("\n")
    return out


def _coerce(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Give a table read from disk the dtypes generate_cohort makes."""
    missing = [c for c in _COLUMNS[name] if c not in df.columns]
    if missing:
        raise NeutrostatsError(
            f"read_cohort: table {name!r} lacks columns {missing}; found {list(df.columns)}. "
            "Was the folder written by write_cohort?"
        )
    df = df[_COLUMNS[name]].copy()
    df["person_id"] = df["person_id"].astype(np.int64)
    for c in _DATE_COLS[name]:
        df[c] = pd.to_datetime(df[c], format="ISO8601").astype("datetime64[ns]")
    for c in _STR_COLS[name]:
        col = df[c].astype(object)
        df[c] = col.where(col.notna(), np.nan) if name == "index" else col.astype(str).astype(object)
    if name == "persons":
        df["duffy_null"] = df["duffy_null"].astype(bool)
    if name == "index":
        df["index_anc_per_ul"] = df["index_anc_per_ul"].astype(float)
        df["age_at_index"] = df["age_at_index"].astype(float)
        df["index_left_censored"] = df["index_left_censored"].astype(bool)
        df["index_tier"] = pd.Categorical(df["index_tier"].astype(object), dtype=_TIER_DTYPE)
    return df.reset_index(drop=True)


def read_cohort(directory: str | Path) -> SyntheticCohort:
    """Read a cohort written by :func:`write_cohort`, with its exact dtypes.

    Parameters
    ----------
    directory : str or Path
        Folder holding ``<table>.csv.gz`` or ``<table>.parquet`` files and
        ``truth.json``.

    Returns
    -------
    SyntheticCohort
        The same tables as written: lab ``value`` stays a string column (an
        empty result stays ``""``, ``"NA"`` stays ``"NA"``), dates are
        ``datetime64[ns]``, ``index_tier`` is an ordered Categorical.

    Raises
    ------
    NeutrostatsError
        If the folder does not exist, holds neither (or both) formats, or a
        table lacks a column.

    Examples
    --------
    >>> import tempfile
    >>> from neutrostats.synthetic import generate_cohort, write_cohort, read_cohort
    >>> c = generate_cohort(n_persons=100, seed=3)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     back = read_cohort(write_cohort(c, d, format="csv"))
    >>> back.labs.equals(c.labs), back.truth == c.truth
    (True, True)
    """
    d = Path(directory)
    if not d.is_dir():
        raise NeutrostatsError(
            f"read_cohort: expected a folder written by write_cohort, found no folder at {str(d)!r}"
        )
    has_csv = all((d / f"{t}.csv.gz").is_file() for t in TABLES)
    has_pq = all((d / f"{t}.parquet").is_file() for t in TABLES)
    if has_csv == has_pq:
        what = "both CSV and Parquet files" if has_csv else "an incomplete set of files"
        raise NeutrostatsError(
            f"read_cohort: expected {', '.join(TABLES)} as .csv.gz or as .parquet (one format) in "
            f"{str(d)!r}, found {what}: {sorted(p.name for p in d.iterdir())}. Write the folder "
            "again with write_cohort."
        )
    tables = {}
    for name in TABLES:
        if has_csv:
            # Only the truth index has missing values (pandas' default spellings, in every column);
            # elsewhere text such as "" or "NA" (a lab result) is data and must stay a string.
            na = PANDAS_DEFAULT_NA if name == "index" else ()
            # pandas 3 parses floats exactly by default and deprecates the option.
            exact = "round_trip" if int(pd.__version__.split(".")[0]) < 3 else None
            # pyarrow parses, with pandas.read_csv's result (neutrostats.core.csvread).
            df = read_csv(d / f"{name}.csv.gz", text=_STR_COLS[name], na_values=na, text_na=True,
                          float_precision=exact)
        else:
            df = pd.read_parquet(d / f"{name}.parquet")
        tables[name] = _coerce(name, df)
    truth_path = d / "truth.json"
    if not truth_path.is_file():
        raise NeutrostatsError(f"read_cohort: {str(truth_path)!r} is missing; write the folder again with write_cohort")
    with open(truth_path, encoding="utf-8") as fh:
        truth = json.load(fh)
    return SyntheticCohort(truth=truth, **tables)


def sample_dir() -> Path:
    """Folder of the bundled sample cohort.

    ``neutrostats/_data/synthetic`` inside an installed wheel, else
    ``data/synthetic`` of a source checkout.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> from neutrostats.synthetic import sample_dir
    >>> (sample_dir() / "truth.json").is_file()
    True
    """
    try:
        packaged = importlib.resources.files("neutrostats") / "_data" / "synthetic"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):  # pragma: no cover
        pass
    return Path(__file__).resolve().parents[2] / "data" / "synthetic"


def load_sample() -> SyntheticCohort:
    """Read the bundled sample cohort (20,000 persons) without network access.

    The sample was written by :func:`write_cohort`; ``data/synthetic/README.md``
    gives the exact command, the columns, calibration targets, assumptions
    and mess rates.

    Returns
    -------
    SyntheticCohort

    Raises
    ------
    NeutrostatsError
        If the sample files are missing (a broken installation).

    See Also
    --------
    generate_cohort : a cohort of any size and seed.
    sample_dir : the folder the sample is read from.

    Examples
    --------
    >>> from neutrostats.synthetic import load_sample
    >>> s = load_sample()
    >>> len(s.persons), s.truth["seed"]
    (20000, 2018)
    """
    d = sample_dir()
    if not (d / "truth.json").is_file():
        raise NeutrostatsError(
            f"load_sample: the bundled sample is missing from {str(d)!r}; reinstall neutrostats "
            "or regenerate it as data/synthetic/README.md describes"
        )
    return read_cohort(d)
