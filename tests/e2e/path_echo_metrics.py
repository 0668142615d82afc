"""A replica that answers every GET with Prometheus text naming the path it was asked for: a scrape
of it says which path the platform read."""

from __future__ import annotations

from small_replica import SmallReplica, serve


class PathEcho(SmallReplica):
    content_type = "text/plain; version=0.0.4"

    def body(self) -> bytes:
        return f'# TYPE scraped_path gauge\nscraped_path{{path="{self.path}"}} 1\n'.encode()


if __name__ == "__main__":
    serve(PathEcho)
