"""Allow ``python -m neutrostats``."""

from .cli import main

raise SystemExit(main())
