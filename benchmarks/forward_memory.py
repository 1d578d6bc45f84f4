"""Usage: python benchmarks/forward_memory.py ROWS LENGTH [--base DIR]

Peak memory of one forward pass of SmolLM2 (fp32, CPU, one thread) over ROWS
left-padded rows of LENGTH tokens with the KV cache on, as generation's prefill
runs it, beside what generators/models/memory.py predicts. Run one point per
process (ru_maxrss is the process's peak): the two points in that module's
docstring are `4 1300` and `16 650`.
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from generators.models.cache import default_cache_dir
from generators.models.memory import forward_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[2])
    parser.add_argument("rows", type=int)
    parser.add_argument("length", type=int)
    parser.add_argument("--base", type=Path, default=default_cache_dir() / "smollm2" / "base-v1", help="an HF model dir")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(str(args.base), dtype=torch.float32, use_safetensors=True, local_files_only=True).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, model.config.vocab_size, (args.rows, args.length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, : args.length // 3] = 0  # one left-padded row: the attention mask is not all ones
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask, use_cache=True, logits_to_keep=1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    predicted = forward_bytes(model.config, args.rows * args.length, args.length)
    print(f"{args.rows} x {args.length} tokens: {(peak - loaded) / 2**30:.2f} GiB above the loaded model "
          f"(predicted {predicted / 2**30:.2f}), {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
