"""torch.utils.hooks: the handle that hook registrations return."""
from __future__ import annotations

import itertools
import weakref
from typing import Any

__all__ = ["RemovableHandle"]


class RemovableHandle:
    """The handle a hook registration returns: `handle.remove()` unregisters the hook (from
    hooks_dict and from each of extra_dict, a dict or a list of dicts), as does leaving a
    `with handle:` block."""

    _ids = itertools.count()

    def __init__(self, hooks_dict: dict, *, extra_dict: Any = None) -> None:
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = next(RemovableHandle._ids)
        if isinstance(extra_dict, dict):
            extra_dict = [extra_dict]
        self.extra_dict_ref = tuple(weakref.ref(d) for d in (extra_dict or ()))

    def remove(self) -> None:
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            d = ref()
            if d is not None and self.id in d:
                del d[self.id]

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
