"""A loopback OpenAI-compatible stand-in for judge=openai and verifier=openai: no endpoint, no key, no network.

    python -m tools.judge_server [--port 8000]      # serves until Ctrl-C; prints the dswarm overrides

    with JudgeServer(key="sk-...", fail_after=100) as server:     # in tests and benchmarks
        dswarm(*judge_overrides(server, "DSWARM_TEST_KEY"), ...)

It exists so the HTTP path (client, retries, failures, key handling) runs in tests, benchmarks
and by hand without a real endpoint; its verdicts are hashes, never real judgements.

The reply to a request is a pure function of its prompt, so two runs with the
same seed get the same scores: a rating 1-10 for a judge prompt; for a verifier
prompt ("Proposed answer: ...") its own answer and an agreement verdict, "yes" for
about half of the prompts (a stand-in: it knows no answers). Requests past ``fail_after``, and every
``fail_every``-th request, get HTTP 500 with a body that echoes the request's
Authorization header (a careless server: the key must still not leak).
"""
from __future__ import annotations

import argparse
import json
import threading
import zlib

from tools.loopback import JsonHandler, Loopback


def reply(prompt: str) -> str:
    """The stand-in's deterministic reply to one prompt."""
    h = zlib.crc32(prompt.encode())
    if "Proposed answer:" in prompt:
        proposed = prompt.split("Proposed answer:", 1)[1].split("\n", 1)[0].strip()
        agree = h % 2 == 0
        return f"Answer: {proposed if agree else 'something else'}\nAgree: {'yes' if agree else 'no'}"
    return str(h % 10 + 1)


class JudgeServer(Loopback):
    """``/v1/chat/completions`` on 127.0.0.1; counts requests and the ones that carried ``key``."""

    def __init__(self, key: str | None = None, fail_after: int | None = None, fail_every: int | None = None,
                 port: int = 0) -> None:
        self.key, self.fail_after, self.fail_every = key, fail_after, fail_every
        self.requests = self.authorized = self.failed = 0
        self.lock = threading.Lock()
        server = self

        class Handler(JsonHandler):
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

        self._listen(Handler, port)


def judge_overrides(server: JudgeServer, key_env: str) -> list[str]:
    """dswarm overrides for judge=openai against ``server``: no retries, no backoff, short timeout, and no
    reply cache (scripted failures count the requests that reach the server)."""
    return [
        "endpoints.cache=false",
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
    return ["verifier=openai", *(o.replace("judge.", "verifier.") for o in judge_overrides(server, key_env) if o != "judge=openai")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--key-env", default="DSWARM_JUDGE_KEY", help="env var the dswarm run reads its key from")
    args = parser.parse_args(argv)
    with JudgeServer(port=args.port) as server:
        print(f"serving {server.url}; any key is accepted. Try:\n  {args.key_env}=x dswarm "
              + " ".join(judge_overrides(server, args.key_env)), flush=True)
        try:
            server.thread.join()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
