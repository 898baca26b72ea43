"""attncli's own Mamba2 layer, for counting and checking: what transformers' ``NemotronHMamba2Mixer`` computes
on its torch path, with the same submodule and parameter names (``in_proj``, ``conv1d``, ``dt_bias``,
``A_log``, ``D``, ``norm``, ``out_proj``), so ``load_state_dict`` moves weights between them (the tests do).

What differs is only where each product of the scan runs: transformers' einsums (``mamba2_chunk_scan``) and
``torch.bmm`` (``mamba2_selective_state_update``) are each a matmul in its own parameter-free
:class:`MatMul` submodule (``ssd_cb``, ``ssd_diag``, ``ssd_states``, ``ssd_pass``, ``ssd_out``,
``ssm_out``), so the counting engine names its stage by scope, over exactly the operands transformers
contracts. The depthwise causal convolution is a matmul of its sliding windows with the kernel, over the
outputs transformers' torch conv computes. On the meta device the recurrent form's L per-token products
are issued as one matmul (the same shapes per token, so the same MACs); on a real device it loops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attncli.kinds.mamba2.sizes import Mamba2Sizes, mamba2_sizes
from attncli.kinds.seeded import build_seeded
from attncli.spec import AttnSpec

NORM_EPS = 1e-5
"""``NemotronHConfig.layer_norm_epsilon``."""


class MatMul(nn.Module):
    """One product of the scan, ``a @ b``; no parameters (its name is its stage)."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.matmul(a, b)


class CausalConv1d(nn.Module):
    """The depthwise causal conv over x, B and C (weight (C, 1, K) and bias as ``nn.Conv1d`` holds them),
    then SiLU. ``forward(x (B, C, L), state (B, C, K) or None) -> (out, new state)``: the outputs
    transformers computes (:func:`attncli.kinds.mamba2.counts.conv_outputs`)."""

    def __init__(self, channels: int, kernel: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        k, q_len = self.weight.shape[-1], x.shape[-1]
        if state is None:
            full = F.pad(x, (k - q_len, 0)) if q_len < k else x
            inp, keep = F.pad(x, (k - 1, k - 1)), slice(0, q_len)
        else:
            full = torch.cat((state, x.to(state.dtype)), dim=-1)
            if q_len == 1:
                inp, keep = full, slice(-1, None)
            else:
                inp, keep = F.pad(full, (k - 1, k - 1)), slice(k, k + q_len)
        windows = inp.unfold(-1, k, 1)                            # (B, C, P, K): P outputs
        out = torch.matmul(windows, self.weight.transpose(1, 2)).squeeze(-1)  # (B, C, P, K) @ (C, K, 1)
        if self.bias is not None:
            out = out + self.bias[:, None]
        return F.silu(out[..., keep]).to(x.dtype), full[..., -k:]


class RMSNormGated(nn.Module):
    """transformers' ``NemotronHRMSNormGated``: x * silu(gate), RMS-normed per group of I / G, times weight."""

    def __init__(self, size: int, group_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.group_size = group_size

    def forward(self, x: Tensor, gate: Tensor) -> Tensor:
        dtype = x.dtype
        h = x.to(torch.float32) * F.silu(gate.to(torch.float32))
        *lead, last = h.shape
        g = h.view(*lead, last // self.group_size, self.group_size)
        g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + NORM_EPS)
        out: Tensor = self.weight * g.view(*lead, last).to(dtype)
        return out


def segment_sum(x: Tensor) -> Tensor:
    """transformers' ``segment_sum``: out[..., i, j] = x[..., j+1] + ... + x[..., i] for j <= i, else -inf."""
    c = x.size(-1)
    x = x[..., None].expand(*x.size(), c)
    x = x.masked_fill(~torch.tril(torch.ones(c, c, device=x.device, dtype=torch.bool), diagonal=-1), 0)
    s = torch.cumsum(x, dim=-2)
    return s.masked_fill(~torch.tril(torch.ones(c, c, device=x.device, dtype=torch.bool), diagonal=0), -torch.inf)


class Mamba2Mixer(nn.Module):
    """Mamba2 with transformers' names; ``form`` ``chunked`` or ``recurrent``.

    ``forward(x, ssm_state=None, conv_state=None) -> (output, ssm_state, conv_state)``: the output (B, L, E)
    and the states as transformers' cache keeps them: (B, H, P, N) float32 and (B, I + 2*G*N, K).
    """

    ssd_cb: MatMul
    ssd_diag: MatMul
    ssd_states: MatMul
    ssd_pass: MatMul
    ssd_out: MatMul
    ssm_out: MatMul

    def __init__(self, spec: AttnSpec, form: str | None = None) -> None:
        super().__init__()
        m = mamba2_sizes(spec)
        self.m: Mamba2Sizes = m
        self.form = form or spec.form or "chunked"
        self.use_out_proj = spec.out_proj
        self.in_proj = nn.Linear(m.dim, m.in_proj, bias=m.proj_bias)
        self.conv1d = CausalConv1d(m.conv_dim, m.kernel, m.conv_bias)
        self.dt_bias = nn.Parameter(torch.ones(m.heads))
        self.A_log = nn.Parameter(torch.zeros(m.heads))
        self.D = nn.Parameter(torch.ones(m.heads))
        self.norm = RMSNormGated(m.inner, m.inner // m.groups)
        if spec.out_proj:
            self.out_proj = nn.Linear(m.inner, m.dim, bias=m.proj_bias)
        names = ("ssd_cb", "ssd_diag", "ssd_states", "ssd_pass", "ssd_out") if self.form == "chunked" else ("ssm_out",)
        for name in names:
            self.add_module(name, MatMul())

    def forward(self, x: Tensor, ssm_state: Tensor | None = None, conv_state: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:
        m = self.m
        b, q_len, _ = x.shape
        gate, xbc, dt = torch.split(self.in_proj(x), [m.inner, m.conv_dim, m.heads], dim=-1)
        xbc, new_conv = self.conv1d(xbc.transpose(1, 2), conv_state)
        xs, bm, cm = torch.split(xbc.transpose(1, 2), [m.inner, m.groups * m.state, m.groups * m.state], dim=-1)
        a = -torch.exp(self.A_log.float())
        scan = self._chunked if self.form == "chunked" else self._recurrent
        y, state = scan(xs.reshape(b, q_len, m.heads, m.head_dim), dt, a,
                        bm.reshape(b, q_len, m.groups, m.state), cm.reshape(b, q_len, m.groups, m.state), ssm_state)
        y = self.norm(y.reshape(b, q_len, m.inner), gate)
        out: Tensor = self.out_proj(y.to(x.dtype)) if self.use_out_proj else y.to(x.dtype)
        return out, state, new_conv

    def _chunked(self, xs: Tensor, dt: Tensor, a: Tensor, bm: Tensor, cm: Tensor,
                 state: Tensor | None) -> tuple[Tensor, Tensor]:
        """transformers' ``mamba2_chunk_scan`` (each einsum a matmul of the same operands)."""
        m, c = self.m, self.m.chunk
        b, q_len, h, p = xs.shape
        dt = torch.clamp(F.softplus(dt + self.dt_bias.to(dt.dtype)), min=0.0)
        xs = xs.float()
        bm = bm.float().repeat_interleave(h // m.groups, dim=2)
        cm = cm.float().repeat_interleave(h // m.groups, dim=2)
        pad = (c - q_len % c) % c
        d_residual = self.D[:, None] * F.pad(xs, (0, 0, 0, 0, 0, pad))
        xs = xs * dt[..., None].float()
        av = a.to(xs.dtype) * dt.float()
        xs, bm, cm = (F.pad(t, (0, 0, 0, 0, 0, pad)).reshape(b, -1, c, h, t.shape[-1]) for t in (xs, bm, cm))
        av = F.pad(av, (0, 0, 0, pad)).reshape(b, -1, c, h).permute(0, 3, 1, 2)        # (b, h, n, C)
        cum = torch.cumsum(av, dim=-1)
        mask = torch.exp(segment_sum(av)).permute(0, 2, 1, 3, 4)                         # (b, n, h, l, s)
        xh, bh, ch = (t.permute(0, 1, 3, 2, 4) for t in (xs, bm, cm))                    # (b, n, h, C, .)
        scores = self.ssd_cb(ch, bh.transpose(-1, -2)) * mask                  # (b,n,h,C,N) @ (b,n,h,N,C)
        y_diag = self.ssd_diag(scores, xh)                                     # (b,n,h,C,C) @ (b,n,h,C,P)
        decay = torch.exp(cum[..., -1:] - cum).permute(0, 2, 1, 3)[..., None]           # (b, n, h, C, 1)
        states = self.ssd_states(xh.transpose(-1, -2), bh * decay)            # (b,n,h,P,C) @ (b,n,h,C,N)
        prev = state[:, None].to(states) if state is not None else torch.zeros_like(states[:, :1])
        states = torch.cat([prev, states], dim=1)                                        # (b, n+1, h, P, N)
        nz = states.shape[1]
        chunk_decay = torch.exp(segment_sum(F.pad(cum[..., -1], (1, 0))))                # (b, h, n+1, n+1)
        flat = states.permute(0, 2, 1, 3, 4).reshape(b, h, nz, p * m.state)
        passed = self.ssd_pass(chunk_decay, flat)                              # (b,h,n+1,n+1) @ (b,h,n+1,P*N)
        passed = passed.reshape(b, h, nz, p, m.state).permute(0, 2, 1, 3, 4)            # (b, n+1, h, P, N)
        starts, final = passed[:, :-1], passed[:, -1]
        y_off = self.ssd_out(ch, starts.transpose(-1, -2))                     # (b,n,h,C,N) @ (b,n,h,N,P)
        y_off = y_off * torch.exp(cum).permute(0, 2, 1, 3)[..., None]
        y = (y_diag + y_off).permute(0, 1, 3, 2, 4).reshape(b, -1, h, p) + d_residual
        return y[:, :q_len], final

    def _recurrent(self, xs: Tensor, dt: Tensor, a: Tensor, bm: Tensor, cm: Tensor,
                   state: Tensor | None) -> tuple[Tensor, Tensor]:
        """transformers' ``mamba2_selective_state_update``, one token at a time."""
        m = self.m
        b, q_len, h, p = xs.shape
        r = h // m.groups
        dt = F.softplus(dt + self.dt_bias.to(dt.dtype))                                  # (b, L, h)
        bh = bm.repeat_interleave(r, dim=2)                                              # (b, L, h, N)
        ch = cm.repeat_interleave(r, dim=2)
        s = state if state is not None else torch.zeros(b, h, p, m.state, dtype=torch.float32, device=xs.device)
        if xs.device.type == "meta":
            # NOTE: counting only (no values): the L steps' products at once, same shapes and MACs
            dtx = dt.float()[..., None, None]
            states = s[:, None] * torch.exp(dtx * a[:, None, None]) + dtx * bh[..., None, :] * xs[..., None]
            ys = self.ssm_out(states.to(ch.dtype), ch[..., None]).squeeze(-1)  # (b,L,h,P,N) @ (b,L,h,N,1)
            return ys + xs * self.D[:, None], states[:, -1].float()
        outs = []
        for i in range(q_len):
            dti = dt[:, i].float()[..., None, None]                                      # (b, h, 1, 1)
            s = s * torch.exp(dti * a[:, None, None]) + dti * bh[:, i, :, None, :] * xs[:, i, ..., None]
            yi = self.ssm_out(s.to(ch.dtype).reshape(b * h, p, m.state),
                              ch[:, i].reshape(b * h, m.state, 1)).view(b, h, p)        # (b*h, P, N) @ (b*h, N, 1)
            outs.append(yi + xs[:, i] * self.D[:, None])
        return torch.stack(outs, dim=1), s


def build(spec: AttnSpec, device: str | torch.device = "cpu", form: str | None = None) -> Mamba2Mixer:
    """The layer in eval mode, seeded with ``spec.seed`` on a real device; uninitialised on meta."""
    def init(module: Mamba2Mixer) -> None:
        k = module.m.kernel
        module.conv1d.weight.uniform_(-k ** -0.5, k ** -0.5)  # nn.Conv1d's default bound
        module.A_log.copy_(torch.arange(1, module.m.heads + 1, dtype=torch.float32).log())  # as transformers
        module.dt_bias.uniform_(-1.0, 1.0)
        module.norm.weight.uniform_(0.5, 1.5)  # NOTE: not all ones, so a lost norm weight shows

    return build_seeded(lambda: Mamba2Mixer(spec, form), spec, device, init)


def make_args(spec: AttnSpec, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
              ) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
    """``(x,)`` and, with ``--cache``, the states a cache holds after N tokens: ``ssm_state`` (B, H, P, N)
    float32 and ``conv_state`` (B, I + 2*G*N, K)."""
    m = mamba2_sizes(spec)
    meta = torch.device(device).type == "meta"
    gen = torch.Generator().manual_seed(spec.seed)

    def rand(*shape: int, dt: torch.dtype = dtype) -> Tensor:
        if meta:
            return torch.empty(shape, device="meta", dtype=dt)
        return (torch.randn(shape, generator=gen, dtype=torch.float32) * 0.5).to(device=device, dtype=dt)

    kwargs: dict[str, Tensor] = {}
    x = rand(spec.batch, spec.seq, spec.dim)
    if spec.cache:
        kwargs["ssm_state"] = rand(spec.batch, m.heads, m.head_dim, m.state, dt=torch.float32)
        kwargs["conv_state"] = rand(spec.batch, m.conv_dim, m.kernel)
    return (x,), kwargs
