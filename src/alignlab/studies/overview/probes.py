"""Frozen-feature probe accuracy on the binary view: the second rung of the capability card.

Zero-shot accuracy asks what a model says without training; a probe asks what its features
KNOW: a linear head (logistic regression, `alignlab.training.learners.train_head`) trained on the
frozen, pooled features of each text with the train split's gold labels.

- Data: the binary view of the dataset drawn with seed 0, every row of train, validation and test
  (`probe_splits`; `limit` > 0 keeps the first rows of each split, for smoke tests), the same texts
  as study 01's probes, so the two studies share one feature cache
  (`alignlab.training.w2s.cached_features`).
- Training: study 01's ceiling settings (`alignlab.training.w2s.W2SConfig`: AdamW, lr 1e-2,
  weight decay 1e-3, batch 4096, i.e. full batch on world-facts), `epochs` passes, the epoch with
  the best validation accuracy kept. A seed sets the head's initialisation and minibatch order.
- Layer: each candidate depth in `layers` (fractions of the blocks) is trained on, and the depth
  with the best validation accuracy (mean over seeds; ties go to the earlier entry of `layers`)
  is chosen per model. Only then is the test split read, once, at the chosen depth.

One trained head per (model, layer, seed) is cached (kind `overview-probe`), with its validation
predictions; test predictions are recomputed from the cached head (a matrix product).

    result = evaluate_probes(["minilm-l6", "gemma3-270m"], "world-facts", layers=[0.5], seeds=[0, 1, 2])
    result.validation    # model, layer, seed, val_accuracy
    result.chosen        # model -> chosen layer
    result.predictions   # model, seed, id, label, prob, pred, correct (test split, chosen layer)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from alignlab import data
from alignlab.cache import Cache
from alignlab.training.learners import LinearHead, train_head
from alignlab.training.w2s import W2SConfig, cached_features, cached_features_at

CODE_VERSION = "overview-probe-1"
SPLITS = ("train", "validation", "test")


@dataclass
class ProbeResults:
    """Validation accuracy per (model, layer, seed), the chosen layer per model, test predictions."""

    validation: pd.DataFrame
    chosen: dict
    predictions: pd.DataFrame


def probe_splits(dataset: str, limit: int = 0) -> tuple[dict, dict]:
    """The binary view of `dataset` (seed 0): texts (lists) and labels (arrays) per split, every row,
    or the first `limit` of each split when it is > 0 (as study 01 prepares them with its
    `split_limit`, so the cached features are shared)."""
    view = data.binary_view(data.load(dataset), seed=0)
    texts = {split: list(view[split]["text"]) for split in SPLITS}
    labels = {split: np.asarray(view[split]["label"]) for split in SPLITS}
    if limit:
        texts = {s: t[:limit] for s, t in texts.items()}
        labels = {s: y[:limit] for s, y in labels.items()}
    return texts, labels


def probe_settings(epochs: int) -> W2SConfig:
    """Study 01's probe settings for a head trained on gold labels, with `epochs` passes."""
    return W2SConfig(mode="probe", losses=["xent"], methods=["single"], epochs=epochs)


def fit_probe(model_name: str, texts: dict, labels: dict, layer: float, seed: int, epochs: int,
              cache: Cache | None = None, progress: bool = False, sweep: list | None = None) -> dict:
    """The head of one (model, layer, seed), trained on train with gold labels, epochs chosen on
    validation; cached. Returns {"mean", "std", "weight", "bias", "val_probs"} (arrays).

    `sweep`: every layer the caller will fit; when this head's features are missing, all of the
    sweep's layers are extracted in the same forward pass (`cached_features_at`)."""
    layer = float(layer)
    fit = probe_settings(epochs).fit_config("xent", seed)
    sweep = sorted({float(x) for x in sweep or []} | {layer})

    def compute():
        X = cached_features_at(model_name, texts["train"], sweep, progress=progress)[layer]
        X_val = cached_features_at(model_name, texts["validation"], sweep, progress=progress)[layer]
        head = train_head(X, labels["train"], fit, X_val=X_val, val_labels=labels["validation"])
        return {"mean": head.mean, "std": head.std, "weight": head.weight, "bias": head.bias,
                "val_probs": head.predict_proba(X_val)}

    cache = cache or Cache()
    return cache.memo("overview-probe", CODE_VERSION, compute, model=model_name,
                      texts={s: texts[s] for s in ("train", "validation")},
                      labels={s: np.asarray(labels[s]) for s in ("train", "validation")},
                      layer=layer, seed=seed, fit=asdict(fit))


def choose_layer(validation: pd.DataFrame, layers: list) -> float:
    """The layer of `validation` (one model's rows) with the best mean validation accuracy over
    seeds; ties go to the earlier entry of `layers`."""
    means = validation.groupby("layer")["val_accuracy"].mean()
    order = [float(x) for x in layers]
    return max(order, key=lambda x: (means[x], -order.index(x)))


def predict_test(model_name: str, head: dict, texts: dict, labels: dict, layer: float,
                     progress: bool = False) -> pd.DataFrame:
    """Per-example predictions of one cached head on the test split (columns id, label, prob, pred, correct)."""
    X = cached_features(model_name, texts["test"], progress=progress, layer=float(layer))
    probs = LinearHead(head["mean"], head["std"], head["weight"], head["bias"]).predict_proba(X)
    label = np.asarray(labels["test"])
    prob, pred = probs[:, 1], probs.argmax(1)
    return pd.DataFrame({"id": np.arange(len(label)), "label": label, "prob": prob, "pred": pred,
                         "correct": (pred == label).astype(int)})


def evaluate_probes(models: list[str], dataset: str, layers: list, seeds: list[int], epochs: int = 100,
                    limit: int = 0, cache: Cache | None = None, progress: bool = False) -> ProbeResults:
    """Probes of every model at every layer and seed on `probe_splits(dataset, limit)`; the layer
    chosen on validation per model; test predictions (tidy, columns model, seed, id, label, prob,
    pred, correct) at the chosen layer only."""
    texts, labels = probe_splits(dataset, limit)
    return evaluate_probes_on(models, texts, labels, layers, seeds, epochs, cache, progress)


def evaluate_probes_on(models: list[str], texts: dict, labels: dict, layers: list, seeds: list[int],
                       epochs: int = 100, cache: Cache | None = None, progress: bool = False) -> ProbeResults:
    """`evaluate_probes` on given texts and labels per split (train, validation, test)."""
    validation, chosen, frames = [], {}, []
    y_val = np.asarray(labels["validation"])
    for name in models:
        heads, rows = {}, []
        for layer in layers:
            for seed in seeds:
                head = fit_probe(name, texts, labels, layer, seed, epochs, cache, progress, sweep=layers)
                heads[float(layer), seed] = head
                rows.append({"model": name, "layer": float(layer), "seed": seed,
                             "val_accuracy": float((head["val_probs"].argmax(1) == y_val).mean())})
        validation += rows
        chosen[name] = choose_layer(pd.DataFrame(rows), layers)
        for seed in seeds:  # the test split, read once: at the chosen layer
            frame = predict_test(name, heads[chosen[name], seed], texts, labels, chosen[name], progress)
            frame.insert(0, "seed", seed)
            frame.insert(0, "model", name)
            frames.append(frame)
    return ProbeResults(pd.DataFrame(validation), chosen, pd.concat(frames, ignore_index=True))
