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

from .associations import (
    MantelHaenszel,
    OddsRatio,
    mantel_haenszel,
    odds_ratio,
    odds_ratio_table,
    odds_ratios_by_tier,
    plot_forest,
    trend_test,
)
from .cohort import Cohort, build_cohort
from .competing import cumulative_incidence, gray_test, plot_cumulative_incidence
from .cox import CoxFit, cox_fit, cox_hazard_ratios, proportional_hazards_test
from .errors import (
    DataQualityWarning,
    ImmortalTimeWarning,
    NeutrostatsError,
    NeutrostatsWarning,
    SeparationWarning,
    SmallCellWarning,
)
from .severity import (
    ANC_FLAGS,
    SCHEMES,
    Scheme,
    classify_anc,
    get_scheme,
    tier_summary,
)
from .dates import parse_dates
from .io import cbc_to_long
from .fhir import FhirData, read_fhir
from .mimic import MimicData, read_mimic_iv
from .omop import OmopData, read_omop
from .tableone import TableOne, table_one
from .survival import (
    LogrankTest,
    at_risk_table,
    kaplan_meier,
    logrank_test,
    plot_km,
    restricted_mean_survival,
    survival_at,
)
from .units import derive_anc, normalize_units, parse_lab_values

__version__ = "0.1.0"

__all__ = [
    "ANC_FLAGS",
    "SCHEMES",
    "Cohort",
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
