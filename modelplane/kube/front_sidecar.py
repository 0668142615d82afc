"""The sidecars KServe's agent stands for, in front of a model server that neither logs nor batches
itself: a `logger` (payload_logging.py) and a `batcher` (batcher.py) container, chained as KServe's one
agent handles a request: the pod's port is the first's (KServe's agent port, 9081), which passes each
request to the next, and the last to the model server's port on 127.0.0.1.

A Knative Service's pod serves the port of one container, so in Knative mode the front sidecar is that
container: the others declare no port (the model server listens where it did), the serving container's
HTTP or TCP readiness probe becomes the front's (an HTTP one passes through the chain to the model
server), the sidecars behind it have no probe (Knative takes a sidecar's probes only with its
`multi-container-probing` feature), and each sidecar listens only once the one behind it does, so that
Knative's default TCP probe of the front's port says the whole chain is up. KServe's pod webhook does the
same after Knative has made the pod (it points the queue-proxy at its agent); modelplane writes it in
the Knative Service.
"""

from __future__ import annotations

import copy

from modelplane.api.constants import AGENT_PORT
from modelplane.kube.batcher import BATCHER_CONTAINER, BEHIND_LOGGER_PORT, batcher_container
from modelplane.kube.payload_logging import LOGGER_CONTAINER, logger_container
from modelplane.kube.settings import KubeSettings

FRONT_SIDECARS = (LOGGER_CONTAINER, BATCHER_CONTAINER)
# How each sidecar is told to listen only once the one behind it does.
_WAIT_FLAGS = {LOGGER_CONTAINER: "--wait-for-component", BATCHER_CONTAINER: "--wait-for-upstream"}


def front_sidecars(
    isvc: dict, component: str, spec: dict, settings: KubeSettings, *, logs: bool, batches: bool, port: int
) -> list[dict]:
    """The chain in front of the model server at `port`, the front one first: a `logger` (when `logs`),
    then a `batcher` (when `batches`)."""
    chain = []
    if batches:
        batcher_port = BEHIND_LOGGER_PORT if logs else AGENT_PORT
        chain.append(batcher_container(spec["batcher"], settings, batcher_port, port))
        port = batcher_port
    if logs:
        chain.append(logger_container(isvc, component, spec, settings, port))
    return chain[::-1]


def serve_behind(containers: list[dict], serving: dict, chain: list[dict]) -> None:
    """A Knative pod whose port is the front sidecar's (`chain[0]`): no other container declares one,
    and the readiness probe of the `serving` container (an HTTP or TCP one) is the front's, with
    Knative's port. The port has no name: Knative's webhook takes only h2c or http1 there (the protocol
    it speaks to it)."""
    front = chain[0]
    for container in containers:
        container.pop("ports", None)
    for sidecar in chain:
        del sidecar["ports"], sidecar["readinessProbe"]  # Knative's default: a TCP probe of the front's port
        sidecar["args"].append(_WAIT_FLAGS[sidecar["name"]])
    front["ports"] = [{"containerPort": AGENT_PORT, "protocol": "TCP"}]
    probe = serving.get("readinessProbe")
    if isinstance(probe, dict) and any(
        isinstance(probe.get(kind), dict) for kind in ("httpGet", "tcpSocket")
    ):
        moved = copy.deepcopy(serving.pop("readinessProbe"))
        for kind in ("httpGet", "tcpSocket"):
            if isinstance(moved.get(kind), dict):
                moved[kind].pop("port", None)
        front["readinessProbe"] = moved
