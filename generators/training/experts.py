"""Train K LoRA experts of a base LM on K clusters of a task's dev data (the ``dswarm-experts`` command's work).

The paper's ``{task}_cluster_{i}`` experts: generator experts learn to continue
the few-shot prompt with new items of their cluster, in the task's item format;
taker experts learn to answer the cluster's questions. The adapter dirs are
plain PEFT (adapter_config.json + adapter_model.safetensors), usable by
generator=hf / taker=hf and by `PeftModel.from_pretrained`.

`train_experts(...)` is the Python API (generators.sources.smollm2.experts uses it); `train_expert(...)`
trains one expert on one list of items. The command line is generators/training/cli.py; the
training loop is the project's one loop (generators/training/loop.py).
"""
from __future__ import annotations

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

from generators.models.cache import publish
from generators.prompts import few_shot_prompt, numbered
from generators.training.loop import Example, collator, encode, label_loss, micro_batches, train_loop
from objectives.tasks.item import Item

__all__ = ["Recipe", "ExpertResult", "train_experts", "train_expert", "ROLES"]

DEFAULT_GENERATOR_TEMPLATE = (
    "Write {n} new questions like the examples below, one per line, each followed by its answer.\n{examples}"
)
DEFAULT_TAKER_TEMPLATE = "Question: {input}\nAnswer:"
ROLES = ("generator", "taker")
CHECKPOINT_TOKENS = 1024  # a batch of more tokens (rows x max_len) trains with gradient checkpointing


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
    """Prompt ids exactly as generators.models.lora_model.LoraModel encodes them at generation time."""
    if chat:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt)["input_ids"]


def _example(tokenizer, prompt: str, target: str, recipe: Recipe) -> Example | None:
    """(input_ids, labels) truncated to max_len, ending with eos (experts learn to stop); None when no target token fits."""
    p = _encode_prompt(tokenizer, prompt, recipe.chat_template)
    ids, labels = encode(tokenizer, prompt, target, eos=True, max_len=recipe.max_len, prompt_ids=p)
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


def build_examples(tokenizer, items, recipe, fmt, seed: int, count: int,
                   max_len_setting: str = "--max-len") -> list[tuple[list[int], list[int]]]:
    rng = random.Random(f"examples-{seed}")
    out = []
    for prompt, target in _text_pairs(items, recipe, fmt, rng, count * 2):
        ex = _example(tokenizer, prompt, target, recipe)
        if ex is not None:
            out.append(ex)
        if len(out) == count:
            return out
    if not out:
        raise ValueError(f"no training example fits in max_len={recipe.max_len} tokens; raise {max_len_setting}")
    return out


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
def _eval_loss(model, batches, device, max_tokens: int | None = None, label_logits: bool = False) -> float:
    model.eval()
    total, n = 0.0, 0
    for batch in batches:
        tokens = int((batch["labels"][:, 1:] != -100).sum())
        for part, share in micro_batches(batch, max_tokens):
            total += float(label_loss(model, {k: v.to(device) for k, v in part.items()}, label_logits)) * share * tokens
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
    max_len_setting: str = "--max-len",
    max_batch_tokens: int | None = None,
) -> list[ExpertResult]:
    """Train one LoRA expert per cluster of items; write ``out_dir/<name>`` adapter dirs.

    ``max_len_setting`` is the setting a too-short ``recipe.max_len`` error tells the user to raise.
    ``max_batch_tokens`` bounds every forward pass (rows x tokens; a batch runs as micro-batches whose
    gradients add up to its own). Logits are computed only where the labels are (not [rows, L, vocab]),
    and a batch of more than ``CHECKPOINT_TOKENS`` tokens trains with gradient checkpointing: measured on
    SmolLM2 (one thread), a 2 x 1,300-token batch needs 2.8 GiB instead of 5.8, in 1.6x the time; the
    miniature on ~1,500-character inputs trained its 4 x 375-token taker batches at 4.6 GiB without them.

    The base model is loaded once; each expert gets fresh LoRA weights (seeded
    init, seeded batches) and is written atomically. ``format_example`` renders
    an item in the task's generated-item format (default: its input).
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from generators.models.adapter_files import save_adapter

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
    collate = collator(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(
        str(base), local_files_only=True, use_safetensors=True, trust_remote_code=False,
        dtype=_resolve_dtype(dtype, dev),
    ).to(dev)
    if recipe.batch_size * recipe.max_len > CHECKPOINT_TOKENS:  # activations recomputed in the backward pass
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    budget = dict(max_tokens=max_batch_tokens, label_logits=True)
    results = []
    for name, items, seed in zip(names, clusters, seeds):
        start = time.perf_counter()
        examples = build_examples(tokenizer, items, recipe, fmt, seed, recipe.steps * recipe.batch_size + recipe.eval_examples,
                                  max_len_setting)
        held, train = examples[: recipe.eval_examples], examples[recipe.eval_examples:] or examples
        eval_batches = [collate(held[i:i + recipe.batch_size]) for i in range(0, len(held), recipe.batch_size)]
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            torch.manual_seed(seed)  # LoRA A init; B starts at zero, so step 0 is the base model
            lora = LoraConfig(r=recipe.rank, lora_alpha=recipe.alpha, lora_dropout=0.0,
                              target_modules=list(recipe.target_modules), task_type="CAUSAL_LM")
            peft_model = get_peft_model(model, lora)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        for p in params:  # train LoRA in fp32 even on a bf16 base
            p.data = p.data.float()
        loss_start = _eval_loss(peft_model, eval_batches, dev, **budget)
        bar = None
        if progress and sys.stderr.isatty():  # in a log file, the result line below is the progress
            from tqdm.auto import tqdm

            bar = tqdm(total=recipe.steps, desc=name, unit="step", leave=False)

        def batch_at(step: int) -> list[dict]:
            return [collate(train[(step * recipe.batch_size) % len(train):][: recipe.batch_size] or train[: recipe.batch_size])]

        def tick(step: int, loss: float) -> None:
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")

        # A constant rate (no warmup, min_lr 1): the recipe's lr for every step.
        losses = train_loop(peft_model, batch_at, recipe.steps, recipe.lr, warmup=0.0, min_lr=1.0,
                            autocast=torch.bfloat16 if model.dtype == torch.bfloat16 else None, on_step=tick, **budget)
        if bar is not None:
            bar.close()
        loss_end = _eval_loss(peft_model, eval_batches, dev, **budget)
        final = out_dir / name
        result = ExpertResult(name, final, len(items), loss_start, loss_end, time.perf_counter() - start, losses)

        tmp = out_dir / f".{name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        save_adapter(peft_model, tmp, str(base))
        (tmp / "dswarm_expert.json").write_text(json.dumps(
            {"name": name, "recipe": asdict(recipe), "seed": seed, "examples": len(items), "loss_start": loss_start,
             "loss_end": loss_end, "train_losses": losses, "seconds": round(result.seconds, 1)}, indent=1) + "\n")
        publish(tmp, final)
        model = peft_model.unload()  # the bare base again, for the next expert
        results.append(result)
        log(result.summary())
    return results


def train_expert(base: str | Path, items: Sequence[Item], out_dir: str | Path, recipe: Recipe, *, name: str = "expert",
                 seed: int | None = None, **kwargs) -> ExpertResult:
    """One LoRA expert of ``base`` trained on ``items`` (e.g. a merged dataset), written to ``out_dir/name``."""
    return train_experts(base, [items], out_dir, recipe, names=[name], seeds=[recipe.seed if seed is None else seed], **kwargs)[0]
