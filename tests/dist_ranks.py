"""What the ranks of tests/test_distributed_mpi.py run: `python tests/dist_ranks.py SCENARIO`
under mpirun (or the launcher). Each rank checks its results against numpy computed here from
every rank's inputs (each rank can make any rank's), and prints "ok SCENARIO RANK" at the end."""
from __future__ import annotations

import datetime
import os
import sys
import time

import numpy as np

import lazytorch as torch
import lazytorch.distributed as dist

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8,
          torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool]
OPS = [dist.ReduceOp.SUM, dist.ReduceOp.PRODUCT, dist.ReduceOp.MIN, dist.ReduceOp.MAX,
       dist.ReduceOp.AVG]


def values(rank: int, d, shape=(3, 4), salt: int = 0) -> np.ndarray:
    """Rank `rank`'s input: small values (products of a few ranks fit every dtype)."""
    rng = np.random.default_rng(1000 * rank + salt)
    if d is torch.bool:
        return rng.random(shape) < 0.5
    if d.is_floating_point:
        return (rng.integers(1, 4, shape) * 0.5).astype(np.float64)
    return rng.integers(1, 4, shape).astype(np.int64)


def reference(arrays: list[np.ndarray], op, d) -> np.ndarray:
    """numpy's reduction of the ranks' inputs, as the dtype holds it."""
    a = np.stack(arrays)
    if d is torch.bool:
        r = {dist.ReduceOp.SUM: a.any(0), dist.ReduceOp.MAX: a.any(0),
             dist.ReduceOp.PRODUCT: a.all(0), dist.ReduceOp.MIN: a.all(0)}[op]
        return r
    r = {dist.ReduceOp.SUM: a.sum(0), dist.ReduceOp.PRODUCT: a.prod(0),
         dist.ReduceOp.MIN: a.min(0), dist.ReduceOp.MAX: a.max(0),
         dist.ReduceOp.AVG: a.sum(0) / len(arrays)}[op]
    return r


def check(got: torch.Tensor, want: np.ndarray, what: str) -> None:
    g = got.float().numpy() if got.dtype is torch.bfloat16 else got.numpy()
    tol = 1e-2 if got.dtype in (torch.float16, torch.bfloat16) else 1e-6
    w = want.astype(np.float32) if got.dtype is torch.bfloat16 else want.astype(got.dtype.np)
    if g.shape != w.shape or not np.allclose(g.astype(np.float64), w.astype(np.float64),
                                             rtol=tol, atol=tol):
        raise AssertionError(f"{what}: got {str(g.tolist())[:300]} want {str(w.tolist())[:300]}")


def tensor(a: np.ndarray, d) -> torch.Tensor:
    return torch.tensor(a, dtype=d)


def collectives() -> None:
    dist.init_process_group("gloo")
    r, n = dist.get_rank(), dist.get_world_size()
    assert dist.is_initialized() and dist.get_backend() == "gloo"
    assert os.environ["RANK"] == str(r) and os.environ["WORLD_SIZE"] == str(n)
    for d in DTYPES:
        for k, op in enumerate(OPS):
            if op is dist.ReduceOp.AVG and not d.is_floating_point:
                try:
                    dist.all_reduce(tensor(values(r, d), d), op)
                except RuntimeError as e:
                    assert "AVG" in str(e)
                else:
                    raise AssertionError(f"AVG on {d} did not raise")
                continue
            inputs = [values(q, d, salt=k) for q in range(n)]
            want = reference(inputs, op, d)
            # realized and contiguous
            t = tensor(inputs[r], d)
            t.numpy() if d is not torch.bfloat16 else t.float().numpy()
            dist.all_reduce(t, op)
            check(t, want, f"all_reduce {op} {d} contiguous")
            # a transposed view: the result reaches its base too
            base = tensor(inputs[r].T.copy(), d)
            view = base.t()
            assert not view.is_contiguous()
            dist.all_reduce(view, op)
            check(view, want, f"all_reduce {op} {d} view")
            check(base, want.T, f"all_reduce {op} {d} view's base")
            # still lazy: a value computed by a kernel the collective triggers
            src = tensor(inputs[r], d)
            lazy = src.flip(0).flip(0) if d is torch.bool else (src * 2 - src)
            assert lazy.node.op.name != "BUFFER"
            dist.all_reduce(lazy, op)
            check(lazy, want, f"all_reduce {op} {d} lazy")
    # the collective realizes only what it sends: an unrelated pending value stays lazy
    x = torch.ones(5) * 3
    other = torch.arange(5.0) * 7
    y = x + 1
    dist.all_reduce(y)
    assert other.node.op.name != "BUFFER", "an unrelated tensor was realized"
    check(y, np.full(5, 4.0 * n), "all_reduce of x + 1")
    assert y.node.op.name == "BUFFER"      # the result is the tensor's value, as a buffer
    # then the rest of the step stays lazy and correct
    check(y * 2 + other, 8.0 * n + np.arange(5.0) * 7, "after all_reduce")
    # 0-d and empty tensors
    s = torch.tensor(float(r + 1))
    dist.all_reduce(s, dist.ReduceOp.MAX)
    check(s, np.array(float(n)), "0-d")
    e = torch.zeros(0, 3)
    dist.all_reduce(e)
    assert tuple(e.shape) == (0, 3)

    for d in DTYPES:
        # broadcast from the last rank: other ranks' tensors (views, lazy) take its value
        src = n - 1
        want = values(src, d, salt=7)
        if r == src:
            t = tensor(want, d) * 1 if d is not torch.bool else tensor(want, d)
        else:
            t = tensor(values(r, d, salt=7).T.copy(), d).t()
        dist.broadcast(t, src)
        check(t, want, f"broadcast {d}")
        # all_gather into a list (one entry a view of a bigger tensor)
        mine = tensor(values(r, d, salt=8), d)
        big = torch.zeros(4, 3, dtype=d)
        outs = [big.t() if q == 0 else torch.zeros(3, 4, dtype=d) for q in range(n)]
        dist.all_gather(outs, mine.t().t())
        for q in range(n):
            check(outs[q], values(q, d, salt=8), f"all_gather {d} [{q}]")
        check(big, values(0, d, salt=8).T, f"all_gather {d} into a view's base")
        out = torch.zeros(n * 3, 4, dtype=d)
        dist.all_gather_into_tensor(out, mine)
        check(out, np.concatenate([values(q, d, salt=8) for q in range(n)]),
              f"all_gather_into_tensor {d}")
        # reduce_scatter: rank q gets input_list[q] reduced
        for op in OPS:
            if op is dist.ReduceOp.AVG and not d.is_floating_point:
                continue
            lists = [[values(q, d, (2, 3), salt=20 + j) for j in range(n)] for q in range(n)]
            o = torch.zeros(2, 3, dtype=d)
            dist.reduce_scatter(o, [tensor(a, d) for a in lists[r]], op)
            check(o, reference([lists[q][r] for q in range(n)], op, d),
                  f"reduce_scatter {op} {d}")
            o2 = torch.zeros(2, 3, dtype=d)
            dist.reduce_scatter_tensor(o2, tensor(np.concatenate(lists[r]), d), op)
            check(o2, reference([lists[q][r] for q in range(n)], op, d),
                  f"reduce_scatter_tensor {op} {d}")

    # async: several in flight, each result there after wait()
    ts = [torch.full((1000,), float(r + i)) for i in range(3)]
    works = [dist.all_reduce(t, async_op=True) for t in ts]
    assert all(isinstance(w, dist.Work) for w in works)
    for i in reversed(range(3)):
        assert works[i].wait() is True
        assert works[i].is_completed()
        check(ts[i], np.full(1000, float(sum(q + i for q in range(n)))), f"async {i}")
    b = torch.zeros(2) + r
    w = dist.broadcast(b, 0, async_op=True)
    while not w.is_completed():
        pass
    check(b, np.zeros(2), "async broadcast")
    outs = [torch.zeros(2) for _ in range(n)]
    dist.all_gather(outs, torch.ones(2) * r, async_op=True).wait()
    check(torch.stack(outs), np.repeat(np.arange(n, dtype=np.float32)[:, None], 2, 1),
          "async all_gather")
    assert dist.barrier(async_op=True).wait()
    dist.barrier()
    objs: list = [None] * n
    dist.all_gather_object(objs, {"rank": r})
    assert objs == [{"rank": q} for q in range(n)]
    lst = [r, "x"] if r == 0 else [None, None]
    dist.broadcast_object_list(lst, 0)
    assert lst == [0, "x"]
    # errors at the call
    for bad, kind in ((lambda: dist.all_gather([torch.zeros(1)], torch.zeros(1)), ValueError),
                      (lambda: dist.broadcast(torch.zeros(1), n), ValueError),
                      (lambda: dist.all_reduce(torch.zeros(1), "sum"), TypeError),
                      (lambda: dist.init_process_group("mpi"), ValueError)):
        try:
            bad()
        except kind:
            pass
        else:
            raise AssertionError(f"no {kind.__name__}")
    dist.destroy_process_group()
    assert not dist.is_initialized()


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def ddp() -> None:
    from lazytorch.nn.parallel import DistributedDataParallel as DDP
    dist.init_process_group("mpi")
    r, n = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(100 + r)                 # different on each rank until the broadcast
    model = mlp()
    model.register_buffer("counter", torch.full((2,), float(r)))
    ddp_model = DDP(model, bucket_cap_mb=0.0005)   # ~500 bytes: several buckets
    assert len(ddp_model._param_buckets) > 1
    assert list(ddp_model.state_dict()) == ["module." + k for k in model.state_dict()]
    check(model.counter, np.zeros(2), "buffer broadcast")
    # every rank now holds rank 0's parameters
    for p in model.parameters():
        got = [torch.zeros_like(p) for _ in range(n)]
        dist.all_gather(got, p.detach())
        for g in got:
            check(g, p.detach().numpy(), "parameters broadcast")
    ref = mlp()
    ref.load_state_dict({k: v.detach().clone() for k, v in model.state_dict().items()
                         if k != "counter"})
    B = 4
    rng = np.random.default_rng(5)
    opt = torch.optim.SGD(ddp_model.parameters(), lr=0.1, momentum=0.9)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(4):
        x = rng.standard_normal((n * B, 6)).astype(np.float32)
        y = rng.integers(0, 3, n * B)
        opt.zero_grad()
        loss = loss_fn(ddp_model(torch.tensor(x[r * B:(r + 1) * B])),
                       torch.tensor(y[r * B:(r + 1) * B]))
        loss.backward()
        opt.step()
        ref_opt.zero_grad()
        loss_fn(ref(torch.tensor(x)), torch.tensor(y)).backward()
        ref_opt.step()
    for (k, p), q in zip(model.named_parameters(), ref.parameters()):
        check(p.detach(), q.detach().numpy(), f"DDP {k} after 4 steps")
        assert not np.allclose(p.detach().numpy(), 0)
    # no_sync: the first backward stays local; the next averages the accumulated sum
    x = rng.standard_normal((2, n * B, 6)).astype(np.float32)
    y = rng.integers(0, 3, (2, n * B))
    opt.zero_grad()
    with ddp_model.no_sync():
        loss_fn(ddp_model(torch.tensor(x[0, r * B:(r + 1) * B])),
                torch.tensor(y[0, r * B:(r + 1) * B])).backward()
    local = [p.grad.numpy().copy() for p in model.parameters()]
    loss_fn(ddp_model(torch.tensor(x[1, r * B:(r + 1) * B])),
            torch.tensor(y[1, r * B:(r + 1) * B])).backward()
    ref.zero_grad()
    loss_fn(ref(torch.tensor(x[0])), torch.tensor(y[0])).backward()
    loss_fn(ref(torch.tensor(x[1])), torch.tensor(y[1])).backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        check(p.grad, q.grad.numpy(), "no_sync then a synchronized backward")
    # the local gradient of the first micro-batch alone differs between the ranks
    mine = torch.tensor(local[0])
    both = [torch.zeros_like(mine) for _ in range(n)]
    dist.all_gather(both, mine)
    assert not np.allclose(both[0].numpy(), both[1].numpy()), "no_sync averaged"
    dist.destroy_process_group()


def die() -> None:
    """Rank 1 is killed; rank 0 waits in a collective until mpirun ends it."""
    dist.init_process_group("mpi")
    if dist.get_rank() == 1:
        os._exit(7)
    dist.all_reduce(torch.ones(3))
    time.sleep(60)


def fail() -> None:
    """Rank 1 raises; the worker prints it and aborts the job."""
    dist.init_process_group("mpi")
    if dist.get_rank() == 1:
        raise ValueError("rank 1 failed on purpose")
    dist.all_reduce(torch.ones(3))
    time.sleep(60)


def stall() -> None:
    """Rank 1 never joins the collective; rank 0's raises when the group's timeout passes."""
    dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=2))
    if dist.get_rank() == 1:
        time.sleep(60)
    t0 = time.monotonic()
    try:
        dist.all_reduce(torch.ones(3))
    except RuntimeError as e:
        print(f"rank 0 raised after {time.monotonic() - t0:.1f} s: {e}", flush=True)
        raise


if __name__ == "__main__":
    scenario = sys.argv[1]
    globals()[scenario]()
    print(f"ok {scenario} {os.environ.get('RANK', os.environ.get('OMPI_COMM_WORLD_RANK'))}",
          flush=True)
