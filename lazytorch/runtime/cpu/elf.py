"""A structural check of an ELF shared library, in Python, before the dynamic loader maps it: a
truncated or garbage file that the loader would map (and crash on: SIGBUS past the end of the
file, SIGSEGV on a wild offset) is rejected with a reason instead."""
from __future__ import annotations

import functools
import struct
import sys
from typing import Iterable

MAGIC = b"\x7fELF"
ET_DYN = 3
PT_LOAD, PT_DYNAMIC = 1, 2
SHT_STRTAB, SHT_NOBITS, SHT_DYNSYM = 3, 8, 11
SHN_UNDEF = 0

# per class (1: 32-bit, 2: 64-bit): the header, program header, section header and symbol
# layouts, and which fields of each we read
_HEADER = {1: "16sHHIIIIIHHHHHH", 2: "16sHHIQQQIHHHHHH"}
_PHDR = {1: "IIIIIIII", 2: "IIQQQQQQ"}
_SHDR = {1: "IIIIIIIIII", 2: "IIQQQQIIQQ"}
_SYM = {1: "IIIBBH", 2: "IBBHQQ"}


class ElfError(ValueError):
    """The file is not a complete shared library for this machine."""


@functools.cache
def host() -> tuple[int, int, int] | None:
    """(class, byte order, machine) of this process's own executable, or None where the
    platform's binaries are not ELF (then there is nothing to compare with)."""
    try:
        with open(sys.executable, "rb") as f:
            head = f.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != MAGIC or head[5] not in (1, 2):
        return None
    return head[4], head[5], struct.unpack_from("<H" if head[5] == 1 else ">H", head, 18)[0]


def check(data: bytes, symbols: Iterable[str] = ()) -> None:
    """Raise ElfError unless `data` is a shared library for this machine whose program headers,
    section headers and dynamic symbol table lie inside the file and which defines every name
    in `symbols`."""
    want = host()
    if len(data) < 52 or data[:4] != MAGIC:
        raise ElfError("not an ELF file" if data[:4] != MAGIC else "shorter than an ELF header")
    cls, order = data[4], data[5]
    if cls not in (1, 2) or order not in (1, 2) or data[6] != 1:
        raise ElfError(f"bad ELF identification {data[4:7].hex()}")
    e = "<" if order == 1 else ">"
    fmt = e + _HEADER[cls]
    if len(data) < struct.calcsize(fmt):
        raise ElfError("shorter than an ELF header")
    (_, e_type, machine, _, _, phoff, shoff, _, ehsize, phentsize, phnum, shentsize, shnum,
     _) = struct.unpack_from(fmt, data)
    if want is not None and (cls, order, machine) != want:
        raise ElfError(f"built for another machine (class {cls}, byte order {order}, machine "
                       f"{machine}; this one is {want})")
    if e_type != ET_DYN:
        raise ElfError(f"not a shared library (ELF type {e_type})")
    if ehsize != struct.calcsize(fmt):
        raise ElfError(f"bad ELF header size {ehsize}")
    segments = _table(data, e + _PHDR[cls], phoff, phnum, phentsize, "program header")
    loads = 0
    for p in segments:
        if cls == 1:
            p_type, offset, _, _, filesz, memsz, _, _ = p
        else:
            p_type, _, offset, _, _, filesz, memsz, _ = p
        if p_type in (PT_LOAD, PT_DYNAMIC) and offset + filesz > len(data):
            raise ElfError(f"a segment ends at byte {offset + filesz} of {len(data)}: truncated")
        if p_type == PT_LOAD:
            loads += 1
            if filesz > memsz:
                raise ElfError("a segment is larger in the file than in memory")
    if not loads:
        raise ElfError("no loadable segment")
    sections = _table(data, e + _SHDR[cls], shoff, shnum, shentsize, "section header")
    dynsym = None
    for s in sections:
        _, sh_type, _, _, offset, size, link, _, _, entsize = s
        if sh_type != SHT_NOBITS and offset + size > len(data):
            raise ElfError(f"a section ends at byte {offset + size} of {len(data)}: truncated")
        if sh_type == SHT_DYNSYM:
            dynsym = s
    if dynsym is None:
        raise ElfError("no dynamic symbol table")
    _, _, _, _, offset, size, link, _, _, entsize = dynsym
    sym = e + _SYM[cls]
    if entsize != struct.calcsize(sym) or link >= len(sections):
        raise ElfError("bad dynamic symbol table")
    strtab = sections[link]
    if strtab[1] != SHT_STRTAB:
        raise ElfError("the dynamic symbol table has no string table")
    names = data[strtab[4]:strtab[4] + strtab[5]]
    defined = set()
    for fields in struct.iter_unpack(sym, data[offset:offset + size - size % entsize]):
        name, shndx = fields[0], fields[5] if cls == 1 else fields[3]
        if shndx != SHN_UNDEF and name < len(names):
            end = names.find(b"\0", name)
            defined.add(names[name:end if end >= 0 else len(names)])
    missing = [s for s in symbols if s.encode() not in defined]
    if missing:
        raise ElfError(f"does not define {', '.join(missing)}")


def _table(data: bytes, fmt: str, offset: int, count: int, entsize: int, what: str) -> list:
    """The `count` entries of a header table at `offset`, each checked to lie in the file."""
    if count == 0:
        raise ElfError(f"no {what}s")
    if entsize != struct.calcsize(fmt):
        raise ElfError(f"bad {what} size {entsize}")
    if offset + count * entsize > len(data):
        raise ElfError(f"the {what} table ends at byte {offset + count * entsize} of "
                       f"{len(data)}: truncated")
    return [struct.unpack_from(fmt, data, offset + i * entsize) for i in range(count)]
