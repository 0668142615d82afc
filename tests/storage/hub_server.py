"""A local Hugging Face Hub for the storage tests: the part of the Hub's HTTP API huggingface_hub's
snapshot_download uses, over the repositories in a folder.

    python hub_server.py ROOT --token TOKEN

ROOT/<owner>/<name>/ holds each repository's files, at one commit (the SHA-1 of its listing). Every
request must carry `Authorization: Bearer TOKEN`; without it the Hub answers 401 as it does for a
private repository. Prints `listening on <port>` once ready; `/__stats` counts the requests and the
authorization headers seen.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_REVISION = re.compile(r"^/api/models/([^/]+)/([^/]+)/revision/(.+)$")
_TREE = re.compile(r"^/api/models/([^/]+)/([^/]+)/tree/([^/]+)(?:/.*)?$")
_RESOLVE = re.compile(r"^/([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$")


class Repository:
    def __init__(self, folder: Path) -> None:
        self.files = {
            path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        }
        listing = json.dumps({name: hashlib.sha1(data).hexdigest() for name, data in self.files.items()})
        self.commit = hashlib.sha1(listing.encode()).hexdigest()

    def knows(self, revision: str) -> bool:
        return revision in ("main", self.commit)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root: Path
    token: str
    lock = threading.Lock()
    stats: dict = {"requests": 0, "authorizations": []}

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        if self.path == "/__stats":
            with self.lock:
                self._send(200, json.dumps(self.stats).encode())
            return
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        with self.lock:
            self.stats["requests"] += 1
            self.stats["authorizations"].append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self._error(401, "RepoNotFound", "Repository not found", head)
            return
        for pattern, answer in ((_REVISION, self._revision), (_TREE, self._tree), (_RESOLVE, self._file)):
            match = pattern.match(path)
            if match:
                owner, name, revision = match[1], match[2], match[3]
                folder = self.root / owner / name
                if not folder.is_dir():
                    self._error(404, "RepoNotFound", "Repository not found", head)
                    return
                repository = Repository(folder)
                if not repository.knows(revision):
                    self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
                    return
                answer(repository, f"{owner}/{name}", match, head)
                return
        self._error(404, "EntryNotFound", "not found", head)

    def _revision(self, repository: Repository, repo_id: str, match: re.Match, head: bool) -> None:
        siblings = [{"rfilename": name} for name in repository.files]
        document = {"id": repo_id, "modelId": repo_id, "sha": repository.commit, "siblings": siblings}
        self._send(200, json.dumps(document).encode(), head=head)

    def _tree(self, repository: Repository, repo_id: str, match: re.Match, head: bool) -> None:
        entries = [
            {"type": "file", "oid": hashlib.sha1(data).hexdigest(), "size": len(data), "path": name}
            for name, data in repository.files.items()
        ]
        self._send(200, json.dumps(entries).encode(), head=head)

    def _file(self, repository: Repository, repo_id: str, match: re.Match, head: bool) -> None:
        data = repository.files.get(match[4])
        if data is None:
            self._error(404, "EntryNotFound", f"{match[4]} does not exist", head)
            return
        headers = {"X-Repo-Commit": repository.commit, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
        self._send(200, data, "application/octet-stream", headers, head)

    def _error(self, status: int, code: str, message: str, head: bool) -> None:
        self._send(status, json.dumps({"error": message}).encode(), headers={"X-Error-Code": code}, head=head)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        head: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--token", required=True)
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    Handler.root = options.root
    Handler.token = options.token
    server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
