"""Every code snippet of the user's document (../shared/SEED.md) runs with only the import changed.

Each snippet is copied verbatim below, under the name of its section in SEED.md. The test rewrites
nothing but its `import torch...` lines (`as_lazytorch`) and executes the result with a `print`
that records what the snippet prints, then checks the printed text and the snippet's variables
against numpy references. Each runs on both backends (compiled C, numpy interpreter).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import lazytorch
from tests.conftest import no_gpu

# SEED.md, "Basic Workflow" > "Tensors"
TENSORS = """\
import torch

# Create tensors
x = torch.tensor([1, 2, 3])
y = torch.tensor([4, 5, 6])

# Operations
z = x + y
print(z)

# GPU tensors
x_gpu = x.to('cuda')
print(x_gpu)
"""

# SEED.md, "Basic Workflow" > "Neural Networks"
NEURAL_NETWORKS = """\
import torch
import torch.nn as nn

# Define a simple model
class SimpleModel(nn.Module):
    def __init__(self):
        super(SimpleModel, self).__init__()
        self.fc = nn.Linear(10, 1)

    def forward(self, x):
        return self.fc(x)

# Instantiate and use the model
model = SimpleModel()
x = torch.randn(5, 10)
output = model(x)
print(output)
"""

# SEED.md, "Basic Workflow" > "Training Loop"
TRAINING_LOOP = """\
import torch
import torch.nn as nn
import torch.optim as optim

# Data
X = torch.randn(100, 10)
y = torch.randn(100, 1)

# Model
model = nn.Linear(10, 1)
criterion = nn.MSELoss()
optimizer = optim.SGD(model.parameters(), lr=0.01)

# Training loop
for epoch in range(100):
    optimizer.zero_grad()
    predictions = model(X)
    loss = criterion(predictions, y)
    loss.backward()
    optimizer.step()

    if epoch % 10 == 0:
        print(f"Epoch {epoch}, Loss: {loss.item()}")
"""

# SEED.md, "Advanced Features" > "Autograd"
AUTOGRAD = """\
import torch

# Automatic differentiation
x = torch.tensor(2.0, requires_grad=True)
y = x ** 2

y.backward()
print(x.grad)  # Gradient of y with respect to x
"""

# SEED.md, "Advanced Features" > "Custom Layers"
CUSTOM_LAYERS = """\
import torch
import torch.nn as nn

# Define a custom layer
class CustomLayer(nn.Module):
    def __init__(self):
        super(CustomLayer, self).__init__()

    def forward(self, x):
        return x ** 2

# Use the custom layer
layer = CustomLayer()
x = torch.tensor([1.0, 2.0, 3.0])
output = layer(x)
print(output)
"""

# SEED.md, "Advanced Features" > "Data Loading". The document's snippet uses `torch` without
# importing it (it continues the earlier ones), so it runs where `torch` is already imported.
DATA_LOADING = """\
from torch.utils.data import DataLoader, Dataset

# Custom dataset
class CustomDataset(Dataset):
    def __init__(self, data, labels):
        self.data = data
        self.labels = labels

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        return self.data[idx], self.labels[idx]

# DataLoader
data = torch.randn(100, 10)
labels = torch.randn(100, 1)
dataset = CustomDataset(data, labels)
dataloader = DataLoader(dataset, batch_size=10, shuffle=True)

for batch in dataloader:
    print(batch)
"""

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


def run_snippet(snippet: str, lines: list[str] | None = None,
                **env) -> tuple[dict, list[str], list[tuple]]:
    """Execute the lazytorch form of a snippet; return its namespace, printed lines and args."""
    lines = [] if lines is None else lines
    args: list[tuple] = []

    def record(*a, sep=" ", end="\n", **_):
        args.append(a)
        lines.extend((sep.join(str(v) for v in a) + end).splitlines())

    ns = {"__name__": "__seed__", "print": record, **env}
    exec(compile(as_lazytorch(snippet), "<SEED.md>", "exec"), ns)
    return ns, lines, args


def test_only_imports_change():
    for snippet in (TENSORS, NEURAL_NETWORKS, TRAINING_LOOP, AUTOGRAD, CUSTOM_LAYERS,
                    DATA_LOADING):
        new = as_lazytorch(snippet).split("\n")
        old = snippet.split("\n")
        changed = [(a, b) for a, b in zip(old, new) if a != b]
        assert changed and all(a.lstrip().startswith(("import torch", "from torch")) and
                               "lazytorch" in b for a, b in changed)
        assert not any(re.search(r"\btorch\b", b) and "lazytorch" not in b and
                       b.lstrip().startswith(("import", "from")) for b in new)


@no_gpu
def test_tensors(backend):
    lines: list[str] = []
    with pytest.raises((RuntimeError, AssertionError), match="not compiled with CUDA enabled"):
        run_snippet(TENSORS, lines)
    # Everything before the GPU line ran, and printed as PyTorch prints it.
    assert lines == ["tensor([5, 7, 9])"]


def test_tensors_without_the_gpu_line(backend):
    cpu_part = TENSORS.split("# GPU tensors")[0]
    ns, lines, _ = run_snippet(cpu_part)
    assert lines == ["tensor([5, 7, 9])"]
    assert ns["z"].dtype == lazytorch.int64
    np.testing.assert_array_equal(ns["z"].numpy(), np.array([1, 2, 3]) + np.array([4, 5, 6]))
    # the same line a CUDA-less PyTorch user writes instead works: .to('cpu') is a no-op
    assert ns["x"].to("cpu").tolist() == [1, 2, 3]


def test_neural_networks(backend):
    ns, lines, args = run_snippet(NEURAL_NETWORKS)
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
    ns, lines, _ = run_snippet(TRAINING_LOOP)
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
    ns, lines, _ = run_snippet(AUTOGRAD)
    assert lines == ["tensor(4.)"]
    assert ns["x"].grad.item() == 4.0          # d(x^2)/dx at x = 2
    assert ns["x"].grad.shape == ()


def test_custom_layers(backend):
    ns, lines, _ = run_snippet(CUSTOM_LAYERS)
    assert lines == ["tensor([1., 4., 9.])"]
    np.testing.assert_array_equal(ns["output"].numpy(), np.array([1.0, 2.0, 3.0]) ** 2)
    assert list(ns["layer"].parameters()) == []


def test_data_loading(backend):
    ns, lines, args = run_snippet(DATA_LOADING, torch=lazytorch)
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
