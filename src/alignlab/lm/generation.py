"""Batched text generation for causal LMs, cached per prompt.

    texts = generate("gemma3-270m", prompts, max_new_tokens=40)              # by model name, cached
    texts = generate_with(model, tokenizer, prompts, max_new_tokens=40)      # a loaded model, not cached

How. Prompts are sorted by length and cut into batches; each batch is LEFT-padded
(`alignlab.lm.batching.pad_batch`: every prompt ends at the last position and new tokens are
appended in step) and decoded with `model.generate`, greedily (`temperature=0`, the default:
reproducible) or by seeded sampling. At most `max_new_tokens` tokens are generated; a sequence
stops early at a `stop` string (the batch ends when all have stopped: few-shot answers are often
much shorter than the bound); the text is then cut at the first `stop` string (e.g. "\n\n" for
few-shot formats), and stripped.

Shared headers. Prompts with a common few-shot header (or a chat template's system turn) run it
once per batch: the header's key/value cache is computed once, repeated over the batch, each
prompt's own tokens but the last run on top of it (right-padded, so real tokens stay contiguous),
and the cache rows are then shifted into the left-padded layout `model.generate` continues from
(rotary and absolute positions are given by position ids, not by columns, so shifting a row does
not change it). The continuation equals generating without sharing (tests/test_generation.py);
`share_prefix=False` turns it off. Tokens run are counted in `alignlab.lm.prefix.TOKENS`.

Chat templates. When the tokenizer has a chat template (e.g. SmolLM2-Instruct) and `chat` is not
False, each prompt is sent as one user message with the assistant turn opened; a base model
without a template (e.g. Gemma-3-270M) receives the raw text, so few-shot plain-text prompts are
the right format for it. `chat=False` forces raw text.

Cache. With a model NAME, every (model, prompt, settings) is one entry of `alignlab.cache`
(kind "generation"): only prompts not cached yet are generated, so a re-run generates nothing,
prompts shared between calls (or seeds) are generated once, and an interrupted run keeps what
it finished (entries are written batch by batch).
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache

from alignlab.cache import Cache
from alignlab.lm.batching import pad_batch, pad_token_id, position_ids
from alignlab.lm.prefix import MIN_PREFIX, TOKENS, causal_pairs, common_prefix_length
from alignlab.models.load import load_causal_lm

GENERATION_VERSION = "1"


def has_chat_template(tokenizer) -> bool:
    """True when the tokenizer carries a chat template (instruction-tuned models; base models do not)."""
    return bool(getattr(tokenizer, "chat_template", None))


def apply_chat(tokenizer, prompt: str, chat: bool | None = None) -> str:
    """The prompt as the model should see it: wrapped in the chat template when the tokenizer has
    one and `chat` is not False (raw text otherwise)."""
    template = getattr(tokenizer, "chat_template", None)
    if chat is False or not template:
        if chat is True:
            raise ValueError("chat=True but the tokenizer has no chat template")
        return prompt
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)


def cut_at_stop(text: str, stop: list[str] | tuple[str, ...] | None) -> str:
    """`text` up to (not including) the earliest occurrence of any stop string, stripped."""
    end = len(text)
    for s in stop or ():
        at = text.find(s)
        if s and at != -1:
            end = min(end, at)
    return text[:end].strip()


def generate_with(model, tokenizer, prompts: list[str], max_new_tokens: int = 40, temperature: float = 0.0,
                  seed: int = 0, stop=None, chat: bool | None = None, batch_size: int = 16,
                  max_prompt_tokens: int = 1024, progress: bool = False, desc: str = "generating",
                  share_prefix: bool = True, top_p: float = 1.0) -> list[str]:
    """Generate a continuation for each prompt with a loaded (model, tokenizer); not cached.

    `temperature` 0 is greedy; above 0 samples, from the smallest set of tokens whose probability
    reaches `top_p` (nucleus sampling; 1.0: from the whole vocabulary)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0: greedy), got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1: no nucleus truncation), got {top_p}")
    prompts = [str(p) for p in prompts]
    if not prompts:
        return []
    texts = [apply_chat(tokenizer, p, chat) for p in prompts]
    has_template = bool(getattr(tokenizer, "chat_template", None)) and chat is not False
    # a chat template already contains its BOS token; a raw prompt gets the tokenizer's specials
    encoded = tokenizer(texts, add_special_tokens=not has_template)["input_ids"]
    encoded = [(ids or [tokenizer.eos_token_id])[-max_prompt_tokens:] for ids in encoded]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
    device = next(model.parameters()).device
    pad_id = pad_token_id(tokenizer)
    out = [""] * len(prompts)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for number, batch in enumerate(tqdm(batches, desc=desc, disable=not progress)):
        input_ids, mask = pad_batch(tokenizer, [encoded[i] for i in batch], side="left", device=device)
        prompt_tokens = [len(encoded[i]) for i in batch]
        TOKENS.add(sequence_tokens=sum(prompt_tokens), padded_tokens=mask.numel())
        kwargs = dict(do_sample=False)
        header = _shared_header([encoded[i] for i in batch]) if share_prefix else 0
        if header:
            kwargs["cache"] = _prefilled_cache(model, tokenizer, [encoded[i] for i in batch], header, device)
        else:
            TOKENS.add(computed_tokens=sum(prompt_tokens), attended_pairs=sum(map(causal_pairs, prompt_tokens)))
        if temperature > 0:
            torch.manual_seed(seed * 100_003 + number)
            kwargs.update(do_sample=True, temperature=temperature, top_k=0, top_p=float(top_p))
        with torch.inference_mode():
            generated = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                       pad_token_id=pad_id, eos_token_id=tokenizer.eos_token_id,
                                       stop_strings=list(stop) if stop else None, tokenizer=tokenizer, **kwargs)
        new = generated[:, input_ids.shape[1]:]
        for row, i in enumerate(batch):
            out[i] = cut_at_stop(tokenizer.decode(new[row], skip_special_tokens=True), stop)
    return out


def _shared_header(sequences: list[list[int]]) -> int:
    """Tokens every sequence of the batch starts with, leaving each at least one of its own (0 when
    fewer than MIN_PREFIX, or for a batch of one: nothing to share)."""
    if len(sequences) < 2:
        return 0
    n = min(min(common_prefix_length(sequences[0], s) for s in sequences[1:]), min(map(len, sequences)) - 1)
    return n if n >= MIN_PREFIX else 0


@torch.inference_mode()
def _prefilled_cache(model, tokenizer, sequences: list[list[int]], header: int, device) -> DynamicCache:
    """The key/value cache of every sequence but its last token, in the left-padded layout
    `model.generate` continues from, with the shared `header` run once (see the module doc)."""
    base = model.base_model
    cache = DynamicCache()  # no config: every layer keeps every position (see alignlab.lm.prefix)
    head = torch.tensor([sequences[0][:header]], device=device)
    base(input_ids=head, position_ids=torch.arange(header, device=device)[None], cache=cache, use_cache=True)
    cache.batch_repeat_interleave(len(sequences))
    rests = [s[header:-1] for s in sequences]
    lengths = [len(r) for r in rests]
    TOKENS.add(computed_tokens=header + sum(lengths) + len(sequences),
               attended_pairs=causal_pairs(header) + sum(causal_pairs(header + len(r) + 1, header) for r in rests))
    if max(lengths):
        ids, mask = pad_batch(tokenizer, [r or [pad_token_id(tokenizer)] for r in rests], side="right", device=device)
        mask[[i for i, n in enumerate(lengths) if n == 0]] = 0
        full_mask = torch.cat([torch.ones(len(rests), header, dtype=mask.dtype, device=device), mask], dim=1)
        base(input_ids=ids, attention_mask=full_mask, position_ids=header + position_ids(mask), cache=cache,
             use_cache=True)
    # row i holds [header, rest_i, pads]; generate wants [pads, header, rest_i]: shift each row right
    width = header + max(lengths)
    shift = torch.tensor([max(lengths) - n for n in lengths], device=device)
    columns = (torch.arange(width, device=device)[None] - shift[:, None]).clamp(min=0)  # pads read column 0
    rows = torch.arange(len(sequences), device=device)[:, None]
    layers = []
    for layer in cache.layers:
        keys, values = layer.keys[:, :, :width].transpose(1, 2), layer.values[:, :, :width].transpose(1, 2)
        layers.append((keys[rows, columns].transpose(1, 2), values[rows, columns].transpose(1, 2)))
    return DynamicCache(layers)


def generate(model_name: str, prompts: list[str], max_new_tokens: int = 40, temperature: float = 0.0,
             seed: int = 0, stop=None, chat: bool | None = None, batch_size: int = 16, progress: bool = False,
             desc: str = "generating", top_p: float = 1.0) -> list[str]:
    """`generate_with` for a model of the zoo, by name, with every prompt cached (see the module doc).

    The model is loaded only if some prompt is not cached yet."""
    prompts = [str(p) for p in prompts]
    settings = dict(max_new_tokens=int(max_new_tokens), temperature=float(temperature),
                    seed=int(seed) if temperature > 0 else 0, stop=list(stop or []),
                    chat=chat)
    if temperature > 0 and top_p < 1:  # keyed only when it truncates: entries sampled before top_p stay valid
        settings["top_p"] = float(top_p)
    cache = Cache()

    def lookup(prompt):
        hit, text = cache.lookup("generation", GENERATION_VERSION, model=model_name, prompt=prompt, **settings)
        return text if hit else None

    unique = list(dict.fromkeys(prompts))
    found = {p: lookup(p) for p in unique}
    todo = [p for p in unique if found[p] is None]
    if todo:
        model, tokenizer = load_causal_lm(model_name)
        # generate in chunks and store each chunk at once: an interrupted run keeps what it did
        todo = sorted(todo, key=len, reverse=True)
        chunk = batch_size * 4
        bar = tqdm(total=len(todo), desc=f"{desc} ({model_name})", disable=not progress)
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            texts = generate_with(model, tokenizer, part, max_new_tokens, temperature, seed, stop, chat, batch_size,
                                  top_p=top_p)
            for p, t in zip(part, texts):
                found[p] = cache.memo("generation", GENERATION_VERSION, lambda t=t: t, model=model_name, prompt=p,
                                      **settings)
            bar.update(len(part))
        bar.close()
    return [found[p] for p in prompts]

