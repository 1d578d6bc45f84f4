"""A loopback OpenAI-compatible judge for CLI tests: deterministic ratings, scripted failures.

    with JudgeServer(key="sk-...", fail_after=100) as server:
        dswarm(*judge_overrides(server, "DSWARM_TEST_KEY"), ...)

The reply to a request is a pure function of its prompt, so two runs with the
same seed get the same scores: a rating 1-10 for a judge prompt; for a verifier
prompt ("Proposed answer: ...") its own answer and an agreement verdict, "yes" for
about half of the prompts (a stand-in: it knows no answers). Requests past ``fail_after``, and every
``fail_every``-th request, get HTTP 500 with a body that echoes the request's
Authorization header (a careless server: the key must still not leak).
"""
from __future__ import annotations

import json
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Small, fast runs of the tiny zoo (on top of tests/cli.py's SMALL).
FAST = [
    "generator.prompts_per_step=1",
    "export.n_items=5",
    "objective.novelty_items=8",
    "task.n_dev=16",
    "task.n_test=16",
]


def reply(prompt: str) -> str:
    """The stand-in's deterministic reply to one prompt."""
    h = zlib.crc32(prompt.encode())
    if "Proposed answer:" in prompt:
        proposed = prompt.split("Proposed answer:", 1)[1].split("\n", 1)[0].strip()
        agree = h % 2 == 0
        return f"Answer: {proposed if agree else 'something else'}\nAgree: {'yes' if agree else 'no'}"
    return str(h % 10 + 1)


class JudgeServer:
    """``/v1/chat/completions`` on 127.0.0.1; counts requests and the ones that carried ``key``."""

    def __init__(self, key: str | None = None, fail_after: int | None = None, fail_every: int | None = None) -> None:
        self.key, self.fail_after, self.fail_every = key, fail_after, fail_every
        self.requests = self.authorized = self.failed = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with server.lock:
                    server.requests += 1
                    n = server.requests
                    server.authorized += self.headers.get("authorization") == f"Bearer {server.key}"
                    fail = (server.fail_after is not None and n > server.fail_after) or (
                        server.fail_every is not None and n % server.fail_every == 0
                    )
                    server.failed += fail
                if fail:
                    echo = f"scripted failure; you sent {self.headers.get('authorization')}"
                    self._send(500, {"error": {"message": echo}})
                    return
                prompt = json.loads(body)["messages"][0]["content"]
                self._send(200, {"choices": [{"message": {"role": "assistant", "content": reply(prompt)}}]})

            def _send(self, code: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "JudgeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def judge_overrides(server: JudgeServer, key_env: str) -> list[str]:
    """dswarm overrides for judge=openai against ``server``: no retries, no backoff, short timeout."""
    return [
        "judge=openai",
        f"judge.base_url={server.url}",
        "judge.model=loopback",
        f"judge.api_key_env={key_env}",
        "judge.max_retries=0",
        "judge.backoff=0",
        "judge.timeout=10",
        "judge.concurrency=4",
    ]


def verifier_overrides(server: JudgeServer, key_env: str) -> list[str]:
    """dswarm overrides for verifier=openai against ``server`` (same fast settings as the judge's)."""
    return ["verifier=openai", *(o.replace("judge.", "verifier.") for o in judge_overrides(server, key_env)[1:])]
