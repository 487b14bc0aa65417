"""Wires routed around blocks: detours beside the blocks they would cross, separate
lanes, routes that follow moves, additions and removals, and no wire across a block in
any template; driven through GraphCanvas as test_canvas.py does."""

from __future__ import annotations

import time
from importlib import resources

import pytest
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainterPathStroker
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QGraphicsScene
from test_canvas import LEFT, NONE, centre, click, drag, view, vp

from engine.graph import Graph
from widgets.canvas import GraphCanvas, NodeView
from widgets.canvas.edge_item import LANE_GAP, LANE_MARGIN, wire_path


def _crosses(edge, rect) -> bool:
    """Whether the drawn wire (its line, 2 px wide) passes through `rect`.

    QPainterPath.intersects on the bare path would treat the open path as the area it
    encloses once closed, so a detour around a block would "intersect" that block;
    the stroke is the line itself.
    """
    stroker = QPainterPathStroker()
    stroker.setWidth(2.0)
    return stroker.createStroke(edge.mapToScene(edge.path())).intersects(rect)


def _card(canvas: GraphCanvas, node_id: str) -> QRectF:
    item = canvas.node_item(node_id)
    return item.mapRectToScene(item.card_rect())


def _crossed_blocks(canvas: GraphCanvas) -> list[tuple]:
    """(wire, block) for every block a wire runs through, other than its own two."""
    return [(key, node_id) for key, edge in canvas.scene_.edges.items()
            for node_id, item in canvas.scene_.nodes.items()
            if item is not edge.src and item is not edge.dst
            and _crosses(edge, _card(canvas, node_id))]


def _is_plain(canvas: GraphCanvas, key) -> bool:
    """Drawn as the ordinary bezier between its ports."""
    edge = canvas.scene_.edges[key]
    plain = wire_path(canvas.port_scene_pos(key[0], None), canvas.port_scene_pos(key[1], key[2]))
    return not edge.is_detour() and edge.path() == plain


@pytest.fixture
def column(qtbot) -> GraphCanvas:
    """Three blocks stacked in one column; a → c skips b."""
    c = GraphCanvas()
    qtbot.addWidget(c)
    c.resize(1000, 700)
    c.show()
    qtbot.waitExposed(c)
    c.add_node(view("a", 0, 0))
    c.add_node(view("b", 0, 120))
    c.add_node(view("c", 0, 240, inputs=3, kind="Add", category="Merge"))
    c.add_edge("a", "b", 0, "[64, 8, 8]")
    c.add_edge("b", "c", 0, "[64, 8, 8]")
    c.add_edge("a", "c", 1, "[64, 8, 8]")
    c.centerOn(QPointF(150, 160))
    return c


def test_wire_skipping_a_block_detours_beside_it(column):
    skip = column.scene_.edges[("a", "c", 1)]
    b = _card(column, "b")
    straight = wire_path(column.port_scene_pos("a", None), column.port_scene_pos("c", 1))
    assert _crosses(skip, b) is False and straight.intersects(b)
    assert skip.is_detour()
    path = skip.mapToScene(skip.path())
    assert path.pointAtPercent(0.0) == column.port_scene_pos("a", None)
    assert path.pointAtPercent(1.0) == column.port_scene_pos("c", 1)
    lane = skip.midpoint()               # the label sits on the lane, beside b
    assert lane.x() == pytest.approx(b.right() + LANE_MARGIN, abs=1.0)
    assert b.top() < lane.y() < b.bottom()
    assert _is_plain(column, ("a", "b", 0)) and _is_plain(column, ("b", "c", 0))
    assert _crossed_blocks(column) == []


def test_detour_is_what_hover_and_clicks_hit(column, qtbot):
    skip = column.scene_.edges[("a", "c", 1)]
    lane = skip.midpoint()
    assert skip.shape().contains(lane)
    middle = (column.port_scene_pos("a", None) + column.port_scene_pos("c", 1)) / 2
    assert not skip.shape().contains(middle)       # where the bezier would have run
    assert column.scene_.item_at(middle) is column.node_item("b")
    QTest.mouseMove(column.viewport(), vp(column, lane))
    qtbot.waitUntil(lambda: skip.hovered)
    assert skip.boundingRect().contains(skip._label_rect())
    click(column, lane)
    assert column.selected_edges() == [("a", "c", 1)]


def test_detours_over_one_span_take_separate_lanes(column):
    column.add_edge("a", "c", 2, "[64, 8, 8]")
    one, two = (column.scene_.edges[("a", "c", p)] for p in (1, 2))
    assert one.is_detour() and two.is_detour()
    assert abs(one.midpoint().x() - two.midpoint().x()) == pytest.approx(LANE_GAP)
    assert _crossed_blocks(column) == []
    column.remove_edge("a", "c", 1)
    column.remove_edge("a", "c", 2)
    column.add_edge("a", "c", 2, "[64, 8, 8]")     # a lane freed is free again
    lane = column.scene_.edges[("a", "c", 2)].midpoint().x()
    assert lane == pytest.approx(_card(column, "b").right() + LANE_MARGIN, abs=1.0)


def test_routes_follow_moves_additions_and_removals(column):
    column.set_positions({"b": (400.0, 120.0)})     # out of the way: straight again
    assert _is_plain(column, ("a", "c", 1))
    column.set_positions({"b": (20.0, 120.0)})      # back in the way
    assert column.scene_.edges[("a", "c", 1)].is_detour()
    assert _crossed_blocks(column) == []
    column.set_positions({"a": (600.0, 0.0), "c": (600.0, 240.0)})   # the ends move
    assert _is_plain(column, ("a", "c", 1))
    column.add_node(view("d", 560, 110))            # a new block in its way
    assert column.scene_.edges[("a", "c", 1)].is_detour()
    assert _crossed_blocks(column) == []
    column.update_node(view("d", 560, 110, inputs=9, kind="Concat", category="Merge"))
    lane = column.scene_.edges[("a", "c", 1)].midpoint().x()
    assert lane == pytest.approx(_card(column, "d").right() + LANE_MARGIN, abs=1.0)
    column.remove_node("d")
    assert _is_plain(column, ("a", "c", 1))


def test_a_block_in_the_lane_pushes_it_out_until_it_leaves(column):
    lane = column.scene_.edges[("a", "c", 1)].midpoint().x()
    column.add_node(view("e", lane - 20, 140))
    assert column.scene_.edges[("a", "c", 1)].midpoint().x() == pytest.approx(
        _card(column, "e").right() + LANE_MARGIN, abs=1.0)
    assert _crossed_blocks(column) == []
    column.set_positions({"e": (900.0, 140.0)})
    assert column.scene_.edges[("a", "c", 1)].midpoint().x() == pytest.approx(lane)


def test_dragging_blocks_reroutes_live(column, qtbot):
    b = centre(column, "b")
    port = column.viewport()
    QTest.mousePress(port, LEFT, NONE, vp(column, b))
    for i in range(1, 5):
        QTest.mouseMove(port, vp(column, b + QPointF(100 * i, 0)))
    assert _is_plain(column, ("a", "c", 1))        # before the button is released
    QTest.mouseMove(port, vp(column, b + QPointF(20, 0)))
    assert column.scene_.edges[("a", "c", 1)].is_detour()
    assert _crossed_blocks(column) == []
    QTest.mouseRelease(port, LEFT, NONE, vp(column, b + QPointF(20, 0)))


def test_big_drags_route_once_the_index_is_back(column, qtbot):
    """Dragging over 100 blocks switches the scene index off; routing catches up after."""
    fillers = [f"f{i}" for i in range(110)]
    for i, name in enumerate(fillers):
        column.add_node(view(name, 1200 + (i % 10) * 220, (i // 10) * 120))
    column.select(["b", *fillers])
    drag(column, centre(column, "b"), centre(column, "b") + QPointF(400, 0))
    assert column.scene_.itemIndexMethod() == QGraphicsScene.ItemIndexMethod.BspTreeIndex
    assert column.node_item("b").x() == pytest.approx(400, abs=2)
    assert _is_plain(column, ("a", "c", 1))
    drag(column, centre(column, "b"), centre(column, "b") + QPointF(-400, 0))
    assert column.scene_.edges[("a", "c", 1)].is_detour()
    assert _crossed_blocks(column) == []
    column.select(["a", "b", "c", *fillers])       # everything moves as one
    before = column.scene_.edges[("a", "c", 1)].path()
    drag(column, centre(column, "a"), centre(column, "a") + QPointF(30, 60))
    after = column.scene_.edges[("a", "c", 1)].path()
    assert after.pointAtPercent(0.5) - before.pointAtPercent(0.5) == QPointF(30, 60)
    column.select(["a", "c", *fillers])            # b stays put between them
    drag(column, centre(column, "a"), centre(column, "a") + QPointF(0, 20))
    assert column.scene_.edges[("a", "c", 1)].is_detour()
    assert _crossed_blocks(column) == []


def _template_views(path) -> tuple[list[NodeView], list]:
    """NodeViews placed as the template places them (ports as the editor shows them)."""
    graph = Graph.load(path)
    views = []
    for node_id in graph.nodes:
        kind = graph.type_of(node_id)
        spec = graph.spec(kind)  # a catalogue block or one of the file's own
        inputs = spec.max_inputs if spec.max_inputs is not None else 0
        if kind in ("Add", "Concat"):     # they show one free input more than they use
            used = max((p for p, _ in graph.inputs_of(node_id)), default=-1)
            inputs = max(spec.min_inputs, used + 2)
        views.append(NodeView(id=node_id, type=kind, category=spec.category, inputs=inputs,
                              has_output=kind != "Output", subtitle="", shape="", params="",
                              pos=graph.pos_of(node_id) or (0.0, 0.0)))
    return views, graph.edges()


TEMPLATES = sorted(p.name for p in resources.files("resources").joinpath("templates").iterdir()
                   if p.name.endswith(".convas.json"))


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_wire_crosses_a_block_in_the_templates(qtbot, name):
    c = GraphCanvas()
    qtbot.addWidget(c)
    with resources.as_file(resources.files("resources").joinpath("templates", name)) as path:
        views, edges = _template_views(path)
    for v in views:
        c.add_node(v)
    for e in edges:
        c.add_edge(e.src, e.dst, e.port)
    assert len(c.scene_.edges) == len(edges)
    assert _crossed_blocks(c) == []
    if name == "mobilenetv2.convas.json":     # its residual shortcuts skip whole blocks
        assert c.scene_.edges[("b2_project_bn", "b3_add", 1)].is_detour()


def test_thousand_blocks_reroute_live_fast(qtbot, capsys):
    c = GraphCanvas()
    qtbot.addWidget(c)
    c.resize(1200, 800)
    c.show()
    qtbot.waitExposed(c)
    for i in range(1000):
        c.add_node(view(f"n{i}", (i % 40) * 220, (i // 40) * 120, inputs=2,
                        kind="Add", category="Merge"))
    for i in range(1, 1000):
        c.add_edge(f"n{i - 1}", f"n{i}", 0, "[64, 8, 8]")
        if i >= 10 and i % 9 == 0:
            c.add_edge(f"n{i - 10}", f"n{i}", 1, "[64, 8, 8]")
    c.fit_all()
    QApplication.processEvents()
    detours = sum(e.is_detour() for e in c.scene_.edges.values())
    start = time.perf_counter()
    for k in range(30):        # one block dragged across its neighbours' wires
        c.set_positions({"n500": (20 * 220 + 8.0 * k, 12 * 120 + 5.0 * k)})
        c.viewport().repaint()
    elapsed = (time.perf_counter() - start) / 30
    with capsys.disabled():
        print(f"\n1,000 blocks, {detours} detours: one block moved and repainted "
              f"in {elapsed * 1e3:.1f} ms a step")
    assert detours > 0
