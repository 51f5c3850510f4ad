"""The `generate` method of study 04: the model writes its answer, and the answer is parsed.

Each item is asked under every template in both option orders (`prompts.build_prompts(...,
"generate")`), `n_samples` times (greedy when the temperature is 0, then one sample). Chat models
get the listing as a user turn (the assistant turn opened by their chat template); base models get
it as plain text followed by "Answer:". At most `max_new_tokens` are generated (no stop string:
a chat answer may begin with a newline).

`parse_answer` reads the chosen position from the text: a label at the start of the answer
("2", "Option 2", "B.", "(b)", "Answer: B"), else exactly one label named as an option or answer
anywhere ("I would choose option (b)"), else the text of exactly one of the two options.
Anything else is unparseable; it casts no vote and is counted (`unparseable` in the tables).
Generations are cached per prompt by `alignlab.lm.generation.generate`, so an interrupted run
keeps what it generated.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from alignlab.lm.generation import generate
from alignlab.models.load import load_tokenizer
from alignlab.studies.culture.prompts import (
    ITEM_COLUMNS,
    build_prompts,
    has_chat_template,
    item_records,
    options_in_order,
)

ANSWER_CUE = "\nAnswer:"  # after the listing, for base models (no chat template)
_NAMED = r"\b(?:option|answer|choice)\s*(?:is\s*)?[:(\[]?\s*"  # "option (b)", "answer is 2", "choice: A"
_LEAD = re.compile(r"^\W*(?:(?:the\s+)?(?:answer|my choice|choice)\s*(?:is)?\s*[:\-]?\s*)?(?:option\s*)?[(\[*\s]*",
                   re.IGNORECASE)


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


def parse_answer(text: str, labels, options) -> float:
    """0.0 if `text` picks the first-listed option, 1.0 the second, NaN if it cannot be read.

    `labels`: the two labels as listed ("1"/"2", "A"/"B", "a"/"b"); `options`: the two option texts
    in the listed order. A digit label may be followed by anything but a digit; a letter label
    must stand alone (end, or followed by ")", ".", ":", ",", "]"), so the article "a" in
    "a good idea" is not read as a label."""
    head = _LEAD.sub("", str(text).strip(), count=1)
    for position, label in enumerate(labels):
        label = label.strip()
        follow = r"(?!\d)" if label.isdigit() else r"(?=$|[).:,\]]|\s*$)"
        if re.match(re.escape(label) + follow, head, flags=re.IGNORECASE if label.isdigit() else 0):
            return float(position)
    named = {position for position, label in enumerate(labels)
             if re.search(_NAMED + re.escape(label.strip()) + r"(?![A-Za-z0-9])", str(text),
                          flags=re.IGNORECASE if label.strip().isdigit() else 0)}
    if len(named) == 1:
        return float(named.pop())
    said = _words(text)
    hits = [position for position, option in enumerate(options) if said and _words(option)[:30] in said]
    return float(hits[0]) if len(hits) == 1 else float("nan")


def generation_texts(prompts, chat: bool) -> list[str]:
    """The text sent to `generate` for each prompt row: the listing (chat models; `generate`
    wraps it in the chat template) or the listing and ANSWER_CUE (base models)."""
    return [c if chat else c + ANSWER_CUE for c in prompts["context"]]


def answers_from_texts(prompts, texts, items) -> pd.DataFrame:
    """The prompt rows with the generated `text`, `chose_first` (1/0/NaN), `chose_high` and
    `parsed`. `items`: the items by id, for the option texts."""
    by_id = {r["id"]: r for r in item_records(items)}
    chose_second = np.array([parse_answer(t, (a, b), options_in_order(by_id[i], o))
                             for t, a, b, i, o in zip(texts, prompts["first"], prompts["second"], prompts["id"],
                                                      prompts["order"])])
    chose_first = 1.0 - chose_second
    swapped = (prompts["order"] == "swapped").to_numpy()
    return prompts.drop(columns=["context"]).assign(
        text=list(texts), chose_first=chose_first, chose_high=np.where(swapped, 1.0 - chose_first, chose_first),
        parsed=~np.isnan(chose_first))


def generate_answers(name: str, items, templates, n_samples: int = 1, temperature: float = 0.0,
                     max_new_tokens: int = 8, batch_size: int = 16, progress: bool = False) -> pd.DataFrame:
    """One row per item x template x order x sample for model `name`, with model and method
    columns (see `answers_from_texts`); sample k is generated with seed k."""
    items = pd.DataFrame(item_records(items))[ITEM_COLUMNS]
    chat = has_chat_template(load_tokenizer(name))
    prompts = build_prompts(items, "generate", templates)
    texts = generation_texts(prompts, chat)
    tables = []
    for sample in range(n_samples):
        out = generate(name, texts, max_new_tokens=max_new_tokens, temperature=temperature, seed=sample,
                       batch_size=batch_size, progress=progress, desc="answering")
        tables.append(answers_from_texts(prompts, out, items).assign(sample=sample))
    return pd.concat(tables, ignore_index=True).assign(model=name, method="generate")
