"""The four attention implementations of attncli, behind ``nn.MultiheadAttention``'s interface.

- ``split``: separate W_q, W_k, W_v, W_o and a view/transpose head split.
- ``per-head``: one small (q, k, v) projection per head in a ``ModuleList``, concatenated,
  then W_O (with grouped-query heads, only the first head of a group has k and v).
- ``fused``: one ``qkv = Linear(dim, (H + 2G) * d)``, ViT style (self-attention only).
- ``sdpa``: split projections and ``F.scaled_dot_product_attention`` (``enable_gqa``).

All run grouped-query heads, a free head size, masks (windows included) and a KV cache
(``past_key``/``past_value``, (B, G, N, d)); :mod:`attncli.layer.modules` builds them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attncli.spec import AttnSpec

Weights = Tensor | None


def scaled_dot_attention(q: Tensor, k: Tensor, v: Tensor, blocked: Tensor | None,
                         dropout_p: float) -> tuple[Tensor, Tensor]:
    """softmax(q k^T / sqrt(d) masked) v, returning (context, weights).

    ``q`` (b, h, l, d), ``k`` and ``v`` (b, h, s, d); ``blocked`` broadcasts to (b, h, l, s).
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    # (b, h, l, d) @ (b, h, d, s) -> (b, h, l, s)
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    if blocked is not None:
        scores = scores.masked_fill(blocked, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    # (b, h, l, s) @ (b, h, s, d) -> (b, h, l, d)
    context = torch.matmul(weights, v)
    return context, weights


class OwnAttention(nn.Module):
    """What the four own implementations share: layouts, bias_kv/zero_attn, masks, W_O.

    Subclasses implement :meth:`attend`, which takes batch-first inputs and returns the merged
    context (b, l, e) and the per-head weights (b, h, l, s') or ``None``.
    """

    def __init__(self, spec: AttnSpec) -> None:
        super().__init__()
        self.embed_dim = spec.dim
        self.num_heads = spec.heads
        self.num_kv_heads = spec.n_kv_heads
        self.head_dim = spec.head_dim
        self.v_head_dim = spec.v_head
        self.kv_shared = spec.kv_shared
        self.kdim, self.vdim = spec.k_dim, spec.v_dim
        self.batch_first = spec.batch_first
        self.dropout = spec.dropout
        self.add_zero_attn = spec.add_zero_attn
        self.bias_k: nn.Parameter | None = None
        self.bias_v: nn.Parameter | None = None
        if spec.add_bias_kv:
            self.bias_k = nn.Parameter(torch.empty(1, 1, spec.kv_inner))
            self.bias_v = nn.Parameter(torch.empty(1, 1, spec.kv_v_inner))
            if self.bias_k.device.type != "meta":
                nn.init.xavier_normal_(self.bias_k)
                nn.init.xavier_normal_(self.bias_v)
        self.out_proj: nn.Module = (nn.Linear(spec.v_inner, spec.dim, bias=spec.o_bias)
                                    if spec.out_proj else nn.Identity())
        # NOTE: a model's sinks and qk-norm weights are held so that the layer has the parameters its
        # model's class has; their work is elementwise (no multiply-adds) and is not applied here.
        self.sinks = nn.Parameter(torch.zeros(spec.heads)) if spec.sinks else None
        norm = {None: None, "head": (spec.head_dim, spec.head_dim), "all": (spec.inner, spec.kv_inner)}[spec.qk_norm]
        self.q_norm = nn.RMSNorm(norm[0]) if norm else None
        self.k_norm = nn.RMSNorm(norm[1]) if norm and not spec.kv_shared else None  # NOTE: no keys of its own
        self.record: dict[str, tuple[int, ...]] | None = None
        """Set to a dict to record the shape of every stage during forward."""

    def _rec(self, name: str, t: Tensor) -> None:
        if self.record is not None:
            self.record[name] = tuple(t.shape)

    def extend_kv(self, k: Tensor, v: Tensor, blocked: Tensor | None,
                  bias_k: Tensor | None, bias_v: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Append the learned bias key/value and the zero key/value, as MHA does.

        ``k`` and ``v`` are (b, s, f) projections; ``blocked`` (b, 1, l|1, s) grows by the
        same number of unblocked columns.
        """
        extra = 0
        if bias_k is not None and bias_v is not None:
            b = k.shape[0]
            k = torch.cat([k, bias_k.expand(b, 1, -1)], dim=1)
            v = torch.cat([v, bias_v.expand(b, 1, -1)], dim=1)
            extra += 1
        if self.add_zero_attn:
            k = torch.cat([k, k.new_zeros(k.shape[0], 1, k.shape[2])], dim=1)
            v = torch.cat([v, v.new_zeros(v.shape[0], 1, v.shape[2])], dim=1)
            extra += 1
        if blocked is not None and extra:
            blocked = F.pad(blocked, (0, extra), value=False)
        return k, v, blocked

    def split_heads(self, x: Tensor, heads: int | None = None, size: int | None = None) -> Tensor:
        """(b, n, h*d) -> (b, n, h, d) -> (b, h, n, d); ``heads`` defaults to the query heads, ``size`` to d."""
        b, n, _ = x.shape
        return x.view(b, n, heads or self.num_heads, size or self.head_dim).transpose(1, 2)

    def repeat_kv(self, x: Tensor) -> Tensor:
        """(b, g, s, d) -> (b, h, s, d): each K/V head serves H/G query heads (a copy, no arithmetic)."""
        b, g, s, d = x.shape
        if g == self.num_heads:
            return x
        r = self.num_heads // g
        return x[:, :, None].expand(b, g, r, s, d).reshape(b, g * r, s, d)

    @staticmethod
    def merge_heads(x: Tensor) -> Tensor:
        """(b, h, l, d) -> (b, l, h, d) -> (b, l, e)."""
        b, h, n, d = x.shape
        return x.transpose(1, 2).reshape(b, n, h * d)

    def attend(self, query: Tensor, key: Tensor, value: Tensor,
               blocked: Tensor | None, need_weights: bool) -> tuple[Tensor, Weights]:
        raise NotImplementedError

    def with_cache(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """(b, g, L, d) new keys/values -> (b, g, N + L, d), the cache first (positions 0..N-1)."""
        if self.past_key is None or self.past_value is None:
            return k, v
        return torch.cat([self.past_key, k], dim=2), torch.cat([self.past_value, v], dim=2)

    past_key: Tensor | None = None
    past_value: Tensor | None = None

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None,
                average_attn_weights: bool = True,
                past_key: Tensor | None = None, past_value: Tensor | None = None) -> tuple[Tensor, Weights]:
        # NOTE: the cache is held only for this call, so ``attend`` of every impl can read it.
        self.past_key, self.past_value = past_key, past_value
        try:
            return self._forward(query, key, value, key_padding_mask, need_weights, attn_mask,
                                 average_attn_weights)
        finally:
            self.past_key = self.past_value = None

    def _forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None,
                 need_weights: bool, attn_mask: Tensor | None,
                 average_attn_weights: bool) -> tuple[Tensor, Weights]:
        unbatched = query.dim() == 2
        same_k, same_v = key is query, value is query  # self-attention: keep one tensor
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        key = query if same_k else key
        value = query if same_v else value
        self._rec("input", query)
        blocked = None
        if attn_mask is not None:
            blocked = attn_mask.bool().view(1, 1, *attn_mask.shape[-2:])
        if key_padding_mask is not None:
            pad = key_padding_mask.bool()[:, None, None, :]  # (b, 1, 1, s)
            blocked = pad if blocked is None else (blocked | pad)
        context, weights = self.attend(query, key, value, blocked, need_weights)
        out = self.out_proj(context)
        self._rec("output", out)
        if weights is not None and need_weights:
            if average_attn_weights:
                weights = weights.mean(dim=1)
        else:
            weights = None
        if unbatched:
            out = out.squeeze(0)
            weights = None if weights is None else weights.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights


class SplitAttention(OwnAttention):
    """Separate W_q, W_k, W_v, W_o and a view/transpose head split."""

    def __init__(self, spec: AttnSpec) -> None:
        super().__init__(spec)
        self.W_q = nn.Linear(spec.dim, spec.inner, bias=spec.bias)
        # NOTE: a layer reading another's cache has no k/v projections; K = V (keys are the values) no W_v
        self.W_k = None if spec.kv_shared else nn.Linear(spec.k_dim, spec.kv_inner, bias=spec.bias)
        self.W_v = None if spec.kv_shared or spec.k_eq_v else nn.Linear(spec.v_dim, spec.kv_v_inner, bias=spec.bias)

    def project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # (b, l, e) @ W_q^T -> (b, l, h*d); (b, s, kdim) @ W_k^T -> (b, s, g*d); likewise v (g*d_v).
        assert self.W_k is not None
        k = self.W_k(key)
        return self.W_q(query), k, k if self.W_v is None else self.W_v(value)

    def heads_in(self, query: Tensor, key: Tensor, value: Tensor,
                 blocked: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        if self.kv_shared:  # NOTE: the keys and values another layer cached, this step's included
            assert self.past_key is not None and self.past_value is not None
            q = self.W_q(query)
            self._rec("q", q)
            self._rec("k_cache", self.past_key)
            self._rec("v_cache", self.past_value)
            q, k, v = self.split_heads(q), self.past_key, self.past_value
            for name, t in (("q_heads", q), ("k_heads", k), ("v_heads", v)):
                self._rec(name, t)
            return q, k, v, blocked
        q, k, v = self.project(query, key, value)
        for name, t in (("q", q), ("k", k), ("v", v)):
            self._rec(name, t)
        k, v, blocked = self.extend_kv(k, v, blocked, self.bias_k, self.bias_v)
        g = self.num_kv_heads
        q, k, v = self.split_heads(q), self.split_heads(k, g), self.split_heads(v, g, v.shape[-1] // g)
        if self.past_key is not None and self.past_value is not None:
            self._rec("k_cache", self.past_key)
            self._rec("v_cache", self.past_value)
        k, v = self.with_cache(k, v)
        for name, t in (("q_heads", q), ("k_heads", k), ("v_heads", v)):
            self._rec(name, t)
        return q, k, v, blocked

    def attend(self, query: Tensor, key: Tensor, value: Tensor,
               blocked: Tensor | None, need_weights: bool) -> tuple[Tensor, Weights]:
        q, k, v, blocked = self.heads_in(query, key, value, blocked)
        k, v = self.repeat_kv(k), self.repeat_kv(v)
        if self.num_kv_heads != self.num_heads:
            self._rec("k_repeated", k)
            self._rec("v_repeated", v)
        context, weights = scaled_dot_attention(q, k, v, blocked, self.dropout if self.training else 0.0)
        self._rec("scores", weights)
        self._rec("weights", weights)
        self._rec("context", context)
        merged = self.merge_heads(context)
        self._rec("merged", merged)
        return merged, weights


class FusedAttention(SplitAttention):
    """One ``qkv = Linear(dim, (H + 2G) * d)`` (``3*dim`` without GQA), ViT style; self-attention only."""

    def __init__(self, spec: AttnSpec) -> None:
        OwnAttention.__init__(self, spec)
        self.sizes = (spec.inner, spec.kv_inner, spec.kv_inner)
        self.qkv = nn.Linear(spec.dim, sum(self.sizes), bias=spec.bias)

    def project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if key is not query or value is not query:
            raise ValueError("the fused implementation is self-attention only: pass one tensor")
        b, n, _ = query.shape
        hd, gd, _ = self.sizes
        if hd == gd:
            # (b, n, e) @ W_qkv^T -> (b, n, 3hd) -> (b, n, 3, hd) -> (3, b, n, hd)
            qkv = self.qkv(query).reshape(b, n, 3, hd).permute(2, 0, 1, 3)
            return qkv[0], qkv[1], qkv[2]
        # (b, n, e) @ W_qkv^T -> (b, n, (h + 2g) d) -> q (b, n, hd), k and v (b, n, gd)
        q, k, v = self.qkv(query).split(self.sizes, dim=-1)
        return q, k, v


class SdpaAttention(SplitAttention):
    """Split projections and ``F.scaled_dot_product_attention`` (returns no weights)."""

    def attend(self, query: Tensor, key: Tensor, value: Tensor,
               blocked: Tensor | None, need_weights: bool) -> tuple[Tensor, Weights]:
        q, k, v, blocked = self.heads_in(query, key, value, blocked)
        # NOTE: SDPA's boolean mask means "may attend", the opposite of MHA's.
        allowed = None if blocked is None else ~blocked
        # NOTE: enable_gqa lets SDPA broadcast the G K/V heads over the H query heads itself.
        gqa = {"enable_gqa": True} if self.num_kv_heads != self.num_heads else {}
        context = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed, dropout_p=self.dropout if self.training else 0.0, **gqa)
        self._rec("context", context)
        merged = self.merge_heads(context)
        self._rec("merged", merged)
        return merged, None


class Head(nn.Module):
    """One head's own small q, k, v projections (seed ``003_*``).

    With grouped-query heads only the first head of each group has k and v (``None`` in the
    others): the group's query heads share them.
    """

    def __init__(self, spec: AttnSpec, kv: bool = True) -> None:
        super().__init__()
        d = spec.head_dim
        self.q = nn.Linear(spec.dim, d, bias=spec.bias)
        self.k = nn.Linear(spec.k_dim, d, bias=spec.bias) if kv else None
        self.v = nn.Linear(spec.v_dim, d, bias=spec.bias) if kv else None


class PerHeadAttention(OwnAttention):
    """A ``ModuleList`` of heads, each attending on its own; contexts concatenated, then W_O."""

    def __init__(self, spec: AttnSpec) -> None:
        super().__init__(spec)
        r = spec.heads // spec.n_kv_heads
        self.heads = nn.ModuleList(Head(spec, kv=i % r == 0) for i in range(spec.heads))

    @property
    def heads_list(self) -> list[Head]:
        return [h for h in self.heads if isinstance(h, Head)]

    def attend(self, query: Tensor, key: Tensor, value: Tensor,
               blocked: Tensor | None, need_weights: bool) -> tuple[Tensor, Weights]:
        d, r = self.head_dim, self.num_heads // self.num_kv_heads
        contexts, weights = [], []
        kv: tuple[Tensor, Tensor, Tensor | None] | None = None
        for i, head in enumerate(self.heads_list):
            # (b, l, e) @ q^T -> (b, l, d)
            q = head.q(query)
            if head.k is not None and head.v is not None:  # the first head of its K/V group
                g = i // r
                sl = slice(g * d, (g + 1) * d)
                # (b, s, kdim) @ k^T -> (b, s, d); likewise v.
                k, v = head.k(key), head.v(value)
                bias_k = None if self.bias_k is None else self.bias_k[..., sl]
                bias_v = None if self.bias_v is None else self.bias_v[..., sl]
                k, v, hb = self.extend_kv(k, v, blocked, bias_k, bias_v)
                if self.past_key is not None and self.past_value is not None:
                    k = torch.cat([self.past_key[:, g], k], dim=1)
                    v = torch.cat([self.past_value[:, g], v], dim=1)
                kv = (k, v, hb)
            assert kv is not None
            k, v, hb = kv
            hb = None if hb is None else hb[:, 0]  # (b, l|1, s')
            ctx, w = scaled_dot_attention(q, k, v, hb, self.dropout if self.training else 0.0)
            contexts.append(ctx)
            weights.append(w)
        stacked = torch.stack(contexts, dim=1)  # (b, h, l, d)
        self._rec("context", stacked)
        merged = torch.cat(contexts, dim=-1)  # (b, l, h*d)
        self._rec("merged", merged)
        return merged, torch.stack(weights, dim=1)


OWN: dict[str, type[OwnAttention]] = {
    "split": SplitAttention,
    "per-head": PerHeadAttention,
    "fused": FusedAttention,
    "sdpa": SdpaAttention,
}
