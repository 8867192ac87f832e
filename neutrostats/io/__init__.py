"""Files and exports: lab tables (CSV, Parquet), wide CBC exports, OMOP CDM, MIMIC-IV and FHIR readers.

Each module lists its public names in ``__all__``; this package re-exports
them all.
"""

from __future__ import annotations

from neutrostats.io import files
from neutrostats.io import omop
from neutrostats.io import mimic
from neutrostats.io import fhir
from neutrostats.io.files import *  # noqa: F401,F403  (the names of files.__all__)
from neutrostats.io.omop import *  # noqa: F401,F403  (the names of omop.__all__)
from neutrostats.io.mimic import *  # noqa: F401,F403  (the names of mimic.__all__)
from neutrostats.io.fhir import *  # noqa: F401,F403  (the names of fhir.__all__)

__all__ = [*files.__all__, *omop.__all__, *mimic.__all__, *fhir.__all__]
