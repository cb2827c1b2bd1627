"""Pointwise functions beyond the primitives: the inverse and hyperbolic trigonometric family,
atan2, hypot, logaddexp, xlogy, copysign, fmax/fmin, addcmul/addcdiv, ... (torch.* functions
and Tensor methods, PyTorch's dtypes and errors).

Each is one primitive op (atan, sinh, ..., atan2 are ops of the IR, computed by libm) or a
composition of them, so it fuses with its neighbours and has its gradient by the chain rule.
Compositions that would divide by zero or overflow in a branch that `where` discards feed
that branch a safe value instead, so that its gradient is 0, not NaN.
"""
from __future__ import annotations

import math

from ..ir import dtypes as dt
from ..ir.graph import const
from ..ir.ops import Op
from ..ir.sites import named
from . import elementwise as ew
from .tensor import Tensor

__all__ = ["asin", "arcsin", "acos", "arccos", "atan", "arctan", "sinh", "cosh", "asinh",
           "arcsinh", "acosh", "arccosh", "atanh", "arctanh", "atan2", "arctan2", "hypot",
           "logaddexp", "logaddexp2", "xlogy", "deg2rad", "rad2deg", "frac", "fix", "sgn",
           "heaviside", "copysign", "signbit", "fmax", "fmin", "float_power", "logit", "sinc",
           "clamp_min", "clamp_max", "isneginf", "isposinf", "isreal", "positive", "rsub",
           "addcmul", "addcdiv", "ldexp"]
# the names that are Tensor methods too (each of the float ones also in place, name + "_")
METHODS = [n for n in __all__ if n not in ("rsub",)]
INPLACE = ["asin", "arcsin", "acos", "arccos", "atan", "arctan", "sinh", "cosh", "asinh",
           "arcsinh", "acosh", "arccosh", "atanh", "arctanh", "atan2", "arctan2", "hypot",
           "xlogy", "deg2rad", "rad2deg", "frac", "fix", "sgn", "heaviside", "copysign",
           "fmax", "fmin", "float_power", "logit", "sinc", "clamp_min", "clamp_max",
           "addcmul", "addcdiv", "ldexp"]


def _check(x, name: str, arg: str = "input", pos: int = 1) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' (position {pos}) must be Tensor, not "
                        f"{type(x).__name__}")


def _float(x: Tensor) -> Tensor:
    """x in a floating dtype: integers and bools in the default float dtype."""
    return x if x.dtype.is_floating_point else x.to(dt.get_default_dtype())


def _float_type(*xs) -> dt.DType:
    d = dt.result_type(*xs)
    return d if d.is_floating_point else dt.get_default_dtype()


def _no_integers(d: dt.DType, kernel: str) -> dt.DType:
    """d, if floating; PyTorch has no integer kernel for these ops: the same error here."""
    if not d.is_floating_point:
        raise NotImplementedError(f'"{kernel}" not implemented for \'{dt.scalar_type_name(d)}\'')
    return d


def _unary(op: Op, name: str):
    def fn(input: Tensor) -> Tensor:
        _check(input, name)
        return ew.unary(op, input, d=ew._floating(input))
    return named(fn, name)


asin = arcsin = _unary(Op.ASIN, "asin")
acos = arccos = _unary(Op.ACOS, "acos")
atan = arctan = _unary(Op.ATAN, "atan")
sinh = _unary(Op.SINH, "sinh")
cosh = _unary(Op.COSH, "cosh")
asinh = arcsinh = _unary(Op.ASINH, "asinh")
acosh = arccosh = _unary(Op.ACOSH, "acosh")
atanh = arctanh = _unary(Op.ATANH, "atanh")


def atan2(input: Tensor, other: Tensor) -> Tensor:
    """The angle of the point (other, input), in (-pi, pi], elementwise and broadcast."""
    _check(input, "atan2")
    _check(other, "atan2", "other", 2)
    return ew.binary(Op.ATAN2, input, other, compute=_float_type(input, other), name="atan2")


arctan2 = atan2


def hypot(input: Tensor, other: Tensor) -> Tensor:
    """sqrt(input^2 + other^2), without overflow or underflow in the squares."""
    _check(input, "hypot")
    _check(other, "hypot", "other", 2)
    d = _no_integers(dt.result_type(input, other), "hypot_cpu")
    a, b = input.to(d).abs(), other.to(d).abs()
    big, small = ew.maximum(a, b), ew.minimum(a, b)
    zero = big == 0
    r = small / ew.where_nodes(zero, 1.0, big)
    out = ew.where_nodes(zero, 0.0, big * (1 + r * r).sqrt())
    # an infinite side makes an infinite result, even beside a NaN (as C's hypot)
    return ew.where_nodes(a.isinf() | b.isinf(), math.inf, out)


def logaddexp(input: Tensor, other: Tensor) -> Tensor:
    """log(exp(input) + exp(other)), without overflow."""
    _check(input, "logaddexp")
    _check(other, "logaddexp", "other", 2)
    d = _no_integers(dt.result_type(input, other), "logaddexp_cpu")
    a, b = input.to(d), other.to(d)
    both_inf = a.isinf() & (a == b)  # equal infinities: the sum is that infinity
    m = ew.maximum(a, b)
    diff = ew.where_nodes(both_inf, 0.0, a - b).abs()
    return ew.where_nodes(both_inf, a, m + (-diff).exp().log1p())


def logaddexp2(input: Tensor, other: Tensor) -> Tensor:
    """log2(2^input + 2^other), without overflow."""
    _check(input, "logaddexp2")
    _check(other, "logaddexp2", "other", 2)
    d = _no_integers(dt.result_type(input, other), "logaddexp2_cpu")
    a, b = input.to(d), other.to(d)
    both_inf = a.isinf() & (a == b)
    m = ew.maximum(a, b)
    diff = ew.where_nodes(both_inf, 0.0, a - b).abs()
    return ew.where_nodes(both_inf, a, m + (-diff).exp2().log1p() * (1 / math.log(2)))


def xlogy(input, other) -> Tensor:
    """input * log(other), 0 where input is 0 (unless other is NaN)."""
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError("xlogy(): argument 'self' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    d = _float_type(input, other)
    like = input if isinstance(input, Tensor) else other
    x, y = (v.to(d) if isinstance(v, Tensor) else ew._scalar_tensor(v, like).to(d)
            for v in (input, other))
    zero = x == 0
    out = ew.where_nodes(zero, 0.0, x * ew.where_nodes(zero, 1.0, y).log())
    return ew.where_nodes(y.isnan(), math.nan, out)


def ldexp(input: Tensor, other: Tensor) -> Tensor:
    """input * 2 ** other."""
    _check(input, "ldexp")
    _check(other, "ldexp", "other", 2)
    return _float(input) * _float(other).exp2()


def deg2rad(input: Tensor) -> Tensor:
    _check(input, "deg2rad")
    return _float(input) * (math.pi / 180)


def rad2deg(input: Tensor) -> Tensor:
    _check(input, "rad2deg")
    return _float(input) * (180 / math.pi)


def frac(input: Tensor) -> Tensor:
    """input - trunc(input): the fractional part, with input's sign."""
    _check(input, "frac")
    _no_integers(input.dtype, "frac_cpu")
    return input - input.trunc()


def fix(input: Tensor) -> Tensor:
    """torch.fix: an alias of trunc."""
    _check(input, "fix")
    return input.trunc()


def sgn(input: Tensor) -> Tensor:
    """torch.sgn: the sign (for real tensors, sign)."""
    _check(input, "sgn")
    return input.sign()


def heaviside(input: Tensor, values: Tensor) -> Tensor:
    """0 where input < 0, values where input == 0, 1 where input > 0 (NaN stays NaN)."""
    _check(input, "heaviside")
    _check(values, "heaviside", "values", 2)
    if input.dtype != values.dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes")
    step = ew.where_nodes(input > 0, 1, ew.where_nodes(input < 0, 0, input))
    return ew.where_nodes(input == 0, values, step).to(input.dtype)


def signbit(input: Tensor) -> Tensor:
    """True where the sign bit is set: negative numbers and -0.0 (a NaN reads as positive)."""
    _check(input, "signbit")
    if input.dtype == dt.bool_:
        return Tensor._make(const(False, dt.bool_, tuple(input.shape)))
    if not input.dtype.is_floating_point:
        return input < 0
    # -0.0 is the zero whose reciprocal is -inf
    return (input < 0) | ((input == 0) & (input.reciprocal() < 0))


def copysign(input, other) -> Tensor:
    """|input| with the sign of other (-0.0 counts as negative)."""
    _check(input, "copysign")
    d = _float_type(input, other)
    a = input.to(d)
    neg = signbit(other.to(d)) if isinstance(other, Tensor) else \
        (other < 0 or (other == 0 and math.copysign(1.0, other) < 0))
    mag = a.abs()
    if isinstance(neg, Tensor):
        return ew.where_nodes(neg, -mag, mag)
    return -mag if neg else mag


def _nan_ignoring(pick, name: str):
    def fn(input: Tensor, other: Tensor) -> Tensor:
        _check(input, name)
        _check(other, name, "other", 2)
        d = dt.result_type(input, other)
        a, b = input.to(d), other.to(d)
        if not d.is_floating_point:
            return pick(a, b)
        return ew.where_nodes(a.isnan(), b, ew.where_nodes(b.isnan(), a, pick(a, b)))
    return named(fn, name)


fmax = _nan_ignoring(ew.maximum, "fmax")
fmin = _nan_ignoring(ew.minimum, "fmin")


def float_power(input, exponent) -> Tensor:
    """input ** exponent computed in float64."""
    if isinstance(input, Tensor):
        base = input.to(dt.float64)
        return base.pow(exponent.to(dt.float64) if isinstance(exponent, Tensor)
                        else float(exponent))
    _check(exponent, "float_power", "exponent", 2)
    return ew.rpow(exponent.to(dt.float64), float(input))


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """log(p / (1 - p)), with p clamped to [eps, 1 - eps] when eps is given."""
    _check(input, "logit")
    p = _float(input)
    if eps is not None:
        p = p.clamp(eps, 1 - eps)
    return (p / (1 - p)).log()


def sinc(input: Tensor) -> Tensor:
    """sin(pi x) / (pi x), and 1 at 0."""
    _check(input, "sinc")
    x = _float(input)
    zero = x == 0
    px = ew.where_nodes(zero, 1.0, x) * math.pi
    return ew.where_nodes(zero, 1.0, px.sin() / px)


def clamp_min(input: Tensor, min) -> Tensor:
    _check(input, "clamp_min")
    return ew.clamp(input, min=min)


def clamp_max(input: Tensor, max) -> Tensor:
    _check(input, "clamp_max")
    return ew.clamp(input, max=max)


def _infinite(sign: float, name: str):
    def fn(input: Tensor) -> Tensor:
        _check(input, name)
        if not input.dtype.is_floating_point:
            return Tensor._make(const(False, dt.bool_, tuple(input.shape)))
        return input == sign * math.inf
    return named(fn, name)


isneginf = _infinite(-1.0, "isneginf")
isposinf = _infinite(1.0, "isposinf")


def isreal(input: Tensor) -> Tensor:
    """All True: there are no complex tensors."""
    _check(input, "isreal")
    return Tensor._make(const(True, dt.bool_, tuple(input.shape)))


def positive(input: Tensor) -> Tensor:
    _check(input, "positive")
    if input.dtype == dt.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


def rsub(input: Tensor, other, *, alpha=1) -> Tensor:
    """other - alpha * input."""
    _check(input, "rsub")
    return ew.sub(other if isinstance(other, Tensor) else ew._scalar_tensor(other, input),
                  input, alpha=alpha)


def _scaled(value, tensor1: Tensor, rt: dt.DType) -> Tensor:
    """value * tensor1, the value cast to the result dtype first (0.5 is 0 for integers)."""
    if isinstance(value, Tensor):
        return value * tensor1
    v = value if rt.is_floating_point else int(value)
    return tensor1 if v == 1 else v * tensor1.to(rt)


def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    """input + value * tensor1 * tensor2."""
    _check(input, "addcmul")
    _check(tensor1, "addcmul", "tensor1", 2)
    _check(tensor2, "addcmul", "tensor2", 3)
    rt = dt.result_type(input, tensor1, tensor2)
    return input + _scaled(value, tensor1, rt) * tensor2


def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    """input + value * tensor1 / tensor2."""
    _check(input, "addcdiv")
    _check(tensor1, "addcdiv", "tensor1", 2)
    _check(tensor2, "addcdiv", "tensor2", 3)
    if not tensor1.dtype.is_floating_point and not tensor2.dtype.is_floating_point:
        raise RuntimeError("Integer division with addcdiv is no longer supported, and in a "
                           "future release addcdiv will perform a true division of tensor1 and "
                           "tensor2. The historic addcdiv behavior can be implemented as "
                           "(input + value * torch.trunc(tensor1 / tensor2)).to(input.dtype) "
                           "for integer inputs and as (input + value * tensor1 / tensor2) for "
                           "float inputs. The future addcdiv behavior is just the latter "
                           "implementation: (input + value * tensor1 / tensor2), for all dtypes.")
    rt = dt.result_type(input, tensor1, tensor2)
    return input + _scaled(value, tensor1, rt) / tensor2
