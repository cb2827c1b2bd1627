"""docs/missing_api.txt lists exactly the names of tools/api_names.txt that lazytorch lacks, and
tools/api_names.txt is what the tool derives from PyTorch (where PyTorch is installed)."""
from __future__ import annotations

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool():
    spec = importlib.util.spec_from_file_location("api_coverage",
                                                  os.path.join(ROOT, "tools", "api_coverage.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_missing_list_is_current():
    cov = _tool()
    names = cov.load_names()
    missing_now = cov.missing(names)
    listed = cov.read_missing()
    now_present = sorted(set(listed) - set(missing_now))
    newly_missing = sorted(set(missing_now) - set(listed))
    assert not now_present and not newly_missing, (
        f"docs/missing_api.txt is stale (run python tools/api_coverage.py --write): listed as "
        f"missing but present now: {now_present}; missing but not listed: {newly_missing}")
    assert listed == missing_now  # and in the names' order
    with open(cov.MISSING) as f:
        assert f.read() == cov.render_missing(names, missing_now)  # the counts too
    with open(cov.README) as f:
        assert cov.readme_count(names, missing_now) in f.read(), "README's counts are stale"


def test_lookup_follows_attributes_and_submodules():
    cov = _tool()
    assert cov.lazytorch_has("torch.Tensor.new_zeros")
    assert cov.lazytorch_has("torch.nn.functional.relu")
    assert cov.lazytorch_has("torch.utils.data.DataLoader")
    assert cov.lazytorch_has("torch.backends.cudnn.is_available")
    assert not cov.lazytorch_has("torch.Tensor.no_such_method")
    assert not cov.lazytorch_has("torch.no_such_module.f")


def test_names_file_is_what_pytorch_gives():
    pt = pytest.importorskip("torch")
    if not pt.__version__.startswith("2.13"):
        pytest.skip(f"tools/api_names.txt was generated from PyTorch 2.13, not {pt.__version__}")
    cov = _tool()
    assert cov.pytorch_names() == cov.load_names()
