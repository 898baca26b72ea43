"""Multi-head latent attention (MLA) configs: DeepSeek-V3, Kimi K2, DeepSeek-V2-Lite.

The configs are the models' published config.json files (tests/data/configs; sources in its
README). Expected sizes come from the models' own sources, never from attncli:

- DeepSeek-V3: github.com/deepseek-ai/DeepSeek-V3 inference/configs/config_671B.json: dim 7168,
  n_heads 128, q_lora_rank 1536, kv_lora_rank 512, qk_nope_head_dim 128, qk_rope_head_dim 64,
  v_head_dim 128.
- DeepSeek-V2-Lite: the same repository's inference/configs/config_16B.json: dim 2048, n_heads 16,
  q_lora_rank 0 (no query LoRA; the Hugging Face config says null), 512, 128, 64, 128.
- Kimi K2 (moonshotai/Kimi-K2-Instruct): DeepSeek-V3's architecture with 64 heads.

The parameter counts are GUIDE section 6's, measured against transformers 5.24's
DeepseekV3Attention: 187,107,328 (DeepSeek-V3) and 101,124,096 (Kimi K2) per layer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from attncli.kinds.mla import kind as mla
from attncli.models.configs import LAYER_FIELDS, LayerSettings, load_preset, merge, read_hf_config
from attncli.registry import MLA_FIELDS
from attncli.spec import AttnSpec, SpecError

DATA = Path(__file__).parents[1] / "data" / "configs"

# (folder, preset, family, E, H, RQ, R, DN, DR, DV)
MODELS = [
    ("deepseek-v3", "deepseek-v3", "deepseek_v3", 7168, 128, 1536, 512, 128, 64, 128),
    ("kimi-k2", "kimi-k2", "kimi_k2", 7168, 64, 1536, 512, 128, 64, 128),
    ("deepseek-v2-lite", "deepseek-v2-lite", "deepseek_v2", 2048, 16, None, 512, 128, 64, 128),
]
REPOS = {"deepseek-v3": "deepseek-ai/DeepSeek-V3", "kimi-k2": "moonshotai/Kimi-K2-Instruct",
         "deepseek-v2-lite": "deepseek-ai/DeepSeek-V2-Lite"}


def sizes(s: LayerSettings) -> tuple[Any, ...]:
    return (s.dim, s.heads, s.q_lora_rank, s.kv_lora_rank, s.qk_nope_head_dim, s.qk_rope_head_dim, s.v_head_dim)


def spec_from(values: dict[str, Any]) -> AttnSpec:
    """The AttnSpec the CLI would build (layerflags maps head_dim to d_head; MLA runs impl mla)."""
    kw = {("d_head" if k == "head_dim" else k): v for k, v in values.items()}
    return AttnSpec(impl="mla", **kw).validate()


@pytest.mark.parametrize(("folder", "preset", "family", "e", "h", "rq", "r", "dn", "dr", "dv"), MODELS)
def test_mla_config_read(folder: str, preset: str, family: str, e: int, h: int, rq: int | None, r: int,
                         dn: int, dr: int, dv: int) -> None:
    s = read_hf_config(DATA / folder)
    assert s.kind == "mla" and s.family == family
    assert sizes(s) == (e, h, rq, r, dn, dr, dv)
    # num_key_value_heads (= heads in these files) and head_dim do not apply to MLA
    assert s.kv_heads is None and s.head_dim is None
    assert "num_key_value_heads does not apply" in s.notes
    assert (s.window, s.bias, s.causal, s.mask) == (None, False, True, "causal")
    for name in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
        assert s.sources[name] == f"config.json:{name}"
    assert s.sources["q_lora_rank"] == ("config.json:q_lora_rank" if rq else
                                        "config.json:q_lora_rank (null: a direct q_proj)")
    assert "kv_heads" not in s.sources and "head_dim" not in s.sources
    doc = s.to_json()
    assert doc["kind"] == "mla" and doc["kv_lora_rank"] == r and doc["q_lora_rank"] == rq
    assert doc["kv_heads"] is None and doc["head_dim"] is None


@pytest.mark.parametrize(("folder", "preset", "family", "e", "h", "rq", "r", "dn", "dr", "dv"), MODELS)
def test_preset_equals_its_config(folder: str, preset: str, family: str, e: int, h: int, rq: int | None,
                                  r: int, dn: int, dr: int, dv: int) -> None:
    p, c = load_preset(preset), read_hf_config(DATA / folder)
    assert p.kind == "mla" and sizes(p) == sizes(c)
    assert (p.kv_heads, p.head_dim, p.window, p.bias, p.causal, p.family) == (None, None, None, False, True, family)
    assert p.link == f"https://huggingface.co/{REPOS[preset]}/blob/main/config.json"
    assert set(p.sources) >= set(MLA_FIELDS) and "kv_heads" not in p.sources


@pytest.mark.parametrize("folder", ["deepseek-v3", "kimi-k2", "deepseek-v2-lite"])
def test_merge_gives_mla_sizes_and_no_kv_heads(folder: str) -> None:
    s = read_hf_config(DATA / folder)
    m = merge(s, {"seq": 4096})
    assert "kv_heads" not in m.values and "head_dim" not in m.values
    assert m.values["kv_lora_rank"] == 512 and m.sources["kv_lora_rank"] == "config.json:kv_lora_rank"
    # q_lora_rank None (V2-Lite) is skipped: AttnSpec's default None is the direct q_proj
    assert ("q_lora_rank" in m.values) == (s.q_lora_rank is not None)
    assert set(m.values) <= set(LAYER_FIELDS) | {"seq"}
    spec = spec_from(m.values)
    assert spec.kind == "mla" and spec.kv_heads is None and spec.d_head is None


def test_merged_spec_has_the_measured_params() -> None:
    # GUIDE section 6 (transformers 5.24 DeepseekV3Attention, two RMSNorm weights included)
    for folder, total in (("deepseek-v3", 187_107_328), ("kimi-k2", 101_124_096)):
        spec = spec_from(merge(read_hf_config(DATA / folder), {}).values)
        assert mla.params(spec)["total"] == total, folder


def test_typed_kv_lora_rank_over_a_standard_config_drops_its_heads(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
                                "num_key_value_heads": 8}))
    m = merge(read_hf_config(path), {"kv_lora_rank": 256})
    assert "kv_heads" not in m.values and "head_dim" not in m.values
    assert m.sources["kv_lora_rank"] == "command line"
    assert merge(read_hf_config(path), {}).values["kv_heads"] == 8  # the standard layer keeps them


def test_mla_defaults_and_zero_q_lora_rank(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    # DeepSeek's inference configs write q_lora_rank 0 for "no query LoRA"; absent fields take
    # transformers' DeepseekV3Config defaults (qk_nope_head_dim 128, qk_rope_head_dim 64, v_head_dim 128)
    path.write_text(json.dumps({"model_type": "deepseek_v3", "hidden_size": 1024, "num_attention_heads": 8,
                                "kv_lora_rank": 128, "q_lora_rank": 0}))
    s = read_hf_config(path)
    assert (s.q_lora_rank, s.qk_nope_head_dim, s.qk_rope_head_dim, s.v_head_dim) == (None, 128, 64, 128)
    assert s.sources["q_lora_rank"] == "config.json:q_lora_rank (0: a direct q_proj)"
    assert s.sources["v_head_dim"].startswith("default: transformers' DeepseekV3Config")


@pytest.mark.parametrize(("extra", "needle"), [
    ({"kv_lora_rank": "512"}, "kv_lora_rank must be an integer"),
    ({"kv_lora_rank": 0}, "kv_lora_rank must be positive"),
    ({"kv_lora_rank": 512, "q_lora_rank": False}, "q_lora_rank must be an integer"),
    ({"kv_lora_rank": 512, "q_lora_rank": -1}, "q_lora_rank must be positive"),
    ({"kv_lora_rank": 512, "qk_rope_head_dim": None}, "qk_rope_head_dim must be an integer, got null"),
    ({"kv_lora_rank": 512, "v_head_dim": 128.0}, "v_head_dim must be an integer"),
    ({"kv_lora_rank": 512, "qk_nope_head_dim": 2**40}, "qk_nope_head_dim is too large"),
])
def test_bad_mla_values_are_one_config_line(tmp_path: Path, extra: dict[str, Any], needle: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "deepseek_v3", "hidden_size": 1024, "num_attention_heads": 8,
                                **extra}))
    with pytest.raises(SpecError) as err:
        read_hf_config(path)
    assert err.value.flag == "--config" and needle in err.value.message and "\n" not in str(err.value)
