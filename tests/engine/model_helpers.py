"""Shared by the export tests: a compiled design with weights as a run leaves them."""

from __future__ import annotations

import torch

from engine import Graph, compile_graph


def trained_like(graph: Graph, seed: int = 0) -> torch.nn.Module:
    """``graph`` compiled with seeded weights and BatchNorm running statistics that are
    not the defaults, so eval mode differs from train mode as in a trained model (an
    export that mixed them up would still agree with fresh statistics)."""
    torch.manual_seed(seed)
    model = compile_graph(graph)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model
