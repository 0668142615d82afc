"""The startup hook a Python replica runs (python_startup/sitecustomize.py): names under `localhost` are
the loopback address whatever the system's resolver knows, for the socket module, asyncio, uvloop and
the HTTP clients on them; other names are the resolver's; the `sitecustomize` it hides still runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from modelplane.local.replicas.command import PYTHON_STARTUP


def run_python(code: str, *python_path: Path) -> dict:
    """What `code` prints as JSON, run as a replica runs: the startup hook first on its PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (PYTHON_STARTUP, *python_path)))}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    return json.loads(result.stdout)


def test_names_under_localhost_are_the_loopback_in_the_family_asked():
    seen = run_python(
        """
        import json, socket
        def addresses(*args, **kwargs):
            return [answer[4][0] for answer in socket.getaddrinfo(*args, **kwargs)]
        try:
            socket.getaddrinfo("a.localhost", 80, flags=socket.AI_NUMERICHOST)
            numeric = "resolved"
        except socket.gaierror:
            numeric = "refused"
        print(json.dumps({
            "any": addresses("iris-predictor.default.localhost", 8080, type=socket.SOCK_STREAM),
            "v6": addresses("Iris-Predictor.Default.LOCALHOST.", "http", socket.AF_INET6, socket.SOCK_STREAM),
            "bytes": addresses(b"x.localhost", None, socket.AF_INET, socket.SOCK_STREAM),
            "numeric": numeric,
            "other": addresses("127.0.0.2", 80, socket.AF_INET, socket.SOCK_STREAM),
            "by_name": socket.gethostbyname("iris-predictor.default.localhost"),
            "by_name_ex": socket.gethostbyname_ex("x.localhost"),
        }))
        """
    )
    assert seen["any"] == ["127.0.0.1", "::1"]  # the gateway listens on 127.0.0.1: it comes first
    assert seen["v6"] == ["::1"]
    assert seen["bytes"] == ["127.0.0.1"]
    assert seen["numeric"] == "refused"  # AI_NUMERICHOST: a name is no address, as before
    assert seen["other"] == ["127.0.0.2"]
    assert seen["by_name"] == "127.0.0.1"
    assert seen["by_name_ex"] == ["x.localhost", [], ["127.0.0.1"]]


def test_http_clients_reach_a_server_by_a_name_under_localhost_on_asyncio_and_uvloop():
    seen = run_python(
        """
        import asyncio, json, threading, urllib.request
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import httpx

        class Host(BaseHTTPRequestHandler):
            def do_GET(self):
                body = self.headers["host"].encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Host)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host = f"iris-predictor.default.localhost:{server.server_address[1]}"
        url = f"http://{host}/"
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        async def asynchronous():
            async with httpx.AsyncClient(trust_env=False) as client:
                answer = (await client.get(url)).text
            reader, writer = await asyncio.open_connection(*host.split(":"))
            writer.close()
            return answer

        import uvloop  # after the hook, as uvicorn imports it

        print(json.dumps({
            "urllib": no_proxy.open(url).read().decode(),
            "httpx": httpx.get(url, trust_env=False).text,
            "asyncio": asyncio.run(asynchronous()),
            "uvloop": uvloop.run(asynchronous()),
        }))
        """
    )
    host = seen["urllib"]
    assert host.startswith("iris-predictor.default.localhost:")  # the Host header keeps the name
    assert seen == {"urllib": host, "httpx": host, "asyncio": host, "uvloop": host}


def test_the_sitecustomize_it_hides_still_runs(tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.path.append('/added/by/the/user')\n")
    seen = run_python(
        """
        import json, socket, sys
        print(json.dumps({
            "module": sys.modules["sitecustomize"].__file__,
            "last_path": sys.path[-1],
            "resolved": socket.gethostbyname("x.localhost"),
        }))
        """,
        tmp_path,
    )
    assert seen == {
        "module": str(tmp_path / "sitecustomize.py"),
        "last_path": "/added/by/the/user",
        "resolved": "127.0.0.1",
    }
