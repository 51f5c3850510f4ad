"""The items of study 04 and the prompts built from them.

Each item is a question with two answers, Option 1 at the high pole of a Hofstede dimension
(alignlab.data.cultural.POLES) and Option 2 at the low pole. `items_summary` validates the items
that were loaded (the authored bank or CDEval, whichever the run uses). `build_prompts` turns
items into one row per prompt:

- `loglik`    the question as context, the two options as continuations;
- `choice`    a prompt that lists both options under labels ("Option 1/2", "A/B", "(a)/(b)";
              `config.TEMPLATES`), the two labels as continuations. Every item is asked in both
              orders (`original`: Option 1 listed first; `swapped`: Option 2 first);
- `generate`  the same listing without the answer prefix: the model writes its answer, which
              `generated.parse_answer` reads back. Both orders, as for `choice`.

Chat models (a tokenizer with a chat template, e.g. smollm2-135m) get the prompt as a user turn
and the answer as the start of the assistant turn; base models (gemma3-270m) get plain text.
"""

from __future__ import annotations

import pandas as pd

from alignlab.data import load
from alignlab.data.cultural import sample_per_cell, validate_items, validation_summary
from alignlab.lm.generation import has_chat_template
from alignlab.studies.culture.config import METHODS, TEMPLATES

ORDERS = ("original", "swapped")  # original: Option 1 (high pole) listed first
ITEM_COLUMNS = ["id", "Dimension", "Domain", "Question", "Option 1", "Option 2"]
PROMPT_COLUMNS = ["id", "Dimension", "Domain", "template", "order", "context", "first", "second"]
MIN_ITEMS = 3  # the fewest items a cell or dimension needs for an interval to be drawn


def items_summary(items) -> str:
    """The validation report of the items a run loaded (coverage of the 42 cells, option-length
    balance, duplicates), as text; a cell below MIN_ITEMS is reported, since it gets no interval."""
    rows = item_records(items)
    return validation_summary(validate_items(rows, min_per_cell=MIN_ITEMS))


def load_items(dataset: str, n_per_cell: int, seed: int, path=None) -> pd.DataFrame:
    """The items as a DataFrame (id, Dimension, Domain, Question, Option 1, Option 2, source):
    at most `n_per_cell` per Dimension x Domain cell, drawn with `seed`. `path`: a local copy
    of the dataset (for cdeval: CDEval.json or its folder), absolute or relative to the
    current directory; None loads the default source. A `path` is read only for cdeval: given
    with another dataset it is an error, never silently ignored."""
    if path is not None and dataset != "cdeval":
        raise ValueError(f"a local path ({path}) is read only with dataset 'cdeval', not {dataset!r}")
    kwargs = {"path": path} if path is not None else {}
    ds = load(dataset, split="test", **kwargs)
    return sample_per_cell(ds, n_per_cell, seed).to_pandas()


def item_records(items) -> list[dict]:
    """Items as a list of dicts, from a DataFrame, a `datasets.Dataset` or an iterable of dicts."""
    if hasattr(items, "to_dict") and hasattr(items, "columns"):  # DataFrame
        return items.to_dict("records")
    if hasattr(items, "to_list"):  # datasets.Dataset
        return items.to_list()
    return list(items)


def as_chat(tokenizer, user: str, prefix: str = "") -> str:
    """`user` as a user turn and `prefix` as the start of the assistant's answer, with the
    tokenizer's chat template; without a leading BOS (scoring adds the special tokens)."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                         add_generation_prompt=True)
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos):
        text = text[len(bos):]
    return text + prefix


def build_prompts(items, method: str, templates=(), tokenizer=None) -> pd.DataFrame:
    """One row per prompt to score: id, Dimension, Domain, template, order, context, and the two
    continuations `first` / `second` (the options for `loglik`, the labels for `choice`).
    `first` is always the one listed first, so for order `original` it stands for Option 1."""
    if method not in METHODS:
        raise ValueError(f"method must be one of: {', '.join(METHODS)}; got {method!r}")
    chat = tokenizer is not None and has_chat_template(tokenizer)
    rows = []
    for item in item_records(items):
        base = {"id": item["id"], "Dimension": item["Dimension"], "Domain": item["Domain"]}
        if method == "generate":
            rows += [{**base, "template": name, "order": order, "context": listing(item, name, order),
                      "first": TEMPLATES[name][2][0].strip(), "second": TEMPLATES[name][2][1].strip()}
                     for name in _known(templates) for order in ORDERS]
            continue
        if method == "loglik":
            if chat:
                context, first, second = as_chat(tokenizer, item["Question"]), item["Option 1"], item["Option 2"]
            else:
                context = f"Question: {item['Question']}\nAnswer:"
                first, second = " " + item["Option 1"], " " + item["Option 2"]
            rows.append({**base, "template": "loglik", "order": "original", "context": context,
                         "first": first, "second": second})
            continue
        for name in _known(templates):
            _, prefix, labels = TEMPLATES[name]
            for order in ORDERS:
                body = listing(item, name, order)
                context = as_chat(tokenizer, body, prefix) if chat else body + "\n" + prefix
                rows.append({**base, "template": name, "order": order, "context": context,
                             "first": labels[0], "second": labels[1]})
    return pd.DataFrame(rows, columns=PROMPT_COLUMNS)


def _known(templates) -> list:
    bad = [t for t in templates if t not in TEMPLATES]
    if bad:
        raise ValueError(f"unknown template(s) {bad}; known: {', '.join(TEMPLATES)}")
    return list(templates)


def options_in_order(item, order: str) -> tuple[str, str]:
    """(first-listed, second-listed) option texts of an item in `order`."""
    return (item["Option 1"], item["Option 2"]) if order == "original" else (item["Option 2"], item["Option 1"])


def listing(item, template: str, order: str) -> str:
    """The user message of `template`: the question and both options in `order`."""
    first, second = options_in_order(item, order)
    return TEMPLATES[template][0].format(question=item["Question"], first=first, second=second)
