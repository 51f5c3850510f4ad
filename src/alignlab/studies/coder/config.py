"""Study 06_o1_coder: its parameters, picked by name from the notebook's parameters cell, and
checked. Cheap to import (standard library and `alignlab.study_config` only): the runner validates
a run with it before any kernel starts."""

from __future__ import annotations

import os
from dataclasses import dataclass

from alignlab.models.precision import DTYPE_NAMES
from alignlab.study_config import StudyConfig, is_int, is_number

DATASETS = ("humaneval", "mbpp")
STYLES = ("vanilla", "pseudocode")
REWARDS = ("generated", "oracle")
MIN_BOOT = 100


@dataclass
class Config(StudyConfig):
    """The notebook's parameters (defaults: its parameters cell)."""

    notebook = "06_o1_coder"

    model: str
    dtype: str
    dataset: str
    mbpp_path: object
    fold_seed: int
    n_problems_a: int
    n_problems_b: int
    budget: int
    seeds: list
    temperature: float
    max_new_tokens: int
    step_tokens: int
    n_tests: int
    styles: list
    mcts_rewards: list
    mcts_samples: int
    mcts_depth: int
    mcts_c: float
    pass_ks: list
    sandbox_timeout: float
    lora_r: int
    train_epochs: int
    train_lr: float
    dpo_beta: float
    train_max_length: int
    n_boot: int
    bootstrap_seed: int

    def check(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            self.fail("model", f"must be a model name of the zoo, a hub id or a local folder; got {self.model!r}")
        if self.dtype not in DTYPE_NAMES:
            self.fail("dtype", f"must be one of: {', '.join(DTYPE_NAMES)} (fast: bfloat16 where the hardware "
                               f"computes it, else fp32); got {self.dtype!r}")
        if self.dataset not in DATASETS:
            self.fail("dataset", f"must be one of: {', '.join(DATASETS)}; got {self.dataset!r}")
        if self.mbpp_path is not None and not isinstance(self.mbpp_path, (str, os.PathLike)):
            self.fail("mbpp_path", f"must be None (the hub) or a local mbpp.jsonl; got {self.mbpp_path!r}")
        for name in ("fold_seed", "bootstrap_seed"):
            if not is_int(getattr(self, name)):
                self.fail(name, f"must be an int; got {getattr(self, name)!r}")
        for name in ("n_problems_a", "n_problems_b"):
            value = getattr(self, name)
            if not is_int(value) or value < 0:
                self.fail(name, f"must be an int >= 0 (0: every problem of the fold); got {value!r}")
        if not is_int(self.budget) or self.budget < 2:
            self.fail("budget", f"must be an int >= 2 (programs generated per problem and method); got {self.budget!r}")
        if not isinstance(self.seeds, (list, tuple)) or not self.seeds or not all(is_int(s) for s in self.seeds) \
                or len(set(self.seeds)) != len(self.seeds):
            self.fail("seeds", f"must be a non-empty list of distinct ints (sampling seeds); got {self.seeds!r}")
        if not is_number(self.temperature) or not 0 < self.temperature <= 2:
            self.fail("temperature", f"must be a number in (0, 2] (sampling temperature); got {self.temperature!r}")
        for name, low in (("max_new_tokens", 32), ("step_tokens", 16), ("n_tests", 1), ("mcts_samples", 1),
                          ("mcts_depth", 1)):
            value = getattr(self, name)
            if not is_int(value) or value < low:
                self.fail(name, f"must be an int >= {low}; got {value!r}")
        if self.mcts_depth > 6:
            self.fail("mcts_depth", f"must be at most 6 reasoning steps; got {self.mcts_depth!r}")
        for name, allowed in (("styles", STYLES), ("mcts_rewards", REWARDS)):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not all(v in allowed for v in value) \
                    or len(set(value)) != len(value):
                self.fail(name, f"must be a list of distinct values from: {', '.join(allowed)}; got {value!r}")
        if "vanilla" not in self.styles:
            self.fail("styles", f"must include 'vanilla' (the search methods sample with it); got {self.styles!r}")
        if not is_number(self.mcts_c) or self.mcts_c < 0:
            self.fail("mcts_c", f"must be a number >= 0 (UCT exploration constant); got {self.mcts_c!r}")
        if not isinstance(self.pass_ks, (list, tuple)) or not self.pass_ks \
                or not all(is_int(k) and 1 <= k <= self.budget for k in self.pass_ks):
            self.fail("pass_ks", f"must be a non-empty list of ints in [1, budget={self.budget}]; got {self.pass_ks!r}")
        if not is_number(self.sandbox_timeout) or not 0.5 <= self.sandbox_timeout <= 120:
            self.fail("sandbox_timeout", f"must be a number of seconds in [0.5, 120]; got {self.sandbox_timeout!r}")
        if not is_int(self.lora_r) or not 1 <= self.lora_r <= 256:
            self.fail("lora_r", f"must be an int in [1, 256] (LoRA rank of every fine-tuning); got {self.lora_r!r}")
        if not is_int(self.train_epochs) or not 1 <= self.train_epochs <= 100:
            self.fail("train_epochs", f"must be an int in [1, 100] (epochs per fine-tuning stage); got "
                                      f"{self.train_epochs!r}")
        if not is_number(self.train_lr) or not 0 < self.train_lr <= 0.1:
            self.fail("train_lr", f"must be a number in (0, 0.1] (AdamW learning rate); got {self.train_lr!r}")
        if not is_number(self.dpo_beta) or not 0 < self.dpo_beta <= 10:
            self.fail("dpo_beta", f"must be a number in (0, 10] (DPO's strength of the pull to the reference); "
                                  f"got {self.dpo_beta!r}")
        if not is_int(self.train_max_length) or not 64 <= self.train_max_length <= 8192:
            self.fail("train_max_length", f"must be an int in [64, 8192] (tokens per training example, prompt "
                                          f"included); got {self.train_max_length!r}")
        if not is_int(self.n_boot) or self.n_boot < MIN_BOOT:
            self.fail("n_boot", f"must be an int >= {MIN_BOOT} (bootstrap resamples); got {self.n_boot!r}")
