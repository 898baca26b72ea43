"""attncli's own Kimi Delta Attention layer, in both forms, for counting and checking.

:class:`KimiDeltaAttention` computes what transformers' ``KimiLinearDeltaAttention`` computes on its torch
path (``chunk_kimi_delta_attention``, ``recurrent_kimi_delta_attention``, ``causal_conv1d_fn`` /
``causal_conv1d_update``, ``KimiLinearForgetGate``, ``KimiLinearRMSNormGated``), with the same submodule
and parameter names, so ``load_state_dict`` moves weights between them (the tests do).

What differs is only how each product of the delta rule is written: in its own parameter-free
:class:`MatMul` submodule (``delta_kk``, ``delta_inv``, ``delta_wy``, ``delta_out``, ``delta_qk``,
``delta_read``, ``delta_av``, ``delta_write``), so the counting engine names its stage by scope. The
products transformers writes as broadcast multiplies and sums (FlopCounterMode sees 0) are written as the
matmuls they are, over the same operands: the decayed K_beta K^T and Q K^T of a chunk, (C, 1, D) @
(C, D, C) with the (C, D, C) keys decayed per query row (transformers' (C, C, D) product summed over D);
the forward substitution's row i, (1, i) @ (i, i); and the recurrent form's k^T S, k delta^T, q^T S.

On the meta device (where attncli counts) the sequential loops are issued at once, as
:mod:`attncli.kinds.gdn.torch_layer` does: the recurrent form's L steps and the chunked form's n chunks as
one matmul per stage over a batch of them, each product of the shape it has in the loop. On a real
device the loops run step by step, as transformers runs them.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attncli.kinds.gdn.torch_layer import CausalConv1d, MatMul
from attncli.kinds.kda.sizes import KdaSizes, kda_sizes
from attncli.kinds.seeded import build_seeded
from attncli.spec import AttnSpec

RMS_EPS = 1e-5
"""Kimi Linear's ``rms_norm_eps`` (the gated output norm's epsilon; elementwise, no multiply-adds)."""


class ForgetGate(nn.Module):
    """transformers' ``KimiLinearForgetGate``: the log decay, -exp(A_log) * softplus(f_b(f_a(x)) + dt_bias)."""

    def __init__(self, m: KdaSizes) -> None:
        super().__init__()
        self.head_dim = m.head_dim
        self.f_a_proj = nn.Linear(m.dim, m.head_dim, bias=False)
        self.f_b_proj = nn.Linear(m.head_dim, m.inner, bias=False)
        self.dt_bias = nn.Parameter(torch.empty(m.inner, dtype=torch.float32))
        self.A_log = nn.Parameter(torch.empty(1, 1, m.heads, 1))

    def forward(self, x: Tensor) -> Tensor:
        g = self.f_b_proj(self.f_a_proj(x))
        g = (g.float() + self.dt_bias.float().view(1, 1, -1)).view(*x.shape[:2], -1, self.head_dim)
        return -self.A_log.float().exp() * torch.where(g > 20.0, g, torch.log(1.0 + torch.exp(g)))


class RMSNormGated(nn.Module):
    """transformers' ``KimiLinearRMSNormGated``: rmsnorm(x) * weight * sigmoid(gate), in float32."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x: Tensor, gate: Tensor) -> Tensor:
        h = x.to(torch.float32)
        h = self.weight.to(torch.float32) * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + RMS_EPS))
        return (h * torch.sigmoid(gate.to(torch.float32))).to(x.dtype)


def l2norm(x: Tensor) -> Tensor:
    """transformers' (fla's) l2norm of KDA: x / sqrt(sum x^2 + 1e-6)."""
    return x / torch.sqrt((x * x).sum(dim=-1, keepdim=True) + 1e-6)


class KimiDeltaAttention(nn.Module):
    """Kimi Delta Attention with transformers' names; ``form`` is ``recurrent`` or ``chunked``.

    ``forward(x, recurrent_state=None, conv_state=None) -> (output, recurrent_state, conv_state)``: the
    output (B, L, E) and the new states as transformers' cache keeps them, (B, H, D, D) in float32 and
    (B, 3*H*D, K).
    """

    def __init__(self, spec: AttnSpec, form: str | None = None) -> None:
        super().__init__()
        m = kda_sizes(spec)
        self.m: KdaSizes = m
        self.form = form or spec.form or "chunked"
        self.use_o_proj = spec.out_proj
        self.q_proj = nn.Linear(m.dim, m.inner, bias=False)
        self.k_proj = nn.Linear(m.dim, m.inner, bias=False)
        self.v_proj = nn.Linear(m.dim, m.inner, bias=False)
        self.conv1d = CausalConv1d(m.conv_dim, m.kernel)
        self.forget_gate = ForgetGate(m)
        self.b_proj = nn.Linear(m.dim, m.heads, bias=False)
        self.g_a_proj = nn.Linear(m.dim, m.head_dim, bias=False)
        self.g_b_proj = nn.Linear(m.head_dim, m.inner, bias=False)
        self.o_norm = RMSNormGated(m.head_dim)
        if spec.out_proj:
            self.o_proj = nn.Linear(m.inner, m.dim, bias=False)
        stages = ("delta_read", "delta_write", "delta_out") if self.form == "recurrent" else (
            "delta_kk", "delta_inv", "delta_wy", "delta_out", "delta_qk", "delta_read", "delta_av", "delta_write")
        for name in stages:
            self.add_module(name, MatMul())

    def mm(self, stage: str, a: Tensor, b: Tensor) -> Tensor:
        """``a @ b`` in the stage's own submodule (its scope names the stage)."""
        return cast(Tensor, getattr(self, stage)(a, b))

    def forward(self, x: Tensor, recurrent_state: Tensor | None = None, conv_state: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:
        """The output and the new recurrent and conv states (returned, so a trace keeps the last state write)."""
        m = self.m
        b, q_len, _ = x.shape
        heads = (b, q_len, m.heads, m.head_dim)
        mixed = torch.cat((self.q_proj(x), self.k_proj(x), self.v_proj(x)), dim=-1)
        mixed, new_conv = self.conv1d(mixed.transpose(1, 2), conv_state)
        q, k, v = (t.reshape(heads) for t in torch.split(mixed.transpose(1, 2), [m.inner] * 3, dim=-1))
        g = self.forget_gate(x)
        beta = torch.sigmoid(self.b_proj(x))
        rule = self._recurrent if self.form == "recurrent" else self._chunked
        core, state = rule(q, k, v, g, beta, recurrent_state)
        gate = self.g_b_proj(self.g_a_proj(x)).view(heads)
        out = self.o_norm(core, gate).reshape(b, q_len, m.inner)
        return (self.o_proj(out) if self.use_o_proj else out), state, new_conv

    @staticmethod
    def _heads(q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor) -> list[Tensor]:
        """All (B, H, L, ...) in float32, q and k l2-normed, q / sqrt(D)."""
        q, k, v, g, beta = (t.transpose(1, 2).contiguous().to(torch.float32) for t in (q, k, v, g, beta))
        q = l2norm(q)
        return [q / (q.shape[-1] ** 0.5), l2norm(k), v, g, beta]

    def _recurrent(self, q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor,
                   state: Tensor | None) -> tuple[Tensor, Tensor]:
        """transformers' ``recurrent_kimi_delta_attention``, one token at a time."""
        dtype, q_len = q.dtype, q.shape[1]
        q, k, v, g, beta = self._heads(q, k, v, g, beta)
        b, h, _, d = k.shape
        s = torch.zeros(b, h, d, d, dtype=v.dtype, device=v.device) if state is None else state.to(v)
        if q.device.type == "meta":
            # NOTE: counting only (no values): the L steps' products at once, same shapes and MACs
            states = s.unsqueeze(2) * g.exp().unsqueeze(-1)                             # (B, H, L, D, D)
            delta = (v.unsqueeze(-2) - self.mm("delta_read", k.unsqueeze(-2), states)) * beta[..., None, None]
            states = states + self.mm("delta_write", k.unsqueeze(-1), delta)          # (.., D, 1) @ (.., 1, D)
            core = self.mm("delta_out", q.unsqueeze(-2), states).squeeze(-2)          # (.., 1, D) @ (.., D, D)
            return core.transpose(1, 2).contiguous().to(dtype), states[:, :, -1]
        outs = []
        for i in range(q_len):
            q_t, k_t, v_t = q[:, :, i:i + 1], k[:, :, i:i + 1], v[:, :, i:i + 1]     # (B, H, 1, D)
            s = s * g[:, :, i].exp().unsqueeze(-1)                                      # per-channel decay
            delta = (v_t - self.mm("delta_read", k_t, s)) * beta[:, :, i, None, None]   # (B, H, 1, D) @ (B, H, D, D)
            s = s + self.mm("delta_write", k_t.transpose(-1, -2), delta)             # (B, H, D, 1) @ (B, H, 1, D)
            outs.append(self.mm("delta_out", q_t, s))                                  # (B, H, 1, D) @ (B, H, D, D)
        return torch.cat(outs, dim=2).transpose(1, 2).contiguous().to(dtype), s

    def _chunked(self, q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor,
                 state: Tensor | None) -> tuple[Tensor, Tensor]:
        """transformers' ``chunk_kimi_delta_attention`` with chunks of C, L padded to a multiple of C."""
        dtype, q_len, c = q.dtype, q.shape[1], self.m.chunk
        q, k, v, g, beta = self._heads(q, k, v, g, beta)
        pad = (c - q_len % c) % c
        q, k, v, g = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v, g))
        beta = F.pad(beta, (0, pad))
        b, h, lp, d = k.shape
        n = lp // c
        v_beta, k_beta = v * beta.unsqueeze(-1), k * beta.unsqueeze(-1)
        q, k, g, k_beta, v_beta = (t.reshape(b, h, n, c, d) for t in (q, k, g, k_beta, v_beta))
        g = g.cumsum(dim=-2)
        upper = torch.ones(c, c, dtype=torch.bool, device=q.device).triu(1)
        diagonal_up = torch.ones(c, c, dtype=torch.bool, device=q.device).triu(0)
        decay = (g.unsqueeze(-2) - g.unsqueeze(-3)).masked_fill(upper[..., None], float("-inf")).exp()
        keys = (k.unsqueeze(-3) * decay).transpose(-1, -2)         # (B, H, n, C, D, C): row i's keys decayed
        kk = self.mm("delta_kk", k_beta.unsqueeze(-2), keys).squeeze(-2)  # (.., C, 1, D) @ (.., C, D, C)
        attn = -kk.masked_fill(diagonal_up, 0)
        for i in range(1, c):  # the forward substitution, row by row as transformers writes it
            row, sub = attn[..., i, :i].clone(), attn[..., :i, :i].clone()
            attn[..., i, :i] = row + self.mm("delta_inv", row.unsqueeze(-2), sub).squeeze(-2)  # (.., 1, i) @ (.., i, i)
        attn = attn + torch.eye(c, dtype=attn.dtype, device=attn.device)
        values = self.mm("delta_wy", attn, v_beta)                            # (.., C, C) @ (.., C, D)
        k_cumdecay = self.mm("delta_wy", attn, k_beta * g.exp())            # (.., C, C) @ (.., C, D)
        s = torch.zeros(b, h, d, d, dtype=v.dtype, device=v.device) if state is None else state.to(v)
        q_decayed = q * g.exp()
        k_decayed = k * (g[..., -1:, :] - g).exp()
        chunk_decay = g[..., -1, :].exp().unsqueeze(-1)                       # (B, H, n, D, 1)
        if q.device.type == "meta":
            # NOTE: counting only (no values): the n chunks' products at once, same shapes and MACs
            states = s.unsqueeze(2) * chunk_decay                                           # (B, H, n, D, D)
            inter = self.mm("delta_out", q_decayed, states)                                 # (.., C, D) @ (.., D, D)
            intra = self.mm("delta_qk", q.unsqueeze(-2), keys).squeeze(-2).masked_fill(upper, 0)
            v_new = values - self.mm("delta_read", k_cumdecay, states)                      # (.., C, D) @ (.., D, D)
            core = inter + self.mm("delta_av", intra, v_new)                                # (.., C, C) @ (.., C, D)
            states = states + self.mm("delta_write", k_decayed.transpose(-1, -2), v_new)    # (.., D, C) @ (.., C, D)
            core = core.reshape(b, h, lp, d)[:, :, :q_len]
            return core.transpose(1, 2).contiguous().to(dtype), states[:, :, -1]
        outs = []
        for i in range(n):
            inter = self.mm("delta_out", q_decayed[:, :, i], s)                       # (B, H, C, D) @ (.., D, D)
            intra = self.mm("delta_qk", q[:, :, i].unsqueeze(-2), keys[:, :, i]).squeeze(-2).masked_fill(upper, 0)
            v_new = values[:, :, i] - self.mm("delta_read", k_cumdecay[:, :, i], s)  # (B, H, C, D) @ (.., D, D)
            outs.append(inter + self.mm("delta_av", intra, v_new))                   # (B, H, C, C) @ (.., C, D)
            s = s * chunk_decay[:, :, i] + self.mm("delta_write", k_decayed[:, :, i].transpose(-1, -2), v_new)
        core = torch.stack(outs, dim=2).reshape(b, h, lp, d)[:, :, :q_len]
        return core.transpose(1, 2).contiguous().to(dtype), s


def build(spec: AttnSpec, device: str | torch.device = "cpu", form: str | None = None) -> KimiDeltaAttention:
    """The layer in eval mode, seeded with ``spec.seed`` on a real device; uninitialised on meta."""
    def init(module: KimiDeltaAttention) -> None:
        k = module.m.kernel
        module.conv1d.weight.uniform_(-k ** -0.5, k ** -0.5)  # nn.Conv1d's default bound
        module.forget_gate.A_log.copy_(torch.empty_like(module.forget_gate.A_log).uniform_(1, 16).log())
        module.forget_gate.dt_bias.uniform_(-4.0, -1.0)  # NOTE: transformers' init: softplus^-1 of [1e-3, 1e-1]
        module.o_norm.weight.uniform_(0.5, 1.5)  # NOTE: not all ones, so a lost norm weight shows

    return build_seeded(lambda: KimiDeltaAttention(spec, form), spec, device, init)


def make_args(spec: AttnSpec, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
              ) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
    """The arguments of one forward call, seeded with ``spec.seed``: ``(x,)`` and, with ``--cache``, the
    states a cache holds after N tokens: ``recurrent_state`` (B, H, D, D, float32) and ``conv_state``
    (B, 3*H*D, K)."""
    m = kda_sizes(spec)
    meta = torch.device(device).type == "meta"
    gen = torch.Generator().manual_seed(spec.seed)

    def rand(*shape: int, dt: torch.dtype = dtype) -> Tensor:
        if meta:
            return torch.empty(shape, device="meta", dtype=dt)
        return (torch.randn(shape, generator=gen, dtype=torch.float32) * 0.5).to(device=device, dtype=dt)

    kwargs: dict[str, Tensor] = {}
    x = rand(spec.batch, spec.seq, spec.dim)
    if spec.cache:
        kwargs["recurrent_state"] = rand(spec.batch, m.heads, m.head_dim, m.head_dim, dt=torch.float32)
        kwargs["conv_state"] = rand(spec.batch, m.conv_dim, m.kernel)
    return (x,), kwargs
