"""Where a replica's processes listen, and why a replica that listens elsewhere is not ready."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from modelplane.local.ports import free_loopback_port
from modelplane.local.replicas import listening
from modelplane.local.replicas.listening import (
    Listener,
    PortCheck,
    listeners,
    not_reached_reason,
    port_given_in,
)

PORT, GRPC_PORT = 34567, 34568
PROBED = "the platform probes it and sends it requests at 127.0.0.1:34567"


def reason(*found: Listener, given_in: tuple[str, ...] = ("$PORT",)) -> str | None:
    return not_reached_reason(found, PORT, {GRPC_PORT}, given_in)


def test_a_program_on_another_port_is_named_with_how_it_was_told_its_own():
    assert reason(Listener("127.0.0.1", 8080), given_in=("$PORT", "--http_port")) == (
        "the program listens on 127.0.0.1:8080, not on its port 34567 (given in $PORT and --http_port); "
        + PROBED
    )


def test_a_program_on_its_port_at_an_address_not_probed_is_told_so():
    assert reason(Listener("::1", PORT)) == (
        f"the program listens on its port 34567 at [::1] only, not at 127.0.0.1; {PROBED}"
    )
    assert reason(Listener("::1", PORT), Listener("0.0.0.0", 8080)) == (
        "the program listens on 0.0.0.0:8080, not on its port 34567 (given in $PORT); "
        f"the program listens on its port 34567 at [::1] only, not at 127.0.0.1; {PROBED}"
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1"])
def test_a_program_reached_on_its_port_is_not_faulted_for_its_other_ports(host):
    assert reason(Listener(host, PORT), Listener("127.0.0.1", 9090)) is None


def test_nothing_is_said_of_a_program_that_listens_nowhere_yet_or_on_its_grpc_port_alone():
    assert reason() is None
    assert reason(Listener("127.0.0.1", GRPC_PORT)) is None


def test_many_ports_are_counted_past_the_first_five():
    found = [Listener("127.0.0.1", port) for port in range(9001, 9009)]
    assert reason(*found).startswith(
        "the program listens on 127.0.0.1:9001, 127.0.0.1:9002, 127.0.0.1:9003, 127.0.0.1:9004, "
        "127.0.0.1:9005 and 3 more, not on its port 34567"
    )


def test_how_a_replica_was_told_its_port():
    assert port_given_in(["python", "t.py", "--http_port", "34567", "--grpc_port=34568"], PORT) == (
        "$PORT",
        "--http_port",
    )
    assert port_given_in(["server", "--port=34567"], PORT) == ("$PORT", "--port")
    assert port_given_in(["python", "-m", "http.server", "34567"], PORT) == ("$PORT", "its arguments")
    assert port_given_in(["python", "server.py"], PORT) == ("$PORT",)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("0100007F:1F90", Listener("127.0.0.1", 8080)),
        ("00000000:0050", Listener("0.0.0.0", 80)),
        ("00000000000000000000000001000000:1F90", Listener("::1", 8080)),
        ("0000000000000000FFFF00000100007F:1F90", Listener("::ffff:127.0.0.1", 8080)),
    ],
)
def test_proc_net_tcp_addresses_are_read_in_the_machine_s_byte_order(written, expected):
    if sys.byteorder != "little":
        pytest.skip("the examples are as a little-endian machine writes them")
    assert listening._address(written) == expected


@pytest.mark.skipif(not listening.can_look(), reason="this system has no /proc/net/tcp")
def test_the_listeners_of_a_process_and_the_processes_under_it_are_found():
    parent_port, child_port = free_loopback_port(), free_loopback_port()
    program = (
        "import socket, subprocess, sys, time\n"
        "def listen(port):\n"
        "    s = socket.socket(); s.bind(('127.0.0.1', port)); s.listen(); return s\n"
        "held = listen(int(sys.argv[1]))\n"
        "if len(sys.argv) > 2:\n"
        "    subprocess.Popen([sys.executable, '-c', sys.argv[3], sys.argv[2]])\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", program, str(parent_port), str(child_port), program], start_new_session=True
    )
    try:
        expected = {Listener("127.0.0.1", parent_port), Listener("127.0.0.1", child_port)}
        deadline = time.monotonic() + 30
        while listeners(process.pid) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listeners(process.pid) == expected
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_a_check_looks_one_second_after_the_start_then_at_growing_intervals(monkeypatch):
    looked = []
    monkeypatch.setattr(listening, "can_look", lambda: True)
    monkeypatch.setattr(listening, "listeners", lambda pid: looked.append(now[0]) or {Listener("::1", 1)})
    now = [100.0]
    check = PortCheck(1, 2, (), ("$PORT",), clock=lambda: now[0])
    for _ in range(4000):  # 40 s of probes, every 0.01 s
        check.look()
        now[0] += 0.01
    assert [round(at - 100) for at in looked] == [1, 3, 7, 15, 25, 35]
    assert check.reason and check.reason.startswith("the program listens on [::1]:1, not on its port 2")


def test_a_check_says_nothing_where_there_is_no_proc(monkeypatch, tmp_path):
    monkeypatch.setattr(listening, "_PROC", tmp_path / "proc")
    now = [0.0]
    check = PortCheck(1, 2, (), ("$PORT",), clock=lambda: now[0])
    now[0] = 60.0
    assert not listening.can_look()
    assert check.look() is None
    assert listeners(1) == set()
