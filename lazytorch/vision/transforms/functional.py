"""torchvision.transforms.functional: the per-image operations behind the transforms.

An image is a numpy array, HxW or HxWxC (uint8 0..255 or float; the PIL-less image that a
dataset returns), or a Tensor (..., C, H, W). Every geometric operation returns the kind it
was given; `to_tensor` turns an array into a CxHxW float Tensor and `normalize` works on
Tensors only, as in torchvision.
"""
from __future__ import annotations

import numbers
from enum import Enum
from typing import Sequence, Union

import numpy as np

from ...frontend.creation import from_array, from_numpy
from ...frontend.tensor import Tensor, device_name
from ...ir import dtypes as dt
from ...nn.functional_conv import interpolate, linear_weights, nearest_indices
from ...utils.data.collate import host_array

__all__ = ["InterpolationMode", "crop", "get_dimensions", "hflip", "normalize", "pad", "resize",
           "to_tensor"]

Image = Union[np.ndarray, Tensor]


class InterpolationMode(Enum):
    """torchvision's interpolation modes (those lazytorch computes)."""
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"


def _check_image(img, fname: str) -> None:
    if isinstance(img, np.ndarray):
        if img.ndim not in (2, 3):
            raise ValueError(f"{fname}: an image array should be HxW or HxWxC. Got "
                             f"{img.ndim} dimensions.")
    elif isinstance(img, Tensor):
        if img.ndim < 2:
            raise TypeError("Tensor is not a torch image.")
    else:
        raise TypeError(f"img should be a numpy image or Tensor. Got {type(img)}")


def get_dimensions(img: Image) -> list[int]:
    """[channels, height, width] of an image array (HxW has one channel) or tensor."""
    _check_image(img, "get_dimensions")
    if isinstance(img, np.ndarray):
        h, w = img.shape[:2]
        return [1 if img.ndim == 2 else img.shape[2], h, w]
    c = 1 if img.ndim == 2 else img.shape[-3]
    return [c, img.shape[-2], img.shape[-1]]


def to_tensor(pic: np.ndarray) -> Tensor:
    """An HxW or HxWxC array as a CxHxW tensor; uint8 is scaled to float32 in [0, 1], other
    dtypes keep their values and dtype (torchvision's ToTensor)."""
    if isinstance(pic, Tensor) or not isinstance(pic, np.ndarray):
        raise TypeError(f"pic should be PIL Image or ndarray. Got {type(pic)}")
    if pic.ndim not in (2, 3):
        raise ValueError(f"pic should be 2/3 dimensional. Got {pic.ndim} dimensions.")
    arr = pic[:, :, None] if pic.ndim == 2 else pic
    arr = np.ascontiguousarray(arr.transpose(2, 0, 1))
    if arr.dtype == np.uint8:
        return from_numpy((arr / np.float32(255)).astype(np.float32))
    return from_numpy(arr)


def normalize(tensor: Tensor, mean: Sequence[float], std: Sequence[float],
              inplace: bool = False) -> Tensor:
    """(tensor - mean) / std per channel of a float (..., C, H, W) tensor."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"img should be Tensor Image. Got {type(tensor)}")
    if not tensor.is_floating_point():
        raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
    if tensor.ndim < 3:
        raise ValueError(f"Expected tensor to be a tensor image of size (..., C, H, W). Got "
                         f"tensor.size() = {tensor.size()}")
    np_dtype = tensor.dtype.np
    m = np.asarray(mean, dtype=np.float64).astype(np_dtype)
    s = np.asarray(std, dtype=np.float64).astype(np_dtype)
    if (s == 0).any():
        raise ValueError(f"std evaluated to zero after conversion to {tensor.dtype}, leading to "
                         f"division by zero.")
    if m.ndim == 1:
        m = m.reshape(-1, 1, 1)
    if s.ndim == 1:
        s = s.reshape(-1, 1, 1)
    where = device_name(tensor)
    if not inplace and where == "cpu" and tensor.dtype in (dt.float32, dt.float64):
        arr = host_array(tensor)
        if arr is not None:   # realized host data, ToTensor's output: numpy's result is the
            return from_numpy(np.ascontiguousarray((arr - m) / s))   # kernel's, without a graph
    mt, st = from_array(m, device=where), from_array(s, device=where)
    if inplace:
        return tensor.sub_(mt).div_(st)
    return (tensor - mt) / st


def hflip(img: Image) -> Image:
    """The image mirrored left to right."""
    _check_image(img, "hflip")
    if isinstance(img, np.ndarray):
        return np.ascontiguousarray(img[:, ::-1])
    return img.flip(-1)


def _pad_amounts(padding) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) from torchvision's padding: an int, (lr, tb) or (l, t, r, b)."""
    if isinstance(padding, numbers.Number) and not isinstance(padding, bool):
        if not isinstance(padding, int):
            raise TypeError("Got inappropriate padding arg")
        return (padding,) * 4
    if not isinstance(padding, (tuple, list)):
        raise TypeError("Got inappropriate padding arg")
    if len(padding) not in (1, 2, 4):
        raise ValueError(f"Padding must be an int or a 1, 2, or 4 element tuple, not a "
                         f"{len(padding)} element tuple")
    p = [int(v) for v in padding]
    if len(p) == 1:
        return (p[0],) * 4
    if len(p) == 2:
        return (p[0], p[1], p[0], p[1])
    return (p[0], p[1], p[2], p[3])


_NP_MODES = {"edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}


def pad(img: Image, padding, fill: float = 0, padding_mode: str = "constant") -> Image:
    """The image with `padding` pixels added on each border: an int (all four), (left/right,
    top/bottom) or (left, top, right, bottom); filled with `fill` (padding_mode "constant"), or
    the edge pixel ("edge"), the mirror without ("reflect") or with ("symmetric") the edge."""
    _check_image(img, "pad")
    if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
        raise ValueError("Padding mode should be either constant, edge, reflect or symmetric")
    left, top, right, bottom = _pad_amounts(padding)
    if min(left, top, right, bottom) < 0:
        raise ValueError("Negative padding is not supported here; use crop")
    if isinstance(img, np.ndarray):
        widths = [(top, bottom), (left, right)] + [(0, 0)] * (img.ndim - 2)
        if padding_mode != "constant":
            return np.pad(img, widths, mode=_NP_MODES[padding_mode])
        if isinstance(fill, (tuple, list)) and (img.ndim != 3 or len(fill) != img.shape[2]):
            raise ValueError(f"fill has {len(fill)} values for an image of shape {img.shape}")
        h, w = img.shape[:2]
        out = np.empty((top + h + bottom, left + w + right) + img.shape[2:], img.dtype)
        out[...] = np.asarray(fill)      # a tuple fills channel by channel
        out[top:top + h, left:left + w] = img
        return out
    if padding_mode == "constant":
        if not isinstance(fill, numbers.Number):
            raise TypeError("Only a number fill is supported for Tensor images")
        from ...nn.functional import pad as fpad
        return fpad(img, [left, right, top, bottom], value=fill)
    out = img
    for dim, lo, hi in ((-2, top, bottom), (-1, left, right)):
        if lo or hi:
            idx = np.pad(np.arange(out.shape[dim]), (lo, hi), mode=_NP_MODES[padding_mode])
            out = out.index_select(dim, from_array(idx, device=device_name(out)))
    return out


def crop(img: Image, top: int, left: int, height: int, width: int) -> Image:
    """The height x width window whose top-left corner is (top, left); parts of the window
    outside the image are zeros, as in torchvision."""
    _check_image(img, "crop")
    _, h, w = get_dimensions(img)
    bottom, right = top + height, left + width
    if top < 0 or left < 0 or bottom > h or right > w:
        padding = [max(-left, 0), max(-top, 0), max(right - w, 0), max(bottom - h, 0)]
        img = pad(crop(img, max(top, 0), max(left, 0), min(bottom, h) - max(top, 0),
                       min(right, w) - max(left, 0)), padding)
        return img
    if isinstance(img, np.ndarray):
        return img[top:bottom, left:right]
    return img[..., top:bottom, left:right]


def _output_size(h: int, w: int, size, max_size) -> tuple[int, int]:
    """torchvision's rule: an int (or 1-list) sets the shorter edge, keeping the aspect ratio
    (the longer edge capped at max_size); a pair is (height, width)."""
    if isinstance(size, (list, tuple)) and len(size) == 2:
        if max_size is not None:
            raise ValueError("max_size should only be passed if size specifies the length of "
                             "the smaller edge, i.e. size should be an int or a sequence of "
                             "length 1 in torchscript mode.")
        return int(size[0]), int(size[1])
    if isinstance(size, (list, tuple)):
        if len(size) != 1:
            raise ValueError(f"If size is a sequence, it should have 1 or 2 values, got "
                             f"{len(size)}")
        size = size[0]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = int(size), int(int(size) * long / short)
    if max_size is not None:
        if max_size <= new_short:
            raise ValueError(f"max_size = {max_size} must be strictly greater than the "
                             f"requested size for the smaller edge size = {size}")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if w <= h else (new_short, new_long)


def resize(img: Image, size, interpolation: InterpolationMode = InterpolationMode.BILINEAR,
           max_size: int | None = None, antialias: bool | None = True) -> Image:
    """The image resized to `size` (see _output_size): bilinear (antialiased when shrinking,
    by default) or nearest. uint8 images are computed in float and rounded back."""
    _check_image(img, "resize")
    if not isinstance(size, (int, list, tuple)) or isinstance(size, bool):
        raise TypeError(f"Size should be int or sequence. Got {type(size)}")
    interpolation = InterpolationMode(interpolation)
    _, h, w = get_dimensions(img)
    oh, ow = _output_size(h, w, size, max_size)
    if (oh, ow) == (h, w):
        return img
    aa = bool(antialias) and interpolation is InterpolationMode.BILINEAR
    if isinstance(img, np.ndarray):
        return _resize_array(img, oh, ow, interpolation, aa)
    x = img.reshape(-1, *img.shape[-3:]) if img.ndim >= 3 else img.reshape(1, 1, h, w)
    integral = not x.is_floating_point()
    if integral and interpolation is InterpolationMode.BILINEAR:
        x = x.float()
    kw = {"antialias": aa} if interpolation is InterpolationMode.BILINEAR else {}
    if interpolation is InterpolationMode.BILINEAR:
        kw["align_corners"] = False
    out = interpolate(x, size=[oh, ow], mode=interpolation.value, **kw)
    if integral and interpolation is InterpolationMode.BILINEAR:
        info = dt.iinfo(img.dtype)
        out = out.round().clamp(info.min, info.max).to(img.dtype)
    return out.reshape(*img.shape[:-2], oh, ow)


def _resize_array(img: np.ndarray, oh: int, ow: int, mode: InterpolationMode,
                  aa: bool) -> np.ndarray:
    h, w = img.shape[:2]
    if mode is not InterpolationMode.BILINEAR:
        exact = mode is InterpolationMode.NEAREST_EXACT
        return img[nearest_indices(h, oh, None, exact)][:, nearest_indices(w, ow, None, exact)]
    wh = linear_weights(h, oh, False, None, aa)
    ww = linear_weights(w, ow, False, None, aa)
    out = np.tensordot(np.tensordot(wh, img.astype(np.float64), axes=([1], [0])), ww,
                       axes=([1], [1]))                       # (oh, [C,] ow)
    out = np.moveaxis(out, -1, 1) if img.ndim == 3 else out
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        return np.clip(np.round(out), info.min, info.max).astype(img.dtype)
    return out.astype(img.dtype)
