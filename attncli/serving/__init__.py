"""Capacity as a serving engine sees it (no torch, no rich).

- :mod:`attncli.serving.cache`: one layer's KV-cache spec as an engine builds it
  (:class:`~attncli.serving.cache.CacheSpec`); each kind answers its own
  (``vllm_cache_spec`` in :mod:`attncli.kinds`).
- :mod:`attncli.serving.vllm`: vLLM v1's rules (block size, page unification, grouping with
  padding layers, blocks, blocks per request, max concurrency, the longest length that fits).
- :mod:`attncli.serving.inputs`: the engine's inputs as vLLM names them, validated.
"""
