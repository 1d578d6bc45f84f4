"""The contract between the run and its methods: what a method gets and what it returns.

    def my_method(ctx: RunContext, **options) -> SearchResult   # method._target_, options from the method node

A method evaluates candidate generator vectors with ``ctx.evaluate(vectors,
step)``, writes each step with ``ctx.record`` and checkpoints with
``ctx.save``; it resumes from ``ctx.state``. swarm/build.py builds the ``Setup``,
swarm/run.py the context, and finishes the run from the result; every module of
swarm/search/methods/ is a method.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from statistics import fmean
from typing import Any, Callable

import torch
from omegaconf import DictConfig

from generators.sources.protocol import GeneratorSources
from generators.takers.lora_panel import AnswerSettings, TakerPanel
from generators.takers.panel import Panel
from generators.writer import Prompt, Writer
from objectives.endpoints import usage_metrics
from objectives.judging.judges import Judge
from objectives.judging.verify import Verifier, unchecked_note
from objectives.tasks.item import Task
from swarm.runtime import checkpoint
from swarm.runtime.dist import Dist
from swarm.runtime.errors import RunStopped
from swarm.runtime.files import OrderedWriter, atomic_write_text, jsonl
from swarm.runtime.tracking import Tracker
from swarm.search.evaluate import Evaluation, Evaluator, step_seed

log = logging.getLogger("dswarm")


@dataclass
class Setup:
    """The run's objects: one generator model (and where it came from), two taker panels, the judge and the evaluator."""

    sources: GeneratorSources
    task: Task
    dist: Dist
    writer: Writer
    takers: TakerPanel | Panel
    heldout: TakerPanel | Panel
    judge: Judge
    evaluator: Evaluator
    verifier: Verifier
    asked: AnswerSettings | None = None  # how the (first) search taker is asked: the run's prompt, exported with the data


@dataclass(frozen=True)
class StepSettings:
    """The settings every step of a search reads (`RunContext.every_step`)."""

    seed: int
    max_missing_fraction: float
    save_steps: bool


@dataclass
class RunContext:
    """What a search method gets: the settings, the live models (``setup``), the run dir, the checkpoint
    to resume from, and the steps' bookkeeping (evaluate, check, record, save)."""

    cfg: DictConfig
    setup: Setup
    run_dir: Path
    tracker: Tracker | None  # None on non-main processes
    state: dict[str, Any] | None  # the checkpoint to resume from
    files: OrderedWriter  # writes the step files and checkpoints behind the next step (setup.writer writes items)
    warned: bool = False  # the invented-answers warning was given

    @cached_property
    def every_step(self) -> StepSettings:
        """The settings each step reads, read from the config once (an OmegaConf lookup is ~15 us)."""
        cfg = self.cfg
        return StepSettings(cfg.seed, cfg.judge.max_missing_fraction, cfg.data.save_steps)

    @property
    def is_main(self) -> bool:
        return self.setup.dist.is_main

    def evaluate(self, vectors: torch.Tensor, step: int) -> Evaluation:
        """Evaluate a step's particles; stop cleanly if the judge lost too many scores."""
        return self.check(self.setup.evaluator.evaluate(vectors, step_seed(self.every_step.seed, step)), step)

    def check(self, ev: Evaluation, step: int, what: str | None = None) -> Evaluation:
        """``ev`` of step ``step`` (``what``: how messages name it), unless the judge lost too many of its
        scores (then the run stops cleanly)."""
        limit = self.every_step.max_missing_fraction
        what = what or f"step {step}"
        if ev.missing_fraction > limit:
            kept = f"checkpoint of step {step - 1} kept" if step > 1 else "no step completed yet"
            raise RunStopped(
                f"judge: {ev.missing_fraction:.0%} of scores missing at {what} (judge failures, served takers' "
                f"failed requests; > judge.max_missing_fraction={limit}); {kept}; run the same command again to resume"
            )
        if ev.missing and self.is_main:
            log.warning("%s: %d of %d scores missing (judge failures, served takers' failed requests; excluded, "
                        "not defaulted)", what, ev.missing, ev.missing + ev.scored)
        empty = [p for p, f in enumerate(ev.valid_fraction.tolist()) if f == 0]
        if empty and self.is_main:
            log.warning("%s: particle(s) %s wrote no valid item (utility 0)", what, empty)
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
        if self.every_step.save_steps:
            self.files.defer(atomic_write_text, self.run_dir / "data" / f"step_{step:03d}.jsonl", jsonl(items))
        row = {
            "step": step,
            "utility": ev.utility.tolist(),
            **{f"objective/{k}": v.tolist() for k, v in ev.components.items()},
            "valid_fraction": ev.valid_fraction.tolist(),
            "valid/format": ev.valid_format.tolist(),
            "valid/answer": ev.valid_fraction.tolist(),
            "items/defeat_all": ev.defeat_all.tolist(),
            **({"contamination/rate": ev.contamination.tolist(), "contamination/overlap": ev.overlap.tolist()}
               if ev.contamination is not None else {}),
            "judge/missing": ev.missing,
            **(usage_metrics(ev.usage, dict(self.cfg.endpoints.prices)) if ev.usage else {}),
            **extra,
            **{f"time/{name}": round(secs, 4) for name, secs in ev.seconds.items()},
            "seconds": round(time.time() - started, 3),
        }
        self.tracker.log(row, items)
        log.info(
            "step %d  best %.4f  mean %.4f  valid %.2f  %.1fs",
            step, extra.get("best", float("nan")), fmean(row["utility"]), fmean(row["valid_fraction"]), row["seconds"],
        )

    def save(self, state: dict[str, Any]) -> None:
        """Checkpoint ``state`` as it is now, with the endpoint traffic so far; the file lands behind this
        step's data file."""
        if self.is_main:
            usage = {m: asdict(c) for m, c in self.setup.evaluator.total.items()}
            self.files.submit(checkpoint.write, self.run_dir, checkpoint.serialize({**state, "usage": usage}))


@dataclass
class Candidate:
    """A point a search found, for the fresh selection (swarm/search/selection.py) to re-score."""

    vector: torch.Tensor  # the generator's flat vector
    in_sample: float  # its utility as the search recorded it
    source: str  # where it comes from, e.g. "g", "p/3", "step 4/2"
    prompt: Prompt | None = None  # the prompt it writes with (prompt_search); None: the default


@dataclass
class SearchResult:
    """What every method returns (``method._target_(ctx, **options)``).

    A method that searches lists its best distinct points in ``candidates`` (the
    best first); the run then exports the one best on fresh items and records
    ``selection``. A method that does not search leaves both empty.
    """

    best: torch.Tensor  # the best generator's flat vector (after selection: the exported one)
    initial_best: float
    best_utility: float  # the search's best recorded (in-sample) utility
    steps: int
    stop_reason: str
    prompt: Prompt | None = None  # the prompt the best generator writes with (prompt_search); None: the default
    initial: torch.Tensor | None = None  # the best candidate at step 1 (a starting point): its data is the held-out yardstick
    candidates: list[Candidate] = field(default_factory=list)
    selection: dict[str, Any] | None = None  # summary.json's ``selection`` block, set by the selection

    def extra_summary(self, ctx: RunContext, heldout: Evaluation,
                      evaluate_heldout: Callable[[torch.Tensor], Evaluation], weights: dict[str, float]) -> dict[str, Any]:
        """A method's own blocks of summary.json (and files it exports); ``heldout`` is the best data's evaluation,
        ``evaluate_heldout(vector)`` writes and scores another generator's data the same way."""
        return {}


def step_rows(ev: Evaluation, taker_names: list[str]) -> list[dict]:
    """One JSON line per generated item: enough to recompute every particle's utility."""
    rows = []
    fields: dict[int, dict] = {}  # id(item) -> item.to_json(): a step's particles share the objects of their common items
    for p, result in enumerate(ev.results):
        per_item = zip(result.scores.values.T.tolist(), result.realism.tolist())  # one conversion per particle
        for item, (values, realism) in zip(result.items, per_item):
            known = fields.get(id(item))
            if known is None:
                known = fields[id(item)] = item.to_json()
            row = {"particle": p, **known}
            if item.valid:
                row["scores"] = dict(zip(taker_names, values))  # NaN (no score) is written null: files.dumps
                row["realism"] = realism
            rows.append(row)
    return rows
