"""Where things live: the project root, results, figures, and the user cache.

- Project root: `$ALIGNLAB_ROOT` if set, else the nearest folder above the current directory
  (or above this file, for an editable install) that holds `pyproject.toml` and `notebooks/`.
- User cache (converted model weights, content-addressed artifacts): `$ALIGNLAB_CACHE` if set,
  else `$XDG_CACHE_HOME/alignlab`, else `~/.cache/alignlab`. Never inside the git tree.
- The current run folder: `$ALIGNLAB_RUN_DIR`, set by the runner for the notebook it executes;
  in an interactive session it is `results/<notebook>/interactive/`.
"""

from __future__ import annotations

import os
from pathlib import Path


def _looks_like_root(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / "notebooks").is_dir()


def project_root() -> Path:
    env = os.environ.get("ALIGNLAB_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        for candidate in (start, *start.parents):
            if _looks_like_root(candidate):
                return candidate
    return Path.cwd().resolve()


def results_dir() -> Path:
    return project_root() / "results"


def figures_dir() -> Path:
    return project_root() / "figures"


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def profiles_dir() -> Path:
    return project_root() / "profiles"


def data_dir() -> Path:
    """Small embedded data the project authors itself (checked into git)."""
    return project_root() / "data"


def cache_dir() -> Path:
    env = os.environ.get("ALIGNLAB_CACHE")
    if env:
        path = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(base) / "alignlab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir(notebook: str | None = None) -> Path:
    """The folder the current run writes into (created on demand)."""
    env = os.environ.get("ALIGNLAB_RUN_DIR")
    if env:
        path = Path(env)
    else:
        path = results_dir() / (notebook or "scratch") / "interactive"
    path.mkdir(parents=True, exist_ok=True)
    return path
