"""What the ONNX converters share: the model, its shapes and constants, the builder, and
the names the model gives its layers (which become node ids)."""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .builder import DesignBuilder


@dataclass
class Context:
    """What the converters share: the model, shapes, constants and the builder."""

    model: Any
    shapes: dict[str, tuple[int, ...] | None]
    opset: int
    initializers: dict[str, Any]
    builder: DesignBuilder
    values: dict[str, str] = field(default_factory=dict)  # ONNX value → Convas node id
    weight_users: dict[str, list[str]] = field(default_factory=dict)
    folded: list[str] = field(default_factory=list)  # Conv ids holding a folded BN
    unfolded: int = 0
    _constants: dict[str, np.ndarray | None] = field(default_factory=dict)
    _producers: dict[str, Any] | None = None
    _consumers: Counter | None = None

    # ---- values ----------------------------------------------------------------------

    def producer(self, value: str) -> Any:
        if self._producers is None:
            self._producers = {o: n for n in self.model.graph.node for o in n.output}
        return self._producers.get(value)

    def consumers(self, value: str) -> int:
        if self._consumers is None:
            self._consumers = Counter(i for n in self.model.graph.node for i in n.input)
            self._consumers.update(o.name for o in self.model.graph.output)
        return self._consumers[value]

    def constant(self, value: str) -> np.ndarray | None:
        """The value of an initializer, a Constant node or an Identity of either."""
        if value in self._constants:
            return self._constants[value]
        from onnx import numpy_helper

        result = None
        node = self.producer(value)
        if value in self.initializers:
            result = numpy_helper.to_array(self.initializers[value])
        elif node is not None and node.op_type == "Constant":
            result = _constant_node(node)
        elif node is not None and node.op_type == "Identity":
            result = self.constant(node.input[0])
        self._constants[value] = result
        return result

    def is_constant(self, value: str) -> bool:
        return self.constant(value) is not None

    def weight(self, node: Any, index: int, user: str) -> np.ndarray | None:
        """A constant input of ``node`` used as a block's weight (shared ones noted)."""
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        root = name
        while (p := self.producer(root)) is not None and p.op_type == "Identity":
            root = p.input[0]
        self.weight_users.setdefault(root, []).append(user)
        return self.constant(name)

    def source(self, node: Any, index: int = 0) -> str | None:
        """The block feeding input ``index`` of ``node``, or None (refused upstream)."""
        return self.values.get(node.input[index])

    def alias(self, value: str, of: str) -> None:
        if of in self.values:
            self.values[value] = self.values[of]

    def shape(self, value: str) -> tuple[int, ...] | None:
        return self.shapes.get(value)

    # ---- naming ----------------------------------------------------------------------

    def path(self, node: Any, weight: str | None = None) -> str | None:
        """The module path the model gives this node: from its weight's name
        (``layer1.0.conv1.weight``), the dynamo exporter's name scopes, or the legacy
        exporter's node name (``/layer1/layer1.0/conv1/Conv``)."""
        if weight and weight.endswith(".weight") and "::" not in weight:
            return weight[: -len(".weight")]
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = meta.get("pkg.torch.onnx.name_scopes")
        if scopes:
            try:
                entries = ast.literal_eval(scopes)
            except (ValueError, SyntaxError):
                entries = []
            modules = [e for e in entries[1:-1] if isinstance(e, str) and e]
            return modules[-1] if modules else None
        if node.name.startswith("/"):
            return legacy_path(node.name)
        return node.name.replace("/", ".") or None  # another tool's names: conv1, stem/conv

    def add(self, node: Any, type_name: str, params: dict[str, Any],
            weights: dict[str, np.ndarray] | None = None, inputs: list[str] | None = None,
            weight_name: str | None = None) -> str | None:
        """Add the block for ``node``, fed by its first input unless ``inputs`` says."""
        sources = inputs if inputs is not None else [node.input[0]]
        ids = [self.values.get(s) for s in sources]
        if None in ids:
            return None
        n = self.builder.add(self.path(node, weight_name), type_name, params, ids, weights)
        self.values[node.output[0]] = n
        return n

    def refuse(self, node: Any, why: str) -> None:
        self.builder.refuse(f"{node.op_type} node {node.name or node.output[0]!r}: {why}")

    def add_notes(self) -> None:
        b = self.builder
        shared = {w: u for w, u in self.weight_users.items() if len(u) > 1}
        for w, users in shared.items():
            b.notes.append(f"the weight {w!r} is shared by {len(users)} layers "
                           f"({', '.join(users)}); each block has its own copy, so "
                           f"fine-tuning may change them apart")
        folded = [n for n in self.folded if n in b.graph]
        if folded:
            b.notes.append(f"the exporter had folded BatchNorm into {len(folded)} "
                           f"convolutions: those Conv2d blocks carry a bias and have no "
                           f"BatchNorm after them")
        if self.unfolded:
            b.notes.append(f"the exporter had folded {self.unfolded} BatchNorms into the "
                           f"convolutions before them; they are BatchNorm blocks again, with "
                           f"the scale and shift in the convolution and identity statistics")
        for op, count in sorted(b.dropped.items()):
            b.notes.append(f"dropped {count} {op} node{'s' if count > 1 else ''} (they do "
                           f"nothing at inference)")


def legacy_path(name: str) -> str | None:
    """``/features/features.1/conv/conv.0/Conv`` → ``features.1.conv.0``: each scope is a
    child's name, dotted onto its parent's where it continues the parent's own name."""
    parts = [p for p in name.split("/") if p][:-1]
    full = ""
    prev = ""
    for part in parts:
        if prev and part.startswith(prev + "."):
            full = full + part[len(prev):]
        else:
            full = f"{full}.{part}" if full else part
        prev = part
    return full or None


def _constant_node(node: Any) -> np.ndarray | None:
    from onnx import helper, numpy_helper

    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if a.name == "value":
            return numpy_helper.to_array(v)
        if a.name in ("value_float", "value_int"):
            return np.array(v)
        if a.name in ("value_floats", "value_ints"):
            return np.array(list(v))
    return None


def attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out
