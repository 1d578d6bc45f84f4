"""Served takers (openai:<model>@<base_url>) against a real server: python -m tools.serve on loopback.

The server is the real CLI in a subprocess; a zoo model served there must answer and score as the
same model in-process, a dead server gives missing scores (never 0), and killing it mid-run stops
the run cleanly with its checkpoint, from which the same command resumes.
"""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generators.takers.lora_panel import AnswerSettings
from generators.takers.panel import Served, TakerSpec, build_panels
from generators.takers.specs import heldout_groups, resolve_takers
from objectives.endpoints import Endpoint
from swarm.runtime import checkpoint
from swarm.runtime.tracking import read_metrics
from tests.cli import DSWARM, REPO, SMALL, dswarm, env, read_jsonl

ZOO_ASKED = AnswerSettings(template="Q: {input}\nA:", max_new_tokens=10, stop="\n", batch_size=64)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m tools.serve --model DIR --name NAME --port PORT`` in a subprocess."""

    def __init__(self, model: Path, name: str, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.serve", "--model", str(model), "--name", name, "--port", str(port), "--threads", "1"],
            cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()  # "serving NAME at URL ..." once it listens
        assert line.startswith(f"serving {name} at "), line
        self.url = line.split()[3]
        self.entry = f"openai:{name}@{self.url}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.kill()


def test_an_entry_resolves_to_a_served_spec_asked_like_the_runs_takers():
    smol = AnswerSettings(template="What is {input}?", max_new_tokens=12, stop="\n", batch_size=32)
    entry = "openai:qwen@http://127.0.0.1:8000/v1"
    [mine] = resolve_takers([entry], None, ZOO_ASKED, False, smol, "taker.heldout")
    assert mine == TakerSpec("openai:qwen", None, None, ZOO_ASKED, served=Served("qwen", "http://127.0.0.1:8000/v1"))
    [shelf] = resolve_takers([entry], None, ZOO_ASKED, False, smol, "taker.heldout", served_as="off_the_shelf")
    assert (shelf.settings, shelf.chat_template, shelf.reverse_digits) == (smol, True, True)
    for bad in ("openai:qwen", "openai:@http://x/v1", "openai:qwen@localhost:8000"):
        with pytest.raises(ValueError, match="taker.heldout: .* is not openai:<model>@<base_url>"):
            resolve_takers([bad], None, ZOO_ASKED, False, smol, "taker.heldout")
    assert heldout_groups(["h1", "smollm2", "openai:qwen"]) == {"models": [0], "off_the_shelf": [1], "served": [2]}


@pytest.mark.slow
def test_a_served_zoo_model_answers_as_it_does_in_process(tiny_zoo):
    from generators.models.lora_model import LoraModel
    from objectives.tasks.arith import ArithTask

    inputs = [it.input for it in ArithTask(n_dev=60, seed=3).dev]
    with Server(tiny_zoo.heldout["h1"], "h1", 0) as server:
        spec = resolve_takers([server.entry], None, ZOO_ASKED, False, ZOO_ASKED, "taker.heldout")[0]
        local = TakerSpec("h1", tiny_zoo.heldout["h1"], None, ZOO_ASKED)
        [panel] = build_panels([[local, spec]], lambda base, adapters, chat_template: LoraModel(base, adapters),
                               serve=lambda s: Endpoint(s.served.base_url, s.served.model, api="completions"))
        here, served = panel.answer_all(inputs)
    assert served == here and len(set(here)) > 5  # the same greedy answers, and not one answer repeated


@pytest.mark.slow
def test_a_run_with_a_served_heldout_taker_scores_it_as_in_process(tiny_zoo, tmp_path, monkeypatch, caplog):
    from tests.inprocess import run

    key = "sk-served-planted-9d41"
    monkeypatch.setenv("DSWARM_TEST_SERVED_KEY", key)
    with Server(tiny_zoo.heldout["h1"], "h1", 0) as server:
        summary = run("pso.max_steps=1", "export.n_items=40", f"taker.heldout=[h1,h2,{server.entry}]",
                      "taker.api_key_env=DSWARM_TEST_SERVED_KEY", f"endpoints.cache_dir={tmp_path / 'cache'}",
                      run_dir=tmp_path / "run")
    leaked = [p for p in (tmp_path / "run").rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert leaked == [] and key not in caplog.text  # the key went to the server only
    takers = summary["heldout"]["takers"]
    assert takers["openai:h1"] is not None and takers["openai:h1"] == takers["h1"]
    assert summary["heldout_groups"]["served"]["takers"] == {"openai:h1": takers["h1"]}
    rows = [r for r in read_jsonl(tmp_path / "run" / "best" / "data.jsonl") if r["valid"]]
    assert rows and [r["heldout_scores"]["openai:h1"] for r in rows] == [r["heldout_scores"]["h1"] for r in rows]
    usage = summary["usage"]["models"]["h1"]
    assert usage["requests"] > 0 and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert summary["usage"]["failed"] == 0


@pytest.mark.slow
def test_a_dead_server_is_missing_scores_never_zero(tiny_zoo, tmp_path):
    from tests.inprocess import run

    dead = f"openai:h1@http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    summary = run("pso.max_steps=1", f"taker.heldout=[h1,{dead}]", "taker.endpoint_max_retries=1", "taker.endpoint_backoff=0",
                  "endpoints.cache=false", run_dir=tmp_path / "run")
    assert summary["heldout"]["takers"]["openai:h1"] is None and summary["heldout"]["takers"]["h1"] is not None
    rows = [r for r in read_jsonl(tmp_path / "run" / "best" / "data.jsonl") if r["valid"]]
    assert all(r["heldout_scores"]["openai:h1"] is None for r in rows)
    assert summary["heldout"]["missing"] == len(rows) and summary["usage"]["failed"] >= len(rows)
    assert summary["usage"]["retries"] == summary["usage"]["failed"]  # one retry each, then missing


@pytest.mark.slow
def test_killing_the_server_mid_run_stops_cleanly_and_the_same_command_resumes(tiny_zoo, tmp_path):
    port, run_dir = free_port(), tmp_path / "run"
    served = f"openai:t3@http://127.0.0.1:{port}/v1"
    args = ["logger=none", "pso.max_steps=3", f"taker.models=[t1,t2,{served}]", "judge.max_missing_fraction=0.2",
            "taker.endpoint_max_retries=0", f"endpoints.cache_dir={tmp_path / 'cache'}"]
    with Server(tiny_zoo.takers["t3"], "t3", port) as server:
        cmd = [str(DSWARM), *SMALL, *args, f"hydra.run.dir={run_dir}"]  # what tests.cli.dswarm runs
        proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while not read_metrics(run_dir) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()  # step 1 is logged: the served search taker goes away
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err[-3000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "judge.max_missing_fraction" in lines[0] and "checkpoint of step 1 kept" in lines[0]
    assert "Traceback" not in out + err
    assert checkpoint.load(run_dir)["step"] == 1 and [r["step"] for r in read_metrics(run_dir)] == [1]
    step1 = (run_dir / "data" / "step_001.jsonl").read_bytes()

    with Server(tiny_zoo.takers["t3"], "t3", port):  # back on the same port: the same command resumes
        resumed = dswarm(*args, run_dir=run_dir)
    assert f"resuming {run_dir} from step 1" in resumed.stdout + resumed.stderr
    assert [r["step"] for r in read_metrics(run_dir)] == [1, 2, 3]
    assert (run_dir / "data" / "step_001.jsonl").read_bytes() == step1  # nothing lost
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["search_takers"]["takers"]["openai:t3"] is not None
    rows = read_metrics(run_dir)
    # the killed process's step 1 traffic is in the totals (kept in the checkpoint), beside the resumed steps'
    assert rows[0]["usage/requests"] > 0 and summary["usage"]["requests"] >= sum(r["usage/requests"] for r in rows)
