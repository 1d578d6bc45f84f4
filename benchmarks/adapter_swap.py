"""Usage: python benchmarks/adapter_swap.py [--size default] [--repeats 30]

Switching the active generator: PeftModel.from_pretrained of the adapter dir
(on a fresh copy of the base, prepared outside the timer, so only the adapter
load is timed) versus LoraModel.load(vec), an in-place copy of the flat
particle into the live LoRA tensors. Both must give the same logits.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from peft import PeftModel  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from generators.models.lora_model import LoraModel  # noqa: E402
from generators.zoo import TAKER_TEMPLATE, build_zoo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="default", choices=["default", "tiny"])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    zoo = build_zoo(args.size)
    dirs = list(zoo.generators.values())
    lm = LoraModel(zoo.base_dir, dirs)
    batch = lm.tokenizer([TAKER_TEMPLATE.format(input="47+38")], return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(zoo.base_dir, local_files_only=True, use_safetensors=True).eval()

    reload_s, peft_models = [], []
    for i in range(args.repeats):
        fresh = copy.deepcopy(base)
        t = time.perf_counter()
        model = PeftModel.from_pretrained(fresh, str(dirs[i % len(dirs)])).eval()
        reload_s.append(time.perf_counter() - t)
        peft_models.append(model) if i < len(dirs) else None

    swap_s = []
    for i in range(args.repeats * 10):
        vec = lm.expert_vectors[i % len(dirs)]
        t = time.perf_counter()
        lm.load(vec)
        swap_s.append(time.perf_counter() - t)

    with torch.no_grad():
        for k, model in enumerate(peft_models):
            lm.load(lm.expert_vectors[k])
            assert torch.allclose(lm.model(**batch).logits, model(**batch).logits, atol=1e-5), "logits differ"

    reload_ms, swap_ms = statistics.median(reload_s) * 1e3, statistics.median(swap_s) * 1e3  # medians: robust to a busy machine
    print(f"zoo: {zoo.root.name}  LoRA params per particle: {lm.dim}  repeats: {args.repeats}")
    print(f"{'method':<40}{'median ms':>12}")
    print(f"{'PeftModel.from_pretrained (adapter only)':<40}{reload_ms:>12.3f}")
    print(f"{'LoraModel.load(vec) in place':<40}{swap_ms:>12.3f}")
    print("logits identical: yes")
    print(f"speedup: {reload_ms / swap_ms:.1f}x")


if __name__ == "__main__":
    main()
