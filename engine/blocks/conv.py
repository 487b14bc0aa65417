"""Convolutions: Conv2d and ConvTranspose2d."""

from __future__ import annotations

from ..errors import BlockError
from ..spec import (
    BlockSpec,
    Params,
    ParamSpec,
    Recipe,
    Shape,
    conv_out,
    need_image,
    pair_text,
    resolve_padding,
    stride_text,
)

OUT_CHANNELS = ParamSpec("out_channels", "int", 16, "Number of filters, i.e. output channels.",
                         1, 65536)
GROUPS = ParamSpec("groups", "int", 1,
                   "Split channels into groups; groups = in_channels makes it depthwise.", 1, 65536)
BIAS = ParamSpec("bias", "bool", True, "Learn an additive bias per output channel.")


def check_groups(c_in: int, c_out: int, groups: int) -> None:
    if c_in % groups or c_out % groups:
        raise BlockError(
            f"groups {groups} must divide both the input channels {c_in} and the output "
            f"channels {c_out}: choose groups from the common divisors, e.g. 1"
            + (f" or {c_in} (depthwise)" if c_out % c_in == 0 else "")
        )


def _x(pair: tuple[int, int]) -> str:
    return f"{pair[0]}×{pair[1]}"


# ---- Conv2d ----------------------------------------------------------------------------


def conv2d_shape(p: Params, ins: list[Shape]) -> Shape:
    c, h, w = need_image(ins, "Conv2d")
    check_groups(c, p["out_channels"], p["groups"])
    k, s, d = p["kernel_size"], p["stride"], p["dilation"]
    pad = resolve_padding(p["padding"], k, d)
    oh = conv_out(h, k[0], s[0], pad[0], d[0])
    ow = conv_out(w, k[1], s[1], pad[1], d[1])
    if oh < 1 or ow < 1:
        eff = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
        raise BlockError(
            f"kernel {_x(eff)} is larger than its padded input {h + 2 * pad[0]}×{w + 2 * pad[1]}: "
            f'use a smaller kernel_size, padding "same", or remove a pooling or stride before it'
        )
    return (p["out_channels"], oh, ow)


def conv2d_params(p: Params, ins: list[Shape]) -> int:
    c = ins[0][0]
    k = p["kernel_size"]
    return p["out_channels"] * (c // p["groups"]) * k[0] * k[1] + (
        p["out_channels"] if p["bias"] else 0)


def conv2d_macs(p: Params, ins: list[Shape], out: Shape) -> int:
    k = p["kernel_size"]
    return out[0] * out[1] * out[2] * (ins[0][0] // p["groups"]) * k[0] * k[1]


def conv2d_rf(p: Params, ins: list[Shape]) -> list[tuple[float, float]]:
    k, s, d = p["kernel_size"], p["stride"], p["dilation"]
    return [(max(d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1), max(s))]


def conv2d_recipe(p: Params, ins: list[Shape]) -> Recipe:
    pad = resolve_padding(p["padding"], p["kernel_size"], p["dilation"])
    return Recipe("nn.Conv2d", (ins[0][0], p["out_channels"]), {
        "kernel_size": p["kernel_size"], "stride": p["stride"], "padding": pad,
        "dilation": p["dilation"], "groups": p["groups"], "bias": p["bias"]})


def conv_subtitle(p: Params) -> str:
    """``64 · 3×3 · s2``, plus groups and dilation when they are not 1."""
    text = f"{p['out_channels']} · {pair_text(p['kernel_size'])}{stride_text(p['stride'])}"
    if p.get("groups", 1) != 1:
        text += f" · g{p['groups']}"
    if p.get("dilation") not in (None, 1, (1, 1), [1, 1]):
        text += f" · d{pair_text(p['dilation'])}"
    return text


# ---- ConvTranspose2d -------------------------------------------------------------------


def tconv_shape(p: Params, ins: list[Shape]) -> Shape:
    c, h, w = need_image(ins, "ConvTranspose2d")
    check_groups(c, p["out_channels"], p["groups"])
    k, s, pad, op = p["kernel_size"], p["stride"], p["padding"], p["output_padding"]
    if op[0] >= s[0] or op[1] >= s[1]:
        raise BlockError(
            f"output_padding {_x(op)} must be smaller than the stride {_x(s)}: "
            f"lower output_padding (it only picks among sizes the stride allows)"
        )
    oh = (h - 1) * s[0] - 2 * pad[0] + (k[0] - 1) + op[0] + 1
    ow = (w - 1) * s[1] - 2 * pad[1] + (k[1] - 1) + op[1] + 1
    if oh < 1 or ow < 1:
        raise BlockError(f"padding {_x(pad)} removes the whole output: lower padding")
    return (p["out_channels"], oh, ow)


def tconv_params(p: Params, ins: list[Shape]) -> int:
    k = p["kernel_size"]
    return ins[0][0] * (p["out_channels"] // p["groups"]) * k[0] * k[1] + (
        p["out_channels"] if p["bias"] else 0)


def tconv_macs(p: Params, ins: list[Shape], out: Shape) -> int:
    c, h, w = ins[0]
    k = p["kernel_size"]
    return h * w * c * (p["out_channels"] // p["groups"]) * k[0] * k[1]


def tconv_rf(p: Params, ins: list[Shape]) -> list[tuple[float, float]]:
    # Each output pixel sees ceil(k/s) input pixels; the grid gets s times finer.
    k, s = p["kernel_size"], p["stride"]
    return [(max(-(-k[0] // s[0]), -(-k[1] // s[1])), 1 / max(s))]


def tconv_recipe(p: Params, ins: list[Shape]) -> Recipe:
    return Recipe("nn.ConvTranspose2d", (ins[0][0], p["out_channels"]), {
        "kernel_size": p["kernel_size"], "stride": p["stride"], "padding": p["padding"],
        "output_padding": p["output_padding"], "groups": p["groups"], "bias": p["bias"]})


BLOCKS = (
    BlockSpec(
        type="Conv2d",
        category="Convolution",
        doc="Slides learned filters over the image; each filter gives one output channel.",
        params=(
            OUT_CHANNELS,
            ParamSpec("kernel_size", "int2", 3, "Filter height × width.", 1, 255),
            ParamSpec("stride", "int2", 1, "Step between filter positions; 2 halves H and W.",
                      1, 255),
            ParamSpec("padding", "int2", "same",
                      'Zeros added on each side; "same" keeps H×W (at stride 1), '
                      '"valid" adds none.', 0, 255, words=("same", "valid")),
            ParamSpec("dilation", "int2", 1, "Spacing between filter taps (atrous convolution).",
                      1, 64),
            GROUPS,
            BIAS,
        ),
        infer=conv2d_shape,
        id_prefix="conv",
        subtitle=conv_subtitle,
        recipe=conv2d_recipe,
        count_params=conv2d_params,
        count_macs=conv2d_macs,
        rf_steps=conv2d_rf,
        backward_keeps_output=False,  # backward needs the input and the weights
    ),
    BlockSpec(
        type="ConvTranspose2d",
        category="Convolution",
        doc="Learned upsampling: the transpose of a strided convolution.",
        params=(
            OUT_CHANNELS,
            ParamSpec("kernel_size", "int2", 2, "Filter height × width.", 1, 255),
            ParamSpec("stride", "int2", 2, "Upsampling factor.", 1, 255),
            ParamSpec("padding", "int2", 0, "Rows/columns removed from each side of the output.",
                      0, 255),
            ParamSpec("output_padding", "int2", 0,
                      "Extra rows/columns on one side, to pick the exact output size.", 0, 255),
            GROUPS,
            BIAS,
        ),
        infer=tconv_shape,
        id_prefix="deconv",
        subtitle=conv_subtitle,
        recipe=tconv_recipe,
        count_params=tconv_params,
        count_macs=tconv_macs,
        rf_steps=tconv_rf,
        backward_keeps_output=False,
    ),
)
