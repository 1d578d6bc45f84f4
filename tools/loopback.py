"""A JSON-over-HTTP server on 127.0.0.1 in a background thread: what tools/judge_server.py and tools/serve.py share.

Loopback only, so a test or benchmark that starts one never reaches the network. A server subclasses
`Loopback`, defines its request handler on `JsonHandler` (``self._send(code, obj)`` replies with JSON) and calls
``self._listen(Handler, port)``; ``with server:`` serves while the block runs, and ``server.url`` is its
``http://127.0.0.1:<port>/v1`` (port 0 picks a free one).
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["JsonHandler", "Loopback"]


class JsonHandler(BaseHTTPRequestHandler):
    """A handler that replies with JSON and logs nothing (the console belongs to the test or the URL line)."""

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Loopback:
    """Serves a `JsonHandler` on 127.0.0.1 from a daemon thread, inside ``with``."""

    def _listen(self, handler: type[JsonHandler], port: int) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
