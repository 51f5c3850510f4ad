"""The parameter contract every study shares.

A notebook's parameters cell is the single source of defaults. A study's `Config` is a dataclass
whose fields are named like the parameters it uses (no defaults of its own); `from_params` picks
them by name and runs `check`, the study's domain validation, once. The runner calls it before any
kernel starts and the notebook's second cell calls it again, so a value edited by hand in
JupyterLab is checked the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import ClassVar


def is_int(value) -> bool:
    """An int that is not a bool (YAML and Python both make `True` an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class ParameterError(ValueError):
    """A bad notebook, profile, parameter name or value; the message says what is allowed."""


@dataclass
class StudyConfig:
    notebook: ClassVar[str] = ""

    @classmethod
    def from_params(cls, params: Mapping):
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in params]
        if missing:
            raise ParameterError(f"{cls.notebook or cls.__name__}: parameter(s) {', '.join(missing)} missing; "
                                 f"they are defined in the notebook's parameters cell.")
        config = cls(**{name: params[name] for name in names})
        config.check()
        return config

    def check(self) -> None:
        """Domain checks beyond the parameters cell's types and `# one of:` lists; raise
        ParameterError naming the parameter, the value and what is allowed."""

    def fail(self, name: str, message: str):
        """Raise ParameterError for parameter `name` of this study."""
        raise ParameterError(f"parameter {name!r} of {self.notebook}: {message}")

    def check_training(self, counts=(), rates=(), fractions=()) -> None:
        """The checks every trained study repeats: `counts` (epochs, ensemble sizes) integers >= 1,
        `rates` learning rates > 0, `fractions` numbers in [0, 1]."""
        for name in counts:
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                self.fail(name, f"must be an integer >= 1, got {value!r}")
        for name in rates:
            value = getattr(self, name)
            if not is_number(value) or value <= 0:
                self.fail(name, f"must be a learning rate > 0, got {value!r}")
        for name in fractions:
            value = getattr(self, name)
            if not is_number(value) or not 0.0 <= value <= 1.0:
                self.fail(name, f"must be in [0, 1], got {value!r}")
