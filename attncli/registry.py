"""Every kind of layer attncli counts, in one table: its name (``AttnSpec.kind``, ``config.kind`` in JSON),
how messages name it, what selects it, and the module that answers for it (:class:`attncli.kinds.base.Kind`,
imported only when a layer of that kind is met, so ``--help`` and the standard layer import no other kind).

It stands on the ground floor (it imports nothing): :mod:`attncli.spec` names kinds in its errors with it,
:mod:`attncli.kinds` finds a kind's module with it, and the commands list the kinds they take with it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindEntry:
    """One kind of layer: ``name``, ``title`` (how an error names it), ``selected_by`` (the flag, or the
    config.json, that makes a layer of this kind) and ``module`` (its Kind)."""

    name: str
    title: str
    selected_by: str
    module: str


REGISTRY: tuple[KindEntry, ...] = (
    KindEntry("standard", "standard attention", "default", "attncli.kinds.standard.kind"),
    KindEntry("mla", "multi-head latent attention (--kv-lora-rank)", "--kv-lora-rank", "attncli.kinds.mla.kind"),
    KindEntry("sparse_mla", "top-k sparse MLA (index_topk)", "--config", "attncli.kinds.sparse_mla.kind"),
    KindEntry("gdn", "Gated DeltaNet linear attention", "--config", "attncli.kinds.gdn.kind"),
    KindEntry("gated", "gated full attention (Qwen3-Next)", "--config", "attncli.kinds.gated.kind"),
    KindEntry("dsv4", "DeepSeek-V4 attention (compress_ratios)", "--config", "attncli.kinds.dsv4.kind"),
    KindEntry("mamba2", "a Mamba2 layer (mamba_num_heads)", "--config", "attncli.kinds.mamba2.kind"),
    KindEntry("kda", "Kimi Delta Attention linear attention (linear_attn_config)", "--config",
              "attncli.kinds.kda.kind"),
)
"""Every kind, the standard one first."""

_BY_NAME: dict[str, KindEntry] = {e.name: e for e in REGISTRY}

ALL_KINDS: tuple[str, ...] = tuple(_BY_NAME)
"""Every kind's name, in the table's order."""


def entry(name: str) -> KindEntry:
    """The entry of the kind ``name`` (KeyError for a name no kind has)."""
    return _BY_NAME[name]


def title(name: str) -> str:
    """How messages name the kind ``name``."""
    return _BY_NAME[name].title
