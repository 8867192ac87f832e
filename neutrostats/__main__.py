"""Allow ``python -m neutrostats``."""

from neutrostats.cli import console

raise SystemExit(console())
