"""Kimi Linear (``kimi_linear``) as a whole model: its schedule, ``attncli model`` on the published config, a
second size built here, and refusals of a schedule transformers would not build as written.

Expected values are closed forms written from transformers 5.25 ``models/kimi_linear/modeling_kimi_linear.py``
and the published config.json (tests/data/configs/kimi-linear-48b-a3b: hidden 2304; 32 MLA heads, kv_lora_rank
512, no q LoRA, qk_nope 128, qk_rope 64, v 128; ``linear_attn_config``: 32 KDA heads of 128, conv kernel 4,
``full_attn_layers`` 4, 8, ..., 24, 27, 1-based, the 20 others KDA):

- a KDA layer (``KimiLinearDeltaAttention``): q/k/v E x H*D, the conv over 3*H*D channels (K MACs per output;
  L + K - 1 outputs in a prefill, 2 in a decode step), the forget and output gates E x D then D x H*D, beta E x H,
  o_proj H*D x E; the delta rule per head: a decode step 3 D x D per token, a prefill in chunks of 64 (L padded
  to LP): the decayed K_beta K^T and Q K^T (C*D per row each), the inverse's forward substitution ((C-1)C(2C-1)/6
  per chunk), the inverse times V_beta and K_beta (2 C*D per row), Q S, K S and K^T V_new (D*D per row each),
  the intra-chunk attention times V_new (C*D per row). Its cache: (B, H, D, D) float32 + (B, 3*H*D, K).
- an MLA layer (``KimiLinearAttention``, DeepSeek-V3's MLA without RoPE): q_proj E x H(DN+DR), kv_a E x (R+DR),
  kv_b R x H(DN+DV) over every cached latent, QK^T over DN+DR and AV over DV per pair (naive), or a decode step's
  absorbed form (QK^T over R+DR, AV over R, W_UK and W_UV folded in); its cache: R + DR per token.

The parameters are also those of transformers' own modules built on the meta device from the same config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parents[1] / "data" / "configs"
KIMI = DATA / "kimi-linear-48b-a3b"
E, H, R, DR, DN, DV = 2304, 32, 512, 64, 128, 128
KH, KD, K, C = 32, 128, 4, 64
N_KDA, N_MLA = 20, 7
FULL = [3, 7, 11, 15, 19, 23, 26]
"""0-based indices of full_attn_layers [4, 8, 12, 16, 20, 24, 27]."""


def kda_macs(L: int, cached: bool, h: int = KH, e: int = E, d: int = KD, k: int = K) -> dict[str, int]:
    low_rank = L * (e * d + d * h * d)
    out = {"qkv_proj": 3 * L * e * h * d, "f_proj": low_rank, "b_proj": L * e * h, "g_proj": low_rank,
           "o_proj": L * h * d * e}
    if cached and L == 1:
        out.update(conv=3 * h * d * k * 2, delta_read=h * d * d, delta_write=h * d * d, delta_out=h * d * d)
    else:
        lp = -(-L // C) * C
        out.update(conv=3 * h * d * k * (L + k - 1 + (k if cached else 0)), delta_kk=h * lp * C * d,
                   delta_inv=h * lp // C * (C - 1) * C * (2 * C - 1) // 6, delta_wy=2 * h * lp * C * d,
                   delta_out=h * lp * d * d, delta_qk=h * lp * C * d, delta_read=h * lp * d * d,
                   delta_av=h * lp * C * d, delta_write=h * lp * d * d)
    return out


def mla_macs(L: int, S: int, absorbed: bool, h: int = H) -> tuple[int, int]:
    """(dense, effective) MACs of one MLA layer, B = 1; effective counts the causal pairs only."""
    pairs = S * L - L * (L - 1) // 2  # a query at position p sees keys 0 .. p
    proj = L * E * h * (DN + DR) + L * E * (R + DR) + L * h * DV * E
    if absorbed:
        proj += L * h * DN * R + L * h * R * DV
        return proj + h * L * S * (R + DR) + h * L * S * R, proj + h * pairs * (R + DR) + h * pairs * R
    proj += S * R * h * (DN + DV)
    return proj + h * L * S * (DN + DR + DV), proj + h * pairs * (DN + DR + DV)


def kda_state(h: int = KH, d: int = KD, k: int = K, conv_bytes: int = 2) -> int:
    return h * d * d * 4 + 3 * h * d * k * conv_bytes


def model(cli: Any, *args: str) -> dict[str, Any]:
    r = cli("model", *args, "-f", "json")
    assert r.code == 0, r.err
    return r.json()  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- the schedule
def test_the_schedule_is_transformers_layer_types() -> None:
    transformers = pytest.importorskip("transformers")
    from attncli.models.schedule import read_schedule

    top = json.loads((KIMI / "config.json").read_text())
    want = transformers.KimiLinearConfig(**{k: v for k, v in top.items() if k != "model_type"}).layer_types
    schedule = read_schedule(top, "kimi_linear")
    assert [layer.layer_type for layer in schedule.layers] == want
    assert [i for i, t in enumerate(want) if t == "full_attention"] == FULL
    assert not any(layer.rope for layer in schedule.layers)  # KimiLinearAttention rotates nothing
    assert schedule.summary() == "27 layers: 20 linear + 7 full (NoPE)"


@pytest.mark.parametrize(("layer", "kind"), [(0, "kda"), (2, "kda"), (3, "mla"), (26, "mla"), (25, "kda")])
def test_layer_n_is_that_layer(cli: Any, layer: int, kind: str) -> None:
    r = cli("flops", "--config", str(KIMI), "--layer", str(layer), "--seq", "16", "--batch", "1", "-f", "json")
    assert r.code == 0, r.err
    cfg = r.json()["config"]
    assert cfg["kind"] == kind and cfg["layer"] == layer
    if kind == "kda":
        assert (cfg["linear_num_heads"], cfg["linear_head_dim"], cfg["linear_conv_kernel_dim"]) == (KH, KD, K)
        assert "kv_lora_rank" not in cfg
    else:
        assert (cfg["kv_lora_rank"], cfg["q_lora_rank"], cfg["heads"]) == (R, None, H)


# ---------------------------------------------------------------------------- the published model
@pytest.mark.parametrize("tp", [1, 8])
def test_a_prefill_of_8192_tokens(cli: Any, tp: int) -> None:
    L = 8192
    doc = model(cli, "--config", str(KIMI), "--seq", str(L), "--tp", str(tp))
    kda = sum(kda_macs(L, False).values())
    mla_dense, mla_eff = mla_macs(L, L, absorbed=False)
    tot = doc["totals"]
    assert tot["fvcore_flops"] == N_KDA * kda + N_MLA * mla_dense
    assert tot["effective_fvcore_flops"] == N_KDA * kda + N_MLA * mla_eff
    assert tot["kv_cache_bytes"] == N_MLA * L * (R + DR) * 2 + N_KDA * kda_state() == 109_969_408
    assert tot["kv_bytes_per_token"] == N_MLA * (R + DR) * 2
    groups = {g["kind"]: g for g in doc["groups"]}
    assert groups["kda"]["layers"] == [i for i in range(27) if i not in FULL] and groups["mla"]["layers"] == FULL
    assert groups["kda"]["form"] == "chunked" and groups["mla"]["form"] == "naive"
    assert groups["kda"]["per_layer"]["by_stage"] == kda_macs(L, False)
    if tp == 8:  # heads split; MLA's latent and KDA's f_a, g_a (E x D) whole on every device
        dev = doc["per_device"]
        kda_dev = sum(kda_macs(L, False, h=KH // 8).values())
        assert dev["fvcore_flops"] == N_KDA * kda_dev + N_MLA * mla_macs(L, L, absorbed=False, h=H // 8)[0]
        assert dev["kv_cache_bytes"] == N_MLA * L * (R + DR) * 2 + N_KDA * kda_state(h=KH // 8)


@pytest.mark.parametrize("tp", [1, 8])
def test_a_decode_step_at_131072(cli: Any, tp: int) -> None:
    S = 131072
    doc = model(cli, "--config", str(KIMI), "--seq", "1", "--cache", str(S - 1), "--tp", str(tp))
    kda = sum(kda_macs(1, True).values())
    mla_dense, mla_eff = mla_macs(1, S, absorbed=True)
    assert mla_dense == mla_eff  # one query sees every key
    tot = doc["totals"]
    assert tot["fvcore_flops"] == tot["effective_fvcore_flops"] == N_KDA * kda + N_MLA * mla_dense == 32_970_260_480
    assert tot["kv_cache_bytes"] == N_MLA * S * (R + DR) * 2 + N_KDA * kda_state() == 1_100_873_728
    groups = {g["kind"]: g for g in doc["groups"]}
    assert groups["kda"]["form"] == "recurrent" and groups["mla"]["form"] == "absorbed"
    assert groups["kda"]["per_layer"]["kv_cache_bytes"] == kda_state() == 2_195_456
    if tp == 8:
        dev = doc["per_device"]
        assert dev["fvcore_flops"] == (N_KDA * sum(kda_macs(1, True, h=KH // 8).values())
                                       + N_MLA * mla_macs(1, S, absorbed=True, h=H // 8)[0])
        assert dev["kv_cache_bytes"] == N_MLA * S * (R + DR) * 2 + N_KDA * kda_state(h=KH // 8)


def real_params(top: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(KDA layer params, MLA layer params, layer types) of transformers' own modules on meta."""
    transformers = pytest.importorskip("transformers")
    import torch
    from transformers.models.kimi_linear import modeling_kimi_linear as M

    cfg = transformers.KimiLinearConfig(**{k: v for k, v in top.items() if k != "model_type"})
    types = list(cfg.layer_types)
    with torch.device("meta"):
        kda = M.KimiLinearDeltaAttention(cfg, types.index("linear_attention"))
        mla = M.KimiLinearAttention(cfg, types.index("full_attention"))
    return (sum(p.numel() for p in kda.parameters()), sum(p.numel() for p in mla.parameters()), types)


def test_params_are_transformers_modules_at_the_published_size(cli: Any) -> None:
    kda, mla, types = real_params(json.loads((KIMI / "config.json").read_text()))
    assert kda == 4 * E * KH * KD + 3 * KH * KD * K + 2 * (E * KD + KD * KH * KD) + KH * KD + KH + E * KH + KD
    assert mla == E * H * (DN + DR) + E * (R + DR) + R + R * H * (DN + DV) + H * DV * E
    doc = model(cli, "--config", str(KIMI), "--seq", "1", "--cache", "15")
    assert doc["totals"]["params"] == types.count("linear_attention") * kda + types.count("full_attention") * mla
    assert doc["totals"]["params"] == 994_089_600
    assert model(cli, "--preset", "kimi-linear-48b-a3b", "--seq", "1", "--cache", "15")["totals"] == doc["totals"]


def test_the_vllm_engine_is_refused_in_one_line(cli: Any) -> None:
    r = cli("model", "--config", str(KIMI), "--seq", "1", "--cache", "100", "--engine", "vllm",
            "--kv-cache-memory", "10GB")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
    assert r.err.startswith("attncli: error: --engine: ") and "Kimi Delta Attention" in r.err


# ---------------------------------------------------------------------------- a second size
SECOND = {"model_type": "kimi_linear", "architectures": ["KimiLinearForCausalLM"], "hidden_size": 1024,
          "num_hidden_layers": 10, "num_attention_heads": 16, "num_key_value_heads": 16, "q_lora_rank": 256,
          "kv_lora_rank": 128, "qk_nope_head_dim": 64, "qk_rope_head_dim": 32, "v_head_dim": 64,
          "attention_bias": True, "torch_dtype": "float32", "intermediate_size": 2048, "moe_intermediate_size": 256,
          "num_experts": 8, "num_experts_per_token": 2, "num_shared_experts": 1, "first_k_dense_replace": 1,
          "vocab_size": 1000,
          "linear_attn_config": {"full_attn_layers": [2, 5, 10], "kda_layers": [1, 3, 4, 6, 7, 8, 9], "head_dim": 64,
                                 "num_heads": 8, "short_conv_kernel_size": 3}}


def test_a_second_size(cli: Any, tmp_path: Path) -> None:
    """E 1024, a q LoRA of 256 and attention biases on the MLA layers (q_a, kv_a, o_proj; KDA has none), 8 KDA
    heads of 64 with a kernel of 3; a prefill of 100 tokens (LP 128) at float32."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(SECOND))
    kda, mla, types = real_params(SECOND)
    assert [i for i, t in enumerate(types) if t == "full_attention"] == [1, 4, 9]
    e, h, d, k, rq, r, dr, dn, dv, hm = 1024, 8, 64, 3, 256, 128, 32, 64, 64, 16
    assert kda == 4 * e * h * d + 3 * h * d * k + 2 * (e * d + d * h * d) + h * d + h + e * h + d
    assert mla == (e * rq + rq) + rq + rq * hm * (dn + dr) + e * (r + dr) + (r + dr) + r + r * hm * (dn + dv) \
        + hm * dv * e + e
    doc = model(cli, "--config", str(path), "--seq", "100")
    tot = doc["totals"]
    assert tot["params"] == 7 * kda + 3 * mla
    kda_step = sum(kda_macs(100, False, h=h, e=e, d=d, k=k).values())
    mla_step = 100 * (e * rq + rq * hm * (dn + dr) + e * (r + dr) + hm * dv * e) + 100 * r * hm * (dn + dv) \
        + hm * 100 * 100 * (dn + dr + dv)
    assert tot["fvcore_flops"] == 7 * kda_step + 3 * mla_step
    assert tot["kv_cache_bytes"] == 3 * 100 * (r + dr) * 4 + 7 * kda_state(h=h, d=d, k=k, conv_bytes=4)


def test_the_caches_transformers_keeps_after_a_prefill_and_a_decode_step(cli: Any, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny Kimi Linear run on CPU through transformers' KimiLinearModel (torch paths), 6 tokens then 1:
    the bytes of every tensor its cache holds are attncli model's KV bytes after that decode step."""
    transformers = pytest.importorskip("transformers")
    import torch
    from transformers.models.kimi_linear import modeling_kimi_linear as M

    tiny = {**SECOND, "hidden_size": 64, "num_hidden_layers": 5, "num_attention_heads": 4, "num_key_value_heads": 4,
            "q_lora_rank": 24, "kv_lora_rank": 16, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16,
            "intermediate_size": 32, "moe_intermediate_size": 16, "num_experts": 4, "vocab_size": 50,
            "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
            "linear_attn_config": {"full_attn_layers": [2, 5], "kda_layers": [1, 3, 4], "head_dim": 16,
                                   "num_heads": 2, "short_conv_kernel_size": 3}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(tiny))
    cfg = transformers.KimiLinearConfig(**{k: v for k, v in tiny.items() if k != "model_type"})
    for name in ("chunk_kimi_delta_attention", "recurrent_kimi_delta_attention", "causal_conv1d_fn",
                 "causal_conv1d_update", "causal_conv1d_forward"):
        fn = getattr(M, name)
        monkeypatch.setattr(M, name, getattr(fn, "__wrapped__", fn))  # transformers' torch paths
    torch.manual_seed(0)
    net = M.KimiLinearModel(cfg).eval()
    cache = transformers.DynamicCache(config=cfg)
    ids = torch.randint(0, 50, (2, 7))
    with torch.no_grad():
        net(input_ids=ids[:, :6], cache=cache, use_cache=True)
        net(input_ids=ids[:, 6:], cache=cache, use_cache=True)
    held = 0
    for layer in cache.layers:
        for t in [*getattr(layer, "conv_states", {}).values(), *getattr(layer, "recurrent_states", {}).values(),
                  getattr(layer, "keys", None), getattr(layer, "values", None)]:
            if isinstance(t, torch.Tensor):
                held += t.numel() * t.element_size()
    doc = model(cli, "--config", str(path), "--seq", "1", "--cache", "6", "--batch", "2")
    # 2 MLA layers: 7 tokens of R + DR; 3 KDA layers: (2, 2, 16, 16) float32 + (2, 96, 3) float32
    assert held == doc["totals"]["kv_cache_bytes"] == 2 * 2 * 7 * (16 + 8) * 4 + 3 * 2 * (2 * 16 * 16 * 4 + 96 * 3 * 4)


# ---------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(("change", "named"), [
    ({"full_attn_layers": [4, 8, 12, 16, 20, 24, 28]}, "linear_attn_config.full_attn_layers[6] 28"),
    ({"full_attn_layers": [0, 8, 12, 16, 20, 24, 27]}, "linear_attn_config.full_attn_layers[0] 0"),
    ({"kda_layers": [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19, 21, 22, 23, 25, 26, 27]},
     "linear_attn_config.kda_layers[20]: layer 27 is listed twice"),
    ({"kda_layers": [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19, 21, 22, 23, 25]},
     "linear_attn_config: layer 26 of 27 is in neither"),
    ({"kda_layers": "1-26"}, "linear_attn_config.kda_layers must be a list"),
    ({"full_attn_layers": [4, 8, 12, 16, 20, 24, True]}, "linear_attn_config.full_attn_layers[6] true"),
    ({"num_heads": 0}, "linear_attn_config.num_heads must be a positive integer"),
    ({"gate_rank": 16}, "linear_attn_config.gate_rank (not modelled"),
])
def test_a_schedule_transformers_would_not_build_is_refused_naming_the_field(cli: Any, tmp_path: Path,
                                                                           change: dict[str, Any], named: str) -> None:
    top = json.loads((KIMI / "config.json").read_text())
    top["linear_attn_config"] = {**top["linear_attn_config"], **change}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(top))
    for command in (("flops", "--seq", "8"), ("model", "--seq", "8")):
        r = cli(*command, "--config", str(path))
        assert r.code == 2 and r.out == "" and len(r.err.strip().splitlines()) == 1, r.err
        assert r.err.startswith("attncli: error: --config: ") and named in r.err, r.err


def test_a_config_without_its_depth_has_kimi_linears_27_layers(cli: Any, tmp_path: Path) -> None:
    """KimiLinearConfig's num_hidden_layers defaults to 27, which the published layer lists count to."""
    top = json.loads((KIMI / "config.json").read_text())
    del top["num_hidden_layers"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(top))
    doc = model(cli, "--config", str(path), "--seq", "1", "--cache", "15")
    assert doc["schedule"]["summary"] == "27 layers: 20 linear + 7 full (NoPE)"
    r = cli("flops", "--config", str(path), "--seq", "8", "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["config"]["kind"] == "kda"


def test_key_value_heads_other_than_the_heads_are_refused(cli: Any, tmp_path: Path) -> None:
    """KimiLinearAttention expands H key heads from the latent, then repeat_kv repeats them H / num_key_value_heads
    times: with 8 of 32 its keys have 128 heads for 32 queries, and the layer fails."""
    top = {**json.loads((KIMI / "config.json").read_text()), "num_key_value_heads": 8}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(top))
    r = cli("flops", "--config", str(path), "--seq", "8")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
    assert r.err.startswith("attncli: error: --config: num_key_value_heads 8 differs"), r.err
