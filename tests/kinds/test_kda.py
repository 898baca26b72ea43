"""Kimi Delta Attention as a kind (attncli.kinds.kda.kind): the engine's count of one layer at Kimi-Linear-48B-A3B's
published sizes, its settings and their one-line refusals, its JSON, its shapes and its roofline kernels.

Expected numbers are the closed forms of transformers 5.25's ``KimiLinearDeltaAttention`` (its torch path):
E 2304, H 32, D 128, K 4 (tests/data/configs/kimi-linear-48b-a3b); tests/kinds/test_kda_torch.py checks each
stage against the real module under FlopCounterMode.
"""

from __future__ import annotations

import pytest

from attncli.kinds.kda import counts, kind
from attncli.spec import AttnSpec, SpecError

E, H, D, K = 2304, 32, 128, 4
PUBLISHED = {"dim": E, "heads": 32, "linear_num_heads": H, "linear_head_dim": D, "linear_conv_kernel_dim": K,
             "impl": "kda", "mask": "causal", "batch": 1}


def layer(**kw: object) -> AttnSpec:
    return AttnSpec(**{**PUBLISHED, **kw}).validate()  # type: ignore[arg-type]


def test_a_decode_step_and_a_prefill_counted_by_the_engine() -> None:
    from attncli.analyses.flops import count_variant

    decode = layer(seq=1, cache=131_071)
    assert decode.kind == "kda" and decode.form == "recurrent"
    v = count_variant(decode, "bfloat16")
    assert v.agree, v.problems
    low_rank = E * D + D * H * D
    want = 3 * E * H * D + 3 * H * D * K * 2 + 2 * low_rank + E * H + 3 * H * D * D + H * D * E
    assert v.fvcore_flops == v.effective_fvcore_flops == want == 41_132_032
    assert v.params == 39_514_272
    prefill = layer(seq=8192)
    v = count_variant(prefill, "bfloat16")
    assert v.agree, v.problems
    assert prefill.form == "chunked"
    assert v.by_stage["delta_inv"] == H * 128 * (63 * 64 * 127 // 6)
    assert v.by_stage["conv"] == 3 * H * D * K * (8192 + K - 1)


def test_the_state_is_constant_in_the_context() -> None:
    for cache in (0, 15, 131_071):
        s = layer(seq=1, cache=cache) if cache else layer(seq=8)
        assert kind.kv_bytes_per_token(s, 2) == 0
        assert kind.kv_cache_bytes(s, 2) == H * D * D * 4 + 3 * H * D * K * 2 == 2_195_456
    assert kind.kv_cache_bytes(layer(seq=1, cache=3, batch=3), 4) == 3 * (H * D * D * 4 + 3 * H * D * K * 4)


@pytest.mark.parametrize(("changes", "flag"), [
    ({"linear_num_heads": 0}, "--linear-num-heads"),
    ({"linear_head_dim": -1}, "--linear-head-dim"),
    ({"window": 128}, "--window"),
    ({"chunk": 64}, "--chunk"),
    ({"impl": "sdpa"}, "--impl"),
    ({"mask": "padding"}, "--mask"),
    ({"dropout": 0.1}, "--dropout"),
    ({"kv_lora_rank": 512}, "--kv-lora-rank"),   # MLA's latent belongs to the full layers
    ({"index_topk": 64}, "--index-topk"),
    ({"linear_num_value_heads": 32}, "--linear-num-value-heads"),  # Gated DeltaNet's
    ({"gdn_form": "fused"}, "--gdn-form"),
])
def test_settings_kda_does_not_take_are_refused_naming_the_flag(changes: dict[str, object], flag: str) -> None:
    with pytest.raises(SpecError) as err:
        layer(seq=8, **changes)
    assert err.value.flag == flag


def test_kda_sizes_on_another_kind_are_refused() -> None:
    with pytest.raises(SpecError) as err:
        AttnSpec(dim=64, heads=4, linear_head_dim=16).validate()
    assert err.value.flag == "--linear-head-dim" and "Kimi Delta Attention" in err.value.message


def test_json_names_the_kda_sizes_and_drops_the_others() -> None:
    d = layer(seq=8).to_dict()
    assert d["kind"] == "kda" and d["form"] == "chunked"
    assert (d["linear_num_heads"], d["linear_head_dim"], d["linear_conv_kernel_dim"]) == (H, D, K)
    assert d["gdn_chunk"] == 64
    for absent in ("kv_lora_rank", "linear_num_value_heads", "index_topk", "kv_heads", "o_groups"):
        assert absent not in d


def test_the_other_form_is_a_variant() -> None:
    run, other = kind.variant_specs(layer(seq=1, cache=8))
    assert (run.form, other.form) == ("recurrent", "chunked")
    assert set(kind.stages(run)) == {"qkv_proj", "conv", "f_proj", "b_proj", "delta_read", "delta_write",
                                     "delta_out", "g_proj", "o_proj"}
    assert set(kind.closed_form_texts(other)) == set(kind.stages(other)) == set(counts.closed_form(other))


def test_shapes_runs_the_layer() -> None:
    s = AttnSpec(dim=64, heads=4, linear_num_heads=4, linear_head_dim=8, impl="kda", mask="causal", seq=70,
                 batch=2).validate()
    report = kind.analyse_shapes(s)
    assert report.attn_output == (2, 70, 64) and report.device == "cpu"
    assert report.total_params == counts.params(s)["total"]
    shapes = {st.name: st.shape for st in report.stages}
    assert shapes["recurrent_state"] == (2, 4, 8, 8) and shapes["decayed_keys"] == (2, 4, 2, 64, 8, 64)


def test_roofline_kernels_carry_the_counts() -> None:
    for s in (layer(seq=1, cache=100), layer(seq=300)):
        dense = kind.closed_form(s)
        eff, problems = kind.effective(s, dense)
        assert not problems and eff == dense
        for naive in (True, False):
            kernels = kind.kernel_elements(s, naive, dense, eff)
            assert sum(m for _, m, _ in kernels) == sum(dense.values())
            assert all(n > 0 for _, _, n in kernels)


def test_tensor_parallel_splits_the_kda_heads() -> None:
    from attncli.analyses.model import device_spec

    d = device_spec(layer(seq=1, cache=10), 8)
    assert d.linear_num_heads == 4
    assert counts.params(d)["forget_gate.f_a_proj"] == E * D  # replicated on every device
    with pytest.raises(SpecError) as err:
        device_spec(layer(seq=1, cache=10, linear_num_heads=12, heads=16), 8)
    assert err.value.flag == "--tp"
