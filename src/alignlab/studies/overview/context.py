"""Does a model read its context? Each causal LM judges the binary view ("is the proposed answer
correct?") twice on the same questions: without the question's support passage (naive) and with
it in the prompt (oracle). A model that reads its context is more accurate with the passage.

- Questions: the first `n` questions of a split that have a support passage (`select_questions`);
  each seed draws a binary view of them (which answer is shown), as for zero-shot accuracy.
- Judge: study 02's judge (`alignlab.lm.judge`): options A "Yes, it is correct." / B "No, it is
  wrong." scored as " A" vs " B" after the prompt (with `chat`: the prompt as one user message
  through the model's chat template, "A" vs "B" as the first token of its answer, as study 02's
  `judge_chat`; a model without a chat template, a base model, is judged on raw text and its rows
  say so in `chat`), in both option orders; P(correct) is the mean
  over the two orders, and the judge says "correct" when it is above 0.5. The naive and oracle
  prompts differ only by the line "Passage: ..." (and a blank line) before the question.
- Scores are cached per model (kind `judge_scores`, by the prompts); encoders have no LM head to
  answer A or B with and are skipped, with that reason.

    questions = select_questions(splits["test"], config)
    results = evaluate_context(["minilm-l6", "smollm2-135m"], questions, seeds=[0, 1, 2])
    results.predictions   # model, seed, id, (kind,) label, condition, p_correct, pred, correct
    results.skipped       # {"minilm-l6": "an encoder: ..."}
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from alignlab.data import binary_view
from alignlab.lm.generation import has_chat_template
from alignlab.lm.judge import both_orders, judge_probabilities, label_scorer, passage_context, score_requests
from alignlab.models.load import load_tokenizer, model_kind, release

CONDITIONS = ("naive", "oracle")
JUDGE_FORMAT = "ab"
ENCODER_REASON = "an encoder: no LM head to answer A or B with"


@dataclass
class ContextResults:
    """Per-example judgements of every causal LM in both conditions; the models skipped, with why."""

    predictions: pd.DataFrame
    skipped: dict = field(default_factory=dict)


def select_questions(split, config):
    """The first `config.context_questions` questions of `split` that have a support passage."""
    keep = [i for i, s in enumerate(split["support"]) if (s or "").strip()]
    if config.context_questions > len(keep):  # needs the data, so it cannot be checked in Config.check
        config.fail("context_questions", f"must be <= {len(keep)} (the questions of {config.split} of "
                                         f"{config.dataset} with a support passage), got {config.context_questions}")
    return split.select(keep[:config.context_questions])


def context_items(questions, seeds: list[int]) -> list[dict]:
    """One item per (seed, question): the binary view of `seed` (question, answer shown, label, id,
    kind when present) with the question's support passage."""
    items = []
    for seed in seeds:
        for row in binary_view(questions, seed=seed):
            items.append({"seed": seed, "id": int(row["id"]), "kind": row.get("kind", ""), "question": row["question"],
                          "answer": row["answer"], "label": int(row["label"]),
                          "support": questions[int(row["id"])]["support"]})
    return items


def context_requests(items: list[dict]) -> list[dict]:
    """Both option orders of every item in both conditions: naive (no context) and oracle (the passage)."""
    requests = []
    for k, item in enumerate(items):
        for condition in CONDITIONS:
            context = passage_context(item["support"]) if condition == "oracle" else ""
            requests += both_orders(k, item, context, JUDGE_FORMAT, protocol=condition, variant="", round=0)
    return requests


def judge_items(items: list[dict], score) -> pd.DataFrame:
    """One model's judgements: P(correct) per item and condition (mean over both orders), its
    verdict (1: "correct") and whether that verdict is right. `score(prompts, labels) -> log-probs`."""
    requests = context_requests(items)
    probs = judge_probabilities(items, requests, score_requests(requests, score))
    frames = []
    for condition in CONDITIONS:
        p = probs[(condition, "", 0)]
        frame = pd.DataFrame({"seed": [it["seed"] for it in items], "id": [it["id"] for it in items],
                              "kind": [it["kind"] for it in items], "label": [it["label"] for it in items],
                              "condition": condition, "p_correct": p, "pred": (p > 0.5).astype(int)})
        frame["correct"] = (frame["pred"] == frame["label"]).astype(int)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def evaluate_context(models: list[str], questions, seeds: list[int], batch_size: int = 32, scorers: dict | None = None,
                     progress: bool = False, chat: bool = False) -> ContextResults:
    """Every causal LM of `models` judged naive and oracle on `questions` (each seed's binary view).
    `scorers` maps a model name to its `score(prompts, labels)` (tests pass tiny models; default: the
    cached `alignlab.lm.judge.label_scorer`); encoders are skipped."""
    scorers = scorers or {}
    items = context_items(questions, seeds)
    frames, skipped = [], {}
    for name in models:
        if name not in scorers and model_kind(name) == "encoder":
            skipped[name] = ENCODER_REASON
            continue
        use_chat = chat and name not in scorers and has_chat_template(load_tokenizer(name))
        frame = judge_items(items, scorers.get(name) or label_scorer(name, batch_size=batch_size, progress=progress,
                                                                                chat=use_chat))
        if name not in scorers:
            release(name)
        frame.insert(0, "model", name)
        frame.insert(1, "chat", bool(use_chat))
        frames.append(frame)
    columns = ["model", "chat", "seed", "id", "kind", "label", "condition", "p_correct", "pred", "correct"]
    return ContextResults(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns), skipped)
