"""LeNet-5 (LeCun et al., 1998) as it is written today: ReLU and max-pooling."""
from __future__ import annotations

from ... import nn
from ...frontend.tensor import Tensor

__all__ = ["LeNet"]


class LeNet(nn.Module):
    """Two 5x5 convolutions (6 and 16 channels, padded to keep the size) each followed by ReLU
    and 2x2 max-pooling, then linear layers of 120 and 84 units and the classifier.
    `image_size` (a multiple of 4: 8 for the digits, 28 for MNIST) sizes the first linear
    layer."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        if image_size % 4 or image_size <= 0:
            raise ValueError(f"LeNet: image_size should be a positive multiple of 4 (two 2x2 "
                             f"poolings), got {image_size}")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120), nn.ReLU(inplace=True),
            nn.Linear(120, 84), nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
