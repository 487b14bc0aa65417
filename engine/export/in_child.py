"""ONNX export in a child process, for the application.

The dynamo exporter spends seconds in Python (a VGG-16 takes tens), which in the GUI's
process would hold the interpreter lock the event loop needs, and it writes to the
process's stdout/stderr, which ``export_onnx`` has to redirect while it runs. In a
child process neither touches the editor. The answer comes back as plain data:
(ok, the report's one-line description or the error message).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from ..graph import Graph


def start_onnx_export(graph: Graph, path: str | os.PathLike,
                      state_dict: dict[str, Any] | None = None) -> Future:
    """Export ``graph`` (as it is now) to ``path`` in a spawned child; the Future gives
    ``(ok, message)``, or raises BrokenProcessPool if the child died."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
    future = pool.submit(_export, graph.dumps(), graph.name, os.fspath(path), state_dict)
    pool.shutdown(wait=False)  # the child exits once this one job is done
    return future


def _export(graph_text: str, name: str, path: str,
            state_dict: dict[str, Any] | None) -> tuple[bool, str]:
    from ..errors import GraphError
    from .errors import ExportError
    from .onnx_export import export_onnx

    try:
        report = export_onnx(Graph.loads(graph_text, name), path, state_dict=state_dict)
    except (GraphError, ExportError) as exc:
        return False, str(exc)
    return True, report.describe()
