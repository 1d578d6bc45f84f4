"""Training jobs of the zoo, one model per worker process (one thread each).

``train_scratch`` trains a Llama from scratch (the generator base on problem
lists, or a taker on Q/A lines of its data mix); ``train_lora`` trains a LoRA
of a saved model (a generator expert on lists continued with its cluster's
dev items, or an adversarial LoRA taker on Q/A lines of its cluster's forms). Both use the project's
one training loop (generators/training/loop.py).
"""
from __future__ import annotations

import hashlib
import random
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from generators.models.adapter_files import save_adapter
from generators.training.loop import collator, encode, train_loop
from generators.zoo.problems import Fresh, base_list, expert_list, qa_pair
from generators.zoo.recipe import ModelSpec
from generators.zoo.tokenizer import build_tokenizer

__all__ = ["seeded", "train_scratch", "train_lora", "LORA_TARGETS"]

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def seeded(seed: int, label: str) -> int:
    """A 56-bit seed for one phase of one zoo: sha256(zoo seed, label)."""
    return int.from_bytes(hashlib.sha256(f"{seed}-{label}".encode()).digest()[:7], "big")


def _batches(tok, job: dict, rng: random.Random, batch: int):
    """Batch maker of one job (``kind``): ``qa`` -- Q/A lines of fresh problems of the data mix of the job's
    ``phases``, loss on the answer; ``base`` -- the generator base's lists, loss on the whole list; ``expert`` -- a generator expert's
    lists (examples from the dev ``pool``, new items from its ``cluster``), loss on the new items."""
    collate = collator(tok)
    fresh = Fresh(job["exclude"])
    if job["kind"] == "qa":
        phases = job["phases"]  # [(until_step, weights), ...]: the data mix of each phase (a curriculum)
        mix = lambda step: next((w for until, w in phases if step < until), phases[-1][1])  # noqa: E731
        line = lambda step: encode(tok, *qa_pair(fresh.weighted(mix(step), rng)), eos=False)  # noqa: E731
    elif job["kind"] == "base":
        line = lambda step: encode(tok, *base_list(fresh, rng), eos=True, prompt_loss=True)  # noqa: E731
    else:
        line = lambda step: encode(tok, *expert_list(job["pool"], job["cluster"], rng), eos=True)  # noqa: E731
    return lambda step: [collate([line(step) for _ in range(batch)])]


def train_scratch(job: dict) -> str:
    """job: spec (ModelSpec as dict), kind ("qa" | "base"), its data (``_batches``), seed, label, out_dir.
    Saves model + tokenizer."""
    torch.set_num_threads(1)
    spec, label = ModelSpec(**job["spec"]), job["label"]
    tok = build_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=spec.hidden, intermediate_size=4 * spec.hidden, num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads, num_key_value_heads=spec.heads, max_position_embeddings=256,
        tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeded(job["seed"] * 1000 + spec.seed, f"{label}-init"))
        model = LlamaForCausalLM(cfg)
    rng = random.Random(seeded(job["seed"] * 1000 + spec.seed, f"{label}-data"))
    batches = _batches(tok, job, rng, spec.batch)
    t, cpu = time.perf_counter(), time.process_time()
    losses = train_loop(model, batches, spec.steps, spec.lr)
    model.save_pretrained(job["out_dir"], safe_serialization=True)
    tok.save_pretrained(job["out_dir"])
    params = sum(p.numel() for p in model.parameters())
    return (f"{label}: {params / 1e3:.0f} k params, loss {losses[-1]:.3f} ({spec.steps} steps, "
            f"{time.perf_counter() - t:.1f} s wall, {time.process_time() - cpu:.1f} s cpu)")


def train_lora(job: dict) -> str:
    """job: base_dir, kind ("qa" | "expert"), its data (``_batches``), r, steps, lr, batch, seed, label, out_dir,
    base_name. Saves the adapter."""
    torch.set_num_threads(1)
    label = job["label"]
    tok = AutoTokenizer.from_pretrained(job["base_dir"], local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(job["base_dir"], local_files_only=True, use_safetensors=True)
    rng = random.Random(seeded(job["seed"], f"{label}-data"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeded(job["seed"], f"{label}-init"))
        model = get_peft_model(base, LoraConfig(r=job["r"], lora_alpha=job["r"], lora_dropout=0.0, target_modules=LORA_TARGETS))
    t, cpu = time.perf_counter(), time.process_time()
    losses = train_loop(model, _batches(tok, job, rng, job["batch"]), job["steps"], job["lr"])
    save_adapter(model, job["out_dir"], job["base_name"])
    return (f"{label}: loss {losses[-1]:.3f} ({job['steps']} steps, {time.perf_counter() - t:.1f} s wall, "
            f"{time.process_time() - cpu:.1f} s cpu)")
