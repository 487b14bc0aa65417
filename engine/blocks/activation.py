"""Activation functions: element-wise non-linearities (softmax across channels)."""

from __future__ import annotations

from ..spec import BlockSpec, Params, ParamSpec, Shape

FUNCTIONS = ("relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh",
             "hardswish", "softmax")


def _same(p: Params, ins: list[Shape]) -> Shape:
    return ins[0]


def activation_build(p: Params, ins: list[Shape]):
    from torch import nn

    f = p["function"]
    if f == "leaky_relu":
        return nn.LeakyReLU(p["negative_slope"])
    if f == "softmax":
        return nn.Softmax(dim=1)
    return {
        "relu": nn.ReLU, "relu6": nn.ReLU6, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU,
        "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "hardswish": nn.Hardswish,
    }[f]()


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
        build=activation_build,
        max_inputs=1,
    ),
)
