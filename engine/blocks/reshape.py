"""Shape changers without weights: Flatten and Upsample."""

from __future__ import annotations

import math

from ..spec import BlockSpec, Functional, Params, ParamSpec, Recipe, Shape, need_image, no_subtitle


def flatten_shape(p: Params, ins: list[Shape]) -> Shape:
    return (math.prod(ins[0]),)


def flatten_recipe(p: Params, ins: list[Shape]) -> Functional:
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


def upsample_recipe(p: Params, ins: list[Shape]) -> Recipe:
    kwargs = {"scale_factor": p["scale_factor"], "mode": p["mode"]}
    if p["mode"] == "bilinear":
        kwargs["align_corners"] = False  # torch warns unless it is given
    return Recipe("nn.Upsample", (), kwargs)


BLOCKS = (
    BlockSpec(
        type="Flatten",
        category="Reshape",
        doc="Unrolls [C,H,W] into one vector [C·H·W] so a Linear can follow.",
        params=(),
        infer=flatten_shape,
        id_prefix="flatten",
        subtitle=no_subtitle,
        recipe=flatten_recipe,
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
        id_prefix="upsample",
        subtitle=lambda p: f"×{p['scale_factor']} · {p['mode']}",
        recipe=upsample_recipe,
        rf_steps=upsample_rf,
    ),
)
