"""The model zoo: names, checksums, the conversion cache's lock, pooling, classifiers, features."""

import gc
import json
import multiprocessing
import os
import subprocess
import sys
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from alignlab import hub
from alignlab.models import load, precision, zoo
from alignlab.testing import tiny_causal_lm, tiny_encoder


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=1.5: False)
    monkeypatch.setattr(hub, "in_hub_cache", lambda repo_id: False)


def test_zoo_imports_without_torch_transformers_or_pandas():
    """The runner checks model names with the zoo before any kernel starts: it must stay cheap."""
    code = ("import sys; from alignlab.models.zoo import check_model_name; check_model_name('gemma3-270m'); "
            "heavy = [m for m in ('torch', 'transformers', 'pandas', 'datasets') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_embedded_names_resolve_without_loading():
    for name in ("minilm-l6", "smollm2-135m", "gemma3-270m"):
        zoo.check_model_name(name)
        assert load.model_kind(name) in ("encoder", "decoder")


def test_unknown_name_lists_embedded_models_and_says_hub_needs_network(offline):
    with pytest.raises(zoo.ModelNotAvailable) as error:
        zoo.check_model_name("smollm-135m")
    message = str(error.value)
    assert "smollm-135m" in message and "network" in message
    for name in zoo.EMBEDDED:
        assert name in message


def test_malformed_name_is_rejected(offline):
    with pytest.raises(zoo.ModelNotAvailable, match="not a hub id"):
        zoo.check_model_name("not a model!!")


def test_local_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(zoo.ModelNotAvailable, match="config.json"):
        zoo.check_model_name(str(tmp_path))


def test_reachable_hub_id_is_accepted(monkeypatch):
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=1.5: True)
    zoo.check_model_name("Qwen/Qwen2.5-7B")


def test_sha256_mismatch_is_a_clear_error(tmp_path):
    path = tmp_path / "weights.gguf"
    path.write_bytes(b"not the pinned weights")
    with pytest.raises(zoo.ChecksumMismatch, match="sha256 mismatch for weights.gguf"):
        zoo.verify_sha256(path, "0" * 64)
    zoo.verify_sha256(path, zoo.sha256_file(path))


def _convert_in_child(cache: str, counter: str):
    import os

    os.environ["ALIGNLAB_CACHE"] = cache
    from alignlab.models import zoo as m

    def slow_convert(spec, target):
        with open(counter, "a") as f:
            f.write("x")
        time.sleep(1.0)
        tmp = Path(str(target) + ".partial")
        tmp.mkdir()
        (tmp / "model.safetensors").write_bytes(b"weights")
        (tmp / "alignlab.json").write_text(json.dumps({"weights_sha256": m.sha256_file(tmp / "model.safetensors")}))
        os.replace(tmp, target)

    m._convert_gguf = slow_convert
    m.embedded_folder("smollm2-135m")


def test_two_processes_converting_at_once_convert_once(tmp_path):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork")
    ctx = multiprocessing.get_context("fork")
    counter = tmp_path / "count"
    procs = [ctx.Process(target=_convert_in_child, args=(str(tmp_path / "cache"), str(counter))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert counter.read_text() == "x"  # the second process waited for the lock and found the model ready
    folder = tmp_path / "cache" / "models" / f"smollm2-135m-v{zoo.CONVERSION_VERSION}"
    assert (folder / "alignlab.json").is_file()


def test_pool_last_reads_the_mask_not_the_pad_id():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    right_padded = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left_padded = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert load.pool_hidden(hidden, right_padded, "last").flatten().tolist() == [1.0, 7.0]
    assert load.pool_hidden(hidden, left_padded, "last").flatten().tolist() == [3.0, 7.0]
    assert load.pool_hidden(hidden, right_padded, "mean").flatten().tolist() == [0.5, 5.5]


def _save_tiny(tmp_path, maker):
    model, tokenizer = maker()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return str(tmp_path)


def test_classifier_is_padding_invariant(tmp_path):
    """The same text gives the same logits alone and padded in a batch (pad = EOS here, which
    also occurs inside the text: pooling by pad id would read the wrong position)."""
    path = _save_tiny(tmp_path, lambda: tiny_causal_lm("llama"))
    clf, tok = load.load_classifier(path, num_labels=3)
    tok.pad_token = tok.eos_token
    texts = ["Q: capital of Peru? A: Lima" + tok.eos_token + " more", "short"]
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        together = clf(batch["input_ids"], batch["attention_mask"])
        alone = clf(**{k: v for k, v in tok(texts[1:], return_tensors="pt").items() if k != "token_type_ids"})
    assert together.shape == (2, 3)
    torch.testing.assert_close(together[1], alone[0], rtol=1e-4, atol=1e-5)


def test_feature_extractor_decoder_and_encoder(tmp_path):
    decoder = load.load_feature_extractor(_save_tiny(tmp_path / "dec", lambda: tiny_causal_lm("gpt2")))
    encoder = load.load_feature_extractor(_save_tiny(tmp_path / "enc", tiny_encoder))
    texts = ["a longer text about the capital of France", "short", "Q: What is O? A: oxygen"]
    for extract, pooling in ((decoder, "last"), (encoder, "mean")):
        assert extract.pooling == pooling
        X = extract(texts, batch_size=2)
        assert X.shape == (3, extract.dim) and X.dtype == np.float32
        np.testing.assert_allclose(X[1], extract(texts[1:2])[0], rtol=1e-4, atol=1e-5)


def test_feature_extractor_reads_the_layer_it_is_asked_for(tmp_path):
    """layer=1.0 is the last hidden state, 0.5 the middle block's output, pooled the same way;
    a layer outside [0, 1] fails before any model loads."""
    path = _save_tiny(tmp_path / "dec", lambda: tiny_causal_lm("llama"))
    texts = ["the capital of France is Paris", "short"]
    last = load.load_feature_extractor(path)
    middle = load.load_feature_extractor(path, layer=0.5)
    n_blocks = middle.model.config.num_hidden_layers
    assert middle.layer_index == round(n_blocks / 2) and last.layer_index == n_blocks
    enc = middle.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = middle.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                              output_hidden_states=True).hidden_states
    expected_middle = load.pool_hidden(hidden[middle.layer_index], enc["attention_mask"], "last").numpy()
    expected_last = load.pool_hidden(hidden[-1], enc["attention_mask"], "last").numpy()
    np.testing.assert_allclose(middle(texts), expected_middle, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(last(texts), expected_last, rtol=1e-4, atol=1e-5)
    assert not np.allclose(middle(texts), last(texts))
    with pytest.raises(ValueError, match="layer must be a fraction of depth"):
        load.load_feature_extractor(path, layer=2)


@pytest.mark.parametrize("family", ["llama", "gpt2", "encoder"])
def test_extract_reads_several_layers_in_one_pass_that_stops_at_the_deepest(tmp_path, family):
    """extract(texts, layers) equals output_hidden_states at every depth, and the blocks above the
    deepest requested one never run (counted by hooks)."""
    build = tiny_encoder if family == "encoder" else (lambda: tiny_causal_lm(family))
    extractor = load.load_feature_extractor(_save_tiny(tmp_path / family, build))
    texts = ["the capital of France is Paris", "short", "Q: What is O? A: oxygen"]
    n_blocks = extractor.model.config.num_hidden_layers
    layers = [0.0, 0.5, 1.0]
    enc = extractor.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = extractor.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                 output_hidden_states=True).hidden_states
    got = extractor.extract(texts, layers, batch_size=2)
    for layer in layers:
        expected = load.pool_hidden(hidden[round(layer * n_blocks)], enc["attention_mask"], extractor.pooling)
        np.testing.assert_allclose(got[layer], expected.numpy(), rtol=1e-4, atol=1e-5)

    ran = []
    blocks = load._blocks(extractor.model)
    hooks = [block.register_forward_hook(lambda m, a, o, k=k: ran.append(k)) for k, block in enumerate(blocks)]
    try:
        extractor.extract(texts, [0.5], batch_size=8)
    finally:
        for hook in hooks:
            hook.remove()
    assert sorted(set(ran)) == list(range(round(0.5 * n_blocks)))  # blocks from the middle up: skipped


def test_cached_features_at_computes_missing_layers_in_one_pass(tmp_path, monkeypatch):
    """A layer sweep reads the cached layers and computes only the missing ones, together; each
    layer's entry is the one `cached_features` reads."""
    from alignlab.training import w2s

    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    path = _save_tiny(tmp_path / "dec", lambda: tiny_causal_lm("llama"))
    texts = ["the capital of France is Paris", "short"]
    calls = []
    real = load.FeatureExtractor.extract

    def counting(self, texts, layers, **kwargs):
        calls.append(sorted(layers))
        return real(self, texts, layers, **kwargs)

    monkeypatch.setattr(load.FeatureExtractor, "extract", counting)
    middle = w2s.cached_features(path, texts, layer=0.5)
    sweep = w2s.cached_features_at(path, texts, [0.25, 0.5, 1.0])
    assert calls == [[0.5], [0.25, 1.0]]
    np.testing.assert_array_equal(sweep[0.5], middle)
    np.testing.assert_array_equal(w2s.cached_features(path, texts, layer=1.0), sweep[1.0])
    assert calls == [[0.5], [0.25, 1.0]]


def test_dtype_choice_and_override(monkeypatch):
    assert load.pick_dtype("cpu") == torch.float32
    assert load.pick_dtype("cpu", "bf16") == torch.bfloat16
    monkeypatch.setenv("ALIGNLAB_DTYPE", "bfloat16")
    assert load.pick_dtype("cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype 'int3'"):
        load.pick_dtype("cpu", "int3")


def test_use_dtype_fast_picks_bf16_only_where_the_hardware_computes_it(monkeypatch):
    # setenv, not delenv: monkeypatch restores a variable's absence only after a setenv, and
    # use_dtype sets it (it must not leak into later tests); empty counts as unset
    monkeypatch.setenv("ALIGNLAB_DTYPE", "")
    monkeypatch.setattr(precision, "computes_bf16", lambda device=None: False)
    assert precision.use_dtype("fast") == "auto" and not os.environ["ALIGNLAB_DTYPE"]
    assert load.pick_dtype("cpu") == torch.float32
    monkeypatch.setattr(precision, "computes_bf16", lambda device=None: True)
    assert precision.use_dtype("fast") == "bfloat16" and load.pick_dtype("cpu") == torch.bfloat16


def test_use_dtype_fast_keeps_the_callers_choice_and_a_named_dtype_wins(monkeypatch):
    monkeypatch.setenv("ALIGNLAB_DTYPE", "float32")
    monkeypatch.setattr(precision, "computes_bf16", lambda device=None: True)
    assert precision.use_dtype("fast") == "float32"
    assert precision.use_dtype("bf16") == "bf16" and load.pick_dtype("cpu") == torch.bfloat16
    assert precision.use_dtype("auto") == "bf16"  # auto changes nothing
    with pytest.raises(ValueError, match="unknown dtype 'half'.*fast"):
        precision.use_dtype("half")


def test_computes_bf16_reads_the_cpu_flags(monkeypatch, tmp_path):
    monkeypatch.delenv("ALIGNLAB_DEVICE", raising=False)
    assert precision.computes_bf16("mps") is False
    real_open = open

    def fake_cpuinfo(flags):
        def opener(path, *args, **kwargs):
            if path == "/proc/cpuinfo":
                (tmp_path / "cpuinfo").write_text(f"processor : 0\nflags\t\t: fpu sse2 {flags}\n")
                return real_open(tmp_path / "cpuinfo", *args, **kwargs)
            return real_open(path, *args, **kwargs)
        return opener

    monkeypatch.setattr("builtins.open", fake_cpuinfo("avx2 avx512f avx512_bf16"))
    assert precision.computes_bf16("cpu") is True
    monkeypatch.setattr("builtins.open", fake_cpuinfo("avx2 avx512f"))
    assert precision.computes_bf16("cpu") is False


def test_encoder_has_no_causal_lm():
    with pytest.raises(zoo.ModelNotAvailable, match="encoder"):
        load.load_causal_lm("minilm-l6")


def test_list_models_columns():
    table = zoo.list_models()
    assert list(table["name"]) == ["minilm-l6", "smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b",
                                   "qwen2.5-coder-1.5b"]
    assert {"params", "license", "package", "extra", "installed", "cached"} <= set(table.columns)
    assert table.set_index("name").loc["qwen2.5-coder-1.5b", "license"].startswith("Apache-2.0 (upstream")


@pytest.mark.slow
def test_embedded_smollm2_loads_and_knows_a_capital():
    """The real converted model (converted on first use, sha256 checked) ranks Paris first."""
    from alignlab.lm.scoring import score_pairs

    model, tokenizer = load.load_causal_lm("smollm2-135m")
    pairs = [("The capital of France is", city) for city in (" Paris", " Lima", " Oslo")]
    assert score_pairs(model, tokenizer, pairs).sum.argmax() == 0


# --------------------------------------------------------------------------------------------
# The registry: one shared copy per (resolved name, device, dtype, kind of head)


@pytest.fixture
def registry():
    load.release()
    yield load
    load.release()


def test_shared_loads_return_the_same_objects(tmp_path, registry):
    path = _save_tiny(tmp_path / "dec", lambda: tiny_causal_lm("llama"))
    model, tokenizer = load.load_causal_lm(path)
    assert not model.training
    again, again_tok = load.load_causal_lm(str(tmp_path / "dec" / ".." / "dec"), device="cpu", dtype="fp32")
    assert again is model and again_tok is tokenizer
    backbone, _, pooling = load.load_backbone(path)
    assert backbone is model.base_model and pooling == "last"  # a decoder's backbone: no second copy
    assert load.load_feature_extractor(path).model is backbone
    assert load.load_feature_extractor(path, layer=0.5).model is backbone
    assert load.load_causal_lm(path, fresh=True)[0] is not model
    assert len(load.loaded()) == 1


def test_a_held_backbone_keeps_its_causal_lm(tmp_path, registry):
    """Features first, then scoring, with the registry's hold gone in between: still one copy."""
    path = _save_tiny(tmp_path / "dec", lambda: tiny_causal_lm("llama"))
    extractor = load.load_feature_extractor(path)
    load.release()
    model, _ = load.load_causal_lm(path)
    assert model.base_model is extractor.model and len(load.loaded()) == 1
    assert "_alignlab_causal_lm" not in dict(extractor.model.named_modules())  # not a submodule


def test_release_frees_the_model_and_the_next_call_loads_again(tmp_path, registry):
    path = _save_tiny(tmp_path / "dec", lambda: tiny_causal_lm("llama"))
    other = _save_tiny(tmp_path / "enc", tiny_encoder)
    model, _ = load.load_causal_lm(path)
    kept = load.load_backbone(other)[0]
    ref = weakref.ref(model)
    del model
    load.release(path)
    assert ref() is None
    assert load.load_backbone(other)[0] is kept  # releasing one model leaves the others
    reloaded, _ = load.load_causal_lm(path)
    assert reloaded is not None and len(load.loaded()) == 2
    refs = [weakref.ref(reloaded), weakref.ref(kept)]
    del reloaded, kept
    load.release()
    assert [r() for r in refs] == [None, None] and load.loaded() == []


def test_a_released_model_still_in_use_is_not_loaded_twice(tmp_path, registry):
    path = _save_tiny(tmp_path / "dec", lambda: tiny_causal_lm("gpt2"))
    model, _ = load.load_causal_lm(path)
    load.release(path)
    assert load.load_causal_lm(path)[0] is model


def test_only_the_most_recent_models_stay_held(tmp_path, registry, monkeypatch):
    monkeypatch.setattr(load, "MAX_HELD", 1)
    first = _save_tiny(tmp_path / "a", lambda: tiny_causal_lm("llama"))
    second = _save_tiny(tmp_path / "b", lambda: tiny_causal_lm("gpt2"))
    ref = weakref.ref(load.load_causal_lm(first)[0])
    held = load.load_causal_lm(second)[0]
    gc.collect()
    assert ref() is None and load.load_causal_lm(second)[0] is held


def test_classifiers_are_never_shared(tmp_path, registry):
    path = _save_tiny(tmp_path / "dec", lambda: tiny_causal_lm("llama"))
    shared = load.load_backbone(path)[0]
    a, _ = load.load_classifier(path)
    b, _ = load.load_classifier(path)
    assert a is not b and a.backbone is not b.backbone
    assert shared not in (a.backbone, b.backbone)
    assert len(load.loaded()) == 1
