"""Batched generation with a shared header equals generating each prompt alone; stop strings cut."""

import pytest

from alignlab.lm.generation import cut_at_stop, generate_with
from alignlab.lm.prefix import TOKENS
from alignlab.testing import tiny_causal_lm

HEADER = "The capital of France is Paris. Oxygen has the chemical symbol O and atomic number 8.\n"
PROMPTS = [HEADER + q for q in ["Q: What is the capital of Peru? A:", "Q: Which team? A:",
                                "Debaters argue for opposite answers; a judge decides. Q: which? A:", "Q:"]]


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_shared_header_generation_equals_one_prompt_at_a_time(arch):
    model, tokenizer = tiny_causal_lm(arch)
    alone = [generate_with(model, tokenizer, [p], max_new_tokens=12, chat=False, share_prefix=False)[0]
             for p in PROMPTS]
    TOKENS.reset()
    shared = generate_with(model, tokenizer, PROMPTS, max_new_tokens=12, chat=False, batch_size=4)
    counts = TOKENS.snapshot()
    assert shared == alone
    assert any(alone)  # the tiny model does generate something
    # the header ran once for the four prompts
    assert counts["computed_tokens"] < counts["sequence_tokens"] * 0.6, counts
    plain = generate_with(model, tokenizer, PROMPTS, max_new_tokens=12, chat=False, batch_size=4,
                          share_prefix=False)
    assert plain == alone


def test_stop_strings_cut_the_text():
    assert cut_at_stop("Paris\n\nQ: next", ["\n\n"]) == "Paris"
    assert cut_at_stop(" Lima. Q:", ["Q:", "."]) == "Lima"
    model, tokenizer = tiny_causal_lm("llama")
    full = generate_with(model, tokenizer, PROMPTS[:2], max_new_tokens=12, chat=False)
    stop = [t[len(t) // 2:][:2] for t in full if len(t) > 3][:1]
    if stop:
        cut = generate_with(model, tokenizer, PROMPTS[:2], max_new_tokens=12, chat=False, stop=stop)
        assert all(stop[0] not in t for t in cut)


def test_a_tiny_nucleus_samples_the_greedy_token_and_top_p_is_checked():
    """top_p keeps the smallest set of tokens reaching that probability: near 0 it is the argmax
    alone, so sampling at temperature 1 gives the greedy text; at 1.0 the samples differ from it."""
    model, tokenizer = tiny_causal_lm("llama")
    greedy = generate_with(model, tokenizer, PROMPTS, max_new_tokens=8, chat=False)
    nucleus = generate_with(model, tokenizer, PROMPTS, max_new_tokens=8, chat=False, temperature=1.0, seed=3,
                            top_p=1e-6)
    assert nucleus == greedy
    full = [generate_with(model, tokenizer, PROMPTS, max_new_tokens=8, chat=False, temperature=1.0, seed=s)
            for s in range(3)]
    assert any(f != greedy for f in full)
    with pytest.raises(ValueError, match="top_p must be in"):
        generate_with(model, tokenizer, PROMPTS, temperature=1.0, top_p=0.0)
