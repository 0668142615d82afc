"""A container's volumeMounts on one machine: each volume a folder here, standing for its mountPath."""

from __future__ import annotations

import stat

import pytest

from modelplane.local.replicas.command import ModelMount, ReplicaPorts, replica_launch
from modelplane.local.replicas.container_env import EnvError
from modelplane.local.replicas.volumes import replica_volumes

STORED = {
    ("ConfigMap", "team", "settings"): {"app.yaml": b"level: debug\n", "other": b"x"},
    ("Secret", "team", "tls"): {"tls.key": b"\x00\x01binary\xff"},
}


def lookup(kind: str, namespace: str, name: str):
    return STORED.get((kind, namespace, name))


def volumes(mounts: list[dict], sources: list[dict], tmp_path):
    spec = {"mounts": mounts, "sources": {s["name"]: s for s in sources}}
    return replica_volumes(spec, "team", tmp_path / "replica", lookup, tmp_path / "pvc")


def test_config_maps_and_secrets_become_files_with_their_modes(tmp_path):
    made = volumes(
        [{"name": "config", "mountPath": "/etc/app"}, {"name": "certs", "mountPath": "/etc/tls/"}],
        [
            {
                "name": "config",
                "configMap": {"name": "settings", "items": [{"key": "app.yaml", "path": "conf/app.yaml"}]},
            },
            {"name": "certs", "secret": {"secretName": "tls", "defaultMode": 0o400}},
        ],
        tmp_path,
    )
    by_path = {m.path: m.folder for m in made.mounts}
    assert (by_path["/etc/app"] / "conf" / "app.yaml").read_bytes() == b"level: debug\n"
    assert not (by_path["/etc/app"] / "other").exists()  # only the items asked for
    key = by_path["/etc/tls"] / "tls.key"
    assert key.read_bytes() == b"\x00\x01binary\xff"
    assert stat.S_IMODE(key.stat().st_mode) == 0o400
    assert made.notes == []


def test_a_missing_source_holds_the_replica_unless_optional(tmp_path):
    mounts = [{"name": "config", "mountPath": "/etc/app"}]
    with pytest.raises(EnvError, match='configmap "gone" not found'):
        volumes(mounts, [{"name": "config", "configMap": {"name": "gone"}}], tmp_path)
    made = volumes(mounts, [{"name": "config", "configMap": {"name": "gone", "optional": True}}], tmp_path)
    assert list(made.mounts[0].folder.iterdir()) == []
    with pytest.raises(EnvError, match="has no key missing"):
        items = [{"key": "missing", "path": "m"}]
        volumes(mounts, [{"name": "config", "configMap": {"name": "settings", "items": items}}], tmp_path)
    with pytest.raises(EnvError, match="leaves the volume"):
        items = [{"key": "other", "path": "../../escape"}]
        volumes(mounts, [{"name": "config", "configMap": {"name": "settings", "items": items}}], tmp_path)


def test_empty_dirs_claims_host_paths_and_sub_paths(tmp_path):
    (tmp_path / "pvc" / "shared" / "models").mkdir(parents=True)
    scratch = tmp_path / "replica" / "scratch"
    scratch.mkdir(parents=True)
    (scratch / "left-over").write_text("from the last start")
    made = volumes(
        [
            {"name": "scratch", "mountPath": "/tmp/work"},
            {"name": "data", "mountPath": "/data", "subPath": "models"},
            {"name": "host", "mountPath": "/host-etc"},
            {"name": "nfs", "mountPath": "/nfs"},
        ],
        [
            {"name": "scratch", "emptyDir": {}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "shared"}},
            {"name": "host", "hostPath": {"path": "/etc"}},
            {"name": "nfs", "nfs": {"server": "10.0.0.1", "path": "/x"}},
        ],
        tmp_path,
    )
    by_path = {m.path: m.folder for m in made.mounts}
    assert by_path["/tmp/work"] == scratch and list(scratch.iterdir()) == []  # a new replica's is empty
    assert by_path["/data"] == tmp_path / "pvc" / "shared" / "models"
    assert str(by_path["/host-etc"]) == "/etc"
    assert "/nfs" not in by_path
    assert made.notes == ["volume nfs (nfs) is not made on one machine: its mountPath is left as written"]


def test_mount_paths_stand_for_their_folders_in_the_command_and_the_environment(tmp_path):
    template = {
        "command": [
            "serve",
            "--config=/etc/app/app.yaml",
            "--extra",
            "/etc/app-extra/x",
            "--model=/mnt/models",
        ],
        "env": {"CERTS": "/etc/app/tls:/etc/app"},
        "ports": {"http": 8080, "grpc": 8081},
    }
    mounts = [ModelMount(tmp_path / "app", "/etc/app"), ModelMount(tmp_path / "extra", "/etc/app-extra")]
    launch = replica_launch(
        template, ReplicaPorts(1, 2), tmp_path / "model", domain="localhost", gateway_port=3, volumes=mounts
    )
    assert launch.argv[1:] == [
        f"--config={tmp_path}/app/app.yaml",
        "--extra",
        f"{tmp_path}/extra/x",
        f"--model={tmp_path}/model",
    ]
    assert launch.env["CERTS"] == f"{tmp_path}/app/tls:{tmp_path}/app"


def test_a_file_of_this_machine_under_a_mount_path_is_left_as_it_is(tmp_path):
    program = tmp_path / "work" / "app.py"
    program.parent.mkdir()
    program.write_text("print('hello')")
    volume = tmp_path / "volume"
    volume.mkdir()
    template = {
        "command": ["python", str(program), f"--out={tmp_path}/work/out", str(tmp_path / "work")],
        "env": {},
        "ports": {"http": 8080, "grpc": 8081},
    }
    mounts = [ModelMount(volume, str(tmp_path / "work"))]
    launch = replica_launch(
        template, ReplicaPorts(1, 2), None, domain="localhost", gateway_port=3, volumes=mounts
    )
    assert launch.argv[1:] == [str(program), f"--out={volume}/out", str(volume)]


def test_a_sub_path_expr_is_expanded_from_the_containers_variables(tmp_path):
    spec = {
        "mounts": [{"name": "logs", "mountPath": "/var/log/app", "subPathExpr": "$(POD_NAME)/logs"}],
        "sources": {"logs": {"name": "logs", "emptyDir": {}}},
    }
    made = replica_volumes(spec, "team", tmp_path / "r", lookup, tmp_path / "pvc", {"POD_NAME": "iris-0"})
    assert made.mounts[0].folder == tmp_path / "r" / "logs" / "iris-0" / "logs"
    assert made.mounts[0].folder.is_dir()


def test_an_empty_dir_outlives_a_restart_of_the_replicas_process(tmp_path):
    spec = {
        "mounts": [{"name": "scratch", "mountPath": "/work"}],
        "sources": {"scratch": {"name": "scratch", "emptyDir": {}}},
    }
    first = replica_volumes(spec, "team", tmp_path / "r", lookup, tmp_path / "pvc")
    (first.mounts[0].folder / "checkpoint").write_text("step 10")
    again = replica_volumes(spec, "team", tmp_path / "r", lookup, tmp_path / "pvc", fresh=False)
    assert (again.mounts[0].folder / "checkpoint").read_text() == "step 10"
    new = replica_volumes(spec, "team", tmp_path / "r", lookup, tmp_path / "pvc")
    assert list(new.mounts[0].folder.iterdir()) == []


def test_downward_api_and_projected_volumes_write_the_pods_facts_and_their_sources(tmp_path):
    from modelplane.local.replicas.container_env import Pod

    pod = Pod(
        "iris-predictor-00001-0", "team", {"app": "isvc.iris-predictor", "tier": "gold"}, {"owner": "ml"}
    )
    downward = {
        "items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "cpu", "resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}},
        ]
    }
    spec = {
        "mounts": [{"name": "info", "mountPath": "/etc/podinfo"}, {"name": "all", "mountPath": "/etc/all"}],
        "sources": {
            "info": {"name": "info", "downwardAPI": downward},
            "all": {
                "name": "all",
                "projected": {
                    "defaultMode": 0o440,
                    "sources": [
                        {
                            "configMap": {
                                "name": "settings",
                                "items": [{"key": "app.yaml", "path": "app.yaml"}],
                            }
                        },
                        {"secret": {"name": "tls"}},
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "path": "owner",
                                        "fieldRef": {"fieldPath": "metadata.annotations['owner']"},
                                    }
                                ]
                            }
                        },
                        {"serviceAccountToken": {"path": "token"}},
                    ],
                },
            },
        },
    }
    made = replica_volumes(
        spec,
        "team",
        tmp_path / "r",
        lookup,
        tmp_path / "pvc",
        pod=pod,
        resources={"limits": {"cpu": "1500m"}},
    )
    info = made.mounts[0].folder
    assert (info / "labels").read_text() == 'app="isvc.iris-predictor"\ntier="gold"'
    assert (info / "name").read_text() == "iris-predictor-00001-0"
    assert (info / "cpu").read_text() == "1500"
    projected = made.mounts[1].folder
    assert sorted(p.name for p in projected.iterdir()) == ["app.yaml", "owner", "tls.key"]
    assert (projected / "owner").read_text() == "ml"
    assert stat.S_IMODE((projected / "tls.key").stat().st_mode) == 0o440
    assert made.notes == ["volume all: its serviceAccountToken source is not made on one machine"]
