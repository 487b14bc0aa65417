"""The standalone ``.py`` export: one file that needs only torch (SPEC §4).

It defines an ``nn.Module`` subclass with one submodule per line, named as in the
compiled module so a Convas checkpoint's ``state_dict`` loads into it with
``strict=True``, and a ``build_model()`` function. The ``forward`` body is the code
torch.fx generates for the compiled module (``conv1 = self.conv1(input_1)``), which is
already plain torch. Each submodule is written from the Recipe it was compiled from;
the composite blocks' classes are copied from ``engine/blocks/torch_modules.py``, which
is written to need nothing but torch, and plug-in blocks' functions from their files,
without the ``@block`` decorator (see ``engine.plugins.source``).

A detector's file also carries the head's decoding and NMS as plain-torch functions
(``decode``, ``nms``, ``detect``) with its anchors, input size and class names as
module constants (engine.export.detection_source), so it finds boxes with torch alone.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import os
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import fx

from ..analysis import Report, analyze
from ..blocks import torch_modules
from ..compile import class_name_for, compile_graph, module_names
from ..graph import Graph
from ..plugins import PluginError
from ..plugins.source import carried_source
from .constructors import recipe_call
from .detection_source import DEFINED_NAMES as DETECTION_NAMES
from .detection_source import detection_source
from .errors import ExportError
from .files import write_text_atomic

# fx frees each value after its last use ("conv1 = None"); hand-written code does not,
# and the lines read far better without it.
_FREE_VALUES = re.compile(r";  [A-Za-z_]\w*(?: = [A-Za-z_]\w*)* = None$")
_TAKEN_NAMES = {"torch", "nn", "build_model"}
_LINE_LENGTH = 100


def export_pytorch(graph: Graph, path: str | os.PathLike,
                   classes: Sequence[str] | None = None) -> Path:
    """Write ``graph`` as a standalone PyTorch file; returns the path written.

    ``classes`` are a detector's class names (its ``CLASSES``). Raises
    :class:`engine.GraphError` for an invalid graph and :class:`ExportError` when the
    file cannot be written (nothing partial is left).
    """
    path = Path(path)
    write_text_atomic(path, pytorch_source(graph, classes))
    return path


def pytorch_source(graph: Graph, classes: Sequence[str] | None = None) -> str:
    """The ``.py`` file's text for ``graph`` (raises GraphError when it is invalid).

    A detector's file also defines ``decode``, ``nms`` and ``detect`` with its
    ``ANCHORS``, ``IMAGE_SIZE`` and ``CLASSES`` (``classes``, the checkpoint's names;
    None when not given). Other tasks ignore ``classes``."""
    report = analyze(graph)
    detection = _detection_part(report, classes)
    taken = _TAKEN_NAMES | (DETECTION_NAMES if detection else set())
    with torch.device("meta"):  # the structure without allocating or initialising weights
        module = compile_graph(graph, report)
    recipes = module.meta["convas_recipes"]
    calls = {name: recipe_call(r) for name, r in recipes.items()}
    used = list(recipes.values())
    users = ""
    if graph.blocks:  # one class per block made of blocks (SPEC §9)
        users, instance_calls, inner = _user_classes(graph, report, module, taken)
        calls.update(instance_calls)
        used += inner
    composites = _composite_source({r.target for r in used
                                    if isinstance(r.target, str) and "." not in r.target})
    plugin_imports, plugin_defs = _plugin_source([r.target for r in used
                                                  if callable(r.target)], composites,
                                                 taken)
    helpers = "\n\n\n".join(d for d in (composites, *plugin_defs, users) if d)
    class_name = _class_name(graph.name, helpers, taken)
    lines = [_assignment(f"self.{name}", *calls[name]) for name, _ in module.named_children()]
    init = "\n".join(["super().__init__()", *lines])
    forward = _forward_source(module)
    imports = ["from __future__ import annotations", ""]
    if "torch." in forward + helpers + detection:
        imports.append("import torch")
    imports.append("from torch import nn")
    imports += [line for line in plugin_imports if line not in imports]
    parts = [_header(graph, report, module, bool(detection)) + "\n\n" + "\n".join(imports)]
    if helpers:
        parts.append(helpers)
    parts.append(
        f"class {class_name}(nn.Module):\n"
        f'    """{_one_line(graph.name)}, as designed in Convas."""\n\n'
        f"    def __init__(self) -> None:\n{textwrap.indent(init, ' ' * 8)}\n\n"
        f"{textwrap.indent(forward, ' ' * 4)}"
    )
    parts.append(
        f"def build_model() -> {class_name}:\n"
        f'    """The network with fresh weights; load a state_dict for trained ones."""\n'
        f"    return {class_name}()"
    )
    if detection:
        parts.append(detection)
    return "\n\n\n".join(parts) + "\n"


def _detection_part(report: Report, classes: Sequence[str] | None) -> str:
    """The decoding constants and functions of a detector's file; "" for other tasks."""
    from ..dataset_fit import output_task
    from ..tasks import input_hw, output_anchors

    if output_task(report) != "detection":
        return ""
    return detection_source(output_anchors(report), input_hw(report) or (0, 0),
                            None if classes is None else list(classes))


def _user_classes(graph: Graph, report: Report, module: fx.GraphModule, taken: set[str]
                  ) -> tuple[str, dict[str, tuple[str, list[str]]], list]:
    """The classes of the blocks made of blocks, the call of each top-level instance by
    submodule name, and the recipes the classes use (for the helpers they need)."""
    from .user_classes import user_classes

    taken = taken | _defined(inspect.getsource(torch_modules)) | {
        class_name_for(graph.name)}
    classes = user_classes(graph, taken)
    calls = {}
    for n, name in module.meta["convas_modules"].items():
        info = report.nodes[n]
        if info.inner is not None:
            ins = [report.nodes[s] for _, s in graph.inputs_of(n)]
            calls[name] = classes.call(info, ins)
    return "\n\n\n".join(classes.sources), calls, classes.recipes


def _header(graph: Graph, report: Report, module: fx.GraphModule,
            detector: bool = False) -> str:
    names = module_names(report.nodes)
    used = {p.target for p in module.graph.nodes if p.op == "placeholder"}
    inputs = [n for n in report.input_ids if names[n] in used]
    shapes = ", ".join(f"{names[n]} [N, {', '.join(map(str, report.nodes[n].output_shape))}]"
                       for n in inputs)
    out = ", ".join(map(str, report.output_shape))
    count = sum(p.numel() for p in module.parameters())
    lines = [
        f'# Generated by Convas from the graph "{_one_line(graph.name)}".',
        f"# Input: {shapes}; output [N, {out}]; {count:,} parameters.",
        "# Needs only PyTorch. To load weights trained in Convas:",
        "#     model = build_model()",
        '#     checkpoint = torch.load("model.pt", weights_only=True)',
        '#     model.load_state_dict(checkpoint["state_dict"])',
    ]
    if detector:
        lines += [
            "# The output is the raw detection head; its boxes, best first, per image:",
            "#     boxes, scores, labels = detect(model.eval()(images))[0]",
            "# (x1, y1, x2, y2 in input pixels; CLASSES[label] names a label)",
        ]
    return "\n".join(lines)


def _assignment(target: str, callee: str, args: list[str], indent: int = 8) -> str:
    """``target = callee(args)``, wrapped as black would when it is too long."""
    line = f"{target} = {callee}({', '.join(args)})"
    if indent + len(line) <= _LINE_LENGTH:
        return line
    inner = " " * 4 + ", ".join(args)
    if indent + len(inner) > _LINE_LENGTH:
        inner = "\n".join(f"    {a}," for a in args)
    return f"{target} = {callee}(\n{inner}\n)"


def _forward_source(module: fx.GraphModule) -> str:
    code = module.graph.python_code(root_module="self")
    lines = [_FREE_VALUES.sub("", line).rstrip() for line in code.src.strip().splitlines()]
    source = "\n".join(lines)
    # Everything it calls must be torch or a builtin (sum), or the file would not run.
    tree = ast.parse(source)
    local = {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)} | {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    if "torch" in local and "torch." in source:
        raise ExportError("a node named 'torch' hides the torch module in forward(): rename "
                          "it; nothing was written")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in local and node.id != "torch":
            if code.globals.get(node.id, None) is not getattr(builtins, node.id, object()):
                raise ExportError(f"the .py export cannot write a call to {node.id} yet; "
                                  f"nothing was written")
    return source


def _composite_source(needed: set[str]) -> str:
    """Source of the composite classes named in ``needed`` and the helpers they use, in
    the order of torch_modules.py, without its imports."""
    source = inspect.getsource(torch_modules)
    tree = ast.parse(source)
    defs = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)}
    wanted = list(needed)
    keep: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in keep:
            continue
        keep.add(name)
        wanted += [n.id for n in ast.walk(defs[name]) if isinstance(n, ast.Name) and n.id in defs]
    return "\n\n\n".join(ast.get_source_segment(source, node) for name, node in defs.items()
                         if name in keep)


def _plugin_source(functions: list, composites: str, taken: set[str]
                   ) -> tuple[list[str], list[str]]:
    """Imports and definitions of the plug-in functions used, checked against the names
    the file defines itself."""
    if not functions:
        return [], []
    try:
        imports, defs = carried_source(functions)
    except PluginError as exc:
        raise ExportError(f"{exc}; nothing was written") from None
    taken = taken | _defined(composites)
    clash = sorted(taken & _defined("\n\n".join(defs)))
    if clash:
        raise ExportError(f"a plug-in file defines {', '.join(clash)}, a name the .py file "
                          f"needs for itself: rename it in the plug-in; nothing was written")
    return imports, defs


def _defined(source: str) -> set[str]:
    return set(re.findall(r"^(?:class|def) (\w+)", source, re.MULTILINE))


def _class_name(graph_name: str, helpers: str, taken: set[str]) -> str:
    name = class_name_for(graph_name)
    taken = taken | _defined(helpers)
    while name in taken:
        name += "Model"
    return name


def _one_line(text: str) -> str:
    """``text`` safe inside a comment or a docstring: one line, no quotes or backslashes."""
    return " ".join(re.sub(r'["\\\x00-\x1f\x7f]', " ", text).split()) or "Untitled"
