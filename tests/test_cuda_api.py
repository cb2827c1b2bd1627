"""The CUDA device API where no GPU can run, and its front end over a fake device.

Where pycuda is missing, or its driver is, every call that needs a GPU raises PyTorch's message
at the call and queries answer without starting anything; a CPU-only run imports no pycuda.
The three failures are made here with stand-in pycuda packages on sys.path (no driver library:
the import fails as pycuda's extension does without libcuda.so.1; cuInit failing; no device).

Then tests/fake_cuda.py's driver over host memory stands for pycuda.driver, under a "cuda"
backend of CPU kernels on the CUDA allocator: a training step moved with .to("cuda") gives the
CPU's numbers, the memory counters follow tensors, pinned memory and DataLoader pinning,
save/load of CUDA tensors and the device queries work through the same front-end paths a GPU
takes.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import nn
from lazytorch.engine import backends
from lazytorch.runtime import memory
from lazytorch.runtime.cuda import driver
from tests import fake_cuda

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(
    "cuda" in backends.device_types() or (driver.installed() and driver.device_count() > 0),
    reason="CUDA runs here: these tests are of machines where it cannot")


@pytest.fixture
def fresh_driver(monkeypatch):
    """runtime.cuda.driver as in a new process (no outcome kept), and sys.modules' pycuda
    entries restored after."""
    monkeypatch.setattr(driver, "_outcome", [])
    monkeypatch.setattr(driver, "_device", [])
    before = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "pycuda"}
    yield
    for k in [k for k in sys.modules if k.split(".")[0] == "pycuda"]:
        del sys.modules[k]
    sys.modules.update(before)


def fake_pycuda(tmp_path, monkeypatch, driver_source: str) -> None:
    """A package named pycuda on sys.path whose driver module is `driver_source`."""
    pkg = tmp_path / "fakes" / "pycuda"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "driver.py").write_text(textwrap.dedent(driver_source))
    monkeypatch.syspath_prepend(str(tmp_path / "fakes"))


NO_LIBCUDA = '''
raise ImportError("libcuda.so.1: cannot open shared object file: No such file or directory")
'''

CUINIT_FAILS = '''
class Error(Exception):
    pass
INITS = []
def init(flags=0):
    INITS.append(flags)
    raise Error({message!r})
'''

NO_DEVICES = '''
class Error(Exception):
    pass
def init(flags=0):
    pass
class Device:
    @staticmethod
    def count():
        return 0
'''


def places_on_cuda(x: torch.Tensor) -> list:
    """Every way a user puts data on the GPU."""
    return [lambda: torch.zeros(2, device="cuda"), lambda: torch.tensor([1.0], device="cuda:0"),
            lambda: torch.randn(2, device=torch.device("cuda")),
            lambda: torch.ones_like(x, device="cuda"), lambda: x.to("cuda"), lambda: x.cuda(),
            lambda: torch.arange(3, device="cuda"), lambda: nn.Linear(2, 2).cuda(),
            lambda: nn.Linear(2, 2).to("cuda"), lambda: x.pin_memory()]


# ----------------------------------------------------------------------------- no pycuda
def test_without_pycuda_cuda_calls_raise_pytorchs_message(fresh_driver, monkeypatch):
    monkeypatch.setattr(driver, "installed", lambda: False)
    x = torch.ones(2)
    for make in places_on_cuda(x):
        with pytest.raises(RuntimeError, match=r"^Torch not compiled with CUDA enabled: "
                                               r"lazytorch's CUDA backend needs pycuda \(pip "
                                               r"install 'lazytorch\[cuda\]'\)$"):
            make()
    # torch.cuda's functions that need the device: PyTorch's CPU-only AssertionError
    for fn in (torch.cuda.synchronize, torch.cuda.current_device, torch.cuda.get_device_name,
               torch.cuda.get_device_capability, torch.cuda.init, lambda: torch.cuda.set_device(0)):
        with pytest.raises(AssertionError) as e:
            fn()
        assert str(e.value) == "Torch not compiled with CUDA enabled"
    assert not torch.cuda.is_available() and torch.cuda.device_count() == 0
    assert not torch.cuda.is_initialized() and torch.cuda.memory_allocated() == 0
    assert torch.cuda.max_memory_allocated() == 0 and torch.cuda.memory_reserved() == 0
    torch.cuda.empty_cache()
    torch.cuda.manual_seed(0)
    assert torch.device("cuda:1").index == 1      # a device spec is only a name
    assert "pycuda" not in sys.modules


def test_a_cpu_only_run_imports_no_pycuda(tmp_path):
    # a pycuda that can be found but leaves a mark when imported: nothing may import it
    pkg = tmp_path / "pycuda"
    pkg.mkdir()
    mark = tmp_path / "imported"
    (pkg / "__init__.py").write_text(f"open({str(mark)!r}, 'w').close()\n")
    script = textwrap.dedent('''
        import sys
        import lazytorch as torch
        from lazytorch import nn
        x = torch.randn(16, 4)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        opt = torch.optim.Adam(model.parameters())
        for _ in range(2):
            opt.zero_grad()
            loss = model(x).pow(2).mean()
            loss.backward()
            opt.step()
        print(loss.item())
        import io
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        buf.seek(0)
        torch.load(buf, map_location={"cuda:0": "cpu"})
        torch.device("cuda:0"); torch.cuda.is_initialized(); torch.cuda.manual_seed(1)
        torch.cuda.memory_allocated(); torch.cuda.max_memory_allocated()
        torch.cuda.empty_cache()
        torch.amp.GradScaler("cpu")
        print(sorted(m for m in sys.modules if m.split(".")[0] == "pycuda"))
    ''')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, cwd=str(tmp_path), timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert not mark.exists()


# ----------------------------------------------------------------------------- no driver
def test_without_the_driver_library_cuda_calls_raise_no_driver(fresh_driver, tmp_path,
                                                                monkeypatch):
    fake_pycuda(tmp_path, monkeypatch, NO_LIBCUDA)
    x = torch.ones(2)
    for make in places_on_cuda(x):
        with pytest.raises(RuntimeError, match=r"^Found no NVIDIA driver on your system\. "
                                               r"Please check that you have an NVIDIA GPU and "
                                               r"installed a driver from http://www\.nvidia\.com"
                                               r"/Download/index\.aspx \(pycuda: libcuda\.so\.1"):
            make()
    for fn in (torch.cuda.synchronize, torch.cuda.current_device, torch.cuda.get_device_name):
        with pytest.raises(RuntimeError, match="^Found no NVIDIA driver on your system"):
            fn()
    assert not torch.cuda.is_available() and torch.cuda.device_count() == 0
    assert not torch.cuda.is_initialized() and torch.cuda.memory_allocated() == 0
    with pytest.warns(UserWarning, match="GradScaler is enabled, but CUDA is not available"):
        assert not torch.amp.GradScaler("cuda").is_enabled()


@pytest.mark.parametrize("message, expected", [
    ("cuInit failed: no CUDA-capable device is detected", "No CUDA GPUs are available"),
    ("cuInit failed: CUDA driver version is insufficient for CUDA runtime version",
     "Found no NVIDIA driver on your system"),
])
def test_cuinit_failures_name_the_cause_once(fresh_driver, tmp_path, monkeypatch, message,
                                             expected):
    fake_pycuda(tmp_path, monkeypatch, CUINIT_FAILS.format(message=message))
    for _ in range(3):
        with pytest.raises(RuntimeError) as e:
            torch.zeros(2, device="cuda")
        assert str(e.value).startswith(expected) and message in str(e.value)
    assert torch.cuda.device_count() == 0
    import pycuda.driver
    assert pycuda.driver.INITS == [0]        # the driver is asked once; the answer is kept


def test_a_driver_without_devices(fresh_driver, tmp_path, monkeypatch):
    fake_pycuda(tmp_path, monkeypatch, NO_DEVICES)
    with pytest.raises(RuntimeError, match=r"^No CUDA GPUs are available \(the driver reports "
                                           r"0 devices\)$"):
        torch.ones(3).cuda()
    assert not torch.cuda.is_available()


def test_a_load_onto_cuda_without_cuda_asks_for_map_location(fresh_driver, monkeypatch):
    monkeypatch.setattr(driver, "installed", lambda: False)
    buf = io.BytesIO()
    torch.save({"w": torch.arange(3.0)}, buf)
    buf.seek(0)
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(buf, map_location="cuda")


# ----------------------------------------------------------------------------- fake device
@pytest.fixture
def fake_gpu(monkeypatch):
    """A "cuda" device served by CPU kernels on the CUDA allocator over fake_cuda's memory."""
    drv = fake_cuda.FakeDriver()
    fake_cuda.install(monkeypatch, drv)
    backend = fake_cuda.cuda_backend(drv)
    backends.register(backend, default=True)
    try:
        yield drv, backend.allocator
    finally:
        backends.unregister(backend.name)


def _train(device: str, steps: int = 3, seed: int = 0):
    """Adam steps of a small MLP moved to `device` as a PyTorch script does: the losses, the
    final parameters and the optimizer's state tensors."""
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal((32, 12)).astype(np.float32)).to(device)
    y = torch.tensor(rng.integers(0, 5, 32)).to(device)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 5)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    states = [v for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    return losses, list(model.parameters()), states


def test_a_training_loop_on_the_fake_gpu_gives_the_cpus_numbers(fake_gpu):
    drv, alloc = fake_gpu
    losses_cpu, params_cpu, _ = _train("cpu")
    losses_gpu, params_gpu, states = _train("cuda")
    assert losses_gpu == losses_cpu
    for a, b in zip(params_gpu, params_cpu):
        assert a.device == torch.device("cuda", 0) and a.is_cuda
        np.testing.assert_array_equal(a.detach().cpu().numpy(), b.detach().numpy())
    assert states and all(s.is_cuda for s in states if s.ndim)   # Adam's moments live there
    assert drv.htod > 0 and drv.dtoh > 0 and alloc.allocated > 0


def test_the_fake_gpu_answers_torch_cuda_queries(fake_gpu):
    assert torch.cuda.is_available() and torch.cuda.device_count() == 1
    assert torch.cuda.is_initialized()
    assert torch.cuda.get_device_name() == "Fake GPU" and torch.cuda.current_device() == 0
    assert torch.cuda.get_device_capability(0) == (9, 0)
    props = torch.cuda.get_device_properties("cuda:0")
    assert props.multi_processor_count == 132 and props.major == 9
    torch.cuda.synchronize()
    torch.cuda.set_device(0)
    with pytest.raises(RuntimeError, match="CUDA error: invalid device ordinal"):
        torch.cuda.set_device(1)
    with pytest.raises(RuntimeError, match="CUDA error: invalid device ordinal"):
        torch.zeros(2, device="cuda:1")
    a = torch.ones(3, device="cuda")
    with pytest.raises(RuntimeError, match=r"Expected all tensors to be on the same device, but "
                                           r"found at least two devices, cuda:0 and cpu!"):
        a + torch.ones(3)
    assert str(a.device) == "cuda:0" and "device='cuda:0'" in repr(a)


def test_memory_counters_follow_tensors_and_empty_cache_frees_cached_blocks(fake_gpu):
    drv, alloc = fake_gpu
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    # (data copied to the device at once; torch.zeros would be a lazy constant)
    a = torch.tensor(np.zeros(1000, np.float32), device="cuda")   # one 4096-byte block
    assert torch.cuda.memory_allocated() == base + 4096
    b = torch.tensor(np.zeros(300_000, np.float32), device="cuda")   # a 1.25 MiB class
    assert torch.cuda.memory_allocated() == base + 4096 + 1_310_720
    peak = torch.cuda.max_memory_allocated()
    assert peak == base + 4096 + 1_310_720
    del a, b
    assert torch.cuda.memory_allocated() == base
    assert torch.cuda.max_memory_allocated() == peak
    assert torch.cuda.memory_reserved() >= base + 4096 + 1_310_720   # kept for reuse
    allocs = drv.allocs
    c = torch.tensor(np.ones(1000, np.float32), device="cuda")   # the freed block again
    assert drv.allocs == allocs
    del c
    frees = drv.frees
    torch.cuda.empty_cache()
    assert drv.frees >= frees + 2 and torch.cuda.memory_reserved() == torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    assert torch.cuda.max_memory_allocated() == torch.cuda.memory_allocated()


def test_a_repeated_step_reuses_device_blocks(fake_gpu):
    drv, alloc = fake_gpu
    _train("cuda", steps=3, seed=1)
    first = drv.allocs
    _train("cuda", steps=3, seed=1)
    # the second run: the same sizes, from the pool (only the blocks its longer-lived
    # tensors still hold when the next ones are made are new)
    assert drv.allocs - first < first / 2


def test_pinned_memory(fake_gpu):
    drv, alloc = fake_gpu
    x = torch.arange(12.0).reshape(3, 4) * 2
    p = x.pin_memory()
    assert p.is_pinned() and not x.is_pinned() and p.device == torch.device("cpu")
    np.testing.assert_array_equal(p.numpy(), x.numpy())
    assert np.array_equal(p.cuda().cpu().numpy(), x.numpy())
    with pytest.raises(RuntimeError, match="only dense CPU tensors can be pinned"):
        p.cuda().pin_memory()
    made = drv.pinned
    del p
    q = (x + 1).pin_memory()                      # the same bytes: the freed block again
    assert drv.pinned == made and q.is_pinned()

    ds = torch.utils.data.TensorDataset(torch.arange(8.0).reshape(4, 2), torch.arange(4))
    batches = list(torch.utils.data.DataLoader(ds, batch_size=2, pin_memory=True))
    assert all(t.is_pinned() for b in batches for t in b)
    assert [b[1].tolist() for b in batches] == [[0, 1], [2, 3]]


def test_save_and_load_of_cuda_tensors(fake_gpu):
    t = (torch.arange(6.0, device="cuda") * 3).reshape(2, 3)
    state = {"w": t, "n": torch.tensor(7, device="cuda")}
    buf = io.BytesIO()
    torch.save(state, buf)
    for loc, dev in ((None, "cuda:0"), ("cpu", "cpu"), ({"cuda:0": "cpu"}, "cpu"),
                     (torch.device("cuda"), "cuda:0")):
        buf.seek(0)
        out = torch.load(buf, map_location=loc)
        assert str(out["w"].device) == dev and str(out["n"].device) == dev
        np.testing.assert_array_equal(out["w"].cpu().numpy(), t.cpu().numpy())
    pt = pytest.importorskip("torch")
    buf.seek(0)
    theirs = pt.load(buf, map_location="cpu")    # PyTorch reads the checkpoint of a GPU
    np.testing.assert_array_equal(theirs["w"].numpy(), t.cpu().numpy())


def test_grad_scaler_runs_on_the_fake_gpu(fake_gpu):
    scaler = torch.amp.GradScaler("cuda", init_scale=4.0)
    assert scaler.is_enabled()
    w = torch.ones(3, device="cuda", requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.5)
    scaler.scale((w * 2).sum()).backward()
    scaler.step(opt)
    scaler.update()
    np.testing.assert_array_equal(w.detach().cpu().numpy(), np.zeros(3, np.float32))
    assert scaler.get_scale() == 4.0


def test_empty_cache_reaches_device_allocators(fake_gpu):
    drv, alloc = fake_gpu
    a = torch.tensor(np.zeros(100, np.float32), device="cuda")
    del a
    assert alloc.cached_blocks() >= 1
    memory.empty_cache()
    assert alloc.cached_blocks() == 0
