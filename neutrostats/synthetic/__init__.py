"""Synthetic retrospective neutropenia cohorts with known truth.

:func:`generate_cohort` builds the four tables a retrospective study of
neutropenia starts from -- ``persons``, ``labs`` (long format, lab strings as
exported), ``diagnoses`` (ICD-10) and ``deaths`` -- together with the truth
that made them: the index measurement of every person and a JSON-ready dict of
every generating parameter. The defaults reproduce the crude odds ratios of
the Copenhagen primary-care differential-count database (CopDiff; Andersen et
al., J Intern Med 2016;279:566) and carry documented kinds of real-data mess,
so that a whole pipeline (units, censored strings, derived ANC, index date,
outcome windows, survival) can be checked against known answers.

The model, in order:

1. **Persons.** Age at entry (children 1-18 y and adults 19-90 y), sex,
   Duffy-null phenotype, and the lab layout: most persons have a direct ANC,
   some only WBC + neutrophil % + band % (the ANC must be derived).
2. **Blood counts.** Several CBCs per person over years. log ANC = person mean
   + within-person noise (CV 26 % week to week, Statland 1978). Person means
   are log-normal around the adult median, lower in children and Duffy-null
   persons, with a small sub-population with a chronically low count (the
   left tail that gives the moderate-severe tier).
3. **Mess.** Unit spellings, non-numeric results, censored strings, impossible
   values and duplicated rows at documented rates.
4. **Index.** The first *valid* ANC measurement as a correct classifier would
   read it (messy rows skipped; ``"<0.1"`` is moderate-severe; ``"<1.5"``
   spans tiers and is not valid). Outcomes and deaths depend on this
   *observed* index tier, as the published crude ORs do.
5. **Outcomes.** For each outcome a logistic model of a first diagnosis in
   (index, index + 4 years] on the index tier, age and sex, among persons
   without the diagnosis before the index (prevalent cases get an earlier
   date). For outcomes whose ORs are published as crude ORs (viral infection,
   haematological malignancy) the tier coefficients are solved so that the
   expected crude OR in the generated cohort equals the published OR; the
   conditional (age- and sex-adjusted) ORs used are recorded in the truth.
   HIV is a sub-type of viral infection (B20-B24 lie in A80-B34) and acute
   leukaemia a sub-type of haematological malignancy, with a share that grows
   steeply with the tier, so both are strongly associated.
6. **Deaths.** Exponential survival from the index with hazard ratios for
   tier, age and sex; the lowest tier's hazard ratio is solved so that its
   expected 4-year mortality is the target (over 50 %, as published).

Examples
--------
>>> from neutrostats.synthetic import generate_cohort
>>> cohort = generate_cohort(n_persons=300, seed=7)
>>> sorted(cohort.tables)
['deaths', 'diagnoses', 'labs', 'persons']
>>> cohort.labs.dtypes.astype(str).to_dict()
{'person_id': 'int64', 'sampled_at': 'datetime64[ns]', 'code': 'object', 'value': 'object', 'unit': 'object'}
"""

from __future__ import annotations

from neutrostats.synthetic import assumptions, competing, files, generate, reference_rates, timevarying
from neutrostats.synthetic.assumptions import *  # noqa: F401,F403  (the names of assumptions.__all__)
from neutrostats.synthetic.files import *  # noqa: F401,F403  (the names of files.__all__)
from neutrostats.synthetic.generate import *  # noqa: F401,F403  (the names of generate.__all__)
from neutrostats.synthetic.reference_rates import *  # noqa: F401,F403  (the names of reference_rates.__all__)
from neutrostats.synthetic.competing import *  # noqa: F401,F403  (the names of competing.__all__)
from neutrostats.synthetic.timevarying import *  # noqa: F401,F403  (the names of timevarying.__all__)

__all__ = [*generate.__all__, *files.__all__, *assumptions.__all__, *reference_rates.__all__, *competing.__all__, *timevarying.__all__]
