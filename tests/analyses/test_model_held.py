"""``kv_cache_held_bytes``: the memory transformers' cache holds after a step, beside what it keeps.

The second counter is transformers itself: a small Gemma 3 text model (sliding and full layers) run on
CPU, a prefill and then a decode step into its DynamicCache, and the bytes of the storage under each
layer's keys and values (``untyped_storage().nbytes()``: a sliding layer's W - 1 kept tokens are a view
of the concatenation its update made). Closed form, written here: a full layer holds S tokens; a
sliding one the W - 1 (or fewer) it kept and the step's L, 2 x G x d x 4 bytes each (float32).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attncli.analyses.model import count_model, model_specs
from attncli.cli.layerflags import spec_keywords
from attncli.models.modelconfig import read_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

G, D, W, LAYERS = 2, 16, 8, 6


def held_by_transformers(config: Any, prefill: int, step: int) -> tuple[list[int], list[int]]:
    """Per layer: (bytes of the storage held, bytes of the tensors kept), after the step."""
    model = transformers.Gemma3ForCausalLM(config).eval()
    cache = transformers.DynamicCache(config=config)
    with torch.no_grad():
        model(torch.arange(prefill)[None] % 100, past_key_values=cache, use_cache=True)
        if step:
            model(torch.arange(step)[None] % 100, past_key_values=cache, use_cache=True)
    held, kept = [], []
    for layer in cache.layers:
        held.append(layer.keys.untyped_storage().nbytes() + layer.values.untyped_storage().nbytes())
        kept.append(layer.keys.numel() * 4 + layer.values.numel() * 4)
    return held, kept


def attncli_held(tmp_path: Path, config: Any, seq: int, cache: int) -> tuple[int, int]:
    doc = {**config.to_dict(), "model_type": "gemma3_text"}
    (tmp_path / "config.json").write_text(json.dumps(doc))
    m = read_model(tmp_path)
    values = {k: v for k, v in spec_keywords(m.layer).items() if k not in m.layer.attention_fields}
    base, linear = model_specs(values, m.layer.attention_fields, m.layer.linear_fields,
                               {"batch": 1, "seq": seq, "cache": cache})
    tot = count_model(m.name, m.source, base, m.schedule, dtype="float32", dtype_source="test",
                      linear=linear).totals()
    return tot["kv_cache_held_bytes"], tot["kv_cache_bytes"]


@pytest.mark.parametrize(("prefill", "step"), [(20, 0), (20, 1), (5, 0)])
def test_held_is_the_storage_transformers_keeps(tmp_path: Path, prefill: int, step: int) -> None:
    config = transformers.Gemma3TextConfig(
        hidden_size=32, num_attention_heads=4, num_key_value_heads=G, head_dim=D, num_hidden_layers=LAYERS,
        sliding_window=W, intermediate_size=32, vocab_size=100, sliding_window_pattern=3,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"] * 2)
    config._attn_implementation = "eager"
    held, kept = held_by_transformers(config, prefill, step)
    per_token = 2 * G * D * 4
    s, n_new = prefill + step, step or prefill
    n_cached = prefill if step else 0
    want_held = [per_token * (s if t == "full_attention" else min(n_cached, W - 1) + n_new)
                 for t in config.layer_types]
    want_kept = [per_token * (s if t == "full_attention" else min(s, W - 1)) for t in config.layer_types]
    assert held == want_held and kept == want_kept
    got = attncli_held(tmp_path, config, seq=step or prefill, cache=prefill if step else 0)
    assert got == (sum(want_held), sum(want_kept))
