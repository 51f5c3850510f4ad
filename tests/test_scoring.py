"""Batched scoring equals an unbatched, unpadded reference; sums, means and padding are right."""

import copy

import numpy as np
import pytest
import torch

from alignlab.lm.batching import pad_batch, pad_token_id, position_ids
from alignlab.lm.scoring import score_labels, score_pairs, score_pairs_naive
from alignlab.testing import tiny_causal_lm, tiny_tokenizer

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


def _padded_by_hand(sequences, pad_id, side):
    """The reference: a tensor of pad ids filled row by row, and the mask of real tokens."""
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        cols = slice(width - len(ids), width) if side == "left" else slice(0, len(ids))
        input_ids[row, cols] = torch.tensor(ids)
        mask[row, cols] = 1
    return input_ids, mask


@pytest.mark.parametrize("side", ["left", "right"])
def test_pad_batch_equals_padding_by_hand(side):
    tokenizer = tiny_tokenizer()
    sequences = [[5, 6, 7], [8], [1, 2, 3, 4, 5], [9, 9]]
    input_ids, mask = pad_batch(tokenizer, sequences, side=side)
    expected_ids, expected_mask = _padded_by_hand(sequences, pad_token_id(tokenizer), side)
    assert input_ids.dtype == mask.dtype == torch.long
    assert torch.equal(input_ids, expected_ids) and torch.equal(mask, expected_mask)
    if side == "left":
        assert position_ids(mask)[:, -1].tolist() == [len(ids) - 1 for ids in sequences]
        assert position_ids(mask)[1].tolist() == [0, 0, 0, 0, 0]


def test_pad_batch_needs_a_pad_token_and_a_known_side():
    tokenizer = tiny_tokenizer()
    with pytest.raises(ValueError, match="side"):
        pad_batch(tokenizer, [[1]], side="middle")
    no_pad = copy.deepcopy(tokenizer)  # the tiny tokenizer is shared: change a copy
    no_pad.pad_token = None
    assert pad_token_id(no_pad) == no_pad.eos_token_id
    with pytest.raises(ValueError, match="no pad token"):
        pad_batch(no_pad, [[1], [1, 2]])


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
