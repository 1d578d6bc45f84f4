"""The memory estimate of a forward pass, and the one-line refusal of a budget the machine cannot hold."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch

from generators.models import memory
from generators.models.memory import check_fits, forward_bytes

# SmolLM2-135M's shape (its config.json)
SMOLLM2 = SimpleNamespace(num_attention_heads=9, num_key_value_heads=3, head_dim=64, num_hidden_layers=30,
                          hidden_size=576, intermediate_size=1536)


def test_forward_bytes_by_hand():
    # per token: KV 2*30*3*64 = 11520, activations 4*(4*576 + 3*1536) = 27648, scores 2*9*L = 18 L; fp32
    assert forward_bytes(SMOLLM2, 1, 0) == (11520 + 27648) * 4
    assert forward_bytes(SMOLLM2, 5200, 1300) == 5200 * (11520 + 27648 + 18 * 1300) * 4
    assert forward_bytes(SMOLLM2, 5200, 1300, dtype_bytes=2) == forward_bytes(SMOLLM2, 5200, 1300) // 2
    # the two measured points of the module's docstring: 1.19 and 1.95 GiB above the loaded model
    assert forward_bytes(SMOLLM2, 4 * 1300, 1300) / 2**30 == pytest.approx(1.19, rel=0.05)
    assert forward_bytes(SMOLLM2, 16 * 650, 650) / 2**30 == pytest.approx(1.95, rel=0.05)


def test_a_budget_that_fits_passes_and_one_that_does_not_names_the_setting_and_a_budget_that_fits(monkeypatch):
    monkeypatch.setattr(memory, "memory_limit", lambda device: (int(4e9), "this machine's RAM"))
    cpu = torch.device("cpu")
    check_fits(SMOLLM2, 8192, 1300, torch.float32, cpu, "smollm2")  # 8192 x 250 KB = 2.1 GB
    with pytest.raises(ValueError) as err:
        check_fits(SMOLLM2, 65536, 1300, torch.float32, cpu, "smollm2")  # 16.4 GB
    message = str(err.value)
    assert message.startswith("batching.max_batch_tokens: a forward pass of 65536 tokens in rows of up to 1300 tokens")
    assert "needs about 16.4 GB and this machine's RAM leaves 4.0 GB" in message
    suggested = int(re.search(r"set batching\.max_batch_tokens=(\d+) or lower", message).group(1))
    check_fits(SMOLLM2, suggested, 1300, torch.float32, cpu, "smollm2")  # the advice is a budget that fits


def test_a_row_longer_than_the_memory_says_so(monkeypatch):
    monkeypatch.setattr(memory, "memory_limit", lambda device: (int(1e8), "the memory limit of this process's cgroup"))
    with pytest.raises(ValueError, match=r"^batching\.max_batch_tokens: even one row of 1300 tokens .* cgroup leaves 0\.1 GB"):
        check_fits(SMOLLM2, 65536, 1300, torch.float32, torch.device("cpu"), "smollm2")


def test_the_limit_is_the_machines_not_what_neighbours_leave_free():
    room, where = memory.memory_limit(torch.device("cpu"))
    import psutil

    assert 0 < room <= psutil.virtual_memory().total and where
