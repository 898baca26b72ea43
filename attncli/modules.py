"""Five attention implementations behind one interface, and the inputs to run them on.

Every implementation takes the same arguments and returns the same things as
``torch.nn.MultiheadAttention.forward``: ``(query, key, value, key_padding_mask=None,
need_weights=True, attn_mask=None, average_attn_weights=True) -> (output, weights | None)``,
in the layout the spec asks for (batch-first, sequence-first or unbatched).

- ``torch``: ``torch.nn.MultiheadAttention`` itself.
- ``split``: separate W_q, W_k, W_v, W_o and a view/transpose head split.
- ``per-head``: one small (q, k, v) projection per head in a ``ModuleList``, concatenated,
  then W_O.
- ``fused``: one ``qkv = Linear(dim, 3*dim)`` with reshape/permute, ViT style (self-attention
  only).
- ``sdpa``: split projections and ``torch.nn.functional.scaled_dot_product_attention``.

Each own implementation can load the weights of a ``torch`` one (:func:`load_from_torch`),
so all five give the same output for the same input. Everything can be built on the meta
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

Weights = Tensor | None


@dataclass(frozen=True)
class Inputs:
    """The tensors one forward call takes, in the spec's layout."""

    query: Tensor
    key: Tensor
    value: Tensor
    key_padding_mask: Tensor | None
    attn_mask: Tensor | None

    def kwargs(self, spec: AttnSpec) -> dict[str, Any]:
        """Keyword arguments for ``forward`` (masks and the need_weights flags)."""
        return {
            "key_padding_mask": self.key_padding_mask,
            "attn_mask": self.attn_mask,
            "need_weights": spec.need_weights,
            "average_attn_weights": spec.average_weights,
        }


def padded_keys(spec: AttnSpec) -> int:
    """How many trailing keys ``--mask padding`` marks as padding (at least one)."""
    return max(1, spec.s // 4)


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
        key = rand(token_shape(spec, spec.s, spec.k_dim))
        value = rand(token_shape(spec, spec.s, spec.v_dim))
    attn_mask = kpm = None
    if spec.mask == "causal":
        # (L, S): True above the diagonal, so query i sees keys 0..i.
        attn_mask = torch.ones(spec.seq, spec.s, dtype=torch.bool, device=device).triu(1)
    elif spec.mask == "padding":
        kpm = torch.zeros(spec.batch, spec.s, dtype=torch.bool, device=device)
        kpm[:, spec.s - padded_keys(spec):] = True
        if spec.unbatched:
            kpm = kpm[0]
    return Inputs(query, key, value, kpm, attn_mask)


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
        self.head_dim = spec.head_dim
        self.kdim, self.vdim = spec.k_dim, spec.v_dim
        self.batch_first = spec.batch_first
        self.dropout = spec.dropout
        self.add_zero_attn = spec.add_zero_attn
        self.bias_k: nn.Parameter | None = None
        self.bias_v: nn.Parameter | None = None
        if spec.add_bias_kv:
            self.bias_k = nn.Parameter(torch.empty(1, 1, spec.dim))
            self.bias_v = nn.Parameter(torch.empty(1, 1, spec.dim))
            if self.bias_k.device.type != "meta":
                nn.init.xavier_normal_(self.bias_k)
                nn.init.xavier_normal_(self.bias_v)
        self.out_proj: nn.Module = (nn.Linear(spec.dim, spec.dim, bias=spec.bias)
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

    def split_heads(self, x: Tensor) -> Tensor:
        """(b, n, e) -> (b, n, h, d) -> (b, h, n, d)."""
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    @staticmethod
    def merge_heads(x: Tensor) -> Tensor:
        """(b, h, l, d) -> (b, l, h, d) -> (b, l, e)."""
        b, h, n, d = x.shape
        return x.transpose(1, 2).reshape(b, n, h * d)

    def attend(self, query: Tensor, key: Tensor, value: Tensor,
               blocked: Tensor | None, need_weights: bool) -> tuple[Tensor, Weights]:
        raise NotImplementedError

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None,
                average_attn_weights: bool = True) -> tuple[Tensor, Weights]:
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
        e = spec.dim
        self.W_q = nn.Linear(e, e, bias=spec.bias)
        self.W_k = nn.Linear(spec.k_dim, e, bias=spec.bias)
        self.W_v = nn.Linear(spec.v_dim, e, bias=spec.bias)

    def project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # (b, l, e) @ W_q^T -> (b, l, e); (b, s, kdim) @ W_k^T -> (b, s, e); likewise v.
        return self.W_q(query), self.W_k(key), self.W_v(value)

    def heads_in(self, query: Tensor, key: Tensor, value: Tensor,
                 blocked: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        q, k, v = self.project(query, key, value)
        for name, t in (("q", q), ("k", k), ("v", v)):
            self._rec(name, t)
        k, v, blocked = self.extend_kv(k, v, blocked, self.bias_k, self.bias_v)
        q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
        for name, t in (("q_heads", q), ("k_heads", k), ("v_heads", v)):
            self._rec(name, t)
        return q, k, v, blocked

    def attend(self, query: Tensor, key: Tensor, value: Tensor,
               blocked: Tensor | None, need_weights: bool) -> tuple[Tensor, Weights]:
        q, k, v, blocked = self.heads_in(query, key, value, blocked)
        context, weights = scaled_dot_attention(q, k, v, blocked, self.dropout if self.training else 0.0)
        self._rec("scores", weights)
        self._rec("weights", weights)
        self._rec("context", context)
        merged = self.merge_heads(context)
        self._rec("merged", merged)
        return merged, weights


class FusedAttention(SplitAttention):
    """One ``qkv = Linear(dim, 3*dim)``, ViT style; self-attention only."""

    def __init__(self, spec: AttnSpec) -> None:
        OwnAttention.__init__(self, spec)
        self.qkv = nn.Linear(spec.dim, 3 * spec.dim, bias=spec.bias)

    def project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if key is not query or value is not query:
            raise ValueError("the fused implementation is self-attention only: pass one tensor")
        b, n, e = query.shape
        # (b, n, e) @ W_qkv^T -> (b, n, 3e) -> (b, n, 3, e) -> (3, b, n, e)
        qkv = self.qkv(query).reshape(b, n, 3, e).permute(2, 0, 1, 3)
        return qkv[0], qkv[1], qkv[2]


class SdpaAttention(SplitAttention):
    """Split projections and ``F.scaled_dot_product_attention`` (returns no weights)."""

    def attend(self, query: Tensor, key: Tensor, value: Tensor,
               blocked: Tensor | None, need_weights: bool) -> tuple[Tensor, Weights]:
        q, k, v, blocked = self.heads_in(query, key, value, blocked)
        # NOTE: SDPA's boolean mask means "may attend", the opposite of MHA's.
        allowed = None if blocked is None else ~blocked
        context = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed, dropout_p=self.dropout if self.training else 0.0)
        self._rec("context", context)
        merged = self.merge_heads(context)
        self._rec("merged", merged)
        return merged, None


class Head(nn.Module):
    """One head's own small q, k, v projections (seed ``003_*``)."""

    def __init__(self, spec: AttnSpec) -> None:
        super().__init__()
        d = spec.head_dim
        self.q = nn.Linear(spec.dim, d, bias=spec.bias)
        self.k = nn.Linear(spec.k_dim, d, bias=spec.bias)
        self.v = nn.Linear(spec.v_dim, d, bias=spec.bias)


class PerHeadAttention(OwnAttention):
    """A ``ModuleList`` of heads, each attending on its own; contexts concatenated, then W_O."""

    def __init__(self, spec: AttnSpec) -> None:
        super().__init__(spec)
        self.heads = nn.ModuleList(Head(spec) for _ in range(spec.heads))

    @property
    def heads_list(self) -> list[Head]:
        return [h for h in self.heads if isinstance(h, Head)]

    def attend(self, query: Tensor, key: Tensor, value: Tensor,
               blocked: Tensor | None, need_weights: bool) -> tuple[Tensor, Weights]:
        d = self.head_dim
        contexts, weights = [], []
        for i, head in enumerate(self.heads_list):
            sl = slice(i * d, (i + 1) * d)
            # (b, l, e) @ q^T -> (b, l, d); (b, s, kdim) @ k^T -> (b, s, d); likewise v.
            q, k, v = head.q(query), head.k(key), head.v(value)
            bias_k = None if self.bias_k is None else self.bias_k[..., sl]
            bias_v = None if self.bias_v is None else self.bias_v[..., sl]
            k, v, hb = self.extend_kv(k, v, blocked, bias_k, bias_v)
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


def load_from_torch(dst: OwnAttention, src: nn.MultiheadAttention) -> None:
    """Copy ``src``'s weights into ``dst`` so both compute the same function."""
    e = src.embed_dim
    if src._qkv_same_embed_dim:
        assert src.in_proj_weight is not None
        wq, wk, wv = torch.split(src.in_proj_weight.detach(), e)
    else:
        wq, wk, wv = (p.detach() for p in (src.q_proj_weight, src.k_proj_weight, src.v_proj_weight))
    biases: tuple[Tensor | None, ...] = (
        (None, None, None) if src.in_proj_bias is None else torch.split(src.in_proj_bias.detach(), e))
    with torch.no_grad():
        if isinstance(dst, FusedAttention):
            dst.qkv.weight.copy_(torch.cat([wq, wk, wv]))
            if dst.qkv.bias is not None and src.in_proj_bias is not None:
                dst.qkv.bias.copy_(src.in_proj_bias)
        elif isinstance(dst, SplitAttention):
            for lin, w, b in ((dst.W_q, wq, biases[0]), (dst.W_k, wk, biases[1]), (dst.W_v, wv, biases[2])):
                lin.weight.copy_(w)
                if lin.bias is not None and b is not None:
                    lin.bias.copy_(b)
        elif isinstance(dst, PerHeadAttention):
            d = dst.head_dim
            for i, head in enumerate(dst.heads_list):
                sl = slice(i * d, (i + 1) * d)
                for lin, w, b in ((head.q, wq, biases[0]), (head.k, wk, biases[1]), (head.v, wv, biases[2])):
                    lin.weight.copy_(w[sl])
                    if lin.bias is not None and b is not None:
                        lin.bias.copy_(b[sl])
        out = dst.out_proj
        if isinstance(out, nn.Linear):
            out.weight.copy_(src.out_proj.weight)
            if out.bias is not None and src.out_proj.bias is not None:
                out.bias.copy_(src.out_proj.bias)
        if dst.bias_k is not None and dst.bias_v is not None:
            assert src.bias_k is not None and src.bias_v is not None
            dst.bias_k.copy_(src.bias_k)
            dst.bias_v.copy_(src.bias_v)


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
    ``spec.seed``, so every impl computes the same function for the same spec. On the meta
    device nothing is initialised (shapes and FLOPs only).
    """
    meta = torch.device(device).type == "meta"
    # NOTE: the weights are seeded inside a forked RNG, so building leaves the caller's global
    # torch RNG as it was (the encodings avoid it too).
    with torch.random.fork_rng(devices=[]):
        if not meta:
            torch.manual_seed(spec.seed)
        reference = build_torch(spec, device)
        if spec.impl == "torch":
            if not spec.out_proj:
                remove_out_proj(reference)
            return reference.eval()
        own = OWN[spec.impl]
        with torch.device(device):
            module = own(spec)
        if not meta:
            load_from_torch(module, reference)
        return module.eval()


def run(module: nn.Module, spec: AttnSpec, inputs: Inputs) -> tuple[Tensor, Weights]:
    """One forward pass with the spec's forward options."""
    out: tuple[Tensor, Weights] = module(inputs.query, inputs.key, inputs.value, **inputs.kwargs(spec))
    return out
