"""neutrostats: retrospective cohort studies of neutropenia.

Pure functions from raw lab tables to ANC severity tiers (and, in later
releases, cohorts, odds ratios and survival). Importing the package does not
import matplotlib.

Examples
--------
>>> import pandas as pd, neutrostats as ns
>>> labs = pd.DataFrame({"value": ["1.2", "<0.1"], "unit": ["10^9/L", "10^9/L"]})
>>> ns.classify_anc(labs, scheme="andersen2016")["tier"].tolist()
['mild', 'moderate_severe']
"""

from .errors import DataQualityWarning, NeutrostatsError, NeutrostatsWarning
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
    "DataQualityWarning",
    "NeutrostatsError",
    "NeutrostatsWarning",
    "Scheme",
    "classify_anc",
    "derive_anc",
    "get_scheme",
    "normalize_units",
    "parse_lab_values",
    "tier_summary",
]
