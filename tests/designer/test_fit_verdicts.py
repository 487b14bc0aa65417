"""One dataset-fit rule, two callers: for the same design and dataset, the trainer's
refusal and the Training dock's message and fix come from the same verdict, and the
application's one-edit fix is one the trainer then accepts."""

from __future__ import annotations

import pytest
import torch

from designer.dataset_fit import fit_button_text, fit_message, fit_problem
from designer.dataset_preview import DatasetPreview
from designer.document import Document
from engine import Graph
from engine.data import Dataset, ImageSet
from engine.train import Trainer
from engine.train_config import TrainConfig
from engine.train_events import DoneEvent, FailedEvent

torch.set_num_threads(1)


def chain(*nodes: tuple) -> Graph:
    g = Graph("fit")
    for node_id, kind, params in nodes:
        g.add_node(node_id, kind, params)
    for (a, *_), (b, *_) in zip(nodes, nodes[1:], strict=False):
        g.add_edge(a, b)
    return g


def classifier(shape=(1, 8, 8), outputs=2, *tail) -> Graph:
    c, h, w = shape
    return chain(("x", "Input", {"channels": c, "height": h, "width": w}),
                 ("conv", "Conv2d", {"out_channels": 4, "padding": 1}),
                 ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": outputs}),
                 *tail, ("out", "Output", {}))


def dataset(shape, classes) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (12, *shape), dtype=torch.uint8, generator=g)
    y = torch.arange(12) % len(classes)
    return Dataset("tiny", ImageSet(x[:8], y[:8]), ImageSet(x[8:], y[8:]), list(classes),
                   (0.5,) * shape[0], (0.25,) * shape[0])


def preview_of(data: Dataset) -> DatasetPreview:
    """What the dock's preview of this dataset holds (its own loader is not the point)."""
    return DatasetPreview(data.name, data.describe(), data.image_shape, list(data.classes),
                          data.train.x[:4].numpy(), data.train.y[:4].numpy())


def train(graph: Graph, data: Dataset):
    return Trainer(graph.copy(), TrainConfig(epochs=1, batch_size=4, device="cpu"),
                   dataset=data).run()


MISMATCHES = {
    "input size": (classifier((1, 8, 8)), (1, 6, 6), "ab"),
    "input channels": (classifier((1, 8, 8)), (3, 8, 8), "ab"),
    "class count": (classifier(outputs=5), (1, 8, 8), "abc"),
    "class count behind dropout": (classifier((1, 8, 8), 5, ("drop", "Dropout", {})),
                                   (1, 8, 8), "abc"),
    "no linear at the end": (chain(("x", "Input", {"channels": 1, "height": 8, "width": 8}),
                                   ("conv", "Conv2d", {"out_channels": 5}),
                                   ("gap", "GlobalAvgPool", {}), ("out", "Output", {})),
                             (1, 8, 8), "abc"),
}


@pytest.mark.parametrize("case", list(MISMATCHES))
def test_the_trainer_and_the_application_give_the_same_verdict(qapp, case):
    graph, shape, classes = MISMATCHES[case]
    data = dataset(shape, classes)
    doc = Document()
    doc.new_from(graph.copy())
    app = fit_problem(doc, preview_of(data))
    result = train(graph, data)
    assert app is not None
    assert isinstance(result, FailedEvent) and result.kind == "data"
    assert result.reason == app.refusal()          # the same sides, block and fix
    shown = fit_message(app)
    assert app.message[1:] in shown
    if app.changes:                               # one edit fixes it: offered as a button
        assert fit_button_text(app).lower() == app.fix.lower()
    else:                                         # none does: the message says what to build
        assert fit_button_text(app) == "" and app.fix in shown


@pytest.mark.parametrize("case", ["input size", "class count behind dropout"])
def test_after_the_applications_fix_the_trainer_trains(qapp, case):
    graph, shape, classes = MISMATCHES[case]
    data = dataset(shape, classes)
    doc = Document()
    doc.new_from(graph.copy())
    preview = preview_of(data)
    app = fit_problem(doc, preview)
    steps = doc.undo_stack.count()
    assert doc.set_params(app.block, app.changes, "fit")   # what the fit button does
    assert doc.undo_stack.count() == steps + 1
    assert fit_problem(doc, preview) is None
    assert isinstance(train(doc.graph, data), DoneEvent)


def test_a_design_that_fits_is_accepted_by_both(qapp):
    graph, data = classifier((1, 8, 8), 3), dataset((1, 8, 8), "abc")
    doc = Document()
    doc.new_from(graph.copy())
    assert fit_problem(doc, preview_of(data)) is None
    assert isinstance(train(graph, data), DoneEvent)


def test_a_segmentation_preview_is_judged_as_segmentation():
    """The dock's preview of a segmentation set carries its task, so the application
    refuses a classifier for it (and accepts a segmentation design) as the trainer does."""
    from designer.dataset_preview import _image_labels
    from engine.data import load_dataset

    ds = load_dataset("shapes-seg", options={"count": 40, "size": 32})
    labels = _image_labels(ds.train.y.numpy(), ds.num_classes)
    assert labels.shape == (min(len(ds.train), 512),) and set(labels) <= set(range(1, 6))
    # each image's label is a glyph class that really is in its mask
    assert all((ds.train.y[i] == int(k)).any() for i, k in enumerate(labels))
    preview = DatasetPreview("shapes-seg", ds.describe(), ds.image_shape, list(ds.classes),
                             ds.train.x[:4].numpy(), labels[:4], ds.task)
    assert preview.task == "segmentation"
    doc = Document()
    doc.new_from(classifier((1, 32, 32), 6))
    misfit = fit_problem(doc, preview)
    assert misfit is not None and misfit.kind == "task"
    seg = chain(("x", "Input", {"channels": 1, "height": 32, "width": 32}),
                ("conv", "Conv2d", {"out_channels": 6}),
                ("out", "Output", {"task": "segmentation"}))
    doc.new_from(seg)
    assert fit_problem(doc, preview) is None
