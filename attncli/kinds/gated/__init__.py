"""Gated full attention: standard attention with a sigmoid output gate (Qwen3-Next's and Qwen3.5's full
layers, AFMoE).

- :mod:`attncli.kinds.gated.kind`: the gate's stage and params over standard attention's, the Kind;
- :mod:`attncli.kinds.gated.torch_layer`: attncli's own layer (imports torch).
"""
