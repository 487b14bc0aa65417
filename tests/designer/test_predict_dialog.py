"""File → Predict on Images… (SPEC §7 in the application): the design with the last
run's weights on PNG files a person picks, in the background, showing exactly what
``engine.predict.predict`` (and so ``convas predict``) gives for the same files: the
top classes of a classifier, the mask of a segmentation design overlaid on the image.
Bad files and weights that do not fit are said in the dialog."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from designer.cli_predict import describe
from engine import Graph
from engine.predict import load_predictor, predict
from engine.train import Trainer
from engine.train_config import TrainConfig
from widgets.segmentation import overlay

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from data_fixtures import squares_dataset, train_xo_classifier  # noqa: E402
from graph_builders import build  # noqa: E402

torch.set_num_threads(1)
WAIT_MS = 60_000


def template(name: str) -> Graph:
    text = (resources.files("resources") / "templates" / f"{name}.convas.json").read_text()
    return Graph.loads(text, name)


def save_png(x: torch.Tensor, path: Path) -> Path:
    arr = x.numpy()
    Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)).save(path)
    return path


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    out = tmp_path_factory.mktemp("xo")
    trainer = train_xo_classifier(out)
    images = tmp_path_factory.mktemp("xo-images")
    files = [save_png(trainer.dataset.val.x[i], images / f"{i}.png") for i in range(2)]
    return trainer.graph, out / "model.pt", files


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    nodes = [("x", "Input", {"channels": 1, "height": 16, "width": 16}),
             ("c1", "Conv2d", {"out_channels": 8, "padding": 1}),
             ("r1", "Activation", {}),
             ("score", "Conv2d", {"out_channels": 2, "kernel_size": 1}),
             ("out", "Output", {"task": "segmentation"})]
    ids = [n[0] for n in nodes]
    graph = build(nodes, list(zip(ids, ids[1:], strict=False)), "fcn")
    out = tmp_path_factory.mktemp("seg")
    data = squares_dataset(64, 8)
    cfg = TrainConfig(epochs=2, batch_size=16, optimizer="adam", lr=0.01, device="cpu")
    Trainer(graph, cfg, dataset=data, out_dir=out, report_interval=0).run()
    images = tmp_path_factory.mktemp("seg-images")
    files = [save_png(data.val.x[i], images / f"{i}.png") for i in range(2)]
    return graph, out / "model.pt", files


def open_dialog(window, graph: Graph, checkpoint: Path | None):
    window.doc.new_from(graph.copy())
    window.training.checkpoint = checkpoint      # what the dock keeps after a run
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    next(a for a in file_menu.actions() if a.text() == "&Predict on Images…").trigger()
    return window._predict_dialog


def pick_and_predict(qtbot, dialog, monkeypatch, files: list[Path]) -> str:
    """Choose ``files`` with the Images… button and press Predict; the status line."""
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        lambda *a, **k: ([str(f) for f in files], ""))
    qtbot.mouseClick(dialog.files_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(dialog.finished_predicting, timeout=WAIT_MS) as done:
        qtbot.mouseClick(dialog.predict_button, Qt.MouseButton.LeftButton)
        assert dialog.busy and not dialog.predict_button.isEnabled()  # in the background
    assert not dialog.busy and dialog.predict_button.isEnabled()
    return done.args[0]


def pixels(image) -> np.ndarray:
    """A QImage's pixels as [H, W, 3] uint8."""
    from PySide6.QtGui import QImage

    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    raw = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    return raw[:, :rgb.width() * 3].reshape(rgb.height(), rgb.width(), 3).copy()


def test_classifier_results_are_those_of_engine_predict(window, qtbot, monkeypatch,
                                                        classifier):
    graph, checkpoint, files = classifier
    dialog = open_dialog(window, graph, checkpoint)
    assert dialog.isVisible() and dialog.weights == checkpoint
    assert pick_and_predict(qtbot, dialog, monkeypatch, files) == ""
    expected = predict(load_predictor(graph, checkpoint), files, top=5)
    items = dialog.view.items()
    assert [i.path for i in items] == [str(f) for f in files]
    for item, result in zip(items, expected, strict=True):
        assert [c for c, _ in item.top] == [t["class"] for t in result["top"]]
        assert [p for _, p in item.top] == pytest.approx(
            [t["probability"] for t in result["top"]], abs=1e-6)
        assert not item.error and item.mask is None
    # each row reads as `convas predict` prints it
    assert dialog.view.row_texts() == [describe(r) for r in expected]
    assert dialog.status.text() == "2 of 2 images predicted."
    # the first image is shown large, as read, with its classes and probabilities
    shown = pixels(dialog.view.shown_image())
    grey = np.asarray(Image.open(files[0]))
    assert np.array_equal(shown, np.stack([grey] * 3, axis=-1))
    best = expected[0]["top"][0]
    assert f"{best['class']}</td><td align='right'>&nbsp;{100 * best['probability']:.1f} %" \
        in dialog.view.details.text()


def test_segmentation_masks_are_overlaid_and_saved_with_the_run(window, qtbot, monkeypatch,
                                                                segmenter, tmp_path):
    graph, checkpoint, files = segmenter
    dialog = open_dialog(window, graph, checkpoint)
    assert dialog.masks_label.text() == str(checkpoint.parent / "predictions")
    assert pick_and_predict(qtbot, dialog, monkeypatch, files) == ""
    expected = predict(load_predictor(graph, checkpoint), files, out_dir=tmp_path)
    items = dialog.view.items()
    for item, result in zip(items, expected, strict=True):
        truth = np.asarray(Image.open(result["mask"]))
        assert np.array_equal(item.mask, truth)
        assert Path(item.mask_file) == checkpoint.parent / "predictions" / Path(
            result["mask"]).name
        assert np.array_equal(np.asarray(Image.open(item.mask_file)), truth)
        assert item.present() == result["classes_present"]
    assert dialog.view.row_texts() == [f"{f.name}: {', '.join(r['classes_present'])}"
                                       for f, r in zip(files, expected, strict=True)]
    # the first image large, the mask overlaid in the class colours, with a legend
    grey = np.asarray(Image.open(files[0]))[None]
    first = np.asarray(Image.open(expected[0]["mask"]))
    assert 1 in first   # the square was found, so the overlay differs from the image
    assert np.array_equal(pixels(dialog.view.shown_image()), overlay(grey, first))
    assert "background" in dialog.view.details.text()
    assert "square" in dialog.view.details.text()
    assert "masks saved in" in dialog.status.text()


def test_an_unreadable_file_gets_its_own_row_and_the_others_are_predicted(
        window, qtbot, monkeypatch, classifier, tmp_path):
    graph, checkpoint, files = classifier
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    dialog = open_dialog(window, graph, checkpoint)
    pick_and_predict(qtbot, dialog, monkeypatch, [files[0], bad, files[1]])
    items = dialog.view.items()
    assert [bool(i.error) for i in items] == [False, True, False]
    assert "bad.png" in items[1].error and "convert it to PNG or JPEG" in items[1].error
    assert "1 could not be read" in dialog.status.text()


def test_weights_that_do_not_fit_are_said_in_the_dialog(window, qtbot, monkeypatch,
                                                        classifier):
    graph, checkpoint, files = classifier
    changed = graph.copy()
    conv = next(n for n in changed.nodes if changed.type_of(n) == "Conv2d")
    changed.set_param(conv, "out_channels", 5)
    dialog = open_dialog(window, changed, checkpoint)
    assert dialog.weights is None
    assert "design changed since the last training run" in dialog.weights_label.text()
    # Predict asks for a checkpoint; cancelling that starts nothing
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: ("", ""))
    dialog.set_images(files)
    assert not dialog.start() and not dialog.busy
    # the run's checkpoint chosen by hand: refused in words, no traceback
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(checkpoint), ""))
    qtbot.mouseClick(dialog.weights_button, Qt.MouseButton.LeftButton)
    assert dialog.weights_label.text() == str(checkpoint)
    message = pick_and_predict(qtbot, dialog, monkeypatch, files)
    assert message.startswith("Cannot predict: the checkpoint")
    assert "does not fit the design" in message and "Traceback" not in message
    assert dialog.status.text() == message and dialog.view.items() == []


def test_a_classifier_made_fully_convolutional_predicts_as_before(window, qtbot, monkeypatch,
                                                                   classifier, tmp_path):
    graph, trained, files = classifier
    checkpoint = tmp_path / "run" / "model.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(trained.read_bytes())
    window.doc.new_from(graph.copy())
    window.training.checkpoint = checkpoint
    assert window.make_fully_convolutional(interactive=False)
    dialog = open_dialog(window, window.doc.graph, checkpoint)
    assert dialog.weights == tmp_path / "run" / "model.fcn.pt"
    assert pick_and_predict(qtbot, dialog, monkeypatch, files) == ""
    expected = predict(load_predictor(graph, checkpoint), files, top=5)
    for item, result in zip(dialog.view.items(), expected, strict=True):
        assert [c for c, _ in item.top] == [t["class"] for t in result["top"]]
        assert [p for _, p in item.top] == pytest.approx(
            [t["probability"] for t in result["top"]], abs=1e-5)


def test_a_folder_is_predicted_in_chunks_and_stop_ends_the_job(window, qtbot, monkeypatch,
                                                               classifier, tmp_path):
    graph, checkpoint, files = classifier
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        (folder / f"{i:02d}.png").write_bytes(files[i % 2].read_bytes())
    dialog = open_dialog(window, graph, checkpoint)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    qtbot.mouseClick(dialog.folder_button, Qt.MouseButton.LeftButton)
    assert dialog.images_label.text() == "many/"
    with qtbot.waitSignal(dialog.finished_predicting, timeout=WAIT_MS):
        assert dialog.start()
        qtbot.mouseClick(dialog.stop_button, Qt.MouseButton.LeftButton)
    assert len(dialog.view.items()) < 40 and "stopped" in dialog.status.text()
    # again, to the end: every image of the folder, in order
    with qtbot.waitSignal(dialog.finished_predicting, timeout=WAIT_MS):
        assert dialog.start()
    assert [i.name for i in dialog.view.items()] == [f"{i:02d}.png" for i in range(40)]
    assert dialog.status.text() == "40 of 40 images predicted."
