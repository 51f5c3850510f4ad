"""Shared-prefix scoring equals scoring every sequence alone, and runs each shared prefix once."""

import numpy as np
import pytest

from alignlab.lm.prefix import TOKENS, common_prefix_length, group_by_prefix
from alignlab.lm.scoring import score_labels, score_pairs, score_pairs_naive
from alignlab.testing import tiny_causal_lm

# a few-shot header shared by every prompt, longer than the tiny Gemma's sliding window (8 tokens)
HEADER = ("The capital of France is Paris. Oxygen has the chemical symbol O and atomic number 8. "
          "Q: What is the capital of Peru? A: Lima\n")
QUESTIONS = ["Q: What is the capital of France? A:", "Q: What symbol has oxygen? A:", "Q: Which team? A:",
             "Debaters argue; a judge decides. Q: which is correct? A:"]
CANDIDATES = [" Paris", " Lima", " O", " the weak teacher labels data"]
PAIRS = [(HEADER + q, c) for q in QUESTIONS for c in CANDIDATES] + [("The", " capital"), ("Oxygen", " O")]


def _tokens(model, tokenizer, fn):
    TOKENS.reset()
    out = fn()
    return out, TOKENS.snapshot()


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_shared_prefix_pairs_equal_the_unbatched_reference(arch, batch_size):
    model, tokenizer = tiny_causal_lm(arch)
    reference = score_pairs_naive(model, tokenizer, PAIRS)
    shared, counts = _tokens(model, tokenizer, lambda: score_pairs(model, tokenizer, PAIRS, batch_size=batch_size))
    np.testing.assert_allclose(shared.sum, reference.sum, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(shared.n_tokens, reference.n_tokens)
    # the header runs once per batch of groups, not once per pair
    assert counts["computed_tokens"] < counts["sequence_tokens"] / 2, counts


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_shared_prefix_labels_equal_the_unbatched_reference(arch):
    model, tokenizer = tiny_causal_lm(arch)
    contexts = [HEADER + q for q in QUESTIONS] + ["Oxygen has", "The capital of France is"]
    labels = [" A", " O"]  # one token each: one pass per context
    reference = score_pairs_naive(model, tokenizer, [(c, x) for c in contexts for x in labels]).sum
    shared, counts = _tokens(model, tokenizer, lambda: score_labels(model, tokenizer, contexts, labels, batch_size=4))
    np.testing.assert_allclose(shared.ravel(), reference, rtol=1e-5, atol=1e-5)
    plain, plain_counts = _tokens(model, tokenizer, lambda: score_labels(model, tokenizer, contexts, labels,
                                                                         share_prefix=False))
    np.testing.assert_allclose(plain, shared, rtol=1e-5, atol=1e-5)
    assert plain_counts["computed_tokens"] == plain_counts["sequence_tokens"]
    assert counts["computed_tokens"] < counts["sequence_tokens"] / 2


def test_groups_cover_every_sequence_once_and_respect_keep():
    sequences = [[1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 9], [1, 2, 3, 4, 5, 6, 8], [7, 7], [1, 2, 3, 4, 5, 6, 7]]
    keep = [1, 1, 3, 1, 2]
    groups = group_by_prefix(sequences, keep)
    assert sorted(i for g in groups for i in g.members) == list(range(len(sequences)))
    for g in groups:
        if g.prefix:
            assert len(g.members) > 1
            for i in g.members:
                assert g.prefix <= len(sequences[i]) - keep[i]
                assert sequences[i][:g.prefix] == sequences[g.members[0]][:g.prefix]
    assert [g.prefix for g in groups if 3 in g.members] == [0]  # [7, 7] shares nothing
    assert common_prefix_length([1, 2, 3], [1, 2]) == 2


def test_a_short_common_prefix_is_not_shared():
    groups = group_by_prefix([[1, 2, 5, 6, 7], [1, 2, 8, 9, 9]], [1, 1], min_prefix=4)
    assert all(g.prefix == 0 for g in groups)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smollm2-135m", "gemma3-270m"])
def test_embedded_models_score_shared_prefixes_exactly(name):
    from alignlab.models.load import load_causal_lm

    model, tokenizer = load_causal_lm(name, dtype="float32")
    pairs = [(HEADER + q, c) for q in QUESTIONS[:2] for c in CANDIDATES[:2]]
    reference = score_pairs_naive(model, tokenizer, pairs)
    np.testing.assert_allclose(score_pairs(model, tokenizer, pairs, batch_size=3).sum, reference.sum,
                               rtol=1e-5, atol=1e-4)
    contexts = [HEADER + q for q in QUESTIONS]
    np.testing.assert_allclose(score_labels(model, tokenizer, contexts, [" A", " B"]),
                               score_labels(model, tokenizer, contexts, [" A", " B"], share_prefix=False),
                               rtol=1e-5, atol=1e-4)
