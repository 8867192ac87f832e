"""Competing-risks data where the Fine–Gray model holds, with the truth (Fine & Gray 1999, section 5).

The cumulative incidence of cause 1 given covariates ``Z`` is

    P(T <= t, cause 1 | Z) = 1 - [1 - p (1 - exp(-t))] ** exp(Z' b1),

so the subdistribution hazard of cause 1 is proportional with log ratios
``b1``; cause 2 happens otherwise (with probability
``(1 - p) ** exp(Z' b1)``), its time exponential with rate ``exp(Z' b2)``.
Covariates: a four-level tier factor (ordered Categorical, mildest first),
an age-like number and sex. Used by the coverage test of
:func:`neutrostats.stats.finegray.fine_gray`.

References
----------
.. [1] Fine JP, Gray RJ. A proportional hazards model for the subdistribution
   of a competing risk. J Am Stat Assoc 1999;94:496-509, section 5.

Examples
--------
>>> sim = simulate_fine_gray(2000, seed=1)
>>> sorted(sim.data["status"].unique().tolist()), list(sim.beta.index)
([0, 1, 2], ['tier[subnormal]', 'tier[mild]', 'tier[moderate_severe]', 'age', 'sex[M]'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from neutrostats.errors import NeutrostatsError

__all__ = ["SimulatedCompetingRisks", "simulate_fine_gray", "FG_TIERS", "FG_BETA"]

#: Tiers of the simulated data, mildest (the reference) first.
FG_TIERS = ("normal", "subnormal", "mild", "moderate_severe")
#: Default log subdistribution hazard ratios of cause 1 (age per year from 60).
FG_BETA: Mapping[str, float] = {"tier[subnormal]": 0.3, "tier[mild]": 0.6, "tier[moderate_severe]": 1.0,
                                "age": 0.02, "sex[M]": 0.25}
_BETA2: Mapping[str, float] = {"tier[subnormal]": 0.1, "tier[mild]": 0.2, "tier[moderate_severe]": 0.4,
                               "age": 0.03, "sex[M]": 0.3}


@dataclass(frozen=True)
class SimulatedCompetingRisks:
    """Simulated data and the truth.

    Attributes
    ----------
    data : pandas.DataFrame
        ``time`` (>= 0), ``status`` (0 censored, 1 cause 1, 2 cause 2),
        ``tier`` (ordered Categorical of :data:`FG_TIERS`), ``age``,
        ``sex`` ("F"/"M").
    beta : pandas.Series
        The true log subdistribution hazard ratios of cause 1, named as
        :func:`~neutrostats.stats.finegray.fine_gray_fit` names its design
        columns.
    cif : pandas.DataFrame
        The true cumulative incidence of cause 1 (``group`` tier,
        ``time``, ``estimate``) for a woman aged 60 in each tier.
    p : float
    """

    data: pd.DataFrame
    beta: pd.Series
    cif: pd.DataFrame
    p: float

    def true_cif(self, X: np.ndarray, times: Sequence[float]) -> np.ndarray:
        """The true cumulative incidence of cause 1, design rows ``X`` (columns of ``beta``) by ``times``."""
        e = np.exp(np.atleast_2d(X) @ self.beta.to_numpy())[:, None]
        t = np.asarray(times, dtype=float)[None, :]
        return 1 - (1 - self.p * (1 - np.exp(-t))) ** e


def _design(tier: np.ndarray, age: np.ndarray, male: np.ndarray) -> np.ndarray:
    return np.column_stack([tier == 1, tier == 2, tier == 3, age - 60, male]).astype(float)


def simulate_fine_gray(
    n: int,
    beta: Mapping[str, float] | None = None,
    *,
    p: float = 0.4,
    seed: int | None = None,
    censoring: float | None = 3.0,
    tier_probs: Sequence[float] = (0.4, 0.25, 0.2, 0.15),
    times: Sequence[float] = (0.5, 1.0, 2.0),
) -> SimulatedCompetingRisks:
    """Simulate ``n`` persons from Fine & Gray's (1999, section 5) design.

    Parameters
    ----------
    n : int
        Persons (>= 10).
    beta : mapping, optional
        Log subdistribution hazard ratios of cause 1 for the terms of
        :data:`FG_BETA` (missing terms keep their default).
    p : float, default 0.4
        The cumulative incidence of cause 1 at ``t = inf`` for ``Z = 0``
        (a woman aged 60 in the normal tier), in (0, 1).
    seed : int, optional
    censoring : float or None, default 3.0
        Censoring times uniform on (0, censoring); None: no censoring.
    tier_probs : sequence of 4 floats
        Tier proportions.
    times : sequence of float
        Times of the true cumulative incidence in ``cif``.

    Returns
    -------
    SimulatedCompetingRisks

    Raises
    ------
    NeutrostatsError
        For ``n < 10``, ``p`` outside (0, 1), unknown terms of ``beta``,
        a non-positive ``censoring``, tier proportions that are not four
        non-negative numbers summing to 1.

    Examples
    --------
    >>> sim = simulate_fine_gray(1000, seed=2, censoring=None)
    >>> bool((sim.data["status"] > 0).all()), sim.cif["time"].unique().tolist()
    (True, [0.5, 1.0, 2.0])
    """
    fn = "simulate_fine_gray"
    b1 = dict(FG_BETA)
    unknown = sorted(set(beta or {}) - set(b1))
    if unknown:
        raise NeutrostatsError(f"{fn}: beta has unknown terms {unknown}; the terms are {list(b1)}")
    b1.update(beta or {})
    if not isinstance(n, (int, np.integer)) or n < 10:
        raise NeutrostatsError(f"{fn}: n must be a whole number >= 10, found {n!r}")
    if not 0 < p < 1:
        raise NeutrostatsError(f"{fn}: p must be in (0, 1), found {p!r}")
    if censoring is not None and not censoring > 0:
        raise NeutrostatsError(f"{fn}: censoring must be > 0 (the upper end of uniform censoring) or None")
    probs = np.asarray(tier_probs, dtype=float)
    if probs.shape != (4,) or np.any(probs < 0) or not np.isclose(probs.sum(), 1):
        raise NeutrostatsError(f"{fn}: tier_probs must be 4 numbers >= 0 summing to 1, found {list(tier_probs)}")
    rng = np.random.default_rng(seed)
    tier = rng.choice(4, size=n, p=probs)
    age = np.round(rng.uniform(30, 90, n), 1)
    male = rng.random(n) < 0.5
    X = _design(tier, age, male)
    e1 = np.exp(X @ np.array(list(b1.values())))
    e2 = np.exp(X @ np.array(list(_BETA2.values())))
    pi1 = 1 - (1 - p) ** e1  # P(cause 1 | Z)
    cause1 = rng.random(n) < pi1
    # Cause 1: invert the conditional distribution F1(t | Z) / pi1 (Fine & Gray 1999, section 5).
    u = rng.random(n)
    t1 = -np.log1p(-(1 - (1 - u * pi1) ** (1 / e1)) / p)
    t2 = rng.exponential(1.0, n) / e2
    t = np.where(cause1, t1, t2)
    status = np.where(cause1, 1, 2)
    if censoring is not None:
        c = rng.uniform(0, censoring, n)
        status = np.where(c < t, 0, status)
        t = np.minimum(t, c)
    data = pd.DataFrame({"time": t, "status": status.astype(np.int64),
                         "tier": pd.Categorical(np.asarray(FG_TIERS)[tier], categories=list(FG_TIERS), ordered=True),
                         "age": age, "sex": np.where(male, "M", "F")})
    sim = SimulatedCompetingRisks(data=data, beta=pd.Series(b1, dtype=float), cif=pd.DataFrame(), p=float(p))
    prof = _design(np.arange(4), np.full(4, 60.0), np.zeros(4, dtype=bool))
    cif = sim.true_cif(prof, times)
    table = pd.DataFrame({"group": pd.Categorical(np.repeat(list(FG_TIERS), len(times)), categories=list(FG_TIERS),
                                                  ordered=True),
                          "time": np.tile(np.asarray(times, dtype=float), 4), "estimate": cif.ravel()})
    return SimulatedCompetingRisks(data=data, beta=sim.beta, cif=table, p=float(p))
