"""The CUDA backend assembled as on a GPU machine (engine/cuda.py's start), short of running a
kernel: the CUDA renderer's kernels compiled by nvcc into real cubins, loaded through the
runtime (pycuda's module_from_buffer, here tests/fake_cuda.py's driver) and launched as
prepared calls with the renderer's grid and block. Runs where nvcc and the CUDA renderer are."""
from __future__ import annotations

import pytest

import lazytorch as torch
from lazytorch.engine import backends
from lazytorch.frontend.tensor import realize_tensors
from lazytorch.runtime.cuda import driver
from tests.fake_cuda import FakeDriver

codegen = pytest.importorskip("lazytorch.compiler.codegen.cuda")
nvcc = pytest.importorskip("lazytorch.runtime.cuda.nvcc")
pytestmark = pytest.mark.skipif(not nvcc.available(), reason="no nvcc here")


class Recorder:
    """pycuda's Function: prepared, then launched (recorded)."""

    def __init__(self, name: str, launches: list):
        self.name, self.launches, self.format = name, launches, None

    def prepare(self, fmt):
        self.format = fmt
        return self

    def prepared_call(self, grid, block, *args, shared_size=0):
        self.launches.append((self.name, grid, block, args, shared_size, self.format))


class CubinModule:
    """A module loaded from a cubin: its functions and lt_fault must be in the cubin."""

    def __init__(self, data: bytes, drv: FakeDriver, launches: list):
        self.data, self.launches = data, launches
        self.flag = drv.mem_alloc(4)

    def get_function(self, name):
        assert name.encode() in self.data, f"{name} is not in the cubin"
        return Recorder(name, self.launches)

    def get_global(self, name):
        assert name.encode() in self.data, f"{name} is not in the cubin"
        return int(self.flag), 4


class CubinDriver(FakeDriver):
    def __init__(self):
        super().__init__()
        self.modules: list[CubinModule] = []
        self.launches: list = []

    def module_from_buffer(self, data: bytes):
        assert data[:4] == b"\x7fELF", "not a cubin"
        m = CubinModule(data, self, self.launches)
        self.modules.append(m)
        return m


@pytest.fixture
def started(monkeypatch):
    """engine/cuda.py's start() over CubinDriver, as the first CUDA tensor runs it."""
    drv = CubinDriver()
    monkeypatch.setattr(driver, "_outcome", [drv])
    monkeypatch.setattr(driver, "_device", [])
    monkeypatch.setattr(driver, "installed", lambda: True)
    assert "cuda" not in backends.device_types()
    try:
        yield drv
    finally:
        if "cuda" in backends.device_types():
            backends.unregister("cuda")


def test_the_first_cuda_tensor_starts_the_backend_and_launches_compiled_kernels(started):
    drv = started
    x = torch.randn(64, 32).cuda()
    b = backends.default("cuda")
    assert b.name == "cuda" and b.renderer.name == "cuda" and b.devices == 1
    assert b.renderer.arch == 90                          # the fake device's capability 9.0
    w = torch.randn(32, 16, device="cuda", requires_grad=True)
    loss = (x @ w).relu().softmax(-1).sum()
    loss.backward()
    realize_tensors([loss, w.grad])
    assert drv.modules and drv.launches
    for _name, grid, block, args, _shared, fmt in drv.launches:
        assert len(grid) == 3 and len(block) == 3 and all(v >= 1 for v in grid + block)
        assert block[0] * block[1] * block[2] <= 1024 and fmt == "P" * len(args)
        assert all(isinstance(a, int) and a for a in args)      # device pointers
    assert torch.cuda.is_initialized() and torch.cuda.get_device_name() == "Fake GPU"
