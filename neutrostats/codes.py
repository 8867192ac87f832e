"""Code sets: LOINC lab codes for the neutrophil count, ICD-10 outcome codes.

LOINC codes and meanings are those of DOMAIN.md section 1; each set is a
``frozenset`` usable with ``Series.isin``. ICD-10 outcome definitions are
those of DOMAIN.md section 4, written as patterns that
:func:`match_icd10` understands:

* a code or prefix, dotted or not: ``"C92.0"`` matches ``C92.0``, ``C920``,
  ``c92.00``; ``"D46"`` matches every D46 subcode;
* a range of categories, inclusive: ``"A80-B34"`` (or with an en dash)
  matches every code whose first three characters lie from A80 to B34;
  longer endpoints compare that many characters (``"C92.0-C92.3"``).

Examples
--------
>>> from neutrostats.codes import LOINC_ANC, loinc_role, match_icd10
>>> "751-8" in LOINC_ANC
True
>>> loinc_role("770-8")
'neutrophil_pct'
>>> match_icd10(["B20.1", "c920", "Z21", "C91.1"], ["B20-B24", "Z21", "C92.0"]).tolist()
[True, True, True, False]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import NeutrostatsError

__all__ = [
    "ICD10_OUTCOMES",
    "DEFAULT_OUTCOMES",
    "normalize_icd10",
    "validate_code_sets",
    "match_icd10",
    "LOINC_ANC",
    "LOINC_NEUTROPHIL_PCT",
    "LOINC_BAND_PCT",
    "LOINC_WBC",
    "LOINC_SEGMENTED_ABS",
    "LOINC_BAND_ABS",
    "LOINC_ROLES",
    "loinc_role",
    "MIMIC_IV_LAB_CODES",
    "lab_code_key",
    "read_code_map",
]

#: Absolute neutrophil count: automated (751-8), manual (753-4), method not
#: stated (26499-4).
LOINC_ANC = frozenset({"751-8", "753-4", "26499-4"})
#: Neutrophils (or segmented neutrophils) per 100 leukocytes, in percent.
LOINC_NEUTROPHIL_PCT = frozenset({"770-8", "26511-6", "26505-8"})
#: Band neutrophils per 100 leukocytes, in percent.
LOINC_BAND_PCT = frozenset({"764-1", "26508-2", "35332-6"})
#: Leukocyte (white blood cell) count.
LOINC_WBC = frozenset({"6690-2", "26464-8"})
#: Segmented neutrophils, absolute count.
LOINC_SEGMENTED_ABS = frozenset({"30451-9"})
#: Band neutrophils, absolute count.
LOINC_BAND_ABS = frozenset({"763-3", "26507-4"})

#: Role of every LOINC code neutrostats knows, keyed by code.
LOINC_ROLES: dict[str, str] = {
    **{c: "anc" for c in LOINC_ANC},
    **{c: "neutrophil_pct" for c in LOINC_NEUTROPHIL_PCT},
    **{c: "band_pct" for c in LOINC_BAND_PCT},
    **{c: "wbc" for c in LOINC_WBC},
    **{c: "segmented_abs" for c in LOINC_SEGMENTED_ABS},
    **{c: "band_abs" for c in LOINC_BAND_ABS},
}

#: MIMIC-IV ``labevents.itemid`` of the blood differential (mimic-code's
#: ``blood_differential`` concept) mapped to the LOINC code of the same
#: quantity: 52075 absolute neutrophil count (K/uL), 51256 neutrophils (%),
#: 51144 bands (%), 51300/51301/51755 white blood cells (K/uL). Keys are
#: text, as item ids are compared after ``str()``.
MIMIC_IV_LAB_CODES: dict[str, str] = {
    "52075": "751-8",
    "51256": "770-8",
    "51144": "764-1",
    "51300": "6690-2",
    "51301": "6690-2",
    "51755": "6690-2",
}


def loinc_role(code: str) -> str | None:
    """Return the role of a LOINC code in ANC work, or ``None`` if unknown.

    Parameters
    ----------
    code : str
        A LOINC code such as ``"751-8"``; surrounding white space is ignored.

    Returns
    -------
    str or None
        One of ``"anc"``, ``"neutrophil_pct"``, ``"band_pct"``, ``"wbc"``,
        ``"segmented_abs"``, ``"band_abs"``, or ``None``.

    Examples
    --------
    >>> loinc_role(" 6690-2 ")
    'wbc'
    >>> loinc_role("718-7") is None
    True
    """
    return LOINC_ROLES.get(str(code).strip())


#: ICD-10 outcome definitions (DOMAIN.md section 4). The autoimmune list has
#: no standard; it is an assumption, as DOMAIN.md says.
ICD10_OUTCOMES: dict[str, tuple[str, ...]] = {
    "viral_infection": ("A80-B34",),
    "hiv": ("B20-B24", "Z21", "O98.7"),
    "hematologic_malignancy": ("C81-C96",),
    "myeloid_neoplasm": ("D45-D47",),
    "aml": ("C92.0", "C92.4", "C92.5", "C92.6", "C92.8", "C93.0", "C94.0", "C94.2"),
    "mds": ("D46",),
    "solid_cancer": ("C00-C80",),
    "autoimmune": ("M05-M06", "M32", "M35.0", "K50-K51", "E10", "L40", "G35"),
}
#: Outcomes :func:`neutrostats.build_cohort` derives unless told otherwise.
DEFAULT_OUTCOMES = ICD10_OUTCOMES

_CODE = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")
_DASHES = re.compile(r"\s*[-–—]\s*")


def normalize_icd10(code: Any) -> str | None:
    """Fold an ICD-10 code: upper case, no dot, no spaces; None if empty.

    Examples
    --------
    >>> normalize_icd10(" c92.00 ")
    'C9200'
    """
    if code is None or (isinstance(code, float) and np.isnan(code)) or code is pd.NA:
        return None
    text = re.sub(r"[\s.]", "", str(code)).upper()
    return text or None


def _compile_pattern(name: str, pattern: Any) -> tuple[str, str]:
    """(low, high) prefixes of a pattern; a single code has low == high."""
    if not isinstance(pattern, str):
        raise NeutrostatsError(
            f"code set {name!r}: expected ICD-10 codes or ranges as strings, found {pattern!r}"
        )
    parts = _DASHES.split(pattern.strip().rstrip("*"))
    folded = [normalize_icd10(p) or "" for p in parts]
    if len(folded) not in (1, 2) or not all(_CODE.match(p) for p in folded):
        raise NeutrostatsError(
            f"code set {name!r}: {pattern!r} is not an ICD-10 code, prefix or range; "
            "expected a letter and two characters then up to four more (e.g. 'C92', 'C92.0'), "
            "or two of them joined by a dash ('A80-B34')"
        )
    low, high = folded[0], folded[-1]
    if len(low) != len(high) or low > high:
        raise NeutrostatsError(
            f"code set {name!r}: range {pattern!r} must have endpoints of equal length "
            "with the lower one first (e.g. 'A80-B34' or 'C92.0-C92.3')"
        )
    return low, high


def validate_code_sets(code_sets: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Check user code sets; return them as a dict of name -> tuple of patterns.

    Parameters
    ----------
    code_sets : mapping of str to sequence of str
        Outcome name -> ICD-10 codes, prefixes and ranges.

    Returns
    -------
    dict

    Raises
    ------
    NeutrostatsError
        For a name that cannot be a column name, an empty set, or an invalid
        pattern (the message names the set and the pattern).

    Examples
    --------
    >>> validate_code_sets({"leukaemia": ["C91-C95"]})
    {'leukaemia': ('C91-C95',)}
    >>> validate_code_sets({"bad": ["92.0"]})
    Traceback (most recent call last):
    ...
    neutrostats.errors.NeutrostatsError: code set 'bad': '92.0' is not an ICD-10 code, prefix or range; ...
    """
    if not isinstance(code_sets, Mapping) or not code_sets:
        raise NeutrostatsError(
            f"code sets: expected a non-empty dict of outcome name -> list of ICD-10 codes, found {code_sets!r}"
        )
    out = {}
    for name, patterns in code_sets.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise NeutrostatsError(
                f"code sets: outcome name {name!r} must be a valid identifier (letters, digits, _), "
                "because it becomes a column name"
            )
        if isinstance(patterns, str):
            patterns = [patterns]
        patterns = tuple(patterns)
        if not patterns:
            raise NeutrostatsError(f"code set {name!r}: expected at least one code, found none")
        for p in patterns:
            _compile_pattern(name, p)
        out[name] = patterns
    return out


def match_icd10(codes: Iterable[Any], patterns: Sequence[str], *, name: str = "codes") -> np.ndarray:
    """Which codes fall in a code set.

    Parameters
    ----------
    codes : array-like of str
        ICD-10 codes as recorded (dotted or not, any case, trailing
        characters allowed).
    patterns : sequence of str
        Codes, prefixes and ranges (see the module description).
    name : str
        Name of the set, for error messages.

    Returns
    -------
    numpy.ndarray of bool

    Examples
    --------
    >>> match_icd10(["A80.1", "B34.9", "B35", "b15"], ["A80-B34"]).tolist()
    [True, True, False, True]
    """
    fcodes, uniques = pd.factorize(pd.Series(list(codes) if not isinstance(codes, pd.Series) else codes),
                                   use_na_sentinel=True)
    folded = pd.Series([normalize_icd10(u) or "" for u in uniques], dtype=object)
    return np.append(_match_folded(folded, patterns, name), False)[fcodes]


def _match_folded(folded: pd.Series, patterns: Sequence[str], name: str) -> np.ndarray:
    """Which folded codes (see :func:`normalize_icd10`) fall in a code set.

    Matching is done on distinct codes: registries repeat a few thousand
    codes over millions of rows.
    """
    hit = np.zeros(len(folded), dtype=bool)
    for low, high in (_compile_pattern(name, p) for p in patterns):
        head = folded.str.slice(0, len(low))
        hit |= ((head >= low) & (head <= high) & (folded.str.len() >= len(low))).to_numpy()
    return hit


def lab_code_key(code: Any) -> str:
    """The text a lab code is compared by: ``str(code).strip()``, integral floats as integers.

    So that an item id stored as an integer (``52075``), as text
    (``" 52075"``) or as a float of a column with gaps (``52075.0``) is one
    code.

    Examples
    --------
    >>> lab_code_key(52075), lab_code_key(" 52075.0 "), lab_code_key("751-8")
    ('52075', '52075', '751-8')
    """
    text = str(code).strip()
    m = _INTEGRAL.match(text)
    return m.group(1) if m else text


_INTEGRAL = re.compile(r"^([+-]?\d+)\.0*$")


def read_code_map(code_map: Any, *, function: str = "read_code_map") -> dict[str, str]:
    """Check a map of local lab codes to LOINC codes, or read it from a CSV file.

    Parameters
    ----------
    code_map : mapping or path
        Local code -> LOINC code (``{"NEUT%": "770-8", 52075: "751-8"}``),
        or the path of a CSV file with two columns (local code, LOINC code)
        and a header row (names free). Keys are compared by
        :func:`lab_code_key`, so integer item ids match text ones.
        :data:`MIMIC_IV_LAB_CODES` is the built-in MIMIC-IV map.
    function : str
        Name of the calling function, for messages.

    Returns
    -------
    dict
        Folded local code -> LOINC code.

    Raises
    ------
    NeutrostatsError
        If a target is not a LOINC code neutrostats knows (:data:`LOINC_ROLES`),
        a local code maps to two different LOINC codes, or the file is missing
        or not a two-column CSV.

    Examples
    --------
    >>> read_code_map({52075: "751-8", " NEUT% ": "770-8"})
    {'52075': '751-8', 'NEUT%': '770-8'}
    >>> read_code_map({"HGB": "718-7"})
    Traceback (most recent call last):
    ...
    neutrostats.errors.NeutrostatsError: read_code_map: code_map maps 1 local codes to codes that are not ...
    """
    import os

    if isinstance(code_map, (str, os.PathLike)):
        path = os.fspath(code_map)
        if not os.path.isfile(path):
            raise NeutrostatsError(
                f"{function}: code_map file {path!r} not found; pass the path of a CSV file with two columns "
                "(local code, LOINC code) and a header row, or a mapping such as code_map={'52075': '751-8'}"
            )
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            raise NeutrostatsError(f"{function}: code_map file {path!r} is not a readable CSV file ({exc})") from None
        if table.shape[1] != 2:
            raise NeutrostatsError(
                f"{function}: code_map file {path!r} must have two columns (local code, LOINC code), found "
                f"{table.shape[1]}: {list(table.columns)}"
            )
        pairs = list(zip(table.iloc[:, 0], table.iloc[:, 1]))
    elif isinstance(code_map, Mapping):
        pairs = list(code_map.items())
    else:
        raise NeutrostatsError(
            f"{function}: code_map must be a mapping local code -> LOINC code or the path of a two-column "
            f"CSV file, found {type(code_map).__name__}; e.g. code_map={{'52075': '751-8'}}"
        )
    out: dict[str, str] = {}
    unknown: dict[str, str] = {}
    for local, target in pairs:
        key, loinc = lab_code_key(local), str(target).strip()
        if not key:
            raise NeutrostatsError(f"{function}: code_map has an empty local code (mapped to {target!r})")
        if loinc not in LOINC_ROLES:
            unknown[key] = loinc
            continue
        if out.get(key, loinc) != loinc:
            raise NeutrostatsError(
                f"{function}: code_map maps local code {key!r} to two LOINC codes, {out[key]!r} and {loinc!r}"
            )
        out[key] = loinc
    if unknown:
        shown = ", ".join(f"{k!r} -> {v!r}" for k, v in list(unknown.items())[:5])
        raise NeutrostatsError(
            f"{function}: code_map maps {len(unknown)} local codes to codes that are not LOINC codes of an "
            f"ANC, WBC or differential count: {shown}; known LOINC codes: {', '.join(sorted(LOINC_ROLES))}. "
            "Map only the neutrophil, band and leukocyte tests (other tests need no entry)"
        )
    return out
