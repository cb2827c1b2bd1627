"""What a load reads: a path or a binary file object, read by position, and named in every
error about it."""
from __future__ import annotations

import io
import os

import numpy as np

from .target import is_path

_CHUNK = 1 << 24


class LoadError(RuntimeError):
    """A checkpoint that cannot be loaded; the message names the file and what is wrong."""


class Source:
    """A checkpoint being read. `where` names it in errors; reads are relative to where the
    checkpoint starts (a file object's position when it was handed over)."""

    def __init__(self, f):
        self.path: str | None = None
        self._own = False
        if is_path(f):
            self.path = os.fsdecode(f)
            self.where = repr(self.path)
            self.file = open(self.path, "rb")
            self._own = True
            self.start = 0
        else:
            if not hasattr(f, "read"):
                raise AttributeError(f"expected a path or a binary file object, got "
                                     f"{type(f).__name__}")
            if isinstance(f, io.TextIOBase):
                raise TypeError("lazytorch.load needs a file opened in binary mode ('rb')")
            name = getattr(f, "name", None)
            self.where = repr(name) if isinstance(name, str) else "the file object"
            seekable = getattr(f, "seekable", None)
            if seekable is not None and seekable():
                self.file = f
                self.start = f.tell()
            else:
                data = f.read()
                if isinstance(data, str):
                    raise TypeError("lazytorch.load needs a file opened in binary mode ('rb')")
                self.file = io.BytesIO(data)
                self.start = 0
        self.size = self.file.seek(0, os.SEEK_END) - self.start

    def close(self) -> None:
        if self._own:
            self.file.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read_at(self, offset: int, n: int) -> bytes:
        """n bytes from offset, or fewer where the file ends."""
        self.file.seek(self.start + offset)
        data = self.file.read(n)
        if isinstance(data, str):
            raise TypeError("lazytorch.load needs a file opened in binary mode ('rb')")
        return data

    def readinto_at(self, offset: int, out: np.ndarray, what: str) -> None:
        """Fill out (a C-contiguous array) with the bytes at offset, in chunks."""
        view = memoryview(out.reshape(-1).view(np.uint8))
        self.file.seek(self.start + offset)
        readinto = getattr(self.file, "readinto", None)
        pos = 0
        while pos < len(view):
            part = view[pos:pos + _CHUNK]
            if readinto is not None:
                got = readinto(part)
            else:
                data = self.file.read(len(part))
                got = len(data)
                part[:got] = data
            if not got:
                self.fail(f"{what} ends early: the file is truncated")
            pos += got

    def fail(self, why: str, cls: type[Exception] = LoadError):
        raise cls(f"lazytorch.load({self.where}): {why}")
