"""Two import-time fixes that let mlserver-huggingface 1.7.1 run on the torch the other servers use
(2.14). Neither changes how a model runs; bench/generation.py installs this module into MLServer's
venv with a `.pth` line, so that it is in place before MLServer starts.

- mlserver-huggingface imports `optimum.pipelines` (it pins optimum below 2), and optimum 1.27's ONNX
  exporter imports private TorchScript-to-ONNX helpers (`_attention_scale`, `_onnx_symbolic`,
  `symbolic_helper`, ...) from `torch.onnx.symbolic_opset14`, which torch 2.14 no longer has.
  Nothing here exports to ONNX: stand-ins only let the import succeed.
- mlserver-huggingface imports TensorFlow. With TensorFlow 2.21 loaded first, importing triton (which
  torch's compiler, `torch._dynamo`, imports the first time transformers runs a model) crashes the
  process with SIGSEGV. Importing torch's compiler before TensorFlow avoids it.

A `.pth` line runs before the system site-packages (where torch is) are on the path, so both fixes
wait for the import they precede.
"""

import sys
import types

_PATCHER = "optimum.exporters.onnx.model_patcher"


def _decorator(*_args, **_kwargs):
    return lambda function: function


class _Helpers(types.ModuleType):
    """A module whose every attribute is a decorator factory that leaves the function as it is."""

    def __getattr__(self, name):
        return _decorator


def _add_onnx_names() -> None:
    import torch.onnx.symbolic_opset14 as opset14

    for name in ("_attention_scale", "_causal_attention_mask", "_onnx_symbolic"):
        if not hasattr(opset14, name):
            setattr(opset14, name, _decorator)
    for name in ("_type_utils", "jit_utils", "symbolic_helper"):
        if not hasattr(opset14, name):
            setattr(opset14, name, _Helpers(name))


class _BeforeImports:
    """Runs each fix just before the import it precedes, then steps aside."""

    pending = {"tensorflow", _PATCHER}

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in cls.pending:
            cls.pending.discard(name)
            if name == "tensorflow":
                import torch._dynamo  # noqa: F401 - loads triton before TensorFlow
            else:
                _add_onnx_names()
            if not cls.pending:
                sys.meta_path.remove(cls)
        return None


sys.meta_path.insert(0, _BeforeImports)
