"""``attncli.analyses.flops``: the seed table, and counts that are right for every impl and option.

Where the expected numbers come from:

- the seed table is the fvcore experiment of seed ``002_*`` (ViT-style fused qkv, input
  (32, 1024, 512)): 60,129,542,144 without W_O for 1 and 8 heads, 68,719,476,736 with W_O;
- everything else is the closed form per stage (fvcore MACs): q proj B*L*E*E, k proj
  B*S*kdim*E, v proj B*S*vdim*E, QK^T and weights x V B*L*S'*E (S' = S, +1 bias_kv, +1
  zero_attn), W_O B*L*E*E, written out in :func:`closed` independently of ``attncli.analyses.flops``;
- FlopCounterMode (torch's own counter, 2 per multiply-add) must be exactly twice that.

Counts run on the meta device, so the seed size costs what a tiny one does.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest
import torch

from attncli.analyses.flops import (
    CLOSED_FORMS,
    SCHEMA,
    STAGES,
    FlopsReport,
    Variant,
    count_flops,
    count_module,
    count_variant,
    flop_counter_check,
    memory,
    variant_specs,
)
from attncli.layer import modules
from attncli.spec import IMPLS, AttnSpec, SpecError

SEED = AttnSpec(dim=512, heads=8, batch=32, seq=1024, impl="fused")
SEED_WITHOUT_W_O = 60_129_542_144  # seed 002: one head and eight heads, W_O removed
SEED_WITH_W_O = 68_719_476_736     # seed 002: eight heads with W_O


def closed(spec: AttnSpec) -> dict[str, int]:
    """The closed form per stage, written out here (not imported) so the test is independent."""
    b, n, s, e = spec.batch, spec.seq, spec.s, spec.dim
    s_ = s + spec.add_bias_kv + spec.add_zero_attn
    return {"q_proj": b * n * e * e, "k_proj": b * s * spec.k_dim * e, "v_proj": b * s * spec.v_dim * e,
            "qk": b * n * s_ * e, "av": b * n * s_ * e, "out_proj": b * n * e * e if spec.out_proj else 0}


def get(r: FlopsReport, heads: int, out_proj: bool) -> Variant:
    v = r.get(heads, out_proj)
    assert v is not None
    return v


# ---------------------------------------------------------------------------- the seed table
@pytest.fixture(scope="module")
def seed_report() -> FlopsReport:
    return count_flops(SEED)


def test_seed_table_is_exact(seed_report: FlopsReport) -> None:
    r = seed_report
    got = {(v.heads, v.out_proj): v.fvcore_flops for v in r.variants}
    assert got == {(1, False): SEED_WITHOUT_W_O, (8, True): SEED_WITH_W_O,
                   (8, False): SEED_WITHOUT_W_O, (1, True): SEED_WITH_W_O}
    # The seed's order: 1 head without W_O, 8 heads with, 8 heads without, 1 head with.
    assert [(v.heads, v.out_proj) for v in r.variants] == [(1, False), (8, True), (8, False), (1, True)]


def test_seed_conclusion(seed_report: FlopsReport) -> None:
    r = seed_report
    assert r.heads_cost == 0
    assert r.out_proj_cost == SEED_WITH_W_O - SEED_WITHOUT_W_O == 8_589_934_592
    assert r.out_proj_percent is not None and round(r.out_proj_percent, 1) == 14.3
    assert r.agree


def test_seed_params_and_stages(seed_report: FlopsReport) -> None:
    with_o, without = get(seed_report, 8, True), get(seed_report, 8, False)
    # qkv (512*1536 + 1536) + proj (512*512 + 512) = 1,050,624 (also in the README's shapes).
    assert with_o.params == 1_050_624
    assert without.params == 512 * 1536 + 1536
    assert with_o.by_stage == closed(SEED) == with_o.closed_form
    assert with_o.flop_counter is not None
    assert with_o.flop_counter.flops == 2 * SEED_WITH_W_O
    assert with_o.flop_counter.by_stage == {k: 2 * v for k, v in closed(SEED).items()}
    # The fused qkv Linear is three stages: a third each.
    assert with_o.count.stage_sources["q_proj"] == ("qkv: aten::linear",)


def test_seed_memory_and_training(seed_report: FlopsReport) -> None:
    one, eight = get(seed_report, 1, True), get(seed_report, 8, True)
    # (B, H, L, S) float32: 32*1*1024*1024*4 = 128 MiB for one head, 1 GiB for eight.
    assert one.memory.attention_matrix == 128 * 2**20
    assert eight.memory.attention_matrix == 2**30
    assert eight.flops == 2 * SEED_WITH_W_O
    assert eight.training_flops == 3 * 2 * SEED_WITH_W_O
    assert memory(SEED, "bfloat16").attention_matrix == memory(SEED, "float16").attention_matrix == 2**30 // 2


def test_any_size_on_meta() -> None:
    """Llama-scale attention at 128k tokens: counted, nothing allocated."""
    big = AttnSpec(dim=8192, heads=64, batch=8, seq=131072, impl="fused")
    v = count_variant(big)
    assert v.by_stage == closed(big) and v.agree
    assert v.fvcore_flops == 4 * 8 * 131072 * 8192 * 8192 + 2 * 8 * 131072 * 131072 * 8192
    assert v.memory.attention_matrix == 8 * 64 * 131072 * 131072 * 4  # 32 TiB it would need


def test_bad_dtype_names_the_flag() -> None:
    with pytest.raises(SpecError, match="--dtype"):
        count_flops(AttnSpec(dim=8, heads=2), dtype="float64")


# ---------------------------------------------------------------------------- every impl and option
BASE = AttnSpec(dim=16, heads=4, batch=2, seq=6)
OPTIONS: dict[str, dict[str, object]] = {
    "default": {},
    "sdpa-path (--no-need-weights)": {"need_weights": False},
    "baddbmm-path (causal mask)": {"mask": "causal"},
    "padding mask": {"mask": "padding"},
    "no-need-weights + causal": {"need_weights": False, "mask": "causal"},
    "cross kdim/vdim/kv-seq": {"kdim": 8, "vdim": 12, "kv_seq": 5},
    "cross kv-seq only": {"kv_seq": 9},
    "bias_kv": {"add_bias_kv": True},
    "zero_attn": {"add_zero_attn": True},
    "bias_kv + zero_attn + padding": {"add_bias_kv": True, "add_zero_attn": True, "mask": "padding"},
    "seq-first": {"batch_first": False},
    "unbatched": {"unbatched": True, "batch": 1},
    "unbatched sdpa-path": {"unbatched": True, "batch": 1, "need_weights": False},
    "per-head weights": {"average_weights": False},
    "no bias": {"bias": False},
    "without W_O": {"out_proj": False},
}


def _cases() -> list[tuple[str, str, AttnSpec]]:
    cases = []
    for impl, (name, opts) in itertools.product(IMPLS, OPTIONS.items()):
        try:
            spec = replace(BASE, impl=impl, **opts).validate()  # type: ignore[arg-type]
        except SpecError:
            continue  # fused is self-attention only
        cases.append((impl, name, spec))
    return cases


CASES = _cases()


@pytest.mark.parametrize(("impl", "option", "spec"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_fvcore_equals_closed_form_equals_flop_counter(impl: str, option: str, spec: AttnSpec) -> None:
    v = count_variant(spec)
    want = closed(spec)
    assert v.by_stage == want, "fvcore per stage"
    assert v.fvcore_flops == sum(want.values())
    assert sum(v.by_stage.values()) == v.fvcore_flops, "stages add up to the total"
    assert v.flop_counter is not None
    assert v.flop_counter.by_stage == {k: 2 * n for k, n in want.items()}, "FlopCounterMode / 2 per stage"
    assert v.flop_counter.flops == 2 * v.fvcore_flops
    assert v.problems == ()


def test_every_impl_agrees_on_the_seed_shape_scaled_down() -> None:
    """The five impls give one answer for the same layer (the point of having five)."""
    counts = {impl: count_variant(replace(BASE, impl=impl)).fvcore_flops for impl in IMPLS}
    assert len(set(counts.values())) == 1, counts


def test_torch_without_w_o_subtracts_mhas_out_proj() -> None:
    """MHA applies out_proj whatever we do; the report subtracts that stage and says so."""
    spec = replace(BASE, impl="torch", out_proj=False)
    v = count_variant(spec)
    assert v.count.total == sum(closed(replace(spec, out_proj=True)).values())  # as traced
    assert v.fvcore_flops == sum(closed(spec).values())
    assert v.params == 3 * 16 * 16 + 3 * 16  # in_proj only
    assert any("always applies out_proj" in n for n in v.notes)


def test_torch_out_proj_is_never_called_but_still_counted() -> None:
    v = count_variant(replace(BASE, impl="torch"))
    assert "out_proj" in v.count.uncalled_modules  # fvcore's view: MHA reads out_proj.weight itself
    assert v.by_stage["out_proj"] == closed(BASE)["out_proj"]
    assert v.count.stage_sources["out_proj"] == ("(layer): aten::linear",)


def test_uncounted_ops_are_listed() -> None:
    v = count_variant(replace(BASE, impl="torch", mask="causal"))
    assert {"aten::softmax", "aten::masked_fill_"} <= set(v.count.uncounted_ops)
    doc = v.to_json()
    assert all(u["why"] for u in doc["uncounted_ops"])


def test_heads_change_nothing_but_memory() -> None:
    for impl in IMPLS:
        one, many = (count_variant(replace(BASE, impl=impl, heads=h)) for h in (1, 4))
        assert one.by_stage == many.by_stage, impl
        assert many.memory.attention_matrix == 4 * one.memory.attention_matrix


def test_variants_dedupe_for_one_head() -> None:
    specs = variant_specs(replace(BASE, heads=1))
    assert [(s.heads, s.out_proj) for s in specs] == [(1, False), (1, True)]


# ---------------------------------------------------------------------------- JSON and API
def test_json_contract() -> None:
    r = count_flops(BASE)
    doc = json.loads(json.dumps(r.to_json()))
    assert doc["schema"] == SCHEMA == "attncli.flops/2"
    assert doc["config"]["dtype"] == "float32" and doc["config"]["dim"] == 16
    assert set(CLOSED_FORMS) == set(STAGES) == set(doc["variants"][0]["by_stage"])
    for v in doc["variants"]:
        assert {"heads", "out_proj", "fvcore_flops", "params", "by_stage", "flops", "training_flops",
                "memory", "cross_checks"} <= set(v)
        assert isinstance(v["fvcore_flops"], int) and isinstance(v["params"], int)
        assert v["flops"] == 2 * v["fvcore_flops"]
        assert v["cross_checks"]["closed_form"]["agree"] and v["cross_checks"]["flop_counter"]["agree"]
    assert doc["cross_checks"]["agree"] is True and doc["cross_checks"]["problems"] == []
    assert doc["conclusion"]["heads_cost"] == 0


def test_count_module_takes_inputs_or_tensors() -> None:
    spec = replace(BASE, impl="split")
    layer = modules.build(spec, "meta")
    by_inputs = count_module(layer, modules.make_inputs(spec, "meta"), spec)
    x = torch.empty(2, 6, 16, device="meta")
    by_tensors = count_module(layer, (x, x, x))
    assert by_inputs.by_stage == by_tensors.by_stage == closed(spec)
    assert by_inputs.by_module["W_q"] == closed(spec)["q_proj"]  # fvcore's by_module, names relative
    with pytest.raises(TypeError, match="spec"):
        count_module(layer, modules.make_inputs(spec, "meta"))


def test_flop_counter_on_cpu_misses_sdpa() -> None:
    """The torch 2.13 trap the meta device avoids: FlopCounterMode counts 0 for CPU SDPA."""
    spec = replace(BASE, impl="sdpa")
    layer = modules.build(spec, "cpu")
    x = torch.randn(2, 6, 16)
    counted = count_module(layer, (x, x, x))
    check = flop_counter_check(layer, (x, x, x), counted.ops)
    assert counted.by_stage == closed(spec)
    assert check.flops == 2 * (counted.total - closed(spec)["qk"] - closed(spec)["av"])
    assert check.by_stage is None and check.mismatches


def test_disagreement_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import attncli.analyses.flops as core
    import attncli.layer.formulas

    def wrong(spec: AttnSpec) -> dict[str, int]:
        return {**closed(spec), "qk": 1}

    monkeypatch.setattr(attncli.layer.formulas, "closed_form", wrong)
    v = core.count_variant(BASE)
    assert not v.agree and any(p.startswith("qk: fvcore") for p in v.problems)


@pytest.mark.parametrize(("changes", "flag"), [
    ({"seq": 10**9}, "--seq"),                     # (32, 8, 1e9, 1e9) scores: > 2**63 bytes
    ({"dim": 2**40, "heads": 1}, "--dim"),         # the (3E, E) qkv weight
    ({"batch": 2**31, "seq": 65536}, "--batch"),
])
def test_sizes_torch_cannot_describe_name_the_flag(changes: dict[str, int], flag: str) -> None:
    spec = replace(SEED, **changes)  # type: ignore[arg-type]
    with pytest.raises(SpecError) as err:
        count_flops(spec)
    assert err.value.flag == flag and "2**63 bytes" in err.value.message


def test_module_attribution_agrees_with_data_flow() -> None:
    """Where the stages are modules, fvcore's by_module gives the same split as the data flow."""
    split = count_variant(replace(BASE, impl="split"))
    m = split.count.by_module
    assert (m["W_q"], m["W_k"], m["W_v"], m["out_proj"]) == tuple(
        split.by_stage[s] for s in ("q_proj", "k_proj", "v_proj", "out_proj"))
    fused = count_variant(replace(BASE, impl="fused"))
    assert fused.count.by_module["qkv"] == sum(fused.by_stage[s] for s in ("q_proj", "k_proj", "v_proj"))
    per_head = count_variant(replace(BASE, impl="per-head"))
    for stage, name in (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v")):
        assert sum(per_head.count.by_module[f"heads.{i}.{name}"] for i in range(4)) == per_head.by_stage[stage]
