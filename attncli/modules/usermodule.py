"""``--module pkg.mod:factory``: shape and count an attention module the user wrote, fenced.

:mod:`attncli.modules.userload` imports the reference, builds the module and runs it (on the meta
device, or on real CPU tensors when meta cannot run it and the memory model says the size
fits); this module reports on what it built: :func:`user_shapes` (``attncli shapes --module``)
and :func:`count_user_module` (``attncli flops --module``, with the same fvcore handles, stages
and FlopCounterMode cross-check as the built-in layers). It re-exports
:mod:`attncli.modules.userload`'s names, so ``from attncli.modules.usermodule import load_factory`` keeps
working.

The user's code runs with the user's rights; attncli only fences it (:func:`attncli.modules.fence.fenced`):
its stdout goes to stderr (attncli's stdout stays the report), anything it raises
(``SystemExit`` and ``KeyboardInterrupt`` included) becomes one :class:`~attncli.spec.SpecError`
line, and a watchdog thread ends import + build + run after ``--module-timeout`` seconds.
Nothing here imports torch at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attncli.analyses.checks import Counted
from attncli.choices import OTHER
from attncli.engine.handles import SDPA, UNCOUNTED_WHY
from attncli.layer.formulas import CONVENTION, TRAINING_FACTOR, Memory
from attncli.modules.calling import CallPlan
from attncli.modules.fence import DEFAULT_TIMEOUT, FLAG, fenced, one_line
from attncli.modules.userload import (
    INSTALL_HINTS,
    Prepared,
    build_user,
    load_factory,
    prepare,
    prepare_and_run,
    refuse_flags,
    run_user,
)
from attncli.spec import AttnSpec, SpecError

if TYPE_CHECKING:
    from attncli.engine.crosscheck import FlopCounterCheck
    from attncli.engine.handles import OpCount
    from attncli.engine.trace import ModuleCount
    from attncli.kinds.base import Kind

__all__ = ["INSTALL_HINTS", "OTHER_RULE", "SCHEMA", "ModuleFlops", "Prepared", "UserShapes", "build_user",
           "count_user_module", "load_factory", "prepare", "prepare_and_run", "refuse_flags", "run_user",
           "user_shapes"]

SCHEMA = "attncli.flops/2"

ATTENTION_STAGES: tuple[str, ...] = ("qk", "av")
"""The stages that make a module attention: a module in which neither was traced (a bare
``nn.Linear``) exits 2 instead of being costed as an attention layer."""

OTHER_RULE = ("an op that is neither a projection nor attention (a norm, a gate) is counted as fvcore's own "
              "handle counts it (layer_norm: 5 per element with an affine, 4 without) and shown under 'other' "
              "with its op name; it is in the total, in no attention stage")


# ---------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class UserShapes:
    """``attncli shapes --module``: what can be known of a module written elsewhere."""

    ref: str
    spec: AttnSpec
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    weights: tuple[tuple[str, tuple[int, ...], int], ...]
    plan: CallPlan | None = None
    notes: tuple[str, ...] = ()

    @property
    def total_params(self) -> int:
        return sum(n for _, _, n in self.weights)

    def to_json(self) -> dict[str, Any]:
        names = ["input"] if len(self.input_shapes) == 1 else ["input", "key_input", "value_input"]
        return {
            "schema": "attncli.shapes/1",
            "config": {**self.spec.to_dict(), "impl": "module", "module": self.ref,
                       "call": None if self.plan is None else self.plan.to_json()},
            "stages": [*({"name": n, "shape": list(s)} for n, s in zip(names, self.input_shapes, strict=True)),
                       {"name": "output", "shape": list(self.output_shape)}],
            "weights": [{"name": n, "shape": list(s), "numel": k} for n, s, k in self.weights],
            "params": {"total": self.total_params},
            "outputs": {"attn_output": list(self.output_shape), "attn_weights": None},
            "notes": ["inner stages of a user's module are not known to attncli; its inputs, output, "
                      "weights and parameters are", *self.notes],
        }


def user_shapes(ref: str, spec: AttnSpec, call: str | None = None, typed: set[str] | frozenset[str] = frozenset(),
                timeout: float | None = DEFAULT_TIMEOUT, last_resort: Callable[[str], None] | None = None
                ) -> UserShapes:
    """Build and run ``ref`` on meta tensors of the spec's sizes (fenced; see :func:`fenced`)."""
    with fenced(ref, timeout, last_resort):
        p, out = prepare_and_run(ref, spec, call, typed)
        weights = tuple((n.removeprefix("attn."), tuple(w.shape), w.numel()) for n, w in p.module.named_parameters())
    return UserShapes(ref, p.spec, tuple(tuple(a.shape) for a in p.args), tuple(out.shape), weights, p.plan,
                      p.notes)


# ---------------------------------------------------------------------------- counting
@dataclass(frozen=True)
class ModuleFlops:
    """``attncli flops --module``: a user's module counted with the same handles and checks.

    ``closed`` is the closed form of the layer's kind (:func:`attncli.registry.kind_of`: standard
    attention, or multi-head latent attention for an MLA class such as ``DeepseekV3Attention``)
    with the sizes the module was built with (W_O when it was counted): a reference for the
    reader, not a requirement (the module may differ), so it is reported, not enforced; so are
    the kind's parameters (:attr:`closed_params`).
    """

    ref: str
    spec: AttnSpec
    params: int
    count: ModuleCount
    flop_counter: FlopCounterCheck
    closed: dict[str, int]
    effective_by_stage: dict[str, int]
    memory: Memory
    problems: tuple[str, ...]
    plan: CallPlan | None = None
    device: str = "meta"
    notes: tuple[str, ...] = field(default=())
    extra_params: tuple[tuple[str, int, str], ...] = ()
    """(name, count, what) of parameters the class holds beyond its kind's closed form."""

    @property
    def reference(self) -> dict[str, int]:
        return self.closed

    @property
    def kind(self) -> Kind:
        """The kind of layer the module was built as (its closed forms, stages and labels)."""
        from attncli.registry import kind_of

        return kind_of(self.spec)

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages of the layer's kind, in the order they run."""
        return tuple(self.kind.stages(self.spec))

    @property
    def layer_name(self) -> str:
        """``standard attention``, ``multi-head latent attention (naive form)``: what the closed form is of."""
        return layer_name(self.spec)

    @property
    def closed_params(self) -> dict[str, int]:
        """The parameters the kind's closed form gives, by part, and ``total``, with the class's own
        parameters that the kind leaves out (:attr:`extra_params`: gpt-oss's sinks, qk-norms)."""
        parts = dict(self.kind.params(self.spec))
        total = parts.pop("total")
        for name, n, _ in self.extra_params:
            if name not in parts:  # NOTE: a layer read from its model's config counts its sinks and norms itself
                parts[name] = n
                total += n
        return {**parts, "total": total}

    @property
    def params_match(self) -> bool:
        return self.params == self.closed_params["total"]

    @property
    def dtype(self) -> str:
        """The dtype the memory estimate is for (``--dtype``)."""
        return self.memory.dtype

    @property
    def pairs(self) -> tuple[int, int]:
        """(visible, dense) (query, key) pairs of one batch item and head, under the layer's mask."""
        from attncli.layer.visibility import dense_pairs, spec_visible_pairs

        return spec_visible_pairs(self.spec), dense_pairs(self.spec)

    @property
    def effective_total(self) -> int:
        """Effective MACs: the visible pairs only (equal to the dense count without a mask), with the ops
        outside the attention stages (``other``: a norm, a gate) as counted: the table's effective total."""
        return sum(self.effective_by_stage.values()) + sum(self.other_ops.values())

    @property
    def masked(self) -> bool:
        """Whether a mask hides pairs, so the effective count differs from the dense one."""
        visible, dense = self.pairs
        return visible != dense

    @property
    def out_proj_cost(self) -> int | None:
        """MACs of the counted W_O (None when the module has none)."""
        return self.count.by_stage.get("out_proj", 0) if self.out_proj else None

    @property
    def out_proj_percent(self) -> float | None:
        """What W_O adds, in percent of the module without it."""
        cost = self.out_proj_cost
        base = self.count.total - (cost or 0)
        return None if cost is None or not base else 100.0 * cost / base

    @property
    def agree(self) -> bool:
        return not self.problems

    @property
    def out_proj(self) -> bool:
        """True only when a W_O was counted."""
        return self.count.by_stage.get("out_proj", 0) > 0

    @property
    def variants(self) -> tuple[Counted, ...]:
        """The module as built, as the budget and baseline checks read it."""
        return (Counted(self.spec.heads, self.out_proj, self.count.total, self.params),)

    @property
    def attention_total(self) -> int:
        return sum(self.count.by_stage.get(k, 0) for k in self.stages)

    @property
    def matches_reference(self) -> bool:
        return all(self.count.by_stage.get(k, 0) == self.closed.get(k, 0) for k in self.stages)

    @property
    def other_ops(self) -> dict[str, int]:
        """Counted ops outside the attention stages, by op name, with their MACs."""
        out: dict[str, int] = {}
        for op in self.count.ops:
            n = sum(v for st, v in op.stages if st == OTHER)
            if n:
                out[op.kind] = out.get(op.kind, 0) + n
        return out

    def to_json(self) -> dict[str, Any]:
        total = self.count.total
        fc = self.flop_counter
        fc_expected = 2 * (total - fc.skipped_macs)
        eff = self.effective_total
        visible, dense = self.pairs
        pct = self.out_proj_percent
        by_stage = {k: self.count.by_stage.get(k, 0) for k in self.stages}
        what = f"{self.layer_name} with the sizes the module was built with (reported, not enforced)"
        closed_params = self.closed_params
        if self.count.by_stage.get(OTHER):
            by_stage[OTHER] = self.count.by_stage[OTHER]
        return {
            "schema": SCHEMA,
            "config": {**self.spec.to_dict(), "impl": "module", "module": self.ref, "device": self.device,
                       "call": None if self.plan is None else self.plan.to_json(), "dtype": self.dtype},
            "convention": dict(CONVENTION),
            "closed_forms": dict(self.kind.closed_form_texts(self.spec)),
            "variants": [{
                "heads": self.spec.heads, "out_proj": self.out_proj, "label": f"{self.ref} as built",
                "configured": True, "fvcore_flops": total, "flops": 2 * total,
                "effective_fvcore_flops": eff, "effective_flops": 2 * eff,
                "training_fvcore_flops": TRAINING_FACTOR * total, "training_flops": TRAINING_FACTOR * 2 * total,
                "params": self.params,
                "by_stage": by_stage,
                "effective": {"fvcore_flops": eff, "flops": 2 * eff, "by_stage": dict(self.effective_by_stage),
                              "visible_pairs": visible, "dense_pairs": dense},
                "other_ops": [{"op": k, "fvcore_flops": v, "counted": True} for k, v in self.other_ops.items()],
                "other_rule": OTHER_RULE,
                "memory": self.memory.to_json(),
                "stage_sources": {k: list(v) for k, v in self.count.stage_sources.items()},
                "by_module": dict(self.count.by_module), "by_operator": dict(self.count.by_operator),
                "uncalled_modules": list(self.count.uncalled_modules),
                "traced_fvcore_flops": self.count.total,
                "uncounted_ops": [{"op": k, "count": v, "why": UNCOUNTED_WHY.get(k, "no fvcore handle")}
                                  for k, v in self.count.uncounted_ops.items()],
                "cross_checks": {
                    "closed_form": {"what": what,
                                    "by_stage": dict(self.closed), "total": sum(self.closed.values()),
                                    "agree": self.matches_reference,
                                    "params": {"by_part": closed_params, "total": closed_params["total"],
                                               "agree": self.params_match}},
                    "flop_counter": {**fc.to_json(), "agree": fc.flops == fc_expected},
                    "agree": self.agree, "problems": list(self.problems)},
                "notes": list(self.notes),
            }],
            # NOTE: no heads_cost: a user's module is counted once, as built; there is no one-head
            # variant to compare it with.
            "conclusion": {"matches_closed_form": self.matches_reference, "out_proj_counted": self.out_proj,
                           "attention_fvcore_flops": self.attention_total,
                           "other_fvcore_flops": self.count.by_stage.get(OTHER, 0),
                           "out_proj_cost": self.out_proj_cost,
                           "out_proj_percent": None if pct is None else round(pct, 4)},
            "reference": {"what": f"closed form of {self.layer_name} with these sizes",
                          "by_stage": dict(self.closed), "total": sum(self.closed.values()),
                          "matches": self.matches_reference},
            "cross_checks": {
                "closed_form": f"per stage, {self.layer_name} with the sizes the module was built with "
                               "(see closed_forms; reported, not enforced)",
                "flop_counter": f"torch.utils.flop_counter.FlopCounterMode on the {self.device} device, 2 per MAC",
                "agree": self.agree, "problems": list(self.problems)},
            "notes": list(self.notes),
        }


def _restaged(count: ModuleCount, ops: tuple[OpCount, ...], stages: tuple[str, ...]) -> ModuleCount:
    """``count`` with its ops' stages replaced by ``ops``' (same ops, same MACs): by stage and sources again."""
    from dataclasses import replace

    from attncli.engine.trace import stage_totals

    by_stage, sources = stage_totals(ops, stages)
    return replace(count, by_stage=by_stage, stage_sources=sources, ops=ops)


def layer_name(spec: AttnSpec) -> str:
    """What a module's closed form is of: ``standard attention``, ``multi-head latent attention (naive form)``."""
    from attncli.registry import title

    name = title(spec.kind).split(" (")[0]
    return name if spec.form is None else f"{name} ({spec.form} form)"


def _mask_notes(ref: str, spec: AttnSpec) -> list[str]:
    """What the layer's own mask hides: the dense count charges every pair, the effective one not."""
    from attncli.layer.visibility import dense_pairs, spec_visible_pairs

    visible, dense = spec_visible_pairs(spec), dense_pairs(spec)
    if visible == dense:
        return []
    what = f"window {spec.window}" if spec.window is not None else f"{spec.mask} mask"
    return [f"{ref} applies its own {what}: the dense count charges all {dense:,} (query, key) pairs per head, "
            f"as fvcore and FlopCounterMode do; the effective count only the {visible:,} visible "
            f"({100 * visible / dense:.1f}%)"]


def count_user_module(ref: str, spec: AttnSpec, call: str | None = None,
                      typed: set[str] | frozenset[str] = frozenset(), timeout: float | None = DEFAULT_TIMEOUT,
                      dtype: str = "float32", last_resort: Callable[[str], None] | None = None) -> ModuleFlops:
    """Build ``ref`` on meta (fenced; see :func:`fenced`), count it, and cross-check with FlopCounterMode."""
    from fvcore.nn import parameter_count

    from attncli.engine.crosscheck import flop_counter_check
    from attncli.engine.trace import caller, trace_count
    from attncli.modules.hfcall import split_fused
    from attncli.registry import kind_of

    kind_of(spec).check_representable(spec)
    with fenced(ref, timeout, last_resort):
        p, _ = prepare_and_run(ref, spec, call, typed, dtype)
        kind = kind_of(p.spec)
        stages = kind.stages(p.spec)
        call_module, tensors = caller(p.module, p.args, {})
        try:
            count = trace_count(call_module, tensors, stages, kind.relabel)
            if p.hf is not None and p.hf.fused:
                count = _restaged(count, split_fused(count.ops, p.hf.fused), stages)
            fc = flop_counter_check(call_module, tensors, count.ops, stages)
        except SpecError:
            raise
        except (Exception, SystemExit) as exc:  # NOTE: tracing user code can fail in many ways
            raise SpecError(FLAG, f"{ref} cannot be traced for counting: {type(exc).__name__}: "
                                  f"{one_line(exc)}") from exc
        params = int(parameter_count(p.module)[""])
    if not any(count.by_stage.get(k, 0) for k in ATTENTION_STAGES):
        raise SpecError(FLAG, f"no attention found in {ref} (no QK^T or weights x V was traced)")
    problems = []
    # NOTE: on real CPU tensors FlopCounterMode counts SDPA as 0 (GUIDE's measured trap): there the
    # comparison leaves fvcore's SDPA MACs out too, and says so, instead of failing a correct module.
    sdpa_macs = sum(op.flops for op in count.ops if op.kind == SDPA) if p.device == "cpu" else 0
    if fc.flops != 2 * (count.total - fc.skipped_macs - sdpa_macs):
        problems.append(f"total: fvcore {count.total:,} MACs = {2 * count.total:,} FLOPs, "
                        f"FlopCounterMode {fc.flops:,} FLOPs")
    problems += [f"FlopCounterMode {m}" for m in fc.mismatches
                 if "not possible" not in m and not (sdpa_macs and SDPA in m)]
    notes = list(p.notes)
    notes += [f"FlopCounterMode has no formula for {k}: the total it is compared with leaves out fvcore's "
              f"{n:,} MACs of it" for k, n in fc.skipped]
    notes += [f"FlopCounterMode: {m}" for m in fc.mismatches if "not possible" in m]
    if sdpa_macs:
        notes.append(f"counted on CPU tensors: FlopCounterMode counts 0 for SDPA there (torch 2.13), so its "
                     f"total is compared without fvcore's {sdpa_macs:,} SDPA MACs")
    built = p.spec.with_(out_proj=count.by_stage.get("out_proj", 0) > 0)
    notes += _mask_notes(ref, built)
    closed = kind.closed_form(built)
    eff, eff_problems = kind.effective(built, {k: count.by_stage.get(k, 0) for k in stages})
    extra = p.hf.sizes.extra_params if p.hf is not None else ()
    return ModuleFlops(ref, built, params, count, fc, closed, eff, kind.memory(built, dtype),
                       tuple(problems) + eff_problems, p.plan, p.device, tuple(notes), extra)
