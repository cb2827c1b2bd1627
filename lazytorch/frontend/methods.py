"""Attach the op modules' functions to Tensor as methods and operators."""
from __future__ import annotations

from .. import autograd as _autograd
from ..ir import dtypes as _dt
from ..ir.ops import Op
from ..ir.sites import named
from . import elementwise as ew
from . import indexing, joining, overflow  # noqa: F401  (attach their methods)
from . import reduce as rd
from . import views as vw
from .tensor import Tensor

_FLOAT_UNARY = {"exp": Op.EXP, "exp2": Op.EXP2, "expm1": Op.EXPM1, "log": Op.LOG,
                "log2": Op.LOG2, "log1p": Op.LOG1P, "sqrt": Op.SQRT, "rsqrt": Op.RSQRT,
                "sin": Op.SIN, "cos": Op.COS, "tan": Op.TAN, "tanh": Op.TANH, "erf": Op.ERF,
                "asin": Op.ASIN, "acos": Op.ACOS, "atan": Op.ATAN, "sinh": Op.SINH,
                "cosh": Op.COSH, "asinh": Op.ASINH, "acosh": Op.ACOSH, "atanh": Op.ATANH}
for _name, _op in _FLOAT_UNARY.items():
    setattr(Tensor, _name, ew.float_unary(_op))
for _name, _op in {"floor": Op.FLOOR, "ceil": Op.CEIL, "trunc": Op.TRUNC}.items():
    setattr(Tensor, _name, ew._round_like(_op))

_PLAIN = dict(
    add=ew.add, sub=ew.sub, subtract=ew.sub, mul=ew.mul, multiply=ew.mul, div=ew.div,
    divide=ew.div, true_divide=ew.div, floor_divide=ew.floor_divide, remainder=ew.remainder,
    fmod=ew.fmod, pow=ew.pow, neg=ew.neg, negative=ew.neg, abs=ew.abs, absolute=ew.abs,
    sign=ew.sign, round=ew.round, reciprocal=ew.reciprocal, square=ew.square, relu=ew.relu,
    log10=ew.log10, clamp=ew.clamp, clip=ew.clamp, maximum=ew.maximum, minimum=ew.minimum,
    eq=ew.eq, ne=ew.ne, lt=ew.lt, le=ew.le, gt=ew.gt, ge=ew.ge, greater=ew.gt, less=ew.lt,
    greater_equal=ew.ge, less_equal=ew.le, not_equal=ew.ne,
    logical_and=ew.logical_and, logical_or=ew.logical_or, logical_xor=ew.logical_xor,
    logical_not=ew.logical_not, bitwise_and=ew.bitwise_and, bitwise_or=ew.bitwise_or,
    bitwise_xor=ew.bitwise_xor, bitwise_not=ew.bitwise_not, isnan=ew.isnan, isinf=ew.isinf,
    isfinite=ew.isfinite, nan_to_num=ew.nan_to_num, lerp=ew.lerp, sigmoid=ew.sigmoid,
    sum=rd.sum, mean=rd.mean, prod=rd.prod, max=rd.max, min=rd.min, amax=rd.amax, amin=rd.amin,
    argmax=rd.argmax, argmin=rd.argmin, var=rd.var, std=rd.std, logsumexp=rd.logsumexp,
    all=rd.all, any=rd.any, cumsum=rd.cumsum, cumprod=rd.cumprod, norm=rd.norm,
    reshape=vw.reshape, view=vw.view, view_as=vw.view_as, reshape_as=vw.reshape_as,
    flatten=vw.flatten, unflatten=vw.unflatten, squeeze=vw.squeeze, unsqueeze=vw.unsqueeze,
    permute=vw.permute, transpose=vw.transpose, swapaxes=vw.transpose, swapdims=vw.transpose,
    t=vw.t, movedim=vw.movedim, moveaxis=vw.movedim, expand=vw.expand, expand_as=vw.expand_as,
    narrow=vw.narrow, flip=vw.flip, split=vw.split, chunk=vw.chunk, unbind=vw.unbind,
    select=vw.select, unfold=vw.unfold,
)
for _name, _fn in _PLAIN.items():
    setattr(Tensor, _name, _fn)

Tensor.T = property(vw.T)
Tensor.mT = property(vw.mT)


def _where(self, condition, other):
    return ew.where_nodes(condition, self, other)


Tensor.where = _where

# operators: the op functions themselves (a wrapper would cost a call per op)
Tensor.__add__ = Tensor.__radd__ = ew.add
Tensor.__sub__ = ew.sub
Tensor.__rsub__ = lambda a, b: ew.sub(ew._scalar_tensor(b, a), a)
Tensor.__mul__ = Tensor.__rmul__ = ew.mul
Tensor.__truediv__ = ew.div
Tensor.__rtruediv__ = ew.rdiv
Tensor.__floordiv__ = ew.floor_divide
Tensor.__rfloordiv__ = lambda a, b: ew.floor_divide(ew._scalar_tensor(b, a), a)
Tensor.__mod__ = ew.remainder
Tensor.__rmod__ = lambda a, b: ew.remainder(ew._scalar_tensor(b, a), a)
Tensor.__pow__ = ew.pow
Tensor.__rpow__ = ew.rpow
Tensor.__neg__ = ew.neg
Tensor.__pos__ = lambda a: a
Tensor.__abs__ = ew.abs
Tensor.__invert__ = ew.bitwise_not
Tensor.__and__ = Tensor.__rand__ = ew.bitwise_and
Tensor.__or__ = Tensor.__ror__ = ew.bitwise_or
Tensor.__xor__ = Tensor.__rxor__ = ew.bitwise_xor
Tensor.__eq__ = ew.eq
Tensor.__ne__ = ew.ne
Tensor.__lt__ = ew.lt
Tensor.__le__ = ew.le
Tensor.__gt__ = ew.gt
Tensor.__ge__ = ew.ge
Tensor.__hash__ = lambda a: id(a)


# in-place forms: compute out of place, then rebind (writes through views)
def _inplace(fn):
    def method(self, *args, **kwargs):
        out = fn(self, *args, **kwargs)
        _dt.check_inplace_cast(out.dtype, self.dtype)
        self._assign(out.node)
        return self
    return named(method, getattr(fn, "__name__", "inplace").strip("_") + "_")


for _name in ("add", "sub", "mul", "div", "clamp", "pow", "floor_divide", "remainder", "neg",
              "abs", "exp", "log", "sqrt", "sigmoid", "tanh", "relu", "clip", "fmod", "sign",
              "floor", "ceil", "round", "trunc", "reciprocal", "square", "lerp", "nan_to_num",
              "logical_not", "sin", "cos"):
    setattr(Tensor, _name + "_", _inplace(getattr(Tensor, _name)))

Tensor.__iadd__ = _inplace(lambda a, b: ew.add(a, b))
Tensor.__isub__ = _inplace(lambda a, b: ew.sub(a, b))
Tensor.__imul__ = _inplace(lambda a, b: ew.mul(a, b))
Tensor.__itruediv__ = _inplace(lambda a, b: ew.div(a, b))
Tensor.__ifloordiv__ = _inplace(lambda a, b: ew.floor_divide(a, b))
Tensor.__imod__ = _inplace(lambda a, b: ew.remainder(a, b))
Tensor.__ipow__ = _inplace(lambda a, b: ew.pow(a, b))
Tensor.__iand__ = _inplace(lambda a, b: ew.bitwise_and(a, b))
Tensor.__ior__ = _inplace(lambda a, b: ew.bitwise_or(a, b))
Tensor.__ixor__ = _inplace(lambda a, b: ew.bitwise_xor(a, b))


def zero_(self):
    from ..ir.graph import const
    self._assign(const(0, self.dtype, self.shape, self.node.device))
    return self


def fill_(self, value):
    from ..ir.graph import const
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor "
                               f"with {value.ndim} dimensions.")
        value = _on_device_of(self, value)
        self._assign(ew.expand_node(ew.cast_node(value.node, self.dtype), self.shape))
    else:
        self._assign(const(overflow.scalar(value, self.dtype), self.dtype, self.shape,
                           self.node.device))
    return self


def _on_device_of(self, src):
    """src's value on self's device (copied there when it is on another, as copy_ does)."""
    from .tensor import device_name, to_device
    where = device_name(self)
    return src if src._node.device in (None, where) else to_device(src, where)


def copy_(self, src, non_blocking: bool = False):
    if not isinstance(src, Tensor):
        from .creation import tensor
        src = tensor(src, device=self.device)
    src = _on_device_of(self, src)
    from .tensor import broadcast_shapes
    if broadcast_shapes(self.shape, src.shape) != tuple(self.shape):
        raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast "
                           f"shape {list(broadcast_shapes(self.shape, src.shape))}")
    self._assign(ew.expand_node(ew.cast_node(src.node, self.dtype), tuple(self.shape)))
    return self


Tensor.zero_ = zero_
Tensor.fill_ = fill_
Tensor.copy_ = copy_


# matrix products (lazytorch/linalg.py)
def _attach_linalg() -> None:
    from .. import linalg as la

    for name in ("matmul", "mm", "bmm", "mv", "dot", "vdot", "outer", "ger", "addmm",
                 "baddbmm", "addmv", "addr", "addbmm", "inner", "matrix_power"):
        setattr(Tensor, name, getattr(la, name))
    Tensor.__matmul__ = lambda a, b: la.matmul(a, b) if isinstance(b, Tensor) else NotImplemented
    Tensor.__rmatmul__ = lambda a, b: la.matmul(b, a) if isinstance(b, Tensor) else NotImplemented
    Tensor.addmm_ = _inplace(la.addmm)
    Tensor.baddbmm_ = _inplace(la.baddbmm)
    Tensor.addmv_ = _inplace(la.addmv)
    Tensor.addr_ = _inplace(la.addr)
    Tensor.addbmm_ = _inplace(la.addbmm)


_attach_linalg()


# softmax family and in-place random fills, as Tensor methods (and torch.* below)
def _softmax(self, dim=None, dtype=None):
    from ..nn.functional import softmax
    return softmax(self, dim, dtype=dtype)


def _log_softmax(self, dim=None, dtype=None):
    from ..nn.functional import log_softmax
    return log_softmax(self, dim, dtype=dtype)


def _random_fill(draw):
    def fill(self, *args, generator=None, **kwargs):
        import numpy as np

        from ..runtime import memory
        from .creation import _rng
        arr = np.asarray(draw(_rng(generator), tuple(self.shape), *args, **kwargs))
        from ..autograd import no_grad
        with no_grad():
            self._assign(memory.buffer_node(_dt.astype(arr, self.dtype), self.dtype,
                                            device=self.node.device or "cpu"))
        return self
    return fill


Tensor.softmax = _softmax
Tensor.log_softmax = _log_softmax
Tensor.uniform_ = _random_fill(lambda r, s, a=0.0, b=1.0: r.uniform(a, b, s))
Tensor.normal_ = _random_fill(lambda r, s, mean=0.0, std=1.0: r.normal(mean, std, s))
Tensor.bernoulli_ = _random_fill(lambda r, s, p=0.5: r.random(s) < p)
Tensor.exponential_ = _random_fill(lambda r, s, lambd=1.0: r.exponential(1.0 / lambd, s))
Tensor.geometric_ = _random_fill(lambda r, s, p: r.geometric(p, s))
Tensor.cauchy_ = _random_fill(lambda r, s, median=0.0, sigma=1.0:
                              median + sigma * r.standard_cauchy(s))
Tensor.log_normal_ = _random_fill(lambda r, s, mean=1.0, std=2.0: r.lognormal(mean, std, s))


def _random_(self, from_=None, to=None, *, generator=None, **kw):
    """Integers drawn uniformly from [from, to) (random_(to): [0, to); random_(): [0, 2^m]
    for a float type with an m-bit significand, [0, max] for an integer type)."""
    import numpy as np
    from_ = kw.pop("from", from_)
    if to is None and from_ is not None:
        from_, to = 0, from_
    if from_ is None:
        from_ = 0
        to = (1 << (np.finfo(self.dtype.np).nmant + 1)) + 1 if self.dtype.is_floating_point \
            else (2 if self.dtype == _dt.bool_ else int(np.iinfo(self.dtype.np).max) + 1)
    if from_ >= to:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={from_} "
                           f">= to={to}")
    return _random_fill(lambda r, s: r.integers(from_, to, s))(self, generator=generator)


Tensor.random_ = _random_


# sorting, comparisons and sampling (lazytorch/frontend/sorting.py, comparison.py, sampling.py)
def _attach_sorting() -> None:
    from . import comparison, sampling, sorting

    for mod in (sorting, comparison, sampling):
        for name in mod.METHODS:
            setattr(Tensor, name, getattr(mod, name))


_attach_sorting()


# pointwise functions beyond the primitives (lazytorch/frontend/pointwise.py), and their in-place
# forms
def _attach_pointwise() -> None:
    from . import pointwise

    for name in pointwise.METHODS:
        setattr(Tensor, name, getattr(pointwise, name))
    for name in pointwise.INPLACE:
        setattr(Tensor, name + "_", _inplace(getattr(pointwise, name)))


# structure, placement, statistics and distances (structure.py, placement.py, statistics.py,
# norms.py)
def _attach_structure() -> None:
    from . import norms, placement, statistics, structure

    for mod in (structure, statistics, placement):
        for name in mod.METHODS:
            setattr(Tensor, name, getattr(mod, name))
    Tensor.dist = norms.dist
    Tensor.renorm = norms.renorm
    Tensor.renorm_ = _inplace(norms.renorm)


# Tensor.new_* and other constructors as methods (lazytorch/frontend/constructors.py)
def _attach_constructors() -> None:
    from . import constructors

    for name, fn in constructors.METHODS.items():
        setattr(Tensor, name, fn)


_attach_constructors()

# gradient hooks (lazytorch/autograd/__init__.py)
Tensor.register_hook = lambda self, hook: _autograd.register_hook(self, hook)

# small Tensor facts, and the in-place forms of ops that have none above
def _stride(self, dim: int | None = None):
    """The strides (in elements) of self's layout in the storage it views; a tensor that
    owns its data is row-major."""
    from .tensor import _canon_dim
    lay = vw.layout(self)
    st = lay[1] if lay is not None else vw._contiguous_strides(self.shape)
    return tuple(st) if dim is None else st[_canon_dim(dim, self.ndim)]


def _is_nonzero(self) -> bool:
    if self.numel() != 1:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous" if
                           self.numel() == 0 else
                           "Boolean value of Tensor with more than one value is ambiguous")
    return bool(self.item())


def _is_same_size(self, other) -> bool:
    return tuple(self.shape) == tuple(other.shape)


Tensor.stride = _stride
Tensor.itemsize = property(lambda self: self.element_size())
Tensor.is_sparse = Tensor.is_quantized = Tensor.is_meta = False
Tensor.is_cpu = True
Tensor.is_complex = lambda self: False
Tensor.is_signed = lambda self: self.dtype.kind in "fi"
Tensor.is_nonzero = _is_nonzero
Tensor.is_same_size = _is_same_size
Tensor.get_device = lambda self: -1
Tensor.broadcast_to = vw.expand
for _name in ("logical_and", "logical_or", "logical_xor", "cumsum", "cumprod", "eq", "ne", "lt",
              "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal",
              "divide", "multiply", "subtract", "true_divide", "negative", "absolute", "log10",
              "log1p", "log2", "exp2", "expm1", "rsqrt", "tan", "erf", "bitwise_and",
              "bitwise_or", "bitwise_xor", "bitwise_not"):
    setattr(Tensor, _name + "_", _inplace(getattr(Tensor, _name)))


_attach_structure()


_attach_pointwise()
