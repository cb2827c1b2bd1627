"""torchvision's first names for lazytorch: `datasets` (Digits), `transforms` and `models`
(LeNet, ResNet from BasicBlocks)."""
from . import datasets, models, transforms

__all__ = ["datasets", "models", "transforms"]
