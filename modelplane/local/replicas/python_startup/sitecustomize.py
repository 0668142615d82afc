"""Run at startup by every Python program `modelplane up` starts as a replica, as this folder comes first
on the replica's PYTHONPATH: names under `localhost` are the loopback address (RFC 6761), whatever the
system's resolver knows. The platform tells a transformer its predictor as
`<name>-predictor.<namespace>.localhost:<gateway port>`, which glibc alone (without systemd-resolved)
does not resolve. Names outside `localhost` go to the system's resolver as before. The `sitecustomize`
this module hides (the interpreter's, a virtualenv's, the user's) runs after it.

The replica's interpreter may be older than the platform's: this file keeps to Python 3.6.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import os
import socket
import sys

LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}

_system_getaddrinfo = socket.getaddrinfo
_system_gethostbyname = socket.gethostbyname
_system_gethostbyname_ex = socket.gethostbyname_ex


def is_loopback_name(host):
    """Whether `host` (str or bytes, as getaddrinfo takes it) is a name under `localhost`."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return isinstance(host, str) and host.rstrip(".").lower().endswith(".localhost")


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    if not is_loopback_name(host) or flags & socket.AI_NUMERICHOST or family not in (0, *LOOPBACK):
        return _system_getaddrinfo(host, port, family, type, proto, flags)
    # IPv4 first where either will do: the gateway listens on 127.0.0.1.
    families = [family] if family else [socket.AF_INET, socket.AF_INET6]
    answers, error = [], None
    for each in families:
        try:
            answers.extend(_system_getaddrinfo(LOOPBACK[each], port, each, type, proto, flags))
        except socket.gaierror as exc:  # a machine without IPv6
            error = exc
    if not answers:
        raise error
    return answers


def gethostbyname(host):
    return LOOPBACK[socket.AF_INET] if is_loopback_name(host) else _system_gethostbyname(host)


def gethostbyname_ex(host):
    if is_loopback_name(host):
        return host, [], [LOOPBACK[socket.AF_INET]]
    return _system_gethostbyname_ex(host)


def _patch_uvloop(uvloop):
    """uvloop's loop resolves in libuv, not through the socket module (uvicorn picks it when installed)."""
    loop_class = uvloop.Loop
    uvloop_create_connection = loop_class.create_connection
    uvloop_getaddrinfo = loop_class.getaddrinfo

    async def loop_getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        if is_loopback_name(host):
            return getaddrinfo(host, port, family, type, proto, flags)
        return await uvloop_getaddrinfo(self, host, port, family=family, type=type, proto=proto, flags=flags)

    async def create_connection(self, protocol_factory, host=None, port=None, **options):
        if is_loopback_name(host):
            if options.get("ssl") and options.get("server_hostname") is None:
                options["server_hostname"] = host
            host = LOOPBACK[socket.AF_INET6 if options.get("family") == socket.AF_INET6 else socket.AF_INET]
        return await uvloop_create_connection(self, protocol_factory, host, port, **options)

    loop_class.getaddrinfo = loop_getaddrinfo
    loop_class.create_connection = create_connection


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches a module once it is imported (if it ever is), so that importing this file costs little."""

    def __init__(self, name, patch):
        self.name = name
        self.patch = patch

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            self.patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def _run_hidden_sitecustomize():
    """The `sitecustomize` the interpreter would have run without this folder on its path."""
    here = os.path.dirname(os.path.abspath(__file__))
    elsewhere = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", elsewhere)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


socket.getaddrinfo = getaddrinfo
socket.gethostbyname = gethostbyname
socket.gethostbyname_ex = gethostbyname_ex
if "uvloop" in sys.modules:
    _patch_uvloop(sys.modules["uvloop"])
else:
    sys.meta_path.insert(0, _PatchOnImport("uvloop", _patch_uvloop))
_run_hidden_sitecustomize()
