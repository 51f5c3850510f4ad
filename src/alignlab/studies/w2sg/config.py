"""Study 01_w2sg_ensembles: its parameters, picked by name from the notebook's parameters cell, and
checked. Cheap to import (the standard library, `alignlab.study_config`, `alignlab.data.names` and the
constants of `alignlab.training`, a module without imports): the runner validates a run with it
before any kernel starts. The study's modules import the in-context choices (`RETRIEVERS`, `SOURCES`) from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignlab.data.names import dataset_problem
from alignlab.study_config import StudyConfig, is_int, is_number
from alignlab.training import LOSSES, MODES, SELECTIONS

DATASETS = ("world-facts", "sciq")  # SciQ-shaped; a folder in SciQ's published format is allowed too
RETRIEVERS = ("random", "knn", "bm25")  # how in-context demonstrations are picked
# where their labels come from: the weak teacher, gold, gold with the weak labels' error rate
# flipped at random, gold with half flipped (random labels: the control of Min et al. 2022)
SOURCES = ("weak", "gold", "flipped", "random")


def pair_name(weak: str, strong: str) -> str:
    """How results name a (weak, strong) pair: "weak -> strong"."""
    return f"{weak} -> {strong}"



@dataclass
class Config(StudyConfig):
    """The notebook's parameters (defaults: its parameters cell)."""

    notebook = "01_w2sg_ensembles"

    dataset: str
    weak_models: list  # pair i: weak_models[i] -> strong_models[i]
    strong_models: list
    mode: str
    feature_layers: list
    seeds: list
    losses: list
    n_bagging: int
    n_boosting: int
    epochs: int
    lr: float
    alpha_max: float
    warmup_frac: float
    product_beta: float
    selections: list
    split_limit: int
    finetune_epochs: int
    finetune_lr: float
    lora_r: int
    icl_model: str
    icl_k: list
    icl_retrievers: list
    icl_sources: list
    n_icl_questions: int
    icl_n_seeds: int
    icl_flip_fraction: float | None
    icl_confidence_tags: bool

    def check(self) -> None:
        if problem := dataset_problem(self.dataset, DATASETS):
            self.fail("dataset", problem)
        if not self.weak_models or len(self.weak_models) != len(self.strong_models):
            self.fail("strong_models", f"must pair one strong model with each weak model (the same non-zero "
                                       f"number of each); got weak_models={self.weak_models!r}, "
                                       f"strong_models={self.strong_models!r}")
        if self.mode not in MODES:
            self.fail("mode", f"must be one of {', '.join(MODES)}, got {self.mode!r}")
        layers = self.feature_layers
        if (not isinstance(layers, (list, tuple)) or not layers
                or not all(is_number(x) and 0.0 <= x <= 1.0 for x in layers) or len(set(layers)) != len(layers)):
            self.fail("feature_layers", f"must be a non-empty list of distinct fractions of depth in [0, 1] (each "
                                        f"model's layer is chosen among them on validation; 0.5: the middle "
                                        f"block, 1.0: the last layer), got {layers!r}")
        if not self.seeds or not all(is_int(s) for s in self.seeds):
            self.fail("seeds", f"must be a non-empty list of integers, got {self.seeds!r}")
        bad = [loss for loss in self.losses if loss not in LOSSES]
        if bad or not self.losses:
            self.fail("losses", f"must be a non-empty list drawn from {', '.join(LOSSES)}, got {self.losses!r}")
        self.check_training(counts=("n_bagging", "n_boosting", "epochs", "finetune_epochs"),
                            rates=("lr", "finetune_lr"), fractions=("alpha_max", "warmup_frac"))
        if not is_number(self.product_beta) or self.product_beta < 0:
            self.fail("product_beta", f"must be a number >= 0 (the product loss's weight on the student's own "
                                      f"predictions; openai: 1), got {self.product_beta!r}")
        if (not isinstance(self.selections, (list, tuple)) or not self.selections
                or any(v not in SELECTIONS for v in self.selections)
                or len(set(self.selections)) != len(self.selections)):
            self.fail("selections", f"must be a non-empty list of distinct values drawn from {', '.join(SELECTIONS)} "
                                    f"(how a student's epoch is chosen; the first is the headline), "
                                    f"got {self.selections!r}")
        if not is_int(self.split_limit) or self.split_limit < 0:
            self.fail("split_limit", f"must be an integer >= 0 (0: every example), got {self.split_limit!r}")
        if not is_int(self.lora_r) or self.lora_r < 0:
            self.fail("lora_r", f"must be an integer >= 0 (0: full fine-tuning), got {self.lora_r!r}")
        if not self.icl_k or not all(is_int(k) and k >= 0 for k in self.icl_k):
            self.fail("icl_k", f"must be a non-empty list of integers >= 0 (numbers of demonstrations), "
                               f"got {self.icl_k!r}")
        for name, allowed in (("icl_retrievers", RETRIEVERS), ("icl_sources", SOURCES)):
            values = getattr(self, name)
            if not values or any(v not in allowed for v in values):
                self.fail(name, f"must be a non-empty list drawn from {', '.join(allowed)}, got {values!r}")
        if not is_int(self.n_icl_questions) or self.n_icl_questions < 1:
            self.fail("n_icl_questions", f"must be an integer >= 1, got {self.n_icl_questions!r}")
        if not is_int(self.icl_n_seeds) or self.icl_n_seeds < 1:
            self.fail("icl_n_seeds", f"must be an integer >= 1 (in-context W2SG runs on the first N seeds), "
                                     f"got {self.icl_n_seeds!r}")
        if self.icl_flip_fraction is not None and (not is_number(self.icl_flip_fraction)
                                                   or not 0.0 <= self.icl_flip_fraction <= 1.0):
            self.fail("icl_flip_fraction", f"must be None (the weak labels' own error rate) or a fraction in "
                                           f"[0, 1], got {self.icl_flip_fraction!r}")

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """(weak, strong) model pairs, each reported in full."""
        return list(zip(self.weak_models, self.strong_models))

    @property
    def first_pair(self) -> str:
        """The first pair as results name it: "weak -> strong" (in-context W2SG uses its teachers)."""
        return pair_name(self.weak_models[0], self.strong_models[0])

    @property
    def icl_seeds(self) -> list:
        """The seeds in-context W2SG runs on: the first `icl_n_seeds`."""
        return list(self.seeds[:self.icl_n_seeds])
