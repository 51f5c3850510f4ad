"""Study 02_scalable_oversight: its parameters, picked by name from the notebook's parameters cell, and checked."""

from __future__ import annotations

from dataclasses import dataclass

from alignlab.studies.base import StudyConfig


@dataclass
class Config(StudyConfig):
    notebook = "02_scalable_oversight"

    dataset: str
    judge_model: str
    debater_model: str
    strong_model: str
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
