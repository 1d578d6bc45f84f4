"""A run's data as an lm-evaluation-harness task: ``best/lm_eval/`` in every run, ``dswarm-export`` for old ones.

    dswarm-export RUN_DIR [--name NAME]     # writes RUN_DIR/best/lm_eval/ from the run's files
    lm_eval --include_path RUN_DIR/best/lm_eval --tasks dswarm_arith --model hf --model_args pretrained=DIR

The folder holds ``<name>.yaml`` (a generate-until task), ``data.jsonl`` (the best
generator's valid items: input, output), ``task.json`` (the run's prompt, stop,
budget and answer check) and ``utils.py``, a shim that lm_eval imports
(``!function utils.load``, ...) and that hands over to `HarnessTask` here. A model
is asked exactly as the run's takers were (``taker.template``, ``taker.stop``,
their token budget, greedy), and an answer is checked by the run's own judge
when it is exact (``judge=verifier``, ``judge=reference``: its ``check``), else by
the reference match against the item's answer (an LLM judge cannot be run offline;
``task.json`` says so). Reasoning takers' answers go through the task's extractor
first, as in the run. Takers asked through a chat template need lm_eval's
``--apply_chat_template``. The shim imports this package: lm_eval must run where
data-swarms is installed (``make install`` installs the ``harness`` extra).
"""
from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from objectives.judging.judges import ReferenceJudge
from objectives.tasks.item import Item
from swarm.runtime.errors import ConfigError, exit_on_error
from swarm.runtime.files import atomic_dir

SHIM = '''"""lm-evaluation-harness hooks of a dswarm run's task (written by dswarm; needs data-swarms installed)."""
from pathlib import Path

from swarm.report.harness import HarnessTask

_task = HarnessTask(Path(__file__).parent)
load, doc_to_text, process_results = _task.load, _task.doc_to_text, _task.process_results
'''
REFERENCE = f"{ReferenceJudge.__module__}.{ReferenceJudge.__qualname__}"


def answer_check(judge_target: str) -> tuple[str, str]:
    """The class whose ``check(item, answer)`` scores an answer offline, and why: the run's judge when it
    has one (the exact judges), else the reference match."""
    module, _, name = judge_target.rpartition(".")
    try:
        judge = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        judge = None
    if judge is not None and callable(getattr(judge, "check", None)):
        return judge_target, "the run's judge"
    return REFERENCE, f"the run's judge ({judge_target}) is not exact: the reference match against each item's answer"


def task_spec(name: str, taker: Mapping[str, Any], asked: Mapping[str, Any], judge_target: str,
              extract: str | None, run: str) -> dict[str, Any]:
    """``task.json``: how a model is asked and how its answer is checked, as in the run."""
    check, why = answer_check(judge_target)
    return {"name": name, "run": run, "template": asked["template"], "stop": asked["stop"],
            "max_gen_toks": int(asked["max_new_tokens"]), "chat_template": bool(taker.get("chat_template")),
            "extract": extract, "check": check, "check_is": why}


def task_yaml(spec: Mapping[str, Any]) -> str:
    until = [spec["stop"]] if spec["stop"] else []
    body = {
        "task": spec["name"],
        "custom_dataset": "!function utils.load",
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "!function utils.doc_to_text",
        "doc_to_target": "output",
        "generation_kwargs": {"until": until, "max_gen_toks": spec["max_gen_toks"], "do_sample": False, "temperature": 0.0},
        "process_results": "!function utils.process_results",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }
    head = (f"# The data of dswarm run {spec['run']}: its takers' prompt, answered greedily, checked by {spec['check_is']}.\n"
            + ("# Its takers were asked through a chat template: add --apply_chat_template.\n" if spec["chat_template"] else ""))
    return head + yaml.safe_dump(body, sort_keys=False).replace("'!function ", "!function ").replace(".load'", ".load") \
        .replace(".doc_to_text'", ".doc_to_text").replace(".process_results'", ".process_results")


def write_harness(folder: Path, rows: Sequence[Mapping[str, Any]], spec: Mapping[str, Any]) -> None:
    """``folder`` (best/lm_eval/) with the task's four files, swapped in whole."""
    data = "".join(json.dumps({"input": r["input"], "output": r.get("output")}) + "\n" for r in rows if r.get("valid"))
    with atomic_dir(folder) as tmp:
        (tmp / f"{spec['name']}.yaml").write_text(task_yaml(spec))
        (tmp / "data.jsonl").write_text(data)
        (tmp / "task.json").write_text(json.dumps(spec, indent=2) + "\n")
        (tmp / "utils.py").write_text(SHIM)


class HarnessTask:
    """What lm_eval calls: the data, the prompt of a doc, and the check of a generated answer."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.spec = json.loads((self.folder / "task.json").read_text())
        module, _, name = self.spec["check"].rpartition(".")
        self.judge = getattr(importlib.import_module(module), name)()
        self.extract = None
        if self.spec.get("extract"):
            from objectives.judging.answers import make_extractor

            self.extract = make_extractor(self.spec["extract"], [r["output"] for r in self.rows() if r["output"]])

    def rows(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.folder / "data.jsonl").read_text().splitlines() if line.strip()]

    def load(self, **_: Any):
        import datasets

        return datasets.DatasetDict({"test": datasets.Dataset.from_list(self.rows())})

    def doc_to_text(self, doc: Mapping[str, Any]) -> str:
        return self.spec["template"].format(input=doc["input"])

    def process_results(self, doc: Mapping[str, Any], results: Sequence[str]) -> dict[str, float]:
        answer = results[0] if results else ""
        if self.extract is not None:
            answer = self.extract(answer)
        score = self.judge.check(Item(doc["input"], doc.get("output"), True), answer or "")
        return {"acc": float(score or 0.0)}


def taker_asking(config: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, Any]:
    """How the run's takers were asked: summary.json's record, else the config (an older run)."""
    if "taker_prompt" in summary:
        return dict(summary["taker_prompt"])
    taker = config["taker"]
    if taker.get("max_new_tokens") is None:
        raise ConfigError("RUN_DIR: this run derived taker.max_new_tokens and did not record it; re-run it to export")
    return {"template": taker["template"], "stop": taker.get("stop"), "max_new_tokens": taker["max_new_tokens"]}


def export(run_dir: Path, name: str | None = None) -> Path:
    """Write ``run_dir/best/lm_eval/`` from a finished run's summary.json, best/data.jsonl and config."""
    run_dir = Path(run_dir)
    needed = [run_dir / "summary.json", run_dir / "best" / "data.jsonl", run_dir / ".hydra" / "config.yaml"]
    if missing := [str(p) for p in needed if not p.is_file()]:
        raise ConfigError(f"RUN_DIR: {run_dir} is not a finished dswarm run (missing {missing[0]})")
    summary = json.loads(needed[0].read_text())
    config = yaml.safe_load(needed[2].read_text())
    rows = [json.loads(line) for line in needed[1].read_text().splitlines() if line.strip()]
    spec = run_spec(config, summary, run_dir.name, name)
    write_harness(run_dir / "best" / "lm_eval", rows, spec)
    return run_dir / "best" / "lm_eval" / f"{spec['name']}.yaml"


def run_spec(config: Mapping[str, Any], summary: Mapping[str, Any], run: str, name: str | None = None) -> dict[str, Any]:
    """The task spec of a run from its resolved config and summary (the run and dswarm-export both use it)."""
    taker, task = config["taker"], config["task"]
    extract = task.get("answer_extract", "auto") if taker.get("answer") == "reasoning" else None
    task_name = summary.get("task") or str(task.get("_target_", "task")).rsplit(".", 1)[-1].removesuffix("Task").lower()
    return task_spec(name or f"dswarm_{task_name}", taker, taker_asking(config, summary), config["judge"]["_target_"], extract, run)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dswarm-export", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished run dir (summary.json, best/data.jsonl, .hydra/)")
    parser.add_argument("--name", default=None, help="the lm_eval task name (default: dswarm_<task>)")
    args = parser.parse_args(argv)
    with exit_on_error():
        path = export(args.run_dir, args.name)
        print(f"{path}\nlm_eval --include_path {path.parent} --tasks {path.stem} --model hf --model_args pretrained=<model dir>")
