"""``python -m designer`` does what the ``convas`` command does."""

import sys

from .cli import main

sys.exit(main())
