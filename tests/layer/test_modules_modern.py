"""Grouped-query heads, a free head size, windows and a KV cache, against references that are
not attncli's code: ``nn.MultiheadAttention`` with K/V weights repeated per group, a full causal
run of the same tokens, and an einsum written out here."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import Tensor, nn

from attncli.layer.modules import OWN, SplitAttention, build, make_inputs, run
from attncli.spec import AttnSpec, SpecError

IMPLS = sorted(OWN)


def _mha_with_repeated_kv(layer: SplitAttention, spec: AttnSpec) -> nn.MultiheadAttention:
    """An MHA whose K/V head h copies K/V head h // (H/G) of ``layer``: GQA written as MHA."""
    r, d = spec.heads // spec.n_kv_heads, spec.head_dim
    mha = nn.MultiheadAttention(spec.dim, spec.heads, bias=spec.bias, batch_first=True)

    def rep(w: Tensor) -> Tensor:  # (G*d, ...) -> (H*d, ...): each group block r times
        return w.reshape(spec.n_kv_heads, d, *w.shape[1:]).repeat_interleave(r, 0).reshape(spec.heads * d,
                                                                                            *w.shape[1:])

    with torch.no_grad():
        assert mha.in_proj_weight is not None
        mha.in_proj_weight.copy_(torch.cat([layer.W_q.weight, rep(layer.W_k.weight), rep(layer.W_v.weight)]))
        if spec.bias:
            assert mha.in_proj_bias is not None and layer.W_q.bias is not None
            assert layer.W_k.bias is not None and layer.W_v.bias is not None
            mha.in_proj_bias.copy_(torch.cat([layer.W_q.bias, rep(layer.W_k.bias), rep(layer.W_v.bias)]))
        assert isinstance(layer.out_proj, nn.Linear)
        mha.out_proj.weight.copy_(layer.out_proj.weight)
        if spec.bias:
            mha.out_proj.bias.copy_(layer.out_proj.bias)
    return mha.eval()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("heads", "kv_heads", "mask"), [(4, 2, "none"), (4, 1, "causal"), (6, 3, "padding"),
                                                         (4, 4, "causal")])
def test_gqa_equals_mha_with_repeated_kv_heads(impl: str, heads: int, kv_heads: int, mask: str) -> None:
    spec = AttnSpec(dim=24, heads=heads, kv_heads=kv_heads, batch=2, seq=6, mask=mask, impl=impl).validate()
    split = build(replace(spec, impl="split"))
    assert isinstance(split, SplitAttention)
    mha = _mha_with_repeated_kv(split, spec)
    inputs = make_inputs(spec)
    with torch.no_grad():
        want, want_w = mha(inputs.query, inputs.key, inputs.value, key_padding_mask=inputs.key_padding_mask,
                           attn_mask=inputs.attn_mask, average_attn_weights=False)
        got, got_w = run(build(spec), spec, inputs)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    if impl != "sdpa":
        torch.testing.assert_close(got_w, want_w.mean(dim=1), atol=1e-5, rtol=1e-5)


def _einsum_reference(layer: SplitAttention, spec: AttnSpec, x: Tensor, hidden: Tensor | None) -> Tensor:
    """softmax(q k^T / sqrt(d)) v per head, with head h reading K/V head h // (H/G)."""
    h, g, d = spec.heads, spec.n_kv_heads, spec.head_dim
    b, n, _ = x.shape
    q = (x @ layer.W_q.weight.T + layer.W_q.bias).reshape(b, n, h, d)
    k = (x @ layer.W_k.weight.T + layer.W_k.bias).reshape(b, n, g, d)
    v = (x @ layer.W_v.weight.T + layer.W_v.bias).reshape(b, n, g, d)
    group = torch.arange(h) // (h // g)
    scores = torch.einsum("blhd,bshd->bhls", q, k[:, :, group]) / math.sqrt(d)
    if hidden is not None:
        scores = scores.masked_fill(hidden, float("-inf"))
    ctx = torch.einsum("bhls,bshd->blhd", scores.softmax(-1), v[:, :, group]).reshape(b, n, h * d)
    assert isinstance(layer.out_proj, nn.Linear)
    out: Tensor = layer.out_proj(ctx)
    return out


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("head_dim", "kv_heads", "window"), [(5, None, None), (3, 2, None), (8, 1, 3),
                                                              (4, 2, 1)])
def test_head_dim_and_window_equal_an_einsum(impl: str, head_dim: int, kv_heads: int | None,
                                             window: int | None) -> None:
    spec = AttnSpec(dim=12, heads=4, d_head=head_dim, kv_heads=kv_heads, window=window, batch=2, seq=7,
                    impl=impl).validate()
    split = build(replace(spec, impl="split"))
    assert isinstance(split, SplitAttention)
    inputs = make_inputs(spec)
    hidden = None
    if window is not None:  # query i sees keys i - W + 1 .. i, written out here
        hidden = torch.tensor([[not (i - window < j <= i) for j in range(spec.seq)] for i in range(spec.seq)])
    with torch.no_grad():
        want = _einsum_reference(split, spec, inputs.query, hidden)
        got, _ = run(build(spec), spec, inputs)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n_cached", "new", "window"), [(5, 1, None), (4, 3, None), (6, 2, 3)])
def test_cache_step_equals_the_last_rows_of_a_full_run(impl: str, n_cached: int, new: int,
                                                       window: int | None) -> None:
    # The decode/chunked-prefill step of a layer must give the outputs of the last `new`
    # tokens of a causal run over all N + L tokens, when the cache holds the first N tokens'
    # projected keys and values.
    full = AttnSpec(dim=16, heads=4, kv_heads=2, batch=2, seq=n_cached + new, mask="causal", window=window,
                    impl="split").validate()
    layer = build(full)
    assert isinstance(layer, SplitAttention)
    x = make_inputs(full).query
    with torch.no_grad():
        want, _ = run(layer, full, make_inputs(full))
        past_k = layer.split_heads(layer.W_k(x[:, :n_cached]), 2)
        past_v = layer.split_heads(layer.W_v(x[:, :n_cached]), 2)
        step = replace(full, seq=new, cache=n_cached, impl=impl).validate()
        # NOTE: a sliding layer's cache keeps the last W - 1 of them (transformers), and that is enough
        kept = n_cached - step.kept_cache
        assert kept == (0 if window is None else n_cached - (window - 1))
        past_k, past_v = past_k[:, :, kept:], past_v[:, :, kept:]
        inputs = make_inputs(step)
        new_x = x[:, n_cached:]
        inputs = replace(inputs, query=new_x, key=new_x, value=new_x, past_key=past_k, past_value=past_v)
        got, _ = run(build(step), step, inputs)
    torch.testing.assert_close(got, want[:, n_cached:], atol=1e-5, rtol=1e-5)


def test_build_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    build(AttnSpec(kv_heads=2, impl="split").validate())
    torch.testing.assert_close(torch.rand(3), want)


@pytest.mark.parametrize(("changes", "flag"), [
    ({"kv_heads": 3}, "--kv-heads"),
    ({"kv_heads": 16}, "--kv-heads"),
    ({"kv_heads": 0}, "--kv-heads"),
    ({"d_head": 0}, "--head-dim"),
    ({"window": 0}, "--window"),
    ({"cache": -1}, "--cache"),
    ({"window": 4, "mask": "padding"}, "--window"),
    ({"cache": 4, "kv_seq": 12}, "--cache"),
    ({"cache": 4, "add_bias_kv": True}, "--cache"),
    ({"impl": "torch", "kv_heads": 2}, "--kv-heads"),
    ({"impl": "torch", "d_head": 32}, "--head-dim"),
    ({"impl": "torch", "window": 4}, "--window"),
    ({"impl": "torch", "cache": 4}, "--cache"),
    ({"mask": "causal", "kv_seq": 4}, "--mask"),
])
def test_bad_modern_settings_name_their_flag(changes: dict[str, object], flag: str) -> None:
    base = {"impl": "split", **changes}
    with pytest.raises(SpecError) as info:
        AttnSpec(**base).validate()  # type: ignore[arg-type]
    assert info.value.flag == flag and "\n" not in str(info.value)
    if base["impl"] == "torch":
        assert "split, per-head, fused, sdpa" in str(info.value)


def test_torch_accepts_the_default_head_size_spelled_out() -> None:
    AttnSpec(dim=512, heads=8, d_head=64, kv_heads=8, impl="torch").validate()
