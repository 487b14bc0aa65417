"""The node-graph canvas: a projection of a document it does not own.

`GraphCanvas` draws `NodeView`s and wires it is told about and emits intents
(connect, move, delete, drop …) for the document to act on. Modules:
model (plain data) · theme · node_item · edge_item · scene · grid · navigation ·
interactions (mouse modes) · keys · minimap · view.
"""

from .model import BLOCK_MIME, NodeView
from .view import GraphCanvas

__all__ = ["BLOCK_MIME", "GraphCanvas", "NodeView"]
