"""Standard attention: multi-head, grouped-query and multi-query (the first kind).

Stages ``q_proj``, ``k_proj``, ``v_proj``, ``qk``, ``av``, ``out_proj``; H query heads of size
d share G key/value heads; the KV cache holds K and V of every token. The closed forms live in
:mod:`attncli.layer.formulas` and the five implementations in :mod:`attncli.layer.modules`; this module
answers the kind's questions (:class:`attncli.kinds.base.Kind`) from them. No torch at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attncli.choices import CLOSED_FORM_TERMS, CLOSED_FORMS, SHORT_STAGE_LABELS, STAGE_ABBREVIATIONS, STAGES
from attncli.choices import STAGE_LABELS as _LABELS
from attncli.kinds import base
from attncli.numbers import human, human_bytes

if TYPE_CHECKING:
    from attncli.kinds.base import Counted
    from attncli.kinds.cache import CacheSpec
    from attncli.kinds.shapes import ShapesReport
    from attncli.layer.formulas import Memory
    from attncli.spec import AttnSpec

NAME = "standard"
STAGE_LABELS: dict[str, str] = dict(_LABELS)
SHORT_LABELS: dict[str, str] = {k: v for k, v in SHORT_STAGE_LABELS.items() if k in STAGES}
ABBREVIATIONS: dict[str, str] = dict(STAGE_ABBREVIATIONS)
TERMS = CLOSED_FORM_TERMS
KV_FORM = "2*B*S*G*d"
PERMUTE_SKIPPED: str | None = None
"""``attncli report`` runs the permutation test on standard layers."""

SWEEP_EXPECTED: dict[str, str] = {
    "seq": "QK^T and weights x V grow as L^2 (exponent 2), projections as L (1); the attention matrix as L^2 (2)",
    "heads": "heads change no FLOPs (every stage has exponent 0), but the attention matrix grows as H (1): "
             "one L x S score matrix per head",
    "dim": "projections grow as E^2 (2), QK^T and weights x V as E (1)",
    "batch": "every stage grows as B (1)",
    "kv_heads": "k and v projections grow as G (1); q, QK^T, weights x V and W_O do not change (0)",
    "d_head": "every stage grows as d (1): q, k, v project to H*d and G*d, W_O reads H*d",
    "window": "dense counts do not change (0); the effective QK^T grows as W (1) while W < S",
    "cache": "QK^T and weights x V grow with S = N + L (towards 1 once N >> L); projections do not change (0)",
}
"""What the closed forms predict when ``attncli sweep`` sweeps each setting."""


SWEEP_EFFECTIVE_OWN = False
"""Whether :data:`SWEEP_EXPECTED` already says how the effective counts grow under a mask."""
TP_WORDS: str | None = None
"""How ``--tp`` shards the layer, in words (None: the words every kind shares)."""
PAGED_MODELLED = True
"""Whether a paged engine's layout of this kind's cache is modelled."""


def validate(spec: AttnSpec) -> None:
    """Standard attention's checks live in ``AttnSpec.validate`` itself, but for a model layer's own geometry."""
    if spec.own_geometry:
        validate_geometry(spec)


def validate_geometry(spec: AttnSpec) -> None:
    """A value head of its own size, K = V and a shared cache (set from a config's per-layer sizes, never
    a flag): sizes that agree, and the layers that run them (split and sdpa)."""
    from attncli.spec import SpecError

    if spec.d_head_v is not None and (isinstance(spec.d_head_v, bool) or not isinstance(spec.d_head_v, int)
                                      or spec.d_head_v < 1):
        raise SpecError("--config", f"a value head size must be a positive integer, got {spec.d_head_v!r}")
    if spec.k_eq_v and spec.v_head != spec.head_dim:
        raise SpecError("--config", f"keys that are the values (K = V) have one head size, not {spec.head_dim} "
                                    f"and {spec.v_head}")
    if spec.impl not in ("split", "sdpa"):
        raise SpecError("--impl", f"--impl {spec.impl} cannot run this model's layer (a value head of its own "
                                  "size, K = V or a shared KV cache); use --impl split or sdpa")
    if spec.add_bias_kv or spec.add_zero_attn or spec.kdim not in (None, spec.dim) or spec.vdim not in (None, spec.dim):
        raise SpecError("--config", "a model layer with its own value head, K = V or a shared cache is "
                                    "self-attention without nn.MultiheadAttention's extra keys")


def stages(spec: AttnSpec) -> tuple[str, ...]:
    return STAGES


def closed_form(spec: AttnSpec) -> dict[str, int]:
    from attncli.layer.formulas import closed_form as dense

    return dense(spec)


def visible_pairs(spec: AttnSpec) -> int:
    """(query, key) pairs of one batch item and head the mask leaves (:mod:`attncli.layer.visibility`)."""
    from attncli.layer.visibility import spec_visible_pairs

    return spec_visible_pairs(spec)


def effective(spec: AttnSpec, by_stage: dict[str, int]) -> tuple[dict[str, int], tuple[str, ...]]:
    """QK^T and weights x V over the visible (query, key) pairs (:func:`attncli.layer.formulas.effective`)."""
    from attncli.layer.formulas import effective as scaled

    return scaled(by_stage, spec)


def closed_form_texts(spec: AttnSpec) -> dict[str, str]:
    return dict(CLOSED_FORMS)


def params(spec: AttnSpec) -> dict[str, int]:
    from attncli.kinds.standard.shapes import closed_form_params

    return closed_form_params(spec)


def kv_bytes_per_token(spec: AttnSpec, bytes_per_element: int) -> int:
    """K and V of one token: G x (d + d_v) elements (2 x G x d). A layer that reads another layer's cache
    keeps none (0). K = V (Gemma 4's full layers) is counted as transformers keeps it: its cache's update
    stores the keys and the values (the key projection's output after ``v_norm``) both, 2 x G x d."""
    if spec.kv_shared:
        return 0
    return (spec.kv_inner + spec.kv_v_inner) * bytes_per_element


def kv_cache_bytes(spec: AttnSpec, bytes_per_element: int) -> int:
    """K and V of the tokens the cache keeps (S; W - 1 or C - 1 at most): 2 x B x S x G x d elements."""
    from attncli.layer.visibility import cached_tokens

    return spec.batch * cached_tokens(spec) * kv_bytes_per_token(spec, bytes_per_element)


def vllm_cache_spec(spec: AttnSpec, kv_cache_dtype: str, model_bytes: int, ssm_bytes: int | None,
                    tp: int) -> tuple[CacheSpec, ...]:
    """vLLM's ``FullAttentionSpec`` (or ``SlidingWindowSpec`` with W, ``ChunkedLocalAttentionSpec`` with C):
    K and V of max(1, G/N) heads per device (replicated when N > G), ``(head_size + head_size_v) x
    dtype`` bytes per head and token (``AttentionSpec.page_size_bytes``)."""
    from attncli.kinds.cache import MLA_ONLY_DTYPES, attention_spec, kv_element_bytes
    from attncli.spec import SpecError

    if kv_cache_dtype in MLA_ONLY_DTYPES:
        raise SpecError("--kv-cache-dtype", f"{kv_cache_dtype} is vLLM's packed layout for MLA layers; "
                                            "this model has none (auto, fp8, ...)")
    if spec.kv_shared:  # NOTE: kv_sharing_target_layer_name: vLLM allocates no pages for the layer
        return ()
    if spec.k_eq_v:
        raise SpecError("--engine", "vLLM's cache of a layer whose keys are its values (K = V) is not modelled")
    per_head = (spec.head_dim + spec.v_head) * kv_element_bytes(kv_cache_dtype, model_bytes)
    return (attention_spec(max(1, spec.n_kv_heads // tp) * per_head, spec.window, spec.chunk),)


def kv_cache_held_bytes(spec: AttnSpec, bytes_per_element: int) -> int:
    """The memory the cache's storage holds after the step: transformers' update concatenates the
    kept cache and the step's K and V (the S' keys the kernel computes over) and keeps a view of the
    last W - 1 (C - 1) of them, so the concatenation stays alive (:attr:`AttnSpec.s_kernel` tokens)."""
    return spec.batch * spec.s_kernel * kv_bytes_per_token(spec, bytes_per_element)


def memory(spec: AttnSpec, dtype: str) -> Memory:
    from attncli.layer.formulas import memory as mem

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
    from attncli.engine.trace import call_args
    from attncli.layer import modules

    module = modules.build(spec, device)
    args, kwargs = call_args(modules.make_inputs(spec, device), spec)
    return module, args, kwargs


def relabel(scope: str, stage: str) -> str:
    """The data-flow rules of :mod:`attncli.engine.handles` name the standard stages already; a key
    projection whose output is also the values (K = V) feeds both, and is the key projection."""
    return "k_proj" if scope == "W_k" and stage == "v_proj" else stage


def kernel_elements(spec: AttnSpec, naive: bool, dense: dict[str, int],
                    effective: dict[str, int]) -> list[tuple[str, int, int]]:
    """Fused: the projections and one ``attention`` kernel; naive: ``qk``, ``softmax`` and ``av``
    apart (:func:`attncli.kinds.standard.traffic.stage_elements` counts the elements)."""
    from attncli.kinds.standard.traffic import layer_dims, stage_elements

    macs = dense if naive else effective
    stage_macs = {st: macs[st] for st in ("q_proj", "k_proj", "v_proj", "out_proj")}
    if naive:
        stage_macs.update(qk=macs["qk"], softmax=0, av=macs["av"])
    else:
        stage_macs["attention"] = macs["qk"] + macs["av"]
    elements = stage_elements(layer_dims(spec, "float32"), naive)
    return [(st, stage_macs[st], n) for st, n in elements.items()]


def analyse_shapes(spec: AttnSpec) -> ShapesReport:
    from attncli.kinds.standard.shapes import analyse_standard

    return analyse_standard(spec)


def check_representable(spec: AttnSpec) -> None:
    from attncli.layer.formulas import check_representable as check

    check(spec)


def title_parts(spec: AttnSpec) -> list[str]:
    """Terms a title adds for this kind (the modern settings are named by the renderers)."""
    return []


def short_label(spec: AttnSpec) -> str:
    heads = "1 head" if spec.heads == 1 else f"{spec.heads} heads"
    return f"{heads} + W_O" if spec.out_proj else heads


def conclusion(r: Counted) -> str:
    """The sentence a reader needs: what heads cost, what W_O costs."""
    parts = []
    if r.heads_cost is None:
        parts.append("--heads 1: nothing to split")
    elif r.heads_cost == 0:
        parts.append(f"splitting into {r.spec.heads} heads costs no FLOPs")
    elif r.spec.n_kv_heads != r.spec.heads:
        change = f"save {human(-r.heads_cost)}" if r.heads_cost < 0 else f"add {human(r.heads_cost)}"
        parts.append(f"{r.spec.heads} heads sharing {r.spec.n_kv_heads} K/V heads {change} against one head of "
                     f"width H*d (whose K and V are {r.spec.heads // r.spec.n_kv_heads}x wider)")
    else:
        change = f"saves {human(-r.heads_cost)}" if r.heads_cost < 0 else f"adds {human(r.heads_cost)}"
        parts.append(f"splitting into {r.spec.heads} heads {change}")
    mem = _heads_memory(r)
    if mem:
        parts[-1] += mem
    cost, pct = r.out_proj_cost, r.out_proj_percent
    if cost is not None:
        parts.append(f"W_O adds {human(cost)}" + ("" if pct is None else f" (+{pct:.1f}%)"))
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def _heads_memory(r: Counted) -> str:
    """What the heads cost in memory: H score matrices instead of one (the memory table's column)."""
    many, one = r.get(r.spec.heads, True), r.get(1, True)
    if r.spec.heads == 1 or many is None or one is None or not one.memory.attention_matrix:
        return ""
    a, b = many.memory.attention_matrix, one.memory.attention_matrix
    if a == b:
        return ""
    return (f", but the heads hold {a / b:.3g}x the attention-matrix memory "
            f"({human_bytes(a)} against {human_bytes(b)} for one head)")


def device_spec(spec: AttnSpec, tp: int) -> AttnSpec:
    """What one of ``tp`` devices runs (vLLM's tensor parallelism): H/N query heads and max(1, G/N) K/V heads
    of the same size (a K/V head is replicated when N > G)."""
    from attncli.spec import SpecError

    if spec.heads % tp:
        raise SpecError("--tp", f"--tp {tp} must divide the {spec.heads} query heads")
    g = spec.n_kv_heads
    if (g >= tp and g % tp) or (g < tp and tp % g):
        raise SpecError("--tp", f"--tp {tp} must divide the {g} K/V heads or be a multiple of them "
                                "(a K/V head is replicated, not split)")
    return spec.with_(heads=spec.heads // tp, kv_heads=max(1, g // tp), d_head=spec.head_dim)


keeps_line = base.no_keeps_line
kv_fixed_bytes = base.no_fixed_bytes


def config_entries(spec: AttnSpec, d: dict[str, Any]) -> None:
    """The layer's own entries of the JSON ``config`` object (:meth:`attncli.spec.AttnSpec.to_dict`): the
    resolved head size and K/V heads, and a value head of its own size, K = V or a shared cache only when set
    (every other layer's JSON is unchanged)."""
    for key in [k for k in ("d_head_v", "k_eq_v", "kv_shared") if d.get(k) in (None, False)]:
        d.pop(key, None)
    d["head_dim"] = spec.head_dim
    d["kv_heads"] = spec.n_kv_heads
    del d["d_head"]


def head_counts(spec: AttnSpec) -> tuple[int, int | None]:
    """The layer's heads, and its grouped K/V heads G (``--kv-heads``), as ``model --tp`` shows a device's."""
    return spec.heads, spec.n_kv_heads


HF_CLASS = "built"
"""What ``--module`` does with a Hugging Face class for this kind: ``built`` (the class is built as this layer,
from flags or a config), ``config`` (built from a model's config only), ``counted`` (attncli counts a model's
layer of this kind with its own layer; ``--layer`` chooses another), ``own`` (the same; ``--module`` is at fault)
or ``refused`` (no class is built as it)."""
BENCH_FORMS = False
"""Whether ``attncli bench`` times the layer in each of its forms, or as asked only."""
