"""The install-time build of the host loops' extension, lazytorch.runtime.native._native
(pyproject.toml holds everything else). It is optional: where it cannot be built (no compiler,
no Python headers) the install goes on, and lazytorch builds the same sources into its disk
cache at the first import, or else runs the Python versions (runtime/native/__init__.py)."""
import importlib.util
import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
NATIVE = os.path.join("lazytorch", "runtime", "native")

# (by path: importing the package would need its dependencies at build time)
_spec = importlib.util.spec_from_file_location("lazytorch_native_sources",
                                               os.path.join(HERE, NATIVE, "sources.py"))
sources = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sources)
digest = sources.digest()
name, value = sources.define(digest).split("=", 1)

setup(ext_modules=[Extension(
    "lazytorch.runtime.native._native",
    sources=[os.path.join(NATIVE, "module.c")],
    depends=[os.path.relpath(p, HERE) for p in sources.parts()],
    define_macros=[(name, value)],
    extra_compile_args=sources.FLAGS,
    optional=True,
)])
