"""Facts triples: (subject, relation, object) facts for LAMA-style factual probing.

Built from the same cleaned facts as `world_facts` (countryinfo + pycountry, periodictable),
so the two datasets never disagree. One natural-language template per relation, with
`[X]` for the subject and `[Y]` for the object, as in LAMA ("The capital of [X] is [Y].").
A probe fills in [X], then ranks every candidate object of the relation in place of [Y]
(see `relation_info()`); the right one should rank first.

Schema (one row per fact):

    subject        the country, territory or element (e.g. "France", "iron")
    relation       one of RELATIONS (e.g. "capital")
    object         the object to predict (e.g. "Paris")
    valid_objects  every object that is also true for this subject and relation (e.g. both
                   currencies of Bhutan), to filter them out of the ranking as LAMA does;
                   always contains `object`
    template       the relation's template, with [X] and [Y]
    query          the template with [X] filled in, the subject's article and capital letter
                   handled ("The capital of the Netherlands is [Y].")
    generator      GENERATOR_VERSION

Candidates are kept once per relation, not per row: `relation_info()[relation]["candidates"]`
is every object of that relation (across all splits), sorted.

Splits: train / validation / test (about 70 / 15 / 15) by hashing the subject, so one
subject's facts are all in the same split and a probe is tested on unseen subjects.
"""

from __future__ import annotations

import functools

import datasets

from alignlab.data.splits import to_datasets

from .world_facts import capitalize, countries, elements, in_sentence, is_are, source_versions, split_of

GENERATOR_VERSION = "facts-triples/1.0"
SPLITS = ("train", "validation", "test")
COLUMNS = ("subject", "relation", "object", "valid_objects", "template", "query", "generator")

TEMPLATES = {
    "capital": "The capital of [X] is [Y].",
    "region": "[X] is located in [Y].",                  # UN geoscheme region
    "subregion": "[X] is located in [Y].",               # UN geoscheme subregion
    "currency": "The official currency of [X] is the [Y].",
    "language": "The official language of [X] is [Y].",
    "element_symbol": "The chemical symbol of [X] is [Y].",
    "element_number": "The atomic number of [X] is [Y].",
    "element_period": "[X] is in period [Y] of the periodic table.",
    "element_group": "[X] is in group [Y] of the periodic table.",
}
RELATIONS = tuple(TEMPLATES)


def fill(template: str, subject: str, obj: str | None = None) -> str:
    """Put a subject (and optionally an object) into a template, e.g.
    fill("[X] is located in [Y].", "Netherlands", "Europe") -> "The Netherlands is located in Europe."
    """
    if template.startswith("[X] is ") and is_are(subject) == "are":
        template = "[X] are " + template[len("[X] is "):]  # "The Cook Islands are located in ..."
    text = template.replace("[X]", in_sentence(subject))
    if obj is not None:
        if obj.endswith("."):
            text = text.replace("[Y].", "[Y]")  # "... is Washington, D.C." (one full stop)
        text = text.replace("[Y]", obj)
    return capitalize(text)


def _facts():
    """(subject, relation, object, valid_objects) for every fact, countries then elements."""
    for c in countries():
        if c["capital"]:
            yield c["name"], "capital", c["capital"], [c["capital"]]
        if c["region"]:
            yield c["name"], "region", c["region"], [c["region"]]
            yield c["name"], "subregion", c["subregion"], [c["subregion"]]
        if c["currencies"] and c["ask_currency"]:
            yield c["name"], "currency", c["currencies"][0], c["currencies"]
        if c["languages"]:
            yield c["name"], "language", c["languages"][0], c["languages"]
    for e in elements():
        yield e["name"], "element_symbol", e["symbol"], [e["symbol"]]
        yield e["name"], "element_number", str(e["number"]), [str(e["number"])]
        yield e["name"], "element_period", str(e["period"]), [str(e["period"])]
        if e["group"]:
            yield e["name"], "element_group", str(e["group"]), [str(e["group"])]


@functools.lru_cache(maxsize=1)
def rows() -> dict[str, tuple[dict, ...]]:
    """All triples as plain dicts, per split (cached; see world_facts.rows for why rows)."""
    out: dict[str, list] = {s: [] for s in SPLITS}
    for subject, relation, obj, valid in _facts():
        template = TEMPLATES[relation]
        out[split_of(subject)].append(dict(
            subject=subject, relation=relation, object=obj, valid_objects=list(valid),
            template=template, query=fill(template, subject), generator=GENERATOR_VERSION))
    return {s: tuple(v) for s, v in out.items()}


@functools.lru_cache(maxsize=1)
def _relation_info() -> dict:
    candidates: dict[str, set] = {r: set() for r in RELATIONS}
    for split_rows in rows().values():
        for row in split_rows:
            candidates[row["relation"]].update(row["valid_objects"])

    def order(x):  # numbers in numeric order, words alphabetically
        return (0, int(x), "") if x.isdigit() else (1, 0, x.casefold())

    return {r: {"template": TEMPLATES[r], "candidates": sorted(candidates[r], key=order)}
            for r in RELATIONS}


def relation_info() -> dict[str, dict]:
    """{relation: {"template": "...[X]...[Y]...", "candidates": [every object of the relation]}}.
    A fresh copy each call, so callers may change it."""
    return {r: {"template": v["template"], "candidates": list(v["candidates"])}
            for r, v in _relation_info().items()}


def split_sizes() -> dict[str, int]:
    return {s: len(v) for s, v in rows().items()}


def build(split: str | None = None):
    """The facts-triples dataset: a DatasetDict (train/validation/test), or one split."""
    features = datasets.Features({
        c: datasets.Sequence(datasets.Value("string")) if c == "valid_objects" else datasets.Value("string")
        for c in COLUMNS})

    description = (f"{GENERATOR_VERSION}: LAMA-style (subject, relation, object) triples from "
                    f"{source_versions()} (see alignlab.data.facts_triples).")
    return to_datasets("facts-triples", rows(), features, description, split)
