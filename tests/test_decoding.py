"""The decoding loop: `generate`'s greedy step with finished rows leaving the batch.

`compaction` is checked against hand-laid-out batches; `Decoding.run` against
`transformers`' own `generate` on the tiny zoo's base, so dropping rows (and
the custom loop around the model) changes no text.
"""
from __future__ import annotations

import random

import pytest
import torch
from transformers import GenerationConfig

from generators.models.decoding import Decoding, compaction
from generators.models.lora_model import LoraModel
from generators.prompts import few_shot_prompt
from generators.zoo import GENERATOR_TEMPLATE, N_SHOTS
from objectives.tasks.arith import FAMILIES, sample_problem

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


def _finished(*segments: str) -> torch.Tensor:
    """A finished-row mask from one string per segment: 'x' finished, '.' live."""
    return torch.tensor([c == "x" for seg in segments for c in seg])


def test_compaction_keeps_live_rows_first_topped_up_to_equal_segments():
    # segment 0 live rows 1, 3; segment 1 none; segment 2 row 0 only: width 2, segments 0 and 2 kept
    rows, kept = compaction(_finished("x.x.", "xxxx", ".xxx"), groups=3)
    assert kept.tolist() == [0, 2]
    assert rows.tolist() == [1, 3, 8, 9]  # segment 2 = rows 8..11: live row 8, then its first finished row 9


def test_compaction_waits_until_an_eighth_of_the_rows_would_leave():
    assert compaction(_finished("x" + "." * 15), groups=1) is None  # 1 of 16 would leave: not yet
    rows, kept = compaction(_finished("x......."), groups=1)  # 1 of 8: an eighth
    assert rows.tolist() == [1, 2, 3, 4, 5, 6, 7] and kept.tolist() == [0]
    assert compaction(_finished("x...", "...."), groups=2) is None  # segment 1 is full: width stays 4


@pytest.fixture(scope="module")
def base_model(tiny_zoo):
    lm = LoraModel(tiny_zoo.base_dir, list(tiny_zoo.generators.values()))
    lm.load(lm.expert_vectors[2])  # zoo v3's tiny `mul` expert: greedy rows end (EOS) at different steps
    return lm


def _spy(monkeypatch) -> list[tuple[int, int, int, int]]:
    """Record (rows, rows kept, segments, segments kept) of every batch that shrank."""
    from generators.models import decoding

    shrinks = []

    def spy(finished, groups):
        cut = compaction(finished, groups)
        if cut is not None:
            shrinks.append((finished.numel(), len(cut[0]), groups, len(cut[1])))
        return cut

    monkeypatch.setattr(decoding, "compaction", spy)
    return shrinks


@pytest.mark.slow
@pytest.mark.parametrize("max_new_tokens", [3, 64])
def test_decoding_gives_transformers_generate_texts(base_model, max_new_tokens, monkeypatch):
    """Greedy texts equal `generate`'s, with rows ending (EOS) at different steps and leaving the batch."""
    lm = base_model
    shrinks = _spy(monkeypatch)
    rng = random.Random(0)
    pool = [sample_problem(rng.choice(FAMILIES), rng) for _ in range(40)]
    prompts = [few_shot_prompt(rng.sample(pool, N_SHOTS), n, GENERATOR_TEMPLATE) for n in (1, 2, 3, 1, 2, 5, 8, 1)]
    ids = lm._encode(prompts)
    texts = Decoding(max_new_tokens).run(lm.model, lm.tokenizer, ids, [0] * len(ids), lm.device)
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                              pad_token_id=lm.tokenizer.pad_token_id, eos_token_id=lm.tokenizer.eos_token_id)
    batch = lm.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = lm.model.generate(**batch, generation_config=config)
    expected = lm.tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    assert texts == expected
    assert shrinks or max_new_tokens == 3  # rows really ended early and left


def test_rows_and_adapters_leave_as_they_finish(base_model, monkeypatch):
    """A stop string ends rows early: the batch shrinks (whole adapters leave), the texts stay those of one
    adapter at a time."""
    lm = base_model
    shrinks = _spy(monkeypatch)
    vectors = lm.expert_vectors[[0, 1, 2, 3, 1]]
    prompts = ["1 + 2 =", "40 - 13 =", "7 * 8 =", "5 + 5 + 5 ="]
    kw = dict(max_new_tokens=24, stop="\n", temperature=1.0, seed=3)
    together = lm.generate_each(vectors, prompts, **kw)
    assert shrinks and shrinks[0][1] < shrinks[0][0]
    assert any(kept < groups for _, _, groups, kept in shrinks), shrinks  # some adapter's rows all ended first
    lm.multi_lora = False
    try:
        assert together == lm.generate_each(vectors, prompts, **kw)
    finally:
        lm.multi_lora = True
