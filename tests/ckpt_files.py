"""Helpers of the checkpoint tests: checkpoint files built by hand from the layouts'
specifications (zipfile and pickle opcodes, not lazytorch's writer), an independent reader of
where a zip member's data starts, and a user-defined module class (importable, as whole-module
pickling needs)."""
from __future__ import annotations

import io
import pickle
import struct
import zipfile

import lazytorch as torch
import lazytorch.nn as nn


def zip_checkpoint(pkl: bytes, records: dict[str, bytes] | None = None,
                   prefix: str = "archive", byteorder: bytes | None = b"little") -> bytes:
    """A checkpoint in PyTorch's zip layout holding the given pickle and storage records."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", pkl)
        if byteorder is not None:
            z.writestr(f"{prefix}/byteorder", byteorder)
        for key, data in (records or {}).items():
            z.writestr(f"{prefix}/data/{key}", data)
        z.writestr(f"{prefix}/version", b"3\n")
    return buf.getvalue()


def glob(module: str, name: str) -> bytes:
    """The GLOBAL opcode naming module.name."""
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def unicode(s: str) -> bytes:
    b = s.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(b)) + b


def tensor_pickle(storage_class: str = "FloatStorage", key: str = "0", location: str = "cpu",
                  numel: int = 2, offset: int = 0, size: tuple = (2,), stride: tuple = (1,)
                  ) -> bytes:
    """A protocol-2 pickle of one tensor as torch.save writes it, opcode by opcode."""
    def ints(xs):
        return pickle.MARK + b"".join(pickle.BININT + struct.pack("<i", x) for x in xs) + \
            pickle.TUPLE

    pid = pickle.MARK + unicode("storage") + glob("torch", storage_class) + unicode(key) + \
        unicode(location) + pickle.BININT + struct.pack("<i", numel) + pickle.TUPLE
    return (pickle.PROTO + b"\x02" + glob("torch._utils", "_rebuild_tensor_v2") + pickle.MARK +
            pid + pickle.BINPERSID + pickle.BININT + struct.pack("<i", offset) + ints(size) +
            ints(stride) + pickle.NEWFALSE + glob("collections", "OrderedDict") +
            pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.TUPLE + pickle.REDUCE + pickle.STOP)


def data_offsets(raw: bytes) -> dict[str, int]:
    """Member name -> the file offset where its data starts, read from the local headers."""
    z = zipfile.ZipFile(io.BytesIO(raw))
    out = {}
    for info in z.infolist():
        h = info.header_offset
        assert raw[h:h + 4] == b"PK\x03\x04"
        name_len, extra_len = struct.unpack("<HH", raw[h + 26:h + 30])
        out[info.filename] = h + 30 + name_len + extra_len
    return out


class TinyNet(nn.Module):
    """A user-defined model: whole-module saves pickle it by reference."""

    restored = 0       # counts __setstate__ calls: loading with weights_only=False runs it

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.out = nn.Linear(4, 2)
        self.register_buffer("scale", torch.tensor([2.0, 0.5]))
        self.note = "tiny"

    def forward(self, x):
        return self.out(self.fc(x).relu()) * self.scale

    def __setstate__(self, state):
        type(self).restored += 1
        self.__dict__.update(state)
