"""User source sites: the file:line of user code that created each node (a weak side table)."""
from __future__ import annotations

import os
import sys
import weakref

from .graph import Node

_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep
SITES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def user_site() -> str | None:
    """`file:line` of the innermost frame outside the lazytorch package."""
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
    if f is None:
        return None
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"


def record(node: Node) -> None:
    if node not in SITES:
        site = user_site()
        if site is not None:
            SITES[node] = site


def site_of(node: Node) -> str | None:
    return SITES.get(node)
