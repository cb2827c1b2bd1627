"""The host loops' C sources and their digest: what both builds of the module (setup.py's at
install time, native/__init__.py's at run time) compile, and how a built module is matched to
the files beside it. Imports nothing of lazytorch: setup.py loads this file by its path."""
from __future__ import annotations

import hashlib
import os

DIR = os.path.dirname(os.path.abspath(__file__))
MAIN = os.path.join(DIR, "module.c")   # the translation unit; it includes the other parts
MACRO = "LAZYTORCH_NATIVE_DIGEST"      # defined by both builds as a C string literal
FLAGS = ["-std=gnu11", "-fno-strict-aliasing"]   # besides optimization and -fPIC -shared


def parts() -> list[str]:
    """The paths of the module's C files (module.c and what it includes), by name."""
    return sorted(os.path.join(DIR, f) for f in os.listdir(DIR) if f.endswith(".c"))


def digest() -> str:
    """The sha256 of the C files' names and contents: equal digests, the same module."""
    h = hashlib.sha256()
    for path in parts():
        with open(path, "rb") as f:
            data = f.read()
        h.update(f"{os.path.basename(path)}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def define(value: str) -> str:
    """The -D option (without the -D) setting the digest macro to `value`."""
    return f'{MACRO}="{value}"'
