"""What every kind answers for ``attncli shapes``: the report (:class:`ShapesReport`: stages, weights,
parameters, the returned shapes) and the helpers each kind's own shapes use (:func:`module_weights`,
:func:`folded_weights`; the linear kinds' :func:`conv_layer_stages`, :func:`traced_report` and
:func:`padding_note`). :func:`analyse` asks a layer's kind (its ``analyse_shapes``); the standard layer's
closed forms are :mod:`attncli.kinds.standard.shapes`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attncli.spec import AttnSpec

if TYPE_CHECKING:
    from torch import nn

Shape = tuple[int, ...]
SCHEMA = "attncli.shapes/1"


@dataclass(frozen=True)
class Stage:
    name: str
    shape: Shape
    explain: str


@dataclass(frozen=True)
class WeightRow:
    name: str
    shape: Shape
    numel: int
    component: str


@dataclass(frozen=True)
class ShapesReport:
    """Everything ``attncli shapes`` shows, for one spec."""

    spec: AttnSpec
    stages: tuple[Stage, ...]
    weights: tuple[WeightRow, ...]
    components: dict[str, int]
    total_params: int
    attn_output: Shape
    attn_weights: Shape | None
    device: str
    notes: tuple[str, ...] = field(default=())
    returns: str = "nn.MultiheadAttention returns"
    """What the outputs table shows: the layer whose forward returned them."""
    heads_term: str | None = None
    """The heads in the title (None: ``H=8 (d=64)``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "config": self.spec.to_dict(),
            "stages": [{"name": s.name, "shape": list(s.shape), "explain": s.explain} for s in self.stages],
            "weights": [{"name": w.name, "shape": list(w.shape), "numel": w.numel,
                         "component": w.component} for w in self.weights],
            "params": {"total": self.total_params, "by_component": dict(self.components)},
            "outputs": {"attn_output": list(self.attn_output),
                        "attn_weights": None if self.attn_weights is None else list(self.attn_weights)},
            "notes": list(self.notes),
        }


def component_of(name: str) -> str:
    """Group a parameter name: ``in_proj_weight`` -> in_proj, ``heads.3.q.weight`` -> heads.3."""
    parts = name.split(".")
    if parts[0] in ("bias_k", "bias_v"):
        return "bias_kv"
    if parts[0] == "heads" and len(parts) > 1:
        return f"heads.{parts[1]}"
    first = parts[0]
    for suffix in ("_weight", "_bias"):
        if first.endswith(suffix):
            return first[: -len(suffix)]
    return first


def component_totals(weights: Sequence[WeightRow]) -> dict[str, int]:
    """Parameters per component, in the order the components first appear."""
    components: dict[str, int] = {}
    for w in weights:
        components[w.component] = components.get(w.component, 0) + w.numel
    return components


def folded_weights(weights: Sequence[WeightRow]) -> list[tuple[str, tuple[int, ...], int, int]]:
    """The weights with repeated heads folded: ``heads.0.q.weight`` .. ``heads.63.q.weight`` of one shape
    become one row ``heads.{0..63}.q.weight``. Rows are (name, shape, copies, elements of one), in the
    order of first appearance; a run of indices that is not 0..n-1 in order is left unfolded."""
    import re

    groups: dict[tuple[str, tuple[int, ...]], list[tuple[int, WeightRow]]] = {}
    order: list[tuple[str, tuple[int, ...]] | WeightRow] = []
    for w in weights:
        m = re.match(r"^(.*?\.)(\d+)((?:\..*)?)$", w.name)
        if m is None:
            order.append(w)
            continue
        key = (m.group(1) + "{}" + m.group(3), w.shape)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((int(m.group(2)), w))
    out: list[tuple[str, tuple[int, ...], int, int]] = []
    for item in order:
        if isinstance(item, WeightRow):
            out.append((item.name, item.shape, 1, item.numel))
            continue
        rows = groups[item]
        if len(rows) > 1 and [i for i, _ in rows] == list(range(len(rows))):
            out.append((item[0].format(f"{{0..{len(rows) - 1}}}"), item[1], len(rows), rows[0][1].numel))
        else:
            out += [(w.name, w.shape, 1, w.numel) for _, w in rows]
    return out


def module_weights(module: nn.Module) -> tuple[tuple[WeightRow, ...], dict[str, int]]:
    """A kind's layer's weights in registration order, each under its top-level submodule, and the
    parameters per submodule."""
    weights = tuple(WeightRow(name, tuple(p.shape), p.numel(), name.split(".")[0])
                    for name, p in module.named_parameters())
    return weights, component_totals(weights)


def conv_layer_stages(spec: AttnSpec, explain: dict[str, str], before: Sequence[tuple[str, Shape]],
                      conv: tuple[int, int], after: Sequence[tuple[str, Shape]]) -> tuple[Stage, ...]:
    """The stages of a layer with a short causal conv (the linear kinds), each explained by ``explain``: the
    input (B, L, E), ``before`` (up to the conv's input), the conv state (B, channels, K) as transformers'
    cache keeps it when there is a cache (``conv``: channels, K), ``after``, and W_O's output (B, L, E)
    when the layer has one."""
    b, n, e = spec.batch, spec.seq, spec.dim
    channels, kernel = conv
    rows = [("input", (b, n, e)), *before, *([("conv_state", (b, channels, kernel))] if spec.cache else []), *after,
            *([("output", (b, n, e))] if spec.out_proj else [])]
    return tuple(Stage(name, shape, explain[name]) for name, shape in rows)


def traced_report(spec: AttnSpec, build_call: Callable[[AttnSpec, str], tuple[Any, tuple[Any, ...], dict[str, Any]]],
                  small: bool, stages: tuple[Stage, ...], notes: Sequence[str], returns: str,
                  heads_term: str) -> ShapesReport:
    """The report of a kind's own layer, one that returns its output first: built by ``build_call`` (the
    kind's ``build_call``) on the CPU when a real pass is ``small``, else on the meta device (a last note
    says so); its weights in registration order, and one pass for the output's shape."""
    import torch

    device = "cpu" if small else "meta"
    module, args, kwargs = build_call(spec, device)
    weights, components = module_weights(module)
    with torch.no_grad():
        out = module(*args, **kwargs)[0]
    if device == "meta":
        notes = [*notes, "too large for a real forward pass here: shapes come from the meta device"]
    return ShapesReport(spec=spec, stages=stages, weights=weights, components=components,
                        total_params=sum(w.numel for w in weights), attn_output=tuple(out.shape),
                        attn_weights=None, device=device, notes=tuple(notes), returns=returns, heads_term=heads_term)


def padding_note(spec: AttnSpec, padded: int, chunk: int, function: str) -> str:
    """The note of a chunked form: L padded to a multiple of the chunk, as transformers' ``function`` pads it."""
    return (f"chunked: L = {spec.seq} padded to {padded} (a multiple of C = {chunk}), as transformers' {function} "
            "pads it")


def analyse(spec: AttnSpec) -> ShapesReport:
    """The stages, weights and returned shapes of ``spec``'s layer, as its kind builds it
    (:mod:`attncli.kinds`; standard attention: :func:`analyse_standard`)."""
    from attncli.registry import kind_of

    return kind_of(spec).analyse_shapes(spec)
