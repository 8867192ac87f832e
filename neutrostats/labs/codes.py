"""Lab code sets: LOINC codes of the neutrophil count and its parts, local lab-code maps.

LOINC codes and meanings are those of the LOINC code pages [1]_; each set is
a ``frozenset`` usable with ``Series.isin``. The MIMIC-IV item ids are those
of mimic-code's ``blood_differential`` concept [2]_. ICD-10 outcome code sets
live in :mod:`neutrostats.cohort.icd10`.

References
----------
.. [1] Regenstrief Institute. LOINC, one page per code:
   https://loinc.org/751-8/, /753-4/, /26499-4/ (neutrophils, absolute),
   /770-8/, /26511-6/, /26505-8/ (neutrophils per 100 leukocytes), /764-1/,
   /26508-2/, /35332-6/ (band neutrophils per 100 leukocytes), /6690-2/,
   /26464-8/ (leukocytes), /30451-9/ (segmented neutrophils, absolute),
   /763-3/, /26507-4/ (band neutrophils, absolute).
.. [2] Johnson AEW, Bulgarelli L, Shen L, et al. MIMIC-IV, a freely
   accessible electronic health record dataset. Sci Data 2023;10:1; the
   ``blood_differential`` concept of the MIT-LCP mimic-code repository.

Examples
--------
>>> from neutrostats.labs.codes import LOINC_ANC, loinc_role
>>> "751-8" in LOINC_ANC
True
>>> loinc_role("770-8")
'neutrophil_pct'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pandas as pd

from neutrostats.errors import NeutrostatsError

__all__ = [
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

#: Role of every LOINC code neutrostats knows, keyed by code (read-only).
LOINC_ROLES: Mapping[str, str] = MappingProxyType({
    **{c: "anc" for c in LOINC_ANC},
    **{c: "neutrophil_pct" for c in LOINC_NEUTROPHIL_PCT},
    **{c: "band_pct" for c in LOINC_BAND_PCT},
    **{c: "wbc" for c in LOINC_WBC},
    **{c: "segmented_abs" for c in LOINC_SEGMENTED_ABS},
    **{c: "band_abs" for c in LOINC_BAND_ABS},
})

#: MIMIC-IV ``labevents.itemid`` of the blood differential (mimic-code's
#: ``blood_differential`` concept) mapped to the LOINC code of the same
#: quantity: 52075 absolute neutrophil count (K/uL), 51256 neutrophils (%),
#: 51144 bands (%), 51300/51301/51755 white blood cells (K/uL). Keys are
#: text, as item ids are compared after ``str()``. Read-only; ``dict(...)``
#: gives a copy to extend.
MIMIC_IV_LAB_CODES: Mapping[str, str] = MappingProxyType({
    "52075": "751-8",
    "51256": "770-8",
    "51144": "764-1",
    "51300": "6690-2",
    "51301": "6690-2",
    "51755": "6690-2",
})


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

    See Also
    --------
    lab_code_key : how local codes are compared.
    loinc_role : the role of each LOINC code.
    neutrostats.classify_anc : takes ``code_map=``.

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
