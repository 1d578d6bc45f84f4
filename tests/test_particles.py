"""swarm.particles: the one LoRA <-> flat vector mapping round-trips exactly."""

import dataclasses

import pytest
import torch

from swarm.particles import FlatSpec, copy_into, flatten, spec_of, unflatten


def _lora(seed: int = 0, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = {
        "layers.1.q_proj.lora_B.weight": (12, 4),
        "layers.0.q_proj.lora_A.weight": (4, 10),
        "layers.0.q_proj.lora_B.weight": (12, 4),
        "layers.1.q_proj.lora_A.weight": (4, 10),
        "scale": (),
        "bias": (7,),
    }
    return {k: torch.randn(s, generator=g).to(dtype) for k, s in shapes.items()}


def test_spec_is_sorted_and_contiguous():
    t = _lora()
    spec = spec_of(t)
    assert spec.names == tuple(sorted(t))
    assert spec.numel == sum(v.numel() for v in t.values())
    sizes = spec.sizes()
    assert spec.offsets[0] == 0
    assert all(spec.offsets[k + 1] == spec.offsets[k] + sizes[k] for k in range(len(sizes) - 1))
    assert spec_of(dict(reversed(list(t.items())))) == spec  # independent of dict order
    assert isinstance(spec, FlatSpec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.numel = 3


def test_round_trip_exact():
    t = _lora()
    spec = spec_of(t)
    vec = flatten(t, spec)
    assert vec.dtype == torch.float32 and vec.shape == (spec.numel,)
    back = unflatten(vec, spec)
    assert list(back) == list(spec.names)
    for k in t:
        assert torch.equal(back[k], t[k])
    assert torch.equal(flatten(back, spec), vec)


def test_unflatten_returns_views_and_flatten_writes_out():
    t = _lora()
    spec = spec_of(t)
    buf = torch.zeros(2, spec.numel)
    out = flatten(t, spec, out=buf[1])
    assert out.data_ptr() == buf[1].data_ptr() and buf[0].abs().sum() == 0
    views = unflatten(buf[1], spec)
    views["bias"].fill_(3.0)
    assert torch.all(buf[1][spec.offsets[spec.names.index("bias")] :][:7] == 3.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_copy_into_live_params(dtype):
    src = _lora(seed=1, dtype=dtype)  # bf16-representable values: the round trip is exact
    spec = spec_of(src)
    vec = flatten(src, spec)
    model = {k: torch.nn.Parameter(torch.zeros_like(v)) for k, v in src.items()}
    ptrs = {k: p.data_ptr() for k, p in model.items()}
    copy_into(vec, spec, model)
    for k, p in model.items():
        assert p.dtype == dtype and p.data_ptr() == ptrs[k] and p.requires_grad
        assert torch.equal(p.detach(), src[k])
    assert torch.equal(flatten(model, spec), vec)


def test_copy_into_casts_fp32_to_bf16():
    t = _lora(seed=2)
    spec = spec_of(t)
    target = {k: torch.empty_like(v, dtype=torch.bfloat16) for k, v in t.items()}
    copy_into(flatten(t, spec), spec, target)
    for k in t:
        assert torch.equal(target[k], t[k].to(torch.bfloat16))


def test_mismatch_errors_name_the_key():
    t = _lora()
    spec = spec_of(t)
    bad = dict(t)
    bad["bias"] = torch.zeros(8)
    with pytest.raises(ValueError, match="'bias'.*shape"):
        flatten(bad, spec)
    missing = {k: v for k, v in t.items() if k != "scale"}
    with pytest.raises(ValueError, match="missing.*scale"):
        flatten(missing, spec)
    with pytest.raises(ValueError, match="unexpected.*extra"):
        copy_into(flatten(t, spec), spec, {**t, "extra": torch.zeros(1)})
    with pytest.raises(ValueError, match="1-D vector"):
        unflatten(torch.zeros(spec.numel + 1), spec)
    with pytest.raises(ValueError, match="float32"):
        flatten(t, spec, out=torch.zeros(spec.numel, dtype=torch.float64))
