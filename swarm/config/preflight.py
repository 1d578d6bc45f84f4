"""Checks that need the task read, and nothing else loaded: a run that would measure nothing stops here.

They run in swarm.build right after the task loads, before the zoo is built or any
model is loaded, and raise a ConfigError naming the setting (one line, exit 2). What a
component can do is what it declares, not what it is called: a generator source that
never writes "Answer: ..." has ``writes_answers = False``, a judge that compares with the
item's reference has ``needs_reference = True`` (a user's own component declares the same).
"""
from __future__ import annotations

from omegaconf import DictConfig

from objectives.tasks.item import Task
from swarm.config.registry import resolve
from swarm.runtime.errors import ConfigError


def declares(node: DictConfig, key: str, attribute: str, default: bool) -> bool:
    """What the ``_target_`` of config node ``key`` declares about itself (``default`` when it says nothing)."""
    return bool(getattr(resolve(node._target_, f"{key}._target_"), attribute, default))


def check_answers(cfg: DictConfig, task: Task) -> None:
    """A run that would measure nothing stops with one line before any model loads (or the zoo is built).

    With ``task.require_answer`` (the default) an item without "Answer: ..." is invalid: the embedded
    zoo's generators never write one (bare arithmetic), and generators write items like the dev examples,
    so a task without outputs gets none either; a judge that compares with the reference
    (judge=reference, an LLM judge with judge.reference=with) has nothing to compare with.
    """
    if getattr(task, "require_answer", False) and not declares(cfg.generator, "generator", "writes_answers", True):
        raise ConfigError(f"generator: {cfg.generator._target_} writes items without 'Answer: ...' (the embedded zoo "
                          "writes bare arithmetic), so with task.require_answer=true none would be valid; use task=arith, "
                          "generator=smollm2 or generator=hf, or task.require_answer=false")
    if task.exact_answers or any(it.output is not None for it in task.dev):
        return
    source = "task.path" if "path" in cfg.task else "task.source"
    if getattr(task, "require_answer", False):
        raise ConfigError(f"{source}: no dev item has an 'output', so the generators' items carry no answer and none is "
                          "valid (task.require_answer=true); add outputs, or set task.require_answer=false with a judge "
                          "that needs none (judge=hf_llm judge.reference=without)")
    if cfg.judge.get("reference") == "with" or declares(cfg.judge, "judge", "needs_reference", False):
        raise ConfigError(f"judge: {cfg.judge._target_} compares answers with the item's reference, and no dev item of "
                          f"{source} has an 'output'; use a judge without a reference (judge=hf_llm judge.reference=without)")
