"""Property tests: random valid settings, invariants that must hold for every one of them.

The strategy :func:`specs` draws valid :class:`AttnSpec`\\ s over every option attncli
exposes (sizes, heads, layouts, cross-attention, bias, bias_kv, zero_attn, masks, impls,
need_weights, average_weights, W_O, dropout, seed), respecting the rules of
:meth:`AttnSpec.validate` (heads divide dim, fused is self-attention only, causal needs
S == L, padding needs S >= 2, unbatched means batch 1). Sizes stay small (dim <= 32,
sequences <= 8) so the whole file runs in well under a minute on two cores.

Where the expected values come from:

- numerics: ``torch.nn.MultiheadAttention`` itself (``build(replace(spec, impl="torch"))``),
  on the inputs of :func:`make_inputs`;
- shapes and parameter counts: an ``nn.MultiheadAttention`` built here with torch's own
  constructor and called here on inputs made here, and the closed forms
  E*E + E*kdim + E*vdim (+3E) for the in-projection, E*E (+E) for W_O, 2E for bias_k/bias_v;
- permutations: the definition of equivariance, f(P x) = P f(x), checked on torch's module
  in float64;
- FLOPs: the closed form per stage, written out here (B*L*E*E for q and W_O, B*S*kdim*E and
  B*S*vdim*E for k and v, B*L*S'*E for QK^T and for weights x V, in multiply-adds), and
  ``torch.utils.flop_counter.FlopCounterMode`` run here on the meta device (2 per multiply-add).

Examples per property (hypothesis, ``derandomize=True`` so CI is deterministic):

- ``test_every_impl_agrees_with_torch``: 300
- ``test_shapes_and_params_are_what_mha_returns``: 200
- ``test_mha_permutes_with_queries_and_ignores_key_order``: 200
- ``test_flops_fvcore_closed_form_and_flop_counter_agree_per_stage``: 80
"""

from __future__ import annotations

from dataclasses import replace

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from attncli.analyses.flops import count_variant
from attncli.kinds.shapes import analyse
from attncli.kinds.standard.shapes import closed_form_params, mha_output_shapes
from attncli.layer.modules import build, make_inputs, run
from attncli.spec import IMPLS, SELF_ATTENTION_ONLY, AttnSpec

LAYOUTS = ("batch-first", "seq-first", "unbatched")


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def specs(draw: st.DrawFn, impls: tuple[str, ...] = IMPLS) -> AttnSpec:
    """A valid spec with small sizes; every drawn spec passes ``validate()``."""
    impl = draw(st.sampled_from(impls))
    heads = draw(st.integers(1, 4))
    dim = heads * draw(st.integers(1, 8))  # heads divides dim; dim <= 32
    layout = draw(st.sampled_from(LAYOUTS))
    unbatched = layout == "unbatched"
    batch = 1 if unbatched else draw(st.integers(1, 3))
    seq = draw(st.integers(1, 8))
    kv_seq = kdim = vdim = None
    if impl not in SELF_ATTENTION_ONLY and draw(st.booleans()):  # cross-attention
        kv_seq = draw(st.none() | st.integers(1, 8))
        kdim = draw(st.none() | st.integers(1, 16))
        vdim = draw(st.none() | st.integers(1, 16))
    s = seq if kv_seq is None else kv_seq
    masks = ["none"] + (["causal"] if s == seq else []) + (["padding"] if s >= 2 else [])
    spec = AttnSpec(
        dim=dim, heads=heads, batch=batch, seq=seq, kv_seq=kv_seq, kdim=kdim, vdim=vdim,
        bias=draw(st.booleans()), add_bias_kv=draw(st.booleans()), add_zero_attn=draw(st.booleans()),
        # eval mode: dropout must change nothing
        dropout=draw(st.sampled_from((0.0, 0.5))),
        batch_first=layout != "seq-first", unbatched=unbatched,
        need_weights=draw(st.booleans()), average_weights=draw(st.booleans()),
        mask=draw(st.sampled_from(masks)), impl=impl, out_proj=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)))
    return spec.validate()


# ---------------------------------------------------------------------------- 1. numerics
@_settings(300)
@given(spec=specs())
def test_every_impl_agrees_with_torch(spec: AttnSpec) -> None:
    # Expected: nn.MultiheadAttention with the same weights (build loads torch's weights into
    # every own impl) on the same inputs.
    ref_spec = replace(spec, impl="torch")
    inputs = make_inputs(ref_spec)
    with torch.no_grad():
        out, weights = run(build(spec), spec, inputs)
        ref_out, ref_weights = run(build(ref_spec), ref_spec, inputs)
    assert out.shape == ref_out.shape
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-4)
    if not spec.need_weights:
        assert weights is None and ref_weights is None
    elif spec.impl == "sdpa":
        assert weights is None  # SDPA never materialises the weights
        assert ref_weights is not None
    else:
        assert weights is not None and ref_weights is not None
        assert weights.shape == ref_weights.shape
        torch.testing.assert_close(weights, ref_weights, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------- 2. shapes
def _mha(spec: AttnSpec, dtype: torch.dtype = torch.float32) -> nn.MultiheadAttention:
    """torch's own constructor with the spec's options (not attncli's build)."""
    return nn.MultiheadAttention(spec.dim, spec.heads, dropout=spec.dropout, bias=spec.bias,
                                 add_bias_kv=spec.add_bias_kv, add_zero_attn=spec.add_zero_attn,
                                 kdim=spec.kdim, vdim=spec.vdim, batch_first=spec.batch_first,
                                 dtype=dtype).eval()


def _tokens(spec: AttnSpec, length: int, features: int, gen: torch.Generator,
            dtype: torch.dtype = torch.float32) -> Tensor:
    """Random tokens laid out as nn.MultiheadAttention's docs say: (L, E), (B, L, E) or (L, B, E)."""
    if spec.unbatched:
        shape: tuple[int, ...] = (length, features)
    elif spec.batch_first:
        shape = (spec.batch, length, features)
    else:
        shape = (length, spec.batch, features)
    return torch.randn(shape, generator=gen, dtype=dtype)


def _masks(spec: AttnSpec) -> tuple[Tensor | None, Tensor | None]:
    """(key_padding_mask, attn_mask) as MHA takes them; True = may not attend."""
    s = spec.s
    if spec.mask == "causal":
        return None, torch.ones(spec.seq, s, dtype=torch.bool).triu(1)
    if spec.mask == "padding":
        kpm = torch.zeros(spec.batch, s, dtype=torch.bool)
        kpm[:, -1] = True
        return (kpm[0] if spec.unbatched else kpm), None
    return None, None


def _qkv(spec: AttnSpec, gen: torch.Generator, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor, Tensor]:
    q = _tokens(spec, spec.seq, spec.dim, gen, dtype)
    if spec.is_self_attention:
        return q, q, q
    return q, _tokens(spec, spec.s, spec.k_dim, gen, dtype), _tokens(spec, spec.s, spec.v_dim, gen, dtype)


@_settings(200)
@given(spec=specs())
def test_shapes_and_params_are_what_mha_returns(spec: AttnSpec) -> None:
    report = analyse(spec)
    mha = _mha(spec)
    q, k, v = _qkv(spec, torch.Generator().manual_seed(spec.seed))
    kpm, attn_mask = _masks(spec)
    with torch.no_grad():
        out, weights = mha(q, k, v, key_padding_mask=kpm, need_weights=spec.need_weights,
                           attn_mask=attn_mask, average_attn_weights=spec.average_weights)
    torch_shapes = (tuple(out.shape), None if weights is None else tuple(weights.shape))
    # What MHA returns, whatever the impl (the outputs row is about MHA's contract).
    assert (report.attn_output, report.attn_weights) == torch_shapes
    assert mha_output_shapes(spec) == torch_shapes

    mha_params = {n: tuple(p.shape) for n, p in mha.named_parameters()}
    mha_total = sum(p.numel() for p in mha.parameters())
    out_proj_numel = mha.out_proj.weight.numel() + (0 if mha.out_proj.bias is None else mha.out_proj.bias.numel())
    # closed form (see module docstring) against torch's own count
    assert closed_form_params(spec)["total"] == mha_total - (0 if spec.out_proj else out_proj_numel)
    assert sum(report.components.values()) == report.total_params
    assert sum(w.numel for w in report.weights) == report.total_params
    if spec.impl == "torch":
        # --impl torch is MHA itself: same parameter names, shapes and total; without W_O, MHA's
        # out_proj (kept as the identity) is not counted, as in the flops count.
        kept = {n: s for n, s in mha_params.items() if spec.out_proj or not n.startswith("out_proj.")}
        assert {w.name: w.shape for w in report.weights} == kept
        assert report.total_params == mha_total - (0 if spec.out_proj else out_proj_numel)
    else:
        # Every own implementation holds exactly MHA's parameters, arranged differently.
        assert report.total_params == mha_total - (0 if spec.out_proj else out_proj_numel)


# ---------------------------------------------------------------------------- 3. permutations
def _seq_axis(spec: AttnSpec) -> int:
    return 1 if spec.batch_first and not spec.unbatched else 0


@_settings(200)
@given(spec=specs(impls=("torch",)), data=st.data())
def test_mha_permutes_with_queries_and_ignores_key_order(spec: AttnSpec, data: st.DataObject) -> None:
    # Complements tests/analyses/test_permute.py (self-attention, query order, through permute_test):
    # here straight on torch's module, also for cross-attention and with the masks moved
    # along with their tokens. Queries permuted by p, keys/values by kp (= p for
    # self-attention, where they are one tensor):
    #   out(P x) = P out(x);  weights(P x) = weights(x)[p][:, kp + extra keys].
    # The bias_kv / zero_attn keys are appended after the sequence and do not move.
    p = data.draw(st.permutations(range(spec.seq)), label="p")
    kp = p if spec.is_self_attention else data.draw(st.permutations(range(spec.s)), label="kp")
    pi, kpi = torch.tensor(p), torch.tensor(kp)
    axis = _seq_axis(spec)
    torch.manual_seed(spec.seed)
    mha = _mha(spec, torch.float64)
    q, k, v = _qkv(spec, torch.Generator().manual_seed(spec.seed), torch.float64)
    kpm, attn_mask = _masks(spec)
    qp = q.index_select(axis, pi)
    if spec.is_self_attention:
        kp_, vp = qp, qp  # keep one tensor: query is key is value
    else:
        kp_, vp = k.index_select(axis, kpi), v.index_select(axis, kpi)
    kpm_p = None if kpm is None else kpm.index_select(-1, kpi)
    attn_mask_p = None if attn_mask is None else attn_mask.index_select(0, pi).index_select(1, kpi)
    with torch.no_grad():
        out, w = mha(q, k, v, key_padding_mask=kpm, need_weights=spec.need_weights,
                     attn_mask=attn_mask, average_attn_weights=spec.average_weights)
        out_p, w_p = mha(qp, kp_, vp, key_padding_mask=kpm_p, need_weights=spec.need_weights,
                         attn_mask=attn_mask_p, average_attn_weights=spec.average_weights)
    torch.testing.assert_close(out_p, out.index_select(axis, pi), atol=1e-10, rtol=1e-9)
    if spec.need_weights:
        assert w is not None and w_p is not None
        cols = torch.cat([kpi, torch.arange(spec.s, spec.s_total)])
        expected = w.index_select(-2, pi).index_select(-1, cols)
        torch.testing.assert_close(w_p, expected, atol=1e-10, rtol=1e-9)


# ---------------------------------------------------------------------------- 4. FLOPs
def _closed_form_macs(spec: AttnSpec) -> dict[str, int]:
    """Multiply-adds per stage, by hand: (n, k) @ (k, m) is n*k*m (S' counts bias_kv/zero keys)."""
    b, n, s, s_, e = spec.batch, spec.seq, spec.s, spec.s_total, spec.dim
    return {
        "q_proj": b * n * e * e,  # (B*L, E) @ (E, E)
        "k_proj": b * s * spec.k_dim * e,  # (B*S, kdim) @ (kdim, E)
        "v_proj": b * s * spec.v_dim * e,  # (B*S, vdim) @ (vdim, E)
        "qk": b * n * s_ * e,  # H x (B, L, E/H) @ (B, E/H, S')
        "av": b * n * s_ * e,  # H x (B, L, S') @ (B, S', E/H)
        "out_proj": b * n * e * e if spec.out_proj else 0,  # (B*L, E) @ (E, E)
    }


@_settings(80)
@given(spec=specs())
def test_flops_fvcore_closed_form_and_flop_counter_agree_per_stage(spec: AttnSpec) -> None:
    closed = _closed_form_macs(spec)
    variant = count_variant(spec)  # fvcore + attncli's handles, traced on meta
    assert {k: variant.by_stage.get(k, 0) for k in closed} == closed
    assert sum(variant.by_stage.values()) == variant.fvcore_flops == sum(closed.values())
    assert variant.flops == 2 * variant.fvcore_flops
    fc = variant.flop_counter
    assert fc is not None and fc.by_stage is not None, fc
    assert {k: fc.by_stage.get(k, 0) for k in closed} == {k: 2 * v for k, v in closed.items()}
    assert not variant.problems, variant.problems

    # FlopCounterMode run here on the whole meta forward, not through attncli.analyses.flops.
    # MHA applies out_proj even when attncli makes it the identity (--no-out-proj).
    kept_w_o = spec.batch * spec.seq * spec.dim ** 2 if spec.impl == "torch" and not spec.out_proj else 0
    with FlopCounterMode(display=False) as counter:
        run(build(spec, "meta"), spec, make_inputs(spec, "meta"))
    assert counter.get_total_flops() == 2 * (sum(closed.values()) + kept_w_o)
