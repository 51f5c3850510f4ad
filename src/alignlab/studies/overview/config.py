"""Study 00_overview: its parameters, picked by name from the notebook's parameters cell, and
checked. Cheap to import (standard library and `alignlab.studies.base` only): the runner validates
a run with it before any kernel starts."""

from __future__ import annotations

from dataclasses import dataclass

from alignlab.studies.base import StudyConfig, is_int


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

    def check(self) -> None:
        if not isinstance(self.models, (list, tuple)) or not self.models or len(set(self.models)) != len(self.models):
            self.fail("models", f"must be a non-empty list without repeats, weakest first (each consecutive "
                                f"pair is one step of the ladder); got {self.models!r}")
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
