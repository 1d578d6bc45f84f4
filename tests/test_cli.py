"""The run-directory contract, through the real `dswarm` CLI on the tiny zoo (resume and every objective: in-process)."""
from __future__ import annotations

import json
import logging
import math

import pytest
import torch

from objectives import metrics
from objectives.registry import COMPONENTS
from tests.cli import dswarm, read_jsonl, result
from tests.inprocess import run

CONTRACT = [
    ".hydra/config.yaml",
    "metrics.jsonl",
    "summary.json",
    "best/generator/adapter_config.json",
    "best/generator/adapter_model.safetensors",
    "best/data.jsonl",
    "data/step_001.jsonl",
    "data/reference.json",
    "data/selection.jsonl",
    "checkpoint/selection.json",
    "plots/utility.png",
    "checkpoint/state.safetensors",
]


@pytest.fixture(scope="module")
def mixed_run(tiny_zoo, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run") / "mixed"
    dswarm("objective=mixed", "pso.max_steps=2", "logger=none", run_dir=run_dir)
    return run_dir


@pytest.mark.slow
def test_contract_files(mixed_run):
    for rel in CONTRACT:
        assert (mixed_run / rel).exists(), rel
    rows = read_jsonl(mixed_run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for key in ("utility", "best", "worst", "step_length", "valid_fraction", "seconds", "objective/difficulty"):
        assert key in rows[0], key
    for row in rows:  # where each step's time went: the three phases, inside the step's wall time
        generate, answer, judge = (row[f"time/{p}"] for p in ("generate", "answer", "judge"))
        assert generate > 0 and answer > 0 and judge >= 0  # the exact-match verifier takes well under a millisecond
        assert generate + answer + judge <= row["seconds"] + 1e-3
    summary = json.loads((mixed_run / "summary.json").read_text())
    for key in ("method", "objective", "seed", "initial_best", "best_utility", "steps", "stop_reason", "heldout"):
        assert key in summary, key
    # the swarm's best is the best utility any particle reached, its initial best that of step 1
    assert summary["best_utility"] == max(max(r["utility"]) for r in rows) == rows[-1]["best"]
    assert summary["initial_best"] == max(rows[0]["utility"]) == rows[0]["best"]
    assert summary["heldout"]["n_items"] >= 20
    assert set(summary["heldout"]["takers"]) == {"h1", "h2", "h3"}  # tests/cli.py holds out the zoo's models only
    assert set(summary["heldout_groups"]) == {"models"} and summary["heldout_groups"]["models"]["takers"] == summary["heldout"]["takers"]
    items = read_jsonl(mixed_run / "best" / "data.jsonl")
    assert all({"input", "output", "valid"} <= set(it) for it in items)
    # the exported generator: the candidate best on fresh items; each candidate's in-sample and fresh utility
    candidates = summary["selection"]["candidates"]
    assert len(candidates) == 4 and [c["exported"] for c in candidates].count(True) == 1
    assert all(isinstance(c["in_sample"], float) and isinstance(c["fresh"], float) for c in candidates)
    # per taker group, difficulty on the valid items and the valid fraction apart
    validity = summary["validity"]
    assert validity["mode"] == "multiply" and set(validity["groups"]) == {"search_takers", "heldout", "heldout/models"}
    for group, block in (("heldout", summary["heldout"]), ("search_takers", summary["search_takers"])):
        assert validity["groups"][group]["difficulty_on_valid"] == block["objective"]["difficulty"]
        assert validity["groups"][group]["valid_fraction"] == block["valid_fraction"]


@pytest.mark.slow
def test_the_exported_generator_loaded_with_peft_is_the_one_that_wrote_the_data(mixed_run, tiny_zoo):
    """best/generator/ is best/data.jsonl's writer: written with the run's prompts and seed it writes the run's
    final items again, and PEFT's model of it (PeftModel.from_pretrained) gives the same logits."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from generators.models.lora_model import LoraModel
    from swarm.build import build
    from swarm.config import check, compose_run
    from swarm.run import EXPORT_SEED_STEP
    from swarm.search.evaluate import step_seed

    cfg = compose_run(mixed_run)
    check(cfg)
    writer = build(cfg).writer
    exported = LoraModel(tiny_zoo.base_dir, [mixed_run / "best" / "generator"])
    n_prompts = math.ceil(cfg.export.n_items / cfg.generator.items_per_prompt)
    items = writer.write(exported.expert_vectors[0], step_seed(cfg.seed, EXPORT_SEED_STEP), n_prompts)
    rows = read_jsonl(mixed_run / "best" / "data.jsonl")
    assert [(it.input, it.output, it.valid) for it in items] == [(r["input"], r["output"], r["valid"]) for r in rows]

    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_zoo.base_dir), mixed_run / "best" / "generator")
    exported.load(exported.expert_vectors[0])
    ids = exported.tokenizer([it.input for it in items[:4]], return_tensors="pt", padding=True)
    with torch.no_grad():
        torch.testing.assert_close(peft.eval()(**ids).logits, exported.model(**ids).logits)


@pytest.mark.slow
def test_utility_recomputed_from_step_file(mixed_run):
    """metrics.jsonl's utilities follow from data/step_NNN.jsonl (+ the dev reference) alone."""
    cfg_weights = json.loads((mixed_run / "summary.json").read_text())["weights"]
    reference = json.loads((mixed_run / "data" / "reference.json").read_text())
    names = reference["takers"]
    for row in read_jsonl(mixed_run / "metrics.jsonl"):
        items = read_jsonl(mixed_run / "data" / f"step_{row['step']:03d}.jsonl")
        P = max(it["particle"] for it in items) + 1
        per = [[it for it in items if it["particle"] == p] for p in range(P)]
        N = len(per[0])
        S = torch.full((P, len(names), N), float("nan"))
        R = torch.zeros(P, N)
        valid = torch.zeros(P, N, dtype=torch.bool)
        for p, rows in enumerate(per):
            for n, it in enumerate(rows):
                valid[p, n] = it["valid"]
                if it["valid"]:
                    R[p, n] = it["realism"]
                    for t, name in enumerate(names):
                        v = it["scores"][name]
                        S[p, t, n] = math.nan if v is None else v
        inputs = metrics.ObjectiveInputs(S, torch.isfinite(S), torch.tensor(reference["dev_means"]), R, valid)
        comps = metrics.components(COMPONENTS, inputs)
        utility = metrics.utility(comps, cfg_weights, valid.float().mean(1))
        assert utility.tolist() == pytest.approx(row["utility"], abs=1e-6)
        for name, values in comps.items():
            assert values.tolist() == pytest.approx(row[f"objective/{name}"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("objective", [*COMPONENTS, "mixed"])
def test_every_objective_finishes_with_finite_utilities(tiny_zoo, tmp_path, objective):
    summary = run(f"objective={objective}", "pso.max_steps=1", run_dir=tmp_path)
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert all(math.isfinite(u) for u in rows[0]["utility"])
    assert summary["objective"] == objective and math.isfinite(summary["heldout"]["utility"])
    # the utility is the configured weights' sum of the logged components, times the valid fraction
    weighted = [sum(w * rows[0][f"objective/{k}"][p] for k, w in summary["weights"].items()) * rows[0]["valid_fraction"][p]
                for p in range(len(rows[0]["utility"]))]
    assert rows[0]["utility"] == pytest.approx(weighted, abs=1e-6)


@pytest.mark.slow
def test_resume_after_stop_equals_uninterrupted(tiny_zoo, tmp_path, caplog):
    """Stop at step 2, rerun with more steps in the same dir: same result as one run of 3 steps."""
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    run("pso.max_steps=3", run_dir=whole)
    run("pso.max_steps=2", run_dir=resumed)
    assert len(read_jsonl(resumed / "metrics.jsonl")) == 2
    with caplog.at_level(logging.INFO, logger="dswarm"):
        run("pso.max_steps=3", run_dir=resumed)
    assert "resuming" in caplog.text
    assert result(whole) == result(resumed)
    assert (whole / "best/data.jsonl").read_bytes() == (resumed / "best/data.jsonl").read_bytes()
    a, b = read_jsonl(whole / "metrics.jsonl"), read_jsonl(resumed / "metrics.jsonl")
    assert [r["utility"] for r in a] == [r["utility"] for r in b]


@pytest.mark.slow
def test_sweep_and_report(tiny_zoo, tmp_path):
    sweep = tmp_path / "sweep"
    dswarm("-m", "pso.inertia=0.2,0.4", "pso.max_steps=1", "logger=none", f"hydra.sweep.dir={sweep}")
    runs = sorted(p.parent for p in sweep.rglob("summary.json"))
    assert len(runs) == 2 and runs[0] != runs[1]
    from swarm.report.tables import main as report

    assert report([str(sweep)]) == 0
    header, _, *rows = (sweep / "table.md").read_text().split("\n\n")[0].splitlines()
    column = header.split(" | ").index("pso.inertia")  # one column per swept override
    assert sorted(r.split(" | ")[column] for r in rows) == ["0.2", "0.4"]
    assert len((sweep / "table.csv").read_text().splitlines()) == 3
