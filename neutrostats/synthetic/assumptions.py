"""The generator's assumptions: published odds ratios, default rates and effects, their checks.

Every default is read-only; :func:`~neutrostats.synthetic.generate_cohort` takes
overrides as a mapping and checks them here before anything is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from neutrostats.errors import NeutrostatsError

__all__ = ["DEFAULT_SEED", "DEFAULT_ASSUMPTIONS", "ASSUMPTION_NOTES", "ANDERSEN2016_OR", "TIERS", "TABLES", "OUTCOME_CODE_RANGES"]

#: Seed of the default cohort; the calibration against the published
#: confidence intervals (Andersen 2016) is checked at this seed with
#: 373,820 persons.
DEFAULT_SEED = 2018


#: Andersen 2016 tiers, mildest first (cells/µL, half-open, lower bound in).
TIERS = ("normal", "subnormal", "mild", "moderate_severe")


_CUTS = (1000.0, 1500.0, 1800.0)


_TIER_DTYPE = pd.CategoricalDtype(list(TIERS), ordered=True)


_NONREF = TIERS[1:]


#: Tables written by :func:`write_cohort`, in order (``index`` is truth, not
#: something a real export has).
TABLES = ("persons", "labs", "diagnoses", "deaths", "index")


def _frozen(obj: Any) -> Any:
    """A read-only copy: dicts become ``MappingProxyType``, lists tuples, all the way down."""
    if isinstance(obj, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return tuple(_frozen(v) for v in obj)
    return obj


def _thawed(obj: Any) -> Any:
    """A mutable copy of a :func:`_frozen` mapping (mappings become dicts)."""
    if isinstance(obj, Mapping):
        return {k: _thawed(v) for k, v in obj.items()}
    return obj


#: Published crude ORs with 95% CIs, per tier against ANC >= 1.8 x 10^9/L:
#: Andersen CL et al., J Intern Med 2016;279:566 (doi:10.1111/joim.12489).
#: Read-only (``MappingProxyType``); ``dict(...)`` gives a copy to change.
ANDERSEN2016_OR = _frozen({
    "viral_infection": {
        "subnormal": (2.32, 1.84, 2.91),
        "mild": (2.80, 2.20, 3.57),
        "moderate_severe": (4.77, 3.22, 7.07),
    },
    "hematologic_malignancy": {
        "subnormal": (3.23, 2.35, 4.45),
        "mild": (8.69, 6.58, 11.47),
        "moderate_severe": (46.03, 33.98, 62.35),
    },
})


def _outcome(or_, scale, risk, age, male, prev, late, repeat):
    return {
        "or": dict(zip(_NONREF, or_)),
        "or_scale": scale,
        "baseline_risk": risk,
        "age_log_or_per_decade": age,
        "male_log_or": male,
        "prevalence_at_index": prev,
        "late_code_rate": late,
        "repeat_code_rate": repeat,
    }


#: Every assumption :func:`generate_cohort` accepts, with its default. Nested
#: dicts may be given in part; the rest keeps its default. Read-only
#: (``MappingProxyType`` all the way down).
DEFAULT_ASSUMPTIONS: Mapping[str, Any] = _frozen({
    "share_children": 0.06,
    "share_male": 0.44,
    "share_duffy_null": 0.01,
    "share_derived_only": 0.05,
    "lab_start": "2000-01-01",
    "lab_end": "2012-12-31",
    "end_of_data": "2016-12-31",
    "mean_extra_cbcs": 2.5,
    "mean_cbc_gap_days": 420.0,
    "share_wbc_with_direct_anc": 0.2,
    "anc_median": 4.0,
    "anc_between_sd_log": 0.31,
    "anc_within_cv": 0.26,
    "anc_child_factor": 0.84,
    "anc_duffy_null_factor": 0.65,
    "share_low_anc_disorder": 0.0015,
    "low_anc_median": 1.1,
    "low_anc_between_sd_log": 0.5,
    "viral_infection": _outcome(
        [o for o, _, _ in ANDERSEN2016_OR["viral_infection"].values()],
        "crude", 0.045, -0.10, -0.10, 0.03, 0.02, 0.3,
    ),
    "hematologic_malignancy": _outcome(
        [o for o, _, _ in ANDERSEN2016_OR["hematologic_malignancy"].values()],
        "crude", 0.0143, 0.25, 0.25, 0.004, 0.002, 0.5,
    ),
    "mds": _outcome([2.5, 6.0, 40.0], "conditional", 0.0015, 0.60, 0.40, 0.0005, 0.0005, 0.3),
    "solid_cancer": _outcome([1.0, 1.0, 1.0], "conditional", 0.03, 0.35, 0.10, 0.02, 0.01, 0.5),
    "autoimmune": _outcome([1.0, 1.0, 1.0], "conditional", 0.025, -0.05, -0.50, 0.03, 0.01, 0.5),
    "hiv_share_of_viral": {"normal": 0.01, "subnormal": 0.04, "mild": 0.08, "moderate_severe": 0.15},
    "acute_leukemia_share_of_hematologic": {
        "normal": 0.10, "subnormal": 0.20, "mild": 0.35, "moderate_severe": 0.50,
    },
    "mortality": {
        "rate_per_year": 0.012,
        "age_log_hr_per_decade": math.log(2.2),
        "male_log_hr": math.log(1.4),
        "hr": {"subnormal": 1.3, "mild": 1.8},
        "risk_4y_moderate_severe": 0.56,
    },
    "background_codes_per_person": 1.5,
    "mess": {
        "non_numeric": 0.01,
        "negative": 0.0005,
        "too_high": 0.0005,
        "below_detection": 0.0005,
        "reported_lt_1_5": 0.10,
        "duplicate": 0.005,
    },
    "icd_mess": {"undotted": 0.40, "lowercase": 0.10, "trailing": 0.05},
})


#: What each assumption means and where its default comes from. "Assumption"
#: marks a value not given by the published abstracts.
ASSUMPTION_NOTES: Mapping[str, str] = MappingProxyType({
    "share_children": "Share of persons aged 1-18 y at entry. Assumption; chosen with the ANC "
    "parameters so that about 1% of index counts are < 1.5 x 10^9/L (Andersen 2016) and, "
    "reading Palmblad 2020 (4.9% of children, 1.9% of adults) as the share with any CBC "
    "< 1.5, about 5% of children and 2% of adults have one.",
    "share_male": "Share of men. Assumption (primary-care blood tests are taken more often in women).",
    "share_duffy_null": "Share of Duffy-null persons. Assumption for a Copenhagen population.",
    "share_derived_only": "Share of persons whose labs export only WBC, neutrophil % and band % "
    "(ANC must be derived). Assumption.",
    "lab_start": "First day a CBC can be sampled. Assumption (CopDiff spans 2000-2013).",
    "lab_end": "Last day a CBC can be sampled; with end_of_data 4 years later every index has "
    "full 4-year follow-up. Assumption.",
    "end_of_data": "End of follow-up for the database (same for every person; no emigration). Assumption.",
    "mean_extra_cbcs": "Mean (Poisson) number of CBCs after the first; CBCs after lab_end or "
    "death are dropped. Assumption.",
    "mean_cbc_gap_days": "Mean days between CBCs (1 + exponential). Assumption.",
    "share_wbc_with_direct_anc": "Share of direct-ANC CBCs that also export a WBC row. Assumption.",
    "anc_median": "Median person-mean ANC of adults, x 10^9/L. Assumption, near the adult mean "
    "4.6 +- 1.5 (Mantzaris 2016) for a log-normal.",
    "anc_between_sd_log": "SD of log person-mean ANC. Assumption (with the within-person CV gives "
    "about 1% index counts < 1.5 x 10^9/L).",
    "anc_within_cv": "Within-person CV week to week, 26% (Statland 1978, Am J Clin Pathol 69:48).",
    "anc_child_factor": "Multiplier of the median ANC in children. Assumption (more neutropenia "
    "in children: 4.9% vs 1.9%, Palmblad 2020).",
    "anc_duffy_null_factor": "Multiplier of the median ANC in Duffy-null persons. Assumption, from "
    "the Duffy-null interval 1,210-5,390/uL (Hibbs, Merz et al. 2025).",
    "share_low_anc_disorder": "Share of persons with a chronically low count (left tail; "
    "moderate-severe tier). Assumption.",
    "low_anc_median": "Median person-mean ANC in that sub-population, x 10^9/L. Assumption.",
    "low_anc_between_sd_log": "SD of log person-mean ANC in that sub-population. Assumption.",
    "viral_infection": "Codes A80-B34. ORs: crude ORs of Andersen 2016. baseline_risk: assumption "
    "backed out of the published CI widths. Age/sex effects, prevalence, late and repeat "
    "codes: assumptions.",
    "hematologic_malignancy": "Codes C81-C96. ORs: crude ORs of Andersen 2016. baseline_risk "
    "0.0143 makes the lowest tier's 4-year risk about 40% (published). Other fields: assumptions.",
    "mds": "Myelodysplastic syndrome, D46. All values assumptions (strong association, Andersen 2016).",
    "solid_cancer": "Negative control, C00-C80: conditional OR 1 (Andersen 2016: no association). "
    "Risks and age/sex effects: assumptions.",
    "autoimmune": "Negative control: M05-M06, M32, M35.0, K50-K51, E10, L40, G35 (assumed code "
    "list); conditional OR 1 (Andersen 2016: no association). Other values: assumptions.",
    "hiv_share_of_viral": "Share of incident viral-infection events coded as HIV (B20-B24), per "
    "index tier. Assumption giving the strong HIV association of Andersen 2016.",
    "acute_leukemia_share_of_hematologic": "Share of incident haematological malignancies that "
    "are acute leukaemias (C91.0, C92.0, C92.4, C92.5, C93.0, C94.0, C95.0), per tier. "
    "Assumption giving the strong association of Andersen 2016.",
    "mortality": "Exponential hazard from the index: rate_per_year for a woman aged 60 in the "
    "normal tier, age and sex log-HRs, HRs of subnormal and mild tiers: assumptions. The "
    "moderate-severe HR is solved so that its expected 4-year mortality is "
    "risk_4y_moderate_severe (published: over 50%).",
    "background_codes_per_person": "Mean (Poisson) number of unrelated diagnosis codes per person. Assumption.",
    "mess": "Rates of lab mess (see the README of data/synthetic). All assumptions.",
    "icd_mess": "Shares of ICD-10 codes written undotted, in lower case, or with a trailing '0' "
    "(e.g. C92.00). Assumptions.",
})


_OUTCOMES = ("viral_infection", "hematologic_malignancy", "mds", "solid_cancer", "autoimmune")


_RATE_KEYS = {
    "share_children", "share_male", "share_duffy_null", "share_derived_only",
    "share_wbc_with_direct_anc", "share_low_anc_disorder",
}


_POSITIVE_KEYS = {
    "mean_cbc_gap_days", "anc_median", "anc_between_sd_log", "anc_within_cv", "anc_child_factor",
    "anc_duffy_null_factor", "low_anc_median", "low_anc_between_sd_log",
}


_NONNEG_KEYS = {"mean_extra_cbcs", "background_codes_per_person"}


_DATE_KEYS = ("lab_start", "lab_end", "end_of_data")


_ICD = {
    "viral_infection": ("B34.9", "B00.9", "B01.9", "B02.9", "B27.9", "B15.9", "B16.9", "B17.1",
                        "B18.1", "A87.9", "B08.4", "B05.9", "B06.9", "A90", "B30.9", "B26.9"),
    "hiv": ("B20.9", "B21.0", "B22.7", "B23.8", "B24"),
    "hematologic_malignancy": ("C81.9", "C82.9", "C83.3", "C85.9", "C88.0", "C90.0", "C91.1",
                                  "C92.1", "C95.9", "C96.9", "C84.4", "C90.2"),
    "acute_leukemia": ("C92.0", "C91.0", "C93.0", "C94.0", "C95.0", "C92.4", "C92.5"),
    "mds": ("D46.9", "D46.0", "D46.1", "D46.2", "D46.4", "D46.7"),
    "solid_cancer": ("C18.9", "C34.9", "C50.9", "C61", "C43.9", "C16.9", "C25.9", "C64",
                     "C67.9", "C44.9", "C20", "C73"),
    "autoimmune": ("M05.9", "M06.9", "M32.9", "M35.0", "K50.9", "K51.9", "E10.9", "L40.0", "G35"),
    "background": ("I10", "E11.9", "J06.9", "J45.9", "K21.9", "M54.5", "N39.0", "F32.9", "E78.0",
                   "R10.4", "H10.9", "L20.9", "Z00.0", "I48", "J44.9", "K29.7", "R51", "M17.9",
                   "I25.1", "E03.9", "J18.9", "N18.3", "F41.1", "G43.9"),
}


#: ICD-10 code ranges of each outcome (three-character categories, inclusive),
#: as used in the truth and the README.
OUTCOME_CODE_RANGES: Mapping[str, tuple[str, ...]] = _frozen({
    "viral_infection": ["A80-B34"],
    "hiv": ["B20-B24", "Z21"],
    "hematologic_malignancy": ["C81-C96"],
    "acute_leukemia": ["C91.0", "C92.0", "C92.4", "C92.5", "C93.0", "C94.0", "C95.0"],
    "mds": ["D46"],
    "solid_cancer": ["C00-C80"],
    "autoimmune": ["M05-M06", "M32", "M35.0", "K50-K51", "E10", "L40", "G35"],
})


def _fail(msg: str) -> None:
    raise NeutrostatsError(f"generate_cohort: {msg}")


def _merge(key: str, default: Any, given: Any) -> Any:
    if isinstance(default, Mapping):
        if not isinstance(given, Mapping):
            _fail(f"assumption {key!r} must be a dict with keys {sorted(default)}, found {given!r}")
        unknown = sorted(set(given) - set(default))
        if unknown:
            _fail(
                f"assumption {key!r} has unknown keys {unknown}; valid keys are {sorted(default)}"
            )
        out = _thawed(default)
        for k, v in given.items():
            out[k] = _merge(f"{key}.{k}", default[k], v)
        return out
    return given


def _check_rate(name: str, v: Any, *, open_low: bool = False, open_high: bool = False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        x = float("nan")
    lo_ok = x > 0 if open_low else x >= 0
    hi_ok = x < 1 if open_high else x <= 1
    if not (np.isfinite(x) and lo_ok and hi_ok):
        lo = "(0" if open_low else "[0"
        hi = "1)" if open_high else "1]"
        _fail(f"assumption {name!r} must be a number in {lo}, {hi}, found {v!r}")
    return x


def _check_positive(name: str, v: Any, *, allow_zero: bool = False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        x = float("nan")
    if not (np.isfinite(x) and (x >= 0 if allow_zero else x > 0)):
        what = "a non-negative" if allow_zero else "a positive"
        _fail(f"assumption {name!r} must be {what} finite number, found {v!r}")
    return x


def _check_finite(name: str, v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        x = float("nan")
    if not np.isfinite(x):
        _fail(f"assumption {name!r} must be a finite number, found {v!r}")
    return x


def _resolve_assumptions(given: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(DEFAULT_ASSUMPTIONS))
    if unknown:
        _fail(
            f"unknown assumption(s) {unknown}; valid assumptions are {sorted(DEFAULT_ASSUMPTIONS)} "
            "(see neutrostats.synthetic.ASSUMPTION_NOTES)"
        )
    a = {k: _merge(k, v, given[k]) if k in given else _thawed(v) for k, v in DEFAULT_ASSUMPTIONS.items()}
    for k in _RATE_KEYS:
        a[k] = _check_rate(k, a[k])
    for k in _POSITIVE_KEYS:
        a[k] = _check_positive(k, a[k])
    for k in _NONNEG_KEYS:
        a[k] = _check_positive(k, a[k], allow_zero=True)
    for k in _DATE_KEYS:
        try:
            a[k] = pd.Timestamp(a[k]).strftime("%Y-%m-%d")
        except (TypeError, ValueError):
            _fail(f"assumption {k!r} must be a date such as '2000-01-01', found {a[k]!r}")
    if not a["lab_start"] <= a["lab_end"] < a["end_of_data"]:
        _fail(
            f"expected lab_start <= lab_end < end_of_data, found {a['lab_start']}, {a['lab_end']}, "
            f"{a['end_of_data']}"
        )
    for o in _OUTCOMES:
        spec = a[o]
        if spec["or_scale"] not in ("crude", "conditional"):
            _fail(f"assumption '{o}.or_scale' must be 'crude' or 'conditional', found {spec['or_scale']!r}")
        for t in _NONREF:
            spec["or"][t] = _check_positive(f"{o}.or.{t}", spec["or"][t])
        spec["baseline_risk"] = _check_rate(f"{o}.baseline_risk", spec["baseline_risk"], open_low=True, open_high=True)
        for k in ("prevalence_at_index", "late_code_rate", "repeat_code_rate"):
            spec[k] = _check_rate(f"{o}.{k}", spec[k])
        for k in ("age_log_or_per_decade", "male_log_or"):
            spec[k] = _check_finite(f"{o}.{k}", spec[k])
    for k in ("hiv_share_of_viral", "acute_leukemia_share_of_hematologic"):
        for t in TIERS:
            a[k][t] = _check_rate(f"{k}.{t}", a[k][t])
    m = a["mortality"]
    m["rate_per_year"] = _check_positive("mortality.rate_per_year", m["rate_per_year"])
    for k in ("age_log_hr_per_decade", "male_log_hr"):
        m[k] = _check_finite(f"mortality.{k}", m[k])
    for t in ("subnormal", "mild"):
        m["hr"][t] = _check_positive(f"mortality.hr.{t}", m["hr"][t])
    m["risk_4y_moderate_severe"] = _check_rate(
        "mortality.risk_4y_moderate_severe", m["risk_4y_moderate_severe"], open_low=True, open_high=True
    )
    for k in a["mess"]:
        a["mess"][k] = _check_rate(f"mess.{k}", a["mess"][k])
    row_mess = sum(a["mess"][k] for k in ("non_numeric", "negative", "too_high", "below_detection"))
    if row_mess > 1:
        _fail(f"mess rates non_numeric + negative + too_high + below_detection must not exceed 1, found {row_mess}")
    for k in a["icd_mess"]:
        a["icd_mess"][k] = _check_rate(f"icd_mess.{k}", a["icd_mess"][k])
    return a


# (spelling, factor to cells/uL); weights sum to 1. The common spellings of
# both scales appear (per µL and per mm³; 10^3/µL = 10^9/L, UCUM included).
_UNITS = (
    ("10^9/L", 1000, 0.30), ("x10^9/L", 1000, 0.08), ("10*9/L", 1000, 0.04), ("G/L", 1000, 0.05),
    ("10e9/L", 1000, 0.02), ("K/uL", 1000, 0.12), ("10^3/uL", 1000, 0.06), ("10*3/uL", 1000, 0.05),
    ("x10E3/uL", 1000, 0.03), ("thou/uL", 1000, 0.02), ("10^3/mm3", 1000, 0.02),
    ("cells/uL", 1, 0.06), ("/uL", 1, 0.03), ("cells/µL", 1, 0.04), ("/µL", 1, 0.02),
    ("cells/mm3", 1, 0.02), ("/mm3", 1, 0.02), ("cells/mm³", 1, 0.02),
)


_NON_NUMERIC = ("see comment", "clotted", "", "NA")
