"""Tests for alignlab.cache: keys, round-trips, atomicity, and concurrent processes."""

import json
import multiprocessing
import os
import time

import numpy as np
import pandas as pd
import pytest

from alignlab import cache as cache_module
from alignlab.cache import Cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "user-cache"))
    monkeypatch.delenv("ALIGNLAB_NO_CACHE", raising=False)
    return Cache()


class Counter:
    """A compute function that counts its calls."""

    def __init__(self, value):
        self.value = value
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.value


def test_default_root_is_under_the_user_cache(cache, tmp_path):
    assert cache.root == tmp_path / "user-cache" / "artifacts"


def test_memo_computes_once(cache):
    compute = Counter({"acc": 0.8, "n": 3})
    first = cache.memo("metrics", "1", compute, model="minilm-l6", seed=0)
    second = cache.memo("metrics", "1", compute, model="minilm-l6", seed=0)
    assert compute.calls == 1
    assert first == second == {"acc": 0.8, "n": 3}


def test_lookup_reads_without_computing_or_writing(cache, monkeypatch):
    assert cache.lookup("generation", "1", prompt="Q: a") == (False, None)
    assert not (cache.root / "generation").exists()  # a miss writes nothing, not even a lock
    cache.memo("generation", "1", lambda: "Paris", prompt="Q: a")
    assert cache.lookup("generation", "1", prompt="Q: a") == (True, "Paris")
    assert cache.lookup("generation", "2", prompt="Q: a") == (False, None)
    monkeypatch.setenv("ALIGNLAB_NO_CACHE", "1")
    assert cache.lookup("generation", "1", prompt="Q: a") == (False, None)


def test_memo_layout_and_sidecar(cache):
    cache.memo("metrics", "1", lambda: [1, 2], seed=0, data=np.arange(3))
    key = cache.key("metrics", "1", seed=0, data=np.arange(3))
    folder = cache.root / "metrics" / key[:2]
    assert (folder / f"{key}.json").is_file()
    meta = json.loads((folder / f"{key}.meta.json").read_text())
    assert meta["kind"] == "metrics" and meta["version"] == "1" and meta["key"] == key
    assert meta["inputs"]["seed"] == "0"
    assert "shape=(3,)" in meta["inputs"]["data"]
    assert meta["bytes"] == (folder / f"{key}.json").stat().st_size
    assert "created" in meta


def test_key_changes_with_every_input_and_version(cache):
    base = dict(model="gpt2", lr=1e-3, layers=[1, 2], cfg={"a": 1}, flag=True, none=None)
    reference = cache.key("heads", "1", **base)
    assert cache.key("heads", "1", **base) == reference  # stable
    assert cache.key("heads", "1", **dict(reversed(base.items()))) == reference  # order-free
    assert cache.key("heads", "2", **base) != reference
    assert cache.key("labels", "1", **base) != reference
    variants = [
        dict(model="gpt2-large"),
        dict(lr=2e-3),
        dict(layers=[2, 1]),
        dict(cfg={"a": 2}),
        dict(flag=False),
        dict(none=0),
        dict(extra=1),
    ]
    keys = {cache.key("heads", "1", **{**base, **change}) for change in variants}
    assert reference not in keys and len(keys) == len(variants)


def test_key_of_arrays_uses_bytes_dtype_and_shape(cache):
    a = np.arange(6, dtype=np.int64)
    assert cache.key("k", "1", x=a) == cache.key("k", "1", x=a.copy())
    assert cache.key("k", "1", x=a) != cache.key("k", "1", x=a.reshape(2, 3))
    assert cache.key("k", "1", x=a) != cache.key("k", "1", x=a.astype(np.int32))
    b = a.copy()
    b[0] = 100
    assert cache.key("k", "1", x=a) != cache.key("k", "1", x=b)
    # a non-contiguous view hashes like its contiguous copy
    m = np.arange(12).reshape(3, 4)
    assert cache.key("k", "1", x=m.T) == cache.key("k", "1", x=np.ascontiguousarray(m.T))


def test_key_of_fingerprinted_objects_tensors_and_frames(cache):
    torch = pytest.importorskip("torch")

    class FakeDataset:
        def __init__(self, fingerprint):
            self._fingerprint = fingerprint

    assert cache.key("k", "1", ds=FakeDataset("abc")) == cache.key("k", "1", ds=FakeDataset("abc"))
    assert cache.key("k", "1", ds=FakeDataset("abc")) != cache.key("k", "1", ds=FakeDataset("abd"))
    t = torch.arange(4.0)
    assert cache.key("k", "1", t=t) == cache.key("k", "1", t=t.clone())
    assert cache.key("k", "1", t=t) != cache.key("k", "1", t=t + 1)
    assert cache.key("k", "1", t=torch.zeros(2, dtype=torch.bfloat16)) != cache.key("k", "1", t=torch.zeros(1))
    df = pd.DataFrame({"a": [1, 2]})
    assert cache.key("k", "1", df=df) == cache.key("k", "1", df=df.copy())
    assert cache.key("k", "1", df=df) != cache.key("k", "1", df=df.assign(a=[1, 3]))


def test_unsupported_input_type_names_the_input(cache):
    with pytest.raises(TypeError, match="'weird'"):
        cache.key("k", "1", weird=object())
    with pytest.raises(TypeError, match=r"cfg\['opt'\]"):
        cache.key("k", "1", cfg={"opt": {1, 2}})
    with pytest.raises(ValueError, match="kind"):
        cache.key("../escape", "1")


def test_unsupported_value_type_is_refused_not_pickled(cache):
    class Model:
        pass

    with pytest.raises(TypeError, match="never pickles"):
        cache.memo("k", "1", Model, seed=0)
    with pytest.raises(TypeError):
        cache.memo("k", "1", lambda: {"probs": np.zeros(2), "acc": 0.5}, seed=1)  # mixed dict
    assert cache.info()["entries"].sum() == 0


def test_roundtrip_numpy_and_dict_of_arrays(cache):
    array = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    got = cache.memo("feats", "1", lambda: array, seed=0)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_array_equal(got, array)
    np.testing.assert_array_equal(cache.memo("feats", "1", Counter(None), seed=0), array)

    arrays = {"x": np.arange(5), "y": np.array([True, False])}
    got = cache.memo("feats", "1", lambda: arrays, seed=1)
    assert set(got) == {"x", "y"}
    np.testing.assert_array_equal(got["x"], arrays["x"])
    assert got["y"].dtype == bool


def test_roundtrip_dataframe(cache):
    df = pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 1], "p": [0.1, 0.9, 0.7]})
    got = cache.memo("labels", "1", lambda: df, seed=0)
    pd.testing.assert_frame_equal(got, df)
    numbered = pd.DataFrame({0: [1.0], 1: [2.0]})  # non-string columns: stored as pickle
    pd.testing.assert_frame_equal(cache.memo("labels", "1", lambda: numbered, seed=1), numbered)


def test_roundtrip_torch_tensor_and_state_dict(cache):
    torch = pytest.importorskip("torch")
    layer = torch.nn.Linear(3, 2)
    state = layer.state_dict()
    got = cache.memo("heads", "1", lambda: state, seed=0)
    assert set(got) == {"weight", "bias"}
    assert torch.equal(got["weight"], state["weight"])
    tensor = torch.arange(6, dtype=torch.bfloat16)
    assert torch.equal(cache.memo("heads", "1", lambda: tensor, seed=1), tensor)
    mixed = {"state": state, "step": 10}
    assert cache.memo("heads", "1", lambda: mixed, seed=2)["step"] == 10


def test_roundtrip_json_values(cache):
    value = {"acc": np.float64(0.8), "n": np.int64(3), "names": ("a", "b"), "nan": float("nan")}
    got = cache.memo("metrics", "1", lambda: value, seed=0)
    assert got["acc"] == 0.8 and got["n"] == 3 and got["names"] == ["a", "b"]
    assert np.isnan(got["nan"])
    assert cache.memo("metrics", "1", lambda: "hello", seed=1) == "hello"
    assert cache.memo("metrics", "1", lambda: 7, seed=2) == 7


def test_crash_mid_write_leaves_no_entry_and_next_memo_recomputes(cache, monkeypatch):
    def crashing_save(f, value):
        f.write(b"PK\x03\x04 half an npz")
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(cache_module, "_save_npz", crashing_save)
    compute = Counter(np.arange(10))
    with pytest.raises(RuntimeError, match="killed"):
        cache.memo("feats", "1", compute, seed=0)
    key = cache.key("feats", "1", seed=0)
    folder = cache.root / "feats" / key[:2]
    assert not (folder / f"{key}.npz").exists()
    assert not list(folder.glob("*.tmp"))  # the temporary file is cleaned up too
    assert cache.info()["entries"].sum() == 0

    monkeypatch.undo()
    monkeypatch.delenv("ALIGNLAB_NO_CACHE", raising=False)
    np.testing.assert_array_equal(cache.memo("feats", "1", compute, seed=0), np.arange(10))
    assert compute.calls == 2


def test_corrupted_entry_is_recomputed_with_a_warning(cache):
    compute = Counter([1, 2, 3])
    cache.memo("k", "1", compute, seed=0)
    key = cache.key("k", "1", seed=0)
    (cache.root / "k" / key[:2] / f"{key}.json").write_text("{not json")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert cache.memo("k", "1", compute, seed=0) == [1, 2, 3]
    assert compute.calls == 2


def test_no_cache_env_runs_cold_computing_each_entry_once(cache, monkeypatch):
    compute = Counter([1])
    cache.memo("k", "1", compute, seed=0)
    monkeypatch.setenv("ALIGNLAB_NO_CACHE", "1")
    assert cache.lookup("k", "1", seed=0) == (False, None)  # stored before the cold run: not read
    cold = os.environ["ALIGNLAB_NO_CACHE"]
    assert cold.startswith("run:")  # pinned, so that the processes it starts share the cold run
    cache.memo("k", "1", compute, seed=0)
    assert compute.calls == 2
    cache.memo("k", "1", compute, seed=0)  # computed by this cold run: read back, as on an empty cache
    assert compute.calls == 2
    assert cache.lookup("k", "1", seed=0) == (True, [1])
    assert Cache(cache.root).lookup("k", "1", seed=0) == (True, [1])  # another process of the same run
    monkeypatch.setenv("ALIGNLAB_NO_CACHE", "1")  # a new cold run reads nothing of the last one
    assert cache.lookup("k", "1", seed=0) == (False, None)
    assert os.environ["ALIGNLAB_NO_CACHE"] not in (cold, "1")
    monkeypatch.delenv("ALIGNLAB_NO_CACHE")
    cache.memo("k", "1", compute, seed=0)
    assert compute.calls == 2
    assert cache.info()["entries"].sum() == 1


def test_a_cold_run_is_pinned_before_its_first_kernel_starts(monkeypatch, tmp_path):
    from alignlab.run.execute import kernel_environment

    monkeypatch.setenv("ALIGNLAB_NO_CACHE", "yes")
    first = kernel_environment("00_overview", tmp_path)
    cold = os.environ["ALIGNLAB_NO_CACHE"]
    assert cold.startswith("run:") and "ALIGNLAB_NO_CACHE" not in first  # the kernel inherits it
    kernel_environment("01_w2sg_ensembles", tmp_path)
    assert os.environ["ALIGNLAB_NO_CACHE"] == cold  # every kernel of one run shares it
    monkeypatch.setenv("ALIGNLAB_NO_CACHE", "0")
    kernel_environment("00_overview", tmp_path)
    assert os.environ["ALIGNLAB_NO_CACHE"] == "0"  # not a cold run: left as it is


def test_info_and_clear(cache):
    assert list(cache.info().columns) == ["kind", "entries", "bytes"] and cache.info().empty
    cache.memo("a", "1", lambda: [1], seed=0)
    cache.memo("a", "1", lambda: [2], seed=1)
    cache.memo("b", "1", lambda: np.zeros(100), seed=0)
    info = cache.info().set_index("kind")
    assert info.loc["a", "entries"] == 2 and info.loc["b", "entries"] == 1
    assert info.loc["b", "bytes"] > 800
    assert cache.clear("a") == 2
    assert list(cache.info()["kind"]) == ["b"]
    assert cache.clear() == 1
    assert cache.info().empty


def _race_worker(root, counter_file, start, results, index):
    """Compute the same key as the other worker; the compute logs one line per call."""

    def compute():
        with open(counter_file, "a") as f:
            f.write("computed\n")
        time.sleep(0.5)  # long enough that an unlocked second worker would also compute
        return {"value": 42}

    start.wait()
    results[index] = Cache(root).memo("race", "1", compute, seed=0)["value"]


def test_two_processes_racing_on_one_key_compute_once(tmp_path):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs the fork start method")
    context = multiprocessing.get_context("fork")
    counter_file = tmp_path / "calls.txt"
    start = context.Event()
    results = context.Array("i", [0, 0])
    workers = [
        context.Process(target=_race_worker, args=(tmp_path / "c", counter_file, start, results, i))
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert counter_file.read_text().count("computed") == 1
    assert list(results) == [42, 42]


def _write_then_hang(root, written):
    """Store one entry, then start a second whose write stalls halfway (to be SIGKILLed)."""

    def stalling_save(f, value):
        f.write(b"PK\x03\x04 half an npz")
        f.flush()
        written.set()
        time.sleep(60)

    cache = Cache(root)
    cache.memo("feats", "1", lambda: np.ones(3), seed=0)
    cache_module._save_npz = stalling_save  # only in this child process
    cache.memo("feats", "1", lambda: np.ones(3), seed=1)


def test_killed_run_loses_nothing_and_releases_its_lock(tmp_path):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs the fork start method")
    from filelock import FileLock

    context = multiprocessing.get_context("fork")
    written = context.Event()
    child = context.Process(target=_write_then_hang, args=(tmp_path, written))
    child.start()
    assert written.wait(timeout=30)
    child.kill()  # SIGKILL in the middle of the second write
    child.join(timeout=30)

    cache = Cache(tmp_path)
    key = cache.key("feats", "1", seed=1)
    folder = cache.root / "feats" / key[:2]
    assert not (folder / f"{key}.npz").exists()  # at most a stray .tmp, never a partial entry
    lock = FileLock(str(folder / f"{key}.lock"), timeout=5)
    lock.acquire()  # would time out if the dead process still held it; the OS released it
    lock.release()
    kept = Counter(None)
    np.testing.assert_array_equal(cache.memo("feats", "1", kept, seed=0), np.ones(3))
    assert kept.calls == 0  # the entry stored before the crash is intact
    np.testing.assert_array_equal(cache.memo("feats", "1", lambda: np.zeros(3), seed=1), np.zeros(3))
    assert cache.info()["entries"].sum() == 2


def test_a_forced_precision_or_device_gets_its_own_entries(tmp_path, monkeypatch):
    """bf16 results never answer an fp32 lookup (or the reverse); unset, keys are unchanged."""
    from alignlab.cache import Cache

    cache = Cache(tmp_path)
    monkeypatch.delenv("ALIGNLAB_DTYPE", raising=False)
    monkeypatch.delenv("ALIGNLAB_DEVICE", raising=False)
    default = cache.key("scores", "1", x=1)
    monkeypatch.setenv("ALIGNLAB_DTYPE", "auto")
    assert cache.key("scores", "1", x=1) == default
    monkeypatch.setenv("ALIGNLAB_DTYPE", "bfloat16")
    bf16 = cache.key("scores", "1", x=1)
    monkeypatch.setenv("ALIGNLAB_DEVICE", "cuda")
    assert len({default, bf16, cache.key("scores", "1", x=1)}) == 3
