"""Startup checks of the composed config: before torch or any model is loaded.

    validate(cfg)   # raises ConfigError("pso.inertia: must be in [0, 1], got 2")

Pure Python (no torch import), so a bad setting fails in about a second instead
of after the imports and model loads. Each message names the setting. The PSO
and objective-weight rules mirror ``swarm.pso.PSO`` and
``objectives.metrics.validate_weights`` (which still check at construction);
tests/test_bad_input.py checks that the two agree.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from generators.hub import is_hub_id, resolve_model
from swarm.errors import ConfigError, first_line

OBJECTIVES = ("consistency", "difficulty", "novelty", "realism", "separation")  # objectives.metrics.OBJECTIVES
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: must be a number, got {value!r}")
    return float(value)


def _int(value: Any, key: str, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: must be an integer, got {value!r}")
    if low is not None and value < low:
        raise ConfigError(f"{key}: must be >= {low}, got {value}")
    return value


def _in_range(value: Any, key: str, low: float, high: float, low_open: bool = False) -> float:
    v = _number(value, key)
    if not (low < v <= high if low_open else low <= v <= high):
        raise ConfigError(f"{key}: must be in {'(' if low_open else '['}{low:g}, {high:g}], got {value}")
    return v


def check_pso(p: Any) -> None:
    """The rules of ``PSO.__init__`` on the ``pso`` group."""
    inertia = _in_range(p.inertia, "pso.inertia", 0.0, 1.0)
    total = inertia
    for name in ("cognitive", "social", "repel"):
        w = _number(p[name], f"pso.{name}")
        if not (w >= 0.0 and math.isfinite(w)):
            raise ConfigError(f"pso.{name}: must be a finite number >= 0, got {p[name]}")
        total += w
    if total <= 0.0:
        raise ConfigError("pso.inertia, pso.cognitive, pso.social, pso.repel: all are 0; at least one must be > 0")
    step = _number(p.step_length, "pso.step_length")
    if not (step > 0.0 and math.isfinite(step)):
        raise ConfigError(f"pso.step_length: must be finite and > 0, got {p.step_length}")
    _in_range(p.decay, "pso.decay", 0.0, 1.0, low_open=True)
    if not 0.0 <= _number(p.floor, "pso.floor") <= step:
        raise ConfigError(f"pso.floor: must be in [0, pso.step_length={p.step_length}], got {p.floor}")
    _int(p.patience, "pso.patience", 1)
    _int(p.max_steps, "pso.max_steps", 1)
    _int(p.restart_patience, "pso.restart_patience")  # <= 0: restarts off
    _int(p.restart_cooldown, "pso.restart_cooldown", 0)
    if p.get("fused", "auto") not in ("auto", True, False):
        raise ConfigError(f"pso.fused: must be auto, true or false, got {p.fused!r}")


def check_weights(weights: Any) -> None:
    """The rules of ``objectives.metrics.validate_weights`` on ``objective.weights``."""
    if not isinstance(weights, DictConfig) or len(weights) == 0:
        raise ConfigError(f"objective.weights: must be a mapping of {list(OBJECTIVES)} to weights, got {weights!r}")
    for name, w in weights.items():
        key = f"objective.weights.{name}"
        if name not in OBJECTIVES:
            raise ConfigError(f"{key}: unknown objective; expected one of {list(OBJECTIVES)}")
        if not (math.isfinite(_number(w, key)) and w >= 0):
            raise ConfigError(f"{key}: must be a finite number >= 0, got {w}")
    if not any(w > 0 for w in weights.values()):
        raise ConfigError(f"objective.weights: all weights are zero; give at least one of {list(OBJECTIVES)} a weight > 0")


def _dir(value: Any, key: str, files: tuple[str, ...] = ()) -> None:
    path = Path(str(value))
    if not path.is_dir() and is_hub_id(str(value)):
        path = resolve_model(str(value), key)  # a hub id: its snapshot in the HF cache
    if not path.is_dir():
        raise ConfigError(f"{key}: directory not found: {path}")
    for name in files:
        if not (path / name).is_file():
            extra = " (pickled .bin adapters are not loaded: convert to safetensors)" if name.endswith(".safetensors") else ""
            raise ConfigError(f"{key}: {path} has no {name}{extra}")


def _adapters(value: Any, key: str, least: int) -> None:
    if not isinstance(value, ListConfig):
        raise ConfigError(f"{key}: must be a list of adapter dirs, e.g. {key}=[dir1,dir2], got {value!r}")
    if len(value) < least:
        what = "generator experts (a swarm needs at least 2 particles)" if key == "generator.adapters" else "adapter dirs"
        raise ConfigError(f"{key}: needs at least {least} {what}, got {len(value)}")
    for i, d in enumerate(value):
        _dir(d, f"{key}[{i}]", ADAPTER_FILES)


def _optional_int(group: Any, name: str, key: str) -> None:
    """A length that may be null (then it comes from the task: generators/lengths.py)."""
    if group.get(key) is not None:
        _int(group[key], f"{name}.{key}", 1)


def check_generator(g: Any) -> None:
    for key in ("items_per_prompt", "prompts_per_step", "batch_size"):
        _int(g[key], f"generator.{key}", 1)
    for key in ("max_new_tokens", "train_max_len"):
        _optional_int(g, "generator", key)
    _int(g.few_shot, "generator.few_shot", 0)
    if _number(g.temperature, "generator.temperature") < 0:
        raise ConfigError(f"generator.temperature: must be >= 0, got {g.temperature}")
    _in_range(g.top_p, "generator.top_p", 0.0, 1.0, low_open=True)
    if g.kind == "hf":
        _dir(g.base, "generator.base")
        _adapters(g.adapters, "generator.adapters", 2)
    elif g.kind == "smollm2":
        _int(g.k, "generator.k", 2)


def check_taker(t: Any) -> None:
    for key in ("max_new_tokens", "train_max_len"):
        _optional_int(t, "taker", key)
    _int(t.batch_size, "taker.batch_size", 1)
    if t.get("answer", "line") not in ("line", "reasoning"):
        raise ConfigError(f"taker.answer: expected line or reasoning, got {t.answer!r}")
    if t.get("answer") == "reasoning":
        _int(t.reasoning_max_new_tokens, "taker.reasoning_max_new_tokens", 1)
    if t.kind == "hf":
        _dir(t.base, "taker.base")
        _adapters(t.adapters, "taker.adapters", 1)
        if isinstance(t.heldout, ListConfig):  # adapter dirs of taker.base, or other models (generators/taker_specs.py)
            _adapters(ListConfig([h for h in t.heldout if h != "smollm2" and "@" not in str(h)]), "taker.heldout", 0)
        if not t.heldout:
            raise ConfigError("taker.heldout: needs at least 1 held-out taker, got 0")
    elif t.kind == "zoo":
        for key in ("models", "heldout"):
            if not isinstance(t[key], ListConfig) or len(t[key]) == 0:
                raise ConfigError(f"taker.{key}: must be a non-empty list of takers (zoo names, smollm2, model dirs), got {t[key]!r}")


def check_task(task: Any) -> None:
    if task.kind == "arith":
        _int(task.n_dev, "task.n_dev", 1)
        _int(task.n_test, "task.n_test", 1)
    elif task.kind == "json":
        path = Path(str(task.path))
        if not path.is_file():
            raise ConfigError(f"task.path: task file not found: {path}")
        for key in ("max_dev", "max_test"):
            if task.get(key) is not None:
                _int(task[key], f"task.{key}", 1)
        corpus = str(task.get("realism_corpus") or "")
        if corpus and not corpus.startswith("datasets:") and not Path(corpus).is_file():
            raise ConfigError(f"task.realism_corpus: file not found: {task.realism_corpus}")
        from objectives.tasks import load_json_task  # no torch: the real parser, run once more in build

        try:
            load_json_task(**{k: v for k, v in OmegaConf.to_container(task).items() if k != "kind"})
        except (OSError, ValueError) as err:  # empty, not JSON, no dev items, rows without input
            raise ConfigError(f"task.path: {first_line(err)}") from None
        except TypeError as err:  # an option JsonTask does not take
            raise ConfigError(f"task: {first_line(err)}") from None


    elif task.kind == "hf":
        for key in ("source", "input_field"):
            if not isinstance(task.get(key), str) or not task[key]:
                raise ConfigError(f"task.{key}: must be a non-empty string, got {task.get(key)!r}")


def check_judge(j: Any) -> None:
    _in_range(j.max_missing_fraction, "judge.max_missing_fraction", 0.0, 1.0)
    for key in j:
        if "key" in str(key).lower() and key != "api_key_env":
            raise ConfigError(
                f"judge.{key}: API keys are never read from the config (it is saved in the run dir); "
                "put the key in an environment variable and name it with judge.api_key_env"
            )
    if j.kind in ("openai", "reference", "verifier"):
        import inspect

        from objectives.judges import JUDGES  # no torch: cheap

        accepted = set(inspect.signature(JUDGES[j.kind]).parameters) | {"kind", "max_missing_fraction"}
        unknown = sorted(set(j) - accepted)
        if unknown:
            raise ConfigError(f"judge.{unknown[0]}: unknown option for judge={j.kind}; expected one of {sorted(accepted)}")
    if j.kind == "openai":
        if not os.environ.get(str(j.api_key_env)):
            raise ConfigError(f"judge.api_key_env: environment variable {j.api_key_env} is not set or empty")
        _int(j.concurrency, "judge.concurrency", 1)
        _int(j.max_retries, "judge.max_retries", 0)
        if _number(j.timeout, "judge.timeout") <= 0:
            raise ConfigError(f"judge.timeout: must be > 0, got {j.timeout}")
        if _number(j.backoff, "judge.backoff") < 0:
            raise ConfigError(f"judge.backoff: must be >= 0, got {j.backoff}")


def check_verifier(v: Any) -> None:
    from objectives.verify import KINDS

    if v.kind not in KINDS:
        raise ConfigError(f"verifier.kind: unknown verifier {v.kind!r}; expected one of {list(KINDS)}")
    if v.kind == "openai" and not os.environ.get(str(v.api_key_env)):
        raise ConfigError(f"verifier.api_key_env: environment variable {v.api_key_env} is not set or empty")


def check_objective(o: Any) -> None:
    check_weights(o.weights)
    _int(o.chunks, "objective.chunks", 1)
    if not _number(o.novelty_eps, "objective.novelty_eps") > 0:
        raise ConfigError(f"objective.novelty_eps: must be > 0, got {o.novelty_eps}")
    _int(o.realism_top_k, "objective.realism_top_k", 1)
    _int(o.novelty_items, "objective.novelty_items", 1)


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError on the first setting the run cannot use; cheap, touches no model."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]}: required setting is missing (it is ??? in the config; set {missing[0]}=...)")
    _int(cfg.seed, "seed")
    if cfg.device != "auto" and not (cfg.device == "cpu" or str(cfg.device).startswith("cuda")):
        raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    if cfg.threads is not None and not (isinstance(cfg.threads, int) and cfg.threads >= 1):
        raise ConfigError(f"threads: expected null or an integer >= 1, got {cfg.threads!r}")
    if cfg.dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise ConfigError(f"dtype: expected auto, float32, bfloat16 or float16, got {cfg.dtype!r}")
    check_pso(cfg.pso)
    check_objective(cfg.objective)
    check_task(cfg.task)
    check_generator(cfg.generator)
    check_taker(cfg.taker)
    check_judge(cfg.judge)
    check_verifier(cfg.verifier)
    _int(cfg.export.n_items, "export.n_items", 1)
