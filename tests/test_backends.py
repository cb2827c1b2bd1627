"""The backend seam: the CPU's Compiler, Runtime and Allocator on their own (through the
protocol's methods only), the registry choosing a backend by name and device type, and the
front end reading buffers only through memory.host_data."""
from __future__ import annotations

import ctypes
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import config, debug
from lazytorch.engine import backends
from lazytorch.engine import plan as plans
from lazytorch.runtime import cache, cpu, memory
from lazytorch.runtime.protocol import Allocator, CompileError

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
int lt_fault;
void lt_probe_twice(void* out, void* in) {
    float* o = out; const float* x = in;
    for (int i = 0; i < 4; i++) o[i] = 2.0f * x[i];
    if (x[0] < 0) lt_fault = 1;
}
"""


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("LAZYTORCH_CACHE_DIR", str(d))
    return d


@pytest.fixture
def registry(monkeypatch):
    """The registry, restored after the test (which may register backends of its own)."""
    monkeypatch.setattr(backends, "_BACKENDS", dict(backends._BACKENDS))
    monkeypatch.setattr(backends, "_BY_TYPE", {t: list(n) for t, n in backends._BY_TYPE.items()})
    monkeypatch.delenv("LAZYTORCH_BACKEND", raising=False)
    return backends


def _twice(runtime, lib, x: np.ndarray) -> np.ndarray:
    """lt_probe_twice of `x` (4 floats) through the runtime's function, on host memory."""
    host = cpu.HostAllocator()
    out, out_addr = host.alloc(16)
    src, src_addr = host.from_host(x)
    runtime.function(lib, "lt_probe_twice", 2)(out_addr, src_addr)
    return host.to_host(out, torch.float32, (4,))


# ---- the compiler, the runtime and the allocator on their own ----

def test_ccompiler_compiles_once_and_a_new_process_finds_the_symbol_on_disk(fresh_cache):
    x = np.array([1.5, -0.0, 3.0, 7.25], np.float32)
    rt = cpu.CRuntime()
    debug.reset_stats()
    first = cpu.CCompiler()
    assert first.find("lt_probe_twice") is None
    (lib,) = first.compile([PROBE], [["lt_probe_twice"]])
    assert debug.stats()["compiler_runs"] == 1
    np.testing.assert_array_equal(_twice(rt, lib, x), 2 * x)
    assert first.find("lt_probe_twice") is lib
    # another compiler (an empty memory index, as in a new process): the disk index finds it
    debug.reset_stats()
    again = cpu.CCompiler()
    found = again.find("lt_probe_twice")
    assert found is not None and debug.stats()["compiler_runs"] == 0
    assert debug.stats()["compile_cache_hits"] == 1
    np.testing.assert_array_equal(_twice(rt, found, x), 2 * x)
    assert again.find("lt_probe_never_compiled") is None
    # the key is the content: other flags are another entry
    assert cpu.CCompiler(["-O1", "-fPIC", "-shared"]).key(PROBE) != again.key(PROBE)


def test_a_damaged_entry_is_compiled_again(fresh_cache, tmp_path):
    src = PROBE.replace("2.0f", "3.0f").replace("twice", "thrice")
    cc = cpu.CCompiler()
    key = cc.key(src)
    # the module cc would write, cut short, stored as a complete entry (its checksum matches)
    c_file, so_file = tmp_path / "m.c", tmp_path / "m.so"
    c_file.write_text(src)
    subprocess.run([cpu.compiler(), *cpu.CFLAGS, "-o", str(so_file), str(c_file)], check=True)
    tmp = cache.new_file(key, None, ".so")
    Path(tmp).write_bytes(so_file.read_bytes()[:2000])
    cache.put(tmp, key, None, ".so")
    cache.write(cc._index_key("lt_probe_thrice"), key.encode(), cpu.INDEX)
    debug.reset_stats()
    assert cc.find("lt_probe_thrice") is None             # damaged: removed, not loaded
    assert debug.stats()["cache_entries_discarded"] == 1
    (lib,) = cc.compile([src], [["lt_probe_thrice"]])
    assert debug.stats()["compiler_runs"] == 1
    x = np.array([1.0, 2.0, -0.5, 4.0], np.float32)
    fn = cpu.CRuntime().function(lib, "lt_probe_thrice", 2)
    host = cpu.HostAllocator()
    out, out_addr = host.alloc(16)
    fn(out_addr, host.from_host(x)[1])
    np.testing.assert_array_equal(out.view(np.float32), 3 * x)
    assert cpu.CCompiler().find("lt_probe_thrice") is not None   # and indexed again


def test_a_compiler_error_is_a_compile_error(fresh_cache):
    with pytest.raises(CompileError, match="cc failed"):
        cpu.CCompiler().compile(["void lt_probe_bad(void) { this is not C; }\n"],
                                [["lt_probe_bad"]])


def test_cruntime_function_address_and_fault_flag(fresh_cache):
    (lib,) = cpu.CCompiler().compile([PROBE], [["lt_probe_twice"]])
    rt = cpu.CRuntime()
    assert rt.address(lib, "lt_probe_twice") == ctypes.cast(lib.lt_probe_twice,
                                                             ctypes.c_void_p).value
    flag = rt.fault_flag(lib)
    np.testing.assert_array_equal(_twice(rt, lib, np.ones(4, np.float32)), np.full(4, 2.0))
    assert flag.value == 0
    _twice(rt, lib, np.array([-1, 0, 0, 0], np.float32))
    assert flag.value == 1


def test_host_allocator_round_trips_and_reuses_freed_blocks():
    host = cpu.HostAllocator()
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    buf, addr = host.from_host(x)
    assert addr == x.ctypes.data                              # host memory: not copied
    back = host.to_host(buf, torch.float64, (3, 4))
    np.testing.assert_array_equal(back, x)
    t = x.T                                                   # not C-contiguous: made so
    buf, addr = host.from_host(t)
    np.testing.assert_array_equal(host.to_host(buf, torch.float64, (4, 3)), t)
    assert buf.flags.c_contiguous and addr == buf.ctypes.data
    # raw bytes read back as any dtype and shape
    raw, _ = host.alloc(24)
    raw[:] = np.arange(6, dtype=np.int32).view(np.uint8)
    np.testing.assert_array_equal(host.to_host(raw, torch.int32, (2, 3)), [[0, 1, 2], [3, 4, 5]])
    # blocks of the pool's sizes come back once nothing else holds them
    n = cpu.POOL_MIN_BYTES * 2
    a, a_addr = host.alloc(n)
    b, b_addr = host.alloc(n)
    assert a_addr != b_addr and host.pool_bytes() == 2 * n
    del a
    assert host.alloc(n)[1] == a_addr
    arena, arena_addr = host.arena(n)                         # never from the pool
    assert arena_addr not in (a_addr, b_addr) and host.pool_bytes() == 2 * n
    host.release()                                            # the free block goes
    assert host.pool_bytes() == n
    del b
    host.release()
    assert host.pool_bytes() == 0


# ---- the registry ----

def test_the_registry_selects_by_name_and_device_type(registry):
    c, interp = registry.get("c"), registry.get("interp")
    assert isinstance(c, registry.CompiledBackend) and c.device_type == "cpu"
    assert isinstance(interp, registry.InterpreterBackend) and interp.device_type == "cpu"
    assert registry.for_device("cpu") is c and registry.default("cpu") is c
    with debug.use_backend("interp"):
        assert registry.for_device("cpu") is interp
    toy = registry.InterpreterBackend("toy_interp", "toy")
    registry.register(toy)
    assert "toy" in registry.device_types() and "toy_interp" in registry.names()
    assert registry.for_device("toy") is toy
    with debug.use_backend("interp"):          # serves cpu only: toy keeps its default
        assert registry.for_device("toy") is toy and registry.for_device("cpu") is interp
    with debug.use_backend("toy_interp"):      # serves toy only: cpu keeps its default
        assert registry.for_device("cpu") is c
    registry.register(registry.InterpreterBackend("interp2", "cpu"), default=True)
    assert registry.for_device("cpu").name == "interp2"
    with pytest.raises(RuntimeError, match="no backend serves device type 'tpu'"):
        registry.for_device("tpu")


def test_an_unknown_backend_name_raises_naming_the_registered_ones(registry, monkeypatch):
    with pytest.raises(ValueError, match=r"unknown backend 'gpu': expected one of c, interp"):
        debug.use_backend("gpu")
    with pytest.raises(ValueError, match=r"unknown backend 'gpu': expected one of c, interp"):
        registry.get("gpu")
    with pytest.raises(ValueError, match=r"eager mode is 'interp', 'compiled' or a backend's "
                                         r"name, not 'gpu'"):
        debug.eager("gpu")
    # the variable is checked when a realize looks it up
    monkeypatch.setenv("LAZYTORCH_BACKEND", "gpu")
    y = torch.tensor([1.0, 2.0]) * 3.0
    with pytest.raises(ValueError, match=r"unknown backend 'gpu': expected one of c, interp"):
        y.numpy()


def test_eager_modes_name_registered_backends(registry):
    with debug.eager("compiled"):
        assert config.eager_mode() == registry.default("cpu").name == "c"
    with debug.eager("interp"):
        assert config.eager_mode() == "interp"
    with debug.eager("c"):
        x = torch.tensor([1.0, 4.0]).sqrt()
        np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])


def _realize_seeing_plans(make):
    """make()'s tensor computed; (its value, the plans the realizes ran: None on the
    interpreter), counting kernels launched."""
    seen = []

    def hook(outputs, plan):
        seen.append(plan)
    config.REALIZE_HOOKS.append(hook)
    try:
        debug.reset_stats()
        value = make().numpy()
    finally:
        config.REALIZE_HOOKS.remove(hook)
    return value, seen


@pytest.mark.parametrize("how", ["env", "use_backend"])
def test_the_interpreter_backend_runs_when_selected(registry, monkeypatch, how, rng):
    a = rng.standard_normal((5, 7)).astype(np.float32)
    want = np.exp(a * 0.5).sum(1)

    def make():
        return (torch.tensor(a) * 0.5).exp().sum(1)

    value, seen = _realize_seeing_plans(make)                  # the default: compiled
    np.testing.assert_allclose(value, want, rtol=1e-5)
    assert seen and isinstance(seen[-1], plans.Plan) and debug.stats()["kernels_launched"] > 0
    if how == "env":
        monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")
        value, seen = _realize_seeing_plans(make)
    else:
        with debug.use_backend("interp"):
            value, seen = _realize_seeing_plans(make)
    np.testing.assert_allclose(value, want, rtol=1e-5)
    assert seen == [None] and debug.stats()["kernels_launched"] == 0


def test_a_second_compiled_backend_has_its_own_kernels_and_plans(registry, rng):
    c = registry.get("c")

    class Renamed(type(c.renderer)):
        name = "c_renamed"

    toy = registry.CompiledBackend("c_renamed", "cpu", Renamed(c.renderer.caps),
                                   cpu.CCompiler(), cpu.CRuntime(), cpu.HostAllocator())
    registry.register(toy)
    a = rng.standard_normal(301).astype(np.float32)

    def make():
        return (torch.tensor(a) * 1.25 - 0.75).abs().amax()

    value, _ = _realize_seeing_plans(make)
    assert value == np.abs(a * np.float32(1.25) - np.float32(0.75)).max()
    with debug.use_backend("c_renamed"):
        again, seen = _realize_seeing_plans(make)
    assert again == value
    # the same structure, built again for this backend, under symbols of its renderer's name
    assert debug.stats()["kernels_compiled"] == len(seen[0].steps) > 0
    names = {k[0] for k in plans.PLANS}
    assert {"c", "c_renamed"} <= names
    with debug.use_backend("c_renamed"):
        _realize_seeing_plans(make)
    assert debug.stats()["plan_cache_hits"] == 1


# ---- host data ----

class _BytesAllocator(Allocator):
    """A device whose buffers are bytearrays (never host arrays)."""

    def alloc(self, nbytes):
        return bytearray(nbytes), 0

    def address(self, buffer):
        return 0

    def from_host(self, array):
        return bytearray(np.ascontiguousarray(array).tobytes()), 0

    def to_host(self, buffer, dtype, shape):
        return np.frombuffer(bytes(buffer), dtype.np).reshape(shape)


def test_host_data_copies_a_device_buffer_and_tensors_read_through_it():
    dev = _BytesAllocator()
    x = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    buf, addr = dev.from_host(x)
    node = memory.device_buffer_node(buf, addr, (2, 3), torch.float32, "bytes:0", dev)
    got = memory.host_data(node)
    np.testing.assert_array_equal(got, x)
    buf[:4] = np.float32(9).tobytes()                         # the device's copy changes
    assert got[0, 0] == 0 and memory.host_data(node)[0, 0] == 9
    t = torch.Tensor._make(node)
    assert t.tolist() == [[9.0, 0.25, 0.5], [0.75, 1.0, 1.25]]
    assert t[1, 2].item() == 1.25
    host = memory.buffer_node(x)
    assert memory.host_data(host) is memory.data(host)       # host memory: the array itself


# the layers below the front end, which may hold buffers as they are
_BELOW_FRONT_END = ("runtime/", "compiler/", "engine/", "ir/", "config.py")


def test_the_front_end_reads_buffers_only_through_host_data():
    pkg = ROOT / "lazytorch"
    found = []
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg).as_posix()
        if rel.startswith(_BELOW_FRONT_END):
            continue
        text = path.read_text()
        for m in re.finditer(r"\bmemory\.(data|address)\(|\b_BUFS\b"
                             r"|from [.\w]*memory import [^\n]*\b(data|address|_BUFS)\b", text):
            found.append(f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}")
    assert found == []


def test_plans_and_realize_reach_the_cpu_only_through_a_backend():
    import importlib.util
    spec = importlib.util.spec_from_file_location("lt_tools_imports", ROOT / "tools" / "imports.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    graph = tool.import_graph()
    for m in ("lazytorch.engine.plan", "lazytorch.engine.realize", "lazytorch.engine.backends"):
        assert not [t for t in graph[m] if t.startswith("lazytorch.runtime.cpu")], m
