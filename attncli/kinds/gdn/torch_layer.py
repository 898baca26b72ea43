"""attncli's own Gated DeltaNet layer (Qwen3-Next's linear attention), in both forms, for counting and checking.

:class:`GatedDeltaNet` computes what transformers' ``Qwen3NextGatedDeltaNet`` computes on its
torch path (``torch_chunk_gated_delta_rule``, ``torch_recurrent_gated_delta_rule``,
``causal_conv1d_fn`` / ``causal_conv1d_update``, ``Qwen3NextRMSNormGated``), with the same
submodule and parameter names, so ``load_state_dict`` moves weights between them (the tests do).

What differs is only where each matmul runs: every matmul of the recurrence sits in its own
parameter-free :class:`MatMul` submodule (``delta_kk``, ``delta_qk``, ``delta_read``,
``delta_out``, ``delta_av``, ``delta_write``), so the counting engine names its stage by scope
(:data:`attncli.kinds.gdn.kind.SCOPE_STAGES`). The recurrent form's per-token products, which
transformers writes as broadcast multiplies and sums (no matmul, so FlopCounterMode sees 0),
are written here as the matmuls they are: ``k_t^T S``, ``k_t delta_t^T``, ``q_t^T S``, DK x DV
multiply-adds each. The depthwise causal convolution is a matmul of its sliding windows with
the kernel (``conv1d``), over exactly the outputs transformers' torch path computes (it pads
K - 1 on both sides and drops the tail). Everything else (l2norm, gates, decays, the gated
RMSNorm, the two triangular solves of the chunked form) is as transformers writes it.

On the meta device (where attncli counts: there are no values) the sequential loops are
issued at once: the recurrent form's L per-token products as one matmul per stage over a
(B, HV, L, ...) batch, the chunked form's n per-chunk products over (B, HV, n, ...). Every
product has the shape it has in the loop, so fvcore and FlopCounterMode count the same MACs
per stage, and the trace takes constant time (the loop traced token by token took 154 s
for 4,096 tokens here). On a real device the loops run step by step, as transformers runs
them; the tests check that both paths count the same per stage and that the loops give
transformers' output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attncli.kinds.gdn.sizes import GdnSizes, gdn_sizes
from attncli.kinds.seeded import build_seeded
from attncli.spec import AttnSpec

RMS_EPS = 1e-6
"""Qwen3-Next's ``rms_norm_eps``."""


class MatMul(nn.Module):
    """One matmul of the recurrence, ``a @ b``; no parameters (its name is its stage)."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.matmul(a, b)


class CausalConv1d(nn.Module):
    """The depthwise causal convolution over the q, k and v channels, weight (C, 1, K) as
    ``nn.Conv1d`` holds it (no bias, as in Qwen3-Next), then SiLU.

    ``forward(x, state) -> (out, new_state)``: ``x`` (B, C, L); ``state`` (B, C, K) the last K
    inputs as transformers' cache keeps them, or None. The outputs computed are transformers':
    without a state ``causal_conv1d_fn`` pads K - 1 on both sides (L + K - 1 outputs, the first
    L kept); with one and L = 1, ``causal_conv1d_update`` convolves state + token unpadded (2
    outputs, the last kept); with one and L > 1, ``causal_conv1d_fn`` on state + tokens (L + 2K - 1
    outputs, the L after the K state positions kept).
    """

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel))

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
        out = torch.matmul(windows, self.weight.transpose(1, 2))  # (B, C, P, K) @ (C, K, 1) -> (B, C, P, 1)
        out = F.silu(out.squeeze(-1)[..., keep])
        return out.to(x.dtype), full[..., -k:]


class RMSNormGated(nn.Module):
    """transformers' ``Qwen3NextRMSNormGated``: rmsnorm(x) * weight * silu(gate) (elementwise)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x: Tensor, gate: Tensor) -> Tensor:
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + RMS_EPS)
        h = self.weight * h.to(dtype)
        return (h * F.silu(gate.to(torch.float32))).to(dtype)


def l2norm(x: Tensor) -> Tensor:
    """transformers' (and fla's) l2norm over the last dimension."""
    return x * torch.rsqrt((x * x).sum(dim=-1, keepdim=True) + 1e-6)


class GatedDeltaNet(nn.Module):
    """Gated DeltaNet with transformers' names; ``form`` is ``recurrent`` or ``chunked``.

    ``forward(x, recurrent_state=None, conv_state=None) -> (output, recurrent_state, conv_state)``:
    the output (B, L, E) and the new states as transformers' cache keeps them, the recurrent
    state (B, HV, DK, DV) in float32 and the conv state (B, 2*HK*DK + HV*DV, K).
    """

    delta_kk: MatMul
    delta_qk: MatMul
    delta_av: MatMul

    def __init__(self, spec: AttnSpec, form: str | None = None) -> None:
        super().__init__()
        m = gdn_sizes(spec)
        self.m: GdnSizes = m
        self.form = form or spec.form or "chunked"
        self.chunk = m.chunk
        self.use_out_proj = spec.out_proj
        self.in_proj_qkvz = nn.Linear(m.dim, m.qkvz, bias=False)
        self.in_proj_ba = nn.Linear(m.dim, 2 * m.hv, bias=False)
        self.conv1d = CausalConv1d(m.conv_dim, m.kernel)
        self.dt_bias = nn.Parameter(torch.ones(m.hv))
        self.A_log = nn.Parameter(torch.zeros(m.hv))
        self.norm = RMSNormGated(m.dv)
        if spec.out_proj:
            self.out_proj = nn.Linear(m.value_dim, m.dim, bias=False)
        if self.form == "chunked":
            self.delta_kk, self.delta_qk = MatMul(), MatMul()
        self.delta_read, self.delta_out = MatMul(), MatMul()
        if self.form == "chunked":
            self.delta_av = MatMul()
        self.delta_write = MatMul()

    def forward(self, x: Tensor, recurrent_state: Tensor | None = None, conv_state: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:
        """The output and the new recurrent and conv states.

        NOTE: the states are returned so a trace keeps the last chunk's state write: transformers
        computes it (and keeps it with a cache); a trace of the output alone would drop it as dead.
        """
        m = self.m
        b, q_len, _ = x.shape
        r = m.hv // m.hk
        # transformers' fix_query_key_value_ordering: grouped per key head
        qkvz = self.in_proj_qkvz(x).view(b, q_len, m.hk, 2 * m.dk + 2 * r * m.dv)
        ba = self.in_proj_ba(x).view(b, q_len, m.hk, 2 * r)
        q, k, v, z = torch.split(qkvz, [m.dk, m.dk, r * m.dv, r * m.dv], dim=3)
        beta_raw, a = torch.split(ba, [r, r], dim=3)
        z = z.reshape(b, q_len, m.hv, m.dv)
        mixed = torch.cat((q.reshape(b, q_len, -1), k.reshape(b, q_len, -1), v.reshape(b, q_len, -1)), dim=-1)
        mixed, new_conv = self.conv1d(mixed.transpose(1, 2), conv_state)
        q, k, v = torch.split(mixed.transpose(1, 2), [m.key_dim, m.key_dim, m.value_dim], dim=-1)
        q = q.reshape(b, q_len, m.hk, m.dk)
        k = k.reshape(b, q_len, m.hk, m.dk)
        v = v.reshape(b, q_len, m.hv, m.dv)
        beta = beta_raw.reshape(b, q_len, m.hv).sigmoid()
        g = -self.A_log.float().exp() * F.softplus(a.reshape(b, q_len, m.hv).float() + self.dt_bias)
        rule = self._chunked if self.form == "chunked" else self._recurrent
        core, state = rule(q, k, v, g, beta, recurrent_state)
        core = self.norm(core.reshape(-1, m.dv), z.reshape(-1, m.dv)).reshape(b, q_len, m.value_dim)
        out: Tensor = self.out_proj(core) if self.use_out_proj else core
        return out, state, new_conv

    def _heads(self, q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor) -> list[Tensor]:
        """Query and key heads repeated to the value heads, all (B, HV, L, ...) in float32, q and k l2-normed."""
        r = self.m.hv // self.m.hk
        if r > 1:
            q, k = q.repeat_interleave(r, dim=2), k.repeat_interleave(r, dim=2)
        q, k, v, beta, g = (t.transpose(1, 2).to(torch.float32, memory_format=torch.contiguous_format)
                            for t in (q, k, v, beta, g))
        return [l2norm(q), l2norm(k), v, g, beta]

    def _recurrent(self, q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor,
                   state: Tensor | None) -> tuple[Tensor, Tensor]:
        """transformers' ``torch_recurrent_gated_delta_rule``, one token at a time."""
        dtype, q_len = q.dtype, q.shape[1]
        q, k, v, g, beta = self._heads(q, k, v, g, beta)
        q = q / (q.shape[-1] ** 0.5)
        b, h, _, dk = k.shape
        s = torch.zeros(b, h, dk, v.shape[-1], dtype=v.dtype, device=v.device) if state is None else state.to(v)
        if q.device.type == "meta":
            # NOTE: counting only (no values): the L steps' products at once, same shapes and MACs (module docstring)
            states = (s.unsqueeze(2) * g.exp()[..., None, None])                   # (B, HV, L, DK, DV)
            kv_mem = self.delta_read(k.unsqueeze(-2), states)   # (B, HV, L, 1, DK) @ (B, HV, L, DK, DV) -> (.., 1, DV)
            delta = (v.unsqueeze(-2) - kv_mem) * beta[..., None, None]
            states = states + self.delta_write(k.unsqueeze(-1), delta)  # (B, HV, L, DK, 1) @ (B, HV, L, 1, DV)
            core = self.delta_out(q.unsqueeze(-2), states).squeeze(-2)  # (B, HV, L, 1, DK) @ (B, HV, L, DK, DV)
            return core.transpose(1, 2).contiguous().to(dtype), states[:, :, -1]
        outs = []
        for i in range(q_len):
            q_t, k_t, v_t = q[:, :, i:i + 1], k[:, :, i:i + 1], v[:, :, i:i + 1]  # (B, HV, 1, DK|DV)
            s = s * g[:, :, i].exp()[..., None, None]
            kv_mem = self.delta_read(k_t, s)                   # (B, HV, 1, DK) @ (B, HV, DK, DV) -> (B, HV, 1, DV)
            delta = (v_t - kv_mem) * beta[:, :, i, None, None]
            s = s + self.delta_write(k_t.transpose(-1, -2), delta)  # (B, HV, DK, 1) @ (B, HV, 1, DV) -> (B, HV, DK, DV)
            outs.append(self.delta_out(q_t, s))                # (B, HV, 1, DK) @ (B, HV, DK, DV) -> (B, HV, 1, DV)
        core = torch.cat(outs, dim=2)
        return core.transpose(1, 2).contiguous().to(dtype), s

    def _chunked(self, q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor,
                 state: Tensor | None) -> tuple[Tensor, Tensor]:
        """transformers' ``torch_chunk_gated_delta_rule`` with chunks of C, L padded to a multiple of C."""
        dtype, q_len, c = q.dtype, q.shape[1], self.chunk
        q, k, v, g, beta = self._heads(q, k, v, g, beta)
        q = q * q.shape[-1] ** -0.5
        pad = (c - q_len % c) % c
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        beta, g = (F.pad(t, (0, pad)) for t in (beta, g))
        b, h, lp, dk = k.shape
        dv, n = v.shape[-1], lp // c
        v_beta, k_beta = v * beta.unsqueeze(-1), k * beta.unsqueeze(-1)
        q, k, k_beta, v_beta = (t.reshape(b, h, n, c, t.shape[-1]) for t in (q, k, k_beta, v_beta))
        cum = g.reshape(b, h, n, c).cumsum(dim=3)
        upper = torch.ones(c, c, dtype=torch.bool, device=q.device).triu(1)
        pairwise = (cum.unsqueeze(4) - cum.unsqueeze(3)).masked_fill(upper, float("-inf")).exp()
        ut = self.delta_kk(k_beta, k.transpose(-1, -2)) * pairwise    # (B, HV, n, C, DK) @ (.., DK, C) -> (.., C, C)
        intra = self.delta_qk(q, k.transpose(-1, -2)) * pairwise      # (B, HV, n, C, DK) @ (.., DK, C) -> (.., C, C)
        decayed_k_beta = k_beta * cum.exp().unsqueeze(-1)
        # NOTE: the triangular solves multiply-add C(C-1)/2 per column; neither fvcore nor FlopCounterMode counts them
        new_values = torch.linalg.solve_triangular(ut, v_beta, upper=False, unitriangular=True)
        k_cumdecay = torch.linalg.solve_triangular(ut, decayed_k_beta, upper=False, unitriangular=True)
        s = torch.zeros(b, h, dk, dv, dtype=new_values.dtype, device=new_values.device) if state is None \
            else state.to(new_values)
        q = q * cum.exp().unsqueeze(-1)
        k = k * (cum[..., -1:] - cum).exp().unsqueeze(-1)
        chunk_decay = cum[..., -1].exp()[..., None, None]
        if q.device.type == "meta":
            # NOTE: counting only (no values): the n chunks' products at once, same shapes and MACs (module docstring)
            states = s.unsqueeze(2) * chunk_decay                                  # (B, HV, n, DK, DV)
            v_new = new_values - self.delta_read(k_cumdecay, states)  # (B, HV, n, C, DK) @ (B, HV, n, DK, DV)
            inter = self.delta_out(q, states)                         # (B, HV, n, C, DK) @ (B, HV, n, DK, DV)
            core = (inter + self.delta_av(intra, v_new)).reshape(b, h, lp, dv)[:, :, :q_len]  # (.., C, C) @ (.., C, DV)
            states = states + self.delta_write(k.transpose(-1, -2), v_new)  # (B, HV, n, DK, C) @ (B, HV, n, C, DV)
            return core.transpose(1, 2).to(dtype, memory_format=torch.contiguous_format), states[:, :, -1]
        outs = []
        for i in range(n):
            v_new = new_values[:, :, i] - self.delta_read(k_cumdecay[:, :, i], s)  # (B, HV, C, DK) @ (B, HV, DK, DV)
            inter = self.delta_out(q[:, :, i], s)                                  # (B, HV, C, DK) @ (B, HV, DK, DV)
            outs.append(inter + self.delta_av(intra[:, :, i], v_new))              # (B, HV, C, C) @ (B, HV, C, DV)
            write = self.delta_write(k[:, :, i].transpose(-1, -2), v_new)             # (B, HV, DK, C) @ (B, HV, C, DV)
            s = s * chunk_decay[:, :, i] + write
        core = torch.stack(outs, dim=2).reshape(b, h, lp, dv)[:, :, :q_len]
        return core.transpose(1, 2).to(dtype, memory_format=torch.contiguous_format), s


def build(spec: AttnSpec, device: str | torch.device = "cpu", form: str | None = None) -> GatedDeltaNet:
    """The layer in eval mode, seeded with ``spec.seed`` on a real device (:func:`build_seeded`);
    uninitialised on meta."""
    def init(module: GatedDeltaNet) -> None:
        k = module.m.kernel
        module.conv1d.weight.uniform_(-k ** -0.5, k ** -0.5)  # nn.Conv1d's default bound
        module.A_log.copy_(torch.empty(module.m.hv).uniform_(0.01, 16).log())  # as transformers' __init__
        module.norm.weight.uniform_(0.5, 1.5)  # NOTE: not all ones, so a lost norm weight shows

    return build_seeded(lambda: GatedDeltaNet(spec, form), spec, device, init)


def make_args(spec: AttnSpec, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
              ) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
    """The arguments of one forward call, seeded with ``spec.seed``: ``(x,)`` and, with ``--cache``,
    the states a cache holds after N tokens: ``recurrent_state`` (B, HV, DK, DV, float32 as
    transformers keeps it) and ``conv_state`` (B, 2*HK*DK + HV*DV, K)."""
    m = gdn_sizes(spec)
    meta = torch.device(device).type == "meta"
    gen = torch.Generator().manual_seed(spec.seed)

    def rand(*shape: int, dt: torch.dtype = dtype) -> Tensor:
        if meta:
            return torch.empty(shape, device="meta", dtype=dt)
        return (torch.randn(shape, generator=gen, dtype=torch.float32) * 0.5).to(device=device, dtype=dt)

    x = rand(spec.batch, spec.seq, spec.dim)
    kwargs: dict[str, Tensor] = {}
    if spec.cache:
        kwargs["recurrent_state"] = rand(spec.batch, m.hv, m.dk, m.dv, dt=torch.float32)
        kwargs["conv_state"] = rand(spec.batch, m.conv_dim, m.kernel)
    return (x,), kwargs
