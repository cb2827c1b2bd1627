"""Which of PyTorch's documented, commonly used API names lazytorch lacks.

    python tools/api_coverage.py            # coverage per namespace, and the missing names
    python tools/api_coverage.py --write    # rewrite docs/missing_api.txt
    python tools/api_coverage.py --check    # exit 1 if docs/missing_api.txt is stale
    python tools/api_coverage.py --names    # regenerate tools/api_names.txt (needs PyTorch)

tools/api_names.txt holds the names, generated once from PyTorch 2.13 by --names, so that
checking coverage needs no PyTorch. A name is listed when it is public in one of the namespaces
below (torch: its __all__; torch.utils.data: its __all__; the others: dir()), is documented (a
docstring, or a property, dtype or constant), is PyTorch's own (not a typing or stdlib name
re-exported), and is in none of the EXCLUDED families: features lazytorch leaves out by design
(complex, quantized and sparse tensors, TorchScript, storages, vendor kernels, view-copy and
in-place functional variants, exotic dtypes) rather than ones a script commonly touches.
tests/test_api_coverage.py fails when docs/missing_api.txt disagrees with lazytorch.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = os.path.join(ROOT, "tools", "api_names.txt")
MISSING = os.path.join(ROOT, "docs", "missing_api.txt")

NAMESPACES = ["torch", "torch.Tensor", "torch.nn.functional", "torch.utils.data", "torch.autograd",
              "torch.linalg"]

# families left out by design: (namespaces, pattern on the last name component, why)
_ALL = tuple(NAMESPACES)
EXCLUDED = [
    (_ALL, r"^(q_|quantize|quantized_|fake_quantize|dequantize$|int_repr$|qscheme$|qint|quint|"
           r"choose_qparams|fused_moving_avg_obs|fbgemm_|q_per_channel)", "quantized tensors"),
    (_ALL, r"^(sparse_|to_sparse|.*_indices_copy$|[a-z]*smm$|spmm$|sspaddmm$|saddmm$|coalesce$|"
           r"is_coalesced$|_?indices$|values$|crow_indices$|col_indices$|ccol_indices$|"
           r"row_indices$|sparse_dim$|dense_dim$|sparse_mask$|to_dense$|is_sparse_csr$|hspmm$|"
           r"resize_as_sparse_$|sparse_resize|smm$)", "sparse tensors"),
    (_ALL, r"^(complex(32|64|128)?$|polar$|view_as_(complex|real)|real$|imag$|angle$|conj|"
           r"resolve_(conj|neg)$|is_conj$|is_neg$|chalf$|cfloat$|cdouble$|H$|mH$|adjoint$)",
     "complex tensors"),
    (_ALL, r"^(cudnn_|miopen_|mkldnn_|to_mkldnn$|is_mkldnn$|native_|batch_norm_(backward|elemt|"
           r"gather|stats|update)|.*_backward(_|$)|cpp$|conv_tbc$|affine_grid_generator$|"
           r"constant_pad_nd$|embedding_renorm_$|norm_except_dim$|frobenius_norm$|"
           r"convolution$|grid_sampler(_2d|_3d)?$|slice_inverse$|unsafe_|split_with_sizes|"
           r"nonzero_static$|empty_quantized$|thread_safe_generator$|hash_tensor$|"
           r"init_num_threads$|is_vulkan_available$|set_flush_denormal$|has_(lapack|mkl|"
           r"openmp|spectral)$|channel_shuffle$|native_channel_shuffle$|rrelu_?$)",
     "vendor and internal kernels"),
    (_ALL, r"^[a-z_0-9]+_copy$", "view-copy variants (the view itself is the API)"),
    (_ALL, r"^(u?int[1-7]$|uint(16|32|64)$|float8_|float4_|bits|bit$)", "exotic dtypes"),
    (_ALL, r"^(sym_|Sym[A-Z]|Tag$|DispatchKey|AggregationType$|AVG$|SUM$|"
           r"autocast_(in|de)crement_nesting$|(get|set)_autocast_(ipu|xla|gpu)_|"
           r"is_autocast_(ipu|xla)_|merge_type_from_type_comment$|parse_(ir|schema|"
           r"type_comment)$|unify_type_list$|import_ir_module|fork$|wait$|vmap$|cond$|export$|"
           r"is_distributed$|BufferDict$|AcceleratorError$|OutOfMemoryError$|ScriptFunction$|"
           r"JITException$|FatalError$|get_device_module$|as_subclass$|const_data_ptr$|"
           r"index$|Stream$|Event$)",
     "compiler, TorchScript and distributed internals"),
    (_ALL, r"(Storage$|^TypedStorage$|^UntypedStorage$|^storage|^untyped_storage$|^from_file$|"
           r"^is_storage$|^frombuffer$|^set_$|^share_memory_$|^is_shared$|^data_ptr$|"
           r"^storage_offset$|^is_pinned$|^pin_memory$|^record_stream$|^nbytes$)",
     "storages and memory placement"),
    (_ALL, r"^(is_(ipu|xla|xpu|mps|maia|mtia|vulkan|meta|nested)$|ipu$|xpu$|mps$|hpu$|mtia$|"
           r"is_hpu$|to_padded_tensor$|nested_tensor|module_load$|dim_order$|"
           r"(refine|align)_(names|to|as)$|rename_?$|names$|has_names$|align_to$|name$|"
           r"output_nr$|_version$|volatile$|reinforce$|grad_dtype$|apply_$|map_$|map2_$|"
           r"new_empty_strided$|is_set_to$|resize_?$|resize_as_?$)",
     "other devices, named tensors and legacy internals"),
    (("torch.nn.functional",), r"^(grad$|assert_int_or_pair$|has_torch_function|"
                                r"handle_torch_function$|boolean_dispatch$|ScalingType$|"
                                r"SwizzleType$|scaled_mm$|scaled_grouped_mm$|grouped_mm$)",
     "helpers, not functions"),
    (("torch.autograd",), r"^(cast|overload|handle_torch_function|has_torch_function|"
                          r"is_tensor_like|DeviceType|ProfilerActivity|ProfilerState|"
                          r"NestedIOFunction|enforce_grad_layout_policy|kineto_available|"
                          r"is_view_replay_enabled|is_multithreading_enabled|"
                          r"set_multithreading_enabled)$", "helpers and profiler internals"),
    (("torch.utils.data",), r"DataPipe$|^DataChunk$", "DataPipes (deprecated in PyTorch)"),
]

# documented names that live in submodules of a namespace
EXTRA = ["torch.autograd.Variable", "torch.autograd.functional.jacobian",
         "torch.autograd.functional.hessian", "torch.autograd.functional.vjp",
         "torch.autograd.functional.jvp", "torch.autograd.functional.vhp",
         "torch.autograd.functional.hvp", "torch.autograd.graph.saved_tensors_hooks",
         "torch.autograd.graph.save_on_cpu", "torch.autograd.profiler.profile",
         "torch.autograd.profiler.record_function"]

_CONSTANTS = {"pi", "e", "inf", "nan", "newaxis"}


# ----------------------------------------------------------------------------- PyTorch's names
def _documented(obj) -> bool:
    doc = inspect.getdoc(obj) if callable(obj) or isinstance(obj, type) else None
    return isinstance(doc, str) and bool(doc.strip())


def _own(obj) -> bool:
    """PyTorch's object, not a typing or stdlib name re-exported."""
    module = getattr(obj, "__module__", None) or ""
    return module.startswith("torch") or type(obj).__name__ in ("builtin_function_or_method",
                                                                 "method_descriptor")


def _excluded(namespace: str, name: str) -> bool:
    return any(namespace in spaces and re.search(pat, name) for spaces, pat, _ in EXCLUDED)


def pytorch_names() -> list[str]:
    """The names, from the installed PyTorch (see the module's docstring for the rules)."""
    import torch
    out = []
    for ns in NAMESPACES:
        obj = torch.Tensor if ns == "torch.Tensor" else importlib.import_module(ns)
        if ns in ("torch", "torch.utils.data"):
            candidates = list(obj.__all__)
        else:
            candidates = [n for n in dir(obj) if not n.startswith("_")]
        for name in sorted(set(candidates)):
            v = inspect.getattr_static(obj, name) if ns == "torch.Tensor" else \
                getattr(obj, name, None)
            if isinstance(v, types.ModuleType) or _excluded(ns, name):
                continue
            if ns == "torch.Tensor":
                keep = isinstance(v, (property, types.GetSetDescriptorType,
                                      types.MemberDescriptorType)) or \
                    _documented(getattr(obj, name))
            elif ns == "torch":
                keep = name in _CONSTANTS or isinstance(v, torch.dtype) or \
                    (_documented(v) and _own(v))
                # torch.abs_, torch.relu_, ...: undocumented in-place twins of functions
                keep = keep and not (name.endswith("_") and name[:-1] in candidates)
            else:
                keep = _documented(v) and _own(v)
            if keep:
                out.append(f"{ns}.{name}")
    out.extend(EXTRA)
    return out


# ----------------------------------------------------------------------------- lazytorch's side
def lazytorch_has(name: str) -> bool:
    """Does lazytorch have `name` (a torch.* dotted name)?"""
    parts = name.split(".")
    obj = importlib.import_module("lazytorch")
    for p in parts[1:]:
        if hasattr(obj, p):
            obj = getattr(obj, p)
            continue
        if not isinstance(obj, types.ModuleType):
            return False
        try:
            obj = importlib.import_module(f"{obj.__name__}.{p}")
        except ModuleNotFoundError:
            return False
    return True


def load_names(path: str = NAMES) -> list[str]:
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def missing(names: list[str]) -> list[str]:
    return [n for n in names if not lazytorch_has(n)]


def _namespace(name: str) -> str:
    return max((ns for ns in NAMESPACES if name.startswith(ns + ".")), key=len)


def summary(names: list[str], gone: list[str]) -> list[tuple[str, int, int]]:
    """(namespace, names, missing) per namespace."""
    rows = []
    for ns in NAMESPACES:
        total = sum(_namespace(n) == ns for n in names)
        rows.append((ns, total, sum(_namespace(n) == ns for n in gone)))
    return rows


def render_missing(names: list[str], gone: list[str]) -> str:
    lines = ["# PyTorch API names that lazytorch lacks, one per line (lines starting with '#'",
             "# are comments). Generated by `python tools/api_coverage.py --write` from",
             "# tools/api_names.txt; tests/test_api_coverage.py fails when it is stale.",
             f"# {len(names) - len(gone)} of {len(names)} names present, {len(gone)} missing."]
    for ns, total, miss in summary(names, gone):
        lines.append(f"#   {ns}: {total - miss} of {total} present")
    lines.append("")
    lines.extend(gone)
    return "\n".join(lines) + "\n"


README = os.path.join(ROOT, "README.md")
_README_COUNT = re.compile(r"\d+ are present; the \d+\nmissing ones")


def readme_count(names: list[str], gone: list[str]) -> str:
    """The README's sentence part that gives the counts (kept current by --write)."""
    return f"{len(names) - len(gone)} are present; the {len(gone)}\nmissing ones"


def render_readme(text: str, names: list[str], gone: list[str]) -> str:
    if not _README_COUNT.search(text):
        raise SystemExit("README.md lost its API coverage sentence ('N are present; the M ...')")
    return _README_COUNT.sub(readme_count(names, gone), text)


def read_missing(path: str = MISSING) -> list[str]:
    return load_names(path)


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--names", action="store_true", help="regenerate tools/api_names.txt")
    ap.add_argument("--write", action="store_true", help="rewrite docs/missing_api.txt")
    ap.add_argument("--check", action="store_true", help="fail if docs/missing_api.txt is stale")
    args = ap.parse_args(argv)
    if args.names:
        import torch
        names = pytorch_names()
        _write(NAMES, f"# PyTorch {torch.__version__.split('+')[0]}'s documented, commonly used "
                      f"API names (tools/api_coverage.py --names; the rules are in its "
                      f"docstring)\n" + "\n".join(names) + "\n")
        print(f"{len(names)} names -> {os.path.relpath(NAMES, ROOT)}")
    names = load_names()
    gone = missing(names)
    if args.write:
        _write(MISSING, render_missing(names, gone))
        with open(README) as f:
            _write(README, render_readme(f.read(), names, gone))
        print(f"{len(gone)} missing -> {os.path.relpath(MISSING, ROOT)}")
    if args.check:
        listed = read_missing()
        if listed != gone:
            print("docs/missing_api.txt is stale: run python tools/api_coverage.py --write")
            return 1
        return 0
    if not args.write and not args.names:
        for ns, total, miss in summary(names, gone):
            print(f"{ns:22s} {total - miss:4d} / {total:4d} present")
        print(f"{'all':22s} {len(names) - len(gone):4d} / {len(names):4d} present")
        print("missing:", " ".join(gone))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    sys.exit(main())
