"""Coverage of the Fine–Gray confidence intervals on data where the model holds (Fine & Gray 1999, section 5).

500 seeded replicates of 600 persons from :func:`neutrostats.synthetic.competing.simulate_fine_gray`
(a four-level tier, age, sex; about 29% censored, 41% cause 1, 30% cause 2): the 95% Wald intervals
of the five coefficients, with crr's variance (the default), cover the true values 93-97% of the
time pooled over the 2,500 intervals, and each coefficient within 4 binomial standard errors of 95%.
The robust variance without the censoring term is checked the same way (it is the right variance
when the censoring distribution is known, and close to crr's here).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from neutrostats.stats.finegray import fine_gray_arrays
from neutrostats.synthetic.competing import FG_TIERS, simulate_fine_gray

REPLICATES = 500
N = 600


def _design(d):
    tier = d["tier"].cat.codes.to_numpy()
    return np.column_stack([tier == 1, tier == 2, tier == 3, d["age"].to_numpy(), d["sex"].to_numpy() == "M"]
                           ).astype(float)


@pytest.mark.slow
def test_fine_gray_95_percent_intervals_cover_the_true_coefficients():
    z = stats.norm.ppf(0.975)
    hits = {"crr": [], "robust": []}
    beta = None
    for r in range(REPLICATES):
        sim = simulate_fine_gray(N, seed=19_000 + r)
        beta = sim.beta.to_numpy()
        fit = fine_gray_arrays(sim.data["time"], sim.data["status"], _design(sim.data))
        assert fit.converged
        for kind, var in (("crr", fit.var_crr), ("robust", fit.var_robust)):
            se = np.sqrt(np.diag(var))
            hits[kind].append(np.abs(fit.coef - beta) <= z * se)
    assert list(FG_TIERS)[0] == "normal" and beta is not None
    for kind, h in hits.items():
        cover = np.asarray(h)
        pooled = cover.mean()
        assert 0.93 <= pooled <= 0.97, (kind, pooled)
        se = np.sqrt(0.95 * 0.05 / REPLICATES)
        per = cover.mean(axis=0)
        assert np.all(np.abs(per - 0.95) <= 4 * se), (kind, per)
