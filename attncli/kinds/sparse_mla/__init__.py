"""Top-k sparse MLA: MLA with the lightning indexer on every layer (DeepSeek-V3.2, GLM-5).

- :mod:`attncli.kinds.sparse_mla.kind`: the indexer's sizes and stages over MLA's, the Kind;
- :mod:`attncli.kinds.sparse_mla.torch_layer`: attncli's own layer (imports torch);
- :mod:`attncli.kinds.sparse_mla.shapes`: ``attncli shapes``.
"""
