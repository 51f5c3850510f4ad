"""The chains: direct, recursive, recursive-ensemble and self-relabelling supervision, and the gold
ceilings, for one seed; then every seed of a study, cached.

With the ladder M0 < M1 < ... < MK (K pools, `alignlab.studies.recursive.plan`):

    first aligner   M0 trained on G_fit's gold labels (the only human labels any chain reads)
    direct          M0 labels every pool; MK learns all K pools from those labels
    recursive       step k: the aligner labels pool k; Mk learns it and becomes the next aligner
    recursive-ens.  as recursive, but the aligner of step k is the weighted ensemble of M0 and the
                    students of steps 1..k-1 (`alignlab.studies.recursive.aligners`)
    self-relabel    as recursive, but every student is MK: the strongest model relabels the next,
                    fresh pool itself (EleutherAI w2s's strong-to-strong relabelling, on new data)
    gold ceilings   every model trained on each pool's gold labels, and MK on all pools

Every condition reads the same K pools, so all spend the same number of unlabelled examples;
direct's final student trains on K pools, a chain's final student on one (its supervisor was
trained on the others). A student learns its supervisor's soft labels with the given loss
(`alignlab.training.losses`); its epochs are chosen on the validation split labelled by that
same supervisor (`selection="weak-val"`), or it trains for all epochs ("fixed"). The first
aligner and the ceilings train for all epochs (ceilings choose on gold validation labels under
"weak-val": their supervisor is gold).

`run_conditions` receives the first aligner and G_check's labels, and nothing else with a label
in it: no gold label can reach a student except through G. tests/test_recursive.py checks it by
poisoning every other gold label.

Training goes through study 01's shared layer (`alignlab.training.w2s.make_learner`, the learners'
`fit`/`predict`), so probe mode reads the frozen features cached for studies 00 and 01.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from alignlab import data
from alignlab import ladder as ladder_card
from alignlab.cache import Cache
from alignlab.studies.recursive.aligners import Aligner, member_weights
from alignlab.studies.recursive.config import Config
from alignlab.studies.recursive.plan import Plan, draw_plan, gold_split, order_ladder
from alignlab.training.w2s import W2SConfig, accuracy_of, make_learner

SEED_VERSION = "1"
CAPABILITY_VERSION = "1"
SPLITS = ("train", "validation", "test")


def training_settings(config: Config) -> W2SConfig:
    """The training settings of the study's parameters (part of every cache key)."""
    return W2SConfig(mode=config.mode, feature_layer=config.feature_layer, losses=list(config.losses),
                     methods=["single"], epochs=config.epochs, lr=config.lr, alpha_max=config.alpha_max,
                     warmup_frac=config.warmup_frac, selections=["weak-val"], lora_r=config.lora_r,
                     finetune_epochs=config.finetune_epochs, finetune_lr=config.finetune_lr)


def load_texts_and_labels(config: Config) -> tuple[dict, dict]:
    """Texts (lists) and gold labels (arrays) per split of the binary view of `config.dataset`
    (seed 0, as study 01), the first `split_limit` of each split when that is > 0."""
    ds = data.binary_view(data.load(config.dataset), seed=0)
    limit = config.split_limit or None
    texts = {split: list(ds[split]["text"])[:limit] for split in SPLITS}
    labels = {split: np.asarray(ds[split]["label"])[:limit] for split in SPLITS}
    return texts, labels


class LazyLearners(dict):
    """model name -> learner, built on first use (probe mode: loads the model's cached features)."""

    def __init__(self, texts: dict, settings: W2SConfig):
        super().__init__()
        self.texts, self.settings = texts, settings

    def __missing__(self, model: str):
        self[model] = make_learner(model, self.texts, self.settings)
        return self[model]


# ---------------------------------------------------------------------------------------------
# one seed


def first_aligner(learners, model: str, plan: Plan, gold_fit_labels, settings: W2SConfig, seed: int) -> Aligner:
    """The weakest model trained on G_fit's gold labels."""
    learner = learners[model]
    return Aligner.single(learner, learner.fit("train", plan.gold_fit, np.asarray(gold_fit_labels),
                                               settings.fit_config("xent", seed)))


def run_conditions(learners, ladder: list, plan: Plan, first: Aligner, gold_check_labels, settings: W2SConfig,
                   loss: str, seed: int, selection: str) -> dict:
    """Every condition of the module doc for one loss. Reads no labels but those the aligners
    produce and G_check's (which only weigh ensemble members). Returns arrays by name:
    "<condition>/<step>/labels" (the supervisor's probabilities on the pool it labels),
    ".../supervisor_test", ".../student_test" (probabilities on the test split) and, for the
    ensemble, ".../weights"."""
    out = {}
    top = ladder[-1]
    gold_check_labels = np.asarray(gold_check_labels)

    def teach(condition: str, step: int, aligner: Aligner, student: str, idx) -> Aligner:
        labels = aligner.predict("train", idx).astype(np.float32)
        val_labels = aligner.predict("validation").argmax(1) if selection == "weak-val" else None
        learner = learners[student]
        model = learner.fit("train", idx, labels, settings.fit_config(loss, seed), val_labels=val_labels)
        out[f"{condition}/{step}/labels"] = labels
        out[f"{condition}/{step}/supervisor_test"] = aligner.predict("test")
        out[f"{condition}/{step}/student_test"] = learner.predict(model, "test")
        return Aligner.single(learner, model)

    teach("direct", len(plan.pools), first, top, plan.unlabelled)

    aligner = first
    for k, pool in enumerate(plan.pools, start=1):
        aligner = teach("recursive", k, aligner, ladder[k], pool)

    members, check_acc = list(first.members), [accuracy_of(gold_check_labels, first.predict("train", plan.gold_check))]
    for k, pool in enumerate(plan.pools, start=1):
        weights = member_weights(check_acc)
        out[f"recursive-ensemble/{k}/weights"] = weights
        student = teach("recursive-ensemble", k, Aligner(list(members), weights), ladder[k], pool)
        members += student.members
        check_acc.append(accuracy_of(gold_check_labels, student.predict("train", plan.gold_check)))

    aligner = first
    for k, pool in enumerate(plan.pools, start=1):
        aligner = teach("self-relabel", k, aligner, top, pool)
    return out


def run_ceilings(learners, ladder: list, plan: Plan, labels: dict, settings: W2SConfig, seed: int,
                 selection: str) -> dict:
    """Test probabilities of every model trained on each pool's gold labels ("ceiling/<model>/<k>")
    and of the strongest on all pools ("ceiling/<top>/all")."""
    y, out = labels["train"], {}
    val_labels = labels["validation"] if selection == "weak-val" else None
    jobs = [(model, str(k), pool) for model in ladder for k, pool in enumerate(plan.pools, start=1)]
    for model, name, idx in jobs + [(ladder[-1], "all", plan.unlabelled)]:
        learner = learners[model]
        fitted = learner.fit("train", idx, y[idx], settings.fit_config("xent", seed), val_labels=val_labels)
        out[f"ceiling/{model}/{name}"] = learner.predict(fitted, "test")
    return out


def run_chain_seed(learners, ladder: list, plan: Plan, labels: dict, settings: W2SConfig, seed: int,
             selection: str) -> dict:
    """One seed: the first aligner, every condition for every loss, the ceilings. Flat array dict."""
    y = np.asarray(labels["train"])
    first = first_aligner(learners, ladder[0], plan, y[plan.gold_fit], settings, seed)
    out = {"first/test": first.predict("test")}
    for loss in settings.losses:
        found = run_conditions(learners, ladder, plan, first, y[plan.gold_check], settings, loss, seed, selection)
        out.update({f"{loss}/{name}": value for name, value in found.items()})
    out.update(run_ceilings(learners, ladder, plan, labels, settings, seed, selection))
    return out


# ---------------------------------------------------------------------------------------------
# the study


@dataclass
class StudyRun:
    """Everything a report needs: the ladder and why, the plans, each seed's arrays, the labels."""

    ladder: list
    ladder_table: pd.DataFrame  # from order_ladder
    capability: pd.DataFrame  # seed, model, capability
    plans: dict  # seed -> Plan
    arrays: dict  # seed -> run_chain_seed's dict
    labels: dict
    losses: list
    settings: dict = field(default_factory=dict)


def capability_of(learners, models: list, plan: Plan, labels: dict, settings: W2SConfig, seed: int,
                  key: dict) -> dict:
    """model -> accuracy on G_check of the model trained on G_fit (human labels only), cached."""
    y = np.asarray(labels["train"])

    def compute():
        return {model: first_aligner(learners, model, plan, y[plan.gold_fit], settings, seed).predict(
            "train", plan.gold_check) for model in models}

    probs = Cache().memo("recursive_capability", CAPABILITY_VERSION, compute, models=list(models), seed=seed, **key)
    return {model: accuracy_of(y[plan.gold_check], probs[model]) for model in models}


def run_study(config: Config, texts: dict, labels: dict) -> StudyRun:
    """Measure the ladder on G, order it, then run every seed (each cached)."""
    settings = training_settings(config)
    labels = {k: np.asarray(v) for k, v in labels.items()}
    n_train = len(labels["train"])
    # order "card": the overview's measured order (raises NotOnCard, naming the command, before any model loads)
    models = ladder_card.order(list(config.models), config.dataset) if config.order == "card" else list(config.models)
    for seed in config.seeds:  # bad sizes fail here, before any model is loaded
        draw_plan(n_train, config.n_gold, config.gold_check_frac, len(config.models) - 1, config.pool_size, seed)
    learners = LazyLearners(texts, settings)
    key = dict(texts=texts, labels=labels, config=asdict(settings), n_gold=config.n_gold,
               gold_check_frac=config.gold_check_frac)
    rows = []
    for seed in config.seeds:
        gold_fit, gold_check, _ = gold_split(n_train, config.n_gold, config.gold_check_frac, seed)
        plan = Plan(gold_fit=gold_fit, gold_check=gold_check, pools=())
        for model, acc in capability_of(learners, models, plan, labels, settings, seed, key).items():
            rows.append({"seed": seed, "model": model, "capability": acc})
    capability = pd.DataFrame(rows)
    ladder, ladder_table = order_ladder(models, capability, "measured" if config.order == "measured" else "given")
    if len(ladder) < 2:
        raise ValueError(f"the ladder has fewer than two models after skipping steps that go down: "
                         f"{ladder_table.to_dict('records')}; list models in another order or use order='measured'")
    plans, arrays = {}, {}
    for seed in config.seeds:
        plan = draw_plan(n_train, config.n_gold, config.gold_check_frac, len(ladder) - 1, config.pool_size, seed)
        plans[seed] = plan
        arrays[seed] = Cache().memo(
            "recursive_seed", SEED_VERSION,
            partial(run_chain_seed, learners, ladder, plan, labels, settings, seed, config.selection),
            ladder=ladder, seed=seed, pool_size=config.pool_size, selection=config.selection, **key)
    return StudyRun(ladder=ladder, ladder_table=ladder_table, capability=capability, plans=plans, arrays=arrays,
                    labels=labels, losses=list(config.losses), settings=asdict(settings))
