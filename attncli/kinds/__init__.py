"""The kinds of attention layer attncli counts, one module each, all answering the same questions.

A kind (see :class:`attncli.kinds.base.Kind`) knows its stages and their dense closed forms,
its parameters, its KV-cache layout, its memory, the variants ``attncli flops`` shows, the
module attncli builds and traces for it (and how the tracer names that module's stages), and
the bytes a roofline kernel moves. The counting engine (:mod:`attncli.analyses.flops`,
:mod:`attncli.engine.trace`), the roofline and the renderers ask :func:`kind_of` and never branch on
a kind's name, so a new kind is a new module here plus one line in :data:`KINDS`.

- :mod:`attncli.kinds.standard`: multi-head, grouped-query and multi-query attention (the
  layer of ``nn.MultiheadAttention``, Llama, Mistral, ...).
- :mod:`attncli.kinds.mla`: multi-head latent attention (DeepSeek-V2/V3, Kimi K2), naive and
  absorbed forms; its torch layer is :mod:`attncli.kinds.mla_torch`.

Which kind a layer is comes from its settings (``AttnSpec.kind``: ``--kv-lora-rank`` selects
MLA). Nothing here imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from attncli.kinds import gated, gdn, mla, sparse_mla, standard

if TYPE_CHECKING:
    from attncli.kinds.base import Kind
    from attncli.spec import AttnSpec

KINDS: dict[str, Kind] = {standard.NAME: cast("Kind", standard), mla.NAME: cast("Kind", mla)}
"""Every kind by name (``AttnSpec.kind``)."""
KINDS[sparse_mla.NAME] = cast("Kind", sparse_mla)
KINDS[gdn.NAME] = cast("Kind", gdn)
KINDS[gated.NAME] = cast("Kind", gated)


def kind_of(spec: AttnSpec) -> Kind:
    """The kind of layer ``spec`` describes."""
    return KINDS[spec.kind]
