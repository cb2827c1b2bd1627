"""dtypes and PyTorch's type-promotion rules."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class DType:
    """A dtype; each one is a singleton, so equality and hashing are identity."""

    name: str        # torch's name: float32, int64, ...
    short: str       # the IR printer's name: f32, i64, ...
    np: type         # numpy scalar type
    kind: str        # "b" bool, "i" signed int, "u" unsigned int, "f" float
    priority: int    # rank inside its kind for promotion

    @property
    def itemsize(self) -> int:
        return np.dtype(self.np).itemsize

    @property
    def is_floating_point(self) -> bool:
        return self.kind == "f"

    @property
    def is_signed(self) -> bool:
        return self.kind in "if"

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self):
        return (by_name, (self.name,))


class _LazyNumpyDType(DType):
    """A dtype whose numpy scalar type comes from the ml_dtypes package, imported the first
    time the type is asked for: programs that never use the dtype never import it."""

    __slots__ = ()

    @property
    def np(self) -> type:
        t = DType.np.__get__(self)
        if isinstance(t, str):
            import ml_dtypes
            t = getattr(ml_dtypes, t)
            DType.np.__set__(self, t)
            _BY_NP[np.dtype(t)] = self
        return t

    @np.setter
    def np(self, value) -> None:   # the dataclass's __init__ sets the ml_dtypes name
        DType.np.__set__(self, value)


bool_ = DType("bool", "b8", np.bool_, "b", 0)
uint8 = DType("uint8", "u8", np.uint8, "u", 1)
int8 = DType("int8", "i8", np.int8, "i", 1)
int16 = DType("int16", "i16", np.int16, "i", 2)
int32 = DType("int32", "i32", np.int32, "i", 3)
int64 = DType("int64", "i64", np.int64, "i", 4)
float16 = DType("float16", "f16", np.float16, "f", 1)
float32 = DType("float32", "f32", np.float32, "f", 2)
float64 = DType("float64", "f64", np.float64, "f", 3)
# stored as the upper half of a float32; computed in float32 and rounded to nearest even
bfloat16 = _LazyNumpyDType("bfloat16", "bf16", "bfloat16", "f", 1)

ALL = (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update({"bool": bool_, "half": float16, "float": float32, "double": float64,
                 "int": int32, "long": int64, "short": int16})
# numpy dtype -> dtype; bfloat16's joins when ml_dtypes is imported (no array has it before)
_BY_NP = {np.dtype(d.np): d for d in ALL if d is not bfloat16}


def by_name(name: str) -> DType:
    return _BY_NAME[name]


def _lookup(npd: np.dtype) -> DType | None:
    d = _BY_NP.get(npd)
    if d is None and npd.kind == "V" and npd.name == "bfloat16" and npd.type is bfloat16.np:
        d = bfloat16    # an ml_dtypes array made before lazytorch first needed the type
    return d


def from_numpy(dt) -> DType:
    """The lazytorch dtype of a numpy dtype; raises TypeError for ones we lack."""
    d = _lookup(np.dtype(dt))
    if d is None:
        raise TypeError(f"can't convert np.ndarray of type numpy.{np.dtype(dt)}. The only "
                        "supported types are: float64, float32, float16, int64, int32, "
                        "int16, int8, uint8, and bool.")
    return d


def is_float_array(a: np.ndarray) -> bool:
    """Whether a numpy array holds floating-point values (numpy's or bfloat16)."""
    k = a.dtype.kind
    return k == "f" or (k == "V" and _lookup(a.dtype) is bfloat16)


def astype(a, d: DType) -> np.ndarray:
    """A new array of dtype d holding the values of `a` (an array or a scalar), converted as
    PyTorch converts bfloat16: through float32, both ways (a double or an integer is rounded
    to float first, then to bfloat16; a bfloat16 becomes an integer as its float does)."""
    a = np.asarray(a)
    k = a.dtype.kind
    with np.errstate(invalid="ignore", over="ignore"):   # NaN and overflow convert silently
        if (d is bfloat16 and (k in "iu" or (k == "f" and a.dtype.itemsize > 4))) or \
                (k == "V" and d.kind != "f" and _lookup(a.dtype) is bfloat16):
            return a.astype(np.float32).astype(d.np, copy=False)
        return a.astype(d.np)


def scalar_value(value, d: DType):
    """A Python scalar as the Python value of that scalar stored in dtype d."""
    if d is bfloat16:
        return astype(float(value), d).item()
    return d.np(value).item()


def to_dtype(d) -> DType:
    """Accept a DType, a numpy dtype, a Python type or a name."""
    if isinstance(d, DType):
        return d
    if d is float:
        return float32
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str):
        return by_name(d.removeprefix("torch."))
    return from_numpy(d)


class finfo:
    """torch.finfo: the limits of a floating-point dtype (the default dtype without one)."""

    # mantissa bits (without the implicit one) and exponent bits
    _LAYOUT = {"float16": (10, 5), "bfloat16": (7, 8), "float32": (23, 8), "float64": (52, 11)}

    def __init__(self, type: DType | None = None):
        d = get_default_dtype() if type is None else to_dtype(type)
        if not d.is_floating_point:
            raise TypeError("torch.finfo() requires a floating point input type. Use "
                            "torch.iinfo to handle 'torch.finfo'")
        m, e = self._LAYOUT[d.name]
        self.bits = 8 * d.itemsize
        self.eps = 2.0 ** -m
        emax = 2 ** (e - 1) - 1
        self.max = (2.0 - 2.0 ** -m) * 2.0 ** emax
        self.min = -self.max
        self.tiny = self.smallest_normal = 2.0 ** (1 - emax)
        self.resolution = 10.0 ** -math.floor(m * math.log10(2))
        self.dtype = d.name

    def __eq__(self, other) -> bool:
        return isinstance(other, finfo) and other.dtype == self.dtype

    def __hash__(self) -> int:
        return hash(self.dtype)

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """torch.iinfo: the limits of an integer dtype."""

    def __init__(self, type: DType):
        d = to_dtype(type)
        if d.kind == "b":
            raise TypeError("torch.bool is not supported by torch.iinfo")
        if d.kind not in "iu":
            raise TypeError("torch.iinfo() requires an integer input type. Use torch.finfo "
                            "to handle 'torch.iinfo'")
        self.bits = 8 * d.itemsize
        self.min = 0 if d.kind == "u" else -(1 << (self.bits - 1))
        self.max = (1 << self.bits) - 1 if d.kind == "u" else (1 << (self.bits - 1)) - 1
        self.dtype = d.name

    def __eq__(self, other) -> bool:
        return isinstance(other, iinfo) and other.dtype == self.dtype

    def __hash__(self) -> int:
        return hash(self.dtype)

    def __repr__(self) -> str:
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


_default_float = float32


def get_default_dtype() -> DType:
    return _default_float


def set_default_dtype(d: DType) -> None:
    global _default_float
    d = to_dtype(d)
    if not d.is_floating_point:
        raise TypeError("only floating-point types are supported as the default type")
    _default_float = d
    _SCALAR_RESULT.clear()  # their answers may name the default dtype
    _PAIR_RESULT.clear()


_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


def promote(a: DType, b: DType) -> DType:
    """torch.promote_types for two tensor dtypes."""
    if a == b:
        return a
    ka, kb = _KIND_RANK[a.kind], _KIND_RANK[b.kind]
    if ka != kb:
        return a if ka > kb else b
    if a.kind == "f":
        if a.priority == b.priority:   # float16 with bfloat16: neither holds the other
            return float32
        return a if a.priority > b.priority else b
    if a.kind == "b":
        return a
    # integers: uint8 with a signed type
    if a == uint8 or b == uint8:
        other = b if a == uint8 else a
        return int16 if other == int8 else other
    return a if a.priority > b.priority else b


def scalar_category(v) -> int:
    if isinstance(v, (bool, np.bool_)):
        return 0
    if isinstance(v, (int, np.integer)):
        return 1
    return 2


def result_type(*args) -> DType:
    """torch.result_type over tensors (anything with .dtype and .ndim) and Python scalars.

    Dimensioned tensors outrank 0-d tensors, which outrank Python scalars, but only within
    one category (bool < integer < float): `int_tensor + 1.5` is float32, `f16_tensor + 2.0`
    stays float16.
    """
    groups: list[DType | None] = [None, None]
    for a in args:
        if hasattr(a, "dtype"):
            g = 0 if a.ndim > 0 else 1
            groups[g] = a.dtype if groups[g] is None else promote(groups[g], a.dtype)
    out = groups[0]
    if groups[1] is not None and (out is None or _KIND_RANK[groups[1].kind] > _KIND_RANK[out.kind]):
        out = groups[1]
    sc = max((scalar_category(a) for a in args if not hasattr(a, "dtype")), default=-1)
    if out is None or sc > _KIND_RANK[out.kind]:
        out = (bool_, int64, get_default_dtype())[sc] if sc >= 0 else (out or bool_)
    return out


class _Meta:
    """A stand-in tensor for result_type: a dtype, and 0-d or not."""

    __slots__ = ("dtype", "ndim")

    def __init__(self, dtype: DType, zero_dim: bool):
        self.dtype, self.ndim = dtype, 0 if zero_dim else 1


# result_type's answers for the common calls of binary ops, which depend on few things
_SCALAR_RESULT: dict = {}  # (tensor dtype, Python scalar type) -> dtype
_PAIR_RESULT: dict = {}  # (dtype, is 0-d, dtype, is 0-d) -> dtype


def scalar_result_type(d: DType, scalar_type: type) -> DType:
    """result_type(tensor of dtype d, a Python scalar of type bool, int or float)."""
    r = _SCALAR_RESULT.get((d, scalar_type))
    if r is None:
        r = _SCALAR_RESULT[d, scalar_type] = result_type(_Meta(d, False), scalar_type(0))
    return r


def pair_result_type(a: DType, a0: bool, b: DType, b0: bool) -> DType:
    """result_type of two tensors of dtypes a and b (a0, b0: whether each is 0-d)."""
    key = (a, a0, b, b0)
    r = _PAIR_RESULT.get(key)
    if r is None:
        r = _PAIR_RESULT[key] = result_type(_Meta(a, a0), _Meta(b, b0))
    return r


# PyTorch's names for dtypes in its messages: c10 ScalarType names ("got Float and Long") and
# C++ type names ("got: float != double", "mask with dtype long int")
SCALAR_TYPE_NAMES = {bool_: "Bool", uint8: "Byte", int8: "Char", int16: "Short", int32: "Int",
                     int64: "Long", float16: "Half", bfloat16: "BFloat16", float32: "Float",
                     float64: "Double"}
CPP_TYPE_NAMES = {bool_: "bool", uint8: "unsigned char", int8: "signed char", int16: "short int",
                  int32: "int", int64: "long int", float16: "c10::Half",
                  bfloat16: "c10::BFloat16", float32: "float", float64: "double"}


def scalar_type_name(d: DType) -> str:
    """PyTorch's C++ name for a dtype, as its error messages spell it (Float, Long, ...)."""
    return SCALAR_TYPE_NAMES[d]


def can_cast(src: DType, dst: DType) -> bool:
    """torch.can_cast: no cast to a lower category (float -> int, int -> bool)."""
    return _KIND_RANK[src.kind] <= _KIND_RANK[dst.kind]


def check_inplace_cast(result: DType, out: DType) -> None:
    """An in-place op may not store a result into a lower category (torch's message)."""
    if not can_cast(result, out):
        raise RuntimeError(f"result type {scalar_type_name(result)} can't be cast to the "
                           f"desired output type {scalar_type_name(out)}")
