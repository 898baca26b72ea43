"""Gemma 4, MiMo-V2-Flash and Gemma 3n: per-layer-type sizes and cross-layer KV sharing, whole models.

Expected values are closed forms written here from transformers 5.25's modules and the published configs
(tests/data/configs, sources in its README):

- Gemma4TextAttention (modeling_gemma4.py): per layer ``layer_config.head_dim`` and ``num_key_value_heads``
  (Gemma4TextConfig.__post_init__: full layers get ``global_head_dim`` and, with ``attention_k_eq_v``,
  ``num_global_key_value_heads``); full layers with ``attention_k_eq_v`` have no ``v_proj`` (values = the
  key projection through ``v_norm``); q_norm and k_norm RMSNorm(head_dim), v_norm without weight. Its cache
  keeps K and V both (``cache.update(key_states, value_states)``): 2 x G x d per token.
- MiMoV2FlashAttention: q/k of head_dim (192), v of v_head_dim (128), o_proj H*128 -> E, no bias; sliding
  layers 2 x num_key_value_heads K/V heads and ``sinks`` (H); window sliding_window_size + 1.
- Gemma3nTextAttention: the last num_kv_shared_layers (15) layers have no k_proj, v_proj, k_norm (``reuse``)
  and their cache layer is a dummy; they compute over the keys of the last earlier layer of their type.

The cache of a sliding layer after a step keeps W - 1 tokens (DynamicSlidingWindowLayer); a decode step of a
sliding layer computes over W keys (the kept W - 1 and the new one). The attention core of a shared layer
computes over the keys its source layer computed over.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path("tests/data/configs")
B2 = 2  # bfloat16 bytes


def text(folder: str) -> dict[str, Any]:
    top = json.loads((DATA / folder / "config.json").read_text())
    return top.get("text_config", top)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- closed forms written here
def layers_of(folder: str) -> list[dict[str, Any]]:
    """Each layer: E, H, G, d, d_v, window, K=V, shared, qk-norm weights, sinks (from the published config and
    the modules' rules above)."""
    c = text(folder)
    e, h, n = c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"]
    types = c["layer_types"] if "layer_types" in c else [
        "full_attention" if i == 0 or (i + 1) % 6 == 0 else "sliding_attention" for i in range(n)]
    out = []
    shared_from = n - c.get("num_kv_shared_layers", 0)
    for i, t in enumerate(types):
        sliding = t == "sliding_attention"
        if c["model_type"] == "gemma4_text":
            full_kv = c["num_global_key_value_heads"] if c["attention_k_eq_v"] else c["num_key_value_heads"]
            g = c["num_key_value_heads"] if sliding else full_kv
            d = c["head_dim"] if sliding else c["global_head_dim"]
            layer = dict(g=g, d=d, dv=d, kv=not (c["attention_k_eq_v"] and not sliding), w=c["sliding_window"],
                         norm=True, sinks=0)
        elif c["model_type"] == "gemma3n_text":
            layer = dict(g=c["num_key_value_heads"], d=c["head_dim"], dv=c["head_dim"], kv=True,
                         w=c["sliding_window"], norm=True, sinks=0)
        else:  # mimo_v2_flash
            layer = dict(g=c["num_key_value_heads"] * (2 if sliding else 1), d=c["head_dim"], dv=c["v_head_dim"],
                         kv=True, w=c["sliding_window_size"] + 1, norm=False, sinks=h if sliding else 0)
        out.append(dict(layer, e=e, h=h, sliding=sliding, shared=i >= shared_from))
    return out


def expected(folder: str, seq: int, cache: int, tp: int = 1) -> dict[str, int]:
    """Dense and effective MACs, params and KV bytes after the step, summed over the layers (one device of tp)."""
    s = seq + cache
    tot = dict(dense=0, effective=0, params=0, kv=0)
    for y in layers_of(folder):
        h, g = y["h"] // tp, max(1, y["g"] // tp)
        e, d, dv = y["e"], y["d"], y["dv"]
        w = y["w"] if y["sliding"] else None
        kept = cache if w is None else min(cache, w - 1)
        keys = kept + seq if cache else s  # what the kernel computes over
        # visible pairs, query by query (query at position p sees keys p - W < k <= p)
        visible = sum(min(p + 1, w) if w else p + 1 for p in range(s - seq, s))
        kv_proj = 0 if y["shared"] else seq * e * g * d + (seq * e * g * dv if y["kv"] else 0)
        proj = seq * e * h * d + kv_proj + seq * h * dv * e
        tot["dense"] += proj + seq * keys * h * (d + dv)
        tot["effective"] += proj + visible * h * (d + dv)
        params = e * h * d + h * dv * e + y["sinks"] // tp
        if not y["shared"]:
            params += e * g * d + (e * g * dv if y["kv"] else 0)
        if y["norm"]:
            params += d + (0 if y["shared"] else d)
        tot["params"] += params
        cached = s if w is None else min(s, w - 1)
        tot["kv"] += 0 if y["shared"] else cached * g * (d + dv) * B2
    return tot


def run_model(cli: Any, folder: str | Path, *args: str) -> dict[str, Any]:
    r = cli("model", "--config", str(folder if isinstance(folder, Path) else DATA / folder), "-f", "json", *args)
    assert r.code == 0, r.err
    return r.json()  # type: ignore[no-any-return]


FOLDERS = ["gemma-4-31b-it", "mimo-v2-flash", "gemma-3n-e4b"]
STEPS = [(8192, 0), (1, 131_071)]


@pytest.mark.parametrize("folder", FOLDERS)
@pytest.mark.parametrize(("seq", "cache"), STEPS)
def test_model_totals_are_the_per_layer_closed_forms(cli: Any, folder: str, seq: int, cache: int) -> None:
    doc = run_model(cli, folder, "--seq", str(seq), "--cache", str(cache), "--tp", "8")
    want, tot = expected(folder, seq, cache), doc["totals"]
    assert (tot["fvcore_flops"], tot["effective_fvcore_flops"], tot["params"], tot["kv_cache_bytes"]) == (
        want["dense"], want["effective"], want["params"], want["kv"])
    assert doc["cross_checks"]["agree"], doc["cross_checks"]
    dev, want8 = doc["per_device"], expected(folder, seq, cache, tp=8)
    assert (dev["fvcore_flops"], dev["effective_fvcore_flops"], dev["params"], dev["kv_cache_bytes"]) == (
        want8["dense"], want8["effective"], want8["params"], want8["kv"])


def test_gemma_3n_targets_measured_on_transformers_modules(cli: Any) -> None:
    """Gemma 3n E4B, bf16, from transformers' own modules: 4 full x 131,072 + 16 sliding x 511 tokens of
    2 x 2 x 256 x 2 B; 20 layers with k/v projections and 15 without."""
    decode = run_model(cli, "gemma-3n-e4b", "--seq", "1", "--cache", "131071")["totals"]
    assert decode["kv_cache_bytes"] == 1_090_486_272
    prefill = run_model(cli, "gemma-3n-e4b", "--seq", "8192")["totals"]
    assert prefill["fvcore_flops"] == 12_369_505_812_480
    assert prefill["params"] == 335_558_400


def test_schedule_json_names_each_layers_sizes_and_source(cli: Any) -> None:
    doc = run_model(cli, "gemma-3n-e4b", "--seq", "16")
    layers = doc["layers"]
    # NOTE: Gemma3nTextConfig.kv_sharing_modes: layers 20..34 reuse layer 18 (sliding) or 19 (full)
    assert [x.get("kv_source") for x in layers[:20]] == [None] * 20
    assert [x["kv_source"] for x in layers[20:]] == [19 if x["layer_type"] == "full_attention" else 18
                                                     for x in layers[20:]]
    gemma4 = run_model(cli, "gemma-4-31b-it", "--seq", "16")
    full = next(x for x in gemma4["layers"] if x["layer_type"] == "full_attention")
    assert full["sizes"] == {"kv_heads": 4, "d_head": 512, "k_eq_v": True}
    labels = [g["label"] for g in gemma4["groups"]]
    assert labels == ["sliding (W 1024) [G 16, d 256]", "full [G 4, d 512, K=V]"]


def test_layer_n_describes_that_layer(cli: Any) -> None:
    r = cli("flops", "--config", str(DATA / "gemma-4-31b-it"), "--layer", "5", "--seq", "16", "-f", "json")
    assert r.code == 0, r.err
    cfg = r.json()["config"]
    assert (cfg["kv_heads"], cfg["head_dim"], cfg["k_eq_v"]) == (4, 512, True)
    r = cli("flops", "--config", str(DATA / "gemma-3n-e4b"), "--layer", "30", "--seq", "16", "-f", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["config"]["kv_shared"] is True
    r = cli("flops", "--config", str(DATA / "mimo-v2-flash"), "--layer", "1", "--seq", "16", "-f", "json")
    assert r.code == 0, r.err
    cfg = r.json()["config"]
    assert (cfg["kv_heads"], cfg["head_dim"], cfg["d_head_v"], cfg["sinks"], cfg["window"]) == (8, 192, 128, True, 129)


def _write(tmp_path: Path, folder: str, **changes: Any) -> Path:
    top = json.loads((DATA / folder / "config.json").read_text())
    top.get("text_config", top).update(changes)
    out = tmp_path / folder
    out.mkdir()
    (out / "config.json").write_text(json.dumps(top))
    return out


@pytest.mark.parametrize(("folder", "field", "value"), [
    ("mimo-v2-flash", "swa_num_key_value_heads", 4),
    ("mimo-v2-flash", "add_full_attention_sink_bias", True),
    ("mimo-v2-flash", "hybrid_layer_pattern", [1] * 48),
    ("gemma-3n-e4b", "num_kv_shared_layers", 35),
])
def test_what_transformers_would_not_build_is_refused_naming_the_field(cli: Any, tmp_path: Path, folder: str,
                                                                       field: str, value: Any) -> None:
    path = _write(tmp_path, folder, **{field: value})
    r = cli("model", "--config", str(path), "--seq", "16")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and field in r.err, r.err


def test_engine_view_skips_shared_layers_and_refuses_k_eq_v(cli: Any) -> None:
    r = cli("model", "--config", str(DATA / "gemma-3n-e4b"), "--seq", "1", "--engine", "vllm", "--max-model-len",
            "32768", "--kv-cache-memory", "40GiB", "-f", "json")
    assert r.code == 0, r.err
    engine = r.json()["engine"]
    layers = sorted(i for g in engine["groups"] for i in g["layers"])
    assert layers == list(range(20))  # NOTE: vLLM allocates no pages for kv_sharing_target_layer_name layers
    # 16 sliding + 4 full layers, one page of 64 tokens x 2 K/V heads x (256 + 256) x 2 B each
    assert engine["bytes_per_block"] == 4 * 64 * 2 * 512 * 2
    r = cli("model", "--config", str(DATA / "gemma-4-31b-it"), "--seq", "1", "--engine", "vllm")
    assert r.code == 2 and "--engine" in r.err, r.err
