"""The pool of questions: a random sample of a SciQ-shaped dataset in the binary view ("is the
proposed answer correct?"), each with its support passage. Transcripts are generated once for the
pool; each seed then splits it in two halves (see `evaluate.evaluate_protocols`)."""

from __future__ import annotations

import numpy as np

from alignlab import data
from alignlab.studies.oversight.config import Config


def make_items(ds) -> list[dict]:
    """Items (question, answer shown, label, support, kind, text) of a binary-view dataset that
    kept the source's `support` column (see `question_pool`)."""
    return [{"id": int(r["id"]), "question": r["question"], "answer": r["answer"], "label": int(r["label"]),
             "support": r["support"], "kind": r.get("kind", ""), "text": r["text"]} for r in ds]


def question_pool(config: Config, split: str = "train") -> list[dict]:
    """`config.n_questions` random questions of `split` of `config.dataset` in the binary view (the
    answer shown set by `config.data_seed`), with their support passages."""
    source = data.load(config.dataset, split=split)
    view = data.binary_view(source, seed=config.data_seed)
    if config.n_questions > len(view):  # needs the data, so it cannot be checked in Config.check
        config.fail("n_questions", f"must be <= {len(view)} (the {split} split of {config.dataset}), "
                                   f"got {config.n_questions}")
    # a prefix of one permutation: a smaller pool is part of a larger one (and shares its cached transcripts)
    pick = np.sort(np.random.default_rng([config.data_seed, 7]).permutation(len(view))[:config.n_questions])
    rows = view.select(pick).add_column("support", [source[int(i)]["support"] for i in pick])
    return make_items(rows)
