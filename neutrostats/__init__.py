"""neutrostats: retrospective cohort studies of neutropenia.

Pure functions from raw lab tables to ANC severity tiers and cohorts (and, in
later releases, odds ratios and survival). Importing the package does not
import matplotlib.

Examples
--------
>>> import pandas as pd, neutrostats as ns
>>> labs = pd.DataFrame({"value": ["1.2", "<0.1"], "unit": ["10^9/L", "10^9/L"]})
>>> ns.classify_anc(labs, scheme="andersen2016")["tier"].tolist()
['mild', 'moderate_severe']
"""

from .cohort import Cohort, build_cohort
from .errors import DataQualityWarning, ImmortalTimeWarning, NeutrostatsError, NeutrostatsWarning
from .severity import (
    ANC_FLAGS,
    SCHEMES,
    Scheme,
    classify_anc,
    get_scheme,
    tier_summary,
)
from .units import derive_anc, normalize_units, parse_lab_values

__version__ = "0.1.0"

__all__ = [
    "ANC_FLAGS",
    "SCHEMES",
    "Cohort",
    "DataQualityWarning",
    "ImmortalTimeWarning",
    "NeutrostatsError",
    "NeutrostatsWarning",
    "Scheme",
    "build_cohort",
    "classify_anc",
    "derive_anc",
    "get_scheme",
    "normalize_units",
    "parse_lab_values",
    "tier_summary",
]
