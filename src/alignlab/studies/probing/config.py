"""Study 03_prompt_object_bias: its parameters, picked by name from the notebook's parameters cell, and checked."""

from __future__ import annotations

from dataclasses import dataclass

from alignlab.studies.base import StudyConfig


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
    n_test: int
    max_candidates: int
    data_seed: int
    steps: int
    batch_size: int
    n_candidates: int
    lr: float
    a1: float
    a2: float
    prompt_init: str
    n_boot: int
    figure_relations: list
