"""``python -m designer`` does what the ``convas`` command does."""

import sys

from .cli import main

# Guarded: a training child process (spawned, engine.train_process) re-imports the
# parent's main module, and must not open a second application.
if __name__ == "__main__":
    sys.exit(main())
