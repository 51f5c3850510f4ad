"""Study 04_cultural_dimensions: its parameters, picked by name from the notebook's parameters cell, and checked."""

from __future__ import annotations

from dataclasses import dataclass

from alignlab.studies.base import StudyConfig


@dataclass
class Config(StudyConfig):
    notebook = "04_cultural_dimensions"

    models: list
    dataset: str
    cdeval_path: object
    n_per_cell: int
    sample_seed: int
    methods: list
    templates: list
    n_boot: int
    bootstrap_seed: int
    batch_size: int
