"""One Data Swarms run, from a composed config to a complete run directory.

    setup → search (PSO, or a baseline) → export the best generator →
    write its dataset → evaluate it on held-out takers → summary.json

Every step appends metrics.jsonl, writes data/step_NNN.jsonl and an atomic
checkpoint, so running the same command in the same run dir resumes.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from omegaconf import DictConfig, OmegaConf

from generators.writer import Prompt
from generators.taker_specs import heldout_groups
from objectives.scores import Scores
from objectives.tasks import Item
from objectives.verify import unchecked_note
from swarm import checkpoint
from swarm.build import Setup, build
from swarm.config import instantiate
from swarm.errors import ConfigError, RunStopped
from swarm.evaluate import Evaluation, ParticleResult, step_seed
from swarm.files import (
    OrderedWriter, atomic_dir, atomic_write_json, atomic_write_jsonl, atomic_write_text, jsonl,
    remove_all_stale_temps,
)
from swarm.pso import PSO
from swarm.publish import write_dataset
from swarm.tracking import Tracker, plot_utility

log = logging.getLogger("dswarm")

EXPORT_SEED_STEP = 1_000_000  # the final dataset's seed never coincides with a search step's


@dataclass
class RunContext:
    """What a search method needs: the live objects, the settings and the run dir."""

    cfg: DictConfig
    setup: Setup
    run_dir: Path
    tracker: Tracker | None  # None on non-main processes
    state: dict[str, Any] | None  # the checkpoint to resume from
    writer: OrderedWriter  # the step files and checkpoints, written behind the next step
    warned: bool = False  # the invented-answers warning was given

    @property
    def is_main(self) -> bool:
        return self.setup.dist.is_main

    def evaluate(self, vectors: torch.Tensor, step: int) -> Evaluation:
        """Evaluate a step's particles; stop cleanly if the judge lost too many scores."""
        return self.check(self.setup.evaluator.evaluate(vectors, step_seed(self.cfg.seed, step)), step)

    def check(self, ev: Evaluation, step: int) -> Evaluation:
        """``ev`` of step ``step``, unless the judge lost too many of its scores (then the run stops cleanly)."""
        limit = self.cfg.judge.max_missing_fraction
        if ev.missing_fraction > limit:
            kept = f"checkpoint of step {step - 1} kept" if step > 1 else "no step completed yet"
            raise RunStopped(
                f"judge: {ev.missing_fraction:.0%} of scores missing at step {step} "
                f"(> judge.max_missing_fraction={limit}); {kept}; run the same command again to resume"
            )
        if ev.missing and self.is_main:
            log.warning("step %d: the judge failed on %d of %d scores (excluded, not defaulted)", step, ev.missing, ev.missing + ev.scored)
        empty = [p for p, f in enumerate(ev.valid_fraction.tolist()) if f == 0]
        if empty and self.is_main:
            log.warning("step %d: particle(s) %s wrote no valid item (utility 0)", step, empty)
        self._warn_invented(step, ev)
        return ev

    def _warn_invented(self, step: int, ev: Evaluation) -> None:
        """Once a run: unchecked answers and most items beating every taker is what invented answers look like."""
        setup = self.setup
        if self.warned or not self.is_main or setup.verifier.kind != "none" or setup.task.exact_answers:
            return
        beaten = ev.defeat_all[ev.valid_fraction > 0]
        if beaten.numel() and beaten.mean().item() > 0.5:
            self.warned = True
            log.warning("step %d: %.0f%% of valid items defeat every taker; with unchecked answers this is the sign "
                        "of invented answers (%s)", step, 100 * beaten.mean().item(), unchecked_note(setup.task.name))

    def record(self, step: int, ev: Evaluation, started: float, extra: dict[str, Any]) -> None:
        """Write the step's items and its metrics line (main process only)."""
        if not self.is_main:
            return
        items = step_rows(ev, self.setup.takers.names)
        if self.cfg.data.save_steps:
            self.writer.submit(atomic_write_text, self.run_dir / "data" / f"step_{step:03d}.jsonl", jsonl(items))
        row = {
            "step": step,
            "utility": ev.utility.tolist(),
            **{f"objective/{k}": v.tolist() for k, v in ev.components.items()},
            "valid_fraction": ev.valid_fraction.tolist(),
            "valid/format": ev.valid_format.tolist(),
            "valid/answer": ev.valid_fraction.tolist(),
            "items/defeat_all": ev.defeat_all.tolist(),
            "judge/missing": ev.missing,
            **extra,
            "seconds": round(time.time() - started, 3),
        }
        self.tracker.log(row, items)
        log.info(
            "step %d  best %.4f  mean %.4f  valid %.2f  %.1fs",
            step, extra.get("best", float("nan")), ev.utility.mean().item(), ev.valid_fraction.mean().item(), row["seconds"],
        )

    def save(self, state: dict[str, Any]) -> None:
        """Checkpoint ``state`` as it is now; the file lands behind this step's data file."""
        if self.is_main:
            self.writer.submit(checkpoint.write, self.run_dir, checkpoint.serialize(state))


@dataclass
class SearchResult:
    """What every method returns (``method._target_(ctx, **options)``)."""

    best: torch.Tensor  # the best generator's flat vector
    initial_best: float
    best_utility: float
    steps: int
    stop_reason: str
    prompt: Prompt | None = None  # the prompt the best generator writes with (prompt_search); None: the default

    def extra_summary(self, ctx: RunContext, heldout: Evaluation,
                      evaluate_heldout: Callable[[torch.Tensor], Evaluation], weights: dict[str, float]) -> dict[str, Any]:
        """A method's own blocks of summary.json (and files it exports); ``heldout`` is the best data's evaluation,
        ``evaluate_heldout(vector)`` writes and scores another generator's data the same way."""
        return {}


def step_rows(ev: Evaluation, taker_names: list[str]) -> list[dict]:
    """One JSON line per generated item: enough to recompute every particle's utility."""
    rows = []
    for p, result in enumerate(ev.results):
        per_item = zip(result.scores.values.T.tolist(), result.realism.tolist())  # one conversion per particle
        for item, (values, realism) in zip(result.items, per_item):
            row = {"particle": p, **item.to_json()}
            if item.valid:
                row["scores"] = {t: (None if math.isnan(v) else v) for t, v in zip(taker_names, values)}
                row["realism"] = realism
            rows.append(row)
    return rows


def data_swarms(ctx: RunContext) -> SearchResult:
    """Particle swarm optimization of the generator experts in weight space."""
    pso = PSO.from_config(ctx.setup.writer.model.expert_vectors, ctx.cfg.pso, ctx.cfg.seed)
    if ctx.state is not None:
        pso.load_state_dict(ctx.state["pso"])
    while pso.should_stop() is None:
        started = time.time()
        step = pso.steps_done + 1
        ev = ctx.evaluate(pso.x, step)
        pso.tell(ev.utility)
        extra = {"best": pso.g_util, "worst": pso.worst_util, "step_length": pso.step_length, "restarts": int(pso.restarted.sum())}
        pso.step()
        ctx.record(step, ev, started, extra)
        ctx.save({"method": "data_swarms", "step": step, "pso": pso.state_dict(), "orig_means": ctx.setup.evaluator.orig_means})
    return SearchResult(pso.g.clone(), pso.initial_best, pso.g_util, pso.steps_done, pso.should_stop())


def final_rows(items: list[Item], values: torch.Tensor, names: list[str]) -> list[dict]:
    rows = []
    for n, item in enumerate(items):
        row = item.to_json()
        if item.valid:
            row["heldout_scores"] = {t: (None if math.isnan(v) else v) for t, v in zip(names, values[:, n].tolist())}
        rows.append(row)
    return rows


def evaluation_summary(ev: Evaluation, names: list[str], weights: dict[str, float]) -> dict[str, Any]:
    """Every objective component, the run's utility, and each taker's mean on one dataset."""
    result = ev.results[0]
    mask = result.scores.mask
    means = [(result.scores.values[t][mask[t]].mean().item() if mask[t].any() else None) for t in range(len(names))]
    return {
        "utility": ev.utility[0].item(),
        "objective": {k: v[0].item() for k, v in ev.components.items()},
        "weights": weights,
        "valid_fraction": ev.valid_fraction[0].item(),
        "valid_format": ev.valid_format[0].item(),
        "defeat_all": ev.defeat_all[0].item(),
        "n_items": len(result.items),
        "takers": dict(zip(names, means)),
        "missing": ev.missing,
    }


def taker_groups(ev: Evaluation, names: list[str], orig_means: torch.Tensor, evaluator, weights: dict[str, float]) -> dict[str, Any]:
    """``evaluation_summary`` of the same items for each group of held-out takers (``heldout_groups``):
    the scores are sliced, never recomputed, so every group scores exactly the same final dataset."""
    result, out = ev.results[0], {}
    for group, rows in heldout_groups(names).items():
        idx = torch.tensor(rows)
        values = result.scores.values[idx]
        missing = int((~torch.isfinite(values) & result.scores.valid).sum())
        sub = evaluator.combine([ParticleResult(result.items, Scores(values, result.scores.valid, missing), result.realism)],
                                orig_means[idx])
        out[group] = evaluation_summary(sub, [names[i] for i in rows], weights)
    return out


def finalize(ctx: RunContext, result: SearchResult) -> dict[str, Any]:
    """Export the best generator, write its dataset, evaluate it on held-out and search takers."""
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
        "verifier": setup.verifier.kind,
        "realism_corpus": setup.task.realism_source,
        "heldout": evaluation_summary(heldout, setup.heldout.names, weights),
        "heldout_groups": taker_groups(heldout, setup.heldout.names, heldout_orig, ev_, weights),
    }
    if result.prompt is not None:
        summary["prompt"] = {"template": result.prompt.template, "examples": list(result.prompt.examples)}
    evaluate_heldout = lambda v: ev_.evaluate_items(setup.writer.write(v, seed, n_prompts), setup.heldout, heldout_orig)  # noqa: E731
    summary.update(result.extra_summary(ctx, heldout, evaluate_heldout, weights))  # collective: every process
    if ctx.is_main:
        summary["search_takers"] = evaluation_summary(search, setup.takers.names, weights)
        with atomic_dir(ctx.run_dir / "best" / "generator") as tmp:  # a kill never leaves half an adapter
            setup.writer.model.export(result.best, tmp)
        best = heldout.results[0]
        rows = final_rows(best.items, best.scores.values, setup.heldout.names)
        atomic_write_jsonl(ctx.run_dir / "best" / "data.jsonl", rows)
        write_dataset(ctx.run_dir / "best" / "dataset", rows, summary, ctx.tracker.config)  # datasets' form + card
        atomic_write_json(ctx.run_dir / "summary.json", summary)
        plot_utility(ctx.tracker.rows, ctx.run_dir / "plots" / "utility.png")
        ctx.tracker.summary(summary, rows)
    return summary


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Run (or resume) the configured method in ``run_dir``; return summary.json's content."""
    search = instantiate(cfg.method, "method")  # search(ctx) -> SearchResult
    setup = build(cfg)
    run_dir = Path(setup.dist.broadcast(str(run_dir)))
    if setup.dist.is_main:
        remove_all_stale_temps(run_dir)  # what a run killed mid-write left; never read as data
    state = checkpoint.load(run_dir)
    if state is not None and state.get("method") != cfg.method.name:
        raise ConfigError(f"method: {run_dir} holds a {state.get('method')} run, not {cfg.method.name}")
    evaluator = setup.evaluator
    if state is not None and state.get("orig_means") is not None:
        evaluator.orig_means = state["orig_means"]
    else:
        evaluator.orig_means = evaluator.original_means(setup.task.dev[: cfg.objective.novelty_items])
    resume_step = int(state["step"]) if state is not None else 0
    tracker = None
    if setup.dist.is_main:
        reference = {"takers": setup.takers.names, "dev_means": evaluator.orig_means.tolist()}
        atomic_write_json(run_dir / "data" / "reference.json", reference)
        config = OmegaConf.to_container(cfg, resolve=True)
        tracker = Tracker(run_dir, OmegaConf.to_container(cfg.logger), config, resume_step)
        if state is not None:
            log.info("resuming %s from step %d", run_dir, resume_step)
    ctx = RunContext(cfg, setup, run_dir, tracker, state, OrderedWriter())
    exit_code = 1
    try:
        result = search(ctx)
        ctx.writer.flush()  # the last checkpoint is on disk before summary.json says the run is done
        summary = finalize(ctx, result)
        exit_code = 0
        return summary
    finally:
        try:
            ctx.writer.close()  # a stopped run's last checkpoint too
        finally:
            if hasattr(setup.judge, "close"):  # the OpenAI judge's HTTP client
                setup.judge.close()
            if tracker is not None:
                tracker.finish(exit_code)

