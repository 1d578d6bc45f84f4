"""A run's results in Hugging Face form: ``best/dataset/`` with its card, and ``dswarm-push``.

    best/dataset/              datasets.load_from_disk(...) reads it (save_to_disk)
    best/dataset/train.parquet the same rows for pandas, DuckDB or the hub's viewer
    best/dataset/README.md     the dataset card: config, objective, utilities, held-out results

    dswarm-push RUN_DIR REPO_ID [--private]

pushes the best generator's adapter (model repo REPO_ID, with a model card
naming its base) and the dataset (dataset repo REPO_ID, parquet + card) with
``huggingface_hub.HfApi`` (token from HF_TOKEN or ``hf auth login``).
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import yaml

from swarm.runtime.errors import ConfigError, exit_on_error, fail, first_line, full_error
from swarm.runtime.files import atomic_dir

PARQUET = "train.parquet"
CARD = "README.md"


def _table(title: str, rows: Mapping[str, Any]) -> str:
    lines = [f"| {title} | value |", "| --- | --- |"]
    lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in rows.items()]
    return "\n".join(lines)


def contamination_section(c: Mapping[str, Any]) -> str:
    """The card's contamination paragraph (objectives/contamination.py)."""
    sources = ", ".join(f"{name} ({n} texts)" for name, n in c["references"].items())
    return (f"## Contamination\n\n{c['contaminated']} of {c['checked']} checked items ({c['rate']:.1%}) have at least "
            f"{c['threshold']:.0%} of their {c['n']}-grams in the references, or copy one exactly: {sources}. "
            f"Mean overlap {c['mean_overlap']:.3f}. Contaminated items were "
            + ("dropped (invalid)." if c["dropped"] else "kept (task.drop_contaminated=false)."))


def dataset_card(summary: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """The dataset card: what made the data, what it optimized, and how it scored on held-out takers."""
    heldout = summary["heldout"]
    front = {
        "tags": ["data-swarms", "synthetic", "evaluation"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": PARQUET}]}],
    }
    utilities = {k: summary[k] for k in ("method", "objective", "initial_best", "best_utility", "steps", "stop_reason")}
    parts = [
        f"---\n{yaml.safe_dump(front, sort_keys=False)}---",
        f"# Evaluation data written by a Data Swarms generator ({summary['method']}, objective {summary['objective']})",
        "Written by the best generator a Data Swarms run (arXiv 2506.00741) found: "
        f"{heldout['n_items']} items, {heldout['valid_fraction']:.0%} valid. Columns: input, output "
        "(the generator's reference answer), valid, heldout_scores (each held-out taker's score).",
        "## Objective\n\n" + _table("objective weight", summary["weights"]),
        "## Search\n\n" + _table("search", utilities),
        "## Held-out results\n\n" + _table("held-out", {"utility": heldout["utility"], **heldout["objective"]}),
        _table("held-out taker mean score", heldout["takers"]),
    ]
    if "search_takers" in summary:
        parts.append("## Search takers\n\n" + _table("search taker mean score", summary["search_takers"]["takers"]))
    if "contamination" in summary:
        parts.append(contamination_section(summary["contamination"]))
    parts.append("## Config\n\n```yaml\n" + yaml.safe_dump(dict(config), sort_keys=False) + "```")
    return "\n\n".join(parts) + "\n"


def write_dataset(path: Path, rows: list[dict], summary: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """``path`` (best/dataset/): save_to_disk + parquet + card, swapped in whole."""
    from datasets import Dataset

    dataset = Dataset.from_list([{**r, "heldout_scores": r.get("heldout_scores")} for r in rows])
    with atomic_dir(path) as tmp:
        dataset.save_to_disk(str(tmp))
        dataset.to_parquet(str(tmp / PARQUET))
        (tmp / CARD).write_text(dataset_card(summary, config))


def model_card(adapter: Mapping[str, Any], repo_id: str, summary: Mapping[str, Any]) -> str:
    base = adapter.get("base_model_name_or_path")
    front = {"library_name": "peft", "base_model": base, "tags": ["data-swarms", "lora"]}
    return (
        f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n\n"
        f"# Data Swarms generator ({summary['method']}, objective {summary['objective']})\n\n"
        f"A LoRA adapter for `{base}`: the best generator of a Data Swarms run. Its data: the dataset "
        f"repo `{repo_id}`. Held-out utility {summary['heldout']['utility']:.4f}.\n\n"
        f"    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained({base!r}), {repo_id!r})\n"
    )


def push(run_dir: Path, repo_id: str, api: Any = None, private: bool = False) -> list[str]:
    """Upload the adapter (model repo) and the dataset (dataset repo) of a finished run; their URLs."""
    best, summary_path = Path(run_dir) / "best", Path(run_dir) / "summary.json"
    needed = [summary_path, best / "generator" / "adapter_config.json", best / "dataset" / PARQUET, best / "dataset" / CARD]
    if missing := [str(p) for p in needed if not p.is_file()]:
        raise ConfigError(f"RUN_DIR: {run_dir} is not a finished dswarm run (missing {missing[0]})")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    summary = json.loads(summary_path.read_text())
    adapter = json.loads((best / "generator" / "adapter_config.json").read_text())
    urls = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        shutil.copytree(best / "generator", folder)
        (folder / CARD).write_text(model_card(adapter, repo_id, summary))
        for kind, path, patterns in (("model", folder, None), ("dataset", best / "dataset", [PARQUET, CARD])):
            api.create_repo(repo_id, repo_type=kind, private=private, exist_ok=True)
            commit = api.upload_folder(
                repo_id=repo_id, repo_type=kind, folder_path=str(path), allow_patterns=patterns,
                commit_message=f"dswarm-push {Path(run_dir).name}",
            )
            urls.append(str(getattr(commit, "commit_url", commit)))
    return urls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dswarm-push", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished run dir (summary.json, best/generator, best/dataset)")
    parser.add_argument("repo_id", help="the hub repo id for both the model and the dataset repo, e.g. me/arith-swarm")
    parser.add_argument("--private", action="store_true")
    args = parser.parse_args(argv)
    with exit_on_error():
        for url in _push_or_say_why(args.run_dir, args.repo_id, args.private):
            print(url)


def _push_or_say_why(run_dir: Path, repo_id: str, private: bool) -> list[str]:
    """`push`; offline mode, a refused token and an unreachable hub are one line each, not a traceback."""
    from huggingface_hub import errors

    network = (ConnectionError, TimeoutError, errors.HfHubHTTPError, getattr(errors, "HTTPError", ConnectionError))
    try:
        return push(run_dir, repo_id, private=private)
    except errors.OfflineModeIsEnabled:
        raise ConfigError("HF_HUB_OFFLINE: offline mode is on, so nothing can be pushed; unset HF_HUB_OFFLINE") from None
    except network as err:
        if full_error():
            raise
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            raise ConfigError(f"HF_TOKEN: the hub refused the push to {repo_id} (HTTP {status}); `hf auth login` or set "
                              "HF_TOKEN to a token that may write there") from None
        fail(1, f"cannot push to the hub ({type(err).__name__}: {first_line(err)}); check the network and retry")


if __name__ == "__main__":
    main()
