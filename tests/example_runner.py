"""Running an example script as a user does: `python examples/<name>.py ... --out DIR` from the
repository root, in a subprocess, with the example-only dependencies required."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_example(name: str, out: Path, *args: str, timeout: int = 300,
                needs: tuple[str, ...] = ("tqdm", "matplotlib", "sklearn")):
    """The finished process (stdout, stderr, returncode) of examples/<name>.py."""
    for module in needs:
        pytest.importorskip(module)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, f"examples/{name}.py", *args, "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def load_example(name: str):
    """examples/<name>.py imported as a module (with examples/ on sys.path for its sibling
    imports), without running its main."""
    examples = str(ROOT / "examples")
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod   # dataclasses look the module up
    sys.path.insert(0, examples)
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[name]
        sys.path.remove(examples)
    return mod


def run_text_example(name: str, out: Path):
    """examples/<name>.py --quick (char_gpt, char_lstm): it passes, its losses fall below the
    unigram baseline less its margin, it reports its speed and prints samples as it learns,
    and it writes its plot. Returns the module, for the checkpoint's checks."""
    r = run_example(name, out, "--quick", timeout=600, needs=("tqdm", "matplotlib"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = re.search(r"final train loss ([\d.]+) val loss ([\d.]+) \(unigram ([\d.]+), "
                  r"uniform ([\d.]+)\)", r.stdout)
    assert m, r.stdout[-3000:]
    train, val, unigram, uniform = map(float, m.groups())
    mod = load_example(name)
    assert val < unigram - mod.QUICK_MARGIN < uniform
    assert train < unigram - mod.QUICK_MARGIN
    assert re.search(r"time per step [\d.]+ ms \(median\)", r.stdout)
    assert re.search(r"kernels compiled \d+, plan-cache hits \d+", r.stdout)
    assert r.stdout.count("sample: ") >= 2    # samples printed as it learns
    assert (out / "loss.png").read_bytes()[:8] == PNG_MAGIC
    return mod
