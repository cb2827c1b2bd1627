"""The namespaces and switches scripts touch at start-up answer as PyTorch's CPU-only build:
torch.compile, backends, amp (autocast state, GradScaler), cuda.amp/cpu.amp, accelerator, onnx,
distributed, nn.parallel, jit, and the process-wide settings."""
from __future__ import annotations

import importlib.util
import math
import pickle
import warnings

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
from tests.conftest import no_gpu


def test_compile_returns_its_argument_working():
    model = nn.Linear(3, 2)
    assert torch.compile(model) is model
    assert torch.compile(model, mode="max-autotune", fullgraph=True, backend="inductor") is model

    @torch.compile(dynamic=True)
    def f(x):
        return x * 2

    np.testing.assert_array_equal(f(torch.ones(2)).numpy(), [2.0, 2.0])
    with pytest.raises(RuntimeError, match="must be callable"):
        torch.compile(3)


def test_backends_answer_as_a_cpu_only_build():
    b = torch.backends
    assert not b.cudnn.is_available() and b.cudnn.version() is None
    assert not b.mps.is_available() and not b.mps.is_built()
    from lazytorch.runtime.cuda import driver
    assert b.cuda.is_built() is driver.installed()    # (pycuda: the CUDA backend's)
    assert b.openmp.is_available() and not b.mkldnn.is_available()
    assert b.cpu.get_cpu_capability() in ("AVX512", "AVX2", "DEFAULT")
    old = b.cudnn.benchmark
    with b.cudnn.flags(enabled=False, benchmark=True, deterministic=True):
        assert (b.cudnn.enabled, b.cudnn.benchmark, b.cudnn.deterministic) == (False, True, True)
    assert b.cudnn.benchmark == old and b.cudnn.enabled
    with b.cuda.sdp_kernel(enable_flash=False):
        assert not b.cuda.flash_sdp_enabled() and b.cuda.math_sdp_enabled()
    assert b.cuda.flash_sdp_enabled()


def test_matmul_precision_is_the_cuda_tf32_switch():
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        assert torch.get_float32_matmul_precision() == "high"
        torch.set_float32_matmul_precision("medium")
        assert torch.backends.cuda.matmul.allow_tf32
        torch.set_float32_matmul_precision("highest")
        assert not torch.backends.cuda.matmul.allow_tf32
        with pytest.warns(UserWarning, match="is not one of 'highest', 'high', or 'medium'"):
            torch.set_float32_matmul_precision("fast")
        assert torch.get_float32_matmul_precision() == "highest"
    finally:
        torch.set_float32_matmul_precision("highest")


def test_deterministic_and_other_settings():
    try:
        torch.use_deterministic_algorithms(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.get_deterministic_debug_mode() == 2
        torch.use_deterministic_algorithms(True, warn_only=True)
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.get_deterministic_debug_mode() == 1
        torch.set_deterministic_debug_mode("default")
        assert not torch.are_deterministic_algorithms_enabled()
        with pytest.raises(RuntimeError, match="expected one of `default`, `warn`, `error`"):
            torch.set_deterministic_debug_mode("x")
    finally:
        torch.use_deterministic_algorithms(False)
    assert torch.set_flush_denormal(False) and not torch.set_flush_denormal(True)
    assert np.float32(1e-39) * np.float32(1) != 0  # and nothing was flushed
    assert str(torch.get_default_device()) == "cpu"
    torch.set_default_device("cpu")
    with pytest.raises(RuntimeError, match="not compiled with CUDA"):
        torch.set_default_device("cuda")
    assert torch.get_num_interop_threads() >= 1
    assert torch.typename(torch.zeros(2)) == "torch.FloatTensor"
    assert torch.typename(torch.zeros(2, dtype=torch.int64)) == "torch.LongTensor"
    assert torch.typename(3) == "int"
    assert torch.typename(nn.Linear(1, 1)).endswith(".Linear")
    assert (torch.pi, torch.e, torch.inf, torch.newaxis) == (math.pi, math.e, math.inf, None)
    assert math.isnan(torch.nan)


# ------------------------------------------------------------------------------- autocast
def test_autocast_records_state_nests_and_restores():
    assert not torch.is_autocast_enabled("cpu")
    with torch.autocast("cpu", dtype=torch.float16) as ac:
        assert isinstance(ac, torch.amp.autocast)
        assert torch.is_autocast_enabled("cpu") and torch.is_autocast_cpu_enabled()
        assert torch.get_autocast_dtype("cpu") == torch.float16
        assert not torch.is_autocast_enabled()  # CUDA's, when no device type is given
        with torch.autocast("cpu", enabled=False):
            assert not torch.is_autocast_enabled("cpu")
        assert torch.is_autocast_enabled("cpu")
    assert not torch.is_autocast_enabled("cpu")

    @torch.autocast("cpu", dtype=torch.float16)
    def inside():
        return torch.is_autocast_enabled("cpu")

    assert inside() and not torch.is_autocast_enabled("cpu")


def test_autocast_computes_what_the_same_code_computes_outside_it():
    """lazytorch makes no autocast casts yet (documented): results keep their dtypes."""
    a, b = torch.randn(3, 4), torch.randn(4, 2)
    with torch.autocast("cpu", dtype=torch.float16):
        inside = a @ b
    assert inside.dtype == torch.float32
    np.testing.assert_array_equal(inside.numpy(), (a @ b).numpy())


def test_autocast_disables_itself_where_pytorch_does():
    with pytest.warns(UserWarning, match="CUDA is not available.*Disabling autocast"):
        ctx = torch.amp.autocast("cuda")
    with ctx:
        assert not torch.is_autocast_enabled("cuda")
    with pytest.warns(UserWarning, match="CPU Autocast only supports dtypes of torch.bfloat16, "
                                         "torch.float16"):
        ctx = torch.autocast("cpu", dtype=torch.float64)
    with ctx:
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(RuntimeError, match="device type at start of device string: xyz"):
        torch.autocast("xyz")
    with pytest.warns(FutureWarning, match=r"torch.cuda.amp.autocast\(args...\)` is deprecated"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            torch.cuda.amp.autocast()
    with pytest.warns(FutureWarning, match=r"torch.cpu.amp.autocast\(args...\)` is deprecated"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # (no bfloat16 default yet)
            torch.cpu.amp.autocast(dtype=torch.float16)


def test_custom_fwd_casts_inputs_only_inside_an_enabled_region():
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float64)
    def fwd(x, n):
        return x.dtype, n, torch.is_autocast_enabled("cpu")

    assert fwd(torch.ones(2), 3) == (torch.float32, 3, False)
    with torch.autocast("cpu", dtype=torch.float16):
        assert fwd(torch.ones(2), 3) == (torch.float64, 3, False)
    plain = torch.amp.custom_fwd(lambda x: x, device_type="cpu")
    assert plain(5) == 5
    assert torch.amp.custom_bwd(device_type="cpu")(len)([1]) == 1


# ------------------------------------------------------------------------------- GradScaler
def _model_and_opt(seed=0):
    torch.manual_seed(seed)
    model = nn.Linear(3, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def test_disabled_grad_scaler_passes_through():
    with pytest.warns(UserWarning, match="GradScaler is enabled, but CUDA is not available"):
        s = torch.amp.GradScaler()
    for scaler in (s, torch.amp.GradScaler("cpu", enabled=False)):
        model, opt = _model_and_opt()
        loss = model(torch.ones(2, 3)).sum()
        assert scaler.scale(loss) is loss and not scaler.is_enabled()
        loss.backward()
        before = model.weight.detach().numpy().copy()
        scaler.unscale_(opt)
        scaler.step(opt)
        scaler.update()
        assert not np.allclose(model.weight.detach().numpy(), before)  # the step ran
        assert scaler.get_scale() == 1.0 and scaler.state_dict() == {}
    with pytest.warns(FutureWarning, match="torch.cuda.amp.GradScaler"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            assert not torch.cuda.amp.GradScaler().is_enabled()


def test_cpu_grad_scaler_scales_unscales_skips_and_adapts():
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=2)
    model, opt = _model_and_opt()
    x = torch.tensor([[1.0, 2.0, 3.0]])
    w0 = model.weight.detach().numpy().copy()
    loss = model(x).sum()
    scaled = scaler.scale(loss)
    np.testing.assert_allclose(scaled.item(), 8 * loss.item(), rtol=1e-6)
    scaled.backward()
    scaler.unscale_(opt)
    np.testing.assert_allclose(model.weight.grad.numpy(), [[1.0, 2.0, 3.0]], rtol=1e-6)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    np.testing.assert_allclose(model.weight.detach().numpy(), w0 - 0.1 * np.array([[1, 2, 3]]),
                               rtol=1e-6)
    scaler.update()
    assert scaler.get_scale() == 8.0 and scaler.state_dict()["_growth_tracker"] == 1
    # an inf gradient: the step is skipped and the scale backs off
    opt.zero_grad()
    (model(torch.tensor([[math.inf, 0.0, 0.0]])).sum() * 1.0).backward()
    w1 = model.weight.detach().numpy().copy()
    assert scaler.step(opt) is None
    np.testing.assert_array_equal(model.weight.detach().numpy(), w1)
    scaler.update()
    assert scaler.get_scale() == 4.0 and scaler.state_dict()["_growth_tracker"] == 0
    # two clean steps grow it (growth_interval=2)
    for _ in range(2):
        opt.zero_grad()
        scaler.scale(model(x).sum()).backward()
        scaler.step(opt)
        scaler.update()
    assert scaler.get_scale() == 8.0
    state = scaler.state_dict()
    other = torch.amp.GradScaler("cpu")
    other.load_state_dict(state)
    assert other.state_dict() == state
    with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
        scaler.step(opt, closure=lambda: 0)
    scaler.update(16.0)
    assert scaler.get_scale() == 16.0
    assert pickle.loads(pickle.dumps(scaler)).get_scale() == 16.0


def test_cpu_grad_scaler_matches_pytorch():
    pt = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w, xs = rng.standard_normal((1, 3)), rng.standard_normal((6, 1, 3))
    xs[2, 0, 1] = np.inf   # one step with an inf gradient
    results = []
    for lib in (torch, pt):
        p = lib.tensor(w, dtype=lib.float32, requires_grad=True)
        opt = lib.optim.SGD([p], lr=0.05)
        scaler = lib.amp.GradScaler("cpu", init_scale=4.0, growth_interval=2)
        scales = []
        for x in xs:
            opt.zero_grad()
            scaler.scale((p * lib.tensor(x, dtype=lib.float32)).sum() ** 2).backward()
            scaler.step(opt)
            scaler.update()
            scales.append(scaler.get_scale())
        results.append((p.detach().numpy(), scales))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    assert results[0][1] == results[1][1]


# ------------------------------------------------------------------------------- the rest
def test_accelerator_onnx_distributed_and_jit():
    assert not torch.accelerator.is_available() and torch.accelerator.device_count() == 0
    assert torch.accelerator.current_accelerator() is None
    with pytest.raises(RuntimeError, match="Cannot access accelerator device when none"):
        torch.accelerator.current_device_index()
    with pytest.raises(NotImplementedError, match="torch.onnx.export is not supported"):
        torch.onnx.export(nn.Linear(1, 1), (torch.ones(1, 1),), "m.onnx")
    assert not torch.onnx.is_in_onnx_export()
    dist = torch.distributed      # (over MPI: tests/test_distributed*.py)
    assert dist.is_available() == (importlib.util.find_spec("mpi4py") is not None)
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        dist.get_rank()
    assert not torch.jit.is_scripting() and not torch.jit.is_tracing()
    f = torch.jit.ignore(lambda x: x + 1)
    assert f(1) == 2 and torch.jit.unused(f) is f and torch.jit.script(f) is f
    assert torch.jit.annotate(list, [1]) == [1]
    with pytest.raises(NotImplementedError, match="torch.jit.trace is not supported"):
        torch.jit.trace(f, (1,))


def test_data_parallel_runs_the_module_and_ddp_needs_a_process_group():
    torch.manual_seed(0)
    inner = nn.Linear(3, 2)
    dp = nn.DataParallel(inner)
    assert dp.module is inner and dp.device_ids == [] and nn.parallel.DataParallel is type(dp)
    x = torch.randn(4, 3)
    np.testing.assert_array_equal(dp(x).detach().numpy(), inner(x).detach().numpy())
    assert list(dp.state_dict()) == ["module.weight", "module.bias"]
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        torch.nn.parallel.DistributedDataParallel(inner)


@no_gpu
def test_cpu_and_cuda_modules():
    assert torch.cpu.is_available() and torch.cpu.device_count() == 1
    torch.cpu.synchronize()
    assert not torch.cuda.is_available() and torch.cuda.amp.GradScaler is not None
