"""The PyTorch examples' models, made here without downloads: TorchServe model stores for the
image classifiers of the dog-breed pipeline, and a TorchScript program.

The classifiers are `image-classifier/model.py`'s ColourNet with weights set by hand, so their answers
can be checked by eye: the cat-or-dog classifier calls a reddish picture a dog and a bluish one a cat;
the breed classifier calls a dog with much green in it a golden retriever and one with little a beagle.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLASSIFIER = HERE / "image-classifier"
CAT_DOG_LABELS = ["dog", "cat"]
BREEDS = ["golden_retriever", "beagle", "poodle", "husky", "pug", "corgi"]


def colour_net(channel_weights: list[list[float]], biases: list[float]):
    """A ColourNet scoring each class as the weighted sum of the picture's mean red, green and blue
    (after TorchServe's ImageNet normalisation)."""
    import torch

    sys.path.insert(0, str(CLASSIFIER))
    try:
        from model import ColourNet
    finally:
        sys.path.remove(str(CLASSIFIER))
    net = ColourNet(classes=len(channel_weights)).eval()
    with torch.no_grad():
        conv = net.features[0]
        conv.weight.zero_()
        conv.bias.zero_()
        for channel in range(3):
            conv.weight[channel, channel, 1, 1] = 1.0  # the channel, where positive
            conv.weight[channel + 3, channel, 1, 1] = -1.0  # and its negation, where negative
        linear = net.classifier
        for index, (red, green, blue) in enumerate(channel_weights):
            linear.weight[index] = torch.tensor([red, green, blue, -red, -green, -blue])
        linear.bias.copy_(torch.tensor(biases))
    return net


def cat_dog_net():
    return colour_net([[1.0, 0.0, -1.0], [-1.0, 0.0, 1.0]], [0.0, 0.0])


def breed_net():
    weights = [[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]] + [[0.0, 0.0, 0.0]] * (len(BREEDS) - 2)
    return colour_net(weights, [0.0, 0.0] + [-5.0] * (len(BREEDS) - 2))


def write_mar(
    store: Path,
    name: str,
    net,
    labels: list[str],
    handler: str,
    *,
    version: str = "1.0",
    extra_files: list[Path] = (),
) -> Path:
    """Packs an eager-mode model (ColourNet's code and its state dict) into `store/<name>.mar` with
    torch-model-archiver, TorchServe's own packer."""
    import torch

    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        torch.save(net.state_dict(), work / "weights.pt")
        # TorchServe builds the model with no arguments: this archive's ColourNet has its class count.
        source = (CLASSIFIER / "model.py").read_text()
        (work / "model.py").write_text(source.replace("classes: int = 2", f"classes: int = {len(labels)}"))
        (work / "index_to_name.json").write_text(
            json.dumps({str(i): label for i, label in enumerate(labels)})
        )
        extras = [str(work / "index_to_name.json"), *(str(path) for path in extra_files)]
        subprocess.run(
            [
                *_archiver(),
                "--model-name", name,
                "--version", version,
                "--model-file", str(work / "model.py"),
                "--serialized-file", str(work / "weights.pt"),
                "--handler", handler,
                "--extra-files", ",".join(extras),
                "--export-path", str(store),
                "--force",
            ],
            check=True,
        )  # fmt: skip
    return store / f"{name}.mar"


def write_config(folder: Path, models: dict[str, dict], **properties: str) -> Path:
    """`config/config.properties` as KServe's examples write it, declaring `models` (name -> the
    snapshot entry of its one version, e.g. {"marName": "x.mar", "batchSize": 4})."""
    snapshot = {
        "name": "startup.cfg",
        "modelCount": len(models),
        "models": {
            name: {
                entry.pop("version", "1.0"): {
                    "defaultVersion": True,
                    "minWorkers": 1,
                    "maxWorkers": 1,
                    "batchSize": 1,
                    "maxBatchDelay": 10,
                    "responseTimeout": 120,
                    **entry,
                }
            }
            for name, entry in ((name, dict(entry)) for name, entry in models.items())
        },
    }
    lines = {
        "inference_address": "http://0.0.0.0:8085",
        "management_address": "http://0.0.0.0:8085",
        "metrics_address": "http://0.0.0.0:8082",
        "enable_metrics_api": "true",
        "model_store": "/mnt/models/model-store",
        "load_models": "all",
        **properties,
        "model_snapshot": json.dumps(snapshot),
    }
    config = folder / "config" / "config.properties"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))
    return config


def write_classifier_store(folder: Path, name: str, net, labels: list[str], handler: str, **entry) -> Path:
    """A KServe TorchServe model store serving one classifier under `name`."""
    shutil.rmtree(folder, ignore_errors=True)
    write_mar(folder / "model-store", name, net, labels, handler)
    write_config(folder, {name: {"marName": f"{name}.mar", **entry}})
    return folder


def write_dog_breed_stores(root: Path) -> list[Path]:
    """The two model stores of the dog-breed pipeline: `cat-dog-classifier` answers one label per
    picture with a handler of its own; `dog-breed-classifier` answers TorchServe's image_classifier's
    top five breeds with their scores."""
    return [
        write_classifier_store(
            root / "cat-dog-classifier",
            "cat-dog-classifier",
            cat_dog_net(),
            CAT_DOG_LABELS,
            str(CLASSIFIER / "top_label_handler.py"),
        ),
        write_classifier_store(
            root / "dog-breed-classifier", "dog-breed-classifier", breed_net(), BREEDS, "image_classifier"
        ),
    ]


def write_torchscript(folder: Path) -> Path:
    """A TorchScript program taking a batch of 4 float features and answering 3 class scores."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, and still served
        torch.jit.trace(net, torch.zeros(1, 4)).save(str(folder / "model.pt"))
    return folder


def write_torchscript_mar(store: Path, name: str, handler: str = "base_handler") -> Path:
    """Packs `write_torchscript`'s program into `store/<name>.mar`: a TorchScript archive needs no model
    code, and TorchServe's base_handler loads it as it is."""
    with tempfile.TemporaryDirectory() as scratch:
        program = write_torchscript(Path(scratch) / "program") / "model.pt"
        subprocess.run(
            [
                *_archiver(),
                "--model-name", name,
                "--version", "1.0",
                "--serialized-file", str(program),
                "--handler", handler,
                "--export-path", str(store),
                "--force",
            ],
            check=True,
        )  # fmt: skip
    return store / f"{name}.mar"


def _archiver() -> list[str]:
    executable = Path(sys.executable).with_name("torch-model-archiver")
    if executable.exists():
        return [str(executable)]
    return [sys.executable, "-m", "model_archiver.model_packaging"]
