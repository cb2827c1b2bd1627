"""Side data of nodes: the user's source line and API call that created each node, and whether
autograd made it. Kept in side tables keyed by node identity, never in the Node (equality stays
structural); entries vanish with their nodes."""
from __future__ import annotations

import os
import sys
from typing import Any

from .graph import Node, NodeTable
from .ops import Op

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_BUFFER = Op.BUFFER
_names: dict[str, str] = {}


_lines: dict[tuple[int, int], tuple] = {}  # (id(code), offset) -> (code, `file:line`)


def _format(s: tuple) -> tuple[str, str]:
    """A site as stored by record(), (code, instruction offset, api), as (`file:line`, api)."""
    code, lasti, api = s
    e = _lines.get((id(code), lasti))
    if e is None:
        fname = _names.get(code.co_filename)
        if fname is None:
            fname = _names[code.co_filename] = os.path.basename(code.co_filename)
        # the line of the instruction, as frame.f_lineno computes it
        line = next((ln for start, end, ln in code.co_lines() if start <= lasti < end), None)
        if len(_lines) >= 4096:
            _lines.clear()
        e = _lines[id(code), lasti] = (code, f"{fname}:{line}")  # (code: keeps its id unique)
    return e[1], api


class SiteTable(NodeTable):
    """node -> (`file:line`, API name). record() stores the raw (code, offset, api) and the
    text is made when someone reads it (messages, debug output), not for every op."""

    __slots__ = ()

    def get(self, n: Node, default: Any = None) -> Any:
        s = self.d.get(id(n))
        if s is None:
            return default
        return _format(s) if len(s) == 3 else s

    def __getitem__(self, n: Node) -> Any:
        s = super().__getitem__(n)
        return _format(s) if len(s) == 3 else s

    def pop(self, n: Node, *default: Any) -> Any:
        s = super().pop(n, *default)
        return _format(s) if isinstance(s, tuple) and len(s) == 3 else s


# node -> (file:line, API name)
SITES: SiteTable = SiteTable()
BACKWARD: NodeTable = NodeTable()
_SITES_D = SITES.d


# id(code) -> (code, what): None for code outside the lazytorch package; else the function's
# name if it is public (a lazytorch API the user can call), or ""
_CODES: dict[int, tuple] = {}


# public names that say nothing of the op: a module's forward (the op inside it, `linear`,
# `conv2d`, names it better, as the user's model(x) is not one op)
_NOT_API = frozenset({"forward"})


def _classify(code) -> str | None:
    name = code.co_name
    what = ((name if name[0] not in "_<" and name not in _NOT_API else "")
            if code.co_filename.startswith(_PKG) else None)
    if len(_CODES) >= 8192:
        _CODES.clear()
    _CODES[id(code)] = (code, what)  # (holding the code keeps its id unique)
    return what


def _walk(f, api: str) -> tuple | None:
    """(code, instruction offset, api) of the innermost frame from f outwards outside the
    lazytorch package; api is the outermost public lazytorch function on the way (`add`,
    `relu`, `sum`, ...), or the given one if there is none."""
    codes = _CODES
    while f is not None:
        code = f.f_code
        e = codes.get(id(code))
        what = e[1] if e is not None else _classify(code)
        if what is None:
            # the offset, not f_lineno: the line is found when it is read (f_lineno scans the
            # line table, which costs in long functions), and the offset is as exact
            return code, f.f_lasti, api
        if what:
            api = what
        f = f.f_back
    return None


def named(fn, name: str):
    """Give a closure made by a factory its public name, also in tracebacks and sites."""
    fn.__name__ = fn.__qualname__ = name
    fn.__code__ = fn.__code__.replace(co_name=name)
    return fn


def record(node: Node) -> None:
    """Remember the user's line and the API call that made `node` (unless it has one)."""
    if id(node) not in _SITES_D:
        # this function ("record") is the innermost API name on the way to the user's frame
        record_from(node, sys._getframe(1), "record")


def record_from(node: Node, f, api: str) -> None:
    """record(node) as called by a function that passes its caller's frame and its own name
    (so that its own frame object is never made): the hot ops' way."""
    # the position must be read now (the frame moves on); the text is made when it is read
    site = _walk(f, api)
    if site is None:
        return
    d = _SITES_D
    d[id(node)] = site
    # the nodes a composite op built on the way (matmul's reshapes and broadcasts) share its
    # line; the walk stops at nodes that have one, so each is visited once
    for n in node.srcs:
        if id(n) not in d and n.op is not _BUFFER:
            break
    else:
        return  # (the usual case: every source has its line)
    stack = [*node.srcs]
    while stack:
        n = stack.pop()
        if id(n) not in d and n.op is not _BUFFER:
            d[id(n)] = site
            stack.extend(n.srcs)


def site_of(node: Node) -> str | None:
    s = SITES.get(node)
    return s[0] if s else None


def api_of(node: Node) -> str | None:
    s = SITES.get(node)
    return s[1] if s and s[1] else None


def inherit(new: Node, old: Node) -> None:
    """A pass replaced `old` by `new`: carry its side data over, unless new has its own."""
    if new is old:
        return
    d = _SITES_D
    s = d.get(id(old))
    if s is not None and id(new) not in d:
        d[id(new)] = s
    if id(old) in BACKWARD.d:
        BACKWARD.d[id(new)] = True


def backward_site(s: tuple, like: Node) -> tuple:
    """The site of the nodes `like`'s gradient rule built, from like's site s: its line, its
    api name marked "(backward)" (a raw site stays raw: the text is made when it is read)."""
    api = (s[-1] if s[-1] else like.op.name.lower()).removesuffix(" (backward)")
    return (*s[:-1], api + " (backward)")


def mark_backward(nodes, like: Node) -> None:
    """Nodes built by the gradient rule of `like`: backward, at `like`'s source line."""
    d, bw = _SITES_D, BACKWARD.d
    s = d.get(id(like))
    site = None if s is None else backward_site(s, like)
    for n in nodes:
        if id(n) in d:
            continue  # made by the user before (hash-consing shares it): forward
        bw[id(n)] = True
        if site is not None:
            d[id(n)] = site


mark_backward_py = mark_backward   # the reference for the compiled one
record_from_py = record_from   # the reference for the compiled one


def use_native(mod) -> None:
    """The compiled record_from and mark_backward (runtime/native/sites.c) take over (called
    with graph.use_native)."""
    global record_from, mark_backward
    mod.setup_sites(_SITES_D, _CODES, _classify, _BUFFER)
    mod.setup_backward(BACKWARD.d, backward_site)
    record_from = mod.record_from
    mark_backward = mod.mark_backward
