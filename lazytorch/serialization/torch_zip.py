"""PyTorch's checkpoint container: an uncompressed zip whose members sit in one folder:
`data.pkl` (the pickled object, tensors as persistent ids), `data/<key>` (each storage's raw
bytes, starting 64-byte aligned in the file), `byteorder`, `version`, `.format_version`,
`.storage_alignment` and `.data/serialization_id` (see /work/shared/notes/checkpoints.md)."""
from __future__ import annotations

import contextlib
import secrets
import struct
import sys
import zipfile
import zlib
from typing import BinaryIO, Iterable

import numpy as np

from .source import Source

ALIGNMENT = 64
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")   # zipfile's structFileHeader, 30 bytes
_PAD_ID = b"FB"                                  # the padding field PyTorch's writer uses


class Writer:
    """Writes records into a zip stream, each one's data at a 64-byte-aligned file offset;
    record data is streamed from chunks (nothing is copied whole)."""

    def __init__(self, out: BinaryIO, prefix: str):
        self.prefix = prefix
        self.zf = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def write(self, name: str, chunks: Iterable, nbytes: int) -> None:
        info = zipfile.ZipInfo(f"{self.prefix}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED
        info.file_size = nbytes
        zip64 = nbytes * 1.05 > zipfile.ZIP64_LIMIT   # zipfile's own rule, so sizes agree
        header = _LOCAL_HEADER.size + len(info.filename.encode("utf-8")) + (20 if zip64 else 0)
        pad = -(self.zf.fp.tell() + header + 4) % ALIGNMENT
        info.extra = _PAD_ID + struct.pack("<H", pad) + b"Z" * pad
        written = 0
        with self.zf.open(info, "w", force_zip64=zip64) as w:
            if self.zf.fp.tell() % ALIGNMENT:
                raise AssertionError(f"record {info.filename} is not {ALIGNMENT}-byte aligned")
            for chunk in chunks:
                w.write(chunk)
                written += len(chunk)
        if written != nbytes:
            raise AssertionError(f"record {info.filename}: wrote {written} of {nbytes} bytes")

    def write_bytes(self, name: str, data: bytes) -> None:
        self.write(name, [data], len(data))

    def close(self) -> None:
        self.zf.close()

    def abandon(self) -> None:
        """Stop without writing the central directory (the save failed)."""
        self.zf._didModify = False
        with contextlib.suppress(Exception):
            self.zf.close()


def write_checkpoint(out: BinaryIO, prefix: str, pickled: bytes,
                     storages: Iterable[tuple[str, Iterable, int]],
                     byteorder_record: bool = True) -> None:
    """The members torch.save writes, in its order; storages yields (key, chunks, nbytes)."""
    w = Writer(out, prefix)
    try:
        w.write_bytes("data.pkl", pickled)
        w.write_bytes(".format_version", b"1")
        w.write_bytes(".storage_alignment", str(ALIGNMENT).encode())
        if byteorder_record:
            w.write_bytes("byteorder", sys.byteorder.encode())
        for key, chunks, nbytes in storages:
            w.write(f"data/{key}", chunks, nbytes)
        w.write_bytes("version", b"3\n")
        w.write_bytes(".data/serialization_id",
                      str(secrets.randbits(128)).zfill(40)[-40:].encode())
    except BaseException:
        w.abandon()
        raise
    w.close()


def array_chunks(arr: np.ndarray, chunk: int = 1 << 24) -> Iterable[memoryview]:
    """A C-contiguous array's bytes as memoryviews of at most chunk bytes (no copies)."""
    if arr.nbytes == 0:
        return
    flat = memoryview(arr.reshape(-1).view(np.uint8))
    for i in range(0, len(flat), chunk):
        yield flat[i:i + chunk]


class Reader:
    """The records of a PyTorch checkpoint zip."""

    def __init__(self, src: Source):
        self.src = src
        try:
            self.zf = zipfile.ZipFile(src.file)
            infos = self.zf.infolist()
        except MemoryError:
            raise
        except Exception as e:       # zipfile's errors on damaged archives vary by kind
            src.fail(f"is a damaged zip archive ({type(e).__name__}: {e})")
        if not infos:
            src.fail("is an empty zip archive, not a PyTorch checkpoint")
        self.prefix = infos[0].filename.split("/", 1)[0]
        self.infos = {i.filename: i for i in infos}
        if self.has("constants.pkl") or any(n.startswith(f"{self.prefix}/code/")
                                            for n in self.infos):
            src.fail("is a TorchScript archive (torch.jit.save): lazytorch cannot run "
                     "TorchScript; save the model's state_dict() with torch.save instead")
        if not self.has("data.pkl"):
            src.fail(f"is a zip archive without {self.prefix}/data.pkl, not a PyTorch "
                     "checkpoint")
        order = self.record("byteorder").strip() if self.has("byteorder") else b"little"
        if order not in (b"little", b"big"):
            src.fail(f"has an unknown byteorder record {order[:20]!r}")
        self.byteorder = "<" if order == b"little" else ">"

    def has(self, name: str) -> bool:
        return f"{self.prefix}/{name}" in self.infos

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = self.infos.get(f"{self.prefix}/{name}")
        if info is None:
            self.src.fail(f"has no record {self.prefix}/{name}")
        return info

    def record(self, name: str, limit: int = 1 << 30) -> bytes:
        """A small record's bytes (the pickle, version strings)."""
        info = self._info(name)
        if info.file_size > min(limit, self.src.size * 1100):
            self.src.fail(f"record {info.filename} claims {info.file_size} bytes")
        try:
            return self.zf.read(info)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error,
                NotImplementedError, RuntimeError, zlib.error) as e:
            self.src.fail(f"record {info.filename} is damaged ({e})")

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        """Where a stored record's bytes start, relative to the source's start."""
        rel = info.header_offset - self.src.start
        head = self.src.read_at(rel, _LOCAL_HEADER.size)
        if len(head) != _LOCAL_HEADER.size or head[:4] != b"PK\x03\x04":
            self.src.fail(f"record {info.filename} has a damaged local header")
        fields = _LOCAL_HEADER.unpack(head)
        begin = rel + _LOCAL_HEADER.size + fields[10] + fields[11]
        if begin + info.file_size > self.src.size:
            self.src.fail(f"record {info.filename} ({info.file_size} bytes at {begin}) runs "
                          f"past the end of the file ({self.src.size} bytes): it is truncated")
        return begin

    def storage(self, key: str, dtype: np.dtype, numel: int, mmap: np.ndarray | None = None
                ) -> np.ndarray:
        """Storage `key` as a 1-d array of numel elements in native byte order (a view of
        mmap, the whole file mapped, when given and the record allows it)."""
        info = self._info(f"data/{key}")
        nbytes = numel * dtype.itemsize
        if info.file_size != nbytes:
            self.src.fail(f"storage {key} holds {info.file_size} bytes, but the pickle gives "
                          f"it {numel} elements of {dtype.itemsize} bytes ({nbytes} bytes)")
        stored_dtype = dtype.newbyteorder(self.byteorder)
        if info.compress_type != zipfile.ZIP_STORED:
            # deflate expands at most ~1032x: a larger claim is not data, and is not allocated
            if info.compress_type != zipfile.ZIP_DEFLATED \
                    or info.file_size > 1032 * info.compress_size + 1024:
                self.src.fail(f"record {info.filename} claims {info.file_size} bytes from "
                              f"{info.compress_size} compressed (method {info.compress_type})")
            out = np.empty(numel, stored_dtype)
            self._inflate(info, memoryview(out.view(np.uint8)))
        else:
            if info.compress_size != info.file_size:
                self.src.fail(f"record {info.filename} is stored with {info.compress_size} "
                              f"bytes for {info.file_size}")
            begin = self._data_offset(info)
            if mmap is not None and (self.src.start + begin) % dtype.itemsize == 0 \
                    and stored_dtype.isnative:
                at = self.src.start + begin
                return mmap[at:at + nbytes].view(dtype=dtype, type=np.ndarray)
            out = np.empty(numel, stored_dtype)
            self.src.readinto_at(begin, out, f"record {info.filename}")
            if zlib.crc32(memoryview(out.view(np.uint8))) != info.CRC:
                self.src.fail(f"record {info.filename} fails its CRC-32 check: the file is "
                              "damaged")
        return out if stored_dtype.isnative else out.astype(dtype)

    def _inflate(self, info: zipfile.ZipInfo, out: memoryview) -> None:
        """A compressed record (not what PyTorch writes) read into out."""
        try:
            with self.zf.open(info) as f:
                pos = 0
                while pos < len(out):
                    data = f.read(min(len(out) - pos, 1 << 24))
                    if not data:
                        break
                    out[pos:pos + len(data)] = data
                    pos += len(data)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error,
                NotImplementedError, RuntimeError, zlib.error) as e:
            self.src.fail(f"record {info.filename} is damaged ({e})")
        if pos != len(out):
            self.src.fail(f"record {info.filename} ends early: the file is truncated")
