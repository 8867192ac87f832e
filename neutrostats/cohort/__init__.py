"""The cohort: persons, the lab reduction (pandas and SQL engines), index choice, follow-up, outcomes and flow."""

from __future__ import annotations

from neutrostats.cohort.build import (
    Cohort,
    build_cohort,
    INDEX_STRATEGIES,
    DAYS_PER_YEAR,
)
from neutrostats.cohort.icd10 import (
    ICD10_OUTCOMES,
    DEFAULT_OUTCOMES,
    normalize_icd10,
    validate_code_sets,
    match_icd10,
)

__all__ = [
    "Cohort",
    "build_cohort",
    "INDEX_STRATEGIES",
    "DAYS_PER_YEAR",
    "ICD10_OUTCOMES",
    "DEFAULT_OUTCOMES",
    "normalize_icd10",
    "validate_code_sets",
    "match_icd10",
]
