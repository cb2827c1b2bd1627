"""Benchmarks: lazytorch against numpy and PyTorch eager in the same run, as ratios.

    python tools/bench.py [--quick] [--json PATH] [--only NAME ...] [--device cuda]

`--device cuda` runs the GPU workloads instead (tools/bench_cuda.py).

Each workload runs warm-up iterations, then the median of repeated runs is reported, plus the
first-call time (which includes compiling, unless the disk cache is warm). Threads are the
same for all frameworks (the cores available). PyTorch runs in a process of its own, with
the environment this one started with: lazytorch sets OpenMP's wait policy for its own
kernels, and in one process both would share one OpenMP runtime and that policy.

The machines this runs on are shared, and their speed drifts by 2-3x from minute to minute.
So the frameworks take turns: each workload is timed in rounds, each round timing lazytorch,
numpy and PyTorch one after another within a second or so, and a ratio is the median of the
rounds' ratios. It is a benchmark, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# OpenBLAS picks a slow kernel when these are set on this machine: drop them for this process
if os.environ.pop("OPENBLAS_CORETYPE", None) is not None or \
        os.environ.pop("OPENBLAS_L2_SIZE", None) is not None:
    os.environ.pop("OPENBLAS_CORETYPE", None)
    os.environ.pop("OPENBLAS_L2_SIZE", None)
    os.execv(sys.executable, [sys.executable, *sys.argv])

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))   # (bench_gpt)

import numpy as np  # noqa: E402
from bench_exprs import chain_t, gelu_t  # noqa: E402

# the PyTorch worker (see main) imports torch first: its OpenMP runtime reads the environment
# when it loads, before lazytorch sets its own defaults there
_ENV0 = dict(os.environ)
_TORCH_WORKER = "--torch-worker" in sys.argv
torch = None
if _TORCH_WORKER:
    import torch  # noqa: E402

import lazytorch as lt  # noqa: E402

ROUNDS = 3  # turns each framework takes per workload (see the module's docstring)
WARM_S = 0.05  # each turn runs its workload this long before timing it
# PyTorch's OpenMP threads spin for a while after its work (its default wait policy): each
# turn starts after a pause, once they (and lazytorch's) have gone to sleep
SETTLE_S = 0.2


def timeit(fn, repeat: int, warmup: int = 2, warm_s: float = 0.0) -> tuple[float, float]:
    """(first call seconds, median of `repeat` later calls after `warmup` calls, and more
    until `warm_s` seconds have passed: a turn after an idle pause starts with the cores and
    caches cold)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        fn()
    while time.perf_counter() - t0 < warm_s:
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return first, statistics.median(ts)


def copy_bandwidth() -> float:
    a = np.ones(16 << 20, np.float32)
    b = np.empty_like(a)
    _, t = timeit(lambda: np.copyto(b, a), 7)
    return 2 * a.nbytes / t / 1e9


def gelu_np(x):
    return 0.5 * x * (1 + np.tanh(np.float32(0.7978845608) * (x + np.float32(0.044715) * x ** 3)))


def chain_np(a, b):
    y = (a + b) * np.float32(1.5)
    y = np.exp(y * np.float32(0.1))
    y = np.maximum(y, a)
    y = np.where(y > b, y, b) - np.float32(0.5)
    return np.sqrt(np.abs(y) + np.float32(1.0)) * a


def softmax_t(x, lib):
    m = x.amax(-1, keepdim=True)
    e = (x - m).exp()
    return e / e.sum(-1, keepdim=True)


def layernorm_t(x, w, b):
    mu = x.mean(-1, keepdim=True)
    xc = x - mu
    var = (xc * xc).mean(-1, keepdim=True)
    return xc / (var + 1e-5).sqrt() * w + b


def layernorm_np(x, w, b):
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(-1, keepdims=True)
    return xc / np.sqrt(var + np.float32(1e-5)) * w + b


def workloads(quick: bool):
    rng = np.random.default_rng(0)
    n4m = (1 << 20) if quick else (4 << 20)
    a = rng.standard_normal(n4m).astype(np.float32)
    b = rng.standard_normal(n4m).astype(np.float32)
    rows = 1024 if quick else 4096
    s2 = rng.standard_normal((rows, 1024)).astype(np.float32)
    w1 = rng.standard_normal(1024).astype(np.float32)
    out = []

    def lt_fn(f, *arrs):
        # fresh input buffers each call (zero-copy): a realized graph is never recomputed
        return lambda: f(*[lt.from_numpy(x) for x in arrs]).numpy()

    def th_fn(f, *arrs):
        if torch is None:
            return None
        ts = [torch.tensor(x) for x in arrs]
        return lambda: f(*ts)

    out.append((f"gelu {n4m >> 20}M", n4m * 8, None, lt_fn(lambda x: gelu_t(x, lt), a),
                lambda: gelu_np(a), th_fn(lambda x: gelu_t(x, torch), a)))
    out.append((f"10-op chain {n4m >> 20}M", n4m * 12, None,
                lt_fn(lambda x, y: chain_t(x, y, lt), a, b), lambda: chain_np(a, b),
                th_fn(lambda x, y: chain_t(x, y, torch), a, b)))
    out.append((f"softmax {rows}x1024", s2.nbytes * 2, None,
                lt_fn(lambda x: softmax_t(x, lt), s2),
                lambda: (lambda e: e / e.sum(-1, keepdims=True))(np.exp(s2 - s2.max(-1,
                                                                                    keepdims=True))),
                th_fn(lambda x: torch.softmax(x, -1), s2)))
    out.append((f"layernorm {rows}x1024", s2.nbytes * 2, None,
                lt_fn(lambda x, w: layernorm_t(x, w, w), s2, w1),
                lambda: layernorm_np(s2, w1, w1),
                th_fn(lambda x, w: torch.nn.functional.layer_norm(x, (1024,), w, w), s2, w1)))
    for n in ((256, 512) if quick else (512, 1024)):
        m1 = rng.standard_normal((n, n)).astype(np.float32)
        m2 = rng.standard_normal((n, n)).astype(np.float32)
        out.append((f"matmul {n}^3", None, 2 * n ** 3, lt_fn(lambda x, y: x @ y, m1, m2),
                    lambda m1=m1, m2=m2: m1 @ m2, th_fn(lambda x, y: x @ y, m1, m2)))
    # the half types, whose operands are widened to float for the float GEMM, as PyTorch's CPU
    # matmul multiplies and sums them in float (numpy has no bfloat16: no numpy column there)
    n = 256 if quick else 512
    for name, d in (("bf16", lt.bfloat16), ("f16", lt.float16)):
        mh = [lt.tensor(rng.standard_normal((n, n)), dtype=d)._array() for _ in range(2)]
        th = None if torch is None else [torch.tensor(m.astype(np.float32)).to(getattr(
            torch, d.name)) for m in mh]
        out.append((f"matmul {name} {n}^3", None, 2 * n ** 3,
                    lambda mh=mh: (lt.from_numpy(mh[0]) @ lt.from_numpy(mh[1])).realize(),
                    (lambda mh=mh: mh[0] @ mh[1]) if d is lt.float16 else None,
                    None if th is None else lambda th=th: th[0] @ th[1]))
    out.append(products_workload("matmul MLP shapes (fwd+bwd)", rng, 128,
                                 [(784, 256), (256, 256), (256, 10)], []))
    # the GPT's linears (qkv, proj, MLP, lm head) over its 16 x 64 rows, and one attention's
    # batched products (16 x 4 heads of 64 x 32): scores q k^T, att v, and their gradients
    out.append(products_workload("matmul GPT shapes (fwd+bwd)", rng, 1024,
                                 [(128, 384), (128, 128), (128, 512), (512, 128), (128, 65)],
                                 [(64, 64, 32, 64)]))
    n16 = (4 << 20) if quick else (16 << 20)
    v = rng.standard_normal(n16).astype(np.float32)
    out.append(("sum 16M", v.nbytes, None, lt_fn(lambda x: x.sum(), v), lambda: v.sum(),
                th_fn(lambda x: x.sum(), v)))
    sq = rng.standard_normal((2048, 2048) if quick else (4096, 4096)).astype(np.float32)
    out.append(("sum dim0 4096^2", sq.nbytes, None, lt_fn(lambda x: x.sum(0), sq),
                lambda: sq.sum(0), th_fn(lambda x: x.sum(0), sq)))
    out.append(mlp_workload(rng))
    out.append(cnn_workload(rng))
    out.append(gpt_workload(rng, sdpa=False))
    out.append(gpt_workload(rng, sdpa=True))
    out.append(tiny_adds_workload())
    return out


def products_workload(name, rng, rows, linears, batched):
    """All the matrix products of training `linears` (in, out) layers over `rows` rows, in the
    layouts the autograd records (forward x W^T, input gradient g W, weight gradient g^T x),
    and of `batched` (batch, T, d, T) attentions (q k^T, att v and their gradients), as one
    realize for lazytorch; the flops summed over them."""
    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    ops, flops = [], 0
    for n_in, n_out in linears:
        x, w, g = arr(rows, n_in), arr(n_out, n_in), arr(rows, n_out)
        ops += [(lambda x, w: x @ w.mT, x, w), (lambda g, w: g @ w, g, w),
                (lambda g, x: g.mT @ x, g, x)]
        flops += 3 * 2 * rows * n_in * n_out
    for b, t, d, t2 in batched:
        q, k, att, g = arr(b, t, d), arr(b, t2, d), arr(b, t, t2), arr(b, t, d)
        ops += [(lambda q, k: q @ k.mT, q, k), (lambda a, v: a @ v, att, k),
                (lambda g, v: g @ v.mT, g, k), (lambda a, g: a.mT @ g, att, g),
                (lambda ga, k: ga @ k, att, k), (lambda ga, q: ga.mT @ q, att, q)]
        flops += 6 * 2 * b * t * d * t2

    def lt_run():
        from lazytorch.frontend.tensor import realize_tensors
        realize_tensors([f(*[lt.from_numpy(a) for a in arrs]) for f, *arrs in ops])

    def th_run(ts):
        return [f(*args) for (f, *_), args in zip(ops, ts)]
    ths = None if torch is None else [[torch.tensor(a) for a in arrs] for _, *arrs in ops]
    return (name, None, flops, lt_run, lambda: [f(*arrs) for f, *arrs in ops],
            None if ths is None else lambda: th_run(ths))


def _train_step(lib, model, opt, x, y, loss_fn):
    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def _train_workload(name, rng, x_shape, make_model):
    """A forward+backward+SGD step with cross-entropy on random data, for each library."""
    x = rng.standard_normal(x_shape).astype(np.float32)
    y = rng.integers(0, 10, x_shape[0])

    def build(lib):
        lib.manual_seed(0)
        model = make_model(lib.nn)
        opt = lib.optim.SGD(model.parameters(), lr=0.01)
        step = _train_step(lib, model, opt, lib.tensor(x), lib.tensor(y),
                           lib.nn.functional.cross_entropy)
        return lambda: step().item()  # the loss value is needed each step
    try:
        lt_run = build(lt)
    except Exception as e:  # nn/optim missing
        lt_run = _missing(e)
    th_run = build(torch) if torch is not None else None
    return (name, None, None, lt_run, None, th_run)


def mlp_workload(rng):
    return _train_workload(
        "MLP 784-256-256-10 step", rng, (128, 784),
        lambda nn: nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                 nn.Linear(256, 10)))


def cnn_workload(rng):
    return _train_workload(
        "CNN train step", rng, (32, 1, 28, 28),
        lambda nn: nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(16 * 5 * 5, 10)))


def gpt_workload(rng, sdpa: bool):
    """tools/bench_gpt.py's training step, attention written out or through SDPA."""
    from bench_gpt import BATCH, BLOCK, VOCAB, gpt_step
    idx = rng.integers(0, VOCAB, (BATCH, BLOCK))
    targets = rng.integers(0, VOCAB, (BATCH, BLOCK))
    name = f"GPT step ({'sdpa' if sdpa else 'softmax'} attention)"
    try:
        lt_run = gpt_step(lt, sdpa, idx, targets)
    except Exception as e:
        lt_run = _missing(e)
    th_run = gpt_step(torch, sdpa, idx, targets) if torch is not None else None
    return (name, None, None, lt_run, None, th_run)


def _missing(e):
    def run():
        raise RuntimeError(f"unavailable: {e}")
    return run


def tiny_adds_workload():
    x = lt.randn(16)

    def run():
        y = x
        for _ in range(1000):
            y = y + 1.0
        return y.numpy()
    return ("1000 tiny adds (record+realize)", None, None, run, None, None)


def record_cost() -> tuple[float, float]:
    """Medians over trials of a 1000-op chain: (us per recorded op, ms to realize the chain
    when its structure was seen before). The realize includes freeing the chain's nodes: the
    tensor drops its graph for the buffer that now holds its value."""
    x = lt.randn(16)
    rec, real = [], []
    for _ in range(7):
        t0 = time.perf_counter()
        y = x
        for _ in range(1000):
            y = y * 1.0001
        t1 = time.perf_counter()
        y.numpy()
        t2 = time.perf_counter()
        x = lt.randn(16)
        rec.append((t1 - t0) * 1e3)
        real.append((t2 - t1) * 1e3)
    return statistics.median(rec), statistics.median(real[1:])


def schedule_scaling(n_ops: int) -> tuple[float, int]:
    """Seconds to prepare a new n_ops-op graph for the compiler as realize does (substitute
    and structure key, passes, schedule, C source; no C compiler run), and its kernel count.
    The graph mixes elementwise chains with a reduction every 8 ops, as a deep network's
    forward does."""
    from lazytorch.engine import backends
    from lazytorch.engine.plan import compile_graph
    from lazytorch.engine.realize import prepare
    x = lt.randn(64)
    y = x
    for _ in range(n_ops // 8):
        y = ((y * 0.5 + x).tanh() * 2 - 1).exp() - y.mean() + 1   # 8 ops
    t0 = time.perf_counter()
    outs, *_ = prepare([y.node])
    _, sched = compile_graph(outs, backends.get("c").renderer)
    return time.perf_counter() - t0, len(sched.kernels)


def compile_counts() -> tuple[int, int, int]:
    """Plans built (i) for a loop realizing a new Python scalar 50 times, (ii) for an
    embedding + linear + cross-entropy step at 50 sequence lengths, and (iii) the kernels that
    step compiled: what a new value or a new shape costs in compiles."""
    from lazytorch import debug
    x = lt.randn(4099)
    debug.reset_stats()
    for i in range(50):
        (x * (1 + i * 1e-3)).sum().item()
    scalars = debug.stats()["plans_built"]
    lt.manual_seed(0)
    emb, head = lt.nn.Embedding(65, 32), lt.nn.Linear(32, 65)
    opt = lt.optim.SGD([*emb.parameters(), *head.parameters()], lr=0.1)
    rng = np.random.default_rng(0)
    debug.reset_stats()
    for t in range(8, 58):
        idx = lt.tensor(rng.integers(0, 65, (4, t)))
        opt.zero_grad()
        loss = lt.nn.functional.cross_entropy(head(emb(idx)).view(-1, 65), idx.view(-1))
        loss.backward()
        opt.step()
        loss.item()
    return scalars, debug.stats()["plans_built"], debug.stats()["kernels_compiled"]


def first_step_times() -> tuple[float, float]:
    """Seconds for the first MLP step in a fresh process: empty cache, then warm disk cache."""
    code = ("import time,sys; sys.path.insert(0, %r); t0=time.perf_counter(); import numpy as np;"
            "import lazytorch as torch; nn=torch.nn; torch.manual_seed(0);"
            "m=nn.Sequential(nn.Linear(784,256),nn.ReLU(),nn.Linear(256,256),nn.ReLU(),"
            "nn.Linear(256,10)); o=torch.optim.SGD(m.parameters(), lr=0.01);"
            "x=torch.randn(128,784); y=torch.randint(0,10,(128,));"
            "t1=time.perf_counter(); l=nn.functional.cross_entropy(m(x),y); l.backward();"
            "o.step(); l.item(); print(time.perf_counter()-t1)") % ROOT
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, LAZYTORCH_CACHE_DIR=d)
        out = []
        for _ in range(2):
            r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                               text=True)
            out.append(float(r.stdout.strip()) if r.returncode == 0 else float("nan"))
    return out[0], out[1]


def _torch_worker(args) -> None:
    """The PyTorch process: reads requests {"name", "repeat"} as JSON lines and answers each
    with the median time of that workload's PyTorch version ({"t": null} if it has none)."""
    torch.set_num_threads(args.threads)
    fns = {name: f_th for name, _, _, _, _, f_th in workloads(args.quick) if f_th is not None}
    print(json.dumps({"version": torch.__version__}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        f = fns.get(req["name"])
        t = timeit(f, req["repeat"], req["warmup"], WARM_S)[1] if f is not None else None
        print(json.dumps({"t": t}), flush=True)


class TorchTimer:
    """PyTorch eager in a process of its own, timing one workload when asked, so that its
    times are taken next to lazytorch's. `version` is None when PyTorch is not installed."""

    def __init__(self, args):
        import importlib.util
        self.version, self._proc = None, None
        if importlib.util.find_spec("torch") is None:
            return
        cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker",
               "--threads", str(lt.get_num_threads()), *(["--quick"] if args.quick else [])]
        self._proc = subprocess.Popen(cmd, env=_ENV0, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        self.version = json.loads(self._proc.stdout.readline())["version"]

    def time(self, name: str, repeat: int, warmup: int) -> float | None:
        if self._proc is None:
            return None
        self._proc.stdin.write(json.dumps({"name": name, "repeat": repeat,
                                           "warmup": warmup}) + "\n")
        self._proc.stdin.flush()
        return json.loads(self._proc.stdout.readline())["t"]

    def close(self) -> None:
        if self._proc is not None:
            self._proc.stdin.close()
            self._proc.wait()


def _rounds(name: str, f_lt, f_np, th: TorchTimer, repeat: int) -> dict:
    """Time the three frameworks in turns: {"first", "lt", "np", "th"} with the medians of
    each framework's rounds, and the medians of the rounds' ratios ("vs_np", "vs_th")."""
    per = max(1, repeat // ROUNDS)
    first, lt_t, np_t, th_t = None, [], [], []
    for r in range(ROUNDS):
        time.sleep(SETTLE_S)
        f, t = timeit(f_lt, per, 2, WARM_S)
        first = f if r == 0 else first
        lt_t.append(t)
        if f_np is not None:
            time.sleep(SETTLE_S)
            np_t.append(timeit(f_np, per, 2, WARM_S)[1])
        time.sleep(SETTLE_S)
        t = th.time(name, per, 2)
        if t is not None:
            th_t.append(t)

    def ratio(other):
        return statistics.median(a / b for a, b in zip(lt_t, other)) if other else None
    med = statistics.median
    return {"first": first, "lt": med(lt_t), "np": med(np_t) if np_t else None,
            "th": med(th_t) if th_t else None, "vs_np": ratio(np_t), "vs_th": ratio(th_t)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    ap.add_argument("--json", help="also write the results as JSON to this path")
    ap.add_argument("--only", nargs="*", help="run the workloads whose name contains these")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="cuda: the GPU workloads (tools/bench_cuda.py)")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.device == "cuda":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import bench_cuda
        bench_cuda.main(args)
        return
    repeat = 6 if args.quick else 15
    if args.torch_worker:
        _torch_worker(args)
        return
    th = TorchTimer(args)
    bw = copy_bandwidth()
    m = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    _, tmm = timeit(lambda: m @ m, 5)
    np_gflops = 2 * 1024 ** 3 / tmm / 1e9
    print(f"machine: copy bandwidth {bw:.1f} GB/s, numpy matmul 1024^3 {np_gflops:.0f} GFLOP/s, "
          f"threads {lt.get_num_threads()}, torch {th.version or 'absent'} (own process, "
          f"{ROUNDS} rounds in turns)")
    head = (f"{'workload':<34}{'lazytorch':>11}{'first':>9}{'numpy':>10}{'torch':>10}"
            f"{'vs numpy':>10}{'vs torch':>10}{'GB/s|GF/s':>11}")
    print(head)
    print("-" * len(head))
    results = []
    for name, nbytes, flops, f_lt, f_np, _ in workloads(args.quick):
        if args.only and not any(o in name for o in args.only):
            continue
        row = {"workload": name}
        try:
            got = _rounds(name, f_lt, f_np, th, repeat)
        except Exception as e:
            print(f"{name:<34} failed: {e}")
            results.append({"workload": name, "error": str(e)})
            continue
        t_lt, first, t_np, t_th = got["lt"], got["first"], got["np"], got["th"]
        rate = ""
        if nbytes:
            rate = f"{nbytes / t_lt / 1e9:.1f}"
        elif flops:
            rate = f"{flops / t_lt / 1e9:.0f}"
        row.update(lazytorch_s=t_lt, first_s=first, numpy_s=t_np, torch_s=t_th, rate=rate,
                   vs_numpy=got["vs_np"], vs_torch=got["vs_th"])
        results.append(row)

        def ms(t):
            return f"{t * 1e3:.3f}" if t is not None else "-"

        def ratio(r):
            return f"{r:.2f}x" if r else "-"
        print(f"{name:<34}{ms(t_lt):>11}{ms(first):>9}{ms(t_np):>10}{ms(t_th):>10}"
              f"{ratio(got['vs_np']):>10}{ratio(got['vs_th']):>10}{rate:>11}")
    th.close()
    rec, real = record_cost()
    print(f"recording: {rec:.3f} us per op; realizing a seen 1000-op structure: {real:.3f} ms")
    if not args.quick:
        (t10, k10), (t100, k100) = schedule_scaling(10_000), schedule_scaling(100_000)
        print(f"scheduling a new graph: 10,000 ops {t10:.2f} s ({k10} kernels), 100,000 ops "
              f"{t100:.2f} s ({k100} kernels), {t100 / t10:.1f}x")
    scalars, shapes, shape_kernels = compile_counts()
    print(f"plans built: a new scalar in a loop, 50 values: {scalars}; a training step at 50 "
          f"sequence lengths: {shapes} ({shape_kernels} kernels compiled)")
    cold, warm = first_step_times()
    print(f"first MLP step in a fresh process: empty cache {cold:.2f} s, warm disk cache "
          f"{warm:.2f} s")
    print("(times in ms, medians of the rounds; ratios are lazytorch time / other time, the "
          "median of the rounds' ratios: below 1 is faster)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"copy_bandwidth_gbs": bw, "numpy_matmul_gflops": np_gflops,
                       "results": results, "record_us_per_op": rec,
                       "realize_seen_ms": real, "plans_new_scalars": scalars,
                       "plans_sequence_lengths": shapes,
                       "kernels_sequence_lengths": shape_kernels, "first_step_cold_s": cold,
                       "first_step_warm_s": warm}, f, indent=2)


if __name__ == "__main__":
    main()
