"""The replicas that died lately are remembered for a while, then forgotten."""

from __future__ import annotations

from modelplane.local.replicas import crashes
from modelplane.local.replicas.crashes import CrashedReplicas


def test_a_crash_is_remembered_for_a_while(monkeypatch):
    crashed = CrashedReplicas()
    assert crashed.recent() == frozenset()
    crashed.add("127.0.0.1:4000")
    assert crashed.recent() == {"127.0.0.1:4000"}
    monkeypatch.setattr(crashes, "REMEMBERED_FOR", -1.0)
    assert crashed.recent() == frozenset()
