"""What the live views cost: training throughput with the Training dock's curves,
feature maps (probed twice a second, shown beside the curves), confusion matrix and
mistakes gallery on, over the same training headless; and how responsive the GUI
stays meanwhile (gaps between ticks of a 10 ms timer in the GUI thread). Runs
alternate headless / GUI, so noise hits both alike.
Goals: throughput ratio ≥ 0.95, 99th-percentile event-loop latency < 50 ms.

    QT_QPA_PLATFORM=offscreen python benchmarks/live_overhead.py [--epochs 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the training child inherits it
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QElapsedTimer, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from designer.mainwindow import MainWindow  # noqa: E402
from designer.templates import template_files  # noqa: E402
from designer.training_dock import PROBE_SECONDS  # noqa: E402
from engine import Graph  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.train import Trainer  # noqa: E402
from engine.train_config import TrainConfig  # noqa: E402
from engine.train_events import EpochEvent  # noqa: E402


def images_per_s(events: list[EpochEvent], n: int) -> float:
    return statistics.median(n / e.seconds for e in events[1:] or events)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    f = next(f for f in template_files() if f.name == "x_vs_o.convas.json")
    graph = Graph.loads(f.read_text("utf-8"), f.name)
    data = load_dataset("shapes", classes=["X", "O"])
    settings = {"dataset": "shapes", "epochs": args.epochs, "device": "cpu"}
    tmp = tempfile.mkdtemp(prefix="convas-live-")
    window = MainWindow(settings=QSettings(tmp + "/s.ini", QSettings.Format.IniFormat),
                        recovery_dir=tmp)
    window.resize(1600, 1000)
    window.show()
    window.doc.new_from(graph)
    window._docks["Training"].raise_()
    window.canvas.select(["relu1"])
    dock = window.training
    dock.tabs.setCurrentWidget(dock.maps)  # the curves are always in view beside the tabs
    dock.panel.set_settings(settings)

    headless, live, gaps = [], [], []
    for _ in range(args.rounds):
        events: list[EpochEvent] = []
        config = TrainConfig.from_dict({**graph.training, **settings, "probe_every": 0,
                                        "probe_seconds": PROBE_SECONDS})
        Trainer(graph, config, dataset=data,
                callback=lambda e, out=events: isinstance(e, EpochEvent) and out.append(e)).run()
        headless.append(images_per_s(events, len(data.train)))

        epochs: list[EpochEvent] = []
        done = []
        clock = QElapsedTimer()
        tick = QTimer(interval=10)
        last = [0]

        def on_tick(clock=clock, last=last) -> None:
            now = clock.elapsed()
            gaps.append(now - last[0])
            last[0] = now

        tick.timeout.connect(on_tick)
        dock.start()
        dock.controller.epoch.connect(epochs.append)
        dock.controller.finished.connect(done.append)
        clock.start()
        tick.start()
        deadline = time.monotonic() + 600
        while not done and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.001)
        tick.stop()
        dock.controller.epoch.disconnect(epochs.append)
        dock.controller.finished.disconnect(done.append)
        live.append(images_per_s(epochs, len(data.train)))

    ratio = statistics.median(live) / statistics.median(headless)
    gaps.sort()
    p99 = gaps[int(0.99 * (len(gaps) - 1))] - 10 if gaps else float("nan")
    print(f"X vs O on shapes ({len(data.train)} images), {args.epochs} epochs × "
          f"{args.rounds} rounds, cpu, 1 thread")
    print(f"headless training: {statistics.median(headless):,.0f} images/s; with live views: "
          f"{statistics.median(live):,.0f} images/s")
    print(f"live/headless throughput: {ratio:.3f} (goal ≥ 0.95) "
          f"{'OK' if ratio >= 0.95 else 'BELOW GOAL'}")
    print(f"GUI event-loop latency during training, 99th percentile: {p99:.1f} ms "
          f"(goal < 50 ms) {'OK' if p99 < 50 else 'SLOW'}")
    window.doc.undo_stack.setClean()
    window.close()


if __name__ == "__main__":
    main()
