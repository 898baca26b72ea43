"""Gated DeltaNet: closed forms, the traced counts of both forms, the constant state, the settings.

Expected numbers are written out here from transformers 5.24's ``Qwen3NextGatedDeltaNet`` and
its torch functions, op by op, never taken from attncli's own formulas:

- ``in_proj_qkvz`` E x (2*HK*DK + 2*HV*DV), ``in_proj_ba`` E x 2*HV, ``out_proj`` HV*DV x E;
- ``causal_conv1d_fn``: ``F.conv1d(padding=K-1)`` over L tokens gives L + K - 1 outputs per
  channel, K multiply-adds each (after a state: over K + L inputs, L + 2K - 1 outputs);
  ``causal_conv1d_update`` (a decode step): K + 1 inputs, no padding, 2 outputs;
- ``torch_chunk_gated_delta_rule``: L padded to LP (a multiple of C = 64); ``k_beta @ key^T`` and
  ``query @ key^T`` (C x C over DK per chunk), then per chunk ``k_cumdecay @ S``, ``query @ S``
  (C x DK x DV), ``intra_chunk_attn @ v_new`` (C x C x DV), ``key^T @ v_new`` (DK x C x DV);
- ``torch_recurrent_gated_delta_rule``: per token ``(S * k).sum(-2)``, ``S + k delta^T`` and
  ``(S * q).sum(-2)``: DK x DV multiply-adds each;
- Qwen3-Next-80B-A3B's published sizes (Qwen/Qwen3-Next-80B-A3B-Instruct config.json, in
  tests/data/configs/qwen3-next-80b-a3b): E 2048, HK 16, HV 32, DK 128, DV 128, K 4.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attncli.analyses.flops import count_flops, count_variant
from attncli.kinds import base
from attncli.kinds.gdn import kind as gdn
from attncli.kinds.gdn.sizes import gdn_sizes
from attncli.registry import kind_of
from attncli.spec import AttnSpec, SpecError

CONFIG = Path(__file__).parent.parent / "data" / "configs" / "qwen3-next-80b-a3b" / "config.json"
NEXT = {"dim": 2048, "linear_num_key_heads": 16, "linear_num_value_heads": 32, "linear_key_head_dim": 128,
        "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4}
SMALL = {"dim": 64, "linear_num_key_heads": 2, "linear_num_value_heads": 4, "linear_key_head_dim": 8,
         "linear_value_head_dim": 6, "linear_conv_kernel_dim": 4}


def layer(sizes: dict[str, int], **kw: object) -> AttnSpec:
    return AttnSpec(**{**sizes, "impl": "gdn", "batch": 1, "mask": "causal", **kw}).validate()  # type: ignore[arg-type]


def by_hand(sizes: dict[str, int], B: int, L: int, N: int, form: str, C: int = 64) -> dict[str, int]:
    """Per-stage MACs, written from transformers' code (see the module docstring)."""
    E, HK, HV = sizes["dim"], sizes["linear_num_key_heads"], sizes["linear_num_value_heads"]
    DK, DV, K = sizes["linear_key_head_dim"], sizes["linear_value_head_dim"], sizes["linear_conv_kernel_dim"]
    conv_outputs = L + K - 1 if N == 0 else 2 if L == 1 else L + 2 * K - 1
    out = {"in_proj_qkvz": B * L * E * (2 * HK * DK + 2 * HV * DV), "in_proj_ba": B * L * E * 2 * HV,
           "conv": B * (2 * HK * DK + HV * DV) * conv_outputs * K}
    if form == "recurrent":
        out |= {"delta_read": B * HV * L * DK * DV, "delta_write": B * HV * L * DK * DV,
                "delta_out": B * HV * L * DK * DV}
    else:
        n = -(-L // C)
        out |= {"delta_kk": B * HV * n * C * C * DK, "delta_qk": B * HV * n * C * C * DK,
                "delta_read": B * HV * n * C * DK * DV, "delta_out": B * HV * n * C * DK * DV,
                "delta_av": B * HV * n * C * C * DV, "delta_write": B * HV * n * DK * C * DV}
    out["out_proj"] = B * L * HV * DV * E
    return out


# ---------------------------------------------------------------------------- published sizes
def test_the_published_config_has_the_sizes_used_here() -> None:
    cfg = json.loads(CONFIG.read_text())
    assert {k: cfg["hidden_size" if k == "dim" else k] for k in NEXT} == NEXT
    assert cfg["full_attention_interval"] == 4 and cfg["num_hidden_layers"] == 48


def test_qwen3_next_params_and_state() -> None:
    s = layer(NEXT, seq=4096)
    # 2048 x 12288 + 2048 x 64 + 8192 x 4 + 32 + 32 + 128 + 4096 x 2048
    assert gdn.params(s) == {"in_proj_qkvz": 25_165_824, "in_proj_ba": 131_072, "conv1d": 32_768, "dt_bias": 32,
                             "A_log": 32, "norm": 128, "out_proj": 8_388_608, "total": 33_718_464}
    # recurrent: 32 x 128 x 128 float32; conv: 8192 channels x K = 4 at bfloat16
    assert gdn.state_bytes(s, 2) == {"recurrent": 2_097_152, "conv": 65_536}
    assert gdn.kv_bytes_per_token(s, 2) == 0
    sizes = {gdn.kv_cache_bytes(layer(NEXT, seq=1, cache=n), 2) for n in (4095, 131_071)}
    assert sizes == {2_162_688}  # the same at a 4k and a 128k context
    assert gdn.kv_cache_bytes(layer(NEXT, seq=1, cache=7, batch=3), 2) == 3 * 2_162_688


@pytest.mark.parametrize(("L", "N", "form"), [(4096, 0, "chunked"), (4096, 0, "recurrent"), (1, 4095, "recurrent"),
                                              (1, 4095, "chunked"), (100, 50, "chunked"), (1, 0, "recurrent")])
def test_closed_forms_are_transformers_ops(L: int, N: int, form: str) -> None:
    s = layer(NEXT, seq=L, cache=N, gdn_form=form)
    assert gdn.closed_form(s) == by_hand(NEXT, 1, L, N, form)
    assert list(gdn.closed_form(s)) == list(gdn.stages(s)) == list(gdn.closed_form_texts(s))


def test_qwen3_next_prefill_and_decode_totals() -> None:
    prefill = layer(NEXT, seq=4096)
    assert prefill.form == "chunked"
    assert sum(gdn.closed_form(prefill).values()) == 147_773_816_832
    decode = layer(NEXT, seq=1, cache=4095)
    assert decode.form == "recurrent"
    assert sum(gdn.closed_form(decode).values()) == 35_323_904
    assert gdn.closed_form(decode) == gdn.closed_form(layer(NEXT, seq=1, cache=131_071))  # constant in N


def test_chunk_padding_and_chunk_size() -> None:
    # 100 tokens in chunks of 64: padded to 128, two chunks; in chunks of 16: 112, seven chunks
    assert gdn.padded_length(layer(SMALL, seq=100)) == 128
    s16 = layer(SMALL, seq=100, gdn_chunk=16)
    assert gdn.padded_length(s16) == 112
    assert gdn.closed_form(s16) == by_hand(SMALL, 1, 100, 0, "chunked", C=16)
    # the solves fvcore and FlopCounterMode do not count: C(C-1)/2 x (DK + DV) per chunk and value head
    assert gdn.triangular_solve_macs(s16) == 4 * 7 * 16 * 15 // 2 * (8 + 6)
    assert gdn.triangular_solve_macs(layer(SMALL, seq=100, gdn_form="recurrent")) == 0


# ---------------------------------------------------------------------------- traced counts
@pytest.mark.parametrize(("sizes", "kw"), [
    (NEXT, {"seq": 4096}), (NEXT, {"seq": 4096, "gdn_form": "recurrent"}), (NEXT, {"seq": 1, "cache": 4095}),
    (SMALL, {"seq": 100, "cache": 5, "batch": 3}), (SMALL, {"seq": 1, "cache": 3, "gdn_form": "chunked"}),
    (SMALL, {"seq": 70, "gdn_chunk": 16, "out_proj": False}), (SMALL, {"seq": 3, "gdn_form": "recurrent"}),
])
def test_fvcore_closed_form_and_flop_counter_agree_per_stage(sizes: dict[str, int], kw: dict[str, object]) -> None:
    s = layer(sizes, **kw)
    v = count_variant(s)
    assert v.problems == ()
    assert v.by_stage == gdn.closed_form(s)
    assert v.flop_counter is not None and v.flop_counter.by_stage is not None
    assert v.flop_counter.by_stage == {k: 2 * n for k, n in v.by_stage.items()}
    assert v.params == gdn.params(s)["total"]
    assert v.effective_by_stage == v.by_stage  # a linear layer: no (query, key) pairs to mask
    assert not {"qk", "av"} & set(v.by_stage)


def test_count_flops_shows_the_running_form_then_the_other() -> None:
    r = count_flops(layer(NEXT, seq=1, cache=4095))
    assert [v.form for v in r.variants] == ["recurrent", "chunked"] and r.agree
    assert r.variants[0].label == "32 value heads, recurrent form"
    text = gdn.conclusion(r)
    assert "recurrent form runs (auto: a decode step" in text and "the same at any context length" in text
    assert r.to_json()["variants"][0]["memory"]["kv_cache_bytes"] == gdn.kv_cache_bytes(r.spec, 4)


# ---------------------------------------------------------------------------- settings
def test_auto_form() -> None:
    assert layer(SMALL, seq=1, cache=4).form == "recurrent"
    assert layer(SMALL, seq=1).form == "chunked"  # no state: not a decode step
    assert layer(SMALL, seq=5, cache=4).form == "chunked"  # transformers: recurrent only for L = 1 with a state
    assert layer(SMALL, seq=5, gdn_form="recurrent").form == "recurrent"
    assert kind_of(layer(SMALL, seq=5)) is gdn


def test_defaults_are_qwen3_next_config_defaults() -> None:
    s = AttnSpec(dim=2048, impl="gdn", linear_num_value_heads=32, seq=8).validate()
    assert gdn_sizes(s).to_dict() == {k: v for k, v in NEXT.items() if k != "dim"}


@pytest.mark.parametrize(("kw", "flag"), [
    ({"window": 8}, "--window"), ({"chunk": 8}, "--chunk"), ({"kv_seq": 8}, "--kv-seq"), ({"kdim": 8}, "--kdim"),
    ({"vdim": 8}, "--vdim"), ({"add_bias_kv": True}, "--add-bias-kv"), ({"add_zero_attn": True}, "--add-zero-attn"),
    ({"dropout": 0.1}, "--dropout"), ({"batch_first": False}, "--no-batch-first"), ({"mask": "padding"}, "--mask"),
    ({"impl": "sdpa"}, "--impl"), ({"gdn_form": "fast"}, "--gdn-form"), ({"gdn_chunk": 0}, "--gdn-chunk"),
    ({"linear_num_value_heads": 3}, "--linear-num-value-heads"), ({"linear_key_head_dim": 0}, "--linear-key-head-dim"),
    ({"kv_lora_rank": 16}, "--kv-lora-rank"), ({"unbatched": True}, "--unbatched"),
])
def test_settings_gdn_does_not_take_are_refused(kw: dict[str, object], flag: str) -> None:
    with pytest.raises(SpecError) as e:
        layer(SMALL, seq=4, **kw)
    assert e.value.flag == flag


def test_full_attention_settings_of_the_same_config_are_accepted() -> None:
    # a model's config gives heads, kv_heads and head_dim for its full-attention layers
    s = layer(NEXT, heads=16, kv_heads=2, d_head=256, seq=8)
    assert gdn.closed_form(s) == gdn.closed_form(layer(NEXT, seq=8))


# ---------------------------------------------------------------------------- the kind's other answers
def test_every_name_of_the_kind_protocol() -> None:
    names = [n for n in vars(base.Kind) if not n.startswith("_")] + list(base.Kind.__annotations__)
    missing = [n for n in names if not hasattr(gdn, n)]
    assert not missing
    assert set(gdn.SWEEP_EXPECTED) >= {"seq", "batch", "dim", "cache"}
    for form in ("recurrent", "chunked"):
        s = layer(SMALL, seq=5, gdn_form=form)
        assert set(gdn.stages(s)) <= set(gdn.STAGE_LABELS) and set(gdn.stages(s)) <= set(gdn.SHORT_LABELS)


@pytest.mark.parametrize("kw", [{"seq": 4096}, {"seq": 1, "cache": 9}, {"seq": 4096, "gdn_form": "recurrent"}])
def test_kernels_do_every_mac(kw: dict[str, object]) -> None:
    s = layer(NEXT, **kw)
    dense = gdn.closed_form(s)
    for naive in (False, True):
        kernels = gdn.kernel_elements(s, naive, dense, dense)
        assert sum(macs for _, macs, _ in kernels) == sum(dense.values())
        assert all(elements > 0 for _, _, elements in kernels)


def test_memory_has_no_attention_matrix_in_the_recurrent_form() -> None:
    rec = gdn.memory(layer(NEXT, seq=1, cache=4095), "bfloat16")
    assert rec.attention_matrix == 0 and rec.kv_cache == 2_162_688
    chunked = gdn.memory(layer(NEXT, seq=4096), "bfloat16")
    assert chunked.attention_matrix == 32 * 4096 * 64 * 4  # the (C, C) intra-chunk attention, float32
    with pytest.raises(SpecError):
        gdn.memory(layer(NEXT, seq=8), "int3")


def test_representable() -> None:
    with pytest.raises(SpecError) as e:
        gdn.check_representable(layer(NEXT, seq=2**60))
    assert e.value.flag == "--seq"


def test_titles() -> None:
    s = layer(NEXT, seq=4096)
    assert gdn.title_parts(s) == ["Gated DeltaNet HK=16 HV=32 DK=128 DV=128 K=4", "chunked form C=64 (auto)"]
    assert gdn.short_label(s.with_(out_proj=False)) == "chunked form, no W_O"


# ---------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("form", ["chunked", "recurrent"])
@pytest.mark.parametrize("cache", [0, 3])
def test_closed_form_shapes_are_what_the_layer_produces(form: str, cache: int) -> None:
    import torch

    from attncli.kinds.gdn import torch_layer as gdn_torch
    from attncli.kinds.gdn.shapes import stage_shapes

    s = layer(SMALL, batch=2, seq=70, cache=cache, gdn_form=form)
    module = gdn_torch.build(s)
    hooked = {"in_proj_qkvz": "qkvz", "in_proj_ba": "ba", "conv1d": "conv_out", "delta_kk": "ut_system",
              "delta_qk": "intra_chunk", "out_proj": "output"}
    seen: dict[str, tuple[int, ...]] = {}
    for name, sub in module.named_children():
        if name in hooked:
            sub.register_forward_hook(lambda _m, _i, out, n=hooked[name]: seen.__setitem__(
                n, tuple((out[0] if isinstance(out, tuple) else out).shape)))
    module.conv1d.register_forward_hook(lambda _m, i, _o: seen.__setitem__("conv_in", tuple(i[0].shape)))
    args, kwargs = gdn_torch.make_args(s)
    with torch.no_grad():
        out, state, conv = module(*args, **kwargs)
    closed = {st.name: st.shape for st in stage_shapes(s)}
    assert len(seen) == (7 if form == "chunked" else 5)
    assert all(closed[k] == v for k, v in seen.items()), (seen, closed)
    assert closed["output"] == tuple(out.shape) == (2, 70, 64)
    assert closed["recurrent_state"] == tuple(state.shape)
    assert ("conv_state" in closed) == bool(cache) and tuple(conv.shape) == (2, 2 * 16 + 24, 4)


def test_shapes_report() -> None:
    from attncli.kinds.gdn.shapes import analyse

    r = analyse(layer(SMALL, seq=5))
    assert r.total_params == gdn.params(r.spec)["total"] == sum(w.numel for w in r.weights)
    assert r.components["conv1d"] == (2 * 16 + 24) * 4 and r.attn_output == (1, 5, 64) and r.device == "cpu"
    big = analyse(layer(NEXT, seq=131_072))
    assert big.device == "meta" and big.attn_output == (1, 131_072, 2048)


def test_effective_is_dense() -> None:
    from attncli.layer.visibility import dense_pairs

    s = layer(NEXT, seq=4096)
    dense = gdn.closed_form(s)
    assert gdn.effective(s, dense) == (dense, ())
    assert gdn.visible_pairs(s) == dense_pairs(s)
