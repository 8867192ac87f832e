"""Code sets: LOINC laboratory codes for the neutrophil count and its parts.

The codes and their meanings are those of DOMAIN.md section 1 (LOINC).  Each
set is a ``frozenset`` of strings so it can be used directly with
``Series.isin``.

Examples
--------
>>> from neutrostats.codes import LOINC_ANC, loinc_role
>>> "751-8" in LOINC_ANC
True
>>> loinc_role("770-8")
'neutrophil_pct'
"""

from __future__ import annotations

__all__ = [
    "LOINC_ANC",
    "LOINC_NEUTROPHIL_PCT",
    "LOINC_BAND_PCT",
    "LOINC_WBC",
    "LOINC_SEGMENTED_ABS",
    "LOINC_BAND_ABS",
    "LOINC_ROLES",
    "loinc_role",
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
