"""engine.predict (SPEC §7 ``convas predict``): images read from files are preprocessed
exactly as the trainer's validation batches, so predictions on saved PNGs equal the
model's own on the dataset tensors, and segmentation masks score the trainer's mIoU."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
import torch
from data_fixtures import squares_dataset, train_xo_classifier
from graph_builders import build
from PIL import Image

from engine import Graph
from engine.predict import PredictError, image_files, load_predictor, palette, predict, read_image
from engine.tasks import segmentation_metrics
from engine.train import Trainer
from engine.train_config import TrainConfig

torch.set_num_threads(1)


def template(name: str) -> Graph:
    text = (resources.files("resources") / "templates" / f"{name}.convas.json").read_text()
    return Graph.loads(text, name)


def save_png(x: torch.Tensor, path) -> None:
    """A uint8 [C, H, W] image as a PNG (grey or RGB)."""
    arr = x.numpy()
    Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)).save(path)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    out = tmp_path_factory.mktemp("xo")
    return train_xo_classifier(out), out


def test_classification_on_saved_pngs_equals_the_model_on_the_dataset(classifier, tmp_path):
    trainer, out = classifier
    val = trainer.dataset.val
    n = min(12, len(val))
    for i in range(n):
        save_png(val.x[i], tmp_path / f"{i:02d}.png")
    predictor = load_predictor(trainer.graph, out / "model.pt")
    results = predict(predictor, image_files([tmp_path]), top=5)
    trainer.model.eval()
    with torch.no_grad():
        own = trainer.model(trainer.val_batches.normalize(val.x[:n])).softmax(1)
    assert [r["image"] for r in results] == [str(tmp_path / f"{i:02d}.png") for i in range(n)]
    for r, probs in zip(results, own, strict=True):
        assert len(r["top"]) == 2  # at most the class count
        assert r["top"][0]["index"] == int(probs.argmax())
        assert r["top"][0]["class"] == trainer.dataset.classes[int(probs.argmax())]
        for t in r["top"]:
            assert t["probability"] == pytest.approx(float(probs[t["index"]]), abs=1e-5)
        assert r["top"][0]["probability"] >= r["top"][1]["probability"]


def test_a_classifier_made_fully_convolutional_predicts_as_before(classifier, tmp_path):
    from engine.checkpoint import load_checkpoint, save_checkpoint
    from engine.fcn import make_fully_convolutional

    trainer, out = classifier
    for i in range(3):
        save_png(trainer.dataset.val.x[i], tmp_path / f"{i}.png")
    files = image_files([tmp_path])
    before = predict(load_predictor(trainer.graph, out / "model.pt"), files)
    data = load_checkpoint(out / "model.pt")
    fcn = make_fully_convolutional(trainer.graph, data["state_dict"])
    extra = {k: v for k, v in data.items()
             if k in ("classes", "preprocess", "mean", "std")}
    save_checkpoint(tmp_path / "fcn.pt", fcn.graph, fcn.state_dict, **extra)
    after = predict(load_predictor(fcn.graph, tmp_path / "fcn.pt"), files)
    for b, a in zip(before, after, strict=True):  # the Output now gets [K, 1, 1]
        assert [t["index"] for t in a["top"]] == [t["index"] for t in b["top"]]
        assert a["top"][0]["probability"] == pytest.approx(b["top"][0]["probability"], abs=1e-5)


def test_top_and_threshold_limit_the_classes(classifier, tmp_path):
    trainer, out = classifier
    save_png(trainer.dataset.val.x[0], tmp_path / "a.png")
    predictor = load_predictor(trainer.graph, out / "model.pt")
    (one,) = predict(predictor, [tmp_path / "a.png"], top=1)
    assert len(one["top"]) == 1
    (kept,) = predict(predictor, [tmp_path / "a.png"], score_threshold=0.5)
    assert [t["probability"] >= 0.5 for t in kept["top"]] == [True] * len(kept["top"])
    assert len(kept["top"]) == 1


def test_images_of_another_size_and_mode_are_converted_as_in_training(tmp_path):
    # a colour 64×48 image read for a grey 32×32 input: Pillow's "L" and bilinear resize
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    arr, own = read_image(tmp_path / "c.png", 1, (32, 32))
    expected = np.asarray(Image.fromarray(rgb).convert("L").resize(
        (32, 32), Image.Resampling.BILINEAR))
    assert own == (64, 48) and arr.shape == (1, 32, 32)
    assert np.array_equal(arr[0], expected)


def test_unreadable_missing_and_empty_inputs_are_named(classifier, tmp_path):
    trainer, out = classifier
    (tmp_path / "bad.png").write_text("not an image")
    predictor = load_predictor(trainer.graph, out / "model.pt")
    with pytest.raises(PredictError, match="bad.png"):
        predict(predictor, [tmp_path / "bad.png"])
    with pytest.raises(PredictError, match="nowhere.png: no such"):
        image_files([tmp_path / "nowhere.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(PredictError, match="holds no images"):
        image_files([tmp_path / "empty"])


def test_a_checkpoint_for_another_design_is_refused(classifier):
    trainer, out = classifier
    other = template("x_vs_o")
    conv = next(n for n in other.nodes if other.type_of(n) == "Conv2d")
    other.set_param(conv, "out_channels", 5)
    with pytest.raises(PredictError, match="does not fit the design"):
        load_predictor(other, out / "model.pt")


def test_palette_gives_each_class_its_own_colour():
    flat = palette()
    colours = {tuple(flat[i:i + 3]) for i in range(0, len(flat), 3)}
    assert len(colours) == 256 and tuple(flat[:3]) == (0, 0, 0)


# ---- segmentation -----------------------------------------------------------------------

def fcn() -> Graph:
    nodes = [("x", "Input", {"channels": 1, "height": 16, "width": 16}),
             ("c1", "Conv2d", {"out_channels": 8, "padding": 1}),
             ("r1", "Activation", {}),
             ("score", "Conv2d", {"out_channels": 2, "kernel_size": 1}),
             ("out", "Output", {"task": "segmentation"})]
    ids = [n[0] for n in nodes]
    return build(nodes, list(zip(ids, ids[1:], strict=False)), "fcn")


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    out = tmp_path_factory.mktemp("seg")
    data = squares_dataset(64, 24)
    cfg = TrainConfig(epochs=2, batch_size=16, optimizer="adam", lr=0.01, device="cpu")
    trainer = Trainer(fcn(), cfg, dataset=data, out_dir=out, report_interval=0)
    trainer.run()
    return trainer, out


def test_masks_of_a_folder_score_the_trainers_miou(segmenter, tmp_path):
    trainer, out = segmenter
    val = trainer.dataset.val
    images = tmp_path / "images"
    images.mkdir()
    for i in range(len(val)):
        save_png(val.x[i], images / f"{i:02d}.png")
    masks = tmp_path / "masks"
    results = predict(load_predictor(trainer.graph, out / "model.pt"), image_files([images]),
                      out_dir=masks)
    confusion = np.zeros((2, 2), np.int64)
    for i, r in enumerate(results):
        assert r["mask"] == str(masks / f"{i:02d}.mask.png")
        with Image.open(r["mask"]) as img:
            assert img.mode == "P" and img.size == (16, 16)
            mask = np.asarray(img)
        truth = val.y[i].numpy()
        np.add.at(confusion, (truth.ravel(), mask.ravel()), 1)
        assert r["classes_present"] == [trainer.dataset.classes[c] for c in np.unique(mask)]
    own = trainer.evaluate(trainer.val_batches).metrics["val_miou"]
    assert 0.0 < own < 1.0
    assert segmentation_metrics(confusion)[2] == pytest.approx(own, abs=0.01)


def test_masks_are_at_the_images_own_size_beside_it(segmenter, tmp_path):
    trainer, out = segmenter
    big = np.repeat(np.repeat(trainer.dataset.val.x[0, 0].numpy(), 3, 0), 2, 1)  # 48×32
    Image.fromarray(big).save(tmp_path / "big.png")
    (r,) = predict(load_predictor(trainer.graph, out / "model.pt"), [tmp_path / "big.png"])
    assert r["mask"] == str(tmp_path / "big.mask.png")
    with Image.open(r["mask"]) as img:
        assert img.size == (32, 48) and img.mode == "P"
    # a later run on the folder leaves the masks it wrote out
    assert image_files([tmp_path]) == [tmp_path / "big.png"]


def test_a_segmentation_checkpoint_on_a_detection_design_is_refused_clearly(segmenter):
    trainer, out = segmenter
    graph = fcn()
    graph.set_param("out", "task", "detection")
    with pytest.raises(PredictError, match="detection"):
        load_predictor(graph, out / "model.pt")
