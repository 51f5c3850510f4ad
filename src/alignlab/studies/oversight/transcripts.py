"""Transcripts: one JSON-able record per question (its item, every generated text with its quotes
checked, every judge prompt with its probability), written as JSONL, and quote statistics."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from alignlab.studies.oversight.config import Config
from alignlab.studies.oversight.prompts import SIDES
from alignlab.studies.oversight.quotes import mark_quotes


def transcript_records(items, generated, requests, probs, config: Config) -> list[dict]:
    """One record per question: the item, the run's parameters, every generated text with its
    quotes checked, every judge prompt with its probability, and P(correct) per protocol."""
    by_item = {}
    for r in requests:
        by_item.setdefault(r["item"], []).append({k: r[k] for k in ("protocol", "variant", "round", "position",
                                                                    "order", "prompt", "p_correct")})
    records = []
    for i, it in enumerate(items):
        rec = {"item": i, **it, "config": asdict(config)}
        if generated["background"][i]:
            rec["background"] = generated["background"][i]
        if generated["consultant"]:
            rec["consultant"] = {s: {"text": generated["consultant"][s][i],
                                     "quotes": mark_quotes(generated["consultant"][s][i], it["support"])[1]}
                                 for s in SIDES}
        if generated["debates"]:
            rec["debates"] = {f"{first} first": [{**t, "quotes": mark_quotes(t["text"], it["support"])[1]}
                                                 for t in debates[i]]
                              for first, debates in generated["debates"].items()}
        rec["judgements"] = by_item.get(i, [])
        rec["p_correct"] = {f"{k[0]}{'/' + k[1] if k[1] else ''}{'/round ' + str(k[2]) if k[2] else ''}": float(v[i])
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


def quote_stats(records) -> dict:
    """How many debater quotes there are and how many were verified against the passage."""
    quotes = [q for rec in records for turns in rec.get("debates", {}).values() for t in turns for q in t["quotes"]]
    n = len(quotes)
    return {"quotes": n, "verified": sum(q["verified"] for q in quotes),
            "verified_fraction": (sum(q["verified"] for q in quotes) / n) if n else float("nan")}
