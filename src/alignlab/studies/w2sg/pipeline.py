"""Weak-to-strong generalization (Burns et al. 2023) with better weak supervision (ensembles).

The pipeline, per seed and per (weak, strong) model pair:

1. The training split is cut in two random halves (the cut depends on the seed).
2. The weak teacher learns half 1 with gold labels and predicts soft labels on half 2. Teachers:
   `single` (one model), `bagging` (K members on bootstrap resamples of half 1, soft voting, K
   chosen on validation), `boosting` (SAMME, rounds chosen on validation); see
   `alignlab.training.ensembles`.
3. The strong ceiling learns half 2 with gold labels.
4. The strong student learns half 2 with the teacher's soft labels, once per loss (`xent`,
   `logconf`, `product`; see `alignlab.training.losses`) and per epoch selection.
5. All are evaluated once on the test split; PGR = (student - weak) / (ceiling - weak), on
   accuracy and on AUROC (`add_pgr`, through `alignlab.training.w2s.pgr`), against the student's
   own teacher and against the single teacher (`pgr_vs_single_*`: the same baseline for every
   method, so the methods compare like with like).

Choices on validation. Epochs of the teacher and the ceiling: best validation accuracy with gold
labels (they are trained on gold labels anyway). Epochs of the student, per `selections`: `fixed`
(the configured epochs, the last kept, as openai/weak-to-strong trains), `weak-val` (best agreement
with the teacher's labels on validation; it favours the epoch that imitates the teacher, which
works against the confidence loss) or `gold-val` (optimistic). The epoch kept is recorded
(`best_epoch`). Ensemble sizes: best validation accuracy with gold labels. Probe mode: each
model's feature depth is chosen among `feature_layers` on validation accuracy of a gold-label probe
(`alignlab.training.w2s.choose_feature_layer`) and recorded. The test split is used for nothing but the
final numbers.

What each seed varies: the halves, every head's initialisation and minibatch order, the bootstrap
resamples, and (in `alignlab.studies.w2sg.icl`) the demonstrations drawn.

Mode: `probe` (linear heads on frozen features, cached by `alignlab.training.w2s.cached_features`,
read at each model's chosen layer) or `finetune` (the models themselves, last layer; see
`alignlab.training.learners`). Both go through the same learner API.

Results of one seed are cached (`alignlab.cache`), keyed by everything that produced them, so a
warm re-run of a notebook recomputes nothing; PGR is computed from the cached accuracies outside
the cache, so its undefined-case warning appears on every run.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict
from functools import partial

import numpy as np
import pandas as pd

from alignlab import data
from alignlab.cache import Cache
from alignlab.studies.w2sg.config import Config, pair_name
from alignlab.training import METHODS, ensembles
from alignlab.training.w2s import (
    PGRUndefinedWarning,
    W2SConfig,
    accuracy_of,
    auroc_of,
    choose_feature_layer,
    make_learner,
    pgr,
    split_halves,
)

SEED_VERSION = "3"  # 2: a student per selection, best_epoch; product loss's own weight. 3: window >= batch
SPLITS = ("train", "validation", "test")


def w2s_config(config: Config) -> W2SConfig:
    """The training settings of the study's parameters; every teacher method of METHODS. Part of
    each seed's cache key, so the values are passed exactly as the parameters cell gives them."""
    return W2SConfig(mode=config.mode, losses=config.losses, methods=list(METHODS), n_bagging=config.n_bagging,
                     n_boosting=config.n_boosting, epochs=config.epochs, lr=config.lr, alpha_max=config.alpha_max,
                     warmup_frac=config.warmup_frac, product_beta=config.product_beta,
                     selections=config.selections, lora_r=config.lora_r,
                     finetune_epochs=config.finetune_epochs, finetune_lr=config.finetune_lr)


def load_splits(config: Config) -> tuple[dict, dict]:
    """The binary view of `config.dataset` (seed 0): texts (lists) and labels (arrays) per split,
    the first `config.split_limit` of each split when that is > 0."""
    ds = data.binary_view(data.load(config.dataset), seed=0)
    texts = {split: list(ds[split]["text"]) for split in SPLITS}
    labels = {split: np.asarray(ds[split]["label"]) for split in SPLITS}
    if config.split_limit:
        texts = {s: t[:config.split_limit] for s, t in texts.items()}
        labels = {s: y[:config.split_limit] for s, y in labels.items()}
    return texts, labels


def teachers(weak, labels: dict, half1, half2, config: W2SConfig, seed: int) -> tuple[dict, list]:
    """Train the weak teachers of `config.methods` on half 1.

    Returns ({method: {"train": soft labels on half 2, "validation": probs, "test": probs, "size": n}},
    curve rows: weak-label accuracy and validation accuracy against ensemble size)."""
    y, y_val = labels["train"], labels["validation"]
    base = config.fit_config("xent", seed)
    out, curve = {}, []

    def member_probs(models, splits):  # predictions on half 2 of train, on all of the other splits
        return {split: [weak.predict(m, split, half2 if split == "train" else None) for m in models]
                for split in splits}

    def predict_all(models, combine):
        return {split: combine(probs) for split, probs in member_probs(models, SPLITS).items()}

    if "single" in config.methods:
        model = weak.fit("train", half1, y[half1], base, val_labels=y_val)
        out["single"] = {**predict_all([model], lambda ps: ps[0]), "size": 1}

    if "bagging" in config.methods:
        members = ensembles.bagging(weak, "train", half1, y[half1], base, config.n_bagging, seed=seed, val_labels=y_val)
        probs = member_probs(members, ("train", "validation"))
        val_by_size = {}
        for k in range(1, len(members) + 1):
            for how in ("soft", "hard"):
                val = ensembles.vote(probs["validation"][:k], how)
                train = ensembles.vote(probs["train"][:k], how)
                soft_val = ensembles.vote(probs["validation"][:k], "soft")
                soft_train = ensembles.vote(probs["train"][:k], "soft")
                val_acc = float((ensembles.hard_vote_predict(val, soft_val) == y_val).mean())
                label_acc = float((ensembles.hard_vote_predict(train, soft_train) == y[half2]).mean())
                curve.append({"method": "bagging", "voting": how, "size": k, "val_acc": val_acc,
                              "weak_label_acc": label_acc})
                if how == "soft":
                    val_by_size[k] = val_acc
        size = ensembles.choose_size(val_by_size)
        out["bagging"] = {**predict_all(members[:size], lambda ps: ensembles.vote(ps, "soft")), "size": size}

    if "boosting" in config.methods:
        members, alphas, _ = ensembles.adaboost(weak, "train", half1, y[half1], base, config.n_boosting,
                                                n_classes=2, seed=seed, val_labels=y_val)
        probs = member_probs(members, ("train", "validation"))
        val_by_size = {}
        for r in range(1, len(members) + 1):
            val_acc = float((ensembles.boosted_predict(probs["validation"][:r], alphas[:r]) == y_val).mean())
            label_acc = float((ensembles.boosted_predict(probs["train"][:r], alphas[:r]) == y[half2]).mean())
            curve.append({"method": "boosting", "voting": "weighted", "size": r, "val_acc": val_acc,
                          "weak_label_acc": label_acc})
            val_by_size[r] = val_acc
        size = ensembles.choose_size(val_by_size)
        out["boosting"] = {**predict_all(members[:size], lambda ps: ensembles.boosted_proba(ps, alphas[:size])),
                           "size": size}
    return out, curve


def run_seed(weak, strong, labels: dict, config: W2SConfig, seed: int) -> dict:
    """One seed of the whole pipeline: {"rows": [...], "curve": [...]} of plain numbers (no PGR yet)."""
    labels = {k: np.asarray(v) for k, v in labels.items()}
    y, y_val, y_test = labels["train"], labels["validation"], labels["test"]
    half1, half2 = split_halves(len(y), seed)

    ceiling_model = strong.fit("train", half2, y[half2], config.fit_config("xent", seed), val_labels=y_val)
    ceiling = strong.predict(ceiling_model, "test")
    teacher_out, curve = teachers(weak, labels, half1, half2, config, seed)

    single = teacher_out.get("single")
    rows = []
    for method, t in teacher_out.items():
        soft = t["train"].astype(np.float32)
        val_labels = {"fixed": None, "weak-val": t["validation"].argmax(1), "gold-val": y_val}
        for selection in config.selections:
            for loss in config.losses:
                model = strong.fit("train", half2, soft, config.fit_config(loss, seed),
                                   val_labels=val_labels[selection])
                student = strong.predict(model, "test")
                rows.append({
                    "seed": seed, "method": method, "loss": loss, "selection": selection,
                    "best_epoch": model.best_epoch, "ensemble_size": t["size"],
                    "weak_label_acc": accuracy_of(y[half2], soft),
                    "weak_acc": accuracy_of(y_test, t["test"]), "weak_auc": auroc_of(y_test, t["test"]),
                    "single_weak_acc": accuracy_of(y_test, single["test"]) if single else float("nan"),
                    "single_weak_auc": auroc_of(y_test, single["test"]) if single else float("nan"),
                    "ceiling_acc": accuracy_of(y_test, ceiling), "ceiling_auc": auroc_of(y_test, ceiling),
                    "ceiling_best_epoch": ceiling_model.best_epoch,
                    "student_acc": accuracy_of(y_test, student), "student_auc": auroc_of(y_test, student),
                    "student_agreement": float((student.argmax(1) == t["test"].argmax(1)).mean()),
                })
    for row in curve:
        row["seed"] = seed
    return {"rows": rows, "curve": curve, "half2": half2.tolist(),
            "single_soft_labels": [] if single is None else single["train"].tolist(),
            "single_test_probs": [] if single is None else single["test"].tolist()}


def choose_layers(config: Config, texts: dict, labels: dict, progress: bool = False) -> pd.DataFrame:
    """Probe mode: each model's feature depth, chosen among `config.feature_layers` on validation
    accuracy (`alignlab.training.w2s.choose_feature_layer`); one row per (model, candidate layer) with its
    validation accuracy and whether it was chosen. Finetune mode: empty (the models train end to end)."""
    if config.mode != "probe":
        return pd.DataFrame(columns=["model", "layer", "val_acc", "chosen"])
    settings, rows = w2s_config(config), []
    for model in dict.fromkeys(config.weak_models + config.strong_models):
        if len(config.feature_layers) == 1:
            rows.append({"model": model, "layer": float(config.feature_layers[0]), "val_acc": float("nan"),
                         "chosen": True})
            continue
        chosen, accuracy = choose_feature_layer(model, texts, labels, config.feature_layers, settings,
                                                progress=progress)
        rows += [{"model": model, "layer": layer, "val_acc": acc, "chosen": layer == chosen}
                 for layer, acc in accuracy.items()]
    return pd.DataFrame(rows)


def run_study(config: Config, texts: dict, labels: dict, layers: pd.DataFrame | None = None, progress: bool = False):
    """Every pair and seed of `config`, each seed cached. `layers`: the table of `choose_layers`
    (computed here when None). Returns (results, curve, teacher_labels): two DataFrames (results
    with PGR) and {(pair, seed): (half-2 indices, the single teacher's soft labels on them, its
    probabilities on the test split)}."""
    settings = w2s_config(config)
    layers = choose_layers(config, texts, labels, progress) if layers is None else layers
    chosen = {r.model: float(r.layer) for r in layers[layers.chosen].itertuples()} if len(layers) else {}
    rows, curves, teacher_labels = [], [], {}
    for weak_name, strong_name in config.pairs:
        pair = pair_name(weak_name, strong_name)
        pair_layers = (chosen.get(weak_name), chosen.get(strong_name))
        learners = {}
        for seed in config.seeds:
            compute = partial(_run_seed_lazily, learners, weak_name, strong_name, texts, labels, settings, seed,
                              progress, pair_layers)
            result = Cache().memo("w2s_seed", SEED_VERSION, compute, weak=weak_name, strong=strong_name,
                                  texts=texts, labels={k: np.asarray(v) for k, v in labels.items()},
                                  config=asdict(settings), seed=seed, layers=list(pair_layers))
            rows += [{"pair": pair, "weak_layer": pair_layers[0], "strong_layer": pair_layers[1], **r}
                     for r in result["rows"]]
            curves += [{"pair": pair, **r} for r in result["curve"]]
            teacher_labels[(pair, seed)] = (np.asarray(result["half2"]), np.asarray(result["single_soft_labels"]),
                                            np.asarray(result["single_test_probs"]))
    results = add_pgr(pd.DataFrame(rows))
    return results, pd.DataFrame(curves), teacher_labels


def _run_seed_lazily(learners: dict, weak_name: str, strong_name: str, texts: dict, labels: dict,
                     settings: W2SConfig, seed: int, progress: bool, layers: tuple = (None, None)) -> dict:
    """`run_seed`, building the pair's two learners into `learners` on first use: their features
    (cached too) are loaded only when some seed is not cached."""
    if not learners:
        learners["weak"] = make_learner(weak_name, texts, settings, progress, layer=layers[0])
        learners["strong"] = make_learner(strong_name, texts, settings, progress, layer=layers[1])
    return run_seed(learners["weak"], learners["strong"], labels, settings, seed)


def add_pgr(results: pd.DataFrame) -> pd.DataFrame:
    """One PGR per row (seed), NaN where undefined: `pgr_acc`, `pgr_auc` against the row's own
    teacher, and `pgr_vs_single_acc`, `pgr_vs_single_auc` against the single teacher (the same
    baseline for every method). Also the gaps `gap_acc`, `gap_auc` (ceiling - own teacher).
    Undefined rows are never dropped silently: one PGRUndefinedWarning per call counts them per
    column and pair (a standard run has hundreds of rows; a warning per row buried the tables), and
    the tables report each PGR's number of seeds with a defined value."""
    results = results.copy()
    results["gap_acc"] = results.ceiling_acc - results.weak_acc
    results["gap_auc"] = results.ceiling_auc - results.weak_auc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PGRUndefinedWarning)
        for metric, what in (("acc", "accuracy"), ("auc", "AUROC")):
            for column, baseline in ((f"pgr_{metric}", f"weak_{metric}"),
                                     (f"pgr_vs_single_{metric}", f"single_weak_{metric}")):
                results[column] = [pgr(w, s, c, what) for w, s, c in
                                   zip(results[baseline], results[f"student_{metric}"], results[f"ceiling_{metric}"])]
    columns = ("pgr_acc", "pgr_vs_single_acc", "pgr_auc", "pgr_vs_single_auc")
    groups = results.groupby("pair", sort=False) if "pair" in results else [("all rows", results)]
    counts = [f"{pair}: " + ", ".join(f"{c} {int(g[c].isna().sum())}/{len(g)}" for c in columns if g[c].isna().any())
              for pair, g in groups if g[list(columns)].isna().any().any()]
    if counts:
        warnings.warn("PGR is undefined (reported as NaN) in runs whose ceiling is not above the teacher; "
                      "undefined rows per column: " + "; ".join(counts), PGRUndefinedWarning, stacklevel=2)
    return results
