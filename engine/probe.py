"""What one block of a compiled design outputs for a given input, and its kernels.

Shared by the trainer (live feature maps during a run) and the application (maps of
any block after a run, from the checkpoint). An ``fx.Interpreter`` runs the module's
graph node by node and keeps the outputs asked for, so no hooks are left behind and
blocks without a module of their own (Add, Concat, Flatten) can be probed too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import fx, nn


@torch.no_grad()
def activations(model: fx.GraphModule, x: torch.Tensor,
                nodes: Iterable[str]) -> dict[str, np.ndarray]:
    """The first sample's output of each block in ``nodes`` (design ids) for input ``x``,
    in eval mode (BatchNorm's running statistics, no dropout); unknown ids are skipped."""
    return probe(model, x, nodes, output=False)[0]


@torch.no_grad()
def probe(model: fx.GraphModule, x: torch.Tensor, nodes: Iterable[str],
          output: bool = True) -> tuple[dict[str, np.ndarray], torch.Tensor | None]:
    """``activations`` and, with ``output``, the model's output for ``x`` from the same
    forward pass: a segmentation run shows the predicted mask and feature maps of the
    same step without running the network twice. Without wanted blocks the model runs
    directly, which is faster than the node-by-node interpreter."""
    fx_names = model.meta["convas_nodes"]
    wanted = {fx_names[n]: n for n in nodes if n in fx_names}
    if not wanted and not output:
        return {}, None
    captured: dict[str, np.ndarray] = {}

    class Tap(fx.Interpreter):
        def run_node(self, node: fx.Node) -> Any:
            value = super().run_node(node)
            if node.name in wanted:
                captured[wanted[node.name]] = value[0].detach().float().cpu().numpy()
            return value

    was_training = model.training
    model.eval()
    try:
        result = Tap(model).run(x) if wanted else model(x)
    finally:
        model.train(was_training)
    return captured, (result if output else None)


def kernels(model: fx.GraphModule, node_id: str) -> np.ndarray | None:
    """A convolution block's learned kernels [out,in,kh,kw]; None for other blocks."""
    fx_name = model.meta["convas_nodes"].get(node_id)
    for node in model.graph.nodes:
        if node.name == fx_name and node.op == "call_module":
            module = model.get_submodule(node.target)
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                return module.weight.detach().float().cpu().numpy().copy()
    return None
