"""``--module pkg.mod:factory``: build and run an attention module the user wrote, fenced.

The reference names a module and an attribute: a factory function or a class, called as
``factory(dim, heads)``, or a Hugging Face attention class (its constructor takes a model
config), built by :func:`attncli.hf.build_hf_attention` from the layer settings and called the
way its model calls it. A plain module is called as :func:`attncli.calling.plan_call` reads its
``forward``: required positional parameters only (``module(x)`` or ``module(q, k, v)``,
``--call`` overrides), in the layout its ``batch_first`` says.

The user's code runs with the user's rights; attncli only fences it (:func:`attncli.fence.fenced`):
its stdout goes to stderr (attncli's stdout stays the report), anything it raises
(``SystemExit`` and ``KeyboardInterrupt`` included) becomes one :class:`~attncli.spec.SpecError`
line, and a watchdog thread ends import + build + run after ``--module-timeout`` seconds.
Modules are built on the meta device (any size, nothing allocated); one that cannot run there
(``.item()``, data-dependent shapes) runs on real CPU tensors when the memory model says the
size fits. Nothing here imports torch at module level.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from attncli.calling import CallPlan, call_args, output_layout, plan_call
from attncli.checks import Counted
from attncli.choices import CLOSED_FORMS, NOT_FOR_MODULES, OTHER, STAGES
from attncli.fence import DEFAULT_TIMEOUT, FLAG, fenced, one_line
from attncli.formulas import CONVENTION, TRAINING_FACTOR, Memory
from attncli.handles import SDPA, UNCOUNTED_WHY
from attncli.spec import AttnSpec, SpecError

if TYPE_CHECKING:
    from attncli.crosscheck import FlopCounterCheck
    from attncli.hf import HfLayer
    from attncli.trace import ModuleCount

SCHEMA = "attncli.flops/1"

OTHER_RULE = ("an op that is neither a projection nor attention (a norm, a gate) is counted as fvcore's own "
              "handle counts it (layer_norm: 5 per element with an affine, 4 without) and shown under 'other' "
              "with its op name; it is in the total, in no attention stage")


# ---------------------------------------------------------------------------- loading
INSTALL_HINTS: dict[str, str] = {
    "transformers": " (install it: pip install 'attncli[hf]')",
    "timm": " (install it: pip install timm, which needs a torchvision built for your torch)",
}
"""What to install when a --module reference needs a package that is missing."""


def load_factory(ref: str) -> Callable[..., Any]:
    """Import ``pkg.mod:attr`` (the current directory appended to sys.path) and return ``attr``.

    Call it inside :func:`fenced`: importing runs the user's module.
    """
    mod_name, sep, attr = ref.partition(":")
    if not sep or not mod_name or not attr:
        raise SpecError(FLAG, f"expected MODULE:FACTORY (e.g. mypkg.attn:build), got {ref!r}")
    cwd = os.getcwd()
    added = "" not in sys.path and cwd not in sys.path
    if added:
        sys.path.append(cwd)
    try:
        module = importlib.import_module(mod_name)
    except (Exception, SystemExit) as exc:  # NOTE: user code can raise anything on import
        missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
        hint = INSTALL_HINTS.get((missing or "").partition(".")[0], "")
        raise SpecError(FLAG, f"cannot import {mod_name!r}: {type(exc).__name__}: {one_line(exc)}{hint}") from exc
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SpecError(FLAG, f"{mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError(FLAG, f"{ref!r} is not a class or function")
    return obj


def build_user(ref: str, spec: AttnSpec, device: str = "meta", factory: Any = None) -> Any:
    """``factory(spec.dim, spec.heads)`` built on ``device``, in eval mode."""
    import torch

    factory = load_factory(ref) if factory is None else factory
    try:
        with torch.device(device):
            module = factory(spec.dim, spec.heads)
    except (Exception, SystemExit) as exc:  # NOTE: user code can raise anything
        raise SpecError(FLAG, f"{ref}({spec.dim}, {spec.heads}) failed: {type(exc).__name__}: "
                              f"{one_line(exc)}") from exc
    if not isinstance(module, torch.nn.Module):
        raise SpecError(FLAG, f"{ref}({spec.dim}, {spec.heads}) returned {type(module).__name__}, "
                              "not a torch.nn.Module")
    return module.eval()


def run_user(module: Any, args: tuple[Any, ...], ref: str, kwargs: dict[str, Any] | None = None) -> Any:
    """One forward pass; the output tensor (the first item of a tuple)."""
    import torch

    try:
        with torch.no_grad():
            out = module(*args, **(kwargs or {}))
    except (Exception, SystemExit) as exc:  # NOTE: user code can raise anything
        shapes = ", ".join(str(tuple(a.shape)) for a in args)
        raise SpecError(FLAG, f"{ref} cannot run on inputs {shapes}: {type(exc).__name__}: "
                              f"{one_line(exc)}") from exc
    if out is None or (isinstance(out, tuple | list) and not out):
        raise SpecError(FLAG, f"{ref} returned {out!r}, no tensor: attncli needs the attention output")
    if isinstance(out, tuple | list):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise SpecError(FLAG, f"{ref} returned {type(out).__name__}, not a tensor")
    return out


# ---------------------------------------------------------------------------- preparing
@dataclass(frozen=True)
class Prepared:
    """A user's layer ready to run: the module to call, its inputs, and what it really is.

    ``spec`` is the layer as built (a Hugging Face class's sizes, mask and window), used for
    the closed form, the effective count and memory; ``plan`` says how a plain module is called
    (``None`` for a Hugging Face class, which is called as its model calls it).
    """

    module: Any
    args: tuple[Any, ...]
    spec: AttnSpec
    plan: CallPlan | None
    hf: HfLayer | None
    device: str
    notes: tuple[str, ...] = ()


def refuse_flags(ref: str, typed: set[str] | frozenset[str], spec: AttnSpec | None = None) -> None:
    """Exit 2 for typed flags a module cannot take (they would be recorded in config and ignored)."""
    for name, flag in NOT_FOR_MODULES.items():
        if name in typed:
            if "/" in flag:  # an on/off pair: name the one typed
                on, off = flag.split("/")
                flag = on if spec is None or getattr(spec, name) else off
            raise SpecError(flag, f"does not apply to --module {ref} (the module builds its own layer)")


def _hf_settings(spec: AttnSpec, typed: set[str] | frozenset[str]) -> SimpleNamespace:
    """The settings handed to a Hugging Face class; the bias only when the user or a config chose it."""
    sources = dict(spec.sources)
    bias_chosen = "bias" in typed or sources.get("bias", "default") != "default"
    return SimpleNamespace(dim=spec.dim, heads=spec.heads, kv_heads=spec.n_kv_heads, head_dim=spec.head_dim,
                           window=spec.window, bias=spec.bias if bias_chosen else None, cache=spec.cache)


def prepare(ref: str, spec: AttnSpec, device: str, call: str | None = None,
            typed: set[str] | frozenset[str] = frozenset(), factory: Any = None) -> Prepared:
    """Import and build ``ref`` on ``device`` and make its inputs (call inside :func:`fenced`)."""
    from attncli import hf
    from attncli.modules import make_inputs

    refuse_flags(ref, typed, spec)
    factory = load_factory(ref) if factory is None else factory
    if hf.is_hf_attention(factory):
        if call is not None:
            raise SpecError("--call", f"{ref} is a Hugging Face class: attncli calls it as its model does")
        if not spec.is_self_attention:
            raise SpecError("--kv-seq" if spec.s != spec.seq else "--kdim",
                            f"{ref} is called as its model calls it, on one hidden-state tensor (self-attention)")
        layer = hf.build_hf_attention(factory, _hf_settings(spec, typed), device)
        s = layer.sizes
        built = spec.with_(dim=s.dim, heads=s.heads, kv_heads=s.kv_heads, d_head=s.head_dim, window=s.window,
                           mask="causal" if s.causal else "none", impl="split", kv_seq=None, kdim=None, vdim=None)
        x = make_inputs(built.with_(mask="none"), device).query
        return Prepared(layer.wrapper(), (x,), built, None, layer, device, layer.notes)
    if "bias" in typed:
        flag = "--bias" if spec.bias else "--no-bias"
        raise SpecError(flag, f"{ref} is built as FACTORY(dim, heads), which cannot take {flag} "
                              "(a Hugging Face class can: its config gets attention_bias)")
    for flag, used in (("--kv-heads", spec.n_kv_heads != spec.heads),
                       ("--head-dim", spec.d_head is not None and spec.d_head * spec.heads != spec.dim),
                       ("--window", spec.window is not None)):
        if used:
            key = {"--kv-heads": "kv_heads", "--head-dim": "head_dim", "--window": "window"}[flag]
            origin = dict(spec.sources).get(key)
            why = f" ({key} {spec.to_dict()[key]} from {origin})" if origin and origin != "command line" else ""
            raise SpecError(flag, f"{ref} is built as FACTORY(dim, heads), which cannot take {flag}{why}")
    module = build_user(ref, spec, device, factory)
    plan = plan_call(module, call, spec.batch_first)
    if plan.style == "x" and not spec.is_self_attention:
        flag = "--kv-seq" if spec.s != spec.seq else ("--kdim" if spec.k_dim != spec.dim else "--vdim")
        raise SpecError(flag, f"{ref} is called as module(x) ({plan.reason}): one input, self-attention; "
                              "pass --call qkv to feed separate query, key and value")
    inputs = make_inputs(spec.with_(mask="none", impl="split"), device)
    args = call_args(plan, inputs.query, inputs.key, inputs.value)
    built = spec.with_(mask="none", impl="split")
    return Prepared(module, args, built, plan, None, device, plan.notes)


def _run(p: Prepared, ref: str) -> Any:
    if p.hf is not None:
        return run_user(p.module, p.args, ref)
    return output_layout(p.plan, run_user(p.module, p.args, ref)) if p.plan is not None else None


def prepare_and_run(ref: str, spec: AttnSpec, call: str | None, typed: set[str] | frozenset[str],
                    dtype: str = "float32") -> tuple[Prepared, Any]:
    """Build on meta and run; when meta cannot run the module, on real CPU tensors if they fit."""
    factory = load_factory(ref)
    p = prepare(ref, spec, "meta", call, typed, factory)
    try:
        return p, _run(p, ref)
    except SpecError as exc:
        meta_error = exc.message
    from attncli.bench import available_memory, check_fits

    available, source = available_memory("cpu")
    try:
        check_fits(p.spec, dtype, "cpu", available, source)
    except SpecError as refusal:
        raise SpecError(FLAG, f"{meta_error}; on real tensors instead: {refusal.message}") from None
    p = prepare(ref, spec, "cpu", call, typed, factory)
    out = _run(p, ref)
    note = (f"the meta device could not run {ref} ({meta_error}); it was built and run on real CPU tensors "
            "(the memory model said they fit)")
    return Prepared(p.module, p.args, p.spec, p.plan, p.hf, "cpu", (*p.notes, note)), out


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

    ``closed`` is the closed form of standard attention with the sizes the module was built
    with (W_O when it was counted): a reference for the reader, not a requirement (the module
    may differ), so it is reported, not enforced.
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

    @property
    def reference(self) -> dict[str, int]:
        return self.closed

    @property
    def dtype(self) -> str:
        """The dtype the memory estimate is for (``--dtype``)."""
        return self.memory.dtype

    @property
    def pairs(self) -> tuple[int, int]:
        """(visible, dense) (query, key) pairs of one batch item and head, under the layer's mask."""
        from attncli.visibility import dense_pairs, spec_visible_pairs

        return spec_visible_pairs(self.spec), dense_pairs(self.spec)

    @property
    def effective_total(self) -> int:
        """Effective MACs: the visible pairs only (equal to the dense count without a mask)."""
        return sum(self.effective_by_stage.values())

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
        return sum(self.count.by_stage.get(k, 0) for k in STAGES)

    @property
    def matches_reference(self) -> bool:
        return all(self.count.by_stage.get(k, 0) == self.closed[k] for k in STAGES)

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
        by_stage = {k: self.count.by_stage.get(k, 0) for k in STAGES}
        if self.count.by_stage.get(OTHER):
            by_stage[OTHER] = self.count.by_stage[OTHER]
        return {
            "schema": SCHEMA,
            "config": {**self.spec.to_dict(), "impl": "module", "module": self.ref, "device": self.device,
                       "call": None if self.plan is None else self.plan.to_json(), "dtype": self.dtype},
            "convention": dict(CONVENTION),
            "closed_forms": dict(CLOSED_FORMS),
            "variants": [{
                "heads": self.spec.heads, "out_proj": self.out_proj, "label": f"{self.ref} as built",
                "fvcore_flops": total, "flops": 2 * total,
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
                    "closed_form": {"what": "standard attention with the sizes the module was built with "
                                            "(reported, not enforced)",
                                    "by_stage": dict(self.closed), "total": sum(self.closed.values()),
                                    "agree": self.matches_reference},
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
            "reference": {"what": "closed form of standard attention with these sizes",
                          "by_stage": dict(self.closed), "total": sum(self.closed.values()),
                          "matches": self.matches_reference},
            "cross_checks": {
                "closed_form": "per stage, standard attention with the sizes the module was built with "
                               "(see closed_forms; reported, not enforced)",
                "flop_counter": f"torch.utils.flop_counter.FlopCounterMode on the {self.device} device, 2 per MAC",
                "agree": self.agree, "problems": list(self.problems)},
            "notes": list(self.notes),
        }


def _mask_notes(ref: str, spec: AttnSpec) -> list[str]:
    """What the layer's own mask hides: the dense count charges every pair, the effective one not."""
    from attncli.visibility import dense_pairs, spec_visible_pairs

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

    from attncli import formulas
    from attncli.crosscheck import flop_counter_check
    from attncli.trace import caller, trace_count

    formulas.check_representable(spec)
    with fenced(ref, timeout, last_resort):
        p, _ = prepare_and_run(ref, spec, call, typed, dtype)
        call_module, tensors = caller(p.module, p.args, {})
        try:
            count = trace_count(call_module, tensors)
            fc = flop_counter_check(call_module, tensors, count.ops)
        except SpecError:
            raise
        except (Exception, SystemExit) as exc:  # NOTE: tracing user code can fail in many ways
            raise SpecError(FLAG, f"{ref} cannot be traced for counting: {type(exc).__name__}: "
                                  f"{one_line(exc)}") from exc
        params = int(parameter_count(p.module)[""])
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
    closed = formulas.closed_form(built)
    eff, eff_problems = formulas.effective({k: count.by_stage.get(k, 0) for k in STAGES}, built)
    return ModuleFlops(ref, built, params, count, fc, closed, eff, formulas.memory(built, dtype),
                       tuple(problems) + eff_problems, p.plan, p.device, tuple(notes))
