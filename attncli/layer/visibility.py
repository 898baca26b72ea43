"""Which (query, key) pairs a mask leaves visible, counted in closed form (no torch).

A dense count charges every score: L x S' pairs per batch item and head. Kernels in the
FlashAttention family skip the blocks a causal or sliding-window mask hides, so the work they
do is proportional to the *visible* pairs. This module counts those pairs exactly, for the
conventions attncli uses (and :func:`attncli.layer.modules.make_inputs` builds as masks):

- positions are absolute: the L queries are the last L of the S keys (bottom-right alignment,
  as FlashAttention and SDPA with a KV cache do), so query i sits at position p = S - L + i;
- ``causal``: query p sees keys 0 .. p, that is p + 1 keys;
- ``window`` W: query p sees keys max(0, p - W + 1) .. p, that is min(W, p + 1) keys (causal by
  itself, Mistral's ``sliding_window``, FlashAttention's ``window_size=(W - 1, 0)``);
- ``chunk`` C: query p sees keys floor(p/C)*C .. p, that is (p mod C) + 1 keys (Llama 4's
  ``attention_chunk_size``: transformers' ``chunked_overlay`` keeps k when k // C == p // C,
  causal besides);
- ``padding``: the last max(1, S // 4) keys of every batch item are padding, hidden from every
  query;
- the extra keys of ``add_bias_kv`` and ``add_zero_attn`` come after the S keys and are seen by
  every query (``nn.MultiheadAttention`` pads its masks with "visible" for them).
"""

from __future__ import annotations

from attncli.spec import AttnSpec


def padded_keys(s: int) -> int:
    """How many trailing keys ``--mask padding`` marks as padding (at least one)."""
    return max(1, s // 4)


def _sum_min(w: int, lo: int, hi: int) -> int:
    """sum over p in [lo, hi] of min(w, p + 1), in closed form (empty range: 0)."""
    if hi < lo:
        return 0
    # Positions p < w - 1 see p + 1 keys (a triangle); the rest see w keys each.
    tri_hi = min(hi, w - 2)
    tri = (tri_hi + 1) * (tri_hi + 2) // 2 - lo * (lo + 1) // 2 if tri_hi >= lo else 0
    flat = max(0, hi - max(lo, w - 1) + 1)
    return tri + flat * w


def _sum_mod(c: int, lo: int, hi: int) -> int:
    """sum over p in [lo, hi] of (p mod c) + 1, in closed form (empty range: 0)."""
    def upto(n: int) -> int:  # sum over p in [0, n) of (p mod c) + 1
        full, rest = divmod(n, c)
        return full * c * (c + 1) // 2 + rest * (rest + 1) // 2

    return upto(hi + 1) - upto(lo) if hi >= lo else 0


def visible_pairs(q_len: int, s: int, *, mask: str = "none", window: int | None = None,
                  extra_keys: int = 0, chunk: int | None = None) -> int:
    """Visible (query, key) pairs of one batch item and head: L queries against S (+ extra) keys."""
    lo, hi = s - q_len, s - 1  # absolute positions of the L queries
    if chunk is not None:
        base = _sum_mod(chunk, lo, hi)
    elif window is not None:
        base = _sum_min(window, lo, hi)
    elif mask == "causal":
        base = _sum_min(s, lo, hi)  # min(S, p + 1) = p + 1 for every p < S
    elif mask == "padding":
        base = q_len * (s - padded_keys(s))
    else:
        base = q_len * s
    return base + q_len * extra_keys


def spec_visible_pairs(spec: AttnSpec) -> int:
    """:func:`visible_pairs` for a spec (its L, S, mask, window and extra keys)."""
    return visible_pairs(spec.seq, spec.s, mask=spec.mask, window=spec.window, extra_keys=spec.extra_keys,
                         chunk=spec.chunk)


def cached_tokens(spec: AttnSpec) -> int:
    """Tokens one sequence's cache keeps after this step, as transformers' caches keep them: all S
    for a full layer; at most W - 1 for a sliding one (``DynamicSlidingWindowLayer``: Mistral's
    W 4096 keeps 4,095) and C - 1 for a chunked one (transformers' ``cache_utils`` gives a chunked
    layer the same ``DynamicSlidingWindowLayer``, with ``sliding_window = attention_chunk_size``)."""
    if spec.window is not None:
        return min(spec.s, spec.window - 1)
    if spec.chunk is not None:
        return min(spec.s, spec.chunk - 1)
    return spec.s


def dense_pairs(spec: AttnSpec) -> int:
    """Every (query, key) pair the kernel computes for one batch item and head: L x S', S' the kept
    cache and the new tokens (a sliding decode step: W, not S) and the extra keys."""
    return spec.seq * spec.s_total
