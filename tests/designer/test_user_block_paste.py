"""Copy, paste and duplicate of blocks made of blocks (SPEC §9): the copy carries the
definitions it needs, so an instance pastes into another design, and the definitions
the design lacks come in the same undo step."""

from __future__ import annotations

from designer.document import Document
from engine import Graph

VGG = "resources/templates/vgg16_stages.convas.json"
LENET = "resources/templates/lenet5.convas.json"


def test_duplicating_an_instance_keeps_its_definition_and_analyses(qtbot):
    doc = Document()
    doc.open(VGG)
    [copy_id] = doc.duplicate(["stage3"])
    assert doc.graph.type_of(copy_id) == "Stage3"
    assert doc.graph.params_of(copy_id) == doc.graph.params_of("stage3")
    info = doc.report.nodes[copy_id]   # an unwired instance of a known block
    assert info.resolved == {"width": 256} and "has no input" in info.error.message
    doc.undo()
    assert copy_id not in doc.graph


def test_an_instance_pasted_into_another_design_brings_its_blocks_in_one_step(qtbot):
    source = Document()
    source.open(VGG)
    data = source.copy(["stage3"])
    assert set(data["blocks"]) == {"Stage3", "ConvReLU"}   # with what Stage3 uses
    doc = Document()
    doc.open(LENET)
    before = doc.to_dict()
    [new] = doc.paste(data)
    assert set(doc.graph.blocks) == {"Stage3", "ConvReLU"}
    assert doc.graph.type_of(new) == "Stage3"
    assert doc.undo_stack.count() == 1                      # one step for the user
    loaded = Graph.from_dict(doc.to_dict())                 # the file is self-contained
    assert loaded.type_of(new) == "Stage3"
    doc.undo()
    assert doc.to_dict() == before and not doc.graph.blocks
    doc.redo()
    assert doc.graph.type_of(new) == "Stage3" and "ConvReLU" in doc.graph.blocks


def test_a_block_the_design_has_already_is_kept_as_the_design_has_it(qtbot):
    source = Document()
    source.open(VGG)
    data = source.copy(["stage3"])
    data["blocks"]["Stage3"]["doc"] = "another Stage3 than the design's"
    doc = Document()
    doc.open(VGG)
    kept = doc.graph.blocks["Stage3"].to_dict()
    [new] = doc.paste(data)
    assert doc.graph.blocks["Stage3"].to_dict() == kept
    assert doc.graph.type_of(new) == "Stage3"


def test_pasting_inside_a_body_adds_to_the_definition(qtbot):
    doc = Document()
    doc.open(VGG)
    data = doc.copy(["stage1"])             # a Stage2 instance
    assert doc.enter("stage3")
    [new] = doc.paste(data)
    assert new in doc.graph.blocks["Stage3"].body
    assert doc.graph.blocks["Stage3"].body.type_of(new) == "Stage2"
    doc.undo()
    assert new not in doc.graph.blocks["Stage3"].body
