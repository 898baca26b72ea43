"""``attncli model``'s core: whole-model totals against per-layer closed forms written here, the KV
cache rule (transformers' caches), paged blocks, tensor parallelism and the published numbers.

Expected KV bytes at 131,072 tokens, bfloat16, one sequence, come from shared/GUIDE.md section 6
(measured against transformers' caches); the models' sizes from their published config.json
files (tests/data/configs, sources in tests/data/configs/README.md).
"""

from __future__ import annotations

import pytest

from attncli.analyses.model import count_model, device_spec, fitting_tokens, model_specs, paged_blocks
from attncli.cli.layerflags import spec_keywords
from attncli.models.modelconfig import load_model_preset, read_model
from attncli.spec import AttnSpec

DATA = "tests/data/configs"


def model(folder: str, seq: int, cache: int = 0, **kw: object):  # type: ignore[no-untyped-def]
    m = read_model(f"{DATA}/{folder}")
    values = {k: v for k, v in spec_keywords(m.layer).items()
              if k not in m.layer.attention_fields and k not in m.layer.linear_fields}
    base, linear = model_specs(values, m.layer.attention_fields, m.layer.linear_fields,
                               {"batch": 1, "seq": seq, "cache": cache})
    return count_model(m.name, m.source, base, m.schedule, dtype="bfloat16", dtype_source="test",  # type: ignore[arg-type]
                       linear=linear, **kw)


@pytest.mark.parametrize(("folder", "kv"), [
    ("gpt-oss-20b", 3_224_346_624),     # 12 full x 131072 + 12 sliding x 127 tokens, 2 x 8 x 64 x 2 B each
    ("gemma-3-27b", 11_173_199_872),    # 10 full x 131072 + 52 sliding x 1023, 2 x 16 x 128 x 2 B
    ("llama-4-scout", 7_650_263_040),   # 12 full x 131072 + 36 chunked x 8191, 2 x 8 x 128 x 2 B
    ("deepseek-v3", 9_210_691_584),     # 61 layers x 131072 x (512 + 64) x 2 B
    ("llama-3.1-8b", 17_179_869_184),   # 32 x 131072 x 2 x 8 x 128 x 2 B
])
def test_published_kv_cache_at_128k(folder: str, kv: int) -> None:
    r = model(folder, seq=1, cache=131_071)
    assert r.totals()["kv_cache_bytes"] == kv


def test_gpt_oss_totals_equal_the_sum_of_per_layer_closed_forms() -> None:
    """gpt-oss-20b (openai/gpt-oss-20b config.json): E 2880, H 64, G 8, d 64, biases, 12 sliding (W 128) + 12 full."""
    e, h, g, d, w, L = 2880, 64, 8, 64, 128, 4096
    proj = L * e * h * d + 2 * L * e * g * d + L * h * d * e
    dense_layer = proj + 2 * h * L * L * d
    full_pairs, sliding_pairs = L * (L + 1) // 2, w * (w + 1) // 2 + (L - w) * w
    r = model("gpt-oss-20b", seq=L)
    tot = r.totals()
    assert tot["fvcore_flops"] == 24 * dense_layer
    assert tot["effective_fvcore_flops"] == 24 * proj + 12 * 2 * h * d * (full_pairs + sliding_pairs)
    params = e * h * d + h * d + 2 * (e * g * d + g * d) + h * d * e + e  # q/k/v/o weights and biases
    params += h  # GptOssAttention.sinks: one logit per head
    assert tot["params"] == 24 * params
    assert r.agree and [len(g.layers) for g in r.groups] == [12, 12]


def test_gemma3_with_and_without_layer_types_is_the_same_model(tmp_path: object) -> None:
    import json
    from pathlib import Path

    cfg = json.loads(Path(f"{DATA}/gemma-3-27b/config.json").read_text())
    text = cfg["text_config"]
    text["layer_types"] = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(62)]
    folder = Path(str(tmp_path)) / "gemma-3-27b-typed"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg))
    a, b = model("gemma-3-27b", seq=2048), None
    m = read_model(folder)
    assert m.schedule.summary() == "62 layers: 52 sliding (W 1024) + 10 full"
    b = count_model(m.name, m.source, a.spec, m.schedule, dtype="bfloat16", dtype_source="test")
    assert a.totals() == b.totals()


def test_mistral_32k_and_phi3_keep_a_window_minus_one() -> None:
    # Mistral-7B v0.1: 32 layers, sliding 4096 on every layer, G 8, d 128
    assert model("mistral-7b-v0.1", seq=1, cache=32_767).totals()["kv_cache_bytes"] == 32 * 4095 * 2 * 8 * 128 * 2
    # Phi-3-mini-4k: 32 layers, sliding 2047 on every layer, 32 K/V heads of 96
    assert model("phi-3-mini-4k", seq=1, cache=4095).totals()["kv_cache_bytes"] == 32 * 2046 * 2 * 32 * 96 * 2


@pytest.mark.parametrize(("s", "kept", "block", "blocks"), [
    (32, 32, 16, 2), (33, 33, 16, 3), (131072, 127, 16, 8), (130, 127, 16, 9), (5, 0, 16, 0), (16, 15, 16, 1),
])
def test_paged_blocks_cover_the_kept_tokens(s: int, kept: int, block: int, blocks: int) -> None:
    # tokens s - kept .. s - 1, token t in block t // block: counted by hand
    assert paged_blocks(s, kept, block) == blocks


def test_tp_on_llama_70b_gives_one_kv_head_per_device_at_8_and_16() -> None:
    """Llama-3.1-70B (meta-llama/Llama-3.1-70B): 64 query heads, 8 K/V heads of 128; vLLM replicates a K/V
    head when tp > 8."""
    a, b = model("llama-3.1-70b", seq=1, cache=4095, tp=8), model("llama-3.1-70b", seq=1, cache=4095, tp=16)
    da, db = a.per_device(), b.per_device()
    assert da is not None and db is not None
    assert da["kv_cache_bytes"] == db["kv_cache_bytes"] == 80 * 4096 * 2 * 1 * 128 * 2
    assert [g.device.kv_heads for g in b.groups if g.device] == [1]


def test_tp_keeps_the_whole_mla_latent_on_every_device() -> None:
    r = model("deepseek-v3", seq=1, cache=4095, tp=8)
    dev = r.per_device()
    assert dev is not None and dev["kv_cache_bytes"] == r.totals()["kv_cache_bytes"] == 61 * 4096 * 576 * 2
    # q_a_proj and kv_a_proj replicated, the rest split 8 ways (H 128 -> 16)
    one = r.groups[0].device
    assert one is not None and one.heads == 16


def test_tp_must_divide_the_heads() -> None:
    spec = AttnSpec(dim=60, heads=6, kv_heads=2, impl="sdpa").validate()
    with pytest.raises(Exception, match="--tp"):
        device_spec(spec, 4)


def test_fitting_tokens_is_the_largest_context_that_fits() -> None:
    # one full layer of 10 B/token and one sliding layer capped at 7 tokens of 10 B
    layers = [(1, 10, None), (1, 10, 7)]
    assert fitting_tokens(layers, 1, 1000) == 93  # 93*10 + 70 = 1000
    assert fitting_tokens(layers, 1, 999) == 92
    assert fitting_tokens(layers, 1, 5) == 0


def test_every_model_preset_is_read_and_counted() -> None:
    from attncli.models.modelconfig import model_preset_names

    names = model_preset_names()
    assert {"llama-3.1-405b", "qwen3-32b", "gpt-oss-120b", "kimi-k2"} <= set(names)
    for name in names:
        m = load_model_preset(name)
        assert m.schedule.layers and m.layer.dim > 0


# ---------------------------------------------------------------------------- linear and sparse layers
def test_qwen3_next_state_is_constant_and_full_layers_are_the_gated_closed_form() -> None:
    """Qwen3-Next-80B-A3B (Qwen/Qwen3-Next-80B-A3B-Instruct config.json): 48 layers, every 4th full
    (full_attention_interval 4). Gated full layers: E 2048, H 16, G 2, d 256, q_proj 2x (transformers'
    Qwen3NextAttention); linear layers: Gated DeltaNet, a state that does not grow with the context."""
    short, long = model("qwen3-next-80b-a3b", seq=1, cache=4095), model("qwen3-next-80b-a3b", seq=1, cache=131071)
    for r in (short, long):
        assert [(g.key.layer_type, g.spec.kind, g.n) for g in r.groups] == [
            ("linear_attention", "gdn", 36), ("full_attention", "gated", 12)]
    assert short.groups[0].kv_cache_bytes == long.groups[0].kv_cache_bytes > 0
    assert short.groups[0].kv_bytes_per_token == 0
    L = 4096
    r = model("qwen3-next-80b-a3b", seq=L)
    full = r.groups[1]
    e, h, g, d = 2048, 16, 2, 256
    proj = L * e * 2 * h * d + 2 * L * e * g * d + L * h * d * e
    assert full.variant.fvcore_flops == proj + 2 * h * L * L * d
    assert full.variant.effective_fvcore_flops == proj + 2 * h * d * L * (L + 1) // 2
    assert full.variant.params == e * 2 * h * d + 2 * e * g * d + h * d * e + 2 * d  # + q_norm, k_norm
    assert full.kv_cache_bytes == L * 2 * g * d * 2


def test_deepseek_v32_counts_the_indexer_and_top_k_attention() -> None:
    """DeepSeek-V3.2-Exp (inference/config_671B_v3.2.json): MLA (H 128, DN 128, DR 64, DV 128) with the
    lightning indexer (64 heads of 128, top 2048). At L 16384 the main attention sees min(p + 1, K) keys
    per query, the indexer scores every causal pair."""
    L, K = 16384, 2048
    r = model("deepseek-v3.2", seq=L)
    (g,) = r.groups
    assert g.spec.kind == "sparse_mla" and g.n == 61
    pairs = K * (K + 1) // 2 + (L - K) * K
    eff = g.variant.effective_by_stage
    assert eff["qk"] == 128 * (128 + 64) * pairs and eff["av"] == 128 * 128 * pairs
    assert g.variant.by_stage["qk"] == 128 * (128 + 64) * L * L  # dense: every pair
    assert eff["indexer_scores"] == 64 * (128 + 1) * L * (L + 1) // 2
    assert {"indexer_q_proj", "indexer_k_proj", "indexer_weights"} <= set(g.variant.by_stage)
