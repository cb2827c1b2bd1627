"""lazytorch.distributed over 2 ranks on loopback, started by the launcher under mpirun: every
collective x op x dtype (contiguous, views, lazy values, async), DDP against one process with
the whole batch, and ranks that die, raise or stall. The ranks check themselves against numpy
(tests/dist_ranks.py); skipped only where mpirun (or mpi4py) is absent."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("mpirun") is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs Open MPI's mpirun and mpi4py (the distributed extra)")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def launch(scenario: str, timeout: float = 240) -> tuple[int, str, float]:
    """Run tests/dist_ranks.py SCENARIO on 2 ranks through the launcher: (exit status, output,
    seconds)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "lazytorch.distributed.run", "--nproc_per_node",
                        "2", os.path.join("tests", "dist_ranks.py"), scenario], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr, time.monotonic() - t0


def test_collectives_every_op_and_dtype_contiguous_views_lazy_and_async():
    rc, out, _ = launch("collectives")
    assert rc == 0, out[-4000:]
    assert "ok collectives 0" in out and "ok collectives 1" in out


def test_ddp_over_two_ranks_ends_where_one_process_with_twice_the_batch_does():
    rc, out, _ = launch("ddp")
    assert rc == 0, out[-4000:]
    assert "ok ddp 0" in out and "ok ddp 1" in out


def test_a_rank_that_exits_ends_the_job_instead_of_leaving_the_others_waiting():
    rc, out, secs = launch("die", timeout=120)
    assert rc != 0 and "ok die" not in out
    assert "exited with non-zero status" in out or "exit code" in out.lower(), out[-3000:]
    assert secs < 100


def test_an_uncaught_exception_in_one_rank_aborts_every_rank():
    rc, out, _ = launch("fail", timeout=120)
    assert rc != 0 and "ok fail" not in out
    assert "ValueError: rank 1 failed on purpose" in out


def test_a_rank_that_never_joins_makes_the_collective_raise_after_the_timeout():
    rc, out, _ = launch("stall", timeout=120)
    assert rc != 0 and "ok stall" not in out
    assert "RuntimeError: all_reduce timed out after 2 s" in out, out[-3000:]
    # raised at the group's timeout (2 s), not after the stalled rank's 60 s sleep
    secs = float(out.split("rank 0 raised after ")[1].split(" s")[0])
    assert 1.9 <= secs < 10
