"""What a notebook calls inside its kernel: check its parameters, save its metrics and figures.

    from alignlab.nb import check_params, save_figure, save_metrics
    from alignlab.studies.overview.config import Config

    config = Config.from_params(check_params("00_overview", globals()))
    ...
    save_figure(fig, "zeroshot-accuracy")
    save_metrics(metrics)

`check_params` checks the values in the notebook's namespace exactly as `alignlab run` does
(relative paths are taken from the kernel's working directory, the notebook's folder) and
remembers the notebook, so the save helpers know where to write: the run folder
(`$ALIGNLAB_RUN_DIR`, set by the runner) or `results/<notebook>/interactive/`. The helpers return
nothing, so a cell that ends with them displays no machine paths.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
from pathlib import Path

from alignlab import figures
from alignlab.paths import atomic_write, run_dir
from alignlab.run.execute import display_path
from alignlab.run.params import check_value, read_parameters, resolve_notebook, resolve_paths
from alignlab.study_config import ParameterError

_current_notebook: str | None = None  # set by check_params


def check_params(notebook: str, namespace: dict) -> dict:
    """Validate a notebook's parameters from its own namespace; return them as a plain dict.

    The names come from the parameters cell of `notebooks/<notebook>.ipynb`, and the values are
    checked exactly as `alignlab run` checks them; paths come back absolute. Raises ParameterError."""
    global _current_notebook
    path = resolve_notebook(notebook)
    parameters = read_parameters(path)
    missing = [name for name in parameters if name not in namespace]
    if missing:
        raise ParameterError(f"{path.stem}: parameter(s) {', '.join(missing)} not defined; run the parameters "
                             f"cell first.")
    cwd = Path.cwd()
    params = {name: check_value(path.stem, p, resolve_paths(path.stem, name, namespace[name], cwd, choices=p.choices))
              for name, p in parameters.items()}
    _current_notebook = path.stem
    return params


def current_notebook() -> str:
    """The notebook named by `check_params` (or `$ALIGNLAB_NOTEBOOK`, set by the runner)."""
    notebook = _current_notebook or os.environ.get("ALIGNLAB_NOTEBOOK")
    if not notebook:
        raise RuntimeError("no notebook is known yet: call check_params(<notebook stem>, globals()) first "
                           "(the second cell of every study notebook does).")
    return notebook


def _as_number(name: str, value) -> float | None:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # numpy / torch scalars
    if not isinstance(value, numbers.Real):
        raise ValueError(
            f"metric {name!r} must be a single number, got {type(value).__name__} "
            f"{repr(value)[:80]}. metrics.json is a flat mapping of names to numbers: save one "
            f"number per name (e.g. '{name}/mean', '{name}/seed0').")
    value = float(value)
    return value if math.isfinite(value) else None


def save_metrics(metrics: dict) -> None:
    """Write `metrics.json` (a flat mapping of names to numbers) into the run folder.

    Values may be int, float, bool or numpy/torch scalars; all are stored as floats, NaN and inf
    as null. Nested values (lists, dicts) are rejected. Prints the file's path relative to the
    project (never an absolute path) and the values."""
    if not isinstance(metrics, dict):
        raise ValueError(f"metrics must be a dict of names to numbers, got {type(metrics).__name__}.")
    clean = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise ValueError(f"metric names must be strings, got {name!r}.")
        clean[name] = _as_number(name, value)
    path = run_dir(current_notebook()) / "metrics.json"
    text = json.dumps(clean, indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    width = max((len(name) for name in clean), default=0)
    shown = display_path(path)
    print(f"metrics -> {'metrics.json in the run folder' if Path(shown).is_absolute() else shown}")
    for name, value in clean.items():
        print(f"  {name:<{width}}  {'null' if value is None else f'{value:.6g}'}")
    save_token_counts()


def save_token_counts() -> None:
    """Write `tokens.json` beside metrics.json: the tokens this kernel ran through language models
    (`alignlab.lm.prefix.TOKENS`: as given, actually computed after prefix sharing, padded). Nothing
    when no model ran here (a warm run that found everything in the cache counts none)."""
    prefix = sys.modules.get("alignlab.lm.prefix")  # never imported: no LM ran, and torch stays unloaded
    if prefix is None or not prefix.TOKENS.sequence_tokens:
        return
    counts = {name: int(value) for name, value in prefix.TOKENS.snapshot().items()}  # numpy ints arrive too
    counts["sharing_ratio"] = round(counts["sequence_tokens"] / max(counts["computed_tokens"], 1), 3)
    text = json.dumps(counts, indent=2) + "\n"
    atomic_write(run_dir(current_notebook()) / "tokens.json", lambda f: f.write(text.encode("utf-8")))


def save_figure(fig, name: str) -> None:
    """Save `fig` as PDF and 300-dpi PNG under `figures/<notebook>/` and the run folder.
    `None` (a plot function's answer when there is nothing to draw) saves nothing."""
    if fig is None:
        return
    figures.export_figure(fig, current_notebook(), name)
