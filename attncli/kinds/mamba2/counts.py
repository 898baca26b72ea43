"""A Mamba2 layer counted as transformers 5.25 runs it on its torch path: stages, dense and effective
MACs, parameters and the state. Nothing here imports torch.

One layer, B sequences, L new tokens (after N cached ones), sizes of
:class:`attncli.kinds.mamba2.sizes.Mamba2Sizes` (``NemotronHMamba2Mixer``):

- ``in_proj`` E x (2*I + 2*G*N + H): the gate z, x, B, C and the step dt;
- ``conv``: the depthwise causal conv over the I + 2*G*N channels of x, B and C, K multiply-adds per
  output; ``causal_conv1d_fn`` pads K - 1 on both sides (L + K - 1 outputs, the first L kept); after a
  state the cache prepends its K inputs (L + 2K - 1 outputs), and a decode step's
  ``causal_conv1d_update`` convolves the K cached inputs and the token unpadded (2 outputs);
- the SSD scan, in one of two forms:

  - **chunked** (``mamba2_chunk_scan``, L padded to LP, a multiple of C; n = LP / C chunks; B and C
    repeated to the H heads): ``ssd_cb`` C B^T within each chunk (einsum ``bclhn,bcshn->bclsh``:
    B*H*LP*C*N), ``ssd_diag`` the masked scores times x (``bclsh,bcshp->bclhp``: B*H*LP*C*P),
    ``ssd_states`` each chunk's state B^T x (``bclhn,bclhp->bchpn``: B*H*LP*P*N), ``ssd_pass`` the
    inter-chunk recurrence as one dense product over the n + 1 chunk states, the cached state first
    (``bzch,bzhpn->bchpn``: B*H*(n+1)^2*P*N), ``ssd_out`` C times each chunk's start state
    (``bclhn,bchpn->bclhp``: B*H*LP*P*N);
  - **recurrent** (``mamba2_selective_state_update``, a decode step): per token the state's update
    state * exp(dt A) + dt x B^T is elementwise (no multiply-add of a matmul: not a stage), and
    ``ssm_out`` reads it with C (``torch.bmm``: B*H*P*N).

- ``norm`` (``NemotronHRMSNormGated``, per group of I / G): elementwise, not a stage;
- ``out_proj`` I x E.

Effective (only what the causal masks leave): ``ssd_cb`` and ``ssd_diag`` the C(C+1)/2 pairs of each
chunk's lower triangle (``segment_sum`` sets the rest to -inf before exp), ``ssd_pass`` the (n+1)(n+2)/2
pairs of the chunk states (the same mask); every other stage as dense.

The state (transformers' ``LinearAttentionLayer``): the SSM state (B, H, P, N) in float32 (the chunked
scan computes in float32 and the cache keeps its dtype) and the conv state, the last K inputs
(B, I + 2*G*N, K) at the layer's dtype; constant in the context length.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.kinds.mamba2.sizes import Mamba2Sizes, mamba2_sizes

if TYPE_CHECKING:
    from attncli.spec import AttnSpec

STATE_BYTES = 4
"""The SSM state's bytes per element in transformers' cache: float32."""

SCAN_FORMS: dict[str, tuple[str, ...]] = {
    "chunked": ("ssd_cb", "ssd_diag", "ssd_states", "ssd_pass", "ssd_out"),
    "recurrent": ("ssm_out",),
}
"""The scan's stages in each form, in the order they run."""


def stages(spec: AttnSpec) -> tuple[str, ...]:
    return ("in_proj", "conv", *SCAN_FORMS[spec.form or "chunked"], "out_proj")


def padded_length(spec: AttnSpec) -> int:
    """LP: L rounded up to a multiple of the chunk C, as ``mamba2_chunk_scan`` pads it."""
    c = mamba2_sizes(spec).chunk
    return -(-spec.seq // c) * c


def chunks(spec: AttnSpec) -> int:
    """n: the chunks of the padded sequence."""
    return padded_length(spec) // mamba2_sizes(spec).chunk


def conv_outputs(spec: AttnSpec) -> tuple[int, str]:
    """Outputs per channel transformers' torch conv computes, and the expression (module docstring)."""
    k, q_len = mamba2_sizes(spec).kernel, spec.seq
    if not spec.cache:
        return q_len + k - 1, "(L+K-1)"
    if q_len == 1:
        return 2, "2"
    return q_len + 2 * k - 1, "(L+2K-1)"


def dense(spec: AttnSpec) -> dict[str, int]:
    """Dense MACs per stage of ``spec``'s form."""
    m: Mamba2Sizes = mamba2_sizes(spec)
    b, q_len, e, h, p, n = spec.batch, spec.seq, spec.dim, m.heads, m.head_dim, m.state
    out = {"in_proj": b * q_len * e * m.in_proj,                          # (B*L, E) @ (E, 2I + 2GN + H)
           "conv": b * m.conv_dim * m.kernel * conv_outputs(spec)[0]}     # depthwise, K per output
    if spec.form == "recurrent":
        out["ssm_out"] = b * h * q_len * p * n                            # L x (B*H, P, N) @ (B*H, N, 1)
    else:
        lp, c, nc = padded_length(spec), m.chunk, chunks(spec)
        out["ssd_cb"] = b * h * lp * c * n                                # bclhn,bcshn->bclsh
        out["ssd_diag"] = b * h * lp * c * p                              # bclsh,bcshp->bclhp
        out["ssd_states"] = b * h * lp * p * n                            # bclhn,bclhp->bchpn
        out["ssd_pass"] = b * h * (nc + 1) ** 2 * p * n                   # bzch,bzhpn->bchpn
        out["ssd_out"] = b * h * lp * p * n                               # bclhn,bchpn->bclhp
    out["out_proj"] = b * q_len * m.inner * e if spec.out_proj else 0    # (B*L, I) @ (I, E)
    return out


def effective(spec: AttnSpec, by_stage: dict[str, int]) -> dict[str, int]:
    """``by_stage`` with the masked products charged their lower triangles only (module docstring)."""
    out = dict(by_stage)
    if spec.form != "chunked":
        return out
    m, nc = mamba2_sizes(spec), chunks(spec)
    b, h, c = spec.batch, m.heads, m.chunk
    pairs = b * h * nc * c * (c + 1) // 2
    if "ssd_cb" in out:
        out["ssd_cb"] = pairs * m.state
        out["ssd_diag"] = pairs * m.head_dim
        out["ssd_pass"] = b * h * (nc + 1) * (nc + 2) // 2 * m.head_dim * m.state
    return out


def params(spec: AttnSpec) -> dict[str, int]:
    """Parameters by module as ``NemotronHMamba2Mixer`` holds them, and ``total``: ``in_proj`` (and its bias
    with ``use_bias``), ``conv1d`` (I + 2*G*N, 1, K) and its bias, ``dt_bias``, ``A_log`` and ``D`` H each,
    the gated norm's weight I, ``out_proj`` (and its bias)."""
    m = mamba2_sizes(spec)
    out = {"in_proj": m.dim * m.in_proj + (m.in_proj if m.proj_bias else 0),
           "conv1d": m.conv_dim * m.kernel + (m.conv_dim if m.conv_bias else 0),
           "dt_bias": m.heads, "A_log": m.heads, "D": m.heads, "norm": m.inner}
    if spec.out_proj:
        out["out_proj"] = m.inner * m.dim + (m.dim if m.proj_bias else 0)
    out["total"] = sum(out.values())
    return out


def state_bytes(spec: AttnSpec, bytes_per_element: int) -> dict[str, int]:
    """What transformers' cache keeps per layer after a step: ``ssm`` (B, H, P, N) in float32 and
    ``conv`` (B, I + 2*G*N, K) at the layer's dtype."""
    m = mamba2_sizes(spec)
    return {"ssm": spec.batch * m.heads * m.head_dim * m.state * STATE_BYTES,
            "conv": spec.batch * m.conv_dim * m.kernel * bytes_per_element}
