"""Usage: python benchmarks/generation.py [--size default] [--n-answers 128] [--n-lists 16] [--batch-size 64] [--repeats 3]

One prompt at a time (the reference's loop) versus left-padded batches, on
the zoo's two workloads: takers answering items (greedy, stop at newline) and
a generator writing problem lists (greedy). Outputs must be identical. Each
timing is the best of --repeats runs (the machine is shared; min is the
least disturbed run, as timeit does).
"""
from __future__ import annotations

import argparse
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generators.models.lora_model import LoraModel  # noqa: E402
from generators.prompts import few_shot_prompt  # noqa: E402
from generators.zoo import GENERATOR_TEMPLATE, N_NEW, N_SHOTS, TAKER_STOP, TAKER_TEMPLATE, build_zoo  # noqa: E402
from objectives.tasks.arith import FAMILIES, sample_problem  # noqa: E402


def timed(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="default", choices=["default", "tiny"])
    parser.add_argument("--n-answers", type=int, default=128)
    parser.add_argument("--n-lists", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    zoo = build_zoo(args.size)
    rng = random.Random(0)
    problems = [sample_problem(rng.choice(FAMILIES), rng) for _ in range(args.n_answers)]
    pool = [sample_problem(rng.choice(FAMILIES), rng) for _ in range(100)]
    lists = [few_shot_prompt(rng.sample(pool, N_SHOTS), N_NEW, GENERATOR_TEMPLATE) for _ in range(args.n_lists)]

    takers = LoraModel(zoo.lora_base, list(zoo.lora_takers.values()))
    takers.load(takers.expert_vectors[0])
    gens = LoraModel(zoo.base_dir, list(zoo.generators.values()))
    gens.load(gens.expert_vectors[0])
    workloads = {
        "taker answers (greedy)": (takers, [TAKER_TEMPLATE.format(input=p) for p in problems],
                                   dict(max_new_tokens=8, stop=TAKER_STOP)),
        "generator lists (greedy)": (gens, lists, dict(max_new_tokens=12 * N_NEW)),
    }
    print(f"zoo: {zoo.root.name}  batch size: {args.batch_size}  best of {args.repeats}")
    print(f"{'workload':<28}{'prompts':>8}{'one-by-one s':>14}{'batched s':>11}{'ratio':>8}")
    serial_total = batched_total = 0.0
    for name, (lm, prompts, kw) in workloads.items():
        lm.generate(prompts[:4], batch_size=4, **kw)  # warm up
        single, t_single = timed(lambda: [lm.generate([p], **kw)[0] for p in prompts], args.repeats)
        batched, t_batched = timed(lambda: lm.generate(prompts, batch_size=args.batch_size, **kw), args.repeats)
        assert single == batched, f"{name}: batched outputs differ from one-by-one"
        serial_total, batched_total = serial_total + t_single, batched_total + t_batched
        print(f"{name:<28}{len(prompts):>8}{t_single:>14.2f}{t_batched:>11.2f}{t_single / t_batched:>7.1f}x")
    print("outputs identical: yes")
    print(f"speedup: {serial_total / batched_total:.1f}x")


if __name__ == "__main__":
    main()
