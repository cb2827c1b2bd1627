"""Which host loops a process runs (runtime/native): chosen once at `import lazytorch`, the
same function objects bound in every module whether the compiled module came from setup.py's
build, from the disk cache warm or empty, or not at all; CPython's public C API only."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lazytorch.runtime import native
from lazytorch.runtime.native import sources

ROOT = Path(__file__).resolve().parents[1]

needs_headers = pytest.mark.skipif(native._include() is None,
                                   reason="this interpreter has no Python.h to build against")

# a process that finds no extension built at install time (as a checkout without
# `pip install -e .`): the run-time build into the disk cache serves it
NO_EXTENSION = f"import sys\nsys.modules[{native.NAME!r}] = None\n"

PROBE = """
import json, sys
import numpy as np
import lazytorch as torch
import lazytorch.nn, lazytorch.optim, lazytorch.nn.functional
from lazytorch.ir import graph, sites
from lazytorch.engine import realize
from lazytorch.runtime import memory, native
chosen = {"new_node": graph.new_node, "record_from": sites.record_from,
          "mark_backward": sites.mark_backward, "_toposort": graph._toposort,
          "_prepare": realize._prepare, "address_of": memory.address_of, "_dead": graph._dead}
python = {id(f) for f in (graph.new_node_py, sites.record_from_py, sites.mark_backward_py,
                          graph.toposort_py, realize.prepare_py, memory.address_of_py)}
mods = [(n, m) for n, m in list(sys.modules.items()) if n.startswith("lazytorch") and m]
# a global of a chosen function's name that holds another object; a Python version held
# under any other name while the compiled ones serve
other = sorted(f"{n}.{k}" for n, m in mods for k, v in vars(m).items()
               if k in chosen and v is not chosen[k])
compiled = native.module() is not None
stray = sorted(f"{n}.{k}" for n, m in mods for k, v in vars(m).items()
               if compiled and id(v) in python and not k.endswith("_py"))
binders = sorted(n for n, m in mods if vars(m).get("new_node") is graph.new_node)
x = torch.tensor(np.arange(6, dtype=np.float32))
w = torch.ones(6, requires_grad=True)
loss = (x * w * 2 + 1).sum()
loss.backward()
print(json.dumps({
    "origin": native.origin(), "failure": native.failure(),
    "file": compiled and native.module().__file__,
    "kinds": sorted({type(f).__name__ for f in chosen.values()}),
    "other": other, "stray": stray, "binders": binders,
    "value": [loss.item(), w.grad.numpy().tolist()]}))
"""
VALUE = [36.0, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]]   # sum(2x + 1), d/dw = 2x for x = 0..5
COMPILED, PYTHON = ["builtin_function_or_method"], ["function"]


def _probe(cache: Path, prefix: str = NO_EXTENSION, root: Path = ROOT, **env) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith("LAZYTORCH_")}
    e.update(LAZYTORCH_CACHE_DIR=str(cache), PYTHONPATH=str(root), **env)
    p = subprocess.run([sys.executable, "-c", prefix + PROBE], env=e, capture_output=True,
                       text=True, timeout=300, cwd=str(cache.parent))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["value"] == VALUE
    assert out["other"] == [] and out["stray"] == []
    # (the probe sees the modules that bind the constructor by name: the front end's too)
    assert {"lazytorch.engine.realize", "lazytorch.runtime.memory",
            "lazytorch.frontend.elementwise", "lazytorch.nn.functional"} <= set(out["binders"])
    return out


def _built(cache: Path) -> list[Path]:
    return sorted((cache / native.FOLDER).glob("*.so"))


def test_the_c_sources_use_only_the_public_api():
    # private calls (_PyDict_GetItem_KnownHash, _PyDict_Pop, ...) may go in any Python release
    parts = sources.parts()
    assert {Path(p).name for p in parts} >= {"module.c", "base.c", "graph.c"}
    for path in parts:
        text = Path(path).read_text()
        assert re.findall(r"\b_Py\w*", text) == [], path
    assert all(f'#include "{Path(p).name}"' in Path(sources.MAIN).read_text()
               for p in parts if p != sources.MAIN)


@needs_headers
def test_an_empty_and_a_warm_cache_bind_the_same_compiled_loops(tmp_path):
    cache = tmp_path / "cache"
    empty = _probe(cache)
    assert empty["origin"] == "cache" and empty["failure"] is None
    assert empty["kinds"] == COMPILED
    (so,) = _built(cache)
    assert empty["file"] == str(so)
    inode = so.stat().st_ino
    warm = _probe(cache)
    assert warm == empty       # the same choice, the same bindings
    assert _built(cache) == [so] and so.stat().st_ino == inode   # loaded, not written again


def test_disabled_binds_the_python_versions_everywhere(tmp_path):
    cache = tmp_path / "cache"
    off = _probe(cache, LAZYTORCH_NATIVE="0")
    assert off["origin"] is None and "LAZYTORCH_NATIVE=0" in off["failure"]
    assert off["kinds"] == PYTHON
    assert not (cache / native.FOLDER).exists()     # nothing built


def test_without_a_compiler_the_python_versions_serve(tmp_path):
    cache = tmp_path / "cache"
    # (the kernels then run on the reference interpreter)
    out = _probe(cache, CC=shutil.which("false") or "false", LAZYTORCH_BACKEND="interp")
    assert out["origin"] is None and "CompileError" in out["failure"]
    assert out["kinds"] == PYTHON
    assert _built(cache) == []


@needs_headers
def test_a_damaged_module_is_rebuilt(tmp_path):
    cache = tmp_path / "cache"
    first = _probe(cache)
    (so,) = _built(cache)
    data = bytearray(so.read_bytes())
    data[len(data) // 2] ^= 0xFF
    so.write_bytes(bytes(data))
    again = _probe(cache)
    assert again["origin"] == "cache" and again["file"] == first["file"]
    assert so.read_bytes() != bytes(data)   # rebuilt, not trusted


@needs_headers
def test_the_extension_built_at_install_serves_while_it_matches_its_sources(tmp_path):
    # setup.py's build (what `pip install -e .` runs) in a copy of the package
    root = tmp_path / "src"
    shutil.copytree(ROOT / "lazytorch", root / "lazytorch",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for f in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, root / f)
    p = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=root,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    (ext,) = (root / "lazytorch" / "runtime" / "native").glob("_native*.so")
    cache = tmp_path / "cache"
    out = _probe(cache, prefix="", root=root)
    assert out["origin"] == "installed" and out["file"] == str(ext)
    assert out["kinds"] == COMPILED
    assert not (cache / native.FOLDER).exists()     # nothing built at run time
    # a source edited after the install: that extension is stale, the run-time build serves
    graph_c = root / "lazytorch" / "runtime" / "native" / "graph.c"
    graph_c.write_text(graph_c.read_text() + "\n/* edited */\n")
    stale = _probe(cache, prefix="", root=root)
    assert stale["origin"] == "cache" and stale["kinds"] == COMPILED
    assert [str(p) for p in _built(cache)] == [stale["file"]]
