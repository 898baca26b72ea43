"""attncli.models.configs: real config.json files, presets, provenance, overrides and malformed input.

The fixtures are the published config.json files (URLs beside each); the expected values are
the ones those files and the model papers state, never numbers read back from attncli.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attncli.models.configs import LayerSettings, list_presets, load_preset, merge, preset_names, read_hf_config
from attncli.spec import SpecError

# https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json
LLAMA_3_8B: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
    "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 8192,
    "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 500000.0,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.40.0.dev0",
    "use_cache": True, "vocab_size": 128256,
}
# https://huggingface.co/mistralai/Mistral-7B-v0.1/blob/main/config.json
MISTRAL_7B: dict[str, Any] = {
    "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
    "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
    "sliding_window": 4096, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.34.0.dev0", "use_cache": True, "vocab_size": 32000,
}
# https://huggingface.co/openai-community/gpt2/blob/main/config.json
GPT2: dict[str, Any] = {
    "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
    "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
    "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1, "summary_activation": None,
    "summary_first_dropout": 0.1, "summary_proj_to_labels": True, "summary_type": "cls_index",
    "summary_use_proj": True, "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
    "vocab_size": 50257,
}
# https://huggingface.co/google-bert/bert-base-uncased/blob/main/config.json
BERT_BASE: dict[str, Any] = {
    "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": False,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
    "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
    "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
    "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522,
}
# https://huggingface.co/Qwen/Qwen2.5-7B/blob/main/config.json (attention-related keys)
QWEN25_7B: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"], "hidden_size": 3584, "max_window_layers": 28, "model_type": "qwen2",
    "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4, "sliding_window": 131072,
    "use_sliding_window": False,
}


def write(tmp_path: Path, doc: Any, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def values(s: LayerSettings) -> tuple[Any, ...]:
    return (s.dim, s.heads, s.kv_heads, s.head_dim, s.window, s.bias, s.causal)


def test_llama_3_8b(tmp_path: Path) -> None:
    s = read_hf_config(write(tmp_path, LLAMA_3_8B))
    # hidden 4096, 32 heads, 8 KV heads, head_dim 4096/32 = 128, no bias, decoder
    assert values(s) == (4096, 32, 8, 128, None, False, True)
    assert s.mask == "causal" and s.family == "llama"
    assert s.sources["kv_heads"] == "config.json:num_key_value_heads"
    assert s.sources["head_dim"] == "default: dim/heads"
    assert s.sources["bias"] == "config.json:attention_bias"
    assert s.sources["causal"] == "config.json:architectures (LlamaForCausalLM)"


def test_mistral_window_and_directory(tmp_path: Path) -> None:
    write(tmp_path, MISTRAL_7B)
    s = read_hf_config(tmp_path)  # a snapshot directory holding config.json
    assert values(s) == (4096, 32, 8, 128, 4096, False, True)
    assert s.sources["window"] == "config.json:sliding_window"
    assert s.sources["bias"] == "architecture default: mistral"


def test_gpt2_and_bert_aliases_and_defaults(tmp_path: Path) -> None:
    g = read_hf_config(write(tmp_path, GPT2, "gpt2.json"))
    assert values(g) == (768, 12, 12, 64, None, True, True)
    assert g.sources["dim"] == "config.json:n_embd" and g.sources["heads"] == "config.json:n_head"
    assert g.sources["kv_heads"] == "default: heads"
    b = read_hf_config(write(tmp_path, BERT_BASE, "bert.json"))
    assert values(b) == (768, 12, 12, 64, None, True, False)
    assert b.mask == "none" and b.sources["bias"] == "architecture default: bert"


def test_qwen2_use_sliding_window_false_and_qkv_bias(tmp_path: Path) -> None:
    s = read_hf_config(write(tmp_path, QWEN25_7B))
    assert values(s) == (3584, 28, 4, 128, None, True, True)
    assert s.sources["window"] == "layer 0 is full: every layer full (config.json:use_sliding_window false)"
    # Qwen2Attention: q/k/v bias=True, o_proj bias=False (modeling_qwen2.py): the o bias is not counted
    assert s.attention_fields == {"out_bias": False}


def test_other_keys(tmp_path: Path) -> None:
    # T5 (https://huggingface.co/google-t5/t5-small/blob/main/config.json): d_model 512, num_heads 8, d_kv 64
    t5 = {"d_model": 512, "num_heads": 8, "d_kv": 64, "is_encoder_decoder": True, "model_type": "t5"}
    s = read_hf_config(write(tmp_path, t5))
    assert values(s) == (512, 8, 8, 64, None, False, False) and "encoder" in s.notes
    # multi_query: one KV head (GPTBigCode / StarCoder style)
    s = read_hf_config(write(tmp_path, {"n_embd": 6144, "n_head": 48, "multi_query": True}))
    assert s.kv_heads == 1 and s.sources["kv_heads"] == "config.json:multi_query"
    assert s.bias is None and s.sources["bias"].startswith("unknown")
    # layer_types: layer 0 global means no window on the layer described
    alternating = {"layer_types": ["full_attention", "sliding_attention"], "num_hidden_layers": 2}
    s = read_hf_config(write(tmp_path, {**MISTRAL_7B, **alternating, "model_type": "ministral"}))
    assert s.window is None
    # ... but MistralModel reads no layer_types: every layer gets the window (modeling_mistral.py: create_causal_mask
    # if self.config.sliding_window is None else create_sliding_window_causal_mask; MistralConfig warns)
    s = read_hf_config(write(tmp_path, {**MISTRAL_7B, **alternating}))
    assert s.window == 4096
    # a multimodal config's language model under text_config
    s = read_hf_config(write(tmp_path, {"model_type": "llava", "text_config": LLAMA_3_8B}))
    assert s.dim == 4096 and s.sources["dim"] == "config.json:text_config.hidden_size"


def test_presets_match_published_configs(tmp_path: Path) -> None:
    for name, doc in (("llama-3-8b", LLAMA_3_8B), ("mistral-7b", MISTRAL_7B), ("gpt2", GPT2),
                      ("bert-base", BERT_BASE), ("qwen2.5-7b", QWEN25_7B)):
        assert values(load_preset(name)) == values(read_hf_config(write(tmp_path, doc))), name


def test_presets_published_values() -> None:
    # Llama 3 70B (https://huggingface.co/meta-llama/Meta-Llama-3-70B/blob/main/config.json): 8192, 64, 8 KV
    assert values(load_preset("llama-3-70b")) == (8192, 64, 8, 128, None, False, True)
    # Gemma 2 9B (https://huggingface.co/google/gemma-2-9b/blob/main/config.json): hidden 3584, 16 heads,
    # 8 KV heads, head_dim 256, sliding window 4096 on the even (local) layers, layer 0 included
    g = load_preset("gemma-2-9b")
    assert values(g) == (3584, 16, 8, 256, 4096, False, True) and "layer 0" in g.notes
    # ViT-B/16 (arXiv:2010.11929 Table 1): hidden 768, 12 heads, encoder with qkv bias
    assert values(load_preset("vit-b-16")) == (768, 12, 12, 64, None, True, False)
    names = preset_names()
    assert {"gpt2", "bert-base", "vit-b-16", "llama-3-8b", "llama-3-70b", "mistral-7b", "qwen2.5-7b",
            "gemma-2-9b"} <= set(names)
    for p in list_presets():
        assert p.link and p.link.startswith("https://")
        # an MLA preset has no K/V heads (tests/models/test_configs_mla.py); a standard one's divide its heads
        assert (p.kv_heads is None) == (p.kind == "mla") and (p.kv_heads is None or p.heads % p.kv_heads == 0)
        # a preset's values are its own; what the family's class builds beyond them is said as such
        assert {v for k, v in p.sources.items() if k not in p.attention_fields} == {f"preset {p.name}"}
        assert all(p.sources[k].startswith("architecture: ") for k in p.attention_fields)


def test_unknown_preset() -> None:
    with pytest.raises(SpecError) as err:
        load_preset("llama-9")
    assert err.value.flag == "--preset" and "llama-3-8b" in err.value.message


def test_merge_overrides_and_provenance(tmp_path: Path) -> None:
    s = read_hf_config(write(tmp_path, LLAMA_3_8B))
    m = merge(s, {"kv_heads": 4, "seq": 2048})
    assert m.values == {"dim": 4096, "heads": 32, "kv_heads": 4, "head_dim": 128, "window": None, "chunk": None,
                        "bias": False, "mask": "causal", "seq": 2048}
    assert m.sources["kv_heads"] == "command line" and m.sources["seq"] == "command line"
    assert m.sources["heads"] == "config.json:num_attention_heads"
    # a head size the config only derived is derived again from the new sizes
    m = merge(s, {"dim": 1024})
    assert "head_dim" not in m.values and m.values["kv_heads"] == 8
    # an explicit head_dim in the config stays (Gemma 2: 16 x 256 != 3584)
    m = merge(load_preset("gemma-2-9b"), {"heads": 8, "mask": "none"})
    assert m.values["head_dim"] == 256 and m.values["mask"] == "none" and m.sources["mask"] == "command line"
    assert merge(None, {"dim": 64}).values == {"dim": 64}
    # bias unknown: left to the command's default
    m = merge(read_hf_config(write(tmp_path, {"n_embd": 64, "n_head": 4})), {})
    assert "bias" not in m.values


@pytest.mark.parametrize(("content", "needle"), [
    (b"\xff\xfe{}", "not UTF-8"),
    (b"{\"hidden_size\": 64,", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    # NOTE: NaN and Infinity parse as transformers' json.load reads them; a size must still be an integer.
    (b"{\"hidden_size\": NaN, \"num_attention_heads\": 2}", "hidden_size must be an integer"),
    (b"{\"hidden_size\": 64, \"num_attention_heads\": Infinity}", "num_attention_heads must be an integer"),
    (b"{\"hidden_size\": 64, \"num_attention_heads\": 4, \"sliding_window\": -Infinity}", "sliding_window"),
    (b"{\"hidden_size\": 64}", "no head count"),
    (b"{\"num_attention_heads\": 4}", "no hidden size"),
    (b"{\"hidden_size\": 64.0, \"num_attention_heads\": 4}", "hidden_size must be an integer"),
    (b"{\"hidden_size\": true, \"num_attention_heads\": 4}", "hidden_size must be an integer"),
    (b"{\"hidden_size\": \"64\", \"num_attention_heads\": 4}", "hidden_size must be an integer"),
    (b"{\"hidden_size\": 64, \"num_attention_heads\": 0}", "must be positive"),
    (b"{\"hidden_size\": 64, \"num_attention_heads\": 4, \"num_key_value_heads\": 3}", "not a multiple"),
    (b"{\"hidden_size\": 65, \"num_attention_heads\": 4}", "not a multiple"),
    (b"{\"hidden_size\": 99999999999, \"num_attention_heads\": 4}", "too large"),
    (b"{\"hidden_size\": 64, \"num_attention_heads\": 4, \"sliding_window\": -1}", "sliding_window must be"),
    (b"{\"hidden_size\": 64, \"num_attention_heads\": 4, \"attention_bias\": \"no\"}", "true or false"),
    (b"{\"hidden_size\": 64, \"num_attention_heads\": 4, \"architectures\": \"Llama\"}", "list of strings"),
])
def test_malformed_config(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(SpecError) as err:
        read_hf_config(path)
    assert err.value.flag == "--config" and needle in err.value.message
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        read_hf_config(tmp_path / "nope.json")
    assert err.value.flag == "--config" and "no such file" in err.value.message


def test_config_from_an_endless_device_is_refused_without_reading_it_all() -> None:
    # /dev/zero reports size 0 and never ends; the subprocess fuzz saw 3.7 GiB read from /dev/full.
    from attncli.models.configs import _load_json

    # NOTE: refused before any read: a device is not a regular file (it could block or never end)
    with pytest.raises(SpecError, match="not a regular file") as info:
        _load_json(Path("/dev/zero"))
    assert info.value.flag == "--config"


def test_infinity_in_an_unread_field_is_read_as_transformers_reads_it(tmp_path: Path) -> None:
    """Nemotron-H-56B publishes "time_step_limit": [0.0, Infinity], which Python's json (and so transformers)
    reads. The file gets the answer its fields deserve, not "not JSON": its dt clamp is elementwise, so it is read
    (its Mamba2 layers: attncli/kinds/mamba2), and a hostile field beside it is still refused by name."""
    folder = Path(__file__).resolve().parents[1] / "data" / "configs" / "nemotron-3-nano-30b-a3b"
    doc = json.loads((folder / "config.json").read_text())
    text = json.dumps(doc)[:-1] + ', "time_step_limit": [0.0, Infinity]}'
    path = tmp_path / "config.json"
    path.write_text(text)
    assert read_hf_config(path).linear_fields["mamba_num_heads"] == 64
    path.write_text(text[:-1] + ', "mamba_num_heads": 0}')
    with pytest.raises(SpecError) as err:
        read_hf_config(path)
    assert "not JSON" not in err.value.message and "mamba_num_heads" in err.value.message
