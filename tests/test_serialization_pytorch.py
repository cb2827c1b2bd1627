"""Checkpoints shared with PyTorch itself: files written by the real torch.save read by
lazytorch.load, and files written by lazytorch.save read by the real
torch.load(weights_only=True), compared value by value with the other side's tensors."""
from __future__ import annotations

import io
import pickle
import random
import sys
import warnings
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import lazytorch as lt
import lazytorch.nn as lnn
from tests.ckpt_files import data_offsets, tensor_pickle, zip_checkpoint

torch = pytest.importorskip("torch")

# (PyTorch dtype, lazytorch dtype)
DTYPES = [(torch.float32, lt.float32), (torch.float64, lt.float64), (torch.float16, lt.float16),
          (torch.bfloat16, lt.bfloat16), (torch.int64, lt.int64), (torch.int32, lt.int32),
          (torch.int16, lt.int16), (torch.int8, lt.int8), (torch.uint8, lt.uint8),
          (torch.bool, lt.bool)]


def torch_bytes(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


def ours_bytes(obj) -> bytes:
    buf = io.BytesIO()
    lt.save(obj, buf)
    return buf.getvalue()


def same(a, b) -> None:
    """A lazytorch value equals a PyTorch value: structure, types, dtypes, shapes, bits."""
    if isinstance(b, torch.Tensor):
        assert isinstance(a, lt.Tensor), type(a)
        assert str(a.dtype) == str(b.dtype) and tuple(a.shape) == tuple(b.shape)
        assert a.requires_grad == b.requires_grad
        assert (type(a).__name__ == "Parameter") == isinstance(b, torch.nn.Parameter)
        if b.dtype == torch.bfloat16:     # (numpy() refuses it: its floats are exact)
            a, b = a.float(), b.float()
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    elif isinstance(a, lt.Tensor):
        same(b, a)
    elif isinstance(b, dict):
        assert type(a).__name__ == type(b).__name__ and list(a) == list(b)
        for k in b:
            same(a[k], b[k])
    elif isinstance(b, (list, tuple)):
        assert type(a).__name__ == type(b).__name__ and len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    elif isinstance(b, torch.dtype):
        assert str(a) == str(b)
    else:
        assert a == b and type(a) is type(b), (a, b)


def mixed(rng, t):
    """A checkpoint-like object built with library t (torch or lazytorch)."""
    def arr(dtype):
        return t.tensor((rng.standard_normal((3, 4)) * 40).astype(np.float64)).to(dtype)

    lib = DTYPES if t is torch else [(b, b) for _, b in DTYPES]
    sd = OrderedDict((f"w_{str(d).split('.')[-1]}", arr(d)) for d, _ in lib)
    return {"sd": sd, "step": 7, "lr": 0.5, "name": "run", "none": None, "flag": True,
            "nested": [1, (2.5, "x", [t.zeros(0, 3)]), {"k": t.tensor(3.0)}],
            "scalar": t.tensor(-1.25, dtype=t.float64), "big": 2 ** 70, "p": t.nn.Parameter(
                t.ones(2, 2)), "frozen": t.nn.Parameter(t.ones(1), requires_grad=False)}


# ----------------------------------------------------------------------------- torch -> ours
def test_pytorch_files_load(rng):
    obj = mixed(rng, torch)
    same(lt.load(io.BytesIO(torch_bytes(obj))), obj)


def test_shared_storages_views_offsets_and_strides():
    base = torch.arange(24, dtype=torch.float64)
    obj = {"whole": base, "slice": base[3:9], "t": base.view(4, 6).t(), "step": base[1::5],
           "col": base.view(4, 6)[:, 2], "again": base.view(2, 12), "exp": base[:3].expand(2, 3),
           "tied_a": base[4:8], "tied_b": base[4:8]}
    raw = torch_bytes(obj)
    assert [n for n in zipfile.ZipFile(io.BytesIO(raw)).namelist() if "/data/" in n] == [
        "archive/data/0"]                             # one storage behind all of them
    out = lt.load(io.BytesIO(raw))
    for k, v in obj.items():
        assert tuple(out[k].shape) == tuple(v.shape), k
        np.testing.assert_array_equal(out[k].numpy(), v.numpy(), err_msg=k)


def test_pytorch_optimizer_state_continues_in_lazytorch(rng):
    w0 = rng.standard_normal((3, 2)).astype(np.float32)
    x = rng.standard_normal((5, 3)).astype(np.float32)

    def step(lib, w, opt):
        opt.zero_grad()
        (lib.tensor(x) @ w).square().sum().backward()
        opt.step()

    w = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.Adam([w], lr=0.1)
    step(torch, w, opt)
    raw = torch_bytes({"w": w, "opt": opt.state_dict()})
    step(torch, w, opt)
    ck = lt.load(io.BytesIO(raw))
    w2 = ck["w"]
    opt2 = lt.optim.Adam([w2], lr=0.1)
    opt2.load_state_dict(ck["opt"])
    step(lt, w2, opt2)
    np.testing.assert_allclose(w2.detach().numpy(), w.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_pytorch_model_weights_give_pytorchs_outputs(rng):
    tm = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                             torch.nn.Flatten(), torch.nn.Linear(12, 4))
    tm.eval()
    x = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    with torch.no_grad():
        tm[1].running_mean.uniform_(-1, 1)
        want = tm(torch.tensor(x)).numpy()
    m = lnn.Sequential(lnn.Conv2d(2, 3, 3), lnn.BatchNorm2d(3), lnn.ReLU(), lnn.Flatten(),
                       lnn.Linear(12, 4))
    m.load_state_dict(lt.load(io.BytesIO(torch_bytes(tm.state_dict()))))
    m.eval()
    np.testing.assert_allclose(m(lt.tensor(x)).detach().numpy(), want, rtol=1e-5, atol=1e-5)


def test_pickle_protocols_and_big_endian_files():
    obj = {"a": torch.arange(6, dtype=torch.int32).view(2, 3), "b": torch.ones(2)}
    same(lt.load(io.BytesIO(torch_bytes(obj, pickle_protocol=4))), obj)
    # the same checkpoint with its storages in big-endian order and byteorder 'big'
    raw = torch_bytes(obj)
    z = zipfile.ZipFile(io.BytesIO(raw))
    swapped = io.BytesIO()
    with zipfile.ZipFile(swapped, "w") as out:
        for name in z.namelist():
            data = z.read(name)
            if name == "archive/byteorder":
                data = b"big"
            elif name == "archive/data/0":
                data = np.frombuffer(data, np.int32).astype(">i4").tobytes()
            elif name == "archive/data/1":
                data = np.frombuffer(data, np.float32).astype(">f4").tobytes()
            out.writestr(name, data)
    theirs = torch.load(io.BytesIO(swapped.getvalue()))          # PyTorch agrees
    assert all(torch.equal(theirs[k], obj[k]) for k in obj)
    same(lt.load(io.BytesIO(swapped.getvalue())), obj)


def test_storage_locations_and_map_location():
    """A checkpoint saved from a GPU: storages located at 'cuda:0' (PyTorch reads it on a
    CPU-only machine only with a map_location, as lazytorch does)."""
    raw = zip_checkpoint(tensor_pickle(location="cuda:0", numel=4, size=(4,)),
                         {"0": np.arange(4, dtype=np.float32).tobytes()})
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(io.BytesIO(raw), weights_only=True)
    assert torch.load(io.BytesIO(raw), map_location="cpu").tolist() == [0, 1, 2, 3]
    with pytest.raises(RuntimeError, match=r"CUDA device .* map_location=torch.device\('cpu'\)"):
        lt.load(io.BytesIO(raw))
    for loc in ("cpu", lt.device("cpu"), {"cuda:0": "cpu"}, lambda s, loc: s):
        assert lt.load(io.BytesIO(raw), map_location=loc).tolist() == [0, 1, 2, 3]


def test_legacy_pytorch_files_load(rng, tmp_path):
    """torch.save(..., _use_new_zipfile_serialization=False): PyTorch's pre-1.6 layout."""
    obj = mixed(rng, torch)
    base = torch.arange(24, dtype=torch.float64)
    obj.update({"slice": base[3:9], "t": base.view(4, 6).t(), "col": base.view(4, 6)[:, 2]})
    p = tmp_path / "old.pt"
    torch.save(obj, p, _use_new_zipfile_serialization=False)
    same(lt.load(p), obj)
    same(lt.load(p, weights_only=False), obj)
    with pytest.raises(RuntimeError, match="mmap can only be used"):
        lt.load(p, mmap=True)
    p.write_bytes(p.read_bytes()[:-8])
    with pytest.raises(RuntimeError, match=r"'.*old\.pt'.*truncated"):
        lt.load(p)


def test_mutated_legacy_files_give_only_clear_errors():
    from tests.test_serialization_safety import OURS, _mutate
    s = torch.arange(10.0)
    raw = torch_bytes({"sd": torch.nn.Linear(3, 2).state_dict(), "a": s[2:5],
                       "t": s.view(2, 5).t(), "n": [1, (2.5, "x")]},
                      _use_new_zipfile_serialization=False)
    rnd = random.Random(3)
    for _ in range(300):
        buf = io.BytesIO(_mutate(raw, rnd))
        buf.name = "fuzz.pt"
        try:
            lt.load(buf)
        except OURS as e:
            assert "lazytorch.load('fuzz.pt')" in str(e), e
        except Exception as e:
            raise AssertionError(f"{type(e).__name__}: {e}") from e


def test_mmap_of_a_pytorch_file(tmp_path):
    obj = {"a": torch.randn(16, 8), "b": torch.arange(5)}
    torch.save(obj, tmp_path / "t.pt")
    same(lt.load(tmp_path / "t.pt", mmap=True), obj)


# ----------------------------------------------------------------------------- ours -> torch
def test_our_files_load_in_pytorch_with_weights_only(rng):
    ours = mixed(rng, lt)
    theirs = torch.load(io.BytesIO(ours_bytes(ours)), weights_only=True)
    same(ours, theirs)
    assert theirs["p"].requires_grad and not theirs["frozen"].requires_grad


def test_our_views_dtypes_devices_and_sizes_load_in_pytorch():
    a = lt.arange(12.0).reshape(3, 4)
    obj = {"t": a.t(), "slice": a[1:, ::2], "lazy": a * 2, "dt": lt.float16,
           "dev": lt.device("cpu"), "size": lt.Size([2, 3]), "bytes": b"\x00\xff", "s": {1, 2}}
    theirs = torch.load(io.BytesIO(ours_bytes(obj)), weights_only=True)
    np.testing.assert_array_equal(theirs["t"].numpy(), np.arange(12.0).reshape(3, 4).T)
    np.testing.assert_array_equal(theirs["slice"].numpy(), np.arange(12.0).reshape(3, 4)[1:, ::2])
    np.testing.assert_array_equal(theirs["lazy"].numpy(), np.arange(12.0).reshape(3, 4) * 2)
    assert theirs["dt"] is torch.float16 and theirs["dev"] == torch.device("cpu")
    assert type(theirs["size"]) is torch.Size and theirs["size"] == (2, 3)
    assert theirs["bytes"] == b"\x00\xff" and theirs["s"] == {1, 2}


def test_our_state_dict_drives_a_pytorch_model(rng, tmp_path):
    m = lnn.Sequential(lnn.Linear(4, 3), lnn.ReLU(), lnn.Linear(3, 2), lnn.LayerNorm(2))
    lt.save(m.state_dict(), tmp_path / "m.pt")
    tm = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2),
                             torch.nn.LayerNorm(2))
    tm.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    x = rng.standard_normal((5, 4)).astype(np.float32)
    with torch.no_grad():
        want = tm(torch.tensor(x)).numpy()
    np.testing.assert_allclose(m(lt.tensor(x)).detach().numpy(), want, rtol=1e-5, atol=1e-6)


def test_our_optimizer_state_loads_in_pytorch(rng):
    w = lnn.Parameter(lt.tensor(rng.standard_normal((3, 2)).astype(np.float32)))
    opt = lt.optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    theirs = torch.load(io.BytesIO(ours_bytes(opt.state_dict())), weights_only=True)
    same(opt.state_dict(), theirs)
    tw = torch.nn.Parameter(torch.tensor(w.detach().numpy()))
    topt = torch.optim.Adam([tw], lr=0.1)
    topt.load_state_dict(theirs)                                 # PyTorch accepts it


def test_our_layout_matches_pytorchs():
    raw = ours_bytes({"x": lt.ones(3)})
    ref = torch_bytes({"x": torch.ones(3)})
    names = zipfile.ZipFile(io.BytesIO(raw)).namelist()
    assert names == zipfile.ZipFile(io.BytesIO(ref)).namelist()
    assert all(v % 64 == 0 for k, v in data_offsets(raw).items() if "/data/" in k)
    z, zr = zipfile.ZipFile(io.BytesIO(raw)), zipfile.ZipFile(io.BytesIO(ref))
    for n in names:
        if not n.endswith("serialization_id"):
            assert z.read(n) == zr.read(n), n                    # the same bytes as PyTorch's


# ----------------------------------------------------------------------------- refusals
def test_whole_pytorch_modules_and_legacy_files_are_refused_clearly(tmp_path):
    raw = torch_bytes(torch.nn.Linear(2, 2))
    with pytest.raises(pickle.UnpicklingError,
                       match=r"(?s)weights_only.*torch\.nn\.modules\.linear\.Linear"):
        lt.load(io.BytesIO(raw))
    with pytest.raises(RuntimeError, match="PyTorch object that lazytorch does not provide"):
        lt.load(io.BytesIO(raw), weights_only=False)
    with pytest.raises(RuntimeError, match="PyTorch object that lazytorch does not provide"):
        lt.load(io.BytesIO(torch_bytes(torch.nn.Linear(2, 2),
                                       _use_new_zipfile_serialization=False)),
                weights_only=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "ts.pt")
    with pytest.raises(RuntimeError, match="TorchScript"):
        lt.load(tmp_path / "ts.pt")


@pytest.mark.parametrize("dtype", ["complex64", "uint16"])
def test_dtypes_lazytorch_lacks_are_named(dtype):
    raw = torch_bytes({"w": torch.zeros(2, dtype=getattr(torch, dtype))})
    with pytest.raises(RuntimeError, match=f"dtype torch.{dtype}, which lazytorch does not"):
        lt.load(io.BytesIO(raw))


def test_pytorch_refuses_our_whole_modules_without_running_them():
    raw = ours_bytes(lnn.Linear(2, 2))
    with pytest.raises(pickle.UnpicklingError, match="lazytorch.nn"):
        torch.load(io.BytesIO(raw), weights_only=True)
    assert sys.modules.get("lazytorch") is lt
