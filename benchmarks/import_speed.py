"""How long importing a large network takes, and opening the result in the editor.

ResNet-50 (torch's layout, 25.6 M parameters, 224×224) is written to ONNX by both of
torch's exporters (``dynamo=True``, opset 18, and the legacy one, opset 17), then
``engine.importers.import_onnx`` turns each file into a design with its weights
(median of three imports), and the design is opened in the main window (offscreen)
until the canvas is painted, as File → Import does once the import is done.

Goals: import < 3 s, open and paint < 1 s.

    QT_QPA_PLATFORM=offscreen python benchmarks/import_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import torch  # noqa: E402
from editor_scale import _new_window, _open_until_painted, _settle  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine import Graph, compile_graph  # noqa: E402
from engine.importers import import_onnx  # noqa: E402

TEMPLATE = ROOT / "resources" / "templates" / "resnet50.convas.json"


def export(model: torch.nn.Module, path: Path, dynamo: bool) -> None:
    """ResNet-50 as the exporter writes it (weights inline, batch 1)."""
    x = torch.randn(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(model, (x,), str(path), dynamo=True, external_data=False,
                              verbose=False)
        else:
            torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    app = QApplication.instance() or QApplication(sys.argv)
    model = compile_graph(Graph.load(TEMPLATE)).eval()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for dynamo in (True, False):
            name = "dynamo=True, opset 18" if dynamo else "legacy exporter, opset 17"
            path = tmp / f"resnet50_{'dynamo' if dynamo else 'legacy'}.onnx"
            export(model, path, dynamo)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                imported = import_onnx(path)
                times.append(time.perf_counter() - start)
            graph = imported.graph
            design = tmp / f"{path.stem}.convas.json"
            graph.save(design)
            window = _new_window(tmp, all_docks=False)
            _settle(window)
            opened = _open_until_painted(window, design, fit_all=True)
            assert not window.doc.report.errors, window.doc.report.errors[:3]
            params = window.doc.report.total_params
            window.doc.undo_stack.setClean()
            window.close()
            app.processEvents()
            seconds = statistics.median(times)
            print(f"ResNet-50 ONNX ({name}, {path.stat().st_size / 2**20:.0f} MiB): "
                  f"imported in {seconds:.2f} s (goal < 3 s) "
                  f"{'OK' if seconds < 3 else 'SLOW'}; {len(graph)} blocks, {params:,} params")
            print(f"  opened and painted in the editor (Fit All): {opened:.2f} s "
                  f"(goal < 1 s) {'OK' if opened < 1 else 'SLOW'}")


if __name__ == "__main__":
    main()
