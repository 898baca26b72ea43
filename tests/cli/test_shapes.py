"""``attncli shapes`` through the CLI: JSON contract, Markdown, table, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def test_json_contract(cli: Any) -> None:
    r = cli("shapes", "--dim", "512", "--heads", "8", "--batch", "1", "--seq", "10", "--format", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["schema"] == "attncli.shapes/1"
    assert doc["config"]["dim"] == 512 and doc["config"]["kv_seq"] == 10
    stages = {s["name"]: s["shape"] for s in doc["stages"]}
    # issue "foundation": q (1,10,512), q_heads (1,8,10,64), scores (1,8,10,10), output (1,10,512)
    assert stages["q"] == [1, 10, 512]
    assert stages["q_heads"] == [1, 8, 10, 64]
    assert stages["scores"] == [1, 8, 10, 10]
    assert stages["output"] == [1, 10, 512]
    assert doc["params"]["total"] == 1_050_624
    assert doc["outputs"] == {"attn_output": [1, 10, 512], "attn_weights": [1, 10, 10]}
    assert all({"name", "shape", "numel"} <= set(w) for w in doc["weights"])


def test_outputs_follow_flags(cli: Any) -> None:
    doc = cli("shapes", "--no-batch-first", "--batch", "2", "--per-head-weights", "--add-bias-kv",
              "--add-zero-attn", "--format", "json").json()
    # seq-first (L, B, E); per-head weights (B, H, L, S+2)
    assert doc["outputs"] == {"attn_output": [10, 2, 512], "attn_weights": [2, 8, 10, 12]}
    doc = cli("shapes", "--unbatched", "--no-need-weights", "--format", "json").json()
    assert doc["outputs"] == {"attn_output": [10, 512], "attn_weights": None}


def test_markdown_and_table(cli: Any, tmp_path: Path) -> None:
    md = cli("shapes", "--format", "markdown")
    assert md.code == 0 and "| q_heads | `(1, 8, 10, 64)` |" in md.out and "**1,050,624**" in md.out
    table = cli("shapes")
    assert table.code == 0 and "1,050,624" in table.out and "\x1b[" not in table.out
    target = tmp_path / "shapes.json"
    written = cli("shapes", "--format", "json", "--output", str(target))
    assert written.code == 0 and written.out == "" and '"attncli.shapes/1"' in target.read_text()


def test_bad_input_is_one_line_exit_2(cli: Any) -> None:
    for args, flag in ((["--dim", "510"], "--heads"), (["--impl", "flash"], "--impl"),
                       (["--dim", "x"], "--dim"), (["--impl", "fused", "--kdim", "3"], "--kdim"),
                       (["--batch", "0"], "--batch"), (["--bogus"], "--bogus")):
        r = cli("shapes", *args)
        assert r.code == 2, args
        assert r.out == ""
        assert flag in r.err and len(r.err.strip().splitlines()) == 1, r.err
        assert "Traceback" not in r.err


def test_version(cli: Any) -> None:
    from attncli import __version__

    r = cli("--version")
    assert r.code == 0 and r.out.strip() == f"attncli {__version__}"


def test_modern_title_names_each_setting_once(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """d is in the title already (H=8 (d=16)), and S = N + L = 10 + 4 = 14: neither is repeated."""
    monkeypatch.setenv("COLUMNS", "200")
    r = cli("shapes", "--dim", "64", "--heads", "8", "--kv-heads", "2", "--head-dim", "16", "--seq", "4",
            "--cache", "10", "--batch", "1", "--impl", "sdpa", "--window", "6")
    assert r.code == 0, r.err
    title = r.out.splitlines()[0]
    assert title == "attncli shapes: impl sdpa, E=64, H=8 (d=16), B=1, L=4, S=14, G=2, window=6, cache N=10"
