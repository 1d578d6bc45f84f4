"""One Data Swarms run, from a composed config to a complete run directory.

    setup → search (PSO, or a baseline) → export the best generator →
    write its dataset → evaluate it on held-out takers → summary.json

Every step appends metrics.jsonl, writes data/step_NNN.jsonl and an atomic
checkpoint, so running the same command in the same run dir resumes. The method
comes from ``method._target_`` (swarm/search/context.py says what it gets and returns);
this module imports none of them.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from objectives.endpoints import Counts, usage_report
from objectives.tasks.item import Item
from swarm.build import build
from swarm.config import instantiate
from swarm.report.harness import run_spec, write_harness
from swarm.report.publish import write_dataset
from swarm.runtime import checkpoint
from swarm.runtime.errors import ConfigError
from swarm.runtime.files import OrderedWriter, atomic_dir, atomic_write_json, atomic_write_jsonl, remove_all_stale_temps
from swarm.runtime.provenance import provenance
from swarm.runtime.tracking import Tracker, plot_utility
from swarm.search.context import RunContext, SearchResult
from swarm.search.evaluate import EXPORT_SEED_STEP, Evaluation, evaluation_summary, step_seed, taker_groups, validity_report
from swarm.search.selection import select

log = logging.getLogger("dswarm")


def final_rows(items: list[Item], values: torch.Tensor, names: list[str]) -> list[dict]:
    rows = []
    for n, item in enumerate(items):
        row = item.to_json()
        if item.valid:
            row["heldout_scores"] = {t: (None if math.isnan(v) else v) for t, v in zip(names, values[:, n].tolist())}
        rows.append(row)
    return rows


def finalize(ctx: RunContext, result: SearchResult, started: float | None = None) -> dict[str, Any]:
    """Export the best generator, write its dataset, evaluate it (and the initial best candidate's data,
    the yardstick) on held-out and search takers; ``started``: when the run began (provenance's wall time)."""
    cfg, setup = ctx.cfg, ctx.setup
    ev_ = setup.evaluator
    n_prompts = max(1, math.ceil(cfg.export.n_items / cfg.generator.items_per_prompt))
    seed = step_seed(cfg.seed, EXPORT_SEED_STEP)
    heldout_orig = ev_.original_means(setup.task.dev[: cfg.objective.novelty_items], setup.heldout)
    items = ev_.write(result.best[None], seed, n_prompts, result.prompt)[0]  # once, on every process; the takers are sharded
    heldout = ev_.evaluate_items(items, setup.heldout, heldout_orig)
    search = ev_.evaluate_items(items, setup.takers, ev_.orig_means)
    weights = dict(cfg.objective.weights)
    summary = {
        "method": cfg.method.name,
        "objective": cfg.objective.name,
        "weights": weights,
        "seed": cfg.seed,
        "initial_best": result.initial_best,
        "best_utility": result.best_utility,
        "steps": result.steps,
        "stop_reason": result.stop_reason,
        "task": setup.task.name,
        **({"selection": result.selection} if result.selection is not None else {}),
        "verifier": setup.verifier.kind,
        "realism_corpus": setup.task.realism_source,
        "heldout": evaluation_summary(heldout, setup.heldout.names, weights),
        "heldout_groups": taker_groups(heldout, setup.heldout.names, heldout_orig, ev_, weights),
        "search_takers": evaluation_summary(search, setup.takers.names, weights),  # sweep.metric's default: every process
    }
    if result.prompt is not None:
        summary["prompt"] = {"template": result.prompt.template, "examples": list(result.prompt.examples)}
    if setup.asked is not None:
        a = setup.asked
        summary["taker_prompt"] = {"template": a.template, "stop": a.stop, "max_new_tokens": a.max_new_tokens}
    if setup.writer.contamination is not None:
        summary["contamination"] = setup.writer.contamination.report(heldout.results[0].items)
    scored = [(result.best, heldout)] if result.prompt is None else []  # each generator's data scored once

    def evaluate_heldout(vector: torch.Tensor) -> Evaluation:
        """``vector``'s data (export size, export seed) on the held-out takers (collective: every process)."""
        for seen, evaluation in scored:
            if torch.equal(seen, vector):
                return evaluation
        scored.append((vector, ev_.evaluate_items(setup.writer.write(vector, seed, n_prompts), setup.heldout, heldout_orig)))
        return scored[-1][1]

    if result.initial is not None:  # the yardstick: what the best expert at step 1 would have given
        summary["initial_heldout"] = evaluation_summary(evaluate_heldout(result.initial), setup.heldout.names, weights)
    summary.update(result.extra_summary(ctx, heldout, evaluate_heldout, weights))  # collective: every process
    ev_.traffic()  # the final evaluation's endpoint traffic (collective)
    summary["usage"] = usage_report(ev_.total, dict(cfg.endpoints.prices))
    if ctx.is_main:
        summary["provenance"] = run_provenance(ctx, started)
        groups = {"search_takers": summary["search_takers"], "heldout": summary["heldout"],
                  **{f"heldout/{g}": s for g, s in summary["heldout_groups"].items()}}
        summary["validity"] = validity_report(cfg.objective.validity, groups)
        with atomic_dir(ctx.run_dir / "best" / "generator") as tmp:  # a kill never leaves half an adapter
            setup.writer.model.export(result.best, tmp)
        best = heldout.results[0]
        rows = final_rows(best.items, best.scores.values, setup.heldout.names)
        atomic_write_jsonl(ctx.run_dir / "best" / "data.jsonl", rows)
        write_dataset(ctx.run_dir / "best" / "dataset", rows, summary, ctx.tracker.config)  # datasets' form + card
        write_harness(ctx.run_dir / "best" / "lm_eval", rows, run_spec(ctx.tracker.config, summary, ctx.run_dir.name))
        atomic_write_json(ctx.run_dir / "summary.json", summary)
        plot_utility(ctx.tracker.rows, ctx.run_dir / "plots" / "utility.png")
        ctx.tracker.summary(summary, rows)
    return summary


def run_provenance(ctx: RunContext, started: float | None) -> dict[str, Any]:
    """summary.json's ``provenance``: code, libraries, device, wall time (swarm/runtime/provenance.py)."""
    model = ctx.setup.writer.model
    device = str(model.device)
    if device.startswith("cuda"):
        device = f"{device} ({torch.cuda.get_device_name(model.device)})"
    dtype = str(next(model.model.parameters()).dtype).removeprefix("torch.")
    steps = sum(r.get("seconds") or 0.0 for r in ctx.tracker.rows) if ctx.tracker is not None else 0.0
    wall = time.time() - started if started is not None else 0.0
    return provenance(device, dtype, ctx.setup.dist.world, wall, steps)


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Run (or resume) the configured method in ``run_dir``; return summary.json's content."""
    started = time.time()
    search = instantiate(cfg.method, "method")  # search(ctx) -> SearchResult
    setup = build(cfg)
    run_dir = Path(setup.dist.broadcast(str(run_dir)))
    if setup.dist.is_main:
        remove_all_stale_temps(run_dir)  # what a run killed mid-write left; never read as data
    state = checkpoint.load(run_dir)
    if state is not None and state.get("method") != cfg.method.name:
        raise ConfigError(f"method: {run_dir} holds a {state.get('method')} run, not {cfg.method.name}")
    evaluator = setup.evaluator
    if state is not None:
        evaluator.total = {m: Counts(**c) for m, c in state.get("usage", {}).items()}
    if state is not None and state.get("orig_means") is not None:
        evaluator.orig_means = state["orig_means"]
    else:
        evaluator.orig_means = evaluator.original_means(setup.task.dev[: cfg.objective.novelty_items])
    resume_step = int(state["step"]) if state is not None else 0
    tracker, files = None, OrderedWriter()
    if setup.dist.is_main:
        reference = {"takers": setup.takers.names, "dev_means": evaluator.orig_means.tolist()}
        atomic_write_json(run_dir / "data" / "reference.json", reference)
        config = OmegaConf.to_container(cfg, resolve=True)
        tracker = Tracker(run_dir, OmegaConf.to_container(cfg.logger), config, resume_step, files)
        if state is not None:
            log.info("resuming %s from step %d", run_dir, resume_step)
    ctx = RunContext(cfg, setup, run_dir, tracker, state, files)
    exit_code = 1
    try:
        result = select(ctx, search(ctx))  # the exported generator, chosen on fresh items
        ctx.files.flush()  # the last checkpoint is on disk before summary.json says the run is done
        summary = finalize(ctx, result, started)
        exit_code = 0
        return summary
    finally:
        try:
            ctx.files.close()  # a stopped run's last checkpoint too
        finally:
            if hasattr(setup.judge, "close"):  # the OpenAI judge's HTTP client
                setup.judge.close()
            if tracker is not None:
                tracker.finish(exit_code)

