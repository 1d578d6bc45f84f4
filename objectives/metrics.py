"""The objectives: pure functions from a score tensor to one utility per generator.

Shapes (P generators/particles, T test takers, N items per generator):

- ``S``    float ``[P, T, N]``: judged scores in [0, 1];
- ``mask`` bool  ``[P, T, N]``: the item is valid AND the judge returned a score.

Missing scores (judge failures) are *excluded*, never replaced by a default.
Non-finite entries of ``S`` count as missing and finite scores are clamped into
[0, 1], so nothing non-finite reaches a utility. Takers with no scored item are
ignored for that particle; a particle with no scored valid item gets 0 for every
component. Every objective returns a finite ``Tensor[P]``, higher is better:

| objective   | range                         | definition |
| ----------- | ----------------------------- | ---------- |
| difficulty  | [0, 1]                        | 1 - max over takers of the taker's mean score |
| separation  | [0, 1]                        | mean gap between adjacent sorted taker means = (max - min) / (T' - 1) |
| novelty     | [0, log(T (1 + eps) / eps)]   | KL(p_orig || p_gen) of smoothed, normalized taker means |
| consistency | [0.5, 1] (0 if nothing scored)| 1 - mean over takers of the population std of chunk means |
| realism     | [0, 1]                        | mean BM25 realism of the valid items (objectives/realism.py) |

``utility`` is a weighted sum of components times the particle's valid fraction,
so garbage is never rewarded (``validity="multiply"``); with ``validity="none"``
(the paper) it is the weighted sum alone, the objective on the valid items only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Callable, Iterable, Mapping

import torch
from torch import Tensor

from objectives import registry


def _finite(x: Tensor) -> Tensor:
    """``torch.isfinite(x)`` of a float tensor in two tensor ops, not four: x - x is 0 where x is finite and NaN
    where it is NaN or infinite (an objective is ~100 ops on a few numbers; each op's dispatch is its cost)."""
    return (x - x) == 0


def _clean(S: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Scores with missing entries zeroed, and the mask of usable entries."""
    if S.dim() != 3 or mask.shape != S.shape:
        raise ValueError(f"scores must be [P, T, N] with a mask of the same shape, got {tuple(S.shape)} and {tuple(mask.shape)}")
    S = S if S.is_floating_point() else S.float()
    m = mask.bool() & _finite(S)
    return torch.where(m, S.clamp(0.0, 1.0), 0.0), m


def taker_means(S: Tensor, mask: Tensor) -> Tensor:
    """Mean scored value of each taker on each particle's items, ``[P, T]``; NaN if none scored."""
    return _means(*_clean(S, mask))


def _means(Sz: Tensor, m: Tensor) -> Tensor:
    count = m.sum(-1)
    return torch.where(count > 0, Sz.sum(-1) / count.clamp(min=1), math.nan)


def difficulty(S: Tensor, mask: Tensor) -> Tensor:
    """1 - the best taker's mean score: high when the data is hard for every taker."""
    return _difficulty(taker_means(S, mask))


def _difficulty(means: Tensor) -> Tensor:
    if means.shape[-1] == 0:
        return means.new_zeros(means.shape[:-1])
    best = torch.nan_to_num(means, nan=-math.inf).amax(-1)
    return torch.where(_finite(best), 1.0 - best, 0.0)


def separation(S: Tensor, mask: Tensor) -> Tensor:
    """Mean gap between adjacent sorted taker means; 0 with fewer than two takers.

    The adjacent gaps of a sorted list telescope: their mean is (max - min) / (T' - 1),
    where T' is the number of takers with a scored item.
    """
    return _separation(taker_means(S, mask))


def _separation(means: Tensor) -> Tensor:
    if means.shape[-1] == 0:
        return means.new_zeros(means.shape[:-1])
    present = _finite(means)  # not NaN: taker means are in [0, 1] or NaN
    k = present.sum(-1)
    hi = torch.where(present, means, -math.inf).amax(-1)
    lo = torch.where(present, means, math.inf).amin(-1)
    gap = (hi - lo) / (k - 1).clamp(min=1)
    return torch.where(k >= 2, gap, 0.0)


def novelty(S: Tensor, mask: Tensor, orig_means: Tensor, eps: float = 1e-3) -> Tensor:
    """KL(p_orig || p_gen) between takers' normalized mean scores on the dev data and on the items.

    Over the takers present for the particle (scored on the generated items, and with
    a finite dev mean), ``p = (mean + eps) / sum(mean + eps)``. The smoothing keeps
    every probability >= eps / (T (1 + eps)), so the KL is finite, including when a
    taker scores 0. One taker present gives 0.
    """
    return _novelty(taker_means(S, mask), orig_means, eps)


def _novelty(means: Tensor, orig_means: Tensor, eps: float) -> Tensor:
    if not eps > 0:
        raise ValueError(f"objective.novelty_eps: must be > 0, got {eps}")
    orig = torch.as_tensor(orig_means, dtype=means.dtype, device=means.device)
    if orig.shape != means.shape[-1:]:
        raise ValueError(f"orig_means must be [T]={means.shape[-1]}, got {tuple(orig.shape)}")
    present = _finite(means) & _finite(orig)  # taker means are in [0, 1] or NaN
    gen = torch.where(present, torch.nan_to_num(means).clamp(0, 1) + eps, 0.0)
    ref = torch.where(present, torch.nan_to_num(orig, nan=0.0, posinf=1.0, neginf=0.0).clamp(0, 1) + eps, 0.0)
    p_gen = gen / gen.sum(-1, keepdim=True).clamp(min=eps)
    p_ref = ref / ref.sum(-1, keepdim=True).clamp(min=eps)
    tiny = torch.finfo(means.dtype).tiny  # only absent takers have p = 0; their terms are dropped
    terms = torch.where(present, p_ref * (p_ref.clamp(min=tiny).log() - p_gen.clamp(min=tiny).log()), 0.0)
    return terms.sum(-1).clamp(min=0.0)  # KL >= 0; clamp only removes rounding below 0


def consistency(S: Tensor, mask: Tensor, chunks: int = 4) -> Tensor:
    """1 - mean over takers of the population std (ddof=0) of the taker's chunk means.

    A particle's items with at least one score are split, in order, into
    ``k = min(chunks, n)`` contiguous chunks of near-equal size (item of rank r goes
    to chunk floor(r k / n)). With fewer scored items than ``chunks`` every item is
    its own chunk; a single item is one chunk, std 0, consistency 1. Per taker, the
    std is taken over the chunks in which that taker has a score.
    """
    return _consistency(*_clean(S, mask), chunks)


def _consistency(Sz: Tensor, m: Tensor, chunks: int) -> Tensor:
    if chunks < 1:
        raise ValueError(f"objective.chunks: must be >= 1, got {chunks}")
    item = m.any(1)                                            # [P, N] scored by someone
    n = item.sum(-1, keepdim=True)                             # [P, 1]
    k = n.clamp(1, chunks)
    rank = item.cumsum(-1) - 1                                 # [P, N], int64
    chunk = torch.div(rank.clamp(min=0) * k, n.clamp(min=1), rounding_mode="floor")
    onehot = ((chunk.unsqueeze(-1) == torch.arange(chunks, device=chunk.device)) & item.unsqueeze(-1)).to(Sz.dtype)  # [P, N, K]
    sums = torch.bmm(Sz, onehot)                               # [P, T, K]
    counts = torch.bmm(m.to(Sz.dtype), onehot)
    has = counts > 0                                           # [P, T, K]
    cmeans = sums / counts.clamp(min=1)
    nk = has.sum(-1)                                           # [P, T]
    per = nk.clamp(min=1)
    mu = (cmeans * has).sum(-1) / per
    var = (((cmeans - mu.unsqueeze(-1)) ** 2) * has).sum(-1) / per
    std = var.clamp(min=0).sqrt()
    takers = nk > 0
    mean_std = (std * takers).sum(-1) / takers.sum(-1).clamp(min=1)
    return torch.where(takers.any(-1), 1.0 - mean_std, 0.0)


def realism(R: Tensor, valid: Tensor) -> Tensor:
    """Mean realism similarity ``R [P, N]`` (in [0, 1]) over each particle's valid items; 0 if none."""
    if R.dim() != 2 or valid.shape != R.shape:
        raise ValueError(f"realism needs R [P, N] and valid [P, N], got {tuple(R.shape)} and {tuple(valid.shape)}")
    R = R if R.is_floating_point() else R.float()
    v = valid.bool() & _finite(R)
    total = torch.where(v, R.clamp(0, 1), 0.0).sum(-1)
    return total / v.sum(-1).clamp(min=1)


@dataclass(frozen=True)
class ObjectiveInputs:
    """Everything an objective may read; only ``scores`` and ``mask`` are always needed."""

    scores: Tensor                      # [P, T, N]
    mask: Tensor                        # [P, T, N]
    orig_means: Tensor | None = None    # [T]  novelty: takers' mean scores on the task's dev data
    similarity: Tensor | None = None    # [P, N] realism: per-item similarity in [0, 1]
    valid: Tensor | None = None         # [P, N] realism: valid items (default: items with a score)
    chunks: int = 4
    eps: float = 1e-3

    @cached_property
    def cleaned(self) -> tuple[Tensor, Tensor]:
        """The scores with missing entries zeroed and the mask of usable ones, ``[P, T, N]`` each; computed once
        for every component that reads them (a step's objective is ~100 small tensor ops, each ~3 us on CPU)."""
        return _clean(self.scores, self.mask)

    @cached_property
    def means(self) -> Tensor:
        """``taker_means(scores, mask)``, ``[P, T]``, computed once."""
        return _means(*self.cleaned)


def _need(value, name: str, objective: str):
    if value is None:
        raise ValueError(f"objective {objective} needs {name}")
    return value


# The components by name (objectives/registry.py points at these): (ObjectiveInputs) -> Tensor[P].

def difficulty_of(x: ObjectiveInputs) -> Tensor:
    return _difficulty(x.means)


def separation_of(x: ObjectiveInputs) -> Tensor:
    return _separation(x.means)


def novelty_of(x: ObjectiveInputs) -> Tensor:
    return _novelty(x.means, _need(x.orig_means, "orig_means", "novelty"), x.eps)


def consistency_of(x: ObjectiveInputs) -> Tensor:
    return _consistency(*x.cleaned, x.chunks)


def realism_of(x: ObjectiveInputs) -> Tensor:
    valid = x.valid if x.valid is not None else x.mask.bool().any(1)
    return realism(_need(x.similarity, "similarity", "realism"), valid)


def components(names: Iterable[str], inputs: ObjectiveInputs,
               extra: Mapping[str, Callable[[ObjectiveInputs], Tensor]] | None = None) -> dict[str, Tensor]:
    """The named components, each ``[P]``; 0 for particles with nothing scored.

    A name is a built-in component (objectives/registry.py) or a key of ``extra``.
    """
    extra = extra or {}
    return _components({name: extra[name] if name in extra else registry.component(name) for name in names}, inputs)


def _components(fns: Mapping[str, Callable[[ObjectiveInputs], Tensor]], inputs: ObjectiveInputs) -> dict[str, Tensor]:
    """`components` of functions already looked up (the objective does it once, not every step)."""
    if inputs.scores.shape[1] == 0:  # no takers: nothing is judged, only realism can apply
        scored = torch.ones(inputs.scores.shape[0], dtype=torch.bool, device=inputs.scores.device)
    else:
        scored = inputs.cleaned[1].flatten(1).any(1)  # a particle with at least one usable score
    dtype = inputs.scores.dtype if inputs.scores.is_floating_point() else torch.float32
    values = []
    for name, fn in fns.items():
        value = torch.as_tensor(fn(inputs), dtype=dtype)
        if value.shape != scored.shape:
            raise ValueError(f"objective component {name} must give one value per particle {list(scored.shape)}, got {list(value.shape)}")
        values.append(value)
    if not values:
        return {}
    return dict(zip(fns, torch.where(scored, torch.stack(values), 0.0).unbind()))  # one select for every component


def utility(components: Mapping[str, Tensor], weights: Mapping[str, float], valid_fraction: Tensor) -> Tensor:
    """(sum_k w_k * component_k) * valid_fraction, ``[P]``; components with weight 0 are not read."""
    return _utility(components, registry.check_weights(weights, {*registry.COMPONENTS, *components}), valid_fraction)


def _utility(components: Mapping[str, Tensor], weights: Mapping[str, float], valid_fraction: Tensor) -> Tensor:
    """`utility` with weights already checked (the objective checks them once, when it is made)."""
    frac = torch.as_tensor(valid_fraction)
    frac = torch.nan_to_num(frac if frac.is_floating_point() else frac.float(), nan=0.0).clamp(0, 1)
    total = torch.zeros_like(frac)
    for name, w in weights.items():
        if w == 0:
            continue
        if name not in components:
            raise ValueError(f"objective.weights.{name}: weight {w} but the component was not computed")
        c = components[name].to(total)
        if not _finite(c).all():
            raise ValueError(f"objective component {name} is not finite: {c.tolist()}")
        total = total + w * c
    return total * frac


class WeightedSum:
    """The run's objective (``objective._target_``): every component, and their weighted sum, times the valid
    fraction (``validity="multiply"``) or not (``"none"``: the paper's objective on the valid items only).

    All built-in components are computed and logged whatever their weight (the
    step files recompute every one); ``components`` adds your own by name.
    """

    def __init__(self, weights: Mapping[str, float], chunks: int = 4, novelty_eps: float = 1e-3,
                 components: Mapping[str, Callable[[ObjectiveInputs], Tensor]] | None = None,
                 validity: str = "multiply") -> None:
        if validity not in registry.VALIDITY:
            raise ValueError(f"objective.validity: must be one of {', '.join(registry.VALIDITY)}, got {validity!r}")
        self.extra = dict(components or {})
        self.names = [*registry.COMPONENTS, *self.extra]
        self.weights = registry.check_weights(weights, self.names)
        self.functions = {name: self.extra[name] if name in self.extra else registry.component(name) for name in self.names}
        self.chunks, self.eps, self.validity = chunks, novelty_eps, validity

    def __call__(self, inputs: ObjectiveInputs, valid_fraction: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """Each component ``[P]`` and the utility ``[P]``."""
        inputs = replace(inputs, chunks=self.chunks, eps=self.eps)
        values = _components(self.functions, inputs)
        frac = torch.as_tensor(valid_fraction)
        return values, _utility(values, self.weights, frac if self.validity == "multiply" else torch.ones_like(frac))
