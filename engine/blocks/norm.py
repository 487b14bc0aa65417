"""Normalisation and regularisation: BatchNorm and Dropout."""

from __future__ import annotations

import math

from ..errors import BlockError
from ..spec import BlockSpec, Params, ParamSpec, Recipe, Shape, fmt_shape, no_subtitle


def _same(p: Params, ins: list[Shape]) -> Shape:
    return ins[0]


def bn_shape(p: Params, ins: list[Shape]) -> Shape:
    if len(ins[0]) not in (1, 3):
        raise BlockError(f"BatchNorm needs [C,H,W] or [F], not {fmt_shape(ins[0])}")
    return ins[0]


def bn_params(p: Params, ins: list[Shape]) -> int:
    return 2 * ins[0][0] if p["affine"] else 0


def bn_recipe(p: Params, ins: list[Shape]) -> Recipe:
    cls = "nn.BatchNorm2d" if len(ins[0]) == 3 else "nn.BatchNorm1d"
    return Recipe(cls, (ins[0][0],),
                  {"eps": p["eps"], "momentum": p["momentum"], "affine": p["affine"]})


def dropout_recipe(p: Params, ins: list[Shape]) -> Recipe:
    return Recipe("nn.Dropout", (p["p"],))


BLOCKS = (
    BlockSpec(
        type="BatchNorm",
        category="Normalisation",
        doc="Normalises each channel over the batch, then scales and shifts it (BatchNorm2d/1d).",
        params=(
            ParamSpec("eps", "float", 1e-5, "Added to the variance for numerical stability.",
                      1e-12, 1.0),
            ParamSpec("momentum", "float", 0.1, "Update rate of the running statistics.",
                      0.0, 1.0),
            ParamSpec("affine", "bool", True, "Learn a scale and shift per channel."),
        ),
        infer=bn_shape,
        id_prefix="bn",
        subtitle=no_subtitle,
        recipe=bn_recipe,
        count_params=bn_params,
        backward_keeps_output=False,  # it keeps its input and statistics
    ),
    BlockSpec(
        type="Dropout",
        category="Regularisation",
        doc="While training, zeroes each element with probability p (and rescales the rest).",
        params=(ParamSpec("p", "float", 0.5, "Probability of dropping an element.", 0.0, 1.0),),
        infer=_same,
        id_prefix="dropout",
        subtitle=lambda p: f"p {p['p']:g}",
        recipe=dropout_recipe,
        # its output, plus the mask backward needs: one byte per element on CUDA (on the
        # CPU, torch keeps a mask as large as the output)
        saved_activations=lambda p, ins, out: math.prod(out) + -(-math.prod(out) // 4),
    ),
)
