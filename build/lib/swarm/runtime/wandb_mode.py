"""Whether W&B runs online or offline here, decided before anything loads.

``logger.mode``, else $WANDB_MODE, else online when logged in (WANDB_API_KEY,
or the netrc entry ``wandb login`` writes), else offline. Asking for online
without credentials is a setting the run cannot use: `check_online` says so in
one line at startup, not after the models have loaded. Imports nothing heavy.
"""
from __future__ import annotations

import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

from swarm.runtime.errors import ConfigError


def logged_in() -> bool:
    """Whether W&B has credentials here: WANDB_API_KEY, or the netrc entry `wandb login` writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    path = os.environ.get("NETRC") or str(Path.home() / ".netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode(configured: str | None) -> str:
    """``logger.mode``, else $WANDB_MODE, else online when logged in, else offline."""
    return configured or os.environ.get("WANDB_MODE") or ("online" if logged_in() else "offline")


def check_online(configured: str | None) -> None:
    """Online W&B needs credentials: a ConfigError naming logger.mode (or $WANDB_MODE) when there are none."""
    if wandb_mode(configured) == "online" and not logged_in():
        key = "logger.mode" if configured else "WANDB_MODE"
        raise ConfigError(f"{key}: online needs W&B credentials (WANDB_API_KEY, or `wandb login`), and there are none "
                          "here; use logger.mode=offline (then `wandb sync`) or logger=none")
