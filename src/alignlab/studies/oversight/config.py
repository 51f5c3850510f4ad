"""Study 02_scalable_oversight: its parameters, picked by name from the notebook's parameters cell,
and checked. Cheap to import (standard library, `alignlab.study_config` and the constants of
`alignlab.training`, which imports nothing): the runner validates a run with it before any kernel
starts. The study's modules import the allowed values from here."""

from __future__ import annotations

from dataclasses import dataclass

from alignlab.study_config import StudyConfig, is_int
from alignlab.training import MODES

DATASETS = ("world-facts", "sciq")  # SciQ-shaped: each question has a support passage
PROTOCOLS = ("naive", "interaction", "consultancy", "debate", "oracle")
DEBATE_MODES = ("simultaneous", "sequential")
JUDGE_FORMATS = ("ab", "yesno")  # those of alignlab.lm.judge.judge_prompt (not imported: it loads numpy)



@dataclass
class Config(StudyConfig):
    """The notebook's parameters (defaults: its parameters cell)."""

    notebook = "02_scalable_oversight"

    dataset: str
    judge_model: str
    debater_model: str  # also the interaction helper and the consultant
    strong_model: str  # the W2SG student
    protocols: list
    n_questions: int
    rounds: int
    debate_mode: str
    judge_format: str
    max_new_tokens: int
    batch_size: int
    seeds: list
    data_seed: int
    mode: str
    n_examples: int

    def check(self) -> None:
        if self.dataset not in DATASETS:
            self.fail("dataset", f"must be one of {', '.join(DATASETS)} (a dataset with support passages), "
                                 f"got {self.dataset!r}")
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad or not self.protocols:
            unknown = f"unknown: {', '.join(map(repr, bad))}" if bad else "the list is empty"
            self.fail("protocols", f"must be a non-empty list drawn from {', '.join(PROTOCOLS)}; got "
                                   f"{self.protocols!r} ({unknown})")
        if not is_int(self.n_questions) or self.n_questions < 2:
            self.fail("n_questions", f"must be an integer >= 2 (each seed splits the pool in two halves), "
                                     f"got {self.n_questions!r}")
        if not is_int(self.rounds) or self.rounds < 1:
            self.fail("rounds", f"must be an integer >= 1, got {self.rounds!r}")
        if self.debate_mode not in DEBATE_MODES:
            self.fail("debate_mode", f"must be one of {', '.join(DEBATE_MODES)}, got {self.debate_mode!r}")
        if self.judge_format not in JUDGE_FORMATS:
            self.fail("judge_format", f"must be one of {', '.join(JUDGE_FORMATS)}, got {self.judge_format!r}")
        for name in ("max_new_tokens", "batch_size", "n_examples"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                self.fail(name, f"must be an integer >= 1, got {value!r}")
        if not self.seeds or not all(is_int(s) and s >= 0 for s in self.seeds):
            self.fail("seeds", f"must be a non-empty list of integers >= 0, got {self.seeds!r}")
        if not is_int(self.data_seed) or self.data_seed < 0:
            self.fail("data_seed", f"must be an integer >= 0, got {self.data_seed!r}")
        if self.mode not in MODES:
            self.fail("mode", f"must be one of {', '.join(MODES)} (how the W2SG student learns), "
                              f"got {self.mode!r}")
