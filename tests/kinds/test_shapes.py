"""``attncli.kinds.shapes`` and ``attncli.kinds.standard.shapes``: for --impl torch the reported shapes and
parameter counts are exactly
what ``nn.MultiheadAttention`` itself produces; expected values come from torch or from the
seeds (``001_*``/``004_*``: q (1, 10, 512) then (1, 8, 10, 64) for E=512, H=8, 10 tokens).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest
import torch
from torch import nn

from attncli.kinds import shapes
from attncli.kinds.standard import shapes as standard_shapes
from attncli.spec import AttnSpec

REQUIRED = ["input", "q", "k", "v", "q_heads", "k_heads", "v_heads", "scores", "weights",
            "context", "merged", "output"]


def test_seed_001_shapes() -> None:
    r = shapes.analyse(AttnSpec(dim=512, heads=8, batch=1, seq=10).validate())
    got = {s.name: s.shape for s in r.stages}
    assert [s.name for s in r.stages] == REQUIRED
    # seed 001: "q1 shape: torch.Size([1, 10, 512])", "q shape: torch.Size([1, 8, 10, 64])"
    assert got["q"] == (1, 10, 512)
    assert got["q_heads"] == (1, 8, 10, 64)
    assert got["scores"] == (1, 8, 10, 10)
    assert got["output"] == (1, 10, 512)
    # 3 * 512 * 512 + 3 * 512 (in-proj) + 512 * 512 + 512 (W_O) = 1,050,624
    assert r.total_params == 1_050_624
    assert sum(r.components.values()) == r.total_params


def _torch_specs() -> list[AttnSpec]:
    out = []
    for layout, need, avg, bkv, zero, cross, bias, mask in itertools.product(
            ("bf", "sf", "unbatched"), (True, False), (True, False), (False, True), (False, True),
            (False, True), (True, False), ("none", "causal", "padding")):
        if cross and mask == "causal":
            continue
        s = AttnSpec(dim=12, heads=3, batch=2, seq=4, need_weights=need, average_weights=avg,
                     add_bias_kv=bkv, add_zero_attn=zero, bias=bias, mask=mask,
                     batch_first=layout != "sf")
        if layout == "unbatched":
            s = replace(s, unbatched=True, batch=1)
        if cross:
            s = replace(s, kv_seq=6, kdim=5, vdim=7)
        out.append(s.validate())
    return out


@pytest.mark.parametrize("spec", _torch_specs(), ids=lambda s: (
    f"bf{s.batch_first}-u{s.unbatched}-w{s.need_weights}-a{s.average_weights}-bkv{s.add_bias_kv}"
    f"-z{s.add_zero_attn}-x{not s.is_self_attention}-b{s.bias}-{s.mask}"))
def test_torch_impl_reports_what_mha_returns(spec: AttnSpec) -> None:
    # The reference is torch's own module, built and run here with torch's own calls.
    mha = nn.MultiheadAttention(spec.dim, spec.heads, bias=spec.bias, add_bias_kv=spec.add_bias_kv,
                                add_zero_attn=spec.add_zero_attn, kdim=spec.kdim, vdim=spec.vdim,
                                batch_first=spec.batch_first)
    b = () if spec.unbatched else ((spec.batch,) if spec.batch_first else ())
    a = () if spec.unbatched or spec.batch_first else (spec.batch,)
    q = torch.randn(*b, spec.seq, *a, spec.dim)
    k = torch.randn(*b, spec.s, *a, spec.k_dim)
    v = torch.randn(*b, spec.s, *a, spec.v_dim)
    kpm = None
    if spec.mask == "padding":
        kpm = torch.zeros(*((spec.s,) if spec.unbatched else (spec.batch, spec.s)), dtype=torch.bool)
        kpm[..., -1] = True
    attn_mask = torch.ones(spec.seq, spec.s, dtype=torch.bool).triu(1) if spec.mask == "causal" else None
    out, w = mha(q, k, v, need_weights=spec.need_weights, average_attn_weights=spec.average_weights,
                 key_padding_mask=kpm, attn_mask=attn_mask)

    r = shapes.analyse(spec)
    assert r.attn_output == tuple(out.shape)
    assert r.attn_weights == (None if w is None else tuple(w.shape))
    assert r.total_params == sum(p.numel() for p in mha.parameters())
    assert standard_shapes.mha_output_shapes(spec) == (r.attn_output, r.attn_weights)
    stages = {s.name: s.shape for s in r.stages}
    assert stages["input"] == tuple(q.shape) and stages["output"] == tuple(out.shape)


@pytest.mark.parametrize("impl", ["split", "per-head", "fused", "sdpa"])
def test_own_impls_hold_the_same_parameter_count(impl: str) -> None:
    for bkv, bias in itertools.product((False, True), (False, True)):
        spec = AttnSpec(dim=16, heads=4, impl=impl, add_bias_kv=bkv, bias=bias).validate()
        r = shapes.analyse(spec)
        assert r.total_params == standard_shapes.closed_form_params(spec)["total"]
        assert sum(r.components.values()) == r.total_params


def test_closed_form_params_match_torch() -> None:
    for kdim, vdim, bias, bkv in itertools.product((None, 5), (None, 7), (True, False), (True, False)):
        spec = AttnSpec(dim=12, heads=3, kdim=kdim, vdim=vdim, bias=bias, add_bias_kv=bkv).validate()
        mha = nn.MultiheadAttention(12, 3, bias=bias, add_bias_kv=bkv, kdim=kdim, vdim=vdim)
        assert standard_shapes.closed_form_params(spec)["total"] == sum(p.numel() for p in mha.parameters())


def test_huge_layer_goes_to_meta() -> None:
    spec = AttnSpec(dim=8192, heads=64, batch=8, seq=131072).validate()
    r = shapes.analyse(spec)
    assert r.device == "meta"
    assert r.attn_weights == (8, 131072, 131072)
    assert r.total_params == 4 * 8192 * 8192 + 4 * 8192
    assert any("meta" in n for n in r.notes)


def test_component_names() -> None:
    assert shapes.component_of("in_proj_weight") == "in_proj"
    assert shapes.component_of("out_proj.bias") == "out_proj"
    assert shapes.component_of("bias_k") == "bias_kv"
    assert shapes.component_of("heads.3.q.weight") == "heads.3"
    assert shapes.component_of("W_q.weight") == "W_q"


def test_repeated_heads_fold_into_one_row() -> None:
    from attncli.kinds.shapes import WeightRow, folded_weights

    rows = [WeightRow(f"heads.{i}.q.weight", (8, 512), 4096, f"heads.{i}") for i in range(3)]
    rows.append(WeightRow("out_proj.weight", (512, 512), 262_144, "out_proj"))
    assert folded_weights(rows) == [("heads.{0..2}.q.weight", (8, 512), 3, 4096),
                                    ("out_proj.weight", (512, 512), 1, 262_144)]
    gap = [WeightRow(f"h.{i}.w", (2,), 2, "h") for i in (0, 2)]  # not 0..n-1: left as it is
    assert [name for name, *_ in folded_weights(gap)] == ["h.0.w", "h.2.w"]


def test_per_head_shapes_verbose_fit_a_screen_or_two(cli: Any) -> None:
    """64 heads of d = 512/64 = 8: each head's q weight is (8, 512) = 4,096 elements; q, k, v with
    biases are 3 x (4,096 + 8) = 12,312 per head; with W_O (512*512 + 512) 4*512*512 + 4*512 in all."""
    r = cli("shapes", "--impl", "per-head", "--heads", "64", "--dim", "512", "-v")
    assert r.code == 0 and len(r.out.splitlines()) < 60
    assert "heads.{0..63}.q.weight" in r.out and "64 x 4,096" in r.out and "64 x 12,312" in r.out
    assert f"{4 * 512 * 512 + 4 * 512:,}" in r.out
