"""save/load: PyTorch's checkpoint layout written and read back (members, alignment and the
pickle's globals checked with zipfile and pickletools), the safetensors layout, nested
structures, whole modules, and how files are written (atomic, umask, symlinks, temporary files
of killed saves, memory). Interop with PyTorch itself is in test_serialization_pytorch.py,
hostile and damaged files in test_serialization_safety.py."""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import pickle
import pickletools
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.optim as optim
from lazytorch.serialization import target
from tests.ckpt_files import TinyNet, data_offsets
from tests.conftest import no_gpu

# dtype, numpy dtype, PyTorch's storage class, safetensors code (from their specifications)
ALL_DTYPES = [(torch.float32, np.float32, "FloatStorage", "F32"),
              (torch.float64, np.float64, "DoubleStorage", "F64"),
              (torch.float16, np.float16, "HalfStorage", "F16"),
              (torch.bfloat16, torch.bfloat16.np, "BFloat16Storage", "BF16"),
              (torch.int64, np.int64, "LongStorage", "I64"),
              (torch.int32, np.int32, "IntStorage", "I32"),
              (torch.int16, np.int16, "ShortStorage", "I16"),
              (torch.int8, np.int8, "CharStorage", "I8"),
              (torch.uint8, np.uint8, "ByteStorage", "U8"),
              (torch.bool, np.bool_, "BoolStorage", "BOOL")]
IDS = [c for *_, c in ALL_DTYPES]


def roundtrip(obj, save=torch.save, **kw):
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    return torch.load(buf, **kw)


def globals_of(pkl: bytes) -> list[str]:
    return [arg for op, arg, _ in pickletools.genops(pkl) if op.name == "GLOBAL"]


# ----------------------------------------------------------------------------- the zip layout
@pytest.mark.parametrize("lt_dtype,np_dtype,storage,code", ALL_DTYPES, ids=IDS)
def test_every_dtype_round_trips_bit_for_bit(lt_dtype, np_dtype, storage, code, rng):
    arr = (rng.standard_normal((3, 5)) * 50).astype(np_dtype)
    buf = io.BytesIO()
    torch.save(torch.tensor(arr), buf)
    z = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    assert z.read("archive/data/0") == arr.tobytes()          # native order, as PyTorch
    assert z.read("archive/byteorder") == sys.byteorder.encode()
    assert globals_of(z.read("archive/data.pkl")) == [
        "torch._utils _rebuild_tensor_v2", f"torch {storage}", "collections OrderedDict"]
    buf.seek(0)
    out = torch.load(buf)
    assert out.dtype == lt_dtype and out.shape == (3, 5)
    np.testing.assert_array_equal(np.array(out.tolist(), arr.dtype), arr)   # (bfloat16 too)


def test_zip_members_order_and_alignment(tmp_path):
    p = tmp_path / "my.ckpt.pt"
    torch.save({"a": torch.ones(3), "b": torch.arange(5), "c": torch.zeros(0)}, p)
    raw = p.read_bytes()
    z = zipfile.ZipFile(p)
    assert z.namelist() == ["my/data.pkl", "my/.format_version", "my/.storage_alignment",
                            "my/byteorder", "my/data/0", "my/data/1", "my/data/2",
                            "my/version", "my/.data/serialization_id"]
    assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    assert z.read("my/version") == b"3\n" and z.read("my/.format_version") == b"1"
    assert z.read("my/.storage_alignment") == b"64"
    assert len(z.read("my/.data/serialization_id")) == 40
    assert z.testzip() is None                                 # every CRC matches
    offsets = data_offsets(raw)
    for k in ("0", "1", "2"):
        assert offsets[f"my/data/{k}"] % 64 == 0
    assert raw[offsets["my/data/1"]:][:40] == np.arange(5).tobytes()


def test_pickle_names_only_what_pytorchs_safe_loader_allows():
    m = nn.Linear(2, 3)
    obj = {"sd": m.state_dict(), "p": m.weight, "dt": torch.float16, "dev": torch.device("cpu"),
           "size": torch.Size([2, 3]), "b": b"\x00\xff", "t": (1, 2.5, None, True, "s")}
    buf = io.BytesIO()
    torch.save(obj, buf)
    pkl = zipfile.ZipFile(buf).read("archive/data.pkl")
    ops = {op.name for op, _, _ in pickletools.genops(pkl)}
    # the opcodes of PyTorch's weights_only unpickler (torch/_weights_only_unpickler.py)
    assert ops <= {"PROTO", "GLOBAL", "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET", "MARK",
                   "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_TUPLE", "EMPTY_DICT",
                   "EMPTY_LIST", "SETITEM", "SETITEMS", "APPEND", "APPENDS", "BINUNICODE",
                   "BININT", "BININT1", "BININT2", "BINFLOAT", "LONG1", "NONE", "NEWTRUE",
                   "NEWFALSE", "REDUCE", "BUILD", "BINPERSID", "STOP"}, ops
    assert set(globals_of(pkl)) == {
        "collections OrderedDict", "torch._utils _rebuild_tensor_v2",
        "torch._utils _rebuild_parameter", "torch FloatStorage", "torch float16",
        "torch device", "torch Size", "_codecs encode"}


# ----------------------------------------------------------------------------- structures
def test_nested_structure_round_trip():
    a = torch.arange(6).reshape(2, 3)
    obj = {
        "model": OrderedDict([("fc.weight", torch.randn(3, 4)), ("fc.bias", torch.zeros(3))]),
        "optimizer": {"state": {0: {"step": torch.tensor(3.0)}, 1: {}},
                      "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1],
                                        "foreach": None, "nesterov": False}]},
        "epoch": 7, "big": 2 ** 70, "neg": -3, "pi": math.pi, "tiny": 5e-324,
        "nan": float("nan"), "inf": float("inf"), "ninf": -float("inf"),
        "name": "run-1 ✓", "empty": [], "nested": [[1, (2, "x")], {"k": None}],
        "tuple_key": {(1, "a"): 1}, "float_key": {0.5: "half"}, "bytes": b"\x00\xff",
        "dtype": torch.float16, "device": torch.device("cpu"), "size": torch.Size([2, 3]),
        "scalar0d": torch.tensor(1.5), "empty_t": torch.zeros(0, 3), "view": a.t(),
        "lazy": a * 2 + 1, "set": {1, 2}, "complex": 1 + 2j,
    }
    for save in (torch.save, torch.serialization.save_safetensors):
        out = roundtrip({k: v for k, v in obj.items()
                         if save is torch.save or k not in ("set", "complex")}, save)
        assert type(out["model"]) is OrderedDict and list(out["model"]) == ["fc.weight",
                                                                            "fc.bias"]
        np.testing.assert_array_equal(out["model"]["fc.weight"].numpy(),
                                      obj["model"]["fc.weight"].numpy())
        assert list(out["optimizer"]["state"]) == [0, 1]
        assert out["optimizer"]["state"][0]["step"].item() == 3.0
        assert out["optimizer"]["param_groups"] == obj["optimizer"]["param_groups"]
        for k in ("epoch", "big", "neg", "pi", "tiny", "inf", "ninf", "name", "empty", "bytes",
                  "dtype", "float_key", "tuple_key", "nested"):
            assert out[k] == obj[k] and type(out[k]) is type(obj[k]), k
        assert math.isnan(out["nan"])
        assert out["device"] == torch.device("cpu")
        assert out["size"] == (2, 3) and type(out["size"]) is torch.Size
        assert out["scalar0d"].shape == () and out["scalar0d"].item() == 1.5
        assert out["empty_t"].shape == (0, 3)
        np.testing.assert_array_equal(out["view"].numpy(), np.arange(6).reshape(2, 3).T)
        np.testing.assert_array_equal(out["lazy"].numpy(), np.arange(6).reshape(2, 3) * 2 + 1)
        if save is torch.save:
            assert out["set"] == {1, 2} and out["complex"] == 1 + 2j


def test_numpy_values_need_weights_only_false_as_in_pytorch():
    obj = {"np": np.arange(4.0), "npscalar": np.float32(2.5)}
    with pytest.raises(pickle.UnpicklingError, match="Unsupported global: GLOBAL numpy"):
        roundtrip(obj)
    out = roundtrip(obj, weights_only=False)
    assert out["np"].tolist() == [0, 1, 2, 3] and out["npscalar"] == np.float32(2.5)
    out = roundtrip(obj, torch.serialization.save_safetensors)   # no pickle: loads as data
    assert isinstance(out["np"], np.ndarray) and out["np"].tolist() == [0, 1, 2, 3]
    assert isinstance(out["npscalar"], np.float32) and out["npscalar"] == 2.5


def test_shared_tensors_stay_shared_and_flags_survive():
    w = torch.randn(2, 2, requires_grad=True)
    y = w * 2                                  # not a leaf: PyTorch saves its flag as well
    for save in (torch.save, torch.serialization.save_safetensors):
        out = roundtrip({"a": w, "b": [w], "c": w.detach(), "y": y}, save)
        assert out["a"] is out["b"][0]
        assert out["a"].requires_grad and out["a"].is_leaf
        assert not out["c"].requires_grad
        assert out["y"].requires_grad and out["y"].is_leaf
        np.testing.assert_array_equal(out["a"].detach().numpy(), w.detach().numpy())
        np.testing.assert_array_equal(out["y"].detach().numpy(), w.detach().numpy() * 2)


def test_parameters_stay_parameters():
    p = nn.Parameter(torch.randn(3))
    q = nn.Parameter(torch.ones(2), requires_grad=False)
    out = roundtrip({"p": p, "q": q})
    assert type(out["p"]) is nn.Parameter and out["p"].requires_grad
    assert type(out["q"]) is nn.Parameter and not out["q"].requires_grad
    np.testing.assert_array_equal(out["p"].detach().numpy(), p.detach().numpy())


def test_state_dict_metadata_survives():
    sd = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).state_dict()
    out = roundtrip(sd)
    assert type(out) is OrderedDict and list(out) == list(sd)
    assert out._metadata == sd._metadata


def test_unsupported_arguments():
    with pytest.raises(ValueError, match="_use_new_zipfile_serialization"):
        torch.save({}, io.BytesIO(), _use_new_zipfile_serialization=False)
    with pytest.raises(TypeError, match="pickle_module"):
        torch.save({}, io.BytesIO(), pickle_module=json)
    buf = io.BytesIO()
    torch.save({"x": torch.ones(1)}, buf, _disable_byteorder_record=True)
    assert "archive/byteorder" not in zipfile.ZipFile(buf).namelist()
    buf.seek(0)
    assert torch.load(buf)["x"].tolist() == [1.0]
    buf.seek(0)
    with pytest.raises(RuntimeError, match="explicit pickle_module"):
        torch.load(buf, pickle_module=pickle, weights_only=True)
    buf.seek(0)
    assert torch.load(buf, pickle_module=pickle)["x"].tolist() == [1.0]   # weights_only=False


@no_gpu
def test_map_location_and_weights_only():
    t = torch.arange(3)
    for save in (torch.save, torch.serialization.save_safetensors):
        for loc in (None, "cpu", torch.device("cpu"), {"cuda:0": "cpu"}):
            assert roundtrip(t, save, map_location=loc).tolist() == [0, 1, 2]
        assert roundtrip(t, save, weights_only=True).tolist() == [0, 1, 2]
        assert roundtrip(t, save, weights_only=False).tolist() == [0, 1, 2]
        seen = []
        out = roundtrip(t, save, map_location=lambda s, loc: seen.append(loc) or s * 10)
        assert out.tolist() == [0, 10, 20] and seen == ["cpu"]
        with pytest.raises(RuntimeError, match="CUDA"):
            roundtrip(t, save, map_location="cuda")


def test_mmap_loads_without_reading(tmp_path):
    sd = {"w": torch.randn(64, 32), "b": torch.arange(7, dtype=torch.int16)}
    for save, name in ((torch.save, "a.pt"), (torch.serialization.save_safetensors, "a.st")):
        p = tmp_path / name
        save(sd, p)
        out = torch.load(p, mmap=True)
        for k in sd:
            np.testing.assert_array_equal(out[k].numpy(), sd[k].numpy())
        base = out["w"].numpy()
        while base.base is not None and not isinstance(base, np.memmap):
            base = base.base
        assert isinstance(base, np.memmap)          # the data is the file's mapping
    with pytest.raises(ValueError, match="file path"):
        torch.load(io.BytesIO(p.read_bytes()), mmap=True)


# ----------------------------------------------------------------------------- whole modules
def test_whole_module_save_and_load():
    model = TinyNet()
    x = torch.randn(5, 3)
    buf = io.BytesIO()
    torch.save(model, buf)
    before = TinyNet.restored
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match=r"(?s)weights_only.*arbitrary code "
                       r"execution.*trusted source.*GLOBAL tests\.ckpt_files\.TinyNet"):
        torch.load(buf)
    assert TinyNet.restored == before                  # nothing from the file ran
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert TinyNet.restored == before + 1
    assert type(loaded) is TinyNet and loaded.note == "tiny"
    assert type(loaded.fc.weight) is nn.Parameter and loaded.fc.weight.requires_grad
    np.testing.assert_array_equal(loaded(x).detach().numpy(), model(x).detach().numpy())
    assert list(loaded.state_dict()) == list(model.state_dict())
    loaded(x).sum().backward()                          # it trains
    assert loaded.fc.weight.grad is not None


def test_whole_module_of_library_classes():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                          nn.LazyLinear(3) if hasattr(nn, "LazyLinear") else nn.Linear(8, 3))
    x = torch.randn(2, 1, 4, 4)
    model.eval()
    out = roundtrip(model, weights_only=False)
    out.eval()
    np.testing.assert_array_equal(out(x).detach().numpy(), model(x).detach().numpy())


def test_whole_module_loads_under_pytorchs_layout_allowlist():
    """word_language_model saves the whole model and loads it with weights_only=True, listing
    the layers by PyTorch's file layout (torch.nn.modules.<file>.<Class>)."""
    import importlib
    mods = torch.nn.modules
    model = nn.Sequential(nn.Embedding(10, 4), nn.Dropout(0.2), nn.LSTM(4, 4),
                          nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8), 1))
    with pytest.raises(pickle.UnpicklingError, match="allowed global"):
        roundtrip(model)
    allow = [mods.container.Sequential, mods.sparse.Embedding, mods.dropout.Dropout,
             mods.rnn.LSTM, mods.transformer.TransformerEncoder,
             mods.transformer.TransformerEncoderLayer, mods.activation.MultiheadAttention,
             mods.linear.Linear, mods.linear.NonDynamicallyQuantizableLinear,
             mods.normalization.LayerNorm, mods.container.ModuleList, torch.nn.functional.relu]
    with torch.serialization.safe_globals(allow):
        out = roundtrip(model)
    assert [type(m) for m in out.modules()] == [type(m) for m in model.modules()]
    assert importlib.import_module("lazytorch.nn.modules.batchnorm").BatchNorm2d is \
        nn.BatchNorm2d
    assert isinstance(nn.BatchNorm1d(3), mods.batchnorm._BatchNorm)


def test_unpicklable_objects_fail_before_the_file_is_touched(tmp_path):
    p = tmp_path / "ckpt.pt"
    torch.save({"x": torch.ones(2)}, p)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        torch.save({"x": torch.zeros(2), "f": lambda: 1}, p)
    assert torch.load(p)["x"].tolist() == [1.0, 1.0]
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def test_allowlisted_globals_load_with_weights_only():
    obj = {"args": argparse.Namespace(lr=0.1, name="run"), "w": torch.ones(2)}
    with pytest.raises(pickle.UnpicklingError, match="GLOBAL argparse.Namespace was not an "
                       "allowed global"):
        roundtrip(obj)
    with torch.serialization.safe_globals([argparse.Namespace]):
        out = roundtrip(obj)
    assert out["args"] == obj["args"] and out["w"].tolist() == [1.0, 1.0]
    assert argparse.Namespace not in torch.serialization.get_safe_globals()
    torch.serialization.add_safe_globals([(argparse.Namespace, "argparse.Namespace")])
    try:
        assert roundtrip(obj)["args"] == obj["args"]
    finally:
        torch.serialization.clear_safe_globals()
    with pytest.raises(pickle.UnpicklingError, match="GLOBAL argparse.Namespace"):
        roundtrip(obj)


# ----------------------------------------------------------------------------- writing files
def test_path_and_atomic_write(tmp_path):
    p = tmp_path / "ckpt.pt"
    torch.save({"x": torch.ones(3)}, p)
    torch.save({"x": torch.zeros(3)}, str(p))          # overwrite in place
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]  # no temporary left behind
    assert torch.load(p)["x"].tolist() == [0.0, 0.0, 0.0]
    with open(p, "rb") as f:
        assert torch.load(f)["x"].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(RuntimeError, match="Parent directory .*nowhere does not exist"):
        torch.save({}, tmp_path / "nowhere" / "x.pt")
    with pytest.raises(IsADirectoryError):
        torch.save({}, tmp_path)
    with pytest.raises(TypeError, match="binary mode"):
        torch.save({}, io.StringIO())


def test_a_stream_that_cannot_seek():
    class Pipe:
        def __init__(self) -> None:
            self.data = io.BytesIO()

        def write(self, b) -> int:
            return self.data.write(b)

        def flush(self) -> None:
            pass

    pipe = Pipe()
    torch.save({"x": torch.arange(5.0), "y": torch.ones(3, 3)}, pipe)
    raw = pipe.data.getvalue()
    assert all(v % 64 == 0 for k, v in data_offsets(raw).items() if "/data/" in k)
    out = torch.load(io.BytesIO(raw))
    assert out["x"].tolist() == [0, 1, 2, 3, 4] and out["y"].tolist() == [[1.0] * 3] * 3


def test_a_save_that_fails_midway_leaves_the_old_file(tmp_path, monkeypatch):
    from lazytorch.serialization import torch_zip
    p = tmp_path / "ckpt.pt"
    torch.save({"x": torch.ones(3)}, p)
    chunks = torch_zip.array_chunks

    def failing(arr, chunk=1 << 24):
        yield from chunks(arr, 8)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch_zip, "array_chunks", failing)
    with pytest.raises(KeyboardInterrupt):
        torch.save({"x": torch.zeros(30)}, p)
    assert torch.load(p)["x"].tolist() == [1.0, 1.0, 1.0]
    assert os.listdir(tmp_path) == ["ckpt.pt"]


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        for save, name in ((torch.save, "a.pt"), (torch.serialization.save_safetensors, "b")):
            save({"x": torch.ones(1)}, tmp_path / name)
            assert os.stat(tmp_path / name).st_mode & 0o777 == mode
    finally:
        os.umask(old)


def test_an_existing_file_keeps_its_mode(tmp_path):
    p = tmp_path / "ckpt.pt"
    p.write_bytes(b"old")
    os.chmod(p, 0o640)
    torch.save({"x": torch.ones(1)}, p)
    assert os.stat(p).st_mode & 0o777 == 0o640


def test_a_symlink_is_written_through(tmp_path):
    real = tmp_path / "store" / "real.pt"
    real.parent.mkdir()
    torch.save({"x": torch.ones(1)}, real)
    link = tmp_path / "latest.pt"
    link.symlink_to(real)
    torch.save({"x": torch.zeros(1)}, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert torch.load(real)["x"].tolist() == [0.0]
    assert sorted(os.listdir(real.parent)) == ["real.pt"]
    dangling = tmp_path / "new.pt"
    dangling.symlink_to(tmp_path / "store" / "made.pt")
    torch.save({"x": torch.ones(1)}, dangling)
    assert torch.load(tmp_path / "store" / "made.pt")["x"].tolist() == [1.0]


def test_stale_temporary_files_are_swept(tmp_path):
    stale = tmp_path / f"{target.TEMP_PREFIX}dead{target.TEMP_SUFFIX}"
    fresh = tmp_path / f"{target.TEMP_PREFIX}live{target.TEMP_SUFFIX}"
    other = tmp_path / f"notes{target.TEMP_SUFFIX}"
    for f in (stale, fresh, other):
        f.write_bytes(b"x" * 100)
    hours_ago = time.time() - 2 * 3600
    os.utime(stale, (hours_ago, hours_ago))
    os.utime(other, (hours_ago, hours_ago))
    torch.save({"x": torch.ones(1)}, tmp_path / "ckpt.pt")
    assert sorted(os.listdir(tmp_path)) == sorted(["ckpt.pt", fresh.name, other.name])


def test_a_killed_save_leaves_the_old_file_and_its_temp_is_swept_later(tmp_path):
    p = tmp_path / "ckpt.pt"
    torch.save({"x": torch.ones(2)}, p)
    script = textwrap.dedent(f"""
        import sys, time
        import lazytorch as torch
        from lazytorch.serialization import torch_zip
        chunks = torch_zip.array_chunks
        def slow(arr, chunk=1 << 24):
            for i, c in enumerate(chunks(arr, 1 << 16)):
                yield c
                if i == 3:
                    print("writing", flush=True)
                    time.sleep(60)
        torch_zip.array_chunks = slow
        torch.save({{"x": torch.zeros(1 << 20)}}, {str(p)!r})
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             cwd=os.getcwd())
    try:
        assert child.stdout.readline().strip() == b"writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert torch.load(p)["x"].tolist() == [1.0, 1.0]            # the old file is intact
    temps = [f for f in os.listdir(tmp_path) if f.startswith(target.TEMP_PREFIX)]
    assert len(temps) == 1                                      # a kill leaves its temp...
    hours_ago = time.time() - 2 * 3600
    os.utime(tmp_path / temps[0], (hours_ago, hours_ago))
    torch.save({"x": torch.ones(3)}, tmp_path / "other.pt")     # ...which a later save sweeps
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt", "other.pt"]


_MEMORY_SCRIPT = """
import os, resource, sys
import numpy as np
import lazytorch as torch
path, n = sys.argv[1], int(sys.argv[2])
t = torch.from_numpy(np.ones(n, np.float32))
t.numpy()
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base = peak()
torch.save({"w": t}, path)
saved = peak()
del t
out = torch.load(path)["w"]
assert out.shape == (n,) and float(out.numpy()[-1]) == 1.0
print(base, saved, peak())
"""


def test_saving_and_loading_800mb_needs_no_copies_of_it(tmp_path):
    n = 200 * 1024 * 1024                # 800 MB of float32
    size = 4 * n
    try:
        r = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(tmp_path / "big.pt"),
                            str(n)], capture_output=True, text=True, timeout=300,
                           cwd=os.getcwd())
        assert r.returncode == 0, r.stderr
        assert os.path.getsize(tmp_path / "big.pt") > size
    finally:
        (tmp_path / "big.pt").unlink(missing_ok=True)
    base, saved, loaded = map(int, r.stdout.split())
    # streaming: no serialized copy in memory (the old writer peaked at base + 2 x size);
    # loading reads into one array (the tensor freed before it)
    assert saved - base < 0.25 * size, (base, saved)
    assert loaded - base < 0.25 * size, (base, loaded)


# ----------------------------------------------------------------------------- safetensors
@pytest.mark.parametrize("lt_dtype,np_dtype,storage,code", ALL_DTYPES, ids=IDS)
def test_safetensors_layout_every_dtype(lt_dtype, np_dtype, storage, code, rng):
    arr = (rng.standard_normal((3, 5)) * 50).astype(np_dtype)
    buf = io.BytesIO()
    torch.serialization.save_safetensors(torch.tensor(arr), buf)
    raw = buf.getvalue()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert n % 8 == 0
    assert header["tensor"]["dtype"] == code and header["tensor"]["shape"] == [3, 5]
    b, e = header["tensor"]["data_offsets"]
    np.testing.assert_array_equal(np.frombuffer(raw[8 + n + b:8 + n + e], arr.dtype.newbyteorder(
        "<")).reshape(3, 5), arr)
    buf.seek(0)
    out = torch.load(buf)
    assert out.dtype == lt_dtype and out.shape == (3, 5)
    np.testing.assert_array_equal(np.array(out.tolist(), arr.dtype), arr)   # (bfloat16 too)


def test_safetensors_layout_refuses_what_it_cannot_hold():
    class Thing:
        pass

    with pytest.raises(TypeError, match="cannot store an object of type"):
        roundtrip({"x": Thing()}, torch.serialization.save_safetensors)
    with pytest.raises(TypeError, match="PyTorch's layout"):
        roundtrip([1, {2, 3}], torch.serialization.save_safetensors)


def test_plain_safetensors_layout_loads_as_dict():
    """A file written by hand from the specification (no lazytorch metadata)."""
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([1, -2], dtype=np.int64)
    header = {"b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]},
              "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "__metadata__": {"source": "hand"}}
    h = json.dumps(header).encode()
    raw = struct.pack("<Q", len(h)) + h + a.tobytes() + b.tobytes()
    out = torch.load(io.BytesIO(raw))
    assert list(out) == ["a", "b"]
    np.testing.assert_array_equal(out["a"].numpy(), a)
    assert out["b"].dtype == torch.int64 and out["b"].tolist() == [1, -2]


def test_safetensors_package_interop(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    sd = OrderedDict([("layer.weight", torch.randn(4, 3)), ("layer.bias", torch.randn(4)),
                      ("steps", torch.tensor([1, 2, 3])), ("mask", torch.tensor([True, False]))])
    p = tmp_path / "ours.safetensors"
    torch.serialization.save_safetensors(sd, p)
    theirs = st.load_file(str(p))                     # an independent reader
    assert set(theirs) == set(sd)
    for k, v in sd.items():
        np.testing.assert_array_equal(theirs[k], v.numpy())
    q = tmp_path / "theirs.safetensors"
    st.save_file({"x": np.arange(5, dtype=np.int32), "y": np.ones((2, 2), np.float16)},
                 str(q), metadata={"format": "np"})   # an independent writer
    out = torch.load(q)
    assert out["x"].dtype == torch.int32 and out["x"].tolist() == [0, 1, 2, 3, 4]
    assert out["y"].dtype == torch.float16 and out["y"].shape == (2, 2)


# ----------------------------------------------------------------------------- checkpoints
def test_optimizer_checkpoint_resumes_bit_for_bit(tmp_path):
    rng = np.random.default_rng(5)
    w0, target_ = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))

    def train(w, opt, n):
        for _ in range(n):
            opt.zero_grad()
            ((w - torch.tensor(target_)).square().sum()).backward()
            opt.step()

    w = torch.tensor(w0, requires_grad=True)
    opt = optim.Adam([w], lr=0.05, amsgrad=True)
    train(w, opt, 3)
    torch.save({"w": w, "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    train(w, opt, 2)
    ck = torch.load(tmp_path / "ckpt.pt")
    w2 = ck["w"]
    assert w2.requires_grad
    opt2 = optim.Adam([w2], lr=0.05, amsgrad=True)
    opt2.load_state_dict(ck["opt"])
    train(w2, opt2, 2)
    np.testing.assert_array_equal(w2.detach().numpy(), w.detach().numpy())


def test_module_state_dict_reproduces_outputs(tmp_path):
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(3, 5)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    fresh = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    fresh.load_state_dict(torch.load(tmp_path / "m.pt"))
    np.testing.assert_array_equal(fresh(x).detach().numpy(), model(x).detach().numpy())
