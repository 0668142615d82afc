"""How a custom container's command becomes a replica's: its interpreter and its `$(PORT)`."""

from __future__ import annotations

import sys
from pathlib import Path

from modelplane.local.replicas.command import PYTHON_STARTUP, ReplicaPorts, replica_launch


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


def test_port_in_the_args_is_the_replicas_port():
    launch = launch_of(["python3", "app/predictor.py", "--http_port", "$(PORT)", "--grpc_port=$(PORT)1"])
    assert launch.argv[2:] == ["--http_port", "41000", "--grpc_port=410001"]


def test_a_knative_revision_has_knatives_variables_in_its_env_and_args():
    template = {
        "command": ["./server", "--name=$(K_REVISION)"],
        "env": {},
        "ports": {"http": 8080, "grpc": 8081},
    }
    launch = replica_launch(
        template,
        ReplicaPorts(41000, 41001),
        None,
        domain="localhost",
        gateway_port=80,
        knative_revision="iris-predictor-00002",
    )
    assert launch.argv == ["./server", "--name=iris-predictor-00002"]
    assert (launch.env["K_SERVICE"], launch.env["K_CONFIGURATION"], launch.env["K_REVISION"]) == (
        "iris-predictor",
        "iris-predictor",
        "iris-predictor-00002",
    )


def test_a_standard_revision_has_no_knative_variables():
    launch = launch_of(["./server", "$(K_REVISION)"])
    assert launch.argv == ["./server", "$(K_REVISION)"]
    assert "K_REVISION" not in launch.env


def test_a_program_not_in_python_is_told_how_its_predictor_host_resolves():
    args = ["--predictor_host", "iris-predictor.default", "--model_name", "iris"]
    notes = launch_of(["/opt/transformer/bin/transformer", *args]).notes
    assert any(
        "add `127.0.0.1 iris-predictor.default.localhost` to /etc/hosts" in note
        and "resolver does not resolve names under localhost" in note
        for note in notes
    ), notes
    python = launch_of([sys.executable, "transformer.py", *args]).notes  # the startup hook resolves it
    served = launch_of(["modelplane", "serve", "--predictor_host=iris-predictor.default"]).notes
    assert not any("/etc/hosts" in note for note in (*python, *served))


def test_the_startup_hook_comes_first_on_a_replicas_python_path(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/platform/lib")
    assert launch_of(["python3", "app.py"]).env["PYTHONPATH"] == f"{PYTHON_STARTUP}:/platform/lib"
    template = {"command": ["python3", "app.py"], "env": {}, "ports": {"http": 8080, "grpc": 8081}}
    ports = ReplicaPorts(41000, 41001)
    declared = {"PYTHONPATH": "/opt/app"}  # from a ConfigMap by `envFrom` (`env` may not set it)
    from_config_map = replica_launch(
        template, ports, None, domain="localhost", gateway_port=80, declared_env=declared
    )
    assert from_config_map.env["PYTHONPATH"] == f"{PYTHON_STARTUP}:/opt/app"
    monkeypatch.delenv("PYTHONPATH")
    assert launch_of(["./server"]).env["PYTHONPATH"] == str(PYTHON_STARTUP)
    assert (PYTHON_STARTUP / "sitecustomize.py").is_file()


def test_a_program_written_with_kserves_sdk_is_told_the_replicas_ports(tmp_path):
    (tmp_path / "predictor.py").write_text("import argparse\nfrom kserve import Model, ModelServer\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "serve.py").write_text("import kserve\n")
    (tmp_path / "plain.py").write_text("import fastapi\n")
    cwd = {"workingDir": str(tmp_path)}
    told = launch_of(["python3", "predictor.py"], **cwd)
    assert told.argv[-2:] == ["--http_port=41000", "--grpc_port=41001"]
    assert any("predictor.py uses KServe's SDK" in note for note in told.notes)
    assert launch_of(["python3", "-u", "-m", "pkg.serve"], **cwd).argv[-2:] == [
        "--http_port=41000",
        "--grpc_port=41001",
    ]
    assert launch_of(["python3", "plain.py"], **cwd).argv[-1] == "plain.py"
    for written in ("from modelplane.server import Model, ModelServer", "import modelplane.server as ms"):
        (tmp_path / "ours.py").write_text(f"import argparse\n{written}\n")
        assert launch_of(["python3", "ours.py"], **cwd).argv[-2:] == [
            "--http_port=41000",
            "--grpc_port=41001",
        ]
    (tmp_path / "other.py").write_text("from modelplane.protocol import v2\n")  # not the server's SDK
    assert launch_of(["python3", "other.py"], **cwd).argv[-1] == "other.py"
    code = "import kserve\n" + "x = 1\n" * 300  # a program given as text, longer than a file name may be
    assert launch_of(["python3", "-c", code], **cwd).argv[-1] == code
    explicit = launch_of(["python3", "predictor.py", "--http_port", "8080"], **cwd)
    assert explicit.argv[-3:] == ["--http_port", "41000", "--grpc_port=41001"]  # 8080 rewritten as before
    assert any("(--grpc_port=41001)" in note for note in explicit.notes)
    both = launch_of(["python3", "predictor.py", "--http_port=8080", "--grpc_port=8081"], **cwd)
    assert both.argv[-2:] == ["--http_port=41000", "--grpc_port=41001"]
    assert not any("uses KServe's SDK" in note for note in both.notes)


def test_a_transformer_told_to_use_ssl_speaks_plain_http_to_the_gateway():
    host = ["--predictor_host", "iris-predictor.default"]
    told = launch_of(["/opt/venv/bin/python", "transformer.py", *host, "--predictor_use_ssl=true"])
    assert told.argv[-1] == "--predictor_use_ssl=false"
    assert any("--predictor_use_ssl true" in note and "plain loopback port" in note for note in told.notes)
    spaced = launch_of(["python3", "transformer.py", "--predictor_use_ssl", "True", *host])
    assert spaced.argv[2:4] == ["--predictor_use_ssl", "false"]
    kept = ["--predictor_use_ssl=false", "--predictor_use_ssl", "--model_name", "iris"]
    assert launch_of(["python3", "transformer.py", *host, *kept]).argv[-4:] == kept
    elsewhere = ["--predictor_host=predictor.example.com:443", "--predictor_use_ssl=true"]
    assert launch_of(["python3", "transformer.py", *elsewhere]).argv[-1] == "--predictor_use_ssl=true"
