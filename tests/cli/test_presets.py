"""``attncli presets`` through the CLI: JSON contract, Markdown, table, --config, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
