"""The image's steps, checked where no container engine runs: the Dockerfile's build stage (its ARG,
ENV, WORKDIR, COPY and RUN steps, read from the Dockerfile itself) runs in a fresh virtual environment
under a temporary folder, standing in for the image's filesystem; then each entry point the image runs
on a cluster starts from the entry point the final stage names."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
# What a container runs: `<entrypoint> ARGS` (docs/kubernetes.md lists where each is used).
ENTRY_POINTS = [
    ["--help"],
    ["serve", "--help"],
    ["router", "--help"],
    ["storage", "fetch", "--help"],
    ["agent", "--help"],
    ["logger", "--help"],
]
# The libraries each extra of the slim image brings, as the runtimes import them.
EXTRA_MODULES = {
    "sklearn": ["sklearn", "joblib"],
    "xgboost": ["xgboost"],
    "lightgbm": ["lightgbm"],
    "onnx": ["onnxruntime"],
    "pandas": ["pandas"],
    "storage": ["boto3", "google.cloud.storage", "azure.storage.blob"],
    "kube": ["lightkube"],
}
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass
class Instruction:
    keyword: str
    argument: str


@dataclass
class Stage:
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def read_dockerfile(text: str) -> tuple[dict[str, str | None], list[Stage]]:
    """The global ARGs and the stages of a Dockerfile (continuation lines joined, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, argument = line.strip().partition(" ")
        keyword, argument = keyword.upper(), argument.strip()
        if keyword == "FROM":
            parts = argument.split()
            stages.append(Stage(parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None))
        elif not stages and keyword == "ARG":
            name, _, default = argument.partition("=")
            global_args[name] = default if "=" in argument else None
        else:
            stages[-1].instructions.append(Instruction(keyword, argument))
    return global_args, stages


class StageRunner:
    """Runs a build stage's steps on this machine, with `root` standing for the image's `/`."""

    def __init__(self, root: Path, context: Path) -> None:
        self.root = root
        self.context = context
        self.cwd = root
        root.mkdir(parents=True)
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.args: dict[str, str] = {}

    def path(self, path: str) -> Path:
        return self.root / path.lstrip("/") if path.startswith("/") else self.cwd / path

    def expand(self, text: str) -> str:
        values = {**self.env, **self.args}
        return _VARIABLE.sub(lambda m: values.get(m.group(1) or m.group(2), ""), text)

    def run(self, instruction: Instruction) -> None:
        keyword, argument = instruction.keyword, instruction.argument
        if keyword == "ARG":
            name, _, default = argument.partition("=")
            if "=" in argument:
                self.args[name] = self.expand(default)
        elif keyword == "ENV":
            for pair in shlex.split(argument):
                name, _, value = pair.partition("=")
                # Literal absolute paths are the image's; variables already hold this machine's.
                value = ":".join(str(self.path(p)) if p.startswith("/") else p for p in value.split(":"))
                self.env[name] = self.expand(value)
        elif keyword == "WORKDIR":
            self.cwd = self.path(self.expand(argument))
            self.cwd.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            *sources, destination = shlex.split(argument)
            assert not any(s.startswith("--") for s in sources), f"COPY {argument}: not a build-context copy"
            target = self.path(destination)
            for source in sources:
                origin = self.context / source
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
        elif keyword == "RUN":
            assert not re.search(r"(^|[\s=\"'])/[A-Za-z]", argument), (
                f"RUN {argument}: a literal absolute path would be this machine's; use a variable"
            )
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", argument],
                cwd=self.cwd,
                env={**self.env, **self.args},
                capture_output=True,
                text=True,
                timeout=1200,
                check=False,
            )
            assert result.returncode == 0, f"RUN {argument}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        else:
            raise AssertionError(f"the build stage has a {keyword} step this test does not run")


def test_reading_the_dockerfile():
    """The reader joins continued lines and tells stages apart (checked on a small Dockerfile)."""
    global_args, stages = read_dockerfile(
        'ARG V=3\n# comment\nFROM a:${V} AS build\nRUN one \\\n    two\nFROM b\nENTRYPOINT ["x"]\n'
    )
    assert global_args == {"V": "3"}
    assert [s.name for s in stages] == ["build", None]
    assert stages[0].instructions == [Instruction("RUN", "one      two")]


@pytest.mark.image
@pytest.mark.timeout(1500)
def test_the_image_steps_install_modelplane_and_its_entry_points_start(tmp_path):
    global_args, stages = read_dockerfile(DOCKERFILE.read_text())
    build = next(stage for stage in stages if stage.name == "build")
    final = stages[-1]
    runner = StageRunner(tmp_path / "image", REPO)
    runner.args.update({k: v for k, v in global_args.items() if v is not None})
    for instruction in build.instructions:
        runner.run(instruction)

    # The final stage takes the virtual environment from the build stage, where it was built.
    copies = [i.argument.split() for i in final.instructions if i.keyword == "COPY"]
    assert copies == [
        ["--from=build", runner.env["VIRTUAL_ENV"].removeprefix(str(runner.root)), "/opt/modelplane"]
    ]
    entrypoint = next(i.argument for i in final.instructions if i.keyword == "ENTRYPOINT")
    program = Path(runner.env["VIRTUAL_ENV"]) / "bin" / eval(entrypoint)[0]  # noqa: S307 - a JSON list
    assert program.exists(), program
    env = {**runner.env, "HOME": str(tmp_path / "home")}

    subcommands = subprocess.run(
        [
            str(program.parent / "python"),
            "-c",
            "from modelplane.cli.main import SUBCOMMANDS; print(*SUBCOMMANDS)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
    ).stdout.split()
    entry_points = ENTRY_POINTS + ([["operator", "--help"]] if "operator" in subcommands else [])
    for arguments in entry_points:
        result = subprocess.run(
            [str(program), *arguments],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )
        assert result.returncode == 0, f"{arguments}: {result.stderr}"
        assert "usage: modelplane" in result.stdout
    # It is the image's own installation that runs, not this checkout.
    where = subprocess.run(
        [str(program.parent / "python"), "-c", "import modelplane; print(modelplane.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(str(runner.root)), where

    extras = runner.args["EXTRAS"].split(",")
    modules = [module for extra in extras for module in EXTRA_MODULES[extra]]
    imported = subprocess.run(
        [
            str(program.parent / "python"),
            "-c",
            "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]",
            *modules,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr

    # The storage initializer, as the pods run it: a model folder fetched into an emptyDir's folder
    # (from a pvc:// folder, which needs no network here; pods mount a claim instead of fetching it).
    (tmp_path / "claim" / "iris").mkdir(parents=True)
    (tmp_path / "claim" / "iris" / "model.joblib").write_bytes(b"weights")
    provision = tmp_path / "provision"
    provision.mkdir()
    for _ in range(2):  # the second run is a restarted pod's: it keeps what the first one fetched
        fetched = subprocess.run(
            [
                str(program),
                "storage",
                "fetch",
                "pvc://claim/iris",
                str(provision / "models"),
                "--no-cache",
                "--keep-existing",
                "--pvc-dir",
                str(tmp_path),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )
        assert fetched.returncode == 0, fetched.stderr
    assert (provision / "models" / "model.joblib").read_bytes() == b"weights"
