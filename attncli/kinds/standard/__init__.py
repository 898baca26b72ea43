"""Standard attention: multi-head, grouped-query and multi-query (the layer of ``nn.MultiheadAttention``,
Llama, Mistral, Gemma, gpt-oss, ...), with a window, a chunk, per-layer-type sizes, K = V and a shared cache.

- :mod:`attncli.kinds.standard.kind`: the :class:`attncli.kinds.base.Kind` (``standard`` in the registry);
  its closed forms, masks and the five torch implementations are :mod:`attncli.layer`.
"""
