"""The launcher: torchrun's flags over mpirun.

`python -m lazytorch.distributed.run --nproc_per_node 2 train.py args` starts 2 ranks of
train.py on this machine through Open MPI's mpirun; `--nnodes N --hostfile hosts` starts
N x nproc_per_node ranks across the hosts of an MPI hostfile, launched once from one of them
(MPI starts the remote ranks itself, so there is no launcher per node as with torchrun). Each
rank runs under lazytorch.distributed.worker, which sets RANK, LOCAL_RANK and WORLD_SIZE as
torchrun does. `--dry-run` prints the mpirun command instead of running it.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys

# the environment each rank needs from the launching shell (mpirun passes it on to its local
# ranks by itself; -x takes it to other hosts)
_FORWARD = ("PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "OMP_NUM_THREADS", "VIRTUAL_ENV")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lazytorch.distributed.run", allow_abbrev=False,
        description="Start a lazytorch script on several ranks over MPI (torchrun's flags).")
    p.add_argument("--nproc_per_node", "--nproc-per-node", default="1",
                   help="ranks per host: a number, or 'auto'/'cpu' for one per core")
    p.add_argument("--nnodes", default="1", help="hosts (needs --hostfile when more than 1)")
    p.add_argument("--node_rank", "--node-rank", type=int, default=0,
                   help="accepted for torchrun's command lines: MPI launches every host from "
                        "node 0, so only 0 is valid")
    p.add_argument("--hostfile", help="an MPI hostfile naming the hosts (one per line)")
    p.add_argument("--master_addr", "--master-addr", help="accepted and unused: MPI connects "
                   "the ranks")
    p.add_argument("--master_port", "--master-port", help="accepted and unused")
    p.add_argument("--standalone", action="store_true", help="accepted: one host is the default")
    p.add_argument("--mpirun", default=os.environ.get("LAZYTORCH_MPIRUN", "mpirun"),
                   help="the mpirun to use")
    p.add_argument("--mpi-args", default="", help="more arguments for mpirun (one string)")
    p.add_argument("--dry-run", action="store_true", help="print the mpirun command and exit")
    p.add_argument("-m", "--module", action="store_true",
                   help="run the target as a module (python -m) instead of a script")
    p.add_argument("--no-python", "--no_python", action="store_true",
                   help="run the target as an executable, without the Python worker")
    p.add_argument("target", help="the training script (or module with -m)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    return p


def _count(value: str, what: str) -> int:
    if value in ("auto", "cpu"):
        return os.cpu_count() or 1
    try:
        n = int(value)
    except ValueError:
        raise SystemExit(f"error: {what} must be a number, got {value!r}") from None
    if n < 1:
        raise SystemExit(f"error: {what} must be at least 1, got {n}")
    return n


def command(ns: argparse.Namespace, euid: int | None = None) -> list[str]:
    """The mpirun command line for the parsed flags (`euid`: the user it runs as; root needs
    --allow-run-as-root)."""
    nproc = _count(ns.nproc_per_node, "--nproc_per_node")
    nnodes = _count(str(ns.nnodes).split(":")[-1], "--nnodes")
    if ns.node_rank != 0:
        raise SystemExit("error: MPI starts every host's ranks from one launch: run the "
                         "launcher once, on node 0, with --hostfile (not once per node)")
    cmd = [ns.mpirun, "-n", str(nproc * nnodes)]
    if (os.geteuid() if euid is None else euid) == 0:
        cmd.append("--allow-run-as-root")
    if nnodes == 1:
        if ns.hostfile:
            raise SystemExit("error: --hostfile needs --nnodes (the number of its hosts)")
        # one host: as many ranks as asked whatever its slots, shared memory between them
        # (without the single-copy mechanism, which containers often forbid)
        cmd += ["--oversubscribe", "--mca", "btl_vader_single_copy_mechanism", "none"]
    else:
        if not ns.hostfile:
            raise SystemExit(f"error: --nnodes {nnodes} needs --hostfile naming the hosts")
        cmd += ["--hostfile", ns.hostfile, "--map-by", f"ppr:{nproc}:node"]
        for name in _FORWARD:
            if name in os.environ:
                cmd += ["-x", name]
    # the kernels' threads take the cores themselves (the worker gives each rank its share)
    cmd += ["--bind-to", "none"]
    cmd += shlex.split(ns.mpi_args)
    if ns.no_python:
        return cmd + [ns.target, *ns.args]
    cmd += [sys.executable, "-m", "lazytorch.distributed.worker"]
    if ns.module:
        cmd.append("-m")
    return cmd + [ns.target, *ns.args]


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    cmd = command(ns)
    if ns.dry_run:
        print(shlex.join(cmd))
        return 0
    if shutil.which(cmd[0]) is None:
        raise SystemExit(f"error: {cmd[0]} not found: install Open MPI (Debian: apt-get install "
                         "openmpi-bin libopenmpi-dev) or pass --mpirun")
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
