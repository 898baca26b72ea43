"""The kinds of attention layer attncli counts, one module each, all answering the same questions.

A kind (see :class:`attncli.kinds.base.Kind`) knows its stages and their dense closed forms,
its parameters, its KV-cache layout, its memory, the variants ``attncli flops`` shows, the
module attncli builds and traces for it (and how the tracer names that module's stages), and
the bytes a roofline kernel moves. The counting engine (:mod:`attncli.analyses.flops`,
:mod:`attncli.engine.trace`), the roofline and the renderers ask :func:`attncli.registry.kind_of` and never branch on
a kind's name, so a new kind is a new folder here plus one entry in :data:`attncli.registry.REGISTRY`.

- :mod:`attncli.kinds.standard.kind`: multi-head, grouped-query and multi-query attention (the
  layer of ``nn.MultiheadAttention``, Llama, Mistral, ...).
- :mod:`attncli.kinds.mla.kind`: multi-head latent attention (DeepSeek-V2/V3, Kimi K2), naive and
  absorbed forms; its torch layer is :mod:`attncli.kinds.mla.torch_layer`.
- :mod:`attncli.kinds.dsv4`: DeepSeek-V4's sliding, compressed sparse and heavily compressed layers
  (a package: sizes, counts, words, the torch layer, the kind).
- :mod:`attncli.kinds.mamba2`: the Mamba2 layers of hybrid models (Nemotron-H), a package as ``dsv4``.
- :mod:`attncli.kinds.kda`: Kimi Delta Attention, Kimi Linear's linear-attention layers (a package too).
- :mod:`attncli.kinds.base` (the protocol, and the answers several kinds share) and :mod:`attncli.kinds.forms`
  (what the kinds of two forms answer alike, from the registry entry's ``form``).

Which kind a layer is comes from its settings (``AttnSpec.kind``: ``--kv-lora-rank`` selects
MLA). Nothing here imports torch.
"""
