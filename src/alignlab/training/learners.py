"""Training classifiers on gold or weak labels: one API, two modes.

    learner = ProbeLearner({"train": X_train, "validation": X_val, "test": X_test})   # frozen features
    learner = FinetuneLearner("minilm-l6", {"train": texts, ...}, lora_r=8)            # the model itself
    model = learner.fit("train", idx, targets, config, sample_weight=w, val_labels=y_val)
    probs = learner.predict(model, "test")                                              # (n, C)

`config` is a `FitConfig`: the loss, epochs, learning rate, batch size, weight decay, the
confidence loss's schedule and the seed of one fit.

`probe`: the backbone is frozen; its pooled features (last real token for decoders, mean for
encoders, read through the attention mask) are computed once per model and texts and cached
(`alignlab.training.w2s.cached_features`); a linear head is trained on them in torch (AdamW,
minibatches). A head trains in well under a second, so seeds, ensembles and losses are cheap.

`finetune`: `alignlab.models.load.load_classifier` (a linear head on the same mask-pooled state)
trained end to end, or only its last `train_layers` blocks, or with LoRA adapters (`lora_r > 0`,
through `peft`). The loop tokenizes once, batches examples of similar length together and pads
each batch only to its own longest sequence (benchmarks/bench_train.py compares it with a naive
loop).

Both modes train with any loss of `alignlab.training.losses` on soft targets (n, C), with optional
per-example weights. Without `val_labels` a fit trains for the configured epochs and keeps the last
one (openai/weak-to-strong's choice). With `val_labels` (the labels the caller trusts for the
choice; the test split is never seen here) it keeps the epoch with the best validation accuracy,
the LATEST among ties, so a tie cannot keep an epoch from before the confidence loss's weight has
ramped up. Either way the trained model records `best_epoch` (1-based; the last epoch when fixed).
"""

from __future__ import annotations

import copy
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import softmax

from alignlab.lm.batching import pad_batch
from alignlab.models.load import load_classifier
from alignlab.training.losses import ConfidenceWindow, compute_loss


@dataclass(kw_only=True)
class FitConfig:
    """The settings of one fit: a linear head (probe mode) or a fine-tuned model."""

    loss: str  # one of alignlab.training.LOSSES
    epochs: int
    lr: float
    batch_size: int
    weight_decay: float
    alpha_max: float  # confidence loss: full weight after warm-up
    warmup_frac: float  # fraction of all steps over which that weight ramps up linearly
    seed: int
    product_beta: float = 1.0  # product loss: the student's exponent, constant (openai: 1)
    confidence_window: int = 256  # confidence loss: examples its class-balance threshold is taken over


def as_targets(labels, n_classes: int = 2) -> np.ndarray:
    """Hard labels (n,) -> one-hot (n, C); soft labels (n, C) pass through (as float32)."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return labels.astype(np.float32)
    return np.eye(n_classes, dtype=np.float32)[labels.astype(int)]


def _accuracy(probs: np.ndarray, labels) -> float:
    return float((probs.argmax(1) == np.asarray(labels)).mean())


# ---------------------------------------------------------------------------------------------
# probe mode: a linear head on cached features


class LinearHead:
    """A standardizer (fit on the training features) and a linear layer; predict_proba -> (n, C).
    `best_epoch`: the epoch kept (1-based)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, weight: np.ndarray, bias: np.ndarray, best_epoch: int = 0):
        self.mean, self.std, self.weight, self.bias = mean, std, weight, bias
        self.best_epoch = best_epoch

    def logits(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.std) @ self.weight.T + self.bias

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return softmax(self.logits(X), axis=1)


@contextmanager
def single_thread():
    """Run tiny torch ops on one thread: on a shared CPU, thread hand-offs cost more than the math
    (a head trains ~10x faster this way on 2 busy cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_head(X, targets, config: FitConfig, sample_weight=None, X_val=None, val_labels=None) -> LinearHead:
    """Train a linear head on features X (n, d) against targets (n,) or (n, C)."""
    with single_thread():
        return _train_head(X, targets, config, sample_weight, X_val, val_labels)


def _train_head(X, targets, config: FitConfig, sample_weight, X_val, val_labels) -> LinearHead:
    X = np.asarray(X, dtype=np.float32)
    n_classes = 2 if np.asarray(targets).ndim == 1 else np.asarray(targets).shape[1]
    targets = torch.from_numpy(as_targets(targets, n_classes))
    mean, std = X.mean(0), X.std(0) + 1e-6
    Xt = torch.from_numpy((X - mean) / std)
    weights = None if sample_weight is None else torch.as_tensor(np.asarray(sample_weight), dtype=torch.float32)
    generator = torch.Generator().manual_seed(config.seed)
    head = torch.nn.Linear(X.shape[1], n_classes)
    with torch.no_grad():  # seeded initialisation, independent of the global RNG
        # small: near the convex optimum path
        head.weight.normal_(0.0, 0.1 / math.sqrt(X.shape[1]), generator=generator)
        head.bias.zero_()
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(Xt)
    batch_size = min(config.batch_size, n)
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = steps_per_epoch * config.epochs
    Xv = None if X_val is None else torch.from_numpy((np.asarray(X_val, dtype=np.float32) - mean) / std)
    window = ConfidenceWindow(config.confidence_window)
    best, best_acc, best_epoch, step = None, -1.0, config.epochs, 0
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss = compute_loss(config.loss, head(Xt[idx]), targets[idx], step, total_steps,
                                alpha_max=config.alpha_max, warmup_frac=config.warmup_frac,
                                sample_weight=None if weights is None else weights[idx],
                                product_beta=config.product_beta, window=window)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        if Xv is not None and val_labels is not None:
            with torch.no_grad():
                acc = float((head(Xv).argmax(1).numpy() == np.asarray(val_labels)).mean())
            if acc >= best_acc:  # ties keep the later epoch
                best_acc, best, best_epoch = acc, copy.deepcopy(head.state_dict()), epoch
    if best is not None:
        head.load_state_dict(best)
    return LinearHead(mean, std, head.weight.detach().numpy().copy(), head.bias.detach().numpy().copy(), best_epoch)


class ProbeLearner:
    """Linear heads on precomputed features, one array per split."""

    mode = "probe"

    def __init__(self, features: dict):
        self.features = {split: np.asarray(X, dtype=np.float32) for split, X in features.items()}

    def fit(self, split, idx, targets, config: FitConfig, sample_weight=None, val_labels=None, val_split="validation"):
        X = self.features[split][np.asarray(idx)]
        X_val = self.features[val_split] if val_labels is not None else None
        return train_head(X, targets, config, sample_weight, X_val, val_labels)

    def predict(self, model: LinearHead, split, idx=None) -> np.ndarray:
        X = self.features[split] if idx is None else self.features[split][np.asarray(idx)]
        return model.predict_proba(X)


# ---------------------------------------------------------------------------------------------
# finetune mode: the whole model (or its last blocks, or LoRA adapters) with the head


def length_batches(lengths, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (sorted, chunked, chunks shuffled), so each
    batch pads little; every index appears exactly once."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def with_lora(model, lora_r: int):
    """`model` wrapped with fresh LoRA adapters of rank `lora_r` on every linear layer (alpha 2r,
    no dropout); the base weights are frozen. The one LoRA setting of every fine-tuning loop."""
    # peft takes seconds to import and only LoRA fine-tuning needs it
    from peft import LoraConfig, get_peft_model  # noqa: PLC0415

    config = LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0, target_modules="all-linear")
    with warnings.catch_warnings():  # peft reads a property transformers has deprecated
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


def _trainable(classifier, train_layers: int | None, lora_r: int):
    """Freeze what should not train; returns the (possibly LoRA-wrapped) classifier."""
    if lora_r > 0:
        classifier.backbone = with_lora(classifier.backbone, lora_r)
        for p in classifier.head.parameters():
            p.requires_grad_(True)
        return classifier
    if train_layers is not None:
        for p in classifier.backbone.parameters():
            p.requires_grad_(False)
        layers = _blocks(classifier.backbone)
        for block in layers[len(layers) - train_layers:] if train_layers > 0 else []:
            for p in block.parameters():
                p.requires_grad_(True)
    return classifier


def _blocks(backbone):
    """The list of transformer blocks of a Hugging Face base model (BERT, Llama/Gemma, GPT-2)."""
    for path in ("encoder.layer", "layers", "h", "model.layers"):
        module = backbone
        try:
            for part in path.split("."):
                module = getattr(module, part)
            return list(module)
        except AttributeError:
            continue
    raise ValueError(f"cannot find the transformer blocks of {type(backbone).__name__}")


class FineTuned:
    """A trained classifier with its tokenizer; predict_proba(texts) -> (n, C). `best_epoch`: the
    epoch kept (1-based)."""

    def __init__(self, classifier, tokenizer, max_length: int, best_epoch: int = 0):
        self.classifier, self.tokenizer, self.max_length = classifier, tokenizer, max_length
        self.best_epoch = best_epoch

    def predict_proba(self, texts, batch_size: int = 64) -> np.ndarray:
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        order = np.argsort([len(e) for e in encoded], kind="stable")
        out = None
        device = next(self.classifier.parameters()).device
        self.classifier.eval()
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            input_ids, mask = pad_batch(self.tokenizer, [encoded[i] for i in idx], side="right", device=device)
            with torch.inference_mode():
                probs = torch.softmax(self.classifier(input_ids, mask).float(), -1).cpu().numpy()
            if out is None:
                out = np.zeros((len(order), probs.shape[1]), dtype=np.float32)
            out[idx] = probs
        return out


def finetune_classifier(model, texts, targets, config: FitConfig, sample_weight=None, val_texts=None,
                        val_labels=None, train_layers: int | None = None, lora_r: int = 0,
                        max_length: int = 256, autocast_bf16: bool = False) -> FineTuned:
    """Fine-tune `model` (a name, or a (classifier, tokenizer) pair) on texts against targets.

    The loop: tokenize once; batches of similar length, padded to their own longest sequence;
    the loss of `config.loss` with its warm-up over all steps; the last epoch is kept, or with
    `val_labels` the one with the best validation accuracy (the latest among ties). `autocast_bf16`
    runs the forward pass in bfloat16 (faster on CPUs with bf16 matmuls, on GPUs), master weights
    stay fp32.
    """
    torch.manual_seed(config.seed)  # head initialisation and LoRA adapters
    n_classes = 2 if np.asarray(targets).ndim == 1 else np.asarray(targets).shape[1]
    classifier, tokenizer = model if isinstance(model, tuple) else load_classifier(model, num_labels=n_classes)
    classifier = _trainable(classifier, train_layers, lora_r)
    targets = torch.from_numpy(as_targets(targets, n_classes))
    weights = None if sample_weight is None else torch.as_tensor(np.asarray(sample_weight), dtype=torch.float32)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    device = next(classifier.parameters()).device
    params = [p for p in classifier.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    steps_per_epoch = math.ceil(len(encoded) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    result = FineTuned(classifier, tokenizer, max_length, best_epoch=config.epochs)
    window = ConfidenceWindow(config.confidence_window)
    best, best_acc, step = None, -1.0, 0
    for epoch in range(1, config.epochs + 1):
        classifier.train()
        for idx in length_batches([len(e) for e in encoded], config.batch_size, rng):
            input_ids, mask = pad_batch(tokenizer, [encoded[i] for i in idx], side="right", device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
                logits = classifier(input_ids, mask)
            loss = compute_loss(config.loss, logits.float(), targets[idx].to(device), step, total_steps,
                                alpha_max=config.alpha_max, warmup_frac=config.warmup_frac,
                                sample_weight=None if weights is None else weights[idx].to(device),
                                product_beta=config.product_beta, window=window)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        if val_texts is not None and val_labels is not None:
            acc = _accuracy(result.predict_proba(val_texts), val_labels)
            if acc >= best_acc:  # ties keep the later epoch
                best_acc, result.best_epoch = acc, epoch
                best = {k: v.detach().clone() for k, v in classifier.state_dict().items()
                        if k in {n for n, p in classifier.named_parameters() if p.requires_grad}}
    if best is not None:
        classifier.load_state_dict(best, strict=False)
    classifier.eval()
    return result


class FinetuneLearner:
    """Fine-tuned copies of one model, trained on texts, one list per split."""

    mode = "finetune"

    def __init__(self, model_name: str, texts: dict, train_layers: int | None = None, lora_r: int = 0,
                 max_length: int = 256, autocast_bf16: bool = False):
        self.model_name, self.texts = model_name, {k: list(v) for k, v in texts.items()}
        self.train_layers, self.lora_r = train_layers, lora_r
        self.max_length, self.autocast_bf16 = max_length, autocast_bf16

    def fit(self, split, idx, targets, config: FitConfig, sample_weight=None, val_labels=None, val_split="validation"):
        texts = [self.texts[split][i] for i in np.asarray(idx)]
        val_texts = self.texts[val_split] if val_labels is not None else None
        return finetune_classifier(self.model_name, texts, targets, config, sample_weight, val_texts, val_labels,
                                   self.train_layers, self.lora_r, self.max_length, self.autocast_bf16)

    def predict(self, model: FineTuned, split, idx=None) -> np.ndarray:
        texts = self.texts[split] if idx is None else [self.texts[split][i] for i in np.asarray(idx)]
        return model.predict_proba(texts)
