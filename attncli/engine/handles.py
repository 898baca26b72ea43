"""fvcore handles for the ops attention emits: the op registry and the formulas fvcore lacks.

Counting convention (fvcore's, kept here): one multiply-add is one "flop", so every number
in this module is a count of multiply-accumulates (MACs). ``(n, k) @ (k, m)`` costs
``n * k * m``. The additions that ride along with a matmul (``addmm``'s bias, ``baddbmm``'s
``input``) are not counted, as fvcore does for ``addmm``; neither are softmax, scaling and
masking, which have no multiply-adds: they stay in fvcore's ``unsupported_ops()`` and the
report lists them, so nothing is hidden.

fvcore 0.1.5 has no handle for three ops attention really uses, and without one it counts
them as 0 while the total looks plausible:

- ``aten::scaled_dot_product_attention``: ``F.scaled_dot_product_attention`` and
  ``nn.MultiheadAttention(need_weights=False)``. Both attention matmuls live inside it.
- ``aten::baddbmm``: ``nn.MultiheadAttention`` computes ``mask + q @ k^T`` with it whenever
  there is a mask.
- ``aten::_native_multi_head_attention``: MHA's inference fast path (batch-first, no grad, no
  bias_kv/zero_attn); projections, attention and W_O in one op.

Every op attention emits is described once, in :data:`REGISTRY`, by :func:`register` (which
refuses a second registration of the same op, as ``torch.utils.flop_counter`` does): its flop
formula (the handle fvcore lacks), its stage formula (ops that are several stages at once),
its operand slots (matmuls: left and right; SDPA: query, key, value) and, for ops that rightly
count zero, why. :data:`HANDLES`, :data:`STAGE_SPLITS`, :data:`MATMUL_OPERANDS` and
:data:`UNCOUNTED_WHY` are views of it; :func:`all_handles` adds fvcore's defaults. Importing
this module does not import torch or fvcore; counting does.

Stages. Which stage (``q_proj`` ... ``out_proj``, or ``other``) each counted op belongs to is
read from the traced graph by :class:`~attncli.engine.stages.StageRecorder`, which wraps these handles
and finds the matmuls and their operands in :data:`MATMUL_OPERANDS` and the ops that are
several stages at once in :data:`STAGE_SPLITS`; :mod:`attncli.engine.stages` holds those rules and the
graph walker. This module re-exports :class:`~attncli.engine.stages.OpCount`,
:class:`~attncli.engine.stages.StageRecorder` and :func:`~attncli.engine.stages.walk` (lazily, as
:mod:`attncli.engine.stages` imports this module), so ``from attncli.engine.handles import StageRecorder``
keeps working.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attncli.choices import OTHER, STAGES

if TYPE_CHECKING:
    from attncli.engine.stages import OpCount, StageRecorder, walk

__all__ = ["HANDLES", "MATMUL_OPERANDS", "NATIVE_MHA", "OTHER", "REGISTRY", "SDPA", "STAGES", "STAGE_SPLITS",
           "UNCOUNTED_WHY", "OpCount", "OpInfo", "StageRecorder", "all_handles", "register", "walk"]

Handle = Callable[[list[Any], list[Any]], Any]
"""fvcore's handle signature: (op inputs, op outputs) as ``torch._C.Value`` lists -> count."""

StageSplit = Callable[[list[Any], list[Any]], dict[str, int]]
"""(op inputs, op outputs) -> MACs per stage, for an op that is several stages at once."""

SDPA = "aten::scaled_dot_product_attention"
NATIVE_MHA = "aten::_native_multi_head_attention"


def _shape(value: Any) -> list[int]:
    from fvcore.nn.jit_handles import get_shape

    shape = get_shape(value)
    if shape is None:
        raise ValueError(f"fvcore handle: %{value.debugName()} has no complete tensor shape")
    return [int(d) for d in shape]


def baddbmm_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::baddbmm(input, batch1, batch2, beta, alpha)``: ``beta*input + alpha*(b1 @ b2)``."""
    b, n, k = _shape(inputs[1])
    m = _shape(inputs[2])[-1]
    # (b, n, k) @ (b, k, m) -> (b, n, m); adding ``input`` is not a multiply-add.
    return b * n * k * m


def sdpa_stage_flops(inputs: list[Any], outputs: list[Any]) -> dict[str, int]:
    """The two matmuls inside ``aten::scaled_dot_product_attention(q, k, v, mask, ...)``.

    Dense count, as FlopCounterMode does: a causal or padding mask hides scores but a kernel
    computes (or at least is charged for) all of them.
    """
    q, k, v, out = _shape(inputs[0]), _shape(inputs[1]), _shape(inputs[2]), _shape(outputs[0])
    batch = math.prod(out[:-2])  # broadcast batch and head dims (GQA keys broadcast over heads)
    q_len, e, s, ev = q[-2], q[-1], k[-2], v[-1]
    return {
        "qk": batch * q_len * e * s,   # (..., l, e) @ (..., e, s) -> (..., l, s)
        "av": batch * q_len * s * ev,  # (..., l, s) @ (..., s, ev) -> (..., l, ev)
    }


def sdpa_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """Both attention matmuls of SDPA (see :func:`sdpa_stage_flops`)."""
    return sum(sdpa_stage_flops(inputs, outputs).values())


def native_mha_stage_flops(inputs: list[Any], outputs: list[Any]) -> dict[str, int]:
    """``aten::_native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight,
    qkv_bias, proj_weight, proj_bias, mask, need_weights, average_attn_weights, mask_type)``.

    MHA's fast path: packed in-projection, attention and out-projection in one op.
    """
    q, k, v = _shape(inputs[0]), _shape(inputs[1]), _shape(inputs[2])
    e = int(inputs[3].toIValue())
    batch = math.prod(q[:-2])
    q_len, s = q[-2], k[-2]
    return {
        "q_proj": math.prod(q[:-1]) * q[-1] * e,  # (b, l, e) @ W_q^T (e, e) -> (b, l, e)
        "k_proj": math.prod(k[:-1]) * k[-1] * e,  # (b, s, e) @ W_k^T -> (b, s, e)
        "v_proj": math.prod(v[:-1]) * v[-1] * e,  # (b, s, e) @ W_v^T -> (b, s, e)
        "qk": batch * q_len * e * s,              # (b, h, l, d) @ (b, h, d, s) over h*d = e
        "av": batch * q_len * s * e,              # (b, h, l, s) @ (b, h, s, d)
        "out_proj": batch * q_len * e * e,        # (b, l, e) @ W_o^T -> (b, l, e)
    }


def native_mha_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """Everything MHA's fast path computes (see :func:`native_mha_stage_flops`)."""
    return sum(native_mha_stage_flops(inputs, outputs).values())


# ---------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class OpInfo:
    """What attncli knows of one op: how to count it, split it into stages, read it, or why not."""

    kind: str
    flops: Handle | None = None
    """The fvcore handle attncli adds (None: fvcore's own handle, or the op is not counted)."""
    stages: StageSplit | None = None
    """For an op that is several stages at once: how its MACs divide between them."""
    operands: tuple[int, ...] | None = None
    """Input slots: a matmul's (left, right); SDPA's (query, key, value)."""
    uncounted_why: str | None = None
    """For an op fvcore rightly counts as 0: why (it has no multiply-adds)."""


REGISTRY: dict[str, OpInfo] = {}
"""Every op attncli describes, by its TorchScript kind (``aten::...``)."""


def register(kind: str, *, flops: Handle | None = None, stages: StageSplit | None = None,
             operands: tuple[int, ...] | None = None, uncounted_why: str | None = None) -> OpInfo:
    """Describe ``kind`` once; a second description of the same op is a bug and raises."""
    if kind in REGISTRY:
        raise RuntimeError(f"attncli.engine.handles: {kind} is already registered")
    REGISTRY[kind] = info = OpInfo(kind, flops, stages, operands, uncounted_why)
    return info


register("aten::linear", operands=(0, 1))    # linear(x, W, b): x @ W^T
register("aten::addmm", operands=(1, 2))     # addmm(b, x, W^T)
register("aten::matmul", operands=(0, 1))
register("aten::mm", operands=(0, 1))
register("aten::bmm", operands=(0, 1))
register("aten::baddbmm", flops=baddbmm_flop_jit, operands=(1, 2))  # baddbmm(mask, q, k^T)
register(SDPA, flops=sdpa_flop_jit, stages=sdpa_stage_flops, operands=(0, 1, 2))
register(NATIVE_MHA, flops=native_mha_flop_jit, stages=native_mha_stage_flops)

for _kind, _why in (
    ("aten::softmax", "softmax over the keys (exp, sum, divide)"),
    ("aten::_softmax", "softmax over the keys (exp, sum, divide)"),
    ("aten::mul", "elementwise multiply: scaling by 1/sqrt(d), and shape arithmetic"),
    ("aten::div", "elementwise divide: scaling, and shape arithmetic"),
    ("aten::add", "elementwise add: biases, masks"),
    ("aten::add_", "elementwise add: biases, masks"),
    ("aten::masked_fill", "masking: sets blocked scores to -inf"),
    ("aten::masked_fill_", "masking: builds the additive -inf mask"),
    ("aten::logical_or", "combining boolean masks"),
    ("aten::mean", "averaging: weights over heads, RMSNorm"),
    ("aten::neg", "sign flip: RoPE's rotate_half"),
    ("aten::cos", "RoPE's cosine table (elementwise, no multiply-adds)"),
    ("aten::sin", "RoPE's sine table (elementwise, no multiply-adds)"),
    ("aten::le", "a comparison: building a mask"),
    ("aten::where", "a select: applying a mask"),
    ("aten::pow", "elementwise square: an RMSNorm's mean square"),
    ("aten::rsqrt", "elementwise 1/sqrt: an RMSNorm"),
    ("aten::sigmoid", "elementwise gate: an output gate (Qwen3-Next) or beta (Gated DeltaNet)"),
    ("aten::silu", "elementwise activation after Gated DeltaNet's short convolution"),
    ("aten::softplus", "elementwise: Gated DeltaNet's decay rate"),
    ("aten::exp", "elementwise: decays, softmax"),
    ("aten::cumsum", "running sum of the decays (additions, no multiply-adds)"),
    ("aten::sum", "a sum over one axis (additions, no multiply-adds)"),
    ("aten::sub", "elementwise subtract"),
    ("aten::rsub", "elementwise subtract"),
    ("aten::repeat_interleave", "copying K/V heads for their query heads (no arithmetic)"),
    ("aten::unfold", "sliding windows of the convolution's inputs (a view, no arithmetic)"),
    ("aten::topk", "picking each query's K best keys (comparisons, no multiply-adds)"),
    ("aten::scatter", "building the top-k mask"),
    ("aten::__or__", "combining boolean masks"),
    ("aten::ones_like", "building a mask"),
    ("aten::repeat", "copying bias_k/bias_v for every batch item"),
    ("aten::bool", "mask dtype conversion"),
    ("aten::triu", "building a causal mask"),
    ("aten::dropout", "dropout (identity in eval mode)"),
    ("aten::unflatten", "a reshape (a view, no arithmetic)"),
    ("aten::pad", "widening the mask for bias_kv / zero_attn"),
    ("aten::clone", "a copy: the rows of KDA's forward substitution (no arithmetic)"),
    ("aten::eye", "the identity KDA adds to a chunk's inverse (no arithmetic)"),
    ("aten::log", "elementwise: KDA's softplus, log(1 + exp(x))"),
    ("aten::sqrt", "elementwise: KDA's l2norm of queries and keys"),
):
    register(_kind, uncounted_why=_why)

HANDLES: dict[str, Handle] = {k: i.flops for k, i in REGISTRY.items() if i.flops is not None}
"""The handles fvcore lacks for attention."""

STAGE_SPLITS: dict[str, StageSplit] = {k: i.stages for k, i in REGISTRY.items() if i.stages is not None}
"""Ops that are several stages at once, and how their count divides between them."""

MATMUL_OPERANDS: dict[str, tuple[int, int]] = {
    k: (i.operands[0], i.operands[1]) for k, i in REGISTRY.items()
    if i.operands is not None and i.stages is None}
"""For each matmul op, the input slots of its left and right operands."""

UNCOUNTED_WHY: dict[str, str] = {k: i.uncounted_why for k, i in REGISTRY.items() if i.uncounted_why}
"""Ops fvcore leaves uncounted in attention, and why that is right: none multiplies-and-adds."""


def all_handles() -> dict[str, Handle]:
    """fvcore's default handles plus :data:`HANDLES`."""
    from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS

    return {**_DEFAULT_SUPPORTED_OPS, **HANDLES}


# ---------------------------------------------------------------------------- re-exports
_FROM_STAGES = frozenset({"OpCount", "StageRecorder", "walk"})


def __getattr__(name: str) -> Any:
    """``OpCount``, ``StageRecorder`` and ``walk`` live in :mod:`attncli.engine.stages`, which imports
    this module: imported on first use, so neither import order makes a cycle."""
    if name in _FROM_STAGES:
        from attncli.engine import stages

        return getattr(stages, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
