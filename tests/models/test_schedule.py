"""attncli.models.schedule: every layer's attention type, read from config.json as transformers reads it.

The real configs are the models' published config.json files (tests/data/configs; sources in its
README). The expected schedules are the ones the model cards and papers state (gpt-oss: alternating
128-token windows; Gemma 3 27B: 5 local (1024) to 1 global, 62 layers; Llama 4 Scout: 3 chunked
(8192) RoPE layers to 1 global NoPE layer, 48 layers; Gemma 2: alternating 4096 windows), never
numbers read back from attncli. Where transformers is installed, each schedule is also compared
layer by layer with the ``layer_types`` transformers' own config class builds from the same dict.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from attncli.models.schedule import CHUNKED, FULL, LINEAR, MAX_LAYERS, SLIDING, LayerInfo, Schedule, read_schedule
from attncli.spec import SpecError

DATA = Path(__file__).parents[1] / "data" / "configs"


def _text(name: str) -> tuple[dict[str, Any], str | None, str]:
    """The text model's config of tests/data/configs/<name>, its family and the ``where`` prefix."""
    top: dict[str, Any] = json.loads((DATA / name / "config.json").read_text())
    if "num_hidden_layers" not in top and isinstance(top.get("text_config"), dict):
        cfg: dict[str, Any] = top["text_config"]
        return cfg, cfg.get("model_type", top.get("model_type")), "text_config."
    return top, top.get("model_type"), ""


def _schedule(name: str) -> Schedule:
    cfg, family, where = _text(name)
    return read_schedule(cfg, family, where)


def _rows(s: Schedule) -> list[tuple[str, int | None, int | None, bool]]:
    return [(x.layer_type, x.window, x.chunk, x.rope) for x in s.layers]


# ------------------------------------------------------------------------------ real configs
REAL = {
    # openai/gpt-oss-20b: layer_types alternates sliding (128) and full, 24 layers
    "gpt-oss-20b": "24 layers: 12 sliding (W 128) + 12 full",
    # google/gemma-3-27b-it: text_config without layer_types or sliding_window_pattern; window 1024
    "gemma-3-27b": "62 layers: 52 sliding (W 1024) + 10 full",
    # meta-llama/Llama-4-Scout-17B-16E: text_config attention_chunk_size 8192, no_rope_layers 1,1,1,0 x 12
    "llama-4-scout": "48 layers: 36 chunked (C 8192) + 12 full (NoPE)",
    # google/gemma-2-9b: no layer_types, sliding_window 4096, 42 layers
    "gemma-2-9b": "42 layers: 21 sliding (W 4096) + 21 full",
    # mistralai/Mistral-7B-v0.1: sliding_window 4096 on every layer
    "mistral-7b-v0.1": "32 layers: 32 sliding (W 4096)",
    # microsoft/Phi-3-mini-4k-instruct: sliding_window 2047 on every layer
    "phi-3-mini-4k": "32 layers: 32 sliding (W 2047)",
    # Qwen/Qwen2.5-7B: use_sliding_window false
    "qwen2.5-7b": "28 layers: 28 full",
    # Qwen/Qwen3-8B: use_sliding_window false, sliding_window null
    "qwen3-8b": "36 layers: 36 full",
    "llama-3.1-8b": "32 layers: 32 full",
    "llama-3.1-70b": "80 layers: 80 full",
    # deepseek-ai/DeepSeek-V3 and Kimi K2: MLA, 61 layers (the MTP layer is not one of them)
    "deepseek-v3": "61 layers: 61 full",
    "kimi-k2": "61 layers: 61 full",
    "deepseek-v2-lite": "27 layers: 27 full",
    # Qwen/Qwen3-Next-80B-A3B: full_attention_interval 4 (Gated DeltaNet on the other layers)
    "qwen3-next-80b-a3b": "48 layers: 36 linear + 12 full",
    # Qwen/Qwen3.5-27B: text_config.layer_types, every 4th full (full_attention_interval 4)
    "qwen3.5-27b": "64 layers: 48 linear + 16 full",
    # zai-org/GLM-5: 78 layers of MLA with the indexer (indexed_attention), the MTP layer not one of them
    "glm-5": "78 layers: 78 full",
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_config_summary(name: str) -> None:
    assert _schedule(name).summary() == REAL[name]


def test_gpt_oss_alternates_from_its_layer_types() -> None:
    s = _schedule("gpt-oss-20b")
    assert s.source == "config.json:layer_types"
    assert [x.layer_type for x in s.layers[:4]] == [SLIDING, FULL, SLIDING, FULL]
    assert s.layers[0] == LayerInfo(0, SLIDING, 128, None) and s.layers[1] == LayerInfo(1, FULL, None, None)


GEMMA3_GLOBAL = {5, 11, 17, 23, 29, 35, 41, 47, 53, 59}
"""Gemma 3 27B's global layers (Gemma 3 report: 5 local then 1 global, from layer 6 on, 1-based)."""


def test_gemma3_default_pattern_is_said_and_matches_explicit_layer_types() -> None:
    cfg, family, where = _text("gemma-3-27b")
    s = read_schedule(cfg, family, where)
    assert s.source.startswith("family default: gemma3_text") and "every 6th layer full" in s.source
    assert {x.index for x in s.layers if x.layer_type == FULL} == GEMMA3_GLOBAL
    typed = {**cfg, "layer_types": [FULL if i in GEMMA3_GLOBAL else SLIDING for i in range(62)]}
    t = read_schedule(typed, family, where)
    assert t.source == "config.json:text_config.layer_types" and t.layers == s.layers
    # the multimodal family name reads the same, and an explicit pattern 6 too
    assert read_schedule(cfg, "gemma3", where).layers == s.layers
    p6 = read_schedule({**cfg, "sliding_window_pattern": 6}, family, where)
    assert p6.layers == s.layers and p6.source == "config.json:text_config.sliding_window_pattern (6)"


def test_llama4_scout_chunked_rope_layers_and_full_nope_layers() -> None:
    s = _schedule("llama-4-scout")
    assert s.layers[0] == LayerInfo(0, CHUNKED, None, 8192, rope=True)
    assert s.layers[3] == LayerInfo(3, FULL, None, None, rope=False)
    assert next(idx for key, idx in s.groups() if key.layer_type == FULL) == list(range(3, 48, 4))
    cfg, family, where = _text("llama-4-scout")
    default = read_schedule({k: v for k, v in cfg.items() if k != "no_rope_layers"}, family, where)
    assert default.layers == s.layers and default.source.startswith("family default: llama4_text")
    nochunk = read_schedule({**cfg, "attention_chunk_size": None}, family, where)
    assert nochunk.summary() == "48 layers: 36 full + 12 full (NoPE)"


def test_qwen_window_unused_is_noted_and_mla_mtp_layer_is_noted() -> None:
    assert any("131072 is not used" in n for n in _schedule("qwen2.5-7b").notes)
    assert _schedule("qwen2.5-7b").source == "every layer full (config.json:use_sliding_window false)"
    assert any("num_nextn_predict_layers 1" in n for n in _schedule("deepseek-v3").notes)
    assert _schedule("deepseek-v3").source.startswith("family rule: deepseek_v3, every layer full")


# ------------------------------------------------------------------------------ family rules
def _cfg(model_type: str, n: Any, **fields: Any) -> dict[str, Any]:
    return {"model_type": model_type, "num_hidden_layers": n, **fields}


SYNTHETIC: dict[str, tuple[dict[str, Any], str]] = {
    "gemma3 pattern 4": (_cfg("gemma3_text", 10, sliding_window=512, sliding_window_pattern=4),
                         "10 layers: 8 sliding (W 512) + 2 full"),
    "gemma3 window default": (_cfg("gemma3_text", 12), "12 layers: 10 sliding (W 4096) + 2 full"),
    "cohere2 default": (_cfg("cohere2", 40), "40 layers: 30 sliding (W 4096) + 10 full (NoPE)"),
    "cohere2 pattern 2": (_cfg("cohere2", 8, sliding_window_pattern=2), "8 layers: 4 sliding (W 4096) + 4 full (NoPE)"),
    "gemma2 odd count": (_cfg("gemma2", 5, sliding_window=64), "5 layers: 3 sliding (W 64) + 2 full"),
    "gpt_oss default": (_cfg("gpt_oss", 36), "36 layers: 18 sliding (W 128) + 18 full"),
    "qwen2 window from 20": (_cfg("qwen2", 28, use_sliding_window=True, sliding_window=4096, max_window_layers=20),
                             "28 layers: 20 full + 8 sliding (W 4096)"),
    "qwen3 default 28": (_cfg("qwen3", 36, use_sliding_window=True), "36 layers: 28 full + 8 sliding (W 4096)"),
    "qwen3 window off": (_cfg("qwen3", 36, sliding_window=4096, max_window_layers=0), "36 layers: 36 full"),
    "qwen2 window null": (_cfg("qwen2", 4, use_sliding_window=True, sliding_window=None), "4 layers: 4 full"),
    "qwen2_moe even below 10": (_cfg("qwen2_moe", 24, use_sliding_window=True, max_window_layers=10),
                                "24 layers: 5 sliding (W 4096) + 19 full"),
    "qwen3_moe every layer": (_cfg("qwen3_moe", 48, use_sliding_window=True, sliding_window=2048,
                                   max_window_layers=40), "48 layers: 48 sliding (W 2048)"),
    "llama4 interval 3": (_cfg("llama4_text", 9, no_rope_layer_interval=3, attention_chunk_size=1024),
                          "9 layers: 6 chunked (C 1024) + 3 full (NoPE)"),
    "llama4 empty list": (_cfg("llama4_text", 8, no_rope_layers=[]), "8 layers: 6 chunked (C 8192) + 2 full (NoPE)"),
    "smollm3 window": (_cfg("smollm3", 8, use_sliding_window=True, sliding_window=256),
                       "8 layers: 6 full + 2 sliding (W 256) (NoPE)"),
    "smollm3 no window": (_cfg("smollm3", 8), "8 layers: 6 full + 2 full (NoPE)"),
    "ministral default": (_cfg("ministral", 6), "6 layers: 6 sliding (W 4096)"),
    "mistral default": (_cfg("mistral", 4), "4 layers: 4 sliding (W 4096)"),
    "mistral v0.2 null": (_cfg("mistral", 4, sliding_window=None), "4 layers: 4 full"),
    "mixtral default": (_cfg("mixtral", 4), "4 layers: 4 full"),
    "phi3 default": (_cfg("phi3", 4), "4 layers: 4 full"),
    "qwen3_next default": (_cfg("qwen3_next", 8), "8 layers: 6 linear + 2 full"),
    "qwen3_next interval 2": (_cfg("qwen3_next", 8, full_attention_interval=2), "8 layers: 4 linear + 4 full"),
}


@pytest.mark.parametrize("case", sorted(SYNTHETIC))
def test_family_rule(case: str) -> None:
    cfg, expected = SYNTHETIC[case]
    assert read_schedule(cfg, cfg["model_type"]).summary() == expected


def test_family_default_is_said_in_source_or_notes() -> None:
    gpt = read_schedule(_cfg("gpt_oss", 4), "gpt_oss")
    assert gpt.source == "family default: gpt_oss (transformers GptOssConfig: even layers sliding, odd layers full)"
    assert any("sliding_window absent" in n and "GptOssConfig sliding_window 128" in n for n in gpt.notes)
    assert read_schedule(_cfg("cohere2", 4), "cohere2").source.startswith("family default: cohere2")
    assert "Qwen3Config default" in read_schedule(_cfg("qwen3", 30, use_sliding_window=True), "qwen3").source
    mistral = read_schedule(_cfg("mistral", 2), "mistral")
    assert mistral.source.startswith("family default: mistral, transformers MistralConfig sliding_window 4096")
    chunk = read_schedule(_cfg("llama4_text", 4, no_rope_layers=[1, 1, 1, 0]), "llama4_text")
    assert any("attention_chunk_size absent" in n for n in chunk.notes)
    assert read_schedule(_cfg("qwen3_next", 4), "qwen3_next").source.startswith("family default: qwen3_next")


def test_generic_configs() -> None:
    assert read_schedule(_cfg("olmo3", 3), "olmo3").source == "every layer full (no sliding_window)"
    s = read_schedule(_cfg("newfamily", 3, sliding_window=100), "newfamily")
    assert s.summary() == "3 layers: 3 sliding (W 100)" and "no per-layer rule known for newfamily" in s.source
    assert read_schedule({"n_layer": 12}, "gpt2").summary() == "12 layers: 12 full"
    assert read_schedule({"num_layers": 6, "model_type": "t5"}, None).summary() == "6 layers: 6 full"
    pattern = read_schedule(_cfg("other", 2, sliding_window=8, sliding_window_pattern=2), "other")
    assert pattern.summary() == "2 layers: 2 sliding (W 8)" and "sliding_window_pattern is not read" in pattern.notes[0]


def test_layer_types_beat_the_family_default_except_where_transformers_ignores_them() -> None:
    typed = _cfg("gemma2", 4, sliding_window=16, layer_types=[FULL, FULL, SLIDING, LINEAR])
    assert _rows(read_schedule(typed, "gemma2")) == [(FULL, None, None, True), (FULL, None, None, True),
                                                      (SLIDING, 16, None, True), (LINEAR, None, None, False)]
    chunked = _cfg("newfamily", 2, attention_chunk_size=64, layer_types=[CHUNKED, FULL])
    assert read_schedule(chunked, None).summary() == "2 layers: 1 chunked (C 64) + 1 full"
    # MistralModel applies sliding_window to every layer and never reads layer_types (modeling_mistral.py)
    mistral = read_schedule(_cfg("mistral", 2, sliding_window=8, layer_types=[FULL, FULL]), "mistral")
    assert mistral.summary() == "2 layers: 2 sliding (W 8)" and "layer_types is not read" in mistral.notes[0]
    # so does Qwen3MoeModel (modeling_qwen3_moe.py), once use_sliding_window keeps the window
    moe = _cfg("qwen3_moe", 2, use_sliding_window=True, sliding_window=8, layer_types=[FULL, SLIDING])
    assert read_schedule(moe, "qwen3_moe").summary() == "2 layers: 2 sliding (W 8)"
    assert "qwen3_moe applies the window to every layer" in read_schedule(moe, "qwen3_moe").source
    assert read_schedule(_cfg("ministral", 2), "ministral").source.endswith("(transformers MinistralConfig "
                                                                           "layer_types default)")


def test_groups_summary_and_json() -> None:
    s = _schedule("llama-4-scout")
    (k0, i0), (k1, i1) = s.groups()
    assert (k0.label(), len(i0), k1.label(), len(i1)) == ("chunked (C 8192)", 36, "full (NoPE)", 12)
    assert s.layers[3].to_json() == {"index": 3, "layer_type": FULL, "window": None, "chunk": None, "rope": False}
    doc = s.to_json()
    assert doc["summary"] == s.summary() and len(doc["layers"]) == 48 and json.loads(json.dumps(doc)) == doc


# ------------------------------------------------------------------------------ errors
BAD: list[tuple[dict[str, Any], str]] = [
    ({"model_type": "llama"}, "num_hidden_layers is missing"),
    (_cfg("llama", 0), "num_hidden_layers must be at least 1, got 0"),
    (_cfg("llama", True), "num_hidden_layers must be an integer, got true"),
    (_cfg("llama", 32.0), "num_hidden_layers must be an integer, got 32.0"),
    (_cfg("llama", MAX_LAYERS + 1), f"num_hidden_layers is too large ({MAX_LAYERS + 1} > {MAX_LAYERS} layers)"),
    (_cfg("gpt_oss", 3, layer_types=[SLIDING, FULL]), "layer_types has 2 entries for 3 layers"),
    (_cfg("gpt_oss", 2, layer_types=[SLIDING, "mamba"]), 'layer_types[1] "mamba" is not a layer type'),
    (_cfg("gpt_oss", 2, layer_types="full_attention"), "layer_types must be a list of strings"),
    (_cfg("gpt_oss", 2, sliding_window="128"), 'sliding_window must be an integer, got "128"'),
    (_cfg("mistral", 2, sliding_window=0), "sliding_window must be at least 1, got 0"),
    (_cfg("gemma2", 2, sliding_window=None), "layer 0 is sliding_attention (family default: gemma2"),
    (_cfg("qwen2", 2, layer_types=[SLIDING, FULL]), "has no window: family default: qwen2"),
    (_cfg("qwen2", 2, use_sliding_window="yes"), "use_sliding_window must be true or false"),
    (_cfg("qwen2", 2, use_sliding_window=True, max_window_layers=-1), "max_window_layers must be at least 0"),
    (_cfg("gemma3_text", 2, sliding_window_pattern=0), "sliding_window_pattern must be at least 1, got 0"),
    (_cfg("newfamily", 2, layer_types=[CHUNKED, FULL]), "layer 0 is chunked_attention"),
    (_cfg("llama4_text", 3, no_rope_layers=[1, 0]), "no_rope_layers must list 0 or 1 for each of the 3 layers"),
    (_cfg("llama4_text", 2, no_rope_layers=[1, 2]), "no_rope_layers[1] must be 0 or 1, got 2"),
    (_cfg("llama4_text", 2, no_rope_layer_interval=0), "no_rope_layer_interval must be at least 1"),
    (_cfg("llama4_text", 2, attention_chunk_size=8192.0), "attention_chunk_size must be an integer"),
    (_cfg("smollm3", 2, no_rope_layers=[]), "no_rope_layers must list 0 or 1 for each of the 2 layers, got 0"),
    (_cfg("qwen3_next", 4, full_attention_interval=0), "full_attention_interval must be at least 1"),
]


@pytest.mark.parametrize(("cfg", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_fields_are_one_config_line(cfg: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as err:
        read_schedule(cfg, cfg.get("model_type"))
    assert err.value.flag == "--config" and message in err.value.message and "\n" not in err.value.message


def test_where_prefixes_field_names() -> None:
    with pytest.raises(SpecError, match=r"text_config\.layer_types\[0\]"):
        read_schedule(_cfg("gpt_oss", 1, layer_types=["indexed_attention"]), "gpt_oss", "text_config.")


def test_module_imports_neither_torch_nor_transformers() -> None:
    code = "import sys, attncli.models.schedule; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------------ against transformers
def _transformers_rows(cfg: dict[str, Any]) -> list[tuple[str, int | None, int | None, bool]]:
    """What transformers' own config class makes of ``cfg``: its ``layer_types`` (or, for a family without
    them, ``sliding_window`` on every layer), windows, chunks and RoPE flags."""
    pytest.importorskip("transformers")
    from transformers import AutoConfig

    fields = {k: v for k, v in cfg.items() if k != "model_type"}
    c = AutoConfig.for_model(cfg["model_type"], **fields)
    window = getattr(c, "sliding_window", None) or None  # NOTE: Qwen2MoeConfig stores 0 for "no window"
    types = getattr(c, "layer_types", None) or [SLIDING if window else FULL] * c.num_hidden_layers
    rope = [bool(r) for r in getattr(c, "no_rope_layers", None) or [1] * len(types)]
    if cfg["model_type"] == "cohere2":  # modeling_cohere2.py rotates only in sliding layers
        rope = [t == SLIDING for t in types]
    return [(t, window if t == SLIDING else None, c.attention_chunk_size if t == CHUNKED else None,
             r and t != LINEAR) for t, r in zip(types, rope, strict=True)]


TRANSFORMERS_FAMILIES = ["gpt-oss-20b", "gemma-2-9b", "gemma-3-27b", "llama-4-scout", "mistral-7b-v0.1",
                         "phi-3-mini-4k", "qwen2.5-7b", "qwen3-8b", "llama-3.1-8b", "deepseek-v3",
                         "deepseek-v2-lite", "qwen3-next-80b-a3b"]


@pytest.mark.parametrize("name", TRANSFORMERS_FAMILIES)
def test_real_config_matches_transformers_config_class(name: str) -> None:
    cfg, family, where = _text(name)
    assert _rows(read_schedule(cfg, family, where)) == _transformers_rows(cfg)


@pytest.mark.parametrize("case", sorted(SYNTHETIC))
def test_family_rule_matches_transformers_config_class(case: str) -> None:
    cfg, _ = SYNTHETIC[case]
    assert _rows(read_schedule(cfg, cfg["model_type"])) == _transformers_rows(cfg)
