"""Standard attention: multi-head, grouped-query and multi-query (the first kind).

Stages ``q_proj``, ``k_proj``, ``v_proj``, ``qk``, ``av``, ``out_proj``; H query heads of size
d share G key/value heads; the KV cache holds K and V of every token. The closed forms live in
:mod:`attncli.formulas` and the five implementations in :mod:`attncli.modules`; this module
answers the kind's questions (:class:`attncli.kinds.base.Kind`) from them. No torch at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attncli.choices import CLOSED_FORM_TERMS, CLOSED_FORMS, SHORT_STAGE_LABELS, STAGES
from attncli.choices import STAGE_LABELS as _LABELS

if TYPE_CHECKING:
    from attncli.formulas import Memory
    from attncli.spec import AttnSpec

NAME = "standard"
STAGE_LABELS: dict[str, str] = dict(_LABELS)
SHORT_LABELS: dict[str, str] = {k: v for k, v in SHORT_STAGE_LABELS.items() if k in STAGES}
TERMS = CLOSED_FORM_TERMS
KV_FORM = "2*B*S*G*d"


def stages(spec: AttnSpec) -> tuple[str, ...]:
    return STAGES


def closed_form(spec: AttnSpec) -> dict[str, int]:
    from attncli.formulas import closed_form as dense

    return dense(spec)


def closed_form_texts(spec: AttnSpec) -> dict[str, str]:
    return dict(CLOSED_FORMS)


def params(spec: AttnSpec) -> dict[str, int]:
    from attncli.shapes import closed_form_params

    return closed_form_params(spec)


def kv_cache_bytes(spec: AttnSpec, bytes_per_element: int) -> int:
    """K and V of all S tokens: 2 x B x S x G x d elements."""
    return 2 * spec.batch * spec.s * spec.kv_inner * bytes_per_element


def memory(spec: AttnSpec, dtype: str) -> Memory:
    from attncli.formulas import memory as mem

    return mem(spec, dtype)


def variant_specs(spec: AttnSpec) -> list[AttnSpec]:
    """The four variants in the seed's order: 1 head without W_O, H heads with W_O, H heads
    without W_O, 1 head with W_O (two when H = 1).

    One head keeps the seed's meaning: a single head of width H*d, with one K/V head.
    """
    pairs = [(1, False), (spec.heads, True), (spec.heads, False), (1, True)]
    seen: list[tuple[int, bool]] = []
    for pair in pairs:
        if pair not in seen:
            seen.append(pair)
    one_head = {"kv_heads": None, "d_head": None if spec.d_head is None else spec.inner}
    return [spec.with_(heads=h, out_proj=o, **(one_head if h == 1 else {})) for h, o in seen]


def variant_label(spec: AttnSpec) -> str:
    heads = "1 head" if spec.heads == 1 else f"{spec.heads} heads"
    return f"{heads}, {'with' if spec.out_proj else 'without'} W_O"


def variants_note(spec: AttnSpec) -> str:
    return "below it what the same layer would cost without W_O, with one head of width H*d, and with neither"


def build_call(spec: AttnSpec, device: str) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    from attncli import modules
    from attncli.trace import call_args

    module = modules.build(spec, device)
    args, kwargs = call_args(modules.make_inputs(spec, device), spec)
    return module, args, kwargs


def relabel(scope: str, stage: str) -> str:
    """The data-flow rules of :mod:`attncli.handles` name the standard stages already."""
    return stage


def kernel_elements(spec: AttnSpec, naive: bool, dense: dict[str, int],
                    effective: dict[str, int]) -> list[tuple[str, int, int]]:
    """Fused: the projections and one ``attention`` kernel; naive: ``qk``, ``softmax`` and ``av``
    apart (:func:`attncli.roofline.stage_elements` counts the elements)."""
    from attncli.roofline import layer_dims, stage_elements

    macs = dense if naive else effective
    stage_macs = {st: macs[st] for st in ("q_proj", "k_proj", "v_proj", "out_proj")}
    if naive:
        stage_macs.update(qk=macs["qk"], softmax=0, av=macs["av"])
    else:
        stage_macs["attention"] = macs["qk"] + macs["av"]
    elements = stage_elements(layer_dims(spec, "float32"), naive)
    return [(st, stage_macs[st], n) for st, n in elements.items()]


def check_representable(spec: AttnSpec) -> None:
    from attncli.formulas import check_representable as check

    check(spec)
