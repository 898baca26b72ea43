"""``--module pkg.mod:factory``: build and run an attention module the user wrote.

The reference names a module and an attribute: a factory function or a class, called as
``factory(dim, heads)``. The module is built on the requested device (the meta device for
counting, so any size works) and called as ``module(query, key, value)`` when its ``forward``
takes three inputs, else ``module(x)``. Anything that goes wrong (import, build, forward) is a
:class:`~attncli.spec.SpecError` naming ``--module`` with the reason, so the command exits 2.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attncli.checks import Counted
from attncli.flops import SCHEMA, UNCOUNTED_WHY
from attncli.formulas import CONVENTION, TRAINING_FACTOR
from attncli.spec import AttnSpec, SpecError

if TYPE_CHECKING:
    from attncli.crosscheck import FlopCounterCheck
    from attncli.trace import ModuleCount

FLAG = "--module"


def load_factory(ref: str) -> Callable[..., Any]:
    """Import ``pkg.mod:attr`` (the current directory is importable) and return ``attr``."""
    mod_name, sep, attr = ref.partition(":")
    if not sep or not mod_name or not attr:
        raise SpecError(FLAG, f"expected MODULE:FACTORY (e.g. mypkg.attn:build), got {ref!r}")
    # NOTE: the current directory is importable only while the user's module is imported.
    added = "" not in sys.path
    if added:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(mod_name)
    except Exception as exc:  # NOTE: user code can raise anything on import
        raise SpecError(FLAG, f"cannot import {mod_name!r}: {type(exc).__name__}: {exc}") from exc
    finally:
        if added and "" in sys.path:
            sys.path.remove("")
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SpecError(FLAG, f"{mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError(FLAG, f"{ref!r} is not a class or function")
    return obj


def build_user(ref: str, spec: AttnSpec, device: str = "meta") -> Any:
    """``factory(spec.dim, spec.heads)`` built on ``device``, in eval mode."""
    import torch

    factory = load_factory(ref)
    try:
        with torch.device(device):
            module = factory(spec.dim, spec.heads)
    except Exception as exc:  # NOTE: user code can raise anything
        raise SpecError(FLAG, f"{ref}({spec.dim}, {spec.heads}) failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, torch.nn.Module):
        raise SpecError(FLAG, f"{ref}({spec.dim}, {spec.heads}) returned {type(module).__name__}, "
                              "not a torch.nn.Module")
    return module.eval()


def takes_qkv(module: Any) -> bool:
    """Whether ``forward`` takes (query, key, value) rather than one input."""
    try:
        params = [p for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 3


def user_args(module: Any, query: Any, key: Any, value: Any) -> tuple[Any, ...]:
    return (query, key, value) if takes_qkv(module) else (query,)


def run_user(module: Any, args: tuple[Any, ...], ref: str) -> Any:
    """One forward pass; the first tensor of a tuple output is the output."""
    import torch

    try:
        with torch.no_grad():
            out = module(*args)
    except Exception as exc:  # NOTE: user code can raise anything
        shapes = ", ".join(str(tuple(a.shape)) for a in args)
        raise SpecError(FLAG, f"{ref} cannot run on inputs {shapes}: {type(exc).__name__}: {exc}") from exc
    if isinstance(out, tuple | list):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise SpecError(FLAG, f"{ref} returned {type(out).__name__}, not a tensor")
    return out


@dataclass(frozen=True)
class UserShapes:
    """``attncli shapes --module``: what can be known of a module written elsewhere."""

    ref: str
    spec: AttnSpec
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    weights: tuple[tuple[str, tuple[int, ...], int], ...]

    @property
    def total_params(self) -> int:
        return sum(n for _, _, n in self.weights)

    def to_json(self) -> dict[str, Any]:
        names = ["input"] if len(self.input_shapes) == 1 else ["input", "key_input", "value_input"]
        return {
            "schema": "attncli.shapes/1",
            "config": {**self.spec.to_dict(), "module": self.ref},
            "stages": [*({"name": n, "shape": list(s)} for n, s in zip(names, self.input_shapes, strict=True)),
                       {"name": "output", "shape": list(self.output_shape)}],
            "weights": [{"name": n, "shape": list(s), "numel": k} for n, s, k in self.weights],
            "params": {"total": self.total_params},
            "outputs": {"attn_output": list(self.output_shape), "attn_weights": None},
            "notes": ["inner stages of a user's module are not known to attncli; its inputs, output, "
                      "weights and parameters are"],
        }


def user_shapes(ref: str, spec: AttnSpec) -> UserShapes:
    """Build and run ``ref`` on meta tensors of the spec's sizes (batch-first, self-attention)."""
    from attncli.modules import make_inputs

    module = build_user(ref, spec, "meta")
    inputs = make_inputs(spec.with_(mask="none"), "meta")
    args = user_args(module, inputs.query, inputs.key, inputs.value)
    out = run_user(module, args, ref)
    weights = tuple((n, tuple(p.shape), p.numel()) for n, p in module.named_parameters())
    return UserShapes(ref, spec, tuple(tuple(a.shape) for a in args), tuple(out.shape), weights)


# ---------------------------------------------------------------------------- counting
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
    def variants(self) -> tuple[Counted, ...]:
        """The module as built, as the budget and baseline checks read it."""
        return (Counted(self.spec.heads, self.spec.out_proj, self.count.total, self.params),)

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

    from attncli import formulas, modules
    from attncli.crosscheck import flop_counter_check
    from attncli.formulas import check_representable
    from attncli.trace import caller, trace_count

    check_representable(spec)
    module = build_user(ref, spec, "meta")
    inputs = modules.make_inputs(spec.with_(mask="none"), "meta")
    args = user_args(module, inputs.query, inputs.key, inputs.value)
    run_user(module, args, ref)  # a clear --module error before tracing
    call, tensors = caller(module, args, {})
    try:
        count = trace_count(call, tensors)
        fc = flop_counter_check(call, tensors, count.ops)
    except Exception as exc:  # NOTE: tracing user code can fail in many ways
        raise SpecError(FLAG, f"{ref} cannot be traced for counting: {type(exc).__name__}: {exc}") from exc
    problems = []
    if fc.flops != 2 * count.total:
        problems.append(f"total: fvcore {count.total:,} MACs = {2 * count.total:,} FLOPs, "
                        f"FlopCounterMode {fc.flops:,} FLOPs")
    problems += [f"FlopCounterMode {m}" for m in fc.mismatches if "not possible" not in m]
    return ModuleFlops(ref, spec, int(parameter_count(module)[""]), count, fc,
                       formulas.closed_form(spec.with_(out_proj=True)), tuple(problems))
