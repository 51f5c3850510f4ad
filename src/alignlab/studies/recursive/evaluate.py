"""Scoring a study run: per-step and final tables of plain numbers, one row per seed.

Gold labels of the pools and of the test split are read here, after every fit, and only here.

- label error and ECE of each supervisor on the pool it labels (`alignlab.stats`);
- per-step PGR: (student - supervisor) / (ceiling - supervisor) on test accuracy, where the
  ceiling is the student's model trained on the gold labels of the same pool (direct: the
  strongest model on all pools);
- final accuracy and AUROC of each condition's last student, and PGR against (the first aligner,
  the strongest model's ceiling on all pools): the same reference for every condition;
- error inheritance: P(final student wrong | first aligner wrong) - P(final student wrong |
  first aligner right) on the test split. It is 0 when the two err independently (chance) and 1
  when the student errs exactly where the first aligner does. Questions hard for every model make
  it positive even without any transfer of errors, so it is also given for the strongest gold
  ceiling, and the excess of a student over that ceiling is what the conclusion reads.

PGR is NaN where the ceiling is not above the supervisor (`alignlab.training.w2s.pgr`); those rows
are counted (`pgr_undefined`) rather than warned about once per row.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from alignlab.stats import expected_calibration_error
from alignlab.studies.recursive.chain import StudyRun
from alignlab.studies.recursive.config import CONDITIONS
from alignlab.training.w2s import PGRUndefinedWarning, accuracy_of, auroc_of, pgr


def error_inheritance(first_wrong, wrong) -> float:
    """P(wrong | first wrong) - P(wrong | first right): 0 for independent errors, NaN if either
    group is empty."""
    first_wrong, wrong = np.asarray(first_wrong, dtype=bool), np.asarray(wrong, dtype=bool)
    if first_wrong.all() or not first_wrong.any():
        return float("nan")
    return float(wrong[first_wrong].mean() - wrong[~first_wrong].mean())


def _pgr(weak: float, student: float, ceiling: float) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PGRUndefinedWarning)
        return pgr(weak, student, ceiling)


def student_model(run: StudyRun, condition: str, step: int) -> str:
    """The model trained at `step` of `condition`."""
    return run.ladder[step] if condition in ("recursive", "recursive-ensemble") else run.ladder[-1]


def steps_of(condition: str, n_pools: int) -> list[int]:
    return [n_pools] if condition == "direct" else list(range(1, n_pools + 1))


def step_table(run: StudyRun) -> pd.DataFrame:
    """One row per seed, loss, condition and step (step 0: the first aligner, shared by all)."""
    y_train, y_test = run.labels["train"], run.labels["test"]
    rows = []
    for seed, arrays in run.arrays.items():
        plan = run.plans[seed]
        n_pools = len(plan.pools)
        first_acc = accuracy_of(y_test, arrays["first/test"])
        for loss in run.losses:
            for condition in CONDITIONS:
                rows.append({"seed": seed, "loss": loss, "condition": condition, "step": 0,
                             "student": run.ladder[0], "student_acc": first_acc})
                for step in steps_of(condition, n_pools):
                    prefix = f"{loss}/{condition}/{step}"
                    idx = plan.unlabelled if condition == "direct" else plan.pools[step - 1]
                    labels, y_pool = arrays[f"{prefix}/labels"], y_train[idx]
                    model = student_model(run, condition, step)
                    ceiling = arrays[f"ceiling/{model}/{'all' if condition == 'direct' else step}"]
                    supervisor_acc = accuracy_of(y_test, arrays[f"{prefix}/supervisor_test"])
                    student = arrays[f"{prefix}/student_test"]
                    row = {"seed": seed, "loss": loss, "condition": condition, "step": step, "student": model,
                           "label_error": 1.0 - accuracy_of(y_pool, labels),
                           "label_ece": expected_calibration_error(y_pool, np.clip(labels[:, 1], 0.0, 1.0)),
                           "supervisor_acc": supervisor_acc, "student_acc": accuracy_of(y_test, student),
                           "student_auc": auroc_of(y_test, student), "ceiling_acc": accuracy_of(y_test, ceiling)}
                    row["step_pgr"] = _pgr(supervisor_acc, row["student_acc"], row["ceiling_acc"])
                    rows.append(row)
    return pd.DataFrame(rows)


def final_table(run: StudyRun) -> pd.DataFrame:
    """One row per seed, loss and condition: the last student against the shared references."""
    y_test, top = run.labels["test"], run.ladder[-1]
    rows = []
    for seed, arrays in run.arrays.items():
        n_pools = len(run.plans[seed].pools)
        first, ceiling = arrays["first/test"], arrays[f"ceiling/{top}/all"]
        first_wrong = first.argmax(1) != y_test
        ceiling_inheritance = error_inheritance(first_wrong, ceiling.argmax(1) != y_test)
        weak_acc, weak_auc = accuracy_of(y_test, first), auroc_of(y_test, first)
        ceiling_acc, ceiling_auc = accuracy_of(y_test, ceiling), auroc_of(y_test, ceiling)
        for loss in run.losses:
            for condition in CONDITIONS:
                student = arrays[f"{loss}/{condition}/{n_pools}/student_test"]
                acc, auc = accuracy_of(y_test, student), auroc_of(y_test, student)
                inheritance = error_inheritance(first_wrong, student.argmax(1) != y_test)
                rows.append({"seed": seed, "loss": loss, "condition": condition, "final_acc": acc, "final_auc": auc,
                             "weak_acc": weak_acc, "ceiling_acc": ceiling_acc,
                             "pgr_acc": _pgr(weak_acc, acc, ceiling_acc), "pgr_auc": _pgr(weak_auc, auc, ceiling_auc),
                             "inheritance": inheritance, "ceiling_inheritance": ceiling_inheritance,
                             "excess_inheritance": inheritance - ceiling_inheritance})
    return pd.DataFrame(rows)


def ceiling_table(run: StudyRun) -> pd.DataFrame:
    """Test accuracy of every gold ceiling: seed, model, pool ("1".."K" or "all"), accuracy."""
    y_test, rows = run.labels["test"], []
    for seed, arrays in run.arrays.items():
        for name, probs in arrays.items():
            if name.startswith("ceiling/"):
                _, model, pool = name.split("/")
                rows.append({"seed": seed, "model": model, "pool": pool, "accuracy": accuracy_of(y_test, probs)})
    return pd.DataFrame(rows)


def weight_table(run: StudyRun) -> pd.DataFrame:
    """The ensemble aligner's member weights: seed, loss, step, member (model), weight."""
    rows = []
    for seed, arrays in run.arrays.items():
        for loss in run.losses:
            for step in range(1, len(run.plans[seed].pools) + 1):
                for j, weight in enumerate(arrays[f"{loss}/recursive-ensemble/{step}/weights"]):
                    rows.append({"seed": seed, "loss": loss, "step": step, "member": run.ladder[j],
                                 "weight": float(weight)})
    return pd.DataFrame(rows)
