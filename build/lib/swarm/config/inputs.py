"""The schema of the groups that say what is evaluated and by whom: task, generator, taker.

See swarm/config/schema.py for how the schema works; judge and verifier are in swarm/config/scoring.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional

from omegaconf import MISSING

from swarm.config import rules
from swarm.runtime.errors import ConfigError, first_line

# ---------------------------------------------------------------------------------- task


@dataclass
class TaskConf:
    """What every task shares: the contamination screen (objectives/contamination.py), read by the run."""

    RUN_ONLY: ClassVar[tuple[str, ...]] = ("contamination_refs", "contamination_n", "contamination_threshold",
                                           "drop_contaminated")
    contamination_refs: List[str] = field(default_factory=list)  # files of reference texts beside dev and test
    contamination_n: int = 8  # n of the n-grams (PaLM's 8-gram protocol)
    contamination_threshold: float = 0.7  # an item with this share of its n-grams in the references is contaminated
    drop_contaminated: bool = False  # true: a contaminated item is invalid

    def _check_contamination(self) -> None:
        rules.at_least("task.contamination_n", self.contamination_n, 1)
        rules.in_range("task.contamination_threshold", self.contamination_threshold, 0.0, 1.0, low_open=True)
        for i, path in enumerate(self.contamination_refs):
            rules.file(f"task.contamination_refs[{i}]", path, "reference file")


@dataclass
class ArithTaskConf(TaskConf):
    _target_: str = MISSING
    n_dev: int = MISSING
    n_test: int = MISSING
    seed: int = MISSING

    def __post_init__(self) -> None:
        rules.at_least("task.n_dev", self.n_dev, 1)
        rules.at_least("task.n_test", self.n_test, 1)
        self._check_contamination()


@dataclass
class TextTaskConf(TaskConf):
    """What JSON and `datasets` tasks share: subsample sizes, the realism corpus, how answers are read."""

    _target_: str = MISSING
    max_dev: Optional[int] = None
    max_test: Optional[int] = None
    realism_corpus: Optional[str] = None  # a file, or datasets:NAME[:SPLIT[:FIELD]]
    min_question_chars: int = MISSING
    require_answer: bool = MISSING
    answer_extract: str = "auto"  # reasoning takers' answer: auto | number | answer_is | regex:<pattern>
    seed: int = MISSING

    def _check_subsample(self) -> None:
        rules.optional_at_least("task.max_dev", self.max_dev, 1)
        rules.optional_at_least("task.max_test", self.max_test, 1)
        self._check_contamination()

    def _check_corpus_and_answers(self) -> None:
        """A realism corpus that exists, an answer rule that parses."""
        if self.realism_corpus and not self.realism_corpus.startswith("datasets:"):
            rules.file("task.realism_corpus", self.realism_corpus)
        if self.answer_extract != "auto":
            from objectives.judging.answers import make_extractor  # no torch: the rule's parser

            try:
                make_extractor(self.answer_extract)
            except ValueError as err:  # its message names task.answer_extract
                raise ConfigError(first_line(err)) from None


@dataclass
class JsonTaskConf(TextTaskConf):
    path: str = MISSING

    def __post_init__(self) -> None:
        self._check_subsample()
        rules.file("task.path", self.path, "task file")
        self._check_corpus_and_answers()
        from objectives.tasks.json_task import JsonTask  # no torch: the real parser, run again when the run builds

        try:
            JsonTask(self.path, max_dev=self.max_dev, max_test=self.max_test, seed=self.seed)
        except (OSError, ValueError) as err:  # empty, not JSON, no dev items, rows without input
            raise ConfigError(f"task.path: {first_line(err)}") from None


@dataclass
class HfTaskConf(TextTaskConf):
    """Any source the `datasets` library loads (objectives/tasks/hf.py); loaded when the run builds."""

    source: str = MISSING
    subset: Optional[str] = None
    input_field: str = MISSING
    output_field: Optional[str] = None
    dev_split: str = MISSING
    test_split: str = MISSING

    def __post_init__(self) -> None:
        for key in ("source", "input_field"):
            if not getattr(self, key):
                raise ConfigError(f"task.{key}: must be a non-empty string, got {getattr(self, key)!r}")
        self._check_subsample()
        self._check_corpus_and_answers()


# ---------------------------------------------------------------------------------- models


@dataclass
class GeneratorConf:
    """The writing settings every generator shares (the run's); the target, a model source, says where the experts
    come from, and its keyword-only parameters are its own settings (generators/sources/)."""

    RUNTIME: ClassVar[tuple[str, ...]] = ("task", "seed")  # what the run passes the source
    _target_: str = MISSING  # (task, seed) -> GeneratorSources (base model dir, expert adapter dirs)
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
class TakerConf:
    """How takers answer (the run's settings); the target, a model source, says where the search and held-out
    takers come from, and its keyword-only parameters are its own settings (generators/sources/)."""

    RUNTIME: ClassVar[tuple[str, ...]] = ("task", "seed")  # what the run passes the source
    _target_: str = MISSING  # (task, seed) -> generators.sources.protocol.TakerSources (search and held-out entries)
    _partial_: bool = True
    template: str = MISSING
    chat_template: bool = MISSING
    max_new_tokens: Optional[int] = None  # line answers; null: the task's 95th-percentile answer length + 8
    stop: Optional[str] = None
    batch_size: int = MISSING
    answer: str = "line"  # line | reasoning (free text, the answer found by task.answer_extract)
    reasoning_template: str = MISSING
    reasoning_max_new_tokens: int = MISSING
    smollm2: Optional[Dict[str, Any]] = None  # how smollm2 entries are asked (generators.takers.specs.SMOLLM2_ASKED)
    # served takers, openai:<model>@<base_url> entries (docs/endpoints.md)
    served_as: str = "taker"  # taker: asked like the run's takers | off_the_shelf: like smollm2 (numbers rewritten on arith)
    endpoint_api: str = "auto"  # auto: chat when the taker is asked through a chat template, else completions | chat | completions
    api_key_env: str = "OPENAI_API_KEY"  # the key's environment variable; unset: no key sent (a loopback server)
    endpoint_concurrency: int = 8
    endpoint_timeout: float = 60.0
    endpoint_max_retries: int = 3
    endpoint_backoff: float = 1.0
    endpoint_backoff_max: float = 30.0

    def __post_init__(self) -> None:
        rules.one_of("taker.served_as", self.served_as, ("taker", "off_the_shelf"), "taker or off_the_shelf")
        rules.one_of("taker.endpoint_api", self.endpoint_api, ("auto", "chat", "completions"), "auto, chat or completions")
        rules.at_least("taker.endpoint_concurrency", self.endpoint_concurrency, 1)
        rules.positive("taker.endpoint_timeout", self.endpoint_timeout)
        rules.at_least("taker.endpoint_max_retries", self.endpoint_max_retries, 0)
        rules.finite_at_least_zero("taker.endpoint_backoff", self.endpoint_backoff)
        rules.finite_at_least_zero("taker.endpoint_backoff_max", self.endpoint_backoff_max)
        rules.optional_at_least("taker.max_new_tokens", self.max_new_tokens, 1)
        rules.at_least("taker.batch_size", self.batch_size, 1)
        rules.one_of("taker.answer", self.answer, ("line", "reasoning"), "line or reasoning")
        rules.at_least("taker.reasoning_max_new_tokens", self.reasoning_max_new_tokens, 1)
