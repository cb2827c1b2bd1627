"""Every code snippet of the user's document (../shared/SEED.md) runs with only the import changed.

Each snippet is a script in examples/seed/, named after its section of SEED.md, that is the
document's code with its `import torch...` lines switched to lazytorch. These tests execute each
script's code here, with a `print` that records what it prints, and check the printed text and
the snippet's variables against numpy references, on both backends (compiled C, numpy
interpreter); tests/test_example_seed.py runs the same files as scripts.
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import numpy as np
import pytest

import lazytorch
from tests.conftest import no_gpu

ROOT = Path(__file__).resolve().parents[1]
SEED_DIR = ROOT / "examples" / "seed"
# the user's document, beside the repository where it is (skipped where it is not)
SEED_MD = Path(os.environ.get("LAZYTORCH_SEED_MD", ROOT.parent / "shared" / "SEED.md"))
# script name -> the section of SEED.md that holds its snippet, in the document's order
SECTIONS = {"tensors": "Tensors", "neural_networks": "Neural Networks",
            "training_loop": "Training Loop", "autograd": "Autograd",
            "custom_layers": "Custom Layers", "data_loading": "Data Loading"}
# PyTorch's default seed: a fresh process draws from it (lazytorch's default generator too)
DEFAULT_SEED = 67280421310721

_IMPORTS = {
    "import torch": "import lazytorch as torch",
    "import torch.nn as nn": "import lazytorch.nn as nn",
    "import torch.optim as optim": "import lazytorch.optim as optim",
    "from torch.utils.data import DataLoader, Dataset":
        "from lazytorch.utils.data import DataLoader, Dataset",
}


def as_lazytorch(snippet: str) -> str:
    """The snippet with its import lines switched to lazytorch, and nothing else changed."""
    return "\n".join(_IMPORTS.get(line, line) for line in snippet.split("\n"))


def script(name: str) -> Path:
    return SEED_DIR / f"{name}.py"


def split_script(name: str) -> tuple[str, str]:
    """(prelude, snippet) of examples/seed/<name>.py: the prelude is its docstring and the
    imports the document's earlier snippets made; the snippet is the rest of the file."""
    text = script(name).read_text()
    tree = ast.parse(text)
    body = tree.body
    k = 1 if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                                                                   ast.Constant) else 0
    # a prelude import stands alone, followed by a blank line, before the document's code
    lines = text.split("\n")
    cut = body[k - 1].end_lineno if k else 0
    if k < len(body) and isinstance(body[k], (ast.Import, ast.ImportFrom)) and \
            lines[body[k].end_lineno] == "" and "#" in lines[body[k].lineno - 1]:
        cut = body[k].end_lineno + 1
    return "\n".join(lines[:cut]), "\n".join(lines[cut:])


def document_snippets(text: str) -> dict[str, str]:
    """The python code blocks of SEED.md, keyed by the heading above each."""
    out, heading = {}, None
    for m in re.finditer(r"^#{2,3} ([^\n]+)$|^```python\n(.*?)^```", text, re.M | re.S):
        if m.group(1):
            heading = m.group(1)
        else:
            out[heading] = m.group(2)
    return out


def run_snippet(name: str, lines: list[str] | None = None,
                cut: str | None = None) -> tuple[dict, list[str], list[tuple]]:
    """Execute examples/seed/<name>.py here (up to the line `cut`, when given); return its
    namespace, printed lines and print arguments."""
    lines = [] if lines is None else lines
    args: list[tuple] = []

    def record(*a, sep=" ", end="\n", **_):
        args.append(a)
        lines.extend((sep.join(str(v) for v in a) + end).splitlines())

    code = script(name).read_text()
    if cut is not None:
        code = code.split(cut)[0]
    ns = {"__name__": "__seed__", "print": record}
    exec(compile(code, str(script(name)), "exec"), ns)
    return ns, lines, args


def test_every_script_is_its_snippet_with_only_imports_changed():
    assert sorted(p.stem for p in SEED_DIR.glob("*.py")) == sorted(SECTIONS)
    for name in SECTIONS:
        prelude, code = split_script(name)
        prelude_code = [ln for ln in prelude.split("\n")[1:] if ln.strip()]
        assert all(ln.startswith("import lazytorch") for ln in prelude_code), prelude
        # every lazytorch line is an import that maps back to the document's torch import
        back = {v: k for k, v in _IMPORTS.items()}
        lines = code.split("\n")
        changed = [ln for ln in lines if "lazytorch" in ln]
        assert all(ln in back for ln in changed), changed
        assert not any(re.search(r"\btorch\b", ln) and "lazytorch" not in ln and
                       ln.lstrip().startswith(("import", "from")) for ln in lines)
        assert as_lazytorch("\n".join(back.get(ln, ln) for ln in lines)) == code


def test_scripts_are_the_documents_snippets():
    if not SEED_MD.exists():
        pytest.skip(f"the user's document is not here ({SEED_MD})")
    doc = document_snippets(SEED_MD.read_text())
    assert sorted(doc) == sorted(SECTIONS.values())
    for name, heading in SECTIONS.items():
        assert split_script(name)[1] == as_lazytorch(doc[heading]), name


@no_gpu
def test_tensors(backend):
    lines: list[str] = []
    with pytest.raises((RuntimeError, AssertionError), match="not compiled with CUDA enabled"):
        run_snippet("tensors", lines)
    # Everything before the GPU line ran, and printed as PyTorch prints it.
    assert lines == ["tensor([5, 7, 9])"]


def test_tensors_without_the_gpu_line(backend):
    ns, lines, _ = run_snippet("tensors", cut="# GPU tensors")
    assert lines == ["tensor([5, 7, 9])"]
    assert ns["z"].dtype == lazytorch.int64
    np.testing.assert_array_equal(ns["z"].numpy(), np.array([1, 2, 3]) + np.array([4, 5, 6]))
    # the same line a CUDA-less PyTorch user writes instead works: .to('cpu') is a no-op
    assert ns["x"].to("cpu").tolist() == [1, 2, 3]


def test_neural_networks(backend):
    ns, lines, args = run_snippet("neural_networks")
    out, x, fc = ns["output"], ns["x"], ns["model"].fc
    assert tuple(out.shape) == (5, 1)
    assert len(args) == 1 and args[0][0] is out
    assert lines[0].startswith("tensor([[") and len(lines) == 5 and "grad_fn=<" in lines[-1]
    ref = x.numpy() @ fc.weight.detach().numpy().T + fc.bias.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-5, atol=1e-6)
    # PyTorch's default init of Linear(10, 1): U(-1/sqrt(10), 1/sqrt(10)) for weight and bias
    bound = 1 / np.sqrt(10)
    assert np.all(np.abs(fc.weight.detach().numpy()) <= bound)
    assert [n for n, _ in ns["model"].named_parameters()] == ["fc.weight", "fc.bias"]


def _numpy_sgd_losses(X, y, w, b, lr=0.01, steps=100):
    """Full-batch SGD on MSE for a linear model, in float64: the loss at each step."""
    losses = []
    for _ in range(steps):
        r = X @ w.T + b - y
        losses.append(float(np.mean(r ** 2)))
        g = 2 * r / r.size
        w, b = w - lr * (g.T @ X), b - lr * g.sum(0)
    return losses


def test_training_loop(backend):
    lazytorch.manual_seed(0)
    ns, lines, _ = run_snippet("training_loop")
    # The printed lines look like PyTorch's: "Epoch 0, Loss: 1.2345..." every 10 epochs.
    pat = re.compile(r"^Epoch (\d+), Loss: (\d+\.\d+(?:e-?\d+)?)$")
    matches = [pat.match(line) for line in lines]
    assert all(matches), lines
    assert [int(m.group(1)) for m in matches] == list(range(0, 100, 10))
    printed = [float(m.group(2)) for m in matches]
    assert printed[-1] < printed[0]
    assert all(a > b for a, b in zip(printed, printed[1:]))   # full-batch GD on a convex loss
    # Replay the same data and initial weights (same seed, same draws) through numpy SGD.
    lazytorch.manual_seed(0)
    X, y = lazytorch.randn(100, 10), lazytorch.randn(100, 1)
    init = lazytorch.nn.Linear(10, 1)
    np.testing.assert_array_equal(X.numpy(), ns["X"].numpy())
    ref = _numpy_sgd_losses(X.numpy().astype(np.float64), y.numpy().astype(np.float64),
                            init.weight.detach().numpy().astype(np.float64),
                            init.bias.detach().numpy().astype(np.float64))
    np.testing.assert_allclose(printed, ref[::10], rtol=1e-5)


def test_autograd(backend):
    ns, lines, _ = run_snippet("autograd")
    assert lines == ["tensor(4.)"]
    assert ns["x"].grad.item() == 4.0          # d(x^2)/dx at x = 2
    assert ns["x"].grad.shape == ()


def test_custom_layers(backend):
    ns, lines, _ = run_snippet("custom_layers")
    assert lines == ["tensor([1., 4., 9.])"]
    np.testing.assert_array_equal(ns["output"].numpy(), np.array([1.0, 2.0, 3.0]) ** 2)
    assert list(ns["layer"].parameters()) == []


def test_data_loading(backend):
    ns, lines, args = run_snippet("data_loading")
    batches = [a[0] for a in args]
    assert len(batches) == 10
    for batch in batches:
        assert isinstance(batch, list) and len(batch) == 2       # default_collate keeps the list
        assert tuple(batch[0].shape) == (10, 10) and tuple(batch[1].shape) == (10, 1)
    assert lines[0].startswith("[tensor([[")
    # shuffled, but every sample appears exactly once, with its own label
    data, labels = ns["data"].numpy(), ns["labels"].numpy()
    seen = np.concatenate([b[0].numpy() for b in batches])
    seen_labels = np.concatenate([b[1].numpy() for b in batches])
    order = [int(np.flatnonzero((data == row).all(1))[0]) for row in seen]
    assert sorted(order) == list(range(100))
    np.testing.assert_array_equal(seen_labels, labels[order])
