"""The typed config (swarm/config/) and components by `_target_`: the schema, and parts from outside the repo."""
from __future__ import annotations

import dataclasses
import json
import textwrap

import pytest
from omegaconf import OmegaConf

from swarm.config import check, compose, instantiate
from swarm.config.registry import resolve, settings_of
from swarm.config.schema import CORES, SCHEMAS
from swarm.runtime.errors import ConfigError
from tests.cli import REPO, dswarm, read_jsonl

GROUPS = ("task", "generator", "taker", "judge", "verifier", "objective", "method", "pso", "logger")
OPTIONS = sorted((g, p.stem) for g in GROUPS for p in (REPO / "conf" / g).glob("*.yaml"))


def composed(*overrides: str):
    return compose(list(overrides))


@pytest.mark.slow
@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_is_typed_by_its_schema_or_its_targets_signature(group, option):
    """A plain group's yaml starts from one of the schemas of its group; a component's yaml gives the
    group's core settings, every setting its target's signature requires, and no other (swarm/config/registry.py)."""
    node = composed(f"{group}={option}")[group]
    if group not in CORES:
        assert OmegaConf.get_type(node) in SCHEMAS[group].values(), OmegaConf.get_type(node)
        return
    own, _ = settings_of(resolve(node._target_, group), CORES[group].RUNTIME)
    core = {f.name for f in dataclasses.fields(CORES[group])} | {"_target_", "_partial_"}
    required = {name for name, p in own.items() if p.default is p.empty}
    assert required - core <= set(node) and set(node) - core <= set(own), (sorted(node), sorted(own))


@pytest.mark.slow
def test_the_default_config_checks_into_the_schema():
    typed = check(composed())
    assert typed.pso.inertia == 0.2 and typed.objective.weights["difficulty"] == 1.0
    assert type(typed.judge).__name__ == "JudgeConf" and typed.method.name == "data_swarms"


@pytest.mark.slow
def test_a_value_of_the_wrong_type_fails_while_composing():
    with pytest.raises(Exception, match="pso.inertia"):
        composed("pso.inertia=fast")


@pytest.mark.parametrize("overrides, message", [
    (["pso.floor=2"], "pso.floor: must be in [0, pso.step_length=0.75], got 2"),
    (["pso.inertia=1.5"], "pso.inertia: must be in [0, 1], got 1.5"),
    (["pso.social=-0.1"], "pso.social: must be a finite number >= 0, got -0.1"),
    (["pso.inertia=0", "pso.cognitive=0", "pso.social=0", "pso.repel=0"], "pso.inertia, pso.cognitive, pso.social, pso.repel: all are 0"),
    (["pso.decay=0"], "pso.decay: must be in (0, 1], got 0"),
    (["pso.max_steps=0"], "pso.max_steps: must be in [1, 999999], got 0"),
    (["pso.max_steps=1000000"], "pso.max_steps: must be in [1, 999999], got 1000000"),
    (["pso.fused=yes"], "pso.fused: must be auto, true or false, got 'yes'"),
    (["pso.n_particles=1"], "pso.n_particles: must be >= 2, got 1"),
    (["select.candidates=0"], "select.candidates: must be >= 1, got 0"),
    (["select.n_items=0"], "select.n_items: must be >= 1, got 0"),
    (["objective.validity=divide"], "objective.validity: must be multiply or none, got 'divide'"),
    (["objective.weights.difficulty=0"], "objective.weights: all weights are zero"),
    (["+objective.weights.mine=1"], "objective.weights.mine: unknown objective"),
    (["method=random_search", "method.noise=-1"], "method.noise: input should be greater than or equal to 0, got -1"),
    (["method=random_search", "method.noise=inf"], "method.noise: input should be a finite number, got inf"),
    (["method=adversarial", "method.pool_size=0"], "method.pool_size: input should be greater than or equal to 1, got 0"),
    (["method=ties", "+method.alpha=1"], "method.alpha: not a setting of swarm.search.methods.merges.ties (its settings: "
                                         "combination, density, weights)"),
    (["method=ties", "method.density=abc"], "method.density: input should be a valid number"),
    (["logger.mode=sometimes"], "logger.mode: must be null, online, offline or disabled, got 'sometimes'"),
    (["threads=0"], "threads: must be >= 1, got 0"),
    (["+generator.token=abc"], "generator.token: API keys are never read from the config"),
    (["objective._target_=nowhere.Objective"], "objective._target_: cannot import 'nowhere.Objective'"),
])
@pytest.mark.slow
def test_rules_name_the_setting(overrides, message):
    with pytest.raises(ConfigError) as err:
        check(composed(*overrides))
    assert str(err.value).startswith(message), str(err.value)


def test_the_pso_takes_exactly_the_schema_keys():
    """The PSO's settings are written once (the schema's PSOConf): PSO's keyword arguments are its fields
    but the run's own (RUN_ONLY), and the run passes the composed node as they are."""
    import inspect

    from swarm.config import settings
    from swarm.config.search import PSOConf
    from swarm.search.pso import PSO

    params = {n for n, p in inspect.signature(PSO).parameters.items() if p.kind is p.KEYWORD_ONLY} - {"seed"}
    fields = {f.name for f in dataclasses.fields(PSOConf)} - set(PSOConf.RUN_ONLY)
    assert params == fields
    assert set(settings(composed().pso)) == fields
    assert set(PSOConf.RUN_ONLY) == {"n_particles", "include_base"}


@pytest.mark.slow
def test_a_component_of_your_own_may_weight_an_objective():
    typed = check(composed("+objective.components.mine._target_=builtins.len", "+objective.weights.mine=1"))
    assert typed.objective.weights["mine"] == 1.0


def test_run_only_settings_are_not_passed_to_the_target():
    """judge.max_missing_fraction is the run's, the objective's name too; the rest reaches the class."""
    cfg = composed("objective=mixed")
    objective = instantiate(cfg.objective, "objective")
    assert type(objective).__name__ == "WeightedSum" and objective.weights["novelty"] == 0.2
    assert type(instantiate(cfg.judge, "judge")).__name__ == "VerifierJudge"
    task = instantiate(cfg.task, "task")
    assert type(task).__name__ == "ArithTask" and len(task.dev) == cfg.task.n_dev


def test_a_target_that_is_missing_names_the_setting():
    cfg = composed("judge._target_=objectives.judging.judges.NoSuchJudge")
    with pytest.raises(ConfigError, match=r"^judge\._target_: 'objectives.judging.judges.NoSuchJudge' is not a function or class"):
        instantiate(cfg.judge, "judge")


@pytest.mark.slow
def test_the_run_gives_a_target_its_live_objects_by_parameter_name():
    """hf_llm's judge takes ``generate`` (a parameter before ``*``): the run passes it; its settings come from the node."""
    from swarm.config.registry import runtime_arguments

    cfg = composed("judge=hf_llm", "judge.model=unused", "judge.reference=without")
    available = {"generate": lambda prompts: ["7"] * len(prompts), "usage": object()}
    assert list(runtime_arguments(cfg.judge, "judge", available)) == ["generate"]  # not usage: the hf_llm judge has none
    judge = instantiate(cfg.judge, "judge", **runtime_arguments(cfg.judge, "judge", available))
    assert type(judge).__name__ == "HFLLMJudge" and "Reference answer" not in judge.template


@pytest.mark.slow
def test_the_hf_llm_judges_reply_budget_reaches_its_model(tiny_zoo, monkeypatch):
    """judge.max_new_tokens (8 by default: 4 cut SmolLM2's "Rating: 7" to "Rating: ", a missing score)."""
    import torch

    import swarm.build as build

    budgets = []

    class Model:
        def generate(self, prompts, max_new_tokens, batch_size, max_batch_tokens):
            budgets.append(max_new_tokens)
            assert max_batch_tokens == 65536  # batching.max_batch_tokens bounds the judge's forward passes too
            return ["Rating: 7"] * len(prompts)

    monkeypatch.setattr(build, "plain_model", lambda *args, **kwargs: Model())
    for extra, budget in (((), 8), (("judge.max_new_tokens=12",), 12)):
        cfg = composed("judge=hf_llm", f"judge.model={tiny_zoo.base_dir}", *extra)
        check(cfg)
        assert build.build_judge(cfg, "cpu", torch.float32).generate(["q"]) == ["Rating: 7"] and budgets[-1] == budget
    with pytest.raises(ConfigError, match=r"^judge\.max_new_tokens: must be >= 1, got 0"):
        check(composed("judge=hf_llm", f"judge.model={tiny_zoo.base_dir}", "judge.max_new_tokens=0"))


def test_every_schema_is_a_dataclass_with_no_secret_field():
    for options in SCHEMAS.values():
        for schema in options.values():
            assert dataclasses.is_dataclass(schema)
            assert not [f.name for f in dataclasses.fields(schema) if "key" in f.name and f.name != "api_key_env"]


# ------------------------------------------------------------------ parts from outside the repo, through the CLI

JUDGE = '''
class ConstantJudge:
    """Scores every answer ``value``: a judge no built-in option could be."""

    def __init__(self, value: float) -> None:
        self.value, self.failures = value, 0

    def score(self, items, answers):
        return [self.value] * len(answers)
'''

OBJECTIVE = '''
class Validity:
    """One value per particle: the fraction of its items that are valid."""

    def __call__(self, inputs):
        return inputs.valid.float().mean(dim=1)
'''


@pytest.mark.slow
def test_a_judge_and_an_objective_from_files_outside_the_repo(tiny_zoo, tmp_path, monkeypatch):
    """`_target_` reaches classes the repo has never seen: no edit here, only PYTHONPATH."""
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "my_judge.py").write_text(textwrap.dedent(JUDGE))
    (parts / "my_objective.py").write_text(textwrap.dedent(OBJECTIVE))
    monkeypatch.setenv("PYTHONPATH", f"{parts}:{REPO}")
    run_dir = tmp_path / "run"
    dswarm(
        "judge._target_=my_judge.ConstantJudge", "+judge.value=0.25",
        "+objective.components.validity._target_=my_objective.Validity",
        "objective.weights.difficulty=0", "+objective.weights.validity=1",
        "pso.max_steps=1", "logger=none", run_dir=run_dir,
    )
    scores = [s for row in read_jsonl(run_dir / "data" / "step_001.jsonl") if row["valid"] for s in row["scores"].values()]
    assert scores and set(scores) == {0.25}  # every score is the user's judge's
    step = read_jsonl(run_dir / "metrics.jsonl")[0]
    assert step["objective/validity"] == pytest.approx(step["valid_fraction"])  # the user's component, logged
    assert step["utility"] == pytest.approx([v * v for v in step["valid_fraction"]])  # weight 1 x valid fraction
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["weights"]["validity"] == 1.0 and summary["heldout"]["objective"]["validity"] >= 0


def test_a_finished_run_is_composed_again_into_the_schema(tmp_path):
    """compose_run: the typed config of a run dir from its saved overrides (hydra.* ones are the launcher's)."""
    from swarm.config import compose_run

    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- method=adversarial\n- seed=3\n- hydra.job.chdir=false\n")
    cfg = compose_run(tmp_path)
    assert cfg.method.name == "adversarial" and cfg.seed == 3 and list(cfg.taker.models)[0] == "lora:add"
    assert type(check(cfg).taker).__name__ == "TakerConf"



METHOD = '''
from typing import Annotated

from annotated_types import Interval

from swarm.search.methods.fixed import pick_best


def scaled_soup(ctx, *, scale: Annotated[float, Interval(ge=0, le=2)]):
    """The experts' average, scaled: one candidate, scored once."""
    return pick_best(ctx, scale * ctx.setup.writer.model.expert_vectors.mean(dim=0, keepdim=True))
'''


@pytest.mark.slow
def test_a_method_with_a_setting_is_one_module_and_one_yaml(tiny_zoo, tmp_path, monkeypatch):
    """The method's keyword-only parameter is its setting: typed, ruled and reported by name, no schema to add."""
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "my_method.py").write_text(textwrap.dedent(METHOD))
    (tmp_path / "conf" / "method").mkdir(parents=True)
    (tmp_path / "conf" / "method" / "scaled_soup.yaml").write_text(
        "defaults:\n  - /schema/method/core@_here_\n_target_: my_method.scaled_soup\nname: scaled_soup\nscale: 0.5\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path / 'parts'}:{REPO}")
    args = (f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "method=scaled_soup", "logger=none")
    bad = dswarm(*args, "method.scale=3", run_dir=tmp_path / "bad", check=False)
    assert bad.returncode == 2 and bad.stderr.strip() == "dswarm: error: method.scale: input should be less than or equal to 2, got 3"
    dswarm(*args, run_dir=tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["method"] == "scaled_soup" and summary["steps"] == 1
