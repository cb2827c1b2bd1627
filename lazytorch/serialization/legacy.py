"""PyTorch's pre-1.6 checkpoint layout (`_use_new_zipfile_serialization=False`): five pickles
in a row (a magic number, the protocol version 1001, system info, the object, the list of
storage keys) followed by each storage: its element count (8 bytes) and its bytes.

The object's pickle names its storages before their bytes follow it, so it is read twice:
first by `StorageCollector`, which only notes each storage's dtype (every global it meets
becomes an inert stand-in: nothing in the file is imported, called or constructed), then,
with the storages read, by the real unpickler.
"""
from __future__ import annotations

import pickle
import struct
from typing import Any, Callable

import numpy as np

from ..ir import dtypes as dt
from .formats import DTYPE_OF_STORAGE
from .source import Source
from .unpickler import BadFile

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
# the pickled magic number every legacy file starts with
HEAD = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."


class _Inert:
    """What the collector builds for every global and call: accepts anything, does nothing."""

    def __init__(self, name: str = ""):
        self.name = name

    def __call__(self, *args, **kwargs):
        return _Inert()

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, value):
        pass

    def extend(self, values):
        pass

    def add(self, value):
        pass


class StorageCollector(pickle._Unpickler):
    """Reads a pickle to find its storage records, `key -> (dtype, element count)`, without
    resolving any global for real."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file):
        super().__init__(file, encoding="utf-8")
        self.storages: dict[str, tuple[dt.DType | None, int]] = {}

    def find_class(self, module: str, name: str):
        return _Inert(name)

    def persistent_load(self, pid):
        if type(pid) is tuple and len(pid) == 6 and pid[0] in ("storage", b"storage"):
            stype, key, numel = pid[1], pid[2], pid[4]
            name = stype.name if isinstance(stype, _Inert) else None
            if type(key) is str and type(numel) is int:
                self.storages[key] = (DTYPE_OF_STORAGE.get(name), numel)
        return _Inert()

    def _inert(self, pops: int) -> None:
        del self.stack[len(self.stack) - pops:]
        self.append(_Inert())

    def load_newobj(self):
        self._inert(2)

    def load_newobj_ex(self):
        self._inert(3)

    def load_build(self):
        self.stack.pop()

    def load_inst(self):
        self.readline()
        self.readline()
        self.pop_mark()
        self.append(_Inert())

    def load_obj(self):
        self.pop_mark()
        self.append(_Inert())

    def load_bytearray8(self):
        (n,) = struct.unpack("<Q", self.read(8))
        data = self.read(n)             # what the file holds, never what it claims
        if len(data) < n:
            raise EOFError("pickle data was truncated")
        self.append(bytearray(data))

    def load_ext(self):
        self.append(_Inert())

    def load_ext1(self):
        self.read(1)
        self.load_ext()

    def load_ext2(self):
        self.read(2)
        self.load_ext()

    def load_ext4(self):
        self.read(4)
        self.load_ext()

    for _op, _f in ((pickle.NEWOBJ, load_newobj), (pickle.NEWOBJ_EX, load_newobj_ex),
                    (pickle.BUILD, load_build), (pickle.INST, load_inst),
                    (pickle.OBJ, load_obj), (pickle.EXT1, load_ext1), (pickle.EXT2, load_ext2),
                    (pickle.EXT4, load_ext4), (pickle.BYTEARRAY8, load_bytearray8)):
        dispatch[_op[0]] = _f
    del _op, _f


def load(src: Source, unpickler: Callable[[Any, Callable], Any]) -> Any:
    """The object of a legacy file; unpickler(file, fetch) builds the unpickler that reads it,
    fetch(key, dtype, numel) giving each storage as a 1-d array."""
    f = _Clamped(src.file, src.start + src.size)
    f.seek(src.start)
    plain = unpickler(f, _no_storages)
    if plain.load() != MAGIC:
        src.fail("has PyTorch's legacy magic number but is damaged")
    if plain.load() != PROTOCOL_VERSION:
        src.fail("is in PyTorch's legacy layout with an unknown protocol version")
    info = plain.load()
    little = not isinstance(info, dict) or info.get("little_endian", True) is not False
    start = f.tell()
    collector = StorageCollector(f)
    try:
        collector.load()
    except MemoryError:
        raise
    except Exception as e:
        raise BadFile(f"its pickle is damaged ({type(e).__name__}: {str(e)[:200]})") from e
    keys = unpickler(f, _no_storages).load()
    if type(keys) is not list or not all(type(k) is str for k in keys):
        src.fail("has a damaged list of storage keys")
    order = "<" if little else ">"
    arrays = {}
    at = f.tell() - src.start
    for key in keys:
        d, numel = collector.storages.get(key, (None, -1))
        if d is None:
            src.fail(f"lists storage {key}, which its pickle does not name with a dtype "
                     "lazytorch supports")
        head = src.read_at(at, 8)
        if len(head) != 8:
            src.fail(f"storage {key} ends early: the file is truncated")
        (count,) = struct.unpack(f"{order}q", head)
        if count != numel:
            src.fail(f"storage {key} holds {count} elements, but the pickle gives it {numel}")
        nbytes = numel * d.itemsize
        if at + 8 + nbytes > src.size:
            src.fail(f"storage {key} ({nbytes} bytes at {at + 8}) runs past the end of the "
                     f"file ({src.size} bytes): it is truncated")
        arr = np.empty(numel, np.dtype(d.np).newbyteorder(order))
        src.readinto_at(at + 8, arr, f"storage {key}")
        arrays[key] = arr.astype(d.np, copy=False)
        at += 8 + nbytes

    def fetch(key: str, d: dt.DType, numel: int) -> np.ndarray:
        arr = arrays.get(key)
        if arr is None or arr.size != numel:
            raise BadFile(f"storage {key} is not among the file's storages, or not with "
                          f"{numel} elements")
        return arr

    f.seek(start)
    return unpickler(f, fetch).load()


class _Clamped:
    """A file whose reads never ask for more than it holds (a pickle's lengths are the file's
    claims: reading them as asked would allocate that much first)."""

    def __init__(self, f, end: int):
        self.f, self.end = f, end

    def read(self, n: int = -1) -> bytes:
        left = max(self.end - self.f.tell(), 0)
        return self.f.read(left if n is None or n < 0 else min(n, left))

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def readline(self) -> bytes:
        return self.f.readline()

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.f.seek(pos, whence)

    def tell(self) -> int:
        return self.f.tell()


def _no_storages(key: str, d: dt.DType, numel: int) -> np.ndarray:
    raise BadFile("a storage is named outside the object's pickle")
