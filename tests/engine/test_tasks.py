"""Task objects (engine.tasks, SPEC §7): segmentation metrics against hand-computed
values, the loss and accuracy that ignore 255, masks augmented with their images, the
fit rule for segmentation designs, and the Output block's ``task``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from graph_builders import build

from engine import analyze
from engine.blocks import CATALOGUE
from engine.data import Augment, Batches, ImageSet
from engine.dataset_fit import dataset_misfit
from engine.tasks import Classification, Segmentation, get_task, segmentation_metrics
from engine.train_config import TrainConfig

torch.set_num_threads(1)

# [true, predicted] pixel counts over a validation set of 4 classes: class 2 is never
# present but predicted once (union 1: IoU 0, counted); class 3 is neither present nor
# predicted (union empty: left out of the mean).
CONFUSION = np.array([[5, 1, 0, 0],
                      [2, 3, 1, 0],
                      [0, 0, 0, 0],
                      [0, 0, 0, 0]])


def test_miou_against_a_hand_computed_confusion_matrix():
    accuracy, iou, miou = segmentation_metrics(CONFUSION)
    assert accuracy == pytest.approx(8 / 12)
    # IoU = TP / (row + column − TP)
    assert iou[:3] == pytest.approx([5 / (6 + 7 - 5), 3 / (6 + 4 - 3), 0 / (0 + 1 - 0)])
    assert np.isnan(iou[3])
    assert miou == pytest.approx((5 / 8 + 3 / 7 + 0) / 3)


def pixels_for(confusion: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and one-hot logits [1, K, 1, P] whose pixels make ``confusion``."""
    truth, predicted = [], []
    for t, p in np.argwhere(confusion):
        truth += [t] * confusion[t, p]
        predicted += [p] * confusion[t, p]
    k = len(confusion)
    logits = torch.nn.functional.one_hot(torch.tensor(predicted), k).float().T[None, :, None]
    return torch.tensor(truth)[None, None], logits


def test_the_accumulator_counts_all_batches_in_one_matrix_and_ignores_255():
    task = get_task("segmentation", ["a", "b", "c", "d"])
    y, logits = pixels_for(CONFUSION)
    # two batches of one image each, every pixel also seen once as ignored (255): the
    # ignored pixels predict class 0 and would change every number if they counted
    halves = (slice(0, 7), slice(7, 12))
    accumulator = task.accumulator(4, torch.device("cpu"))
    for part in halves:
        yy, out = y[..., part], logits[..., part]
        ignored = torch.full_like(yy, 255)
        zeros = torch.zeros_like(out)
        zeros[:, 0] = 5.0
        accumulator.add(torch.cat((out, zeros), 3), torch.cat((yy, ignored), 2))
    result = accumulator.finish()
    np.testing.assert_array_equal(result.confusion, CONFUSION)
    assert result.accuracy == pytest.approx(8 / 12)
    assert result.metrics["val_miou"] == pytest.approx((5 / 8 + 3 / 7) / 3)
    assert result.metrics["val_iou_c"] == 0.0 and result.metrics["val_iou_d"] is None
    # the loss is the mean over the 12 labelled pixels only
    expected = torch.nn.functional.cross_entropy(logits, y)
    assert result.loss == pytest.approx(float(expected), rel=1e-6)
    # a mean of the two batches' mIoU would differ: the matrix is the whole set's
    per_batch = [segmentation_metrics(np.bincount(
        (y[..., p] * 4 + logits[..., p].argmax(1)).flatten().numpy(), minlength=16
    ).reshape(4, 4))[2] for p in halves]
    assert np.mean(per_batch) != pytest.approx(result.metrics["val_miou"])


def test_the_training_loss_and_accuracy_skip_ignored_pixels():
    task = Segmentation(["a", "b"])
    logits = torch.tensor([[[[2.0, -1.0, 0.5, 3.0]], [[0.0, 1.0, 1.5, -2.0]]]])
    y = torch.tensor([[[0, 1, 255, 1]]])
    loss = task.criterion(TrainConfig())(logits, y)
    labelled = torch.nn.functional.cross_entropy(logits[..., [0, 1, 3]], y[..., [0, 1, 3]])
    assert float(loss) == pytest.approx(float(labelled))
    assert task.hits(logits, y).tolist() == [2, 3]            # pixel 3 is wrong
    assert Classification().hits(torch.eye(3), torch.tensor([0, 2, 2])).tolist() == [2, 3]


def test_columns_follow_the_spec():
    assert Segmentation().columns(["bg", "cat"]) == [
        "epoch", "train_loss", "train_pixel_accuracy", "val_loss", "val_pixel_accuracy",
        "val_miou", "val_iou_bg", "val_iou_cat", "seconds", "lr"]
    assert Classification().columns(["a"]) == [
        "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "lr"]
    assert get_task("detection", list("abcde")).columns(list("abcde")) == [
        "epoch", "train_loss", "train_found", "val_loss", "val_map50", "val_map", "seconds",
        "lr"]
    with pytest.raises(ValueError, match="not available yet"):
        get_task("pose")


@pytest.mark.parametrize("augment", [Augment(hflip=True), Augment(crop_padding=2),
                                     Augment(crop_padding=1, hflip=True)])
def test_masks_are_flipped_and_cropped_with_their_images(augment):
    """Each pixel's value names its position, in the image and in the mask alike, so
    after augmentation they must still agree pixel by pixel; pixels shifted in from
    outside are black in the image and ignored (255) in the mask."""
    n, h, w = 16, 5, 7
    position = (torch.arange(h * w).view(h, w) + 1).to(torch.uint8)
    x = position.expand(n, 1, h, w).clone()
    y = position.expand(n, h, w).clone()
    batches = Batches(ImageSet(x, y), 8, mean=(0.0,), std=(1.0,), shuffle=True,
                      augment=augment, seed=3)
    changed = 0
    for xb, yb in batches:
        assert yb.dtype == torch.int64 and yb.shape == (len(xb), h, w)
        image = (xb[:, 0] * 255).round().to(torch.int64)
        outside = yb == 255
        assert torch.equal(image[~outside], yb[~outside])
        assert torch.all(image[outside] == 0)
        changed += int((yb != position.long()).flatten(1).any(1).sum())
    assert changed > 0  # the augmentation did something


def test_plain_batches_keep_masks_as_they_are():
    y = torch.randint(0, 3, (10, 4, 4), dtype=torch.uint8)
    x = torch.zeros(10, 1, 4, 4, dtype=torch.uint8)
    got = torch.cat([yb for _, yb in Batches(ImageSet(x, y), 4, mean=(0.0,), std=(1.0,))])
    assert torch.equal(got, y.long())


# ---- the fit rule and the Output block ---------------------------------------------------


def seg_design(classes=3, size=(8, 8), data=(8, 8), tail=(), task="segmentation"):
    h, w = size
    nodes = [("x", "Input", {"channels": 1, "height": data[0], "width": data[1]}),
             ("c1", "Conv2d", {"out_channels": 4, "padding": 1}),
             ("score", "Conv2d", {"out_channels": classes, "kernel_size": 1}), *tail,
             ("out", "Output", {"task": task})]
    if (h, w) != data:
        nodes.insert(3, ("shrink", "AdaptiveAvgPool2d", {"output_size": [h, w]}))
    ids = [n[0] for n in nodes]
    return build(nodes, list(zip(ids, ids[1:], strict=False)))


def misfit(graph, classes=("bg", "a", "b"), shape=(1, 8, 8), task="segmentation"):
    return dataset_misfit(graph, analyze(graph), shape, list(classes), "seg", task)


def test_a_fitting_segmentation_design_has_no_misfit():
    assert misfit(seg_design()) is None


def test_a_class_count_mismatch_names_the_convolution_and_fixes_in_one_edit():
    graph = seg_design(classes=5, tail=[("act", "Activation", {})])
    m = misfit(graph)
    assert (m.kind, m.block, m.design, m.data) == ("classes", "score", (5, 8, 8), (3, 8, 8))
    assert "5 class maps" in m.message and "3 classes (bg, a, b)" in m.message
    assert m.changes == {"out_channels": 3}
    graph.set_param(m.block, "out_channels", 3)
    assert misfit(graph) is None


def test_the_convolution_is_found_behind_an_upsample_that_keeps_its_class_maps():
    nodes = [("x", "Input", {"channels": 1, "height": 8, "width": 8}),
             ("c1", "Conv2d", {"out_channels": 4, "padding": 1, "stride": 2}),
             ("score", "Conv2d", {"out_channels": 5, "kernel_size": 1}),
             ("up", "Upsample", {"scale_factor": 2, "mode": "bilinear"}),
             ("out", "Output", {"task": "segmentation"})]
    ids = [n[0] for n in nodes]
    graph = build(nodes, list(zip(ids, ids[1:], strict=False)))
    m = misfit(graph)
    assert (m.block, m.changes) == ("score", {"out_channels": 3})
    assert "(from 'up'" in m.message
    graph.set_param(m.block, "out_channels", 3)
    assert misfit(graph) is None


def test_an_output_of_another_size_names_both_sizes_and_the_block():
    m = misfit(seg_design(size=(4, 4)))
    assert (m.kind, m.block, m.design, m.data) == ("size", "shrink", (3, 4, 4), (3, 8, 8))
    assert "4×4" in m.message and "8×8" in m.message and "'shrink'" in m.message
    assert not m.changes and "choose another dataset" in m.refusal()


def test_the_outputs_task_must_be_the_datasets():
    m = misfit(seg_design(), task="classification", classes=("a", "b", "c"))
    assert (m.kind, m.block) == ("task", "out")
    assert "set to segmentation" in m.message and "classification dataset" in m.message
    m = misfit(seg_design(task="classification"))
    assert m.kind == "task" and "1×1 Conv2d with out_channels 3" in m.fix


def test_the_output_block_takes_a_task():
    spec = CATALOGUE["Output"]
    assert spec.defaults() == {"task": "classification",
                               "anchors": ((8.0, 8.0), (16.0, 16.0), (32.0, 32.0))}
    assert spec.param_index["task"].choices == ("classification", "segmentation", "detection")
    assert spec.subtitle({"task": "classification"}) == ""
    assert spec.subtitle({"task": "segmentation"}) == "segmentation"
    assert spec.subtitle({"task": "detection"}) == "detection · 3 anchors"
    assert spec.subtitle({"task": "detection", "anchors": [[4, 4]]}) == "detection · 1 anchor"
    # a segmentation Output on a vector, or a detection one on channels that cannot be
    # A·(5+K), are errors on the Output itself
    vector = build([("x", "Input", {"channels": 1, "height": 4, "width": 4}),
                    ("flat", "Flatten", {}), ("out", "Output", {"task": "segmentation"})],
                   [("x", "flat"), ("flat", "out")])
    error = analyze(vector).nodes["out"].error
    assert error is not None and "[K,H,W]" in error.message and "1×1 Conv2d" in error.message
    detection = seg_design(task="detection")   # 3 channels: not 3 anchors × (5 + K)
    error = analyze(detection).nodes["out"].error
    assert error is not None and "3 anchors × (5 + classes)" in error.message
    assert analyze(seg_design(classes=30, task="detection")).nodes["out"].error is None


def test_a_checkpoint_from_before_tasks_reads_as_a_classifier_with_its_preprocessing(tmp_path):
    from engine.checkpoint import load_checkpoint

    graph = build([("x", "Input", {"channels": 1, "height": 12, "width": 10}),
                   ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 2}),
                   ("out", "Output", {})], [("x", "flat"), ("flat", "fc"), ("fc", "out")])
    old = {"format": "convas.checkpoint", "version": 1, "graph": graph.to_dict(),
           "state_dict": {}, "classes": ["a", "b"], "mean": [0.5], "std": [0.25]}
    torch.save(old, tmp_path / "old.pt")
    data = load_checkpoint(tmp_path / "old.pt")
    assert data["task"] == "classification"
    assert data["preprocess"] == {"channels": 1, "size": [12, 10], "mean": [0.5],
                                  "std": [0.25]}
