"""In-context classification prompts shared by the studies: k labelled demonstrations, then the
query, judged by the likelihood of " Yes" against " No" (study 01's in-context W2SG, study 02's
in-context learning from oversight labels).

    prompt = build_prompt(query, [format_demo(text, label) for text, label in demos])
    scores = label_scores("qwen2.5-coder-0.5b", prompts)   # log p(" Yes") - log p(" No"), cached
"""

from __future__ import annotations

import numpy as np

from alignlab.cache import Cache
from alignlab.lm.scoring import score_labels
from alignlab.models.load import load_causal_lm

INSTRUCTION = "Decide whether each answer is correct."
LABEL_WORDS = (" No", " Yes")  # index = label
SCORES_VERSION = "1"


def format_demo(text: str, label: int, confidence: float | None = None) -> str:
    tag = "" if confidence is None else f"\nTeacher confidence: {round(100 * confidence)}%"
    return f"{text}{tag}\nCorrect:{LABEL_WORDS[int(label)]}"


def build_prompt(query: str, demos: list[str]) -> str:
    return "\n\n".join([INSTRUCTION, *demos, f"{query}\nCorrect:"])


def retrieve_random(shown_labels, n_queries: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n_queries, k) pool indices: k//2 shown-positive, k - k//2 shown-negative, shuffled per query."""
    shown_labels = np.asarray(shown_labels)
    positive, negative = np.flatnonzero(shown_labels == 1), np.flatnonzero(shown_labels == 0)
    out = np.zeros((n_queries, k), dtype=int)
    for q in range(n_queries):
        n_pos = k // 2 if q % 2 == 0 else k - k // 2  # alternate the odd one out
        n_pos = min(n_pos, len(positive))
        picks = np.concatenate([rng.choice(positive, n_pos, replace=False),
                                rng.choice(negative, k - n_pos, replace=False)])
        out[q] = rng.permutation(picks)
    return out


def label_scores(model_name: str, prompts: list[str], batch_size: int = 16) -> np.ndarray:
    """log p(" Yes") - log p(" No") after each prompt, through alignlab.lm.scoring; cached by prompts."""

    def compute():
        model, tokenizer = load_causal_lm(model_name)
        scores = score_labels(model, tokenizer, prompts, list(LABEL_WORDS), batch_size=batch_size)
        return scores[:, 1] - scores[:, 0]

    return Cache().memo("icl_label_scores", SCORES_VERSION, compute, model=model_name, prompts=list(prompts))
