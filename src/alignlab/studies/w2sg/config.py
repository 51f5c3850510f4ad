"""Study 01_w2sg_ensembles: its parameters, picked by name from the notebook's parameters cell, and checked."""

from __future__ import annotations

from dataclasses import dataclass

from alignlab.studies.base import StudyConfig


@dataclass
class Config(StudyConfig):
    notebook = "01_w2sg_ensembles"

    dataset: str
    weak_models: list
    strong_models: list
    mode: str
    feature_layer: float
    seeds: list
    losses: list
    n_bagging: int
    n_boosting: int
    epochs: int
    lr: float
    alpha_max: float
    warmup_frac: float
    student_val: str
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
    icl_flip_fraction: object
    icl_confidence_tags: bool
