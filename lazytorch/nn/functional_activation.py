"""nn.functional's activations (relu, gelu, softplus, ...) and the softmax family, with
PyTorch's signatures, defaults and messages.

Boundaries where a naive formula's gradient would differ from PyTorch's (ELU at 0, softplus
past its threshold, ...) select branches with `where`, whose gradient goes wholly to the chosen
branch, and keep unselected branches finite.
"""
from __future__ import annotations

import math
import warnings

from ..frontend import elementwise as ew
from ..frontend import reduce as rd
from ..frontend.tensor import Tensor, _canon_dim
from ..ir import dtypes as dt
from ..ir.sites import record
from .functional_norm import _channel_shape
from .loss_nodes import log_softmax_node

_where = ew.where_nodes


def _inplace_result(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    if inplace:
        input._assign(out.node)
        return input
    return out


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); the gradient at 0 is 0."""
    return input.relu_() if inplace else input.relu()


def relu_(input: Tensor) -> Tensor:
    return input.relu_()


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    return hardtanh(input, 0.0, 6.0, inplace)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """clamp(x, min_val, max_val); no gradient outside (min_val, max_val)."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    # max/min against constants (not clamp's where): the gradient is 0 at the bounds, as
    # PyTorch's hardtanh (and relu6) give
    from ..frontend.elementwise import binary
    from ..ir.ops import Op
    out = binary(Op.MAX, input, min_val, compute=input.dtype, name="hardtanh")
    out = binary(Op.MIN, out, max_val, compute=input.dtype, name="hardtanh")
    return _inplace_result(input, out, inplace)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, True)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    return _inplace_result(input, _where(input > 0, input, input * negative_slope), inplace)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, True)


def _nonpositive(x: Tensor) -> Tensor:
    """min(x, 0) whose gradient at 0 is 1 (the negative branch's, as PyTorch's kernels)."""
    return _where(x > 0, 0.0, x)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else weight * x, with one weight per channel (dim 1) or one shared."""
    n = weight.numel()
    if n != 1:
        c = input.shape[1] if input.ndim >= 2 else input.shape[0] if input.ndim else 1
        if n != c:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found "
                               f"parameter numbers = {n} and channel size = {c}.")
        if input.ndim >= 2:
            weight = weight.reshape(_channel_shape(input, c))
    else:
        weight = weight.reshape(())
    return _where(input > 0, input, input * weight)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1)."""
    out = _where(input > 0, input, _nonpositive(input).expm1() * alpha)
    return _inplace_result(input, out, inplace)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, True)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with SELU's constants."""
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    out = _where(input > 0, input * scale, _nonpositive(input).expm1() * (alpha * scale))
    return _inplace_result(input, out, inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    out = _where(input > 0, input, (_nonpositive(input) / alpha).expm1() * alpha)
    return _inplace_result(input, out, inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) (approximate='none', with erf) or its tanh approximation."""
    if approximate == "none":
        return input * 0.5 * (1.0 + (input * (1.0 / math.sqrt(2.0))).erf())
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2.0 / math.pi)
        return input * 0.5 * (1.0 + inner.tanh())
    raise RuntimeError("approximate argument must be either none or tanh.")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x)."""
    return _inplace_result(input, input * input.sigmoid(), inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return _inplace_result(input, input * softplus(input).tanh(), inplace)


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """clamp(x / 6 + 1/2, 0, 1)."""
    return _inplace_result(input, hardtanh(input / 6.0 + 0.5, 0.0, 1.0), inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * hardsigmoid(x)."""
    return _inplace_result(input, input * hardtanh(input / 6.0 + 0.5, 0.0, 1.0), inplace)


def softsign(input: Tensor) -> Tensor:
    return input / (1.0 + input.abs())


def tanhshrink(input: Tensor) -> Tensor:
    return input - input.tanh()


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    return _inplace_result(input, _where(input > threshold, input, value), inplace)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    return _inplace_result(input, _where(input > threshold, input, value), True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return celu(input, alpha, True)


def selu_(input: Tensor) -> Tensor:
    return selu(input, True)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    return _where(input.abs() > lambd, input, 0.0)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    if lambd < 0:
        raise RuntimeError(f"lambda must be in range [0, 3.40282e+38] for input dtype "
                           f"{dt.scalar_type_name(input.dtype)}, but found {lambd}")
    return _where(input > lambd, input - lambd, _where(input < -lambd, input + lambd, 0.0))


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
          training: bool = False, inplace: bool = False) -> Tensor:
    """x where x >= 0, else a * x: a drawn uniformly from [lower, upper] per element in
    training, (lower + upper) / 2 otherwise."""
    if lower > upper:
        raise RuntimeError("Lower bound should be less than or equal to the upper bound")
    if training:
        from ..frontend.creation import rand
        slope = rand(tuple(input.shape), dtype=input.dtype, device=input.device) * (
            upper - lower) + lower
    else:
        slope = (lower + upper) / 2
    return _inplace_result(input, _where(input >= 0, input, input * slope), inplace)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
           training: bool = False) -> Tensor:
    return rrelu(input, lower, upper, training, True)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, or x where beta * x > threshold."""
    bx = input * beta
    above = bx > threshold
    soft = _where(above, 0.0, bx).exp().log1p()
    return _where(above, input, soft / beta if beta != 1 else soft)


def _neg_abs(x: Tensor) -> Tensor:
    """-|x| whose gradient at 0 is -1 (the x >= 0 side's)."""
    return _where(x < 0, x, -x)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)), computed stably as min(x, 0) - log1p(exp(-|x|))."""
    return _where(input < 0, input, 0.0) - _neg_abs(input).exp().log1p()


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b), with a, b the two halves of input along dim."""
    if input.shape[dim] % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension "
                           f"{dim % input.ndim} is size {input.shape[dim]}")
    a, b = input.chunk(2, dim)
    return a * b.sigmoid()


def _softmax_dim(name: str, ndim: int) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to "
                  "include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _float_input(input: Tensor, dtype, kernel: str, dim: int) -> Tensor:
    if dtype is not None:
        return input.to(dt.to_dtype(dtype))
    if not input.is_floating_point():
        # PyTorch has no integer softmax: the caller passes dtype= to compute in floats
        last = "_lastdim" if _canon_dim(dim, input.ndim) == max(input.ndim - 1, 0) else ""
        raise NotImplementedError(f'"{kernel}{last}_kernel_impl" not implemented for '
                                  f"'{dt.scalar_type_name(input.dtype)}'")
    return input


def _shifted(x: Tensor, dim: int) -> Tensor:
    """x minus its max along dim (a constant for autograd: the result does not depend on it)."""
    return x - rd.amax(x, dim, keepdim=True).detach()


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim, computed after subtracting the max."""
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim)
    e = _shifted(_float_input(input, dtype, "softmax", dim), dim).exp()
    return e / e.sum(dim, keepdim=True)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    """softmax(-x)."""
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim)
    return softmax(-_float_input(input, dtype, "softmax", dim), dim)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    """x - logsumexp(x) along dim, computed after subtracting the max."""
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim)
    if dtype is None and isinstance(input, Tensor) and input.is_floating_point() and \
            input.ndim and input.numel():
        # the same nodes as below, recorded as one op
        node = log_softmax_node(input.node, _canon_dim(dim, input.ndim))
        record(node)
        return Tensor._make(node)
    z = _shifted(_float_input(input, dtype, "log_softmax", dim), dim)
    return z - z.exp().sum(dim, keepdim=True).log()
