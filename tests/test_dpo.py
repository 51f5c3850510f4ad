"""The DPO loss by hand, and DPO fine-tuning of a tiny causal LM."""

import math

import pytest
import torch

from alignlab.testing import tiny_causal_lm
from alignlab.training import causal, dpo


def test_dpo_loss_is_the_formula_and_log2_when_policy_is_reference():
    w, lw, rw, rl = torch.tensor([-3.0, -1.0]), torch.tensor([-2.0, -4.0]), torch.tensor([-3.5, -2.0]), \
        torch.tensor([-2.5, -3.0])
    beta = 0.3
    expected = sum(-math.log(1 / (1 + math.exp(-beta * ((a - c) - (b - d)))))
                   for a, b, c, d in zip(w.tolist(), lw.tolist(), rw.tolist(), rl.tolist())) / 2
    assert dpo.dpo_loss(w, lw, rw, rl, beta).item() == pytest.approx(expected, rel=1e-6)
    assert dpo.dpo_loss(w, lw, w, lw, beta).item() == pytest.approx(math.log(2), rel=1e-6)


def test_sequence_logps_match_the_continuation_nll():
    model, tokenizer = tiny_causal_lm("llama")
    encoded = causal.encode_pairs(tokenizer, ["The capital of France is", "Oxygen"], ["Paris.", "has the symbol O"])
    with torch.no_grad():
        logps = dpo.sequence_logps(model, tokenizer, encoded)
        nll = causal.continuation_nll(model, tokenizer, encoded)
    assert (-logps.sum() / sum(n for _, n in encoded)).item() == pytest.approx(nll.item(), rel=1e-5)


def test_dpo_from_an_sft_adapter_starts_at_log2_and_lowers_the_loss_on_one_pair():
    model, tokenizer = tiny_causal_lm("llama")
    prompt, chosen, rejected = ["assert f(1) =="], ["2"], ["3"]
    sft, _ = causal.finetune_causal_lm(model, tokenizer, prompt, chosen,
                                       causal.CausalFitConfig(epochs=1, lr=1e-3, batch_size=1, lora_r=4, seed=0))
    good, bad = causal.encode_pairs(tokenizer, prompt, chosen), causal.encode_pairs(tokenizer, prompt, rejected)
    with torch.no_grad():
        margin_before = (dpo.sequence_logps(sft, tokenizer, good) - dpo.sequence_logps(sft, tokenizer, bad)).item()
    settings = dpo.DPOFitConfig(epochs=8, lr=1e-2, beta=0.5, batch_size=1, seed=0)
    trained, history = dpo.finetune_dpo(sft, tokenizer, prompt, chosen, rejected, settings)
    assert history[0] == pytest.approx(math.log(2), abs=0.02)  # the first step: policy == reference
    assert history[-1] < history[0] - 0.05
    with torch.no_grad():
        margin_after = (dpo.sequence_logps(trained, tokenizer, good)
                        - dpo.sequence_logps(trained, tokenizer, bad)).item()
    assert margin_after > margin_before
    with pytest.raises(ValueError, match="as many"):
        dpo.finetune_dpo(trained, tokenizer, prompt, chosen, [], settings)
    with pytest.raises(ValueError, match="no trainable"):
        dpo.finetune_dpo(tiny_causal_lm("llama")[0].requires_grad_(False), tokenizer, prompt, chosen, rejected,
                         settings)


def test_code_targets_keep_their_indentation():
    """strip=False trains on the continuation exactly as given: a function body's leading spaces
    are target tokens (the default strips them and joins with one space, for text)."""
    _, tokenizer = tiny_causal_lm("llama")
    body = "    return a + b\n"
    [(as_given, n_given)] = causal.encode_pairs(tokenizer, ["def add(a, b):\n"], [body], strip=False)
    [(stripped, n_stripped)] = causal.encode_pairs(tokenizer, ["def add(a, b):\n"], [body])
    assert tokenizer.decode(as_given[-n_given:]) == body
    assert tokenizer.decode(stripped[-n_stripped:]) == " return a + b"
