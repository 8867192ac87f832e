"""The 95% intervals recover the generator's truth: adjusted odds ratios and Cox hazard ratios.

150 seeded replicates of a 30,000-person synthetic cohort; each is generated
and built once, and both models are fitted on it (generating and building
cost four times the fits, so one loop serves both checks).

Odds ratios: ``odds_ratios_by_tier(method="logistic", adjust=[age, sex])``
must cover the true conditional ORs of the generating model
(``truth["outcomes"][o]["conditional_or"]``) 93-97% of the time, pooled over
the 3 tiers x 2 outcomes (900 intervals).

Hazard ratios: the generator's death model is a proportional-hazards model in
exactly the covariates of the fit: an exponential hazard from the index date,
``rate_per_year * exp(age_log_hr_per_decade * (age - 60) / 10 + male_log_hr *
male) * hr[tier]``, with age at the index entering linearly, so
``cox_hazard_ratios(table, "death_time", "death", adjust=["age_at_index",
"sex"])`` estimates ``truth["mortality"]["hr"]`` per tier (death days are
whole days, so a few deaths tie; censoring is administrative, at the end of
data). The moderate-severe HR is solved per cohort from its target 4-year
mortality, so each replicate has its own truth. Pooled over the 3 tiers (450
intervals) coverage must be 93-97%.

Each single parameter's coverage must be within 4 binomial standard errors
of 95%.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import neutrostats as ns
from neutrostats.stats.cox import InfiniteHazardRatioWarning, cox_hazard_ratios
from neutrostats.synthetic import OUTCOME_CODE_RANGES, generate_cohort

REPLICATES = 150
PERSONS = 30_000
OUTCOMES = ["viral_infection", "hematologic_malignancy"]
TIERS = ["subnormal", "mild", "moderate_severe"]


def _or_hits(table, truth_outcomes, hits):
    for o in OUTCOMES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ns.SeparationWarning)
            res = ns.odds_ratios_by_tier(table, o, method="logistic", adjust=["age_at_index", "sex"])
        truth = truth_outcomes[o]["conditional_or"]
        for _, row in res[~res["is_reference"]].iterrows():
            hits.setdefault(("OR", o, row["group"]), []).append(
                bool(row["conf_low"] <= truth[row["group"]] <= row["conf_high"]))


def _hr_hits(table, truth, hits):
    with warnings.catch_warnings():
        # A replicate's rarest tier may lack deaths: it has no interval and counts as not covering.
        warnings.simplefilter("ignore", InfiniteHazardRatioWarning)
        res = cox_hazard_ratios(table, "death_time", "death", adjust=["age_at_index", "sex"])
    rows = res.set_index("term")
    for t in TIERS:
        hits.setdefault(("HR", "death", t), []).append(
            bool(rows.loc[t, "conf_low"] <= truth[t] <= rows.loc[t, "conf_high"]))


def _check(hits, model):
    mine = {k: v for k, v in hits.items() if k[0] == model}
    pooled = float(np.mean([h for v in mine.values() for h in v]))
    per = {k: float(np.mean(v)) for k, v in mine.items()}
    se = np.sqrt(0.95 * 0.05 / REPLICATES)
    print(f"{model} coverage pooled {pooled:.4f}, per parameter {per}")  # shown with pytest -s
    assert 0.93 <= pooled <= 0.97, f"{model}: pooled coverage {pooled:.3f}; per parameter {per}"
    for k, cov in per.items():
        assert abs(cov - 0.95) <= 4 * se, f"{model}: coverage of {k} is {cov:.3f} (95% +- {4 * se:.3f}); {per}"


@pytest.mark.slow
def test_odds_ratio_and_hazard_ratio_intervals_cover_the_truth():
    hits: dict[tuple[str, str, str], list[bool]] = {}
    for r in range(REPLICATES):
        s = generate_cohort(n_persons=PERSONS, seed=10_000 + r, progress=False)
        # The in-memory reduction (held equal to the SQL one in test_backends): twice as fast.
        c = ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths, engine="numpy",
                            outcomes={o: OUTCOME_CODE_RANGES[o] for o in OUTCOMES})
        _or_hits(c.table, s.truth["outcomes"], hits)
        _hr_hits(c.table, s.truth["mortality"]["hr"], hits)
    _check(hits, "OR")
    _check(hits, "HR")
