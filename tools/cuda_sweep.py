"""Compile every CUDA kernel a collection run wrote (tests/cuda_collect.py, conftest's
LAZYTORCH_CUDA_COLLECT=DIR) with nvcc, for each architecture asked (sm_90 and sm_80 by
default), and print the counts and the failures: nvcc's log with the kernel's name and the test
that made it. Exit status 1 on any failure (a kernel nvcc rejects, or a graph the CUDA renderer
failed on during the collection), 2 when the folder holds no kernel.

    PYTHONPATH=. python tools/cuda_sweep.py DIR [--arch 90 --arch 80] [--jobs N]

The kernels are grouped into modules by the first hex digit of their code's hash (nvcc costs
about a second a run and some 30 ms of CPU a kernel per architecture), compiled in parallel over
the cores through nvcc's disk cache (runtime/cuda/nvcc.py): a second sweep of the same kernels
runs no nvcc, and a changed kernel compiles only its module again. A module nvcc rejects is
split until each failure is one kernel's: the kernels its log names (by line or by symbol) are
set aside and the rest compiled again, halves where the log names none."""
from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from lazytorch.compiler.codegen.cuda import CudaRenderer
from lazytorch.compiler.kernel import FNAME
from lazytorch.runtime.cuda import nvcc
from lazytorch.runtime.protocol import CompileError

HEADER = "// lazytorch-cuda-collect test: "
GROUPS = "0123456789abcdef"
R = CudaRenderer()


@dataclass(frozen=True)
class Collected:
    """One collected kernel: its hash (the file's name), its schedule's name and ops, the test
    that made it and its code (its function named FNAME)."""

    sha: str
    what: str
    test: str
    code: str

    @property
    def symbol(self) -> str:
        return f"k_{self.sha[:16]}"


def made_by(folder: str) -> dict[str, set[str]]:
    """Test file -> the hashes of the kernels its tests made (the processes' made-*.txt)."""
    out: dict[str, set[str]] = {}
    for path in glob.glob(os.path.join(folder, "made-*.txt")):
        with open(path) as f:
            for line in f:
                test, sha = line.split()
                out.setdefault(test, set()).add(sha)
    return out


def read(folder: str) -> tuple[list[Collected], list[tuple[str, str]]]:
    """The kernels of a collection folder, and its renderer failures (test, traceback)."""
    kernels, errors = [], []
    for path in sorted(glob.glob(os.path.join(folder, "*.cu"))):
        with open(path) as f:
            head, what, code = f.read().split("\n", 2)
        kernels.append(Collected(os.path.basename(path)[:-3], what.removeprefix("// kernel: "),
                                 head.removeprefix(HEADER), code))
    for path in sorted(glob.glob(os.path.join(folder, "*.err"))):
        with open(path) as f:
            head, trace = f.read().split("\n", 1)
        errors.append((head.removeprefix(HEADER), trace))
    return kernels, errors


def module(ks: list[Collected]) -> str:
    """The module of kernels `ks`, each named by its symbol."""
    return R.render_module([k.code.replace(FNAME, k.symbol) for k in ks])


def _culprits(ks: list[Collected], log: str) -> list[Collected]:
    """The kernels of module(ks) that nvcc's `log` names: by symbol (ptxas) or by the
    line of the error (the front end)."""
    named = [k for k in ks if k.symbol in log]
    prelude = R.render_module([]).count("\n")
    starts, line = [], prelude
    for k in ks:           # render_module: the prelude, a newline, the kernels apart by one
        starts.append(line + 1)
        line += k.code.count("\n") + 2
    lines = {int(n) for n in re.findall(r"\.cu\((\d+)\): error", log)}
    at = [k for k, s, e in zip(ks, starts, starts[1:] + [10**9]) if any(s <= n < e
                                                                          for n in lines)]
    return list({k.sha: k for k in named + at}.values())


def compile_all(kernels: list[Collected], arch: int, pool: ThreadPoolExecutor
                ) -> tuple[int, list[tuple[Collected, str]]]:
    """(modules compiled, failures (kernel, nvcc's log)) of every kernel for `arch`."""
    failures: list[tuple[Collected, str]] = []
    groups = [[k for k in kernels if k.sha[0] == d] for d in GROUPS]
    todo = [g for g in groups if g]
    runs = 0

    def one(ks: list[Collected]) -> str | None:
        try:
            nvcc.cubin(module(ks), arch, [k.symbol for k in ks])
        except CompileError as e:
            return str(e)
        return None

    while todo:
        runs += len(todo)
        logs = list(pool.map(one, todo))
        later = []
        for ks, log in zip(todo, logs):
            if log is None:
                continue
            if len(ks) == 1:
                failures.append((ks[0], log))
                continue
            bad = _culprits(ks, log)
            if bad and len(bad) < len(ks):
                later += [[k] for k in bad]
                later.append([k for k in ks if k not in bad])
            else:
                later += [ks[:len(ks) // 2], ks[len(ks) // 2:]]
        todo = later
    return runs, failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="the collection folder (LAZYTORCH_CUDA_COLLECT)")
    ap.add_argument("--arch", type=int, action="append",
                    help="a compute capability (90: sm_90); default 90 and 80")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="nvcc processes at once (default: the cores)")
    args = ap.parse_args(argv)
    kernels, errors = read(args.folder)
    made = made_by(args.folder)
    print(f"{len(kernels)} distinct CUDA kernels from {len(made)} test files in {args.folder}")
    for test, shas in sorted(made.items()):
        print(f"  {len(shas):5d}  {test}")
    if not kernels and not errors:
        print("nothing collected")
        return 2
    for test, trace in errors:
        print(f"\nRENDER FAILED in {test}:\n{trace}")
    bad = 0
    with ThreadPoolExecutor(args.jobs) as pool:
        for arch in args.arch or [90, 80]:
            t0 = time.perf_counter()
            runs, failures = compile_all(kernels, arch, pool)
            print(f"sm_{arch}: {len(kernels) - len(failures)} of {len(kernels)} kernels compile "
                  f"({runs} modules, {time.perf_counter() - t0:.1f} s)")
            for k, log in failures:
                print(f"\nNVCC REJECTED {k.symbol} for sm_{arch}: {k.what}\n  made by {k.test}\n"
                      f"{log}\n{k.code}")
            bad += len(failures)
    if errors:
        print(f"{len(errors)} graphs the CUDA renderer failed on")
    return 1 if bad or errors else 0


if __name__ == "__main__":
    sys.exit(main())
