"""Peak memory of a step's generator and taker models: one shared base in memory vs two (benchmarks/multi_lora.py).

Each measurement is a fresh process (`python benchmarks/shared_base_memory.py JOB`, JOB the json that
`peak_memory` passes), so one peak does not carry into the next: it loads the generator and taker models,
on one base (``share=``) or two, runs each once, and prints its peak RSS (VmHWM), the CUDA peak and the
bytes of distinct weight storages.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import torch

from generators.models.lora_model import LoraModel


def resolve_dtype(name: str, device: str) -> torch.dtype:
    """--dtype: auto is the run's own default (bf16 on CUDA, fp32 on CPU)."""
    return {"auto": torch.bfloat16 if device == "cuda" else torch.float32, "float32": torch.float32,
            "bfloat16": torch.bfloat16}[name]


def _peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it does not carry the parent's peak over fork+exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory_child(spec: str) -> None:
    """Load the generator and taker models (one base or two), run each once; print peak RSS, CUDA peak, weight bytes."""
    job = json.loads(spec)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = resolve_dtype(job["dtype"], device)
    before = _peak_rss_mib()
    gen = LoraModel(job["base"], job["gens"], device=device, dtype=dtype)
    takers = LoraModel(job["base"], job["takers"], device=device, dtype=dtype, share=gen if job["shared"] else None)
    for lm in (gen, takers):  # touch every weight (safetensors loads are lazy mmaps until used)
        lm.generate_each(lm.expert_vectors[:1], ["1 + 1 ="], max_new_tokens=2)
    storages = {p.untyped_storage().data_ptr(): p.untyped_storage().nbytes() for lm in (gen, takers) for p in lm.model.parameters()}
    print(json.dumps({
        "rss_mib": _peak_rss_mib() - before,
        "cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
        "weights_mib": sum(storages.values()) / 2**20,
    }))


def peak_memory(dirs: dict, dtype: str) -> dict[bool, dict]:
    """{shared: peak} for a bench's base and adapter dirs (``{base, gens, takers}``), each in a fresh process."""
    job = {**dirs, "dtype": dtype}
    out = {}
    for shared in (True, False):
        proc = subprocess.run([sys.executable, __file__, json.dumps({**job, "shared": shared})],
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, check=True)
        out[shared] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


if __name__ == "__main__":
    _memory_child(sys.argv[1])
