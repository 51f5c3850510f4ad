"""The facts a probe is trained and tested on (study 03): subjects per relation, and candidate objects."""

from __future__ import annotations

import pandas as pd

from alignlab.data import facts_triples, lama
from alignlab.studies.probing.config import TUNED, Config

SPLITS = ("train", "validation", "test")


def load_facts(config: Config):
    """(splits, info): splits = {"train", "validation", "test": DataFrame} restricted to
    `config.relations`, at most `n_train` / `n_validation` / `n_test` subjects per relation (drawn
    with `data_seed`); info = {relation: {"template", "candidates", "objects"}}: `objects` = every
    object of the relation (what training may rank), `candidates` = what evaluation ranks.

    `max_candidates` > 0 caps a relation's candidates (scoring cost grows with it: currency has
    151 objects) to its objects most frequent in the drawn train + validation rows, then in the
    relation's full data, in candidate order on ties. Test objects play no part in the choice, so
    the cap leaks nothing of the test set; test rows whose gold is cut stay, and count as misses
    (`candidate_coverage` says how many). Training rows are all kept: training ranks objects
    sampled from `objects`. The same set serves every method, so comparisons stay fair."""
    if config.dataset == "facts-triples":
        info = facts_triples.relation_info()
        frames = {s: pd.DataFrame(list(facts_triples.rows()[s])) for s in SPLITS}
    else:  # lama-trex
        rows = lama.read_rows(config.lama_folder)
        info = lama.relation_info(rows)
        frames = {s: pd.DataFrame(rows[s], columns=list(lama.COLUMNS)) for s in SPLITS}
    unknown = [r for r in config.relations if r not in info]
    if unknown:  # LAMA's relations are those of the files in its folder: known only once read
        raise ValueError(f"unknown relation(s) {unknown}; known relations: {', '.join(info)}")
    out = {}
    for split, cap in (("train", config.n_train), ("validation", config.n_validation), ("test", config.n_test)):
        frame, parts = frames[split], []
        for relation in config.relations:
            part = frame[frame["relation"] == relation]
            if len(part) > cap:
                part = part.sample(n=cap, random_state=config.data_seed)
            parts.append(part)
        out[split] = pd.concat(parts, ignore_index=True)
    if config.dataset == "lama-trex" and any(m in TUNED for m in config.methods):
        untrained = [r for r in config.relations if not (out["train"]["relation"] == r).any()]
        if untrained:
            raise ValueError(f"no training facts for LAMA relation(s) {untrained}: tuned methods need "
                             f"<folder>/<one of {', '.join(lama.TRAIN_FOLDERS)}>/<relation>/train.jsonl "
                             "(AutoPrompt's / OptiPrompt's data); or run only the manual method")
    info = {r: {**info[r], "objects": list(info[r]["candidates"])} for r in config.relations}
    if config.max_candidates:
        info = cap_candidates(info, out, frames, config.max_candidates)
    return out, info


def cap_candidates(info: dict, splits: dict, full: dict, max_candidates: int) -> dict:
    """`info` with each relation's candidates cut to `max_candidates`: the objects most frequent in
    the drawn train + validation rows of `splits`, then in the train + validation rows of `full`,
    in candidate order on ties. No test row is read."""
    def counts(frames, relation):
        parts = [f[f["relation"] == relation] for name, f in frames.items() if name != "test"]
        return pd.concat(parts)["object"].value_counts()

    capped = {}
    for relation, spec in info.items():
        drawn, everywhere = counts(splits, relation), counts(full, relation)
        order = sorted(spec["candidates"], key=lambda c: (-drawn.get(c, 0), -everywhere.get(c, 0)))
        keep = set(order[:max_candidates])
        capped[relation] = {**spec, "candidates": [c for c in spec["candidates"] if c in keep]}
    return capped


def candidate_coverage(info: dict, test) -> pd.DataFrame:
    """Per relation: test rows, how many have their gold among the candidates, and the share."""
    records = []
    for relation, spec in info.items():
        objects = test.loc[test["relation"] == relation, "object"]
        covered = int(objects.isin(set(spec["candidates"])).sum())
        records.append({"relation": relation, "test_rows": len(objects), "covered": covered,
                        "coverage": covered / len(objects) if len(objects) else float("nan")})
    return pd.DataFrame(records).set_index("relation")


def relation_rows(frame, relation: str) -> list[dict]:
    """The rows of one relation in a split, as plain dicts."""
    return [dict(r) for r in frame[frame["relation"] == relation].to_dict("records")]
