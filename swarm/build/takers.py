"""From the config to the takers: which models each taker entry names, how they are asked, how a served one is reached.

The search takers and the held-out takers come from ``taker._target_`` (a model source, generators/sources/);
`taker_specs` turns its entries into specs with their answer settings, checked (a held-out taker that is also
a search taker is refused); `served_client` makes the endpoint client of a taker behind an HTTP endpoint.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig

from generators.models.lengths import model_context, taker_lengths
from generators.sources.protocol import TakerSources
from generators.takers.lora_panel import AnswerSettings
from generators.takers.panel import TakerSpec
from generators.takers.specs import SMOLLM2_ASKED, check_held_out, resolve_takers
from objectives.endpoints import Endpoint
from objectives.judging.answers import make_extractor
from objectives.tasks.item import Task
from swarm.config import instantiate
from swarm.runtime.errors import ConfigError, first_line

__all__ = ["answer_settings", "served_client", "taker_entry", "taker_specs"]


def answer_settings(t: DictConfig, task: Task, base: Path | None) -> AnswerSettings:
    """``taker.answer``: ``line`` answers in one line (taker.max_new_tokens; null: the task's answer
    lengths in ``base``'s tokens); ``reasoning`` thinks, then the task's rule finds the answer."""
    if t.answer == "reasoning":
        try:
            extract = make_extractor(getattr(task, "answer_extract", "auto"), [it.output for it in task.dev])
        except ValueError as err:
            raise ConfigError(first_line(err)) from err
        return AnswerSettings(template=t.reasoning_template, max_new_tokens=t.reasoning_max_new_tokens, stop=None,
                              batch_size=t.batch_size, extract=extract)
    new = t.max_new_tokens
    if new is None:
        if base is None:
            raise ConfigError("taker.max_new_tokens: set it (no single taker base to size answers from the task)")
        from transformers import AutoConfig, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
        prompts = [t.template.format(input=it.input) for it in task.dev]
        outputs = [" " + it.output for it in task.dev if it.output is not None]
        try:
            new, _ = taker_lengths(tokenizer, model_context(AutoConfig.from_pretrained(str(base), local_files_only=True)),
                                   prompts, outputs)
        except ValueError as err:
            raise ConfigError(first_line(err)) from err
    return AnswerSettings(template=t.template, max_new_tokens=new, stop=t.stop, batch_size=t.batch_size)


def taker_specs(cfg: DictConfig, task: Task) -> tuple[list[TakerSpec], list[TakerSpec]]:
    """The search takers and the held-out takers from ``taker._target_`` (any mix of models)."""
    t = cfg.taker
    try:
        sources: TakerSources = instantiate(t, "taker")(task, cfg.seed)
    except ValueError as err:
        raise ConfigError(first_line(err)) from err
    budget = cfg.batching.max_batch_tokens
    asked = replace(answer_settings(t, task, sources.sizing_base), max_batch_tokens=budget)
    smol = replace(AnswerSettings(**t.smollm2) if t.get("smollm2") else SMOLLM2_ASKED, max_batch_tokens=budget)
    setting = "taker.models" if "models" in t else "taker.adapters"
    try:
        search = resolve_takers(sources.models, sources.zoo, asked, t.chat_template, smol, setting, t.served_as)
        heldout = resolve_takers(sources.heldout, sources.zoo, asked, t.chat_template, smol, "taker.heldout", t.served_as)
        check_held_out(search, heldout)
        return search, heldout
    except ValueError as err:
        raise ConfigError(first_line(err)) from err


def taker_entry(cfg: DictConfig, base: Path, search: list[TakerSpec], heldout: list[TakerSpec]) -> str | None:
    """The ``taker.models[i]`` / ``taker.heldout[i]`` entry that names model dir ``base`` (None: taker.base names it)."""
    if "models" not in cfg.taker:
        return None
    for key, specs in (("taker.models", search), ("taker.heldout", heldout)):
        for i, spec in enumerate(specs):
            if spec.base is not None and Path(spec.base).resolve() == Path(base).resolve():
                return f"{key}[{i}]"
    return None


def served_client(t: DictConfig, shared: dict[str, Any]) -> Callable[[TakerSpec], Endpoint]:
    """The endpoint client of a served taker spec (``taker.endpoint_*``): the chat API when it is asked
    through a chat template (``endpoint_api=auto``), the completions API otherwise."""
    def serve(spec: TakerSpec) -> Endpoint:
        api = t.endpoint_api if t.endpoint_api != "auto" else ("chat" if spec.chat_template else "completions")
        return Endpoint(spec.served.base_url, spec.served.model, t.api_key_env, api=api,
                        concurrency=t.endpoint_concurrency, timeout=t.endpoint_timeout,
                        max_retries=t.endpoint_max_retries, backoff=t.endpoint_backoff,
                        backoff_max=t.endpoint_backoff_max, **shared)

    return serve
