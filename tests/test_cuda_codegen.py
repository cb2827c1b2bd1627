"""The CUDA backend's compiler side, without a GPU: schedule(..., device="cuda") against
structure (kernel count, names, kinds, launch dimensions), every kernel of the op, autograd and
nn workloads compiled by nvcc for sm_90 and sm_80, nvcc's disk cache, and the kernels'
semantics run on the host (tests/cuda_emulation.py) against the reference interpreter."""
from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn.functional as F
from lazytorch import config
from lazytorch.compiler.codegen.cuda import CudaRenderer
from lazytorch.compiler.kernel import FNAME
from lazytorch.compiler.renderer import Launch
from lazytorch.engine.plan import _check_kernel
from lazytorch.frontend.tensor import realize_tensors
from lazytorch.runtime import cache
from lazytorch.runtime.cuda import nvcc
from lazytorch.runtime.protocol import CompileError

needs_nvcc = pytest.mark.skipif(not nvcc.available(), reason="no nvcc on this machine")
R = CudaRenderer()


def cuda_kernels(*tensors):
    return torch.compiler.schedule(*tensors, device="cuda")


def _kinds(ks) -> list[str]:
    return [R.plan(k).kind for k in ks]


# ------------------------------------------------------------------------------ structure
def test_an_elementwise_chain_is_one_grid_stride_kernel():
    x = torch.randn(1000, 300)
    (k,) = cuda_kernels((x * 2 + 1).relu().exp())
    assert k.name == "kernel_0" and _kinds([k]) == ["grid"]
    assert R.launch(k) == Launch((1172, 1, 1), (256, 1, 1))     # 300,000 / 256, rounded up
    assert k.source.startswith('extern "C" __global__ void __launch_bounds__(256) kernel_0(')
    assert "gridDim.x * blockDim.x" in k.source                  # the grid-stride loop
    huge = torch.zeros(1 << 26).expand(4, 1 << 26) + 1
    assert R.launch(cuda_kernels(huge)[0]).grid == (1 << 16, 1, 1)  # capped: threads loop


def test_schedule_defaults_to_the_tensors_device():
    x = torch.randn(4, 5)
    assert "__global__" not in torch.compiler.schedule(x + 1)[0].source
    assert "__global__" in torch.compiler.schedule(x + 1, device="cuda:0")[0].source
    assert "__global__" in torch.compiler.schedule(x + 1, device=torch.device("cuda"))[0].source


def test_reductions_take_a_block_per_output_or_a_thread_per_column():
    x = torch.randn(64, 2048)
    rows, cols, full, short = cuda_kernels(x.sum(1), x.sum(0), x.sum(), x[:, :8].sum(1))
    assert _kinds([rows, cols, full, short]) == ["block", "grid", "block", "grid"]
    assert R.launch(rows) == Launch((64, 1, 1), (256, 1, 1))
    assert R.launch(cols) == Launch((8, 1, 1), (256, 1, 1))     # 2048 columns, coalesced
    assert R.launch(full).grid == (1, 1, 1)
    assert "__shfl_down_sync" in rows.source and "__shfl_down_sync" not in cols.source
    (long,) = cuda_kernels(torch.randn(1 << 17).sum())
    assert R.launch(long).block == (1024, 1, 1)
    (am,) = cuda_kernels(x.argmax(1))
    assert _kinds([am]) == ["block"] and "lt_red_idx" in am.source


def test_row_fused_kernels_run_a_block_per_row():
    x = torch.randn(6, 300)
    sm, ln = cuda_kernels(F.softmax(x, -1), F.layer_norm(x, (300,)))
    assert "row-fused" in repr(sm) and "row-fused" in repr(ln)
    assert R.launch(sm) == Launch((6, 1, 1), (256, 1, 1))
    (wide,) = cuda_kernels(F.log_softmax(torch.randn(3, 10000), -1))
    assert R.launch(wide) == Launch((3, 1, 1), (1024, 1, 1))
    ce = cuda_kernels(F.cross_entropy(torch.randn(16, 40), torch.randint(0, 40, (16,))))
    assert "rows" in _kinds(ce)


def test_matmuls_are_tiled_per_block_and_batch():
    a, b = torch.randn(100, 96), torch.randn(96, 130)
    (k,) = cuda_kernels((a @ b).relu())
    assert _kinds([k]) == ["gemm"]
    assert R.launch(k) == Launch((3, 2, 1), (256, 1, 1))      # 130 / 64 by 100 / 64 tiles
    assert "__shared__" in k.source and "__syncthreads" in k.source
    (bk,) = cuda_kernels(torch.randn(5, 70, 40) @ torch.randn(5, 40, 66))
    assert R.launch(bk) == Launch((2, 2, 5), (256, 1, 1))
    (big,) = cuda_kernels(torch.randn(2000, 64) @ torch.randn(64, 1000))
    assert R.launch(big) == Launch((8, 16, 1), (256, 1, 1))    # 128 x 128 tiles
    assert "c[8][8]" in big.source


def _product(ks):
    (k,) = [k for k in ks if R.plan(k).kind in ("gemm", "mma")]
    return k


@pytest.mark.parametrize("dtype, fn", [(torch.bfloat16, "lt_mma_16816_bf16"),
                                       (torch.float16, "lt_mma_16816_f16")])
def test_half_products_run_on_tensor_cores_from_sm_80(dtype, fn):
    a, b = torch.randn(100, 96).to(dtype), torch.randn(96, 130).to(dtype)
    k = _product(cuda_kernels((a @ b).relu()))
    assert R.plan(k).kind == "mma" and R.launch(k) == Launch((3, 2, 1), (256, 1, 1))
    assert fn in k.source and "__shared__" in k.source and "c[2][2][4]" in k.source
    assert CudaRenderer(arch=80).plan(k).kind == "mma"
    old = CudaRenderer(arch=75)           # no bf16/f16 mma.m16n8k16 before sm_80: FMA tiles
    assert old.plan(k).kind == "gemm" and "lt_mma" not in old.render_kernel(k, "f")
    bk = _product(cuda_kernels(torch.randn(5, 70, 40).to(dtype) @
                               torch.randn(5, 40, 66).to(dtype)))
    assert R.plan(bk).kind == "mma" and R.launch(bk) == Launch((2, 2, 5), (256, 1, 1))
    big = _product(cuda_kernels(torch.randn(2000, 64).to(dtype) @
                                torch.randn(64, 1000).to(dtype)))
    assert R.launch(big) == Launch((8, 16, 1), (256, 1, 1))    # 128 x 128 tiles, 8 warps
    assert "c[4][4][4]" in big.source


def test_float_products_and_mixed_precision_keep_fma_tiles():
    a, b = torch.randn(100, 96), torch.randn(96, 130)
    assert R.plan(_product(cuda_kernels(a @ b))).kind == "gemm"
    assert R.plan(_product(cuda_kernels(a.double() @ b.double()))).kind == "gemm"
    # float32 operands rounded to bfloat16 by the user are float32 values to the product
    assert R.plan(_product(cuda_kernels(a.bfloat16().float() @ b))).kind == "gemm"


def test_scatters_run_in_one_block():
    z = torch.zeros(5, 4).scatter_add(0, torch.tensor([[0, 1, 2, 0]]), torch.ones(1, 4))
    (k,) = cuda_kernels(z)
    assert _kinds([k]) == ["scatter"] and R.launch(k).grid == (1, 1, 1)


def test_a_training_step_schedules_valid_launches():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.GELU(),
                                torch.nn.LayerNorm(64), torch.nn.Linear(64, 10))
    loss = F.cross_entropy(model(torch.randn(32, 20)), torch.randint(0, 10, (32,)))
    grads = torch.autograd.grad(loss, list(model.parameters()))
    ks = cuda_kernels(loss, *grads)
    cpu = torch.compiler.schedule(loss, *grads)
    assert len(ks) == len(cpu)         # the same cuts: both renderers fuse rows
    assert [k.name for k in ks] == [f"kernel_{i}" for i in range(len(ks))]
    assert {"gemm", "rows", "grid"} <= set(_kinds(ks))
    for k in ks:
        la = R.launch(k)
        threads = math.prod(la.block)
        assert threads <= 1024 and threads % 32 == 0 and la.shared <= 48 * 1024
        assert la.grid[0] < 2**31 and max(la.grid[1:]) < 65536 and min(la.grid) >= 1


def test_modules_include_no_header_and_have_a_fault_flag():
    x = torch.randint(-5, 5, (10,))
    ks = cuda_kernels(x // (x - 1), torch.randn(3).half() * 2)
    src = R.render_module([k.source for k in ks])
    assert "#include" not in src
    assert "__device__ int lt_fault;" in src
    assert R.render_driver("d", [(0, [0, 1])]) is None


# ------------------------------------------------------------------------------ nvcc
@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LAZYTORCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _module(c: float) -> str:
    (k,) = cuda_kernels((torch.randn(8, 8) * c).exp())
    return R.render_module([k.named("lt_probe")])


@needs_nvcc
def test_cubins_are_cached_by_content_and_a_damaged_entry_is_rebuilt(own_cache):
    src = _module(1.25)
    runs = config.STATS["compiler_runs"]
    first = nvcc.cubin(src, 90, ["lt_probe"])
    assert first[:4] == b"\x7fELF" and config.STATS["compiler_runs"] == runs + 1
    assert nvcc.cubin(src, 90, ["lt_probe"]) == first
    assert config.STATS["compiler_runs"] == runs + 1               # a hit: no nvcc run
    assert nvcc.cubin(src, 80) != first                            # another architecture
    path = cache.path(nvcc.key(src, 90), nvcc.FOLDER, ".cubin")
    with open(path, "r+b") as f:
        f.truncate(len(first) // 2)
    assert nvcc.cubin(src, 90, ["lt_probe"]) == first
    assert config.STATS["compiler_runs"] == runs + 3
    with pytest.raises(CompileError, match="defines no lt_other"):
        nvcc.cubin(src, 90, ["lt_other"])


@needs_nvcc
def test_nvcc_errors_carry_its_log(own_cache):
    with pytest.raises(CompileError, match=r"(?s)nvcc failed.*\"nowhere\" is undefined"):
        nvcc.cubin('extern "C" __global__ void f(float* o) { o[0] = nowhere; }', 90)


class _Module:
    """What a fake `load` makes of a cubin."""

    def __init__(self, data: bytes):
        self.data = data


@needs_nvcc
def test_the_compiler_loads_each_module_once_and_finds_symbols_through_the_disk_index(
        own_cache):
    from lazytorch.runtime.cuda.compiler import CudaCompiler
    loads = []

    def load(data):
        loads.append(data)
        return _Module(data)

    a, b = _module(1.5).replace("lt_probe", "lt_a"), _module(2.5).replace("lt_probe", "lt_b")
    comp = CudaCompiler(90, load)
    runs = config.STATS["compiler_runs"]
    ma, mb = comp.compile([a, b], [["lt_a"], ["lt_b"]])     # two nvcc runs at once
    assert config.STATS["compiler_runs"] == runs + 2 and len(loads) == 2
    assert b"lt_a\0" in ma.data and b"lt_b\0" in mb.data and ma.data != mb.data
    assert comp.find("lt_a") is ma and comp.compile([a], [["lt_a"]]) == [ma]
    assert len(loads) == 2
    fresh = CudaCompiler(90, load)                 # another process: the disk index
    assert fresh.find("lt_b").data == mb.data and len(loads) == 3
    assert fresh.find("lt_nothing") is None
    assert CudaCompiler(80, load).find("lt_a") is None          # another architecture
    assert config.STATS["compiler_runs"] == runs + 2
    index = cache.path(fresh._index_key("lt_a"), "symbols")
    with open(index, "w") as f:
        f.write("garbage")
    assert CudaCompiler(90, load).find("lt_a") is None           # compiled again, then
    again = CudaCompiler(90, load)
    again.compile([a], [["lt_a"]])
    assert CudaCompiler(90, load).find("lt_a").data == ma.data
    with pytest.raises(CompileError, match="nvcc failed"):
        comp.compile([a + "\nsyntax error here"], [["lt_a"]])


def test_a_missing_nvcc_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("NVCC", str(tmp_path / "no-nvcc"))
    with pytest.raises(CompileError, match="could not be run"):
        nvcc.version()
    assert not nvcc.available()


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@needs_nvcc
def test_every_kernel_of_the_op_autograd_and_nn_suites_compiles_for_sm_90_and_sm_80(tmp_path):
    """tools/cuda_sweep.py over the CUDA kernels of the suites (tests/suites.py): those a run
    before collected into $LAZYTORCH_CUDA_KERNELS (.ci/run's empty-cache run), else those
    collected here by running the suites in a subprocess (LAZYTORCH_CUDA_COLLECT)."""
    folder = os.environ.get("LAZYTORCH_CUDA_KERNELS")
    if not folder:
        from tests import suites
        folder = str(tmp_path / "kernels")
        workers = ["-n", "auto"] if importlib.util.find_spec("xdist") else []
        env = {k: v for k, v in os.environ.items() if k != "LAZYTORCH_TEST_DEVICE"}
        env.update(LAZYTORCH_CUDA_COLLECT=folder, LT_TEST_CACHE=os.environ["LAZYTORCH_CACHE_DIR"])
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              *workers, *suites.ALL], capture_output=True, text=True, env=env,
                             cwd=ROOT, timeout=1800)
        assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-2000:]
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "cuda_sweep.py"), folder],
                         capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    print(out.stdout)
    assert out.returncode == 0, out.stdout[-20000:] + out.stderr[-2000:]
    assert int(out.stdout.split()[0]) > 1000          # (the suites make some 3,000 kernels)


# the workloads' kernels (tests/cuda_kernels.py: what the suites leave out), grouped by the
# first hex digit of their code's hash into 16 modules: a changed kernel compiles its own
# module again, the others are cache hits


@needs_nvcc
def test_every_kernel_of_the_workloads_the_suites_leave_out_compiles_for_sm_90_and_sm_80():
    from tests.cuda_kernels import collect
    kernels = collect()
    assert len(kernels) > 500
    named = sorted((hashlib.sha256(k.code.encode()).hexdigest()[:16], k) for k in kernels)
    groups = [[(h, k) for h, k in named if h[0] == digit] for digit in "0123456789abcdef"]
    sources = [R.render_module([k.named(f"k_{h}") for h, k in g]) for g in groups]
    symbols = [[f"k_{h}" for h, _ in g] for g in groups]
    for arch in (90, 80):
        nvcc.cubins(sources, arch, symbols)


def _sweep():
    """tools/cuda_sweep.py as a module."""
    if "lt_cuda_sweep" not in sys.modules:
        path = os.path.join(ROOT, "tools", "cuda_sweep.py")
        spec = importlib.util.spec_from_file_location("lt_cuda_sweep", path)
        sys.modules["lt_cuda_sweep"] = mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    return sys.modules["lt_cuda_sweep"]


def test_the_collection_mode_writes_each_suite_kernel_once_with_its_test(tmp_path):
    folder = tmp_path / "kernels"
    test = "tests/test_ops_reduce.py::test_zero_dim_and_empty"
    env = {k: v for k, v in os.environ.items() if k != "LAZYTORCH_TEST_DEVICE"}
    env.update(LAZYTORCH_CUDA_COLLECT=str(folder), LT_TEST_CACHE=os.environ["LAZYTORCH_CACHE_DIR"])
    for _ in range(2):     # a second run adds nothing: the same kernels
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "-p", "no:xdist", test, "tests/test_smoke.py"], capture_output=True,
                             text=True, env=env, cwd=ROOT, timeout=300)
        assert out.returncode == 0, out.stdout[-3000:]
    kernels, errors = _sweep().read(str(folder))
    assert errors == []
    made = _sweep().made_by(str(folder))
    assert set(made) == {"tests/test_ops_reduce.py"}       # (test_smoke is no suite)
    assert {k.sha for k in kernels} == made["tests/test_ops_reduce.py"]
    assert len(kernels) >= 4
    for k in kernels:
        assert k.test.startswith(test + "[c]") and k.what.startswith("kernel_")
        assert hashlib.sha256(k.code.encode()).hexdigest()[:32] == k.sha
        assert "__global__" in k.code and FNAME in k.code


@needs_nvcc
def test_the_sweep_names_each_kernel_nvcc_rejects_and_the_test_that_made_it(tmp_path, capsys,
                                                                             own_cache):
    sweep = _sweep()
    ks = cuda_kernels((torch.randn(8, 8) * 3).exp(), torch.randn(8, 8).sum(1),
                      torch.randn(4, 4) @ torch.randn(4, 4))
    bad = ks[1].code.replace("out0[", "lt_nowhere[", 1)
    for i, code in enumerate([ks[0].code, bad, ks[2].code]):
        sha = f"0{i}" + "0" * 30      # one module: the broken kernel among good ones
        (tmp_path / f"{sha}.cu").write_text(f"{sweep.HEADER}tests/t.py::test_{i}\n"
                                            f"// kernel: kernel_{i} (x)\n{code}")
    (tmp_path / "e.err").write_text(f"{sweep.HEADER}tests/t.py::test_r\nTraceback: boom\n")
    assert sweep.main([str(tmp_path), "--arch", "90", "--jobs", "2"]) == 1
    out = capsys.readouterr().out
    assert "sm_90: 2 of 3 kernels compile" in out
    assert out.count("NVCC REJECTED") == 1
    assert f"NVCC REJECTED k_01{'0' * 14} for sm_90: kernel_1 (x)" in out
    assert "made by tests/t.py::test_1" in out and '"lt_nowhere" is undefined' in out
    assert "RENDER FAILED in tests/t.py::test_r" in out and "boom" in out
    (tmp_path / "e.err").unlink()
    (tmp_path / f"01{'0' * 30}.cu").unlink()
    assert sweep.main([str(tmp_path), "--arch", "90"]) == 0
    assert "sm_90: 2 of 2 kernels compile" in capsys.readouterr().out


# ------------------------------------------------------------------------------ semantics
def _rand(rng, *shape, lo=-3.0, hi=3.0):
    return torch.tensor(rng.uniform(lo, hi, shape).astype(np.float32))


def _cases():
    """(name, the tensors whose CUDA kernels run on the host), small enough for the
    emulation (one host fiber per CUDA thread)."""
    rng = np.random.default_rng(0)
    x, y = _rand(rng, 6, 77), _rand(rng, 6, 77, lo=0.5, hi=2.0)
    nan = x.clone()
    nan[2, 5] = float("nan")
    i = torch.tensor(rng.integers(-9, 9, (5, 7)))
    j = torch.tensor(rng.integers(1, 5, (5, 7))) * torch.tensor([1, -1] * 3 + [1])
    out = {}
    out["elementwise"] = [(x * 2 + 1).relu().exp(), x.sin() / y, torch.where(x > 0, x, y),
                          x.sigmoid().tanh(), (x ** 2).sqrt().log1p(), x.atan2(y),
                          x.floor_divide(y), x.remainder(y), x.round(), x.erf(), x.sign()]
    out["half types"] = [(x.half() * 3).exp().half(), x.bfloat16() / y.bfloat16(),
                         (x.half() + 1000).float(), x.double().half(), (x.bfloat16() * 7).sin()]
    out["integers"] = [i // j, i % j, i * j - i, i ** 2, i & j,
                       i.abs(), i.float() / 3, (i > j) | (i < -5)]
    out["reductions"] = [x.sum(1), x.sum(0), x.sum(), x.prod(1), x.amax(1), x.amin(0),
                         nan.amax(1), nan.amin(), nan.sum(0), x.argmax(1), x.argmin(0),
                         nan.argmax(1), x.mean(), x.var(1), x.cumsum(1), x.cumprod(0),
                         i.sum(1), i.amax(0), (i > 0).any(1), (i > 0).all(0),
                         x.half().sum(1), x.bfloat16().amax(0)]
    # the same through a block per output (rows of 77: warp shuffles of each type)
    out["block reductions"] = [x.half().sum(1), x.bfloat16().amax(1), x.double().prod(1),
                               (x > 0).any(1), (x > 2).all(1), (x * 4).to(torch.int8).sum(1),
                               (x * 4).to(torch.int16).amin(1), (x * 4).int().amax(1),
                               (x * 9).long().sum(1), (x * 4).to(torch.uint8).amax(1),
                               nan.double().amin(1), nan.half().amax(1),
                               # (value, index) pairs: ties go to the first index, NaN wins
                               x.argmax(1), x.argmin(1), nan.argmax(1), nan.argmin(1),
                               (x > 0).float().argmax(1), (x * 3).int().argmin(1),
                               torch.full((3, 100), float("-inf")).argmax(1),
                               (x > 1).to(torch.uint8).argmax(1), x.half().argmin(1)]
    xr = x.clone().requires_grad_()
    tgt = torch.tensor(rng.integers(0, 77, 6))
    loss = F.cross_entropy(xr, tgt) + F.log_softmax(xr, 1).mean() + \
        F.layer_norm(xr, (77,)).square().sum()
    out["rows"] = [F.softmax(x, -1), F.log_softmax(nan, 1), F.layer_norm(x, (77,)), loss,
                   torch.autograd.grad(loss, xr)[0], F.softmax(torch.randn(2, 3000), 1),
                   F.softmax(x.half(), 1)]
    a, b, bias = _rand(rng, 70, 33), _rand(rng, 33, 66), _rand(rng, 66)
    out["matmul"] = [(a @ b + bias).relu(), a.t() @ a, torch.randn(3, 20, 40) @
                     torch.randn(3, 40, 70), a.double() @ b.double(), a @ b[:, 0]]
    out["large matmul"] = [torch.randn(1030, 12) @ torch.randn(12, 1030)]   # 128 x 128 tiles
    conv = torch.nn.Conv2d(4, 16, 3, padding=1)    # products by batch; one summed over it
    img = torch.randn(2, 4, 10, 10, requires_grad=True)
    closs = conv(img).square().mean()
    out["conv"] = [closs, *torch.autograd.grad(closs, [img, conv.weight, conv.bias])]
    # tensor cores: odd sizes (tails of every tile and of the summed axis), batches,
    # transposed operands, a bias and relu epilogue, 128 x 128 tiles, a half convolution and
    # its gradients (the weight's summed over the batch too: products accumulated in one)
    h = [_rand(rng, *s) for s in [(33, 40), (40, 33), (33,), (3, 17, 40), (3, 40, 65),
                                  (40, 65), (17, 40), (65, 15), (15, 40)]]
    hconv = torch.nn.Conv2d(4, 16, 3, padding=1).half()
    himg = torch.randn(2, 4, 10, 10).half().requires_grad_()
    hloss = hconv(himg).float().square().mean()
    out["tensor cores"] = [(h[0].bfloat16() @ h[1].bfloat16() + h[2].bfloat16()).relu(),
                           h[3].half() @ h[4].half(), h[5].half().t() @ h[6].half().t(),
                           h[7].bfloat16() @ h[8].bfloat16(),
                           torch.randn(1030, 12).bfloat16() @ torch.randn(12, 1030).bfloat16(),
                           hloss, *torch.autograd.grad(hloss, [himg, hconv.weight,
                                                               hconv.bias])]
    z = torch.zeros(5, 4)
    idx = torch.tensor([[0, 1, 2, 0], [4, 4, 4, 0]])
    out["scatter and gather"] = [z.scatter_add(0, idx, x[:2, :4]), z.scatter(0, idx, x[:2, :4]),
                                 x.gather(1, torch.tensor([[3, 1], [0, 0], [5, 76]] * 2)),
                                 x[torch.tensor([0, 5, 5])], torch.zeros(6).index_put(
                                     (torch.tensor([1, 1, 3]),), torch.ones(3), accumulate=True)]
    return out


CASES = _cases()


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """Every case's CUDA kernels compiled for the host in one module."""
    if shutil.which("g++") is None:
        pytest.skip("no g++ for the host emulation")
    from tests import cuda_emulation as emu
    kernels = {name: cuda_kernels(*ts) for name, ts in CASES.items()}
    everything = [k for ks in kernels.values() for k in ks]
    lib, names = emu.build(everything, str(tmp_path_factory.mktemp("cuda-emulation")))
    at = dict(zip(map(id, everything), names))
    return emu, lib, {n: (ks, [at[id(k)] for k in ks]) for n, ks in kernels.items()}


def _check_all(emu, lib, kernels, names):
    arrays = emu.run(kernels, lib, names)
    for k in kernels:
        ins = [arrays[n] if n in arrays else emu.memory.host_data(n) for n in k.inputs]
        _check_kernel(k, [arrays[k.output], *ins])
    return arrays


@pytest.mark.parametrize("case", list(CASES))
def test_cuda_kernels_run_on_the_host_match_the_interpreter(emulated, case):
    emu, lib, by_case = emulated
    kernels, names = by_case[case]
    _check_all(emu, lib, kernels, names)
    assert emu.fault(lib) == 0


def test_an_integer_division_by_zero_sets_the_modules_fault_flag(emulated, tmp_path):
    emu = emulated[0]
    i = torch.tensor([7, -7, 3])
    ks = cuda_kernels(i // torch.tensor([2, 0, 1]))
    lib, names = emu.build(ks, str(tmp_path))
    emu.run(ks, lib, names)
    assert emu.fault(lib) == 1 and emu.fault(lib) == 0


def test_kernels_over_empty_tensors_render_compile_and_run(emulated, tmp_path):
    # loops of size 0 (the suites' zero-size cases): the grid-stride loop runs no iteration,
    # the reductions over nothing store their identities
    e, x = torch.zeros(0, 3), torch.ones(3)
    ks = cuda_kernels(e + x, e.exp(), e.sum(1), e.amax(1), e.argmax(1), F.softmax(e, 1),
                      e.sum(0), e.prod(0), e.cumsum(0), e.logsumexp(0))
    assert set(_kinds(ks)) == {"grid"} and any(0 in k.loops for k in ks)
    emu = emulated[0]
    lib, names = emu.build(ks, str(tmp_path))
    _check_all(emu, lib, ks, names)
    if nvcc.available():
        nvcc.cubin(R.render_module([k.named(f"lt_e{i}") for i, k in enumerate(ks)]), 90)


@pytest.mark.parametrize("shape, dim", [((3 * 10**5 + 7,), 0), ((40_000, 3), 0)],
                         ids=["block", "columns"])
def test_long_float_sums_add_up_in_a_cascade(emulated, tmp_path, shape, dim):
    # one running sum per thread (a block's 1024 threads each adding 293 tenths, or a thread
    # per column adding 40,000) drifts; the cascade keeps the CPU's accuracy
    # (tests/test_sum_accuracy.py: 1e-6)
    emu = emulated[0]
    tenth = float(np.float32(0.1))
    s = torch.full(shape, 0.1).sum(dim)
    ks = cuda_kernels(s)
    assert ks[0].params[1:] == []              # a constant: nothing read
    lib, names = emu.build(ks, str(tmp_path))
    got = emu.run(ks, lib, names)[ks[-1].output].astype(np.float64)
    want = shape[dim] * tenth
    # (3.0e-7 and 2.6e-7 here; 2.6e-6 and 1.5e-6 with one running sum per thread)
    assert np.abs(got - want).max() / want < 1e-6


def test_tensor_core_products_match_numpy_in_float64(emulated, tmp_path):
    # float16 products (a float16 ulp is 2^-10): float32 accumulation keeps each output
    # within its float16 rounding of the exact product, whatever the tails and batches
    emu = emulated[0]
    rng = np.random.default_rng(1)
    shapes = [((17, 65), (65, 33)), ((33, 17), (17, 65)), ((2, 15, 33), (2, 33, 40))]
    xs = [(_rand(rng, *sa).half(), _rand(rng, *sb).half()) for sa, sb in shapes]
    ks = cuda_kernels(*[a @ b for a, b in xs])
    assert sum(R.plan(k).kind == "mma" for k in ks) == 3
    lib, names = emu.build(ks, str(tmp_path))
    arrays = emu.run(ks, lib, names)
    for (a, b), k in zip(xs, [k for k in ks if k.output.dtype == torch.float16]):
        want = a.float().numpy().astype(np.float64) @ b.float().numpy().astype(np.float64)
        got = arrays[k.output].astype(np.float64).reshape(want.shape)
        assert np.all(np.abs(got - want) <= 2.0**-10 * np.abs(want) + 1e-4)


def test_tensor_core_staging_reads_operands_strided_along_the_summed_axis(emulated, tmp_path):
    # a product whose operands are read across their rows (the summed axis strided): the
    # staging's other order, on float32 values that bfloat16 holds exactly
    from lazytorch.compiler.codegen.cuda import gemm, mma
    from lazytorch.compiler.kernel import FNAME
    emu = emulated[0]
    rng = np.random.default_rng(2)
    a, b = (_rand(rng, *s).bfloat16().float() for s in ((40, 70), (40, 33)))
    realize_tensors([a, b])
    (k,) = cuda_kernels(a.t() @ b)
    spec = gemm.match(k)
    assert spec.a.arg[1].coef(spec.kvar) != 1 and spec.b.arg[1].coef(spec.kvar) != 1
    k.code = mma.render(R, k, spec, torch.bfloat16, FNAME, lambda i: k.params[i].name)
    assert "row = idx % 64" in k.code
    lib, names = emu.build([k], str(tmp_path))
    got = emu.run([k], lib, names)[k.output].astype(np.float64)
    want = a.numpy().astype(np.float64).T @ b.numpy().astype(np.float64)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_the_gpu_benchmark_skips_with_a_clear_line_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the benchmark would run")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench.py"), "--device",
                          "cuda"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "skipped: no CUDA device" in out.stdout
