"""The weak-to-strong pipeline's shared pieces: what studies 01 (W2SG), 02 (oversight) and later
studies call to train a strong student on labels from a weak supervisor and to measure it.

- `W2SConfig`: everything that shapes a trained head or model (part of the cache keys).
- `make_learner`: linear probes on frozen, cached `features`, or a fine-tuned model; one API.
- `train_on_labels`: a student on soft labels and a ceiling on gold labels, evaluated once.
- `pgr`: performance gap recovered, NaN with a `PGRUndefinedWarning` when there is no gap.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

FEATURES_VERSION = "1"
METHODS = ("single", "bagging", "boosting")


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


def features(model_name: str, texts, batch_size: int = 32, progress: bool = False, layer: float = 1.0) -> np.ndarray:
    """Pooled frozen features (n, dim) of `texts` under `model_name`, read at `layer` (a fraction of
    depth, 1.0 the last layer; see `alignlab.models.FeatureExtractor`), computed once and cached."""
    from alignlab.cache import Cache
    from alignlab.models import load_feature_extractor

    texts = [str(t) for t in texts]
    key = dict(model=model_name, texts=texts) if float(layer) == 1.0 else dict(model=model_name, texts=texts, layer=float(layer))
    return Cache().memo("features", FEATURES_VERSION,
                        lambda: load_feature_extractor(model_name, layer=layer)(texts, batch_size=batch_size, progress=progress),
                        **key)


@dataclass
class W2SConfig:
    """Everything that shapes one seed's results (part of its cache key)."""

    mode: str = "probe"  # probe or finetune
    feature_layer: float = 0.5  # probe mode: the depth features are read at (fraction; 1.0 = last layer)
    losses: list = field(default_factory=lambda: ["xent", "logconf", "product"])
    methods: list = field(default_factory=lambda: list(METHODS))
    n_bagging: int = 10  # bagging members trained; the number used is chosen on validation
    n_boosting: int = 10  # maximum AdaBoost rounds
    epochs: int = 100
    lr: float = 1e-2
    batch_size: int = 4096
    weight_decay: float = 1e-3
    alpha_max: float = 0.75
    warmup_frac: float = 0.2
    student_val: str = "weak"  # weak or gold: the labels the student's epochs are chosen on
    # finetune mode only
    train_layers: int | None = None
    lora_r: int = 0
    finetune_epochs: int = 2
    finetune_lr: float = 5e-5
    finetune_batch_size: int = 16

    def train_config(self, loss: str = "xent", seed: int = 0):
        from alignlab.training.learners import TrainConfig

        if self.mode == "finetune":
            return TrainConfig(loss=loss, epochs=self.finetune_epochs, lr=self.finetune_lr,
                               batch_size=self.finetune_batch_size, weight_decay=0.0,
                               alpha_max=self.alpha_max, warmup_frac=self.warmup_frac, seed=seed)
        return TrainConfig(loss=loss, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                           weight_decay=self.weight_decay, alpha_max=self.alpha_max,
                           warmup_frac=self.warmup_frac, seed=seed)


def check_config(config: W2SConfig) -> None:
    """Domain checks, with the parameter name and the allowed values (fast, before any work)."""
    from alignlab.training.losses import LOSSES
    from alignlab.training.learners import MODES

    if config.mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {config.mode!r}")
    bad = [loss for loss in config.losses if loss not in LOSSES]
    if bad or not config.losses:
        raise ValueError(f"losses must be a non-empty list of {', '.join(LOSSES)}, got {config.losses!r}")
    bad = [m for m in config.methods if m not in METHODS]
    if bad or not config.methods or config.methods[0] != "single":
        raise ValueError(f"methods must start with 'single' and be drawn from {', '.join(METHODS)}, got {config.methods!r}")
    if not 0.0 <= config.feature_layer <= 1.0:
        raise ValueError(f"feature_layer must be a fraction of depth in [0, 1] (0.5: the middle block, 1.0: the last "
                         f"layer), got {config.feature_layer}")
    if not 0.0 <= config.alpha_max <= 1.0:
        raise ValueError(f"alpha_max must be in [0, 1], got {config.alpha_max}")
    if not 0.0 <= config.warmup_frac <= 1.0:
        raise ValueError(f"warmup_frac must be in [0, 1], got {config.warmup_frac}")
    if config.student_val not in ("weak", "gold"):
        raise ValueError(f"student_val must be 'weak' or 'gold', got {config.student_val!r}")
    for name in ("n_bagging", "n_boosting", "epochs", "batch_size"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")


def _auroc(y, probs) -> float:
    from alignlab.stats import auroc

    return float(auroc(y, probs[:, 1]))


def _acc(y, probs) -> float:
    return float((probs.argmax(1) == np.asarray(y)).mean())


def make_learner(model_name: str, texts: dict, config: W2SConfig, progress: bool = False):
    """A ProbeLearner on cached features, or a FinetuneLearner, for `model_name` on `texts` per split."""
    from alignlab.training.learners import FinetuneLearner, ProbeLearner

    if config.mode == "probe":
        return ProbeLearner({split: features(model_name, t, progress=progress, layer=config.feature_layer)
                             for split, t in texts.items()})
    return FinetuneLearner(model_name, texts, train_layers=config.train_layers, lora_r=config.lora_r)


def train_on_labels(learner, split: str, train_idx, soft_labels, gold_labels, test_idx, y_test,
                    config: W2SConfig, seed: int, loss: str = "xent") -> dict:
    """The student and the ceiling of this pipeline on labels produced elsewhere (e.g. a judge in
    `alignlab.studies.oversight.protocols`): the student learns `soft_labels` (n, 2) on `train_idx`, the ceiling
    the gold labels; both are evaluated on `test_idx`. No validation split: heads train for the
    configured epochs. Returns {"student_acc", "ceiling_acc", "student_auc", "ceiling_auc"}."""
    y_test = np.asarray(y_test)
    ceiling = learner.predict(learner.fit(split, train_idx, np.asarray(gold_labels), config.train_config("xent", seed)),
                              split, test_idx)
    student = learner.predict(learner.fit(split, train_idx, np.asarray(soft_labels, dtype=np.float32),
                                          config.train_config(loss, seed)), split, test_idx)
    return {"student_acc": _acc(y_test, student), "ceiling_acc": _acc(y_test, ceiling),
            "student_auc": _auroc(y_test, student), "ceiling_auc": _auroc(y_test, ceiling)}
