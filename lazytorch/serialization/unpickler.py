"""Reading the pickle of a checkpoint in PyTorch's layout.

`Rebuilder` stands in for the torch names such a pickle uses (`torch._utils._rebuild_tensor_v2`,
`torch.FloatStorage`, `torch.Size`, ...): each resolves to a lazytorch function or class that
checks its arguments and builds lazytorch tensors from the file's storages.

`WeightsUnpickler` is the `weights_only=True` loader: like PyTorch's, it resolves only those
names, the containers a state dict uses and the user's allowlist (allowlist.py); it
constructs and calls nothing else and refuses every other global naming it. `FullUnpickler`
(`weights_only=False`) resolves the same torch names and every other global as pickle does,
which runs code from the file.
"""
from __future__ import annotations

import _compat_pickle
import math
import pickle
import pickletools
from collections import Counter, OrderedDict
from typing import Any, Callable

import numpy as np

from ..engine import backends
from ..frontend.size import Size
from ..frontend.tensor import Tensor, device
from ..ir import dtypes as dt
from . import allowlist as sg
from .formats import DTYPE_OF_STORAGE, OTHER_DTYPES, OTHER_STORAGES


class Refused(Exception):
    """A global or operation that weights_only=True does not allow (weights_only=False may)."""


class BadFile(Exception):
    """The checkpoint is damaged or names what lazytorch cannot build."""


class StorageType:
    """A storage class in a pickle (torch.FloatStorage, ...): names the storage's dtype."""

    def __init__(self, name: str, dtype: dt.DType):
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return f"torch.{self.name}"


_UNTYPED = StorageType("UntypedStorage", dt.uint8)


class _Storage:
    """A storage read from the file: its dtype, a 1-d array and the device it was saved
    from."""

    __slots__ = ("key", "dtype", "array", "location")

    def __init__(self, key: str, dtype: dt.DType, array: np.ndarray, location: str):
        self.key, self.dtype, self.array, self.location = key, dtype, array, location


def brief(x) -> str:
    """A value in a message: short, and never a repr of a deep structure."""
    if x is None or type(x) in (int, float, bool, str, bytes):
        r = repr(x)
        return r if len(r) <= 40 else r[:37] + "..."
    return f"a {type(x).__qualname__}"


def _index(x, what: str) -> int:
    if type(x) is not int or x < 0:
        raise BadFile(f"{what} is {brief(x)}, not a non-negative integer")
    return x


def _ints(x, what: str) -> tuple[int, ...]:
    if not isinstance(x, (tuple, list)):
        raise BadFile(f"{what} is {type(x).__name__}, not a tuple of integers")
    return tuple(_index(v, what) for v in x)


def _no_state(state, what: str) -> None:
    if state:
        raise BadFile(f"{what} carries Python attributes ({type(state).__name__}), which "
                      "lazytorch does not restore")


def _encode(obj, encoding="latin1"):
    """_codecs.encode as protocol-2 pickles use it for bytes (latin-1 only)."""
    if type(obj) is not str or encoding not in ("latin1", "latin-1"):
        raise BadFile(f"_codecs.encode is only allowed for bytes (latin-1), got {brief(encoding)}")
    return obj.encode("latin1")


def _bytearray(*args):
    if not args:
        return bytearray()
    if len(args) == 2 and type(args[0]) is str:
        return bytearray(_encode(*args))
    if len(args) == 1 and isinstance(args[0], (bytes, list)):
        return bytearray(args[0])
    raise BadFile("bytearray is only allowed from bytes, a list or a latin-1 string")


def _set(items=()):
    if not isinstance(items, (list, tuple)):
        raise BadFile("set is only allowed from a list or tuple")
    return set(items)


class Rebuilder:
    """The torch names a checkpoint's pickle may use, bound to one file: `fetch(key, dtype,
    numel)` reads a storage as a 1-d array, `fix(tensor, location)` applies map_location."""

    def __init__(self, fetch: Callable[[str, dt.DType, int], np.ndarray],
                 fix: Callable[[Tensor, str], Tensor], map_location: Any):
        from ..nn.parameter import Parameter
        self.fetch, self.fix, self.map_location = fetch, fix, map_location
        self.Parameter = Parameter
        self.storages: dict[str, _Storage] = {}
        g: dict[str, Any] = {
            "torch._utils._rebuild_tensor": self.rebuild_tensor,
            "torch._utils._rebuild_tensor_v2": self.rebuild_tensor_v2,
            "torch._utils._rebuild_tensor_v3": self.rebuild_tensor_v3,
            "torch._utils._rebuild_parameter": self.rebuild_parameter,
            "torch._utils._rebuild_parameter_with_state": self.rebuild_parameter_with_state,
            "torch._tensor._rebuild_from_type_v2": self.rebuild_from_type_v2,
            "torch.nn.parameter.Parameter": Parameter,
            "torch.Tensor": Tensor, "torch.Size": Size, "torch.device": device,
            "torch.storage.UntypedStorage": _UNTYPED,
            "collections.OrderedDict": OrderedDict, "collections.Counter": Counter,
            "_codecs.encode": _encode, "builtins.bytearray": _bytearray, "builtins.set": _set,
            "builtins.complex": complex,
        }
        for name, d in DTYPE_OF_STORAGE.items():
            g[f"torch.{name}"] = StorageType(name, d)
            g[f"torch.{d.name}"] = d
        self.globals = g
        self.rebuilds = {self.rebuild_tensor, self.rebuild_tensor_v2, self.rebuild_tensor_v3,
                         self.rebuild_parameter, self.rebuild_parameter_with_state}

    # ------------------------------------------------------------------ names
    def resolve(self, module: str, name: str):
        """The object a torch name stands for; None for names outside the table. A torch
        dtype lazytorch lacks is an error naming it."""
        full = f"{module}.{name}"
        obj = self.globals.get(full)
        if obj is None and module == "torch":
            lacking = OTHER_STORAGES.get(name, name if name in OTHER_DTYPES else None)
            if lacking is not None:
                raise BadFile(f"it holds tensors of dtype torch.{lacking}, which lazytorch "
                              f"does not support (supported: "
                              f"{', '.join(d.name for d in DTYPE_OF_STORAGE.values())})")
        return obj

    # ------------------------------------------------------------------ storages
    def _check_location(self, location: str) -> None:
        m = self.map_location
        if callable(m) and not isinstance(m, (str, device)):
            return
        target = location if m is None else (m.get(location, location) if isinstance(m, dict)
                                             else str(m))
        target = target.decode("ascii") if isinstance(target, bytes) else str(target)
        if target.startswith("cuda") and not _cuda_runs():
            raise BadFile("Attempting to deserialize object on a CUDA device but "
                          "torch.cuda.is_available() is False. If you are running on a "
                          "CPU-only machine, please use torch.load with "
                          "map_location=torch.device('cpu') to map your storages to the CPU.")
        kind = target.split(":")[0]
        if kind != "cpu" and kind not in backends.device_types():
            raise BadFile(f"a storage is on device '{target}', a device type no backend serves "
                          f"here (they serve {', '.join(backends.device_types())}): pass "
                          "map_location='cpu'")

    def persistent_load(self, pid) -> _Storage:
        """('storage', storage type, key, location, numel), and in the legacy layout a sixth
        entry, None or (view key, offset, numel) naming a part of the storage: the storage,
        read once per key."""
        if type(pid) is not tuple or len(pid) not in (5, 6):
            raise BadFile(f"a persistent id is {brief(pid)}, not a storage record ('storage', "
                          "type, key, location, numel)")
        kind, stype, key, location, numel = pid[:5]
        kind = kind.decode("ascii") if isinstance(kind, bytes) else kind
        location = location.decode("ascii") if isinstance(location, bytes) else location
        if kind != "storage" or not isinstance(stype, StorageType) or type(key) is not str \
                or type(location) is not str:
            raise BadFile(f"a persistent id ({', '.join(brief(x) for x in pid)}) is not a "
                          "storage record")
        numel = _index(numel, f"storage {key}'s element count")
        self._check_location(location)
        s = self.storages.get(key)
        if s is None:
            s = self.storages[key] = _Storage(key, stype.dtype,
                                              self.fetch(key, stype.dtype, numel), location)
        elif s.dtype is not stype.dtype or s.array.size != numel:
            raise BadFile(f"storage {key} is named twice with different types or sizes")
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return s
        if type(view) is not tuple or len(view) != 3 or type(view[0]) is not str:
            raise BadFile(f"storage {key} has a damaged view record")
        offset = _index(view[1], f"a view of storage {key}'s offset")
        size = _index(view[2], f"a view of storage {key}'s size")
        if offset + size > numel:
            raise BadFile(f"a view of storage {key} ({size} elements at {offset}) runs past its "
                          f"{numel} elements")
        v = self.storages.get(view[0])
        if v is None:
            v = self.storages[view[0]] = _Storage(view[0], s.dtype,
                                                  s.array[offset:offset + size], location)
        return v

    # ------------------------------------------------------------------ tensors
    def _tensor(self, storage, offset, size, stride, requires_grad, dtype=None) -> Tensor:
        from ..frontend.creation import from_array
        if not isinstance(storage, _Storage):
            raise BadFile(f"a tensor's storage is {type(storage).__name__}, not a storage "
                          "record")
        offset = _index(offset, "a tensor's storage offset")
        size = _ints(size, "a tensor's size")
        stride = _ints(stride, "a tensor's stride")
        if len(stride) != len(size):
            raise BadFile(f"a tensor has size {list(size)} but stride {list(stride)}")
        if type(requires_grad) is not bool:
            raise BadFile(f"a tensor's requires_grad is {brief(requires_grad)}")
        arr = storage.array
        if dtype is not None:     # an untyped storage (bytes) holding elements of dtype
            item = np.dtype(dtype.np).itemsize
            if arr.size % item:
                raise BadFile(f"storage {storage.key} holds {arr.size} bytes, not a whole "
                              f"number of {dtype} elements")
            arr = arr.view(dtype.np)
        d = dtype or storage.dtype
        if math.prod(size) == 0:
            if any(n >= 1 << 48 for n in size):
                raise BadFile(f"an empty tensor has size {list(size)}, too large a dimension")
            view = np.empty(size, arr.dtype)
        else:
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= arr.size:
                raise BadFile(f"a tensor of size {list(size)}, stride {list(stride)} and "
                              f"offset {offset} reaches element {last} of storage "
                              f"{storage.key}, which has {arr.size}")
            view = np.lib.stride_tricks.as_strided(
                arr[offset:], size, [s * arr.itemsize for s in stride], writeable=False)
        t = from_array(view, d)
        if requires_grad:
            if not d.is_floating_point:
                raise BadFile(f"a {d} tensor requires grad; only floating point tensors can")
            t.requires_grad_(True)
        return self.fix(t, storage.location)

    def rebuild_tensor(self, storage, storage_offset, size, stride):
        return self._tensor(storage, storage_offset, size, stride, False)

    def rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad,
                          backward_hooks, metadata=None):
        _no_state(metadata, "a tensor")
        return self._tensor(storage, storage_offset, size, stride, requires_grad)

    def rebuild_tensor_v3(self, storage, storage_offset, size, stride, requires_grad,
                          backward_hooks, dtype, metadata=None):
        _no_state(metadata, "a tensor")
        if not isinstance(dtype, dt.DType):
            raise BadFile(f"a tensor's dtype is {brief(dtype)}")
        return self._tensor(storage, storage_offset, size, stride, requires_grad, dtype)

    def rebuild_parameter(self, data, requires_grad, backward_hooks):
        if not isinstance(data, Tensor) or type(requires_grad) is not bool:
            raise BadFile(f"a parameter is built from {type(data).__name__} and "
                          f"requires_grad={brief(requires_grad)}")
        if requires_grad and not data.dtype.is_floating_point:
            raise BadFile(f"a {data.dtype} parameter requires grad; only floating point "
                          "tensors can")
        return self.Parameter(data, requires_grad=requires_grad)

    def rebuild_parameter_with_state(self, data, requires_grad, backward_hooks, state):
        _no_state(state, "a parameter")
        return self.rebuild_parameter(data, requires_grad, backward_hooks)

    def rebuild_from_type_v2(self, func, new_type, args, state):
        if func not in self.rebuilds or new_type not in (Tensor, self.Parameter) \
                or not isinstance(args, tuple):
            raise BadFile(f"a tensor of type {describe(new_type)} is rebuilt by "
                          f"{describe(func)}")
        _no_state(state, "a tensor")
        t = func(*args)
        if new_type is self.Parameter and not isinstance(t, self.Parameter):
            t = self.Parameter(t, requires_grad=t.requires_grad)
        return t


def describe(obj) -> str:
    """A short name for an object in a message (never a repr of a deep structure)."""
    if isinstance(obj, type) or callable(obj):
        name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
        return f"{getattr(obj, '__module__', '')}.{name}".lstrip(".")
    return f"an object of type {type(obj).__qualname__}"


def _compat(module: str, name: str) -> tuple[str, str]:
    """Python 2 names (protocol < 3 pickles write them) mapped as pickle maps them."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _display(full: str) -> str:
    return full[len("builtins."):] if full.startswith("builtins.") else full


class _Opcodes(dict):
    """The opcodes a restricted load runs; any other is refused by name."""

    def __missing__(self, code: int):
        try:
            name = pickletools.code2op[chr(code)].name
        except KeyError:
            raise BadFile(f"its pickle has the unknown opcode {code:#04x}") from None
        raise Refused(f"Unsupported operand {name} ({code:#04x}): the weights_only loader "
                      "does not run it")


class WeightsUnpickler(pickle._Unpickler):
    """Resolves only the Rebuilder's names and the user's allowlist; calls, constructs and
    fills only those (PyTorch's weights_only rules: BUILD on OrderedDict, Counter and allowed
    classes, APPEND on lists, SETITEM on dicts); refuses every other global and the opcodes
    that reach objects by other routes (INST, OBJ, EXT*, out-of-band buffers) or allocate
    what the file claims before reading it (BYTEARRAY8)."""

    dispatch = _Opcodes({k: v for k, v in pickle._Unpickler.dispatch.items()
                         if k not in {op[0] for op in (pickle.INST, pickle.OBJ, pickle.EXT1,
                                                       pickle.EXT2, pickle.EXT4,
                                                       pickle.NEXT_BUFFER,
                                                       pickle.READONLY_BUFFER,
                                                       pickle.BYTEARRAY8)}})

    def __init__(self, file, rebuilder: Rebuilder, **kw):
        super().__init__(file, **kw)
        self.rb = rebuilder
        self.user = sg.user_globals()
        # what REDUCE may call (torch.Tensor is a name only: its legacy constructor is not)
        self.allowed_ids = {id(v) for v in rebuilder.globals.values() if v is not Tensor} | \
            {id(v) for v in self.user.values()}
        self.classes = {OrderedDict, Counter, Size} | \
            {v for v in self.user.values() if isinstance(v, type)}

    def find_class(self, module: str, name: str):
        if self.proto < 3 and self.fix_imports:
            module, name = _compat(module, name)
        full = f"{module}.{name}"
        if module in sg.BLOCKED_MODULES:
            raise Refused(f"Trying to load unsupported GLOBAL {full} whose module {module} is "
                          "blocked.")
        obj = self.rb.resolve(module, name)
        if obj is None:
            obj = self.user.get(full)
        if obj is None:
            shown = _display(full)
            raise Refused(f"Unsupported global: GLOBAL {shown} was not an allowed global by "
                          f"default. Please use `torch.serialization.add_safe_globals([{shown}])`"
                          f" or the `torch.serialization.safe_globals([{shown}])` context "
                          "manager to allowlist this global if you trust this class/function.")
        return obj

    def persistent_load(self, pid):
        return self.rb.persistent_load(pid)

    def _allowed(self, obj) -> bool:
        return id(obj) in self.allowed_ids

    def load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        if not self._allowed(func) or not callable(func):
            raise Refused(f"Trying to call reduce for unrecognized function {describe(func)}")
        if not isinstance(args, tuple):
            raise BadFile(f"the arguments of {describe(func)} are {type(args).__name__}, not "
                          "a tuple")
        self.stack[-1] = func(*args)

    dispatch[pickle.REDUCE[0]] = load_reduce

    def _new(self, cls, args, kwargs):
        if not isinstance(args, tuple) or not isinstance(kwargs, dict):
            raise BadFile("NEWOBJ needs a tuple of arguments")
        if cls is self.rb.Parameter:
            return self.rb.Parameter(*args, **kwargs)
        if cls not in self.classes:
            raise Refused("Can only create new object for nn.Parameter or classes allowlisted "
                          f"via `add_safe_globals` but got {describe(cls)}")
        return cls.__new__(cls, *args, **kwargs)

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args, {}))

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args, kwargs))

    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        t = type(inst)
        if t in (OrderedDict, Counter):
            if not isinstance(state, dict) or not all(type(k) is str for k in state):
                raise BadFile(f"the attributes of an {t.__name__} are not a dict of names")
            inst.__dict__.update(state)
            return
        if t not in self.classes or t is Size:
            raise Refused("Can only build Tensor, Parameter, OrderedDict or types allowlisted "
                          f"via `add_safe_globals`, but got {describe(t)}")
        self.stack.append(state)
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build

    def _target(self, kinds: tuple, op: str):
        obj = self.stack[-1]
        if type(obj) not in kinds:
            raise Refused(f"Can only {op} for {', '.join(k.__name__ for k in kinds)}, but got "
                          f"{type(obj)!r}")
        return obj

    def load_append(self):
        value = self.stack.pop()
        self._target((list,), "APPEND").append(value)

    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self):
        items = self.pop_mark()
        self._target((list,), "APPENDS").extend(items)

    dispatch[pickle.APPENDS[0]] = load_appends

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        self._target((dict, OrderedDict, Counter), "SETITEM")[key] = value

    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self):
        items = self.pop_mark()
        target = self._target((dict, OrderedDict, Counter), "SETITEMS")
        if len(items) % 2:
            raise BadFile("SETITEMS has a key without a value")
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_additems(self):
        items = self.pop_mark()
        self._target((set,), "ADDITEMS").update(items)

    dispatch[pickle.ADDITEMS[0]] = load_additems


def full_unpickler(base: type) -> type:
    """The weights_only=False unpickler over `base` (a pickle module's Unpickler): torch's
    names resolve to lazytorch's, every other global as pickle resolves it."""

    class FullUnpickler(base):
        def __init__(self, file, rebuilder: Rebuilder, **kw):
            super().__init__(file, **kw)
            self.rb = rebuilder

        def find_class(self, module: str, name: str):
            m, n = _compat(module, name)
            obj = self.rb.resolve(m, n)
            if obj is not None:
                return obj
            if m == "torch" or m.startswith("torch."):
                raise BadFile(f"it names {m}.{n}, a PyTorch object that lazytorch does not "
                              "provide (a whole PyTorch module loads only in PyTorch: save "
                              "its state_dict() instead)")
            return super().find_class(module, name)

        def persistent_load(self, pid):
            return self.rb.persistent_load(pid)

    return FullUnpickler


def _cuda_runs() -> bool:
    """Whether CUDA tensors can be made here (the CUDA backend starts if it can)."""
    try:
        backends.start("cuda")
    except RuntimeError:
        return False
    return True
