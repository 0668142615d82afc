import itertools
import socket

from modelplane.local import ports
from modelplane.local.ports import free_loopback_port


def test_the_port_is_below_the_range_outgoing_connections_take_theirs_from():
    first_ephemeral = int(ports.EPHEMERAL_RANGE.read_text().split()[0])
    for _ in range(50):
        port = free_loopback_port()
        assert ports.LOWEST <= port < first_ephemeral
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_something_listens_on_is_passed_over(monkeypatch):
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", free_loopback_port()))
        taken.listen()
        busy = taken.getsockname()[1]
        choices = itertools.chain([busy, busy], itertools.repeat(busy + 1))
        monkeypatch.setattr(ports.random, "randint", lambda low, high: next(choices))
        assert free_loopback_port() == busy + 1
