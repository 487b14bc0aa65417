"""Test set-up: offscreen Qt, single-threaded torch (2-core CI machines are noisy)."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
