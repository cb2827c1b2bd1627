"""How each dtype is named in the two checkpoint layouts: PyTorch's storage class (its zip
layout) and the safetensors dtype code. One row per dtype."""
from __future__ import annotations

from ..ir import dtypes as dt

# dtype, PyTorch's storage class (torch.save's pickle names it), safetensors code
_ROWS = (
    (dt.float64, "DoubleStorage", "F64"),
    (dt.float32, "FloatStorage", "F32"),
    (dt.float16, "HalfStorage", "F16"),
    (dt.bfloat16, "BFloat16Storage", "BF16"),
    (dt.int64, "LongStorage", "I64"),
    (dt.int32, "IntStorage", "I32"),
    (dt.int16, "ShortStorage", "I16"),
    (dt.int8, "CharStorage", "I8"),
    (dt.uint8, "ByteStorage", "U8"),
    (dt.bool_, "BoolStorage", "BOOL"),
)

STORAGE_OF = {d: storage for d, storage, _ in _ROWS}
DTYPE_OF_STORAGE = {storage: d for d, storage, _ in _ROWS}
CODE_OF = {d: code for d, _, code in _ROWS}
DTYPE_OF_CODE = {code: d for d, _, code in _ROWS}
DTYPES = tuple(d for d, _, _ in _ROWS)

# PyTorch's dtypes that lazytorch lacks, and their storage classes, for errors that name them
OTHER_STORAGES = {"ComplexFloatStorage": "complex64",
                  "ComplexDoubleStorage": "complex128", "QInt8Storage": "qint8",
                  "QUInt8Storage": "quint8", "QInt32Storage": "qint32",
                  "QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4"}
OTHER_DTYPES = frozenset(OTHER_STORAGES.values()) | {
    "complex32", "uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2",
    "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2", "bits8",
    "bits16", "bits1x8", "bits2x4", "bits4x2"}
