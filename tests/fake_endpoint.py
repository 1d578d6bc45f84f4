"""A scripted OpenAI-compatible endpoint on loopback for the client's tests (objectives/endpoints.py, the judges)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer:
    """A chat-completions and completions endpoint; ``plan`` is consumed one action per request, then
    ``default``. A reply reports usage: the prompt's characters and the reply's characters as tokens.
    ``peak`` is the most requests it held at once."""

    def __init__(self):
        self.plan, self.default = [], ("ok", "8")
        self.requests, self.lock = [], threading.Lock()
        self.active = self.peak = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = json.loads(body)
                with outer.lock:
                    outer.requests.append((self.path, dict(self.headers), request))
                    action = outer.plan.pop(0) if outer.plan else outer.default
                    outer.active += 1
                    outer.peak = max(outer.peak, outer.active)
                try:
                    kind, arg = action
                    if kind == "sleep":
                        time.sleep(arg)
                        kind, arg = "ok", "5"
                    if kind == "status":
                        self._send(arg, b'{"error": "boom"}')
                    elif kind == "raw":
                        self._send(200, arg)
                    elif kind == "429":
                        self._send(429, b"{}", {"Retry-After": "0" if arg is None else arg})
                    else:
                        prompt = request.get("prompt") or request["messages"][0]["content"]
                        usage = {"prompt_tokens": len(prompt), "completion_tokens": len(arg)}
                        msg = {"choices": [{"message": {"role": "assistant", "content": arg}, "text": arg}], "usage": usage}
                        self._send(200, json.dumps(msg).encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with outer.lock:
                        outer.active -= 1

            def _send(self, code, body, headers=None):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
