"""``model --tp`` on Qwen3-Next's gated full-attention layers (issue 32's fuzz: ``--tp 16`` was refused
naming --kv-heads, a flag not given; ``--tp 2`` kept both K/V heads on every device).

Closed forms: vLLM's ``Qwen3NextAttention`` (vllm/model_executor/models/qwen3_next.py) shards its heads as
``LlamaAttention``: ``num_heads = H / N`` and ``num_kv_heads = max(1, G / N)`` (a K/V head is replicated when
N > G). transformers' ``Qwen3NextAttention`` (modeling_qwen3_next.py): q_proj E -> H*d*2 (the gate),
k_proj/v_proj E -> G*d, o_proj H*d -> E, no biases, q_norm/k_norm of d weights each. The published config
(tests/data/configs/qwen3-next-80b-a3b): E 2048, H 16, G 2, d 256, bfloat16.
"""

from __future__ import annotations

from typing import Any

import pytest

E, H, G, D, BYTES = 2048, 16, 2, 256, 2
TOKENS = 4096  # --seq 1 --cache 4095


@pytest.mark.parametrize("tp", [2, 4, 16])
def test_a_gated_layer_shards_its_kv_heads_as_vllm(cli: Any, tp: int) -> None:
    r = cli("model", "--preset", "qwen3-next-80b-a3b", "--tp", str(tp), "--seq", "1", "--cache", "4095", "-f", "json")
    assert r.code == 0, r.err
    gated = next(g for g in r.json()["groups"] if g["kind"] == "gated")["per_device"]
    heads, kv_heads = H // tp, max(1, G // tp)
    assert (gated["heads"], gated["kv_heads"]) == (heads, kv_heads)
    assert gated["kv_cache_bytes"] == 2 * kv_heads * D * TOKENS * BYTES
    assert gated["params"] == E * heads * D * 2 + 2 * E * kv_heads * D + heads * D * E + 2 * D


def test_tp_that_fits_no_kv_head_is_refused_naming_tp(cli: Any) -> None:
    r = cli("model", "--preset", "qwen3-next-80b-a3b", "--tp", "3", "-f", "json")
    assert r.code == 2 and r.err.startswith("attncli: error: --tp: "), r.err
