"""Small designs with blocks made of blocks (SPEC §9), shared by the user-block tests."""

from __future__ import annotations

import copy
from typing import Any


def chain(*ids: str) -> list[dict[str, Any]]:
    return [{"from": a, "to": b} for a, b in zip(ids, ids[1:], strict=False)]


CONV_RELU = {
    "params": {"width": {"type": "int", "default": 8, "min": 1},
               "k": {"type": "int2", "default": 3}},
    "nodes": [{"id": "x", "type": "Input", "params": {}},
              {"id": "conv", "type": "Conv2d",
               "params": {"out_channels": "$width", "kernel_size": "$k"}},
              {"id": "relu", "type": "Activation", "params": {}},
              {"id": "y", "type": "Output", "params": {}}],
    "edges": chain("x", "conv", "relu", "y"),
}

# Two inputs: the second is projected and added to the first after a ConvReLU.
MERGE = {
    "doc": "ConvReLU of the first input plus a 1×1 projection of the second.",
    "params": {"width": {"type": "int", "default": 8, "min": 1},
               "act": {"type": "str", "default": "relu", "choices": ["relu", "tanh"]},
               "bias": {"type": "bool", "default": True},
               "p": {"type": "float", "default": 0.0, "min": 0, "max": 1}},
    "nodes": [{"id": "a", "type": "Input", "params": {}},
              {"id": "b", "type": "Input", "params": {}},
              {"id": "main", "type": "ConvReLU", "params": {"width": "$width"}},
              {"id": "proj", "type": "Conv2d",
               "params": {"out_channels": "$width", "kernel_size": 1, "bias": "$bias"}},
              {"id": "add", "type": "Add", "params": {}},
              {"id": "act", "type": "Activation", "params": {"function": "$act"}},
              {"id": "drop", "type": "Dropout", "params": {"p": "$p"}},
              {"id": "y", "type": "Output", "params": {}}],
    "edges": [{"from": "a", "to": "main"}, {"from": "b", "to": "proj"},
              {"from": "main", "to": "add"}, {"from": "proj", "to": "add", "port": 1},
              {"from": "add", "to": "act"}, {"from": "act", "to": "drop"},
              {"from": "drop", "to": "y"}],
}


def nested_design(size: int = 12) -> dict[str, Any]:
    """input → s1: ConvReLU(6) → m1: Merge(s1, input) → s2: ConvReLU(4, k=[1,3])
    → GlobalAvgPool → Linear(5): nested instances, several inputs, every argument type."""
    return {
        "format": "convas.graph", "version": 1, "name": "Nested blocks",
        "blocks": {"ConvReLU": copy.deepcopy(CONV_RELU), "Merge": copy.deepcopy(MERGE)},
        "nodes": [
            {"id": "input", "type": "Input",
             "params": {"channels": 3, "height": size, "width": size}},
            {"id": "s1", "type": "ConvReLU", "params": {"width": 6}},
            {"id": "m1", "type": "Merge",
             "params": {"width": 6, "act": "tanh", "bias": False, "p": 0.25}},
            {"id": "s2", "type": "ConvReLU", "params": {"width": 4, "k": [1, 3]}},
            {"id": "gap", "type": "GlobalAvgPool", "params": {}},
            {"id": "fc", "type": "Linear", "params": {"out_features": 5}},
            {"id": "out", "type": "Output", "params": {}},
        ],
        "edges": [{"from": "input", "to": "s1"}, {"from": "s1", "to": "m1"},
                  {"from": "input", "to": "m1", "port": 1}, {"from": "m1", "to": "s2"},
                  {"from": "s2", "to": "gap"}, {"from": "gap", "to": "fc"},
                  {"from": "fc", "to": "out"}],
        "training": {},
    }
