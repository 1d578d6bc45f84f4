"""Secrets and safe loading.

- A planted API key, given only as an environment variable, reaches the judge
  server and nowhere else: no file of the run dir (config dumps, logs, W&B
  offline files, checkpoint, data) and neither stdout nor stderr hold it, even
  when the server echoes it back in its error bodies.
- The code loads weights only from safetensors (GGUF for SmolLM2), never runs
  remote code, and calls ``torch.load`` only with ``weights_only=True`` (checkpoints are safetensors files).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from tests.cli import FAST, REPO, dswarm
from tools.judge_server import JudgeServer, judge_overrides

KEY_ENV, KEY = "DSWARM_TEST_KEY", "sk-planted-XXXX-7c1e0d2b94"
SOURCES = [p for d in ("swarm", "generators", "objectives", "benchmarks") for p in sorted((REPO / d).rglob("*.py"))]


def files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p.relative_to(root)) for p in sorted(root.rglob("*")) if p.is_file() and needle in p.read_bytes()]


@pytest.mark.slow
def test_planted_key_never_leaves_the_environment(tiny_zoo, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    run_dir = tmp_path / "run"
    with JudgeServer(KEY, fail_every=4) as server:  # a quarter of the requests: 500 echoing the key
        out = dswarm(*FAST, *judge_overrides(server, KEY_ENV), "pso.max_steps=1", "logger=wandb", run_dir=run_dir)
        assert server.requests > 0 and server.authorized == server.requests, "the key must reach the judge"
        assert server.failed > 0
    assert "scores missing (judge failures" in out.stdout + out.stderr  # the failures were logged ...
    assert KEY not in out.stdout and KEY not in out.stderr  # ... without the key
    assert list((run_dir / "wandb").glob("offline-run-*")), "W&B offline files must exist to be checked"
    for rel in (".hydra/config.yaml", "checkpoint/state.safetensors", "dswarm.log", "metrics.jsonl", "summary.json"):
        assert (run_dir / rel).exists(), rel
    assert files_holding(tmp_path, KEY.encode()) == []
    assert files_holding(tmp_path, KEY.encode("utf-16-le")) == []
    assert KEY_ENV in (run_dir / ".hydra" / "config.yaml").read_text()  # the variable's name is fine


def test_openai_judge_never_shows_its_key(monkeypatch):
    from objectives.judging.llm_judges import OpenAIJudge

    monkeypatch.setenv(KEY_ENV, KEY)
    judge = OpenAIJudge(base_url="http://127.0.0.1:9/v1", model="m", api_key_env=KEY_ENV, timeout=0.5, max_retries=0)
    try:
        shown = [repr(judge), str(judge), repr(vars(judge)), str(vars(judge))]
        assert all(KEY not in text for text in shown)
    finally:
        judge.close()


def test_no_config_option_holds_a_secret():
    """Keys are read from the environment only: no config option may carry one."""
    secretish = re.compile(r"(api_?key|token|secret|password)$", re.IGNORECASE)

    def keys(node, prefix=""):
        if isinstance(node, dict):
            for k, v in node.items():
                yield f"{prefix}{k}"
                yield from keys(v, f"{prefix}{k}.")

    for path in sorted((REPO / "conf").rglob("*.yaml")):
        found = [k for k in keys(yaml.safe_load(path.read_text()) or {}) if secretish.search(k)]
        assert not found, f"{path.relative_to(REPO)}: {found} (name an environment variable instead: *_env)"


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func: ast.expr) -> str:
    return ast.unparse(func)


def _kw(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def scan(path: Path, root: Path) -> list[str]:
    """Unsafe loading in one source file: each problem as ``file:line: call ...``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    problems = []
    for call in _calls(tree):
        name = _name(call.func)
        where = f"{path.relative_to(root)}:{call.lineno}: {name}"
        if name == "torch.load" or name.endswith(".torch.load"):
            flag = _kw(call, "weights_only")
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                problems.append(f"{where} without weights_only=True")
        remote = _kw(call, "trust_remote_code")
        if remote is not None and not (isinstance(remote, ast.Constant) and remote.value is False):
            problems.append(f"{where} with trust_remote_code not False")
        safetensors = _kw(call, "use_safetensors")
        if safetensors is not None and not (isinstance(safetensors, ast.Constant) and safetensors.value is True):
            problems.append(f"{where} with use_safetensors not True")
        if name.endswith("ForCausalLM.from_pretrained") and safetensors is None and _kw(call, "gguf_file") is None:
            problems.append(f"{where} without use_safetensors=True (or gguf_file=)")
        if re.match(r"(pickle|cPickle|dill|joblib)\.loads?$", name):
            problems.append(f"{where}: unpickling")
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            if any(m.split(".")[0] in ("pickle", "cPickle", "dill") for m in modules):
                problems.append(f"{path.relative_to(root)}:{node.lineno}: imports a pickle module")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(REPO)) for p in SOURCES])
def test_loading_is_safe(path):
    """torch.load only with weights_only=True; no trust_remote_code=True; models only from safetensors or GGUF; no pickle."""
    assert scan(path, REPO) == []


def test_the_source_scan_catches_unsafe_loading(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import torch, pickle\n"
        "torch.load('x')\n"
        "torch.load('x', weights_only=False)\n"
        "AutoModelForCausalLM.from_pretrained('m', trust_remote_code=True)\n"
        "AutoModelForCausalLM.from_pretrained('m')\n"
        "pickle.loads(b'')\n"
    )
    text = "\n".join(scan(bad, tmp_path))
    assert text.count("without weights_only=True") == 2
    assert text.count("trust_remote_code not False") == 1 and text.count("without use_safetensors") == 2
    assert "unpickling" in text and "imports a pickle module" in text
