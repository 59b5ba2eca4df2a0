import sys

from ops.adopt.cli import main

sys.exit(main())
