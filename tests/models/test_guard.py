"""The truth guard (attncli.models.guard): a config whose layer attncli does not model is refused with
one --config line naming the field; neutral values pass; what attncli reads but does not count
is named in the notes.

Field names and meanings are transformers 5.24's config classes (configuration_gemma3n.py
num_kv_shared_layers, configuration_llama4.py attention_chunk_size, configuration_qwen3_next.py
full_attention_interval and linear_*, configuration_deepseek_v32.py index_*,
configuration_longformer.py attention_window, configuration_gpt_neo.py attention_types,
configuration_big_bird.py attention_type, configuration_modernbert.py local_attention and
global_attn_every_n_layers, configuration_utils.ALLOWED_LAYER_TYPES). The real configs are in
tests/data/configs (sources in its README).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attncli.models import allowlist, families, guard
from attncli.models.configs import read_hf_config
from attncli.spec import SpecError

DATA = Path(__file__).parents[1] / "data" / "configs"

# A small Llama-like decoder layer every case starts from.
BASE: dict[str, Any] = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 256,
                        "num_attention_heads": 4, "num_key_value_heads": 2}


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(SpecError) as err:
        read_hf_config(path)
    assert err.value.flag == "--config" and "\n" not in str(err.value)
    return err.value.message


@pytest.mark.parametrize(("extra", "field", "meaning"), [
    ({"num_kv_shared_layers": 15}, "num_kv_shared_layers", "Gemma-3n KV sharing across layers"),
    ({"full_attention_interval": 4}, "full_attention_interval", "Gated DeltaNet"),
    ({"linear_num_key_heads": 16}, "linear_num_key_heads", "Gated DeltaNet"),
    ({"linear_num_value_heads": 32}, "linear_num_value_heads", "Gated DeltaNet"),
    ({"linear_key_head_dim": 128}, "linear_key_head_dim", "Gated DeltaNet"),
    ({"linear_value_head_dim": 128}, "linear_value_head_dim", "Gated DeltaNet"),
    ({"linear_conv_kernel_dim": 4}, "linear_conv_kernel_dim", "Gated DeltaNet"),
    ({"index_topk": 2048}, "index_topk", "DeepSeek-V3.2 sparse attention"),
    ({"index_n_heads": 64}, "index_n_heads", "DeepSeek-V3.2 lightning indexer"),
    ({"index_head_dim": 128}, "index_head_dim", "DeepSeek-V3.2 lightning indexer"),
    ({"attention_window": 512}, "attention_window", "Longformer"),
    ({"attention_window": [0, 512]}, "attention_window", "Longformer"),
    ({"attention_types": [[["global", "local"], 12]]}, "attention_types", "GPT-Neo local attention"),
    ({"attention_layers": ["global", "local"]}, "attention_layers", "GPT-Neo local attention"),
    ({"attention_type": "block_sparse"}, "attention_type", "BigBird block_sparse"),
    ({"global_attn_every_n_layers": 3}, "global_attn_every_n_layers", "ModernBERT"),
    ({"local_attention": 128}, "local_attention", "ModernBERT"),
    ({"use_bidirectional_attention": True}, "use_bidirectional_attention", "bidirectional"),
    ({"use_bidirectional_attention": "all"}, "use_bidirectional_attention", "bidirectional"),  # Gemma 4
    ({"position_embedding_type": "relative_key"}, "position_embedding_type", "relative position"),
    ({"attn_layer_period": 8}, "attn_layer_period", "Jamba"),
    ({"block_types": ["recurrent", "attention"]}, "block_types", "RecurrentGemma"),
    ({"hybrid_override_pattern": "M-M*-"}, "hybrid_override_pattern", "Nemotron-H"),
    ({"layers_block_type": ["mamba", "attention"]}, "layers_block_type", "hybrid"),
])
def test_guarded_field_is_refused_naming_it(tmp_path: Path, extra: dict[str, Any], field: str,
                                            meaning: str) -> None:
    msg = refused(write(tmp_path, {**BASE, **extra}))
    assert msg.startswith(f"{field} ") and meaning in msg
    assert msg.endswith("is not modelled; attncli would count a different layer")


@pytest.mark.parametrize("extra", [
    {"num_kv_shared_layers": 0}, {"attention_chunk_size": None}, {"full_attention_interval": 1},
    {"linear_num_key_heads": None}, {"index_topk": None}, {"attention_window": 0}, {"attention_window": [0, 0]},
    {"attention_types": [[["global"], 2]]}, {"attention_layers": ["global", "global"]},
    {"attention_type": "original_full"}, {"global_attn_every_n_layers": 1},
    {"global_attn_every_n_layers": 1, "local_attention": 128}, {"use_bidirectional_attention": False},
    {"use_bidirectional_attention": "vision"},
    {"position_embedding_type": "absolute"}, {"attn_layer_period": 1}, {"block_types": ["attention"]},
    {"layers_block_type": ["attention", "attention"]}, {"hybrid_override_pattern": ""},
    {"layer_types": ["full_attention", "full_attention"]},
])
def test_neutral_values_pass(tmp_path: Path, extra: dict[str, Any]) -> None:
    s = read_hf_config(write(tmp_path, {**BASE, **extra}))
    assert (s.dim, s.heads, s.kv_heads, s.head_dim) == (256, 4, 2, 64)


def test_qwen3_next_and_deepseek_v32_are_modelled() -> None:
    """Qwen3-Next (Qwen3NextConfig: 3 Gated DeltaNet : 1 gated full) and DeepSeek-V3.2 (the lightning
    indexer over MLA, DeepSeek-V3.2-Exp inference/config_671B_v3.2.json) are counted since their kinds exist."""
    nxt = read_hf_config(DATA / "qwen3-next-80b-a3b" / "config.json")
    assert nxt.layer0_type == "linear_attention" and nxt.linear_fields["linear_num_value_heads"] == 32
    assert nxt.attention_fields == {"attn_output_gate": True}
    v32 = read_hf_config(DATA / "deepseek-v3.2" / "config.json")
    assert v32.attention_fields == {"index_topk": 2048, "index_n_heads": 64, "index_head_dim": 128}


@pytest.mark.parametrize(("doc", "needle"), [
    # GLM-5 with shared indexers (index_topk_freq 4: GlmMoeDsaConfig's indexer_types "shared" on the layers
    # between), not the layer attncli models; without MLA, the indexer's default top-k is refused
    ({"model_type": "glm_moe_dsa", "hidden_size": 256, "num_attention_heads": 4, "kv_lora_rank": 64,
      "index_topk_freq": 4}, "index_topk_freq 4"),
    ({"model_type": "glm_moe_dsa", "hidden_size": 256, "num_attention_heads": 4},
     "index_topk (absent: glm_moe_dsa's default 2048)"),
    # an indexer without MLA
    ({"model_type": "deepseek_v32", "hidden_size": 256, "num_attention_heads": 4, "index_topk": 64},
     "index_topk 64"),
    # Gated DeltaNet fields in a family attncli does not know them in
    ({"model_type": "llama", "hidden_size": 256, "num_attention_heads": 4, "linear_num_key_heads": 4},
     "linear_num_key_heads 4"),
])
def test_the_same_fields_elsewhere_stay_refused(tmp_path: Path, doc: dict[str, Any], needle: str) -> None:
    assert refused(write(tmp_path, doc)).startswith(needle)


@pytest.mark.parametrize(("doc", "needle"), [
    # transformers' config classes set these when the file omits them
    # (Gemma3nTextConfig's num_kv_shared_layers 15 is modelled, attncli/models/geometry.py: here it leaves
    # no layer of the 10 to hold a cache)
    ({"model_type": "gemma3n_text", "hidden_size": 256, "num_attention_heads": 4, "num_hidden_layers": 10},
     "num_kv_shared_layers 15 leaves no layer of the 10"),
    ({"model_type": "big_bird", "hidden_size": 256, "num_attention_heads": 4},
     "attention_type (absent: big_bird's default \"block_sparse\")"),
    # Qwen3-Next without the sizes of its linear layers
    ({"model_type": "qwen3_next", "hidden_size": 256, "num_attention_heads": 4, "full_attention_interval": 1},
     "linear_num_key_heads is missing: qwen3_next's linear layers need it"),
])
def test_family_defaults_are_refused_too(tmp_path: Path, doc: dict[str, Any], needle: str) -> None:
    assert needle in refused(write(tmp_path, doc))


def test_llama4_layer_0_is_read_as_chunked(tmp_path: Path) -> None:
    """Chunked attention is modelled (--chunk): Llama-4-Scout's layer 0 uses RoPE and attends within
    chunks of 8192 tokens (Llama4TextConfig: attention_chunk_size 8192, every 4th layer NoPE and full)."""
    s = read_hf_config(DATA / "llama-4-scout" / "config.json")
    assert s.chunk == 8192 and s.window is None and s.sources["chunk"].endswith("(layer 0 is chunked)")
    # the family default chunk applies when the file leaves it out
    doc = {"model_type": "llama4_text", "hidden_size": 256, "num_attention_heads": 4}
    assert read_hf_config(write(tmp_path, doc)).chunk == 8192


def test_llama4_with_chunking_switched_off_is_modelled(tmp_path: Path) -> None:
    doc = {"model_type": "llama4_text", "hidden_size": 256, "num_attention_heads": 4, "attention_chunk_size": None,
           "use_qk_norm": True}
    s = read_hf_config(write(tmp_path, doc))
    assert s.heads == 4 and "qk-norm" in s.notes


@pytest.mark.parametrize(("types", "needle"), [
    (["full_attention", "banana_attention"],
     "layer_types[1] \"banana_attention\" (a layer type attncli does not know)"),
    (["linear_attention", "full_attention"], "layer_types[0] \"linear_attention\" (linear attention"),
    (["full_attention", "attention"], "layer_types[1] \"attention\""),
])
def test_layer_types_other_than_full_and_sliding_are_refused(tmp_path: Path, types: list[str], needle: str) -> None:
    msg = refused(write(tmp_path, {**BASE, "sliding_window": 128, "layer_types": types}))
    assert msg.startswith(needle)


def test_a_window_in_an_encoder_is_refused(tmp_path: Path) -> None:
    # an encoder's window reaches both ways (ModernBERT); attncli's --window is causal
    doc = {"model_type": "bert", "hidden_size": 256, "num_attention_heads": 4, "sliding_window": 64}
    assert "bidirectional (encoder)" in refused(write(tmp_path, doc))
    # a family attncli cannot tell is causal: its window may reach both ways (T5Gemma 2's encoder,
    # modeling_t5gemma2.py sliding_window_mask_function(is_causal=False)), so it is refused too
    doc = {"model_type": "acme_lm", "hidden_size": 256, "num_attention_heads": 4, "sliding_window": 64}
    assert "cannot tell is causal" in refused(write(tmp_path, doc))
    # ... and kept, causal, once the architecture says it is a causal LM
    doc["architectures"] = ["AcmeForCausalLM"]
    assert read_hf_config(write(tmp_path, doc)).window == 64


@pytest.mark.parametrize("folder", ["gpt-oss-20b", "gemma-2-9b", "gemma-3-27b", "mistral-7b-v0.1", "qwen2.5-7b",
                                    "qwen3-8b", "phi-3-mini-4k", "llama-3.1-8b", "llama-3.1-70b", "deepseek-v3",
                                    "kimi-k2", "deepseek-v2-lite"])
def test_modelled_configs_are_read_with_no_unknown_fields(folder: str) -> None:
    s = read_hf_config(DATA / folder)
    assert s.heads > 0
    assert "does not know" not in s.notes and "not one attncli has verified" not in s.notes


def test_gpt_oss_names_its_sinks() -> None:
    # GptOssAttention.sinks = nn.Parameter(torch.empty(num_attention_heads)): 64 for gpt-oss-20b
    s = read_hf_config(DATA / "gpt-oss-20b")
    assert (s.window, s.kv_heads, s.head_dim, s.bias) == (128, 8, 64, True)  # layer_types[0] sliding
    assert "sinks: one learned logit per head (64 parameters, in params)" in s.notes
    assert s.attention_fields == {"sinks": True}
    assert "12 sliding_attention, 12 full_attention" in s.notes


def test_gemma2_names_its_softcapping() -> None:
    # google/gemma-2-9b config.json: attn_logit_softcapping 50.0, final_logit_softcapping 30.0
    s = read_hf_config(DATA / "gemma-2-9b")
    assert "attention scores soft-capped at 50.0 (tanh) before the softmax" in s.notes
    assert "final_logit_softcapping 30.0 caps the LM head's logits" in s.notes
    assert "even layers sliding (window 4096)" in s.notes


def test_gemma2_softcapping_default_and_neutral(tmp_path: Path) -> None:
    doc = {"model_type": "gemma2", "hidden_size": 256, "num_attention_heads": 4}
    assert "soft-capped at 50.0" in read_hf_config(write(tmp_path, doc)).notes  # Gemma2Config default
    doc |= {"attn_logit_softcapping": None, "final_logit_softcapping": None}
    assert "soft-capped" not in read_hf_config(write(tmp_path, doc)).notes


@pytest.mark.parametrize(("folder", "head_dim"), [("qwen3-8b", 128), ("gemma-3-27b", 128)])
def test_qk_norm_families_name_it(folder: str, head_dim: int) -> None:
    # Qwen3Attention / Gemma3Attention: q_norm and k_norm are RMSNorm(head_dim)
    s = read_hf_config(DATA / folder)
    assert f"qk-norm: an RMSNorm on each query and key head (2 x {head_dim} weights, in params" in s.notes
    assert s.attention_fields == {"qk_norm": "head"}


def test_an_unverified_family_is_named_with_the_fields_read(tmp_path: Path) -> None:
    doc = {"model_type": "acme_lm", "hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 1,
           "rope_theta": 10000.0}
    s = read_hf_config(write(tmp_path, doc))
    assert ("family acme_lm is not one attncli has verified, it read hidden_size, model_type, "
            "num_attention_heads, num_key_value_heads: check them against the model's code") in s.notes
    assert "rope_theta" not in s.notes  # a field attncli knows to be harmless


def test_an_unknown_field_is_refused_by_name(tmp_path: Path) -> None:
    # the guard is an allowlist: a field neither read nor known to be harmless may be another layer
    doc = {"model_type": "acme_lm", "hidden_size": 256, "num_attention_heads": 4, "acme_attention_knob": 3}
    assert refused(write(tmp_path, doc)) == ("acme_attention_knob (not modelled for acme_lm); attncli would count "
                                             "a different layer (--ignore-field NAME passes a field you know to "
                                             "be harmless)")
    s = read_hf_config(write(tmp_path, doc), ignore=("acme_attention_knob",))
    assert s.ignored_fields == ("acme_attention_knob",) and s.heads == 4


def test_the_tables_do_not_overlap() -> None:
    guarded = {g[0] for g in guard.GUARDED}
    read = {k for keys in families.SIZE_GROUPS for k in keys} | families.ALWAYS_READ
    for table in (set(allowlist.HARMLESS), set(guard.NOTED), read):
        assert not guarded & table
    assert not set(allowlist.HARMLESS) & read and not set(guard.NOTED) & set(allowlist.HARMLESS)
    assert all(why for why in allowlist.HARMLESS.values()) and all(g[1] for g in guard.GUARDED)
    for family, fields in guard.FAMILY_DEFAULTS.items():
        assert set(fields) <= guarded, family



def test_deepseek_v4_is_read_with_every_field_known() -> None:
    """DeepSeek-V4 (configuration_deepseek_v4.py) is modelled (attncli/kinds/dsv4): its attention fields are
    read, the rest (hyper-connections, hash experts, compressed RoPE, MTP depth) known to be outside the
    layer's multiply-adds, so no field is left unknown; layer 0 is a sliding layer of W 128."""
    s = read_hf_config(DATA / "deepseek-v4-flash" / "config.json")
    assert s.layer0_type == "sliding_attention" and s.window == 128
    assert s.fields_for("compressed_sparse_attention")["compress_ratio"] == 4
    assert s.fields_for("compressed_sparse_attention")["index_topk"] == 512
    assert "index_topk" not in s.fields_for("heavily_compressed_attention")
    assert s.fields_for("heavily_compressed_attention")["compress_ratio"] == 128
    assert not any("does not know" in n or "not one attncli has verified" in n for n in s.note_lines), s.note_lines


def test_deepseek_v4_fields_elsewhere_stay_unknown() -> None:
    """compress_ratios and o_lora_rank are read in deepseek_v4 only: in another family they are named as
    fields attncli does not know."""
    with pytest.raises(SpecError) as err:
        guard.refuse_unread({"compress_ratios": [0], "o_lora_rank": 8}, "llama", "", read=())
    assert "compress_ratios" in err.value.message and "o_lora_rank" in err.value.message
