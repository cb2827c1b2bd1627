"""Padding layers: constant (and zero), reflection, replication and circular padding of the
last 1, 2 or 3 dims, over F.pad."""
from __future__ import annotations

from ..frontend.tensor import Tensor
from .functional import pad
from .module import Module


def _expand(padding, n: int) -> tuple[int, ...]:
    """An int as the same padding on both sides of each of n dims; a tuple as given."""
    if isinstance(padding, int):
        return (padding,) * (2 * n)
    padding = tuple(padding)
    if len(padding) != 2 * n:
        raise ValueError(f"expected padding of length {2 * n}, got {len(padding)}")
    return padding


class _PadNd(Module):
    mode: str
    dims: int

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = _expand(padding, self.dims)

    def forward(self, input: Tensor) -> Tensor:
        return pad(input, self.padding, self.mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    mode = "constant"

    def __init__(self, padding, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        return pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim with `value`: padding = (left, right) or one int for both."""
    dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last 2 dims with `value`: (left, right, top, bottom) or one int."""
    dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last 3 dims with `value`: (left, right, top, bottom, front, back) or one int."""
    dims = 3


class _ZeroPadNd(_ConstantPadNd):
    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad1d(_ZeroPadNd):
    """Pad the last dim with zeros."""
    dims = 1


class ZeroPad2d(_ZeroPadNd):
    """Pad the last 2 dims with zeros."""
    dims = 2


class ZeroPad3d(_ZeroPadNd):
    """Pad the last 3 dims with zeros."""
    dims = 3


class ReflectionPad1d(_PadNd):
    """Pad the last dim with its reflection (the edge not repeated)."""
    mode, dims = "reflect", 1


class ReflectionPad2d(_PadNd):
    """Pad the last 2 dims with their reflection."""
    mode, dims = "reflect", 2


class ReflectionPad3d(_PadNd):
    """Pad the last 3 dims with their reflection."""
    mode, dims = "reflect", 3


class ReplicationPad1d(_PadNd):
    """Pad the last dim by repeating its edge values."""
    mode, dims = "replicate", 1


class ReplicationPad2d(_PadNd):
    """Pad the last 2 dims by repeating their edge values."""
    mode, dims = "replicate", 2


class ReplicationPad3d(_PadNd):
    """Pad the last 3 dims by repeating their edge values."""
    mode, dims = "replicate", 3


class CircularPad1d(_PadNd):
    """Pad the last dim by wrapping around."""
    mode, dims = "circular", 1


class CircularPad2d(_PadNd):
    """Pad the last 2 dims by wrapping around."""
    mode, dims = "circular", 2


class CircularPad3d(_PadNd):
    """Pad the last 3 dims by wrapping around."""
    mode, dims = "circular", 3
