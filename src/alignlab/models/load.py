"""Loading a model of the zoo (an embedded name, a hub id or a local folder) in one of three views:

    model, tokenizer = load_causal_lm("smollm2-135m")            # (a) causal LM + tokenizer
    clf, tokenizer = load_classifier("minilm-l6", num_labels=2)   # (b) backbone + fresh k-label head
    features = load_feature_extractor("gemma3-270m")              # (c) pooled hidden states
    X = features(["Q: ... A: ...", ...])                          #     -> float32 numpy (n, hidden)

Names are resolved by `alignlab.models.zoo` (embedded weights are converted once and
checksum-verified there).

Device and dtype. CUDA when present, else CPU (override: `device=` or `$ALIGNLAB_DEVICE`). On CUDA
with bf16 support the default dtype is bf16; on CPU it is fp32: on an AVX2 CPU without bf16
instructions a bf16 matmul ran 33x slower than fp32 (0.7 vs 23.8 GFLOP/s, 512x576 @ 576x1536,
torch 2.13), and bf16 shifts log-likelihoods enough to flip close candidate rankings
(override: `dtype=` or `$ALIGNLAB_DTYPE`).

One copy per process. `load_causal_lm`, `load_backbone` and the feature extractor's model are
frozen, inference-only views: the same name (resolved), device, dtype and kind of head give the
same object, in eval mode, that callers must not mutate (no .train(), .to(), peft, weight edits;
`fresh=True` loads a private copy for that). The MAX_HELD (3) most recently requested stay
loaded between calls; older ones are freed once no caller holds them. `release(name)` (or
`release()` for all) drops the registry's hold at once and collects, so a study frees a model it
no longer needs:

    for name in ladder:
        scores[name] = score(*load_causal_lm(name))
        release(name)

`load_classifier` always builds a fresh, trainable backbone and head (it is fine-tuned).
"""

from __future__ import annotations

import gc
import os
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

from alignlab.models.zoo import EMBEDDED, ModelNotAvailable, embedded_names, resolve

# --------------------------------------------------------------------------------------------
# Device and dtype


def pick_device(device: str | None = None) -> str:
    """`device`, else `$ALIGNLAB_DEVICE`, else "cuda" when available, else "cpu"."""
    device = device or os.environ.get("ALIGNLAB_DEVICE")
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str, dtype: str | None = None):
    """The torch dtype to load in: `dtype`, else `$ALIGNLAB_DTYPE`, else bf16 on a bf16 GPU, fp32 otherwise.

    Why fp32 on every CPU, even one with AVX512-BF16 (measured by benchmarks/bench_precision.py on
    such a CPU, 1 thread: bf16 matmul 4.2x the fp32 peak, scoring 3.0x and features 3.0x faster):
    the default must give the same numbers wherever the notebooks run. bf16 moved a summed
    log-likelihood by up to 0.9 nats (features by 0.8% relative), enough to flip close calls of a
    judge or a zero-shot answer, and whether it pays depends on the CPU (emulated bf16 ran 33x
    slower than fp32 on a CPU without those instructions). Cache keys record a forced dtype, not
    the automatic one, so a machine-dependent default would also mix precisions in one cache. bf16
    stays one setting away (`ALIGNLAB_DTYPE=bfloat16`, or `dtype=`) where the speed matters more;
    `make run PROFILE=standard` sets it on CPUs with bf16 instructions."""
    name = dtype or os.environ.get("ALIGNLAB_DTYPE") or "auto"
    if name == "auto":
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    allowed = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
               "float16": torch.float16, "fp16": torch.float16}
    if name not in allowed:
        raise ValueError(f"unknown dtype '{name}': use one of auto, {', '.join(allowed)}")
    return allowed[name]


def model_kind(name: str) -> str:
    """'encoder' or 'decoder' (read from the config for non-embedded models)."""
    if name in EMBEDDED:
        return EMBEDDED[name].kind
    config = AutoConfig.from_pretrained(resolve(name))
    return "decoder" if getattr(config, "is_decoder", False) or _is_causal_config(config) else "encoder"


def _is_causal_config(config) -> bool:
    architectures = getattr(config, "architectures", None) or []
    return any("CausalLM" in a or "LMHeadModel" in a for a in architectures)


# --------------------------------------------------------------------------------------------
# Loading


def load_tokenizer(name: str):
    """The tokenizer, with a pad token set (decoders without one pad with EOS)."""
    tokenizer = AutoTokenizer.from_pretrained(_from_pretrained_path(name))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _from_pretrained_path(name: str) -> str:
    try:
        return resolve(name)
    except ModelNotAvailable:
        raise
    except OSError as error:  # pragma: no cover - network failures on hub ids
        raise ModelNotAvailable(f"could not fetch '{name}' (hub ids need network access): {error}") from error


def _load(auto_class, name: str, path: str, device: str, torch_dtype):
    try:
        model = auto_class.from_pretrained(path, dtype=torch_dtype)
    except OSError as error:
        raise ModelNotAvailable(
            f"could not load '{name}': {error}. Embedded models: {embedded_names()}; hub ids need network access."
        ) from error
    return model.to(device).eval()


# --------------------------------------------------------------------------------------------
# The registry: one shared copy per (resolved name, device, dtype, kind of head)
#
# A hand-written dict, not functools.lru_cache: lru_cache keys on the raw arguments (a name and
# its folder, device=None and device="cpu", or a changed $ALIGNLAB_DEVICE give separate copies),
# can only forget everything at once (cache_clear), and its size limit drops entries that callers
# still hold, so the next call loads a second copy of a model that is still in memory.
#
# Strong references to the MAX_HELD most recently requested models keep them loaded between
# calls; every model loaded here is also tracked by a weak reference, so a model that fell out of
# the strong hold (or was released) while a caller still uses it is handed out again instead of
# being loaded twice, and is freed as soon as no caller holds it.

MAX_HELD = 3  # models kept loaded with no caller holding them (the 1.5B ladder model alone is 7 GB in fp32)


@dataclass
class _Entry:
    model: weakref.ref
    rest: tuple  # what is returned with the model (tokenizer, pooling)
    names: set = field(default_factory=set)  # the names it was asked for by


_LOCK = threading.RLock()
_LOADED: dict[tuple, _Entry] = {}
_HELD: OrderedDict[tuple, object] = OrderedDict()  # key -> model, least recently requested first


def _canonical(path: str) -> str:
    return os.path.abspath(path) if os.path.exists(path) else path


def _shared(kind: str, name: str, device: str | None, dtype: str | None, build):
    """(model, *rest) from the registry, built by `build(path, device, torch_dtype)` when absent."""
    device = str(torch.device(pick_device(device)))
    torch_dtype = pick_dtype(device, dtype)
    path = _from_pretrained_path(name)
    key = (_canonical(path), device, torch_dtype, kind)
    with _LOCK:
        entry = _LOADED.get(key)
        model = entry.model() if entry else None
        if model is None:
            model, *rest = build(path, device, torch_dtype)
            entry = _LOADED[key] = _Entry(weakref.ref(model), tuple(rest))
        entry.names.add(name)
        _HELD[key] = model
        _HELD.move_to_end(key)
        while len(_HELD) > MAX_HELD:
            _HELD.popitem(last=False)
        for stale in [k for k, e in _LOADED.items() if e.model() is None]:
            del _LOADED[stale]
        return (model, *entry.rest)


def loaded() -> list[tuple]:
    """(path, device, dtype, kind) of every shared model still in memory."""
    with _LOCK:
        return [key for key, entry in _LOADED.items() if entry.model() is not None]


def release(name: str | None = None) -> None:
    """Drop the registry's hold on `name` (every device, dtype and head it was loaded with), or on
    every model when `name` is None, then collect garbage (and empty the CUDA cache when on CUDA).

    The memory comes back once no caller holds the model either (a variable, a FeatureExtractor, a
    closure); until then a new call hands out that same object rather than a second copy
    (`loaded()` lists what is still in memory)."""
    with _LOCK:
        keys = [key for key, entry in _LOADED.items()
                if name is None or name in entry.names or key[0] == _canonical(name)]
        for key in keys:
            _HELD.pop(key, None)
    gc.collect()
    with _LOCK:
        for key in [k for k, e in _LOADED.items() if e.model() is None]:
            del _LOADED[key]
    if any(key[1].startswith("cuda") for key in keys) and torch.cuda.is_available():
        torch.cuda.empty_cache()


def load_causal_lm(name: str, device: str | None = None, dtype: str | None = None, *, fresh: bool = False):
    """(model, tokenizer) for a causal LM, in eval mode.

    Shared: every call with the same name, device and dtype returns the same objects; do not
    mutate them (see the module doc). `fresh=True`: a private copy, outside the registry."""
    if name in EMBEDDED and EMBEDDED[name].kind != "decoder":
        raise ModelNotAvailable(f"'{name}' is an encoder and has no LM head; causal LMs: "
                                + embedded_names("decoder"))

    def build(path, device, torch_dtype):
        return _load(AutoModelForCausalLM, name, path, device, torch_dtype), load_tokenizer(name)

    if fresh:
        device = pick_device(device)
        return build(_from_pretrained_path(name), device, pick_dtype(device, dtype))
    return _shared("causal_lm", name, device, dtype, build)


def load_backbone(name: str, device: str | None = None, dtype: str | None = None, *, fresh: bool = False):
    """(model, tokenizer, pooling): the base model without any head, and how to pool it.

    Shared like `load_causal_lm` (frozen, do not mutate); `fresh=True` for a private copy.

    A decoder's shared backbone is the base model inside the shared causal LM, not a second load:
    a notebook that reads features of a model and also scores with it holds one copy of its
    weights (the 1.5B ladder model held twice took 6.8 GiB in bf16 instead of 3.8). The backbone
    keeps its causal LM alive, so while any caller holds either, both calls return these objects."""

    def build(path, device, torch_dtype):
        model = _load(AutoModel, name, path, device, torch_dtype)
        return model, load_tokenizer(name), "last" if model_kind(name) == "decoder" else "mean"

    if fresh:
        device = pick_device(device)
        return build(_from_pretrained_path(name), device, pick_dtype(device, dtype))
    if model_kind(name) == "decoder":
        causal, tokenizer = load_causal_lm(name, device, dtype)
        base = causal.base_model
        # a plain attribute, not a registered submodule (that would make a cycle in the module tree)
        object.__setattr__(base, "_alignlab_causal_lm", causal)
        return base, tokenizer, "last"
    return _shared("backbone", name, device, dtype, build)


# --------------------------------------------------------------------------------------------
# Pooling, classifiers, features


def pool_hidden(hidden, attention_mask, how: str):
    """Pool hidden states (batch, seq, dim) over real tokens only, read from the attention mask.

    'last': the last position whose mask is 1 (works for left and right padding alike; never the
    pad id, which for many decoders equals EOS and can also occur inside the text).
    'mean': the mean over positions whose mask is 1.
    """
    mask = attention_mask.to(hidden.dtype)
    if how == "mean":
        return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    if how == "last":
        seq_len = attention_mask.shape[1]
        last = seq_len - 1 - attention_mask.flip(1).to(torch.long).argmax(1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling '{how}': use 'last' or 'mean'")


class SequenceClassifier(torch.nn.Module):
    """A backbone, pooled through the attention mask, and a linear head of `num_labels`."""

    def __init__(self, backbone, num_labels: int, pooling: str):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        hidden = backbone.config.hidden_size
        self.head = torch.nn.Linear(hidden, num_labels)
        torch.nn.init.zeros_(self.head.bias)
        torch.nn.init.normal_(self.head.weight, std=1.0 / hidden**0.5)
        param = next(backbone.parameters())
        self.head.to(device=param.device, dtype=param.dtype)

    def forward(self, input_ids, attention_mask):
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(pool_hidden(hidden, attention_mask, self.pooling))


def load_classifier(name: str, num_labels: int = 2, device: str | None = None, dtype: str | None = None):
    """(classifier, tokenizer): a fresh k-label linear head on the model's pooled hidden state.

    Never shared: every call loads its own backbone (fine-tuning trains it, wraps it in LoRA), so
    two classifiers of the same name are two copies, each freed when its caller drops it."""
    if num_labels < 2:
        raise ValueError(f"num_labels must be at least 2, got {num_labels}")
    backbone, tokenizer, pooling = load_backbone(name, device, dtype, fresh=True)
    return SequenceClassifier(backbone, num_labels, pooling), tokenizer


class _StopForward(Exception):
    """Raised by a hook once the deepest requested layer is read: the blocks above it never run."""


def _blocks(model):
    """The model's stack of transformer blocks: the ModuleList with `num_hidden_layers` entries
    (BERT's `encoder.layer`, Llama/Qwen/Gemma's `layers`)."""
    n = model.config.num_hidden_layers
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"cannot find the {n} transformer blocks of {type(model).__name__}")


def _check_layer(layer) -> float:
    if isinstance(layer, bool) or not isinstance(layer, (int, float)) or not 0.0 <= float(layer) <= 1.0:
        raise ValueError(f"layer must be a fraction of depth in [0, 1] (1.0: the last layer), got {layer!r}")
    return float(layer)


class FeatureExtractor:
    """Pooled hidden states of a frozen model: last real token for decoders, mean for encoders.
    The model is the shared `load_backbone` one: extractors of the same model (any `layer`) share it.

    `layer` is the depth to read, as a fraction of the model's blocks: 1.0 is the last hidden
    state (after the final norm), 0.5 the output of the middle block (hidden_states[round(0.5 *
    n_blocks)]), 0.0 the embeddings. Linear probes on small LMs read facts better from the middle
    than from the last layer (measured on world-facts in notebooks/01: Gemma-3-270M 0.76 test
    accuracy at 0.5 vs 0.69 at 1.0).

    `extract(texts, layers)` reads several depths from one forward pass, and the pass stops at the
    deepest one: hidden_states[k] for k < n_blocks is the input of block k, read by a pre-forward
    hook that then stops the forward, so blocks k..n-1 (and the final norm) never run. The values
    equal `output_hidden_states=True` (tested), at a fraction of the cost for middle layers."""

    def __init__(self, name: str, device: str | None = None, dtype: str | None = None, max_length: int = 256,
                 layer: float = 1.0):
        self.layer = _check_layer(layer)
        self.name = name
        self.model, self.tokenizer, self.pooling = load_backbone(name, device, dtype)
        self.max_length = max_length

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    @property
    def layer_index(self) -> int:
        """Index into `hidden_states` of this extractor's `layer` (0: embeddings, n_blocks: the last)."""
        return self.index_of(self.layer)

    def index_of(self, layer: float) -> int:
        """Index into `hidden_states` of depth `layer`, a fraction of the blocks."""
        return round(_check_layer(layer) * self.model.config.num_hidden_layers)

    def _hidden(self, enc, indices: set[int]) -> dict[int, torch.Tensor]:
        """Hidden states at `indices` (into hidden_states) of one batch, from one truncated pass."""
        n = self.model.config.num_hidden_layers
        out, hooks = {}, []
        deepest = max(indices)
        blocks = _blocks(self.model) if min(indices) < n else None

        def reader(k):
            def hook(module, args, kwargs):
                out[k] = args[0] if args else kwargs["hidden_states"]
                if k == deepest:
                    raise _StopForward
            return hook

        for k in sorted(i for i in indices if i < n):
            hooks.append(blocks[k].register_forward_pre_hook(reader(k), with_kwargs=True))
        try:
            result = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            out[n] = result.last_hidden_state
        except _StopForward:
            pass
        finally:
            for hook in hooks:
                hook.remove()
        return out

    def extract(self, texts: list[str], layers, batch_size: int = 32, progress: bool = False) -> dict:
        """{layer: float32 array (n, dim)} for each depth in `layers`, from one pass over `texts`
        that stops at the deepest. Batches are sorted by length to pad little."""
        layers = sorted({_check_layer(x) for x in layers})
        index = {layer: self.index_of(layer) for layer in layers}
        texts = list(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = {layer: np.zeros((len(texts), self.dim), dtype=np.float32) for layer in layers}
        device = next(self.model.parameters()).device
        batches = range(0, len(texts), batch_size)
        for start in tqdm(batches, desc=f"features {self.name}", disable=not progress):
            idx = order[start:start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt").to(device)
            with torch.inference_mode():
                hidden = self._hidden(enc, set(index.values()))
                for layer in layers:
                    pooled = pool_hidden(hidden[index[layer]], enc["attention_mask"], self.pooling)
                    out[layer][idx] = pooled.float().cpu().numpy()
        return out

    def __call__(self, texts: list[str], batch_size: int = 32, progress: bool = False):
        """Features at this extractor's `layer` for `texts` as a float32 array (n, dim)."""
        return self.extract(texts, [self.layer], batch_size, progress)[self.layer]


def load_feature_extractor(name: str, device: str | None = None, dtype: str | None = None,
                           layer: float = 1.0) -> FeatureExtractor:
    """A `FeatureExtractor` for `name`, reading the hidden state at fraction `layer` of its depth."""
    return FeatureExtractor(name, device, dtype, layer=layer)
