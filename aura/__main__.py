"""``python -m aura``: the ``aura`` console script."""

import sys

from .operating._cli import main

sys.exit(main())
