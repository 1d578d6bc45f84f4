import json

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from generators.models.adapter_files import save_adapter
from generators.models.lora_model import LoraModel
from generators.prompts import few_shot_prompt
from generators.zoo import GENERATOR_TEMPLATE, TAKER_STOP, TAKER_TEMPLATE


@pytest.fixture(scope="module")
def takers(tiny_zoo):
    return LoraModel(tiny_zoo.base_dir, list(tiny_zoo.generators.values()))


def _batch(lm, texts):
    return lm.tokenizer(texts, return_tensors="pt", padding=True)


def _reference_logits(zoo, adapter_dir, batch):
    base = AutoModelForCausalLM.from_pretrained(zoo.base_dir, local_files_only=True, use_safetensors=True)
    model = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    with torch.no_grad():
        return model(**batch).logits


def _logits(lm, batch):
    with torch.no_grad():
        return lm.model(**batch).logits


def test_expert_vectors_match_dirs(takers, tiny_zoo):
    assert takers.names == [p.name for p in tiny_zoo.generators.values()]
    assert takers.expert_vectors.shape == (len(tiny_zoo.generators), takers.spec.numel)
    assert takers.expert_vectors.dtype == torch.float32


def test_in_place_load_equals_from_pretrained(takers, tiny_zoo):
    batch = _batch(takers, [TAKER_TEMPLATE.format(input="47+38"), TAKER_TEMPLATE.format(input="3*8+51")])
    ptrs = [p.data_ptr() for p in takers.model.parameters()]
    n_modules = len(list(takers.model.modules()))
    for k, adapter_dir in enumerate(tiny_zoo.generators.values()):
        takers.load(takers.expert_vectors[k])
        torch.testing.assert_close(_logits(takers, batch), _reference_logits(tiny_zoo, adapter_dir, batch))
    assert [p.data_ptr() for p in takers.model.parameters()] == ptrs  # no reload, no new tensors
    assert len(list(takers.model.modules())) == n_modules


def test_zero_vector_is_the_base_model(takers, tiny_zoo):
    batch = _batch(takers, ["Q: 12+34\nA:"])
    takers.load(torch.zeros(takers.dim))
    base = AutoModelForCausalLM.from_pretrained(tiny_zoo.base_dir, local_files_only=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(_logits(takers, batch), base(**batch).logits)


def test_exported_particle_reloads_identically(takers, tiny_zoo, tmp_path):
    g = torch.Generator().manual_seed(0)
    w = torch.rand(len(takers.names), generator=g)
    particle = (w / w.sum()) @ takers.expert_vectors
    takers.export(particle, tmp_path / "particle")
    assert json.loads((tmp_path / "particle" / "adapter_config.json").read_text())["r"] == takers.config.r
    batch = _batch(takers, ["Q: 9*12\nA:", "Q: 55-17\nA: 83"])
    takers.load(particle)
    torch.testing.assert_close(_logits(takers, batch), _reference_logits(tiny_zoo, tmp_path / "particle", batch))
    # and it is a valid adapter dir for LoraModel too
    again = LoraModel(tiny_zoo.base_dir, [tmp_path / "particle"])
    torch.testing.assert_close(again.expert_vectors[0], particle)


@pytest.mark.slow
def test_greedy_batched_equals_one_by_one(tiny_zoo):
    gens = LoraModel(tiny_zoo.base_dir, list(tiny_zoo.generators.values()))
    gens.load(gens.expert_vectors[1])
    prompts = [
        few_shot_prompt(["12+34", "5*67", "3*4+56"], 5, GENERATOR_TEMPLATE),
        few_shot_prompt(["98-76"], 3, GENERATOR_TEMPLATE),
        TAKER_TEMPLATE.format(input="47+38"),
        "",
        few_shot_prompt(["12+34", "5*67", "3*4+56", "11+22", "9*9+10"], 4, GENERATOR_TEMPLATE),
    ]
    batched = gens.generate(prompts, max_new_tokens=24, batch_size=8)
    single = [gens.generate([p], max_new_tokens=24)[0] for p in prompts]
    assert batched == single
    assert gens.generate(prompts, max_new_tokens=24, batch_size=2) == single
    assert any(batched)


@pytest.mark.slow
def test_sampling_is_seeded_and_leaves_global_rng(takers):
    prompts = [TAKER_TEMPLATE.format(input=p) for p in ["47+38", "3*8+51", "62-19", "7*46"] * 3]
    takers.load(takers.expert_vectors[0])
    state = torch.random.get_rng_state()
    a = takers.generate(prompts, max_new_tokens=6, temperature=1.5, top_p=0.95, seed=7, batch_size=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a == takers.generate(prompts, max_new_tokens=6, temperature=1.5, top_p=0.95, seed=7, batch_size=5)
    others = [takers.generate(prompts, max_new_tokens=6, temperature=1.5, seed=s, batch_size=5) for s in (8, 9)]
    assert any(o != a for o in others)


def test_stop_truncates_and_empty_prompts(takers):
    takers.load(takers.expert_vectors[0])
    out = takers.generate([TAKER_TEMPLATE.format(input="12+34")] * 2, max_new_tokens=12, stop=TAKER_STOP)
    assert all(TAKER_STOP not in o for o in out)
    assert takers.generate([], max_new_tokens=5) == []


def test_mismatched_rank_names_the_dir(tiny_zoo, tmp_path):
    base = AutoModelForCausalLM.from_pretrained(tiny_zoo.base_dir, local_files_only=True)
    other = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    bad = save_adapter(other, tmp_path / "rank2")
    first = next(iter(tiny_zoo.generators.values()))
    with pytest.raises(ValueError, match=r"rank2.*\br="):
        LoraModel(tiny_zoo.base_dir, [first, bad])


def test_missing_dir_is_file_not_found(tiny_zoo, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        LoraModel(tiny_zoo.base_dir, [tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        LoraModel(tiny_zoo.base_dir, [tmp_path / "empty"])


def test_chat_template_wraps_prompt_as_user_message(takers):
    takers.load(takers.expert_vectors[0])
    plain = takers.generate(["Q: 12+34\nA:"], max_new_tokens=6, stop=TAKER_STOP)
    takers.tokenizer.chat_template = "{{ bos_token }}{% for m in messages %}Q: {{ m['content'] }}\n{% endfor %}A:"
    takers.chat_template = True
    try:
        assert takers.generate(["12+34"], max_new_tokens=6, stop=TAKER_STOP) == plain
    finally:
        takers.chat_template = False
        takers.tokenizer.chat_template = None


def test_no_adapters_is_the_plain_base(tiny_zoo, takers):
    plain = LoraModel(tiny_zoo.base_dir, [])
    assert plain.dim == 0 and plain.expert_vectors.shape == (0, 0) and plain.names == []
    takers.load(torch.zeros(takers.dim))
    prompts = [TAKER_TEMPLATE.format(input="12+34")]
    assert plain.generate(prompts, max_new_tokens=5) == takers.generate(prompts, max_new_tokens=5)
    with pytest.raises(ValueError, match="without adapter"):
        plain.load(torch.zeros(3))
