"""Source code that rebuilds a submodule of a compiled graph: ``nn.Conv2d(3, 64, ...)``.

Written from each module's attributes, type by type, rather than from ``repr``: a
repr leaves out arguments (``inplace`` of Hardswish, ``count_include_pad``) and is not
valid Python for every module. Arguments at their default are left out and a square
pair ``(3, 3)`` is written ``3``, so the line reads like hand-written code; the tests
check that each rebuilt module has the original's repr (pairs squeezed alike), which
catches a forgotten argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..blocks import torch_modules as tm
from .errors import ExportError

ALWAYS = object()  # marks an argument written even at its default, for readability


def _same(attr: str) -> Callable[[nn.Module], Any]:
    return lambda m: getattr(m, attr)


@dataclass(frozen=True)
class _Builtin:
    """How to call one ``torch.nn`` class: positional attributes, then keyword
    arguments with their defaults; ``getters`` read an argument the module does not
    store under its own name."""

    positional: tuple[str, ...] = ()
    keywords: tuple[tuple[str, Any], ...] = ()
    getters: tuple[tuple[str, Callable[[nn.Module], Any]], ...] = ()


_CONV_TAIL = (("dilation", (1, 1)), ("groups", 1), ("bias", True), ("padding_mode", "zeros"))
_HAS_BIAS = ("bias", lambda m: m.bias is not None)
_INPLACE = (("inplace", False),)

BUILTINS: dict[type, _Builtin] = {
    nn.Conv2d: _Builtin(
        ("in_channels", "out_channels"),
        (("kernel_size", ALWAYS), ("stride", (1, 1)), ("padding", (0, 0)), *_CONV_TAIL),
        getters=(_HAS_BIAS,)),
    nn.ConvTranspose2d: _Builtin(
        ("in_channels", "out_channels"),
        (("kernel_size", ALWAYS), ("stride", (1, 1)), ("padding", (0, 0)),
         ("output_padding", (0, 0)), *_CONV_TAIL),
        getters=(_HAS_BIAS,)),
    nn.MaxPool2d: _Builtin(
        (), (("kernel_size", ALWAYS), ("stride", None), ("padding", 0), ("dilation", 1),
             ("return_indices", False), ("ceil_mode", False)),
        getters=(("stride", lambda m: None if m.stride == m.kernel_size else m.stride),)),
    nn.AvgPool2d: _Builtin(
        (), (("kernel_size", ALWAYS), ("stride", None), ("padding", 0), ("ceil_mode", False),
             ("count_include_pad", True), ("divisor_override", None)),
        getters=(("stride", lambda m: None if m.stride == m.kernel_size else m.stride),)),
    nn.AdaptiveAvgPool2d: _Builtin(("output_size",)),
    nn.ReLU: _Builtin((), _INPLACE),
    nn.ReLU6: _Builtin((), _INPLACE),
    nn.LeakyReLU: _Builtin((), (("negative_slope", 0.01), *_INPLACE)),
    nn.ELU: _Builtin((), (("alpha", 1.0), *_INPLACE)),
    nn.GELU: _Builtin((), (("approximate", "none"),)),
    nn.SiLU: _Builtin((), _INPLACE),
    nn.Sigmoid: _Builtin(),
    nn.Tanh: _Builtin(),
    nn.Hardswish: _Builtin((), _INPLACE),
    nn.Softmax: _Builtin((), (("dim", ALWAYS),)),
    nn.Dropout: _Builtin((), (("p", ALWAYS), *_INPLACE)),
    nn.Linear: _Builtin(("in_features", "out_features"), (("bias", True),),
                        getters=(_HAS_BIAS,)),
    nn.Upsample: _Builtin(
        (), (("size", None), ("scale_factor", None), ("mode", "nearest"),
             ("align_corners", None), ("recompute_scale_factor", None))),
}
for _bn in (nn.BatchNorm1d, nn.BatchNorm2d):
    BUILTINS[_bn] = _Builtin(
        ("num_features",),
        (("eps", 1e-5), ("momentum", 0.1), ("affine", True), ("track_running_stats", True),
         ("bias", True)),  # ``bias=False`` (a BN without shift) is new in torch 2.x: rare
        getters=(("bias", lambda m: m.bias is not None or not m.affine),))


def _residual_args(m: nn.Module, stride_conv: str, last_conv: str) -> tuple[int, ...]:
    return (m.conv1.in_channels, getattr(m, last_conv).out_channels,
            getattr(m, stride_conv).stride[0])


def _inception_args(m: tm.Inception) -> tuple[int, ...]:
    def out(branch: nn.Module, i: int) -> int:
        return branch[i][0].out_channels

    return (m.branch1[0].in_channels, m.branch1[0].out_channels,
            out(m.branch2, 0), out(m.branch2, 1), out(m.branch3, 0), out(m.branch3, 1),
            out(m.branch4, 1))


def _dense_args(m: tm.Dense) -> tuple[int, ...]:
    layers = list(m.children())
    first = layers[0]
    growth = first.conv2.out_channels
    return (first.norm1.num_features, len(layers), growth, first.conv1.out_channels // growth)


# The composite blocks' classes, copied into the .py file, and their constructor arguments
# read back from the submodules (torch_modules keeps no copy of them).
COMPOSITES: dict[type, Callable[[Any], tuple[int, ...]]] = {
    tm.BasicResidual: lambda m: _residual_args(m, "conv1", "conv2"),
    tm.BottleneckResidual: lambda m: _residual_args(m, "conv2", "conv3"),
    tm.Inception: _inception_args,
    tm.Dense: _dense_args,
}


def constructor(module: nn.Module, name: str = "") -> str:
    """A Python expression that builds a module equal to ``module`` (fresh weights)."""
    callee, args = constructor_call(module, name)
    return f"{callee}({', '.join(args)})"


def constructor_call(module: nn.Module, name: str = "") -> tuple[str, list[str]]:
    """The callee (``nn.Conv2d``, ``BasicResidual``) and its arguments as source text,
    apart so that a long call can be wrapped. ``name`` only serves the error message."""
    kind = type(module)
    if kind in COMPOSITES:
        return kind.__name__, [repr(a) for a in COMPOSITES[kind](module)]
    rule = BUILTINS.get(kind)
    if rule is None:
        where = f" (node '{name}')" if name else ""
        raise ExportError(f"the .py export cannot write {kind.__name__}{where} yet; "
                          f"nothing was written")
    getters = dict(rule.getters)
    args = [repr(_squeeze(getattr(module, a))) for a in rule.positional]
    for key, default in rule.keywords:
        value = _squeeze(getters[key](module) if key in getters else getattr(module, key))
        if default is ALWAYS or value != _squeeze(default):
            args.append(f"{key}={value!r}")
    return f"nn.{kind.__name__}", args


def _squeeze(value: Any) -> Any:
    """``(3, 3)`` → ``3``: every torch.nn layer here takes an int for a square pair."""
    if isinstance(value, tuple) and value and len(set(value)) == 1:
        return value[0]
    return value
