"""Sizes that change between realizes become kernel arguments instead of constants.

A graph's kernels are rendered with every size spelled as an integer literal (loop bounds,
strides, row lengths, block ends): a training step at a new sequence length renders the same
kernels with other numbers in them, and each would be a new compile. Here a plan's kernels are
compared, by position in the plan, with those rendered before for graphs of the same structure
once sizes are left out (ops, ranks, dtypes, the sources' positions: `structure`): when a
kernel's code comes back equal but for some integer literals (its *template*), those literals
become the entries of an int64 array the kernel takes as one more argument (`lt_sz`), filled
with each plan's values, and every later size at them reuses the compiled kernel. A literal
that has kept its value stays a literal, so the sizes that do not vary (a model's width, a
block of 128) are still constants to the C compiler.

The kernel's code at a size is the template with that size's literals written back in, token
for token, so a template computes what the static kernel computes (its literals are int64
values where the static ones were int or long: the same value in every C expression where the
static one did not overflow). A size that changes the code otherwise (another strategy, a loop
split, a bound folded away at size 1) makes another template: a kernel compiles once per
strategy its sizes pick, not once per size. Literals that C needs as constants stay literals:
those of preprocessor lines, of the function's signature (CUDA's launch bounds) and of array
declarators. Where shapes vary, a float literal that varies (a mean's 1/N) is read from the
same array, as the bits of its double (a float literal's value is its double rounded to
float: the literal C would read for it but where the decimal lies within a double's rounding of
a float midpoint).

LAZYTORCH_DYNAMIC_SHAPES=0 turns this off."""
from __future__ import annotations

import contextlib
import itertools
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..compiler import symbolic
from ..compiler.kernel import FNAME
from ..ir.graph import Node
from ..ir.ops import Op

_KEPT = 4096   # templates remembered (the oldest forgotten first)
_serial = itertools.count(1).__next__

# a C number literal that is no part of a name or of another literal: a float (group 1, with
# its f suffix in group 2) or an integer (group 3, optionally long)
_INT = re.compile(r"(?<![\w.])(?<![eE][-+])(?:(\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)(f?)|"
                  r"(\d+)(L{0,2}))(?![\w.])")
# a declaration whose brackets need constants (float accs[128], __shared__ float s[256])
_DECL = re.compile(r"^\s*(?:__shared__\s+|static\s+|const\s+)*(?:float|double|long|int|short|"
                   r"char|unsigned|signed|_Bool|bool|half|__half|__nv_bfloat16|\w+_t)\b")
PARAM = "lt_sz"


@dataclass
class Template:
    """What is known of one kernel's code with its integer literals left out: their values the
    first time it was rendered, and the literals (by position) that have changed since."""

    first: tuple
    varying: frozenset = frozenset()
    serial: int = field(default_factory=_serial)


TEMPLATES: dict[tuple, Template] = {}


def enabled() -> bool:
    """Off where LAZYTORCH_DYNAMIC_SHAPES is 0/off/false."""
    v = os.environ.get("LAZYTORCH_DYNAMIC_SHAPES", "1").strip().lower()
    return v not in ("0", "off", "false", "no")


def _sizeless(x):
    """x with its integers (sizes, dims, offsets) left out."""
    if isinstance(x, bool):
        return x
    if isinstance(x, int):
        return "#"
    if isinstance(x, tuple):
        return tuple(_sizeless(e) for e in x)
    return x


# structures seen -> the sizes of their first graph (the oldest forgotten first)
SEEN: dict[tuple, tuple] = {}


def observe(outputs: list[Node]) -> tuple[tuple, bool]:
    """The structure of the graph of `outputs` (`structure`), and whether graphs of that
    structure have come with other shapes."""
    struct, sizes = structure(outputs)
    first = SEEN.get(struct)
    if first is None:
        if len(SEEN) >= _KEPT:
            del SEEN[next(iter(SEEN))]
        first = SEEN[struct] = sizes
    return struct, any(a[0] != b[0] for a, b in zip(first, sizes))


@contextlib.contextmanager
def rendering(vary: bool):
    """Kernels rendered inside are for sizes that vary (`vary`): the renderers leave out the
    strategies chosen per size that would make each size a new template (small reductions
    written out element by element)."""
    old = symbolic.sizes_vary()
    symbolic.set_sizes_vary(vary)
    try:
        yield
    finally:
        symbolic.set_sizes_vary(old)


def structure(outputs: list[Node]) -> tuple[tuple, tuple]:
    """The structure of the graph of `outputs` with its sizes left out (per node in post-order
    its op, its argument without integers, its rank, dtype and sources' numbers), and what
    was left out (per node its shape and argument)."""
    from .dynamic import walk
    num: dict[Node, int] = {}
    key = []
    sizes = []
    for n in walk(outputs):
        sizes.append((n.shape, repr(n.arg) if n.op is Op.CONST else n.arg))
        num[n] = len(key)
        # (a constant's value is left out too: a mean's divisor follows its size)
        arg = None if n.op in (Op.CONST, Op.BUFFER) else _sizeless(n.arg)
        key.append((n.op, arg, len(n.shape), n.dtype.name, tuple(num[s] for s in n.srcs)))
    key.append(tuple(num[o] for o in outputs))
    return tuple(key), tuple(sizes)


def _literals(code: str) -> tuple[str, list[tuple[int, int, str]]]:
    """The code with its parametrizable literals (integers and floats) replaced by '#', and
    the literals (start, end, text) in order. Literals C needs as constants are kept in the
    masked code."""
    out: list[str] = []
    lits: list[tuple[int, int, str]] = []
    pos = 0
    inside = False   # in the body of the kernel's function (not of a helper it calls)
    for line in code.splitlines(keepends=True):
        if FNAME + "(" in line:
            inside = True
        elif line[:1] not in (" ", "\t", "}", "\n", "") and "(" in line:
            inside = False   # another top-level function
        fixed = not inside or line.lstrip().startswith("#") or FNAME + "(" in line
        decl = not fixed and "[" in line and _DECL.match(line) is not None
        for m in _INT.finditer(line):
            if fixed:
                continue
            s, e = m.start(), m.end()
            if decl and _in_brackets(line, s):
                continue
            lits.append((pos + s, pos + e, m.group(0)))
        pos += len(line)
    last = 0
    for s, e, _ in lits:
        out.append(code[last:s])
        out.append("#")
        last = e
    out.append(code[last:])
    return "".join(out), lits


def _in_brackets(line: str, at: int) -> bool:
    """Is position `at` of a declaration line inside the [...] of a declarator (before any
    initializer's `=`, where brackets index)?"""
    eq = line.find("=")
    return (eq < 0 or at < eq) and line.rfind("[", 0, at) > line.rfind("]", 0, at)


def specialize(struct: tuple, index: int, code: str, renderer_name: str, floats: bool = True
               ) -> tuple[str, np.ndarray | None]:
    """The code to compile for the kernel at `index` of a plan of structure `struct`, and the
    int64 values of its `lt_sz` argument (None: the code as rendered, no such argument).
    Float literals are parametrized only if `floats`."""
    masked, lits = _literals(code)
    if not lits:
        return code, None
    values = tuple(t for _, _, t in lits)
    key = (struct, index, masked)
    rec = TEMPLATES.get(key)
    if rec is None:
        if len(TEMPLATES) >= _KEPT:
            del TEMPLATES[next(iter(TEMPLATES))]
        rec = TEMPLATES[key] = Template(values)
    varying = rec.varying   # (read once: another thread may widen it meanwhile)
    changed = frozenset(j for j, (a, b) in enumerate(zip(rec.first, values)) if a != b)
    if not floats and any(_is_float(values[j]) for j in changed | varying):
        return code, None   # (its float constants stay literals: a static kernel)
    if not changed <= varying:
        varying = rec.varying = varying | changed
    if not varying:
        return code, None
    order = sorted(varying)
    slot = {j: i for i, j in enumerate(order)}
    parts: list[str] = []
    last = 0
    for j, (s, e, _) in enumerate(lits):
        if j in slot:
            parts.append(code[last:s])
            parts.append(_read(slot[j], lits[j][2]))
            last = e
    parts.append(code[last:])
    body = "".join(parts)
    return _with_param(body, renderer_name), np.array([_bits(values[j]) for j in order],
                                                      np.int64)


def _is_float(text: str) -> bool:
    return not text.rstrip("L").isdigit()


def _read(i: int, text: str) -> str:
    """The C expression reading entry i of the size array for the literal `text`: an integer
    as long long, a float literal's value from its double's bits (a float literal's as
    float)."""
    if not _is_float(text):
        return f"{PARAM}[{i}]"
    read = f"((const double*){PARAM})[{i}]"
    return f"((float){read})" if text.endswith("f") else f"({read})"


def _bits(text: str) -> int:
    """The int64 entry of the size array for the literal `text` (a float: its double's
    bits)."""
    if not _is_float(text):
        return int(text.rstrip("L"))
    return int(np.float64(float(text.rstrip("f"))).view(np.int64))


def _with_param(code: str, renderer_name: str) -> str:
    """The kernel's signature with the size array as its last parameter."""
    at = code.index(FNAME + "(")
    close = code.index(")", at)
    restrict = "__restrict__" if "cuda" in renderer_name else "restrict"
    return f"{code[:close]}, const long long* {restrict} {PARAM}{code[close:]}"


def kernel_sizes(struct: tuple | None, kernels: list, renderer_name: str, vary: bool
                 ) -> dict:
    """Turn the varying literals of a plan's `kernels` (rendered for a graph of structure
    `struct`, None where this is off; `vary`: graphs of it came with other shapes) into size
    arguments: each such kernel's code is replaced by its template; returns its name -> the
    int64 values of its `lt_sz` argument, in kernel order. Float literals are parametrized
    only where shapes vary: a graph that differs from one seen only in its constants keeps
    them as literals, so that it computes bit for bit what a static kernel does (the C
    compiler contracts and folds constant operands otherwise than loaded ones)."""
    if not kernels or struct is None:
        return {}
    out = {}
    for i, k in enumerate(kernels):
        code, values = specialize(struct, i, k.code, renderer_name, vary)
        if values is not None:
            k.code = code
            out[k.name] = values
    return out
