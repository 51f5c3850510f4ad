"""The two-level bootstrap, bootstrap p-values and Holm's adjustment of alignlab.stats."""

import numpy as np
import pytest

from alignlab.stats import bootstrap_pvalue, holm, two_level_resample


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.5 -> 4 * 0.01, 3 * 0.03, max(0.09, 2 * 0.04), 0.5; NaN ignored
    got = holm([0.01, 0.04, 0.03, np.nan, 0.5])
    assert np.allclose(got[[0, 1, 2, 4]], [0.04, 0.09, 0.09, 0.5]) and np.isnan(got[3])
    assert holm([0.9, 0.8]).max() <= 1.0


def test_bootstrap_pvalue():
    rng = np.random.default_rng(0)
    assert bootstrap_pvalue(rng.normal(3.0, 1.0, 2000)) < 0.01       # far from 0
    assert bootstrap_pvalue(rng.normal(0.0, 1.0, 2000)) > 0.5        # centred on 0
    assert bootstrap_pvalue(np.ones(99)) == pytest.approx(1 / 100)   # never 0
    assert np.isnan(bootstrap_pvalue([]))


def test_two_level_resample_draws_outer_units_then_items_within_groups():
    rng = np.random.default_rng(0)
    draws = [two_level_resample(rng, 3, {"a": 5, "b": 2}) for _ in range(300)]
    outer = np.stack([d[0] for d in draws])
    assert outer.shape == (300, 3) and set(np.unique(outer)) == {0, 1, 2}
    assert any(len(set(row)) < 3 for row in outer)                   # seeds drawn with replacement
    assert all(d[1]["a"].shape == (5,) and d[1]["b"].max() < 2 for d in draws)
