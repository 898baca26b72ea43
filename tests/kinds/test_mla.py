"""Multi-head latent attention: closed forms, the traced counts of both forms and the latent cache.

Expected numbers come from two places, never from attncli's own formulas:

- the closed forms written out below, per stage, from transformers 5.24's
  ``DeepseekV3Attention`` (q_a_proj E x RQ, q_b_proj RQ x H(DN+DR), kv_a_proj_with_mqa
  E x (R+DR), kv_b_proj R x H(DN+DV) over every cached latent, o_proj H*DV x E) and from
  DeepSeek-V3's ``inference/model.py`` with ``attn_impl="absorb"`` (W_UK folded into the query,
  attention over the R + DR latent, W_UV folded into the output);
- the published totals of ``shared/GUIDE.md`` section 6, measured against the real transformers
  layer at the models' published sizes (DeepSeek-V3: E 7168, H 128, RQ 1536, R 512, DN 128,
  DR 64, DV 128, deepseek-ai/DeepSeek-V3 config.json; Kimi K2: H 64, moonshotai/Kimi-K2-Instruct;
  DeepSeek-V2-Lite: E 2048, H 16, no query LoRA, deepseek-ai/DeepSeek-V2-Lite).
"""

from __future__ import annotations

import pytest

from attncli.analyses.flops import count_flops, count_variant
from attncli.kinds.mla import kind as mla
from attncli.registry import kind_of
from attncli.spec import AttnSpec, SpecError

V3 = {"dim": 7168, "heads": 128, "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_nope_head_dim": 128,
      "qk_rope_head_dim": 64, "v_head_dim": 128, "bias": False}
KIMI = {**V3, "heads": 64}
V2_LITE = {**V3, "dim": 2048, "heads": 16, "q_lora_rank": None}


def layer(sizes: dict[str, object], **kw: object) -> AttnSpec:
    return AttnSpec(**{**sizes, "impl": "mla", "batch": 1, "mask": "causal", **kw}).validate()  # type: ignore[arg-type]


def by_hand(sizes: dict[str, object], L: int, N: int, form: str) -> dict[str, int]:
    """The per-stage MACs, written from the models' code (see the module docstring)."""
    e, h, r = int(sizes["dim"]), int(sizes["heads"]), int(sizes["kv_lora_rank"])  # type: ignore[call-overload]
    rq = sizes["q_lora_rank"]
    dn, dr, dv = 128, 64, 128
    s = N + L
    if rq:
        q = int(rq)  # type: ignore[call-overload]
        out = {"q_a_proj": L * e * q, "q_b_proj": L * q * h * (dn + dr)}
    else:
        out = {"q_proj": L * e * h * (dn + dr)}
    out["kv_a_proj"] = L * e * (r + dr)
    if form == "naive":
        out |= {"kv_b_proj": s * r * h * (dn + dv), "qk": h * L * s * (dn + dr), "av": h * L * s * dv}
    else:
        out |= {"q_absorb": L * h * dn * r, "qk": h * L * s * (r + dr), "av": h * L * s * r,
                "out_absorb": L * h * r * dv}
    out["out_proj"] = L * h * dv * e
    return out


# ---------------------------------------------------------------------------- published numbers
def test_deepseek_v3_published_numbers() -> None:
    prefill = layer(V3, seq=4096)
    assert prefill.form == "naive"  # auto: not a decode step
    assert sum(mla.closed_form(prefill).values()) == 1_453_577_994_240
    assert mla.params(prefill)["total"] == 187_107_328
    decode = layer(V3, seq=1, cache=4095)
    assert decode.form == "absorbed"  # auto: L = 1 with a cache
    assert sum(mla.closed_form(decode).values()) == 757_530_624
    assert sum(mla.closed_form(decode.with_(mla_form="naive")).values()) == 69_057_576_960
    assert mla.kv_cache_bytes(layer(V3, seq=1), 2) == 1_152  # R + DR = 576 values at bfloat16, once


def test_deepseek_v3_effective_prefill_counts_the_causal_pairs() -> None:
    v = count_variant(layer(V3, seq=4096))
    assert v.effective_fvcore_flops == 1_110_064_496_640
    assert v.pairs == (4096 * 4097 // 2, 4096 * 4096)


def test_kimi_k2_published_numbers() -> None:
    spec = layer(KIMI, seq=4096)
    assert mla.params(spec)["total"] == 101_124_096
    assert sum(mla.closed_form(spec).values()) == 757_793_292_288


def test_per_pair_cost_of_the_two_forms() -> None:
    """640 FLOPs per (query, key) pair and head naive, 2,176 absorbed (GUIDE section 6)."""
    one = layer(V3, seq=1, cache=0, mask="none", heads=1)
    for form, flops in (("naive", 640), ("absorbed", 2176)):
        c = mla.closed_form(one.with_(mla_form=form))
        assert 2 * (c["qk"] + c["av"]) == flops


# ---------------------------------------------------------------------------- traced counts
CASES = [(V3, 4096, 0), (V3, 1, 4095), (KIMI, 4096, 0), (KIMI, 1, 4095), (V2_LITE, 4096, 0), (V2_LITE, 1, 4095),
         (V3, 16, 100)]


@pytest.mark.parametrize(("sizes", "L", "N"), CASES)
@pytest.mark.parametrize("form", ["naive", "absorbed"])
def test_trace_equals_closed_form_and_flop_counter_per_stage(sizes: dict[str, object], L: int, N: int,
                                                             form: str) -> None:
    spec = layer(sizes, seq=L, cache=N, mla_form=form)
    v = count_variant(spec)
    want = by_hand(sizes, L, N, form)
    assert v.by_stage == want and list(v.stages) == list(want)
    assert v.fvcore_flops == sum(want.values())
    assert v.flop_counter is not None and v.flop_counter.by_stage == {k: 2 * n for k, n in want.items()}
    assert v.flop_counter.flops == 2 * v.fvcore_flops
    assert not v.problems
    # effective: QK^T and weights x V over the causal pairs only, the rest as dense
    visible = sum(min(N + L, p + 1) for p in range(N, N + L))
    per_pair = {k: want[k] // (L * (N + L)) for k in ("qk", "av")}
    assert v.effective_by_stage == {**want, **{k: per_pair[k] * visible for k in per_pair}}


def test_stage_order_as_the_issue_names_them() -> None:
    assert mla.stages(layer(V3, seq=8)) == ("q_a_proj", "q_b_proj", "kv_a_proj", "kv_b_proj", "qk", "av", "out_proj")
    assert mla.stages(layer(V3, seq=8, mla_form="absorbed")) == (
        "q_a_proj", "q_b_proj", "kv_a_proj", "q_absorb", "qk", "av", "out_absorb", "out_proj")
    assert mla.stages(layer(V2_LITE, seq=8))[0] == "q_proj"


def test_flops_report_shows_the_form_that_runs_first_and_the_other_beside_it() -> None:
    r = count_flops(layer(V3, seq=1, cache=4095))
    assert [v.form for v in r.variants] == ["absorbed", "naive"]
    assert [v.fvcore_flops for v in r.variants] == [757_530_624, 69_057_576_960]
    doc = r.to_json()
    assert doc["config"]["kind"] == "mla" and doc["config"]["form"] == "absorbed"
    assert "kv_heads" not in doc["config"] and "head_dim" not in doc["config"]
    assert list(doc["variants"][0]["by_stage"]) == list(by_hand(V3, 1, 4095, "absorbed"))
    assert doc["closed_forms"]["q_absorb"] == "B*L*H*DN*R"


def test_params_of_the_traced_module_equal_the_closed_form_with_biases() -> None:
    spec = layer(V3, seq=2, bias=True)
    # attention_bias: q_a_proj (RQ), kv_a_proj_with_mqa (R + DR) and o_proj (E) get biases
    assert count_variant(spec).params == 187_107_328 + 1536 + 576 + 7168


def test_memory_holds_the_latent_not_expanded_keys() -> None:
    spec = layer(V3, seq=1, cache=4095)
    m = kind_of(spec).memory(spec, "bfloat16")
    assert m.kv_cache == 4096 * 576 * 2
    assert "k" not in m.activations  # absorbed: no expanded keys
    naive = kind_of(spec).memory(spec.with_(mla_form="naive"), "bfloat16")
    assert naive.activations["k"] == 4096 * 128 * 192 * 2


# ---------------------------------------------------------------------------- what MLA refuses
@pytest.mark.parametrize(("changes", "flag"), [
    ({"kv_heads": 8}, "--kv-heads"), ({"d_head": 64}, "--head-dim"), ({"window": 128}, "--window"),
    ({"kv_seq": 9}, "--kv-seq"), ({"impl": "sdpa"}, "--impl"), ({"mla_form": "fast"}, "--mla-form"),
    ({"q_lora_rank": -1}, "--q-lora-rank"), ({"v_head_dim": 0}, "--v-head-dim"),
    ({"add_bias_kv": True}, "--add-bias-kv"),
])
def test_settings_mla_does_not_take_are_refused_naming_the_flag(changes: dict[str, object], flag: str) -> None:
    with pytest.raises(SpecError) as err:
        AttnSpec(**{**V3, "impl": "mla", "seq": 8, **changes}).validate()  # type: ignore[arg-type]
    assert err.value.flag == flag


def test_mla_flags_without_kv_lora_rank_are_refused() -> None:
    with pytest.raises(SpecError) as err:
        AttnSpec(q_lora_rank=16).validate()
    assert err.value.flag == "--q-lora-rank" and "--kv-lora-rank" in err.value.message


def test_every_kind_is_named_once_for_the_cli_and_answers_the_protocol() -> None:
    import importlib

    from attncli.kinds.base import Kind
    from attncli.registry import ALL_KINDS, REGISTRY

    assert len(set(ALL_KINDS)) == len(REGISTRY) and ALL_KINDS[0] == "standard"
    names = [n for n in dir(Kind) if not n.startswith("_")] + list(Kind.__annotations__)
    for entry in REGISTRY:
        kind, mod = entry.name, importlib.import_module(entry.module)
        assert kind == mod.NAME and entry.module == f"attncli.kinds.{kind}.kind"
        assert not [n for n in names if not hasattr(mod, n)], kind
