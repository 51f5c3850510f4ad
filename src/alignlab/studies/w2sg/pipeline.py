"""Weak-to-strong generalization (Burns et al. 2023) with better weak supervision (ensembles).

The pipeline, per seed and per (weak, strong) model pair:

1. The training split is cut in two random halves (the cut depends on the seed).
2. The weak teacher learns half 1 with gold labels and predicts soft labels on half 2. Teachers:
   `single` (one model), `bagging` (K members on bootstrap resamples of half 1, soft voting, K
   chosen on validation), `boosting` (SAMME, rounds chosen on validation); see
   `alignlab.training.ensembles`.
3. The strong ceiling learns half 2 with gold labels.
4. The strong student learns half 2 with the teacher's soft labels, once per loss (`xent`,
   `logconf`, `product`; see `alignlab.training.losses`).
5. All are evaluated once on the test split; PGR = (student - weak) / (ceiling - weak), on
   accuracy and on AUROC (`pgr`).

Choices on validation. Epochs of the teacher and the ceiling: best validation accuracy with gold
labels (they are trained on gold labels anyway). Epochs of the student: best agreement with the
TEACHER's labels on the validation split by default (`student_val="weak"`: in the weak-to-strong
setting gold labels for the strong task are not available; "gold" is the optimistic variant).
Ensemble sizes: best validation accuracy with gold labels. The test split is used for nothing but
the final numbers.

What each seed varies: the halves, every head's initialisation and minibatch order, the bootstrap
resamples, and (in `alignlab.studies.w2sg.icl`) the demonstrations drawn.

Mode: `probe` (linear heads on frozen, cached features: `features`, read at `feature_layer`, by
default the middle of the network, where small LMs' features carry the facts best; chosen once, a
priori, for every model alike, not tuned per model) or `finetune` (the models themselves, last
layer; see `alignlab.training.learners`). Both go through the same learner API.

Results of one seed are cached (`alignlab.cache`), keyed by everything that produced them, so a
warm re-run of a notebook recomputes nothing; PGR is computed from the cached accuracies outside
the cache, so its undefined-case warning appears on every run.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from alignlab.training.w2s import (  # noqa: F401  (the study's public names)
    METHODS, PGRUndefinedWarning, W2SConfig, _acc, _auroc, check_config, features, make_learner, pgr,
    split_halves, train_on_labels,
)

SEED_VERSION = "1"


def teachers(weak, labels: dict, half1, half2, config: W2SConfig, seed: int) -> tuple[dict, list]:
    """Train the weak teachers of `config.methods` on half 1.

    Returns ({method: {"train": soft labels on half 2, "validation": probs, "test": probs, "size": n}},
    curve rows: weak-label accuracy and validation accuracy against ensemble size)."""
    from alignlab.training import ensembles

    y, y_val = labels["train"], labels["validation"]
    base = config.train_config("xent", seed)
    out, curve = {}, []

    def predict_all(models, combine):
        return {split: combine([weak.predict(m, split, half2 if split == "train" else None) for m in models])
                for split in ("train", "validation", "test")}

    if "single" in config.methods:
        model = weak.fit("train", half1, y[half1], base, val_labels=y_val)
        out["single"] = {**predict_all([model], lambda ps: ps[0]), "size": 1}

    if "bagging" in config.methods:
        members = ensembles.bagging(weak, "train", half1, y[half1], base, config.n_bagging, seed=seed, val_labels=y_val)
        probs = {s: [weak.predict(m, s, half2 if s == "train" else None) for m in members] for s in ("train", "validation")}
        val_by_size = {}
        for k in range(1, len(members) + 1):
            for how in ("soft", "hard"):
                val = ensembles.vote(probs["validation"][:k], how)
                train = ensembles.vote(probs["train"][:k], how)
                soft_val = ensembles.vote(probs["validation"][:k], "soft")
                soft_train = ensembles.vote(probs["train"][:k], "soft")
                val_acc = float((ensembles.hard_vote_predict(val, soft_val) == y_val).mean())
                label_acc = float((ensembles.hard_vote_predict(train, soft_train) == y[half2]).mean())
                curve.append({"method": "bagging", "voting": how, "size": k, "val_acc": val_acc, "weak_label_acc": label_acc})
                if how == "soft":
                    val_by_size[k] = val_acc
        size = ensembles.choose_size(val_by_size)
        out["bagging"] = {**predict_all(members[:size], lambda ps: ensembles.vote(ps, "soft")), "size": size}

    if "boosting" in config.methods:
        members, alphas, _ = ensembles.adaboost(weak, "train", half1, y[half1], base, config.n_boosting,
                                                n_classes=2, seed=seed, val_labels=y_val)
        probs = {s: [weak.predict(m, s, half2 if s == "train" else None) for m in members] for s in ("train", "validation")}
        val_by_size = {}
        for r in range(1, len(members) + 1):
            val_acc = float((ensembles.boosted_predict(probs["validation"][:r], alphas[:r]) == y_val).mean())
            label_acc = float((ensembles.boosted_predict(probs["train"][:r], alphas[:r]) == y[half2]).mean())
            curve.append({"method": "boosting", "voting": "weighted", "size": r, "val_acc": val_acc, "weak_label_acc": label_acc})
            val_by_size[r] = val_acc
        size = ensembles.choose_size(val_by_size)
        out["boosting"] = {**predict_all(members[:size], lambda ps: ensembles.boosted_proba(ps, alphas[:size])), "size": size}
    return out, curve


def run_seed(weak, strong, labels: dict, config: W2SConfig, seed: int) -> dict:
    """One seed of the whole pipeline: {"rows": [...], "curve": [...]} of plain numbers (no PGR yet)."""
    labels = {k: np.asarray(v) for k, v in labels.items()}
    y, y_val, y_test = labels["train"], labels["validation"], labels["test"]
    half1, half2 = split_halves(len(y), seed)

    ceiling_model = strong.fit("train", half2, y[half2], config.train_config("xent", seed), val_labels=y_val)
    ceiling = strong.predict(ceiling_model, "test")
    teacher_out, curve = teachers(weak, labels, half1, half2, config, seed)

    rows = []
    for method, t in teacher_out.items():
        soft = t["train"].astype(np.float32)
        student_val = t["validation"].argmax(1) if config.student_val == "weak" else y_val
        for loss in config.losses:
            model = strong.fit("train", half2, soft, config.train_config(loss, seed), val_labels=student_val)
            student = strong.predict(model, "test")
            rows.append({
                "seed": seed, "method": method, "loss": loss, "ensemble_size": t["size"],
                "weak_label_acc": _acc(y[half2], soft),
                "weak_acc": _acc(y_test, t["test"]), "weak_auc": _auroc(y_test, t["test"]),
                "ceiling_acc": _acc(y_test, ceiling), "ceiling_auc": _auroc(y_test, ceiling),
                "student_acc": _acc(y_test, student), "student_auc": _auroc(y_test, student),
                "student_agreement": float((student.argmax(1) == t["test"].argmax(1)).mean()),
            })
    for row in curve:
        row["seed"] = seed
    single = teacher_out.get("single")
    return {"rows": rows, "curve": curve, "half2": half2.tolist(),
            "single_soft_labels": [] if single is None else single["train"].tolist()}


def run_study(pairs: list[tuple[str, str]], texts: dict, labels: dict, seeds: list[int], config: W2SConfig,
              progress: bool = False):
    """All pairs and seeds, each seed cached. Returns (results, curve, teacher_labels): two DataFrames
    (results with PGR) and {(pair, seed): (half-2 indices, single teacher's soft labels on them)}."""
    import pandas as pd

    from alignlab.cache import Cache

    check_config(config)
    rows, curves, teacher_labels = [], [], {}
    for weak_name, strong_name in pairs:
        learners = {}
        for seed in seeds:
            def compute(seed=seed):
                if not learners:  # features (cached too) only when some seed is not cached
                    learners["weak"] = make_learner(weak_name, texts, config, progress)
                    learners["strong"] = make_learner(strong_name, texts, config, progress)
                return run_seed(learners["weak"], learners["strong"], labels, config, seed)

            result = Cache().memo("w2s_seed", SEED_VERSION, compute, weak=weak_name, strong=strong_name,
                                  texts=texts, labels={k: np.asarray(v) for k, v in labels.items()},
                                  config=asdict(config), seed=seed)
            pair = f"{weak_name} -> {strong_name}"
            rows += [{"pair": pair, **r} for r in result["rows"]]
            curves += [{"pair": pair, **r} for r in result["curve"]]
            teacher_labels[(pair, seed)] = (np.asarray(result["half2"]), np.asarray(result["single_soft_labels"]))
    results = add_pgr(pd.DataFrame(rows))
    return results, pd.DataFrame(curves), teacher_labels


def add_pgr(results):
    """Columns pgr_acc and pgr_auc, one PGR per row (seed); NaN with a warning where undefined."""
    results = results.copy()
    results["pgr_acc"] = [pgr(w, s, c, "accuracy") for w, s, c in
                          zip(results.weak_acc, results.student_acc, results.ceiling_acc)]
    results["pgr_auc"] = [pgr(w, s, c, "AUROC") for w, s, c in
                          zip(results.weak_auc, results.student_auc, results.ceiling_auc)]
    return results


def summary_table(results):
    """One row per (pair, method, loss): mean [95% t-CI over seeds] of the key numbers."""
    import pandas as pd

    from alignlab.stats import format_ci, summarize

    columns = ["weak_label_acc", "weak_acc", "ceiling_acc", "student_acc", "pgr_acc", "pgr_auc"]
    table = None
    for column in columns:
        s = summarize(results, by=["pair", "method", "loss"], value=column)
        s[column] = [format_ci(m, lo, hi) for m, lo, hi in zip(s["mean"], s["lo"], s["hi"])]
        s = s[["pair", "method", "loss", column]]
        table = s if table is None else table.merge(s, on=["pair", "method", "loss"])
    order = {m: i for i, m in enumerate(METHODS)}
    table["_o"] = table["method"].map(order)
    return table.sort_values(["pair", "_o", "loss"]).drop(columns="_o").reset_index(drop=True)


def metrics(results, curve, icl_results=None) -> dict:
    """The flat metrics of the study (means over seeds, first pair), as the issue names them."""
    first = results[results.pair == results.pair.iloc[0]]

    def mean(method, loss, column):
        rows = first[(first.method == method) & (first.loss == loss)]
        return float(rows[column].mean()) if len(rows) else float("nan")

    def ci(method, loss, column):
        from alignlab.stats import t_ci

        return t_ci(first[(first.method == method) & (first.loss == loss)][column].to_numpy())

    out = {
        "weak_acc": mean("single", "xent", "weak_acc"),
        "ceiling_acc": mean("single", "xent", "ceiling_acc"),
        "student_acc_xent": mean("single", "xent", "student_acc"),
        "student_acc_logconf": mean("single", "logconf", "student_acc"),
        "pgr_xent": mean("single", "xent", "pgr_acc"),
        "pgr_logconf": mean("single", "logconf", "pgr_acc"),
        "pgr_auc_xent": mean("single", "xent", "pgr_auc"),
        "pgr_auc_logconf": mean("single", "logconf", "pgr_auc"),
        "weak_label_acc": mean("single", "xent", "weak_label_acc"),
        "bagging_weak_acc": mean("bagging", "xent", "weak_acc"),
        "bagging_weak_label_acc": mean("bagging", "xent", "weak_label_acc"),
        "bagging_student_acc": mean("bagging", "xent", "student_acc"),
        "bagging_pgr": mean("bagging", "xent", "pgr_acc"),
        "bagging_pgr_logconf": mean("bagging", "logconf", "pgr_acc"),
        "bagging_size": mean("bagging", "xent", "ensemble_size"),
        "boosting_weak_acc": mean("boosting", "xent", "weak_acc"),
        "boosting_weak_label_acc": mean("boosting", "xent", "weak_label_acc"),
        "boosting_student_acc": mean("boosting", "xent", "student_acc"),
        "boosting_pgr": mean("boosting", "xent", "pgr_acc"),
        "boosting_pgr_logconf": mean("boosting", "logconf", "pgr_acc"),
        "boosting_rounds": mean("boosting", "xent", "ensemble_size"),
        "n_seeds": float(first.seed.nunique()),
    }
    if "product" in set(first.loss):
        out["student_acc_product"] = mean("single", "product", "student_acc")
        out["pgr_product"] = mean("single", "product", "pgr_acc")
    lo, hi = ci("single", "xent", "pgr_acc")
    out["pgr_xent_lo"], out["pgr_xent_hi"] = lo, hi
    lo, hi = ci("single", "logconf", "pgr_acc")
    out["pgr_logconf_lo"], out["pgr_logconf_hi"] = lo, hi
    if icl_results is not None and len(icl_results):
        from alignlab.studies.w2sg.icl import headline

        out.update(headline(icl_results))
    return out


# ---------------------------------------------------------------------------------------------
# Figures and the conclusion


def plot_pgr(results):
    """PGR (accuracy and AUROC) by teacher method and loss, mean and 95% CI over seeds (first pair)."""
    import matplotlib.pyplot as plt

    from alignlab.figures import bar_with_ci, figsize, use_style
    from alignlab.stats import summarize

    use_style()
    first = results[results.pair == results.pair.iloc[0]]
    fig, axes = plt.subplots(1, 2, figsize=figsize("text", 0.36), sharey=True)
    for ax, column, title in zip(axes, ("pgr_acc", "pgr_auc"), ("PGR on accuracy", "PGR on AUROC")):
        s = summarize(first, by=["method", "loss"], value=column)
        s["method"] = pd_categorical(s["method"], [m for m in METHODS if m in set(s["method"])])
        bar_with_ci(ax, s.sort_values("method"), x="method", hue="loss")
        ax.axhline(0, color="0.3", linewidth=0.8)
        ax.set_title(title)
        ax.set_xlabel("weak teacher")
        ax.set_ylabel("PGR")
    axes[0].get_legend().remove()  # one legend, outside the bars
    legend = axes[1].get_legend()
    axes[1].legend(legend.legend_handles, [t.get_text() for t in legend.get_texts()], title="loss",
                   loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.suptitle(results.pair.iloc[0], fontsize="small")
    return fig


def pd_categorical(values, order):
    import pandas as pd

    return pd.Categorical(values, categories=order, ordered=True)


def plot_ensemble_size(curve):
    """Weak-label accuracy (on the student's half) against ensemble size, per voting rule (first pair)."""
    import matplotlib.pyplot as plt

    from alignlab.figures import figsize, line_with_ci, use_style
    from alignlab.stats import summarize

    use_style()
    first = curve[curve.pair == curve.pair.iloc[0]].copy()
    first["rule"] = first["method"] + " (" + first["voting"] + ")"
    s = summarize(first, by=["rule", "size"], value="weak_label_acc")
    fig, ax = plt.subplots(figsize=figsize("column"))
    line_with_ci(ax, s, x="size", hue="rule")
    ax.set_xlabel("ensemble size (members or rounds)")
    ax.set_ylabel("weak-label accuracy")
    return fig


def _paired(results, column, a, b):
    """Mean and 95% t-CI over seeds of (a - b), where a and b are (method, loss)."""
    from alignlab.stats import mean_ci

    first = results[results.pair == results.pair.iloc[0]]
    left = first[(first.method == a[0]) & (first.loss == a[1])].set_index("seed")[column]
    right = first[(first.method == b[0]) & (first.loss == b[1])].set_index("seed")[column]
    return mean_ci((left - right).to_numpy())


def conclusion(results, curve, icl_results=None) -> str:
    """Markdown: which findings of the source studies hold in this run, with numbers and CIs."""
    from alignlab.stats import format_ci, mean_ci, verdict

    first = results[results.pair == results.pair.iloc[0]]
    n_seeds = first.seed.nunique()
    lines = [f"**Conclusion** ({results.pair.iloc[0]}, {n_seeds} seeds, mean [95% t-CI]; test split used once).", ""]

    def ci_of(method, loss, column):
        return mean_ci(first[(first.method == method) & (first.loss == loss)][column].to_numpy())

    weak, ceiling = ci_of("single", "xent", "weak_acc"), ci_of("single", "xent", "ceiling_acc")
    lines.append(f"- The ladder: weak teacher {format_ci(*weak)} vs strong ceiling {format_ci(*ceiling)} test accuracy"
                 + (" (a gap to recover)." if weak[0] < ceiling[0] else " — **no gap**: PGR is undefined (NaN)."))
    student = ci_of("single", "xent", "student_acc")
    single = first[(first.method == "single") & (first.loss == "xent")]
    diff = mean_ci((single.student_acc - single.weak_acc).to_numpy())
    lines.append(f"1. *A strong student trained on weak labels beats its teacher* (Burns et al.): student {format_ci(*student)}, "
                 f"student - teacher {format_ci(*diff)}, PGR {format_ci(*ci_of('single', 'xent', 'pgr_acc'))} — {verdict(*diff)}.")
    conf = _paired(results, "student_acc", ("single", "logconf"), ("single", "xent"))
    lines.append(f"2. *The auxiliary confidence loss raises PGR*: student accuracy logconf - xent {format_ci(*conf)}, "
                 f"PGR {format_ci(*ci_of('single', 'logconf', 'pgr_acc'))} vs {format_ci(*ci_of('single', 'xent', 'pgr_acc'))} — {verdict(*conf)}.")
    for method in ("bagging", "boosting"):
        if method not in set(first.method):
            continue
        label = _paired(results, "weak_label_acc", (method, "xent"), ("single", "xent"))
        stud = _paired(results, "student_acc", (method, "xent"), ("single", "xent"))
        number = 3 if method == "bagging" else 4
        lines.append(f"{number}. *{method.capitalize()} improves the weak labels* (the follow-up study): weak-label accuracy "
                     f"{method} - single {format_ci(*label)} — {verdict(*label)}; and the student: "
                     f"student accuracy {method} - single {format_ci(*stud)} — {verdict(*stud)}; "
                     f"PGR {format_ci(*ci_of(method, 'xent', 'pgr_acc'))}.")
    if icl_results is not None and len(icl_results):
        lines.append(_icl_conclusion(icl_results))
    lines.append("")
    lines.append("Small models, a small embedded dataset and linear probes: a finding that does not show here is a "
                 "result at this scale, not evidence against the source study at its scale.")
    return "\n".join(lines)


def _icl_conclusion(icl_results) -> str:
    from alignlab.stats import format_ci, mean_ci, verdict

    k_max = icl_results.k.max()
    first = icl_results.retriever.iloc[0]
    at = icl_results[(icl_results.retriever == first) & (icl_results.k == k_max)].set_index(["source", "seed"]).acc
    zero = icl_results[icl_results.k == 0].groupby("seed").acc.first()

    def diff(a, b):
        return mean_ci((a - b).to_numpy())

    parts = []
    if "weak" in at.index.get_level_values(0):
        weak = at.xs("weak")
        gain = diff(weak, zero)
        parts.append(f"weak-labelled demonstrations (k={k_max}, {first}) - zero-shot {format_ci(*gain)} — {verdict(*gain)}")
        if "gold" in at.index.get_level_values(0):
            gold_gain = diff(at.xs("gold"), weak)
            parts.append(f"gold - weak labels {format_ci(*gold_gain)} — {verdict(*gold_gain)}")
        if "flipped" in at.index.get_level_values(0):
            parts.append(f"randomly flipped gold (same error rate) - weak labels "
                         f"{format_ci(*diff(at.xs('flipped'), weak))}")
    return "5. *In-context W2SG*: " + "; ".join(parts) + "."


