"""The elements each kernel of the standard layer moves to or from device memory, for the roofline
(:mod:`attncli.analyses.roofline` turns them into bytes and times). Fused (FlashAttention style): one
``attention`` kernel reads Q, K and V (the keys in reach) and writes the context; naive: ``qk``,
``softmax`` and ``av`` each read their operands and write their result. Pure Python over integers."""

from __future__ import annotations

from dataclasses import dataclass

from attncli.choices import DTYPE_BYTES
from attncli.spec import AttnSpec, SpecError


@dataclass(frozen=True)
class LayerDims:
    """The sizes a byte count needs, as plain integers (independent of ``AttnSpec``).

    ``heads`` H query heads and ``kv_heads`` G key/value heads of ``head_dim`` d; ``dim`` E is
    the model width (input of W_q, output of W_O). ``q_len`` L new query tokens; ``kv_len`` S
    keys each query may see (N cached + L new, plus any bias/zero key); ``new_kv_tokens`` how
    many tokens the K/V projections project in all (B*L with a cache, B*S without).
    """

    batch: int
    heads: int
    kv_heads: int
    head_dim: int
    dim: int
    q_len: int
    kv_len: int
    new_kv_tokens: int
    kdim: int | None = None
    vdim: int | None = None
    out_proj: bool = True
    bias: bool = True
    bytes_per_element: int = 4
    kv_read: int | None = None
    """Keys (and values) a fused kernel reads: those some query of the step may see (a window or a
    chunk bounds them); ``None``: all ``kv_len``. A naive kernel reads every key whatever the mask."""

    @property
    def k_in(self) -> int:
        return self.dim if self.kdim is None else self.kdim

    @property
    def v_in(self) -> int:
        return self.dim if self.vdim is None else self.vdim


def _projection(tokens: int, d_in: int, d_out: int, bias: bool) -> int:
    """Elements a linear layer moves: reads (tokens, d_in) and W (d_out, d_in) (+b), writes (tokens, d_out)."""
    return tokens * d_in + d_in * d_out + (d_out if bias else 0) + tokens * d_out


def stage_elements(dims: LayerDims, naive: bool) -> dict[str, int]:
    """Elements each kernel moves to or from device memory (x ``bytes_per_element`` for bytes).

    Fused: ``attention`` (QK^T, softmax, weights x V in one kernel). Naive: ``qk``, ``softmax``
    and ``av`` each read their operands and write their result.
    """
    b, h, g, d, e = dims.batch, dims.heads, dims.kv_heads, dims.head_dim, dims.dim
    q_len, s = dims.q_len, dims.kv_len
    q = b * q_len * h * d      # Q (b, h, l, d) and the context (b, h, l, d) alike
    kv = b * s * g * d         # K or V (b, g, s, d), the whole cache with one
    kv_fused = kv if dims.kv_read is None else b * min(s, dims.kv_read) * g * d  # only the keys in reach
    attn = b * h * q_len * s   # one (b, h, l, s) matrix: scores or weights
    out = {
        "q_proj": _projection(b * q_len, e, h * d, dims.bias),
        "k_proj": _projection(dims.new_kv_tokens, dims.k_in, g * d, dims.bias),
        "v_proj": _projection(dims.new_kv_tokens, dims.v_in, g * d, dims.bias),
    }
    if naive:
        out["qk"] = q + kv + attn          # read Q, K; write scores
        out["softmax"] = attn + attn       # read scores; write weights
        out["av"] = attn + kv + q          # read weights, V; write context
    else:
        out["attention"] = q + kv_fused + kv_fused + q  # read Q, K, V (the keys in reach); write context
    if dims.out_proj:
        out["out_proj"] = _projection(b * q_len, h * d, e, dims.bias)
    return out


def keys_in_reach(spec: AttnSpec) -> int:
    """Keys some query of the step may see: all S, or with a window W the last L + W - 1, with a
    chunk C those from the first query's chunk on (a decode step: its own chunk)."""
    s, q_len = spec.s, spec.seq
    if spec.window is not None:
        return min(s, q_len + spec.window - 1)
    if spec.chunk is not None:
        return s - (s - q_len) // spec.chunk * spec.chunk
    return s


def layer_dims(spec: AttnSpec, dtype: str) -> LayerDims:
    """The plain sizes :func:`estimate` needs, from ``spec``, at ``dtype``."""
    if dtype not in DTYPE_BYTES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}; choose from {', '.join(DTYPE_BYTES)}")
    return LayerDims(batch=spec.batch, heads=spec.heads, kv_heads=spec.n_kv_heads, head_dim=spec.head_dim,
                     dim=spec.dim, q_len=spec.seq, kv_len=spec.s_total, new_kv_tokens=spec.batch * spec.kv_tokens,
                     kdim=spec.k_dim, vdim=spec.v_dim, out_proj=spec.out_proj, bias=spec.bias,
                     bytes_per_element=DTYPE_BYTES[dtype], kv_read=keys_in_reach(spec) + spec.extra_keys)
