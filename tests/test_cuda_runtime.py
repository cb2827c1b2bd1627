"""The CUDA runtime's Python parts without a GPU: the caching allocator's size classes, reuse,
counters and out-of-memory path, host copies of every dtype, the pinned pool, and the runtime's
prepared launches and fault flags, over tests/fake_cuda.py's driver (device memory that is
host memory only it hands out, with counts of its allocations, frees and copies)."""
from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.compiler.renderer import Launch
from lazytorch.runtime.cuda.allocator import SMALL, STEP, CudaAllocator, size_class
from lazytorch.runtime.cuda.runtime import CudaRuntime
from tests.fake_cuda import FakeDriver

MiB = 2 ** 20


# ----------------------------------------------------------------------------- size classes
def test_size_classes():
    assert [size_class(n) for n in (0, 1, 511, 512, 513, 4000, SMALL)] == \
        [512, 512, 512, 512, 1024, 4096, SMALL]
    assert size_class(SMALL + 1) == SMALL + SMALL // 4          # four classes per doubling
    assert size_class(3 * MiB) == 3 * MiB and size_class(3 * MiB + 1) == 3 * MiB + MiB // 2
    assert size_class(5 * MiB + 1) == 6 * MiB and size_class(2 ** 30 + 1) == 2 ** 30 + 2 ** 28
    rng = np.random.default_rng(0)
    sizes = np.unique(np.concatenate([rng.integers(1, 2 ** 34, 2000),
                                      rng.integers(1, 4 * MiB, 2000)]))
    classes = [size_class(int(n)) for n in sizes]
    for n, c in zip(sizes, classes):
        n = int(n)
        assert c >= n and c % STEP == 0
        assert c - n < (STEP if n <= SMALL else n / 4)       # waste: under a step, or 25%
    assert classes == sorted(classes)                        # monotone in the request
    # few classes, so freed blocks serve later requests: 4 per doubling above 1 MiB
    assert len({size_class(n) for n in range(SMALL + 1, 64 * MiB, 4099)}) <= 4 * 6 + 1


# ----------------------------------------------------------------------------- the pool
def test_a_freed_block_serves_the_next_request_of_its_class():
    drv = FakeDriver()
    alloc = CudaAllocator(drv)
    a, pa = alloc.alloc(3000)
    assert (alloc.allocated, alloc.reserved, drv.allocs) == (3072, 3072, 1)
    b, pb = alloc.alloc(3000)
    assert pb != pa and drv.allocs == 2
    del a
    assert alloc.allocated == 3072 and alloc.reserved == 6144 and alloc.cached_blocks() == 1
    c, pc = alloc.alloc(2600)                      # the same class: the freed block
    assert pc == pa and drv.allocs == 2
    d, pd = alloc.alloc(5000)                      # another class: a new block
    assert drv.allocs == 3 and pd not in (pa, pb)
    assert alloc.peak == 3072 * 2 + 5120
    del b, c, d
    assert alloc.allocated == 0 and alloc.cached_blocks() == 3
    alloc.release()
    assert alloc.reserved == 0 and drv.frees == 3 and not drv.live
    alloc.reset_peak()
    assert alloc.peak == 0


def test_an_arena_block_is_not_lent_while_the_plan_holds_it():
    alloc = CudaAllocator(FakeDriver())
    scratch, ps = alloc.arena(10_000)
    out, po = alloc.alloc(10_000)
    assert po != ps
    del scratch                                    # the plan released its scratch
    again, pa = alloc.alloc(10_000)
    assert pa == ps


def test_out_of_memory_releases_the_cache_then_raises_pytorchs_message():
    drv = FakeDriver(limit=8 * MiB)
    alloc = CudaAllocator(drv)
    a, _ = alloc.alloc(3 * MiB)
    b, _ = alloc.alloc(3 * MiB)
    del a                                          # cached: 3 MiB free in the pool
    c, _ = alloc.alloc(4 * MiB)                    # fits only once the cache is given back
    assert drv.frees == 1 and alloc.reserved == 7 * MiB
    with pytest.raises(RuntimeError, match=r"^CUDA out of memory\. Tried to allocate 2\.00 MiB\. "
                                           r"GPU 0 has a total capacity of 0\.01 GiB of which "
                                           r"1\.00 MiB is free\. Of the allocated memory 7\.00 MiB"
                                           r" is allocated by lazytorch"):
        alloc.alloc(2 * MiB)
    del b, c


def test_a_buffer_dying_inside_an_allocation_gives_its_block_back():
    """A buffer may die while the pool holds its lock (a garbage collection started inside
    the driver's allocation): its block comes back on the same thread, without a deadlock."""
    held = []

    class Drv(FakeDriver):
        def mem_alloc(self, nbytes):
            held.clear()      # the last reference to a lent buffer goes now
            return super().mem_alloc(nbytes)

    alloc = CudaAllocator(Drv())
    held.append(alloc.alloc(1000)[0])
    t = threading.Thread(target=alloc.alloc, args=(5000,), daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "the allocation deadlocked"
    assert alloc.cached_blocks() == 2 and alloc.allocated == 0   # (the new buffer died too)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                   torch.int64, torch.int32, torch.int16, torch.int8,
                                   torch.uint8, torch.bool])
def test_host_copies_round_trip_every_dtype(dtype):
    drv = FakeDriver()
    alloc = CudaAllocator(drv)
    rng = np.random.default_rng(1)
    for shape in [(), (0,), (7,), (3, 5, 2)]:
        a = (rng.standard_normal(shape) * 50).astype(dtype.np)
        buf, addr = alloc.from_host(a)
        assert addr == buf.ptr and addr in [int(x) for x in drv.live]
        back = alloc.to_host(buf, dtype, shape)
        assert back.dtype == dtype.np and back.shape == shape
        assert back.tobytes() == a.tobytes()
    # a strided view goes over as its values
    m = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]
    buf, _ = alloc.from_host(m)
    np.testing.assert_array_equal(alloc.to_host(buf, torch.float32, (4, 3)), m)


def test_buffers_are_given_back_when_their_nodes_die():
    from lazytorch.runtime import memory
    drv = FakeDriver()
    alloc = CudaAllocator(drv)
    buf, addr = alloc.from_host(np.ones(100, np.float32))
    node = memory.device_buffer_node(buf, addr, (100,), torch.float32, "cuda:0", alloc)
    del buf
    assert alloc.allocated == 512
    np.testing.assert_array_equal(memory.host_data(node), np.ones(100, np.float32))
    del node
    gc.collect()
    assert alloc.allocated == 0 and alloc.cached_blocks() == 1


# ----------------------------------------------------------------------------- pinned
def test_pinned_blocks_are_reused_once_no_array_uses_them():
    drv = FakeDriver()
    alloc = CudaAllocator(drv)
    a = np.arange(10, dtype=np.float32)
    p = alloc.pin(a)
    np.testing.assert_array_equal(p, a)
    assert alloc.pinned.holds(p) and not alloc.pinned.holds(a) and drv.pinned == 1
    q = alloc.pin(a * 2)                          # p still uses its block: a second one
    assert drv.pinned == 2 and not np.shares_memory(p, q)
    del p
    r = alloc.pin(a * 3)                          # p's block again
    assert drv.pinned == 2
    np.testing.assert_array_equal(r, a * 3)
    s = alloc.pin(np.array(True))                 # 0-d and 1-byte types too
    assert s.shape == () and s.dtype == np.bool_ and bool(s)
    del q, r, s
    alloc.release()
    assert alloc.pinned.bytes() == 0


# ----------------------------------------------------------------------------- runtime
class FakeFunction:
    def __init__(self, name):
        self.name, self.calls, self.format = name, [], None

    def prepare(self, fmt):
        self.format = fmt
        return self

    def prepared_call(self, grid, block, *args, shared_size=0):
        self.calls.append((grid, block, args, shared_size))


class FakeModule:
    """A loaded module: its functions, and `lt_fault` in the driver's memory."""

    def __init__(self, drv, names):
        self.functions = {n: FakeFunction(n) for n in names}
        self.fault = drv.mem_alloc(4)
        drv.memcpy_htod(int(self.fault), np.zeros(1, np.int32))

    def get_function(self, name):
        try:
            return self.functions[name]
        except KeyError:
            raise LookupError(f"cuModuleGetFunction failed: named symbol not found ({name})") \
                from None

    def get_global(self, name):
        assert name == "lt_fault"
        return int(self.fault), 4


def test_kernels_are_prepared_calls_with_the_launch_dimensions():
    drv = FakeDriver()
    current = []
    rt = CudaRuntime(drv, lambda: current.append(1) or drv)
    mod = FakeModule(drv, ["lt_k", "lt_r"])
    k = rt.function(mod, "lt_k", 3, Launch((40, 1, 1), (256, 1, 1)))
    r = rt.function(mod, "lt_r", 2, Launch((8, 2, 1), (128, 1, 1), shared=4096))
    k(0x1000, 0x2000, 0x3000)
    r(0x10, 0x20)
    assert mod.functions["lt_k"].format == "PPP" and mod.functions["lt_r"].format == "PP"
    assert mod.functions["lt_k"].calls == [((40, 1, 1), (256, 1, 1), (0x1000, 0x2000, 0x3000), 0)]
    assert mod.functions["lt_r"].calls == [((8, 2, 1), (128, 1, 1), (0x10, 0x20), 4096)]
    assert len(current) == 2                      # the context made current for each launch
    with pytest.raises(ValueError, match="needs launch dimensions"):
        rt.function(mod, "lt_k", 3, None)
    assert rt.address(mod, "lt_k") == 0
    with pytest.raises(LookupError, match="named symbol not found"):
        rt.address(mod, "lt_missing")


def test_the_fault_flag_reads_and_clears_the_modules_lt_fault():
    drv = FakeDriver()
    rt = CudaRuntime(drv)
    mod = FakeModule(drv, [])
    flag = rt.fault_flag(mod)
    assert flag.value == 0
    drv.memcpy_htod(int(mod.fault), np.array([1], np.int32))   # a kernel divided by zero
    assert flag.value == 1
    flag.value = 0
    out = np.ones(1, np.int32)
    drv.memcpy_dtoh(out, int(mod.fault))
    assert out[0] == 0 and flag.value == 0


def test_load_hands_the_cubin_to_module_from_buffer():
    seen = []

    class Drv(FakeDriver):
        def module_from_buffer(self, data):
            seen.append(data)
            return "module"

    rt = CudaRuntime(Drv())
    assert rt.load(b"\x7fELF cubin") == "module" and seen == [b"\x7fELF cubin"]
