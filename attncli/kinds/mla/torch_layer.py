"""attncli's own multi-head latent attention layer, in both forms, for counting and checking.

:class:`MlaAttention` computes what transformers' ``DeepseekV3Attention`` computes (its
submodules carry the same names, so ``load_state_dict`` moves weights between them; the tests
do): the naive form expands the cached latents through ``kv_b_proj``, the absorbed form folds
W_UK into the query (``q_absorb``) and W_UV into the output (``out_absorb``) and attends over
the latent itself. Both give the same output. RoPE is the non-interleaved ``rotate_half`` kind
(transformers' ``apply_rotary_pos_emb``); the cached latent is kept normalised and the cached
RoPE key rotated, as transformers' cache keeps them. The counting engine
(:mod:`attncli.engine.trace`) names each matmul's stage by the submodule that runs it
(:data:`attncli.kinds.mla.kind.SCOPE_STAGES`) and, for the attention matmuls, by the data flow.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attncli.kinds.mla.sizes import mla_sizes
from attncli.kinds.seeded import build_seeded
from attncli.layer.inputs import blocked_mask
from attncli.layer.visibility import padded_keys
from attncli.spec import AttnSpec

ROPE_THETA = 10000.0
RMS_EPS = 1e-6


class RMSNorm(nn.Module):
    """transformers' ``DeepseekV3RMSNorm``: x / rms(x) * weight (no multiply-adds of a matmul)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x: Tensor) -> Tensor:
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (x.float() * torch.rsqrt(variance + RMS_EPS)).to(x.dtype)


class Absorb(nn.Module):
    """One absorbed up-projection: ``x @ w`` per head (H x (rows, a) @ (a, b)); no parameters of
    its own (``w`` is a slice of ``kv_b_proj.weight``)."""

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        # (b, h, l, a) @ (h, a, b) -> (b, h, l, b)
        return torch.matmul(x, w)


def rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_tables(positions: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """cos and sin, (L, dim), for the given absolute positions (transformers' default RoPE)."""
    inv = 1.0 / (ROPE_THETA ** (torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) / dim))
    freqs = positions.float()[:, None] * inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


class MlaAttention(nn.Module):
    """MLA with transformers' submodule names; ``form`` is ``naive`` or ``absorbed``.

    ``forward(x, cos, sin, past_latent=None, past_k_rope=None, blocked=None) -> output``:
    ``x`` (B, L, E); ``cos``/``sin`` (L, DR) for the new tokens; the cache, (B, N, R)
    normalised latents and (B, N, DR) rotated RoPE keys; ``blocked`` broadcasts to
    (B, H, L, S), True where a query may not attend.
    """

    def __init__(self, spec: AttnSpec, form: str | None = None) -> None:
        super().__init__()
        m = mla_sizes(spec)
        self.m = m
        self.form = form or spec.form or "naive"
        self.use_out_proj = spec.out_proj
        e, h = m.dim, m.heads
        if m.q_lora_rank:
            self.q_a_proj = nn.Linear(e, m.q_lora_rank, bias=m.bias)
            self.q_a_layernorm = RMSNorm(m.q_lora_rank)
            self.q_b_proj = nn.Linear(m.q_lora_rank, h * m.qk_head_dim, bias=False)
        else:
            self.q_proj = nn.Linear(e, h * m.qk_head_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(e, m.latent, bias=m.bias)
        self.kv_a_layernorm = RMSNorm(m.kv_lora_rank)
        self.kv_b_proj = nn.Linear(m.kv_lora_rank, h * (m.qk_nope_head_dim + m.v_head_dim), bias=False)
        if spec.out_proj:
            self.o_proj = nn.Linear(h * m.v_head_dim, e, bias=m.bias)
        if self.form == "absorbed":
            self.q_absorb = Absorb()
            self.out_absorb = Absorb()
        self.scaling = m.qk_head_dim ** -0.5

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, past_latent: Tensor | None = None,
                past_k_rope: Tensor | None = None, blocked: Tensor | None = None) -> Tensor:
        m = self.m
        b, q_len, _ = x.shape
        h, dn, dr, dv, r = m.heads, m.qk_nope_head_dim, m.qk_rope_head_dim, m.v_head_dim, m.kv_lora_rank
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))) if m.q_lora_rank else self.q_proj(x)
        q = q.view(b, q_len, h, dn + dr).transpose(1, 2)                # (B, H, L, DN+DR)
        q_nope, q_rope = torch.split(q, [dn, dr], dim=-1)
        latent, k_rope = torch.split(self.kv_a_proj_with_mqa(x), [r, dr], dim=-1)  # (B, L, R), (B, L, DR)
        latent = self.kv_a_layernorm(latent)
        q_rope = q_rope * cos + rotate_half(q_rope) * sin
        k_rope = k_rope * cos + rotate_half(k_rope) * sin
        if past_latent is not None and past_k_rope is not None:
            latent = torch.cat((past_latent, latent), dim=1)               # (B, S, R)
            k_rope = torch.cat((past_k_rope, k_rope), dim=1)               # (B, S, DR)
        s = latent.shape[1]
        k_rope = k_rope.unsqueeze(1)                                       # (B, 1, S, DR): one shared head
        if self.form == "absorbed":
            w = self.kv_b_proj.weight.view(h, dn + dv, r)
            q_lat = self.q_absorb(q_nope, w[:, :dn, :])                    # (B, H, L, DN) @ (H, DN, R)
            c = latent.unsqueeze(1)                                        # (B, 1, S, R)
            # (B, H, L, R) @ (B, 1, R, S) + (B, H, L, DR) @ (B, 1, DR, S) -> (B, H, L, S)
            scores = torch.matmul(q_lat, c.transpose(-2, -1)) + torch.matmul(q_rope, k_rope.transpose(-2, -1))
            weights = self._softmax(scores * self.scaling, blocked)
            ctx_lat = torch.matmul(weights, c)                             # (B, H, L, S) @ (B, 1, S, R)
            ctx = self.out_absorb(ctx_lat, w[:, dn:, :].transpose(-2, -1))  # (B, H, L, R) @ (H, R, DV)
        else:
            kv = self.kv_b_proj(latent).view(b, s, h, dn + dv).transpose(1, 2)  # (B, H, S, DN+DV)
            k_nope, v = torch.split(kv, [dn, dv], dim=-1)
            k = torch.cat((k_nope, k_rope.expand(b, h, s, dr)), dim=-1)   # (B, H, S, DN+DR)
            qq = torch.cat((q_nope, q_rope), dim=-1)
            scores = torch.matmul(qq, k.transpose(-2, -1))                 # (B, H, L, DN+DR) @ (B, H, DN+DR, S)
            weights = self._softmax(scores * self.scaling, blocked)
            ctx = torch.matmul(weights, v)                                 # (B, H, L, S) @ (B, H, S, DV)
        merged = ctx.transpose(1, 2).reshape(b, q_len, h * dv)
        out: Tensor = self.o_proj(merged) if self.use_out_proj else merged
        return out

    @staticmethod
    def _softmax(scores: Tensor, blocked: Tensor | None) -> Tensor:
        if blocked is not None:
            scores = scores.masked_fill(blocked, float("-inf"))
        return torch.softmax(scores.float(), dim=-1).to(scores.dtype)


def build(spec: AttnSpec, device: str | torch.device = "cpu", form: str | None = None) -> MlaAttention:
    """The layer in eval mode, seeded with ``spec.seed`` on a real device (:func:`build_seeded`), the
    norm weights drawn away from 1 so a lost one shows; uninitialised on meta."""
    def init(module: MlaAttention) -> None:
        for name, p in module.named_parameters():
            if name.endswith("layernorm.weight"):
                p.uniform_(0.5, 1.5)

    return build_seeded(lambda: MlaAttention(spec, form), spec, device, init)


def make_args(spec: AttnSpec, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
              ) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
    """The arguments of one forward call, seeded with ``spec.seed``: ``(x, cos, sin)`` and, as
    keywords, the cached latent and RoPE keys (with ``--cache``) and the mask (with one)."""
    m = mla_sizes(spec)
    meta = torch.device(device).type == "meta"
    gen = torch.Generator().manual_seed(spec.seed)

    def rand(*shape: int) -> Tensor:
        if meta:
            return torch.empty(shape, device="meta", dtype=dtype)
        return torch.randn(shape, generator=gen, dtype=dtype).to(device)

    x = rand(spec.batch, spec.seq, spec.dim)
    positions = torch.arange(spec.cache, spec.cache + spec.seq)
    cos, sin = (t.to(device=device, dtype=dtype) for t in rope_tables(positions, m.qk_rope_head_dim))
    kwargs: dict[str, Tensor] = {}
    if spec.cache:
        kwargs["past_latent"] = rand(spec.batch, spec.cache, m.kv_lora_rank)
        kwargs["past_k_rope"] = rand(spec.batch, spec.cache, m.qk_rope_head_dim)
    blocked = blocked_mask(spec, device)
    if spec.mask == "padding":
        pad = torch.zeros(spec.batch, 1, 1, spec.s, dtype=torch.bool, device=device)
        pad[..., spec.s - padded_keys(spec.s):] = True
        blocked = pad if blocked is None else blocked | pad
    if blocked is not None:
        kwargs["blocked"] = blocked
    return (x, cos, sin), kwargs
