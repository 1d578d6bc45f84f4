"""The schema of the groups that say what is evaluated and by whom: task, generator, taker, judge.

See swarm/config/schema.py for how the schema works; these are its first four groups.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Optional

from omegaconf import MISSING

from swarm.config import rules
from swarm.errors import ConfigError, first_line

# ---------------------------------------------------------------------------------- task


@dataclass
class ArithTaskConf:
    _target_: str = MISSING
    n_dev: int = MISSING
    n_test: int = MISSING
    seed: int = MISSING

    def __post_init__(self) -> None:
        rules.at_least("task.n_dev", self.n_dev, 1)
        rules.at_least("task.n_test", self.n_test, 1)


@dataclass
class JsonTaskConf:
    _target_: str = MISSING
    path: str = MISSING
    max_dev: Optional[int] = None
    max_test: Optional[int] = None
    realism_corpus: Optional[str] = None  # a file, or datasets:NAME[:SPLIT[:FIELD]]
    min_question_chars: int = MISSING
    require_answer: bool = MISSING
    answer_extract: str = "auto"  # reasoning takers' answer: auto | number | answer_is | regex:<pattern>
    seed: int = MISSING

    def __post_init__(self) -> None:
        for key in ("max_dev", "max_test"):
            if getattr(self, key) is not None:
                rules.at_least(f"task.{key}", getattr(self, key), 1)
        rules.file("task.path", self.path, "task file")
        _text_task_rules(self.realism_corpus, self.answer_extract)
        from objectives.tasks import JsonTask  # no torch: the real parser, run again when the run builds

        try:
            JsonTask(self.path, max_dev=self.max_dev, max_test=self.max_test, seed=self.seed)
        except (OSError, ValueError) as err:  # empty, not JSON, no dev items, rows without input
            raise ConfigError(f"task.path: {first_line(err)}") from None


@dataclass
class HfTaskConf:
    """Any source the `datasets` library loads (objectives/hf_task.py); loaded when the run builds."""

    _target_: str = MISSING
    source: str = MISSING
    subset: Optional[str] = None
    input_field: str = MISSING
    output_field: Optional[str] = None
    dev_split: str = MISSING
    test_split: str = MISSING
    max_dev: Optional[int] = None
    max_test: Optional[int] = None
    realism_corpus: Optional[str] = None  # a file, or datasets:NAME[:SPLIT[:FIELD]]
    min_question_chars: int = MISSING
    require_answer: bool = MISSING
    answer_extract: str = "auto"  # reasoning takers' answer: auto | number | answer_is | regex:<pattern>
    seed: int = MISSING

    def __post_init__(self) -> None:
        for key in ("source", "input_field"):
            if not getattr(self, key):
                raise ConfigError(f"task.{key}: must be a non-empty string, got {getattr(self, key)!r}")
        for key in ("max_dev", "max_test"):
            if getattr(self, key) is not None:
                rules.at_least(f"task.{key}", getattr(self, key), 1)
        _text_task_rules(self.realism_corpus, self.answer_extract)


def _text_task_rules(realism_corpus: Optional[str], answer_extract: str) -> None:
    """What JSON and `datasets` tasks share: a realism corpus that exists, an answer rule that parses."""
    if realism_corpus and not realism_corpus.startswith("datasets:"):
        rules.file("task.realism_corpus", realism_corpus)
    if answer_extract != "auto":
        from objectives.answers import make_extractor  # no torch: the rule's parser

        try:
            make_extractor(answer_extract)
        except ValueError as err:  # its message names task.answer_extract
            raise ConfigError(first_line(err)) from None


# ---------------------------------------------------------------------------------- models


@dataclass
class GeneratorConf:
    """The writing settings every generator shares; the target says where the experts come from."""

    RUN_ONLY: ClassVar[tuple[str, ...]] = (
        "template", "chat_template", "few_shot", "items_per_prompt", "prompts_per_step",
        "max_new_tokens", "temperature", "top_p", "batch_size",
    )
    _target_: str = MISSING  # (task, seed) -> (base model dir, [expert adapter dirs])
    _partial_: bool = True
    template: str = MISSING
    chat_template: bool = MISSING
    few_shot: int = MISSING
    items_per_prompt: int = MISSING
    prompts_per_step: int = MISSING
    max_new_tokens: Optional[int] = None  # null: items_per_prompt items of the task's 90th-percentile length, +25%
    temperature: float = MISSING
    top_p: float = MISSING
    batch_size: int = MISSING

    def __post_init__(self) -> None:
        for key in ("items_per_prompt", "prompts_per_step", "batch_size"):
            rules.at_least(f"generator.{key}", getattr(self, key), 1)
        rules.optional_at_least("generator.max_new_tokens", self.max_new_tokens, 1)
        rules.at_least("generator.few_shot", self.few_shot, 0)
        rules.at_least("generator.temperature", self.temperature, 0)
        rules.in_range("generator.top_p", self.top_p, 0.0, 1.0, low_open=True)


@dataclass
class ZooGeneratorConf(GeneratorConf):
    size: str = MISSING
    zoo_seed: int = MISSING


@dataclass
class HFGeneratorConf(GeneratorConf):
    base: str = MISSING
    adapters: List[str] = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        rules.directory("generator.base", self.base)
        rules.adapter_dirs("generator.adapters", self.adapters, 2, "generator experts (a swarm needs at least 2 particles)")


@dataclass
class SmolLM2GeneratorConf(GeneratorConf):
    RUN_ONLY: ClassVar[tuple[str, ...]] = ("prompts_per_step", "max_new_tokens", "temperature", "top_p", "batch_size")
    k: int = MISSING
    train_steps: int = MISSING
    train_max_len: Optional[int] = None  # training tokens per example; null: what the task's items need
    taker_template: str = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        rules.at_least("generator.k", self.k, 2)
        rules.at_least("generator.train_steps", self.train_steps, 1)
        rules.optional_at_least("generator.train_max_len", self.train_max_len, 1)


@dataclass
class TakerConf:
    """How takers answer; the target says where the search and held-out takers come from."""

    RUN_ONLY: ClassVar[tuple[str, ...]] = (
        "template", "chat_template", "max_new_tokens", "stop", "batch_size", "answer", "reasoning_template",
        "reasoning_max_new_tokens", "smollm2",
    )
    _target_: str = MISSING  # (task, seed) -> generators.sources.TakerSources (search and held-out entries)
    _partial_: bool = True
    template: str = MISSING
    chat_template: bool = MISSING
    max_new_tokens: Optional[int] = None  # line answers; null: the task's 95th-percentile answer length + 8
    stop: Optional[str] = None
    batch_size: int = MISSING
    answer: str = "line"  # line | reasoning (free text, the answer found by task.answer_extract)
    reasoning_template: str = MISSING
    reasoning_max_new_tokens: int = MISSING
    smollm2: Optional[Dict[str, Any]] = None  # how smollm2 entries are asked (generators.taker_specs.SMOLLM2_ASKED)

    def __post_init__(self) -> None:
        rules.optional_at_least("taker.max_new_tokens", self.max_new_tokens, 1)
        rules.at_least("taker.batch_size", self.batch_size, 1)
        rules.one_of("taker.answer", self.answer, ("line", "reasoning"), "line or reasoning")
        rules.at_least("taker.reasoning_max_new_tokens", self.reasoning_max_new_tokens, 1)


@dataclass
class ZooTakerConf(TakerConf):
    """Entries (generators/taker_specs.py): a zoo taker name, lora:<cluster>, smollm2, or <model dir>[@<adapter dir>]."""

    models: List[str] = MISSING
    heldout: List[str] = MISSING
    size: str = MISSING
    zoo_seed: int = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("models", "heldout"):
            if not getattr(self, key):
                raise ConfigError(f"taker.{key}: must be a non-empty list of takers (zoo names, smollm2, model dirs), got []")


@dataclass
class HFTakerConf(TakerConf):
    base: str = MISSING
    adapters: List[str] = MISSING
    heldout: List[str] = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        rules.directory("taker.base", self.base)
        rules.adapter_dirs("taker.adapters", self.adapters, 1)
        if not self.heldout:
            raise ConfigError("taker.heldout: needs at least 1 held-out taker, got 0")
        # adapter dirs of taker.base, or other models (smollm2, <model dir>@<adapter dir>)
        rules.adapter_dirs("taker.heldout", [h for h in self.heldout if h != "smollm2" and "@" not in h], 0)


@dataclass
class SmolLM2TakerConf(TakerConf):
    RUN_ONLY: ClassVar[tuple[str, ...]] = tuple(k for k in TakerConf.RUN_ONLY if k != "template")
    k: int = MISSING
    heldout_k: int = MISSING
    train_steps: int = MISSING
    train_max_len: Optional[int] = None  # training tokens per example; null: what the task's questions + answers need

    def __post_init__(self) -> None:
        super().__post_init__()
        rules.at_least("taker.k", self.k, 1)
        rules.at_least("taker.heldout_k", self.heldout_k, 1)
        rules.optional_at_least("taker.train_max_len", self.train_max_len, 1)


# ---------------------------------------------------------------------------------- judge


@dataclass
class JudgeConf:
    """An exact judge (verifier, reference) or any judge of yours with no options: judge._target_=pkg.Judge."""

    RUN_ONLY: ClassVar[tuple[str, ...]] = ("max_missing_fraction",)
    _target_: str = MISSING
    max_missing_fraction: float = MISSING  # stop the run cleanly when more scores than this are missing in a step

    def __post_init__(self) -> None:
        rules.in_range("judge.max_missing_fraction", self.max_missing_fraction, 0.0, 1.0)


@dataclass
class HFLLMJudgeConf(JudgeConf):
    """A local causal LM judge: the run loads ``model`` and passes its ``generate`` to the partial target."""

    RUN_ONLY: ClassVar[tuple[str, ...]] = ("max_missing_fraction", "model")
    _partial_: bool = True
    model: str = MISSING
    template: Optional[str] = None
    reference: str = "with"  # with: the item's answer is shown as the reference; without: the paper's judge

    def __post_init__(self) -> None:
        super().__post_init__()
        _reference_mode(self.reference)


def _reference_mode(value: str) -> None:
    rules.one_of("judge.reference", value, ("with", "without"), "with or without")


@dataclass
class OpenAIJudgeConf(JudgeConf):
    base_url: str = MISSING
    model: str = MISSING
    api_key_env: str = MISSING
    template: Optional[str] = None
    reference: str = "with"
    concurrency: int = MISSING
    timeout: float = MISSING
    max_retries: int = MISSING
    backoff: float = MISSING
    backoff_max: float = MISSING
    max_tokens: int = MISSING
    temperature: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        _reference_mode(self.reference)
        _endpoint_rules("judge", self)


def _endpoint_rules(group: str, conf: Any) -> None:
    """What the OpenAI-compatible judge and verifier share: a key in the environment, sane retries."""
    rules.env_var(f"{group}.api_key_env", conf.api_key_env)
    rules.at_least(f"{group}.concurrency", conf.concurrency, 1)
    rules.at_least(f"{group}.max_retries", conf.max_retries, 0)
    rules.positive(f"{group}.timeout", conf.timeout)
    rules.finite_at_least_zero(f"{group}.backoff", conf.backoff)


# ---------------------------------------------------------------------------------- verifier


@dataclass
class VerifierConf:
    """How a generated item's own answer is confirmed (objectives/verify.py): auto | exact | none."""

    kind: str = MISSING

    def __post_init__(self) -> None:
        from objectives.verify import KINDS  # no torch: names only

        rules.one_of("verifier.kind", self.kind, KINDS, ", ".join(KINDS))


@dataclass
class ModelVerifierConf(VerifierConf):
    model: str = MISSING  # HF model dir, or "smollm2"
    chat_template: bool = MISSING
    samples: int = MISSING
    agree: Optional[int] = None  # null: a majority of samples
    min_f1: float = MISSING
    temperature: float = MISSING
    max_new_tokens: int = MISSING
    batch_size: int = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("samples", "max_new_tokens", "batch_size"):
            rules.at_least(f"verifier.{key}", getattr(self, key), 1)
        if self.agree is not None:
            rules.in_range("verifier.agree", self.agree, 1, self.samples)
        rules.in_range("verifier.min_f1", self.min_f1, 0.0, 1.0)
        rules.at_least("verifier.temperature", self.temperature, 0)


@dataclass
class OpenAIVerifierConf(VerifierConf):
    base_url: str = MISSING
    model: str = MISSING
    api_key_env: str = MISSING
    concurrency: int = MISSING
    timeout: float = MISSING
    max_retries: int = MISSING
    backoff: float = MISSING
    backoff_max: float = MISSING
    max_tokens: int = MISSING
    temperature: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        _endpoint_rules("verifier", self)
