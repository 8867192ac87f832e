"""Exceptions and warnings raised by neutrostats.

Every error is a :class:`NeutrostatsError`, itself a :class:`ValueError`, so a
pipeline can catch bad input with one ``except`` clause.  Every warning is a
:class:`NeutrostatsWarning`, so a pipeline can filter them by class, e.g.
``warnings.simplefilter("error", NeutrostatsWarning)``.
"""

from __future__ import annotations

__all__ = [
    "NeutrostatsError",
    "NeutrostatsWarning",
    "DataQualityWarning",
    "ImmortalTimeWarning",
    "SeparationWarning",
    "SmallCellWarning",
    "FirthConvergenceWarning",
    "InfiniteHazardRatioWarning",
    "CoxConvergenceWarning",
    "PoissonConvergenceWarning",
    "NegativeControlWarning",
]


class NeutrostatsError(ValueError):
    """Bad input to a neutrostats function.

    The message names the function, the column, what was expected, what was
    found (with counts and an example) and what to do about it.

    Examples
    --------
    >>> from neutrostats import NeutrostatsError
    >>> issubclass(NeutrostatsError, ValueError)
    True
    """


class NeutrostatsWarning(UserWarning):
    """Base class of every warning neutrostats emits."""


class DataQualityWarning(NeutrostatsWarning):
    """Input data has a problem that was handled but deserves a look."""


class ImmortalTimeWarning(NeutrostatsWarning):
    """A design choice can bias follow-up (e.g. an index at the nadir).

    Choosing the index date by looking at later values (the lowest count of
    the whole record) guarantees survival until that date: the time before it
    is "immortal" and mortality after it is biased.
    """


class SeparationWarning(NeutrostatsWarning):
    """Logistic regression met (quasi-)complete separation.

    A tier (or covariate pattern) with no events, or only events, has no
    finite maximum-likelihood odds ratio; use ``method="firth"``.
    """


class SmallCellWarning(NeutrostatsWarning):
    """A 2x2 table has a cell under 5, where Wald intervals are unreliable."""


class FirthConvergenceWarning(NeutrostatsWarning):
    """Firth's iteration, or a profile-likelihood limit, did not converge."""


class InfiniteHazardRatioWarning(NeutrostatsWarning):
    """A hazard ratio has no finite maximum-likelihood estimate.

    A tier without events (or a covariate that orders the events perfectly)
    makes the Cox partial likelihood monotone: the log hazard ratio runs off
    to -inf or +inf. The estimate is reported as 0 or inf without an
    interval. Merge sparse tiers (fewer tiers); Firth-type penalised Cox
    regression (Heinze & Schemper 2001) is not available in neutrostats.
    """


class CoxConvergenceWarning(NeutrostatsWarning):
    """Newton-Raphson did not converge in the allowed iterations."""


class PoissonConvergenceWarning(NeutrostatsWarning):
    """A Poisson or negative binomial regression (or its dispersion) did not converge."""


class NegativeControlWarning(NeutrostatsWarning):
    """Too few usable negative controls for a trustworthy empirical null.

    Empirical calibration (Schuemie et al. 2014, 2018) estimates the
    systematic-error distribution from negative-control estimates; with fewer
    than about 10 of them (OHDSI studies use dozens), or with some of them
    not estimable and dropped, the fitted mean and spread are themselves very
    uncertain, and calibrated p-values and intervals inherit that.
    """
