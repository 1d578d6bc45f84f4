"""batching.max_batch_tokens bounds training's forward passes too: micro-batches with the batch's own gradient."""
from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from generators.models.decoding import length_chunks
from generators.training.loop import label_loss, micro_batches


def model() -> LlamaForCausalLM:
    config = LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, max_position_embeddings=64, pad_token_id=0)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).float()


def batch() -> dict[str, torch.Tensor]:
    """Four right-padded rows of 9, 7, 5 and 3 tokens; labels on each row's last tokens only."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 40, (4, 9), generator=g)
    mask = torch.zeros(4, 9, dtype=torch.long)
    labels = torch.full((4, 9), -100)
    for row, n in enumerate((9, 7, 5, 3)):
        mask[row, :n] = 1
        labels[row, n - 2:n] = ids[row, n - 2:n]
    ids[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_micro_batches_within_the_budget_cover_every_label_with_shares_summing_to_one():
    b = batch()
    parts = list(micro_batches(b, 18))  # 18 // 9 columns: 2 rows a part
    assert [tuple(p["input_ids"].shape) for p, _ in parts] == [(2, 9), (2, 5)]  # the second part's padding columns dropped
    assert all(p["input_ids"].numel() <= 18 for p, _ in parts)
    assert sum(share for _, share in parts) == pytest.approx(1.0)
    assert [share for _, share in parts] == pytest.approx([4 / 8, 4 / 8])  # 2 labelled targets a row, 8 in all
    assert list(micro_batches(b, None)) == [(b, 1.0)] and list(micro_batches(b, 36)) == [(b, 1.0)]
    assert [tuple(p["input_ids"].shape) for p, _ in micro_batches(b, 1)] == [(1, 9), (1, 7), (1, 5), (1, 3)]  # a row at least


def grads(m, parts, label_logits):
    m.zero_grad()
    for part, share in parts:
        (label_loss(m, part, label_logits) * share).backward()
    return [p.grad.clone() for p in m.parameters()]


@pytest.mark.parametrize("label_logits", [False, True])
def test_split_batches_give_the_whole_batchs_loss_and_gradient(label_logits):
    m, b = model(), batch()
    whole = float(m(**b).loss)
    assert float(label_loss(m, b, label_logits)) == pytest.approx(whole, rel=1e-5)  # logits only where labels are
    assert sum(float(label_loss(m, p, label_logits)) * s for p, s in micro_batches(b, 10)) == pytest.approx(whole, rel=1e-5)
    reference = grads(m, [(b, 1.0)], False)
    for got, want in zip(grads(m, list(micro_batches(b, 10)), label_logits), reference):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_generation_chunks_keep_rows_times_tokens_within_the_budget():
    ids = [[0] * n for n in (5, 1, 3, 9, 2)]  # sorted by length: rows 1, 4, 2, 0, 3
    assert length_chunks(ids, 8) == [[1, 4, 2, 0, 3]]
    # new_tokens=3: rows of 4, 5, 6, 8, 12 tokens; 3 rows x 6 = 18 fits 20, a 4th row (4 x 8 = 32) does not
    assert length_chunks(ids, 8, max_tokens=20, new_tokens=3) == [[1, 4, 2], [0], [3]]
    assert length_chunks(ids, 2, max_tokens=100, new_tokens=3) == [[1, 4], [2, 0], [3]]  # batch_size still holds
    assert length_chunks(ids, 8, max_tokens=5, new_tokens=3) == [[1], [4], [2], [0], [3]]  # longer than the budget: alone
