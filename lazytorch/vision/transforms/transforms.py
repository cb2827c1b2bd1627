"""torchvision.transforms' classes: callables that a dataset applies to each sample.

Geometric transforms take a numpy image (HxW or HxWxC) or a Tensor (..., C, H, W) and return
the same kind; the random ones draw from lazytorch's default generator, so torch.manual_seed
makes them repeatable, exactly as torchvision draws from PyTorch's.
"""
from __future__ import annotations

import numbers
from typing import Callable, Sequence

import numpy as np

from ...frontend.creation import _rng
from . import functional as F
from .functional import Image, InterpolationMode

__all__ = ["Compose", "Normalize", "RandomCrop", "RandomHorizontalFlip", "Resize", "ToTensor"]


def _randint(low: int, high: int) -> int:
    """torch.randint(low, high, (1,)).item(): the same draw from the default generator, without
    making a tensor (a transform draws per sample)."""
    return int(_rng(None).integers(low, high, (1,), dtype=np.int64)[0])


def _rand() -> float:
    """torch.rand(1).item(): the same float32 draw from the default generator."""
    return float(np.float32(_rng(None).random((1,), dtype=np.float64)[0]))


def _pair(size, name: str) -> tuple[int, int]:
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    if isinstance(size, Sequence) and len(size) == 1:
        return int(size[0]), int(size[0])
    if not isinstance(size, Sequence) or len(size) != 2:
        raise ValueError(f"Please provide only two dimensions (h, w) for {name}.")
    return int(size[0]), int(size[1])


class Compose:
    """The transforms applied one after the other."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        lines = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({lines}\n)"


class ToTensor:
    """An HxW(xC) numpy image as a CxHxW tensor; uint8 becomes float32 in [0, 1]."""

    def __call__(self, pic):
        return F.to_tensor(pic)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Normalize:
    """(tensor - mean) / std per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
        self.mean, self.std, self.inplace = mean, std, inplace

    def __call__(self, tensor):
        return F.normalize(tensor, self.mean, self.std, self.inplace)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


class Resize:
    """Resize to `size`: (h, w), or an int for the shorter edge keeping the aspect ratio."""

    def __init__(self, size, interpolation: InterpolationMode = InterpolationMode.BILINEAR,
                 max_size: int | None = None, antialias: bool | None = True):
        if not isinstance(size, (int, Sequence)) or isinstance(size, bool):
            raise TypeError(f"Size should be int or sequence. Got {type(size)}")
        if isinstance(size, Sequence) and len(size) not in (1, 2):
            raise ValueError("If size is a sequence, it should have 1 or 2 values")
        self.size, self.max_size, self.antialias = size, max_size, antialias
        self.interpolation = InterpolationMode(interpolation)

    def __call__(self, img: Image) -> Image:
        return F.resize(img, self.size, self.interpolation, self.max_size, self.antialias)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self.size}, interpolation="
                f"{self.interpolation.value}, max_size={self.max_size}, "
                f"antialias={self.antialias})")


class RandomCrop:
    """A random size[0] x size[1] window, after padding the borders by `padding` (see
    functional.pad); pad_if_needed pads an image smaller than the window up to its size."""

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill: float = 0,
                 padding_mode: str = "constant"):
        self.size = _pair(size, "size")
        self.padding, self.pad_if_needed = padding, pad_if_needed
        self.fill, self.padding_mode = fill, padding_mode

    @staticmethod
    def get_params(img: Image, output_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(top, left, height, width) of a random window of output_size inside img."""
        _, h, w = F.get_dimensions(img)
        th, tw = output_size
        if h < th or w < tw:
            raise ValueError(f"Required crop size {(th, tw)} is larger than input image size "
                             f"{(h, w)}")
        if w == tw and h == th:
            return 0, 0, h, w
        i = _randint(0, h - th + 1)
        j = _randint(0, w - tw + 1)
        return i, j, th, tw

    def __call__(self, img: Image) -> Image:
        if self.padding is not None:
            img = F.pad(img, self.padding, self.fill, self.padding_mode)
        _, h, w = F.get_dimensions(img)
        if self.pad_if_needed and w < self.size[1]:
            img = F.pad(img, [self.size[1] - w, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and h < self.size[0]:
            img = F.pad(img, [0, self.size[0] - h], self.fill, self.padding_mode)
        i, j, h, w = self.get_params(img, self.size)
        return F.crop(img, i, j, h, w)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror the image left to right with probability p."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img: Image) -> Image:
        if _rand() < self.p:
            return F.hflip(img)
        return img

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"
