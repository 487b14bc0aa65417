"""The dataset-fit rule (engine.dataset_fit): which side does not fit, both values, the
block to change and the values that fix it; and the trainer refuses with exactly it."""

from __future__ import annotations

import pytest
import torch
from graph_builders import build

from engine import analyze
from engine.data import Dataset, ImageSet
from engine.dataset_fit import dataset_misfit
from engine.train import Trainer
from engine.train_config import TrainConfig
from engine.train_events import FailedEvent, StepEvent

torch.set_num_threads(1)


def in_a_row(nodes):
    """A graph of these (id, type, params) nodes, each feeding the next."""
    ids = [n[0] for n in nodes]
    return build(nodes, list(zip(ids, ids[1:], strict=False)))


def classifier(shape=(1, 8, 8), outputs=2, tail=()):
    """Input → Conv2d → Flatten → Linear(outputs) → *tail → Output."""
    c, h, w = shape
    chain = [("x", "Input", {"channels": c, "height": h, "width": w}),
             ("conv", "Conv2d", {"out_channels": 4, "padding": 1}),
             ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": outputs}),
             *tail, ("out", "Output", {})]
    return in_a_row(chain)


def misfit(graph, shape=(1, 8, 8), classes=("a", "b")):
    return dataset_misfit(graph, analyze(graph), shape, list(classes), "tiny")


def tiny_dataset(shape=(1, 8, 8), classes=("a", "b")) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (12, *shape), dtype=torch.uint8, generator=g)
    y = torch.arange(12) % len(classes)
    c = shape[0]
    return Dataset("tiny", ImageSet(x[:8], y[:8]), ImageSet(x[8:], y[8:]), list(classes),
                   (0.5,) * c, (0.25,) * c)


def test_a_design_that_fits_has_no_misfit():
    assert misfit(classifier()) is None
    assert misfit(classifier((3, 16, 16), 10), (3, 16, 16), "abcdefghij") is None


def test_an_input_of_another_shape_names_both_sides_and_the_fix():
    m = misfit(classifier((1, 8, 8)), shape=(3, 16, 12))
    assert (m.kind, m.block, m.design, m.data) == ("input", "x", (1, 8, 8), (3, 16, 12))
    assert m.changes == {"channels": 3, "height": 16, "width": 12}
    assert "1×8×8" in m.message and "3×16×12" in m.message and "'x'" in m.message
    assert "3×16×12" in m.fix


def test_the_input_is_judged_before_the_classes():
    m = misfit(classifier((1, 8, 8), outputs=7), shape=(1, 10, 10), classes="abc")
    assert m.kind == "input"


def test_a_class_count_mismatch_names_the_linear_and_its_out_features():
    m = misfit(classifier(outputs=5), classes="abc")
    assert (m.kind, m.block, m.design, m.data) == ("classes", "fc", (5,), (3,))
    assert m.changes == {"out_features": 3}
    assert "5 outputs" in m.message and "3 classes" in m.message and "(a, b, c)" in m.message


def test_the_linear_is_found_behind_blocks_that_pass_a_vector_through():
    tail = [("act", "Activation", {}), ("drop", "Dropout", {})]
    m = misfit(classifier(outputs=5, tail=tail))
    assert (m.block, m.changes) == ("fc", {"out_features": 2})
    assert "(from 'drop')" in m.message          # the block that feeds the Output


@pytest.mark.parametrize("nodes, ending", [
    ([("conv", "Conv2d", {"out_channels": 5}), ("gap", "GlobalAvgPool", {})], "a Linear"),
    ([("conv", "Conv2d", {"out_channels": 5})], "Flatten and a Linear"),
])
def test_without_a_deciding_linear_there_is_no_one_edit_fix(nodes, ending):
    chain = [("x", "Input", {"channels": 1, "height": 8, "width": 8}), *nodes,
             ("out", "Output", {})]
    graph = in_a_row(chain)
    m = misfit(graph)
    assert m.kind == "classes" and m.changes == {} and m.block == nodes[-1][0]
    assert m.data == (2,) and m.design == analyze(graph).output_shape
    assert f"end the network with {ending} with out_features 2" == m.fix


@pytest.mark.parametrize("graph, shape, classes", [
    (classifier((1, 8, 8)), (3, 16, 12), "ab"),
    (classifier(outputs=5), (1, 8, 8), "abc"),
    (classifier(outputs=5, tail=[("act", "Activation", {})]), (1, 8, 8), "abcdefghijkl"),
])
def test_applying_the_fix_makes_the_design_fit(graph, shape, classes):
    while (m := misfit(graph, shape, classes)) is not None:
        assert m.changes, m
        for name, value in m.changes.items():
            graph.set_param(m.block, name, value)
    assert analyze(graph).ok


def test_a_shape_the_analysis_could_not_work_out_is_not_judged():
    graph = build([("x", "Input", {"channels": 1, "height": 8, "width": 8}),
                   ("fc", "Linear", {"out_features": 3}), ("out", "Output", {})],
                  [("x", "fc"), ("fc", "out")])              # Linear on an image: an error
    assert not analyze(graph).ok
    assert misfit(graph) is None


@pytest.mark.parametrize("graph, shape, classes", [
    (classifier((1, 8, 8)), (1, 6, 6), "ab"),
    (classifier(outputs=4), (1, 8, 8), "abc"),
    (build([("x", "Input", {"channels": 1, "height": 8, "width": 8}),
            ("conv", "Conv2d", {"out_channels": 3}), ("out", "Output", {})],
           [("x", "conv"), ("conv", "out")]), (1, 8, 8), "abc"),
])
def test_the_trainer_refuses_with_the_rules_answer_before_training(graph, shape, classes):
    data = tiny_dataset(shape, classes)
    events = []
    result = Trainer(graph, TrainConfig(epochs=1, batch_size=4, device="cpu"),
                     callback=events.append, dataset=data).run()
    assert isinstance(result, FailedEvent) and result.kind == "data"
    expected = dataset_misfit(graph, analyze(graph), data.image_shape, data.classes, data.name)
    assert result.reason == expected.refusal()
    assert "choose another dataset" in result.reason
    assert not any(isinstance(e, StepEvent) for e in events)
