"""ICD-10 outcome code sets and the matching of diagnosis codes against them.

The outcome definitions use the categories of WHO ICD-10 [1]_ (ICD-10-CM
codes match too) for the outcomes studied by Andersen et al. 2016 [2]_,
written as patterns that :func:`match_icd10` understands:

* a code or prefix, dotted or not: ``"C92.0"`` matches ``C92.0``, ``C920``,
  ``c92.00``; ``"D46"`` matches every D46 subcode;
* a range of categories, inclusive: ``"A80-B34"`` (or with an en dash)
  matches every code whose first three characters lie from A80 to B34;
  longer endpoints compare that many characters (``"C92.0-C92.3"``).

References
----------
.. [1] World Health Organization. International Statistical Classification
   of Diseases and Related Health Problems, 10th Revision (ICD-10), 2019
   version. https://icd.who.int/browse10/2019/en
.. [2] Andersen CL, Tesfa D, Siersma VD, et al. Prevalence and clinical
   significance of neutropenia discovered in routine complete blood cell
   counts: a longitudinal study. J Intern Med 2016;279:566-575.
   doi:10.1111/joim.12489
   doi:10.1111/joim.12489.

Examples
--------
>>> from neutrostats.cohort.icd10 import match_icd10
>>> match_icd10(["B20.1", "c920", "Z21", "C91.1"], ["B20-B24", "Z21", "C92.0"]).tolist()
[True, True, True, False]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.errors import NeutrostatsError

__all__ = [
    "ICD10_OUTCOMES",
    "DEFAULT_OUTCOMES",
    "OUTCOME_LABELS",
    "normalize_icd10",
    "validate_code_sets",
    "match_icd10",
]
#: ICD-10 outcome definitions (WHO ICD-10 2019 categories): viral infections
#: A80-B34, HIV B20-B24, Z21 and O98.7, haematological malignancy C81-C96,
#: myeloid neoplasms of uncertain behaviour D45-D47, acute myeloid leukaemia
#: C92.0 and the other acute myeloid forms, myelodysplastic syndrome D46, and
#: the negative controls solid cancer C00-C80 and autoimmune disorders. The
#: autoimmune list has no standard: it is an assumption (rheumatoid
#: arthritis, SLE, Sjögren, IBD, type 1 diabetes, psoriasis, MS). Read-only.
ICD10_OUTCOMES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "viral_infection": ("A80-B34",),
    "hiv": ("B20-B24", "Z21", "O98.7"),
    "hematologic_malignancy": ("C81-C96",),
    "myeloid_neoplasm": ("D45-D47",),
    "aml": ("C92.0", "C92.4", "C92.5", "C92.6", "C92.8", "C93.0", "C94.0", "C94.2"),
    "mds": ("D46",),
    "solid_cancer": ("C00-C80",),
    "autoimmune": ("M05-M06", "M32", "M35.0", "K50-K51", "E10", "L40", "G35"),
})
#: Outcomes :func:`neutrostats.build_cohort` derives unless told otherwise
#: (the same read-only mapping; ``dict(DEFAULT_OUTCOMES)`` gives a copy to
#: extend).
DEFAULT_OUTCOMES = ICD10_OUTCOMES
#: Display labels of the built-in outcomes (British spelling, as in Andersen 2016), read-only.
OUTCOME_LABELS: Mapping[str, str] = MappingProxyType({
    "viral_infection": "Viral infection",
    "hiv": "HIV",
    "hematologic_malignancy": "Haematological malignancy",
    "myeloid_neoplasm": "Myeloid neoplasm of uncertain behaviour",
    "aml": "Acute myeloid leukaemia",
    "mds": "Myelodysplastic syndrome",
    "solid_cancer": "Solid cancer",
    "autoimmune": "Autoimmune disorder",
    "death": "Death",
})

ICD10_CODE_PATTERN = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")
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
    if len(folded) not in (1, 2) or not all(ICD10_CODE_PATTERN.match(p) for p in folded):
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

    See Also
    --------
    match_icd10 : match codes against a set.

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

    See Also
    --------
    normalize_icd10 : how codes are folded before matching.
    validate_code_sets : the check applied to user code sets.
    neutrostats.build_cohort : derives outcome columns from these code sets.

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


