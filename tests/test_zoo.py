import json
import random
import threading
import time

import pytest
from transformers import AutoTokenizer

from generators.zoo import FORMS, RECIPES, Zoo, build_zoo, default_cache_dir, form_of, main, recipe_key, sample
from generators.zoo import build as zoo_mod
from generators.zoo.problems import DEV_FORMS, Fresh, expert_list
from generators.zoo.recipe import cluster_mix, dev_clusters, task_of
from generators.zoo.skills import OTHER, generator_stats
from objectives.tasks.arith import FAMILIES, family_of

CLUSTERS = list(FAMILIES)  # the arith task's dev items cluster into its four families (test_dev_clusters_...)


def test_layout_and_tokenizer(tiny_zoo):
    assert list(tiny_zoo.generators) == CLUSTERS and list(tiny_zoo.lora_takers) == CLUSTERS
    assert len(tiny_zoo.takers) == 4 and len(tiny_zoo.heldout) >= 3
    assert not set(tiny_zoo.takers) & set(tiny_zoo.heldout)
    for d in [*tiny_zoo.generators.values(), *tiny_zoo.lora_takers.values()]:
        assert (d / "adapter_config.json").is_file() and (d / "adapter_model.safetensors").is_file()
    for d in [tiny_zoo.base_dir, *tiny_zoo.takers.values(), *tiny_zoo.heldout.values()]:
        assert (d / "model.safetensors").is_file() and (d / "tokenizer.json").is_file()  # every taker is its own model
    tok = AutoTokenizer.from_pretrained(tiny_zoo.base_dir, local_files_only=True)
    assert tok.pad_token is not None and tok.padding_side == "left"
    text = "Write 5 new problems like these:\n1. 47+38\n2. 3*8+51\n3. 62-19\nQ: 7*46\nA: 223\n"
    ids = tok(text)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_takers_are_different_models_and_every_taker_has_a_dev_accuracy(tiny_zoo):
    """Held-out takers differ from every search taker in size or seed (docs/zoo.md, principle 4); the skill matrix
    has a dev accuracy for every taker, LoRA takers included (principle 6)."""
    recipe = json.loads((tiny_zoo.root / "zoo.json").read_text())["recipe"]
    search = {(s["hidden"], s["layers"], s["seed"]) for s in recipe["takers"].values()}
    assert all((h["hidden"], h["layers"], h["seed"]) not in search for h in recipe["heldout"].values())
    m = tiny_zoo.skill_matrix
    everyone = [*tiny_zoo.takers, *tiny_zoo.heldout, *(f"lora:{c}" for c in tiny_zoo.lora_takers)]
    assert list(m["dev_accuracy"]) == everyone and all(0 <= a <= 1 for a in m["dev_accuracy"].values())
    assert all(list(m["forms"][n]) == list(FORMS) and list(m["dev_by_cluster"][n]) == CLUSTERS for n in everyone)
    # the dev accuracy is the mean of the cluster accuracies (the clusters are equal in size)
    for n in everyone:
        assert m["dev_accuracy"][n] == pytest.approx(sum(m["dev_by_cluster"][n].values()) / 4, abs=0.002)


def test_dev_clusters_partition_the_task_dev_items_into_its_families():
    recipe = RECIPES["tiny"]
    dev = [item.input for item in task_of(recipe).dev]
    clusters = dev_clusters(recipe, 0)
    assert list(clusters) == CLUSTERS
    assert sorted(p for items in clusters.values() for p in items) == sorted(dev)
    assert all({family_of(p) for p in items} == {name} for name, items in clusters.items())
    assert cluster_mix(clusters["mix"]) == {"d*d+dd": 50.0}


def test_forms():
    rng = random.Random(0)
    for form in FORMS:
        assert all(form_of(sample(form, rng)) == form for _ in range(50)), form
    assert all(int(a) >= int(b) for a, b in (sample("dd-dd", rng).split("-") for _ in range(200)))
    assert all(2 <= int(sample("d*d", rng)[0]) <= 9 for _ in range(100))
    assert form_of("47+38") == "dd+dd" and form_of("3*8+51") == "d*d+dd" and form_of(" 7 * 46 ") == "d*dd"
    assert form_of("nope") is None and form_of("4+") is None
    assert set(DEV_FORMS) == {form_of(item.input) for item in task_of(RECIPES["default"]).dev}
    for bad in ("dd", "dx+d", "d+d+d+d", "+d"):
        with pytest.raises(ValueError, match="not a problem form"):
            sample(bad, rng)


def test_fresh_problems_are_never_task_items():
    products = [f"{a}*{b}" for a in range(2, 10) for b in range(2, 10)]
    rng = random.Random(0)
    assert {Fresh([p for p in products if p != "7*8"])("d*d", rng) for _ in range(20)} == {"7*8"}
    with pytest.raises(ValueError, match="no problem outside"):
        Fresh(products)("d*d", rng)
    fresh = Fresh(["12+34"])
    assert {fresh.weighted({"d*d": 1.0, "dd+dd": 0.0}, rng) for _ in range(30)} <= set(products)


def test_an_expert_list_shows_the_pool_and_continues_with_the_cluster():
    pool, cluster = [f"{a}+{a}" for a in range(10, 30)], ["3*4", "5*6", "7*8", "9*2", "2*3", "4*5", "6*7"]
    for seed in range(20):
        prompt, target = expert_list(pool, cluster, random.Random(seed))
        shown = [line.split(". ", 1)[1] for line in prompt.splitlines()[1:-1]]
        written = [line.split(". ")[-1].strip() for line in target.splitlines()]
        assert prompt.startswith("Write ") and 2 <= len(shown) <= 5 and set(shown) <= set(pool)
        assert prompt.endswith(f"{len(shown) + 1}.") and 3 <= len(written) <= 6 and set(written) <= set(cluster)


def test_generator_stats_by_hand():
    clusters = {"add": ["11+22", "33+44"], "mul": ["3*45"]}
    texts = [" 11+22\n6. 5*67\n7. 12+13\n8. nope\n9. 99-98", " 12+13\n6. 4*5"]
    s = generator_stats(texts, clusters)
    # 10 slots: 7 items parse ... 6 valid (11+22, 5*67, 12+13, 99-98, 12+13, 4*5), 3 missing slots in list 2
    assert s["valid"] == 0.6 and s["unique"] == round(5 / 6, 3) and s["dev_copies"] == round(1 / 6, 3)
    assert s["shares"] == {"add": 0.5, "mul": round(1 / 6, 3), OTHER: round(2 / 6, 3)}


def test_dswarm_zoo_prints_every_dev_accuracy(tiny_zoo, capsys):
    assert main(["--size", "tiny", "--cache-dir", str(default_cache_dir())]) == 0
    out = capsys.readouterr().out
    assert "| taker | dev | dev add | dev sub | dev mul | dev mix |" in out
    for name, acc in tiny_zoo.skill_matrix["dev_accuracy"].items():
        assert f"| {name}" in out and f"{acc:.2f}" in out.split(f"| {name}")[1].splitlines()[0]


def test_cached_zoo_is_not_rebuilt(tiny_zoo, monkeypatch):
    marker = tiny_zoo.root / "zoo.json"
    mtime = marker.stat().st_mtime_ns
    monkeypatch.setattr(zoo_mod, "_build", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rebuilt")))
    t = time.perf_counter()
    again = build_zoo("tiny", cache_dir=default_cache_dir())
    assert time.perf_counter() - t < 1.0
    assert again == tiny_zoo and marker.stat().st_mtime_ns == mtime
    assert json.loads(marker.read_text())["seconds"]["total"] > 0


def _fake_build(calls):
    def build(tmp, final, size, seed):
        calls.append(seed)
        time.sleep(0.3)
        for kind, names in (("generator/experts", CLUSTERS), ("takers", ["t"]), ("heldout", ["h"]), ("lora_takers", ["l"])):
            for n in names:
                (tmp / kind / n).mkdir(parents=True)
        (tmp / "skill_matrix.json").write_text("{}")
        (tmp / "zoo.json").write_text(json.dumps({"generators": CLUSTERS, "takers": ["t"], "heldout": ["h"],
                                                  "lora_base": "t", "lora_takers": ["l"], "clusters": {}}))

    return build


def test_concurrent_builders_build_once_and_force_rebuilds(tmp_path, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(zoo_mod, "_build", _fake_build(calls))
    results: list[Zoo] = []
    threads = [threading.Thread(target=lambda: results.append(build_zoo("tiny", 3, tmp_path))) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert calls == [3] and len({z.root for z in results}) == 1
    assert results[0].root.parent == tmp_path / "zoo" and "tiny-seed3" in results[0].root.name
    build_zoo("tiny", 3, tmp_path, force=True)
    assert calls == [3, 3]
    assert [p.name for p in (tmp_path / "zoo").iterdir() if p.name.startswith(".")] == []  # no temp dirs left


def test_recipe_key_depends_on_recipe_and_version(monkeypatch):
    assert recipe_key("tiny", 0) != recipe_key("tiny", 1)
    assert recipe_key("tiny", 0) != recipe_key("default", 0)
    assert recipe_key("tiny", 0) == recipe_key("tiny", 0)
    before = recipe_key("tiny", 0)
    monkeypatch.setattr("generators.zoo.recipe.RECIPE_VERSION", 2)
    assert recipe_key("tiny", 0) != before  # a v2 cache is never reused


def test_a_few_shot_pool_of_other_dev_items_is_named_in_one_warning(tiny_zoo, caplog):
    from generators.sources.zoo import zoo_generators
    from objectives.tasks.arith import ArithTask

    with caplog.at_level("WARNING", logger="generators.sources.zoo"):
        zoo_generators(ArithTask(n_dev=40, seed=0), 0, size="tiny", zoo_seed=0)  # the first 40 of the zoo's 200
        assert caplog.records == []
        zoo_generators(ArithTask(n_dev=40, seed=5), 0, size="tiny", zoo_seed=0)
    (record,) = caplog.records
    distinct = len({item.input for item in ArithTask(n_dev=200, seed=0).dev})  # 197: the dev set repeats 3 items
    assert record.getMessage().startswith(
        f"generator=zoo: 40 of the task's 40 dev items (its few-shot pool) are not among the {distinct} dev items the "
        "zoo's experts were clustered from")
