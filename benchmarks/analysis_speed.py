"""How fast ``engine.analyze`` is on a 1,000-block graph.

Builds a realistic 1,000-block CNN with :class:`engine.Graph` (Input, a long chain of
Conv2d/BatchNorm/Activation with residual ``Add`` merges every unit, a few two-branch
``Concat`` units, a MaxPool now and then that keeps H and W at 4 or more, then
GlobalAvgPool, Linear and Output) and times:

(a) a full analysis from scratch: a fresh Graph each run, median of several runs;
(b) re-analysis after one edit in the middle (``graph.set_param`` then ``analyze``):
    the inner width (``out_channels``) of a residual unit's first Conv2d, alternating
    between two values so every edit is a real change (that block's, its BatchNorm's
    and the next Conv2d's shapes/params change; the unit's output shape does not);
(c) re-analysis after an edit near the start: the first Conv2d's ``kernel_size``,
    which changes the receptive field of every block downstream, so nearly the whole
    graph is analysed again. Reported on its own line, for honesty.

Every timed result is checked (no errors, the edited nodes really changed), so the
timings are of real work. Goals from the issue: (a) < 50 ms, (b) < 5 ms.

Run from the repository root::

    python benchmarks/analysis_speed.py [--blocks 1000] [--runs 9] [--edits 200]

Exits 0 whether or not the goals are met (the lines say OK or SLOW); 1 if a result
is wrong.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import Graph, analyze  # noqa: E402

GOAL_FULL_MS = 50.0
GOAL_EDIT_MS = 5.0


class _Builder:
    """Appends blocks to a graph, keeping track of the current tensor's shape."""

    def __init__(self, blocks: int) -> None:
        self.g = Graph(f"benchmark-{blocks}")
        self.blocks = blocks
        self.channels = 32
        self.size = 64  # H = W
        self.last = self.g.add_node("input", "Input",
                                    {"channels": 3, "height": self.size, "width": self.size})
        self.count = 0
        self.unit_convs: list[str] = []  # first conv of every residual unit

    def add(self, type_name: str, params: dict | None = None, src: str | None = None,
            extra_srcs: tuple[str, ...] = ()) -> str:
        self.count += 1
        nid = f"{type_name.lower()}_{self.count}"
        self.g.add_node(nid, type_name, params or {})
        self.g.add_edge(src or self.last, nid, 0)
        for port, s in enumerate(extra_srcs, start=1):
            self.g.add_edge(s, nid, port)
        self.last = nid
        return nid

    def conv_bn_act(self, out: int, src: str | None = None, kernel: int = 3,
                    act: bool = True) -> str:
        self.add("Conv2d", {"out_channels": out, "kernel_size": kernel, "bias": False}, src)
        self.add("BatchNorm")
        if act:
            self.add("Activation", {"function": "relu"})
        return self.last

    def residual_unit(self) -> None:  # 8 blocks
        skip = self.last
        c = self.channels
        self.conv_bn_act(c)
        self.unit_convs.append(f"conv2d_{self.count - 2}")  # the Conv2d before BN, Act
        self.conv_bn_act(c, act=False)
        self.add("Add", src=skip, extra_srcs=(self.last,))
        self.add("Activation", {"function": "relu"})

    def concat_unit(self) -> None:  # 10 blocks
        start = self.last
        c = self.channels
        a = self.conv_bn_act(c // 2, start, kernel=1)
        b = self.conv_bn_act(c // 2, start, kernel=3)
        self.add("Concat", src=a, extra_srcs=(b,))
        self.conv_bn_act(c, kernel=1, act=False)

    def pool(self) -> None:  # 1 block
        self.add("MaxPool2d", {"kernel_size": 2})
        self.size //= 2

    def build(self) -> Graph:
        tail = 3  # GlobalAvgPool, Linear, Output
        budget = self.blocks - 1 - tail  # minus the Input
        self.conv_bn_act(self.channels, kernel=3)
        stages = 4  # 64 → 4
        per_stage = (budget - self.count) // stages
        for stage in range(stages):
            stop = self.count + per_stage - (4 if stage < stages - 1 else 0)
            i = 0
            while True:
                size = 10 if i % 6 == 5 else 8
                if self.count + size > stop:
                    break
                self.concat_unit() if i % 6 == 5 else self.residual_unit()
                i += 1
            if stage < stages - 1:
                self.pool()
                self.channels *= 2
                self.conv_bn_act(self.channels, kernel=1)
        while self.count < budget:  # pad to the exact block count
            self.add("Activation", {"function": "relu"}) if self.count % 2 else self.add(
                "Dropout", {"p": 0.1})
        self.add("GlobalAvgPool")
        self.add("Linear", {"out_features": 10})
        self.add("Output")
        assert len(self.g) == self.blocks, len(self.g)
        assert self.size >= 4
        return self.g


def build_graph(blocks: int = 1000) -> tuple[Graph, list[str]]:
    b = _Builder(blocks)
    g = b.build()
    return g, b.unit_convs


def _ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def _verdict(ms: float, goal: float | None) -> str:
    if goal is None:
        return "(no goal: invalidates everything downstream)"
    return f"(goal < {goal:g} ms) " + ("OK" if ms < goal else "SLOW")


def _check(cond: bool, what: str) -> None:
    if not cond:
        print(f"WRONG RESULT: {what}", file=sys.stderr)
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=1000, help="graph size (default 1000)")
    ap.add_argument("--runs", type=int, default=9, help="full analyses to time (default 9)")
    ap.add_argument("--edits", type=int, default=200,
                    help="edits to time for each re-analysis figure (default 200)")
    args = ap.parse_args(argv)
    n = args.blocks

    # (a) from scratch: a fresh graph (so an empty memo) every run.
    full: list[float] = []
    report = None
    for _ in range(args.runs):
        g, unit_convs = build_graph(n)
        t0 = time.perf_counter()
        report = analyze(g)
        full.append(time.perf_counter() - t0)
    assert report is not None
    _check(report.ok, f"the benchmark graph has errors: {report.errors[:3]}")
    _check(len(report.nodes) == n and all(i.output_shape for i in report.nodes.values()),
           "not every node has a shape")
    _check(report.output_shape == (10,), f"output shape {report.output_shape}")
    base_params = report.total_params
    ms = _ms(full)
    print(f"full analysis, {n} blocks: {ms:.1f} ms {_verdict(ms, GOAL_FULL_MS)}")

    # (b) one edit in the middle: the inner width of a residual unit.
    g, unit_convs = build_graph(n)
    report = analyze(g)
    conv = unit_convs[len(unit_convs) // 2]
    bn = g.consumers_of(conv)[0]
    act = g.consumers_of(bn)[0]
    conv2 = g.consumers_of(act)[0]
    width = report.nodes[conv].output_shape[0]
    values = (width, width + 8)
    times: list[float] = []
    for i in range(1, args.edits + 1):
        w = values[i % 2]
        g.set_param(conv, "out_channels", w)
        t0 = time.perf_counter()
        new = analyze(g)
        times.append(time.perf_counter() - t0)
        _check(new.ok, f"errors after the edit: {new.errors[:3]}")
        _check(new.nodes[conv].output_shape[0] == w and new.nodes[bn].output_shape[0] == w,
               f"{conv} did not change to {w} channels")
        _check(new.nodes[conv2].params == 9 * w * new.nodes[conv2].output_shape[0],
               f"{conv2}'s parameter count did not follow the edit")
        _check(new.total_params - base_params == (w - width) * (
            report.nodes[conv].params // width + 2 + report.nodes[conv2].params // width),
            "total parameter count is wrong after the edit")
        report_prev, report = report, new
        _check(report_prev.nodes[conv].params != new.nodes[conv].params, "edit was no change")
    ms = _ms(times)
    print(f"re-analysis after one edit in the middle ({conv}.out_channels), {n} blocks: "
          f"{ms:.2f} ms {_verdict(ms, GOAL_EDIT_MS)}")

    # (c) one edit near the start: every receptive field downstream changes.
    g, unit_convs = build_graph(n)
    report = analyze(g)
    first = "conv2d_1"
    last_spatial = g.inputs_of(report.output_id)[0][1]
    last_spatial = g.inputs_of(g.inputs_of(last_spatial)[0][1])[0][1]  # before Linear, GAP
    times = []
    for i in range(1, args.edits // 4 + 1):
        k = (3, 5)[i % 2]
        g.set_param(first, "kernel_size", k)
        t0 = time.perf_counter()
        new = analyze(g)
        times.append(time.perf_counter() - t0)
        _check(new.ok, f"errors after the edit: {new.errors[:3]}")
        _check(new.nodes[first].params == 3 * 32 * k * k,
               f"{first}'s parameter count did not follow kernel_size {k}")
        _check(new.nodes[last_spatial].receptive_field
               != report.nodes[last_spatial].receptive_field,
               "the receptive field at the end did not change")
        report = new
    ms = _ms(times)
    print(f"re-analysis after one edit near the start ({first}.kernel_size), {n} blocks: "
          f"{ms:.1f} ms {_verdict(ms, None)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
