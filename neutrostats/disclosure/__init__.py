"""Small-cell control: suppression rules, coarsened times and the register of every published cell."""

from __future__ import annotations

from neutrostats.disclosure.rules import (
    CellRegistry,
    DisclosureRule,
    PRESETS,
    coarsen_event_times,
    protect,
    suppress_counts,
)

__all__ = [
    "CellRegistry",
    "DisclosureRule",
    "PRESETS",
    "coarsen_event_times",
    "protect",
    "suppress_counts",
]
