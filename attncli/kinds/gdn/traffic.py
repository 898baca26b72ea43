"""What a Gated DeltaNet layer holds and moves: its memory model and its roofline traffic.

Split from :mod:`attncli.kinds.gdn.kind` (which re-exports :func:`memory` and
:func:`kernel_elements` as the kind's protocol names). No torch at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attncli.kinds.gdn.kind import RECURRENCE_FORMS, STATE_BYTES, kv_cache_bytes, padded_length
from attncli.kinds.gdn.sizes import gdn_sizes
from attncli.spec import SpecError

if TYPE_CHECKING:
    from attncli.layer.formulas import Memory
    from attncli.spec import AttnSpec


def memory(spec: AttnSpec, dtype: str) -> Memory:
    """No (L, S) attention matrix: the chunked form's (C, C) intra-chunk attention per chunk
    (float32) stands in its column; the main activations; the state."""
    from attncli.choices import DTYPE_BYTES
    from attncli.layer.formulas import Memory

    if dtype not in DTYPE_BYTES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}; choose from {', '.join(DTYPE_BYTES)}")
    n, f32 = DTYPE_BYTES[dtype], STATE_BYTES
    m = gdn_sizes(spec)
    b, q_len, hv = spec.batch, spec.seq, m.hv
    acts = {"qkvz": b * q_len * m.qkvz * n, "ba": b * q_len * 2 * hv * n, "conv_out": b * q_len * m.conv_dim * n}
    attn = 0
    if spec.form == "chunked":
        lp = padded_length(spec)
        attn = b * hv * lp * spec.gdn_chunk * f32
        acts.update(ut_system=attn, intra_chunk=attn, new_values=b * hv * lp * m.dv * f32,
                    k_cumdecay=b * hv * lp * m.dk * f32)
    acts.update(core=b * q_len * m.value_dim * n, gated=b * q_len * m.value_dim * n)
    if spec.out_proj:
        acts["output"] = b * q_len * spec.dim * n
    return Memory(dtype, n, attn, acts, kv_cache_bytes(spec, n))


def _linear(tokens: int, d_in: int, d_out: int) -> int:
    """Elements a bias-free linear layer moves: reads (tokens, d_in) and W, writes (tokens, d_out)."""
    return tokens * d_in + d_in * d_out + tokens * d_out


def kernel_elements(spec: AttnSpec, naive: bool, dense: dict[str, int],
                    effective: dict[str, int]) -> list[tuple[str, int, int]]:
    """The roofline's kernels. Fused (``naive`` False, as fla's kernels): one delta-rule kernel
    reads q, k (HK heads), v, g, beta and the state and writes the output and the state. Naive
    (transformers' torch path): every matmul of the recurrence reads its operands and writes its
    result, the state once per chunk (chunked) or per token (recurrent). Counts are elements;
    the recurrent state is float32 in transformers, so at 16-bit dtypes its bytes are twice this."""
    m = gdn_sizes(spec)
    b, q_len, hv, dk, dv = spec.batch, spec.seq, m.hv, m.dk, m.dv
    bl, state = b * q_len, b * hv * dk * dv
    conv_io = b * m.conv_dim * m.kernel if spec.cache else 0
    out = [("in_proj_qkvz", dense["in_proj_qkvz"], _linear(bl, m.dim, m.qkvz)),
           ("in_proj_ba", dense["in_proj_ba"], _linear(bl, m.dim, 2 * hv)),
           ("conv", dense["conv"], 2 * bl * m.conv_dim + m.conv_dim * m.kernel + 2 * conv_io)]
    delta = list(RECURRENCE_FORMS[spec.form or "chunked"])
    if not naive:
        io = bl * (2 * m.key_dim + 2 * m.value_dim + 2 * hv) + (2 if spec.cache else 1) * state
        out.append(("delta_rule", sum(dense[st] for st in delta), io))
    elif spec.form == "recurrent":
        rows = b * hv * q_len
        out += [("delta_read", dense["delta_read"], rows * (dk + dv) + rows * dk * dv),
                ("delta_write", dense["delta_write"], rows * (dk + dv) + 2 * rows * dk * dv),
                ("delta_out", dense["delta_out"], rows * (dk + dv) + rows * dk * dv)]
    else:
        c, rows = spec.gdn_chunk, b * hv * padded_length(spec)
        states = rows // c * dk * dv
        out += [("delta_kk", dense["delta_kk"], 2 * rows * dk + rows * c),
                ("delta_qk", dense["delta_qk"], 2 * rows * dk + rows * c),
                ("delta_solve", 0, rows * c + 2 * rows * (dk + dv)),
                ("delta_read", dense["delta_read"], rows * dk + states + 2 * rows * dv),
                ("delta_out", dense["delta_out"], rows * dk + states + rows * dv),
                ("delta_av", dense["delta_av"], rows * c + 2 * rows * dv + rows * dv),
                ("delta_write", dense["delta_write"], rows * (dk + dv) + 2 * states)]
    out.append(("norm_gate", 0, 3 * bl * m.value_dim))
    if spec.out_proj:
        out.append(("out_proj", dense["out_proj"], _linear(bl, m.value_dim, m.dim)))
    return out
