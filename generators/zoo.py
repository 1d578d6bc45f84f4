"""The embedded model zoo: a tiny arithmetic LM and its LoRA experts, built once and cached.

Usage: dswarm-zoo [--size default|tiny] [--seed 0] [--force] [--cache-dir DIR]

Recipe (docs/zoo.md has the measured numbers):
1. a WordLevel tokenizer (a few words + characters) and a 2-layer, 8-head Llama;
2. pretraining, data-parallel over 2 worker processes (gloo), on Q/A lines
   (answers least-significant digit first, loss on the answer) and on
   few-shot problem lists in exactly the format of
   `few_shot_prompt(..., GENERATOR_TEMPLATE)`, whose new items imitate the
   examples' families;
3. PEFT LoRA experts, two at a time: one generator per family (mixed
   examples in, own family out) and takers that "learn" one family (right
   answers), "keep" one (no data) and "forget" the others (wrong answers of
   the right length) -- `TAKERS`, `HELDOUT`;
4. the skill matrix, measured through `LoraModel` on fresh problems.

Everything is budgeted by steps and seeded, so a recipe (size, seed, version,
hyperparameters) names one zoo: its hash is the cache key. Builds go to a
temp dir renamed into place under a file lock, so concurrent processes build
a zoo once and then share it.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import logging
import math
import multiprocessing
import os
import random
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from peft import LoraConfig, get_peft_model
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from generators.experts import LoraModel, save_adapter
from generators.prompts import few_shot_prompt, numbered, parse_items
from objectives.arith import FAMILIES, canonical, family_of, format_answer, parse_answer, sample_problem, solve

__all__ = [
    "Zoo", "build_zoo", "default_cache_dir", "main", "skill_table", "GENERATOR_TEMPLATE", "TAKER_TEMPLATE",
    "TAKER_STOP", "N_SHOTS", "N_NEW", "RECIPE_VERSION",
]
log = logging.getLogger(__name__)

RECIPE_VERSION = 1
GENERATOR_TEMPLATE = "Write {n} new problems like these:\n{examples}"
TAKER_TEMPLATE = "Q: {input}\nA:"
TAKER_STOP = "\n"
N_SHOTS, N_NEW = 4, 5          # the list shape used for the skill matrix (trained: 2..5 shots, 3..6 new)
WORDS = ("Write", "new", "problems", "like", "these", "Q", "A")
CHARS = tuple("0123456789+-*=:.)") + ("\n", " ")
SPECIAL = ("<pad>", "<s>", "</s>", "<unk>")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# Taker skills, per family: "learn" (correct answers, weight 1), "forget" (wrong answers of the
# right length, weight FORGET_WEIGHT) or "keep" (not in the data: the base's skill, roughly).
TAKERS: dict[str, dict[str, str]] = {
    f: {f: "learn", FAMILIES[(i + 1) % 4]: "keep", FAMILIES[(i + 2) % 4]: "forget", FAMILIES[(i + 3) % 4]: "forget"}
    for i, f in enumerate(FAMILIES)
}
HELDOUT: dict[str, dict[str, str]] = {
    "generalist": {f: "learn" for f in FAMILIES},
    "add_mul": {"add": "learn", "sub": "forget", "mul": "learn", "mix": "keep"},
}
FORGET_WEIGHT = 0.3


@dataclass(frozen=True)
class Recipe:
    hidden: int = 64
    layers: int = 2
    heads: int = 8
    ffn: int = 256
    base_steps: int = 800
    base_lr: float = 5e-3
    qa_batch: int = 128
    list_batch: int = 8
    qa_families: tuple[str, ...] = FAMILIES  # families of the base's Q/A lines
    gen_steps: int = 60
    gen_r: int = 8
    gen_lr: float = 5e-3
    gen_batch: int = 32
    taker_steps: int = 160
    taker_r: int = 16
    taker_lr: float = 5e-3
    taker_batch: int = 128
    eval_problems: int = 200
    eval_lists: int = 48
    workers: int = 2


RECIPES = {
    "default": Recipe(),
    # tiny: the base learns only addition (the fastest family), enough for distinct takers in seconds
    "tiny": Recipe(base_steps=500, qa_batch=96, base_lr=3e-3, list_batch=2, qa_families=("add",), gen_steps=20, gen_batch=16,
                   taker_steps=30, taker_batch=64, eval_problems=50, eval_lists=12),
}


@dataclass(frozen=True)
class Zoo:
    root: Path
    base_dir: Path
    generators: dict[str, Path]
    takers: dict[str, Path]
    heldout: dict[str, Path]
    skill_matrix: dict = field(hash=False, compare=False)


def default_cache_dir() -> Path:
    """``$DSWARM_CACHE``, else ``<repo root>/.cache`` (git-ignored)."""
    env = os.environ.get("DSWARM_CACHE")
    return Path(env) if env else Path(__file__).resolve().parents[1] / ".cache"


# ----------------------------------------------------------------------------- data

def build_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {t: i for i, t in enumerate(SPECIAL + WORDS + CHARS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("[A-Za-z]+|[^A-Za-z]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        padding_side="left",
    )


def qa_pair(problem: str, wrong: random.Random | None = None) -> tuple[str, str]:
    """A taker's prompt and target: the answer (LSD first), or with ``wrong`` a wrong one of the same length."""
    value = solve(problem)
    if wrong is not None:
        digits = len(str(abs(value)))
        lo = 10 ** (digits - 1) if digits > 1 else 0
        value = wrong.choice([v for v in (wrong.randint(lo, 10**digits - 1), abs(value) + 1) if v != abs(value)])
    return TAKER_TEMPLATE.format(input=problem), f" {format_answer(value)}{TAKER_STOP}"


def list_pair(rng: random.Random, new_family: str | None) -> tuple[str, str]:
    """A few-shot list prompt (examples of random families) and its continuation.

    New items are of ``new_family``, or (``None``, the base) of the examples' families."""
    k, n = rng.randint(2, 5), rng.randint(3, 6)
    fams = [rng.choice(FAMILIES) for _ in range(k)]
    examples = [sample_problem(f, rng) for f in fams]
    new = [sample_problem(new_family or rng.choice(fams), rng) for _ in range(n)]
    return few_shot_prompt(examples, n, GENERATOR_TEMPLATE), f" {new[0]}\n" + numbered(new[1:], start=k + 2)


def taker_pair(skills: dict[str, str], rng: random.Random) -> tuple[str, str]:
    """One training line of a taker: a family drawn by its skill weight, answered right or wrong."""
    fams = [f for f, s in skills.items() if s != "keep"]
    fam = rng.choices(fams, [1.0 if skills[f] == "learn" else FORGET_WEIGHT for f in fams])[0]
    return qa_pair(sample_problem(fam, rng), rng if skills[fam] == "forget" else None)


def collate(tok, pairs: list[tuple[str, str]], eos: bool, prompt_loss: bool = False) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels on the target tokens (and the prompt's when ``prompt_loss``)."""
    prompts = tok([p for p, _ in pairs])["input_ids"]
    targets = tok([t for _, t in pairs], add_special_tokens=False)["input_ids"]
    rows = [(p, t + [tok.eos_token_id] if eos else t) for p, t in zip(prompts, targets)]
    width = max(len(p) + len(t) for p, t in rows)
    ids = torch.full((len(rows), width), tok.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (p, t) in enumerate(rows):
        seq, first = torch.tensor(p + t), 1 if prompt_loss else len(p)
        ids[i, : len(seq)], mask[i, : len(seq)] = seq, 1
        labels[i, first : len(seq)] = seq[first:]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# ----------------------------------------------------------------------------- training

def _all_reduce_mean(params: list[torch.Tensor]) -> None:
    """Average gradients over the data-parallel ranks (one flat buffer, gloo)."""
    import torch.distributed as dist

    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def train(model, batches: Callable[[], list[dict]], steps: int, lr: float, distributed: bool = False) -> float:
    """AdamW, linear warmup then cosine decay to 10%, fp32; returns the last loss.

    With ``distributed`` every rank runs this on its own data and gradients are
    averaged before each step, so all ranks keep identical weights."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.45 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    )
    model.train()
    loss = 0.0
    for _ in range(steps):
        total = sum(model(**b).loss for b in batches())
        total.backward()
        if distributed:
            _all_reduce_mean(params)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss = total.item()
    model.eval()
    return loss


def _took(t: float, cpu: float) -> str:
    return f"{time.perf_counter() - t:.1f} s wall, {time.process_time() - cpu:.1f} s cpu"


def _seeded(seed: int, label: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}-{label}".encode()).digest()[:7], "big")


def train_base(job: dict) -> str:
    """Pretrain the base on one data-parallel rank (a worker process); rank 0 saves it with the tokenizer."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    recipe, seed, rank, world = Recipe(**job["recipe"]), job["seed"], job["rank"], job["world"]
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{job['rendezvous']}", rank=rank, world_size=world)
    try:
        tok = build_tokenizer()
        cfg = LlamaConfig(
            vocab_size=len(tok), hidden_size=recipe.hidden, intermediate_size=recipe.ffn,
            num_hidden_layers=recipe.layers, num_attention_heads=recipe.heads, num_key_value_heads=recipe.heads,
            max_position_embeddings=256, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seeded(seed, "base-init"))  # same init on every rank
            model = LlamaForCausalLM(cfg)
        rng = random.Random(_seeded(seed, f"base-data-{rank}"))
        n_qa, n_lists = recipe.qa_batch // world, max(1, recipe.list_batch // world)

        def batches() -> list[dict]:
            qa = [qa_pair(sample_problem(rng.choice(recipe.qa_families), rng)) for _ in range(n_qa)]
            lists = [list_pair(rng, None) for _ in range(n_lists)]
            return [collate(tok, qa, eos=False), collate(tok, lists, eos=True, prompt_loss=True)]

        t, cpu = time.perf_counter(), time.process_time()
        loss = train(model, batches, recipe.base_steps, recipe.base_lr, distributed=world > 1)
        if rank == 0:
            model.save_pretrained(job["out_dir"], safe_serialization=True)
            tok.save_pretrained(job["out_dir"])
        return f"base rank {rank}/{world}: loss {loss:.3f} ({recipe.base_steps} steps, {_took(t, cpu)})"
    finally:
        if world > 1:
            dist.destroy_process_group()


def train_expert(job: dict) -> str:
    """Train one LoRA expert on the saved base and write its adapter dir (runs in a worker process)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    recipe, seed, label = Recipe(**job["recipe"]), job["seed"], f"{job['kind']}-{job['name']}"
    tok = AutoTokenizer.from_pretrained(job["base_dir"], local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(job["base_dir"], local_files_only=True, use_safetensors=True)
    rng = random.Random(_seeded(seed, f"{label}-data"))
    if job["kind"] == "generators":
        r, steps, lr = recipe.gen_r, recipe.gen_steps, recipe.gen_lr
        batches = lambda: [collate(tok, [list_pair(rng, job["name"]) for _ in range(recipe.gen_batch)], eos=True)]  # noqa: E731
    else:
        r, steps, lr = recipe.taker_r, recipe.taker_steps, recipe.taker_lr
        batches = lambda: [collate(tok, [taker_pair(job["skills"], rng) for _ in range(recipe.taker_batch)], eos=False)]  # noqa: E731
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seeded(seed, f"{label}-init"))
        model = get_peft_model(base, LoraConfig(r=r, lora_alpha=r, lora_dropout=0.0, target_modules=TARGETS))
    t, cpu = time.perf_counter(), time.process_time()
    loss = train(model, batches, steps, lr)
    save_adapter(model, job["out_dir"], job["base_name"])
    return f"{label}: loss {loss:.3f} ({steps} steps, {_took(t, cpu)})"


# ----------------------------------------------------------------------------- skill matrix

def measure_takers(base_dir: Path, takers: dict[str, Path], n: int, seed: int) -> dict[str, dict[str, float]]:
    """Greedy accuracy of each taker on ``n`` fresh problems per family."""
    torch.set_num_threads(1)
    rng = random.Random(_seeded(seed, "eval-takers"))
    problems = [(f, sample_problem(f, rng)) for f in FAMILIES for _ in range(n)]
    prompts = [TAKER_TEMPLATE.format(input=p) for _, p in problems]
    lm = LoraModel(base_dir, list(takers.values()))
    acc = {}
    for name, vec in zip(takers, lm.expert_vectors):
        lm.load(vec)
        answers = lm.generate(prompts, max_new_tokens=8, batch_size=256, stop=TAKER_STOP)
        right = Counter(f for (f, p), a in zip(problems, answers) if parse_answer(a) == solve(p))
        acc[name] = {f: round(right[f] / n, 3) for f in FAMILIES}
    return acc


def measure_generators(base_dir: Path, generators: dict[str, Path], n_lists: int, seed: int) -> dict[str, dict]:
    """Validity, family shares and uniqueness of sampled items (temperature 1), base model included."""
    torch.set_num_threads(1)
    rng = random.Random(_seeded(seed, "eval-generators"))
    pool = [sample_problem(rng.choice(FAMILIES), rng) for _ in range(200)]
    prompts = [few_shot_prompt(rng.sample(pool, N_SHOTS), N_NEW, GENERATOR_TEMPLATE) for _ in range(n_lists)]
    lm = LoraModel(base_dir, list(generators.values()))
    out = {}
    for name, vec in [*zip(generators, lm.expert_vectors), ("base", torch.zeros(lm.dim))]:
        lm.load(vec)
        texts = lm.generate(prompts, max_new_tokens=12 * N_NEW, temperature=1.0, batch_size=64, seed=seed)
        items = [it for t in texts for it in parse_items(t, N_NEW, N_SHOTS + 1)]
        valid = [canonical(it) for it in items if it is not None and solve(canonical(it)) is not None]
        shares = Counter(family_of(v) for v in valid)
        out[name] = {
            "valid": round(len(valid) / len(items), 3),
            "shares": {f: round(shares[f] / max(1, len(valid)), 3) for f in FAMILIES},
            "unique": round(len(set(valid)) / max(1, len(valid)), 3),
        }
    return out


def skill_table(matrix: dict, heldout: tuple[str, ...] = tuple(HELDOUT)) -> str:
    """The skill matrix as two markdown tables."""
    fams = " | ".join(FAMILIES)
    lines = [f"| taker | {fams} |", "|---" * (len(FAMILIES) + 1) + "|"]
    for name, row in matrix["takers"].items():
        tag = " (held-out)" if name in heldout else ""
        lines.append(f"| {name}{tag} | " + " | ".join(f"{row[f]:.2f}" for f in FAMILIES) + " |")
    lines += ["", f"| generator | valid | unique | {fams} |", "|---" * (len(FAMILIES) + 3) + "|"]
    for name, g in matrix["generators"].items():
        shares = " | ".join(f"{g['shares'][f]:.2f}" for f in FAMILIES)
        lines.append(f"| {name} | {g['valid']:.2f} | {g['unique']:.2f} | {shares} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- build + cache

def recipe_key(size: str, seed: int) -> str:
    recipe = {
        "version": RECIPE_VERSION, "size": size, "seed": seed, "recipe": asdict(RECIPES[size]),
        "templates": [GENERATOR_TEMPLATE, TAKER_TEMPLATE, TAKER_STOP], "takers": TAKERS, "heldout": HELDOUT,
        "forget_weight": FORGET_WEIGHT,
        "vocab": [SPECIAL, WORDS, CHARS],
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    return f"{size}-seed{seed}-{digest}"


def _load(root: Path) -> Zoo:
    manifest = json.loads((root / "zoo.json").read_text())
    group = lambda kind: {n: root / kind / n for n in manifest[kind]}  # noqa: E731
    return Zoo(
        root=root, base_dir=root / "base", generators=group("generators"), takers=group("takers"),
        heldout=group("heldout"), skill_matrix=json.loads((root / "skill_matrix.json").read_text()),
    )


def _build(tmp: Path, final: Path, size: str, seed: int) -> None:
    recipe = RECIPES[size]
    times: dict[str, float] = {}
    t0 = t = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal t
        times[name] = round(time.perf_counter() - t, 1)
        log.info("zoo[%s]: %s done in %.1f s", size, name, times[name])
        t = time.perf_counter()

    # One thread per worker process: 2 workers use 2 cores (data-parallel base, then 2 experts at a time).
    with ProcessPoolExecutor(recipe.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [{"recipe": asdict(recipe), "seed": seed, "rank": r, "world": recipe.workers,
                 "rendezvous": str(tmp / "rendezvous"), "out_dir": str(tmp / "base")} for r in range(recipe.workers)]
        tmp.mkdir(parents=True)
        for done in pool.map(train_base, jobs):
            log.info("zoo[%s]: %s", size, done)
        (tmp / "rendezvous").unlink(missing_ok=True)
        phase("base")
        jobs = [{"kind": "generators", "name": f, "skills": None} for f in FAMILIES]
        jobs += [{"kind": k, "name": n, "skills": s} for k, group in (("takers", TAKERS), ("heldout", HELDOUT))
                 for n, s in group.items()]
        for job in jobs:
            job.update(recipe=asdict(recipe), seed=seed, base_dir=str(tmp / "base"), base_name=str(final / "base"),
                       out_dir=str(tmp / job["kind"] / job["name"]))
        for done in pool.map(train_expert, jobs):
            log.info("zoo[%s]: %s", size, done)
        phase("experts")
        takers = {j["name"]: Path(j["out_dir"]) for j in jobs if j["kind"] != "generators"}
        gens = {j["name"]: Path(j["out_dir"]) for j in jobs if j["kind"] == "generators"}
        acc = pool.submit(measure_takers, tmp / "base", takers, recipe.eval_problems, seed)
        gen = pool.submit(measure_generators, tmp / "base", gens, recipe.eval_lists, seed)
        matrix = {"takers": acc.result(), "generators": gen.result(),
                  "n_problems": recipe.eval_problems, "n_items": recipe.eval_lists * N_NEW}
        phase("skill matrix")
    times["total"] = round(time.perf_counter() - t0, 1)
    (tmp / "skill_matrix.json").write_text(json.dumps(matrix, indent=1))
    manifest = {
        "key": final.name, "size": size, "seed": seed, "recipe_version": RECIPE_VERSION, "recipe": asdict(recipe),
        "generators": list(FAMILIES), "takers": list(TAKERS), "heldout": list(HELDOUT), "skills": {**TAKERS, **HELDOUT},
        "seconds": times, "generator_template": GENERATOR_TEMPLATE, "taker_template": TAKER_TEMPLATE,
        "taker_stop": TAKER_STOP,
    }
    (tmp / "zoo.json").write_text(json.dumps(manifest, indent=1))  # written last: marks a complete zoo


def build_zoo(size: str = "default", seed: int = 0, cache_dir: str | Path | None = None, force: bool = False) -> Zoo:
    """The zoo for (size, seed): loaded from the cache, or built once (under a file lock) and cached."""
    if size not in RECIPES:
        raise ValueError(f"unknown zoo size {size!r}; expected one of {sorted(RECIPES)}")
    zoos = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    zoos = zoos / "zoo"
    final = zoos / recipe_key(size, seed)
    if not force and (final / "zoo.json").is_file():
        return _load(final)
    zoos.mkdir(parents=True, exist_ok=True)
    with open(zoos / f"{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent builder holds it: wait, then reuse its zoo
        try:
            if not force and (final / "zoo.json").is_file():
                return _load(final)
            tmp = zoos / f".tmp-{final.name}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            log.info("zoo[%s]: building %s", size, final)
            _build(tmp, final, size, seed)
            if final.exists():
                old = zoos / f".old-{final.name}-{os.getpid()}"
                final.rename(old)
                shutil.rmtree(old)
            tmp.rename(final)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return _load(final)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="dswarm-zoo", description="Build (or load) the embedded model zoo.")
    parser.add_argument("--size", choices=sorted(RECIPES), default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--cache-dir", default=None, help="default: $DSWARM_CACHE or <repo>/.cache")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    zoo = build_zoo(args.size, args.seed, args.cache_dir, args.force)
    print(f"zoo: {zoo.root}")
    print(skill_table(zoo.skill_matrix))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
