"""save / load: checkpoints in the safetensors layout, never pickle.

A file is: 8 bytes (little-endian u64) giving the header's length, the header (JSON:
{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}),
then the tensors' raw little-endian bytes. Any safetensors reader can read our tensors; the
nested Python structure around them (dicts with int keys, lists, tuples, numbers, strings,
None, bools) is a JSON string in __metadata__["lazytorch"]. A plain safetensors file written
elsewhere loads as a dict name -> tensor.

Loading parses JSON and copies bytes: it never unpickles and never runs code from the file. A
pickle (Python's pickle, PyTorch's torch.save) is refused with an error.
"""
from __future__ import annotations

import io
import json
import math
import os
import pickle
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from . import dtypes as dt
from .runtime import memory
from .runtime.files import atomic_write
from .tensor import Tensor, device

__all__ = ["save", "load"]

_FORMAT_VERSION = 1
_DTYPE_CODES = {dt.float64: "F64", dt.float32: "F32", dt.float16: "F16", dt.int64: "I64",
                dt.int32: "I32", dt.int16: "I16", dt.int8: "I8", dt.uint8: "U8",
                dt.bool_: "BOOL"}
_CODE_DTYPES = {v: k for k, v in _DTYPE_CODES.items()}
_MAX_HEADER = 100 * 1024 * 1024


# ----------------------------------------------------------------------------- save
class _Encoder:
    """Turns a Python object into a JSON tree, collecting the tensors (and numpy arrays) it
    meets under unique names."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}          # id(tensor) -> name
        self.items: list[tuple[str, Any]] = []   # (name, tensor or ndarray) in order
        self.keep: list[Any] = []                # keeps ids valid while encoding
        self.used: set[str] = set()

    def _name(self, path: list[str]) -> str:
        base = ".".join(path) or "tensor"
        name, k = base, 1
        while name in self.used or name == "__metadata__":
            name = f"{base}#{k}"
            k += 1
        self.used.add(name)
        return name

    def _array_ref(self, x, path: list[str]) -> str:
        name = self.names.get(id(x))
        if name is None:
            name = self.names[id(x)] = self._name(path)
            self.items.append((name, x))
            self.keep.append(x)
        return name

    def encode(self, x, path: list[str]):
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, Tensor):
            out: dict[str, Any] = {"$tensor": self._array_ref(x, path)}
            if x.requires_grad and x.is_leaf:
                out["requires_grad"] = True
            if type(x).__name__ == "Parameter":
                out["parameter"] = True
                out["requires_grad"] = bool(x.requires_grad)
            return out
        if isinstance(x, np.ndarray):
            return {"$ndarray": self._array_ref(x, path)}
        if isinstance(x, np.generic):
            return {"$ndarray": self._array_ref(np.asarray(x), path), "scalar": True}
        if isinstance(x, int):
            return x if type(x) is int else int(x)
        if isinstance(x, float):
            if math.isfinite(x):
                return float(x)
            return {"$float": repr(float(x))}
        if isinstance(x, dt.DType):
            return {"$dtype": x.name}
        if isinstance(x, device):
            return {"$device": str(x)}
        if isinstance(x, (bytes, bytearray)):
            return {"$bytes": bytes(x).hex()}
        if isinstance(x, dict):
            pairs = [[self._key(k), self.encode(v, path + [str(k)])] for k, v in x.items()]
            out = {"$dict": pairs}
            if isinstance(x, OrderedDict):
                out["ordered"] = True
            return out
        if type(x).__name__ == "Size" and isinstance(x, tuple):
            return {"$size": [int(v) for v in x]}
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            raise TypeError(f"lazytorch.save cannot store a namedtuple "
                            f"({type(x).__qualname__}); store a tuple or a dict instead")
        if isinstance(x, tuple):
            return {"$tuple": [self.encode(v, path + [str(i)]) for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [self.encode(v, path + [str(i)]) for i, v in enumerate(x)]
        hint = " (save model.state_dict() instead of the module)" if hasattr(x, "state_dict") \
            else ""
        raise TypeError(f"lazytorch.save cannot store an object of type "
                        f"{type(x).__module__}.{type(x).__qualname__}{hint}: the format holds "
                        "tensors, numpy arrays, numbers, strings, bytes, None, dtypes, devices "
                        "and dicts, lists and tuples of them (it never pickles)")

    def _key(self, k):
        if isinstance(k, (Tensor, np.ndarray, dict, list)):
            raise TypeError(f"lazytorch.save cannot store a dict key of type "
                            f"{type(k).__qualname__}")
        return self.encode(k, [])


def _arrays(items: list[tuple[str, Any]]) -> list[np.ndarray]:
    """The values of the collected tensors (realized together, in one plan)."""
    from .tensor import realize_tensors
    from .utils.data.collate import host_array
    out: list[np.ndarray | None] = []
    pending: list[tuple[int, Tensor]] = []
    for i, (_, x) in enumerate(items):
        if isinstance(x, np.ndarray):
            out.append(x)
            continue
        a = host_array(x)
        out.append(a)
        if a is None:
            pending.append((i, x))
    if pending:
        bufs = realize_tensors([t for _, t in pending])
        for (i, t), b in zip(pending, bufs):
            out[i] = memory.data(b).reshape(tuple(t.shape))
    return out   # type: ignore[return-value]


def _code_of(arr: np.ndarray, name: str) -> str:
    try:
        return _DTYPE_CODES[dt.from_numpy(arr.dtype)]
    except (TypeError, KeyError):
        raise TypeError(f"lazytorch.save cannot store '{name}' of numpy dtype {arr.dtype}") \
            from None


def _serialize(obj) -> bytes:
    enc = _Encoder()
    root = enc.encode(obj, [])
    arrays = _arrays(enc.items)
    header: dict[str, Any] = {}
    chunks: list[bytes] = []
    offset = 0
    for (name, _), arr in zip(enc.items, arrays):
        code = _code_of(arr, name)
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False)
        data = raw.tobytes(order="C")
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    meta = {"format": "pt",
            "lazytorch": json.dumps({"version": _FORMAT_VERSION, "root": root},
                                    separators=(",", ":"), allow_nan=False)}
    header = {"__metadata__": meta, **header}
    hbytes = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)   # the data starts 8-byte aligned
    return len(hbytes).to_bytes(8, "little") + hbytes + b"".join(chunks)


def save(obj: Any, f, pickle_module: Any = None, pickle_protocol: int = 2,
         _use_new_zipfile_serialization: bool = True,
         _disable_byteorder_record: bool = False) -> None:
    """Save tensors, state dicts and nested dicts/lists/tuples of tensors, numbers, strings,
    None and bools to a path (written to a temporary name, then renamed into place) or a
    binary file object, in the safetensors layout (no pickle)."""
    data = _serialize(obj)
    if isinstance(f, (str, os.PathLike)):
        atomic_write(os.fspath(f), data, suffix=".lt")
        return
    if not hasattr(f, "write"):
        raise AttributeError(f"expected a path or a binary file object, got "
                             f"{type(f).__name__}")
    if isinstance(f, io.TextIOBase):
        raise TypeError("lazytorch.save needs a file opened in binary mode ('wb')")
    f.write(data)


# ----------------------------------------------------------------------------- load
def _read(f) -> tuple[bytes, str]:
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            return fh.read(), repr(os.fspath(f))
    if not hasattr(f, "read"):
        raise AttributeError(f"expected a path or a binary file object, got "
                             f"{type(f).__name__}")
    data = f.read()
    if isinstance(data, str):
        raise TypeError("lazytorch.load needs a file opened in binary mode ('rb')")
    name = getattr(f, "name", None)
    return bytes(data), repr(name) if isinstance(name, str) else "the file"


def _refuse(what: str, where: str):
    raise pickle.UnpicklingError(
        f"lazytorch.load: {where} is {what}. lazytorch never unpickles, because unpickling "
        "runs code from the file; nothing in it was run. Load it with PyTorch and re-save it "
        "with safetensors (safetensors.torch.save_file) or lazytorch.save.")


def _bad(where: str, why: str):
    raise RuntimeError(f"lazytorch.load: {where} is not a lazytorch (safetensors) file: {why}")


def _parse(data: bytes, where: str) -> tuple[dict, memoryview]:
    """The header and the data of a safetensors file; a clear error for anything else (a
    pickle or a torch.save zip is named as such: its content is never interpreted)."""
    n = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    header = None
    if 2 <= n <= min(len(data) - 8, _MAX_HEADER) and data[8:9] == b"{":
        try:
            header = json.loads(data[8:8 + n].decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            header = None
    if isinstance(header, dict):
        return header, memoryview(data)[8 + n:]
    if data[:4] == b"PK\x03\x04":
        _refuse("a zip archive (PyTorch's torch.save format, which holds a pickle)", where)
    if data[:1] == b"\x80" or data.rstrip()[-1:] == b".":
        _refuse("a pickle", where)
    if len(data) < 8:
        _bad(where, f"it has {len(data)} bytes")
    if not 2 <= n <= len(data) - 8:
        _bad(where, f"the header length {n} does not fit the file ({len(data)} bytes)")
    _bad(where, "the header is not a JSON object")


def _tensor_from(name: str, info, body: memoryview, where: str) -> np.ndarray:
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
        _bad(where, f"entry '{name}' lacks dtype, shape or data_offsets")
    code = info["dtype"]
    d = _CODE_DTYPES.get(code)
    if d is None:
        raise TypeError(f"lazytorch.load: tensor '{name}' has dtype {code}, which lazytorch "
                        f"does not support (supported: {', '.join(_CODE_DTYPES)})")
    shape = tuple(int(s) for s in info["shape"])
    begin, end = (int(v) for v in info["data_offsets"])
    size = math.prod(shape) * d.itemsize
    if any(s < 0 for s in shape) or not 0 <= begin <= end <= len(body) or end - begin != size:
        _bad(where, f"tensor '{name}' has offsets {[begin, end]} that do not match its "
                    f"shape {list(shape)} and dtype {code} (data: {len(body)} bytes)")
    arr = np.frombuffer(body[begin:end], dtype=np.dtype(d.np).newbyteorder("<"))
    return arr.astype(d.np).reshape(shape)     # a copy: aligned, native order, owned


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray], fix: Callable[[Tensor], Tensor]):
        self.arrays = arrays
        self.fix = fix
        self.made: dict[tuple[str, bool, bool], Any] = {}

    def _tensor(self, name: str, requires_grad: bool, parameter: bool) -> Tensor:
        key = (name, requires_grad, parameter)
        if key not in self.made:
            from .creation import from_numpy
            t = self.fix(from_numpy(self.arrays[name]))
            if parameter:
                try:
                    from .nn import Parameter
                    t = Parameter(t, requires_grad=requires_grad)
                except ImportError:
                    t.requires_grad_(requires_grad)
            elif requires_grad:
                t.requires_grad_(True)
            self.made[key] = t
        return self.made[key]

    def decode(self, x):
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, list):
            return [self.decode(v) for v in x]
        if not isinstance(x, dict) or len(x) == 0:
            raise RuntimeError(f"lazytorch.load: unexpected structure entry {x!r}")
        if "$tensor" in x:
            return self._tensor(x["$tensor"], bool(x.get("requires_grad")),
                                bool(x.get("parameter")))
        if "$ndarray" in x:
            a = self.arrays[x["$ndarray"]]
            return a[()] if x.get("scalar") else a
        if "$dict" in x:
            pairs = [(self._key(k), self.decode(v)) for k, v in x["$dict"]]
            return OrderedDict(pairs) if x.get("ordered") else dict(pairs)
        if "$tuple" in x:
            return tuple(self.decode(v) for v in x["$tuple"])
        if "$size" in x:
            from .size import Size
            return Size(x["$size"])
        if "$float" in x:
            return float(x["$float"])
        if "$dtype" in x:
            return dt.by_name(x["$dtype"])
        if "$device" in x:
            return device(x["$device"])
        if "$bytes" in x:
            return bytes.fromhex(x["$bytes"])
        raise RuntimeError(f"lazytorch.load: unexpected structure entry {x!r}")

    def _key(self, k):
        v = self.decode(k)
        return tuple(v) if isinstance(v, list) else v


def _location_fix(map_location) -> Callable[[Tensor], Tensor]:
    """map_location: None, 'cpu', a device, a dict {from: to} or fn(tensor, 'cpu')."""
    if map_location is None:
        return lambda t: t
    if callable(map_location) and not isinstance(map_location, (str, device)):
        def fix(t: Tensor) -> Tensor:
            r = map_location(t, "cpu")
            return r if isinstance(r, Tensor) else t
        return fix
    targets = map_location.values() if isinstance(map_location, dict) else [map_location]
    for target in targets:
        from .tensor import check_device
        check_device(target)
    return lambda t: t


def load(f, map_location=None, pickle_module: Any = None, *, weights_only: bool | None = None,
         mmap: bool | None = None, **pickle_load_args) -> Any:
    """Load what save() wrote (or any safetensors file: a dict name -> tensor). Never
    unpickles: a pickle file, such as one written by PyTorch's torch.save, is an error and
    nothing in it runs. map_location and weights_only are accepted (everything loads to the
    CPU, and only data is ever loaded)."""
    data, where = _read(f)
    header, body = _parse(data, where)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        _bad(where, "__metadata__ is not a JSON object")
    arrays = {name: _tensor_from(name, info, body, where)
              for name, info in header.items() if name != "__metadata__"}
    dec = _Decoder(arrays, _location_fix(map_location))
    structure = meta.get("lazytorch")
    if structure is None:     # a plain safetensors file
        order = sorted(arrays, key=lambda k: header[k]["data_offsets"][0])
        return {name: dec._tensor(name, False, False) for name in order}
    try:
        tree = json.loads(structure)
    except (TypeError, ValueError) as e:
        _bad(where, f"the lazytorch metadata is not valid JSON ({e})")
    if not isinstance(tree, dict) or tree.get("version") != _FORMAT_VERSION:
        _bad(where, "unknown lazytorch metadata version")
    try:
        return dec.decode(tree["root"])
    except KeyError as e:
        _bad(where, f"the structure names a tensor {e} the header does not have")


