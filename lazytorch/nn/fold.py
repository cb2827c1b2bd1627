"""Unfold (sliding local blocks as columns, im2col) and Fold (columns summed back into an
image, col2im), as functions and layers. Unfold is a view of the windows; Fold places each
kernel position's plane at its offset and stride (pads and reshapes) and sums the planes."""
from __future__ import annotations

from ..frontend.tensor import Tensor
from .functional import pad
from .functional_conv import _tuple, _windows
from .module import Module


def _blocks(size, kernel, dilation, padding, stride) -> tuple[int, int]:
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                 for n, k, d, p, s in zip(size, kernel, dilation, padding, stride))


def _pad_dim(t: Tensor, dim: int, lo: int, hi: int) -> Tensor:
    pads = [0, 0] * (t.ndim - 1 - dim) + [lo, hi]
    return pad(t, pads) if lo or hi else t


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """(N, C, H, W) -> (N, C * kh * kw, L): each sliding block's values as a column, L blocks
    in row-major order, channels outermost in a column."""
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    if x.ndim != 4:
        raise RuntimeError(f"Input Error: Only 3D or 4D input Tensors are supported (got "
                           f"{input.ndim}D)")
    k, d = _tuple(kernel_size, 2, "kernel_size"), _tuple(dilation, 2, "dilation")
    p, s = _tuple(padding, 2, "padding"), _tuple(stride, 2, "stride")
    blocks = _blocks(x.shape[2:], k, d, p, s)
    if min(blocks) < 1:
        raise RuntimeError(f"Given input with spatial size {tuple(x.shape[2:])}, kernel_size="
                           f"{k}, dilation={d}, padding={p}, calculated shape of the array of "
                           f"sliding blocks as {tuple(max(b, 0) for b in blocks)}, but its "
                           "components must be at least one.")
    n, c = x.shape[:2]
    win = _windows(x, k, s, p, d)                       # (N, C, bh, bw, kh, kw)
    out = win.permute(0, 1, 4, 5, 2, 3).reshape(n, c * k[0] * k[1], blocks[0] * blocks[1])
    return out.squeeze(0) if unbatched else out


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """(N, C * kh * kw, L) -> (N, C, H, W): the adjoint of unfold, overlapping values summed."""
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    if x.ndim != 3:
        raise RuntimeError(f"Input Error: Only unbatched (2D) or batched (3D) input Tensors are "
                           f"supported (got {input.ndim}D)")
    size = _tuple(output_size, 2, "output_size")
    k, d = _tuple(kernel_size, 2, "kernel_size"), _tuple(dilation, 2, "dilation")
    p, s = _tuple(padding, 2, "padding"), _tuple(stride, 2, "stride")
    kk = k[0] * k[1]
    if x.shape[1] % kk:
        raise RuntimeError(f"Expected size of input's dimension 1 to be divisible by the product "
                           f"of kernel_size, but got input.size(1)={x.shape[1]} and "
                           f"kernel_size={k}.")
    bh, bw = _blocks(size, k, d, p, s)
    if x.shape[2] != bh * bw:
        raise RuntimeError(f"Given output_size={size}, kernel_size={k}, dilation={d}, padding="
                           f"{p}, stride={s}, expected size of input's dimension 2 to match the "
                           f"calculated number of sliding blocks {bh} * {bw} = {bh * bw}, but "
                           f"got input.size(2)={x.shape[2]}.")
    n, c = x.shape[0], x.shape[1] // kk
    full = (size[0] + 2 * p[0], size[1] + 2 * p[1])
    cols = x.reshape(n, c, k[0], k[1], bh, bw)
    total = None
    for i in range(k[0]):
        for j in range(k[1]):
            plane = cols[:, :, i, j]                    # (N, C, bh, bw)
            for dim, start in ((2, i * d[0]), (3, j * d[1])):
                step, m = s[dim - 2], plane.shape[dim]
                if step > 1:     # spread: step - 1 zeros after each value, the last trimmed
                    plane = _pad_dim(plane.unsqueeze(dim + 1), dim + 1, 0, step - 1)
                    shape = list(plane.shape)
                    shape[dim:dim + 2] = [m * step]
                    plane = plane.reshape(shape).narrow(dim, 0, (m - 1) * step + 1)
                plane = _pad_dim(plane, dim, start, full[dim - 2] - start - plane.shape[dim])
            total = plane if total is None else total + plane
    out = total[:, :, p[0]:p[0] + size[0], p[1]:p[1] + size[1]]
    return out.squeeze(0) if unbatched else out


class Unfold(Module):
    """Sliding local blocks of (N, C, H, W) input as columns (N, C kh kw, L)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Fold(Module):
    """Columns (N, C kh kw, L) summed back into (N, C, *output_size)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                    self.stride)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")
