"""save/load: round trips of nested structures, the safetensors layout (checked with an
independent reader/writer when the `safetensors` package is present), refusing pickles
without running them, and resuming training from a checkpoint."""
from __future__ import annotations

import io
import json
import math
import os
import pickle
import struct
from collections import OrderedDict

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.optim as optim

ALL_DTYPES = [(torch.float32, np.float32, "F32"), (torch.float64, np.float64, "F64"),
              (torch.float16, np.float16, "F16"), (torch.int64, np.int64, "I64"),
              (torch.int32, np.int32, "I32"), (torch.int16, np.int16, "I16"),
              (torch.int8, np.int8, "I8"), (torch.uint8, np.uint8, "U8"),
              (torch.bool, np.bool_, "BOOL")]


def roundtrip(obj, **kw):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, **kw)


def read_header(raw: bytes) -> dict:
    """An independent reader of the safetensors header (the layout, as specified)."""
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n])


@pytest.mark.parametrize("lt_dtype,np_dtype,code", ALL_DTYPES, ids=[c for *_, c in ALL_DTYPES])
def test_every_dtype_round_trips_bit_for_bit(lt_dtype, np_dtype, code, rng):
    arr = (rng.standard_normal((3, 5)) * 50).astype(np_dtype)
    t = torch.tensor(arr)
    buf = io.BytesIO()
    torch.save(t, buf)
    raw = buf.getvalue()
    header = read_header(raw)
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0
    assert header["tensor"]["dtype"] == code and header["tensor"]["shape"] == [3, 5]
    b, e = header["tensor"]["data_offsets"]
    np.testing.assert_array_equal(np.frombuffer(raw[8 + n + b:8 + n + e], arr.dtype.newbyteorder(
        "<")).reshape(3, 5), arr)
    out = roundtrip(t)
    assert out.dtype == lt_dtype and out.shape == (3, 5)
    np.testing.assert_array_equal(out.numpy(), arr)


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
        "lazy": a * 2 + 1, "np": np.arange(4.0), "npscalar": np.float32(2.5),
    }
    out = roundtrip(obj)
    assert type(out["model"]) is OrderedDict and list(out["model"]) == ["fc.weight", "fc.bias"]
    np.testing.assert_array_equal(out["model"]["fc.weight"].numpy(),
                                  obj["model"]["fc.weight"].numpy())
    assert list(out["optimizer"]["state"]) == [0, 1]
    assert out["optimizer"]["state"][0]["step"].item() == 3.0
    assert out["optimizer"]["param_groups"] == obj["optimizer"]["param_groups"]
    for k in ("epoch", "big", "neg", "pi", "tiny", "inf", "ninf", "name", "empty", "bytes",
              "dtype", "float_key", "tuple_key"):
        assert out[k] == obj[k] and type(out[k]) is type(obj[k]), k
    assert math.isnan(out["nan"])
    assert out["nested"] == [[1, (2, "x")], {"k": None}]
    assert out["device"] == torch.device("cpu")
    assert out["size"] == (2, 3) and type(out["size"]) is torch.Size
    assert out["scalar0d"].shape == () and out["scalar0d"].item() == 1.5
    assert out["empty_t"].shape == (0, 3)
    np.testing.assert_array_equal(out["view"].numpy(), np.arange(6).reshape(2, 3).T)
    np.testing.assert_array_equal(out["lazy"].numpy(), np.arange(6).reshape(2, 3) * 2 + 1)
    assert isinstance(out["np"], np.ndarray) and out["np"].tolist() == [0, 1, 2, 3]
    assert isinstance(out["npscalar"], np.float32) and out["npscalar"] == 2.5


def test_shared_tensors_stay_shared_and_flags_survive():
    w = torch.randn(2, 2, requires_grad=True)
    out = roundtrip({"a": w, "b": [w], "c": w.detach()})
    assert out["a"] is out["b"][0]
    assert out["a"].requires_grad and out["a"].is_leaf
    assert not out["c"].requires_grad
    np.testing.assert_array_equal(out["a"].detach().numpy(), w.detach().numpy())


def test_path_and_atomic_write(tmp_path):
    p = tmp_path / "ckpt.pt"
    torch.save({"x": torch.ones(3)}, p)
    torch.save({"x": torch.zeros(3)}, str(p))          # overwrite in place
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]  # no temporary left behind
    assert torch.load(p)["x"].tolist() == [0.0, 0.0, 0.0]
    with open(p, "rb") as f:
        assert torch.load(f)["x"].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(TypeError, match="cannot store an object of type"):
        torch.save({"x": object()}, p)
    assert torch.load(p)["x"].tolist() == [0.0, 0.0, 0.0]   # untouched by the failed save
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]


def test_map_location_and_weights_only():
    t = torch.arange(3)
    for loc in (None, "cpu", torch.device("cpu"), {"cuda:0": "cpu"}):
        assert roundtrip(t, map_location=loc).tolist() == [0, 1, 2]
    assert roundtrip(t, weights_only=True).tolist() == [0, 1, 2]
    assert roundtrip(t, weights_only=False).tolist() == [0, 1, 2]
    assert roundtrip(t, map_location=lambda s, loc: s * 10).tolist() == [0, 10, 20]
    with pytest.raises(RuntimeError, match="CUDA"):
        roundtrip(t, map_location="cuda")


def test_unsupported_objects():
    class Thing:
        pass

    with pytest.raises(TypeError, match="cannot store an object of type"):
        roundtrip({"x": Thing()})
    with pytest.raises(TypeError, match="never pickles"):
        roundtrip([1, {2, 3}])


# ----------------------------------------------------------------------------- no pickle
class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"w": _Payload(str(marker))}))
    with pytest.raises(pickle.UnpicklingError, match="is a pickle.*never unpickles"):
        torch.load(evil)
    with pytest.raises(pickle.UnpicklingError, match="nothing in it was run"):
        torch.load(io.BytesIO(pickle.dumps(_Payload(str(marker)), protocol=0)))
    assert not marker.exists()
    # and the same file does run code under pickle: the test's payload is real
    with open(evil, "rb") as f:
        pickle.load(f)
    assert marker.exists()


def test_torch_save_files_are_refused(tmp_path):
    real = pytest.importorskip("torch")
    p = tmp_path / "real.pt"
    real.save({"w": real.ones(2)}, p)
    with pytest.raises(pickle.UnpicklingError, match="zip archive"):
        torch.load(p)
    real.save({"w": real.ones(2)}, p, _use_new_zipfile_serialization=False)
    with pytest.raises(pickle.UnpicklingError, match="pickle"):
        torch.load(p)


def _raw(header: bytes, body: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header + body


@pytest.mark.parametrize("raw,match", [
    (b"", "has 0 bytes"),
    (b"\x10\x00\x00\x00\x00\x00\x00\x00{}", "does not fit"),
    (b"\x02\x00\x00\x00\x00\x00\x00\x00[]", "not a JSON object"),
    (_raw(b'{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}', b"\x00" * 8),
     "do not match"),
    (_raw(b'{"x":{"dtype":"X99","shape":[2],"data_offsets":[0,16]}}', b"\x00" * 16),
     "dtype X99"),
    (_raw(b'{"x":{"dtype":"F32","shape":[2]}}', b""), "lacks dtype, shape or data_offsets"),
])
def test_corrupt_files(raw, match):
    with pytest.raises((RuntimeError, TypeError), match=match):
        torch.load(io.BytesIO(raw))


def test_truncated_file(tmp_path):
    buf = io.BytesIO()
    torch.save({"w": torch.ones(100)}, buf)
    with pytest.raises(RuntimeError, match="do not match"):
        torch.load(io.BytesIO(buf.getvalue()[:-10]))


# ----------------------------------------------------------------------------- other tools
def test_plain_safetensors_layout_loads_as_dict():
    """A file written by hand from the specification (no lazytorch metadata)."""
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([1, -2], dtype=np.int64)
    header = {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]},
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
    torch.save(sd, p)
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
    w0, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))

    def train(w, opt, n):
        for _ in range(n):
            opt.zero_grad()
            ((w - torch.tensor(target)).square().sum()).backward()
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
    try:
        import lazytorch.nn as nn
        model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    except (ImportError, AttributeError) as e:
        pytest.skip(f"lazytorch.nn not available: {e}")
    x = torch.randn(3, 5)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    fresh = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    fresh.load_state_dict(torch.load(tmp_path / "m.pt"))
    np.testing.assert_array_equal(fresh(x).detach().numpy(), model(x).detach().numpy())
