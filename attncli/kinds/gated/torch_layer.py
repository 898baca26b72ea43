"""attncli's own gated full-attention layer (Qwen3-Next), for counting and checking.

:class:`GatedAttention` computes what transformers' ``Qwen3NextAttention`` computes, with its
submodule names (``q_proj`` of 2*H*d outputs, ``k_proj``, ``v_proj``, ``o_proj``, ``q_norm``,
``k_norm``), so ``load_state_dict`` moves weights between them (a test does). RoPE may rotate
only the first ``cos.shape[-1]`` features of a head (Qwen3-Next's partial rotary factor), as
transformers' ``apply_rotary_pos_emb`` there does.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attncli.kinds.mla.torch_layer import rope_tables, rotate_half
from attncli.kinds.seeded import build_seeded
from attncli.layer.inputs import blocked_mask
from attncli.layer.visibility import padded_keys
from attncli.spec import AttnSpec

RMS_EPS = 1e-6


class ZeroCenteredRMSNorm(nn.Module):
    """Qwen3-Next's RMSNorm: x / rms(x) * (1 + weight), weight starting at zero."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(size))

    def forward(self, x: Tensor) -> Tensor:
        y = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + RMS_EPS)
        return (y * (1.0 + self.weight.float())).type_as(x)


def _rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    rd = cos.shape[-1]
    rot, rest = x[..., :rd], x[..., rd:]
    return torch.cat((rot * cos + rotate_half(rot) * sin, rest), dim=-1)


class GatedAttention(nn.Module):
    """``forward(x, cos, sin, past_key=None, past_value=None, blocked=None) -> output``: ``x``
    (B, L, E); ``cos``/``sin`` (L, rotary dim); the cache (B, G, N, d); ``blocked`` broadcasts to
    (B, H, L, S), True where a query may not attend."""

    def __init__(self, spec: AttnSpec) -> None:
        super().__init__()
        e, h, g, d = spec.dim, spec.heads, spec.n_kv_heads, spec.head_dim
        self.h, self.g, self.d = h, g, d
        self.q_proj = nn.Linear(e, h * d * 2, bias=spec.bias)
        self.k_proj = nn.Linear(e, g * d, bias=spec.bias)
        self.v_proj = nn.Linear(e, g * d, bias=spec.bias)
        self.use_out_proj = spec.out_proj
        if spec.out_proj:
            self.o_proj = nn.Linear(h * d, e, bias=spec.bias)
        self.q_norm = ZeroCenteredRMSNorm(d)
        self.k_norm = ZeroCenteredRMSNorm(d)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, past_key: Tensor | None = None,
                past_value: Tensor | None = None, blocked: Tensor | None = None) -> Tensor:
        b, q_len, _ = x.shape
        h, g, d = self.h, self.g, self.d
        q, gate = torch.chunk(self.q_proj(x).view(b, q_len, h, 2 * d), 2, dim=-1)   # (B, L, H, d) each
        q = self.q_norm(q).transpose(1, 2)                                           # (B, H, L, d)
        k = self.k_norm(self.k_proj(x).view(b, q_len, g, d)).transpose(1, 2)         # (B, G, L, d)
        v = self.v_proj(x).view(b, q_len, g, d).transpose(1, 2)
        q, k = _rope(q, cos, sin), _rope(k, cos, sin)
        if past_key is not None and past_value is not None:
            k, v = torch.cat((past_key, k), dim=2), torch.cat((past_value, v), dim=2)  # (B, G, S, d)
        k = k.repeat_interleave(h // g, dim=1)
        v = v.repeat_interleave(h // g, dim=1)
        scores = torch.matmul(q, k.transpose(-2, -1)) * d ** -0.5                    # (B, H, L, d) @ (B, H, d, S)
        if blocked is not None:
            scores = scores.masked_fill(blocked, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)
        ctx = torch.matmul(weights, v)                                               # (B, H, L, S) @ (B, H, S, d)
        merged = ctx.transpose(1, 2).reshape(b, q_len, h * d) * torch.sigmoid(gate.reshape(b, q_len, h * d))
        out: Tensor = self.o_proj(merged) if self.use_out_proj else merged
        return out


def build(spec: AttnSpec, device: str | torch.device = "cpu") -> GatedAttention:
    """The layer in eval mode, seeded with ``spec.seed`` on a real device (:func:`build_seeded`), the
    norms' weights drawn away from 0 so a lost norm shows; uninitialised on meta."""
    def init(module: GatedAttention) -> None:
        module.q_norm.weight.uniform_(-0.5, 0.5)
        module.k_norm.weight.uniform_(-0.5, 0.5)

    return build_seeded(lambda: GatedAttention(spec), spec, device, init)


def make_args(spec: AttnSpec, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
              rotary: int | None = None) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
    """``(x, cos, sin)`` and, as keywords, the cache (with ``--cache``) and the mask (with one); the
    rotary dimension defaults to the whole head."""
    meta = torch.device(device).type == "meta"
    gen = torch.Generator().manual_seed(spec.seed)

    def rand(*shape: int) -> Tensor:
        if meta:
            return torch.empty(shape, device="meta", dtype=dtype)
        return torch.randn(shape, generator=gen, dtype=dtype).to(device)

    x = rand(spec.batch, spec.seq, spec.dim)
    positions = torch.arange(spec.cache, spec.cache + spec.seq)
    cos, sin = (t.to(device=device, dtype=dtype) for t in rope_tables(positions, rotary or spec.head_dim))
    kwargs: dict[str, Tensor] = {}
    if spec.cache:
        kwargs["past_key"] = rand(spec.batch, spec.n_kv_heads, spec.cache, spec.head_dim)
        kwargs["past_value"] = rand(spec.batch, spec.n_kv_heads, spec.cache, spec.head_dim)
    blocked = blocked_mask(spec, device)
    if spec.mask == "padding":
        pad = torch.zeros(spec.batch, 1, 1, spec.s, dtype=torch.bool, device=device)
        pad[..., spec.s - padded_keys(spec.s):] = True
        blocked = pad if blocked is None else blocked | pad
    if blocked is not None:
        kwargs["blocked"] = blocked
    return (x, cos, sin), kwargs
