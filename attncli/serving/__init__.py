"""Capacity as a serving engine sees it (no torch, no rich).

Each kind answers one layer's KV-cache spec as an engine builds it (``vllm_cache_spec``, a
:class:`~attncli.kinds.cache.CacheSpec`, the kinds' own vocabulary, below this package); here:

- :mod:`attncli.serving.vllm`: vLLM v1's rules (block size, page unification, grouping with
  padding layers, blocks, blocks per request, max concurrency, the longest length that fits).
- :mod:`attncli.serving.inputs`: the engine's inputs as vLLM names them, validated.
"""
