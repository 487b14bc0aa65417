# make run   — create .venv on first use, install, open the application
# make test  — same set-up, then run the whole test suite offscreen
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A CPU build of torch lies on this disk; an unpinned torch pulls a multi-GB CUDA build.
# Set TORCH_SPEC (e.g. TORCH_SPEC="torch==2.5.1") to bring your own build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: run test test-engine test-gui lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m designer $(FILE)

# The engine suite runs in a process of its own, without a QApplication: a long
# torch test (VGG-16's ONNX export) then never shares an event loop with the GUI
# tests' leftover Qt objects. The two single-threaded suites run side by side on the
# two cores (9.2 min for both, against about 12 one after the other); each one's
# output is printed when it ends.
test: $(STAMP)
	$(MAKE) --no-print-directory -j2 --output-sync=target test-engine test-gui
	$(BIN)/ruff check engine widgets designer resources tests benchmarks

test-engine: $(STAMP)
	OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q tests/engine tests/test_layering.py

test-gui: $(STAMP)
	OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q tests/designer tests/widgets

lint: $(STAMP)
	$(BIN)/ruff check engine widgets designer resources tests benchmarks

bench: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/analysis_speed.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/compiled_vs_handwritten.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/train_throughput.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/train_throughput.py --template unet_shapes --count 1200 --epochs 4 --batch 32
	OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/editor_scale.py
	OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/live_overhead.py --rounds 3
	OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/import_speed.py
	$(BIN)/python benchmarks/ddp_scaling.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
