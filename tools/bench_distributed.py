"""Time per training step of tools/bench.py's MLP (784-256-256-10, SGD, batch 128 per rank)
on one process and under DistributedDataParallel, with the share of the step spent in
communication (the gradient all_reduce calls and their waits).

    python tools/bench_distributed.py                       # one process, no process group
    python -m lazytorch.distributed.run --nproc_per_node 2 tools/bench_distributed.py

Rank 0 prints the median step time and the median communication time per step.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np

import lazytorch as torch
from lazytorch import nn


def main(steps: int = 200, warmup: int = 20) -> None:
    launched = "OMPI_COMM_WORLD_SIZE" in os.environ
    comm: list[float] = []
    if launched:
        import lazytorch.distributed as dist
        from lazytorch.distributed import collectives
        dist.init_process_group("mpi")
        rank, world = dist.get_rank(), dist.get_world_size()
        # the time spent in the collectives (posting and waiting), whoever calls them
        post, wait = collectives.all_reduce, collectives.Work.wait

        def timed_post(*a, **k):
            t0 = time.perf_counter()
            try:
                return post(*a, **k)
            finally:
                comm.append(time.perf_counter() - t0)

        def timed_wait(self, *a, **k):
            t0 = time.perf_counter()
            try:
                return wait(self, *a, **k)
            finally:
                comm.append(time.perf_counter() - t0)
        dist.all_reduce = timed_post
        collectives.Work.wait = timed_wait
    else:
        rank, world = 0, 1
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    if launched:
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(rank)
    x = torch.tensor(rng.standard_normal((128, 784)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 10, 128))
    times, comms = [], []
    for i in range(warmup + steps):
        comm.clear()
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            comms.append(sum(comm))
    if rank == 0:
        step, c = statistics.median(times), statistics.median(comms)
        print(f"ranks {world}, threads per rank {torch.get_num_threads()}: step "
              f"{step * 1e3:.2f} ms (median of {steps}), communication {c * 1e3:.2f} ms "
              f"({100 * c / step:.0f}% of the step), {world * 128 / step:.0f} samples/s")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
