"""Gated DeltaNet linear attention (Qwen3-Next's and Qwen3.5's linear layers), chunked and recurrent forms.

- :mod:`attncli.kinds.gdn.kind`: sizes, stages, closed forms, params, the constant state, the Kind;
- :mod:`attncli.kinds.gdn.torch_layer`: attncli's own layer (imports torch);
- :mod:`attncli.kinds.gdn.shapes`: ``attncli shapes``;
- :mod:`attncli.kinds.gdn.traffic`: the roofline's kernels and the memory of a step.
"""
