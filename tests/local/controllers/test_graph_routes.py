"""The gateway routes of the InferenceGraphs of `modelplane up` (no processes: stand-in routers)."""

from __future__ import annotations

from modelplane.api.conditions import FAILED_TO_LOAD, LOADED, LOADING, PENDING
from modelplane.control import Revision
from modelplane.control.observed import Failure, RevisionState
from modelplane.local.controllers.graphs import GraphReconciler, _Graph
from modelplane.local.replicas.supervisor import SupervisorSettings

HOST = "chain.default.localhost"


class Router:
    """Stands for the replicas of a router revision: `ready` addresses, or none while it starts."""

    def __init__(
        self,
        number: int,
        addresses: tuple[str, ...] = (),
        unschedulable: str | None = None,
        failure: str | None = None,
    ) -> None:
        name = f"chain-router-{number:05d}"
        self.revision = Revision(name, "router", number, f"d{number}", {"timeout": 30})
        self._addresses = addresses
        self._unschedulable = unschedulable
        self._failure = failure

    def addresses(self) -> tuple[str, ...]:
        return self._addresses

    def state(self) -> RevisionState:
        if self._failure is not None:  # its one replica failed to start
            return RevisionState(
                self.revision.name, FAILED_TO_LOAD, failed_replicas=1, failure=Failure("Error", self._failure)
            )
        phase = LOADED if self._addresses else PENDING if self._unschedulable else LOADING
        return RevisionState(self.revision.name, phase, unschedulable=self._unschedulable)


def reconciler_with(tmp_path, graph: _Graph) -> GraphReconciler:
    reconciler = GraphReconciler(None, SupervisorSettings(logs_dir=tmp_path), on_routes=lambda: None)
    reconciler._graphs[(graph.namespace, graph.name)] = graph
    return reconciler


def test_a_starting_router_has_the_host_so_that_requests_wait_for_it(tmp_path):
    starting = Router(1)
    graph = _Graph(
        "default", "chain", running={starting.revision.name: starting}, latest=starting.revision.name
    )
    backends = reconciler_with(tmp_path, graph).routes()[HOST].backends
    assert [(b.revision, b.replicas, b.timeout_seconds) for b in backends] == [
        ("chain-router-00001", (), 30.0)
    ]


def test_the_serving_router_keeps_the_host_while_a_new_one_starts(tmp_path):
    serving, starting = Router(1, ("127.0.0.1:9000",)), Router(2)
    graph = _Graph(
        "default",
        "chain",
        running={r.revision.name: r for r in (serving, starting)},
        latest=starting.revision.name,
        serving=serving.revision.name,
    )
    backends = reconciler_with(tmp_path, graph).routes()[HOST].backends
    assert [(b.revision, b.replicas) for b in backends] == [("chain-router-00001", ("127.0.0.1:9000",))]


def test_a_graph_without_a_router_has_no_host(tmp_path):
    """Waiting for its services, or stopped."""
    assert reconciler_with(tmp_path, _Graph("default", "chain")).routes() == {}


def test_a_first_router_that_cannot_start_leaves_the_host_to_say_why(tmp_path):
    """A router whose resources ask for a GPU this machine does not have: a request is answered at once
    with why, as a service's is, instead of waiting for a replica that never starts."""
    stuck = Router(1, unschedulable="needs 1 GPU (nvidia.com/gpu: 1), and this machine has no GPU")
    graph = _Graph("default", "chain", running={stuck.revision.name: stuck}, latest=stuck.revision.name)
    graph.not_ready = 'Revision "chain-router-00001" cannot start: needs 1 GPU ...'
    reconciler = reconciler_with(tmp_path, graph)
    assert reconciler.routes() == {}
    assert reconciler.unavailable() == {
        HOST: 'InferenceGraph default/chain is not ready: Revision "chain-router-00001" cannot start: needs 1 GPU ...'
    }


def test_a_first_router_whose_replicas_failed_leaves_the_host_to_say_why(tmp_path):
    """A router that exits as it starts: a request is answered at once with why, not after the
    activator's timeout."""
    failed = Router(1, failure="the router exited with code 2")
    graph = _Graph("default", "chain", running={failed.revision.name: failed}, latest=failed.revision.name)
    graph.not_ready = 'Revision "chain-router-00001" failed with message: the router exited with code 2.'
    reconciler = reconciler_with(tmp_path, graph)
    assert reconciler.routes() == {}
    assert reconciler.unavailable()[HOST].startswith("InferenceGraph default/chain is not ready: Revision")


def test_a_serving_router_that_failed_since_refuses_at_once(tmp_path):
    """Woken from zero, say, and every replica failed: its requests are answered 503 with why."""
    failed = Router(1, failure="the router exited with code 2")
    graph = _Graph(
        "default",
        "chain",
        running={failed.revision.name: failed},
        latest=failed.revision.name,
        serving=failed.revision.name,
    )
    route = reconciler_with(tmp_path, graph).routes()[HOST]
    assert route.refusal == (
        "the router of InferenceGraph default/chain does not serve: the router exited with code 2"
    )
    serving = Router(1, ("127.0.0.1:9000",))
    graph.running = {serving.revision.name: serving}
    assert reconciler_with(tmp_path, graph).routes()[HOST].refusal is None
