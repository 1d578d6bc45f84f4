"""PEFT LoRA adapter dirs on disk: read (safetensors only, never pickle), compare, save.

Every adapter the swarm meets (generator and taker experts, the zoo's, an exported
`best/generator/`) is a dir with adapter_config.json and adapter_model.safetensors.
Two adapters share one LoRA structure only where the config fields in `_MUST_MATCH`
agree; `config_diff` names the first that does not, for a one-line error.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from peft import PeftModel
from safetensors.torch import load_file

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "config_diff", "read_adapter", "save_adapter"]

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
# LoraConfig fields that must agree for two adapters to share one LoRA structure.
_MUST_MATCH = (
    "peft_type", "r", "lora_alpha", "target_modules", "use_rslora", "use_dora", "bias",
    "fan_in_fan_out", "modules_to_save", "layers_to_transform", "rank_pattern", "alpha_pattern",
)


def read_adapter(adapter_dir: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The raw config dict and tensors of a PEFT adapter dir (safetensors only, never pickle)."""
    d = Path(adapter_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"adapter dir not found: {d}")
    cfg_path, weights = d / CONFIG_FILE, d / WEIGHTS_FILE
    if not cfg_path.is_file():
        raise FileNotFoundError(f"adapter dir {d} has no {CONFIG_FILE}")
    if not weights.is_file():
        extra = " (pickled adapter_model.bin is not loaded; convert it to safetensors)" if (d / "adapter_model.bin").exists() else ""
        raise FileNotFoundError(f"adapter dir {d} has no {WEIGHTS_FILE}{extra}")
    config = json.loads(cfg_path.read_text())
    return config, load_file(str(weights))


def _norm(value):
    return sorted(value) if isinstance(value, (list, tuple, set)) else value


def config_diff(ref: dict, other: dict) -> str | None:
    """First field that differs between two adapter configs, as text; None if compatible."""
    for key in _MUST_MATCH:
        a, b = _norm(ref.get(key)), _norm(other.get(key))
        if a != b:
            return f"{key}={b!r} (first adapter has {a!r})"
    a, b = ref.get("base_model_name_or_path"), other.get("base_model_name_or_path")
    if a and b and Path(a).exists() and Path(b).exists():
        a, b = str(Path(a).resolve()), str(Path(b).resolve())
    if a and b and a != b:
        return f"base_model_name_or_path={b!r} (first adapter has {a!r})"
    return None


def save_adapter(model: PeftModel, out_dir: str | Path, base_model_name_or_path: str | None = None) -> Path:
    """Write a trained PEFT LoRA model as an adapter dir (adapter_config.json + safetensors)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if base_model_name_or_path is not None:
        for cfg in model.peft_config.values():
            cfg.base_model_name_or_path = base_model_name_or_path
    model.save_pretrained(str(out), safe_serialization=True)
    return out
