"""Where things live: the project root, results, figures, and the user cache.

- Project root: `$ALIGNLAB_ROOT` if set, else the nearest folder above the current directory
  (or above this file, for an editable install) that holds `pyproject.toml` and `notebooks/`.
- User cache (converted model weights, content-addressed artifacts): `$ALIGNLAB_CACHE` if set,
  else `$XDG_CACHE_HOME/alignlab`, else `~/.cache/alignlab`. Never inside the git tree.
- A cold run: `$ALIGNLAB_NO_CACHE` (`cold_run_id`); the artifact cache reads only what the same
  cold run computed.
- Every file the project writes goes through `atomic_write`: a temporary file beside the target,
  fsync'ed, then renamed, so a killed run never leaves a half-written file.
- The current run folder: `$ALIGNLAB_RUN_DIR`, set by the runner for the notebook it executes;
  in an interactive kernel (JupyterLab) it is `results/<notebook>/interactive/`.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


def cold_run_id() -> str | None:
    """The id of the cold run under way, or None when the artifact cache reads as usual.

    `ALIGNLAB_NO_CACHE=1` (or true/yes) starts a cold run: the first call replaces the value with
    `run:<random id>`, which every process started after it inherits (the runner calls this before
    it starts a kernel). The cache reads only entries written under the same id, so a cold run
    behaves like a run on an empty cache across all its processes: a sweep's later runs read what
    its earlier ones computed, and nothing stored before the run is read."""
    value = os.environ.get("ALIGNLAB_NO_CACHE", "").strip()
    if value.lower() in ("1", "true", "yes"):
        value = f"run:{secrets.token_hex(8)}"
        os.environ["ALIGNLAB_NO_CACHE"] = value
    return value if value.startswith("run:") else None


def run_dir(notebook: str | None = None) -> Path:
    """The folder the current run writes into (created on demand)."""
    env = os.environ.get("ALIGNLAB_RUN_DIR")
    if env:
        path = Path(env)
    else:
        path = results_dir() / (notebook or "scratch") / "interactive"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); harmless to skip where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Call `write(f)` on a temporary binary file beside `path`, fsync, then rename it to `path`.

    If `write` raises (or the process dies) nothing appears under `path`; the temporary file
    is removed on an exception.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
