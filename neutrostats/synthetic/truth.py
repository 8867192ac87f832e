"""The generating truth of a synthetic cohort: what a correct analysis must recover.

The truth is computed from the generating parameters and the drawn persons,
never from an analysis of the generated tables.
"""

from __future__ import annotations

import math

import numpy as np

from neutrostats.synthetic.assumptions import ANDERSEN2016_OR, ASSUMPTION_NOTES, OUTCOME_CODE_RANGES, TIERS, _CUTS, _NON_NUMERIC, _OUTCOMES, _UNITS

def _truth_outcomes(a: dict, O: dict, tier: np.ndarray) -> dict:
    """The truth of each outcome: its codes, target and published ORs, the solved model and realised counts."""
    outcomes = {}
    for o in _OUTCOMES:
        spec = a[o]
        oo = O[o]
        outcomes[o] = {
            "code_ranges": list(OUTCOME_CODE_RANGES[o]),
            "or_scale": spec["or_scale"],
            "target_or": dict(spec["or"]),
            "published_or_95ci": (
                {t: list(v) for t, v in ANDERSEN2016_OR[o].items()} if o in ANDERSEN2016_OR else None
            ),
            "baseline_risk": spec["baseline_risk"],
            "intercept": oo["alpha"],
            "conditional_log_or": {t: float(oo["beta"][j]) for j, t in enumerate(TIERS) if j > 0},
            "conditional_or": {t: float(math.exp(oo["beta"][j])) for j, t in enumerate(TIERS) if j > 0},
            "age_log_or_per_decade": spec["age_log_or_per_decade"],
            "male_log_or": spec["male_log_or"],
            "expected_risk_4y": oo["expected_risk"],
            # mean over the persons at risk of the logistic probability with the tier set to each tier
            "standardized_risk_4y": dict(oo["standardized_risk"]),
            "expected_crude_or": oo["expected_crude_or"],
            "prevalence_at_index": spec["prevalence_at_index"],
            "late_code_rate": spec["late_code_rate"],
            "repeat_code_rate": spec["repeat_code_rate"],
            "n_prevalent": int(oo["prevalent"].sum()),
            "n_events": {t: int((oo["event"] & (tier == j)).sum()) for j, t in enumerate(TIERS)},
        }
    return outcomes


def _truth(seed, n, a, P, C, L, X, O, D, G, labs) -> dict:
    tier = X["tier"]
    has = X["has"]
    outcomes = _truth_outcomes(a, O, tier)
    tier_counts = {t: int((tier == j).sum()) for j, t in enumerate(TIERS)}
    hr = D["hr"]
    child = P["child"]
    return {
        "generator": "neutrostats.synthetic.generate_cohort",
        "seed": seed,
        "n_persons": n,
        "numpy_version": np.__version__,
        "tier_scheme": "andersen2016",
        "tiers": list(TIERS),
        "tier_cuts_per_ul": list(_CUTS),
        "index_definition": (
            "first valid ANC measurement per person (direct 751-8/753-4/26499-4, or WBC x "
            "(neutrophil % + band %) / 100 when a person has no direct ANC); non-numeric, negative, "
            "> 100,000/uL and '<1.5' (spans tiers) are not valid; '<0.1' is moderate_severe"
        ),
        "outcome_definition": (
            "first diagnosis in (index, index + 4 years]; incident diagnoses fall on days "
            "index+1 .. index+1460; prevalent diagnoses on or before the index day are excluded; "
            "late codes fall on or after index+1480 days"
        ),
        "age_definition": "age_at_index = (index day - birth day) / 365.25; covariate (age - 50) / 10",
        "outcomes": outcomes,
        "subtypes": {
            "hiv": {"parent": "viral_infection", "code_ranges": ["B20-B24"],
                    "share_of_parent_events_by_tier": dict(a["hiv_share_of_viral"])},
            "acute_leukemia": {"parent": "hematologic_malignancy",
                                "code_ranges": list(OUTCOME_CODE_RANGES["acute_leukemia"]),
                                "share_of_parent_events_by_tier": dict(a["acute_leukemia_share_of_hematologic"])},
        },
        "mortality": {
            "model": "exponential hazard from the index day (entry day without index); "
                     "rate = rate_per_year * exp(age_log_hr_per_decade * (age - 60) / 10 + male_log_hr * male) * hr[tier]",
            "rate_per_year": a["mortality"]["rate_per_year"],
            "age_log_hr_per_decade": a["mortality"]["age_log_hr_per_decade"],
            "male_log_hr": a["mortality"]["male_log_hr"],
            "hr": {t: float(hr[j]) for j, t in enumerate(TIERS)},
            "risk_4y_moderate_severe_target": a["mortality"]["risk_4y_moderate_severe"],
            "expected_risk_4y": D["expected_risk_4y"],
            # mean over the persons with an index of 1 - exp(-4 rate_i) with the tier set to each tier
            "standardized_risk_4y": dict(D["standardized_risk_4y"]),
            # sum E[deaths] / sum E[person-years] x 1000 per tier over the follow-up to the end of data
            # (each person's censoring time fixed): what incidence_rates(table, "death") estimates
            "rate_per_1000py": dict(D["rate_per_1000py"]),
        },
        "mess": {
            "rates": dict(a["mess"]),
            "icd_rates": dict(a["icd_mess"]),
            "non_numeric_strings": list(_NON_NUMERIC),
            "units": {u: {"factor_to_cells_per_ul": f, "weight": w} for u, f, w in _UNITS},
            "counts": L["counts"],
            "icd_counts": G["counts"],
        },
        "assumptions": a,
        "assumption_notes": dict(ASSUMPTION_NOTES),
        "realised": {
            "n_persons": n,
            "n_children": int(child.sum()),
            "n_cbcs": L["counts"]["anc_measurement_rows"],
            "n_lab_rows": int(len(labs)),
            "n_with_index": int(has.sum()),
            "index_tier_counts": tier_counts,
            "index_tier_counts_children": {t: int(((tier == j) & child).sum()) for j, t in enumerate(TIERS)},
            "n_deaths": int(D["died"].sum()),
            "n_diagnoses": int(G["pidx"].size),
        },
    }
