"""The tensors one forward call takes, and the masks: made once, for every implementation.

:func:`make_inputs` gives random query/key/value tensors in the spec's layout (one tensor for
self-attention), the boolean masks of ``--mask`` and ``--window`` (``True``: may not attend,
as ``nn.MultiheadAttention`` reads them) and, with ``--cache``, the cached keys and values
(B, G, N, d). Masks are bottom-right aligned: query i sits at position S - L + i.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attncli.layer.layout import token_shape
from attncli.layer.visibility import padded_keys
from attncli.spec import AttnSpec


@dataclass(frozen=True)
class Inputs:
    """The tensors one forward call takes, in the spec's layout."""

    query: Tensor
    key: Tensor
    value: Tensor
    key_padding_mask: Tensor | None
    attn_mask: Tensor | None
    past_key: Tensor | None = None
    """The KV cache's keys, (B, G, N, d), already projected and split into heads."""
    past_value: Tensor | None = None

    def kwargs(self, spec: AttnSpec) -> dict[str, Any]:
        """Keyword arguments for ``forward`` (masks, the need_weights flags, the KV cache)."""
        kw: dict[str, Any] = {
            "key_padding_mask": self.key_padding_mask,
            "attn_mask": self.attn_mask,
            "need_weights": spec.need_weights,
            "average_attn_weights": spec.average_weights,
        }
        if self.past_key is not None:
            kw["past_key"], kw["past_value"] = self.past_key, self.past_value
        return kw


def blocked_mask(spec: AttnSpec, device: str | torch.device = "cpu") -> Tensor | None:
    """The (L, S) boolean ``attn_mask`` of ``--mask causal``, ``--window`` or ``--chunk`` (True: hidden).

    Bottom-right aligned: query i sits at absolute position p = S - L + i and sees keys up to p;
    with a window W only keys p - W + 1 .. p.
    """
    if not spec.causal:
        return None
    keys = spec.s_kernel  # NOTE: the kept cache and the new tokens: a sliding decode step has W keys, not S
    ones = torch.ones(spec.seq, keys, dtype=torch.bool, device=device)
    offset = keys - spec.seq
    blocked = ones.triu(offset + 1)  # key j > p = offset + i
    if spec.window is not None:
        # NOTE: a window of S keys or more hides nothing more than causal; min() keeps the
        # diagonal index within int64 for any --window.
        blocked = blocked | ones.tril(offset - min(spec.window, keys))  # key j <= p - W
    if spec.chunk is not None:
        # NOTE: absolute positions: key j of the computed ones sits at S - S_kernel + j (the cache dropped
        # the oldest), query i at S - L + i. Key j is hidden unless they share a chunk (transformers'
        # chunked_overlay); a chunk of S tokens or more is one chunk, and min() keeps C within int64.
        base = spec.s - keys
        pos = torch.arange(keys, device=device) + base
        c = min(spec.chunk, spec.s)
        blocked = blocked | ((pos[offset:, None] // c) != (pos[None, :] // c))
    return blocked


def make_inputs(spec: AttnSpec, device: str | torch.device = "cpu",
                dtype: torch.dtype = torch.float32) -> Inputs:
    """Random inputs for ``spec`` (seeded with ``spec.seed``), in the spec's layout.

    For self-attention (S = L, kdim = vdim = dim) query, key and value are one tensor, as in
    ``attn(x, x, x)``. ``--mask causal`` gives an (L, S) mask that hides later keys;
    ``--mask padding`` marks the last ``max(1, S // 4)`` keys of every batch item as padding.
    """
    gen = torch.Generator().manual_seed(spec.seed)

    def rand(shape: tuple[int, ...]) -> Tensor:
        if torch.device(device).type == "meta":
            return torch.empty(shape, device="meta", dtype=dtype)
        return torch.randn(shape, generator=gen, dtype=dtype).to(device)

    query = rand(token_shape(spec, spec.seq, spec.dim))
    if spec.is_self_attention:
        key = value = query
    else:
        key = rand(token_shape(spec, spec.kv_tokens, spec.k_dim))
        value = rand(token_shape(spec, spec.kv_tokens, spec.v_dim))
    past_key = past_value = None
    if spec.cache or spec.kv_shared:
        # NOTE: a layer reading another's cache gets all the keys its kernel computes over, this step's too
        kept = spec.s_kernel if spec.kv_shared else spec.kept_cache
        past_key = rand((spec.batch, spec.n_kv_heads, kept, spec.head_dim))
        past_value = rand((spec.batch, spec.n_kv_heads, kept, spec.v_head))
    attn_mask, kpm = blocked_mask(spec, device), None
    if spec.mask == "padding":
        kpm = torch.zeros(spec.batch, spec.s, dtype=torch.bool, device=device)
        kpm[:, spec.s - padded_keys(spec.s):] = True
        if spec.unbatched:
            kpm = kpm[0]
    return Inputs(query, key, value, kpm, attn_mask, past_key, past_value)
