"""`python -m core ...`: the command-line face of the lab (see core/cli/)."""

import sys

from core.cli.main import main

sys.exit(main())
