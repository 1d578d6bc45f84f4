"""The core of the groups that decide what counts: the judge (is the taker right?) and the
verifier (is the generated item's own answer right?).

A judge or verifier is any class named by ``_target_``; its own settings are its parameters
(but the ``RUNTIME`` ones the run passes) (swarm/config/registry.py: e.g. objectives/judging/llm_judges.py:OpenAIJudge). What is
here is the run's: when to stop for missing scores, and the local model the run loads for a target
that takes ``generate`` (judge=hf_llm, verifier=model). See swarm/config/schema.py for the schema.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from omegaconf import MISSING

from swarm.config import rules


@dataclass
class JudgeConf:
    """The run's settings of a judge: ``_target_(**settings)`` scores each answer in [0, 1] or None."""

    RUNTIME: ClassVar[tuple[str, ...]] = ("generate", "usage", "cache_dir")  # a local model's, the endpoint ledger and cache
    _target_: str = MISSING
    max_missing_fraction: float = MISSING  # stop the run cleanly when more scores than this are missing in a step
    model: Optional[str] = None  # the local model of a judge that takes ``generate``: an HF model dir, or smollm2
    max_new_tokens: int = 8  # that model's reply budget: chat models often restate "Rating: " before the number

    def __post_init__(self) -> None:
        rules.in_range("judge.max_missing_fraction", self.max_missing_fraction, 0.0, 1.0)
        rules.at_least("judge.max_new_tokens", self.max_new_tokens, 1)


@dataclass
class VerifierConf:
    """The run's settings of a verifier, ``_target_(**settings)`` confirming each item's own answer
    (objectives/judging/verify.py); the local model and its sampling serve a verifier that takes ``generate``."""

    RUNTIME: ClassVar[tuple[str, ...]] = ("generate", "exact_answers", "usage", "cache_dir")  # and the task's flag
    _target_: str = MISSING
    model: Optional[str] = None  # HF model dir, or "smollm2"
    chat_template: bool = False
    temperature: float = 0.7
    max_new_tokens: int = 32
    batch_size: int = 32

    def __post_init__(self) -> None:
        for key in ("max_new_tokens", "batch_size"):
            rules.at_least(f"verifier.{key}", getattr(self, key), 1)
        rules.at_least("verifier.temperature", self.temperature, 0)
