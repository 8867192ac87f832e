"""Estimators: odds ratios (crude, exact, mid-p, adjusted, Firth), Kaplan-Meier, log-rank, Cox, competing risks, Table 1.

Each module lists its public names in ``__all__``; this package re-exports
them all.
"""

from __future__ import annotations

from neutrostats.stats import odds_ratios
from neutrostats.stats import firth
from neutrostats.stats import survival
from neutrostats.stats import cox
from neutrostats.stats import coxmodel
from neutrostats.stats import competing
from neutrostats.stats import finegray
from neutrostats.stats import tableone
from neutrostats.stats import bias
from neutrostats.stats import standardize
from neutrostats.stats import rates
from neutrostats.stats import timevarying
from neutrostats.stats.odds_ratios import *  # noqa: F401,F403  (the names of odds_ratios.__all__)
from neutrostats.stats.firth import *  # noqa: F401,F403  (the names of firth.__all__)
from neutrostats.stats.survival import *  # noqa: F401,F403  (the names of survival.__all__)
from neutrostats.stats.cox import *  # noqa: F401,F403  (the names of cox.__all__)
from neutrostats.stats.coxmodel import *  # noqa: F401,F403  (the names of coxmodel.__all__)
from neutrostats.stats.competing import *  # noqa: F401,F403  (the names of competing.__all__)
from neutrostats.stats.finegray import *  # noqa: F401,F403  (the names of finegray.__all__)
from neutrostats.stats.tableone import *  # noqa: F401,F403  (the names of tableone.__all__)
from neutrostats.stats.bias import *  # noqa: F401,F403  (the names of bias.__all__)
from neutrostats.stats.standardize import *  # noqa: F401,F403  (the names of standardize.__all__)
from neutrostats.stats.rates import *  # noqa: F401,F403  (the names of rates.__all__)
from neutrostats.stats.timevarying import *  # noqa: F401,F403  (the names of timevarying.__all__)

__all__ = [*odds_ratios.__all__, *firth.__all__, *survival.__all__, *cox.__all__, *coxmodel.__all__, *competing.__all__, *finegray.__all__, *tableone.__all__, *bias.__all__, *standardize.__all__, *rates.__all__, *timevarying.__all__]
