"""Study 02_scalable_oversight: its parameters, picked by name from the notebook's parameters cell,
and checked. Cheap to import (standard library, `alignlab.study_config` and the constants of
`alignlab.training`, which imports nothing): the runner validates a run with it before any kernel
starts. The study's modules import the allowed values from here."""

from __future__ import annotations

from dataclasses import dataclass

from alignlab.data.names import dataset_problem
from alignlab.models.zoo import EMBEDDED
from alignlab.study_config import StudyConfig, is_int
from alignlab.training import LOSSES, MODES

DATASETS = ("world-facts", "sciq")  # SciQ-shaped, each question with a support passage; or a SciQ folder
PROTOCOLS = ("naive", "interaction", "consultancy", "debate", "oracle", "expert")
INFO_SETTINGS = ("passage", "closed-book")  # who reads the support passage (see `prompts`)
DEBATE_MODES = ("simultaneous", "sequential")
JUDGE_FORMATS = ("ab", "yesno")  # those of alignlab.lm.judge.judge_prompt (not imported: it loads numpy)



@dataclass
class Config(StudyConfig):
    """The notebook's parameters (defaults: its parameters cell)."""

    notebook = "02_scalable_oversight"

    dataset: str
    judge_model: str
    judge_chat: bool  # the judge reads its prompt through its chat template
    debater_model: str  # also the interaction helper, the consultant and the expert
    strong_model: str  # the W2SG student
    protocols: list
    info: list  # information settings, each applied to every protocol
    n_questions: int
    rounds: int
    debate_mode: str
    judge_format: str
    min_quote_words: int
    max_new_tokens: int
    batch_size: int
    seeds: list  # the W2SG student's seeds (the judge is not trained: it is scored once per question)
    data_seed: int
    mode: str
    losses: list
    n_boot: int
    n_examples: int
    icl: bool  # in-context W2SG on the protocols' labels (False: the section is skipped)
    icl_model: str | None  # a causal LM; None: `strong_model` if it is one, else `debater_model`
    icl_k: int  # demonstrations per test question

    def check(self) -> None:
        if problem := dataset_problem(self.dataset, DATASETS):
            self.fail("dataset", problem)
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad or not self.protocols:
            unknown = f"unknown: {', '.join(map(repr, bad))}" if bad else "the list is empty"
            self.fail("protocols", f"must be a non-empty list drawn from {', '.join(PROTOCOLS)}; got "
                                   f"{self.protocols!r} ({unknown})")
        bad = [i for i in self.info if i not in INFO_SETTINGS]
        if bad or not self.info or len(set(self.info)) != len(self.info):
            self.fail("info", f"must be a non-empty list of distinct settings drawn from {', '.join(INFO_SETTINGS)}, "
                              f"got {self.info!r}")
        if not isinstance(self.judge_chat, bool):
            self.fail("judge_chat", f"must be true or false, got {self.judge_chat!r}")
        if not is_int(self.n_questions) or self.n_questions < 4:
            self.fail("n_questions", f"must be an integer >= 4 (each student seed splits the pool in two halves), "
                                     f"got {self.n_questions!r}")
        if not is_int(self.rounds) or self.rounds < 1:
            self.fail("rounds", f"must be an integer >= 1, got {self.rounds!r}")
        if self.debate_mode not in DEBATE_MODES:
            self.fail("debate_mode", f"must be one of {', '.join(DEBATE_MODES)}, got {self.debate_mode!r}")
        if self.judge_format not in JUDGE_FORMATS:
            self.fail("judge_format", f"must be one of {', '.join(JUDGE_FORMATS)}, got {self.judge_format!r}")
        if not is_int(self.min_quote_words) or self.min_quote_words < 1:
            self.fail("min_quote_words", f"must be an integer >= 1, got {self.min_quote_words!r}")
        if not is_int(self.n_boot) or self.n_boot < 100:
            self.fail("n_boot", f"must be an integer >= 100 (bootstrap resamples of the questions), "
                                f"got {self.n_boot!r}")
        bad = [loss for loss in self.losses if loss not in LOSSES]
        if bad or not self.losses:
            self.fail("losses", f"must be a non-empty list drawn from {', '.join(LOSSES)} (the student's losses), "
                                f"got {self.losses!r}")
        for name in ("max_new_tokens", "batch_size", "n_examples"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                self.fail(name, f"must be an integer >= 1, got {value!r}")
        if not self.seeds or not all(is_int(s) and s >= 0 for s in self.seeds):
            self.fail("seeds", f"must be a non-empty list of integers >= 0, got {self.seeds!r}")
        if not isinstance(self.icl, bool):
            self.fail("icl", f"must be true or false, got {self.icl!r}")
        if self.icl_model is not None and (not isinstance(self.icl_model, str) or not self.icl_model.strip()):
            self.fail("icl_model", f"must be None (strong_model if it is a causal LM, else debater_model) or a "
                                   f"model name, got {self.icl_model!r}")
        if self.icl and self.icl_model in EMBEDDED and EMBEDDED[self.icl_model].kind != "decoder":
            self.fail("icl_model", f"must be a causal LM (it scores ' Yes' / ' No'); {self.icl_model!r} is an "
                                   f"encoder")
        if not is_int(self.icl_k) or self.icl_k < 1:
            self.fail("icl_k", f"must be an integer >= 1 (demonstrations per test question; the zero-shot "
                               f"prompt is always scored), got {self.icl_k!r}")
        if not is_int(self.data_seed) or self.data_seed < 0:
            self.fail("data_seed", f"must be an integer >= 0, got {self.data_seed!r}")
        if self.mode not in MODES:
            self.fail("mode", f"must be one of {', '.join(MODES)} (how the W2SG student learns), "
                              f"got {self.mode!r}")
