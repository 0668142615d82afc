"""What the model server imports before it serves: not the libraries only some tensors need."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from modelplane.protocol.datatypes import array_from_raw, array_to_raw, datatype_of, numpy_dtype


def test_importing_the_model_server_leaves_bfloat16_s_library_out():
    """ml_dtypes takes half a second to import: a replica pays it only when a BF16 tensor comes."""
    code = "import sys, modelplane.server, modelplane.protocol.v2_grpc; print('ml_dtypes' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_bf16_tensors_still_travel():
    dtype = numpy_dtype("BF16")
    array = np.array([1.5, -2.0, 3.25], dtype=dtype)
    assert datatype_of(array) == "BF16"
    raw = array_to_raw(array, "BF16")
    assert len(raw) == 6
    assert array_from_raw(raw, "BF16", [3]).astype(np.float32).tolist() == [1.5, -2.0, 3.25]
