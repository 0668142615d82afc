"""PyTorch programs: TorchScript (`.pt`, `.pth`, saved with `torch.jit.save`) and torch.export (`.pt2`).

Tensors in, tensors out. A V2 request's inputs are the program's arguments, matched by name when every
name is one of the program's, else by position; the outputs are named by the keys of a returned dict,
or `output-0`, `output-1`... A V1 request's `instances` are the single argument (floats as float32), and
its predictions are the returned tensor's values. Inference runs in inference mode (no autograd), on
the replica's GPU when it has one.

A TorchServe model store (`config/config.properties` and `model-store/*.mar`) is served by
`torchserve_store.py` instead; `model_files` tells the two layouts apart.
"""

from __future__ import annotations

import asyncio
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelplane.protocol.errors import InferenceError, InvalidInput
from modelplane.protocol.v2 import InferRequest, InferResponse, output_from_array
from modelplane.runtimes.base import (
    INLINE_ELEMENTS,
    ModelMissingError,
    find_model_file,
    last_line,
    require,
    v1_instances,
)
from modelplane.server.model import Model

PROGRAM_EXTENSIONS = (".pt", ".pth", ".pt2")


@dataclass(frozen=True)
class ArgumentSpec:
    """What a program declares about one argument: its name, and for torch.export programs its V2
    datatype and shape (-1 for a dynamic dimension)."""

    name: str
    datatype: str | None = None
    shape: tuple[int, ...] | None = None

    def metadata(self) -> dict:
        return {"name": self.name, "datatype": self.datatype or "", "shape": list(self.shape or [])}


class PyTorchModel(Model):
    """A TorchScript or torch.export program."""

    reads_parameters = frozenset()

    def __init__(self, name: str, model_dir: str | Path, nthread: int | None = None):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.nthread = nthread
        self._program: Any = None
        self._arguments: list[ArgumentSpec] = []

    def load(self) -> bool:
        torch = require("torch", "pytorch")
        from modelplane.runtimes.torch_tensors import preferred_device

        if self.nthread:
            torch.set_num_threads(self.nthread)
        path = find_model_file(self.model_dir, PROGRAM_EXTENSIONS)
        self._torch = torch
        self.device = preferred_device()
        if path.suffix == ".pt2":
            self._program, self._arguments = _load_exported(torch, path, self.device)
        else:
            self._program, self._arguments = _load_torchscript(torch, path, self.device)
        self.ready = True
        return True

    def get_input_types(self) -> list[dict]:
        return [argument.metadata() for argument in self._arguments if argument.datatype]

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        from modelplane.runtimes.torch_tensors import default_tensor, tensor_from_array

        if isinstance(payload, InferRequest):
            named = [(item.name, item.as_numpy()) for item in payload.inputs]
            self._check_inputs(named)
            arguments = [tensor_from_array(array, self.device) for _, array in self._in_order(named)]
            result = await self._call(arguments, sum(array.size for _, array in named))
            return InferResponse(payload.id, self.name, _outputs(result))
        if len(self._arguments) > 1:
            names = ", ".join(argument.name for argument in self._arguments)
            raise InvalidInput(
                f"model {self.name} takes {len(self._arguments)} inputs ({names}), and V1's instances are "
                "one: send them over V2, each input by its name"
            )
        try:
            argument = default_tensor(v1_instances(payload), self.device)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"instances do not form a tensor: {exc}") from None
        try:
            result = await self._call([argument], argument.numel())
        except InvalidInput:
            # JSON does not say whether 1 is an integer or a float: whole numbers go as int64 first,
            # and as float32 to a program that takes floats.
            if argument.is_floating_point() or argument.dtype is self._torch.bool:
                raise
            result = await self._call([argument.float()], argument.numel())
        return {"predictions": _predictions(result)}

    def _check_inputs(self, named: list[tuple[str, np.ndarray]]) -> None:
        """Refuses inputs a torch.export program declares it cannot take (TorchScript declares no
        datatypes or shapes: torch itself refuses those, in `_call`)."""
        for name, array in named:
            if array.dtype == np.object_:
                raise InvalidInput(f"input {name!r}: model {self.name} takes tensors of numbers, got BYTES")
        expected = self._arguments
        if expected and len(named) != len(expected):
            names = ", ".join(argument.name for argument in expected)
            raise InvalidInput(
                f"model {self.name} takes {len(expected)} input(s) ({names}), got {len(named)}"
            )
        for (name, array), argument in zip(self._in_order(named), expected, strict=False):
            if argument.datatype is None:
                continue
            got = _datatype_of(array)
            if got != argument.datatype:
                raise InvalidInput(f"input {name!r}: model {self.name} takes {argument.datatype}, got {got}")
            if argument.shape is not None and not _shape_fits(array.shape, argument.shape):
                raise InvalidInput(
                    f"input {name!r}: model {self.name} takes shape {list(argument.shape)} "
                    f"(-1: any size), got {list(array.shape)}"
                )

    def _in_order(self, named: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
        """The inputs in the program's argument order: by name when all names are the program's."""
        names = [argument.name for argument in self._arguments]
        if names and all(name in names for name, _ in named):
            return sorted(named, key=lambda item: names.index(item[0]))
        return named

    async def _call(self, arguments: list, elements: int) -> Any:
        try:
            if elements <= INLINE_ELEMENTS:
                return self._run(arguments)
            return await asyncio.to_thread(self._run, arguments)
        except (RuntimeError, AssertionError, TypeError, ValueError, IndexError) as exc:
            # torch reports a shape or dtype the program cannot take as one of these; its last line
            # says what did not fit.
            raise InvalidInput(f"the input does not fit model {self.name}: {last_line(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - the program's own failure
            raise InferenceError(
                f"model {self.name} failed: {type(exc).__name__}: {last_line(exc)}"
            ) from None

    def _run(self, arguments: list) -> Any:
        import torch

        with torch.inference_mode():
            return self._program(*arguments)


def _load_torchscript(torch: Any, path: Path, device: Any) -> tuple[Any, list[ArgumentSpec]]:
    if _saved_with_torch_save(path):
        raise ModelMissingError(
            f"{path.name} is not a TorchScript program (torch.jit.save) or a torch.export program (.pt2) "
            "but a file of torch.save (a state dict, or a pickled module), which needs its model's code: "
            "package both in a TorchServe .mar"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, and still served
            program = torch.jit.load(str(path), map_location=device)
    except RuntimeError as exc:
        raise ModelMissingError(
            f"{path.name} is not a TorchScript program (torch.jit.save): {_first_sentence(exc)}"
        ) from None
    program.eval()
    arguments = [ArgumentSpec(argument.name) for argument in program.forward.schema.arguments[1:]]
    return program, arguments


def _load_exported(torch: Any, path: Path, device: Any) -> tuple[Any, list[ArgumentSpec]]:
    from modelplane.runtimes.torch_tensors import TORCH_TO_V2

    try:
        exported = torch.export.load(str(path))
    except (RuntimeError, ValueError) as exc:
        raise ModelMissingError(f"{path.name} is not a torch.export program: {last_line(exc)}") from None
    user_inputs = [
        spec.arg.name for spec in exported.graph_signature.input_specs if spec.kind.name == "USER_INPUT"
    ]
    placeholders = {
        node.name: node.meta.get("val") for node in exported.graph.nodes if node.op == "placeholder"
    }
    arguments = []
    for name in user_inputs:
        value = placeholders.get(name)
        if value is None or not hasattr(value, "dtype"):
            arguments.append(ArgumentSpec(name))
            continue
        shape = tuple(dim if isinstance(dim, int) else -1 for dim in value.shape)
        arguments.append(ArgumentSpec(name, TORCH_TO_V2.get(value.dtype), shape))
    program = exported.module()
    if device.type != "cpu":
        program = program.to(device)
    return program, arguments


def _outputs(result: Any) -> list:
    from modelplane.runtimes.torch_tensors import array_from_tensor

    if isinstance(result, dict):
        named = list(result.items())
    elif isinstance(result, list | tuple):
        named = [(f"output-{index}", value) for index, value in enumerate(result)]
    else:
        named = [("output-0", result)]
    outputs = []
    for name, value in named:
        try:
            array = array_from_tensor(value) if hasattr(value, "detach") else np.asarray(value)
        except TypeError as exc:
            raise InferenceError(f"output {name!r}: {exc}") from None
        outputs.append(output_from_array(str(name), array))
    return outputs


def _predictions(result: Any) -> Any:
    from modelplane.runtimes.torch_tensors import array_from_tensor

    if isinstance(result, dict):
        return {str(name): _predictions(value) for name, value in result.items()}
    if isinstance(result, list | tuple):
        return [_predictions(value) for value in result]
    if hasattr(result, "detach"):
        array = array_from_tensor(result)
        return array.astype(np.float32) if array.dtype.kind == "V" else array
    return result


def _datatype_of(array: np.ndarray) -> str:
    from modelplane.protocol.datatypes import datatype_of

    return datatype_of(array)


def _shape_fits(shape: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    return len(shape) == len(expected) and all(
        e == -1 or e == s for s, e in zip(shape, expected, strict=True)
    )


def _saved_with_torch_save(path: Path) -> bool:
    """A torch.save archive holds `<name>/data.pkl`; a TorchScript one also holds `constants.pkl`."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = {name.split("/", 1)[-1] for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError):
        return False
    return "data.pkl" in names and "constants.pkl" not in names


def _first_sentence(exc: BaseException) -> str:
    return str(exc).strip().split(". ")[0]
