"""The Hugging Face hub as seen from here: is it reachable, and what is already in the local caches.

Used by the model zoo and the dataset builders to fail in a second, with the fix, instead of
after a download's retries. Cheap to import (no torch, transformers or datasets).
"""

from __future__ import annotations

import functools
import os
import re
import socket
from pathlib import Path

from huggingface_hub import try_to_load_from_cache


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 1.5) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (cheap; cached per process)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    host = re.sub(r"^https?://", "", os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = host.split("/")[0]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def in_hub_cache(repo_id: str) -> bool:
    """Whether the model `repo_id` has a config.json in the local Hugging Face hub cache."""
    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # a malformed id or an unreadable cache both mean: not usable offline
        return False


def hf_datasets_cache() -> Path:
    """Where `datasets` keeps prepared data (the rule of datasets.config, without importing it)."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    hf_home = os.environ.get("HF_HOME") or Path(cache) / "huggingface"
    return Path(hf_home) / "datasets"
