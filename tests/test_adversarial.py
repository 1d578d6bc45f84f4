"""Adversarial Swarms (swarm/search/methods/adversarial.py): the pool helpers, and the dual run (in-process, method=adversarial)."""
from __future__ import annotations

import json
import logging

import pytest
import torch

from objectives.judging.judges import ReferenceJudge, VerifierJudge
from objectives.judging.llm_judges import HFLLMJudge
from objectives.judging.scores import Scores
from objectives.tasks.arith import solve
from objectives.tasks.item import Item
from swarm.runtime import checkpoint
from swarm.runtime.errors import ConfigError
from swarm.search.evaluate import Evaluation, ParticleResult
from swarm.search.methods.adversarial_pool import (
    confirmed,
    confirmed_items,
    drift,
    generated_slots,
    initial_pool,
    pick_items,
    replace_in_pool,
)
from tests.cli import read_jsonl, result
from tests.inprocess import config, run

POOL = 8
# Small on purpose: 5 runs (10 steps) must stay well under a minute on 2 cores.
ADV = [
    "method=adversarial", f"method.pool_size={POOL}", "method.replace_fraction=0.25",
    "generator.prompts_per_step=1", "export.n_items=10", "objective.novelty_items=10", "task.n_test=20", "logger=none",
]


# ------------------------------------------------------------------ pool helpers (no models)

def _dev(n: int) -> list[Item]:
    return [Item(f"{i}+1", str(i + 1), True) for i in range(n)]


def test_initial_pool_is_seeded_sample_of_dev():
    dev = _dev(20)
    a, b, c = initial_pool(dev, 6, seed=0), initial_pool(dev, 6, seed=0), initial_pool(dev, 6, seed=1)
    assert a == b and a != c
    assert len({r["input"] for r in a}) == 6 and all(r["source"] == "dev" for r in a)
    assert {r["input"] for r in a} <= {it.input for it in dev}


def _evaluation(rows: list[list[tuple]], utility: list[float]) -> Evaluation:
    """Particles' items with their takers' scores (NaN scores: invalid item).

    An item is (text, scores) with its verified arith answer, or (text, scores, output)
    with the answer a generator wrote (possibly wrong), as task=json items carry."""
    results = []
    for items in rows:
        values = torch.tensor([r[1] for r in items], dtype=torch.float32).T
        parsed = []
        for text, _, *written in items:
            answer = solve(text)
            parsed.append(Item(text, written[0] if written else (None if answer is None else str(answer)), answer is not None))
        results.append(ParticleResult(parsed, Scores(values, torch.tensor([it.valid for it in parsed]), 0), torch.zeros(len(items))))
    u = torch.tensor(utility)
    return Evaluation(results, {}, u, torch.ones_like(u))


def _inputs(items: list[Item]) -> list[str]:
    return [it.input for it in items]


def test_hardest_items_ranks_by_score_then_particle_utility():
    nan = float("nan")
    ev = _evaluation(
        [
            [("1+1", [1.0, 1.0]), ("2+2", [0.0, 0.0]), ("bad", [nan, nan]), ("3+3", [0.0, 1.0])],
            [("4+4", [0.0, 0.0]), ("2+2", [0.0, 0.0]), ("5+5", [0.0, 0.5])],
        ],
        utility=[0.2, 0.9],
    )
    judge = VerifierJudge()
    # 4+4 and 2+2 both score 0: particle 1 has the higher utility, so 4+4 first; 2+2 only once.
    assert _inputs(pick_items(ev, set(), 3, judge)) == ["4+4", "2+2", "5+5"]
    assert _inputs(pick_items(ev, {"4+4"}, 2, judge)) == ["2+2", "5+5"]
    assert all(it.output == str(solve(it.input)) for it in pick_items(ev, set(), 10, judge))
    assert "bad" not in _inputs(pick_items(ev, set(), 10, judge))
    assert pick_items(ev, set(), 0, judge) == []  # replace_fraction=0: no slot, no item


# Generated answers as a json task carries them: the two hardest are wrong (every taker "fails" them).
WRONG_FIRST = _evaluation([[("2+2", [0.0, 0.0], "5"), ("3+3", [0.0, 0.0], "7"), ("4+4", [0.5, 0.0], "8"),
                            ("1+1", [1.0, 1.0], "2")]], utility=[0.5])


def test_only_answers_the_judge_confirms_enter_the_pool():
    """Today's bug: the hardest items were those with a wrong generated answer (2+2=5, 3+3=7)."""
    assert _inputs(pick_items(WRONG_FIRST, set(), 2, VerifierJudge())) == ["4+4", "1+1"]
    # judge=reference compares with the generated answer itself: it can confirm none of them.
    assert pick_items(WRONG_FIRST, set(), 2, ReferenceJudge()) == []
    # an LLM judge rates each generated answer with no reference shown; only a 10 confirms.
    llm = HFLLMJudge(lambda prompts: ["10" if "Answer: 8" in p or "Answer: 2\n" in p else "4" for p in prompts])
    assert _inputs(pick_items(WRONG_FIRST, set(), 2, llm)) == ["4+4", "1+1"]
    assert confirmed(VerifierJudge(), [Item("6*7", "42", True), Item("6*7", "41", True)]) == [True, False]


def test_random_feed_is_a_seeded_choice_of_the_same_candidates():
    ev = _evaluation([[(f"{i}+{i}", [i / 10, 0.0]) for i in range(10)]], utility=[0.5])
    judge = VerifierJudge()
    hardest = _inputs(pick_items(ev, set(), 3, judge))
    assert hardest == ["0+0", "1+1", "2+2"]
    a, b = (_inputs(pick_items(ev, set(), 3, judge, "random", seed=s)) for s in (4, 4))
    assert a == b and len(set(a)) == 3 and set(a) <= {f"{i}+{i}" for i in range(10)}
    draws = {tuple(_inputs(pick_items(ev, set(), 3, judge, "random", seed=s))) for s in range(6)}
    assert len(draws) > 1 and draws != {tuple(hardest)}
    assert _inputs(pick_items(WRONG_FIRST, set(), 4, judge, "random", seed=0)) in (["4+4", "1+1"], ["1+1", "4+4"])
    with pytest.raises(ValueError, match="feed"):
        pick_items(ev, set(), 3, judge, "easiest")


def test_generated_slots_are_fixed_and_refilled():
    pool = initial_pool(_dev(20), 6, seed=0)
    slots = generated_slots(6, 2, seed=5)
    assert slots == generated_slots(6, 2, seed=5) and len(set(slots)) == 2
    first = replace_in_pool(pool, [Item("7*7", "49", True), Item("8*8", "64", True)], slots, step=1)
    assert [first[i]["input"] for i in slots] == ["7*7", "8*8"] and first[slots[0]]["source"] == "step_001"
    second = replace_in_pool(first, [Item("9*9", "81", True)], slots, step=2)  # fewer new items: the rest stay
    assert [second[i]["input"] for i in slots] == ["9*9", "8*8"]
    dev_slots = [i for i in range(6) if i not in slots]
    assert [second[i] for i in dev_slots] == [pool[i] for i in dev_slots]  # the dev anchor never moves
    assert pool == initial_pool(_dev(20), 6, seed=0)  # inputs are not modified


def test_reference_feed_replaces_each_slot_with_the_fraction_and_drifts():
    pool = initial_pool(_dev(20), 8, seed=0)
    seven, eight = Item("7*7", "49", True), Item("8*8", "64", True)
    assert drift(pool, [seven, eight], 0.0, seed=1, step=1) == (pool, 0)
    assert drift(pool, [], 1.0, seed=1, step=1) == (pool, 0)  # nothing confirmed: the pool stays
    every, n = drift(pool, [seven, eight], 1.0, seed=1, step=1)
    assert n == 8 and all(r["source"] == "step_001" and r["input"] in ("7*7", "8*8") for r in every)
    # seed 7's draws: torch.rand(8) < 0.5 at slots 1, 4, 5, 6; torch.randint(2, (8,)) = 0, 1, 0, 1, 0, 1, 0, 0
    half, n = drift(pool, [seven, eight], 0.5, seed=7, step=2)
    kept = [r["input"] for r in pool]
    assert n == 4 and [r["input"] for r in half] == [kept[0], "8*8", kept[2], kept[3], "7*7", "8*8", "7*7", kept[7]]
    # generated slots are replaced again like dev ones: the dev share falls as (1 - f)^s
    big = initial_pool([Item(f"{i}+0", str(i), True) for i in range(4000)], 4000, seed=0)
    for step in range(1, 6):
        big, _ = drift(big, [Item(f"{step}*{k}", str(step * k), True) for k in range(2, 10)], 0.2, seed=step, step=step)
        assert abs(sum(r["source"] == "dev" for r in big) / 4000 - 0.8 ** step) < 0.02, step
    assert {r["source"] for r in big} >= {"dev", "step_001", "step_005"}
    assert pool == initial_pool(_dev(20), 8, seed=0)  # inputs are not modified


def test_the_reference_feed_draws_only_confirmed_items():
    assert _inputs(confirmed_items(WRONG_FIRST, VerifierJudge())) == ["4+4", "1+1"]
    assert confirmed_items(WRONG_FIRST, ReferenceJudge()) == []
    with pytest.raises(ValueError, match="feed"):
        pick_items(WRONG_FIRST, set(), 2, VerifierJudge(), "reference")  # slots are for hardest and random only


# ------------------------------------------------------------------ the real CLI on the tiny zoo

@pytest.fixture(scope="module")
def adv_run(tiny_zoo, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("adv") / "whole"
    run(*ADV, "pso.max_steps=3", run_dir=run_dir)
    return run_dir


@pytest.mark.slow
def test_adversarial_run_writes_contract(adv_run, tiny_zoo):
    for rel in ("summary.json", "metrics.jsonl", "best/data.jsonl", "best/generator/adapter_model.safetensors",
                "best/taker/adapter_config.json", "best/taker/adapter_model.safetensors", "checkpoint/state.safetensors"):
        assert (adv_run / rel).exists(), rel
    rows = read_jsonl(adv_run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    n_takers = len(tiny_zoo.lora_takers)
    measured = set()  # every taker utility measured so far: the particles' and the re-scored incumbent's
    for r in rows:
        assert len(r["taker_utility"]) == n_takers
        measured |= {u for u in (*r["taker_utility"], r["taker_incumbent"]) if u is not None}
        assert r["taker_best"] in measured  # the model swarm's best is a score it measured, never a stale or made-up one
        assert r["taker_best"] >= (r["taker_incumbent"] if r["step"] > 1 else max(r["taker_utility"]))
    assert rows[0]["taker_incumbent"] is None and rows[0]["taker_best"] == max(rows[0]["taker_utility"])
    assert rows[0]["incumbent"] is None and rows[1]["incumbent"] is not None
    adv = json.loads((adv_run / "summary.json").read_text())["adversarial"]
    for key in ("test", "generated"):
        assert set(adv[key]) == {"initial_taker", "best_taker", "n_items"}, key
    assert adv["test"]["n_items"] == 20
    assert adv["initial_taker"] in tiny_zoo.lora_takers
    assert set(adv["difficulty"]) == {"initial_generator", "best_generator"}
    # the best generator's held-out numbers follow from best/data.jsonl's scores alone (was: compared with itself)
    items = [it for it in read_jsonl(adv_run / "best" / "data.jsonl") if it["valid"]]
    means = {t: sum(it["heldout_scores"][t] for it in items) / len(items) for t in items[0]["heldout_scores"]}
    assert adv["heldout_takers"]["best_generator"] == pytest.approx(means)
    assert adv["difficulty"]["best_generator"] == pytest.approx(1 - max(means.values()))


@pytest.mark.slow
def test_pool_and_best_taker_are_checkpointed(adv_run, tiny_zoo):
    from generators.models.adapter_files import read_adapter
    from generators.models.particles import flatten, spec_of

    state = checkpoint.read(adv_run / "checkpoint" / "state.safetensors")
    assert state["method"] == "adversarial" and state["step"] == 3
    pool = state["pool"]
    assert len(pool) == POOL
    generated = [r for r in pool if r["source"] != "dev"]
    assert all(r["valid"] and r["output"] == str(solve(r["input"])) for r in generated)
    rows = read_jsonl(adv_run / "metrics.jsonl")
    assert len(generated) == rows[-1]["pool/generated"] <= round(0.25 * POOL)
    _, tensors = read_adapter(adv_run / "best" / "taker")
    assert torch.equal(flatten(tensors, spec_of(tensors)), state["taker_pso"]["g"])


@pytest.mark.slow
def test_adversarial_resume_equals_uninterrupted(adv_run, tmp_path, caplog):
    resumed = tmp_path / "resumed"
    run(*ADV, "pso.max_steps=2", run_dir=resumed)
    with caplog.at_level(logging.INFO, logger="dswarm"):
        run(*ADV, "pso.max_steps=3", run_dir=resumed)
    assert "resuming" in caplog.text
    assert result(adv_run) == result(resumed)
    for rel in ("best/data.jsonl", "best/taker/adapter_model.safetensors"):
        assert (adv_run / rel).read_bytes() == (resumed / rel).read_bytes(), rel
    a, b = read_jsonl(adv_run / "metrics.jsonl"), read_jsonl(resumed / "metrics.jsonl")
    assert [(r["utility"], r["taker_utility"]) for r in a] == [(r["utility"], r["taker_utility"]) for r in b]


@pytest.mark.slow
@pytest.mark.parametrize("control, generated", [("method.replace_fraction=0", 0), ("method.feed=random", 2)])
def test_controls(tmp_path, tiny_zoo, control, generated):
    """(a) no generated data for the takers; (b) random confirmed generated items instead of the hardest."""
    run_dir = tmp_path / "control"
    run(*ADV, "pso.max_steps=2", control, run_dir=run_dir)
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [r["pool/generated"] for r in rows][-1] == generated
    pool = checkpoint.read(run_dir / "checkpoint" / "state.safetensors")["pool"]
    assert all(r["output"] == str(solve(r["input"])) for r in pool if r["source"] != "dev")
    assert "test" in json.loads((run_dir / "summary.json").read_text())["adversarial"]


@pytest.mark.slow
def test_reference_feed_run_drifts_its_pool(tmp_path, tiny_zoo):
    """feed=reference: slots are replaced wherever the draws fall, generated ones too; every entry is confirmed."""
    run_dir = tmp_path / "reference"
    run(*ADV, "pso.max_steps=3", "method.feed=reference", "method.replace_fraction=0.5", run_dir=run_dir)
    rows = read_jsonl(run_dir / "metrics.jsonl")
    pool = checkpoint.read(run_dir / "checkpoint" / "state.safetensors")["pool"]
    assert len(pool) == POOL and rows[-1]["pool/generated"] == sum(r["source"] != "dev" for r in pool) > 0
    assert sum(r["pool/replaced"] for r in rows) >= rows[-1]["pool/generated"]
    assert sum(r["source"] == "step_003" for r in pool) == rows[-1]["pool/replaced"]
    assert all(r["output"] == str(solve(r["input"])) for r in pool if r["source"] != "dev")


@pytest.mark.slow
def test_a_bf16_run_moves_the_lora_takers(tiny_zoo, tmp_path):
    """dtype=bfloat16 (the GPU default) on CPU: the model swarm's LoRA takers leave their experts after a step,
    and the takers' scores on the pool are the float32 run's up to a bf16 rounding step."""
    from generators.models.adapter_files import read_adapter
    from generators.models.particles import flatten, spec_of

    for dtype in ("float32", "bfloat16"):
        run(*ADV, f"dtype={dtype}", "pso.max_steps=1", run_dir=tmp_path / dtype)
    state = checkpoint.read(tmp_path / "bfloat16" / "checkpoint" / "state.safetensors")
    experts = torch.stack([flatten(t, spec_of(t)) for t in (read_adapter(d)[1] for d in tiny_zoo.lora_takers.values())])
    takers = state["taker_pso"]["x"]
    assert torch.isfinite(takers).all() and (torch.cdist(takers, experts).min(dim=1).values > 0).all()  # none is still an expert
    fp32, bf16 = (read_jsonl(tmp_path / dt / "metrics.jsonl")[0]["taker_utility"] for dt in ("float32", "bfloat16"))
    assert bf16 == pytest.approx(fp32, abs=1 / POOL)  # one pool item's answer may flip


def test_unknown_feed_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^method\.feed: input should be 'hardest', 'random' or 'reference', got 'easiest'$"):
        config(*ADV, "method.feed=easiest")


@pytest.mark.slow
def test_pool_larger_than_the_dev_set_names_the_setting(tiny_zoo, tmp_path):
    """Only the task knows its dev set's size: checked when the run starts, still naming the setting."""
    with pytest.raises(ConfigError, match=r"^method\.pool_size: must be in \[1, 40\] \(the task's dev items\), got 41$"):
        run(*ADV, "method.pool_size=41", "pso.max_steps=1", run_dir=tmp_path / "x")
