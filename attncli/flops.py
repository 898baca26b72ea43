"""Honest fvcore FLOPs for attention: one head and H heads, with and without W_O, at any size.

Counting conventions, written down once:

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

How: the layer is built on the **meta** device and traced by fvcore (TorchScript tracing works
on meta tensors), so any size is counted with no memory and in milliseconds. fvcore alone loses
the attention matmuls of SDPA and ``baddbmm`` (see :mod:`attncli.handles`, which adds the
handles and attributes every counted op to a stage). Two cross-checks sit beside every count:
the closed form per stage (:func:`closed_form`) and FlopCounterMode, run on meta too (it counts
0 for SDPA on CPU tensors in torch 2.13, but decomposes it on meta).

:func:`count_flops` is what ``attncli flops`` shows; :func:`count_variant` counts one spec and
:func:`count_module` counts any module with the same handles. Results are frozen dataclasses
with ``to_json()``. Importing this module does not import torch; counting does.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attncli.spec import AttnSpec, SpecError

if TYPE_CHECKING:
    from torch import Tensor, nn

    from attncli.handles import OpCount
    from attncli.modules import Inputs

SCHEMA = "attncli.flops/1"

STAGES: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "qk", "av", "out_proj")
"""Same as :data:`attncli.handles.STAGES` (kept here so importing this module stays light)."""

STAGE_LABELS: dict[str, str] = {
    "q_proj": "q proj (W_q)",
    "k_proj": "k proj (W_k)",
    "v_proj": "v proj (W_v)",
    "qk": "QK^T",
    "av": "weights x V",
    "out_proj": "W_O",
    "other": "other",
}

CLOSED_FORMS: dict[str, str] = {
    "q_proj": "B*L*E*E",
    "k_proj": "B*S*kdim*E",
    "v_proj": "B*S*vdim*E",
    "qk": "B*L*S'*E",
    "av": "B*L*S'*E",
    "out_proj": "B*L*E*E",
}
"""The closed form of every stage, in MACs. S' = S (+1 with add_bias_kv, +1 with add_zero_attn)."""

DTYPE_BYTES: dict[str, int] = {"float32": 4, "float16": 2, "bfloat16": 2}

CONVENTION: dict[str, str] = {
    "fvcore_flops": "fvcore's count: one multiply-add = 1 (MACs)",
    "flops": "2 x fvcore_flops (FlopCounterMode's and most papers' convention)",
    "training": "forward + backward, backward = 2 x forward by convention: 3 x forward",
    "uncounted": "softmax, scaling, masking and bias adds have no multiply-adds: 0",
    "masks": "dense count: masked scores are still computed",
}

TRAINING_FACTOR = 3
"""Forward + backward with backward = 2 x forward."""

UNCOUNTED_WHY: dict[str, str] = {
    "aten::softmax": "softmax over the keys (exp, sum, divide)",
    "aten::_softmax": "softmax over the keys (exp, sum, divide)",
    "aten::mul": "elementwise multiply: scaling by 1/sqrt(d), and shape arithmetic",
    "aten::div": "elementwise divide: scaling, and shape arithmetic",
    "aten::add": "elementwise add: biases, masks",
    "aten::add_": "elementwise add: biases, masks",
    "aten::masked_fill": "masking: sets blocked scores to -inf",
    "aten::masked_fill_": "masking: builds the additive -inf mask",
    "aten::logical_or": "combining boolean masks",
    "aten::mean": "averaging the returned weights over heads",
    "aten::repeat": "copying bias_k/bias_v for every batch item",
    "aten::bool": "mask dtype conversion",
    "aten::triu": "building a causal mask",
    "aten::dropout": "dropout (identity in eval mode)",
    "aten::unflatten": "a reshape (a view, no arithmetic)",
    "aten::pad": "widening the mask for bias_kv / zero_attn",
}
"""Ops fvcore leaves uncounted in attention, and why that is right: none multiplies-and-adds."""


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
MAX_BYTES = 2**63 - 1
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
        if elements * 4 > MAX_BYTES:
            flag = max(flags, key=lambda k: flags[k])
            if flag == "--kv-seq" and spec.kv_seq is None:
                flag = "--seq"
            if flag == "--kdim" and spec.k_dim < spec.v_dim:
                flag = "--vdim"
            raise SpecError(flag, f"{what} would have {elements:,} elements: more than torch can "
                                  "describe, even on the meta device (2**63 bytes)")


# ---------------------------------------------------------------------------- import shortcut
@contextmanager
def _without_dynamo_import() -> Iterator[None]:
    """Answer ``torch._disable_dynamo``'s lazy ``import torch._dynamo`` without importing it.

    NOTE: the first meta-device op of a process runs Python meta kernels and decompositions
    (``torch._refs``) wrapped in ``torch._disable_dynamo``; on its first call that wrapper
    imports ``torch._dynamo`` (about 1.3 s here, and most of the cost of the first trace) just
    to mark the function "do not compile". While ``torch._dynamo`` has not been imported
    nothing in this process can be compiling, so the mark changes nothing: a placeholder module
    answers ``disable(fn)`` with ``fn``, and anything else it is asked loads the real module.
    On exit the placeholder and every mark it handed out are removed, so a later real
    ``torch._dynamo`` starts clean. Set ``ATTNCLI_NO_IMPORT_SHORTCUT=1`` to turn this off.
    (sympy, which the meta kernels import too, cannot be skipped: they really use it.)
    """
    import torch

    if "torch._dynamo" in sys.modules or os.environ.get("ATTNCLI_NO_IMPORT_SHORTCUT"):
        yield
        return
    marked: list[Any] = []
    placeholder = types.ModuleType("torch._dynamo", "attncli placeholder, see attncli.flops")

    def disable(fn: Any = None, recursive: bool = True, **_: Any) -> Any:
        if fn is None:
            return functools.partial(disable, recursive=recursive)
        marked.append(fn)
        return fn

    def remove() -> None:
        if sys.modules.get("torch._dynamo") is placeholder:
            del sys.modules["torch._dynamo"]
        if torch.__dict__.get("_dynamo") is placeholder:
            delattr(torch, "_dynamo")

    def load_real(name: str) -> Any:
        remove()
        return getattr(importlib.import_module("torch._dynamo"), name)

    placeholder.disable = disable  # type: ignore[attr-defined]
    placeholder.__getattr__ = load_real  # type: ignore[method-assign,unused-ignore]
    sys.modules["torch._dynamo"] = placeholder
    torch._dynamo = placeholder
    try:
        yield
    finally:
        remove()
        for fn in marked:
            getattr(fn, "__dict__", {}).pop("__dynamo_disable", None)


# ---------------------------------------------------------------------------- counting a module
@dataclass(frozen=True)
class ModuleCount:
    """fvcore's count of one forward pass, with every counted op attributed to a stage.

    All counts are MACs. Module names are relative to the counted module (``""`` is itself).
    """

    total: int
    by_stage: dict[str, int]
    by_operator: dict[str, int]
    by_module: dict[str, int]
    stage_sources: dict[str, tuple[str, ...]]
    """For each stage, where its ops ran: ``module: op`` (``""`` is the layer itself)."""
    uncounted_ops: dict[str, int]
    """Ops fvcore met and has no handle for, with how often: softmax, scaling, masking..."""
    uncalled_modules: tuple[str, ...]
    ops: tuple[OpCount, ...]

    @property
    def stages_add_up(self) -> bool:
        return sum(self.by_stage.values()) == self.total

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "by_stage": dict(self.by_stage),
                "by_operator": dict(self.by_operator), "by_module": dict(self.by_module),
                "stage_sources": {k: list(v) for k, v in self.stage_sources.items()},
                "uncounted_ops": dict(self.uncounted_ops),
                "uncalled_modules": list(self.uncalled_modules)}


def _tensors(out: Any) -> Any:
    """The tensors of a forward's result, as jit.trace wants them (None dropped)."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, tuple | list):
        flat: list[Any] = []
        for item in out:
            t = _tensors(item)
            if isinstance(t, tuple):
                flat.extend(t)
            elif t is not None:
                flat.append(t)
        return tuple(flat)
    return None


def _caller(layer: nn.Module, args: Sequence[Tensor], kwargs: Mapping[str, Any]
            ) -> tuple[nn.Module, tuple[Tensor, ...]]:
    """A module that calls ``layer(*args, **kwargs)`` from tensor inputs only (jit.trace).

    The same tensor passed twice is traced once, so ``attn(x, x, x)`` keeps ``key is query``
    (self-attention) inside the trace. Non-tensor keyword arguments are constants.
    """
    import torch
    from torch import nn

    unique: list[Tensor] = []

    def slot(t: Tensor) -> int:
        for i, u in enumerate(unique):
            if u is t:
                return i
        unique.append(t)
        return len(unique) - 1

    arg_slots = [slot(a) for a in args]
    kw_slots = {k: slot(v) for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
    constants = {k: v for k, v in kwargs.items() if not isinstance(v, torch.Tensor)}

    class Call(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = layer

        def forward(self, *tensors: Tensor) -> Any:
            out = _tensors(self.layer(*(tensors[i] for i in arg_slots),
                                      **{k: tensors[i] for k, i in kw_slots.items()}, **constants))
            if out is None or (isinstance(out, tuple) and not out):
                raise TypeError(f"{type(layer).__name__} returned no tensor: nothing to trace")
            return out

    return Call(), tuple(unique)


def _relative(name: str) -> str:
    """``layer.W_q`` -> ``W_q``; the wrapper and ``layer`` itself -> ``""``."""
    return name[len("layer."):] if name.startswith("layer.") else ""


def _has_forward(module: nn.Module) -> bool:
    from torch import nn

    return type(module).forward not in (nn.Module.forward, nn.Identity.forward,
                                        nn.ModuleList.forward, nn.ModuleDict.forward)


def _count(call: nn.Module, tensors: tuple[Tensor, ...]) -> ModuleCount:
    from fvcore.nn import FlopCountAnalysis

    from attncli.handles import OTHER, StageRecorder, all_handles

    recorder = StageRecorder(len(tensors), all_handles())
    analysis = (FlopCountAnalysis(call, tensors).set_op_handle(**recorder.handles())
                .unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                .tracer_warnings("none"))
    total = int(analysis.total())
    by_stage = dict.fromkeys(STAGES, 0)
    sources: dict[str, list[str]] = {}
    for op in recorder.records:
        for stage, n in op.stages:
            by_stage[stage] = by_stage.get(stage, 0) + n
            # NOTE: heads.0.q, heads.1.q, ... -> heads.*.q: one line per kind of module.
            scope = ".".join("*" if part.isdigit() else part for part in _relative(op.scope).split("."))
            where = f"{scope or '(layer)'}: {op.kind}"
            if where not in sources.setdefault(stage, []):
                sources[stage].append(where)
    if not by_stage.get(OTHER):
        by_stage.pop(OTHER, None)
    named = dict(call.named_modules())
    by_module = {_relative(k): int(v) for k, v in analysis.by_module().items() if k}
    uncalled = tuple(sorted(_relative(k) for k in analysis.uncalled_modules()
                            if k in named and _has_forward(named[k])))
    return ModuleCount(
        total=total,
        by_stage=by_stage,
        by_operator={k: int(v) for k, v in analysis.by_operator().items()},
        by_module=by_module,
        stage_sources={k: tuple(v) for k, v in sources.items()},
        uncounted_ops=dict(sorted(analysis.unsupported_ops().items())),
        uncalled_modules=uncalled,
        ops=tuple(recorder.records),
    )


def _call_args(inputs: Inputs | Sequence[Tensor], spec: AttnSpec | None
               ) -> tuple[tuple[Tensor, ...], dict[str, Any]]:
    from attncli.modules import Inputs

    if isinstance(inputs, Inputs):
        if spec is None:
            raise TypeError("count_module: pass the spec with modules.Inputs (it holds the forward flags)")
        kwargs = {k: v for k, v in inputs.kwargs(spec).items() if v is not None}
        return (inputs.query, inputs.key, inputs.value), kwargs
    return tuple(inputs), {}


def count_module(module: nn.Module, inputs: Inputs | Sequence[Tensor],
                 spec: AttnSpec | None = None) -> ModuleCount:
    """Count one forward pass of ``module`` with fvcore and attncli's handles.

    ``inputs`` is either :class:`attncli.modules.Inputs` with its ``spec`` (the module is called
    the way ``nn.MultiheadAttention`` is: query, key, value, masks and flags), or a sequence of
    tensors passed positionally (``module(x)``, ``module(q, k, v)``). Use meta tensors (and a
    module on the meta device) for any size at no memory cost.
    """
    args, kwargs = _call_args(inputs, spec)
    call, tensors = _caller(module, args, kwargs)
    with _without_dynamo_import():
        return _count(call, tensors)


# ---------------------------------------------------------------------------- FlopCounterMode
_COMPATIBLE: dict[str, frozenset[str]] = {
    "aten::linear": frozenset({"aten.addmm", "aten.mm"}),
    "aten::matmul": frozenset({"aten.mm", "aten.bmm"}),
    "aten::mm": frozenset({"aten.mm"}),
    "aten::bmm": frozenset({"aten.bmm"}),
    "aten::addmm": frozenset({"aten.addmm"}),
    "aten::baddbmm": frozenset({"aten.baddbmm"}),
    "aten::scaled_dot_product_attention": frozenset({"aten.bmm"}),
}
"""fvcore op -> the ops it dispatches to on meta (what FlopCounterMode sees)."""


@dataclass(frozen=True)
class FlopCounterCheck:
    """``torch.utils.flop_counter.FlopCounterMode`` on the same module and meta inputs.

    It counts 2 per multiply-add. ``ops`` are its counted ops in execution order; when they line
    up one to one with fvcore's (SDPA is two bmm on meta), ``by_stage`` gives its FLOPs per
    stage, each op labelled with the stage of the fvcore op it matches.
    """

    flops: int
    by_stage: dict[str, int] | None
    ops: tuple[tuple[str, int], ...]
    mismatches: tuple[str, ...]
    """Ops whose count differs from 2x fvcore's, or why the sequences do not line up."""

    @property
    def macs(self) -> int:
        return self.flops // 2

    def to_json(self) -> dict[str, Any]:
        return {"flops": self.flops, "macs": self.macs,
                "by_stage": None if self.by_stage is None else dict(self.by_stage),
                "by_stage_macs": None if self.by_stage is None
                else {k: v // 2 for k, v in self.by_stage.items()},
                "lined_up_with_fvcore": self.by_stage is not None,
                "mismatches": list(self.mismatches)}


def _expected_ops(ops: Sequence[OpCount]) -> list[tuple[OpCount, tuple[tuple[str, int], ...]]] | None:
    """fvcore's ops as FlopCounterMode will see them on meta; None if they cannot line up."""
    from attncli.handles import SDPA

    expected: list[tuple[OpCount, tuple[tuple[str, int], ...]]] = []
    for op in ops:
        if op.kind == SDPA:
            expected += [(op, (st,)) for st in op.stages]  # the math path: two bmm
        elif op.kind in _COMPATIBLE:
            expected.append((op, op.stages))
        else:
            return None
    return expected


def flop_counter_check(call: Callable[..., Any], args: Sequence[Any], ops: Sequence[OpCount]) -> FlopCounterCheck:
    """Run ``call(*args)`` under FlopCounterMode and line its ops up with fvcore's ``ops``."""
    from torch.utils.flop_counter import FlopCounterMode, flop_registry

    log: list[tuple[str, int]] = []

    def recording(packet: Any, formula: Callable[..., int]) -> Callable[..., int]:
        def count(*a: Any, out_val: Any = None, **kw: Any) -> int:
            n = int(formula(*a, out_val=out_val, **kw))
            log.append((str(packet), n))
            return n

        count._get_raw = True  # type: ignore[attr-defined]  # NOTE: formula unwraps shapes itself
        return count

    mapping = {packet: recording(packet, formula) for packet, formula in flop_registry.items()}
    with _without_dynamo_import(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            call(*args)
    total = int(counter.get_total_flops())
    expected = _expected_ops(ops)
    mismatches: list[str] = []
    by_stage: dict[str, int] | None = None
    if expected is None:
        mismatches.append("fvcore counted an op FlopCounterMode cannot be lined up with")
    elif len(expected) != len(log):
        mismatches.append(f"FlopCounterMode counted {len(log)} ops, fvcore {len(expected)}: "
                          "per-stage comparison not possible")
    else:
        by_stage = dict.fromkeys(STAGES, 0)
        for i, ((op, stages), (packet, n)) in enumerate(zip(expected, log, strict=True)):
            macs = sum(v for _, v in stages)
            where = f"op {i + 1} ({op.kind} in {_relative(op.scope) or '(layer)'})"
            if packet not in _COMPATIBLE[op.kind]:
                mismatches.append(f"{where}: FlopCounterMode saw {packet}; per-stage comparison not possible")
                by_stage = None
                break
            if n != 2 * macs:
                mismatches.append(f"{where}: fvcore {macs:,} MACs, FlopCounterMode {n:,} FLOPs "
                                  f"(expected {2 * macs:,})")
            for stage, part in stages:  # split n the way fvcore split the op
                by_stage[stage] = by_stage.get(stage, 0) + (n * part // macs if macs else 0)
    return FlopCounterCheck(total, by_stage, tuple(log), tuple(mismatches))


# ---------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class Variant:
    """One (heads, W_O) variant of the layer: its count, parameters, memory and cross-checks."""

    heads: int
    out_proj: bool
    fvcore_flops: int
    """MACs (fvcore's "flops") of one forward pass."""
    params: int
    by_stage: dict[str, int]
    count: ModuleCount
    """fvcore's analysis as traced (before any W_O correction)."""
    closed_form: dict[str, int]
    flop_counter: FlopCounterCheck | None
    memory: Memory
    notes: tuple[str, ...] = field(default=())
    problems: tuple[str, ...] = field(default=())
    """Disagreements between fvcore, the closed form and FlopCounterMode (empty: all agree)."""

    @property
    def label(self) -> str:
        heads = "1 head" if self.heads == 1 else f"{self.heads} heads"
        return f"{heads}, {'with' if self.out_proj else 'without'} W_O"

    @property
    def flops(self) -> int:
        """2 x MACs."""
        return 2 * self.fvcore_flops

    @property
    def training_flops(self) -> int:
        """Forward + backward (backward = 2 x forward), in FLOPs (2 x MACs)."""
        return TRAINING_FACTOR * self.flops

    @property
    def agree(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        fc = self.flop_counter
        return {
            "heads": self.heads,
            "out_proj": self.out_proj,
            "label": self.label,
            "fvcore_flops": self.fvcore_flops,
            "flops": self.flops,
            "training_fvcore_flops": TRAINING_FACTOR * self.fvcore_flops,
            "training_flops": self.training_flops,
            "params": self.params,
            "by_stage": dict(self.by_stage),
            "stage_sources": {k: list(v) for k, v in self.count.stage_sources.items()},
            "by_operator": dict(self.count.by_operator),
            "by_module": dict(self.count.by_module),
            "uncalled_modules": list(self.count.uncalled_modules),
            "uncounted_ops": [{"op": k, "count": v, "why": UNCOUNTED_WHY.get(k, "no fvcore handle")}
                              for k, v in self.count.uncounted_ops.items()],
            "traced_fvcore_flops": self.count.total,
            "memory": self.memory.to_json(),
            "cross_checks": {
                "closed_form": {"by_stage": dict(self.closed_form),
                                "total": sum(self.closed_form.values()),
                                "agree": self.closed_form == {k: self.by_stage.get(k, 0) for k in STAGES}
                                and sum(self.closed_form.values()) == self.fvcore_flops},
                "flop_counter": None if fc is None else {**fc.to_json(),
                                                         "agree": fc.flops == self.flops and not fc.mismatches},
                "agree": self.agree,
                "problems": list(self.problems),
            },
            "notes": list(self.notes),
        }


def _variant_notes(spec: AttnSpec, count: ModuleCount) -> list[str]:
    from attncli.handles import HANDLES

    notes = []
    for kind in HANDLES:
        n = sum(op.flops for op in count.ops if op.kind == kind)
        if n:
            notes.append(f"fvcore has no handle for {kind}; attncli's counts its {n:,} MACs "
                         "(fvcore alone would count 0)")
    if spec.impl == "torch" and spec.out_proj:
        notes.append("nn.MultiheadAttention calls F.linear on out_proj.weight itself, so fvcore reports "
                     "out_proj as never called; its W_O stage is attributed from that F.linear")
    unknown = [k for k in count.uncounted_ops if k not in UNCOUNTED_WHY]
    if unknown:
        notes.append("fvcore has no handle for " + ", ".join(unknown) +
                     ": counted 0; if any of them multiplies-and-adds, the count is low")
    return notes


def _problems(v_by_stage: Mapping[str, int], total: int, closed: Mapping[str, int],
              fc: FlopCounterCheck | None, stages_add_up: bool) -> list[str]:
    problems = []
    if not stages_add_up or sum(v_by_stage.values()) != total:
        problems.append(f"fvcore's stages add up to {sum(v_by_stage.values()):,}, its total is {total:,}")
    for stage in STAGES:
        got, want = v_by_stage.get(stage, 0), closed[stage]
        if got != want:
            problems.append(f"{stage}: fvcore {got:,} MACs, closed form {CLOSED_FORMS[stage]} = {want:,}")
    if v_by_stage.get("other"):
        problems.append(f"fvcore counted {v_by_stage['other']:,} MACs outside the attention stages")
    if fc is not None:
        if fc.flops != 2 * total:
            problems.append(f"total: fvcore {total:,} MACs = {2 * total:,} FLOPs, "
                            f"FlopCounterMode {fc.flops:,} FLOPs")
        problems.extend(f"FlopCounterMode {m}" for m in fc.mismatches if "not possible" not in m)
        if fc.by_stage is not None:
            for stage in STAGES:
                got, want = fc.by_stage.get(stage, 0), 2 * v_by_stage.get(stage, 0)
                if got != want:
                    problems.append(f"{stage}: FlopCounterMode {got:,} FLOPs, fvcore {want // 2:,} MACs x 2")
    return problems


def count_variant(spec: AttnSpec, dtype: str = "float32", cross_check: bool = True) -> Variant:
    """Count ``spec`` as it is (its heads, its ``out_proj``) on the meta device."""
    from fvcore.nn import parameter_count

    from attncli import modules

    check_representable(spec)
    mem = memory(spec, dtype)
    module = modules.build(spec, "meta")
    inputs = modules.make_inputs(spec, "meta")
    args, kwargs = _call_args(inputs, spec)
    call, tensors = _caller(module, args, kwargs)
    with _without_dynamo_import():
        count = _count(call, tensors)
        fc = flop_counter_check(call, tensors, count.ops) if cross_check else None
    params = int(parameter_count(module)[""])
    by_stage, total = dict(count.by_stage), count.total
    notes = _variant_notes(spec, count)
    if spec.impl == "torch" and not spec.out_proj:
        # NOTE: MHA reads out_proj.weight directly; there is no removing W_O from its forward.
        w_o = by_stage["out_proj"]
        o_params = int(sum(p.numel() for p in module.get_submodule("out_proj").parameters()))
        by_stage["out_proj"] = 0
        total -= w_o
        params -= o_params
        if fc is not None:
            fc_by_stage = None if fc.by_stage is None else {**fc.by_stage, "out_proj": 0}
            fc_w_o = w_o * 2 if fc.by_stage is None else fc.by_stage.get("out_proj", 0)
            fc = FlopCounterCheck(fc.flops - fc_w_o, fc_by_stage, fc.ops, fc.mismatches)
        notes.append(f"nn.MultiheadAttention always applies out_proj (it reads out_proj.weight itself): "
                     f"the traced count includes W_O; its {w_o:,} MACs and out_proj's {o_params:,} "
                     "parameters are subtracted here")
    closed = closed_form(spec)
    problems = _problems(by_stage, total, closed, fc, count.stages_add_up)
    return Variant(spec.heads, spec.out_proj, total, params, by_stage, count, closed, fc, mem,
                   tuple(notes), tuple(problems))


# ---------------------------------------------------------------------------- the report
def variant_specs(spec: AttnSpec) -> list[AttnSpec]:
    """The four variants in the seed's order: 1 head without W_O, H heads with W_O, H heads
    without W_O, 1 head with W_O (two when H = 1)."""
    pairs = [(1, False), (spec.heads, True), (spec.heads, False), (1, True)]
    seen: list[tuple[int, bool]] = []
    for pair in pairs:
        if pair not in seen:
            seen.append(pair)
    return [spec.with_(heads=h, out_proj=o) for h, o in seen]


@dataclass(frozen=True)
class FlopsReport:
    """Everything ``attncli flops`` shows for one spec."""

    spec: AttnSpec
    dtype: str
    variants: tuple[Variant, ...]
    notes: tuple[str, ...] = field(default=())

    def get(self, heads: int, out_proj: bool) -> Variant | None:
        for v in self.variants:
            if v.heads == heads and v.out_proj == out_proj:
                return v
        return None

    def _delta(self, a: tuple[int, bool], b: tuple[int, bool]) -> int | None:
        va, vb = self.get(*a), self.get(*b)
        return None if va is None or vb is None else va.fvcore_flops - vb.fvcore_flops

    @property
    def heads_cost(self) -> int | None:
        """MACs that splitting into H heads adds (with W_O); None when H = 1."""
        if self.spec.heads == 1:
            return None
        return self._delta((self.spec.heads, True), (1, True))

    @property
    def out_proj_cost(self) -> int | None:
        """MACs W_O adds to H heads."""
        return self._delta((self.spec.heads, True), (self.spec.heads, False))

    @property
    def out_proj_percent(self) -> float | None:
        base = self.get(self.spec.heads, False)
        cost = self.out_proj_cost
        return None if base is None or cost is None or not base.fvcore_flops else 100.0 * cost / base.fvcore_flops

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(f"{v.label}: {p}" for v in self.variants for p in v.problems)

    @property
    def agree(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        pct = self.out_proj_percent
        return {
            "schema": SCHEMA,
            "config": {**self.spec.to_dict(), "dtype": self.dtype},
            "convention": dict(CONVENTION),
            "closed_forms": dict(CLOSED_FORMS),
            "variants": [v.to_json() for v in self.variants],
            "conclusion": {"heads_cost": self.heads_cost, "out_proj_cost": self.out_proj_cost,
                           "out_proj_percent": None if pct is None else round(pct, 4)},
            "cross_checks": {
                "closed_form": "per stage from B, L, S, E, kdim, vdim (see closed_forms)",
                "flop_counter": "torch.utils.flop_counter.FlopCounterMode on the meta device, 2 per MAC",
                "agree": self.agree,
                "problems": list(self.problems),
            },
            "notes": list(self.notes),
        }


def count_flops(spec: AttnSpec, dtype: str = "float32", cross_check: bool = True) -> FlopsReport:
    """The four (heads, W_O) variants of ``spec``, counted on the meta device."""
    memory(spec, dtype)  # validates --dtype before any work
    check_representable(spec)  # H heads: the largest attention matrix of the four
    variants = tuple(count_variant(s, dtype, cross_check) for s in variant_specs(spec))
    notes = []
    if spec.mask != "none":
        notes.append(f"--mask {spec.mask}: masked scores are still computed; the count is dense")
    if spec.impl == "sdpa" or (spec.impl == "torch" and not spec.need_weights):
        notes.append("a fused SDPA kernel (flash / memory-efficient) need not materialise the "
                     "attention matrix; the memory shown is what the math path holds")
    return FlopsReport(spec, dtype, variants, tuple(notes))


# ---------------------------------------------------------------------------- a user's module
@dataclass(frozen=True)
class ModuleFlops:
    """``attncli flops --module``: a user's module counted with the same handles and checks.

    The closed form is that of standard attention of the same sizes: a reference for the
    reader, not a requirement (the module may differ), so it is reported, not enforced.
    """

    ref: str
    spec: AttnSpec
    params: int
    count: ModuleCount
    flop_counter: FlopCounterCheck
    reference: dict[str, int]
    problems: tuple[str, ...]

    @property
    def agree(self) -> bool:
        return not self.problems

    @property
    def matches_reference(self) -> bool:
        return self.count.total == sum(self.reference.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "config": {**self.spec.to_dict(), "module": self.ref},
            "convention": dict(CONVENTION),
            "variants": [{
                "heads": self.spec.heads, "out_proj": self.spec.out_proj, "label": f"{self.ref} as built",
                "fvcore_flops": self.count.total, "flops": 2 * self.count.total,
                "training_flops": TRAINING_FACTOR * 2 * self.count.total, "params": self.params,
                "by_stage": dict(self.count.by_stage), "by_module": dict(self.count.by_module),
                "by_operator": dict(self.count.by_operator),
                "uncounted_ops": [{"op": k, "count": v, "why": UNCOUNTED_WHY.get(k, "no fvcore handle")}
                                  for k, v in self.count.uncounted_ops.items()],
                "cross_checks": {"flop_counter": {**self.flop_counter.to_json(),
                                                  "agree": self.flop_counter.flops == 2 * self.count.total},
                                 "agree": self.agree, "problems": list(self.problems)},
            }],
            "reference": {"what": "closed form of standard attention with these sizes (H heads with W_O)",
                          "by_stage": dict(self.reference), "total": sum(self.reference.values()),
                          "matches": self.matches_reference},
            "cross_checks": {"agree": self.agree, "problems": list(self.problems)},
        }


def count_user_module(ref: str, spec: AttnSpec) -> ModuleFlops:
    """Build ``ref`` (``pkg.mod:factory``) on meta, count it, and cross-check with FlopCounterMode."""
    from fvcore.nn import parameter_count

    from attncli import modules, usermodule

    check_representable(spec)
    module = usermodule.build_user(ref, spec, "meta")
    inputs = modules.make_inputs(spec.with_(mask="none"), "meta")
    args = usermodule.user_args(module, inputs.query, inputs.key, inputs.value)
    usermodule.run_user(module, args, ref)  # a clear --module error before tracing
    call, tensors = _caller(module, args, {})
    try:
        with _without_dynamo_import():
            count = _count(call, tensors)
            fc = flop_counter_check(call, tensors, count.ops)
    except Exception as exc:  # NOTE: tracing user code can fail in many ways
        raise SpecError("--module", f"{ref} cannot be traced for counting: {type(exc).__name__}: {exc}") from None
    problems = []
    if fc.flops != 2 * count.total:
        problems.append(f"total: fvcore {count.total:,} MACs = {2 * count.total:,} FLOPs, "
                        f"FlopCounterMode {fc.flops:,} FLOPs")
    problems += [f"FlopCounterMode {m}" for m in fc.mismatches if "not possible" not in m]
    return ModuleFlops(ref, spec, int(parameter_count(module)[""]), count, fc,
                       closed_form(spec.with_(out_proj=True)), tuple(problems))
