"""attncli's MLA layer against transformers' own ``DeepseekV3Attention`` (the real class, 5.x).

The same weights (``load_state_dict``: attncli's layer uses transformers' submodule names) give
the same output in both forms; a decode step against a cache gives the last row of a full run;
the real class at DeepSeek-V3's published sizes holds the parameters and does the MACs attncli's
closed form says (FlopCounterMode on meta, 2 FLOPs per MAC).
"""

from __future__ import annotations

import warnings

import pytest
import torch

from attncli.kinds.mla import kind as mla
from attncli.kinds.mla import torch_layer as mla_torch
from attncli.spec import AttnSpec

transformers = pytest.importorskip("transformers")
from transformers import DeepseekV3Config  # noqa: E402
from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3Attention  # noqa: E402

SMALL = {"dim": 64, "heads": 4, "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 6}


def config(q_lora_rank: int | None, **sizes: int) -> DeepseekV3Config:
    s = {**SMALL, **sizes}
    cfg = DeepseekV3Config(hidden_size=s["dim"], num_attention_heads=s["heads"], num_key_value_heads=s["heads"],
                           q_lora_rank=q_lora_rank, kv_lora_rank=s["kv_lora_rank"],
                           qk_nope_head_dim=s["qk_nope_head_dim"], qk_rope_head_dim=s["qk_rope_head_dim"],
                           v_head_dim=s["v_head_dim"], attention_bias=False, rope_interleave=False)
    cfg._attn_implementation = "eager"
    return cfg


def spec(q_lora_rank: int | None, **kw: object) -> AttnSpec:
    return AttnSpec(**{**SMALL, "q_lora_rank": q_lora_rank, "impl": "mla", "bias": False, "batch": 2,
                       "mask": "causal", **kw}).validate()  # type: ignore[arg-type]


@pytest.mark.parametrize("q_lora_rank", [24, None])
@pytest.mark.parametrize("form", ["naive", "absorbed"])
def test_same_output_as_transformers_with_the_same_weights(q_lora_rank: int | None, form: str) -> None:
    ref = DeepseekV3Attention(config(q_lora_rank), layer_idx=0).eval()
    s = spec(q_lora_rank, seq=7, mla_form=form)
    mine = mla_torch.build(s)
    mine.load_state_dict(ref.state_dict(), strict=True)
    (x, cos, sin), kw = mla_torch.make_args(s)
    additive = torch.zeros(2, 1, 7, 7).masked_fill(kw["blocked"], float("-inf"))
    with torch.no_grad():
        want, _ = ref(x, (cos.expand(2, -1, -1), sin.expand(2, -1, -1)), additive)
        got = mine(x, cos, sin, **kw)
    assert got.shape == want.shape == (2, 7, 64)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("form", ["naive", "absorbed"])
def test_a_decode_step_is_the_last_row_of_a_full_run(form: str) -> None:
    full = spec(24, seq=6, mla_form="naive")
    layer_ = mla_torch.build(full)
    (x, cos, sin), kw = mla_torch.make_args(full)
    with torch.no_grad():
        want = layer_(x, cos, sin, **kw)[:, -1:]
        # the cache as transformers keeps it: the normalised latent and the rotated RoPE key of tokens 0..4
        latent, k_rope = torch.split(layer_.kv_a_proj_with_mqa(x[:, :5]), [16, 4], dim=-1)
        latent = layer_.kv_a_layernorm(latent)
        k_rope = k_rope * cos[:5] + mla_torch.rotate_half(k_rope) * sin[:5]
        step = spec(24, seq=1, cache=5, mla_form=form)
        stepper = mla_torch.build(step)
        stepper.load_state_dict(layer_.state_dict())
        got = stepper(x[:, 5:], cos[5:], sin[5:], past_latent=latent, past_k_rope=k_rope)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_real_class_at_deepseek_v3_sizes_matches_params_and_closed_form() -> None:
    """DeepSeek-V3's published sizes (deepseek-ai/DeepSeek-V3 config.json), on meta: nothing allocated."""
    from torch.utils.flop_counter import FlopCounterMode

    sizes = {"dim": 7168, "heads": 128, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
             "v_head_dim": 128}
    with torch.device("meta"):
        ref = DeepseekV3Attention(config(1536, **sizes), layer_idx=0).eval()
    assert sum(p.numel() for p in ref.parameters()) == 187_107_328
    s = AttnSpec(**{**sizes, "q_lora_rank": 1536, "impl": "mla", "bias": False, "batch": 1, "seq": 256,
                    "mask": "causal"}).validate()  # type: ignore[arg-type]
    assert mla.params(s)["total"] == 187_107_328
    x = torch.empty(1, 256, 7168, device="meta")
    cos = sin = torch.empty(1, 256, 64, device="meta")
    mask = torch.empty(1, 1, 256, 256, device="meta")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with FlopCounterMode(display=False) as counter:
            ref(x, (cos, sin), mask)
    assert counter.get_total_flops() == 2 * sum(mla.closed_form(s).values())
