"""``python -m runner.cli``: the same as the ``sparring`` command."""

import sys

from runner.cli import main

sys.exit(main())
