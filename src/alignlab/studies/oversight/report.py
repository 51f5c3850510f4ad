"""Study 02's report: tables, figures, transcripts side by side, `metrics()` and `conclusion()`.

Every sentence of the conclusion is computed from the run's numbers: a claim is made only where its
interval supports it, and it names the information setting it holds in. Functions a notebook cell
calls whatever the protocols are handle the empty case themselves: a plot returns None and a table
a Markdown note when the run has nothing to show."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown

from alignlab.figures import bar_with_ci, figsize, line_with_ci, use_style
from alignlab.stats import format_ci, paired_minimum_detectable_difference, verdict
from alignlab.studies.oversight.config import PROTOCOLS, Config
from alignlab.studies.oversight.incontext import SOURCES_SHOWN

# ---------------------------------------------------------------------------------------------
# Tables


def question_kinds(items) -> pd.DataFrame:
    """How many pool questions there are of each kind, and of each gold label (one row)."""
    kinds = pd.Series([it["kind"] for it in items]).value_counts()
    labels = pd.Series(["gold: correct" if it["label"] else "gold: wrong" for it in items]).value_counts()
    return pd.concat([kinds, labels]).rename("questions").to_frame().T


def _cell(row, name: str) -> str:
    return format_ci(row[name], row[f"{name}_lo"], row[f"{name}_hi"])


def _order(frame: pd.DataFrame, column: str, order=PROTOCOLS) -> pd.DataFrame:
    """Rows by setting (in the run's order) and protocol (in `order`, by default PROTOCOLS')."""
    settings = {info: k for k, info in enumerate(dict.fromkeys(frame["info"]))}
    return frame.assign(_i=frame["info"].map(settings), _o=frame[column].map({p: k for k, p in enumerate(order)})
                        ).sort_values(["_i", "_o"], kind="stable").drop(columns=["_i", "_o"])


def judge_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per setting and protocol: accuracy [Wilson 95%], AUROC and ECE [bootstrap 95% over
    questions], mean P(correct), the share of "correct" verdicts and n (every pool question once)."""
    rows = [{"setting": r["info"], "protocol": r["protocol"], "accuracy": _cell(r, "acc"), "AUROC": _cell(r, "auroc"),
             "ECE": _cell(r, "ece"), "mean P(correct)": f"{r['mean_p']:.3f}",
             "says correct": f"{r['says_correct']:.2f}", "n": int(r["n"])}
            for _, r in _order(summary, "protocol").iterrows()]
    return pd.DataFrame(rows).set_index(["setting", "protocol"])


def paired_verdict(row, above: str = "A better", below: str = "B better",
                   straddles: str = "not shown (CI includes 0)", unknown: str = "cannot tell",
                   alpha: float = 0.05) -> str:
    """The verdict on a paired difference of accuracies: decided only when the paired bootstrap CI
    over questions excludes 0 AND the exact McNemar test rejects at `alpha`.

    Why both: at the question counts this study affords (16-24) the percentile bootstrap is
    anti-conservative (a quick run: consultancy - naive = -0.250 [-0.438, -0.062] over 16
    questions, while the exact test gave p = 0.125); the exact test alone has no interval to
    report. A CI that excludes 0 with p >= alpha is reported as not shown, naming p."""
    word = verdict(row["diff"], row["lo"], row["hi"], above=above, below=below, straddles=straddles,
                   unknown=unknown)
    if word in (above, below) and not row["p_value"] < alpha:
        return f"not shown (exact McNemar p = {row['p_value']:.2g})"
    return word


def _verdict_words(row) -> str:
    return paired_verdict(row)


def _shown_above(row, alpha: float = 0.05) -> bool:
    """A paired difference decided above 0 by `paired_verdict`'s rule."""
    return row is not None and row["lo"] > 0 and row["p_value"] < alpha


def paired_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Each comparison A - B on the same questions: accuracies, the difference [paired bootstrap
    95%], McNemar's discordant counts and exact p-value, and the verdict (`paired_verdict`: the CI
    and the exact test must agree)."""
    if not len(pairs):
        return Markdown("*No two protocols to compare in this run.*")
    rows = [{"A": r["a"], "B": r["b"], "acc A": f"{r['acc_a']:.3f}", "acc B": f"{r['acc_b']:.3f}",
             "A - B": format_ci(r["diff"], r["lo"], r["hi"]), "A only / B only": f"{r['a_only']} / {r['b_only']}",
             "McNemar p": f"{r['p_value']:.3g}", "verdict": _verdict_words(r), "n": int(r["n"])}
            for _, r in pairs.iterrows()]
    return pd.DataFrame(rows)


def consultancy_table(by_side: pd.DataFrame):
    """The judge's accuracy when the consultant argues for and against the truth, per setting."""
    if not len(by_side):
        return Markdown("*Consultancy is not among the protocols of this run.*")
    return pd.DataFrame([{"setting": r["info"], "consultant": r["consultant"],
                          "judge accuracy": format_ci(r["acc"], r["lo"], r["hi"]), "n": int(r["n"])}
                         for _, r in by_side.iterrows()])


def rounds_table(rounds: pd.DataFrame):
    """Debate accuracy per setting and number of rounds read [Wilson 95%], or a note."""
    if not len(rounds):
        return Markdown("*Debate is not among the protocols of this run: no rounds to show.*")
    return pd.DataFrame([{"setting": r["info"], "rounds read": int(r["round"]),
                          "judge accuracy": format_ci(r["acc"], r["lo"], r["hi"]), "n": int(r["n"])}
                         for _, r in rounds.iterrows()])


def loop_table(loop: pd.DataFrame):
    """Weak-label accuracy -> student accuracy -> PGR per setting, label source and loss, with
    95% CIs over question ids; PGR's cell says why where it is not reported."""
    if not len(loop):
        return Markdown("*No protocol labels for a student in this run.*")
    rows = []
    for _, r in _order(loop, "source").iterrows():
        pgr_cell = r["pgr_note"] or _cell(r, "pgr")
        rows.append({"setting": r["info"], "label source": r["source"], "loss": r["loss"],
                     "weak-label acc": f"{r['weak_label_acc']:.3f}", "judge acc (test)": _cell(r, "judge_acc"),
                     "student acc": _cell(r, "student_acc"), "ceiling acc": _cell(r, "ceiling_acc"),
                     "gap": _cell(r, "gap"), "PGR": pgr_cell,
                     "student - naive-label student": _cell(r, "vs_naive") if "vs_naive" in r and pd.notna(
                         r.get("vs_naive")) else "",
                     "seeds": int(r["seeds"])})
    return pd.DataFrame(rows)


def _icl_pgr_cell(r) -> str:
    """ICL-PGR [CI], or why it is not reported (undefined, or the CI of gold - naive includes 0)."""
    if "pgr" not in r:
        return ""
    return r["pgr_note"] or _cell(r, "pgr")


def icl_vs_naive_verdict(r) -> str:
    """`paired_verdict` on ICL with this source's labels against ICL with naive labels."""
    if "diff" not in r or pd.isna(r.get("diff")):
        return ""
    return paired_verdict(r, above="better than naive labels", below="worse than naive labels")


def icl_table(icl: pd.DataFrame):
    """Per setting and label source: the accuracy of the demonstrations' labels -> ICL accuracy on
    the test halves -> ICL-PGR, and ICL - ICL with naive labels [95% CIs resampling seeds and
    question ids] with the sign test's p and the verdict (`paired_verdict`)."""
    if not len(icl):
        return Markdown("*In-context W2SG is off in this run (`icl = False`).*")
    rows = []
    for _, r in _order(icl, "source", SOURCES_SHOWN).iterrows():
        has_diff = "diff" in r and pd.notna(r.get("diff"))
        rows.append({"setting": r["info"], "demonstration labels": r["source"], "k": int(r["k"]),
                     "demo label acc": "" if pd.isna(r["demo_label_acc"]) else f"{r['demo_label_acc']:.3f}",
                     "ICL acc (test)": _cell(r, "icl_acc"), "ICL-PGR": _icl_pgr_cell(r),
                     "ICL - naive-label ICL": format_ci(r["diff"], r["lo"], r["hi"]) if has_diff else "",
                     "sign test p": f"{r['p_value']:.3g}" if has_diff else "",
                     "verdict": icl_vs_naive_verdict(r), "seeds": int(r["seeds"]), "n tests": int(r["n tests"])})
    return pd.DataFrame(rows)


def quote_table(quotes: pd.DataFrame):
    """Quotes per setting, role and side, with the share verified against the passage."""
    if not len(quotes):
        return Markdown("*No consultant or debater spoke in this run.*")
    return quotes.assign(**{"verified share": quotes["verified share"].map(
        lambda v: "not checked" if pd.isna(v) else f"{v:.2f}")})


# ---------------------------------------------------------------------------------------------
# Transcripts side by side


def debate_example_indices(items, probs, config: Config, info: str, k: int = 1) -> dict:
    """Indices of questions where debate helped (naive wrong, debate right) and misled (naive
    right, debate wrong) in setting `info`, the most confident first."""
    y = np.array([it["label"] for it in items])
    naive, debate = probs[(info, "naive", "", 0)], probs[(info, "debate", "", config.rounds)]
    naive_ok, debate_ok = (naive > 0.5) == y, (debate > 0.5) == y
    order = np.argsort(-np.abs(debate - 0.5), kind="stable")
    helped = [int(i) for i in order if debate_ok[i] and not naive_ok[i]][:k]
    misled = [int(i) for i in order if naive_ok[i] and not debate_ok[i]][:k]
    return {"helped": helped, "misled": misled}


def side_by_side(records, index: int, info: str) -> pd.DataFrame:
    """A table of one question in setting `info`: its passage, background, consultant and debate
    turns, and the judge's P(correct) under each protocol of that setting."""
    rec = records[index]
    out = rec["settings"].get(info, {})
    rows = [("question", f"{rec['question']}  |  shown answer: {rec['answer']}  |  gold: "
                         f"{'correct' if rec['label'] else 'wrong'}"),
            (f"passage (hidden from the judge{'' if info == 'passage' else ' and the debaters'})", rec["support"])]
    if "background" in out:
        rows.append(("interaction: background", out["background"]))
    for side, c in out.get("consultant", {}).items():
        rows.append((f"consultant arguing {side}", c["text"]))
    for first, turns in out.get("debates", {}).items():
        for t in turns:
            marks = ", ".join({True: "verified", False: "unverified", None: "not checked"}[q["verified"]]
                              for q in t["quotes"]) or "no quote"
            rows.append((f"debate ({first}) round {t['round']}, {t['side']} side", f"{t['text']}   [{marks}]"))
    for key, v in rec["p_correct"].items():
        if key.startswith(info + "/"):
            rows.append((f"P(correct): {key[len(info) + 1:]}", f"{v:.3f}"))
    return pd.DataFrame(rows, columns=["", "text"]).set_index("")


def debate_examples(items, probs, records, config: Config) -> list:
    """What to display, per setting: for up to `config.n_examples` questions where debate helped
    the judge and as many where it misled it, a heading and the question side by side; a note
    where there is none, or when naive or debate is not among the protocols."""
    if not {"naive", "debate"} <= set(config.protocols):
        return [Markdown("*Examples compare the naive and the debate judge; this run lacks one of them.*")]
    out = []
    for info in config.info:
        for what, indices in debate_example_indices(items, probs, config, info, k=config.n_examples).items():
            for i in indices:
                out.append(Markdown(f"**{info}: debate {what} the judge** (question {i})"))
                table = side_by_side(records, i, info).style.format(escape="html")  # texts may hold <quote> tags
                out.append(table.set_properties(**{"text-align": "left", "white-space": "pre-wrap"}))
            if not indices:
                out.append(Markdown(f"*{info}: no question where debate {what} the judge in this pool.*"))
    return out


# ---------------------------------------------------------------------------------------------
# Figures


def plot_judge_accuracy(summary: pd.DataFrame):
    """Judge accuracy per protocol and information setting, Wilson 95% CIs; chance dashed."""
    use_style()
    s = _order(summary, "protocol").rename(columns={"acc": "mean", "acc_lo": "lo", "acc_hi": "hi"})
    s["protocol"] = pd.Categorical(s["protocol"], [p for p in PROTOCOLS if p in set(s.protocol)], ordered=True)
    fig, ax = plt.subplots(figsize=figsize("text", 0.4))
    bar_with_ci(ax, s, x="protocol", hue="info")
    ax.axhline(0.5, color="0.3", linewidth=0.8, linestyle="--")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("judge accuracy")
    ax.set_xlabel("")
    ax.legend(title="information", fontsize="small")
    return fig


def plot_rounds(rounds: pd.DataFrame):
    """Judge accuracy against the number of debate rounds it read, per setting; None without debate."""
    if not len(rounds):
        return None
    use_style()
    fig, ax = plt.subplots(figsize=figsize("column"))
    line_with_ci(ax, rounds.rename(columns={"acc": "mean"}), x="round", hue="info")
    ax.set_xticks(sorted(rounds["round"].unique()))
    ax.axhline(0.5, color="0.3", linewidth=0.8, linestyle="--")
    ax.set_xlabel("debate rounds shown to the judge")
    ax.set_ylabel("judge accuracy")
    ax.legend(title="information", fontsize="small")
    return fig


def plot_loop(loop: pd.DataFrame):
    """Student accuracy per label source and setting (first loss), with the ceiling's range; None
    without a student."""
    if not len(loop):
        return None
    use_style()
    s = _order(loop[loop["loss"] == loop["loss"].iloc[0]], "source")
    s = s.rename(columns={"student_acc": "mean", "student_acc_lo": "lo", "student_acc_hi": "hi"})
    s["source"] = pd.Categorical(s["source"], [p for p in PROTOCOLS if p in set(s.source)], ordered=True)
    fig, ax = plt.subplots(figsize=figsize("text", 0.4))
    bar_with_ci(ax, s, x="source", hue="info")
    ax.axhline(float(loop["ceiling_acc"].mean()), color="0.3", linewidth=0.8, label="ceiling (gold labels)")
    ax.axhline(0.5, color="0.3", linewidth=0.8, linestyle="--")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"student accuracy ({loop['loss'].iloc[0]})")
    ax.set_xlabel("label source (judge protocol)")
    ax.legend(fontsize="small")
    return fig


# ---------------------------------------------------------------------------------------------
# Metrics and conclusion


def metrics(summary: pd.DataFrame, pairs: pd.DataFrame, loop: pd.DataFrame, quotes: pd.DataFrame,
            icl: pd.DataFrame | None = None) -> dict:
    """Flat numbers: per setting and protocol accuracy (with Wilson bounds), AUROC and ECE; each
    comparison's difference and bounds; per setting and source the student's accuracy and PGR
    (first loss; NaN where not reported); the verified share of quotes per side; per setting and
    demonstration labels the ICL accuracy and ICL-PGR (NaN where not reported)."""
    out = {}
    for _, r in summary.iterrows():
        stem = f"judge_{r['info'].replace('-', '_')}_{r['protocol']}"
        for name in ("acc", "acc_lo", "acc_hi", "auroc", "ece"):
            out[f"{stem}_{name}"] = float(r[name])
    for _, r in pairs.iterrows():
        stem = "diff_" + "_vs_".join(x.replace(" (", "_").replace(")", "").replace("-", "_") for x in (r["a"], r["b"]))
        out[stem], out[f"{stem}_lo"], out[f"{stem}_hi"] = float(r["diff"]), float(r["lo"]), float(r["hi"])
    if len(loop):
        first = loop[loop["loss"] == loop["loss"].iloc[0]]
        for _, r in first.iterrows():
            stem = f"{r['info'].replace('-', '_')}_{r['source']}_labels"
            out[f"student_acc_{stem}"] = float(r["student_acc"])
            out[f"pgr_{stem}"] = float(r["pgr"]) if not r["pgr_note"] else float("nan")
        out["ceiling_acc"] = float(first["ceiling_acc"].mean())
    for _, r in quotes[quotes["info"] == "passage"].iterrows() if len(quotes) else []:
        out[f"quote_verified_share_{r['role']}_{r['side']}"] = float(r["verified share"])
    for _, r in icl.iterrows() if icl is not None and len(icl) else []:
        stem = f"{r['info'].replace('-', '_')}_{r['source'].replace('-', '_')}_labels"
        out[f"icl_acc_{stem}"] = float(r["icl_acc"])
        if "pgr" in r:
            out[f"icl_pgr_{stem}"] = float(r["pgr"]) if not r["pgr_note"] else float("nan")
    out["n_questions"] = float(summary["n"].max()) if len(summary) else float("nan")
    return out


def _acc(summary, info, protocol):
    r = summary[(summary["info"] == info) & (summary["protocol"] == protocol)]
    return None if not len(r) else r.iloc[0]


def _pair(pairs, a, b):
    r = pairs[(pairs["a"] == a) & (pairs["b"] == b)] if len(pairs) else pairs
    return None if not len(r) else r.iloc[0]


def reads_context_caveat(summary: pd.DataFrame, pairs: pd.DataFrame, info: str) -> str | None:
    """A caveat when the run does not show that the judge reads what it is given: the oracle's
    accuracy is not above chance, or not above the naive judge's. Every number in it is the run's."""
    oracle = _acc(summary, info, "oracle")
    if oracle is None:
        return None
    gain = _pair(pairs, f"oracle ({info})", f"naive ({info})")
    above_chance = oracle["acc_lo"] > 0.5
    above_naive = _shown_above(gain)
    if above_chance and (above_naive or gain is None):  # no naive judge to compare with: nothing to caveat
        return None
    ps = summary[summary["info"] == info]
    reasons = []
    if not above_chance:
        reasons.append(f"with the support passage in context (oracle) its accuracy is "
                       f"{_cell(oracle, 'acc')}, an interval that reaches chance (0.5)")
    if gain is not None and not above_naive:
        reasons.append(f"the passage changes its accuracy by {format_ci(gain['diff'], gain['lo'], gain['hi'])} "
                       f"over the naive judge")
    spread = (f"Its mean P(correct) ranges over {ps['mean_p'].min():.3f}-{ps['mean_p'].max():.3f} across "
              f"protocols, and it says \"correct\" for {ps['says_correct'].min():.0%}-{ps['says_correct'].max():.0%} "
              f"of the questions.")
    if above_chance:  # it reads (well above chance with the passage), but the naive judge leaves little room
        naive = _acc(summary, info, "naive")
        head = f" (naive {_cell(naive, 'acc')})" if naive is not None else ""
        return (f"**Caveat ({info}): the passage's gain over the naive judge is not established.** With the support "
                f"passage in context (oracle) the judge is right {_cell(oracle, 'acc')}, above chance, but "
                + reasons[0] + head + ". " + spread + " A protocol can add at most what the passage adds, so "
                "differences between protocols here are bounded by that headroom.")
    text = "; ".join(reasons)
    return (f"**Caveat ({info}): the judge is not shown to read its context.** " + text[0].upper() + text[1:] + ". "
            + spread + " Differences between protocols are then not evidence about the protocols as such.")


def verdict_bias_note(summary: pd.DataFrame, info: str, margin: float = 0.15) -> str | None:
    """Protocols under which the judge ranks answers much better than its verdicts show: AUROC more
    than `margin` above accuracy, with the share of "correct" verdicts against the share of shown
    answers that are correct. The 0.5 threshold, not the ranking, then costs accuracy."""
    ps = _order(summary[summary["info"] == info], "protocol")
    hits = [r for _, r in ps.iterrows() if np.isfinite(r["auroc"]) and r["auroc"] - r["acc"] > margin]
    if not hits:
        return None
    return ("Verdicts biased, ranking intact: " + "; ".join(
        f"{r['protocol']} accuracy {r['acc']:.3f} but AUROC {_cell(r, 'auroc')}, \"correct\" said for "
        f"{r['says_correct']:.0%} of questions (correct answers shown: {r['shown_correct']:.0%})" for r in hits)
        + ". Its P(correct) orders the answers better than the threshold at 0.5 turns them into verdicts; "
        "a threshold calibrated on held-out questions could recover some of it (not tried here).")


def detectable_difference_note(pairs: pd.DataFrame, n: int) -> str:
    """The paired minimum detectable difference (80% power, 5% two-sided) at this run's question
    count, at the median discordance of its comparisons and at 30% discordance."""
    rates = ((pairs["a_only"] + pairs["b_only"]) / pairs["n"]).to_numpy() if len(pairs) else np.array([])
    rates = rates[rates > 0]
    parts = [f"{paired_minimum_detectable_difference(n, 0.3):.3f} at 30% discordant questions"]
    if len(rates):
        d = float(np.median(rates))
        parts.insert(0, f"{paired_minimum_detectable_difference(n, d):.3f} at this run's median discordance ({d:.0%} "
                        f"of the questions judged differently by the two protocols compared)")
    return (f"With {n} questions, the smallest accuracy difference between two protocols that a paired test "
            f"detects with 80% power (5% two-sided) is about " + "; ".join(parts) + ".")


def incontext_conclusion(icl: pd.DataFrame | None) -> list[str]:
    """Markdown lines on in-context W2SG: per setting, ICL with gold, naive and no demonstrations,
    the protocols whose labels are shown better than naive labels (`paired_verdict`), and a plain
    statement when no protocol separates from naive labels."""
    if icl is None or not len(icl):
        return []
    lines = [f"*In-context W2SG* (`{icl['model'].iloc[0]}` reads {int(icl['k'].max())} demonstrations from the "
             f"training half, labelled by each protocol; ICL acc on the test half [95% CI over seeds and "
             f"questions]):"]
    for info, g in _order(icl, "source", SOURCES_SHOWN).groupby("info", sort=False):
        by = g.set_index("source")
        parts = [f"{s} {_cell(by.loc[s], 'icl_acc')}" for s in ("zero-shot", "naive", "gold") if s in by.index]
        text = f"- {info}: " + "; ".join(parts)
        protocols = [r for _, r in g.iterrows() if r["source"] in PROTOCOLS and r["source"] != "naive"
                     and pd.notna(r.get("diff", np.nan))]
        better = [r["source"] for r in protocols if _shown_above(r)]
        if "naive" in by.index and "gold" in by.index:
            gain = by.loc["gold", "diff"] if pd.notna(by.loc["gold"].get("diff", np.nan)) else None
            if gain is not None:
                text += (f"; gold - naive labels {format_ci(gain, by.loc['gold', 'lo'], by.loc['gold', 'hi'])}, "
                         f"sign test p = {by.loc['gold', 'p_value']:.3g} — {icl_vs_naive_verdict(by.loc['gold'])}")
        if protocols:
            text += (". Labels better than naive ones: " + ", ".join(
                f"{s} ({format_ci(by.loc[s, 'diff'], by.loc[s, 'lo'], by.loc[s, 'hi'])})" for s in better)
                if better else ". No protocol's labels are shown better than naive labels (each difference's CI "
                "includes 0 or its sign test has p >= 0.05): at this size nothing separates")
        lines.append(text + ".")
    lines.append("")
    return lines


def conclusion(summary: pd.DataFrame, pairs: pd.DataFrame, loop: pd.DataFrame, quotes: pd.DataFrame,
               config: Config, icl: pd.DataFrame | None = None) -> str:
    """Markdown: per information setting, whether each protocol beats the naive judge, debate beats
    consultancy, and the table orders naive < protocols < expert; passage against closed-book; the
    student loop; in-context W2SG; each claim with its number and interval."""
    n = int(summary["n"].max())
    lines = [f"**Conclusion** (every pool question judged once: n = {n}; accuracy [Wilson 95%], differences "
             f"[paired bootstrap 95% over questions] with McNemar's p; the student over {len(config.seeds)} seeds, "
             f"CIs resampling question ids).", ""]
    for info in config.info:
        who = ("helper, consultant and debaters read the passage, the judge does not" if info == "passage"
               else "nobody reads the passage")
        lines.append(f"*Setting `{info}`* ({who}):")
        ps = _order(summary[summary["info"] == info], "protocol")
        lines.append("- Judge accuracy: " + "; ".join(f"{r['protocol']} {_cell(r, 'acc')}" for _, r in ps.iterrows())
                     + ".")
        caveat = reads_context_caveat(summary, pairs, info)
        if caveat:
            lines.append(f"- {caveat}")
        bias = verdict_bias_note(summary, info)
        if bias:
            lines.append(f"- {bias}")
        for a, b in [(p, "naive") for p in PROTOCOLS if p != "naive"] + [("debate", "consultancy"),
                                                                           ("expert", "debate")]:
            r = _pair(pairs, f"{a} ({info})", f"{b} ({info})")
            if r is not None:
                word = paired_verdict(r, above="**yes**", below="**no: worse**",
                                      straddles="**not shown** (the CI includes 0)")
                lines.append(f"- Does {a} beat {b}? {a} - {b} = {format_ci(r['diff'], r['lo'], r['hi'])}, "
                             f"McNemar p = {r['p_value']:.3g} — {word}.")
        naive, expert = _acc(summary, info, "naive"), _acc(summary, info, "expert")
        middle = [p for p in ("interaction", "consultancy", "debate") if _acc(summary, info, p) is not None]
        if naive is not None and expert is not None and middle:
            shown = [p for p in middle if (r := _pair(pairs, f"{p} ({info})", f"naive ({info})")) is not None
                     and _shown_above(r) and _shown_above(_pair(pairs, f"expert ({info})", f"{p} ({info})"))]
            lines.append(f"- naive judge < protocol < expert, both steps shown (CI above 0, McNemar p < 0.05): "
                         f"{', '.join(shown) if shown else 'shown for no protocol'} (naive {naive['acc']:.3f}, "
                         f"expert {expert['acc']:.3f}).")
        if len(quotes) and info == "passage":
            q = quotes[(quotes["info"] == info) & (quotes["quotes"] > 0)]
            if len(q):
                lines.append("- Quotes verified (>= " + str(config.min_quote_words) + " words, verbatim): "
                             + "; ".join(f"{r['role']} for \"{r['side']}\" {int(r['verified'])} of {int(r['quotes'])}"
                                         for _, r in q.iterrows()) + ".")
        lines.append("")
    across = [r for _, r in pairs.iterrows() if r["a"].endswith("(passage)") and r["b"].endswith("(closed-book)")]
    if across:
        lines.append("*Passage against closed-book* (the same protocol, same questions): " + "; ".join(
            f"{r['a'].split(' (')[0]} {format_ci(r['diff'], r['lo'], r['hi'])}" for r in across) + ".")
        lines.append("")
    if len(loop):
        first = loop[loop["loss"] == loop["loss"].iloc[0]]
        lines.append(f"*Closing the loop* (study 01's student, loss `{first['loss'].iloc[0]}`, on each protocol's "
                     f"labels): ceiling {first['ceiling_acc'].mean():.3f}.")
        for _, r in _order(first, "source").iterrows():
            text = (f"- {r['info']}, {r['source']} labels (judge {r['judge_acc']:.3f}): "
                    f"student {_cell(r, 'student_acc')}, PGR {r['pgr_note'] or _cell(r, 'pgr')}")
            if pd.notna(r.get("vs_naive", np.nan)):
                text += f"; against naive labels {format_ci(r['vs_naive'], r['vs_naive_lo'], r['vs_naive_hi'])}"
            lines.append(text + ".")
        lines.append("")
    lines += incontext_conclusion(icl)
    lines.append(detectable_difference_note(pairs, n))
    lines += ["", f"Judge `{config.judge_model}`, debaters `{config.debater_model}`, student `{config.strong_model}`: "
              "a protocol that does not help at this scale is a result at this scale, not evidence against the "
              "source studies at theirs."]
    return "\n".join(lines)
