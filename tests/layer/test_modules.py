"""The five implementations compute the same function as nn.MultiheadAttention.

Every own implementation loads the weights of a seeded ``nn.MultiheadAttention`` and must
match its output (and its returned weights, where it returns them) to 1e-5 for every layout,
mask and option; the reference is torch's own module, never attncli's code.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch

from attncli.kinds.standard.shapes import stage_shapes
from attncli.layer.modules import OWN, build, make_inputs, run
from attncli.spec import AttnSpec

LAYOUTS = {"batch-first": {"batch_first": True}, "seq-first": {"batch_first": False},
           "unbatched": {"unbatched": True, "batch": 1}}


def _specs() -> list[AttnSpec]:
    specs = []
    for impl, layout, mask, bias_kv, zero, cross, bias in itertools.product(
            OWN, LAYOUTS, ("none", "causal", "padding"), (False, True), (False, True),
            (False, True), (True, False)):
        if cross and (impl == "fused" or mask == "causal"):
            continue
        extra = {"kv_seq": 7, "kdim": 6, "vdim": 10} if cross else {}
        base = AttnSpec(dim=16, heads=4, batch=3, seq=5, impl=impl, mask=mask, bias=bias,
                        add_bias_kv=bias_kv, add_zero_attn=zero)
        specs.append(replace(base, **{**extra, **LAYOUTS[layout]}).validate())  # type: ignore[arg-type]
    return specs


SPECS = _specs()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.impl}-{s.mask}-bf{s.batch_first}-u{s.unbatched}"
                         f"-bkv{s.add_bias_kv}-z{s.add_zero_attn}-x{not s.is_self_attention}-b{s.bias}")
def test_impl_matches_torch(spec: AttnSpec) -> None:
    ref_spec = replace(spec, impl="torch")
    inputs = make_inputs(spec)
    with torch.no_grad():
        want_out, want_w = run(build(ref_spec), ref_spec, inputs)
        got_out, got_w = run(build(spec), spec, inputs)
    assert got_out.shape == want_out.shape
    torch.testing.assert_close(got_out, want_out, atol=1e-5, rtol=1e-5)
    if spec.impl == "sdpa":
        assert got_w is None  # SDPA never materialises the weights
    else:
        assert want_w is not None and got_w is not None
        torch.testing.assert_close(got_w, want_w, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("impl", "need", "avg"), list(itertools.product(
    ("split", "per-head", "fused"), (True, False), (True, False))))
def test_weight_options_match_torch(impl: str, need: bool, avg: bool) -> None:
    spec = AttnSpec(dim=12, heads=3, batch=2, seq=4, impl=impl, need_weights=need,
                    average_weights=avg, add_bias_kv=True).validate()
    ref_spec = replace(spec, impl="torch")
    inputs = make_inputs(spec)
    with torch.no_grad():
        _, want_w = run(build(ref_spec), ref_spec, inputs)
        _, got_w = run(build(spec), spec, inputs)
    assert (got_w is None) == (want_w is None) == (not need)
    if need:
        assert got_w is not None and want_w is not None
        torch.testing.assert_close(got_w, want_w, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("impl", sorted(OWN))
def test_without_out_proj_output_is_merged_heads(impl: str) -> None:
    # With W_O removed the output is the merged context; torch's MHA with out_proj set to the
    # identity computes exactly that.
    spec = AttnSpec(dim=16, heads=4, batch=2, seq=5, impl=impl, out_proj=False).validate()
    ref_spec = replace(spec, impl="torch")
    inputs = make_inputs(spec)
    with torch.no_grad():
        want, _ = run(build(ref_spec), ref_spec, inputs)
        got, _ = run(build(spec), spec, inputs)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


RECORDED: dict[str, set[str]] = {
    "split": {"input", "q", "k", "v", "q_heads", "k_heads", "v_heads", "scores", "weights", "context", "merged",
              "output"},
    "per-head": {"input", "context", "merged", "output"},  # each head's q, k, v are its own modules
    "sdpa": {"input", "q", "k", "v", "q_heads", "k_heads", "v_heads", "context", "merged", "output"},
}
RECORDED["fused"] = RECORDED["split"]


@pytest.mark.parametrize("spec", [s for s in SPECS if s.bias and s.mask != "causal" and s.impl in RECORDED][::3],
                         ids=lambda s: f"{s.impl}-bf{s.batch_first}-u{s.unbatched}-bkv{s.add_bias_kv}"
                         f"-z{s.add_zero_attn}-x{not s.is_self_attention}")
def test_recorded_stages_match_closed_form(spec: AttnSpec) -> None:
    module = build(spec, "meta")
    module.record = {}
    run(module, spec, make_inputs(spec, "meta"))
    assert set(module.record) == RECORDED[spec.impl]  # nothing recorded is a failure, not a pass
    # Written out here, not taken from attncli: H heads of E/H features; S' = S + bias_kv + zero_attn.
    b = () if spec.unbatched else (spec.batch,)
    h, n, e = spec.heads, spec.seq, spec.dim
    s_ = spec.s + spec.add_bias_kv + spec.add_zero_attn
    rec = {k: v[1:] if spec.unbatched else v for k, v in module.record.items()}
    assert rec["context"] == (*b, h, n, e // h) and rec["merged"] == (*b, n, e)
    if "scores" in rec:
        assert rec["scores"] == rec["weights"] == (*b, h, n, s_)
    if "k_heads" in rec:
        assert rec["k_heads"] == rec["v_heads"] == (*b, h, s_, e // h)
    want = {st.name: st.shape for st in stage_shapes(spec)}
    for name, shape in rec.items():
        if name in ("input", "output"):
            continue  # recorded batch-first inside; the closed form gives the user's layout
        assert shape == want[name], name


def test_meta_build_counts_any_size() -> None:
    spec = AttnSpec(dim=8192, heads=64, batch=8, seq=131072, impl="split").validate()
    out, _ = run(build(spec, "meta"), spec, make_inputs(spec, "meta"))
    assert out.shape == (8, 131072, 8192) and out.device.type == "meta"


def test_fused_refuses_cross_attention_tensors() -> None:
    spec = AttnSpec(dim=8, heads=2, batch=1, seq=3, impl="fused").validate()
    x = torch.randn(1, 3, 8)
    with pytest.raises(ValueError, match="self-attention only"):
        build(spec)(x, torch.randn(1, 3, 8), x)


def test_build_leaves_the_global_rng_alone() -> None:
    """Seeding the weights must not reseed the caller's torch RNG."""
    torch.manual_seed(1234)
    state = torch.random.get_rng_state()
    build(AttnSpec(dim=8, heads=2, seed=99, impl="split"))
    assert torch.equal(torch.random.get_rng_state(), state)
