"""The cohort: persons, the lab reduction (pandas and SQL engines), index choice, follow-up, outcomes and flow.

Each module lists its public names in ``__all__``; this package re-exports
them all.
"""

from __future__ import annotations

from neutrostats.cohort import build
from neutrostats.cohort import icd10, labels, timevarying
from neutrostats.cohort.build import *  # noqa: F401,F403  (the names of build.__all__)
from neutrostats.cohort.icd10 import *  # noqa: F401,F403  (the names of icd10.__all__)
from neutrostats.cohort.labels import *  # noqa: F401,F403  (the names of labels.__all__)
from neutrostats.cohort.timevarying import *  # noqa: F401,F403  (the names of timevarying.__all__)

__all__ = [*build.__all__, *icd10.__all__, *labels.__all__, *timevarying.__all__]
