"""attncli's own DeepSeek-V4 attention layer, for counting and checking (imports torch).

:class:`Dsv4Attention` computes what transformers 5.25's ``DeepseekV4Attention`` computes, with the
same submodule names (``load_state_dict`` moves weights between them; the tests do): queries
through ``q_a_proj``/``q_a_norm``/``q_b_proj`` and an unweighted RMSNorm, one K=V head
(``kv_proj``, ``kv_norm``), interleaved RoPE on the trailing ``rope_dim`` features (undone on the
output), attention over the window tensor followed by the compressed entries, a sink logit per
head, then the grouped ``o_a_proj`` (a bmm per group) and ``o_b_proj``.

The cache enters as tensors: ``window`` the kept K=V of up to W - 1 earlier tokens, and on a step
with a cache ``compressed`` (and CSA's ``index_keys``) the T entries the compressors hold after the
step (as ``update_compressor_states`` returns them). Without a cache the compressors pool the
complete windows of the new tokens themselves, as transformers' stateless mode does. Either way
the compressors project every new token (kv and gate; CSA's indexer too), which is what
transformers multiplies. RoPE here is the plain kind (no YaRN): it moves no multiply-adds, and the
tests compare outputs on configs without YaRN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attncli.kinds.dsv4.sizes import CSA, HCA, SLIDING, Dsv4Sizes

EPS = 1e-6
State = tuple[Tensor, Tensor, "Tensor | None", "Tensor | None"]
"""A compressor's state before the step: buffered kv and gate (B, r, width) of the open window, and
CSA's overlap kv and gate (B, m, dim) of the last closed window (None before the first)."""


class RMSNorm(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x: Tensor) -> Tensor:
        h = x.float()
        return (self.weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + EPS))).to(x.dtype)


def rope(x: Tensor, positions: Tensor, rope_dim: int, theta: float, sign: float = 1.0) -> Tensor:
    """transformers' V4 ``apply_rotary_pos_emb``: interleaved pairs of the last ``rope_dim`` features.
    ``positions`` (L,), ``x`` (..., L, d)."""
    inv = torch.pow(theta, -torch.arange(0, rope_dim, 2, dtype=torch.float32, device=x.device) / rope_dim)
    freqs = positions.float()[:, None] * inv[None, :]
    cos = freqs.cos().to(x.dtype).repeat_interleave(2, dim=-1)
    sin = (sign * freqs.sin()).to(x.dtype).repeat_interleave(2, dim=-1)
    nope, r = x[..., :-rope_dim], x[..., -rope_dim:]
    rotated = torch.stack((-r[..., 1::2], r[..., 0::2]), dim=-1).flatten(-2)
    return torch.cat([nope, (r.float() * cos + rotated.float() * sin).to(x.dtype)], dim=-1)


class Pool(nn.Module):
    """One compressor (``DeepseekV4HCACompressor``, CSA's and its indexer's): kv and gate projections
    (``width`` = 2 x ``dim`` when windows overlap), a float32 ``position_bias``, softmax pooling per
    window of ``ratio`` tokens, RMSNorm."""

    def __init__(self, hidden: int, dim: int, ratio: int, overlap: bool) -> None:
        super().__init__()
        width = 2 * dim if overlap else dim
        self.dim, self.ratio, self.overlap = dim, ratio, overlap
        self.kv_proj = nn.Linear(hidden, width, bias=False)
        self.gate_proj = nn.Linear(hidden, width, bias=False)
        self.position_bias = nn.Parameter(torch.zeros(ratio, width, dtype=torch.float32))
        self.kv_norm = RMSNorm(dim)

    def forward(self, x: Tensor, state: State | None = None) -> Tensor:
        """The entries the new tokens ``x`` (B, L, E) close: with ``state`` (the cache's buffer of the
        open window's projected kv and gate, and on CSA the last window's first series, the overlap)
        as ``store_compression_weights``/``update_overlap_state`` carry them across steps; without it
        the complete windows of ``x`` alone, as transformers' stateless mode."""
        b, m, d = x.shape[0], self.ratio, self.dim
        kv, gate = self.kv_proj(x), self.gate_proj(x)
        if state is not None:
            kv, gate = torch.cat([state[0], kv], dim=1), torch.cat([state[1], gate], dim=1)
        n = kv.shape[1] // m
        kv = kv[:, :n * m].reshape(b, n, m, kv.shape[-1])
        gate = gate[:, :n * m].reshape(b, n, m, gate.shape[-1]) + self.position_bias
        if self.overlap:
            new_kv = kv.new_zeros((b, n, 2 * m, d))
            new_gate = gate.new_full((b, n, 2 * m, d), float("-inf"))
            new_kv[:, :, m:], new_gate[:, :, m:] = kv[..., d:], gate[..., d:]
            if n > 1:
                new_kv[:, 1:, :m], new_gate[:, 1:, :m] = kv[:, :-1, :, :d], gate[:, :-1, :, :d]
            if state is not None and state[2] is not None and state[3] is not None and n > 0:
                new_kv[:, 0, :m], new_gate[:, 0, :m] = state[2].to(new_kv.dtype), state[3].to(new_gate.dtype)
            kv, gate = new_kv, new_gate
        pooled: Tensor = self.kv_norm((kv * gate.softmax(dim=2, dtype=torch.float32).to(kv.dtype)).sum(dim=2))
        return pooled


class Scorer(nn.Module):
    """``DeepseekV4IndexerScorer``: sum_h w_h ReLU(q_h . k) / sqrt(ID), w from ``weights_proj`` / sqrt(IH)."""

    def __init__(self, hidden: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.weights_proj = nn.Linear(hidden, heads, bias=False)

    def forward(self, q: Tensor, keys: Tensor, x: Tensor) -> Tensor:
        scores = F.relu(torch.matmul(q.float(), keys.transpose(-1, -2).float().unsqueeze(1))) * self.head_dim ** -0.5
        weights = self.weights_proj(x).float() * self.heads ** -0.5
        summed: Tensor = (scores * weights.unsqueeze(-1)).sum(dim=2)  # (B, L, T)
        return summed


class Indexer(Pool):
    """CSA's lightning indexer (``DeepseekV4Indexer``): its own overlapping compressor at ``ID``,
    ``q_b_proj`` from the query latent, ``scorer.weights_proj``; scores sum_h w_h ReLU(q_h . k)."""

    def __init__(self, z: Dsv4Sizes) -> None:
        super().__init__(z.hidden, z.index_head_dim, z.csa_ratio, overlap=True)
        self.heads = z.index_heads
        self.q_b_proj = nn.Linear(z.q_lora_rank, z.index_heads * z.index_head_dim, bias=False)
        self.scorer = Scorer(z.hidden, z.index_heads, z.index_head_dim)

    def score(self, x: Tensor, q_latent: Tensor, keys: Tensor, positions: Tensor, rope_dim: int,
              theta: float) -> Tensor:
        b, q_len, _ = x.shape
        q = self.q_b_proj(q_latent).view(b, q_len, self.heads, self.dim).transpose(1, 2)
        q = rope(q, positions, rope_dim, theta).transpose(1, 2)  # (B, L, IH, ID)
        scores: Tensor = self.scorer(q, keys, x)
        return scores


class Compressor(Pool):
    def __init__(self, z: Dsv4Sizes, layer_type: str) -> None:
        super().__init__(z.hidden, z.head_dim, z.ratio(layer_type), overlap=layer_type == CSA)
        if layer_type == CSA:
            self.indexer = Indexer(z)


class GroupedLinear(nn.Linear):
    """``DeepseekV4GroupedLinear``: G blocks of (H*D/G -> OR), one bmm."""

    def __init__(self, per_group: int, out_features: int, groups: int) -> None:
        super().__init__(per_group, out_features, bias=False)
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        lead, width = x.shape[:-2], x.shape[-1]
        w = self.weight.view(self.groups, -1, width).transpose(1, 2)
        y = torch.bmm(x.reshape(-1, self.groups, width).transpose(0, 1), w).transpose(0, 1)
        return y.reshape(*lead, self.groups, -1)


class Dsv4Attention(nn.Module):
    def __init__(self, z: Dsv4Sizes, layer_type: str, rope_dim: int, rope_theta: float = 10000.0,
                 compress_rope_theta: float = 160000.0, cached: int = 0) -> None:
        super().__init__()
        self.cached = cached
        """N, the tokens before this step (the new tokens' positions start there)."""
        assert layer_type in (SLIDING, CSA, HCA)
        self.z, self.layer_type, self.rope_dim = z, layer_type, rope_dim
        self.theta = rope_theta if layer_type == SLIDING else compress_rope_theta
        self.compress_theta = compress_rope_theta
        hd = z.heads * z.head_dim
        self.q_a_proj = nn.Linear(z.hidden, z.q_lora_rank, bias=False)
        self.q_a_norm = RMSNorm(z.q_lora_rank)
        self.q_b_proj = nn.Linear(z.q_lora_rank, hd, bias=False)
        self.kv_proj = nn.Linear(z.hidden, z.head_dim, bias=False)
        self.kv_norm = RMSNorm(z.head_dim)
        self.o_a_proj = GroupedLinear(hd // z.o_groups, z.o_groups * z.o_lora_rank, z.o_groups)
        self.o_b_proj = nn.Linear(z.o_groups * z.o_lora_rank, z.hidden, bias=False)
        self.sinks = nn.Parameter(torch.zeros(z.heads, dtype=torch.float32))
        if layer_type != SLIDING:
            self.compressor = Compressor(z, layer_type)

    def forward(self, x: Tensor, window: Tensor, compressed: Tensor | None = None, state: State | None = None,
                index_keys: Tensor | None = None, index_state: State | None = None) -> Tensor:
        """``x`` (B, L, E) new tokens after N cached ones; ``window`` (B, min(N, W - 1), D); with a cache
        ``compressed`` (B, floor(N / m), D) the entries closed before the step and ``state`` the
        compressor's (:data:`State`), CSA's ``index_keys``/``index_state`` the indexer's; None without."""
        z, b, q_len = self.z, x.shape[0], x.shape[1]
        cached = self.cached
        positions = torch.arange(cached, cached + q_len, device=x.device)
        q_latent = self.q_a_norm(self.q_a_proj(x))
        q = self.q_b_proj(q_latent).view(b, q_len, z.heads, z.head_dim).transpose(1, 2)
        q = q * torch.rsqrt(q.float().pow(2).mean(-1, keepdim=True) + EPS).to(q.dtype)
        q = rope(q, positions, self.rope_dim, self.theta)
        kv = rope(self.kv_norm(self.kv_proj(x)), positions, self.rope_dim, self.theta)
        keys = torch.cat([window, kv], dim=1)  # (B, Kw, D)
        n_win = keys.shape[1]
        # the sliding mask over the window tensor (bottom-right aligned): key j sits at N + L - Kw + j
        qpos = positions[:, None]
        kpos = torch.arange(n_win, device=x.device)[None, :] + (cached + q_len - n_win)
        mask = torch.where((kpos <= qpos) & (kpos > qpos - z.window), 0.0, float("-inf"))
        if self.layer_type != SLIDING:
            c = self.compressor
            compressed = self._append(c(x, state), compressed, c.ratio)
            threshold = (positions + 1) // c.ratio
            visible = torch.arange(compressed.shape[1], device=x.device)[None, :] <= threshold[:, None] - 1
            if self.layer_type == CSA:
                ix = c.indexer
                index_keys = self._append(ix(x, index_state), index_keys, ix.ratio)
                scores = ix.score(x, q_latent, index_keys, positions, self.rope_dim, self.compress_theta)
                scores = scores.masked_fill(~visible, float("-inf"))
                top = scores.topk(min(z.index_topk, scores.shape[-1]), dim=-1).indices  # (B, L, k)
                chosen = torch.zeros_like(scores).scatter(-1, top, 1.0) > 0
                visible = visible & chosen
            bias = torch.where(visible, 0.0, float("-inf"))
            keys = torch.cat([keys, compressed], dim=1)
            mask = torch.cat([mask.expand(b, -1, -1) if bias.dim() == 3 else mask, bias], dim=-1)
        logits = torch.matmul(q, keys.unsqueeze(1).transpose(-1, -2)) * z.head_dim ** -0.5
        logits = logits + (mask.unsqueeze(1) if mask.dim() == 3 else mask).to(logits.dtype)
        sinks = self.sinks.reshape(1, -1, 1, 1).expand(b, -1, q_len, 1).to(logits.dtype)
        combined = torch.cat([logits, sinks], dim=-1)
        probs = F.softmax(combined - combined.max(dim=-1, keepdim=True).values, dim=-1)[..., :-1]
        out = torch.matmul(probs.to(keys.dtype), keys.unsqueeze(1))  # (B, H, L, D)
        out = rope(out, positions, self.rope_dim, self.theta, sign=-1.0).transpose(1, 2)
        grouped = self.o_a_proj(out.reshape(b, q_len, z.o_groups, -1)).flatten(2)
        return self.o_b_proj(grouped)  # type: ignore[no-any-return]

    def _append(self, new: Tensor, before: Tensor | None, ratio: int) -> Tensor:
        """The entries after the step: those closed before, then the new ones rotated at their window's
        first position (``i * m + first_window_position``, compress RoPE)."""
        first = 0 if before is None else before.shape[1]
        new = rope(new, (torch.arange(new.shape[1], device=new.device) + first) * ratio, self.rope_dim,
                   self.compress_theta)
        return new if before is None else torch.cat([before, new], dim=1)
