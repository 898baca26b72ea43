"""Closed forms, memory and size limits of attention: arithmetic on the spec, no torch.

Counting conventions, written down once (every module of attncli that counts follows them):

- ``fvcore_flops`` and every ``by_stage`` count are fvcore's: **one multiply-add counts as one
  flop**, so they are multiply-accumulates (MACs). ``(n, k) @ (k, m)`` is ``n * k * m``.
- ``flops`` is 2 x MACs, the convention of ``torch.utils.flop_counter.FlopCounterMode`` and of
  most papers.
- Softmax, scaling, masking and bias additions have no multiply-adds and count zero; they are
  listed as uncounted ops, so nothing is hidden.
- Training: forward + backward, with the usual convention backward = 2 x forward, so a
  training step is 3 x the forward count.
- Two counts of the attention matmuls: **dense** charges every score, L x S' pairs (what a
  naive implementation computes and what fvcore and FlopCounterMode count, masks or not);
  **effective** charges only the (query, key) pairs a causal, sliding-window or padding mask
  leaves visible, the work FlashAttention-style kernels do when they skip masked blocks
  (:mod:`attncli.layer.visibility` counts the pairs exactly). Without a mask they are equal.

:func:`closed_form` is the per-stage reference every traced count is checked against;
:func:`memory` estimates what a forward pass holds; :func:`check_representable` refuses sizes
torch cannot describe, naming the flag, before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attncli.choices import DTYPE_BYTES
from attncli.layer.visibility import cached_tokens, dense_pairs, spec_visible_pairs
from attncli.spec import AttnSpec, SpecError

CONVENTION: dict[str, str] = {
    "fvcore_flops": "fvcore's count: one multiply-add = 1 (MACs)",
    "flops": "2 x fvcore_flops (FlopCounterMode's and most papers' convention)",
    "training": "forward + backward, backward = 2 x forward by convention: 3 x forward",
    "uncounted": "softmax, scaling, masking and bias adds have no multiply-adds: 0",
    "masks": "dense count: masked scores are still computed",
    "effective": "only the (query, key) pairs a causal, window or padding mask leaves visible, "
                 "as FlashAttention-style kernels skip masked blocks; projections as dense",
}

TRAINING_FACTOR = 3
"""Forward + backward with backward = 2 x forward."""


# ---------------------------------------------------------------------------- closed form
def closed_form(spec: AttnSpec) -> dict[str, int]:
    """Dense MACs per stage (see :data:`attncli.choices.CLOSED_FORMS` and its terms).

    Without --head-dim and --kv-heads, H*d = E and G = H, and heads drop out: H heads of E/H
    features do the work of one head of E features.
    """
    b, q_len, t, e = spec.batch, spec.seq, spec.kv_tokens, spec.dim
    hd, gd, s_ = spec.inner, spec.kv_inner, spec.s_total
    hv, gv = spec.v_inner, spec.kv_v_inner  # H*d_v, G*d_v: d_v = d unless the layer says otherwise
    # NOTE: a layer that reads another's cache projects no keys or values; K = V projects keys only
    k_proj = 0 if spec.kv_shared else b * t * spec.k_dim * gd
    v_proj = 0 if spec.kv_shared or spec.k_eq_v else b * t * spec.v_dim * gv
    return {
        "q_proj": b * q_len * e * hd,          # (B*L, E) @ (E, H*d)
        "k_proj": k_proj,                      # (B*T, kdim) @ (kdim, G*d)
        "v_proj": v_proj,                      # (B*T, vdim) @ (vdim, G*d_v)
        "qk": b * q_len * s_ * hd,             # H x (B, L, d) @ (B, d, S')
        "av": b * q_len * s_ * hv,             # H x (B, L, S') @ (B, S', d_v)
        "out_proj": b * q_len * hv * e if spec.out_proj else 0,  # (B*L, H*d_v) @ (H*d_v, E)
    }


def effective(by_stage: dict[str, int], spec: AttnSpec) -> tuple[dict[str, int], tuple[str, ...]]:
    """The effective count of a dense ``by_stage``: QK^T and weights x V scaled from all L x S'
    pairs to the visible ones; every other stage as it is. Returns the counts and the problems
    (a dense attention count that is not a whole multiple of L x S' cannot be scaled exactly).
    """
    visible = spec_visible_pairs(spec)
    return scale_pairs(by_stage, dense_pairs(spec), {"qk": visible, "av": visible})


def scale_pairs(by_stage: dict[str, int], dense: int,
                visible: dict[str, int]) -> tuple[dict[str, int], tuple[str, ...]]:
    """``by_stage`` with each stage of ``visible`` scaled from ``dense`` (query, key) pairs to its
    visible ones; the problems where a count is not a whole multiple of the dense pairs."""
    out, problems = dict(by_stage), []
    for stage, seen in visible.items():
        n = by_stage.get(stage, 0)
        if n % dense:
            problems.append(f"{stage}: {n:,} MACs is not a multiple of the {dense:,} (query, key) pairs; "
                            "the effective count cannot be exact")
        out[stage] = n // dense * seen
    return out, tuple(problems)


# ---------------------------------------------------------------------------- memory
@dataclass(frozen=True)
class Memory:
    """What one forward pass would hold in memory at ``dtype`` (nothing is allocated here).

    ``attention_matrix`` is one (B, H, L, S') tensor: the scores, and again the weights.
    ``activations`` are the main tensors the forward pass materialises (q, k, v, scores,
    weights, context, output), not the inputs and not the copies reshapes may make (nor the
    H-head copy of K and V that a grouped-query layer without ``enable_gqa`` makes).
    ``kv_cache`` is what one layer's KV cache holds after this step: K and V of all S tokens
    (of the last W - 1 with a window, C - 1 with a chunk: :func:`attncli.layer.visibility.cached_tokens`).
    """

    dtype: str
    bytes_per_element: int
    attention_matrix: int
    activations: dict[str, int]
    kv_cache: int = 0

    @property
    def activations_total(self) -> int:
        return sum(self.activations.values())

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "bytes_per_element": self.bytes_per_element,
                "attention_matrix_bytes": self.attention_matrix,
                "activations_bytes": self.activations_total,
                "activations": dict(self.activations),
                "kv_cache_bytes": self.kv_cache}


def memory(spec: AttnSpec, dtype: str = "float32") -> Memory:
    """The attention matrix and activations of ``spec`` (its heads and W_O) at ``dtype``."""
    if dtype not in DTYPE_BYTES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}; choose from {', '.join(DTYPE_BYTES)}")
    n = DTYPE_BYTES[dtype]
    b, h, q_len, e, s_ = spec.batch, spec.heads, spec.seq, spec.dim, spec.s_total
    hd, gd, hv, gv = spec.inner, spec.kv_inner, spec.v_inner, spec.kv_v_inner
    attn = b * h * q_len * s_ * n
    acts = {"q": b * q_len * hd * n, "k": b * s_ * gd * n, "v": b * s_ * gv * n,
            "scores": attn, "weights": attn, "context": b * q_len * hv * n}
    if spec.out_proj:
        acts["output"] = b * q_len * e * n
    # 2 (K and V) x B x (tokens kept) x G x d: one layer's cache after this step (a window or a
    # chunk keeps W - 1 or C - 1 tokens at most, as transformers' caches do)
    # (a layer that reads another's cache keeps none; K and V of their own sizes: G*d + G*d_v)
    kv_cache = 0 if spec.kv_shared else b * cached_tokens(spec) * (gd + gv) * n
    return Memory(dtype, n, attn, acts, kv_cache)


# ---------------------------------------------------------------------------- limits
TORCH_MAX_BYTES = 2**63 - 1
"""torch describes every tensor's storage in int64 bytes, even on the meta device."""


def check_representable(spec: AttnSpec) -> None:
    """Raise :class:`SpecError` (naming the flag) when a tensor of the forward pass has more
    bytes than torch can describe, instead of failing deep inside torch.

    The counts themselves are Python ints and never overflow; the meta tensors that fvcore
    traces do. The largest tensors are checked, at float32 as they are built.
    """
    b, h, n, s, s_, e = spec.batch, spec.heads, spec.seq, spec.s, spec.s_total, spec.dim
    kv = max(spec.k_dim, spec.v_dim)
    packed = spec.inner + 2 * spec.kv_inner  # (H + 2G) d
    largest: list[tuple[str, int, dict[str, int]]] = [
        ("the attention matrix (B, H, L, S')", b * h * n * s_,
         {"--batch": b, "--heads": h, "--seq": n, "--kv-seq": s}),
        ("the packed q/k/v projection (B, L, (H+2G)d)", b * n * packed,
         {"--batch": b, "--seq": n, "--dim": e, "--head-dim": spec.head_dim}),
        ("the packed projection weight ((H+2G)d, E)", packed * e, {"--dim": e, "--head-dim": spec.head_dim}),
        ("the key/value input (B, S, kdim|vdim)", b * s * kv, {"--batch": b, "--kv-seq": s, "--kdim": kv}),
        ("a key/value weight (E, kdim|vdim)", e * kv, {"--dim": e, "--kdim": kv}),
        ("the keys and values repeated for every head (B, H, S', d)", b * s_ * spec.inner,
         {"--batch": b, "--kv-seq": s, "--heads": h, "--head-dim": spec.head_dim}),
    ]
    for what, elements, flags in largest:
        if elements * 4 > TORCH_MAX_BYTES:
            flag = max(flags, key=lambda k: flags[k])
            if flag == "--kv-seq" and spec.kv_seq is None:
                flag = "--cache" if spec.cache > n else "--seq"
            if flag == "--head-dim" and spec.d_head is None:
                flag = "--dim"
            if flag == "--kdim" and spec.k_dim < spec.v_dim:
                flag = "--vdim"
            raise SpecError(flag, f"{what} would have {elements:,} elements: more than torch can "
                                  "describe, even on the meta device (2**63 bytes)")


