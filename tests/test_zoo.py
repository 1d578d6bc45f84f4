import json
import threading
import time

from transformers import AutoTokenizer

from generators import zoo as zoo_mod
from generators.zoo import FAMILIES, Zoo, build_zoo, default_cache_dir


def test_layout_and_tokenizer(tiny_zoo):
    assert set(tiny_zoo.generators) == set(FAMILIES)
    assert len(tiny_zoo.takers) == 4 and len(tiny_zoo.heldout) >= 2
    assert not set(tiny_zoo.takers) & set(tiny_zoo.heldout)
    for d in [*tiny_zoo.generators.values(), *tiny_zoo.takers.values(), *tiny_zoo.heldout.values()]:
        assert (d / "adapter_config.json").is_file() and (d / "adapter_model.safetensors").is_file()
    assert (tiny_zoo.base_dir / "model.safetensors").is_file()
    tok = AutoTokenizer.from_pretrained(tiny_zoo.base_dir, local_files_only=True)
    assert tok.pad_token is not None and tok.padding_side == "left"
    text = "Write 5 new problems like these:\n1. 47+38\n2. 3*8+51\n3. 62-19\nQ: 7*46\nA: 223\n"
    ids = tok(text)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_takers_are_not_flat(tiny_zoo):
    acc = tiny_zoo.skill_matrix["takers"]
    assert set(acc) == set(tiny_zoo.takers) | set(tiny_zoo.heldout)
    spreads = [max(row.values()) - min(row.values()) for row in acc.values()]
    assert max(spreads) >= 0.2, acc  # some taker is much better at one family than another
    rows = {tuple(row[f] for f in FAMILIES) for row in acc.values()}
    assert len(rows) > 1, acc  # takers differ


def test_generators_write_their_own_family(tiny_zoo):
    gens = tiny_zoo.skill_matrix["generators"]
    dominant = {name: max(g["shares"], key=g["shares"].get) for name, g in gens.items() if name in FAMILIES}
    assert len(set(dominant.values())) == len(FAMILIES), gens
    assert all(gens[f]["valid"] >= 0.5 for f in FAMILIES), gens


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
        for kind, names in (("generators", FAMILIES), ("takers", ["t"]), ("heldout", ["h"])):
            for n in names:
                (tmp / kind / n).mkdir(parents=True)
        (tmp / "skill_matrix.json").write_text("{}")
        (tmp / "zoo.json").write_text(json.dumps({"generators": list(FAMILIES), "takers": ["t"], "heldout": ["h"]}))

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
    assert zoo_mod.recipe_key("tiny", 0) != zoo_mod.recipe_key("tiny", 1)
    assert zoo_mod.recipe_key("tiny", 0) != zoo_mod.recipe_key("default", 0)
    assert zoo_mod.recipe_key("tiny", 0) == zoo_mod.recipe_key("tiny", 0)
