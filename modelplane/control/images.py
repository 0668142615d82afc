"""Which image a container runs, and what runs in its place on this machine.

A replica is a local process, so an image means something only if modelplane knows the server in it:
KServe's stock images (sklearnserver, xgbserver, lgbserver, pmmlserver, paddleserver, MLServer, Triton, TorchServe,
TensorFlow Serving, huggingfaceserver, ...) are matched on their repository name, whatever the registry and
tag (`kserve/sklearnserver`, `docker.io/kserve/xgbserver:v0.13`, `kserve-sklearnserver:replace`), and
run as the local command `stock_servers` gives them. A container that names its own `command` runs
that command, whatever its image. A container of an image modelplane does not know, with no command,
has nothing to run here: ImageNotServed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from modelplane.control import stock_servers as servers
from modelplane.control.stock_servers import ImageNotServed, LocalCommand, StockRequest

IMAGE_NOT_SERVED = "ImageNotServed"  # the condition reason when a container cannot run here


@dataclass(frozen=True)
class StockServer:
    title: str  # how status messages name it
    programs: tuple[str, ...]  # its entrypoint, as a container's `command` may spell it out
    translate: Callable[[StockRequest, str], LocalCommand]


def _kserve(name: str, runtime: str | None) -> StockServer:
    return StockServer(
        f"KServe's {name}",
        (name,),
        lambda request, title: servers.kserve_python_server(request, title, runtime),
    )


def _without_local_runtime(name: str, model_format: str) -> StockServer:
    def refuse(_request: StockRequest, title: str) -> LocalCommand:
        raise ImageNotServed(
            f"{title} serves {model_format} models, and modelplane has no {model_format} runtime"
        )

    return StockServer(f"KServe's {name}", (name,), refuse)


_TRITON = StockServer("NVIDIA Triton", ("tritonserver",), servers.triton)
_MLSERVER = StockServer("MLServer", ("mlserver",), servers.mlserver)
_TORCHSERVE = StockServer("TorchServe", ("torchserve",), servers.torchserve)
_TF_SERVING = StockServer("TensorFlow Serving", ("tensorflow_model_server",), servers.tensorflow_serving)
_ART = StockServer("KServe's ART explainer", ("artserver",), servers.art_explainer)

# The servers of known images, by the image's repository path, else by its last part (with KServe's
# `kserve-` prefix of its own runtime files removed).
_BY_PATH = {
    "tensorflow/serving": _TF_SERVING,
    "nvidia/tritonserver": _TRITON,
    "seldonio/mlserver": _MLSERVER,
    "pytorch/torchserve-kfs": _TORCHSERVE,
    "pytorch/torchserve": _TORCHSERVE,
}
_BY_NAME = {
    "sklearnserver": _kserve("sklearnserver", "sklearn"),
    "xgbserver": _kserve("xgbserver", "xgboost"),
    "lgbserver": _kserve("lgbserver", "lightgbm"),
    "huggingfaceserver": _kserve("huggingfaceserver", "huggingface"),
    "predictiveserver": _kserve("predictiveserver", None),
    "pmmlserver": _kserve("pmmlserver", "pmml"),
    "paddleserver": _kserve("paddleserver", "paddle"),
    "autogluonserver": _without_local_runtime("autogluonserver", "autogluon"),
    "mlserver": _MLSERVER,
    "tritonserver": _TRITON,
    "torchserve": _TORCHSERVE,
    "torchserve-kfs": _TORCHSERVE,
    "tensorflow-serving": _TF_SERVING,
    "art-explainer": _ART,
    "artserver": _ART,
}


def image_repository(image: str) -> str:
    """The repository of an image, without registry, tag or digest:
    `docker.io/kserve/xgbserver:v0.13` -> `kserve/xgbserver`."""
    name = image.strip().split("@", 1)[0]
    if name.rfind(":") > name.rfind("/"):
        name = name[: name.rfind(":")]
    parts = name.lower().split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    return "/".join(parts)


def stock_server(image: str | None) -> StockServer | None:
    """The server in a stock image, or None for an image modelplane does not know."""
    if not image:
        return None
    repository = image_repository(image)
    if repository in _BY_PATH:
        return _BY_PATH[repository]
    last = repository.rsplit("/", 1)[-1]
    return _BY_NAME.get(last) or _BY_NAME.get(last.removeprefix("kserve-"))


def installed_here(program: str) -> bool:
    return shutil.which(program) is not None


def local_command(
    container: dict,
    model_format: str | None = None,
    service_name: str | None = None,
    *,
    installed: Callable[[str], bool] = installed_here,
) -> LocalCommand | None:
    """What runs for `container` on this machine: None when it runs its own `command` (and args) as
    they are, a LocalCommand for a stock image, ImageNotServed when nothing can run.

    `model_format` is the format the InferenceService asks for (a stock server that serves several
    picks its runtime by it); `service_name` names the model where the server's args do not.
    """
    image = str(container.get("image") or "")
    command = [str(part) for part in container.get("command") or []]
    args = [str(part) for part in container.get("args") or []]
    server = stock_server(image)
    if server is None:
        if command or (args and _runnable(args[0], installed)):
            return None
        raise ImageNotServed(_unknown_image(image, args))
    if command:
        own_args = _entrypoint_args(command, server.programs)
        if own_args is None:
            return None  # another program on a stock image: it runs as it is
        args = [*own_args, *args]
    env = {
        str(item["name"]): str(item["value"])
        for item in container.get("env") or []
        if isinstance(item, dict) and "name" in item and "value" in item
    }
    request = StockRequest(tuple(args), env, model_format, service_name, installed)
    return server.translate(request, f"image {image} ({server.title})")


def _entrypoint_args(command: list[str], programs: tuple[str, ...]) -> list[str] | None:
    """The arguments after a stock server's own entrypoint (`tritonserver ...`, `python -m sklearnserver
    ...`), or None if `command` runs something else."""
    if PurePosixPath(command[0]).name in programs:
        return command[1:]
    if PurePosixPath(command[0]).name.startswith("python") and command[1:2] == ["-m"] and command[2:3]:
        return command[3:] if command[2] in programs else None
    return None


def _runnable(program: str, installed: Callable[[str], bool]) -> bool:
    """Whether an image's first argument is a program to run here (an image whose entrypoint runs its args)."""
    if program.startswith("-"):
        return False
    name = PurePosixPath(program).name
    return name == "modelplane" or name.startswith("python") or installed(program)


def _unknown_image(image: str, args: list[str]) -> str:
    what = f"image {image}" if image else "a container with no image"
    if args and not args[0].startswith("-"):
        return f"{what} is not one modelplane knows, and {args[0]} is not installed here"
    return f"{what} is not one modelplane knows, and its container has no command to run in its place"
