"""Kimi Delta Attention's dense MACs per stage, its parameters and the state transformers keeps.

Per token, transformers 5.25's ``KimiLinearDeltaAttention`` (its torch path) runs, with E ``hidden_size``,
H heads and D ``linear_head_dim`` (q, k and v alike), K the short convolution's kernel:

- ``qkv_proj``: ``q_proj``, ``k_proj``, ``v_proj``, E x H*D each, no bias;
- ``conv``: the depthwise causal convolution over the 3*H*D q, k, v channels (``conv1d``, no bias), then
  SiLU: K MACs per output; ``causal_conv1d_fn`` pads K - 1 on both sides (L + K - 1 outputs, the first L
  kept); after a state it convolves the K cached inputs too (L + 2K - 1), a decode step's
  ``causal_conv1d_update`` the K cached inputs and the token unpadded (2 outputs);
- ``f_proj``: the forget gate's ``f_a_proj`` E x D and ``f_b_proj`` D x H*D, then the per-channel log decay
  ``-exp(A_log) * softplus(f + dt_bias)`` (elementwise);
- ``b_proj``: E x H, beta = sigmoid;
- the delta rule, per head, over float32 (``use_qk_l2norm_in_kernel``: q and k l2-normed, q / sqrt(D)):

  - **recurrent** (``recurrent_kimi_delta_attention``, a decode step: a state and L = 1): per token, the
    state decayed per channel, ``delta_read`` k^T S, ``delta_write`` S + k delta^T, ``delta_out`` q^T S,
    D x D MACs each (written as broadcast products and sums: FlopCounterMode sees none of them);
  - **chunked** (``chunk_kimi_delta_attention``, anything else), L padded to LP, a multiple of C = 64, n
    = LP / C chunks: ``delta_kk`` the decayed K_beta K^T within each chunk (a (C, C, D) product summed
    over D), ``delta_inv`` the forward substitution that inverts it (row i: a (1, i) x (i, i) product,
    sum over i < C of i^2 = (C-1)C(2C-1)/6 MACs per chunk), ``delta_wy`` the inverse times V_beta and
    times the decayed K_beta (C x C x 2D), then per chunk ``delta_out`` (Q decayed) S, ``delta_qk`` the
    decayed Q K^T (again a (C, C, D) product summed over D), ``delta_read`` K_cumdecay S, ``delta_av``
    the intra-chunk attention times V_new, ``delta_write`` K_decayed^T V_new. FlopCounterMode sees only
    the matmuls: ``delta_wy``, ``delta_out``, ``delta_read``, ``delta_av``, ``delta_write``.

- ``g_proj``: the output gate's ``g_a_proj`` E x D and ``g_b_proj`` D x H*D;
- ``o_norm`` (``KimiLinearRMSNormGated``): rmsnorm(out) * weight * sigmoid(gate), per head (elementwise);
- ``o_proj`` H*D x E, no bias.

Uncounted, as fvcore and FlopCounterMode leave them: the l2norms, decays, gates and masks.

The state (transformers' ``LinearAttentionLayer``): the recurrent state (B, H, D, D) in float32 (the
chunked rule casts it, the cache keeps it) and the conv state, the last K conv inputs (B, 3*H*D, K) at the
layer's dtype; the same at any context length. Nothing here imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.kinds.kda.sizes import KdaSizes, kda_sizes

if TYPE_CHECKING:
    from attncli.spec import AttnSpec

STATE_BYTES = 4
"""The recurrent state's bytes per element: float32 in transformers' torch rules and cache."""

RECURRENCE: dict[str, tuple[str, ...]] = {
    "recurrent": ("delta_read", "delta_write", "delta_out"),
    "chunked": ("delta_kk", "delta_inv", "delta_wy", "delta_out", "delta_qk", "delta_read", "delta_av",
                "delta_write"),
}
"""The delta rule's stages in each form, in the order transformers runs them."""
BROADCAST: dict[str, frozenset[str]] = {
    "recurrent": frozenset(RECURRENCE["recurrent"]),
    "chunked": frozenset({"delta_kk", "delta_inv", "delta_qk"}),
}
"""The delta rule's products transformers writes as broadcast multiplies and sums, per form (FlopCounterMode
counts 0 for them in its module; attncli's layer writes them as the matmuls they are)."""


def stages(spec: AttnSpec) -> tuple[str, ...]:
    """The stages of ``spec``'s form, in the order they run."""
    out = ("qkv_proj", "conv", "f_proj", "b_proj", *RECURRENCE[spec.form or "chunked"], "g_proj")
    return (*out, "o_proj") if spec.out_proj else out


def padded_length(spec: AttnSpec) -> int:
    """LP: L rounded up to a multiple of the chunk C, as ``chunk_kimi_delta_attention`` pads it."""
    c = spec.gdn_chunk
    return -(-spec.seq // c) * c


def conv_outputs(spec: AttnSpec) -> tuple[int, str]:
    """The outputs per channel transformers' torch conv computes, and the expression (module docstring)."""
    k, q_len = kda_sizes(spec).kernel, spec.seq
    if not spec.cache:
        return q_len + k - 1, "(L+K-1)"
    if q_len == 1:
        return 2, "2"
    return q_len + 2 * k - 1, "(L+2K-1)"


def inverse_macs(c: int) -> int:
    """The forward substitution's multiply-adds per chunk and head: row i (1 <= i < C) is a (1, i) x (i, i)
    product, so the sum of i^2 over i < C."""
    return (c - 1) * c * (2 * c - 1) // 6


def closed_form(spec: AttnSpec) -> dict[str, int]:
    """Dense MACs per stage of ``spec``'s form (see the module docstring)."""
    m: KdaSizes = kda_sizes(spec)
    b, q_len, e, h, d = spec.batch, spec.seq, spec.dim, m.heads, m.head_dim
    low_rank = b * q_len * (e * d + d * m.inner)                 # (B*L, E) @ (E, D) then (B*L, D) @ (D, H*D)
    out = {"qkv_proj": 3 * b * q_len * e * m.inner,             # 3 x (B*L, E) @ (E, H*D)
           "conv": b * m.conv_dim * m.kernel * conv_outputs(spec)[0],  # (B, 3HD, P, K) @ (3HD, K, 1)
           "f_proj": low_rank,
           "b_proj": b * q_len * e * h}                          # (B*L, E) @ (E, H)
    if spec.form == "recurrent":
        per_token = b * h * q_len * d * d
        out.update(delta_read=per_token, delta_write=per_token, delta_out=per_token)  # L x (B, H, D, D) each
    else:
        lp, c = padded_length(spec), spec.gdn_chunk
        out.update(delta_kk=b * h * lp * c * d,                  # (B, H, n, C, C, D) summed over D
                   delta_inv=b * h * lp // c * inverse_macs(c),  # sum over i < C of (.., 1, i) @ (.., i, i)
                   delta_wy=2 * b * h * lp * c * d,              # (B, H, n, C, C) @ (B, H, n, C, D), twice
                   delta_out=b * h * lp * d * d,                 # n x (B, H, C, D) @ (B, H, D, D)
                   delta_qk=b * h * lp * c * d,                  # n x (B, H, C, C, D) summed over D
                   delta_read=b * h * lp * d * d,                # n x (B, H, C, D) @ (B, H, D, D)
                   delta_av=b * h * lp * c * d,                  # n x (B, H, C, C) @ (B, H, C, D)
                   delta_write=b * h * lp * d * d)               # n x (B, H, D, C) @ (B, H, C, D)
    out["g_proj"] = low_rank
    if spec.out_proj:
        out["o_proj"] = b * q_len * m.inner * e                  # (B*L, H*D) @ (H*D, E)
    return out


def params(spec: AttnSpec) -> dict[str, int]:
    """Parameters by module as transformers' ``KimiLinearDeltaAttention`` holds them, and ``total``: no
    biases; ``conv1d`` (3*H*D, 1, K); the forget gate's ``dt_bias`` H*D and ``A_log`` (1, 1, H, 1); the
    gated norm's weight D."""
    m = kda_sizes(spec)
    e, h, d, hd = m.dim, m.heads, m.head_dim, m.inner
    out = {"q_proj": e * hd, "k_proj": e * hd, "v_proj": e * hd, "conv1d": m.conv_dim * m.kernel,
           "forget_gate.f_a_proj": e * d, "forget_gate.f_b_proj": d * hd, "forget_gate.dt_bias": hd,
           "forget_gate.A_log": h, "b_proj": e * h, "g_a_proj": e * d, "g_b_proj": d * hd, "o_norm": d}
    if spec.out_proj:
        out["o_proj"] = hd * e
    out["total"] = sum(out.values())
    return out


def state_bytes(spec: AttnSpec, bytes_per_element: int) -> dict[str, int]:
    """What transformers' cache (``LinearAttentionLayer``) keeps per layer after a step: ``recurrent``
    (B, H, D, D) in float32 and ``conv`` (B, 3*H*D, K) at the layer's dtype."""
    m = kda_sizes(spec)
    return {"recurrent": spec.batch * m.heads * m.head_dim * m.head_dim * STATE_BYTES,
            "conv": spec.batch * m.conv_dim * m.kernel * bytes_per_element}
