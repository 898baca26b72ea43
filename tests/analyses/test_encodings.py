"""Positional encodings: the tables and rotations against their formulas, computed by hand.

Expected values come from the papers' formulas evaluated with :mod:`math` in the test, not
from the code under test. RoPE inside every implementation is checked against a reference
attention written out here step by step from ``nn.MultiheadAttention``'s own weights.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from attncli.analyses.permute import encodings as enc
from attncli.layer.modules import build
from attncli.spec import IMPLS, AttnSpec


# ---------------------------------------------------------------------------- sinusoidal
def test_sinusoidal_position_zero_is_sin0_cos0() -> None:
    table = enc.sinusoidal(1, 6)
    assert table[0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]


def test_sinusoidal_matches_the_paper_at_position_one_dim_four() -> None:
    # PE(1, 2i) = sin(1 / 10000^(2i/4)): i=0 -> sin(1), i=1 -> sin(1/100).
    expected = [math.sin(1.0), math.cos(1.0), math.sin(0.01), math.cos(0.01)]
    assert enc.sinusoidal(3, 4)[1].tolist() == pytest.approx(expected, abs=1e-15)


def test_sinusoidal_matches_the_paper_at_position_five_dim_six() -> None:
    pos, d = 5, 6
    expected = []
    for i in range(d // 2):
        angle = pos / 10000 ** (2 * i / d)
        expected += [math.sin(angle), math.cos(angle)]
    assert enc.sinusoidal(8, d)[pos].tolist() == pytest.approx(expected, abs=1e-15)


def test_sinusoidal_seed_size_dim_two() -> None:
    # dim 2: PE(p) = (sin p, cos p), the table the seed's three tokens get.
    table = enc.sinusoidal(3, 2)
    for p in range(3):
        assert table[p].tolist() == pytest.approx([math.sin(p), math.cos(p)], abs=1e-15)


def test_sinusoidal_odd_dim_ends_with_an_unpartnered_sine() -> None:
    table = enc.sinusoidal(4, 3)
    p = 3
    assert table[p].tolist() == pytest.approx(
        [math.sin(p), math.cos(p), math.sin(p / 10000 ** (2 / 3))], abs=1e-15)


def test_sinusoidal_dtype() -> None:
    assert enc.sinusoidal(3, 4, torch.float32).dtype == torch.float32


# ---------------------------------------------------------------------------- learned
def test_learned_is_a_seeded_normal_embedding_table() -> None:
    a, b, c = enc.learned(5, 4, seed=0), enc.learned(5, 4, seed=0), enc.learned(5, 4, seed=1)
    assert a.shape == (5, 4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # N(0, 1) from a local generator, exactly what nn.Embedding's init draws with it.
    expected = torch.empty(5, 4, dtype=torch.float64).normal_(generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, expected)


def test_learned_does_not_touch_the_global_rng() -> None:
    torch.manual_seed(123)
    first = torch.rand(3)
    torch.manual_seed(123)
    enc.learned(10, 8, seed=7)
    assert torch.equal(torch.rand(3), first)


def test_additive_tables() -> None:
    spec = AttnSpec(dim=4, heads=2, seq=3).validate()
    table = enc.additive_table("sinusoidal", spec, torch.float64)
    assert table is not None and torch.equal(table, enc.sinusoidal(3, 4))
    assert enc.additive_table("none", spec, torch.float64) is None
    assert enc.additive_table("rope", spec, torch.float64) is None
    assert set(enc.ADDITIVE) == {"sinusoidal", "learned"}
    assert all(enc.describe(name) for name in enc.ENCODINGS)


# ---------------------------------------------------------------------------- rope, the rotation
def _rot(x0: float, x1: float, angle: float) -> tuple[float, float]:
    """A 2-D rotation written out: (x0 cos - x1 sin, x0 sin + x1 cos)."""
    return x0 * math.cos(angle) - x1 * math.sin(angle), x0 * math.sin(angle) + x1 * math.cos(angle)


def test_rope_turns_a_pair_by_its_position() -> None:
    # One head of 2 features, tokens (1, 0) at positions 0..3: angle p * 10000^0 = p.
    x = torch.tensor([[[1.0, 0.0]] * 4], dtype=torch.float64)  # (1, 4, 2)
    out = enc.rotate(x, head_dim=2)
    for p in range(4):
        assert out[0, p].tolist() == pytest.approx([math.cos(p), math.sin(p)], abs=1e-15)


def test_rope_second_pair_turns_slower() -> None:
    # head_dim 4: pair 0 turns by p, pair 1 by p * 10000^(-2/4) = p / 100.
    x = torch.tensor([[[1.0, 0.0, 0.0, 1.0]] * 4], dtype=torch.float64)
    p = 3
    out = enc.rotate(x, head_dim=4)[0, p].tolist()
    assert out == pytest.approx([*_rot(1.0, 0.0, p), *_rot(0.0, 1.0, p / 100)], abs=1e-15)


def test_rope_acts_per_head() -> None:
    # Two heads of 2 features: both heads turn by the same angle p (their own pair 0).
    x = torch.tensor([[[1.0, 0.0, 2.0, 0.0]] * 3], dtype=torch.float64)
    out = enc.rotate(x, head_dim=2)[0, 2].tolist()
    assert out == pytest.approx([math.cos(2), math.sin(2), 2 * math.cos(2), 2 * math.sin(2)], abs=1e-15)


def test_rope_odd_head_dim_leaves_last_feature() -> None:
    x = torch.tensor([[[1.0, 2.0, 3.0]] * 2], dtype=torch.float64)
    out = enc.rotate(x, head_dim=3)[0, 1].tolist()
    assert out == pytest.approx([*_rot(1.0, 2.0, 1.0), 3.0], abs=1e-15)


def test_rope_head_dim_one_is_the_identity() -> None:
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    assert torch.equal(enc.rotate(x, head_dim=1), x)
    assert not enc.rope_acts(AttnSpec(dim=2, heads=2).validate())
    assert enc.rope_acts(AttnSpec(dim=2, heads=1).validate())


def test_rope_angles_formula() -> None:
    ang = enc.rope_angles(4, 6)
    assert ang.shape == (4, 3)
    for p in range(4):
        assert ang[p].tolist() == pytest.approx([p * 10000 ** (-2 * i / 6) for i in range(3)], abs=1e-15)


@settings(max_examples=25, deadline=None)
@given(d=st.integers(1, 4).map(lambda k: 2 * k), m=st.integers(0, 20), n=st.integers(0, 20),
       shift=st.integers(0, 20), seed=st.integers(0, 1000))
def test_rope_scores_depend_on_relative_position_only(d: int, m: int, n: int, shift: int, seed: int) -> None:
    # <R_m q, R_n k> = <R_(m+s) q, R_(n+s) k>: the score sees only n - m.
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    length = max(m, n) + shift + 1

    def at(v: Tensor, p: Tensor | int) -> Tensor:
        seq = v.expand(1, length, d).clone()
        return enc.rotate(seq, d)[0, p]

    base = torch.dot(at(q, m), at(k, n))
    shifted = torch.dot(at(q, m + shift), at(k, n + shift))
    assert float(base) == pytest.approx(float(shifted), abs=1e-9)
    # and the rotation keeps lengths
    assert float(at(q, m).norm()) == pytest.approx(float(q.norm()), abs=1e-12)


# ---------------------------------------------------------------------------- rope inside every impl
def reference_rope_attention(mha: nn.MultiheadAttention, x: Tensor) -> Tensor:
    """Self-attention with RoPE written out from MHA's weights; ``x`` is (b, l, e).

    Rotation matrices come from :mod:`math`, one 2x2 block per feature pair.
    """
    e, h = mha.embed_dim, mha.num_heads
    d = e // h
    assert mha.in_proj_weight is not None and mha.in_proj_bias is not None
    w_in, b_in = mha.in_proj_weight, mha.in_proj_bias
    wq, wk, wv = w_in[:e], w_in[e:2 * e], w_in[2 * e:]
    bq, bk, bv = b_in[:e], b_in[e:2 * e], b_in[2 * e:]
    b, length, _ = x.shape
    # (b, l, e) @ (e, e) -> (b, l, e) -> (b, h, l, d)
    q, k, v = ((x @ w.T + bias).view(b, length, h, d).transpose(1, 2)
               for w, bias in ((wq, bq), (wk, bk), (wv, bv)))
    rot = torch.zeros(length, d, d, dtype=x.dtype)  # R_p, block-diagonal
    for p in range(length):
        for i in range(d // 2):
            a = p * 10000 ** (-2 * i / d)
            rot[p, 2 * i:2 * i + 2, 2 * i:2 * i + 2] = torch.tensor(
                [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=x.dtype)
        if d % 2:
            rot[p, d - 1, d - 1] = 1.0
    # (l, d, d) @ (b, h, l, d, 1) -> (b, h, l, d)
    q = (rot @ q.unsqueeze(-1)).squeeze(-1)
    k = (rot @ k.unsqueeze(-1)).squeeze(-1)
    # (b, h, l, d) @ (b, h, d, l) -> (b, h, l, l)
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1)
    # (b, h, l, l) @ (b, h, l, d) -> (b, h, l, d) -> (b, l, e)
    ctx = (w @ v).transpose(1, 2).reshape(b, length, e)
    out: Tensor = mha.out_proj(ctx)
    return out


LAYOUTS: dict[str, dict[str, Any]] = {"batch-first": {"batch_first": True}, "seq-first": {"batch_first": False},
           "unbatched": {"unbatched": True, "batch": 1}}


def _to_layout(x: Tensor, spec: AttnSpec) -> Tensor:
    if spec.unbatched:
        return x[0]
    return x if spec.batch_first else x.transpose(0, 1)


def _from_layout(y: Tensor, spec: AttnSpec) -> Tensor:
    if spec.unbatched:
        return y[None]
    return y if spec.batch_first else y.transpose(0, 1)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("dim", "heads"), [(4, 2), (6, 2), (2, 1)])
def test_rope_in_every_impl_matches_the_written_out_reference(impl: str, layout: str, dim: int,
                                                              heads: int) -> None:
    kw = {"batch": 2, **LAYOUTS[layout]}
    spec = AttnSpec(dim=dim, heads=heads, seq=5, impl=impl, seed=3, **kw).validate()
    reference_mha = build(spec.with_(impl="torch")).double()
    assert isinstance(reference_mha, nn.MultiheadAttention)
    module = build(spec).double()
    x = torch.randn(spec.batch, spec.seq, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference_rope_attention(reference_mha, x)
        layer = enc.rope_ready(module, spec)
        xin = _to_layout(x, spec)
        with enc.rope_attached(layer, spec.head_dim) as calls:
            got = _from_layout(layer(xin, xin, xin)[0], spec)
        assert calls[0] > 0
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
        # the hooks are gone once the block closes: plain attention again
        plain = _from_layout(layer(xin, xin, xin)[0], spec)
        assert (plain - expected).abs().max() > 1e-6


def test_rope_ready_keeps_own_impls_and_stands_in_for_mha() -> None:
    spec = AttnSpec(dim=4, heads=2, seq=4, batch=1).validate()
    own = build(spec.with_(impl="sdpa"))
    assert enc.rope_ready(own, spec.with_(impl="sdpa")) is own
    mha = build(spec).double()
    stand_in = enc.rope_ready(mha, spec)
    assert stand_in is not mha
    x = torch.randn(1, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(stand_in(x, x, x)[0], mha(x, x, x)[0], rtol=0, atol=1e-12)


def test_rope_refuses_unknown_modules() -> None:
    spec = AttnSpec(dim=4, heads=2).validate()
    with pytest.raises(TypeError):
        enc.rope_ready(nn.Linear(4, 4), spec)
    with (pytest.raises(TypeError), enc.rope_attached(nn.Linear(4, 4), 2)):
        pass


def test_rope_leaves_bias_and_zero_keys_unrotated_the_same_way_in_every_impl() -> None:
    spec = AttnSpec(dim=4, heads=2, seq=4, batch=2, add_bias_kv=True, add_zero_attn=True).validate()
    x = torch.randn(2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    outs = []
    with torch.no_grad():
        for impl in ("torch", "split", "per-head", "sdpa"):
            s = spec.with_(impl=impl)
            layer = enc.rope_ready(build(s).double(), s)
            with enc.rope_attached(layer, s.head_dim):
                outs.append(layer(x, x, x)[0])
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], rtol=0, atol=1e-12)
