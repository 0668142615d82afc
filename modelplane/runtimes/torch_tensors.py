"""V2 tensors and torch tensors: datatypes, and conversions both ways without copies where torch allows.

bfloat16 travels as ml_dtypes' bfloat16 in numpy; torch cannot wrap that dtype, so its bits go
through a 16-bit integer view.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import torch

V2_TO_TORCH: dict[str, torch.dtype] = {
    "BOOL": torch.bool,
    "UINT8": torch.uint8,
    "UINT16": torch.uint16,
    "UINT32": torch.uint32,
    "UINT64": torch.uint64,
    "INT8": torch.int8,
    "INT16": torch.int16,
    "INT32": torch.int32,
    "INT64": torch.int64,
    "FP16": torch.float16,
    "BF16": torch.bfloat16,
    "FP32": torch.float32,
    "FP64": torch.float64,
}
TORCH_TO_V2: dict[torch.dtype, str] = {dtype: name for name, dtype in V2_TO_TORCH.items()}
_BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


def tensor_from_array(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A torch tensor over a numpy array's data (copied only when the device or layout needs it)."""
    if array.dtype == _BFLOAT16:
        tensor = torch.from_numpy(np.ascontiguousarray(array).view(np.uint16)).view(torch.bfloat16)
    else:
        if not array.flags.writeable:
            # torch warns on read-only buffers (the binary extension decodes straight from the body);
            # models may write to their inputs, so they get their own copy.
            array = array.copy()
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.to(device) if device.type != "cpu" else tensor


def array_from_tensor(tensor: torch.Tensor) -> np.ndarray:
    """A numpy array of a tensor's values, on the CPU."""
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    if tensor.dtype == torch.bfloat16:
        return tensor.contiguous().view(torch.uint16).numpy().view(_BFLOAT16)
    if tensor.dtype not in TORCH_TO_V2:
        raise TypeError(f"a {tensor.dtype} tensor has no V2 datatype")
    return tensor.numpy()


def default_tensor(value: Any, device: torch.device) -> torch.Tensor:
    """A tensor from JSON values: floats as float32 (torch's default), integers as int64."""
    array = np.asarray(value)
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif array.dtype.kind not in "biu":
        raise ValueError(f"instances must be numbers or booleans, not {array.dtype}")
    return tensor_from_array(array, device)


def preferred_device() -> torch.device:
    """The first GPU the replica was given (CUDA_VISIBLE_DEVICES), else the CPU."""
    return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
