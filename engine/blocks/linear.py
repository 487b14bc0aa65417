"""Linear: the fully connected layer."""

from __future__ import annotations

from ..spec import BlockSpec, Params, ParamSpec, Recipe, Shape, need_vector


def linear_shape(p: Params, ins: list[Shape]) -> Shape:
    need_vector(ins, "Linear")
    return (p["out_features"],)


def linear_params(p: Params, ins: list[Shape]) -> int:
    return ins[0][0] * p["out_features"] + (p["out_features"] if p["bias"] else 0)


def linear_macs(p: Params, ins: list[Shape], out: Shape) -> int:
    return ins[0][0] * p["out_features"]


def linear_recipe(p: Params, ins: list[Shape]) -> Recipe:
    return Recipe("nn.Linear", (ins[0][0], p["out_features"]), {"bias": p["bias"]})


BLOCKS = (
    BlockSpec(
        type="Linear",
        category="Linear",
        doc="Every output is a weighted sum of every input feature (fully connected).",
        params=(
            ParamSpec("out_features", "int", 10, "Output size; the last one is the class count.",
                      1, 1_000_000),
            ParamSpec("bias", "bool", True, "Learn an additive bias per output."),
        ),
        infer=linear_shape,
        id_prefix="fc",
        subtitle=lambda p: f"{p['out_features']} out",
        recipe=linear_recipe,
        count_params=linear_params,
        count_macs=linear_macs,
        backward_keeps_output=False,
    ),
)
