"""generators.models.particles: the one LoRA <-> flat vector mapping round-trips exactly."""

import dataclasses

import pytest
import torch

from generators.models.particles import flatten, share_flat, spec_of, unflatten


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
def test_share_flat_makes_one_copy_load_a_particle(dtype):
    src = _lora(seed=1, dtype=dtype)  # bf16-representable values: the round trip is exact
    spec = spec_of(src)
    before = _lora(seed=3, dtype=dtype)
    model = {k: torch.nn.Parameter(v.clone()) for k, v in before.items()}
    ids = {k: id(p) for k, p in model.items()}
    buffer = share_flat(model, spec)
    assert buffer.dtype == dtype and torch.equal(buffer, flatten(before, spec).to(dtype))  # values kept
    buffer.copy_(flatten(src, spec))  # fp32 particle -> the model's dtype, in one copy
    for k, p in model.items():
        assert id(p) == ids[k] and p.dtype == dtype and p.requires_grad
        assert torch.equal(p.detach(), src[k])
    assert torch.equal(flatten(model, spec), flatten(src, spec))


def test_share_flat_casts_fp32_to_bf16():
    t = _lora(seed=2)
    spec = spec_of(t)
    target = {k: torch.nn.Parameter(torch.empty_like(v, dtype=torch.bfloat16)) for k, v in t.items()}
    share_flat(target, spec).copy_(flatten(t, spec))
    for k in t:
        assert torch.equal(target[k].detach(), t[k].to(torch.bfloat16))


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
        share_flat({**t, "extra": torch.zeros(1)}, spec)
    with pytest.raises(ValueError, match="1-D vector"):
        unflatten(torch.zeros(spec.numel + 1), spec)
    with pytest.raises(ValueError, match="float32"):
        flatten(t, spec, out=torch.zeros(spec.numel, dtype=torch.float64))
