"""save / load: checkpoints in PyTorch's own layout, read without running anything.

`save` writes what PyTorch's torch.save writes (a zip holding a pickle whose tensors name
PyTorch's rebuild functions, and each storage's bytes), so PyTorch's
`torch.load(..., weights_only=True)` reads it. `load` reads those files, PyTorch's own (also
its pre-1.6 layout) and the safetensors layout (`save_safetensors`, or any safetensors file),
telling them apart by their first bytes. By default (`weights_only=True`, as in PyTorch
2.6+) the pickle is read by a restricted unpickler that builds only tensors, containers and
numbers and refuses every other global; `weights_only=False` unpickles normally (whole
modules), which runs code from the file.
"""
from __future__ import annotations

import io
import os
import pickle
import struct
from typing import Any, Callable

import numpy as np

from ..frontend.tensor import Tensor, _copied, check_device, device, device_name
from . import legacy, pickler, safetensors_layout, torch_zip
from .allowlist import add_safe_globals, clear_safe_globals, get_safe_globals, safe_globals
from .source import LoadError, Source
from .target import is_path, open_target
from .unpickler import BadFile, Rebuilder, Refused, WeightsUnpickler, full_unpickler
from .values import host_arrays

__all__ = ["save", "load", "save_safetensors", "add_safe_globals", "safe_globals",
           "get_safe_globals", "clear_safe_globals", "LoadError"]

# ----------------------------------------------------------------------------- save
def _archive_name(f) -> str:
    """The folder the zip's members sit in: the file's name up to its first dot, as PyTorch
    names it ('archive' for file objects)."""
    if not is_path(f):
        return "archive"
    stem = os.path.basename(os.fsdecode(f)).split(".")[0]
    ok = stem.isascii() and all(c.isalnum() or c in "_-" for c in stem)
    return stem if stem and ok else "archive"


def save(obj: Any, f, pickle_module: Any = None, pickle_protocol: int = 2,
         _use_new_zipfile_serialization: bool = True,
         _disable_byteorder_record: bool = False) -> None:
    """Save obj (tensors, state dicts, optimizer states, nested containers, whole modules) in
    PyTorch's checkpoint layout to a path (written to a temporary file next to it, then
    renamed into place) or a binary file object. Tensors' bytes are streamed to the file."""
    if not _use_new_zipfile_serialization:
        raise ValueError("lazytorch.save writes PyTorch's zip layout only; "
                         "_use_new_zipfile_serialization=False (the pre-1.6 layout) is not "
                         "supported")
    if pickle_module not in (None, pickle):
        raise TypeError("lazytorch.save writes its pickle with its own pickler; pickle_module "
                        "can only be the standard pickle module")
    data, storages = pickler.dumps(obj, pickle_protocol)
    arrays = host_arrays([s.tensor for s in storages])
    records = ((s.pid[2], torch_zip.array_chunks(a), a.nbytes)
               for s, a in zip(storages, arrays))
    with open_target(f) as out:
        torch_zip.write_checkpoint(out, _archive_name(f), data, records,
                                   not _disable_byteorder_record)


def save_safetensors(obj: Any, f) -> None:
    """Save tensors and nested dicts/lists/tuples of tensors, numbers, strings, None, bools,
    bytes, dtypes and devices in the safetensors layout (which any safetensors reader reads;
    no pickle). `load` reads it back."""
    with open_target(f, "save_safetensors") as out:
        safetensors_layout.write(obj, out)


# ----------------------------------------------------------------------------- load
def _restore(t: Tensor, location) -> Tensor:
    """t (a leaf read into host memory) as a leaf on the device named `location` ("cpu",
    "toy:0", a device)."""
    where = check_device(location)
    if device_name(t) == where:
        return t
    return _copied(t.detach(), where).requires_grad_(t.requires_grad)


def _location_fix(map_location) -> Callable[[Tensor, str], Tensor]:
    """fix(tensor, saved location) for map_location: None (the saved location), 'cpu' or
    another device name, a device, a dict {saved location: location} or fn(tensor, saved
    location) returning a tensor (None: the saved location), as PyTorch's torch.load takes."""
    if callable(map_location) and not isinstance(map_location, (str, device)):
        def fix(t: Tensor, location: str) -> Tensor:
            r = map_location(t, location)
            return r if isinstance(r, Tensor) else _restore(t, location)
        return fix
    if map_location is None:
        return _restore
    if isinstance(map_location, dict):
        for target in map_location.values():
            check_device(target)
        return lambda t, location: _restore(t, map_location.get(location, location))
    check_device(map_location)
    return lambda t, location: _restore(t, map_location)


def _weights_only_message(src: Source, why: str) -> str:
    return (f"lazytorch.load({src.where}): Weights only load failed. Nothing in the file was "
            "run. This file can still be loaded, to do so you have two options, do those "
            "steps only if you trust the source of the checkpoint.\n\t(1) Re-running "
            "`torch.load` with `weights_only` set to `False` will likely succeed, but it can "
            "result in arbitrary code execution. Do it only if you got the file from a trusted "
            "source.\n\t(2) Alternatively, to load with `weights_only=True` please check the "
            f"recommended steps in the following error message.\n\tWeightsUnpickler error: {why}")


def _unpickler(fix, map_location, weights_only: bool, pickle_module,
               pickle_load_args: dict) -> Callable:
    """unpickler(file, fetch): the restricted or the full unpickler over file, its storages
    from fetch(key, dtype, numel)."""
    kw = {"encoding": "utf-8", **pickle_load_args}

    def make(file, fetch):
        rb = Rebuilder(fetch, fix, map_location)
        if weights_only:
            return WeightsUnpickler(file, rb, **kw)
        return full_unpickler((pickle_module or pickle).Unpickler)(file, rb, **kw)
    return make


# what pickle itself raises on a damaged stream (other errors of a weights_only=False load
# may come from the file's own code, and pass through)
_PICKLE_DAMAGE = (pickle.UnpicklingError, EOFError, UnicodeDecodeError, struct.error)


def _unpickling(src: Source, weights_only: bool, read: Callable[[], Any]) -> Any:
    """read(), its errors turned into lazytorch.load's (each naming the file)."""
    try:
        return read()
    except Refused as e:
        raise pickle.UnpicklingError(_weights_only_message(src, str(e))) from None
    except BadFile as e:
        src.fail(str(e))
    except (LoadError, MemoryError, KeyboardInterrupt):
        raise
    except ImportError as e:
        if weights_only:
            raise
        src.fail(f"its pickle names {e.name or 'a module'}, which cannot be imported ({e})",
                 pickle.UnpicklingError)
    except Exception as e:
        if not weights_only and not isinstance(e, _PICKLE_DAMAGE):
            raise      # the file's own code (weights_only=False) raised it
        src.fail(f"its pickle is damaged ({type(e).__name__}: {str(e)[:200]})",
                 pickle.UnpicklingError)


def _load_zip(src: Source, make: Callable, mm: np.ndarray | None, weights_only: bool) -> Any:
    reader = torch_zip.Reader(src)
    pkl = reader.record("data.pkl")

    def fetch(key: str, d, numel: int) -> np.ndarray:
        return reader.storage(key, np.dtype(d.np), numel, mm)

    return _unpickling(src, weights_only, lambda: make(io.BytesIO(pkl), fetch).load())


def _refuse(src: Source, head: bytes) -> None:
    """A clear error for every file that is not a checkpoint lazytorch reads."""
    if src.read_at(257, 5) == b"ustar":
        src.fail("is a tar archive (PyTorch's oldest checkpoint layout), which lazytorch does "
                 "not read")
    protocol0 = src.size > 1 and head[:1] in b"(]}cILFSVNG" \
        and src.read_at(src.size - 1, 1) == b"."
    if head[:1] == b"\x80" or protocol0:
        src.fail("is a pickle, not a checkpoint: lazytorch never unpickles a bare pickle, "
                 "because unpickling runs code from the file; nothing in it was run",
                 pickle.UnpicklingError)
    if src.size < 8:
        src.fail(f"has {src.size} bytes: it is not a checkpoint")
    n = int.from_bytes(head[:8], "little")
    if head[8:].lstrip()[:1] == b"{":
        src.fail(f"has a safetensors header length of {n} bytes, which does not fit the file "
                 f"({src.size} bytes)" if n + 8 > src.size else
                 f"has a safetensors header length of {n} bytes, beyond the limit of "
                 f"{safetensors_layout.MAX_HEADER}")
    src.fail("is neither PyTorch's checkpoint layout (a zip) nor the safetensors layout")


def load(f, map_location=None, pickle_module: Any = None, *, weights_only: bool | None = None,
         mmap: bool | None = None, **pickle_load_args) -> Any:
    """Load a checkpoint written by save, by PyTorch's torch.save or in the safetensors
    layout. With weights_only=True (the default unless a pickle_module is given) only
    tensors, containers and numbers are built and nothing in the file runs; weights_only=False
    unpickles normally, running code from the file: use it only for files you trust.
    map_location may be None, 'cpu', a device, a dict {saved location: location} or
    fn(tensor, location); mmap=True maps a file path into memory instead of reading it."""
    if weights_only is None:
        weights_only = pickle_module is None
    if weights_only and pickle_module is not None:
        raise RuntimeError("Can not safely load weights when explicit pickle_module is "
                           "specified")
    if mmap and not is_path(f):
        raise ValueError("f must be a file path in order to use the mmap argument")
    fix = _location_fix(map_location)
    with Source(f) as src:
        head = src.read_at(0, 64)
        mm = None
        if mmap and src.size:
            mm = np.memmap(src.path, dtype=np.uint8, mode="r")
        make = _unpickler(fix, map_location, weights_only, pickle_module, pickle_load_args)
        if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            return _load_zip(src, make, mm, weights_only)
        if safetensors_layout.looks_like(head, src.size):
            return safetensors_layout.read(src, fix, mm)
        if head.startswith(legacy.HEAD):
            if mmap:
                raise RuntimeError("mmap can only be used with files saved with "
                                   "`torch.save(_use_new_zipfile_serialization=True)`, please "
                                   "torch.save your checkpoint with this option in order to "
                                   "use mmap.")
            return _unpickling(src, weights_only, lambda: legacy.load(src, make))
        _refuse(src, head)
