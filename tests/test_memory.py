"""Memory that comes back: kernels' scratch is one set per thread (not one per kernel module)
and empty_cache() frees it, the plan cache is bounded, a plan holds none of the data it ran on,
and a training loop's memory stays flat."""
from __future__ import annotations

import ctypes
import gc
import json
import os
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import debug
from lazytorch.engine import realize
from lazytorch.runtime import memory
from lazytorch.runtime.cpu import scratch

ROOT = Path(__file__).resolve().parents[1]

# what a subprocess script starts with: its resident memory in MB
PRELUDE = """
import json, os
import numpy as np
import lazytorch as torch
from lazytorch.runtime import memory
from lazytorch.runtime.cpu import scratch

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
"""


def _run(script: str, **env) -> dict:
    """Run PRELUDE + script in a fresh interpreter (the session's disk cache); its last line
    of output, as JSON."""
    full = dict(os.environ, LAZYTORCH_BACKEND="c", **env)
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", PRELUDE + script], env=full,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def c_backend(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "c")


# --- kernels' scratch ------------------------------------------------------------------------

# GEMMs of several shapes, each its own plan and kernel module: few rows, many columns and a
# long sum, so each packs a ~4 MB panel of B and writes a small output. One B, read through
# views.
SHAPES = """
rng = np.random.default_rng(0)
b = torch.tensor(rng.standard_normal((700, 3200), dtype=np.float32))
def gemm(i):
    m, k, n = 8 + i, 520 + 8 * i, 2100 + 64 * i
    a = rng.standard_normal((m, k), dtype=np.float32)
    got = (torch.tensor(a) @ b[:k, :n]).relu().numpy()
    want = np.maximum(a.astype(np.float64) @ b.numpy()[:k, :n].astype(np.float64), 0)
    assert np.allclose(got, want, rtol=1e-3, atol=1e-3)
gemm(16)   # (the libraries and the runtime load before the baseline)
"""


def test_gemm_scratch_is_one_set_per_thread_and_empty_cache_frees_it():
    # each kernel module kept its own per-thread scratch for the life of the process: these 8
    # shapes took 45 MB (8 panels of B), and empty_cache() gave none of it back
    got = _run(SHAPES + """
base = rss()
for i in range(8):
    gemm(i)
grown, held, threads = rss() - base, scratch.held_bytes(), scratch.threads()
torch.cuda.empty_cache()
print(json.dumps({"grown": grown, "held": held, "threads": threads,
                  "after": scratch.held_bytes(), "dropped": base + grown - rss(),
                  "pool": memory.pool_bytes()}))
""")
    panel = (2048 + 16) * 512 * 4           # one B panel (AVX2; AVX-512 packs half as deep)
    # one set per thread (a panel of B, and an A block and accumulator per thread), not one
    # per module
    assert got["held"] <= 2 * panel + got["threads"] * (1 << 20), got
    assert got["grown"] < 25, got
    assert got["after"] == 0 and got["pool"] == 0, got
    assert got["dropped"] > got["held"] / 2**20 / 2, got   # it left the process


@pytest.fixture
def runtime():
    lib = scratch.load()
    lib.lazytorch_scratch.restype = ctypes.c_void_p
    lib.lazytorch_scratch.argtypes = [ctypes.c_int, ctypes.c_size_t]
    lib.lazytorch_release.argtypes = [ctypes.c_int]
    assert scratch.release() == 0
    yield lib
    scratch.release()


def test_scratch_in_use_is_freed_by_its_release_not_under_it(runtime):
    p = runtime.lazytorch_scratch(3, 1 << 20)
    ctypes.memset(p, 7, 1 << 20)
    assert scratch.held_bytes() == 1 << 20
    assert scratch.release() == 1 << 20            # held: not freed under its kernel ...
    assert ctypes.string_at(p, 4) == b"\7\7\7\7"
    runtime.lazytorch_release(3)
    assert scratch.held_bytes() == 0               # ... but as soon as the kernel is done


def test_idle_scratch_is_kept_for_the_next_kernel_until_trimmed(runtime):
    p = runtime.lazytorch_scratch(3, 1 << 20)
    runtime.lazytorch_release(3)
    assert scratch.held_bytes() == 1 << 20          # kept: fresh pages cost a fault each
    assert runtime.lazytorch_scratch(3, 1000) == p   # the same buffer again
    runtime.lazytorch_release(3)
    assert scratch.release() == 0 and scratch.held_bytes() == 0


def test_large_scratch_is_freed_when_released(runtime):
    runtime.lazytorch_scratch(3, 17 << 20)
    assert scratch.held_bytes() == 17 << 20
    runtime.lazytorch_release(3)
    assert scratch.held_bytes() == 0
    runtime.lazytorch_release(3)                     # (releasing a slot not held: nothing)
    assert scratch.held_bytes() == 0


def _wait_for(cond, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_a_threads_scratch_is_freed_when_it_exits(c_backend, rng):
    a, b = (rng.standard_normal((64, 64)).astype(np.float32) for _ in range(2))
    scratch.release()
    before = scratch.threads()
    seen = {}

    def work():   # a GEMM this small runs on the calling thread alone
        seen["out"] = (torch.tensor(a) @ torch.tensor(b)).relu().numpy()
        seen["threads"], seen["held"] = scratch.threads(), scratch.held_bytes()
    t = threading.Thread(target=work)
    t.start()
    t.join()
    np.testing.assert_allclose(seen["out"], np.maximum(a @ b, 0), rtol=1e-4, atol=1e-4)
    assert seen["threads"] == before + 1 and seen["held"] > 0
    # (the record goes when the thread itself ends, a moment after join returns)
    assert _wait_for(lambda: scratch.threads() == before), (scratch.threads(), before)
    assert scratch.held_bytes() == 0


def test_a_running_kernels_scratch_is_never_freed_under_it():
    # one thread replays a GEMM whose accumulator (36 MB, its own mapping) and B panel are held
    # while it runs; the main thread frees every thread's scratch all the while (empty_cache
    # would wait for the replay: it frees the plan's arrays under the plan's lock)
    got = _run("""
import threading
rng = np.random.default_rng(0)
a = rng.standard_normal((2900, 24), dtype=np.float32)
b = rng.standard_normal((24, 3100), dtype=np.float32)
want = np.maximum(a @ b, 0)
ta, tb = torch.tensor(a), torch.tensor(b)
bad, runs, trims = [], [0], [0]
def work():
    for _ in range(8):
        got = (ta @ tb).relu().numpy()
        bad.append(float(np.abs(got - want).max()))
        runs[0] += 1
t = threading.Thread(target=work)
t.start()
while t.is_alive():
    scratch.release()
    trims[0] += 1
t.join()
print(json.dumps({"bad": max(bad), "runs": runs[0], "trims": trims[0],
                  "held": scratch.release()}))
""")
    assert got["runs"] == 8 and got["trims"] > 8, got
    assert got["bad"] < 1e-3, got
    assert got["held"] == 0, got


def test_a_forked_child_keeps_only_the_forking_threads_scratch():
    got = _run(SHAPES + """
import sys
torch.set_num_threads(2)
gemm(3)   # the main thread and an OpenMP worker hold scratch
threads = scratch.threads()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    torch.set_num_threads(1)   # (an OpenMP pool does not survive a fork)
    n = scratch.threads()
    gemm(5)
    msg = json.dumps({"threads": n, "after_gemm": scratch.release()})
    os.write(w, msg.encode())
    os._exit(0)
os.close(w)
child = json.loads(os.read(r, 4096))
os.waitpid(pid, 0)
print(json.dumps({"parent": threads, "parent_after": scratch.threads(), **child}))
""")
    assert got["parent"] >= 2 and got["parent_after"] == got["parent"], got
    assert got["threads"] == 1, got
    assert got["after_gemm"] == 0, got


# --- the plan cache --------------------------------------------------------------------------

@pytest.fixture
def plans(monkeypatch, c_backend):
    """The plans realizes use, in order (a hook records them); the cache bound is 3."""
    monkeypatch.setenv("LAZYTORCH_PLAN_CACHE", "3")
    seen: list = []

    def hook(outputs, plan):
        seen.append(plan)
    debug.REALIZE_HOOKS.append(hook)
    yield seen
    debug.REALIZE_HOOKS.remove(hook)


def _two_kernels(cols: int, rng) -> tuple[torch.Tensor, np.ndarray]:
    """(x - x.sum(0)).amax(1), a new structure per `cols`: x.sum(0) is an intermediate, in the
    plan's scratch arrays. Returns the tensor and numpy's value."""
    x = rng.standard_normal((6, cols)).astype(np.float32)
    t = torch.tensor(x)
    return (t - t.sum(0)).amax(1), (x - x.sum(0)).max(1)


def test_plan_cache_is_bounded_and_evicted_plans_free_their_scratch(plans, rng):
    arenas = []
    for cols in range(101, 109):
        y, want = _two_kernels(cols, rng)
        np.testing.assert_allclose(y.numpy(), want, rtol=1e-4, atol=1e-4)
        (arena,) = plans[-1]._scratch.values()
        arenas.append(weakref.ref(arena))
        assert len(realize._PLANS) <= 3
    gc.collect()
    assert [r() is None for r in arenas] == [True] * 5 + [False] * 3
    assert plans[0] not in realize._PLANS.values()
    # an evicted structure is built again, and computes the right thing
    debug.reset_stats()
    y, want = _two_kernels(101, rng)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-4, atol=1e-4)
    assert debug.stats()["plan_cache_hits"] == 0 and debug.stats()["plans_evicted"] == 1


def test_plan_cache_evicts_the_least_recently_used(plans, rng):
    for cols in (201, 202, 203):
        _two_kernels(cols, rng)[0].numpy()
    _two_kernels(201, rng)[0].numpy()            # 201 used again: 202 is now the oldest
    _two_kernels(204, rng)[0].numpy()
    debug.reset_stats()
    for cols in (201, 203, 204):
        _two_kernels(cols, rng)[0].numpy()
    assert debug.stats()["plan_cache_hits"] == 3
    _two_kernels(202, rng)[0].numpy()
    assert debug.stats()["plan_cache_hits"] == 3   # 202 was evicted: built again


def test_plan_cache_size_zero_keeps_none(plans, monkeypatch, rng):
    monkeypatch.setenv("LAZYTORCH_PLAN_CACHE", "0")
    debug.reset_stats()
    for _ in range(2):
        y, want = _two_kernels(301, rng)
        np.testing.assert_allclose(y.numpy(), want, rtol=1e-4, atol=1e-4)
    assert debug.stats()["plan_cache_hits"] == 0 and not realize._PLANS


@pytest.mark.parametrize("value", ["many", "-1", "2.5"])
def test_plan_cache_size_must_be_a_count(plans, monkeypatch, value, rng):
    monkeypatch.setenv("LAZYTORCH_PLAN_CACHE", value)
    with pytest.raises(ValueError, match=f"LAZYTORCH_PLAN_CACHE must be a non-negative "
                                         f"integer, got '{value}'"):
        _two_kernels(401, rng)[0].numpy()


def test_a_plan_keeps_none_of_the_data_it_ran_on(c_backend, rng):
    # a plan kept its first realize's graph for debug runs, and with it that realize's inputs
    # and results, for as long as the plan lived
    gc.collect()
    before = memory.live_buffers()
    x = torch.tensor(rng.standard_normal(4999).astype(np.float32))
    y = (x * 2.5 + 1).exp().sum()
    data = weakref.ref(memory.data(x.node))
    y.item()
    del x, y
    gc.collect()
    assert data() is None
    assert memory.live_buffers() == before


def test_check_mode_still_sees_the_kernels_of_a_cached_plan(c_backend, rng):
    a = rng.standard_normal((7, 9)).astype(np.float32)
    first = torch.tensor(a)
    (first * 3.25).exp().sum(1).numpy()     # the plan, built without check mode
    del first
    x = torch.tensor(a + 1)
    with debug.check():
        out = (x * 3.25).exp().sum(1).numpy()
    np.testing.assert_allclose(out, np.exp((a + 1) * np.float32(3.25)).sum(1), rtol=1e-5)


def test_empty_cache_frees_plans_scratch_and_the_pool(plans, rng):
    x = rng.standard_normal((150, 24)).astype(np.float32)
    w = rng.standard_normal((24, 256)).astype(np.float32)
    tx, tw = torch.tensor(x), torch.tensor(w)
    (tx @ tw).sum(0).numpy()
    (arena,) = plans[-1]._scratch.values()
    arena = weakref.ref(arena)
    out = (tx @ tw).relu().numpy()     # an output from the pool, then freed
    del out
    assert memory.pool_bytes() > 0
    memory.empty_cache()
    assert arena() is None
    assert memory.pool_bytes() == 0 and scratch.held_bytes() == 0
    got = (tx @ tw).sum(0).numpy()     # the plan allocates its arrays again
    np.testing.assert_allclose(got, (x @ w).sum(0), rtol=1e-4, atol=1e-3)


# --- a training loop -------------------------------------------------------------------------

def test_a_training_loops_memory_is_flat():
    got = _run("""
import lazytorch.nn as nn
torch.manual_seed(0)
X, Y = torch.randn(256, 20), torch.randint(0, 4, (256,))
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=32,
                                     shuffle=True, drop_last=True)
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                      nn.Linear(64, 4))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
sched = torch.optim.lr_scheduler.StepLR(opt, 50, 0.9)
step, marks = 0, {}
while step < 500:
    for xb, yb in loader:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        sched.step()
        loss.item()
        step += 1
        if step % 100 == 0:
            marks[step] = rss()
from lazytorch.engine import realize
print(json.dumps({"marks": marks, "plans": len(realize._PLANS),
                  "buffers": memory.live_buffers()}))
""")
    marks = got["marks"]
    assert marks["500"] - marks["100"] < 5, marks
    assert got["plans"] <= 4, got
