"""Haemoglobin and platelet counts: units, values and the limits of anaemia and thrombocytopenia.

The other two lines of the blood count decide whether a neutropenia is
*isolated* or part of a bi- or pancytopenia, which carry different risks in
primary care (Palmblad et al. 2020, the CopDiff database [1]_). This module
reads the values, whatever the lab's unit, and applies the limits; the
per-person step at the index sample is ``neutrostats.cohort._cbc`` (through
:func:`~neutrostats.build_cohort`).

* **Haemoglobin** (LOINC 718-7 [2]_) in g/dL, g/L or mmol/L (Danish and Dutch
  labs report mmol/L), converted to g/dL.
* **Platelets** (LOINC 777-3 [2]_) in any count unit of
  :data:`~neutrostats.labs.units.KNOWN_COUNT_UNITS` (``10^9/L``, ``K/uL``,
  ``10^3/uL``, ``/uL``, ``cells/uL`` ...), converted to 10⁹/L.

Values are read as the ANC path reads them
(:func:`~neutrostats.labs.units.parse_lab_values`): ``"<10"`` is a
left-censored value, ``"clotted"`` no value; a unit that is not a unit of the
test is never guessed (flagged ``unknown_unit``).

Default limits (:class:`CbcLimits`): anaemia is haemoglobin below the WHO
limit for age and sex [3]_ (men from 15 years 13.0 g/dL, non-pregnant women
from 15 years 12.0 g/dL; children 12-14 years 12.0, 5-11 years 11.5, 6-59
months 11.0 g/dL; no limit under 6 months); thrombocytopenia is a platelet
count below 150 ×10⁹/L, the lower end of the usual adult reference interval
[4]_.

References
----------
.. [1] Palmblad J, Siersma V, Lind B, Bjerrum OW, Hasselbalch H, Andersen CL.
   Age-related prevalence and clinical significance of neutropenia - isolated
   or combined with other cytopenias: real world data from 373 820 primary
   care individuals. Am J Hematol 2020;95:521-528.
.. [2] Regenstrief Institute. LOINC 718-7 (Hemoglobin [Mass/volume] in
   Blood), 777-3 (Platelets [#/volume] in Blood by Automated count).
   https://loinc.org/718-7/, https://loinc.org/777-3/.
.. [3] World Health Organization. Haemoglobin concentrations for the
   diagnosis of anaemia and assessment of severity. Vitamin and Mineral
   Nutrition Information System. Geneva: WHO, 2011
   (WHO/NMH/NHD/MNM/11.1), Table 1.
.. [4] Gauer RL, Braun MM. Thrombocytopenia. Am Fam Physician
   2012;85:612-622 (normal platelet count 150,000-450,000 per µL).

Examples
--------
>>> from neutrostats.labs.cbc import read_cbc_values
>>> read_cbc_values(["8.1", "130", "13.4"], ["mmol/L", "g/L", "g/dL"], "hemoglobin")
       value censor flag
0  13.052745    NaN  NaN
1  13.000000    NaN  NaN
2  13.400000    NaN  NaN
>>> read_cbc_values(["<10", "150000", "2.5"], ["10^9/L", "/uL", "mmol/L"], "platelets")
   value censor          flag
0   10.0      <           NaN
1  150.0    NaN           NaN
2    NaN    NaN  unknown_unit
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.errors import NeutrostatsError
from neutrostats.labs.codes import lab_code_key
from neutrostats.labs.units import (
    AMB_NONE_READABLE,
    CENSOR_CODES,
    KNOWN_COUNT_UNITS,
    NO_FLAG,
    _as_series,
    _parse_arrays,
    ambiguous_rows,
    check_separators,
    unit_key,
)

__all__ = [
    "LOINC_HEMOGLOBIN",
    "LOINC_PLATELETS",
    "CBC_TESTS",
    "CBC_FLAGS",
    "CYTOPENIA_PATTERNS",
    "CYTOPENIA_DTYPE",
    "HB_G_DL_PER_MMOL_L",
    "HEMOGLOBIN_UNITS",
    "WHO_ANEMIA_LIMITS",
    "THROMBOCYTOPENIA_BELOW",
    "CbcLimits",
    "cbc_test_of",
    "read_cbc_values",
    "below_limit",
    "anemia_limits",
    "cytopenia_pattern",
]

#: Haemoglobin, mass per volume in blood.
LOINC_HEMOGLOBIN = frozenset({"718-7"})
#: Platelets, number per volume in blood (automated count).
LOINC_PLATELETS = frozenset({"777-3"})
#: The two tests, by name; their LOINC codes in :func:`cbc_test_of`.
CBC_TESTS = ("hemoglobin", "platelets")
_TEST_OF_LOINC: Mapping[str, int] = MappingProxyType({
    **{c: 0 for c in LOINC_HEMOGLOBIN}, **{c: 1 for c in LOINC_PLATELETS}})

#: Why a haemoglobin or platelet result has no value, in order of precedence.
CBC_FLAGS = ("missing_value", "non_numeric", "missing_unit", "unknown_unit", "ambiguous_number", "unit_suspect",
             "negative", "implausible")
_FLAG = {name: i for i, name in enumerate(CBC_FLAGS)}
_FLAG_DTYPE = pd.CategoricalDtype(list(CBC_FLAGS))
_CENSOR_DTYPE = pd.CategoricalDtype(list(CENSOR_CODES))

#: g/dL of haemoglobin per mmol/L. The mmol/L of clinical labs counts the
#: haemoglobin *monomer* (one haem, one globin chain), molar mass 16,114.5
#: g/mol (a quarter of the tetramer's 64,458 g/mol). So 1 mmol/L =
#: 16,114.5 g/mol x 0.001 mol/L = 16.1145 g/L = 1.61145 g/dL. The often
#: quoted 1.6114 (or 1.611) is this factor rounded.
HB_G_DL_PER_MMOL_L = 1.61145

#: Haemoglobin unit spellings (folded as :func:`~neutrostats.labs.units.unit_key`
#: folds them) -> factor to g/dL. ``g/L`` is grams per litre here (for a
#: platelet row the same letters are giga per litre: the test decides).
HEMOGLOBIN_UNITS: Mapping[str, float] = MappingProxyType({
    "g/dl": 1.0, "gm/dl": 1.0, "g/100ml": 1.0,
    "g/l": 0.1, "gm/l": 0.1,
    "mmol/l": HB_G_DL_PER_MMOL_L, "mmol(fe)/l": HB_G_DL_PER_MMOL_L,
})

#: Haemoglobin outside this range (g/dL, after conversion) is no haemoglobin
#: concentration of a living person: a value in another unit (130 g/L
#: labelled g/dL, 8.1 mmol/L labelled g/L), flagged ``implausible``.
HB_PLAUSIBLE_G_DL = (2.0, 30.0)
#: Platelets above this (×10⁹/L) are flagged ``implausible``.
PLATELETS_IMPLAUSIBLE_ABOVE = 5000.0
#: A platelet count in a per-µL unit (factor 1) above 0 and below this many
#: per µL (1 ×10⁹/L) is a 10⁹/L value with the wrong unit: ``unit_suspect``.
PLATELETS_SUSPECT_BELOW_PER_UL = 1000.0

#: WHO haemoglobin limits of anaemia (g/dL; anaemia below the limit) as
#: ``(age from, age to (excluded), sex, limit)`` in years, sex ``None`` for
#: both: WHO 2011, Table 1 (110, 115, 120, 120 and 130 g/L). The limit of
#: pregnant women (11.0 g/dL) is not applied: the cohort does not know
#: pregnancy.
WHO_ANEMIA_LIMITS: tuple[tuple[float, float, str | None, float], ...] = (
    (0.5, 5.0, None, 11.0),
    (5.0, 12.0, None, 11.5),
    (12.0, 15.0, None, 12.0),
    (15.0, float("inf"), "F", 12.0),
    (15.0, float("inf"), "M", 13.0),
)
#: Thrombocytopenia: platelets below this many ×10⁹/L.
THROMBOCYTOPENIA_BELOW = 150.0

#: The patterns of the index sample, mildest first.
CYTOPENIA_PATTERNS = ("no_neutropenia", "isolated", "bicytopenia", "pancytopenia")
#: Ordered Categorical dtype of the ``cytopenia`` column.
CYTOPENIA_DTYPE = pd.CategoricalDtype(list(CYTOPENIA_PATTERNS), ordered=True)


@dataclass(frozen=True)
class CbcLimits:
    """Limits of anaemia and thrombocytopenia, and how the persons' ``sex`` column is read.

    Parameters
    ----------
    anemia : sequence of (float, float, str or None, float), default :data:`WHO_ANEMIA_LIMITS`
        ``(age from, age to, sex, limit)``: haemoglobin below ``limit`` g/dL
        is anaemia at ages in ``[age from, age to)`` years (``inf`` for no
        upper end), for ``sex`` ``"M"``, ``"F"`` or ``None`` (both). Ages
        no band covers get no anaemia call.
    platelets_below : float, default 150
        Thrombocytopenia: platelets below this, ×10⁹/L.
    male, female : sequence of str
        Values of the ``sex`` column read as male and female (compared
        case- and space-insensitively). Any other value, or none, is an
        unknown sex: anaemia is then called only where the limits of both
        sexes agree.

    Raises
    ------
    NeutrostatsError
        For a band that is not four fields, an age range that is empty or
        negative, a sex other than ``"M"``/``"F"``/``None``, a limit that is
        not a positive number, or a value read as both sexes.

    Examples
    --------
    >>> CbcLimits().anemia[-1]
    (15.0, inf, 'M', 13.0)
    >>> CbcLimits(platelets_below=100).platelets_below
    100.0
    """

    anemia: Sequence[tuple[float, float, str | None, float]] = WHO_ANEMIA_LIMITS
    platelets_below: float = THROMBOCYTOPENIA_BELOW
    male: Sequence[str] = ("m", "male")
    female: Sequence[str] = ("f", "female")

    def __post_init__(self) -> None:
        fn = "CbcLimits"
        bands = []
        for band in self.anemia:
            try:
                lo, hi, sex, limit = band
                lo, hi, limit = float(lo), float(hi), float(limit)
            except (TypeError, ValueError):
                raise NeutrostatsError(
                    f"{fn}: each anaemia band must be (age from, age to, sex, limit in g/dL), found {band!r}; "
                    "e.g. (15, float('inf'), 'F', 12.0)") from None
            if not (0 <= lo < hi) or not np.isfinite(lo):
                raise NeutrostatsError(f"{fn}: an anaemia band's ages must satisfy 0 <= from < to, found {band!r}")
            if sex not in ("M", "F", None):
                raise NeutrostatsError(f"{fn}: an anaemia band's sex must be 'M', 'F' or None (both), found {sex!r}")
            if not (np.isfinite(limit) and limit > 0):
                raise NeutrostatsError(f"{fn}: an anaemia limit must be a positive number of g/dL, found {band!r}")
            bands.append((lo, hi, sex, limit))
        if not bands:
            raise NeutrostatsError(f"{fn}: expected at least one anaemia band, found none")
        try:
            plt = float(self.platelets_below)
        except (TypeError, ValueError):
            plt = float("nan")
        if not (np.isfinite(plt) and plt > 0):
            raise NeutrostatsError(
                f"{fn}: platelets_below must be a positive number of 10^9/L, found {self.platelets_below!r}")
        male = tuple(_sex_key(v) for v in self.male)
        female = tuple(_sex_key(v) for v in self.female)
        both = sorted(set(male) & set(female))
        if both:
            raise NeutrostatsError(f"{fn}: values {both} are listed as both male and female")
        object.__setattr__(self, "anemia", tuple(bands))
        object.__setattr__(self, "platelets_below", plt)
        object.__setattr__(self, "male", male)
        object.__setattr__(self, "female", female)

    def sex_codes(self, sex: Any) -> np.ndarray:
        """0 male, 1 female, -1 unknown, per value of a ``sex`` column.

        Examples
        --------
        >>> CbcLimits().sex_codes(["M", " f ", "Female", None, "U"]).tolist()
        [0, 1, 1, -1, -1]
        """
        s = _as_series(sex, "CbcLimits.sex_codes")
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        keys = [_sex_key(u) for u in uniques]
        lut = np.array([0 if k in self.male else 1 if k in self.female else -1 for k in keys] + [-1], dtype=np.int8)
        return lut[codes]

    def to_dict(self) -> dict[str, Any]:
        """The limits as JSON types (``inf`` written as None)."""
        return {
            "anemia_g_dl": [[lo, None if np.isinf(hi) else hi, sex, limit] for lo, hi, sex, limit in self.anemia],
            "platelets_below_10e9_l": self.platelets_below,
            "male": list(self.male), "female": list(self.female),
        }


def _sex_key(v: Any) -> str:
    return str(v).strip().lower()


def cbc_test_of(codes: Any, code_map: Mapping[str, str] | None = None) -> np.ndarray:
    """Which CBC test each lab code is: 0 haemoglobin, 1 platelets, -1 neither.

    Parameters
    ----------
    codes : array-like
        Lab codes as written (compared by :func:`~neutrostats.labs.codes.lab_code_key`).
    code_map : mapping, optional
        Folded local code -> LOINC code (e.g. ``{"HGB": "718-7"}``).

    Returns
    -------
    numpy.ndarray of int8

    Examples
    --------
    >>> cbc_test_of(["718-7", " 777-3", "751-8", "HB"], {"HB": "718-7"}).tolist()
    [0, 1, -1, 0]
    """
    s = _as_series(codes, "cbc_test_of")
    fcodes, uniques = pd.factorize(s, use_na_sentinel=True)
    keys = [lab_code_key(u) for u in uniques]
    if code_map:
        keys = [code_map.get(k, k) for k in keys]
    lut = np.array([_TEST_OF_LOINC.get(k, -1) for k in keys] + [-1], dtype=np.int8)
    return lut[fcodes]


def _unit_factors(units: pd.Series, test: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: factor to the test's unit (g/dL, 10⁹/L), the count factor to cells/µL (platelets; NaN
    otherwise), and the unit state (0 known, 2 missing, 3 not a unit of the test)."""
    codes, uniques = pd.factorize(units, use_na_sentinel=True)
    keys = [unit_key(u) for u in uniques] + [None]
    hb = np.array([HEMOGLOBIN_UNITS.get(k, np.nan) if k else np.nan for k in keys])
    count = np.array([KNOWN_COUNT_UNITS.get(k, np.nan) if k else np.nan for k in keys])
    missing = np.array([k is None for k in keys])
    is_hb = test == 0
    factor = np.where(is_hb, hb[codes], count[codes] / 1000.0)
    count_factor = np.where(is_hb, np.nan, count[codes])
    state = np.where(missing[codes], 2, np.where(np.isnan(factor), 3, 0)).astype(np.int8)
    return factor, count_factor, state


def unknown_units(units: Any, test: Any) -> dict[str, dict[str, int]]:
    """Unit spellings that are not units of their test, with row counts, per test name (for messages)."""
    u = _as_series(units, "unknown_units").reset_index(drop=True)
    t = np.asarray(test, dtype=np.int8)
    _, _, state = _unit_factors(u, t)
    out: dict[str, dict[str, int]] = {}
    for i, name in enumerate(CBC_TESTS):
        bad = (state == 3) & (t == i)
        if bad.any():
            out[name] = {str(k): int(n) for k, n in u[bad].value_counts(sort=True).items()}
    return out


def unknown_unit_message(function: str, column: str, unknown: Mapping[str, Mapping[str, int]]) -> str:
    """The error for haemoglobin or platelet rows whose unit is not a unit of the test."""
    parts = []
    for name, counts in unknown.items():
        listed = ", ".join(f"{u!r} ({n} rows)" for u, n in counts.items())
        parts.append(f"{name}: {listed}")
    return (
        f"{function}: column {column!r} has haemoglobin (LOINC 718-7) or platelet (777-3) rows whose unit is not a "
        f"unit of the test: {'; '.join(parts)}. Haemoglobin units: g/dL, g/L, mmol/L; platelet units: count units "
        "such as 10^9/L, K/uL, 10^3/uL, /uL, cells/uL. Fix or map these units, or pass on_unknown_unit='flag' to "
        "count the rows (their values are then not used)."
    )


def read_cbc_values(values: Any, units: Any, test: Any, *, decimal: str = ".",
                    thousands: str | None = None) -> pd.DataFrame:
    """Read haemoglobin (g/dL) or platelet (×10⁹/L) results from lab strings and units.

    Parameters
    ----------
    values : array-like
        Results: numbers or lab strings (``"13.2"``, ``"<10"``, ``"clotted"``).
    units : str or array-like of str
        Unit of each value (one for all, or one per value). Haemoglobin: a
        spelling of :data:`HEMOGLOBIN_UNITS` (g/dL, g/L, mmol/L);
        platelets: a count unit of
        :data:`~neutrostats.labs.units.KNOWN_COUNT_UNITS`.
    test : {"hemoglobin", "platelets"} or array-like of int
        The test of all rows, or per row 0 (haemoglobin) / 1 (platelets).
    decimal, thousands : str
        Separators of string values, as in
        :func:`~neutrostats.labs.units.parse_lab_values`. A grouped number
        (``"150.000"``) in a per-µL platelet unit is refused
        (``ambiguous_number``) unless ``thousands`` is given, as for the ANC.

    Returns
    -------
    pandas.DataFrame
        Same length and index as ``values``:

        ``value`` (float)
            g/dL for haemoglobin (mmol/L x :data:`HB_G_DL_PER_MMOL_L`, g/L /
            10), ×10⁹/L for platelets (per µL / 1000); for a censored value
            its bound; NaN where flagged. Converted values are rounded to
            1e-6 so that binary floating point cannot move one across a limit.
        ``censor`` (Categorical of ``<``, ``<=``, ``>``, ``>=``)
            Direction of a censored result; NA if exact.
        ``flag`` (Categorical of :data:`CBC_FLAGS`)
            Why there is no value: ``missing_value``, ``non_numeric``,
            ``missing_unit``, ``unknown_unit`` (not a unit of the test),
            ``ambiguous_number``, ``unit_suspect`` (platelets above 0 and
            below 1,000 in a per-µL unit: a 10⁹/L value), ``negative``,
            ``implausible`` (haemoglobin outside 2-30 g/dL, platelets above
            5,000 ×10⁹/L); NA when read.

    Raises
    ------
    NeutrostatsError
        For a test name other than ``"hemoglobin"``/``"platelets"``, columns
        of different lengths, or invalid separators.

    See Also
    --------
    neutrostats.labs.units.parse_lab_values : the reading of the strings.
    below_limit : anaemia and thrombocytopenia from these values.

    Examples
    --------
    >>> read_cbc_values(["7.5", "75", "9.0"], "mmol/L", "hemoglobin")["value"].tolist()
    [12.085875, nan, 14.50305]
    >>> read_cbc_values(["150.000", "0.25"], "/uL", "platelets")["flag"].tolist()
    ['ambiguous_number', 'unit_suspect']
    """
    fn = "read_cbc_values"
    check_separators(decimal, thousands, fn)
    v = _as_series(values, fn)
    n = len(v)
    if isinstance(test, str):
        if test not in CBC_TESTS:
            raise NeutrostatsError(f"{fn}: test must be 'hemoglobin' or 'platelets', found {test!r}")
        t = np.full(n, CBC_TESTS.index(test), dtype=np.int8)
    else:
        t = np.asarray(test, dtype=np.int8)
    u = pd.Series(np.full(n, units, dtype=object)) if isinstance(units, str) else _as_series(units, fn)
    if not (len(u) == len(t) == n):
        raise NeutrostatsError(f"{fn}: expected values, units and tests of equal length, found {n}, {len(u)} "
                               f"and {len(t)}")
    num, cens, flag, amb = _parse_arrays(v, decimal, thousands)
    num, cens, flag = num.copy(), cens.copy(), flag.copy()
    factor, count_factor, state = _unit_factors(u.reset_index(drop=True), t)
    # Unit reasons rank after the value's own (missing, non-numeric), as in classify_anc.
    np.minimum(flag, np.where(state == 2, _FLAG["missing_unit"], np.where(state == 3, _FLAG["unknown_unit"],
                                                                           NO_FLAG)).astype(np.uint8), out=flag)
    # Haemoglobin is never on a per-µL scale: a grouped number is read as a decimal when ``decimal``
    # reads it, refused when it does not (the scale of a 10^9/L count).
    scale = np.where(t == 0, np.where(state == 0, 1000.0, np.nan), count_factor)
    if amb is not None:
        refused = ambiguous_rows(np.where(state == 0, amb, 0), scale)
        refused |= (amb == AMB_NONE_READABLE) & (state == 0) & (flag == 1)
        flag[refused] = _FLAG["ambiguous_number"]
    value = num * factor
    scaled = factor != 1.0
    value[scaled] = np.round(value[scaled], 6)
    ok = flag == NO_FLAG
    suspect = ok & (t == 1) & (count_factor == 1.0) & (num > 0) & (num < PLATELETS_SUSPECT_BELOW_PER_UL)
    negative = ok & (value < 0)
    lo, hi = HB_PLAUSIBLE_G_DL
    implausible = ok & ~negative & (((t == 0) & ((value < lo) | (value > hi)))
                                    | ((t == 1) & (value > PLATELETS_IMPLAUSIBLE_ABOVE)))
    for mask, name in ((implausible, "implausible"), (negative, "negative"), (suspect, "unit_suspect")):
        flag[mask] = np.minimum(flag[mask], _FLAG[name])
    bad = flag != NO_FLAG
    value[bad] = np.nan
    cens[bad] = -1
    return pd.DataFrame({
        "value": value,
        "censor": pd.Categorical.from_codes(cens, dtype=_CENSOR_DTYPE),
        "flag": pd.Categorical.from_codes(np.where(bad, flag, -1).astype(np.int8), dtype=_FLAG_DTYPE),
    }, index=v.index)


def below_limit(value: Any, censor: Any, low: Any, high: Any) -> pd.arrays.BooleanArray:
    """Is a value below its limit? True, False, or NA where the value or the limit leaves it open.

    ``low`` and ``high`` bound the limits that may apply (equal when one
    does; NaN when none does): the value is below when it is below every
    one of them, not below when it is at or above every one.

    Parameters
    ----------
    value : array-like of float
        Values; for a censored value its bound.
    censor : array-like of int
        Censoring code per value: -1 exact, 0 ``<``, 1 ``<=``, 2 ``>``, 3 ``>=``
        (the codes of :data:`~neutrostats.labs.units.CENSOR_CODES`), or the
        Categorical ``censor`` column of :func:`read_cbc_values`.
    low, high : float or array-like of float
        The least and the greatest limit that may apply.

    Returns
    -------
    pandas.arrays.BooleanArray

    Examples
    --------
    Haemoglobin 12.5 g/dL of a person of unknown sex (limits 12 and 13) is
    undecided; 11.0 is anaemia under both; ``"<10"`` platelets are below 150:

    >>> below_limit([12.5, 11.0, 13.0], -1, 12.0, 13.0).tolist()
    [<NA>, True, False]
    >>> below_limit([10.0, 200.0, 100.0], [0, 0, 2], 150.0, 150.0).tolist()
    [True, <NA>, <NA>]
    """
    v = np.asarray(value, dtype=float)
    if isinstance(censor, (pd.Series, pd.Categorical)) and isinstance(getattr(censor, "dtype", None),
                                                                     pd.CategoricalDtype):
        c = np.asarray(pd.Categorical(censor).codes, dtype=np.int8)
    else:
        c = np.broadcast_to(np.asarray(censor, dtype=np.int8), v.shape)
    lo = np.broadcast_to(np.asarray(low, dtype=float), v.shape)
    hi = np.broadcast_to(np.asarray(high, dtype=float), v.shape)
    with np.errstate(invalid="ignore"):
        # "<b": the value lies in [0, b), below every limit when b <= low; "<=b" includes b itself.
        below = np.where(c == 0, v <= lo, np.where(c == 1, v < lo, np.where(c >= 2, False, v < lo)))
        # ">b" and ">=b" reach infinity: never below; at or above every limit when b >= high.
        not_below = np.where(c <= 1, (c == -1) & (v >= hi), v >= hi)
    known = np.isfinite(v) & np.isfinite(lo) & np.isfinite(hi) & (below | not_below)
    return pd.arrays.BooleanArray(np.asarray(below & known, dtype=bool), ~known)


def anemia_limits(age: Any, sex_codes: Any, limits: CbcLimits | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The least and greatest anaemia limit (g/dL) that may apply to each person; NaN where none does.

    An unknown age (NaN) may be any band's, an unknown sex (code -1) either
    sex's.

    Examples
    --------
    >>> lo, hi = anemia_limits([40.0, 40.0, 8.0, float("nan"), 0.2], [0, -1, 1, 1, 0])
    >>> lo.tolist(), hi.tolist()
    ([13.0, 12.0, 11.5, 11.0, nan], [13.0, 13.0, 11.5, 12.0, nan])
    """
    lim = CbcLimits() if limits is None else limits
    a = np.asarray(age, dtype=float)
    s = np.asarray(sex_codes, dtype=np.int8)
    lo = np.full(a.shape, np.inf)
    hi = np.full(a.shape, -np.inf)
    unknown_age = np.isnan(a)
    for band_lo, band_hi, sex, limit in lim.anemia:
        applies = unknown_age | ((a >= band_lo) & (a < band_hi))
        if sex is not None:
            applies &= (s == -1) | (s == (0 if sex == "M" else 1))
        lo = np.where(applies, np.minimum(lo, limit), lo)
        hi = np.where(applies, np.maximum(hi, limit), hi)
    none = np.isinf(lo)
    lo[none] = np.nan
    hi[none] = np.nan
    return lo, hi


def cytopenia_pattern(neutropenic: Any, anemia: Any, thrombocytopenia: Any) -> pd.Categorical:
    """The pattern of an index sample: no neutropenia, isolated neutropenia, bi- or pancytopenia.

    Parameters
    ----------
    neutropenic : array-like of bool
        The index ANC below normal (the tier is not the scheme's normal tier).
    anemia, thrombocytopenia : array-like of bool or NA
        Haemoglobin and platelets below their limits; NA when unknown.

    Returns
    -------
    pandas.Categorical
        Ordered, :data:`CYTOPENIA_PATTERNS`: ``no_neutropenia`` whenever the
        ANC is normal (whatever the other lines); for a neutropenic sample
        ``isolated`` (neither other line low), ``bicytopenia`` (one),
        ``pancytopenia`` (both); missing when either other line is unknown,
        as it could change the pattern.

    Examples
    --------
    >>> import pandas as pd
    >>> cytopenia_pattern([False, True, True, True, True],
    ...                   pd.array([None, False, True, True, False], dtype="boolean"),
    ...                   pd.array([None, False, False, True, None], dtype="boolean")).tolist()
    ['no_neutropenia', 'isolated', 'bicytopenia', 'pancytopenia', nan]
    """
    neut = np.asarray(neutropenic, dtype=bool)
    a = pd.array(anemia, dtype="boolean")
    t = pd.array(thrombocytopenia, dtype="boolean")
    known = ~(np.asarray(a.isna()) | np.asarray(t.isna()))
    n_low = np.asarray(a.fillna(False), dtype=int) + np.asarray(t.fillna(False), dtype=int)
    codes = np.where(~neut, 0, np.where(known, 1 + n_low, -1)).astype(np.int8)
    return pd.Categorical.from_codes(codes, dtype=CYTOPENIA_DTYPE)
