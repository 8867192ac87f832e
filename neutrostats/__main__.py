"""Allow ``python -m neutrostats``."""

from neutrostats.cli import main

raise SystemExit(main())
