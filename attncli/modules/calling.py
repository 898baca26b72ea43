"""How to call an attention module attncli did not write: ``forward(x)`` or ``forward(q, k, v)``, and in which layout.

:func:`plan_call` reads the module's ``forward`` signature and counts only the *required*
positional parameters (no default, not ``*args``/``**kwargs``): one means ``module(x)``, three
mean ``module(q, k, v)``; anything else is a ``--call`` error. Optional parameters do not count:
timm's ``Attention.forward(x, attn_mask=None, is_causal=False)`` and T5's
``forward(hidden_states, mask=None, key_value_states=None, ...)`` take one input, although they
list three positional parameters. ``--call x|qkv`` overrides the reading.

Layout: a module with a ``batch_first`` attribute that is ``False`` (``nn.MultiheadAttention``'s
default) takes ``(L, B, E)``; :func:`call_args` transposes attncli's batch-first tensors for it
and :func:`output_layout` transposes the output back, and the plan carries a one-line note that
says so. Nothing here imports torch at module level.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from attncli.spec import SpecError

CALLS: tuple[str, ...] = ("x", "qkv")
"""The ``--call`` choices: ``x`` calls ``module(x)``, ``qkv`` calls ``module(q, k, v)``."""

FLAG = "--call"


@dataclass(frozen=True)
class CallPlan:
    """How attncli calls one module.

    ``style`` is ``"x"`` or ``"qkv"``; ``transpose`` says whether the (B, L, E) inputs are fed
    as (L, B, E) (and the output turned back); ``reason`` says how the style was chosen and
    ``notes`` what the user should know (one line each).
    """

    style: str
    transpose: bool
    reason: str
    notes: tuple[str, ...] = ()

    @property
    def inputs(self) -> int:
        return 3 if self.style == "qkv" else 1

    def to_json(self) -> dict[str, Any]:
        return {"call": self.style, "seq_first_inputs": self.transpose, "reason": self.reason,
                "notes": list(self.notes)}


def _describe(module: Any) -> str:
    return type(module).__name__ + ".forward"


def _signature(module: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(module.forward)
    except (TypeError, ValueError, AttributeError):
        return None


def required_positional(sig: inspect.Signature) -> list[str]:
    """The names of the positional parameters that have no default (``self`` is already bound)."""
    return [p.name for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]


def _positional_capacity(sig: inspect.Signature) -> float:
    """How many positional arguments ``forward`` accepts (infinite with ``*args``)."""
    params = sig.parameters.values()
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return float("inf")
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def module_batch_first(module: Any) -> bool:
    """Whether the module takes (B, L, E): False only when it says ``batch_first = False``."""
    value = getattr(module, "batch_first", True)
    return value if isinstance(value, bool) else True


def plan_call(module: Any, call: str | None = None, inputs_batch_first: bool = True) -> CallPlan:
    """Decide how to call ``module``: from ``call`` (``"x"``/``"qkv"``) when given, else its signature.

    ``inputs_batch_first`` is the layout of the tensors attncli built (``--batch-first``).
    Raises ``SpecError("--call", ...)`` when the signature does not say and no ``call`` is given,
    or when ``call`` does not fit the signature.
    """
    if call is not None and call not in CALLS:
        raise SpecError(FLAG, f"{call!r} is not a call style; choose from {', '.join(CALLS)}")
    name = _describe(module)
    sig = _signature(module)
    required = required_positional(sig) if sig is not None else None
    if sig is not None:
        needs_keyword = [p.name for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
        if needs_keyword:
            raise SpecError(FLAG, f"{name} needs keyword-only argument(s) {', '.join(needs_keyword)}, "
                                  "which attncli cannot supply")

    if call is not None:
        want = 3 if call == "qkv" else 1
        if sig is not None and required is not None and (len(required) > want or _positional_capacity(sig) < want):
            raise SpecError(FLAG, f"--call {call} passes {want} input(s) but {name}{sig} "
                                  f"requires {len(required)} and accepts at most {_positional_capacity(sig):g}")
        style, reason = call, f"--call {call}"
    elif sig is None or required is None:
        raise SpecError(FLAG, f"cannot read the signature of {name}; pass --call x or --call qkv")
    elif len(required) == 1:
        style, reason = "x", f"{name}{sig}: 1 required input ({required[0]})"
    elif len(required) == 3:
        style, reason = "qkv", f"{name}{sig}: 3 required inputs ({', '.join(required)})"
    else:
        listed = f" ({', '.join(required)})" if required else ""
        raise SpecError(FLAG, f"{name} takes {len(required)} required input(s){listed}; attncli calls "
                              "forward(x) or forward(q, k, v): pass --call x or --call qkv")

    notes: list[str] = []
    transpose = module_batch_first(module) != inputs_batch_first
    if transpose:
        have, want_layout = ("(B, L, E)", "(L, B, E)") if inputs_batch_first else ("(L, B, E)", "(B, L, E)")
        notes.append(f"{type(module).__name__} has batch_first={module_batch_first(module)}: attncli feeds it "
                     f"{want_layout} tensors (transposed from {have}) and turns its output back")
    return CallPlan(style=style, transpose=transpose, reason=reason, notes=tuple(notes))


def _swap(t: Any) -> Any:
    # NOTE: unbatched (L, E) inputs have no batch axis to move; only (B, L, E) <-> (L, B, E).
    return t.transpose(0, 1) if getattr(t, "dim", None) is not None and t.dim() == 3 else t


def call_args(plan: CallPlan, query: Any, key: Any, value: Any) -> tuple[Any, ...]:
    """The positional arguments for ``module(*args)`` under ``plan``."""
    args = (query, key, value) if plan.style == "qkv" else (query,)
    return tuple(_swap(a) for a in args) if plan.transpose else args


def output_layout(plan: CallPlan, output: Any) -> Any:
    """The module's output (first tensor of a tuple) in attncli's input layout."""
    if isinstance(output, tuple | list):
        output = output[0]
    return _swap(output) if plan.transpose else output
