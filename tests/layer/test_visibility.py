"""Visible (query, key) pairs in closed form against a brute-force count and the masks built."""

from __future__ import annotations

import itertools

import pytest
import torch

from attncli.layer.modules import blocked_mask, make_inputs
from attncli.layer.visibility import spec_visible_pairs, visible_pairs
from attncli.spec import AttnSpec


def _brute(q_len: int, s: int, mask: str, window: int | None, extra: int) -> int:
    """Count pairs one by one from the definitions (query i at absolute position S - L + i)."""
    pad = max(1, s // 4)
    n = 0
    for i in range(q_len):
        p = s - q_len + i
        for j in range(s):
            if window is not None:
                n += p - window < j <= p
            elif mask == "causal":
                n += j <= p
            elif mask == "padding":
                n += j < s - pad
            else:
                n += 1
        n += extra
    return n


@pytest.mark.parametrize(("q_len", "s", "mask", "window", "extra"), [
    (q, s, m, w, x)
    for q, s in itertools.product(range(1, 7), range(1, 9)) if s >= q
    for m, w in (("none", None), ("causal", None), ("padding", None), ("none", 1), ("none", 3), ("none", 20))
    for x in (0, 2)
])
def test_closed_form_equals_brute_force(q_len: int, s: int, mask: str, window: int | None, extra: int) -> None:
    assert visible_pairs(q_len, s, mask=mask, window=window, extra_keys=extra) == _brute(q_len, s, mask, window, extra)


def test_llama_prefill_reference() -> None:
    # Causal prefill of 8192 tokens (a Llama-3-8B layer): L (L + 1) / 2 pairs.
    assert visible_pairs(8192, 8192, mask="causal") == 8192 * 8193 // 2 == 33_558_528


def test_window_long_sequence_grows_linearly() -> None:
    # W = 4096 over L = 32768: the first W positions are a triangle, the rest W keys each.
    w, n = 4096, 32768
    assert visible_pairs(n, n, window=w) == w * (w + 1) // 2 + (n - w) * w


@pytest.mark.parametrize("changes", [
    {"mask": "causal"}, {"window": 2}, {"window": 5, "cache": 3}, {"mask": "causal", "cache": 4},
    {"mask": "causal", "kv_seq": 9}, {"mask": "padding", "add_bias_kv": True},
])
def test_masks_built_hide_exactly_the_pairs_counted(changes: dict[str, object]) -> None:
    spec = AttnSpec(dim=8, heads=2, batch=1, seq=5, impl="split", **changes).validate()  # type: ignore[arg-type]
    inputs = make_inputs(spec)
    hidden = torch.zeros(spec.seq, spec.s, dtype=torch.bool)
    if inputs.attn_mask is not None:
        hidden |= inputs.attn_mask
    if inputs.key_padding_mask is not None:
        hidden |= inputs.key_padding_mask[0][None, :]
    extra = int(spec.add_bias_kv) + int(spec.add_zero_attn)
    assert int((~hidden).sum()) + spec.seq * extra == spec_visible_pairs(spec)


def test_no_mask_has_no_blocked_mask() -> None:
    assert blocked_mask(AttnSpec(seq=4).validate()) is None


# ---------------------------------------------------------------------------- chunked attention
def _brute_chunk(q_len: int, s: int, chunk: int) -> int:
    """From the definition (transformers' chunked_overlay, causal besides): key j is visible to the
    query at position p when j // C == p // C and j <= p."""
    return sum(j // chunk == p // chunk and j <= p for p in range(s - q_len, s) for j in range(s))


@pytest.mark.parametrize(("q_len", "s", "chunk"), [
    (q, s, c) for q, s in itertools.product(range(1, 8), range(1, 12)) if s >= q for c in (1, 2, 3, 4, 16)
])
def test_chunk_closed_form_equals_brute_force(q_len: int, s: int, chunk: int) -> None:
    assert visible_pairs(q_len, s, chunk=chunk) == _brute_chunk(q_len, s, chunk)


def test_llama4_chunk_prefill_reference() -> None:
    # Llama-4-Scout's chunk C = 8192 over L = 16384: two full chunks of C (C + 1) / 2 pairs each.
    assert visible_pairs(16384, 16384, chunk=8192) == 2 * 8192 * 8193 // 2


@pytest.mark.parametrize("changes", [{"chunk": 2}, {"chunk": 3, "cache": 4}, {"chunk": 16}])
def test_chunk_mask_built_hides_exactly_the_pairs_counted(changes: dict[str, object]) -> None:
    spec = AttnSpec(dim=8, heads=2, batch=1, seq=5, impl="split", **changes).validate()  # type: ignore[arg-type]
    mask = blocked_mask(spec)
    assert mask is not None and int((~mask).sum()) == spec_visible_pairs(spec)


@pytest.mark.parametrize(("changes", "kept"), [
    ({}, 9), ({"window": 4}, 3), ({"window": 64}, 9), ({"chunk": 4}, 3), ({"chunk": 10}, 9),
])
def test_cache_keeps_what_transformers_keeps(changes: dict[str, object], kept: int) -> None:
    """transformers' DynamicSlidingWindowLayer keeps the last W - 1 tokens (C - 1 for chunked layers)."""
    from attncli.layer.visibility import cached_tokens

    spec = AttnSpec(dim=8, heads=2, seq=1, cache=8, impl="split", **changes).validate()  # type: ignore[arg-type]
    assert cached_tokens(spec) == kept
