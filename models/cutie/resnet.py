"""The ResNet-18/50 trunks Cutie's encoders are cut from, under the checkpoint's module names.

The official checkpoints store the trunks with torchvision's names (``conv1``/``bn1``/``layerN.i.convJ``,
``downsample.0/1``, the stride on the 3x3 convolution of a bottleneck). Building them here instead of
through ``torchvision.models`` keeps torchvision (and the torch._dynamo/sympy stack it imports) out of
the inference path: importing it costs about a second and ~150 MB per process. Only the stem and
layers 1-3 are built; Cutie never uses layer4 or the classifier.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))`` with frozen BatchNorm folded into the convolution (equal up to rounding).

    Saves a full pass over the activations per BatchNorm. The folded weights are recomputed on every call
    (microseconds for these sizes), so loading a checkpoint or editing parameters needs no cache upkeep.
    """
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    weight = conv.weight * scale.view(-1, 1, 1, 1)
    return F.conv2d(x, weight, shift, conv.stride, conv.padding, conv.dilation, conv.groups)


def _skip(downsample: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    if downsample is None:
        return x
    return conv_bn(downsample[0], downsample[1], x)


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(cin, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu_(conv_bn(self.conv1, self.bn1, x))
        y = conv_bn(self.conv2, self.bn2, y)
        return F.relu_(y.add_(_skip(self.downsample, x)))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand x4, with a residual connection (ResNet-50)."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(cin, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, width * self.expansion)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu_(conv_bn(self.conv1, self.bn1, x))
        y = F.relu_(conv_bn(self.conv2, self.bn2, y))
        y = conv_bn(self.conv3, self.bn3, y)
        return F.relu_(y.add_(_skip(self.downsample, x)))


_LAYOUTS = {"resnet18": (BasicBlock, (2, 2, 2)), "resnet50": (Bottleneck, (3, 4, 6))}


class Trunk(nn.Module):
    """Stem (7x7/2 conv, BN, 3x3/2 max-pool) and layers 1-3 of a ResNet; the caller wires them up."""

    def __init__(self, name: str, in_channels: int = 3):
        super().__init__()
        try:
            block, depths = _LAYOUTS[name]
        except KeyError:
            raise ValueError(f"unsupported ResNet trunk {name!r}; expected one of {sorted(_LAYOUTS)}") from None
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        cin = 64
        layers = []
        for i, (width, depth) in enumerate(zip((64, 128, 256), depths)):
            stride = 1 if i == 0 else 2
            out = width * block.expansion
            down = None
            if stride != 1 or cin != out:
                down = nn.Sequential(_conv1x1(cin, out, stride), nn.BatchNorm2d(out))
            blocks = [block(cin, width, stride, down)]
            blocks += [block(out, width) for _ in range(depth - 1)]
            layers.append(nn.Sequential(*blocks))
            cin = out
        self.layer1, self.layer2, self.layer3 = layers
        # the usual ResNet initialisation; only seen by networks used without a checkpoint (tests)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
