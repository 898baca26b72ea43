"""DeepSeek-V4's attention (``deepseek_v4``): compressed sparse (CSA), heavily compressed (HCA) and
sliding layers, with one shared K=V head, sinks and a grouped low-rank output.

Read from transformers 5.25 ``models/deepseek_v4/modeling_deepseek_v4.py`` (``DeepseekV4Attention``,
``DeepseekV4CSACompressor``, ``DeepseekV4HCACompressor``, ``DeepseekV4Indexer``, the caches
``DeepseekV4CSACache``/``DeepseekV4HCACache``) and ``configuration_deepseek_v4.py`` (``compress_ratios``
folded into ``layer_types``: 0 sliding, 4 CSA, 128 HCA), and the DeepSeek-V4 report ("DeepSeek-V4:
Towards Highly Efficient Million-Token Context Intelligence": section 2.3.1 CSA, eqs. 9-17; 2.3.2 HCA,
eqs. 20-23; the grouped output projection), its sections as transformers' docstrings cite them. The
counts are what transformers 5.25 executes: its CSA mask spans the compressed entries (transformers
PR #45928 collapsed an earlier [S, S*top_k] form), and they equal the 5.24 figures of issue 29.

- :mod:`attncli.kinds.dsv4.sizes`: the sizes of one model and its layer schedule, from config.json;
- :mod:`attncli.kinds.dsv4.counts`: dense and effective MACs per stage, params, the KV cache as
  transformers keeps it after a step.
- :mod:`attncli.kinds.dsv4.words`: stage labels, closed forms as text, and the one line of what a
  layer keeps and attends to;
- :mod:`attncli.kinds.dsv4.totals`: a whole model per layer type, for one step.
- :mod:`attncli.kinds.dsv4.torch_layer`: attncli's own layer (imports torch), equal to transformers'
  ``DeepseekV4Attention`` with the same weights, counted as the closed forms.
- :mod:`attncli.kinds.dsv4.kind`: the :class:`attncli.kinds.base.Kind` (``dsv4`` in the registry) that
  ``flops``, ``model``, ``sweep`` and ``bench`` count; ``shapes`` and ``report`` refuse it in one line.

Only :mod:`attncli.kinds.dsv4.torch_layer` imports torch.
"""
