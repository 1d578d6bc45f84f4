"""From the composed config to the run's live objects, built once per run.

Everything that reads a config group lives here, so the rest of the code takes
explicit arguments; each component comes from its group's ``_target_``
(swarm/config/, docs/configuration.md): no name is looked up in a table here.
Models are loaded once; later steps only swap LoRA vectors in place.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from generators.models.cache import default_cache_dir
from generators.models.lengths import GeneratorLengths, generator_lengths, model_context
from generators.models.lora_model import LoraModel
from generators.models.memory import check_fits
from generators.sources.hub import resolve_model
from generators.sources.protocol import GeneratorSources
from generators.takers.panel import build_panels
from generators.writer import Writer, WriterSettings
from objectives.contamination import Contamination
from objectives.endpoints import Usage
from objectives.judging.judges import Judge
from objectives.judging.verify import Verifier, unchecked_note
from objectives.realism import Realism
from objectives.tasks.item import Task
from swarm.build.takers import answer_settings, served_client, taker_entry, taker_specs
from swarm.config import instantiate
from swarm.config.preflight import check_answers
from swarm.config.registry import runtime_arguments
from swarm.runtime.dist import Dist
from swarm.runtime.errors import ConfigError, first_line
from swarm.search.context import Setup
from swarm.search.evaluate import Evaluator

__all__ = ["answer_settings", "build", "build_judge", "build_task", "build_verifier", "load_lora_model", "taker_specs"]

log = logging.getLogger("dswarm")


def resolve_device(device: str, dtype: str, dist: Dist) -> tuple[str, torch.dtype]:
    """auto: the process's accelerator when there is one, bf16 there and fp32 on CPU."""
    if device == "auto":
        device = dist.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        index = device.partition(":")[2]
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count or (index and not (index.isdigit() and int(index) < count)):
            raise ConfigError(f"device: {device} is not available here ({count} CUDA device(s)); use device=auto or device=cpu")
    if dtype == "auto":
        return device, torch.bfloat16 if device.startswith("cuda") else torch.float32
    return device, getattr(torch, dtype)


def build_task(cfg: DictConfig) -> Task:
    """The task from ``task._target_``; a file, dataset, split or column it cannot read names its setting."""
    try:
        return instantiate(cfg.task, "task")
    except (OSError, ValueError, ConnectionError) as err:
        message = first_line(err)
        setting = "task.path" if "path" in cfg.task else "task.source"
        raise ConfigError(message if message.startswith("task.") else f"{setting}: {message}") from err


def generator_sources(cfg: DictConfig, task: Task) -> GeneratorSources:
    """The generator's base model dir and its expert adapter dirs, from ``generator._target_``."""
    try:
        return instantiate(cfg.generator, "generator")(task, cfg.seed)
    except ValueError as err:  # a model or adapter setting that names nothing (its message names the setting)
        raise ConfigError(first_line(err)) from err


def fit_generator(g: DictConfig, model: LoraModel, task: Task) -> GeneratorLengths:
    """generator.max_new_tokens (null: from the task) and the few-shot count that fits the model's context."""
    try:
        return generator_lengths(model.tokenizer, model_context(model.model.config), [task.format_example(it) for it in task.dev],
                                 g.template, g.few_shot, g.items_per_prompt, g.max_new_tokens)
    except ValueError as err:
        raise ConfigError(first_line(err)) from err


def endpoint_sharing(cfg: DictConfig, usage: Usage) -> dict[str, Any]:
    """What every endpoint client of the run shares: the disk cache of replies (``endpoints.cache``) and
    the usage ledger."""
    e = cfg.endpoints
    cache_dir = (e.cache_dir or str(default_cache_dir() / "endpoints")) if e.cache else None
    return {"cache_dir": cache_dir, "usage": usage}


def build_judge(cfg: DictConfig, device: str, dtype: torch.dtype, share: LoraModel | None = None,
                shared: dict[str, Any] | None = None) -> Judge:
    """The judge from ``judge._target_``; one that takes ``generate`` gets ``judge.model``'s (on ``share``'s
    base dir it uses that loaded base with its adapters off, loading nothing); an endpoint judge gets the
    run's ``shared`` endpoint cache and usage ledger."""
    available: dict[str, Any] = dict(shared or {})
    if "generate" in runtime_arguments(cfg.judge, "judge", {"generate": None}):
        model = local_model("judge", cfg.judge.model, share, device=device, dtype=dtype, chat_template=True)
        budget = cfg.judge.max_new_tokens
        tokens = cfg.batching.max_batch_tokens
        available["generate"] = lambda prompts: model.generate(prompts, max_new_tokens=budget, batch_size=8, max_batch_tokens=tokens)
    return instantiate(cfg.judge, "judge", **runtime_arguments(cfg.judge, "judge", available))


def local_model(group: str, name: str | None, share: LoraModel | None, **kwargs: Any) -> LoraModel:
    """``<group>.model`` (an HF model dir, a hub id, or smollm2) loaded once, without adapters."""
    if name is None:
        raise ConfigError(f"{group}.model: {group}._target_ takes a local model's generate; name the model ({group}.model=...)")
    from generators.sources import smollm2

    base = smollm2.base_dir() if name == "smollm2" else resolve_model(name, f"{group}.model")
    return plain_model(group, base, share, **kwargs)


def plain_model(group: str, base: Path, share: LoraModel | None, **kwargs: Any) -> LoraModel:
    """``base`` without adapters; on ``share``'s base dir, ``share``'s loaded model with its adapters off."""
    same = share is not None and share.spec is not None and Path(base).resolve() == share.base_dir
    return load_lora_model(group, base, [], share=share if same else None, **kwargs)


def build_verifier(cfg: DictConfig, task: Task, device: str, dtype: torch.dtype,
                   share: LoraModel | None = None, shared: dict[str, Any] | None = None) -> Verifier:
    """The answer verifier of ``verifier._target_``; one that takes ``generate`` gets ``verifier.model``'s,
    loaded once without adapters (or ``share``'s loaded base, when it is the same model); an endpoint
    verifier gets ``shared``; every one may take the task's ``exact_answers``."""
    v = cfg.verifier
    available: dict[str, Any] = {"exact_answers": task.exact_answers, **(shared or {})}
    if "generate" in runtime_arguments(v, "verifier", {"generate": None}):
        model = local_model("verifier", v.model, share, device=device, dtype=dtype, chat_template=v.chat_template)
        sampling = dict(temperature=v.temperature, max_new_tokens=v.max_new_tokens, batch_size=v.batch_size,
                        max_batch_tokens=cfg.batching.max_batch_tokens)  # a sample is a row: the budget bounds them
        available["generate"] = lambda prompts: model.generate(prompts, stop="\n", seed=cfg.seed, **sampling)
    try:
        return instantiate(v, "verifier", **runtime_arguments(v, "verifier", available))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"verifier: {first_line(err)}") from err


def build_contamination(t: DictConfig, task: Task) -> Contamination:
    """The contamination screen: the task's dev and test inputs and ``task.contamination_refs``."""
    try:
        return Contamination.of_task(task, list(t.contamination_refs), n=t.contamination_n,
                                     threshold=t.contamination_threshold, drop=t.drop_contaminated)
    except ValueError as err:
        raise ConfigError(first_line(err)) from err


def load_lora_model(group: str, base: Path, adapters: list[Path], base_name: str | None = None,
                    entry: str | None = None, **kwargs: Any) -> LoraModel:
    """``LoraModel``; a base or adapters it cannot load are reported against ``group``'s settings, or
    against ``entry`` (e.g. ``taker.models[1]``) when the model is one entry of a list.

    ``base_name``: what exported adapters name as their base (the hub id or path the user gave).
    """
    try:
        model = LoraModel(base, adapters, **kwargs)
    except torch.OutOfMemoryError:
        raise
    except OSError as err:  # no such dir, not a model dir, no tokenizer, no safetensors
        setting = entry or f"{group}.{'adapters' if any(str(a) in str(err) for a in adapters) else 'base'}"
        raise ConfigError(f"{setting}: {first_line(err)}") from err
    except (ValueError, RuntimeError, KeyError) as err:  # adapters that do not fit each other or the base's layers
        if entry is not None:
            raise ConfigError(f"{entry}: {base} cannot be loaded as a model ({first_line(err)})") from err
        raise ConfigError(f"{group}.adapters: cannot be loaded on {group}.base={base}: {first_line(err)}") from err
    if kwargs.get("chat_template") and getattr(model.tokenizer, "chat_template", None) is None:
        setting = f"{group}.chat_template" if group in ("generator", "taker", "verifier") else f"{group}.model"
        raise ConfigError(f"{setting}: {base}'s tokenizer has no chat template, so prompts cannot be asked as chat "
                          f"turns; set {group}.chat_template=false or use a chat model")
    if base_name is not None and model.config is not None:
        model.config.base_model_name_or_path = base_name
    return model


def build(cfg: DictConfig) -> Setup:
    """Build every component from its ``_target_``, load every model once, and wire the evaluator."""
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    dist = Dist(cpu=cfg.device == "cpu" or not torch.cuda.is_available())
    device, dtype = resolve_device(cfg.device, cfg.dtype, dist)
    task = build_task(cfg)
    check_answers(cfg, task)
    g = cfg.generator
    sources = generator_sources(cfg, task)
    gen_base, gen_adapters = sources.base, sources.experts
    search, heldout = taker_specs(cfg, task)
    if len(gen_adapters) < 2:
        raise ConfigError(f"generator.adapters: a swarm needs at least 2 generator experts, got {len(gen_adapters)}")
    if not search or not heldout:
        raise ConfigError("taker.models and taker.heldout: at least one search taker and one held-out taker are needed")
    usage = Usage()
    shared = endpoint_sharing(cfg, usage)
    writer_model = load_lora_model(
        "generator", gen_base, gen_adapters, g.get("base"), device=device, dtype=dtype, chat_template=g.chat_template,
        multi_lora=cfg.batching.multi_lora,
    )
    verifier = build_verifier(cfg, task, device, dtype, share=writer_model, shared=shared)
    if verifier.kind == "none" and not task.exact_answers and dist.is_main:
        log.warning(unchecked_note(task.name))
    fit = fit_generator(g, writer_model, task)
    try:  # the generator's rows (prompt and items: what its experts train at) are the run's longest
        check_fits(writer_model.model.config, cfg.batching.max_batch_tokens, fit.train_max_len, dtype, writer_model.device,
                   str(writer_model.base_dir))
    except ValueError as err:
        raise ConfigError(first_line(err)) from err
    if fit.few_shot < g.few_shot and dist.is_main:
        log.warning("generator.few_shot: %d examples do not fit the model's context with %d new tokens; using %d",
                    g.few_shot, fit.max_new_tokens, fit.few_shot)
    writer = Writer(
        writer_model,
        task,
        WriterSettings(
            template=g.template,
            few_shot=fit.few_shot,
            items_per_prompt=g.items_per_prompt,
            prompts_per_step=g.prompts_per_step,
            max_new_tokens=fit.max_new_tokens,
            temperature=g.temperature,
            top_p=g.top_p,
            batch_size=g.batch_size,
            max_batch_tokens=cfg.batching.max_batch_tokens,
        ),
        verifier=verifier,
        contamination=build_contamination(cfg.task, task),
    )
    # One base in memory: takers on the generators' base become a second LoRA structure of the same model.
    takers, held = build_panels([search, heldout], lambda base, adapters, chat_template: load_lora_model(
        "taker", base, adapters, cfg.taker.get("base"), taker_entry(cfg, base, search, heldout), device=device, dtype=dtype,
        chat_template=chat_template, multi_lora=cfg.batching.multi_lora,
        share=writer_model if Path(base).resolve() == writer_model.base_dir else None),
        serve=served_client(cfg.taker, shared))
    judge = build_judge(cfg, device, dtype, share=writer_model, shared=shared)
    realism = Realism(task.realism_corpus(), top_k=cfg.objective.realism_top_k)
    objective = instantiate(cfg.objective, "objective")
    evaluator = Evaluator(writer, takers, judge, objective, realism, dist, progress=cfg.progress and dist.is_main, usage=usage)
    return Setup(sources, task, dist, writer, takers, held, judge, evaluator, verifier, asked=search[0].settings)
