"""Every kind of layer attncli counts, in one table: its name (``AttnSpec.kind``, ``config.kind`` in JSON),
how messages name it, what selects it, and the module that answers for it (:class:`attncli.kinds.base.Kind`,
imported only when a layer of that kind is met, so ``--help`` and the standard layer import no other kind).

It also says which settings of :class:`attncli.spec.AttnSpec` belong to which kinds (:data:`KIND_FIELDS`),
which settings select a kind (:func:`select`) and which setting chooses its form. It stands on the ground
floor: :mod:`attncli.spec` names kinds in its errors with it and asks a layer's kind (:func:`kind_of`) for
its own checks and sizes, and the commands list the kinds they take with it. It imports no kind: a kind's
module is loaded by name (the ``Kind`` protocol is imported for type checking only).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from attncli.kinds.base import Kind


@dataclass(frozen=True)
class KindEntry:
    """One kind of layer: ``name``, ``title`` (how an error names it), ``selected_by`` (the flag, or the
    config.json, that makes a layer of this kind), ``module`` (its Kind), ``selected_when`` (the settings
    that, all set, make a layer this kind), ``impl`` (the ``--impl`` that runs the kind's own layer; None:
    the layer of ``nn.MultiheadAttention``, run by every ``--impl`` of :data:`attncli.choices.IMPLS`) and
    ``form`` (the setting that picks the form, the form of a decode step and the form otherwise)."""

    name: str
    title: str
    selected_by: str
    module: str
    selected_when: tuple[str, ...] = ()
    impl: str | None = None
    form: tuple[str, str, str] | None = None


_LATENT = ("mla_form", "absorbed", "naive")
_SCAN = ("gdn_form", "recurrent", "chunked")

REGISTRY: tuple[KindEntry, ...] = (
    KindEntry("standard", "standard attention", "default", "attncli.kinds.standard.kind"),
    KindEntry("mla", "multi-head latent attention (--kv-lora-rank)", "--kv-lora-rank", "attncli.kinds.mla.kind",
              ("kv_lora_rank",), "mla", _LATENT),
    KindEntry("sparse_mla", "top-k sparse MLA (index_topk)", "--config", "attncli.kinds.sparse_mla.kind",
              ("kv_lora_rank", "index_topk"), "sparse_mla", _LATENT),
    KindEntry("gdn", "Gated DeltaNet linear attention", "--config", "attncli.kinds.gdn.kind",
              ("linear_num_value_heads",), "gdn", _SCAN),
    KindEntry("gated", "gated full attention (Qwen3-Next)", "--config", "attncli.kinds.gated.kind",
              ("attn_output_gate",), "gated"),
    KindEntry("dsv4", "DeepSeek-V4 attention (compress_ratios)", "--config", "attncli.kinds.dsv4.kind",
              ("o_lora_rank",), "dsv4"),
    KindEntry("mamba2", "a Mamba2 layer (mamba_num_heads)", "--config", "attncli.kinds.mamba2.kind",
              ("mamba_num_heads",), "mamba2", ("mamba_form", "recurrent", "chunked")),
    KindEntry("kda", "Kimi Delta Attention linear attention (linear_attn_config)", "--config",
              "attncli.kinds.kda.kind", ("linear_num_heads",), "kda", _SCAN),
)
"""Every kind, the standard one (selected by nothing: the default) first."""

_BY_NAME: dict[str, KindEntry] = {e.name: e for e in REGISTRY}

ALL_KINDS: tuple[str, ...] = tuple(_BY_NAME)
"""Every kind's name, in the table's order."""

STANDARD: str = REGISTRY[0].name
"""The kind of a layer no setting selects another kind for."""

_SELECTION: tuple[KindEntry, ...] = tuple(_BY_NAME[n] for n in ("dsv4", "mamba2", "kda", "gdn", "gated",
                                                                 "sparse_mla", "mla"))
"""The kinds a setting selects, the first whose settings are all set winning (DeepSeek-V4 reads
``index_topk`` as top-k sparse MLA does, and top-k sparse MLA is MLA with an indexer)."""


def select(settings: object) -> str:
    """The kind of the layer ``settings`` (an :class:`attncli.spec.AttnSpec`) describe: the first of
    :data:`_SELECTION` whose ``selected_when`` settings are all set (not None, not False: a size of 0 still
    selects, and is refused by the kind), else :data:`STANDARD`."""
    for e in _SELECTION:
        if all((v := getattr(settings, f)) is not None and v is not False for f in e.selected_when):
            return e.name
    return STANDARD


def kind_of(settings: object) -> Kind:
    """The module that answers for the kind of layer ``settings`` describe (loaded on first use)."""
    return cast("Kind", importlib.import_module(_BY_NAME[select(settings)].module))


def entry(name: str) -> KindEntry:
    """The entry of the kind ``name`` (KeyError for a name no kind has)."""
    return _BY_NAME[name]


def title(name: str) -> str:
    """How messages name the kind ``name``."""
    return _BY_NAME[name].title


# ------------------------------------------------------------------ the settings each kind owns
MLA_FIELDS: tuple[str, ...] = ("kv_lora_rank", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
"""The settings of multi-head latent attention, named as transformers' DeepSeek configs name them."""
SPARSE_FIELDS: tuple[str, ...] = ("index_topk", "index_n_heads", "index_head_dim")
"""DeepSeek-V3.2's lightning indexer over MLA (top-k sparse attention), as its config names them."""
DSV4_FIELDS: tuple[str, ...] = ("compress_ratio", "o_groups", "o_lora_rank")
"""A DeepSeek-V4 layer's own settings (:mod:`attncli.kinds.dsv4`): its entry of ``compress_ratios`` and
the grouped low-rank output."""
GDN_FIELDS: tuple[str, ...] = ("linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim",
                               "linear_value_head_dim", "linear_conv_kernel_dim")
"""A Gated DeltaNet (linear attention) layer's sizes, as Qwen3-Next's config names them."""
MAMBA2_FIELDS: tuple[str, ...] = ("mamba_num_heads", "mamba_head_dim", "ssm_state_size", "mamba_n_groups",
                                  "mamba_conv_kernel", "mamba_chunk", "mamba_proj_bias", "mamba_conv_bias",
                                  "mamba_ssm_dtype")
"""A Mamba2 layer's settings (:mod:`attncli.kinds.mamba2`), read from a hybrid model's config (Nemotron-H's
``mamba_num_heads``, ``mamba_head_dim``, ``ssm_state_size``, ``n_groups``, ``conv_kernel``, ``chunk_size``, ...)."""
KDA_FIELDS: tuple[str, ...] = ("linear_num_heads", "linear_head_dim")
"""A Kimi Delta Attention layer's heads and head size, as transformers' ``KimiLinearConfig`` names them."""

KIND_FIELDS: dict[str, tuple[tuple[str, ...], tuple[object, ...]]] = {
    **{f: (("mla", "sparse_mla"), (None, "auto")) for f in (*MLA_FIELDS, "mla_form")},
    "q_lora_rank": (("mla", "sparse_mla", "dsv4"), (None,)),
    **{f: (("sparse_mla", "dsv4"), (None,)) for f in SPARSE_FIELDS},
    **{f: (("dsv4",), (None,)) for f in DSV4_FIELDS},
    **{f: (("gdn",), (None, "auto", 64)) for f in (*GDN_FIELDS, "gdn_form", "gdn_chunk")},
    **{f: (("mamba2",), (None, "auto")) for f in (*MAMBA2_FIELDS, "mamba_form")},
    **{f: (("kda",), (None,)) for f in KDA_FIELDS},
    **{f: (("gdn", "kda"), (None, "auto", 64)) for f in ("linear_conv_kernel_dim", "gdn_form", "gdn_chunk")},
    "attn_output_gate": (("gated",), (False,)),
    "out_bias": (("standard",), (None,)), "sinks": (("standard",), (False,)), "qk_norm": (("standard",), (None,)),
    **{f: (("standard",), (None, False)) for f in ("d_head_v", "k_eq_v", "kv_shared")},
}
"""Settings that belong to some kinds only: (the kinds, the values that mean "not set")."""


def takes(kind: str, setting: str) -> bool:
    """Whether a layer of kind ``kind`` takes ``setting`` (one of :data:`KIND_FIELDS`: ``mla_form`` is MLA's)."""
    return kind in KIND_FIELDS.get(setting, ((),))[0]
