"""Lab tables: count units, lab-value strings, LOINC roles, severity schemes and the classification by ANC tier.

Each module lists its public names in ``__all__``; this package re-exports
them all.
"""

from __future__ import annotations

from neutrostats.labs import units
from neutrostats.labs import codes
from neutrostats.labs import classify
from neutrostats.labs import cbc
from neutrostats.labs.units import *  # noqa: F401,F403  (the names of units.__all__)
from neutrostats.labs.codes import *  # noqa: F401,F403  (the names of codes.__all__)
from neutrostats.labs.classify import *  # noqa: F401,F403  (the names of classify.__all__)
from neutrostats.labs.cbc import *  # noqa: F401,F403  (the names of cbc.__all__)

__all__ = [*units.__all__, *codes.__all__, *classify.__all__, *cbc.__all__]
