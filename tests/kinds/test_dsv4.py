"""DeepSeek-V4's attention counts (attncli.kinds.dsv4) against transformers' own modules.

Expected numbers: the published DeepSeek-V4-Flash sizes through transformers 5.25's
``DeepseekV4Attention`` (FlopCounterMode on meta, ``sum(p.numel())``, the cache's tensors; measured
2026-12-07 in 5.25 and again in 5.24, whose attention, compressors, indexer and caches count the same:
the issue's figures), and a tiny model run on CPU with the masks and the top-k selection read as the
real layers use them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attncli.kinds.dsv4 import counts as C
from attncli.kinds.dsv4 import sizes as Z
from attncli.spec import SpecError

FLASH = Path(__file__).parents[1] / "data" / "configs" / "deepseek-v4-flash" / "config.json"


def _flash() -> tuple[Z.Dsv4Sizes, list[str]]:
    cfg = json.loads(FLASH.read_text())
    return Z.read_sizes(cfg), Z.read_layer_types(cfg)


def test_flash_schedule_from_compress_ratios() -> None:
    # configuration_deepseek_v4.py: ratios 0/4/128 -> types, cut to num_hidden_layers (43 of 44)
    _, types = _flash()
    assert len(types) == 43
    assert (types.count(Z.SLIDING), types.count(Z.CSA), types.count(Z.HCA)) == (2, 21, 20)
    assert types[:4] == [Z.SLIDING, Z.SLIDING, Z.CSA, Z.HCA] and types[-1] == Z.CSA


def test_flash_equals_transformers_modules() -> None:
    # transformers' DeepseekV4Attention at the published sizes (5.24 in the issue, 5.25 measured):
    # params 5,086,317,888; dense MACs of an 8,192-token prefill 257,433,897,271,296; KV after one
    # decode step at 131,072 tokens (bf16, batch 1) 907,950,080 B with every distinct tensor once
    sizes, types = _flash()
    assert sum(C.params(sizes, t)["total"] for t in types) == 5_086_317_888
    assert sum(sum(C.dense(sizes, t, 1, 8192, 0).values()) for t in types) == 257_433_897_271_296
    assert sum(C.kv_cache_bytes(sizes, t, 1, 131_072, 2) for t in types) == 907_950_080
    # the aliased K=V window of the 41 compressed layers counted twice: 913,282,048
    twice = sum(C.kv_cache_bytes(sizes, t, 1, 131_072, 2) + (0 if t == Z.SLIDING else 127 * 512 * 2) for t in types)
    assert twice == 913_282_048
    # per layer type (the same modules): sliding 106,956,352, CSA 126,098,624, HCA 111,216,704 params
    assert [C.params(sizes, t)["total"] for t in Z.LAYER_TYPES] == [106_956_352, 126_098_624, 111_216_704]


def test_closed_form_sums() -> None:
    # the visible pairs written out query by query (absolute position p = N .. S-1)
    sizes = Z.Dsv4Sizes(hidden=8, heads=1, head_dim=4, q_lora_rank=4, o_groups=1, o_lora_rank=4, window=5,
                        index_heads=1, index_head_dim=4, index_topk=3, csa_ratio=4, hca_ratio=8)
    for n, q_len in ((0, 40), (17, 1), (9, 13), (30, 30)):
        ps = range(n, n + q_len)
        got = {t: C.visible_pairs(sizes, t, q_len, n) for t in Z.LAYER_TYPES}
        assert got[Z.SLIDING]["window"] == sum(min(p + 1, 5) for p in ps)
        assert got[Z.HCA]["compressed"] == sum((p + 1) // 8 for p in ps)
        assert got[Z.CSA]["compressed"] == sum(min(3, (p + 1) // 4) for p in ps)
        assert got[Z.CSA]["scored"] == sum((p + 1) // 4 for p in ps)


def test_bad_compress_ratio_is_one_config_error() -> None:
    cfg = json.loads(FLASH.read_text())
    cfg["compress_ratios"][5] = 16
    with pytest.raises(SpecError, match=r"compress_ratios\[5\] 16"):
        Z.read_layer_types(cfg)


TINY: dict[str, Any] = {
    "vocab_size": 64, "hidden_size": 32, "moe_intermediate_size": 8, "num_hidden_layers": 3,
    "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "q_lora_rank": 8, "qk_rope_head_dim": 4,
    "n_routed_experts": 4, "num_experts_per_tok": 2, "n_shared_experts": 1, "num_hash_layers": 0, "hc_mult": 2,
    "sliding_window": 6, "o_groups": 2, "o_lora_rank": 4, "index_n_heads": 2, "index_head_dim": 8, "index_topk": 3,
    "compress_ratios": [0, 4, 128], "compress_rates": {"compressed_sparse_attention": 4,
                                                        "heavily_compressed_attention": 8},
}


def test_tiny_model_runs_as_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefill, chunked prefill and decode through the real DeepseekV4Model on CPU: per layer the
    MACs FlopCounterMode sees, the pairs the mask (with the top-k's block bias) leaves, and the
    bytes of the cache's distinct tensors (the overlap gates float32, as position_bias is kept)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers.models.deepseek_v4")
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import DynamicCache
    from transformers.models.deepseek_v4 import modeling_deepseek_v4 as M
    from transformers.models.deepseek_v4.configuration_deepseek_v4 import DeepseekV4Config

    torch.manual_seed(0)
    config = DeepseekV4Config(**TINY)
    config._attn_implementation = "eager"
    model = M.DeepseekV4Model(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    sizes, types = Z.read_sizes(TINY), Z.read_layer_types(TINY)
    assert types == list(config.layer_types) and (sizes.csa_ratio, sizes.hca_ratio) == (4, 8)
    seen: dict[int, int] = {}
    original = M.eager_attention_forward

    def counting(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, *a: Any, **k: Any) -> Any:
        # eager masks hide a key with the dtype's minimum (the sliding mask) or -inf (the block bias)
        mask = attention_mask[0, 0]
        seen[module.layer_idx] = int((mask > torch.finfo(mask.dtype).min / 2).sum())
        return original(module, query, key, value, attention_mask, *a, **k)

    monkeypatch.setattr(M, "eager_attention_forward", counting)
    cache = DynamicCache(config=config)
    cached = 0
    for q_len in (23, 1, 9, 1, 1, 1):  # prefill, decode, chunked prefill, decodes across a closing window
        ids = torch.randint(0, 64, (1, q_len))
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(input_ids=ids, cache=cache, use_cache=True)
        counts = {name: sum(v.values()) for name, v in fc.get_flop_counts().items()}
        for i, t in enumerate(types):
            want = C.dense(sizes, t, 1, q_len, cached)
            assert _stages(counts, f"layers.{i}.self_attn") == {k: 2 * v for k, v in want.items()}, (t, q_len, cached)
            pairs = C.visible_pairs(sizes, t, q_len, cached)
            assert seen[i] == pairs["window"] + pairs["compressed"], (t, q_len, cached)
            layer = cache.layers[i]
            tensors = {id(v): v for v in _tensors(vars(layer)) if v.dim() > 0}
            kv = sum(v.numel() * v.element_size() for v in tensors.values())
            assert kv == C.kv_cache_bytes(sizes, t, 1, cached + q_len, 4), (t, q_len, cached)
        cached += q_len


def _tensors(state: dict[str, Any]) -> list[Any]:
    import torch

    out: list[Any] = []
    for value in state.values():
        for v in value.values() if isinstance(value, dict) else [value]:
            if isinstance(v, torch.Tensor):
                out.append(v)
    return out


def _stages(counts: dict[str, int], attn: str) -> dict[str, int]:
    """FLOPs per stage of one DeepseekV4Attention from FlopCounterMode's per-module totals (a module's
    count includes its submodules'): the projections by submodule, the scorer's matmul without its
    weights_proj, QK^T and weights x V together as what the attention runs outside its submodules."""
    def of(sub: str) -> int:
        return next((v for name, v in counts.items() if name.endswith(f"{attn}.{sub}")), 0)

    total = next(v for name, v in counts.items() if name.endswith(attn))
    out = {k: of(k) for k in ("q_a_proj", "q_b_proj", "kv_proj", "o_a_proj", "o_b_proj")}
    if of("compressor"):
        out["compressor_proj"] = of("compressor.kv_proj") + of("compressor.gate_proj")
    if of("compressor.indexer"):
        out["indexer_proj"] = of("compressor.indexer.kv_proj") + of("compressor.indexer.gate_proj")
        out["indexer_q_proj"] = of("compressor.indexer.q_b_proj")
        out["indexer_weights"] = of("compressor.indexer.scorer.weights_proj")
        out["indexer_scores"] = of("compressor.indexer.scorer") - out["indexer_weights"]
    attention = total - sum(out.values())
    out["qk"] = out["av"] = attention // 2
    return out


def test_flash_whole_model_steps() -> None:
    """The whole model per layer type, prefill and decode. Decode at 131,071 cached tokens, dense, as
    transformers' modules run it (FlopCounterMode on meta after a 131,071-token prefill through
    DynamicCache): 57,521,995,776 MACs; per layer sliding 115,343,360, CSA 2,550,398,976, HCA 186,646,528."""
    from attncli.kinds.dsv4 import totals as T

    cfg = json.loads(FLASH.read_text())
    _, prefill = T.count_model(cfg, seq=8192)
    assert [(g.layer_type, len(g.layers)) for g in prefill] == [(Z.SLIDING, 2), (Z.CSA, 21), (Z.HCA, 20)]
    got = T.totals(prefill)
    assert (got["fvcore_flops"], got["params"]) == (257_433_897_271_296, 5_086_317_888)
    _, decode = T.count_model(cfg, seq=1, cache=131_071)
    got = T.totals(decode)
    assert (got["kv_cache_bytes"], got["kv_cache_bytes_aliased_twice"]) == (907_950_080, 913_282_048)
    assert got["fvcore_flops"] == 57_521_995_776
    assert [sum(g.dense.values()) for g in decode] == [115_343_360, 2_550_398_976, 186_646_528]
    # effective, decode: the window (128 keys) and CSA's top-512 of 32,768 entries or HCA's 1,024, each
    # key H*D MACs in QK^T and again in weights x V; the indexer scores all 32,768 entries (closed form)
    csa = decode[1]
    hd = 64 * 512
    assert csa.effective["qk"] == (128 + 512) * hd and csa.dense["qk"] == (128 + 32_768) * hd
    assert decode[2].effective["qk"] == (128 + 1024) * hd
    assert csa.effective["indexer_scores"] == csa.dense["indexer_scores"] == 32_768 * 64 * 128
    assert "top-512 entries" in csa.line and "every closed entry" in decode[2].line


def test_bfloat16_cache_keeps_float32_overlap_gates() -> None:
    """Loaded in bfloat16 (from_config with a dtype, as from_pretrained does), transformers keeps
    position_bias in float32 (_keep_in_fp32_modules_strict), so the overlap gates a CSA cache holds are
    float32 and the rest bfloat16: the cache's distinct tensors equal kv_cache_bytes at 2 bytes."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers.models.deepseek_v4")
    from transformers import DynamicCache
    from transformers.models.deepseek_v4 import modeling_deepseek_v4 as M
    from transformers.models.deepseek_v4.configuration_deepseek_v4 import DeepseekV4Config

    torch.manual_seed(0)
    config = DeepseekV4Config(**TINY)
    config._attn_implementation = "eager"
    model = M.DeepseekV4Model._from_config(config, dtype=torch.bfloat16).eval()
    assert model.layers[1].self_attn.compressor.position_bias.dtype == torch.float32
    sizes, types = Z.read_sizes(TINY), Z.read_layer_types(TINY)
    cache, seen = DynamicCache(config=config), 0
    for q_len in (23, 1, 9):
        with torch.no_grad():
            model(input_ids=torch.randint(0, 64, (1, q_len)), cache=cache, use_cache=True)
        seen += q_len
        for i, t in enumerate(types):
            tensors = {id(v): v for v in _tensors(vars(cache.layers[i])) if v.dim() > 0}
            assert sum(v.numel() * v.element_size() for v in tensors.values()) == \
                C.kv_cache_bytes(sizes, t, 1, seen, 2), (t, seen)
