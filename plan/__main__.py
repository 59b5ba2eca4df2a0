"""``python -m plan``: see ``plan.cli``."""

from plan.cli import main

raise SystemExit(main())
