"""Mamba2 (state space duality, SSD) layers of the hybrid models: Nemotron-H / Nemotron-3 (``nemotron_h``) is
read; Granite-4.0-H (``granitemoehybrid``) and Bamba (``bamba``) use the same mixer but stay refused by their
layout fields until their readers are written.

Read from transformers 5.25 ``models/nemotron_h/modeling_nemotron_h.py`` (``NemotronHMamba2Mixer``,
``mamba2_scan_forward``, ``mamba2_chunk_scan``, ``mamba2_selective_state_update``,
``causal_conv1d_forward``, ``NemotronHRMSNormGated``; the cache's ``LinearAttentionLayer`` in
``cache_utils.py``) and vLLM's ``MambaStateShapeCalculator.mamba2_state_shape``.

- :mod:`attncli.kinds.mamba2.sizes`: the sizes of one layer (:class:`Mamba2Sizes`) and a config's reader;
- :mod:`attncli.kinds.mamba2.counts`: stages, dense and effective MACs, params, the state;
- :mod:`attncli.kinds.mamba2.words`: labels and closed forms as text;
- :mod:`attncli.kinds.mamba2.torch_layer`: attncli's own layer (imports torch), transformers' names;
- :mod:`attncli.kinds.mamba2.shapes`: ``attncli shapes``;
- :mod:`attncli.kinds.mamba2.kind`: the :class:`attncli.kinds.base.Kind` (``mamba2`` in the registry).

Only :mod:`attncli.kinds.mamba2.torch_layer` (and the shapes' analysis, inside a function) import torch.
"""
