"""The facts a probe is trained and tested on (study 03): subjects per relation, and candidate objects."""

from __future__ import annotations

import pandas as pd

from alignlab.data import facts_triples, lama
from alignlab.studies.probing.config import Config


def load_facts(config: Config):
    """(splits, info): splits = {"train": DataFrame, "test": DataFrame} restricted to
    `config.relations`, at most `n_train` / `n_test` subjects per relation (drawn with
    `data_seed`); info = {relation: {"template", "candidates"}} with candidates = every object of
    the relation.

    `max_candidates` > 0 caps a relation's candidate set (scoring cost grows with it: currency has
    151 objects): every gold object of the drawn test subjects stays, then the objects most
    frequent in the relation's full data fill the set up to the cap; training rows whose object is
    cut are dropped. The same set serves every method, so comparisons stay fair; the task gets
    easier than ranking all objects (fewer distractors), and entropies are divided by log of the
    smaller set."""
    if config.dataset == "facts-triples":
        info = facts_triples.relation_info()
        frames = {s: pd.DataFrame(list(facts_triples.rows()[s])) for s in ("train", "test")}
    else:  # lama-trex
        rows = lama.read_rows(config.lama_folder)
        info = lama.relation_info(rows)
        frames = {s: pd.DataFrame(rows[s]) for s in ("train", "test")}
    unknown = [r for r in config.relations if r not in info]
    if unknown:  # LAMA's relations are those of the files in its folder: known only once read
        raise ValueError(f"unknown relation(s) {unknown}; known relations: {', '.join(info)}")
    out = {}
    for split, cap in (("train", config.n_train), ("test", config.n_test)):
        frame, parts = frames[split], []
        for relation in config.relations:
            part = frame[frame["relation"] == relation]
            if len(part) > cap:
                part = part.sample(n=cap, random_state=config.data_seed)
            parts.append(part)
        out[split] = pd.concat(parts, ignore_index=True)
    info = {r: info[r] for r in config.relations}
    if config.max_candidates:
        info, out = cap_candidates(info, out, frames, config.max_candidates)
    return out, info


def cap_candidates(info: dict, splits: dict, full: dict, max_candidates: int):
    """(info, splits) with each relation's candidates cut to `max_candidates`: the test golds first,
    then the most frequent objects of the relation in `full` (all rows), in candidate order on ties."""
    capped = {}
    for relation, spec in info.items():
        keep = set(splits["test"].loc[splits["test"]["relation"] == relation, "object"])  # every test gold
        counts = pd.concat([f[f["relation"] == relation] for f in full.values()])["object"].value_counts()
        for c in sorted(spec["candidates"], key=lambda c: -counts.get(c, 0)):
            if len(keep) >= max_candidates:
                break
            keep.add(c)
        capped[relation] = {**spec, "candidates": [c for c in spec["candidates"] if c in keep]}
    train = splits["train"]
    kept = {relation: set(spec["candidates"]) for relation, spec in capped.items()}
    allowed = [obj in kept[relation] for relation, obj in zip(train["relation"], train["object"])]
    return capped, {**splits, "train": train[allowed].reset_index(drop=True)}


def relation_rows(frame, relation: str) -> list[dict]:
    """The rows of one relation in a split, as plain dicts."""
    return [dict(r) for r in frame[frame["relation"] == relation].to_dict("records")]
