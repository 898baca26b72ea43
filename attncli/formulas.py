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
- Masks do not change the count: masked scores are still computed (a dense count, as
  FlopCounterMode makes too).

:func:`closed_form` is the per-stage reference every traced count is checked against;
:func:`memory` estimates what a forward pass holds; :func:`check_representable` refuses sizes
torch cannot describe, naming the flag, before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attncli.choices import DTYPE_BYTES
from attncli.spec import AttnSpec, SpecError

CONVENTION: dict[str, str] = {
    "fvcore_flops": "fvcore's count: one multiply-add = 1 (MACs)",
    "flops": "2 x fvcore_flops (FlopCounterMode's and most papers' convention)",
    "training": "forward + backward, backward = 2 x forward by convention: 3 x forward",
    "uncounted": "softmax, scaling, masking and bias adds have no multiply-adds: 0",
    "masks": "dense count: masked scores are still computed",
}

TRAINING_FACTOR = 3
"""Forward + backward with backward = 2 x forward."""


# ---------------------------------------------------------------------------- closed form
def closed_form(spec: AttnSpec) -> dict[str, int]:
    """MACs per stage from B, L, S, E, kdim, vdim alone (see :data:`CLOSED_FORMS`).

    Heads do not appear: H heads of E/H features do the work of one head of E features.
    """
    b, q_len, s, e = spec.batch, spec.seq, spec.s, spec.dim
    s_ = spec.s_total
    return {
        "q_proj": b * q_len * e * e,
        "k_proj": b * s * spec.k_dim * e,
        "v_proj": b * s * spec.v_dim * e,
        "qk": b * q_len * s_ * e,
        "av": b * q_len * s_ * e,
        "out_proj": b * q_len * e * e if spec.out_proj else 0,
    }


# ---------------------------------------------------------------------------- memory
@dataclass(frozen=True)
class Memory:
    """What one forward pass would hold in memory at ``dtype`` (nothing is allocated here).

    ``attention_matrix`` is one (B, H, L, S') tensor: the scores, and again the weights.
    ``activations`` are the main tensors the forward pass materialises (q, k, v, scores,
    weights, context, output), not the inputs and not the copies reshapes may make.
    """

    dtype: str
    bytes_per_element: int
    attention_matrix: int
    activations: dict[str, int]

    @property
    def activations_total(self) -> int:
        return sum(self.activations.values())

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "bytes_per_element": self.bytes_per_element,
                "attention_matrix_bytes": self.attention_matrix,
                "activations_bytes": self.activations_total,
                "activations": dict(self.activations)}


def memory(spec: AttnSpec, dtype: str = "float32") -> Memory:
    """The attention matrix and activations of ``spec`` (its heads and W_O) at ``dtype``."""
    if dtype not in DTYPE_BYTES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}; choose from {', '.join(DTYPE_BYTES)}")
    n = DTYPE_BYTES[dtype]
    b, h, q_len, e, s_ = spec.batch, spec.heads, spec.seq, spec.dim, spec.s_total
    attn = b * h * q_len * s_ * n
    acts = {"q": b * q_len * e * n, "k": b * s_ * e * n, "v": b * s_ * e * n,
            "scores": attn, "weights": attn, "context": b * q_len * e * n}
    if spec.out_proj:
        acts["output"] = b * q_len * e * n
    return Memory(dtype, n, attn, acts)


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
    largest: list[tuple[str, int, dict[str, int]]] = [
        ("the attention matrix (B, H, L, S')", b * h * n * s_,
         {"--batch": b, "--heads": h, "--seq": n, "--kv-seq": s}),
        ("the packed q/k/v projection (B, L, 3E)", b * n * 3 * e, {"--batch": b, "--seq": n, "--dim": e}),
        ("the packed projection weight (3E, E)", 3 * e * e, {"--dim": e}),
        ("the key/value input (B, S, kdim|vdim)", b * s * kv, {"--batch": b, "--kv-seq": s, "--kdim": kv}),
        ("a key/value weight (E, kdim|vdim)", e * kv, {"--dim": e, "--kdim": kv}),
    ]
    for what, elements, flags in largest:
        if elements * 4 > TORCH_MAX_BYTES:
            flag = max(flags, key=lambda k: flags[k])
            if flag == "--kv-seq" and spec.kv_seq is None:
                flag = "--seq"
            if flag == "--kdim" and spec.k_dim < spec.v_dim:
                flag = "--vdim"
            raise SpecError(flag, f"{what} would have {elements:,} elements: more than torch can "
                                  "describe, even on the meta device (2**63 bytes)")


