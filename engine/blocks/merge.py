"""Merges of several inputs: Add (residual connections) and Concat (dense/inception)."""

from __future__ import annotations

import operator

from ..errors import BlockError
from ..spec import BlockSpec, Functional, Params, Shape, fmt_shape, no_subtitle


def _add_fix(big: Shape, small: Shape) -> str:
    """How to make the larger input (usually the shortcut) match the smaller one."""
    if len(big) == 3 and len(small) == 3:
        (cb, hb, wb), (cs, hs, ws) = big, small
        if hb % hs == 0 and wb % ws == 0 and hb // hs == wb // ws:
            s = hb // hs
            stride = f" with stride {s}" if s > 1 else ""
            to = f" (out_channels {cs})" if cb != cs else ""
            return f"use a 1×1 Conv2d projection{stride} on the shortcut{to}"
        return "make the spatial sizes equal (the same strides and pooling on both paths)"
    if len(big) == 1 and len(small) == 1:
        return f"insert a Linear with out_features {small[0]} on the other input"
    return "give both inputs the same rank: Flatten or GlobalAvgPool the image input"


def add_shape(p: Params, ins: list[Shape]) -> Shape:
    first = ins[0]
    for other in ins[1:]:
        if other != first:
            big, small = first, other
            if len(big) < len(small) or (len(big) == len(small) == 3 and small[1] > big[1]):
                big, small = small, big
            raise BlockError(
                f"shapes {fmt_shape(big)} and {fmt_shape(small)} differ: {_add_fix(big, small)}"
            )
    return first


def add_recipe(p: Params, ins: list[Shape]) -> Functional:
    if len(ins) == 2:
        return Functional(operator.add)
    return Functional(sum, list_input=True)


def concat_shape(p: Params, ins: list[Shape]) -> Shape:
    ranks = {len(s) for s in ins}
    if ranks == {1}:
        return (sum(s[0] for s in ins),)
    if ranks != {3}:
        raise BlockError(
            "Concat needs all inputs as [C,H,W] (or all as vectors), got "
            + ", ".join(fmt_shape(s) for s in ins)
            + ": Flatten or GlobalAvgPool the image inputs, or move the Concat before them"
        )
    sizes = {s[1:] for s in ins}
    if len(sizes) > 1:
        listed = " and ".join(f"{h}×{w}" for h, w in sorted(sizes, reverse=True))
        raise BlockError(
            f"inputs have spatial sizes {listed}: Concat joins channels, so H×W must match; "
            f"pool or stride the larger input, or Upsample the smaller"
        )
    return (sum(s[0] for s in ins), *ins[0][1:])


def concat_recipe(p: Params, ins: list[Shape]) -> Functional:
    import torch

    return Functional(torch.cat, (1,), list_input=True)


BLOCKS = (
    BlockSpec(
        type="Add",
        category="Merge",
        doc="Element-wise sum of inputs of one shape: the skip connection of a ResNet.",
        params=(),
        infer=add_shape,
        id_prefix="add",
        subtitle=no_subtitle,
        recipe=add_recipe,
        backward_keeps_output=False,
        min_inputs=2,
        max_inputs=None,
    ),
    BlockSpec(
        type="Concat",
        category="Merge",
        doc="Stacks inputs along channels (in port order): the join of Inception and DenseNet.",
        params=(),
        infer=concat_shape,
        id_prefix="concat",
        subtitle=no_subtitle,
        recipe=concat_recipe,
        backward_keeps_output=False,
        min_inputs=2,
        max_inputs=None,
    ),
)
