"""dswarm-experts on a tiny random Llama built here: clusters, training, PEFT + LoraModel loading, CLI."""
from __future__ import annotations

import json
import math
import string
from pathlib import Path

import pytest
import torch

from generators.training.cli import main
from generators.training.clusters import cluster_texts, kmeans_labels, tfidf, tfidf_words
from generators.training.experts import Recipe, train_experts
from objectives.tasks.json_task import JsonTask

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")

TOPICS = {
    "apples": "Tom has {a} apples and buys {b} more apples. How many apples does Tom have?",
    "trains": "A train drives {a} miles per hour for {b} hours on the rail. How far does the train go?",
}


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    """A 2-layer random Llama with a character-level tokenizer, saved as an HF dir."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny_base")
    special = ["<pad>", "<s>", "</s>", "<unk>"]
    vocab = {t: i for i, t in enumerate(special + sorted(set(string.printable) - set("\r\x0b\x0c")))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                     unk_token="<unk>", padding_side="left")
    hf_tok.save_pretrained(out)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture(scope="module")
def task_file(tmp_path_factory) -> Path:
    dev = []
    for i in range(12):
        for topic, text in TOPICS.items():
            a, b = i + 2, (3 * i) % 7 + 1
            dev.append({"input": text.format(a=a, b=b), "output": str(a + b if topic == "apples" else a * b)})
    path = tmp_path_factory.mktemp("task") / "toy.json"
    path.write_text(json.dumps({"name": "toy", "dev": dev, "test": dev[:4]}))
    return path


def test_clusters_split_topics_deterministically():
    texts = [t.format(a=i, b=i + 1) for i in range(10) for t in TOPICS.values()]
    groups = cluster_texts(texts, 2, seed=0)
    assert sorted(i for g in groups for i in g) == list(range(20))
    assert {frozenset(texts[i].split()[1] for i in g) for g in groups} == {frozenset({"has"}), frozenset({"train"})}
    assert cluster_texts(texts, 2, seed=0) == groups
    labels = kmeans_labels(tfidf(["same text"] * 4), 3, seed=0)
    assert sorted(set(labels.tolist())) == [0, 1, 2]  # never an empty cluster
    with pytest.raises(ValueError):
        kmeans_labels(tfidf(["a b"]), 2)


def test_tfidf_by_hand():
    """tf 1 + ln(count), idf ln((1 + n) / (1 + df)) + 1, rows L2-normalized; min_df drops words in one text."""
    texts = ["apple apple pear", "pear plum", "plum"]
    x, words = tfidf_words(texts, min_df=1)
    assert words == ["apple", "pear", "plum"]
    apple, pear = (1 + math.log(2)) * (math.log(4 / 2) + 1), math.log(4 / 3) + 1
    norm = math.hypot(apple, pear)
    expected = [[apple / norm, pear / norm, 0.0], [0.0, 2 ** -0.5, 2 ** -0.5], [0.0, 0.0, 1.0]]
    assert x.toarray().tolist() == [pytest.approx(row, abs=1e-6) for row in expected]
    x, words = tfidf_words(texts)  # min_df=2: apple is in one text only
    assert words == ["pear", "plum"]
    assert x.toarray().tolist() == [pytest.approx(row, abs=1e-6) for row in [[1, 0], [2 ** -0.5, 2 ** -0.5], [0, 1]]]
    assert tfidf_words(["of the", "a"])[0].shape == (2, 1)  # no word at all: empty rows, one cluster's worth


def test_items_without_words_cluster_by_their_form():
    """The arith task (the default): 400 dev items of four forms give four clusters of one form each
    (all but 3 items used to fall into one cluster: they were empty TF-IDF rows)."""
    from objectives.tasks.arith import ArithTask

    texts = [it.input for it in ArithTask(n_dev=400, n_test=4, seed=0).dev]
    groups = cluster_texts(texts, 4, seed=0)

    def form(text: str) -> str:
        return "chain" if "*" in text and "+" in text else next(op for op in "+-*" if op in text)

    assert [len({form(texts[i]) for i in g}) for g in groups] == [1, 1, 1, 1]
    assert {form(texts[g[0]]) for g in groups} == {"+", "-", "*", "chain"}


@pytest.mark.slow
@pytest.mark.parametrize("role", ["generator", "taker"])
def test_train_experts_writes_loadable_adapters_and_loss_goes_down(tiny_base, task_file, tmp_path, role):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from generators.models.lora_model import LoraModel

    task = JsonTask(task_file)
    groups = cluster_texts([it.input for it in task.dev], 2, seed=0)
    clusters = [[task.dev[i] for i in g] for g in groups]
    recipe = Recipe(role=role, steps=12, lr=2e-2, rank=4, alpha=8, batch_size=4, max_len=256, few_shot=1,
                    items_per_prompt=2, template="Write {n} more:\n{examples}", eval_examples=4)
    logs: list[str] = []
    results = train_experts(tiny_base, clusters, tmp_path, recipe, format_example=task.format_example,
                            names=["a", "b"], progress=False, log=logs.append)
    assert [r.name for r in results] == ["a", "b"] and len(logs) == 2 and "->" in logs[0]
    for r in results:
        assert r.loss_end < r.loss_start, r
        assert all(torch.isfinite(torch.tensor(r.losses)))
        assert (r.path / "adapter_config.json").is_file() and (r.path / "adapter_model.safetensors").is_file()
        assert json.loads((r.path / "dswarm_expert.json").read_text())["recipe"]["role"] == role
    assert not list(tmp_path.glob(".*tmp*"))  # temp dirs renamed into place

    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), results[0].path)
    assert any("lora_B" in n and p.abs().sum() > 0 for n, p in peft.named_parameters())

    lm = LoraModel(tiny_base, [r.path for r in results])
    assert lm.expert_vectors.shape[0] == 2
    assert not torch.equal(lm.expert_vectors[0], lm.expert_vectors[1])
    alone = LoraModel(tiny_base, [results[1].path])  # the second expert by itself
    lm.load(lm.expert_vectors[1])
    alone.load(alone.expert_vectors[0])
    batch = lm.tokenizer(["Question: Tom has 2 apples?\nAnswer:"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(lm.model(**batch).logits, alone.model(**batch).logits)


@pytest.mark.slow
def test_cli_k_clusters_and_cluster_files(tiny_base, task_file, tmp_path, capsys):
    main(["--base", str(tiny_base), "--task", str(task_file), "--k", "2", "--out", str(tmp_path / "gen"),
          "--steps", "2", "--batch-size", "2", "--rank", "2", "--max-len", "200", "--few-shot", "1"])
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == ["toy_cluster_0", "toy_cluster_1"]
    assert "loss" in capsys.readouterr().out
    main(["--base", str(tiny_base), "--clusters", str(task_file), "--out", str(tmp_path / "tak"),
          "--role", "taker", "--steps", "1", "--rank", "2"])
    assert [p.name for p in (tmp_path / "tak").iterdir()] == ["toy"]


@pytest.mark.parametrize("args, message", [
    (["--task", "missing.json", "--k", "2"], "task file not found: missing.json"),
    (["--clusters", "missing_0.json"], "task file not found: missing_0.json"),
    ([], "give --task"),
])
def test_cli_errors_are_one_line_exit_2(tiny_base, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        main(["--base", str(tiny_base), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and message in err and "\n" not in err


def test_cli_missing_base_is_one_line(tmp_path, task_file, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--base", str(tmp_path / "nobase"), "--task", str(task_file), "--k", "2", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "base model dir not found" in err and "\n" not in err
