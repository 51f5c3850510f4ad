"""Study 00_overview: its parameters, picked by name from the notebook's parameters cell, and checked."""

from __future__ import annotations

from dataclasses import dataclass

from alignlab.studies.base import StudyConfig


@dataclass
class Config(StudyConfig):
    notebook = "00_overview"

    models: list
    dataset: str
    split: str
    n_questions: int
    seeds: list
    length_normalize: bool
    batch_size: int
