"""Squeeze-and-excitation: reweights channels by a gate computed from their means."""
import torch
from torch import nn

from engine.plugins import Param, block


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(torch.relu(self.reduce(s))))


@block(category="Attention", doc="Reweights channels by a learned gate (SENet).",
       params=[Param("reduction", int, 4, min=1, doc="hidden width = channels / reduction")])
def SE(in_shape, reduction):
    return SqueezeExcite(in_shape[0], reduction)


@block(category="Convolution", doc="Depthwise 3×3 then pointwise 1×1 convolution.",
       params=[Param("out_channels", int, 32, min=1, doc="channels after the 1×1"),
               Param("stride", int, 1, min=1, max=2, doc="stride of the 3×3")],
       rf=lambda p: (3, p["stride"]))  # a 3×3 window moving by the stride
def SeparableConv(in_shape, out_channels, stride):
    c = in_shape[0]
    return nn.Sequential(nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False),
                         nn.Conv2d(c, out_channels, 1))
