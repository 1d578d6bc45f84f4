import json
import random
import threading
import time

from transformers import AutoTokenizer

from generators.zoo import build as zoo_mod
from generators.zoo import BINS, CLUSTERS, HARD, Zoo, bin_of, build_zoo, default_cache_dir, recipe_key, sample


def test_layout_and_tokenizer(tiny_zoo):
    assert set(tiny_zoo.generators) == set(CLUSTERS)
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


def test_takers_are_different_models(tiny_zoo):
    """Held-out takers differ from every search taker in size or seed (docs/zoo.md, principle 4)."""
    recipe = json.loads((tiny_zoo.root / "zoo.json").read_text())["recipe"]
    search = {(s["hidden"], s["layers"], s["seed"]) for s in recipe["takers"].values()}
    assert all((h["hidden"], h["layers"], h["seed"]) not in search for h in recipe["heldout"].values())
    acc = tiny_zoo.skill_matrix["takers"]
    assert set(acc) == set(tiny_zoo.takers) | set(tiny_zoo.heldout)
    assert all(set(row) == set(BINS) for row in acc.values())


def test_bins_are_the_axes():
    rng = random.Random(0)
    for b in BINS:
        assert all(bin_of(sample(b, rng)) == b for _ in range(50)), b
    assert bin_of("4+8") == "small" and bin_of("3*5") == "mul" and bin_of("7*46") == "big+mul"
    assert bin_of("5-1+3") == "chain" and bin_of("3*8+51") == "big+mul+chain" and bin_of("nope") is None
    assert set(HARD) == {b for b in BINS if b.count("+") >= 1} and not set(HARD) & set(CLUSTERS)


def test_generators_write_their_own_cluster(tiny_zoo):
    gens = tiny_zoo.skill_matrix["generators"]
    for c in CLUSTERS:
        assert max(gens[c]["shares"], key=gens[c]["shares"].get) == c, gens[c]
        assert gens[c]["valid"] >= 0.5, gens[c]


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
        (tmp / "zoo.json").write_text(json.dumps({"generators": list(CLUSTERS), "takers": ["t"], "heldout": ["h"],
                                                  "lora_base": "t", "lora_takers": ["l"]}))

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


def test_recipe_key_depends_on_recipe():
    assert recipe_key("tiny", 0) != recipe_key("tiny", 1)
    assert recipe_key("tiny", 0) != recipe_key("default", 0)
    assert recipe_key("tiny", 0) == recipe_key("tiny", 0)
