"""`python -m lazytorch script.py` and install_as_torch(): unmodified PyTorch scripts import
lazytorch under the name torch, one module object under both names (checked in fresh
processes, since the hook changes what `import torch` means for the whole process)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, tmp_path, script: str | None = None, name: str = "script.py", **kw):
    env = dict(os.environ, PYTHONPATH=ROOT)
    if script is not None:
        (tmp_path / name).write_text(textwrap.dedent(script))
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, **kw)


SCRIPT = """
    import pickle
    import sys

    import torch
    import torch.nn as nn
    from torch.nn import functional as F
    import torch.nn.functional
    from torch.utils.data import DataLoader, TensorDataset
    import torch.backends.cudnn as cudnn
    import torch.cuda.amp
    import lazytorch

    import helper  # a module next to the script, as `python script.py` finds it

    assert torch is lazytorch
    assert nn is lazytorch.nn and torch.nn is lazytorch.nn
    assert F is lazytorch.nn.functional and torch.nn.functional is F
    assert sys.modules["torch.nn.functional"] is sys.modules["lazytorch.nn.functional"]
    assert cudnn is lazytorch.backends.cudnn
    assert DataLoader is lazytorch.utils.data.DataLoader
    # each module keeps its own spec: relative imports and reload() see lazytorch's names
    assert torch.__spec__.name == "lazytorch" and nn.__spec__.name == "lazytorch.nn"
    # pickles name lazytorch's modules, and a pickle naming torch's loads through the alias
    assert pickle.loads(pickle.dumps(F.relu)) is F.relu
    assert pickle.loads(b"ctorch.nn.functional\\nrelu\\n.") is F.relu
    assert pickle.loads(b"ctorch\\nfloat32\\n.") is torch.float32

    cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = torch.compile(nn.Linear(3, 2).to(device))
    x = torch.ones(4, 3)
    loader = DataLoader(TensorDataset(x, torch.zeros(4, 2)), batch_size=2)
    with torch.no_grad():
        for xb, yb in loader:
            out = F.mse_loss(model(xb), yb)
    print("argv", sys.argv[1:], "name", __name__, "helper", helper.VALUE, "device", device,
          "loss", float(out) >= 0)
"""


def test_script_runs_with_torch_names_resolved_to_lazytorch(tmp_path):
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    r = _run(["-m", "lazytorch", "script.py", "a", "--flag", "3"], tmp_path, SCRIPT)
    assert r.returncode == 0, r.stderr
    assert "argv ['a', '--flag', '3'] name __main__ helper 42 device cpu loss True" in r.stdout


def test_missing_submodule_names_both_modules_and_errors_propagate(tmp_path):
    r = _run(["-m", "lazytorch", "script.py"], tmp_path, """
        import torch
        try:
            import torch.xyz_not_there
        except ModuleNotFoundError as e:
            print("missing:", e, "|", e.name)
        try:
            from torch._dynamo import config
        except ImportError as e:
            print("private:", type(e).__name__)
        import sys
        sys.exit(3)
    """)
    assert r.returncode == 3, r.stderr
    assert ("missing: No module named 'torch.xyz_not_there' (lazytorch has no "
            "'lazytorch.xyz_not_there') | torch.xyz_not_there") in r.stdout
    assert "private: ModuleNotFoundError" in r.stdout
    # an exception in the script is the script's traceback and exit status 1
    r = _run(["-m", "lazytorch", "script.py"], tmp_path, "import torch\nraise KeyError('boom')\n")
    assert r.returncode == 1 and "KeyError: 'boom'" in r.stderr


def test_module_mode_usage_and_a_missing_script(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text("import sys, torch\nprint('module', __name__, sys.argv, "
                                  "torch.__name__)\n")
    r = _run(["-m", "lazytorch", "-m", "pkg.train", "x"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "module __main__ " in r.stdout and "'x'] lazytorch" in r.stdout
    r = _run(["-m", "lazytorch"], tmp_path)
    assert r.returncode == 2 and "usage: python -m lazytorch script.py" in r.stderr
    r = _run(["-m", "lazytorch", "nope.py"], tmp_path)
    assert r.returncode == 2 and "can't open file 'nope.py'" in r.stderr


def test_install_as_torch_in_process_and_its_refusal_after_pytorch(tmp_path):
    r = _run(["script.py"], tmp_path, """
        import sys
        import lazytorch
        lazytorch.install_as_torch()
        lazytorch.install_as_torch()  # again: nothing more happens
        import torch, torch.optim
        assert torch is lazytorch and torch.optim is lazytorch.optim
        assert sum(type(f).__name__ == "TorchAliasFinder" for f in sys.meta_path) == 1
        lazytorch.uninstall_as_torch()
        assert "torch" not in sys.modules and "torch.optim" not in sys.modules
        assert not any(type(f).__name__ == "TorchAliasFinder" for f in sys.meta_path)
        print("ok")
    """)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
    pytest.importorskip("torch")
    r = _run(["script.py"], tmp_path, """
        import torch  # PyTorch itself
        import lazytorch
        try:
            lazytorch.install_as_torch()
        except RuntimeError as e:
            print("refused:", e)
    """)
    assert r.returncode == 0, r.stderr
    assert "refused: install_as_torch(): PyTorch is already imported" in r.stdout
