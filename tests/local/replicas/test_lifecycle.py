"""What a template's lifecycle and grace period become for a replica."""

from __future__ import annotations

import signal

from modelplane.local.replicas.command import ReplicaPorts
from modelplane.local.replicas.lifecycle import lifecycle_errors, replica_lifecycle

PORTS = ReplicaPorts(41000, 41001)
TEMPLATE = {"ports": {"http": 8080, "grpc": 8081}}


def test_hooks_signal_and_grace_of_a_template():
    lifecycle = replica_lifecycle(
        {
            **TEMPLATE,
            "lifecycle": {
                "postStart": {"httpGet": {"path": "/warm", "port": 8080}},
                "preStop": {"sleep": {"seconds": 3}},
                "stopSignal": "SIGINT",
            },
            "terminationGracePeriodSeconds": 45,
        },
        PORTS,
        {},
    )
    assert lifecycle.post_start.describe() == "GET http://127.0.0.1:41000/warm"  # the replica's port
    assert lifecycle.pre_stop.describe() == "sleep 3s"
    assert (lifecycle.stop_signal, lifecycle.grace) == (signal.SIGINT, 45.0)


def test_no_lifecycle_is_sigterm_and_the_platform_s_grace():
    lifecycle = replica_lifecycle(TEMPLATE, PORTS, {})
    assert (lifecycle.post_start, lifecycle.pre_stop) == (None, None)
    assert (lifecycle.stop_signal, lifecycle.grace) == (signal.SIGTERM, None)


def test_a_tcp_socket_hook_is_not_run_as_kubernetes_does_not_run_it():
    lifecycle = replica_lifecycle(
        {**TEMPLATE, "lifecycle": {"preStop": {"tcpSocket": {"port": 8080}}}}, PORTS, {}
    )
    assert lifecycle.pre_stop is None


def test_a_stop_signal_that_is_not_one_is_refused():
    (error,) = lifecycle_errors({"lifecycle": {"stopSignal": "SIGNOPE"}}, "spec.predictor.containers[0]")
    assert error.path == "spec.predictor.containers[0].lifecycle.stopSignal"
    assert error.message.startswith('Unsupported value: "SIGNOPE"')
    assert list(lifecycle_errors({"lifecycle": {"stopSignal": "SIGUSR1"}}, "c")) == []
