"""What a replica's resources become: threads from cpu, a memory limit, GPUs, and its environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelplane.local.replicas.command import ReplicaPorts, replica_launch
from modelplane.local.replicas.resources import (
    THREAD_ENV,
    ReplicaResources,
    cpu_threads,
    replica_resources,
    resource_env,
)


@pytest.mark.parametrize(
    ("cpu", "threads"),
    [("500m", 1), ("100m", 1), ("1", 1), ("1500m", 2), ("2", 2), ("2.5", 3), (3, 3), ("0", 1), (None, None)],
)
def test_a_cpu_quantity_is_a_thread_count_rounded_up_and_at_least_one(cpu, threads):
    assert cpu_threads(cpu) == threads


def test_the_cpu_limit_wins_over_the_request_and_the_pod_bounds_the_container():
    assert replica_resources({"resources": {"limits": {"cpu": "4"}, "requests": {"cpu": "1"}}}).threads == 4
    assert replica_resources({"resources": {"requests": {"cpu": "1500m"}}}).threads == 2
    template = {
        "resources": {"limits": {"cpu": "4", "memory": "2Gi"}},
        "podResources": {"limits": {"cpu": "2"}},
    }
    assert replica_resources(template) == ReplicaResources(threads=2, memory_limit=2 * 2**30)
    assert replica_resources({"podResources": {"limits": {"memory": "512Mi"}}}).memory_limit == 512 * 2**20
    assert replica_resources({}) == ReplicaResources()


def test_only_a_memory_limit_is_enforced_and_gpus_come_from_the_limit_else_the_request():
    requested = replica_resources({"resources": {"requests": {"memory": "1Gi", "nvidia.com/gpu": "2"}}})
    assert requested == ReplicaResources(memory_limit=None, gpus=2)
    limited = replica_resources({"resources": {"limits": {"memory": "1G", "nvidia.com/gpu": 1}}})
    assert limited == ReplicaResources(memory_limit=10**9, gpus=1)


def test_thread_variables_come_from_the_cpu_but_the_containers_own_env_wins():
    env = resource_env(ReplicaResources(threads=3), {"OMP_NUM_THREADS": "8"}, ())
    assert env["OMP_NUM_THREADS"] == "8"
    assert all(env[name] == "3" for name in THREAD_ENV if name != "OMP_NUM_THREADS")
    assert "OMP_NUM_THREADS" not in resource_env(ReplicaResources(), {}, ())


def test_a_replica_sees_only_the_gpus_it_was_given_and_none_if_it_asked_for_none():
    assert resource_env(ReplicaResources(), {}, ())["CUDA_VISIBLE_DEVICES"] == ""
    # Its own CUDA_VISIBLE_DEVICES is kept when it asks for no GPU, not when it was given some.
    assert resource_env(ReplicaResources(), {"CUDA_VISIBLE_DEVICES": "0"}, ())["CUDA_VISIBLE_DEVICES"] == "0"
    given = resource_env(ReplicaResources(gpus=2), {"CUDA_VISIBLE_DEVICES": "0"}, ("1", "3"))
    assert given["CUDA_VISIBLE_DEVICES"] == "1,3"


def template(command: list[str], resources: dict) -> dict:
    return {"command": command, "env": {}, "ports": {"http": 8080, "grpc": 8081}, "resources": resources}


def test_modelplane_serve_gets_nthread_from_the_cpu_unless_its_arguments_set_it():
    def argv(command: list[str], cpu: str) -> list[str]:
        launch = replica_launch(
            template(command, {"limits": {"cpu": cpu}}),
            ReplicaPorts(41000, 41001),
            Path("/m"),
            domain="localhost",
            gateway_port=8080,
        )
        return launch.argv

    assert argv(["modelplane", "serve", "--model-dir=/mnt/models"], "2500m")[-1] == "--nthread=3"
    assert argv(["modelplane", "serve", "--nthread", "8"], "2").count("--nthread=2") == 0
    assert argv(["modelplane", "serve", "--nthread=8"], "2").count("--nthread=2") == 0
    assert argv([sys.executable, "server.py"], "2") == [sys.executable, "server.py"]
