"""Hugging Face in and out: hub-id models from the local HF cache, task=hf, best/dataset/, dswarm-push."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from objectives.tasks.hf import HfTask
from swarm.report.publish import push
from tests.cli import dswarm, env, read_jsonl
from tests.conftest import HUB_ID, hub_cache


@pytest.mark.slow
def test_hub_id_base_loads_from_the_local_hf_cache(workflow_run):
    """generator.base=<hub id> with HF_HUB_OFFLINE=1; relative adapter paths under hydra.job.chdir=true."""
    summary = json.loads((workflow_run / "summary.json").read_text())
    assert summary["steps"] == 2
    adapter = json.loads((workflow_run / "best" / "generator" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == HUB_ID  # what the user gave, not this machine's cache path
    config = yaml.safe_load((workflow_run / ".hydra" / "config.yaml").read_text())
    assert config["generator"]["base"] == HUB_ID
    assert all(a.startswith("adapters/") for a in config["generator"]["adapters"])  # relative to where it started,
    assert not (workflow_run / "adapters").exists()  # not to the run dir it ran in (hydra.job.chdir=true)


@pytest.mark.slow
def test_hub_id_not_in_the_cache_is_one_line(tiny_zoo, tmp_path):
    environ = {**env(), "HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"}
    adapters = ",".join(str(p) for p in tiny_zoo.generators.values())
    out = dswarm("generator=hf", "generator.base=nobody/missing", f"generator.adapters=[{adapters}]", "logger=none",
                 run_dir=tmp_path / "run", environ=environ, check=False)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(
        "dswarm: error: generator.base: HF_HUB_OFFLINE=1: nobody/missing is not in the local HF cache"
    )
    assert "Traceback" not in out.stderr


def test_hub_snapshot_without_safetensors_is_refused(tiny_zoo, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from generators.sources.hub import resolve_model

    cache = hub_cache(tmp_path / "hub", tiny_zoo.base_dir)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    assert resolve_model(HUB_ID, "generator.base").joinpath("model.safetensors").is_file()
    (snapshot,) = cache.glob("models--*/snapshots/*")
    (snapshot / "model.safetensors").rename(snapshot / "pytorch_model.bin")
    with pytest.raises(ValueError, match="generator.base: .* has no safetensors weights"):
        resolve_model(HUB_ID, "generator.base")


@pytest.mark.slow
def test_final_dataset_is_written_with_datasets_and_a_card(workflow_run):
    import datasets

    dataset_dir = workflow_run / "best" / "dataset"
    rows = read_jsonl(workflow_run / "best" / "data.jsonl")
    from_disk = datasets.load_from_disk(str(dataset_dir))
    from_parquet = datasets.load_dataset("parquet", data_files=str(dataset_dir / "train.parquet"), split="train")
    for loaded in (from_disk, from_parquet):
        assert loaded["input"] == [r["input"] for r in rows]
        assert loaded["valid"] == [r["valid"] for r in rows]
        assert loaded["heldout_scores"] == [r.get("heldout_scores") for r in rows]
    summary = json.loads((workflow_run / "summary.json").read_text())
    card = (dataset_dir / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["configs"][0]["data_files"][0]["path"] == "train.parquet"
    assert f"| utility | {summary['heldout']['utility']:.4f} |" in card  # the held-out result
    assert f"| best_utility | {summary['best_utility']:.4f} |" in card
    assert "## Objective" in card and "## Config" in card and f"base: {HUB_ID}" in card


class LocalHub:
    """A stand-in for huggingface_hub.HfApi: repos are folders under ``root`` (never the network)."""

    def __init__(self, root: Path) -> None:
        self.root, self.created = root, []

    def create_repo(self, repo_id: str, repo_type: str, private: bool, exist_ok: bool) -> None:
        self.created.append((repo_id, repo_type, private))

    def upload_folder(self, repo_id: str, repo_type: str, folder_path: str, allow_patterns, commit_message: str) -> str:
        target = self.root / repo_type / repo_id
        for path in Path(folder_path).iterdir():
            if path.is_file() and (allow_patterns is None or path.name in allow_patterns):
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target / path.name)
        return f"file://{target}"


@pytest.mark.slow
def test_push_uploads_adapter_dataset_and_cards(workflow_run, tmp_path):
    hub = LocalHub(tmp_path)
    urls = push(workflow_run, "me/arith-swarm", api=hub)
    assert hub.created == [("me/arith-swarm", "model", False), ("me/arith-swarm", "dataset", False)]
    assert urls == [f"file://{tmp_path / 'model/me/arith-swarm'}", f"file://{tmp_path / 'dataset/me/arith-swarm'}"]
    model, data = tmp_path / "model" / "me/arith-swarm", tmp_path / "dataset" / "me/arith-swarm"
    assert sorted(p.name for p in model.iterdir()) == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    assert (model / "adapter_model.safetensors").read_bytes() == (workflow_run / "best/generator/adapter_model.safetensors").read_bytes()
    assert yaml.safe_load((model / "README.md").read_text().split("---")[1])["base_model"] == HUB_ID
    assert sorted(p.name for p in data.iterdir()) == ["README.md", "train.parquet"]


def test_push_refuses_an_unfinished_run_with_one_line(tmp_path):
    from swarm.report.publish import main

    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path), "me/x"])
    assert exit_.value.code == 2


@pytest.mark.slow
def test_push_offline_or_unreachable_is_one_line(workflow_run):
    """The real dswarm-push: offline mode is a setting (exit 2), an unreachable hub a one-line failure (exit 1)."""
    push_cmd = [str(Path(sys.executable).parent / "dswarm-push"), str(workflow_run), "me/x"]
    offline = subprocess.run(push_cmd, env={**env(), "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=120)
    assert offline.returncode == 2 and offline.stderr.strip().splitlines() == [
        "dswarm: error: HF_HUB_OFFLINE: offline mode is on, so nothing can be pushed; unset HF_HUB_OFFLINE"]
    nowhere = {**env(), "HF_HUB_OFFLINE": "0", "HF_TOKEN": "hf_not_a_token", "HF_ENDPOINT": "http://127.0.0.1:9"}
    unreachable = subprocess.run(push_cmd, env=nowhere, capture_output=True, text=True, timeout=120)
    lines = unreachable.stderr.strip().splitlines()
    assert unreachable.returncode == 1 and len(lines) == 1, unreachable.stderr[-2000:]
    assert lines[0].startswith("dswarm: error: cannot push to the hub (") and "Traceback" not in unreachable.stderr


@pytest.fixture()
def qa_files(tmp_path):
    rows = [{"question": f"What is {i} plus {i}?", "answer": str(2 * i), "note": "x"} for i in range(10)]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    import datasets

    table = datasets.Dataset.from_list(rows)
    table.to_parquet(str(tmp_path / "qa.parquet"))
    table.to_csv(str(tmp_path / "qa.csv"), index=False)
    datasets.DatasetDict({"train": table.select(range(6)), "test": table.select(range(6, 10))}).save_to_disk(str(tmp_path / "qa_dir"))
    return tmp_path, rows


@pytest.mark.parametrize("name", ["qa.jsonl", "qa.parquet", "qa.csv"])
def test_hf_task_from_a_file_with_field_mapping_and_splits(qa_files, name):
    root, rows = qa_files
    task = HfTask(str(root / name), input_field="question", output_field="answer", dev_split="train[:60%]", test_split="train[60%:]")
    assert [(i.input, i.output) for i in task.dev] == [(r["question"], r["answer"]) for r in rows[:6]]
    assert [(i.input, i.output) for i in task.test] == [(r["question"], r["answer"]) for r in rows[6:]]
    assert task.format_example(task.dev[1]) == "What is 1 plus 1? Answer: 2"
    assert task.parse_item("What is 7 plus 8? Answer: 15").valid


def test_hf_task_from_a_saved_dataset_dir(qa_files):
    root, rows = qa_files
    task = HfTask(str(root / "qa_dir"), input_field="question", output_field="answer", max_dev=3)
    assert len(task.dev) == 3 and {i.input for i in task.dev} <= {r["question"] for r in rows[:6]}
    assert [i.input for i in task.test] == [r["question"] for r in rows[6:]]


def test_hf_task_names_the_missing_column_and_split(qa_files):
    root, _ = qa_files
    with pytest.raises(ValueError, match=r"task.input_field: no column 'prompt' .*columns: \['question', 'answer', 'note'\]"):
        HfTask(str(root / "qa_dir"), input_field="prompt", output_field="answer")
    with pytest.raises(ValueError, match=r"task.test_split: cannot load split 'validation'"):
        HfTask(str(root / "qa_dir"), input_field="question", test_split="validation")
