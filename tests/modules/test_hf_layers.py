"""``--module`` on the attention classes of 2026 at their published sizes, one layer of each type.

Every expected number is a closed form written here from the models' code (transformers 5.24's
``modeling_<family>.py``) and their published config.json (``tests/data/configs``, each checked
against its source in ``tests/data/configs/README.md``), never taken from attncli:

standard attention, MACs per stage for B=1: q = L*E*H*d, k = v = L*E*G*d, QK^T = weights x V =
H*L*L*d dense, W_O = L*H*d*E; effective QK^T = H*d*P with P the visible (query, key) pairs of the
layer's own mask: causal L(L+1)/2; a window W (q-W < k <= q): W(W+1)/2 + (L-W)*W; chunks of C
(k//C == q//C, k <= q), L a multiple of C: (L/C)*C(C+1)/2. Parameters: the four projections
(+ biases with ``attention_bias``) + gpt-oss's ``sinks`` (H) + Gemma 3's qk-norms (2d).
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("transformers")

M = "transformers.models."
GEMMA3 = M + "gemma3.modeling_gemma3:Gemma3Attention"
GPT_OSS = M + "gpt_oss.modeling_gpt_oss:GptOssAttention"
LLAMA4 = M + "llama4.modeling_llama4:Llama4TextAttention"
PHI3 = M + "phi3.modeling_phi3:Phi3Attention"
DSV3 = M + "deepseek_v3.modeling_deepseek_v3:DeepseekV3Attention"
QWEN3_NEXT = M + "qwen3_next.modeling_qwen3_next:Qwen3NextAttention"
COHERE2 = M + "cohere2.modeling_cohere2:Cohere2Attention"


def causal(n: int) -> int:
    return n * (n + 1) // 2


def window(n: int, w: int) -> int:
    return causal(n) if n <= w else causal(w) + (n - w) * w


def chunked(n: int, c: int) -> int:
    assert n % c == 0
    return n // c * causal(c)


def standard(L: int, E: int, H: int, G: int, d: int, pairs: int) -> tuple[dict[str, int], dict[str, int]]:
    dense = {"q_proj": L * E * H * d, "k_proj": L * E * G * d, "v_proj": L * E * G * d,
             "qk": H * L * L * d, "av": H * L * L * d, "out_proj": L * H * d * E}
    return dense, {**dense, "qk": H * d * pairs, "av": H * d * pairs}


def count(cli: Any, module: str, *args: str) -> dict[str, Any]:
    r = cli("flops", "--module", module, "--batch", "1", *args, "--format", "json")
    assert r.code == 0, r.err
    assert r.err == "", r.err  # NOTE: no transformers warning reaches stderr
    doc: dict[str, Any] = r.json()
    return doc


def check(doc: dict[str, Any], dense: dict[str, int], effective: dict[str, int], params: int) -> None:
    (v,) = doc["variants"]
    assert v["by_stage"] == dense
    assert v["effective"]["by_stage"] == effective
    assert v["effective"]["fvcore_flops"] == sum(effective.values())
    assert v["fvcore_flops"] == sum(dense.values())
    assert v["params"] == params
    closed = v["cross_checks"]["closed_form"]
    assert closed["by_stage"] == dense and closed["agree"] and closed["params"]["agree"]
    assert v["cross_checks"]["flop_counter"]["agree"]


# Gemma-3-27B (text_config): E 5376, H 32, G 16, d 128, window 1024, every 6th layer full.
def test_gemma3_27b_layer0_sliding_and_layer5_full(cli: Any) -> None:
    L, E, H, G, d = 2048, 5376, 32, 16, 128
    params = E * H * d + 2 * E * G * d + H * d * E + 2 * d
    doc = count(cli, GEMMA3, "--preset", "gemma-3-27b", "--seq", str(L))
    assert doc["config"]["window"] == 1024 and "layer" not in doc["config"]
    check(doc, *standard(L, E, H, G, d, window(L, 1024)), params)
    doc = count(cli, GEMMA3, "--preset", "gemma-3-27b", "--layer", "5", "--seq", str(L))
    assert doc["config"]["layer"] == 5 and doc["config"]["layer_type"] == "full_attention"
    assert doc["config"]["window"] is None
    check(doc, *standard(L, E, H, G, d, causal(L)), params)


# gpt-oss-20b: E 2880, H 64, G 8, d 64, attention_bias, sinks; layers alternate sliding 128 / full.
def test_gpt_oss_20b_layer1_full_with_sinks_and_biases(cli: Any) -> None:
    L, E, H, G, d = 1024, 2880, 64, 8, 64
    params = E * H * d + 2 * E * G * d + H * d * E + (H * d + 2 * G * d + E) + H
    doc = count(cli, GPT_OSS, "--config", "tests/data/configs/gpt-oss-20b", "--layer", "1", "--seq", str(L))
    assert doc["config"]["layer_type"] == "full_attention"
    check(doc, *standard(L, E, H, G, d, causal(L)), params)
    assert doc["variants"][0]["cross_checks"]["closed_form"]["params"]["by_part"]["sinks"] == H
    doc = count(cli, GPT_OSS, "--config", "tests/data/configs/gpt-oss-20b", "--layer", "0", "--seq", str(L))
    check(doc, *standard(L, E, H, G, d, window(L, 128)), params)


# Llama-4-Scout (text_config): E 5120, H 40, G 8, d 128, attention_chunk_size 8192, no_rope_layers.
def test_llama4_scout_layer0_chunked_at_16k(cli: Any) -> None:
    L, E, H, G, d = 16384, 5120, 40, 8, 128
    params = E * H * d + 2 * E * G * d + H * d * E
    doc = count(cli, LLAMA4, "--preset", "llama-4-scout", "--layer", "0", "--seq", str(L))
    assert doc["config"]["layer_type"] == "chunked_attention" and doc["config"]["chunk"] == 8192
    check(doc, *standard(L, E, H, G, d, chunked(L, 8192)), params)
    assert any("transformers says" in n for n in doc["variants"][0]["notes"])


def test_llama4_scout_layer3_is_full_and_nope(cli: Any) -> None:
    L, E, H, G, d = 512, 5120, 40, 8, 128
    doc = count(cli, LLAMA4, "--preset", "llama-4-scout", "--layer", "3", "--seq", str(L))
    assert doc["config"]["layer_type"] == "full_attention" and doc["config"]["chunk"] is None
    check(doc, *standard(L, E, H, G, d, causal(L)), E * H * d + 2 * E * G * d + H * d * E)
    assert any("NoPE" in n for n in doc["variants"][0]["notes"])


def test_llama4_flags_only_builds_its_chunked_layer0(cli: Any) -> None:
    """Without a config, Llama4TextConfig's defaults make layer 0 chunked (8192): at L 16384 the chunk
    is applied, not a causal mask (the +295% of the issue at this small size)."""
    L, E, H = 16384, 64, 2
    doc = count(cli, LLAMA4, "--dim", str(E), "--heads", str(H), "--seq", str(L))
    assert doc["config"]["chunk"] == 8192
    check(doc, *standard(L, E, H, H, E // H, chunked(L, 8192)), 4 * E * E)


# Phi-3-mini-4k: E 3072, H = G = 32, d 96, fused qkv_proj, sliding_window 2047 on every layer.
def test_phi3_mini_fused_qkv_with_its_window(cli: Any) -> None:
    L, E, H, d = 4096, 3072, 32, 96
    doc = count(cli, PHI3, "--preset", "phi-3-mini-4k", "--seq", str(L))
    check(doc, *standard(L, E, H, H, d, window(L, 2047)), 4 * E * H * d)


# DeepSeek-V3: E 7168, H 128, RQ 1536, R 512, DN 128, DR 64, DV 128 (the naive form the class runs).
def test_deepseek_v3_mla_layer(cli: Any) -> None:
    L, E, H, RQ, R, DN, DR, DV = 256, 7168, 128, 1536, 512, 128, 64, 128
    dense = {"q_a_proj": L * E * RQ, "q_b_proj": L * RQ * H * (DN + DR), "kv_a_proj": L * E * (R + DR),
             "kv_b_proj": L * R * H * (DN + DV), "qk": H * L * L * (DN + DR), "av": H * L * L * DV,
             "out_proj": L * H * DV * E}
    effective = {**dense, "qk": H * causal(L) * (DN + DR), "av": H * causal(L) * DV}
    params = (E * RQ + RQ + RQ * H * (DN + DR) + E * (R + DR) + R + R * H * (DN + DV) + H * DV * E)
    check(count(cli, DSV3, "--preset", "deepseek-v3", "--seq", str(L)), dense, effective, params)


# Qwen3-Next-80B-A3B: E 2048, H 16, G 2, d 256; every 4th layer is gated full attention.
def test_qwen3_next_layer3_gated_attention(cli: Any) -> None:
    L, E, H, G, d = 256, 2048, 16, 2, 256
    dense, effective = standard(L, E, H, G, d, causal(L))
    dense["q_proj"] = effective["q_proj"] = 2 * L * E * H * d  # a query and a gate per head
    params = 2 * E * H * d + 2 * E * G * d + H * d * E + 2 * d
    doc = count(cli, QWEN3_NEXT, "--preset", "qwen3-next-80b-a3b", "--layer", "3", "--seq", str(L))
    assert doc["config"]["kind"] == "gated"
    check(doc, dense, effective, params)


def test_qwen3_next_attention_from_flags_is_gated(cli: Any) -> None:
    """The gate doubles q_proj: counted as the gated kind, not as a standard q_proj 2x its closed form."""
    L, E, H, d = 64, 256, 4, 64
    doc = count(cli, QWEN3_NEXT, "--dim", str(E), "--heads", str(H), "--head-dim", str(d), "--seq", str(L))
    (v,) = doc["variants"]
    assert v["by_stage"]["q_proj"] == 2 * L * E * H * d and v["cross_checks"]["closed_form"]["agree"]


def test_a_linear_layer_is_not_counted_as_the_attention_class(cli: Any) -> None:
    r = cli("flops", "--module", QWEN3_NEXT, "--preset", "qwen3-next-80b-a3b", "--layer", "0", "--seq", "64")
    assert r.code == 2 and r.err.startswith("attncli: error: --layer:") and r.err.count("\n") == 1


def test_cohere2_layers_follow_its_pattern(cli: Any) -> None:
    """Cohere2Config's default pattern 4: layers 0-2 sliding (window 4096), layer 3 full."""
    L, E, H = 64, 256, 4
    cfg = {"model_type": "cohere2", "hidden_size": E, "num_attention_heads": H, "num_key_value_heads": H,
           "num_hidden_layers": 4, "sliding_window": 16, "intermediate_size": 512, "vocab_size": 100}
    import json
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(cfg))
        for layer, pairs in ((0, window(L, 16)), (3, causal(L))):
            doc = count(cli, COHERE2, "--config", tmp, "--layer", str(layer), "--seq", str(L))
            check(doc, *standard(L, E, H, H, E // H, pairs), 4 * E * E)


# ------------------------------------------------------------------ flags the class does not use
@pytest.mark.parametrize("module", [M + "olmo2.modeling_olmo2:Olmo2Attention", LLAMA4,
                                    M + "llama.modeling_llama:LlamaAttention"])
def test_window_on_a_class_without_one_exits_2(cli: Any, module: str) -> None:
    r = cli("flops", "--module", module, "--dim", "256", "--heads", "4", "--window", "32")
    assert r.code == 2 and r.err.startswith("attncli: error: --window:") and r.err.count("\n") == 1


def test_window_reaches_qwen3_as_a_sliding_layer(cli: Any) -> None:
    L, E, H = 64, 256, 4
    doc = count(cli, M + "qwen3.modeling_qwen3:Qwen3Attention", "--dim", str(E), "--heads", str(H),
                "--window", "32", "--seq", str(L))
    (v,) = doc["variants"]
    assert doc["config"]["window"] == 32
    assert v["effective"]["by_stage"]["qk"] == H * (E // H) * window(L, 32)


def test_window_on_a_full_layer_of_a_model_exits_2(cli: Any) -> None:
    r = cli("flops", "--module", GEMMA3, "--preset", "gemma-3-27b", "--layer", "5", "--window", "512")
    assert r.code == 2 and r.err.startswith("attncli: error: --window:")


@pytest.mark.parametrize("args", [("--layer", "62"), ("--layer", "-1")])
def test_a_layer_the_model_lacks_exits_2(cli: Any, args: tuple[str, ...]) -> None:
    r = cli("flops", "--preset", "gemma-3-27b", *args)
    assert r.code == 2 and r.err.startswith("attncli: error: --layer:") and r.err.count("\n") == 1


def test_layer_needs_a_model(cli: Any) -> None:
    r = cli("flops", "--layer", "1")
    assert r.code == 2 and r.err.startswith("attncli: error: --layer:")
    r = cli("flops", "--preset", "gpt2", "--layer", "1")
    assert r.code == 2 and r.err.startswith("attncli: error: --layer:")


def test_the_title_names_the_layer_and_its_type(cli: Any) -> None:
    r = cli("flops", "--preset", "gpt-oss-20b", "--layer", "1", "--seq", "64", "--batch", "1")
    assert r.code == 0 and r.out.startswith("attncli flops: gpt-oss-20b layer 1 (full), impl")
    r = cli("flops", "--config", "tests/data/configs/llama-3.1-8b/config.json", "--seq", "64", "--batch", "1")
    assert r.code == 0 and r.out.startswith("attncli flops: llama-3.1-8b, impl")
    r = cli("flops", "--module", GPT_OSS, "--preset", "gpt-oss-20b", "--layer", "0", "--seq", "64", "--batch", "1")
    assert r.code == 0 and "layer 0 (sliding)" in r.out


# ------------------------------------------------------------------ the model's own mask, on real tensors
def _visible(layer: Any, seq: int) -> int:
    """Visible (query, key) pairs of the mask the layer is called with, counted on a real CPU mask."""
    import torch

    _, kwargs = layer.call_args(1, seq, "cpu")
    mask = kwargs["attention_mask"]
    if mask.dtype == torch.bool:
        return int(mask[0, 0].sum())
    return int((mask[0, 0] == 0).sum())  # an additive mask: 0 where visible, -inf (or min) elsewhere


@pytest.mark.parametrize(("model_type", "extra", "layer", "expected"), [
    ("llama4_text", {"attention_chunk_size": 8, "no_rope_layers": [1, 1, 1, 0]}, 0, chunked(32, 8)),
    ("llama4_text", {"attention_chunk_size": 8, "no_rope_layers": [1, 1, 1, 0]}, 3, causal(32)),
    ("gemma3_text", {"sliding_window": 5, "head_dim": 16}, 0, window(32, 5)),
    ("gemma3_text", {"sliding_window": 5, "head_dim": 16}, 5, causal(32)),
    ("gpt_oss", {"sliding_window": 6, "head_dim": 16, "layer_types": ["sliding_attention", "full_attention"] * 3},
     0, window(32, 6)),
])
def test_the_mask_is_the_one_the_model_makes(model_type: str, extra: dict[str, Any], layer: int,
                                              expected: int) -> None:
    """The layer is called with the mask its model's mask function makes for that layer type
    (masking_utils' chunked, sliding-window or causal mask), counted on real tensors."""
    from types import SimpleNamespace

    from attncli.modules.hf import build_hf_attention
    from attncli.modules.userload import load_factory

    classes = {"llama4_text": LLAMA4, "gemma3_text": GEMMA3, "gpt_oss": GPT_OSS}
    cfg = {"model_type": model_type, "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
           "num_hidden_layers": 6 if model_type != "llama4_text" else 4, "intermediate_size": 128,
           "vocab_size": 64, **extra}
    settings = SimpleNamespace(dim=64, heads=4, kv_heads=2, head_dim=extra.get("head_dim"), window=None, bias=None,
                               cache=0, model_config=cfg, layer=layer)
    built = build_hf_attention(load_factory(classes[model_type]), settings, device="cpu")
    assert _visible(built, 32) == expected


def test_kimi_k2_is_built_by_deepseek_v3_attention(cli: Any) -> None:
    """Kimi K2's config is model_type kimi_k2 with architecture DeepseekV3ForCausalLM: DeepSeek-V3's MLA
    layer with 64 heads (E 7168, RQ 1536, R 512, DN 128, DR 64, DV 128; the RMSNorms on the two latents)."""
    E, H, RQ, R, DN, DR, DV = 7168, 64, 1536, 512, 128, 64, 128
    params = E * RQ + RQ + RQ * H * (DN + DR) + E * (R + DR) + R + R * H * (DN + DV) + H * DV * E
    assert params == 101_124_096
    doc = count(cli, DSV3, "--preset", "kimi-k2", "--seq", "64")
    assert doc["variants"][0]["params"] == params and doc["variants"][0]["cross_checks"]["closed_form"]["agree"]


def test_a_class_of_another_model_is_refused(cli: Any) -> None:
    r = cli("flops", "--module", M + "llama.modeling_llama:LlamaAttention", "--preset", "mistral-7b", "--layer", "0")
    assert r.code == 2 and r.err.startswith("attncli: error: --module:") and "mistral" in r.err
