"""The packaged model presets (attncli/data/models): index, files, and the published values they hold.

Every expected value below is written from the model's published sources (named beside it;
attncli/data/models/README.md says which copy of each config.json was checked), never computed
from the preset files. The values are the ones GUIDE section 6 relies on: layer schedules (gpt-oss
12 sliding + 12 full of window 128, Gemma 3 27B's window 1024 with its default pattern 6, Llama 4
Scout's chunk 8192 with every 4th layer NoPE and global), head counts and sizes, and the MLA ranks
of DeepSeek-V3 and Kimi K2.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "attncli"
MODELS = PACKAGE / "data" / "models"

NAMES = [
    "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "mistral-7b", "phi-3-mini-4k", "qwen2.5-7b",
    "qwen3-8b", "qwen3-32b", "gemma-2-9b", "gemma-3-27b", "gpt-oss-20b", "gpt-oss-120b", "llama-4-scout",
    "deepseek-v2-lite", "deepseek-v3", "kimi-k2", "qwen3-next-80b-a3b", "qwen3.5-27b", "deepseek-v3.2",
    "deepseek-v4-flash", "nemotron-3-nano-30b-a3b", "gemma-4-31b", "mimo-v2-flash", "gemma-3n-e4b",
    "kimi-linear-48b-a3b", "glm-5",
]
REPOS = {
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B",
    "llama-3.1-70b": "meta-llama/Llama-3.1-70B",
    "llama-3.1-405b": "meta-llama/Llama-3.1-405B",
    "mistral-7b": "mistralai/Mistral-7B-v0.1",
    "phi-3-mini-4k": "microsoft/Phi-3-mini-4k-instruct",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B",
    "qwen3-8b": "Qwen/Qwen3-8B",
    "qwen3-32b": "Qwen/Qwen3-32B",
    "gemma-2-9b": "google/gemma-2-9b",
    "gemma-3-27b": "google/gemma-3-27b-it",
    "gpt-oss-20b": "openai/gpt-oss-20b",
    "gpt-oss-120b": "openai/gpt-oss-120b",
    "llama-4-scout": "meta-llama/Llama-4-Scout-17B-16E",
    "qwen3-next-80b-a3b": "Qwen/Qwen3-Next-80B-A3B-Instruct",
    "deepseek-v3.2": "deepseek-ai/DeepSeek-V3.2-Exp",
    "qwen3.5-27b": "Qwen/Qwen3.5-27B",
    "glm-5": "zai-org/GLM-5",
    "deepseek-v4-flash": "deepseek-ai/DeepSeek-V4-Flash",
    "deepseek-v2-lite": "deepseek-ai/DeepSeek-V2-Lite",
    "deepseek-v3": "deepseek-ai/DeepSeek-V3",
    "kimi-k2": "moonshotai/Kimi-K2-Instruct",
    "nemotron-3-nano-30b-a3b": "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
    "gemma-4-31b": "google/gemma-4-31B-it",
    "mimo-v2-flash": "XiaomiMiMo/MiMo-V2-Flash",
    "gemma-3n-e4b": "google/gemma-3n-E4B",
    "kimi-linear-48b-a3b": "moonshotai/Kimi-Linear-48B-A3B-Instruct",
}
MLA_KEYS = ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")


def _strict_json(path: Path) -> Any:
    """The file parsed as JSON, refusing duplicate keys and NaN/Infinity (which json.loads lets through)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        dupes = sorted(k for k, n in Counter(keys).items() if n > 1)
        assert not dupes, f"{path.name}: duplicate keys {dupes}"
        return dict(items)

    def constant(name: str) -> Any:
        raise AssertionError(f"{path.name}: {name} is not JSON")

    return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=pairs, parse_constant=constant)


def _index() -> dict[str, Any]:
    doc = _strict_json(MODELS / "index.json")
    assert isinstance(doc, dict)
    return doc


def _config(name: str) -> dict[str, Any]:
    doc = _strict_json(MODELS / f"{name}.json")
    assert isinstance(doc, dict)
    return doc


def _text(top: dict[str, Any]) -> dict[str, Any]:
    """The text model's fields: ``text_config`` for the multimodal configs, else the file itself."""
    text = top.get("text_config", top)
    assert isinstance(text, dict)
    return text


# ------------------------------------------------------------------------------ index and files
def test_index_lists_every_model_in_order() -> None:
    doc = _index()
    assert set(doc) == {"schema", "models"}
    assert doc["schema"] == "attncli.models/1"
    assert list(doc["models"]) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_index_entry(name: str) -> None:
    entry = _index()["models"][name]
    assert set(entry) == {"file", "source", "notes"}
    assert entry["file"] == f"{name}.json" and (MODELS / entry["file"]).is_file()
    assert entry["source"] == f"https://huggingface.co/{REPOS[name]}/blob/main/config.json"
    notes = entry["notes"]
    assert isinstance(notes, str) and notes == notes.strip() and 20 <= len(notes) <= 400 and "\n" not in notes


def test_no_stray_files() -> None:
    listed = {e["file"] for e in _index()["models"].values()}
    present = {p.name for p in MODELS.glob("*.json")} - {"index.json"}
    assert present == listed
    assert (MODELS / "README.md").is_file()


@pytest.mark.parametrize("name", NAMES)
def test_file_has_the_required_fields(name: str) -> None:
    top = _config(name)
    arch = top["architectures"]
    assert isinstance(arch, list) and len(arch) == 1 and isinstance(arch[0], str)
    assert isinstance(top["model_type"], str)
    text = _text(top)
    if text is not top:
        # a multimodal config keeps the text model nested, as published: nothing of it at the top
        assert isinstance(text["model_type"], str)
        assert not {"hidden_size", "num_attention_heads", "num_hidden_layers"} & set(top)
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "max_position_embeddings"):
        if key == "max_position_embeddings" and key not in text:
            continue  # Gemma 3's text_config does not publish it (STANDARD below says which)
        value = text[key]
        assert isinstance(value, int) and not isinstance(value, bool) and value > 0, key
    if "kv_lora_rank" in text:
        assert set(MLA_KEYS) <= set(text)
    else:
        assert isinstance(text["num_key_value_heads"], int)
        assert text["num_attention_heads"] % text["num_key_value_heads"] == 0
    dtype = text.get("torch_dtype", top.get("torch_dtype"))
    assert dtype is None or dtype in {"bfloat16", "float16", "float32"}
    if "layer_types" in text:
        assert len(text["layer_types"]) == text["num_hidden_layers"]
    # only the model's own fields: none of the loader's bookkeeping or a runtime's additions
    assert not {k for k in top if k.startswith("_")}


def test_package_data_ships_the_presets() -> None:
    """pyproject.toml's package-data must include every preset file (setuptools globs each pattern)."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["package-data"]["attncli"]
    shipped = {os.path.relpath(p, PACKAGE).replace(os.sep, "/")
               for pattern in patterns for p in glob.glob(str(PACKAGE / pattern), recursive=True)}
    wanted = {f"data/models/{p.name}" for p in MODELS.glob("*.json")}
    missing = sorted(wanted - shipped)
    assert not missing, f"not in [tool.setuptools.package-data] attncli: {missing} (add 'data/models/*.json')"


# ------------------------------------------------------------------------------ published values
# The standard (non-MLA) models: (name, hidden, heads, KV heads, head_dim or None when unpublished, layers,
# max positions). Sources per row.
STANDARD = [
    # meta-llama/llama-models models/sku_list.py (Llama 3.1 8B: dim 4096, n_layers 32, n_heads 32,
    # n_kv_heads 8) and the published config.json (max_position_embeddings 131072)
    ("llama-3.1-8b", 4096, 32, 8, None, 32, 131072),
    # sku_list.py (Llama 3.1 70B: dim 8192, n_layers 80, n_heads 64, n_kv_heads 8)
    ("llama-3.1-70b", 8192, 64, 8, None, 80, 131072),
    # sku_list.py, the bf16-mp8 SKU of meta-llama/Llama-3.1-405B: dim 16384, n_layers 126, n_heads 128,
    # n_kv_heads 8 (the mp16 SKU's 16 are replicated KV heads, not the published config)
    ("llama-3.1-405b", 16384, 128, 8, None, 126, 131072),
    # Mistral 7B paper (arXiv:2310.06825) Table 1: dim 4096, n_layers 32, n_heads 32, n_kv_heads 8
    ("mistral-7b", 4096, 32, 8, None, 32, 32768),
    # Phi-3-mini-4k-instruct config.json: hidden 3072, 32 heads, 32 KV heads, 32 layers, 4096 positions
    ("phi-3-mini-4k", 3072, 32, 32, None, 32, 4096),
    # Qwen2.5-7B config.json: hidden 3584, 28 heads, 4 KV heads, 28 layers, 131072 positions
    ("qwen2.5-7b", 3584, 28, 4, None, 28, 131072),
    # Qwen3-8B config.json: hidden 4096, 32 heads, 8 KV heads, head_dim 128, 36 layers, 40960 positions
    ("qwen3-8b", 4096, 32, 8, 128, 36, 40960),
    # Qwen3-32B config.json: hidden 5120, 64 heads, 8 KV heads, head_dim 128, 64 layers, 40960 positions
    ("qwen3-32b", 5120, 64, 8, 128, 64, 40960),
    # google/gemma-2-9b config.json: hidden 3584, 16 heads, 8 KV heads, head_dim 256, 42 layers, 8192 positions
    ("gemma-2-9b", 3584, 16, 8, 256, 42, 8192),
    # google/gemma-3-27b-it config.json text_config: hidden 5376, 32 heads, 16 KV heads, head_dim 128,
    # 62 layers; max_position_embeddings is not published there (transformers' default applies)
    ("gemma-3-27b", 5376, 32, 16, 128, 62, None),
    # openai/gpt-oss reference gpt_oss/torch/model.py and the 20b config.json: hidden 2880, 64 heads,
    # 8 KV heads, head_dim 64, 24 layers (120b: 36), 131072 positions
    ("gpt-oss-20b", 2880, 64, 8, 64, 24, 131072),
    ("gpt-oss-120b", 2880, 64, 8, 64, 36, 131072),
    # meta-llama/Llama-4-Scout-17B-16E config.json text_config: hidden 5120, 40 heads, 8 KV heads,
    # head_dim 128, 48 layers, 262144 positions
    ("llama-4-scout", 5120, 40, 8, 128, 48, 262144),
]


@pytest.mark.parametrize(("name", "hidden", "heads", "kv_heads", "head_dim", "layers", "positions"), STANDARD)
def test_standard_sizes(name: str, hidden: int, heads: int, kv_heads: int, head_dim: int | None, layers: int,
                        positions: int | None) -> None:
    text = _text(_config(name))
    assert text["hidden_size"] == hidden
    assert text["num_attention_heads"] == heads
    assert text["num_key_value_heads"] == kv_heads
    assert text.get("head_dim") == head_dim
    assert text["num_hidden_layers"] == layers
    assert text.get("max_position_embeddings") == positions


def test_gpt_oss_schedules() -> None:
    # openai/gpt-oss-20b config.json: 24 layer_types alternating sliding/full from layer 0, sliding_window
    # 128, attention_bias true; gpt_oss/torch/model.py: `sliding_window if layer_idx % 2 == 0 else 0`,
    # qkv and out Linear layers with bias; 120b (ModelConfig defaults): 36 layers, 128 experts, 4 per token
    for name, layers, experts in (("gpt-oss-20b", 24, 32), ("gpt-oss-120b", 36, 128)):
        cfg = _config(name)
        assert cfg["architectures"] == ["GptOssForCausalLM"] and cfg["model_type"] == "gpt_oss"
        kinds = cfg["layer_types"]
        assert len(kinds) == layers
        assert Counter(kinds) == {"sliding_attention": layers // 2, "full_attention": layers // 2}
        assert all(k == ("sliding_attention" if i % 2 == 0 else "full_attention") for i, k in enumerate(kinds))
        assert cfg["sliding_window"] == 128
        assert cfg["attention_bias"] is True
        assert cfg["num_local_experts"] == experts and cfg["num_experts_per_tok"] == 4
        assert cfg["rope_theta"] == 150000 and cfg["rope_scaling"]["rope_type"] == "yarn"
        assert cfg["rope_scaling"]["factor"] == 32.0 and cfg["initial_context_length"] == 4096


def test_gemma_3_27b() -> None:
    # google/gemma-3-27b-it config.json (copied in TensorRT-LLM's GEMMA3_27B_MINI_CONFIG): top level
    # Gemma3ForConditionalGeneration / gemma3, torch_dtype bfloat16; text_config gemma3_text with
    # sliding_window 1024, query_pre_attn_scalar 168, rope_scaling linear 8.0, and neither
    # sliding_window_pattern nor layer_types (transformers' Gemma3TextConfig default pattern is 6)
    top = _config("gemma-3-27b")
    assert top["architectures"] == ["Gemma3ForConditionalGeneration"] and top["model_type"] == "gemma3"
    assert top["torch_dtype"] == "bfloat16"
    text = top["text_config"]
    assert text["model_type"] == "gemma3_text"
    assert text["sliding_window"] == 1024
    assert text["query_pre_attn_scalar"] == 168
    assert text["rope_scaling"] == {"factor": 8.0, "rope_type": "linear"}
    assert "sliding_window_pattern" not in text and "layer_types" not in text


def test_gemma_2_9b() -> None:
    # google/gemma-2-9b config.json: sliding_window 4096 (even layers, transformers' Gemma2Config),
    # attn_logit_softcapping 50.0, query_pre_attn_scalar 256, cache_implementation hybrid
    cfg = _config("gemma-2-9b")
    assert cfg["model_type"] == "gemma2" and cfg["sliding_window"] == 4096
    assert cfg["attn_logit_softcapping"] == 50.0 and cfg["query_pre_attn_scalar"] == 256
    assert cfg["cache_implementation"] == "hybrid"


def test_llama_4_scout() -> None:
    # meta-llama/Llama-4-Scout-17B-16E config.json (quoted in AMD-AGI/Primus PR #165): top level
    # Llama4ForConditionalGeneration / llama4; text_config llama4_text with attention_chunk_size 8192,
    # "no_rope_layers": [] (transformers' Llama4TextConfig then uses every 4th layer NoPE), 16 experts,
    # 1 per token, rope_scaling llama3 factor 16.0, rope_theta 500000.0, use_qk_norm true
    top = _config("llama-4-scout")
    assert top["architectures"] == ["Llama4ForConditionalGeneration"] and top["model_type"] == "llama4"
    text = top["text_config"]
    assert text["model_type"] == "llama4_text"
    assert text["attention_chunk_size"] == 8192
    assert text["no_rope_layers"] == []
    assert text["num_local_experts"] == 16 and text["num_experts_per_tok"] == 1
    assert text["rope_scaling"]["rope_type"] == "llama3" and text["rope_scaling"]["factor"] == 16.0
    assert text["rope_theta"] == 500000.0 and text["use_qk_norm"] is True


def test_sliding_and_window_flags() -> None:
    # Mistral-7B-v0.1 config.json: sliding_window 4096 (on every layer, transformers' MistralConfig)
    assert _config("mistral-7b")["sliding_window"] == 4096
    # Phi-3-mini-4k-instruct config.json: sliding_window 2047
    assert _config("phi-3-mini-4k")["sliding_window"] == 2047
    # Qwen2.5-7B config.json: use_sliding_window false, sliding_window 131072, max_window_layers 28
    q25 = _config("qwen2.5-7b")
    assert (q25["use_sliding_window"], q25["sliding_window"], q25["max_window_layers"]) == (False, 131072, 28)
    # Qwen3-8B / Qwen3-32B config.json: use_sliding_window false, sliding_window null, attention_bias false,
    # max_window_layers equal to the layer count
    for name, layers in (("qwen3-8b", 36), ("qwen3-32b", 64)):
        q3 = _config(name)
        assert (q3["use_sliding_window"], q3["sliding_window"], q3["attention_bias"]) == (False, None, False)
        assert q3["max_window_layers"] == layers


def test_llama_3_1_rope() -> None:
    # meta-llama/llama-models models/llama3/model.py apply_scaling: scale_factor 8, low_freq_factor 1,
    # high_freq_factor 4, old_context_len 8192; sku_list.py rope_theta 500000.0, use_scaled_rope True
    for name in ("llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b"):
        cfg = _config(name)
        assert cfg["model_type"] == "llama" and cfg["attention_bias"] is False
        assert cfg["rope_theta"] == 500000.0
        assert cfg["rope_scaling"] == {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 8192, "rope_type": "llama3"}


# (name, architecture, model_type, hidden, heads, layers, q_lora_rank, kv_lora_rank, nope, rope, v, positions)
MLA = [
    # deepseek-ai/DeepSeek-V3 inference/configs/config_671B.json: dim 7168, n_heads 128, n_layers 61,
    # q_lora_rank 1536, kv_lora_rank 512, qk_nope_head_dim 128, qk_rope_head_dim 64, v_head_dim 128;
    # inference/model.py: original_seq_len 4096 x rope_factor 40 = 163840 positions
    ("deepseek-v3", "DeepseekV3ForCausalLM", "deepseek_v3", 7168, 128, 61, 1536, 512, 128, 64, 128, 163840),
    # Kimi K2 README (MoonshotAI/Kimi-K2): 61 layers, hidden 7168, 64 heads, MLA, 128K context;
    # deploy guidance: "model_type": "kimi_k2" on the DeepseekV3 architecture; ranks as DeepSeek-V3
    ("kimi-k2", "DeepseekV3ForCausalLM", "kimi_k2", 7168, 64, 61, 1536, 512, 128, 64, 128, 131072),
    # DeepSeek-V3 repository inference/configs/config_16B.json (DeepSeek-V2-Lite): dim 2048, n_heads 16,
    # n_layers 27, q_lora_rank 0 (null in the Hugging Face config), 512, 128, 64, 128
    ("deepseek-v2-lite", "DeepseekV2ForCausalLM", "deepseek_v2", 2048, 16, 27, None, 512, 128, 64, 128, 163840),
]


@pytest.mark.parametrize(("name", "arch", "model_type", "hidden", "heads", "layers", "rq", "r", "dn", "dr", "dv",
                          "positions"), MLA)
def test_mla_sizes(name: str, arch: str, model_type: str, hidden: int, heads: int, layers: int, rq: int | None,
                   r: int, dn: int, dr: int, dv: int, positions: int) -> None:
    cfg = _config(name)
    assert cfg["architectures"] == [arch] and cfg["model_type"] == model_type
    assert (cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]) == (hidden, heads, layers)
    assert tuple(cfg[k] for k in MLA_KEYS) == (rq, r, dn, dr, dv)
    assert cfg["max_position_embeddings"] == positions
    assert "head_dim" not in cfg and "layer_types" not in cfg and "sliding_window" not in cfg


def test_moe_sizes() -> None:
    # config_671B.json: n_routed_experts 256, n_activated_experts 8, n_shared_experts 1, n_dense_layers 3,
    # moe_inter_dim 2048; Kimi K2 README: 384 experts, 8 selected, 1 shared, 1 dense layer, 2048 per expert;
    # config_16B.json: 64 routed, 6 activated, 2 shared, 1 dense layer, moe_inter_dim 1408
    for name, routed, active, shared, dense, width in (("deepseek-v3", 256, 8, 1, 3, 2048),
                                                       ("kimi-k2", 384, 8, 1, 1, 2048),
                                                       ("deepseek-v2-lite", 64, 6, 2, 1, 1408)):
        cfg = _config(name)
        got = (cfg["n_routed_experts"], cfg["num_experts_per_tok"], cfg["n_shared_experts"],
               cfg["first_k_dense_replace"], cfg["moe_intermediate_size"])
        assert got == (routed, active, shared, dense, width), name
    # DeepSeek-V3 config.json: num_nextn_predict_layers 1 (the MTP module); Kimi K2's: 0
    assert _config("deepseek-v3")["num_nextn_predict_layers"] == 1
    assert _config("kimi-k2")["num_nextn_predict_layers"] == 0


# ------------------------------------------------------------------------------ as transformers reads them
# GUIDE section 6 ("Layer schedules as transformers reads them"): the schedule each config gives in
# transformers' own config classes. Expected counts from the published facts above: gpt-oss alternates
# from a sliding layer 0; Gemma 2's even layers slide; Gemma 3's layer i is global when (i+1) % 6 == 0
# (62 layers: 10 global); Llama 4's every 4th layer is NoPE and global, the rest chunked (48: 12 global);
# Qwen2/3 slide only with use_sliding_window.
SCHEDULES = {
    "gpt-oss-20b": {"sliding_attention": 12, "full_attention": 12},
    "gpt-oss-120b": {"sliding_attention": 18, "full_attention": 18},
    "gemma-2-9b": {"sliding_attention": 21, "full_attention": 21},
    "gemma-3-27b": {"sliding_attention": 52, "full_attention": 10},
    "llama-4-scout": {"chunked_attention": 36, "full_attention": 12},
    "qwen2.5-7b": {"full_attention": 28},
    "qwen3-8b": {"full_attention": 36},
    "qwen3-32b": {"full_attention": 64},
    # DeepseekV4Config folds compress_ratios (0/4/128, 44 listed for 43 layers: the last is the MTP layer)
    "deepseek-v4-flash": {"sliding_attention": 2, "compressed_sparse_attention": 21,
                          "heavily_compressed_attention": 20},
    # NemotronHConfig._pattern_to_list: M Mamba2 (linear_attention), * attention, E MoE
    "nemotron-3-nano-30b-a3b": {"linear_attention": 23, "full_attention": 6, "moe": 23},
    # KimiLinearConfig.__post_init__ reads linear_attn_config: full_attn_layers 4, 8, ..., 24 and 27 (1-based)
    "kimi-linear-48b-a3b": {"linear_attention": 20, "full_attention": 7},
    # Qwen/Qwen3.5-27B text_config: 64 layer_types, every 4th full (full_attention_interval 4);
    # GlmMoeDsaConfig: every layer indexed_attention, and indexer_types all "full" (index_topk_freq 1)
    "qwen3.5-27b": {"linear_attention": 48, "full_attention": 16},
    "glm-5": {"indexed_attention": 78},
}


@pytest.mark.parametrize("name", NAMES)
def test_transformers_reads_each_preset(name: str) -> None:
    transformers = pytest.importorskip("transformers")
    top = _config(name)
    # Kimi K2 ships remote code for its kimi_k2 type; its architecture is DeepSeek-V3's
    model_type = "deepseek_v3" if top["model_type"] == "kimi_k2" else top["model_type"]
    config = transformers.CONFIG_MAPPING[model_type](**{k: v for k, v in top.items() if k != "model_type"})
    text = config.get_text_config()
    assert text.num_hidden_layers == _text(top)["num_hidden_layers"]
    if name in SCHEDULES:
        kinds = list(text.layer_types)
        assert Counter(kinds) == SCHEDULES[name]
        if name == "gemma-3-27b":
            assert [i for i, k in enumerate(kinds) if k == "full_attention"] == list(range(5, 62, 6))
        if name == "llama-4-scout":
            assert [i for i, k in enumerate(kinds) if k == "full_attention"] == list(range(3, 48, 4))
            assert text.attention_chunk_size == 8192
    if "kv_lora_rank" in top:
        # transformers' DeepseekV2/V3 configs set head_dim to qk_rope_head_dim (GUIDE section 6); Kimi Linear's
        # file names its own head_dim (72), which KimiLinearConfig keeps and no attention module reads
        assert text.head_dim == top.get("head_dim", 64)


def test_index_names_are_lowercase_and_sorted_by_family() -> None:
    # the reader looks names up lowercased; the index groups the families as NAMES does
    for name in _index()["models"]:
        assert name == name.lower() and re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", name)
