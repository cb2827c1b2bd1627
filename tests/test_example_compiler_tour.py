"""examples/compiler_tour.py, the tour of the compiler linked from the README, runs and shows
what it promises: the IR, one fused kernel's C source, a plan-cache hit, softmax's rows."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_compiler_tour_runs():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "examples/compiler_tour.py"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert "x.sum(1): tensor([ 6., 15.])" in out
    assert re.search(r"%\d+: f32\[2,3\] = mul", out)               # the printed IR
    assert "1 kernel(s):" in out and "void kernel_0(" in out         # one fused C kernel
    assert "y = tensor([48., 60.])" in out
    m = re.search(r"plan cache hits: (\d+)\s+kernels compiled: (\d+)", out)
    assert m and int(m.group(1)) == 1 and int(m.group(2)) == 0      # same structure: replayed
    assert "rows sum to one: tensor([1.0000, 1.0000, 1.0000, 1.0000])" in out
