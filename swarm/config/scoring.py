"""The schema of the groups that decide what counts: the judge (is the taker right?) and the
verifier (is the generated item's own answer right?).

See swarm/config/schema.py for how the schema works.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from omegaconf import MISSING

from swarm.config import rules

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

    RUN_ONLY: ClassVar[tuple[str, ...]] = ("max_missing_fraction", "model", "max_new_tokens")
    _partial_: bool = True
    model: str = MISSING
    template: Optional[str] = None
    reference: str = "with"  # with: the item's answer is shown as the reference; without: the paper's judge
    max_new_tokens: int = 8  # the reply's budget: chat models often restate "Rating: " before the number

    def __post_init__(self) -> None:
        super().__post_init__()
        _reference_mode(self.reference)
        rules.at_least("judge.max_new_tokens", self.max_new_tokens, 1)


def _reference_mode(value: str) -> None:
    rules.one_of("judge.reference", value, ("with", "without"), "with or without")


@dataclass
class EndpointConf:
    """What the OpenAI-compatible judge and verifier share: the endpoint, the key's variable, retries."""

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

    def _check_endpoint(self, group: str) -> None:
        """A key in the environment, sane retries."""
        rules.env_var(f"{group}.api_key_env", self.api_key_env)
        rules.at_least(f"{group}.concurrency", self.concurrency, 1)
        rules.at_least(f"{group}.max_retries", self.max_retries, 0)
        rules.positive(f"{group}.timeout", self.timeout)
        rules.finite_at_least_zero(f"{group}.backoff", self.backoff)


@dataclass
class OpenAIJudgeConf(JudgeConf, EndpointConf):
    template: Optional[str] = None
    reference: str = "with"

    def __post_init__(self) -> None:
        super().__post_init__()
        _reference_mode(self.reference)
        self._check_endpoint("judge")


# ---------------------------------------------------------------------------------- verifier


@dataclass
class VerifierConf:
    """How a generated item's own answer is confirmed (objectives/judging/verify.py): auto | exact | none."""

    kind: str = MISSING

    def __post_init__(self) -> None:
        from objectives.judging.verify import KINDS  # no torch: names only

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
class OpenAIVerifierConf(VerifierConf, EndpointConf):
    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_endpoint("verifier")
