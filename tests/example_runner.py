"""Running an example script as a user does: `python examples/<name>.py ... --out DIR` from the
repository root, in a subprocess, with the example-only dependencies required."""
from __future__ import annotations

import os
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
