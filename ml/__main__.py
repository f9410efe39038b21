"""`python -m ml <command>`: the platform's one command line (ml.orchestration.cli)."""

import sys

from ml.orchestration.cli import main

sys.exit(main())
