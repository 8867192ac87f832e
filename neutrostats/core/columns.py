"""The column vocabulary of every result table, written down once.

Every estimator in :mod:`neutrostats.stats` names its output columns from
this list, so that tables of different methods line up (R's broom
``tidy()`` is the model: ``tidy.survfit`` for curves, ``tidy.coxph`` for
model terms, ``glance.survdiff`` for tests; broom's dots become
underscores).

======================  =====================================================
column                  meaning
======================  =====================================================
``group``               value of the grouping column (the ANC tier in a
                        cohort) of a curve, a count or an odds ratio: KM,
                        CIF, RMST, log-rank, odds ratios, Table 1; Cox tier
                        rows (NA on covariate rows)
``term``                a model coefficient or tested term: Cox and test
                        rows (``tier``, ``age_at_index``, ``sex[M]``,
                        ``GLOBAL``); for a test of groups, the name of the
                        grouping column
``outcome``             the outcome: its column name (odds ratios, trend and
                        log-rank tests, PH test), the event code tested
                        (Gray's test)
``time``                follow-up time of a curve row, or the horizon of a
                        row "at a time" (``survival_at``, RMST)
``n``                   persons (in the group, at risk of the outcome, or in
                        the model)
``n_risk``              persons at risk at ``time``
``n_event``             events of the outcome (at ``time`` on curve rows;
                        among the ``n`` persons on odds-ratio and Cox rows)
``n_censor``            censored at ``time``
``n_competing``         competing events (deaths without the outcome) at
                        ``time``
``contrast``            what a standardised-risk row estimates: ``risk``,
                        ``difference`` or ``ratio`` (against the reference
                        tier); of a rate-ratio row (``rate_ratios``):
                        ``ratio`` or ``difference`` of rates
``person_years``        person-time at risk (in the unit of the durations,
                        years in a cohort table): rates, SIR, Poisson rows
``expected``            events expected from reference rates (SIR/SMR)
``estimate``            the estimate: S(t), F(t), RMST, odds or hazard ratio
``std_error``           its standard error (of the log ratio for ratios)
``conf_low``,           the confidence interval at ``conf_level``
``conf_high``
``p_value``             two-sided p-value
``profile``             the covariate profile of a predicted curve (the row
                        label of ``newdata``: ``CoxModel.predict``,
                        ``predict_cumulative_incidence``)
``cumhaz``,             cumulative hazard H(t) of a predicted curve or a
``cumhaz_std_error``    baseline hazard, and its standard error
``evalue``,             E-values of a ratio (``add_evalues``): of the point
``evalue_ci``           estimate, and of the confidence limit closest to the
                        null (1 when the interval includes it)
``calibrated_*``        after empirical calibration against negative
                        controls (``calibrate``): ``calibrated_estimate``,
                        ``calibrated_std_error`` (log scale),
                        ``calibrated_conf_low``, ``calibrated_conf_high``,
                        ``calibrated_p_value``
``test``                short name of a test: ``logrank``,
                        ``logrank_trend``, ``logrank_stratified``, ``gray``,
                        ``cochran_armitage``, ``logistic_score``,
                        ``schoenfeld``, ``mantel_haenszel``, ``breslow_day``,
                        ``fleming_harrington`` (``_trend``, ``_stratified``)
``statistic``, ``df``   the test statistic (chi-square) and its degrees of
                        freedom
======================  =====================================================

Every test returns :data:`TEST_COLUMNS` (``test, outcome, term, statistic,
df, p_value``) first, then columns of its own (``estimate``, ``std_error``
...); the dataclass results (``LogrankTest``, ``MantelHaenszel``) have a
``.tidy()`` method returning that shape.

Per-person time-to-event frames (:meth:`neutrostats.Cohort.time_to_event`)
have ``person_id``, ``time`` (years since index) and ``status`` (0 =
censored, 1 = the outcome, 2 = death without the outcome).

Examples
--------
>>> from neutrostats.core import columns
>>> columns.TEST_COLUMNS
('test', 'outcome', 'term', 'statistic', 'df', 'p_value')
"""

from __future__ import annotations

__all__ = [
    "GROUP", "TERM", "OUTCOME", "TIME", "STATUS", "PERSON_ID",
    "N", "N_RISK", "N_EVENT", "N_CENSOR", "N_COMPETING",
    "ESTIMATE", "STD_ERROR", "CONF_LOW", "CONF_HIGH", "P_VALUE",
    "TEST", "STATISTIC", "DF",
    "COUNT_COLUMNS", "ESTIMATE_COLUMNS", "TEST_COLUMNS",
]

GROUP = "group"
TERM = "term"
OUTCOME = "outcome"
TIME = "time"
STATUS = "status"
PERSON_ID = "person_id"

N = "n"
N_RISK = "n_risk"
N_EVENT = "n_event"
N_CENSOR = "n_censor"
N_COMPETING = "n_competing"

ESTIMATE = "estimate"
STD_ERROR = "std_error"
CONF_LOW = "conf_low"
CONF_HIGH = "conf_high"
P_VALUE = "p_value"

TEST = "test"
STATISTIC = "statistic"
DF = "df"

#: Count columns of result tables (persons and events).
COUNT_COLUMNS = (N, N_RISK, N_EVENT, N_CENSOR, N_COMPETING)
#: An estimate with its standard error, interval and p-value.
ESTIMATE_COLUMNS = (ESTIMATE, STD_ERROR, CONF_LOW, CONF_HIGH, P_VALUE)
#: The first columns of every test result, in order.
TEST_COLUMNS = (TEST, OUTCOME, TERM, STATISTIC, DF, P_VALUE)
