"""One subpackage per notebook. A study imports the layers below it, never another study.

`NOTEBOOKS` maps each study notebook to its subpackage; `config_class` returns the study's
`Config`, whose `from_params` is the one place a study's parameters are validated (the runner
calls it before a kernel starts, the notebook's second cell calls it again). Config modules import
only the standard library and this package's cheap modules, so validation stays well under a
second.
"""

from __future__ import annotations

import importlib

NOTEBOOKS = {
    "00_overview": "overview",
    "01_w2sg_ensembles": "w2sg",
    "02_scalable_oversight": "oversight",
    "03_prompt_object_bias": "probing",
    "04_cultural_dimensions": "culture",
    "05_w2sg_beyond_accuracy": "beyond_accuracy",
    "06_o1_coder": "coder",
    "07_recursive_w2sg": "recursive",
}


def config_class(notebook: str):
    """The `Config` class of the study behind `notebook` (a stem), or None for a notebook that is
    not a study (e.g. the runner's own test notebooks)."""
    package = NOTEBOOKS.get(notebook)
    if package is None:
        return None
    return importlib.import_module(f"alignlab.studies.{package}.config").Config
