"""Who may see which labels: the gold set G, the disjoint unlabelled pools, and the ladder's order.

Per seed, the training split is permuted once:

    G      the first `n_gold` examples: the ONLY human labels the chain ever reads.
           G_check (a `gold_check_frac` share of G) is held out from every fit: it weighs the
           members of the ensemble aligner and measures each model's capability. G_fit (the
           rest) trains the first aligner, the weakest model.
    P1..PK the following K pools of `pool_size` examples each (0: the rest of the split cut into
           K equal pools), pairwise disjoint and disjoint from G. Their gold labels are read only
           to evaluate (label error, calibration) and to train the gold ceilings.

The validation split is labelled by the current supervisor only (a student's epochs are chosen
on agreement with it); the test split is read once, at the end, for the reported numbers.
G does not depend on K, so the ladder can be measured on it before K is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alignlab.stats import mean_ci


@dataclass(frozen=True)
class Plan:
    """Index arrays into the training split for one seed."""

    gold_fit: np.ndarray
    gold_check: np.ndarray
    pools: tuple  # K disjoint index arrays of equal size

    @property
    def gold(self) -> np.ndarray:
        return np.concatenate([self.gold_fit, self.gold_check])

    @property
    def unlabelled(self) -> np.ndarray:
        """Every pool's indices, in pool order (the same total for every condition)."""
        return np.concatenate(self.pools)


def gold_split(n_train: int, n_gold: int, gold_check_frac: float, seed: int) -> tuple:
    """(G_fit, G_check, the rest in random order) for `seed`; raises ValueError when G does not fit."""
    n_check = int(round(n_gold * gold_check_frac))
    if n_gold > n_train or n_check < 2 or n_gold - n_check < 2:
        raise ValueError(f"n_gold={n_gold} with gold_check_frac={gold_check_frac} needs at least 2 examples in "
                         f"G_fit and in G_check and at most {n_train} in all (the training split's size); "
                         f"change n_gold or gold_check_frac")
    order = np.random.default_rng([seed, 7]).permutation(n_train)
    gold = order[:n_gold]
    return np.sort(gold[n_check:]), np.sort(gold[:n_check]), order[n_gold:]


def draw_plan(n_train: int, n_gold: int, gold_check_frac: float, n_pools: int, pool_size: int, seed: int) -> Plan:
    """The seed's G and `n_pools` disjoint pools of equal size (see the module doc)."""
    gold_fit, gold_check, rest = gold_split(n_train, n_gold, gold_check_frac, seed)
    if n_pools < 1:
        raise ValueError(f"a chain needs at least one pool, got n_pools={n_pools}")
    size = pool_size or len(rest) // n_pools
    if size < 2 or size * n_pools > len(rest):
        raise ValueError(f"{n_pools} pools of {size} examples do not fit in the {len(rest)} training examples left "
                         f"after G (n_gold={n_gold}); lower pool_size or n_gold, or use fewer models")
    pools = tuple(np.sort(rest[k * size:(k + 1) * size]) for k in range(n_pools))
    return Plan(gold_fit=gold_fit, gold_check=gold_check, pools=pools)


def order_ladder(models: list, capability: pd.DataFrame, order: str) -> tuple[list, pd.DataFrame]:
    """The ladder the chains climb, and a table saying why each model is in it or not.

    `capability`: rows (seed, model, capability), the probe accuracy on G_check of each model
    trained on G_fit. order="given" keeps the listed order (e.g. the overview's measured order);
    "measured" sorts by mean capability (stable: ties keep the listed order). Walking up, each
    model is compared with the last kept one by the per-seed paired difference: a step whose 95%
    t-CI lies below 0 goes down and is skipped; a step whose mean is below 0 or equal to it, but
    not significantly, is kept and flagged (G_check is small: a noisy dip is not a verdict).
    """
    if order not in ("measured", "given"):
        raise ValueError(f"order must be 'measured' or 'given', got {order!r}")
    by_seed = capability.pivot_table(index="seed", columns="model", values="capability")
    means = by_seed.mean()
    ranked = sorted(models, key=lambda m: means[m]) if order == "measured" else list(models)
    ladder, rows = [], []
    for model in ranked:
        status, step = "kept", (float("nan"),) * 3
        if ladder:
            step = mean_ci((by_seed[model] - by_seed[ladder[-1]]).to_numpy())
            if step[2] < 0:
                status = f"skipped: goes down from {ladder[-1]}"
            elif step[0] < 0:
                status = f"kept, flagged: below {ladder[-1]} on G, not significantly"
            elif step[0] == 0:
                status = f"kept, flagged: ties {ladder[-1]} on G"
        if not status.startswith("skipped"):
            ladder.append(model)
        rows.append({"model": model, "capability": float(means[model]), "step": step[0], "step_lo": step[1],
                     "step_hi": step[2], "status": status})
    return ladder, pd.DataFrame(rows)
