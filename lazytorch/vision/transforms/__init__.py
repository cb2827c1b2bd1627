"""torchvision.transforms: Compose, ToTensor, Normalize, Resize, RandomCrop,
RandomHorizontalFlip, and their per-image functions in `functional`."""
from . import functional
from .functional import InterpolationMode
from .transforms import (Compose, Normalize, RandomCrop, RandomHorizontalFlip, Resize,
                         ToTensor)

__all__ = ["Compose", "InterpolationMode", "Normalize", "RandomCrop", "RandomHorizontalFlip",
           "Resize", "ToTensor", "functional"]
