"""Count units, lab-value strings and the derivation of the ANC.

Three jobs, each vectorised over whole columns:

* :func:`normalize_units` converts neutrophil (or leukocyte) counts to cells/µL
  from every unit spelling in common use, UCUM codes included [1]_;
* :func:`parse_lab_values` turns lab strings such as ``"<0.1"``, ``"1.5"`` or
  ``"see comment"`` into a number, a censoring direction and a flag;
* :func:`derive_anc` computes ANC = WBC x (neutrophil % + band %) / 100.

Unit spellings are compared case- and white-space-insensitively, with ``u``,
``µ`` (micro sign) and ``μ`` (Greek mu) alike, so ``"x10^9/L"``, ``"10*9/l"``
and ``"G/L"`` all mean thousands per microlitre.

References
----------
.. [1] Schadow G, McDonald CJ. The Unified Code for Units of Measure (UCUM).
   Regenstrief Institute. https://ucum.org (``10*3/uL``, ``10*9/L``, ``/uL``).

Examples
--------
>>> from neutrostats.labs.units import normalize_units, parse_lab_values
>>> normalize_units([1.5, 1500.0, 0.8], ["10^9/L", "cells/µL", "K/uL"]).tolist()
[1500.0, 1500.0, 800.0]
>>> parse_lab_values(["<0.1", "2.3", "clotted"])
   value_num censor   value_flag
0        0.1      <          NaN
1        2.3    NaN          NaN
2        NaN    NaN  non_numeric
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.errors import NeutrostatsError

__all__ = [
    "CELLS_PER_UL",
    "THOUSANDS_PER_UL",
    "KNOWN_COUNT_UNITS",
    "PERCENT_UNITS",
    "CENSOR_CODES",
    "VALUE_FLAGS",
    "unit_key",
    "unit_factors",
    "normalize_units",
    "parse_lab_values",
    "derive_anc",
]

#: Canonical names of the two count scales neutrostats knows.
CELLS_PER_UL = "cells/uL"
THOUSANDS_PER_UL = "10^9/L"

# Spellings after ``unit_key`` folding (lower case, no white space, micro -> u,
# superscripts -> ^n, leading "x" of "x10^9/L" removed).  Values: the factor
# that turns a count in that unit into cells/uL.
_PER_UL = (
    "cells/ul", "cell/ul", "/ul", "1/ul", "#/ul",
    "cells/mm3", "cell/mm3", "/mm3", "1/mm3",
    "cells/cumm", "/cumm",
)
_THOUSANDS = (
    "10^3/ul", "10*3/ul", "10e3/ul", "e3/ul", "k/ul", "thou/ul", "thous/ul",
    "10^3/mm3", "10*3/mm3", "k/mm3", "thou/mm3",
    "10^9/l", "10*9/l", "10e9/l", "e9/l", "g/l", "giga/l", "gpt/l",
    "/nl", "cells/nl", "1/nl",
)
_FACTORS: dict[str, float] = {
    **{k: 1.0 for k in _PER_UL},
    **{k: 1000.0 for k in _THOUSANDS},
}

#: Every count-unit spelling accepted (in folded form), with its factor to
#: cells/µL (read-only).
KNOWN_COUNT_UNITS: Mapping[str, float] = MappingProxyType(dict(_FACTORS))

#: Spellings (folded) of a percentage, the unit of a differential count.
PERCENT_UNITS = frozenset({"%", "percent", "pct", "/100wbc", "%wbc", "/100leukocytes"})

#: Censoring operators kept in the ``censor`` column: the value lies below
#: (``<``, ``<=``) or above (``>``, ``>=``) the reported bound.
CENSOR_CODES = ("<", "<=", ">", ">=")

#: Flags :func:`parse_lab_values` can set (``ambiguous_number`` only when
#: ``unit=`` is given).
VALUE_FLAGS = ("missing_value", "non_numeric", "ambiguous_number")

_SUPERSCRIPTS = str.maketrans({"³": "3", "⁹": "9", "⁶": "6", "µ": "u", "μ": "u", "×": "x"})
_SPACE = re.compile(r"\s+")


def unit_key(unit: Any) -> str | None:
    """Fold a unit spelling to the form used for look-up.

    Parameters
    ----------
    unit : object
        A unit as written in a lab table, e.g. ``" x10^9 / L"``.

    Returns
    -------
    str or None
        Lower case, white space removed, ``µ``/``μ`` replaced by ``u``,
        ``10³``/``10⁹`` written ``10^3``/``10^9`` and a leading ``x`` before
        ``10`` dropped. ``None`` for a missing or empty unit.

    Examples
    --------
    >>> unit_key(" x10⁹ / L ")
    '10^9/l'
    >>> unit_key("cells/µL")
    'cells/ul'
    >>> unit_key("") is None
    True
    """
    if unit is None or (isinstance(unit, float) and np.isnan(unit)) or unit is pd.NA:
        return None
    text = _SPACE.sub("", str(unit)).replace("10³", "10^3").replace("10⁹", "10^9")
    text = text.translate(_SUPERSCRIPTS).lower()
    if text.startswith("x10") or text.startswith("*10"):
        text = text[1:]
    return text or None


def _as_series(values: Any, name: str) -> pd.Series:
    if isinstance(values, pd.Series):
        return values
    if np.ndim(values) == 0:
        raise NeutrostatsError(
            f"{name}: expected a column (list, array or Series), found a scalar {values!r}; "
            "wrap a single value in a list"
        )
    return pd.Series(values)


def unit_factors(units: Any) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Look up the factor to cells/µL of every unit in a column.

    Parameters
    ----------
    units : array-like of str
        Unit spellings, one per row (pandas Categorical columns are fastest:
        only their categories are looked up).

    Returns
    -------
    factors : numpy.ndarray of float
        Factor per row; NaN where the unit is missing or unknown.
    missing : numpy.ndarray of bool
        True where the unit is missing (NaN, None or empty).
    unknown : dict
        Each unknown spelling (as written) with its row count.

    Examples
    --------
    >>> f, missing, unknown = unit_factors(["K/uL", "/mm3", None, "mmol/L"])
    >>> f.tolist()[:2], missing.tolist(), unknown
    ([1000.0, 1.0], [False, False, True, False], {'mmol/L': 1})
    """
    s = _as_series(units, "unit_factors")
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        uniques = s.cat.categories
    else:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
    keys = [unit_key(u) for u in uniques]
    lut = np.array([_FACTORS.get(k, np.nan) if k else np.nan for k in keys] + [np.nan])
    # The extra NaN at the end is what code -1 (missing) picks.
    factors = lut[codes]
    key_missing = np.array([k is None for k in keys] + [True])
    missing = key_missing[codes]
    unknown_mask = np.isnan(factors) & ~missing
    unknown: dict[str, int] = {}
    if unknown_mask.any():
        counts = np.bincount(codes[unknown_mask], minlength=len(uniques))
        unknown = {str(uniques[i]): int(c) for i, c in enumerate(counts) if c}
    return factors, missing, unknown


def unknown_unit_message(function: str, column: str, unknown: dict[str, int]) -> str:
    listed = ", ".join(f"{u!r} ({n} rows)" for u, n in sorted(unknown.items(), key=lambda kv: -kv[1]))
    n = sum(unknown.values())
    return (
        f"{function}: column {column!r} has {n} rows with units that are not count units: "
        f"{listed}. Known count units (case, spaces and µ/μ/u ignored): "
        f"{', '.join(sorted(KNOWN_COUNT_UNITS))}. Fix or map these units before classifying, "
        "or pass on_unknown_unit='flag' to keep the rows with anc_flag='unknown_unit'."
    )


def normalize_units(values: Any, units: Any) -> np.ndarray | pd.Series:
    """Convert counts to cells/µL.

    Parameters
    ----------
    values : array-like of float
        Numeric counts (parse strings first with :func:`parse_lab_values`).
    units : str or array-like of str
        One unit for all values, or one per value. Any spelling in
        :data:`KNOWN_COUNT_UNITS`: cells/µL (``cells/uL``, ``/mm3`` ...) or
        thousands per µL = 10⁹/L (``K/uL``, ``x10^9/L``, ``G/L`` ...).

    Returns
    -------
    numpy.ndarray or pandas.Series
        Counts in cells/µL (a Series with the input's index when ``values`` is
        a Series). Values converted from 10⁹/L are rounded to 1e-6 cells/µL so
        that binary floating point cannot move a value across a cut point
        (``1.8 x 1000`` is exactly 1800).

    Raises
    ------
    NeutrostatsError
        If any unit is missing or not a count unit; the message lists each
        offending unit with its row count and the known units.

    See Also
    --------
    parse_lab_values : the number, censoring and flag of a lab string.
    unit_factors : the factor to cells/µL of each spelling.
    neutrostats.classify_anc : classifies a lab table with these rules.

    Examples
    --------
    >>> normalize_units([0.5, 1.8], "x10^9/L").tolist()
    [500.0, 1800.0]
    >>> normalize_units([1.0], ["mmol/L"])
    Traceback (most recent call last):
    ...
    neutrostats.errors.NeutrostatsError: normalize_units: column 'units' has 1 rows with units ...
    """
    arr = np.asarray(values, dtype=float)
    factors = _count_factors(units, arr.shape, "normalize_units", "units")
    out = _scale(arr, factors)
    if isinstance(values, pd.Series):
        return pd.Series(out, index=values.index, name=values.name)
    return out


def _count_factors(units: Any, shape: tuple[int, ...], function: str, column: str) -> np.ndarray:
    """Factor to cells/µL per value; raises on a missing or non-count unit."""
    if isinstance(units, str):
        key = unit_key(units)
        if key not in _FACTORS:
            raise NeutrostatsError(unknown_unit_message(function, column, {units: int(np.prod(shape))}))
        return np.full(shape, _FACTORS[key])
    factors, missing, unknown = unit_factors(units)
    if missing.any():
        unknown = {"<missing>": int(missing.sum()), **unknown}
    if unknown:
        raise NeutrostatsError(unknown_unit_message(function, column, unknown))
    if factors.shape != shape:
        raise NeutrostatsError(
            f"{function}: expected one unit per value, found {factors.size} units "
            f"for {int(np.prod(shape))} values; pass a single unit string or a column of equal length"
        )
    return factors


def _scale(arr: np.ndarray, factors: np.ndarray) -> np.ndarray:
    out = arr * factors
    if np.any(factors != 1.0):
        # Rounding only where a factor was applied keeps cells/uL input
        # untouched and removes representation error from 10^9/L input.
        scaled = factors != 1.0
        out[scaled] = np.round(out[scaled], 6)
    return out


# A number with an optional comparison in front: "<0.1", "< 0.10", "<=5",
# "≤0.5", ">100", "1e3", ".5".  Anything else is not numeric.
_NUMBER = re.compile(
    r"^\s*(?P<op><=|>=|=<|=>|<|>|≤|≥)?\s*(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*$"
)
_OPS = {"<": "<", "<=": "<=", "=<": "<=", "≤": "<=", ">": ">", ">=": ">=", "=>": ">=", "≥": ">="}


def parse_lab_values(
    values: Any, *, decimal: str = ".", thousands: str | None = None, unit: Any = None,
) -> pd.DataFrame:
    """Parse lab results that may be strings into number, censoring and flag.

    Parameters
    ----------
    values : array-like
        Lab results: numbers, or strings as labs export them (``"1.5"``,
        ``"<0.1"``, ``"< 0.10"``, ``">100"``, ``"≤0.5"``, ``"see comment"``,
        ``""``).
    decimal : {".", ","}, default "."
        Decimal separator of the strings. With ``"."`` a comma is never a
        decimal point (``"1,5"`` is ``non_numeric``); with ``","``
        (``"1,5"``) a ``"."`` is read as one too (``"0.5"``), except in the
        grouped form ``d{1,3}(.ddd)+`` (``"1.200"``, see ``unit``).
    thousands : {",", "."}, optional
        Thousands separator of the strings (must differ from ``decimal``).
        Only well-formed groups of three digits are read: with
        ``thousands=","`` ``"1,200"`` and ``"1,234,567.5"`` are numbers,
        ``"1,20"`` and ``",200"`` are ``non_numeric``. Without it a
        thousands separator is never read as one (see ``unit``).
    unit : str or array-like of str, optional
        The unit of each value (one for all, or one per value). When given
        and ``thousands`` is not, a value whose reading depends on the
        separator is read only where its unit leaves one plausible reading,
        and otherwise flagged ``ambiguous_number``; without ``unit`` every
        value is read with ``decimal`` alone. The refused patterns (the
        number part, after a ``<``/``>``):

        * ``d{1,3}([.,]ddd)+`` with a first group not ``0`` (``"1,200"``,
          ``"1.200"``, ``"12.500"``, ``"1,234,567"``) in a cells/µL-scale
          unit (factor 1: ``cells/uL``, ``/mm3`` ...): 1.2 cells/µL is not a
          plausible count, 1200 is a guess;
        * in a 10⁹/L-scale unit (``K/uL``, ``10^9/L`` ...) such a value is a
          plain decimal when ``decimal`` reads it (``"1.200"`` is 1.2 with
          ``decimal="."``, ``"1,200"`` is 1.2 with ``decimal=","``); one
          that ``decimal`` cannot read (``"1,200"`` or ``"1.234.567"`` with
          ``decimal="."``, or ``"1,200.5"``) is refused too, as 1200 x 10⁹/L
          is no count either;
        * percentages and other units are never ambiguous this way:
          ``"45.000"`` % is 45.

    Returns
    -------
    pandas.DataFrame
        Same index and length as ``values``, columns:

        ``value_num`` (float)
            The number, or for a censored result its bound; NaN if no number.
        ``censor`` (Categorical of ``<``, ``<=``, ``>``, ``>=``)
            Direction (and inclusiveness) of a censored result; NA if exact.
            ``≤`` and ``=<`` are written ``<=``.
        ``value_flag`` (Categorical)
            ``missing_value`` (NaN, None, empty or blank), ``non_numeric``
            (any other text, e.g. ``"clotted"``) or ``ambiguous_number`` (see
            ``unit``; ``value_num`` is then NaN); NA when a number was read.

    Raises
    ------
    NeutrostatsError
        For a separator other than ``","``/``"."``, ``thousands`` equal to
        ``decimal``, or a ``unit`` that is not a count unit or percentage.

    See Also
    --------
    normalize_units : counts to cells/µL.
    derive_anc : the ANC from WBC and differential.

    Examples
    --------
    >>> parse_lab_values(["≤0.5", " > 100 ", "", "1,5"], decimal=",")
       value_num censor     value_flag
    0        0.5     <=            NaN
    1      100.0      >            NaN
    2        NaN    NaN  missing_value
    3        1.5    NaN            NaN
    >>> parse_lab_values(["1,200", "1,20"], thousands=",")["value_num"].tolist()
    [1200.0, nan]
    >>> parse_lab_values(["1.200", "1.200", "45.000"], unit=["cells/uL", "K/uL", "%"])
       value_num censor        value_flag
    0        NaN    NaN  ambiguous_number
    1        1.2    NaN               NaN
    2       45.0    NaN               NaN
    """
    fn = "parse_lab_values"
    check_separators(decimal, thousands, fn)
    s = _as_series(values, fn)
    num, cens, flag, amb = _parse_arrays(s, decimal, thousands)
    if unit is not None and amb is not None:
        if isinstance(unit, str):
            key = unit_key(unit)
            scale = np.full(len(s), _FACTORS.get(key, np.nan) if key else np.nan)
        else:
            scale, _, _ = unit_factors(_as_series(unit, fn))
            if scale.shape != num.shape:
                raise NeutrostatsError(
                    f"{fn}: expected one unit per value, found {scale.size} units for {num.size} values"
                )
        refused = ambiguous_rows(amb, scale)
        flag[refused] = AMBIGUOUS_FLAG
        num[refused] = np.nan
        cens[refused] = -1
    return pd.DataFrame(
        {
            "value_num": num,
            "censor": pd.Categorical.from_codes(cens, dtype=pd.CategoricalDtype(list(CENSOR_CODES))),
            "value_flag": pd.Categorical.from_codes(
                np.where(flag == NO_FLAG, -1, flag).astype(np.int8), dtype=pd.CategoricalDtype(list(VALUE_FLAGS))
            ),
        },
        index=s.index,
    )


#: Code meaning "no flag" in the uint8 flag arrays used internally: flags are
#: combined with ``np.minimum``, so the reason with the lowest code wins.
NO_FLAG = 255
#: Code of ``ambiguous_number`` in :data:`VALUE_FLAGS`.
AMBIGUOUS_FLAG = 2
#: Ambiguity codes of a parsed value (``_parse_arrays``): 0 none; 1 grouped
#: like ``1.200`` and read by ``decimal`` (refused in cells/µL units only);
#: 2 grouped but not readable by ``decimal`` (``1,200`` with ``decimal="."``;
#: refused in every count unit, ``non_numeric`` elsewhere).
AMB_DECIMAL, AMB_NONE_READABLE = 1, 2

_SEPARATORS = (".", ",")
# Digit groups of a thousands separator; the first group is not 0 (so that
# "0.450" is a decimal, never 450).
_GROUPED = re.compile(r"^[+-]?[1-9]\d{0,2}(?:[.,]\d{3})+$")


def check_separators(decimal: str, thousands: str | None, fn: str) -> None:
    if decimal not in _SEPARATORS:
        raise NeutrostatsError(f"{fn}: decimal must be '.' or ',', found {decimal!r}")
    if thousands is not None and thousands not in _SEPARATORS:
        raise NeutrostatsError(f"{fn}: thousands must be ',', '.' or None, found {thousands!r}")
    if thousands is not None and thousands == decimal:
        raise NeutrostatsError(
            f"{fn}: thousands and decimal separators must differ, found both {decimal!r}; "
            "pass thousands=',' with decimal='.', or thousands='.' with decimal=','"
        )


def ambiguous_rows(amb: np.ndarray | None, scale: np.ndarray) -> np.ndarray:
    """Rows refused as ``ambiguous_number``: ambiguity code by factor to cells/µL (NaN: not a count unit)."""
    if amb is None:
        return np.zeros(scale.shape, dtype=bool)
    return ((amb == AMB_NONE_READABLE) & ~np.isnan(scale)) | ((amb == AMB_DECIMAL) & (scale == 1.0))


def _parse_arrays(
    s: pd.Series, decimal: str, thousands: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Arrays behind :func:`parse_lab_values`: number, censor code (-1 none), flag (NO_FLAG none), ambiguity.

    The ambiguity array (``AMB_*`` codes) is None when no value is ambiguous.
    """
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        num = s.to_numpy(dtype=float, na_value=np.nan)
        flag = np.full(num.shape, NO_FLAG, dtype=np.uint8)
        bad = ~np.isfinite(num)
        if bad.any():
            # NaN is a missing result; an infinite one is no count at all.
            flag[bad] = np.where(np.isnan(num[bad]), 0, 1)
            num = np.where(bad, np.nan, num)
        return num, np.full(len(s), -1, dtype=np.int8), flag, None
    # Lab strings repeat heavily (a few thousand distinct results in millions
    # of rows), so parse each distinct value once and broadcast by code.
    try:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
    except TypeError:
        # An unhashable cell (a list) is read as its text, as a SQL engine casts it: not a number.
        s = s.astype(object).map(lambda v: v if isinstance(v, Hashable) else str(v))
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
    u_num, u_cens, u_flag, u_amb = parse_value_uniques(uniques, decimal, thousands)
    u_num = np.append(u_num, np.nan)
    u_cens = np.append(u_cens, np.int8(-1))
    u_flag = np.append(u_flag, np.uint8(0))
    amb = None
    if u_amb.any():
        amb = np.append(u_amb, np.uint8(0))[codes]
    return u_num[codes], u_cens[codes], u_flag[codes], amb


def parse_value_uniques(
    uniques: Iterable[Any], decimal: str, thousands: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parse distinct values: number, censor code (-1 none), flag code (NO_FLAG none), ambiguity code."""
    uniques = list(uniques)
    n = len(uniques)
    num = np.full(n, np.nan)
    cens = np.full(n, -1, dtype=np.int8)
    flag = np.full(n, NO_FLAG, dtype=np.uint8)
    amb = np.zeros(n, dtype=np.uint8)
    op_code = {op: i for i, op in enumerate(CENSOR_CODES)}
    other = "," if decimal == "." else "."
    if thousands is not None:
        t, d = re.escape(thousands), re.escape(decimal)
        well_formed = re.compile(rf"^[+-]?[1-9]\d{{0,2}}(?:{t}\d{{3}})+(?:{d}\d*)?$")
    else:
        # Grouped with the separator that is not the decimal one, then a
        # decimal part: "1,200.5" with decimal "." (refused, never guessed).
        o, d = re.escape(other), re.escape(decimal)
        grouped_decimal = re.compile(rf"^[+-]?[1-9]\d{{0,2}}(?:{o}\d{{3}})+{d}\d*$")
    for i, u in enumerate(uniques):
        if isinstance(u, (int, float, np.integer, np.floating)) and not isinstance(u, bool):
            if np.isnan(u):
                flag[i] = 0
            elif not np.isfinite(u):
                flag[i] = 1
            else:
                num[i] = float(u)
            continue
        # Bytes are text in some encoding: read as UTF-8 (as DuckDB casts them), not as "b'1.2'".
        text = u.decode("utf-8", "replace") if isinstance(u, bytes) else str(u)
        if not text.strip():
            flag[i] = 0
            continue
        m = _OPERAND.match(text)
        op, body = (m.group("op"), m.group("body")) if m else (None, text.strip())
        if thousands is not None:
            if thousands in body:
                body = body.replace(thousands, "") if well_formed.match(body) else "x"
        elif _GROUPED.match(body) or grouped_decimal.match(body):
            amb[i] = AMB_DECIMAL
        if other in body and other != thousands and (decimal == "." or amb[i]):
            # The separator that is not the decimal one, not declared as
            # thousands: no reading by decimal. (With decimal "," a "." that
            # groups no digits, as in "0.5", is read as a decimal point.)
            body = "x"
        if decimal == ",":
            body = body.replace(",", ".")
        m = _NUMBER.match(body)
        if m is None or m.group("op") or not np.isfinite(float(m.group("num"))):  # "1e999" too
            flag[i] = 1
            if amb[i]:
                amb[i] = AMB_NONE_READABLE
            continue
        number = float(m.group("num"))
        num[i] = number
        if op:
            cens[i] = op_code[_OPS[op]]
    return num, cens, flag, amb


_OPERAND = re.compile(r"^\s*(?P<op><=|>=|=<|=>|<|>|≤|≥)?\s*(?P<body>\S.*?)\s*$")


#: Flags :func:`derive_anc` can set.
DERIVE_FLAGS = ("missing_component", "censored_component", "negative", "pct_out_of_range", "pct_sum_over_100",
                "ambiguous_number", "unit_suspect")


def _suspect(v: np.ndarray, factors: np.ndarray, below: float | None) -> np.ndarray:
    """``unit_suspect``: a non-integer in [0, below) in a cells/µL-scale unit (factor 1)."""
    if below is None:
        return np.zeros(v.shape, dtype=bool)
    return (factors == 1.0) & (v >= 0) & (v < below) & (v != np.floor(v))


def derive_anc(
    wbc: Any,
    neutrophil_pct: Any,
    band_pct: Any = None,
    *,
    wbc_unit: Any = THOUSANDS_PER_UL,
    decimal: str = ".",
    thousands: str | None = None,
    unit_suspect_below: float | None = 20.0,
) -> pd.DataFrame:
    """Derive the absolute neutrophil count from the WBC and the differential.

    ANC = WBC x (neutrophil % + band %) / 100, in cells/µL: the absolute count
    of the segmented and band neutrophils [1]_. Metamyelocytes and younger
    forms are not counted.

    Parameters
    ----------
    wbc : array-like
        Leukocyte counts (numbers or lab strings).
    neutrophil_pct : array-like
        Neutrophils (or segmented neutrophils) per 100 leukocytes, in %.
    band_pct : array-like, optional
        Band neutrophils per 100 leukocytes, in %. A missing band value (NaN)
        on a row counts as "not reported": the ANC is derived without bands
        and ``anc_source`` says so.
    wbc_unit : str or array-like of str, default "10^9/L"
        Unit of ``wbc``: one for all rows or one per row; any count unit of
        :func:`normalize_units`.
    decimal, thousands : str
        Separators of string values, as in :func:`parse_lab_values`; a WBC
        string whose reading depends on the separator in its unit (``"4.500"``
        cells/µL) is flagged ``ambiguous_number``.
    unit_suspect_below : float or None, default 20
        A WBC in a cells/µL unit that is not a whole number and lies below
        this (``4.5`` cells/µL: a 10⁹/L value) is flagged ``unit_suspect``;
        ``None`` turns the rule off.

    Returns
    -------
    pandas.DataFrame
        One row per input row (index of ``wbc`` when it is a Series):

        ``anc_per_ul`` (float)
            Derived ANC in cells/µL; NaN when flagged.
        ``anc_source`` (str)
            ``"derived"`` (WBC x (neutrophil % + band %)) or
            ``"derived_no_bands"`` (WBC x neutrophil %, no band value).
        ``derive_flag`` (Categorical)
            Why no ANC was derived: ``missing_component`` (WBC or
            neutrophil % missing, or any component not a number),
            ``censored_component`` (a component such as ``"<0.1"`` is
            censored), ``negative`` (a negative WBC), ``pct_out_of_range`` (a
            percentage outside 0-100), ``pct_sum_over_100`` (neutrophil % +
            band % > 100), ``ambiguous_number`` or ``unit_suspect`` (the
            WBC, see ``thousands`` and ``unit_suspect_below``); NA when the
            ANC was derived. When several apply, the WBC's own flag is
            reported first, then ``missing_component``.

    Raises
    ------
    NeutrostatsError
        If the columns differ in length or a WBC unit is not a count unit.

    See Also
    --------
    normalize_units : the unit of the WBC.
    neutrostats.classify_anc : derives the ANC of long lab tables with this.

    References
    ----------
    .. [1] Regenstrief Institute. LOINC 751-8 (neutrophils, absolute),
       770-8 (neutrophils per 100 leukocytes), 764-1 (band neutrophils per 100
       leukocytes), 6690-2 (leukocytes). https://loinc.org/751-8/, /770-8/,
       /764-1/, /6690-2/.

    Examples
    --------
    >>> derive_anc([4.0, 2.0, 5.0], [50.0, 40.0, 90.0], [5.0, None, 20.0])
       anc_per_ul        anc_source       derive_flag
    0      2200.0           derived               NaN
    1       800.0  derived_no_bands               NaN
    2         NaN           derived  pct_sum_over_100
    """
    seps: dict[str, Any] = {"decimal": decimal, "thousands": thousands}
    w = parse_lab_values(_as_series(wbc, "derive_anc"), unit=wbc_unit, **seps)
    index = w.index
    n = len(w)
    neut = parse_lab_values(_as_series(neutrophil_pct, "derive_anc"), **seps)
    if band_pct is None:
        band = parse_lab_values(pd.Series(np.full(n, np.nan)))
    else:
        band = parse_lab_values(_as_series(band_pct, "derive_anc"), **seps)
    if not (len(neut) == len(band) == n):
        raise NeutrostatsError(
            f"derive_anc: expected wbc, neutrophil_pct and band_pct of equal length, found "
            f"{n}, {len(neut)} and {len(band)} rows"
        )
    wv = w["value_num"].to_numpy()
    nv = neut["value_num"].to_numpy()
    bv = band["value_num"].to_numpy()
    wbc_factors = _count_factors(wbc_unit, wv.shape, "derive_anc", "wbc_unit")
    wbc_ul = _scale(wv, wbc_factors)
    has_band = ~np.isnan(bv)
    pct = nv + np.where(has_band, bv, 0.0)
    anc = np.round(wbc_ul * pct / 100.0, 6)

    flag = np.full(n, -1, dtype=np.int8)
    # Order matters: the first reason that applies is the one reported.
    checks = [
        (4, pct > 100.0),
        (3, (nv < 0) | (nv > 100) | (has_band & ((bv < 0) | (bv > 100)))),
        (2, wv < 0),
        (1, w["censor"].notna().to_numpy() | neut["censor"].notna().to_numpy() | band["censor"].notna().to_numpy()),
        # A band result that is present but not a number is unknown, not
        # absent: deriving without it would understate the ANC.
        (0, np.isnan(wv) | np.isnan(nv) | (band["value_flag"] == "non_numeric").to_numpy()),
        (6, _suspect(wv, wbc_factors, unit_suspect_below)),
        (5, (w["value_flag"] == "ambiguous_number").to_numpy()),
    ]
    for code, mask in checks:
        flag[mask] = code
    anc[flag >= 0] = np.nan
    source = np.where(has_band, "derived", "derived_no_bands")
    return pd.DataFrame(
        {
            "anc_per_ul": anc,
            "anc_source": source,
            "derive_flag": pd.Categorical.from_codes(flag, dtype=pd.CategoricalDtype(list(DERIVE_FLAGS))),
        },
        index=index,
    )
