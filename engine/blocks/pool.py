"""Pooling: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and GlobalAvgPool."""

from __future__ import annotations

import math

from ..errors import BlockError
from ..spec import (
    BlockSpec,
    Functional,
    Params,
    ParamSpec,
    Recipe,
    Shape,
    conv_out,
    need_image,
    no_subtitle,
    pair_text,
    stride_text,
)

POOL_PARAMS = (
    ParamSpec("kernel_size", "int2", 2, "Window height × width.", 1, 255),
    ParamSpec("stride", "int2", None, "Step between windows; null means the kernel size.",
              1, 255, nullable=True),
    ParamSpec("padding", "int2", 0, "Implicit padding on each side (at most half the kernel).",
              0, 127),
    ParamSpec("ceil_mode", "bool", False, "Round the output size up instead of down."),
)


def _stride(p: Params) -> tuple[int, int]:
    return p["kernel_size"] if p["stride"] is None else p["stride"]


def pool_shape(block: str):
    def infer(p: Params, ins: list[Shape]) -> Shape:
        c, h, w = need_image(ins, block)
        k, s, pad = p["kernel_size"], _stride(p), p["padding"]
        if pad[0] * 2 > k[0] or pad[1] * 2 > k[1]:
            raise BlockError(
                f"padding {pad[0]}×{pad[1]} is more than half the kernel {k[0]}×{k[1]}: "
                f"lower padding to at most {k[0] // 2}×{k[1] // 2}"
            )
        oh = conv_out(h, k[0], s[0], pad[0], 1, p["ceil_mode"])
        ow = conv_out(w, k[1], s[1], pad[1], 1, p["ceil_mode"])
        if oh < 1 or ow < 1:
            raise BlockError(
                f"window {k[0]}×{k[1]} is larger than its input {h}×{w}: use a smaller "
                f"kernel_size, or GlobalAvgPool to pool the whole map"
            )
        return (c, oh, ow)

    return infer


def pool_rf(p: Params, ins: list[Shape]) -> list[tuple[float, float]]:
    return [(max(p["kernel_size"]), max(_stride(p)))]


def pool_subtitle(p: Params) -> str:
    return pair_text(p["kernel_size"]) + stride_text(p["stride"] if p["stride"] is not None
                                                     else p["kernel_size"])


def pool_recipe(cls: str):
    def recipe(p: Params, ins: list[Shape]) -> Recipe:
        # stride None is torch's own "same as the kernel"
        kwargs = {"kernel_size": p["kernel_size"], "stride": p["stride"],
                  "padding": p["padding"], "ceil_mode": p["ceil_mode"]}
        if "count_include_pad" in p:
            kwargs["count_include_pad"] = p["count_include_pad"]
        return Recipe(cls, (), kwargs)

    return recipe


def adaptive_shape(p: Params, ins: list[Shape]) -> Shape:
    c, _, _ = need_image(ins, "AdaptiveAvgPool2d")
    return (c, *p["output_size"])


def _adaptive_window(size: int, out: int) -> int:
    """Largest window of adaptive pooling: PyTorch's window i spans
    [floor(i·size/out), ceil((i+1)·size/out)), one more than size/out when it does not divide."""
    return max(-(-(i + 1) * size // out) - i * size // out for i in range(out))


def adaptive_rf(p: Params, ins: list[Shape]) -> list[tuple[float, float]]:
    _, h, w = ins[0]
    oh, ow = p["output_size"]
    return [(max(_adaptive_window(h, oh), _adaptive_window(w, ow)),
             max(1, min(h // oh, w // ow)))]


def adaptive_recipe(p: Params, ins: list[Shape]) -> Recipe:
    return Recipe("nn.AdaptiveAvgPool2d", (p["output_size"],))


def gap_shape(p: Params, ins: list[Shape]) -> Shape:
    c, _, _ = need_image(ins, "GlobalAvgPool")
    return (c,)


def gap_rf(p: Params, ins: list[Shape]) -> list[tuple[float, float]]:
    _, h, w = ins[0]
    return [(max(h, w), max(h, w))]


def gap_recipe(p: Params, ins: list[Shape]) -> Functional:
    import torch

    return Functional(torch.mean, ((2, 3),))


BLOCKS = (
    BlockSpec(
        type="MaxPool2d",
        category="Pooling",
        doc="Keeps the largest value in each window: shrinks H×W, keeps channels.",
        params=POOL_PARAMS,
        infer=pool_shape("MaxPool2d"),
        id_prefix="maxpool",
        subtitle=pool_subtitle,
        recipe=pool_recipe("nn.MaxPool2d"),
        rf_steps=pool_rf,
        # its output, plus the int64 argmax indices backward needs (two float32s each)
        saved_activations=lambda p, ins, out: 3 * math.prod(out),
    ),
    BlockSpec(
        type="AvgPool2d",
        category="Pooling",
        doc="Averages each window: shrinks H×W, keeps channels.",
        params=POOL_PARAMS + (
            ParamSpec("count_include_pad", "bool", True,
                      "Count padded zeros in the average."),
        ),
        infer=pool_shape("AvgPool2d"),
        id_prefix="avgpool",
        subtitle=pool_subtitle,
        recipe=pool_recipe("nn.AvgPool2d"),
        rf_steps=pool_rf,
    ),
    BlockSpec(
        type="AdaptiveAvgPool2d",
        category="Pooling",
        doc="Averages into a fixed output size, whatever the input size.",
        params=(ParamSpec("output_size", "int2", 1, "Output height × width.", 1, 4096),),
        infer=adaptive_shape,
        id_prefix="adaptpool",
        subtitle=lambda p: f"→ {pair_text(p['output_size'])}",
        recipe=adaptive_recipe,
        rf_steps=adaptive_rf,
    ),
    BlockSpec(
        type="GlobalAvgPool",
        category="Pooling",
        doc="Averages each channel over the whole map, giving a vector [C] for a Linear.",
        params=(),
        infer=gap_shape,
        id_prefix="gap",
        subtitle=no_subtitle,
        recipe=gap_recipe,
        rf_steps=gap_rf,
    ),
)
