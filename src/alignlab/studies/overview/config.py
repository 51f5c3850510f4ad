"""Study 00_overview: its parameters, picked by name from the notebook's parameters cell, and
checked. Cheap to import (standard library, `alignlab.study_config` and `alignlab.data.names`): the
runner validates a run with it before any kernel starts."""

from __future__ import annotations

from dataclasses import dataclass

from alignlab.data.names import dataset_problem
from alignlab.study_config import StudyConfig, is_int, is_number

DATASETS = ("world-facts", "sciq")  # SciQ-shaped; a folder in SciQ's published format is allowed too


@dataclass
class Config(StudyConfig):
    """The notebook's parameters (defaults: its parameters cell)."""

    notebook = "00_overview"

    models: list
    dataset: str
    split: str
    n_questions: int
    seeds: list
    length_normalize: bool
    batch_size: int
    probe_layers: list
    probe_epochs: int
    probe_limit: int
    context_questions: int
    context_chat: bool

    def check(self) -> None:
        if not isinstance(self.models, (list, tuple)) or not self.models or len(set(self.models)) != len(self.models):
            self.fail("models", f"must be a non-empty list without repeats, weakest first (each consecutive "
                                f"pair is one step of the ladder); got {self.models!r}")
        if problem := dataset_problem(self.dataset, DATASETS):
            self.fail("dataset", problem)
        if not is_int(self.n_questions) or self.n_questions < 1:
            self.fail("n_questions", f"must be an int >= 1; got {self.n_questions!r}")
        if (not isinstance(self.seeds, (list, tuple)) or not self.seeds or not all(is_int(s) for s in self.seeds)
                or len(set(self.seeds)) != len(self.seeds)):
            self.fail("seeds", f"must be a non-empty list of distinct ints (each redraws the binary view); "
                               f"got {self.seeds!r}")
        if not isinstance(self.length_normalize, bool):
            self.fail("length_normalize", f"must be True or False; got {self.length_normalize!r}")
        if not is_int(self.batch_size) or self.batch_size < 1:
            self.fail("batch_size", f"must be an int >= 1; got {self.batch_size!r}")
        layers = self.probe_layers
        if (not isinstance(layers, (list, tuple)) or not layers
                or not all(is_number(x) and 0.0 <= x <= 1.0 for x in layers)
                or len({float(x) for x in layers}) != len(layers)):
            self.fail("probe_layers", f"must be a non-empty list of distinct fractions of depth in [0, 1] (0.5: the "
                                      f"middle block, 1.0: the last layer); got {layers!r}")
        if not is_int(self.probe_epochs) or self.probe_epochs < 1:
            self.fail("probe_epochs", f"must be an int >= 1; got {self.probe_epochs!r}")
        if not is_int(self.probe_limit) or self.probe_limit < 0:
            self.fail("probe_limit", f"must be an int >= 0 (0: every row of each split); got {self.probe_limit!r}")
        if not is_int(self.context_questions) or self.context_questions < 2:
            self.fail("context_questions", f"must be an int >= 2 (questions with a support passage; the CI resamples "
                                           f"them); got {self.context_questions!r}")
        if not isinstance(self.context_chat, bool):
            self.fail("context_chat", f"must be True or False; got {self.context_chat!r}")
