"""Tiny randomly initialised models for tests: built from a config in milliseconds, no files.

    model, tokenizer = tiny_causal_lm("llama")      # or "gemma3", "gpt2"
    encoder, tokenizer = tiny_encoder()             # a 2-layer BERT

The tokenizer is a byte-level BPE trained in memory on a few sentences, with BOS/EOS/PAD and an
optional [MASK] token, so it behaves like a real Hugging Face fast tokenizer (batching, padding,
special tokens) without any download.
"""

from __future__ import annotations

import functools

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForCausalLM,
    BertConfig,
    BertForMaskedLM,
    Gemma3TextConfig,
    GPT2Config,
    LlamaConfig,
    PreTrainedTokenizerFast,
)

_CORPUS = [
    "The capital of France is Paris.",
    "Q: What is the capital of Peru? A: Lima",
    "Oxygen has the chemical symbol O and atomic number 8.",
    "Debaters argue for opposite answers; a judge decides which is correct.",
    "The weak teacher labels data and the strong student learns from those labels.",
    "Option 1: I prefer to work alone. Option 2: I prefer to work in a team.",
]


@functools.lru_cache(maxsize=2)
def tiny_tokenizer(bos: bool = True):
    special = ["<pad>", "<bos>", "<eos>", "<unk>", "[MASK]"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    if bos:
        bos_id = tok.token_to_id("<bos>")
        tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B",
                                                           special_tokens=[("<bos>", bos_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>", mask_token="[MASK]")


def tiny_causal_lm(arch: str = "llama", seed: int = 0, bos: bool = True):
    """(model, tokenizer): a 2-layer random causal LM of the named architecture, in eval mode."""
    tokenizer = tiny_tokenizer(bos)
    vocab = len(tokenizer)
    common = dict(vocab_size=vocab, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id)
    if arch == "llama":
        config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, max_position_embeddings=256, **common)
    elif arch == "gemma3":
        config = Gemma3TextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  num_key_value_heads=2, head_dim=8, max_position_embeddings=256, sliding_window=8,
                                  **common)
    elif arch == "gpt2":
        config = GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=256, **common)
    else:
        raise ValueError(f"unknown tiny architecture '{arch}': use llama, gemma3 or gpt2")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    return model.eval(), tokenizer


def tiny_encoder(seed: int = 0):
    """(model, tokenizer): a 2-layer random BERT with an MLM head, in eval mode."""
    tokenizer = tiny_tokenizer(bos=False)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    return BertForMaskedLM(config).eval(), tokenizer
