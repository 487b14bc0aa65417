"""The ``.py`` export of blocks made of blocks (SPEC §9): one ``nn.Module`` class per
user block, instantiated with its arguments, e.g.::

    class ConvReLU(nn.Module):
        def __init__(self, in_channels: int, width: int = 64) -> None:
            super().__init__()
            self.conv = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)
            self.relu = nn.ReLU(inplace=True)
        ...

    self.stage1 = Stage2(3, width=64)

The class body is worked out by analysing the block's body with arguments and input
channel counts that remember their names (:func:`~engine.export.constructors.named`),
so each constructor call is written in terms of them. A value the class cannot write
by name (a float, a bool, a product such as a flattened size) is written as it is; when
that makes two instances need different code, the second gets a class of its own
(``Stage2_2``): the file is always exact, and reads like hand-written code when it can.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from ..analysis import NodeInfo
from ..compile import _build, module_names, node_recipe
from ..graph import Graph
from ..spec import Functional, Recipe
from ..user_blocks import UserBlock, UserState, body_infos, user_state
from .constructors import Source, is_named, named, recipe_call

_HINTS = {"int": "int", "float": "float", "bool": "bool", "choice": "str",
          "int2": "tuple[int, int]"}


@dataclass
class _Class:
    name: str
    channels: list[tuple[str, int]]  # constructor parameters for input sizes: (name, port)
    block: UserBlock


@dataclass
class UserClasses:
    """The classes a design's instances need, in the order they must be defined."""

    graph: Graph
    taken: set[str]
    state: UserState
    sources: list[str] = field(default_factory=list)
    recipes: list[Recipe] = field(default_factory=list)  # every recipe the classes use
    _by_key: dict[tuple, _Class] = field(default_factory=dict)
    _by_text: dict[tuple[str, str], _Class] = field(default_factory=dict)
    _bases: dict[str, str] = field(default_factory=dict)  # block → its first class's name

    def call(self, info: NodeInfo, in_infos: list[NodeInfo]) -> tuple[str, list[str]]:
        """The constructor call of a top-level instance: callee and arguments."""
        cls = self.class_for(self.graph.blocks[info.type], info.resolved, in_infos)
        return _call(cls, info.resolved, [i.output_shape for i in in_infos])

    def class_for(self, block: UserBlock, args: Any, in_infos: list[NodeInfo]) -> _Class:
        key = (block.name, tuple(args.items()), tuple(i.output_shape for i in in_infos))
        if key in self._by_key:
            return self._by_key[key]
        channels = _channel_names(block, in_infos)
        tagged_args = {k: named(v, k) for k, v in args.items()}
        tagged_ins = tuple(
            replace(i, output_shape=(named(i.output_shape[0], channels[p]),
                                     *i.output_shape[1:]))
            for p, i in enumerate(in_infos))
        inner_t = body_infos(block, tagged_args, tagged_ins, self.state)
        inner = body_infos(block, args, tuple(in_infos), self.state)
        body = block.body
        names = module_names(inner)
        lines = []
        for m, info_t in inner_t.items():
            if info_t.type in ("Input", "Output"):
                continue
            sources = [s for _, s in body.inputs_of(m)]
            shapes_t = [inner_t[s].output_shape for s in sources]
            if info_t.inner is not None:
                child = self.class_for(body.blocks[info_t.type], inner[m].resolved,
                                       [inner[s] for s in sources])
                callee, call_args = _call(child, info_t.resolved, shapes_t)
            else:
                made = node_recipe(body, m, info_t, shapes_t)
                if isinstance(made, Functional):
                    continue
                made = _same_padding_by_name(info_t, made)
                self.recipes.append(made)
                callee, call_args = recipe_call(made)
            lines.append(_assignment(f"self.{names[m]}", callee, call_args))
        with torch.device("meta"):
            module, *_ = _build(body, inner, list(inner), block.name)
        from .pytorch import _forward_source

        forward = _forward_source(module)
        used = [(c, p) for p, c in enumerate(channels)
                if any(re.search(rf"\b{c}\b", line) for line in lines)]
        text = _class_text(block, used, lines, forward)
        cls = self._by_text.get((block.name, text))
        if cls is None:
            name = self._free_name(block.name)
            cls = _Class(name, used, block)
            self._by_text[(block.name, text)] = cls
            self.sources.append(text.replace("class @NAME@(", f"class {name}(", 1))
        self._by_key[key] = cls
        return cls

    def _free_name(self, base: str) -> str:
        """The block's name for its first class (``…Block`` if the file needs that name
        otherwise), then ``Name_2``, ``Name_3`` for variants."""
        first = self._bases.get(base)
        if first is None:
            name = base if base not in self.taken else f"{base}Block"
            while name in self.taken:
                name += "_"
            self._bases[base] = name
        else:
            i = 2
            while f"{first}_{i}" in self.taken:
                i += 1
            name = f"{first}_{i}"
        self.taken.add(name)
        return name


def _same_padding_by_name(info: NodeInfo, made: Recipe) -> Recipe:
    """``padding=(k[0] // 2, k[1] // 2)`` for a Conv2d with padding "same" whose kernel
    is an argument ``k``, rather than one class per kernel size."""
    p = info.resolved
    if (info.type != "Conv2d" or p.get("padding") != "same" or not is_named(p["kernel_size"])
            or is_named(p["dilation"]) or tuple(p["dilation"]) != (1, 1)):
        return made
    pad = tuple(Source(f"{k!r} // 2") if is_named(k) else (k - 1) // 2
                for k in p["kernel_size"])
    return made.with_kwargs(padding=pad)


def user_classes(graph: Graph, taken: set[str]) -> UserClasses:
    return UserClasses(graph, set(taken), user_state(graph))


def _channel_names(block: UserBlock, in_infos: list[NodeInfo]) -> list[str]:
    """``in_channels`` (``in_features`` for a vector), or ``<input id>_channels`` for a
    block of several inputs, never one of the block's own argument names."""
    out = []
    for n, info in zip(block.input_ids, in_infos, strict=True):
        what = "channels" if len(info.output_shape) == 3 else "features"
        name = f"in_{what}" if len(in_infos) == 1 else f"{n}_{what}"
        while name in block.declarations or name in out:
            name += "_"
        out.append(name)
    return out


def _call(cls: _Class, args: Any, shapes: list) -> tuple[str, list[str]]:
    """``Stage2(3, width=64)``: input sizes first, then the arguments not at their
    default (or written by name)."""
    out = [repr(shapes[p][0]) for _, p in cls.channels]
    for ps in cls.block.spec.params:
        v = args[ps.name]
        default = ps.normalize(ps.default)
        if not is_named(v) and isinstance(v, bool) == isinstance(default, bool) \
                and v == default:
            continue
        out.append(f"{ps.name}={v!r}")  # a pair stays a pair: the class indexes it
    return cls.name, out


def _class_text(block: UserBlock, channels: list[tuple[str, int]], lines: list[str],
                forward: str) -> str:
    params = [f"{c}: int" for c, _ in channels]
    for ps in block.spec.params:
        default = ps.normalize(ps.default)
        params.append(f"{ps.name}: {_HINTS[ps.kind]} = {default!r}")
    signature = f"def __init__(self, {', '.join(params)}) -> None:"
    if len(signature) + 4 > 100:
        inner = "".join(f"\n        {p}," for p in params)
        signature = f"def __init__(\n        self,{inner}\n    ) -> None:"
    doc = " ".join((block.doc or f"The block {block.name} of this design.").split())
    doc = re.sub(r'["\\]', " ", doc)
    doc = textwrap.fill(doc, 88, subsequent_indent=" " * 4)
    init = "\n".join(["super().__init__()", *lines])
    return (f"class @NAME@(nn.Module):\n"
            f'    """{doc}"""\n\n'
            f"    {signature}\n{textwrap.indent(init, ' ' * 8)}\n\n"
            f"{textwrap.indent(forward, ' ' * 4)}")


def _assignment(target: str, callee: str, args: list[str]) -> str:
    from .pytorch import _assignment as assign

    return assign(target, callee, args)
