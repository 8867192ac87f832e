"""Drawing a synthetic cohort: persons, blood counts, lab rows in export shapes, outcomes, deaths, diagnoses."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from neutrostats.core.progress import progress_bar
from neutrostats.core.roots import brentq
from neutrostats.synthetic.assumptions import (
    DEFAULT_SEED,
    TIERS,
    _CUTS,
    _ICD,
    _NON_NUMERIC,
    _NONREF,
    _OUTCOMES,
    _TIER_DTYPE,
    _UNITS,
    _fail,
    _resolve_assumptions,
)
from neutrostats.synthetic.truth import _truth


# numpy >= 2 has the string ufuncs as np.strings; numpy 1.26 (the oldest supported) as np.char.
_strings: Any = getattr(np, "strings", np.char)

__all__ = ["SyntheticCohort", "generate_cohort"]


# ---------------------------------------------------------------------------
# Assumptions
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# Codes and spellings
# ---------------------------------------------------------------------------

_UNIT_NAMES = np.array([u for u, _, _ in _UNITS], dtype=object)
_UNIT_IS_CELLS = np.array([f == 1 for _, f, _ in _UNITS])
_UNIT_P = np.array([w for _, _, w in _UNITS])
_ANC_CODES = (("751-8", 0.85), ("753-4", 0.10), ("26499-4", 0.05))
_NEUT_CODES = (("770-8", 0.8), ("26511-6", 0.2))


_DAY_NS = 86_400 * 10**9
_MIN_NS = 60 * 10**9
_WINDOW_DAYS = 1460  # events land in [index+1, index+1460]: inside 4 years under any year length
_LATE_GAP_DAYS = 1480  # late codes are clearly after any 4-year window


# ---------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class SyntheticCohort:
    """A synthetic cohort: four tables as a lab/registry export has them, plus truth.

    Attributes
    ----------
    persons : pandas.DataFrame
        One row per person: ``person_id`` (int64), ``sex`` ("F"/"M"),
        ``birth_date``, ``duffy_null`` (bool), ``entry_date`` (date of the
        first CBC), ``end_of_data`` (end of follow-up for the database).
    labs : pandas.DataFrame
        Long format: ``person_id``, ``sampled_at`` (minute resolution),
        ``code`` (LOINC), ``value`` (str, as exported), ``unit`` (str).
    diagnoses : pandas.DataFrame
        ``person_id``, ``diagnosed_at`` (day), ``code`` (ICD-10 as written:
        dotted or not, any case, sometimes a trailing character).
    deaths : pandas.DataFrame
        ``person_id``, ``died_at`` (day); persons without a row are alive at
        ``end_of_data``.
    index : pandas.DataFrame
        Truth per person (all persons, in ``persons`` order): ``person_id``,
        ``index_date`` (``sampled_at`` of the first valid ANC measurement; NaT
        if none), ``index_anc_per_ul`` (the measured ANC; NaN if left-censored
        or no index), ``index_left_censored`` (bool, e.g. ``"<0.1"``),
        ``index_tier`` (ordered Categorical, mildest first),
        ``anc_source`` ("direct" or "derived"), ``age_at_index`` (years,
        ``(index day - birth day) / 365.25``).
    truth : dict
        Every generating parameter, solved coefficient and mess rate, plus
        realised counts; serialises to JSON.
    """

    persons: pd.DataFrame
    labs: pd.DataFrame
    diagnoses: pd.DataFrame
    deaths: pd.DataFrame
    index: pd.DataFrame
    truth: dict

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The four data tables by name (without the truth ``index``)."""
        return {
            "persons": self.persons,
            "labs": self.labs,
            "diagnoses": self.diagnoses,
            "deaths": self.deaths,
        }

    def __repr__(self) -> str:
        return (
            f"SyntheticCohort(persons={len(self.persons)}, labs={len(self.labs)}, "
            f"diagnoses={len(self.diagnoses)}, deaths={len(self.deaths)}, "
            f"seed={self.truth.get('seed')!r})"
        )


# ---------------------------------------------------------------------------
# Assumption handling
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# Small vectorised helpers
# ---------------------------------------------------------------------------


def _choice(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with probabilities ``p`` (one uniform per draw)."""
    cum = np.cumsum(p)
    cum[-1] = 1.0
    return np.searchsorted(cum, rng.random(size), side="right")


def _digits(v: np.ndarray, decimals: int = 0) -> np.ndarray:
    """Non-negative integers ``v`` (in units of 10**-decimals) as decimal strings: ``str(v)``, or
    ``f"{v // 10**d}.{v % 10**d:0{d}d}"`` with ``d = decimals`` (``5`` -> ``"0.05"`` with 2).

    Written as character codes, one column per digit position, and viewed as text:
    numpy's integer-to-text cast (``astype(str)``) took a fifth of the generator's time.
    """
    v = np.asarray(v, dtype=np.int64)
    if v.size == 0:
        return np.array([], dtype=str)
    if v.min() < 0:  # never drawn; numpy's casts, as before
        if not decimals:
            return v.astype(str)
        whole, frac = (v // 10**decimals).astype(str), _strings.zfill((v % 10**decimals).astype(str), decimals)
        return _strings.add(_strings.add(whole, "."), frac)
    # Digits shown: all of v's, and at least one before the point.
    shown = np.maximum(np.searchsorted(_POW10, v, side="right"), 1 + decimals)
    width = int(shown.max()) + (1 if decimals else 0)
    chars = np.zeros((v.size, width), dtype=np.uint32)
    for j in range(width):  # a loop over character positions (at most ~20), not over values
        # Column j holds digit i of the zero-padded number, or the point, or nothing (past the end).
        point = shown - decimals if decimals else np.full(v.size, width + 1)
        i = np.where(j > point, j - 1, j)
        power = shown - 1 - i
        digit = 48 + (v // _POW10[np.clip(power, 0, _POW10.size - 1)]) % 10
        chars[:, j] = np.where(j == point, 46, np.where(power >= 0, digit, 0))
    return chars.view(f"<U{width}").reshape(v.size)


# 10**0 ... 10**18: the powers an int64 has digits for.
_POW10 = 10 ** np.arange(19, dtype=np.int64)


def _fmt_fixed(v: np.ndarray, decimals: int) -> np.ndarray:
    """Format non-negative integers ``v`` (in units of 10**-decimals) as decimal strings."""
    return _digits(v, decimals)


def _fmt_count(v: np.ndarray, per_ul: np.ndarray) -> np.ndarray:
    """Display strings: whole cells/uL where ``per_ul``, else hundredths of 10^9/L."""
    out = np.empty(v.size, dtype=object)
    out[per_ul] = _digits(np.asarray(v)[per_ul])
    out[~per_ul] = _fmt_fixed(np.asarray(v)[~per_ul], 2)
    return out


def _days(date: str) -> int:
    return int(np.datetime64(date, "D").astype(np.int64))


def _to_datetime_days(days: np.ndarray) -> np.ndarray:
    return (np.asarray(days, dtype=np.int64) * _DAY_NS).view("datetime64[ns]")


def _tier_of_cells(cells: np.ndarray) -> np.ndarray:
    """Tier code (0 normal ... 3 moderate_severe) of exact values in cells/µL."""
    return (3 - np.searchsorted(np.array(_CUTS), cells, side="right")).astype(np.int8)


def _solve_shift(offset: np.ndarray, target: float) -> float:
    """Constant c with mean(expit(offset + c)) == target."""
    if offset.size == 0:
        return float(math.log(target / (1 - target)))
    return float(brentq(lambda c: float(expit(offset + c).mean()) - target, -40.0, 40.0, xtol=1e-12))


# ---------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------


def generate_cohort(
    n_persons: int = 10_000,
    seed: int | None = DEFAULT_SEED,
    *,
    progress: bool | None = None,
    **assumptions: Any,
) -> SyntheticCohort:
    """Generate a synthetic neutropenia cohort with known truth.

    Parameters
    ----------
    n_persons : int, default 10000
        Number of persons (the CopDiff follow-up had 373,820).
    seed : int or None, default DEFAULT_SEED (2018)
        Seed of ``numpy.random.default_rng``; the same seed and assumptions
        give identical tables. ``None`` draws fresh entropy, which is recorded
        in ``truth["seed"]`` so the cohort can be regenerated.
    progress : bool or None, default None
        Show a progress bar. ``None``: on a terminal, or in Jupyter with
        ipywidgets (:func:`~neutrostats.core.progress.progress_bar`).
    **assumptions
        Any key of :data:`DEFAULT_ASSUMPTIONS` (meanings and sources in
        :data:`ASSUMPTION_NOTES`). Nested dicts may be given in part, e.g.
        ``mess={"non_numeric": 0.05}`` or
        ``viral_infection={"or": {"mild": 3.0}}``.

    Returns
    -------
    SyntheticCohort
        Frozen result with ``persons``, ``labs``, ``diagnoses``, ``deaths``,
        ``index`` (truth per person) and ``truth`` (JSON-ready dict).

    Raises
    ------
    NeutrostatsError
        If ``n_persons`` is not a positive integer, ``seed`` is not a
        non-negative integer, an assumption name is unknown (the message lists
        the valid ones) or an assumption value is out of range.

    Notes
    -----
    Outcome tier effects act on the *observed* index tier (first valid ANC
    measurement), so crude ORs computed from the tables recover the targets.
    For an outcome with ``or_scale="crude"`` (the default for the two
    outcomes Andersen 2016 published) the conditional tier log-ORs are solved
    so that, in the generated cohort, the expected crude OR of each tier
    against the normal tier equals the target, and the expected risk of the
    normal tier equals ``baseline_risk``; age and sex effects therefore do not
    shift the crude ORs away from the published values. With
    ``or_scale="conditional"`` the ORs are the logistic model's coefficients
    (negative controls: 1). ``truth["outcomes"][name]`` records both.

    See Also
    --------
    load_sample : the bundled 20,000-person sample.
    write_cohort, read_cohort : the cohort as files and back.
    neutrostats.build_cohort : the analysis cohort from these tables.

    References
    ----------
    .. [1] Andersen CL, Tesfa D, Siersma VD, et al. Prevalence and clinical
       significance of neutropenia discovered in routine complete blood cell
       counts: a longitudinal study. J Intern Med 2016;279:566-575.
       doi:10.1111/joim.12489
       doi:10.1111/joim.12489.

    Examples
    --------
    >>> from neutrostats.synthetic import generate_cohort
    >>> c = generate_cohort(n_persons=500, seed=1)
    >>> c.persons.columns.tolist()
    ['person_id', 'sex', 'birth_date', 'duffy_null', 'entry_date', 'end_of_data']
    >>> c.index["index_tier"].cat.categories.tolist()
    ['normal', 'subnormal', 'mild', 'moderate_severe']
    >>> c2 = generate_cohort(n_persons=500, seed=1)
    >>> c.labs.equals(c2.labs)
    True
    >>> generate_cohort(n_persons=10, colour="blue")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neutrostats.errors.NeutrostatsError: generate_cohort: unknown assumption(s) ['colour']; valid assumptions are [...] (see ...)
    """
    if isinstance(n_persons, bool) or not isinstance(n_persons, (int, np.integer)) or n_persons < 1:
        _fail(f"n_persons must be a positive integer, found {n_persons!r}; e.g. n_persons=10000")
    n = int(n_persons)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]  # an int when not given
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        _fail(f"seed must be a non-negative integer or None, found {seed!r}")
    seed = int(seed)
    a = _resolve_assumptions(assumptions)
    rng = np.random.default_rng(seed)

    steps = ("persons", "blood counts", "lab mess", "index", "outcomes", "deaths", "diagnoses", "tables")
    with progress_bar(progress, total=len(steps), desc="generate_cohort", unit="step", leave=False) as bar:
        bar.set_postfix_str(steps[0])
        P = _persons(rng, n, a)
        bar.update()
        bar.set_postfix_str(steps[1])
        C = _blood_counts(rng, P, a)
        bar.update()
        bar.set_postfix_str(steps[2])
        L = _lab_rows(rng, P, C, a)
        bar.update()
        bar.set_postfix_str(steps[3])
        X = _index(P, C, L)
        bar.update()
        bar.set_postfix_str(steps[4])
        O = _outcomes(rng, P, X, a)
        bar.update()
        bar.set_postfix_str(steps[5])
        D = _deaths(rng, P, X, a)
        bar.update()
        bar.set_postfix_str(steps[6])
        G = _diagnoses(rng, P, X, O, D, a)
        bar.update()
        bar.set_postfix_str(steps[7])
        T = _lab_table(rng, C, L, D, a)
        cohort = _assemble(seed, n, a, P, C, T, X, O, D, G)
        bar.update()
    return cohort


def _persons(rng: np.random.Generator, n: int, a: dict) -> dict:
    lab_start, lab_end = _days(a["lab_start"]), _days(a["lab_end"])
    child = rng.random(n) < a["share_children"]
    # Adults skew to middle age (mean ~53 y) as primary-care blood tests do.
    age_years = np.where(child, rng.uniform(1.0, 19.0, n), 19.0 + 71.0 * rng.beta(2.0, 2.2, n))
    male = rng.random(n) < a["share_male"]
    duffy = rng.random(n) < a["share_duffy_null"]
    derived_only = rng.random(n) < a["share_derived_only"]
    entry = lab_start + rng.integers(0, lab_end - lab_start + 1, n)
    birth = entry - np.round(age_years * 365.25).astype(np.int64)
    disorder = rng.random(n) < a["share_low_anc_disorder"]
    z = rng.standard_normal(n)
    mu_general = (
        math.log(a["anc_median"])
        + child * math.log(a["anc_child_factor"])
        + duffy * math.log(a["anc_duffy_null_factor"])
        + a["anc_between_sd_log"] * z
    )
    mu_low = math.log(a["low_anc_median"]) + a["low_anc_between_sd_log"] * z
    mu = np.where(disorder, mu_low, mu_general)
    return {
        "n": n, "person_id": np.arange(1, n + 1, dtype=np.int64), "child": child, "male": male,
        "duffy": duffy, "derived_only": derived_only, "entry": entry, "birth": birth, "mu": mu,
        "disorder": disorder, "end": _days(a["end_of_data"]), "lab_end": lab_end,
    }


def _blood_counts(rng: np.random.Generator, P: dict, a: dict) -> dict:
    n = P["n"]
    k = 1 + rng.poisson(a["mean_extra_cbcs"], n)
    total = int(k.sum())
    pidx = np.repeat(np.arange(n), k)
    starts = np.cumsum(k) - k
    first = np.zeros(total, dtype=bool)
    first[starts] = True
    gaps = np.where(first, 0, 1 + np.floor(rng.exponential(a["mean_cbc_gap_days"] - 1, total)).astype(np.int64))
    cum = np.cumsum(gaps)
    day = P["entry"][pidx] + cum - np.repeat(cum[starts], k)
    minute = rng.integers(7 * 60, 16 * 60, total)
    sigma_w = math.sqrt(math.log1p(a["anc_within_cv"] ** 2))
    anc = np.exp(P["mu"][pidx] + sigma_w * rng.standard_normal(total))  # x 10^9/L
    keep = day <= P["lab_end"]
    return {
        "pidx": pidx[keep], "day": day[keep], "minute": (day * 1440 + minute)[keep],
        "anc": anc[keep],
    }


def _lab_rows(rng: np.random.Generator, P: dict, C: dict, a: dict) -> dict:
    """Lab rows of every CBC, mess applied, and the observed ANC of each CBC."""
    mess = a["mess"]
    m = C["pidx"].size
    derived = P["derived_only"][C["pidx"]]
    # Random draws are made for every CBC so that the stream does not depend
    # on which persons are derived-only.
    u_mess = rng.random(m)
    u_low = rng.random(m)
    unit_anc = _choice(rng, _UNIT_P, m)
    unit_wbc = _choice(rng, _UNIT_P, m)
    code_anc = _choice(rng, np.array([p for _, p in _ANC_CODES]), m)
    code_neut = _choice(rng, np.array([p for _, p in _NEUT_CODES]), m)
    which_nn = rng.integers(0, len(_NON_NUMERIC), m)
    lt_spaced = rng.random(m) < 0.5
    too_high_k = rng.integers(10_001, 100_000, m)  # hundredths of 10^9/L, i.e. > 100,000 cells/uL
    with_wbc = rng.random(m) < a["share_wbc_with_direct_anc"]
    # Capped at 85 % so neutrophil % + band % (<= 12) stays below 100 %.
    seg_tenths = np.round(np.clip(rng.normal(57.0, 9.0, m), 20.0, 85.0) * 10).astype(np.int64)
    band = np.minimum(rng.poisson(2.0, m), 12).astype(np.int64)
    wbc_frac_direct = rng.uniform(0.45, 0.70, m)

    anc = C["anc"]
    cells_unit_anc = _UNIT_IS_CELLS[unit_anc]
    # Displayed number: hundredths of 10^9/L (= 10 cells/uL) or whole cells/uL.
    disp = np.where(cells_unit_anc, np.round(anc * 1000.0), np.round(anc * 100.0)).astype(np.int64)
    disp_cells = np.where(cells_unit_anc, disp, disp * 10)
    # No value sits exactly on a cut point, so that tiers never depend on the
    # order of floating-point operations in a reader.
    on_cut = np.isin(disp_cells, np.array(_CUTS, dtype=np.int64))
    disp = disp + on_cut
    disp_cells = np.where(cells_unit_anc, disp, disp * 10)

    r = np.cumsum([mess["non_numeric"], mess["negative"], mess["too_high"], mess["below_detection"]])
    kind = np.searchsorted(r, u_mess, side="right")  # 0 nn, 1 neg, 2 high, 3 below, 4 clean
    kind = np.where(kind > 4, 4, kind).astype(np.int8)

    # ---- direct ANC rows ---------------------------------------------------
    # Strings are built only for the rows that show them (memory at full size).
    d = ~derived
    natural_below = (kind == 4) & (disp_cells < 100)
    reported_lt15 = (kind == 4) & ~natural_below & (disp_cells < 1500) & (u_low < mess["reported_lt_1_5"])
    censored = (kind == 3) | natural_below
    value = np.full(m, None, dtype=object)
    show = d & (kind == 4) & ~natural_below & ~reported_lt15
    value[show] = _fmt_count(disp[show], cells_unit_anc[show])
    nn = d & (kind == 0)
    value[nn] = np.array(_NON_NUMERIC, dtype=object)[which_nn[nn]]
    neg = d & (kind == 1)
    value[neg] = _strings.add("-", _fmt_count(np.maximum(disp[neg], 1), cells_unit_anc[neg]).astype(str))
    high = d & (kind == 2)
    high_disp = np.where(cells_unit_anc[high], too_high_k[high] * 10 + 1, too_high_k[high])
    value[high] = _fmt_count(high_disp, cells_unit_anc[high])
    lt01_names = np.array(["<0.1", "< 0.10", "<100", "< 100"], dtype=object)
    cz = d & censored
    value[cz] = lt01_names[2 * cells_unit_anc[cz] + lt_spaced[cz]]
    lz = d & reported_lt15
    value[lz] = np.where(cells_unit_anc[lz], "<1500", "<1.5").astype(object)
    valid_direct = ((kind == 4) & ~reported_lt15) | (kind == 3)
    direct_cells = np.where(censored, np.nan, disp_cells.astype(float))
    direct_tier = np.where(censored, 3, _tier_of_cells(disp_cells)).astype(np.int8)

    # ---- derived: WBC, neutrophil %, band % ---------------------------------
    cells_unit_wbc = _UNIT_IS_CELLS[unit_wbc]
    D = _derived_parts(anc, cells_unit_wbc, seg_tenths, band, derived, u_mess < mess["non_numeric"], which_nn)
    neut_nn, derived_cells, derived_tier = D["neut_nn"], D["cells"], D["tier"]
    valid_derived = ~neut_nn

    # WBC exported next to a direct ANC (not usable for derivation: no %).
    wd = d & with_wbc
    wd_str = np.full(m, None, dtype=object)
    wd_cells = anc[wd] * 1000.0 / wbc_frac_direct[wd]
    wd_disp = np.where(cells_unit_wbc[wd], np.round(wd_cells), np.round(wd_cells / 10.0)).astype(np.int64)
    wd_str[wd] = _fmt_count(wd_disp, cells_unit_wbc[wd])

    valid = np.where(derived, valid_derived, valid_direct)
    obs_cells = np.where(derived, derived_cells, direct_cells)
    obs_tier = np.where(derived, derived_tier, direct_tier).astype(np.int8)
    obs_censored = ~derived & censored

    anc_code_names = np.array([c for c, _ in _ANC_CODES], dtype=object)[code_anc]
    neut_code_names = np.array([c for c, _ in _NEUT_CODES], dtype=object)[code_neut]
    return {
        "valid": valid, "obs_cells": obs_cells, "obs_tier": obs_tier, "obs_censored": obs_censored,
        "derived": derived, "with_wbc": with_wbc, "anc_code": anc_code_names, "anc_value": value,
        "anc_unit": _UNIT_NAMES[unit_anc], "wbc_unit": _UNIT_NAMES[unit_wbc], "wd_str": wd_str,
        "wbc_str": D["wbc_str"], "neut_code": neut_code_names, "neut_str": D["neut_str"],
        "band_str": D["band_str"],
        "kind": kind, "neut_nn": neut_nn, "natural_below": natural_below, "reported_lt15": reported_lt15,
        "lt15_eligible": (kind == 4) & ~natural_below & (disp_cells < 1500),
    }


def _derived_parts(anc, cells_unit_wbc, seg_tenths, band, derived, neut_nn, which_nn) -> dict:
    """WBC, neutrophil % and band % strings of the derived-only CBCs, and the ANC and tier they give.

    The WBC is rounded as displayed and the neutrophil % nudged (by tenths)
    off any product that would land exactly on a cut point.
    """
    m = anc.size
    pct_tenths = seg_tenths + 10 * band
    wbc_true = anc / (pct_tenths / 1000.0)
    wbc_disp = np.where(cells_unit_wbc, np.round(wbc_true * 1000.0), np.round(wbc_true * 100.0)).astype(np.int64)
    wbc_disp = np.maximum(wbc_disp, np.where(cells_unit_wbc, 10, 1))
    wbc_cells = np.where(cells_unit_wbc, wbc_disp, wbc_disp * 10)
    cut_prod = np.array(_CUTS, dtype=np.int64) * 1000
    for _ in range(3):
        # ANC x 1000 = WBC (cells/uL) x pct (tenths of %), exact in integers.
        prod = wbc_cells * (seg_tenths + 10 * band)
        tie = np.isin(prod, cut_prod)
        if not tie.any():
            break
        seg_tenths = seg_tenths + tie
    prod = wbc_cells * (seg_tenths + 10 * band)
    derived_cells = prod / 1000.0
    derived_tier = _tier_of_cells(derived_cells)
    neut_str = np.full(m, None, dtype=object)
    wbc_str = np.full(m, None, dtype=object)
    band_str = np.full(m, None, dtype=object)
    ok = derived & ~neut_nn
    neut_str[ok] = _fmt_fixed(seg_tenths[ok], 1)
    bad = derived & neut_nn
    neut_str[bad] = np.array(_NON_NUMERIC, dtype=object)[which_nn[bad]]
    wbc_str[derived] = _fmt_count(wbc_disp[derived], cells_unit_wbc[derived])
    band_str[derived] = _digits(band[derived])
    return {"neut_nn": neut_nn, "cells": derived_cells, "tier": derived_tier, "neut_str": neut_str,
            "wbc_str": wbc_str, "band_str": band_str}


def _lab_table(rng: np.random.Generator, C: dict, L: dict, D: dict, a: dict) -> dict:
    """Rows of the labs table: CBCs up to death, duplicates added, sorted."""
    keep = C["day"] <= D["death_day"][C["pidx"]]
    d = ~L["derived"] & keep
    derived = L["derived"] & keep
    cbc = np.arange(keep.size)
    parts = []

    def add(mask, code, value_, unit, order):
        idx = cbc[mask]
        code_ = np.asarray(code, dtype=object)[mask] if np.ndim(code) else np.full(idx.size, code, dtype=object)
        unit_ = np.asarray(unit, dtype=object)[mask] if np.ndim(unit) else np.full(idx.size, unit, dtype=object)
        parts.append((idx, code_, value_[mask], unit_, np.full(idx.size, order, dtype=np.int8)))

    # Within a CBC: ANC, WBC, neutrophil %, band %.
    add(d, L["anc_code"], L["anc_value"], L["anc_unit"], 0)
    add(d & L["with_wbc"], "6690-2", L["wd_str"], L["wbc_unit"], 1)
    add(derived, "6690-2", L["wbc_str"], L["wbc_unit"], 1)
    add(derived, L["neut_code"], L["neut_str"], "%", 2)
    add(derived, "764-1", L["band_str"], "%", 3)
    cols = [np.concatenate([p[i] for p in parts]) for i in range(5)]
    # Verbatim duplicates: same person, time, code, value and unit.
    dup = rng.random(cols[0].size) < a["mess"]["duplicate"]
    cols = [np.concatenate([c, c[dup]]) for c in cols]
    order = np.lexsort((cols[4], cols[0]))
    row_cbc, code, value, unit, _ = (c[order] for c in cols)
    kind = L["kind"]
    counts = {
        "anc_measurement_rows": int(keep.sum()),
        "direct_anc_rows": int(d.sum()),
        "derived_cbcs": int(derived.sum()),
        "non_numeric": int(((kind == 0) & d).sum() + (L["neut_nn"] & derived).sum()),
        "negative": int(((kind == 1) & d).sum()),
        "too_high": int(((kind == 2) & d).sum()),
        "below_detection_random": int(((kind == 3) & d).sum()),
        "below_detection_natural": int((L["natural_below"] & d).sum()),
        "reported_lt_1_5": int((L["reported_lt15"] & d).sum()),
        "eligible_lt_1_5": int((L["lt15_eligible"] & d).sum()),
        "duplicate_rows": int(dup.sum()),
        "rows_before_duplicates": int(dup.size),
        "cbcs_dropped_after_death": int((~keep).sum()),
    }
    return {"row_cbc": row_cbc, "code": code, "value": value, "unit": unit, "counts": counts}


def _index(P: dict, C: dict, L: dict) -> dict:
    n = P["n"]
    valid_idx = np.flatnonzero(L["valid"])
    # CBCs are ordered by person then time, so the first valid per person is the index.
    persons, pos = np.unique(C["pidx"][valid_idx], return_index=True)
    chosen = valid_idx[pos]
    has = np.zeros(n, dtype=bool)
    has[persons] = True
    tier = np.full(n, -1, dtype=np.int8)
    tier[persons] = L["obs_tier"][chosen]
    minute = np.full(n, -1, dtype=np.int64)
    minute[persons] = C["minute"][chosen]
    day = np.where(has, minute // 1440, P["entry"])
    cells = np.full(n, np.nan)
    cells[persons] = L["obs_cells"][chosen]
    cens = np.zeros(n, dtype=bool)
    cens[persons] = L["obs_censored"][chosen]
    derived = np.zeros(n, dtype=bool)
    derived[persons] = L["derived"][chosen]
    age = (day - P["birth"]) / 365.25
    return {"has": has, "tier": tier, "minute": minute, "day": day, "cells": cells,
            "censored": cens, "derived": derived, "age": age}


def _outcomes(rng: np.random.Generator, P: dict, X: dict, a: dict) -> dict:
    n = P["n"]
    has, tier = X["has"], X["tier"]
    age_dec = (X["age"] - 50.0) / 10.0
    male = P["male"].astype(float)
    out: dict[str, dict] = {}
    for o in _OUTCOMES:
        spec = a[o]
        u_prev = rng.random(n)
        u_event = rng.random(n)
        prevalent = has & (u_prev < spec["prevalence_at_index"])
        eligible = has & ~prevalent
        cov = spec["age_log_or_per_decade"] * age_dec + spec["male_log_or"] * male
        r0 = spec["baseline_risk"]
        ref = eligible & (tier == 0)
        alpha = _solve_shift(cov[ref], r0)
        beta = np.zeros(4)
        target_or = {t: spec["or"][t] for t in _NONREF}
        for j, t in enumerate(_NONREF, start=1):
            if spec["or_scale"] == "conditional":
                beta[j] = math.log(target_or[t])
                continue
            odds = target_or[t] * r0 / (1 - r0)
            grp = eligible & (tier == j)
            beta[j] = _solve_shift(cov[grp] + alpha, odds / (1 + odds))
        lp = alpha + beta[np.maximum(tier, 0)] + cov
        p = np.where(eligible, expit(lp), 0.0)
        event = eligible & (u_event < p)
        exp_risk = {}
        for j, t in enumerate(TIERS):
            grp = eligible & (tier == j)
            exp_risk[t] = float(p[grp].mean()) if grp.any() else None
        exp_or = {}
        for t in _NONREF:
            rt, rr = exp_risk[t], exp_risk["normal"]
            exp_or[t] = None if rt is None or rr is None else float((rt / (1 - rt)) / (rr / (1 - rr)))
        # Standardised truth: the event probability of every eligible person with the tier set to each tier.
        std = {t: float(expit(alpha + beta[j] + cov[eligible]).mean()) if eligible.any() else None
               for j, t in enumerate(TIERS)}
        out[o] = {"prevalent": prevalent, "eligible": eligible, "event": event, "alpha": alpha,
                  "beta": beta, "expected_risk": exp_risk, "expected_crude_or": exp_or, "standardized_risk": std}
    u_hiv = rng.random(n)
    u_al = rng.random(n)
    hiv_share = np.array([a["hiv_share_of_viral"][t] for t in TIERS])
    al_share = np.array([a["acute_leukemia_share_of_hematologic"][t] for t in TIERS])
    t0 = np.maximum(tier, 0)
    out["viral_infection"]["subtype"] = out["viral_infection"]["event"] & (u_hiv < hiv_share[t0])
    out["hematologic_malignancy"]["subtype"] = out["hematologic_malignancy"]["event"] & (u_al < al_share[t0])
    return out


def _deaths(rng: np.random.Generator, P: dict, X: dict, a: dict) -> dict:
    n = P["n"]
    m = a["mortality"]
    has, tier = X["has"], X["tier"]
    log_rate = (
        math.log(m["rate_per_year"])
        + m["age_log_hr_per_decade"] * (X["age"] - 60.0) / 10.0
        + m["male_log_hr"] * P["male"]
    )
    rate = np.exp(log_rate)
    lowest = has & (tier == 3)
    target = m["risk_4y_moderate_severe"]
    if lowest.any():
        base = rate[lowest] * 4.0
        log_hr3 = float(brentq(lambda x: float((-np.expm1(-base * math.exp(x))).mean()) - target,
                               -10.0, 20.0, xtol=1e-12))
    else:
        log_hr3 = math.log(20.0)
    hr = np.array([1.0, m["hr"]["subnormal"], m["hr"]["mild"], math.exp(log_hr3)])
    # Standardised truth: every person with an index, the tier set in turn to each tier.
    std4 = {t: float((-np.expm1(-rate[has] * hr[j] * 4.0)).mean()) if has.any() else None
            for j, t in enumerate(TIERS)}
    rate = rate * np.where(has, hr[np.maximum(tier, 0)], 1.0)
    t_years = rng.exponential(1.0, n) / rate
    # At least one day after the index (or entry), so a death never precedes
    # the measurement that starts follow-up.
    death_day = X["day"] + np.maximum(1, np.ceil(t_years * 365.25)).astype(np.int64)
    died = death_day <= P["end"]
    exp_risk4 = {}
    for j, t in enumerate(TIERS):
        grp = has & (tier == j)
        exp_risk4[t] = float((-np.expm1(-rate[grp] * 4.0)).mean()) if grp.any() else None
    # Expected deaths and person-years given the drawn persons, each censored at the end of data:
    # E[D] = 1 - exp(-rate C), E[PT] = E[D] / rate (exponential; death days rounded up add < 1 day).
    cens = (P["end"] - X["day"]) / 365.25
    e_death = -np.expm1(-rate * cens)
    e_pt = e_death / rate
    rate_1000 = {t: float(1000.0 * e_death[g].sum() / e_pt[g].sum()) if (g := has & (tier == j)).any() else None
                 for j, t in enumerate(TIERS)}
    return {"died": died, "death_day": death_day, "hr": hr, "expected_risk_4y": exp_risk4,
            "standardized_risk_4y": std4, "rate_per_1000py": rate_1000}


def _uniform_day(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A day drawn uniformly from [lo, hi] (inclusive), elementwise; requires hi >= lo."""
    return lo + np.floor(rng.random(lo.size) * (hi - lo + 1)).astype(np.int64)


def _diagnoses(rng: np.random.Generator, P: dict, X: dict, O: dict, D: dict, a: dict) -> dict:
    n = P["n"]
    pid_parts, day_parts, code_parts = [], [], []
    idx_day = X["day"]
    last_day = np.minimum(D["death_day"], P["end"])

    def emit(persons: np.ndarray, days: np.ndarray, pool: tuple[str, ...]) -> None:
        pid_parts.append(persons)
        day_parts.append(days)
        codes = np.array(pool, dtype=object)[rng.integers(0, len(pool), persons.size)]
        code_parts.append(codes)

    for o in _OUTCOMES:
        spec = a[o]
        oo = O[o]
        # Incident: first diagnosis in [index+1, min(index+1460, death)].
        ev = np.flatnonzero(oo["event"])
        hi = np.minimum(idx_day[ev] + _WINDOW_DAYS, D["death_day"][ev])
        ev_day = _uniform_day(rng, idx_day[ev] + 1, hi)
        sub = oo.get("subtype")
        if sub is not None:
            is_sub = sub[ev]
            sub_pool = _ICD["hiv"] if o == "viral_infection" else _ICD["acute_leukemia"]
            emit(ev[~is_sub], ev_day[~is_sub], _ICD[o])
            emit(ev[is_sub], ev_day[is_sub], sub_pool)
        else:
            emit(ev, ev_day, _ICD[o])
        # Repeat codes after the first (any time up to death or end of data).
        rep = rng.random(ev.size) < spec["repeat_code_rate"]
        rep &= last_day[ev] > ev_day
        emit(ev[rep], _uniform_day(rng, ev_day[rep] + 1, last_day[ev][rep]), _ICD[o])
        # Prevalent: diagnosed before the index day (at most 10 years before).
        pv = np.flatnonzero(oo["prevalent"])
        lo = np.maximum(P["birth"][pv] + 1, idx_day[pv] - 3650)
        emit(pv, _uniform_day(rng, lo, idx_day[pv] - 1), _ICD[o])
        pv_rep = pv[rng.random(pv.size) < 0.3]
        emit(pv_rep, _uniform_day(rng, idx_day[pv_rep] + 1, last_day[pv_rep]), _ICD[o])
        # Late: first diagnosed well after the 4-year window.
        non = np.flatnonzero(oo["eligible"] & ~oo["event"])
        late = non[(rng.random(non.size) < spec["late_code_rate"])
                   & (last_day[non] >= idx_day[non] + _LATE_GAP_DAYS)]
        emit(late, _uniform_day(rng, idx_day[late] + _LATE_GAP_DAYS, last_day[late]), _ICD[o])
        if o == "viral_infection":
            # Some HIV events also carry Z21 (HIV status) on the same day; Z21
            # lies outside A80-B34, so it does not change the viral outcome.
            hiv = ev[is_sub]
            z = rng.random(hiv.size) < 0.3
            emit(hiv[z], ev_day[is_sub][z], ("Z21",))
    k = rng.poisson(a["background_codes_per_person"], n)
    bg = np.repeat(np.arange(n), k)
    lo = np.maximum(P["entry"][bg] - 1825, P["birth"][bg] + 1)
    emit(bg, _uniform_day(rng, lo, np.maximum(lo, last_day[bg])), _ICD["background"])
    pidx = np.concatenate(pid_parts)
    days = np.concatenate(day_parts)
    codes = np.concatenate(code_parts).astype(str)
    m = a["icd_mess"]
    dotted = _strings.find(codes, ".") >= 0
    trailing = dotted & (rng.random(codes.size) < m["trailing"])
    codes = np.where(trailing, _strings.add(codes, "0"), codes)
    undot = rng.random(codes.size) < m["undotted"]
    codes = np.where(undot, _strings.replace(codes, ".", ""), codes)
    lower = rng.random(codes.size) < m["lowercase"]
    codes = codes.copy()
    codes[lower] = _strings.lower(codes[lower])  # of the few drawn only: same length (ASCII codes)
    order = np.lexsort((codes, days, pidx))
    counts = {
        "codes": int(codes.size),
        "dotted_canonical": int(dotted.sum()),
        "trailing": int(trailing.sum()),
        "undotted": int((undot & dotted).sum()),
        "lowercase": int(lower.sum()),
    }
    return {"pidx": pidx[order], "day": days[order], "code": codes[order].astype(object), "counts": counts}


def _infers_strings() -> bool:
    """Whether pandas makes text columns its string dtype on construction (pandas 3, or pandas 2 so set)."""
    # Asked of pandas itself: reading the option warns in pandas 3 (it is deprecated there).
    return pd.Series(np.array(["a"], dtype=object)).dtype != object


def _object_column(values: np.ndarray) -> pd.Series:
    """An object column of text, as the documented schema (and read_cohort) has it.

    pandas 3 infers its string dtype on construction; going through it and back
    (astype(object)) cost a quarter of the generator's time. Built as object
    directly, with missing values as that round trip leaves them (NaN).
    """
    values = np.asarray(values, dtype=object)
    if _infers_strings():
        missing = values == None  # noqa: E711 - elementwise; NaN stays NaN, the generator makes no other missing value
        if missing.any():
            values = values.copy()
            values[missing] = np.nan
    return pd.Series(values, dtype=object, copy=False)


def _assemble(seed, n, a, P, C, L, X, O, D, G) -> SyntheticCohort:
    pid = P["person_id"]
    persons = pd.DataFrame({
        "person_id": pid,
        "sex": _object_column(np.where(P["male"], "M", "F").astype(object)),
        "birth_date": _to_datetime_days(P["birth"]),
        "duffy_null": P["duffy"],
        "entry_date": _to_datetime_days(P["entry"]),
        "end_of_data": _to_datetime_days(np.full(n, P["end"])),
    })
    row_p = C["pidx"][L["row_cbc"]]
    labs = pd.DataFrame({
        "person_id": pid[row_p],
        "sampled_at": (C["minute"][L["row_cbc"]] * _MIN_NS).view("datetime64[ns]"),
        "code": _object_column(L["code"]),
        "value": _object_column(L["value"]),
        "unit": _object_column(L["unit"]),
    })
    diagnoses = pd.DataFrame({
        "person_id": pid[G["pidx"]],
        "diagnosed_at": _to_datetime_days(G["day"]),
        "code": _object_column(G["code"]),
    })
    died = np.flatnonzero(D["died"])
    deaths = pd.DataFrame({"person_id": pid[died], "died_at": _to_datetime_days(D["death_day"][died])})
    has = X["has"]
    index_ns = np.where(has, X["minute"] * _MIN_NS, np.iinfo(np.int64).min)  # int64 min is NaT
    source = np.full(n, np.nan, dtype=object)
    source[has] = np.where(X["derived"][has], "derived", "direct")
    index = pd.DataFrame({
        "person_id": pid,
        "index_date": index_ns.view("datetime64[ns]"),
        "index_anc_per_ul": X["cells"],
        "index_left_censored": X["censored"],
        "index_tier": pd.Categorical.from_codes(X["tier"], dtype=_TIER_DTYPE),
        "anc_source": _object_column(source),
        "age_at_index": np.where(has, X["age"], np.nan),
    })
    truth = _truth(seed, n, a, P, C, L, X, O, D, G, labs)
    return SyntheticCohort(persons=persons, labs=labs, diagnoses=diagnoses, deaths=deaths, index=index, truth=truth)


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


_STR_COLS = {
    "persons": ["sex"],
    "labs": ["code", "value", "unit"],
    "diagnoses": ["code"],
    "deaths": [],
    "index": ["anc_source"],
}
