"""Activation functions: element-wise non-linearities (softmax across channels)."""

from __future__ import annotations

from ..spec import BlockSpec, Params, ParamSpec, Recipe, Shape

FUNCTIONS = ("relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh",
             "hardswish", "softmax")


def _same(p: Params, ins: list[Shape]) -> Shape:
    return ins[0]


_CLASSES = {"relu": "nn.ReLU", "relu6": "nn.ReLU6", "elu": "nn.ELU", "gelu": "nn.GELU",
            "silu": "nn.SiLU", "sigmoid": "nn.Sigmoid", "tanh": "nn.Tanh",
            "hardswish": "nn.Hardswish"}
# Functions whose backward needs only their output, so they may overwrite their input.
INPLACE = ("relu", "relu6", "leaky_relu")


def activation_recipe(p: Params, ins: list[Shape]) -> Recipe:
    f = p["function"]
    if f == "leaky_relu":
        return Recipe("nn.LeakyReLU", (), {"negative_slope": p["negative_slope"]})
    if f == "softmax":
        return Recipe("nn.Softmax", (), {"dim": 1})
    return Recipe(_CLASSES[f])


def _prefix(p: Params) -> str:
    """``relu1``, ``gelu2``: the function names the node."""
    f = p["function"]
    return f if isinstance(f, str) and f.isidentifier() and f.isascii() else "act"


def _subtitle(p: Params) -> str:
    f = p["function"]
    return f + (f" {p['negative_slope']:g}" if f == "leaky_relu" else "")


BLOCKS = (
    BlockSpec(
        type="Activation",
        category="Activation",
        doc="Applies a non-linearity to every element; softmax normalises across channels.",
        params=(
            ParamSpec("function", "choice", "relu", "Which non-linearity.", choices=FUNCTIONS),
            ParamSpec("negative_slope", "float", 0.01, "Slope for x < 0 (leaky_relu only).",
                      0.0, 1.0, only_when=("function", "leaky_relu")),
        ),
        infer=_same,
        id_prefix=_prefix,
        subtitle=_subtitle,
        recipe=activation_recipe,
        inplace_when=lambda p: p["function"] in INPLACE,
    ),
)
