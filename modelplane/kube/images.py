"""The image a container runs on the cluster.

A container of modelplane's own image (`modelplane:latest`, as the built-in runtimes and the examples
name it) runs the installation's image; the built-in runtimes that serve PyTorch, TensorFlow, Paddle,
MLflow, transformers or PMML models run its `full` variant (an MLflow model may be of any flavour; transformers
runs on torch; PMML needs a Java VM). Any other image (KServe's stock servers, your own) is kept as it is.
`runtimeVersion` replaces the tag, as in KServe; an image pinned by digest is left alone.
"""

from __future__ import annotations

from modelplane.control.image_args import parse_args
from modelplane.kube.settings import KubeSettings

PLACEHOLDER_REPOSITORY = "modelplane"
# The `modelplane serve --runtime` values whose libraries only the full variant holds.
FULL_VARIANT_RUNTIMES = frozenset({"pytorch", "tensorflow", "mlflow", "paddle", "huggingface", "pmml"})


def is_modelplane_image(image: str | None) -> bool:
    """Whether an image names modelplane's own (`modelplane`, `modelplane:<tag>`), to be replaced."""
    if not image:
        return False
    name = image.split("@", 1)[0]
    if name.rfind(":") > name.rfind("/"):
        name = name[: name.rfind(":")]
    return name == PLACEHOLDER_REPOSITORY


def cluster_image(container: dict, settings: KubeSettings, runtime_version: str | None = None) -> str | None:
    """The image `container` runs on the cluster (with the tag `runtime_version`, when given)."""
    image = container.get("image")
    if not is_modelplane_image(image):
        return with_tag(image, runtime_version) if image and runtime_version else image
    argv = [str(part) for part in (container.get("command") or []) + (container.get("args") or [])]
    full = parse_args(argv).value("runtime") in FULL_VARIANT_RUNTIMES
    image = settings.full_variant if full else settings.image
    return with_tag(image, runtime_version) if runtime_version else image


def with_tag(image: str, tag: str) -> str:
    """`repo:old` -> `repo:tag` (KServe's runtimeVersion); a digest-pinned image is kept."""
    if "@" in image:
        return image
    if image.rfind(":") > image.rfind("/"):
        image = image[: image.rfind(":")]
    return f"{image}:{tag}"
