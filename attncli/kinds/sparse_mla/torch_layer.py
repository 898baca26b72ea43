"""attncli's top-k sparse MLA layer: :class:`attncli.kinds.mla.torch_layer.MlaAttention` plus a lightning indexer.

:class:`Indexer` computes what DeepSeek-V3.2-Exp's ``Indexer`` (``inference/model.py``) and
transformers' ``DeepseekV32Indexer`` compute, with their submodule names (``wq_b``, ``wk``,
``k_norm``, ``weights_proj``: ``load_state_dict`` moves weights to and from transformers'; the
tests do): queries from MLA's query latent, one key per token through a LayerNorm, RoPE on the
first DR features of both (non-interleaved, as transformers' indexer), and for every (query, key)
pair sum_h w_h * relu(q_h . k / sqrt(ID)), w = weights_proj(x) / sqrt(IH). In bfloat16 or float32
throughout: the reference's Hadamard rotation and FP8 scoring kernel only change precision.

:class:`SparseMlaAttention` is MLA whose softmax sees, besides the layer's own mask, the keys the
indexer did not choose hidden: each query keeps the ``index_topk`` best-scored keys its mask
leaves (DeepSeek's ``index_mask``; transformers' ``index_mask`` folded into the attention mask).
Everything else is MLA's own forward, in either form. The counting engine names the indexer's
matmuls by their submodule (:data:`attncli.kinds.sparse_mla.kind.INDEXER_SCOPES`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attncli.kinds.mla import torch_layer as mla_torch
from attncli.kinds.mla.sizes import mla_sizes
from attncli.kinds.mla.torch_layer import MlaAttention, rotate_half
from attncli.kinds.seeded import build_seeded
from attncli.kinds.sparse_mla.kind import indexer_sizes
from attncli.spec import AttnSpec

LN_EPS = 1e-6


class LayerNorm(nn.Module):
    """DeepSeek's ``LayerNorm`` (weight and bias, eps 1e-6, in float32), written out: ``F.layer_norm``
    would be counted by fvcore as 5 flops per element, which are no matmul multiply-adds (the
    convention of :mod:`attncli.layer.formulas`, as for MLA's RMSNorms)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.bias = nn.Parameter(torch.zeros(size))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        centred = xf - xf.mean(-1, keepdim=True)
        normed = centred * torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + LN_EPS)
        return (normed * self.weight + self.bias).to(x.dtype)


class Indexer(nn.Module):
    """The lightning indexer: ``forward(x, q_latent, cos, sin, past_keys=None) -> (B, L, S)`` scores.

    ``x`` (B, L, E); ``q_latent`` (B, L, RQ), MLA's ``q_a_layernorm(q_a_proj(x))``; ``cos``/``sin``
    (L, DR); ``past_keys`` (B, N, ID), the cached (normalised, rotated) indexer keys.
    """

    def __init__(self, spec: AttnSpec) -> None:
        super().__init__()
        ix, m = indexer_sizes(spec), mla_sizes(spec)
        assert m.q_lora_rank
        self.heads, self.head_dim, self.rope_dim = ix.heads, ix.head_dim, m.qk_rope_head_dim
        self.wq_b = nn.Linear(m.q_lora_rank, ix.heads * ix.head_dim, bias=False)
        self.wk = nn.Linear(spec.dim, ix.head_dim, bias=False)
        self.k_norm = LayerNorm(ix.head_dim)
        self.weights_proj = nn.Linear(spec.dim, ix.heads, bias=False)
        self.softmax_scale = ix.head_dim ** -0.5

    def _rope(self, t: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        rot, rest = torch.split(t, [self.rope_dim, self.head_dim - self.rope_dim], dim=-1)
        return torch.cat((rot * cos + rotate_half(rot) * sin, rest), dim=-1)

    def forward(self, x: Tensor, q_latent: Tensor, cos: Tensor, sin: Tensor,
                past_keys: Tensor | None = None) -> Tensor:
        b, q_len, _ = x.shape
        q = self.wq_b(q_latent).view(b, q_len, self.heads, self.head_dim)          # (B, L, IH, ID)
        q = self._rope(q, cos.unsqueeze(1), sin.unsqueeze(1))
        k = self._rope(self.k_norm(self.wk(x)), cos, sin)                           # (B, L, ID)
        if past_keys is not None:
            k = torch.cat((past_keys, k), dim=1)                                    # (B, S, ID)
        # (B, L, IH, ID) @ (B, 1, ID, S) -> (B, L, IH, S): every head against the one shared key
        scores = torch.relu(torch.matmul(q, k.transpose(-1, -2).unsqueeze(1)) * self.softmax_scale)
        weights = self.weights_proj(x) * self.heads ** -0.5                         # (B, L, IH)
        # (B, L, 1, IH) @ (B, L, IH, S) -> (B, L, S): the weighted sum over the heads
        return torch.matmul(weights.unsqueeze(-2), scores).squeeze(-2)


class SparseMlaAttention(MlaAttention):
    """MLA (``form`` naive or absorbed) with a lightning indexer choosing each query's keys.

    ``forward(x, cos, sin, past_latent=None, past_k_rope=None, blocked=None, past_index_keys=None)``:
    MLA's arguments, then the cached indexer keys (B, N, ID). The indexer reads MLA's query latent,
    so it runs inside MLA's forward: :meth:`_softmax` (which MLA's forward calls once, with its
    mask) scores the keys, keeps the top ``index_topk`` of those ``blocked`` leaves, and hides the rest.
    """

    def __init__(self, spec: AttnSpec, form: str | None = None) -> None:
        super().__init__(spec, form)
        self.indexer = Indexer(spec)
        self.index_topk = indexer_sizes(spec).topk
        self._call: tuple[Tensor, Tensor, Tensor, Tensor | None] | None = None
        self._q_latent: Tensor | None = None
        self.q_a_layernorm.register_forward_hook(self._keep_q_latent)

    def _keep_q_latent(self, module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> None:
        self._q_latent = output

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, past_latent: Tensor | None = None,
                past_k_rope: Tensor | None = None, blocked: Tensor | None = None,
                past_index_keys: Tensor | None = None) -> Tensor:
        self._call = (x, cos, sin, past_index_keys)
        try:
            return super().forward(x, cos, sin, past_latent, past_k_rope, blocked)
        finally:
            self._call, self._q_latent = None, None

    def topk_blocked(self, index_scores: Tensor, blocked: Tensor | None) -> Tensor:
        """(B, 1, L, S), True where a query may not attend: ``blocked`` or not among its top-k keys."""
        b, q_len, s = index_scores.shape
        if blocked is not None:
            index_scores = index_scores.masked_fill(blocked.expand(b, 1, q_len, s)[:, 0], float("-inf"))
        top = index_scores.topk(min(self.index_topk, s), dim=-1).indices
        # NOTE: a tensor source, not the scalar True: jit.trace has no aten::scatter for a bool scalar.
        chosen = torch.zeros_like(index_scores, dtype=torch.bool)
        chosen = chosen.scatter(-1, top, torch.ones_like(top, dtype=torch.bool))
        hidden = ~chosen.unsqueeze(1)
        return hidden if blocked is None else blocked | hidden

    def _softmax(self, scores: Tensor, blocked: Tensor | None) -> Tensor:  # type: ignore[override]
        assert self._call is not None and self._q_latent is not None, "SparseMlaAttention: call the layer"
        x, cos, sin, past_keys = self._call
        index_scores = self.indexer(x, self._q_latent, cos, sin, past_keys)
        return MlaAttention._softmax(scores, self.topk_blocked(index_scores, blocked))


def build(spec: AttnSpec, device: str | torch.device = "cpu", form: str | None = None) -> SparseMlaAttention:
    """The layer in eval mode, seeded with ``spec.seed`` on a real device (:func:`build_seeded`), norm
    weights and biases drawn away from 1 and 0 so a lost one shows; uninitialised on meta."""
    def init(module: SparseMlaAttention) -> None:
        for name, p in module.named_parameters():
            if name.endswith("layernorm.weight") or name == "indexer.k_norm.weight":
                p.uniform_(0.5, 1.5)
            elif name == "indexer.k_norm.bias":
                p.uniform_(-0.5, 0.5)

    return build_seeded(lambda: SparseMlaAttention(spec, form), spec, device, init)


def make_args(spec: AttnSpec, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
              ) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
    """MLA's arguments (:func:`attncli.kinds.mla.torch_layer.make_args`) and, with ``--cache``, the N cached
    indexer keys (seeded with ``spec.seed ^ 1``, within torch's seed range)."""
    args, kwargs = mla_torch.make_args(spec, device, dtype)
    if spec.cache:
        shape = (spec.batch, spec.cache, indexer_sizes(spec).head_dim)
        if torch.device(device).type == "meta":
            kwargs["past_index_keys"] = torch.empty(shape, device="meta", dtype=dtype)
        else:
            gen = torch.Generator().manual_seed(spec.seed ^ 1)
            kwargs["past_index_keys"] = torch.randn(shape, generator=gen, dtype=dtype).to(device)
    return args, kwargs
