"""The whole analysis in one call and its rendering (HTML, JSON, CSV, figures).

Each module lists its public names in ``__all__``; this package re-exports
them all.
"""

from __future__ import annotations

from neutrostats.report import analysis
from neutrostats.report.analysis import *  # noqa: F401,F403  (the names of analysis.__all__)

__all__ = [*analysis.__all__]
