"""The tracing engine: fvcore's FlopCountAnalysis with attncli's op handles, on any module.

:func:`caller` wraps a module and its call (tensors, masks, flags) into a module jit.trace can
run; :func:`trace_count` traces it with every handle of :mod:`attncli.engine.handles` and returns a
:class:`ModuleCount`: the total, per stage, per operator and per module, and the ops fvcore met
and left uncounted. :func:`count_module` does both for a module and its inputs. Counts are
MACs (see :mod:`attncli.layer.formulas` for the convention). Importing this module does not import
torch; tracing does.

NOTE: the first meta-device trace of a process imports ``torch._dynamo`` through torch's meta
kernels (about 1.3 s); the CLI answers that import with a placeholder while it counts
(:mod:`attncli.cli.runtime`). The library does not touch ``sys.modules``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attncli.choices import OTHER, STAGES
from attncli.spec import AttnSpec

if TYPE_CHECKING:
    from torch import Tensor, nn

    from attncli.engine.handles import OpCount
    from attncli.layer.modules import Inputs


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


def caller(layer: nn.Module, args: Sequence[Tensor], kwargs: Mapping[str, Any]
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


def relative_name(name: str) -> str:
    """``layer.W_q`` -> ``W_q``; the wrapper and ``layer`` itself -> ``""``."""
    return name[len("layer."):] if name.startswith("layer.") else ""


def _has_forward(module: nn.Module) -> bool:
    from torch import nn

    return type(module).forward not in (nn.Module.forward, nn.Identity.forward,
                                        nn.ModuleList.forward, nn.ModuleDict.forward)


def stage_totals(ops: Sequence[OpCount], stages: Sequence[str]
                 ) -> tuple[dict[str, int], dict[str, tuple[str, ...]]]:
    """MACs by stage and, per stage, the modules and operators they came from (``heads.*.q: matmul``)."""
    by_stage = dict.fromkeys(stages, 0)
    sources: dict[str, list[str]] = {}
    for op in ops:
        for stage, n in op.stages:
            by_stage[stage] = by_stage.get(stage, 0) + n
            # NOTE: heads.0.q, heads.1.q, ... -> heads.*.q: one line per kind of module.
            scope = ".".join("*" if part.isdigit() else part for part in relative_name(op.scope).split("."))
            where = f"{scope or '(layer)'}: {op.kind}"
            if where not in sources.setdefault(stage, []):
                sources[stage].append(where)
    if not by_stage.get(OTHER):
        by_stage.pop(OTHER, None)
    return by_stage, {k: tuple(v) for k, v in sources.items()}


def trace_count(call: nn.Module, tensors: tuple[Tensor, ...], stages: Sequence[str] = STAGES,
                relabel: Callable[[str, str], str] | None = None) -> ModuleCount:
    """Trace ``call(*tensors)`` with fvcore and attncli's handles.

    ``stages`` are the layer's stage names (its kind's, :mod:`attncli.kinds`), every one present
    in ``by_stage``; ``relabel(scope, stage)`` renames the stage the data-flow rules gave an op
    run in submodule ``scope`` (a kind whose stages are not q/k/v/W_O names them so).
    """
    from fvcore.nn import FlopCountAnalysis

    from attncli.engine.handles import OpCount, StageRecorder, all_handles

    recorder = StageRecorder(len(tensors), all_handles())
    analysis = (FlopCountAnalysis(call, tensors).set_op_handle(**recorder.handles())
                .unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                .tracer_warnings("none"))
    total = int(analysis.total())
    records = list(recorder.records)
    if relabel is not None:
        renamed = []
        for op in records:
            merged: dict[str, int] = {}
            for stage, n in op.stages:
                new = relabel(relative_name(op.scope), stage)
                merged[new] = merged.get(new, 0) + n
            renamed.append(OpCount(op.kind, op.scope, op.flops, tuple(merged.items())))
        records = renamed
    by_stage, sources = stage_totals(records, stages)
    named = dict(call.named_modules())
    by_module = {relative_name(k): int(v) for k, v in analysis.by_module().items() if k}
    uncalled = tuple(sorted(relative_name(k) for k in analysis.uncalled_modules()
                            if k in named and _has_forward(named[k])))
    return ModuleCount(
        total=total,
        by_stage=by_stage,
        by_operator={k: int(v) for k, v in analysis.by_operator().items()},
        by_module=by_module,
        stage_sources=sources,
        uncounted_ops=dict(sorted(analysis.unsupported_ops().items())),
        uncalled_modules=uncalled,
        ops=tuple(records),
    )


def call_args(inputs: Inputs | Sequence[Tensor], spec: AttnSpec | None
               ) -> tuple[tuple[Tensor, ...], dict[str, Any]]:
    from attncli.layer.modules import Inputs

    if isinstance(inputs, Inputs):
        if spec is None:
            raise TypeError("count_module: pass the spec with modules.Inputs (it holds the forward flags)")
        kwargs = {k: v for k, v in inputs.kwargs(spec).items() if v is not None}
        return (inputs.query, inputs.key, inputs.value), kwargs
    return tuple(inputs), {}


def count_module(module: nn.Module, inputs: Inputs | Sequence[Tensor],
                 spec: AttnSpec | None = None) -> ModuleCount:
    """Count one forward pass of ``module`` with fvcore and attncli's handles.

    ``inputs`` is either :class:`attncli.layer.modules.Inputs` with its ``spec`` (the module is called
    the way ``nn.MultiheadAttention`` is: query, key, value, masks and flags), or a sequence of
    tensors passed positionally (``module(x)``, ``module(q, k, v)``). Use meta tensors (and a
    module on the meta device) for any size at no memory cost.
    """
    args, kwargs = call_args(inputs, spec)
    call, tensors = caller(module, args, kwargs)
    return trace_count(call, tensors)


