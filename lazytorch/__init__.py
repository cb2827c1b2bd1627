"""lazytorch: PyTorch's API over a lazy graph compiler.

`import lazytorch as torch`: every op records a node; values are computed when needed, by
kernels that fuse many ops, generated as C and compiled at run time.
"""
from __future__ import annotations

import math as _math

# first of all: the host loops' implementation (compiled or Python) is chosen here, before any
# module binds graph's or sites' functions by name (runtime/native)
from .runtime import native as _native  # noqa: F401
from .ir import dtypes as _dt
from .frontend import methods as _methods  # noqa: F401  (attaches Tensor methods)
from .frontend.creation import (Generator, arange, as_tensor, default_generator, empty, empty_like,
                                eye, from_numpy, full, full_like, get_rng_state, initial_seed,
                                linspace, manual_seed, normal, ones, ones_like, rand, rand_like,
                                randint, randint_like, randn, randn_like, randperm, seed,
                                set_rng_state, tensor, zeros, zeros_like)
from .ir.dtypes import DType as dtype
from .ir.dtypes import finfo, get_default_dtype, iinfo, set_default_dtype
from .frontend.formatting import set_printoptions
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all
from .frontend.size import Size
from .frontend.tensor import Tensor, broadcast_shapes, device

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
from . import debug  # noqa: E402  (also sets lazytorch.compiler.schedule and .graph)
from . import nn, optim, utils  # noqa: E402
from . import distributions  # noqa: E402
from .serialization import load, save  # noqa: E402
from . import cuda  # noqa: E402

# the namespaces and switches scripts touch at start-up
from . import accelerator, amp, backends, cpu, distributed, jit, onnx  # noqa: E402
from .frontend import startup  # noqa: E402
from .amp import GradScaler, autocast  # noqa: E402
from .amp.autocast_mode import *  # noqa: E402,F401,F403
from .as_torch import install_as_torch, uninstall_as_torch  # noqa: E402
from .nn import parallel as _parallel  # noqa: E402,F401  (torch.nn.parallel, imported)
from .nn.module import typename  # noqa: E402
from .frontend.startup import *  # noqa: E402,F401,F403

pi, e, inf, nan, newaxis = _math.pi, _math.e, _math.inf, _math.nan, None

# torch.* names of functions that live in nn.functional (those whose torch.* signature is
# F's: torch.batch_norm, torch.embedding and the losses take their arguments differently)
for _name in ("conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "avg_pool1d",
              "adaptive_avg_pool1d", "max_pool1d", "max_pool2d", "bilinear", "prelu", "selu",
              "celu", "threshold", "dropout", "alpha_dropout", "feature_alpha_dropout",
              "layer_norm", "group_norm", "rms_norm", "pixel_shuffle", "pixel_unshuffle",
              "cosine_similarity", "pairwise_distance", "pdist", "hardshrink"):
    if hasattr(nn.functional, _name):
        globals()[_name] = getattr(nn.functional, _name)

# torch.autograd.Function (its module imports the Tensor front end, so it comes last)
from .autograd.function import Function as _Function  # noqa: E402

autograd.Function = _Function
autograd.FunctionCtx = autograd.function.FunctionCtx
autograd.once_differentiable = autograd.function.once_differentiable
from .utils import checkpoint as _checkpoint  # noqa: E402,F401  (torch.utils.checkpoint)

# torch.profiler, and torch.autograd.profiler's profile and record_function
from . import profiler  # noqa: E402
from .profiler import at_exit as _profile_at_exit  # noqa: E402

autograd.profiler = profiler
_profile_at_exit()   # LAZYTORCH_PROFILE=1: the whole run profiled, its table printed at exit
