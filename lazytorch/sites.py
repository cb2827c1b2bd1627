"""User source sites: the file:line of user code that created each node (a weak side table)."""
from __future__ import annotations

import os
import sys
import weakref

from .graph import Node

_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep
SITES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_names: dict[str, str] = {}


def user_site() -> str | None:
    """`file:line` of the innermost frame outside the lazytorch package."""
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
    if f is None:
        return None
    name = _names.get(f.f_code.co_filename)
    if name is None:
        name = _names[f.f_code.co_filename] = os.path.basename(f.f_code.co_filename)
    return f"{name}:{f.f_lineno}"


def record(node: Node) -> None:
    if node not in SITES:
        site = user_site()
        if site is not None:
            SITES[node] = site


def site_of(node: Node) -> str | None:
    return SITES.get(node)
