"""Shape changers without weights: Flatten and Upsample."""

from __future__ import annotations

import math

from ..spec import BlockSpec, Functional, Params, ParamSpec, Shape, need_image


def flatten_shape(p: Params, ins: list[Shape]) -> Shape:
    return (math.prod(ins[0]),)


def flatten_build(p: Params, ins: list[Shape]):
    import torch

    return Functional(torch.flatten, (1,))


def upsample_shape(p: Params, ins: list[Shape]) -> Shape:
    c, h, w = need_image(ins, "Upsample")
    s = p["scale_factor"]
    return (c, h * s, w * s)


def upsample_rf(p: Params, ins: list[Shape]) -> list[tuple[float, float]]:
    # nearest copies one input pixel; bilinear blends two neighbours along each axis
    k = 2 if p["mode"] == "bilinear" and p["scale_factor"] > 1 else 1
    return [(k, 1 / p["scale_factor"])]


def upsample_build(p: Params, ins: list[Shape]):
    from torch import nn

    if p["mode"] == "bilinear":
        return nn.Upsample(scale_factor=p["scale_factor"], mode="bilinear", align_corners=False)
    return nn.Upsample(scale_factor=p["scale_factor"], mode="nearest")


BLOCKS = (
    BlockSpec(
        type="Flatten",
        category="Reshape",
        doc="Unrolls [C,H,W] into one vector [C·H·W] so a Linear can follow.",
        params=(),
        infer=flatten_shape,
        build=flatten_build,
        saved_activations=lambda p, ins, out: 0,  # a view: no new memory
    ),
    BlockSpec(
        type="Upsample",
        category="Reshape",
        doc="Enlarges H×W by an integer factor without weights.",
        params=(
            ParamSpec("scale_factor", "int", 2, "How many times larger H and W become.", 1, 32),
            ParamSpec("mode", "choice", "nearest", "How new pixels are filled in.",
                      choices=("nearest", "bilinear")),
        ),
        infer=upsample_shape,
        build=upsample_build,
        rf_steps=upsample_rf,
    ),
)
