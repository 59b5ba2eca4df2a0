"""``python -m ops.adopt``: see ``ops.adopt.cli``."""

from ops.adopt.cli import main

raise SystemExit(main())
