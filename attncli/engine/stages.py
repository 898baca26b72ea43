"""The stage every op fvcore counts belongs to: :class:`StageRecorder` and the graph walker.

:class:`StageRecorder` wraps every handle of :mod:`attncli.engine.handles` so each counted op is also
recorded (an :class:`OpCount`) with the stage it belongs to: ``q_proj``, ``k_proj``, ``v_proj``,
``qk`` (QK^T), ``av`` (weights x V), ``out_proj`` (W_O), or ``other``. It reads the data flow of
the traced graph, not module names, because ``nn.MultiheadAttention`` calls ``F.linear`` on its
own weights (fvcore's ``by_module`` sees one module, and reports ``out_proj`` as never called) and
a fused ``qkv`` Linear is three stages in one op. The rules:

- a matmul with an operand computed from parameters alone is a projection; any other matmul is
  an attention matmul;
- an attention matmul whose left operand comes (through uncounted ops) from a softmax or from
  another attention matmul is ``av``; otherwise ``qk``;
- a projection is named by where its output goes (through uncounted ops and
  counted ops that are no matmul: norms): the left operand of
  ``qk`` is ``q_proj``, the right one ``k_proj``, the right operand of ``av`` is ``v_proj``;
  SDPA's query, key and value likewise. A packed projection that feeds several (a fused
  ``qkv``) is split between them in proportion to the part of its output each one reads:
  the share of every slice (``select``, ``slice``, ``split_with_sizes``, ...) on the way, so
  a grouped-query ``Linear(E, (H + 2G) d)`` gives q H/(H + 2G) of it and k and v G/(H + 2G)
  each; without slices (or shapes) the split is even.
- a projection that feeds no attention but reads an attention output is ``out_proj``.

Only tensor edges are followed, so shape arithmetic (``x.size(0)`` feeding a ``view``) never
links two stages. One walker, :func:`walk`, does every traversal of the graph.

Which ops are matmuls, and where their operands sit, comes from the registry of
:mod:`attncli.engine.handles` (:data:`~attncli.engine.handles.MATMUL_OPERANDS`,
:data:`~attncli.engine.handles.STAGE_SPLITS`); :mod:`attncli.engine.handles` re-exports :class:`OpCount`,
:class:`StageRecorder` and :func:`walk`, the names its callers import from it. Importing this
module does not import torch or fvcore; recording does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from attncli.choices import OTHER, STAGES
from attncli.engine.handles import MATMUL_OPERANDS, NATIVE_MHA, SDPA, STAGE_SPLITS, Handle

__all__ = ["SDPA_SLOTS", "SLICING_OPS", "SOFTMAX_KINDS", "OpCount", "StageRecorder", "walk"]

SOFTMAX_KINDS = frozenset({"aten::softmax", "aten::_softmax", "aten::log_softmax"})
SDPA_SLOTS = {0: "q_proj", 1: "k_proj", 2: "v_proj"}
"""SDPA's input slots (query, key, value) and the projection stage that feeds each."""


# ---------------------------------------------------------------------------- the walker
def walk(start: Iterable[Any], visit: Callable[[Any], Iterable[Any] | None]) -> None:
    """Visit every value reachable from ``start`` once, depth first.

    ``visit(value)`` returns the values to go on to (``()`` ends this branch) or ``None`` to
    stop the whole walk (the answer is known).
    """
    stack, seen = list(start), set()
    while stack:
        v = stack.pop()
        if v.unique() in seen:
            continue
        seen.add(v.unique())
        nxt = visit(v)
        if nxt is None:
            return
        stack.extend(nxt)


# ---------------------------------------------------------------------------- stages
@dataclass(frozen=True)
class OpCount:
    """One op fvcore counted: its kind, the module that ran it, its MACs and their stages."""

    kind: str
    scope: str
    flops: int
    stages: tuple[tuple[str, int], ...]
    """(stage, MACs) pairs; they add up to ``flops``."""


def _is_tensor_type(t: Any) -> bool:
    import torch

    if isinstance(t, torch._C.TensorType):
        return True
    if isinstance(t, torch._C.ListType | torch._C.OptionalType):
        return _is_tensor_type(t.getElementType())
    if isinstance(t, torch._C.TupleType):
        return any(_is_tensor_type(e) for e in t.elements())
    return False


def _carries_data(value: Any) -> bool:
    """Tensor edges carry data; ints, shapes and flags do not."""
    return _is_tensor_type(value.type())


def _data(values: Iterable[Any]) -> list[Any]:
    """The values among ``values`` that carry data (tensor edges)."""
    return [v for v in values if _carries_data(v)]


def _split(total: int, shares: dict[str, Fraction]) -> tuple[tuple[str, int], ...]:
    """``total`` divided in proportion to ``shares`` (largest remainders get the odd units)."""
    whole = sum(shares.values())
    if not whole:  # NOTE: no share measured (every part read as empty): divide evenly
        shares, whole = dict.fromkeys(shares, Fraction(1)), Fraction(len(shares))
    exact = {name: total * share / whole for name, share in shares.items()}
    parts = {name: int(x) for name, x in exact.items()}
    for name in sorted(exact, key=lambda n: exact[n] - parts[n], reverse=True)[:total - sum(parts.values())]:
        parts[name] += 1
    return tuple(parts.items())


SLICING_OPS = frozenset({"aten::select", "aten::slice", "aten::narrow", "aten::split", "aten::split_with_sizes",
                         "aten::chunk", "aten::unbind", "aten::tensor_split", "prim::ListUnpack"})
"""Ops whose outputs are parts of their input: a packed projection's share follows them."""


def _numel(value: Any) -> int | None:
    from fvcore.nn.jit_handles import get_shape

    shape = get_shape(value) if value.type().kind() == "TensorType" else None
    return None if shape is None or any(d is None for d in shape) else math.prod(int(d) for d in shape)


def _part(user: Any, src: Any, out: Any) -> Fraction:
    """The share of ``src`` that ``out`` (an output of the slicing op ``user``) holds."""
    if user.kind() == "prim::ListUnpack":
        sizes = [_numel(o) for o in user.outputs()]
        mine = _numel(out)
        if mine is None or any(n is None for n in sizes) or not sum(n or 0 for n in sizes):
            return Fraction(1)
        return Fraction(mine, sum(n or 0 for n in sizes))
    whole, mine = _numel(src), _numel(out)
    if whole is None or mine is None or not whole:
        return Fraction(1)  # a list of parts: ListUnpack divides it
    return Fraction(mine, whole)


class StageRecorder:
    """Wraps fvcore handles so every counted op is recorded in :attr:`records` with its stage.

    Use one recorder per analysis: ``n_inputs`` is how many tensors were passed to the trace
    (the traced graph's first inputs; the module's parameters follow them).
    """

    def __init__(self, n_inputs: int, handles: dict[str, Handle]) -> None:
        self.n_inputs = n_inputs
        self._inner = dict(handles)
        self.records: list[OpCount] = []
        self._roles: dict[Any, str] = {}
        self._param_only: dict[int, bool] = {}

    def handles(self) -> dict[str, Handle]:
        """The wrapped handles, for ``FlopCountAnalysis.set_op_handle(**...)``."""
        return {kind: self._wrap(kind, handle) for kind, handle in self._inner.items()}

    def _wrap(self, kind: str, handle: Handle) -> Handle:
        def counted(inputs: list[Any], outputs: list[Any]) -> Any:
            result = handle(inputs, outputs)
            total = int(sum(result.values()) if isinstance(result, dict) else result)
            node = outputs[0].node()
            self.records.append(OpCount(kind, node.scopeName().split("/")[-1], total,
                                        self._stages(node, total, inputs, outputs)))
            return result

        return counted

    # -------------------------------------------------------------- classification
    def _stages(self, node: Any, total: int, inputs: list[Any],
                outputs: list[Any]) -> tuple[tuple[str, int], ...]:
        kind = node.kind()
        if kind in STAGE_SPLITS:
            return tuple(STAGE_SPLITS[kind](inputs, outputs).items())
        role = self._role(node)
        if role in ("qk", "av"):
            return ((role, total),)
        if role != "proj":
            return ((OTHER, total),)
        fed = self._fed_stages(node)
        if fed:
            return _split(total, {stage: fed[stage] for stage in STAGES if stage in fed})
        reads = set().union(*(self._upstream_roles(i) for i in _data(node.inputs())))
        if reads & {"av", "sdpa", "mha"}:
            return (("out_proj", total),)
        return ((OTHER, total),)

    def _role(self, node: Any) -> str:
        """``proj``, ``qk``, ``av``, ``sdpa``, ``mha`` or ``other`` for a counted node."""
        role = self._roles.get(node)
        if role is not None:
            return role
        kind = node.kind()
        if kind == SDPA:
            role = "sdpa"
        elif kind == NATIVE_MHA:
            role = "mha"
        elif kind in MATMUL_OPERANDS:
            a, b = (node.inputsAt(i) for i in MATMUL_OPERANDS[kind])
            if self._from_params_only(a) or self._from_params_only(b):
                role = "proj"
            elif self._upstream_roles(a) & {"qk", "softmax"}:
                role = "av"
            else:
                role = "qk"
        else:
            role = "other"
        self._roles[node] = role
        return role

    def _counted(self, node: Any) -> bool:
        return bool(node.kind() in self._inner)

    def _from_params_only(self, value: Any) -> bool:
        """Whether ``value`` is computed from parameters (and constants) alone: a weight."""
        key = value.unique()
        cached = self._param_only.get(key)
        if cached is not None:
            return cached
        found = {"param": False, "activation": False}

        def visit(v: Any) -> Iterable[Any] | None:
            node = v.node()
            kind = node.kind()
            if kind == "prim::Param":
                if v.offset() < self.n_inputs:
                    found["activation"] = True  # a model input: activations
                    return None
                found["param"] = True
                return ()
            if kind == "prim::Constant":
                return ()
            if self._counted(node):
                found["activation"] = True  # computed by a counted op: activations
                return None
            return _data(node.inputs())

        walk([value], visit)
        result = found["param"] and not found["activation"]
        self._param_only[key] = result
        return result

    def _passes_through(self, node: Any) -> bool:
        """Whether the stage walkers go on through ``node``: a counted op that is no matmul.

        NOTE: a norm between the projections and attention (timm's and Qwen3's qk-norm
        ``LayerNorm``/``RMSNorm``, counted by fvcore's own ``layer_norm`` handle) transforms q or k
        elementwise per token; the projection still feeds QK^T through it. Its own count stays in
        ``other`` under its op name; only matmuls (projections and attention) end a walk.
        """
        return self._role(node) == "other" and node.kind() not in MATMUL_OPERANDS

    def _upstream_roles(self, value: Any) -> set[str]:
        """Roles of the counted nodes ``value`` comes from through uncounted ops and counted
        non-matmul ops (norms), plus ``softmax``."""
        roles: set[str] = set()

        def visit(v: Any) -> Iterable[Any]:
            node = v.node()
            if self._counted(node) and not self._passes_through(node):
                roles.add(self._role(node))
                return ()
            if node.kind() in SOFTMAX_KINDS:
                roles.add("softmax")
            return _data(node.inputs())

        walk([value], visit)
        return roles

    def _fed_stages(self, node: Any) -> dict[str, Fraction]:
        """The q/k/v stages a projection's output feeds, through uncounted ops, each with the
        share of the output that reaches it (see :data:`SLICING_OPS`)."""
        fed: dict[str, Fraction] = {}
        share: dict[int, Fraction] = {o.unique(): Fraction(1) for o in node.outputs()}

        def feed(stage: str, part: Fraction) -> None:
            fed[stage] = max(fed.get(stage, Fraction(0)), part)

        def visit(v: Any) -> Iterable[Any]:
            onward: list[Any] = []
            mine = share.get(v.unique(), Fraction(1))
            for use in v.uses():
                user, slot = use.user, use.offset
                if not self._counted(user) or self._passes_through(user):
                    for out in _data(user.outputs()):
                        part = _part(user, v, out) if user.kind() in SLICING_OPS else Fraction(1)
                        share.setdefault(out.unique(), mine * part)
                        onward.append(out)
                    continue
                role = self._role(user)
                if role in ("qk", "av"):
                    a, b = MATMUL_OPERANDS[user.kind()]
                    if role == "qk" and slot == a:
                        feed("q_proj", mine)
                    elif role == "qk" and slot == b:
                        feed("k_proj", mine)
                    elif role == "av" and slot == b:
                        feed("v_proj", mine)
                elif role == "sdpa" and slot in SDPA_SLOTS:
                    feed(SDPA_SLOTS[slot], mine)
            return onward

        walk(_data(node.outputs()), visit)
        return fed
