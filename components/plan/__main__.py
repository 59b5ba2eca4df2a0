"""``python -m components.plan``: see ``components.plan.cli``."""

from components.plan.cli import main

raise SystemExit(main())
