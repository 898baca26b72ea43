"""fvcore handles for the ops attention emits, and the stage every counted op belongs to.

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

:data:`HANDLES` has them; :func:`all_handles` adds fvcore's defaults.

Stages. :class:`StageRecorder` wraps every handle so each counted op is also recorded with the
stage it belongs to: ``q_proj``, ``k_proj``, ``v_proj``, ``qk`` (QK^T), ``av`` (weights x V),
``out_proj`` (W_O), or ``other``. It reads the data flow of the traced graph, not module names,
because ``nn.MultiheadAttention`` calls ``F.linear`` on its own weights (fvcore's
``by_module`` sees one module, and reports ``out_proj`` as never called) and a fused
``qkv`` Linear is three stages in one op. The rules:

- a matmul with an operand computed from parameters alone is a projection; any other matmul is
  an attention matmul;
- an attention matmul whose left operand comes (through uncounted ops) from a softmax or from
  another attention matmul is ``av``; otherwise ``qk``;
- a projection is named by where its output goes (through uncounted ops): the left operand of
  ``qk`` is ``q_proj``, the right one ``k_proj``, the right operand of ``av`` is ``v_proj``;
  SDPA's query, key and value likewise. A packed projection that feeds several (a fused
  ``qkv``) is split evenly between them: its output blocks are E columns each.
- a projection that feeds no attention but reads an attention output is ``out_proj``.

Only tensor edges are followed, so shape arithmetic (``x.size(0)`` feeding a ``view``) never
links two stages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS
from fvcore.nn.jit_handles import get_shape

Handle = Callable[[list[Any], list[Any]], Any]
"""fvcore's handle signature: (op inputs, op outputs) as ``torch._C.Value`` lists -> count."""

STAGES: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "qk", "av", "out_proj")
"""The stages of attention, in the order they run."""

OTHER = "other"
"""Counted ops that are none of the stages (a user module's MLP, a norm, ...)."""

SDPA = "aten::scaled_dot_product_attention"
NATIVE_MHA = "aten::_native_multi_head_attention"

MATMUL_OPERANDS: dict[str, tuple[int, int]] = {
    "aten::linear": (0, 1),   # linear(x, W, b): x @ W^T
    "aten::addmm": (1, 2),    # addmm(b, x, W^T)
    "aten::matmul": (0, 1),
    "aten::mm": (0, 1),
    "aten::bmm": (0, 1),
    "aten::baddbmm": (1, 2),  # baddbmm(mask, q, k^T)
}
"""For each matmul op, the input slots of its left and right operands."""

SDPA_SLOTS = {0: "q_proj", 1: "k_proj", 2: "v_proj"}
SOFTMAX_KINDS = frozenset({"aten::softmax", "aten::_softmax", "aten::log_softmax"})


def _shape(value: Any) -> list[int]:
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


HANDLES: dict[str, Handle] = {
    "aten::baddbmm": baddbmm_flop_jit,
    SDPA: sdpa_flop_jit,
    NATIVE_MHA: native_mha_flop_jit,
}
"""The handles fvcore lacks for attention."""

STAGE_SPLITS: dict[str, Callable[[list[Any], list[Any]], dict[str, int]]] = {
    SDPA: sdpa_stage_flops,
    NATIVE_MHA: native_mha_stage_flops,
}
"""Ops that are several stages at once, and how their count divides between them."""


def all_handles() -> dict[str, Handle]:
    """fvcore's default handles plus :data:`HANDLES`."""
    return {**_DEFAULT_SUPPORTED_OPS, **HANDLES}


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


def _split_evenly(total: int, stages: Iterable[str]) -> tuple[tuple[str, int], ...]:
    names = list(stages)
    share, rest = divmod(total, len(names))
    return tuple((name, share + (1 if i < rest else 0)) for i, name in enumerate(names))


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
        targets = [stage for stage in STAGES if stage in self._fed_stages(node)]
        if targets:
            return _split_evenly(total, targets)
        reads = set().union(*(self._upstream_roles(i) for i in node.inputs() if _carries_data(i)))
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
        found_param, result = False, True
        stack, seen = [value], set()
        while stack:
            v = stack.pop()
            if v.unique() in seen:
                continue
            seen.add(v.unique())
            node = v.node()
            kind = node.kind()
            if kind == "prim::Param":
                if v.offset() < self.n_inputs:
                    result = False  # a model input: activations
                    break
                found_param = True
            elif kind == "prim::Constant":
                continue
            elif self._counted(node):
                result = False  # computed by a counted op: activations
                break
            else:
                stack.extend(i for i in node.inputs() if _carries_data(i))
        result = result and found_param
        self._param_only[key] = result
        return result

    def _upstream_roles(self, value: Any) -> set[str]:
        """Roles of the counted nodes ``value`` comes from through uncounted ops (+ softmax)."""
        roles: set[str] = set()
        stack, seen = [value], set()
        while stack:
            v = stack.pop()
            if v.unique() in seen:
                continue
            seen.add(v.unique())
            node = v.node()
            if self._counted(node):
                roles.add(self._role(node))
                continue
            if node.kind() in SOFTMAX_KINDS:
                roles.add("softmax")
            stack.extend(i for i in node.inputs() if _carries_data(i))
        return roles

    def _fed_stages(self, node: Any) -> set[str]:
        """The q/k/v stages a projection's output feeds, through uncounted ops."""
        fed: set[str] = set()
        stack, seen = [o for o in node.outputs() if _carries_data(o)], set()
        while stack:
            v = stack.pop()
            if v.unique() in seen:
                continue
            seen.add(v.unique())
            for use in v.uses():
                user, slot = use.user, use.offset
                if self._counted(user):
                    role = self._role(user)
                    if role in ("qk", "av"):
                        a, b = MATMUL_OPERANDS[user.kind()]
                        if role == "qk" and slot == a:
                            fed.add("q_proj")
                        elif role == "qk" and slot == b:
                            fed.add("k_proj")
                        elif role == "av" and slot == b:
                            fed.add("v_proj")
                    elif role == "sdpa" and slot in SDPA_SLOTS:
                        fed.add(SDPA_SLOTS[slot])
                    continue
                stack.extend(o for o in user.outputs() if _carries_data(o))
        return fed
