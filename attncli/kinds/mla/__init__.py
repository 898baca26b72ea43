"""Multi-head latent attention (DeepSeek-V2/V3/R1, Kimi K2, Kimi Linear's full layers), naive and absorbed forms.

- :mod:`attncli.kinds.mla.kind`: sizes, stages, closed forms, params, the latent cache, the Kind;
- :mod:`attncli.kinds.mla.torch_layer`: attncli's own layer (imports torch);
- :mod:`attncli.kinds.mla.shapes`: ``attncli shapes``.
"""
