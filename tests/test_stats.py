"""Unit tests for alignlab.stats on hand-computed numbers."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from alignlab.stats import (
    auroc,
    bootstrap_ci,
    expected_calibration_error,
    format_ci,
    paired_bootstrap_ci,
    summarize,
    t_ci,
)


def test_t_ci_matches_the_formula_on_1_2_3():
    lo, hi = t_ci([1.0, 2.0, 3.0])
    # mean 2, sample std 1, t_{0.975, 2} = 4.302652729...
    half = scipy_stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert half == pytest.approx(4.302652729911275 / math.sqrt(3))
    assert (lo, hi) == pytest.approx((2.0 - half, 2.0 + half))


def test_t_ci_with_one_value_has_no_interval():
    lo, hi = t_ci([0.7])
    assert math.isnan(lo) and math.isnan(hi)


def test_t_ci_narrows_at_lower_level():
    lo90, hi90 = t_ci([1.0, 2.0, 3.0, 4.0], level=0.90)
    lo95, hi95 = t_ci([1.0, 2.0, 3.0, 4.0], level=0.95)
    assert lo95 < lo90 < 2.5 < hi90 < hi95


def test_bootstrap_ci_contains_the_mean_and_shrinks_with_more_data():
    rng = np.random.default_rng(0)
    small = rng.normal(0.5, 1.0, size=50)
    large = rng.normal(0.5, 1.0, size=5000)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s < small.mean() < hi_s
    assert lo_l < large.mean() < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5  # width ~ 1/sqrt(n): 10x more samples -> 10x narrower


def test_bootstrap_ci_is_seeded_and_accepts_other_statistics():
    values = np.arange(100.0)
    assert bootstrap_ci(values, seed=1) == bootstrap_ci(values, seed=1)
    lo, hi = bootstrap_ci(values, statistic=np.median)
    assert lo < 49.5 < hi
    lo2, hi2 = bootstrap_ci(values, statistic=lambda x: float(np.mean(x)))  # no axis= support
    assert lo2 < 49.5 < hi2


def test_bootstrap_ci_of_constant_and_empty_values():
    assert bootstrap_ci([0.25] * 10) == (0.25, 0.25)
    lo, hi = bootstrap_ci([])
    assert math.isnan(lo) and math.isnan(hi)


def test_paired_bootstrap_sees_a_consistent_gain():
    rng = np.random.default_rng(0)
    difficulty = rng.normal(size=400)
    a = difficulty + 0.1 + rng.normal(scale=0.05, size=400)
    b = difficulty
    lo, hi = paired_bootstrap_ci(a, b)
    assert 0.0 < lo < 0.1 < hi
    # unpaired intervals overlap heavily; the paired one is far narrower
    lo_a, hi_a = bootstrap_ci(a)
    assert (hi - lo) < (hi_a - lo_a) / 5
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap_ci([1, 2], [1, 2, 3])


def test_summarize_on_a_hand_built_table():
    df = pd.DataFrame(
        {
            "method": ["a", "a", "a", "b", "b", "b", "c"],
            "seed": [0, 1, 2, 0, 1, 2, 0],
            "acc": [1.0, 2.0, 3.0, 0.5, 0.5, np.nan, 0.9],
        }
    )
    table = summarize(df, by=["method"], value="acc")
    assert list(table.columns) == ["method", "mean", "lo", "hi", "n", "std"]
    assert list(table["method"]) == ["a", "b", "c"]
    assert list(table["n"]) == [3, 2, 1]
    a = table.iloc[0]
    half = scipy_stats.t.ppf(0.975, 2) / math.sqrt(3)
    assert (a["mean"], a["lo"], a["hi"], a["std"]) == pytest.approx((2.0, 2.0 - half, 2.0 + half, 1.0))
    b = table.iloc[1]
    assert (b["mean"], b["lo"], b["hi"], b["std"]) == pytest.approx((0.5, 0.5, 0.5, 0.0))
    c = table.iloc[2]
    assert c["mean"] == 0.9 and math.isnan(c["lo"]) and math.isnan(c["hi"]) and math.isnan(c["std"])


def test_summarize_two_keys_bootstrap_and_overall():
    df = pd.DataFrame({"m": ["x", "x", "y", "y"], "k": [1, 2, 1, 2], "v": [0.0, 1.0, 1.0, 1.0]})
    table = summarize(df, by=["m", "k"], value="v", ci="bootstrap")
    assert list(table.columns) == ["m", "k", "mean", "lo", "hi", "n", "std"]
    assert len(table) == 4
    overall = summarize(df, by=[], value="v", ci="bootstrap")
    assert len(overall) == 1 and overall["mean"].iloc[0] == 0.75 and overall["n"].iloc[0] == 4
    assert overall["lo"].iloc[0] <= 0.75 <= overall["hi"].iloc[0]
    with pytest.raises(ValueError, match="ci must be"):
        summarize(df, by=["m"], value="v", ci="normal")
    with pytest.raises(KeyError, match="nope"):
        summarize(df, by=["nope"], value="v")


def test_format_ci():
    assert format_ci(0.8123, 0.79, 0.834) == "0.812 [0.790, 0.834]"
    assert format_ci(12.3456, 11.0, 13.0, digits=1) == "12.3 [11.0, 13.0]"
    assert format_ci(0.5, float("nan"), float("nan")) == "0.500"


def test_auroc_hand_computed():
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)  # 3 of 4 pairs ordered
    assert auroc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts one half
    assert auroc([True, False], [1.0, 0.0]) == 1.0


def test_auroc_equals_the_rank_statistic_with_ties():
    """sklearn's area equals the Mann-Whitney U / (n_pos * n_neg) from average ranks."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=500)
    score = np.round(rng.normal(size=500) + y, 1)  # rounded: many ties
    ranks = scipy_stats.rankdata(score)
    n_pos = y.sum()
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2
    assert auroc(y, score) == pytest.approx(u / (n_pos * (len(y) - n_pos)), abs=1e-12)


def test_auroc_single_class_warns_and_returns_nan():
    with pytest.warns(RuntimeWarning, match="only one class"):
        value = auroc([1, 1, 1], [0.2, 0.5, 0.9])
    assert math.isnan(value)


def test_auroc_rejects_non_binary_labels():
    with pytest.raises(ValueError, match="binary"):
        auroc([0, 1, 2], [0.1, 0.2, 0.3])


def test_expected_calibration_error_hand_example():
    y = [1, 0, 0, 1]
    prob = [0.9, 0.8, 0.3, 0.6]
    # predicted class 1, 1, 0, 1; confidence 0.9, 0.8, 0.7, 0.6; correct 1, 0, 1, 1.
    # Each lands in its own bin: (0.1 + 0.8 + 0.3 + 0.4) / 4 = 0.4
    assert expected_calibration_error(y, prob) == pytest.approx(0.4)
    # one bin: |mean correct - mean confidence| = |0.75 - 0.75| = 0
    assert expected_calibration_error(y, prob, n_bins=1) == pytest.approx(0.0)


def test_expected_calibration_error_perfect_and_bounds():
    assert expected_calibration_error([1, 0, 1], [1.0, 0.0, 1.0]) == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1], [1.5])


def test_resampled_auroc_and_ece_equal_the_one_resample_functions_row_by_row():
    from alignlab.stats import auroc_resampled, ece_resampled

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 12)
    y[:2] = [0, 1]
    prob = np.round(rng.random(12), 1)  # rounded: ties, and values on the ECE bins' edges
    idx = rng.integers(0, 12, (200, 12))
    idx[0] = 0  # a resample with one class
    aucs = auroc_resampled(y, prob, idx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.array([auroc(y[i], prob[i]) for i in idx])
    assert np.isnan(aucs[0]) and np.array_equal(np.isnan(aucs), np.isnan(expected))
    np.testing.assert_allclose(aucs[1:], expected[1:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ece_resampled(y, prob, idx), [expected_calibration_error(y[i], prob[i]) for i in idx],
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(ece_resampled(y, prob, idx, n_bins=3),
                               [expected_calibration_error(y[i], prob[i], n_bins=3) for i in idx], rtol=0, atol=1e-12)

    def ece_by_definition(labels, p, n_bins):  # Guo et al.: top-label confidence, bins ((m-1)/M, m/M]
        confidence, correct = np.maximum(p, 1 - p), ((p >= 0.5) == labels)
        total = 0.0
        for m in range(1, n_bins + 1):
            in_bin = (confidence > (m - 1) / n_bins) & (confidence <= m / n_bins)
            if in_bin.any():
                total += in_bin.sum() / len(p) * abs(correct[in_bin].mean() - confidence[in_bin].mean())
        return total

    np.testing.assert_allclose(ece_resampled(y, prob, idx), [ece_by_definition(y[i], prob[i], 10) for i in idx],
                               rtol=0, atol=1e-12)


def test_no_warnings_on_normal_use():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auroc([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
        summarize(pd.DataFrame({"g": ["a"], "v": [1.0]}), by=["g"], value="v")


def test_mean_ci_drops_nans_and_matches_t_ci():
    from alignlab.stats import mean_ci, t_ci

    mean, lo, hi = mean_ci([0.1, float("nan"), 0.3, 0.2])
    assert mean == pytest.approx(0.2)
    assert (lo, hi) == pytest.approx(t_ci([0.1, 0.3, 0.2]))
    assert all(np.isnan(v) for v in mean_ci([]))
    one = mean_ci([0.4])
    assert one[0] == 0.4 and np.isnan(one[1]) and np.isnan(one[2])


@pytest.mark.parametrize("effect, expected", [((0.1, 0.02, 0.2), "above"), ((-0.1, -0.2, -0.01), "below"),
                                              ((0.05, -0.01, 0.1), "straddles"),
                                              ((0.1, float("nan"), float("nan")), "unknown"),
                                              ((0.0, 0.0, 0.1), "straddles")])
def test_verdict_one_rule_with_the_callers_words(effect, expected):
    from alignlab.stats import verdict

    words = {"above": "above", "below": "below", "straddles": "straddles", "unknown": "unknown"}
    assert verdict(*effect, **words) == expected
