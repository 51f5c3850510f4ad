"""Transcripts: one JSON-able record per question (its item, every generated text per information
setting with its quotes checked, every judge prompt with its probability), written as JSONL, and
quote statistics per setting, role and side."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from alignlab.studies.oversight.config import Config
from alignlab.studies.oversight.prompts import SIDES
from alignlab.studies.oversight.quotes import mark_quotes


def transcript_records(items, generated, requests, probs, config: Config) -> list[dict]:
    """One record per question: the item, the run's parameters, per information setting every
    generated text with its quotes checked (closed-book: unchecked, "verified" None), every judge
    prompt with its probability, and P(correct) per setting and protocol."""
    by_item = {}
    for r in requests:
        by_item.setdefault(r["item"], []).append({k: r[k] for k in ("info", "protocol", "variant", "round", "position",
                                                                    "order", "prompt", "p_correct")})
    records = []
    for i, it in enumerate(items):
        rec = {"item": i, **it, "config": asdict(config), "settings": {}}
        for info, gen in generated.items():
            passage = it["support"] if info == "passage" else None
            out = {}
            if gen["background"][i]:
                out["background"] = gen["background"][i]
            if gen["consultant"]:
                out["consultant"] = {s: {"text": gen["consultant"][s][i],
                                         "quotes": mark_quotes(gen["consultant"][s][i], passage,
                                                               config.min_quote_words)[1]}
                                     for s in SIDES}
            if gen["debates"]:
                out["debates"] = {f"{first} first": [{**t, "quotes": mark_quotes(t["text"], passage,
                                                                                 config.min_quote_words)[1]}
                                                     for t in debates[i]]
                                  for first, debates in gen["debates"].items()}
            rec["settings"][info] = out
        rec["judgements"] = by_item.get(i, [])
        rec["p_correct"] = {"/".join(str(part) for part in k if part not in ("", 0)): float(v[i])
                            for k, v in probs.items()}
        records.append(rec)
    return records


def write_transcripts(records: list[dict], path) -> None:
    """JSONL, one question per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def quote_stats(records) -> pd.DataFrame:
    """Per information setting, role (consultant, debater) and side: how many turns, how many
    quotes, how many verified against the passage and the verified share (NaN in closed-book,
    where nothing is checked, and where there is no quote)."""
    rows = {}
    for rec in records:
        for info, out in rec.get("settings", {}).items():
            turns = [("consultant", s, c) for s, c in out.get("consultant", {}).items()]
            turns += [("debater", t["side"], t) for ts in out.get("debates", {}).values() for t in ts]
            for role, side, turn in turns:
                row = rows.setdefault((info, role, side), {"turns": 0, "quotes": 0, "verified": 0})
                row["turns"] += 1
                row["quotes"] += len(turn["quotes"])
                row["verified"] += sum(bool(q["verified"]) for q in turn["quotes"])
    out = pd.DataFrame([{"info": k[0], "role": k[1], "side": k[2], **v} for k, v in rows.items()],
                       columns=["info", "role", "side", "turns", "quotes", "verified"])
    checked = (out["info"] == "passage") & (out["quotes"] > 0)
    out["verified share"] = (out["verified"] / out["quotes"].where(checked)).astype(float)
    return out
