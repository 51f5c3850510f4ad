"""Which values a study's `dataset` parameter may take, checked with the standard library only.

The study configs call `dataset_problem` before any kernel starts (importing them must not load
pandas or `datasets`), and `alignlab.data.load` accepts the same values: a registered name, or a
folder holding SciQ in its published format (`train.json`, `valid.json`, `test.json`, each a JSON
array of questions), which loads as SciQ.
"""

from __future__ import annotations

import os
from pathlib import Path

SCIQ_FILES = {"train": "train.json", "validation": "valid.json", "test": "test.json"}


def is_sciq_folder(value) -> bool:
    """True if `value` is a path (str or PathLike) to a folder with SciQ's three files."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        return False
    folder = Path(value).expanduser()
    return folder.is_dir() and all((folder / name).is_file() for name in SCIQ_FILES.values())


def dataset_problem(value, allowed) -> str | None:
    """None if `value` is one of the dataset names `allowed`, or (where "sciq" is allowed) a SciQ
    folder; else a sentence saying what is wrong and what is allowed."""
    if isinstance(value, str) and value in allowed:
        return None
    files = ", ".join(SCIQ_FILES.values())
    if "sciq" in allowed:
        if is_sciq_folder(value):
            return None
        if isinstance(value, (str, os.PathLike)) and Path(value).expanduser().is_dir():
            missing = [f for f in SCIQ_FILES.values() if not (Path(value).expanduser() / f).is_file()]
            return (f"the folder {str(value)!r} is not in SciQ's published format: it lacks {', '.join(missing)} "
                    f"(a SciQ folder holds {files})")
        return (f"must be one of {', '.join(allowed)}, or a folder with SciQ's {files}; got {value!r}")
    return f"must be one of {', '.join(allowed)}; got {value!r}"
