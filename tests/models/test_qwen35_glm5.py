"""Qwen3.5 (``qwen3_5``: Gated DeltaNet and gated full attention, 3:1) and GLM-5 (``glm_moe_dsa``: MLA with
the lightning indexer on every layer), whole models through ``attncli model --format json``.

Expected values:

- the published configs (tests/data/configs/qwen3.5-27b and glm-5, sources in tests/data/configs/README.md)
  and closed forms written here from transformers 5.25's modules: ``Qwen3_5Attention`` (q_proj E x 2Hd for
  the query and its sigmoid gate, k/v_proj E x Gd, o_proj Hd x E, q_norm/k_norm d each),
  ``Qwen3_5GatedDeltaNet`` (in_proj_qkv E x (2 HK DK + HV DV), in_proj_z E x HV DV, in_proj_b and
  in_proj_a E x HV, a depthwise conv1d of K taps over the q,k,v channels, dt_bias and A_log HV, the gated
  norm DV, out_proj HV DV x E), ``GlmMoeDsaAttention`` (DeepSeek-V3.2's MLA: q_a E x QL, its norm QL, q_b QL x
  H(NOPE+ROPE), kv_a E x (KV+ROPE), its norm KV, kv_b KV x H(NOPE+V), o_proj HV x E) and ``GlmMoeDsaIndexer``
  (wq_b QL x IH ID, wk E x ID, k_norm a LayerNorm of ID with its bias, weights_proj E x IH);
- the caches transformers keeps (modeling_qwen3_5.py: a full layer's keys and values at the model's dtype,
  a linear layer's recurrent state (B, HV, DK, DV) in float32 and its conv state (B, 2 HK DK + HV DV, K) at
  the model's dtype; modeling_glm_moe_dsa.py: the latent KV + ROPE and the indexer's key ID per token);
- the published numbers of issue 28 (bfloat16, transformers' own modules);
- the real modules themselves: built on meta at the published sizes (each layer's token mixer's
  parameters, FlopCounterMode of one layer of each type at 8,192 tokens), and built small on CPU, where
  a whole model's mixers are counted and its cache's tensors are measured after a prefill and a decode step.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parents[1] / "data" / "configs"
QWEN35, GLM5 = DATA / "qwen3.5-27b", DATA / "glm-5"
S = 131_072

# Qwen3.5-27B (text_config): E, H, G, d; HK, HV, DK, DV, K; 64 layers, every 4th full
Q = {"E": 5120, "H": 24, "G": 4, "d": 256, "HK": 16, "HV": 48, "DK": 128, "DV": 128, "K": 4}
# GLM-5: E, H, QL, KV, NOPE, ROPE, V, IH, ID; 78 layers, an indexer on each
GL = {"E": 6144, "H": 64, "QL": 2048, "KV": 512, "NOPE": 192, "ROPE": 64, "V": 256, "IH": 32, "ID": 128}


def gated_params(q: dict[str, int], h: int, g: int) -> int:
    e, d = q["E"], q["d"]
    return e * 2 * h * d + 2 * e * g * d + h * d * e + 2 * d


def gdn_params(q: dict[str, int], hk: int, hv: int) -> int:
    e, dk, dv, k = q["E"], q["DK"], q["DV"], q["K"]
    conv = 2 * hk * dk + hv * dv
    return e * conv + e * hv * dv + 2 * e * hv + conv * k + 2 * hv + dv + hv * dv * e


def gdn_state(q: dict[str, int], hk: int, hv: int) -> int:
    return hv * q["DK"] * q["DV"] * 4 + (2 * hk * q["DK"] + hv * q["DV"]) * q["K"] * 2


def glm_params(g: dict[str, int], h: int) -> int:
    e, ql, kv, r, i = g["E"], g["QL"], g["KV"], g["ROPE"], g["ID"]
    mla = e * ql + ql + ql * h * (g["NOPE"] + r) + e * (kv + r) + kv + kv * h * (g["NOPE"] + g["V"]) + h * g["V"] * e
    return mla + ql * g["IH"] * i + e * i + 2 * i + e * g["IH"]


def run(cli: Any, config: Path, *args: str) -> dict[str, Any]:
    r = cli("model", "--config", str(config), *args, "--format", "json")
    assert r.code == 0, r.err
    doc: dict[str, Any] = r.json()
    return doc


# ---------------------------------------------------------------------------- the published numbers
def test_qwen35_27b_published_numbers(cli: Any) -> None:
    decode, prefill = run(cli, QWEN35, "--seq", "1", "--cache", "131071"), run(cli, QWEN35, "--seq", "8192")
    assert decode["schedule"]["summary"] == "64 layers: 48 linear + 16 full"
    assert [g["kind"] for g in decode["groups"]] == ["gdn", "gated"]
    kv = 16 * 2 * Q["G"] * Q["d"] * S * 2 + 48 * gdn_state(Q, Q["HK"], Q["HV"])
    assert decode["totals"]["kv_cache_bytes"] == kv == 8_744_861_696
    params = 16 * gated_params(Q, Q["H"], Q["G"]) + 48 * gdn_params(Q, Q["HK"], Q["HV"])
    assert decode["totals"]["params"] == prefill["totals"]["params"] == params == 7_239_780_864
    assert prefill["totals"]["fvcore_flops"] == 73_893_844_484_096  # MACs; flops is twice
    assert prefill["totals"]["flops"] == 2 * 73_893_844_484_096
    assert decode["cross_checks"]["agree"] and prefill["cross_checks"]["agree"]


def test_glm5_published_numbers(cli: Any) -> None:
    decode, prefill = run(cli, GLM5, "--seq", "1", "--cache", "131071"), run(cli, GLM5, "--seq", "8192")
    assert decode["schedule"]["summary"] == "78 layers: 78 full"
    assert {g["kind"] for g in decode["groups"]} == {"sparse_mla"}
    assert decode["config"]["index_n_heads"] == 32 and decode["config"]["index_topk"] == 2048
    kv = 78 * S * (GL["KV"] + GL["ROPE"] + GL["ID"]) * 2
    assert decode["totals"]["kv_cache_bytes"] == kv == 14_394_851_328
    assert prefill["totals"]["params"] == 78 * glm_params(GL, GL["H"]) == 13_602_740_736
    assert prefill["totals"]["fvcore_flops"] == 304_563_647_152_128


def test_tp8_per_device(cli: Any) -> None:
    """Query heads split, K/V heads max(1, G/N) (4 -> 1 of 256), Gated DeltaNet heads split (16/48 -> 2/6),
    MLA's latent and the indexer whole (vLLM replicates them)."""
    q = run(cli, QWEN35, "--seq", "1", "--cache", "131071", "--tp", "8")["per_device"]
    assert q["params"] == 16 * gated_params(Q, 3, 1) + 48 * gdn_params(Q, 2, 6) == 925_956_672
    assert q["kv_cache_bytes"] == 16 * 2 * 1 * Q["d"] * S * 2 + 48 * gdn_state(Q, 2, 6) == 2_166_849_536
    g = run(cli, GLM5, "--seq", "1", "--cache", "131071", "--tp", "8")["per_device"]
    assert g["params"] == 78 * glm_params(GL, 8) == 3_440_466_432
    assert g["kv_cache_bytes"] == 14_394_851_328
    groups = run(cli, QWEN35, "--seq", "8192", "--tp", "8")["groups"]
    assert [(d["per_device"]["heads"], d["per_device"]["kv_heads"]) for d in groups] == [(6, None), (3, 1)]


# ---------------------------------------------------------------------------- refusals
def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(("change", "named"), [
    ({"indexer_types": ["full", "shared"] + ["full"] * 76}, "indexer_types[1] \"shared\""),
    ({"index_topk_pattern": "F" * 77 + "S"}, "index_topk_pattern[77]"),
    ({"index_topk_freq": 4}, "index_topk_freq 4"),
    ({"index_topk_freq": 2, "index_skip_topk_offset": 77}, "layer 77 shared"),
    ({"indexer_types": ["full"] * 77 + ["dense"]}, "indexer_types[77] \"dense\""),
])
def test_glm5_with_shared_indexers_is_refused_by_name(cli: Any, tmp_path: Path, change: dict[str, Any],
                                                      named: str) -> None:
    doc = {**json.loads((GLM5 / "config.json").read_text()), **change}
    r = cli("model", "--config", str(_write(tmp_path, doc)))
    assert r.code == 2 and named in r.err and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


@pytest.mark.parametrize("change", [{"indexer_types": ["full"] * 78}, {"index_topk_freq": 1},
                                    {"index_topk_freq": 4, "index_skip_topk_offset": 200},
                                    {"index_topk_pattern": "F" * 78}])
def test_glm5_whose_every_layer_runs_its_indexer_is_answered(cli: Any, tmp_path: Path,
                                                             change: dict[str, Any]) -> None:
    doc = {**json.loads((GLM5 / "config.json").read_text()), **change}
    assert run(cli, _write(tmp_path, doc), "--seq", "1", "--cache", "131071")["totals"]["kv_cache_bytes"] == \
        14_394_851_328


def test_qwen35_refusals_and_defaults(cli: Any, tmp_path: Path) -> None:
    top = json.loads((QWEN35 / "config.json").read_text())
    ungated = {**top, "text_config": {**top["text_config"], "attn_output_gate": False}}
    r = cli("model", "--config", str(_write(tmp_path, ungated)))
    assert r.code == 2 and "text_config.attn_output_gate false" in r.err
    odd = {**top, "text_config": {**top["text_config"], "mamba_ssm_dtype": "int8"}}
    r = cli("model", "--config", str(_write(tmp_path, odd)))
    assert r.code == 2 and "text_config.mamba_ssm_dtype" in r.err
    # Qwen3_5TextConfig without layer_types: linear unless (i + 1) % full_attention_interval == 0
    text = {k: v for k, v in top["text_config"].items() if k not in ("layer_types", "model_type")}
    doc = run(cli, _write(tmp_path, {**top, "text_config": {**text, "full_attention_interval": 2}}), "--seq", "8")
    assert doc["schedule"]["summary"] == "64 layers: 32 linear + 32 full"
    assert [x["layer_type"] for x in doc["layers"][:4]] == ["linear_attention", "full_attention"] * 2


def test_vllm_keeps_the_recurrent_state_at_the_configs_mamba_ssm_dtype(cli: Any) -> None:
    """vLLM's Qwen3.5 config hook: mamba_ssm_dtype float32 when --mamba-ssm-cache-dtype is auto; a page is
    the conv state (2 HK DK + HV DV) x (K - 1) at bf16 plus the state HV DK DV at its dtype."""
    auto = run(cli, QWEN35, "--engine", "vllm", "--kv-cache-memory", "40GiB")["engine"]
    told = run(cli, QWEN35, "--engine", "vllm", "--kv-cache-memory", "40GiB", "--mamba-ssm-cache-dtype",
               "bfloat16")["engine"]
    conv = (2 * 16 * 128 + 48 * 128) * 3 * 2
    assert next(g["unpadded_page_size_bytes"] for g in auto["groups"] if g["spec"] == "MambaSpec") == \
        conv + 48 * 128 * 128 * 4
    assert next(g["unpadded_page_size_bytes"] for g in told["groups"] if g["spec"] == "MambaSpec") == \
        conv + 48 * 128 * 128 * 2
    assert any("mamba_ssm_dtype" in n for n in auto["notes"])


# ---------------------------------------------------------------------------- the real modules
@pytest.fixture
def torch_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """transformers' torch functions for Qwen3.5's Gated DeltaNet, whatever kernels are installed."""
    pytest.importorskip("transformers")
    from transformers.models.qwen3_5 import modeling_qwen3_5 as M

    for name in ("torch_chunk_gated_delta_rule", "torch_recurrent_gated_delta_rule", "causal_conv1d_fn",
                 "causal_conv1d_update"):
        fn = getattr(M, name)
        monkeypatch.setattr(M, name, getattr(fn, "__wrapped__", fn))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield M


def _flops(module: Any, *args: Any, **kw: Any) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        module(*args, **kw)
    return int(fc.get_total_flops())


def _qwen35_config(text: dict[str, Any], **over: Any) -> Any:
    from transformers import Qwen3_5TextConfig

    cfg = Qwen3_5TextConfig(**{**text, **over})
    cfg._attn_implementation = "eager"
    return cfg


@pytest.mark.parametrize(("tp", "heads", "kv", "hk", "hv"), [(1, 24, 4, 16, 48), (8, 3, 1, 2, 6)])
def test_qwen35_against_transformers_modules_at_the_published_size(cli: Any, torch_paths: Any, tp: int, heads: int,
                                                                   kv: int, hk: int, hv: int) -> None:
    import torch

    M = torch_paths
    text = json.loads((QWEN35 / "config.json").read_text())["text_config"]
    cfg = _qwen35_config(text, num_attention_heads=heads, num_key_value_heads=kv, linear_num_key_heads=hk,
                         linear_num_value_heads=hv)
    with torch.device("meta"):
        attn = M.Qwen3_5Attention(cfg, layer_idx=3).requires_grad_(False)
        gdn = M.Qwen3_5GatedDeltaNet(cfg, layer_idx=0).requires_grad_(False)
    params = 16 * sum(p.numel() for p in attn.parameters()) + 48 * sum(p.numel() for p in gdn.parameters())
    L = 8192
    x = torch.empty(1, L, Q["E"], device="meta")
    rot = int(Q["d"] * 0.25)
    cs = torch.empty(1, L, rot, device="meta")
    mask = torch.empty(1, 1, L, L, device="meta")
    flops = 16 * _flops(attn, x, (cs, cs), mask) + 48 * _flops(gdn, x)
    doc = run(cli, QWEN35, "--seq", str(L), *(("--tp", str(tp)) if tp > 1 else ()))
    got = doc["totals"] if tp == 1 else doc["per_device"]
    assert got["params"] == params
    assert 2 * got["fvcore_flops"] == flops


@pytest.mark.parametrize(("tp", "heads"), [(1, 64), (8, 8)])
def test_glm5_against_transformers_modules_at_the_published_size(cli: Any, tp: int, heads: int) -> None:
    pytest.importorskip("transformers")
    import torch
    from transformers import GlmMoeDsaConfig
    from transformers.models.glm_moe_dsa.modeling_glm_moe_dsa import GlmMoeDsaAttention

    raw = json.loads((GLM5 / "config.json").read_text())
    cfg = GlmMoeDsaConfig(**{**raw, "num_attention_heads": heads, "num_key_value_heads": heads})
    cfg._attn_implementation = "eager"
    assert cfg.indexer_types == ["full"] * 78
    with torch.device("meta"):
        attn = GlmMoeDsaAttention(cfg, layer_idx=0).requires_grad_(False)
    L = 8192
    x, cs = torch.empty(1, L, GL["E"], device="meta"), torch.empty(1, L, GL["ROPE"], device="meta")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flops = 78 * _flops(attn, x, (cs, cs), torch.empty(1, 1, L, L, device="meta"))
    doc = run(cli, GLM5, "--seq", str(L), *(("--tp", str(tp)) if tp > 1 else ()))
    got = doc["totals"] if tp == 1 else doc["per_device"]
    assert got["params"] == 78 * sum(p.numel() for p in attn.parameters())
    assert 2 * got["fvcore_flops"] == flops


# ---------------------------------------------------------------------------- small models on CPU
SMALL_QWEN35 = {
    "model_type": "qwen3_5_text", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 32, "linear_num_key_heads": 2, "linear_num_value_heads": 4, "linear_key_head_dim": 8,
    "linear_value_head_dim": 16, "linear_conv_kernel_dim": 3, "num_hidden_layers": 4, "intermediate_size": 32,
    "vocab_size": 50, "attn_output_gate": True, "full_attention_interval": 4, "dtype": "bfloat16",
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000, "partial_rotary_factor": 0.25,
                        "mrope_section": [2, 1, 1], "mrope_interleaved": True},
}
SMALL_GLM5 = {
    "model_type": "glm_moe_dsa", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 4,
    "q_lora_rank": 24, "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 12,
    "qk_head_dim": 12, "index_topk": 3, "index_n_heads": 2, "index_head_dim": 8, "num_hidden_layers": 2,
    "first_k_dense_replace": 2, "intermediate_size": 32, "vocab_size": 50, "dtype": "bfloat16",
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000},
}
MIXER = re.compile(r"\.layers\.\d+\.(self_attn|linear_attn)$")


def _cache_bytes(cache: Any) -> int:
    import torch

    total = 0
    for layer in cache.layers:
        for name in ("keys", "values", "indexer_keys", "conv_states", "recurrent_states"):
            held = getattr(layer, name, None)  # NOTE: a linear layer keeps {state index: tensor}
            for t in held.values() if isinstance(held, dict) else [held]:
                if isinstance(t, torch.Tensor):
                    total += t.numel() * t.element_size()
    return total


def _small_model(kind: str) -> tuple[Any, dict[str, Any]]:
    import torch
    from transformers import GlmMoeDsaConfig, GlmMoeDsaModel, Qwen3_5TextModel

    torch.manual_seed(0)
    if kind == "qwen3.5":
        cfg, model_cls, raw = _qwen35_config(SMALL_QWEN35), Qwen3_5TextModel, SMALL_QWEN35
    else:
        cfg, model_cls, raw = GlmMoeDsaConfig(**SMALL_GLM5), GlmMoeDsaModel, SMALL_GLM5
        cfg._attn_implementation = "eager"
    return model_cls(cfg).to(torch.bfloat16).eval().requires_grad_(False), raw


@pytest.mark.parametrize("kind", ["qwen3.5", "glm-5"])
def test_a_small_model_against_the_real_one_on_cpu(cli: Any, torch_paths: Any, tmp_path: Path, kind: str) -> None:
    """Each layer's token mixer: its parameters, FlopCounterMode's count in a whole forward of 12 tokens, and
    the cache's tensors after a prefill of 6 tokens and one decode step (S = 7)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import DynamicCache

    model, raw = _small_model(kind)
    path = _write(tmp_path, raw)
    mixers = {n: m for n, m in model.named_modules() if MIXER.search("." + n)}
    assert len(mixers) == raw["num_hidden_layers"]
    prefill = run(cli, path, "--seq", "12")
    assert prefill["totals"]["params"] == sum(p.numel() for m in mixers.values() for p in m.parameters())
    ids = torch.randint(0, 50, (1, 12))
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(input_ids=ids, use_cache=False)
    counts = {name: sum(ops.values()) for name, ops in fc.get_flop_counts().items() if MIXER.search(name)}
    assert len(counts) == raw["num_hidden_layers"]
    assert 2 * prefill["totals"]["fvcore_flops"] == sum(counts.values())

    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(input_ids=ids[:, :6], cache=cache, use_cache=True)
        model(input_ids=ids[:, 6:7], cache=cache, use_cache=True)
    decode = run(cli, path, "--seq", "1", "--cache", "6")
    assert decode["totals"]["kv_cache_bytes"] == _cache_bytes(cache)


def test_glm5_indexer_sizes_default_to_glm_moe_dsa_config(cli: Any, tmp_path: Path) -> None:
    """GlmMoeDsaConfig: index_topk 2048, index_n_heads 32, index_head_dim 128 when the file leaves them out
    (DeepSeek-V3.2's class defaults to 64 heads)."""
    raw = json.loads((GLM5 / "config.json").read_text())
    doc = {k: v for k, v in raw.items() if k not in ("index_topk", "index_n_heads", "index_head_dim")}
    got = run(cli, _write(tmp_path, doc), "--seq", "1", "--cache", "131071")
    assert got["config"]["index_n_heads"] == 32 and got["config"]["index_topk"] == 2048
    assert got["totals"]["params"] == 13_602_740_736 and got["totals"]["kv_cache_bytes"] == 14_394_851_328


def test_flops_module_runs_transformers_qwen35_attention_from_the_config(cli: Any) -> None:
    """``Qwen3_5Attention`` annotates the multimodal ``Qwen3_5Config``; it is built from the text model's
    ``Qwen3_5TextConfig`` with ``Qwen3_5TextRotaryEmbedding`` (not the vision tower's), as the model does."""
    pytest.importorskip("transformers")
    module = "transformers.models.qwen3_5.modeling_qwen3_5:Qwen3_5Attention"
    r = cli("flops", "--module", module, "--config", str(QWEN35), "--layer", "3", "--seq", "64", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["cross_checks"]["agree"]
    assert doc["variants"][0]["params"] == gated_params(Q, Q["H"], Q["G"]) == 104_858_112


@pytest.mark.parametrize(("cls", "summary"), [("Qwen3_5Config", "32 layers: 24 linear + 8 full"),
                                              ("Qwen3_5MoeConfig", "40 layers: 30 linear + 10 full"),
                                              ("GlmMoeDsaConfig", "78 layers: 78 full")])
def test_transformers_default_configs_are_answered(cli: Any, tmp_path: Path, cls: str, summary: str) -> None:
    """The config classes' own defaults (Qwen3_5TextConfig 32 layers, Qwen3_5MoeTextConfig 40, every 4th full;
    GlmMoeDsaConfig 78, indexer_types all full), as to_dict writes them, with every field read or known."""
    transformers = pytest.importorskip("transformers")
    doc = getattr(transformers, cls)().to_dict()
    got = run(cli, _write(tmp_path, doc), "--seq", "1", "--cache", "63")
    assert got["schedule"]["summary"] == summary
    assert {g["kind"] for g in got["groups"]} == ({"sparse_mla"} if cls == "GlmMoeDsaConfig" else {"gdn", "gated"})
