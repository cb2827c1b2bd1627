"""The torch.* functions that mirror Tensor methods (torch.exp(x), torch.cat([...]), ...)."""
from __future__ import annotations

from . import linalg as la
from .frontend import elementwise as ew
from .frontend import indexing as ix
from .frontend import joining as jn
from .frontend import reduce as rd
from .frontend import views as vw
from .frontend.tensor import Tensor
from .ir.sites import named


def _method(name: str):
    def fn(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}(): argument 'input' must be Tensor, not "
                            f"{type(input).__name__}")
        return getattr(input, name)(*args, **kwargs)
    return named(fn, name)


_METHODS = """abs sign exp exp2 log log2 log10 log1p expm1 sqrt rsqrt sin cos tan tanh sigmoid
relu erf floor ceil round trunc reciprocal square clamp clip neg negative isnan isinf isfinite
nan_to_num lerp logical_not eq ne lt le gt ge greater less greater_equal less_equal not_equal
add sub subtract mul multiply div divide true_divide floor_divide remainder fmod pow
sum mean prod max min amax amin argmax argmin var std logsumexp all any cumsum cumprod norm
reshape flatten unflatten squeeze unsqueeze permute transpose swapaxes movedim t narrow flip
split chunk unbind select bitwise_not absolute matrix_power is_complex is_nonzero is_signed
is_same_size""".split()

__all__ = ["where", "maximum", "minimum", "logical_and", "logical_or", "logical_xor",
           "bitwise_and", "bitwise_or", "bitwise_xor", "broadcast_to", "var_mean", "std_mean"]
for _n in _METHODS:
    globals()[_n] = _method(_n)
    __all__.append(_n)


def where(condition, input=None, other=None):
    if input is None and other is None:
        raise NotImplementedError("torch.where(condition) with one argument is not supported; "
                                  "use torch.nonzero(condition, as_tuple=True)")
    return ew.where_nodes(condition, input, other)


maximum, minimum = ew.maximum, ew.minimum
logical_and, logical_or, logical_xor = ew.logical_and, ew.logical_or, ew.logical_xor
bitwise_and, bitwise_or, bitwise_xor = ew.bitwise_and, ew.bitwise_or, ew.bitwise_xor


def broadcast_to(input: Tensor, size) -> Tensor:
    return vw.expand(input, size)


def var_mean(input: Tensor, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return (rd.var(input, dim, unbiased, keepdim, correction=correction),
            rd.mean(input, dim, keepdim))


def std_mean(input: Tensor, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return (rd.std(input, dim, unbiased, keepdim, correction=correction),
            rd.mean(input, dim, keepdim))


# matrix products
matmul, mm, bmm, mv, dot, vdot = la.matmul, la.mm, la.bmm, la.mv, la.dot, la.vdot
outer, ger, addmm, baddbmm = la.outer, la.ger, la.addmm, la.baddbmm
tensordot, einsum = la.tensordot, la.einsum
addmv, addr, addbmm, inner, chain_matmul = la.addmv, la.addr, la.addbmm, la.inner, la.chain_matmul
__all__ += la.__all__

# indexing and joining (the modules also attach the Tensor methods)
for _m in (ix, jn):
    for _n in _m.__all__:
        globals()[_n] = getattr(_m, _n)
    __all__ += _m.__all__


def softmax(input, dim=None, dtype=None):
    return input.softmax(dim, dtype)


def log_softmax(input, dim=None, dtype=None):
    return input.log_softmax(dim, dtype)


__all__ += ["softmax", "log_softmax"]


def pow(input, exponent):
    """torch.pow(tensor, exponent) or torch.pow(scalar, tensor)."""
    from .frontend.tensor import Tensor
    if isinstance(input, Tensor):
        return input.pow(exponent)
    if isinstance(exponent, Tensor):
        return ew.rpow(exponent, input)
    raise TypeError("pow(): at least one of 'input' and 'exponent' must be a Tensor")


# sorting, comparisons, sampling, pointwise, structure and statistics functions
from .frontend import comparison as _cmp  # noqa: E402
from .frontend import pointwise as _pw  # noqa: E402
from .frontend import sampling as _smp  # noqa: E402
from .frontend import sorting as _srt  # noqa: E402
from .frontend import statistics as _sta  # noqa: E402
from .frontend import structure as _st  # noqa: E402

for _m in (_srt, _cmp, _smp, _pw, _st, _sta):
    for _n in _m.__all__:
        globals()[_n] = getattr(_m, _n)
    __all__ += _m.__all__

from .frontend import constructors as _ctor  # noqa: E402
from .frontend import placement as _plc  # noqa: E402
from .frontend.norms import cdist, dist, renorm  # noqa: E402

for _m in (_ctor, _plc):
    for _n in _m.__all__:
        globals()[_n] = getattr(_m, _n)
    __all__ += _m.__all__
__all__ += ["cdist", "dist", "renorm"]
