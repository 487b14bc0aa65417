"""``import_python``: a PyTorch model, named by a function that returns it, as a design.

``path/to/file.py:build`` or ``package.module:build`` is called, its ``nn.Module`` is
traced with ``torch.fx`` and every traced call is mapped onto a block: a module by its
class and attributes, a function (``torch.flatten``, ``F.relu``, ``+``) by what it
computes. Shapes come from running the traced module once on a random input of the
given size (``ShapeProp``), which also tells a flatten from any other reshape.

Submodules whose weights are laid out exactly as a composite block's (torchvision's
``BasicBlock``/``Bottleneck`` as a ResidualBlock, a ``_DenseBlock`` as a DenseBlock,
Convas' own ``.py`` export) become that block, but only after the block, loaded with
the submodule's weights, is shown to compute what the submodule computes on the
traced input; otherwise the submodule is traced through as primitives.
"""

from __future__ import annotations

import importlib
import importlib.util
import operator
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .builder import DesignBuilder, Imported, ImportModelError, NeedsInputShape, UnsupportedModel
from .composites import composite_for, same_output
from .fx_ops import FUNCTIONS, METHODS, MODULES, Plan, module_weights

Shape3 = tuple[int, int, int]


def import_python(ref: str, input_shape: Shape3 | None = None) -> Imported:
    """Trace ``ref``'s model at ``input_shape`` ``(C, H, W)`` (required: a Python model
    does not fix its input size) and map it onto blocks."""
    if input_shape is None:
        raise NeedsInputShape(
            f"{ref}: a PyTorch model does not say what input size it takes: give the size "
            f"to import it at with --input-shape C,H,W (e.g. 3,224,224)")
    model = _build(ref)
    example = torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(0))
    gm, leaves = _trace(model, example, ref)
    b = DesignBuilder(ref.rpartition(":")[2], ref)
    _convert(gm, leaves, b, input_shape)
    return b.finish()


def load_model(ref: str) -> nn.Module:
    """The module ``ref``'s function returns (in eval mode)."""
    return _build(ref)


def _build(ref: str) -> nn.Module:
    head, _, name = ref.rpartition(":")
    try:
        if head.endswith(".py"):
            path = Path(head)
            if not path.is_file():
                raise ImportModelError(f"{head}: no such file")
            spec = importlib.util.spec_from_file_location(f"_convas_import_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[spec.name] = module  # type: ignore[union-attr]
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(head)
        fn = getattr(module, name, None)
        if not callable(fn):
            raise ImportModelError(f"{ref}: {head} has no function {name!r}; name a function "
                                   f"that returns an nn.Module, e.g. build_model")
        model = fn()
    except ImportModelError:
        raise
    except Exception as exc:  # the user's code may raise anything
        raise ImportModelError(f"{ref}: running it failed ({type(exc).__name__}: "
                               f"{str(exc).strip()[:200]}); fix the code and try again"
                               ) from None
    if not isinstance(model, nn.Module):
        raise ImportModelError(f"{ref} returned {type(model).__name__}, not an nn.Module: "
                               f"name a function that builds and returns the model")
    return model.eval()


class _Tracer(fx.Tracer):
    def __init__(self, leaves: set[str]) -> None:
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname in self.leaves or super().is_leaf_module(m, qualname)


def _trace(model: nn.Module, example: torch.Tensor,
           ref: str) -> tuple[fx.GraphModule, dict[str, tuple[str, dict, nn.Module]]]:
    """The traced module, with every proven composite as a leaf (``{path: (type,
    params, built block)}``)."""
    candidates = {}
    for path, m in model.named_modules():
        if path and type(m).__module__.split(".")[0] != "torch":
            found = composite_for(m)
            if found is not None:
                candidates[path] = found
    while True:
        try:
            graph = _Tracer(set(candidates)).trace(model)
            gm = fx.GraphModule(model, graph, class_name=type(model).__name__)
            with torch.no_grad():
                ShapeProp(gm).propagate(example)
        except ImportModelError:
            raise
        except Exception as exc:  # fx and the model's code may raise anything
            raise ImportModelError(
                f"{ref}: torch.fx cannot trace this model ({type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}); "
                f"export it to ONNX with torch.onnx.export and import that file instead"
            ) from None
        wrong = [n.target for n in gm.graph.nodes if n.op == "call_module"
                 and n.target in candidates
                 and not same_output(gm.get_submodule(n.target), candidates[n.target][2],
                                     n.args[0].meta["tensor_meta"].shape)]
        if not wrong:
            used = {n.target for n in gm.graph.nodes if n.op == "call_module"}
            return gm, {k: v for k, v in candidates.items() if k in used}
        for path in wrong:
            del candidates[path]


def _shape(node: Any) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _scope(node: fx.Node) -> str | None:
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack")
    if stack:
        return list(stack.values())[-1][0]
    return None


def _data_nodes(gm: fx.GraphModule) -> list[fx.Node]:
    """The nodes the output depends on through tensors (not ``x.size(0)`` arguments)."""
    output = next(n for n in gm.graph.nodes if n.op == "output")
    needed: set[fx.Node] = set()
    stack = list(output.all_input_nodes)
    while stack:
        node = stack.pop()
        if node in needed:
            continue
        needed.add(node)
        if (node.op == "call_method" and node.target in ("view", "reshape")) or \
                (node.op == "call_function" and node.target is torch.reshape):
            stack.append(node.args[0])
        else:
            stack += node.all_input_nodes
    return [n for n in gm.graph.nodes if n in needed]


def _describe(gm: fx.GraphModule, node: fx.Node) -> str:
    if node.op == "call_module":
        cls = type(gm.get_submodule(node.target))
        return (f"nn.{cls.__name__}" if cls.__module__.startswith("torch.nn")
                else cls.__name__)
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "get_attr":
        return "a tensor attribute"
    target = node.target
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", str(target))
    prefix = "operator." if module == "_operator" else ("torch." if "torch" in module else "")
    return prefix + name


def _convert(gm: fx.GraphModule, leaves: dict, b: DesignBuilder, input_shape: Shape3) -> None:
    nodes = _data_nodes(gm)
    plans: dict[fx.Node, Plan] = {}
    unknown: Counter = Counter()
    example: dict[str, str] = {}
    for node in nodes:
        if node.op == "placeholder":
            continue
        plan = _plan(gm, node, leaves)
        if plan is None:
            what = _describe(gm, node)
            unknown[what] += 1
            example.setdefault(what, str(node.target) if node.op == "call_module"
                               else node.name)
        else:
            plans[node] = plan
    values: dict[fx.Node, str] = {}
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise UnsupportedModel(reasons=[f"the model's forward takes {len(placeholders)} "
                                        f"tensors; the importer maps models of one image"])
    c, h, w = input_shape
    for node in placeholders:
        values[node] = b.add(node.name, "Input", {"channels": c, "height": h, "width": w}, [])
    for node, plan in plans.items():
        inputs = plan_inputs(node)
        result = plan(node, [_shape(a) for a in inputs])
        if isinstance(result, str):  # refused: the reason
            b.refuse(f"{_describe(gm, node)} {node.name!r}: {result}")
            continue
        if result is None:  # passes its input on
            src = values.get(inputs[0])
            if src is not None:
                values[node] = src
            b.drop(_describe(gm, node))
            continue
        type_name, params, weights = result
        srcs = [values.get(a) for a in inputs]
        if None in srcs:
            continue
        values[node] = b.add(_scope(node), type_name, params, srcs, weights)
    output = next(n for n in gm.graph.nodes if n.op == "output")
    result = output.args[0]
    if not isinstance(result, fx.Node):
        raise UnsupportedModel(reasons=["the model returns several tensors (a tuple or dict); "
                                        "a Convas design has one Output"])
    if unknown or b.reasons:
        raise UnsupportedModel(operators=[(op, c, example[op]) for op, c in
                                          unknown.most_common()], reasons=b.reasons)
    if result not in values:
        raise ImportModelError("the model's output is not computed from its input")
    out_shape = _shape(result)
    task = {"task": "segmentation"} if out_shape is not None and len(out_shape) == 4 \
        and tuple(out_shape[2:]) == (h, w) else {}
    b.add("output", "Output", task, [values[result]])
    for op, count in sorted(b.dropped.items()):
        b.notes.append(f"dropped {count} × {op} (nothing at inference)")
    composites = Counter(t for t, _, _ in leaves.values())
    for t, count in sorted(composites.items()):
        b.notes.append(f"{count} submodules recognised as {t} blocks (checked to compute "
                       f"the same as the submodule)")


def plan_inputs(node: fx.Node) -> list[fx.Node]:
    """The tensors a node combines, in port order (``torch.cat``'s list flattened)."""
    if node.op == "call_function" and node.target in (torch.cat, torch.concat):
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        return list(tensors)
    first = node.args[0] if node.args else None
    if node.op == "call_method" and node.target in ("view", "reshape", "flatten", "mean"):
        return [first]
    if node.op == "call_function" and node.target in (operator.add, operator.iadd, torch.add):
        return [a for a in node.args if isinstance(a, fx.Node)]
    return node.all_input_nodes[:1] if node.op == "call_module" else \
        [a for a in node.args if isinstance(a, fx.Node)][:1]


def _plan(gm: fx.GraphModule, node: fx.Node, leaves: dict) -> Plan | None:
    """The function that maps this node, or None when nothing can."""
    if node.op == "call_module":
        if node.target in leaves:
            type_name, params, _ = leaves[node.target]
            sub = gm.get_submodule(node.target)

            def composite(node: fx.Node, shapes: list) -> tuple:
                return type_name, dict(params), module_weights(sub)

            return composite
        m = gm.get_submodule(node.target)
        fn = MODULES.get(type(m))
        if fn is None:
            return None
        return lambda node, shapes, m=m, fn=fn: fn(m, shapes, _shape(node))
    table = {"call_function": FUNCTIONS, "call_method": METHODS}.get(node.op)
    fn = table.get(node.target) if table is not None else None
    if fn is None:
        return None
    return lambda node, shapes, fn=fn: fn(node, shapes, _shape(node))

