"""Study 03_prompt_object_bias: its parameters, picked by name from the notebook's parameters cell, and checked.

The allowed values live here (standard library only, so the runner checks a run in well under a
second) and the pipeline modules import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignlab.study_config import StudyConfig, is_int, is_number

DATASETS = ("facts-triples", "lama-trex")
TUNED = ("softprompt", "ptuning", "mecod")  # the probes whose prompt trains
METHODS = ("manual", *TUNED)
PROMPT_INITS = ("manual", "random")
GATES = ("released", "learned")  # MeCoD's biased-object gate: the released code's, or the learned ablation
SCORINGS = ("sum", "mean", "pmi")  # candidate score: summed log-prob, per-token mean, minus prompt-only
# The relations of alignlab.data.facts_triples (its RELATIONS; a test keeps the two equal). LAMA's
# relations depend on the files in its folder, so alignlab.studies.probing.facts checks those.
FACTS_TRIPLES_RELATIONS = ("capital", "region", "subregion", "currency", "language", "element_symbol",
                           "element_number", "element_period", "element_group")




@dataclass
class Config(StudyConfig):
    notebook = "03_prompt_object_bias"

    model: str
    dataset: str
    lama_folder: object
    relations: list
    methods: list
    seeds: list
    n_train: int
    n_validation: int
    n_test: int
    max_candidates: int
    data_seed: int
    steps: int
    patience: int
    batch_size: int
    n_candidates: int
    lr: float
    ptuning_lr: float
    mecod_lr: float
    weight_decay: float
    lr_decay: float
    a1: float
    a2: float
    gate: str
    prompt_init: str
    scoring: str
    n_boot: int
    figure_relations: list

    def check(self) -> None:
        if self.dataset not in DATASETS:
            self.fail("dataset", f"must be one of: {', '.join(DATASETS)}; got {self.dataset!r}")
        if self.lama_folder is not None and not isinstance(self.lama_folder, str):
            self.fail("lama_folder", f"must be None or the path of LAMA's data folder; got {self.lama_folder!r}")
        if not self.relations or len(set(self.relations)) != len(self.relations):
            self.fail("relations", f"must be a non-empty list without repeats; got {self.relations!r}")
        if self.dataset == "facts-triples":
            unknown = [r for r in self.relations if r not in FACTS_TRIPLES_RELATIONS]
            if unknown:
                self.fail("relations", f"unknown relation(s) {unknown} of facts-triples; known relations: "
                                       f"{', '.join(FACTS_TRIPLES_RELATIONS)}")
        if (not self.methods or any(m not in METHODS for m in self.methods)
                or len(set(self.methods)) != len(self.methods)):
            self.fail("methods", f"must be distinct values from: {', '.join(METHODS)}; got {self.methods!r}")
        if not is_int(self.max_candidates) or self.max_candidates < 0:
            self.fail("max_candidates", f"must be an int >= 0 (0: every object of the relation); "
                                        f"got {self.max_candidates!r}")
        for name in ("n_train", "n_validation", "n_test", "steps", "patience", "batch_size"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                self.fail(name, f"must be an int >= 1; got {value!r}")
        if not is_int(self.n_candidates) or self.n_candidates < 2:
            self.fail("n_candidates", f"must be an int >= 2; got {self.n_candidates!r}")
        for name in ("lr", "ptuning_lr", "mecod_lr"):
            value = getattr(self, name)
            if not is_number(value) or value <= 0:
                self.fail(name, f"must be a number > 0; got {value!r}")
        if not is_number(self.weight_decay) or self.weight_decay < 0:
            self.fail("weight_decay", f"must be a number >= 0 (released 0.0005); got {self.weight_decay!r}")
        if not is_number(self.lr_decay) or not 0 < self.lr_decay <= 1:
            self.fail("lr_decay", f"must be a number in (0, 1] (released 0.98 per epoch); got {self.lr_decay!r}")
        if self.gate not in GATES:
            self.fail("gate", f"must be one of: {', '.join(GATES)}; got {self.gate!r}")
        if self.scoring not in SCORINGS:
            self.fail("scoring", f"must be one of: {', '.join(SCORINGS)}; got {self.scoring!r}")
        for name, paper in (("a1", 0.2), ("a2", 0.1)):
            value = getattr(self, name)
            if not is_number(value) or value < 0:
                self.fail(name, f"must be a number >= 0 (paper default {paper}); got {value!r}")
        if self.prompt_init not in PROMPT_INITS:
            self.fail("prompt_init", f"must be one of: {', '.join(PROMPT_INITS)}; got {self.prompt_init!r}")
