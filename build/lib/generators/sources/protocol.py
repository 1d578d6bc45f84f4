"""Where a run's models come from: what a model source returns for the generator and taker groups.

The ``generator`` and ``taker`` config groups name one of these with ``_target_``
(``_partial_``: the run passes the task and its seed):

    generator: (task, seed, *, settings) -> GeneratorSources     the base, one expert per particle, the union expert
    taker:     (task, seed, *, settings) -> TakerSources         search and held-out entries

A taker entry is any model (generators/takers/specs.py): a zoo taker name,
``lora:<cluster>``, ``smollm2``, or ``<model dir>[@<adapter dir>]``; the run
resolves the entries into taker specs with its answer settings. A generator or
taker of your own is one such function, named by ``generator._target_=pkg.fn``
(docs/configuration.md). Errors are a one-line ValueError naming the setting.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass
class GeneratorSources:
    """The generator of a run, before it is loaded: its base model dir and its expert adapter dirs.

    ``union_expert``: builds (once, cached) and returns the adapter dir of one expert of the same
    shape trained on the union of the experts' training data (``method=data_merge``); None where the
    source does not know that data (adapters from elsewhere).
    """

    base: Path
    experts: list[Path]
    union_expert: Callable[[], Path] | None = None


@dataclass
class TakerSources:
    """The takers of a run, before they are loaded.

    ``sizing_base``: the model whose tokenizer sizes line answers when ``taker.max_new_tokens``
    is null (None: there is no single taker base, so the setting is required).
    """

    models: list[str]
    heldout: list[str]
    zoo: Any = None
    sizing_base: Path | None = None
