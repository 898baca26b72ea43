"""Parameters are the module's parameters: ``attncli model``'s total equals the sum of ``numel`` of the real
transformers attention modules of the whole model, built on meta from the published config.json
(tests/data/configs; sources in its README), and Falcon's K/V heads are FalconAttention's.

The second counter is transformers itself: ``AutoModelForCausalLM.from_config`` on the meta device,
every ``layers.N.self_attn`` module of the language model summed. What these models hold beyond q/k/v/o
(GptOssAttention.sinks; Qwen3/Gemma3 q_norm and k_norm of head_dim; MiniMaxM2 q_norm and k_norm over
all features and no biases, its config stating no attention_bias) is what this test is about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.analyses.test_model import model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

DATA = Path(__file__).resolve().parents[1] / "data" / "configs"


def real_attention_params(doc: dict[str, Any]) -> int:
    """Sum of numel of the language model's ``self_attn`` modules, as transformers builds the model."""
    doc = {k: v for k, v in doc.items() if k not in ("quantization_config", "auto_map")}
    # NOTE: Kimi K2 publishes model_type kimi_k2 with architectures DeepseekV3ForCausalLM: transformers
    # builds it as deepseek_v3.
    model_type = "deepseek_v3" if doc["model_type"] == "kimi_k2" else doc.pop("model_type")
    doc.pop("model_type", None)
    config = transformers.CONFIG_MAPPING[model_type](**doc)
    with torch.device("meta"):
        built = transformers.AutoModelForCausalLM.from_config(config)
    total = 0
    for name, module in built.named_modules():
        if name.endswith("self_attn") and "vision" not in name:
            total += sum(p.numel() for p in module.parameters())
    return total


@pytest.mark.parametrize(("folder", "published"), [
    # the totals the issue measured with the same method
    ("gpt-oss-20b", 637_203_456),
    ("gemma-3-27b", 4_095_753_728),
    ("qwen3-8b", 1_509_958_656),
    ("minimax-m2.5", 2_730_936_320),
    ("kimi-k2", None),
])
def test_model_params_are_the_modules_params(folder: str, published: int | None) -> None:
    want = real_attention_params(json.loads((DATA / folder / "config.json").read_text()))
    if published is not None:
        assert want == published
    assert model(folder, seq=16).totals()["params"] == want


@pytest.mark.parametrize(("fields", "kv_heads"), [
    # Falcon-7B as save_pretrained writes it: num_kv_heads 71 beside multi_query true
    ({"hidden_size": 4544, "num_attention_heads": 71, "num_kv_heads": 71, "multi_query": True,
      "new_decoder_architecture": False, "num_hidden_layers": 32}, 1),
    # Falcon-40B's layout: new_decoder_architecture with 8 K/V heads
    ({"hidden_size": 8192, "num_attention_heads": 128, "num_kv_heads": 8, "new_decoder_architecture": True,
      "num_hidden_layers": 60}, 8),
    # multi_query false: num_kv_heads is read
    ({"hidden_size": 256, "num_attention_heads": 8, "num_kv_heads": 8, "multi_query": False,
      "num_hidden_layers": 2}, 8),
])
def test_falcon_kv_heads_are_falcon_attentions(tmp_path: Path, fields: dict[str, Any], kv_heads: int) -> None:
    from attncli.models.modelconfig import read_model

    config = transformers.FalconConfig(**fields, bias=False, vocab_size=1024, parallel_attn=True)
    # NOTE: without the num_key_value_heads that 5.25's FalconConfig adds to its dict: the files on the Hub
    # (and earlier releases' save_pretrained) carry num_kv_heads beside multi_query only.
    written = {k: v for k, v in config.to_dict().items() if k != "num_key_value_heads"}
    (tmp_path / "config.json").write_text(json.dumps(written))
    with torch.device("meta"):
        attn = transformers.models.falcon.modeling_falcon.FalconAttention(config, layer_idx=0)
    assert attn.num_kv_heads == kv_heads
    m = read_model(tmp_path)
    assert m.layer.kv_heads == kv_heads
    # KV at 32,768 tokens, bfloat16: layers x S x 2 (K and V) x G x d x 2 B
    d = fields["hidden_size"] // fields["num_attention_heads"]
    from attncli.analyses.model import count_model, model_specs
    from attncli.cli.layerflags import spec_keywords

    values = dict(spec_keywords(m.layer))
    base, _ = model_specs(values, m.layer.attention_fields, m.layer.linear_fields,
                          {"batch": 1, "seq": 1, "cache": 32767})
    got = count_model(m.name, m.source, base, m.schedule, dtype="bfloat16", dtype_source="test")
    assert got.totals()["kv_cache_bytes"] == fields["num_hidden_layers"] * 32768 * 2 * kv_heads * d * 2
    assert got.totals()["params"] == fields["num_hidden_layers"] * sum(p.numel() for p in attn.parameters())
    if fields["hidden_size"] == 4544:
        assert got.totals()["kv_cache_bytes"] == 268_435_456  # not 71x that
