"""Do weight-space mixes of two generator experts write items that combine their traits?

    python benchmarks/mixing_probe.py                 # default zoo, 48 prompts per mix
    python benchmarks/mixing_probe.py --size tiny --prompts 12

For each pair of single-trait experts (big, mul, chain) and a in {0, .25, .5,
.75, 1}, the generator ``(1 - a) * E_i + a * E_j`` writes items from the same
prompts (temperature 1, one seed); the table gives the valid share and the
share of valid items in each bin, with the combined bin (e.g. ``big+mul``:
items that have both traits) in its own column. Neither expert was trained
on a combined bin (docs/zoo.md), so a share there is what a combination in
weight space adds. The uniform soup of all four experts is the last row.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from generators.models.lora_model import LoraModel  # noqa: E402
from generators.zoo import BINS, N_NEW, build_zoo  # noqa: E402
from generators.zoo.skills import generator_prompts, generator_stats  # noqa: E402

PAIRS = (("big", "mul"), ("big", "chain"), ("mul", "chain"))
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="default")
    parser.add_argument("--seed", type=int, default=0, help="zoo seed")
    parser.add_argument("--prompts", type=int, default=48)
    args = parser.parse_args()
    torch.set_num_threads(1)
    zoo = build_zoo(args.size, args.seed)
    lm = LoraModel(zoo.base_dir, list(zoo.generators.values()))
    E = dict(zip(zoo.generators, lm.expert_vectors))
    prompts = generator_prompts(args.prompts, seed=1)  # other prompts than the build's skill matrix
    rows = [(f"{i}:{j} a={a:.2f}", (1 - a) * E[i] + a * E[j], f"{i}+{j}") for i, j in PAIRS for a in ALPHAS]
    rows.append(("uniform soup", torch.stack(list(E.values())).mean(0), None))
    started = time.perf_counter()
    print(f"zoo {zoo.root.name}: {args.prompts} prompts x {N_NEW} items per generator, temperature 1\n")
    print("| generator | valid | " + " | ".join(BINS) + " |")
    print("|---" * (len(BINS) + 2) + "|")
    for name, vec, combined in rows:
        lm.load(vec)
        texts = lm.generate(prompts, max_new_tokens=16 * N_NEW, temperature=1.0, batch_size=64, seed=0)
        s = generator_stats(texts)
        cells = [f"**{s['shares'][b]:.2f}**" if b == combined else f"{s['shares'][b]:.2f}" for b in BINS]
        print(f"| {name} | {s['valid']:.2f} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{len(rows)} generators in {time.perf_counter() - started:.0f} s (bold: the pair's combined bin)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
