"""Models by hub id: ``generator.base=google/gemma-2-9b-it`` through the Hugging Face cache.

    resolve_model("google/gemma-2-9b-it", "generator.base")  # -> the snapshot dir in the HF cache
    resolve_model("/models/gemma", "generator.base")           # a local dir stays as it is

A setting that names an existing dir is that dir. Anything else that looks
like a hub id (``name`` or ``org/name``, optionally ``@revision``) is fetched
into (or, with ``HF_HUB_OFFLINE=1``, only looked up in) the HF cache, taking
only safetensors weights, configs and tokenizer files: no pickled ``.bin``
weights and no Python files, so no remote code can arrive this way. The
model is then loaded from that local snapshot exactly like a local dir.

``ModelDir`` and ``AdapterDir`` are the settings' types for the sources that take
such paths (generators/sources/hf.py): checked when the config is, before any model loads.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?(@[\w./-]+)?$")
ALLOWED = ["*.safetensors", "*.safetensors.index.json", "*.json", "tokenizer*", "*.model", "*.tiktoken", "*.txt", "*.jinja"]


def is_hub_id(value: str) -> bool:
    """``org/name`` (or ``name``) that is not a path anyone would type: no leading ``/``, ``.`` or ``~``."""
    return bool(_HUB_ID.match(value)) and not Path(value).exists()


def resolve_model(value: str, setting: str) -> Path:
    """The local dir of a model or adapter setting: the dir itself, or the hub id's cached snapshot.

    Failures are a one-line ValueError naming ``setting`` (the CLI's exit 2); generators/ imports nothing from swarm/.
    """
    try:
        return _locate(value)
    except ValueError as err:
        raise ValueError(f"{setting}: {err}") from None


def _locate(value: str) -> Path:
    """``resolve_model`` without the setting's name in its errors."""
    if Path(value).is_dir():
        return Path(value)
    if not is_hub_id(value):
        raise ValueError(f"directory not found and not a hub id: {value}")
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo_id, _, revision = value.partition("@")
    try:
        snapshot = Path(snapshot_download(repo_id, revision=revision or None, allow_patterns=ALLOWED))
    except LocalEntryNotFoundError:
        where = "HF_HUB_OFFLINE=1: " if constants.HF_HUB_OFFLINE else ""
        raise ValueError(
            f"{where}{value} is not in the local HF cache ({constants.HF_HUB_CACHE}) and is not a local dir; "
            "download it once with `hf download` or give a local dir"
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise ValueError(f"cannot fetch {value} from the hub: {str(err).splitlines()[0]}") from None
    if not any(snapshot.glob("*.safetensors")):
        raise ValueError(f"{value} has no safetensors weights in the HF cache (only safetensors are loaded)")
    return snapshot


ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def model_dir(value: str) -> str:
    """A local model dir, or a hub id whose snapshot is (or, online, can be put) in the HF cache."""
    _locate(value)
    return value


def adapter_dir(value: str) -> str:
    """A PEFT adapter dir (or hub id) holding its config and safetensors weights."""
    path = _locate(value)
    for name in ADAPTER_FILES:
        if not (path / name).is_file():
            extra = " (pickled .bin adapters are not loaded: convert to safetensors)" if name.endswith(".safetensors") else ""
            raise ValueError(f"{path} has no {name}{extra}")
    return value


ModelDir = Annotated[str, AfterValidator(model_dir)]
AdapterDir = Annotated[str, AfterValidator(adapter_dir)]
