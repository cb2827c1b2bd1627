"""Hostile and damaged checkpoints: pickles that would run code are refused by name and nothing
in them runs; damaged files (fuzzed headers, mutated zips and pickles, truncations) give only
lazytorch's errors, which name the file and what is wrong; safetensors headers are accepted
exactly when the `safetensors` package accepts them."""
from __future__ import annotations

import copyreg
import io
import json
import os
import pickle
import random
import struct
import zipfile

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.serialization import LoadError
from tests.ckpt_files import glob, tensor_pickle, unicode, zip_checkpoint

OURS = (LoadError, pickle.UnpicklingError)


def load_named(raw: bytes, name: str = "fuzz.pt", **kw):
    buf = io.BytesIO(raw)
    buf.name = name
    return torch.load(buf, **kw)


def expect_refusal(raw: bytes, match: str, **kw) -> str:
    with pytest.raises(OURS, match=match) as e:
        load_named(raw, **kw)
    assert "lazytorch.load('fuzz.pt')" in str(e.value)
    return str(e.value)


# ----------------------------------------------------------------------------- payloads
class _Reduce:
    """Pickles as func(*args): what an attacker writes into a checkpoint."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: str) -> dict[str, bytes]:
    shell = f"touch {marker}"
    return {
        "os.system": pickle.dumps({"w": _Reduce(os.system, shell)}, protocol=2),
        "builtins.eval": pickle.dumps(_Reduce(eval, f"open({marker!r}, 'w')"), protocol=2),
        "builtins.exec": pickle.dumps(_Reduce(exec, f"open({marker!r}, 'w')"), protocol=4),
        "builtins.open": pickle.dumps([_Reduce(open, marker, "w")], protocol=0),
        "subprocess.call": glob("subprocess", "call") + pickle.MARK + pickle.MARK +
        unicode("touch") + unicode(marker) + pickle.LIST + pickle.TUPLE + pickle.REDUCE +
        pickle.STOP,
        "INST": b"(S'" + shell.encode() + b"'\nios\nsystem\n.",
    }


def legacy_checkpoint(pkl: bytes) -> bytes:
    """A checkpoint in PyTorch's pre-1.6 layout holding the given object pickle."""
    return b"".join(pickle.dumps(x, protocol=2) for x in (
        0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True})) + \
        pkl + pickle.dumps([], protocol=2)


@pytest.mark.parametrize("name", list(_payloads("m")))
def test_code_in_a_checkpoint_never_runs(name, tmp_path):
    marker = tmp_path / "pwned"
    raw = _payloads(str(marker))[name]
    # inside PyTorch's layout, its legacy layout, and bare
    for data in (zip_checkpoint(raw), legacy_checkpoint(raw), raw):
        with pytest.raises(OURS) as e:
            load_named(data)
        assert "lazytorch.load('fuzz.pt')" in str(e.value)
        assert not marker.exists()
        if data is not raw:
            assert name.split(".")[-1] in str(e.value)     # the global (or opcode) named
    pickle.loads(raw)                              # the payload is real: pickle runs it
    assert marker.exists()


def test_blocked_modules_stay_blocked_when_allowlisted(tmp_path):
    marker = tmp_path / "pwned"
    raw = zip_checkpoint(pickle.dumps(_Reduce(os.system, f"touch {marker}"), protocol=2))
    with torch.serialization.safe_globals([(os.system, "posix.system")]):
        expect_refusal(raw, "GLOBAL posix.system whose module posix is blocked")
    assert not marker.exists()


def test_opcodes_that_reach_objects_by_other_routes_are_refused(tmp_path):
    # OBJ calls the class on the stack; EXT1 looks a global up in copyreg's registry
    expect_refusal(zip_checkpoint(pickle.MARK + glob("collections", "OrderedDict") + b"o."),
                   "Unsupported operand OBJ")
    copyreg.add_extension("os", "system", 0xF1)
    try:
        expect_refusal(zip_checkpoint(b"\x80\x02\x82\xf1."), "Unsupported operand EXT1")
    finally:
        copyreg.remove_extension("os", "system", 0xF1)


@pytest.mark.parametrize("pkl,match", [
    # BUILD on a tensor (setting its attributes), SETITEM on a tensor, APPEND to a dict
    (tensor_pickle()[:-1] + pickle.EMPTY_DICT + unicode("_node") + pickle.NONE + pickle.SETITEM +
     pickle.BUILD + pickle.STOP, "Can only build"),
    (tensor_pickle()[:-1] + pickle.NONE + pickle.NONE + pickle.SETITEM + pickle.STOP,
     "Can only SETITEM"),
    (b"\x80\x02}N" + pickle.APPEND + pickle.STOP, "Can only APPEND"),
    # calling what is not a function: a dtype, the legacy torch.Tensor(size) constructor
    (b"\x80\x02" + glob("torch", "float32") + b")R.", "unrecognized function"),
    (b"\x80\x02" + glob("torch", "Tensor") + b"J\x00\x00\x00\x7f\x85R.",
     "unrecognized function"),
    (b"\x80\x02" + glob("torch", "Tensor") + b")\x81.", "Can only create new object"),
    # a codec other than the latin-1 protocol 2 uses for bytes
    (b"\x80\x02" + glob("_codecs", "encode") + unicode("x") + unicode("zlib_codec") + b"\x86R.",
     "only allowed for bytes"),
    # persistent ids that are not storage records, or name files outside data/
    (b"\x80\x02" + unicode("x") + pickle.BINPERSID + pickle.STOP, "not a storage record"),
    (tensor_pickle(key="../../etc/passwd"), r"no record archive/data/\.\./\.\./etc/passwd"),
    # tensors beyond their storage (checked before anything is allocated)
    (tensor_pickle(size=(10 ** 6, 10 ** 6), stride=(10 ** 6, 1)), "reaches element"),
    (tensor_pickle(offset=5), "reaches element"),
    (tensor_pickle(size=(2, 2), stride=(1,)), "but stride"),
    (tensor_pickle(numel=3), "holds 8 bytes, but the pickle gives it 3 elements"),
    (tensor_pickle(location="mps"), "device 'mps'"),
    (tensor_pickle(storage_class="ComplexFloatStorage"), "dtype torch.complex64"),
    (b"\x80\x02" + bytes([0xFF]) + b".", "unknown opcode 0xff"),
])
def test_restricted_loads_refuse_clearly(pkl, match):
    expect_refusal(zip_checkpoint(pkl, {"0": np.ones(2, np.float32).tobytes()}), match)


def test_lengths_in_a_pickle_are_not_allocated_before_reading(tmp_path):
    """A few bytes claiming 2**62 bytes of data give an error, not an allocation."""
    huge = struct.pack("<Q", 2 ** 62)
    for op in (pickle.BYTEARRAY8, pickle.BINBYTES8, pickle.BINUNICODE8):
        pkl = b"\x80\x05" + op + huge + b"xyz."
        p = tmp_path / "fuzz.pt"
        for raw in (zip_checkpoint(pkl), legacy_checkpoint(pkl)):
            p.write_bytes(raw)                     # a real file: reads of it are not clamped
            with pytest.raises(OURS, match="fuzz.pt"):
                torch.load(p)
        with pytest.raises(OURS, match="fuzz.pt"):
            torch.load(p, weights_only=False)


def test_the_hand_written_tensor_pickle_loads():
    raw = zip_checkpoint(tensor_pickle(numel=4, size=(2,), stride=(2,), offset=1),
                         {"0": np.arange(4, dtype=np.float32).tobytes()})
    assert load_named(raw).tolist() == [1.0, 3.0]


def test_files_that_are_not_checkpoints():
    expect_refusal(b"", "has 0 bytes")
    expect_refusal(b"hello world, this is text", "neither PyTorch's checkpoint layout")
    expect_refusal(pickle.dumps({"a": 1}), "is a pickle, not a checkpoint")
    expect_refusal(b"PK\x05\x06" + b"\x00" * 18, "empty zip archive")
    expect_refusal(b"PK\x03\x04garbage", "damaged zip archive")
    with io.BytesIO() as b:
        with zipfile.ZipFile(b, "w") as z:
            z.writestr("x/readme.txt", b"hi")
        expect_refusal(b.getvalue(), "without x/data.pkl")
    legacy = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."       # the legacy layout's magic
    expect_refusal(legacy + b"\x80\x02K\x01.", "legacy layout with an unknown protocol")
    expect_refusal(legacy + b"\x80\x02M\xe9\x03.}.", "damaged")


# ----------------------------------------------------------------------------- damaged files
def _sample_checkpoint() -> bytes:
    buf = io.BytesIO()
    torch.save({"sd": torch.nn.Linear(3, 2).state_dict(), "step": 3, "ids": torch.arange(5),
                "nested": [(1.5, "x"), {"m": torch.ones(2, 2, dtype=torch.float16)}]}, buf)
    return buf.getvalue()


def _mutate(raw: bytes, rnd: random.Random) -> bytes:
    b = bytearray(raw)
    kind = rnd.randrange(4)
    if kind == 0:                                  # flip a few bytes
        for _ in range(rnd.randint(1, 8)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
    elif kind == 1:                                # truncate
        del b[rnd.randrange(len(b)):]
    elif kind == 2:                                # insert bytes
        at = rnd.randrange(len(b))
        b[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
    else:                                          # overwrite a run with a boundary value
        at = rnd.randrange(len(b) - 8)
        b[at:at + 8] = rnd.choice([b"\xff" * 8, b"\x00" * 8, struct.pack("<q", -1),
                                   struct.pack("<Q", 2 ** 62)])
    return bytes(b)


def _only_our_errors(raw: bytes) -> None:
    try:
        load_named(raw)
    except OURS as e:
        assert "lazytorch.load('fuzz.pt')" in str(e), e
    except Exception as e:         # anything else is a bug: report what and where
        raise AssertionError(f"{type(e).__name__}: {e}") from e


def test_mutated_checkpoints_give_only_clear_errors():
    raw = _sample_checkpoint()
    rnd = random.Random(1234)
    for _ in range(400):
        _only_our_errors(_mutate(raw, rnd))


def test_mutated_pickles_give_only_clear_errors():
    z = zipfile.ZipFile(io.BytesIO(_sample_checkpoint()))
    records = {n: z.read(n) for n in z.namelist()}
    pkl = records.pop("archive/data.pkl")
    rnd = random.Random(99)
    for _ in range(400):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as out:
            out.writestr("archive/data.pkl", _mutate(pkl, rnd))
            for n, data in records.items():
                out.writestr(n, data)
        _only_our_errors(buf.getvalue())


def test_a_damaged_storage_fails_its_crc(tmp_path):
    raw = bytearray(_sample_checkpoint())
    z = zipfile.ZipFile(io.BytesIO(bytes(raw)))
    info = z.getinfo("archive/data/2")
    at = info.header_offset + 30 + len(info.filename) + 4        # inside its padding? no:
    at = raw.index(np.arange(5).tobytes())                       # the storage of "ids"
    raw[at] ^= 1
    expect_refusal(bytes(raw), "CRC-32")
    expect_refusal(bytes(raw[:at + 8]), "truncated|damaged")


def test_deep_nesting_gives_a_clear_error():
    deep = b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    expect_refusal(struct.pack("<Q", len(deep)) + deep, "nests too deeply")
    meta = json.dumps({"__metadata__": {"lazytorch": '{"version": 1, "root": ' + "[" * 100_000 +
                                        "]" * 100_000 + "}"}}).encode()
    expect_refusal(struct.pack("<Q", len(meta)) + meta, "nests too deeply")
    # a deep pickle is read without recursion
    pkl = b"\x80\x02" + b"]" * 100_000 + pickle.APPEND * 99_999 + pickle.STOP
    out = load_named(zip_checkpoint(pkl))
    depth = 0
    while out:
        out, depth = out[0], depth + 1
    assert depth == 99_999


# ----------------------------------------------------------------------------- safetensors
def _st(header: dict, body: bytes) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


@pytest.mark.parametrize("header,body,match", [
    ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}, 8, "F32 need 8 bytes"),
    ({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, 8, "cover 16.*truncated"),
    ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 12, "cover 8 bytes.*12"),
    ({"x": {"dtype": "X99", "shape": [2], "data_offsets": [0, 16]}}, 16, "unknown dtype code"),
    ({"x": {"dtype": "U16", "shape": [2], "data_offsets": [0, 4]}}, 4, "dtype 'U16'"),
    ({"x": {"dtype": "F32", "shape": [2]}}, 0, "lacks dtype, shape or data_offsets"),
    ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 8]}}, 8, "not two"),
    ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0.0, 8]}}, 8, "not two"),
    ({"x": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, 8, "non-negative"),
    ({"x": {"dtype": "F32", "shape": [True, 2], "data_offsets": [0, 8]}}, 8, "non-negative"),
    ({"x": {"dtype": "F32", "shape": [2 ** 40, 2 ** 40], "data_offsets": [0, 8]}}, 8, "need"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, 8, "overlap"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, 8, "gap"),
    ({"__metadata__": {"a": 1}}, 0, "__metadata__"),
])
def test_corrupt_safetensors_headers(header, body, match):
    expect_refusal(_st(header, b"\x00" * body), match)


def test_safetensors_header_length_and_truncation():
    expect_refusal(b"\x10\x00\x00\x00\x00\x00\x00\x00{}", "does not fit")
    expect_refusal(b"\x02\x00\x00\x00\x00\x00\x00\x00[]", "neither")
    buf = io.BytesIO()
    torch.serialization.save_safetensors({"w": torch.ones(100)}, buf)
    expect_refusal(buf.getvalue()[:-10], "truncated")


_CODES = ["F32", "F16", "I64", "U8", "BOOL", "I8"]


def _random_header(rnd: random.Random) -> tuple[dict, int]:
    def number():
        return rnd.choice([0, 1, 2, 3, 4, 8, 12, 16, -1, 2 ** 40, 2 ** 64, 1.0, True, "2", None])

    header: dict = {}
    offset = 0
    for i in range(rnd.randint(0, 4)):
        code = rnd.choice(_CODES + ["F32"] * 4 + ["X9", 7])
        shape = [rnd.choice([0, 1, 2, 3]) for _ in range(rnd.randint(0, 3))]
        size = int(np.prod(shape)) * {"F32": 4, "F16": 2, "I64": 8}.get(code, 1)
        offsets = [offset, offset + size]
        offset += size
        if rnd.random() < 0.4:              # damage one field
            which = rnd.randrange(5)
            if which == 0:
                offsets = [number() for _ in range(rnd.choice([1, 2, 2, 3]))]
            elif which == 1:
                shape = [number() for _ in range(rnd.randint(0, 3))]
            elif which == 2:
                offsets[rnd.randrange(2)] += rnd.choice([-4, -1, 1, 4])
            elif which == 3:
                offsets = [offsets[0] + 4, offsets[1] + 4]
            else:
                shape = shape + [2]
        header[f"t{i}"] = {"dtype": code, "shape": shape, "data_offsets": offsets}
    if rnd.random() < 0.2:
        header["__metadata__"] = {"k": rnd.choice(["v", 1])}
    body = offset + rnd.choice([0, 0, 0, -1, 1, 4])
    return header, max(body, 0)


def test_safetensors_headers_are_accepted_exactly_when_safetensors_accepts_them():
    st = pytest.importorskip("safetensors.numpy")
    rnd = random.Random(7)
    agreed = 0
    for _ in range(1500):
        header, body = _random_header(rnd)
        raw = _st(header, bytes(rnd.randrange(256) for _ in range(body)))
        try:
            theirs = st.load(raw)
        except Exception:
            theirs = None
        try:
            ours = load_named(raw)
        except OURS as e:
            assert "lazytorch.load('fuzz.pt')" in str(e)
            ours = None
        assert (ours is None) == (theirs is None), (header, body)
        if ours is not None:
            agreed += 1
            assert set(ours) == set(theirs)
            for k, v in theirs.items():
                np.testing.assert_array_equal(ours[k].numpy(), v)
    assert agreed > 100                  # the fuzz reaches valid files too
