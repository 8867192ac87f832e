"""The whole analysis in one call: settings, the analysis as library calls, and its rendering (HTML, JSON, CSV, figures).

Each module lists its public names in ``__all__``; this package re-exports
them all.
"""

from __future__ import annotations

from neutrostats.report import analysis, settings
from neutrostats.report.analysis import *  # noqa: F401,F403  (the names of analysis.__all__)
from neutrostats.report.settings import *  # noqa: F401,F403  (the names of settings.__all__)

__all__ = [*analysis.__all__, *settings.__all__]
