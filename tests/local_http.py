"""A loopback HTTP server for download tests (never the internet): serves a folder, records each request."""

from __future__ import annotations

import contextlib
import http.server
import threading
from functools import partial
from pathlib import Path
from typing import Iterator

__all__ = ["serve_folder"]


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):  # noqa: N802
        self.server.hits.append(self.path)
        super().do_GET()


@contextlib.contextmanager
def serve_folder(root: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve ``root`` on 127.0.0.1 (a free port); yields ``(base_url, hits)``, hits the request paths so far."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    httpd.hits = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.hits
    finally:
        httpd.shutdown()
        httpd.server_close()
