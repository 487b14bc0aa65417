"""Recognising a model's submodule as one of the composite blocks (torch.fx import).

A submodule is a candidate when its weights have exactly the names and shapes of the
block's module (``engine/blocks/torch_modules.py``, which follows torchvision's
names): torchvision's ``BasicBlock``, ``Bottleneck`` and ``_DenseBlock`` are, and so
are the composites in Convas' own ``.py`` export. Names prove nothing about what
``forward`` does, so a candidate is accepted only when the block, given the
submodule's weights, computes the same output on the input the model really feeds
it (:func:`same_output`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..blocks import torch_modules

Found = tuple[str, dict[str, Any], nn.Module]


def composite_for(m: nn.Module) -> Found | None:
    """``(block type, params, the block's module with m's weights)``, or None."""
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    for guess in (_residual, _inception, _dense):
        try:
            found = guess(m, shapes)
        except (KeyError, AttributeError, IndexError, TypeError, ValueError, RuntimeError):
            continue
        if found is None:
            continue
        built = found[2]
        theirs = {k: tuple(v.shape) for k, v in built.state_dict().items()}
        if theirs == shapes:
            built.load_state_dict(m.state_dict())
            return found[0], found[1], built.eval()
    return None


def same_output(m: nn.Module, built: nn.Module, in_shape: Any, tolerance: float = 1e-5
                ) -> bool:
    """Whether ``built`` computes what ``m`` does, on seeded random input of ``in_shape``
    (batch 2, so that batch-mixing code would show)."""
    x = torch.randn(2, *tuple(in_shape)[1:], generator=torch.Generator().manual_seed(1))
    try:
        with torch.no_grad():
            want, got = m(x.clone()), built(x.clone())
    except Exception:  # the user's forward may not take this input at all
        return False
    if not isinstance(want, torch.Tensor) or want.shape != got.shape:
        return False
    scale = float(want.abs().max()) or 1.0
    return float((want - got).abs().max()) <= tolerance * scale


def _residual(m: nn.Module, shapes: dict) -> Found | None:
    bottleneck = "conv3.weight" in shapes
    last = shapes["conv3.weight" if bottleneck else "conv2.weight"]
    strided = m.get_submodule("conv2" if bottleneck else "conv1")
    stride = int(strided.stride[0])
    c_in = shapes["conv1.weight"][1]
    params: dict[str, Any] = {"out_channels": int(last[0])}
    if stride != 1:
        params["stride"] = stride
    if bottleneck:
        params["bottleneck"] = True
    cls = torch_modules.BottleneckResidual if bottleneck else torch_modules.BasicResidual
    return "ResidualBlock", params, cls(c_in, int(last[0]), stride)


def _inception(m: nn.Module, shapes: dict) -> Found | None:
    chans = (shapes["branch1.0.weight"][0], shapes["branch2.0.0.weight"][0],
             shapes["branch2.1.0.weight"][0], shapes["branch3.0.0.weight"][0],
             shapes["branch3.1.0.weight"][0], shapes["branch4.1.0.weight"][0])
    c_in = shapes["branch1.0.weight"][1]
    names = ("ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj")
    params = {k: int(v) for k, v in zip(names, chans, strict=True)}
    return "InceptionBlock", params, torch_modules.Inception(c_in, *chans)


def _dense(m: nn.Module, shapes: dict) -> Found | None:
    layers = 0
    while f"denselayer{layers + 1}.norm1.weight" in shapes:
        layers += 1
    if not layers:
        return None
    c_in = shapes["denselayer1.norm1.weight"][0]
    growth = shapes["denselayer1.conv2.weight"][0]
    bn_size, rest = divmod(shapes["denselayer1.conv1.weight"][0], growth)
    if rest:
        return None
    params = {"num_layers": layers, "growth_rate": int(growth), "bn_size": int(bn_size)}
    return "DenseBlock", params, torch_modules.Dense(c_in, layers, growth, bn_size)
