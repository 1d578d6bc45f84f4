"""Bad configuration through the real `dswarm` CLI: one line naming the setting, exit 2, no traceback.

Each case is one command line; most fail before torch loads, while Hydra composes
the config (a typed setting given another type, an unknown key) or when
swarm.config.check turns it into the typed schema (ranges, files, environment). The same cases regenerate the table of docs/reliability.md:

    python -m tests.test_bad_input            # rewrites the table between its markers
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.cli import DSWARM, REPO, SMALL, env

Paths = dict[str, str]


@dataclass(frozen=True)
class Case:
    name: str  # what is wrong, in words (the docs table's first column)
    args: Callable[[Paths], list[str]]  # overrides, given the prepared paths
    setting: str  # the setting the message must name
    stage: str = "schema"  # where it fails: argv (parsing the command line: only the CLI knows which argument), hydra
    #                        (composition), schema (swarm.config.check), build (model load), run
    cli: bool = True  # also through the CLI in the tests (every case is in the docs table, and
    #                   every hydra/schema case is also checked in-process, which is fast)
    own_run_dir: bool = False  # the case sets hydra.run.dir itself
    non_root: bool = False  # only meaningful when not root (root writes into a mode-555 dir)


def hf(p: Paths, *adapters: str) -> list[str]:
    return ["generator=hf", f"generator.base={p['base']}", f"generator.adapters=[{','.join(adapters)}]"]


def json_task(path: str) -> list[str]:
    return ["task=json", f"task.path={path}"]


OPENAI = ["judge=openai", "judge.base_url=http://127.0.0.1:9/v1", "judge.model=m"]

CASES = [
    Case("unknown option", lambda p: ["pso.intertia=0.3"], "pso.intertia", stage="hydra"),
    Case("unknown top-level key", lambda p: ["bogus.key=1"], "bogus.key", stage="hydra", cli=False),
    Case("unknown config group option", lambda p: ["objective=bogus"], "objective", stage="hydra", cli=False),
    Case("negative objective weight", lambda p: ["objective.weights.difficulty=-1"], "objective.weights.difficulty"),
    Case("all-zero objective weights", lambda p: ["objective.weights.difficulty=0"], "objective.weights"),
    Case("NaN objective weight", lambda p: ["objective=mixed", "objective.weights.novelty=nan"], "objective.weights.novelty", cli=False),
    Case("unknown objective in weights", lambda p: ["+objective.weights.fun=1"], "objective.weights.fun", cli=False),
    Case("pso.inertia out of range", lambda p: ["pso.inertia=1.5"], "pso.inertia"),
    Case("pso.inertia not a number", lambda p: ["pso.inertia=abc"], "pso.inertia", stage="hydra"),
    Case("export.n_items not an integer", lambda p: ["export.n_items=1.5"], "export.n_items", stage="hydra", cli=False),
    Case("negative pso.cognitive", lambda p: ["pso.cognitive=-0.1"], "pso.cognitive", cli=False),
    Case("all PSO weights zero", lambda p: ["pso.inertia=0", "pso.cognitive=0", "pso.social=0", "pso.repel=0"], "pso.inertia", cli=False),
    Case("pso.decay = 0", lambda p: ["pso.decay=0"], "pso.decay", cli=False),
    Case("pso.floor above step_length", lambda p: ["pso.floor=2"], "pso.floor", cli=False),
    Case("pso.step_length = 0", lambda p: ["pso.step_length=0"], "pso.step_length", cli=False),
    Case("pso.step_length huge (positions overflow)", lambda p: ["pso.step_length=1e300"], "pso.step_length", cli=False),
    Case("objective weight huge (utility overflows)", lambda p: ["objective.weights.difficulty=1e300"], "objective.weights.difficulty"),
    Case("pso.max_steps = 0", lambda p: ["pso.max_steps=0"], "pso.max_steps"),
    Case("pso.patience = 0", lambda p: ["pso.patience=0"], "pso.patience", cli=False),
    Case("pso.fused not auto/true/false", lambda p: ["pso.fused=maybe"], "pso.fused", cli=False),
    Case("pso.n_particles fewer than the experts", lambda p: ["pso.n_particles=2"], "pso.n_particles", stage="run"),
    Case("select.n_items = 0", lambda p: ["select.n_items=0"], "select.n_items", cli=False),
    Case("objective.validity not multiply/none", lambda p: ["objective.validity=maybe"], "objective.validity", cli=False),
    Case("fewer than 2 particles", lambda p: hf(p, p["gen0"]), "generator.adapters"),
    Case("required path not given (???)", lambda p: ["generator=hf", f"generator.adapters=[{p['gen0']},{p['gen1']}]"], "generator.base", cli=False),
    Case("generator.base does not exist", lambda p: ["generator=hf", f"generator.base={p['tmp']}/nope", f"generator.adapters=[{p['gen0']},{p['gen1']}]"], "generator.base"),
    Case("adapter dir does not exist", lambda p: hf(p, p["gen0"], f"{p['tmp']}/nope"), "generator.adapters[1]"),
    Case("pickled adapter (.bin, no safetensors)", lambda p: hf(p, p["gen0"], p["bin_adapter"]), "generator.adapters[1]", cli=False),
    Case("adapters that do not fit the base", lambda p: hf(p, p["wide"], p["wide"]), "generator.adapters", stage="build"),
    Case("adapters that do not fit each other", lambda p: hf(p, p["gen0"], p["other_rank"]), "generator.adapters", stage="build", cli=False),
    Case("taker adapter dir does not exist", lambda p: ["taker=hf", f"taker.base={p['base']}", f"taker.adapters=[{p['tmp']}/nope]", f"taker.heldout=[{p['gen0']}]"], "taker.adapters[0]", cli=False),
    Case("task.path does not exist", lambda p: json_task(f"{p['tmp']}/nope.json"), "task.path"),
    Case("empty task file", lambda p: json_task(p["empty_task"]), "task.path"),
    Case("task file is not JSON", lambda p: json_task(p["not_json"]), "task.path", cli=False),
    Case("task file without a dev list", lambda p: json_task(p["no_dev"]), "task.path"),
    Case("task file with an empty dev list", lambda p: json_task(p["empty_dev"]), "task.path", cli=False),
    Case("task row without input", lambda p: json_task(p["bad_row"]), "task.path", cli=False),
    Case("generator.items_per_prompt = 0", lambda p: ["generator.items_per_prompt=0"], "generator.items_per_prompt", cli=False),
    Case("generator.top_p = 0", lambda p: ["generator.top_p=0"], "generator.top_p", cli=False),
    Case("task.n_dev = 0", lambda p: ["task.n_dev=0"], "task.n_dev", cli=False),
    Case("export.n_items = 0", lambda p: ["export.n_items=0"], "export.n_items", cli=False),
    Case("unknown dtype", lambda p: ["dtype=float8"], "dtype", cli=False),
    Case("judge.max_missing_fraction > 1", lambda p: ["judge.max_missing_fraction=1.5"], "judge.max_missing_fraction", cli=False),
    Case("API key env var not set", lambda p: [*OPENAI, "judge.api_key_env=DSWARM_UNSET_KEY"], "judge.api_key_env", cli=False),
    Case("API key in the config", lambda p: [*OPENAI, "+judge.api_key=sk-in-config"], "judge.api_key", cli=False),
    Case("a _target_ that cannot be imported", lambda p: ["judge._target_=nowhere.Judge"], "judge._target_"),
    Case("taker.answer not line/reasoning", lambda p: ["taker.answer=essay"], "taker.answer", cli=False),
    Case("judge.reference not with/without", lambda p: [*OPENAI, "judge.reference=maybe"], "judge.reference", cli=False),
    Case("verifier API key env var not set", lambda p: ["verifier=openai", "verifier.base_url=http://127.0.0.1:9", "verifier.model=m",
                                                      "verifier.api_key_env=DSWARM_UNSET_KEY"], "verifier.api_key_env", cli=False),
    Case("task.answer_extract regex does not compile", lambda p: [*json_task(p["ok_task"]), "task.answer_extract='regex:('"], "task.answer_extract", cli=False),
    Case("method.replace_fraction > 1", lambda p: ["method=adversarial", "method.replace_fraction=1.5"], "method.replace_fraction", cli=False),
    Case("run dir under a regular file", lambda p: [f"hydra.run.dir={p['a_file']}/run"], "hydra.run.dir", stage="hydra", own_run_dir=True),
    Case("read-only run dir", lambda p: [f"hydra.run.dir={p['read_only']}/run"], "hydra.run.dir", stage="hydra", own_run_dir=True, non_root=True),
    Case("unknown zoo taker", lambda p: ["taker.models=[nobody]"], "taker.models", stage="build", cli=False),
    Case("held-out taker that is also a search taker", lambda p: ["taker.heldout=[t1,h1]"], "taker.heldout[0]", stage="build"),
    Case("a taker.models entry that is not a model", lambda p: [f"taker.models=[t1,{p['not_a_model']}]"], "taker.models[1]", stage="build"),
    Case("the zoo generator on a task that requires answers", lambda p: json_task(p["ok_task"]), "generator", stage="build"),
    Case("task without answers", lambda p: [*hf(p, p["gen0"], p["gen1"]), *json_task(p["no_answers"])], "task.path", stage="build"),
    Case("reference judge on a task without answers", lambda p: [*hf(p, p["gen0"], p["gen1"]), *json_task(p["no_answers"]),
                                                                "task.require_answer=false", "judge=reference"], "judge", stage="build"),
    Case("logger.mode=online without a W&B key", lambda p: ["logger=wandb", "logger.mode=online"], "logger.mode"),
    Case("an objective _target_ that is a function", lambda p: ["objective._target_=objectives.metrics.difficulty_of"],
         "objective._target_", stage="build"),
    Case("generator.chat_template on a model without one", lambda p: ["generator.chat_template=true"], "generator.chat_template",
         stage="build"),
    Case("an override that does not parse, after good ones", lambda p: ["pso.inertia=0.3", "objective.weights.difficulty=[1,"],
         "objective.weights.difficulty", stage="argv"),
    Case("run dir whose log file cannot be written", lambda p: [f"hydra.run.dir={p['log_is_dir']}"], "hydra.run.dir",
         stage="hydra", own_run_dir=True),
    Case("run dir holding someone else's metrics.jsonl", lambda p: [f"hydra.run.dir={p['foreign_metrics']}"], "hydra.run.dir",
         stage="run", own_run_dir=True),
    Case("a forward-pass budget more than the machine holds", lambda p: ["batching.max_batch_tokens=1000000000000"],
         "batching.max_batch_tokens", stage="build"),
    Case("resume with another objective", lambda p: [f"hydra.run.dir={p['finished_run']}", "objective=novelty"],
         "objective.name", stage="run", own_run_dir=True),
    Case("corrupt checkpoint in the run dir", lambda p: [f"hydra.run.dir={p['corrupt_run']}"], "checkpoint", stage="run", own_run_dir=True),
]
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
RUNNABLE = [c for c in CASES if not (c.non_root and ROOT)]
TESTED = [c for c in RUNNABLE if c.cli]
IN_PROCESS = [c for c in CASES if c.stage in ("hydra", "schema") and not c.own_run_dir]


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def prepare(tmp: Path, zoo) -> Paths:
    """The files the cases point at: real zoo adapters, and broken copies of them."""
    from safetensors.torch import load_file, save_file

    gens = sorted(zoo.generators.values())
    p = {"tmp": str(tmp), "base": str(zoo.base_dir), "gen0": str(gens[0]), "gen1": str(gens[1])}
    bin_adapter = tmp / "bin_adapter"
    bin_adapter.mkdir()
    shutil.copy(gens[0] / "adapter_config.json", bin_adapter)
    (bin_adapter / "adapter_model.bin").write_bytes(b"pickle would go here")
    p["bin_adapter"] = str(bin_adapter)
    wide = tmp / "wide"  # LoRA factors of a model twice as wide: the keys fit, the shapes do not
    shutil.copytree(gens[0], wide)
    tensors = load_file(wide / "adapter_model.safetensors")
    doubled = {k: v.repeat(1, 2) if "lora_A" in k else v.repeat(2, 1) for k, v in tensors.items()}
    save_file({k: v.contiguous() for k, v in doubled.items()}, wide / "adapter_model.safetensors")
    p["wide"] = str(wide)
    other_rank = tmp / "other_rank"  # another LoRA rank than the first adapter
    shutil.copytree(gens[1], other_rank)
    config = json.loads((other_rank / "adapter_config.json").read_text())
    config["r"] = int(config["r"]) * 2
    (other_rank / "adapter_config.json").write_text(json.dumps(config))
    p["other_rank"] = str(other_rank)
    p["empty_task"] = _write(tmp / "empty.json", "")
    p["not_json"] = _write(tmp / "not.json", "dev: [1, 2\n")
    p["no_dev"] = _write(tmp / "no_dev.json", json.dumps({"test": []}))
    p["empty_dev"] = _write(tmp / "empty_dev.json", json.dumps({"dev": [], "test": []}))
    p["bad_row"] = _write(tmp / "bad_row.json", json.dumps({"dev": [{"output": "4"}], "test": []}))
    p["ok_task"] = _write(tmp / "ok.json", json.dumps({"dev": [{"input": "What is 2+2?", "output": "4"}], "test": []}))
    p["a_file"] = _write(tmp / "a_file", "not a directory")
    read_only = tmp / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    p["read_only"] = str(read_only)
    p["no_answers"] = _write(tmp / "no_answers.json", json.dumps({"dev": [{"input": "What is the capital of France?"},
                                                                           {"input": "Who wrote Hamlet, and when?"}], "test": []}))
    not_a_model = tmp / "not_a_model"
    not_a_model.mkdir()
    (not_a_model / "notes.txt").write_text("a folder, not a model")
    p["not_a_model"] = str(not_a_model)
    (tmp / "log_is_dir" / "dswarm.log").mkdir(parents=True)  # Hydra's log file cannot be opened
    p["log_is_dir"] = str(tmp / "log_is_dir")
    (tmp / "foreign_metrics").mkdir()
    (tmp / "foreign_metrics" / "metrics.jsonl").write_text('{"epoch": 1, "loss": 0.5}\n{"epoch": 2, "loss": 0.4}\n')
    p["foreign_metrics"] = str(tmp / "foreign_metrics")
    p["finished_run"] = finished_record(tmp / "finished_run", b"a checkpoint the check never reads")
    p["corrupt_run"] = finished_record(tmp / "corrupt_run", b"\x80\x02truncated")  # the check passes; the load fails
    return p


def finished_record(run_dir: Path, checkpoint: bytes) -> str:
    """A run dir as a finished objective=difficulty run leaves it, as far as a resume reads it before the models
    load: its record of the settings (.hydra/) and a checkpoint of these bytes."""
    from swarm.config import compose
    from swarm.runtime.record import write_record

    overrides = [*SMALL, "logger=none", "objective=difficulty"]
    write_record(run_dir, compose(overrides), compose([], return_hydra_config=True).hydra, overrides)
    (run_dir / "checkpoint").mkdir()
    (run_dir / "checkpoint" / "state.safetensors").write_bytes(checkpoint)
    return str(run_dir)


def run_case(case: Case, paths: Paths) -> tuple[subprocess.CompletedProcess, float]:
    args = case.args(paths)
    small = [o for o in SMALL if not o.startswith("task.")] if "task=json" in args else SMALL  # n_dev: arith only
    cmd = [str(DSWARM), *small, "logger=none", *args]
    if not case.own_run_dir:
        cmd.append(f"hydra.run.dir={paths['tmp']}/runs/{CASES.index(case)}")
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    return proc, time.monotonic() - started


def run_cases(cases: list[Case], paths: Paths, workers: int = 3) -> dict[str, tuple[subprocess.CompletedProcess, float]]:
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip((c.name for c in cases), pool.map(lambda c: run_case(c, paths), cases)))


def _env_for_cases(mp: pytest.MonkeyPatch) -> None:
    mp.setenv("OPENAI_API_KEY", "sk-test-not-used")
    mp.delenv("DSWARM_UNSET_KEY", raising=False)
    mp.delenv("WANDB_API_KEY", raising=False)  # no W&B credentials: logger.mode=online must be refused
    mp.setenv("NETRC", "/nonexistent/netrc")


@pytest.fixture(scope="module")
def paths(tiny_zoo, tmp_path_factory):
    paths = prepare(tmp_path_factory.mktemp("bad_input"), tiny_zoo)
    yield paths
    Path(paths["read_only"]).chmod(0o755)


@pytest.fixture(scope="module")
def results(paths):
    """Every CLI case, run once, a few at a time."""
    with pytest.MonkeyPatch.context() as mp:
        _env_for_cases(mp)
        return run_cases(TESTED, paths)


@pytest.mark.slow
@pytest.mark.parametrize("case", TESTED, ids=[c.name for c in TESTED])
def test_bad_setting_gives_one_line_and_exit_2(results, case):
    proc, _ = results[case.name]
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dswarm: error:"), lines[0]
    assert case.setting in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("case", IN_PROCESS, ids=[c.name for c in IN_PROCESS])
def test_bad_setting_is_caught_at_startup(paths, case, monkeypatch):
    """Every hydra/schema case, in-process: composing fails, or check() raises naming the setting."""
    from swarm.config import check, compose
    from swarm.runtime.errors import ConfigError

    _env_for_cases(monkeypatch)
    args = case.args(paths)
    small = [o for o in SMALL if not o.startswith("task.")] if "task=json" in args else SMALL
    if case.stage == "hydra":
        with pytest.raises(Exception, match=case.setting.split(".")[-1]):
            compose([*small, *args])
        return
    cfg = compose([*small, *args])
    with pytest.raises(ConfigError) as err:
        check(cfg)
    assert str(err.value).startswith(case.setting + ":") or str(err.value).startswith(case.setting + ","), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("adapters, message", [
    (("wide", "wide"), r"^generator\.adapters: cannot be loaded on generator\.base=.*shape"),
    (("gen0", "other_rank"), r"^generator\.adapters: cannot be loaded on generator\.base=.*other_rank does not match .*: r="),
])
def test_adapters_that_do_not_fit_name_the_setting(paths, adapters, message):
    """Checked when the model loads (the base's shapes are only known then): still one line naming the setting."""
    from swarm.build import load_lora_model
    from swarm.runtime.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as err:
        load_lora_model("generator", Path(paths["base"]), [Path(paths[a]) for a in adapters])
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_good_configs_pass_startup(paths, monkeypatch):
    from swarm.config import check, compose

    _env_for_cases(monkeypatch)
    for overrides in ([], ["objective=mixed"], hf(paths, paths["gen0"], paths["gen1"]), [*OPENAI, "method=adversarial"]):
        check(compose([*SMALL, *overrides]))


@pytest.mark.slow
def test_full_error_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    cmd = [str(DSWARM), *SMALL, "logger=none", "pso.max_steps=0", f"hydra.run.dir={tmp_path}"]
    e = {**env(), "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=e, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "pso.max_steps" in proc.stderr


@pytest.mark.slow
def test_bad_pso_setting_fails_before_torch_loads(tmp_path, monkeypatch):
    """The schema is checked before torch and the models load (so a bad pso.* fails in about a second)."""
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    cmd = [str(DSWARM), *SMALL, "logger=none", "pso.repel=-1", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "dswarm: error: pso.repel" in proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "swarm.config.schema" in imported  # the check ran ...
    assert "torch" not in imported and "swarm.build" not in imported  # ... before any of these


# ------------------------------------------------------------------ docs/reliability.md's table

def table(results: dict[str, tuple[subprocess.CompletedProcess, float]], paths: Paths) -> str:
    rows = ["| bad input | overrides | exit | message (stderr) | seconds |", "| --- | --- | --- | --- | --- |"]
    for case in CASES:
        if case.name not in results:
            continue
        proc, seconds = results[case.name]
        shown = " ".join(case.args(paths)).replace(paths["tmp"], "$TMP").replace(paths["base"], "$ZOO/base")
        shown = shown.replace(str(Path(paths["gen0"]).parent), "$ZOO/generators")
        message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "(none)"
        message = message.replace(paths["tmp"], "$TMP").replace(paths["base"], "$ZOO/base").replace("|", "\\|")
        message = message.replace(str(Path(paths["gen0"]).parent), "$ZOO/generators")
        quote = "``" if "`" in message else "`"  # a message that quotes a command keeps its code span whole
        rows.append(f"| {case.name} | `{shown}` | {proc.returncode} | {quote} {message} {quote} | {seconds:.1f} |")
    return "\n".join(rows) + "\n"


def test_the_docs_table_has_every_case():
    """docs/reliability.md's table is this file's output: a case added here and not regenerated there fails."""
    text = (REPO / "docs" / "reliability.md").read_text()
    table_text = text.split("<!-- bad-input-table:start -->", 1)[1].split("<!-- bad-input-table:end -->", 1)[0]
    documented = [line.split(" | ", 1)[0].removeprefix("| ") for line in table_text.strip().splitlines()[2:]]
    expected = [c.name for c in CASES if not c.non_root or c.name in documented]  # root cannot run a non_root case
    assert documented == expected, "run: python -m tests.test_bad_input"


def main() -> int:
    import tempfile

    from generators.zoo import build_zoo, default_cache_dir

    zoo = build_zoo("tiny", cache_dir=default_cache_dir())
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        _env_for_cases(mp)
        paths = prepare(Path(tmp), zoo)
        results = run_cases(RUNNABLE, paths, workers=1)  # one at a time: the seconds column is honest
        Path(paths["read_only"]).chmod(0o755)
        text = table(results, paths)
    doc = REPO / "docs" / "reliability.md"
    start, end = "<!-- bad-input-table:start -->\n", "<!-- bad-input-table:end -->"
    current = doc.read_text()
    head, rest = current.split(start, 1)
    doc.write_text(head + start + text + end + rest.split(end, 1)[1])
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    raise SystemExit(main())
