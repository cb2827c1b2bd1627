"""torchvision's ResNet built from BasicBlocks (He et al., 2016), with a small-image stem.

`ResNet(BasicBlock, [2, 2, 2, 2])` is torchvision's resnet18, parameter for parameter and
state_dict key for key (11,689,512 parameters); `resnet_small` is the CIFAR-style network for
tiny images (a 3x3 stem, no max-pool, widths 16/32/64).
"""
from __future__ import annotations

from typing import Callable, Sequence

from ... import nn
from ...frontend.tensor import Tensor

__all__ = ["BasicBlock", "ResNet", "conv1x1", "conv3x3", "resnet18", "resnet34", "resnet_small"]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """A 3x3 convolution with padding 1 and no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """A 1x1 convolution without bias: the shortcut's projection."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); `downsample` (1x1 conv + BN) is
    the shortcut when the stride or the width changes, else the identity."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None,
                 norm_layer: Callable[[int], nn.Module] | None = None):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A stem, one stage per entry of `layers` (that many blocks; stage i is width * 2**i
    wide and halves the resolution for i > 0), global average pooling and a linear classifier.

    The stem is torchvision's (7x7 stride-2 conv, BN, ReLU, 3x3 stride-2 max-pool) unless
    `small_input`, where it is a 3x3 stride-1 conv, BN and ReLU, for 8x8 to 32x32 images.
    zero_init_residual starts each block's last BN at zero, so each block starts as the
    identity."""

    def __init__(self, block: type[BasicBlock], layers: Sequence[int], num_classes: int = 1000,
                 in_channels: int = 3, width: int = 64, small_input: bool = False,
                 zero_init_residual: bool = False,
                 norm_layer: Callable[[int], nn.Module] | None = None):
        super().__init__()
        if len(layers) == 0:
            raise ValueError("layers should name at least one stage, got []")
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self.inplanes = width
        if small_input:
            self.conv1 = conv3x3(in_channels, width)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3,
                                   bias=False)
        self.bn1 = self._norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = (nn.Identity() if small_input else
                        nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        for i, blocks in enumerate(layers):
            stage = self._make_layer(block, width * 2 ** i, blocks, stride=1 if i == 0 else 2)
            setattr(self, f"layer{i + 1}", stage)
        self.num_stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 2 ** (len(layers) - 1) * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block: type[BasicBlock], planes: int, blocks: int,
                    stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       self._norm_layer(planes * block.expansion))
        stage = [block(self.inplanes, planes, stride, downsample, self._norm_layer)]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes, norm_layer=self._norm_layer)
                  for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """torchvision's resnet18 (untrained)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, **kwargs)


def resnet34(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """torchvision's resnet34 (untrained)."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


def resnet_small(num_classes: int = 10, in_channels: int = 1, **kwargs) -> ResNet:
    """A ResNet for tiny images (8x8 digits, 32x32 CIFAR): a 3x3 stem and three stages of two
    BasicBlocks, 16, 32 and 64 wide (the 14-layer member of He et al.'s CIFAR family)."""
    kwargs.setdefault("width", 16)
    kwargs.setdefault("small_input", True)
    return ResNet(BasicBlock, [2, 2, 2], num_classes, in_channels, **kwargs)
