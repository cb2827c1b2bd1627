"""The backend seam, proved from outside: a test-only backend built through the public protocol
alone (lazytorch.engine.backends, lazytorch.compiler.renderer / codegen, lazytorch.runtime.protocol
and the CPU's runtime parts), serving a device type of its own.

Its renderer is a second C dialect that differs from the C backend's only in its prelude, and its
memory is its own: an allocator whose buffers the front end may not read directly, so every value
crosses through from_host / to_host. A training step on it must give the CPU's numbers exactly
(the same kernels), through modules of its own.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import nn
from lazytorch.compiler.codegen.c import CRenderer
from lazytorch.engine import backends
from lazytorch.engine import plan as plans
from lazytorch.runtime import memory
from lazytorch.runtime.cpu import CCompiler, CRuntime, cores
from lazytorch.runtime.protocol import Allocator

PRELUDE_MARK = "/* the toy dialect */\n"


class ToyRenderer(CRenderer):
    """The C dialect under another name, with one more line in its prelude."""

    name = "toy-c"

    def prelude(self) -> str:
        return PRELUDE_MARK + super().prelude()


class ToyCompiler(CCompiler):
    """The CPU's compiler, remembering the sources it was given."""

    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def compile(self, sources, symbols):
        self.sources.extend(sources)
        return super().compile(sources, symbols)


class ToyAllocator(Allocator):
    """Memory of the toy device: arrays of its own, reached only by copies."""

    def __init__(self):
        self.copies_in = self.copies_out = 0

    def alloc(self, nbytes):
        a = np.empty(nbytes, np.uint8)
        return a, a.ctypes.data

    def address(self, buffer):
        return buffer.ctypes.data

    def from_host(self, array):
        self.copies_in += 1
        a = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8).copy()
        return a, a.ctypes.data

    def to_host(self, buffer, dtype, shape):
        self.copies_out += 1
        return np.frombuffer(buffer.tobytes(), dtype.np).reshape(shape).copy()


@pytest.fixture
def toy():
    renderer = ToyRenderer(CRenderer.capabilities(cores()))
    backend = backends.CompiledBackend("toy-c", "toyd", renderer, ToyCompiler(), CRuntime(),
                                       ToyAllocator())
    backends.register(backend, default=True)
    try:
        yield backend
    finally:
        backends.unregister("toy-c")


def _step(device: str, seed: int = 0):
    """Two SGD steps of a small MLP on `device`: the losses and the final weights."""
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal((32, 12)).astype(np.float32), device=device)
    y = torch.tensor(rng.integers(0, 5, 32), device=device)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 5)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, [p.detach().cpu().numpy() for p in model.parameters()]


def test_a_training_step_on_the_toy_backend_gives_the_cpus_numbers(toy):
    losses_cpu, params_cpu = _step("cpu")
    losses_toy, params_toy = _step("toyd")
    assert losses_toy == losses_cpu
    for a, b in zip(params_toy, params_cpu):
        np.testing.assert_array_equal(a, b)


def test_the_toy_dialect_compiles_modules_of_its_own(toy):
    # a constant of this run's own: a kernel no earlier run left in the disk cache
    c = 1 + (time.time_ns() % 1_000_003) / 1e7
    x = torch.arange(12, dtype=torch.float32, device="toyd").reshape(3, 4)
    y = ((x * c).exp().sum(1) / 7).cpu().numpy()
    ref = (np.exp(np.arange(12, dtype=np.float32).reshape(3, 4) * np.float32(c)).sum(1) / 7)
    np.testing.assert_allclose(y, ref, rtol=1e-5)
    assert toy.compiler.sources, "no module compiled for the toy backend"
    assert all(src.startswith(PRELUDE_MARK) for src in toy.compiler.sources)
    # the same graph on the CPU is compiled into the C backend's modules, not these
    assert toy.renderer.header().startswith(PRELUDE_MARK)
    assert PRELUDE_MARK not in backends.get("c").renderer.header()


def test_toy_values_cross_only_through_its_allocator(toy):
    alloc = toy.allocator
    x = torch.tensor([1.0, 2.0, 3.0], device="toyd")
    assert alloc.copies_in == 1
    b = x.node
    assert memory.host_data(b) is not memory.data(b)     # the device's buffer is not handed out
    y = (x * 2).sum()
    assert y.item() == 12.0 and alloc.copies_out >= 1
    assert y.device == torch.device("toyd", 0)


def test_toy_and_cpu_tensors_do_not_mix(toy):
    a = torch.ones(3, device="toyd")
    b = torch.ones(3)
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device, but "
                                           "found at least two devices"):
        a + b


def test_unregister_removes_the_device_type():
    renderer = ToyRenderer(CRenderer.capabilities(cores()))
    backend = backends.CompiledBackend("toy-c", "toyd", renderer, CCompiler(), CRuntime(),
                                       ToyAllocator())
    backends.register(backend, default=True)
    assert "toyd" in backends.device_types()
    backends.unregister("toy-c")
    assert "toyd" not in backends.device_types() and "toyd" not in memory.ALLOCATORS
    with pytest.raises(RuntimeError):
        torch.ones(2, device="toyd")


class DriverlessRenderer(ToyRenderer):
    """A dialect with no host driver function: plans call its kernels one by one."""

    name = "toy-nodriver"

    def render_driver(self, name, calls):
        return None


def test_a_renderer_without_drivers_runs_kernels_one_by_one():
    renderer = DriverlessRenderer(CRenderer.capabilities(cores()))
    compiler = ToyCompiler()
    backend = backends.CompiledBackend("toy-nodriver", "toyd", renderer, compiler, CRuntime(),
                                       ToyAllocator())
    backends.register(backend, default=True)
    try:
        losses_cpu, params_cpu = _step("cpu", seed=3)
        losses_toy, params_toy = _step("toyd", seed=3)
    finally:
        backends.unregister("toy-nodriver")
    assert losses_toy == losses_cpu
    for a, b in zip(params_toy, params_cpu):
        np.testing.assert_array_equal(a, b)
    ran = [p for key, p in plans.PLANS.items() if key[0] == "toy-nodriver" and p.steps]
    assert ran and all(p.driver is None for p in ran)
    assert not any("lt_plan_" in src for src in compiler.sources)
