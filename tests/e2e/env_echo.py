"""A replica that answers every request with its environment and its command line, as JSON."""

from __future__ import annotations

import json
import os
import sys

from small_replica import SmallReplica, serve


class Echo(SmallReplica):
    content_type = "application/json"

    def body(self) -> bytes:
        return json.dumps({"env": dict(os.environ), "argv": sys.argv[1:]}).encode()


if __name__ == "__main__":
    serve(Echo)
