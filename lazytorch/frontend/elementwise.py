"""Elementwise ops with broadcasting and PyTorch's type promotion."""
from __future__ import annotations

import builtins
import math
import sys
from numbers import Number

import numpy as np

from .. import autograd
from ..engine.realize import REALIZED
from ..ir import dtypes as dt
from ..ir.graph import Node, const, new_node
from ..ir.ops import Op
from ..ir.sites import SITES, named, record, record_from
from . import overflow
from .tensor import Tensor, broadcast_shapes, to_device

# the ops as module constants: an Enum member lookup (Op.ADD) costs a Python call on 3.11
_ADD, _SUB, _MUL, _DIV, _IDIV, _MOD, _POW, _MAX, _MIN = (Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.IDIV,
                                                         Op.MOD, Op.POW, Op.MAX, Op.MIN)
_NEG, _ABS, _SIGMOID, _WHERE = Op.NEG, Op.ABS, Op.SIGMOID, Op.WHERE
_CAST, _EXPAND, _RESHAPE = Op.CAST, Op.EXPAND, Op.RESHAPE


def _shape_of(x) -> tuple[int, ...]:
    return x._node.shape if isinstance(x, Tensor) else ()


def _check_operand(x, name: str):
    if isinstance(x, Tensor) or isinstance(x, (Number, np.number, np.bool_)):
        return x
    if isinstance(x, np.ndarray):
        from .creation import tensor
        return tensor(x)
    raise TypeError(f"{name}(): argument 'other' must be Tensor or Number, not "
                    f"{type(x).__name__}")


def scalars_follow(*xs):
    """xs (tensors and numbers) under PyTorch's device rule for elementwise ops: 0-d CPU
    tensors combine with a tensor on another device as Python scalars do (each is copied
    there, keeping its gradient); any other mix is left for new_node to refuse."""
    where = None
    for x in xs:
        if isinstance(x, Tensor):
            d = x._node.device
            if d is not None and d != "cpu" and (where is None or x.ndim):
                where = d
    if where is None:
        return xs
    return tuple(to_device(x, where) if isinstance(x, Tensor) and not x.ndim and
                 x._node.device == "cpu" else x for x in xs)


def expand_node(n: Node, shape: tuple[int, ...]) -> Node:
    """Broadcast n to `shape` (adding leading dims by reshape, then an expand)."""
    if n.shape == shape:
        return n
    if len(n.shape) < len(shape):
        new = (1,) * (len(shape) - len(n.shape)) + n.shape
        n = new_node(_RESHAPE, (n,), new, new, n.dtype)
    if n.shape == shape:
        return n
    return new_node(_EXPAND, (n,), shape, shape, n.dtype)


def cast_node(n: Node, d: dt.DType) -> Node:
    return n if n.dtype is d else new_node(_CAST, (n,), d, n.shape, d)


def operand(x, d: dt.DType, shape: tuple[int, ...]) -> Node:
    """x (tensor or Python scalar) as a node of dtype d broadcast to shape."""
    if isinstance(x, Tensor):
        return expand_node(cast_node(x.node, d), shape)
    if isinstance(x, (bool, np.bool_)) and d.kind != "b":
        x = int(x)
    if d.kind in "iu" and isinstance(x, (float, int, np.number)):
        # a Python scalar wraps into the tensor's integer type, as in PyTorch (uint8 - 1 = 255)
        bits = 8 * d.itemsize
        x = int(x) % (1 << bits)
        if d.kind == "i" and x >= 1 << (bits - 1):
            x -= 1 << bits
    return const(x, d, shape)


def make(op: Op, srcs: tuple[Node, ...], arg, shape, dtype) -> Tensor:
    node = new_node(op, srcs, arg, tuple(shape), dtype)
    record(node)
    return _make(node)


_make = Tensor._make
_REALIZED_D = REALIZED.d   # computed nodes (by id): their tensors take the buffer on use
_WRITTEN = autograd.WRITTEN  # leaves with a pending write: computed before their next use
_BROADCAST: dict = {}  # (shape, shape) -> broadcast shape, for the pairs a program uses


_SITES = SITES.d
_SCALAR_RESULT = dt._SCALAR_RESULT
_getframe = sys._getframe


def _broadcast(sa: tuple[int, ...], sb: tuple[int, ...]) -> tuple[int, ...]:
    """broadcast_pair(sa, sb), remembered."""
    s = _BROADCAST.get((sa, sb))
    if s is None:
        s = broadcast_pair(sa, sb)
        if len(_BROADCAST) >= 4096:
            _BROADCAST.clear()
        _BROADCAST[sa, sb] = s
    return s


def _result_type(a, b) -> dt.DType:
    """dt.result_type(a, b), through the cached answers for tensors and Python scalars."""
    if isinstance(a, Tensor):
        na = a._node
        if isinstance(b, Tensor):
            nb = b._node
            if na.dtype is nb.dtype:
                return na.dtype
            return dt.pair_result_type(na.dtype, not na.shape, nb.dtype, not nb.shape)
        tb = type(b)
        if tb is float or tb is int or tb is bool:
            return dt.scalar_result_type(na.dtype, tb)
    return dt.result_type(a, b)


def broadcast_pair(sa: tuple[int, ...], sb: tuple[int, ...]) -> tuple[int, ...]:
    """The broadcast shape of two operands, with PyTorch's message for an op's operands."""
    if sa == sb:
        return tuple(sa)
    if not sb:
        return tuple(sa)
    n = max(len(sa), len(sb))
    for i in range(1, n + 1):
        da = sa[-i] if i <= len(sa) else 1
        db = sb[-i] if i <= len(sb) else 1
        if da != db and da != 1 and db != 1:
            raise RuntimeError(f"The size of tensor a ({da}) must match the size of tensor b "
                               f"({db}) at non-singleton dimension {n - i}")
    return broadcast_shapes(sa, sb)


def binary(op: Op, a, b, *, compute: dt.DType | None = None, out: dt.DType | None = None,
           name: str = "") -> Tensor:
    """a op b, broadcast, both operands in the promoted (or `compute`) dtype."""
    return _arith(op, a, b, compute, out, name, "binary")


def _arith(op: Op, a, b, compute: dt.DType | None, out: dt.DType | None, name: str,
           api: str) -> Tensor:
    """binary(), as called by the public function named `api` itself: the op's site is looked
    for from that function's caller, so its frame object is never made (the hot ops' way)."""
    if isinstance(a, Tensor):
        # the common cases without the general machinery: tensor op tensor, tensor op scalar
        na = a._node
        if a._base is not None or id(na) in _REALIZED_D or _WRITTEN:
            na = a.node       # (Tensor.node's work, only when there is some)
        da = na.dtype
        if isinstance(b, Tensor):
            nb = b._node
            if b._base is not None or id(nb) in _REALIZED_D or _WRITTEN:
                nb = b.node
            if na.device is not nb.device and na.device != nb.device:
                a, b = scalars_follow(a, b)
                na, nb = a.node, b.node
            sa, sb = na.shape, nb.shape
            shape = sa if sa == sb and type(sa) is tuple else _broadcast(sa, sb)
            db = nb.dtype
            d = compute or (da if da is db else dt.pair_result_type(da, not sa, db, not sb))
            if da is not d:
                na = new_node(_CAST, (na,), d, sa, d)
            if db is not d:
                nb = new_node(_CAST, (nb,), d, sb, d)
            if sa != shape:
                na = expand_node(na, shape)
            if sb != shape:
                nb = expand_node(nb, shape)
        else:
            tb = type(b)
            if tb is not float and tb is not int and tb is not bool:
                return _binary(op, a, b, compute, out, name)
            shape = na.shape
            if type(shape) is not tuple:
                shape = tuple(shape)
            d = compute or _SCALAR_RESULT.get((da, tb)) or dt.scalar_result_type(da, tb)
            if da is not d:
                na = new_node(_CAST, (na,), d, shape, d)
            nb = const(b, d, shape) if tb is float and d.kind == "f" else operand(b, d, shape)
        node = new_node(op, (na, nb), None, shape, out or d)
        if id(node) not in _SITES:
            record_from(node, _getframe(2), api)  # record(node), without the frames made
        return _make(node)
    return _binary(op, a, b, compute, out, name)


def _binary(op: Op, a, b, compute: dt.DType | None, out: dt.DType | None, name: str) -> Tensor:
    """binary(), the general case: numpy operands, a scalar on the left, ..."""
    a, b = scalars_follow(_check_operand(a, name), _check_operand(b, name))
    shape = broadcast_pair(_shape_of(a), _shape_of(b))
    d = compute or _result_type(a, b)
    srcs = (operand(a, d, shape), operand(b, d, shape))
    return make(op, srcs, None, shape, out or d)


def unary(op: Op, x: Tensor, *, d: dt.DType | None = None) -> Tensor:
    n = x.node
    d = d or n.dtype
    shape = n.shape if type(n.shape) is tuple else tuple(n.shape)
    src = n if n.dtype is d else new_node(_CAST, (n,), d, n.shape, d)
    node = new_node(op, (src,), None, shape, d)
    record(node)
    return _make(node)


def _floating(x: Tensor) -> dt.DType:
    d = x._node.dtype
    return d if d.kind == "f" else dt.get_default_dtype()


def float_unary(op: Op):
    """exp, log, sin, ...: integer inputs are computed in the default float dtype."""
    def fn(self: Tensor) -> Tensor:
        return unary(op, self, d=_floating(self))
    return named(fn, op.name.lower())


def _no_bool(self: Tensor, what: str) -> None:
    if self.dtype == dt.bool_:
        raise RuntimeError(f"{what}, the `-` operator, on a bool tensor is not supported. If "
                           "you are trying to invert a mask, use the `~` or `logical_not()` "
                           "operator instead.")


# ------------------------------------------------------------------------------- arithmetic
def add(self, other, *, alpha=1) -> Tensor:
    if alpha != 1:
        other = mul(other, alpha)
    return _arith(_ADD, self, other, None, None, "add", "add")


def _is_bool(x) -> bool:
    return x._node.dtype is _BOOL if isinstance(x, Tensor) else isinstance(x, (bool, np.bool_))


_BOOL = dt.bool_


def sub(self, other, *, alpha=1) -> Tensor:
    self_bool, other_bool = _is_bool(self), _is_bool(other)
    if self_bool and other_bool:
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not "
                           "supported. Use the `^` or `logical_xor()` operator instead.")
    if self_bool or other_bool:
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not "
                           "supported. If you are trying to invert a mask, use the `~` or "
                           "`logical_not()` operator instead.")
    if alpha != 1:
        other = mul(other, alpha)
    return _arith(_SUB, self, other, None, None, "sub", "sub")


def rsub(self, other, *, alpha=1) -> Tensor:
    return sub(other, self * alpha if alpha != 1 else self)


def mul(self, other) -> Tensor:
    return _arith(_MUL, self, other, None, None, "mul", "mul")


def _zero_divisor(self, other) -> None:
    """Integer division by a Python zero fails at the call, as in PyTorch (a zero inside a
    tensor is found when the kernels run, and named with the user's line then)."""
    if (type(other) is int or type(other) is bool) and not other and \
            not _result_type(self, other).is_floating_point:
        raise RuntimeError("ZeroDivisionError")


def _zero_gradient(q: Tensor, *inputs) -> Tensor:
    """q's value with a zero gradient to each input that requires grad: PyTorch's rounding
    divisions have one, where floor_divide (`//`) has no derivative at all. Each input joins
    through where(true, q, input), which the simplifier folds away in the forward pass."""
    node = q.node
    for x in inputs:
        if isinstance(x, Tensor) and x.requires_grad:
            yes = const(True, dt.bool_, node.shape)
            node = new_node(_WHERE, (yes, node, operand(x, node.dtype, node.shape)), None,
                            node.shape, node.dtype)
    return q if node is q.node else make(node.op, node.srcs, None, node.shape, node.dtype)


def div(self, other, *, rounding_mode=None) -> Tensor:
    if rounding_mode == "floor":
        if not any(isinstance(x, Tensor) and x.requires_grad for x in (self, other)):
            return floor_divide(self, other)
        plain = [x.detach() if isinstance(x, Tensor) else x for x in (self, other)]
        return _zero_gradient(floor_divide(*plain), self, other)
    d = _result_type(self, other)
    if rounding_mode == "trunc":
        if d.is_floating_point:
            return binary(Op.DIV, self, other, name="div").trunc()
        _zero_divisor(self, other)
        q = binary(Op.IDIV, self, other, name="div")
        r = binary(Op.MOD, self, other, name="div")
        # floor toward zero: add one where the signs differ and there is a remainder
        fix = where_nodes((r != 0) & ((self < 0) ^ (other < 0)), 1, 0).to(d)
        return q + fix
    if rounding_mode is not None:
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' "
                           f"but found '{rounding_mode}'")
    f = d if d.is_floating_point else dt.get_default_dtype()
    return _arith(_DIV, self, other, f, None, "div", "div")


def rdiv(self, other) -> Tensor:
    """other / self: a scalar numerator is divided in floating point unwrapped (-3 / uint8)."""
    return div(_check_operand(other, "div"), self)


def _scalar_tensor(v, like: Tensor) -> Tensor:
    """A Python scalar as a 0-d tensor, for reversed ops (scalar on the left)."""
    d = dt.bool_ if isinstance(v, (bool, np.bool_)) else _result_type(like, v)
    return Tensor._make(operand(v, d, ()))


def floor_divide(self, other) -> Tensor:
    _zero_divisor(self, other)
    return _arith(_IDIV, self, other, None, None, "floor_divide", "floor_divide")


def remainder(self, other) -> Tensor:
    _zero_divisor(self, other)
    return _arith(_MOD, self, other, None, None, "remainder", "remainder")


def fmod(self, other) -> Tensor:
    d = _result_type(self, other)
    if d.is_floating_point:
        q = binary(Op.DIV, self, other, name="fmod").trunc()
        return self - q * other
    _zero_divisor(self, other)
    r = binary(Op.MOD, self, other, name="fmod")
    return where_nodes((r != 0) & ((self < 0) ^ (other < 0)), r - other, r)


def pow(self, exponent) -> Tensor:
    if (isinstance(self, Tensor) and not self.dtype.is_floating_point
            and isinstance(exponent, (int, np.integer)) and not isinstance(exponent, bool)
            and exponent < 0):
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    base_t = self if isinstance(self, Tensor) else None
    if base_t is None:
        return binary(Op.POW, _scalar_tensor(self, exponent), exponent, name="pow")
    return binary(_POW, self, exponent, name="pow")


def rpow(self, other) -> Tensor:
    return binary(Op.POW, _scalar_tensor(other, self), self, name="pow")


def neg(self) -> Tensor:
    _no_bool(self, "Negation")
    return unary(_NEG, self)


def not_for_bool(self: Tensor, kernel: str) -> None:
    """PyTorch has no bool kernel for abs, floor, ...: the same error here."""
    if self.dtype is dt.bool_:
        raise NotImplementedError(f'"{kernel}" not implemented for \'Bool\'')


def abs(self) -> Tensor:
    not_for_bool(self, "abs_cpu")
    return unary(_ABS, self)


def sign(self) -> Tensor:
    if self.dtype == dt.bool_:
        return self
    out = unary(Op.SIGN, self)
    if self.dtype.is_floating_point:  # torch.sign(nan) is 0
        out = where_nodes(isnan(self), 0, out)
    return out


def _round_like(op: Op):
    def fn(self: Tensor, **kw) -> Tensor:
        not_for_bool(self, f"{op.name.lower()}_vml_cpu")
        if not self.dtype.is_floating_point:
            return self.clone()
        return unary(op, self)
    return named(fn, op.name.lower())


def round(self, decimals: int = 0) -> Tensor:
    not_for_bool(self, "round_vml_cpu")
    if not self.dtype.is_floating_point:
        return self.clone()
    if decimals == 0:
        return unary(Op.ROUND, self)
    scale = 10.0 ** decimals
    return unary(Op.ROUND, self * scale) / scale


def reciprocal(self) -> Tensor:
    return unary(Op.RECIP, self, d=_floating(self))


def square(self) -> Tensor:
    return mul(self, self) if self.dtype != dt.bool_ else self.to(dt.int64) * self.to(dt.int64)


def relu(self) -> Tensor:
    if self.dtype == dt.bool_:
        raise RuntimeError('"clamp_min_cpu" not implemented for \'Bool\'')
    return _arith(_MAX, self, 0, self.dtype, None, "relu", "relu")


def log10(self) -> Tensor:
    return self.log() * (1 / math.log(10))


def clamp(self, min=None, max=None) -> Tensor:
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    d = dt.result_type(self, *(v for v in (min, max) if v is not None))
    for v in (min, max):
        if v is not None and not isinstance(v, Tensor):
            overflow.scalar(v, d)
    out = self.to(d)
    # built from where (not max/min against a constant, as relu is): at a bound the input
    # keeps its gradient, and NaN stays NaN, as PyTorch's clamp does
    if min is not None:
        out = where_nodes(lt(out, min), min, out).to(d)
    if max is not None:
        out = where_nodes(gt(out, max), max, out).to(d)
    return out


def maximum(self, other) -> Tensor:
    return _arith(_MAX, self, other, None, None, "maximum", "maximum")


def minimum(self, other) -> Tensor:
    return _arith(_MIN, self, other, None, None, "minimum", "minimum")


def where_nodes(cond, a, b) -> Tensor:
    """torch.where(cond, a, b) with broadcasting and promotion of a and b."""
    if not isinstance(cond, Tensor):
        raise TypeError("where(): argument 'condition' must be Tensor")
    if cond.dtype != dt.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor "
                           f"with dtype {cond.dtype.name.capitalize()}")
    cond, a, b = scalars_follow(cond, a, b)
    shape = broadcast_pair(broadcast_pair(cond.shape, _shape_of(a)), _shape_of(b))
    d = _result_type(a, b)
    srcs = (expand_node(cond.node, shape), operand(a, d, shape), operand(b, d, shape))
    return make(_WHERE, srcs, None, shape, d)


# ------------------------------------------------------------------------------ comparisons
def _cmp(op: Op, swap: bool = False):
    opname = op.name.lower()
    api = {Op.CMPEQ: "eq", Op.CMPNE: "ne", Op.CMPLT: "gt" if swap else "lt",
           Op.CMPLE: "ge" if swap else "le"}[op]

    def fn(self, other) -> Tensor:
        other = _check_operand(other, opname)
        if swap:
            return _arith(op, other, self, None, _BOOL, opname, api)
        return _arith(op, self, other, None, _BOOL, opname, api)
    return named(fn, api)


eq, ne, lt, le = (_cmp(Op.CMPEQ), _cmp(Op.CMPNE), _cmp(Op.CMPLT), _cmp(Op.CMPLE))
gt, ge = _cmp(Op.CMPLT, swap=True), _cmp(Op.CMPLE, swap=True)


def _logical(op: Op):
    def fn(self, other) -> Tensor:
        a = self.bool() if isinstance(self, Tensor) else bool(self)
        b = other.bool() if isinstance(other, Tensor) else bool(other)
        return binary(op, a, b, compute=dt.bool_, name=f"logical_{op.name.lower()}")
    return named(fn, f"logical_{op.name.lower()}")


logical_and, logical_or, logical_xor = _logical(Op.AND), _logical(Op.OR), _logical(Op.XOR)


def logical_not(self) -> Tensor:
    return unary(Op.NOT, self.bool())


def _bitwise(op: Op, name: str):
    def fn(self, other) -> Tensor:
        for x in (self, other):
            d = x.dtype if isinstance(x, Tensor) else dt.result_type(x)
            if d.is_floating_point:
                raise RuntimeError(f'"{name}_cpu" not implemented for \'Float\'')
        return binary(op, self, other, name=name)
    return named(fn, name)


bitwise_and = _bitwise(Op.AND, "bitwise_and")
bitwise_or = _bitwise(Op.OR, "bitwise_or")
bitwise_xor = _bitwise(Op.XOR, "bitwise_xor")


def bitwise_not(self) -> Tensor:
    if self.dtype.is_floating_point:
        raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type "
                        "tensors")
    if self.dtype == dt.bool_:
        return unary(Op.NOT, self)
    return binary(Op.XOR, self, -1, compute=self.dtype)


def _test(op: Op):
    def fn(self: Tensor) -> Tensor:
        if not self.dtype.is_floating_point:
            return Tensor._make(const(False, dt.bool_, self.shape))
        return make(op, (self.node,), None, self.shape, dt.bool_)
    return named(fn, op.name.lower())


isnan, isinf = _test(Op.ISNAN), _test(Op.ISINF)


def isfinite(self) -> Tensor:
    if not self.dtype.is_floating_point:
        return binary(Op.CMPEQ, self, self, out=dt.bool_)
    return logical_not(isnan(self) | isinf(self))


def nan_to_num(self, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    if not self.dtype.is_floating_point:
        return self.clone()
    info = dt.finfo(self.dtype)
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    out = where_nodes(isnan(self), nan, self).to(self.dtype)
    out = where_nodes(out == math.inf, posinf, out).to(self.dtype)
    return where_nodes(out == -math.inf, neginf, out).to(self.dtype)


def lerp(self, end, weight) -> Tensor:
    if isinstance(end, Tensor) and end.dtype != self.dtype:
        raise RuntimeError(f"expected dtype {self.dtype.name} for `end` but got dtype "
                           f"{end.dtype.name}")
    diff = end - self
    # torch's two-sided form: exact at both ends, and no inf - inf when an end is infinite
    if isinstance(weight, Tensor):
        return where_nodes(weight.abs() < 0.5, self + weight * diff, end - diff * (1 - weight))
    return self + weight * diff if builtins.abs(weight) < 0.5 else end - diff * (1 - weight)


def sigmoid(self) -> Tensor:
    return unary(_SIGMOID, self, d=_floating(self))
