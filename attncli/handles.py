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

Every op attention emits is described once, in :data:`REGISTRY`, by :func:`register` (which
refuses a second registration of the same op, as ``torch.utils.flop_counter`` does): its flop
formula (the handle fvcore lacks), its stage formula (ops that are several stages at once),
its operand slots (matmuls: left and right; SDPA: query, key, value) and, for ops that rightly
count zero, why. :data:`HANDLES`, :data:`STAGE_SPLITS`, :data:`MATMUL_OPERANDS` and
:data:`UNCOUNTED_WHY` are views of it; :func:`all_handles` adds fvcore's defaults. Importing
this module does not import torch or fvcore; counting does.

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

(About 400 lines on purpose: the registry, the formulas it holds and the stage rules that read
it belong together; split, each half would need the other's private helpers.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from attncli.choices import OTHER, STAGES

__all__ = ["HANDLES", "MATMUL_OPERANDS", "NATIVE_MHA", "OTHER", "REGISTRY", "SDPA", "STAGES", "STAGE_SPLITS",
           "UNCOUNTED_WHY", "OpCount", "OpInfo", "StageRecorder", "all_handles", "register", "walk"]

Handle = Callable[[list[Any], list[Any]], Any]
"""fvcore's handle signature: (op inputs, op outputs) as ``torch._C.Value`` lists -> count."""

StageSplit = Callable[[list[Any], list[Any]], dict[str, int]]
"""(op inputs, op outputs) -> MACs per stage, for an op that is several stages at once."""

SDPA = "aten::scaled_dot_product_attention"
NATIVE_MHA = "aten::_native_multi_head_attention"
SOFTMAX_KINDS = frozenset({"aten::softmax", "aten::_softmax", "aten::log_softmax"})
SDPA_SLOTS = {0: "q_proj", 1: "k_proj", 2: "v_proj"}


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
        raise RuntimeError(f"attncli.handles: {kind} is already registered")
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
    ("aten::mean", "averaging the returned weights over heads"),
    ("aten::repeat", "copying bias_k/bias_v for every batch item"),
    ("aten::bool", "mask dtype conversion"),
    ("aten::triu", "building a causal mask"),
    ("aten::dropout", "dropout (identity in eval mode)"),
    ("aten::unflatten", "a reshape (a view, no arithmetic)"),
    ("aten::pad", "widening the mask for bias_kv / zero_attn"),
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
