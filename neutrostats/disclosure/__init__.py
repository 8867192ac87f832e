"""Small-cell control: suppression rules, coarsened times and the register of every published cell.

Each module lists its public names in ``__all__``; this package re-exports
them all.
"""

from __future__ import annotations

from neutrostats.disclosure import rules
from neutrostats.disclosure.rules import *  # noqa: F401,F403  (the names of rules.__all__)

__all__ = [*rules.__all__]
