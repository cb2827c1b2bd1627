"""Side data of nodes: the user's source line and API call that created each node, and whether
autograd made it. Kept in weak side tables, never in the Node (equality stays structural)."""
from __future__ import annotations

import os
import sys

from .graph import Node, NodeTable
from .ops import Op

_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep
# node -> (file:line, API name); entries vanish with their nodes
SITES: NodeTable = NodeTable()
BACKWARD: NodeTable = NodeTable()
_names: dict[str, str] = {}


def user_site() -> tuple[str, str] | None:
    """(`file:line`, api) for the innermost frame outside the lazytorch package; api is the
    public lazytorch function the user called (`add`, `relu`, `sum`, ...)."""
    f = sys._getframe(1)
    api = ""
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        name = f.f_code.co_name
        if name[0] not in "_<":
            api = name
        f = f.f_back
    if f is None:
        return None
    fname = _names.get(f.f_code.co_filename)
    if fname is None:
        fname = _names[f.f_code.co_filename] = os.path.basename(f.f_code.co_filename)
    return f"{fname}:{f.f_lineno}", api


def named(fn, name: str):
    """Give a closure made by a factory its public name, also in tracebacks and sites."""
    fn.__name__ = fn.__qualname__ = name
    fn.__code__ = fn.__code__.replace(co_name=name)
    return fn


def record(node: Node) -> None:
    if node not in SITES:
        site = user_site()
        if site is not None:
            SITES[node] = site
            # the nodes a composite op built on the way (matmul's reshapes and broadcasts)
            # share its line; the walk stops at nodes that have one, so each is visited once
            stack = list(node.srcs)
            while stack:
                n = stack.pop()
                if n not in SITES and n.op is not Op.BUFFER:
                    SITES[n] = site
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
    s = SITES.get(old)
    if s is not None and new not in SITES:
        SITES[new] = s
    if old in BACKWARD:
        BACKWARD.add(new)


def mark_backward(nodes, like: Node) -> None:
    """Nodes built by the gradient rule of `like`: backward, at `like`'s source line."""
    s = SITES.get(like)
    api = (s[1] if s and s[1] else like.op.name.lower()).removesuffix(" (backward)")
    for n in nodes:
        if n in SITES:
            continue  # made by the user before (hash-consing shares it): forward
        BACKWARD.add(n)
        if s is not None:
            SITES[n] = (s[0], api + " (backward)")
