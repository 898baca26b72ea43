"""Honest fvcore FLOPs for attention: one head and H heads, with and without W_O, at any size.

This module assembles the report; the pieces live beside it:

- :mod:`attncli.layer.formulas`: the counting convention, closed forms, memory and size limits (no torch);
- :mod:`attncli.engine.trace` and :mod:`attncli.engine.handles`: the layer is built on the **meta** device
  and traced by fvcore with attncli's op handles (fvcore alone loses the attention matmuls of
  SDPA and ``baddbmm``), every counted op attributed to a stage;
- :mod:`attncli.engine.crosscheck`: FlopCounterMode on the same call, lined up per stage.

Every count is checked against the closed form per stage and against FlopCounterMode; a
disagreement is a ``problem`` of the variant. :func:`count_flops` is what ``attncli flops``
shows; :func:`count_variant` counts one spec. Results are frozen dataclasses with
``to_json()``. Importing this module does not import torch; counting does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from attncli.analyses.roofline import Roofline
from attncli.choices import CLOSED_FORMS, STAGE_LABELS, STAGES
from attncli.engine.crosscheck import FlopCounterCheck, flop_counter_check
from attncli.engine.handles import UNCOUNTED_WHY
from attncli.engine.trace import ModuleCount, caller, count_module, trace_count
from attncli.layer.formulas import (
    CONVENTION,
    TRAINING_FACTOR,
    Memory,
    check_representable,
    closed_form,
    memory,
)
from attncli.layer.visibility import cached_tokens, dense_pairs
from attncli.registry import kind_of
from attncli.spec import AttnSpec

__all__ = [
    "CLOSED_FORMS", "CONVENTION", "SCHEMA", "STAGES", "STAGE_LABELS", "TRAINING_FACTOR", "UNCOUNTED_WHY",
    "FlopCounterCheck", "FlopsReport", "Memory", "ModuleCount", "Variant", "check_representable",
    "closed_form", "count_flops", "count_module", "count_variant", "flop_counter_check", "memory",
    "variant_specs",
]

SCHEMA = "attncli.flops/2"
"""2: variants in the table's order with ``configured`` and ``effective_flops``; the roofline's
fused estimate says ``effective_flops`` (docs/json-changes.md)."""



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
    effective_by_stage: dict[str, int] = field(default_factory=dict)
    """MACs per stage counting only the (query, key) pairs a mask leaves visible."""
    pairs: tuple[int, int] = (0, 0)
    """(visible, dense) (query, key) pairs of one batch item and head."""
    spec: AttnSpec | None = field(default=None, compare=False)
    """The settings this variant was counted with (its kind names its stages and label)."""

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages of this variant's kind and form, in the order they run."""
        return STAGES if self.spec is None else kind_of(self.spec).stages(self.spec)

    @property
    def effective_fvcore_flops(self) -> int:
        """Effective MACs: the visible pairs only (equal to the dense count without a mask)."""
        return sum(self.effective_by_stage.values())

    @property
    def label(self) -> str:
        if self.spec is not None:
            return kind_of(self.spec).variant_label(self.spec)
        heads = "1 head" if self.heads == 1 else f"{self.heads} heads"
        return f"{heads}, {'with' if self.out_proj else 'without'} W_O"

    @property
    def form(self) -> str | None:
        """MLA's form (naive or absorbed) of this variant; None for other kinds."""
        return None if self.spec is None else self.spec.form

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

    def to_json(self, configured: bool = False) -> dict[str, Any]:
        """The variant's object; ``configured``: it is the layer as the user set it up."""
        fc = self.flop_counter
        return {
            "heads": self.heads,
            "out_proj": self.out_proj,
            **({} if self.form is None else {"form": self.form}),
            "label": self.label,
            "configured": configured,
            "fvcore_flops": self.fvcore_flops,
            "flops": self.flops,
            "effective_fvcore_flops": self.effective_fvcore_flops,
            "effective_flops": 2 * self.effective_fvcore_flops,
            "training_fvcore_flops": TRAINING_FACTOR * self.fvcore_flops,
            "training_flops": self.training_flops,
            "params": self.params,
            "by_stage": dict(self.by_stage),
            "effective": {"fvcore_flops": self.effective_fvcore_flops, "flops": 2 * self.effective_fvcore_flops,
                          "by_stage": dict(self.effective_by_stage),
                          "visible_pairs": self.pairs[0], "dense_pairs": self.pairs[1]},
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
                                "agree": self.closed_form == {k: self.by_stage.get(k, 0) for k in self.stages}
                                and sum(self.closed_form.values()) == self.fvcore_flops},
                "flop_counter": None if fc is None else {**fc.to_json(),
                                                         "agree": fc.flops == self.flops and not fc.mismatches},
                "agree": self.agree,
                "problems": list(self.problems),
            },
            "notes": list(self.notes),
        }


def _variant_notes(spec: AttnSpec, count: ModuleCount) -> list[str]:
    from attncli.engine.handles import HANDLES

    notes = []
    for kind in HANDLES:
        n = sum(op.flops for op in count.ops if op.kind == kind)
        if n:
            notes.append(f"fvcore has no handle for {kind}; attncli counts its {n:,} MACs "
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
              fc: FlopCounterCheck | None, stages_add_up: bool,
              stages: Sequence[str] = STAGES, texts: Mapping[str, str] = CLOSED_FORMS) -> list[str]:
    problems = []
    if not stages_add_up or sum(v_by_stage.values()) != total:
        problems.append(f"fvcore's stages add up to {sum(v_by_stage.values()):,}, its total is {total:,}")
    for stage in stages:
        got, want = v_by_stage.get(stage, 0), closed[stage]
        if got != want:
            problems.append(f"{stage}: fvcore {got:,} MACs, closed form {texts[stage]} = {want:,}")
    if v_by_stage.get("other"):
        problems.append(f"fvcore counted {v_by_stage['other']:,} MACs outside the attention stages")
    if fc is not None:
        if fc.flops != 2 * total:
            problems.append(f"total: fvcore {total:,} MACs = {2 * total:,} FLOPs, "
                            f"FlopCounterMode {fc.flops:,} FLOPs")
        problems.extend(f"FlopCounterMode {m}" for m in fc.mismatches if "not possible" not in m)
        if fc.by_stage is not None:
            for stage in stages:
                got, want = fc.by_stage.get(stage, 0), 2 * v_by_stage.get(stage, 0)
                if got != want:
                    problems.append(f"{stage}: FlopCounterMode {got:,} FLOPs, fvcore {want // 2:,} MACs x 2")
    return problems


def count_variant(spec: AttnSpec, dtype: str = "float32", cross_check: bool = True) -> Variant:
    """Count ``spec`` as it is (its kind, heads, ``out_proj`` and form) on the meta device."""
    from fvcore.nn import parameter_count

    kind = kind_of(spec)
    kind.check_representable(spec)
    mem = kind.memory(spec, dtype)
    module, args, kwargs = kind.build_call(spec, "meta")
    call, tensors = caller(module, args, kwargs)
    stages = kind.stages(spec)
    count = trace_count(call, tensors, stages, kind.relabel)
    fc = flop_counter_check(call, tensors, count.ops, stages) if cross_check else None
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
    closed = kind.closed_form(spec)
    problems = _problems(by_stage, total, closed, fc, count.stages_add_up, stages, kind.closed_form_texts(spec))
    want_params = kind.params(spec)["total"]
    if params != want_params:
        problems.append(f"params: the module holds {params:,}, the closed form {want_params:,}")
    eff, eff_problems = kind.effective(spec, by_stage)
    return Variant(spec.heads, spec.out_proj, total, params, by_stage, count, closed, fc, mem,
                   tuple(notes), tuple(problems) + eff_problems, eff, (kind.visible_pairs(spec), dense_pairs(spec)),
                   spec)


# ---------------------------------------------------------------------------- the report
def variant_specs(spec: AttnSpec) -> list[AttnSpec]:
    """The variants ``attncli flops`` counts for ``spec``'s kind, the layer as configured first
    (standard: the seed's four (heads, W_O) pairs; MLA: its form and the other form)."""
    return kind_of(spec).variant_specs(spec)


@dataclass(frozen=True)
class FlopsReport:
    """Everything ``attncli flops`` shows for one spec."""

    spec: AttnSpec
    dtype: str
    variants: tuple[Variant, ...]
    notes: tuple[str, ...] = field(default=())
    roofline: Roofline | None = None
    """The layer as configured on ``--gpu`` (estimated: an upper bound on speed), or None."""

    def get(self, heads: int, out_proj: bool) -> Variant | None:
        for v in self.variants:
            if v.heads == heads and v.out_proj == out_proj:
                return v
        return None

    @property
    def configured(self) -> Variant:
        """The layer as configured: H heads with W_O (MLA: its own form, counted first)."""
        return self.get(self.spec.heads, True) or self.variants[0]

    @property
    def ordered(self) -> list[Variant]:
        """The variants in the order the tables and the JSON show them: the layer as configured,
        then without W_O, with one head, and with neither."""
        ref = self.configured
        rank = {(ref.heads, True): 0, (ref.heads, False): 1, (1, True): 2, (1, False): 3}
        return sorted(self.variants, key=lambda v: (v is not ref, rank.get((v.heads, v.out_proj), 4)))

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
            "closed_forms": kind_of(self.spec).closed_form_texts(self.spec),
            "variants": [v.to_json(configured=v is self.configured) for v in self.ordered],
            "conclusion": {"heads_cost": self.heads_cost, "out_proj_cost": self.out_proj_cost,
                           "out_proj_percent": None if pct is None else round(pct, 4)},
            "cross_checks": {
                "closed_form": "per stage from B, L, S, E, kdim, vdim (see closed_forms)",
                "flop_counter": "torch.utils.flop_counter.FlopCounterMode on the meta device, 2 per MAC",
                "agree": self.agree,
                "problems": list(self.problems),
            },
            "notes": list(self.notes),
            **({} if self.roofline is None else {"roofline": self.roofline.to_json()}),
        }


def count_flops(spec: AttnSpec, dtype: str = "float32", cross_check: bool = True,
                gpu: str | None = None) -> FlopsReport:
    """The four (heads, W_O) variants of ``spec``, counted on the meta device; with ``gpu``, the
    roofline of the layer as configured on that accelerator."""
    from attncli.analyses.roofline import for_spec

    kind = kind_of(spec)
    kind.memory(spec, dtype)  # validates --dtype before any work
    kind.check_representable(spec)  # H heads: the largest attention matrix of the four
    roofline = None if gpu is None else for_spec(spec, gpu, dtype)  # an unknown --gpu fails before counting
    variants = tuple(count_variant(s, dtype, cross_check) for s in variant_specs(spec))
    notes = list(spec.notes)
    visible, dense = kind.visible_pairs(spec), dense_pairs(spec)
    if visible != dense:
        what = (f"--window {spec.window}" if spec.window is not None else f"--chunk {spec.chunk}"
                if spec.chunk is not None else f"--mask {spec.mask}")
        notes.append(f"{what}: the dense count charges all {dense:,} (query, key) pairs per head the kernel "
                     f"computes, as fvcore and FlopCounterMode do; the effective count only the {visible:,} visible "
                     f"({100 * visible / dense:.1f}%)")
    elif spec.mask != "none":
        notes.append(f"--mask {spec.mask}: every (query, key) pair stays visible; effective = dense")
    kept, bound = cached_tokens(spec), spec.window if spec.window is not None else spec.chunk
    if bound is not None and kept < spec.s:
        what = f"--window {spec.window}" if spec.window is not None else f"--chunk {spec.chunk}"
        notes.append(f"{what}: the KV cache keeps the last {kept:,} tokens after this step, not all {spec.s:,} "
                     "(transformers' sliding and chunked caches keep W - 1 and C - 1); this step computes "
                     f"scores over {spec.s_kernel:,} keys: the {spec.kept_cache:,} kept and the {spec.seq:,} new")
    if spec.impl == "sdpa" or (spec.impl == "torch" and not spec.need_weights):
        notes.append("a fused SDPA kernel (flash / memory-efficient) need not materialise the "
                     "attention matrix; the memory shown is what the math path holds")
    return FlopsReport(spec, dtype, variants, tuple(notes), roofline)


