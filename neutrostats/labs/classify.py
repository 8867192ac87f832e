"""Severity schemes and the classification of lab tables by ANC tier.

A :class:`Scheme` is a set of cut points in cells/µL with a label for every
half-open interval ``[lower, upper)``: a value exactly on a cut point belongs
to the milder tier above it. Four published schemes are built in
(``clinical`` [1]_ [2]_, ``andersen2016`` [3]_, ``ctcae_v5`` [4]_, ``ctcae_v6``
[5]_):

========== ================================================================
name       tiers (cells/µL), mildest first
========== ================================================================
clinical   normal >=1500; mild [1000,1500); moderate [500,1000); severe <500
           (``profound=True`` splits profound <100 out of severe)
andersen   normal >=1800; subnormal [1500,1800); mild [1000,1500);
2016       moderate_severe <1000
ctcae_v5   grade_0 >=LLN; grade_1 [1500,LLN); grade_2 [1000,1500);
           grade_3 [500,1000); grade_4 <500 (``lln``, default 2000)
ctcae_v6   grade_0 >=1500; grade_1 [1000,1500); grade_2 [500,1000);
           grade_3 [100,500); grade_4 <100 (no LLN; from secondary
           sources, not checked against the v6.0 document)
========== ================================================================

The lower limit of normal (LLN) of a row
----------------------------------------
Only ``ctcae_v5`` (and a :class:`Scheme` made with ``uses_lln=True``) grades
against the *lab's* lower limit of normal: its top cut is the LLN, so a
row's own LLN (``lower_limit=``, e.g. ADaM ``ANRLO``, FHIR
``referenceRange.low``, MIMIC-IV ``ref_range_lower``) replaces it, up or
down. ``clinical``, ``andersen2016`` and ``ctcae_v6`` have fixed published
cut points and keep them; ``lower_limit=`` with them is refused.

The limit applied to a row (reported in ``normal_limit_per_ul``) is, in
order:

1. the lab's LLN of the row, when ``lower_limit=`` names a column, the
   row is a direct ANC result and its LLN is usable (a limit that cannot be
   read, is censored, or lies outside 100-10,000 cells/µL after unit
   conversion flags the row ``unusable_limit``; an empty one falls back to
   2.); the LLN of a % row is a limit of the percentage, so a derived ANC
   uses 2.;
2. else the limit of the row's age band in ``age_limits=`` (age at the
   sample from the birth date); a row whose age is unknown, negative or in a
   band without a limit is flagged ``no_age_limit``; ages outside every band
   (adults, in the default table) keep 3.;
3. else the scheme's own limit (``Scheme.normal_limit``).

For a Duffy-null person the limit is then lowered to ``duffy_null_limit``
when that is lower: the Duffy-null reference interval is one the lab's
general-population LLN does not know about, and it never raises a limit.
For a fixed scheme a limit can only lower the normal tier's bound (there is
no tier between a higher limit and its top cut); a value at or above the
limit is normal and a value below it keeps the tier its cut points give.

References
----------
.. [1] Taplitz RA, Kennedy EB, Bow EJ, et al. Antimicrobial prophylaxis for
   adult patients with cancer-related immunosuppression: ASCO and IDSA
   clinical practice guideline update. J Clin Oncol 2018;36:3043-3054.
.. [2] Freifeld AG, Bow EJ, Sepkowitz KA, et al. Clinical practice guideline
   for the use of antimicrobial agents in neutropenic patients with cancer:
   2010 update by the Infectious Diseases Society of America. Clin Infect Dis
   2011;52:e56-e93 (profound neutropenia, <100/µL).
.. [3] Andersen CL, Tesfa D, Siersma VD, et al. Prevalence and clinical
   significance of neutropenia discovered in routine complete blood cell
   counts: a longitudinal study. J Intern Med 2016;279:566-575.
   doi:10.1111/joim.12489
   doi:10.1111/joim.12489.
.. [4] National Cancer Institute. Common Terminology Criteria for Adverse
   Events (CTCAE) v5.0, "Neutrophil count decreased". NCI, 2017.
.. [5] National Cancer Institute. Common Terminology Criteria for Adverse
   Events (CTCAE) v6.0, "Neutrophil count decreased". NCI, 2025. The grades
   are taken from secondary sources (Hibbs, Merz et al., "A paradigm shift in
   neutrophil adverse event grading: what now?", 2025, PMC12745037, as
   quoted), not from the v6.0 document, which was not available here.

Examples
--------
>>> import pandas as pd
>>> from neutrostats import classify_anc, tier_summary
>>> labs = pd.DataFrame({"value": ["1.6", "0.4", "<0.1", "clotted"],
...                      "unit": ["10^9/L", "K/uL", "x10^9/L", "10^9/L"]})
>>> out = classify_anc(labs, scheme="clinical")
>>> out[["anc_per_ul", "tier", "anc_flag"]]
   anc_per_ul    tier     anc_flag
0      1600.0  normal          NaN
1       400.0  severe          NaN
2       100.0  severe          NaN
3         NaN     NaN  non_numeric
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.core.validate import require_choice, require_columns, require_dataframe, require_positive
from neutrostats.labs.codes import LOINC_ROLES, lab_code_key, read_code_map
from neutrostats.disclosure.rules import suppress_counts
from neutrostats.errors import NeutrostatsError
from neutrostats.labs.units import (
    KNOWN_COUNT_UNITS,
    NO_FLAG,
    PERCENT_UNITS,
    check_separators,
    _parse_arrays,
    ambiguous_rows,
    unknown_unit_message,
    derive_anc,
    unit_key,
)

__all__ = [
    "Scheme",
    "SCHEMES",
    "TIER_NAMES",
    "tier_name",
    "DEFAULT_SCHEME",
    "ANC_FLAGS",
    "FLAG_DESCRIPTIONS",
    "ANC_SOURCES",
    "get_scheme",
    "classify_anc",
    "tier_summary",
    "DUFFY_NULL_LIMIT",
    "IMPLAUSIBLE_ABOVE",
    "UNIT_SUSPECT_BELOW",
    "DEFAULT_AGE_LIMITS",
    "LIMIT_PLAUSIBLE",
    "age_limit_table",
    "duffy_null_status",
]

#: Default lower limit of normal (cells/µL) for Duffy-null persons: the lower
#: end of the Duffy-null reference interval (1,210/µL, US cohort) rounded, as
#: in Hibbs, Merz et al., Blood 2025; the lower counts of healthy Duffy-null
#: adults: Merz LE et al., Blood Adv 2023;7:317-320; the ACKR1 (Duffy)
#: variant behind them: Reich D et al., PLoS Genet 2009;5:e1000360.
DUFFY_NULL_LIMIT = 1200.0
#: ANC above this many cells/µL is flagged ``implausible``.
IMPLAUSIBLE_ABOVE = 100_000.0
#: Default ``unit_suspect_below``: a non-integer count below this many
#: cells/µL in a cells/µL unit is a 10⁹/L value with the wrong unit.
UNIT_SUSPECT_BELOW = 20.0

#: A lab's lower limit of normal outside ``[low, high)`` cells/µL (after unit
#: conversion) is not read: it is the 1000-fold slip of a unit (``1.8`` with
#: cells/µL, or ``1800`` with 10⁹/L), not an ANC limit.
LIMIT_PLAUSIBLE = (100.0, 10_000.0)

#: Days in a year, for the age at a sample (as ``build_cohort``'s ages).
_DAYS_PER_YEAR = 365.25

#: Default ``age_limits``: (age from, age to, lower limit of normal in
#: cells/µL), ages in years of 365.25 days, each band ``[from, to)``. "The
#: lower limit for normal neutrophil counts is 1000/mm3 in infants between 2
#: weeks and 1 year of age; after infancy the corresponding value is
#: 1500/mm3" (Clinical disorders of neutropenia, Pediatrics in Review, as
#: indexed with its abstract by Scilit; the same limits in the 5-Minute
#: Pediatric Consult) — (?) the primary text was not verified here: a
#: configurable default. The first two weeks (neonatal counts change by the
#: day) have no limit (``None``: such rows are flagged ``no_age_limit``);
#: from 18 years the scheme's own limit applies (the table is for children:
#: its 1,500/µL would otherwise replace andersen2016's adult 1,800/µL).
DEFAULT_AGE_LIMITS: tuple[tuple[float, float, float | None], ...] = (
    (0.0, 14 / _DAYS_PER_YEAR, None),
    (14 / _DAYS_PER_YEAR, 1.0, 1000.0),
    (1.0, 18.0, 1500.0),
)

#: Every reason a row can be left without a tier, in the order of precedence.
ANC_FLAGS = (
    "missing_value",
    "non_numeric",
    "missing_unit",
    "unknown_unit",
    "unit_code_mismatch",
    "ambiguous_number",
    "unit_suspect",
    "negative",
    "implausible",
    "unusable_limit",
    "no_age_limit",
    "censored_spans_tiers",
    "missing_component",
    "censored_component",
    "pct_out_of_range",
    "pct_sum_over_100",
    "incomplete_differential",
    "duplicate_component",
    "used_in_derivation",
    "direct_anc_available",
    "not_anc_test",
)
FLAG_CODES: Mapping[str, int] = MappingProxyType({name: i for i, name in enumerate(ANC_FLAGS)})

#: What each flag means, in words for flow tables (flow step names); the
#: flag names themselves stay machine names in ``anc_flag``.
FLAG_DESCRIPTIONS: Mapping[str, str] = MappingProxyType({
    "missing_value": "no usable ANC: result empty",
    "non_numeric": "no usable ANC: result not a number (e.g. 'clotted', 'see comment')",
    "missing_unit": "no usable ANC: unit missing (pass assume_unit= if all rows share one)",
    "unknown_unit": "no usable ANC: unit is not a count unit",
    "unit_code_mismatch": "no usable ANC: unit contradicts the lab code (e.g. % on an absolute count)",
    "ambiguous_number": "ambiguous number (thousands or decimal separator?): pass thousands=",
    "unit_suspect": "value implausibly low for its unit (a 10^9/L value labelled cells/µL?)",
    "negative": "no usable ANC: negative count (data error)",
    "implausible": "no usable ANC: count above 100,000 cells/µL (implausible)",
    "unusable_limit": "no usable ANC: the lab's lower limit of normal cannot be read or is implausible (lower_limit=)",
    "no_age_limit": "no usable ANC: age at the sample unknown, or no limit for it in age_limits=",
    "censored_spans_tiers": "no usable ANC: censored result spans tiers (e.g. '<1.0' x10^9/L)",
    "missing_component": "ANC not derivable: WBC or neutrophil % missing or unusable",
    "censored_component": "ANC not derivable: a WBC or differential value is censored (e.g. '<1')",
    "pct_out_of_range": "ANC not derivable: a percentage outside 0-100",
    "pct_sum_over_100": "ANC not derivable: neutrophil % + band % over 100",
    "incomplete_differential": "WBC/differential incomplete: no neutrophil % or no WBC in the sample",
    "duplicate_component": "repeat WBC/differential row in the same sample (the first is used)",
    "used_in_derivation": "WBC/band rows used to derive the ANC (counted on the neutrophil % row)",
    "direct_anc_available": "WBC/differential rows not needed: the sample has a usable direct ANC",
    "not_anc_test": "other lab tests (not an ANC, WBC or differential code)",
})
_FLAG_DTYPE = pd.CategoricalDtype(list(ANC_FLAGS))

#: How the ANC of a row was obtained.
ANC_SOURCES = ("direct", "derived", "derived_no_bands")
SOURCE_DTYPE = pd.CategoricalDtype(list(ANC_SOURCES))
CENSOR_DTYPE = pd.CategoricalDtype(["<", "<=", ">", ">="])


@dataclass(frozen=True)
class Scheme:
    """A severity scheme: cut points in cells/µL and a label per interval.

    Parameters
    ----------
    name : str
        Short name, used in outputs.
    cuts : tuple of float
        Strictly increasing cut points in cells/µL.
    labels : tuple of str
        One label per interval, *lowest ANC first* (as in ``pandas.cut``):
        ``labels[0]`` names ``[0, cuts[0])`` and ``labels[-1]`` names
        ``[cuts[-1], inf)``, the normal tier. Intervals are half-open with the
        lower bound included.
    reference : str, optional
        Where the scheme comes from.
    uses_lln : bool, default False
        The top cut is the lab's lower limit of normal (as in ``ctcae_v5``),
        so a row's own limit (``lower_limit=`` of :func:`classify_anc`)
        replaces it. False: fixed cut points, which a limit can only lower.

    Attributes
    ----------
    tiers : tuple of str
        Labels mildest first: the order of the ``tier`` Categorical.
    normal_tier : str
        The tier at or above ``normal_limit`` (``labels[-1]``), the default
        reference tier of comparisons.
    normal_limit : float
        Lower limit of normal, ``cuts[-1]``.
    dtype : pandas.CategoricalDtype
        Ordered categorical dtype of the tiers, mildest first.

    Raises
    ------
    NeutrostatsError
        If the cuts are not strictly increasing finite positive numbers, or
        there is not exactly one more label than cuts, or labels repeat.

    Examples
    --------
    >>> s = Scheme("mine", cuts=(500, 1200), labels=("low", "borderline", "ok"))
    >>> s.tiers
    ('ok', 'borderline', 'low')
    >>> list(s.classify([499.9, 500, 1200]))
    ['low', 'borderline', 'ok']
    >>> Scheme("bad", cuts=(1500, 1000), labels=("a", "b", "c"))
    Traceback (most recent call last):
    ...
    neutrostats.errors.NeutrostatsError: Scheme: cuts must be strictly increasing ...
    """

    name: str
    cuts: tuple[float, ...]
    labels: tuple[str, ...]
    reference: str = ""
    uses_lln: bool = False
    _cuts: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            cuts = tuple(float(c) for c in self.cuts)
        except (TypeError, ValueError):
            raise NeutrostatsError(
                f"Scheme: cuts must be numbers in cells/µL, found {self.cuts!r}"
            ) from None
        labels = tuple(str(lab) for lab in self.labels)
        if not cuts:
            raise NeutrostatsError("Scheme: expected at least one cut point, found none")
        arr = np.asarray(cuts)
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0) or np.any(np.diff(arr) <= 0):
            raise NeutrostatsError(
                f"Scheme: cuts must be strictly increasing positive numbers in cells/µL, found {cuts}; "
                "give them lowest first, e.g. cuts=(500, 1000, 1500)"
            )
        if len(labels) != len(cuts) + 1:
            raise NeutrostatsError(
                f"Scheme: expected one more label than cuts ({len(cuts) + 1} labels for "
                f"{len(cuts)} cuts), found {len(labels)} labels {labels}"
            )
        if arr[-1] >= IMPLAUSIBLE_ABOVE:
            raise NeutrostatsError(
                f"Scheme: cuts must lie below {IMPLAUSIBLE_ABOVE:,.0f} cells/µL (higher values are "
                f"flagged implausible), found {cuts}; give cuts in cells/µL, not cells/L"
            )
        if len(set(labels)) != len(labels):
            raise NeutrostatsError(f"Scheme: labels must be distinct, found {labels}")
        object.__setattr__(self, "cuts", cuts)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "uses_lln", bool(self.uses_lln))
        object.__setattr__(self, "_cuts", arr)

    @property
    def tiers(self) -> tuple[str, ...]:
        return self.labels[::-1]

    def tier_labels(self, unit: str = "10^9/L") -> dict[str, str]:
        """Display label of each tier with its range, mildest first.

        The name comes from :data:`TIER_NAMES` (else the label with
        underscores as spaces, capitalised); the range is the half-open
        interval of the cuts, lower bound included.

        Parameters
        ----------
        unit : {"10^9/L", "cells/uL"}, default "10^9/L"
            Unit the ranges are written in (``×10⁹/L`` with one decimal or
            more, or ``cells/µL`` with thousands separators).

        Returns
        -------
        dict of str to str

        Examples
        --------
        >>> get_scheme("andersen2016").tier_labels()["moderate_severe"]
        'Moderate–severe (<1.0 ×10⁹/L)'
        >>> get_scheme("andersen2016").tier_labels()["mild"]
        'Mild (1.0 to <1.5 ×10⁹/L)'
        >>> get_scheme("clinical").tier_labels(unit="cells/uL")["normal"]
        'Normal (≥1,500 cells/µL)'
        """
        if unit not in ("10^9/L", "cells/uL"):
            raise NeutrostatsError(f"Scheme.tier_labels: unit must be '10^9/L' or 'cells/uL', found {unit!r}")
        suffix = " ×10⁹/L" if unit == "10^9/L" else " cells/µL"

        def num(v: float) -> str:
            if unit == "cells/uL":
                return f"{v:,.0f}" if float(v).is_integer() else f"{v:,g}"
            text = f"{v / 1000:.3f}".rstrip("0")
            return text + "0" if text.endswith(".") else text

        cuts, out = self.cuts, {}
        for i, label in enumerate(self.labels):
            if i == 0:
                span = f"<{num(cuts[0])}"
            elif i == len(cuts):
                span = f"≥{num(cuts[-1])}"
            else:
                span = f"{num(cuts[i - 1])} to <{num(cuts[i])}"
            out[label] = f"{tier_name(label)} ({span}{suffix})"
        return {t: out[t] for t in self.tiers}

    @property
    def normal_tier(self) -> str:
        return self.labels[-1]

    @property
    def normal_limit(self) -> float:
        return self.cuts[-1]

    @property
    def dtype(self) -> pd.CategoricalDtype:
        return pd.CategoricalDtype(list(self.tiers), ordered=True)

    def codes(self, anc_per_ul: np.ndarray, normal_limit: np.ndarray | float | None = None) -> np.ndarray:
        """Categorical codes (0 = normal ... ) of exact values; -1 for NaN.

        ``normal_limit`` (scalar or one per value) is the lower limit of the
        normal tier: values at or above it are normal, values below it keep
        the tier of the other cuts. With ``uses_lln`` it replaces the top
        cut (up or down); otherwise it can only lower it (e.g. for
        Duffy-null persons). A NaN limit makes no value normal.

        Examples
        --------
        >>> s = get_scheme("ctcae_v5")
        >>> s.codes([1900.0, 1900.0, 1400.0], normal_limit=[2000.0, 1800.0, 1200.0]).tolist()
        [1, 0, 0]
        """
        v = np.asarray(anc_per_ul, dtype=float)
        m = len(self.cuts)
        if normal_limit is None:
            codes = (m - np.searchsorted(self._cuts, v, side="right")).astype(np.int8)
        else:
            codes = _limit_codes(self, v, self.effective_limit(normal_limit))
        codes[np.isnan(v)] = -1
        return codes

    def effective_limit(self, limit: Any) -> Any:
        """The normal tier's lower bound a limit gives: itself with ``uses_lln``, else at most the top cut."""
        if self.uses_lln:
            return limit
        # NaN stays NaN (an unknown limit), which np.minimum keeps.
        return np.minimum(np.asarray(limit, dtype=float), self.normal_limit)

    def classify(self, anc_per_ul: Any) -> pd.Categorical:
        """Tier of each exact value in cells/µL (NaN stays missing).

        Parameters
        ----------
        anc_per_ul : array-like of float
            ANC values in cells/µL.

        Returns
        -------
        pandas.Categorical
            Ordered, mildest first.
        """
        return pd.Categorical.from_codes(self.codes(np.asarray(anc_per_ul, dtype=float)), dtype=self.dtype)


def _limit_codes(sch: Scheme, v: np.ndarray, limit: Any) -> np.ndarray:
    """Tier codes of exact values against a normal limit (scalar or per value), below the other cuts.

    0 at or above the limit; below it, the tier of the cuts under the top one
    (``1 + #{c in cuts[:-1]: v < c}``), which for a limit equal to the top
    cut is the plain classification. The SQL path writes the same rule
    (``_sql._tier_code_sql``).
    """
    m = len(sch.cuts)
    below = (m - np.searchsorted(sch._cuts[:-1], v, side="right")).astype(np.int8)
    return np.where(v >= limit, 0, below).astype(np.int8)


#: Display names of the built-in schemes' tiers (without the range; see :meth:`Scheme.tier_labels`).
TIER_NAMES: Mapping[str, str] = MappingProxyType({
    "moderate_severe": "Moderate–severe", "subnormal": "Subnormal", "mild": "Mild", "moderate": "Moderate",
    "severe": "Severe", "profound": "Profound", "normal": "Normal",
    **{f"grade_{g}": f"Grade {g}" for g in range(5)},
})


def tier_name(label: str) -> str:
    """The display name of a tier label: :data:`TIER_NAMES`, else underscores as spaces, capitalised.

    Examples
    --------
    >>> tier_name("moderate_severe"), tier_name("very_low")
    ('Moderate–severe', 'Very low')
    """
    if label in TIER_NAMES:
        return TIER_NAMES[label]
    text = str(label).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


_ANDERSEN_REF = (
    "Andersen CL et al. Prevalence and clinical significance of neutropenia discovered in "
    "routine complete blood cell counts: a longitudinal study. J Intern Med 2016;279:566-575. "
    "doi:10.1111/joim.12489"
)
_CLINICAL_REF = (
    "ASCO/IDSA 2018 antimicrobial prophylaxis guideline (J Clin Oncol 36:3043); "
    "profound <100/µL from the IDSA 2010 febrile neutropenia guideline"
)
_CTCAE_REF = "NCI Common Terminology Criteria for Adverse Events v5.0, 'Neutrophil count decreased'"


def _clinical(profound: bool = False) -> Scheme:
    if profound:
        return Scheme(
            "clinical", (100, 500, 1000, 1500), ("profound", "severe", "moderate", "mild", "normal"), _CLINICAL_REF
        )
    return Scheme("clinical", (500, 1000, 1500), ("severe", "moderate", "mild", "normal"), _CLINICAL_REF)


def _andersen2016() -> Scheme:
    return Scheme(
        "andersen2016", (1000, 1500, 1800), ("moderate_severe", "mild", "subnormal", "normal"), _ANDERSEN_REF
    )


def _ctcae_v5(lln: float = 2000.0) -> Scheme:
    if not lln > 1500:
        raise NeutrostatsError(
            f"get_scheme('ctcae_v5'): the lower limit of normal must be above 1500 cells/µL "
            f"(grade 1 is [1500, LLN)), found lln={lln!r}; pass your lab's LLN in cells/µL, e.g. lln=1800"
        )
    return Scheme(
        "ctcae_v5", (500, 1000, 1500, lln), ("grade_4", "grade_3", "grade_2", "grade_1", "grade_0"), _CTCAE_REF,
        uses_lln=True,
    )


_CTCAE_V6_REF = (
    "NCI Common Terminology Criteria for Adverse Events v6.0 (2025), 'Neutrophil count decreased': grades "
    "taken from secondary sources (Hibbs, Merz et al., 'A paradigm shift in neutrophil adverse event grading: "
    "What now?', 2025, PMC12745037, as quoted), NOT verified against the v6.0 document"
)


def _ctcae_v6() -> Scheme:
    """CTCAE v6.0 "Neutrophil count decreased", as reported by secondary sources (not verified).

    Grade 0 >= 1500/µL (no LLN); grade 1 [1000, 1500); grade 2 [500, 1000);
    grade 3 [100, 500); grade 4 < 100. These cut points were taken from
    secondary sources quoting v6.0 (Hibbs, Merz et al. 2025, PMC12745037),
    not from the v6.0 document itself, which was not available when this
    scheme was written: check them against it before relying on them.
    """
    return Scheme(
        "ctcae_v6", (100, 500, 1000, 1500), ("grade_4", "grade_3", "grade_2", "grade_1", "grade_0"),
        _CTCAE_V6_REF,
    )


#: Built-in schemes by name, each a factory taking its options (read-only).
SCHEMES: Mapping[str, Callable[..., Scheme]] = MappingProxyType(
    {"clinical": _clinical, "andersen2016": _andersen2016, "ctcae_v5": _ctcae_v5, "ctcae_v6": _ctcae_v6}
)

#: The scheme every function and command uses when none is given: the tiers
#: of Andersen et al. 2016, the study whose design ``build_cohort`` and the
#: report follow and whose odds ratios the synthetic cohort reproduces.
DEFAULT_SCHEME = "andersen2016"


def get_scheme(scheme: str | Scheme = DEFAULT_SCHEME, **options: Any) -> Scheme:
    """Return a built-in scheme by name (with options), or a Scheme unchanged.

    Parameters
    ----------
    scheme : str or Scheme, default "andersen2016"
        ``"clinical"``, ``"andersen2016"``, ``"ctcae_v5"`` or ``"ctcae_v6"``
        (grades from secondary sources, not verified against the v6.0
        document), or a :class:`Scheme`; the default is
        :data:`DEFAULT_SCHEME`.
    **options
        ``profound=True`` for ``clinical`` (split profound <100 out of
        severe); ``lln=`` (cells/µL, default 2000) for ``ctcae_v5``.

    Returns
    -------
    Scheme

    Raises
    ------
    NeutrostatsError
        For an unknown name or an option the scheme does not take.

    See Also
    --------
    Scheme : your own cut points and labels.
    classify_anc : classify a lab table with a scheme.

    Examples
    --------
    >>> get_scheme("clinical", profound=True).tiers
    ('normal', 'mild', 'moderate', 'severe', 'profound')
    >>> get_scheme("ctcae_v5", lln=1800).cuts
    (500.0, 1000.0, 1500.0, 1800.0)
    >>> get_scheme("ctcae_v6").cuts, get_scheme("ctcae_v6").uses_lln
    ((100.0, 500.0, 1000.0, 1500.0), False)
    """
    if isinstance(scheme, Scheme):
        if options:
            raise NeutrostatsError(
                f"get_scheme: options {sorted(options)} apply to built-in schemes only; "
                "a Scheme object already holds its cuts"
            )
        return scheme
    if scheme not in SCHEMES:
        raise NeutrostatsError(
            f"get_scheme: unknown scheme {scheme!r}; built-in schemes are {sorted(SCHEMES)}, "
            "or pass a neutrostats.Scheme with your own cuts and labels"
        )
    try:
        return SCHEMES[scheme](**options)
    except TypeError:
        import inspect

        allowed = list(inspect.signature(SCHEMES[scheme]).parameters)
        raise NeutrostatsError(
            f"get_scheme: scheme {scheme!r} takes the options {allowed}, found {sorted(options)}"
        ) from None


class Default(str):
    """Marks a column-name argument the caller did not set."""


def classify_anc(
    labs: pd.DataFrame,
    scheme: str | Scheme = DEFAULT_SCHEME,
    *,
    value: str = "value",
    unit: str = "unit",
    assume_unit: str | None = None,
    code: str | None = Default("code"),
    person: str = "person_id",
    time: str = "sampled_at",
    duffy_null: str | None = None,
    duffy_null_limit: float = DUFFY_NULL_LIMIT,
    on_unknown_unit: str = "raise",
    decimal: str = ".",
    thousands: str | None = None,
    unit_suspect_below: float | None = UNIT_SUSPECT_BELOW,
    code_map: Any = None,
    lower_limit: str | None = None,
    age_limits: Any = None,
    birth_date: str = "birth_date",
) -> pd.DataFrame:
    """Classify every row of a lab table by ANC severity tier.

    Every input row is returned, in the same order and with the same index,
    with columns added. A row gets a tier only when its ANC is a usable
    number (or a censored value whose whole interval lies in one tier);
    otherwise ``anc_flag`` says why. No row is dropped.

    Two layouts are accepted:

    * **wide**: each row is an ANC result (no ``code`` column);
    * **long**: a ``code`` column holds LOINC codes [1]_, or local codes
      translated by ``code_map``.
      ANC rows (751-8, 753-4, 26499-4) are classified directly. For a
      ``person``/``time`` with no usable direct ANC row (none, or only rows
      with a flag, e.g. ``clotted``), the WBC (6690-2, 26464-8),
      neutrophil % (770-8, 26511-6, 26505-8) and band % (764-1, 26508-2,
      35332-6) rows are combined by :func:`~neutrostats.labs.units.derive_anc`; the
      derived ANC is carried on the neutrophil % row and the other parts are
      flagged ``used_in_derivation``. A unit that contradicts its code (a
      ``%`` on an absolute count, a count unit on a percentage) is flagged
      ``unit_code_mismatch``.

    Parameters
    ----------
    labs : pandas.DataFrame
        The lab table.
    scheme : str or Scheme, default "andersen2016"
        ``"clinical"``, ``"andersen2016"``, ``"ctcae_v5"`` or a
        :class:`Scheme` (see :func:`get_scheme` for options such as
        ``profound`` or ``lln``); the default is :data:`DEFAULT_SCHEME`.
    value : str, default "value"
        Column of results: numbers or lab strings (``"<0.1"``, ``"1.5"``,
        ``"see comment"``).
    unit : str, default "unit"
        Column of units (any spelling in
        :data:`~neutrostats.labs.units.KNOWN_COUNT_UNITS`).
    assume_unit : str, optional
        Unit for rows whose unit is missing, or for every row when the table
        has no ``unit`` column. Without it, a missing unit is flagged
        ``missing_unit``.
    code : str or None, default "code"
        Column of LOINC codes; when it is present the table is read as long
        format. ``None`` forces the wide reading.
    person, time : str, default "person_id", "sampled_at"
        Columns that identify one blood sample in long format.
    duffy_null : str, optional
        Column marking Duffy-null persons: booleans, ACKR1 rs2814778
        genotypes (``CC`` Duffy-null) or Fy phenotypes (``Fy(a-b-)``), read
        by :func:`duffy_null_status` (any other value raises; never derive it
        from race). For them the lower limit of normal is
        ``duffy_null_limit`` when that is lower, so a value between it and
        the row's limit is normal. Missing values count as not Duffy-null.
    duffy_null_limit : float, default 1200
        Lower limit of normal for Duffy-null persons, in cells/µL.
    on_unknown_unit : {"raise", "flag"}, default "raise"
        What an ANC row with a unit that is not a count unit gets: an error
        listing every such unit with its row count, or
        ``anc_flag='unknown_unit'``.
    decimal : {".", ","}, default "."
        Decimal separator of string results.
    thousands : {",", "."}, optional
        Thousands separator of string results (well-formed groups of three
        digits only). Without it, a result of the form ``d{1,3}([.,]ddd)+``
        (``"1,200"``, ``"1.200"``, ``"12.500"``) in a cells/µL-scale unit of an
        ANC or WBC row is flagged ``ambiguous_number``, and in a 10⁹/L-scale
        unit it is read as a decimal when ``decimal`` reads it (``"1.200"``
        K/uL is 1.2) and flagged otherwise; percentages are never ambiguous.
        :func:`~neutrostats.labs.units.parse_lab_values` lists every refused
        pattern.
    unit_suspect_below : float or None, default 20
        An ANC or WBC row in a cells/µL-scale unit whose number is not a whole
        number and lies in ``[0, unit_suspect_below)`` (``0.9`` cells/µL: a
        10⁹/L value with the wrong unit) is flagged ``unit_suspect``; whole
        numbers (``0``, ``5``, ``<100``) stay valid, as profound neutropenia
        is reported so. Censored results are judged by their bound. ``None``
        turns the rule off.
    code_map : mapping or path, optional
        Local lab code -> LOINC code (``{"NEUT%": "770-8", 52075: "751-8"}``)
        or the path of a two-column CSV (local code, LOINC code, header row);
        see :func:`~neutrostats.labs.codes.read_code_map`. Codes not in the map
        are read as LOINC codes. ``neutrostats.labs.codes.MIMIC_IV_LAB_CODES`` is
        the built-in MIMIC-IV map.
    lower_limit : str, optional
        Column of the lab's own lower limit of normal of each result (ADaM
        ``ANRLO``, FHIR ``referenceRange.low``, MIMIC-IV
        ``ref_range_lower``), in the row's unit (``1.8`` with 10⁹/L is
        1,800/µL). Only for schemes graded against the LLN (``ctcae_v5``, a
        :class:`Scheme` with ``uses_lln=True``): it replaces their top cut
        on direct ANC rows. An empty LLN falls back to the age band or the
        scheme's; one that cannot be read, is censored, ambiguous or outside
        :data:`LIMIT_PLAUSIBLE` flags the row ``unusable_limit``.
    age_limits : "default" or table, optional
        Age-specific lower limits of normal for children, bands of (age
        from, age to, limit) in years and cells/µL (see
        :func:`age_limit_table`; ``"default"`` is
        :data:`DEFAULT_AGE_LIMITS`: 1,000/µL from 2 weeks to 1 year,
        1,500/µL from 1 to 18 years, no limit in the first two weeks), by
        the age on the day of the sample. A row whose age is unknown or in a
        band without a limit is flagged ``no_age_limit``. None (default):
        no age bands.
    birth_date : str, default "birth_date"
        Column of each row's birth date, needed with ``age_limits``.

    Returns
    -------
    pandas.DataFrame
        ``labs`` with these columns added (replaced if present):

        ``anc_per_ul`` (float)
            ANC in cells/µL; for a censored result, its bound.
        ``anc_censor`` (Categorical)
            ``<``, ``<=``, ``>`` or ``>=`` for a censored result, else NA.
        ``tier`` (ordered Categorical, mildest first)
            The severity tier, NA where ``anc_flag`` is set.
        ``anc_flag`` (Categorical of :data:`ANC_FLAGS`)
            Why the row has no tier; NA when it has one.
        ``anc_source`` (Categorical)
            ``direct``, ``derived`` (WBC x (neutrophil % + band %)),
            ``derived_no_bands`` (WBC x neutrophil %); NA for rows that carry
            no ANC (parts of a derivation, other tests).
        ``normal_limit_per_ul`` (float)
            The lower limit of normal applied to the row: the lab's LLN, the
            age band's or the scheme's, lowered for Duffy-null persons (see
            the module docstring); NaN when unknown (``no_age_limit``).

    Raises
    ------
    NeutrostatsError
        If a column is missing, the scheme is unknown, (with
        ``on_unknown_unit="raise"``) an ANC or WBC row has a unit that is not
        a count unit, or a long table has no row with a known ANC, WBC or
        differential code (the message lists the most frequent codes found
        and says to pass ``code_map=``).

    See Also
    --------
    tier_summary : counts per tier and per flag.
    get_scheme : built-in schemes and their options.
    neutrostats.labs.units.derive_anc : the derivation from WBC and differential.
    neutrostats.build_cohort : one row per person from a classified record.

    Notes
    -----
    A censored result is placed in a tier only when its whole interval lies
    in that tier: ``<0.3`` x10⁹/L means [0, 300) cells/µL, inside severe;
    ``<1.0`` spans moderate and severe and is flagged
    ``censored_spans_tiers``; ``<=0.5`` includes 500 (moderate) and spans too.
    Values above 100,000 cells/µL are flagged ``implausible`` and negative
    values ``negative``.

    The default lower limit of normal of Duffy-null persons, 1,200/µL, is the
    rounded lower end of their reference interval (Hibbs, Merz et al., Blood
    2025) [2]_ [3]_.

    How the lab's LLN, the age bands, the scheme's limit and the Duffy-null
    limit combine is set out in :mod:`neutrostats.labs.classify`: lab LLN
    (LLN schemes, direct ANC rows) before age band before scheme, then
    lowered to the Duffy-null limit; fixed schemes are only ever lowered.

    References
    ----------
    .. [1] Regenstrief Institute. LOINC codes 751-8, 753-4, 26499-4
       (neutrophils, absolute), 770-8, 26511-6, 26505-8 (neutrophils per 100
       leukocytes), 764-1, 26508-2, 35332-6 (band neutrophils per 100
       leukocytes), 6690-2, 26464-8 (leukocytes). https://loinc.org/751-8/
       (and so on, one page per code).
    .. [2] Merz LE, Story CM, Osei MA, et al. Absolute neutrophil count by
       Duffy status among healthy Black and African American adults. Blood
       Adv 2023;7:317-320.
    .. [3] Reich D, Nalls MA, Kao WHL, et al. Reduced neutrophil count in
       people of African descent is due to a regulatory variant in the Duffy
       antigen receptor for chemokines gene. PLoS Genet 2009;5:e1000360.

    Examples
    --------
    >>> import pandas as pd
    >>> labs = pd.DataFrame({"value": [1.25, 1.25], "unit": "10^9/L",
    ...                      "duffy_null": [False, True]})
    >>> classify_anc(labs, duffy_null="duffy_null")[["tier", "normal_limit_per_ul"]]
         tier  normal_limit_per_ul
    0    mild               1800.0
    1  normal               1200.0

    Long format, where the ANC must be derived from the WBC and differential:

    >>> long = pd.DataFrame({
    ...     "person_id": [1, 1, 1],
    ...     "sampled_at": pd.to_datetime(["2020-01-01"] * 3),
    ...     "code": ["6690-2", "770-8", "764-1"],
    ...     "value": ["4.0", "20", "5"],
    ...     "unit": ["10^9/L", "%", "%"]})
    >>> classify_anc(long)[["code", "anc_per_ul", "tier", "anc_flag", "anc_source"]]
         code  anc_per_ul  tier            anc_flag anc_source
    0  6690-2         NaN   NaN  used_in_derivation        NaN
    1   770-8      1000.0  mild                 NaN    derived
    2   764-1         NaN   NaN  used_in_derivation        NaN

    The lab's own lower limit of normal, for a scheme graded against it
    (``ctcae_v5``: grade 0 at or above the LLN), and age bands for children:

    >>> labs = pd.DataFrame({"value": [1.9, 1.9, 1.9, 1.2, 1.2], "unit": "10^9/L",
    ...                      "lln": [2.1, 1.7, None, None, "?"],
    ...                      "sampled_at": pd.to_datetime(["2020-06-01"] * 5),
    ...                      "birth_date": pd.to_datetime(["1980-01-01"] * 3 + ["2020-01-01", "1980-01-01"])})
    >>> out = classify_anc(labs, scheme="ctcae_v5", lower_limit="lln", age_limits="default", code=None)
    >>> out[["tier", "anc_flag", "normal_limit_per_ul"]]
          tier        anc_flag  normal_limit_per_ul
    0  grade_1             NaN               2100.0
    1  grade_0             NaN               1700.0
    2  grade_1             NaN               2000.0
    3  grade_0             NaN               1000.0
    4      NaN  unusable_limit               2000.0
    """
    fn = "classify_anc"
    ages = None
    if age_limits is not None:
        labs = require_dataframe(labs, fn)
        require_columns(labs, [time, birth_date], fn,
                        "age_limits= needs each row's sample time (time=) and birth date (birth_date=).")
        from neutrostats.core.dates import parse_dates

        times = parse_dates(labs[time], table="labs", column=str(time), function=fn)
        births = parse_dates(labs[birth_date], table="labs", column=str(birth_date), function=fn)
        birth_days = births.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
        birth_days[births.isna().to_numpy()] = np.iinfo(np.int64).max
        ages = sample_ages(times, birth_days)
    return classify_frame(
        labs, scheme, value=value, unit=unit, assume_unit=assume_unit, code=code, person=person, time=time,
        duffy_null=duffy_null, duffy_null_limit=duffy_null_limit, on_unknown_unit=on_unknown_unit,
        decimal=decimal, thousands=thousands, unit_suspect_below=unit_suspect_below, code_map=code_map,
        check_codes=True, lower_limit=lower_limit, age_limits=age_limits, ages=ages,
    )


def check_lower_limit(lower_limit: str | None, sch: Scheme, fn: str) -> None:
    """``lower_limit=`` is for schemes graded against the LLN only: refused with a fixed scheme."""
    if lower_limit is not None and not sch.uses_lln:
        raise NeutrostatsError(
            f"{fn}: scheme {sch.name!r} has fixed published cut points and is not graded against the lab's "
            f"lower limit of normal, so lower_limit={lower_limit!r} would be ignored; drop lower_limit=, or use a "
            "scheme graded against the LLN (scheme='ctcae_v5', or a Scheme with uses_lln=True)"
        )


def check_suspect_below(unit_suspect_below: Any, fn: str) -> float | None:
    if unit_suspect_below is None:
        return None
    return require_positive(unit_suspect_below, fn, "unit_suspect_below", "cells/µL")


def classify_frame(labs, scheme, *, value, unit, assume_unit, code, person, time, duffy_null, duffy_null_limit,
                  on_unknown_unit, decimal, thousands, unit_suspect_below, code_map, check_codes,
                  lower_limit=None, age_limits=None, ages=None, time_missing=None, sample_keys=None,
                  function="classify_anc"):
    """:func:`classify_anc`; ``check_codes=False`` skips the "no known code" error (the cohort checks the
    whole table, of which this is the part of known persons).

    ``ages``: age in years at each row's sample (NaN unknown), with
    ``age_limits``. ``time_missing``: rows without a sample time, which are
    not flagged ``no_age_limit`` (the cohort counts them at its time step).
    ``sample_keys``: each row's sample (person and time) as an integer
    code, when the caller has them (the cohort sorts by person and time
    anyway); else they are found from the person and time columns.
    ``function``: the name the error messages start with.
    """
    fn = function
    labs = require_dataframe(labs, fn)
    sch = get_scheme(scheme)
    bands, duffy = _limit_options(labs, sch, fn, lower_limit=lower_limit, age_limits=age_limits,
                                  duffy_null=duffy_null, duffy_null_limit=duffy_null_limit)
    check_separators(decimal, thousands, fn)
    below = check_suspect_below(unit_suspect_below, fn)
    cmap = None if code_map is None else read_code_map(code_map, function=fn)
    require_choice(on_unknown_unit, ("raise", "flag"), fn, "on_unknown_unit")
    require_columns(labs, [value], fn, "Pass value=<column holding the results>.")
    if unit not in labs.columns and assume_unit is None:
        require_columns(
            labs, [unit], fn,
            "Pass unit=<column of units>, or assume_unit='10^9/L' (or 'cells/uL') if every row has one unit.",
        )
    if assume_unit is not None and unit_key(assume_unit) not in KNOWN_COUNT_UNITS:
        raise NeutrostatsError(unknown_unit_message(fn, "assume_unit", {assume_unit: len(labs)}))
    long_format = code is not None and (code in labs.columns or not isinstance(code, Default))
    if long_format:
        require_columns(labs, [code, person, time], fn, "Long format needs code, person and time columns; pass code=None for a table of ANC results only.")

    n = len(labs)
    num, censor, flag, amb = _parse_arrays(labs[value], decimal, thousands)
    factors, unit_state, unit_codes, unit_uniques, any_scaled = _row_units(labs, unit, assume_unit)

    if long_format:
        role = code_roles(labs[code], cmap)
        if check_codes:
            require_known_codes(role, labs[code], fn, code)
        unit_flag = UNIT_FLAG_LONG[role, unit_state]
        checked = role < ROLE_CODES["other"]
    else:
        role = None
        unit_flag = UNIT_FLAG_WIDE[unit_state]
        checked = None
    np.minimum(flag, unit_flag, out=flag)
    # Count every row with the unit, also those whose value is unreadable.
    unknown = unit_flag == FLAG_CODES["unknown_unit"]
    if on_unknown_unit == "raise" and unknown.any():
        shown = _count_values(unit_uniques, unit_codes[unknown])
        raise NeutrostatsError(unknown_unit_message(fn, unit, shown))
    _flag_numbers(flag, num, censor, amb, factors, unit_state, role, below)
    limit, base, limit_flags = _limit_stage(labs, sch, flag, role, factors, any_scaled, lower_limit, (decimal, thousands),
                                            duffy, duffy_null_limit, ages, bands, time_missing)

    # Units that are not count units have factor NaN, so their rows get no
    # number here; the flag above says why.
    anc = num * factors
    if any_scaled:
        # Counts in 10^9/L do not all survive x1000 exactly (23,588 of the
        # integer counts up to 2 million come out one ulp off), and a value on
        # a cut point must not fall below it; cells/uL values are untouched.
        np.round(anc, 6, out=anc)
    if long_format:
        is_measure = role == ROLE_CODES["anc"]
        anc[~is_measure] = np.nan
        # Direct ANC rows first: whether a sample has a *usable* one (no flag,
        # range flags included) decides whether its components are needed.
        tier_codes = _tiers_and_flags(sch, anc, np.where(is_measure, censor, -1), limit, flag, is_measure,
                                      limit_flags)
        anc, is_measure, source_derived, censor = _derive_long(
            labs, unit, person, time, role, flag, anc, is_measure, censor, assume_unit, checked, num, sample_keys
        )
        anchors = source_derived[0]
        if anchors.size:
            sub_flag = flag[anchors]
            # A derived ANC has no LLN of its own (the anchor's is a % limit): the base limit.
            tier_codes[anchors] = _tiers_and_flags(
                sch, anc[anchors], censor[anchors], base if np.ndim(base) == 0 else base[anchors], sub_flag, None,
                None if limit_flags is None else limit_flags[anchors])
            flag[anchors] = sub_flag
        flag[role == ROLE_CODES["other"]] = np.minimum(flag[role == ROLE_CODES["other"]], FLAG_CODES["not_anc_test"])
    else:
        is_measure = None
        source_derived = None
        tier_codes = _tiers_and_flags(sch, anc, censor, limit, flag, is_measure, limit_flags)

    if long_format:
        source = np.where(is_measure, 0, -1).astype(np.int8)
        source[source_derived[0]] = source_derived[1]
        censor[~is_measure] = -1
    else:
        source = np.zeros(n, dtype=np.int8)

    out = labs.copy(deep=False)
    out["anc_per_ul"] = anc
    out["anc_censor"] = pd.Categorical.from_codes(censor, dtype=CENSOR_DTYPE)
    out["tier"] = pd.Categorical.from_codes(tier_codes, dtype=sch.dtype)
    out["anc_flag"] = pd.Categorical.from_codes(flag.view(np.int8), dtype=_FLAG_DTYPE)
    out["anc_source"] = pd.Categorical.from_codes(source, dtype=SOURCE_DTYPE)
    out["normal_limit_per_ul"] = (
        np.full(n, limit) if np.ndim(limit) == 0 else np.asarray(limit, dtype=float)
    )
    return out


def _limit_options(labs, sch, fn, *, lower_limit, age_limits, duffy_null, duffy_null_limit):
    """The limit options checked: the age bands (or None) and each row's Duffy-null flag (or None)."""
    check_lower_limit(lower_limit, sch, fn)
    bands = None if age_limits is None else _age_bands(age_limits, fn)
    if lower_limit is not None:
        require_columns(labs, [lower_limit], fn, "Pass lower_limit=<column of the lab's lower limit of normal>.")
    if duffy_null is None:
        return bands, None
    require_columns(labs, [duffy_null], fn)
    duffy = duffy_null_mask(labs[duffy_null], fn, duffy_null)
    require_positive(duffy_null_limit, fn, "duffy_null_limit", "cells/µL")
    return bands, duffy


def _limit_stage(labs, sch, flag, role, factors, any_scaled, lower_limit, separators, duffy, duffy_null_limit, ages,
                 bands, time_missing):
    """Each row's limit, its limit before the lab's LLN (for derived ANCs), and its limit flags (or None).

    ``flag`` holds the rows' value and unit flags so far: the LLN is read on
    direct ANC results without one (a % row's LLN is not an ANC's).
    ``separators``: ``(decimal, thousands)`` of text results.
    """
    n = len(labs)
    decimal, thousands = separators
    lln = lln_bad = None
    if lower_limit is not None:
        anc_rows = (flag == NO_FLAG) if role is None else (flag == NO_FLAG) & (role == ROLE_CODES["anc"])
        lln, lln_bad = _read_lower_limits(labs[lower_limit], factors, anc_rows, decimal, thousands, any_scaled)
    limit, base = row_limits(sch, n, duffy=duffy, duffy_null_limit=duffy_null_limit, ages=ages, bands=bands,
                             lln=lln)
    if lln_bad is None and bands is None:
        return limit, base, None
    limit_flags = np.full(n, NO_FLAG, dtype=np.uint8)
    if bands is not None:
        no_age = np.isnan(base) if lln is None else np.isnan(base) & np.isnan(lln)
        if time_missing is not None:
            no_age &= ~time_missing
        limit_flags[no_age] = FLAG_CODES["no_age_limit"]
    if lln_bad is not None:
        limit_flags[lln_bad] = FLAG_CODES["unusable_limit"]
    return limit, base, limit_flags


ROLE_CODES: Mapping[str, int] = MappingProxyType({"anc": 0, "neutrophil_pct": 1, "band_pct": 2, "wbc": 3, "other": 4})
# Unit state of a row: 0 count unit, 1 percent, 2 missing, 3 unknown.
UNIT_FLAG_WIDE = np.array(
    [NO_FLAG, FLAG_CODES["unknown_unit"], FLAG_CODES["missing_unit"], FLAG_CODES["unknown_unit"]], dtype=np.uint8
)
# Long format: rows x unit state, by role. A count code with a % unit (or a %
# code with a count unit) contradicts itself; a % code may omit its unit.
UNIT_FLAG_LONG = np.array(
    [
        [NO_FLAG, FLAG_CODES["unit_code_mismatch"], FLAG_CODES["missing_unit"], FLAG_CODES["unknown_unit"]],  # anc
        [FLAG_CODES["unit_code_mismatch"], NO_FLAG, NO_FLAG, FLAG_CODES["unknown_unit"]],  # neutrophil %
        [FLAG_CODES["unit_code_mismatch"], NO_FLAG, NO_FLAG, FLAG_CODES["unknown_unit"]],  # band %
        [NO_FLAG, FLAG_CODES["unit_code_mismatch"], FLAG_CODES["missing_unit"], FLAG_CODES["unknown_unit"]],  # wbc
        [NO_FLAG, NO_FLAG, NO_FLAG, NO_FLAG],  # other tests: their units are not ours to judge
    ],
    dtype=np.uint8,
)


def _flag_rows(flag: np.ndarray, rows: np.ndarray, name: str) -> None:
    """Give ``rows`` the flag ``name`` unless they have a reason that ranks higher."""
    flag[rows] = np.minimum(flag[rows], FLAG_CODES[name])


def unknown_unit_counts(labs: pd.DataFrame, unit: str, code: Any, code_map: dict[str, str] | None,
                        long_format: bool) -> dict[str, int]:
    """Rows per unit spelling that is not a count unit where a count is needed (``unknown_unit``), as
    :func:`classify_anc` counts them before it raises; empty when there are none."""
    _, unit_state, unit_codes, unit_uniques, _ = _row_units(labs, unit, None)
    if long_format:
        unit_flag = UNIT_FLAG_LONG[code_roles(labs[code], code_map), unit_state]
    else:
        unit_flag = UNIT_FLAG_WIDE[unit_state]
    unknown = unit_flag == FLAG_CODES["unknown_unit"]
    return _count_values(unit_uniques, unit_codes[unknown]) if unknown.any() else {}


def _count_values(uniques: list, codes: np.ndarray) -> dict[str, int]:
    counts = np.bincount(codes + 1, minlength=len(uniques) + 1)
    shown = {"<missing>": int(counts[0])} if counts[0] else {}
    shown.update({str(uniques[i]): int(c) for i, c in enumerate(counts[1:]) if c})
    return shown


def _row_units(labs: pd.DataFrame, unit: str, assume_unit: str | None):
    """Per-row factor to cells/µL and unit state (0 count, 1 %, 2 missing, 3 unknown).

    Also returns the unit codes and distinct units (for error messages) and
    whether any unit needs a factor other than 1.
    """
    n = len(labs)
    if unit not in labs.columns:
        f = KNOWN_COUNT_UNITS[unit_key(assume_unit)]  # type: ignore[index]  # a known unit (checked by the caller)
        return np.full(n, f), np.zeros(n, dtype=np.int8), np.zeros(n, dtype=np.int64), [assume_unit], f != 1.0
    col = labs[unit]
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        uniques = list(col.cat.categories)
    else:
        codes, uniques = pd.factorize(col, use_na_sentinel=True)  # type: ignore[assignment]  # a list on the next line
        uniques = list(uniques)
    # Code -1 (missing) picks the last entry.
    pairs = [unit_factor_state(u, assume_unit) for u in uniques] + [unit_factor_state(None, assume_unit)]
    lut_factor = np.array([f for f, _ in pairs], dtype=float)
    lut_state = np.array([st for _, st in pairs], dtype=np.int8)
    known = lut_factor[~np.isnan(lut_factor)]
    return lut_factor[codes], lut_state[codes], codes, uniques, bool(np.any(known != 1.0))


def unit_factor_state(unit: Any, assume_unit: str | None) -> tuple[float, int]:
    """Factor to cells/µL and state (0 count, 1 %, 2 missing, 3 unknown) of one unit spelling."""
    k = unit_key(unit)
    if k is None:
        if assume_unit is not None:
            return KNOWN_COUNT_UNITS[unit_key(assume_unit)], 0  # type: ignore[index]  # a known unit (checked by the caller)
        return np.nan, 2
    if k in KNOWN_COUNT_UNITS:
        return KNOWN_COUNT_UNITS[k], 0
    return np.nan, (1 if k in PERCENT_UNITS else 3)


def role_of(code: Any, code_map: dict[str, str] | None = None) -> int:
    """Role (``ROLE_CODES``) of one lab code (after ``code_map``): ANC, neutrophil %, band %, WBC or other."""
    key = lab_code_key(code)
    if code_map:
        key = code_map.get(key, key)
    return ROLE_CODES.get(LOINC_ROLES.get(key, "other"), ROLE_CODES["other"])


def _flag_numbers(flag, num, censor, amb, factors, unit_state, role, below) -> None:
    """``ambiguous_number`` and ``unit_suspect`` on ANC and WBC rows with a count unit (in place).

    An ambiguous value's number is set to NaN: it has no reading.
    """
    count = unit_state == 0
    if role is not None:
        count &= (role == ROLE_CODES["anc"]) | (role == ROLE_CODES["wbc"])
    if amb is not None:
        refused = ambiguous_rows(amb, np.where(count, factors, np.nan))
        # Their only flag so far is the value's own (none, or non_numeric
        # for a value with no reading by ``decimal``): ambiguity explains it.
        flag[refused] = FLAG_CODES["ambiguous_number"]
        num[refused] = np.nan
        censor[refused] = -1
    if below is not None:
        rows = np.flatnonzero((num < below) & (num >= 0))
        rows = rows[count[rows] & (factors[rows] == 1.0) & (num[rows] != np.floor(num[rows]))]
        _flag_rows(flag, rows, "unit_suspect")


def _code_counts(codes: pd.Series) -> list[tuple[str, int]]:
    """Distinct codes (folded by ``lab_code_key``) with their row counts, most frequent first."""
    fcodes, uniques = pd.factorize(codes, use_na_sentinel=True)
    counts = np.bincount(fcodes + 1, minlength=len(uniques) + 1)
    out: dict[str, int] = {}
    if counts[0]:
        out["<missing>"] = int(counts[0])
    for u, c in zip(uniques, counts[1:]):
        if c:
            k = lab_code_key(u)
            out[k] = out.get(k, 0) + int(c)
    return sorted(out.items(), key=lambda kv: (-kv[1], kv[0]))


def no_known_codes_message(fn: str, column: str, counts: list[tuple[str, int]]) -> str:
    """The error for a long lab table without an ANC, WBC or differential code."""
    top = counts[:10]
    shown = ", ".join(f"{c!r} ({n:,} rows)" for c, n in top)
    known = ", ".join(f"{c} ({r})" for c, r in sorted(LOINC_ROLES.items(), key=lambda kv: (kv[1], kv[0]))
                      if ROLE_CODES.get(r, 4) < 4)
    mimic = sum(n for c, n in top if c.isdigit() and len(c) == 5) * 2 > sum(n for _, n in top)
    hint = ("These look like MIMIC-IV labevents item ids: pass code_map=MIMIC_IV_LAB_CODES "
            "(from neutrostats.labs.codes import MIMIC_IV_LAB_CODES). " if mimic else "")
    return (
        f"{fn}: column {column!r} has no row with a known ANC, WBC or differential code, so no row "
        f"could be classified; the {len(top)} most frequent codes found: {shown}. Known LOINC codes: "
        f"{known}. {hint}Map your local codes to LOINC codes with code_map={{'ANC': '751-8', 'NEUT%': '770-8'}} (a "
        "mapping, or the path of a two-column CSV file: local code, LOINC code), or pass code=None if "
        "every row is an ANC result"
    )


def require_known_codes(role: np.ndarray, codes: pd.Series, fn: str, column: str) -> None:
    """Raise when a non-empty long table has no ANC, WBC or differential row."""
    if role.size and not (role < ROLE_CODES["other"]).any():
        raise NeutrostatsError(no_known_codes_message(fn, column, _code_counts(codes)))


# Codes of duffy_null_status before they become booleans.
_DN_TRUE, _DN_FALSE, _DN_MISSING, _DN_UNKNOWN = 1, 0, -1, -2
_DASHES = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2010": "-", "\u2011": "-", "\uff0d": "-",
                         "\uff0b": "+"})
_GENOTYPE_SEPARATORS = str.maketrans("", "", "/|: ")
#: ACKR1 rs2814778 genotypes (alleles T, expressed, and C, the GATA-box
#: variant -67T>C that silences the gene in red cells: CC is Duffy-null).
_GENOTYPES = MappingProxyType({"CC": _DN_TRUE, "TC": _DN_FALSE, "CT": _DN_FALSE, "TT": _DN_FALSE})
#: Fy phenotypes (red-cell antigens Fy(a) and Fy(b)): Fy(a-b-) is Duffy-null.
_PHENOTYPES = MappingProxyType({"FY(A-B-)": _DN_TRUE, "FY(A+B-)": _DN_FALSE, "FY(A-B+)": _DN_FALSE,
                                "FY(A+B+)": _DN_FALSE})


def _duffy_code(value: Any) -> int:
    """Duffy-null code of one value: a boolean, 0/1, a genotype or a phenotype (else unknown)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return _DN_MISSING
    if isinstance(value, (bool, np.bool_)):
        return _DN_TRUE if value else _DN_FALSE
    if isinstance(value, (int, float, np.integer, np.floating)):
        if np.isnan(float(value)):
            return _DN_MISSING
        return {1.0: _DN_TRUE, 0.0: _DN_FALSE}.get(float(value), _DN_UNKNOWN)
    if not isinstance(value, str):
        return _DN_UNKNOWN
    text = value.translate(_DASHES).strip().upper()
    if text == "":
        return _DN_MISSING
    compact = text.replace(" ", "")
    if compact in _PHENOTYPES:
        return _PHENOTYPES[compact]
    # Strand and allele letters are not guessed: A/G (the other strand) is unknown.
    return _GENOTYPES.get(compact.translate(_GENOTYPE_SEPARATORS), _DN_UNKNOWN)


def _duffy_codes(values: Any, fn: str, column: str) -> np.ndarray:
    """Codes (1 null, 0 not, -1 missing) of every value; raises listing the values that are none of these."""
    s = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object if not hasattr(values, "dtype")
                                                                else None)
    if pd.api.types.is_bool_dtype(s.dtype) and not s.hasnans:
        return s.to_numpy(dtype=bool).astype(np.int8)
    codes, uniques = pd.factorize(s.astype(object), use_na_sentinel=True)
    lut = np.array([_duffy_code(u) for u in uniques] + [_DN_MISSING], dtype=np.int8)
    bad = np.flatnonzero(lut[:-1] == _DN_UNKNOWN)
    if bad.size:
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        values = list(uniques)
        shown = sorted(((values[i], int(counts[i])) for i in bad), key=lambda kv: (-kv[1], str(kv[0])))
        listed = ", ".join(f"{v!r} ({n:,} rows)" for v, n in shown[:10])
        more = f" and {len(shown) - 10} more" if len(shown) > 10 else ""
        raise NeutrostatsError(
            f"{fn}: column {column!r} must be boolean (True/False or 1/0), an ACKR1 rs2814778 genotype "
            f"(CC = Duffy-null; TC, CT, TT not; also written C/C, T/C, C|T) or an Fy phenotype "
            f"phenotypes (Fy(a-b-) = Duffy-null; Fy(a+b-), Fy(a-b+), Fy(a+b+) not); found {len(shown)} other "
            f"values: {listed}{more}. Recode them (missing values are allowed); Duffy-null status is a genotype "
            "or phenotype and is never derived from race or ethnicity"
        )
    return lut[codes]


def duffy_null_status(values: Any) -> pd.Series:
    """Duffy-null status from booleans, ACKR1 rs2814778 genotypes or Fy phenotypes.

    Parameters
    ----------
    values : array-like or Series
        Per person, any mix of: booleans (``True``/``False``, ``1``/``0``);
        ACKR1 rs2814778 genotypes, ``CC`` Duffy-null and ``TC``, ``CT``,
        ``TT`` not (case, spaces and the separators ``/``, ``|``, ``:`` are
        ignored: ``C/C``, ``t|c``); Fy phenotypes, ``Fy(a-b-)`` Duffy-null
        and ``Fy(a+b-)``, ``Fy(a-b+)``, ``Fy(a+b+)`` not (spaces ignored, a
        Unicode minus reads as ``-``). Missing values (None, NaN, empty text)
        stay missing.

    Returns
    -------
    pandas.Series
        Nullable boolean (``True`` Duffy-null), with the index of a Series
        input. :func:`classify_anc` and :func:`~neutrostats.build_cohort`
        treat a missing status as not Duffy-null.

    Raises
    ------
    NeutrostatsError
        For any other value (e.g. ``"AG"``, another strand's alleles, or a
        race category), listing every such value with its count. Nothing is
        guessed.

    Notes
    -----
    Duffy-null status is the genotype (rs2814778 CC) or the red-cell
    phenotype Fy(a-b-), not a race or ethnicity category, which is a poor
    proxy for it [1]_; derive it from a genotype or phenotype only.

    References
    ----------
    .. [1] Hysong MR, et al. Blood Adv 2025 (Duffy-null status and race as
       its proxy).

    Examples
    --------
    >>> duffy_null_status(["CC", "T/C", "Fy(a-b-)", "Fy(a+b+)", None, True]).tolist()
    [True, False, True, False, <NA>, True]
    >>> duffy_null_status(["AG", "AG", "Black"])
    Traceback (most recent call last):
    ...
    neutrostats.errors.NeutrostatsError: duffy_null_status: column 'values' must be boolean ...
    """
    codes = _duffy_codes(values, "duffy_null_status", "values")
    out = pd.arrays.BooleanArray(codes == _DN_TRUE, codes == _DN_MISSING)
    return pd.Series(out, index=values.index if isinstance(values, pd.Series) else None, name="duffy_null")


def duffy_null_mask(values: Any, fn: str, column: str) -> np.ndarray:
    """True for Duffy-null rows; missing counts as not Duffy-null."""
    return _duffy_codes(values, fn, column) == _DN_TRUE


def age_limit_table(age_limits: Any = "default", *, function: str = "age_limit_table") -> pd.DataFrame:
    """The age bands of ``age_limits=`` as a checked, sorted table.

    Parameters
    ----------
    age_limits : "default", sequence of (age from, age to, limit) or DataFrame
        ``"default"`` is :data:`DEFAULT_AGE_LIMITS`. Ages in years (days /
        365.25), each band ``[from, to)``; ``to`` may be ``inf``. The limit
        is the lower limit of normal in cells/µL, or None for a band where
        no limit is known (its rows are flagged ``no_age_limit``). A
        DataFrame has the columns ``age_from``, ``age_to``,
        ``lower_limit_per_ul``.
    function : str, default "age_limit_table"
        Named in error messages.

    Returns
    -------
    pandas.DataFrame
        ``age_from``, ``age_to``, ``lower_limit_per_ul`` (NaN: no limit),
        one row per band, youngest first.

    Raises
    ------
    NeutrostatsError
        For bands that are empty, negative, overlapping, or with a limit
        outside :data:`LIMIT_PLAUSIBLE` cells/µL.

    Examples
    --------
    >>> age_limit_table().round(4)
       age_from   age_to  lower_limit_per_ul
    0    0.0000   0.0383                 NaN
    1    0.0383   1.0000              1000.0
    2    1.0000  18.0000              1500.0
    """
    return _age_bands(age_limits, function)


def _age_bands(age_limits: Any, fn: str) -> pd.DataFrame:
    if isinstance(age_limits, str):
        if age_limits != "default":
            raise NeutrostatsError(f"{fn}: age_limits must be 'default' or a table of bands, found {age_limits!r}")
        age_limits = DEFAULT_AGE_LIMITS
    if isinstance(age_limits, pd.DataFrame):
        require_columns(age_limits, ["age_from", "age_to", "lower_limit_per_ul"], fn)
        rows = list(zip(age_limits["age_from"], age_limits["age_to"], age_limits["lower_limit_per_ul"]))
    else:
        try:
            rows = [tuple(r) for r in age_limits]
        except TypeError:
            rows = []
        if not rows or any(len(r) != 3 for r in rows):
            raise NeutrostatsError(
                f"{fn}: age_limits must be 'default' or bands (age from, age to, lower limit per µL), e.g. "
                f"[(14 / 365.25, 1, 1000), (1, 18, 1500)], found {age_limits!r}"
            )
    try:
        lo = np.array([float(r[0]) for r in rows])
        hi = np.array([float(r[1]) for r in rows])
        lim = np.array([np.nan if r[2] is None or pd.isna(r[2]) else float(r[2]) for r in rows])
    except (TypeError, ValueError):
        raise NeutrostatsError(f"{fn}: age_limits must hold numbers (years, cells/µL), found {rows!r}") from None
    order = np.argsort(lo, kind="stable")
    lo, hi, lim = lo[order], hi[order], lim[order]
    if not np.all(np.isfinite(lo)) or np.any(lo < 0) or np.any(~(hi > lo)):
        raise NeutrostatsError(
            f"{fn}: every age band needs 0 <= age from < age to (years), found {list(zip(lo, hi))}")
    if np.any(lo[1:] < hi[:-1]):
        raise NeutrostatsError(f"{fn}: age bands must not overlap, found {list(zip(lo, hi))}")
    known = lim[~np.isnan(lim)]
    if np.any((known < LIMIT_PLAUSIBLE[0]) | (known >= LIMIT_PLAUSIBLE[1])):
        raise NeutrostatsError(
            f"{fn}: age_limits' lower limits must lie in [{LIMIT_PLAUSIBLE[0]:g}, {LIMIT_PLAUSIBLE[1]:g}) "
            f"cells/µL (or None for no limit), found {lim.tolist()}; give them in cells/µL"
        )
    return pd.DataFrame({"age_from": lo, "age_to": hi, "lower_limit_per_ul": lim})


def sample_ages(sample_times: Any, birth_days: np.ndarray) -> np.ndarray:
    """Age in years (days / 365.25) on the day of each sample; NaN where the time or birth is unknown.

    ``birth_days`` are whole days since 1970 (the int64 maximum: unknown),
    as ``build_cohort`` reads them.
    """
    t = pd.Series(sample_times).to_numpy(dtype="datetime64[ns]")
    day = t.astype("datetime64[D]").astype(np.int64)
    births = np.asarray(birth_days, dtype=np.int64)
    unknown = np.isnat(t) | (births == np.iinfo(np.int64).max)
    return np.where(unknown, np.nan, (day - np.where(unknown, 0, births)) / _DAYS_PER_YEAR)


def _age_band_limits(sch: Scheme, ages: np.ndarray, bands: pd.DataFrame) -> np.ndarray:
    """The limit of each row's age band; the scheme's outside every band; NaN for an unknown or negative age."""
    lim = np.where(np.isnan(ages) | (ages < 0), np.nan, sch.normal_limit)
    for lo, hi, band_lim in bands.itertuples(index=False):
        lim[(ages >= lo) & (ages < hi)] = band_lim
    return lim


def _read_lower_limits(values: pd.Series, factors: np.ndarray, rows: np.ndarray, decimal: str,
                       thousands: str | None, scaled: bool) -> tuple[np.ndarray, np.ndarray]:
    """The lab's LLN of each row in cells/µL (NaN: none) and the rows whose LLN is unusable.

    Read as values are (separators, ``<`` and ``>``), in the row's own unit.
    Only ``rows`` (direct ANC results with a usable value and unit) are
    judged; an empty LLN is no LLN, a censored, unreadable, ambiguous or
    implausible one (outside :data:`LIMIT_PLAUSIBLE`) is unusable.
    """
    num, censor, flag, amb = _parse_arrays(values, decimal, thousands)
    lln = num * factors
    if scaled:
        np.round(lln, 6, out=lln)
    present = flag != FLAG_CODES["missing_value"]
    bad = present & ((flag != NO_FLAG) | (censor >= 0) | ambiguous_rows(amb, factors)
                     | ~((lln >= LIMIT_PLAUSIBLE[0]) & (lln < LIMIT_PLAUSIBLE[1])))
    bad &= rows
    lln[~rows | bad | ~present] = np.nan
    return lln, bad


def row_limits(sch: Scheme, n: int, *, duffy: np.ndarray | None, duffy_null_limit: float,
               ages: np.ndarray | None, bands: pd.DataFrame | None, lln: np.ndarray | None):
    """The normal limit of every row (a scalar when it is the scheme's for all) and of a row without its LLN.

    Returns ``(limit, base)``: ``base`` is the limit before the lab's LLN
    (age band or scheme, then Duffy-null), NaN where the age is unknown or
    its band has no limit. The rule is in the module docstring.
    """
    if duffy is None and bands is None and lln is None:
        return sch.normal_limit, sch.normal_limit
    dl = float(duffy_null_limit)
    base = np.full(n, sch.normal_limit) if bands is None else _age_band_limits(sch, ages, bands)  # type: ignore[arg-type]
    limit = base if lln is None else np.where(np.isnan(lln), base, lln)
    out = []
    for x in (base, limit):
        x = np.asarray(sch.effective_limit(x), dtype=float)
        if duffy is not None:
            x = np.where(duffy, np.minimum(x, dl), x)
        out.append(x)
    return out[1], out[0]


def code_roles(codes: pd.Series, code_map: dict[str, str] | None = None) -> np.ndarray:
    fcodes, uniques = pd.factorize(codes, use_na_sentinel=True)
    lut = np.array([role_of(u, code_map) for u in uniques] + [ROLE_CODES["other"]], dtype=np.int8)
    return lut[fcodes]


def _tiers_and_flags(sch: Scheme, anc, censor, limit, flag, is_measure, limit_flags=None) -> np.ndarray:
    """Tier codes of every row; adds negative/implausible/limit/spans flags to ``flag``.

    One ``searchsorted`` over the cuts widened by 0 and the plausibility limit
    gives the tier and the out-of-range flags together. ``limit_flags``
    (``unusable_limit``/``no_age_limit`` per row, or NO_FLAG) rank after
    the range flags and before ``censored_spans_tiers``.
    """
    m = len(sch.cuts)
    edges = np.concatenate([[0.0], sch._cuts, [np.nextafter(IMPLAUSIBLE_ABOVE, np.inf)]])
    idx = np.searchsorted(edges, anc, side="right")
    tier_lut = np.array([-1, *range(m, -1, -1), -1], dtype=np.int8)
    flag_lut = np.full(m + 3, NO_FLAG, dtype=np.uint8)
    flag_lut[0] = FLAG_CODES["negative"]
    flag_lut[m + 2] = FLAG_CODES["implausible"]  # NaN lands here too, but is flagged already
    tiers = tier_lut[idx]
    range_flags = flag_lut[idx]
    if is_measure is not None:
        range_flags[~is_measure] = NO_FLAG
    # NaN (rows flagged already) sorts past every edge and would read as
    # implausible: only rows without a reason yet take these flags.
    np.copyto(flag, range_flags, where=flag == NO_FLAG)
    if limit_flags is not None:
        lf = limit_flags if is_measure is None else np.where(is_measure, limit_flags, NO_FLAG)
        np.copyto(flag, lf.astype(np.uint8), where=flag == NO_FLAG)
    if np.ndim(limit) != 0:
        # Rows whose limit is not the top cut: the limit decides normal, the other cuts the rest.
        other = np.flatnonzero((tiers >= 0) & ~(limit == sch.normal_limit))
        if other.size:
            tiers[other] = _limit_codes(sch, anc[other], limit[other])
    cens = np.flatnonzero((censor >= 0) & (flag == NO_FLAG))
    if cens.size:
        lim = limit if np.ndim(limit) == 0 else limit[cens]
        tc = _censored_tier_codes(sch, anc[cens], censor[cens], lim)
        tiers[cens] = tc
        _flag_rows(flag, cens[tc < 0], "censored_spans_tiers")
    if is_measure is not None:
        tiers[~is_measure] = -1
    tiers[flag != NO_FLAG] = -1
    return tiers


def _censored_tier_codes(sch: Scheme, v: np.ndarray, censor: np.ndarray, limit) -> np.ndarray:
    """Tier codes of censored values; -1 where the interval spans tiers."""
    m = len(sch.cuts)
    codes = _limit_codes(sch, v, limit)
    lim = np.broadcast_to(np.asarray(limit, dtype=float), v.shape)
    # "<b" is [0, b): its top is just below b, in the tier of b approached
    # from below; the whole interval is one tier only if that is the most
    # severe tier (the bottom, 0, always is). "<=b" includes b itself.
    below_open = censor == 0
    top_open = (m - np.searchsorted(sch._cuts[:-1], v, side="left")).astype(np.int8)
    top_open[v > lim] = 0
    below = censor <= 1
    top = np.where(below_open, top_open, codes)
    # ">b" and ">=b" reach infinity (normal): one tier only if b is normal.
    return np.where(below, np.where(top == m, m, -1), np.where(codes == 0, 0, -1)).astype(np.int8)


def _derive_long(labs, unit, person, time, role, flag, anc, is_measure, censor, assume_unit, checked, num,
                 sample_keys=None):
    """Combine WBC and differential rows into an ANC where no usable direct ANC exists.

    ``num`` are the numbers read from the values (with classify_anc's
    separators), ``censor`` their censoring codes. ``sample_keys``: each
    row's sample as an integer code (0 to samples - 1), when known; else
    found from the person and time columns.

    ``anc``, ``is_measure``, ``censor`` and ``flag`` are classify_anc's own
    working arrays and are updated in place; returns them with the (rows,
    source codes) of the derived measurements.
    """
    n = len(labs)
    rel = np.flatnonzero(checked)
    no_derived = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int8))
    if rel.size == 0:
        return anc, is_measure, no_derived, censor
    if sample_keys is not None:
        key, nkeys = sample_keys, int(sample_keys.max()) + 1
    else:
        key, nkeys = _sample_keys(labs[person], labs[time], rel, n)
    has_direct = np.zeros(nkeys, dtype=bool)
    # Only a usable direct ANC (no flag: readable, count unit, in range)
    # makes the components unnecessary; an unusable one keeps its flag and
    # the sample's ANC is derived.
    has_direct[key[(role == ROLE_CODES["anc"]) & (flag == NO_FLAG)]] = True

    comp = np.flatnonzero((role >= ROLE_CODES["neutrophil_pct"]) & (role <= ROLE_CODES["wbc"]))
    _flag_rows(flag, comp[has_direct[key[comp]]], "direct_anc_available")

    first_row = {}
    for name in ("wbc", "neutrophil_pct", "band_pct"):
        rows = np.flatnonzero(role == ROLE_CODES[name])
        rows = rows[~has_direct[key[rows]]]
        # The first row of each (person, time) in input order is used; later
        # ones are duplicates, flagged so that nothing is counted twice.
        uniq, pos = np.unique(key[rows], return_index=True)
        chosen = rows[pos]
        _flag_rows(flag, np.setdiff1d(rows, chosen, assume_unique=True), "duplicate_component")
        by_key = np.full(nkeys, -1, dtype=np.int64)
        by_key[uniq] = chosen
        first_row[name] = by_key

    anchor_keys = np.flatnonzero(first_row["neutrophil_pct"] >= 0)
    anchor = first_row["neutrophil_pct"][anchor_keys]
    has_neut = first_row["neutrophil_pct"] >= 0
    for name in ("wbc", "band_pct"):
        rows = first_row[name][~has_neut]
        _flag_rows(flag, rows[rows >= 0], "incomplete_differential")

    def units_of(rows: np.ndarray) -> np.ndarray:
        # Only the WBC rows' units are read: a text column of millions of rows is not turned into objects.
        if unit not in labs.columns:
            return np.full(rows.size, assume_unit, dtype=object)
        return labs[unit].iloc[rows].to_numpy(dtype=object)

    def usable(rows: np.ndarray) -> np.ndarray:
        ok = rows >= 0
        ok[ok] = flag[rows[ok]] == NO_FLAG
        return ok

    def part(rows: np.ndarray, with_unit: bool):
        # A part with no row, or whose row is flagged unusable, is missing.
        ok = usable(rows)
        vals = np.full(rows.size, None, dtype=object)
        picked = rows[ok]
        vals[ok] = num[picked]
        # derive_anc needs to know a censored part only: "<" says so.
        cens_at = np.flatnonzero(ok)[censor[picked] >= 0]
        vals[cens_at] = ["<" + repr(float(x)) for x in num[rows[cens_at]]]
        if not with_unit:
            return vals, None
        uts = np.full(rows.size, "10^9/L", dtype=object)
        uts[ok] = units_of(rows[ok])
        if assume_unit is not None:
            uts[pd.isna(uts) | (uts == "")] = assume_unit
        return vals, uts

    wbc_rows = first_row["wbc"][anchor_keys]
    band_rows = first_row["band_pct"][anchor_keys]
    wv, wu = part(wbc_rows, True)
    bv, _ = part(band_rows, False)
    # A band row that is there but unusable (not a number, a wrong unit ...)
    # is unknown, not absent: deriving without it would understate the ANC.
    # Only an empty band result counts as "bands not reported".
    has_band = band_rows >= 0
    band_flag = flag[band_rows[has_band]]
    unusable_band = np.zeros(band_rows.size, dtype=bool)
    unusable_band[has_band] = (band_flag != NO_FLAG) & (band_flag != FLAG_CODES["missing_value"])
    bv[unusable_band] = "unusable"
    nv, _ = part(anchor, False)
    derived = derive_anc(
        pd.Series(wv, dtype=object),
        pd.Series(nv, dtype=object),
        pd.Series(bv, dtype=object),
        wbc_unit=pd.Series(wu, dtype=object),
        # The parts were read and judged by classify_anc already.
        unit_suspect_below=None,
    )
    anc[anchor] = derived["anc_per_ul"].to_numpy()
    is_measure[anchor] = True
    censor[anchor] = -1
    # An anchor keeps its own flag when it has one (it outranks these).
    _flag_rows(flag, anchor[wbc_rows < 0], "incomplete_differential")
    dflag = derived["derive_flag"].astype(object).to_numpy()
    has_wbc = wbc_rows >= 0
    for name in ("missing_component", "censored_component", "negative", "pct_out_of_range", "pct_sum_over_100"):
        _flag_rows(flag, anchor[has_wbc & (dflag == name)], name)
    parts = np.concatenate([wbc_rows[wbc_rows >= 0], band_rows[band_rows >= 0]])
    _flag_rows(flag, parts, "used_in_derivation")
    src = np.where(derived["anc_source"].to_numpy() == "derived", 1, 2).astype(np.int8)
    return anc, is_measure, (anchor, src), censor


def _sample_keys(persons: pd.Series, times: pd.Series, rel: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Each row of ``rel``'s sample (person and time) as a code from 0 (-1 on the other rows), and how many."""
    # Integer codes of person and time combined into one key: a MultiIndex
    # would build a Python tuple per row.
    p_codes, _ = pd.factorize(persons.to_numpy()[rel], use_na_sentinel=False)
    t_codes, _ = pd.factorize(times.to_numpy()[rel], use_na_sentinel=False)
    keys, _ = pd.factorize(p_codes.astype(np.int64) * (int(t_codes.max()) + 1) + t_codes)
    key = np.full(n, -1, dtype=np.int64)
    key[rel] = keys
    return key, int(keys.max()) + 1


def tier_summary(
    classified: pd.DataFrame,
    *,
    tier: str = "tier",
    flag: str = "anc_flag",
    by: str | None = None,
    min_cell_count: int = 0,
) -> pd.DataFrame:
    """Count rows per tier and per flag; the counts add up to the row count.

    Parameters
    ----------
    classified : pandas.DataFrame
        Output of :func:`classify_anc`.
    tier, flag : str
        Names of the tier and flag columns.
    by : str, optional
        A column to count within (e.g. ``"anc_source"``); counts and
        percentages are then per group.
    min_cell_count : int, default 0
        Hide counts from 1 to ``min_cell_count - 1`` (and one more count per
        group when a single hidden one could be recovered from the total),
        with their percentages; see
        :func:`~neutrostats.disclosure.suppress_counts`. Set 5 or 10 for
        output that leaves a secure environment.

    Returns
    -------
    pandas.DataFrame
        One row per tier (every tier of the scheme, mildest first, even when
        its count is 0), then one row per flag that occurs. Columns:

        ``group`` (only with ``by``), ``kind`` (``"tier"`` or ``"flag"``),
        ``level`` (tier or flag name), ``n`` (rows, nullable integer),
        ``percent`` (of all rows), ``percent_classified`` (of rows with a
        tier; NA for flags), ``suppressed`` (True where hidden).

    Raises
    ------
    NeutrostatsError
        If the columns are missing or a row has both a tier and a flag.

    See Also
    --------
    classify_anc : makes the table this counts.
    neutrostats.disclosure.suppress_counts : the small-cell suppression used.

    Examples
    --------
    >>> import pandas as pd
    >>> labs = pd.DataFrame({"value": ["1.6", "0.4", "0.4", "?"], "unit": "K/uL"})
    >>> tier_summary(classify_anc(labs, scheme="clinical"))
       kind        level  n  percent  percent_classified  suppressed
    0  tier       normal  1     25.0           33.333333       False
    1  tier         mild  0      0.0                 0.0       False
    2  tier     moderate  0      0.0                 0.0       False
    3  tier       severe  2     50.0           66.666667       False
    4  flag  non_numeric  1     25.0                <NA>       False
    """
    fn = "tier_summary"
    require_dataframe(classified, fn, "classified")
    require_columns(classified, [tier, flag] + ([by] if by else []), fn,
                    "Pass the output of classify_anc, or name the tier and flag columns.")
    t = classified[tier]
    f = classified[flag]
    if not isinstance(t.dtype, pd.CategoricalDtype):
        raise NeutrostatsError(f"{fn}: column {tier!r} must be the Categorical made by classify_anc, found {t.dtype}")
    both = t.notna() & f.notna()
    if both.any():
        raise NeutrostatsError(
            f"{fn}: {int(both.sum())} rows have both a tier and a flag; a flag means 'no tier', "
            "so the table was changed after classify_anc. Classify again."
        )
    neither = t.isna() & f.isna()
    if neither.any():
        raise NeutrostatsError(
            f"{fn}: {int(neither.sum())} rows have neither a tier nor a flag, so the counts would "
            "not add up; classify the table again with classify_anc"
        )
    groups = [(None, classified)] if by is None else list(classified.groupby(by, sort=True, observed=True, dropna=False))
    frames = []
    for g, part in groups:
        total = len(part)
        tcounts = part[tier].value_counts(sort=False).reindex(t.cat.categories, fill_value=0)
        fcounts = part[flag].astype(object).dropna().value_counts()
        order = [x for x in ANC_FLAGS if x in fcounts.index] + [x for x in fcounts.index if x not in ANC_FLAGS]
        fcounts = fcounts.reindex(order)
        n_classified = int(tcounts.sum())
        df = pd.DataFrame(
            {
                "kind": ["tier"] * len(tcounts) + ["flag"] * len(fcounts),
                "level": [str(x) for x in tcounts.index] + [str(x) for x in fcounts.index],
                "n": np.concatenate([tcounts.to_numpy(), fcounts.to_numpy()]).astype(np.int64),
            }
        )
        df["percent"] = 100.0 * df["n"] / total if total else np.nan
        pc = 100.0 * df["n"] / n_classified if n_classified else np.nan
        df["percent_classified"] = np.where(df["kind"] == "tier", pc, np.nan)
        if by is not None:
            df.insert(0, "group", g)
        frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    return suppress_counts(
        table,
        min_cell_count=min_cell_count,
        derived=("percent", "percent_classified"),
        group=("group",) if by is not None else (),
    )
