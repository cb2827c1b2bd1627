"""The one Op enum of the IR, and the groups the passes ask about: each set of ops that more
than one place asks about is named here once, and a user that needs a variant builds it from
these, saying why."""
from __future__ import annotations

from enum import Enum, auto


class Op(Enum):
    # sources
    BUFFER = auto()      # realized data; arg = buffer id
    CONST = auto()       # a scalar broadcast to the node's shape; arg = Python value
    # unary elementwise
    NEG = auto()
    NOT = auto()
    ABS = auto()
    SIGN = auto()
    EXP = auto()
    EXP2 = auto()
    EXPM1 = auto()
    LOG = auto()
    LOG2 = auto()
    LOG1P = auto()
    SQRT = auto()
    RSQRT = auto()
    RECIP = auto()
    SIN = auto()
    COS = auto()
    TAN = auto()
    ASIN = auto()
    ACOS = auto()
    ATAN = auto()
    SINH = auto()
    COSH = auto()
    ASINH = auto()
    ACOSH = auto()
    ATANH = auto()
    TANH = auto()
    SIGMOID = auto()
    ERF = auto()
    FLOOR = auto()
    CEIL = auto()
    ROUND = auto()
    TRUNC = auto()
    ISNAN = auto()
    ISINF = auto()
    CAST = auto()        # arg = target DType (also the node's dtype)
    # binary elementwise
    ADD = auto()
    SUB = auto()
    MUL = auto()
    DIV = auto()         # true division (floats)
    IDIV = auto()        # floor division
    MOD = auto()         # Python-style remainder (sign of the divisor)
    POW = auto()
    ATAN2 = auto()       # atan2(a, b): the angle of the point (b, a)
    MAX = auto()
    MIN = auto()
    CMPEQ = auto()
    CMPNE = auto()
    CMPLT = auto()
    CMPLE = auto()
    AND = auto()         # logical and bitwise (bool and ints)
    OR = auto()
    XOR = auto()
    # ternary elementwise
    WHERE = auto()
    # reductions: arg = tuple of reduced axes; the output keeps them as size 1
    SUM = auto()
    PROD = auto()
    RMAX = auto()
    RMIN = auto()
    ARGMAX = auto()      # arg = (axis,); first index of the max, int64
    ARGMIN = auto()
    # scans along one axis: arg = axis
    CUMSUM = auto()
    CUMPROD = auto()
    # movement (views: no data is copied)
    RESHAPE = auto()     # arg = new shape
    PERMUTE = auto()     # arg = permutation
    EXPAND = auto()      # arg = new shape (size-1 dims broadcast)
    PAD = auto()         # arg = (((lo, hi), ...), value)
    SLICE = auto()       # arg = ((start, step), ...) per dim; negative steps flip
    UNFOLD = auto()      # arg = (dim, size, step): sliding windows of `size` along dim, the
                         # window index as a new last dim (Tensor.unfold; conv and pooling)
    # data-dependent movement
    GATHER = auto()      # srcs = (x, index); arg = axis; out[..i..] = x[..index[..i..]..]
    SCATTER = auto()     # srcs = (base, index, src); arg = (axis, mode); out = base, then
                         # out[..index[..i..]..] = src[..i..] (mode None: last write wins,
                         # "add": +=, "multiply": *=)
    # forces its source into a buffer of its own (a kernel boundary)
    CONTIGUOUS = auto()
    # identity that stops gradients; arg = None, or the id of the grad-requiring leaf it marks
    DETACH = auto()
    # an output of a custom autograd.Function: srcs = (its value, the inputs that require grad);
    # the value of srcs[0] (the inputs are edges for backward only); arg = the application's id
    FUNCTION = auto()


Op.__hash__ = object.__hash__  # members are singletons: identity hashing is C-fast

UNARY = {Op.NEG, Op.NOT, Op.ABS, Op.SIGN, Op.EXP, Op.EXP2, Op.EXPM1, Op.LOG, Op.LOG2, Op.LOG1P,
         Op.SQRT, Op.RSQRT, Op.RECIP, Op.SIN, Op.COS, Op.TAN, Op.ASIN, Op.ACOS, Op.ATAN, Op.SINH,
         Op.COSH, Op.ASINH, Op.ACOSH, Op.ATANH, Op.TANH, Op.SIGMOID, Op.ERF,
         Op.FLOOR, Op.CEIL, Op.ROUND, Op.TRUNC, Op.ISNAN, Op.ISINF, Op.CAST}
BINARY = {Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.IDIV, Op.MOD, Op.POW, Op.ATAN2, Op.MAX, Op.MIN,
          Op.CMPEQ, Op.CMPNE, Op.CMPLT, Op.CMPLE, Op.AND, Op.OR, Op.XOR}
TERNARY = {Op.WHERE}
ELEMENTWISE = UNARY | BINARY | TERNARY
COMPARE = {Op.CMPEQ, Op.CMPNE, Op.CMPLT, Op.CMPLE, Op.ISNAN, Op.ISINF}
COMMUTATIVE = {Op.ADD, Op.MUL, Op.MAX, Op.MIN, Op.CMPEQ, Op.CMPNE, Op.AND, Op.OR, Op.XOR}
REDUCE = {Op.SUM, Op.PROD, Op.RMAX, Op.RMIN, Op.ARGMAX, Op.ARGMIN}
SCAN = {Op.CUMSUM, Op.CUMPROD}
MOVEMENT = {Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.PAD, Op.SLICE, Op.UNFOLD}
SOURCE = {Op.BUFFER, Op.CONST}
# the groups above partition Op, with the ops of a kind of their own (GATHER, SCATTER,
# CONTIGUOUS, DETACH, FUNCTION); the groups below are cut across them by meaning

# ops whose value is their one source's values rearranged (PAD adds its constant): nothing is
# computed; DETACH is the identity
VIEW = MOVEMENT | {Op.DETACH}
# movement that a strided view of the source's memory expresses, as PyTorch's views do (RESHAPE:
# of a contiguous source); PAD and UNFOLD make values or windows of their own
STRIDED = {Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.SLICE}
# ops that cost a libm call (or several) per element, where the rest cost one instruction: the
# scheduler counts them as several when it weighs recomputing a value against storing it, and
# a row-fused kernel computes them once per element, saving them for its final loop
TRANSCENDENTAL = {Op.EXP, Op.EXP2, Op.EXPM1, Op.LOG, Op.LOG2, Op.LOG1P, Op.TANH, Op.SIN, Op.COS,
                  Op.TAN, Op.ERF, Op.POW, Op.SIGMOID, Op.ASIN, Op.ACOS, Op.ATAN, Op.SINH,
                  Op.COSH, Op.ASINH, Op.ACOSH, Op.ATANH, Op.ATAN2}
