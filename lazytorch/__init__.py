"""lazytorch: PyTorch's API over a lazy graph compiler.

`import lazytorch as torch`: every op records a node; values are computed when needed, by
kernels that fuse many ops, generated as C and compiled at run time.
"""
from __future__ import annotations

from . import dtypes as _dt
from . import methods as _methods  # noqa: F401  (attaches Tensor methods)
from .creation import (Generator, arange, as_tensor, default_generator, empty, empty_like, eye,
                       from_numpy, full, full_like, get_rng_state, initial_seed, linspace,
                       manual_seed, normal, ones, ones_like, rand, rand_like, randint,
                       randint_like, randn, randn_like, randperm, seed, set_rng_state, tensor,
                       zeros, zeros_like)
from .dtypes import DType as dtype
from .dtypes import finfo, get_default_dtype, iinfo, set_default_dtype
from .formatting import set_printoptions
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all
from .size import Size
from .tensor import Tensor, broadcast_shapes, device

float32 = float = _dt.float32
float64 = double = _dt.float64
float16 = half = _dt.float16
bfloat16 = _dt.bfloat16
int8 = _dt.int8
uint8 = _dt.uint8
int16 = short = _dt.int16
int32 = int = _dt.int32
int64 = long = _dt.int64
bool = _dt.bool_


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def is_floating_point(t: Tensor) -> bool:
    return t.is_floating_point()


def numel(t: Tensor) -> int:
    return t.numel()


def promote_types(a, b):
    return _dt.promote(_dt.to_dtype(a), _dt.to_dtype(b))


def result_type(a, b):
    return _dt.result_type(a, b)


def can_cast(from_, to) -> bool:
    f, t = _dt.to_dtype(from_), _dt.to_dtype(to)
    order = {"b": 0, "u": 1, "i": 1, "f": 2}
    return order[f.kind] <= order[t.kind]


__version__ = "0.1.0"

from . import autograd  # noqa: E402
from .autograd import (enable_grad, inference_mode, is_grad_enabled, no_grad,  # noqa: E402
                       set_grad_enabled)
from .runtime.cpu import get_num_threads, set_num_threads  # noqa: E402
from . import nn, optim, utils  # noqa: E402
from .serialization import load, save  # noqa: E402
from . import cuda  # noqa: E402
