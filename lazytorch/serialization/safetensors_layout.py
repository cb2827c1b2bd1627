"""The safetensors layout: 8 bytes (little-endian u64) giving the header's length, the header
(JSON: {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__":
{str: str}}), then the tensors' raw little-endian bytes, back to back.

Any safetensors reader reads our tensors; the nested Python structure around them (dicts with
any keys, lists, tuples, numbers, strings, None, bools, bytes, dtypes, devices, sizes, numpy
arrays) is a JSON string in __metadata__["lazytorch"]. A plain safetensors file written
elsewhere loads as a dict name -> tensor. Reading parses JSON and copies bytes: nothing in the
file is ever run. The header is checked as the `safetensors` package checks it (integer
offsets that cover the data exactly, without gaps or overlaps), and every failure names the
file and what is wrong.
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any, BinaryIO, Callable

import numpy as np

from ..frontend.size import Size
from ..frontend.tensor import Tensor, device
from ..ir import dtypes as dt
from .formats import CODE_OF, DTYPE_OF_CODE
from .source import LoadError, Source
from .torch_zip import array_chunks
from .values import host_arrays

_FORMAT_VERSION = 1
MAX_HEADER = 100_000_000        # the safetensors package's limit
# every code of the safetensors specification, for errors about the ones lazytorch lacks
_SPEC_CODES = {"BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64",
               "F64", "I64", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3",
               "F6_E3M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ"}


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
            if x.requires_grad:
                out["requires_grad"] = True
            from ..nn.parameter import Parameter
            if isinstance(x, Parameter):
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
        if isinstance(x, Size):
            return {"$size": [int(v) for v in x]}
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            raise TypeError(f"save_safetensors cannot store a namedtuple "
                            f"({type(x).__qualname__}); store a tuple or a dict instead")
        if isinstance(x, tuple):
            return {"$tuple": [self.encode(v, path + [str(i)]) for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [self.encode(v, path + [str(i)]) for i, v in enumerate(x)]
        raise TypeError(f"save_safetensors cannot store an object of type "
                        f"{type(x).__module__}.{type(x).__qualname__}: the layout holds "
                        "tensors, numpy arrays, numbers, strings, bytes, None, dtypes, devices "
                        "and dicts, lists and tuples of them (lazytorch.save writes PyTorch's "
                        "layout, which holds any picklable object)")

    def _key(self, k):
        if isinstance(k, (Tensor, np.ndarray, dict, list)):
            raise TypeError(f"save_safetensors cannot store a dict key of type "
                            f"{type(k).__qualname__}")
        return self.encode(k, [])


def _code_of(x: Tensor | np.ndarray, name: str) -> str:
    try:
        return CODE_OF[x.dtype if isinstance(x, Tensor) else dt.from_numpy(x.dtype)]
    except (TypeError, KeyError):
        raise TypeError(f"save_safetensors cannot store '{name}' of dtype {x.dtype}") \
            from None


def write(obj: Any, out: BinaryIO) -> None:
    """obj in the safetensors layout, each tensor's bytes streamed into out."""
    enc = _Encoder()
    try:
        root = enc.encode(obj, [])
    except RecursionError:
        raise ValueError("save_safetensors: the object nests too deeply") from None
    arrays = host_arrays([x for _, x in enc.items])
    header: dict[str, Any] = {}
    offset = 0
    for (name, x), arr in zip(enc.items, arrays):
        header[name] = {"dtype": _code_of(x, name), "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    meta = {"format": "pt",
            "lazytorch": json.dumps({"version": _FORMAT_VERSION, "root": root},
                                    separators=(",", ":"), allow_nan=False)}
    header = {"__metadata__": meta, **header}
    hbytes = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)   # the data starts 8-byte aligned
    out.write(len(hbytes).to_bytes(8, "little") + hbytes)
    for arr in arrays:
        little = arr if arr.dtype.byteorder != ">" else arr.astype(arr.dtype.newbyteorder("<"))
        for chunk in array_chunks(little):
            out.write(chunk)


# ----------------------------------------------------------------------------- load
def looks_like(head: bytes, size: int) -> bool:
    """Whether a file starting with head (its first 64 bytes or more) is in this layout."""
    n = int.from_bytes(head[:8], "little") if len(head) >= 9 else -1
    return 2 <= n <= min(size - 8, MAX_HEADER) and head[8:].lstrip(b" \t\r\n")[:1] == b"{"


def _is_index(v) -> bool:
    return type(v) is int and v >= 0


def _entries(header: dict, body: int, src: Source) -> dict[str, tuple]:
    """name -> (dtype, shape, begin, end), checked as the safetensors package checks them."""
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            src.fail(f"entry '{name}' lacks dtype, shape or data_offsets")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        d = DTYPE_OF_CODE.get(code) if isinstance(code, str) else None
        if d is None:
            known = "" if code in _SPEC_CODES else "an unknown dtype code "
            src.fail(f"tensor '{name}' has {known}dtype {_short(code)}, which lazytorch does not "
                     f"support (supported: {', '.join(DTYPE_OF_CODE)})")
        if not isinstance(shape, list) or not all(_is_index(s) for s in shape):
            src.fail(f"tensor '{name}' has shape {_short(shape)}: not a list of non-negative "
                     "integers")
        if not isinstance(offsets, list) or len(offsets) != 2 \
                or not all(_is_index(v) for v in offsets):
            src.fail(f"tensor '{name}' has data_offsets {_short(offsets)}: not two "
                     "non-negative integers")
        out[name] = (d, tuple(shape), offsets[0], offsets[1])
    start = 0
    for name, (d, shape, begin, end) in sorted(out.items(), key=lambda kv: kv[1][2:]):
        if begin != start or end < begin:
            src.fail(f"tensor '{name}' has data_offsets {[begin, end]}, which overlap another "
                     f"tensor's or leave a gap (the data so far ends at {start})")
        need = math.prod(shape) * d.itemsize
        if end - begin != need:
            src.fail(f"tensor '{name}' has data_offsets {[begin, end]} ({end - begin} bytes), "
                     f"but its shape {list(shape)} and dtype {CODE_OF[d]} need {need} bytes")
        start = end
    if start != body:
        src.fail(f"the tensors cover {start} bytes of data, but the file has {body} bytes "
                 "after the header" + (": it is truncated" if start > body else ""))
    return out


def _short(x) -> str:
    s = repr(x) if not isinstance(x, (list, dict)) or len(x) < 20 else f"a {type(x).__name__}"
    return s[:80]


def _header(src: Source) -> tuple[dict, int]:
    n = int.from_bytes(src.read_at(0, 8), "little")
    raw = src.read_at(8, n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except RecursionError:
        src.fail("the header nests too deeply to be a safetensors header")
    except (UnicodeDecodeError, ValueError) as e:
        src.fail(f"the safetensors header is not valid JSON ({e})")
    if not isinstance(header, dict):
        src.fail("the safetensors header is not a JSON object")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        src.fail("__metadata__ is not a JSON object of strings")
    return header, 8 + n


class _Decoder:
    def __init__(self, arrays: dict[str, tuple[dt.DType, np.ndarray]],
                 fix: Callable[[Tensor, str], Tensor], src: Source):
        self.arrays, self.fix, self.src = arrays, fix, src
        self.made: dict[tuple[str, bool, bool], Any] = {}

    def _array(self, name) -> tuple[dt.DType, np.ndarray]:
        if not isinstance(name, str) or name not in self.arrays:
            self.src.fail(f"the structure names a tensor {_short(name)} the header does not "
                          "have")
        return self.arrays[name]

    def tensor(self, name: str, requires_grad: bool, parameter: bool) -> Tensor:
        key = (name, requires_grad, parameter)
        if key not in self.made:
            from ..frontend.creation import from_array
            d, arr = self._array(name)
            t = self.fix(from_array(arr, d), "cpu")
            if requires_grad and not d.is_floating_point:
                self.src.fail(f"tensor '{name}' of dtype {d} is marked as requiring grad")
            if parameter:
                from ..nn.parameter import Parameter
                t = Parameter(t, requires_grad=requires_grad)
            elif requires_grad:
                t.requires_grad_(True)
            self.made[key] = t
        return self.made[key]

    def decode(self, x):
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, list):
            return [self.decode(v) for v in x]
        if isinstance(x, dict) and len(x) > 0:
            if "$tensor" in x:
                return self.tensor(x["$tensor"], bool(x.get("requires_grad")),
                                   bool(x.get("parameter")))
            if "$ndarray" in x:
                a = self._array(x["$ndarray"])[1]
                return a[()] if x.get("scalar") else a
            if isinstance(x.get("$dict"), list):
                pairs = [(self._key(k), self.decode(v)) for k, v in x["$dict"]]
                return OrderedDict(pairs) if x.get("ordered") else dict(pairs)
            if isinstance(x.get("$tuple"), list):
                return tuple(self.decode(v) for v in x["$tuple"])
            if isinstance(x.get("$size"), list):
                return Size(int(v) for v in x["$size"])
            if isinstance(x.get("$float"), str):
                return float(x["$float"])
            if isinstance(x.get("$dtype"), str):
                return dt.by_name(x["$dtype"])
            if isinstance(x.get("$device"), str):
                return device(x["$device"])
            if isinstance(x.get("$bytes"), str):
                return bytes.fromhex(x["$bytes"])
        self.src.fail(f"the lazytorch structure has an unexpected entry {_short(x)}")

    def _key(self, k):
        v = self.decode(k)
        return tuple(v) if isinstance(v, list) else v


def read(src: Source, fix: Callable[[Tensor, str], Tensor], mmap: np.ndarray | None = None):
    """What write() wrote (or a plain safetensors file, as a dict name -> tensor)."""
    header, begin = _header(src)
    entries = _entries(header, src.size - begin, src)
    arrays = {}
    for name, (d, shape, b, e) in entries.items():
        at = src.start + begin + b
        little = np.dtype(d.np).newbyteorder("<")
        if mmap is not None and at % d.itemsize == 0 and little.isnative:
            arr = mmap[at:at + e - b].view(dtype=np.dtype(d.np), type=np.ndarray)
        else:
            arr = np.empty(math.prod(shape), little)
            src.readinto_at(begin + b, arr, f"tensor '{name}'")
        arrays[name] = (d, arr.astype(d.np, copy=False).reshape(shape))
    dec = _Decoder(arrays, fix, src)
    meta = header.get("__metadata__") or {}
    structure = meta.get("lazytorch")
    if structure is None:     # a plain safetensors file
        return {name: dec.tensor(name, False, False)
                for name in sorted(entries, key=lambda k: entries[k][2:])}
    try:
        tree = json.loads(structure)
        if not isinstance(tree, dict) or tree.get("version") != _FORMAT_VERSION \
                or "root" not in tree:
            src.fail("the lazytorch metadata has an unknown version")
        return dec.decode(tree["root"])
    except (LoadError, MemoryError):
        raise
    except RecursionError:
        src.fail("the lazytorch structure nests too deeply")
    except Exception as e:    # a malformed structure: wrong types, unknown names
        src.fail(f"the lazytorch metadata is damaged ({type(e).__name__}: {e})")
