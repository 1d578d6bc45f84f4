"""Shared test setup: offline everything, and the tiny zoo built once (cached across sessions)."""
import os

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
