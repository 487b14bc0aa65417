"""Torch-free description of blocks and their parameters.

The palette, inspector, canvas, file validation, analysis, compiler and ``.py`` export
all read these specs, so a block is described exactly once. Nothing here imports torch
or Qt: the GUI imports this module to build its forms.
"""

from __future__ import annotations

import math
import re
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

    ``kind`` is one of ``int``, ``float``, ``bool``, ``int2`` (an int or ``[h, w]``),
    ``choice`` (one of ``choices``) and ``anchors`` (a list of ``[w, h]`` pairs of
    positive numbers, a detection Output's anchor sizes). ``words`` lists strings an ``int2`` also
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
            # a named value of the .py export (SPEC §9 classes) stays the very object
            named = hasattr(value, "source") and isinstance(value, float)
            return self._check_range(value if named else float(value))
        if self.kind == "anchors":
            return _anchors(value)
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
        if self.kind == "anchors":
            return "a list of [w, h] pairs in input pixels, e.g. [[8, 8], [16, 16]]"
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


def _anchors(value: Any) -> tuple[tuple[float, float], ...]:
    """Anchor sizes as a tuple of (w, h) floats: at least one, each positive and finite."""
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{value!r} is not a list of [w, h] pairs")
    pairs = []
    for pair in value:
        if (not isinstance(pair, list | tuple) or len(pair) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool)
                           for v in pair)):
            raise ValueError(f"{pair!r} is not a [w, h] pair")
        if not all(math.isfinite(v) and v > 0 for v in pair):
            raise ValueError(f"the anchor {list(pair)} must have a positive width and height")
        pairs.append((float(pair[0]), float(pair[1])))
    return tuple(pairs)


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


def no_subtitle(p: Params) -> str:
    """For blocks whose parameters say nothing worth a line on the canvas."""
    return ""


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Recipe:
    """How to build a block's module: ``target(*args, **kwargs)``.

    ``target`` is ``"nn.Name"`` (a ``torch.nn`` class), the bare name of a class in
    ``engine/blocks/torch_modules.py``, or a plug-in's function. The compiler calls it;
    the ``.py`` export writes the same call as source (``nn.Conv2d(3, 16,
    kernel_size=3, padding=1)``), leaving out keyword arguments at the callee's default,
    so both always agree. ``args`` are always written; ``kwargs`` only when they differ
    from the default.
    """

    target: str | Callable[..., Any]
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def with_kwargs(self, **kwargs: Any) -> Recipe:
        return Recipe(self.target, self.args, {**self.kwargs, **kwargs})

    @property
    def name(self) -> str:
        """What the ``.py`` file calls: ``nn.Conv2d``, ``BasicResidual``, ``GroupNorm``."""
        return self.target if isinstance(self.target, str) else self.target.__name__

    def resolve(self) -> Callable[..., Any]:
        """The callable itself (imports torch)."""
        if callable(self.target):
            return self.target
        if self.target.startswith("nn."):
            from torch import nn

            return getattr(nn, self.target[3:])
        from .blocks import torch_modules

        return getattr(torch_modules, self.target)

    def build(self) -> Any:
        return self.resolve()(*self.args, **self.kwargs)


@dataclass(frozen=True)
class BlockSpec:
    """Everything Convas knows about one block type; see ``engine/blocks/__init__.py``
    for what each field is for and how to add a block.

    ``infer`` maps resolved params and input shapes to the output shape, raising
    :class:`BlockError` with a fix when they do not fit. ``recipe`` says how to build
    the module (a :class:`Recipe`, or a :class:`Functional` for a plain function call);
    it imports nothing, so reading the catalogue never loads torch.
    """

    type: str
    category: str
    doc: str
    params: tuple[ParamSpec, ...]
    infer: Callable[[Params, list[Shape]], Shape]
    id_prefix: str | Callable[[Params], str]  # new ids: conv1, conv2…; a function of params
    subtitle: Callable[[Params], str]  # the key parameters on the canvas, e.g. "64 · 3×3 · s2"
    recipe: Callable[[Params, list[Shape]], Recipe | Functional] | None = None
    count_params: Callable[[Params, list[Shape]], int] = _default_params
    count_macs: Callable[[Params, list[Shape], Shape], int] = _default_macs
    rf_steps: Callable[[Params, list[Shape]], list[RFStep]] = _identity_rf
    saved_activations: Callable[[Params, list[Shape], Shape], int] = _saved_is_output
    # False when backward does not need this block's output (a convolution keeps its
    # input), so an activation right after it may overwrite it: see analysis.runs_inplace.
    backward_keeps_output: bool = True
    inplace_when: Callable[[Params], bool] | None = None  # may this block run in place?
    min_inputs: int = 1
    max_inputs: int | None = 1  # None: any number, the canvas shows one free slot more
    source: str = "built-in"  # or the plug-in file that defined it
    param_index: dict[str, ParamSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    @property
    def grows(self) -> bool:
        """Takes any number of inputs (Add, Concat): the canvas offers a free slot."""
        return self.max_inputs is None

    def prefix(self, params: Params | None = None) -> str:
        """The start of a new node id of this type (``conv``, ``relu``), a valid name."""
        prefix = self.id_prefix
        if callable(prefix):
            try:
                prefix = prefix({**self.defaults(), **(params or {})})
            except (KeyError, TypeError, ValueError, AttributeError):
                prefix = ""
        if isinstance(prefix, str) and _IDENTIFIER.match(prefix):
            return prefix
        return re.sub(r"\W", "_", self.type.lower()) or "node"

    def subtitle_text(self, params: Params | None) -> str:
        """``subtitle`` of params as the user may have left them (wrong types give "")."""
        if params is None:
            return ""
        try:
            return self.subtitle(params)
        except (KeyError, TypeError, IndexError, ValueError, AttributeError):
            return ""

    def build(self, p: Params, ins: list[Shape]) -> Any:
        """The torch module (or Functional) for resolved params and input shapes."""
        if self.recipe is None:
            raise ValueError(f"{self.type} has no module: it is handled by the compiler")
        made = self.recipe(p, ins)
        return made if isinstance(made, Functional) else made.build()

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


# ---- canvas subtitle helpers -----------------------------------------------------------


def pair_text(v: Any) -> str:
    """``3×3`` for 3 or (3, 3), ``1×5`` for (1, 5)."""
    if isinstance(v, list | tuple):
        return f"{v[0]}×{v[1]}"
    return f"{v}×{v}"


def stride_text(v: Any) -> str:
    """`` · s2`` for a stride other than 1, else nothing."""
    if v is None:
        return ""
    if isinstance(v, list | tuple) and v[0] == v[1]:
        v = v[0]
    if v == 1:
        return ""
    return f" · s{pair_text(v) if isinstance(v, list | tuple) else v}"
