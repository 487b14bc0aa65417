"""Torch-free description of blocks and their parameters.

The palette, inspector, file validation, analysis and compiler all read these specs,
so a block is described exactly once. Nothing here imports torch or Qt: the GUI
imports this module to build its forms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import BlockError

Shape = tuple[int, ...]
Params = Mapping[str, Any]
RFStep = tuple[float, float]  # (effective kernel, stride) in the previous layer's units

_MISSING = object()


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its type, default, allowed values and a one-line doc.

    ``kind`` is one of ``int``, ``float``, ``bool``, ``int2`` (an int or ``[h, w]``)
    and ``choice`` (one of ``choices``). ``words`` lists strings an ``int2`` also
    accepts (``"same"``/``"valid"`` for padding); ``nullable`` lets ``None`` through
    (a pool's stride, meaning "same as the kernel").
    """

    name: str
    kind: str
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    nullable: bool = False
    only_when: tuple[str, str] | None = None  # (param, value): shown only then

    def normalize(self, value: Any) -> Any:
        """Checked, canonical value (``int2`` becomes a tuple); raises ValueError."""
        if value is None:
            if self.nullable:
                return None
            raise ValueError(f"must not be null; {self.expected()}")
        if isinstance(value, str) and value in self.words:
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{value!r} is not true or false")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{value!r} is not one of {', '.join(self.choices)}")
            return value
        if self.kind == "int":
            return self._check_range(_as_int(value, self))
        if self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{value!r} is not a number; {self.expected()}")
            if not math.isfinite(value):
                raise ValueError(f"{value!r} is not a finite number")
            return self._check_range(float(value))
        if self.kind == "int2":
            if isinstance(value, list | tuple):
                if len(value) != 2:
                    raise ValueError(f"{value!r} must be one int or a pair [h, w]")
                h, w = (self._check_range(_as_int(v, self)) for v in value)
                return (h, w)
            v = self._check_range(_as_int(value, self))
            return (v, v)
        raise AssertionError(f"unknown parameter kind {self.kind}")

    def _check_range(self, v: float) -> Any:
        if self.minimum is not None and v < self.minimum:
            raise ValueError(f"{v} is below the minimum {_fmt(self.minimum)}")
        if self.maximum is not None and v > self.maximum:
            raise ValueError(f"{v} is above the maximum {_fmt(self.maximum)}")
        return v

    def expected(self) -> str:
        """Human description of the allowed values, used in error messages and tooltips."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        rng = ""
        if self.minimum is not None and self.maximum is not None:
            rng = f" from {_fmt(self.minimum)} to {_fmt(self.maximum)}"
        elif self.minimum is not None:
            rng = f" ≥ {_fmt(self.minimum)}"
        what = {"int": "an integer", "float": "a number", "int2": "an integer or [h, w]"}[self.kind]
        extra = "".join(f' or "{w}"' for w in self.words)
        if self.nullable:
            extra += " or null"
        return f"{what}{rng}{extra}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _as_int(value: Any, spec: ParamSpec) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{value!r} is not an integer; {spec.expected()}")
    return value


def _default_params(p: Params, ins: list[Shape]) -> int:
    return 0


def _default_macs(p: Params, ins: list[Shape], out: Shape) -> int:
    return 0


def _identity_rf(p: Params, ins: list[Shape]) -> list[RFStep]:
    return []


def _saved_is_output(p: Params, ins: list[Shape], out: Shape) -> int:
    return math.prod(out)


@dataclass(frozen=True)
class BlockSpec:
    """Everything Convas knows about one block type.

    ``infer`` maps resolved params and input shapes to the output shape, raising
    :class:`BlockError` with a fix when they do not fit. ``build`` returns a torch
    module (or a :class:`Functional`) and imports torch lazily, so reading the
    catalogue never loads torch.
    """

    type: str
    category: str
    doc: str
    params: tuple[ParamSpec, ...]
    infer: Callable[[Params, list[Shape]], Shape]
    build: Callable[[Params, list[Shape]], Any] | None = None
    count_params: Callable[[Params, list[Shape]], int] = _default_params
    count_macs: Callable[[Params, list[Shape], Shape], int] = _default_macs
    rf_steps: Callable[[Params, list[Shape]], list[RFStep]] = _identity_rf
    saved_activations: Callable[[Params, list[Shape], Shape], int] = _saved_is_output
    min_inputs: int = 1
    max_inputs: int | None = 1
    param_index: dict[str, ParamSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def input_range(self) -> str:
        if self.max_inputs is None:
            return f"{self.min_inputs} or more inputs"
        if self.min_inputs == self.max_inputs:
            n = self.min_inputs
            return "no input" if n == 0 else f"exactly {n} input" + ("s" if n > 1 else "")
        return f"{self.min_inputs} to {self.max_inputs} inputs"


@dataclass(frozen=True)
class Functional:
    """A block compiled to a plain function call rather than a submodule.

    ``list_input`` packs the inputs into one list argument (``torch.cat([a, b], 1)``);
    ``args`` follow the inputs.
    """

    fn: Callable[..., Any]
    args: tuple = ()
    list_input: bool = False


# ---- shape helpers shared by the block families ------------------------------------


def fmt_shape(shape: Shape | None) -> str:
    return "?" if shape is None else "[" + ",".join(str(d) for d in shape) + "]"


def need_image(ins: list[Shape], block: str) -> Shape:
    """The single ``[C,H,W]`` input of a spatial block, or an error saying what to insert."""
    shape = ins[0]
    if len(shape) != 3:
        raise BlockError(
            f"{block} needs an image tensor [C,H,W] but gets the vector {fmt_shape(shape)}: "
            f"move it before Flatten/GlobalAvgPool, or use Linear for vectors"
        )
    return shape


def need_vector(ins: list[Shape], block: str) -> Shape:
    shape = ins[0]
    if len(shape) != 1:
        raise BlockError(
            f"{block} needs a vector [F] but gets the image tensor {fmt_shape(shape)}: "
            f"insert Flatten or GlobalAvgPool before it"
        )
    return shape


def conv_out(size: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    """PyTorch's output-size formula for convolution and pooling."""
    eff = d * (k - 1) + 1
    num = size + 2 * p - eff  # may be negative: a ceil_mode window may hang over the end
    out = (num + (s - 1 if ceil else 0)) // s + 1  # floor division, as PyTorch's div_rtn
    if ceil and (out - 1) * s >= size + p:  # PyTorch: last window must start inside input
        out -= 1
    return max(out, 0)


def resolve_padding(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int],
                    name: str = "padding") -> tuple[int, int]:
    """Explicit symmetric padding for ``"same"``/``"valid"``/int2.

    ``"same"`` needs an odd effective kernel so that it can pad both sides equally;
    that gives H at stride 1 and ceil(H/stride) otherwise.
    """
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        pads = []
        for axis, k, d in zip(("height", "width"), kernel, dilation, strict=True):
            eff = d * (k - 1) + 1
            if eff % 2 == 0:
                raise BlockError(
                    f'padding "same" needs an odd kernel, but the {axis} kernel is {eff}'
                    + (f" (dilation {d}·({k}−1)+1)" if d > 1 else "")
                    + f": use kernel_size {k + 1} or {k - 1}, or give {name} as a number"
                )
            pads.append((eff - 1) // 2)
        return (pads[0], pads[1])
    return padding
