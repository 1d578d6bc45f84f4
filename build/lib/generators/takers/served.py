"""Takers behind OpenAI-compatible endpoints (``openai:<model>@<base_url>`` in taker.models / taker.heldout).

A served taker is asked the way its spec says (generators/takers/specs.py): the same
prompt, budget and stop string as an in-process taker, through the chat API
(the server applies its chat template) or the completions API (the prompt as
it is). Answers are greedy (temperature 0). The endpoint client
(objectives/endpoints.py) brings retries, the concurrency limit, the reply cache
and token usage; a request that fails for good is a None answer, which the score
tensor counts as a missing score (objectives/judging/scores.py), never a 0.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from generators.takers.lora_panel import AnswerSettings
from objectives.endpoints import Endpoint

__all__ = ["ServedTakers"]


class ServedTakers:
    """Each taker its own endpoint; ``answer_all`` has the chosen ones answer every input."""

    def __init__(self, endpoints: Sequence[Endpoint], settings: Sequence[AnswerSettings]) -> None:
        if len(endpoints) != len(settings):
            raise ValueError(f"{len(endpoints)} endpoints for {len(settings)} answer settings")
        self.endpoints, self.settings = list(endpoints), list(settings)

    def __len__(self) -> int:
        return len(self.endpoints)

    def answer_all(self, inputs: list[str], takers: Sequence[int] | None = None,
                   progress: Callable[[int], None] | None = None) -> list[list[str | None]]:
        """out[j][i]: taker ``takers[j]``'s answer to ``inputs[i]``; None where its endpoint gave no reply."""
        out = []
        for t in range(len(self)) if takers is None else takers:
            s = self.settings[t]
            replies = self.endpoints[t].ask([s.template.format(input=text) for text in inputs],
                                            max_tokens=s.max_new_tokens, temperature=0.0, stop=s.stop)
            out.append([None if r is None else s.extract(r) for r in replies] if s.extract else replies)
            if progress is not None:
                progress(len(inputs))
        return out
