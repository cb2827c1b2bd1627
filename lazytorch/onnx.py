"""torch.onnx: present so that scripts importing it start; exporting is not supported."""
from __future__ import annotations

__all__ = ["OnnxExporterError", "export", "is_in_onnx_export"]


class OnnxExporterError(RuntimeError):
    """Raised when an ONNX export fails."""


def is_in_onnx_export() -> bool:
    """False: no export is ever running."""
    return False


def export(model, args=(), f=None, *a, **kw):
    """Not supported: lazytorch cannot export a model to ONNX (it records lazytorch's own IR,
    which has no ONNX translation). Save the weights with torch.save(model.state_dict(), ...)
    and export with PyTorch."""
    raise NotImplementedError("torch.onnx.export is not supported by lazytorch: there is no "
                              "ONNX translation of its graphs. Save the weights with "
                              "torch.save(model.state_dict(), path) and export with PyTorch.")
