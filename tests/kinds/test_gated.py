"""Qwen3-Next's gated full attention against transformers' own ``Qwen3NextAttention``.

Closed form (transformers 5.24 modeling_qwen3_next.py, Qwen3NextAttention): q_proj E x 2*H*d
(query and gate per head), k_proj and v_proj E x G*d, o_proj H*d x E, q_norm and k_norm d weights
each; QK^T and weights x V H*L*S*d. Qwen3-Next-80B-A3B (Qwen/Qwen3-Next-80B-A3B-Instruct
config.json): hidden 2048, 16 heads, 2 K/V heads, head_dim 256, no attention bias.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from attncli.analyses.flops import count_variant
from attncli.kinds.gated import kind as gated
from attncli.kinds.gated import torch_layer as gated_torch
from attncli.spec import AttnSpec

transformers = pytest.importorskip("transformers")
from transformers import Qwen3NextConfig  # noqa: E402
from transformers.models.qwen3_next.modeling_qwen3_next import Qwen3NextAttention  # noqa: E402

NEXT = {"dim": 2048, "heads": 16, "kv_heads": 2, "d_head": 256}


def spec(sizes: dict[str, int], **kw: object) -> AttnSpec:
    return AttnSpec(**{**sizes, "attn_output_gate": True, "impl": "gated", "bias": False, "batch": 1,
                       "mask": "causal", **kw}).validate()  # type: ignore[arg-type]


def config(e: int, h: int, g: int, d: int) -> Qwen3NextConfig:
    cfg = Qwen3NextConfig(hidden_size=e, num_attention_heads=h, num_key_value_heads=g, head_dim=d,
                          attention_bias=False)
    cfg._attn_implementation = "eager"
    return cfg


def test_closed_form_and_params_by_hand() -> None:
    L = 4096
    s = spec(NEXT, seq=L)
    want = {"q_proj": L * 2048 * 2 * 16 * 256, "k_proj": L * 2048 * 2 * 256, "v_proj": L * 2048 * 2 * 256,
            "qk": 16 * L * L * 256, "av": 16 * L * L * 256, "out_proj": L * 16 * 256 * 2048}
    assert gated.closed_form(s) == want
    assert gated.params(s)["total"] == 2048 * 8192 + 2 * 2048 * 512 + 4096 * 2048 + 2 * 256
    v = count_variant(s)
    assert v.by_stage == want and not v.problems and v.flop_counter is not None
    assert v.flop_counter.by_stage == {k: 2 * n for k, n in want.items()}
    assert v.effective_by_stage["qk"] == 16 * 256 * L * (L + 1) // 2


def test_the_real_class_at_published_sizes_holds_and_does_the_same() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        ref = Qwen3NextAttention(config(2048, 16, 2, 256), layer_idx=3).eval()
    s = spec(NEXT, seq=512)
    assert sum(p.numel() for p in ref.parameters()) == gated.params(s)["total"]
    x = torch.empty(1, 512, 2048, device="meta")
    cos = sin = torch.empty(1, 512, 64, device="meta")  # partial rotary: 0.25 x 256
    mask = torch.empty(1, 1, 512, 512, device="meta")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with FlopCounterMode(display=False) as counter:
            ref(x, (cos, sin), mask)
    assert counter.get_total_flops() == 2 * sum(gated.closed_form(s).values())


def test_same_output_as_transformers_with_the_same_weights() -> None:
    ref = Qwen3NextAttention(config(64, 4, 2, 16), layer_idx=3).eval()
    with torch.no_grad():
        for p in (ref.q_norm.weight, ref.k_norm.weight):
            p.uniform_(-0.5, 0.5)
    s = spec({"dim": 64, "heads": 4, "kv_heads": 2, "d_head": 16}, seq=6, batch=2)
    mine = gated_torch.build(s)
    mine.load_state_dict(ref.state_dict(), strict=True)
    (x, cos, sin), kw = gated_torch.make_args(s, rotary=4)
    additive = torch.zeros(2, 1, 6, 6).masked_fill(kw["blocked"], float("-inf"))
    with torch.no_grad():
        want, _ = ref(x, (cos.expand(2, -1, -1), sin.expand(2, -1, -1)), additive)
        got = mine(x, cos, sin, **kw)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
