"""A step with a KV cache on a sliding or chunked layer computes what transformers computes: scores over
the W - 1 (or C - 1) keys its cache keeps and the L new ones, not over all S (GUIDE section 8).

The second counter is transformers itself: the real GptOssAttention (sliding) and Llama4TextAttention
(chunked) on CPU, a prefill into a DynamicCache, then FlopCounterMode on the next step. The closed
form, written here: projections as ever; QK^T and weights x V H*d per (query, key) pair over
min(N, W - 1) + L keys.
"""

from __future__ import annotations

from typing import Any

import pytest

from attncli.analyses.flops import count_variant
from attncli.spec import AttnSpec

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

E, H, G, D = 64, 4, 2, 16


def real_step(attn: Any, rotary: Any, config: Any, prefill: int, step: int) -> int:
    """FlopCounterMode MACs of the real layer's step of ``step`` tokens after ``prefill`` cached ones."""
    from torch.utils.flop_counter import FlopCounterMode

    cache = transformers.DynamicCache(config=config)

    def run(n: int, start: int) -> None:
        x = torch.randn(1, n, E)
        attn(x, position_embeddings=rotary(x, torch.arange(start, start + n)[None]), attention_mask=None,
             cache=cache)

    with torch.no_grad():
        run(prefill, 0)
        with FlopCounterMode(display=False) as fc:
            run(step, prefill)
    return int(fc.get_total_flops()) // 2


def closed_form(seq: int, keys: int, bias: bool) -> int:
    del bias  # NOTE: a bias is an add, not a multiply-add
    proj = seq * E * H * D + 2 * seq * E * G * D + seq * H * D * E
    return proj + 2 * seq * keys * H * D


def attncli_macs(**kw: Any) -> tuple[int, dict[str, int]]:
    """attncli's dense count (fvcore on its traced layer, checked against its closed form and
    FlopCounterMode: no problems) and effective count by stage."""
    spec = AttnSpec(dim=E, heads=H, kv_heads=G, d_head=D, batch=1, impl="split", mask="causal", **kw).validate()
    v = count_variant(spec)
    assert not v.problems
    return v.fvcore_flops, v.effective_by_stage


@pytest.mark.parametrize(("prefill", "step"), [(20, 1), (20, 3), (5, 1)])
def test_sliding_step_is_gpt_oss(prefill: int, step: int) -> None:
    from transformers.models.gpt_oss import modeling_gpt_oss as m

    w = 8
    config = transformers.GptOssConfig(hidden_size=E, num_attention_heads=H, num_key_value_heads=G, head_dim=D,
                                       num_hidden_layers=1, sliding_window=w, layer_types=["sliding_attention"])
    config._attn_implementation = "eager"
    attn = m.GptOssAttention(config, layer_idx=0).eval()
    keys = min(prefill, w - 1) + step
    want = closed_form(step, keys, bias=True)
    assert real_step(attn, m.GptOssRotaryEmbedding(config), config, prefill, step) == want
    dense, effective = attncli_macs(seq=step, cache=prefill, window=w)
    assert dense == want
    # every query of the step sees min(W, p + 1) keys: all it computes once the cache is full
    assert effective["qk"] == H * D * sum(min(w, p + 1) for p in range(prefill, prefill + step))


@pytest.mark.parametrize(("prefill", "step"), [(20, 3), (20, 1), (16, 1)])
def test_chunked_step_is_llama4(prefill: int, step: int) -> None:
    from transformers.models.llama4 import modeling_llama4 as m

    c = 8
    config = transformers.Llama4TextConfig(hidden_size=E, num_attention_heads=H, num_key_value_heads=G, head_dim=D,
                                           num_hidden_layers=4, attention_chunk_size=c, intermediate_size=E,
                                           intermediate_size_mlp=E)
    config._attn_implementation = "eager"
    assert config.layer_types[0] == "chunked_attention"
    attn = m.Llama4TextAttention(config, layer_idx=0).eval()
    keys = min(prefill, c - 1) + step
    want = closed_form(step, keys, bias=False)
    assert real_step(attn, m.Llama4TextRotaryEmbedding(config), config, prefill, step) == want
    dense, effective = attncli_macs(seq=step, cache=prefill, chunk=c, bias=False)
    assert dense == want
    # a query at position p sees the keys of its own chunk up to itself: (p mod C) + 1
    assert effective["qk"] == H * D * sum(p % c + 1 for p in range(prefill, prefill + step))
