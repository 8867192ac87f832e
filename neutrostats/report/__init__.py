"""The whole analysis in one call and its rendering (HTML, JSON, CSV, figures)."""

from __future__ import annotations

from neutrostats.report.analysis import (
    SCHEMA_VERSION,
    Report,
    ReportSettings,
    analyse,
    load_config,
    run_report,
)

__all__ = [
    "SCHEMA_VERSION",
    "Report",
    "ReportSettings",
    "analyse",
    "load_config",
    "run_report",
]
