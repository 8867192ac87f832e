"""Cox hazard ratios recover the generator's true hazard ratios.

The synthetic generator's death model is a proportional-hazards model in
exactly the covariates of the fit: an exponential hazard from the index date,
``rate_per_year * exp(age_log_hr_per_decade * (age - 60) / 10 + male_log_hr *
male) * hr[tier]``, with age at the index entering linearly, so
``cox_hazard_ratios(table, "death_time", "death", adjust=["age_at_index",
"sex"])`` estimates ``truth["mortality"]["hr"]`` per tier (death days are
whole days, so a few deaths tie; censoring is administrative, at the end of
data). The moderate-severe HR is solved per cohort from its target 4-year
mortality, so each replicate has its own truth.

150 seeded replicates of a 20,000-person cohort: the 95% Wald intervals
must cover the truth 93-97% of the time pooled over the 3 tiers (450
intervals), and each tier within 4 binomial standard errors of 95%.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import neutrostats as ns
from neutrostats.stats.cox import InfiniteHazardRatioWarning, cox_hazard_ratios
from neutrostats.synthetic import generate_cohort

REPLICATES = 150
PERSONS = 20_000
TIERS = ["subnormal", "mild", "moderate_severe"]


@pytest.mark.slow
def test_cox_intervals_cover_the_true_hazard_ratios():
    hits: dict[str, list[bool]] = {t: [] for t in TIERS}
    for r in range(REPLICATES):
        s = generate_cohort(n_persons=PERSONS, seed=20_000 + r, progress=False)
        # The in-memory reduction (held equal to the SQL one in test_backends): twice as fast.
        c = ns.build_cohort(s.labs, s.persons, s.diagnoses, s.deaths, engine="numpy")
        with warnings.catch_warnings():
            # A replicate's rarest tier may lack deaths: it has no interval
            # and counts as not covering.
            warnings.simplefilter("ignore", InfiniteHazardRatioWarning)
            res = cox_hazard_ratios(c.table, "death_time", "death", adjust=["age_at_index", "sex"])
        truth = s.truth["mortality"]["hr"]
        rows = res.set_index("term")
        for t in TIERS:
            lo, hi = rows.loc[t, "conf_low"], rows.loc[t, "conf_high"]
            hits[t].append(bool(lo <= truth[t] <= hi))
    pooled = np.mean([h for t in TIERS for h in hits[t]])
    per_tier = {t: float(np.mean(hits[t])) for t in TIERS}
    se = np.sqrt(0.95 * 0.05 / REPLICATES)
    print(f"coverage pooled {pooled:.4f}, per tier {per_tier}")  # shown with pytest -s
    assert 0.93 <= pooled <= 0.97, f"pooled coverage {pooled:.3f}; per tier {per_tier}"
    for t, cov in per_tier.items():
        assert abs(cov - 0.95) <= 4 * se, f"coverage of {t} is {cov:.3f} (95% +- {4 * se:.3f}); all {per_tier}"
