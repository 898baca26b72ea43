"""``attncli model``'s totals equal the sum of the per-layer closed forms, written here from the models'
code and published configs (tests/data/configs, sources in its README), at a 4096-token prefill.

Standard layer (transformers' LlamaAttention and its relatives, no biases in these models):
q E*H*d, k and v E*G*d, W_O H*d*E per token; QK^T and weights x V H*d per (query, key) pair. The
visible pairs are counted one query at a time from the masks' definitions (transformers'
masking_utils: causal k <= p; sliding p - W < k <= p; chunked k // C == p // C, k <= p). qk-norm
weights (Qwen3, Gemma 3: RMSNorm(head_dim) on q and on k) are in the params, as the modules hold them.
"""

from __future__ import annotations

import pytest

from tests.analyses.test_model import model  # the CLI's path to a model's groups

L = 4096


def pairs(kind: str, size: int | None) -> int:
    """Visible (query, key) pairs of an L-token prefill, query by query."""
    if kind == "full":
        return sum(p + 1 for p in range(L))
    if kind == "sliding":
        assert size is not None
        return sum(min(size, p + 1) for p in range(L))
    assert size is not None
    return sum(p % size + 1 for p in range(L))  # chunked


def standard(e: int, h: int, g: int, d: int, visible: int) -> tuple[int, int, int]:
    """(dense MACs, effective MACs, params) of one standard layer without biases."""
    proj = L * e * h * d + 2 * L * e * g * d + L * h * d * e
    return proj + 2 * h * L * L * d, proj + 2 * h * d * visible, e * h * d + 2 * e * g * d + h * d * e


CASES = {
    # name: (E, H, G, d, [(layers, kind, W or C)])
    "gemma-2-9b": (3584, 16, 8, 256, [(21, "sliding", 4096), (21, "full", None)]),
    "gemma-3-27b": (5376, 32, 16, 128, [(52, "sliding", 1024), (10, "full", None)]),
    "llama-4-scout": (5120, 40, 8, 128, [(36, "chunked", 8192), (12, "full", None)]),
    "qwen3-8b": (4096, 32, 8, 128, [(36, "full", None)]),
    "phi-3-mini-4k": (3072, 32, 32, 96, [(32, "sliding", 2047)]),
    "mistral-7b-v0.1": (4096, 32, 8, 128, [(32, "sliding", 4096)]),
}


QK_NORM_HEAD = {"gemma-3-27b", "qwen3-8b"}


@pytest.mark.parametrize("name", list(CASES))
def test_totals_are_the_sum_of_per_layer_closed_forms(name: str) -> None:
    e, h, g, d, layers = CASES[name]
    want = [0, 0, 0]
    for n, kind, size in layers:
        for i, x in enumerate(standard(e, h, g, d, pairs(kind, size))):
            want[i] += n * x
    # Gemma3Attention and Qwen3Attention hold q_norm and k_norm = RMSNorm(head_dim): 2d weights a layer
    want[2] += sum(n for n, _, _ in layers) * 2 * d * (name in QK_NORM_HEAD)
    tot = model(name, seq=L).totals()
    assert (tot["fvcore_flops"], tot["effective_fvcore_flops"], tot["params"]) == tuple(want)


def test_deepseek_v3_totals_are_61_mla_layers() -> None:
    """61 MLA layers (E 7168, H 128, RQ 1536, R 512, DN 128, DR 64, DV 128): naive prefill (GUIDE section 6)."""
    e, h, rq, r, dn, dr, dv = 7168, 128, 1536, 512, 128, 64, 128
    proj = L * (e * rq + rq * h * (dn + dr) + e * (r + dr) + r * h * (dn + dv) + h * dv * e)
    dense = proj + h * L * L * (dn + dr + dv)
    effective = proj + h * (dn + dr + dv) * pairs("full", None)
    params = e * rq + rq + rq * h * (dn + dr) + e * (r + dr) + r + r * h * (dn + dv) + h * dv * e
    tot = model("deepseek-v3", seq=L).totals()
    assert (tot["fvcore_flops"], tot["effective_fvcore_flops"], tot["params"]) == (61 * dense, 61 * effective,
                                                                                   61 * params)
    assert dense == 1_453_577_994_240  # GUIDE section 6, measured against transformers' DeepseekV3Attention
