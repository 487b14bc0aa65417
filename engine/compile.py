"""Compile a graph into a real ``torch.fx.GraphModule``.

The module is built node by node from the analysis (not traced), so its generated
``forward`` reads like hand-written code: one line per block, submodules named after
the node ids, e.g. ``c1 = self.c1(input_1)``. Nodes that do not lead to the Output
are left out, as the analysis warns. Frozen nodes (SPEC §8) come out frozen: see
:func:`freeze`.
"""

from __future__ import annotations

import functools
import keyword
import re
from collections.abc import Iterable, Mapping

import networkx as nx
from torch import fx, nn

from .analysis import NodeInfo, Report, analyze, runs_inplace
from .errors import GraphError
from .graph import Graph
from .spec import Functional, Recipe, Shape

# Names a node id cannot take in the module or its generated code: attributes a
# GraphModule already has (``training``, ``forward``, ``to``), Python keywords, ``self``,
# and the modules the generated code refers to (``torch``).
_RESERVED = (frozenset(dir(fx.GraphModule)) | frozenset(vars(nn.Module()))
             | {"graph", "code", "meta", "self", "torch", "operator"}
             | frozenset(keyword.kwlist))


def module_names(node_ids: Iterable[str]) -> dict[str, str]:
    """Submodule (and state_dict prefix) name of every node: the id, or the id plus
    underscores where the id is reserved, never colliding with another node's id."""
    ids = list(node_ids)
    taken = set(ids)
    names: dict[str, str] = {}
    for n in ids:
        name = n
        while name in _RESERVED or (name != n and name in taken):
            name += "_"
        taken.add(name)
        names[n] = name
    return names


def class_name_for(graph_name: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", graph_name)
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Network"
    return name if name[0].isalpha() else "Net" + name


def compile_graph(graph: Graph, report: Report | None = None) -> fx.GraphModule:
    """The network as a torch module; raises :class:`GraphError` listing every node error."""
    report = report if report is not None else analyze(graph)
    if report.errors:
        raise GraphError(report.errors)
    used = nx.ancestors(graph.nx, report.output_id) | {report.output_id}
    # (_build has set meta["convas_nodes"]: node id → fx node name, for feature-map taps)
    module, recipes, names = _build(graph, report.nodes, used, class_name_for(graph.name))
    # submodule name → the Recipe it was built from, which the .py export writes out
    module.meta["convas_recipes"] = recipes
    # node id → submodule name (its state_dict prefix), for the nodes that have one
    module.meta["convas_modules"] = {
        n: names[n] for n in report.nodes
        if names[n] in recipes or (n in used and report.nodes[n].inner is not None)}
    return module


def _build(graph: Graph, infos: Mapping[str, NodeInfo], used: set[str] | list[str],
           class_name: str) -> tuple[fx.GraphModule, dict[str, Recipe], dict[str, str]]:
    """The GraphModule of a graph (or of an instance's body, with its inner infos):
    one submodule per node with weights, named after its id; an instance of a block made
    of blocks (SPEC §9) becomes a GraphModule of its body, so its state_dict keys read
    ``instance.inner_id.weight``."""
    names = module_names(infos)
    root = nn.Module()
    fxg = fx.Graph()
    values: dict[str, fx.Node] = {}
    recipes: dict[str, Recipe] = {}
    for n, info in infos.items():
        if n not in used:
            continue
        sources = [src for _, src in graph.inputs_of(n)]
        args = [values[s] for s in sources]
        if info.type == "Input":
            values[n] = fxg.create_node("placeholder", names[n], name=names[n])
            continue
        if info.type == "Output":
            fxg.output(args[0])
            continue
        if info.inner is not None:
            block = graph.blocks[info.type]
            sub, *_ = _build(block.body, info.inner, list(info.inner), info.type)
            root.add_module(names[n], sub)
            values[n] = fxg.create_node("call_module", names[n], tuple(args), name=names[n])
            continue
        shapes = [infos[s].output_shape for s in sources]
        made = node_recipe(graph, n, info, shapes)
        if isinstance(made, Functional):
            call_args = ((args,) if made.list_input else tuple(args)) + made.args
            values[n] = fxg.create_node("call_function", made.fn, call_args, name=names[n])
        else:
            recipes[names[n]] = made
            root.add_module(names[n], made.build())
            values[n] = fxg.create_node("call_module", names[n], tuple(args), name=names[n])
    fxg.lint()
    module = fx.GraphModule(root, fxg, class_name=class_name)
    # node id → fx node name (fx renames e.g. "input" to "input_1"), in an instance's
    # body too: the probe taps ``instance/inner`` paths (feature maps of a body's blocks
    # while it is open)
    module.meta["convas_nodes"] = {n: v.name for n, v in values.items()}
    for n in graph.frozen_nodes():
        if n in used and n in infos and (names[n] in recipes or infos[n].inner is not None):
            freeze(module.get_submodule(names[n]))
    return module, recipes, names


def freeze(module: nn.Module) -> None:
    """Make ``module`` untrainable, as a frozen node is: no gradient for any of its
    parameters (so no optimizer, weight decay or momentum can move them), and every
    BatchNorm in it kept in eval mode even when the model around it is put in train
    mode, so it normalises with its stored statistics and never updates them.

    The BatchNorms ignore ``train()`` themselves (rather than the trainer putting them
    back after each ``model.train()``), so no caller can forget: the trainer, the
    feature-map probe that restores the mode it found, a wrapper such as DDP.
    """
    module.requires_grad_(False)
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            # a partial, not a bound method: the module still pickles and deep-copies
            sub.train = functools.partial(_stay_in_eval, sub)
            sub.eval()


def _stay_in_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    """``train`` of a frozen BatchNorm: whatever is asked, stay in eval mode."""
    return nn.Module.train(self, False)


def node_recipe(graph: Graph, node_id: str, info: NodeInfo,
                shapes: list[Shape]) -> Recipe | Functional:
    """The catalogue's recipe for one analysed node, built in place where the analysis
    says it may run so (``runs_inplace``)."""
    made = graph.spec(info.type).recipe(info.resolved, shapes)
    if isinstance(made, Recipe) and runs_inplace(graph, node_id, info):
        made = made.with_kwargs(inplace=True)
    return made
