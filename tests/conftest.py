"""Shared test setup: offline everything, and the tiny zoo built once (cached across sessions)."""
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_zoo():
    """The tiny zoo in default_cache_dir() (<repo>/.cache or $DSWARM_CACHE): built on first use, then reused."""
    from generators.zoo import build_zoo, default_cache_dir

    return build_zoo("tiny", cache_dir=default_cache_dir())


HUB_ID = "dswarm-test/tiny-base"


def hub_cache(root, base_dir):
    """A local HF hub cache holding ``base_dir`` as the model HUB_ID (the layout `hf download` makes)."""
    import shutil

    repo = root / f"models--{HUB_ID.replace('/', '--')}"
    shutil.copytree(base_dir, repo / "snapshots" / "0123456789abcdef")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123456789abcdef")
    return root


@pytest.fixture(scope="session")
def workflow_run(tiny_zoo, tmp_path_factory):
    """One run as a researcher would start it: a hub-id base from the local HF cache (offline),
    adapters by relative paths, hydra.job.chdir=true, W&B on (offline). Returns its run dir."""
    import shutil

    from tests.cli import dswarm, env

    root = tmp_path_factory.mktemp("workflow")
    cache = hub_cache(root / "hub", tiny_zoo.base_dir)
    names = sorted(tiny_zoo.generators)
    for name in names:
        shutil.copytree(tiny_zoo.generators[name], root / "adapters" / name)
    zoo_settings = (Path(__file__).parents[1] / "conf" / "generator" / "zoo.yaml").read_text()
    writing = zoo_settings[zoo_settings.index("template:"):]  # the zoo's prompt and sampling settings
    adapters = "".join(f"\n  - adapters/{n}" for n in names)
    (root / "conf" / "generator").mkdir(parents=True)
    (root / "conf" / "generator" / "hub_tiny.yaml").write_text(  # generator=hf with the zoo's experts
        f"defaults:\n  - hf\nbase: {HUB_ID}\nadapters:{adapters}\n{writing}"
    )
    environ = {**env(), "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    dswarm(
        f"hydra.searchpath=[file://{root / 'conf'}]", "generator=hub_tiny", "pso.max_steps=2", "logger=wandb",
        "hydra.job.chdir=true", "hydra.run.dir=run", cwd=root, environ=environ,
    )
    return root / "run"
