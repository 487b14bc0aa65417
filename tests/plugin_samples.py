"""Plug-in files (SPEC §9) for the plug-in tests: working ones and broken ones.

``write_good`` and ``write_broken`` put them into a folder; ``isolate`` points
``CONVAS_BLOCKS_PATH`` at given folders and the user's configuration folder (HOME,
XDG_CONFIG_HOME) at an empty temporary one, so no plug-in of the machine leaks in.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine import Graph

# The SPEC's own example, word for word.
GROUPNORM = '''\
from engine.plugins import Param, block

@block(category="Normalisation", doc="Normalises groups of channels.",
       params=[Param("num_groups", int, 8, min=1, doc="groups the channels are split into")])
def GroupNorm(in_shape, num_groups):        # the block's type is the function's name
    import torch.nn as nn
    return nn.GroupNorm(num_groups, in_shape[0])
'''

# Two inputs, a learnable gate, a class and a constant at module level (which the .py
# export must carry along), imports at the top.
GATED_SUM = '''\
"""A gated sum: a * sigmoid(conv1x1(b)) + b."""
from __future__ import annotations

import torch
from torch import nn

from engine.plugins import Param, block

GATE_SCALE = 1.0


class _Gate(nn.Module):
    def __init__(self, channels: int, bias: bool) -> None:
        super().__init__()
        self.gate = nn.Conv2d(channels, channels, 1, bias=bias)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * torch.sigmoid(GATE_SCALE * self.gate(b)) + b


@block(category="Gates", doc="Adds b to a gated by a learned 1x1 convolution of b.",
       inputs=2, params=[Param("bias", bool, True, doc="learn a bias in the gate")])
def GatedSum(in_shapes, bias):
    return _Gate(in_shapes[0][0], bias)
'''

# str with choices, int2 and a receptive-field step.
POOL = '''\
from engine.plugins import Param, block, int2

@block(category="Pooling", doc="3x3 pooling with stride 2, average or maximum.",
       params=[Param("mode", str, "avg", choices=("avg", "max"), doc="how a window pools"),
               Param("padding", int2, 1, min=0, max=1, doc="zeros on each side")],
       rf=(3, 2))
def Pool3s2(in_shape, mode, padding):
    from torch import nn
    return (nn.AvgPool2d if mode == "avg" else nn.MaxPool2d)(3, 2, padding)
'''

BROKEN = {
    "syntax_error.py": "from engine.plugins import block\n\n@block(\ndef Oops(:\n    pass\n",
    "raises_on_import.py": "from engine.plugins import block\n\nLIMIT = 1 / 0\n",
    "raising_function.py": '''\
from engine.plugins import block

@block(doc="always fails")
def Raising(in_shape):
    raise RuntimeError("the weights file is missing")
''',
    "not_a_module.py": '''\
from engine.plugins import block

@block(doc="returns a number")
def NotAModule(in_shape):
    return 42

@block(doc="a good block beside a broken one")
def Passthrough(in_shape):
    from torch import nn
    return nn.Identity()
''',
}

# What each broken file's reason must say.
BROKEN_REASONS = {
    "syntax_error.py": "syntax error at line 4",
    "raises_on_import.py": "raises ZeroDivisionError at line 3 on import",
    "raising_function.py": "RuntimeError: the weights file is missing",
    "not_a_module.py": "returns int, not a torch.nn.Module",
}


def write_good(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "groupnorm.py").write_text(GROUPNORM, encoding="utf-8")
    (folder / "gated_sum.py").write_text(GATED_SUM, encoding="utf-8")
    (folder / "pool.py").write_text(POOL, encoding="utf-8")
    return folder


def write_broken(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in BROKEN.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def isolate(monkeypatch: pytest.MonkeyPatch, home: Path, *folders: Path) -> None:
    """Plug-ins from ``folders`` only; the user's configuration folder is ``home``'s."""
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("CONVAS_BLOCKS_PATH", os.pathsep.join(str(f) for f in folders))


def plugin_graph() -> Graph:
    """An X-vs-O classifier for ``shapes`` (1×32×32, two classes) using every sample
    plug-in: conv → GroupNorm → ReLU → Pool3s2 → conv, gated with its own input."""
    g = Graph("Plug-in net")

    def node(node_id: str, type_name: str, params: dict | None = None, *sources: str) -> None:
        g.add_node(node_id, type_name, params or {})
        for port, src in enumerate(sources):
            g.add_edge(src, node_id, port)

    node("input", "Input", {"channels": 1, "height": 32, "width": 32})
    node("conv1", "Conv2d", {"out_channels": 8}, "input")
    node("gn1", "GroupNorm", {"num_groups": 4}, "conv1")
    node("relu1", "Activation", {}, "gn1")
    node("pool1", "Pool3s2", {"mode": "max"}, "relu1")
    node("conv2", "Conv2d", {"out_channels": 8}, "pool1")
    node("gate", "GatedSum", {}, "conv2", "pool1")
    node("gap", "GlobalAvgPool", {}, "gate")
    node("fc", "Linear", {"out_features": 2}, "gap")
    node("out", "Output", {}, "fc")
    return g
