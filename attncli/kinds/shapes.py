"""What every kind answers for ``attncli shapes``: the report (:class:`ShapesReport`: stages, weights,
parameters, the returned shapes) and the helpers each kind's own shapes use (:func:`module_weights`,
:func:`folded_weights`). :func:`analyse` asks a layer's kind (its ``analyse_shapes``); the standard
layer's closed forms are :mod:`attncli.kinds.standard.shapes`."""

from __future__ import annotations

from collections.abc import Sequence
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


def analyse(spec: AttnSpec) -> ShapesReport:
    """The stages, weights and returned shapes of ``spec``'s layer, as its kind builds it
    (:mod:`attncli.kinds`; standard attention: :func:`analyse_standard`)."""
    from attncli.registry import kind_of

    return kind_of(spec).analyse_shapes(spec)
