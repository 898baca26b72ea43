"""What a Kimi Delta Attention layer holds and moves: its memory model and its roofline traffic.

Split from :mod:`attncli.kinds.kda.kind` (which re-exports :func:`memory` and :func:`kernel_elements`
as the kind's protocol names). No torch at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.kinds.kda.counts import RECURRENCE, STATE_BYTES, padded_length, state_bytes
from attncli.kinds.kda.sizes import kda_sizes
from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.layer.formulas import Memory
    from attncli.spec import AttnSpec


def memory(spec: AttnSpec, dtype: str) -> Memory:
    """No (L, S) attention matrix: the chunked form's (C, C) intra-chunk attention per chunk (float32)
    stands in its column; the main activations (the decayed (C, C, D) products included); the state."""
    from attncli.choices import DTYPE_BYTES
    from attncli.layer.formulas import Memory

    if dtype not in DTYPE_BYTES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}; choose from {', '.join(DTYPE_BYTES)}")
    n, f32 = DTYPE_BYTES[dtype], STATE_BYTES
    m = kda_sizes(spec)
    b, q_len, h, d = spec.batch, spec.seq, m.heads, m.head_dim
    acts = {"qkv": b * q_len * m.conv_dim * n, "conv_out": b * q_len * m.conv_dim * n,
            "decay": b * q_len * m.inner * f32, "beta": b * q_len * h * n}
    attn = 0
    if spec.form == "chunked":
        lp, c = padded_length(spec), m.chunk
        attn = b * h * lp * c * f32
        acts.update(decayed_keys=b * h * lp * c * d * f32, inverse=attn, intra_chunk=attn,
                    values=b * h * lp * d * f32, k_cumdecay=b * h * lp * d * f32)
    acts.update(core=b * q_len * m.inner * n, gate=b * q_len * m.inner * n, gated=b * q_len * m.inner * n)
    if spec.out_proj:
        acts["output"] = b * q_len * spec.dim * n
    return Memory(dtype, n, attn, acts, sum(state_bytes(spec, n).values()))


def _linear(tokens: int, d_in: int, d_out: int) -> int:
    """Elements a bias-free linear layer moves: reads (tokens, d_in) and W, writes (tokens, d_out)."""
    return tokens * d_in + d_in * d_out + tokens * d_out


def kernel_elements(spec: AttnSpec, naive: bool, dense: dict[str, int],
                    effective: dict[str, int]) -> list[tuple[str, int, int]]:
    """The roofline's kernels. Fused (``naive`` False, as fla's KDA kernels): one delta-rule kernel reads
    q, k, v, the per-channel decay, beta and the state and writes the output and the state. Naive
    (transformers' torch path): every product of the recurrence reads its operands and writes its result,
    the state once per chunk (chunked) or per token (recurrent). Counts are elements; the state is float32
    in transformers, so at 16-bit dtypes its bytes are twice this."""
    m = kda_sizes(spec)
    b, q_len, h, d, e = spec.batch, spec.seq, m.heads, m.head_dim, m.dim
    bl, state, hd = b * q_len, b * h * d * d, m.inner
    conv_io = b * m.conv_dim * m.kernel if spec.cache else 0
    out = [("qkv_proj", dense["qkv_proj"], _linear(bl, e, 3 * hd)),
           ("conv", dense["conv"], 2 * bl * m.conv_dim + m.conv_dim * m.kernel + 2 * conv_io),
           ("f_proj", dense["f_proj"], _linear(bl, e, d) + _linear(bl, d, hd)),
           ("b_proj", dense["b_proj"], _linear(bl, e, h))]
    delta = RECURRENCE[spec.form or "chunked"]
    if not naive:
        io = bl * (5 * hd + h) + (2 if spec.cache else 1) * state
        out.append(("delta_rule", sum(dense[st] for st in delta), io))
    elif spec.form == "recurrent":
        rows = b * h * q_len
        out += [("delta_read", dense["delta_read"], 2 * rows * d + rows * d * d),
                ("delta_write", dense["delta_write"], 2 * rows * d + 2 * rows * d * d),
                ("delta_out", dense["delta_out"], 2 * rows * d + rows * d * d)]
    else:
        c, rows = m.chunk, b * h * padded_length(spec)
        states = rows // c * d * d
        out += [("delta_kk", dense["delta_kk"], rows * d + rows * c * d + rows * c),
                ("delta_inv", dense["delta_inv"], 2 * rows * c),
                ("delta_wy", dense["delta_wy"], rows * c + 4 * rows * d),
                ("delta_out", dense["delta_out"], rows * d + states + rows * d),
                ("delta_qk", dense["delta_qk"], rows * d + rows * c * d + rows * c),
                ("delta_read", dense["delta_read"], rows * d + states + 2 * rows * d),
                ("delta_av", dense["delta_av"], rows * c + 2 * rows * d),
                ("delta_write", dense["delta_write"], 2 * rows * d + 2 * states)]
    out += [("g_proj", dense["g_proj"], _linear(bl, e, d) + _linear(bl, d, hd)),
            ("norm_gate", 0, 3 * bl * hd)]
    if spec.out_proj:
        out.append(("o_proj", dense["o_proj"], _linear(bl, hd, e)))
    return out
