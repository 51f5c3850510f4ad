"""Study 07_recursive_w2sg: its parameters, picked by name from the notebook's parameters cell, and
checked. Cheap to import (the standard library, `alignlab.study_config` and the constants of
`alignlab.training`, a module without imports): the runner validates a run with it before any
kernel starts. The condition names live here so every module of the study shares one spelling.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignlab.data.names import dataset_problem
from alignlab.study_config import StudyConfig, is_int, is_number
from alignlab.training import LOSSES, MODES

# the ladder as listed, sorted by the overview's capability card (alignlab.ladder), or sorted by capability
# measured on G; each order is then checked step by step on G
ORDERS = ("given", "card", "measured")
# a student's epoch: the best agreement with its supervisor's labels on validation, or the last one;
# not "gold-val" (alignlab.training.SELECTIONS): gold validation labels would reach a student outside G
STUDENT_SELECTIONS = ("weak-val", "fixed")
# the conditions, in table order; every one spends the same K pools of unlabelled examples
CONDITIONS = ("direct", "recursive", "recursive-ensemble", "self-relabel")


@dataclass
class Config(StudyConfig):
    """The notebook's parameters (defaults: its parameters cell)."""

    notebook = "07_recursive_w2sg"

    dataset: str
    models: list
    order: str
    mode: str
    feature_layer: float
    seeds: list
    losses: list
    n_gold: int
    gold_check_frac: float
    pool_size: int
    selection: str
    epochs: int
    lr: float
    alpha_max: float
    warmup_frac: float
    split_limit: int
    finetune_epochs: int
    finetune_lr: float
    lora_r: int

    def check(self) -> None:
        if problem := dataset_problem(self.dataset, ("world-facts", "sciq")):
            self.fail("dataset", problem)
        if (not isinstance(self.models, (list, tuple)) or len(self.models) < 2
                or len(set(self.models)) != len(self.models)):
            self.fail("models", f"must be a list of at least two distinct models, weakest first (each consecutive "
                                f"pair is one step of the chain); got {self.models!r}")
        if self.order not in ORDERS:
            self.fail("order", f"must be one of {', '.join(ORDERS)} (card: sort the ladder by the overview's "
                               f"capability card; measured: by probe accuracy on the held-out part of G), "
                               f"got {self.order!r}")
        if self.mode not in MODES:
            self.fail("mode", f"must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not is_number(self.feature_layer) or not 0.0 <= self.feature_layer <= 1.0:
            self.fail("feature_layer", f"must be a fraction of depth in [0, 1], got {self.feature_layer!r}")
        if (not isinstance(self.seeds, (list, tuple)) or not self.seeds or not all(is_int(s) for s in self.seeds)
                or len(set(self.seeds)) != len(self.seeds)):
            self.fail("seeds", f"must be a non-empty list of distinct integers, got {self.seeds!r}")
        if (not isinstance(self.losses, (list, tuple)) or not self.losses or any(x not in LOSSES for x in self.losses)
                or len(set(self.losses)) != len(self.losses)):
            self.fail("losses", f"must be a non-empty list of distinct values from {', '.join(LOSSES)}, "
                                f"got {self.losses!r}")
        if not is_int(self.n_gold) or self.n_gold < 8:
            self.fail("n_gold", f"must be an integer >= 8 (the human-labelled set G), got {self.n_gold!r}")
        if not is_number(self.gold_check_frac) or not 0.0 < self.gold_check_frac < 1.0:
            self.fail("gold_check_frac", f"must be a fraction in (0, 1) (the part of G held out to weigh ensemble "
                                         f"members and measure the ladder), got {self.gold_check_frac!r}")
        if not is_int(self.pool_size) or self.pool_size < 0:
            self.fail("pool_size", f"must be an integer >= 0 (0: the rest of the training split cut into equal "
                                   f"pools), got {self.pool_size!r}")
        if self.selection not in STUDENT_SELECTIONS:
            self.fail("selection", f"must be one of {', '.join(STUDENT_SELECTIONS)}, got {self.selection!r}")
        self.check_training(counts=("epochs", "finetune_epochs"), rates=("lr", "finetune_lr"),
                            fractions=("alpha_max", "warmup_frac"))
        if not is_int(self.split_limit) or self.split_limit < 0:
            self.fail("split_limit", f"must be an integer >= 0 (0: every example), got {self.split_limit!r}")
        if not is_int(self.lora_r) or self.lora_r < 0:
            self.fail("lora_r", f"must be an integer >= 0 (0: full fine-tuning), got {self.lora_r!r}")
