"""Batched scoring equals an unbatched, unpadded reference; sums, means and groupings are right."""

import numpy as np
import pytest

from alignlab.lm.scoring import choice_probabilities, score_choices, score_labels, score_pairs, score_pairs_naive
from alignlab.testing import tiny_causal_lm

PAIRS = [
    ("Q: What is the capital of France? A:", " Paris"),
    ("Q: What is the capital of Peru? A:", " Lima, the capital of Peru"),
    ("The", " weak teacher labels data and the strong student learns"),
    ("Oxygen has the chemical symbol", " O"),
    ("Option 1: I prefer to work alone. Option 2: I prefer to work in a team. Answer: Option", " 2"),
]


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_batched_equals_unbatched_reference(arch, batch_size):
    model, tokenizer = tiny_causal_lm(arch)
    reference = score_pairs_naive(model, tokenizer, PAIRS)
    batched = score_pairs(model, tokenizer, PAIRS, batch_size=batch_size)
    np.testing.assert_allclose(batched.sum, reference.sum, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(batched.n_tokens, reference.n_tokens)


def test_tokenizer_without_bos_is_scored_the_same_way():
    model, tokenizer = tiny_causal_lm("llama", bos=False)
    np.testing.assert_allclose(score_pairs(model, tokenizer, PAIRS, batch_size=4).sum,
                               score_pairs_naive(model, tokenizer, PAIRS).sum, rtol=1e-5, atol=1e-4)


def test_mean_is_sum_over_continuation_tokens():
    model, tokenizer = tiny_causal_lm()
    scores = score_pairs(model, tokenizer, PAIRS)
    n = [len(tokenizer(c, add_special_tokens=False)["input_ids"]) for _, c in PAIRS]
    np.testing.assert_array_equal(scores.n_tokens, n)
    np.testing.assert_allclose(scores.mean, scores.sum / np.array(n))
    assert np.all(scores.sum < 0)


def test_score_choices_groups_in_order():
    model, tokenizer = tiny_causal_lm()
    contexts = ["The capital of France is", "Oxygen has the chemical symbol"]
    choices = [[" Paris", " Lima", " Rome"], [" O", " Ox"]]
    grouped = score_choices(model, tokenizer, contexts, choices, batch_size=2)
    flat = score_pairs_naive(model, tokenizer, [(c, x) for c, xs in zip(contexts, choices) for x in xs]).sum
    assert [len(g) for g in grouped] == [3, 2]
    np.testing.assert_allclose(np.concatenate(grouped), flat, rtol=1e-5, atol=1e-4)


def test_truncation_keeps_the_continuation():
    model, tokenizer = tiny_causal_lm()
    long_context = "The capital of France is Paris. " * 20
    scores = score_pairs(model, tokenizer, [(long_context, " Paris")], max_length=16)
    assert scores.n_tokens[0] == len(tokenizer(" Paris", add_special_tokens=False)["input_ids"])
    assert np.isfinite(scores.sum[0])


def test_empty_continuation_is_an_error():
    model, tokenizer = tiny_causal_lm()
    with pytest.raises(ValueError, match="continuation 0"):
        score_pairs(model, tokenizer, [("context", "")])


def test_choice_probabilities_softmax():
    p = choice_probabilities(np.array([np.log(1.0), np.log(3.0)]))
    np.testing.assert_allclose(p, [0.25, 0.75])


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_score_labels_one_pass_equals_pairwise_scoring(arch):
    model, tokenizer = tiny_causal_lm(arch)
    contexts = [c for c, _ in PAIRS]
    single = [" A", " O"]  # one token each in the tiny vocabulary
    assert all(len(tokenizer(x, add_special_tokens=False)["input_ids"]) == 1 for x in single)
    fast = score_labels(model, tokenizer, contexts, single, batch_size=2)
    reference = score_pairs_naive(model, tokenizer, [(c, x) for c in contexts for x in single]).sum
    np.testing.assert_allclose(fast.ravel(), reference, rtol=1e-5, atol=1e-4)
    multi = [" Paris", " the capital"]  # falls back to pairwise scoring
    np.testing.assert_allclose(score_labels(model, tokenizer, contexts, multi).ravel(),
                               score_pairs_naive(model, tokenizer, [(c, x) for c in contexts for x in multi]).sum,
                               rtol=1e-5, atol=1e-4)
