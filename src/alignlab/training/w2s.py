"""The weak-to-strong pieces that several studies share: training a strong student on labels from a
weak supervisor and measuring it (study 01 with weak models as teachers, study 02 with a judge).

- `W2SConfig`: everything that shapes a trained head or model (part of study 01's cache keys).
- `cached_features`, `cached_features_at`: pooled frozen features, one layer or a sweep in one pass.
- `make_learner`: linear probes on frozen, `cached_features`, or a fine-tuned model; one API.
- `choose_feature_layer`: the feature depth of a model, chosen on validation accuracy only.
- `train_on_labels`: a student on soft labels and a ceiling on gold labels, evaluated once.
- `pgr`: performance gap recovered, NaN with a `PGRUndefinedWarning` when there is no gap.
- `accuracy_of`, `auroc_of`: the two test metrics of a (n, 2) probability array.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from alignlab.cache import Cache
from alignlab.models.load import load_feature_extractor
from alignlab.stats import auroc
from alignlab.training.learners import FinetuneLearner, FitConfig, ProbeLearner

FEATURES_VERSION = "1"


class PGRUndefinedWarning(UserWarning):
    """The strong ceiling is not above the weak teacher: PGR is undefined (reported as NaN)."""


def pgr(weak: float, student: float, ceiling: float, what: str = "accuracy") -> float:
    """Performance gap recovered: (student - weak) / (ceiling - weak).

    0 means the student only matches its teacher, 1 means it matches the ceiling trained on gold
    labels. When ceiling <= weak there is no gap to recover and the ratio means nothing: the
    result is NaN and a PGRUndefinedWarning says so (never a huge number from a tiny gap's sign).
    """
    weak, student, ceiling = float(weak), float(student), float(ceiling)
    if any(math.isnan(v) for v in (weak, student, ceiling)):
        return float("nan")
    if ceiling <= weak:
        warnings.warn(f"PGR on {what} is undefined: the ceiling ({ceiling:.4f}) is not above the weak "
                      f"teacher ({weak:.4f}); reported as NaN", PGRUndefinedWarning, stacklevel=2)
        return float("nan")
    return (student - weak) / (ceiling - weak)


def split_halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random partition of range(n) into two halves (sorted index arrays), set by `seed`."""
    order = np.random.default_rng([seed, 1]).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])


def _features_key(model_name: str, texts: list, layer: float) -> dict:
    key = dict(model=model_name, texts=texts)
    if layer != 1.0:  # the last layer's entries predate `layer`
        key["layer"] = layer
    return key


def cached_features(model_name: str, texts, batch_size: int = 32, progress: bool = False,
                    layer: float = 1.0) -> np.ndarray:
    """Pooled frozen features (n, dim) of `texts` under `model_name`, read at `layer` (a fraction of
    depth, 1.0 the last layer; see `alignlab.models.load.FeatureExtractor`), computed once and cached."""
    return cached_features_at(model_name, texts, [layer], batch_size, progress)[float(layer)]


def cached_features_at(model_name: str, texts, layers, batch_size: int = 32, progress: bool = False) -> dict:
    """{layer: features (n, dim)} at each depth of `layers`: the cached ones read, the missing ones
    computed together in one forward pass that stops at the deepest of them, each cached under the
    same key as `cached_features` uses, so a layer sweep costs one pass instead of one per layer."""
    texts = [str(t) for t in texts]
    layers = sorted({float(x) for x in layers})
    cache = Cache()
    out, missing = {}, []
    for layer in layers:
        found, value = cache.lookup("features", FEATURES_VERSION, **_features_key(model_name, texts, layer))
        if found:
            out[layer] = value
        else:
            missing.append(layer)
    if missing:
        computed = load_feature_extractor(model_name).extract(texts, missing, batch_size=batch_size, progress=progress)
        for layer in missing:
            out[layer] = cache.memo("features", FEATURES_VERSION, lambda layer=layer: computed[layer],
                                    **_features_key(model_name, texts, layer))
    return out


@dataclass(kw_only=True)
class W2SConfig:
    """Everything that shapes one seed's results (study 01 hashes it, with `asdict`, into the cache
    key of each seed: field names and values must not change without a new cache version).

    `mode`, `losses` and `methods` (teachers: `alignlab.training.METHODS`, "single" first) are
    always given; the other defaults are the settings study 02 trains its student with.
    `selections` (`alignlab.training.SELECTIONS`) are the ways study 01 chooses a student's epoch;
    study 01 trains one student per selection. `product_beta` is the product loss's own constant
    weight (openai/weak-to-strong: 1); `alpha_max` and `warmup_frac` shape the confidence loss only."""

    mode: str = "probe"  # alignlab.training.MODES
    feature_layer: float = 0.5  # probe mode: the depth features are read at (fraction; 1.0 = last layer)
    losses: list  # alignlab.training.LOSSES
    methods: list
    n_bagging: int = 10  # bagging members trained; the number used is chosen on validation
    n_boosting: int = 10  # maximum AdaBoost rounds
    epochs: int = 100
    lr: float = 1e-2
    batch_size: int = 4096  # probe heads: full batch
    weight_decay: float = 1e-3
    alpha_max: float = 0.75
    warmup_frac: float = 0.2
    product_beta: float = 1.0
    selections: list = field(default_factory=lambda: ["fixed"])
    # finetune mode only
    train_layers: int | None = None
    lora_r: int = 0
    finetune_epochs: int = 2
    finetune_lr: float = 5e-5
    finetune_batch_size: int = 16

    def fit_config(self, loss: str = "xent", seed: int = 0) -> FitConfig:
        """The settings of one fit with `loss` and `seed` in this config's mode."""
        if self.mode == "finetune":
            return FitConfig(loss=loss, epochs=self.finetune_epochs, lr=self.finetune_lr,
                             batch_size=self.finetune_batch_size, weight_decay=0.0,
                             alpha_max=self.alpha_max, warmup_frac=self.warmup_frac, seed=seed,
                             product_beta=self.product_beta)
        return FitConfig(loss=loss, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                         weight_decay=self.weight_decay, alpha_max=self.alpha_max,
                         warmup_frac=self.warmup_frac, seed=seed, product_beta=self.product_beta)


def accuracy_of(y, probs) -> float:
    """Accuracy of the argmax of `probs` (n, C) against labels `y`."""
    return float((probs.argmax(1) == np.asarray(y)).mean())


def auroc_of(y, probs) -> float:
    """AUROC of the positive-class probability `probs[:, 1]` against binary labels `y`."""
    return float(auroc(y, probs[:, 1]))


def make_learner(model_name: str, texts: dict, config: W2SConfig, progress: bool = False,
                 layer: float | None = None):
    """A ProbeLearner on cached features (read at `layer`, by default `config.feature_layer`), or a
    FinetuneLearner, for `model_name` on `texts` per split."""
    if config.mode == "probe":
        layer = config.feature_layer if layer is None else layer
        return ProbeLearner({split: cached_features(model_name, t, progress=progress, layer=layer)
                             for split, t in texts.items()})
    return FinetuneLearner(model_name, texts, train_layers=config.train_layers, lora_r=config.lora_r)


def choose_feature_layer(model_name: str, texts: dict, labels: dict, layers, config: W2SConfig, seed: int = 0,
                 progress: bool = False) -> tuple[float, dict]:
    """The depth among `layers` at which a probe of `model_name`, trained on the train split's gold
    labels for the configured epochs, is most accurate on the validation split (the shallowest
    among ties). The test split is not read: its features are computed later, at the chosen layer
    only. The features of all `layers` come from one forward pass per split (`cached_features_at`).
    Returns (layer, {layer: validation accuracy})."""
    train = cached_features_at(model_name, texts["train"], layers, progress=progress)
    validation = cached_features_at(model_name, texts["validation"], layers, progress=progress)
    y, y_val = np.asarray(labels["train"]), np.asarray(labels["validation"])
    accuracy = {}
    for layer in sorted(train):
        learner = ProbeLearner({"train": train[layer], "validation": validation[layer]})
        head = learner.fit("train", np.arange(len(y)), y, config.fit_config("xent", seed))
        accuracy[layer] = accuracy_of(y_val, learner.predict(head, "validation"))
    best = max(accuracy.values())
    return min(layer for layer, acc in accuracy.items() if acc >= best - 1e-12), accuracy


def train_on_labels(learner, split: str, train_idx, soft_labels, gold_labels, test_idx, y_test,
                    config: W2SConfig, seed: int, loss: str = "xent") -> dict:
    """A student and its ceiling on labels produced elsewhere (e.g. a judge's in study 02): the
    student learns `soft_labels` (n, 2) on `train_idx`, the ceiling the gold labels; both are
    evaluated on `test_idx`. No validation split: heads train for the configured epochs. Returns
    {"student_acc", "ceiling_acc", "student_auc", "ceiling_auc"}."""
    y_test = np.asarray(y_test)
    ceiling = learner.predict(learner.fit(split, train_idx, np.asarray(gold_labels), config.fit_config("xent", seed)),
                              split, test_idx)
    student = learner.predict(learner.fit(split, train_idx, np.asarray(soft_labels, dtype=np.float32),
                                          config.fit_config(loss, seed)), split, test_idx)
    return {"student_acc": accuracy_of(y_test, student), "ceiling_acc": accuracy_of(y_test, ceiling),
            "student_auc": auroc_of(y_test, student), "ceiling_auc": auroc_of(y_test, ceiling)}
