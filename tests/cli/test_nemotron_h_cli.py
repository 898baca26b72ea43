"""Nemotron-3-Nano-30B-A3B and Nemotron-Nano-9B-v2 (``nemotron_h``) through the CLI, against closed forms
derived from transformers 5.25's ``modeling_nemotron_h.py`` and the real modules built on meta.

Published config (tests/data/configs/nemotron-3-nano-30b-a3b): E 2688; pattern of 52 layers, 23 'M' Mamba2,
6 '*' attention, 23 'E' MoE (no token mixer, not counted); Mamba2 H 64 x P 64, N 128, G 8, K 4, C 128
(I = 4096, conv channels 4096 + 2*8*128 = 6144, in_proj 4096 + 6144 + 64 = 10,304); attention 32 heads, 2 KV
heads of 128, no biases, no RoPE. Nemotron-Nano-9B-v2 (tests/data/configs/nemotron-nano-9b-v2, built from the
published values): vLLM issue #24280's boot log sets 672-token attention blocks (bf16 SSM cache, block 16).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

NANO = "tests/data/configs/nemotron-3-nano-30b-a3b"
NANO9 = "tests/data/configs/nemotron-nano-9b-v2"
E, H, P, N, G, K, C = 2688, 64, 64, 128, 8, 4, 128
INNER, CONV, IN = H * P, H * P + 2 * G * N, 2 * H * P + 2 * G * N + H
HQ, HKV, D = 32, 2, 128
MAMBA, ATTN = 23, 6


def mamba_dense(seq: int, cache: int) -> int:
    """One Mamba2 layer's MACs (B = 1): chunked scan for a prefill, the recurrent step for a decode."""
    proj = seq * E * IN + seq * INNER * E
    if cache and seq == 1:
        return proj + CONV * K * 2 + H * P * N
    lp = -(-seq // C) * C
    n = lp // C
    # C B^T and scores x X (C per token), B^T X and C S (P*N per token), the (n+1)^2 chunk-state pass
    return proj + CONV * K * (seq + K - 1) + H * lp * C * (N + P) + 2 * H * lp * P * N + H * (n + 1) ** 2 * P * N


def attn_dense(seq: int, s: int, hq: int = HQ, hkv: int = HKV) -> int:
    return seq * E * hq * D * 2 + 2 * seq * E * hkv * D + 2 * hq * seq * s * D


MAMBA_PARAMS = E * IN + CONV * K + CONV + 3 * H + INNER + INNER * E          # use_conv_bias true, use_bias false
ATTN_PARAMS = E * HQ * D + 2 * E * HKV * D + HQ * D * E
STATE = H * P * N * 4 + CONV * K * 2                                 # float32 SSM, bf16 conv (transformers' cache)


def test_prefill_8192(cli: Any) -> None:
    r = cli("model", "--config", NANO, "--seq", "8192", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    tot = doc["totals"]
    assert tot["fvcore_flops"] == MAMBA * mamba_dense(8192, 0) + ATTN * attn_dense(8192, 8192)
    assert tot["params"] == MAMBA * MAMBA_PARAMS + ATTN * ATTN_PARAMS == 1_031_448_896
    assert tot["kv_cache_bytes"] == ATTN * 8192 * 2 * HKV * D * 2 + MAMBA * STATE == 99_696_640
    # effective: attention's causal pairs; the scan's intra-chunk and chunk-state triangles
    pairs, n = 8192 * 8193 // 2, 64
    eff_attn = attn_dense(8192, 8192) - 2 * HQ * D * (8192 * 8192 - pairs)
    eff_mamba = mamba_dense(8192, 0) - H * n * (C * C - C * (C + 1) // 2) * (N + P) \
        - H * ((n + 1) ** 2 - (n + 1) * (n + 2) // 2) * P * N
    assert tot["effective_fvcore_flops"] == MAMBA * eff_mamba + ATTN * eff_attn
    assert doc["cross_checks"]["agree"] is True
    assert sorted((g["kind"], len(g["layers"])) for g in doc["groups"]) == [("mamba2", 23), ("standard", 6)]
    assert sum(1 for layer in doc["layers"] if layer["kind"] == "none") == 23


@pytest.mark.parametrize("tp", [1, 8])
def test_decode_after_131071(cli: Any, tp: int) -> None:
    r = cli("model", "--config", NANO, "--seq", "1", "--cache", "131071", "--tp", str(tp), "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    s = 131072
    assert doc["totals"]["fvcore_flops"] == MAMBA * mamba_dense(1, 131071) + ATTN * attn_dense(1, s)
    assert doc["totals"]["kv_cache_bytes"] == ATTN * s * 2 * HKV * D * 2 + MAMBA * STATE == 854_671_360
    if tp == 8:
        # vLLM's MambaMixer2 at --tp 8: 8 heads and one of the 8 groups per device; attention 4 heads, the
        # 2 K/V heads replicated to one per device
        h, g = H // 8, G // 8
        conv = h * P + 2 * g * N
        mamba = (E * (2 * h * P + 2 * g * N + h) + h * P * E) + conv * K * 2 + h * P * N
        attn = attn_dense(1, s, HQ // 8, 1)
        dev = doc["per_device"]
        assert dev["fvcore_flops"] == MAMBA * mamba + ATTN * attn
        assert dev["kv_cache_bytes"] == ATTN * s * 2 * D * 2 + MAMBA * (h * P * N * 4 + conv * K * 2)
        assert dev["params"] == MAMBA * (E * (2 * h * P + 2 * g * N + h) + conv * K + conv + 3 * h + h * P
                                         + h * P * E) + ATTN * (E * 4 * D + 2 * E * D + 4 * D * E)


def test_params_equal_real_modules_on_meta() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers.models.nemotron_h.configuration_nemotron_h import NemotronHConfig
    from transformers.models.nemotron_h.modeling_nemotron_h import NemotronHAttention, NemotronHMamba2Mixer

    doc = json.loads((Path(NANO) / "config.json").read_text())
    cfg = NemotronHConfig(**{k: v for k, v in doc.items() if k not in ("auto_map", "architectures")})
    with torch.device("meta"):
        mixer = NemotronHMamba2Mixer(cfg, layer_idx=0)
        attn = NemotronHAttention(cfg, layer_idx=5)
    assert sum(p.numel() for p in mixer.parameters()) == MAMBA_PARAMS
    assert sum(p.numel() for p in attn.parameters()) == ATTN_PARAMS
    assert cfg.layers_block_type.count("linear_attention") == MAMBA and cfg.layers_block_type.count("moe") == 23


def test_layer_n_and_flops_config(cli: Any) -> None:
    r = cli("flops", "--config", NANO, "--format", "json")
    assert r.code == 0, r.err
    assert r.json()["config"]["kind"] == "mamba2"
    r = cli("flops", "--config", NANO, "--layer", "5", "--format", "json")
    assert r.code == 0, r.err
    assert r.json()["config"]["kind"] == "standard"
    r = cli("flops", "--config", NANO, "--layer", "1")
    assert r.code == 2 and "--layer" in r.err and "no token mixer" in r.err and len(r.err.strip().splitlines()) == 1
    for command in ("shapes", "bench", "sweep", "report"):
        r = cli(command, "--config", NANO, "--help")
        assert r.code == 0


@pytest.mark.parametrize(("change", "field"), [
    ({"hybrid_override_pattern": "MEM*X"}, "hybrid_override_pattern[4]"),
    ({"hybrid_override_pattern": "MEM*"}, "num_hidden_layers"),
    ({"hybrid_override_pattern": 7}, "hybrid_override_pattern"),
    ({"layers_block_type": ["mamba", "conv"]}, "layers_block_type[1]"),
    ({"n_groups": 3}, "n_groups"),
    ({"mamba_num_heads": 0}, "mamba_num_heads"),
    ({"attention_bias": True}, "attention_bias"),
    ({"sliding_window": 4096}, "sliding_window"),
    ({"mamba_ssm_cache_dtype": "int8"}, "mamba_ssm_cache_dtype"),
])
def test_hostile_configs_name_the_field(cli: Any, tmp_path: Path, change: dict[str, Any], field: str) -> None:
    doc = json.loads((Path(NANO) / "config.json").read_text())
    doc.update(change)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    r = cli("model", "--config", str(path), "--seq", "16")
    assert r.code == 2, r.out
    assert field in r.err and len(r.err.strip().splitlines()) == 1, r.err


@pytest.mark.parametrize(("ssm", "block"), [("bfloat16", 672), ("auto", 1312)])
def test_nano_9b_v2_attention_block_vllm_issue_24280(cli: Any, ssm: str, block: int) -> None:
    # mamba2_state_shape: conv (128*80 + 2*8*128 = 12,288) x 3 bf16 = 73,728 B; SSM 128 x 80 x 128: 2,621,440 B in
    # bf16 (the issue's boot), 5,242,880 B in float32 (vLLM 0.34's NemotronHForCausalLMConfig default when the
    # config names no mamba_ssm_cache_dtype); attention 8 KV heads x 128 x 2 x 2 B = 4,096 B per token:
    # 16 x cdiv(2,695,168, 16 x 4,096) = 672, 16 x cdiv(5,316,608, 65,536) = 1,312
    r = cli("model", "--config", NANO9, "--seq", "1", "--cache", "1000", "--engine", "vllm", "--kv-cache-memory",
            "20GiB", "--block-size", "16", "--mamba-ssm-cache-dtype", ssm, "--format", "json")
    assert r.code == 0, r.err
    engine = r.json()["engine"]
    assert engine["block_size"] == block
    mamba = [g for g in engine["groups"] if g["spec"] == "MambaSpec"]
    assert mamba and mamba[0]["unpadded_page_size_bytes"] == 73_728 + (2_621_440 if ssm == "bfloat16" else 5_242_880)
