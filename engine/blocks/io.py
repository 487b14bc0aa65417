"""Input and Output: where tensors enter and leave the network."""

from __future__ import annotations

from ..spec import BlockSpec, Params, ParamSpec, Shape, no_subtitle


def _input_shape(p: Params, ins: list[Shape]) -> Shape:
    return (p["channels"], p["height"], p["width"])


def _output_shape(p: Params, ins: list[Shape]) -> Shape:
    return ins[0]


BLOCKS = (
    BlockSpec(
        type="Input",
        category="Input/Output",
        doc="An image batch entering the network: channels × height × width.",
        params=(
            ParamSpec("channels", "int", 3, "Image channels: 1 for grey, 3 for RGB.", 1, 4096),
            ParamSpec("height", "int", 32, "Image height in pixels.", 1, 8192),
            ParamSpec("width", "int", 32, "Image width in pixels.", 1, 8192),
        ),
        infer=_input_shape,
        id_prefix="input",
        subtitle=lambda p: f"{p['channels']}×{p['height']}×{p['width']}",
        min_inputs=0,
        max_inputs=0,
        saved_activations=lambda p, ins, out: 0,  # Report.memory counts it as `inputs`
    ),
    BlockSpec(
        type="Output",
        category="Input/Output",
        doc="Marks the network's result: its input is what the model returns.",
        params=(),
        infer=_output_shape,
        id_prefix="out",
        subtitle=no_subtitle,
        saved_activations=lambda p, ins, out: 0,
    ),
)
