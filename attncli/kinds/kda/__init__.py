"""Kimi Delta Attention (KDA), the linear-attention layers of Kimi Linear (``kimi_linear``).

Read from transformers 5.25 ``models/kimi_linear/modeling_kimi_linear.py`` (``KimiLinearDeltaAttention``,
``KimiLinearForgetGate``, ``KimiLinearRMSNormGated``, the torch fallbacks ``chunk_kimi_delta_attention``,
``recurrent_kimi_delta_attention``, ``causal_conv1d_fn``/``causal_conv1d_update``) and
``configuration_kimi_linear.py`` (``KimiLinearConfig.__post_init__``: ``linear_attn_config`` and its
1-based ``kda_layers``/``full_attn_layers``). KDA is Gated DeltaNet with a per-channel decay: H heads of
D features each for q, k and v (one size, ``linear_head_dim``), a decay per head and feature from a
low-rank forget gate, a sigmoid-gated output norm from a low-rank gate, and a float32 state of D x D
per head. Kimi Linear's other layers are MLA without RoPE (:mod:`attncli.kinds.mla.kind`).

- :mod:`attncli.kinds.kda.sizes`: the sizes of one layer, and the layer schedule from config.json;
- :mod:`attncli.kinds.kda.counts`: dense MACs per stage, params, the state transformers keeps;
- :mod:`attncli.kinds.kda.words`: stage labels, closed forms as text, what the sweep expects;
- :mod:`attncli.kinds.kda.torch_layer`: attncli's own layer (imports torch), equal to transformers'
  ``KimiLinearDeltaAttention`` with the same weights, counted as the closed forms;
- :mod:`attncli.kinds.kda.shapes`: ``attncli shapes``; :mod:`attncli.kinds.kda.traffic`: memory, roofline;
- :mod:`attncli.kinds.kda.kind`: the :class:`attncli.kinds.base.Kind` (``kda`` in the registry).

Only :mod:`attncli.kinds.kda.torch_layer` imports torch (and ``shapes`` inside a function).
"""
