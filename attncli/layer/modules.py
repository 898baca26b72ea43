"""Five attention implementations behind one interface: built, weighted alike, and run.

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

The own implementations live in :mod:`attncli.layer.impls`, the inputs and masks in
:mod:`attncli.layer.inputs`; this module builds and runs them and re-exports both, so
``from attncli.layer.modules import build, make_inputs, run`` is the one import callers need.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attncli.layer.impls import (
    OWN,
    FusedAttention,
    Head,
    OwnAttention,
    PerHeadAttention,
    SdpaAttention,
    SplitAttention,
    Weights,
    scaled_dot_attention,
)
from attncli.layer.inputs import Inputs, blocked_mask, make_inputs
from attncli.spec import AttnSpec

__all__ = [
    "OWN", "FusedAttention", "Head", "Inputs", "LayerWeights", "OwnAttention", "PerHeadAttention",
    "SdpaAttention", "SplitAttention", "Weights", "blocked_mask", "build", "build_torch", "load_from_torch",
    "load_weights", "make_inputs", "remove_out_proj", "run", "scaled_dot_attention",
    "split_weights", "torch_weights",
]


# ---------------------------------------------------------------------------- building
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
    assert src.W_k is not None and src.W_v is not None  # NOTE: a layer of its own geometry is built seeded
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
        mha_compatible = (spec.n_kv_heads == spec.heads and spec.inner == spec.dim and spec.o_bias == spec.bias
                          and not spec.own_geometry)
        if spec.impl == "torch" or (mha_compatible and not meta):
            reference = build_torch(spec, device)
            if spec.impl == "torch":
                if not spec.out_proj:
                    remove_out_proj(reference)
                return reference.eval()
            weights: LayerWeights | None = torch_weights(reference)
        elif not meta and not spec.own_geometry:
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
