"""How a custom container's command becomes a replica's: its interpreter and its `$(PORT)`."""

from __future__ import annotations

import sys
from pathlib import Path

from modelplane.local.replicas.command import ReplicaPorts, replica_launch


def launch_of(command: list[str], env: dict | None = None, **template_fields):
    template = {"command": command, "env": env or {}, "ports": {"http": 8080, "grpc": 8081}}
    template.update(template_fields)
    return replica_launch(template, ReplicaPorts(41000, 41001), None, domain="localhost", gateway_port=80)


def test_a_bare_python_runs_the_platforms_interpreter_and_says_so():
    launch = launch_of(["python3", "app/predictor.py"])
    assert launch.argv == [sys.executable, "app/predictor.py"]
    assert any("python3" in note and sys.executable in note for note in launch.notes)


def test_an_interpreter_this_machine_has_runs_as_written(tmp_path):
    interpreter = tmp_path / "venv" / "bin" / "python"
    interpreter.parent.mkdir(parents=True)
    interpreter.symlink_to(sys.executable)
    launch = launch_of([str(interpreter), "app/predictor.py"])
    assert launch.argv == [str(interpreter), "app/predictor.py"]
    assert launch.notes == ()


def test_an_images_interpreter_this_machine_lacks_runs_the_platforms_and_says_so():
    absent = "/nonexistent/image/usr/bin/python3.11"
    launch = launch_of([absent, "-m", "app"])
    assert launch.argv == [sys.executable, "-m", "app"]
    assert any(absent in note for note in launch.notes)


def test_modelplane_runs_from_the_platforms_installation():
    launch = launch_of(["modelplane", "serve"])
    assert launch.argv[:3] == [sys.executable, "-m", "modelplane"]


def test_a_relative_interpreter_is_looked_for_in_the_working_dir(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").symlink_to(sys.executable)
    launch = launch_of(["bin/python", "main.py"], workingDir=str(tmp_path))
    assert launch.argv == ["bin/python", "main.py"]
    assert launch.cwd == str(tmp_path)
    assert Path(launch.cwd, launch.argv[0]).exists()
