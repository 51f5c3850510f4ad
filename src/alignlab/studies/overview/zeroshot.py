"""Zero-shot accuracy on the binary view of a SciQ-shaped dataset: the capability ladder.

Every later study needs to know which model is weak and which is strong. Here each model
answers without training:

- a causal LM scores every candidate answer of a question by its log-likelihood after
  "Q: {question} A:" (alignlab.lm.scoring; length-normalized by default);
- an encoder (no LM head) scores each candidate by the cosine similarity of its embedding to the
  question's, a retrieval-style zero-shot.

Binary view. Each example shows ONE candidate (the correct answer or a distractor, balanced
labels; alignlab.data.binary_view). The model predicts 1 iff the shown candidate is its top-ranked
candidate for that question, and its probability of 1 is the softmax weight of the shown candidate
among all candidates. Chance is 0.5 in accuracy and in AUROC: a model that ranks at random says
1 a quarter of the time, right on a quarter of the positives and three quarters of the negatives.

Candidate scores do not depend on the seed, so they are computed once per (model, questions) and
cached; a seed only redraws which candidate each question shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alignlab.cache import Cache

CODE_VERSION = "zeroshot-1"
DISTRACTORS = ("distractor1", "distractor2", "distractor3")


def candidates(row: dict) -> list[str]:
    """The candidate answers of a SciQ-shaped row, correct answer first (as in binary_view)."""
    return [row["correct_answer"], *(row[d] for d in DISTRACTORS)]


def _lm_scores(model_name: str, questions, normalize: bool, batch_size: int) -> np.ndarray:
    from alignlab.models import load_causal_lm
    from alignlab.lm.scoring import score_pairs

    model, tokenizer = load_causal_lm(model_name)
    pairs = [(f"Q: {row['question']} A:", f" {choice}") for row in questions for choice in candidates(row)]
    scores = score_pairs(model, tokenizer, pairs, batch_size=batch_size, progress=True).get(normalize)
    return scores.reshape(len(questions), -1)


def _encoder_scores(model_name: str, questions, batch_size: int) -> np.ndarray:
    from alignlab.models import load_feature_extractor

    extract = load_feature_extractor(model_name)
    q = extract([f"Q: {row['question']}" for row in questions], batch_size=batch_size, progress=True)
    a = extract([choice for row in questions for choice in candidates(row)], batch_size=batch_size, progress=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    a = a.reshape(len(questions), -1, q.shape[1])
    return np.einsum("nd,ncd->nc", q, a)


def candidate_scores(model_name: str, questions, normalize: bool = True, batch_size: int = 32,
                     cache: Cache | None = None) -> np.ndarray:
    """(n_questions, n_candidates) scores, correct answer in column 0. Cached by model and data."""
    from alignlab.models import model_kind

    kind = model_kind(model_name)

    def compute():
        if kind == "encoder":
            return _encoder_scores(model_name, questions, batch_size)
        return _lm_scores(model_name, questions, normalize, batch_size)

    cache = cache or Cache()
    content = [[row["question"], *candidates(row)] for row in questions]  # the key is the data itself
    return cache.memo("zeroshot-scores", CODE_VERSION, compute, model=model_name, questions=content,
                      normalize=normalize if kind == "decoder" else None)


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = (scores - scores.max(axis=1, keepdims=True)) / temperature
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def binary_predictions(scores: np.ndarray, view) -> pd.DataFrame:
    """Per-example predictions on a binary view whose `id` column indexes rows of `scores`.

    Columns: id, kind (when present), label, shown (index of the candidate shown), pred, prob, correct.
    """
    ids = np.asarray(view["id"])
    shown = np.array([choices.index(answer) for choices, answer in zip(view["choices"], view["answer"])])
    rows = scores[ids]
    temperature = 0.05 if np.all(np.abs(rows) <= 1.0) else 1.0  # cosine similarities live in [-1, 1]
    prob = softmax(rows, temperature)[np.arange(len(ids)), shown]
    pred = (rows.argmax(axis=1) == shown).astype(int)
    label = np.asarray(view["label"])
    out = pd.DataFrame({"id": ids, "label": label, "shown": shown, "pred": pred, "prob": prob,
                        "correct": (pred == label).astype(int)})
    if "kind" in view.column_names:
        out.insert(1, "kind", view["kind"])
    return out


def evaluate(models: list[str], questions, seeds: list[int], normalize: bool = True,
             batch_size: int = 32) -> pd.DataFrame:
    """Tidy per-example predictions for every model and seed (columns: model, seed, + binary_predictions)."""
    from alignlab.data import binary_view

    frames = []
    for name in models:
        scores = candidate_scores(name, questions, normalize=normalize, batch_size=batch_size)
        for seed in seeds:
            frame = binary_predictions(scores, binary_view(questions, seed=seed))
            frame.insert(0, "seed", seed)
            frame.insert(0, "model", name)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def multiple_choice_accuracy(models: list[str], questions, normalize: bool = True) -> pd.DataFrame:
    """4-way accuracy (chance 0.25) per model: is the correct answer ranked first? (cached scores)."""
    return pd.DataFrame([{"model": name,
                          "mc_accuracy": float((candidate_scores(name, questions, normalize).argmax(1) == 0).mean())}
                         for name in models])


def accuracy_table(predictions: pd.DataFrame, by: list[str] | None = None, n_boot: int = 2000) -> pd.DataFrame:
    """Accuracy and AUROC per model (and `by` columns), with a 95% CI over questions.

    The CI is a bootstrap over questions of each question's accuracy averaged over seeds (seeds
    redraw the shown answer; questions are the sampling unit). AUROC is the mean over seeds.
    """
    from alignlab.stats import auroc, bootstrap_ci

    by = ["model", *(by or [])]
    rows = []
    for keys, group in predictions.groupby(by, sort=False):
        per_question = group.groupby("id")["correct"].mean().to_numpy()
        lo, hi = bootstrap_ci(per_question, n_boot=n_boot)
        aurocs = [auroc(g["label"].to_numpy(), g["prob"].to_numpy()) for _, g in group.groupby("seed")]
        keys = keys if isinstance(keys, tuple) else (keys,)
        rows.append({**dict(zip(by, keys)), "accuracy": per_question.mean(), "lo": lo, "hi": hi,
                     "auroc": float(np.nanmean(aurocs)), "questions": len(per_question)})
    return pd.DataFrame(rows)


def ladder_comparisons(predictions: pd.DataFrame, models: list[str], n_boot: int = 2000) -> pd.DataFrame:
    """Paired bootstrap CI of the accuracy difference between each consecutive pair of models."""
    from alignlab.stats import paired_bootstrap_ci

    per_model = {name: g.groupby("id")["correct"].mean() for name, g in predictions.groupby("model")}
    rows = []
    for weaker, stronger in zip(models, models[1:]):
        a, b = per_model[stronger].align(per_model[weaker], join="inner")
        lo, hi = paired_bootstrap_ci(a.to_numpy(), b.to_numpy(), n_boot=n_boot)
        rows.append({"weaker": weaker, "stronger": stronger, "difference": float(a.mean() - b.mean()),
                     "lo": lo, "hi": hi, "holds": bool(lo > 0)})
    return pd.DataFrame(rows)


def conclusion(table: pd.DataFrame, comparisons: pd.DataFrame) -> str:
    """Markdown stating, with the numbers, whether the ladder weak < strong holds."""
    from alignlab.stats import format_ci, verdict

    lines = ["**Zero-shot accuracy on the binary view** (chance 0.5; 95% CI over questions):", ""]
    for row in table.itertuples():
        lines.append(f"- `{row.model}`: {format_ci(row.accuracy, row.lo, row.hi)}, AUROC {row.auroc:.3f}")
    lines.append("")
    for row in comparisons.itertuples():
        said = verdict(row.difference, row.lo, row.hi, above="holds", below="is reversed",
                       straddles="is not established", unknown="is not established")
        lines.append(f"- `{row.weaker}` < `{row.stronger}` {said}: difference "
                     f"{format_ci(row.difference, row.lo, row.hi)} (paired bootstrap).")
    if len(comparisons):
        every = comparisons["holds"].all()
        lines += ["", "The ladder weak < strong " + ("holds at every step" if every else "does **not** hold at every step")
                  + " here, so " + ("these models can serve as weak teacher and strong student in that order."
                                    if every else "choose weak/strong pairs only from steps that hold.")]
    return "\n".join(lines)


def metric_key(model_name: str) -> str:
    """A model name as it appears in metric keys: `Qwen/Qwen2.5-7B` -> `Qwen_Qwen2.5-7B`."""
    return model_name.replace("/", "_")


def metrics(table: pd.DataFrame, mc: pd.DataFrame, comparisons: pd.DataFrame) -> dict:
    """The flat metrics.json of the overview: zeroshot_acc_<model> and friends."""
    out = {}
    for row in table.itertuples():
        key = metric_key(row.model)
        out[f"zeroshot_acc_{key}"] = row.accuracy
        out[f"zeroshot_acc_lo_{key}"] = row.lo
        out[f"zeroshot_acc_hi_{key}"] = row.hi
        out[f"zeroshot_auroc_{key}"] = row.auroc
    for row in mc.itertuples():
        out[f"mc_acc_{metric_key(row.model)}"] = row.mc_accuracy
    if len(comparisons):
        out["ladder_holds"] = bool(comparisons["holds"].all())
    return out


def plot_accuracy(table: pd.DataFrame):
    """Bars of binary-view accuracy per model with 95% CIs, chance marked."""
    import matplotlib.pyplot as plt

    from alignlab.figures import bar_with_ci, figsize, use_style

    use_style()
    fig, ax = plt.subplots(figsize=figsize("column"))
    bar_with_ci(ax, table, x="model", y="accuracy")
    ax.axhline(0.5, color="0.4", linestyle="--", linewidth=0.8, label="chance")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("")
    ax.set_ylabel("zero-shot accuracy (binary view)")
    ax.legend(loc="lower right", frameon=False)
    return fig


def plot_by_kind(by_kind: pd.DataFrame):
    """Heatmap of accuracy per fact type (rows) and model (columns)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from alignlab.figures import figsize, use_style

    use_style()
    grid = by_kind.pivot(index="kind", columns="model", values="accuracy")
    grid = grid[list(dict.fromkeys(by_kind["model"]))]
    fig, ax = plt.subplots(figsize=figsize("column", aspect=1.1))
    sns.heatmap(grid, annot=True, fmt=".2f", vmin=0.3, vmax=1.0, center=0.5, cmap="vlag", cbar=False, ax=ax)
    ax.set_xlabel("")
    ax.set_ylabel("fact type")
    ax.tick_params(axis="x", labelrotation=30)
    return fig
