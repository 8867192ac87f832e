"""neutrostats: retrospective cohort studies of neutropenia.

Pure functions from raw lab tables to ANC severity tiers, cohorts, odds
ratios, survival and competing risks, Table 1, and a one-call report
(:mod:`neutrostats.report`). Importing the package does not
import matplotlib.

Examples
--------
>>> import pandas as pd, neutrostats as ns
>>> labs = pd.DataFrame({"value": ["1.2", "<0.1"], "unit": ["10^9/L", "10^9/L"]})
>>> ns.classify_anc(labs, scheme="andersen2016")["tier"].tolist()
['mild', 'moderate_severe']
"""
# One import per layer, in the order of the data flow (see README "Layout").
from neutrostats._version import __version__
from neutrostats.errors import (
    DataQualityWarning,
    ImmortalTimeWarning,
    NeutrostatsError,
    NeutrostatsWarning,
    SeparationWarning,
    SmallCellWarning,
)
from neutrostats.core.dates import parse_dates
from neutrostats.labs import (
    ANC_FLAGS,
    SCHEMES,
    Scheme,
    classify_anc,
    derive_anc,
    get_scheme,
    normalize_units,
    parse_lab_values,
    tier_summary,
)
from neutrostats.cohort import Cohort, Labels, build_cohort, labels_for
from neutrostats.stats import (
    CoxFit,
    LogrankTest,
    MantelHaenszel,
    OddsRatio,
    TableOne,
    at_risk_table,
    cox_fit,
    cox_hazard_ratios,
    cumulative_incidence,
    cumulative_incidence_at,
    gray_test,
    kaplan_meier,
    logrank_test,
    mantel_haenszel,
    odds_ratio,
    odds_ratio_table,
    odds_ratios_by_tier,
    proportional_hazards_test,
    restricted_mean_survival,
    survival_at,
    table_one,
    trend_test,
)
from neutrostats.io import FhirData, MimicData, OmopData, cbc_to_long, read_fhir, read_mimic_iv, read_omop
from neutrostats.plotting import plot_cumulative_incidence, plot_forest, plot_km

__all__ = [
    "labels_for",
    "ANC_FLAGS",
    "SCHEMES",
    "Cohort",
    "Labels",
    "CoxFit",
    "DataQualityWarning",
    "FhirData",
    "ImmortalTimeWarning",
    "LogrankTest",
    "MantelHaenszel",
    "MimicData",
    "NeutrostatsError",
    "NeutrostatsWarning",
    "OddsRatio",
    "OmopData",
    "Scheme",
    "SeparationWarning",
    "SmallCellWarning",
    "TableOne",
    "at_risk_table",
    "build_cohort",
    "cbc_to_long",
    "classify_anc",
    "cox_fit",
    "cox_hazard_ratios",
    "cumulative_incidence",
    "cumulative_incidence_at",
    "derive_anc",
    "get_scheme",
    "gray_test",
    "kaplan_meier",
    "logrank_test",
    "mantel_haenszel",
    "normalize_units",
    "odds_ratio",
    "odds_ratio_table",
    "odds_ratios_by_tier",
    "parse_dates",
    "parse_lab_values",
    "plot_cumulative_incidence",
    "plot_forest",
    "plot_km",
    "proportional_hazards_test",
    "read_fhir",
    "read_mimic_iv",
    "read_omop",
    "restricted_mean_survival",
    "survival_at",
    "table_one",
    "tier_summary",
    "trend_test",
]
