"""File → Predict on Images… with a detector: the dialog's boxes are exactly those of
``engine.predict.predict`` (``convas predict --json``) at the threshold chosen, in the
image's own pixels, drawn on the image in their class colours and listed under it."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from designer.templates import template_files
from engine import Graph
from engine.predict import load_predictor, predict
from engine.train import Trainer
from engine.train_config import TrainConfig
from widgets.detection_view import box_colour

torch.set_num_threads(1)
THRESHOLD = 0.05      # a barely trained detector's scores are low: show more than 0.25


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """The YOLO template after one short epoch, and three validation images saved twice
    as large as the network sees them (so boxes must be scaled back)."""
    f = next(f for f in template_files() if f.name == "yolo_shapes.convas.json")
    graph = Graph.loads(f.read_text("utf-8"), f.name)
    graph.training["dataset_options"] = {"count": 160}
    out = tmp_path_factory.mktemp("yolo")
    cfg = TrainConfig.from_dict({**graph.training, "epochs": 1, "batch_size": 16,
                                 "device": "cpu"})
    trainer = Trainer(graph, cfg, out_dir=out, report_interval=0)
    trainer.run()
    folder = tmp_path_factory.mktemp("det-images")
    files = []
    for i in range(3):
        grey = trainer.dataset.val.x[i, 0].numpy()
        path = folder / f"{i}.png"
        Image.fromarray(grey).resize((128, 128), Image.Resampling.NEAREST).save(path)
        files.append(path)
    return graph, out / "model.pt", files


def test_detections_are_those_of_convas_predict_and_drawn(window, qtbot, monkeypatch, detector):
    graph, checkpoint, files = detector
    window.doc.new_from(graph.copy())
    window.training.checkpoint = checkpoint
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    next(a for a in file_menu.actions() if a.text() == "&Predict on Images…").trigger()
    dialog = window._predict_dialog
    assert dialog.task == "detection" and dialog.score_spin.isVisibleTo(dialog)
    assert not dialog.top_spin.isVisibleTo(dialog) and dialog.score_spin.value() == 0.25
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        lambda *a, **k: ([str(f) for f in files], ""))
    qtbot.mouseClick(dialog.files_button, Qt.MouseButton.LeftButton)
    dialog.score_spin.setValue(THRESHOLD)
    with qtbot.waitSignal(dialog.finished_predicting, timeout=60_000) as done:
        qtbot.mouseClick(dialog.predict_button, Qt.MouseButton.LeftButton)
    assert done.args == [""]
    expected = predict(load_predictor(graph, checkpoint), files, score_threshold=THRESHOLD)
    json.dumps(expected)                                  # what --json prints
    items = dialog.view.items()
    assert [i.path for i in items] == [str(f) for f in files]
    for item, result in zip(items, expected, strict=True):
        assert list(item.detections) == result["detections"]
        assert item.own_size == (128, 128)
    assert sum(len(r["detections"]) for r in expected) > 0, "nothing to compare"
    assert dialog.view.row_texts() == [i.summary() for i in items]
    # the first image with boxes, large: its best box's edge in the class colour
    row = next(k for k, r in enumerate(expected) if r["detections"])
    dialog.view.list.setCurrentRow(row)
    best = expected[row]["detections"][0]
    shown = dialog.view.picture.image()
    scale = shown.width() / 128                           # own pixels → drawn pixels
    x1, y1, x2, y2 = best["box"]
    y = int((y1 + y2) / 2 * scale)
    colours = set()
    for x in range(int(x1 * scale) - 1, int(x1 * scale) + 2):
        c = shown.pixelColor(x, y)
        colours.add((c.red(), c.green(), c.blue()))
    assert box_colour(best["index"]) in colours
    text = dialog.view.details.text()
    assert f"{best['score']:.3f}" in text and best["class"] in text
    assert f"[{', '.join(f'{v:.1f}' for v in best['box'])}]" in text


def test_the_default_threshold_is_convas_predicts(detector):
    from designer.predict_dialog import predict_items

    graph, checkpoint, files = detector
    predictor = load_predictor(graph, checkpoint)
    items = predict_items(predictor, files, 5, None, 0.25)
    expected = predict(predictor, files)                 # convas predict's default
    assert [list(i.detections) for i in items] == [r["detections"] for r in expected]
    assert all(d["score"] >= 0.25 for i in items for d in i.detections)
