"""The short texts a block shows on the canvas: its key parameters and badges.

Kept in one place so the canvas, the summary and screenshots say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.units import human_count


def _pair(v: Any) -> str:
    if isinstance(v, list | tuple):
        return f"{v[0]}×{v[1]}" if v[0] != v[1] else f"{v[0]}×{v[0]}"
    return f"{v}×{v}"


def _stride(v: Any) -> str:
    if v is None:
        return ""
    s = v[0] if isinstance(v, list | tuple) and v[0] == v[1] else v
    return "" if s in (1, (1, 1)) else f" · s{s if not isinstance(s, list | tuple) else _pair(s)}"


def _conv(p: Mapping[str, Any]) -> str:
    text = f"{p['out_channels']} · {_pair(p['kernel_size'])}{_stride(p['stride'])}"
    if p.get("groups", 1) != 1:
        text += f" · g{p['groups']}"
    if p.get("dilation") not in (None, 1, (1, 1), [1, 1]):
        text += f" · d{_pair(p['dilation'])}"
    return text


def _pool(p: Mapping[str, Any]) -> str:
    return _pair(p["kernel_size"]) + _stride(p["stride"] if p["stride"] is not None
                                            else p["kernel_size"])


_SUBTITLES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "Input": lambda p: f"{p['channels']}×{p['height']}×{p['width']}",
    "Conv2d": _conv,
    "ConvTranspose2d": _conv,
    "MaxPool2d": _pool,
    "AvgPool2d": _pool,
    "AdaptiveAvgPool2d": lambda p: f"→ {_pair(p['output_size'])}",
    "Activation": lambda p: p["function"] + (f" {p['negative_slope']:g}"
                                             if p["function"] == "leaky_relu" else ""),
    "Dropout": lambda p: f"p {p['p']:g}",
    "Linear": lambda p: f"{p['out_features']} out",
    "Upsample": lambda p: f"×{p['scale_factor']} · {p['mode']}",
    "ResidualBlock": lambda p: f"{p['out_channels']}{_stride(p['stride'])}"
                               + (" · bottleneck" if p["bottleneck"] else ""),
    "InceptionBlock": lambda p: f"{p['ch1x1']}/{p['ch3x3']}/{p['ch5x5']}/{p['pool_proj']}",
    "DenseBlock": lambda p: f"{p['num_layers']} layers · k{p['growth_rate']}",
}


def subtitle(type_name: str, params: Mapping[str, Any] | None) -> str:
    """Key parameters, e.g. '64 · 3×3 · s2' for a strided convolution."""
    if params is None or type_name not in _SUBTITLES:
        return ""
    try:
        return _SUBTITLES[type_name](params)
    except (KeyError, TypeError, IndexError):
        return ""


def shape_badge(shape: tuple[int, ...] | None) -> str:
    return "?" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def params_badge(count: int) -> str:
    return human_count(count) if count else ""
