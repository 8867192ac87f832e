"""Estimators: odds ratios (crude, exact, mid-p, adjusted, Firth), Kaplan-Meier, log-rank, Cox, competing risks, Table 1."""

from __future__ import annotations

from neutrostats.stats.odds_ratios import (
    OddsRatio,
    OR_METHODS,
    OR_COLUMNS,
    odds_ratio,
    odds_ratios_by_tier,
    odds_ratio_table,
    trend_test,
    mantel_haenszel,
    MantelHaenszel,
    natural_spline_basis,
)
from neutrostats.stats.firth import (
    FirthConvergenceWarning,
    FirthResult,
    firth_logit,
)
from neutrostats.stats.survival import (
    KM_COLUMNS,
    kaplan_meier,
    survival_at,
    restricted_mean_survival,
    LogrankTest,
    logrank_test,
    at_risk_table,
)
from neutrostats.stats.cox import (
    COX_COLUMNS,
    PH_TEST_COLUMNS,
    ChiSquareTest,
    CoxFit,
    cox_fit,
    cox_hazard_ratios,
    proportional_hazards_test,
    InfiniteHazardRatioWarning,
    CoxConvergenceWarning,
)
from neutrostats.stats.competing import (
    CI_COLUMNS,
    GRAY_COLUMNS,
    cumulative_incidence,
    gray_test,
)
from neutrostats.stats.tableone import (
    TableOne,
    table_one,
    OVERALL,
)

__all__ = [
    "OddsRatio",
    "OR_METHODS",
    "OR_COLUMNS",
    "odds_ratio",
    "odds_ratios_by_tier",
    "odds_ratio_table",
    "trend_test",
    "mantel_haenszel",
    "MantelHaenszel",
    "natural_spline_basis",
    "FirthConvergenceWarning",
    "FirthResult",
    "firth_logit",
    "KM_COLUMNS",
    "kaplan_meier",
    "survival_at",
    "restricted_mean_survival",
    "LogrankTest",
    "logrank_test",
    "at_risk_table",
    "COX_COLUMNS",
    "PH_TEST_COLUMNS",
    "ChiSquareTest",
    "CoxFit",
    "cox_fit",
    "cox_hazard_ratios",
    "proportional_hazards_test",
    "InfiniteHazardRatioWarning",
    "CoxConvergenceWarning",
    "CI_COLUMNS",
    "GRAY_COLUMNS",
    "cumulative_incidence",
    "gray_test",
    "TableOne",
    "table_one",
    "OVERALL",
]
