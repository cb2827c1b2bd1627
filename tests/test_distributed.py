"""lazytorch.distributed in one process: availability and errors before (or without) MPI, the
launcher's command lines, the worker's environment, DistributedSampler against PyTorch's, the
post-backward callbacks DDP uses, and DDP's buckets. The collectives and DDP themselves run
over 2 ranks in tests/test_distributed_mpi.py."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.distributed as dist
from lazytorch.distributed import run, worker
from lazytorch.utils.data import DistributedSampler


def test_importing_distributed_does_not_start_mpi():
    code = ("import sys, lazytorch, lazytorch.distributed as d; "
            "from lazytorch.nn.parallel import DistributedDataParallel; "
            "from lazytorch.utils.data.distributed import DistributedSampler; "
            "assert 'mpi4py' not in sys.modules and not d.is_initialized()")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_without_mpi4py_it_is_unavailable_and_init_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)      # as if not installed
    assert dist.is_available() is False
    with pytest.raises(RuntimeError, match=r"pip install 'lazytorch\[distributed\]'"):
        dist.init_process_group("gloo")
    assert not dist.is_initialized()


def test_errors_before_a_group_exists_are_pytorchs():
    msg = "Default process group has not been initialized"
    for f in (dist.get_rank, dist.get_world_size, dist.get_backend, dist.barrier,
              dist.destroy_process_group, lambda: dist.all_reduce(torch.ones(2))):
        with pytest.raises(ValueError, match=msg):
            f()
    with pytest.raises(ValueError, match=msg):
        torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=msg):
        DistributedSampler(range(10))


def test_nccl_and_unknown_backends_are_refused_before_mpi_starts():
    with pytest.raises(RuntimeError, match="'nccl' is not available"):
        dist.init_process_group("nccl")
    with pytest.raises(ValueError, match="Invalid backend: 'ucc'"):
        dist.init_process_group("ucc")
    assert "mpi4py.MPI" not in sys.modules


def test_reduce_op_names_match_pytorchs():
    torch_ = pytest.importorskip("torch")
    for name in ("SUM", "PRODUCT", "MIN", "MAX", "AVG"):
        assert getattr(dist.ReduceOp, name).name == name
        assert repr(getattr(dist.ReduceOp, name)) == repr(getattr(torch_.distributed.ReduceOp,
                                                                  name))


# ------------------------------------------------------------------------------ the launcher
def command(*argv: str, euid: int = 1000) -> list[str]:
    return run.command(run.parser().parse_args(list(argv)), euid=euid)


def test_launcher_one_machine():
    cmd = command("--nproc_per_node", "2", "train.py", "--lr", "0.1")
    assert cmd[:3] == ["mpirun", "-n", "2"]
    assert "--allow-run-as-root" not in cmd
    assert "--oversubscribe" in cmd and cmd[cmd.index("--bind-to") + 1] == "none"
    assert cmd[-6:] == [sys.executable, "-m", "lazytorch.distributed.worker", "train.py",
                        "--lr", "0.1"]
    root = command("--nproc-per-node=3", "train.py", euid=0)
    assert root[:4] == ["mpirun", "-n", "3", "--allow-run-as-root"]


def test_launcher_several_hosts_and_modules(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/src")
    cmd = command("--nnodes", "2", "--nproc_per_node", "4", "--hostfile", "hosts", "-m",
                  "pkg.train", "x")
    assert cmd[:3] == ["mpirun", "-n", "8"]
    assert cmd[cmd.index("--hostfile") + 1] == "hosts"
    assert cmd[cmd.index("--map-by") + 1] == "ppr:4:node"
    assert cmd[cmd.index("-x", cmd.index("--map-by")):].count("PYTHONPATH") == 1
    assert "--oversubscribe" not in cmd
    assert cmd[-4:] == ["lazytorch.distributed.worker", "-m", "pkg.train", "x"]
    extra = command("--mpi-args", "--mca btl self,tcp", "--mpirun", "/opt/mpirun",
                    "--no-python", "./a.out")
    assert extra[0] == "/opt/mpirun" and extra[-4:] == ["--mca", "btl", "self,tcp", "./a.out"]


@pytest.mark.parametrize("argv,msg", [
    (["--nnodes", "2", "t.py"], "needs --hostfile"),
    (["--hostfile", "h", "t.py"], "needs --nnodes"),
    (["--node_rank", "1", "--nnodes", "2", "--hostfile", "h", "t.py"], "once, on node 0"),
    (["--nproc_per_node", "0", "t.py"], "at least 1"),
    (["--nproc_per_node", "two", "t.py"], "must be a number"),
])
def test_launcher_refuses_inconsistent_flags(argv, msg):
    with pytest.raises(SystemExit, match=msg):
        command(*argv)


def test_launcher_dry_run_prints_the_command(capsys):
    assert run.main(["--nproc_per_node", "2", "--dry-run", "t.py", "a b"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mpirun -n 2 ") and out.rstrip().endswith("t.py 'a b'")


def test_worker_sets_torchruns_variables_from_open_mpis():
    env = {"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4",
           "OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
           "OMPI_COMM_WORLD_NODE_RANK": "1", "WORLD_SIZE": "4"}
    worker.set_environment(env)
    assert (env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"], env["LOCAL_WORLD_SIZE"],
            env["GROUP_RANK"]) == ("3", "4", "1", "2", "1")


# -------------------------------------------------------------------------------- the sampler
@pytest.mark.parametrize("n,replicas,shuffle,drop_last,seed,epoch", [
    (10, 2, True, False, 0, 0), (11, 3, True, False, 5, 2), (11, 3, True, True, 5, 2),
    (11, 3, False, False, 0, 0), (11, 3, False, True, 0, 0), (3, 8, True, False, 1, 0),
    (3, 8, False, False, 0, 0), (1000, 4, True, False, 2 ** 33 + 7, 9), (7, 1, True, True, 3, 1),
])
def test_distributed_sampler_gives_pytorchs_indices(n, replicas, shuffle, drop_last, seed,
                                                    epoch):
    torch_ = pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle, seed, drop_last)
        theirs = TorchSampler(range(n), replicas, rank, shuffle, seed, drop_last)
        ours.set_epoch(epoch)
        theirs.set_epoch(epoch)
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs)
    assert torch_ is not None


def test_distributed_sampler_shards_cover_the_dataset_and_reshuffle_per_epoch():
    shards = [list(DistributedSampler(range(10), 3, r, seed=4)) for r in range(3)]
    flat = sorted(i for s in shards for i in s)
    assert len(flat) == 12 and set(flat) == set(range(10))       # 2 padded
    s = DistributedSampler(range(50), 2, 0)
    first = list(s)
    assert list(s) == first
    s.set_epoch(1)
    assert sorted(list(s)) != first and list(s) != first
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval "
                                         r"\[0, 1\]"):
        DistributedSampler(range(4), 2, 2)


# ------------------------------------------------------------------------------ DDP's pieces
def test_post_backward_callbacks_see_the_leaves_backward_wrote():
    from lazytorch import autograd
    a = torch.ones(3, requires_grad=True)
    b = torch.ones(2, requires_grad=True)
    seen = []
    handle = autograd.register_post_backward(seen.append)
    try:
        (a * 2).sum().backward()
        assert seen == [{id(a)}]
        torch.autograd.grad((b * 3).sum(), [b])         # writes no .grad: no call
        assert len(seen) == 1
        ((a * b[:1]).sum()).backward()
        assert seen[1] == {id(a), id(b)}
    finally:
        handle.remove()
    (a * 2).sum().backward()
    assert len(seen) == 2
    np.testing.assert_allclose(a.grad.numpy(), [5.0, 5.0, 5.0])


def test_ddp_buckets_hold_one_dtype_each_within_the_cap():
    from lazytorch.nn.parallel.distributed import _buckets
    ts = [torch.zeros(10), torch.zeros(10), torch.zeros(5, dtype=torch.float64),
          torch.zeros(30), torch.zeros(1, dtype=torch.float64)]
    index = {id(t): i for i, t in enumerate(ts)}
    got = _buckets(ts, 80)
    assert [[index[id(t)] for t in b] for b in got] == [[0, 1], [2, 4], [3]]
    assert [[index[id(t)] for t in b] for b in _buckets(ts, 10 ** 6)] == [[0, 1, 3], [2, 4]]


def test_a_realize_in_a_post_backward_callback_compiles_the_same_plan_as_after_backward():
    # (called while backward's gradient graph was still referenced, the realize stored every
    # node of it unfused: DDP's steps took 10x as long)
    from lazytorch import autograd, config
    from lazytorch.serialization.values import host_arrays

    def kernels(inside: bool) -> int:
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
        ps = list(m.parameters())
        counted = []

        def realize_grads(done=None):
            before = config.STATS["kernels_launched"]
            host_arrays([p.grad for p in ps])
            counted.append(config.STATS["kernels_launched"] - before)
        handle = autograd.register_post_backward(realize_grads) if inside else None
        loss = m(torch.randn(5, 8)).square().mean()
        loss.backward()
        if handle is not None:
            handle.remove()
        else:
            realize_grads()
        assert loss.item() >= 0
        return counted[0]
    assert kernels(inside=True) == kernels(inside=False)


def test_a_wait_polls_mpi_without_sleeping_while_a_collective_is_young(monkeypatch):
    """A non-blocking collective advances only while its ranks call into MPI: a wait that slept
    between polls made each of an all_reduce's rounds cost a millisecond (a 1 MB all_reduce in
    23-28 ms instead of 0.25). The first SPIN_S of a wait polls without pause; later polls
    sleep, and the timeout still ends it."""
    from lazytorch.distributed import collectives

    class Request:
        def __init__(self, after):
            self.calls, self.after = 0, after

        def Test(self):
            self.calls += 1
            return self.calls > self.after

    sleeps = []
    monkeypatch.setattr(collectives.time, "sleep", lambda s: sleeps.append(s))
    collectives._wait(Request(20_000), 60, "all_reduce")
    assert sleeps == []
    monkeypatch.setattr(collectives, "SPIN_S", 0.0)
    collectives._wait(Request(50), 60, "all_reduce")
    assert len(sleeps) == 50
    with pytest.raises(RuntimeError, match="all_reduce timed out after 0.01 s"):
        collectives._wait(Request(10 ** 12), 0.01, "all_reduce")
