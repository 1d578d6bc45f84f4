"""What a W&B run holds, read back from the offline run file of a real `dswarm` run."""
from __future__ import annotations

import json

import pytest

from swarm.runtime.tracking import flatten, item_columns, wandb_mode
from tests.cli import SMALL, read_jsonl
from tests.wandb_records import read_run, table


@pytest.fixture(scope="module")
def offline(workflow_run):
    return read_run(workflow_run)


@pytest.mark.slow
def test_run_is_named_by_its_overrides_with_method_job_type_and_tags(offline):
    excluded = ("progress=", "taker.heldout=")  # Hydra's exclude_keys (conf/config.yaml)
    overrides = [o for o in SMALL if not o.startswith(excluded)] + ["generator=hub_tiny", "pso.max_steps=2"]
    assert offline.name == ",".join(sorted(overrides))  # Hydra's override_dirname (logger, paths left out)
    assert offline.job_type == "data_swarms"
    assert offline.tags == ["data_swarms", "difficulty", "task=arith"]
    assert offline.config["pso"]["max_steps"] == 2


@pytest.mark.slow
def test_summary_is_flattened(workflow_run, offline):
    summary = json.loads((workflow_run / "summary.json").read_text())
    s = offline.summary
    assert s["heldout/utility"] == summary["heldout"]["utility"]
    for name, value in summary["heldout"]["objective"].items():
        assert s[f"heldout/objective/{name}"] == value
    for taker, value in summary["search_takers"]["takers"].items():
        assert s[f"search_takers/takers/{taker}"] == value
    assert s["best_utility"] == summary["best_utility"] and s["stop_reason"] == summary["stop_reason"]
    candidates = summary["selection"]["candidates"]
    for i, c in enumerate(candidates):
        assert (s[f"selection/candidates/{i}/in_sample"], s[f"selection/candidates/{i}/fresh"]) == (c["in_sample"], c["fresh"])
    logged = table(workflow_run, {"_type": s["selection/candidates._type"], "path": s["selection/candidates.path"]})
    assert logged["columns"][:4] == ["source", "in_sample", "fresh", "exported"]
    assert [row[:4] for row in logged["data"]] == [[c["source"], c["in_sample"], c["fresh"], c["exported"]] for c in candidates]


@pytest.mark.slow
def test_the_last_step_logs_a_table_sampling_its_items(workflow_run, offline):
    """2 steps, logger.table_every=10: no table at step 1, the last step's table logged as the run ends."""
    tables = [h for h in offline.history if "items._type" in h]
    assert [h["_step"] for h in tables] == [2]
    assert [h["_step"] for h in offline.history if "swarm/best" in h] == [1, 2]  # scalars every step
    logged = table(workflow_run, {"_type": tables[0]["items._type"], "path": tables[0]["items.path"]})
    names = sorted(json.loads((workflow_run / "data" / "reference.json").read_text())["takers"])
    assert logged["columns"] == ["particle", "input", "output", "valid", "realism", *(f"score/{t}" for t in names)]
    rows = read_jsonl(workflow_run / "data" / "step_002.jsonl")
    assert len(logged["data"]) == min(32, len(rows))
    assert {r[0] for r in logged["data"]} == {r["particle"] for r in rows}  # every particle shows up
    first = rows[0]
    assert logged["data"][0][:4] == [first["particle"], first["input"], first["output"], first["valid"]]


class RecordingRun:
    """What Tracker hands to W&B's process, by step (the real W&B run is read back in the tests above)."""

    def __init__(self) -> None:
        self.logged: dict[int, list[str]] = {}
        self.summary: dict = {}
        self.artifacts: list[str] = []

    def log(self, data: dict, step: int) -> None:
        self.logged.setdefault(step, []).extend(data)

    def update_summary(self, summary: dict) -> None:
        self.summary.update(summary)

    def log_artifact(self, name: str, *args, **kwargs) -> None:
        self.artifacts.append(name)


@pytest.mark.parametrize("every, steps, tables", [(5, 12, [5, 10, 12]), (5, 10, [5, 10]), (1, 3, [1, 2, 3]), (4, 2, [2])])
def test_items_table_every_k_steps_and_at_the_last(tmp_path, monkeypatch, every, steps, tables):
    from swarm.runtime.tracking import Tracker

    tracker = Tracker(tmp_path, {"kind": "none", "table_items": 3, "table_every": every}, {}, resume_step=0)
    tracker.wandb = run = RecordingRun()
    monkeypatch.setattr(Tracker, "_table", lambda self, rows, key: [r["input"] for r in rows])
    items = [{"particle": p, "input": f"q{p}", "valid": True, "scores": {"t": 1.0}} for p in range(6)]
    for step in range(1, steps + 1):
        tracker.log({"step": step, "best": 0.5}, items)
    assert [s for s, keys in run.logged.items() if "items" in keys] == [t for t in tables if t != steps or steps % every == 0]
    (tmp_path / "best" / "generator").mkdir(parents=True)
    (tmp_path / "best" / "data.jsonl").write_text("")
    tracker.summary({}, [])
    assert [s for s, keys in run.logged.items() if "items" in keys] == tables
    assert sorted(run.logged) == list(range(1, steps + 1)) and run.logged[steps].count("items") == 1


@pytest.mark.slow
def test_final_dataset_table_plots_and_artifacts(workflow_run, offline):
    final = table(workflow_run, {"_type": offline.summary["final/dataset._type"], "path": offline.summary["final/dataset.path"]})
    rows = read_jsonl(workflow_run / "best" / "data.jsonl")
    assert [r[0] for r in final["data"]] == [r["input"] for r in rows]
    assert offline.summary["plots/utility._type"] == "image-file"
    artifacts = {a.name: a for a in offline.artifacts}
    assert sorted(artifacts) == ["best-data", "best-generator"]
    assert artifacts["best-generator"].type == "model" and artifacts["best-data"].type == "dataset"
    assert {e.path for e in artifacts["best-generator"].manifest.contents} == {"adapter_config.json", "adapter_model.safetensors"}
    assert {"data.jsonl", "dataset/train.parquet", "dataset/README.md"} <= {e.path for e in artifacts["best-data"].manifest.contents}
    metadata = json.loads(artifacts["best-generator"].metadata)
    assert metadata["config"]["generator"]["base"] == "dswarm-test/tiny-base"


def test_flatten_and_item_columns_by_hand():
    assert flatten({"a": 1, "h": {"u": 0.5, "o": {"d": 2}}}) == {"a": 1, "h/u": 0.5, "h/o/d": 2}
    assert flatten({"s": {"c": [{"f": 0.5}, {"f": 0.25}], "l": [1, 2]}}) == {"s/c/0/f": 0.5, "s/c/1/f": 0.25, "s/l": [1, 2]}
    rows = [{"particle": 0, "input": "q", "output": "1", "valid": True, "scores": {"b": 0.0, "a": 1.0}},
            {"particle": 1, "input": "r", "output": None, "valid": False}]
    assert item_columns(rows, "scores") == (
        ["particle", "input", "output", "valid", "score/a", "score/b"],
        [[0, "q", "1", True, 1.0, 0.0], [1, "r", None, False, None, None]],
    )


def test_online_only_when_logged_in(tmp_path, monkeypatch):
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert wandb_mode(None) == "offline"  # no netrc file
    (tmp_path / "netrc").write_text("machine example.org login user password pw\n")
    assert wandb_mode(None) == "offline"
    (tmp_path / "netrc").write_text("machine api.wandb.ai login user password 0123456789abcdef\n")  # what `wandb login` writes
    assert wandb_mode(None) == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mode(None) == "offline"
    assert wandb_mode("disabled") == "disabled"


@pytest.mark.slow
def test_an_offline_run_says_once_how_to_upload_it(workflow_run):
    log = (workflow_run / "dswarm.log").read_text()
    assert log.count("W&B ran offline; upload the run with: wandb sync ") == 1
    assert f"wandb sync {workflow_run}/wandb/offline-run-*" in log and list((workflow_run / "wandb").glob("offline-run-*"))
