"""GPU benchmarks: `python tools/bench.py --device cuda`. Lazytorch's CUDA backend against the
GPU's measured copy bandwidth and against PyTorch on the same GPU, as ratios.

- fused elementwise (gelu, a 10-op chain): bytes moved per second as a fraction of the
  GPU's copy bandwidth (a device-to-device copy; target >= 80%);
- softmax and layer norm over rows: lazytorch's time / PyTorch's (target <= 1.0x);
- matmul: PyTorch's time (cuBLAS) / lazytorch's, in float32 (TF32 off: target >= 0.7x) and
  bfloat16 (target >= 0.5x);
- an MLP training step (forward, backward, SGD, the loss read back): lazytorch / PyTorch.

Every time is the median of repeated runs, each ended by a device synchronize, after warm-up
runs (the first of which compiles, unless the disk cache is warm). PyTorch runs in this
process, on the same device; the two take turns per workload, in rounds. Without a GPU (or
without PyTorch for the comparisons) the lines say so and the script exits 0."""
from __future__ import annotations

import json
import statistics
import time

import numpy as np
from bench_exprs import chain_t, gelu_t

import lazytorch as lt

ROUNDS = 3


def _timed(fn, sync, repeat: int) -> tuple[float, float]:
    """(first call seconds, median seconds of `repeat` later calls), each synchronized."""
    t0 = time.perf_counter()
    fn()
    sync()
    first = time.perf_counter() - t0
    for _ in range(2):
        fn()
    sync()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return first, statistics.median(ts)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def workloads(quick: bool, torch):
    """(name, kind, amount, lazytorch fn, PyTorch fn or None): kind "bytes" (amount moved),
    "flops" (amount computed) or "step"."""
    rng = np.random.default_rng(0)
    n = (16 << 20) if quick else (64 << 20)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    rows = 2048 if quick else 8192
    s2 = rng.standard_normal((rows, 1024)).astype(np.float32)
    w1 = rng.standard_normal(1024).astype(np.float32)
    la, lb, ls, lw = (lt.tensor(x, device="cuda") for x in (a, b, s2, w1))
    if torch is not None:
        ta, tb, ts, tw = (torch.tensor(x, device="cuda") for x in (a, b, s2, w1))
    F = lt.nn.functional

    def th(f):
        return f if torch is not None else None

    out = [
        (f"gelu {n >> 20}M f32", "bytes", 2 * a.nbytes, lambda: gelu_t(la, lt).realize(),
         th(lambda: gelu_t(ta, torch))),
        (f"10-op chain {n >> 20}M f32", "bytes", 3 * a.nbytes,
         lambda: chain_t(la, lb, lt).realize(), th(lambda: chain_t(ta, tb, torch))),
        (f"softmax {rows}x1024", "bytes", 2 * s2.nbytes, lambda: F.softmax(ls, -1).realize(),
         th(lambda: torch.softmax(ts, -1))),
        (f"layernorm {rows}x1024", "bytes", 2 * s2.nbytes,
         lambda: F.layer_norm(ls, (1024,), lw, lw).realize(),
         th(lambda: torch.nn.functional.layer_norm(ts, (1024,), tw, tw))),
    ]
    m = 2048 if quick else 4096
    for name, d, td in (("f32", lt.float32, "float32"), ("bf16", lt.bfloat16, "bfloat16")):
        x = rng.standard_normal((m, m)).astype(np.float32)
        y = rng.standard_normal((m, m)).astype(np.float32)
        lx, ly = lt.tensor(x, device="cuda").to(d), lt.tensor(y, device="cuda").to(d)
        if torch is not None:
            tx = torch.tensor(x, device="cuda").to(getattr(torch, td))
            ty = torch.tensor(y, device="cuda").to(getattr(torch, td))
        out.append((f"matmul {name} {m}^3", "flops", 2 * m ** 3,
                    lambda lx=lx, ly=ly: (lx @ ly).realize(),
                    th(lambda tx=tx, ty=ty: tx @ ty) if torch is not None else None))
    out.append(_mlp(rng, torch))
    return out


def _mlp(rng, torch):
    x = rng.standard_normal((512, 784)).astype(np.float32)
    y = rng.integers(0, 10, 512)

    def build(lib):
        lib.manual_seed(0)
        nn = lib.nn
        model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                              nn.Linear(1024, 10)).to("cuda")
        opt = lib.optim.SGD(model.parameters(), lr=0.01)
        xs, ys = lib.tensor(x, device="cuda"), lib.tensor(y, device="cuda")

        def step():
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xs), ys)
            loss.backward()
            opt.step()
            return loss.item()
        return step
    return ("MLP 784-1024-1024-10 step, batch 512", "step", None, build(lt),
            build(torch) if torch is not None else None)


def _copy_bandwidth(torch) -> tuple[float, str]:
    """The GPU's device-to-device copy bandwidth (bytes read + written per second), by
    PyTorch's copy where it is there, else by lazytorch's own copy kernel."""
    n = 64 << 20
    if torch is not None:
        a = torch.ones(n, device="cuda")
        b = torch.empty_like(a)
        _, t = _timed(lambda: b.copy_(a), torch.cuda.synchronize, 20)
        return 2 * 4 * n / t, "PyTorch copy_"
    a = lt.ones(n, device="cuda").realize()
    _, t = _timed(lambda: (a + 0.5).realize(), lt.cuda.synchronize, 20)
    return 2 * 4 * n / t, "lazytorch x + 0.5"


def main(args) -> None:
    """The CUDA workloads (tools/bench.py --device cuda)."""
    if not lt.cuda.is_available():
        print("bench --device cuda: skipped: no CUDA device here (lazytorch.cuda.is_available() "
              "is False)")
        return
    torch = _torch()
    repeat = 5 if args.quick else 15
    bw, how = _copy_bandwidth(torch)
    print(f"device: {lt.cuda.get_device_name()}, copy bandwidth {bw / 1e9:.0f} GB/s ({how}), "
          f"torch {torch.__version__ if torch is not None else 'absent (no comparisons)'}")
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = False
    head = (f"{'workload':<40}{'lazytorch':>11}{'first':>9}{'torch':>10}{'vs torch':>10}"
            f"{'rate':>16}")
    print(head)
    print("-" * len(head))
    results = []
    for name, kind, amount, f_lt, f_th in workloads(args.quick, torch):
        if args.only and not any(o in name for o in args.only):
            continue
        lt_t, th_t, ratios, first = [], [], [], None
        try:
            for r in range(ROUNDS):
                f, t = _timed(f_lt, lt.cuda.synchronize, max(1, repeat // ROUNDS))
                first = f if r == 0 else first
                lt_t.append(t)
                if f_th is not None:
                    th_t.append(_timed(f_th, torch.cuda.synchronize,
                                       max(1, repeat // ROUNDS))[1])
                    ratios.append(lt_t[-1] / th_t[-1])
        except Exception as e:
            print(f"{name:<40} failed: {type(e).__name__}: {e}")
            results.append({"workload": name, "error": str(e)})
            continue
        t = statistics.median(lt_t)
        ratio = statistics.median(ratios) if ratios else None
        if kind == "bytes":
            rate = f"{amount / t / 1e9:.0f} GB/s {amount / t / bw:.0%}"
        elif kind == "flops":
            rate = f"{amount / t / 1e12:.1f} TFLOP/s"
        else:
            rate = ""
        th_med = statistics.median(th_t) if th_t else None
        print(f"{name:<40}{t * 1e3:>11.3f}{first * 1e3:>9.1f}"
              f"{(f'{th_med * 1e3:.3f}' if th_med else '-'):>10}"
              f"{(f'{ratio:.2f}x' if ratio else '-'):>10}{rate:>16}")
        results.append({"workload": name, "lazytorch_s": t, "first_s": first,
                        "torch_s": th_med, "vs_torch": ratio, "rate": rate})
    print("(times in ms, medians; ratios are lazytorch time / PyTorch time on the same GPU: "
          "below 1 is faster; matmul TFLOP/s vs cuBLAS is 1 / ratio)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": lt.cuda.get_device_name(), "copy_bandwidth_gbs": bw / 1e9,
                       "results": results}, f, indent=2)
