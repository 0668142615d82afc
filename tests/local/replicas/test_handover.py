"""What a restart in place hands over, seen from the program that takes it back."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import uvloop

from modelplane.local import platform
from modelplane.local.replicas.handover import HandedReplica, ReplicaHandover, template_digest
from modelplane.local.replicas.inherited import InheritedChild, adopted_socket, kept_across_exec

TEMPLATE = {"command": ["python", "-m", "modelplane", "serve"], "args": ["--model-name", "iris"]}


def handed(name: str, pid: int, template: dict = TEMPLATE) -> HandedReplica:
    return HandedReplica(name, template_digest(template), pid, False, 1, 2, loaded=True)


def test_a_replica_is_given_back_only_under_its_name_and_template():
    handover = ReplicaHandover(inherited={"iris-predictor-1-0": handed("iris-predictor-1-0", 10)})
    assert handover.take("iris-predictor-1-1", TEMPLATE) is None
    assert handover.take("iris-predictor-1-0", {**TEMPLATE, "args": ["--model-name", "other"]}) is None
    assert handover.take("iris-predictor-1-0", TEMPLATE).pid == 10
    assert handover.take("iris-predictor-1-0", TEMPLATE) is None  # given back once
    assert HandedReplica.from_json(handed("x", 3).to_json()) == handed("x", 3)


def test_the_replicas_of_a_revision_handed_over_are_counted_until_taken_back():
    names = [
        "iris-predictor-00001-0",
        "iris-predictor-00001-2",
        "iris-predictor-00002-0",
        "iris-predictor-0000-1",
    ]
    handover = ReplicaHandover(inherited={name: handed(name, index) for index, name in enumerate(names)})
    assert handover.count("iris-predictor-00001") == 2
    assert handover.count("iris-predictor-00002") == 1
    assert handover.count("iris-predictor-0000") == 1  # not the revisions whose names go on
    handover.take("iris-predictor-00001-2", TEMPLATE)
    assert handover.count("iris-predictor-00001") == 1


def test_a_replica_nothing_takes_back_is_stopped_and_reaped(monkeypatch):
    monkeypatch.setattr(platform, "UNCLAIMED_AFTER", 0.0)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)

    async def scenario() -> None:
        handover = ReplicaHandover(inherited={"gone-0": handed("gone-0", child.pid)})
        await platform._stop_unclaimed(handover)
        assert handover.inherited == {}
        for _ in range(100):  # stopped, and reaped: not even a zombie is left
            try:
                os.kill(child.pid, 0)
            except ProcessLookupError:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the unclaimed replica is still there")

    asyncio.run(scenario())


def test_an_inherited_child_reports_how_it_ended():
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])

    async def scenario() -> int:
        return await asyncio.wait_for(InheritedChild(child.pid).wait(), 10)

    assert asyncio.run(scenario()) == 3


def test_a_socket_taken_back_is_not_inherited_by_the_replicas_started_after_the_restart():
    listening = socket.create_server(("127.0.0.1", 0))
    taken_back = adopted_socket(kept_across_exec(listening))
    listening.close()

    async def child_sees_it() -> bool:  # the platform's loop: uvloop keeps inheritable descriptors open
        probe = f"import os; os.fstat({taken_back.fileno()})"
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", probe, stderr=subprocess.DEVNULL)
        return await child.wait() == 0

    try:
        assert not uvloop.run(child_sees_it())
    finally:
        taken_back.close()
