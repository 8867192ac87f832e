"""Figures: Kaplan-Meier curves with numbers at risk, cumulative incidence curves and forest plots of odds ratios.

Every figure has one look (:func:`figure_style`), one ordinal,
colour-blind-safe tier palette (:func:`tier_colors`) and the display labels
of :func:`~neutrostats.labels_for`; :func:`save_figure` writes 300 dpi PNG
and SVG with editable text. matplotlib is imported inside each function, so
importing neutrostats does not import it. The functions draw the tidy tables
of :mod:`neutrostats.stats`; they compute no estimate of their own.
"""

from neutrostats.plotting.curves import plot_cumulative_incidence, plot_km
from neutrostats.plotting.forest import plot_forest
from neutrostats.plotting.style import FIGURE_STYLE, REFERENCE_COLOR, figure_style, save_figure, tier_colors

__all__ = [
    "FIGURE_STYLE",
    "REFERENCE_COLOR",
    "figure_style",
    "plot_cumulative_incidence",
    "plot_forest",
    "plot_km",
    "save_figure",
    "tier_colors",
]
