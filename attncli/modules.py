"""Five attention implementations behind one interface, and the inputs to run them on.

Every implementation takes the same arguments and returns the same things as
``torch.nn.MultiheadAttention.forward``: ``(query, key, value, key_padding_mask=None,
need_weights=True, attn_mask=None, average_attn_weights=True) -> (output, weights | None)``,
in the layout the spec asks for (batch-first, sequence-first or unbatched).

- ``torch``: ``torch.nn.MultiheadAttention`` itself.
- ``split``: separate W_q, W_k, W_v, W_o and a view/transpose head split.
- ``per-head``: one small (q, k, v) projection per head in a ``ModuleList``, concatenated,
  then W_O.
- ``fused``: one ``qkv = Linear(dim, (H + 2G) * d)`` (``3*dim`` without GQA) with
  reshape/permute, ViT style (self-attention only).
- ``sdpa``: split projections and ``torch.nn.functional.scaled_dot_product_attention``
  (``enable_gqa`` for grouped-query heads).

The four own implementations also run what ``nn.MultiheadAttention`` cannot: grouped-query
heads (``--kv-heads G``: K and V project to G*d features, each group of H/G query heads shares
one K/V head), a head size d that is not dim/heads (W_q: E -> H*d, W_O: H*d -> E), sliding
windows (as a mask) and a KV cache (``past_key``/``past_value``, (B, G, N, d): only the new
tokens are projected, and they attend to the N cached keys and themselves).

Every implementation loads the same weights (:func:`load_weights`): those of a seeded
``nn.MultiheadAttention`` when it can express the layer, else those of a seeded ``split``
layer, so all give the same output for the same input. Everything can be built on the meta
device, so any size can be counted with no memory. Masks follow ``nn.MultiheadAttention``:
boolean, ``True`` means "may not attend".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attncli.layout import token_shape
from attncli.spec import AttnSpec
from attncli.visibility import padded_keys as _padded

Weights = Tensor | None


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


def padded_keys(spec: AttnSpec) -> int:
    """How many trailing keys ``--mask padding`` marks as padding (at least one)."""
    return _padded(spec.s)


def blocked_mask(spec: AttnSpec, device: str | torch.device = "cpu") -> Tensor | None:
    """The (L, S) boolean ``attn_mask`` of ``--mask causal`` or ``--window`` (True: hidden).

    Bottom-right aligned: query i sits at absolute position p = S - L + i and sees keys up to p;
    with a window W only keys p - W + 1 .. p.
    """
    if not spec.causal:
        return None
    ones = torch.ones(spec.seq, spec.s, dtype=torch.bool, device=device)
    offset = spec.s - spec.seq
    blocked = ones.triu(offset + 1)  # key j > p = offset + i
    if spec.window is not None:
        # NOTE: a window of S keys or more hides nothing more than causal; min() keeps the
        # diagonal index within int64 for any --window.
        blocked = blocked | ones.tril(offset - min(spec.window, spec.s))  # key j <= p - W
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
    if spec.cache:
        cached = (spec.batch, spec.n_kv_heads, spec.cache, spec.head_dim)
        past_key, past_value = rand(cached), rand(cached)
    attn_mask, kpm = blocked_mask(spec, device), None
    if spec.mask == "padding":
        kpm = torch.zeros(spec.batch, spec.s, dtype=torch.bool, device=device)
        kpm[:, spec.s - padded_keys(spec):] = True
        if spec.unbatched:
            kpm = kpm[0]
    return Inputs(query, key, value, kpm, attn_mask, past_key, past_value)


# ---------------------------------------------------------------------------- shared pieces
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
        self.kdim, self.vdim = spec.k_dim, spec.v_dim
        self.batch_first = spec.batch_first
        self.dropout = spec.dropout
        self.add_zero_attn = spec.add_zero_attn
        self.bias_k: nn.Parameter | None = None
        self.bias_v: nn.Parameter | None = None
        if spec.add_bias_kv:
            self.bias_k = nn.Parameter(torch.empty(1, 1, spec.kv_inner))
            self.bias_v = nn.Parameter(torch.empty(1, 1, spec.kv_inner))
            if self.bias_k.device.type != "meta":
                nn.init.xavier_normal_(self.bias_k)
                nn.init.xavier_normal_(self.bias_v)
        self.out_proj: nn.Module = (nn.Linear(spec.inner, spec.dim, bias=spec.bias)
                                    if spec.out_proj else nn.Identity())
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

    def split_heads(self, x: Tensor, heads: int | None = None) -> Tensor:
        """(b, n, h*d) -> (b, n, h, d) -> (b, h, n, d); ``heads`` defaults to the query heads."""
        b, n, _ = x.shape
        return x.view(b, n, heads or self.num_heads, self.head_dim).transpose(1, 2)

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
        self.W_k = nn.Linear(spec.k_dim, spec.kv_inner, bias=spec.bias)
        self.W_v = nn.Linear(spec.v_dim, spec.kv_inner, bias=spec.bias)

    def project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # (b, l, e) @ W_q^T -> (b, l, h*d); (b, s, kdim) @ W_k^T -> (b, s, g*d); likewise v.
        return self.W_q(query), self.W_k(key), self.W_v(value)

    def heads_in(self, query: Tensor, key: Tensor, value: Tensor,
                 blocked: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        q, k, v = self.project(query, key, value)
        for name, t in (("q", q), ("k", k), ("v", v)):
            self._rec(name, t)
        k, v, blocked = self.extend_kv(k, v, blocked, self.bias_k, self.bias_v)
        g = self.num_kv_heads
        q, k, v = self.split_heads(q), self.split_heads(k, g), self.split_heads(v, g)
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


# ---------------------------------------------------------------------------- building
def build_torch(spec: AttnSpec, device: str | torch.device = "cpu") -> nn.MultiheadAttention:
    """``nn.MultiheadAttention`` with exactly the spec's constructor options."""
    return nn.MultiheadAttention(
        spec.dim, spec.heads, dropout=spec.dropout, bias=spec.bias,
        add_bias_kv=spec.add_bias_kv, add_zero_attn=spec.add_zero_attn,
        kdim=spec.kdim, vdim=spec.vdim, batch_first=spec.batch_first, device=device)


@dataclass(frozen=True)
class LayerWeights:
    """One layer's weights in the split layout: W_q (H*d, E), W_k (G*d, kdim), W_v (G*d, vdim),
    W_O (E, H*d), their biases, and MHA's bias_k / bias_v (1, 1, G*d)."""

    wq: Tensor
    wk: Tensor
    wv: Tensor
    bq: Tensor | None
    bk: Tensor | None
    bv: Tensor | None
    wo: Tensor | None
    bo: Tensor | None
    bias_k: Tensor | None
    bias_v: Tensor | None


def torch_weights(src: nn.MultiheadAttention) -> LayerWeights:
    """The weights of ``nn.MultiheadAttention`` (packed or separate in-projections)."""
    e = src.embed_dim
    if src._qkv_same_embed_dim:
        assert src.in_proj_weight is not None
        wq, wk, wv = torch.split(src.in_proj_weight.detach(), e)
    else:
        wq, wk, wv = (p.detach() for p in (src.q_proj_weight, src.k_proj_weight, src.v_proj_weight))
    bq = bk = bv = None
    if src.in_proj_bias is not None:
        bq, bk, bv = torch.split(src.in_proj_bias.detach(), e)
    bo = None if src.out_proj.bias is None else src.out_proj.bias.detach()
    return LayerWeights(wq, wk, wv, bq, bk, bv, src.out_proj.weight.detach(), bo,
                        None if src.bias_k is None else src.bias_k.detach(),
                        None if src.bias_v is None else src.bias_v.detach())


def split_weights(src: SplitAttention) -> LayerWeights:
    """The weights of a ``split`` layer (the reference when MHA cannot express the layer)."""
    def bias(lin: nn.Linear) -> Tensor | None:
        return None if lin.bias is None else lin.bias.detach()

    out = src.out_proj
    wo, bo = (out.weight.detach(), bias(out)) if isinstance(out, nn.Linear) else (None, None)
    return LayerWeights(src.W_q.weight.detach(), src.W_k.weight.detach(), src.W_v.weight.detach(),
                        bias(src.W_q), bias(src.W_k), bias(src.W_v), wo, bo,
                        None if src.bias_k is None else src.bias_k.detach(),
                        None if src.bias_v is None else src.bias_v.detach())


def _copy(lin: nn.Linear | None, w: Tensor, b: Tensor | None) -> None:
    assert lin is not None
    lin.weight.copy_(w)
    if lin.bias is not None and b is not None:
        lin.bias.copy_(b)


def load_weights(dst: OwnAttention, w: LayerWeights) -> None:
    """Copy ``w`` into ``dst`` so both compute the same function."""
    with torch.no_grad():
        if isinstance(dst, FusedAttention):
            dst.qkv.weight.copy_(torch.cat([w.wq, w.wk, w.wv]))
            if dst.qkv.bias is not None and w.bq is not None and w.bk is not None and w.bv is not None:
                dst.qkv.bias.copy_(torch.cat([w.bq, w.bk, w.bv]))
        elif isinstance(dst, SplitAttention):
            for lin, wt, b in ((dst.W_q, w.wq, w.bq), (dst.W_k, w.wk, w.bk), (dst.W_v, w.wv, w.bv)):
                _copy(lin, wt, b)
        elif isinstance(dst, PerHeadAttention):
            d = dst.head_dim
            r = dst.num_heads // dst.num_kv_heads
            for i, head in enumerate(dst.heads_list):
                sl = slice(i * d, (i + 1) * d)
                _copy(head.q, w.wq[sl], None if w.bq is None else w.bq[sl])
                if head.k is not None:
                    g = slice((i // r) * d, (i // r + 1) * d)
                    _copy(head.k, w.wk[g], None if w.bk is None else w.bk[g])
                    _copy(head.v, w.wv[g], None if w.bv is None else w.bv[g])
        out = dst.out_proj
        if isinstance(out, nn.Linear) and w.wo is not None:
            _copy(out, w.wo, w.bo)
        if dst.bias_k is not None and dst.bias_v is not None:
            assert w.bias_k is not None and w.bias_v is not None
            dst.bias_k.copy_(w.bias_k)
            dst.bias_v.copy_(w.bias_v)


def load_from_torch(dst: OwnAttention, src: nn.MultiheadAttention) -> None:
    """Copy ``src``'s weights into ``dst`` so both compute the same function."""
    load_weights(dst, torch_weights(src))


def remove_out_proj(mha: nn.MultiheadAttention) -> None:
    """Make MHA's W_O the identity (MHA reads ``out_proj.weight`` directly, so it stays).

    The arithmetic still runs (and counts); attncli's FLOP counter attributes it separately.
    """
    if mha.out_proj.weight.device.type == "meta":
        return
    with torch.no_grad():
        mha.out_proj.weight.copy_(torch.eye(mha.embed_dim))
        if mha.out_proj.bias is not None:
            mha.out_proj.bias.zero_()


def build(spec: AttnSpec, device: str | torch.device = "cpu") -> nn.Module:
    """The implementation ``spec.impl`` in eval mode.

    On a real device the weights come from a ``nn.MultiheadAttention`` seeded with
    ``spec.seed`` (from a seeded ``split`` layer when MHA cannot express the layer: GQA or a
    head size other than dim/heads), so every impl computes the same function for the same
    spec. The global RNG is left as it was. On the meta device nothing is initialised.
    """
    meta = torch.device(device).type == "meta"
    with torch.random.fork_rng(devices=[]):
        if not meta:
            torch.manual_seed(spec.seed)
        mha_compatible = spec.n_kv_heads == spec.heads and spec.inner == spec.dim
        if spec.impl == "torch" or (mha_compatible and not meta):
            reference = build_torch(spec, device)
            if spec.impl == "torch":
                if not spec.out_proj:
                    remove_out_proj(reference)
                return reference.eval()
            weights: LayerWeights | None = torch_weights(reference)
        elif not meta:
            with torch.device(device):
                weights = split_weights(SplitAttention(spec))
        else:
            weights = None
        with torch.device(device):
            module = OWN[spec.impl](spec)
    if weights is not None:
        load_weights(module, weights)
    return module.eval()


def run(module: nn.Module, spec: AttnSpec, inputs: Inputs) -> tuple[Tensor, Weights]:
    """One forward pass with the spec's forward options."""
    out: tuple[Tensor, Weights] = module(inputs.query, inputs.key, inputs.value, **inputs.kwargs(spec))
    return out
