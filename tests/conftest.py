"""Shared test fixtures: run on both backends, seeded numpy data, a numpy comparison helper."""
from __future__ import annotations

import os

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.runtime import native


def pytest_configure(config):
    if os.environ.get("LAZYTORCH_CUDA_COLLECT"):
        # every graph the C backend compiles also writes its CUDA kernels there
        from tests import cuda_collect
        cuda_collect.install(os.environ["LAZYTORCH_CUDA_COLLECT"])
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU (pycuda and a driver): skipped "
                                       "without one; `pytest -m cuda` runs only these")
    config.addinivalue_line("markers", "heavy: trains a whole example or compiles every CUDA "
                                       "kernel with nvcc (seconds to a minute each); "
                                       "`-m 'not heavy'` leaves them out")


# the tests marked heavy (by file, or file::test)
_HEAVY = ("test_example_quickstart.py", "test_example_resnet_digits.py",
          "test_example_char_gpt.py", "test_example_char_lstm.py",
          "test_example_policy_gradient.py",
          "test_cuda_codegen.py::"
          "test_every_kernel_of_the_op_autograd_and_nn_suites_compiles_for_sm_90_and_sm_80",
          "test_cuda_codegen.py::"
          "test_every_kernel_of_the_workloads_the_suites_leave_out_compiles_for_sm_90_and_sm_80")


def pytest_collection_modifyitems(config, items):
    """Tests marked cuda skip where no GPU can run (nothing starts CUDA to find out where
    pycuda is not installed); the heavy ones get their mark."""
    for item in items:
        where = item.nodeid.rsplit("/", 1)[-1]
        if where.split("::")[0] in _HEAVY or where.split("[")[0] in _HEAVY:
            item.add_marker(pytest.mark.heavy)
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if marked and not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="no CUDA GPU here (pycuda, a driver and a device)")
        for item in marked:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _test_device():
    """LAZYTORCH_TEST_DEVICE=cuda runs a test file's tests with that default device: the
    tensors they make from data and creation functions are put there, and their numpy
    references check what the device computed (tests/test_cuda_gpu.py runs the op, autograd and
    nn suites so)."""
    where = os.environ.get("LAZYTORCH_TEST_DEVICE")
    if not where:
        yield
        return
    torch.set_default_device(where)
    try:
        yield
    finally:
        torch.set_default_device(None)


# tests of what a machine without a usable GPU answers
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU runs here")


@pytest.fixture(params=["c", "interp"])
def backend(request, monkeypatch):
    """Run the test once with compiled C kernels and once on the reference interpreter."""
    monkeypatch.setenv("LAZYTORCH_BACKEND", request.param)
    return request.param


@pytest.fixture
def mod():
    """The compiled host loops' module (tests comparing them with their Python versions):
    skipped where they are off or cannot be built, an error where the build failed."""
    m = native.module()
    if m is None and (not native.enabled() or native._include() is None):
        pytest.skip(f"no compiled host loops here: {native.failure()}")
    assert m is not None, native.failure()
    return m


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def check(t, ref, rtol=1e-5, atol=1e-6, dtype=None):
    """Assert a lazytorch tensor equals a numpy reference in shape, dtype and value."""
    assert isinstance(t, torch.Tensor), type(t)
    # numpy has no bfloat16 (t.numpy() refuses it, as in PyTorch): compare its exact floats
    t = t.detach()
    got = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
    ref = np.asarray(ref)
    assert tuple(got.shape) == tuple(ref.shape), (got.shape, ref.shape)
    if dtype is not None:
        assert t.dtype == dtype, (t.dtype, dtype)
    if ref.dtype.kind in "biu" or got.dtype.kind in "biu":
        np.testing.assert_array_equal(got, ref)
    else:
        np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), rtol=rtol,
                                   atol=atol, equal_nan=True)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """One compile cache for the whole session, outside the user's home."""
    d = tmp_path_factory.getbasetemp() / "lt-cache"
    monkeypatch.setenv("LAZYTORCH_CACHE_DIR", os.environ.get("LT_TEST_CACHE", str(d)))
