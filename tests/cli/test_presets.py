"""``attncli presets`` through the CLI: JSON contract, Markdown, table, --config, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent.parent / "data" / "configs"


def test_json_contract(cli: Any) -> None:
    r = cli("presets", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["schema"] == "attncli.presets/1" and doc["config"] == {"config_file": None}
    by_name = {p["name"]: p for p in doc["presets"]}
    # https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json: 4096, 32 heads, 8 KV heads
    llama = by_name["llama-3-8b"]
    assert (llama["dim"], llama["heads"], llama["kv_heads"], llama["head_dim"]) == (4096, 32, 8, 128)
    assert llama["mask"] == "causal" and llama["bias"] is False
    assert llama["source"].startswith("https://huggingface.co/meta-llama/")
    assert by_name["bert-base"]["mask"] == "none"
    assert all(p["sources"]["dim"] == f"preset {p['name']}" for p in doc["presets"])


def test_markdown_table_and_output(cli: Any, tmp_path: Path) -> None:
    md = cli("presets", "--format", "markdown")
    assert md.code == 0 and "| gemma-2-9b | gemma2 | 3584 | 16 | 8 | 256 | 4096 | no | causal |" in md.out
    table = cli("presets")
    assert table.code == 0 and "mistral-7b" in table.out and "\x1b[" not in table.out
    target = tmp_path / "presets.json"
    r = cli("presets", "--format", "json", "--output", str(target))
    assert r.code == 0 and r.out == "" and json.loads(target.read_text())["schema"] == "attncli.presets/1"


def test_config_file_with_provenance(cli: Any, tmp_path: Path) -> None:
    # keys from https://huggingface.co/openai-community/gpt2/blob/main/config.json
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "gpt2", "n_embd": 768, "n_head": 12,
                                "architectures": ["GPT2LMHeadModel"]}))
    doc = cli("presets", "--config", str(tmp_path), "--format", "json").json()
    [found] = doc["presets"]
    assert (found["dim"], found["heads"], found["head_dim"], found["mask"]) == (768, 12, 64, "causal")
    assert found["sources"]["dim"] == "config.json:n_embd"
    table = cli("presets", "--config", str(path))
    assert table.code == 0 and "config.json:n_head" in table.out


def test_bad_config_is_one_line(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    r = cli("presets", "--config", str(path))
    assert r.code == 2 and r.out == ""
    assert r.err.startswith("attncli: error: --config: ") and r.err.count("\n") == 1


def test_mla_presets_in_json(cli: Any) -> None:
    by_name = {p["name"]: p for p in cli("presets", "--format", "json").json()["presets"]}
    # https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json (= DeepSeek's
    # inference/configs/config_671B.json): 7168, 128 heads, q_lora_rank 1536, kv_lora_rank 512, 128/64/128
    ds = by_name["deepseek-v3"]
    assert ds["kind"] == "mla" and (ds["dim"], ds["heads"], ds["kv_heads"], ds["head_dim"]) == (7168, 128, None, None)
    assert [ds[k] for k in ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")] \
        == [1536, 512, 128, 64, 128]
    assert ds["sources"]["kv_lora_rank"] == "preset deepseek-v3" and "kv_heads" not in ds["sources"]
    assert by_name["deepseek-v2-lite"]["q_lora_rank"] is None and by_name["kimi-k2"]["heads"] == 64
    llama = by_name["llama-3-8b"]
    assert llama["kind"] == "standard" and llama["kv_lora_rank"] is None


def test_mla_presets_in_markdown(cli: Any) -> None:
    md = cli("presets", "--format", "markdown").out
    assert "| deepseek-v3 | deepseek_v3 | 7168 | 128 | MLA | MLA | - | no | causal |" in md
    assert "| deepseek-v2-lite | - | 512 | 128 | 64 | 128 | 576 |" in md  # no query LoRA; R + DR cached


@pytest.mark.parametrize("folder", ["deepseek-v3", "deepseek-v2-lite", "gpt-oss-20b"])
def test_config_table_fits_80_columns(cli: Any, monkeypatch: pytest.MonkeyPatch, folder: str) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    r = cli("presets", "--config", str(DATA / folder))
    assert r.code == 0, r.err
    assert "…" not in r.out and "\x1b[" not in r.out
    for line in r.out.splitlines():
        assert len(line) <= 80 and line == line.rstrip(), line
    assert re.search(rf"^{re.escape(folder)}\s+\S+\s+\d+", r.out, re.M)  # the folder names the row
    if folder.startswith("deepseek"):
        assert re.search(r"^kv_lora_rank\s+512\s+config\.json:kv_lora_rank$", r.out, re.M)
        assert "kv_heads" not in r.out.split("where each value came from")[1].split("E: dim")[0]
    else:  # one note per line: the layer schedule, then the sinks
        assert "\n- sinks: one learned logit per head (64 parameters, in params)" in r.out


def test_unmodelled_config_exits_2_naming_the_field(cli: Any, tmp_path: Any) -> None:
    """GLM-5's shared indexers (transformers' glm_moe_dsa: index_topk_freq 4, layers 2, 3, 4 reuse layer 1's
    top-k, GlmMoeDsaConfig.__post_init__) are not modelled."""
    import json

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "glm_moe_dsa", "hidden_size": 256,
                                                      "num_attention_heads": 4, "kv_lora_rank": 64,
                                                      "index_topk_freq": 4}))
    r = cli("presets", "--config", str(tmp_path))
    assert r.code == 2 and r.out == "" and r.err.count("\n") == 1
    assert r.err.startswith("attncli: error: --config: index_topk_freq 4 ") and "would count a different layer" in r.err


def test_llama4_config_reads_layer_0_as_chunked(cli: Any) -> None:
    """Llama-4-Scout (meta-llama/Llama-4-Scout-17B-16E): attention_chunk_size 8192 on its RoPE layers."""
    r = cli("presets", "--config", str(DATA / "llama-4-scout"))
    assert r.code == 0, r.err
    flat = " ".join(r.out.split())
    assert "C 8192" in r.out and not re.search(r"does not know[^:]*: [^:]*attention_chunk_size", flat)


def test_presets_list_the_whole_models_with_their_schedule(cli: Any) -> None:
    doc = cli("presets", "--format", "json").json()
    models = {m["name"]: m for m in doc["models"]}
    # gpt-oss-20b config.json layer_types; Gemma 3 27B: every 6th of 62 layers full (Gemma3TextConfig)
    assert models["gpt-oss-20b"]["schedule"] == "24 layers: 12 sliding (W 128) + 12 full"
    assert models["gemma-3-27b"]["schedule"] == "62 layers: 52 sliding (W 1024) + 10 full"


def test_a_model_presets_kind_is_its_attention_layers_kind(cli: Any) -> None:
    # NOTE: the kind transformers builds for the model's attention layers: Qwen3NextAttention gates its output
    # (attn_output_gate), DeepSeek-V3.2 and GLM-5 add the lightning indexer (index_topk), DeepSeek-V4 its own layer
    r = cli("presets", "--format", "json")
    kinds = {m["name"]: m["kind"] for m in r.json()["models"]}
    assert {n: kinds[n] for n in ("llama-3.1-8b", "deepseek-v3", "qwen3-next-80b-a3b", "qwen3.5-27b", "deepseek-v3.2",
                                  "glm-5", "deepseek-v4-flash")} == {
        "llama-3.1-8b": "standard", "deepseek-v3": "mla", "qwen3-next-80b-a3b": "gated", "qwen3.5-27b": "gated",
        "deepseek-v3.2": "sparse_mla", "glm-5": "sparse_mla", "deepseek-v4-flash": "dsv4"}
