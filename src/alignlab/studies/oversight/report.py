"""Study 02's report: tables, figures, transcripts side by side, `metrics()` and `conclusion()`.

Functions a notebook cell calls whatever the protocols are handle the empty case themselves: a
plot returns None and a table a Markdown note when the run has nothing to show."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown

from alignlab.figures import bar_with_ci, figsize, line_with_ci, use_style
from alignlab.stats import bootstrap_ci, format_ci, mean_ci, summarize, t_ci, verdict
from alignlab.studies.oversight.config import PROTOCOLS, Config
from alignlab.studies.oversight.prompts import SIDES
from alignlab.studies.oversight.protocols import protocol_probs
from alignlab.studies.oversight.transcripts import quote_stats

# ---------------------------------------------------------------------------------------------
# Tables


def question_kinds(items) -> pd.DataFrame:
    """How many pool questions there are of each kind (one row)."""
    return pd.Series([it["kind"] for it in items]).value_counts().rename("questions").to_frame().T


def judge_table(judge, items, probs, config: Config) -> pd.DataFrame:
    """Per protocol: accuracy and ECE, mean [95% t-CI] over seeds (evaluation halves), and
    accuracy on the whole pool with a 95% bootstrap CI over questions (consultancy: both
    assignments, i.e. every question judged once with each side argued)."""
    y = np.array([it["label"] for it in items])
    acc = summarize(judge, by=["protocol"], value="acc").set_index("protocol")
    ece = summarize(judge, by=["protocol"], value="ece").set_index("protocol")
    rows = []
    for protocol in [p for p in PROTOCOLS if p in config.protocols]:
        if protocol == "consultancy":
            correct = np.concatenate([(probs[("consultancy", s, 0)] > 0.5) == y for s in SIDES]).astype(float)
        else:
            p = protocol_probs(probs, config, np.zeros(len(items), int))[protocol]
            correct = ((p > 0.5) == y).astype(float)
        lo, hi = bootstrap_ci(correct)
        rows.append({"protocol": protocol,
                     "accuracy (seeds)": format_ci(*acc.loc[protocol, ["mean", "lo", "hi"]]),
                     "ECE (seeds)": format_ci(*ece.loc[protocol, ["mean", "lo", "hi"]]),
                     "accuracy (pool, bootstrap)": format_ci(correct.mean(), lo, hi),
                     "n pool": len(y)})
    return pd.DataFrame(rows)


def rounds_table(rounds):
    """Judge accuracy per number of debate rounds shown (mean, std, count over seeds), or a note
    when debate is not among the protocols."""
    if not len(rounds):
        return Markdown("*Debate is not among the protocols of this run: no rounds to show.*")
    return rounds.groupby("round").acc.describe()[["mean", "std", "count"]]


def w2s_table(w2s_df):
    """Per label source: the judge's accuracy on its training labels and on the evaluation half,
    the student's, the ceiling's and PGR, mean [95% t-CI] over seeds, and the number of seeds where
    PGR is defined (the ceiling above the judge; PGR's mean is over those); or a note when no
    protocol gave labels to a student."""
    if not len(w2s_df):
        return Markdown("*No protocol of this run labels data for a W2SG student (naive, interaction, debate).*")
    rows = []
    for source in [s for s in PROTOCOLS if s in set(w2s_df.source)]:
        sub = w2s_df[w2s_df.source == source]
        row = {"label source": source}
        for column in ("weak_label_acc", "weak_acc", "student_acc", "ceiling_acc", "pgr"):
            s = summarize(sub.assign(all=0), by=["all"], value=column).iloc[0]
            row[column] = format_ci(s["mean"], s["lo"], s["hi"])
        row["seeds with PGR"] = f"{int(sub.pgr.notna().sum())} of {len(sub)}"
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Transcripts side by side


def debate_example_indices(items, probs, config: Config, k: int = 1) -> dict:
    """Indices of questions where debate helped (naive wrong, debate right) and misled (naive
    right, debate wrong), the most confident first."""
    y = np.array([it["label"] for it in items])
    naive, debate = probs[("naive", "", 0)], probs[("debate", "", config.rounds)]
    naive_ok, debate_ok = (naive > 0.5) == y, (debate > 0.5) == y
    conf = np.abs(debate - 0.5)
    helped = [int(i) for i in np.argsort(-conf) if debate_ok[i] and not naive_ok[i]][:k]
    misled = [int(i) for i in np.argsort(-conf) if naive_ok[i] and not debate_ok[i]][:k]
    return {"helped": helped, "misled": misled}


def side_by_side(records, index: int) -> pd.DataFrame:
    """A table of one question: its passage, background, consultant and debate turns, and the
    judge's P(correct) under each protocol."""
    rec = records[index]
    rows = [("question", f"{rec['question']}  |  shown answer: {rec['answer']}  |  gold: "
                         f"{'correct' if rec['label'] else 'wrong'}"),
            ("passage (hidden from the judge)", rec["support"])]
    if "background" in rec:
        rows.append(("interaction: background", rec["background"]))
    for side, c in rec.get("consultant", {}).items():
        rows.append((f"consultant arguing {side}", c["text"]))
    for first, turns in rec.get("debates", {}).items():
        for t in turns:
            marks = ", ".join("verified" if q["verified"] else "unverified" for q in t["quotes"]) or "no quote"
            rows.append((f"debate ({first}) round {t['round']}, {t['side']} side", f"{t['text']}   [{marks}]"))
    for key, v in rec["p_correct"].items():
        rows.append((f"P(correct): {key}", f"{v:.3f}"))
    return pd.DataFrame(rows, columns=["", "text"]).set_index("")


def debate_examples(items, probs, records, config: Config) -> list:
    """What to display: for up to `config.n_examples` questions where debate helped the judge and
    as many where it misled it, a heading and the question side by side (texts in full); a note
    where there is none, or when naive or debate is not among the protocols."""
    if not {"naive", "debate"} <= set(config.protocols):
        return [Markdown("*Examples compare the naive and the debate judge; this run lacks one of them.*")]
    out = []
    for what, indices in debate_example_indices(items, probs, config, k=config.n_examples).items():
        for i in indices:
            out.append(Markdown(f"**Debate {what} the judge** (question {i})"))
            table = side_by_side(records, i).style.format(escape="html")  # texts may hold <quote> tags
            out.append(table.set_properties(**{"text-align": "left", "white-space": "pre-wrap"}))
        if not indices:
            out.append(Markdown(f"*No question where debate {what} the judge in this pool.*"))
    return out


# ---------------------------------------------------------------------------------------------
# Figures


def plot_judge_accuracy(judge):
    """Judge accuracy per protocol, mean and 95% t-CI over seeds; chance dashed."""
    use_style()
    s = summarize(judge, by=["protocol"], value="acc")
    s["protocol"] = pd.Categorical(s["protocol"], [p for p in PROTOCOLS if p in set(s.protocol)], ordered=True)
    fig, ax = plt.subplots(figsize=figsize("column"))
    bar_with_ci(ax, s.sort_values("protocol"), x="protocol")
    ax.axhline(0.5, color="0.3", linewidth=0.8, linestyle="--")
    ax.set_ylabel("judge accuracy")
    ax.set_xlabel("")
    ax.tick_params(axis="x", labelrotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    return fig


def plot_rounds(rounds):
    """Judge accuracy against the number of debate rounds it read; None without debate."""
    if not len(rounds):
        return None
    use_style()
    s = summarize(rounds, by=["round"], value="acc")
    fig, ax = plt.subplots(figsize=figsize("column"))
    line_with_ci(ax, s, x="round")
    ax.set_xticks(sorted(s["round"].unique()))
    ax.axhline(0.5, color="0.3", linewidth=0.8, linestyle="--")
    ax.set_xlabel("debate rounds shown to the judge")
    ax.set_ylabel("judge accuracy")
    return fig


def plot_pgr_by_label_source(w2s_df):
    """Student accuracy and PGR per label source (judge protocol); None without a student."""
    if not len(w2s_df):
        return None
    use_style()
    fig, axes = plt.subplots(1, 2, figsize=figsize("text", 0.36))
    order = [s for s in PROTOCOLS if s in set(w2s_df.source)]
    for ax, column, label in zip(axes, ("student_acc", "pgr"), ("student accuracy", "PGR")):
        s = summarize(w2s_df, by=["source"], value=column)
        s["source"] = pd.Categorical(s["source"], order, ordered=True)
        bar_with_ci(ax, s.sort_values("source"), x="source")
        ax.set_ylabel(label)
        ax.set_xlabel("label source (judge protocol)")
    axes[1].axhline(0, color="0.3", linewidth=0.8)
    return fig


# ---------------------------------------------------------------------------------------------
# Metrics and conclusion


def metrics(judge, rounds, w2s_df, records=None) -> dict:
    """Judge accuracy and ECE per protocol, student accuracy and PGR per label source, accuracy
    per debate round (means over seeds), with t-CIs of judge accuracy and a few extras."""
    out = {}
    for protocol in PROTOCOLS:
        v = judge[judge.protocol == protocol]
        out[f"judge_acc_{protocol}"] = float(v.acc.mean()) if len(v) else float("nan")
        out[f"judge_ece_{protocol}"] = float(v.ece.mean()) if len(v) else float("nan")
        if len(v) > 1:
            out[f"judge_acc_{protocol}_lo"], out[f"judge_acc_{protocol}_hi"] = t_ci(v.acc.to_numpy())
    for source in ("naive", "interaction", "debate"):
        v = w2s_df[w2s_df.source == source] if len(w2s_df) else w2s_df
        out[f"pgr_{source}_labels"] = float(v.pgr.mean()) if len(v) else float("nan")
        out[f"student_acc_{source}_labels"] = float(v.student_acc.mean()) if len(v) else float("nan")
    if len(w2s_df):
        out["ceiling_acc"] = float(w2s_df.ceiling_acc.mean())
    for r, v in rounds.groupby("round") if len(rounds) else []:
        out[f"judge_acc_debate_round{int(r)}"] = float(v.acc.mean())
    if records is not None:
        out["quote_verified_fraction"] = quote_stats(records)["verified_fraction"]
    out["n_seeds"] = float(judge.seed.nunique())
    return out


def _diff(judge, a, b):
    left = judge[judge.protocol == a].set_index("seed").acc
    right = judge[judge.protocol == b].set_index("seed").acc
    return mean_ci((left - right).to_numpy())


def _verdict(mean, lo, hi) -> str:
    return verdict(mean, lo, hi, above="**yes**", below="**no: worse**",
                   straddles="**not shown** (the 95% CI includes 0)", unknown="cannot tell")


def conclusion(judge, rounds, w2s_df, records) -> str:
    """Markdown: whether interaction and debate beat the naive judge and consultancy here."""
    ci = mean_ci
    n_items = len(records)
    n_seeds = judge.seed.nunique()
    lines = [f"**Conclusion** ({n_seeds} seeds over one pool of {n_items} questions, judge accuracy on each seed's "
             f"evaluation half of ~{n_items - n_items // 2}; mean [95% t-CI]; small samples).", ""]
    accs = {p: ci(judge[judge.protocol == p].acc) for p in PROTOCOLS if p in set(judge.protocol)}
    lines.append("- Judge accuracy: " + "; ".join(f"{p} {format_ci(*v)}" for p, v in accs.items()) + ".")
    if "oracle" in accs and not accs["oracle"][1] > 0.6:
        lines.append(f"- **Caveat: the judge barely uses what it reads.** Even with the support passage in context "
                     f"(oracle) its accuracy is {format_ci(*accs['oracle'])}, close to chance (0.5); its mean "
                     f"P(correct) stays near 0.5 under every protocol. Differences between protocols are therefore "
                     f"small and not evidence about interaction or debate as such.")
    for a, b in (("interaction", "naive"), ("debate", "naive"), ("debate", "consultancy"),
                 ("interaction", "consultancy"), ("oracle", "naive")):
        if a in accs and b in accs:
            d = _diff(judge, a, b)
            lines.append(f"- Does {a} beat {b}? {a} - {b} = {format_ci(*d)} — {_verdict(*d)}.")
    if len(rounds):
        by_round = {int(r): ci(v.acc) for r, v in rounds.groupby("round")}
        lines.append("- Accuracy by debate rounds: "
                     + "; ".join(f"round {r}: {format_ci(*v)}" for r, v in by_round.items()) + ".")
    q = quote_stats(records)
    if q["quotes"]:
        lines.append(f"- Quotes: {q['verified']} of {q['quotes']} debater quotes were verified against the passage "
                     f"({q['verified_fraction']:.0%}).")
    if len(w2s_df):
        parts = [f"{s}: student {format_ci(*ci(v.student_acc))}, PGR {format_ci(*ci(v.pgr))}"
                 for s, v in w2s_df.groupby("source", sort=False)]
        lines.append("- W2SG from protocol labels (strong probe, study 01 pipeline): " + "; ".join(parts)
                     + f"; ceiling {format_ci(*ci(w2s_df.ceiling_acc))}.")
        for a in ("interaction", "debate"):
            if a in set(w2s_df.source) and "naive" in set(w2s_df.source):
                left = w2s_df[w2s_df.source == a].set_index("seed").student_acc
                right = w2s_df[w2s_df.source == "naive"].set_index("seed").student_acc
                d = ci((left - right).to_numpy())
                lines.append(f"- Does the student learn better from {a} labels than from naive labels? "
                             f"student accuracy difference {format_ci(*d)} — {_verdict(*d)}.")
    lines += ["", "Tiny models (a 135M judge, 270M debaters) and small samples: a protocol that does not help here is "
              "a result at this scale, not evidence against the source studies at theirs."]
    return "\n".join(lines)
