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
    """The first sample's output of each block in ``nodes`` (design ids, or
    ``instance/inner_id`` paths into blocks made of blocks) for input ``x``, in eval mode
    (BatchNorm's running statistics, no dropout); unknown ids are skipped."""
    return probe(model, x, nodes, output=False)[0]


@torch.no_grad()
def probe(model: fx.GraphModule, x: torch.Tensor, nodes: Iterable[str],
          output: bool = True) -> tuple[dict[str, np.ndarray], torch.Tensor | None]:
    """``activations`` and, with ``output``, the model's output for ``x`` from the same
    forward pass: a segmentation run shows the predicted mask and feature maps of the
    same step without running the network twice. Without wanted blocks the model runs
    directly, which is faster than the node-by-node interpreter."""
    wanted = {n: n for n in nodes if _resolve(model, n) is not None}
    if not wanted and not output:
        return {}, None
    captured: dict[str, np.ndarray] = {}
    was_training = model.training
    model.eval()
    try:
        result = _tapped(model, (x,), wanted, captured) if wanted else model(x)
    finally:
        model.train(was_training)
    return captured, (result if output else None)


def _tapped(model: fx.GraphModule, args: tuple, wanted: dict[str, str],
            captured: dict[str, np.ndarray]) -> Any:
    """Run ``model`` node by node, keeping the outputs of ``wanted`` (path relative to
    ``model`` → the caller's name for it); a path into an instance runs that instance's
    own GraphModule the same way."""
    fx_names = model.meta["convas_nodes"]
    here: dict[str, str] = {}
    inside: dict[str, dict[str, str]] = {}
    for path, name in wanted.items():
        head, _, rest = path.partition("/")
        if rest:
            inside.setdefault(fx_names[head], {})[rest] = name
        else:
            here[fx_names[head]] = name

    class Tap(fx.Interpreter):
        def run_node(self, node: fx.Node) -> Any:
            if node.name in inside and node.op == "call_module":
                node_args, _ = self.fetch_args_kwargs_from_env(node)
                value = _tapped(self.module.get_submodule(node.target), tuple(node_args),
                                inside[node.name], captured)
            else:
                value = super().run_node(node)
            if node.name in here:
                # a copy: the next block may run in place (ReLU) and overwrite it
                captured[here[node.name]] = value[0].detach().to(
                    "cpu", torch.float32, copy=True).numpy()
            return value

    return Tap(model).run(*args)


def _resolve(model: nn.Module, path: str) -> tuple[fx.GraphModule, str] | None:
    """The GraphModule holding the block at ``path`` (``a`` or ``instance/inner``) and
    its fx node name there; None when the compiled model has no such block."""
    *instances, last = path.split("/")
    for instance in instances:
        names = getattr(model, "meta", {}).get("convas_nodes", {})
        target = next((n.target for n in model.graph.nodes
                       if n.name == names.get(instance) and n.op == "call_module"), None) \
            if instance in names else None
        if target is None:
            return None
        model = model.get_submodule(target)
    names = getattr(model, "meta", {}).get("convas_nodes", {})
    return (model, names[last]) if last in names else None


def kernels(model: fx.GraphModule, node_id: str) -> np.ndarray | None:
    """A convolution block's learned kernels [out,in,kh,kw]; None for other blocks
    (``node_id`` may be an ``instance/inner_id`` path)."""
    found = _resolve(model, node_id)
    if found is None:
        return None
    owner, fx_name = found
    for node in owner.graph.nodes:
        if node.name == fx_name and node.op == "call_module":
            module = owner.get_submodule(node.target)
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                return module.weight.detach().float().cpu().numpy().copy()
    return None
