"""Crash safety, bad model output and judge faults.

- SIGKILL a real `dswarm` at a random moment, rerun the same command: the
  result is byte-identical to an uninterrupted run, and nothing the killed run
  left half-written is read as valid.
- A judge that goes down stops the run cleanly (exit 3, one line, checkpoint
  intact); the same command resumes it to the uninterrupted result.
- Empty, unparseable or all-invalid generations and NaN/inf scores or
  utilities never crash the evaluation and are never rewarded.

The CLI runs use the tiny zoo with the loopback OpenAI-compatible judge of
tools/judge_server.py (deterministic ratings), so one uninterrupted reference
run serves every comparison. ``DSWARM_KILL_SEED`` picks the kill moment
(default 0); ``DSWARM_KILL_ROUNDS`` kills that many times before the final rerun.
"""
from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from generators.writer import Writer, WriterSettings
from objectives.judging.judges import VerifierJudge
from objectives.metrics import WeightedSum
from objectives.realism import Realism
from objectives.tasks.arith import ArithTask, format_answer, solve
from swarm.runtime import checkpoint
from swarm.runtime.dist import Dist
from swarm.runtime.errors import ConfigError
from swarm.runtime.files import OrderedWriter, atomic_dir, atomic_write_bytes, remove_all_stale_temps
from swarm.runtime.tracking import Tracker, read_metrics
from swarm.search.evaluate import Evaluator
from swarm.search.pso import PSO
from tests.cli import DSWARM, FAST, REPO, SMALL, dswarm, env, read_jsonl, result
from tools.judge_server import JudgeServer, judge_overrides

KEY_ENV, KEY = "DSWARM_TEST_KEY", "sk-planted-reliability-5f3a9c"
STEPS = 2
COMPARED = ("best/data.jsonl", "data/selection.jsonl", "best/generator/adapter_model.safetensors")


def scenario(server: JudgeServer) -> list[str]:
    return [*FAST, *judge_overrides(server, KEY_ENV), f"pso.max_steps={STEPS}", "logger=none"]


def _env(mp: pytest.MonkeyPatch) -> None:
    mp.setenv(KEY_ENV, KEY)
    mp.setenv("NO_PROXY", "127.0.0.1,localhost")


@dataclass
class Reference:
    run_dir: Path
    tail_seconds: float  # from the "step 1" log line to the process's exit


def _step_logged(run_dir: Path, step: int) -> bool:
    log = run_dir / "dswarm.log"
    return log.exists() and re.search(rf"\] - step {step} ", log.read_text()) is not None


def start(server: JudgeServer, run_dir: Path, out: Path) -> subprocess.Popen:
    cmd = [str(DSWARM), *SMALL, *scenario(server), f"hydra.run.dir={run_dir}"]
    with open(out, "ab") as sink:
        return subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=sink, stderr=subprocess.STDOUT)


def wait_for_step(proc: subprocess.Popen, run_dir: Path, step: int, timeout: float = 300) -> bool:
    """True once ``step`` is logged; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _step_logged(run_dir, step):
            return True
        if proc.poll() is not None:
            return _step_logged(run_dir, step)
        time.sleep(0.02)
    proc.kill()
    raise TimeoutError(f"step {step} not logged in {timeout}s")


@pytest.fixture(scope="module")
def reference(tiny_zoo, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reliability") / "reference"
    with pytest.MonkeyPatch.context() as mp:
        _env(mp)
        with JudgeServer(KEY) as server:
            proc = start(server, run_dir, run_dir.parent / "reference.out")
            assert wait_for_step(proc, run_dir, 1)
            t1 = time.monotonic()
            rc = proc.wait(timeout=300)
            tail = time.monotonic() - t1
            assert server.requests > 0 and server.authorized == server.requests
    assert rc == 0, (run_dir.parent / "reference.out").read_text()[-3000:]
    return Reference(run_dir, tail)


def without_usage(run_dir: Path) -> dict:
    """summary.json less ``usage``: what the endpoints were sent differs with the moment of a kill (the lost
    step is asked again), the result does not; less ``provenance`` (wall time) too."""
    return {k: v for k, v in result(run_dir).items() if k != "usage"}


def assert_same_result(run_dir: Path, ref: Path) -> None:
    assert without_usage(run_dir) == without_usage(ref)
    for rel in COMPARED:
        assert (run_dir / rel).read_bytes() == (ref / rel).read_bytes(), rel
    for step_file in sorted((ref / "data").glob("step_*.jsonl")):
        assert (run_dir / "data" / step_file.name).read_bytes() == step_file.read_bytes(), step_file.name
    mine, theirs = read_jsonl(run_dir / "metrics.jsonl"), read_jsonl(ref / "metrics.jsonl")
    assert [(r["step"], r["utility"], r["best"]) for r in mine] == [(r["step"], r["utility"], r["best"]) for r in theirs]
    assert not [p for p in run_dir.rglob("*.tmp") if "wandb" not in p.parts], "temp files left behind"
    assert not [p for p in run_dir.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()], "the API key leaked"


def assert_nothing_half_written(run_dir: Path) -> int | None:
    """What a killed run left: complete files, or a torn last metrics line that readers skip."""
    lines = (run_dir / "metrics.jsonl").read_text().split("\n") if (run_dir / "metrics.jsonl").exists() else []
    complete = [json.loads(line) for line in lines[:-1]]  # every newline-terminated line is whole
    assert [r["step"] for r in complete] == list(range(1, len(complete) + 1))
    assert read_metrics(run_dir) == complete or read_metrics(run_dir) == complete + [json.loads(lines[-1])]
    state = checkpoint.load(run_dir)  # never a torn checkpoint: atomic rename
    saved = None if state is None else int(state["step"])
    assert saved is None or saved <= len(complete)
    for path in [*(run_dir / "data").glob("step_*.jsonl"), run_dir / "best" / "data.jsonl"]:
        if path.exists():
            read_jsonl(path)
    if (run_dir / "summary.json").exists():
        json.loads((run_dir / "summary.json").read_text())
    if (run_dir / "best" / "generator").exists():
        assert {p.name for p in (run_dir / "best" / "generator").iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    return saved


def kill_at_random(server: JudgeServer, run_dir: Path, out: Path, fraction: float, tail: float) -> int | None:
    """Start the run, SIGKILL it ``fraction * tail`` seconds after step 1 is logged; the checkpoint step left."""
    for _ in range(4):
        proc = start(server, run_dir, out)
        assert wait_for_step(proc, run_dir, 1), out.read_text()[-3000:]
        time.sleep(fraction * tail)
        proc.send_signal(signal.SIGKILL)
        if proc.wait() == -signal.SIGKILL:
            return assert_nothing_half_written(run_dir)
        fraction /= 2  # it finished first (a faster machine than the reference's): kill earlier, afresh
        shutil.rmtree(run_dir)
    pytest.fail("the run always finished before the kill")


@pytest.mark.slow
def test_sigkill_at_a_random_moment_then_rerun_equals_uninterrupted(reference, tmp_path, monkeypatch):
    """Killed between 0 and 95% of the way from step 1 to the end: steps, checkpoint writes, the export."""
    _env(monkeypatch)
    fraction = random.Random(int(os.environ.get("DSWARM_KILL_SEED", "0"))).uniform(0.0, 0.95)
    run_dir, out = tmp_path / "killed", tmp_path / "killed.out"
    with JudgeServer(KEY) as server:
        saved = kill_at_random(server, run_dir, out, fraction, reference.tail_seconds)
        rerun = dswarm(*scenario(server), run_dir=run_dir)
    if saved is not None:
        assert f"resuming {run_dir} from step {saved}" in rerun.stdout + rerun.stderr
    assert_same_result(run_dir, reference.run_dir)


@pytest.mark.slow
def test_judge_down_stops_cleanly_then_resumes(reference, tmp_path, monkeypatch):
    """The judge answers through step 1, then fails every request: exit 3 at step 2, checkpoint of step 1."""
    _env(monkeypatch)
    ref = reference.run_dir
    assert any(r["valid"] for r in read_jsonl(ref / "data" / "step_002.jsonl")), "step 2 must have items to judge"
    # the judge's requests through step 1 (the dev items' scores and step 1's), as the reference run counted them
    answered_through_step1 = read_jsonl(ref / "metrics.jsonl")[0]["usage/requests"]

    run_dir = tmp_path / "judge_down"
    with JudgeServer(KEY, fail_after=answered_through_step1) as server:
        down = dswarm(*scenario(server), run_dir=run_dir, check=False)
        assert server.failed > 0
        port = server.httpd.server_address[1]  # the judge comes back at its address: a resume keeps judge.base_url
    lines = down.stderr.strip().splitlines()
    assert down.returncode == 3, down.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("dswarm: error: judge:"), down.stderr
    assert "at step 2" in lines[0] and "judge.max_missing_fraction" in lines[0] and "checkpoint of step 1 kept" in lines[0]
    assert "Traceback" not in down.stdout + down.stderr
    assert checkpoint.load(run_dir)["step"] == 1
    assert [r["step"] for r in read_metrics(run_dir)] == [1]
    assert not (run_dir / "summary.json").exists()

    with JudgeServer(KEY, port=port) as server:
        resumed = dswarm(*scenario(server), run_dir=run_dir)
    assert f"resuming {run_dir} from step 1" in resumed.stdout + resumed.stderr
    assert_same_result(run_dir, ref)
    for text in (down.stdout, down.stderr, resumed.stdout, resumed.stderr):
        assert KEY not in text


# ------------------------------------------------------------------ atomic files, without a model

_WRITER = """
import itertools, json, sys
from swarm.runtime.files import atomic_write_bytes
for i in itertools.count():
    atomic_write_bytes(sys.argv[1], json.dumps({"i": i, "pad": "x" * (1000 + 997 * (i % 500))}).encode())
"""


def test_sigkill_during_atomic_writes_never_leaves_a_torn_file(tmp_path):
    target = tmp_path / "state.json"
    rng = random.Random(1)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], cwd=REPO)
        deadline = time.monotonic() + 60
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        row = json.loads(target.read_text())  # whole: the old or the new version, never a mix
        assert len(row["pad"]) == 1000 + 997 * (row["i"] % 500)
    remove_all_stale_temps(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    atomic_write_bytes(target, b"old")

    def boom(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new, never complete")
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_failed_atomic_dir_keeps_the_old_dir(tmp_path):
    target = tmp_path / "best" / "generator"
    with atomic_dir(target) as d:
        (d / "adapter_model.safetensors").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as d:
            (d / "adapter_model.safetensors").write_bytes(b"half")
            raise RuntimeError("killed mid-export")
    assert (target / "adapter_model.safetensors").read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["generator"]


def test_background_writes_land_in_order_and_failures_surface(tmp_path):
    """Step files and checkpoints go through one FIFO thread: order kept, a failed write raised, not lost."""
    writer = OrderedWriter()
    order = []

    def slow_write(name: str, data: bytes) -> None:
        time.sleep(0.05 if name == "data" else 0.0)  # the first job is the slow one
        atomic_write_bytes(tmp_path / name, data)
        order.append(name)

    writer.submit(slow_write, "data", b"step 3 items")
    writer.submit(slow_write, "checkpoint", b"step 3 state")
    writer.flush()
    assert order == ["data", "checkpoint"] and (tmp_path / "checkpoint").read_bytes() == b"step 3 state"

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    writer.submit(full_disk)
    with pytest.raises(OSError, match="No space left"):
        writer.close()


def test_deferred_writes_start_with_the_next_submit_in_order(tmp_path):
    """A step's data file and metrics line wait for its checkpoint's submit (or a flush), then land before it."""
    writer = OrderedWriter()
    order = []
    writer.defer(order.append, "data")
    writer.defer(order.append, "metrics")
    time.sleep(0.05)
    assert order == []  # held: nothing runs while the step still has bookkeeping to do
    writer.submit(order.append, "checkpoint")
    writer.flush()
    assert order == ["data", "metrics", "checkpoint"]
    writer.defer(order.append, "last data")
    writer.close()  # the end of a run writes what is still held
    assert order[-1] == "last data"


def test_torn_metrics_line_is_ignored_and_dropped_on_resume(tmp_path):
    rows = [{"step": 1, "utility": [0.1]}, {"step": 2, "utility": [0.2]}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 3, "util')
    assert read_metrics(tmp_path) == rows
    tracker = Tracker(tmp_path, {"kind": "none"}, {}, resume_step=1)  # checkpoint of step 1
    assert tracker.rows == rows[:1]
    text = (tmp_path / "metrics.jsonl").read_text()
    assert text.endswith("\n") and [json.loads(line) for line in text.splitlines()] == rows[:1]


def test_unreadable_checkpoint_is_a_one_line_error_and_stale_temps_go(tmp_path):
    ck = tmp_path / "checkpoint"
    ck.mkdir()
    (ck / ".state.safetensors.abc123.tmp").write_bytes(b"half a checkpoint")
    assert checkpoint.load(tmp_path) is None and not list(ck.iterdir())
    checkpoint.write(tmp_path, checkpoint.serialize({"step": 2, "pso": {"x": torch.ones(2, 3)}}))
    assert checkpoint.load(tmp_path)["step"] == 2
    (ck / "state.safetensors").write_bytes((ck / "state.safetensors").read_bytes()[:100])  # torn by something other than us
    with pytest.raises(ConfigError, match="^checkpoint: .* unreadable"):
        checkpoint.load(tmp_path)


# ------------------------------------------------------------------ bad model output, with fakes

class FakeWriterModel:
    """Particle i (its vector's first entry) writes outputs[i] for every prompt."""

    def __init__(self, outputs: list[str]) -> None:
        self.outputs = outputs

    def generate_each(self, vectors: torch.Tensor, prompts, **kwargs) -> list[list[str]]:
        return [[self.outputs[int(v[0])] for _ in prompts] for v in vectors]


class FakeTakers:
    """Taker 0 answers correctly, taker 1 answers 0; an empty answer for an unsolvable input."""

    names = ["right", "zero"]

    def __len__(self) -> int:
        return 2

    def answer_all(self, inputs: list[str], takers=None, progress=None) -> list[list[str]]:
        return [[(format_answer(solve(x)) if t == 0 else "0") if solve(x) is not None else "" for x in inputs]
                for t in (range(2) if takers is None else takers)]


class GarbageJudge:
    """Mostly scores that are not scores: NaN, inf, out of range, None (3 good ones in 10)."""

    failures = 0

    def score(self, items, answers):
        cycle = [math.nan, 1.0, math.inf, 0.0, -math.inf, 7.0, -1.0, None]
        return [cycle[i % len(cycle)] for i in range(len(items))]


OUTPUTS = [
    "",  # empty generation
    "\n\n   \n",  # whitespace only
    "Sure! I cannot do that.\n%%%\n1) \n2. ???",  # unparseable
    " 12+30\n6. 7*8\n7. 99-9\n8. 4*5+6\n9. 10+10",  # valid
]


def evaluator(judge=None, outputs=OUTPUTS) -> Evaluator:
    task = ArithTask(n_dev=16, n_test=16, seed=0)
    settings = WriterSettings(template="Write {n} new problems like these:\n{examples}", few_shot=4, items_per_prompt=5,
                              prompts_per_step=2, max_new_tokens=8, temperature=1.0, top_p=1.0, batch_size=4)
    writer = Writer(FakeWriterModel(outputs), task, settings)
    weights = {"difficulty": 0.4, "separation": 0.2, "novelty": 0.2, "consistency": 0.1, "realism": 0.1}
    ev = Evaluator(writer, FakeTakers(), judge or VerifierJudge(), WeightedSum(weights, chunks=4, novelty_eps=1e-3),
                   Realism(task.realism_corpus(), top_k=5), Dist(cpu=True))
    ev.orig_means = ev.original_means(task.dev[:8])
    return ev


class CountingVerifier:
    """A verifier that says whether it is pure, confirms every item and counts what it was asked."""

    kind, failures = "counting", 0

    def __init__(self, pure: bool) -> None:
        self.pure, self.asked = pure, []

    def confirm(self, items):
        self.asked += [item.input for item in items]
        return [True] * len(items)


@pytest.mark.parametrize("pure", [True, False])
def test_a_pure_verifiers_verdicts_are_remembered_across_steps_others_checked_afresh(pure):
    task = ArithTask(n_dev=16, n_test=16, seed=0)
    settings = WriterSettings(template="{n}:{examples}", few_shot=2, items_per_prompt=5, prompts_per_step=1,
                              max_new_tokens=8, temperature=1.0, top_p=1.0, batch_size=4)
    verifier = CountingVerifier(pure)
    writer = Writer(FakeWriterModel([OUTPUTS[3]]), task, settings, verifier=verifier)
    first = writer.write_each(torch.zeros(1, 1), seed=0, n_prompts=1)
    again = writer.write_each(torch.zeros(1, 1), seed=1, n_prompts=1)
    assert first == again and sum(item.valid for item in first[0]) == 5  # the same items either way
    assert verifier.asked == ["12+30", "7*8", "99-9", "4*5+6", "10+10"] * (1 if pure else 2)


def test_empty_and_unparseable_generations_are_invalid_and_never_rewarded():
    ev = evaluator()
    result = ev.evaluate(torch.arange(4.0)[:, None], seed=3)
    assert [len(r.items) for r in result.results] == [10] * 4  # exactly prompts x items_per_prompt slots
    assert result.valid_fraction.tolist() == [0.0, 0.0, 0.0, 1.0]
    assert torch.isfinite(result.utility).all()
    assert result.utility[:3].tolist() == [0.0, 0.0, 0.0]
    for values in result.components.values():
        assert torch.isfinite(values).all() and values[:3].tolist() == [0.0, 0.0, 0.0]
    assert result.utility[3] > 0
    assert result.missing == 0


def test_a_swarm_of_only_garbage_still_steps():
    ev = evaluator(outputs=["", "%%%", "", "1. 2. 3."])
    result = ev.evaluate(torch.arange(4.0)[:, None], seed=0)
    assert result.utility.tolist() == [0.0] * 4 and result.missing_fraction == 0.0
    pso = PSO(torch.randn(4, 6), inertia=.4, cognitive=.3, social=.3, repel=.3, step_length=1., decay=.95, floor=.1,
              patience=3, max_steps=5, restart_patience=2, restart_cooldown=1, fused=False, seed=0)
    pso.tell(result.utility)
    pso.step()
    assert torch.isfinite(pso.x).all()


def test_nan_inf_and_out_of_range_scores_count_as_missing():
    ev = evaluator(judge=GarbageJudge())
    result = ev.evaluate(torch.arange(4.0)[:, None], seed=1)
    assert torch.isfinite(result.utility).all()
    scored = result.results[3].scores  # 10 valid items x 2 takers, 7 bad scores in each 10
    assert scored.missing == 14 and int(torch.isnan(scored.values).sum()) == 14  # left out, never defaulted
    assert set(scored.values[torch.isfinite(scored.values)].tolist()) <= {0.0, 1.0}
    assert result.missing_fraction == pytest.approx(0.7)  # the run loop stops above judge.max_missing_fraction


def test_nan_and_inf_utilities_are_never_the_best():
    pso = PSO(torch.randn(4, 6), inertia=.4, cognitive=.3, social=.3, repel=.3, step_length=1., decay=.95, floor=.1,
              patience=3, max_steps=5, restart_patience=2, restart_cooldown=1, fused=False, seed=0)
    pso.tell(torch.tensor([math.nan, math.inf, 0.1, -math.inf]))
    assert pso.g_index == 2 and pso.g_util == pytest.approx(0.1)
    pso.step()
    pso.tell(torch.tensor([math.inf, math.nan, math.nan, math.nan]))
    assert pso.g_util == pytest.approx(0.1)
    assert torch.isfinite(pso.x).all() and torch.isfinite(pso.p_util[2:3]).all()


def test_sampling_from_a_particle_with_nan_weights_does_not_crash(tiny_zoo):
    """PSO can move a particle far enough that its logits overflow; sampling must not raise."""
    from generators.models.lora_model import LoraModel

    model = LoraModel(tiny_zoo.base_dir, list(tiny_zoo.generators.values())[:1])
    model.load(torch.full((model.dim,), math.nan))
    assert len(model.generate(["1. 12+3\n2."], max_new_tokens=4, temperature=1.0, seed=0)) == 1
