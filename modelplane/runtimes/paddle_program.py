"""A Paddle inference model's files, and the tensor shapes its program declares.

A model is a program and its parameters (`*.pdiparams`), in one of two formats: Paddle 2's
`*.pdmodel` (a ProgramDesc protobuf), which KServe's paddleserver loads, and Paddle 3's `*.json`
(a PIR program, what `paddle.jit.save` writes by default since 3.0). Paddle's predictor says the names
of its inputs and outputs; their shapes and datatypes (which it gives only after a run) are read from
the program, and so are the sizes of the embedding tables an input indexes, directly or through ops
that keep its values (a reshape, a cast...): Paddle's embedding kernel does not check an id of -1, nor
any id where the table has a padding row: it reads past the table, or crashes the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelplane.runtimes.base import ModelMissingError

PARAMS_SUFFIX = ".pdiparams"
PROGRAM_SUFFIX = ".pdmodel"  # Paddle 2's format
PIR_PROGRAM_SUFFIX = ".json"  # Paddle 3's, named as its parameters are


# Paddle's datatypes (Paddle 2's ProgramDesc names, PIR's names) -> V2 datatypes.
_V2_DATATYPES = {
    "FP32": "FP32", "FP64": "FP64", "FP16": "FP16", "BF16": "BF16",
    "FLOAT32": "FP32", "FLOAT64": "FP64", "FLOAT16": "FP16", "BFLOAT16": "BF16",
    "INT64": "INT64", "INT32": "INT32", "INT16": "INT16", "INT8": "INT8", "UINT8": "UINT8", "BOOL": "BOOL",
}  # fmt: skip


@dataclass(frozen=True)
class TensorSpec:
    shape: list[int]  # -1: any size
    datatype: str  # V2's


@dataclass(frozen=True)
class DeclaredProgram:
    tensors: dict[str, TensorSpec]  # the feeds' and fetches', by the names the predictor gives them
    id_limits: dict[str, int]  # feed -> rows of the smallest embedding table it indexes directly


@dataclass(frozen=True)
class PaddleFiles:
    program: Path
    params: Path

    @property
    def is_pir(self) -> bool:
        return self.program.suffix == PIR_PROGRAM_SUFFIX


def find_paddle_files(model_dir: str | Path) -> PaddleFiles:
    """The folder's one `*.pdiparams`, and its program: the folder's one `*.pdmodel`, else its one
    `*.json`, as KServe's paddleserver finds them (a `.json` of the same name as the parameters is
    taken where the folder holds other JSON files as well)."""
    folder = Path(model_dir)
    if not folder.is_dir():
        raise ModelMissingError(f"model folder {folder} does not exist")
    params = _only(folder, PARAMS_SUFFIX)
    if params is None:
        raise ModelMissingError(f"no Paddle parameters ({PARAMS_SUFFIX}) found in {folder}")
    program = _only(folder, PROGRAM_SUFFIX)
    if program is None:
        beside = params.with_suffix(PIR_PROGRAM_SUFFIX)
        program = beside if beside.is_file() else _only(folder, PIR_PROGRAM_SUFFIX)
    if program is None:
        raise ModelMissingError(
            f"no Paddle program found in {folder}: a {PROGRAM_SUFFIX} (Paddle 2) or a {PIR_PROGRAM_SUFFIX} "
            f"(Paddle 3) beside {params.name}"
        )
    return PaddleFiles(program, params)


def holds_paddle_model(folder: Path) -> bool:
    """Whether a folder holds Paddle parameters (what `detect` goes by: a Paddle 3 program's `.json`
    would otherwise be taken for an XGBoost model)."""
    return folder.is_dir() and any(path.is_file() for path in folder.glob(f"*{PARAMS_SUFFIX}"))


def _only(folder: Path, suffix: str) -> Path | None:
    found = sorted(path for path in folder.glob(f"*{suffix}") if path.is_file())
    if len(found) > 1:
        names = ", ".join(path.name for path in found)
        raise RuntimeError(f"More than one {suffix} model file is detected in {folder}: {names}")
    return found[0] if found else None


def declared_program(paddle: Any, files: PaddleFiles) -> DeclaredProgram:
    """What the program declares: its feeds' and fetches' shapes and datatypes, and the tables the
    feeds that go straight into an embedding index."""
    if files.is_pir:
        return _pir_program(paddle, files.program)
    return _program_desc(files.program)


# The ops that look ids up in an embedding table.
_DESC_EMBEDDINGS = ("lookup_table_v2", "lookup_table")  # Paddle 2's op, and Paddle 1's
_PIR_EMBEDDING = "pd_op.embedding"
# Ops whose output holds all of their first input's values, and only those (its shape or order changed,
# or its type): ids that pass through them on their way to a table are still the feed's. (A slice is
# not among them: the rest of its input may be other numbers than ids.)
_DESC_KEEPING_VALUES = {
    "reshape2": "X", "reshape": "X", "squeeze2": "X", "squeeze": "X", "unsqueeze2": "X", "unsqueeze": "X",
    "flatten_contiguous_range": "X", "flatten2": "X", "flatten": "X", "transpose2": "X", "transpose": "X",
    "assign": "X", "cast": "X",
}  # fmt: skip
_PIR_KEEPING_VALUES = {
    "pd_op.reshape", "pd_op.squeeze", "pd_op.unsqueeze", "pd_op.flatten", "pd_op.transpose", "pd_op.assign",
    "pd_op.cast",
}  # fmt: skip


def _program_desc(path: Path) -> DeclaredProgram:
    from paddle.base.proto import framework_pb2

    desc = framework_pb2.ProgramDesc.FromString(path.read_bytes())
    fields = framework_pb2.VarType.DESCRIPTOR.fields_by_name
    tensor_fields = [name for name in ("dense_tensor", "lod_tensor") if name in fields]  # 3.x, 2.x
    block = desc.blocks[0]
    tensors = {}
    for var in block.vars:
        for field in tensor_fields:
            if var.type.HasField(field):
                tensor = getattr(var.type, field).tensor
                dtype = framework_pb2.VarType.Type.Name(tensor.data_type)
                tensors[var.name] = TensorSpec(list(tensor.dims), _V2_DATATYPES.get(dtype, "BYTES"))
    # Each variable that holds a feed's values: the feeds themselves, and what keeps their values.
    feed_of = {
        name: name for op in block.ops if op.type == "feed" for v in op.outputs for name in v.arguments
    }
    id_limits: dict[str, int] = {}
    for op in block.ops:
        inputs = {v.parameter: list(v.arguments) for v in op.inputs}
        if op.type in _DESC_EMBEDDINGS:
            (ids,), (table,) = inputs["Ids"], inputs["W"]
            if ids in feed_of and table in tensors:
                _limit(id_limits, feed_of[ids], tensors[table].shape)
        elif op.type in _DESC_KEEPING_VALUES:
            source = inputs.get(_DESC_KEEPING_VALUES[op.type], [None])[0]
            if source in feed_of:
                for out in (name for v in op.outputs if v.parameter == "Out" for name in v.arguments):
                    feed_of[out] = feed_of[source]
    return DeclaredProgram(tensors, id_limits)


def _pir_program(paddle: Any, path: Path) -> DeclaredProgram:
    program = paddle.pir.Program()
    paddle.base.core.deserialize_pir_program(str(path), program)
    tensors = {}
    id_limits: dict[str, int] = {}
    for op in program.global_block().ops:
        if op.name() in ("pd_op.data", "pd_op.fetch"):
            value = op.result(0)
            datatype = _V2_DATATYPES.get(value.dtype.name, "BYTES")
            tensors[op.attrs()["name"]] = TensorSpec(list(value.shape), datatype)
        elif op.name() == _PIR_EMBEDDING:
            ids, table = op.operand_source(0), op.operand_source(1)
            feed = ids.get_defining_op()
            while feed is not None and feed.name() in _PIR_KEEPING_VALUES:
                feed = feed.operand_source(0).get_defining_op()
            if feed is not None and feed.name() == "pd_op.data":
                _limit(id_limits, feed.attrs()["name"], list(table.shape))
    return DeclaredProgram(tensors, id_limits)


def _limit(id_limits: dict[str, int], feed: str, table_shape: list[int]) -> None:
    rows = table_shape[0] if table_shape else -1
    if rows >= 0:
        id_limits[feed] = min(rows, id_limits.get(feed, rows))
