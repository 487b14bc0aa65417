"""An export in a child process, for the application.

The dynamo ONNX exporter spends seconds in Python (a VGG-16 takes tens), which in the
GUI's process would hold the interpreter lock the event loop needs, and it writes to
the process's stdout/stderr, which ``export_onnx`` has to redirect while it runs. In a
child process neither touches the editor. The child runs the same
:func:`~engine.export.design.export_design` as the command line, and the answer comes
back as plain data: ``(True, ExportResult)`` or ``(False, the error message)``. The
child loads the plug-in blocks from the folders the parent loaded them from, so a
design that uses one exports as it analyses.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import Future, ProcessPoolExecutor

from ..graph import Graph
from ..plugins import loaded_folders
from .design import Weights


def start_export(graph: Graph, path: str | os.PathLike, format: str,
                 weights: Weights = None, if_unfit: str = "refuse") -> Future:
    """Export ``graph`` (as it is now) to ``path`` in a spawned child, with the arguments
    of ``export_design``; the Future gives ``(ok, ExportResult or message)``, or raises
    BrokenProcessPool if the child died. Pass a checkpoint's path rather than its
    ``state_dict`` where there is one: the child reads it instead of receiving a copy."""
    if weights is not None and not isinstance(weights, str | os.PathLike):
        weights = dict(weights)
    elif weights is not None:
        weights = os.fspath(weights)
    pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
    future = pool.submit(_export, graph.dumps(), os.fspath(path), format, weights, if_unfit,
                         loaded_folders())
    pool.shutdown(wait=False)  # the child exits once this one job is done
    return future


def _export(graph_text: str, path: str, format: str, weights: Weights, if_unfit: str,
            plugin_folders: list[str] | None) -> tuple[bool, object]:
    from ..errors import GraphError
    from ..plugins import load_plugins
    from .design import export_design
    from .errors import ExportError

    if plugin_folders is not None:  # the parent's plug-in blocks, reported there
        load_plugins(plugin_folders)
    try:
        graph = Graph.loads(graph_text)
        return True, export_design(graph, path, format, weights, if_unfit=if_unfit)
    except (GraphError, ExportError) as exc:
        return False, str(exc)
