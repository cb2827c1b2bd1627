"""The caches: whole plans in memory, compiled modules on disk (checked, never blindly trusted)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import debug
from lazytorch.compiler import schedule
from lazytorch.frontend.tensor import realize_tensors
from lazytorch.runtime import cache, cpu
from lazytorch.runtime.cpu import toolchain

ROOT = Path(__file__).resolve().parents[1]

# run in a fresh interpreter: realize one small graph, print the counters and the value
SCRIPT = """
import json
import numpy as np
import lazytorch as torch
from lazytorch import debug
x = torch.tensor(np.arange(12, dtype=np.float32).reshape(3, 4) / 7)
y = ((x * 0.8125).exp() - x.amax(1, keepdim=True)).sum(1)
debug.reset_stats()
value = y.tolist()
print(json.dumps({"stats": debug.stats(), "value": value}))
"""


def _kernel_modules(cache: Path) -> list[Path]:
    """The kernel modules in a disk cache (<key[:2]>/<key>.so; the scratch runtime and the host
    loops' module sit in folders of their own)."""
    return [so for so in cache.glob("*/*.so") if so.parent.name == so.name[:2]]


def _expected() -> list[float]:
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    return ((np.exp(x * np.float32(0.8125)) - x.max(1, keepdims=True)).sum(1)).tolist()


# another program reusing SCRIPT's kernels in a plan of its own, with one new kernel
SCRIPT_MORE = """
import json
import numpy as np
import lazytorch as torch
from lazytorch import debug
from lazytorch.frontend.tensor import realize_tensors
x = torch.tensor(np.arange(12, dtype=np.float32).reshape(3, 4) / 7)
y = ((x * 0.8125).exp() - x.amax(1, keepdim=True)).sum(1)
z = x.amin(0) * 2.5
debug.reset_stats()
realize_tensors([z, y])
print(json.dumps({"stats": debug.stats(), "value": y.tolist(), "z": z.tolist()}))
"""


def _fresh_process(cache: Path, script: str = SCRIPT) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAZYTORCH_")}
    # (LAZYTORCH_NATIVE=0: no host-loop module built beside the kernels' ones in the cache)
    env.update(LAZYTORCH_CACHE_DIR=str(cache), LAZYTORCH_BACKEND="c", LAZYTORCH_NATIVE="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def c_backend(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("LAZYTORCH_CACHE_DIR", str(d))
    return d


def test_same_structure_new_data_compiles_nothing(c_backend, rng):
    def f(x, y):
        return ((x * y).exp() + x.amax(0)).sum(0) * 0.375

    def ref(a, b):
        return ((np.exp(a * b) + a.max(0)).sum(0) * 0.375).astype(np.float32)

    a, b = rng.standard_normal((2, 9, 5)).astype(np.float32)
    np.testing.assert_allclose(f(torch.tensor(a), torch.tensor(b)).numpy(), ref(a, b),
                               rtol=1e-5)
    for _ in range(3):
        a, b = rng.standard_normal((2, 9, 5)).astype(np.float32)
        x, y = torch.tensor(a), torch.tensor(b)   # new buffers, new data
        debug.reset_stats()
        out = f(x, y).numpy()
        s = debug.stats()
        assert s["kernels_compiled"] == 0
        assert s["compiler_runs"] == 0
        assert s["compile_cache_hits"] == 0
        assert s["plan_cache_hits"] == 1
        assert s["realizes"] == 1
        np.testing.assert_allclose(out, ref(a, b), rtol=1e-5)


def test_a_different_constant_is_a_different_plan(c_backend):
    x = torch.tensor([1.0, 2.0, 3.0])
    np.testing.assert_allclose((x * 1.75 + 0.5).numpy(), [2.25, 4.0, 5.75])
    debug.reset_stats()
    np.testing.assert_allclose((torch.tensor([1.0, 2.0, 3.0]) * 2.75 + 0.5).numpy(),
                               [3.25, 6.0, 8.75])
    assert debug.stats()["plan_cache_hits"] == 0


def _record_compiles(monkeypatch) -> list[str]:
    """Log each compiler process's start and finish, in order."""
    events: list[str] = []
    start, finish = toolchain.start_compile, toolchain.finish_compile

    def started(*a, **k):
        events.append("start")
        return start(*a, **k)

    def finished(*a, **k):
        events.append("finish")
        return finish(*a, **k)

    monkeypatch.setattr(toolchain, "start_compile", started)
    monkeypatch.setattr(toolchain, "finish_compile", finished)
    return events


def test_a_realize_compiles_in_two_concurrent_compiler_runs(c_backend, fresh_cache, rng,
                                                            monkeypatch):
    # two GEMMs (shapes no other test uses): enough code to split between two processes
    a, b, c = (rng.standard_normal(s).astype(np.float32) for s in [(40, 36), (36, 44), (44, 28)])
    y = ((torch.tensor(a) * 1.0625) @ torch.tensor(b)).relu() @ torch.tensor(c)
    n = len(schedule(y))
    assert n >= 2
    monkeypatch.setattr(cpu, "cores", lambda: 2)   # so it holds on one core too
    events = _record_compiles(monkeypatch)
    debug.reset_stats()
    out = y.numpy()
    s = debug.stats()
    assert events == ["start", "start", "finish", "finish"]   # both run at once
    assert s["compiler_runs"] == 2
    assert s["kernels_compiled"] == n
    assert len(_kernel_modules(fresh_cache)) == 2
    ref = np.maximum((a * np.float32(1.0625)) @ b, 0) @ c
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_a_small_realize_compiles_in_one_compiler_run(c_backend, fresh_cache, rng):
    a = rng.standard_normal((7, 11)).astype(np.float32)
    x = torch.tensor(a)
    y = (x * 1.3125 - (x * 1.3125).sum(0)).amax(1)   # a structure no other test compiles
    n = len(schedule(y))
    assert n >= 2
    debug.reset_stats()
    out = y.numpy()
    s = debug.stats()
    assert s["compiler_runs"] == 1
    assert s["kernels_compiled"] == n
    assert len(_kernel_modules(fresh_cache)) == 1
    b = a * np.float32(1.3125)
    np.testing.assert_allclose(out, (b - b.sum(0)).max(1), rtol=1e-5, atol=1e-6)


def test_a_kernel_compiles_once_whatever_plan_uses_it(c_backend, fresh_cache, rng):
    a = rng.standard_normal((6, 10)).astype(np.float32)

    def two(x):
        return (x * 1.4375).sum(0), x.amin(1) * 1.5625

    u = two(torch.tensor(a))[0]
    debug.reset_stats()
    np.testing.assert_allclose(u.numpy(), (a * np.float32(1.4375)).sum(0), rtol=1e-5)
    assert debug.stats()["kernels_compiled"] == 1
    # a new plan holding that kernel and a new one compiles only the new one
    u, v = two(torch.tensor(a))
    debug.reset_stats()
    realize_tensors([u, v])
    assert debug.stats()["kernels_compiled"] == 1
    assert debug.stats()["compiler_runs"] == 1
    # the same kernels in another order: a new plan, nothing new to compile but its driver
    u, v = two(torch.tensor(a))
    debug.reset_stats()
    realize_tensors([v, u])
    assert debug.stats()["kernels_compiled"] == 0
    assert debug.stats()["compiler_runs"] <= 1
    np.testing.assert_allclose(u.numpy(), (a * np.float32(1.4375)).sum(0), rtol=1e-5)
    np.testing.assert_allclose(v.numpy(), a.min(1) * np.float32(1.5625), rtol=1e-6)


def test_a_new_plan_renders_each_kernel_once(c_backend, fresh_cache, rng, monkeypatch):
    # a GEMM and a row-fused softmax, compiled into an empty cache: one rendering of each
    # kernel serves as its source, its symbol (a hash of the code) and the compiled module
    from lazytorch.compiler.codegen.c import CRenderer
    rendered = []
    real = CRenderer.render_kernel

    def counted(self, k, fname):
        rendered.append(k)
        return real(self, k, fname)
    monkeypatch.setattr(CRenderer, "render_kernel", counted)
    a, b = rng.standard_normal((2, 12, 12)).astype(np.float32)
    y = ((torch.tensor(a) @ torch.tensor(b)) * 0.8125).softmax(1) + 1.1875
    debug.reset_stats()
    out = y.numpy()
    n = debug.stats()["kernels_compiled"]
    assert n >= 2 and len(rendered) == n
    assert len({id(k) for k in rendered}) == n
    z = (a @ b) * np.float32(0.8125)
    e = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(out, e / e.sum(1, keepdims=True) + 1.1875, rtol=1e-5, atol=1e-6)
    for k in schedule(y):      # each kernel's source is its function, under its own name
        assert f"void {k.name}(" in k.source and "@" not in k.source


def test_cache_dir_is_overridable(monkeypatch, tmp_path):
    d = tmp_path / "elsewhere"
    monkeypatch.setenv("LAZYTORCH_CACHE_DIR", str(d))
    assert cache.directory() == str(d)
    assert d.is_dir()
    monkeypatch.delenv("LAZYTORCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.directory() == str(tmp_path / "xdg" / "lazytorch")


def test_compiled_module_lands_in_the_cache_dir(c_backend, fresh_cache):
    x = torch.tensor([[1.0, -2.0], [3.0, 4.5]])
    y = (x * 1.1875).abs().sum(1)
    debug.reset_stats()
    np.testing.assert_allclose(y.numpy(), [3 * 1.1875, 7.5 * 1.1875], rtol=1e-6)
    assert debug.stats()["compiler_runs"] == 1
    (so,) = _kernel_modules(fresh_cache)
    assert so.parent.name == so.name[:2]       # <key[:2]>/<key>.so
    assert _recorded(so) == [hashlib.sha256(so.read_bytes()).hexdigest(), str(so.stat().st_size)]
    assert so.with_suffix(".c").exists()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, dict]:
    """A disk cache filled by one fresh process, and what that process reported."""
    cache = tmp_path_factory.mktemp("pristine") / "cache"
    return cache, _fresh_process(cache)


def test_fresh_process_finds_everything_on_disk(pristine, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(pristine[0], cache)
    first = pristine[1]
    assert first["stats"]["compiler_runs"] == 1
    assert first["stats"]["compile_cache_hits"] == 0
    second = _fresh_process(cache)
    assert second["stats"]["compiler_runs"] == 0
    assert second["stats"]["compile_cache_hits"] > 0
    np.testing.assert_allclose(first["value"], _expected(), rtol=1e-6)
    assert second["value"] == first["value"]


def test_another_program_finds_compiled_kernels_on_disk(pristine, tmp_path):
    # the disk cache indexes kernels one by one, not only whole modules: a process whose plan
    # differs still loads every kernel compiled before and compiles only the new one
    cache = tmp_path / "cache"
    shutil.copytree(pristine[0], cache)
    other = _fresh_process(cache, SCRIPT_MORE)
    assert other["stats"]["compile_cache_hits"] > 0
    assert other["stats"]["kernels_compiled"] == 1
    assert other["stats"]["compiler_runs"] == 1
    assert other["value"] == pristine[1]["value"]
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    np.testing.assert_allclose(other["z"], x.min(0) * np.float32(2.5), rtol=1e-6)


def _recorded(so: Path) -> list[str]:
    """The checksum and size recorded beside a cache entry."""
    return Path(str(so) + ".sum").read_text().split()


@pytest.mark.parametrize("damage", ["flip_middle", "truncate", "drop_checksum"])
def test_damaged_module_is_rebuilt_not_trusted(pristine, tmp_path, damage):
    cache = tmp_path / "cache"
    shutil.copytree(pristine[0], cache)
    (so,) = _kernel_modules(cache)
    good = so.read_bytes()
    if damage == "flip_middle":
        mid = len(good) // 2
        so.write_bytes(good[:mid] + bytes(b ^ 0xFF for b in good[mid:mid + 256])
                       + good[mid + 256:])
    elif damage == "truncate":
        so.write_bytes(good[:100])
    else:
        Path(str(so) + ".sum").unlink()
    second = _fresh_process(cache)
    assert second["stats"]["compiler_runs"] == 1
    assert second["stats"]["compile_cache_hits"] == 0
    assert second["value"] == pristine[1]["value"]
    assert _recorded(so) == [hashlib.sha256(so.read_bytes()).hexdigest(), str(so.stat().st_size)]
    if damage == "truncate":
        third = _fresh_process(cache)   # the rebuilt entry is trusted again
        assert third["stats"]["compiler_runs"] == 0
        assert third["stats"]["compile_cache_hits"] == 1


def test_get_checks_the_checksum_and_size(fresh_cache):
    # a hand-made entry (never dlopen'ed: rewriting a loaded .so in place would crash us)
    key = cpu.cache_key("/* lt cache probe */\n")
    good = b"\x7fELF not really a library"

    def store() -> Path:
        tmp = Path(cache.new_file(key, None, ".so"))
        tmp.write_bytes(good)
        so = Path(cache.put(str(tmp), key, None, ".so"))
        assert not tmp.exists()
        return so

    so = store()
    assert so == fresh_cache / key[:2] / (key + ".so")
    assert cache.get(key, None, ".so") == str(so)          # checksum and size match: used
    for damage in (good + b"!", good[:-1] + b"X", good[:-1]):
        so.write_bytes(damage)
        assert cache.get(key, None, ".so") is None          # damaged: detected ...
        assert not so.exists()                              # ... and removed, with its record,
        assert not Path(str(so) + ".sum").exists()          # so that a build recompiles it
        so = store()
