"""Integer index expressions for kernels: linear sums of atoms, with floor-div and mod.

Everything is kept in one normal form, `Lin(terms, const)`: a sum of `coef * atom` plus a
constant, where an atom is a loop variable, a `Div`/`Mod` of a Lin by a positive constant, or a
value loaded at run time (`Data`, for gather). Bounds are tracked so that `(a*8 + b) // 8` with
`0 <= b < 8` folds to `a`; this is what turns reshapes and merged loops back into plain strides.
"""
from __future__ import annotations

import threading
from typing import Any

INF = float("inf")

_local = threading.local()


def sizes_vary() -> bool:
    """Are the kernels being rendered on this thread for sizes that vary between realizes
    (engine/shapes.py)? Strategies picked per size are then left out."""
    return getattr(_local, "vary", False)


def set_sizes_vary(vary: bool) -> None:
    _local.vary = vary


class Atom:
    __slots__ = ()

    def bounds(self) -> tuple[float, float]:
        raise NotImplementedError

    def vars(self) -> set[str]:
        raise NotImplementedError


class Var(Atom):
    __slots__ = ("name", "size")

    def __init__(self, name: str, size: int):
        self.name, self.size = name, size

    def bounds(self):
        return (0, self.size - 1)

    def vars(self):
        return {self.name}

    def key(self):
        return ("v", self.name, self.size)

    def render(self) -> str:
        return self.name


class Div(Atom):
    __slots__ = ("x", "c")

    def __init__(self, x: Lin, c: int):
        self.x, self.c = x, c

    def bounds(self):
        lo, hi = self.x.bounds()
        return (lo // self.c if lo > -INF else -INF, hi // self.c if hi < INF else INF)

    def vars(self):
        return self.x.vars()

    def key(self):
        return ("d", self.x.key(), self.c)

    def render(self) -> str:
        return f"({self.x.render()}/{self.c})"


class Mod(Atom):
    __slots__ = ("x", "c")

    def __init__(self, x: Lin, c: int):
        self.x, self.c = x, c

    def bounds(self):
        return (0, self.c - 1)

    def vars(self):
        return self.x.vars()

    def key(self):
        return ("m", self.x.key(), self.c)

    def render(self) -> str:
        return f"({self.x.render()}%{self.c})"


class Data(Atom):
    """An index read from memory at run time; `name` is the renderer's variable for it."""

    __slots__ = ("value", "lo", "hi")

    def __init__(self, value: Any, lo: int, hi: int):
        self.value, self.lo, self.hi = value, lo, hi

    def bounds(self):
        return (self.lo, self.hi)

    def vars(self):
        return {"<data>"}

    def key(self):
        return ("x", id(self.value))

    def render(self) -> str:
        return self.value.name


class Lin:
    """sum(coef * atom) + const."""

    __slots__ = ("terms", "const", "_key")

    def __init__(self, terms: tuple[tuple[Atom, int], ...] = (), const: int = 0):
        self.terms, self.const = terms, const
        self._key = None

    # construction -------------------------------------------------------------------------
    @staticmethod
    def of(x: int | Atom | Lin) -> Lin:
        if isinstance(x, Lin):
            return x
        if isinstance(x, int):
            return Lin((), x)
        return Lin(((x, 1),), 0)

    def __add__(self, other) -> Lin:
        o = Lin.of(other)
        acc: dict[Any, list] = {}
        for a, c in self.terms + o.terms:
            k = a.key()
            if k in acc:
                acc[k][1] += c
            else:
                acc[k] = [a, c]
        out = Lin(tuple((a, c) for a, c in acc.values() if c != 0), self.const + o.const)
        return _merge_divmod(out) or out

    __radd__ = __add__

    def __sub__(self, other) -> Lin:
        return self + Lin.of(other) * -1

    def __mul__(self, c: int) -> Lin:
        if c == 0:
            return Lin((), 0)
        return Lin(tuple((a, k * c) for a, k in self.terms), self.const * c)

    def __floordiv__(self, c: int) -> Lin:
        if c == 1:
            return self
        q, r = self._split(c)
        lo, hi = r.bounds()
        if lo > -INF and hi < INF and lo // c == hi // c:
            return q + lo // c
        if -INF < lo < 0 and r.terms:  # C's `/` truncates: keep the dividend non-negative
            k = -(lo // c)
            return q - k + Lin.of(Div(r + k * c, c))
        return q + Lin.of(Div(r, c)) if r.terms else q + r.const // c

    def __mod__(self, c: int) -> Lin:
        if c == 1:
            return Lin((), 0)
        _, r = self._split(c)
        lo, hi = r.bounds()
        if lo > -INF and hi < INF and lo // c == hi // c:
            return r - (lo // c) * c
        if -INF < lo < 0:  # C's `%` truncates: keep the dividend non-negative
            r = r + -(lo // c) * c
        return Lin.of(Mod(r, c))

    def _split(self, c: int) -> tuple[Lin, Lin]:
        """self = q*c + r with r's coefficients and constant reduced mod c."""
        qt, rt = [], []
        for a, k in self.terms:
            if k % c == 0:
                qt.append((a, k // c))
            else:
                rt.append((a, k))
        return Lin(tuple(qt), self.const // c), Lin(tuple(rt), self.const % c)

    # queries ----------------------------------------------------------------------------
    def bounds(self) -> tuple[float, float]:
        lo = hi = self.const
        for a, k in self.terms:
            alo, ahi = a.bounds()
            if k > 0:
                lo, hi = lo + k * alo, hi + k * ahi
            else:
                lo, hi = lo + k * ahi, hi + k * alo
        return lo, hi

    def vars(self) -> set[str]:
        out: set[str] = set()
        for a, _ in self.terms:
            out |= a.vars()
        return out

    def nonlinear_vars(self) -> set[str]:
        out: set[str] = set()
        for a, _ in self.terms:
            if not isinstance(a, Var):
                out |= a.vars()
        return out

    def coef(self, name: str) -> int:
        return sum(k for a, k in self.terms if isinstance(a, Var) and a.name == name)

    def key(self):
        k = self._key
        if k is None:  # a Lin never changes: its key is computed once
            k = self._key = (tuple(sorted((a.key(), k) for a, k in self.terms)), self.const)
        return k

    def substitute(self, mapping: dict[str, Lin]) -> Lin:
        out = Lin((), self.const)
        for a, k in self.terms:
            if isinstance(a, Var) and a.name in mapping:
                out = out + mapping[a.name] * k
            elif isinstance(a, (Div, Mod)) and a.vars() & mapping.keys():
                x = a.x.substitute(mapping)
                out = out + (x // a.c if isinstance(a, Div) else x % a.c) * k
            else:
                out = out + Lin(((a, k),), 0)
        return out

    def render(self) -> str:
        parts = []
        for a, k in sorted(self.terms, key=lambda t: t[0].key()):
            r = a.render()
            parts.append(r if k == 1 else f"{r}*{k}" if k > 0 else f"{r}*({k})")
        if self.const or not parts:
            parts.append(str(self.const))
        s = "+".join(parts)
        return s if len(parts) == 1 else f"({s})"


def _merge_divmod(e: Lin) -> Lin | None:
    """e with one pair of terms merged, or None: (x/c)*c*k + (x%c)*k = x*k, and
    ((x/b)%c)*b*k + (x%b)*k = (x%(b*c))*k. Both hold for C's truncating division as for
    flooring; they turn a reshape that splits a dim and merges it back into a plain stride."""
    if len(e.terms) < 2 or not any(isinstance(a, Mod) for a, _ in e.terms):
        return None
    for i, (m, k) in enumerate(e.terms):
        if not isinstance(m, Mod):
            continue
        xk = m.x.key()
        for j, (a, kj) in enumerate(e.terms):
            if kj != k * m.c:
                continue
            if isinstance(a, Div) and a.c == m.c and a.x.key() == xk:
                merged = m.x * k
            elif (isinstance(a, Mod) and a.x.const == 0 and len(a.x.terms) == 1 and
                  a.x.terms[0][1] == 1 and isinstance(a.x.terms[0][0], Div) and
                  a.x.terms[0][0].c == m.c and a.x.terms[0][0].x.key() == xk):
                merged = (m.x % (m.c * a.c)) * k
            else:
                continue
            rest = Lin(tuple(t for n, t in enumerate(e.terms) if n not in (i, j)), e.const)
            return rest + merged
    return None


def ravel(idx: tuple[Lin, ...], shape: tuple[int, ...]) -> Lin:
    """The flat (row-major) index of `idx` in `shape`."""
    flat = Lin.of(0)
    for i, n in zip(idx, shape):
        flat = flat * n + i
    return flat


def unravel(flat: Lin, shape: tuple[int, ...]) -> tuple[Lin, ...]:
    out = []
    stride = 1
    for n in reversed(shape):
        out.append(Lin.of(0) if n == 1 else (flat // stride) % n)
        stride *= n
    return tuple(reversed(out))


def reshape_index(idx: tuple[Lin, ...], shape: tuple[int, ...], src: tuple[int, ...]):
    """Map an index in `shape` to the index in `src` that a row-major reshape reads.

    Dimensions are matched in groups whose products agree, so a reshape that only merges or
    splits some dims keeps the others as they are, with no div/mod on them.
    """
    out: list[Lin] = []
    i = j = 0
    while i < len(shape) or j < len(src):
        gi, gj = [i], [j]
        pi = shape[i] if i < len(shape) else 1
        pj = src[j] if j < len(src) else 1
        i, j = i + 1, j + 1
        while pi != pj:
            if pi < pj:
                pi *= shape[i]
                gi.append(i)
                i += 1
            else:
                pj *= src[j]
                gj.append(j)
                j += 1
        # swallow trailing size-1 dims into this group
        while i < len(shape) and shape[i] == 1 and (j >= len(src) or src[j] != 1):
            gi.append(i)
            i += 1
        while j < len(src) and src[j] == 1 and (i >= len(shape) or shape[i] != 1):
            gj.append(j)
            j += 1
        gi = [k for k in gi if k < len(shape)]
        gj = [k for k in gj if k < len(src)]
        flat = ravel(tuple(idx[k] for k in gi), tuple(shape[k] for k in gi))
        out.extend(unravel(flat, tuple(src[k] for k in gj)))
    return tuple(out)
