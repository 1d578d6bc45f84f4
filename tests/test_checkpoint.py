"""The checkpoint file (swarm/runtime/checkpoint.py): what goes in comes back, in the safetensors layout."""
from __future__ import annotations

import math

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from swarm.runtime import checkpoint
from swarm.runtime.errors import ConfigError


def _state() -> dict:
    p = torch.arange(12.0).view(3, 4)
    return {
        "step": 7, "method": "data_swarms", "best": -math.inf, "initial_best": math.nan, "flag": True, "none": None,
        "pso": {"p": p, "g": p[1], "pt": p.t(), "p_util": torch.tensor([0.5, 0.25, 1.0], dtype=torch.float64),
                "restarted": torch.tensor([True, False, True]), "rng_state": torch.arange(5, dtype=torch.uint8),
                "count": torch.tensor(3), "empty": torch.zeros(0, 4), "half": torch.tensor([1.5, -2.0], dtype=torch.bfloat16)},
        "pool": [{"vector": torch.ones(2), "prompt": (3, [1, 2], ("a", None)), "utility": 0.75}],
        "usage": {"judge": {"requests": 2}}, 3: "an int key",
    }


def _same(a, b) -> bool:
    """Equal values of the same types (tuples stay tuples, tensors keep dtype and shape; NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return (math.isnan(a) and math.isnan(b)) if isinstance(a, float) and math.isnan(a) else a == b


def test_every_kind_of_value_comes_back_as_it_went_in(tmp_path):
    state = _state()
    checkpoint.write(tmp_path, checkpoint.serialize(state))
    back = checkpoint.load(tmp_path)
    assert _same(back, state)
    assert back["pso"]["pt"].is_contiguous() and back["pso"]["g"].data_ptr() != back["pso"]["p"][1].data_ptr()


def test_a_checkpoint_is_taken_when_serialized_not_when_written(tmp_path):
    state = _state()
    snapshot = checkpoint.serialize(state)
    state["pso"]["p"].add_(100.0)  # the PSO updates its buffers in place while the writer thread writes
    checkpoint.write(tmp_path, snapshot)
    assert torch.equal(checkpoint.load(tmp_path)["pso"]["p"], torch.arange(12.0).view(3, 4))


def test_the_file_is_one_the_safetensors_library_reads(tmp_path):
    checkpoint.write(tmp_path, checkpoint.serialize({"step": 1, "x": torch.tensor([[1.0, 2.0]]), "n": torch.tensor(4)}))
    path = checkpoint.path_of(tmp_path)
    assert path.name == "state.safetensors"
    tensors = load_file(path)
    assert torch.equal(tensors["0"], torch.tensor([[1.0, 2.0]])) and torch.equal(tensors["1"], torch.tensor(4))
    with safe_open(path, framework="pt") as f:
        assert f.metadata()["dswarm_state"] == '{"dict": [["step", 1], ["x", {"tensor": 0}], ["n", {"tensor": 1}]]}'


@pytest.mark.parametrize("value, name", [(object(), "object"), (torch.zeros(2, dtype=torch.complex64), "torch.complex64 tensor")])
def test_a_value_the_file_cannot_hold_is_refused_when_taken(value, name):
    with pytest.raises(TypeError, match=f"^checkpoint: cannot hold a {name}$"):
        checkpoint.serialize({"step": 1, "x": value})


def test_a_checkpoint_of_an_older_dswarm_is_a_one_line_error_not_a_fresh_start(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    torch.save({"step": 3}, tmp_path / "checkpoint" / "state.pt")
    with pytest.raises(ConfigError, match=r"^checkpoint: .*state\.pt was written by an older dswarm \(torch\.save\); "
                                          r"resume it with that version, or move it away to start fresh$"):
        checkpoint.load(tmp_path)
