"""The block catalogue: every block type Convas knows, each defined once.

Importing this package never imports torch; recipes name their classes, which are
imported only when a module is built.

Adding a built-in block touches one module here plus its test cases:

1. In the family's module (``conv.py``, ``pool.py``, …, or a new one listed in the loop
   below), add a :class:`~engine.spec.BlockSpec` to ``BLOCKS`` with

   - ``type`` (the stable name files use), ``category`` (its palette group) and a
     one-line ``doc``; ``params``: one :class:`~engine.spec.ParamSpec` each, with its
     kind, default, range and a doc (the inspector and file validation read them);
   - ``infer(params, input_shapes) -> shape``, raising ``BlockError("what is wrong:
     what to do")`` when the inputs do not fit;
   - ``id_prefix`` (``"conv"`` gives conv1, conv2…; or a function of the params) and
     ``subtitle(params) -> str``, the key parameters shown on the canvas block;
   - ``recipe(params, input_shapes)``: a :class:`~engine.spec.Recipe` naming the class
     (``"nn.Conv2d"``, or a class of ``torch_modules.py`` for a composite) and its
     arguments, or a :class:`~engine.spec.Functional` for a plain function call. The
     compiler builds it and the ``.py`` export writes the same call as source, so a
     class of ``torch_modules.py`` must need nothing but torch;
   - ``count_params`` and ``count_macs`` (the tests compare them with the real module),
     ``rf_steps`` when it changes the receptive field, ``saved_activations`` when
     backward keeps more than its output (the memory estimate);
   - ``backward_keeps_output=False`` when backward does not need its output (so a
     following ReLU may run in place), ``inplace_when`` when it may run in place itself,
     and ``min_inputs``/``max_inputs`` (``None``: any number, the canvas grows a slot).

2. Add a hypothesis strategy for it to ``CASES`` in ``tests/engine/test_catalogue.py``
   (shape, parameters and MACs against the real module; whatever the block lacks fails
   there), a case to ``BLOCK_CASES`` in ``tests/engine/test_memory.py`` (what backward
   keeps) and a node to the block zoo of ``tests/engine/test_export.py`` (ONNX and
   ``.py``); each of those files fails for a block it does not cover.

Blocks written in Python outside Convas (plug-ins) are added by ``engine.plugins``.
"""

from __future__ import annotations

from ..spec import BlockSpec
from . import activation, composite, conv, io, linear, merge, norm, pool, reshape

CATALOGUE: dict[str, BlockSpec] = {}


def register(spec: BlockSpec) -> BlockSpec:
    """Add a block type under its stable name; a second block of the same name is refused."""
    if spec.type in CATALOGUE:
        raise ValueError(f"block type {spec.type!r} is registered twice")
    CATALOGUE[spec.type] = spec
    return spec


for _family in (io, conv, pool, activation, norm, reshape, linear, merge, composite):
    for _spec in _family.BLOCKS:
        register(_spec)

def unregister(type_name: str) -> None:
    """Remove a plug-in block (when plug-ins are loaded again); built-ins stay."""
    spec = CATALOGUE.get(type_name)
    if spec is not None and spec.source != "built-in":
        del CATALOGUE[type_name]


CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(s.category for s in CATALOGUE.values()))


def get_block(type_name: str) -> BlockSpec:
    """The spec of ``type_name``; KeyError names the known types so the message can help."""
    try:
        return CATALOGUE[type_name]
    except KeyError:
        raise KeyError(
            f"unknown block type {type_name!r}; known types: {', '.join(CATALOGUE)}"
        ) from None


__all__ = ["CATALOGUE", "CATEGORIES", "get_block", "register", "unregister"]
