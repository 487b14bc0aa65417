"""Composite blocks: ResidualBlock, InceptionBlock and DenseBlock.

Their counts are written out from the architecture (not measured from torch), and the
catalogue tests compare them with the real modules in ``torch_modules``.
"""

from __future__ import annotations

from ..errors import BlockError
from ..spec import BlockSpec, Params, ParamSpec, Recipe, Shape, conv_out, need_image, stride_text

# ---- ResidualBlock ----------------------------------------------------------------------


def _has_projection(c_in: int, p: Params) -> bool:
    return p["stride"] != 1 or c_in != p["out_channels"]


def residual_shape(p: Params, ins: list[Shape]) -> Shape:
    c, h, w = need_image(ins, "ResidualBlock")
    if p["bottleneck"] and p["out_channels"] % 4:
        raise BlockError(
            f"a bottleneck reduces to out_channels/4, so out_channels {p['out_channels']} "
            f"must be divisible by 4: use {p['out_channels'] // 4 * 4 or 4}"
        )
    s = p["stride"]
    return (p["out_channels"], conv_out(h, 3, s, 1), conv_out(w, 3, s, 1))


def residual_params(p: Params, ins: list[Shape]) -> int:
    c, out = ins[0][0], p["out_channels"]
    proj = c * out + 2 * out if _has_projection(c, p) else 0
    if p["bottleneck"]:
        wd = out // 4
        return c * wd + 2 * wd + 9 * wd * wd + 2 * wd + wd * out + 2 * out + proj
    return 9 * c * out + 2 * out + 9 * out * out + 2 * out + proj


def residual_macs(p: Params, ins: list[Shape], out: Shape) -> int:
    c, h, w = ins[0]
    o, oh, ow = out
    proj = oh * ow * c * o if _has_projection(c, p) else 0
    if p["bottleneck"]:
        wd = o // 4
        return h * w * c * wd + oh * ow * (9 * wd * wd + wd * o) + proj
    return oh * ow * (9 * c * o + 9 * o * o) + proj


def residual_rf(p: Params, ins: list[Shape]) -> list[tuple[float, float]]:
    if p["bottleneck"]:
        return [(1, 1), (3, p["stride"]), (1, 1)]
    return [(3, p["stride"]), (3, 1)]


def residual_saved(p: Params, ins: list[Shape], out: Shape) -> int:
    # What autograd keeps (the ReLUs work in place, so a BN output and its ReLU share one
    # tensor; the add keeps nothing): per conv its output (for the BN), per inner BN+ReLU
    # its output (for the ReLU and the next conv), and the block's output after the last
    # ReLU. The projection's conv output is kept for its BN. The input counts upstream.
    c, h, w = ins[0]
    o, oh, ow = out
    proj = o * oh * ow if _has_projection(c, p) else 0
    if p["bottleneck"]:
        wd = o // 4
        return 2 * wd * h * w + 2 * wd * oh * ow + 2 * o * oh * ow + proj
    return 4 * o * oh * ow + proj


def residual_recipe(p: Params, ins: list[Shape]) -> Recipe:
    cls = "BottleneckResidual" if p["bottleneck"] else "BasicResidual"
    return Recipe(cls, (ins[0][0], p["out_channels"], p["stride"]))


# ---- InceptionBlock ---------------------------------------------------------------------

INCEPTION_CHANNELS = ("ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj")


def inception_shape(p: Params, ins: list[Shape]) -> Shape:
    _, h, w = need_image(ins, "InceptionBlock")
    return (p["ch1x1"] + p["ch3x3"] + p["ch5x5"] + p["pool_proj"], h, w)


def _inception_weights(c: int, p: Params) -> int:
    """Multiplications per output pixel, which is also the weight count without biases."""
    return (c * p["ch1x1"] + c * p["ch3x3red"] + 9 * p["ch3x3red"] * p["ch3x3"]
            + c * p["ch5x5red"] + 25 * p["ch5x5red"] * p["ch5x5"] + c * p["pool_proj"])


def inception_params(p: Params, ins: list[Shape]) -> int:
    return _inception_weights(ins[0][0], p) + sum(p[k] for k in INCEPTION_CHANNELS)


def inception_macs(p: Params, ins: list[Shape], out: Shape) -> int:
    return out[1] * out[2] * _inception_weights(ins[0][0], p)


def inception_saved(p: Params, ins: list[Shape], out: Shape) -> int:
    # Each conv's output is kept once (its in-place ReLU and the next conv share it); the
    # max pool keeps its output and int64 indices (2 float32s each); the concat keeps
    # nothing, but its output is the block's result.
    _, h, w = ins[0]
    inner = p["ch3x3red"] + p["ch5x5red"] + 3 * ins[0][0]  # reduce convs, pool + indices
    return h * w * (inner + 2 * out[0])  # branch convs, the concat


def inception_recipe(p: Params, ins: list[Shape]) -> Recipe:
    return Recipe("Inception", (ins[0][0], *(p[k] for k in INCEPTION_CHANNELS)))


# ---- DenseBlock -------------------------------------------------------------------------


def dense_shape(p: Params, ins: list[Shape]) -> Shape:
    c, h, w = need_image(ins, "DenseBlock")
    return (c + p["num_layers"] * p["growth_rate"], h, w)


def _dense_layers(c: int, p: Params):
    g, b = p["growth_rate"], p["bn_size"]
    for i in range(p["num_layers"]):
        yield c + i * g, g, b * g


def dense_params(p: Params, ins: list[Shape]) -> int:
    return sum(2 * ci + ci * bg + 2 * bg + 9 * bg * g for ci, g, bg in _dense_layers(ins[0][0], p))


def dense_macs(p: Params, ins: list[Shape], out: Shape) -> int:
    hw = out[1] * out[2]
    return hw * sum(ci * bg + 9 * bg * g for ci, g, bg in _dense_layers(ins[0][0], p))


def dense_rf(p: Params, ins: list[Shape]) -> list[tuple[float, float]]:
    return [(3, 1)] * p["num_layers"]


def dense_saved(p: Params, ins: list[Shape], out: Shape) -> int:
    hw = out[1] * out[2]
    # per layer: the concatenated input and its BN+ReLU output (ci each, the ReLU works in
    # place), conv1's output and its BN+ReLU output (bg each); conv2's output is kept by
    # nobody (only concatenated), and the final concat is the block's result
    return hw * sum(2 * ci + 2 * bg for ci, _, bg in _dense_layers(ins[0][0], p)) + out[0] * hw


def dense_recipe(p: Params, ins: list[Shape]) -> Recipe:
    return Recipe("Dense", (ins[0][0], p["num_layers"], p["growth_rate"], p["bn_size"]))


def _channels(name: str, default: int, doc: str) -> ParamSpec:
    return ParamSpec(name, "int", default, doc, 1, 65536)


BLOCKS = (
    BlockSpec(
        type="ResidualBlock",
        category="Composite",
        doc="ResNet's block: two 3×3 convs (or a 1×1-3×3-1×1 bottleneck) plus a skip "
            "connection, so deep networks still train.",
        params=(
            _channels("out_channels", 64, "Output channels."),
            ParamSpec("stride", "int", 1, "2 halves H and W (the shortcut is then projected).",
                      1, 8),
            ParamSpec("bottleneck", "bool", False,
                      "Use 1×1 reduce / 3×3 / 1×1 expand, as in ResNet-50."),
        ),
        infer=residual_shape,
        id_prefix="res",
        subtitle=lambda p: f"{p['out_channels']}{stride_text(p['stride'])}"
                           + (" · bottleneck" if p["bottleneck"] else ""),
        recipe=residual_recipe,
        count_params=residual_params,
        count_macs=residual_macs,
        rf_steps=residual_rf,
        saved_activations=residual_saved,
    ),
    BlockSpec(
        type="InceptionBlock",
        category="Composite",
        doc="GoogLeNet's module: 1×1, 3×3, 5×5 and pooled branches side by side, concatenated.",
        params=(
            _channels("ch1x1", 64, "Channels of the 1×1 branch."),
            _channels("ch3x3red", 96, "1×1 reduction before the 3×3."),
            _channels("ch3x3", 128, "Channels of the 3×3 branch."),
            _channels("ch5x5red", 16, "1×1 reduction before the 5×5."),
            _channels("ch5x5", 32, "Channels of the 5×5 branch."),
            _channels("pool_proj", 32, "1×1 projection after the 3×3 max pool."),
        ),
        infer=inception_shape,
        id_prefix="inception",
        subtitle=lambda p: f"{p['ch1x1']}/{p['ch3x3']}/{p['ch5x5']}/{p['pool_proj']}",
        recipe=inception_recipe,
        count_params=inception_params,
        count_macs=inception_macs,
        rf_steps=lambda p, ins: [(5, 1)],
        saved_activations=inception_saved,
    ),
    BlockSpec(
        type="DenseBlock",
        category="Composite",
        doc="DenseNet's block: each layer adds growth_rate channels and sees all earlier ones.",
        params=(
            ParamSpec("num_layers", "int", 4, "Number of BN-ReLU-conv layers.", 1, 256),
            ParamSpec("growth_rate", "int", 32, "Channels each layer adds.", 1, 4096),
            ParamSpec("bn_size", "int", 4, "Bottleneck width as a multiple of growth_rate.",
                      1, 64),
        ),
        infer=dense_shape,
        id_prefix="dense",
        subtitle=lambda p: f"{p['num_layers']} layers · k{p['growth_rate']}",
        recipe=dense_recipe,
        count_params=dense_params,
        count_macs=dense_macs,
        rf_steps=dense_rf,
        saved_activations=dense_saved,
    ),
)
