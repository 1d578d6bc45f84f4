"""What do weight-space mixes of two generator experts write?

    python benchmarks/mixing_probe.py                 # default zoo, 48 prompts per mix
    python benchmarks/mixing_probe.py --size tiny --prompts 12

For three pairs of the zoo's cluster experts and a in {0, .25, .5, .75, 1},
the generator ``(1 - a) * E_i + a * E_j`` writes items from the same prompts
(few-shot examples from the dev pool, temperature 1, one seed); the table
gives the valid share, the share of copies of dev items and the share of
valid items in each cluster's forms, and in forms of no cluster (``other``:
what no expert was trained to write, docs/zoo.md). The uniform soup of all
four experts and the base (the zero vector) are the last rows.
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
from generators.zoo import N_NEW, build_zoo  # noqa: E402
from generators.zoo.recipe import RECIPES, task_of  # noqa: E402
from generators.zoo.skills import OTHER, generator_prompts, generator_stats  # noqa: E402

PAIRS = (("add", "mul"), ("sub", "mix"), ("mul", "mix"))
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
    pool = [item.input for item in task_of(RECIPES[args.size]).dev]
    prompts = generator_prompts(pool, args.prompts, seed=1)  # other prompts than the build's skill matrix
    rows = [(f"{i}:{j} a={a:.2f}", (1 - a) * E[i] + a * E[j]) for i, j in PAIRS for a in ALPHAS]
    rows += [("uniform soup", torch.stack(list(E.values())).mean(0)), ("base", torch.zeros(lm.dim))]
    started = time.perf_counter()
    columns = [*zoo.clusters, OTHER]
    print(f"zoo {zoo.root.name}: {args.prompts} prompts x {N_NEW} items per generator, temperature 1\n")
    print("| generator | valid | dev copies | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 3) + "|")
    for name, vec in rows:
        lm.load(vec)
        texts = lm.generate(prompts, max_new_tokens=16 * N_NEW, temperature=1.0, batch_size=64, seed=0)
        s = generator_stats(texts, zoo.clusters)
        cells = [f"{s['shares'][c]:.2f}" for c in columns]
        print(f"| {name} | {s['valid']:.2f} | {s['dev_copies']:.2f} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{len(rows)} generators in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
