"""Automatic top-to-bottom layout of a graph (Sugiyama style), for "Auto Layout".

A CNN reads best from the Input down to the Output, with the side branches (a ResNet
shortcut, the arms of an Inception module) in columns beside the main chain. So the
layout

1. breaks cycles (a wrong design may have one) and puts every node in a layer: the
   longest path from a source, so every edge points downwards; a second source (an
   extra Input) and what only it feeds move down to just above where they join;
2. splits edges that skip layers into chains of invisible dummies, so a long
   shortcut claims its own column instead of running through other blocks (the
   dummies' positions are offered as wire bend points by
   :func:`layered_layout_routes`);
3. orders each layer by the barycentre of its neighbours, sweeping down and up a few
   times, to avoid crossings, with the inputs of one block in port order;
4. pins the main chain (the longest path that ends at the Output, through the
   lowest-numbered port where there is a choice) to column 0 and gives every other
   node the column nearest the median of its predecessors that keeps the order;
5. wraps a long network into bands of consecutive layers set side by side, like the
   columns of a newspaper (read down, then on at the top of the next band), so that
   the whole design fits a screen at a zoom where block titles can still be read:
   one column of MobileNetV2's 154 blocks fits a 700-pixel-high canvas only at a
   zoom of 0.04. The number of bands is the one that shows the drawing largest on a
   ``page`` of about a canvas' size (fewer when that costs little), and each break
   falls where the fewest wires cross it (between two residual blocks, not inside
   one). Only the wires across a break point upwards.

Separate pieces of the graph get their own bands to the right, isolated blocks last.
Everything iterates in insertion order, so the same graph always gets the same layout.
Plain Python (networkx only for connected components); no Qt, no torch. About 30 ms
for 1,000 blocks on a desktop; choosing the bands adds about a fifth.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable
from dataclasses import dataclass

import networkx as nx

from .graph import Graph

SWEEPS = 4  # down-and-up barycentre passes; crossings rarely improve after a few
# A canvas at zoom 1 in a 1600×1000 window (scene units): what wrapping aims to fill.
PAGE = (1100.0, 750.0)
PAGE_MARGIN = 80.0   # what a Fit All leaves around the drawing (40 a side)
COMFORTABLE = 0.75   # a zoom at which every text on a block reads well
ENOUGH = 0.85        # above it, fewer bands win while they show the drawing this large
BREAK_SLACK = 0.4    # breaks may move within this fraction of a band to cross fewer wires

Point = tuple[float, float]


def layered_layout(graph: Graph, *, x_gap: float = 220, y_gap: float = 100,
                   lane_gap: float = 20, band_gap: float = 20,
                   page: tuple[float, float] | None = PAGE) -> dict[str, Point]:
    """Positions ``{node id: (x, y)}`` for every node; y grows downwards along edges
    within a band. ``page=None`` never wraps (one band per connected piece)."""
    return layered_layout_routes(graph, x_gap=x_gap, y_gap=y_gap, lane_gap=lane_gap,
                                 band_gap=band_gap, page=page)[0]


def layered_layout_routes(graph: Graph, *, x_gap: float = 220, y_gap: float = 100,
                          lane_gap: float = 20, band_gap: float = 20,
                          page: tuple[float, float] | None = PAGE
                          ) -> tuple[dict[str, Point], dict[tuple[str, str, int], list[Point]]]:
    """Positions as :func:`layered_layout`, plus bend points for wires that skip layers.

    ``routes[(src, dst, port)]`` lists the points, from ``src`` towards ``dst``, where
    the layout kept a wire's column free (a ResNet shortcut runs beside the blocks it
    skips); a canvas that draws wires through them never hides a wire behind a block.
    Wires between adjacent layers, and wires across a band break, have no entry.

    ``x_gap`` and ``y_gap`` are the pitch of blocks; a column that only carries wires
    past blocks takes ``lane_gap``; ``band_gap`` more separates two bands (room for
    the wire that runs up from one band's foot to the head of the next).
    """
    dag, reversed_pairs = _acyclic(graph)
    components = _components(graph, dag.order)
    isolated = [c[0] for c in components if len(c) == 1]
    connected = [c for c in components if len(c) > 1]
    outputs = {n for n in dag.order if graph.type_of(n) == "Output"}
    # The component that holds the Output (else the largest) is the main one, at x = 0.
    connected.sort(key=lambda c: (not (outputs & set(c)), -len(c)))
    parts = [_layout_component(dag, comp, outputs) for comp in connected]
    if isolated:  # one column of loose blocks, which may break anywhere
        parts.append(_Part({n: 0 for n in isolated}, {n: i for i, n in enumerate(isolated)},
                           {}, [0] * (len(isolated) + 1)))
    rows = _band_rows(parts, x_gap, y_gap, lane_gap, band_gap, page)
    pos: dict[Vertex, Point] = {}
    band: dict[Vertex, int] = {}
    left, count = 0.0, 0
    for part in parts:
        for first, end in _bands(part, rows):
            xs, width = part.columns(first, end, x_gap, lane_gap)
            for layer in range(first, end):
                for v in part.layers[layer]:
                    pos[v] = (left + xs[part.cols[v]], (layer - first) * y_gap)
                    band[v] = count
            left += width + band_gap
            count += 1
    routes: dict[tuple[str, str, int], list[Point]] = {}
    chains = {k: c for part in parts for k, c in part.chains.items()}
    for e in graph.edges():
        flipped = (e.src, e.dst) in reversed_pairs
        chain = chains.get((e.dst, e.src) if flipped else (e.src, e.dst))
        if chain and band[e.src] == band[e.dst]:
            points = [pos[d] for d in chain]
            routes[(e.src, e.dst, e.port)] = points[::-1] if flipped else points
    return {n: pos[n] for n in graph.nodes}, routes


# ---- bands ----------------------------------------------------------------------------


def _bands(part: _Part, rows: int) -> list[tuple[int, int]]:
    """Layer ranges ``[first, end)`` of about ``rows`` layers each, as even as can be;
    each break moves by up to BREAK_SLACK / 2 of a band either way to where the fewest
    blocks send wires across it (the nearest such place to the even break), so a band
    may hold that many layers more."""
    total = len(part.crossing) - 1
    slack = math.ceil(rows * BREAK_SLACK / 2)
    most = rows + slack
    out, first = [], 0
    while total - first > most:
        left = math.ceil((total - first) / rows)  # bands still to come, this one too
        even = first + math.ceil((total - first) / left)
        places = range(max(first + 1, even - slack, total - (left - 1) * most),
                       min(first + most, even + slack) + 1)
        end = min(places, key=lambda c: (part.crossing[c], abs(c - even), c))
        out.append((first, end))
        first = end
    out.append((first, total))
    return out


def _band_rows(parts: list[_Part], x_gap: float, y_gap: float, lane_gap: float,
               band_gap: float, page: tuple[float, float] | None) -> int:
    """Layers per band: the number of bands that shows the drawing largest on
    ``page``, or when that is COMFORTABLE or more, the fewest bands that still show it
    ENOUGH times as large (and comfortably)."""
    tallest = max((len(p.crossing) - 1 for p in parts), default=0)
    if page is None or tallest <= 1:
        return max(tallest, 1)
    options: list[tuple[int, float]] = []  # (rows, zoom) for 1, 2, 3 ... bands
    for count in range(1, tallest + 1):
        rows = math.ceil(tallest / count)
        if options and rows == options[-1][0]:
            continue
        width = height = 0.0
        for part in parts:
            for first, end in _bands(part, rows):
                width += part.columns(first, end, x_gap, lane_gap)[1] + band_gap
                height = max(height, (end - first) * y_gap)
        across = page[0] / (width - band_gap + PAGE_MARGIN)
        options.append((rows, min(1.0, across, page[1] / (height + PAGE_MARGIN))))
        if across < ENOUGH * max(z for _, z in options):
            break   # more bands only widen the drawing: none of them can win now
    best = max(z for _, z in options)
    good = best if best < COMFORTABLE else max(COMFORTABLE, ENOUGH * best)
    return next(rows for rows, z in options if z >= good)


# ---- structure ----------------------------------------------------------------------------


@dataclass
class _Dag:
    """The design as plain adjacency lists (faster than networkx views in the hot loops):
    ports and repeated wires merged, predecessors sorted by port."""

    order: dict[str, int]  # insertion index
    preds: dict[str, list[tuple[str, int]]]  # (source, lowest port) by port
    succs: dict[str, list[str]]

    def topo_order(self, nodes: list[str]) -> list[str]:
        """Kahn's algorithm, always taking the earliest-inserted ready node."""
        pending = {n: len(self.preds[n]) for n in nodes}
        ready = [(self.order[n], n) for n in nodes if pending[n] == 0]
        heapq.heapify(ready)
        out: list[str] = []
        while ready:
            _, n = heapq.heappop(ready)
            out.append(n)
            for s in self.succs[n]:
                pending[s] -= 1
                if pending[s] == 0:
                    heapq.heappush(ready, (self.order[s], s))
        return out


def _acyclic(graph: Graph) -> tuple[_Dag, set[tuple[str, str]]]:
    """The design with the back edges of any cycle reversed, so that layering still
    works on a wrong design; also the (src, dst) pairs that were reversed."""
    nodes = graph.nodes
    ports: dict[tuple[str, str], int] = {}
    for e in graph.edges():
        key = (e.src, e.dst)
        ports[key] = min(ports.get(key, e.port), e.port)
    back: set[tuple[str, str]] = set()
    if graph.topo_order() is None:
        back = _back_edges(nodes, ports)
        flipped: dict[tuple[str, str], int] = {}
        for (u, v), p in ports.items():
            key = (v, u) if (u, v) in back else (u, v)
            if key[0] != key[1]:
                flipped[key] = min(flipped.get(key, p), p)
        ports = flipped
    dag = _Dag({n: i for i, n in enumerate(nodes)}, {n: [] for n in nodes},
               {n: [] for n in nodes})
    for (u, v), port in ports.items():
        dag.preds[v].append((u, port))
        dag.succs[u].append(v)
    for plist in dag.preds.values():
        plist.sort(key=lambda up: up[1])
    return dag, back


def _back_edges(nodes: list[str], ports: dict[tuple[str, str], int]) -> set[tuple[str, str]]:
    """Edges that close a cycle in an iterative depth-first search (insertion order)."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for u, v in ports:
        succ[u].append(v)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    back: set[tuple[str, str]] = set()
    for root in succ:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    return back


def _components(graph: Graph, order: dict[str, int]) -> list[list[str]]:
    """Weakly connected components, each in insertion order, ordered by first node."""
    comps = [sorted(c, key=order.__getitem__)
             for c in nx.weakly_connected_components(graph.nx)]
    return sorted(comps, key=lambda c: order[c[0]])


def _longest_path_layers(dag: _Dag, order: list[str]) -> dict[str, int]:
    layer: dict[str, int] = {}
    for n in order:
        layer[n] = max((layer[p] + 1 for p, _ in dag.preds[n]), default=0)
    return layer


def _float_down(dag: _Dag, order: list[str], layer: dict[str, int],
                main: list[str]) -> set[str]:
    """Move what hangs off a second source (an extra Input and the blocks only it feeds)
    down next to where it joins, instead of at the top; returns those nodes."""
    on_main = set(main)
    floating: set[str] = set()
    for n in order:
        if n not in on_main and all(p in floating for p, _ in dag.preds[n]):
            floating.add(n)
    for n in reversed(order):
        if n in floating and dag.succs[n]:
            layer[n] = min(layer[s] for s in dag.succs[n]) - 1
    return floating


def _main_chain(dag: _Dag, order: list[str], layer: dict[str, int],
                outputs: set[str]) -> list[str]:
    """The spine, top to bottom: from the Output (else the deepest node) up through, at
    each step, the lowest-port predecessor exactly one layer above, to a source."""
    ends = [n for n in order if n in outputs] or order
    node = max(ends, key=lambda n: (layer[n], -dag.order[n]))
    chain = [node]
    while True:
        above = [u for u, _ in dag.preds[node] if layer[u] == layer[node] - 1]
        if not above:
            return chain[::-1]
        node = above[0]
        chain.append(node)


# ---- one connected component ----------------------------------------------------------------

Vertex = Hashable  # a node id, or ("~dummy", src, dst, layer) for a point on a long edge


@dataclass
class _Part:
    """The layout of one connected component, in grid units."""

    cols: dict[Vertex, int]
    layer_of: dict[Vertex, int]
    chains: dict[tuple[str, str], list[Vertex]]  # dummies along each long edge
    crossing: list[int]  # [c]: vertices with wires from layer c - 1 to c (0 at both ends)

    def __post_init__(self) -> None:
        self.layers: list[list[Vertex]] = [[] for _ in range(len(self.crossing) - 1)]
        for v, layer in self.layer_of.items():
            self.layers[layer].append(v)
        # per layer: the columns that hold a block (the others hold only wires)
        self.blocks = [{self.cols[v] for v in row if isinstance(v, str)}
                       for row in self.layers]
        self.all_cols = [{self.cols[v] for v in row} for row in self.layers]

    def columns(self, first: int, end: int, x_gap: float, lane_gap: float
                ) -> tuple[dict[int, float], float]:
        """x of each column used by layers ``first`` to ``end - 1``, from 0, and the
        band's width: a column with a block takes ``x_gap``, one that only carries
        wires past blocks (a shortcut's lane) ``lane_gap``."""
        used = set().union(*self.all_cols[first:end])
        blocks = set().union(*self.blocks[first:end])
        xs: dict[int, float] = {}
        x = 0.0
        if not used:
            return xs, x
        for c in range(min(used), max(used) + 1):
            xs[c] = x
            x += x_gap if c in blocks else lane_gap if c in used else 0.0
        return xs, x


@dataclass
class _Layered:
    """Layer-adjacent neighbour lists after long edges were split by dummies."""

    up: dict[Vertex, list[Vertex]]
    down: dict[Vertex, list[Vertex]]
    port: dict[tuple[Vertex, Vertex], int]  # the destination port each segment leads to
    layer_of: dict[Vertex, int]
    chains: dict[tuple[str, str], list[Vertex]]


def _layout_component(dag: _Dag, nodes: list[str], outputs: set[str]) -> _Part:
    """Columns (main chain = 0) and layers of one weakly connected component."""
    order = dag.topo_order(nodes)
    layer = _longest_path_layers(dag, order)
    main = _main_chain(dag, order, layer, outputs)
    floating = _float_down(dag, order, layer, main)
    lay = _split_long_edges(dag, order, layer)
    floating_v = floating | {d for (u, _), ds in lay.chains.items() if u in floating for d in ds}
    rows = _initial_order(order, lay, set(main))
    _reduce_crossings(rows, lay)
    cols = _assign_columns(rows, lay, set(main), floating_v)
    # what a break under each layer cuts: the blocks (and long wires) whose wires cross it
    crossing = [0] + [sum(1 for v in row if lay.down[v]) for row in rows]
    return _Part(cols, lay.layer_of, lay.chains, crossing)


def _split_long_edges(dag: _Dag, order: list[str], layer: dict[str, int]) -> _Layered:
    """Replace each edge that skips layers by a chain of dummies, one per layer."""
    lay = _Layered({n: [] for n in order}, {n: [] for n in order}, {}, dict(layer), {})
    for v in order:
        for u, port in dag.preds[v]:
            prev: Vertex = u
            chain: list[Vertex] = []
            for level in range(layer[u] + 1, layer[v]):
                dummy = ("~dummy", u, v, level)
                lay.layer_of[dummy] = level
                lay.up[dummy], lay.down[dummy] = [prev], []
                lay.down[prev].append(dummy)
                lay.port[(prev, dummy)] = port
                chain.append(dummy)
                prev = dummy
            lay.down[prev].append(v)
            lay.up[v].append(prev)
            lay.port[(prev, v)] = port
            if chain:
                lay.chains[(u, v)] = chain
    return lay


def _initial_order(order: list[str], lay: _Layered, main: set[str]) -> list[list[Vertex]]:
    """Layers filled depth first from the sources, the main chain first in each."""
    rows: list[list[Vertex]] = [[] for _ in range(max(lay.layer_of.values()) + 1)]
    seen: set[Vertex] = set()
    starts = [n for n in order if n in main] + [n for n in order if n not in main]
    for start in starts:
        stack = [start]
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            rows[lay.layer_of[v]].append(v)
            stack.extend(reversed(lay.down[v]))
    for row in rows:  # main-chain vertices lead their layer (at most one per layer)
        row.sort(key=lambda v: v not in main)
    return rows


def _reduce_crossings(rows: list[list[Vertex]], lay: _Layered) -> None:
    """Barycentre sweeps. Ties keep their place (a stable sort), except that inputs of
    one block line up in port order, so a Concat's branches read left to right."""
    position: dict[Vertex, float] = {}
    for row in rows:
        position.update((v, i) for i, v in enumerate(row))
    tie = 1e-6

    def sweep(indices: range, neighbours: dict, downward: bool) -> None:
        for li in indices:
            row = rows[li]
            if len(row) < 2:
                continue
            keys = {}
            for v in row:
                ns = neighbours[v]
                if not ns:
                    keys[v] = position[v]
                elif downward:
                    keys[v] = sum(position[n] for n in ns) / len(ns)
                else:
                    keys[v] = sum(position[n] + tie * lay.port[(v, n)] for n in ns) / len(ns)
            row.sort(key=keys.__getitem__)
            position.update((v, i) for i, v in enumerate(row))

    for _ in range(SWEEPS):
        sweep(range(1, len(rows)), lay.up, True)
        sweep(range(len(rows) - 2, -1, -1), lay.down, False)


def _assign_columns(rows: list[list[Vertex]], lay: _Layered, main: set[str],
                    floating: set[Vertex]) -> dict[Vertex, int]:
    """Integer columns per layer: the main chain at 0, others near the median column of
    their predecessors, keeping the layer's order; then, bottom up, what hangs off a
    second source moves above the block it feeds."""
    col: dict[Vertex, int] = {}

    def wish(v: Vertex, toward: dict) -> int | None:
        placed = sorted(col[n] for n in toward[v] if n in col)
        return placed[(len(placed) - 1) // 2] if placed else None

    for row in rows:
        _place_row(row, col, main, lambda v: wish(v, lay.up))
    for row in reversed(rows):
        if any(v in floating for v in row):
            for v in row:
                if v in floating:
                    del col[v]
            _place_row(row, col, main,
                       lambda v: wish(v, lay.down) if v in floating else col[v])
    return col


def _place_row(row: list[Vertex], col: dict[Vertex, int], main: set[str], wish) -> None:
    pinned = next((i for i, v in enumerate(row) if v in main), None)
    if pinned is not None:
        col[row[pinned]] = 0
        right, left, anchor = row[pinned + 1:], row[:pinned], 0
    else:
        first = wish(row[0]) if row else None
        right, left, anchor = row, [], (first if first is not None else 0) - 1
    last = anchor
    for v in right:
        w = wish(v)
        last = max(last + 1, w if w is not None else last + 1)
        col[v] = last
    last = 0
    for v in reversed(left):
        w = wish(v)
        last = min(last - 1, w if w is not None else last - 1)
        col[v] = last
