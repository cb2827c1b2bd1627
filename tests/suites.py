"""The op, autograd and nn test suites, listed once: tests/test_cuda_gpu.py runs them with CUDA
as the default device, and their CUDA kernels are what a collection run gathers
(tests/cuda_collect.py) and tools/cuda_sweep.py compiles with nvcc. Each file's tests make
their tensors with the default device (none asks for the CPU by name)."""
from __future__ import annotations

OP = ["tests/test_ops_elementwise.py", "tests/test_ops_reduce.py", "tests/test_ops_movement.py",
      "tests/test_indexing.py", "tests/test_linalg.py", "tests/test_gemm_views.py",
      "tests/test_pointwise.py", "tests/test_bfloat16.py", "tests/test_sorting.py",
      "tests/test_statistics.py", "tests/test_structure.py", "tests/test_sum_accuracy.py"]
AUTOGRAD = ["tests/test_autograd.py", "tests/test_autograd_function.py",
            "tests/test_autograd_rules.py"]
NN = ["tests/test_nn_attention.py", "tests/test_nn_conv.py", "tests/test_nn_init.py",
      "tests/test_nn_layers.py", "tests/test_nn_layers_more.py", "tests/test_nn_losses.py",
      "tests/test_nn_losses_more.py", "tests/test_nn_module.py", "tests/test_nn_reshaping.py",
      "tests/test_nn_rnn.py", "tests/test_nn_rnn_packed.py", "tests/test_nn_transformer.py",
      "tests/test_nn_utils_param.py"]
ALL = OP + AUTOGRAD + NN
