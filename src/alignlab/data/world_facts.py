"""World facts: a SciQ-shaped multiple-choice dataset generated from packaged facts.

Every question is generated deterministically (no network, no randomness that depends on
the machine) from two registry packages:

- countries and territories from `countryinfo` (MIT), with currency and language names
  looked up from their ISO 4217 / ISO 639 codes in `pycountry` (LGPL-2.1);
- chemical elements from `periodictable` (public domain): name, symbol, atomic number.
  Period and group are derived from the atomic number (exact for the standard 18-column
  table; the lanthanides and actinides get no group question, as their group is disputed).

Schema (one row per question; all columns are strings):

    question        the question text
    correct_answer  the right answer
    distractor1..3  three wrong answers of the same type as the answer (a capital's
                    distractors are other capitals), never equal to the answer and never
                    another right answer (e.g. a second currency of the same country)
    support         2-3 template sentences stating the facts needed to answer
    kind            the fact type, one of KINDS
    subject         the country, territory or element the question is about
    generator       GENERATOR_VERSION, so results can name the data they came from

Splits: train / validation / test (about 70 / 15 / 15 of the subjects), chosen by hashing the
subject, so every question about one country or element is in one split (as in facts-triples,
which puts each subject in the same split). A fact asked two ways (the capital of X, and X as the
answer to "... is the capital of which country?"; an element's symbol and the element of a symbol)
therefore never has one question in train and its reverse in test, and a probe or an in-context
retriever is tested on subjects it has not seen. Adding a country never moves another subject.
Version 1.0 hashed the question text instead, which leaked reverse questions across splits.

Regions and subregions follow the United Nations geoscheme (M49) as stored by
`countryinfo`; the questions say so, because M49 places e.g. Cyprus in Western Asia.
The M49 region "Americas" is written "the Americas", so that it reads well in a sentence.
The source data is from about 2015 in places: the corrections applied to it are listed
below (RENAMES, CAPITAL_FIXES, CURRENCY_FIXES, ...) with the reason for each.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections import defaultdict
from importlib.metadata import PackageNotFoundError, version

import datasets
import periodictable
import pycountry
from countryinfo import CountryInfo

from alignlab.data.splits import to_datasets

GENERATOR_VERSION = "world-facts/2.0"  # 2.0: split by subject (1.0: by question)
SPLITS = ("train", "validation", "test")
COLUMNS = ("question", "correct_answer", "distractor1", "distractor2", "distractor3",
           "support", "kind", "subject", "generator")
KINDS = ("capital", "capital_of", "region", "subregion", "currency", "language", "border",
         "element_symbol", "element_name", "element_number", "element_period", "element_group")

# -----------------------------------------------------------------------------
# Corrections to countryinfo 1.0.1 (keys are ISO 3166-1 alpha-3 codes)

# remote or uninhabited territories whose M49 region reads as wrong to most people
# (Bouvet Island in "South America", the British Indian Ocean Territory in "Africa", ...)
EXCLUDED = {"ATA", "BVT", "HMD", "SGS", "ATF", "UMI", "IOT",
            "ESH"}  # Western Sahara: disputed; countryinfo's capital and language are doubtful

RENAMES = {
    "SWZ": "Eswatini",                 # renamed in 2018 (was Swaziland)
    "MKD": "North Macedonia",          # renamed in 2019 (was Republic of Macedonia)
    "VAT": "Vatican City",             # countryinfo: "Vatican City State"
    "MAF": "Saint Martin",             # countryinfo: "Saint Martin (French part)"
    "SXM": "Sint Maarten",             # countryinfo: "Sint Maarten (Dutch part)"
    "VGB": "British Virgin Islands",   # countryinfo: "Virgin Islands, British"
    "VIR": "United States Virgin Islands",
}

CAPITAL_FIXES = {
    "KAZ": "Astana",    # renamed back from Nur-Sultan in 2022
    "BDI": "Gitega",    # political capital since 2019 (Bujumbura before)
    "PYF": "Papeete",   # countryinfo spells it "Papeetē"
    "VAT": "Vatican City",  # countryinfo stores a list
    "USA": "Washington, D.C.",
}

# no single agreed capital, or a contested one: no capital questions for these
NO_CAPITAL = {
    "ISR", "PSE",  # Jerusalem / Ramallah: contested internationally
    "BOL",         # Sucre (constitutional) vs La Paz (seat of government)
    "LKA",         # Sri Jayawardenepura Kotte (official) vs Colombo (executive)
    "SWZ",         # Mbabane (administrative) vs Lobamba (legislative, stored here)
    "NRU",         # no official capital (Yaren is the seat of government)
    "HKG", "MAC",  # not countries; countryinfo's "City of Victoria" is no official capital
    "BES",         # three islands, stored as "Kralendijk / Oranjestad / The Bottom"
    "MSR",         # Plymouth, abandoned in 1997 (volcano); Brades is the de facto capital
    "TKL",         # no capital; the administrative centre rotates between atolls
    "GNQ",         # moving from Malabo to Ciudad de la Paz
    "IDN",         # moving from Jakarta to Nusantara (law of 2022, awaiting the decree)
}

# ISO 4217 codes that are withdrawn or not a circulating currency: replacement, or None to drop
CURRENCY_FIXES = {
    "BGN": "EUR",  # Bulgaria joined the euro on 1 January 2026
    "HRK": "EUR",  # Croatia joined the euro on 1 January 2023
    "BYR": "BYN",  # Belarus redenominated in 2016
    "MRO": "MRU",  # Mauritania redenominated in 2018
    "STD": "STN",  # Sao Tome and Principe redenominated in 2018
    "SLL": "SLE",  # Sierra Leone redenominated in 2022
    "VEF": "VES",  # Venezuela redenominated in 2018
    "ZMK": "ZMW",  # Zambia redenominated in 2013
    "CUC": None,   # Cuba's convertible peso, withdrawn in 2021
    "SVC": None,   # El Salvador's colon, replaced by the US dollar in 2001
    # fund codes and accounting units, not currencies people pay with
    "BOV": None, "CHE": None, "CHW": None, "CLF": None, "COU": None, "MXV": None,
    "USN": None, "USS": None, "UYI": None, "UYW": None, "XDR": None,
}

# also legal tender there, though not listed by countryinfo: never offered as a wrong answer
EXTRA_CURRENCIES = {"SWZ": ["ZAR"], "LBR": ["USD"], "BRN": ["SGD"], "SGP": ["BND"]}

# several legal currencies or a recent change without settled data: no currency question
NO_CURRENCY = {"ZWE"}  # US dollar, ZiG (2024) and others

# language codes that countryinfo gets wrong
LANGUAGE_OVERRIDES = {
    "SRB": ["sr"],          # stored as "rs", which is no ISO 639-1 code
    "ABW": ["nl", "pap"],   # stored as "pa" (Punjabi); Aruba's second language is Papiamento
}

# land borders that countryinfo lists on one side only (checked by hand); added both ways
EXTRA_BORDERS = [("IND", "MMR"), ("IRQ", "KWT"), ("ITA", "VAT"), ("NPL", "CHN"), ("SDN", "TCD"),
                 ("PSE", "ISR"), ("PSE", "EGY"), ("PSE", "JOR"), ("SXM", "MAF")]

# borders that exist only through an overseas territory, a disputed area or a 2022 treaty:
# neither asked about nor ever offered as a wrong answer
UNCLEAR_BORDERS = [("FRA", "NLD"), ("FRA", "BRA"), ("FRA", "SUR"),  # Saint Martin, French Guiana
                   ("GBR", "ESP"), ("GBR", "CYP"),                  # Gibraltar, sovereign bases
                   ("CAN", "GRL"), ("CAN", "DNK"),                  # Hans Island (2022)
                   ("IND", "AFG"), ("SRB", "ALB")]                  # Kashmir, Kosovo

# pycountry's ISO 639 reference names -> the usual English names
LANGUAGE_NAMES = {
    "Modern Greek (1453-)": "Greek", "Pushto": "Pashto", "Panjabi": "Punjabi",
    "Kirghiz": "Kyrgyz", "Divehi": "Dhivehi", "Haitian": "Haitian Creole",
    "Rundi": "Kirundi", "Nauru": "Nauruan", "Tonga (Tonga Islands)": "Tongan",
    "Kalaallisut": "Greenlandic",
}

# names that take "the" inside a sentence (besides "The ..." names and "... Islands")
NAMES_WITH_THE = {
    "Netherlands", "Philippines", "Maldives", "Comoros", "Seychelles", "Isle of Man",
    "Czech Republic", "Dominican Republic", "Central African Republic",
    "Democratic Republic of the Congo", "Republic of the Congo", "United States",
    "United Kingdom", "United Arab Emirates", "Federated States of Micronesia",
}

# -----------------------------------------------------------------------------
# Small helpers


def stable_hash(text: str) -> int:
    """A hash that is the same on every machine and Python run (unlike hash())."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def split_of(key: str) -> str:
    """70 / 15 / 15 train / validation / test, by hashing `key`."""
    bucket = stable_hash(key) % 100
    return "train" if bucket < 70 else "validation" if bucket < 85 else "test"


def same(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def in_sentence(name: str) -> str:
    """A place name as written inside a sentence: 'the Netherlands', 'the Bahamas'."""
    if name.startswith("The "):
        return "the " + name[4:]
    if name in NAMES_WITH_THE or name.endswith("Islands"):
        return "the " + name
    return name


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def full_stop(text: str) -> str:
    """End a sentence with one full stop, also after "Washington, D.C."."""
    return text if text.endswith(".") else text + "."


def is_are(name: str) -> str:
    return "are" if name.endswith("Islands") else "is"


def pick_distractors(answer: str, tiers: list, wrong_ok=None, *, rng: random.Random, k: int = 3):
    """Pick k distinct distractors, trying the most similar tier first.

    tiers: lists of candidates, most plausible first (e.g. same subregion, same region, all).
    wrong_ok(candidate): True if the candidate is certainly a wrong answer (default: any
    candidate other than the answer is).
    Returns None if fewer than k are found.
    """
    chosen: list[str] = []
    for tier in tiers:
        pool = sorted(set(tier))  # sorted first: set order differs between Python runs
        rng.shuffle(pool)
        for c in pool:
            if not c or same(c, answer) or any(same(c, x) for x in chosen):
                continue
            if wrong_ok is None or wrong_ok(c):
                chosen.append(c)
                if len(chosen) == k:
                    return chosen
    return None


# -----------------------------------------------------------------------------
# Facts: one clean record per country and per element


def _currency_codes(iso3: str, raw_codes: list[str]) -> list[str]:
    codes = []
    for code in raw_codes + EXTRA_CURRENCIES.get(iso3, []):
        code = CURRENCY_FIXES.get(code, code)
        if code and code not in codes and pycountry.currencies.get(alpha_3=code):
            codes.append(code)
    return codes


def _language_name(code: str) -> str | None:
    if len(code) == 2:
        lang = pycountry.languages.get(alpha_2=code)
    elif len(code) == 3:
        lang = pycountry.languages.get(alpha_3=code)
    else:
        return None  # countryinfo sometimes stores full names (Scotland); not ISO
    if lang is None:
        return None
    name = LANGUAGE_NAMES.get(lang.name, lang.name)
    return re.sub(r"\s*\(.*\)$", "", name)  # "Malay (macrolanguage)" -> "Malay"


@functools.lru_cache(maxsize=1)
def countries() -> tuple[dict, ...]:
    """Clean country/territory records, sorted by name.

    Each: name, iso3, capital, region, subregion (capital/region/subregion may be ""),
    area (M49 intermediate region where there is one, e.g. South America; else subregion),
    currencies (names, first = main), currency_codes, languages (names, first = main),
    borders (iso3 codes of land neighbours), unclear_borders (never asked, never a wrong
    answer: see UNCLEAR_BORDERS), and the flag ask_currency.
    """
    # countryinfo lists some places twice (Myanmar/Burma, Palestine, Vatican, Wales as GBR);
    # keep, per ISO code, the record with the most filled fields
    def filled(d):
        keys = ("capital", "region", "subregion", "currencies", "languages", "borders", "population")
        return sum(bool(d.get(k)) for k in keys)

    best: dict[str, dict] = {}
    for raw in CountryInfo.all().values():
        iso3 = (raw.get("ISO") or {}).get("alpha3") or ""
        if not iso3 or not pycountry.countries.get(alpha_3=iso3):
            continue  # defunct (Netherlands Antilles, Serbia and Montenegro) or no code (Scotland)
        if iso3 in EXCLUDED:
            continue
        if iso3 not in best or filled(raw) > filled(best[iso3]):
            best[iso3] = raw

    records = []
    for iso3, raw in best.items():
        capital = CAPITAL_FIXES.get(iso3, raw.get("capital") or "")
        if not isinstance(capital, str) or iso3 in NO_CAPITAL:
            capital = ""
        region = raw.get("region") or ""
        region = "the Americas" if region == "Americas" else region
        subregion = (raw.get("subregion") or "").replace("South-Eastern", "South-eastern")
        codes = _currency_codes(iso3, list(raw.get("currencies") or []))
        languages = []
        for code in LANGUAGE_OVERRIDES.get(iso3, raw.get("languages") or []):
            name = _language_name(code)
            if name and name not in languages:
                languages.append(name)
        records.append(dict(
            name=RENAMES.get(iso3, raw["name"]),
            iso3=iso3,
            capital=capital.strip(),
            region=region,
            subregion=subregion,
            area=raw.get("intermediateregion") or subregion,
            currency_codes=codes,
            currencies=[pycountry.currencies.get(alpha_3=c).name for c in codes],
            languages=languages,
            borders=[b for b in raw.get("borders") or [] if b in best],
            ask_currency=iso3 not in NO_CURRENCY,
        ))

    # trust a land border only if both countries list it (or it is in EXTRA_BORDERS)
    by_iso = {r["iso3"]: r for r in records}
    for r in records:
        r["borders"] = {b for b in r["borders"] if r["iso3"] in by_iso[b]["borders"]}
    for a, b in EXTRA_BORDERS:
        by_iso[a]["borders"].add(b)
        by_iso[b]["borders"].add(a)
    for r in records:
        r["unclear_borders"] = sorted({b for pair in UNCLEAR_BORDERS if r["iso3"] in pair
                                       for b in pair if b != r["iso3"]})
        r["borders"] = sorted(r["borders"] - set(r["unclear_borders"]))
    # a region without a subregion (or the reverse) is a broken record: drop both
    for r in records:
        if not (r["region"] and r["subregion"]):
            r["region"] = r["subregion"] = r["area"] = ""
    return tuple(sorted(records, key=lambda r: r["name"]))


PERIOD_ENDS = (2, 10, 18, 36, 54, 86, 118)  # atomic number of the last element of each period


def period_and_group(number: int) -> tuple[int, int | None]:
    """Period and IUPAC group (1-18) of an element; group None for lanthanides/actinides."""
    period = next(p for p, end in enumerate(PERIOD_ENDS, start=1) if number <= end)
    start = PERIOD_ENDS[period - 2] if period > 1 else 0
    pos = number - start  # 1-based position within the period
    if period == 1:
        return period, 1 if pos == 1 else 18
    if period <= 3:
        return period, pos if pos <= 2 else pos + 10
    if period <= 5:
        return period, pos
    if pos <= 2:
        return period, pos
    if pos <= 17:  # La-Lu, Ac-Lr: f-block (and the disputed group-3 place)
        return period, None
    return period, pos - 14


@functools.lru_cache(maxsize=1)
def elements() -> tuple[dict, ...]:
    """The 118 elements: name (lower case, as periodictable spells it), symbol, number,
    period, group (None for lanthanides and actinides)."""
    records = []
    for el in periodictable.elements:
        if 1 <= el.number <= 118:
            period, group = period_and_group(el.number)
            records.append(dict(name=el.name, symbol=el.symbol, number=el.number,
                                period=period, group=group))
    return tuple(records)


# -----------------------------------------------------------------------------
# Questions, one function per kind. Each yields (kind, subject, question, answer,
# distractors, support); `rng` is seeded from the question so each one is reproducible.


def _rng(question: str) -> random.Random:
    return random.Random(stable_hash(question))


def _located(c: dict) -> str:
    name = capitalize(in_sentence(c["name"]))
    return f"{name} {is_are(c['name'])} in {c['subregion']}, a subregion of {c['region']}."


def _country_tiers(c: dict, items: dict) -> list:
    """Candidates from the same area, subregion, region, then anywhere.
    items: iso3 -> candidate value."""
    tiers = []
    for field in ("area", "subregion", "region"):
        tiers.append([items[r["iso3"]] for r in countries() if r["iso3"] in items and r[field] == c[field]])
    return tiers + [list(items.values())]


def capital_questions():
    capitals = {c["iso3"]: c["capital"] for c in countries() if c["capital"]}
    for c in countries():
        if not (c["capital"] and c["region"]):
            continue
        q = f"What is the capital of {in_sentence(c['name'])}?"
        d = pick_distractors(c["capital"], _country_tiers(c, capitals), rng=_rng(q))
        support = f"{_located(c)} " + full_stop(f"The capital of {in_sentence(c['name'])} is {c['capital']}")
        yield "capital", c["name"], q, c["capital"], d, support


def capital_of_questions():
    rows = [c for c in countries() if c["capital"] and c["region"]]
    names = {c["iso3"]: c["name"] for c in rows}
    for c in rows:
        sharing = [o["name"] for o in rows if same(o["capital"], c["capital"])]
        if len(sharing) > 1:
            continue  # e.g. Kingston is the capital of Jamaica and of Norfolk Island
        if c["name"].casefold() in c["capital"].casefold():
            continue  # "Djibouti is the capital of ...": the question gives the answer away
        q = f"{c['capital']} is the capital of which country or territory?"
        d = pick_distractors(c["name"], _country_tiers(c, names), rng=_rng(q))
        support = f"{c['capital']} is the capital of {in_sentence(c['name'])}. {_located(c)}"
        yield "capital_of", c["name"], q, c["name"], d, support


def region_questions():
    regions = sorted({c["region"] for c in countries() if c["region"]})
    for c in countries():
        if not c["region"]:
            continue
        q = f"In the United Nations geoscheme, what is the world region of {in_sentence(c['name'])}?"
        d = pick_distractors(c["region"], [regions], rng=_rng(q))
        support = (f"{_located(c)} The United Nations geoscheme groups the world's countries "
                   f"into five regions: {', '.join(regions[:-1])} and {regions[-1]}.")
        yield "region", c["name"], q, c["region"], d, support


def subregion_questions():
    by_region = defaultdict(set)
    for c in countries():
        if c["region"]:
            by_region[c["region"]].add(c["subregion"])
    everything = sorted(set().union(*by_region.values()))
    for c in countries():
        if not c["region"]:
            continue
        q = f"In the United Nations geoscheme, what is the subregion of {in_sentence(c['name'])}?"
        tiers = [sorted(by_region[c["region"]]), everything]
        d = pick_distractors(c["subregion"], tiers, rng=_rng(q))
        parts = sorted(by_region[c["region"]])
        support = (f"{_located(c)} The United Nations geoscheme divides {c['region']} into "
                   f"{', '.join(parts[:-1])} and {parts[-1]}.")
        yield "subregion", c["name"], q, c["subregion"], d, support


def _near(c: dict, field: str) -> set:
    """Values of `field` in c, its land neighbours and its whole area (e.g. South America):
    these are never offered as wrong answers, since the source may miss that c shares one."""
    rows = [r for r in countries()
            if r["iso3"] == c["iso3"] or r["iso3"] in c["borders"] or r["area"] == c["area"]]
    return {v.casefold() for r in rows for v in r[field]}


def currency_questions():
    names = {c["iso3"]: c["currencies"][0] for c in countries() if c["currencies"]}
    for c in countries():
        if not (c["currencies"] and c["ask_currency"] and c["region"]):
            continue
        answer, code = c["currencies"][0], c["currency_codes"][0]
        q = f"What is the official currency of {in_sentence(c['name'])}?"
        near = _near(c, "currencies")
        d = pick_distractors(answer, _country_tiers(c, names), lambda x, near=near: x.casefold() not in near,
                             rng=_rng(q))
        support = f"The official currency of {in_sentence(c['name'])} is the {answer} (ISO 4217 code {code})."
        if len(c["currencies"]) > 1:
            support += f" The {' and the '.join(c['currencies'][1:])} can also be used there."
        support += " " + _located(c)
        yield "currency", c["name"], q, answer, d, support


def language_questions():
    names = {c["iso3"]: c["languages"][0] for c in countries() if c["languages"]}
    every = sorted({lang for c in countries() for lang in c["languages"]})
    for c in countries():
        if not (c["languages"] and c["region"]):
            continue
        answer = c["languages"][0]
        q = f"Which of these is an official language of {in_sentence(c['name'])}?"
        near = _near(c, "languages")
        tiers = _country_tiers(c, names) + [every]
        d = pick_distractors(answer, tiers, lambda x, near=near: x.casefold() not in near, rng=_rng(q))
        langs = c["languages"]
        if len(langs) == 1:
            support = f"The official language of {in_sentence(c['name'])} is {answer}."
        else:
            listed = ", ".join(langs[:-1]) + " and " + langs[-1]
            support = f"The official languages of {in_sentence(c['name'])} include {listed}."
        support += " " + _located(c)
        yield "language", c["name"], q, answer, d, support


def border_questions():
    by_iso = {c["iso3"]: c for c in countries()}
    # only places with land borders are offered: an island nation is a too-easy wrong answer
    names = {c["iso3"]: c["name"] for c in countries() if c["region"] and c["borders"]}
    for c in countries():
        if not (c["borders"] and c["region"]):
            continue
        q = f"Which of these countries or territories shares a land border with {in_sentence(c['name'])}?"
        rng = _rng(q)
        answer = by_iso[rng.choice(c["borders"])]["name"]
        neighbours = {by_iso[b]["name"] for b in c["borders"]}
        unclear = {by_iso[b]["name"] for b in c["unclear_borders"]}

        def wrong_ok(x, c=c, ruled_out=neighbours | unclear):
            return x not in ruled_out and x != c["name"]

        d = pick_distractors(answer, _country_tiers(c, names), wrong_ok, rng=rng)
        listed = sorted(in_sentence(n) for n in neighbours)
        listed = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]
        support = f"{capitalize(in_sentence(c['name']))} shares land borders with {listed}. {_located(c)}"
        yield "border", c["name"], q, answer, d, support


def _element_support(e: dict) -> str:
    where = f"period {e['period']}" + (f", group {e['group']}" if e["group"] else "")
    return (f"{capitalize(e['name'])} is a chemical element with the symbol {e['symbol']} "
            f"and atomic number {e['number']}. It is in {where} of the periodic table.")


def _numbers(lo: int, hi: int) -> list[str]:
    return [str(n) for n in range(lo, hi + 1)]


def element_questions():
    els = elements()
    symbols, names = [x["symbol"] for x in els], [x["name"] for x in els]
    for e in els:
        support = _element_support(e)
        name, symbol, number, period, group = e["name"], e["symbol"], e["number"], e["period"], e["group"]

        # wrong symbols that start like the name or the symbol: iron -> I, Ir, In
        q = f"What is the chemical symbol for {name}?"
        similar = [s for s in symbols if s[0] in (symbol[0], name[0].upper())]
        d = pick_distractors(symbol, [similar, symbols], rng=_rng(q))
        yield "element_symbol", name, q, symbol, d, support

        # wrong elements whose symbol starts alike (Fe -> fluorine, francium), then neighbours
        q = f"Which chemical element has the symbol {symbol}?"
        similar = [x["name"] for x in els if x["symbol"][0] == symbol[0]]
        nearby = [x["name"] for x in els if abs(x["number"] - number) <= 3]
        d = pick_distractors(name, [similar, nearby, names], rng=_rng(q))
        yield "element_name", name, q, name, d, support

        q = f"What is the atomic number of {name}?"
        tiers = [_numbers(max(1, number - 4), min(118, number + 4)), _numbers(1, 118)]
        d = pick_distractors(str(number), tiers, rng=_rng(q))
        yield "element_number", name, q, str(number), d, support

        q = f"In which period of the periodic table is {name}?"
        tiers = [_numbers(max(1, period - 2), min(7, period + 2)), _numbers(1, 7)]
        d = pick_distractors(str(period), tiers, rng=_rng(q))
        yield "element_period", name, q, str(period), d, support

        if group:
            q = f"In which group of the periodic table is {name}?"
            tiers = [_numbers(max(1, group - 3), min(18, group + 3)), _numbers(1, 18)]
            d = pick_distractors(str(group), tiers, rng=_rng(q))
            yield "element_group", name, q, str(group), d, support


GENERATORS = (capital_questions, capital_of_questions, region_questions, subregion_questions,
              currency_questions, language_questions, border_questions, element_questions)


# -----------------------------------------------------------------------------
# The dataset


@functools.lru_cache(maxsize=1)
def rows() -> dict[str, tuple[dict, ...]]:
    """All questions as plain dicts, per split. Cached: the facts never change in a process.
    (The rows are cached rather than the Dataset objects, so that one caller's in-place
    `set_format` cannot change what the next caller gets.)"""
    out: dict[str, list] = {s: [] for s in SPLITS}
    seen = set()
    for generate in GENERATORS:
        for kind, subject, question, answer, distractors, support in generate():
            if distractors is None or not answer or question in seen:
                continue  # too few safe distractors; or a duplicate question
            seen.add(question)
            out[split_of(subject)].append(dict(
                question=question, correct_answer=answer,
                distractor1=distractors[0], distractor2=distractors[1], distractor3=distractors[2],
                support=support, kind=kind, subject=subject, generator=GENERATOR_VERSION))
    return {s: tuple(v) for s, v in out.items()}


def split_sizes() -> dict[str, int]:
    return {s: len(v) for s, v in rows().items()}


def source_versions() -> str:
    """The versions of the packages the facts come from, e.g. for a dataset's description:
    a new release of one of them may change a few facts."""
    parts = []
    for package in ("countryinfo", "pycountry", "periodictable"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} (version unknown)")
    return ", ".join(parts)


def build(split: str | None = None):
    """The world-facts dataset: a DatasetDict (train/validation/test), or one split."""
    features = datasets.Features({c: datasets.Value("string") for c in COLUMNS})

    description = (f"{GENERATOR_VERSION}: SciQ-shaped questions generated from "
                    f"{source_versions()} (see alignlab.data.world_facts).")
    return to_datasets("world-facts", rows(), features, description, split)
