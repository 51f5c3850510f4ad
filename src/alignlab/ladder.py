"""The ladder's capability card: what 00_overview measured about each model, for the studies that
pick roles (weak teacher, strong student, judge, debater) from measurements, not parameter counts.

00_overview writes one card per profile and dataset, `results/ladder-cards/<profile>/<dataset>.json`,
at the end of each run (a later run over other models adds to it; a model measured again is
replaced). A card per profile because the profiles measure differently (quick: one probe depth,
fp32; standard: four depths, bf16 on CPUs that have it): a quick run must not overwrite what the
standard run measured, and a standard study must order its models by standard measurements. The
profile is the runner's (`$ALIGNLAB_PROFILE`, set for every kernel); outside the runner it is
`quick`, whose parameters are the notebooks' defaults.

    {"dataset": "world-facts", "models": {"gemma3-270m": {"probe_acc": 0.757, "probe_acc_lo": ...,
      "zeroshot_acc": ..., "zeroshot_auroc": ..., "probe_layer": 0.5, "context_gain": ...,
      "context_gain_lo": ..., "reads_context": false, "run": "<run id>"}, ...}}

A study reads it:

    ladder.order(["gemma3-270m", "smollm2-135m"], "world-facts")   # weakest first, by probe accuracy
    ladder.steps(models, "world-facts")       # each consecutive step on the card, flagged if it goes down
    ladder.weakest_reader(models, "world-facts")  # the weakest model that reads its context, or None

Probe accuracy is the default measure of capability because it is what studies 01 and 07 train on
(a head on frozen features); zero-shot accuracy is the alternative for studies that prompt.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

from alignlab.paths import atomic_write, results_dir

METRICS = ("probe_acc", "zeroshot_acc", "zeroshot_auroc", "probe_auroc")


class NotOnCard(LookupError):
    """A model (or the whole dataset) has no entry on the capability card."""


def current_profile() -> str:
    """The profile this kernel runs in: `$ALIGNLAB_PROFILE` (the runner sets it), else "quick"."""
    return os.environ.get("ALIGNLAB_PROFILE") or "quick"


def _slug(text: str) -> str:
    return text if text.replace("-", "").replace("_", "").isalnum() else \
        "path-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def card_path(dataset: str, profile: str | None = None) -> Path:
    """The card of `dataset` in `profile` (default: `current_profile()`): the dataset's name, or for a
    local folder a short hash of the path."""
    return results_dir() / "ladder-cards" / _slug(profile or current_profile()) / f"{_slug(dataset)}.json"


def read_card(dataset: str, profile: str | None = None) -> dict:
    """{model: entry} for `dataset` in `profile`; empty when 00_overview has not run on it there."""
    path = card_path(dataset, profile)
    if not path.exists():
        return {}
    return json.loads(path.read_text())["models"]


def write_card(dataset: str, entries: dict, profile: str | None = None) -> Path:
    """Add or replace the entries of `entries` ({model: {metric: value}}) on `dataset`'s card of
    `profile`, each marked with the run that measured it (the run folder's name; "interactive"
    outside the runner)."""
    run = Path(os.environ["ALIGNLAB_RUN_DIR"]).name if os.environ.get("ALIGNLAB_RUN_DIR") else "interactive"
    profile = profile or current_profile()
    models = read_card(dataset, profile)
    for name, entry in entries.items():
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in entry.items()}
        models[name] = {**clean, "run": run}
    path = card_path(dataset, profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"dataset": dataset, "profile": profile, "models": models}, indent=1, sort_keys=True)
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def _entry(card: dict, name: str, dataset: str, profile: str | None) -> dict:
    if name not in card:
        profile = profile or current_profile()
        raise NotOnCard(f"'{name}' has no entry on the {profile} profile's capability card of '{dataset}' "
                        f"({card_path(dataset, profile)}); measure it first: alignlab run 00_overview "
                        f"--profile {profile} -p dataset {dataset} -p models '[\"{name}\", ...]'")
    return card[name]


def capability(name: str, dataset: str, metric: str = "probe_acc", profile: str | None = None) -> float:
    """The card's `metric` for `name` on `dataset` (raises NotOnCard when it was never measured)."""
    if metric not in METRICS:
        raise ValueError(f"unknown capability metric '{metric}': use one of {', '.join(METRICS)}")
    value = _entry(read_card(dataset, profile), name, dataset, profile).get(metric)
    if value is None:
        raise NotOnCard(f"'{name}' on the card of '{dataset}' has no '{metric}' (that 00_overview run skipped it)")
    return float(value)


def order(models: list[str], dataset: str, metric: str = "probe_acc", profile: str | None = None) -> list[str]:
    """`models` sorted weakest first by the card's `metric` (ties keep the given order)."""
    return sorted(models, key=lambda m: capability(m, dataset, metric, profile))


def steps(models: list[str], dataset: str, metric: str = "probe_acc", profile: str | None = None) -> list[dict]:
    """Each consecutive step of `models` (in the given order) with both models' `metric` on the card and
    `goes_down` where the second is below the first."""
    values = [capability(m, dataset, metric, profile) for m in models]
    return [{"weak": a, "strong": b, f"weak_{metric}": x, f"strong_{metric}": y, "goes_down": y < x}
            for a, b, x, y in zip(models, models[1:], values, values[1:])]


def weakest_reader(models: list[str], dataset: str, metric: str = "probe_acc",
                   profile: str | None = None) -> str | None:
    """The weakest (by `metric`) of `models` whose "reads its context" check passed on the card (the
    CI of oracle − naive judge accuracy above 0), or None when none did."""
    card = read_card(dataset, profile)
    readers = [m for m in models if _entry(card, m, dataset, profile).get("reads_context")]
    return order(readers, dataset, metric, profile)[0] if readers else None
