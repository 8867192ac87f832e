"""Estimators: odds ratios (crude, exact, mid-p, adjusted, Firth), Kaplan-Meier, log-rank, Cox, competing risks, Table 1.

Each module lists its public names in ``__all__``; this package re-exports
them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from neutrostats.stats import odds_ratios
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

if TYPE_CHECKING:  # for type checkers and the API reference; at run time __getattr__ loads them
    from neutrostats.stats import firth
    from neutrostats.stats.firth import FirthConvergenceWarning, FirthResult, firth_logit  # noqa: F401

#: The names of neutrostats.stats.firth.__all__: that module imports scipy.stats, scipy.optimize and
#: scipy.linalg when it loads, so it loads at the first of these names looked up (``__getattr__``),
#: not with neutrostats. odds_ratios_by_tier(method="firth") imports it where it calls it.
_FIRTH_NAMES = ("FirthConvergenceWarning", "FirthResult", "firth_logit")

__all__ = [*odds_ratios.__all__, "FirthConvergenceWarning", "FirthResult", "firth_logit", *survival.__all__, *cox.__all__, *coxmodel.__all__, *competing.__all__, *finegray.__all__, *tableone.__all__, *bias.__all__, *standardize.__all__, *rates.__all__, *timevarying.__all__]


def __getattr__(name: str) -> Any:
    if name == "firth" or name in _FIRTH_NAMES:
        firth = importlib.import_module("neutrostats.stats.firth")
        globals().update({n: getattr(firth, n) for n in _FIRTH_NAMES})
        return firth if name == "firth" else getattr(firth, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
