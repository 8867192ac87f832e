"""Synthetic retrospective neutropenia cohorts with known truth.

:func:`generate_cohort` builds the four tables a retrospective study of
neutropenia starts from -- ``persons``, ``labs`` (long format, lab strings as
exported), ``diagnoses`` (ICD-10) and ``deaths`` -- together with the truth
that made them: the index measurement of every person and a JSON-ready dict of
every generating parameter. The defaults reproduce the crude odds ratios of
the Copenhagen primary-care differential-count database (CopDiff; Andersen et
al., J Intern Med 2016;279:566) and carry documented kinds of real-data mess,
so that a whole pipeline (units, censored strings, derived ANC, index date,
outcome windows, survival) can be checked against known answers.

The model, in order:

1. **Persons.** Age at entry (children 1-18 y and adults 19-90 y), sex,
   Duffy-null phenotype, and the lab layout: most persons have a direct ANC,
   some only WBC + neutrophil % + band % (the ANC must be derived).
2. **Blood counts.** Several CBCs per person over years. log ANC = person mean
   + within-person noise (CV 26 % week to week, Statland 1978). Person means
   are log-normal around the adult median, lower in children and Duffy-null
   persons, with a small sub-population with a chronically low count (the
   left tail that gives the moderate-severe tier).
3. **Mess.** Unit spellings, non-numeric results, censored strings, impossible
   values and duplicated rows at documented rates.
4. **Index.** The first *valid* ANC measurement as a correct classifier would
   read it (messy rows skipped; ``"<0.1"`` is moderate-severe; ``"<1.5"``
   spans tiers and is not valid). Outcomes and deaths depend on this
   *observed* index tier, as the published crude ORs do.
5. **Outcomes.** For each outcome a logistic model of a first diagnosis in
   (index, index + 4 years] on the index tier, age and sex, among persons
   without the diagnosis before the index (prevalent cases get an earlier
   date). For outcomes whose ORs are published as crude ORs (viral infection,
   haematological malignancy) the tier coefficients are solved so that the
   expected crude OR in the generated cohort equals the published OR; the
   conditional (age- and sex-adjusted) ORs used are recorded in the truth.
   HIV is a sub-type of viral infection (B20-B24 lie in A80-B34) and acute
   leukaemia a sub-type of haematological malignancy, with a share that grows
   steeply with the tier, so both are strongly associated.
6. **Deaths.** Exponential survival from the index with hazard ratios for
   tier, age and sex; the lowest tier's hazard ratio is solved so that its
   expected 4-year mortality is the target (over 50 %, as published).

Examples
--------
>>> from neutrostats.synthetic import generate_cohort
>>> cohort = generate_cohort(n_persons=300, seed=7)
>>> sorted(cohort.tables)
['deaths', 'diagnoses', 'labs', 'persons']
>>> cohort.labs.dtypes.astype(str).to_dict()
{'person_id': 'int64', 'sampled_at': 'datetime64[ns]', 'code': 'object', 'value': 'object', 'unit': 'object'}
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit
from tqdm import tqdm

from neutrostats.errors import NeutrostatsError

# numpy >= 2 has the string ufuncs as np.strings; numpy 1.26 (the oldest supported) as np.char.
_strings: Any = getattr(np, "strings", np.char)

__all__ = [
    "SyntheticCohort",
    "generate_cohort",
    "write_cohort",
    "read_cohort",
    "load_sample",
    "sample_dir",
    "DEFAULT_SEED",
    "DEFAULT_ASSUMPTIONS",
    "ASSUMPTION_NOTES",
    "ANDERSEN2016_OR",
    "TIERS",
    "TABLES",
    "OUTCOME_CODE_RANGES",
]

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

# ---------------------------------------------------------------------------
# Assumptions
# ---------------------------------------------------------------------------


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

# ---------------------------------------------------------------------------
# Codes and spellings
# ---------------------------------------------------------------------------

# (spelling, factor to cells/uL); weights sum to 1. The common spellings of
# both scales appear (per µL and per mm³; 10^3/µL = 10^9/L, UCUM included).
_UNITS = (
    ("10^9/L", 1000, 0.30), ("x10^9/L", 1000, 0.08), ("10*9/L", 1000, 0.04), ("G/L", 1000, 0.05),
    ("10e9/L", 1000, 0.02), ("K/uL", 1000, 0.12), ("10^3/uL", 1000, 0.06), ("10*3/uL", 1000, 0.05),
    ("x10E3/uL", 1000, 0.03), ("thou/uL", 1000, 0.02), ("10^3/mm3", 1000, 0.02),
    ("cells/uL", 1, 0.06), ("/uL", 1, 0.03), ("cells/µL", 1, 0.04), ("/µL", 1, 0.02),
    ("cells/mm3", 1, 0.02), ("/mm3", 1, 0.02), ("cells/mm³", 1, 0.02),
)
_UNIT_NAMES = np.array([u for u, _, _ in _UNITS], dtype=object)
_UNIT_IS_CELLS = np.array([f == 1 for _, f, _ in _UNITS])
_UNIT_P = np.array([w for _, _, w in _UNITS])
_ANC_CODES = (("751-8", 0.85), ("753-4", 0.10), ("26499-4", 0.05))
_NEUT_CODES = (("770-8", 0.8), ("26511-6", 0.2))
_NON_NUMERIC = ("see comment", "clotted", "", "NA")

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


# ---------------------------------------------------------------------------
# Small vectorised helpers
# ---------------------------------------------------------------------------


def _choice(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with probabilities ``p`` (one uniform per draw)."""
    cum = np.cumsum(p)
    cum[-1] = 1.0
    return np.searchsorted(cum, rng.random(size), side="right")


def _fmt_fixed(v: np.ndarray, decimals: int) -> np.ndarray:
    """Format non-negative integers ``v`` (in units of 10**-decimals) as decimal strings."""
    v = np.asarray(v, dtype=np.int64)
    if v.size == 0:
        return np.array([], dtype=str)  # np.strings.zfill fails on empty input (numpy 2.4)
    scale = 10**decimals
    whole = (v // scale).astype(str)
    frac = _strings.zfill((v % scale).astype(str), decimals)
    return _strings.add(_strings.add(whole, "."), frac)


def _fmt_count(v: np.ndarray, per_ul: np.ndarray) -> np.ndarray:
    """Display strings: whole cells/uL where ``per_ul``, else hundredths of 10^9/L."""
    out = np.empty(v.size, dtype=object)
    out[per_ul] = np.asarray(v)[per_ul].astype(str)
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
        Show a tqdm progress bar on stderr. ``None``: only when stderr is a
        terminal.
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
    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    rng = np.random.default_rng(seed)

    steps = ("persons", "blood counts", "lab mess", "index", "outcomes", "deaths", "diagnoses", "tables")
    with tqdm(total=len(steps), desc="generate_cohort", unit="step", disable=not progress, leave=False) as bar:
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
    band_str[derived] = band[derived].astype(str)
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
        out[o] = {"prevalent": prevalent, "eligible": eligible, "event": event, "alpha": alpha,
                  "beta": beta, "expected_risk": exp_risk, "expected_crude_or": exp_or}
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
    return {"died": died, "death_day": death_day, "hr": hr, "expected_risk_4y": exp_risk4}


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
    codes = np.where(lower, _strings.lower(codes), codes)
    order = np.lexsort((codes, days, pidx))
    counts = {
        "codes": int(codes.size),
        "dotted_canonical": int(dotted.sum()),
        "trailing": int(trailing.sum()),
        "undotted": int((undot & dotted).sum()),
        "lowercase": int(lower.sum()),
    }
    return {"pidx": pidx[order], "day": days[order], "code": codes[order].astype(object), "counts": counts}


def _assemble(seed, n, a, P, C, L, X, O, D, G) -> SyntheticCohort:
    pid = P["person_id"]
    persons = pd.DataFrame({
        "person_id": pid,
        "sex": np.where(P["male"], "M", "F").astype(object),
        "birth_date": _to_datetime_days(P["birth"]),
        "duffy_null": P["duffy"],
        "entry_date": _to_datetime_days(P["entry"]),
        "end_of_data": _to_datetime_days(np.full(n, P["end"])),
    })
    row_p = C["pidx"][L["row_cbc"]]
    labs = pd.DataFrame({
        "person_id": pid[row_p],
        "sampled_at": (C["minute"][L["row_cbc"]] * _MIN_NS).view("datetime64[ns]"),
        "code": L["code"],
        "value": L["value"],
        "unit": L["unit"],
    })
    diagnoses = pd.DataFrame({
        "person_id": pid[G["pidx"]],
        "diagnosed_at": _to_datetime_days(G["day"]),
        "code": G["code"],
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
        "anc_source": source,
        "age_at_index": np.where(has, X["age"], np.nan),
    })
    truth = _truth(seed, n, a, P, C, L, X, O, D, G, labs)
    for name, df in (("persons", persons), ("labs", labs), ("diagnoses", diagnoses), ("index", index)):
        for c in _STR_COLS[name]:
            # pandas 3 infers its string dtype on construction; the documented
            # schema (and read_cohort) is object, kept by assignment.
            df[c] = df[c].astype(object)
    return SyntheticCohort(persons=persons, labs=labs, diagnoses=diagnoses, deaths=deaths, index=index, truth=truth)


def _truth_outcomes(a: dict, O: dict, tier: np.ndarray) -> dict:
    """The truth of each outcome: its codes, target and published ORs, the solved model and realised counts."""
    outcomes = {}
    for o in _OUTCOMES:
        spec = a[o]
        oo = O[o]
        outcomes[o] = {
            "code_ranges": list(OUTCOME_CODE_RANGES[o]),
            "or_scale": spec["or_scale"],
            "target_or": dict(spec["or"]),
            "published_or_95ci": (
                {t: list(v) for t, v in ANDERSEN2016_OR[o].items()} if o in ANDERSEN2016_OR else None
            ),
            "baseline_risk": spec["baseline_risk"],
            "intercept": oo["alpha"],
            "conditional_log_or": {t: float(oo["beta"][j]) for j, t in enumerate(TIERS) if j > 0},
            "conditional_or": {t: float(math.exp(oo["beta"][j])) for j, t in enumerate(TIERS) if j > 0},
            "age_log_or_per_decade": spec["age_log_or_per_decade"],
            "male_log_or": spec["male_log_or"],
            "expected_risk_4y": oo["expected_risk"],
            "expected_crude_or": oo["expected_crude_or"],
            "prevalence_at_index": spec["prevalence_at_index"],
            "late_code_rate": spec["late_code_rate"],
            "repeat_code_rate": spec["repeat_code_rate"],
            "n_prevalent": int(oo["prevalent"].sum()),
            "n_events": {t: int((oo["event"] & (tier == j)).sum()) for j, t in enumerate(TIERS)},
        }
    return outcomes


def _truth(seed, n, a, P, C, L, X, O, D, G, labs) -> dict:
    tier = X["tier"]
    has = X["has"]
    outcomes = _truth_outcomes(a, O, tier)
    tier_counts = {t: int((tier == j).sum()) for j, t in enumerate(TIERS)}
    hr = D["hr"]
    child = P["child"]
    return {
        "generator": "neutrostats.synthetic.generate_cohort",
        "seed": seed,
        "n_persons": n,
        "numpy_version": np.__version__,
        "tier_scheme": "andersen2016",
        "tiers": list(TIERS),
        "tier_cuts_per_ul": list(_CUTS),
        "index_definition": (
            "first valid ANC measurement per person (direct 751-8/753-4/26499-4, or WBC x "
            "(neutrophil % + band %) / 100 when a person has no direct ANC); non-numeric, negative, "
            "> 100,000/uL and '<1.5' (spans tiers) are not valid; '<0.1' is moderate_severe"
        ),
        "outcome_definition": (
            "first diagnosis in (index, index + 4 years]; incident diagnoses fall on days "
            "index+1 .. index+1460; prevalent diagnoses on or before the index day are excluded; "
            "late codes fall on or after index+1480 days"
        ),
        "age_definition": "age_at_index = (index day - birth day) / 365.25; covariate (age - 50) / 10",
        "outcomes": outcomes,
        "subtypes": {
            "hiv": {"parent": "viral_infection", "code_ranges": ["B20-B24"],
                    "share_of_parent_events_by_tier": dict(a["hiv_share_of_viral"])},
            "acute_leukemia": {"parent": "hematologic_malignancy",
                                "code_ranges": list(OUTCOME_CODE_RANGES["acute_leukemia"]),
                                "share_of_parent_events_by_tier": dict(a["acute_leukemia_share_of_hematologic"])},
        },
        "mortality": {
            "model": "exponential hazard from the index day (entry day without index); "
                     "rate = rate_per_year * exp(age_log_hr_per_decade * (age - 60) / 10 + male_log_hr * male) * hr[tier]",
            "rate_per_year": a["mortality"]["rate_per_year"],
            "age_log_hr_per_decade": a["mortality"]["age_log_hr_per_decade"],
            "male_log_hr": a["mortality"]["male_log_hr"],
            "hr": {t: float(hr[j]) for j, t in enumerate(TIERS)},
            "risk_4y_moderate_severe_target": a["mortality"]["risk_4y_moderate_severe"],
            "expected_risk_4y": D["expected_risk_4y"],
        },
        "mess": {
            "rates": dict(a["mess"]),
            "icd_rates": dict(a["icd_mess"]),
            "non_numeric_strings": list(_NON_NUMERIC),
            "units": {u: {"factor_to_cells_per_ul": f, "weight": w} for u, f, w in _UNITS},
            "counts": L["counts"],
            "icd_counts": G["counts"],
        },
        "assumptions": a,
        "assumption_notes": dict(ASSUMPTION_NOTES),
        "realised": {
            "n_persons": n,
            "n_children": int(child.sum()),
            "n_cbcs": L["counts"]["anc_measurement_rows"],
            "n_lab_rows": int(len(labs)),
            "n_with_index": int(has.sum()),
            "index_tier_counts": tier_counts,
            "index_tier_counts_children": {t: int(((tier == j) & child).sum()) for j, t in enumerate(TIERS)},
            "n_deaths": int(D["died"].sum()),
            "n_diagnoses": int(G["pidx"].size),
        },
    }


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
            dtypes = {c: str for c in _STR_COLS[name]}
            # Only the truth index has missing values; elsewhere text such as
            # "" or "NA" (a lab result) is data and must stay a string.
            na = {} if name == "index" else {"keep_default_na": False, "na_filter": False}
            # pandas 3 parses floats exactly by default and deprecates the option.
            exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
            df = pd.read_csv(d / f"{name}.csv.gz", dtype=dtypes, encoding="utf-8", **exact, **na)  # type: ignore[call-overload]
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
    return Path(__file__).resolve().parent.parent / "data" / "synthetic"


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
