"""prompt_search: keep the generator fixed and search its *prompt* instead of its weights.

The question a reviewer asks of Data Swarms: does moving weights beat moving
the prompt? A candidate is a prompt: which ``examples`` dev items the few-shot
prompts draw their shots from, and, for instruction-following generators, an
instruction from a small pool of Evol-Instruct-style rewrites ("make it
harder / rarer / more steps"; ``method.evol``) besides the generator's own
template. The zoo's LM knows only its own template, so ``instructions=auto``
searches examples only there.

Same objective, same evaluation code and budget as the swarm: as many
candidates a step as the swarm has particles (swarm/search/population.py),
``pso.max_steps`` steps.
``generator=best_expert``: step 1 evaluates the swarm's starting points with
the default prompt (as the swarm's step 1 does) and keeps the best fixed;
from then on each step evaluates mutations of the best prompt so far (each
example slot replaced with probability 1/examples, at least one; the
instruction redrawn with probability 1/2): a (1+λ) evolution strategy in
prompt space. ``generator=base``: the base LM, and step 1 evaluates random
prompts. The ``select.candidates`` best distinct (generator, prompt) pairs
go to the fresh selection.
"""
from __future__ import annotations

import time
from typing import Annotated, Literal

import torch
from annotated_types import Ge
from pydantic import AfterValidator

from generators.writer import Prompt
from swarm.runtime.errors import ConfigError
from swarm.search.context import RunContext, SearchResult
from swarm.search.evaluate import step_seed
from swarm.search.population import populate
from swarm.search.selection import as_candidates, keep_best

Candidate = dict  # {"examples": [dev indices], "instruction": index into the templates}


def _evol_templates(templates: list[str]) -> list[str]:
    """method.evol's rule: each instruction fills in {n} and {examples} like generator.template."""
    for t in templates:
        if "{n}" not in t or "{examples}" not in t:
            raise ValueError(f"every instruction needs {{n}} and {{examples}}, got {t!r}")
    return templates


def _random(n_pool: int, m: int, n_templates: int, rng: torch.Generator) -> Candidate:
    examples = torch.randperm(n_pool, generator=rng)[:m].tolist()
    return {"examples": examples, "instruction": int(torch.randint(n_templates, (1,), generator=rng))}


def mutate(parent: Candidate | None, n_pool: int, m: int, n_templates: int, rng: torch.Generator) -> Candidate:
    """A child of ``parent`` (a fresh random prompt when there is none yet)."""
    if parent is None:
        return _random(n_pool, m, n_templates, rng)
    examples = list(parent["examples"])
    if n_pool > m:
        forced = int(torch.randint(m, (1,), generator=rng))
        change = (torch.rand(m, generator=rng) < 1.0 / m).tolist()
        for slot in range(m):
            if change[slot] or slot == forced:
                free = [i for i in range(n_pool) if i not in examples]
                examples[slot] = free[int(torch.randint(len(free), (1,), generator=rng))]
    instruction = parent["instruction"]
    if n_templates > 1 and float(torch.rand(1, generator=rng)) < 0.5:
        instruction = int(torch.randint(n_templates, (1,), generator=rng))
    return {"examples": examples, "instruction": instruction}


def templates_of(ctx: RunContext, instructions: str, evol: list[str]) -> list[str]:
    """The instruction pool: the generator's own template, plus the Evol-Instruct rewrites when searched."""
    use_evol = instructions == "evol" or (instructions == "auto" and ctx.cfg.generator._target_ != "generators.sources.zoo.zoo_generators")
    return [ctx.cfg.generator.template, *(evol if use_evol else [])]


def prompt_search(ctx: RunContext, *, generator: Literal["best_expert", "base"], examples: Annotated[int, Ge(1)] | None,
                  instructions: Literal["auto", "own", "evol"],
                  evol: Annotated[list[str], AfterValidator(_evol_templates)]) -> SearchResult:
    """Search the prompt of a fixed generator with the swarm's budget (module docstring)."""
    writer, cfg = ctx.setup.writer, ctx.cfg
    pool_items = writer.pool
    _, x0 = populate(writer.model.expert_vectors, cfg.pso.n_particles, cfg.pso.include_base, cfg.seed)
    templates = templates_of(ctx, instructions, list(evol))
    m = min(len(pool_items), examples or 2 * writer.settings.few_shot)
    if m < 1:
        raise ConfigError(f"method.examples: must be >= 1, got {examples}")
    as_prompt = lambda c: None if c is None else Prompt(tuple(pool_items[i] for i in c["examples"]), templates[c["instruction"]])  # noqa: E731
    rng = torch.Generator().manual_seed(cfg.seed)
    step, fixed, best, best_util, initial, kept = 0, None, None, float("-inf"), float("nan"), []
    if ctx.state is not None:
        s = ctx.state
        step, fixed, best, best_util, initial, kept = s["step"], s["fixed"], s["best"], s["utility"], s["initial"], s["pool"]
        rng.set_state(s["rng"])
    while step < cfg.pso.max_steps:
        started = time.time()
        step += 1
        if step == 1 and generator == "best_expert":
            candidates, vectors = [None] * x0.shape[0], x0
            ev = ctx.evaluate(x0, step)
            fixed = x0[int(torch.argmax(ev.utility))].clone()
        else:
            fixed = torch.zeros_like(x0[0]) if fixed is None else fixed
            candidates = [mutate(best, len(pool_items), m, len(templates), rng) for _ in range(x0.shape[0])]
            vectors = fixed.expand(len(candidates), -1)
            seed, n = step_seed(cfg.seed, step), writer.settings.prompts_per_step
            ev = ctx.check(ctx.setup.evaluator.evaluate_prompts(vectors, [as_prompt(c) for c in candidates], seed, n), step)
        i = int(torch.argmax(ev.utility))
        if step == 1:
            initial = ev.utility[i].item()
        if ev.utility[i].item() > best_util:
            best, best_util = candidates[i], ev.utility[i].item()
        kept = keep_best(kept, vectors, ev.utility.tolist(), step, cfg.select.candidates, candidates)
        ctx.record(step, ev, started, {"best": best_util, "worst": ev.utility.min().item()})
        ctx.save({"method": "prompt_search", "step": step, "fixed": fixed, "best": best, "utility": best_util,
                  "initial": initial, "rng": rng.get_state(), "pool": kept})
    return SearchResult(fixed, initial, best_util, step, "max_steps", prompt=as_prompt(best),
                        candidates=as_candidates(kept, as_prompt))
