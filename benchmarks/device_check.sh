#!/usr/bin/env bash
# The GPU figures of issue 19 (docs/performance.md) as one prepared command for a lent device
# machine (one H200; its image has torch, transformers, peft, matplotlib and tqdm, and cannot
# download). From a session that has one, after `make run` or `make test` built the zoo here:
#
#   run(command="bash benchmarks/device_check.sh", carry=[".cache/zoo"], timeout_s=540)
#
# It prints the GPU and library versions, then runs benchmarks/multi_lora.py (per-particle vs
# multi-LoRA at P = 4, 8, 16, T = 4, bf16, share of identical items; zoo P = 8 speedup last)
# and the step-time curve of benchmarks/scaling.py --curve, writing into $OUT (what the device
# tool sends back): gpu.txt, multi_lora.txt, scaling.txt, multi_lora_scaling.csv/.png.
# SmolLM2 is left out: its GGUF (94 MB) is over the tool's 64 MiB carry.
# SIZE=tiny runs the same on the tiny zoo (how this script is checked on CPU).
set -euo pipefail
OUT=${OUT:-outputs/device_check}
SIZE=${SIZE:-default}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 DSWARM_CACHE=${DSWARM_CACHE:-$PWD/.cache}
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
    python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
'transformers', transformers.__version__, 'peft', peft.__version__)"
} | tee "$OUT/gpu.txt"
timeout 300 python3 benchmarks/multi_lora.py --size "$SIZE" --particles 4,8,16 --smollm2-particles '' --reps 2 \
    | tee "$OUT/multi_lora.txt"
timeout 180 python3 benchmarks/scaling.py --curve "$OUT" --size "$SIZE" --reps 3 | tee "$OUT/scaling.txt"
