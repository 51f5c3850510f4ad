"""A content-addressed cache for expensive artifacts: weak labels, features, trained heads,
generations.

An entry is addressed by a key: the sha256 of a canonical JSON of what produced it,

    {"kind": "weak_labels", "version": "2", "inputs": {"model": "minilm-l6", "seed": 0, ...}}

so a change of any input, or of `version` (bump it when the code that computes the artifact
changes), gives a new key and a fresh computation; nothing is ever invalidated by hand.

    cache = Cache()
    labels = cache.memo("weak_labels", "2", lambda: teacher.predict(ds), model=name, data=ds, seed=0)

Layout: `<root>/<kind>/<key[:2]>/<key>.<ext>` plus a `<key>.meta.json` sidecar (kind,
version, a repr of each input, created time, size) so entries can be inspected by hand.
The default root is `paths.cache_dir() / "artifacts"`, outside the git tree.

Safety:
- Writes are atomic: the value goes to a temporary file in the same folder, is flushed and
  fsync'ed, and then `os.replace`d onto its final name. A run killed mid-write leaves at
  most a stray `.tmp` file, never a partial entry under the final name, and everything
  cached before the crash stays valid.
- A per-key `filelock.FileLock` makes a second process that wants the same key wait for the
  first and read its result instead of computing it again.
- Shared storage (a cluster's NFS or Lustre home, several jobs on several nodes): correctness
  rests on the atomic rename alone, never on the lock. The lock (`flock`, which Linux maps to
  POSIX byte-range locks on NFS through the lock manager) only saves duplicate work. Where
  locks are unreliable (no lock manager: the call fails; a lock never granted or left behind by
  a vanished node: it times out after `$ALIGNLAB_CACHE_LOCK_TIMEOUT` seconds, default 600), the
  cache warns once and computes without it: two writers of one key each write their own
  temporary file and rename it onto the same name, and either result is a complete, equal
  entry. A reader never sees a partial file. Lock files (`<key>.lock`) are left in place.
- Values are stored in plain formats, never by pickling arbitrary objects:
    numpy array, or dict of str -> array  ->  .npz      (loaded with allow_pickle=False)
    pandas DataFrame                      ->  .parquet  (.pkl when the frame has non-string
                                                         or repeated column names)
    torch tensor, or (nested) dict/list
      of tensors, e.g. a state dict       ->  .pt       (loaded with weights_only=True, on CPU)
    JSON data (dict/list/str/number/bool) ->  .json     (tuples become lists)
  Anything else raises TypeError.
- `memo` returns the value as read back from the cache, on a miss as on a hit, so a cold
  run and a warm run see exactly the same objects (e.g. a tensor is on the CPU either way).

`ALIGNLAB_NO_CACHE=1` runs cold without deleting the cache: nothing stored before is read, as if
the cache were empty, while entries the cold run computes are written (marked with its id in
their sidecar, `paths.cold_run_id`) and read back as usual, by any of its processes (a run that
needs the same features for twelve probes computes them once; a sweep's fifth seed reads the
features its first computed), as a run on an empty cache would. That is how to time a cold run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from filelock import FileLock, Timeout

from alignlab import paths

T = TypeVar("T")

_KIND_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_EXTENSIONS = (".npz", ".parquet", ".pkl", ".pt", ".json")  # value files, in lookup order
_META_SUFFIX = ".meta.json"
_REPR_LIMIT = 200


# -----------------------------------------------------------------------------
# keys

def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(value: Any, name: str) -> Any:
    """Turn an input into JSON data that identifies it; TypeError names unsupported inputs.

    Large values (arrays, tensors, frames) are replaced by a hash of their bytes together
    with their dtype and shape, so two arrays with the same bytes but a different shape or
    dtype get different keys. Objects with a `_fingerprint` (a `datasets.Dataset`) are
    identified by it. Tuples hash like lists; 1 and 1.0 and True are three different inputs.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.generic):
        return _canonical(value.item(), name)
    if isinstance(value, (list, tuple)):
        return [_canonical(item, f"{name}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, item in value.items():
            if not isinstance(k, str):
                raise TypeError(f"cache input {name!r}: dict keys must be str, got {type(k).__name__}")
            out[k] = _canonical(item, f"{name}[{k!r}]")
        return out
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"cache input {name!r}: object arrays cannot be hashed")
        return {
            "__ndarray__": _sha256_bytes(np.ascontiguousarray(value).tobytes()),
            "dtype": value.dtype.str,
            "shape": list(value.shape),
        }
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        return {
            "__tensor__": _sha256_bytes(flat.view(torch.uint8).numpy().tobytes()),
            "dtype": str(value.dtype),
            "shape": list(value.shape),
        }
    if isinstance(value, pd.DataFrame):
        try:
            row_hashes = pd.util.hash_pandas_object(value, index=True).to_numpy()
        except TypeError as error:
            raise TypeError(f"cache input {name!r}: DataFrame cells cannot be hashed ({error})") from None
        return {
            "__dataframe__": _sha256_bytes(row_hashes.tobytes()),
            "columns": [str(c) for c in value.columns],
            "dtypes": [str(d) for d in value.dtypes],
        }
    fingerprint = getattr(value, "_fingerprint", None)
    if fingerprint is not None:
        return {"__fingerprint__": str(fingerprint), "type": type(value).__name__}
    raise TypeError(
        f"cache input {name!r} has unsupported type {type(value).__module__}.{type(value).__qualname__}; "
        "pass JSON data, numpy arrays, torch tensors, DataFrames, or an object with a `_fingerprint`"
    )


def _check_kind(kind: str) -> None:
    if not isinstance(kind, str) or not _KIND_PATTERN.match(kind):
        raise ValueError(
            f"cache kind {kind!r} is not valid: use letters, digits, '_', '-', '.' (it is a folder name)"
        )


# -----------------------------------------------------------------------------
# value formats: each writer takes an open binary file, each reader a path

def _is_array_dict(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) > 0
        and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in value.items())
    )


def _is_tensor_tree(value: Any) -> bool:
    """A tensor, or nested dicts/lists of tensors and plain numbers with at least one tensor."""
    def leaves(node):
        if isinstance(node, dict):
            for item in node.values():
                yield from leaves(item)
        elif isinstance(node, (list, tuple)):
            for item in node:
                yield from leaves(item)
        else:
            yield node

    found_tensor = False
    for leaf in leaves(value):
        if isinstance(leaf, torch.Tensor):
            found_tensor = True
        elif not (leaf is None or isinstance(leaf, (bool, int, float, str))):
            return False
    return found_tensor


def _to_json(value: Any, name: str = "value") -> Any:
    """Validate JSON data, turning numpy scalars into python numbers (tuples into lists)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and not isinstance(value, (np.void, np.object_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_to_json(item, f"{name}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"cannot cache {name}: dict keys must be str to store as JSON")
        return {k: _to_json(item, f"{name}[{k!r}]") for k, item in value.items()}
    raise TypeError(f"cannot cache {name} of type {type(value).__qualname__}")


def _save_npz(f, value) -> None:
    arrays = value if isinstance(value, dict) else {"__array__": value}
    for k, array in arrays.items():
        if array.dtype.hasobject:
            raise TypeError(f"cannot cache object array {k!r} (it would need pickling)")
    np.savez(f, **arrays)


def _load_npz(path: Path):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    if list(arrays) == ["__array__"]:
        return arrays["__array__"]
    return arrays


def _save_parquet(f, value) -> None:
    value.to_parquet(f)


def _load_parquet(path: Path):
    return pd.read_parquet(path)


def _save_pickle(f, value) -> None:
    value.to_pickle(f)  # DataFrames only: see `_format`


def _load_pickle(path: Path):
    return pd.read_pickle(path)


def _save_torch(f, value) -> None:
    torch.save(value, f)


def _load_torch(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _save_json(f, value) -> None:
    f.write(json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8"))


def _load_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _parquet_ok(df) -> bool:
    """Parquet (pyarrow, installed with `datasets`) needs unique string column names."""
    return all(isinstance(c, str) for c in df.columns) and df.columns.is_unique


def _format(value: Any) -> tuple[str, Callable, Any]:
    """(extension, writer, value to write) for a value, or TypeError if it has no format."""
    if isinstance(value, np.ndarray) or _is_array_dict(value):
        return ".npz", _save_npz, value
    if isinstance(value, pd.DataFrame):
        if _parquet_ok(value):
            return ".parquet", _save_parquet, value
        return ".pkl", _save_pickle, value
    if _is_tensor_tree(value):
        return ".pt", _save_torch, value
    try:
        return ".json", _save_json, _to_json(value)
    except TypeError as error:
        raise TypeError(
            f"{error}: the cache stores numpy arrays (or dicts of them), DataFrames, torch "
            "tensors (or state dicts) and JSON data, and never pickles arbitrary objects"
        ) from None


_READERS = {
    ".npz": _load_npz,
    ".parquet": _load_parquet,
    ".pkl": _load_pickle,
    ".pt": _load_torch,
    ".json": _load_json,
}


# -----------------------------------------------------------------------------
# the cache

class Cache:
    """Content-addressed artifact store under `root` (default `paths.cache_dir()/"artifacts"`)."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else paths.cache_dir() / "artifacts"

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    def key(self, kind: str, version: str, **inputs) -> str:
        """sha256 (hex) of the canonical JSON of {kind, version, inputs}, plus the precision and
        device the user forced (`$ALIGNLAB_DTYPE`, `$ALIGNLAB_DEVICE`, when set to other than the
        default): a bf16 run never reads fp32 entries or the reverse. Unset, the key is as before."""
        _check_kind(kind)
        document = {
            "kind": kind,
            "version": str(version),
            "inputs": {name: _canonical(value, name) for name, value in inputs.items()},
        }
        forced = {name: os.environ[name] for name in ("ALIGNLAB_DTYPE", "ALIGNLAB_DEVICE")
                  if os.environ.get(name, "").strip().lower() not in ("", "auto")}
        if forced:
            document["forced"] = forced
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return _sha256_bytes(text.encode("utf-8"))

    def _folder(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2]

    def _find(self, kind: str, key: str) -> Path | None:
        folder = self._folder(kind, key)
        for ext in _EXTENSIONS:
            path = folder / f"{key}{ext}"
            if path.is_file():
                return path
        return None

    def _read(self, kind: str, key: str) -> tuple[bool, Any]:
        """(found, value). An unreadable entry is reported, treated as missing, and rewritten.
        During a cold run, only an entry the same cold run wrote is found."""
        path = self._find(kind, key)
        if path is None or not self._readable_now(kind, key):
            return False, None
        try:
            return True, _READERS[path.suffix](path)
        except Exception as error:  # a damaged file must not stop the run: recompute it
            warnings.warn(f"cache entry {path} is unreadable ({error!r}); recomputing", RuntimeWarning, stacklevel=3)
            return False, None

    def _readable_now(self, kind: str, key: str) -> bool:
        """Outside a cold run, any entry; during one, an entry whose sidecar carries its id."""
        cold = paths.cold_run_id()
        if cold is None:
            return True
        try:
            meta = json.loads((self._folder(kind, key) / f"{key}{_META_SUFFIX}").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return meta.get("cold_run") == cold

    def _write(self, kind: str, version: str, key: str, value: Any, inputs: dict) -> Path:
        ext, writer, payload = _format(value)
        folder = self._folder(kind, key)
        path = folder / f"{key}{ext}"
        paths.atomic_write(path, lambda f: writer(f, payload))
        for other in _EXTENSIONS:  # a recomputed value may have changed format
            if other != ext:
                (folder / f"{key}{other}").unlink(missing_ok=True)
        meta = {
            "kind": kind,
            "version": str(version),
            "key": key,
            "format": ext.lstrip("."),
            "inputs": {name: _short_repr(v) for name, v in inputs.items()},
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "bytes": path.stat().st_size,
        }
        if (cold := paths.cold_run_id()) is not None:
            meta["cold_run"] = cold
        meta_text = json.dumps(meta, indent=1, ensure_ascii=False).encode("utf-8")
        paths.atomic_write(folder / f"{key}{_META_SUFFIX}", lambda f: f.write(meta_text))
        return path

    def lookup(self, kind: str, version: str, **inputs) -> tuple[bool, Any]:
        """(found, value) for (kind, version, inputs), computing and writing nothing; (False,
        None) on a miss, an unreadable entry, or (with `ALIGNLAB_NO_CACHE` set) an entry the
        cold run did not compute."""
        return self._read(kind, self.key(kind, version, **inputs))

    def memo(self, kind: str, version: str, compute: Callable[[], T], **inputs) -> T:
        """The cached value for (kind, version, inputs), computing and storing it on a miss.

        `compute` takes no arguments (close over what it needs); every input that changes
        its result must be passed in `inputs`, and `version` bumped when its code changes.
        Concurrent callers with the same key compute it once: the others wait on a file
        lock and read the stored result.
        """
        key = self.key(kind, version, **inputs)
        found, value = self._read(kind, key)
        if found:
            return value
        folder = self._folder(kind, key)
        folder.mkdir(parents=True, exist_ok=True)
        with _key_lock(folder / f"{key}.lock"):
            found, value = self._read(kind, key)  # another process may have finished it while we waited
            if found:
                return value
            path = self._write(kind, version, key, compute(), inputs)
        return _READERS[path.suffix](path)

    def clear(self, kind: str | None = None) -> int:
        """Delete every entry of `kind` (or the whole cache); returns the number of entries removed."""
        if kind is not None:
            _check_kind(kind)
        targets = [self.root / kind] if kind is not None else self._kind_dirs()
        removed = 0
        for folder in targets:
            if folder.is_dir():
                removed += sum(1 for _ in _value_files(folder))
                shutil.rmtree(folder)
        return removed

    def _kind_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and _KIND_PATTERN.match(p.name))

    def info(self):
        """A DataFrame with one row per kind: kind, entries, bytes (size of the stored values)."""
        rows = []
        for folder in self._kind_dirs():
            files = list(_value_files(folder))
            rows.append({"kind": folder.name, "entries": len(files), "bytes": sum(p.stat().st_size for p in files)})
        return pd.DataFrame(rows, columns=["kind", "entries", "bytes"])


def lock_timeout() -> float:
    """Seconds to wait for another process's lock on a key (`$ALIGNLAB_CACHE_LOCK_TIMEOUT`)."""
    return float(os.environ.get("ALIGNLAB_CACHE_LOCK_TIMEOUT", "600"))


_warned_about_locks = False


@contextlib.contextmanager
def _key_lock(path: Path):
    """Hold the key's file lock if it can be had; otherwise go on without it (see "Shared
    storage" above: the lock only saves duplicate work)."""
    global _warned_about_locks
    lock = FileLock(str(path), timeout=lock_timeout())
    try:
        lock.acquire()
    except (OSError, NotImplementedError, Timeout) as error:
        if not _warned_about_locks:
            _warned_about_locks = True
            warnings.warn(f"cache lock {path} unavailable ({error!r}); computing without it "
                          "(entries stay correct: writes are atomic renames)", RuntimeWarning, stacklevel=4)
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _value_files(folder: Path):
    """The stored values under a kind folder: not sidecars, locks, or temporary files."""
    for path in folder.glob("*/*"):
        name = path.name
        if name.startswith(".") or name.endswith(_META_SUFFIX):
            continue
        if path.suffix in _EXTENSIONS and path.is_file():
            yield path


def _short_repr(value: Any) -> str:
    if isinstance(value, np.ndarray):
        text = f"ndarray(shape={value.shape}, dtype={value.dtype})"
    else:
        fingerprint = getattr(value, "_fingerprint", None)
        text = f"{type(value).__name__}(_fingerprint={fingerprint})" if fingerprint else repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."
