"""Legal reasoning: is a privacy-policy clause relevant to a user's question?

Two sources with one schema (question, clause, label 1 = Relevant, category, policy, group):

- `generated_splits`: a generated set in the shape of LegalBench `privacy_policy_qa` (itself from
  PrivacyQA, Ravichander et al. 2019). Fictional companies' policies are written from clause
  templates in nine OPP-115-style categories (Wilson et al. 2016); users ask questions written per
  category. A (question, clause) pair is Relevant exactly when the clause's category is the one the
  question asks about: the label is built into the generator. Every question is paired with one
  relevant and one irrelevant clause of the same policy, so the classes are balanced, and the split
  is by policy (no clause, and no policy, in two splits). The question wording is kept apart from
  the clauses' wording on purpose, so that word overlap alone does not give the answer.
- `load_legalbench`: the real task, from a local LegalBench `privacy_policy_qa` folder or file
  (`train.tsv` / `test.tsv`: index, question, text, answer) or from the hub (`nguha/legalbench`).
  The real rows carry no policy id, so `legalbench_splits` splits them by clause text.
"""

from __future__ import annotations

import random
from pathlib import Path

import datasets
import pandas as pd

from alignlab.data.safety import assign_splits

GENERATOR_VERSION = "privacy-policy/1.0"
HUB_ID = "nguha/legalbench"
HUB_CONFIG = "privacy_policy_qa"
LABELS = {"Relevant": 1, "Irrelevant": 0}

COMPANIES = ("Acme Maps", "Brightleaf Health", "Cobalt Games", "Dovetail Books", "Evergreen Bank", "Fable Music",
             "Granite Fitness", "Harbor Travel", "Iris Photos", "Juniper Mail", "Kestrel Cars", "Lumen Learning",
             "Mosaic Dating", "Nimbus Cloud", "Orchid Recipes", "Pinecone Weather", "Quarry Jobs", "Riverbend News",
             "Saffron Food Delivery", "Tandem Rides", "Umber Home", "Vireo Notes", "Willow Pets", "Xylo Kids",
             "Yarrow Shop", "Zephyr Chat", "Atlas Tickets", "Beacon Security", "Cedar Insurance", "Delta Genomics",
             "Ember Streaming", "Fjord Translate", "Glacier Storage", "Hollow Podcasts", "Indigo Calendar",
             "Jasper Tutors", "Koi Aquatics", "Lark Surveys", "Meadow Garden", "Nova Wallet")
DATA = ("email address", "precise location", "contact list", "purchase history", "device identifiers",
        "payment card details", "browsing activity", "voice recordings", "health information", "photos")
PARTNERS = ("advertising networks", "analytics providers", "payment processors", "our affiliates",
            "marketing partners", "cloud hosting vendors")
PERIODS = ("30 days", "six months", "one year", "two years", "as long as your account is open")

# category -> clause templates ({company} {data} {partner} {period})
CLAUSES = {
    "first-party collection/use": (
        "{company} collects your {data} when you create an account and uses it to provide the service.",
        "When you use our app, we automatically record your {data} to personalise what you see.",
        "We gather your {data} directly from you and process it to operate and improve {company}.",
    ),
    "third-party sharing/collection": (
        "{company} may disclose your {data} to {partner} who act on our behalf.",
        "We share information such as your {data} with {partner} for the purposes described here.",
        "Third parties, including {partner}, may receive your {data} through tools embedded in our pages.",
    ),
    "user choice/control": (
        "You can opt out of promotional messages at any time from the settings page of {company}.",
        "If you do not want us to use your {data} for personalisation, switch it off in your preferences.",
        "Consent you have given can be withdrawn whenever you wish by contacting {company}.",
    ),
    "user access/edit/deletion": (
        "You may review, correct or erase the {data} we hold about you from your account page.",
        "To obtain a copy of your records or have them removed, write to the {company} privacy team.",
        "Closing your account lets you permanently remove your profile and associated {data}.",
    ),
    "data retention": (
        "{company} keeps your {data} for {period} and then discards it.",
        "Records are stored for {period}, after which they are anonymised or destroyed.",
        "We hold backups containing your {data} no longer than {period}.",
    ),
    "data security": (
        "{company} protects your {data} with encryption in transit and at rest.",
        "Access to our systems is restricted to authorised staff and monitored for intrusions.",
        "We run regular penetration tests and audits of the safeguards around your {data}.",
    ),
    "policy change": (
        "{company} may revise this notice from time to time and will post the new version here.",
        "If we make material amendments, you will be notified by email before they take effect.",
        "Continued use of the service after an update means you accept the revised terms.",
    ),
    "do not track": (
        "{company} does not currently respond to Do Not Track signals sent by browsers.",
        "Our website honours the Global Privacy Control and browser DNT settings.",
        "Because no common standard exists, we ignore browser requests not to be tracked.",
    ),
    "international and specific audiences": (
        "{company} is not directed to children under 13 and does not knowingly collect their {data}.",
        "If you live in the European Economic Area, you have additional rights under the GDPR.",
        "Residents of California may request details about disclosures under the CCPA.",
    ),
}
# category -> user questions, worded unlike the clauses
QUESTIONS = {
    "first-party collection/use": ("what do you know about me?", "what info does the app grab from my phone?",
                                   "why do you need my details?", "does this thing read my stuff?"),
    "third-party sharing/collection": ("do you sell my data?", "will advertisers get my info?",
                                       "who else sees what i do here?", "is my information given to other companies?"),
    "user choice/control": ("can i stop the marketing emails?", "can i say no to personalized ads?",
                            "how do i turn off tracking for ads?", "am i able to change what i agreed to?"),
    "user access/edit/deletion": ("how do i get rid of my account?", "can i see everything you have on me?",
                                  "can i fix wrong info in my profile?", "will you wipe my data if i ask?"),
    "data retention": ("how long is my info kept?", "when do you throw away old records?",
                       "do you hang on to my data forever?", "what happens to my data after i leave?"),
    "data security": ("is my information safe from hackers?", "what if there is a breach?",
                      "how secure is your website?", "can your employees look at my account?"),
    "policy change": ("will you tell me if the rules change?", "can this privacy page be updated without warning?",
                      "how will i know about new terms?", "what if i don't like a future version?"),
    "do not track": ("does my browser's do-not-track setting do anything here?", "do you follow dnt?",
                     "will my privacy signal from chrome be respected?",
                     "do you care about browser tracking settings?"),
    "international and specific audiences": ("can my 10 year old use this?", "what rights do i have in europe?",
                                             "i live in california, anything special for me?",
                                             "is this allowed for kids?"),
}
CATEGORIES = tuple(CLAUSES)


def pair_text(question: str, clause: str) -> str:
    """The classifier's input for one (question, clause) pair."""
    return f"Privacy policy clause: {clause}\nUser question: {question}\nIs the clause relevant to the question?"


def generated_policy(company: str, rng: random.Random) -> list[dict]:
    """One fictional policy: two distinct filled clause templates per category, each naming the company."""
    clauses = []
    for category, templates in CLAUSES.items():
        for template in rng.sample(templates, 2):
            text = template.format(company=company, data=rng.choice(DATA), partner=rng.choice(PARTNERS),
                                   period=rng.choice(PERIODS))
            if company not in text:  # every clause names its company, so no clause is in two policies
                text = f"At {company}, {text[0].lower()}{text[1:]}"
            clauses.append({"clause": text, "category": category})
    return clauses


def generated_pairs(seed: int = 0, questions_per_category: int = 2) -> pd.DataFrame:
    """(question, clause) pairs of every policy: per category, `questions_per_category` questions,
    each with one relevant and one irrelevant clause of the same policy."""
    rng = random.Random(seed)
    rows = []
    for company in COMPANIES:
        clauses = generated_policy(company, rng)
        for category in CATEGORIES:
            relevant = [c for c in clauses if c["category"] == category]
            irrelevant = [c for c in clauses if c["category"] != category]
            for question in rng.sample(QUESTIONS[category], questions_per_category):
                for clause, label in ((rng.choice(relevant), 1), (rng.choice(irrelevant), 0)):
                    rows.append({"question": question, "clause": clause["clause"], "label": label,
                                 "category": category, "clause_category": clause["category"],
                                 "policy": company, "group": company})
    df = pd.DataFrame(rows)
    df["text"] = [pair_text(q, c) for q, c in zip(df.question, df.clause)]
    return df


def generated_splits(seed: int = 0, questions_per_category: int = 2) -> dict:
    """{split: DataFrame} of `generated_pairs`, split by policy (label 1 = Relevant)."""
    df = generated_pairs(seed, questions_per_category)
    df["split"] = assign_splits(df.group, seed)
    return {s: df[df.split == s].drop(columns="split").reset_index(drop=True) for s in ("train", "validation", "test")}


def read_legalbench_tsv(path) -> pd.DataFrame:
    """One LegalBench `privacy_policy_qa` TSV (index, question, text, answer; CSV-style quoting)."""
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = {"question", "text", "answer"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: not a LegalBench privacy_policy_qa file: columns {sorted(missing)} missing "
                         f"(expected index, question, text, answer)")
    return legalbench_frame(df)


def legalbench_frame(df: pd.DataFrame) -> pd.DataFrame:
    """LegalBench columns -> this module's schema; an unknown answer is an error naming it."""
    unknown = sorted(set(df["answer"]) - set(LABELS))
    if unknown:
        raise ValueError(f"privacy_policy_qa answers must be Relevant or Irrelevant; found {unknown[:5]}")
    out = pd.DataFrame({"question": df["question"].str.strip(), "clause": df["text"].str.strip(),
                        "label": df["answer"].map(LABELS).astype(int)})
    out["category"] = "unknown"
    out["policy"] = "unknown"
    out["group"] = out.clause
    out["text"] = [pair_text(q, c) for q, c in zip(out.question, out.clause)]
    return out


def load_legalbench(path=None) -> pd.DataFrame:
    """Every row of LegalBench `privacy_policy_qa`: from `path` (a `.tsv` file, or a folder whose
    `train.tsv` and `test.tsv` are read, those present), or from the hub when `path` is None."""
    if path is None:
        try:
            ds = datasets.load_dataset(HUB_ID, HUB_CONFIG)
        except Exception as error:
            raise RuntimeError(f"could not load {HUB_ID}/{HUB_CONFIG} from the hub ({error}); pass a local "
                               f"privacy_policy_qa folder with train.tsv / test.tsv instead") from error
        return pd.concat([legalbench_frame(ds[s].to_pandas()) for s in ds], ignore_index=True)
    path = Path(path)
    files = [path] if path.is_file() else [path / f for f in ("train.tsv", "test.tsv") if (path / f).is_file()]
    if not files:
        raise FileNotFoundError(f"{path}: no LegalBench privacy_policy_qa file (train.tsv or test.tsv) there")
    return pd.concat([read_legalbench_tsv(f) for f in files], ignore_index=True)


def legalbench_splits(path=None, seed: int = 0) -> dict:
    """{split: DataFrame} of the real task, split by clause text (the rows carry no policy id)."""
    df = load_legalbench(path).drop_duplicates(["question", "clause"]).reset_index(drop=True)
    df["split"] = assign_splits(df.group, seed)
    return {s: df[df.split == s].drop(columns="split").reset_index(drop=True) for s in ("train", "validation", "test")}
